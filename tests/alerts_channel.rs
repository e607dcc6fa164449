//! Alerts reach `#alerts` on agentirc with the default settings: two agents (real `irc`,
//! `webhook` and `attention`; inert test `socket` and `runner`) on a real agentirc, and
//! `spark-watch`, a raw client in `#alerts`.
//!
//! - A crash loop of a child other than `irc` puts one `circuit_open` line in `#alerts`:
//!   agents join the channel by default, so agentirc takes the line.
//! - A whole agent's circuit (`codexd fault <nick> agent panic`) is alerted through the other
//!   agent's webhook, while the failed agent is down.
//! - With `join_channel: false` (Culture's behaviour) agentirc refuses every alert line:
//!   each refusal is counted and the line sent again, then given up and counted, never lost
//!   silently.

#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use irc_client::{RawClient, command_and_params, source_nick};
use ircd::{Flavor, Ircd};
use support::{Daemon, Scratch, child, eventually};

/// Two agents; `webhooks` is the config's `webhooks:` block (empty: the defaults). One
/// failure opens a circuit, for a minute.
fn config(ircd: &Ircd, webhooks: &str) -> String {
    let agent = |nick: &str| {
        format!(
            "  - nick: {nick}\n    channels: ['#general']\n    test_children: [socket, runner]\n"
        )
    };
    format!(
        "server:\n  name: spark\n  host: {host}\n  port: {port}\nstate_dir: {{home}}/state\ncontrol_socket: {{socket}}\nshutdown_grace: 5s\n{webhooks}restart:\n  backoff_base: 100ms\n  backoff_cap: 200ms\n  max_restarts: 1\n  window: 60s\n  cooldown: 60s\nagents:\n{a}{b}",
        host = ircd.host(),
        port = ircd.port(),
        a = agent("spark-a"),
        b = agent("spark-b"),
    )
}

/// agentirc, the daemon on `config`, both agents connected, and a watcher in `#alerts`.
async fn start(webhooks: &str) -> Option<(Ircd, Scratch, Daemon, RawClient)> {
    let ircd = Ircd::start(Flavor::Agentirc, "spark").await?;
    let scratch = Scratch::new();
    scratch.write_config(&config(&ircd, webhooks));
    let daemon = scratch.run(&[]);
    eventually("both agents are connected", || {
        let status = scratch.status()?;
        let up = |nick| child(&status, nick, "irc").map(|irc| irc["detail"]["state"].clone());
        (up("spark-a")? == "connected" && up("spark-b")? == "connected").then_some(())
    });
    let mut watch = RawClient::connect(ircd.host(), ircd.port(), "spark-watch", &[]).await;
    watch.join("#alerts").await;
    Some((ircd, scratch, daemon, watch))
}

/// `codexd fault <nick> <child> <kind>`.
fn fault(scratch: &Scratch, nick: &str, child: &str, kind: &str) {
    let socket = scratch.socket();
    let out = scratch.cli(&[
        "fault",
        "--socket",
        socket.to_str().expect("utf-8"),
        nick,
        child,
        kind,
    ]);
    assert!(out.status.success(), "fault {nick} {child} {kind}: {out:?}");
}

/// The sender's nick and text of a PRIVMSG to `#alerts`.
fn alert(line: &str) -> Option<(String, String)> {
    let (command, params) = command_and_params(line);
    if command != "PRIVMSG" || params.first().map(String::as_str) != Some("#alerts") {
        return None;
    }
    Some((source_nick(line)?, params.get(1)?.clone()))
}

/// Reads everything the server sent `client` before now (a PING's PONG comes after it).
async fn drain(client: &mut RawClient) {
    client.send("PING :drained").await;
    client
        .expect("PONG drained", |l| {
            l.contains("PONG") && l.ends_with("drained")
        })
        .await;
}

fn webhook(scratch: &Scratch, nick: &str) -> Option<serde_json::Value> {
    Some(child(&scratch.status()?, nick, "webhook")?["detail"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn circuits_of_a_child_and_of_a_whole_agent_reach_the_alerts_channel_by_default() {
    let Some((_ircd, scratch, _daemon, mut watch)) = start("").await else {
        return;
    };
    fault(&scratch, "spark-a", "attention", "panic");
    let line = watch
        .expect("spark-a's circuit_open in #alerts", |l| {
            alert(l).is_some_and(|(_, text)| text.contains("circuit open"))
        })
        .await;
    let (sender, text) = alert(&line).expect("an alert");
    assert_eq!(sender, "spark-a");
    assert!(
        text.starts_with("Agent spark-a: attention failed 1 time; circuit open"),
        "{text}"
    );

    // The whole agent: spark-a's supervisor panics, the Host opens its circuit, and spark-b
    // carries the alert while spark-a is down.
    fault(&scratch, "spark-a", "agent", "panic");
    let line = watch
        .expect("the whole agent's circuit_open in #alerts", |l| {
            alert(l).is_some_and(|(_, text)| text.contains("agent failed"))
        })
        .await;
    let (sender, text) = alert(&line).expect("an alert");
    assert_eq!(sender, "spark-b", "spark-a is down: {text}");
    assert!(
        text.starts_with("Agent spark-a: agent failed 1 time; circuit open"),
        "{text}"
    );
    let status = scratch.status().expect("status");
    let spark_a = support::agent(&status, "spark-a").expect("spark-a");
    assert_eq!(spark_a["circuit"], "open", "{spark_a}");

    // One line per circuit: the attention alert was not repeated.
    drain(&mut watch).await;
    let opens: Vec<_> = (watch.received().iter())
        .filter_map(|l| alert(l))
        .filter(|(_, text)| text.contains("attention failed"))
        .collect();
    assert_eq!(opens.len(), 1, "{opens:?}");
    let refused = webhook(&scratch, "spark-b").expect("spark-b's webhook")["irc_refused"].clone();
    assert_eq!(refused, 0, "agentirc took every line");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_alert_lines_are_counted_retried_and_given_up_visibly() {
    let Some((_ircd, scratch, _daemon, mut watch)) =
        start("webhooks:\n  join_channel: false\n").await
    else {
        return;
    };
    fault(&scratch, "spark-a", "attention", "panic");
    let detail = eventually("the alert line is refused, retried and given up", || {
        let detail = webhook(&scratch, "spark-a")?;
        (detail["irc_failed"] == 1).then_some(detail)
    });
    assert_eq!(detail["irc_refused"], 4, "{detail}");
    assert_eq!(
        detail["irc_sent"], 4,
        "the first send and three resends: {detail}"
    );
    let error = detail["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("#alerts refused the alert 4 times") && error.contains("join_channel"),
        "{error}"
    );
    drain(&mut watch).await;
    assert!(
        !watch.received().iter().any(|l| alert(l).is_some()),
        "agentirc delivered nothing to #alerts: {:?}",
        watch.received()
    );
}
