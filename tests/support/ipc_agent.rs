#![allow(dead_code, unreachable_pub)]

//! An in-process agent with real `irc` and `socket` children under a real Host, and a
//! JSON-lines client for its Culture IPC socket. Polls with deadlines; never sleeps to
//! assert timing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use codexd_actors::agent::AgentSpec;
use codexd_actors::child::{ChildRole, ChildSpec};
use codexd_actors::host::{Host, HostSpec};
use codexd_actors::irc::{IrcFactory, IrcMessage, IrcSettings};
use codexd_actors::link::Link;
use codexd_actors::pause::PauseSwitch;
use codexd_actors::restart::RestartPolicy;
use codexd_actors::runner::CurrentTurn;
use codexd_actors::socket::{AgentSocket, SocketFactory, SocketMessage, SocketPeers, StopRequest};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

/// Hang detector, not a speed assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running agent: Host → agent → [socket, irc].
pub struct IpcAgent {
    pub host: Host,
    pub nick: String,
    pub path: PathBuf,
    pub pause: PauseSwitch,
    pub turn: CurrentTurn,
    pub irc: Link<IrcMessage>,
    pub socket: Link<SocketMessage>,
    pub stops: mpsc::Receiver<StopRequest>,
    _dir: tempfile::TempDir,
}

/// Fast restarts and health checks, so fault tests finish quickly.
pub fn quick_policy() -> RestartPolicy {
    RestartPolicy {
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(200),
        jitter: 0.0,
        health_interval: Duration::from_millis(200),
        health_timeout: Duration::from_millis(500),
        ..RestartPolicy::default()
    }
}

impl IpcAgent {
    /// Starts the agent with `irc` settings (its nick is the agent's nick).
    pub async fn start(irc: IrcSettings) -> IpcAgent {
        let dir = tempfile::tempdir().expect("tempdir");
        let nick = irc.nick.clone();
        let socket = AgentSocket::bind(&dir.path().join("run"), &nick, false).expect("bind");
        let path = socket.path().to_owned();
        let (stop, stops) = mpsc::channel(8);
        let irc_link = Link::default();
        let socket_link = Link::default();
        let peers = SocketPeers {
            nick: nick.clone(),
            irc: irc_link.clone(),
            runner: Link::default(),
            webhook: Link::default(),
            pause: PauseSwitch::default(),
            turn: CurrentTurn::default(),
            stop,
            repo: Link::default(),
            repo_jobs: false,
        };
        let (events, _) = broadcast::channel(1024);
        let policy = quick_policy();
        let child = |name: &str, factory: Arc<dyn codexd_actors::child::ChildFactory>| ChildSpec {
            name: name.to_owned(),
            role: ChildRole::Member,
            policy,
            factory,
        };
        let children = vec![
            child(
                "socket",
                Arc::new(SocketFactory::new(
                    socket,
                    peers.clone(),
                    socket_link.clone(),
                )),
            ),
            child(
                "irc",
                Arc::new(IrcFactory::new(
                    irc,
                    events,
                    discarding_intake(),
                    irc_link.clone(),
                )),
            ),
        ];
        let spec = AgentSpec {
            nick: nick.clone(),
            policy,
            children,
            stop_timeout: Duration::from_secs(5),
            observer: None,
        };
        let (host, _join) = Host::spawn(HostSpec {
            services: Vec::new(),
            agents: vec![spec],
            stop_timeout: Duration::from_secs(5),
            observer: None,
        })
        .await
        .expect("host");
        IpcAgent {
            host,
            nick,
            path,
            pause: peers.pause,
            turn: peers.turn,
            irc: irc_link,
            socket: socket_link,
            stops,
            _dir: dir,
        }
    }

    /// A new client connection.
    pub async fn client(&self) -> IpcClient {
        IpcClient::connect(&self.path).await
    }

    /// Waits until the `irc` child reports `connected`.
    pub async fn wait_irc_connected(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(irc) = self.irc.get() {
                let status = ractor::call!(irc, |reply| IrcMessage::Status { reply });
                if status.is_ok_and(|s| s.state == "connected") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "irc never connected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The socket child's row in the Host status.
    pub async fn socket_status(&self) -> Value {
        let status = self.host.status().await.expect("status");
        let value = serde_json::to_value(status).expect("json");
        value["agents"][0]["children"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "socket").cloned())
            .expect("socket child")
    }

    /// Waits until the socket child's status satisfies `pred`.
    pub async fn wait_socket(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = self.socket_status().await;
            if pred(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        self.host.shutdown(Duration::from_secs(5)).await;
    }
}

/// One JSON-lines connection to an agent socket.
pub struct IpcClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

impl IpcClient {
    pub async fn connect(path: &Path) -> IpcClient {
        let stream = UnixStream::connect(path).await.expect("connect");
        let (read, writer) = stream.into_split();
        IpcClient {
            reader: BufReader::new(read),
            writer,
            next_id: 0,
        }
    }

    /// Writes raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// The next line the server wrote, exactly (with its `\n`); `None` at EOF.
    pub async fn next_raw(&mut self) -> Option<String> {
        let mut line = String::new();
        let read = tokio::time::timeout(PATIENCE, self.reader.read_line(&mut line))
            .await
            .expect("no line from the socket in time");
        match read.expect("read") {
            0 => None,
            _ => Some(line),
        }
    }

    /// The next line, parsed.
    pub async fn next(&mut self) -> Value {
        let line = self.next_raw().await.expect("a line, not EOF");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Sends `{"type": kind, "id": <n>, ...fields}` and returns the raw answer line
    /// (whispers before it are skipped).
    pub async fn request_raw(&mut self, kind: &str, fields: Value) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let mut request = json!({ "type": kind, "id": id });
        if let Value::Object(extra) = fields {
            for (k, v) in extra {
                request[k] = v;
            }
        }
        let mut line = serde_json::to_vec(&request).expect("json");
        line.push(b'\n');
        self.send_raw(&line).await;
        loop {
            let raw = self.next_raw().await.expect("an answer, not EOF");
            let value: Value = serde_json::from_str(&raw).expect("json");
            if value["type"] == "response" {
                assert_eq!(value["id"], json!(id), "answers come in order: {raw}");
                return raw;
            }
        }
    }

    /// Like [`IpcClient::request_raw`], parsed.
    pub async fn request(&mut self, kind: &str, fields: Value) -> Value {
        let raw = self.request_raw(kind, fields).await;
        serde_json::from_str(&raw).expect("json")
    }
}

/// No runner here: what `irc` hands to the intake is taken and dropped.
fn discarding_intake() -> codexd_actors::irc::IntakePath {
    let (intake, mut queue) = codexd_actors::irc::IntakePath::new(64);
    tokio::spawn(async move { while queue.recv().await.is_some() {} });
    intake
}
