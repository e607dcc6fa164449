//! One HTTP POST of an alert body: hyper's HTTP/1.1 client over tokio TCP, with rustls (ring
//! provider, the system's roots) for `https://`. The whole attempt — connect, TLS, request,
//! response body — is bounded by the request timeout.
//!
//! Webhook URLs carry secrets (Discord's and Slack's tokens are in the path), so an
//! [`Endpoint`] shows only `scheme://host[:port]` in logs, spans and status.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::policy::Attempt;

/// A parsed webhook URL.
#[derive(Clone)]
pub struct Endpoint {
    uri: Uri,
    host: String,
    port: u16,
    tls: bool,
    redacted: String,
}

impl Endpoint {
    /// Parses an `http://` or `https://` URL with a host; the problem otherwise.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| format!("not a valid URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("must be an http:// or https:// URL".to_owned()),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| "the URL has no host".to_owned())?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err("credentials in the URL are not supported".to_owned());
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let redacted = match uri.port_u16() {
            Some(port) => format!(
                "{}://{}:{port}",
                uri.scheme_str().unwrap_or(""),
                uri.host().unwrap_or("")
            ),
            None => format!(
                "{}://{}",
                uri.scheme_str().unwrap_or(""),
                uri.host().unwrap_or("")
            ),
        };
        Ok(Self {
            uri,
            host,
            port,
            tls,
            redacted,
        })
    }

    /// `scheme://host[:port]`: safe to log.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// True for `https://`.
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.redacted)
    }
}

/// A verifying TLS connector: rustls on the ring provider with the system's roots.
pub fn tls_connector() -> Result<TlsConnector, String> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// POSTs `body` as JSON to `endpoint`, giving up after `timeout`.
pub async fn post(
    endpoint: &Endpoint,
    tls: Option<&TlsConnector>,
    body: &str,
    timeout: Duration,
) -> Attempt {
    match tokio::time::timeout(timeout, attempt(endpoint, tls, body)).await {
        Ok(outcome) => outcome,
        Err(_) => Attempt::Timeout,
    }
}

async fn attempt(endpoint: &Endpoint, tls: Option<&TlsConnector>, body: &str) -> Attempt {
    let tcp = match TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await {
        Ok(tcp) => tcp,
        Err(error) => return Attempt::Connect(error.to_string()),
    };
    let _ = tcp.set_nodelay(true);
    if !endpoint.tls {
        return exchange(tcp, endpoint, body).await;
    }
    let Some(connector) = tls else {
        return Attempt::Invalid("no TLS configuration".to_owned());
    };
    let name = match ServerName::try_from(endpoint.host.clone()) {
        Ok(name) => name,
        Err(error) => return Attempt::Invalid(format!("bad TLS server name: {error}")),
    };
    match connector.connect(name, tcp).await {
        Ok(stream) => exchange(stream, endpoint, body).await,
        Err(error) => Attempt::Connect(format!("TLS: {error}")),
    }
}

/// One request on a fresh connection; the response body is read and discarded.
async fn exchange<S>(stream: S, endpoint: &Endpoint, body: &str) -> Attempt
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(pair) => pair,
        Err(error) => return Attempt::Connect(error.to_string()),
    };
    let driver = tokio::spawn(conn);
    let path = endpoint
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let host = match endpoint.uri.authority() {
        Some(authority) => authority.as_str().to_owned(),
        None => endpoint.host.clone(),
    };
    let request = http::Request::post(path)
        .header(http::header::HOST, host)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("codexd/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body.to_owned())));
    let request = match request {
        Ok(request) => request,
        Err(error) => return Attempt::Invalid(error.to_string()),
    };
    let outcome = match sender.send_request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.into_body().collect().await {
                Ok(_) => Attempt::Status(status),
                Err(error) => Attempt::Connect(format!("reading the response: {error}")),
            }
        }
        Err(error) => Attempt::Connect(error.to_string()),
    };
    driver.abort();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_redact() {
        type Want = Result<(&'static str, u16, bool), &'static str>;
        let table: [(&str, Want); 7] = [
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
        ];
        for (url, want) in table {
            let got = Endpoint::parse(url).map(|e| (e.redacted.clone(), e.port, e.tls));
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
    fn the_tls_connector_builds_on_ring() {
        assert!(tls_connector().is_ok());
    }
}
