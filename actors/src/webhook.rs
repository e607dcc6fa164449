//! The `webhook` actor: the agent's alerts (codexd-spec.md §12). Other actors cast an
//! [`Alert`] to its [`Link`]; the actor filters it through `webhooks.events`, suppresses
//! duplicates, and sends it to two sinks: a PRIVMSG to `webhooks.irc_channel` through the
//! `irc` actor, and (when `webhooks.url` is set) an HTTP POST in the configured [`Format`].
//! Nothing here ever blocks the sender or the agent: HTTP deliveries run one at a time in
//! a spawned task, from a bounded queue that drops its oldest alert when full. Every text
//! is [redacted](crate::redact::text) before it reaches the log or either sink.
//!
//! | part                                   | module        |
//! |----------------------------------------|---------------|
//! | alert, messages, actor                 | this file     |
//! | event names, default allow-list        | `event`       |
//! | body formats (byte-exact)              | [`payload`]   |
//! | retry verdicts, backoff, dedup, queue  | [`policy`]    |
//! | one POST (reqwest + rustls/ring)       | [`http`]      |
//! | one delivery with retries, its span    | [`deliver`]   |
//! | supervision transitions → alerts       | [`observe`]   |
//! | the alerts channel: refusals, resends  | [`irc_sink`]  |
//! | the `irc` events it listens to         | `listen`      |
//! | mesh splits and heals → alerts         | [`mesh`]      |
//! | whole-agent alerts via another agent   | [`relay`]     |
//! | the runner's alert texts               | [`texts`]     |
//!
//! | event             | raised by                                    | default allow-list |
//! |-------------------|----------------------------------------------|--------------------|
//! | `agent_spiraling` | runner's turn-failure breaker, overseer      | yes                |
//! | `agent_error`     | codex exited non-zero or by a signal         | yes                |
//! | `agent_question`  | IPC `irc_ask`                                | yes                |
//! | `agent_timeout`   | a turn ran past `turn_timeout_seconds`       | yes                |
//! | `agent_complete`  | codex exited 0                               | yes                |
//! | `circuit_open`    | a child's circuit opened                     | yes                |
//! | `circuit_closed`  | a child's circuit closed again               | yes                |
//! | `agent_restarted` | a child's restart was scheduled              | no (noisy)         |
//! | `journal_error`   | the journal cannot write (mentions refused, a finished turn not recorded) or set a file aside | yes |
//! | `mesh_split`      | the agent's server lost a mesh link (agentirc `server.unlink`, [`mesh`]) | yes |
//! | `mesh_healed`     | the agent's server has every lost link back (`server.link`) | yes |
//!
//! Faults: `panic`, `error`, `hang` as every child; `blackhole` toggles a mode in which
//! every HTTP attempt waits out the request timeout and counts as a timeout (a restart
//! clears it, as it clears the queue).

mod deliver;
mod event;
pub mod http;
pub mod irc_sink;
mod listen;
pub mod mesh;
pub mod observe;
pub mod payload;
pub mod policy;
pub mod relay;
pub mod texts;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use deliver::Delivery;
use deliver::{Courier, Job};
pub use event::AlertEvent;
pub use http::Endpoint;
pub use payload::Format;
use policy::{Dedup, Queue};
pub use relay::AlertRelay;

use crate::child::{
    ChildFactory, ChildHandle, ControlError, ControlMsg, FaultKind, Report, spawn_linked,
};
use crate::fault;
use crate::irc::{IrcEvent, IrcMessage};
use crate::link::Link;
use crate::redact;
use crate::trace::TraceCtx;
use irc_sink::{IrcLine, Unconfirmed};

/// One alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// What happened.
    pub event: AlertEvent,
    /// The agent's nick.
    pub nick: String,
    /// Culture's message text, e.g. `[QUESTION] [spark-a] asked in #general: …`.
    pub message: String,
    /// The work that raised it.
    pub trace: TraceCtx,
}

/// Casts `alert` to the webhook if it runs (it never blocks; a webhook that is down loses
/// the alert, as Culture loses one whose POST fails).
pub fn raise(webhook: &Link<WebhookMessage>, alert: Alert) {
    match webhook.get() {
        Some(actor) => {
            let _ = actor.cast(WebhookMessage::Alert(alert));
        }
        None => {
            tracing::debug!(agent.nick = %alert.nick, alert.event = alert.event.name(), "no webhook running; alert dropped")
        }
    }
}

/// Messages of the webhook actor.
#[derive(Debug)]
pub enum WebhookMessage {
    /// Supervisor and operator requests (status; faults `panic`, `error`, `hang`, `blackhole`).
    Control(ControlMsg),
    /// Deliver an alert (never blocks the sender).
    Alert(Alert),
    /// The delivery task finished one alert.
    Delivered(Delivery),
    /// The server refused a line to the alerts channel (`<numeric> <reason>`).
    IrcRefused(String),
    /// Send a refused alert line again.
    IrcResend(IrcLine),
    /// The `irc` actor did not take an alert line.
    IrcNotHanded {
        /// The line.
        line: IrcLine,
        /// Why.
        problem: String,
    },
}

impl From<ControlMsg> for WebhookMessage {
    fn from(msg: ControlMsg) -> Self {
        Self::Control(msg)
    }
}

/// How an agent's alerts are delivered (`webhooks:`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The agent's nick.
    pub nick: String,
    /// `webhooks.url`; `None`: IRC only.
    pub url: Option<Endpoint>,
    /// `webhooks.irc_channel`; `None`: no IRC alerts.
    pub irc_channel: Option<String>,
    /// `webhooks.format`.
    pub format: Format,
    /// `webhooks.events`: the allow-list.
    pub events: Vec<AlertEvent>,
    /// `webhooks.timeout`: bound on one HTTP attempt (Culture: 10 s).
    pub timeout: Duration,
    /// `webhooks.max_attempts`: HTTP attempts per alert.
    pub attempts: u32,
    /// Backoff before the first retry (doubles per retry).
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_cap: Duration,
    /// `webhooks.queue_size`: HTTP deliveries that may wait.
    pub queue: usize,
    /// `webhooks.dedup_window`: identical alerts within it are suppressed.
    pub dedup_window: Duration,
    /// How long the IRC sink waits for the `irc` actor.
    pub irc_timeout: Duration,
}

impl WebhookSettings {
    /// Culture's behaviour plus codexd's delivery defaults: IRC alerts to `#alerts`, no
    /// URL, the default events, 10 s timeout, 4 attempts from 1 s backoff (30 s cap),
    /// 64 queued, 60 s dedup window.
    pub fn new(nick: &str) -> Self {
        Self {
            nick: nick.to_owned(),
            url: None,
            irc_channel: Some("#alerts".to_owned()),
            format: Format::Discord,
            events: AlertEvent::DEFAULTS.to_vec(),
            timeout: Duration::from_secs(10),
            attempts: 4,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(30),
            queue: 64,
            dedup_window: Duration::from_secs(60),
            irc_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters and the last error, kept across the actor's restarts (`codexd status`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct WebhookStats {
    /// `scheme://host[:port]` of the URL, if any.
    pub url: Option<String>,
    /// Alerts received.
    pub raised: u64,
    /// Not in `webhooks.events`.
    pub filtered: u64,
    /// Duplicates within the dedup window.
    pub suppressed: u64,
    /// HTTP deliveries waiting now.
    pub queued: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// HTTP deliveries the server took.
    pub delivered: u64,
    /// HTTP deliveries given up.
    pub failed: u64,
    /// HTTP retries made.
    pub retries: u64,
    /// Alert lines handed to the `irc` actor (resends included).
    pub irc_sent: u64,
    /// Refusals of alert lines by the server (`404`, `442`, …); each is sent again.
    pub irc_refused: u64,
    /// Alert lines lost: the `irc` actor did not take them, or the server refused every
    /// resend.
    pub irc_failed: u64,
    /// The last delivery problem (HTTP or IRC).
    pub last_error: Option<String>,
    /// The `blackhole` fault is on.
    pub blackhole: bool,
}

/// The agent's parts the webhook reaches.
#[derive(Debug, Clone, Default)]
pub struct WebhookPeers {
    /// Its `irc` actor (the alerts channel).
    pub irc: Link<IrcMessage>,
    /// The `irc` actor's events (refusals of alert lines); `None`: not watched.
    pub irc_events: Option<broadcast::Sender<IrcEvent>>,
    /// Where each webhook instance registers itself.
    pub link: Link<WebhookMessage>,
    /// Shared by the process's agents: one mesh alert per change per server.
    pub mesh_gate: mesh::MeshAlertGate,
}

/// Starts the webhook; holds the stats and the HTTP client, which outlive its restarts.
pub struct WebhookFactory {
    settings: Arc<WebhookSettings>,
    peers: WebhookPeers,
    stats: Arc<Mutex<WebhookStats>>,
    client: Option<Result<reqwest::Client, String>>,
}

impl WebhookFactory {
    /// A factory for `settings`; a URL builds the HTTP client (the system's roots, the
    /// environment's proxy) once, here.
    pub fn new(settings: WebhookSettings, peers: WebhookPeers) -> Self {
        let client = settings.url.as_ref().map(|_| {
            http::client().inspect_err(|error| tracing::error!(agent.nick = %settings.nick, error = %error, "webhook HTTP client setup failed"))
        });
        let stats = WebhookStats {
            url: settings.url.as_ref().map(|u| u.redacted().to_owned()),
            ..WebhookStats::default()
        };
        Self {
            settings: Arc::new(settings),
            peers,
            stats: Arc::new(Mutex::new(stats)),
            client,
        }
    }

    /// The stats every instance updates.
    pub fn stats(&self) -> Arc<Mutex<WebhookStats>> {
        self.stats.clone()
    }
}

impl ChildFactory for WebhookFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        let args = WebhookArgs {
            settings: self.settings.clone(),
            peers: self.peers.clone(),
            stats: self.stats.clone(),
            client: self.client.clone(),
        };
        spawn_linked(Webhook, args, supervisor)
    }
}

/// The actor.
pub struct Webhook;

/// What each instance starts with.
pub struct WebhookArgs {
    settings: Arc<WebhookSettings>,
    peers: WebhookPeers,
    stats: Arc<Mutex<WebhookStats>>,
    client: Option<Result<reqwest::Client, String>>,
}

/// One instance's state: the dedup memory, the queue and the delivery in flight.
pub struct WebhookState {
    settings: Arc<WebhookSettings>,
    peers: WebhookPeers,
    stats: Arc<Mutex<WebhookStats>>,
    myself: ActorRef<WebhookMessage>,
    dedup: Dedup,
    queue: Queue<Job>,
    courier: Option<Arc<Courier>>,
    in_flight: Option<JoinHandle<()>>,
    blackhole: Arc<AtomicBool>,
    /// Alert lines the server may still refuse.
    unconfirmed: Unconfirmed,
    /// Turns the irc actor's events (refusals, mesh changes) into messages (`listen`).
    irc_events: Option<JoinHandle<()>>,
}

impl Actor for Webhook {
    type Msg = WebhookMessage;
    type State = WebhookState;
    type Arguments = WebhookArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<WebhookMessage>,
        args: WebhookArgs,
    ) -> Result<WebhookState, ActorProcessingErr> {
        let settings = args.settings;
        let blackhole = Arc::new(AtomicBool::new(false));
        let courier = settings
            .url
            .clone()
            .zip(args.client)
            .map(|(endpoint, client)| {
                Arc::new(Courier {
                    endpoint,
                    client,
                    timeout: settings.timeout,
                    attempts: settings.attempts.max(1),
                    backoff_base: settings.backoff_base,
                    backoff_cap: settings.backoff_cap,
                    blackhole: blackhole.clone(),
                })
            });
        if let Ok(mut stats) = args.stats.lock() {
            stats.blackhole = false;
            stats.queued = 0;
        }
        args.peers.link.set(myself.clone());
        let irc_events = args.peers.irc_events.as_ref().map(|events| {
            let listener = listen::Listener {
                channel: settings.irc_channel.clone(),
                nick: settings.nick.clone(),
                gate: args.peers.mesh_gate.clone(),
            };
            listener.spawn(events, myself.clone())
        });
        Ok(WebhookState {
            unconfirmed: Unconfirmed::default(),
            irc_events,
            dedup: Dedup::new(settings.dedup_window),
            queue: Queue::new(settings.queue),
            settings,
            peers: args.peers,
            stats: args.stats,
            myself,
            courier,
            in_flight: None,
            blackhole,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<WebhookMessage>,
        msg: WebhookMessage,
        state: &mut WebhookState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WebhookMessage::Control(control) => state.on_control(control).await,
            WebhookMessage::Alert(alert) => {
                state.on_alert(alert);
                Ok(())
            }
            WebhookMessage::Delivered(delivery) => {
                state.on_delivered(delivery);
                Ok(())
            }
            WebhookMessage::IrcRefused(refusal) => {
                state.on_irc_refused(&refusal);
                Ok(())
            }
            WebhookMessage::IrcResend(line) => {
                state.send_to_irc(line);
                Ok(())
            }
            WebhookMessage::IrcNotHanded { line, problem } => {
                state.on_irc_not_handed(&line, &problem);
                Ok(())
            }
        }
    }

    async fn post_stop(
        &self,
        myself: ActorRef<WebhookMessage>,
        state: &mut WebhookState,
    ) -> Result<(), ActorProcessingErr> {
        for task in [state.in_flight.take(), state.irc_events.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        if !state.queue.is_empty() {
            tracing::warn!(agent.nick = %state.settings.nick, lost = state.queue.len(), "webhook stopped with alerts queued");
        }
        state.peers.link.clear(&myself);
        Ok(())
    }
}

impl WebhookState {
    fn stats(&self) -> std::sync::MutexGuard<'_, WebhookStats> {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn on_control(&mut self, control: ControlMsg) -> Result<(), ActorProcessingErr> {
        match control {
            ControlMsg::Status { reply, .. } => {
                let _ = reply.send(Report::leaf(&*self.stats()));
                Ok(())
            }
            ControlMsg::Fault {
                path,
                kind: FaultKind::Blackhole,
                reply,
                ..
            } if path.is_empty() => {
                let _ = reply.send(self.toggle_blackhole());
                Ok(())
            }
            other => fault::handle_leaf(other, "webhook").await,
        }
    }

    /// `blackhole` on, or off again when it was on.
    fn toggle_blackhole(&mut self) -> Result<(), ControlError> {
        let on = !self.blackhole.fetch_xor(true, Ordering::Relaxed);
        self.stats().blackhole = on;
        tracing::warn!(agent.nick = %self.settings.nick, blackhole = on, "fault injected: webhook blackhole {}", if on { "on" } else { "off" });
        Ok(())
    }

    fn on_alert(&mut self, mut alert: Alert) {
        alert.message = redact::text(&alert.message);
        let event = alert.event.name();
        self.stats().raised += 1;
        if !self.settings.events.contains(&alert.event) {
            self.stats().filtered += 1;
            tracing::debug!(agent.nick = %alert.nick, alert.event = event, "alert not in webhooks.events; dropped");
            return;
        }
        if !self
            .dedup
            .admit(alert.event, &alert.message, Instant::now())
        {
            self.stats().suppressed += 1;
            tracing::info!(agent.nick = %alert.nick, alert.event = event, "duplicate alert suppressed");
            return;
        }
        tracing::info!(agent.nick = %alert.nick, alert.event = event, text = %alert.message, "alert");
        let line = self
            .unconfirmed
            .line(alert.message.clone(), alert.trace.clone());
        self.send_to_irc(line);
        if self.courier.is_none() {
            return;
        }
        let job = Job {
            event,
            body: payload::body(self.settings.format, &alert, SystemTime::now()),
            trace: alert.trace,
        };
        if let Some(lost) = self.queue.push(job) {
            self.stats().dropped += 1;
            tracing::warn!(agent.nick = %self.settings.nick, alert.event = lost.event, capacity = self.settings.queue, "webhook queue full; oldest alert dropped");
        }
        self.pump();
    }

    /// Starts the next delivery when none is in flight.
    fn pump(&mut self) {
        self.stats().queued = self.queue.len() as u64;
        if self.in_flight.is_some() {
            return;
        }
        let (Some(courier), Some(job)) = (self.courier.clone(), self.queue.pop()) else {
            return;
        };
        self.stats().queued = self.queue.len() as u64;
        let myself = self.myself.clone();
        self.in_flight = Some(tokio::spawn(async move {
            let delivery = courier.deliver(job).await;
            let _ = myself.cast(WebhookMessage::Delivered(delivery));
        }));
    }

    fn on_delivered(&mut self, delivery: Delivery) {
        self.in_flight = None;
        let nick = &self.settings.nick;
        {
            let mut stats = self.stats();
            stats.retries += u64::from(delivery.attempts.saturating_sub(1));
            match delivery.delivered() {
                true => stats.delivered += 1,
                false => {
                    stats.failed += 1;
                    stats.last_error = Some(format!("http: {}", delivery.last.describe()));
                }
            }
        }
        match delivery.delivered() {
            true => {
                tracing::info!(agent.nick = %nick, alert.event = delivery.event, attempts = delivery.attempts, "webhook delivered")
            }
            false => {
                tracing::warn!(agent.nick = %nick, alert.event = delivery.event, attempts = delivery.attempts, error = %delivery.last.describe(), "Webhook POST failed")
            }
        }
        self.pump();
    }
}
