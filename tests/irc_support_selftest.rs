//! Proves the IRC test support works: real servers (agentirc, InspIRCd, ngIRCd) relay a
//! channel message between two raw clients and come back after a restart; the fake server
//! registers a client, records its lines, drops it and runs SASL PLAIN.
//!
//! A missing peer prints a loud SKIP (fails under `CI=true`); `scripts/install-peers`
//! installs them.

#[path = "support/fake_ircd.rs"]
mod fake_ircd;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use fake_ircd::{Behaviour, FakeIrcd};
use irc_client::{RawClient, command_and_params, parse_privmsg};
use ircd::{Flavor, Ircd};

/// Hang detector for the raw socket reads in this file.
const PATIENCE: Duration = Duration::from_secs(30);

/// Two clients on `#general`: A's PRIVMSG reaches B intact; after a restart a client
/// registers again on the same port.
async fn relay_and_restart(flavor: Flavor, name: &str) {
    let Some(mut server) = Ircd::start(flavor, name).await else {
        return;
    };
    let prefix = server.nick_prefix();
    let (nick_a, nick_b) = (format!("{prefix}a"), format!("{prefix}b"));
    let mut a = RawClient::connect(server.host(), server.port(), &nick_a, &[]).await;
    let mut b = RawClient::connect(server.host(), server.port(), &nick_b, &[]).await;
    a.join("#general").await;
    b.join("#general").await;

    let text = "hello: from a, with ünïcode and  two spaces";
    a.send(&format!("PRIVMSG #general :{text}")).await;
    let line = b
        .expect("B receives A's message", |l| parse_privmsg(l).is_some())
        .await;
    let (tags, sender, target, received) = parse_privmsg(&line).expect("a PRIVMSG");
    assert_eq!(
        (sender.as_str(), target.as_str(), received.as_str()),
        (nick_a.as_str(), "#general", text)
    );
    assert!(tags.is_empty(), "no tags without message-tags: {line}");

    server.restart().await;
    b.expect_closed("B sees the old server go away").await;
    let mut again = RawClient::connect(server.host(), server.port(), &nick_b, &[]).await;
    again.join("#general").await;
    again.quit().await;
    drop(a);
    server.stop().await;
}

#[tokio::test]
async fn agentirc_relays_and_restarts() {
    relay_and_restart(Flavor::Agentirc, "spark").await;
}

#[tokio::test]
async fn inspircd_relays_and_restarts() {
    relay_and_restart(Flavor::Inspircd, "insp").await;
}

#[tokio::test]
async fn ngircd_relays_and_restarts() {
    // NICKLEN is 9: "ng-a" and "ng-b" fit.
    relay_and_restart(Flavor::Ngircd, "ng").await;
}

#[tokio::test]
async fn agentirc_tags_relayed_messages_with_msgid_and_keeps_history_across_restart() {
    let Some(mut server) = Ircd::start(Flavor::Agentirc, "spark").await else {
        return;
    };
    let mut a = RawClient::connect(server.host(), server.port(), "spark-ta", &[]).await;
    let mut b = RawClient::connect(
        server.host(),
        server.port(),
        "spark-tb",
        &["message-tags", "no-such-cap"],
    )
    .await;
    assert_eq!(b.acked_caps(), ["message-tags"]);
    a.join("#general").await;
    b.join("#general").await;
    a.send("PRIVMSG #general :tagged please").await;
    let line = b
        .expect("B receives a tagged message", |l| {
            parse_privmsg(l).is_some()
        })
        .await;
    let (tags, _, _, text) = parse_privmsg(&line).expect("a PRIVMSG");
    assert_eq!(text, "tagged please");
    assert!(
        tags.iter().any(|(k, v)| k == "msgid" && !v.is_empty()),
        "msgid tag on {line}"
    );

    server.restart().await;
    let mut c = RawClient::connect(server.host(), server.port(), "spark-tc", &[]).await;
    c.send("HISTORY RECENT #general 10").await;
    c.expect("the message in history after restart", |l| {
        let (command, params) = command_and_params(l);
        command == "HISTORY" && params.last().is_some_and(|t| t == "tagged please")
    })
    .await;
}

#[tokio::test]
async fn inspircd_offers_message_tags_and_tags_relayed_messages() {
    let Some(server) = Ircd::start(Flavor::Inspircd, "insp").await else {
        return;
    };
    let caps = ["message-tags", "server-time"];
    let mut a = RawClient::connect(server.host(), server.port(), "insp-ta", &[]).await;
    let mut b = RawClient::connect(server.host(), server.port(), "insp-tb", &caps).await;
    assert_eq!(b.acked_caps(), caps);
    a.join("#general").await;
    b.join("#general").await;
    a.send("PRIVMSG #general :tagged please").await;
    let line = b
        .expect("B receives a tagged message", |l| {
            parse_privmsg(l).is_some()
        })
        .await;
    let (tags, ..) = parse_privmsg(&line).expect("a PRIVMSG");
    assert!(tags.iter().any(|(k, _)| k == "msgid"), "msgid on {line}");
    assert!(tags.iter().any(|(k, _)| k == "time"), "time on {line}");
}

#[tokio::test]
async fn ngircd_naks_message_tags() {
    let Some(server) = Ircd::start(Flavor::Ngircd, "ng").await else {
        return;
    };
    let mut client =
        RawClient::connect(server.host(), server.port(), "ng-c", &["message-tags"]).await;
    assert!(
        !client.offered_caps().iter().any(|c| c == "message-tags"),
        "ngIRCd offered {:?}",
        client.offered_caps()
    );
    assert!(client.acked_caps().is_empty());
    client.send("CAP REQ :message-tags").await;
    client
        .expect("NAK of message-tags", |l| {
            let (command, params) = command_and_params(l);
            command == "CAP"
                && params.get(1).is_some_and(|s| s == "NAK")
                && params.last().is_some_and(|c| c.trim() == "message-tags")
        })
        .await;
}

#[tokio::test]
async fn agentirc_exports_telemetry_to_an_otlp_receiver() {
    let sink = match otlp::OtlpSink::start() {
        Ok(sink) => sink,
        Err(reason) => return otlp::skip_or_fail(&reason),
    };
    let Some(server) = Ircd::start_agentirc_with_otlp("spark", sink.grpc_port).await else {
        return;
    };
    let mut a = RawClient::connect(server.host(), server.port(), "spark-oa", &[]).await;
    let mut b =
        RawClient::connect(server.host(), server.port(), "spark-ob", &["message-tags"]).await;
    a.join("#general").await;
    b.join("#general").await;
    a.send("PRIVMSG #general :traced").await;
    let line = b
        .expect("B receives the message", |l| parse_privmsg(l).is_some())
        .await;
    let (tags, ..) = parse_privmsg(&line).expect("a PRIVMSG");
    assert!(
        tags.iter().any(|(k, _)| k == "culture.dev/traceparent"),
        "traceparent on {line}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !sink.spans().iter().any(|s| s.name == "irc.command.PRIVMSG") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no irc.command.PRIVMSG span reached the receiver; server log:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn fake_ircd_registers_records_and_drops() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let mut client =
        RawClient::connect("127.0.0.1", fake.port(), "fake-a", &["message-tags"]).await;
    assert_eq!(client.acked_caps(), ["message-tags"]);
    assert!(client.received().iter().any(|l| l.contains(" 001 fake-a ")));

    client.send("@+x=y PRIVMSG #c :hi").await;
    let (conn, line) = fake
        .wait_for_line("the tagged PRIVMSG", |_, l| l.contains("PRIVMSG #c"))
        .await;
    assert_eq!((conn, line.as_str()), (0, "@+x=y PRIVMSG #c :hi"));
    let lines = fake.lines(0).await;
    assert_eq!(
        lines[..4],
        [
            "CAP LS 302",
            "NICK fake-a",
            "USER fake-a 0 * :fake-a",
            "CAP REQ :message-tags"
        ]
    );

    fake.send(0, ":other!o@h PRIVMSG fake-a :psst").await;
    let line = client
        .expect("a line injected by the test", |l| l.ends_with(":psst"))
        .await;
    assert_eq!(
        parse_privmsg(&line).map(|(_, sender, target, _)| (sender, target)),
        Some(("other".to_owned(), "fake-a".to_owned()))
    );

    fake.drop_connection(0).await;
    client.expect_closed("EOF after drop_connection").await;
    assert_eq!(fake.connections(), 1);
}

#[tokio::test]
async fn fake_ircd_refuses_nicks_and_withholds_registration() {
    let fake = FakeIrcd::start(Behaviour {
        register: false,
        nick_in_use: vec!["taken".to_owned()],
        erroneous: vec!["b@d".to_owned()],
        ..Behaviour::default()
    })
    .await;
    let stream = TcpStream::connect(("127.0.0.1", fake.port()))
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    write
        .write_all(b"NICK taken\r\nNICK b@d\r\nNICK free\r\nUSER u 0 * :u\r\nPING :tok\r\n")
        .await
        .expect("write");
    let mut lines = BufReader::new(read).lines();
    let mut replies = Vec::new();
    while replies.len() < 3 {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("a reply within the hang detector")
            .expect("read");
        replies.push(line.expect("the fake keeps the link open"));
    }
    assert_eq!(
        replies,
        [
            ":fake 433 * taken :Nickname is already in use",
            ":fake 432 * b@d :Erroneous nickname",
            // With `register: true` a 001 would come before this PONG.
            ":fake PONG fake :tok",
        ]
    );
    fake.wait_for_line("the PING", |_, l| l == "PING :tok")
        .await;
}

#[test]
fn parse_privmsg_splits_tags_source_target_and_text() {
    let line = r"@msgid=1;x=a\sb\:c\\;flag :a!u@h PRIVMSG #c :hi :) there";
    let (tags, sender, target, text) = parse_privmsg(line).expect("a PRIVMSG");
    let expected_tags = [("msgid", "1"), ("x", "a b;c\\"), ("flag", "")];
    let expected_tags: Vec<(String, String)> = expected_tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(tags, expected_tags);
    assert_eq!((sender.as_str(), target.as_str()), ("a", "#c"));
    assert_eq!(text, "hi :) there");
    assert_eq!(parse_privmsg(":a!u@h NOTICE #c :hi"), None);
}

#[tokio::test]
async fn fake_ircd_stall_keeps_the_link_open_but_silent() {
    let fake = FakeIrcd::start(Behaviour::default()).await;
    let mut client = RawClient::connect("127.0.0.1", fake.port(), "fake-s", &[]).await;
    client.send("PING :before").await;
    client
        .expect("PONG before the stall", |l| l.ends_with(":before"))
        .await;
    fake.stall(0).await;
    client.send("PING :after").await;
    fake.send(0, ":fake NOTICE fake-s :discarded").await;
    // The link is open (the write succeeded) and nothing comes back: shown by a second
    // connection being served normally while the first still has no reply.
    let mut other = RawClient::connect("127.0.0.1", fake.port(), "fake-t", &[]).await;
    other.send("PING :other").await;
    other
        .expect("PONG on a fresh link", |l| l.ends_with(":other"))
        .await;
    assert!(
        fake.lines(0).await.iter().all(|l| l != "PING :after"),
        "a stalled link reads nothing"
    );
    fake.drop_connection(0).await;
    client
        .expect_closed("EOF after dropping a stalled link")
        .await;
    assert!(
        !client
            .received()
            .iter()
            .any(|l| l.ends_with(":after") || l.contains("discarded")),
        "nothing answered while stalled: {:?}",
        client.received()
    );
}

#[tokio::test]
async fn fake_ircd_sasl_plain() {
    let fake = FakeIrcd::start(Behaviour {
        sasl: Some(("alice".to_owned(), "s3cret".to_owned())),
        ..Behaviour::default()
    })
    .await;
    let mut client = RawClient::connect("127.0.0.1", fake.port(), "fake-l", &["sasl"]).await;
    assert_eq!(client.acked_caps(), ["sasl"]);
    // The CAP END already sent lets the fake register; SASL still works afterwards, and
    // the answers are what a daemon doing it before CAP END would see.
    client.send("AUTHENTICATE PLAIN").await;
    client
        .expect("AUTHENTICATE +", |l| l == "AUTHENTICATE +")
        .await;
    client.send("AUTHENTICATE AGFsaWNlAHMzY3JldA==").await; // "\0alice\0s3cret"
    client
        .expect("903", |l| command_and_params(l).0 == "903")
        .await;
    client.send("AUTHENTICATE PLAIN").await;
    client
        .expect("AUTHENTICATE +", |l| l == "AUTHENTICATE +")
        .await;
    client.send("AUTHENTICATE AGFsaWNlAHdyb25n").await; // "\0alice\0wrong"
    client
        .expect("904", |l| command_and_params(l).0 == "904")
        .await;
}
