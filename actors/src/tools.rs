//! The agent's own IRC tools, built into codex's turn (reference/codex-dynamic-tools.md):
//! declared on `thread/start` as `dynamicTools` (here), called by codex with
//! `item/tool/call` (the runner hands each [`ToolCall`] through its [`ToolDoor`]), and
//! carried out in-process by the same code as Culture's IPC requests (`socket/tool.rs` on
//! `socket/verbs.rs`: one implementation of each verb, two front doors). codexd runs them itself, so they work
//! under every sandbox, `read-only` included, where the skill client cannot reach the socket.
//!
//! | tool                | IPC verb it is  | arguments                                  |
//! |---------------------|-----------------|--------------------------------------------|
//! | `irc_send`          | `irc_send`      | `channel` (`#name` or a nick), `message`   |
//! | `irc_read`          | `irc_read`      | `channel` (`#name` or `DM:<nick>`), `limit`? |
//! | `irc_ask`           | `irc_ask`       | `channel`, `message`                       |
//! | `irc_join`          | `irc_join`      | `channel`                                  |
//! | `irc_part`          | `irc_part`      | `channel`                                  |
//! | `irc_channels`      | `irc_channels`  | —                                          |
//! | `irc_who`           | `irc_who`       | `target`                                   |
//! | `irc_topic`         | `irc_topic`     | `channel`, `topic`?                        |
//! | `irc_threads`       | `irc_threads`   | `channel`                                  |
//! | `irc_thread_create` | `irc_thread_create` | `channel`, `thread`, `message`         |
//! | `irc_thread_reply`  | `irc_thread_reply`  | `channel`, `thread`, `message`         |
//! | `irc_thread_read`   | `irc_thread_read`   | `channel`, `thread`, `limit`?          |
//! | `irc_thread_close`  | `irc_thread_close`  | `channel`, `thread`, `summary`?        |
//!
//! | `repo_run` (with `repo:` only) | `repo_run` | `remote`, `branch`, `task`, `base`?, `channel`? |
//!
//! Not tools: the agent's lifecycle verbs (`compact`, `clear`, `status`, `pause`, `resume`,
//! `shutdown`). Text the model gives a tool loses its control characters (CTCP, colours)
//! like its replies do; results are short text, errors say what went wrong.

use std::sync::Arc;

use ractor::RpcReplyPort;
use serde_json::{Map, Value, json};

use crate::trace::TraceCtx;

/// The tool set's version: bumped whenever a name, description or schema changes, so a
/// thread started with an older set is detected (a thread's set is fixed at its start).
pub const TOOLSET_VERSION: u32 = 1;

/// One declared tool.
struct Tool {
    name: &'static str,
    description: &'static str,
    /// `(name, JSON type, description, required)`.
    parameters: &'static [(&'static str, &'static str, &'static str, bool)],
}

const CHANNEL: &str = "A channel (#name).";
const THREAD: &str = "The thread's name.";
const LIMIT: &str = "At most this many, the newest (default 50).";

const TOOLS: &[Tool] = &[
    Tool {
        name: "irc_send",
        description: "Send a message to a channel you are in (#name) or to a nick (a DM). Multi-line text becomes several lines. Your final answer already goes to whoever asked you: use this for other channels, DMs and follow-ups.",
        parameters: &[
            ("channel", "string", "A channel (#name) or a nick.", true),
            ("message", "string", "The text.", true),
        ],
    },
    Tool {
        name: "irc_read",
        description: "Read the messages of a channel (#name) or a DM (DM:<nick>) that arrived since your last read; each message is returned once.",
        parameters: &[
            ("channel", "string", "A channel (#name) or DM:<nick>.", true),
            ("limit", "integer", LIMIT, false),
        ],
    },
    Tool {
        name: "irc_ask",
        description: "Ask a question in a channel or DM and alert the operators. Returns at once; an answer arrives later as a mention.",
        parameters: &[
            ("channel", "string", "A channel (#name) or a nick.", true),
            ("message", "string", "The question.", true),
        ],
    },
    Tool {
        name: "irc_join",
        description: "Join a channel (kept across reconnects).",
        parameters: &[("channel", "string", CHANNEL, true)],
    },
    Tool {
        name: "irc_part",
        description: "Leave a channel.",
        parameters: &[("channel", "string", CHANNEL, true)],
    },
    Tool {
        name: "irc_channels",
        description: "List the channels you are in.",
        parameters: &[],
    },
    Tool {
        name: "irc_who",
        description: "List who is in a channel, or look up a nick.",
        parameters: &[("target", "string", "A channel (#name) or a nick.", true)],
    },
    Tool {
        name: "irc_topic",
        description: "Read a channel's topic, or set it when `topic` is given.",
        parameters: &[
            ("channel", "string", CHANNEL, true),
            ("topic", "string", "The new topic (omit to read it).", false),
        ],
    },
    Tool {
        name: "irc_threads",
        description: "List the threads of a channel.",
        parameters: &[("channel", "string", CHANNEL, true)],
    },
    Tool {
        name: "irc_thread_create",
        description: "Start a thread in a channel with a first message.",
        parameters: &[
            ("channel", "string", CHANNEL, true),
            (
                "thread",
                "string",
                "A short name for the thread (letters, digits, -).",
                true,
            ),
            ("message", "string", "The first message.", true),
        ],
    },
    Tool {
        name: "irc_thread_reply",
        description: "Reply in a thread of a channel.",
        parameters: &[
            ("channel", "string", CHANNEL, true),
            ("thread", "string", THREAD, true),
            ("message", "string", "The text.", true),
        ],
    },
    Tool {
        name: "irc_thread_read",
        description: "Read the messages of a thread (does not mark the channel read).",
        parameters: &[
            ("channel", "string", CHANNEL, true),
            ("thread", "string", THREAD, true),
            ("limit", "integer", LIMIT, false),
        ],
    },
    Tool {
        name: "irc_thread_close",
        description: "Close a thread, with an optional one-line summary.",
        parameters: &[
            ("channel", "string", CHANNEL, true),
            ("thread", "string", THREAD, true),
            ("summary", "string", "What was decided (one line).", false),
        ],
    },
];

/// The tool of an agent that takes repository jobs (`repo:` in its config), carried out by
/// its `repo` child through the IPC verb of the same name ([`crate::repo::jobs`]).
const JOB_TOOLS: &[Tool] = &[Tool {
    name: "repo_run",
    description: "Start repository work as a job beside your turns: codexd clones `remote` into a workspace of its own, runs codex on `task` on a new branch `branch` (from `base`, default the remote's HEAD), commits what changed and pushes the branch. Returns the job's id at once; progress and the pushed commit are reported in `channel` (default: this conversation). Only the remotes in your configuration are allowed.",
    parameters: &[
        (
            "remote",
            "string",
            "The git remote: https://host/path, git@host:path or an absolute path.",
            true,
        ),
        (
            "branch",
            "string",
            "The branch to create and push (letters, digits, . _ / -).",
            true,
        ),
        (
            "task",
            "string",
            "What codex should do in the repository.",
            true,
        ),
        (
            "base",
            "string",
            "The commit to start from, e.g. origin/main (optional).",
            false,
        ),
        (
            "channel",
            "string",
            "Where to report (#name or a nick; default: this conversation).",
            false,
        ),
    ],
}];

/// Every IRC tool's name, in declaration order.
pub fn names() -> Vec<&'static str> {
    TOOLS.iter().map(|tool| tool.name).collect()
}

/// Whether codexd carries out a tool named `name` (an IRC tool or a job tool).
pub fn is_known(name: &str) -> bool {
    TOOLS.iter().chain(JOB_TOOLS).any(|tool| tool.name == name)
}

/// What a thread starts with: the chosen IRC tools, and `repo_run` when the agent takes
/// repository jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSet<'a> {
    /// The IRC tools (`tools:`).
    pub irc: &'a ToolChoice,
    /// The agent has `repo:` configured.
    pub jobs: bool,
}

impl ToolSet<'_> {
    /// Every name, IRC tools first.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = self.irc.names();
        if self.jobs {
            names.extend(JOB_TOOLS.iter().map(|tool| tool.name));
        }
        names
    }

    /// `thread/start`'s `dynamicTools`.
    pub fn declared(&self) -> Vec<Value> {
        let mut declared = self.irc.declared();
        if self.jobs {
            declared.extend(JOB_TOOLS.iter().map(declaration));
        }
        declared
    }

    /// What a thread's tool set is recorded as (`v1:irc_send,…`; `,repo_run` at the end
    /// with jobs): without jobs exactly [`ToolChoice::tag`].
    pub fn tag(&self) -> String {
        format!("v{TOOLSET_VERSION}:{}", self.names().join(","))
    }
}

/// Which tools an agent has (`tools:` in its config).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// Every tool (the default).
    #[default]
    All,
    /// None: the agent can only answer.
    Off,
    /// These, in declaration order (names checked by the config).
    Only(Vec<String>),
}

impl ToolChoice {
    /// The chosen tools' names, in declaration order.
    pub fn names(&self) -> Vec<&'static str> {
        TOOLS
            .iter()
            .filter(|tool| match self {
                ToolChoice::All => true,
                ToolChoice::Off => false,
                ToolChoice::Only(names) => names.iter().any(|n| n == tool.name),
            })
            .map(|tool| tool.name)
            .collect()
    }

    /// `thread/start`'s `dynamicTools`.
    pub fn declared(&self) -> Vec<Value> {
        let chosen = self.names();
        TOOLS
            .iter()
            .filter(|tool| chosen.contains(&tool.name))
            .map(declaration)
            .collect()
    }

    /// What a thread's tool set is recorded as (`v1:irc_send,irc_read,…`, `v1:` for none):
    /// a thread recorded otherwise predates the current set.
    pub fn tag(&self) -> String {
        format!("v{TOOLSET_VERSION}:{}", self.names().join(","))
    }
}

/// One tool as codex wants it declared.
fn declaration(tool: &Tool) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, kind, description, needed) in tool.parameters {
        properties.insert(
            (*name).to_owned(),
            json!({"type": kind, "description": description}),
        );
        if *needed {
            required.push(*name);
        }
    }
    json!({
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "inputSchema": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        },
    })
}

/// How a tool call ended: its text for the model, and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutcome {
    /// Whether the call did what was asked.
    pub success: bool,
    /// What the model reads.
    pub text: String,
}

impl ToolOutcome {
    /// A failed call saying `why`.
    pub fn failed(why: impl Into<String>) -> Self {
        Self {
            success: false,
            text: why.into(),
        }
    }
}

/// One call of a tool, for whoever carries it out (the agent's `socket` actor).
#[derive(Debug)]
pub struct ToolCall {
    /// The tool (an IPC verb's name).
    pub tool: String,
    /// Its arguments (a JSON object).
    pub arguments: Value,
    /// The conversation whose thread made the call (`#dev`, `DM:ori`, …); `None`: the
    /// agent's one shared thread. A DM's buffer is readable only from that DM's own thread.
    pub conversation: Option<String>,
    /// The call's span.
    pub trace: TraceCtx,
    /// What the model reads.
    pub reply: RpcReplyPort<ToolOutcome>,
}

/// Where the runner hands its model's tool calls; the agent's wiring points it at the
/// agent's `socket` actor. Handing over returns false when nobody takes the call (the call,
/// and its reply, are dropped).
#[derive(Clone)]
pub struct ToolDoor(Arc<dyn Fn(ToolCall) -> bool + Send + Sync>);

impl ToolDoor {
    /// A door that hands each call to `take`.
    pub fn new(take: impl Fn(ToolCall) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(take))
    }

    /// Hands `call` over.
    pub fn hand(&self, call: ToolCall) -> bool {
        (self.0)(call)
    }
}

impl std::fmt::Debug for ToolDoor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToolDoor")
    }
}
