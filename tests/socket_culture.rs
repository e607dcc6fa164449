//! Culture's own clients against codexd's agent socket on a real agentirc: the skill client
//! the codex agent runs (`python -m cultureagent.clients.codex.skill.irc_client`), its
//! library for the verbs the CLI has no subcommand for, and `culture channel`. What they
//! print is what they print against Culture's Python daemon (reference §9, §10), except
//! where codexd fixes a documented defect (`irc_who` and `irc_threads` return what the
//! server answered).
//!
//! Peers: agentirc and Culture's clients from `scripts/install-peers`; a missing peer is a
//! loud SKIP (a failure under `CI=true`).

#[path = "support/culture.rs"]
mod culture;
#[path = "support/fake_ircd.rs"]
mod fake_ircd;
#[path = "support/ipc_agent.rs"]
mod ipc_agent;
#[path = "support/irc_agent.rs"]
mod irc_agent;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use std::path::PathBuf;

use culture::{Culture, Output};
use irc_client::RawClient;
use ircd::{Flavor, Ircd};
use serde_json::{Value, json};
use support::{Daemon, Scratch, child, eventually};

const NICK: &str = "spark-codex";

/// codexd with one agent (`runner` still a test child: compact/clear get Culture's
/// "Agent runner is not running") on `ircd`, its IRC link up.
struct Setup {
    scratch: Scratch,
    _daemon: Daemon,
    culture: Culture,
    ori: RawClient,
    _ircd: Ircd,
}

impl Setup {
    async fn start() -> Option<Setup> {
        let culture = Culture::find_or_skip()?;
        let ircd = Ircd::start(Flavor::Agentirc, "spark").await?;
        culture.irc_server("spark", ircd.host(), ircd.port());
        let scratch = Scratch::new();
        scratch.write_config(&format!(
            "server:\n  name: spark\n  host: {}\n  port: {}\nstate_dir: {{home}}/state\nagents:\n  - nick: {NICK}\n    channels: ['#general']\n    test_children: [runner]\n",
            ircd.host(),
            ircd.port()
        ));
        let daemon = scratch.run(&[]);
        eventually("the agent's irc link is up", || {
            let status = scratch.status()?;
            (child(&status, NICK, "irc")?["detail"]["state"] == "connected").then_some(())
        });
        let mut ori = RawClient::connect(ircd.host(), ircd.port(), "spark-ori", &[]).await;
        ori.join("#general").await;
        Some(Setup {
            scratch,
            _daemon: daemon,
            culture,
            ori,
            _ircd: ircd,
        })
    }

    fn run_dir(&self) -> PathBuf {
        self.scratch.path("run")
    }

    fn skill(&self, args: &[&str]) -> Output {
        self.culture.skill(&self.run_dir(), NICK, args)
    }

    fn library(&self, verb: &str, fields: Value) -> Output {
        self.culture.library(&self.run_dir(), NICK, verb, &fields)
    }

    fn channel(&self, args: &[&str]) -> Output {
        self.culture.channel(&self.run_dir(), NICK, args)
    }
}

/// The skill client's stdout for a response: `json.dumps(response, indent=2)`.
fn pretty(out: &Output) -> (Value, String) {
    let value = out.json();
    let id = value["id"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 36, "a uuid4: {out:?}");
    (value, id)
}

fn assert_ok(out: &Output) -> Value {
    let value = out.json();
    assert_eq!(value["ok"], json!(true), "{out:?}");
    value
}

fn error_of(out: &Output) -> String {
    assert_eq!(
        out.status, 0,
        "Culture's skill client exits 0 on ok:false: {out:?}"
    );
    let value = out.json();
    assert_eq!(value["ok"], json!(false), "{out:?}");
    value["error"].as_str().expect("error").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_skill_client_drives_every_verb() {
    let Some(mut s) = Setup::start().await else {
        return;
    };

    // Exact bytes, as the Python daemon's answer prints.
    let out = s.skill(&["channels"]).success();
    let (_, id) = pretty(&out);
    assert_eq!(
        out.stdout,
        format!(
            "{{\n  \"type\": \"response\",\n  \"id\": \"{id}\",\n  \"ok\": true,\n  \"data\": {{\n    \"channels\": [\n      \"#general\",\n      \"#alerts\"\n    ]\n  }}\n}}\n"
        )
    );
    assert_eq!(out.stderr, "");

    let out = s
        .skill(&["send", "#general", "hello", "from", "codex"])
        .success();
    let (_, id) = pretty(&out);
    assert_eq!(
        out.stdout,
        format!("{{\n  \"type\": \"response\",\n  \"id\": \"{id}\",\n  \"ok\": true\n}}\n")
    );
    s.ori
        .expect("the agent's line", |l| {
            l.contains(&format!(":{NICK}!")) && l.ends_with("PRIVMSG #general :hello from codex")
        })
        .await;

    let out = s
        .skill(&["send", "#general", "hi", "@nobody-here"])
        .success();
    assert_eq!(
        out.json()["warnings"],
        json!(["Mentioned nick not found: nobody-here"])
    );
    assert_eq!(
        error_of(&s.skill(&["send", "#nojoin", "x"])),
        "Not joined to #nojoin"
    );
    assert_eq!(
        error_of(&s.skill(&["send", "#general"])),
        "Missing 'message'"
    );

    s.ori
        .send("PRIVMSG #general :are you there @spark-codex")
        .await;
    let read = eventually("ori's line in the buffer", || {
        let value = assert_ok(&s.skill(&["read", "#general"]));
        let messages = value["data"]["messages"].as_array()?.clone();
        messages
            .iter()
            .any(|m| m["nick"] == "spark-ori")
            .then_some(messages)
    });
    let ori_line = read.iter().find(|m| m["nick"] == "spark-ori").expect("ori");
    assert_eq!(ori_line["text"], "are you there @spark-codex");
    assert!(ori_line["timestamp"].is_f64());
    // Destructive: the next read of the same buffer has nothing new.
    assert_eq!(
        assert_ok(&s.skill(&["read", "#general"]))["data"]["messages"],
        json!([])
    );

    s.ori.send(&format!("PRIVMSG {NICK} :a private word")).await;
    eventually("the DM buffer", || {
        let value = assert_ok(&s.skill(&["read", "DM:spark-ori", "5"]));
        (value["data"]["messages"][0]["text"] == "a private word").then_some(())
    });

    assert_ok(&s.skill(&["ask", "#general", "--timeout", "5", "is", "it", "done?"]));
    s.ori
        .expect("the question", |l| {
            l.ends_with("PRIVMSG #general :is it done?")
        })
        .await;

    assert_ok(&s.skill(&["join", "#ops"]));
    eventually("#ops joined", || {
        let value = assert_ok(&s.skill(&["channels"]));
        (value["data"]["channels"] == json!(["#general", "#alerts", "#ops"])).then_some(())
    });
    assert_eq!(
        error_of(&s.skill(&["join", "ops"])),
        "Channel name must start with '#'"
    );
    assert_ok(&s.skill(&["part", "#ops"]));

    let who = assert_ok(&s.skill(&["who", "#general"]));
    let members: Vec<&str> = who["data"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["nick"].as_str())
        .collect();
    assert!(
        members.contains(&"spark-ori") && members.contains(&NICK),
        "{who}"
    );

    assert_ok(&s.skill(&["topic", "#general", "shipping", "today"]));
    s.ori
        .expect("the topic", |l| {
            l.contains("TOPIC #general") && l.ends_with("shipping today")
        })
        .await;
    let topic = assert_ok(&s.skill(&["topic", "#general"]));
    assert_eq!(topic["data"], json!({"topic": "shipping today"}), "{topic}");

    for verb in ["compact", "clear"] {
        assert_eq!(error_of(&s.skill(&[verb])), "Agent runner is not running");
    }

    // The verbs without a CLI subcommand, through the same client library.
    assert_ok(&s.library(
        "irc_thread_create",
        json!({"channel": "#general", "thread": "plan-1", "message": "step one\nstep two"}),
    ));
    s.ori
        .expect("the thread's second line", |l| {
            l.ends_with("[thread:plan-1] step two")
        })
        .await;
    assert_ok(&s.library(
        "irc_thread_reply",
        json!({"channel": "#general", "thread": "plan-1", "message": "step three"}),
    ));
    s.ori.send("THREAD REPLY #general plan-1 :ori agrees").await;
    eventually("ori's thread line", || {
        let value = assert_ok(&s.library(
            "irc_thread_read",
            json!({"channel": "#general", "thread": "plan-1"}),
        ));
        let messages = value["data"]["messages"].as_array()?.clone();
        messages
            .iter()
            .find(|m| m["nick"] == "spark-ori")
            .map(|m| assert_eq!(m["thread"], "plan-1", "{value}"))
    });
    let threads = assert_ok(&s.library("irc_threads", json!({"channel": "#general"})));
    assert!(
        threads["data"]["threads"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "plan-1")),
        "{threads}"
    );
    assert_ok(&s.library(
        "irc_thread_close",
        json!({"channel": "#general", "thread": "plan-1", "summary": "done"}),
    ));

    let status = assert_ok(&s.library("status", json!({})));
    assert_eq!(
        status["data"],
        json!({"running": false, "paused": false, "circuit_open": false, "turn_count": 0,
               "last_activation": null, "activity": "idle", "description": "nothing"})
    );
    assert_ok(&s.library("pause", json!({})));
    assert_eq!(
        assert_ok(&s.library("status", json!({"query": true})))["data"]["activity"],
        "paused"
    );
    assert_ok(&s.library("resume", json!({})));
    assert_eq!(
        s.library("bogus", json!({})).json()["error"],
        "Unknown message type: 'bogus'"
    );

    assert_ok(&s.library("shutdown", json!({})));
    eventually("the agent stopped and the daemon with it", || {
        s.scratch.status().is_none().then_some(())
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn culture_channel_works_through_the_agent() {
    let Some(mut s) = Setup::start().await else {
        return;
    };
    let out = s.channel(&["list"]).success();
    // The alerts channel is joined by default (webhooks.join_channel).
    assert_eq!(out.stdout, "Active channels:\n  #general\n  #alerts\n");

    // Without --create, culture first checks over IRC that the channel exists.
    let out = s
        .channel(&["message", "#general", "line one\\nline two"])
        .success();
    assert_eq!(out.stdout, "Sent to #general\n");
    s.ori
        .expect("first line from the agent", |l| {
            l.contains(&format!(":{NICK}!")) && l.ends_with("PRIVMSG #general :line one")
        })
        .await;
    s.ori
        .expect("second line from the agent", |l| {
            l.contains(&format!(":{NICK}!")) && l.ends_with("PRIVMSG #general :line two")
        })
        .await;

    s.ori.send("PRIVMSG #general :hello agent").await;
    let out = eventually("ori's line read", || {
        let out = s.channel(&["read", "#general"]).success();
        out.stdout
            .contains("<spark-ori> hello agent")
            .then_some(out)
    });
    assert!(
        out.stderr.is_empty() || !out.stderr.contains("Falling back"),
        "{out:?}"
    );
    assert_eq!(
        s.channel(&["read", "#general"]).success().stdout,
        "No messages in #general\n"
    );

    assert_eq!(
        s.channel(&["join", "ops"]).success().stdout,
        "Joined #ops\n"
    );
    assert_eq!(s.channel(&["part", "#ops"]).success().stdout, "Left #ops\n");
    assert_eq!(
        s.channel(&["topic", "#general", "new topic"])
            .success()
            .stdout,
        "Topic set for #general\n"
    );
    assert_eq!(
        s.channel(&["topic", "#general"]).success().stdout,
        "Topic for #general: new topic\n"
    );
    let ask = s.channel(&["ask", "#general", "ready?"]).success();
    assert_eq!(ask.json()["ok"], json!(true), "{ask:?}");

    let compact = s.channel(&["compact"]);
    assert_eq!(compact.status, 1, "{compact:?}");
    assert!(
        compact
            .stderr
            .contains("error: context compact failed: Agent runner is not running"),
        "{compact:?}"
    );
}

/// A whisper queued while no client was connected reaches the next skill-client call on
/// stderr, before its answer, as Culture prints it.
#[tokio::test(flavor = "multi_thread")]
async fn a_queued_whisper_reaches_the_skill_client() {
    use codexd_actors::socket::{SocketMessage, Whisper};
    use codexd_actors::trace::TraceCtx;

    let Some(culture) = Culture::find_or_skip() else {
        return;
    };
    let fake = fake_ircd::FakeIrcd::start(fake_ircd::Behaviour::default()).await;
    let mut settings = irc_agent::settings("127.0.0.1", fake.port(), "fake", "fake-codex");
    settings.channels = vec!["#general".to_owned()];
    let agent = ipc_agent::IpcAgent::start(settings).await;
    agent.wait_irc_connected().await;
    let whisper = Whisper {
        message: "re-read the issue before you answer".to_owned(),
        kind: "CORRECTION".to_owned(),
        trace: TraceCtx::default(),
    };
    agent
        .socket
        .get()
        .expect("socket")
        .cast(SocketMessage::Whisper(whisper))
        .expect("cast");
    agent
        .wait_socket("whisper queued", |s| s["detail"]["whispers_queued"] == 1)
        .await;
    let dir = agent.path.parent().expect("dir").to_owned();
    let out = tokio::task::spawn_blocking(move || culture.skill(&dir, "fake-codex", &["channels"]))
        .await
        .expect("client");
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.json()["data"]["channels"], json!(["#general"]));
    assert_eq!(
        out.stderr,
        "[whisper:CORRECTION] re-read the issue before you answer\n"
    );
    agent.stop().await;
}
