//! The channels an agent is in (and rejoins after every reconnect): join order for status
//! and `Channels`, a set of case-folded names for lookups, and a cap, so a server that
//! echoes JOINs without end (or an agent that joins without end) cannot grow it without
//! bound. Names compare ignoring ASCII case, as IRC channel names do (`#Ops` is `#ops`).
//!
//! | call                          | result                                                      |
//! |-------------------------------|-------------------------------------------------------------|
//! | `insert` of a new name        | `Ok(true)`, appended                                        |
//! | `insert` of a known name      | `Ok(false)` (any case), order and spelling unchanged        |
//! | `insert` at the cap           | `Err(Full)`, nothing changes                                |
//! | `remove`                      | true if it was there (any case)                             |

use std::collections::HashSet;

/// The most channels an agent is in. Culture sets no limit; 1000 is far beyond any real
/// agent and keeps status, rejoin bursts and memory bounded.
pub(super) const MAX_CHANNELS: usize = 1000;

/// The set is at its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Full {
    /// The cap.
    pub(super) limit: usize,
}

/// Channel names in join order, looked up case-insensitively, at most `limit`.
#[derive(Debug, Clone)]
pub(super) struct Channels {
    order: Vec<String>,
    keys: HashSet<String>,
    limit: usize,
}

/// The lookup key of a channel name (ASCII case folded).
fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Channels {
    /// An empty set holding at most `limit` channels.
    pub(super) fn new(limit: usize) -> Self {
        Self {
            order: Vec::new(),
            keys: HashSet::new(),
            limit,
        }
    }

    /// Whether `name` is in the set, in any case.
    pub(super) fn contains(&self, name: &str) -> bool {
        self.keys.contains(&key(name))
    }

    /// Adds `name` at the end; `Ok(false)` when it is already there.
    pub(super) fn insert(&mut self, name: &str) -> Result<bool, Full> {
        let key = key(name);
        if self.keys.contains(&key) {
            return Ok(false);
        }
        if self.order.len() >= self.limit {
            return Err(Full { limit: self.limit });
        }
        self.keys.insert(key);
        self.order.push(name.to_owned());
        Ok(true)
    }

    /// Removes `name` (any case); whether it was there.
    pub(super) fn remove(&mut self, name: &str) -> bool {
        let key = key(name);
        if !self.keys.remove(&key) {
            return false;
        }
        self.order
            .retain(|c| self.keys.contains(&c.to_ascii_lowercase()));
        true
    }

    /// Names in join order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &String> {
        self.order.iter()
    }

    /// Names in join order, owned.
    pub(super) fn to_vec(&self) -> Vec<String> {
        self.order.clone()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_join_order_and_ignores_ascii_case() {
        let mut channels = Channels::new(10);
        assert_eq!(channels.insert("#General"), Ok(true));
        assert_eq!(channels.insert("#ops"), Ok(true));
        assert_eq!(channels.insert("#general"), Ok(false), "same channel");
        assert_eq!(channels.insert("#OPS"), Ok(false));
        assert!(channels.contains("#GENERAL") && channels.contains("#Ops"));
        assert_eq!(
            channels.to_vec(),
            ["#General", "#ops"],
            "first spelling kept"
        );
        assert!(channels.remove("#GeNeRaL"));
        assert!(!channels.remove("#general"), "already gone");
        assert_eq!(channels.to_vec(), ["#ops"]);
        assert_eq!(channels.insert("#general"), Ok(true), "rejoin goes last");
        assert_eq!(channels.to_vec(), ["#ops", "#general"]);
    }

    #[test]
    fn refuses_new_names_at_the_cap_but_not_known_ones() {
        let mut channels = Channels::new(3);
        for i in 0..3 {
            assert_eq!(channels.insert(&format!("#c{i}")), Ok(true));
        }
        assert_eq!(channels.insert("#c3"), Err(Full { limit: 3 }));
        assert_eq!(channels.insert("#C1"), Ok(false), "known: no error");
        assert_eq!(channels.to_vec().len(), 3);
        assert!(channels.remove("#c0"));
        assert_eq!(channels.insert("#c3"), Ok(true), "room again");
    }

    #[test]
    fn a_hundred_thousand_inserts_stay_at_the_cap() {
        let mut channels = Channels::new(MAX_CHANNELS);
        let refused = (0..100_000)
            .filter(|n| channels.insert(&format!("#c{n}")).is_err())
            .count();
        assert_eq!(refused, 100_000 - MAX_CHANNELS);
        assert_eq!(channels.to_vec().len(), MAX_CHANNELS);
        assert!(channels.contains("#C999") && !channels.contains("#c1000"));
    }
}
