//! The lossless path from an agent's IRC socket to its journal: mentions and DMs leave the
//! `irc` actor on an [`IntakePath`] of their own (the broadcast of [`super::IrcEvent`]s may
//! lag and skip; this path never does), and the reader holds one place in a bounded window
//! for every line from the moment it is read until it is handled, or, for a mention or DM,
//! until it is journaled (or refused). When the window is full the reader stops reading:
//! TCP pushes back on the server. A slow disk slows reading; nothing is discarded.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::InboundMessage;

/// Lines that may be between the socket and the journal at once.
pub const INBOUND_WINDOW: usize = 1024;

/// A line's place in the window; given back when dropped.
pub type Hold = OwnedSemaphorePermit;

/// The sending side: the reader's window and where mentions and DMs go. Created once per
/// agent; outlives restarts of the `irc` actor and of the runner.
#[derive(Debug, Clone)]
pub struct IntakePath {
    window: Arc<Semaphore>,
    sender: mpsc::UnboundedSender<Addressed>,
}

/// A mention or DM on its way to the journal, holding its line's place in the window.
#[derive(Debug)]
pub struct Addressed {
    /// The message.
    pub message: InboundMessage,
    /// Released once the message is journaled or refused.
    pub hold: Option<Hold>,
}

impl IntakePath {
    /// A path with a window of `window` lines, and its receiving end (the runner's intake).
    pub fn new(window: usize) -> (Self, mpsc::UnboundedReceiver<Addressed>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let window = Arc::new(Semaphore::new(window.max(1)));
        (Self { window, sender }, receiver)
    }

    /// Waits for a place in the window for one more line.
    pub(super) async fn hold(&self) -> Hold {
        self.window
            .clone()
            .acquire_owned()
            .await
            .expect("the window is never closed")
    }

    /// Lines between the socket and the journal now.
    pub fn in_flight(&self, window: usize) -> usize {
        window.saturating_sub(self.window.available_permits())
    }

    /// Hands a mention or DM to the intake; false when no intake listens (the agent has
    /// no runner, or its journal could not be opened).
    pub(super) fn send(&self, message: InboundMessage, hold: Option<Hold>) -> bool {
        self.sender.send(Addressed { message, hold }).is_ok()
    }
}
