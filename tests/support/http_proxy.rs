//! A loopback HTTP forward proxy: a hand-written server on a tokio `TcpListener` at
//! 127.0.0.1:0 that takes absolute-form requests (`POST http://host:port/path HTTP/1.1`),
//! records each target, sends the request on to it in origin form and copies the answer
//! back. One request per connection, plain `http://` targets only (no `CONNECT`).

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The running proxy; stops when dropped.
pub struct HttpProxy {
    port: u16,
    targets: Arc<Mutex<Vec<String>>>,
    accept: JoinHandle<()>,
}

impl HttpProxy {
    /// Listens on 127.0.0.1:0.
    pub async fn start() -> HttpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let shared = targets.clone();
        let accept = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                conns.spawn(serve(stream, shared.clone()));
            }
        });
        HttpProxy {
            port,
            targets,
            accept,
        }
    }

    /// `http://127.0.0.1:<port>`, for `HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The request targets received so far, as sent (absolute form).
    pub fn targets(&self) -> Vec<String> {
        self.targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(client: TcpStream, targets: Arc<Mutex<Vec<String>>>) {
    let mut client = BufReader::new(client);
    let mut line = String::new();
    if client.read_line(&mut line).await.is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    targets
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(target.to_owned());
    let Some(rest) = target.strip_prefix("http://") else {
        let _ = client
            .get_mut()
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let Ok(mut upstream) = TcpStream::connect(authority).await else {
        let _ = client
            .get_mut()
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let mut head = format!("{method} {path} {version}\r\n");
    let mut length = 0;
    loop {
        let mut header = String::new();
        if client.read_line(&mut header).await.is_err() {
            return;
        }
        let lower = header.to_ascii_lowercase();
        if header.trim().is_empty() {
            head.push_str("connection: close\r\n\r\n");
            break;
        }
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("proxy-") && !lower.starts_with("connection:") {
            head.push_str(&header);
        }
    }
    let mut body = vec![0u8; length];
    if client.read_exact(&mut body).await.is_err() {
        return;
    }
    if upstream.write_all(head.as_bytes()).await.is_err()
        || upstream.write_all(&body).await.is_err()
    {
        return;
    }
    let _ = tokio::io::copy(&mut upstream, client.get_mut()).await;
    let _ = client.get_mut().shutdown().await;
}
