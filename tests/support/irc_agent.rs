#![allow(dead_code, unreachable_pub)]

//! Drives a real `irc` actor from a test: spawn it against a server, call its API, watch its
//! events and status. Polls with a deadline; never sleeps to assert timing.

use std::time::Duration;

use codexd_actors::irc::{
    Addressed, BufferedMessage, INBOUND_WINDOW, IntakePath, Irc, IrcArgs, IrcError, IrcEvent,
    IrcMessage, IrcSettings, IrcStatus, SendPriority, SendReport,
};
use codexd_actors::link::Link;
use codexd_actors::trace::TraceCtx;
use ractor::{Actor, ActorRef};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

/// Upper bound for anything awaited: a hang detector, not a speed assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A running `irc` actor and its event stream.
pub struct Agent {
    pub actor: ActorRef<IrcMessage>,
    pub events: broadcast::Receiver<IrcEvent>,
    pub link: Link<IrcMessage>,
}

/// Settings tuned for tests: fast reconnects and no flood pacing unless a test wants it.
pub fn settings(host: &str, port: u16, server_name: &str, nick: &str) -> IrcSettings {
    let mut s = IrcSettings::new(host, port, server_name, nick);
    s.reconnect_min = Duration::from_millis(200);
    s.reconnect_max = Duration::from_secs(2);
    s.registration_timeout = Duration::from_secs(10);
    s.flood.per_second = 0.0;
    s
}

impl Agent {
    /// Starts the actor; what it hands to the intake is taken and dropped.
    pub async fn start(settings: IrcSettings) -> Agent {
        Self::start_with_intake(settings, drained_intake()).await
    }

    /// Starts the actor with an intake path the test reads: mentions, DMs and invitations
    /// arrive on the returned receiver, each holding its line's place in the window.
    pub async fn start_observed(
        settings: IrcSettings,
    ) -> (Agent, mpsc::UnboundedReceiver<Addressed>) {
        let (intake, queue) = IntakePath::new(INBOUND_WINDOW);
        (Self::start_with_intake(settings, intake).await, queue)
    }

    async fn start_with_intake(settings: IrcSettings, intake: IntakePath) -> Agent {
        let (tx, events) = broadcast::channel(4096);
        let link = Link::default();
        let args = IrcArgs {
            settings,
            events: tx,
            link: link.clone(),
            intake,
        };
        let (actor, _join) = Actor::spawn(None, Irc, args).await.expect("spawn irc");
        Agent {
            actor,
            events,
            link,
        }
    }

    pub async fn status(&self) -> IrcStatus {
        ractor::call!(self.actor, |reply| IrcMessage::Status { reply }).expect("status")
    }

    /// Waits until the status satisfies `pred`.
    pub async fn wait_status(&self, what: &str, pred: impl Fn(&IrcStatus) -> bool) -> IrcStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = self.status().await;
            if pred(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_connected(&self) -> IrcStatus {
        self.wait_status("connected", |s| s.state == "connected")
            .await
    }

    /// The next event matching `pred` (others are skipped).
    pub async fn event(&mut self, what: &str, pred: impl Fn(&IrcEvent) -> bool) -> IrcEvent {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Ok(event)) if pred(&event) => return event,
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(error)) => panic!("event stream ended waiting for {what}: {error}"),
                Err(_) => panic!("gave up waiting for event: {what}"),
            }
        }
    }

    pub async fn send(&self, target: &str, text: &str) -> Result<SendReport, IrcError> {
        self.send_traced(target, text, TraceCtx::default()).await
    }

    pub async fn send_traced(
        &self,
        target: &str,
        text: &str,
        trace: TraceCtx,
    ) -> Result<SendReport, IrcError> {
        ractor::call!(self.actor, |reply| IrcMessage::Send {
            target: target.to_owned(),
            text: text.to_owned(),
            notice: false,
            require_joined: false,
            priority: SendPriority::Normal,
            trace,
            reply,
        })
        .expect("send")
    }

    pub async fn join(&self, channel: &str) -> Result<(), IrcError> {
        ractor::call!(self.actor, |reply| IrcMessage::Join {
            channel: channel.to_owned(),
            trace: TraceCtx::default(),
            reply,
        })
        .expect("join")
    }

    pub async fn read(&self, key: &str) -> Vec<BufferedMessage> {
        ractor::call!(self.actor, |reply| IrcMessage::Read {
            key: key.to_owned(),
            limit: 50,
            reply,
        })
        .expect("read")
    }

    pub fn stop(self) {
        self.actor.stop(None);
    }
}

/// The next message the actor hands to `intake` (see [`Agent::start_observed`]); panics with
/// `what` after [`PATIENCE`] or when the actor dropped the path.
pub async fn next_addressed(
    intake: &mut mpsc::UnboundedReceiver<Addressed>,
    what: &str,
) -> Addressed {
    match tokio::time::timeout(PATIENCE, intake.recv()).await {
        Ok(Some(addressed)) => addressed,
        Ok(None) => panic!("the intake path closed while waiting for {what}"),
        Err(_) => panic!("gave up waiting for {what} on the intake path"),
    }
}

/// An intake path whose mentions and DMs are taken and dropped (no runner here).
pub fn drained_intake() -> IntakePath {
    let (intake, mut queue) = IntakePath::new(INBOUND_WINDOW);
    tokio::spawn(async move { while queue.recv().await.is_some() {} });
    intake
}
