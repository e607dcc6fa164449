//! One control request carried out (all but `watch`, which streams: [`super::watch`]).
//!
//! | request                   | carried out by                                               |
//! |---------------------------|--------------------------------------------------------------|
//! | `status`                  | the Host (with `nick`: [`only_agent`] of its answer)         |
//! | `reset`, `fault`          | the Host, along the path `<nick>/<child>`                    |
//! | `pause`, `resume`, `say`, `whisper`, `repo_cancel` | the agent's `socket` actor, found in the [`SocketDirectory`](codexd_actors::socket::SocketDirectory), once the Host knows the nick |
//!
//! Refusals are typed ([`Refusal`]): the CLI maps their [`ErrorCode`] to its exit code.

use std::time::Duration;

use codexd_actors::child::{ChildStatus, ControlError, FaultKind};
use codexd_actors::host::{HostError, HostStatus};
use codexd_actors::socket::{OperatorError, OperatorRequest, WhisperKind};
use codexd_actors::trace::TraceCtx;
use serde_json::{Value, json};
use tracing::Instrument;

use super::Peers;
use super::{ErrorCode, Request, Response};

/// How long `fault <nick> <child> hang` hangs when no duration is given.
const DEFAULT_HANG: Duration = Duration::from_secs(30);

/// Why a request was not carried out: its code and a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    code: ErrorCode,
    message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The error answer to request `id`.
    pub(super) fn into_response(self, id: Value) -> Response {
        Response::failure(id, self.code, self.message)
    }
}

impl From<HostError> for Refusal {
    fn from(error: HostError) -> Self {
        let code = match &error {
            HostError::Refused(ControlError::NoSuchChild { .. }) => ErrorCode::NoSuchChild,
            HostError::Refused(ControlError::NotRunning { .. }) => ErrorCode::NotRunning,
            HostError::Refused(
                ControlError::UnknownFault(_)
                | ControlError::HangOutOfRange(_)
                | ControlError::UnsupportedFault { .. },
            ) => ErrorCode::UnknownFault,
            HostError::Refused(ControlError::Unreachable(_)) | HostError::Unresponsive(_) => {
                ErrorCode::Unresponsive
            }
        };
        Self::new(code, error.to_string())
    }
}

impl From<OperatorError> for Refusal {
    fn from(error: OperatorError) -> Self {
        let code = match &error {
            OperatorError::UnknownAgent { .. } => ErrorCode::NoSuchChild,
            OperatorError::NotRunning { .. } => ErrorCode::NotRunning,
            OperatorError::UnknownWhisperKind(_) => ErrorCode::BadRequest,
            OperatorError::Refused(_) => ErrorCode::Refused,
            OperatorError::Timeout { .. } => ErrorCode::Unresponsive,
        };
        Self::new(code, error.to_string())
    }
}

/// Parses one request line into its `id` and request, or the `id` (null when there is
/// none) and why not.
pub(super) fn parse(line: &[u8]) -> Result<(Value, Request), (Value, Refusal)> {
    let value: Value = serde_json::from_slice(line).map_err(|error| {
        let refusal = Refusal::new(ErrorCode::BadRequest, format!("invalid JSON: {error}"));
        (Value::Null, refusal)
    })?;
    let id = value.get("id").cloned().unwrap_or_default();
    let mut fields = value;
    if let Some(object) = fields.as_object_mut() {
        object.remove("id");
    }
    match serde_json::from_value(fields) {
        Ok(request) => Ok((id, request)),
        Err(error) => Err((
            id,
            Refusal::new(
                ErrorCode::BadRequest,
                format!(
                    "bad request: {error} (expected cmd status, reset, fault, pause, resume, say, whisper, watch or repo_cancel)"
                ),
            ),
        )),
    }
}

/// Carries out `request` (not `watch`) in its `control.request` span and answers it.
pub(super) async fn answer(id: Value, request: Request, peers: &Peers) -> Response {
    let span = tracing::info_span!(
        "control.request",
        cmd = request.name(),
        agent.nick = request.nick().unwrap_or_default(),
    );
    match carry_out(request, peers).instrument(span).await {
        Ok(data) => Response::success(id, data),
        Err(refusal) => refusal.into_response(id),
    }
}

async fn carry_out(request: Request, peers: &Peers) -> Result<Value, Refusal> {
    let host = &peers.host;
    match request {
        Request::Status { nick: None } => Ok(to_json(&host.status().await?)),
        Request::Status { nick: Some(nick) } => {
            let status = known_agent(peers, &nick).await?;
            Ok(to_json(&only_agent(status, &nick).unwrap_or_else(empty)))
        }
        Request::Reset { nick, child } => {
            host.reset(&nick, child.as_deref()).await?;
            Ok(Value::Null)
        }
        Request::Fault { nick, child, kind } => {
            let kind = FaultKind::parse(&kind, DEFAULT_HANG).map_err(HostError::from)?;
            tracing::warn!(agent.nick = %nick, child = %child, fault = %kind, "injecting fault on operator request");
            host.fault(&nick, &child, kind).await?;
            Ok(Value::Null)
        }
        Request::Pause { nick } => operate(peers, &nick, OperatorRequest::Pause).await,
        Request::Resume { nick } => operate(peers, &nick, OperatorRequest::Resume).await,
        Request::Say { nick, target, text } => {
            operate(peers, &nick, OperatorRequest::Say { target, text }).await
        }
        Request::Whisper { nick, kind, text } => {
            let kind = WhisperKind::parse(&kind)?;
            if text.trim().is_empty() {
                return Err(Refusal::new(ErrorCode::BadRequest, "the whisper is empty"));
            }
            operate(peers, &nick, OperatorRequest::Whisper { kind, text }).await
        }
        Request::RepoCancel { nick, job } => {
            operate(peers, &nick, OperatorRequest::RepoCancel { job }).await
        }
        Request::Watch { .. } => Err(Refusal::new(
            ErrorCode::BadRequest,
            "watch is answered with a stream",
        )),
    }
}

/// An operator request to agent `nick`: `null`, or `{"warnings":[…]}` and `{"result":…}`
/// when there is something to say.
async fn operate(peers: &Peers, nick: &str, request: OperatorRequest) -> Result<Value, Refusal> {
    known_agent(peers, nick).await?;
    let name = request.name();
    let answer = peers
        .sockets
        .ask(nick, request, TraceCtx::current())
        .await?;
    tracing::info!(agent.nick = %nick, request = name, "operator request carried out");
    let mut data = serde_json::Map::new();
    if !answer.warnings.is_empty() {
        data.insert("warnings".into(), json!(answer.warnings));
    }
    if let Some(note) = answer.note {
        data.insert("result".into(), json!(note));
    }
    Ok(match data.is_empty() {
        true => Value::Null,
        false => Value::Object(data),
    })
}

/// The Host's status when it hosts agent `nick`; otherwise a refusal naming the agents
/// there are.
pub(super) async fn known_agent(peers: &Peers, nick: &str) -> Result<HostStatus, Refusal> {
    let status = peers.host.status().await?;
    if status.agents.iter().any(|a| a.nick == nick) {
        return Ok(status);
    }
    let known: Vec<&str> = status.agents.iter().map(|a| a.nick.as_str()).collect();
    let known = match known.is_empty() {
        true => "none".to_owned(),
        false => known.join(", "),
    };
    Err(OperatorError::UnknownAgent {
        nick: nick.to_owned(),
        known,
    }
    .into())
}

/// One agent's part of the tree: the agent, and the `codex` service with only the process
/// its runner is on (other services left out).
///
/// | tree holds                            | result                                         |
/// |---------------------------------------|------------------------------------------------|
/// | agent `nick`, runner on `process-2`   | that agent; `codex` with `process-2` only      |
/// | agent `nick`, runner a test child     | that agent; no service                         |
/// | no agent `nick`                       | `None`                                         |
pub(super) fn only_agent(status: HostStatus, nick: &str) -> Option<HostStatus> {
    let agent = status.agents.into_iter().find(|a| a.nick == nick)?;
    let process = agent
        .supervision
        .children
        .iter()
        .find(|c| c.name == "runner")
        .and_then(|runner| runner.detail.as_ref()?.get("codex_process")?.as_str())
        .map(str::to_owned);
    let services = status
        .services
        .into_iter()
        .filter(|s| s.name == "codex")
        .filter_map(|codex| {
            let process = process.as_deref()?;
            let children: Vec<ChildStatus> = codex
                .children
                .iter()
                .filter(|c| c.name == process)
                .cloned()
                .collect();
            Some(ChildStatus { children, ..codex })
        })
        .collect();
    Some(HostStatus {
        agents: vec![agent],
        services,
    })
}

fn empty() -> HostStatus {
    HostStatus {
        agents: Vec::new(),
        services: Vec::new(),
    }
}

fn to_json(status: &HostStatus) -> Value {
    serde_json::to_value(status).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use codexd_actors::child::ChildState;
    use codexd_actors::host::AgentStatus;

    use super::*;

    fn child(name: &str, detail: Option<Value>, children: Vec<ChildStatus>) -> ChildStatus {
        ChildStatus {
            name: name.to_owned(),
            service: false,
            state: ChildState::Running,
            restarts: 0,
            circuit: "closed".to_owned(),
            last_error: None,
            actor_id: None,
            uptime_s: Some(1.0),
            detail,
            children,
        }
    }

    fn agent(nick: &str, process: Option<&str>) -> AgentStatus {
        let runner = child(
            "runner",
            process.map(|p| json!({ "codex_process": p })),
            Vec::new(),
        );
        AgentStatus {
            nick: nick.to_owned(),
            supervision: child(nick, None, vec![runner, child("irc", None, Vec::new())]),
        }
    }

    fn tree() -> HostStatus {
        let codex = child(
            "codex",
            None,
            vec![
                child("process-1", None, Vec::new()),
                child("process-2", None, Vec::new()),
            ],
        );
        HostStatus {
            agents: vec![agent("spark-a", Some("process-2")), agent("spark-b", None)],
            services: vec![child("control", None, Vec::new()), codex],
        }
    }

    #[test]
    fn one_agent_comes_with_its_codex_process_only() {
        let only = only_agent(tree(), "spark-a").expect("hosted");
        assert_eq!(only.agents.len(), 1);
        assert_eq!(only.agents[0].nick, "spark-a");
        let services: Vec<(&str, Vec<&str>)> = only
            .services
            .iter()
            .map(|s| {
                let children = s.children.iter().map(|c| c.name.as_str()).collect();
                (s.name.as_str(), children)
            })
            .collect();
        assert_eq!(services, [("codex", vec!["process-2"])]);

        let test_runner = only_agent(tree(), "spark-b").expect("hosted");
        assert!(test_runner.services.is_empty());
        assert!(only_agent(tree(), "spark-z").is_none());
    }

    #[test]
    fn request_lines_parse_with_their_id_and_bad_ones_say_what_is_expected() {
        let (id, request) =
            parse(br##"{"id":7,"cmd":"say","nick":"a","target":"#dev","text":"hi"}"##)
                .expect("valid");
        assert_eq!(id, json!(7));
        assert_eq!(
            request,
            Request::Say {
                nick: "a".into(),
                target: "#dev".into(),
                text: "hi".into()
            }
        );
        let (_, status) = parse(br#"{"cmd":"status"}"#).expect("valid");
        assert_eq!(status, Request::Status { nick: None });
        let (id, refused) =
            parse(br#"{"id":"x","cmd":"whisper","nick":"a"}"#).expect_err("fields missing");
        assert_eq!(id, json!("x"));
        assert_eq!(refused.code, ErrorCode::BadRequest);
        let error = refused.message;
        assert!(error.contains("missing field"), "{error}");
        assert!(error.contains("whisper, watch or repo_cancel"), "{error}");
    }

    #[test]
    fn operator_errors_map_to_codes_the_cli_turns_into_exit_codes() {
        let table = [
            (
                OperatorError::UnknownAgent {
                    nick: "x".into(),
                    known: "a".into(),
                },
                ErrorCode::NoSuchChild,
            ),
            (
                OperatorError::NotRunning { nick: "a".into() },
                ErrorCode::NotRunning,
            ),
            (
                OperatorError::UnknownWhisperKind("HINT".into()),
                ErrorCode::BadRequest,
            ),
            (
                OperatorError::Refused("not joined".into()),
                ErrorCode::Refused,
            ),
            (
                OperatorError::Timeout {
                    nick: "a".into(),
                    after: Duration::from_secs(1),
                },
                ErrorCode::Unresponsive,
            ),
        ];
        for (error, code) in table {
            assert_eq!(Refusal::from(error.clone()).code, code, "{error}");
        }
    }
}
