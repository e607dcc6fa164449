//! The agent's view of its server's mesh links, learned from agentirc's `#system` events.
//!
//! On agentirc the `irc` actor joins `#system` quietly (not one of its channels: never
//! listed, never read as conversation, never polled) and reads the events its own server
//! posts there: `@event=server.link;event-data=<base64 JSON> :system-<server>!… PRIVMSG
//! #system :linked to <peer>` (and `server.unlink`). Events another server posts (relayed,
//! from `system-<other>`) describe links that are not ours and are ignored.
//!
//! | event (from `system-<our server>`) | peers        | lost           | change            |
//! |------------------------------------|--------------|----------------|-------------------|
//! | `server.link <p>`                  | + p          | − p            | [`MeshChange::Healed`] when `lost` becomes empty |
//! | `server.unlink <p>`                | − p          | + p            | [`MeshChange::Split`] when `lost` was empty  |
//! | anything else                      | —            | —              | —                 |
//!
//! The links made before the agent joined are learned once per connection, at the join:
//! `HISTORY SEARCH #system linked` replays our server's past `linked to <p>` / `unlinked
//! from <p>` lines (agentirc stores `#system` events in history); a replay raises no alert.
//!
//! | state      | when                                                    |
//! |------------|---------------------------------------------------------|
//! | `unknown`  | no link event seen yet (agentirc has no verb to ask)    |
//! | `alone`    | events seen, no peer linked, none lost                  |
//! | `linked`   | at least one peer linked, none lost                     |
//! | `split`    | a peer that was linked is not (any lost peer)           |

use std::collections::BTreeSet;

use base64::Engine;
use serde::Serialize;

/// agentirc's always-present channel of server events.
pub const SYSTEM_CHANNEL: &str = "#system";

/// A link event of our server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// Our server linked to `peer`.
    Linked(String),
    /// Our server lost its link to `peer`.
    Unlinked(String),
}

/// A change of the mesh state worth an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshChange {
    /// Our server lost `lost` (the first loss since the mesh was whole).
    Split {
        /// Our server's name.
        server: String,
        /// The peers lost so far.
        lost: Vec<String>,
    },
    /// Every lost peer is linked again.
    Healed {
        /// Our server's name.
        server: String,
        /// The peers linked now.
        peers: Vec<String>,
    },
}

/// The mesh as the irc status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MeshStatus {
    /// `unknown`, `alone`, `linked` or `split` (the module table).
    pub state: String,
    /// Peers our server is linked to.
    pub peers: Vec<String>,
    /// Peers our server was linked to and is not.
    pub lost: Vec<String>,
    /// Splits seen since the actor started.
    pub splits: u64,
}

/// What the actor knows of its server's links.
#[derive(Debug, Default)]
pub struct Mesh {
    seen: bool,
    peers: BTreeSet<String>,
    lost: BTreeSet<String>,
    splits: u64,
    replaying: bool,
}

impl Mesh {
    /// The history replay starts: what was known is forgotten, and what the replay
    /// applies raises nothing until [`Mesh::end_replay`].
    pub fn begin_replay(&mut self) {
        self.peers.clear();
        self.lost.clear();
        self.replaying = true;
    }

    /// The history replay ended.
    pub fn end_replay(&mut self) {
        self.replaying = false;
    }

    /// Whether a replay is under way.
    pub fn replaying(&self) -> bool {
        self.replaying
    }

    /// Applies a link event; the change it makes, if worth an alert.
    pub fn apply(&mut self, server: &str, event: LinkEvent) -> Option<MeshChange> {
        let change = self.change(server, event);
        if self.replaying {
            return None;
        }
        if matches!(change, Some(MeshChange::Split { .. })) {
            self.splits += 1;
        }
        change
    }

    fn change(&mut self, server: &str, event: LinkEvent) -> Option<MeshChange> {
        self.seen = true;
        match event {
            LinkEvent::Linked(peer) => {
                self.peers.insert(peer.clone());
                let was_lost = self.lost.remove(&peer);
                (was_lost && self.lost.is_empty()).then(|| MeshChange::Healed {
                    server: server.to_owned(),
                    peers: self.peers.iter().cloned().collect(),
                })
            }
            LinkEvent::Unlinked(peer) => {
                self.peers.remove(&peer);
                let whole = self.lost.is_empty();
                self.lost.insert(peer);
                whole.then(|| MeshChange::Split {
                    server: server.to_owned(),
                    lost: self.lost.iter().cloned().collect(),
                })
            }
        }
    }

    /// The status view.
    pub fn status(&self) -> MeshStatus {
        let state = match (self.seen, self.peers.is_empty(), self.lost.is_empty()) {
            (false, _, _) => "unknown",
            (true, _, false) => "split",
            (true, false, true) => "linked",
            (true, true, true) => "alone",
        };
        MeshStatus {
            state: state.to_owned(),
            peers: self.peers.iter().cloned().collect(),
            lost: self.lost.iter().cloned().collect(),
            splits: self.splits,
        }
    }
}

/// The link event a `#system` PRIVMSG carries, if it is one of `server`'s own.
///
/// | sender            | `event` tag      | `event-data` `data.peer` | result          |
/// |-------------------|------------------|--------------------------|-----------------|
/// | `system-<server>` | `server.link`    | `p`                      | `Linked(p)`     |
/// | `system-<server>` | `server.unlink`  | `p`                      | `Unlinked(p)`   |
/// | `system-<other>`  | any              | any                      | none            |
/// | any               | other / missing  | any                      | none            |
/// | any               | link events      | undecodable or no peer   | none            |
pub fn link_event(
    server: &str,
    sender: &str,
    kind: Option<&str>,
    data: Option<&str>,
) -> Option<LinkEvent> {
    if !sender.eq_ignore_ascii_case(&format!("system-{server}")) {
        return None;
    }
    let peer = || {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data?)
            .ok()?;
        let envelope: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let peer = envelope["data"]["peer"].as_str()?;
        (!peer.is_empty()).then(|| peer.to_owned())
    };
    match kind? {
        "server.link" => peer().map(LinkEvent::Linked),
        "server.unlink" => peer().map(LinkEvent::Unlinked),
        _ => None,
    }
}

/// The link event a `HISTORY #system <nick> <ts> :<text>` line records, if it is one of
/// `server`'s own (agentirc renders them `linked to <p>` and `unlinked from <p>`).
///
/// | nick              | text                 | result        |
/// |-------------------|----------------------|---------------|
/// | `system-<server>` | `linked to p`        | `Linked(p)`   |
/// | `system-<server>` | `unlinked from p`    | `Unlinked(p)` |
/// | `system-<other>`  | any                  | none          |
/// | any               | anything else        | none          |
pub fn history_event(server: &str, nick: &str, text: &str) -> Option<LinkEvent> {
    if !nick.eq_ignore_ascii_case(&format!("system-{server}")) {
        return None;
    }
    let single = |peer: &str| {
        let peer = peer.trim();
        (!peer.is_empty() && !peer.contains(' ')).then(|| peer.to_owned())
    };
    if let Some(peer) = text.strip_prefix("linked to ") {
        return single(peer).map(LinkEvent::Linked);
    }
    text.strip_prefix("unlinked from ")
        .and_then(single)
        .map(LinkEvent::Unlinked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(peer: &str) -> String {
        let json = format!(
            r#"{{"channel":null,"data":{{"peer":"{peer}"}},"nick":"system-spark","timestamp":1.0,"type":"server.link"}}"#
        );
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    #[test]
    fn only_our_servers_link_events_count() {
        let thor = data("thor");
        let table = [
            (
                "system-spark",
                Some("server.link"),
                Some(thor.as_str()),
                Some(LinkEvent::Linked("thor".into())),
            ),
            (
                "system-spark",
                Some("server.unlink"),
                Some(thor.as_str()),
                Some(LinkEvent::Unlinked("thor".into())),
            ),
            (
                "system-thor",
                Some("server.unlink"),
                Some(thor.as_str()),
                None,
            ),
            ("system-spark", Some("user.join"), Some(thor.as_str()), None),
            ("system-spark", None, None, None),
            (
                "system-spark",
                Some("server.link"),
                Some("not base64!"),
                None,
            ),
            ("system-spark", Some("server.link"), Some("e30="), None),
        ];
        for (sender, kind, payload, want) in table {
            assert_eq!(
                link_event("spark", sender, kind, payload),
                want,
                "{sender} {kind:?}"
            );
        }
    }

    #[test]
    fn history_lines_of_our_server_replay_without_alerts() {
        let table = [
            (
                "system-spark",
                "linked to thor",
                Some(LinkEvent::Linked("thor".into())),
            ),
            (
                "system-spark",
                "unlinked from thor",
                Some(LinkEvent::Unlinked("thor".into())),
            ),
            ("system-thor", "linked to spark", None),
            ("system-spark", "spark-ori joined #general", None),
            ("system-spark", "linked to ", None),
        ];
        for (nick, text, want) in table {
            assert_eq!(history_event("spark", nick, text), want, "{nick} {text}");
        }
        let mut mesh = Mesh::default();
        mesh.apply("spark", LinkEvent::Linked("odin".into()));
        mesh.begin_replay();
        assert_eq!(mesh.apply("spark", LinkEvent::Linked("thor".into())), None);
        assert_eq!(
            mesh.apply("spark", LinkEvent::Unlinked("thor".into())),
            None
        );
        mesh.end_replay();
        let status = mesh.status();
        assert_eq!((status.state.as_str(), status.splits), ("split", 0));
        assert_eq!(status.lost, ["thor"]);
        assert!(
            status.peers.is_empty(),
            "the replay starts afresh: {status:?}"
        );
    }

    #[test]
    fn a_split_and_its_heal_are_one_change_each() {
        let mut mesh = Mesh::default();
        assert_eq!(mesh.status().state, "unknown");
        assert_eq!(mesh.apply("spark", LinkEvent::Linked("thor".into())), None);
        assert_eq!(mesh.apply("spark", LinkEvent::Linked("odin".into())), None);
        assert_eq!(mesh.status().state, "linked");
        assert_eq!(
            mesh.apply("spark", LinkEvent::Unlinked("thor".into())),
            Some(MeshChange::Split {
                server: "spark".into(),
                lost: vec!["thor".into()]
            })
        );
        assert_eq!(
            mesh.apply("spark", LinkEvent::Unlinked("odin".into())),
            None
        );
        let split = mesh.status();
        assert_eq!(
            (split.state.as_str(), split.peers.len(), split.lost.len()),
            ("split", 0, 2)
        );
        assert_eq!(mesh.apply("spark", LinkEvent::Linked("thor".into())), None);
        assert_eq!(
            mesh.apply("spark", LinkEvent::Linked("odin".into())),
            Some(MeshChange::Healed {
                server: "spark".into(),
                peers: vec!["odin".into(), "thor".into()]
            })
        );
        assert_eq!(mesh.status().state, "linked");
        assert_eq!(mesh.status().splits, 1);
        let mut alone = Mesh::default();
        alone.apply("spark", LinkEvent::Linked("thor".into()));
        alone.peers.clear();
        assert_eq!(alone.status().state, "alone");
    }
}
