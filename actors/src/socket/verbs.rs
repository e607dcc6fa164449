//! What each IPC request does: the `irc` actor for everything on IRC (so text from IPC
//! reaches the wire only through its sanitising send path), the runner for `compact`,
//! `clear` and the live part of `status`, the pause switch, the webhook for `irc_ask`, and
//! the daemon for `shutdown`. Runs in the connection's task, never in the actor.
//!
//! The [`Caller`] decides two things with threads per conversation:
//!
//! | caller                                   | reads a DM's buffer (`irc_read`, `irc_thread_read` of `DM:<peer>`) | `compact`/`clear` |
//! |------------------------------------------|------------------------------------------|---------------------------|
//! | outside codex (an operator, Culture's CLI) | yes                                    | any; without `conversation`: every one |
//! | the model's tool call on a thread        | only from that DM's own thread           | (not tools)               |
//! | a process under the agent's codex (a skill client) | only while one of the turns running there is that DM's | only those turns' conversations; without `conversation`: the one turn's, else refused |
//!
//! With one shared thread (`conversations.threads: shared`) nothing is private (Culture).

use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorCell, ActorRef, RpcReplyPort};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::StopRequest;
use super::protocol::{Request, Response, Verb};
use crate::child::{ControlMsg, Report};
use crate::irc::mention::mentioned_nicks;
use crate::irc::{BufferedMessage, IrcError, IrcMessage, Query, ReplyLine, SendPriority, ThreadOp};
use crate::link::CallError;
use crate::link::Link;
use crate::pause::{PauseReason, PauseSwitch};
use crate::runner::conversation::Conversation;
use crate::runner::{CurrentTurn, RunnerMessage, SlashCommand, TurnStatus};
use crate::supervisor::SupervisorMsg;
use crate::trace::TraceCtx;
use crate::webhook::{Alert, AlertEvent, WebhookMessage};

/// How long a request waits for the `irc` actor (its own queries time out after 10 s).
const IRC_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `status` waits for the runner (a live query may take 10 s).
const RUNNER_TIMEOUT: Duration = Duration::from_secs(12);
/// How long `status` waits for the agent's supervisor.
const SUPERVISOR_TIMEOUT: Duration = Duration::from_secs(2);
/// Culture's error when the runner is down.
const RUNNER_DOWN: &str = "Agent runner is not running";

/// Everything a request can reach; shared by every connection of one agent.
pub(crate) struct Agent {
    pub(crate) nick: String,
    pub(crate) irc: Link<IrcMessage>,
    pub(crate) runner: Link<RunnerMessage>,
    pub(crate) webhook: Link<WebhookMessage>,
    pub(crate) pause: PauseSwitch,
    pub(crate) turn: CurrentTurn,
    pub(crate) stop: mpsc::Sender<StopRequest>,
    /// The agent's supervisor (for the runner's circuit in `status`).
    pub(crate) supervisor: ActorCell,
    /// Its `repo` child (repository jobs).
    pub(crate) repo: Link<crate::repo::jobs::RepoJobsMessage>,
    /// It takes repository jobs.
    pub(crate) repo_jobs: bool,
}

/// The agent's repository jobs, as the `repo_*` verbs reach them.
fn jobs(agent: &Agent) -> super::repo::Jobs<'_> {
    super::repo::Jobs {
        nick: &agent.nick,
        repo_jobs: agent.repo_jobs,
        repo: &agent.repo,
    }
}

/// Who makes a request, for DM privacy and the default conversation (module table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Outside codex, or the agent has one shared thread: no restriction.
    Anyone,
    /// From codex, acting in one of these conversations (thread keys).
    Within(Vec<String>),
}

impl Caller {
    /// Whether this caller may read buffer `key`.
    fn may_read(&self, key: &str) -> bool {
        let Caller::Within(conversations) = self else {
            return true;
        };
        let is_dm = key.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("DM:"));
        !is_dm || conversations.iter().any(|c| c.eq_ignore_ascii_case(key))
    }

    /// The conversation a `compact`/`clear` is about (`None`: every one), or why this
    /// caller may not: from under codex, only the running turns' own.
    fn conversation(&self, given: Option<String>) -> Result<Option<String>, String> {
        let Caller::Within(conversations) = self else {
            return Ok(given);
        };
        match given {
            Some(given) if conversations.iter().any(|c| c.eq_ignore_ascii_case(given.trim())) => {
                Ok(Some(given))
            }
            Some(given) => Err(format!(
                "{given} is not the conversation of a turn running now: a request from the agent's codex compacts or clears only its own"
            )),
            None if conversations.len() == 1 => Ok(conversations.first().cloned()),
            None => Err(
                "name the conversation: a request from the agent's codex compacts or clears only the conversation of a turn running now".to_owned(),
            ),
        }
    }
}

/// Carries out `request` and answers it.
pub(crate) async fn carry_out(
    agent: &Agent,
    request: Request,
    trace: &TraceCtx,
    caller: &Caller,
) -> Response {
    let id = request.id;
    let trace = trace.clone();
    let result: Result<Answer, String> = match request.verb {
        Verb::IrcRead { channel, .. } | Verb::ThreadRead { channel, .. }
            if !caller.may_read(&channel) =>
        {
            Err(format!(
                "{channel} is a private conversation: it is readable only from its own thread"
            ))
        }
        Verb::IrcSend { channel, message } => send(agent, channel, message, true, trace).await,
        Verb::IrcAsk { channel, message } => ask(agent, channel, message, trace).await,
        Verb::IrcRead { channel, limit } => irc(agent, |reply| IrcMessage::Read {
            key: channel,
            limit,
            reply,
        })
        .await
        .map(|messages| Answer::data(json!({ "messages": read_entries(&messages, false) }))),
        Verb::ThreadRead {
            channel,
            thread,
            limit,
        } => irc(agent, |reply| IrcMessage::ReadThread {
            key: channel,
            thread,
            limit,
            reply,
        })
        .await
        .map(|messages| Answer::data(json!({ "messages": read_entries(&messages, true) }))),
        Verb::IrcJoin { channel } => irc_result(agent, |reply| IrcMessage::Join {
            channel,
            trace,
            reply,
        })
        .await
        .map(|()| Answer::done()),
        Verb::IrcPart { channel } => irc_result(agent, |reply| IrcMessage::Part {
            channel,
            trace,
            reply,
        })
        .await
        .map(|()| Answer::done()),
        Verb::IrcTopic {
            channel,
            topic: None,
        } => query(agent, Query::Topic(channel), trace)
            .await
            .map(|lines| Answer::data(json!({ "topic": topic_of(&lines) }))),
        Verb::IrcTopic {
            channel,
            topic: Some(topic),
        } => irc_result(agent, |reply| IrcMessage::Topic {
            channel,
            topic: Some(topic),
            trace,
            reply,
        })
        .await
        .map(|()| Answer::done()),
        Verb::IrcChannels => irc(agent, |reply| IrcMessage::Channels { reply })
            .await
            .map(|channels| Answer::data(json!({ "channels": channels }))),
        Verb::IrcWho { target } => query(agent, Query::Who(target.clone()), trace)
            .await
            .map(|lines| Answer::data(json!({ "target": target, "members": who_members(&lines) }))),
        Verb::Threads { channel } => query(agent, Query::Threads(channel.clone()), trace)
            .await
            .map(|lines| {
                Answer::data(json!({ "channel": channel, "threads": thread_list(&lines) }))
            }),
        Verb::ThreadCreate {
            channel,
            thread,
            message,
        } => {
            thread_op(
                agent,
                ThreadOp::Create {
                    channel,
                    thread,
                    text: message,
                },
                trace,
            )
            .await
        }
        Verb::ThreadReply {
            channel,
            thread,
            message,
        } => {
            thread_op(
                agent,
                ThreadOp::Reply {
                    channel,
                    thread,
                    text: message,
                },
                trace,
            )
            .await
        }
        Verb::ThreadClose {
            channel,
            thread,
            summary,
        } => {
            thread_op(
                agent,
                ThreadOp::Close {
                    channel,
                    thread,
                    summary,
                },
                trace,
            )
            .await
        }
        Verb::Compact { conversation } => match caller.conversation(conversation) {
            Ok(conversation) => command(agent, SlashCommand::Compact, conversation, trace).await,
            Err(error) => Err(error),
        },
        Verb::Clear { conversation } => match caller.conversation(conversation) {
            Ok(conversation) => command(agent, SlashCommand::Clear, conversation, trace).await,
            Err(error) => Err(error),
        },
        Verb::Status { query } => Ok(Answer::data(status(agent, query, trace).await)),
        Verb::Pause => {
            agent.pause.pause(PauseReason::Manual);
            tracing::info!(agent.nick = %agent.nick, "agent paused (manual)");
            Ok(Answer::done())
        }
        Verb::Resume => {
            agent.pause.resume();
            tracing::info!(agent.nick = %agent.nick, "agent resumed");
            Ok(Answer::done())
        }
        Verb::Shutdown => Ok(Answer::done()),
        Verb::RepoRun(run) => {
            let by = match caller {
                Caller::Anyone => "ipc".to_owned(),
                Caller::Within(conversations) => format!("tool {}", conversations.join(",")),
            };
            super::repo::run(&jobs(agent), run, &by, trace)
                .await
                .map(Answer::data)
        }
        Verb::RepoCancel { job } => super::repo::cancel(&jobs(agent), job)
            .await
            .map(Answer::data),
        Verb::RepoJobs => super::repo::jobs(&jobs(agent)).await.map(Answer::data),
    };
    match result {
        Ok(answer) => Response::ok(id, answer.data).with_warnings(answer.warnings),
        Err(error) => Response::error(id, error),
    }
}

/// Asks the daemon to stop this agent (after the `shutdown` answer was queued).
pub(crate) fn request_stop(agent: &Agent) {
    tracing::info!(agent.nick = %agent.nick, "shutdown requested over ipc; stopping this agent");
    let request = StopRequest {
        nick: agent.nick.clone(),
        trace: TraceCtx::current(),
    };
    if agent.stop.try_send(request).is_err() {
        tracing::warn!(agent.nick = %agent.nick, "a stop for this agent is already pending");
    }
}

/// A successful answer's payload.
struct Answer {
    data: Option<Value>,
    warnings: Vec<String>,
}

impl Answer {
    fn done() -> Self {
        Self {
            data: None,
            warnings: Vec::new(),
        }
    }

    fn data(data: Value) -> Self {
        Self {
            data: Some(data),
            warnings: Vec::new(),
        }
    }
}

/// `irc_send` (joined check) and the PRIVMSG half of `irc_ask` (no check). Warns about
/// @-mentioned nicks never seen in any buffer, and about text that waits for a reconnect.
async fn send(
    agent: &Agent,
    channel: String,
    message: String,
    require_joined: bool,
    trace: TraceCtx,
) -> Result<Answer, String> {
    let mentioned: Vec<String> = mentioned_nicks(&message)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let report = irc_result(agent, |reply| IrcMessage::Send {
        target: channel,
        text: message,
        notice: false,
        require_joined,
        priority: SendPriority::Normal,
        trace,
        reply,
    })
    .await?;
    let mut warnings = Vec::new();
    if !mentioned.is_empty() {
        let known = irc(agent, |reply| IrcMessage::KnownNicks { reply }).await?;
        warnings.extend(
            mentioned
                .into_iter()
                .filter(|nick| !known.contains(nick))
                .map(|nick| format!("Mentioned nick not found: {nick}")),
        );
    }
    if report.queued {
        warnings.push(
            "not connected to IRC: the message is queued and goes out after the reconnect"
                .to_owned(),
        );
    }
    Ok(Answer {
        data: None,
        warnings,
    })
}

/// `irc_ask`: the question goes out like `irc_send` without the joined check, then an
/// `agent_question` alert.
async fn ask(
    agent: &Agent,
    channel: String,
    message: String,
    trace: TraceCtx,
) -> Result<Answer, String> {
    let text = format!("[QUESTION] [{}] asked in {channel}: {message}", agent.nick);
    let answer = send(agent, channel, message, false, trace.clone()).await?;
    let alert = Alert {
        event: AlertEvent::AgentQuestion,
        nick: agent.nick.clone(),
        message: text,
        trace,
    };
    match agent.webhook.get() {
        Some(webhook) => {
            let _ = webhook.cast(WebhookMessage::Alert(alert));
        }
        None => {
            tracing::info!(agent.nick = %agent.nick, event = alert.event.name(), message = %alert.message, "alert (no webhook child)")
        }
    }
    Ok(answer)
}

async fn thread_op(agent: &Agent, op: ThreadOp, trace: TraceCtx) -> Result<Answer, String> {
    irc_result(agent, |reply| IrcMessage::Thread { op, trace, reply })
        .await
        .map(|_| Answer::done())
}

async fn query(agent: &Agent, query: Query, trace: TraceCtx) -> Result<Vec<ReplyLine>, String> {
    irc_result(agent, |reply| IrcMessage::Query {
        query,
        trace,
        reply,
    })
    .await
}

/// `compact` / `clear` of `conversation` (`None`: every one), once its thread is idle.
async fn command(
    agent: &Agent,
    command: SlashCommand,
    conversation: Option<String>,
    trace: TraceCtx,
) -> Result<Answer, String> {
    let conversation = conversation.map(|c| Conversation::parse(&c)).transpose()?;
    let make = |reply| RunnerMessage::Command {
        command,
        conversation,
        trace,
        reply,
    };
    match agent.runner.call(make, RUNNER_TIMEOUT).await {
        Ok(result) => result.map(|()| Answer::done()),
        Err(_) => Err(RUNNER_DOWN.to_owned()),
    }
}

/// Culture's `status` data, field for field (see the module docs of `socket`).
async fn status(agent: &Agent, query: bool, trace: TraceCtx) -> Value {
    let paused = agent.pause.is_paused();
    let make = |reply| RunnerMessage::Status {
        query: query && !paused,
        trace,
        reply,
    };
    let turn = agent.runner.call(make, RUNNER_TIMEOUT).await.ok();
    let turn = turn.unwrap_or(TurnStatus {
        running: false,
        turn_count: 0,
        last_activation: None,
        description: "nothing".to_owned(),
        codex_circuit_open: false,
    });
    let activity = match (paused, turn.running) {
        (true, _) => "paused",
        (false, true) => "working",
        (false, false) => "idle",
    };
    let description = if paused {
        "paused".to_owned()
    } else {
        turn.description
    };
    json!({
        "running": turn.running,
        "paused": paused,
        "circuit_open": turn.codex_circuit_open || runner_circuit_open(agent).await,
        "turn_count": turn.turn_count,
        "last_activation": turn.last_activation,
        "activity": activity,
        "description": description,
    })
}

/// Whether the agent's supervisor holds the runner's circuit open.
async fn runner_circuit_open(agent: &Agent) -> bool {
    let supervisor: ActorRef<SupervisorMsg> = agent.supervisor.clone().into();
    let report: Option<Report> = supervisor
        .call(
            |reply| {
                SupervisorMsg::Control(ControlMsg::Status {
                    budget: SUPERVISOR_TIMEOUT / 2,
                    reply,
                })
            },
            Some(SUPERVISOR_TIMEOUT),
        )
        .await
        .ok()
        .and_then(|r| match r {
            CallResult::Success(report) => Some(report),
            _ => None,
        });
    report.is_some_and(|r| {
        r.children
            .iter()
            .any(|c| c.name == "runner" && c.circuit == "open")
    })
}

/// Asks the `irc` actor something that cannot fail.
async fn irc<T: Send + 'static>(
    agent: &Agent,
    make: impl FnOnce(RpcReplyPort<T>) -> IrcMessage,
) -> Result<T, String> {
    agent
        .irc
        .call(make, IRC_TIMEOUT)
        .await
        .map_err(|error| match error {
            CallError::NotRunning => IrcError::Unavailable.to_string(),
            CallError::Timeout(t) => {
                format!("the irc actor did not answer within {}s", t.as_secs())
            }
        })
}

/// Asks the `irc` actor something that answers `Result<T, IrcError>`.
async fn irc_result<T: Send + 'static>(
    agent: &Agent,
    make: impl FnOnce(RpcReplyPort<Result<T, IrcError>>) -> IrcMessage,
) -> Result<T, String> {
    irc(agent, make).await?.map_err(|e| e.to_string())
}

/// Buffer entries as Culture reports them (`thread` only for thread reads, `null` when none).
fn read_entries(messages: &[BufferedMessage], with_thread: bool) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let mut entry = json!({ "nick": m.nick, "text": m.text, "timestamp": m.timestamp });
            if with_thread {
                entry["thread"] = json!(m.thread);
            }
            entry
        })
        .collect()
}

/// WHO replies (`352 <me> <channel> <user> <host> <server> <nick> <flags> :<hops> <realname>`)
/// as members.
fn who_members(lines: &[ReplyLine]) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l.command == "352" && l.params.len() >= 8)
        .map(|l| {
            let p = &l.params;
            let realname = p[7].split_once(' ').map_or("", |(_, name)| name);
            json!({
                "nick": p[5], "user": p[2], "host": p[3], "server": p[4],
                "flags": p[6], "channel": p[1], "realname": realname,
            })
        })
        .collect()
}

/// The topic from a TOPIC query's answer: 332's text, or `""` for 331 (no topic).
fn topic_of(lines: &[ReplyLine]) -> String {
    lines
        .iter()
        .find(|l| l.command == "332")
        .and_then(|l| l.params.last().cloned())
        .unwrap_or_default()
}

/// agentirc `THREADS` replies (`THREADS <#channel> <name> :<details>`) as a list.
fn thread_list(lines: &[ReplyLine]) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l.command == "THREADS" && l.params.len() >= 2)
        .map(|l| {
            let rest = &l.params[1..];
            json!({ "name": rest[0], "detail": rest[1..].join(" ") })
        })
        .collect()
}

#[cfg(test)]
#[path = "verbs_tests.rs"]
mod tests;
