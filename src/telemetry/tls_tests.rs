//! Which TLS file wins (signal variable > generic variable > file key), and every way a file
//! can be wrong, each named by its key or variable and path. The PEM files in `testdata/`
//! are throwaway P-256 keys and certificates made once with the openssl CLI (`ca.pem`
//! signed `client.pem` for `client.key`; `other.key` matches nothing; `encrypted.key` is
//! `client.key` as encrypted PKCS#8).

use std::path::{Path, PathBuf};

use super::*;
use crate::config::TelemetryConfig;
use crate::telemetry::Settings;

/// A scratch directory holding the test data and a few broken files.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/telemetry/testdata");
        for name in [
            "ca.pem",
            "client.pem",
            "client.key",
            "other.key",
            "encrypted.key",
        ] {
            std::fs::copy(data.join(name), dir.path().join(name)).expect("copy");
        }
        std::fs::write(dir.path().join("garbage.pem"), "not pem at all\n").expect("write");
        std::fs::write(
            dir.path().join("bad-key.pem"),
            "-----BEGIN PRIVATE KEY-----\nS3CRETS3CRET!!\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn text(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

fn enabled(endpoint: &str) -> TelemetryConfig {
    TelemetryConfig {
        enabled: true,
        otlp_endpoint: Some(endpoint.to_owned()),
        ..TelemetryConfig::default()
    }
}

fn resolve(cfg: &TelemetryConfig, env: &[(&str, String)]) -> Result<Settings, TelemetryError> {
    let env = Env::from_pairs(env.iter().map(|(k, v)| (*k, v.clone())));
    Settings::resolve(cfg, "spark-a", &env)
}

/// The traces' and the metrics' TLS.
/// An `https://` collector with the CA, the client certificate and its key from `files`.
fn with_all_files(files: &Files) -> TelemetryConfig {
    TelemetryConfig {
        otlp_ca_file: Some(files.path("ca.pem")),
        otlp_client_cert_file: Some(files.path("client.pem")),
        otlp_client_key_file: Some(files.path("client.key")),
        ..enabled("https://collector:4317")
    }
}

fn both(settings: &Settings) -> (Option<Tls>, Option<Tls>) {
    let otlp = settings.otlp.as_ref().expect("telemetry on");
    let tls = |e: &Option<crate::telemetry::Exporter>| e.as_ref().expect("signal on").tls.clone();
    (tls(&otlp.traces), tls(&otlp.metrics))
}

fn origins(tls: &Option<Tls>) -> (Option<String>, Option<String>, Option<String>) {
    let tls = tls.as_ref().expect("https");
    let client = tls.client.as_ref();
    (
        tls.ca.as_ref().map(|f| f.origin.clone()),
        client.map(|c| c.cert.origin.clone()),
        client.map(|c| c.key.origin.clone()),
    )
}

#[test]
fn an_https_endpoint_trusts_the_system_roots_without_files() {
    let settings = resolve(&enabled("https://collector:4317"), &[]).expect("resolves");
    let (traces, metrics) = both(&settings);
    assert_eq!(traces, Some(Tls::default()));
    assert_eq!(metrics, Some(Tls::default()));
    assert_eq!(Tls::default().trust(), "system roots");
}

#[test]
fn signal_variable_beats_generic_variable_beats_file() {
    let files = Files::new();
    let cfg = with_all_files(&files);
    let s = |name: &str| Some(name.to_owned());
    let file = (
        s("telemetry.otlp_ca_file"),
        s("telemetry.otlp_client_cert_file"),
        s("telemetry.otlp_client_key_file"),
    );
    let generic = (
        s("OTEL_EXPORTER_OTLP_CERTIFICATE"),
        s("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
        s("OTEL_EXPORTER_OTLP_CLIENT_KEY"),
    );
    let traces = (
        s("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"),
        s("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"),
        s("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"),
    );
    let all_generic = [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", files.text("ca.pem")),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            files.text("client.pem"),
        ),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", files.text("client.key")),
    ];
    let all_traces = [
        (
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            files.text("ca.pem"),
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            files.text("client.pem"),
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            files.text("client.key"),
        ),
    ];
    let mixed_key = [(
        "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
        files.text("client.key"),
    )];

    let settings = resolve(&cfg, &[]).expect("file only");
    assert_eq!(origins(&both(&settings).0), file);
    assert_eq!(origins(&both(&settings).1), file);

    let settings = resolve(&cfg, &all_generic).expect("generic variables");
    assert_eq!(origins(&both(&settings).0), generic);
    assert_eq!(origins(&both(&settings).1), generic);

    let env: Vec<_> = all_generic.iter().chain(&all_traces).cloned().collect();
    let settings = resolve(&cfg, &env).expect("signal variables");
    assert_eq!(origins(&both(&settings).0), traces, "traces take theirs");
    assert_eq!(
        origins(&both(&settings).1),
        generic,
        "metrics keep the generic"
    );

    // Each value on its own: the metrics' key from its variable, the rest from the file.
    let settings = resolve(&cfg, &mixed_key).expect("one variable");
    let want = (
        file.0.clone(),
        file.1.clone(),
        s("OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY"),
    );
    assert_eq!(origins(&both(&settings).1), want);
    assert_eq!(origins(&both(&settings).0), file);
}

#[test]
fn files_for_a_plaintext_endpoint_are_not_read_and_are_warned_about() {
    let cfg = TelemetryConfig {
        otlp_ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
        ..enabled("http://collector:4317")
    };
    let settings = resolve(&cfg, &[]).expect("not read, so no error");
    assert_eq!(both(&settings), (None, None));
    let warnings = settings.otlp.expect("on").warnings;
    assert_eq!(warnings.len(), 2, "one per signal: {warnings:?}");
    assert!(
        warnings[0].starts_with(
            "telemetry.otlp_ca_file not used: the traces endpoint http://collector:4317 is plaintext"
        ),
        "{warnings:?}"
    );
    let plain = resolve(&enabled("http://collector:4317"), &[]).expect("resolves");
    assert!(plain.otlp.expect("on").warnings.is_empty());
}

/// (case, file, env, origin, file name, the reason starts with)
type BadCase = (
    &'static str,
    TelemetryConfig,
    Vec<(&'static str, String)>,
    &'static str,
    &'static str,
    &'static str,
);

#[test]
fn bad_files_are_errors_naming_their_source_and_path_never_the_key() {
    let files = Files::new();
    let https = enabled("HTTPS://collector:4317");
    let with = |ca: Option<&str>, cert: Option<&str>, key: Option<&str>| TelemetryConfig {
        otlp_ca_file: ca.map(|n| files.path(n)),
        otlp_client_cert_file: cert.map(|n| files.path(n)),
        otlp_client_key_file: key.map(|n| files.path(n)),
        ..https.clone()
    };
    let cases: Vec<BadCase> = vec![
        (
            "missing CA",
            with(Some("nope.pem"), None, None),
            vec![],
            "telemetry.otlp_ca_file",
            "nope.pem",
            "cannot read: No such file",
        ),
        (
            "CA variable",
            https.clone(),
            vec![("OTEL_EXPORTER_OTLP_CERTIFICATE", files.text("garbage.pem"))],
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "garbage.pem",
            "no PEM CERTIFICATE in it",
        ),
        (
            "a key as CA",
            with(Some("client.key"), None, None),
            vec![],
            "telemetry.otlp_ca_file",
            "client.key",
            "no PEM CERTIFICATE in it",
        ),
        (
            "certificate without key",
            with(None, Some("client.pem"), None),
            vec![],
            "telemetry.otlp_client_cert_file",
            "client.pem",
            "mTLS needs its key as well: set OTEL_EXPORTER_OTLP_CLIENT_KEY or telemetry.otlp_client_key_file",
        ),
        (
            "key without certificate",
            https.clone(),
            vec![(
                "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
                files.text("client.key"),
            )],
            "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
            "client.key",
            "mTLS needs a certificate for the key as well: set OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        ),
        (
            "no key in the key file",
            with(None, Some("client.pem"), Some("client.pem")),
            vec![],
            "telemetry.otlp_client_key_file",
            "client.pem",
            "no private key in it",
        ),
        (
            "encrypted key",
            with(None, Some("client.pem"), Some("encrypted.key")),
            vec![],
            "telemetry.otlp_client_key_file",
            "encrypted.key",
            "no private key in it (PKCS#8, PKCS#1 or SEC1 PEM; encrypted keys are not supported)",
        ),
        (
            "broken key",
            with(None, Some("client.pem"), Some("bad-key.pem")),
            vec![],
            "telemetry.otlp_client_key_file",
            "bad-key.pem",
            "not a PEM private key",
        ),
        (
            "key of another certificate",
            with(None, Some("client.pem"), Some("other.key")),
            vec![],
            "telemetry.otlp_client_key_file",
            "other.key",
            "cannot be used with the certificate",
        ),
    ];
    for (name, cfg, env, origin, path, reason) in cases {
        let error = resolve(&cfg, &env).expect_err(name);
        let TelemetryError::Tls {
            origin: got,
            reason: text,
        } = &error
        else {
            panic!("{name}: {error:?}");
        };
        assert_eq!(got, origin, "{name}");
        let shown = format!("{:?}: ", files.text(path));
        assert!(
            text.starts_with(&format!("{shown}{reason}")),
            "{name}: {text}"
        );
        assert!(!text.contains("S3CRET"), "{name}: {text}");
        assert_eq!(error.diagnostic(), (origin.to_owned(), text.clone()));
    }
}

#[test]
fn debug_shows_where_files_are_not_what_they_hold() {
    let files = Files::new();
    let cfg = TelemetryConfig {
        otlp_client_cert_file: Some(files.path("client.pem")),
        otlp_client_key_file: Some(files.path("client.key")),
        ..enabled("https://collector:4317")
    };
    let settings = resolve(&cfg, &[]).expect("resolves");
    let shown = format!("{settings:?}");
    assert!(
        shown.contains("telemetry.otlp_client_key_file ("),
        "{shown}"
    );
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(!shown.contains("MIG"), "no base64 of the key: {shown}");
}

#[test]
fn both_transports_get_the_system_roots_the_ca_and_the_client_certificate() {
    let files = Files::new();
    let cfg = with_all_files(&files);
    let tls = both(&resolve(&cfg, &[]).expect("resolves"))
        .0
        .expect("https");
    let system = roots(&Tls::default()).len();
    assert_eq!(
        roots(&tls).len(),
        system + 1,
        "the CA beside the system roots"
    );
    let config = rustls_config(&tls, roots(&tls)).expect("builds");
    assert!(config.client_auth_cert_resolver.has_certs());
    assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    assert!(
        tls.trust()
            .starts_with("system roots + telemetry.otlp_ca_file (")
    );
}
