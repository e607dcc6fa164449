//! The `audit` service: a leaf under the Host whose `codexd status` detail is the audit
//! log's counters ([`super::AuditStats`]); the writer itself is a thread, not this actor.

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};

use super::Audit;
use crate::child::{ChildFactory, ChildHandle, ControlMsg, Report, spawn_linked};

/// Starts the `audit` service on the daemon's [`Audit`] handle.
pub struct AuditService {
    audit: Audit,
}

impl AuditService {
    /// A service reporting `audit`'s counters.
    pub fn new(audit: Audit) -> Self {
        Self { audit }
    }
}

impl ChildFactory for AuditService {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        spawn_linked(AuditStatus, self.audit.clone(), supervisor)
    }
}

/// The actor: answers status with the counters, faults like any leaf.
struct AuditStatus;

impl Actor for AuditStatus {
    type Msg = ControlMsg;
    type State = Audit;
    type Arguments = Audit;

    async fn pre_start(
        &self,
        _myself: ActorRef<ControlMsg>,
        audit: Audit,
    ) -> Result<Audit, ActorProcessingErr> {
        Ok(audit)
    }

    async fn handle(
        &self,
        _myself: ActorRef<ControlMsg>,
        msg: ControlMsg,
        audit: &mut Audit,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ControlMsg::Status { reply, .. } => {
                let _ = reply.send(Report::leaf(&audit.stats()));
                Ok(())
            }
            other => crate::fault::handle_leaf(other, "audit").await,
        }
    }
}
