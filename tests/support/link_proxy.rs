//! A loopback TCP forwarder the test controls, put in the path of one agentirc server link
//! (no agentirc command drops a link). Real time only.
//!
//! | state | live connections                 | new connections                                   |
//! |-------|----------------------------------|---------------------------------------------------|
//! | open  | forwarded both ways              | connected to the destination and forwarded        |
//! | cut   | closed at once (both ends see EOF) | accepted and held: what they send is kept; a held |
//! |       |                                  | connection that closes while cut is forgotten     |
//! | heal  | —                                | held ones are connected, their bytes sent first   |
//!
//! Holding (rather than refusing) new connections while cut keeps agentirc's link retry
//! (5 s, then 10 s, 20 s, … up to 120 s between attempts, each attempt waiting 5 s for the
//! handshake) from falling back by a whole step: an attempt made while cut completes when
//! the link is healed within its 5 s.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// `(open, cuts so far)`: a connection made before the latest cut is closed.
type Gate = (bool, u64);

/// One forwarder; stops (closing everything) on drop.
pub struct LinkProxy {
    port: u16,
    gate: watch::Sender<Gate>,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl LinkProxy {
    /// Listens on a free loopback port, forwarding to `127.0.0.1:<destination>`.
    pub async fn start(destination: u16) -> LinkProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let (gate, _) = watch::channel((true, 0));
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept_loop(
            listener,
            destination,
            gate.clone(),
            accepted.clone(),
        ));
        LinkProxy {
            port,
            gate,
            accepted,
            task,
        }
    }

    /// The port to link to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every live connection and holds new ones.
    pub fn cut(&self) {
        self.gate.send_modify(|(open, cuts)| {
            *open = false;
            *cuts += 1;
        });
    }

    /// Forwards again, held connections first.
    pub fn heal(&self) {
        self.gate.send_modify(|(open, _)| *open = true);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn accept_loop(
    listener: TcpListener,
    destination: u16,
    gate: watch::Sender<Gate>,
    accepted: Arc<AtomicU64>,
) {
    while let Ok((client, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(forward(client, destination, gate.subscribe()));
    }
}

/// One connection: held while cut, then forwarded until it ends or the next cut.
async fn forward(mut client: TcpStream, destination: u16, mut gate: watch::Receiver<Gate>) {
    let mut early = Vec::new();
    let mut chunk = [0u8; 4096];
    while !gate.borrow_and_update().0 {
        tokio::select! {
            read = client.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => early.extend_from_slice(&chunk[..n]),
            },
            changed = gate.changed() => if changed.is_err() { return },
        }
    }
    let cuts = gate.borrow().1;
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", destination)).await else {
        return;
    };
    if upstream.write_all(&early).await.is_err() {
        return;
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = gate.wait_for(|(_, now)| *now != cuts) => {}
    }
}
