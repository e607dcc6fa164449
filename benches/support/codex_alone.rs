//! The codex floor: a `codex app-server` of its own (`tests/support/codex_peer.rs`'s
//! `AppServer`), with its own fake model, on one thread started with what codexd sends
//! (`codexd_actors::runner::session`), its turns timed without codexd or IRC.

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use codexd_actors::runner::{prompt, session};
use serde_json::json;

use crate::codex_peer::{AppServer, CodexConfig, CodexHome};
use crate::fake_model::{FakeModel, Reply};

/// codex, initialized, with a thread; killed on drop.
pub(crate) struct CodexAlone {
    server: AppServer,
    thread_id: String,
    _model: FakeModel,
    _home: CodexHome,
    _workdir: tempfile::TempDir,
}

/// One turn as timed from `turn/start` written.
pub(crate) struct TurnTimes {
    /// Until the agent message's `item/completed` (when codexd relays the reply).
    pub(crate) to_message: Duration,
    /// Until `turn/completed` (when codexd may start the next turn).
    pub(crate) to_completed: Duration,
    /// The agent message's text.
    pub(crate) text: String,
    /// The turn's status in `turn/completed`.
    pub(crate) status: String,
}

impl CodexAlone {
    /// Starts a fake model with `script` and codex against it, then `initialize`,
    /// `initialized` and `thread/start` with codexd's thread config for agent `nick`: model
    /// `fake-model`, approvals `never`, codex's default sandbox, Culture's system prompt.
    pub(crate) async fn start(
        codex: &Path,
        script: Vec<Reply>,
        nick: &str,
    ) -> Result<CodexAlone, String> {
        let model = FakeModel::start(script).await;
        let home = CodexHome::new(&model.base_url(), &CodexConfig::default());
        let workdir = tempfile::tempdir().map_err(|error| format!("workdir: {error}"))?;
        let mut server = AppServer::spawn(codex, &home);
        server
            .request("initialize", session::initialize())
            .await
            .map_err(|error| format!("initialize: {error}"))?;
        server.send(&json!({"method": "initialized"})).await;
        let thread = session::ThreadConfig {
            cwd: workdir.path().to_owned(),
            model: "fake-model".to_owned(),
            approval_policy: "never".to_owned(),
            sandbox: None,
            instructions: prompt::system_prompt(nick, workdir.path(), &[]),
            shell_env: [("CULTURE_NICK".to_owned(), nick.to_owned())].into(),
        };
        let started = server
            .request("thread/start", thread.start())
            .await
            .map_err(|error| format!("thread/start: {error}"))?;
        let thread_id = session::thread_id(&started).ok_or("thread/start: no thread id")?;
        Ok(CodexAlone {
            server,
            thread_id,
            _model: model,
            _home: home,
            _workdir: workdir,
        })
    }

    /// One turn with `text` as its only input, to `turn/completed`.
    pub(crate) async fn turn(&mut self, text: &str) -> Result<TurnTimes, String> {
        let sent = Instant::now();
        let turn = self
            .server
            .request("turn/start", session::turn_start(&self.thread_id, text))
            .await
            .map_err(|error| format!("turn/start: {error}"))?;
        let turn_id = turn["turn"]["id"].clone();
        let message = self
            .server
            .wait_for("the agent message", |m| {
                m["method"] == "item/completed"
                    && m["params"]["turnId"] == turn_id
                    && m["params"]["item"]["type"] == "agentMessage"
            })
            .await;
        let to_message = sent.elapsed();
        let completed = self
            .server
            .wait_for("turn/completed", |m| {
                m["method"] == "turn/completed" && m["params"]["turn"]["id"] == turn_id
            })
            .await;
        let to_completed = sent.elapsed();
        let field = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
        Ok(TurnTimes {
            to_message,
            to_completed,
            text: field(&message["params"]["item"]["text"]),
            status: field(&completed["params"]["turn"]["status"]),
        })
    }

    /// Closes codex's stdin (its clean shutdown) and waits for the exit.
    pub(crate) async fn close(self) -> ExitStatus {
        self.server.close().await
    }
}
