//! Mesh duplicates: agentirc 9.12 delivers a DM from a user on another server of the mesh
//! twice. The origin server sends the line straight to the recipient's server (`SMSG`) and
//! then relays the same line again as a message event to every linked peer; the recipient's
//! server hands both copies to the recipient, back to back, without a `msgid` (S2S relays
//! carry no tags). Channel messages are relayed once per peer and arrive once.
//!
//! The rule, applied only where duplicates can occur — a DM (not a channel line) from a
//! sender on another server (its nick does not start with our server's `<name>-`) that
//! carries no `msgid`:
//!
//! | seen before (same sender, target, text)         | verdict                              |
//! |-------------------------------------------------|--------------------------------------|
//! | never, or only longer than [`WINDOW`] ago        | [`Seen::First`]: handled, remembered |
//! | within [`WINDOW`], remembered copy not yet used  | [`Seen::Duplicate`]: suppressed, counted; the remembered copy is used up |
//! | within [`WINDOW`], remembered copy used up       | [`Seen::First`]: handled, remembered |
//!
//! Each remembered line cancels exactly one later copy, because agentirc sends exactly two:
//! a user who really sends the same DM twice within the window sends four copies and gets
//! two answers. Only when one copy of a pair is lost on the way (a link dropped between the
//! two sends) can a real repeat within [`WINDOW`] be taken for the missing copy: it is then
//! suppressed and counted (`duplicates_suppressed` in the irc status), never silently.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How long a remembered line cancels its copy: both copies leave the origin server on one
/// link in the same call, milliseconds apart; five seconds also covers a loaded server.
pub const WINDOW: Duration = Duration::from_secs(5);
/// The most lines remembered at once (the oldest is forgotten first).
pub const CAPACITY: usize = 256;

/// The verdict on one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Handle it.
    First,
    /// The mesh's second copy of a line already handled: suppress it.
    Duplicate,
}

/// One remembered line.
#[derive(Debug)]
struct Entry {
    key: (String, String, String),
    at: Instant,
}

/// Recently handled mesh DMs (the module table).
#[derive(Debug, Default)]
pub struct MeshDuplicates {
    recent: VecDeque<Entry>,
    suppressed: u64,
}

impl MeshDuplicates {
    /// The verdict on `text` from `sender` to `target` at `now`.
    pub fn check(&mut self, sender: &str, target: &str, text: &str, now: Instant) -> Seen {
        self.recent
            .retain(|entry| now.saturating_duration_since(entry.at) < WINDOW);
        let key = (
            sender.to_ascii_lowercase(),
            target.to_ascii_lowercase(),
            text.to_owned(),
        );
        if let Some(index) = self.recent.iter().position(|entry| entry.key == key) {
            self.recent.remove(index);
            self.suppressed += 1;
            return Seen::Duplicate;
        }
        if self.recent.len() >= CAPACITY {
            self.recent.pop_front();
        }
        self.recent.push_back(Entry { key, at: now });
        Seen::First
    }

    /// Copies suppressed so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// Whether a line can be a mesh duplicate: a DM from another server without a `msgid`.
///
/// | target     | sender's server prefix | msgid | applies |
/// |------------|------------------------|-------|---------|
/// | `#chan`    | any                    | any   | no      |
/// | our nick   | ours (`spark-`)        | any   | no      |
/// | our nick   | another (`thor-`)      | yes   | no      |
/// | our nick   | another (`thor-`)      | none  | yes     |
/// | our nick   | ours unknown (no 001)  | any   | no      |
pub fn applies(server: Option<&str>, sender: &str, direct: bool, msgid: Option<&str>) -> bool {
    let Some(server) = server else {
        return false;
    };
    let local = sender
        .to_ascii_lowercase()
        .starts_with(&format!("{}-", server.to_ascii_lowercase()));
    direct && msgid.is_none() && !local
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_second_copy_is_suppressed_and_a_real_repeat_is_answered() {
        let mut seen = MeshDuplicates::default();
        let now = Instant::now();
        let copies = [
            ("thor-ori", "hi", Seen::First),
            ("thor-ori", "hi", Seen::Duplicate),
            ("thor-ori", "hi", Seen::First),
            ("thor-ori", "hi", Seen::Duplicate),
            ("thor-ada", "hi", Seen::First),
            ("thor-ori", "other", Seen::First),
        ];
        for (sender, text, want) in copies {
            assert_eq!(
                seen.check(sender, "spark-codex", text, now),
                want,
                "{sender} {text}"
            );
        }
        assert_eq!(seen.suppressed(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_copy_after_the_window_is_a_new_line() {
        let mut seen = MeshDuplicates::default();
        let start = Instant::now();
        assert_eq!(seen.check("thor-ori", "me", "hi", start), Seen::First);
        tokio::time::advance(WINDOW).await;
        assert_eq!(
            seen.check("thor-ori", "me", "hi", Instant::now()),
            Seen::First
        );
        tokio::time::advance(WINDOW - Duration::from_millis(1)).await;
        assert_eq!(
            seen.check("thor-ori", "me", "hi", Instant::now()),
            Seen::Duplicate
        );
        assert_eq!(seen.suppressed(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_bounded() {
        let mut seen = MeshDuplicates::default();
        let now = Instant::now();
        for n in 0..=CAPACITY {
            seen.check("thor-ori", "me", &n.to_string(), now);
        }
        assert_eq!(seen.recent.len(), CAPACITY);
        assert_eq!(seen.check("thor-ori", "me", "0", now), Seen::First);
    }

    #[test]
    fn only_dms_from_other_servers_without_msgid() {
        let table = [
            (Some("spark"), "thor-ori", false, None, false),
            (Some("spark"), "spark-ori", true, None, false),
            (Some("spark"), "thor-ori", true, Some("id"), false),
            (Some("spark"), "thor-ori", true, None, true),
            (Some("spark"), "Thor-Ori", true, None, true),
            (None, "thor-ori", true, None, false),
        ];
        for (server, sender, direct, msgid, want) in table {
            assert_eq!(
                applies(server, sender, direct, msgid),
                want,
                "{server:?} {sender} {direct} {msgid:?}"
            );
        }
    }
}
