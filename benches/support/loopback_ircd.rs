//! A tiny loopback IRC server for the benches, in the bench's own process: enough of
//! registration for the `irc` actor to come up (CAP LS/REQ/END, NICK/USER → 001, JOIN
//! echo), then PING → PONG; every other line is read and discarded (PRIVMSGs counted).
//! Included with `#[path = "support/loopback_ircd.rs"] mod loopback_ircd;`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The server's read buffer per connection: small, because the irc bench counts the
/// server's share of each connection in its idle figure.
pub(crate) const SERVER_READ_BUFFER: usize = 1024;

/// Accepts connections forever; each gets its own task that registers it, then answers
/// PINGs and discards everything else until the client goes away, adding every PRIVMSG
/// it reads after registration to `privmsgs`.
pub(crate) async fn serve(listener: TcpListener, privmsgs: Arc<AtomicU64>) {
    while let Ok((stream, _)) = listener.accept().await {
        let privmsgs = Arc::clone(&privmsgs);
        tokio::spawn(async move {
            let (mut lines, mut write) = split(stream);
            if register(&mut lines, &mut write).await.is_ok() {
                let _ = answer_pings(&mut lines, &mut write, &privmsgs).await;
            }
        });
    }
}

/// The connection's read half as lines (a [`SERVER_READ_BUFFER`] buffer) and its write half.
pub(crate) fn split(stream: TcpStream) -> (Lines<BufReader<OwnedReadHalf>>, OwnedWriteHalf) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    (
        BufReader::with_capacity(SERVER_READ_BUFFER, read).lines(),
        write,
    )
}

/// Serves registration the way an IRCv3 server does and returns once the client's first
/// JOIN has been echoed.
///
/// | client sends      | server answers                              |
/// |-------------------|---------------------------------------------|
/// | `CAP LS 302`      | `:srv CAP * LS :message-tags` (holds 001)   |
/// | `CAP REQ :x`      | `:srv CAP * ACK :x`                         |
/// | `CAP END`         | (releases 001)                              |
/// | `NICK n`, `USER`  | `:srv 001 n :Welcome n!u@h` once both seen  |
/// | `PING :x`         | `:srv PONG srv :x`                          |
/// | `JOIN #c`         | `:n!u@127.0.0.1 JOIN #c`, then return       |
pub(crate) async fn register(
    lines: &mut Lines<BufReader<OwnedReadHalf>>,
    write: &mut OwnedWriteHalf,
) -> Result<String> {
    let mut nick: Option<String> = None;
    let mut user = false;
    let mut negotiating = false;
    let mut welcomed = false;
    while let Some(line) = lines.next_line().await? {
        let (verb, args) = verb_and_args(&line);
        match (verb, args.first().copied()) {
            ("CAP", Some("LS")) => {
                negotiating = true;
                send(write, ":srv CAP * LS :message-tags").await?;
            }
            ("CAP", Some("REQ")) => {
                let caps = args.last().copied().unwrap_or_default();
                send(write, &format!(":srv CAP * ACK :{caps}")).await?;
            }
            ("CAP", Some("END")) => negotiating = false,
            ("NICK", Some(name)) => nick = Some(name.to_owned()),
            ("USER", _) => user = true,
            ("PING", token) => pong(write, token.unwrap_or_default()).await?,
            ("JOIN", Some(channel)) => {
                let nick = nick.unwrap_or_default();
                send(write, &format!(":{nick}!u@127.0.0.1 JOIN {channel}")).await?;
                return Ok(nick);
            }
            _ => {}
        }
        if let (Some(name), true, false, false) = (&nick, user, negotiating, welcomed) {
            welcomed = true;
            send(
                write,
                &format!(":srv 001 {name} :Welcome {name}!u@127.0.0.1"),
            )
            .await?;
        }
    }
    Err("the client closed during registration".into())
}

/// After registration: answers PINGs, counts PRIVMSGs and discards every other line until
/// the client goes away.
async fn answer_pings(
    lines: &mut Lines<BufReader<OwnedReadHalf>>,
    write: &mut OwnedWriteHalf,
    privmsgs: &AtomicU64,
) -> Result<()> {
    while let Some(line) = lines.next_line().await? {
        match verb_and_args(&line) {
            ("PING", token) => pong(write, token.first().copied().unwrap_or_default()).await?,
            ("PRIVMSG", _) => {
                privmsgs.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
    Ok(())
}

/// `CAP REQ :a b` → (`CAP`, [`REQ`, `a b`]); tags are skipped.
fn verb_and_args(line: &str) -> (&str, Vec<&str>) {
    let line = untagged(line);
    let (head, trailing) = match line.split_once(" :") {
        Some((head, trailing)) => (head, Some(trailing)),
        None => (line, None),
    };
    let mut words = head.split_whitespace();
    let verb = words.next().unwrap_or_default();
    let mut args: Vec<&str> = words.collect();
    args.extend(trailing);
    (verb, args)
}

/// The line without its `@tags ` part.
pub(crate) fn untagged(line: &str) -> &str {
    match line.strip_prefix('@') {
        Some(rest) => rest.split_once(' ').map_or("", |(_, rest)| rest),
        None => line,
    }
}

async fn pong(write: &mut OwnedWriteHalf, token: &str) -> Result<()> {
    send(write, &format!(":srv PONG srv :{token}")).await
}

async fn send(write: &mut OwnedWriteHalf, line: &str) -> Result<()> {
    write.write_all(format!("{line}\r\n").as_bytes()).await?;
    Ok(())
}
