//! Health pings share one process-wide grid: children of agents started at different times
//! are pinged at the same instants, so an idle process wakes once per `health_interval`
//! rather than once per agent. Paused tokio time; the children record when they are pinged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use codexd_actors::agent::AgentSpec;
use codexd_actors::child::{ChildFactory, ChildHandle, ChildRole, ChildSpec, ControlMsg};
use codexd_actors::fault;
use codexd_actors::host::{Host, HostSpec};
use codexd_actors::restart::RestartPolicy;
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use tokio::time::Instant;

type Pings = Arc<Mutex<Vec<Instant>>>;

/// A leaf child that writes down when each health ping arrives.
struct Recorder;

impl Actor for Recorder {
    type Msg = ControlMsg;
    type State = Pings;
    type Arguments = Pings;

    async fn pre_start(
        &self,
        _myself: ActorRef<ControlMsg>,
        pings: Pings,
    ) -> Result<Pings, ActorProcessingErr> {
        Ok(pings)
    }

    async fn handle(
        &self,
        _myself: ActorRef<ControlMsg>,
        msg: ControlMsg,
        pings: &mut Pings,
    ) -> Result<(), ActorProcessingErr> {
        if let ControlMsg::Ping(_) = &msg {
            pings.lock().expect("pings lock").push(Instant::now());
        }
        fault::handle_leaf(msg, "recorder").await
    }
}

struct RecorderFactory(Pings);

impl ChildFactory for RecorderFactory {
    fn spawn(&self, supervisor: ActorCell) -> BoxFuture<'static, Result<ChildHandle, SpawnErr>> {
        let pings = self.0.clone();
        Box::pin(async move {
            let (actor, _) = Actor::spawn_linked(None, Recorder, pings, supervisor).await?;
            Ok(ChildHandle::new(actor))
        })
    }
}

fn policy() -> RestartPolicy {
    RestartPolicy {
        health_interval: Duration::from_secs(5),
        health_timeout: Duration::from_secs(2),
        ..RestartPolicy::default()
    }
}

fn agent(nick: &str, pings: &Pings) -> AgentSpec {
    AgentSpec {
        nick: nick.to_owned(),
        policy: policy(),
        children: vec![ChildSpec {
            name: "irc".to_owned(),
            role: ChildRole::Member,
            policy: policy(),
            factory: Arc::new(RecorderFactory(pings.clone())),
        }],
        stop_timeout: Duration::from_secs(2),
        observer: None,
    }
}

/// Advances paused time in small steps until `pings` holds `n` entries.
async fn pinged(pings: &Pings, n: usize) -> Vec<Instant> {
    for _ in 0..2000 {
        let seen = pings.lock().expect("pings lock").clone();
        if seen.len() >= n {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "fewer than {n} pings: {:?}",
        pings.lock().expect("pings lock")
    );
}

#[tokio::test(start_paused = true)]
async fn agents_started_apart_are_pinged_at_the_same_instants() {
    let (early, late) = (Pings::default(), Pings::default());
    let (host, _join) = Host::spawn(HostSpec {
        services: Vec::new(),
        agents: vec![agent("spark-a", &early)],
        stop_timeout: Duration::from_secs(5),
        observer: None,
    })
    .await
    .expect("host spawns");
    pinged(&early, 1).await;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    host.add_agent(agent("spark-b", &late))
        .await
        .expect("second agent starts");

    let late_pings = pinged(&late, 3).await;
    let early_pings = pinged(&early, 1).await;
    for at in &late_pings {
        assert!(
            early_pings.contains(at),
            "spark-b pinged at {at:?}, off spark-a's instants {early_pings:?}"
        );
    }
    for pair in late_pings.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::from_secs(5), "{late_pings:?}");
    }
    host.shutdown(Duration::from_secs(2)).await;
}
