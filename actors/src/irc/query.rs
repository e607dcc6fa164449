//! Multi-line server answers collected for the caller that asked: a query sends one line
//! and gathers reply lines until its end line. Servers answer in order, so each reply goes
//! to the oldest waiting query of its kind.
//!
//! | query          | sent                      | gathered       | ends with     |
//! |----------------|---------------------------|----------------|---------------|
//! | `Who`          | `WHO <target>`            | `352`          | `315`         |
//! | `History`      | `HISTORY RECENT <t> <n>`  | `HISTORY`      | `HISTORYEND`  |
//! | `Threads`      | `THREADS <#ch>`           | `THREADS`      | `THREADSEND`  |
//! | `RoomMeta`     | `ROOMMETA <#ch>`          | `ROOMMETA`     | `ROOMETAEND`  |
//! | `Tags`         | `TAGS <nick>`             | `TAGS`         | `TAGSEND`     |
//! | `PresenceList` | `PRESENCE LIST`           | `PRESENCELIST` | `PRESENCEEND` |
//! | `Topic`        | `TOPIC <#ch>`             | —              | `332` or `331` (kept) |

use std::collections::BTreeMap;

use ractor::RpcReplyPort;

use super::text::{self, FieldError};
use super::{IrcError, Query, ReplyLine};

/// A query on the wire, waiting for its answer.
pub(super) struct Pending {
    /// The line sent.
    pub(super) line: String,
    /// For error numerics: the target the server names.
    target: String,
    /// The verb of gathered lines (`""`: none, the answer is its ending line).
    gather: &'static str,
    /// The verbs that end the answer.
    ends: &'static [&'static str],
    /// The ending line is part of the answer (single-line answers).
    keep_end: bool,
    lines: Vec<ReplyLine>,
}

impl Pending {
    /// Validates the query's arguments and builds its wire line.
    pub(super) fn for_query(query: &Query) -> Result<Pending, FieldError> {
        let (line, target, gather, ends, keep_end) = match query {
            Query::Who(target) => {
                text::check_param("target", target)?;
                let line = format!("WHO {target}");
                (line, target.clone(), "352", &["315"][..], false)
            }
            Query::History { target, count } => {
                text::check_param("target", target)?;
                let line = format!("HISTORY RECENT {target} {count}");
                (line, target.clone(), "HISTORY", &["HISTORYEND"][..], false)
            }
            Query::Threads(channel) => {
                text::check_channel("channel", channel)?;
                let line = format!("THREADS {channel}");
                (line, channel.clone(), "THREADS", &["THREADSEND"][..], false)
            }
            Query::RoomMeta(channel) => {
                text::check_channel("channel", channel)?;
                let line = format!("ROOMMETA {channel}");
                (
                    line,
                    channel.clone(),
                    "ROOMMETA",
                    &["ROOMETAEND"][..],
                    false,
                )
            }
            Query::Tags(nick) => {
                text::check_param("nick", nick)?;
                let line = format!("TAGS {nick}");
                (line, nick.clone(), "TAGS", &["TAGSEND"][..], false)
            }
            Query::PresenceList => {
                let line = "PRESENCE LIST".to_owned();
                (
                    line,
                    String::new(),
                    "PRESENCELIST",
                    &["PRESENCEEND"][..],
                    false,
                )
            }
            Query::Topic(channel) => {
                text::check_channel("channel", channel)?;
                let line = format!("TOPIC {channel}");
                (line, channel.clone(), "", &["332", "331"][..], true)
            }
        };
        Ok(Pending {
            line,
            target,
            gather,
            ends,
            keep_end,
            lines: Vec::new(),
        })
    }
}

type Reply = RpcReplyPort<Result<Vec<ReplyLine>, IrcError>>;

/// The queries waiting for answers, oldest first by id.
#[derive(Default)]
pub(super) struct Queries {
    next: u64,
    waiting: BTreeMap<u64, (Pending, Reply)>,
}

impl Queries {
    /// Parks a sent query; returns its id (for the timeout).
    pub(super) fn add(&mut self, pending: Pending, reply: Reply) -> u64 {
        self.next += 1;
        self.waiting.insert(self.next, (pending, reply));
        self.next
    }

    /// Offers a line to the oldest query that gathers or ends with `verb`.
    pub(super) fn offer(&mut self, verb: &str, params: &[String]) {
        let Some(id) = self
            .waiting
            .iter()
            .find(|(_, (p, _))| p.gather == verb || p.ends.contains(&verb))
            .map(|(id, _)| *id)
        else {
            return;
        };
        let Some((pending, _)) = self.waiting.get_mut(&id) else {
            return;
        };
        let line = ReplyLine {
            command: verb.to_owned(),
            params: params.to_vec(),
        };
        if pending.ends.contains(&verb) {
            if pending.keep_end {
                pending.lines.push(line);
            }
            if let Some((pending, reply)) = self.waiting.remove(&id) {
                let _ = reply.send(Ok(pending.lines));
            }
            return;
        }
        pending.lines.push(line);
    }

    /// An error numeric naming `target` fails the oldest query for that target.
    pub(super) fn refuse(&mut self, target: &str, reason: Option<&String>) {
        let Some(id) = self
            .waiting
            .iter()
            .find(|(_, (p, _))| !p.target.is_empty() && p.target.eq_ignore_ascii_case(target))
            .map(|(id, _)| *id)
        else {
            return;
        };
        if let Some((pending, reply)) = self.waiting.remove(&id) {
            let _ = reply.send(Err(IrcError::Refused {
                what: pending.line,
                reason: reason.cloned().unwrap_or_default(),
            }));
        }
    }

    /// The query's time is up.
    pub(super) fn expire(&mut self, id: u64) {
        if let Some((pending, reply)) = self.waiting.remove(&id) {
            let _ = reply.send(Err(IrcError::Timeout { what: pending.line }));
        }
    }

    /// The link went down: every waiting query fails with `error`.
    pub(super) fn fail_all(&mut self, error: IrcError) {
        for (_, (_, reply)) in std::mem::take(&mut self.waiting) {
            let _ = reply.send(Err(error.clone()));
        }
    }
}
