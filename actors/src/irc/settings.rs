//! What one `irc` actor is told by its configuration. Built by the daemon from the YAML
//! config; everything here is already validated.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// TLS to the server; certificates are always verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// A PEM file of CA certificates to trust in addition to the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// SASL PLAIN credentials. The password never appears in `Debug` output, logs or spans.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslPlain {
    /// The account name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for SaslPlain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslPlain")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Which tag names carry trace context on outbound lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceTagMode {
    /// `culture.dev/traceparent` on agentirc, `+culture.dev/traceparent` elsewhere.
    Auto,
    /// Always this traceparent tag name (the tracestate name follows it).
    Named(String),
}

/// Outbound flood control: a token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodSettings {
    /// Lines that may go out back to back.
    pub burst: u32,
    /// Sustained lines per second (`<= 0`: unlimited).
    pub per_second: f64,
}

/// Everything the `irc` actor needs.
#[derive(Debug, Clone, PartialEq)]
pub struct IrcSettings {
    /// `server.host`.
    pub host: String,
    /// `server.port`.
    pub port: u16,
    /// `server.name`: the mesh name; on agentirc every nick must start with `<name>-`.
    pub server_name: String,
    /// `server.tls`; `None` = plain TCP.
    pub tls: Option<TlsSettings>,
    /// `server.sasl`; `None` = no SASL.
    pub sasl: Option<SaslPlain>,
    /// The agent's configured nick.
    pub nick: String,
    /// Channels to join on every welcome (more can be joined at run time).
    pub channels: Vec<String>,
    /// agentirc `TAGS` sent after welcome (empty: none).
    pub tags: Vec<String>,
    /// agentirc `ICON` sent after welcome.
    pub icon: Option<String>,
    /// Trace tag naming.
    pub trace_tags: TraceTagMode,
    /// Send our own PING after this long without inbound data.
    pub keepalive: Duration,
    /// Drop the link when nothing arrives this long after our PING.
    pub keepalive_timeout: Duration,
    /// Give up on a connection that has not been welcomed (001) within this.
    pub registration_timeout: Duration,
    /// First reconnect delay (doubles, jittered).
    pub reconnect_min: Duration,
    /// Largest reconnect delay.
    pub reconnect_max: Duration,
    /// Outbound flood control.
    pub flood: FloodSettings,
    /// Lines kept while disconnected; sends beyond this are refused.
    pub send_queue: usize,
    /// Messages kept per channel/DM buffer.
    pub buffer_size: usize,
    /// agentirc PRESENCE heartbeat while busy.
    pub presence_heartbeat: Duration,
    /// Where the channels joined at run time are remembered (`None`: not remembered).
    pub joined_file: Option<std::path::PathBuf>,
    /// The audit log (`message.out`): its files, if on, and the live tap `codexd watch`
    /// follows; `None` records nothing (tests).
    pub audit: Option<crate::audit::Audit>,
}

impl IrcSettings {
    /// Defaults for `nick` on `host:port` (tests and the config layer start here).
    pub fn new(host: impl Into<String>, port: u16, server_name: &str, nick: &str) -> Self {
        Self {
            host: host.into(),
            port,
            server_name: server_name.to_owned(),
            tls: None,
            sasl: None,
            nick: nick.to_owned(),
            channels: Vec::new(),
            tags: Vec::new(),
            icon: None,
            trace_tags: TraceTagMode::Auto,
            keepalive: Duration::from_secs(90),
            keepalive_timeout: Duration::from_secs(60),
            registration_timeout: Duration::from_secs(30),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            flood: FloodSettings {
                burst: 10,
                per_second: 2.0,
            },
            send_queue: 200,
            buffer_size: 500,
            presence_heartbeat: Duration::from_secs(30),
            joined_file: None,
            audit: None,
        }
    }

    /// `host:port`, as `harness.server` and error messages show it.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}
