//! The attention actor on paused time, with stand-ins for its peers: an `irc` actor that
//! answers buffer reads, a runner that counts wake-ups, a real journal, and a clock that
//! follows tokio's.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use ractor::{Actor, ActorRef};
use tokio::sync::broadcast;

use super::*;
use crate::irc::{BufferedMessage, InboundMessage};
use crate::runner::journal::{EntryKind, Journal};
use crate::runner::{Inbox, InboxPeers, RunnerMessage};

const NICK: &str = "spark-codex";

/// Answers `Read` with the lines it holds for the key (and forgets them).
struct FakeIrc(Arc<Mutex<Vec<BufferedMessage>>>);

impl Actor for FakeIrc {
    type Msg = IrcMessage;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<IrcMessage>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<IrcMessage>,
        message: IrcMessage,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let IrcMessage::Read { reply, .. } = message {
            let lines = std::mem::take(&mut *self.0.lock().expect("lines"));
            let _ = reply.send(lines);
        }
        Ok(())
    }
}

/// Counts `Wake`s.
struct FakeRunner(Arc<AtomicUsize>);

impl Actor for FakeRunner {
    type Msg = RunnerMessage;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<RunnerMessage>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<RunnerMessage>,
        message: RunnerMessage,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if matches!(message, RunnerMessage::Wake) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

struct Rig {
    actor: ActorRef<AttentionMessage>,
    events: broadcast::Sender<IrcEvent>,
    lines: Arc<Mutex<Vec<BufferedMessage>>>,
    wakes: Arc<AtomicUsize>,
    inbox: Inbox,
    pause: PauseSwitch,
    /// Seconds since local midnight at the rig's start.
    clock_base: Arc<AtomicU32>,
    _dir: tempfile::TempDir,
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn quick_policy() -> Policy {
    let spec = |interval, hold: Option<u64>| BandSpec {
        interval: secs(interval),
        hold: hold.map(secs),
    };
    Policy {
        bands: [
            spec(10, Some(60)),
            spec(20, Some(60)),
            spec(40, Some(60)),
            spec(80, None),
        ],
    }
}

async fn rig(mode: Mode, sleep: Option<SleepWindow>, clock_at: u32) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let (events, _) = broadcast::channel(64);
    let irc_link = Link::default();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (irc, _) = Actor::spawn(None, FakeIrc(lines.clone()), ())
        .await
        .expect("irc");
    irc_link.set(irc);
    let runner_link = Link::default();
    let wakes = Arc::new(AtomicUsize::new(0));
    let (runner, _) = Actor::spawn(None, FakeRunner(wakes.clone()), ())
        .await
        .expect("runner");
    runner_link.set(runner);
    let (journal, _) = Journal::open(dir.path()).expect("journal");
    let inbox_peers = InboxPeers {
        nick: NICK.into(),
        irc: irc_link.clone(),
        runner: runner_link.clone(),
        webhook: Link::default(),
        tags: Vec::new(),
        audit: None,
    };
    let (_intake, queue) = crate::irc::IntakePath::new(16);
    let inbox = Inbox::start(journal, queue, Default::default(), inbox_peers);
    let pause = PauseSwitch::default();
    let clock_base = Arc::new(AtomicU32::new(clock_at));
    let started = Instant::now();
    let base = clock_base.clone();
    let clock: LocalClock = Arc::new(move || {
        let elapsed = u32::try_from(started.elapsed().as_secs()).unwrap_or(0);
        (base.load(Ordering::SeqCst) + elapsed) % 86_400
    });
    let settings = AttentionSettings {
        nick: NICK.into(),
        channels: vec!["#general".into()],
        mode,
        thread_window: secs(1800),
        sleep,
        quiet: vec!["#alerts".into()],
        retry: secs(5),
    };
    let peers = AttentionPeers {
        irc: irc_link,
        polls: Some(inbox.polls(NICK, runner_link)),
        pause: pause.clone(),
        clock,
    };
    let factory = AttentionFactory::new(settings, peers, &events);
    let (actor, _) = Actor::spawn(None, Attention, factory.args.clone())
        .await
        .expect("attention");
    Rig {
        actor,
        events,
        lines,
        wakes,
        inbox,
        pause,
        clock_base,
        _dir: dir,
    }
}

impl Rig {
    async fn status(&self) -> Value {
        let reply = self
            .actor
            .call(
                |reply| {
                    AttentionMessage::Control(ControlMsg::Status {
                        budget: secs(1),
                        reply,
                    })
                },
                None,
            )
            .await
            .expect("status");
        match reply {
            ractor::rpc::CallResult::Success(report) => report.detail.expect("detail"),
            other => panic!("no status: {other:?}"),
        }
    }

    /// An inbound line: straight into the actor's mailbox (so it is handled before any
    /// later request of the test), and into the fake buffer.
    async fn say(&self, key: &str, sender: &str, text: &str, kind: MessageKind) {
        let reply_to = if kind == MessageKind::Direct {
            sender
        } else {
            key
        };
        let _ = self
            .actor
            .cast(AttentionMessage::Irc(IrcEvent::Message(InboundMessage {
                key: key.into(),
                reply_to: reply_to.into(),
                sender: sender.into(),
                text: text.into(),
                kind,
                thread: None,
                msgid: None,
                trace: TraceCtx::default(),
            })));
        self.lines
            .lock()
            .expect("lines")
            .push(BufferedMessage::new(sender, text, 0.0, None));
        self.settle().await;
    }

    fn polls(&self) -> Vec<String> {
        self.inbox
            .journal
            .lock()
            .pending()
            .into_iter()
            .filter(|e| e.entry.kind == EntryKind::Poll)
            .map(|e| e.entry.prompt)
            .collect()
    }

    /// Lets the actor and its tasks run at the current instant.
    async fn settle(&self) {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        let _ = self.status().await;
    }

    async fn advance(&self, by: Duration) {
        tokio::time::advance(by).await;
        self.settle().await;
    }

    fn target(status: &Value, target: &str) -> Value {
        status["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .find(|t| t["target"] == target)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_agent_only_wakes_for_the_sleep_clock() {
    let night = SleepWindow {
        start_minute: 23 * 60,
        end_minute: 8 * 60,
    };
    let rig = rig(Mode::Bands(Policy::default()), Some(night), 12 * 3600).await;
    rig.settle().await;
    for _ in 0..60 {
        rig.advance(secs(60)).await;
    }
    let status = rig.status().await;
    // One look at start, then one every 10 minutes: 7 in the first hour, no poll wake-ups.
    assert_eq!(status["wakeups"], 7, "{status}");
    assert_eq!(status["polls"], 0);
    assert_eq!(Rig::target(&status, "#general")["band"], "IDLE");
    assert!(rig.polls().is_empty());

    // Without a sleep window nothing wakes it at all (Culture: 720 poll-loop ticks an hour).
    let rig = self::rig(Mode::Bands(Policy::default()), None, 12 * 3600).await;
    for _ in 0..60 {
        rig.advance(secs(60)).await;
    }
    assert_eq!(rig.status().await["wakeups"], 0);
}

#[tokio::test(start_paused = true)]
async fn ambient_lines_are_batched_into_one_poll_without_the_agents_own_lines() {
    let rig = rig(Mode::Bands(quick_policy()), None, 0).await;
    rig.settle().await;
    rig.say(
        "#general",
        "spark-ori",
        "anyone around?",
        MessageKind::Ambient,
    )
    .await;
    rig.lines.lock().expect("lines").push(BufferedMessage::new(
        NICK,
        "my own earlier reply",
        0.0,
        None,
    ));
    rig.settle().await;
    let status = rig.status().await;
    let general = Rig::target(&status, "#general");
    assert_eq!(general["unread"], true, "{status}");
    assert_eq!(
        general["next_poll_s"], 80.0,
        "IDLE interval from the first unread line"
    );
    rig.advance(secs(40)).await;
    rig.say("#general", "spark-ori", "hello?", MessageKind::Ambient)
        .await;
    rig.advance(secs(39)).await;
    assert!(rig.polls().is_empty(), "not due before 80 s");
    rig.advance(secs(1)).await;
    assert_eq!(
        rig.polls(),
        [
            "[IRC Channel Poll: #general] Recent unread messages:\n  <spark-ori> anyone around?\n  <spark-ori> hello?\n\nRespond naturally if any messages need your attention."
        ]
    );
    assert!(
        rig.wakes.load(Ordering::SeqCst) >= 1,
        "the runner was woken"
    );
    let status = rig.status().await;
    assert_eq!(status["polls"], 1);
    assert_eq!(Rig::target(&status, "#general")["unread"], false);
}

#[tokio::test(start_paused = true)]
async fn a_mention_makes_the_channel_hot_and_engaged_ambient_lines_polled_sooner() {
    let rig = rig(Mode::Bands(quick_policy()), None, 0).await;
    rig.say(
        "#general",
        "spark-ori",
        "@spark-codex hi",
        MessageKind::Mention,
    )
    .await;
    rig.settle().await;
    assert_eq!(Rig::target(&rig.status().await, "#general")["band"], "HOT");
    rig.lines.lock().expect("lines").clear(); // the mention is a turn of its own
    rig.advance(secs(5)).await;
    rig.say("#general", "spark-ori", "thanks", MessageKind::Ambient)
        .await;
    rig.advance(secs(10)).await;
    assert_eq!(rig.polls().len(), 1, "HOT: polled within 10 s");
    // A DM heats the agent's own target; it is never polled.
    rig.say("DM:spark-ori", "spark-ori", "psst", MessageKind::Direct)
        .await;
    rig.settle().await;
    assert_eq!(Rig::target(&rig.status().await, NICK)["band"], "HOT");
}

#[tokio::test(start_paused = true)]
async fn nothing_is_polled_while_paused_and_everything_after() {
    let rig = rig(Mode::Bands(quick_policy()), None, 0).await;
    rig.pause.pause(PauseReason::Manual);
    rig.say(
        "#general",
        "spark-ori",
        "while you slept",
        MessageKind::Ambient,
    )
    .await;
    rig.advance(secs(200)).await;
    assert!(rig.polls().is_empty());
    rig.pause.resume();
    rig.settle().await;
    assert_eq!(rig.polls().len(), 1, "due long ago: polled on resume");
}

#[tokio::test(start_paused = true)]
async fn irc_events_reach_the_actor_through_the_feed() {
    let rig = rig(Mode::Bands(quick_policy()), None, 0).await;
    let _ = rig.events.send(IrcEvent::Sent {
        target: "#general".into(),
    });
    let _ = rig.events.send(IrcEvent::Message(InboundMessage {
        key: "#general".into(),
        reply_to: "#general".into(),
        sender: "spark-ori".into(),
        text: "follow-up".into(),
        kind: MessageKind::Ambient,
        thread: None,
        msgid: None,
        trace: TraceCtx::default(),
    }));
    for _ in 0..100 {
        let status = rig.status().await;
        if Rig::target(&status, "#general")["band"] == "COOL" {
            assert_eq!(Rig::target(&status, "#general")["unread"], true);
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!(
        "the engaged ambient line never warmed #general: {}",
        rig.status().await
    );
}

#[tokio::test(start_paused = true)]
async fn legacy_mode_polls_configured_channels_only() {
    let rig = rig(Mode::Legacy(secs(60)), None, 0).await;
    rig.say(
        "#other",
        "spark-ori",
        "not configured",
        MessageKind::Ambient,
    )
    .await;
    rig.say("#general", "spark-ori", "configured", MessageKind::Ambient)
        .await;
    rig.advance(secs(60)).await;
    let polls = rig.polls();
    assert_eq!(polls.len(), 1, "{polls:?}");
    assert!(polls[0].starts_with("[IRC Channel Poll: #general]"));
}

#[tokio::test(start_paused = true)]
async fn the_sleep_window_pauses_and_resumes_but_honours_a_manual_resume() {
    let night = SleepWindow {
        start_minute: 23 * 60,
        end_minute: 8 * 60,
    };
    let rig = rig(Mode::Off, Some(night), 23 * 3600 - 30).await;
    rig.settle().await;
    assert!(!rig.pause.is_paused());
    rig.advance(secs(30)).await;
    assert_eq!(rig.pause.reason(), Some(PauseReason::Sleep), "23:00");
    assert_eq!(rig.status().await["sleep"]["asleep"], true);
    rig.pause.resume(); // an operator wakes it inside the window
    for _ in 0..6 {
        rig.advance(secs(600)).await;
    }
    assert!(
        !rig.pause.is_paused(),
        "a manual resume holds inside the window"
    );
    // Jump the clock to 07:59:30 and let the window end.
    rig.clock_base.store(8 * 3600 - 30 - 3630, Ordering::SeqCst);
    rig.advance(secs(600)).await;
    assert!(!rig.pause.is_paused());
    // The next night pauses again; the morning resumes.
    rig.clock_base.store(23 * 3600 - 4230, Ordering::SeqCst);
    rig.advance(secs(600)).await;
    assert_eq!(rig.pause.reason(), Some(PauseReason::Sleep));
    rig.clock_base.store(8 * 3600 - 4830, Ordering::SeqCst);
    rig.advance(secs(600)).await;
    assert!(
        !rig.pause.is_paused(),
        "the morning lifts the schedule's own pause"
    );
    // A manual pause is never lifted by the schedule.
    rig.pause.pause(PauseReason::Manual);
    rig.clock_base.store(23 * 3600 - 5430, Ordering::SeqCst);
    rig.advance(secs(600)).await;
    rig.clock_base.store(8 * 3600 - 6030, Ordering::SeqCst);
    rig.advance(secs(600)).await;
    assert_eq!(rig.pause.reason(), Some(PauseReason::Manual));
}

#[tokio::test(start_paused = true)]
async fn the_alerts_channel_is_never_polled() {
    let rig = rig(Mode::Bands(quick_policy()), None, 0).await;
    rig.say(
        "#alerts",
        "spark-ori",
        "Agent spark-x crashed (exit 1).",
        MessageKind::Ambient,
    )
    .await;
    rig.advance(secs(1000)).await;
    assert!(rig.polls().is_empty());
    assert_eq!(
        Rig::target(&rig.status().await, "#alerts")["unread"],
        Value::Null
    );
}

#[tokio::test(start_paused = true)]
async fn an_invitation_is_not_channel_traffic() {
    let rig = rig(Mode::Bands(quick_policy()), None, 0).await;
    rig.say(
        "#room",
        "spark-ori",
        "requestor=spark-ori;purpose=ship it",
        MessageKind::Invite,
    )
    .await;
    rig.advance(secs(1000)).await;
    assert!(rig.polls().is_empty());
    assert_eq!(Rig::target(&rig.status().await, "#room"), Value::Null);
}

#[test]
fn engaged_keeps_recent_channels_only() {
    let mut shared = Shared {
        tracker: Tracker::new(quick_policy()),
        engaged: HashMap::new(),
        unread: BTreeSet::new(),
        origin: Instant::now(),
        polls: 0,
        wakeups: 0,
        asleep: None,
    };
    let window = secs(60);
    for i in 0..10_000u64 {
        shared.engage(format!("peer{i}"), secs(i), window); // DM peers: never kept
    }
    assert!(shared.engaged.is_empty());
    shared.engage("#general".into(), secs(0), window);
    shared.engage("#ops".into(), secs(30), window);
    shared.engage("#dev".into(), secs(61), window);
    let mut kept: Vec<&str> = shared.engaged.keys().map(String::as_str).collect();
    kept.sort();
    assert_eq!(kept, ["#dev", "#ops"], "#general fell out of the window");
}
