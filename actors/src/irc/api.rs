//! What other actors exchange with the `irc` actor: request results, errors, events and
//! status. These types are the contract the socket, runner and attention actors build on.

use serde::Serialize;

use super::text::FieldError;
use crate::trace::TraceCtx;

/// Why an `irc` request was refused. Nothing refused was sent or queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IrcError {
    /// A field would be unsafe on an IRC line (CR, LF, NUL, a space in a parameter, …).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// A send to a channel the agent has not joined (Culture's exact wording).
    #[error("Not joined to {channel}")]
    NotJoined {
        /// The channel.
        channel: String,
    },
    /// Nothing to send after dropping empty lines.
    #[error("Missing 'message'")]
    EmptyMessage,
    /// The link is down and the bounded send queue is full.
    #[error("not connected to IRC and the send queue is full ({limit} lines)")]
    QueueFull {
        /// The queue's capacity.
        limit: usize,
    },
    /// The link is up but its writer already holds this many lines (flood control paces
    /// them out); nothing was queued.
    #[error(
        "the IRC link is backed up: {limit} lines are already waiting to be sent (flood control); nothing was sent, try again later"
    )]
    Backlogged {
        /// The writer queue's capacity.
        limit: usize,
    },
    /// A query needs a live connection.
    #[error("not connected to IRC")]
    NotConnected,
    /// A join beyond the most channels an agent may be in.
    #[error(
        "cannot join {channel}: already in {limit} channels, the most an agent may be in; part one first"
    )]
    TooManyChannels {
        /// The channel refused.
        channel: String,
        /// The cap.
        limit: usize,
    },
    /// A [`SendPriority::Low`] notice was dropped: the link is down or its small queue is
    /// full. Counted in the status as `notices_dropped`.
    #[error("courtesy notice dropped: the link is down or {limit} notices already wait")]
    NoticeDropped {
        /// The low-priority queue's capacity.
        limit: usize,
    },
    /// The server did not finish answering a query in time.
    #[error("the IRC server did not answer {what} in time")]
    Timeout {
        /// The query.
        what: String,
    },
    /// The server refused a query with an error numeric.
    #[error("the IRC server refused {what}: {reason}")]
    Refused {
        /// The query.
        what: String,
        /// The server's text.
        reason: String,
    },
    /// The `irc` actor is not running (restarting, circuit open).
    #[error("the irc actor is not running")]
    Unavailable,
}

/// How a [`Send`](super::IrcMessage::Send) competes with the agent's other lines.
///
/// | priority | goes out                                  | paced by                      | when it cannot go      |
/// |----------|-------------------------------------------|-------------------------------|------------------------|
/// | `Normal` | in order with replies and commands        | the flood bucket (`flood_*`)  | queued while down; `Backlogged` when the writer is full |
/// | `Low`    | only while no normal line waits           | its own small bucket          | dropped (`NoticeDropped`, counted) |
///
/// `Low` is for courtesy notices such as a refused mention's: they never delay a reply nor
/// spend its budget, and are not recorded in the buffer (so a flood of refusals to many
/// nicks cannot evict real conversations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SendPriority {
    /// Replies, IPC and tool sends.
    #[default]
    Normal,
    /// Courtesy notices.
    Low,
}

/// What happened to an accepted send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SendReport {
    /// Wire lines the text became (after splitting lines and long lines).
    pub lines: usize,
    /// True when the link was down: the lines wait in the send queue and go out after
    /// the next welcome. Never reported as sent before that.
    pub queued: bool,
}

/// How an inbound line concerns the agent. Mentions, DMs and invitations go to the runner's
/// intake; ambient lines and notices are channel traffic (buffer and attention).
///
/// | kind      | line                                   | `key` / `reply_to`      | `sender`             | `text`          |
/// |-----------|----------------------------------------|-------------------------|----------------------|-----------------|
/// | `Mention` | `PRIVMSG #ch :… @<nick> …`             | `#ch` / `#ch`           | the prefix's nick    | the message     |
/// | `Direct`  | `PRIVMSG <nick> :…`                    | `DM:<peer>` / `<peer>`  | the prefix's nick    | the message     |
/// | `Ambient` | other `PRIVMSG #ch`                    | `#ch` / `#ch`           | the prefix's nick    | the message     |
/// | `Notice`  | `NOTICE #ch`                           | `#ch` / `#ch`           | the prefix's nick    | the message     |
/// | `Invite`  | `ROOMINVITE #room <nick> :<meta>`      | `#room` / `#room`       | `requestor`, else the prefix (the server) | the raw metadata |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A channel message that @-mentions the agent.
    Mention,
    /// A private message to the agent.
    Direct,
    /// Other channel traffic.
    Ambient,
    /// A channel NOTICE (never a mention).
    Notice,
    /// agentirc invites the agent to a room (`ROOMINVITE`); `text` is the raw `key=value;…`
    /// metadata ([`super::room::parse_room_meta`]). Not channel traffic: not buffered.
    Invite,
}

/// An inbound message worth telling other actors about.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The buffer key: `#channel` or `DM:<peer>`.
    pub key: String,
    /// Where a reply goes: the channel, or the sender for a DM.
    pub reply_to: String,
    /// The sender's nick.
    pub sender: String,
    /// The text, verbatim.
    pub text: String,
    /// Mention, DM, ambient, notice or invitation.
    pub kind: MessageKind,
    /// `[thread:<name>]` prefix or agentirc's thread tag.
    pub thread: Option<String>,
    /// The server's message id, when it sends one (dedup key for the journal).
    pub msgid: Option<String>,
    /// The trace of the `harness.irc.message.handle` span for this line.
    pub trace: TraceCtx,
}

/// Events the `irc` actor publishes to the agent's other actors.
#[derive(Debug, Clone, PartialEq)]
pub enum IrcEvent {
    /// Welcomed by the server (after every reconnect too).
    Connected {
        /// The nick the server gave us.
        nick: String,
    },
    /// The link went down; a reconnect is scheduled.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A channel message, mention or DM.
    Message(InboundMessage),
    /// The agent sent a PRIVMSG/NOTICE to a channel or nick (attention: the agent is
    /// engaged there).
    Sent {
        /// The channel or nick.
        target: String,
    },
    /// agentirc invited the agent to a room (`ROOMINVITE <#ch> <nick> :<meta>`). The same
    /// invitation goes to the intake as an [`InboundMessage`] of kind [`MessageKind::Invite`].
    RoomInvite {
        /// The room.
        channel: String,
        /// The raw `key=value;…` metadata.
        meta: String,
        /// Trace of the handling span.
        trace: TraceCtx,
    },
    /// The configured nick was taken; the agent runs under `using` for now.
    NickTaken {
        /// The configured nick.
        wanted: String,
        /// The nick in use instead.
        using: String,
    },
    /// The server refused something sent to `target` (`401` no such nick, `403` no such
    /// channel, `404` cannot send to channel, `442` not on channel); the webhook counts and
    /// retries a refused alert line.
    Refused {
        /// The channel or nick the refused line was for.
        target: String,
        /// The numeric, e.g. `404`.
        numeric: String,
        /// The server's text.
        reason: String,
    },
    /// Our server lost its first mesh peer, or got back its last lost one (agentirc's
    /// `server.unlink`/`server.link` in `#system`); the webhook raises `mesh_split` or
    /// `mesh_healed`.
    Mesh(super::mesh::MeshChange),
    /// The server refused the nick outright (e.g. agentirc's `<server>-` prefix rule).
    NickRejected {
        /// The nick.
        nick: String,
        /// The server's reason.
        reason: String,
    },
}

/// agentirc `PRESENCE` states codexd reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Waiting for work.
    Idle,
    /// A turn is running (model thinking).
    Thinking,
    /// A turn is running tools.
    Working,
    /// Leaving (sent before QUIT).
    Offline,
}

impl Presence {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Presence::Idle => "idle",
            Presence::Thinking => "thinking",
            Presence::Working => "working",
            Presence::Offline => "offline",
        }
    }

    /// Busy states are refreshed by a heartbeat.
    pub fn is_busy(self) -> bool {
        matches!(self, Presence::Thinking | Presence::Working)
    }
}

/// A server query whose reply spans several lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `WHO <target>` → 352 … 315.
    Who(String),
    /// agentirc `HISTORY RECENT <target> <count>` → HISTORY … HISTORYEND.
    History {
        /// Channel or nick.
        target: String,
        /// How many lines.
        count: u32,
    },
    /// agentirc `THREADS <#channel>` → THREADS … THREADSEND.
    Threads(String),
    /// agentirc `ROOMMETA <#channel>` → ROOMMETA … ROOMETAEND.
    RoomMeta(String),
    /// agentirc `TAGS <nick>` → TAGS … TAGSEND.
    Tags(String),
    /// agentirc `PRESENCE LIST` → PRESENCELIST … PRESENCEEND.
    PresenceList,
    /// `TOPIC <#channel>` → 332 (the topic) or 331 (none); one line, kept.
    Topic(String),
}

/// One line of a query's answer: the command (verb or numeric) and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyLine {
    /// `352`, `HISTORY`, …
    pub command: String,
    /// Every parameter, the trailing one last.
    pub params: Vec<String>,
}

/// The connection as `codexd status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IrcStatus {
    /// `connecting`, `registering`, `connected`, `waiting` (to reconnect) or `nick_rejected`.
    pub state: String,
    /// `host:port`.
    pub server: String,
    /// `agentirc` or `ircv3`/`rfc1459` (from the capabilities offered).
    pub flavor: String,
    /// The nick in use (may differ from the configured one after a 433).
    pub nick: String,
    /// Channels joined (or to rejoin after a reconnect).
    pub channels: Vec<String>,
    /// Capabilities the server acknowledged.
    pub caps: Vec<String>,
    /// Successful registrations since the actor started.
    pub connects: u64,
    /// Lines waiting for the link to come back.
    pub queued: usize,
    /// [`SendPriority::Low`] notices dropped since the actor started (link down or their
    /// queue full).
    pub notices_dropped: u64,
    /// DMs from another server of the mesh dropped as the mesh's second copy of a line
    /// (docs/irc.md, "Mesh duplicates").
    pub duplicates_suppressed: u64,
    /// agentirc only: the server's mesh links, from its `#system` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh: Option<super::mesh::MeshStatus>,
    /// The last connection problem, if any.
    pub last_error: Option<String>,
    /// One line for the status table.
    pub summary: String,
}
