//! Moving an agent between hosts (`codexd agent export | import`): agent `spark-a` on
//! server `spark` has a conversation; it is exported from its stopped daemon and imported
//! as `other-a` into a second codexd (its own state dir and CODEX_HOME) against a second
//! agentirc named `other`; its next mention is answered on the same codex thread, the
//! earlier conversation in the model's request. Real agentirc, real codex against the
//! fake model.

#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use std::path::{Path, PathBuf};

use codex_peer::{CodexConfig, CodexHome, codex_bin};
use fake_model::{FakeModel, Reply, user_texts};
use irc_client::{RawClient, command_and_params, source_nick};
use ircd::{Flavor, Ircd};
use support::{Daemon, Scratch, child, eventually};

/// One host: agentirc, codexd's scratch home and config, its CODEX_HOME.
struct Host {
    ircd: Ircd,
    scratch: Scratch,
    codex: CodexHome,
    nick: String,
}

impl Host {
    async fn start(server: &str, nick: &str, model: &FakeModel, bin: &Path) -> Option<Host> {
        let ircd = Ircd::start(Flavor::Agentirc, server).await?;
        let scratch = Scratch::new();
        let work = scratch.path("work");
        std::fs::create_dir_all(&work).expect("workdir");
        let codex = CodexHome::new(&model.base_url(), &CodexConfig::default());
        scratch.write_config(&format!(
            "server:\n  name: {server}\n  host: {host}\n  port: {port}\nstate_dir: {{home}}/state\ncontrol_socket: {{socket}}\nshutdown_grace: 10s\nagents:\n  - nick: {nick}\n    channels: ['#general']\n    directory: {work}\n    model: fake-model\n    codex:\n      binary: {bin}\n      env:\n        CODEX_HOME: {codex_home}\n        HOME: {home}\n        FAKE_API_KEY: dummy\n        RUST_LOG: warn\n",
            host = ircd.host(),
            port = ircd.port(),
            work = work.display(),
            bin = bin.display(),
            codex_home = codex.codex_home().display(),
            home = codex.home().display(),
        ));
        Some(Host {
            ircd,
            scratch,
            codex,
            nick: nick.to_owned(),
        })
    }

    /// `codexd run`, once the agent is connected and its runner idle.
    fn run(&self) -> Daemon {
        let daemon = self.scratch.run(&[]);
        eventually("the agent's irc link is up and its runner idle", || {
            let status = self.scratch.status()?;
            let irc = child(&status, &self.nick, "irc")?;
            let runner = child(&status, &self.nick, "runner")?;
            (irc["detail"]["state"] == "connected" && runner["detail"]["phase"] == "idle")
                .then_some(())
        });
        daemon
    }

    /// `codexd agent <args…> --config <this host's>`.
    fn agent(&self, args: &[&str]) -> std::process::Output {
        let config = self.scratch.config();
        let mut all = vec!["agent"];
        all.extend_from_slice(args);
        all.extend(["--config", config.to_str().expect("utf-8")]);
        self.scratch.cli(&all)
    }

    /// A client `<server>-ori` in `#general`.
    async fn ori(&self) -> RawClient {
        let nick = format!("{}ori", self.ircd.nick_prefix());
        let mut ori = RawClient::connect(self.ircd.host(), self.ircd.port(), &nick, &[]).await;
        ori.join("#general").await;
        ori
    }

    fn threads(&self) -> serde_json::Value {
        let path = self
            .scratch
            .path(&format!("state/{}/threads.json", self.nick));
        let text = std::fs::read_to_string(&path).expect("threads.json");
        serde_json::from_str(&text).expect("threads.json is JSON")
    }
}

/// Waits for the agent's reply in `#general` containing `needle`.
async fn reply(ori: &mut RawClient, nick: &str, needle: &str) -> String {
    ori.expect(&format!("{nick} says {needle:?}"), |line| {
        let (command, params) = command_and_params(line);
        command == "PRIVMSG"
            && source_nick(line).as_deref() == Some(nick)
            && params.get(1).is_some_and(|text| text.contains(needle))
    })
    .await
}

fn stop(mut daemon: Daemon) {
    daemon.signal("TERM");
    let status = daemon.wait();
    assert!(
        status.success(),
        "codexd exit: {status:?}\n{}",
        daemon.log_text()
    );
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_exported_on_one_host_and_imported_on_another_keeps_its_conversation() {
    let Some(bin) = codex_bin() else { return };
    let model = FakeModel::start(Vec::new()).await;
    model.when("the code word is", Reply::text("noted: pelican"));
    model.when("what was the code word", Reply::text("it was pelican"));
    let Some(spark) = Host::start("spark", "spark-a", &model, &bin).await else {
        return;
    };
    let Some(other) = Host::start("other", "other-a", &model, &bin).await else {
        return;
    };

    let daemon = spark.run();
    let mut ori = spark.ori().await;
    ori.send("PRIVMSG #general :@spark-a the code word is pelican")
        .await;
    reply(&mut ori, "spark-a", "noted: pelican").await;
    let thread = spark.threads()["threads"]["#general"]["thread"].clone();
    assert!(thread.is_string(), "#general has a thread: {thread}");

    let bundle: PathBuf = spark.scratch.path("bundle");
    let bundle_arg = bundle.to_str().expect("utf-8");
    let running = spark.agent(&["export", "spark-a", "--out", bundle_arg]);
    assert_eq!(running.status.code(), Some(1), "{}", text(&running));
    assert!(
        text(&running).contains("'spark-a' is running"),
        "{}",
        text(&running)
    );
    assert!(!bundle.exists(), "nothing written while it runs");
    stop(daemon);

    let export = spark.agent(&["export", "spark-a", "--out", bundle_arg]);
    assert!(export.status.success(), "{}", text(&export));
    assert!(text(&export).contains("1 rollout(s)"), "{}", text(&export));
    let import = other.agent(&["import", bundle_arg, "--as", "other-a"]);
    assert!(import.status.success(), "{}", text(&import));
    assert!(
        text(&import).contains("imported spark-a (server spark) as other-a (server other)"),
        "{}",
        text(&import)
    );
    let imported = std::fs::read_dir(other.codex.codex_home().join("sessions"))
        .expect("the rollouts are in the new CODEX_HOME");
    assert_eq!(imported.count(), 1);

    let _daemon = other.run();
    let mut ori = other.ori().await;
    ori.send("PRIVMSG #general :@other-a what was the code word?")
        .await;
    reply(&mut ori, "other-a", "it was pelican").await;

    let asked = model.requests_with("what was the code word");
    assert_eq!(asked.len(), 1, "one request");
    let texts = user_texts(&asked[0]);
    assert!(
        texts.iter().any(|t| t.contains("the code word is pelican")),
        "the conversation from the other host is in the request: {texts:?}"
    );
    assert_eq!(
        other.threads()["threads"]["#general"]["thread"],
        thread,
        "the same codex thread carries on"
    );
}
