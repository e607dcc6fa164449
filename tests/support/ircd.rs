//! Real IRC servers for tests: agentirc (Culture's server), InspIRCd (full IRCv3) and
//! ngIRCd (legacy, no message-tags), each on a free loopback port with its config, data and
//! log in a private temp dir, killed on drop.
//!
//! The including test file must also declare, at its root:
//! `#[path = "support/otlp.rs"] mod otlp;` (for `peers_dir` and `skip_or_fail`).
//!
//! Real time only: the hang detectors here use tokio timers, so do not combine with
//! `#[tokio::test(start_paused = true)]`.

#![allow(dead_code, unreachable_pub)]

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::process::{Child, Command};

use super::otlp::{peers_dir, skip_or_fail};

/// Hang detector for a server to accept connections: not a speed assertion.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

const INSPIRCD: &str = "/usr/sbin/inspircd";
const NGIRCD: &str = "/usr/sbin/ngircd";

/// Which server implementation.
///
/// | flavor   | CAP LS                          | registration burst    | nick rule        |
/// |----------|---------------------------------|-----------------------|------------------|
/// | Agentirc | `agentirc.io/bot message-tags`  | 001–004, not held     | `<name>-…`       |
/// | Inspircd | full IRCv3 (message-tags, …)    | 001–005, MOTD; held   | any, ≤ 30        |
/// | Ngircd   | `multi-prefix`                  | 001–005, MOTD; held   | any, ≤ 9 chars   |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Agentirc,
    Inspircd,
    Ngircd,
}

/// A running (or stopped, between `stop` and `restart`) IRC server.
pub struct Ircd {
    flavor: Flavor,
    name: String,
    port: u16,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Ircd {
    /// Starts `flavor` with server name `name` (agentirc's `--name`; `<name>.test` for the
    /// others, which need a dot). None, after `skip_or_fail`, when the peer is not installed.
    pub async fn start(flavor: Flavor, name: &str) -> Option<Ircd> {
        Self::start_with(flavor, name, None).await
    }

    /// agentirc with telemetry on, exporting OTLP/gRPC (uncompressed: agentirc 9.12 crashes
    /// at start-up with the default gzip) to `127.0.0.1:<otlp_grpc_port>`.
    pub async fn start_agentirc_with_otlp(name: &str, otlp_grpc_port: u16) -> Option<Ircd> {
        Self::start_with(Flavor::Agentirc, name, Some(otlp_grpc_port)).await
    }

    /// agentirc on `port` with `links` (`--link name:host:port:password`, one flag each)
    /// and, with `otlp`, telemetry as in [`Ircd::start_agentirc_with_otlp`]: one server of a
    /// mesh (tests/support/mesh.rs).
    pub async fn start_agentirc_linked(
        name: &str,
        port: u16,
        otlp: Option<u16>,
        links: &[String],
    ) -> Option<Ircd> {
        Self::start_on(Flavor::Agentirc, name, otlp, port, links).await
    }

    async fn start_with(flavor: Flavor, name: &str, otlp: Option<u16>) -> Option<Ircd> {
        Self::start_on(flavor, name, otlp, free_port(), &[]).await
    }

    async fn start_on(
        flavor: Flavor,
        name: &str,
        otlp: Option<u16>,
        port: u16,
        links: &[String],
    ) -> Option<Ircd> {
        let program = match flavor {
            Flavor::Agentirc => peers_dir().join("agentirc/venv/bin/agentirc"),
            Flavor::Inspircd => PathBuf::from(INSPIRCD),
            Flavor::Ngircd => PathBuf::from(NGIRCD),
        };
        if !program.exists() {
            skip_or_fail(&format!(
                "{flavor:?} not installed: {} is missing",
                program.display()
            ));
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut args, envs) = match flavor {
            Flavor::Agentirc => agentirc_setup(dir.path(), name, port, otlp),
            Flavor::Inspircd => inspircd_setup(dir.path(), name, port),
            Flavor::Ngircd => ngircd_setup(dir.path(), name, port),
        };
        for link in links {
            args.extend(["--link".to_owned(), link.clone()]);
        }
        let mut ircd = Ircd {
            flavor,
            name: name.to_owned(),
            port,
            program,
            args,
            envs,
            log: dir.path().join("server.log"),
            child: None,
            dir,
        };
        ircd.spawn().await;
        Some(ircd)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The server name as clients see it in prefixes (`:<server_name> 001 …`).
    pub fn server_name(&self) -> String {
        match self.flavor {
            Flavor::Agentirc => self.name.clone(),
            Flavor::Inspircd | Flavor::Ngircd => format!("{}.test", self.name),
        }
    }

    /// Prefix every nick should start with: agentirc requires `<name>-`; the others accept
    /// anything, and use the same prefix so tests read alike (mind ngIRCd's NICKLEN 9).
    pub fn nick_prefix(&self) -> String {
        format!("{}-", self.name)
    }

    /// Everything the server wrote to stdout/stderr, across restarts.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then SIGKILL after 10 s. A no-op when already stopped.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id().and_then(|id| Pid::from_raw(id as i32)) {
            let _ = rustix::process::kill_process(pid, Signal::TERM);
        }
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }

    /// Stops the server and starts it again on the same port with the same config and data
    /// dir (agentirc keeps its SQLite history there), waiting until it accepts connections.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let stderr = log.try_clone().expect("clone log handle");
        let mut command = Command::new(&self.program);
        for (key, _) in std::env::vars() {
            if key.starts_with("OTEL_") {
                command.env_remove(key);
            }
        }
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", self.program.display()));
        self.child = Some(child);
        self.wait_until_listening().await;
    }

    /// Polls the port until it accepts a TCP connection; panics with the server's log if the
    /// server exits or `READY_TIMEOUT` passes.
    async fn wait_until_listening(&mut self) {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let listening = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok();
            let child = self.child.as_mut().expect("spawned");
            let exited = child.try_wait().ok().flatten();
            if listening && exited.is_none() {
                return;
            }
            if let Some(status) = exited {
                panic!(
                    "{:?} exited ({status}) before listening on {}; log:\n{}",
                    self.flavor,
                    self.port,
                    self.log_text()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?} did not listen on {} within {READY_TIMEOUT:?}; log:\n{}",
                self.flavor,
                self.port,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A port that was free a moment ago (bind port 0, read, release), never one this test
/// process handed out before: the kernel may give a just-released port to the next bind(0),
/// and two servers started in parallel on one port make the loser's readiness check connect
/// to the winner (seen in CI: the winner's test ended, and the agent met a refused port).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

type Launch = (Vec<String>, Vec<(String, String)>);

/// `agentirc serve` with HOME sandboxed (it writes `~/.culture/…`), its own webhook port
/// (the default 7680 clashes between parallel servers) and, with `otlp`, a YAML config that
/// turns telemetry on (keys from `agentirc/config.py`, `TelemetryConfig`).
fn agentirc_setup(dir: &Path, name: &str, port: u16, otlp: Option<u16>) -> Launch {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("agentirc home");
    let config = dir.join("agentirc.yaml");
    let telemetry = match otlp {
        Some(grpc_port) => format!(
            "telemetry:\n  enabled: true\n  otlp_endpoint: http://127.0.0.1:{grpc_port}\n  \
             otlp_protocol: grpc\n  otlp_compression: none\n  metrics_export_interval_ms: 2000\n"
        ),
        None => "telemetry:\n  enabled: false\n".to_owned(),
    };
    write(&config, &telemetry);
    let args = [
        "serve",
        "--name",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--webhook-port",
        &free_port().to_string(),
        "--data-dir",
        &dir.join("data").display().to_string(),
        "--config",
        &config.display().to_string(),
    ];
    let envs = vec![
        ("HOME".to_owned(), home.display().to_string()),
        ("PYTHONUNBUFFERED".to_owned(), "1".to_owned()),
    ];
    (args.map(str::to_owned).to_vec(), envs)
}

/// InspIRCd 3 with the IRCv3 modules; hostname lookups and ident off so registration is
/// immediate, a generous command rate so fast tests are never penalised.
fn inspircd_setup(dir: &Path, name: &str, port: u16) -> Launch {
    for sub in ["data", "logs", "run"] {
        std::fs::create_dir_all(dir.join(sub)).expect("inspircd dirs");
    }
    write(&dir.join("inspircd.motd"), "test\n");
    let config = dir.join("inspircd.conf");
    let text = INSPIRCD_CONF
        .replace("{dir}", &dir.display().to_string())
        .replace("{name}", name)
        .replace("{port}", &port.to_string());
    write(&config, &text);
    let mut args = vec![
        "--config".to_owned(),
        config.display().to_string(),
        "--nofork".to_owned(),
    ];
    if rustix::process::getuid().is_root() {
        args.push("--runasroot".to_owned());
    }
    (args, Vec::new())
}

const INSPIRCD_CONF: &str = r#"<define name="dir" value="{dir}">
<server name="{name}.test" description="peer test server" network="TestNet">
<admin name="test" nick="test" email="test@example.invalid">
<bind address="127.0.0.1" port="{port}" type="clients">
<path configdir="&dir;" datadir="&dir;/data" logdir="&dir;/logs" moduledir="/usr/lib/inspircd/modules" runtimedir="&dir;/run">
<pid file="&dir;/run/inspircd.pid">
<connect allow="*" timeout="60" pingfreq="120" hardsendq="1M" softsendq="8192" recvq="8192" threshold="100000" commandrate="100000" fakelag="off" localmax="1000" globalmax="1000" maxconnwarn="off" useident="no" resolvehostnames="no" limit="5000" modes="+x">
<class name="Shutdown" commands="DIE RESTART REHASH LOADMODULE UNLOADMODULE RELOADMODULE GLOADMODULE GUNLOADMODULE GRELOADMODULE">
<type name="NetAdmin" classes="Shutdown" vhost="netadmin.test">
<oper name="admin" password="adminpass" host="*@*" type="NetAdmin">
<files motd="&dir;/inspircd.motd">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="&dir;/logs/ircd.log">
<options prefixquit="Quit: " allowhalfop="yes" hostintopic="yes">
<performance netbuffersize="10240" somaxconn="128" softlimit="1024" quietbursts="yes">
<security announceinvites="dynamic" hideserver="" hidesplits="no" hideulines="no" maxtargets="20" userstats="Pu" customversion="" operspywhois="no" restrictbannedusers="yes" genericoper="no">
<limits maxnick="30" maxchan="64" maxmodes="20" maxident="11" maxhost="64" maxquit="255" maxtopic="307" maxkick="255" maxreal="128" maxaway="200">
<dns timeout="1">
<module name="cap"><module name="ircv3"><module name="ircv3_capnotify"><module name="ircv3_ctctags">
<module name="ircv3_msgid"><module name="ircv3_servertime"><module name="ircv3_echomessage">
<module name="ircv3_batch"><module name="ircv3_labeledresponse"><module name="ircv3_accounttag">
<module name="ircv3_chghost"><module name="ircv3_invitenotify"><module name="namesx"><module name="uhnames">
<module name="cloaking">
<cloak mode="half" key="0123456789abcdefghijklmnopqrstuvwxyz0123456789" prefix="test-">
"#;

/// ngIRCd in the foreground (`-n`), DNS and ident lookups off. As root it refuses
/// `ServerUID = root` and drops to `nobody`, so its PID file goes into a world-writable
/// `run/` (the temp dir is made traversable) to keep its log free of spurious errors.
fn ngircd_setup(dir: &Path, name: &str, port: u16) -> Launch {
    let config = dir.join("ngircd.conf");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).expect("ngircd run dir");
    let server_uid = if rustix::process::getuid().is_root() {
        set_mode(dir, 0o711);
        set_mode(&run, 0o777);
        "ServerUID = root\n"
    } else {
        ""
    };
    let text = NGIRCD_CONF
        .replace("{dir}", &dir.display().to_string())
        .replace("{name}", name)
        .replace("{port}", &port.to_string())
        .replace("{server_uid}", server_uid);
    write(&config, &text);
    let args = vec![
        "-n".to_owned(),
        "-f".to_owned(),
        config.display().to_string(),
    ];
    (args, Vec::new())
}

const NGIRCD_CONF: &str = r#"[Global]
Name = {name}.test
Info = peer test server
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = "test server"
PidFile = {dir}/run/ngircd.pid
{server_uid}[Limits]
PingTimeout = 120
PongTimeout = 20
[Options]
DNS = no
Ident = no
PAM = no
RequireAuthPing = no
"#;

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
