//! The `irc` actor: one agent's IRC connection that survives anything.
//!
//! It owns the connection ([`conn`]), registers (CAP LS 302, optional SASL PLAIN, NICK/USER,
//! a registration deadline, 433/432 handling), keeps the link alive with its own PINGs
//! (a missing PONG means a dead link), reconnects with jittered exponential backoff and
//! rejoins every channel it was in (at most [`channels::MAX_CHANNELS`]). Sends are
//! validated, split to fit 512 bytes and queued by priority in the connection's [`outbox`]:
//! urgent lines first, replies paced by a token bucket, presence and courtesy notices only
//! when no reply waits and never on the replies' budget; while the link is down sends wait
//! in a bounded queue. Inbound lines fill
//! Culture's per-target buffer and become [`IrcEvent`]s for the agent's other actors.
//!
//! Connection states:
//!
//! | state         | left by                                                   |
//! |---------------|-----------------------------------------------------------|
//! | `connecting`  | TCP/TLS up → `registering`; failure → `waiting`           |
//! | `registering` | 001 → `connected`; deadline, 432, EOF → `waiting`         |
//! | `connected`   | EOF, error, keepalive timeout, `disconnect` fault → `waiting` |
//! | `waiting`     | the backoff delay (1 s doubling to 60 s) → `connecting`   |

mod api;
pub mod buffer;
mod channels;
mod conn;
pub mod dedup;
mod federation;
pub mod flood;
mod inbound;
pub mod intake;
mod joined;
pub mod mention;
pub mod mesh;
mod outbound;
mod outbox;
mod query;
pub mod room;
mod settings;
pub mod text;

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};
use tokio::sync::broadcast;
use tokio::time::Instant;

pub use api::{
    InboundMessage, IrcError, IrcEvent, IrcStatus, MessageKind, Presence, Query, ReplyLine,
    SendPriority, SendReport,
};
pub use buffer::BufferedMessage;
pub use conn::ConnEvent;
pub use intake::{Addressed, INBOUND_WINDOW, IntakePath};
pub use settings::{FloodSettings, IrcSettings, SaslPlain, TlsSettings, TraceTagMode};

use crate::child::{
    ChildFactory, ChildHandle, ControlError, ControlMsg, FaultKind, Report, spawn_linked,
};
use crate::fault;
use crate::link::Link;
use crate::restart::{self, RestartPolicy};
use buffer::MessageBuffer;
use channels::Channels;
use conn::Connection;
use mention::Mentions;
use query::Queries;

/// DM keys beyond this are evicted oldest first (channels count too).
const MAX_BUFFER_KEYS: usize = 1000;

/// The actor.
pub struct Irc;

/// A thread operation on agentirc (`THREAD CREATE|REPLY`, `THREADCLOSE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadOp {
    /// `THREAD CREATE <ch> <name> :<first line>`, then `THREAD REPLY` for the rest.
    Create {
        /// Channel.
        channel: String,
        /// Thread name.
        thread: String,
        /// Text (may span lines).
        text: String,
    },
    /// `THREAD REPLY <ch> <name> :<line>` per line.
    Reply {
        /// Channel.
        channel: String,
        /// Thread name.
        thread: String,
        /// Text (may span lines).
        text: String,
    },
    /// `THREADCLOSE <ch> <name> :<summary on one line>`.
    Close {
        /// Channel.
        channel: String,
        /// Thread name.
        thread: String,
        /// Summary (joined to one line).
        summary: String,
    },
}

/// Messages of the [`Irc`] actor.
#[derive(Debug)]
pub enum IrcMessage {
    /// Supervisor and operator requests (status, faults: `disconnect`, `panic`, `hang`).
    Control(ControlMsg),
    /// A connection task reports.
    Conn(ConnEvent),
    /// The reconnect delay elapsed.
    Reconnect {
        /// Ignored unless it matches the current reconnect epoch.
        epoch: u64,
    },
    /// The registration deadline of a connection passed.
    RegistrationDeadline {
        /// The connection.
        conn: u64,
    },
    /// Keepalive check of a connection.
    Keepalive {
        /// The connection.
        conn: u64,
    },
    /// agentirc PRESENCE heartbeat while busy.
    PresenceBeat {
        /// The connection.
        conn: u64,
    },
    /// A query's reply time is up.
    QueryExpired {
        /// The query id.
        id: u64,
    },
    /// `PRIVMSG` (or `NOTICE`) `text` to a channel or nick; multi-line text becomes several lines.
    Send {
        /// `#channel` or nick.
        target: String,
        /// The text.
        text: String,
        /// NOTICE instead of PRIVMSG.
        notice: bool,
        /// Require the channel to be joined (Culture's `irc_send`; `irc_ask` does not).
        require_joined: bool,
        /// `Normal` for replies and sends; `Low` for courtesy notices (see [`SendPriority`]).
        priority: SendPriority,
        /// The work this continues.
        trace: crate::trace::TraceCtx,
        /// How many lines, and whether they are queued.
        reply: RpcReplyPort<Result<SendReport, IrcError>>,
    },
    /// Join a channel (kept across reconnects; refused beyond [`channels::MAX_CHANNELS`]).
    Join {
        /// The channel.
        channel: String,
        /// The work this continues.
        trace: crate::trace::TraceCtx,
        /// Done (or queued until the link is up).
        reply: RpcReplyPort<Result<(), IrcError>>,
    },
    /// Leave a channel (its buffer is kept).
    Part {
        /// The channel.
        channel: String,
        /// The work this continues.
        trace: crate::trace::TraceCtx,
        /// Done.
        reply: RpcReplyPort<Result<(), IrcError>>,
    },
    /// `TOPIC <ch>` (query) or `TOPIC <ch> :<topic>` (set; empty clears).
    Topic {
        /// The channel.
        channel: String,
        /// `None` asks; the answer lands in the buffer.
        topic: Option<String>,
        /// The work this continues.
        trace: crate::trace::TraceCtx,
        /// Done.
        reply: RpcReplyPort<Result<(), IrcError>>,
    },
    /// An agentirc thread operation.
    Thread {
        /// What to do.
        op: ThreadOp,
        /// The work this continues.
        trace: crate::trace::TraceCtx,
        /// Lines sent or queued.
        reply: RpcReplyPort<Result<SendReport, IrcError>>,
    },
    /// A multi-line server query (WHO, HISTORY, THREADS, ROOMMETA, TAGS, PRESENCE LIST).
    Query {
        /// The query.
        query: Query,
        /// The work this continues.
        trace: crate::trace::TraceCtx,
        /// The reply lines.
        reply: RpcReplyPort<Result<Vec<ReplyLine>, IrcError>>,
    },
    /// Culture's destructive read of a buffer key (`#channel` or `DM:<nick>`).
    Read {
        /// The buffer key.
        key: String,
        /// At most this many (the newest).
        limit: usize,
        /// Oldest first.
        reply: RpcReplyPort<Vec<BufferedMessage>>,
    },
    /// A thread's messages from the buffer (does not move the read cursor).
    ReadThread {
        /// The channel.
        key: String,
        /// The thread name.
        thread: String,
        /// At most this many.
        limit: usize,
        /// Oldest first.
        reply: RpcReplyPort<Vec<BufferedMessage>>,
    },
    /// Channels joined, in join order.
    Channels {
        /// The list.
        reply: RpcReplyPort<Vec<String>>,
    },
    /// Every nick seen in any buffer (for "Mentioned nick not found" warnings).
    KnownNicks {
        /// The set.
        reply: RpcReplyPort<BTreeSet<String>>,
    },
    /// agentirc PRESENCE state (heartbeat while busy).
    SetPresence {
        /// The state.
        state: Presence,
        /// What the agent is doing, if busy.
        task: Option<String>,
    },
    /// The connection's status.
    Status {
        /// The status.
        reply: RpcReplyPort<IrcStatus>,
    },
}

impl From<ControlMsg> for IrcMessage {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// What an [`Irc`] instance starts with.
#[derive(Debug, Clone)]
pub struct IrcArgs {
    /// Connection settings.
    pub settings: IrcSettings,
    /// Where events go (created once per agent; survives restarts of the actor).
    pub events: broadcast::Sender<IrcEvent>,
    /// Set to this instance while it runs, so other actors reach the current one.
    pub link: Link<IrcMessage>,
    /// Where mentions and DMs go, losslessly (the reader's window bounds the way there).
    pub intake: IntakePath,
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Registering,
    Connected,
    Waiting,
}

/// Which kind of server we talk to (from its CAP LS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Unknown,
    Agentirc,
    Ircv3,
}

/// Per-connection registration progress.
#[derive(Debug, Default)]
struct Registration {
    offered: Vec<String>,
    acked: BTreeSet<String>,
    cap_ended: bool,
    nick_attempt: u32,
    /// A JOIN echo beyond the channel cap was ignored (warned once per connection).
    over_cap_warned: bool,
}

/// The actor's state.
pub struct IrcState {
    settings: IrcSettings,
    events: broadcast::Sender<IrcEvent>,
    intake: IntakePath,
    /// The window place of the line being handled (taken by a mention or DM).
    holding: Option<intake::Hold>,
    link: Link<IrcMessage>,
    myself: ActorRef<IrcMessage>,
    phase: Phase,
    conn: Option<Connection>,
    next_conn: u64,
    reconnect_epoch: u64,
    attempt: u32,
    reg: Registration,
    flavor: Flavor,
    nick: String,
    mask_len: Option<usize>,
    channels: Channels,
    /// The channels joined at run time, remembered across restarts.
    joined: joined::Joined,
    pending: VecDeque<(String, crate::trace::TraceCtx)>,
    buffer: MessageBuffer,
    mentions: Mentions,
    queries: Queries,
    presence: Presence,
    presence_task: Option<String>,
    last_rx: Instant,
    ping_sent: Option<Instant>,
    connects: u64,
    last_error: Option<String>,
    nick_rejected: bool,
    notices_dropped: u64,
    /// The server's name (the source of its 001), once welcomed.
    server_name: Option<String>,
    /// The server's mesh links, from `#system` events (agentirc).
    mesh: mesh::Mesh,
    /// DMs from other servers of the mesh, to answer once.
    duplicates: dedup::MeshDuplicates,
}

impl Actor for Irc {
    type Msg = IrcMessage;
    type State = IrcState;
    type Arguments = IrcArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<IrcMessage>,
        args: IrcArgs,
    ) -> Result<IrcState, ActorProcessingErr> {
        args.link.set(myself.clone());
        let settings = args.settings;
        Ok(IrcState {
            buffer: MessageBuffer::new(settings.buffer_size, MAX_BUFFER_KEYS),
            mentions: Mentions::new(&settings.nick),
            nick: settings.nick.clone(),
            channels: configured_channels(&settings.channels),
            joined: joined::Joined::load(settings.joined_file.clone()),
            events: args.events,
            intake: args.intake,
            holding: None,
            link: args.link,
            myself,
            phase: Phase::Waiting,
            conn: None,
            next_conn: 0,
            reconnect_epoch: 0,
            attempt: 0,
            reg: Registration::default(),
            flavor: Flavor::Unknown,
            mask_len: None,
            pending: VecDeque::new(),
            queries: Queries::default(),
            presence: Presence::Idle,
            presence_task: None,
            last_rx: Instant::now(),
            ping_sent: None,
            connects: 0,
            last_error: None,
            nick_rejected: false,
            notices_dropped: 0,
            server_name: None,
            mesh: mesh::Mesh::default(),
            duplicates: dedup::MeshDuplicates::default(),
            settings,
        })
    }

    async fn post_start(
        &self,
        _myself: ActorRef<IrcMessage>,
        state: &mut IrcState,
    ) -> Result<(), ActorProcessingErr> {
        for channel in state.joined.channels().to_vec() {
            if state.channels.insert(&channel).is_err() {
                tracing::warn!(channel = %channel, "a remembered channel is over the channel limit; not rejoined");
            }
        }
        state.connect();
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<IrcMessage>,
        msg: IrcMessage,
        state: &mut IrcState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            IrcMessage::Control(control) => return state.on_control(control).await,
            IrcMessage::Conn(event) => state.on_conn(event),
            IrcMessage::Reconnect { epoch } => state.on_reconnect(epoch),
            IrcMessage::RegistrationDeadline { conn } => state.on_registration_deadline(conn),
            IrcMessage::Keepalive { conn } => state.on_keepalive(conn),
            IrcMessage::PresenceBeat { conn } => state.on_presence_beat(conn),
            IrcMessage::QueryExpired { id } => state.queries.expire(id),
            IrcMessage::Send {
                target,
                text,
                notice,
                require_joined,
                priority,
                trace,
                reply,
            } => {
                let how = outbound::How {
                    notice,
                    require_joined,
                    priority,
                };
                let _ = reply.send(state.send_text(&target, &text, how, &trace));
            }
            IrcMessage::Join {
                channel,
                trace,
                reply,
            } => {
                let _ = reply.send(state.join(&channel, &trace));
            }
            IrcMessage::Part {
                channel,
                trace,
                reply,
            } => {
                let _ = reply.send(state.part(&channel, &trace));
            }
            IrcMessage::Topic {
                channel,
                topic,
                trace,
                reply,
            } => {
                let _ = reply.send(state.topic(&channel, topic.as_deref(), &trace));
            }
            IrcMessage::Thread { op, trace, reply } => {
                let _ = reply.send(state.thread(op, &trace));
            }
            IrcMessage::Query {
                query,
                trace,
                reply,
            } => state.query(query, &trace, reply),
            IrcMessage::Read { key, limit, reply } => {
                let _ = reply.send(state.buffer.read(&key, limit));
            }
            IrcMessage::ReadThread {
                key,
                thread,
                limit,
                reply,
            } => {
                let _ = reply.send(state.buffer.read_thread(&key, &thread, limit));
            }
            IrcMessage::Channels { reply } => {
                let _ = reply.send(state.channels.to_vec());
            }
            IrcMessage::KnownNicks { reply } => {
                let _ = reply.send(state.buffer.known_nicks());
            }
            IrcMessage::SetPresence {
                state: presence,
                task,
            } => {
                state.set_presence(presence, task);
            }
            IrcMessage::Status { reply } => {
                let _ = reply.send(state.status());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<IrcMessage>,
        state: &mut IrcState,
    ) -> Result<(), ActorProcessingErr> {
        state.link.clear(&state.myself);
        state.quit("daemon shutdown").await;
        Ok(())
    }
}

impl IrcState {
    /// Opens a new connection and queues the registration lines.
    fn connect(&mut self) {
        self.next_conn += 1;
        let id = self.next_conn;
        self.reg = Registration::default();
        self.nick = self.settings.nick.clone();
        self.mask_len = None;
        self.ping_sent = None;
        self.last_rx = Instant::now();
        self.phase = Phase::Connecting;
        let conn = Connection::open(id, &self.settings, &self.intake, self.myself.clone());
        conn.send_urgent("CAP LS 302".to_owned());
        conn.send_urgent(format!("NICK {}", self.nick));
        conn.send_urgent(format!("USER {} 0 * :{}", self.user(), self.nick));
        self.conn = Some(conn);
        let deadline = self.settings.registration_timeout;
        let myself = self.myself.clone();
        myself.send_after(deadline, move || IrcMessage::RegistrationDeadline {
            conn: id,
        });
    }

    /// The USER name: the nick's part after the server prefix, alphanumerics, at most 10.
    fn user(&self) -> String {
        let nick = &self.settings.nick;
        let short = nick
            .strip_prefix(&format!("{}-", self.settings.server_name))
            .unwrap_or(nick);
        let user: String = short
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(10)
            .collect();
        if user.is_empty() {
            "codexd".to_owned()
        } else {
            user
        }
    }

    fn current_conn(&self, conn: u64) -> bool {
        self.conn.as_ref().is_some_and(|c| c.id == conn)
    }

    fn on_conn(&mut self, event: ConnEvent) {
        match event {
            ConnEvent::Up { conn } if self.current_conn(conn) => {
                self.phase = Phase::Registering;
                self.last_rx = Instant::now();
                let tick = self.keepalive_tick();
                let handle = crate::grid::send_interval(&self.myself, tick, move || {
                    IrcMessage::Keepalive { conn }
                });
                if let Some(c) = self.conn.as_mut() {
                    c.add_timer(handle);
                }
            }
            ConnEvent::Line { conn, line, hold } if self.current_conn(conn) => {
                self.on_read(&line, hold);
            }
            ConnEvent::Down { conn, reason } if self.current_conn(conn) => self.link_down(reason),
            _ => {}
        }
    }

    /// Handles one read line holding its place in the inbound window: a mention or DM
    /// takes the place along to the intake, any other line gives it back when handled.
    fn on_read(&mut self, line: &str, hold: Option<intake::Hold>) {
        self.holding = hold;
        self.on_line(line);
        self.holding = None;
    }

    /// How often the keepalive check runs: often enough to notice both deadlines. With the
    /// defaults (90 s, 60 s) that is [`crate::grid::IDLE_ROUND`] (24.576 s), the period of the
    /// default health pings, so both fall on the same grid points: one wake-up for both.
    /// Shorter deadlines get a check every quarter of the shorter one.
    fn keepalive_tick(&self) -> Duration {
        let shorter = self.settings.keepalive.min(self.settings.keepalive_timeout);
        match shorter / 2 >= crate::grid::IDLE_ROUND {
            true => crate::grid::IDLE_ROUND,
            false => (shorter / 4).max(Duration::from_millis(50)),
        }
    }

    /// The link is gone: fail pending queries, tell the others, schedule a reconnect.
    fn link_down(&mut self, reason: String) {
        let was_connected = self.phase == Phase::Connected;
        self.conn = None;
        self.queries.fail_all(IrcError::NotConnected);
        tracing::warn!(
            server = %self.settings.server(),
            reason = %reason,
            "irc link down"
        );
        self.last_error = Some(reason.clone());
        if was_connected {
            let _ = self.events.send(IrcEvent::Disconnected { reason });
        }
        self.schedule_reconnect();
    }

    fn schedule_reconnect(&mut self) {
        self.phase = Phase::Waiting;
        self.reconnect_epoch += 1;
        let epoch = self.reconnect_epoch;
        let delay = if self.nick_rejected {
            self.settings.reconnect_max
        } else {
            self.reconnect_delay()
        };
        self.attempt = self.attempt.saturating_add(1);
        tracing::info!(delay_s = delay.as_secs_f64(), "reconnecting to irc");
        self.myself
            .send_after(delay, move || IrcMessage::Reconnect { epoch });
    }

    /// Jittered exponential backoff from `reconnect_min` to `reconnect_max`.
    fn reconnect_delay(&self) -> Duration {
        let policy = RestartPolicy {
            backoff_base: self.settings.reconnect_min,
            backoff_factor: 2.0,
            backoff_cap: self.settings.reconnect_max,
            jitter: 0.25,
            ..RestartPolicy::default()
        };
        restart::backoff(&policy, self.attempt, fastrand::f64())
    }

    fn on_reconnect(&mut self, epoch: u64) {
        if epoch == self.reconnect_epoch && self.phase == Phase::Waiting {
            self.connect();
        }
    }

    fn on_registration_deadline(&mut self, conn: u64) {
        if self.current_conn(conn) && matches!(self.phase, Phase::Connecting | Phase::Registering) {
            let secs = self.settings.registration_timeout.as_secs_f64();
            self.link_down(format!("not welcomed by the server within {secs}s"));
        }
    }

    /// Sends our PING after `keepalive` of silence; drops the link when the answer (or any
    /// line) does not come within `keepalive_timeout` — a half-open TCP link looks like this.
    fn on_keepalive(&mut self, conn: u64) {
        if !self.current_conn(conn) {
            return;
        }
        let now = Instant::now();
        if let Some(sent) = self.ping_sent {
            if now.duration_since(sent) >= self.settings.keepalive_timeout {
                let secs = self.settings.keepalive_timeout.as_secs_f64();
                self.link_down(format!("no reply to keepalive PING within {secs}s"));
            }
            return;
        }
        if now.duration_since(self.last_rx) >= self.settings.keepalive {
            self.ping_sent = Some(now);
            self.send_urgent("PING :codexd".to_owned());
        }
        if self.phase == Phase::Connected && self.nick != self.settings.nick {
            let wanted = self.settings.nick.clone();
            self.send_urgent(format!("NICK {wanted}"));
        }
    }

    async fn on_control(&mut self, control: ControlMsg) -> Result<(), ActorProcessingErr> {
        match control {
            ControlMsg::Fault {
                path,
                kind: FaultKind::Disconnect,
                reply,
                ..
            } if path.is_empty() => {
                let result = match self.conn.as_mut() {
                    Some(conn) => {
                        tracing::warn!("fault injected: dropping the irc connection");
                        conn.drop_link();
                        Ok(())
                    }
                    None => Err(ControlError::NotRunning {
                        name: "irc connection".to_owned(),
                        state: self.phase_name().to_owned(),
                    }),
                };
                let _ = reply.send(result);
                Ok(())
            }
            ControlMsg::Status { reply, .. } => {
                let _ = reply.send(Report::leaf(&self.status()));
                Ok(())
            }
            other => fault::handle_leaf(other, "irc").await,
        }
    }

    fn phase_name(&self) -> &'static str {
        if self.nick_rejected && self.phase != Phase::Connected {
            return "nick_rejected";
        }
        match self.phase {
            Phase::Connecting => "connecting",
            Phase::Registering => "registering",
            Phase::Connected => "connected",
            Phase::Waiting => "waiting",
        }
    }

    fn status(&self) -> IrcStatus {
        let state = self.phase_name().to_owned();
        let mut summary = format!("{state} {} as {}", self.settings.server(), self.nick);
        if !self.channels.is_empty() {
            let names: Vec<&str> = self.channels.iter().map(String::as_str).collect();
            summary.push_str(&format!(" in {}", names.join(",")));
        }
        if let Some(error) = self
            .last_error
            .as_ref()
            .filter(|_| self.phase != Phase::Connected)
        {
            summary.push_str(&format!(" ({error})"));
        }
        IrcStatus {
            state,
            server: self.settings.server(),
            flavor: match self.flavor {
                Flavor::Unknown => "unknown",
                Flavor::Agentirc => "agentirc",
                Flavor::Ircv3 => "ircv3",
            }
            .to_owned(),
            nick: self.nick.clone(),
            channels: self.channels.to_vec(),
            caps: self.reg.acked.iter().cloned().collect(),
            connects: self.connects,
            queued: self.pending.len(),
            notices_dropped: self.notices_dropped,
            duplicates_suppressed: self.duplicates.suppressed(),
            mesh: (self.flavor == Flavor::Agentirc).then(|| self.mesh.status()),
            last_error: self.last_error.clone(),
            summary,
        }
    }

    /// Says goodbye (PRESENCE offline on agentirc, QUIT) and waits briefly for it to go out.
    async fn quit(&mut self, reason: &str) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.phase == Phase::Connected && self.flavor == Flavor::Agentirc {
            conn.send_urgent(self.presence_line(Presence::Offline, None));
        }
        conn.close(format!("QUIT :{reason}"), Duration::from_secs(2))
            .await;
    }
}

/// The configured channels, at most [`channels::MAX_CHANNELS`] (the rest are left out,
/// with a warning).
fn configured_channels(configured: &[String]) -> Channels {
    let mut channels = Channels::new(channels::MAX_CHANNELS);
    let left_out = configured
        .iter()
        .filter(|name| channels.insert(name).is_err())
        .count();
    if left_out > 0 {
        tracing::warn!(
            left_out,
            limit = channels::MAX_CHANNELS,
            "more channels configured than an agent may be in; the last ones are not joined"
        );
    }
    channels
}

/// Spawns [`Irc`] instances for an agent; the event channel and link outlive restarts.
pub struct IrcFactory {
    args: IrcArgs,
}

impl IrcFactory {
    /// A factory for `settings`, publishing on `events`, handing mentions and DMs to
    /// `intake` and registering in `link`.
    pub fn new(
        settings: IrcSettings,
        events: broadcast::Sender<IrcEvent>,
        intake: IntakePath,
        link: Link<IrcMessage>,
    ) -> Self {
        Self {
            args: IrcArgs {
                settings,
                events,
                link,
                intake,
            },
        }
    }
}

impl ChildFactory for IrcFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        spawn_linked(Irc, self.args.clone(), supervisor)
    }
}
