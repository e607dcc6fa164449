//! Room invitations (`ROOMINVITE`, codexd-spec §7.5): the intake journals one like a mention
//! (admission control included); the runner evaluates it with Culture's prompt on a
//! short-lived thread of its own (`thread/start` with `ephemeral`, unloaded with
//! `thread/unsubscribe` afterwards), so no conversation ever sees it. The answer's final
//! YES joins the room (remembered across restarts like any runtime join); NO, no clear
//! answer, or a failed turn stays out. Each verdict is logged, counted in status
//! (`invitations`) and recorded as a `codexd.room.invite` span under the invitation's trace.

use serde::Serialize;

use super::RunnerState;
use crate::irc::IrcMessage;
use crate::runner::prompt;
use crate::runner::turn::Outcome;
use crate::trace::TraceCtx;

/// What the invitations came to, for `status`.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct Invitations {
    /// Answered YES: the room was joined.
    pub(super) joined: u64,
    /// Answered NO.
    pub(super) declined: u64,
    /// No YES or NO in the answer, or the evaluation failed: not joined.
    pub(super) undecided: u64,
    /// The last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) last: Option<Verdict>,
}

/// One invitation's outcome.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Verdict {
    /// The room.
    pub(super) channel: String,
    /// `joined`, `declined` or `undecided`.
    pub(super) verdict: &'static str,
}

impl RunnerState {
    /// The evaluation of invitation `id` to `channel` ended with `answer`: join on YES.
    /// The journal entry is completed whatever the verdict (an invitation is not retried).
    pub(super) fn invited(
        &mut self,
        id: u64,
        channel: &str,
        answer: &str,
        outcome: &Outcome,
        trace: &TraceCtx,
    ) {
        let nick = self.settings.nick.clone();
        let said = match outcome {
            Outcome::Completed => prompt::invite_answer(answer),
            _ => None,
        };
        let verdict = match said {
            Some(true) => "joined",
            Some(false) => "declined",
            None => "undecided",
        };
        let span = trace.follow(tracing::info_span!(
            "codexd.room.invite",
            agent.nick = %nick,
            room.channel = %channel,
            invite.verdict = verdict,
            invite.turn = outcome.name(),
        ));
        let _entered = span.enter();
        match said {
            Some(true) => {
                tracing::info!(agent.nick = %nick, channel, "room invitation accepted (the model answered YES); joining");
                self.join(channel, TraceCtx::current());
                self.invitations.joined += 1;
            }
            Some(false) => {
                tracing::info!(agent.nick = %nick, channel, "room invitation declined (the model answered NO)");
                self.invitations.declined += 1;
            }
            None => {
                tracing::warn!(agent.nick = %nick, channel, turn = outcome.name(), "room invitation not joined: the evaluation gave no YES or NO");
                self.invitations.undecided += 1;
            }
        }
        self.invitations.last = Some(Verdict {
            channel: channel.to_owned(),
            verdict,
        });
        self.inbox
            .outbox
            .push(crate::runner::inbox::RelayJob::Complete { entry: id });
    }

    /// Asks the `irc` actor to join `channel` (it remembers runtime joins); a refusal is
    /// logged when it comes.
    fn join(&self, channel: &str, trace: TraceCtx) {
        let Some(irc) = self.peers.irc.get() else {
            tracing::warn!(agent.nick = %self.settings.nick, channel, "room invitation accepted but the irc actor is down; not joined");
            return;
        };
        let (reply, answer) = ractor::concurrency::oneshot();
        let message = IrcMessage::Join {
            channel: channel.to_owned(),
            trace,
            reply: reply.into(),
        };
        if irc.cast(message).is_err() {
            return;
        }
        let nick = self.settings.nick.clone();
        let channel = channel.to_owned();
        tokio::spawn(async move {
            if let Ok(Err(error)) = answer.await {
                tracing::warn!(agent.nick = %nick, channel = %channel, error = %error, "room invitation accepted but the join was refused");
            }
        });
    }
}
