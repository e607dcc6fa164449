//! The process actor: one `codex app-server` child of the `codex` supervisor
//! (`process-<n>`). It spawns codex, does the handshake once, multiplexes its sessions onto
//! it (`traffic`) and fails when codex dies, so the supervisor starts the next one at once
//! (then with backoff for repeated deaths, and behind an open circuit for a crash loop).
//!
//! | message           | from                     | effect                                        |
//! |-------------------|--------------------------|-----------------------------------------------|
//! | `Attach`/`Detach` | a runner ([`Slot`])      | a session joins / leaves                      |
//! | `Send`            | a runner ([`Attached`](super::Attached)) | its message goes to codex (module table of `traffic`) |
//! | `Kill`            | a runner (codex wedged, or `codexd fault <nick> runner kill`) | SIGKILL; the exit follows |
//! | `Output`          | the child's tasks        | routed to sessions; the exit fails the actor  |
//! | `Retry`           | its own timer            | a `-32001` request offered again              |
//! | `Flush`           | a runner stopping        | answered once what it sent before is queued for codex |
//! | `Control`         | supervisor, operator     | ping, status, `codexd fault codex process-<n> kill|panic|hang` |
//!
//! However the actor ends (codex exited, a panic, killed as hung, stopped), the state's
//! `Drop` marks the slot down and tells every session [`Gone`] once — the first attached
//! with `report` set, so one alert is raised per death, naming the process's agents.

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};

use super::child::{CodexChild, CodexCommand, ExitStatus, Grace, ProcessEvent, ProcessExit};
use super::jsonrpc::{Incoming, Outgoing};
use super::session::{Gone, SessionEvent, SessionSink};
use super::slot::Slot;
use super::stdio::stderr_summary;
use super::traffic::{Deliveries, Traffic};
use crate::child::{
    ChildFactory, ChildHandle, ControlError, ControlMsg, FaultKind, Report, spawn_linked,
};
use crate::fault;

/// The actor.
pub struct CodexProcess;

/// Its messages.
#[derive(Debug)]
pub enum CodexProcessMessage {
    /// Supervisor and operator requests (`kill` SIGKILLs codex).
    Control(ControlMsg),
    /// A runner's session joins; its events go to `sink`.
    Attach {
        /// The session's id (unique in the daemon).
        session: u64,
        /// Where its events go.
        sink: SessionSink,
    },
    /// A session leaves (its requests are forgotten).
    Detach {
        /// Which.
        session: u64,
    },
    /// One of a session's messages for codex.
    Send {
        /// Whose.
        session: u64,
        /// The message, under the session's own ids.
        message: Outgoing,
    },
    /// SIGKILL codex, because `why` (logged).
    Kill {
        /// E.g. `codex did not answer turn/start within 30s`.
        why: String,
    },
    /// A line from codex, or its exit.
    Output(ProcessEvent),
    /// Answered once every message sent before it was handled (its lines are queued for
    /// codex's stdin): a runner stopping makes sure its last words go out.
    Flush(ractor::RpcReplyPort<()>),
    /// A request answered `-32001` is due to be offered again.
    Retry {
        /// Its process-wide id.
        global: i64,
    },
}

impl From<ControlMsg> for CodexProcessMessage {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// What each instance starts with (the factory's, cloned).
#[derive(Debug, Clone)]
pub struct CodexProcessArgs {
    /// Its slot.
    pub slot: Slot,
    /// How to start codex.
    pub command: CodexCommand,
    /// Requests in flight at most.
    pub window: usize,
    /// The stop escalation.
    pub grace: Grace,
}

/// Starts a new process actor (and so a new codex) on every (re)start.
pub struct CodexProcessFactory {
    args: CodexProcessArgs,
}

impl CodexProcessFactory {
    /// The factory for `args`.
    pub fn new(args: CodexProcessArgs) -> Self {
        Self { args }
    }
}

impl ChildFactory for CodexProcessFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        spawn_linked(CodexProcess, self.args.clone(), supervisor)
    }
}

/// The actor's state: the running child and its traffic.
pub struct CodexProcessState {
    slot: Slot,
    myself: ActorRef<CodexProcessMessage>,
    traffic: Traffic,
    grace: Grace,
    /// Set once codex ended: how (for the sessions' [`Gone`]).
    ended: Option<(String, Option<ExitStatus>)>,
    /// The last reason a kill was asked for.
    killed_because: Option<String>,
    stopping: bool,
    /// The sessions were told it is gone.
    told: bool,
}

/// `codexd status` detail of one process.
#[derive(Debug, serde::Serialize)]
struct ProcessStatus {
    pid: u32,
    agents: Vec<String>,
    #[serde(flatten)]
    counts: super::traffic::Counts,
    stderr_tail: String,
    /// `pid 4242: spark-a, spark-b; 1 turn(s) in flight, 0 request(s) waiting`.
    summary: String,
}

impl Actor for CodexProcess {
    type Msg = CodexProcessMessage;
    type State = CodexProcessState;
    type Arguments = CodexProcessArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<CodexProcessMessage>,
        args: CodexProcessArgs,
    ) -> Result<CodexProcessState, ActorProcessingErr> {
        let output = myself.clone();
        let child = CodexChild::spawn(&args.command, move |event| {
            output.cast(CodexProcessMessage::Output(event)).is_ok()
        })?;
        let pid = child.pid();
        tracing::info!(codex.process = %args.slot.name(), codex.pid = pid, agents = ?args.slot.agents(), "codex process started");
        let traffic = Traffic::new(child, args.window);
        args.slot.up(myself.get_cell(), pid);
        Ok(CodexProcessState {
            slot: args.slot,
            myself,
            traffic,
            grace: args.grace,
            ended: None,
            killed_because: None,
            stopping: false,
            told: false,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<CodexProcessMessage>,
        message: CodexProcessMessage,
        state: &mut CodexProcessState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CodexProcessMessage::Control(control) => return state.on_control(control).await,
            CodexProcessMessage::Attach { session, sink } => state.traffic.attach(session, sink),
            CodexProcessMessage::Detach { session } => state.traffic.remove(session),
            CodexProcessMessage::Send { session, message } => state.on_send(session, message),
            CodexProcessMessage::Kill { why } => state.kill(why),
            CodexProcessMessage::Output(ProcessEvent::Message(incoming)) => {
                state.on_output(incoming)
            }
            CodexProcessMessage::Output(ProcessEvent::Exited(exit)) => {
                return Err(state.on_exit(&exit).into());
            }
            CodexProcessMessage::Retry { global } => state.traffic.retry(global),
            CodexProcessMessage::Flush(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<CodexProcessMessage>,
        state: &mut CodexProcessState,
    ) -> Result<(), ActorProcessingErr> {
        if state.ended.is_none() {
            state.stopping = true;
            state.tell_sessions_gone();
            let exit = state.traffic.child.stop_in_place(state.grace).await;
            tracing::info!(codex.process = %state.slot.name(), exit = %exit, "codex process stopped");
        }
        Ok(())
    }
}

impl CodexProcessState {
    async fn on_control(&mut self, control: ControlMsg) -> Result<(), ActorProcessingErr> {
        match control {
            ControlMsg::Status { reply, .. } => {
                let counts = self.traffic.counts();
                let pid = self.traffic.child.pid();
                let agents = self.slot.agents();
                let summary = format!(
                    "pid {pid}: {}; {} turn(s) in flight, {} request(s) waiting",
                    agents.join(", "),
                    counts.turns_in_flight,
                    counts.requests_waiting
                );
                let status = ProcessStatus {
                    pid,
                    agents,
                    counts,
                    stderr_tail: stderr_summary(&self.traffic.child.stderr_tail(), 5),
                    summary,
                };
                let _ = reply.send(Report::leaf(&status));
                Ok(())
            }
            ControlMsg::Fault {
                path,
                kind: FaultKind::Kill,
                reply,
                ..
            } if path.is_empty() => {
                let _ = reply.send(Ok::<(), ControlError>(()));
                self.kill("fault injected: SIGKILL".to_owned());
                Ok(())
            }
            other => fault::handle_leaf(other, self.slot.name()).await,
        }
    }

    /// A line from codex: routed to its sessions; a `-32001` answer is offered again later.
    fn on_output(&mut self, incoming: Incoming) {
        let routing = self.traffic.route(incoming);
        if let Some((global, delay)) = routing.retry {
            self.myself
                .send_after(delay, move || CodexProcessMessage::Retry { global });
        }
        deliver(routing.deliveries);
    }

    /// codex exited: how, for the log, the sessions and the supervisor (the actor fails).
    fn on_exit(&mut self, exit: &ProcessExit) -> String {
        let stderr = stderr_summary(&exit.stderr, 5);
        let mut why = format!("codex {exit}");
        if let Some(because) = &self.killed_because {
            why.push_str(&format!(" (killed: {because})"));
        }
        if !stderr.is_empty() {
            why.push_str(&format!("; stderr: {stderr}"));
        }
        self.ended = Some((why.clone(), Some(exit.status.clone())));
        tracing::warn!(codex.process = %self.slot.name(), codex.pid = self.traffic.child.pid(), exit = %exit, agents = ?self.slot.agents(), "codex process exited; its supervisor starts the next one");
        why
    }

    fn on_send(&mut self, session: u64, message: Outgoing) {
        match self.traffic.send(session, message) {
            Ok(deliveries) => deliver(deliveries),
            Err(error) => {
                // A full stdin queue means codex stopped reading: it is wedged for everyone.
                tracing::warn!(codex.process = %self.slot.name(), error = %error, "cannot write to codex");
                self.kill(format!("cannot write to codex: {error}"));
            }
        }
    }

    fn kill(&mut self, why: String) {
        tracing::warn!(codex.process = %self.slot.name(), codex.pid = self.traffic.child.pid(), reason = %why, agents = ?self.slot.agents(), "killing codex for every agent on it");
        self.killed_because = Some(why);
        self.traffic.child.kill();
    }

    /// Marks the slot down and tells every session, once.
    fn tell_sessions_gone(&mut self) {
        if std::mem::replace(&mut self.told, true) {
            return;
        }
        let (why, status) = match (&self.ended, self.stopping) {
            (Some((why, status)), _) => (why.clone(), status.clone()),
            (None, true) => ("codex process stopped".to_owned(), None),
            (None, false) => (
                "the codex process actor ended (panic or hang)".to_owned(),
                None,
            ),
        };
        let gone = Gone {
            process: self.slot.name().to_owned(),
            died: !self.stopping,
            why,
            status,
            agents: self.slot.agents(),
            report: false,
        };
        for (index, sink) in self.traffic.take_sessions().into_iter().enumerate() {
            let gone = Gone {
                report: index == 0 && gone.died,
                ..gone.clone()
            };
            sink.send(SessionEvent::Gone(gone));
        }
        self.slot.down(&self.myself.get_cell(), &gone.why);
    }
}

impl Drop for CodexProcessState {
    /// A failed, panicked or killed actor still marks its slot down and tells its
    /// sessions; dropping the child kills and reaps a codex that still runs.
    fn drop(&mut self) {
        self.tell_sessions_gone();
    }
}

fn deliver(deliveries: Deliveries) {
    for (sink, event) in deliveries {
        sink.send(event);
    }
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
