//! `watch`: the connection becomes a stream of the audit log's live records (every agent's,
//! or one's), one JSON object per line, exactly as the audit file would hold them.
//!
//! | the tap gives                     | the watcher gets                                       |
//! |-----------------------------------|--------------------------------------------------------|
//! | a record of a watched agent       | the record's line                                      |
//! | a record of another agent         | nothing                                                |
//! | [`Tapped::Skipped`] (it fell behind) | `{"ts":…,"event_type":"watch.skipped","payload":{"skipped":N}}` |
//! | [`Tapped::Closed`]                | the end of the connection                              |
//!
//! The stream ends when the client hangs up (the read half sees end of file; anything it
//! sends is ignored) or a write fails; the subscription is dropped with it. A watcher that
//! does not read only stalls its own connection: the agents publish on a broadcast that
//! never waits, and the watcher's backlog becomes a `watch.skipped` line.

use std::time::SystemTime;

use codexd_actors::audit::{Record, Tap, Tapped};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::Peers;
use super::requests::{Refusal, known_agent};

/// A subscribed watcher, before its stream starts.
pub(super) struct Watcher {
    tap: Tap,
    nick: Option<String>,
    agents: Vec<String>,
}

/// Subscribes to the live tap for agent `nick` (which the Host must know) or for every
/// agent; records published from now on are the watcher's.
pub(super) async fn subscribe(peers: &Peers, nick: Option<&str>) -> Result<Watcher, Refusal> {
    let agents = match nick {
        Some(nick) => {
            known_agent(peers, nick).await?;
            vec![nick.to_owned()]
        }
        None => peers
            .host
            .status()
            .await?
            .agents
            .into_iter()
            .map(|a| a.nick)
            .collect(),
    };
    Ok(Watcher {
        tap: peers.audit.watch(),
        nick: nick.map(str::to_owned),
        agents,
    })
}

impl Watcher {
    /// The answer's `data`: the agents watched (with no nick, those hosted now; agents
    /// added later are watched too).
    pub(super) fn describe(&self) -> Value {
        json!({ "agents": self.agents })
    }

    /// Streams records to `write` until the client hangs up, a write fails or the log ends.
    pub(super) async fn stream(
        mut self,
        reader: &mut BufReader<OwnedReadHalf>,
        write: &mut OwnedWriteHalf,
    ) {
        let nick = self.nick.clone().unwrap_or_default();
        tracing::info!(agent.nick = %nick, "watch started");
        let mut ignored = [0u8; 256];
        let mut skipped = 0;
        let why = loop {
            let tapped = tokio::select! {
                read = reader.read(&mut ignored) => match read {
                    Ok(0) | Err(_) => break "client left",
                    Ok(_) => continue,
                },
                tapped = self.tap.next() => tapped,
            };
            let line = match tapped {
                Tapped::Record(record) if self.wants(&record) => record_line(&record),
                Tapped::Record(_) => continue,
                Tapped::Skipped(count) => {
                    skipped += count;
                    skipped_line(count, SystemTime::now())
                }
                Tapped::Closed => break "the audit log closed",
            };
            if write.write_all(&line).await.is_err() {
                break "write failed";
            }
        };
        tracing::info!(agent.nick = %nick, skipped, reason = why, "watch ended");
    }

    fn wants(&self, record: &Record) -> bool {
        self.nick
            .as_deref()
            .is_none_or(|nick| record.agent() == nick)
    }
}

/// The record as the audit file holds it, newline-terminated.
fn record_line(record: &Record) -> Vec<u8> {
    let mut line = serde_json::to_vec(record).unwrap_or_default();
    line.push(b'\n');
    line
}

/// The line that tells a watcher `count` records (of any agent) were lost.
fn skipped_line(count: u64, now: SystemTime) -> Vec<u8> {
    let ts = humantime::format_rfc3339_micros(now).to_string();
    let value = json!({
        "ts": ts,
        "event_type": "watch.skipped",
        "payload": { "skipped": count },
    });
    let mut line = value.to_string().into_bytes();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use codexd_actors::audit::{Event, MessageOut, TAP_CAPACITY};
    use codexd_actors::trace::TraceCtx;
    use tokio::io::AsyncBufReadExt;
    use tokio::net::UnixStream;

    use super::*;

    fn said(text: &str) -> Event {
        Event::MessageOut(MessageOut {
            command: "PRIVMSG",
            target: "#dev".to_owned(),
            text: text.to_owned(),
            lines: 1,
            queued: false,
        })
    }

    #[tokio::test]
    async fn a_slow_watcher_is_told_what_it_missed_and_a_gone_one_ends_the_stream() {
        let audit = codexd_actors::audit::live("spark", Arc::new(SystemTime::now));
        let watcher = Watcher {
            tap: audit.watch(),
            nick: Some("spark-a".to_owned()),
            agents: vec!["spark-a".to_owned()],
        };
        // Published before the stream reads anything: the oldest 10 are lost.
        for n in 0..TAP_CAPACITY + 10 {
            let agent = if n % 2 == 0 { "spark-a" } else { "spark-b" };
            audit
                .agent(agent)
                .record(said(&n.to_string()), &TraceCtx::default());
        }
        let (server, client) = UnixStream::pair().expect("pair");
        let (read, mut write) = server.into_split();
        let stream = tokio::spawn(async move {
            let mut reader = BufReader::new(read);
            watcher.stream(&mut reader, &mut write).await;
        });
        let (client_read, client_write) = client.into_split();
        let mut lines = BufReader::new(client_read).lines();
        let first: Value =
            serde_json::from_str(&lines.next_line().await.expect("read").expect("a line"))
                .expect("JSON");
        assert_eq!(first["event_type"], "watch.skipped");
        assert_eq!(first["payload"]["skipped"], 10);
        let next: Value =
            serde_json::from_str(&lines.next_line().await.expect("read").expect("a line"))
                .expect("JSON");
        assert_eq!(next["agent"], "spark-a", "only the watched agent's records");
        assert_eq!(next["payload"]["text"], "10");
        drop((lines, client_write));
        tokio::time::timeout(Duration::from_secs(10), stream)
            .await
            .expect("the stream notices the hang-up")
            .expect("no panic");
    }

    #[test]
    fn a_skipped_line_counts_what_was_lost() {
        let line = skipped_line(12, UNIX_EPOCH + Duration::from_secs(1_772_409_599));
        let value: Value = serde_json::from_slice(&line).expect("JSON");
        assert_eq!(
            value,
            json!({
                "ts": "2026-03-01T23:59:59.000000Z",
                "event_type": "watch.skipped",
                "payload": { "skipped": 12 },
            })
        );
        assert_eq!(line.last(), Some(&b'\n'));
    }
}
