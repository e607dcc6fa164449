//! One HTTP POST of an alert body, on reqwest: HTTP/1.1, no redirects followed, rustls on
//! the ring provider with the system's roots for `https://`, and the proxy the environment
//! names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read when the client is
//! built). The whole attempt — connect, TLS, request, response — is bounded by the request
//! timeout; the response body is read chunk by chunk and dropped, and reading stops once
//! [`MAX_RESPONSE_BYTES`] have arrived (the connection is closed with the rest unread).
//!
//! Webhook URLs carry secrets (Discord's and Slack's tokens are in the path), so an
//! [`Endpoint`] shows only `scheme://host[:port]` in logs, spans and status, and errors
//! never quote the URL.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Response, Url};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::policy::Attempt;
use crate::redact;

/// How much of a response body is read before the connection is dropped.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A parsed webhook URL.
#[derive(Clone)]
pub struct Endpoint {
    url: Url,
    redacted: String,
}

impl Endpoint {
    /// Parses an `http://` or `https://` URL with a host; the problem otherwise.
    pub fn parse(url: &str) -> Result<Self, String> {
        const SCHEME: &str = "must be an http:// or https:// URL";
        let url = Url::parse(url).map_err(|error| match error {
            url::ParseError::RelativeUrlWithoutBase => SCHEME.to_owned(),
            error => format!("not a valid URL: {error}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SCHEME.to_owned());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the URL has no host".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials in the URL are not supported".to_owned());
        }
        let redacted = redact::origin(url.as_str());
        Ok(Self { url, redacted })
    }

    /// `scheme://host[:port]`: safe to log.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.redacted)
    }
}

/// The webhook's client (see the module doc); the problem if it cannot be built.
pub fn client() -> Result<Client, String> {
    Client::builder()
        .tls_backend_preconfigured(tls_config()?)
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("codexd/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(describe)
}

/// A verifying TLS config: rustls on the ring provider with the system's roots, HTTP/1.1.
fn tls_config() -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// POSTs `body` as JSON to `endpoint`, giving up after `timeout`.
pub async fn post(client: &Client, endpoint: &Endpoint, body: &str, timeout: Duration) -> Attempt {
    let attempt = async {
        let request = client
            .post(endpoint.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) if error.is_builder() => return Attempt::Invalid(describe(error)),
            Err(error) => return Attempt::Connect(describe(error)),
        };
        match skim(&mut response, MAX_RESPONSE_BYTES).await {
            Ok(_) => Attempt::Status(response.status().as_u16()),
            Err(error) => Attempt::Connect(format!("reading the response: {}", describe(error))),
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Attempt::Timeout)
}

/// Reads and drops `response`'s body until it ends or `cap` bytes arrived; the bytes read
/// (at most one chunk, itself bounded by hyper's read buffer, past `cap`).
async fn skim(response: &mut Response, cap: usize) -> reqwest::Result<usize> {
    let mut read = 0;
    while read < cap {
        match response.chunk().await? {
            Some(chunk) => read += chunk.len(),
            None => break,
        }
    }
    Ok(read)
}

/// `error` and its causes on one line, without the URL.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    redact::text(&text)
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
