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

use super::requests::{Refusal, known_agent};
use super::server::Peers;

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
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

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
