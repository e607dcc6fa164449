//! The command line's definition (clap derive): what `--help`, the shell completions and
//! the man page are generated from.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

/// codexd — hosts OpenAI Codex agents on IRC.
#[derive(Debug, Parser)]
#[command(name = "codexd", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "human")]
    pub log_format: LogFormat,
    /// What to do (none: print help).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (all agents, or the ones named with --agent).
    Run {
        /// Config file [default: $CODEXD_CONFIG, else ~/.config/codexd/config.yaml, ~/.culture/server.yaml, ~/.culture/agents.yaml: the first that exists].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Run only this agent (repeatable).
        #[arg(long = "agent", value_name = "NICK")]
        agents: Vec<String>,
    },
    /// Validate a config file, check that this machine can run it (agent directories, the
    /// codex binary and its version, the server's host, writable state and socket
    /// directories) and print a summary of its agents.
    CheckConfig {
        /// Config file [default: $CODEXD_CONFIG, else ~/.config/codexd/config.yaml, ~/.culture/server.yaml, ~/.culture/agents.yaml: the first that exists].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Validate the file only: no file system, codex or DNS checks (CI, other machines).
        #[arg(long)]
        no_preflight: bool,
    },
    /// Show the running daemon's supervision tree (PAUSED and UPTIME included), or one
    /// agent's; with --check, exit 4 and say why when something is unhealthy.
    Status {
        /// Only this agent (and the codex process it is on).
        nick: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Health probe: exit 4, with one `hint:` line per finding, when a circuit is open,
        /// an agent is down, or an agent is paused for turn failures or an escalation (a
        /// manual or sleep pause is healthy).
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Close the circuit of an agent's child (or of the agent and all its children), or of a
    /// codex process (`codexd reset codex process-<n>`).
    Reset {
        /// The agent's nick, or `codex` for the codex service.
        nick: String,
        /// The child (irc, socket, runner, …, or process-<n>); omit to reset them all.
        child: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Break a child on purpose: panic, error, hang, hang:<seconds>, or a child's own fault
    /// (irc disconnect, runner kill, webhook blackhole, codex process-<n> kill).
    Fault {
        /// The agent's nick, or `codex` for the codex service.
        nick: String,
        /// The child (irc, socket, runner, …, or process-<n>).
        child: String,
        /// panic | error | hang | hang:<seconds> | disconnect | kill | blackhole
        kind: String,
        #[command(flatten)]
        target: Target,
    },
    /// Pause an agent: mentions and DMs wait in its journal until `codexd resume`.
    Pause {
        /// The agent's nick.
        nick: String,
        #[command(flatten)]
        target: Target,
    },
    /// Resume a paused agent, whatever paused it; what waited is answered.
    Resume {
        /// The agent's nick.
        nick: String,
        #[command(flatten)]
        target: Target,
    },
    /// Say something on IRC as the agent: control characters (CTCP, colours) are removed
    /// and each line of the text is one message.
    Say {
        /// The agent's nick.
        nick: String,
        /// A channel the agent is in (#name), or a nick.
        #[arg(value_name = "TARGET")]
        to: String,
        /// The text (several words are joined with spaces; after `--` it may start with `-`).
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Whisper to an agent as its overseer does: skill clients get it, and the model reads
    /// it at the start of its next turn. Never posted to IRC.
    Whisper {
        /// The agent's nick.
        nick: String,
        /// CORRECTION | THINK_DEEPER
        kind: String,
        /// The text (several words are joined with spaces; after `--` it may start with `-`).
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Follow turns live (messages in, turn start, tool calls, replies, turn end with its
    /// duration and tokens): a readable line per event on a terminal, JSON lines when piped.
    Watch {
        /// Only this agent.
        nick: Option<String>,
        /// JSON lines even on a terminal.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Move an agent between hosts: export a stopped agent's state and its threads' codex
    /// rollouts, import them on another host (under a new nick, another server's prefix).
    Agent {
        /// export | import
        #[command(subcommand)]
        action: super::agent::AgentAction,
    },
    /// Repository work, in this process (no daemon needed): clone a remote into a managed
    /// workspace, let codex do a task on a branch, commit, push.
    Repo {
        /// What to do (none: print help).
        #[command(subcommand)]
        command: Option<RepoCommand>,
    },
    /// Print a shell completion script (e.g. `codexd completions bash > /etc/bash_completion.d/codexd`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout (e.g. `codexd man | man -l -`).
    Man,
}

/// How the client commands find the daemon.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Control socket [default: control_socket from the config].
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Config file whose control_socket to use.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `codexd repo …`.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Clone REMOTE into the workspace, run codex on TASK on a new branch, then commit and
    /// push what it changed (one commit), or print `no changes`.
    Run {
        /// An HTTPS (`https://host/path`) or SSH (`git@host:path`) remote, or an absolute path.
        remote: String,
        /// The branch to create and push.
        #[arg(long, allow_hyphen_values = true)]
        branch: String,
        /// What codex should do.
        #[arg(long)]
        task: String,
        /// The commit to start from (e.g. `origin/main`) [default: the remote's HEAD].
        #[arg(long, value_name = "REF", allow_hyphen_values = true)]
        base: Option<String>,
        /// The workspace, inside the current directory; emptied first.
        #[arg(long, value_name = "PATH", default_value = ".codexd/work")]
        workspace: PathBuf,
        /// The model [default: codex.model from the config, else codex's own default].
        #[arg(long)]
        model: Option<String>,
        /// codex's sandbox; `workspace-write` may write the checkout only.
        #[arg(long, default_value = "workspace-write", value_parser = ["workspace-write", "read-only", "danger-full-access"])]
        sandbox: String,
        /// A codex turn running longer is interrupted (exit 2, nothing committed).
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
        turn_timeout: std::time::Duration,
        /// Each git command running longer is killed (exit 2).
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
        git_timeout: std::time::Duration,
        /// Config file for `codex:` (binary, env, model, approvals, timeouts), `state_dir`
        /// and `telemetry:` [default: as `codexd run`; none: codex's defaults].
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Push the workspace's checkout (not the repository around it) to origin/BRANCH.
    Push {
        /// The workspace `repo run` used.
        #[arg(long, value_name = "PATH", default_value = ".codexd/work")]
        workspace: PathBuf,
        /// The branch to push to (required).
        #[arg(long, allow_hyphen_values = true)]
        branch: Option<String>,
        /// Each git command running longer is killed (exit 2).
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
        git_timeout: std::time::Duration,
    },
    /// Empty the workspace (only one codexd made).
    Clean {
        /// The workspace.
        #[arg(long, value_name = "PATH", default_value = ".codexd/work")]
        workspace: PathBuf,
    },
    /// Cancel a repository job of an agent of the running daemon (its jobs are listed under
    /// its `repo` child in `codexd status <nick> --json`): nothing is pushed after it.
    Cancel {
        /// The agent's nick.
        nick: String,
        /// The job's id.
        job: u64,
        #[command(flatten)]
        target: Target,
    },
}
