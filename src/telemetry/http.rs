//! OTLP/HTTP's client, built by codexd rather than by opentelemetry-otlp: reqwest's blocking
//! client (the SDK exports from its own threads) with rustls on ring, the exporter's roots
//! and client certificate for `https://`, and a note of why the last request failed, which
//! the exporter itself reduces to "network error".
//!
//! | endpoint   | TLS                                                        |
//! |------------|------------------------------------------------------------|
//! | `http://`  | none                                                       |
//! | `https://` | [`super::tls::rustls_config`]: system roots + CA file, client certificate if set |

use std::sync::PoisonError;
use std::time::Duration;

use async_trait::async_trait;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

use super::swap::FailureNote;
use super::tls::{self, Tls};

/// reqwest's blocking client, noting the cause of each failed request.
#[derive(Debug)]
pub(super) struct NotingClient {
    client: reqwest::blocking::Client,
    note: FailureNote,
}

impl NotingClient {
    /// The client for one exporter: `timeout` per request, TLS when `tls` is set. Built on a
    /// thread of its own: reqwest's blocking client must not be built inside a tokio runtime.
    pub(super) fn build(timeout: Duration, tls: Option<&Tls>) -> Result<Self, String> {
        let config = tls
            .map(|tls| tls::rustls_config(tls, tls::roots(tls)))
            .transpose()?;
        let built = std::thread::Builder::new()
            .name("otlp-http-client".to_owned())
            .spawn(move || {
                let builder = reqwest::blocking::Client::builder().timeout(timeout);
                let builder = match config {
                    Some(config) => builder.tls_backend_preconfigured(config),
                    None => builder,
                };
                builder.build()
            })
            .map_err(|e| format!("cannot start a thread for the HTTP client: {e}"))?
            .join()
            .map_err(|_| "building the HTTP client panicked".to_owned())?;
        let client = built.map_err(|e| describe(&e))?;
        Ok(NotingClient {
            client,
            note: FailureNote::default(),
        })
    }

    /// Where the cause of the last failed request is kept.
    pub(super) fn note(&self) -> FailureNote {
        self.note.clone()
    }
}

#[async_trait]
impl HttpClient for NotingClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let result = self.client.send_bytes(request).await;
        if let Err(error) = &result {
            let cause = describe(error.as_ref());
            *self.note.lock().unwrap_or_else(PoisonError::into_inner) = Some(cause);
        }
        result
    }
}

/// `error` and its causes, `: `-separated (the TLS reason is a few causes down), e.g.
/// `error sending request for url (…): client error (Connect): invalid peer certificate:
/// UnknownIssuer`.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
