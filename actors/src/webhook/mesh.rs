//! Mesh alerts: the `irc` actor's [`IrcEvent::Mesh`] changes (agentirc's `server.unlink` /
//! `server.link` in `#system`, for the agent's own server) become alerts.
//!
//! | change   | event         | message                                                                 |
//! |----------|---------------|-------------------------------------------------------------------------|
//! | `Split`  | `mesh_split`  | `Agent <nick>: server <server> lost its mesh link to <peers>; only its own users reach the agent.` |
//! | `Healed` | `mesh_healed` | `Agent <nick>: server <server> is linked to the mesh again (<peers>).`   |
//!
//! Every agent on the server sees the same event, so each raises its own alert: one per
//! agent per split (the webhook's dedup window does not merge them, their texts differ).

use ractor::ActorRef;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::{Alert, AlertEvent, WebhookMessage};
use crate::irc::IrcEvent;
use crate::irc::mesh::MeshChange;
use crate::trace::TraceCtx;

/// The alert for a mesh change (the module table).
pub fn alert_for(nick: &str, change: &MeshChange) -> (AlertEvent, String) {
    match change {
        MeshChange::Split { server, lost } => (
            AlertEvent::MeshSplit,
            format!(
                "Agent {nick}: server {server} lost its mesh link to {}; only its own users reach the agent.",
                lost.join(", ")
            ),
        ),
        MeshChange::Healed { server, peers } => (
            AlertEvent::MeshHealed,
            format!(
                "Agent {nick}: server {server} is linked to the mesh again ({}).",
                peers.join(", ")
            ),
        ),
    }
}

/// Forwards `events`' mesh changes to `webhook` as alerts for `nick`, until either ends.
pub(super) fn listen(
    events: &broadcast::Sender<IrcEvent>,
    nick: String,
    webhook: ActorRef<WebhookMessage>,
) -> JoinHandle<()> {
    let mut events = events.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(IrcEvent::Mesh(change)) => {
                    let (event, message) = alert_for(&nick, &change);
                    let alert = Alert {
                        event,
                        nick: nick.clone(),
                        message,
                        trace: TraceCtx::current(),
                    };
                    if webhook.cast(WebhookMessage::Alert(alert)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::warn!(
                        skipped,
                        "webhook missed irc events; a mesh alert may be missing"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_become_alerts() {
        let split = MeshChange::Split {
            server: "odin".into(),
            lost: vec!["spark".into(), "thor".into()],
        };
        assert_eq!(
            alert_for("odin-a", &split),
            (
                AlertEvent::MeshSplit,
                "Agent odin-a: server odin lost its mesh link to spark, thor; only its own users reach the agent.".into()
            )
        );
        let healed = MeshChange::Healed {
            server: "odin".into(),
            peers: vec!["spark".into()],
        };
        assert_eq!(
            alert_for("odin-a", &healed),
            (
                AlertEvent::MeshHealed,
                "Agent odin-a: server odin is linked to the mesh again (spark).".into()
            )
        );
    }
}
