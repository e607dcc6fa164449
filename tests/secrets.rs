//! Secrets kept outside the config file reach their destination and nothing else: the SASL
//! password (from `${VAR}` or `password_file`) authenticates against the fake IRC server,
//! the webhook URL (`${VAR}` or `url_file`) carries alerts to the loopback receiver, the
//! OTLP headers (`${VAR}` or `otlp_headers_file`) go with every span export — and none of
//! the three appears in the daemon's log (at debug level), in `status --json` or in an
//! exported span.

#[path = "support/fake_ircd.rs"]
mod fake_ircd;
mod support;
#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

use std::os::unix::fs::PermissionsExt as _;

use fake_ircd::{Behaviour, FakeIrcd};
use support::{Scratch, child, eventually};
use webhook_receiver::WebhookReceiver;

const NICK: &str = "fake-bot";
const SASL_PASSWORD: &str = "sasl-Pw-5ecret-41";
const WEBHOOK_TOKEN: &str = "hook-T0ken-5ecret-42";
const OTLP_TOKEN: &str = "otlp-T0ken-5ecret-43";
/// SASL PLAIN's payload for these credentials: base64 of `bot\0bot\0sasl-Pw-5ecret-41`.
const SASL_PAYLOAD: &str = "Ym90AGJvdABzYXNsLVB3LTVlY3JldC00MQ==";

/// Fast restarts: three runner panics open its circuit, which raises `circuit_open`.
const POLICY: &str = "restart:\n  backoff_base: 50ms\n  backoff_cap: 200ms\n  max_restarts: 3\n  window: 60s\n  cooldown: 30s\n  stable_after: 1s\n";

/// Where each secret comes from in one run.
enum Source {
    /// `${VAR}` in the value.
    Env,
    /// `<key>_file`.
    File,
}

struct Setup {
    scratch: Scratch,
    fake: FakeIrcd,
    hooks: WebhookReceiver,
    collector: WebhookReceiver,
}

impl Setup {
    async fn start() -> Setup {
        let fake = FakeIrcd::start(Behaviour {
            sasl: Some(("bot".to_owned(), SASL_PASSWORD.to_owned())),
            ..Behaviour::default()
        })
        .await;
        Setup {
            scratch: Scratch::new(),
            fake,
            hooks: WebhookReceiver::start().await,
            collector: WebhookReceiver::start().await,
        }
    }

    fn hook_url(&self) -> String {
        let url = self.hooks.url();
        format!("{}/{WEBHOOK_TOKEN}", url.trim_end_matches('/'))
    }

    /// A private file in the scratch dir.
    fn secret_file(&self, name: &str, content: &str) -> String {
        let path = self.scratch.path(name);
        std::fs::write(&path, content).expect("write secret");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path.display().to_string()
    }

    /// Writes the config; returns the variables the daemon needs.
    fn configure(&self, source: &Source) -> Vec<(String, String)> {
        let headers = format!("authorization=Bearer%20{OTLP_TOKEN}");
        let (password, url, otlp_headers, env) = match source {
            Source::Env => (
                "password: ${SPARK_SASL_PASSWORD}".to_owned(),
                "url: ${SPARK_WEBHOOK_URL}".to_owned(),
                "otlp_headers: 'x-org=7,${SPARK_OTLP_HEADERS}'".to_owned(),
                vec![
                    ("SPARK_SASL_PASSWORD".to_owned(), SASL_PASSWORD.to_owned()),
                    ("SPARK_WEBHOOK_URL".to_owned(), self.hook_url()),
                    ("SPARK_OTLP_HEADERS".to_owned(), headers),
                ],
            ),
            Source::File => (
                format!(
                    "password_file: {}",
                    self.secret_file("sasl", &format!("{SASL_PASSWORD}\n"))
                ),
                format!(
                    "url_file: {}",
                    self.secret_file("hook", &format!("{}\n", self.hook_url()))
                ),
                format!(
                    "otlp_headers_file: {}",
                    self.secret_file("otlp", &format!("x-org=7,{headers}\n"))
                ),
                vec![],
            ),
        };
        let port = self.fake.port();
        let collector = self.collector.url();
        let collector = collector.split("/hook").next().expect("origin");
        self.scratch.write_config(&format!(
            "server:\n  name: fake\n  host: 127.0.0.1\n  port: {port}\n  sasl:\n    username: bot\n    {password}\n\
             control_socket: {{socket}}\nstate_dir: {{home}}/state\nshutdown_grace: 5s\n{POLICY}\
             webhooks:\n  {url}\n  format: generic\n  timeout: 5s\n\
             telemetry:\n  enabled: true\n  otlp_protocol: http/protobuf\n  otlp_endpoint: {collector}\n  otlp_compression: none\n  metrics_enabled: false\n  {otlp_headers}\n\
             agents:\n  - nick: {NICK}\n    channels: ['#general']\n    test_children: [socket, runner]\n"
        ));
        env
    }
}

/// `codexd fault fake-bot runner panic` until the runner's circuit opens.
fn open_runner_circuit(scratch: &Scratch) {
    let socket = scratch.socket().display().to_string();
    for round in 1..=3 {
        eventually("runner running before the fault", || {
            scratch
                .status()
                .filter(|s| child(s, NICK, "runner").is_some_and(|c| c["state"] == "running"))
        });
        let out = scratch.cli(&["fault", NICK, "runner", "panic", "--socket", &socket]);
        assert!(out.status.success(), "fault {round}: {out:?}");
        eventually("runner restarted or open", || {
            scratch.status().filter(|s| {
                child(s, NICK, "runner")
                    .is_some_and(|c| c["state"] != "running" || c["restarts"] == round)
            })
        });
    }
}

fn assert_secret_free(what: &str, text: &str) {
    for secret in [SASL_PASSWORD, SASL_PAYLOAD, WEBHOOK_TOKEN, OTLP_TOKEN] {
        assert!(
            !text.contains(secret),
            "{what} shows a secret ({secret}):\n{text}"
        );
    }
}

async fn secrets_reach_only_their_destination(source: Source) {
    let setup = Setup::start().await;
    let env = setup.configure(&source);
    let scratch = &setup.scratch;
    let out = scratch
        .codexd()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["check-config", "--no-preflight", "--config"])
        .arg(scratch.config())
        .output()
        .expect("check-config");
    assert!(out.status.success(), "check-config: {out:?}");
    assert_secret_free("check-config", &String::from_utf8_lossy(&out.stdout));
    assert_secret_free("check-config", &String::from_utf8_lossy(&out.stderr));

    let mut env = env;
    env.push(("RUST_LOG".to_owned(), "debug".to_owned()));
    let mut daemon = scratch.run_with_env(&[], &env);

    // SASL: the fake accepts exactly these credentials, and only then welcomes the client,
    // which then joins its channel.
    setup
        .fake
        .wait_for_line("the join after SASL", |_, line| {
            line.ends_with(" JOIN #general")
        })
        .await;
    let lines = setup.fake.all_lines().await;
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(&format!(" AUTHENTICATE {SASL_PAYLOAD}"))),
        "{lines:#?}"
    );
    let connected = tokio::task::block_in_place(|| {
        eventually("irc connected", || {
            scratch.status().filter(|s| {
                child(s, NICK, "irc")
                    .is_some_and(|c| c["state"] == "running" && c["last_error"].is_null())
            })
        })
    });
    assert_secret_free("status --json", &connected.to_string());

    // Webhook: the circuit_open alert goes to the URL from outside the file.
    tokio::task::block_in_place(|| open_runner_circuit(scratch));
    let alerts = setup.hooks.wait_requests(1).await;
    assert_eq!(
        alerts[0].path,
        format!("/hook/s3cr3t-token/{WEBHOOK_TOKEN}")
    );
    assert_eq!(alerts[0].event().as_deref(), Some("circuit_open"));

    let status = scratch.status().expect("status");
    assert_secret_free("status --json", &status.to_string());
    let socket = scratch.socket().display().to_string();
    let table = scratch.cli(&["status", "--socket", &socket]);
    assert_secret_free("status", &String::from_utf8_lossy(&table.stdout));

    daemon.signal("TERM");
    let exit = tokio::task::block_in_place(|| daemon.wait());
    assert!(exit.success(), "{exit:?}");

    // OTLP: every span export carried the headers; no span carries a secret.
    let exports = setup.collector.requests();
    let traces: Vec<_> = exports.iter().filter(|r| r.path == "/v1/traces").collect();
    assert!(!traces.is_empty(), "no span export reached the collector");
    for export in &traces {
        let bearer = format!("Bearer {OTLP_TOKEN}");
        assert_eq!(export.header("authorization"), Some(bearer.as_str()));
        assert_eq!(export.header("x-org"), Some("7"));
        assert_secret_free("an exported span", &export.body);
    }

    let log = daemon.log_text();
    assert!(log.contains("DEBUG"), "the log is at debug level:\n{log}");
    assert_secret_free("the daemon's log", &log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_the_environment_reach_only_their_destination() {
    secrets_reach_only_their_destination(Source::Env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_files_reach_only_their_destination() {
    secrets_reach_only_their_destination(Source::File).await;
}
