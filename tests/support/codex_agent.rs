//! One codexd agent with a real runner on a real agentirc: `codexd run` in a scratch home,
//! its codex either the real binary against the in-repo fake model (offline) or the
//! scripted fake app-server, and `spark-ori`, a raw IRC client in the agent's channels
//! (`#general` and `#ops` unless [`Extra::channels`] says otherwise).

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use crate::codex_peer::{CodexConfig, CodexHome, codex_bin};
use crate::fake_model::{FakeModel, Reply};
use crate::irc_client::{RawClient, command_and_params, source_nick};
use crate::ircd::{Flavor, Ircd};
use crate::support::{Daemon, Scratch, child, eventually};

/// The agent's nick.
pub const NICK: &str = "spark-codex";

/// Which codex the agent runs.
pub enum Codex {
    /// The real binary, offline against a fake model with this script.
    Real(Vec<Reply>),
    /// `tests/support/fake_app_server.py` with these `FAKE_APP_SERVER_MODE` behaviours.
    Fake(&'static str),
}

/// YAML added to the generated config.
#[derive(Default, Clone, Copy)]
pub struct Extra<'a> {
    /// Top-level keys (no indent), e.g. `"telemetry: {enabled: true}\n"`.
    pub top: &'a str,
    /// Keys of its `server:` mapping (2-space indent), e.g. `"  flood_rate: 0\n"`.
    pub server: &'a str,
    /// The agent's entry (4-space indent), e.g. `"    turn_timeout_seconds: 2\n"`.
    pub agent: &'a str,
    /// Its `codex:` mapping (6-space indent), e.g. `"      approvals: accept\n"`.
    pub codex: &'a str,
    /// [`Codex::Fake`] only: the binary started instead of the fake (a wrapper around it);
    /// empty: the fake itself.
    pub fake_binary: &'a str,
    /// The daemon's `restart:` mapping (2-space indent), instead of the harness's (100 ms
    /// base backoff, 3 failures within 60 s open a circuit for 60 s, a hang found in 4 s).
    pub restart: &'a str,
    /// `state_dir`, instead of `<scratch>/state`.
    pub state_dir: &'a str,
    /// Variables added to `codexd run`'s environment, e.g. `HTTP_PROXY`.
    pub env: &'a [(String, String)],
    /// The agent's channels, which `spark-ori` joins too; empty: `#general` and `#ops`.
    pub channels: &'a [&'a str],
}

pub struct CodexAgent {
    /// Before `scratch`: dropped first, while its log still exists.
    pub daemon: Option<Daemon>,
    pub scratch: Scratch,
    pub ircd: Ircd,
    pub ori: RawClient,
    /// The fake model (real codex only).
    pub model: Option<FakeModel>,
    /// CODEX_HOME and HOME of the real codex.
    pub home: Option<CodexHome>,
    /// The agent's directory (the thread's cwd).
    pub workdir: PathBuf,
    /// [`Extra::env`], for restarts.
    env: Vec<(String, String)>,
}

impl CodexAgent {
    /// Starts agentirc, the fake model (if any), codexd with one agent, and waits until
    /// the agent's irc link is up and its codex thread is ready.
    pub async fn start(codex: Codex, extra: Extra<'_>) -> Option<CodexAgent> {
        let agent = Self::launch(codex, extra).await?;
        agent.wait_ready();
        Some(agent)
    }

    /// [`CodexAgent::start`] without waiting for the runner (whose codex may never start).
    pub async fn launch(codex: Codex, extra: Extra<'_>) -> Option<CodexAgent> {
        let ircd = Ircd::start(Flavor::Agentirc, "spark").await?;
        let scratch = Scratch::new();
        let workdir = scratch.path("work");
        std::fs::create_dir_all(&workdir).expect("workdir");
        let (model, home, codex_yaml) = match codex {
            Codex::Real(script) => {
                let bin = codex_bin()?;
                let model = FakeModel::start(script).await;
                let home = CodexHome::new(&model.base_url(), &CodexConfig::default());
                let yaml = format!(
                    "      binary: {}\n      env:\n        CODEX_HOME: {}\n        HOME: {}\n        FAKE_API_KEY: dummy\n        RUST_LOG: warn\n",
                    bin.display(),
                    home.codex_home().display(),
                    home.home().display()
                );
                (Some(model), Some(home), yaml)
            }
            Codex::Fake(modes) => {
                let script = match extra.fake_binary {
                    "" => concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/tests/support/fake_app_server.py"
                    ),
                    wrapper => wrapper,
                };
                let yaml = format!(
                    "      binary: {script}\n      env:\n        FAKE_APP_SERVER_MODE: '{modes}'\n        FAKE_APP_SERVER_LOG: {log}\n        FAKE_APP_SERVER_STATE: {state}\n",
                    log = scratch.path("fake-app-server.log").display(),
                    state = scratch.path("fake-app-server-state").display(),
                );
                (None, None, yaml)
            }
        };
        let channels = match extra.channels {
            [] => &["#general", "#ops"][..],
            channels => channels,
        };
        let channel_list: Vec<String> = channels.iter().map(|c| format!("'{c}'")).collect();
        scratch.write_config(&format!(
            "{top}server:\n  name: spark\n  host: {host}\n  port: {port}\n{server}state_dir: {state_dir}\ncontrol_socket: {{socket}}\nshutdown_grace: 10s\nrestart:\n{restart}agents:\n  - nick: {NICK}\n    channels: [{channel_list}]\n    directory: {work}\n    model: fake-model\n{agent}    codex:\n{codex_yaml}{codex}",
            top = extra.top,
            channel_list = channel_list.join(", "),
            restart = match extra.restart {
                "" => "  backoff_base: 100ms\n  backoff_cap: 500ms\n  max_restarts: 3\n  window: 60s\n  cooldown: 60s\n  health_interval: 2s\n  health_timeout: 2s\n",
                restart => restart,
            },
            server = extra.server,
            state_dir = match extra.state_dir {
                "" => "{home}/state",
                dir => dir,
            },
            agent = extra.agent,
            codex = extra.codex,
            host = ircd.host(),
            port = ircd.port(),
            work = workdir.display(),
        ));
        let daemon = scratch.run_with_env(&[], extra.env);
        eventually("the agent's irc link is up", || {
            let status = scratch.status()?;
            (child(&status, NICK, "irc")?["detail"]["state"] == "connected").then_some(())
        });
        let mut ori =
            RawClient::connect(ircd.host(), ircd.port(), "spark-ori", &["message-tags"]).await;
        for channel in channels {
            ori.join(channel).await;
        }
        Some(CodexAgent {
            scratch,
            daemon: Some(daemon),
            ircd,
            ori,
            model,
            home,
            workdir,
            env: extra.env.to_vec(),
        })
    }

    /// Waits until the irc link is up and the runner has a codex thread and is idle.
    pub fn wait_ready(&self) {
        eventually("the agent's irc link is up and its runner idle", || {
            let status = self.scratch.status()?;
            let irc = child(&status, NICK, "irc")?;
            let runner = child(&status, NICK, "runner")?;
            (irc["detail"]["state"] == "connected" && runner["detail"]["phase"] == "idle")
                .then_some(())
        });
    }

    /// The channels the agent's `irc` actor is in, once it is connected.
    pub fn irc_channels(&self) -> Option<Vec<String>> {
        let status = self.scratch.status()?;
        let irc = child(&status, NICK, "irc")?;
        (irc["detail"]["state"] == "connected").then(|| {
            irc["detail"]["channels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
    }

    /// The runner's status detail.
    pub fn runner(&self) -> Option<serde_json::Value> {
        let status = self.scratch.status()?;
        child(&status, NICK, "runner").cloned()
    }

    /// The `codex` service's first process: its supervision (state, restarts, circuit,
    /// last_error) with its detail (pid, attached, requests, …) merged in.
    #[allow(dead_code)]
    pub fn codex_process(&self) -> Option<serde_json::Value> {
        let status = self.scratch.status()?;
        let codex = status["services"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "codex")?;
        let mut process = codex["children"].as_array()?.first()?.clone();
        let detail = process["detail"].take();
        if let (Some(process), Some(detail)) = (process.as_object_mut(), detail.as_object()) {
            process.extend(detail.clone());
        }
        Some(process)
    }

    /// `spark-ori` says `text` to `target` (a channel or the agent).
    pub async fn say(&mut self, target: &str, text: &str) {
        self.ori.send(&format!("PRIVMSG {target} :{text}")).await;
    }

    /// The next PRIVMSG from the agent to `target` whose text contains `needle`: its text.
    pub async fn reply(&mut self, target: &str, needle: &str) -> String {
        let line = self.reply_line(target, needle).await;
        let (_, params) = command_and_params(&line);
        params[1].clone()
    }

    /// Like [`CodexAgent::reply`], the whole line (tags included).
    pub async fn reply_line(&mut self, target: &str, needle: &str) -> String {
        let what = format!("{NICK} says {needle:?} to {target}");
        self.ori
            .expect(&what, |line| {
                let (command, params) = command_and_params(line);
                command == "PRIVMSG"
                    && source_nick(line).as_deref() == Some(NICK)
                    && params.first().map(String::as_str) == Some(target)
                    && params.get(1).is_some_and(|text| text.contains(needle))
            })
            .await
    }

    /// `codexd fault <nick> runner <kind>`.
    pub fn fault(&self, kind: &str) {
        self.fault_child("runner", kind);
    }

    /// `codexd fault <nick> <child> <kind>`.
    pub fn fault_child(&self, child: &str, kind: &str) {
        let out = self.scratch.cli(&[
            "fault",
            "--socket",
            self.scratch.socket().to_str().expect("utf-8"),
            NICK,
            child,
            kind,
        ]);
        assert!(out.status.success(), "fault {child} {kind}: {out:?}");
    }

    /// Stops the daemon with SIGTERM and waits for it to exit.
    pub fn stop_daemon(&mut self) {
        let mut daemon = self.daemon.take().expect("running");
        daemon.signal("TERM");
        let status = daemon.wait();
        assert!(
            status.success(),
            "codexd exit: {status:?}\n{}",
            daemon.log_text()
        );
    }

    /// Starts the daemon again on the same config and state.
    pub fn restart_daemon(&mut self) {
        assert!(self.daemon.is_none(), "stop it first");
        self.daemon = Some(self.scratch.run_with_env(&[], &self.env));
        self.wait_ready();
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map(Daemon::log_text)
            .unwrap_or_default()
    }

    /// The fake app-server's event log, one JSON value per line.
    pub fn fake_log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.scratch.path("fake-app-server.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl CodexAgent {
    /// One Culture IPC request on the agent's socket (`<XDG_RUNTIME_DIR>/culture-<nick>.sock`);
    /// the answer, or `None` when the socket does not answer.
    pub fn ipc(&self, request: serde_json::Value) -> Option<serde_json::Value> {
        use std::io::{BufRead, BufReader, Write};
        let path = self.scratch.path(&format!("run/culture-{NICK}.sock"));
        let stream = std::os::unix::net::UnixStream::connect(path).ok()?;
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .ok()?;
        let mut line = serde_json::to_vec(&request).ok()?;
        line.push(b'\n');
        (&stream).write_all(&line).ok()?;
        let mut answer = String::new();
        BufReader::new(&stream).read_line(&mut answer).ok()?;
        serde_json::from_str(&answer).ok()
    }
}
