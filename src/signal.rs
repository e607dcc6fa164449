//! Unix signals as daemon events: SIGTERM/SIGINT ask for a graceful shutdown (a second one
//! exits at once), SIGHUP asks for a config reload.

use futures::StreamExt;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::Signals;
use tokio::sync::mpsc;

/// What a signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGTERM or SIGINT: stop gracefully within the grace period.
    Shutdown,
    /// SIGHUP: re-read and apply the config.
    Reload,
}

/// Listens for signals until the returned receiver is dropped. The first SIGTERM/SIGINT
/// becomes [`Event::Shutdown`]; a second one exits the process immediately with
/// `128 + signal` (130 for SIGINT, 143 for SIGTERM).
pub fn listen() -> std::io::Result<mpsc::Receiver<Event>> {
    let mut signals = Signals::new([SIGHUP, SIGTERM, SIGINT])?;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut shutting_down = false;
        while let Some(signal) = signals.next().await {
            let event = match signal {
                SIGHUP => Event::Reload,
                _ if shutting_down => {
                    tracing::warn!(signal, "second shutdown signal: exiting immediately");
                    std::process::exit(128 + signal);
                }
                _ => {
                    shutting_down = true;
                    tracing::info!(signal, "shutdown requested");
                    Event::Shutdown
                }
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
