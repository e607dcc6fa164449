//! Supervisor behaviour with mock children, on paused tokio time: restarts with backoff,
//! circuits that open, half-open and close, hang detection, containment across agents,
//! manual reset, run-time add/remove and ordered, bounded shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use codexd_actors::agent::AgentSpec;
use codexd_actors::child::{
    ChildFactory, ChildRole, ChildSpec, ChildState, ChildStatus, ControlError, FaultKind,
};
use codexd_actors::host::{AgentStatus, Host, HostError, HostSpec, HostStatus};
use codexd_actors::restart::RestartPolicy;
use codexd_actors::test_child::{Script, TestChildFactory};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn policy() -> RestartPolicy {
    RestartPolicy {
        backoff_base: secs(1),
        backoff_cap: secs(8),
        jitter: 0.0,
        max_restarts: 3,
        window: secs(300),
        cooldown: secs(60),
        cooldown_cap: secs(600),
        stable_after: secs(30),
        health_interval: secs(5),
        health_timeout: secs(2),
        ..RestartPolicy::default()
    }
}

fn child(name: &str, factory: impl ChildFactory) -> ChildSpec {
    ChildSpec {
        name: name.to_owned(),
        role: ChildRole::Member,
        policy: policy(),
        factory: Arc::new(factory),
    }
}

fn agent(nick: &str, children: Vec<ChildSpec>) -> AgentSpec {
    AgentSpec {
        nick: nick.to_owned(),
        policy: policy(),
        children,
        stop_timeout: secs(2),
        observer: None,
    }
}

fn healthy(names: &[&str]) -> Vec<ChildSpec> {
    names
        .iter()
        .map(|n| child(n, TestChildFactory::new(*n, Script::Healthy)))
        .collect()
}

async fn host(agents: Vec<AgentSpec>) -> Host {
    let (host, _join) = Host::spawn(HostSpec {
        services: Vec::new(),
        agents,
        stop_timeout: secs(5),
        observer: None,
    })
    .await
    .expect("host spawns");
    host
}

/// Polls `check` against the host's status until it holds, advancing paused time in
/// small steps; panics with the last status after many tries.
async fn eventually(host: &Host, what: &str, check: impl Fn(&HostStatus) -> bool) -> HostStatus {
    let mut last = None;
    for _ in 0..2000 {
        if let Ok(status) = host.status().await {
            if check(&status) {
                return status;
            }
            last = Some(status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never saw: {what}; last status: {last:#?}");
}

fn agent_of<'a>(status: &'a HostStatus, nick: &str) -> &'a AgentStatus {
    status
        .agents
        .iter()
        .find(|a| a.nick == nick)
        .unwrap_or_else(|| panic!("no agent {nick} in {status:#?}"))
}

fn child_of<'a>(status: &'a HostStatus, nick: &str, name: &str) -> &'a ChildStatus {
    let agent = agent_of(status, nick);
    agent
        .supervision
        .children
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no child {name} in {agent:#?}"))
}

fn running(status: &HostStatus, nick: &str, name: &str) -> bool {
    status.agents.iter().any(|a| {
        a.nick == nick
            && a.supervision
                .children
                .iter()
                .any(|c| c.name == name && c.state == ChildState::Running)
    })
}

#[tokio::test(start_paused = true)]
async fn a_crash_loop_opens_the_circuit_and_leaves_everything_else_alone() {
    let crasher = TestChildFactory::new("runner", Script::panicking(secs(1)));
    let a = agent(
        "spark-a",
        vec![
            child("irc", TestChildFactory::new("irc", Script::Healthy)),
            child("runner", crasher.clone()),
        ],
    );
    let b = agent("spark-b", healthy(&["irc", "runner"]));
    let host = host(vec![a, b]).await;
    let before = eventually(&host, "both agents up", |s| {
        running(s, "spark-a", "irc") && running(s, "spark-b", "runner")
    })
    .await;

    let open = eventually(&host, "runner circuit open", |s| {
        child_of(s, "spark-a", "runner").state == ChildState::CircuitOpen
    })
    .await;
    let runner = child_of(&open, "spark-a", "runner");
    assert_eq!(runner.circuit, "open");
    assert_eq!(
        runner.restarts, 2,
        "3 failures: 2 restarts, then the circuit opens"
    );
    assert_eq!(crasher.starts(), 3);
    assert!(
        runner
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("panic"),
        "{runner:?}"
    );

    // Siblings and the other agent were never restarted.
    for (nick, name) in [
        ("spark-a", "irc"),
        ("spark-b", "irc"),
        ("spark-b", "runner"),
    ] {
        assert_eq!(
            child_of(&open, nick, name).actor_id,
            child_of(&before, nick, name).actor_id,
            "{nick}/{name}"
        );
        assert_eq!(child_of(&open, nick, name).restarts, 0);
    }
    assert_eq!(
        agent_of(&open, "spark-a").supervision.state,
        ChildState::Running,
        "the agent itself stays up"
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_attempt_that_stays_up_closes_the_circuit() {
    // The first three instances panic; the fourth (the half-open attempt) is healthy.
    let flaky = TestChildFactory::new(
        "irc",
        Script::Fail {
            times: 3,
            after: secs(1),
            kind: FaultKind::Panic,
        },
    );
    let host = host(vec![agent("spark-a", vec![child("irc", flaky.clone())])]).await;
    eventually(&host, "circuit open", |s| {
        child_of(s, "spark-a", "irc").circuit == "open"
    })
    .await;
    eventually(&host, "half-open attempt running", |s| {
        child_of(s, "spark-a", "irc").circuit == "half_open" && running(s, "spark-a", "irc")
    })
    .await;
    let closed = eventually(&host, "circuit closed", |s| {
        child_of(s, "spark-a", "irc").circuit == "closed"
    })
    .await;
    assert_eq!(
        child_of(&closed, "spark-a", "irc").state,
        ChildState::Running
    );
    assert_eq!(child_of(&closed, "spark-a", "irc").last_error, None);
    assert_eq!(flaky.starts(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_failed_half_open_attempt_reopens_for_longer() {
    let always = TestChildFactory::new("irc", Script::erroring(secs(1)));
    let host = host(vec![agent("spark-a", vec![child("irc", always.clone())])]).await;
    eventually(&host, "circuit open", |s| {
        child_of(s, "spark-a", "irc").circuit == "open"
    })
    .await;
    let opened_at = tokio::time::Instant::now();
    eventually(&host, "half-open", |s| {
        child_of(s, "spark-a", "irc").circuit == "half_open"
    })
    .await;
    let first_cooldown = opened_at.elapsed();
    eventually(&host, "re-opened", |s| {
        child_of(s, "spark-a", "irc").circuit == "open"
    })
    .await;
    let reopened_at = tokio::time::Instant::now();
    eventually(&host, "half-open again", |s| {
        child_of(s, "spark-a", "irc").circuit == "half_open"
    })
    .await;
    let second_cooldown = reopened_at.elapsed();
    assert!(
        second_cooldown > first_cooldown + secs(30),
        "cooldown grows: {first_cooldown:?} then {second_cooldown:?}"
    );
    assert_eq!(always.starts(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_hung_child_is_detected_killed_and_restarted() {
    let hanging = TestChildFactory::new(
        "socket",
        Script::Fail {
            times: 1,
            after: secs(1),
            kind: FaultKind::Hang {
                duration: secs(3600),
            },
        },
    );
    let host = host(vec![agent(
        "spark-a",
        vec![child("socket", hanging.clone())],
    )])
    .await;
    let first = eventually(&host, "socket up", |s| running(s, "spark-a", "socket")).await;
    let first_id = child_of(&first, "spark-a", "socket").actor_id.clone();
    let healed = eventually(&host, "socket restarted after hanging", |s| {
        let c = child_of(s, "spark-a", "socket");
        c.state == ChildState::Running && c.actor_id != first_id
    })
    .await;
    let socket = child_of(&healed, "spark-a", "socket");
    assert_eq!(socket.restarts, 1);
    assert!(
        socket
            .last_error
            .as_deref()
            .unwrap_or_default()
            .starts_with("hung:"),
        "{socket:?}"
    );
    assert_eq!(hanging.starts(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_child_that_cannot_start_counts_as_failed() {
    let broken = TestChildFactory::new("runner", Script::FailToStart);
    let host = host(vec![agent(
        "spark-a",
        vec![child("runner", broken.clone())],
    )])
    .await;
    let open = eventually(&host, "circuit open", |s| {
        child_of(s, "spark-a", "runner").state == ChildState::CircuitOpen
    })
    .await;
    assert!(
        child_of(&open, "spark-a", "runner")
            .last_error
            .as_deref()
            .unwrap_or_default()
            .starts_with("start failed")
    );
    assert_eq!(broken.starts(), 3);
}

#[tokio::test(start_paused = true)]
async fn injected_faults_open_the_circuit_and_reset_closes_it() {
    let host = host(vec![
        agent("spark-a", healthy(&["irc", "runner"])),
        agent("spark-b", healthy(&["irc"])),
    ])
    .await;
    let before = eventually(&host, "up", |s| {
        running(s, "spark-a", "irc") && running(s, "spark-b", "irc")
    })
    .await;
    for round in 0..3 {
        let up = eventually(&host, "irc running", |s| running(s, "spark-a", "irc")).await;
        let id = child_of(&up, "spark-a", "irc").actor_id.clone();
        host.fault("spark-a", "irc", FaultKind::Panic)
            .await
            .unwrap_or_else(|e| panic!("fault {round}: {e}"));
        // The first restart is immediate: the instance changes, or the circuit opens.
        eventually(&host, "irc failed", |s| {
            child_of(s, "spark-a", "irc").actor_id != id
        })
        .await;
    }
    let open = eventually(&host, "open", |s| {
        child_of(s, "spark-a", "irc").state == ChildState::CircuitOpen
    })
    .await;
    assert_eq!(
        child_of(&open, "spark-a", "runner").actor_id,
        child_of(&before, "spark-a", "runner").actor_id
    );
    assert_eq!(
        child_of(&open, "spark-b", "irc").actor_id,
        child_of(&before, "spark-b", "irc").actor_id
    );

    // A fault aimed at a child whose circuit is open is refused, not crashed on.
    let refused = host.fault("spark-a", "irc", FaultKind::Panic).await;
    assert!(
        matches!(
            refused,
            Err(HostError::Refused(ControlError::NotRunning { .. }))
        ),
        "{refused:?}"
    );

    host.reset("spark-a", Some("irc")).await.expect("reset");
    let reset = eventually(&host, "running again", |s| running(s, "spark-a", "irc")).await;
    let irc = child_of(&reset, "spark-a", "irc");
    assert_eq!(
        (irc.circuit.as_str(), irc.restarts, irc.last_error.clone()),
        ("closed", 0, None)
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_targets_are_clear_errors() {
    let host = host(vec![agent("spark-a", healthy(&["irc"]))]).await;
    eventually(&host, "up", |s| running(s, "spark-a", "irc")).await;
    let cases = [("spark-x", "irc"), ("spark-a", "nope")];
    for (nick, name) in cases {
        let err = host
            .fault(nick, name, FaultKind::Panic)
            .await
            .expect_err("refused");
        let HostError::Refused(ControlError::NoSuchChild {
            name: missing,
            known,
        }) = err
        else {
            panic!("{err:?}")
        };
        assert!([nick, name].contains(&missing.as_str()), "{missing}");
        assert!(!known.is_empty());
    }
    assert!(host.reset("spark-x", None).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn an_agent_supervisor_that_panics_is_restarted_with_fresh_children() {
    let host = host(vec![
        agent("spark-a", healthy(&["irc"])),
        agent("spark-b", healthy(&["irc"])),
    ])
    .await;
    let before = eventually(&host, "up", |s| {
        running(s, "spark-a", "irc") && running(s, "spark-b", "irc")
    })
    .await;
    // An empty child path targets the agent's own supervisor.
    let path_to_agent = host.actor().call(
        |reply| {
            codexd_actors::supervisor::SupervisorMsg::Control(
                codexd_actors::child::ControlMsg::Fault {
                    path: vec!["spark-a".into()],
                    kind: FaultKind::Panic,
                    reply,
                    trace: Default::default(),
                },
            )
        },
        Some(secs(5)),
    );
    assert!(matches!(
        path_to_agent.await,
        Ok(ractor::rpc::CallResult::Success(Ok(())))
    ));
    let after = eventually(&host, "spark-a restarted", |s| {
        agent_of(s, "spark-a").supervision.restarts == 1 && running(s, "spark-a", "irc")
    })
    .await;
    assert_ne!(
        child_of(&after, "spark-a", "irc").actor_id,
        child_of(&before, "spark-a", "irc").actor_id
    );
    assert_eq!(
        child_of(&after, "spark-b", "irc").actor_id,
        child_of(&before, "spark-b", "irc").actor_id
    );
    assert_eq!(
        agent_of(&after, "spark-b").supervision.actor_id,
        agent_of(&before, "spark-b").supervision.actor_id
    );
}

#[tokio::test(start_paused = true)]
async fn agents_can_be_added_and_removed_at_run_time() {
    let host = host(vec![agent("spark-a", healthy(&["irc"]))]).await;
    let before = eventually(&host, "a up", |s| running(s, "spark-a", "irc")).await;
    host.add_agent(agent("spark-b", healthy(&["irc"])))
        .await
        .expect("added");
    assert!(
        host.add_agent(agent("spark-b", healthy(&["irc"])))
            .await
            .is_err(),
        "duplicate nick refused"
    );
    let both = eventually(&host, "b up", |s| running(s, "spark-b", "irc")).await;
    assert_eq!(
        agent_of(&both, "spark-a").supervision.actor_id,
        agent_of(&before, "spark-a").supervision.actor_id
    );
    assert!(host.remove_agent("spark-a").await.expect("removed"));
    assert!(!host.remove_agent("spark-a").await.expect("answered"));
    let after = eventually(&host, "a gone", |s| s.agents.len() == 1).await;
    assert_eq!(after.agents[0].nick, "spark-b");
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_children_in_reverse_order_and_kills_what_hangs() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let names = ["webhook", "runner", "socket", "irc"];
    let children = names
        .iter()
        .map(|n| {
            child(
                n,
                TestChildFactory::new(*n, Script::Healthy).with_stop_log(log.clone()),
            )
        })
        .collect();
    let stuck = child(
        "overseer",
        TestChildFactory::new("overseer", Script::hanging(secs(1), secs(86_400))),
    );
    let host = host(vec![
        agent("spark-a", children),
        agent("spark-b", vec![stuck]),
    ])
    .await;
    eventually(&host, "up", |s| running(s, "spark-a", "irc")).await;
    tokio::time::sleep(secs(2)).await; // let the overseer start hanging (paused time)

    host.shutdown(secs(10)).await;
    let stopped = log.lock().expect("log").clone();
    assert_eq!(stopped, ["irc", "socket", "runner", "webhook"]);
    assert!(host.status().await.is_err(), "the host is gone");
}
