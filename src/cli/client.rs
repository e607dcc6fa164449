//! The client commands: each becomes one control request ([`crate::control::Request`]) and
//! its answer an output and an exit code.
//!
//! | command                           | request   | prints on success                     |
//! |-----------------------------------|-----------|---------------------------------------|
//! | `status [<nick>] [--json] [--check]` | `status` | the table (or JSON); `--check`: exit 4 and a `hint:` per finding |
//! | `reset <nick> [<child>]`          | `reset`   | `reset`                               |
//! | `fault <nick> <child> <kind>`     | `fault`   | `fault injected`                      |
//! | `pause <nick>` / `resume <nick>`  | `pause` / `resume` | `paused <nick>` / `resumed <nick>` |
//! | `say <nick> <target> <text>…`     | `say`     | `sent as <nick> to <target>`, then `warning:` lines on stderr |
//! | `whisper <nick> <kind> <text>…`   | `whisper` | `whispered <KIND> to <nick>`          |
//! | `watch [<nick>] [--json]`         | `watch`   | the stream ([`super::watch`])         |

use std::process::ExitCode;

use codexd_actors::socket::WhisperKind;
use serde_json::Value;

use super::{Command, ask, exit, fail, print_status, socket_path, watch};
use crate::control::Request;
use crate::env::Env;

/// Runs a client command; `None` for the commands that are not ([`Command::Run`], …).
pub async fn run(command: Command, env: &Env) -> Option<ExitCode> {
    let (target, request, done): (_, Request, Done) = match command {
        Command::Status {
            nick,
            json,
            check,
            target,
        } => (
            target,
            Request::Status { nick },
            Done::Status { json, check },
        ),
        Command::Reset {
            nick,
            child,
            target,
        } => (
            target,
            Request::Reset { nick, child },
            Done::Say("reset".into()),
        ),
        Command::Fault {
            nick,
            child,
            kind,
            target,
        } => (
            target,
            Request::Fault { nick, child, kind },
            Done::Say("fault injected".into()),
        ),
        Command::Pause { nick, target } => {
            let done = Done::Say(format!("paused {nick}"));
            (target, Request::Pause { nick }, done)
        }
        Command::Resume { nick, target } => {
            let done = Done::Say(format!("resumed {nick}"));
            (target, Request::Resume { nick }, done)
        }
        Command::Say {
            nick,
            to,
            text,
            target,
        } => {
            let done = Done::Warned(format!("sent as {nick} to {to}"));
            let text = text.join(" ");
            (
                target,
                Request::Say {
                    nick,
                    target: to,
                    text,
                },
                done,
            )
        }
        Command::Whisper {
            nick,
            kind,
            text,
            target,
        } => {
            let kind = match WhisperKind::parse(&kind) {
                Ok(kind) => kind.name().to_owned(),
                Err(error) => return Some(fail(exit::INPUT, &[error.to_string()])),
            };
            let done = Done::Say(format!("whispered {kind} to {nick}"));
            let text = text.join(" ");
            (target, Request::Whisper { nick, kind, text }, done)
        }
        Command::Watch { nick, json, target } => {
            let Ok(socket) = socket_path(&target, env) else {
                return Some(ExitCode::from(exit::CONFIG));
            };
            return Some(watch::watch(&socket, nick, json).await);
        }
        Command::Run { .. } | Command::CheckConfig { .. } | Command::Completions { .. } => {
            return None;
        }
        Command::Man | Command::Agent { .. } | Command::Repo { .. } => return None,
    };
    let Ok(socket) = socket_path(&target, env) else {
        return Some(ExitCode::from(exit::CONFIG));
    };
    Some(ask(&socket, request, |data| done.print(data)).await)
}

/// What a successful answer prints.
enum Done {
    /// The status table (or JSON), checked with `--check`.
    Status { json: bool, check: bool },
    /// A fixed line.
    Say(String),
    /// A line, then the answer's `warnings` on stderr.
    Warned(String),
}

impl Done {
    fn print(self, data: Option<Value>) -> ExitCode {
        match self {
            Done::Status { json, check } => return print_status(data, json, check),
            Done::Say(line) => println!("{line}"),
            Done::Warned(line) => {
                println!("{line}");
                let warnings = data.as_ref().and_then(|d| d["warnings"].as_array());
                for warning in warnings.into_iter().flatten() {
                    eprintln!("warning: {}", warning.as_str().unwrap_or_default());
                }
            }
        }
        ExitCode::from(exit::OK)
    }
}
