//! The typed, validated configuration. Raw YAML never leaves `config::parse`: everything
//! after it works on these types, whose values are already checked and defaulted.

use codexd_actors::runner::admission::AdmissionSettings;
use codexd_actors::runner::conversation::ConversationSettings;
use codexd_actors::tools::ToolChoice;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The whole daemon configuration: Culture's agent-daemon file plus codexd's own sections.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `server:` — the IRC server every agent connects to.
    pub server: ServerConfig,
    /// `supervisor:` — Culture's behaviour-evaluation settings (codexd's `overseer` child).
    pub overseer: OverseerConfig,
    /// `webhooks:` — alert destinations.
    pub webhooks: WebhookConfig,
    /// `telemetry:` — logs/traces/metrics export (Culture's keys).
    pub telemetry: TelemetryConfig,
    /// `attention:` (or its legacy `poll_interval` migration) — daemon-level attention.
    pub attention: AttentionConfig,
    /// `buffer_size:` — messages kept per channel/DM buffer.
    pub buffer_size: usize,
    /// `poll_interval:` in seconds; `None` when `<= 0` (legacy polling disabled).
    pub poll_interval: Option<Duration>,
    /// `sleep_start`/`sleep_end`; `None` when start == end (never sleeps).
    pub sleep: Option<SleepWindow>,
    /// `restart:` — the restart/circuit-breaker policy (codexd).
    pub restart: RestartConfig,
    /// `codex:` — how to start `codex app-server` (codexd).
    pub codex: CodexConfig,
    /// `admission:` — per-sender rate and pending cap of every agent's intake (codexd).
    pub admission: AdmissionSettings,
    /// `conversations:` — threads per conversation or shared, turns at once, steering (codexd).
    pub conversations: ConversationSettings,
    /// `state_dir:` — journals and persisted thread ids (codexd).
    pub state_dir: PathBuf,
    /// `control_socket:` — where `codexd status|reset|fault` reach the daemon (codexd).
    pub control_socket: PathBuf,
    /// `ipc_dir:` — where each agent's Culture IPC socket `culture-<nick>.sock` lives (codexd).
    pub ipc_dir: IpcDir,
    /// `pid_dir:` — where each agent's `agent-<nick>.pid` lives, for Culture's CLI (codexd).
    pub pid_dir: PathBuf,
    /// `shutdown_grace:` — how long a graceful shutdown may take before children are killed.
    pub shutdown_grace: Duration,
    /// `agents:` — one entry per hosted agent, with per-agent overrides already resolved.
    pub agents: Vec<AgentConfig>,
}

/// `server:` (see `config/server.rs` for every key's default and rule).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `name` (default `culture`): the mesh server name; every nick starts with `<name>-`.
    pub name: String,
    /// `host` (default `localhost`).
    pub host: String,
    /// `port` (default 6667).
    pub port: u16,
    /// `tls` (default false): TLS with verified certificates (codexd).
    pub tls: bool,
    /// `tls_ca_file`: extra CA certificates to trust, PEM (codexd).
    pub tls_ca_file: Option<PathBuf>,
    /// `sasl`: SASL PLAIN credentials (codexd); the password is redacted in `Debug`.
    pub sasl: Option<codexd_actors::irc::SaslPlain>,
    /// `trace_tag`: outbound traceparent tag name; `None` = `auto` (codexd).
    pub trace_tag: Option<String>,
    /// `keepalive` (default 90 s): send our PING after this much silence (codexd).
    pub keepalive: Duration,
    /// `keepalive_timeout` (default 60 s): no answer this long means a dead link (codexd).
    pub keepalive_timeout: Duration,
    /// `registration_timeout` (default 30 s) (codexd).
    pub registration_timeout: Duration,
    /// `reconnect_max` (default 60 s): reconnect backoff cap (codexd).
    pub reconnect_max: Duration,
    /// `flood_burst` (default 10) (codexd).
    pub flood_burst: u32,
    /// `flood_rate` (default 2 lines/s; 0 = unlimited) (codexd).
    pub flood_rate: f64,
    /// `send_queue` (default 200 lines held while disconnected) (codexd).
    pub send_queue: usize,
}

/// `supervisor:` (Culture's name for the behaviour overseer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverseerConfig {
    /// `model` (default `gpt-5.4`).
    pub model: String,
    /// `window_size` (default 20, > 0).
    pub window_size: u32,
    /// `eval_interval` (default 5, > 0).
    pub eval_interval: u32,
    /// `escalation_threshold` (default 3, > 0).
    pub escalation_threshold: u32,
    /// `prompt_override` (default empty: the built-in prompt); checked to be a valid
    /// template with at most the `{transcript}` field.
    pub prompt_override: String,
    /// Whether the agents run an overseer: `enabled` (codexd) if given, else whether the
    /// file has a `supervisor:` block.
    pub enabled: bool,
    /// `timeout` (codexd, default 60 s): an evaluation running longer is killed.
    pub timeout: Duration,
}

/// `webhooks:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `url` (default none: IRC alerts only).
    pub url: Option<String>,
    /// `irc_channel` (default `#alerts`).
    pub irc_channel: String,
    /// `events` allow-list (default: Culture's five plus `circuit_open`, `circuit_closed`).
    pub events: Vec<String>,
    /// `format` (codexd; default `discord`): the HTTP body.
    pub format: codexd_actors::webhook::Format,
    /// `timeout` (codexd; default 10 s): bound on one HTTP attempt.
    pub timeout: Duration,
    /// `max_attempts` (codexd; default 4): HTTP attempts per alert.
    pub max_attempts: u32,
    /// `queue_size` (codexd; default 64): HTTP deliveries that may wait.
    pub queue_size: usize,
    /// `dedup_window` (codexd; default 60 s): identical alerts within it are suppressed.
    pub dedup_window: Duration,
    /// `join_channel` (codexd; default true): agents join `irc_channel`, since servers
    /// refuse messages from non-members (agentirc, `+n`); `false` is Culture's behaviour.
    pub join_channel: bool,
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `grpc` (Culture's default).
    Grpc,
    /// `http/protobuf`.
    HttpProtobuf,
}

/// Headers (gRPC metadata) sent with every OTLP export, e.g. an `authorization` token.
/// Names are lowercase; `Debug` shows the names only, never the values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OtlpHeaders(pub Vec<(String, String)>);

impl std::fmt::Debug for OtlpHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self.0.iter().map(|(name, _)| (name, "<redacted>"));
        f.debug_map().entries(names).finish()
    }
}

/// OTLP payload compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpCompression {
    /// `gzip` (Culture's default).
    Gzip,
    /// `none` or empty.
    None,
}

/// Trace sampler (`traces_sampler`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// `parentbased_always_on` (default).
    ParentBasedAlwaysOn,
    /// `parentbased_traceidratio:<0.0-1.0>`.
    ParentBasedTraceIdRatio(f64),
    /// `always_off`.
    AlwaysOff,
    /// `always_on` (standard OTEL_TRACES_SAMPLER value).
    AlwaysOn,
}

/// `telemetry:` as written in the file. Fields that the standard `OTEL_*` variables may
/// override are `Option`s: `None` means "not in the file", so `telemetry::Settings` can apply
/// env > file > default.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `enabled` (default false): master switch; off means no exporter runs at all.
    pub enabled: bool,
    /// `service_name` (default `culture.harness.codex`).
    pub service_name: Option<String>,
    /// `otlp_endpoint` (default `http://localhost:4317` for gRPC, `:4318` for HTTP).
    pub otlp_endpoint: Option<String>,
    /// `otlp_protocol`: `grpc` (default) or `http/protobuf`.
    pub otlp_protocol: Option<OtlpProtocol>,
    /// `otlp_timeout_ms` (default 5000).
    pub otlp_timeout: Option<Duration>,
    /// `otlp_compression`: `gzip` (default) or `none`.
    pub otlp_compression: Option<OtlpCompression>,
    /// `otlp_headers` / `otlp_headers_file` (default none): sent with every export.
    pub otlp_headers: Option<OtlpHeaders>,
    /// `otlp_ca_file` (codexd; default none): PEM CA certificates an `https://` collector's
    /// certificate may chain to, beside the system's roots.
    pub otlp_ca_file: Option<PathBuf>,
    /// `otlp_client_cert_file` (codexd; default none): PEM client certificate chain (mTLS).
    pub otlp_client_cert_file: Option<PathBuf>,
    /// `otlp_client_key_file` (codexd; default none): the client certificate's PEM key.
    pub otlp_client_key_file: Option<PathBuf>,
    /// `traces_enabled` (default true).
    pub traces_enabled: bool,
    /// `traces_sampler` (default `parentbased_always_on`).
    pub traces_sampler: Option<Sampler>,
    /// `metrics_enabled` (default true).
    pub metrics_enabled: bool,
    /// `metrics_export_interval_ms` (default 10000).
    pub metrics_export_interval: Option<Duration>,
    /// `audit_*`: the audit JSONL log (independent of `enabled`).
    pub audit: AuditConfig,
}

/// One attention band: how often a target in it is polled and how long it stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// `interval_s` (> 0).
    pub interval: Duration,
    /// `hold_s` (> 0); `None` for the idle band.
    pub hold: Option<Duration>,
}

/// The four attention bands, hottest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bands {
    /// `hot` (default 30 s / 120 s).
    pub hot: Band,
    /// `warm` (default 120 s / 300 s).
    pub warm: Band,
    /// `cool` (default 300 s / 600 s).
    pub cool: Band,
    /// `idle` (default 600 s).
    pub idle: Band,
}

/// `attention:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionConfig {
    /// `enabled` (default true).
    pub enabled: bool,
    /// `tick_s` (default 5 s; > 0 and <= the smallest band interval).
    pub tick: Duration,
    /// `thread_window_s` (default 1800 s).
    pub thread_window: Duration,
    /// `bands`, monotonic hot <= warm <= cool <= idle.
    pub bands: Bands,
}

/// Local wall-clock window in which agents pause (`sleep_start`..`sleep_end`): the
/// attention actor's own type, so config and schedule cannot drift.
pub use codexd_actors::attention::sleep::SleepWindow;

/// `restart:` — one child's restart policy (durations in humantime form: `300s`, `5m`).
/// It is the supervision core's own policy type, so config and supervisor cannot drift.
pub use codexd_actors::restart::RestartPolicy as RestartConfig;

/// `codex:` — how the runner starts `codex app-server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexConfig {
    /// `binary` (default `codex`, looked up on PATH).
    pub binary: PathBuf,
    /// `args`: extra arguments after `app-server`.
    pub args: Vec<String>,
    /// `env`: extra environment variables for the child.
    pub env: BTreeMap<String, String>,
    /// `shell_env`: extra variables for the agent's shell commands (which otherwise get
    /// codex's `core` set plus `CULTURE_NICK` and `XDG_RUNTIME_DIR`).
    pub shell_env: BTreeMap<String, String>,
    /// `approval_policy`: when codex asks for approval (`never`, `on-request`, `untrusted`).
    pub approval_policy: String,
    /// `approvals`: how codexd answers codex's approval requests.
    pub approvals: codexd_actors::runner::session::Approvals,
    /// `sandbox`: codex's sandbox mode; `None` leaves codex's configured default.
    pub sandbox: Option<String>,
    /// `model` (default empty: codex's own default): the model of `codexd repo run`'s turn.
    pub model: String,
    /// `agents_per_process` (daemon level; default 1): how many agents with the same codex
    /// identity share one `codex app-server` process.
    pub agents_per_process: usize,
    /// `request_timeout` (default 30 s): a request codex leaves unanswered this long means
    /// codex is wedged; the runner fails and a shared process is killed for every agent on it.
    pub request_timeout: Duration,
    /// `interrupt_timeout` (default 10 s): an interrupted turn that has not ended this long
    /// after `turn/interrupt` means codex is wedged (as `request_timeout`).
    pub interrupt_timeout: Duration,
    /// `tool_timeout` (default 30 s): a tool call of the model (the agent's IRC tools) that
    /// takes longer is answered "timed out" and the turn goes on.
    pub tool_timeout: Duration,
}

/// `repo:` of an agent (see `config/repo.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfig {
    /// `remotes`: what its jobs may clone and push to (exact, or a prefix ending in `*`).
    pub remotes: Vec<String>,
    /// `max_jobs` (default 1): jobs running at once.
    pub max_jobs: usize,
    /// `git_timeout` (default 5 m): each git command's budget.
    pub git_timeout: std::time::Duration,
    /// `turn_timeout`: the job's codex turn; `None`: the agent's `turn_timeout_seconds`.
    pub turn_timeout: Option<std::time::Duration>,
}

/// One entry of `agents:` with every per-agent override resolved against the daemon level.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// `nick`: a legal IRC nick that starts with `<server.name>-`.
    pub nick: String,
    /// `agent`: Culture's backend label (default `codex`).
    pub backend: String,
    /// `directory` (default `.`), `~` expanded: the codex thread's cwd.
    pub directory: PathBuf,
    /// `channels` (default `["#general"]`).
    pub channels: Vec<String>,
    /// `model` (default `gpt-5.4`).
    pub model: String,
    /// `system_prompt` (default empty: the built-in prompt).
    pub system_prompt: String,
    /// `tags` (default empty).
    pub tags: Vec<String>,
    /// `icon` (default none).
    pub icon: Option<String>,
    /// `turn_timeout_seconds` (default 600; `<= 0` → `None`, no timeout).
    pub turn_timeout: Option<Duration>,
    /// `attention` / `attention_overrides` merged over the daemon's attention.
    pub attention: AttentionConfig,
    /// `restart` merged over the daemon's `restart:`.
    pub restart: RestartConfig,
    /// `codex` merged over the daemon's `codex:` (env maps are merged key by key).
    pub codex: CodexConfig,
    /// `admission` merged over the daemon's `admission:`, key by key.
    pub admission: AdmissionSettings,
    /// `conversations` merged over the daemon's `conversations:`, key by key.
    pub conversations: ConversationSettings,
    /// `test_children` (codexd, for drills and tests): child names to run as inert,
    /// fault-injectable test actors instead of the real children.
    pub test_children: Vec<String>,
    /// `tools` (codexd): which IRC tools the agent's model has.
    pub tools: ToolChoice,
    /// `repo` (codexd): the agent takes repository jobs; `None`: it takes none.
    pub repo: Option<RepoConfig>,
}

/// The directory of the agents' IPC sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcDir {
    /// The directory.
    pub path: PathBuf,
    /// Culture's `~/.culture/run` fallback: made 0700 even when it already exists.
    pub private: bool,
}

/// `telemetry.audit_*`: where the audit log goes when it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// `audit_enabled` (codexd default false).
    pub enabled: bool,
    /// `audit_dir` (default `~/.culture/audit`), `~` expanded (the default only when the
    /// log is on: unused, it stays as written).
    pub dir: PathBuf,
    /// `audit_max_file_bytes` (default 256 MiB).
    pub max_file_bytes: u64,
    /// `audit_rotate_utc_midnight` (default true).
    pub rotate_utc_midnight: bool,
    /// `audit_queue_depth` (default 10000).
    pub queue_depth: usize,
}
