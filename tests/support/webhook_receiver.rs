//! A loopback webhook receiver: a hand-written HTTP/1.1 server on a tokio `TcpListener` at
//! 127.0.0.1:0 that records every request (method, path, headers, body) and answers it as
//! told. One request per connection; every answer is `connection: close`.
//!
//! | answer        | what the client sees                                               |
//! |---------------|--------------------------------------------------------------------|
//! | `Status(s)`   | HTTP status `s`, empty body                                        |
//! | `Hang`        | the request is read (and recorded), then nothing until the client gives up |
//!
//! Scripted answers ([`WebhookReceiver::push`]) are used first, then the fallback
//! ([`WebhookReceiver::set`], 200 unless changed). [`refused_url`] is a URL on a closed
//! port: connections to it are refused.
//! Real time only: do not combine with `#[tokio::test(start_paused = true)]`.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Hang detector for [`WebhookReceiver::wait_requests`]: not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(60);

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status.
    Status(u16),
    /// No answer at all (the connection stays open until the client closes it).
    Hang,
}

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When it arrived (for latency measurements).
    pub at: std::time::Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }

    /// The generic format's `event` field, if any.
    pub fn event(&self) -> Option<String> {
        self.json()["event"].as_str().map(str::to_owned)
    }
}

#[derive(Default)]
struct Shared {
    script: VecDeque<Answer>,
    fallback: Option<Answer>,
    requests: Vec<Request>,
}

/// The running receiver; stops when dropped.
pub struct WebhookReceiver {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    accept: JoinHandle<()>,
}

impl WebhookReceiver {
    /// Listens on 127.0.0.1:0; answers 200 until told otherwise.
    pub async fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        WebhookReceiver {
            port,
            shared,
            accept,
        }
    }

    /// `http://127.0.0.1:<port>/hook/<secret>` (the path stands in for a webhook token).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook/s3cr3t-token", self.port)
    }

    /// Answers every later request this way (after the script).
    pub fn set(&self, answer: Answer) {
        self.lock().fallback = Some(answer);
    }

    /// Answers the next request this way.
    pub fn push(&self, answer: Answer) {
        self.lock().script.push_back(answer);
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// Requests whose generic-format `event` is `event`.
    pub fn count_event(&self, event: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.event().as_deref() == Some(event))
            .count()
    }

    /// Waits until at least `n` requests arrived; panics after [`PATIENCE`].
    pub async fn wait_requests(&self, n: usize) -> Vec<Request> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "webhook receiver got {} of {n} requests",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A URL on a port nothing listens on (bound, then closed): connections are refused.
pub async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/hook")
}

async fn accept_loop(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    let mut conns = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        conns.spawn(serve(stream, shared.clone()));
    }
}

async fn serve(stream: TcpStream, shared: Arc<Mutex<Shared>>) {
    let mut reader = BufReader::new(stream);
    let Some(request) = read_request(&mut reader).await else {
        return;
    };
    let answer = {
        let mut shared = shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.requests.push(request);
        let fallback = shared.fallback.unwrap_or(Answer::Status(200));
        shared.script.pop_front().unwrap_or(fallback)
    };
    match answer {
        Answer::Hang => {
            // Hold the connection until the client closes it.
            let mut sink = [0u8; 256];
            while let Ok(n) = reader.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        }
        Answer::Status(code) => {
            let head =
                format!("HTTP/1.1 {code} Status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = reader.get_mut().write_all(head.as_bytes()).await;
            let _ = reader.get_mut().shutdown().await;
        }
    }
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).await.ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: std::time::Instant::now(),
    })
}
