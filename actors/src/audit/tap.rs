//! The live tap: every audit record, as it happens, for `codexd watch`. A tokio broadcast,
//! so publishing never waits for a watcher: one that falls behind by more than
//! [`TAP_CAPACITY`] records loses the oldest and is told how many ([`Tapped::Skipped`]).
//!
//! | a watcher …                 | [`Tap::next`] gives                    |
//! |-----------------------------|----------------------------------------|
//! | keeping up                  | [`Tapped::Record`], in order           |
//! | more than the capacity behind | [`Tapped::Skipped`] with the count, then the records still held |
//! | whose log is gone           | [`Tapped::Closed`]                     |

use std::sync::Arc;

use tokio::sync::broadcast;

use super::Record;

/// Records the tap holds for its slowest watcher.
pub const TAP_CAPACITY: usize = 1024;

/// The broadcast every handle of one log publishes on.
pub(super) fn channel() -> broadcast::Sender<Arc<Record>> {
    broadcast::channel(TAP_CAPACITY).0
}

/// One watcher's subscription; dropping it unsubscribes.
#[derive(Debug)]
pub struct Tap {
    receiver: broadcast::Receiver<Arc<Record>>,
}

/// What a watcher gets next.
#[derive(Debug, Clone)]
pub enum Tapped {
    /// The next record.
    Record(Arc<Record>),
    /// This many records were lost because the watcher fell behind.
    Skipped(u64),
    /// No handle of the log is left: nothing more will come.
    Closed,
}

impl Tap {
    pub(super) fn new(receiver: broadcast::Receiver<Arc<Record>>) -> Self {
        Self { receiver }
    }

    /// Waits for the next record (or the news that some were skipped).
    pub async fn next(&mut self) -> Tapped {
        match self.receiver.recv().await {
            Ok(record) => Tapped::Record(record),
            Err(broadcast::error::RecvError::Lagged(skipped)) => Tapped::Skipped(skipped),
            Err(broadcast::error::RecvError::Closed) => Tapped::Closed,
        }
    }
}
