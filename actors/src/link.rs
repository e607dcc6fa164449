//! A late-bound reference to a sibling actor. A restart gives an actor a new `ActorRef`, so
//! siblings never cache one: the running instance registers itself in its [`Link`] on start
//! and clears it on stop, and callers look it up at send time.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};

/// Shared slot holding the current instance of one actor, if it runs.
#[derive(Debug)]
pub struct Link<M: Message> {
    slot: Arc<RwLock<Option<ActorRef<M>>>>,
}

impl<M: Message> Clone for Link<M> {
    fn clone(&self) -> Self {
        Self {
            slot: Arc::clone(&self.slot),
        }
    }
}

impl<M: Message> Default for Link<M> {
    fn default() -> Self {
        Self {
            slot: Arc::new(RwLock::new(None)),
        }
    }
}

impl<M: Message> Link<M> {
    /// The running instance, if any.
    pub fn get(&self) -> Option<ActorRef<M>> {
        self.slot.read().ok().and_then(|slot| slot.clone())
    }

    /// Registers the running instance (called from its `pre_start`).
    pub fn set(&self, actor: ActorRef<M>) {
        if let Ok(mut slot) = self.slot.write() {
            *slot = Some(actor);
        }
    }

    /// Asks the running instance and waits up to `timeout` for the answer.
    pub async fn call<T: Send + 'static>(
        &self,
        make: impl FnOnce(RpcReplyPort<T>) -> M,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let actor = self.get().ok_or(CallError::NotRunning)?;
        match actor.call(make, Some(timeout)).await {
            Ok(CallResult::Success(value)) => Ok(value),
            Ok(CallResult::Timeout) => Err(CallError::Timeout(timeout)),
            Ok(CallResult::SenderError) | Err(_) => Err(CallError::NotRunning),
        }
    }

    /// Unregisters `actor` (called from its `post_stop`); a newer instance stays registered.
    pub fn clear(&self, actor: &ActorRef<M>) {
        if let Ok(mut slot) = self.slot.write() {
            if slot.as_ref().is_some_and(|a| a.get_id() == actor.get_id()) {
                *slot = None;
            }
        }
    }
}

/// Why [`Link::call`] got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// No instance runs (restarting, circuit open), or it stopped before answering.
    NotRunning,
    /// It did not answer within this long.
    Timeout(Duration),
}
