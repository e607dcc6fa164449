//! Proves the Culture client runner (`tests/support/culture.rs`) works: Culture's real skill
//! client and `culture channel` talk to a small in-test fake daemon socket (JSON lines, the
//! `irc_channels` / `irc_send` / `irc_read` answers of codexd-spec §9, one queued whisper for
//! the first client), and `culture channel`'s observer follows the `server.yaml` the runner
//! writes to a real agentirc. A self-test of the helper, not of codexd.
//!
//! A missing peer prints a loud SKIP (fails under `CI=true`); `scripts/install-peers`
//! installs them.

#[path = "support/culture.rs"]
mod culture;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use culture::{Culture, socket_path};
use irc_client::RawClient;
use ircd::{Flavor, Ircd};

const NICK: &str = "spark-fake";
const WHISPER: &str = "stay on task";

/// A fake agent daemon on `<dir>/culture-<nick>.sock`. It records every request line, answers
/// `irc_channels`, `irc_send` (joined: `#general` only) and `irc_read` like spec §9, anything
/// else with `Unknown message type`, and sends one CORRECTION whisper to the first client as it
/// connects (the real server's queued-whisper delivery). Responses are written with the real
/// daemon's key order (`type`, `id`, `ok`, then `data` / `error`).
struct FakeDaemon {
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeDaemon {
    /// Binds the socket and serves on the current tokio runtime (until the runtime ends).
    async fn start(runtime_dir: &Path, nick: &str) -> FakeDaemon {
        Self::start_with(runtime_dir, nick, true).await
    }

    /// Like `start`, but records requests without ever answering them.
    async fn start_silent(runtime_dir: &Path, nick: &str) -> FakeDaemon {
        Self::start_with(runtime_dir, nick, false).await
    }

    async fn start_with(runtime_dir: &Path, nick: &str, answer: bool) -> FakeDaemon {
        let listener =
            UnixListener::bind(socket_path(runtime_dir, nick)).expect("bind fake socket");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&requests);
        tokio::spawn(async move {
            let mut whisper = Some(WHISPER);
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, whisper.take(), answer, Arc::clone(&record)));
            }
        });
        FakeDaemon { requests }
    }

    /// The request lines received so far, parsed.
    fn requests(&self) -> Vec<Value> {
        let lines = self.requests.lock().expect("requests");
        lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("request is JSON"))
            .collect()
    }

    /// The one request received so far (panics if there is not exactly one).
    fn only_request(&self) -> Value {
        let mut all = self.requests();
        assert_eq!(all.len(), 1, "expected one request, got {all:?}");
        all.remove(0)
    }

    fn clear(&self) {
        self.requests.lock().expect("requests").clear();
    }
}

async fn serve(
    stream: UnixStream,
    whisper: Option<&str>,
    answer: bool,
    record: Arc<Mutex<Vec<String>>>,
) {
    let (read, mut write) = stream.into_split();
    if let Some(message) = whisper {
        let line = json!({"type": "whisper", "message": message, "whisper_type": "CORRECTION"});
        let _ = write.write_all(format!("{line}\n").as_bytes()).await;
    }
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        record.lock().expect("requests").push(line.clone());
        if !answer {
            continue;
        }
        let request: Value = serde_json::from_str(&line).expect("request is JSON");
        let id = serde_json::to_string(&request["id"]).expect("id");
        let head = format!(r#"{{"type":"response","id":{id}"#);
        let response = match request["type"].as_str().unwrap_or_default() {
            "irc_channels" => {
                format!(r##"{head},"ok":true,"data":{{"channels":["#general","#ops"]}}}}"##)
            }
            "irc_send" if request["channel"] == "#general" => format!(r#"{head},"ok":true}}"#),
            "irc_send" => {
                let channel = request["channel"].as_str().unwrap_or_default();
                format!(r#"{head},"ok":false,"error":"Not joined to {channel}"}}"#)
            }
            "irc_read" => format!(
                r#"{head},"ok":true,"data":{{"messages":[{{"nick":"spark-ori","text":"hello there","timestamp":1712000000.5}}]}}}}"#
            ),
            other => format!(r#"{head},"ok":false,"error":"Unknown message type: '{other}'"}}"#),
        };
        if write
            .write_all(format!("{response}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A runtime for the fake daemon while the test thread blocks on client processes.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Asserts `request` is exactly `expected` plus a uuid4 string `id`; returns the id.
fn assert_request(request: &Value, expected: Value) -> String {
    let mut request = request.clone();
    let id = request
        .as_object_mut()
        .and_then(|o| o.remove("id"))
        .and_then(|id| id.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("request without a string id: {request}"));
    assert_eq!(id.len(), 36, "id is not a uuid4: {id}");
    assert_eq!(id.matches('-').count(), 4, "id is not a uuid4: {id}");
    assert_eq!(request, expected);
    id
}

/// The skill client sends each request with a uuid4 id, prints the response object as
/// `json.dumps(resp, indent=2)` in the daemon's key order, prints the whisper queued before
/// its response on stderr, and exits 0 even on `ok:false`; without CULTURE_NICK it exits 2.
#[test]
fn skill_client_runs_against_a_fake_socket() {
    let Some(culture) = Culture::find_or_skip() else {
        return;
    };
    let run = tempfile::tempdir().expect("runtime dir");
    let rt = runtime();
    let fake = rt.block_on(FakeDaemon::start(run.path(), NICK));

    let out = culture.skill(run.path(), NICK, &["channels"]).success();
    let id = assert_request(&fake.only_request(), json!({"type": "irc_channels"}));
    let expected = format!(
        "{{\n  \"type\": \"response\",\n  \"id\": \"{id}\",\n  \"ok\": true,\n  \"data\": {{\n    \
         \"channels\": [\n      \"#general\",\n      \"#ops\"\n    ]\n  }}\n}}\n"
    );
    assert_eq!(out.stdout, expected);
    assert_eq!(out.stderr, format!("[whisper:CORRECTION] {WHISPER}\n"));

    // The whisper went to the first client only.
    fake.clear();
    let out = culture
        .skill(run.path(), NICK, &["send", "#general", "hello", "world"])
        .success();
    assert_request(
        &fake.only_request(),
        json!({"type": "irc_send", "channel": "#general", "message": "hello world"}),
    );
    assert_eq!(out.json()["ok"], true);
    assert_eq!(out.stderr, "");

    fake.clear();
    let out = culture
        .skill(run.path(), NICK, &["send", "#nojoin", "hi"])
        .success();
    assert_request(
        &fake.only_request(),
        json!({"type": "irc_send", "channel": "#nojoin", "message": "hi"}),
    );
    assert_eq!(out.json()["ok"], false);
    assert_eq!(out.json()["error"], "Not joined to #nojoin");

    fake.clear();
    let out = culture
        .skill(run.path(), NICK, &["read", "#general", "5"])
        .success();
    assert_request(
        &fake.only_request(),
        json!({"type": "irc_read", "channel": "#general", "limit": 5}),
    );
    assert_eq!(
        out.json()["data"]["messages"],
        json!([{"nick": "spark-ori", "text": "hello there", "timestamp": 1712000000.5}])
    );

    let out = culture.skill_with(Some(run.path()), None, &["channels"]);
    assert_eq!(out.status, 2, "{out:?}");
    assert_eq!(
        out.stderr,
        "hint: CULTURE_NICK environment variable is not set\n"
    );
}

/// `culture channel` routes through the same socket (ignoring the whisper), prints its own
/// formats, and on `ok:false` falls back to its observer, which fails fast against the
/// default server.yaml (nothing listens on 127.0.0.1:9).
#[test]
fn culture_channel_runs_against_a_fake_socket() {
    let Some(culture) = Culture::find_or_skip() else {
        return;
    };
    let run = tempfile::tempdir().expect("runtime dir");
    let rt = runtime();
    let fake = rt.block_on(FakeDaemon::start(run.path(), NICK));

    let out = culture.channel(run.path(), NICK, &["list"]).success();
    assert_request(&fake.only_request(), json!({"type": "irc_channels"}));
    assert_eq!(out.stdout, "Active channels:\n  #general\n  #ops\n");
    assert_eq!(out.stderr, "", "whispers are not printed by culture");

    fake.clear();
    let out = culture
        .channel(run.path(), NICK, &["read", "general", "-n", "3"])
        .success();
    assert_request(
        &fake.only_request(),
        json!({"type": "irc_read", "channel": "#general", "limit": 3}),
    );
    assert_eq!(out.stdout, "<spark-ori> hello there\n");

    fake.clear();
    let out = culture
        .channel(
            run.path(),
            NICK,
            &["message", "#general", r"two\nlines", "--create"],
        )
        .success();
    assert_request(
        &fake.only_request(),
        json!({"type": "irc_send", "channel": "#general", "message": "two\nlines"}),
    );
    assert_eq!(out.stdout, "Sent to #general\n");

    fake.clear();
    let out = culture.channel(run.path(), NICK, &["message", "#nojoin", "hi", "--create"]);
    assert_eq!(out.status, 1, "{out:?}");
    assert_request(
        &fake.only_request(),
        json!({"type": "irc_send", "channel": "#nojoin", "message": "hi"}),
    );
    assert!(
        out.stderr.contains("Falling back to observer connection")
            && out
                .stderr
                .ends_with("error: cannot connect to IRC server. Is the server running?\nhint: start it with: culture server start\n"),
        "{out:?}"
    );

    fake.clear();
    let out = culture.channel(run.path(), NICK, &["compact"]);
    assert_eq!(out.status, 1, "{out:?}");
    assert_request(&fake.only_request(), json!({"type": "compact"}));
    assert_eq!(
        out.stderr,
        "error: context compact failed: Unknown message type: 'compact'\n\
         hint: check the agent daemon: culture agents status spark-fake\n"
    );
}

/// A client that hangs (the skill client waits for its response forever) is killed at the
/// runner's deadline, and the call panics naming the command.
#[test]
fn a_hanging_client_is_killed_at_the_deadline() {
    let Some(mut culture) = Culture::find_or_skip() else {
        return;
    };
    culture.set_timeout(Duration::from_secs(3));
    let run = tempfile::tempdir().expect("runtime dir");
    let rt = runtime();
    let fake = rt.block_on(FakeDaemon::start_silent(run.path(), NICK));

    let started = Instant::now();
    let panic = std::panic::catch_unwind(AssertUnwindSafe(|| {
        culture.skill(run.path(), NICK, &["channels"])
    }))
    .expect_err("the call should panic");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("irc_client channels did not finish within 3s; killed."),
        "{message}"
    );
    assert!(
        started.elapsed() < culture::CALL_TIMEOUT,
        "took {:?}",
        started.elapsed()
    );
    assert_request(&fake.only_request(), json!({"type": "irc_channels"}));
}

/// With `irc_server` pointing at a real agentirc, `culture channel who` lists the channel's
/// members through the observer, and `message` without `--create` checks the channel exists
/// on the server (LIST) before sending through the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn culture_channel_observer_follows_server_yaml() {
    let Some(culture) = Culture::find_or_skip() else {
        return;
    };
    let Some(server) = Ircd::start(Flavor::Agentirc, "spark").await else {
        return;
    };
    culture.irc_server(&server.server_name(), server.host(), server.port());
    let holder_nick = format!("{}holder", server.nick_prefix());
    let mut holder = RawClient::connect(server.host(), server.port(), &holder_nick, &[]).await;
    holder.join("#general").await;

    let run = tempfile::tempdir().expect("runtime dir");
    let fake = FakeDaemon::start(run.path(), NICK).await;

    let out =
        tokio::task::block_in_place(|| culture.channel(run.path(), NICK, &["who", "#general"]))
            .success();
    assert_eq!(out.stdout, format!("Users in #general:\n  {holder_nick}\n"));
    assert!(fake.requests().is_empty(), "who never uses the socket");

    let out = tokio::task::block_in_place(|| {
        culture.channel(run.path(), NICK, &["message", "#general", "hello"])
    })
    .success();
    assert_eq!(out.stdout, "Sent to #general\n");
    assert_request(
        &fake.only_request(),
        json!({"type": "irc_send", "channel": "#general", "message": "hello"}),
    );

    fake.clear();
    let out = tokio::task::block_in_place(|| {
        culture.channel(run.path(), NICK, &["message", "#nosuch", "hello"])
    });
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("error: channel '#nosuch' does not exist on the server\n"),
        "{out:?}"
    );
    assert!(
        fake.requests().is_empty(),
        "the send was refused before IPC"
    );
    holder.quit().await;
}
