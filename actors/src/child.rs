//! What a supervisor knows about a child: how to start it ([`ChildFactory`]), how to talk
//! to it without knowing its message type ([`ChildHandle`] + [`ControlMsg`]), and what it
//! reports ([`ChildStatus`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorRef, RpcReplyPort, SpawnErr};
use serde::{Deserialize, Serialize};

use crate::restart::RestartPolicy;
use crate::trace::TraceCtx;

/// Messages every supervised actor understands. Each child's message enum implements
/// `From<ControlMsg>`, so a supervisor can reach any child through its [`ChildHandle`].
#[derive(Debug)]
pub enum ControlMsg {
    /// Health check: answer at once. A child that does not answer within the policy's
    /// `health_timeout` is treated as hung.
    Ping(RpcReplyPort<()>),
    /// The status of the subtree below this actor (a leaf answers with no children).
    Status {
        /// The receiver answers within this; it gives its own children half of it.
        budget: Duration,
        /// The receiver's own detail and its children's statuses.
        reply: RpcReplyPort<Report>,
    },
    /// Inject a fault along `path` (child names below the receiver; empty = the receiver).
    Fault {
        /// Names of the descendants to walk through; empty means "this actor".
        path: Vec<String>,
        /// What to break.
        kind: FaultKind,
        /// Answered before the fault takes effect.
        reply: RpcReplyPort<Result<(), ControlError>>,
        /// The operator request this continues.
        trace: TraceCtx,
    },
    /// Close the circuit of the child at `path` (empty = every child of the receiver)
    /// and start it now if it is waiting.
    Reset {
        /// Names of the descendants to walk through.
        path: Vec<String>,
        /// Answered once the reset has been applied.
        reply: RpcReplyPort<Result<(), ControlError>>,
        /// The operator request this continues.
        trace: TraceCtx,
    },
}

/// A fault an operator can inject (`codexd fault <nick> <child> <kind>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// The child's actor panics.
    Panic,
    /// The child's handler returns an error.
    Error,
    /// The `irc` actor drops its TCP connection as a network fault would, and must notice
    /// and reconnect. Other children refuse it.
    Disconnect,
    /// The `runner` SIGKILLs its codex child, as an OOM kill or a crash would; the runner
    /// must notice, restart and replay the interrupted turn. Other children refuse it.
    Kill,
    /// The `webhook` actor's HTTP deliveries get no answer (each waits out its request
    /// timeout and counts as a timeout); a second `blackhole` or a restart of the actor
    /// clears it. Other children refuse it.
    Blackhole,
    /// The child stops answering (its handler blocks) for this long.
    Hang {
        /// How long the handler blocks.
        #[serde(with = "duration_ms")]
        duration: Duration,
    },
}

/// The longest `hang:<seconds>` fault: a day.
pub const MAX_HANG: Duration = Duration::from_secs(24 * 3600);

impl FaultKind {
    /// Parses the CLI form: `panic`, `error`, `disconnect`, `kill`, `blackhole`, `hang` (for
    /// `default_hang`) or `hang:<secs>`.
    pub fn parse(text: &str, default_hang: Duration) -> Result<Self, ControlError> {
        match text.split_once(':') {
            None if text == "panic" => Ok(Self::Panic),
            None if text == "error" => Ok(Self::Error),
            None if text == "disconnect" => Ok(Self::Disconnect),
            None if text == "kill" => Ok(Self::Kill),
            None if text == "blackhole" => Ok(Self::Blackhole),
            None if text == "hang" => Ok(Self::Hang {
                duration: default_hang,
            }),
            Some(("hang", secs)) => match secs.parse::<f64>() {
                Ok(s) if s > 0.0 && s <= MAX_HANG.as_secs_f64() => Ok(Self::Hang {
                    duration: Duration::from_secs_f64(s),
                }),
                Ok(_) => Err(ControlError::HangOutOfRange(secs.to_owned())),
                Err(_) => Err(ControlError::UnknownFault(text.to_owned())),
            },
            _ => Err(ControlError::UnknownFault(text.to_owned())),
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Panic => f.write_str("panic"),
            FaultKind::Error => f.write_str("error"),
            FaultKind::Disconnect => f.write_str("disconnect"),
            FaultKind::Kill => f.write_str("kill"),
            FaultKind::Blackhole => f.write_str("blackhole"),
            FaultKind::Hang { duration } => write!(f, "hang:{}", duration.as_secs_f64()),
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Why a control request was refused. The CLI maps these to exit codes, so they are typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum ControlError {
    /// No child of that name under that supervisor.
    #[error("no child named {name:?} (known: {known})")]
    NoSuchChild {
        /// The name asked for.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// The child exists but is not running (restarting, circuit open, stopped).
    #[error("{name} is not running (state: {state})")]
    NotRunning {
        /// The child.
        name: String,
        /// Its state name.
        state: String,
    },
    /// The fault name is not one this daemon knows.
    #[error(
        "unknown fault {0:?}: expected panic, error, hang, hang:<seconds>, disconnect, kill or blackhole"
    )]
    UnknownFault(String),
    /// `hang:<seconds>` outside `0 < seconds <= 86400` (`1e300` would overflow a duration).
    #[error("hang:{0} is out of range: a hang lasts more than 0 and at most 86400 seconds")]
    HangOutOfRange(String),
    /// The child does not support that fault (e.g. `disconnect` on anything but `irc`).
    #[error("{child} does not support the {fault} fault")]
    UnsupportedFault {
        /// The child.
        child: String,
        /// The fault.
        fault: String,
    },
    /// The actor could not be reached (it stopped while the request travelled).
    #[error("{0} did not answer")]
    Unreachable(String),
}

/// How a supervisor sends [`ControlMsg`]s to a child whose message type it does not know;
/// answers whether the child's mailbox took the message.
type ControlSender = Arc<dyn Fn(ControlMsg) -> bool + Send + Sync>;

/// A running child as its supervisor sees it.
#[derive(Clone)]
pub struct ChildHandle {
    cell: ActorCell,
    control: ControlSender,
}

impl ChildHandle {
    /// Wraps a spawned child whose message type accepts [`ControlMsg`].
    pub fn new<M>(actor: ActorRef<M>) -> Self
    where
        M: From<ControlMsg> + ractor::Message,
    {
        let cell = actor.get_cell();
        let control: ControlSender = Arc::new(move |msg| actor.cast(M::from(msg)).is_ok());
        Self { cell, control }
    }

    /// The child's actor cell (identity, stop, kill).
    pub fn cell(&self) -> &ActorCell {
        &self.cell
    }

    /// Sends a control message; false when the child's mailbox is closed (the message,
    /// and any reply port in it, is dropped).
    pub fn send(&self, msg: ControlMsg) -> bool {
        (self.control)(msg)
    }
}

impl fmt::Debug for ChildHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildHandle")
            .field("id", &self.cell.get_id())
            .finish()
    }
}

/// Spawns `actor` linked to `supervisor` and wraps it in a [`ChildHandle`]: the body of
/// every [`ChildFactory::spawn`].
pub fn spawn_linked<A>(
    actor: A,
    args: A::Arguments,
    supervisor: ActorCell,
) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>>
where
    A: Actor,
    A::Msg: From<ControlMsg>,
{
    Box::pin(async move {
        let (actor, _join) = Actor::spawn_linked(None, actor, args, supervisor).await?;
        Ok(ChildHandle::new(actor))
    })
}

/// Starts one kind of child, linked to `supervisor`. Called again on every restart.
pub trait ChildFactory: Send + Sync + 'static {
    /// Spawns a fresh instance. Must not block: slow work belongs in the child's own tasks.
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>>;
}

/// Whether a child is an agent (listed in status as one) or a daemon service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildRole {
    /// An agent subtree (Host level) or one of an agent's children (agent level).
    Member,
    /// Infrastructure such as the control socket; listed separately.
    Service,
}

/// Everything a supervisor needs to run one child.
#[derive(Clone)]
pub struct ChildSpec {
    /// Unique among the supervisor's children; used in status, faults and telemetry.
    pub name: String,
    /// Member or service.
    pub role: ChildRole,
    /// Restart policy for this child.
    pub policy: RestartPolicy,
    /// How to start it.
    pub factory: Arc<dyn ChildFactory>,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish()
    }
}

/// A child's lifecycle state as shown by `codexd status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    /// Being spawned.
    Starting,
    /// Up.
    Running,
    /// Failed; a restart is scheduled.
    Restarting,
    /// Failed too often; waiting for the cooldown (or a manual reset).
    CircuitOpen,
    /// Stopped on purpose.
    Stopped,
}

/// What a child tells its supervisor about itself: its own detail (a leaf's connection
/// state, say) and the subtree below it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Child-specific status (`irc`: server, nick, channels, connection state).
    pub detail: Option<serde_json::Value>,
    /// The children's statuses (supervisors only).
    pub children: Vec<ChildStatus>,
}

impl Report {
    /// A leaf's report: its detail, no children.
    pub fn leaf(detail: &impl Serialize) -> Self {
        Self {
            detail: serde_json::to_value(detail).ok(),
            children: Vec::new(),
        }
    }
}

/// One child in `codexd status`; agents carry their own children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildStatus {
    /// The child's name (the nick for agents).
    pub name: String,
    /// Member or service.
    #[serde(skip)]
    pub service: bool,
    /// Lifecycle state.
    pub state: ChildState,
    /// Restarts since the daemon started or the last reset.
    pub restarts: u32,
    /// `closed`, `open` or `half_open`.
    pub circuit: String,
    /// The most recent failure, if any.
    pub last_error: Option<String>,
    /// The ractor actor id of the running instance (changes on every restart).
    pub actor_id: Option<String>,
    /// Seconds since the running instance started.
    pub uptime_s: Option<f64>,
    /// Child-specific status, if the child reports any (`irc`: connection state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    /// The subtree below (agents only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ChildStatus>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{ControlError, FaultKind};

    #[test]
    fn fault_names_parse_and_hang_durations_stay_in_range() {
        let default = Duration::from_secs(30);
        let table: [(&str, Result<FaultKind, ControlError>); 8] = [
            ("kill", Ok(FaultKind::Kill)),
            ("hang", Ok(FaultKind::Hang { duration: default })),
            (
                "hang:1.5",
                Ok(FaultKind::Hang {
                    duration: Duration::from_millis(1500),
                }),
            ),
            (
                "hang:86400",
                Ok(FaultKind::Hang {
                    duration: Duration::from_secs(86400),
                }),
            ),
            (
                "hang:1e300",
                Err(ControlError::HangOutOfRange("1e300".into())),
            ),
            ("hang:0", Err(ControlError::HangOutOfRange("0".into()))),
            ("hang:NaN", Err(ControlError::HangOutOfRange("NaN".into()))),
            (
                "hang:soon",
                Err(ControlError::UnknownFault("hang:soon".into())),
            ),
        ];
        for (text, want) in table {
            assert_eq!(FaultKind::parse(text, default), want, "{text}");
        }
    }
}
