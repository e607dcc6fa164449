//! Culture's per-target message buffer (spec §6): a ring of recent messages per key with an
//! unread cursor, shared by the IPC `irc_read` request and the channel poll loop.
//!
//! Keys are `#channel` (or `&channel`) for channel traffic and `DM:<peer>` for direct
//! messages both ways ([`key_for`]). Each key keeps at most `capacity` entries plus two
//! counters: `total` (messages ever added) and `cursor` (`total` at the last [`read`]).
//!
//! | operation          | returns                                          | cursor      |
//! |--------------------|--------------------------------------------------|-------------|
//! | [`read`]           | unread entries still in the ring, newest `limit` | set to total |
//! | [`read_thread`]    | ring entries of one thread, newest `limit`       | unchanged   |
//! | [`unread`]         | unread entries still in the ring (a count)       | unchanged   |
//!
//! Divergence: Culture keeps every key forever; here at most `max_keys` keys are kept and
//! adding to a new key beyond that evicts the key least recently added to, unread or not.
//! Keys and nicks are compared byte-exact, like upstream (`#General` ≠ `#general`).
//!
//! [`read`]: MessageBuffer::read
//! [`read_thread`]: MessageBuffer::read_thread
//! [`unread`]: MessageBuffer::unread

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One buffered line, as `irc_read` reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BufferedMessage {
    /// Who sent it (the agent's own nick for its own lines, `server` for topic replies).
    pub nick: String,
    /// The text, verbatim (a `[thread:…] ` prefix included).
    pub text: String,
    /// Receive time in float epoch seconds.
    pub timestamp: f64,
    /// The thread named by a `[thread:<name>] ` prefix of `text` (see [`thread_of`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// The IRCv3 `msgid` tag, when the server sent one (not reported over IPC).
    #[serde(skip)]
    pub msgid: Option<String>,
}

impl BufferedMessage {
    /// A message with `thread` parsed from `text` by [`thread_of`].
    pub fn new(nick: &str, text: &str, timestamp: f64, msgid: Option<String>) -> Self {
        Self {
            nick: nick.to_owned(),
            text: text.to_owned(),
            timestamp,
            thread: thread_of(text).map(str::to_owned),
            msgid,
        }
    }
}

/// The ring and counters of one key.
#[derive(Debug, Default)]
struct KeyBuffer {
    /// The newest entries, oldest first.
    ring: VecDeque<BufferedMessage>,
    /// How many messages were ever added.
    total: u64,
    /// `total` at the last read.
    cursor: u64,
    /// The buffer's add sequence number at the last add, for key eviction.
    last_added: u64,
}

impl KeyBuffer {
    /// Unread entries that are still in the ring.
    fn unread(&self) -> usize {
        let new = self.total - self.cursor;
        usize::try_from(new).map_or(self.ring.len(), |new| new.min(self.ring.len()))
    }
}

/// Per-key rings of recent messages with an unread cursor (see the module doc).
#[derive(Debug)]
pub struct MessageBuffer {
    /// Entries kept per key (at least 1).
    capacity: usize,
    /// Keys kept at once (at least 1).
    max_keys: usize,
    /// The buffers by key.
    keys: BTreeMap<String, KeyBuffer>,
    /// Counts adds across all keys, to find the key least recently added to.
    adds: u64,
}

impl MessageBuffer {
    /// An empty buffer keeping `capacity` entries per key (Culture: 500) for at most
    /// `max_keys` keys; both count as at least 1.
    pub fn new(capacity: usize, max_keys: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            max_keys: max_keys.max(1),
            keys: BTreeMap::new(),
            adds: 0,
        }
    }

    /// Appends `message` to `key`'s ring, dropping its oldest entry when full. A new key
    /// beyond `max_keys` first evicts the key least recently added to.
    pub fn add(&mut self, key: &str, message: BufferedMessage) {
        if !self.keys.contains_key(key) && self.keys.len() >= self.max_keys {
            self.evict_stalest_key();
        }
        self.adds += 1;
        let buffer = self.keys.entry(key.to_owned()).or_default();
        if buffer.ring.len() >= self.capacity {
            buffer.ring.pop_front();
        }
        buffer.ring.push_back(message);
        buffer.total += 1;
        buffer.last_added = self.adds;
    }

    /// Removes the key whose last add is the oldest.
    fn evict_stalest_key(&mut self) {
        let stalest = self
            .keys
            .iter()
            .min_by_key(|(_, buffer)| buffer.last_added)
            .map(|(key, _)| key.clone());
        if let Some(key) = stalest {
            self.keys.remove(&key);
        }
    }

    /// The unread messages of `key`, oldest first, then marks everything read.
    ///
    /// Unread messages already evicted from the ring are gone; of the rest only the newest
    /// `limit` are returned and the older ones are skipped for good (Culture's contract).
    ///
    /// | state (ring 5)                  | limit | returns        |
    /// |---------------------------------|-------|----------------|
    /// | unknown key or nothing added    | any   | nothing        |
    /// | 10 added, none read             | 50    | msg5..msg9     |
    /// | 3 added, read, 2 more added     | 50    | the 2 new ones |
    /// | 5 added, none read              | 2     | msg3, msg4     |
    /// | everything read                 | any   | nothing        |
    pub fn read(&mut self, key: &str, limit: usize) -> Vec<BufferedMessage> {
        let Some(buffer) = self.keys.get_mut(key) else {
            return Vec::new();
        };
        let count = buffer.unread().min(limit);
        buffer.cursor = buffer.total;
        newest(buffer.ring.iter(), count)
    }

    /// The ring entries of `key` in thread `thread`, the newest `limit` of them, oldest
    /// first. Does not touch the unread cursor.
    pub fn read_thread(&self, key: &str, thread: &str, limit: usize) -> Vec<BufferedMessage> {
        let Some(buffer) = self.keys.get(key) else {
            return Vec::new();
        };
        let in_thread: Vec<&BufferedMessage> = buffer
            .ring
            .iter()
            .filter(|message| message.thread.as_deref() == Some(thread))
            .collect();
        let count = in_thread.len().min(limit);
        newest(in_thread.into_iter(), count)
    }

    /// How many messages [`read`](Self::read) would return with no limit.
    pub fn unread(&self, key: &str) -> usize {
        self.keys.get(key).map_or(0, KeyBuffer::unread)
    }

    /// Every nick in every ring (the agent's own nick and `server` included).
    pub fn known_nicks(&self) -> BTreeSet<String> {
        self.keys
            .values()
            .flat_map(|buffer| buffer.ring.iter())
            .map(|message| message.nick.clone())
            .collect()
    }

    /// The keys currently kept, in byte order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// The last `count` items of `items`, cloned, oldest first.
fn newest<'a>(
    items: impl ExactSizeIterator<Item = &'a BufferedMessage>,
    count: usize,
) -> Vec<BufferedMessage> {
    let skip = items.len() - count;
    items.skip(skip).cloned().collect()
}

/// The buffer key of direct messages with `peer`: `DM:<peer>`.
pub fn dm_key(peer: &str) -> String {
    format!("DM:{peer}")
}

/// The buffer key of a message to `target` exchanged with `peer`.
///
/// | target    | peer    | key       |
/// |-----------|---------|-----------|
/// | `#rust`   | `bob`   | `#rust`   |
/// | `&local`  | `bob`   | `&local`  |
/// | `mynick`  | `bob`   | `DM:bob`  |
pub fn key_for(target: &str, peer: &str) -> String {
    if target.starts_with('#') || target.starts_with('&') {
        target.to_owned()
    } else {
        dm_key(peer)
    }
}

/// The thread name of a `[thread:<name>] ` prefix, as the regex
/// `^\[thread:([a-zA-Z0-9\-]+)\] ` captures it.
///
/// | text              | thread   |
/// |-------------------|----------|
/// | `[thread:abc-1] hi` | `abc-1` |
/// | `[thread:] x`     | none     |
/// | `[thread:a_b] x`  | none     |
/// | `[thread:a]x`     | none     |
/// | `x [thread:a] y`  | none     |
pub fn thread_of(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("[thread:")?;
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(rest.len());
    let (name, after) = rest.split_at(len);
    (!name.is_empty() && after.starts_with("] ")).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> BufferedMessage {
        BufferedMessage::new("alice", text, 1.0, None)
    }

    fn add_numbered(buffer: &mut MessageBuffer, key: &str, range: std::ops::Range<usize>) {
        for i in range {
            buffer.add(key, message(&format!("msg{i}")));
        }
    }

    fn texts(messages: &[BufferedMessage]) -> Vec<&str> {
        messages.iter().map(|m| m.text.as_str()).collect()
    }

    #[test]
    fn ring_evicts_the_oldest() {
        let mut buffer = MessageBuffer::new(5, 10);
        add_numbered(&mut buffer, "#c", 0..10);
        assert_eq!(
            texts(&buffer.read("#c", 50)),
            ["msg5", "msg6", "msg7", "msg8", "msg9"]
        );
    }

    #[test]
    fn limit_returns_the_newest() {
        let mut buffer = MessageBuffer::new(500, 10);
        add_numbered(&mut buffer, "#c", 0..20);
        let read = buffer.read("#c", 5);
        assert_eq!(read.len(), 5);
        assert_eq!(read[0].text, "msg15");
        assert!(
            buffer.read("#c", 5).is_empty(),
            "skipped messages stay read"
        );
    }

    #[test]
    fn keys_are_independent() {
        let mut buffer = MessageBuffer::new(500, 10);
        add_numbered(&mut buffer, "#a", 0..3);
        add_numbered(&mut buffer, "DM:bob", 10..12);
        assert_eq!(texts(&buffer.read("#a", 50)), ["msg0", "msg1", "msg2"]);
        assert_eq!(buffer.unread("DM:bob"), 2);
        assert_eq!(texts(&buffer.read("DM:bob", 50)), ["msg10", "msg11"]);
    }

    #[test]
    fn second_read_returns_only_newer() {
        let mut buffer = MessageBuffer::new(500, 10);
        add_numbered(&mut buffer, "#c", 0..3);
        assert_eq!(buffer.read("#c", 50).len(), 3);
        assert!(buffer.read("#c", 50).is_empty());
        add_numbered(&mut buffer, "#c", 3..5);
        assert_eq!(texts(&buffer.read("#c", 50)), ["msg3", "msg4"]);
    }

    #[test]
    fn read_table() {
        // (capacity, added before first read, read limit, added after, limit, expected)
        type Case = (usize, usize, usize, usize, usize, &'static [&'static str]);
        let cases: &[Case] = &[
            (5, 0, 50, 0, 50, &[]),
            (5, 3, 50, 8, 50, &["msg6", "msg7", "msg8", "msg9", "msg10"]),
            (5, 3, 50, 2, 1, &["msg4"]),
            (5, 5, 2, 0, 50, &[]),
            (3, 2, 50, 1, 50, &["msg2"]),
            (5, 2, 0, 1, 50, &["msg2"]),
        ];
        for &(capacity, before, first_limit, after, limit, expected) in cases {
            let mut buffer = MessageBuffer::new(capacity, 10);
            add_numbered(&mut buffer, "#c", 0..before);
            buffer.read("#c", first_limit);
            add_numbered(&mut buffer, "#c", before..before + after);
            assert_eq!(buffer.unread("#c"), after.min(capacity));
            let read = buffer.read("#c", limit);
            assert_eq!(
                texts(&read),
                expected,
                "case {capacity} {before} {after} {limit}"
            );
            assert_eq!(buffer.unread("#c"), 0);
        }
    }

    #[test]
    fn unknown_key_reads_nothing() {
        let mut buffer = MessageBuffer::new(5, 10);
        assert!(buffer.read("#nowhere", 50).is_empty());
        assert!(buffer.read_thread("#nowhere", "t", 50).is_empty());
        assert_eq!(buffer.unread("#nowhere"), 0);
    }

    #[test]
    fn read_thread_filters_limits_and_keeps_the_cursor() {
        let mut buffer = MessageBuffer::new(500, 10);
        for i in 0..6 {
            buffer.add("#c", message(&format!("[thread:t1] a{i}")));
            buffer.add("#c", message(&format!("[thread:t2] b{i}")));
            buffer.add("#c", message(&format!("plain {i}")));
        }
        let thread = buffer.read_thread("#c", "t1", 50);
        assert_eq!(thread.len(), 6);
        assert!(thread.iter().all(|m| m.thread.as_deref() == Some("t1")));
        assert_eq!(
            texts(&buffer.read_thread("#c", "t2", 2)),
            ["[thread:t2] b4", "[thread:t2] b5"]
        );
        assert!(buffer.read_thread("#c", "t3", 50).is_empty());
        assert_eq!(
            buffer.unread("#c"),
            18,
            "read_thread leaves the cursor alone"
        );
    }

    #[test]
    fn thread_prefix_table() {
        let cases = [
            ("[thread:abc-1] hi", Some("abc-1")),
            ("[thread:ABC9] ", Some("ABC9")),
            ("[thread:] x", None),
            ("[thread:a_b] x", None),
            ("[thread:a]x", None),
            ("[thread:a]", None),
            ("x [thread:a] y", None),
            (" [thread:a] y", None),
            ("[thread:é] y", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(thread_of(text), expected, "text {text:?}");
            assert_eq!(message(text).thread.as_deref(), expected);
        }
    }

    #[test]
    fn max_keys_evicts_the_key_least_recently_added_to() {
        let mut buffer = MessageBuffer::new(5, 2);
        buffer.add("#a", message("1"));
        buffer.add("#b", message("2"));
        buffer.add("#a", message("3"));
        buffer.add("#c", message("4"));
        assert_eq!(buffer.keys().collect::<Vec<_>>(), ["#a", "#c"]);
        buffer.add("#c", message("5"));
        buffer.add("#b", message("6"));
        assert_eq!(buffer.keys().collect::<Vec<_>>(), ["#b", "#c"]);
        assert_eq!(
            texts(&buffer.read("#b", 50)),
            ["6"],
            "an evicted key starts afresh"
        );
    }

    #[test]
    fn known_nicks_span_every_key() {
        let mut buffer = MessageBuffer::new(2, 10);
        buffer.add("#a", BufferedMessage::new("alice", "hi", 1.0, None));
        buffer.add("DM:bob", BufferedMessage::new("bob", "yo", 2.0, None));
        buffer.add("#a", BufferedMessage::new("me", "hey", 3.0, None));
        let nicks: Vec<String> = buffer.known_nicks().into_iter().collect();
        assert_eq!(nicks, ["alice", "bob", "me"]);
        buffer.add("#a", BufferedMessage::new("server", "topic", 4.0, None));
        assert!(
            !buffer.known_nicks().contains("alice"),
            "evicted from the ring"
        );
    }

    #[test]
    fn key_table() {
        let cases = [
            ("#rust", "bob", "#rust"),
            ("&local", "bob", "&local"),
            ("mynick", "bob", "DM:bob"),
            ("someone-else", "bob", "DM:bob"),
        ];
        for (target, peer, key) in cases {
            assert_eq!(key_for(target, peer), key);
        }
        assert_eq!(dm_key("carol"), "DM:carol");
    }

    #[test]
    fn serializes_like_culture() {
        let plain = BufferedMessage::new("alice", "hi", 1.5, Some("id1".into()));
        let threaded = BufferedMessage::new("bob", "[thread:t] x", 2.0, None);
        let json = serde_json::to_string(&[plain, threaded]).unwrap();
        assert_eq!(
            json,
            r#"[{"nick":"alice","text":"hi","timestamp":1.5},{"nick":"bob","text":"[thread:t] x","timestamp":2.0,"thread":"t"}]"#
        );
    }
}
