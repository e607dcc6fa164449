//! Status collection: a supervisor snapshots its own records, then asks each running
//! child for its subtree from a separate task, so a hung child delays only the answer,
//! never the supervisor's mailbox.

use std::time::Duration;

use ractor::RpcReplyPort;

use crate::child::{ChildHandle, ChildState, ChildStatus, ControlMsg, Report};

/// Fills in each running child's subtree, giving each child `budget` to answer (a child
/// that does not answer in time is reported without its subtree), then answers `reply`.
pub(crate) fn collect_and_reply(
    records: Vec<(ChildStatus, Option<ChildHandle>)>,
    budget: Duration,
    reply: RpcReplyPort<Report>,
) {
    tokio::spawn(async move {
        let filled = futures::future::join_all(
            records
                .into_iter()
                .map(|(status, handle)| subtree(status, handle, budget)),
        )
        .await;
        let _ = reply.send(Report {
            detail: None,
            children: filled,
        });
    });
}

async fn subtree(
    mut status: ChildStatus,
    handle: Option<ChildHandle>,
    budget: Duration,
) -> ChildStatus {
    let Some(handle) = handle.filter(|_| status.state == ChildState::Running) else {
        return status;
    };
    let (tx, rx) = ractor::concurrency::oneshot();
    if handle.send(ControlMsg::Status {
        budget: budget / 2,
        reply: tx.into(),
    }) {
        if let Ok(Ok(report)) = tokio::time::timeout(budget, rx).await {
            status.children = report.children;
            status.detail = report.detail;
        }
    }
    status
}
