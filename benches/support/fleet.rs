//! N agents in one `codexd run`, each with the real codex against one shared fake model
//! (which answers "ok"), on one agentirc: the daemon whose memory `benches/runner.rs`
//! reads. The config has the shape of `tests/support/codex_agent.rs`, one entry per agent
//! (`spark-a0`, `spark-a1`, …, all in `#general`), each with its own CODEX_HOME and HOME so
//! no two codex processes share state.

use std::path::{Path, PathBuf};

use crate::codex_peer::{CodexConfig, CodexHome};
use crate::fake_model::FakeModel;
use crate::irc_client::{RawClient, command_and_params, source_nick};
use crate::ircd::{Flavor, Ircd};
use crate::support::{Daemon, Scratch, child, eventually};

/// Every agent's (only) channel.
pub(crate) const CHANNEL: &str = "#general";

/// The running daemon and everything around it; all stopped on drop.
pub(crate) struct Fleet {
    pub(crate) scratch: Scratch,
    pub(crate) daemon: Daemon,
    pub(crate) nicks: Vec<String>,
    pub(crate) ori: RawClient,
    _homes: Vec<CodexHome>,
    _model: FakeModel,
    _ircd: Ircd,
}

impl Fleet {
    /// Starts agentirc, the fake model and `codexd run` with `count` agents running
    /// `codex`, and waits until every agent's irc link is up and its runner idle on a
    /// codex thread; then `spark-ori` joins `#general`. None when agentirc is missing.
    pub(crate) async fn start(codex: &Path, count: usize) -> Option<Fleet> {
        Self::start_with(codex, count, None).await
    }

    /// Like [`Fleet::start`]; with `per_process: Some(k)` every agent uses one CODEX_HOME
    /// and HOME (one codex identity) and `codex.agents_per_process` is `k`.
    pub(crate) async fn start_with(
        codex: &Path,
        count: usize,
        per_process: Option<usize>,
    ) -> Option<Fleet> {
        let ircd = Ircd::start(Flavor::Agentirc, "spark").await?;
        let model = FakeModel::start(Vec::new()).await;
        let scratch = Scratch::new();
        let nicks: Vec<String> = (0..count).map(|i| format!("spark-a{i}")).collect();
        let mut homes = Vec::new();
        let mut agents = String::new();
        let mut top = String::new();
        for nick in &nicks {
            let work = scratch.path(&format!("work/{nick}"));
            std::fs::create_dir_all(&work).expect("workdir");
            match per_process {
                None => {
                    let home = CodexHome::new(&model.base_url(), &CodexConfig::default());
                    agents.push_str(&agent_yaml(nick, &work, codex, &home));
                    homes.push(home);
                }
                Some(_) => agents.push_str(&format!(
                    "  - nick: {nick}\n    channels: ['{CHANNEL}']\n    directory: {}\n    model: fake-model\n",
                    work.display()
                )),
            }
        }
        if let Some(k) = per_process {
            let home = CodexHome::new(&model.base_url(), &CodexConfig::default());
            top = format!(
                "codex:\n  binary: {codex}\n  agents_per_process: {k}\n  env:\n    CODEX_HOME: {}\n    HOME: {}\n    FAKE_API_KEY: dummy\n    RUST_LOG: warn\n",
                home.codex_home().display(),
                home.home().display(),
                codex = codex.display(),
            );
            homes.push(home);
        }
        scratch.write_config(&format!(
            "server:\n  name: spark\n  host: {host}\n  port: {port}\nstate_dir: {{home}}/state\n\
             control_socket: {{socket}}\nshutdown_grace: 10s\n{top}agents:\n{agents}",
            host = ircd.host(),
            port = ircd.port(),
        ));
        let daemon = scratch.run(&[]);
        let fleet_ready = |status: &serde_json::Value| {
            nicks.iter().all(|nick| {
                let irc = child(status, nick, "irc");
                let runner = child(status, nick, "runner");
                irc.is_some_and(|irc| irc["detail"]["state"] == "connected")
                    && runner.is_some_and(|runner| runner["detail"]["phase"] == "idle")
            })
        };
        eventually("every agent's irc link up and its runner idle", || {
            fleet_ready(&scratch.status()?).then_some(())
        });
        let mut ori =
            RawClient::connect(ircd.host(), ircd.port(), "spark-ori", &["message-tags"]).await;
        ori.join(CHANNEL).await;
        Some(Fleet {
            scratch,
            daemon,
            nicks,
            ori,
            _homes: homes,
            _model: model,
            _ircd: ircd,
        })
    }

    /// Mentions `nick` in `#general` and returns the text of its next PRIVMSG there.
    pub(crate) async fn ask(&mut self, nick: &str, text: &str) -> String {
        self.ori
            .send(&format!("PRIVMSG {CHANNEL} :@{nick} {text}"))
            .await;
        let line = self
            .ori
            .expect(&format!("{nick} answers in {CHANNEL}"), |line| {
                let (command, params) = command_and_params(line);
                command == "PRIVMSG"
                    && source_nick(line).as_deref() == Some(nick)
                    && params.first().map(String::as_str) == Some(CHANNEL)
            })
            .await;
        let (_, mut params) = command_and_params(&line);
        params.pop().unwrap_or_default()
    }

    /// Waits until every runner is idle with `turns` turns ended and nothing pending; the
    /// runner status of each agent, in `nicks` order.
    pub(crate) fn wait_settled(&self, turns: u64) -> Vec<serde_json::Value> {
        eventually("every runner idle with its turns ended", || {
            let status = self.scratch.status()?;
            let runners: Vec<serde_json::Value> = self
                .nicks
                .iter()
                .map(|nick| child(&status, nick, "runner").cloned())
                .collect::<Option<_>>()?;
            let settled = runners.iter().all(|runner| {
                let detail = &runner["detail"];
                detail["phase"] == "idle"
                    && detail["pending"] == 0
                    && detail["turns_completed"] == turns
            });
            settled.then_some(runners)
        })
    }

    /// Stops the daemon with SIGTERM; its exit status.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        self.daemon.signal("TERM");
        self.daemon.wait()
    }
}

/// One agent's entry: the shape of `codex_agent.rs` (4-space indent under `agents:`).
fn agent_yaml(nick: &str, work: &Path, codex: &Path, home: &CodexHome) -> String {
    let path = |p: PathBuf| p.display().to_string();
    format!(
        "  - nick: {nick}\n    channels: ['{CHANNEL}']\n    directory: {work}\n    \
         model: fake-model\n    codex:\n      binary: {codex}\n      env:\n        \
         CODEX_HOME: {codex_home}\n        HOME: {home}\n        FAKE_API_KEY: dummy\n        \
         RUST_LOG: warn\n",
        work = work.display(),
        codex = codex.display(),
        codex_home = path(home.codex_home()),
        home = path(home.home()),
    )
}
