//! The connected clients and the whispers waiting for one. It belongs to the agent, not to
//! one instance of the `socket` actor, so a whisper queued before a restart is delivered
//! after it. Culture's rule: a whisper goes to every connected client; with none
//! connected it waits, and the next client to connect gets every waiting whisper before
//! its first answer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::mpsc;

use super::conn::Out;

/// Whispers kept while no client is connected; beyond this the oldest is dropped (logged).
const MAX_QUEUED_WHISPERS: usize = 1000;

/// Clients, waiting whispers and counters.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    inner: Mutex<Inner>,
    requests: AtomicU64,
    failed: AtomicU64,
    connections: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    clients: BTreeMap<u64, mpsc::Sender<Out>>,
    queued: VecDeque<Vec<u8>>,
}

/// Counters for `codexd status`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HubStats {
    /// Clients connected now.
    pub(crate) clients: usize,
    /// Connections accepted since the agent started.
    pub(crate) connections: u64,
    /// Requests answered.
    pub(crate) requests: u64,
    /// Of those, answered `ok: false`.
    pub(crate) failed: u64,
    /// Whispers waiting for a client.
    pub(crate) whispers_queued: usize,
}

impl Hub {
    /// Registers a client whose outgoing lines go to `lines`; returns its id and the
    /// whispers that were waiting (now its to deliver first).
    pub(crate) fn connect(&self, lines: mpsc::Sender<Out>) -> (u64, Vec<Vec<u8>>) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.clients.insert(id, lines);
        (id, inner.queued.drain(..).collect())
    }

    /// Forgets a client.
    pub(crate) fn disconnect(&self, id: u64) {
        self.lock().clients.remove(&id);
    }

    /// Sends a whisper line to every client that can take it now; when none can, queues
    /// it. Returns how many clients got it.
    pub(crate) fn whisper(&self, line: Vec<u8>) -> usize {
        let mut inner = self.lock();
        let mut delivered = 0;
        inner
            .clients
            .retain(|_, client| match client.try_send(Out::Line(line.clone())) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                // A client that does not read is skipped, not dropped: its reads catch up.
                Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        if delivered == 0 {
            if inner.queued.len() == MAX_QUEUED_WHISPERS {
                inner.queued.pop_front();
                tracing::warn!(
                    limit = MAX_QUEUED_WHISPERS,
                    "whisper queue full; dropped the oldest whisper"
                );
            }
            inner.queued.push_back(line);
        }
        delivered
    }

    /// Counts one answered request.
    pub(crate) fn answered(&self, ok: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters.
    pub(crate) fn stats(&self) -> HubStats {
        let inner = self.lock();
        HubStats {
            clients: inner.clients.len(),
            connections: self.connections.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            whispers_queued: inner.queued.len(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave it inconsistent (single inserts and
        // removes), so a poisoned lock is used as is.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whispers_wait_for_the_next_client_then_reach_every_client() {
        let hub = Hub::default();
        assert_eq!(hub.whisper(b"w1\n".to_vec()), 0);
        assert_eq!(hub.whisper(b"w2\n".to_vec()), 0);
        assert_eq!(hub.stats().whispers_queued, 2);

        let (tx_a, mut rx_a) = mpsc::channel(4);
        let (a, waiting) = hub.connect(tx_a);
        assert_eq!(waiting, [b"w1\n".to_vec(), b"w2\n".to_vec()]);
        let (tx_b, mut rx_b) = mpsc::channel(4);
        let (_b, waiting) = hub.connect(tx_b);
        assert!(waiting.is_empty(), "only the first client gets the backlog");

        assert_eq!(hub.whisper(b"w3\n".to_vec()), 2);
        for rx in [&mut rx_a, &mut rx_b] {
            assert!(matches!(rx.try_recv(), Ok(Out::Line(l)) if l == b"w3\n"));
        }

        hub.disconnect(a);
        drop(rx_b); // b went away without saying so
        assert_eq!(hub.whisper(b"w4\n".to_vec()), 0);
        assert_eq!(hub.stats().clients, 0, "closed clients are forgotten");
        assert_eq!(hub.stats().whispers_queued, 1, "undelivered whispers wait");
    }

    #[test]
    fn a_client_that_does_not_read_is_skipped_and_the_whisper_kept() {
        let hub = Hub::default();
        let (tx, _rx) = mpsc::channel(1);
        hub.connect(tx);
        assert_eq!(hub.whisper(b"fills\n".to_vec()), 1);
        assert_eq!(hub.whisper(b"full\n".to_vec()), 0);
        assert_eq!(hub.stats().whispers_queued, 1);
        assert_eq!(hub.stats().clients, 1);
    }
}
