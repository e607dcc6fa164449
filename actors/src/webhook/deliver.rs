//! One alert's HTTP delivery, run as a task (never in the actor's handler): attempts with
//! jittered exponential backoff per [`policy`](super::policy), inside one
//! `codexd.webhook.deliver` span that follows the alert's trace.
//!
//! | span field         | value                                                   |
//! |--------------------|---------------------------------------------------------|
//! | `alert.event`      | `agent_error`, `circuit_open`, …                        |
//! | `server.address`   | `scheme://host[:port]` of the URL (never path or query) |
//! | `attempt`          | attempts made                                           |
//! | `http.status_code` | the last attempt's status, if it got an answer          |
//! | `outcome`          | `delivered`, `http_<code>`, `timeout`, `connect`, …     |
//!
//! Each failed attempt that is retried is a log event inside the span (`webhook attempt
//! failed; retrying`, with `attempt`, `outcome`, `retry_in_s`).
//!
//! While the `blackhole` fault is on, an attempt waits out the request timeout and ends as
//! [`Attempt::Timeout`], as if the server never answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::Instrument;

use super::http::{self, Endpoint};
use super::policy::{self, Attempt};
use crate::trace::TraceCtx;

/// What a delivery needs besides the alert; shared by every delivery of one actor instance.
#[derive(Clone)]
pub(super) struct Courier {
    /// Where alerts go.
    pub(super) endpoint: Endpoint,
    /// The HTTP client, or why it could not be built (every attempt then fails with it).
    pub(super) client: Result<reqwest::Client, String>,
    /// Bound on one attempt.
    pub(super) timeout: Duration,
    /// Attempts per alert (at least 1).
    pub(super) attempts: u32,
    /// First retry's backoff.
    pub(super) backoff_base: Duration,
    /// Longest backoff.
    pub(super) backoff_cap: Duration,
    /// The `blackhole` fault.
    pub(super) blackhole: Arc<AtomicBool>,
}

/// One queued HTTP delivery.
#[derive(Debug, Clone)]
pub(super) struct Job {
    /// `alert.event`'s name.
    pub(super) event: &'static str,
    /// The request body.
    pub(super) body: String,
    /// The alert's trace.
    pub(super) trace: TraceCtx,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The alert's event name.
    pub event: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's outcome.
    pub last: Attempt,
}

impl Delivery {
    /// True when the server took it.
    pub fn delivered(&self) -> bool {
        policy::verdict(&self.last) == policy::Verdict::Delivered
    }
}

impl std::fmt::Debug for Courier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Courier")
            .field("endpoint", &self.endpoint)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Courier {
    /// Delivers `job`: attempts until delivered, a permanent failure, or `attempts` ran out.
    pub(super) async fn deliver(&self, job: Job) -> Delivery {
        let span = job.trace.follow(tracing::info_span!(
            "codexd.webhook.deliver",
            alert.event = job.event,
            server.address = self.endpoint.redacted(),
            attempt = tracing::field::Empty,
            http.status_code = tracing::field::Empty,
            outcome = tracing::field::Empty,
        ));
        self.attempts(job).instrument(span).await
    }

    async fn attempts(&self, job: Job) -> Delivery {
        let span = tracing::Span::current();
        let mut made = 1;
        loop {
            let last = self.attempt(&job.body).await;
            let Some(next) = policy::next_attempt(&last, made, self.attempts) else {
                // Recorded once: a field recorded twice is exported twice.
                span.record("attempt", made);
                if let Attempt::Status(code) = last {
                    span.record("http.status_code", code);
                }
                span.record("outcome", last.name().as_str());
                return Delivery {
                    event: job.event,
                    attempts: made,
                    last,
                };
            };
            let wait = policy::backoff(made, self.backoff_base, self.backoff_cap, fastrand::f64());
            tracing::info!(
                alert.event = job.event,
                attempt = made,
                outcome = %last.describe(),
                retry_in_s = wait.as_secs_f64(),
                "webhook attempt failed; retrying"
            );
            tokio::time::sleep(wait).await;
            made = next;
        }
    }

    async fn attempt(&self, body: &str) -> Attempt {
        if self.blackhole.load(Ordering::Relaxed) {
            tokio::time::sleep(self.timeout).await;
            return Attempt::Timeout;
        }
        match &self.client {
            Ok(client) => http::post(client, &self.endpoint, body, self.timeout).await,
            Err(problem) => Attempt::Invalid(problem.clone()),
        }
    }
}
