//! The webhook's one subscription to its agent's `irc` events, turned into its own messages:
//!
//! | `irc` event                                   | webhook message                          |
//! |-----------------------------------------------|------------------------------------------|
//! | `Refused` of a line to the alerts channel     | `IrcRefused` (`irc_sink`: counted, sent again) |
//! | `Mesh` change this agent's gate lets through  | an `Alert` (`mesh_split` / `mesh_healed`) |
//! | `Mesh` change another agent of the server raised | none (logged)                         |
//! | anything else                                 | none                                     |

use ractor::ActorRef;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::mesh::{MeshAlertGate, alert_for};
use super::{Alert, WebhookMessage};
use crate::irc::IrcEvent;
use crate::trace::TraceCtx;

/// What the listener needs to know of its webhook.
pub(super) struct Listener {
    /// `webhooks.irc_channel`, whose refusals count.
    pub(super) channel: Option<String>,
    /// The agent's nick (its alerts).
    pub(super) nick: String,
    /// One mesh alert per change per server.
    pub(super) gate: MeshAlertGate,
}

impl Listener {
    /// The message `event` means for the webhook (the module table).
    fn message(&self, event: IrcEvent) -> Option<WebhookMessage> {
        match event {
            IrcEvent::Refused {
                target,
                numeric,
                reason,
            } if self
                .channel
                .as_deref()
                .is_some_and(|c| target.eq_ignore_ascii_case(c)) =>
            {
                Some(WebhookMessage::IrcRefused(format!("{numeric} {reason}")))
            }
            IrcEvent::Mesh(change) if !self.gate.claim(&change) => {
                tracing::info!(agent.nick = %self.nick, change = ?change, "mesh change already raised by another agent of this server");
                None
            }
            IrcEvent::Mesh(change) => {
                let (event, message) = alert_for(&self.nick, &change);
                Some(WebhookMessage::Alert(Alert {
                    event,
                    nick: self.nick.clone(),
                    message,
                    trace: TraceCtx::current(),
                }))
            }
            _ => None,
        }
    }

    /// Forwards `events` to `webhook` until either ends.
    pub(super) fn spawn(
        self,
        events: &broadcast::Sender<IrcEvent>,
        webhook: ActorRef<WebhookMessage>,
    ) -> JoinHandle<()> {
        let mut events = events.subscribe();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        let Some(message) = self.message(event) else {
                            continue;
                        };
                        if webhook.cast(message).is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::warn!(agent.nick = %self.nick, skipped, "webhook missed irc events; a refused alert line may go uncounted or a mesh alert be missing");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }
}
