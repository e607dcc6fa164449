//! Outbound: every request from another actor is validated (nothing it carries can inject
//! an IRC command), split to fit 512 bytes, tagged with its trace context when the server
//! ACKed `message-tags`, and either handed to the connection's outbox in its class (see
//! [`super::outbox`]) or queued while the link is down. Nothing is reported as sent before
//! it is handed to a live connection.

use ractor::RpcReplyPort;
use serde_json::json;

use super::channels::Full;
use super::inbound::is_channel;
use super::outbox::{LOW_QUEUE, NORMAL_QUEUE};
use super::query::Pending;
use super::text::{self, FieldError};
use super::{
    Flavor, IrcError, IrcEvent, IrcMessage, IrcState, Phase, Presence, Query, ReplyLine,
    SendPriority, SendReport, ThreadOp, TraceTagMode,
};
use crate::audit::{Event, MessageOut};
use crate::trace::{TraceCtx, TraceTagNames};

/// How long a query may take before it is answered with a timeout.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How a text is sent: its verb, the joined check and its priority.
#[derive(Debug, Clone, Copy)]
pub(super) struct How {
    /// NOTICE instead of PRIVMSG.
    pub(super) notice: bool,
    /// Refuse a channel the agent is not in.
    pub(super) require_joined: bool,
    /// Normal or low (courtesy notices).
    pub(super) priority: SendPriority,
}

impl IrcState {
    /// `PRIVMSG`/`NOTICE`: one wire line per text line, long lines split on character
    /// boundaries to fit the server's relay of `:<mask> PRIVMSG <target> :<text>`.
    pub(super) fn send_text(
        &mut self,
        target: &str,
        text: &str,
        how: How,
        trace: &TraceCtx,
    ) -> Result<SendReport, IrcError> {
        text::check_param("channel", target)?;
        if is_channel(target) {
            text::check_channel("channel", target)?;
            if how.require_joined && !self.is_joined(target) {
                return Err(IrcError::NotJoined {
                    channel: target.to_owned(),
                });
            }
        }
        let verb = if how.notice { "NOTICE" } else { "PRIVMSG" };
        let chunks = self.chunks(text, verb, target, 0);
        if chunks.is_empty() {
            return Err(IrcError::EmptyMessage);
        }
        let wire = chunks
            .iter()
            .map(|c| format!("{verb} {target} :{c}"))
            .collect();
        if how.priority == SendPriority::Low {
            return (self.deliver_low(wire, trace))
                .inspect(|report| self.audit_out(verb, target, text, report, trace));
        }
        let report = self.deliver(wire, trace)?;
        self.audit_out(verb, target, text, &report, trace);
        for chunk in &chunks {
            self.buffer_own(target, chunk);
        }
        let _ = self.events.send(IrcEvent::Sent {
            target: target.to_owned(),
        });
        Ok(report)
    }

    /// `message.out` for a text handed to the connection (or queued), when the log is on.
    fn audit_out(
        &self,
        verb: &'static str,
        target: &str,
        text: &str,
        report: &SendReport,
        trace: &TraceCtx,
    ) {
        let Some(audit) = &self.settings.audit else {
            return;
        };
        let event = Event::MessageOut(MessageOut {
            command: verb,
            target: target.to_owned(),
            text: text.to_owned(),
            lines: report.lines,
            queued: report.queued,
        });
        audit.record(event, trace);
    }

    /// The pieces of `text` that fit one line each (after `reserve` bytes of the text).
    fn chunks(&self, text: &str, verb: &str, target: &str, reserve: usize) -> Vec<String> {
        let mask = self
            .mask_len
            .unwrap_or_else(|| text::assumed_mask_len(&self.nick));
        let budget = text::privmsg_budget(mask, verb, target)
            .saturating_sub(reserve)
            .max(16);
        text::lines(text)
            .flat_map(|line| {
                text::split_to_fit(&line, budget)
                    .into_iter()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn is_joined(&self, channel: &str) -> bool {
        self.channels.contains(channel)
    }

    /// Hands `lines` to the live connection, or queues them (bounded) while the link is
    /// down. All or nothing.
    pub(super) fn deliver(
        &mut self,
        lines: Vec<String>,
        trace: &TraceCtx,
    ) -> Result<SendReport, IrcError> {
        let count = lines.len();
        if self.phase == Phase::Connected {
            if let Some(conn) = &self.conn {
                let tagged = lines.into_iter().map(|l| self.tagged(l, trace)).collect();
                return if conn.send_all(tagged) {
                    Ok(SendReport {
                        lines: count,
                        queued: false,
                    })
                } else {
                    Err(IrcError::Backlogged {
                        limit: NORMAL_QUEUE,
                    })
                };
            }
        }
        if self.pending.len() + count > self.settings.send_queue {
            return Err(IrcError::QueueFull {
                limit: self.settings.send_queue,
            });
        }
        self.pending
            .extend(lines.into_iter().map(|line| (line, trace.clone())));
        Ok(SendReport {
            lines: count,
            queued: true,
        })
    }

    /// Courtesy lines: to a live connection's low queue, or dropped (and counted) when the
    /// link is down or the queue is full. Not buffered and no `Sent` event: they are not
    /// conversation.
    fn deliver_low(
        &mut self,
        lines: Vec<String>,
        trace: &TraceCtx,
    ) -> Result<SendReport, IrcError> {
        let count = lines.len();
        let tagged: Vec<String> = lines.into_iter().map(|l| self.tagged(l, trace)).collect();
        let queued = self.phase == Phase::Connected
            && self.conn.as_ref().is_some_and(|conn| conn.send_low(tagged));
        if !queued {
            self.notices_dropped += 1;
            return Err(IrcError::NoticeDropped { limit: LOW_QUEUE });
        }
        Ok(SendReport {
            lines: count,
            queued: false,
        })
    }

    /// A line ahead of chat traffic, tagged with the current span's context.
    pub(super) fn send_urgent(&mut self, line: String) {
        let line = self.tagged(line, &TraceCtx::current());
        if let Some(conn) = &self.conn {
            conn.send_urgent(line);
        }
    }

    /// Prefixes the trace tags, but only when the server ACKed `message-tags`.
    fn tagged(&self, line: String, trace: &TraceCtx) -> String {
        if !self.reg.acked.contains("message-tags") {
            return line;
        }
        let tags = trace.to_irc_tags(&self.trace_names());
        if tags.is_empty() {
            return line;
        }
        let tags: Vec<String> = tags.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("@{} {line}", tags.join(";"))
    }

    /// Outbound trace tag names: agentirc reads the plain names, standard IRCv3 servers
    /// relay only `+`-prefixed client tags.
    fn trace_names(&self) -> TraceTagNames {
        match &self.settings.trace_tags {
            TraceTagMode::Named(name) => TraceTagNames {
                traceparent: name.clone(),
                tracestate: name.replace("traceparent", "tracestate"),
            },
            TraceTagMode::Auto if self.flavor == Flavor::Agentirc => TraceTagNames::default(),
            TraceTagMode::Auto => TraceTagNames::client_prefixed(),
        }
    }

    /// After 001: agentirc's identity burst (ahead of everything), JOIN every channel and
    /// then what waited (both paced as normal lines), and the current presence.
    pub(super) fn after_welcome(&mut self) {
        let trace = TraceCtx::current();
        let identity = self.identity();
        if self.flavor == Flavor::Agentirc {
            self.start_presence_heartbeat();
        }
        let Some(conn) = &self.conn else {
            return;
        };
        for line in identity {
            conn.send_urgent(self.tagged(line, &trace));
        }
        let system = (self.flavor == Flavor::Agentirc).then_some(super::mesh::SYSTEM_CHANNEL);
        let joins = self
            .channels
            .iter()
            .map(String::as_str)
            .chain(system)
            .map(|c| format!("JOIN {c}"));
        let waiting = std::mem::take(&mut self.pending);
        let lines: Vec<String> = joins
            .map(|line| self.tagged(line, &trace))
            .chain(
                waiting
                    .into_iter()
                    .map(|(line, trace)| self.tagged(line, &trace)),
            )
            .collect();
        conn.send_accepted(lines);
        if self.flavor == Flavor::Agentirc {
            let line = self.presence_line(self.presence, self.presence_task.clone());
            self.send_presence(line);
        }
    }

    /// agentirc's identity lines: `MODE +A`, `TAGS`, `ICON` (none elsewhere).
    fn identity(&self) -> Vec<String> {
        let mut identity = Vec::new();
        if self.flavor == Flavor::Agentirc {
            let nick = &self.nick;
            identity.push(format!("MODE {nick} +A"));
            if !self.settings.tags.is_empty() {
                identity.push(format!("TAGS {nick} {}", self.settings.tags.join(",")));
            }
            if let Some(icon) = &self.settings.icon {
                identity.push(format!("ICON {icon}"));
            }
        }
        identity
    }

    /// After our server linked to a peer: say who we are again (tags, icon, presence),
    /// which agentirc's link burst does not carry to the peer.
    pub(super) fn announce(&mut self) {
        let trace = TraceCtx::current();
        let Some(conn) = &self.conn else {
            return;
        };
        for line in self.identity() {
            conn.send_urgent(self.tagged(line, &trace));
        }
        let line = self.presence_line(self.presence, self.presence_task.clone());
        self.send_presence(line);
    }

    pub(super) fn join(&mut self, channel: &str, trace: &TraceCtx) -> Result<(), IrcError> {
        text::check_channel("channel", channel)?;
        match self.channels.insert(channel) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(Full { limit }) => {
                return Err(IrcError::TooManyChannels {
                    channel: channel.to_owned(),
                    limit,
                });
            }
        }
        if self.phase == Phase::Connected {
            if let Err(error) = self.deliver(vec![format!("JOIN {channel}")], trace) {
                self.channels.remove(channel);
                return Err(error);
            }
        }
        if !self.is_configured(channel) {
            self.joined.add(channel);
        }
        Ok(())
    }

    /// Whether `channel` is one of the configured channels (always joined, never remembered).
    fn is_configured(&self, channel: &str) -> bool {
        self.settings
            .channels
            .iter()
            .any(|c| c.eq_ignore_ascii_case(channel))
    }

    pub(super) fn part(&mut self, channel: &str, trace: &TraceCtx) -> Result<(), IrcError> {
        text::check_channel("channel", channel)?;
        let was_joined = self.channels.remove(channel);
        self.joined.remove(channel);
        if was_joined && self.phase == Phase::Connected {
            self.deliver(vec![format!("PART {channel}")], trace)?;
        }
        Ok(())
    }

    pub(super) fn topic(
        &mut self,
        channel: &str,
        topic: Option<&str>,
        trace: &TraceCtx,
    ) -> Result<(), IrcError> {
        text::check_channel("channel", channel)?;
        let line = match topic {
            Some(topic) => {
                text::check_trailing("topic", topic)?;
                format!("TOPIC {channel} :{topic}")
            }
            None => format!("TOPIC {channel}"),
        };
        self.deliver(vec![line], trace).map(|_| ())
    }

    pub(super) fn thread(
        &mut self,
        op: ThreadOp,
        trace: &TraceCtx,
    ) -> Result<SendReport, IrcError> {
        let lines = match op {
            ThreadOp::Create {
                channel,
                thread,
                text,
            } => self.thread_lines(&channel, &thread, &text, true)?,
            ThreadOp::Reply {
                channel,
                thread,
                text,
            } => self.thread_lines(&channel, &thread, &text, false)?,
            ThreadOp::Close {
                channel,
                thread,
                summary,
            } => {
                text::check_channel("channel", &channel)?;
                text::check_param("thread", &thread)?;
                vec![format!(
                    "THREADCLOSE {channel} {thread} :{}",
                    text::one_line(&summary)
                )]
            }
        };
        self.deliver(lines, trace)
    }

    /// `THREAD CREATE` for the first line (when `create`), `THREAD REPLY` for the rest.
    fn thread_lines(
        &self,
        channel: &str,
        thread: &str,
        body: &str,
        create: bool,
    ) -> Result<Vec<String>, FieldError> {
        text::check_channel("channel", channel)?;
        text::check_param("thread", thread)?;
        let prefix = format!("[thread:{thread}] ");
        let chunks = self.chunks(body, "PRIVMSG", channel, prefix.len());
        if chunks.is_empty() {
            return Err(FieldError::Empty { field: "message" });
        }
        Ok(chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let verb = if create && i == 0 { "CREATE" } else { "REPLY" };
                format!("THREAD {verb} {channel} {thread} :{chunk}")
            })
            .collect())
    }

    /// Sends a query and parks the reply port until its end line (or a timeout).
    pub(super) fn query(
        &mut self,
        query: Query,
        trace: &TraceCtx,
        reply: RpcReplyPort<Result<Vec<ReplyLine>, IrcError>>,
    ) {
        if self.phase != Phase::Connected {
            let _ = reply.send(Err(IrcError::NotConnected));
            return;
        }
        let pending = match Pending::for_query(&query) {
            Ok(pending) => pending,
            Err(error) => {
                let _ = reply.send(Err(error.into()));
                return;
            }
        };
        if let Err(error) = self.deliver(vec![pending.line.clone()], trace) {
            let _ = reply.send(Err(error));
            return;
        }
        let id = self.queries.add(pending, reply);
        self.myself
            .send_after(QUERY_TIMEOUT, move || IrcMessage::QueryExpired { id });
    }

    /// Records the agent's state; on agentirc announces it (a heartbeat repeats busy states).
    pub(super) fn set_presence(&mut self, state: Presence, task: Option<String>) {
        let task = task.map(|t| text::one_line(&t));
        self.presence = state;
        self.presence_task = task.clone();
        if self.phase == Phase::Connected && self.flavor == Flavor::Agentirc {
            let line = self.presence_line(state, task);
            self.send_presence(line);
        }
    }

    /// The agent's presence, tagged with the current span's context: sent when no normal
    /// line waits, replacing an unsent one.
    pub(super) fn send_presence(&mut self, line: String) {
        let line = self.tagged(line, &TraceCtx::current());
        if let Some(conn) = &self.conn {
            conn.send_presence(line);
        }
    }

    /// `PRESENCE :{"state":…,"since":…,"task":…}`.
    pub(super) fn presence_line(&self, state: Presence, task: Option<String>) -> String {
        let since = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let mut body = json!({ "state": state.name(), "since": since });
        if let Some(task) = task {
            body["task"] = json!(task);
        }
        format!("PRESENCE :{body}")
    }
}
