//! Supervision transitions of an agent's children as alerts: the agent supervisor's
//! [`TransitionObserver`] casts them to the webhook's link (never waits on it).
//!
//! | transition       | event             | message                                                                               |
//! |------------------|-------------------|---------------------------------------------------------------------------------------|
//! | `circuit_opened` | `circuit_open`    | `Agent <nick>: <child> failed <n> time(s); circuit open, no restart for <s>s (last error: <e>).` |
//! | `circuit_opened` of `runner` or of its codex process (`codex process-<n>`) | `agent_spiraling` too | `Agent <nick> has crashed <n> times in <window>s — escalating, not restarting.` (Culture's) |
//! | `circuit_closed` | `circuit_closed`  | `Agent <nick>: <child> is stable again; circuit closed.`                              |
//! | `restarting`     | `agent_restarted` | `Agent <nick>: <child> restarting in <s>s (attempt <n>; last error: <e>).`            |
//! | anything else    | —                 | —                                                                                     |
//!
//! The last error is [redacted](crate::redact::text) (before it is cut, so no secret is
//! cut in half and left unmasked), put on one line (control characters become spaces)
//! and cut to [`MAX_ERROR_CHARS`] characters, so the alert is one IRC line.

use std::time::Duration;

use super::{Alert, AlertEvent, WebhookMessage};
use crate::events::{Transition, TransitionEvent, TransitionObserver};
use crate::link::Link;
use crate::redact;
use crate::trace::TraceCtx;

/// The longest last-error text an alert quotes.
pub const MAX_ERROR_CHARS: usize = 200;

/// An observer for `nick`'s supervisor that casts alerts to `webhook`; `window` is the
/// restart policy's failure window (for Culture's crash-loop text). The webhook's own
/// transitions are not reported (it could not deliver them while down).
pub fn observer(nick: &str, webhook: Link<WebhookMessage>, window: Duration) -> TransitionObserver {
    let nick = nick.to_owned();
    TransitionObserver::new(move |event, last_error| {
        if event.child == "webhook" {
            return;
        }
        let Some(actor) = webhook.get() else {
            return;
        };
        for (kind, message) in alerts_for(&nick, event, last_error, window) {
            let alert = Alert {
                event: kind,
                nick: nick.clone(),
                message,
                trace: TraceCtx::current(),
            };
            let _ = actor.cast(WebhookMessage::Alert(alert));
        }
    })
}

/// The alerts a transition raises (see the module table).
pub fn alerts_for(
    nick: &str,
    event: &TransitionEvent<'_>,
    last_error: Option<&str>,
    window: Duration,
) -> Vec<(AlertEvent, String)> {
    let mut alerts: Vec<_> = alert_for(nick, event, last_error).into_iter().collect();
    let codex = event.child == "runner" || event.child.starts_with("codex ");
    if let (Transition::CircuitOpened { failures, .. }, true) = (&event.transition, codex) {
        alerts.push((
            AlertEvent::AgentSpiraling,
            format!(
                "Agent {nick} has crashed {failures} times in {}s \u{2014} escalating, not restarting.",
                window.as_secs_f64()
            ),
        ));
    }
    alerts
}

/// The codexd alert a transition raises, if any (see the module table).
pub fn alert_for(
    nick: &str,
    event: &TransitionEvent<'_>,
    last_error: Option<&str>,
) -> Option<(AlertEvent, String)> {
    let child = event.child;
    let error = one_line(last_error.unwrap_or("none"));
    match &event.transition {
        Transition::CircuitOpened { cooldown, failures } => Some((
            AlertEvent::CircuitOpen,
            format!(
                "Agent {nick}: {child} failed {failures} {}; circuit open, no restart for {}s (last error: {error}).",
                if *failures == 1 { "time" } else { "times" },
                cooldown.as_secs_f64()
            ),
        )),
        Transition::CircuitClosed => Some((
            AlertEvent::CircuitClosed,
            format!("Agent {nick}: {child} is stable again; circuit closed."),
        )),
        Transition::Restarting { delay, attempt } => Some((
            AlertEvent::AgentRestarted,
            format!(
                "Agent {nick}: {child} restarting in {}s (attempt {attempt}; last error: {error}).",
                delay.as_secs_f64()
            ),
        )),
        _ => None,
    }
}

fn one_line(text: &str) -> String {
    let flat: String = redact::text(text)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut words = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.chars().count() > MAX_ERROR_CHARS {
        words = words.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
    }
    words
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn event(child: &str, transition: Transition) -> TransitionEvent<'_> {
        TransitionEvent {
            supervisor: "spark-a",
            child,
            transition,
        }
    }

    #[test]
    fn transitions_become_alerts() {
        let long = "x".repeat(300);
        let cut = format!("{}…", "x".repeat(MAX_ERROR_CHARS));
        // Redacted, then cut: the raw text is over the limit, the redacted one is not.
        let secret = format!(
            "{} https://user:secret@host/x?token=abc failed",
            "x".repeat(170)
        );
        type Want = Option<(AlertEvent, String)>;
        let table: Vec<(Transition, Option<&str>, Want)> = vec![
            (
                Transition::CircuitOpened {
                    cooldown: Duration::from_secs(30),
                    failures: 3,
                },
                Some("exited: codex exit code 1;\nstderr: boom"),
                Some((
                    AlertEvent::CircuitOpen,
                    "Agent spark-a: runner failed 3 times; circuit open, no restart for 30s (last error: exited: codex exit code 1; stderr: boom).".into(),
                )),
            ),
            (
                Transition::CircuitClosed,
                None,
                Some((
                    AlertEvent::CircuitClosed,
                    "Agent spark-a: runner is stable again; circuit closed.".into(),
                )),
            ),
            (
                Transition::Restarting {
                    delay: Duration::from_millis(1500),
                    attempt: 2,
                },
                Some(&long),
                Some((
                    AlertEvent::AgentRestarted,
                    format!("Agent spark-a: runner restarting in 1.5s (attempt 2; last error: {cut})."),
                )),
            ),
            (
                Transition::CircuitOpened {
                    cooldown: Duration::from_secs(30),
                    failures: 3,
                },
                Some(&secret),
                Some((
                    AlertEvent::CircuitOpen,
                    format!("Agent spark-a: runner failed 3 times; circuit open, no restart for 30s (last error: {} https://host/x failed).", "x".repeat(170)),
                )),
            ),
            (Transition::Started, None, None),
            (Transition::HalfOpen, None, None),
            (
                Transition::Failed {
                    error: "boom".into(),
                },
                Some("boom"),
                None,
            ),
        ];
        for (transition, last_error, want) in table {
            let name = transition.name();
            let got = alert_for("spark-a", &event("runner", transition), last_error);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_runner_circuit_also_raises_cultures_spiraling_alert() {
        let open = Transition::CircuitOpened {
            cooldown: Duration::from_secs(60),
            failures: 3,
        };
        let window = Duration::from_secs(300);
        let runner = alerts_for("spark-a", &event("runner", open.clone()), None, window);
        let events: Vec<AlertEvent> = runner.iter().map(|(e, _)| *e).collect();
        assert_eq!(
            events,
            [AlertEvent::CircuitOpen, AlertEvent::AgentSpiraling]
        );
        assert_eq!(
            runner[1].1,
            "Agent spark-a has crashed 3 times in 300s \u{2014} escalating, not restarting."
        );
        let irc = alerts_for("spark-a", &event("irc", open), None, window);
        assert_eq!(
            irc.len(),
            1,
            "only the runner's crash loop is Culture's spiraling"
        );
        let closed = alerts_for(
            "spark-a",
            &event("runner", Transition::CircuitClosed),
            None,
            window,
        );
        assert_eq!(closed.len(), 1);
    }

    #[test]
    fn observer_casts_to_nobody_when_the_webhook_is_down() {
        let observer = observer("spark-a", Link::default(), Duration::from_secs(300));
        observer.observe(&event("runner", Transition::CircuitClosed), None);
    }
}
