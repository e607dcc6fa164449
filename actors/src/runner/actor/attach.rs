//! The runner's session on its codex process: attaching when the slot's process is up, and
//! losing it when the process is gone (the turn cut off for a replay, one alert per death
//! from the session the process chose). The process itself is the `codex` service's.

use ractor::ActorProcessingErr;

use super::{RunnerState, Waiter};
use crate::codex::{Gone, SessionSink};
use crate::runner::conversation::ThreadMode;
use crate::runner::{RunnerMessage, session};
use crate::trace::TraceCtx;
use crate::webhook::{self, Alert, texts};

impl RunnerState {
    /// Attaches to the agent's codex process if it runs (else waits for
    /// [`RunnerMessage::CodexChanged`]) and starts the handshake.
    pub(super) fn attach(&mut self) -> Result<(), ActorProcessingErr> {
        self.generation += 1;
        let generation = self.generation;
        let myself = self.myself.clone();
        let sink = SessionSink::new(move |event| {
            myself
                .cast(RunnerMessage::Process { generation, event })
                .is_ok()
        });
        let Some(process) = self.settings.codex.attach(sink) else {
            return Ok(());
        };
        tracing::info!(agent.nick = %self.settings.nick, codex.process = %self.settings.codex.name(), codex.pid = process.pid(), "attached to codex");
        let private = self.settings.conversations.threads == ThreadMode::PerConversation;
        self.peers.turn.set_codex(Some(process.pid()), private);
        self.process = Some(process);
        self.gone = None;
        self.request(
            "initialize",
            Some(session::initialize()),
            Waiter::Initialize,
        )
    }

    /// The slot's process came up or went down: a runner waiting attaches; one attached to
    /// a process that is no longer the slot's has lost it.
    pub(super) fn on_codex_changed(&mut self) -> Result<(), ActorProcessingErr> {
        let now = self.settings.codex.pid();
        match (&self.process, now) {
            (None, Some(_)) => self.attach(),
            (Some(attached), _) if now != Some(attached.pid()) => {
                let why = self
                    .settings
                    .codex
                    .down_reason()
                    .unwrap_or_else(|| "replaced".to_owned());
                self.lost_process(&why, true);
                match now {
                    Some(_) => self.attach(),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// The process died or stopped under the runner: one alert per death (raised by the
    /// session the process chose), the running turn cut off for a replay.
    pub(super) fn on_gone(&mut self, gone: &Gone) {
        if gone.report {
            let (event, message) =
                texts::process_exited(&gone.agents, &gone.process, gone.status.as_ref());
            let alert = Alert {
                event,
                nick: self.settings.nick.clone(),
                message,
                trace: TraceCtx::current(),
            };
            webhook::raise(&self.peers.webhook, alert);
        }
        self.lost_process(&gone.why, gone.died);
    }

    /// Forgets the session on a process that is gone; the running turns are cut off (and
    /// counted as an attempt when codex died under them) and replayed on the next process.
    pub(super) fn lost_process(&mut self, why: &str, died: bool) {
        if self.process.take().is_none() {
            return;
        }
        tracing::warn!(agent.nick = %self.settings.nick, codex.process = %self.settings.codex.name(), reason = %why, "codex process gone; waiting for the next one to resume the thread");
        self.gone = Some(why.to_owned());
        self.peers.turn.set_codex(None, false);
        self.cut_off_all(if died { "crashed" } else { "stopped" }, died);
        for (_, pending) in self.requests.drain() {
            tracing::debug!(method = %pending.method, "request lost with codex");
            self.dropped(pending.waiter);
        }
        self.initialized = false;
        // Threads are loaded per process: each is resumed on the next one when needed
        // (a short-lived invitation thread is started again).
        self.threads.clear();
        self.compacting.clear();
        self.steers.clear();
        self.used.clear();
    }
}
