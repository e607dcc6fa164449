//! systemd's notify protocol (`Type=notify`): datagrams of `KEY=value` lines sent to
//! `$NOTIFY_SOCKET`. Nothing is sent, and no task runs, when `NOTIFY_SOCKET` is unset.
//!
//! | sent                                  | when                                                        |
//! |---------------------------------------|-------------------------------------------------------------|
//! | `READY=1` + `STATUS=…`                | every agent is up (see [`summary`]), or [`Settings::ready_timeout`] after start with STATUS naming what is not |
//! | `STATUS=…`                            | the one-line summary changed (checked at each status poll)  |
//! | `WATCHDOG=1`                          | every half `$WATCHDOG_USEC`, only after the Host answered a status request |
//! | `RELOADING=1` + `MONOTONIC_USEC=…`    | SIGHUP starts a reload                                      |
//! | `READY=1`                             | the reload is done (once the first READY was sent)          |
//! | `STOPPING=1`                          | shutdown starts                                             |
//!
//! The watchdog is fed only while the Host's supervisor answers, so a wedged event loop or
//! supervisor stops the pings; an open circuit below it never does (the tree heals itself,
//! and STATUS names the circuit).

mod summary;
mod watch;

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use codexd_actors::host::Host;
use tokio::task::JoinHandle;

use crate::env::Env;

pub use summary::Summary;

/// How long the daemon waits for every agent to be up before it sends `READY=1` anyway,
/// with STATUS naming what is not up (below systemd's default `TimeoutStartSec=90s`).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the tree's status is polled for STATUS changes when no watchdog is asked for.
const STATUS_PERIOD: Duration = Duration::from_secs(10);

/// How often it is polled until READY was sent.
const STARTING_PERIOD: Duration = Duration::from_millis(250);

/// What `$NOTIFY_SOCKET`, `$WATCHDOG_USEC`, `$WATCHDOG_PID` and `$CODEXD_READY_TIMEOUT` ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The socket, as systemd wrote it (`/path` or `@abstract`).
    pub socket: String,
    /// Half of `$WATCHDOG_USEC`, when set and meant for this process.
    pub watchdog: Option<Duration>,
    /// How long READY waits for every agent ([`READY_TIMEOUT`], or `$CODEXD_READY_TIMEOUT` seconds).
    pub ready_timeout: Duration,
}

impl Settings {
    /// The notify settings for process `pid`; `None` when `NOTIFY_SOCKET` is unset or
    /// unusable (logged). `WATCHDOG_USEC` counts only when `WATCHDOG_PID` is unset or `pid`.
    pub fn from_env(env: &Env, pid: u32) -> Option<Settings> {
        let socket = env.var("NOTIFY_SOCKET")?;
        if !(socket.starts_with('/') || socket.starts_with('@')) {
            tracing::warn!(
                socket,
                "NOTIFY_SOCKET is neither a path nor @abstract; ignored"
            );
            return None;
        }
        let for_us = env
            .var("WATCHDOG_PID")
            .is_none_or(|p| p.parse::<u32>() == Ok(pid));
        let watchdog = env
            .var("WATCHDOG_USEC")
            .filter(|_| for_us)
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|&usec| usec > 0)
            .map(|usec| Duration::from_micros(usec) / 2);
        let ready_timeout = env
            .var("CODEXD_READY_TIMEOUT")
            .and_then(|s| s.parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(READY_TIMEOUT);
        Some(Settings {
            socket: socket.to_owned(),
            watchdog,
            ready_timeout,
        })
    }
}

/// Sends datagrams to the notify socket, a fresh unbound socket per message (as
/// `sd_notify(3)` does), never blocking: a full queue drops the message, logged.
#[derive(Debug, Clone)]
pub struct Notifier {
    address: SocketAddr,
}

impl Notifier {
    /// The notifier for `socket` (`/path`, or `@name` in the abstract namespace).
    pub fn new(socket: &str) -> io::Result<Notifier> {
        let address = match socket.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt as _;
                SocketAddr::from_abstract_name(name.as_bytes())?
            }
            None => SocketAddr::from_pathname(socket)?,
        };
        Ok(Notifier { address })
    }

    /// Sends `lines` (`KEY=value` each) in one datagram.
    pub fn send(&self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let message = lines.join("\n");
        if let Err(error) = self.try_send(message.as_bytes()) {
            tracing::warn!(error = %error, message = %message.replace('\n', " "), "systemd notification not sent");
        }
    }

    fn try_send(&self, message: &[u8]) -> io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        socket.send_to_addr(message, &self.address).map(drop)
    }
}

/// `RELOADING=1` wants the time the reload started on `CLOCK_MONOTONIC`.
fn monotonic_usec() -> u128 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u128::try_from(now.tv_sec).unwrap_or_default();
    let nanos = u128::try_from(now.tv_nsec).unwrap_or_default();
    secs * 1_000_000 + nanos / 1_000
}

/// The daemon's side of the protocol: the watch task (READY, STATUS, WATCHDOG) plus the
/// lifecycle messages [`run`](crate::run) sends itself. Inert when `NOTIFY_SOCKET` is unset.
#[derive(Debug, Default)]
pub struct Service {
    active: Option<Active>,
}

#[derive(Debug)]
struct Active {
    notifier: Notifier,
    /// Set by the watch task once it sent the first READY.
    ready: Arc<AtomicBool>,
    watch: JoinHandle<()>,
}

impl Service {
    /// Starts the watch task over `host`, when `settings` ask for notifications.
    pub fn start(settings: Option<Settings>, host: Host) -> Service {
        let Some(settings) = settings else {
            return Service::default();
        };
        let notifier = match Notifier::new(&settings.socket) {
            Ok(notifier) => notifier,
            Err(error) => {
                tracing::warn!(socket = %settings.socket, error = %error, "NOTIFY_SOCKET unusable; no systemd notifications");
                return Service::default();
            }
        };
        tracing::info!(socket = %settings.socket, watchdog_s = settings.watchdog.map(|w| w.as_secs_f64()), "systemd notifications on");
        let ready = Arc::new(AtomicBool::new(false));
        let watch = tokio::spawn(watch::run(
            settings,
            notifier.clone(),
            host,
            Arc::clone(&ready),
        ));
        Service {
            active: Some(Active {
                notifier,
                ready,
                watch,
            }),
        }
    }

    /// SIGHUP: a reload starts.
    pub fn reloading(&self) {
        if let Some(active) = &self.active {
            active.notifier.send(&[
                "RELOADING=1".to_owned(),
                format!("MONOTONIC_USEC={}", monotonic_usec()),
            ]);
        }
    }

    /// The reload is done: READY again, unless the first READY is still to come (the
    /// watch task sends it when the tree is up).
    pub fn reloaded(&self) {
        if let Some(active) = &self.active {
            if active.ready.load(Ordering::Acquire) {
                active.notifier.send(&["READY=1".to_owned()]);
            }
        }
    }

    /// Shutdown starts: the watch task ends and systemd hears `STOPPING=1`.
    pub fn stopping(&mut self) {
        if let Some(active) = self.active.take() {
            active.watch.abort();
            active.notifier.send(&["STOPPING=1".to_owned()]);
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(active) = &self.active {
            active.watch.abort();
        }
    }
}

/// Polls the tree: how long to wait before the next poll.
fn period(settings: &Settings, ready: bool) -> Duration {
    let steady = settings
        .watchdog
        .unwrap_or(STATUS_PERIOD)
        .min(STATUS_PERIOD);
    if ready {
        steady
    } else {
        steady.min(STARTING_PERIOD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)], pid: u32) -> Option<Settings> {
        Settings::from_env(&Env::from_pairs(pairs.iter().copied()), pid)
    }

    #[test]
    fn nothing_without_notify_socket() {
        assert_eq!(settings(&[("WATCHDOG_USEC", "1000000")], 7), None);
        assert_eq!(settings(&[("NOTIFY_SOCKET", "")], 7), None);
        assert_eq!(settings(&[("NOTIFY_SOCKET", "relative/path")], 7), None);
    }

    #[test]
    fn the_watchdog_is_half_its_usec_and_only_for_our_pid() {
        let half = Some(Duration::from_millis(500));
        type Vars = &'static [(&'static str, &'static str)];
        let table: [(Vars, Option<Duration>); 6] = [
            (&[("WATCHDOG_USEC", "1000000")], half),
            (&[("WATCHDOG_USEC", "1000000"), ("WATCHDOG_PID", "7")], half),
            (&[("WATCHDOG_USEC", "1000000"), ("WATCHDOG_PID", "8")], None),
            (&[("WATCHDOG_USEC", "0")], None),
            (&[("WATCHDOG_USEC", "soon")], None),
            (&[], None),
        ];
        for (extra, want) in table {
            let mut pairs = vec![("NOTIFY_SOCKET", "@sd")];
            pairs.extend_from_slice(extra);
            let got = settings(&pairs, 7).expect("notify on");
            assert_eq!(got.watchdog, want, "{extra:?}");
            assert_eq!(got.ready_timeout, READY_TIMEOUT);
        }
        let custom = settings(
            &[("NOTIFY_SOCKET", "/x"), ("CODEXD_READY_TIMEOUT", "2.5")],
            7,
        );
        assert_eq!(
            custom.map(|s| s.ready_timeout),
            Some(Duration::from_millis(2500))
        );
    }

    #[test]
    fn the_poll_period_follows_the_watchdog_and_is_quick_until_ready() {
        let mut s = settings(&[("NOTIFY_SOCKET", "/x")], 1).expect("on");
        assert_eq!(period(&s, true), STATUS_PERIOD);
        assert_eq!(period(&s, false), STARTING_PERIOD);
        s.watchdog = Some(Duration::from_millis(200));
        assert_eq!(period(&s, true), Duration::from_millis(200));
        assert_eq!(period(&s, false), Duration::from_millis(200));
        s.watchdog = Some(Duration::from_secs(15));
        assert_eq!(period(&s, true), STATUS_PERIOD);
    }

    #[test]
    fn datagrams_reach_path_and_abstract_sockets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let by_path = UnixDatagram::bind(&path).expect("bind");
        let name = format!("@codexd-notify-test-{}", std::process::id());
        let by_name = {
            use std::os::linux::net::SocketAddrExt as _;
            let addr = SocketAddr::from_abstract_name(&name.as_bytes()[1..]).expect("name");
            UnixDatagram::bind_addr(&addr).expect("bind abstract")
        };
        let lines = ["READY=1".to_owned(), "STATUS=up".to_owned()];
        for (socket, receiver) in [(path.to_str().expect("utf-8"), &by_path), (&name, &by_name)] {
            Notifier::new(socket).expect("address").send(&lines);
            let mut buf = [0u8; 64];
            let n = receiver.recv(&mut buf).expect("recv");
            assert_eq!(&buf[..n], b"READY=1\nSTATUS=up", "{socket}");
        }
    }

    #[test]
    fn monotonic_time_moves_forward() {
        let a = monotonic_usec();
        assert!(a > 0 && monotonic_usec() >= a);
    }
}
