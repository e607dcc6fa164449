//! Inbound lines: parse (irc-proto), open `harness.irc.message.handle`, then one handler per
//! command. Registration (CAP, SASL, 001, 433/432) and traffic (PRIVMSG, NOTICE, TOPIC,
//! ROOMINVITE) both live here; answers to queries go to [`super::query`].

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use irc_proto::{Command, Message};
use tokio::time::Instant;

use super::buffer::{self, BufferedMessage};
use super::mesh;
use super::{Flavor, InboundMessage, IrcEvent, IrcMessage, IrcState, MessageKind, Phase};
use super::{mention, room, text};
use crate::trace::{TraceCtx, TraceTagNames};

/// The most alternative nicks tried after a 433 before the connection gives up.
const MAX_NICK_ATTEMPTS: u32 = 9;
/// Senders with this prefix are agentirc's mesh-event users; their lines are ignored.
const SYSTEM_PREFIX: &str = "system-";

/// A parsed inbound line in the generic form the handlers use.
pub(super) struct Line {
    pub(super) tags: Vec<(String, String)>,
    /// The nick part of the prefix, if any.
    pub(super) sender: Option<String>,
    /// The whole prefix (`nick!user@host`), if any.
    pub(super) prefix: Option<String>,
    /// Upper-case verb or three-digit numeric.
    pub(super) verb: String,
    pub(super) params: Vec<String>,
}

impl Line {
    /// Parses a line; `None` for lines irc-proto cannot read (logged by the caller).
    pub(super) fn parse(raw: &str) -> Result<Line, String> {
        let message: Message = raw.parse().map_err(|e| format!("{e}"))?;
        let tags = message
            .tags
            .iter()
            .flatten()
            .map(|tag| (tag.0.clone(), tag.1.clone().unwrap_or_default()))
            .collect();
        let sender = message.source_nickname().map(str::to_owned);
        let prefix = message.prefix.as_ref().map(|p| p.to_string());
        let (verb, params) = verb_and_params(&message.command);
        Ok(Line {
            tags,
            sender,
            prefix,
            verb,
            params,
        })
    }

    pub(super) fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn param(&self, index: usize) -> &str {
        self.params.get(index).map_or("", String::as_str)
    }
}

/// The verb and parameters of a command, whichever irc-proto variant it parsed into: its
/// canonical wire form split again (middle parameters, then the trailing one).
fn verb_and_params(command: &Command) -> (String, Vec<String>) {
    let wire = String::from(command);
    let (head, trailing) = match wire.split_once(" :") {
        Some((head, trailing)) => (head, Some(trailing)),
        None => (wire.as_str(), None),
    };
    let mut words = head.split(' ').filter(|w| !w.is_empty());
    let verb = words.next().unwrap_or_default().to_ascii_uppercase();
    let mut params: Vec<String> = words.map(str::to_owned).collect();
    params.extend(trailing.map(str::to_owned));
    (verb, params)
}

/// Seconds since the epoch, as Culture's buffer stores them.
fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl IrcState {
    /// Handles one inbound line inside its `harness.irc.message.handle` span.
    pub(super) fn on_line(&mut self, raw: &str) {
        self.last_rx = Instant::now();
        self.ping_sent = None;
        let line = match Line::parse(raw) {
            Ok(line) => line,
            Err(error) => {
                tracing::warn!(error = %error, "unparseable line from the irc server");
                return;
            }
        };
        let span = self.handle_span(&line);
        let _entered = span.enter();
        self.dispatch(line);
    }

    /// Culture's span: parented by a valid traceparent tag, else a root span.
    fn handle_span(&self, line: &Line) -> tracing::Span {
        let plain = TraceTagNames::default();
        let names = if line.tag(&plain.traceparent).is_some() {
            plain
        } else {
            TraceTagNames::client_prefixed()
        };
        let pairs = line.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let span = tracing::info_span!(
            parent: None,
            "harness.irc.message.handle",
            irc.command = %line.verb,
            irc.client.nick = %self.nick,
            culture.trace.origin = tracing::field::Empty,
            culture.trace.dropped_reason = tracing::field::Empty,
        );
        match TraceCtx::from_irc_tags(pairs, &names) {
            Ok(ctx) if ctx.is_empty() => {
                span.record("culture.trace.origin", "local");
                span
            }
            Ok(ctx) => {
                span.record("culture.trace.origin", "remote");
                ctx.follow(span)
            }
            Err(error) => {
                span.record("culture.trace.origin", "remote");
                span.record("culture.trace.dropped_reason", error.reason());
                span
            }
        }
    }

    fn dispatch(&mut self, line: Line) {
        match line.verb.as_str() {
            "PING" => self.send_urgent(format!("PONG :{}", line.param(0))),
            "PONG" => {}
            "CAP" => self.on_cap(&line),
            "AUTHENTICATE" => self.on_authenticate(&line),
            "903" => self.cap_end(),
            "902" | "904" | "905" | "906" | "908" => {
                self.link_down(format!("SASL authentication failed: {}", line.param(1)));
            }
            "001" => self.on_welcome(&line),
            "433" => self.on_nick_in_use(&line),
            "432" => self.on_nick_rejected(&line),
            "NICK" => self.on_nick(&line),
            "JOIN" => self.on_join(&line),
            "KICK" => self.on_kick(&line),
            "PRIVMSG" => self.on_privmsg(&line),
            "NOTICE" => self.on_notice(&line),
            "TOPIC" => self.on_topic(&line),
            "331" => {
                self.buffer_server_line(line.param(1), "* No topic is set".to_owned());
                self.queries.offer(&line.verb, &line.params);
            }
            "332" => {
                self.buffer_server_line(line.param(1), format!("* Topic: {}", line.param(2)));
                self.queries.offer(&line.verb, &line.params);
            }
            "HISTORY" | "HISTORYEND" if self.mesh.replaying() && is_system(line.param(0)) => {
                self.on_system_history(&line);
            }
            "ROOMINVITE" => self.on_roominvite(&line),
            "ERROR" => self.last_error = Some(format!("server error: {}", line.param(0))),
            "401" | "403" | "404" | "442" => {
                self.queries.refuse(line.param(1), line.params.last());
                self.on_refused(&line);
            }
            "461" | "421" => {
                if line.param(1).eq_ignore_ascii_case("HISTORY") {
                    self.mesh.end_replay(); // a server without HISTORY: no past to replay
                }
                self.queries.refuse(line.param(1), line.params.last());
            }
            _ => self.queries.offer(&line.verb, &line.params),
        }
    }

    /// `CAP LS` (possibly multi-line), `ACK`, `NAK`.
    fn on_cap(&mut self, line: &Line) {
        let list = line.params.last().map_or("", String::as_str);
        match line.param(1) {
            "LS" => {
                self.reg
                    .offered
                    .extend(list.split_whitespace().map(|cap| cap.to_owned()));
                let more = line.params.len() >= 4 && line.param(2) == "*";
                if !more {
                    self.caps_offered();
                }
            }
            "ACK" => {
                let acked: Vec<String> = list.split_whitespace().map(str::to_owned).collect();
                self.reg.acked.extend(acked.iter().cloned());
                if acked.iter().any(|c| c == "sasl") && self.settings.sasl.is_some() {
                    self.send_urgent("AUTHENTICATE PLAIN".to_owned());
                } else {
                    self.cap_end();
                }
            }
            "NAK" if self.settings.sasl.is_some() && list.contains("sasl") => {
                self.link_down("the server refused the sasl capability".to_owned());
            }
            "NAK" => self.cap_end(),
            _ => {}
        }
    }

    /// The full LS arrived: learn the flavour, request what we use.
    fn caps_offered(&mut self) {
        let offered = |cap: &str| {
            self.reg
                .offered
                .iter()
                .any(|o| o == cap || o.starts_with(&format!("{cap}=")))
        };
        self.flavor = if offered("agentirc.io/bot") {
            Flavor::Agentirc
        } else if offered("message-tags") {
            Flavor::Ircv3
        } else {
            Flavor::Unknown
        };
        let mut want = Vec::new();
        if offered("message-tags") {
            want.push("message-tags");
        }
        if self.settings.sasl.is_some() {
            if !offered("sasl") {
                self.link_down(
                    "server.sasl is configured but the server does not offer SASL".to_owned(),
                );
                return;
            }
            want.push("sasl");
        }
        if want.is_empty() {
            self.cap_end();
        } else {
            self.send_urgent(format!("CAP REQ :{}", want.join(" ")));
        }
    }

    fn cap_end(&mut self) {
        if !self.reg.cap_ended {
            self.reg.cap_ended = true;
            self.send_urgent("CAP END".to_owned());
        }
    }

    /// `AUTHENTICATE +` → the PLAIN payload, base64 in chunks of 400 (never logged).
    fn on_authenticate(&mut self, line: &Line) {
        let Some(sasl) = &self.settings.sasl else {
            return;
        };
        if line.param(0) != "+" {
            return;
        }
        let payload = format!("{0}\0{0}\0{1}", sasl.username, sasl.password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
        let chunks: Vec<String> = encoded
            .as_bytes()
            .chunks(400)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let last_full = chunks.last().is_some_and(|c| c.len() == 400);
        for chunk in chunks {
            self.send_urgent(format!("AUTHENTICATE {chunk}"));
        }
        if last_full {
            self.send_urgent("AUTHENTICATE +".to_owned());
        }
    }

    /// 001: registered. Join, announce ourselves on agentirc, flush what waited.
    fn on_welcome(&mut self, line: &Line) {
        self.phase = Phase::Connected;
        self.connects += 1;
        self.attempt = 0;
        self.nick_rejected = false;
        self.last_error = None;
        if let Some(nick) = line.params.first() {
            self.nick = nick.clone();
        }
        self.server_name = line.prefix.clone();
        self.mask_len = line
            .params
            .last()
            .and_then(|text| text.split_whitespace().last())
            .filter(|mask| mask.starts_with(&format!("{}!", self.nick)))
            .map(str::len);
        tracing::info!(
            server = %self.settings.server(),
            nick = %self.nick,
            connects = self.connects,
            "irc connected"
        );
        self.after_welcome();
        let _ = self.events.send(IrcEvent::Connected {
            nick: self.nick.clone(),
        });
    }

    /// 433 while registering: try `<nick>_`, `<nick>_2`, …; later (regaining): ignore.
    fn on_nick_in_use(&mut self, line: &Line) {
        if self.phase == Phase::Connected {
            return;
        }
        self.reg.nick_attempt += 1;
        let attempt = self.reg.nick_attempt;
        let wanted = self.settings.nick.clone();
        if attempt > MAX_NICK_ATTEMPTS {
            self.link_down(format!(
                "nick {wanted} and {MAX_NICK_ATTEMPTS} alternatives are in use"
            ));
            return;
        }
        let using = match attempt {
            1 => format!("{wanted}_"),
            n => format!("{wanted}_{n}"),
        };
        tracing::warn!(wanted = %wanted, using = %using, taken = %line.param(1), "nick in use");
        self.last_error = Some(format!("nick {wanted} is in use; using {using}"));
        self.nick = using.clone();
        self.send_urgent(format!("NICK {using}"));
        let _ = self.events.send(IrcEvent::NickTaken { wanted, using });
    }

    /// 432 while registering: the server's nick rules refuse this nick. Retrying at once
    /// would loop, so status says so and reconnects wait the longest delay.
    fn on_nick_rejected(&mut self, line: &Line) {
        if self.phase == Phase::Connected {
            return;
        }
        let nick = line.param(1).to_owned();
        let reason = line.params.last().cloned().unwrap_or_default();
        tracing::error!(nick = %nick, reason = %reason, "the irc server rejected the nick");
        self.nick_rejected = true;
        let _ = self.events.send(IrcEvent::NickRejected {
            nick: nick.clone(),
            reason: reason.clone(),
        });
        self.link_down(format!("the server rejected nick {nick}: {reason}"));
    }

    fn is_me(&self, nick: Option<&str>) -> bool {
        nick.is_some_and(|n| n.eq_ignore_ascii_case(&self.nick))
    }

    fn on_nick(&mut self, line: &Line) {
        if self.is_me(line.sender.as_deref()) {
            self.nick = line.param(0).to_owned();
            if self.nick == self.settings.nick {
                tracing::info!(nick = %self.nick, "regained the configured nick");
                self.last_error = None;
            }
        }
    }

    /// Our own JOIN echo tells us the exact prefix the server puts on our lines. A channel
    /// the server put us in (a forced join) is kept and rejoined like our own, up to the
    /// channel cap; echoes beyond it are ignored, with one warning per connection.
    fn on_join(&mut self, line: &Line) {
        if !self.is_me(line.sender.as_deref()) {
            return;
        }
        if let Some(prefix) = &line.prefix {
            self.mask_len = Some(prefix.len());
        }
        let channel = line.param(0);
        if self.flavor == Flavor::Agentirc && is_system(channel) {
            self.mesh.begin_replay();
            let line = format!("HISTORY SEARCH {} linked", mesh::SYSTEM_CHANNEL);
            self.send_urgent(line);
            return;
        }
        let Err(full) = self.channels.insert(channel) else {
            return;
        };
        if !self.reg.over_cap_warned {
            self.reg.over_cap_warned = true;
            tracing::warn!(
                channel = %channel,
                limit = full.limit,
                "the server joined us to more channels than an agent may be in; ignoring the rest"
            );
        }
    }

    fn on_kick(&mut self, line: &Line) {
        if line.param(1).eq_ignore_ascii_case(&self.nick) {
            let channel = line.param(0);
            tracing::warn!(channel = %channel, by = ?line.sender, "kicked from channel");
            self.channels.remove(channel);
        }
    }

    /// Culture §5.4: buffer, then classify as DM, mention or ambient and publish.
    fn on_privmsg(&mut self, line: &Line) {
        if line.params.len() < 2 {
            return;
        }
        let sender = line.sender.clone().unwrap_or_else(|| "unknown".to_owned());
        let (target, text) = (line.param(0), line.param(1));
        if self.flavor == Flavor::Agentirc && is_system(target) {
            self.on_system_event(line, &sender);
            return;
        }
        if self.is_me(Some(&sender)) || sender.starts_with(SYSTEM_PREFIX) {
            return;
        }
        if text.starts_with('\u{1}') && !text.starts_with("\u{1}ACTION ") {
            return;
        }
        let channel = is_channel(target);
        if self.is_mesh_duplicate(line, &sender, !channel) {
            return;
        }
        let kind = if !channel {
            MessageKind::Direct
        } else if self.mentions.is_mention(text) {
            MessageKind::Mention
        } else {
            MessageKind::Ambient
        };
        let reply_to = if channel { target } else { &sender };
        self.publish(line, &sender, reply_to.to_owned(), kind);
    }

    /// `401`/`403`/`404`/`442 <us> <target> :<reason>`: published, so the webhook can count
    /// and retry a refused alert line.
    fn on_refused(&mut self, line: &Line) {
        let _ = self.events.send(IrcEvent::Refused {
            target: line.param(1).to_owned(),
            numeric: line.verb.clone(),
            reason: line.params.last().cloned().unwrap_or_default(),
        });
    }

    /// Channel NOTICEs are buffered (never mentions); NOTICEs to us (agentirc's "… mentioned
    /// you" notices) are only logged: the PRIVMSG itself is the mention.
    fn on_notice(&mut self, line: &Line) {
        if line.params.len() < 2 {
            return;
        }
        let sender = line.sender.clone().unwrap_or_else(|| "server".to_owned());
        if sender.starts_with(SYSTEM_PREFIX) {
            return;
        }
        let target = line.param(0);
        if is_channel(target) {
            self.publish(line, &sender, target.to_owned(), MessageKind::Notice);
        } else {
            tracing::debug!(from = %sender, text = %line.param(1), "notice");
        }
    }

    fn publish(&mut self, line: &Line, sender: &str, reply_to: String, kind: MessageKind) {
        let (target, text) = (line.param(0), line.param(1));
        let key = buffer::key_for(target, sender);
        let thread = line
            .tag("agentirc.io/thread")
            .map(str::to_owned)
            .or_else(|| buffer::thread_of(text).map(str::to_owned));
        let msgid = line.tag("msgid").map(str::to_owned);
        self.buffer.add(
            &key,
            BufferedMessage {
                nick: sender.to_owned(),
                text: text.to_owned(),
                timestamp: epoch_seconds(),
                thread: thread.clone(),
                msgid: msgid.clone(),
            },
        );
        let message = InboundMessage {
            key,
            reply_to,
            sender: sender.to_owned(),
            text: text.to_owned(),
            kind,
            thread,
            msgid,
            trace: TraceCtx::current(),
        };
        if matches!(kind, MessageKind::Mention | MessageKind::Direct) {
            let hold = self.holding.take();
            if !self.intake.send(message.clone(), hold) {
                tracing::error!(from = %message.sender, to = %message.reply_to, "mention NOT accepted: the agent has no runner intake (no runner, or its journal could not be opened)");
            }
        }
        let _ = self.events.send(IrcEvent::Message(message));
    }

    fn on_topic(&mut self, line: &Line) {
        let channel = line.param(0).to_owned();
        let sender = line.sender.clone().unwrap_or_else(|| "server".to_owned());
        if is_channel(&channel) {
            let text = format!("* Topic changed: {}", line.param(1));
            self.buffer_line(&channel, &sender, text);
        }
    }

    fn buffer_server_line(&mut self, channel: &str, text: String) {
        if is_channel(channel) {
            self.buffer_line(channel, "server", text);
        }
    }

    fn buffer_line(&mut self, key: &str, nick: &str, text: String) {
        self.buffer.add(
            key,
            BufferedMessage {
                nick: nick.to_owned(),
                thread: buffer::thread_of(&text).map(str::to_owned),
                text,
                timestamp: epoch_seconds(),
                msgid: None,
            },
        );
    }

    /// agentirc's `ROOMINVITE <#room> <nick> :<meta>`: published as an event and handed to
    /// the intake like a mention (holding the line's place in the window). A room name the
    /// irc rules refuse ([`text::check_channel`]) drops the line with a warning.
    fn on_roominvite(&mut self, line: &Line) {
        if line.params.len() < 3 {
            return;
        }
        let (channel, meta) = (line.param(0), line.param(2));
        if let Err(error) = text::check_channel("channel", channel) {
            tracing::warn!(channel = ?channel, error = %error, "dropped a ROOMINVITE: not a valid channel name");
            return;
        }
        let trace = TraceCtx::current();
        let message = InboundMessage {
            key: channel.to_owned(),
            reply_to: channel.to_owned(),
            sender: invite_sender(line, meta),
            text: meta.to_owned(),
            kind: MessageKind::Invite,
            thread: None,
            msgid: line.tag("msgid").map(str::to_owned),
            trace: trace.clone(),
        };
        tracing::info!(channel = %channel, from = %message.sender, "room invitation");
        let hold = self.holding.take();
        if !self.intake.send(message, hold) {
            tracing::error!(channel = %channel, "room invitation NOT accepted: the agent has no runner intake (no runner, or its journal could not be opened)");
        }
        let _ = self.events.send(IrcEvent::RoomInvite {
            channel: channel.to_owned(),
            meta: meta.to_owned(),
            trace,
        });
    }

    /// Records a line the agent sent, as Culture does (own lines are in the buffer).
    pub(super) fn buffer_own(&mut self, target: &str, text: &str) {
        let key = buffer::key_for(target, target);
        let nick = self.nick.clone();
        self.buffer_line(&key, &nick, text.to_owned());
    }

    /// agentirc heartbeat: re-announce a busy state.
    pub(super) fn on_presence_beat(&mut self, conn: u64) {
        if self.current_conn(conn) && self.presence.is_busy() {
            let line = self.presence_line(self.presence, self.presence_task.clone());
            self.send_presence(line);
        }
    }

    /// Timer helper for connection-scoped heartbeats.
    pub(super) fn start_presence_heartbeat(&mut self) {
        let Some(conn) = self.conn.as_ref().map(|c| c.id) else {
            return;
        };
        let every = self.settings.presence_heartbeat;
        let handle = crate::grid::send_interval(&self.myself, every, move || {
            IrcMessage::PresenceBeat { conn }
        });
        if let Some(c) = self.conn.as_mut() {
            c.add_timer(handle);
        }
    }
}

/// Who invited: the metadata's `requestor` when it is a well-formed nick, else the line's
/// source (agentirc's own invitations come from the server name), else `server`.
fn invite_sender(line: &Line, meta: &str) -> String {
    let requestor = room::parse_room_meta(meta).remove("requestor");
    requestor
        .filter(|nick| mention::is_nick(nick))
        .or_else(|| line.sender.clone())
        .or_else(|| line.prefix.clone())
        .unwrap_or_else(|| "server".to_owned())
}

/// agentirc's `#system`.
pub(super) fn is_system(target: &str) -> bool {
    target.eq_ignore_ascii_case(mesh::SYSTEM_CHANNEL)
}

/// `#channel` or `&channel`.
pub(super) fn is_channel(target: &str) -> bool {
    target.starts_with('#') || target.starts_with('&')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_command_becomes_verb_and_params() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("PING :xyz", "PING", &["xyz"]),
            (
                ":a!u@h PRIVMSG #c :hello world",
                "PRIVMSG",
                &["#c", "hello world"],
            ),
            (
                ":srv 001 me :Welcome me!u@h",
                "001",
                &["me", "Welcome me!u@h"],
            ),
            (":srv CAP * LS * :a b", "CAP", &["*", "LS", "*", "a b"]),
            (
                ":srv CAP me ACK :message-tags",
                "CAP",
                &["me", "ACK", "message-tags"],
            ),
            (
                ":spark ROOMINVITE #r me :purpose=x;tags=a",
                "ROOMINVITE",
                &["#r", "me", "purpose=x;tags=a"],
            ),
            (":srv 433 * nick :in use", "433", &["*", "nick", "in use"]),
            ("AUTHENTICATE +", "AUTHENTICATE", &["+"]),
        ];
        for (raw, verb, params) in cases {
            let line = Line::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(line.verb, *verb, "{raw}");
            assert_eq!(line.params, *params, "{raw}");
        }
    }

    #[test]
    fn tags_are_unescaped() {
        let line = Line::parse(
            "@msgid=1;culture.dev/traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01;x=a\\sb :n!u@h PRIVMSG #c :hi",
        )
        .unwrap();
        assert_eq!(line.tag("msgid"), Some("1"));
        assert_eq!(line.tag("x"), Some("a b"));
        assert_eq!(line.sender.as_deref(), Some("n"));
        assert_eq!(line.prefix.as_deref(), Some("n!u@h"));
    }
}
