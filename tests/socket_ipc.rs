//! The `socket` actor end to end in one process: a real Host runs an agent whose `irc`
//! child talks to the in-repo fake IRC server and whose `socket` child serves Culture's
//! IPC. Every verb, Culture's exact answers, every class of bad input (with the daemon
//! alive and other clients unaffected afterwards), whispers across a restart and faults.
//! (Request spans are in `socket_ipc_spans.rs`.)

#[path = "support/fake_ircd.rs"]
mod fake_ircd;
#[path = "support/ipc_agent.rs"]
mod ipc_agent;
#[path = "support/irc_agent.rs"]
mod irc_agent;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use codexd_actors::child::FaultKind;
use codexd_actors::socket::{MAX_REQUEST_LINE, SocketMessage, Whisper};
use codexd_actors::trace::TraceCtx;
use fake_ircd::{Behaviour, FakeIrcd};
use ipc_agent::{IpcAgent, IpcClient};
use serde_json::{Value, json};

const NICK: &str = "fake-bot";

async fn agent_on(fake: &FakeIrcd) -> IpcAgent {
    let mut settings = irc_agent::settings("127.0.0.1", fake.port(), "fake", NICK);
    settings.channels = vec!["#general".to_owned()];
    let agent = IpcAgent::start(settings).await;
    agent.wait_irc_connected().await;
    agent
}

async fn started() -> (FakeIrcd, IpcAgent) {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let agent = agent_on(&fake).await;
    (fake, agent)
}

/// Waits for a line the agent sent to the fake server.
async fn wire(fake: &FakeIrcd, line: &str) {
    fake.wait_for_line(line, |_, l| l == line).await;
}

fn error_of(answer: &Value) -> &str {
    assert_eq!(answer["ok"], json!(false), "{answer}");
    answer["error"].as_str().expect("error text")
}

fn assert_ok(answer: &Value) {
    assert_eq!(answer["ok"], json!(true), "{answer}");
}

#[tokio::test]
async fn the_socket_is_private_to_the_daemons_user() {
    let (_fake, agent) = started().await;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&agent.path), 0o600);
    assert_eq!(mode(agent.path.parent().expect("dir")), 0o700);
    assert!(agent.path.ends_with(format!("culture-{NICK}.sock")));
    agent.stop().await;
}

#[tokio::test]
async fn irc_verbs_reach_the_wire_only_through_the_irc_actor() {
    let (fake, agent) = started().await;
    let mut c = agent.client().await;

    assert_eq!(
        c.request_raw("irc_channels", json!({})).await,
        "{\"type\":\"response\",\"id\":\"1\",\"ok\":true,\"data\":{\"channels\":[\"#general\"]}}\n"
    );
    assert_eq!(
        c.request_raw(
            "irc_send",
            json!({"channel": "#general", "message": "hello"})
        )
        .await,
        "{\"type\":\"response\",\"id\":\"2\",\"ok\":true}\n"
    );
    wire(&fake, "PRIVMSG #general :hello").await;

    // CR/LF in text become separate PRIVMSGs; they never start a new command.
    let injected = c
        .request(
            "irc_send",
            json!({"channel": "#general", "message": "one\r\nQUIT :bye\u{0}x"}),
        )
        .await;
    assert_ok(&injected);
    wire(&fake, "PRIVMSG #general :one").await;
    wire(&fake, "PRIVMSG #general :QUIT :byex").await;
    let bad_target = c
        .request(
            "irc_send",
            json!({"channel": "bob\r\nQUIT", "message": "x"}),
        )
        .await;
    assert!(error_of(&bad_target).contains("channel"), "{bad_target}");
    assert!(!fake.all_lines().await.iter().any(|l| l.starts_with("QUIT")));

    let warned = c
        .request(
            "irc_send",
            json!({"channel": "#general", "message": "ping @ghost-nick"}),
        )
        .await;
    assert_eq!(
        warned["warnings"],
        json!(["Mentioned nick not found: ghost-nick"])
    );
    assert_eq!(
        error_of(
            &c.request("irc_send", json!({"channel": "#nojoin", "message": "x"}))
                .await
        ),
        "Not joined to #nojoin"
    );
    assert_ok(
        &c.request("irc_send", json!({"channel": "bob", "message": "psst"}))
            .await,
    );
    wire(&fake, "PRIVMSG bob :psst").await;
    // A CTCP delimiter never reaches the wire: the text cannot become a CTCP request.
    assert_ok(
        &c.request(
            "irc_send",
            json!({"channel": "bob", "message": "\u{1}VERSION\u{1} please"}),
        )
        .await,
    );
    wire(&fake, "PRIVMSG bob :VERSION please").await;
    assert!(!fake.all_lines().await.iter().any(|l| l.contains('\u{1}')));

    // irc_ask skips the joined check (Culture) and raises agent_question.
    assert_ok(
        &c.request(
            "irc_ask",
            json!({"channel": "#elsewhere", "message": "anyone?", "timeout": 5}),
        )
        .await,
    );
    wire(&fake, "PRIVMSG #elsewhere :anyone?").await;

    assert_ok(&c.request("irc_join", json!({"channel": "#new"})).await);
    wire(&fake, "JOIN #new").await;
    assert_eq!(
        c.request("irc_channels", json!({})).await["data"]["channels"],
        json!(["#general", "#new"])
    );
    assert_ok(&c.request("irc_part", json!({"channel": "#new"})).await);
    wire(&fake, "PART #new").await;

    assert_ok(
        &c.request(
            "irc_topic",
            json!({"channel": "#general", "topic": "plans"}),
        )
        .await,
    );
    wire(&fake, "TOPIC #general :plans").await;
    // A topic query returns the server's answer (Culture only buffered it).
    c.send_raw(b"{\"type\":\"irc_topic\",\"id\":\"q\",\"channel\":\"#general\"}\n")
        .await;
    wire(&fake, "TOPIC #general").await;
    fake.send(0, ":fake 332 fake-bot #general :plans for today")
        .await;
    let topic = c.next().await;
    assert_eq!(
        topic,
        json!({"type": "response", "id": "q", "ok": true, "data": {"topic": "plans for today"}})
    );
    c.send_raw(b"{\"type\":\"irc_topic\",\"id\":\"n\",\"channel\":\"#general\"}\n")
        .await;
    fake.send(0, "PING :between").await;
    fake.wait_for_line("PONG", |_, l| l.ends_with(":between"))
        .await;
    fake.send(0, ":fake 331 fake-bot #general :No topic is set")
        .await;
    assert_eq!(c.next().await["data"], json!({"topic": ""}));

    assert_ok(
        &c.request(
            "irc_thread_create",
            json!({"channel": "#general", "thread": "t1", "message": "first\nsecond"}),
        )
        .await,
    );
    wire(&fake, "THREAD CREATE #general t1 :first").await;
    wire(&fake, "THREAD REPLY #general t1 :second").await;
    assert_ok(
        &c.request(
            "irc_thread_reply",
            json!({"channel": "#general", "thread": "t1", "message": "more"}),
        )
        .await,
    );
    wire(&fake, "THREAD REPLY #general t1 :more").await;
    assert_ok(
        &c.request(
            "irc_thread_close",
            json!({"channel": "#general", "thread": "t1", "summary": "done\nhere"}),
        )
        .await,
    );
    wire(&fake, "THREADCLOSE #general t1 :done here").await;
    agent.stop().await;
}

#[tokio::test]
async fn reads_are_culture_destructive_and_thread_reads_are_not() {
    let (fake, agent) = started().await;
    let mut c = agent.client().await;
    fake.send(0, ":bob!b@h PRIVMSG #general :hi there").await;
    fake.send(0, ":bob!b@h PRIVMSG #general :[thread:t1] in a thread")
        .await;
    fake.send(0, ":bob!b@h PRIVMSG fake-bot :a secret").await;
    fake.send(0, "PING :sync").await;
    fake.wait_for_line("PONG", |_, l| l.ends_with(":sync"))
        .await;

    let read = c
        .request("irc_read", json!({"channel": "#general", "limit": 1}))
        .await;
    let messages = read["data"]["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "limit keeps the newest: {read}");
    assert_eq!(messages[0]["nick"], "bob");
    assert_eq!(messages[0]["text"], "[thread:t1] in a thread");
    assert!(messages[0]["timestamp"].is_f64());
    assert_eq!(
        messages[0]
            .as_object()
            .expect("object")
            .keys()
            .collect::<Vec<_>>(),
        ["nick", "text", "timestamp"]
    );
    let again = c.request("irc_read", json!({"channel": "#general"})).await;
    assert_eq!(again["data"]["messages"], json!([]), "the cursor moved");

    let thread = c
        .request(
            "irc_thread_read",
            json!({"channel": "#general", "thread": "t1"}),
        )
        .await;
    assert_eq!(thread["data"]["messages"][0]["thread"], "t1");
    assert_eq!(
        thread["data"]["messages"][0]["text"],
        "[thread:t1] in a thread"
    );
    let twice = c
        .request(
            "irc_thread_read",
            json!({"channel": "#general", "thread": "t1"}),
        )
        .await;
    assert_eq!(
        twice["data"], thread["data"],
        "thread reads leave the cursor alone"
    );

    let dm = c.request("irc_read", json!({"channel": "DM:bob"})).await;
    assert_eq!(dm["data"]["messages"][0]["text"], "a secret");
    let empty = c
        .request_raw("irc_read", json!({"channel": "#never"}))
        .await;
    assert!(
        empty.ends_with("\"ok\":true,\"data\":{\"messages\":[]}}\n"),
        "{empty}"
    );
    agent.stop().await;
}

#[tokio::test]
async fn status_pause_resume_compact_clear_without_a_runner_answer_like_culture() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let agent = agent_on(&fake).await;
    let mut c = agent.client().await;
    let fresh = "{\"running\":false,\"paused\":false,\"circuit_open\":false,\"turn_count\":0,\"last_activation\":null,\"activity\":\"idle\",\"description\":\"nothing\"}";
    assert_eq!(
        c.request_raw("status", json!({})).await,
        format!("{{\"type\":\"response\",\"id\":\"1\",\"ok\":true,\"data\":{fresh}}}\n")
    );
    assert_ok(&c.request("pause", json!({})).await);
    assert!(agent.pause.is_paused());
    let paused = c.request("status", json!({"query": true})).await;
    assert_eq!(
        (
            paused["data"]["paused"].clone(),
            paused["data"]["activity"].clone()
        ),
        (json!(true), json!("paused"))
    );
    assert_eq!(paused["data"]["description"], "paused");
    assert_ok(&c.request("resume", json!({})).await);
    assert!(!agent.pause.is_paused());
    for verb in ["compact", "clear"] {
        assert_eq!(
            error_of(&c.request(verb, json!({})).await),
            "Agent runner is not running"
        );
    }
    agent.stop().await;
}

#[tokio::test]
async fn shutdown_answers_first_then_asks_the_daemon_to_stop_this_agent() {
    let (_fake, mut agent) = started().await;
    let mut c = agent.client().await;
    assert_eq!(
        c.request_raw("shutdown", json!({})).await,
        "{\"type\":\"response\",\"id\":\"1\",\"ok\":true}\n"
    );
    let request = tokio::time::timeout(ipc_agent::PATIENCE, agent.stops.recv())
        .await
        .expect("a stop request")
        .expect("open");
    assert_eq!(request.nick, NICK);
    agent.stop().await;
}

#[tokio::test]
async fn bad_input_gets_an_error_answer_and_the_connection_lives_on() {
    let (_fake, agent) = started().await;
    let mut c = agent.client().await;
    let cases: [(&[u8], &str); 8] = [
        (b"{not json\n", "invalid JSON"),
        (b"[1,2]\n", "request must be a JSON object, got an array"),
        (b"42\n", "request must be a JSON object, got a number"),
        (b"{\"id\":\"x\"}\n", "Unknown message type: ''"),
        (
            b"{\"type\":\"bogus\",\"id\":\"x\"}\n",
            "Unknown message type: 'bogus'",
        ),
        (
            b"{\"type\":\"irc_send\",\"id\":\"x\",\"channel\":7,\"message\":\"m\"}\n",
            "'channel' must be a string",
        ),
        (
            b"{\"type\":\"irc_read\",\"id\":\"x\",\"channel\":\"#general\",\"limit\":\"lots\"}\n",
            "'limit' must be a positive integer",
        ),
        (b"\xff\xfe\n", "invalid JSON"),
    ];
    for (line, error) in cases {
        c.send_raw(line).await;
        let answer = c.next().await;
        assert!(
            error_of(&answer).contains(error),
            "{}: {answer}",
            String::from_utf8_lossy(line)
        );
    }
    // Blank lines and JSON null are ignored, as Culture does: the next answer is status's.
    c.send_raw(b"\n   \nnull\n").await;
    assert_ok(&c.request("status", json!({})).await);
    agent.stop().await;
}

#[tokio::test]
async fn a_line_over_the_limit_is_answered_and_dropped_and_a_mebibyte_is_fine() {
    let (fake, agent) = started().await;
    let mut c = agent.client().await;
    let mib = "x".repeat(1 << 20);
    let big = c
        .request("irc_read", json!({"channel": "#general", "padding": mib}))
        .await;
    assert_ok(&big);

    let mut huge = b"{\"type\":\"status\",\"pad\":\"".to_vec();
    huge.resize(MAX_REQUEST_LINE + 10, b'y');
    huge.extend_from_slice(b"\"}\n");
    c.send_raw(&huge).await;
    let answer = c.next().await;
    assert!(error_of(&answer).contains("exceeds the limit"), "{answer}");
    // More lines at once than the link's writer holds: refused as a whole, clearly.
    let flood_text = "line\n".repeat(1100);
    let refused = c
        .request(
            "irc_send",
            json!({"channel": "#general", "message": flood_text}),
        )
        .await;
    assert!(
        error_of(&refused).starts_with("the IRC link is backed up: 1024 lines"),
        "{refused}"
    );
    // The same connection goes on, and so does IRC.
    assert_ok(
        &c.request(
            "irc_send",
            json!({"channel": "#general", "message": "still here"}),
        )
        .await,
    );
    wire(&fake, "PRIVMSG #general :still here").await;
    agent.stop().await;
}

#[tokio::test]
async fn stalled_readers_floods_and_crowds_leave_other_clients_served() {
    let (_fake, agent) = started().await;
    // A client that writes requests and never reads its answers.
    let mut stalled = agent.client().await;
    let flood: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("{{\"type\":\"irc_channels\",\"id\":\"{i}\"}}\n").into_bytes())
        .collect();
    let writer = tokio::spawn(async move {
        // Blocks once both socket buffers are full: the server stopped reading it.
        let _ = tokio::time::timeout(Duration::from_secs(2), stalled.send_raw(&flood)).await;
        stalled
    });
    // A flood that is read: every request answered, in order.
    let mut busy = agent.client().await;
    let many: Vec<u8> = (0..2_000)
        .flat_map(|i| format!("{{\"type\":\"status\",\"id\":{i}}}\n").into_bytes())
        .collect();
    busy.send_raw(&many).await;
    for i in 0..2_000 {
        let answer = busy.next().await;
        assert_eq!(answer["id"], json!(i));
        assert_ok(&answer);
    }
    // Fifty clients at once.
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let path = agent.path.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = IpcClient::connect(&path).await;
            for _ in 0..5 {
                assert_ok(&c.request("irc_channels", json!({})).await);
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    let _stalled = writer.await.expect("writer");
    let mut fresh = agent.client().await;
    assert_ok(&fresh.request("status", json!({})).await);
    let status = agent.socket_status().await;
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["restarts"], 0, "{status}");
    agent.stop().await;
}

fn whisper(text: &str) -> SocketMessage {
    SocketMessage::Whisper(Whisper {
        message: text.to_owned(),
        kind: "CORRECTION".to_owned(),
        trace: TraceCtx::default(),
    })
}

#[tokio::test]
async fn whispers_wait_for_a_client_and_survive_a_socket_crash() {
    let (_fake, agent) = started().await;
    let socket = agent.socket.get().expect("socket running");
    socket
        .cast(whisper("queued before any client"))
        .expect("cast");
    agent
        .wait_socket("whisper queued", |s| s["detail"]["whispers_queued"] == 1)
        .await;

    // A crash of the actor drops connections but keeps the path and the queue.
    let mut before = agent.client().await;
    assert_eq!(
        before.next_raw().await.expect("whisper"),
        "{\"type\":\"whisper\",\"message\":\"queued before any client\",\"whisper_type\":\"CORRECTION\"}\n"
    );
    drop(before);
    agent
        .wait_socket("no clients", |s| s["detail"]["clients"] == 0)
        .await;
    socket.cast(whisper("kept across the crash")).expect("cast");
    agent
        .wait_socket("whisper queued", |s| s["detail"]["whispers_queued"] == 1)
        .await;
    let mut doomed = agent.client().await;
    assert!(
        doomed
            .next_raw()
            .await
            .is_some_and(|l| l.contains("kept across the crash"))
    );
    socket.cast(whisper("requeued")).expect("cast");
    assert!(
        doomed
            .next_raw()
            .await
            .is_some_and(|l| l.contains("requeued"))
    );
    drop(doomed);
    agent
        .wait_socket("no clients", |s| s["detail"]["clients"] == 0)
        .await;
    socket.cast(whisper("survives the restart")).expect("cast");
    let mut watching = agent.client().await;
    let _ = watching.next_raw().await; // the backlog goes to this client
    agent
        .host
        .fault(NICK, "socket", FaultKind::Panic)
        .await
        .expect("fault");
    assert_eq!(
        watching.next_raw().await,
        None,
        "a crash closes open connections"
    );
    let restarted = agent
        .wait_socket("restarted", |s| {
            s["restarts"] == 1 && s["state"] == "running"
        })
        .await;
    assert!(
        restarted["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("panic")),
        "{restarted}"
    );

    let new_socket = agent.socket.get().expect("socket running again");
    assert_ne!(new_socket.get_id(), socket.get_id());
    new_socket.cast(whisper("after the restart")).expect("cast");
    let mut again = IpcClient::connect(&agent.path).await;
    assert!(
        again
            .next_raw()
            .await
            .is_some_and(|l| l.contains("after the restart"))
    );
    assert_ok(&again.request("status", json!({})).await);

    // Two clients connected: a whisper reaches both.
    let mut second = agent.client().await;
    assert_ok(&second.request("status", json!({})).await);
    agent
        .socket
        .get()
        .expect("socket")
        .cast(whisper("to all"))
        .expect("cast");
    for c in [&mut again, &mut second] {
        assert!(c.next_raw().await.is_some_and(|l| l.contains("to all")));
    }
    agent.stop().await;
}

#[tokio::test]
async fn a_hung_socket_actor_is_restarted_while_connections_keep_answering() {
    let (_fake, agent) = started().await;
    let mut c = agent.client().await;
    agent
        .host
        .fault(
            NICK,
            "socket",
            FaultKind::Hang {
                duration: Duration::from_secs(5),
            },
        )
        .await
        .expect("fault");
    // Requests are served by connection tasks, not by the hung mailbox.
    assert_ok(&c.request("irc_channels", json!({})).await);
    let restarted = agent
        .wait_socket("restarted after the hang", |s| {
            s["restarts"] == 1 && s["state"] == "running"
        })
        .await;
    assert!(
        restarted["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("ping")),
        "{restarted}"
    );
    let mut after = IpcClient::connect(&agent.path).await;
    assert_ok(&after.request("status", json!({})).await);
    agent.stop().await;
}

/// The socket is 0600 in a 0700 directory; the peer-credential check is the second wall.
/// With both opened up on purpose, a client running as another user is still refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_of_another_user_is_refused() {
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    let python = std::path::Path::new("/usr/bin/python3");
    if codexd_actors::socket::own_uid() != 0 || !setpriv.exists() || !python.exists() {
        eprintln!("SKIP: needs root, /usr/bin/setpriv and /usr/bin/python3 to act as another user");
        return;
    }
    let (_fake, agent) = started().await;
    let open = |p: &std::path::Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    let run = agent.path.parent().expect("run dir");
    open(run.parent().expect("tempdir"), 0o755);
    open(run, 0o755);
    open(&agent.path, 0o666);
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall(b'{\"type\":\"status\",\"id\":\"1\"}\\n')\nf=s.makefile()\nprint(repr(f.readline()), repr(f.readline()))";
    let path = agent.path.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(python)
            .args(["-c", script])
            .arg(&path)
            .output()
            .expect("setpriv")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "'{\"type\":\"response\",\"id\":\"\",\"ok\":false,\"error\":\"permission denied: not the daemon\\'s user\"}\\n' ''\n",
        "one refusal, then the connection is closed"
    );
    let mut own = agent.client().await;
    assert_ok(&own.request("status", json!({})).await);
    agent.stop().await;
}

/// While the IRC link is down a send is accepted into the bounded queue, and the answer
/// says so (Culture's daemon answered as if it had been sent).
#[tokio::test]
async fn a_send_while_irc_is_down_is_queued_and_says_so() {
    let fake = FakeIrcd::start(Behaviour {
        register: false,
        ..Behaviour::default()
    })
    .await;
    let settings = irc_agent::settings("127.0.0.1", fake.port(), "fake", NICK);
    let agent = IpcAgent::start(settings).await;
    let mut c = agent.client().await;
    let answer = c
        .request("irc_send", json!({"channel": "bob", "message": "later"}))
        .await;
    assert_ok(&answer);
    assert_eq!(
        answer["warnings"],
        json!(["not connected to IRC: the message is queued and goes out after the reconnect"])
    );
    agent.stop().await;
}
