//! A child process group killed on drop: the guard of a subprocess started in its own
//! process group (`process_group(0)`) whose whole tree must go when the caller gives up
//! (the overseer's evaluator, git).

use rustix::process::{Pid, Signal, kill_process_group};

/// SIGKILLs the child's process group when told to, or when dropped while still armed (the
/// child is unreaped then, so its pid, the group id, cannot have been reused).
pub(crate) struct GroupKill {
    group: Option<u32>,
    what: &'static str,
}

impl GroupKill {
    /// Arms the guard for the group led by `pid` (`Child::id()`); `what` names it in logs.
    pub(crate) fn new(pid: Option<u32>, what: &'static str) -> Self {
        Self { group: pid, what }
    }

    /// SIGKILLs the group now (nothing when disarmed or already reaped).
    pub(crate) fn kill(&self) {
        let Some(group) = self
            .group
            .and_then(|pid| i32::try_from(pid).ok())
            .and_then(Pid::from_raw)
        else {
            return;
        };
        if let Err(error) = kill_process_group(group, Signal::KILL) {
            tracing::debug!(error = %error, what = self.what, "killing a process group failed");
        }
    }

    /// The child was reaped: its pid may be reused, so never kill it.
    pub(crate) fn disarm(mut self) {
        self.group = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}
