//! An inert child that answers pings and obeys injected faults, with an optional script
//! that makes it fail on its own. It stands in for real children in supervision tests and
//! in fault-injection drills (`test_children:` in the config). The classic mock children:
//!
//! | mock             | construction                                        |
//! |------------------|-----------------------------------------------------|
//! | healthy          | `TestChildFactory::new(Script::Healthy)`            |
//! | `PanickingChild` | `TestChildFactory::new(Script::panicking(after))`   |
//! | `ErroringChild`  | `TestChildFactory::new(Script::erroring(after))`    |
//! | `HangingChild`   | `TestChildFactory::new(Script::hanging(after, d))`  |
//! | fails to start   | `TestChildFactory::new(Script::FailToStart)`        |

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};

use crate::child::{ChildFactory, ChildHandle, ControlMsg, FaultKind, spawn_linked};
use crate::fault;

/// What a test child does on its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Script {
    /// Nothing: it runs until stopped or faulted.
    Healthy,
    /// Its first `times` instances fail with `kind`, `after` their start; later ones are healthy.
    Fail {
        /// How many instances fail (`u32::MAX`: all of them).
        times: u32,
        /// How long after its start an instance fails.
        after: Duration,
        /// How it fails.
        kind: FaultKind,
    },
    /// `pre_start` returns an error every time.
    FailToStart,
}

impl Script {
    /// Every instance panics `after` its start.
    pub fn panicking(after: Duration) -> Self {
        Self::Fail {
            times: u32::MAX,
            after,
            kind: FaultKind::Panic,
        }
    }

    /// Every instance returns an error from its handler `after` its start.
    pub fn erroring(after: Duration) -> Self {
        Self::Fail {
            times: u32::MAX,
            after,
            kind: FaultKind::Error,
        }
    }

    /// Every instance hangs for `duration`, `after` its start.
    pub fn hanging(after: Duration, duration: Duration) -> Self {
        Self::Fail {
            times: u32::MAX,
            after,
            kind: FaultKind::Hang { duration },
        }
    }
}

/// The test child actor.
pub struct TestChild;

/// Messages of a [`TestChild`].
#[derive(Debug)]
pub enum TestChildMsg {
    /// Supervisor and operator requests.
    Control(ControlMsg),
    /// The script's failure is due.
    Misbehave(FaultKind),
}

impl From<ControlMsg> for TestChildMsg {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// What a [`TestChild`] instance starts with.
#[derive(Debug, Clone)]
pub struct TestChildArgs {
    /// Its name, for logs and fault messages.
    pub name: String,
    /// What it does on its own.
    pub script: Script,
    /// 0-based instance number (the factory counts starts).
    pub instance: u32,
    /// Where a graceful stop is recorded (by name), for shutdown-order tests.
    pub stop_log: Option<StopLog>,
}

/// Shared record of graceful stops, in order.
pub type StopLog = Arc<Mutex<Vec<String>>>;

impl Actor for TestChild {
    type Msg = TestChildMsg;
    type State = TestChildArgs;
    type Arguments = TestChildArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<TestChildMsg>,
        args: TestChildArgs,
    ) -> Result<TestChildArgs, ActorProcessingErr> {
        if args.script == Script::FailToStart {
            return Err(format!("{} refuses to start (script)", args.name).into());
        }
        Ok(args)
    }

    async fn post_start(
        &self,
        myself: ActorRef<TestChildMsg>,
        state: &mut TestChildArgs,
    ) -> Result<(), ActorProcessingErr> {
        if let Script::Fail { times, after, kind } = state.script {
            if state.instance < times {
                myself.send_after(after, move || TestChildMsg::Misbehave(kind));
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<TestChildMsg>,
        msg: TestChildMsg,
        state: &mut TestChildArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TestChildMsg::Control(control) => fault::handle_leaf(control, &state.name).await,
            TestChildMsg::Misbehave(kind) => fault::inject(kind, &state.name).await,
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<TestChildMsg>,
        state: &mut TestChildArgs,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(log) = &state.stop_log {
            log.lock()
                .map_err(|_| "stop log poisoned")?
                .push(state.name.clone());
        }
        Ok(())
    }
}

/// Starts [`TestChild`]s and counts how often it did.
#[derive(Debug, Clone)]
pub struct TestChildFactory {
    name: String,
    script: Script,
    starts: Arc<AtomicU32>,
    stop_log: Option<StopLog>,
}

impl TestChildFactory {
    /// A factory for a child called `name` following `script`.
    pub fn new(name: impl Into<String>, script: Script) -> Self {
        Self {
            name: name.into(),
            script,
            starts: Arc::default(),
            stop_log: None,
        }
    }

    /// Records every graceful stop of this child's instances in `log`.
    pub fn with_stop_log(mut self, log: StopLog) -> Self {
        self.stop_log = Some(log);
        self
    }

    /// How many instances were spawned (including ones that failed to start).
    pub fn starts(&self) -> u32 {
        self.starts.load(Ordering::SeqCst)
    }
}

impl ChildFactory for TestChildFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        let instance = self.starts.fetch_add(1, Ordering::SeqCst);
        let args = TestChildArgs {
            name: self.name.clone(),
            script: self.script,
            instance,
            stop_log: self.stop_log.clone(),
        };
        spawn_linked(TestChild, args, supervisor)
    }
}
