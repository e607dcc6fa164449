//! Mesh alerts: the `irc` actor's [`IrcEvent::Mesh`] changes (agentirc's `server.unlink` /
//! `server.link` in `#system`, for the agent's own server) become alerts.
//!
//! | change   | event         | message                                                                 |
//! |----------|---------------|-------------------------------------------------------------------------|
//! | `Split`  | `mesh_split`  | `Agent <nick>: server <server> lost its mesh link to <peers>; only its own users reach the agent.` |
//! | `Healed` | `mesh_healed` | `Agent <nick>: server <server> is linked to the mesh again (<peers>).`   |
//!
//! Every agent on the server sees the same event; the agents of one codexd share a
//! [`MeshAlertGate`], so the first agent to see a change raises it and the others do not:
//! one alert per split (and per heal) per server and process.
//!
//! | gate's last change of the server | agent sees | raises |
//! |----------------------------------|------------|--------|
//! | none or `Healed`                 | `Split`    | yes    |
//! | `Split`                          | `Split`    | no     |
//! | `Split`                          | `Healed`   | yes    |
//! | none or `Healed`                 | `Healed`   | no     |

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::AlertEvent;
use crate::irc::mesh::MeshChange;

/// The last mesh change raised per server, shared by the agents of one process; cheap to
/// clone (clones share).
#[derive(Debug, Clone, Default)]
pub struct MeshAlertGate {
    raised: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl MeshAlertGate {
    /// Whether this agent raises `change` (the module's gate table); records it if so.
    pub fn claim(&self, change: &MeshChange) -> bool {
        let (server, split) = match change {
            MeshChange::Split { server, .. } => (server, true),
            MeshChange::Healed { server, .. } => (server, false),
        };
        let mut raised = self.raised.lock().unwrap_or_else(|p| p.into_inner());
        let was_split = raised.get(server).copied().unwrap_or(false);
        if was_split == split {
            return false;
        }
        raised.insert(server.clone(), split);
        true
    }
}

/// The alert for a mesh change (the module table).
pub fn alert_for(nick: &str, change: &MeshChange) -> (AlertEvent, String) {
    match change {
        MeshChange::Split { server, lost } => (
            AlertEvent::MeshSplit,
            format!(
                "Agent {nick}: server {server} lost its mesh link to {}; only its own users reach the agent.",
                lost.join(", ")
            ),
        ),
        MeshChange::Healed { server, peers } => (
            AlertEvent::MeshHealed,
            format!(
                "Agent {nick}: server {server} is linked to the mesh again ({}).",
                peers.join(", ")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_per_server_raises_each_change() {
        let split = |server: &str| MeshChange::Split {
            server: server.into(),
            lost: vec!["thor".into()],
        };
        let healed = |server: &str| MeshChange::Healed {
            server: server.into(),
            peers: vec!["thor".into()],
        };
        let gate = MeshAlertGate::default();
        let other_agent = gate.clone();
        let steps = [
            (&gate, healed("odin"), false),
            (&gate, split("odin"), true),
            (&other_agent, split("odin"), false),
            (&other_agent, split("loki"), true),
            (&other_agent, healed("odin"), true),
            (&gate, healed("odin"), false),
            (&gate, split("odin"), true),
        ];
        for (n, (gate, change, want)) in steps.into_iter().enumerate() {
            assert_eq!(gate.claim(&change), want, "step {n}: {change:?}");
        }
    }

    #[test]
    fn changes_become_alerts() {
        let split = MeshChange::Split {
            server: "odin".into(),
            lost: vec!["spark".into(), "thor".into()],
        };
        assert_eq!(
            alert_for("odin-a", &split),
            (
                AlertEvent::MeshSplit,
                "Agent odin-a: server odin lost its mesh link to spark, thor; only its own users reach the agent.".into()
            )
        );
        let healed = MeshChange::Healed {
            server: "odin".into(),
            peers: vec!["spark".into()],
        };
        assert_eq!(
            alert_for("odin-a", &healed),
            (
                AlertEvent::MeshHealed,
                "Agent odin-a: server odin is linked to the mesh again (spark).".into()
            )
        );
    }
}
