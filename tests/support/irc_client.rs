//! A raw IRC client for tests, playing "another user" on a real or fake server: it
//! registers (negotiating only caps the server offers), answers PINGs, keeps every line it
//! received, and waits for lines with a 30 s hang detector.
//!
//! Real time only: do not combine with `#[tokio::test(start_paused = true)]`.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

/// Hang detector for anything the client waits for: not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(30);
/// `quit` waits this long for the server to close; it asserts nothing.
const QUIT_GRACE: Duration = Duration::from_secs(5);

/// One registered connection.
pub struct RawClient {
    nick: String,
    reader: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    received: Vec<String>,
    offered_caps: Vec<String>,
    acked_caps: Vec<String>,
}

/// Registration progress while connecting.
#[derive(Default)]
struct Handshake {
    cap_done: bool,
    registered: bool,
}

impl RawClient {
    /// Connects and registers: `CAP LS 302`, `NICK`, `USER <nick> 0 * :<nick>`, `CAP REQ`
    /// for those of `request_caps` the server offers (none → no REQ), `CAP END`, then waits
    /// for 001. Panics if the server refuses the nick (432/433) or 30 s pass.
    pub async fn connect(host: &str, port: u16, nick: &str, request_caps: &[&str]) -> RawClient {
        let stream = TcpStream::connect((host, port))
            .await
            .unwrap_or_else(|e| panic!("connecting to {host}:{port}: {e}"));
        let (read, writer) = stream.into_split();
        let mut client = RawClient {
            nick: nick.to_owned(),
            reader: tokio::io::AsyncBufReadExt::lines(BufReader::new(read)),
            writer,
            received: Vec::new(),
            offered_caps: Vec::new(),
            acked_caps: Vec::new(),
        };
        client.send("CAP LS 302").await;
        client.send(&format!("NICK {nick}")).await;
        client.send(&format!("USER {nick} 0 * :{nick}")).await;
        client.register(request_caps).await;
        client
    }

    async fn register(&mut self, request_caps: &[&str]) {
        let deadline = Instant::now() + PATIENCE;
        let mut state = Handshake::default();
        while !(state.cap_done && state.registered) {
            let what = format!("registration of {}", self.nick);
            let line = self.next_line(&what, deadline).await;
            let (command, params) = command_and_params(&line);
            match command.as_str() {
                "001" => state.registered = true,
                "432" | "433" => panic!("{what} refused: {line}"),
                "421" if params.get(1).is_some_and(|c| c.eq_ignore_ascii_case("CAP")) => {
                    state.cap_done = true;
                }
                "CAP" => self.on_cap(&params, request_caps, &mut state).await,
                _ => {}
            }
        }
    }

    /// Handles one `CAP` reply during registration (params: target, subcommand, …).
    async fn on_cap(&mut self, params: &[String], request_caps: &[&str], state: &mut Handshake) {
        let subcommand = params.get(1).map(|s| s.to_ascii_uppercase());
        let last = params.last().cloned().unwrap_or_default();
        match subcommand.as_deref() {
            Some("LS") => {
                self.offered_caps
                    .extend(last.split_whitespace().map(cap_name));
                let more = params.len() > 3 && params[2] == "*";
                if more {
                    return;
                }
                let wanted: Vec<&str> = request_caps
                    .iter()
                    .copied()
                    .filter(|cap| self.offered_caps.iter().any(|o| o == cap))
                    .collect();
                if wanted.is_empty() {
                    self.send("CAP END").await;
                    state.cap_done = true;
                } else {
                    self.send(&format!("CAP REQ :{}", wanted.join(" "))).await;
                }
            }
            Some("ACK") => {
                self.acked_caps
                    .extend(last.split_whitespace().map(str::to_owned));
                self.send("CAP END").await;
                state.cap_done = true;
            }
            Some("NAK") => {
                self.send("CAP END").await;
                state.cap_done = true;
            }
            _ => {}
        }
    }

    pub fn nick(&self) -> &str {
        &self.nick
    }

    /// Caps the server listed in `CAP LS` (names only, values stripped).
    pub fn offered_caps(&self) -> &[String] {
        &self.offered_caps
    }

    /// Caps the server ACKed during registration.
    pub fn acked_caps(&self) -> &[String] {
        &self.acked_caps
    }

    /// Sends one line (CRLF appended).
    pub async fn send(&mut self, line: &str) {
        let framed = format!("{line}\r\n");
        self.writer
            .write_all(framed.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{} sending {line:?}: {e}", self.nick));
    }

    /// Joins `channel` and waits for its end of NAMES (366) or the JOIN echo.
    pub async fn join(&mut self, channel: &str) {
        self.send(&format!("JOIN {channel}")).await;
        let nick = self.nick.clone();
        self.expect(&format!("{nick} joined {channel}"), |line| {
            let (command, params) = command_and_params(line);
            let names_end = command == "366" && params.get(1).is_some_and(|c| c == channel);
            let echo = command == "JOIN"
                && source_nick(line).is_some_and(|n| n == nick)
                && params.first().is_some_and(|c| c == channel);
            names_end || echo
        })
        .await;
    }

    /// agentirc: `ROOMCREATE <#room> :<meta>` makes a managed room (`meta` as
    /// `purpose=…;tags=a,b;instructions=…`, instructions last) with this client as its owner
    /// and only member; waits for `ROOMCREATED <#room> <room-id> :…`. Agents whose tags
    /// share one with the room's get agentirc's own `ROOMINVITE` at once.
    pub async fn room_create(&mut self, channel: &str, meta: &str) {
        self.send(&format!("ROOMCREATE {channel} :{meta}")).await;
        let what = format!("ROOMCREATED {channel}");
        let answer = self
            .expect(&what, |line| {
                let (command, params) = command_and_params(line);
                let created =
                    command == "ROOMCREATED" && params.first().is_some_and(|c| c == channel);
                created || is_refusal(&command)
            })
            .await;
        assert!(answer.contains(" ROOMCREATED "), "{what} refused: {answer}");
    }

    /// agentirc: `ROOMINVITE <#room> <nick>`; waits for the server's confirmation
    /// `NOTICE <me> :Invited <nick> to <#room>`. The room must exist (any channel does; a
    /// [`room_create`](Self::room_create)d one carries metadata); the client need not be in
    /// it. `nick` receives `:<me>!<user>@<host> ROOMINVITE <#room> <nick>
    /// :requestor=<me>[;purpose=…][;tags=…][;instructions=…]` (no metadata of its own: the
    /// room's is sent).
    pub async fn room_invite(&mut self, channel: &str, nick: &str) {
        self.send(&format!("ROOMINVITE {channel} {nick}")).await;
        let confirmation = format!("Invited {nick} to {channel}");
        let answer = self
            .expect(&confirmation, |line| {
                let (command, params) = command_and_params(line);
                let confirmed =
                    command == "NOTICE" && params.last().is_some_and(|t| *t == confirmation);
                confirmed || is_refusal(&command)
            })
            .await;
        assert!(
            answer.ends_with(&confirmation),
            "ROOMINVITE {channel} {nick} refused: {answer}"
        );
    }

    /// Reads lines (answering PINGs) until one matches `pred` and returns it; panics with
    /// `what` and the last 20 lines on EOF or after 30 s.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let line = self.next_line(what, deadline).await;
            if pred(&line) {
                return line;
            }
        }
    }

    /// Reads (and keeps) lines until the server closes the connection (EOF or reset);
    /// panics with `what` after 30 s.
    pub async fn expect_closed(&mut self, what: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.reader.next_line()).await {
                Ok(Ok(Some(line))) => self.keep(line).await,
                Ok(Ok(None) | Err(_)) => return,
                Err(_) => panic!("gave up waiting for: {what}\n{}", self.tail()),
            }
        }
    }

    /// Every line received so far, in order, without CRLF.
    pub fn received(&self) -> &[String] {
        &self.received
    }

    /// Sends QUIT and waits briefly for the server to close.
    pub async fn quit(mut self) {
        let _ = self.writer.write_all(b"QUIT :bye\r\n").await;
        let deadline = Instant::now() + QUIT_GRACE;
        while let Ok(Ok(Some(_))) = tokio::time::timeout_at(deadline, self.reader.next_line()).await
        {
        }
    }

    /// The next line (kept, PINGs answered); panics on EOF or at `deadline`.
    async fn next_line(&mut self, what: &str, deadline: Instant) -> String {
        match tokio::time::timeout_at(deadline, self.reader.next_line()).await {
            Ok(Ok(Some(line))) => {
                self.keep(line.clone()).await;
                line
            }
            Ok(Ok(None)) => panic!(
                "connection closed while waiting for: {what}\n{}",
                self.tail()
            ),
            Ok(Err(e)) => panic!(
                "read error ({e}) while waiting for: {what}\n{}",
                self.tail()
            ),
            Err(_) => panic!("gave up waiting for: {what}\n{}", self.tail()),
        }
    }

    async fn keep(&mut self, line: String) {
        let (command, params) = command_and_params(&line);
        self.received.push(line);
        if command == "PING" {
            let token = params.last().cloned().unwrap_or_default();
            self.send(&format!("PONG :{token}")).await;
        }
    }

    fn tail(&self) -> String {
        let start = self.received.len().saturating_sub(20);
        let lines = self.received[start..].join("\n  ");
        format!("last lines received by {}:\n  {lines}", self.nick)
    }
}

/// The error numerics agentirc answers a room command with: 401 no such nick, 403 no such
/// channel (or it already exists), 461 missing parameters.
fn is_refusal(command: &str) -> bool {
    matches!(command, "401" | "403" | "461")
}

/// `message-tags=x` → `message-tags` (CAP LS 302 may carry values).
fn cap_name(token: &str) -> String {
    token.split('=').next().unwrap_or(token).to_owned()
}

/// IRCv3 message tags in wire order: `(key, unescaped value)`.
pub type Tags = Vec<(String, String)>;

/// A PRIVMSG split for assertions: `(tags, sender nick, target, text)`; tag values are
/// unescaped per IRCv3 (a tag without a value has `""`). None for any other line.
///
/// | line                                                      | result                          |
/// |-----------------------------------------------------------|---------------------------------|
/// | `:a!u@h PRIVMSG #c :hi there`                              | `([], "a", "#c", "hi there")`   |
/// | `@msgid=1;x=a\sb :a!u@h PRIVMSG b :hi`                    | `([(msgid,1),(x,"a b")], "a", "b", "hi")` |
/// | `:a!u@h NOTICE #c :hi`                                    | None                            |
pub fn parse_privmsg(line: &str) -> Option<(Tags, String, String, String)> {
    let (tags, rest) = split_tags(line);
    let (command, params) = command_and_params(rest);
    if command != "PRIVMSG" || params.len() < 2 {
        return None;
    }
    let sender = source_nick(rest)?;
    Some((tags, sender, params[0].clone(), params[1].clone()))
}

/// Splits an optional `@tags ` prefix off a line, tags parsed and unescaped.
pub fn split_tags(line: &str) -> (Tags, &str) {
    let Some(tagged) = line.strip_prefix('@') else {
        return (Vec::new(), line);
    };
    let (raw, rest) = tagged.split_once(' ').unwrap_or((tagged, ""));
    let tags = raw
        .split(';')
        .filter(|t| !t.is_empty())
        .map(|t| match t.split_once('=') {
            Some((key, value)) => (key.to_owned(), unescape_tag_value(value)),
            None => (t.to_owned(), String::new()),
        })
        .collect();
    (tags, rest.trim_start_matches(' '))
}

/// IRCv3 tag value unescaping.
///
/// | escaped | means     |
/// |---------|-----------|
/// | `\:`    | `;`       |
/// | `\s`    | space     |
/// | `\\`    | `\`       |
/// | `\r`    | CR        |
/// | `\n`    | LF        |
/// | `\x`    | `x`       |
/// | trailing `\` | dropped |
pub fn unescape_tag_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The nick of a line's `:nick!user@host` source (tags allowed before it).
pub fn source_nick(line: &str) -> Option<String> {
    let (_, rest) = split_tags(line);
    let source = rest.strip_prefix(':')?.split(' ').next()?;
    Some(source.split('!').next().unwrap_or(source).to_owned())
}

/// A line's command (uppercased) and parameters, tags and source skipped; the trailing
/// parameter (after ` :`) is the last one.
pub fn command_and_params(line: &str) -> (String, Vec<String>) {
    let (_, mut rest) = split_tags(line);
    if rest.starts_with(':') {
        rest = rest.split_once(' ').map_or("", |(_, r)| r);
    }
    let (middle, trailing) = match rest.split_once(" :") {
        Some((middle, trailing)) => (middle, Some(trailing)),
        None => (rest, None),
    };
    let mut words = middle.split(' ').filter(|w| !w.is_empty());
    let command = words.next().unwrap_or_default().to_ascii_uppercase();
    let mut params: Vec<String> = words.map(str::to_owned).collect();
    if let Some(trailing) = trailing {
        params.push(trailing.to_owned());
    }
    (command, params)
}
