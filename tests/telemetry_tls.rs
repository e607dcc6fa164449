//! OTLP over TLS end to end: `codexd run` (one agent of inert test children) exports spans
//! and metrics to the project's OTLP receiver serving TLS only, with certificates from a
//! private CA (`support/certs.rs`): over gRPC and HTTP/protobuf, with the CA from the file
//! or from `OTEL_EXPORTER_OTLP_CERTIFICATE`, with mTLS, and moved to another collector by
//! SIGHUP. Bad TLS files stop `check-config` and `run` with the key or variable named.
//!
//! Peers: the OTLP receiver (`scripts/install-peers`) and the openssl CLI; a missing peer is
//! a loud SKIP (a failure under `CI=true`). A wrong CA with a real agent answering on IRC
//! is in `telemetry_tls_agent.rs`.

#[path = "support/certs.rs"]
mod certs;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use certs::{CertPair, TestCa};
use otlp::{OtlpSink, SinkTls, skip_or_fail};
use support::{Daemon, Scratch, eventually};

/// A private CA with a server and a client certificate, and a second CA that signed none.
struct Pki {
    _dir: tempfile::TempDir,
    ca: TestCa,
    other: TestCa,
    server: CertPair,
    client: CertPair,
}

fn pki() -> Option<Pki> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, other) = match (
        TestCa::new(dir.path(), "good"),
        TestCa::new(dir.path(), "other"),
    ) {
        (Ok(ca), Ok(other)) => (ca, other),
        (Err(reason), _) | (_, Err(reason)) => {
            skip_or_fail(&reason);
            return None;
        }
    };
    let (server, client) = (ca.server("collector"), ca.client("codexd"));
    Some(Pki {
        _dir: dir,
        ca,
        other,
        server,
        client,
    })
}

/// A receiver serving TLS with `pki`'s server certificate; `mtls` requires a client
/// certificate from `pki`'s CA.
fn tls_sink(pki: &Pki, mtls: bool) -> Option<OtlpSink> {
    let tls = SinkTls {
        cert: pki.server.cert.clone(),
        key: pki.server.key.clone(),
        client_ca: mtls.then(|| pki.ca.ca()),
    };
    OtlpSink::start_tls(&tls)
        .map_err(|reason| skip_or_fail(&reason))
        .ok()
}

/// One agent of test children; `telemetry` adds keys (2-space indent) to `telemetry:`.
fn config(service: &str, telemetry: &str) -> String {
    format!(
        "server:\n  name: spark\ncontrol_socket: {{socket}}\nstate_dir: {{home}}/state\n\
         shutdown_grace: 5s\ntelemetry:\n  enabled: true\n  service_name: {service}\n  \
         otlp_timeout_ms: 3000\n  metrics_export_interval_ms: 200\n{telemetry}agents:\n  \
         - nick: spark-a\n    channels: ['#general']\n    test_children: [irc, socket, runner]\n"
    )
}

/// `codexd run` with spans batched for 200 ms and `env` added.
fn run(scratch: &Scratch, env: &[(&str, String)]) -> Daemon {
    let mut all = vec![("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned())];
    all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    scratch.run_with_env(&[], &all)
}

fn path(path: &std::path::Path) -> String {
    path.display().to_string()
}

/// Polls `codexd status` (each request is a `control.request` span) until `sink` holds
/// spans and metrics of `service`; their transports.
fn exports_arrive(scratch: &Scratch, sink: &OtlpSink, service: &str) -> (String, String) {
    eventually(
        &format!("spans and metrics of {service} at the receiver"),
        || {
            scratch.status();
            let span = sink
                .spans()
                .into_iter()
                .find(|s| s.service_name == service)?;
            let metric = sink
                .metrics()
                .into_iter()
                .find(|m| m.service_name == service)?;
            Some((span.transport, metric.transport))
        },
    )
}

/// How many spans and metrics of `service` reached `sink`.
fn received(sink: &OtlpSink, service: &str) -> (usize, usize) {
    let spans = sink
        .spans()
        .iter()
        .filter(|s| s.service_name == service)
        .count();
    let metrics = sink
        .metrics()
        .iter()
        .filter(|m| m.service_name == service)
        .count();
    (spans, metrics)
}

fn stop(mut daemon: Daemon) -> String {
    daemon.signal("TERM");
    assert_eq!(daemon.wait().code(), Some(0), "{}", daemon.log_text());
    daemon.log_text()
}

#[test]
fn grpc_with_the_ca_from_the_file() {
    let Some(pki) = pki() else { return };
    let Some(sink) = tls_sink(&pki, false) else {
        return;
    };
    let scratch = Scratch::new();
    let telemetry = format!(
        "  otlp_endpoint: https://localhost:{}\n  otlp_protocol: grpc\n  otlp_ca_file: {}\n",
        sink.grpc_port,
        path(&pki.ca.ca())
    );
    scratch.write_config(&config("codexd-tls-grpc", &telemetry));
    let daemon = run(&scratch, &[]);
    let transports = exports_arrive(&scratch, &sink, "codexd-tls-grpc");
    assert_eq!(transports, ("grpc".into(), "grpc".into()));
    let log = stop(daemon);
    assert!(!log.contains("otlp export failed"), "{log}");
}

#[test]
fn http_protobuf_with_the_ca_from_the_environment() {
    let Some(pki) = pki() else { return };
    let Some(sink) = tls_sink(&pki, false) else {
        return;
    };
    let scratch = Scratch::new();
    scratch.write_config(&config("codexd-tls-http", ""));
    let daemon = run(
        &scratch,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.http_endpoint()),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&pki.ca.ca())),
        ],
    );
    let transports = exports_arrive(&scratch, &sink, "codexd-tls-http");
    assert_eq!(transports, ("http".into(), "http".into()));
    let log = stop(daemon);
    assert!(!log.contains("otlp export failed"), "{log}");
}

/// Traces over gRPC and metrics over HTTP/protobuf at once (the signals' own variables),
/// to a receiver that requires a client certificate: with one both arrive; without one
/// both fail, once each in the log, and the receiver refused the HTTP handshakes.
#[test]
fn mtls_over_both_protocols_and_refused_without_a_client_certificate() {
    let Some(pki) = pki() else { return };
    let Some(sink) = tls_sink(&pki, true) else {
        return;
    };
    let signals = [
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc".to_owned()),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", sink.grpc_endpoint()),
        (
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "http/protobuf".to_owned(),
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            format!("{}/v1/metrics", sink.http_endpoint()),
        ),
    ];
    let ca = format!("  otlp_ca_file: {}\n", path(&pki.ca.ca()));

    let scratch = Scratch::new();
    scratch.write_config(&config("codexd-mtls", &ca));
    let mut env = signals.to_vec();
    env.push((
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        path(&pki.client.cert),
    ));
    env.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY", path(&pki.client.key)));
    let daemon = run(&scratch, &env);
    let transports = exports_arrive(&scratch, &sink, "codexd-mtls");
    assert_eq!(transports, ("grpc".into(), "http".into()));
    let log = stop(daemon);
    assert!(!log.contains("otlp export failed"), "{log}");

    let scratch = Scratch::new();
    scratch.write_config(&config("codexd-no-client-cert", &ca));
    let daemon = run(&scratch, &signals);
    eventually("the receiver refused three handshakes", || {
        scratch.status();
        (sink.tls_errors().len() >= 3).then_some(())
    });
    let log = eventually("both signals' exports failed", || {
        let log = daemon.log_text();
        let failed = |signal: &str| -> Vec<String> {
            let lines = log.lines().filter(|l| l.contains("otlp export failed"));
            let of_signal = lines.filter(|l| l.contains(&format!("signal=\"{signal}\"")));
            of_signal
                .map(|l| l.split_once(" error=").map_or("", |(_, e)| e).to_owned())
                .collect()
        };
        let (traces, metrics) = (failed("traces"), failed("metrics"));
        (!traces.is_empty() && !metrics.is_empty()).then(|| (traces, metrics, log.clone()))
    });
    let (traces, metrics, log) = log;
    // Over HTTP the refusal reads the same every time; over gRPC the collector drops the
    // connection and tonic words that one of a few ways: each way is logged once.
    assert_eq!(metrics.len(), 1, "{log}");
    assert!(metrics[0].contains("CertificateRequired"), "{log}");
    let mut distinct = traces.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), traces.len(), "each error once: {traces:#?}");
    assert_eq!(received(&sink, "codexd-no-client-cert"), (0, 0));
    let errors = sink.tls_errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE")),
        "the receiver asked for a certificate: {errors:?}"
    );
    stop(daemon);
}

/// SIGHUP moves both signals from an HTTP/protobuf collector trusted through the file's CA
/// to a gRPC one that requires a client certificate; a later reload naming a missing CA
/// file is rejected and the exports stay where they are.
#[test]
fn sighup_moves_exports_to_another_collector() {
    let Some(pki) = pki() else { return };
    let Some(first) = tls_sink(&pki, false) else {
        return;
    };
    let Some(second) = tls_sink(&pki, true) else {
        return;
    };
    let service = "codexd-tls-reload";
    let scratch = Scratch::new();
    let to_first = format!(
        "  otlp_endpoint: {}\n  otlp_protocol: http/protobuf\n  otlp_ca_file: {}\n",
        first.http_endpoint(),
        path(&pki.ca.ca())
    );
    scratch.write_config(&config(service, &to_first));
    let daemon = run(&scratch, &[]);
    let transports = exports_arrive(&scratch, &first, service);
    assert_eq!(transports, ("http".into(), "http".into()));

    let to_second = format!(
        "  otlp_endpoint: {}\n  otlp_protocol: grpc\n  otlp_ca_file: {}\n  \
         otlp_client_cert_file: {}\n  otlp_client_key_file: {}\n",
        second.grpc_endpoint(),
        path(&pki.ca.ca()),
        path(&pki.client.cert),
        path(&pki.client.key)
    );
    scratch.write_config(&config(service, &to_second));
    daemon.signal("HUP");
    eventually("both exporters switched", || {
        let log = daemon.log_text();
        (log.matches("otlp exporter switched").count() == 2).then_some(())
    });
    let transports = exports_arrive(&scratch, &second, service);
    assert_eq!(transports, ("grpc".into(), "grpc".into()));
    // Exports of one signal run one at a time: once the second collector has had one of
    // each, nothing is on its way to the first any more.
    let left_behind = received(&first, service);
    let before = received(&second, service);
    eventually("more spans and metrics at the second collector", || {
        scratch.status();
        let now = received(&second, service);
        (now.0 > before.0 && now.1 > before.1).then_some(())
    });
    assert_eq!(
        received(&first, service),
        left_behind,
        "the first gets no more"
    );

    let missing = scratch.path("gone.pem");
    let broken = to_second.replace(&path(&pki.ca.ca()), &path(&missing));
    scratch.write_config(&config(service, &broken));
    daemon.signal("HUP");
    eventually("the reload rejected", || {
        daemon
            .log_text()
            .contains("telemetry reload rejected; keeping the running exporters")
            .then_some(())
    });
    let before = received(&second, service);
    eventually("exports still reach the second collector", || {
        scratch.status();
        let now = received(&second, service);
        (now.0 > before.0 && now.1 > before.1).then_some(())
    });
    let log = stop(daemon);
    let rejected = log
        .lines()
        .find(|l| l.contains("telemetry reload rejected"));
    let rejected = rejected.expect("logged");
    assert!(
        rejected.contains("telemetry.otlp_ca_file") && rejected.contains("gone.pem"),
        "{rejected}"
    );
    assert!(!log.contains("otlp export failed"), "{log}");
}

/// `check-config` resolves telemetry as `run` would: bad TLS files are errors naming their
/// key or variable and path; files for a plaintext endpoint are a warning; `run` refuses to
/// start with a bad one.
#[test]
fn check_config_and_run_name_bad_tls_files() {
    let Some(pki) = pki() else { return };
    let scratch = Scratch::new();
    let garbage = scratch.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let base = "server:\n  name: spark\n  host: 127.0.0.1\ncontrol_socket: {socket}\n\
                state_dir: {home}/state\ntelemetry:\n  enabled: true\n";
    let check = |telemetry: &str, env: &[(&str, String)]| {
        scratch.write_config(&format!("{base}{telemetry}"));
        let out = scratch
            .codexd()
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .args(["check-config", "--config"])
            .arg(scratch.config())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr)
    };
    let https = "  otlp_endpoint: https://collector.invalid:4317\n";

    let (code, stderr) = check(&format!("{https}  otlp_ca_file: {}\n", path(&garbage)), &[]);
    assert_eq!(code, Some(78), "{stderr}");
    let want = format!(
        "error: telemetry.otlp_ca_file: {:?}: no PEM CERTIFICATE in it",
        path(&garbage)
    );
    assert!(stderr.lines().any(|l| l == want), "{want}\n{stderr}");

    let key_var = [
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            path(&pki.client.cert),
        ),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", path(&pki.other.ca())),
    ];
    let (code, stderr) = check(https, &key_var);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("error: OTEL_EXPORTER_OTLP_CLIENT_KEY: ")
            && stderr.contains("other-ca.pem\": no private key in it"),
        "{stderr}"
    );

    let plaintext = format!(
        "  otlp_endpoint: http://127.0.0.1:9\n  otlp_ca_file: {}\n",
        path(&garbage)
    );
    let (code, stderr) = check(&plaintext, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: telemetry: telemetry.otlp_ca_file not used: the traces endpoint http://127.0.0.1:9 is plaintext"),
        "{stderr}"
    );

    scratch.write_config(&format!(
        "{base}{https}  otlp_ca_file: {}\n",
        path(&garbage)
    ));
    let out = scratch
        .codexd()
        .args(["run", "--config"])
        .arg(scratch.config())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("telemetry.otlp_ca_file: "), "{stderr}");
    assert!(!scratch.socket().exists(), "nothing was started");
}
