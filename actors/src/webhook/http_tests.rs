//! The webhook's HTTP client against loopback servers written here (real sockets, real
//! time; the request timeouts are hang detectors, not speed assertions).

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;

/// Hang detector for one attempt.
const PATIENCE: Duration = Duration::from_secs(60);
/// hyper's largest read buffer (8 KiB + 100 × 4 KiB): the most one body chunk can hold.
const HYPER_MAX_CHUNK: usize = 8192 + 4096 * 100;
/// More than loopback's socket buffers hold on both sides, far less than the 2 GiB offered.
const BUFFERED_AT_MOST: u64 = 32 * 1024 * 1024;

#[test]
fn endpoints_parse_and_redact() {
    type Want = Result<(&'static str, u16, bool), &'static str>;
    let table: [(&str, Want); 8] = [
        (
            "https://discord.com/api/webhooks/123/s3cr3t-token",
            Ok(("https://discord.com", 443, true)),
        ),
        (
            "http://127.0.0.1:8080/hook?key=secret",
            Ok(("http://127.0.0.1:8080", 8080, false)),
        ),
        ("http://[::1]:9/x", Ok(("http://[::1]:9", 9, false))),
        (
            "http://example.test",
            Ok(("http://example.test", 80, false)),
        ),
        (
            "ftp://example.test/",
            Err("must be an http:// or https:// URL"),
        ),
        (
            "https://user:pw@example.test/",
            Err("credentials in the URL are not supported"),
        ),
        ("/relative", Err("must be an http:// or https:// URL")),
        ("http://", Err("not a valid URL: empty host")),
    ];
    for (url, want) in table {
        let got = Endpoint::parse(url).map(|e| {
            let port = e.url.port_or_known_default().unwrap_or(0);
            (e.redacted.clone(), port, e.url.scheme() == "https")
        });
        match (got, want) {
            (Ok((redacted, port, tls)), Ok((r, p, t))) => {
                assert_eq!((redacted.as_str(), port, tls), (r, p, t), "{url}");
                assert!(!format!("{:?}", Endpoint::parse(url).unwrap()).contains("secret"));
            }
            (Err(problem), Err(want)) => assert_eq!(problem, want, "{url}"),
            (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn the_client_builds_on_ring() {
    assert!(client().is_ok());
}

/// How a [`one_answer`] server answers after reading the request.
#[derive(Clone, Copy)]
enum Answer {
    /// 200 announcing a 2 GiB body, then bytes until the client goes away.
    Huge,
    /// 200 with neither length nor chunking (the body ends when the connection does),
    /// then bytes until the client goes away.
    Endless,
    /// A redirect, empty body.
    Redirect,
}

/// Serves one request on 127.0.0.1:0: the URL (its path stands in for a token) and the
/// task, which ends with the body bytes it managed to write.
async fn one_answer(answer: Answer) -> (Endpoint, JoinHandle<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}/hook/s3cr3t-token");
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut reader = BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.expect("request head");
            if let Some((_, value)) = line.to_ascii_lowercase().split_once("content-length:") {
                length = value.trim().parse().expect("length");
            }
            if line.trim().is_empty() {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.expect("request body");
        let mut stream = reader.into_inner();
        let head = match answer {
            Answer::Huge => "HTTP/1.1 200 OK\r\ncontent-length: 2147483648\r\n\r\n",
            Answer::Endless => "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n",
            Answer::Redirect => {
                "HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n"
            }
        };
        stream.write_all(head.as_bytes()).await.expect("head");
        if let Answer::Redirect = answer {
            return 0;
        }
        let chunk = vec![b'x'; 16 * 1024];
        let mut written = 0;
        while stream.write_all(&chunk).await.is_ok() {
            written += chunk.len() as u64;
        }
        written
    });
    (Endpoint::parse(&url).expect("url"), server)
}

#[tokio::test]
async fn a_huge_or_endless_answer_is_read_only_up_to_the_cap() {
    for answer in [Answer::Huge, Answer::Endless] {
        let (endpoint, server) = one_answer(answer).await;
        let client = client().expect("client");
        let attempt = post(&client, &endpoint, "{}", PATIENCE).await;
        assert_eq!(attempt, Attempt::Status(200));
        let written = tokio::time::timeout(PATIENCE, server)
            .await
            .expect("the server's writes fail once the client is gone")
            .expect("server");
        assert!(
            written < BUFFERED_AT_MOST,
            "the server wrote {written} bytes"
        );
    }
}

#[tokio::test]
async fn skimming_stops_within_a_chunk_of_the_cap() {
    let (endpoint, _server) = one_answer(Answer::Endless).await;
    let client = client().expect("client");
    let mut response = client
        .post(endpoint.url.clone())
        .send()
        .await
        .expect("response");
    let read = skim(&mut response, MAX_RESPONSE_BYTES).await.expect("body");
    assert!(
        (MAX_RESPONSE_BYTES..MAX_RESPONSE_BYTES + HYPER_MAX_CHUNK).contains(&read),
        "read {read} bytes"
    );
}

#[tokio::test]
async fn redirects_are_answers_not_followed() {
    let (endpoint, _server) = one_answer(Answer::Redirect).await;
    let attempt = post(&client().expect("client"), &endpoint, "{}", PATIENCE).await;
    assert_eq!(attempt, Attempt::Status(302));
}

#[tokio::test]
async fn connection_errors_do_not_quote_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/hook/s3cr3t-token?key=k3y");
    let endpoint = Endpoint::parse(&url).expect("url");
    let attempt = post(&client().expect("client"), &endpoint, "{}", PATIENCE).await;
    let Attempt::Connect(error) = &attempt else {
        panic!("{attempt:?}");
    };
    assert!(
        !error.contains("s3cr3t") && !error.contains("k3y"),
        "{error}"
    );
    assert!(error.contains("onnect"), "says what failed: {error}");
}
