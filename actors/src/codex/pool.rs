//! Placement: which agents share which codex process, and the `codex` service that runs
//! them. Agents with the same codex identity (binary, arguments, environment, as the
//! caller's `key` says) are packed in placement order, `agents_per_process` to a [`Slot`];
//! each slot with agents is a child `process-<n>` of the `codex` supervisor, under the
//! daemon's `restart:` policy (reference/shared-app-server.md).
//!
//! | call                   | effect                                                       |
//! |------------------------|--------------------------------------------------------------|
//! | [`CodexPool::place`]   | the agent's slot; a new slot's process starts (now, or with the service) |
//! | [`CodexPool::release`] | the agent leaves its slot; the last one out stops its process |
//! | [`CodexPool::service`] | the Host's `codex` child: a supervisor of every slot in use  |
//! | [`CodexPool::report_to`] | where an agent's alerts go: a process's circuit opening and closing is reported once, by the first agent on it (as child `codex process-<n>`) |

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{ActorCell, ActorRef, SpawnErr};

use super::child::{CodexCommand, Grace};
use super::process::{CodexProcessArgs, CodexProcessFactory};
use super::slot::Slot;
use super::window::REQUEST_WINDOW;
use crate::child::{ChildFactory, ChildHandle, ChildRole, ChildSpec};
use crate::events::{Transition, TransitionEvent, TransitionObserver};
use crate::restart::RestartPolicy;
use crate::supervisor::{ShutdownOrder, Supervisor, SupervisorArgs, SupervisorMsg};

/// The daemon's codex processes, in slots.
#[derive(Clone)]
pub struct CodexPool {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    slots: Vec<Entry>,
    per_process: usize,
    window: usize,
    policy: RestartPolicy,
    grace: Grace,
    /// The running `codex` supervisor, once the service started.
    supervisor: Option<ActorRef<SupervisorMsg>>,
    /// Each agent's alerts (its supervisor's observer), by nick.
    reporters: std::collections::BTreeMap<String, TransitionObserver>,
}

struct Entry {
    key: String,
    command: CodexCommand,
    slot: Slot,
    /// Its process is a child of the running supervisor.
    running: bool,
}

impl std::fmt::Debug for CodexPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodexPool")
            .field("per_process", &self.per_process())
            .finish_non_exhaustive()
    }
}

impl Entry {
    fn spec(&self, inner: &Inner) -> ChildSpec {
        let args = CodexProcessArgs {
            slot: self.slot.clone(),
            command: self.command.clone(),
            window: inner.window,
            grace: inner.grace,
        };
        ChildSpec {
            name: self.slot.name().to_owned(),
            role: ChildRole::Member,
            policy: inner.policy,
            factory: Arc::new(CodexProcessFactory::new(args)),
        }
    }
}

impl CodexPool {
    /// A pool that puts up to `per_process` agents on one process, whose processes are
    /// restarted under `policy` (the daemon's `restart:`).
    pub fn new(per_process: usize, policy: RestartPolicy) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                slots: Vec::new(),
                per_process: per_process.max(1),
                window: REQUEST_WINDOW,
                policy,
                grace: Grace::default(),
                supervisor: None,
                reporters: Default::default(),
            })),
        }
    }

    /// The same pool with at most `window` requests in flight per process.
    pub fn with_window(self, window: usize) -> Self {
        self.lock().window = window.max(1);
        self
    }

    /// The same pool stopping its processes with `grace`.
    pub fn with_grace(self, grace: Grace) -> Self {
        self.lock().grace = grace;
        self
    }

    /// Agents per process.
    pub fn per_process(&self) -> usize {
        self.lock().per_process
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The slot of `nick`: the one it already has, else the first slot of the same `key`
    /// with room, else a new slot whose processes start with `command`. `key` must cover
    /// the codex identity (binary, arguments, environment). A slot that had no process
    /// gets one.
    pub fn place(&self, nick: &str, key: &str, command: CodexCommand) -> Slot {
        let mut inner = self.lock();
        let per_process = inner.per_process;
        let has = |e: &Entry| e.slot.agents().iter().any(|a| a == nick);
        let found = inner
            .slots
            .iter()
            .position(|e| e.key == key && has(e))
            .or_else(|| {
                inner
                    .slots
                    .iter()
                    .position(|e| e.key == key && e.slot.agents().len() < per_process)
            });
        let index = found.unwrap_or_else(|| {
            let slot = Slot::new(format!("process-{}", inner.slots.len()));
            inner.slots.push(Entry {
                key: key.to_owned(),
                command,
                slot,
                running: false,
            });
            inner.slots.len() - 1
        });
        inner.slots[index].slot.add_agent(nick);
        let slot = inner.slots[index].slot.clone();
        start_missing(&mut inner);
        slot
    }

    /// Where `nick`'s alerts go; the circuit of a process is reported by its first agent.
    pub fn report_to(&self, nick: &str, observer: TransitionObserver) {
        self.lock().reporters.insert(nick.to_owned(), observer);
    }

    /// The observer of the `codex` supervisor: a process's circuit opening or closing goes
    /// to its first agent's alerts, as that agent's child `codex process-<n>`. Restarts are
    /// not reported here: the process's sessions raise one alert per death.
    fn observer(&self) -> TransitionObserver {
        let pool = self.clone();
        TransitionObserver::new(move |event, last_error| {
            let (slot, reporter) = {
                let inner = pool.lock();
                let Some(entry) = inner.slots.iter().find(|e| e.slot.name() == event.child) else {
                    return;
                };
                let first = entry.slot.agents().first().cloned();
                let reporter =
                    first.and_then(|nick| Some((inner.reporters.get(&nick)?.clone(), nick)));
                (entry.slot.clone(), reporter)
            };
            match event.transition {
                Transition::CircuitOpened { cooldown, .. } => slot.circuit_opened(cooldown),
                Transition::CircuitClosed => {}
                _ => return,
            }
            if let Some((reporter, nick)) = reporter {
                let child = format!("codex {}", event.child);
                let as_agent = TransitionEvent {
                    supervisor: &nick,
                    child: &child,
                    transition: event.transition.clone(),
                };
                reporter.observe(&as_agent, last_error);
            }
        })
    }

    /// Frees `nick`'s place (the agent was removed); a slot left empty stops its process.
    pub fn release(&self, nick: &str) {
        let mut inner = self.lock();
        inner.reporters.remove(nick);
        let supervisor = inner.supervisor.clone();
        for entry in inner.slots.iter_mut() {
            let had = entry.slot.agents().iter().any(|a| a == nick);
            if had && entry.slot.remove_agent(nick) && entry.running {
                entry.running = false;
                if let Some(supervisor) = &supervisor {
                    let (reply, _) = tokio::sync::oneshot::channel();
                    let name = entry.slot.name().to_owned();
                    let _ = supervisor.cast(SupervisorMsg::RemoveChild {
                        name,
                        reply: reply.into(),
                    });
                }
            }
        }
    }

    /// The Host's `codex` service: a supervisor named `codex` whose children are the
    /// processes of the slots in use, under `policy`.
    pub fn service(&self, policy: RestartPolicy, stop_timeout: Duration) -> ChildSpec {
        ChildSpec {
            name: "codex".to_owned(),
            role: ChildRole::Service,
            policy,
            factory: Arc::new(ServiceFactory {
                pool: self.clone(),
                stop_timeout,
            }),
        }
    }
}

/// Adds the process of every slot in use that has none to the running supervisor.
fn start_missing(inner: &mut Inner) {
    let Some(supervisor) = inner.supervisor.clone() else {
        return;
    };
    let specs: Vec<ChildSpec> = inner
        .slots
        .iter()
        .filter(|e| !e.running && !e.slot.agents().is_empty())
        .map(|e| e.spec(inner))
        .collect();
    for entry in inner.slots.iter_mut() {
        if !entry.slot.agents().is_empty() {
            entry.running = true;
        }
    }
    for spec in specs {
        let (reply, _) = tokio::sync::oneshot::channel();
        let _ = supervisor.cast(SupervisorMsg::AddChild {
            spec,
            reply: reply.into(),
        });
    }
}

/// Starts the `codex` supervisor with the slots in use, and registers it with the pool so
/// slots placed later get their process.
struct ServiceFactory {
    pool: CodexPool,
    stop_timeout: Duration,
}

impl ChildFactory for ServiceFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        let pool = self.pool.clone();
        let children = {
            let mut inner = pool.lock();
            inner.supervisor = None;
            let specs = inner
                .slots
                .iter()
                .filter(|e| !e.slot.agents().is_empty())
                .map(|e| e.spec(&inner))
                .collect();
            for entry in inner.slots.iter_mut() {
                entry.running = !entry.slot.agents().is_empty();
            }
            specs
        };
        let args = SupervisorArgs {
            name: "codex".to_owned(),
            children,
            shutdown: ShutdownOrder::Parallel,
            stop_timeout: self.stop_timeout,
            observer: Some(pool.observer()),
        };
        let spawned = crate::child::spawn_linked(Supervisor, args, supervisor);
        Box::pin(async move {
            let handle = spawned.await?;
            let mut inner = pool.lock();
            inner.supervisor = Some(ActorRef::from(handle.cell().clone()));
            start_missing(&mut inner);
            Ok(handle)
        })
    }
}
