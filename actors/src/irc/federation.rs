//! The `irc` actor's side of an agentirc mesh: the mesh's duplicate DMs ([`super::dedup`])
//! and its server's link events from `#system` ([`super::mesh`]); docs/irc.md, "On an
//! agentirc mesh".

use tokio::time::Instant;

use super::dedup::{self, Seen};
use super::inbound::Line;
use super::mesh::{self, LinkEvent};
use super::{IrcEvent, IrcState};

impl IrcState {
    /// A DM from another server of the mesh that is the mesh's second copy of a line
    /// ([`dedup`]): counted and logged, never handled.
    pub(super) fn is_mesh_duplicate(&mut self, line: &Line, sender: &str, direct: bool) -> bool {
        let (server, msgid) = (self.server_name.as_deref(), line.tag("msgid"));
        if !dedup::applies(server, sender, direct, msgid) {
            return false;
        }
        let text = line.param(1);
        match self
            .duplicates
            .check(sender, line.param(0), text, Instant::now())
        {
            Seen::First => false,
            Seen::Duplicate => {
                tracing::info!(
                    from = %sender,
                    suppressed = self.duplicates.suppressed(),
                    "dropped the mesh's second copy of a direct message"
                );
                true
            }
        }
    }

    /// A line in agentirc's `#system`: our server's link events update the mesh state
    /// ([`mesh`]); a heal re-announces the agent; everything else there is ignored.
    pub(super) fn on_system_event(&mut self, line: &Line, sender: &str) {
        let Some(server) = self.server_name.clone() else {
            return;
        };
        let Some(event) =
            mesh::link_event(&server, sender, line.tag("event"), line.tag("event-data"))
        else {
            return;
        };
        tracing::info!(server = %server, event = ?event, "mesh link event");
        let linked = matches!(event, LinkEvent::Linked(_));
        if let Some(change) = self.mesh.apply(&server, event) {
            tracing::warn!(change = ?change, "mesh state changed");
            let _ = self.events.send(IrcEvent::Mesh(change));
        }
        if linked {
            self.announce();
        }
    }

    /// The answer to the join's `HISTORY SEARCH #system linked`: our server's past link
    /// events, replayed without alerts, until `HISTORYEND`.
    pub(super) fn on_system_history(&mut self, line: &Line) {
        let Some(server) = self.server_name.clone() else {
            return;
        };
        if line.verb == "HISTORYEND" {
            self.mesh.end_replay();
            tracing::info!(server = %server, mesh = ?self.mesh.status(), "mesh state from history");
            return;
        }
        if let Some(event) = mesh::history_event(&server, line.param(1), line.param(3)) {
            self.mesh.apply(&server, event);
        }
    }
}
