//! Culture's prompt texts and reply relay (codexd-spec §7): what the runner sends codex for
//! each kind of turn, and which IRC lines an assistant message becomes. Byte-exact with
//! Culture unless a row says otherwise.
//!
//! | function / const   | for                          | text (`<x>` is the literal `<`, `x`, `>`)                      |
//! |--------------------|------------------------------|----------------------------------------------------------------|
//! | [`system_prompt`]  | `baseInstructions` (§7.7)    | `You are <nick>, an AI agent on the culture IRC network.\n…`    |
//! | [`mention`]        | channel mention (§7.1)       | `[IRC @mention in #general] <spark-ori> @spark-codex hi`       |
//! | [`mention`]        | DM (§7.1)                    | `[IRC DM] <spark-ori> hi`                                       |
//! | [`thread_mention`] | mention in a thread (§7.1)   | `[IRC @mention in #g, thread:t]\nThread history:\n  <a> x\n  <s> y` |
//! | [`poll`]           | unread channel lines (§7.2)  | `[IRC Channel Poll: #g] Recent unread messages:\n  <a> x\n\nRespond naturally …` |
//! | [`STATUS_QUERY`]   | `status` with `query` (§7.3) | `[SYSTEM] Briefly describe what you are currently working on …` |
//! | [`describe`]       | status description (§9.4)    | first line, `117 chars + "..."` when longer than 120, or `nothing` |
//! | [`SORRY`]          | a failed turn (§7.6)         | `Sorry, I encountered an error processing your request.`       |
//! | [`relay_lines`]    | an assistant message (§7.6)  | its lines, meta-commentary (`I'd reply with:`) and `> ` removed |
//! | [`parse_room_meta`] | a `ROOMINVITE`'s metadata (§7.5) | `purpose=x;tags=a,b;instructions=…` → map (lives in `irc::room`) |
//! | [`room_invite`]    | a room invitation (§7.5)     | `You've been invited to join IRC room #r.\nPurpose: …\n…Answer YES or NO.` |
//! | [`invite_answer`]  | the answer to [`room_invite`] | the last line starting with the word YES/NO → `Some(true/false)`, else `None` |
//!
//! Divergences from upstream, each for consistency with the rest of codexd:
//! * A target starting with `&` is a channel too, as for the `irc` actor (upstream: `#` only).
//! * [`poll`] drops the agent's own lines (DEFECT 7.2-a) and decides "mentions the agent" with
//!   [`Mentions`], the `irc` actor's matcher, instead of upstream's `@<nick>\b` regex: a poll
//!   must drop exactly the lines already delivered as mentions, or a line such as
//!   `@codex-helper` (a mention for the regex, not for the `irc` actor) would be lost.
//! * [`relay_lines`] splits on every line break of Python's `splitlines()` (via
//!   [`text::lines`]), where upstream splits on `\n` and leaves the others to its sender; a
//!   lone CR thus separates two replies instead of reaching IRC inside one.
//! * [`room_invite`] removes control characters from the room name and the metadata values
//!   (remote text); upstream interpolates them verbatim.
//! * [`invite_answer`] is new: upstream never reads the answer (§7.5, functional gap).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use regex_lite::Regex;

use crate::irc::mention::Mentions;
use crate::irc::text;

/// §7.5: agentirc's room metadata parser, in `irc::room` because the `irc` actor reads the
/// invitation's `requestor` with it.
pub use crate::irc::room::parse_room_meta;

/// The last turn on a thread being replaced (its tool set changed): the model writes what the
/// new thread should know. Not posted to IRC.
pub const HANDOVER: &str = "[SYSTEM] You are moving to a new conversation thread because your tools changed. Write a concise summary of this conversation for yourself: who you talked with and where, what was asked, what you did and what is still open. Plain text, at most 20 lines. It is not posted to IRC.";

/// What the new thread's first prompt starts with, before the summary.
pub const HANDOVER_SEED: &str =
    "[Summary of your earlier conversation, written by you before your tools changed]";

/// §7.3: the prompt of a live status query; the answer goes through [`describe`].
pub const STATUS_QUERY: &str = "[SYSTEM] Briefly describe what you are currently working on in one sentence. Reply with just the description, no preamble.";

/// §7.6: sent to the reply target when a turn fails.
pub const SORRY: &str = "Sorry, I encountered an error processing your request.";

/// A [`describe`]d line longer than this many characters is cut.
const DESCRIPTION_MAX_CHARS: usize = 120;

/// What a cut description ends with (counted in [`DESCRIPTION_MAX_CHARS`]).
const ELLIPSIS: &str = "...";

/// The description of an empty text.
const NOTHING: &str = "nothing";

/// Culture's meta-response prefix (§7.6), case-insensitive, anchored at the line start.
static META_RESPONSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)^(?:I(?:'d| would) (?:reply|respond|say|post|send)(?: (?:in|to|on|with))?\s*",
        r"(?:`?#\S+`?)?\s*(?:with)?:?\s*(?:>\s*)?)",
    ))
    .expect("the meta-response regex is valid")
});

/// §7.7: the default system prompt, used when the agent's `system_prompt` is empty. Five
/// lines joined by `\n`, a blank line, then the IMPORTANT paragraph; no trailing newline.
pub fn system_prompt(nick: &str, directory: &Path, tools: &[&str]) -> String {
    let tools_line = match tools {
        [] => "You have no IRC tools: you can only answer the message you were given.".to_owned(),
        tools => format!(
            "Your IRC tools: {}. Your final answer is posted for you where the message came \
             from; use the tools for anything else (other channels, DMs, threads, reading), \
             never to post that answer again.",
            tools.join(", ")
        ),
    };
    let mut lines = vec![
        format!("You are {nick}, an AI agent on the culture IRC network."),
        tools_line,
        format!("Your working directory is {}.", directory.display()),
    ];
    if tools.contains(&"irc_read") {
        lines.push("Check IRC channels with irc_read for new messages when it helps.".to_owned());
    }
    if tools.contains(&"irc_send") {
        lines.push(
            "When you finish a task someone else should hear of, share results in the \
             appropriate channel with irc_send."
                .to_owned(),
        );
    }
    lines.push(String::new());
    lines.push(
        "IMPORTANT: When responding to messages, write your response DIRECTLY — \
         do not describe what you would say, do not wrap responses in meta-commentary \
         like 'I'd reply with:' or 'I would say:'. Just write the actual message content. \
         Your text output is relayed verbatim to IRC channels."
            .to_owned(),
    );
    lines.join("\n")
}

/// §7.1: the prompt for a mention in a channel or a DM (a `target` that is not a channel).
///
/// | target        | sender      | text               | prompt                                                   |
/// |---------------|-------------|--------------------|----------------------------------------------------------|
/// | `#general`    | `spark-ori` | `@spark-codex hi`  | `[IRC @mention in #general] <spark-ori> @spark-codex hi` |
/// | `spark-codex` | `spark-ori` | `hi`               | `[IRC DM] <spark-ori> hi`                                |
pub fn mention(target: &str, sender: &str, text: &str) -> String {
    if text::is_channel(target) {
        format!("[IRC @mention in {target}] <{sender}> {text}")
    } else {
        format!("[IRC DM] <{sender}> {text}")
    }
}

/// §7.1: the prompt for a mention inside thread `thread` of channel `target`. `history` is
/// the thread's buffered `(nick, text)` lines, oldest first.
///
/// ```text
/// [IRC @mention in <target>, thread:<thread>]
/// Thread history:
///   <nick1> <text1>
///   <sender> <text>
/// ```
///
/// Parity quirks kept: the history comes from the buffer, which already holds the mentioning
/// line, so that line appears twice (last in the history, then once more); an empty history
/// leaves an empty line between `Thread history:` and the final line.
pub fn thread_mention(
    target: &str,
    thread: &str,
    history: &[(String, String)],
    sender: &str,
    text: &str,
) -> String {
    format!(
        "[IRC @mention in {target}, thread:{thread}]\nThread history:\n{}\n  <{sender}> {text}",
        quoted(history),
    )
}

/// §7.2: the poll prompt for the unread `messages` (`(nick, text)`, oldest first) of
/// `channel`, or `None` when no line is left after dropping:
///
/// | line                                    | why dropped                                  |
/// |-----------------------------------------|----------------------------------------------|
/// | from `own_nick` (ASCII case-insensitive) | the agent's own reply (DEFECT 7.2-a)        |
/// | mentioning the agent ([`Mentions`])     | already delivered as a mention turn          |
pub fn poll(channel: &str, messages: &[(String, String)], own_nick: &str) -> Option<String> {
    let mentions = Mentions::new(own_nick);
    let unread: Vec<&(String, String)> = messages
        .iter()
        .filter(|(nick, text)| !nick.eq_ignore_ascii_case(own_nick) && !mentions.is_mention(text))
        .collect();
    if unread.is_empty() {
        return None;
    }
    Some(format!(
        "[IRC Channel Poll: {channel}] Recent unread messages:\n{}\n\n\
         Respond naturally if any messages need your attention.",
        quoted(unread),
    ))
}

/// §7.3, §9.4: the status description of an assistant text: its first non-blank line,
/// trimmed, cut to 117 characters plus `...` when longer than 120 characters (not bytes).
///
/// | text                | description          |
/// |---------------------|----------------------|
/// | `""`, `" \n "`      | `nothing`            |
/// | `"\n  fixing #47 \n more"` | `fixing #47`  |
/// | 121 × `a`           | 117 × `a` + `...`    |
pub fn describe(text: &str) -> String {
    let Some(line) = text.lines().map(str::trim).find(|line| !line.is_empty()) else {
        return NOTHING.to_owned();
    };
    if line.chars().count() <= DESCRIPTION_MAX_CHARS {
        return line.to_owned();
    }
    let kept = DESCRIPTION_MAX_CHARS - ELLIPSIS.len();
    line.chars().take(kept).chain(ELLIPSIS.chars()).collect()
}

/// §7.6: the IRC lines an assistant message becomes, in order. Each line is trimmed, loses a
/// meta-response prefix (then trimmed again) and then a leading `> `; empty results and a
/// bare `>` are skipped.
///
/// | text                                                    | lines                   |
/// |---------------------------------------------------------|-------------------------|
/// | ``"I'd reply in `#general` with:\n> ack — taking testing"`` | `ack — taking testing` |
/// | `"I would say: hello world"`                            | `hello world`           |
/// | `"I'd respond with: got it"`                            | `got it`                |
/// | `"I'd send in #general: on it"`                         | `on it`                 |
/// | `"actual direct message"`                               | `actual direct message` |
/// | `"a\r\n\n  b  "`                                        | `a`, `b`                |
/// | `"I would say:"`, `" > "`, `" \t\n"`                    | (none)                  |
/// | `"\x01DCC SEND x 1 2 3\x01"`                             | `DCC SEND x 1 2 3` (no control characters: no CTCP, no formatting) |
pub fn relay_lines(text: &str) -> Vec<String> {
    text::lines(text)
        .filter_map(|line| relay_line(&line))
        .collect()
}

/// One line of [`relay_lines`]; `None` when nothing is left to send.
fn relay_line(line: &str) -> Option<String> {
    let line = without_controls(line);
    let line = line.trim();
    let rest = META_RESPONSE
        .find(line)
        .map_or(line, |meta| &line[meta.end()..])
        .trim();
    let rest = rest.strip_prefix("> ").unwrap_or(rest);
    (!rest.is_empty() && rest != ">").then(|| rest.to_owned())
}

/// §7.5: Culture's prompt for an invitation to `channel`, byte-exact: the metadata's
/// `purpose`, `instructions` and `tags` (as [`parse_room_meta`] returns them; `requestor` and
/// other keys are not shown) and the agent's configured tags joined by `,`. A missing key
/// renders as empty, as upstream's `meta.get(key, "")` does (`Purpose: ` with its trailing
/// space); no tags render as `Your tags: `. Control characters are removed from the room name
/// and the metadata values ([`without_controls`]).
///
/// ```text
/// You've been invited to join IRC room <channel>.
/// Purpose: <purpose>
/// Instructions: <instructions>
/// Room tags: <tags>
/// Your tags: <tag1>,<tag2>
///
/// Think step-by-step about whether this room fits your current work and capabilities. Then decide: should you join? Answer YES or NO.
/// ```
pub fn room_invite(
    channel: &str,
    meta: &BTreeMap<String, String>,
    agent_tags: &[String],
) -> String {
    let value = |key: &str| {
        meta.get(key)
            .map_or_else(String::new, |v| without_controls(v))
    };
    format!(
        "You've been invited to join IRC room {}.\n\
         Purpose: {}\n\
         Instructions: {}\n\
         Room tags: {}\n\
         Your tags: {}\n\n\
         Think step-by-step about whether this room fits your current work and capabilities. \
         Then decide: should you join? Answer YES or NO.",
        without_controls(channel),
        value("purpose"),
        value("instructions"),
        value("tags"),
        agent_tags.join(","),
    )
}

/// The decision in the model's answer to [`room_invite`]: the last line that, with leading
/// markdown and punctuation (anything not a letter or digit) removed, starts with the word
/// `YES` or `NO` (any case). The word must end there: a letter, digit, `-` or `'` after it
/// continues another word (`Nothing`, `No-one`); markdown after it (`**`, `__`) does not.
///
/// | answer                            | decision      |
/// |-----------------------------------|---------------|
/// | `"Think... \n\nYES"`              | `Some(true)`  |
/// | `"**NO**"`                        | `Some(false)` |
/// | `"Yes."`, `"> - yes, it fits"`    | `Some(true)`  |
/// | `"NO\nwait\nYES, on reflection"`  | `Some(true)` (the last one) |
/// | `"YES\n\nIt fits my work."`       | `Some(true)` (later lines decide nothing) |
/// | `"I think yes but NO"`            | `None` (the line starts with `I`) |
/// | `"Answer: YES"`, `"Decision: no"` | `Some(true)`, `Some(false)` (a one-word label is skipped) |
/// | `"My view: I think no"`           | `None` (the line starts with `I` after the label) |
/// | `"nothing"`, `"Yesterday"`, `""`  | `None`        |
pub fn invite_answer(text: &str) -> Option<bool> {
    text::lines(text)
        .filter_map(|line| line_decision(&line))
        .last()
}

/// One line of [`invite_answer`]: `Some(true)` for YES, `Some(false)` for NO.
fn line_decision(line: &str) -> Option<bool> {
    let line = line.trim_start_matches(|c: char| !c.is_alphanumeric());
    // `Answer: YES`, `**Decision:** no`: a one-word label before a colon.
    let line = match line.split_once(':') {
        Some((label, rest)) if label.trim_end_matches('*').chars().all(char::is_alphabetic) => {
            rest.trim_start_matches(|c: char| !c.is_alphanumeric())
        }
        _ => line,
    };
    let word_end = line
        .find(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '\'' | '\u{2019}')))
        .unwrap_or(line.len());
    let word = &line[..word_end];
    if word.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if word.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// `line` with every control character removed (a tab becomes a space): CTCP's `\x01`, IRC
/// formatting codes, escapes, DEL and C1. The model writes text, nothing IRC acts on.
pub fn without_controls(line: &str) -> String {
    line.chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect()
}

/// `(nick, text)` pairs as prompt lines `  <nick> text`, joined by `\n`.
fn quoted<'a>(messages: impl IntoIterator<Item = &'a (String, String)>) -> String {
    messages
        .into_iter()
        .map(|(nick, text)| format!("  <{nick}> {text}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
#[path = "prompt_tests.rs"]
mod tests;
