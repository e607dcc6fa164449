//! A federated agentirc mesh on 127.0.0.1: three servers (`alpha`, `bravo`, `charlie`),
//! each pair linked through a [`LinkProxy`] the test can cut, one `codexd run` per server
//! hosting that server's two agents (`<server>-ann`, `<server>-bob`, real codex offline
//! against one shared [`FakeModel`]), and one raw user per server (`<server>-ori`, in
//! `#system`, `#general`, `#ops` and `#alerts`).
//!
//! Links (agentirc needs the accepting side to know the peer's password too, and retries
//! every configured link it loses; the accepting side's entry points at a port nobody
//! listens on, so each link is only ever re-made by its initiator, through its proxy):
//!
//! | link            | initiator | through                | acceptor's entry |
//! |-----------------|-----------|------------------------|------------------|
//! | alpha–bravo     | bravo     | proxy to alpha         | dead port        |
//! | alpha–charlie   | charlie   | proxy to alpha         | dead port        |
//! | bravo–charlie   | charlie   | proxy to bravo         | dead port        |
//!
//! So [`Mesh::cut`]`(2)` splits charlie off, and after [`Mesh::heal`]`(2)` charlie's own
//! retry (5 s after the drop, then 10 s, 20 s, …) re-links it.
//!
//! The including test file declares `codex_peer`, `fake_model`, `irc_client`, `ircd`,
//! `link_proxy`, `otlp` and `support` at its root. Real time only.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use crate::codex_peer::{CodexConfig, CodexHome, codex_bin};
use crate::fake_model::FakeModel;
use crate::irc_client::{RawClient, parse_privmsg};
use crate::ircd::{Ircd, free_port};
use crate::link_proxy::LinkProxy;
use crate::support::{Daemon, Scratch, child, eventually};

/// The servers, by index.
pub const SERVERS: [&str; 3] = ["alpha", "bravo", "charlie"];
/// Each server's agents: `<server>-<name>`.
pub const AGENTS: [&str; 2] = ["ann", "bob"];
/// The link password (links carry it in clear: no TLS on agentirc's server links).
const PASSWORD: &str = "mesh-secret";
/// Who initiates each link, and to whom: `(initiator, acceptor)`.
const LINKS: [(usize, usize); 3] = [(1, 0), (2, 0), (2, 1)];

/// `<server>-<agent>`.
pub fn nick(server: usize, agent: &str) -> String {
    format!("{}-{agent}", SERVERS[server])
}

/// One `codexd run` with its server's two agents.
pub struct Host {
    /// Before `scratch`: dropped first, while its log still exists.
    pub daemon: Option<Daemon>,
    pub scratch: Scratch,
    pub codex: CodexHome,
    pub server: usize,
}

impl Host {
    /// The irc child's status detail of `agent` (`ann`, `bob`).
    pub fn irc(&self, agent: &str) -> Option<serde_json::Value> {
        let status = self.scratch.status()?;
        Some(child(&status, &nick(self.server, agent), "irc")?["detail"].clone())
    }

    /// The runner's status detail of `agent`.
    pub fn runner(&self, agent: &str) -> Option<serde_json::Value> {
        let status = self.scratch.status()?;
        Some(child(&status, &nick(self.server, agent), "runner")?["detail"].clone())
    }

    /// Stops the daemon with SIGTERM (flushing its spans) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.signal("TERM");
            let status = daemon.wait();
            assert!(
                status.success(),
                "codexd exit: {status:?}\n{}",
                daemon.log_text()
            );
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map(Daemon::log_text)
            .unwrap_or_default()
    }
}

pub struct Mesh {
    /// Before the servers: daemons stop before their servers go.
    pub hosts: Vec<Host>,
    /// `<server>-ori` on each server.
    pub users: Vec<RawClient>,
    pub servers: Vec<Ircd>,
    proxies: Vec<(usize, usize, LinkProxy)>,
    pub model: FakeModel,
}

impl Mesh {
    /// Starts the linked servers (exporting OTLP/gRPC to `otlp_grpc`, if given), their users,
    /// and one codexd per server (with `telemetry` YAML at its top, e.g. an OTLP exporter);
    /// waits until every agent is connected, idle and sees its server linked to both peers.
    /// None, after a loud skip, when a peer is not installed.
    pub async fn start(otlp_grpc: Option<u16>, telemetry: &str) -> Option<Mesh> {
        let bin = codex_bin()?;
        let ports: Vec<u16> = SERVERS.iter().map(|_| free_port()).collect();
        let dead = free_port();
        let mut proxies = Vec::new();
        for (from, to) in LINKS {
            proxies.push((from, to, LinkProxy::start(ports[to]).await));
        }
        let mut servers = Vec::new();
        let mut users = Vec::new();
        for (index, name) in SERVERS.iter().enumerate() {
            let links: Vec<String> = (0..SERVERS.len())
                .filter(|peer| *peer != index)
                .map(|peer| {
                    let port = proxies
                        .iter()
                        .find(|(from, to, _)| (*from, *to) == (index, peer))
                        .map_or(dead, |(_, _, proxy)| proxy.port());
                    format!("{}:127.0.0.1:{port}:{PASSWORD}", SERVERS[peer])
                })
                .collect();
            let server = Ircd::start_agentirc_linked(name, ports[index], otlp_grpc, &links).await?;
            let mut user = RawClient::connect(
                "127.0.0.1",
                ports[index],
                &format!("{name}-ori"),
                &["message-tags"],
            )
            .await;
            user.join("#system").await;
            servers.push(server);
            users.push(user);
        }
        // A user joined #system before every later server started: it sees those links.
        for (index, user) in users.iter_mut().enumerate() {
            for later in &SERVERS[index + 1..] {
                expect_system(user, index, &format!("linked to {later}")).await;
            }
        }
        for user in &mut users {
            for channel in ["#general", "#ops", "#alerts"] {
                user.join(channel).await;
            }
        }
        let model = FakeModel::start(Vec::new()).await;
        let hosts = (0..SERVERS.len())
            .map(|index| start_host(index, ports[index], &bin, &model, telemetry))
            .collect();
        let mesh = Mesh {
            hosts,
            users,
            servers,
            proxies,
            model,
        };
        mesh.wait_linked(&[0, 1, 2], 2);
        Some(mesh)
    }

    /// Waits until every agent of `servers` is connected, its runner idle, and its irc
    /// status shows its server `linked` to `peers` peers.
    pub fn wait_linked(&self, servers: &[usize], peers: usize) {
        for &server in servers {
            let host = &self.hosts[server];
            for agent in AGENTS {
                let what = format!("{} connected, idle, linked to {peers}", nick(server, agent));
                eventually(&what, || {
                    let irc = host.irc(agent)?;
                    let runner = host.runner(agent)?;
                    let linked = irc["mesh"]["state"] == "linked"
                        && irc["mesh"]["peers"].as_array()?.len() == peers;
                    (irc["state"] == "connected" && runner["phase"] == "idle" && linked)
                        .then_some(())
                });
            }
        }
    }

    /// Cuts every link of `server` (live connections close; new ones are held).
    pub fn cut(&self, server: usize) {
        for (from, to, proxy) in &self.proxies {
            if *from == server || *to == server {
                proxy.cut();
            }
        }
    }

    /// Restores every link of `server`'s proxies (agentirc's own retry re-links).
    pub fn heal(&self, server: usize) {
        for (from, to, proxy) in &self.proxies {
            if *from == server || *to == server {
                proxy.heal();
            }
        }
    }

    /// Stops every daemon (flushing their spans).
    pub fn stop_hosts(&mut self) {
        for host in &mut self.hosts {
            host.stop();
        }
    }
}

/// Waits until `user` sees `system-<server>` post `text` in `#system`.
pub async fn expect_system(user: &mut RawClient, server: usize, text: &str) -> String {
    let sender = format!("system-{}", SERVERS[server]);
    let what = format!("{sender} says {text:?} in #system");
    user.expect(&what, |line| {
        parse_privmsg(line).is_some_and(|(_, from, target, said)| {
            from == sender && target == "#system" && said == text
        })
    })
    .await
}

/// One codexd for `server`: both its agents in `#general` and `#ops`.
fn start_host(server: usize, port: u16, bin: &Path, model: &FakeModel, top: &str) -> Host {
    let scratch = Scratch::new();
    let codex = CodexHome::new(&model.base_url(), &CodexConfig::default());
    let mut agents = String::new();
    for agent in AGENTS {
        let work = scratch.path(&format!("work-{agent}"));
        std::fs::create_dir_all(&work).expect("workdir");
        agents.push_str(&format!(
            "  - nick: {nick}\n    channels: ['#general', '#ops']\n    tags: [mesh, {server}]\n    directory: {work}\n    model: fake-model\n    codex:\n      binary: {bin}\n      env:\n        CODEX_HOME: {codex_home}\n        HOME: {home}\n        FAKE_API_KEY: dummy\n        RUST_LOG: warn\n",
            nick = nick(server, agent),
            server = SERVERS[server],
            work = work.display(),
            bin = bin.display(),
            codex_home = codex.codex_home().display(),
            home = codex.home().display(),
        ));
    }
    scratch.write_config(&format!(
        "{top}server:\n  name: {name}\n  host: 127.0.0.1\n  port: {port}\nstate_dir: {{home}}/state\ncontrol_socket: {{socket}}\nshutdown_grace: 10s\nattention:\n  enabled: false\nagents:\n{agents}",
        name = SERVERS[server],
    ));
    let daemon = scratch.run(&[]);
    Host {
        daemon: Some(daemon),
        scratch,
        codex,
        server,
    }
}
