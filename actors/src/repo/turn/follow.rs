//! Following the running turn to its end: notifications of its thread, the probe, the
//! turn and interrupt deadlines, the heartbeat, cancellation (the module table of
//! [`super`]).

use serde_json::{Value, json};
use tokio::time::Instant;

use super::params::describe_tool;
use super::{Running, Session, TurnError, Waiter};
use crate::codex::SessionEvent;
use crate::codex::jsonrpc::{Incoming, RequestId, RpcError};
use crate::repo::{Cancel, HEARTBEAT, Progress};
use crate::runner::session;
use crate::runner::turn::{Outcome, Step};

impl Session<'_> {
    /// Follows the running turn to its end (module docs).
    pub(super) async fn follow(
        &mut self,
        running: &mut Running,
        cancel: &Cancel,
    ) -> Result<(), TurnError> {
        while let Some((method, params)) = self.backlog.pop_front() {
            if let Some(outcome) = self.on_notification(running, &method, &params) {
                return self.ended(running, outcome);
            }
        }
        loop {
            let wake = self.next_wake(running);
            let event = tokio::select! {
                event = self.events.recv() => event,
                () = tokio::time::sleep_until(wake) => {
                    self.on_tick(running)?;
                    continue;
                }
                () = cancel.cancelled(), if !running.cancelled => {
                    running.cancelled = true;
                    self.interrupt(running);
                    continue;
                }
            };
            let Some(event) = event else {
                return Err(TurnError::Gone("the session ended".to_owned()));
            };
            let message = match event {
                SessionEvent::Gone(gone) => return Err(TurnError::Gone(gone.why)),
                SessionEvent::Message(message) => message,
            };
            match message {
                Incoming::Response { id, outcome } => self.on_response(running, &id, outcome)?,
                Incoming::Notification { method, params } => {
                    if let Some(outcome) = self.on_notification(running, &method, &params) {
                        return self.ended(running, outcome);
                    }
                }
                other => self.other(other),
            }
        }
    }

    /// A notification of the turn's thread (others are another session's, or the
    /// process's own news); the turn's outcome once it ended.
    fn on_notification(
        &self,
        running: &mut Running,
        method: &str,
        params: &Value,
    ) -> Option<Outcome> {
        if params.get("threadId").and_then(Value::as_str) != Some(&running.thread) {
            return None;
        }
        if method == "item/started" {
            self.tool_started(running, params);
        }
        match running.turn.on_notification(method, params) {
            Step::Ended(outcome) => Some(outcome),
            _ => None,
        }
    }

    fn next_wake(&self, running: &Running) -> Instant {
        let turn = match running.turn.interrupted {
            Some(at) => at + self.settings.interrupt_timeout,
            None => running.deadline,
        };
        [
            Some(turn),
            running.probe,
            self.requests.next_deadline(),
            Some(running.heartbeat),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(turn)
    }

    fn on_tick(&mut self, running: &mut Running) -> Result<(), TurnError> {
        let now = Instant::now();
        if self.requests.next_deadline().is_some_and(|due| due <= now) {
            return Err(self.expired());
        }
        if let Some(at) = running.turn.interrupted {
            if now >= at + self.settings.interrupt_timeout {
                let why = format!(
                    "an interrupted turn did not end within {}s",
                    self.settings.interrupt_timeout.as_secs()
                );
                return Err(self.wedged(why));
            }
        } else if now >= running.deadline {
            tracing::warn!(
                timeout_s = self.settings.turn_timeout.as_secs(),
                "repository turn timed out; interrupting it"
            );
            self.interrupt(running);
        }
        if running.probe.is_some_and(|due| now >= due) {
            running.probe = None;
            self.request("thread/loaded/list", json!({}), Waiter::Probe);
        }
        if now >= running.heartbeat {
            running.heartbeat = now + HEARTBEAT;
            self.report(Progress::Working);
        }
        Ok(())
    }

    fn on_response(
        &mut self,
        running: &mut Running,
        id: &RequestId,
        outcome: Result<Value, RpcError>,
    ) -> Result<(), TurnError> {
        let Some(pending) = self.requests.resolve(id) else {
            return Ok(());
        };
        match (pending.waiter, outcome) {
            (Waiter::Probe, _) => {
                running.probe = Some(Instant::now() + self.settings.request_timeout);
            }
            (Waiter::Interrupt, Err(error)) if !error.message.contains("no active turn") => {
                return Err(self.wedged(format!("it refused to interrupt the turn: {error}")));
            }
            (Waiter::Interrupt, Err(_)) => {
                return Err(match running.cancelled {
                    true => TurnError::Cancelled,
                    false => TurnError::TimedOut(self.settings.turn_timeout),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn ended(&self, running: &Running, outcome: Outcome) -> Result<(), TurnError> {
        match outcome {
            Outcome::Completed if running.cancelled => Err(TurnError::Cancelled),
            Outcome::Completed => {
                let said = running.turn.messages.last().cloned();
                let tools = running.tools;
                self.report(Progress::TurnDone { tools, said });
                Ok(())
            }
            Outcome::Failed(reason) => Err(TurnError::Failed(crate::redact::text(&reason))),
            Outcome::Timeout if running.cancelled => Err(TurnError::Cancelled),
            Outcome::Timeout => Err(TurnError::TimedOut(self.settings.turn_timeout)),
        }
    }

    fn tool_started(&self, running: &mut Running, params: &Value) {
        let Some((kind, detail)) = describe_tool(params) else {
            return;
        };
        running.tools += 1;
        self.report(Progress::Tool { kind, detail });
    }

    fn interrupt(&mut self, running: &mut Running) {
        running.turn.interrupted = Some(Instant::now());
        match running.turn.id.clone() {
            Some(turn) => {
                let params = session::turn_interrupt(&running.thread, &turn);
                self.request("turn/interrupt", params, Waiter::Interrupt);
            }
            None => tracing::debug!("no turn id yet; the interrupt deadline stands"),
        }
    }
}
