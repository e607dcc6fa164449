//! Alerts about a whole agent. When the Host restarts an agent's subtree, or opens the
//! agent's circuit, the agent's own webhook is down with it; so the Host's observer hands
//! the alert to another agent's webhook, which sends it to the same channel and URL.
//!
//! | Host transition of agent `<nick>` | alert (as `<nick>`'s, child `agent`)                               |
//! |-----------------------------------|--------------------------------------------------------------------|
//! | `circuit_opened`                  | `circuit_open`: `Agent <nick>: agent failed <n> time(s); circuit open, …` |
//! | `circuit_closed`                  | `circuit_closed`                                                   |
//! | `restarting`                      | `agent_restarted` (off by default)                                 |
//!
//! The alert goes through the first other agent, in nick order, whose webhook runs (each
//! applies its own `webhooks.events` and dedup). With no other agent's webhook running it
//! cannot be sent: it is logged as an error, with the text, and counted in
//! [`AlertRelay::undelivered`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Alert, WebhookMessage, observe};
use crate::events::{TransitionEvent, TransitionObserver};
use crate::link::Link;
use crate::trace::TraceCtx;

/// The child name whole-agent alerts carry.
pub const AGENT: &str = "agent";

/// Every agent's webhook, by nick; cheap to clone (clones share).
#[derive(Debug, Clone, Default)]
pub struct AlertRelay {
    webhooks: Arc<Mutex<BTreeMap<String, Link<WebhookMessage>>>>,
    undelivered: Arc<AtomicU64>,
    mesh: super::mesh::MeshAlertGate,
}

impl AlertRelay {
    /// The gate that lets one agent per server raise each mesh alert.
    pub fn mesh_gate(&self) -> super::mesh::MeshAlertGate {
        self.mesh.clone()
    }

    /// `nick`'s webhook (replaces an earlier registration of the same nick).
    pub fn register(&self, nick: &str, webhook: Link<WebhookMessage>) {
        self.lock().insert(nick.to_owned(), webhook);
    }

    /// Whole-agent alerts that found no running webhook to carry them.
    pub fn undelivered(&self) -> u64 {
        self.undelivered.load(Ordering::Relaxed)
    }

    /// The Host's observer: an agent's own transitions as alerts (the module table);
    /// `window` is the restart policy's failure window (Culture's crash-loop text).
    pub fn observer(&self, window: Duration) -> TransitionObserver {
        let relay = self.clone();
        TransitionObserver::new(move |event, last_error| {
            let nick = event.child;
            if !relay.lock().contains_key(nick) {
                return; // a service (control, codex, audit), not an agent
            }
            let as_agent = TransitionEvent {
                supervisor: nick,
                child: AGENT,
                transition: event.transition.clone(),
            };
            for (kind, message) in observe::alerts_for(nick, &as_agent, last_error, window) {
                relay.send(Alert {
                    event: kind,
                    nick: nick.to_owned(),
                    message,
                    trace: TraceCtx::current(),
                });
            }
        })
    }

    /// Casts `alert` to the first other agent's running webhook.
    fn send(&self, alert: Alert) {
        let carrier = self
            .lock()
            .iter()
            .filter(|(nick, _)| **nick != alert.nick)
            .find_map(|(_, link)| link.get());
        match carrier {
            Some(webhook) if webhook.cast(WebhookMessage::Alert(alert.clone())).is_ok() => {}
            _ => {
                self.undelivered.fetch_add(1, Ordering::Relaxed);
                tracing::error!(agent.nick = %alert.nick, alert.event = alert.event.name(), text = %alert.message, "alert not sent: no other agent's webhook is running");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Link<WebhookMessage>>> {
        self.webhooks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use tokio::sync::mpsc;

    use super::*;
    use crate::events::Transition;
    use crate::webhook::AlertEvent;

    /// A stand-in webhook that forwards the alerts it gets.
    struct Catcher;

    impl Actor for Catcher {
        type Msg = WebhookMessage;
        type State = mpsc::UnboundedSender<Alert>;
        type Arguments = mpsc::UnboundedSender<Alert>;

        async fn pre_start(
            &self,
            _: ActorRef<WebhookMessage>,
            out: Self::Arguments,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(out)
        }

        async fn handle(
            &self,
            _: ActorRef<WebhookMessage>,
            msg: WebhookMessage,
            out: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            if let WebhookMessage::Alert(alert) = msg {
                let _ = out.send(alert);
            }
            Ok(())
        }
    }

    fn opened(child: &str) -> TransitionEvent<'_> {
        TransitionEvent {
            supervisor: "host",
            child,
            transition: Transition::CircuitOpened {
                cooldown: Duration::from_secs(10),
                failures: 1,
            },
        }
    }

    #[tokio::test]
    async fn a_whole_agents_circuit_is_alerted_through_another_agents_webhook() {
        let relay = AlertRelay::default();
        let (out, mut alerts) = mpsc::unbounded_channel();
        let (catcher, _join) = Actor::spawn(None, Catcher, out).await.expect("spawns");
        let (down, up) = (Link::default(), Link::default());
        up.set(catcher.clone());
        relay.register("spark-a", down);
        relay.register("spark-b", up);
        let observer = relay.observer(Duration::from_secs(300));

        observer.observe(&opened("spark-a"), Some("boom"));
        let alert = alerts.recv().await.expect("an alert");
        assert_eq!(alert.event, AlertEvent::CircuitOpen);
        assert_eq!(alert.nick, "spark-a");
        assert!(
            alert
                .message
                .starts_with("Agent spark-a: agent failed 1 time; circuit open"),
            "{}",
            alert.message
        );
        // A service's transition is not an agent's; spark-b's own has no other carrier.
        observer.observe(&opened("codex"), None);
        observer.observe(&opened("spark-b"), None);
        assert_eq!(relay.undelivered(), 1);
        assert!(alerts.try_recv().is_err());
        catcher.stop(None);
    }
}
