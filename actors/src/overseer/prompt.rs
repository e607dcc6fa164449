//! The evaluation prompt (codexd-spec §13.2): the transcript of the window and the
//! template it is put into, byte for byte Culture's.
//!
//! A `prompt_override` is a Python `str.format` template with one field:
//!
//! | in the template          | becomes                         |
//! |--------------------------|---------------------------------|
//! | `{transcript}`           | the transcript                  |
//! | `{{` / `}}`              | `{` / `}`                       |
//! | `{}`, `{0}`, `{name}`    | error (Python: `IndexError`/`KeyError`) |
//! | `{transcript!r}`, `{transcript:>9}`, `{transcript.x}` | error (codexd supports none) |
//! | a lone `}` or an unclosed `{` | error (Python: `ValueError`) |
//!
//! Culture falls back to the default template on an error; codexd reports it when the
//! config is loaded ([`Template::parse`]), naming the key.

use std::fmt;

/// Culture's `SUPERVISOR_PROMPT` (no trailing newline).
pub const DEFAULT_TEMPLATE: &str =
    "You are a supervisor monitoring an AI coding agent on an IRC network.
Review the agent's recent activity and respond with exactly one verdict:

- OK \u{2014} agent is productive, no action needed
- CORRECTION <message> \u{2014} agent needs redirection, include guidance
- THINK_DEEPER <message> \u{2014} agent should reflect more deeply
- ESCALATION <message> \u{2014} agent is spiraling, humans need to be notified

Recent agent activity:
{transcript}

Your verdict (one line):";

/// Characters of each agent message the transcript keeps.
pub const MESSAGE_CHARS: usize = 200;

/// The transcript of `messages`: `Agent: <first 200 characters>` per message, joined by
/// `\n`; `(no activity)` when there are none.
pub fn transcript<S: AsRef<str>>(messages: &[S]) -> String {
    if messages.is_empty() {
        return "(no activity)".to_owned();
    }
    let lines: Vec<String> = messages
        .iter()
        .map(|text| {
            let head: String = text.as_ref().chars().take(MESSAGE_CHARS).collect();
            format!("Agent: {head}")
        })
        .collect();
    lines.join("\n")
}

/// A parsed template: literal text and transcript slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Transcript,
}

/// Why a `prompt_override` is not a usable template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{` without its `}`.
    #[error("unclosed '{{' at byte {0} (write '{{{{' for a literal brace)")]
    Unclosed(usize),
    /// `}` that closes nothing.
    #[error("single '}}' at byte {0} (write '}}}}' for a literal brace)")]
    LoneClose(usize),
    /// A field other than `{transcript}`.
    #[error("unknown field {{{field}}} at byte {at}: the only field is {{transcript}}")]
    Field {
        /// The field's text between the braces.
        field: String,
        /// Where it starts.
        at: usize,
    },
}

impl Template {
    /// Parses `text` with `str.format` rules (see the module table).
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(TemplateError::LoneClose(at)),
                '{' => {
                    let rest = &text[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(TemplateError::Unclosed(at));
                    };
                    let field = &rest[..end];
                    if field != "transcript" {
                        let field = field.to_owned();
                        return Err(TemplateError::Field { field, at });
                    }
                    while chars.next_if(|(i, _)| *i <= at + 1 + end).is_some() {}
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                    parts.push(Part::Transcript);
                }
                c => literal.push(c),
            }
        }
        parts.push(Part::Text(literal));
        parts.retain(|part| part != &Part::Text(String::new()));
        Ok(Self { parts })
    }

    /// Culture's default prompt.
    pub fn default_prompt() -> Self {
        Self::parse(DEFAULT_TEMPLATE).expect("the default template is valid")
    }

    /// The template for `prompt_override`: the default when empty.
    pub fn for_override(prompt_override: &str) -> Result<Self, TemplateError> {
        match prompt_override.is_empty() {
            true => Ok(Self::default_prompt()),
            false => Self::parse(prompt_override),
        }
    }

    /// The prompt for `transcript`.
    pub fn render(&self, transcript: &str) -> String {
        let mut prompt = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => prompt.push_str(text),
                Part::Transcript => prompt.push_str(transcript),
            }
        }
        prompt
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("{transcript}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_lines() {
        let long = "é".repeat(250);
        let table: [(&[&str], String); 4] = [
            (&[], "(no activity)".to_owned()),
            (&["hello"], "Agent: hello".to_owned()),
            (&["a", "b\nc"], "Agent: a\nAgent: b\nc".to_owned()),
            (&[&long], format!("Agent: {}", "é".repeat(200))),
        ];
        for (messages, expected) in table {
            assert_eq!(transcript(messages), expected, "{messages:?}");
        }
    }

    #[test]
    fn the_default_prompt_is_cultures_byte_for_byte() {
        let prompt = Template::default_prompt().render(&transcript(&["fixed the bug"]));
        let expected = concat!(
            "You are a supervisor monitoring an AI coding agent on an IRC network.\n",
            "Review the agent's recent activity and respond with exactly one verdict:\n",
            "\n",
            "- OK \u{2014} agent is productive, no action needed\n",
            "- CORRECTION <message> \u{2014} agent needs redirection, include guidance\n",
            "- THINK_DEEPER <message> \u{2014} agent should reflect more deeply\n",
            "- ESCALATION <message> \u{2014} agent is spiraling, humans need to be notified\n",
            "\n",
            "Recent agent activity:\n",
            "Agent: fixed the bug\n",
            "\n",
            "Your verdict (one line):"
        );
        assert_eq!(prompt, expected);
        assert_eq!(Template::for_override(""), Ok(Template::default_prompt()));
    }

    #[test]
    fn overrides_follow_str_format() {
        let ok = [
            ("{transcript}", "T"),
            ("Look: {transcript}!", "Look: T!"),
            ("{{literal}} {transcript} {{x}}", "{literal} T {x}"),
            ("{transcript}{transcript}", "TT"),
            ("no field at all", "no field at all"),
            ("}}{{", "}{"),
        ];
        for (template, expected) in ok {
            let parsed = Template::parse(template).expect(template);
            assert_eq!(parsed.render("T"), expected, "{template:?}");
        }
        let field = |field: &str, at| TemplateError::Field {
            field: field.to_owned(),
            at,
        };
        let bad = [
            ("{}", field("", 0)),
            ("x {0}", field("0", 2)),
            ("{name}", field("name", 0)),
            ("{transcript!r}", field("transcript!r", 0)),
            ("{transcript:>9}", field("transcript:>9", 0)),
            ("a } b", TemplateError::LoneClose(2)),
            ("{transcript", TemplateError::Unclosed(0)),
            ("ok {transcript} then {", TemplateError::Unclosed(21)),
        ];
        for (template, expected) in bad {
            assert_eq!(Template::parse(template), Err(expected), "{template:?}");
        }
    }

    #[test]
    fn errors_read_well() {
        let error = Template::parse("{name}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown field {name} at byte 0: the only field is {transcript}"
        );
        assert_eq!(
            TemplateError::LoneClose(3).to_string(),
            "single '}' at byte 3 (write '}}' for a literal brace)"
        );
    }
}
