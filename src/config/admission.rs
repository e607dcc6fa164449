//! `admission:` — what a mention or DM must pass to be journaled (codexd; Culture has no
//! limits). At daemon level it overlays the defaults; an agent's partial `admission:`
//! overlays the daemon's, key by key. A message over a limit is refused: its sender gets one
//! NOTICE per `window` saying why and when to retry, and it is counted in `status` and in
//! the `codexd.intake.messages` metric.
//!
//! | key           | default | rule                                                        |
//! |---------------|---------|-------------------------------------------------------------|
//! | `per_sender`  | `20`    | integer 0..=100000: mentions and DMs accepted per sender per `window`; 0 = no limit |
//! | `window`      | `60s`   | duration > 0: the rate's window, and how often a refused sender is told |
//! | `max_pending` | `100`   | integer 0..=100000: entries waiting for an answer per agent; beyond, new ones are refused; 0 = no limit |

use codexd_actors::runner::admission::AdmissionSettings;

use super::reader::{Keys, Node, Report};

const KEYS: Keys = Keys {
    known: &["per_sender", "window", "max_pending"],
    ignored: &[],
};

/// The largest `per_sender` and `max_pending`.
const MAX_LIMIT: i64 = 100_000;

/// `admission:` overlaid on `base`.
pub(super) fn section(
    node: &Node<'_>,
    base: &AdmissionSettings,
    report: &mut Report,
) -> AdmissionSettings {
    let fields = node.mapping(report, &KEYS);
    let limit = |key: &str, report: &mut Report| {
        fields.get(key).integer(
            report,
            0,
            MAX_LIMIT,
            "an integer from 0 (no limit) to 100000",
        )
    };
    AdmissionSettings {
        per_sender: limit("per_sender", report)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(base.per_sender),
        window: fields.get("window").duration(report).unwrap_or(base.window),
        max_pending: limit("max_pending", report)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(base.max_pending),
    }
}
