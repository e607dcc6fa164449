//! `conversations:` — how an agent's conversations (a channel, an IRC thread of a channel, a
//! DM peer) map to codex threads and how their turns run (codexd; Culture has one thread for
//! everything). At daemon level it overlays the defaults; an agent's partial
//! `conversations:` overlays the daemon's, key by key.
//!
//! | key         | default            | rule                                                   |
//! |-------------|--------------------|--------------------------------------------------------|
//! | `threads`   | `per_conversation` | `per_conversation` or `shared`                         |
//! | `max_turns` | `4`                | integer 1..=64: turns of one agent running at once     |
//! | `steer`     | `true`             | `true` or `false`                                      |
//!
//! `per_conversation`: each channel, IRC thread and DM peer has a codex thread of its own, so
//! what a peer says in a DM never reaches a channel's turn, and turns of different
//! conversations run at once, up to `max_turns`. `shared`: Culture's one thread for every
//! conversation, so one conversation's turn runs at a time whatever `max_turns` says (a room
//! invitation is still weighed on a short-lived thread of its own, which takes one of the
//! `max_turns` places). `steer`: a mention or DM in the conversation whose turn is running is
//! delivered into that turn (`turn/steer`); `false`: it waits for the next turn.

use codexd_actors::runner::conversation::{ConversationSettings, ThreadMode};

use super::reader::{Keys, Node, Report, describe, did_you_mean};

const KEYS: Keys = Keys {
    known: &["threads", "max_turns", "steer"],
    ignored: &[],
};

/// Every `threads` value, in the order the error lists them.
const THREAD_MODES: [ThreadMode; 2] = [ThreadMode::PerConversation, ThreadMode::Shared];

/// The largest `max_turns`.
const MAX_TURNS: i64 = 64;

/// `conversations:` overlaid on `base`.
pub(super) fn section(
    node: &Node<'_>,
    base: &ConversationSettings,
    report: &mut Report,
) -> ConversationSettings {
    let fields = node.mapping(report, &KEYS);
    ConversationSettings {
        threads: threads(&fields.get("threads"), report).unwrap_or(base.threads),
        max_turns: fields
            .get("max_turns")
            .integer(report, 1, MAX_TURNS, "an integer from 1 to 64")
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(base.max_turns),
        steer: fields.get("steer").boolean(report).unwrap_or(base.steer),
    }
}

/// `threads`: one of [`THREAD_MODES`] by name; anything else is an error naming them (with a
/// did-you-mean for a near miss such as `per-conversation`).
fn threads(node: &Node<'_>, report: &mut Report) -> Option<ThreadMode> {
    let value = node.given()?;
    let text = value.as_str();
    if let Some(mode) = THREAD_MODES
        .into_iter()
        .find(|mode| text == Some(mode.name()))
    {
        return Some(mode);
    }
    let names = THREAD_MODES.map(ThreadMode::name);
    let hint = text
        .and_then(|text| did_you_mean(text, &names))
        .map(|close| format!("; did you mean \"{close}\"?"))
        .unwrap_or_default();
    let list: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
    let message = format!(
        "expected one of {}, got {}{hint}",
        list.join(", "),
        describe(value)
    );
    report.error(node.at(), message);
    None
}
