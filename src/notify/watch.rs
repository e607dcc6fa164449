//! The watch task: polls the Host for the tree's status; each answer feeds the watchdog,
//! updates STATUS when its line changed and sends the first READY when every agent is up
//! (or the ready timeout is up). A Host that does not answer gets no WATCHDOG=1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use codexd_actors::host::Host;
use tokio::time::Instant;

use super::{Notifier, Settings, Summary, period};

pub(super) async fn run(
    settings: Settings,
    notifier: Notifier,
    host: Host,
    ready: Arc<AtomicBool>,
) {
    let started = Instant::now();
    let mut last_line = String::new();
    let mut is_ready = false;
    loop {
        let asked = Instant::now();
        match host.status().await {
            Ok(status) => {
                let summary = Summary::of(&status);
                let mut lines = Vec::new();
                if settings.watchdog.is_some() {
                    lines.push("WATCHDOG=1".to_owned());
                }
                let timed_out = started.elapsed() >= settings.ready_timeout;
                let becomes_ready = !is_ready && (summary.ready || timed_out);
                if becomes_ready {
                    is_ready = true;
                    lines.push("READY=1".to_owned());
                    if summary.ready {
                        tracing::info!(status = %summary.line, "ready: every agent is up");
                    } else {
                        tracing::warn!(status = %summary.line, timeout_s = settings.ready_timeout.as_secs_f64(), "ready although not every agent is up");
                    }
                }
                // READY always says why (all up, or what is not).
                if summary.line != last_line || becomes_ready {
                    lines.push(format!("STATUS={}", summary.line));
                    last_line = summary.line;
                }
                notifier.send(&lines);
                ready.store(is_ready, Ordering::Release);
            }
            Err(error) => {
                tracing::warn!(error = %error, "the host did not answer a status request; no watchdog ping");
            }
        }
        tokio::time::sleep_until(asked + period(&settings, is_ready)).await;
    }
}
