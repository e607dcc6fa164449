//! The evaluator's answer, parsed as Culture's `SupervisorVerdict.parse` does
//! (codexd-spec §13.3):
//!
//! | stdout (after trimming)            | verdict                                  |
//! |------------------------------------|------------------------------------------|
//! | empty, or exactly `OK`             | `Ok`, no message                         |
//! | `<ACTION><whitespace><rest>`       | `ACTION` with `rest` (later lines kept)  |
//! | `<ACTION>` alone                   | `ACTION` with an empty message           |
//! | any other first word               | `Ok`, no message, and a warning          |
//!
//! The action is case-sensitive; the first run of whitespace (space, tab, newline) ends it.

use std::fmt;

/// What the evaluator decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The agent is productive; nothing to do.
    Ok,
    /// The agent needs redirection: whisper the message.
    Correction,
    /// The agent should reflect more deeply: whisper the message.
    ThinkDeeper,
    /// The agent is spiraling: humans should be told.
    Escalation,
}

impl Action {
    /// Culture's name (`OK`, `CORRECTION`, `THINK_DEEPER`, `ESCALATION`), also the whisper type.
    pub fn name(self) -> &'static str {
        match self {
            Action::Ok => "OK",
            Action::Correction => "CORRECTION",
            Action::ThinkDeeper => "THINK_DEEPER",
            Action::Escalation => "ESCALATION",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Action::Ok,
            Action::Correction,
            Action::ThinkDeeper,
            Action::Escalation,
        ]
        .into_iter()
        .find(|action| action.name() == name)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One parsed verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The action.
    pub action: Action,
    /// The guidance or reason (may span lines; empty for `OK`).
    pub message: String,
}

impl Verdict {
    /// `OK` with no message.
    pub fn ok() -> Self {
        Self {
            action: Action::Ok,
            message: String::new(),
        }
    }
}

/// How [`parse`] read the evaluator's stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A known action.
    Known(Verdict),
    /// The first word is not an action; treated as `OK` (Culture logs a warning).
    Unknown {
        /// The word that was not understood.
        word: String,
    },
}

impl Parsed {
    /// The verdict to act on (`OK` for an unknown word).
    pub fn verdict(self) -> Verdict {
        match self {
            Parsed::Known(verdict) => verdict,
            Parsed::Unknown { .. } => Verdict::ok(),
        }
    }
}

/// Parses the evaluator's stdout (see the module table).
pub fn parse(stdout: &str) -> Parsed {
    let text = stdout.trim();
    if text.is_empty() || text == "OK" {
        return Parsed::Known(Verdict::ok());
    }
    let (word, rest) = match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim_start()),
        None => (text, ""),
    };
    match Action::from_name(word) {
        Some(action) => Parsed::Known(Verdict {
            action,
            message: rest.to_owned(),
        }),
        None => Parsed::Unknown {
            word: word.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(action: Action, message: &str) -> Parsed {
        Parsed::Known(Verdict {
            action,
            message: message.to_owned(),
        })
    }

    #[test]
    fn culture_vectors() {
        let unknown = |word: &str| Parsed::Unknown {
            word: word.to_owned(),
        };
        let table = [
            ("OK", known(Action::Ok, "")),
            ("  OK\n", known(Action::Ok, "")),
            ("", known(Action::Ok, "")),
            ("   ", known(Action::Ok, "")),
            (
                "CORRECTION You're spiraling",
                known(Action::Correction, "You're spiraling"),
            ),
            (
                "THINK_DEEPER This needs more thought",
                known(Action::ThinkDeeper, "This needs more thought"),
            ),
            (
                "ESCALATION Still stuck",
                known(Action::Escalation, "Still stuck"),
            ),
            ("RANDOM garbage", unknown("RANDOM")),
            ("correction lower case", unknown("correction")),
            ("CORRECTION\tmsg", known(Action::Correction, "msg")),
            ("ESCALATION\nreason", known(Action::Escalation, "reason")),
            (
                "CORRECTION   spaced  out",
                known(Action::Correction, "spaced  out"),
            ),
            (
                "CORRECTION first\nsecond line\n",
                known(Action::Correction, "first\nsecond line"),
            ),
            ("ESCALATION", known(Action::Escalation, "")),
            ("OK but with words", known(Action::Ok, "but with words")),
        ];
        for (stdout, expected) in table {
            assert_eq!(parse(stdout), expected, "{stdout:?}");
        }
    }

    #[test]
    fn an_unknown_word_is_acted_on_as_ok() {
        assert_eq!(parse("RANDOM garbage").verdict(), Verdict::ok());
        assert_eq!(parse("ESCALATION x").verdict().action, Action::Escalation);
    }
}
