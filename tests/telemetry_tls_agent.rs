//! A collector whose certificate codexd does not trust: the real agent (real codex offline
//! against the fake model, on a real agentirc) keeps answering and `codexd status` keeps
//! working while every export fails, and the log says so once per signal — naming the
//! endpoint and the untrusted certificate — not once per export.
//!
//! Peers: agentirc, codex, the OTLP receiver and the openssl CLI from
//! `scripts/install-peers`; a missing peer is a loud SKIP (a failure under `CI=true`).

#[path = "support/certs.rs"]
mod certs;
#[path = "support/codex_agent.rs"]
mod codex_agent;
#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use certs::TestCa;
use codex_agent::{Codex, CodexAgent, Extra, NICK};
use fake_model::Reply;
use otlp::{OtlpSink, SinkTls, skip_or_fail};
use support::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_one_clear_error_per_signal_and_the_agent_keeps_answering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, wrong) = match (
        TestCa::new(dir.path(), "collector"),
        TestCa::new(dir.path(), "wrong"),
    ) {
        (Ok(ca), Ok(wrong)) => (ca, wrong),
        (Err(reason), _) | (_, Err(reason)) => return skip_or_fail(&reason),
    };
    let server = ca.server("collector");
    let tls = SinkTls {
        cert: server.cert,
        key: server.key,
        client_ca: None,
    };
    let sink = match OtlpSink::start_tls(&tls) {
        Ok(sink) => sink,
        Err(reason) => return skip_or_fail(&reason),
    };
    // Traces over gRPC from the file, metrics over HTTP/protobuf from the signal's
    // variables; both trust the system roots and the wrong CA.
    let top = format!(
        "telemetry:\n  enabled: true\n  service_name: codexd-wrong-ca\n  otlp_endpoint: {}\n  \
         otlp_protocol: grpc\n  otlp_ca_file: {}\n  metrics_export_interval_ms: 200\n",
        sink.grpc_endpoint(),
        wrong.ca().display()
    );
    let env = [
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL".to_owned(),
            "http/protobuf".to_owned(),
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT".to_owned(),
            format!("{}/v1/metrics", sink.http_endpoint()),
        ),
    ];
    let extra = Extra {
        top: &top,
        env: &env,
        ..Extra::default()
    };
    let script = vec![Reply::text("first answer"), Reply::text("second answer")];
    let Some(mut agent) = CodexAgent::start(Codex::Real(script), extra).await else {
        return;
    };

    agent.say("#general", &format!("@{NICK} one")).await;
    agent.reply("#general", "first answer").await;
    // Exports keep failing all the while: each metrics export is one refused handshake.
    let refused = eventually("the receiver refused five handshakes", || {
        agent.scratch.status()?;
        let errors = sink.tls_errors();
        (errors.len() >= 5).then_some(errors)
    });
    assert!(
        refused.iter().all(|e| e.contains("UNKNOWN_CA")),
        "codexd refused the collector's certificate: {refused:?}"
    );
    agent.say("#general", &format!("@{NICK} two")).await;
    agent.reply("#general", "second answer").await;
    let status = agent.scratch.status().expect("codexd status answers");
    assert!(status["agents"].is_array(), "{status}");

    let log = agent.log();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("otlp export failed"))
        .collect();
    let of = |signal: &str| {
        failures
            .iter()
            .filter(|l| l.contains(&format!("signal=\"{signal}\"")))
            .copied()
            .collect::<Vec<_>>()
    };
    let (traces, metrics) = (of("traces"), of("metrics"));
    assert_eq!((traces.len(), metrics.len()), (1, 1), "{log}");
    for (line, endpoint) in [
        (traces[0], sink.grpc_endpoint()),
        (metrics[0], format!("{}/v1/metrics", sink.http_endpoint())),
    ] {
        assert!(line.contains(&format!("endpoint={endpoint}")), "{line}");
        assert!(
            line.contains("invalid peer certificate: UnknownIssuer"),
            "{line}"
        );
        assert!(
            line.contains("wrong-ca.pem"),
            "names what was trusted: {line}"
        );
    }
    assert!(
        !log.contains("ExportError"),
        "the SDK's per-export errors are not logged:\n{log}"
    );
    assert_eq!(sink.spans().len() + sink.metrics().len(), 0);
    agent.stop_daemon();
}
