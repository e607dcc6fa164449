//! Supervision transitions as one typed event: each [`TransitionEvent::emit`] writes a log
//! line, a span (with the event inside it, so OTLP shows a span event) and metrics.
//!
//! | transition       | level | metric effect                                        |
//! |------------------|-------|------------------------------------------------------|
//! | started          | info  | transitions +1                                       |
//! | failed           | warn  | transitions +1                                       |
//! | restarting       | info  | transitions +1                                       |
//! | circuit_opened   | error | transitions +1, circuits_open +1                     |
//! | half_open        | info  | transitions +1                                       |
//! | circuit_closed   | info  | transitions +1, circuits_open −1                     |
//! | reset            | info  | transitions +1 (circuits_open −1 if it was open)     |
//! | added            | info  | transitions +1                                       |
//! | removed          | info  | transitions +1 (circuits_open −1 if it was open)     |

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;

/// Meter for codexd's own instruments.
pub const METER: &str = "codexd";

/// One step in a child's life.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// A new instance is up.
    Started,
    /// The instance failed (panic, error, exit, hang, failed start).
    Failed {
        /// What happened.
        error: String,
    },
    /// A restart is scheduled.
    Restarting {
        /// Backoff delay.
        delay: Duration,
        /// Consecutive restart number.
        attempt: u32,
    },
    /// Too many failures: no restarts until the cooldown elapsed.
    CircuitOpened {
        /// How long the circuit stays open.
        cooldown: Duration,
        /// Failures counted.
        failures: u32,
    },
    /// The cooldown elapsed: one attempt.
    HalfOpen,
    /// The half-open attempt stayed up: back to normal.
    CircuitClosed,
    /// An operator reset the circuit.
    Reset {
        /// Whether the circuit was open or half-open before.
        was_open: bool,
    },
    /// A child was added at run time (SIGHUP).
    Added,
    /// A child was stopped and removed (SIGHUP).
    Removed {
        /// Whether its circuit was open or half-open.
        was_open: bool,
    },
}

impl Transition {
    /// The snake_case name used as the `transition` attribute.
    pub fn name(&self) -> &'static str {
        match self {
            Transition::Started => "started",
            Transition::Failed { .. } => "failed",
            Transition::Restarting { .. } => "restarting",
            Transition::CircuitOpened { .. } => "circuit_opened",
            Transition::HalfOpen => "half_open",
            Transition::CircuitClosed => "circuit_closed",
            Transition::Reset { .. } => "reset",
            Transition::Added => "added",
            Transition::Removed { .. } => "removed",
        }
    }
}

/// A transition of `child` under `supervisor` (`host` or an agent's nick).
#[derive(Debug)]
pub struct TransitionEvent<'a> {
    /// The supervisor's name.
    pub supervisor: &'a str,
    /// The child's name.
    pub child: &'a str,
    /// What happened.
    pub transition: Transition,
}

impl TransitionEvent<'_> {
    /// Writes the log line, the span event and the metrics; answers the transition's span,
    /// for work that follows from it (its alerts).
    pub fn emit(&self) -> tracing::Span {
        let name = self.transition.name();
        // A root of its own: a transition is not part of whatever the supervisor did last.
        let span = crate::trace::TraceCtx::default().follow(tracing::info_span!(
            "supervisor.transition",
            supervisor = self.supervisor,
            child = self.child,
            transition = name
        ));
        let entered = span.enter();
        let (sup, child) = (self.supervisor, self.child);
        match &self.transition {
            Transition::Failed { error } => {
                tracing::warn!(supervisor = sup, child, transition = name, error = %error, "child failed")
            }
            Transition::Restarting { delay, attempt } => {
                tracing::info!(
                    supervisor = sup,
                    child,
                    transition = name,
                    delay_s = delay.as_secs_f64(),
                    attempt,
                    "child restarting"
                )
            }
            Transition::CircuitOpened { cooldown, failures } => tracing::error!(
                supervisor = sup,
                child,
                transition = name,
                cooldown_s = cooldown.as_secs_f64(),
                failures,
                "circuit opened; child stays down until the cooldown elapses or an operator resets it"
            ),
            _ => tracing::info!(supervisor = sup, child, transition = name, "child {name}"),
        }
        self.record_metrics();
        drop(entered);
        span
    }

    fn record_metrics(&self) {
        let meter = opentelemetry::global::meter(METER);
        let attrs = [
            KeyValue::new("supervisor", self.supervisor.to_owned()),
            KeyValue::new("child", self.child.to_owned()),
        ];
        let mut with_transition = attrs.to_vec();
        with_transition.push(KeyValue::new("transition", self.transition.name()));
        meter
            .u64_counter("codexd.supervisor.transitions")
            .with_description("Supervision transitions by supervisor, child and transition")
            .build()
            .add(1, &with_transition);
        let delta = match self.transition {
            Transition::CircuitOpened { .. } => 1,
            Transition::CircuitClosed => -1,
            Transition::Reset { was_open: true } | Transition::Removed { was_open: true } => -1,
            _ => return,
        };
        meter
            .i64_up_down_counter("codexd.supervisor.circuits_open")
            .with_description("Children whose circuit is open")
            .build()
            .add(delta, &attrs);
    }
}

/// A hook a supervisor calls with every transition of its children and the child's last
/// error (an agent's supervisor turns circuit transitions into webhook alerts). It runs
/// inside the supervisor's handler, so it must not block: cast, never call.
#[derive(Clone)]
pub struct TransitionObserver(Arc<ObserveFn>);

/// The observer's callback: the transition and the child's last error.
type ObserveFn = dyn Fn(&TransitionEvent<'_>, Option<&str>) + Send + Sync;

impl TransitionObserver {
    /// Wraps `observe`.
    pub fn new(
        observe: impl Fn(&TransitionEvent<'_>, Option<&str>) + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(observe))
    }

    /// Reports one transition and the child's last error.
    pub fn observe(&self, event: &TransitionEvent<'_>, last_error: Option<&str>) {
        (self.0)(event, last_error)
    }
}

impl fmt::Debug for TransitionObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TransitionObserver")
    }
}
