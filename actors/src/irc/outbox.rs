//! A connection's outbox: the lines waiting for the socket, in four classes, and the writer
//! task that sends them one at a time. Replies must not wait behind status chatter, and no
//! class may flood the server, so each class has its own rule:
//!
//! | class      | what                                       | goes out                                         | limit                       |
//! |------------|--------------------------------------------|--------------------------------------------------|-----------------------------|
//! | `urgent`   | PONG, PING, registration, QUIT             | first, never waits for a token                   | none (few, small)           |
//! | `normal`   | replies, IPC/tool sends, JOIN/PART/TOPIC/… | after urgent, in order                           | the flood bucket (`flood_*`) |
//! | `presence` | agentirc `PRESENCE` and its heartbeat      | only when no normal line waits; one slot: a newer state replaces an unsent older one | its own bucket ([`PRESENCE_FLOOD`]) |
//! | `low`      | courtesy NOTICEs (refused mentions)        | only when no normal line waits, after presence   | a bucket of its own with the flood settings, [`LOW_QUEUE`] lines |
//!
//! Presence and low lines never spend the flood bucket's tokens, so a burst of replies keeps
//! its whole budget. Once the connection is closed only urgent lines (the QUIT) still go out.
//! [`Outbox::next`] is pure (the caller passes the clock); [`write_lines`] is the loop around it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::flood::TokenBucket;
use super::settings::FloodSettings;

/// Normal lines the outbox may hold before the actor treats the link as backed up.
pub(super) const NORMAL_QUEUE: usize = 1024;
/// Low-priority lines the outbox may hold; more are dropped (and counted by the actor). The
/// intake sends one per refused sender per admission window, so this is that many senders.
pub(super) const LOW_QUEUE: usize = 1024;
/// Presence updates: a few back to back, then one a second (the slot keeps the latest).
pub(super) const PRESENCE_FLOOD: FloodSettings = FloodSettings {
    burst: 4,
    per_second: 1.0,
};

/// What the writer does next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Write this line now.
    Line(String),
    /// Nothing may go out before this instant (unless something new arrives).
    Wait(Instant),
    /// Nothing is waiting.
    Idle,
    /// The connection is closed and every urgent line is out.
    Closed,
}

/// The queued lines of one connection and the buckets that pace them.
#[derive(Debug)]
pub(super) struct Outbox {
    urgent: VecDeque<String>,
    normal: VecDeque<String>,
    presence: Option<String>,
    low: VecDeque<String>,
    normal_bucket: TokenBucket,
    presence_bucket: TokenBucket,
    low_bucket: TokenBucket,
    closed: bool,
}

fn bucket(flood: FloodSettings, now: Instant) -> TokenBucket {
    TokenBucket::new(flood.burst, flood.per_second, now)
}

impl Outbox {
    /// An empty outbox whose normal lines are paced by `flood`, buckets full at `now`.
    pub(super) fn new(flood: FloodSettings, now: Instant) -> Self {
        Self {
            urgent: VecDeque::new(),
            normal: VecDeque::new(),
            presence: None,
            low: VecDeque::new(),
            normal_bucket: bucket(flood, now),
            presence_bucket: bucket(PRESENCE_FLOOD, now),
            low_bucket: bucket(flood, now),
            closed: false,
        }
    }

    fn push_urgent(&mut self, line: String) {
        if !self.closed {
            self.urgent.push_back(line);
        }
    }

    /// All of `lines` or none: false when they do not fit in [`NORMAL_QUEUE`].
    fn push_normal(&mut self, lines: Vec<String>) -> bool {
        if self.closed || self.normal.len() + lines.len() > NORMAL_QUEUE {
            return false;
        }
        self.normal.extend(lines);
        true
    }

    /// Normal lines accepted earlier (rejoins, the send queue flushed after a welcome):
    /// bounded where they were accepted, so never refused here.
    fn push_accepted(&mut self, lines: Vec<String>) {
        if !self.closed {
            self.normal.extend(lines);
        }
    }

    /// Replaces an unsent presence line, if any.
    fn push_presence(&mut self, line: String) {
        if !self.closed {
            self.presence = Some(line);
        }
    }

    /// All of `lines` or none: false when they do not fit in [`LOW_QUEUE`].
    fn push_low(&mut self, lines: Vec<String>) -> bool {
        if self.closed || self.low.len() + lines.len() > LOW_QUEUE {
            return false;
        }
        self.low.extend(lines);
        true
    }

    /// The line to write at `now`, or how long to wait: urgent first; then normal lines
    /// when the flood bucket has a token (while one waits for its token nothing else but
    /// urgent lines goes); then presence and low lines, each when its own bucket allows.
    pub(super) fn next(&mut self, now: Instant) -> Next {
        if let Some(line) = self.urgent.pop_front() {
            return Next::Line(line);
        }
        if self.closed {
            return Next::Closed;
        }
        if !self.normal.is_empty() {
            return match self.normal_bucket.take(now) {
                Ok(()) => self.normal.pop_front().map_or(Next::Idle, Next::Line),
                Err(wait) => Next::Wait(now + wait),
            };
        }
        let mut wait = None;
        if self.presence.is_some() {
            match self.presence_bucket.take(now) {
                Ok(()) => return self.presence.take().map_or(Next::Idle, Next::Line),
                Err(until) => wait = Some(until),
            }
        }
        if !self.low.is_empty() {
            match self.low_bucket.take(now) {
                Ok(()) => return self.low.pop_front().map_or(Next::Idle, Next::Line),
                Err(until) => wait = Some(wait.map_or(until, |w| until.min(w))),
            }
        }
        wait.map_or(Next::Idle, |wait| Next::Wait(now + wait))
    }
}

/// The outbox shared by the actor (which fills it) and the writer (which empties it).
#[derive(Debug, Clone)]
pub(super) struct Shared {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    outbox: Mutex<Outbox>,
    wake: Notify,
}

impl Shared {
    pub(super) fn new(outbox: Outbox) -> Self {
        Self {
            inner: Arc::new(Inner {
                outbox: Mutex::new(outbox),
                wake: Notify::new(),
            }),
        }
    }

    fn with<T>(&self, change: impl FnOnce(&mut Outbox) -> T) -> T {
        let result = change(&mut self.lock());
        self.inner.wake.notify_one();
        result
    }

    fn lock(&self) -> MutexGuard<'_, Outbox> {
        self.inner
            .outbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// PONG, PING, registration, QUIT: ahead of everything else.
    pub(super) fn urgent(&self, line: String) {
        self.with(|outbox| outbox.push_urgent(line));
    }

    /// Chat and commands, paced; false (nothing queued) when the outbox is backed up.
    pub(super) fn normal(&self, lines: Vec<String>) -> bool {
        self.with(|outbox| outbox.push_normal(lines))
    }

    /// Normal lines that were accepted before this connection (rejoins, the send queue).
    pub(super) fn accepted(&self, lines: Vec<String>) {
        self.with(|outbox| outbox.push_accepted(lines));
    }

    /// The agent's latest presence; replaces one not yet sent.
    pub(super) fn presence(&self, line: String) {
        self.with(|outbox| outbox.push_presence(line));
    }

    /// Courtesy lines; false (nothing queued) when [`LOW_QUEUE`] is full.
    pub(super) fn low(&self, lines: Vec<String>) -> bool {
        self.with(|outbox| outbox.push_low(lines))
    }

    /// No more lines are accepted; the writer sends the urgent ones left and ends.
    pub(super) fn close(&self) {
        self.with(|outbox| outbox.closed = true);
    }

    fn next(&self, now: Instant) -> Next {
        self.lock().next(now)
    }
}

/// Writes the outbox's lines in [`Outbox::next`]'s order until it is closed (or a write
/// fails); returns why it ended.
pub(super) async fn write_lines<W: AsyncWrite + Unpin>(mut write: W, outbox: Shared) -> String {
    loop {
        let line = match outbox.next(Instant::now()) {
            Next::Line(line) => line,
            Next::Wait(until) => {
                tokio::select! {
                    () = outbox.inner.wake.notified() => {}
                    () = tokio::time::sleep_until(until) => {}
                }
                continue;
            }
            Next::Idle => {
                outbox.inner.wake.notified().await;
                continue;
            }
            Next::Closed => return "writer closed".to_owned(),
        };
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(b"\r\n");
        if let Err(error) = write.write_all(&bytes).await {
            return format!("write error: {error}");
        }
        if let Err(error) = write.flush().await {
            return format!("write error: {error}");
        }
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
