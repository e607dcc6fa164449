//! Fault injection, shared by every actor: `panic`, `error` and `hang` behave the same in
//! any child, so an operator can break any part of the tree on purpose.

use ractor::ActorProcessingErr;
use tracing::Instrument;

use crate::child::{ControlError, ControlMsg, FaultKind, Report};

/// Makes the calling actor's handler fail the way `kind` says. Call it from `handle`
/// after answering the request: a panic and an error stop the actor (its supervisor
/// restarts it); a hang blocks the handler, so health pings go unanswered.
pub async fn inject(kind: FaultKind, who: &str) -> Result<(), ActorProcessingErr> {
    match kind {
        FaultKind::Panic => panic!("fault injected into {who}: panic"),
        FaultKind::Error => Err(format!("fault injected into {who}: error").into()),
        FaultKind::Disconnect | FaultKind::Kill | FaultKind::Blackhole => Ok(()),
        FaultKind::Hang { duration } => {
            tracing::warn!(
                actor = who,
                hang_s = duration.as_secs_f64(),
                "fault injected: handler hangs"
            );
            tokio::time::sleep(duration).await;
            Ok(())
        }
    }
}

/// Answers a [`ControlMsg`] for an actor with no children of its own.
pub async fn handle_leaf(msg: ControlMsg, who: &str) -> Result<(), ActorProcessingErr> {
    match msg {
        ControlMsg::Ping(reply) => {
            let _ = reply.send(());
        }
        ControlMsg::Status { reply, .. } => {
            let _ = reply.send(Report::default());
        }
        ControlMsg::Fault {
            path,
            kind,
            reply,
            trace,
        } => match path.first() {
            None if matches!(
                kind,
                FaultKind::Disconnect | FaultKind::Kill | FaultKind::Blackhole
            ) =>
            {
                let _ = reply.send(Err(ControlError::UnsupportedFault {
                    child: who.to_owned(),
                    fault: kind.to_string(),
                }));
            }
            None => {
                let _ = reply.send(Ok(()));
                let span = trace
                    .follow(tracing::info_span!("supervisor.fault", actor = who, fault = %kind));
                return inject(kind, who).instrument(span).await;
            }
            Some(name) => {
                let _ = reply.send(Err(ControlError::NoSuchChild {
                    name: name.clone(),
                    known: String::new(),
                }));
            }
        },
        ControlMsg::Reset { path, reply, .. } => {
            let result = match path.first() {
                None => Ok(()),
                Some(name) => Err(ControlError::NoSuchChild {
                    name: name.clone(),
                    known: String::new(),
                }),
            };
            let _ = reply.send(result);
        }
    }
    Ok(())
}
