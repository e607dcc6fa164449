//! The operator's requests to one agent (`codexd pause|resume|say|whisper` over the
//! control socket). The daemon keeps every agent's `socket` actor in a
//! [`SocketDirectory`]; [`SocketDirectory::ask`] sends the actor
//! [`SocketMessage::Operator`](super::SocketMessage::Operator), and the actor carries it out
//! as Culture's IPC verb it is ([`verbs::carry_out`], as [`Caller::Anyone`]), so the
//! operator's text meets the same checks and the same sanitising send path as an IPC
//! client's.
//!
//! | request   | is                       | does                                                       |
//! |-----------|--------------------------|------------------------------------------------------------|
//! | `Pause`   | IPC `pause`              | the pause switch, reason `manual`                          |
//! | `Resume`  | IPC `resume`             | lifts any pause                                            |
//! | `Say`     | IPC `irc_send`           | control characters (CTCP `\x01`, colours) removed from each line, then the `irc` actor's checks (target, joined channel) and send path (one PRIVMSG per line) |
//! | `Whisper` | an overseer verdict      | IPC clients get it (or it waits for one) and the model reads it at the start of its next turn |
//! | `RepoCancel` | IPC `repo_cancel`     | stops a repository job of the agent (`codexd repo cancel`) |

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::SocketMessage;
use super::protocol::{Request, Verb};
use super::verbs::{self, Agent, Caller};
use crate::link::{CallError, Link};
use crate::runner::prompt;
use crate::trace::TraceCtx;

/// How long an operator request may take (a send waits for the `irc` actor, at most 15 s).
const OPERATOR_TIMEOUT: Duration = Duration::from_secs(20);

/// What the operator asks of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorRequest {
    /// Pause the agent (`manual`): mentions wait in its journal.
    Pause,
    /// Lift any pause.
    Resume,
    /// Say `text` to `target` (a channel or a nick) as the agent.
    Say {
        /// `#channel` or a nick.
        target: String,
        /// The text; each line becomes one PRIVMSG.
        text: String,
    },
    /// Whisper to the agent, as the overseer does.
    Whisper {
        /// The whisper's type.
        kind: WhisperKind,
        /// The text.
        text: String,
    },
    /// Stop one of the agent's repository jobs.
    RepoCancel {
        /// The job's id.
        job: u64,
    },
}

/// What an operator request came to: the answer's warnings, and a note to show (what a
/// `RepoCancel` did).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorAnswer {
    /// Warnings (a line queued while IRC is down, an unknown @nick).
    pub warnings: Vec<String>,
    /// What was done, when there is more to say than "done".
    pub note: Option<String>,
}

impl OperatorRequest {
    /// The request's name in logs and spans.
    pub fn name(&self) -> &'static str {
        match self {
            OperatorRequest::Pause => "pause",
            OperatorRequest::Resume => "resume",
            OperatorRequest::Say { .. } => "say",
            OperatorRequest::Whisper { .. } => "whisper",
            OperatorRequest::RepoCancel { .. } => "repo_cancel",
        }
    }
}

/// The whisper types an agent knows (Culture's overseer verdicts that whisper).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhisperKind {
    /// `CORRECTION`: the agent is going wrong.
    Correction,
    /// `THINK_DEEPER`: the agent should think harder.
    ThinkDeeper,
}

impl WhisperKind {
    /// Every kind, by its name.
    pub const ALL: [WhisperKind; 2] = [WhisperKind::Correction, WhisperKind::ThinkDeeper];

    /// Culture's name, the whisper's `whisper_type`.
    pub fn name(self) -> &'static str {
        match self {
            WhisperKind::Correction => "CORRECTION",
            WhisperKind::ThinkDeeper => "THINK_DEEPER",
        }
    }

    /// Parses a name, in any case.
    ///
    /// | text                           | result                |
    /// |--------------------------------|-----------------------|
    /// | `CORRECTION`, `correction`     | `Correction`          |
    /// | `THINK_DEEPER`, `think_deeper` | `ThinkDeeper`         |
    /// | `ESCALATION`, `hint`, …        | [`OperatorError::UnknownWhisperKind`] |
    pub fn parse(text: &str) -> Result<Self, OperatorError> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| OperatorError::UnknownWhisperKind(text.to_owned()))
    }
}

/// Why an operator request was not carried out. The control socket maps these to its
/// error codes, so they are typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// No agent of that nick.
    #[error("no agent named {nick:?} (known: {known})")]
    UnknownAgent {
        /// The nick asked for.
        nick: String,
        /// The agents there are, comma-separated.
        known: String,
    },
    /// The agent's `socket` actor is not running (restarting, circuit open, a test child).
    #[error("{nick}'s socket actor is not running, so it cannot be asked now")]
    NotRunning {
        /// The agent.
        nick: String,
    },
    /// A whisper type other than `CORRECTION` and `THINK_DEEPER`.
    #[error("unknown whisper kind {0:?}: expected CORRECTION or THINK_DEEPER")]
    UnknownWhisperKind(String),
    /// The agent refused the request (the IPC verb's error: not joined, a bad target, …).
    #[error("{0}")]
    Refused(String),
    /// No answer in time.
    #[error("{nick} did not answer within {}s", .after.as_secs())]
    Timeout {
        /// The agent.
        nick: String,
        /// How long it was given.
        after: Duration,
    },
}

/// Every agent's `socket` actor by nick: filled as agents are assembled, read by the
/// control socket. Clones share the directory.
#[derive(Debug, Clone, Default)]
pub struct SocketDirectory {
    sockets: Arc<Mutex<BTreeMap<String, Link<SocketMessage>>>>,
}

impl SocketDirectory {
    /// Records where agent `nick`'s socket actor registers (a reassembled agent replaces it).
    pub(crate) fn register(&self, nick: &str, link: Link<SocketMessage>) {
        self.lock().insert(nick.to_owned(), link);
    }

    /// Asks agent `nick` to carry out `request`; the answer's warnings (e.g. a line queued
    /// while IRC is down) on success.
    pub async fn ask(
        &self,
        nick: &str,
        request: OperatorRequest,
        trace: TraceCtx,
    ) -> Result<OperatorAnswer, OperatorError> {
        let link = self.lock().get(nick).cloned();
        let Some(link) = link else {
            let known = self.lock().keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(OperatorError::UnknownAgent {
                nick: nick.to_owned(),
                known,
            });
        };
        let make = |reply| SocketMessage::Operator {
            request,
            trace,
            reply,
        };
        match link.call(make, OPERATOR_TIMEOUT).await {
            Ok(answer) => answer,
            Err(CallError::NotRunning) => Err(OperatorError::NotRunning {
                nick: nick.to_owned(),
            }),
            Err(CallError::Timeout(after)) => Err(OperatorError::Timeout {
                nick: nick.to_owned(),
                after,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Link<SocketMessage>>> {
        // Inserts and lookups only: a poisoned lock holds a consistent map.
        self.sockets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Carries out `Pause`, `Resume`, `Say` or `RepoCancel` as the IPC verb it is (a `Whisper`
/// is the actor's own business: [`super::SocketState`]).
pub(crate) async fn carry_out(
    agent: &Agent,
    request: OperatorRequest,
    trace: &TraceCtx,
) -> Result<OperatorAnswer, OperatorError> {
    let verb = match request {
        OperatorRequest::Pause => Verb::Pause,
        OperatorRequest::Resume => Verb::Resume,
        OperatorRequest::Say { target, text } => Verb::IrcSend {
            channel: target,
            message: without_controls(&text),
        },
        OperatorRequest::RepoCancel { job } => Verb::RepoCancel { job },
        OperatorRequest::Whisper { .. } => {
            return Err(OperatorError::Refused(
                "a whisper is delivered by the socket actor itself".to_owned(),
            ));
        }
    };
    let request = Request {
        id: json!("operator"),
        verb,
    };
    let response = verbs::carry_out(agent, request, trace, &Caller::Anyone).await;
    if let Some(error) = response.error_text() {
        return Err(OperatorError::Refused(error.to_owned()));
    }
    let note = response
        .data()
        .and_then(|data| data.get("result"))
        .and_then(|result| result.as_str())
        .map(str::to_owned);
    Ok(OperatorAnswer {
        warnings: response.warnings().to_vec(),
        note,
    })
}

/// `text` with the control characters of each line removed, as the model's tool texts are.
///
/// | text                      | result                 |
/// |---------------------------|------------------------|
/// | `"hi\r\nQUIT :bye"`       | `"hi\nQUIT :bye"` (two lines: two PRIVMSGs) |
/// | `"\x01VERSION\x01"`       | `"VERSION"` (no CTCP)  |
/// | `"\x02bold\x0f\tx"`       | `"bold x"`             |
fn without_controls(text: &str) -> String {
    text.lines()
        .map(prompt::without_controls)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whisper_kinds_parse_in_any_case_and_others_are_refused() {
        let table = [
            ("CORRECTION", Ok(WhisperKind::Correction)),
            ("correction", Ok(WhisperKind::Correction)),
            ("Think_Deeper", Ok(WhisperKind::ThinkDeeper)),
            (
                "ESCALATION",
                Err(OperatorError::UnknownWhisperKind("ESCALATION".into())),
            ),
            ("", Err(OperatorError::UnknownWhisperKind(String::new()))),
        ];
        for (text, want) in table {
            assert_eq!(WhisperKind::parse(text), want, "{text:?}");
        }
        let error = WhisperKind::parse("hint").expect_err("refused");
        assert!(
            error.to_string().contains("CORRECTION or THINK_DEEPER"),
            "{error}"
        );
    }

    #[test]
    fn said_text_loses_its_control_characters_line_by_line() {
        let table = [
            ("hi\r\nQUIT :bye", "hi\nQUIT :bye"),
            ("\u{1}VERSION\u{1}", "VERSION"),
            ("\u{2}bold\u{f}\tx", "bold x"),
            ("\u{1b}[31mred", "[31mred"),
        ];
        for (text, want) in table {
            assert_eq!(without_controls(text), want, "{text:?}");
        }
    }

    #[tokio::test]
    async fn an_unknown_or_absent_agent_is_named_in_the_error() {
        let directory = SocketDirectory::default();
        directory.register("spark-a", Link::default());
        let unknown = directory
            .ask("spark-z", OperatorRequest::Pause, TraceCtx::default())
            .await;
        assert_eq!(
            unknown,
            Err(OperatorError::UnknownAgent {
                nick: "spark-z".into(),
                known: "spark-a".into()
            })
        );
        let down = directory
            .ask("spark-a", OperatorRequest::Resume, TraceCtx::default())
            .await;
        assert_eq!(
            down,
            Err(OperatorError::NotRunning {
                nick: "spark-a".into()
            })
        );
    }
}
