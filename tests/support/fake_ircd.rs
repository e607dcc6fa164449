//! A loopback fake IRC server for faults real servers cannot produce on demand: refused or
//! withheld registration, nick collisions, SASL outcomes, dropped and half-open (stalled)
//! links. It records every line each connection sent, tags included.
//!
//! What it answers (everything else is only recorded):
//!
//! | client sends              | fake answers                                                  |
//! |---------------------------|---------------------------------------------------------------|
//! | `CAP LS [302]`            | `:fake CAP * LS :<caps>` (+ `sasl` when `Behaviour::sasl`)    |
//! | `CAP REQ :a b`            | ACK if every cap is offered, else NAK (the whole list)        |
//! | `CAP END`                 | ends negotiation (registration waits for it once CAP began)   |
//! | `NICK n`                  | 433 if `n` in `nick_in_use`, 432 if in `erroneous`            |
//! | NICK + USER (+ CAP END)   | `:fake 001 <nick> :Welcome <nick>!<user>@127.0.0.1` if `register` |
//! | `AUTHENTICATE PLAIN`      | `AUTHENTICATE +`; then the payload → 900 + 903, or 904        |
//! | `PING t`                  | `:fake PONG fake :t` if `answer_ping`                         |
//! | `JOIN #c`                 | JOIN echo and 366, once registered                            |
//! | `QUIT`                    | `ERROR :Closing link`, then close                             |
//!
//! Real time only: do not combine with `#[tokio::test(start_paused = true)]`.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Hang detector for the `wait_*` methods: not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// How the fake treats new connections.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Offered in CAP LS; a REQ for a subset is ACKed, anything else NAKed.
    pub caps: Vec<String>,
    /// Send 001 once NICK and USER (and CAP END, if CAP started) arrived; false = never.
    pub register: bool,
    /// Nicks answered with 433.
    pub nick_in_use: Vec<String>,
    /// Nicks answered with 432.
    pub erroneous: Vec<String>,
    /// Answer client PINGs.
    pub answer_ping: bool,
    /// `(user, password)`: offer `sasl` and accept exactly these PLAIN credentials.
    pub sasl: Option<(String, String)>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            caps: vec!["message-tags".to_owned()],
            register: true,
            nick_in_use: Vec::new(),
            erroneous: Vec::new(),
            answer_ping: true,
            sasl: None,
        }
    }
}

/// The running fake; its tasks are aborted (sockets closed) on drop.
pub struct FakeIrcd {
    port: u16,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    behaviour: Mutex<Behaviour>,
    /// Per accepted connection, in accept order.
    connections: Mutex<Vec<Connection>>,
}

struct Connection {
    lines: Vec<String>,
    control: mpsc::UnboundedSender<Control>,
    task: Option<JoinHandle<()>>,
}

/// What a test asks of one connection's task; the reply fires once it is done.
enum Control {
    Send(String, oneshot::Sender<()>),
    SendMany(Vec<String>, oneshot::Sender<()>),
    Drop(oneshot::Sender<()>),
    Stall(oneshot::Sender<()>),
}

impl FakeIrcd {
    pub async fn start(behaviour: Behaviour) -> FakeIrcd {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            connections: Mutex::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        FakeIrcd {
            port,
            shared,
            accept,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Affects connections accepted from now on.
    pub async fn set_behaviour(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().expect("behaviour lock") = behaviour;
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.lock().expect("lock").len()
    }

    /// Every line connection `conn` (0-based) sent, tags included, without CRLF.
    pub async fn lines(&self, conn: usize) -> Vec<String> {
        let connections = self.shared.connections.lock().expect("lock");
        let connection = connections
            .get(conn)
            .unwrap_or_else(|| panic!("no connection {conn} (have {})", connections.len()));
        connection.lines.clone()
    }

    /// Every line from every connection, in connection order.
    pub async fn all_lines(&self) -> Vec<String> {
        let connections = self.shared.connections.lock().expect("lock");
        connections.iter().flat_map(|c| c.lines.clone()).collect()
    }

    /// Writes `line` (CRLF appended) to connection `conn`; a no-op once it is closed or
    /// stalled.
    pub async fn send(&self, conn: usize, line: &str) {
        self.control(conn, |done| Control::Send(line.to_owned(), done))
            .await;
    }

    /// Writes `lines` to connection `conn` as fast as the socket takes them (one buffer),
    /// e.g. a flood no real server would send; returns once all are written.
    pub async fn send_many(&self, conn: usize, lines: Vec<String>) {
        self.control(conn, |done| Control::SendMany(lines, done))
            .await;
    }

    /// Closes connection `conn` at once (the client reads EOF).
    pub async fn drop_connection(&self, conn: usize) {
        self.control(conn, Control::Drop).await;
    }

    /// Keeps connection `conn` open but stops reading from it and answering it: a
    /// half-open link as the client sees it.
    pub async fn stall(&self, conn: usize) {
        self.control(conn, Control::Stall).await;
    }

    async fn control(&self, conn: usize, make: impl FnOnce(oneshot::Sender<()>) -> Control) {
        let (done, finished) = oneshot::channel();
        {
            let connections = self.shared.connections.lock().expect("lock");
            let connection = connections
                .get(conn)
                .unwrap_or_else(|| panic!("no connection {conn} (have {})", connections.len()));
            let _ = connection.control.send(make(done));
        }
        // Err: the connection already ended, which is as done as it gets.
        let _ = finished.await;
    }

    /// Polls until some connection sent a line matching `pred(conn, line)`; returns the
    /// first such `(conn, line)`. Panics with `what` and every line after 30 s.
    pub async fn wait_for_line(
        &self,
        what: &str,
        pred: impl Fn(usize, &str) -> bool,
    ) -> (usize, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(found) = self.find_line(&pred) {
                return found;
            }
            if Instant::now() >= deadline {
                panic!("gave up waiting for: {what}\n{}", self.dump());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls until at least `n` connections were accepted; panics after 30 s.
    pub async fn wait_connections(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.connections() < n {
            if Instant::now() >= deadline {
                panic!(
                    "gave up waiting for {n} connections (have {})\n{}",
                    self.connections(),
                    self.dump()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn find_line(&self, pred: &impl Fn(usize, &str) -> bool) -> Option<(usize, String)> {
        let connections = self.shared.connections.lock().expect("lock");
        connections.iter().enumerate().find_map(|(conn, c)| {
            let line = c.lines.iter().find(|line| pred(conn, line))?;
            Some((conn, line.clone()))
        })
    }

    fn dump(&self) -> String {
        let connections = self.shared.connections.lock().expect("lock");
        let mut out = String::from("lines received by the fake ircd:");
        for (conn, c) in connections.iter().enumerate() {
            for line in &c.lines {
                out.push_str(&format!("\n  [{conn}] {line}"));
            }
        }
        out
    }
}

impl Drop for FakeIrcd {
    fn drop(&mut self) {
        self.accept.abort();
        if let Ok(mut connections) = self.shared.connections.lock() {
            for task in connections.iter_mut().filter_map(|c| c.task.take()) {
                task.abort();
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        let behaviour = shared.behaviour.lock().expect("behaviour lock").clone();
        let (control, commands) = mpsc::unbounded_channel();
        let mut connections = shared.connections.lock().expect("lock");
        let conn = connections.len();
        let task = tokio::spawn(serve(
            conn,
            stream,
            behaviour,
            Arc::clone(&shared),
            commands,
        ));
        connections.push(Connection {
            lines: Vec::new(),
            control,
            task: Some(task),
        });
    }
}

/// One connection: reads lines, records them, answers per `Session`, obeys `Control`.
async fn serve(
    conn: usize,
    stream: TcpStream,
    behaviour: Behaviour,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Control>,
) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut session = Session::new(behaviour);
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { return };
                record(&shared, conn, &line);
                let replies = session.on_line(&line);
                if write_lines(&mut write, &replies).await.is_err() || session.closed {
                    return;
                }
            }
            command = commands.recv() => match command {
                Some(Control::Send(line, done)) => {
                    let _ = write_lines(&mut write, &[line]).await;
                    let _ = done.send(());
                }
                Some(Control::SendMany(many, done)) => {
                    let bytes: String = many.iter().map(|l| format!("{l}\r\n")).collect();
                    let _ = write.write_all(bytes.as_bytes()).await;
                    let _ = done.send(());
                }
                Some(Control::Drop(done)) => {
                    let _ = write.shutdown().await;
                    drop((lines, write));
                    let _ = done.send(());
                    return;
                }
                Some(Control::Stall(done)) => {
                    let _ = done.send(());
                    return stalled(commands, (lines, write)).await;
                }
                None => return,
            },
        }
    }
}

/// Holds the socket open, reading nothing and sending nothing, until told to drop it.
async fn stalled<T>(mut commands: mpsc::UnboundedReceiver<Control>, socket: T) {
    while let Some(command) = commands.recv().await {
        match command {
            Control::Send(_, done) | Control::SendMany(_, done) | Control::Stall(done) => {
                let _ = done.send(());
            }
            Control::Drop(done) => {
                drop(socket);
                let _ = done.send(());
                return;
            }
        }
    }
}

fn record(shared: &Shared, conn: usize, line: &str) {
    let mut connections = shared.connections.lock().expect("lock");
    if let Some(connection) = connections.get_mut(conn) {
        connection.lines.push(line.to_owned());
    }
}

async fn write_lines(write: &mut OwnedWriteHalf, lines: &[String]) -> std::io::Result<()> {
    for line in lines {
        write.write_all(format!("{line}\r\n").as_bytes()).await?;
    }
    Ok(())
}

/// The protocol state of one connection: pure, line in → replies out.
struct Session {
    behaviour: Behaviour,
    nick: Option<String>,
    user: Option<String>,
    cap_negotiating: bool,
    registered: bool,
    sasl_pending: bool,
    acked: Vec<String>,
    closed: bool,
}

impl Session {
    fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            nick: None,
            user: None,
            cap_negotiating: false,
            registered: false,
            sasl_pending: false,
            acked: Vec::new(),
            closed: false,
        }
    }

    fn on_line(&mut self, line: &str) -> Vec<String> {
        let (command, params) = parse(line);
        let mut replies = match command.as_str() {
            "CAP" => self.on_cap(&params),
            "NICK" => self.on_nick(&params),
            "USER" => {
                self.user = params.first().cloned();
                Vec::new()
            }
            "AUTHENTICATE" => self.on_authenticate(&params),
            "PING" if self.behaviour.answer_ping => {
                let token = params.last().cloned().unwrap_or_default();
                vec![format!(":fake PONG fake :{token}")]
            }
            "JOIN" if self.registered => self.on_join(&params),
            "QUIT" => {
                self.closed = true;
                vec!["ERROR :Closing link".to_owned()]
            }
            _ => Vec::new(),
        };
        replies.extend(self.try_register());
        replies
    }

    /// `*` before registration, the nick after.
    fn target(&self) -> String {
        match (&self.nick, self.registered) {
            (Some(nick), true) => nick.clone(),
            _ => "*".to_owned(),
        }
    }

    fn offered(&self) -> Vec<String> {
        let mut caps = self.behaviour.caps.clone();
        if self.behaviour.sasl.is_some() && !caps.iter().any(|c| c == "sasl") {
            caps.push("sasl".to_owned());
        }
        caps
    }

    fn on_cap(&mut self, params: &[String]) -> Vec<String> {
        let subcommand = params.first().map(|s| s.to_ascii_uppercase());
        let target = self.target();
        match subcommand.as_deref() {
            Some("LS") => {
                self.cap_negotiating = !self.registered;
                vec![format!(
                    ":fake CAP {target} LS :{}",
                    self.offered().join(" ")
                )]
            }
            Some("REQ") => {
                self.cap_negotiating = !self.registered;
                let requested = params.get(1).cloned().unwrap_or_default();
                let offered = self.offered();
                let all_offered = requested
                    .split_whitespace()
                    .all(|cap| offered.iter().any(|o| o == cap.trim_start_matches('-')));
                if all_offered {
                    self.acked
                        .extend(requested.split_whitespace().map(str::to_owned));
                    vec![format!(":fake CAP {target} ACK :{requested}")]
                } else {
                    vec![format!(":fake CAP {target} NAK :{requested}")]
                }
            }
            Some("LIST") => vec![format!(":fake CAP {target} LIST :{}", self.acked.join(" "))],
            Some("END") => {
                self.cap_negotiating = false;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn on_nick(&mut self, params: &[String]) -> Vec<String> {
        let Some(nick) = params.first().cloned() else {
            return vec![":fake 431 * :No nickname given".to_owned()];
        };
        let target = self.target();
        if self.behaviour.nick_in_use.contains(&nick) {
            return vec![format!(
                ":fake 433 {target} {nick} :Nickname is already in use"
            )];
        }
        if self.behaviour.erroneous.contains(&nick) {
            return vec![format!(":fake 432 {target} {nick} :Erroneous nickname")];
        }
        let old = self.nick.replace(nick.clone());
        match (old, self.registered) {
            (Some(old), true) => vec![format!(":{old}!{} NICK :{nick}", self.user_host())],
            _ => Vec::new(),
        }
    }

    fn on_authenticate(&mut self, params: &[String]) -> Vec<String> {
        let target = self.target();
        let Some((user, pass)) = self.behaviour.sasl.clone() else {
            return vec![format!(":fake 904 {target} :SASL authentication failed")];
        };
        let argument = params.first().cloned().unwrap_or_default();
        if !self.sasl_pending {
            if argument.eq_ignore_ascii_case("PLAIN") {
                self.sasl_pending = true;
                return vec!["AUTHENTICATE +".to_owned()];
            }
            return vec![
                format!(":fake 908 {target} PLAIN :are available SASL mechanisms"),
                format!(":fake 904 {target} :SASL authentication failed"),
            ];
        }
        self.sasl_pending = false;
        if argument == "*" {
            return vec![format!(":fake 906 {target} :SASL authentication aborted")];
        }
        if plain_matches(&argument, &user, &pass) {
            vec![
                format!(
                    ":fake 900 {target} {target}!{user}@127.0.0.1 {user} :You are now logged in as {user}"
                ),
                format!(":fake 903 {target} :SASL authentication successful"),
            ]
        } else {
            vec![format!(":fake 904 {target} :SASL authentication failed")]
        }
    }

    fn on_join(&mut self, params: &[String]) -> Vec<String> {
        let nick = self.target();
        let source = format!(":{nick}!{}", self.user_host());
        params
            .first()
            .map(|list| list.split(',').map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .flat_map(|channel| {
                [
                    format!("{source} JOIN {channel}"),
                    format!(":fake 366 {nick} {channel} :End of /NAMES list."),
                ]
            })
            .collect()
    }

    fn user_host(&self) -> String {
        format!("{}@127.0.0.1", self.user.as_deref().unwrap_or("user"))
    }

    /// 001 once NICK and USER are in and CAP negotiation (if begun) ended.
    fn try_register(&mut self) -> Vec<String> {
        let ready = self.nick.is_some() && self.user.is_some() && !self.cap_negotiating;
        if self.registered || !ready || !self.behaviour.register {
            return Vec::new();
        }
        self.registered = true;
        let nick = self.target();
        vec![format!(
            ":fake 001 {nick} :Welcome {nick}!{}",
            self.user_host()
        )]
    }
}

/// Command (uppercased) and params of a client line; tags and source skipped.
fn parse(line: &str) -> (String, Vec<String>) {
    let mut rest = line;
    if rest.starts_with('@') {
        rest = rest.split_once(' ').map_or("", |(_, r)| r);
    }
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
    params.extend(trailing.map(str::to_owned));
    (command, params)
}

/// Does a base64 SASL PLAIN payload (`authzid \0 user \0 pass`) carry these credentials?
/// The authzid may be empty or equal to `user`.
fn plain_matches(payload: &str, user: &str, pass: &str) -> bool {
    let Some(decoded) = base64_decode(payload) else {
        return false;
    };
    let fields: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
    match fields.as_slice() {
        [authzid, authcid, password] => {
            (authzid.is_empty() || *authzid == user.as_bytes())
                && *authcid == user.as_bytes()
                && *password == pass.as_bytes()
        }
        _ => false,
    }
}

/// Standard base64 (RFC 4648, `=` padding optional); None on any other character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        buffer = (buffer << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}
