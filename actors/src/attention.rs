//! The `attention` actor: when the agent looks at which channel (codexd-spec.md §8), and
//! the sleep schedule (§4.6). The band policy is pure code ([`policy`]); this actor feeds
//! it the `irc` actor's events and asks the runner for a **poll turn** when a channel with
//! unread lines is due.
//!
//! | stimulus (from `irc`)                        | effect                                  |
//! |----------------------------------------------|-----------------------------------------|
//! | mention in `#c`                              | `#c` → HOT; the agent is engaged in `#c` |
//! | DM                                           | the agent's own nick → HOT              |
//! | the agent sends to `#c`                      | engaged in `#c` (no band change)        |
//! | other line in `#c`, engaged within the thread window | `#c` one band warmer (≤ WARM)   |
//! | any other line in `#c` (not the agent's)     | `#c` has unread lines                   |
//!
//! A channel with unread lines is polled one band interval after its last poll, or after
//! its first unread line when that is later (lines arriving meanwhile are batched into
//! one poll). A poll reads the channel's buffer (consuming it, as Culture's does), drops
//! the agent's own lines and mentions (already turns of their own), and journals Culture's
//! poll prompt with the runner, whose replies go to the channel. Nothing is polled while
//! the agent is paused or its runner is down; the lines stay unread until then.
//!
//! The actor sleeps until the next poll is due instead of ticking: an idle agent with no
//! unread lines never wakes for polling. With `attention.enabled: false`, Culture's legacy
//! loop polls the configured channels every `poll_interval` (no polling when it is `<= 0`).
//!
//! The sleep schedule pauses the agent (`paused: "sleep"`) when the local `sleep_start`
//! passes and resumes it when `sleep_end` passes, unless something else paused it. A
//! manual `resume` inside the window holds until the next `sleep_start`. Mentions that
//! arrive while paused wait in the runner's journal.
//!
//! Tracker state outlives restarts of this actor (it lives in the factory).

pub mod policy;
pub mod sleep;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use opentelemetry::KeyValue;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::child::{ChildFactory, ChildHandle, ControlMsg, Report, spawn_linked};
use crate::fault;
use crate::irc::{InboundMessage, IrcEvent, IrcMessage, MessageKind};
use crate::link::Link;
use crate::pause::{PauseReason, PauseSwitch};
use crate::runner::{PollIntake, prompt};
use crate::trace::TraceCtx;
use policy::{Band, BandSpec, Policy, Tracker, Transition};
use sleep::{LocalClock, SleepWindow};

/// Messages a poll reads at most (Culture: 50).
const READ_LIMIT: usize = 50;
/// How long a poll may wait for the `irc` actor's buffer.
const IRC_TIMEOUT: Duration = Duration::from_secs(10);
/// Culture's harness meter (the `culture.attention.*` instruments).
const METER: &str = "culture.harness";

/// How the agent polls its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Culture's attention bands.
    Bands(Policy),
    /// `attention.enabled: false`: the configured channels every `poll_interval`.
    Legacy(Duration),
    /// `attention.enabled: false` and `poll_interval <= 0`: no polling.
    Off,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Bands(_) => "bands",
            Mode::Legacy(_) => "legacy",
            Mode::Off => "off",
        }
    }

    /// The policy the tracker runs: the legacy loop is one band-less interval.
    fn policy(self) -> Policy {
        match self {
            Mode::Bands(policy) => policy,
            Mode::Legacy(interval) => Policy {
                bands: [BandSpec {
                    interval,
                    hold: None,
                }; 4],
            },
            Mode::Off => Policy::default(),
        }
    }
}

/// What an agent's attention runs with.
#[derive(Debug, Clone)]
pub struct AttentionSettings {
    /// The agent's nick (its own lines are never polled; DMs use it as their target).
    pub nick: String,
    /// The configured channels: tracked from the start (and the only ones polled in
    /// legacy mode).
    pub channels: Vec<String>,
    /// How it polls.
    pub mode: Mode,
    /// Ambient lines warm a channel only this long after the agent was engaged there.
    pub thread_window: Duration,
    /// The sleep window, if any.
    pub sleep: Option<SleepWindow>,
    /// Channels never polled (the alerts channel, when the agent joins it).
    pub quiet: Vec<String>,
    /// `tick_s`: how soon a due poll is tried again while the runner is down (polls are
    /// otherwise timed exactly, not by a fixed tick).
    pub retry: Duration,
}

/// The agent's other parts attention reaches; all outlive its restarts.
#[derive(Clone)]
pub struct AttentionPeers {
    /// The `irc` actor (buffer reads).
    pub irc: Link<IrcMessage>,
    /// The runner's poll intake; `None` when the runner's journal could not be opened.
    pub polls: Option<PollIntake>,
    /// The agent's pause switch.
    pub pause: PauseSwitch,
    /// Local wall-clock time (the sleep schedule).
    pub clock: LocalClock,
}

/// The attention actor (stateless; see [`AttentionState`]).
pub struct Attention;

/// Messages of the attention actor.
#[derive(Debug)]
pub enum AttentionMessage {
    /// Supervisor and operator requests (status, faults).
    Control(ControlMsg),
    /// An event of the `irc` actor.
    Irc(IrcEvent),
    /// The agent was paused or resumed.
    PauseChanged,
    /// A poll may be due.
    Tick,
    /// Time to look at the sleep schedule.
    Clock,
    /// A poll task finished with `target`.
    Polled {
        /// The channel.
        target: String,
        /// False when its lines could not be read or journaled (they stay unread).
        done: bool,
    },
}

impl From<ControlMsg> for AttentionMessage {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// What outlives restarts of the actor.
#[derive(Debug)]
struct Shared {
    tracker: Tracker,
    /// When the agent last spoke or was addressed in each target.
    engaged: HashMap<String, Duration>,
    /// Targets with lines not yet polled.
    unread: BTreeSet<String>,
    origin: Instant,
    polls: u64,
    wakeups: u64,
    /// Whether the clock was last seen inside the sleep window (`None`: not looked yet).
    asleep: Option<bool>,
}

impl Shared {
    /// The agent spoke or was addressed in `target` at `now`. Only channels are kept (ambient
    /// lines, the only ones it matters for, are channel lines), and only while within
    /// `window`: a DM peer or a long-quiet channel is forgotten, so the map stays as small as
    /// the set of recently engaged channels.
    fn engage(&mut self, target: String, now: Duration, window: Duration) {
        if !crate::irc::text::is_channel(&target) {
            return;
        }
        self.engaged
            .retain(|_, at| now.checked_sub(*at).is_some_and(|ago| ago <= window));
        self.engaged.insert(target, now);
    }
}

/// What an instance starts with.
#[derive(Clone)]
pub struct AttentionArgs {
    settings: Arc<AttentionSettings>,
    peers: AttentionPeers,
    events: broadcast::Sender<IrcEvent>,
    shared: Arc<Mutex<Shared>>,
}

/// A running instance.
pub struct AttentionState {
    args: AttentionArgs,
    myself: ActorRef<AttentionMessage>,
    feed: JoinHandle<()>,
    tick: Option<JoinHandle<()>>,
    clock: Option<JoinHandle<()>>,
}

/// Starts the attention actor; holds the state that outlives its restarts.
pub struct AttentionFactory {
    args: AttentionArgs,
}

impl AttentionFactory {
    /// Attention for one agent, fed by `events` (the `irc` actor's).
    pub fn new(
        settings: AttentionSettings,
        peers: AttentionPeers,
        events: &broadcast::Sender<IrcEvent>,
    ) -> Self {
        let mut tracker = Tracker::new(settings.mode.policy());
        let origin = Instant::now();
        for channel in &settings.channels {
            // Seeded as polled now: a channel's first unread line waits one interval.
            tracker.seed(channel);
            tracker.mark_polled(channel, Duration::ZERO);
        }
        let shared = Shared {
            tracker,
            engaged: HashMap::new(),
            unread: BTreeSet::new(),
            origin,
            polls: 0,
            wakeups: 0,
            asleep: None,
        };
        Self {
            args: AttentionArgs {
                settings: Arc::new(settings),
                peers,
                events: events.clone(),
                shared: Arc::new(Mutex::new(shared)),
            },
        }
    }
}

impl ChildFactory for AttentionFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        spawn_linked(Attention, self.args.clone(), supervisor)
    }
}

impl Actor for Attention {
    type Msg = AttentionMessage;
    type State = AttentionState;
    type Arguments = AttentionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<AttentionMessage>,
        args: AttentionArgs,
    ) -> Result<AttentionState, ActorProcessingErr> {
        let feed = tokio::spawn(feed(
            args.events.subscribe(),
            args.peers.pause.subscribe(),
            myself.clone(),
        ));
        Ok(AttentionState {
            args,
            myself,
            feed,
            tick: None,
            clock: None,
        })
    }

    async fn post_start(
        &self,
        _myself: ActorRef<AttentionMessage>,
        state: &mut AttentionState,
    ) -> Result<(), ActorProcessingErr> {
        state.on_clock();
        state.schedule();
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<AttentionMessage>,
        state: &mut AttentionState,
    ) -> Result<(), ActorProcessingErr> {
        state.feed.abort();
        state.tick.take().inspect(JoinHandle::abort);
        state.clock.take().inspect(JoinHandle::abort);
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<AttentionMessage>,
        message: AttentionMessage,
        state: &mut AttentionState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AttentionMessage::Control(control) => return state.on_control(control).await,
            AttentionMessage::Irc(event) => state.on_event(event),
            AttentionMessage::PauseChanged => state.schedule(),
            AttentionMessage::Tick => state.on_tick(),
            AttentionMessage::Clock => state.on_clock(),
            AttentionMessage::Polled { target, done } => state.on_polled(target, done),
        }
        Ok(())
    }
}

/// Forwards `irc` events and pause changes to the actor as messages.
async fn feed(
    mut events: broadcast::Receiver<IrcEvent>,
    mut pause: tokio::sync::watch::Receiver<Option<PauseReason>>,
    actor: ActorRef<AttentionMessage>,
) {
    loop {
        let message = tokio::select! {
            event = events.recv() => match event {
                Ok(event) => AttentionMessage::Irc(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "attention fell behind the irc events");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            changed = pause.changed() => match changed {
                Ok(()) => AttentionMessage::PauseChanged,
                Err(_) => return,
            },
        };
        if actor.cast(message).is_err() {
            return;
        }
    }
}

impl AttentionState {
    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.args
            .shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn nick(&self) -> &str {
        &self.args.settings.nick
    }

    async fn on_control(&mut self, control: ControlMsg) -> Result<(), ActorProcessingErr> {
        match control {
            ControlMsg::Status { reply, .. } => {
                let _ = reply.send(Report::leaf(&self.status()));
                Ok(())
            }
            other => fault::handle_leaf(other, "attention").await,
        }
    }

    fn on_event(&mut self, event: IrcEvent) {
        match event {
            IrcEvent::Message(message) => self.on_message(&message),
            IrcEvent::Sent { target } => {
                let window = self.args.settings.thread_window;
                let mut shared = self.shared();
                let now = shared.origin.elapsed();
                shared.engage(target, now, window);
            }
            _ => return,
        }
        self.schedule();
    }

    fn on_message(&mut self, message: &InboundMessage) {
        if message.sender.eq_ignore_ascii_case(self.nick()) {
            return;
        }
        let settings = self.args.settings.clone();
        let mut shared = self.shared();
        let now = shared.origin.elapsed();
        let change = match message.kind {
            MessageKind::Mention => {
                shared.engage(message.key.clone(), now, settings.thread_window);
                shared.tracker.on_direct(&message.key, now)
            }
            MessageKind::Direct => shared.tracker.on_direct(&settings.nick, now),
            MessageKind::Ambient => {
                let engaged = shared.engaged.get(&message.key).is_some_and(|at| {
                    now.checked_sub(*at)
                        .is_some_and(|ago| ago <= settings.thread_window)
                });
                let change = match engaged {
                    true => shared.tracker.on_ambient(&message.key, now),
                    false => None,
                };
                if pollable(&settings, &message.key) && shared.unread.insert(message.key.clone()) {
                    first_unread(&mut shared.tracker, &message.key, now);
                }
                change
            }
            MessageKind::Notice | MessageKind::Invite => None,
        };
        drop(shared);
        if let Some(change) = change {
            emit_transition(&settings.nick, &change);
        }
    }

    fn on_tick(&mut self) {
        self.tick = None;
        let settings = self.args.settings.clone();
        let mut shared = self.shared();
        shared.wakeups += 1;
        let now = shared.origin.elapsed();
        let Some(polls) = self.args.peers.polls.clone() else {
            return;
        };
        if self.args.peers.pause.is_paused() {
            return; // PauseChanged reschedules
        }
        if !polls.runner_up() {
            drop(shared);
            return self.arm_tick(settings.retry);
        }
        let (due, changes) = shared.tracker.due_targets(now);
        let mut batch = Vec::new();
        for target in due {
            if !shared.unread.contains(&target) {
                continue;
            }
            shared.tracker.mark_polled(&target, now);
            if polls.polling(&target) {
                continue; // its last poll has not run yet: look again an interval later
            }
            shared.unread.remove(&target);
            shared.polls += 1;
            let band = shared.tracker.band_at(&target, now).unwrap_or(Band::Idle);
            batch.push((target, band));
        }
        drop(shared);
        for change in &changes {
            emit_transition(&settings.nick, change);
        }
        for (target, band) in batch {
            record_poll(&settings.nick, &target, band);
            let irc = self.args.peers.irc.clone();
            let (polls, myself, nick) = (polls.clone(), self.myself.clone(), settings.nick.clone());
            tokio::spawn(async move {
                let done = poll(&irc, &polls, &nick, &target, band).await;
                let _ = myself.cast(AttentionMessage::Polled { target, done });
            });
        }
        self.schedule();
    }

    fn on_polled(&mut self, target: String, done: bool) {
        if !done {
            self.shared().unread.insert(target);
            self.schedule();
        }
    }

    /// Arms the poll timer for the earliest unread target's due time; none when nothing
    /// is unread or the agent is paused.
    fn schedule(&mut self) {
        if self.args.peers.pause.is_paused() || self.args.settings.mode == Mode::Off {
            self.tick.take().inspect(JoinHandle::abort);
            return;
        }
        let next = {
            let shared = self.shared();
            let now = shared.origin.elapsed();
            shared
                .unread
                .iter()
                .filter_map(|target| shared.tracker.next_due(target, now))
                .min()
                .map(|at| at.saturating_sub(now))
        };
        match next {
            Some(wait) => self.arm_tick(wait),
            None => {
                self.tick.take().inspect(JoinHandle::abort);
            }
        }
    }

    fn arm_tick(&mut self, wait: Duration) {
        self.tick.take().inspect(JoinHandle::abort);
        let myself = self.myself.clone();
        self.tick = Some(tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = myself.cast(AttentionMessage::Tick);
        }));
    }

    /// Looks at the local clock: pauses when the sleep window starts, resumes when it ends
    /// (only a pause of its own), and arms the next look.
    fn on_clock(&mut self) {
        let Some(window) = self.args.settings.sleep else {
            return;
        };
        let second = (self.args.peers.clock)();
        let inside = window.contains(second);
        let pause = &self.args.peers.pause;
        let before = {
            let mut shared = self.shared();
            shared.wakeups += 1;
            shared.asleep.replace(inside)
        };
        let nick = self.nick();
        match (before, inside) {
            (Some(true), true) | (Some(false), false) => {}
            (_, true) if pause.is_paused() => {
                tracing::info!(agent.nick = %nick, window = %window, reason = ?pause.reason(), "sleep schedule: the window started; already paused");
            }
            (_, true) => {
                pause.pause(PauseReason::Sleep);
                tracing::info!(agent.nick = %nick, window = %window, "Sleep schedule: pausing {nick}");
            }
            (_, false) if pause.reason() == Some(PauseReason::Sleep) => {
                pause.resume();
                tracing::info!(agent.nick = %nick, window = %window, "Sleep schedule: resuming {nick}");
            }
            (_, false) => {}
        }
        let wait = window.next_check(second);
        let myself = self.myself.clone();
        self.clock.take().inspect(JoinHandle::abort);
        self.clock = Some(tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = myself.cast(AttentionMessage::Clock);
        }));
    }

    fn status(&self) -> Value {
        let settings = &self.args.settings;
        let shared = self.shared();
        let now = shared.origin.elapsed();
        let targets: Vec<Value> = shared
            .tracker
            .snapshot(now)
            .into_iter()
            .map(|(target, band, _)| {
                let unread = shared.unread.contains(&target);
                let next_poll_s = unread
                    .then(|| shared.tracker.next_due(&target, now))
                    .flatten()
                    .map(|at| at.saturating_sub(now).as_secs_f64());
                json!({"target": target, "band": band, "unread": unread, "next_poll_s": next_poll_s})
            })
            .collect();
        let sleep = settings.sleep.map(|window| {
            json!({"window": window.to_string(), "asleep": shared.asleep.unwrap_or(false)})
        });
        json!({
            "mode": settings.mode.name(),
            "targets": targets,
            "polls": shared.polls,
            "wakeups": shared.wakeups,
            "sleep": sleep,
        })
    }
}

/// Whether `key` can be polled: a channel that is not quiet, and in legacy mode a
/// configured one.
fn pollable(settings: &AttentionSettings, key: &str) -> bool {
    if settings.quiet.iter().any(|q| q.eq_ignore_ascii_case(key)) {
        return false;
    }
    match settings.mode {
        Mode::Off => false,
        Mode::Legacy(_) => settings.channels.iter().any(|c| c == key),
        Mode::Bands(_) => key.starts_with(['#', '&']),
    }
}

/// A target's first unread line: if a poll would be due right now, the band's interval
/// starts now instead, so lines arriving meanwhile are batched into one poll.
fn first_unread(tracker: &mut Tracker, target: &str, now: Duration) {
    if tracker.next_due(target, now).is_none_or(|due| due <= now) {
        tracker.mark_polled(target, now);
    }
}

/// Reads `target`'s unread lines and journals Culture's poll prompt; true unless the lines
/// could not be read or journaled.
async fn poll(
    irc: &Link<IrcMessage>,
    polls: &PollIntake,
    nick: &str,
    target: &str,
    band: Band,
) -> bool {
    let span = TraceCtx::default().follow(tracing::info_span!(
        "codexd.attention.poll",
        agent.nick = %nick,
        target,
        band = band.name(),
        lines = tracing::field::Empty,
    ));
    let make = |reply| IrcMessage::Read {
        key: target.to_owned(),
        limit: READ_LIMIT,
        reply,
    };
    let Ok(lines) = irc.call(make, IRC_TIMEOUT).await else {
        tracing::warn!(agent.nick = %nick, target, "poll: the irc buffer could not be read; trying again later");
        return false;
    };
    span.record("lines", lines.len());
    let lines: Vec<(String, String)> = lines.into_iter().map(|m| (m.nick, m.text)).collect();
    let Some(text) = prompt::poll(target, &lines, nick) else {
        tracing::debug!(agent.nick = %nick, target, "poll: nothing for the agent");
        return true;
    };
    let trace = span.in_scope(TraceCtx::current);
    match polls.submit(target, text, trace) {
        Ok(_) => true,
        Err(error) => {
            tracing::error!(agent.nick = %nick, target, error = %error, "poll NOT journaled; its lines were read and are lost to polling");
            true
        }
    }
}

/// Culture's transition log line and `culture.attention.transitions` counter.
fn emit_transition(nick: &str, change: &Transition) {
    let (from, to, cause) = (change.from.name(), change.to.name(), change.cause.name());
    tracing::info!(agent.nick = %nick, target = %change.target, from, to, cause, "attention: agent={nick} target={} band={from}\u{2192}{to} cause={cause}", change.target);
    opentelemetry::global::meter(METER)
        .u64_counter("culture.attention.transitions")
        .with_description("Attention band transitions")
        .build()
        .add(
            1,
            &[
                KeyValue::new("agent", nick.to_owned()),
                KeyValue::new("target", change.target.clone()),
                KeyValue::new("from_band", from),
                KeyValue::new("to_band", to),
                KeyValue::new("cause", cause),
            ],
        );
}

/// Culture's `culture.attention.polls` counter.
fn record_poll(nick: &str, target: &str, band: Band) {
    opentelemetry::global::meter(METER)
        .u64_counter("culture.attention.polls")
        .with_description("Channel polls by band")
        .build()
        .add(
            1,
            &[
                KeyValue::new("agent", nick.to_owned()),
                KeyValue::new("target", target.to_owned()),
                KeyValue::new("band", band.name()),
            ],
        );
}

#[cfg(test)]
mod tests;
