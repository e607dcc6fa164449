//! The `irc` actor against the in-repo fake server: faults no real server produces on
//! demand (half-open links, stalls, 433/432, no welcome), registration lines, queuing while
//! down, injection attempts and line splitting.

#[path = "support/fake_ircd.rs"]
mod fake_ircd;
#[path = "support/irc_agent.rs"]
mod irc_agent;
#[path = "support/spans.rs"]
mod spans;

use std::time::Duration;

use codexd_actors::child::{ControlMsg, FaultKind};
use codexd_actors::irc::{IrcError, IrcEvent, IrcMessage, MessageKind, SaslPlain};
use codexd_actors::trace::TraceCtx;
use fake_ircd::{Behaviour, FakeIrcd};
use irc_agent::{Agent, settings};
use spans::{Spans, attr};

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

async fn agent_on(
    fake: &FakeIrcd,
    tweak: impl FnOnce(&mut codexd_actors::irc::IrcSettings),
) -> Agent {
    let mut s = settings("127.0.0.1", fake.port(), "fake", "fake-bot");
    s.channels = vec!["#general".to_owned()];
    tweak(&mut s);
    Agent::start(s).await
}

/// Lines of connection `conn` without tags.
async fn commands(fake: &FakeIrcd, conn: usize) -> Vec<String> {
    fake.lines(conn)
        .await
        .into_iter()
        .map(|l| match l.strip_prefix('@') {
            Some(rest) => rest
                .split_once(' ')
                .map_or(String::new(), |(_, r)| r.to_owned()),
            None => l,
        })
        .collect()
}

#[tokio::test]
async fn registers_with_cap_ls_302_and_joins_on_welcome() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let agent = agent_on(&fake, |s| s.channels.push("#ops".to_owned())).await;
    let status = agent.wait_connected().await;
    assert_eq!(status.nick, "fake-bot");
    assert_eq!(status.caps, ["message-tags"]);
    fake.wait_for_line("JOIN #ops", |_, l| l == "JOIN #ops")
        .await;
    let lines = commands(&fake, 0).await;
    assert_eq!(
        lines[..3],
        ["CAP LS 302", "NICK fake-bot", "USER bot 0 * :fake-bot"]
    );
    let position = |want: &str| lines.iter().position(|l| l == want);
    assert!(position("CAP REQ :message-tags") < position("CAP END"));
    assert!(position("JOIN #general") < position("JOIN #ops"));
    assert_eq!(
        position("MODE fake-bot +A"),
        None,
        "MODE +A is agentirc-only"
    );
    agent.stop();
}

#[tokio::test]
async fn without_message_tags_no_line_is_ever_tagged() {
    let fake = FakeIrcd::start(Behaviour {
        caps: vec![],
        ..Behaviour::default()
    })
    .await;
    let agent = agent_on(&fake, |_| {}).await;
    agent.wait_connected().await;
    let trace = TraceCtx {
        traceparent: Some(TRACEPARENT.to_owned()),
        tracestate: None,
    };
    agent
        .send_traced("#general", "traced hello", trace)
        .await
        .expect("send");
    fake.wait_for_line("the traced line", |_, l| l.ends_with("traced hello"))
        .await;
    let lines = fake.lines(0).await;
    assert!(lines.iter().all(|l| !l.starts_with('@')), "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("CAP REQ")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l == "CAP END"));
    agent.stop();
}

#[tokio::test]
async fn traced_sends_carry_the_client_tag_on_a_standard_ircv3_server() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let agent = agent_on(&fake, |_| {}).await;
    agent.wait_connected().await;
    let trace = TraceCtx {
        traceparent: Some(TRACEPARENT.to_owned()),
        tracestate: None,
    };
    agent
        .send_traced("#general", "traced", trace)
        .await
        .expect("send");
    agent.send("#general", "plain").await.expect("send");
    let (_, traced) = fake
        .wait_for_line("traced", |_, l| l.ends_with(":traced"))
        .await;
    assert_eq!(
        traced,
        format!("@+culture.dev/traceparent={TRACEPARENT} PRIVMSG #general :traced")
    );
    let (_, plain) = fake
        .wait_for_line("plain", |_, l| l.ends_with(":plain"))
        .await;
    assert_eq!(plain, "PRIVMSG #general :plain");
    agent.stop();
}

#[tokio::test]
async fn server_pings_are_answered() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let agent = agent_on(&fake, |_| {}).await;
    agent.wait_connected().await;
    fake.send(0, "PING :xyz").await;
    fake.wait_for_line("PONG", |_, l| l == "PONG :xyz").await;
    agent.stop();
}

#[tokio::test]
async fn a_taken_nick_gets_a_suffix_and_says_so() {
    let fake = FakeIrcd::start(Behaviour {
        nick_in_use: vec!["fake-bot".to_owned()],
        ..Behaviour::default()
    })
    .await;
    let mut agent = agent_on(&fake, |_| {}).await;
    let taken = agent
        .event("nick taken", |e| matches!(e, IrcEvent::NickTaken { .. }))
        .await;
    assert_eq!(
        taken,
        IrcEvent::NickTaken {
            wanted: "fake-bot".to_owned(),
            using: "fake-bot_".to_owned()
        }
    );
    let status = agent.wait_connected().await;
    assert_eq!(status.nick, "fake-bot_");
    agent.stop();
}

#[tokio::test]
async fn a_rejected_nick_is_a_status_error_not_a_silent_loop() {
    let fake = FakeIrcd::start(Behaviour {
        erroneous: vec!["fake-bot".to_owned()],
        ..Behaviour::default()
    })
    .await;
    let mut agent = agent_on(&fake, |s| s.reconnect_max = Duration::from_secs(30)).await;
    let rejected = agent
        .event("nick rejected", |e| {
            matches!(e, IrcEvent::NickRejected { .. })
        })
        .await;
    assert!(matches!(rejected, IrcEvent::NickRejected { nick, .. } if nick == "fake-bot"));
    let status = agent
        .wait_status("nick_rejected", |s| s.state == "nick_rejected")
        .await;
    let error = status.last_error.expect("an error in status");
    assert!(error.contains("rejected nick fake-bot"), "{error}");
    assert_eq!(
        fake.connections(),
        1,
        "waits the longest backoff before retrying"
    );
    agent.stop();
}

#[tokio::test]
async fn a_server_that_never_welcomes_hits_the_registration_deadline() {
    let fake = FakeIrcd::start(Behaviour {
        register: false,
        ..Behaviour::default()
    })
    .await;
    let agent = agent_on(&fake, |s| {
        s.registration_timeout = Duration::from_millis(300)
    })
    .await;
    let status = agent
        .wait_status("deadline error", |s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("not welcomed"))
        })
        .await;
    assert_ne!(status.state, "connected");
    fake.wait_connections(2).await;
    agent.stop();
}

#[tokio::test]
async fn a_half_open_link_is_detected_by_keepalive_and_channels_are_rejoined() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let mut agent = agent_on(&fake, |s| {
        s.keepalive = Duration::from_millis(200);
        s.keepalive_timeout = Duration::from_millis(400);
    })
    .await;
    agent.wait_connected().await;
    agent.join("#later").await.expect("join");
    fake.wait_for_line("JOIN #later", |c, l| c == 0 && l == "JOIN #later")
        .await;
    fake.stall(0).await;
    let down = agent
        .event("disconnected", |e| {
            matches!(e, IrcEvent::Disconnected { .. })
        })
        .await;
    assert!(
        matches!(&down, IrcEvent::Disconnected { reason } if reason.contains("no reply to keepalive PING")),
        "{down:?}"
    );
    fake.wait_connections(2).await;
    fake.wait_for_line("rejoin #general", |c, l| c == 1 && l == "JOIN #general")
        .await;
    fake.wait_for_line("rejoin #later", |c, l| c == 1 && l == "JOIN #later")
        .await;
    let status = agent.wait_status("reconnected", |s| s.connects == 2).await;
    assert_eq!(status.channels, ["#general", "#later"]);
    agent.stop();
}

#[tokio::test]
async fn the_disconnect_fault_drops_the_link_and_the_actor_reconnects() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let mut agent = agent_on(&fake, |_| {}).await;
    agent.wait_connected().await;
    let (tx, rx) = ractor::concurrency::oneshot();
    agent
        .actor
        .cast(IrcMessage::Control(ControlMsg::Fault {
            path: vec![],
            kind: FaultKind::Disconnect,
            reply: tx.into(),
            trace: TraceCtx::default(),
        }))
        .expect("cast");
    rx.await.expect("answer").expect("accepted");
    agent
        .event("disconnected", |e| {
            matches!(e, IrcEvent::Disconnected { .. })
        })
        .await;
    fake.wait_connections(2).await;
    agent.wait_status("reconnected", |s| s.connects == 2).await;
    fake.wait_for_line("rejoin", |c, l| c == 1 && l == "JOIN #general")
        .await;
    agent.stop();
}

#[tokio::test]
async fn sends_while_down_are_queued_bounded_and_flushed_after_welcome() {
    let fake = FakeIrcd::start(Behaviour {
        register: false,
        ..Behaviour::default()
    })
    .await;
    let agent = agent_on(&fake, |s| {
        s.send_queue = 2;
        s.registration_timeout = Duration::from_millis(500);
    })
    .await;
    let first = agent.send("#general", "one").await.expect("queued");
    assert!(first.queued, "not reported as sent while down");
    agent.send("fake-ori", "two").await.expect("queued");
    let full = agent.send("#general", "three").await;
    assert_eq!(full, Err(IrcError::QueueFull { limit: 2 }));
    assert_eq!(agent.status().await.queued, 2);
    fake.set_behaviour(Behaviour::default()).await;
    agent.wait_connected().await;
    let (conn, _) = fake
        .wait_for_line("flushed", |_, l| l == "PRIVMSG fake-ori :two")
        .await;
    let lines = fake.lines(conn).await;
    let at = |want: &str| lines.iter().position(|l| l == want).expect(want);
    assert!(at("JOIN #general") < at("PRIVMSG #general :one"));
    assert!(at("PRIVMSG #general :one") < at("PRIVMSG fake-ori :two"));
    assert!(!lines.iter().any(|l| l.contains("three")));
    assert_eq!(agent.status().await.queued, 0);
    agent.stop();
}

#[tokio::test]
async fn nothing_from_the_agent_can_inject_an_irc_command() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let agent = agent_on(&fake, |_| {}).await;
    agent.wait_connected().await;
    for target in ["#a\r\nQUIT :x", "#a b", "nick\0x", ":x", ""] {
        assert!(
            matches!(agent.send(target, "hi").await, Err(IrcError::Invalid(_))),
            "target {target:?}"
        );
    }
    assert!(matches!(
        agent.join("#a\nPART #general").await,
        Err(IrcError::Invalid(_))
    ));
    let report = agent
        .send("#general", "hi\r\nQUIT :bye\nthird\0line\u{2028}fourth")
        .await
        .expect("send");
    assert_eq!(report.lines, 4);
    fake.wait_for_line("last line", |_, l| l == "PRIVMSG #general :fourth")
        .await;
    let lines = fake.lines(0).await;
    assert!(lines.contains(&"PRIVMSG #general :QUIT :bye".to_owned()));
    assert!(lines.contains(&"PRIVMSG #general :thirdline".to_owned()));
    assert!(!lines.iter().any(|l| l.starts_with("QUIT")), "{lines:#?}");
    agent.stop();
}

#[tokio::test]
async fn long_multibyte_text_is_split_to_fit_512_bytes_on_char_boundaries() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let agent = agent_on(&fake, |_| {}).await;
    agent.wait_connected().await;
    let text: String = "é日🎉a".repeat(200);
    let report = agent.send("#general", &text).await.expect("send");
    assert!(report.lines > 1);
    let mut got = String::new();
    fake.wait_for_line("the last chunk", |_, l| {
        l.starts_with("PRIVMSG #general :") && text.ends_with(&l["PRIVMSG #general :".len()..])
    })
    .await;
    let lines = fake.lines(0).await;
    let chunks: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("PRIVMSG #general :"))
        .collect();
    assert_eq!(chunks.len(), report.lines);
    // The server relays `:fake-bot!bot@127.0.0.1 PRIVMSG #general :<chunk>\r\n`.
    let relay_prefix = ":fake-bot!bot@127.0.0.1 PRIVMSG #general :".len();
    for chunk in &chunks {
        assert!(
            relay_prefix + chunk.len() + 2 <= 512,
            "{} bytes",
            chunk.len()
        );
        got.push_str(chunk);
    }
    assert_eq!(got, text);
    agent.stop();
}

#[tokio::test]
async fn mentions_dms_ambient_and_system_senders() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let mut agent = agent_on(&fake, |_| {}).await;
    agent.wait_connected().await;
    fake.send(0, ":system-fake!s@fake PRIVMSG #general :@bot system")
        .await;
    fake.send(0, ":fake-ori!o@h PRIVMSG #general :@bot-helper please")
        .await;
    fake.send(
        0,
        "@msgid=m1 :fake-ori!o@h PRIVMSG #general :hey @bot, look",
    )
    .await;
    fake.send(0, ":fake-ori!o@h PRIVMSG fake-bot :a dm").await;
    let kinds = [
        MessageKind::Ambient,
        MessageKind::Mention,
        MessageKind::Direct,
    ];
    for kind in kinds {
        let event = agent
            .event("message", |e| matches!(e, IrcEvent::Message(_)))
            .await;
        let IrcEvent::Message(message) = event else {
            unreachable!()
        };
        assert_eq!(message.kind, kind, "{message:?}");
        assert_eq!(message.sender, "fake-ori");
        match kind {
            MessageKind::Mention => {
                assert_eq!(message.msgid.as_deref(), Some("m1"));
                assert_eq!(message.reply_to, "#general");
            }
            MessageKind::Direct => {
                assert_eq!(message.key, "DM:fake-ori");
                assert_eq!(message.reply_to, "fake-ori");
            }
            _ => {}
        }
    }
    let read = agent.read("#general").await;
    let texts: Vec<&str> = read.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["@bot-helper please", "hey @bot, look"]);
    assert!(agent.read("#general").await.is_empty(), "reads consume");
    assert_eq!(agent.read("DM:fake-ori").await.len(), 1);
    agent.stop();
}

/// `ROOMINVITE` goes to the intake as an invitation from the requestor (else the line's
/// source); a room name the irc rules refuse drops the line.
#[tokio::test]
async fn room_invites_go_to_the_intake_and_bad_room_names_are_dropped() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let s = settings("127.0.0.1", fake.port(), "fake", "fake-bot");
    let (mut agent, mut intake) = Agent::start_observed(s).await;
    agent.wait_connected().await;
    let lines = [
        ":fake-ori!o@h ROOMINVITE room fake-bot :requestor=fake-ori",
        ":fake-ori!o@h ROOMINVITE #a,#b fake-bot :requestor=fake-ori",
        "@msgid=i1 :fake-ori!o@h ROOMINVITE #r1 fake-bot :requestor=fake-ori;purpose=p",
        ":fake-ori!o@h ROOMINVITE #r2 fake-bot :requestor=not a nick;purpose=p",
        ":irc.example.org ROOMINVITE #r3 fake-bot tags=rust",
        ":fake-eve!e@h ROOMINVITE &r4 fake-bot requestor=",
    ];
    for line in lines {
        fake.send(0, line).await;
    }
    let expected = [
        (
            "#r1",
            "fake-ori",
            "requestor=fake-ori;purpose=p",
            Some("i1"),
        ),
        ("#r2", "fake-ori", "requestor=not a nick;purpose=p", None),
        ("#r3", "irc.example.org", "tags=rust", None),
        ("&r4", "fake-eve", "requestor=", None),
    ];
    for (room, sender, text, msgid) in expected {
        let addressed = irc_agent::next_addressed(&mut intake, room).await;
        assert!(addressed.hold.is_some(), "{room} holds its window place");
        let invite = addressed.message;
        assert_eq!(invite.kind, MessageKind::Invite, "{invite:?}");
        assert_eq!(
            (invite.key.as_str(), invite.reply_to.as_str()),
            (room, room)
        );
        assert_eq!(invite.sender, sender, "{invite:?}");
        assert_eq!(invite.text, text);
        assert_eq!(invite.msgid.as_deref(), msgid);
        assert_eq!(invite.thread, None);
        let event = agent
            .event("RoomInvite", |e| matches!(e, IrcEvent::RoomInvite { .. }))
            .await;
        assert!(
            matches!(&event, IrcEvent::RoomInvite { channel, .. } if channel == room),
            "the refused rooms publish no event either: {event:?}"
        );
    }
    assert!(agent.read("#r1").await.is_empty(), "not buffered");
    agent.stop();
}

#[tokio::test]
async fn sasl_plain_authenticates_and_a_wrong_password_is_reported() {
    let credentials = SaslPlain {
        username: "bot".to_owned(),
        password: "s3cret".to_owned(),
    };
    let fake = FakeIrcd::start(Behaviour {
        sasl: Some(("bot".to_owned(), "s3cret".to_owned())),
        ..Behaviour::default()
    })
    .await;
    let good = credentials.clone();
    let agent = agent_on(&fake, move |s| s.sasl = Some(good)).await;
    agent.wait_connected().await;
    let lines = commands(&fake, 0).await;
    assert!(
        lines.contains(&"CAP REQ :message-tags sasl".to_owned()),
        "{lines:#?}"
    );
    assert!(lines.contains(&"AUTHENTICATE PLAIN".to_owned()));
    agent.stop();
    assert!(
        !format!("{credentials:?}").contains("s3cret"),
        "Debug redacts"
    );

    let wrong = SaslPlain {
        password: "nope".to_owned(),
        ..credentials
    };
    let agent = agent_on(&fake, move |s| s.sasl = Some(wrong)).await;
    agent
        .wait_status("sasl failure", |s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("SASL authentication failed"))
        })
        .await;
    agent.stop();
}

/// Culture §5.8 on inbound lines, seen through the OpenTelemetry layer: a valid tag parents
/// `harness.irc.message.handle` remotely; none makes a local root; a bad one a root with
/// `culture.trace.dropped_reason`. Each connection attempt is a `harness.irc.connect` span.
#[tokio::test(flavor = "current_thread")]
async fn inbound_trace_tags_parent_or_explain_the_handle_span() {
    let spans = Spans::capture();

    let fake = FakeIrcd::start(Behaviour::default()).await;
    let agent = agent_on(&fake, |_| {}).await;
    agent.wait_connected().await;
    let too_long = format!("{TRACEPARENT}0");
    for (tag, text) in [
        (Some(TRACEPARENT), "valid"),
        (None, "missing"),
        (Some("BAD"), "malformed"),
        (Some(too_long.as_str()), "too_long"),
    ] {
        let tags = tag.map_or(String::new(), |t| format!("@culture.dev/traceparent={t} "));
        fake.send(0, &format!("{tags}:fake-ori!o@h PRIVMSG #general :{text}"))
            .await;
    }
    fake.send(0, "PING :done").await;
    fake.wait_for_line("PONG", |_, l| l.ends_with("PONG :done"))
        .await;
    let handles: Vec<_> = spans
        .named("harness.irc.message.handle")
        .into_iter()
        .filter(|s| attr(s, "irc.command").as_deref() == Some("PRIVMSG"))
        .collect();
    assert_eq!(handles.len(), 4, "{handles:#?}");
    let (valid, missing, malformed, too_long) =
        (&handles[0], &handles[1], &handles[2], &handles[3]);
    assert_eq!(
        valid.span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(valid.parent_span_id.to_string(), "b7ad6b7169203331");
    assert_eq!(
        attr(valid, "culture.trace.origin").as_deref(),
        Some("remote")
    );
    assert_eq!(attr(valid, "irc.client.nick").as_deref(), Some("fake-bot"));
    assert_eq!(
        attr(missing, "culture.trace.origin").as_deref(),
        Some("local")
    );
    for (span, reason) in [(malformed, "malformed"), (too_long, "too_long")] {
        assert_eq!(
            attr(span, "culture.trace.origin").as_deref(),
            Some("remote")
        );
        assert_eq!(
            attr(span, "culture.trace.dropped_reason").as_deref(),
            Some(reason)
        );
        assert_eq!(
            span.parent_span_id,
            opentelemetry::trace::SpanId::INVALID,
            "a root"
        );
    }
    for span in [missing, malformed, too_long] {
        assert_ne!(span.span_context.trace_id(), valid.span_context.trace_id());
    }
    let connect = spans.named("harness.irc.connect").into_iter().next();
    let connect = connect.expect("a harness.irc.connect span for the connection attempt");
    assert_eq!(attr(&connect, "harness.nick").as_deref(), Some("fake-bot"));
    assert_eq!(
        attr(&connect, "harness.server"),
        Some(format!("127.0.0.1:{}", fake.port()))
    );
    assert_eq!(attr(&connect, "harness.backend").as_deref(), Some("codex"));
    agent.stop();
}
