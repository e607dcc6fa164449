use serde_json::json;

use super::*;

fn child(name: &str, state: &str, circuit: &str, detail: Option<Value>) -> Value {
    let mut child = json!({
        "name": name, "state": state, "restarts": 0, "circuit": circuit,
        "last_error": null, "actor_id": null, "uptime_s": null,
    });
    if let Some(detail) = detail {
        child["detail"] = detail;
    }
    child
}

/// spark-a: connected, paused (manual), 2 pending, 1 turn, webhook 3 queued.
/// spark-b: irc circuit open, runner a test child (no detail). One codex process, 4 threads.
fn status() -> HostStatus {
    let mut a = child("spark-a", "running", "closed", None);
    a["nick"] = json!("spark-a");
    a["children"] = json!([
        child(
            "irc",
            "running",
            "closed",
            Some(json!({"state": "connected"}))
        ),
        child(
            "runner",
            "running",
            "closed",
            Some(json!({"paused": "manual", "pending": 2, "turns": [{"id": "t"}]}))
        ),
        child("webhook", "running", "closed", Some(json!({"queued": 3}))),
    ]);
    let mut b = child("spark-b", "running", "closed", None);
    b["nick"] = json!("spark-b");
    b["children"] = json!([
        child("irc", "circuit_open", "open", None),
        child("runner", "running", "closed", None),
    ]);
    let mut codex = child("codex", "running", "closed", None);
    codex["children"] = json!([child(
        "process-0",
        "running",
        "closed",
        Some(json!({"threads": 4}))
    )]);
    serde_json::from_value(json!({
        "agents": [a, b],
        "services": [child("control", "running", "closed", None), codex],
    }))
    .expect("a status tree")
}

/// The points of `name` as (attributes `k=v` joined by `,`, value), sorted.
fn points(snapshot: &Snapshot, name: &str) -> Vec<(String, u64)> {
    let mut points: Vec<(String, u64)> = snapshot
        .points(name)
        .iter()
        .map(|p| {
            let attributes: Vec<String> = p
                .attributes
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            (attributes.join(","), p.value)
        })
        .collect();
    points.sort();
    points
}

fn owned(points: &[(&str, u64)]) -> Vec<(String, u64)> {
    points.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[test]
fn every_gauge_reads_its_part_of_the_tree() {
    let snapshot = Snapshot::of(&status());
    let table: [(&str, &[(&str, u64)]); 8] = [
        (
            "codexd.agent.up",
            &[("agent.nick=spark-a", 1), ("agent.nick=spark-b", 1)],
        ),
        (
            "codexd.irc.connected",
            &[("agent.nick=spark-a", 1), ("agent.nick=spark-b", 0)],
        ),
        (
            "codexd.agent.paused",
            &[
                ("agent.nick=spark-a,reason=escalation", 0),
                ("agent.nick=spark-a,reason=manual", 1),
                ("agent.nick=spark-a,reason=sleep", 0),
                ("agent.nick=spark-a,reason=turn_failures", 0),
            ],
        ),
        ("codexd.journal.pending", &[("agent.nick=spark-a", 2)]),
        ("codexd.turns.in_flight", &[("agent.nick=spark-a", 1)]),
        ("codexd.webhook.queue", &[("agent.nick=spark-a", 3)]),
        (
            "codexd.codex.processes",
            &[
                ("state=circuit_open", 0),
                ("state=restarting", 0),
                ("state=running", 1),
                ("state=starting", 0),
                ("state=stopped", 0),
            ],
        ),
        ("codexd.codex.threads", &[("codex.process=process-0", 4)]),
    ];
    for (name, want) in table {
        assert_eq!(points(&snapshot, name), owned(want), "{name}");
    }
}

#[test]
fn circuits_are_reported_at_every_level_with_the_counters_attributes() {
    let snapshot = Snapshot::of(&status());
    let open: Vec<(String, u64)> = points(&snapshot, "codexd.circuits.open");
    let want = owned(&[
        ("supervisor=codex,child=process-0", 0),
        ("supervisor=host,child=codex", 0),
        ("supervisor=host,child=control", 0),
        ("supervisor=host,child=spark-a,agent.nick=spark-a", 0),
        ("supervisor=host,child=spark-b,agent.nick=spark-b", 0),
        ("supervisor=spark-a,child=irc,agent.nick=spark-a", 0),
        ("supervisor=spark-a,child=runner,agent.nick=spark-a", 0),
        ("supervisor=spark-a,child=webhook,agent.nick=spark-a", 0),
        ("supervisor=spark-b,child=irc,agent.nick=spark-b", 1),
        ("supervisor=spark-b,child=runner,agent.nick=spark-b", 0),
    ]);
    assert_eq!(open, want);
}

#[test]
fn a_stopped_agent_is_down_and_a_tree_without_agents_has_only_services() {
    let mut status = status();
    status.agents[0].supervision.state = ChildState::Restarting;
    status.agents[0].supervision.children.clear();
    let snapshot = Snapshot::of(&status);
    assert_eq!(
        points(&snapshot, "codexd.agent.up"),
        owned(&[("agent.nick=spark-a", 0), ("agent.nick=spark-b", 1)])
    );
    assert!(snapshot.points("codexd.agent.paused").is_empty());

    status.agents.clear();
    let snapshot = Snapshot::of(&status);
    assert!(snapshot.points("codexd.agent.up").is_empty());
    assert_eq!(points(&snapshot, "codexd.codex.threads").len(), 1);
}

#[test]
fn pause_reasons_are_the_runners() {
    use codexd_actors::pause::PauseReason;
    let reasons = [
        PauseReason::Manual,
        PauseReason::TurnFailures,
        PauseReason::Escalation,
        PauseReason::Sleep,
    ];
    for reason in reasons {
        let name = serde_json::to_value(reason).expect("serializes");
        assert!(
            PAUSE_REASONS.contains(&name.as_str().unwrap_or_default()),
            "{name}"
        );
    }
}
