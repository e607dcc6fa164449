//! A late-bound reference to a sibling actor. A restart gives an actor a new `ActorRef`, so
//! siblings never cache one: the running instance registers itself in its [`Link`] on start
//! and clears it on stop, and callers look it up at send time.

use std::sync::{Arc, RwLock};

use ractor::{ActorRef, Message};

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

    /// Unregisters `actor` (called from its `post_stop`); a newer instance stays registered.
    pub fn clear(&self, actor: &ActorRef<M>) {
        if let Ok(mut slot) = self.slot.write() {
            if slot.as_ref().is_some_and(|a| a.get_id() == actor.get_id()) {
                *slot = None;
            }
        }
    }
}
