//! Agents on a federated agentirc mesh (tests/support/mesh.rs): three linked servers, one
//! codexd per server with two agents each, real codex offline against one fake model, all
//! exporting spans to one real OTLP receiver. One scenario, in phases, so the machine runs
//! one mesh at a time:
//!
//! | phase  | what is checked                                                                  |
//! |--------|----------------------------------------------------------------------------------|
//! | once   | a mention and a DM from `alpha` to an agent on `charlie`: one turn each; the DM's second copy from the mesh is suppressed and counted |
//! | tools  | an agent on `alpha` sends to a channel and a nick on `charlie`, lists `#general` with who, starts a thread |
//! | split  | `charlie`'s links cut: status and alerts say so, `charlie`'s users are served, a DM from `alpha` is refused by the mesh (401); channel mentions from `alpha` and `bravo` are taken by their servers |
//! | heal   | links back: status, alerts, presence; `alpha`'s mention re-sent by agentirc and answered, `bravo`'s never re-sent (agentirc's sequence rule, see `advance_sequence`); nothing codexd accepted lost |
//! | trace  | the mention sent on `alpha` to an agent on `charlie` is one trace at the receiver |
//!
//! Peers: agentirc, codex and the OTLP receiver from `scripts/install-peers`; a missing peer
//! is a loud SKIP (a failure under `CI=true`).

#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/link_proxy.rs"]
mod link_proxy;
#[path = "support/mesh.rs"]
mod mesh;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use fake_model::{Reply, call_outputs, last_user_text};
use irc_client::{RawClient, command_and_params, parse_privmsg};
use mesh::{AGENTS, Mesh};
use otlp::{OtlpSink, ReceivedSpan};
use serde_json::{Value, json};
use support::eventually;

const ALPHA: usize = 0;
const BRAVO: usize = 1;
const CHARLIE: usize = 2;
/// The traced mention's trace, as `alpha-ori`'s own (unexported) span would send it.
const TRACE_ID: &str = "5cf92f3577b34da6a3ce929d0e0e4737";
const ORI_SPAN_ID: &str = "10f067aa0ba902b8";

/// The model requests that start a turn for a user line containing `needle` (a tool's
/// follow-up request, which ends with the tool's output, is not counted).
fn turns_for(mesh: &Mesh, needle: &str) -> usize {
    mesh.model
        .requests()
        .iter()
        .filter(|request| last_user_text(request).is_some_and(|text| text.contains(needle)))
        .filter(|request| {
            let last = request["input"].as_array().and_then(|input| input.last());
            last.is_none_or(|item| item["type"] != "function_call_output")
        })
        .count()
}

/// PRIVMSGs `user` received from `from` to `target` containing `needle`, so far.
fn copies(user: &RawClient, from: &str, target: &str, needle: &str) -> usize {
    user.received()
        .iter()
        .filter_map(|line| parse_privmsg(line))
        .filter(|(_, sender, to, text)| sender == from && to == target && text.contains(needle))
        .count()
}

/// Waits for a PRIVMSG from `from` to `target` containing `needle`: the line.
async fn expect_from(user: &mut RawClient, from: &str, target: &str, needle: &str) -> String {
    let what = format!("{from} says {needle:?} to {target}");
    user.expect(&what, |line| {
        parse_privmsg(line).is_some_and(|(_, sender, to, text)| {
            sender == from && to == target && text.contains(needle)
        })
    })
    .await
}

/// The same, for a line that may already have been read while waiting for another (the
/// model's parallel tool calls run in any order).
async fn seen_or_expect_from(
    user: &mut RawClient,
    from: &str,
    target: &str,
    needle: &str,
) -> String {
    let seen = user.received().iter().find(|line| {
        parse_privmsg(line).is_some_and(|(_, sender, to, text)| {
            sender == from && to == target && text.contains(needle)
        })
    });
    match seen {
        Some(line) => line.clone(),
        None => expect_from(user, from, target, needle).await,
    }
}

/// Waits until one of charlie's agents says `needle` in `#alerts`: the alert's line.
async fn expect_alert(user: &mut RawClient, needle: &str) -> String {
    let what = format!("a charlie agent's alert {needle:?} in #alerts");
    user.expect(&what, |line| {
        parse_privmsg(line).is_some_and(|(_, sender, to, text)| {
            sender.starts_with("charlie-") && to == "#alerts" && text.contains(needle)
        })
    })
    .await
}

/// Alerts containing `needle` that `user` saw in `#alerts`, from any agent.
fn alerts_seen(user: &RawClient, needle: &str) -> usize {
    user.received()
        .iter()
        .filter_map(|line| parse_privmsg(line))
        .filter(|(_, _, to, text)| to == "#alerts" && text.contains(needle))
        .count()
}

fn mesh_state(mesh: &Mesh, server: usize, agent: &str) -> Option<Value> {
    Some(mesh.hosts[server].irc(agent)?["mesh"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_on_a_three_server_mesh() {
    let sink = match OtlpSink::start() {
        Ok(sink) => sink,
        Err(reason) => return otlp::skip_or_fail(&reason),
    };
    let telemetry = format!(
        "telemetry:\n  enabled: true\n  service_name: codexd-mesh\n  otlp_endpoint: {}\n  otlp_protocol: grpc\n",
        sink.grpc_endpoint()
    );
    let Some(mut mesh) = Mesh::start(Some(sink.grpc_port), &telemetry).await else {
        return;
    };
    answered_once(&mut mesh).await;
    tools_act_across(&mut mesh).await;
    traced_mention(&mut mesh).await;
    split_and_heal(&mut mesh).await;
    mesh.stop_hosts();
    one_trace_across(&sink);
}

/// A mention and a DM from `alpha-ori` to `charlie-ann`: one turn and one answer each.
async fn answered_once(mesh: &mut Mesh) {
    mesh.model
        .when("mention-once", Reply::text("mention answered"));
    mesh.model.when("dm-once", Reply::text("dm answered"));
    let ori = &mut mesh.users[ALPHA];
    ori.send("PRIVMSG #general :@charlie-ann mention-once")
        .await;
    expect_from(ori, "charlie-ann", "#general", "mention answered").await;
    ori.send("PRIVMSG charlie-ann :dm-once").await;
    expect_from(ori, "charlie-ann", "alpha-ori", "dm answered").await;
    let host = &mesh.hosts[CHARLIE];
    eventually("charlie-ann suppressed the DM's second copy", || {
        (host.irc("ann")?["duplicates_suppressed"] == 1).then_some(())
    });
    eventually("both turns ended", || {
        (host.runner("ann")?["turns_completed"] == 2).then_some(())
    });
    let runner = host.runner("ann").expect("status");
    assert_eq!(
        runner["intake"]["journaled"], 2,
        "one journal entry each: {runner}"
    );
    assert_eq!(
        turns_for(mesh, "mention-once"),
        1,
        "one model turn for the mention"
    );
    assert_eq!(turns_for(mesh, "dm-once"), 1, "one model turn for the DM");
    // The mention came on a channel (relayed once): nothing suppressed for it, and no
    // agent on another server counted anything.
    for (server, agent) in [(ALPHA, "ann"), (ALPHA, "bob"), (CHARLIE, "bob")] {
        let irc = mesh.hosts[server].irc(agent).expect("status");
        assert_eq!(irc["duplicates_suppressed"], 0, "{irc}");
    }
    let ori = &mesh.users[ALPHA];
    assert_eq!(
        copies(ori, "charlie-ann", "#general", "mention answered"),
        1
    );
    // agentirc also doubles the agent's DM answer on its way back to a raw client on
    // another server: codexd sends it once, the user's client sees what agentirc relays.
    let dm_copies = copies(ori, "charlie-ann", "alpha-ori", "dm answered");
    assert!(
        (1..=2).contains(&dm_copies),
        "{dm_copies} copies of the DM answer"
    );
    eprintln!("agentirc delivered the DM answer {dm_copies} time(s) to alpha-ori");
}

/// `charlie-ori` asks `alpha-ann`, whose tools reach `charlie`: a channel line, a DM, who,
/// a thread.
async fn tools_act_across(mesh: &mut Mesh) {
    mesh.model.when(
        "use-tools",
        Reply::Calls(vec![
            ("irc_send".into(), json!({"channel": "#ops", "message": "ops line from alpha"})),
            ("irc_send".into(), json!({"channel": "charlie-ori", "message": "dm from alpha"})),
            ("irc_who".into(), json!({"target": "#general"})),
            (
                "irc_thread_create".into(),
                json!({"channel": "#general", "thread": "mesh-talk", "message": "thread from alpha"}),
            ),
        ]),
    );
    let ori = &mut mesh.users[CHARLIE];
    ori.send("PRIVMSG #general :@alpha-ann use-tools").await;
    seen_or_expect_from(ori, "alpha-ann", "#ops", "ops line from alpha").await;
    seen_or_expect_from(ori, "alpha-ann", "charlie-ori", "dm from alpha").await;
    seen_or_expect_from(
        ori,
        "alpha-ann",
        "#general",
        "[thread:mesh-talk] thread from alpha",
    )
    .await;
    expect_from(ori, "alpha-ann", "#general", "ok").await;
    let follow_up = mesh
        .model
        .requests()
        .into_iter()
        .find(|request| call_outputs(request).len() == 4)
        .expect("the request carrying the four tool outputs");
    let outputs = call_outputs(&follow_up);
    let who = outputs
        .iter()
        .map(|(_, out)| out.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for nick in ["charlie-ann", "charlie-bob", "bravo-ann", "charlie-ori"] {
        assert!(who.contains(nick), "who #general lists {nick}: {who}");
    }
}

/// `charlie` loses both links, then gets them back.
async fn split_and_heal(mesh: &mut Mesh) {
    mesh.model
        .when("local-during-split", Reply::text("still serving charlie"));
    mesh.model
        .when("held-during-split", Reply::text("answered after the heal"));
    wait_presence(mesh, "charlie-ann", |state| {
        state.is_some_and(|s| s != "offline")
    })
    .await;
    let journaled_before = journaled(mesh, CHARLIE, "ann");
    // agentirc re-sends what a peer missed by event sequence numbers, and the split server
    // asks with its own number: put alpha well ahead of charlie and charlie ahead of bravo.
    advance_sequence(mesh, ALPHA, 120).await;
    advance_sequence(mesh, CHARLIE, 60).await;

    mesh.cut(CHARLIE);
    for agent in AGENTS {
        eventually(&format!("charlie-{agent} sees its server split"), || {
            let state = mesh_state(mesh, CHARLIE, agent)?;
            (state["state"] == "split" && state["lost"] == json!(["alpha", "bravo"])).then_some(())
        });
        eventually(&format!("alpha-{agent} sees charlie lost"), || {
            let state = mesh_state(mesh, ALPHA, agent)?;
            (state["state"] == "split" && state["lost"] == json!(["charlie"])).then_some(())
        });
    }
    let charlie = &mut mesh.users[CHARLIE];
    expect_alert(charlie, "server charlie lost its mesh link to").await;
    charlie
        .send("PRIVMSG #general :@charlie-ann local-during-split")
        .await;
    expect_from(charlie, "charlie-ann", "#general", "still serving charlie").await;

    wait_presence(mesh, "charlie-ann", |state| state == Some("offline")).await;
    let alpha = &mut mesh.users[ALPHA];
    alpha.send("PRIVMSG charlie-ann :dm-during-split").await;
    let refused = alpha
        .expect("401 for a DM to a split server's agent", |line| {
            let (command, params) = command_and_params(line);
            command == "401" && params.get(1).is_some_and(|p| p == "charlie-ann")
        })
        .await;
    eprintln!("a DM from alpha during the split: {refused}");
    alpha
        .send("PRIVMSG #general :@charlie-ann held-during-split")
        .await;
    eventually("bravo-ann sees charlie lost", || {
        let state = mesh_state(mesh, BRAVO, "ann")?;
        (state["lost"] == json!(["charlie"])).then_some(())
    });
    let bravo = &mut mesh.users[BRAVO];
    bravo
        .send("PRIVMSG #general :@charlie-bob lost-during-split")
        .await;

    let before_heal = mesh.users[CHARLIE].received().len();
    mesh.heal(CHARLIE);
    mesh.wait_linked(&[ALPHA, BRAVO, CHARLIE], 2);
    let charlie = &mut mesh.users[CHARLIE];
    expect_alert(
        charlie,
        "server charlie is linked to the mesh again (alpha, bravo)",
    )
    .await;
    // Re-announced: agentirc's link burst carries no tags, so the agents set them again.
    for agent in ["charlie-ann", "charlie-bob"] {
        let text = format!("{agent} tags \u{2192} mesh, charlie");
        let seen = charlie.received()[before_heal..].iter().any(|line| {
            parse_privmsg(line).is_some_and(|(_, from, to, said)| {
                from == "system-charlie" && to == "#system" && said == text
            })
        });
        if !seen {
            mesh::expect_system(charlie, CHARLIE, &text).await;
        }
    }
    let alpha = &mut mesh.users[ALPHA];
    expect_from(alpha, "charlie-ann", "#general", "answered after the heal").await;
    wait_presence(mesh, "charlie-ann", |state| {
        state.is_some_and(|s| s != "offline")
    })
    .await;

    // bravo's line is behind charlie's own sequence number: never re-sent. Anything
    // re-sent comes on the link before what bravo sends after the heal.
    let bravo = &mut mesh.users[BRAVO];
    bravo.send("PRIVMSG #general :marker-after-heal").await;
    let charlie = &mut mesh.users[CHARLIE];
    expect_from(charlie, "bravo-ori", "#general", "marker-after-heal").await;
    assert_eq!(
        copies(charlie, "bravo-ori", "#general", "lost-during-split"),
        0
    );
    assert_eq!(
        copies(charlie, "alpha-ori", "#general", "held-during-split"),
        1
    );
    assert_eq!(turns_for(mesh, "lost-during-split"), 0);

    let host = &mesh.hosts[CHARLIE];
    eventually("charlie-ann answered everything it accepted", || {
        let runner = host.runner("ann")?;
        (runner["pending"] == 0 && runner["phase"] == "idle").then_some(runner)
    });
    assert_eq!(
        journaled(mesh, CHARLIE, "ann"),
        journaled_before + 2,
        "the local mention and the held one; the refused DM never reached codexd"
    );
    assert_eq!(turns_for(mesh, "held-during-split"), 1);
    assert_eq!(turns_for(mesh, "dm-during-split"), 0);
    let state = mesh_state(mesh, CHARLIE, "ann").expect("status");
    assert_eq!(state["splits"], 1, "{state}");
    // One alert per change per server, not one per agent (both agents saw both changes).
    let charlie = &mesh.users[CHARLIE];
    assert_eq!(alerts_seen(charlie, "server charlie lost its mesh link"), 1);
    assert_eq!(
        alerts_seen(charlie, "server charlie is linked to the mesh again"),
        1
    );
}

/// Emits `n` events on `server` that no other server sees (topics of a `+R` channel,
/// which agentirc never federates): the server's event sequence moves ahead of its peers'.
async fn advance_sequence(mesh: &mut Mesh, server: usize, n: usize) {
    let user = &mut mesh.users[server];
    let channel = format!("#seq-{}", mesh::SERVERS[server]);
    user.join(&channel).await;
    user.send(&format!("MODE {channel} +R")).await;
    for topic in 0..n {
        user.send(&format!("TOPIC {channel} :{topic}")).await;
    }
    let last = (n - 1).to_string();
    user.expect("the last topic echoed", |line| {
        let (command, params) = command_and_params(line);
        command == "TOPIC" && params.first() == Some(&channel) && params.get(1) == Some(&last)
    })
    .await;
}

fn journaled(mesh: &Mesh, server: usize, agent: &str) -> u64 {
    let runner = mesh.hosts[server].runner(agent).expect("status");
    runner["intake"]["journaled"].as_u64().expect("journaled")
}

/// `nick`'s presence state as `PRESENCE LIST` on alpha shows it, if listed.
async fn presence_seen_from_alpha(mesh: &mut Mesh, nick: &str) -> Option<String> {
    let alpha = &mut mesh.users[ALPHA];
    let from = alpha.received().len();
    alpha.send("PRESENCE LIST").await;
    alpha
        .expect("PRESENCEEND", |line| {
            command_and_params(line).0 == "PRESENCEEND"
        })
        .await;
    alpha.received()[from..]
        .iter()
        .map(|line| command_and_params(line))
        .filter(|(command, _)| command == "PRESENCELIST")
        .filter_map(|(_, params)| serde_json::from_str::<Value>(params.last()?).ok())
        .find(|row| row["nick"] == nick)
        .and_then(|row| row["state"].as_str().map(str::to_owned))
}

/// Asks alpha until `nick`'s presence satisfies `want` (a hang detector, as `eventually`).
async fn wait_presence(mesh: &mut Mesh, nick: &str, want: impl Fn(Option<&str>) -> bool) {
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    loop {
        let state = presence_seen_from_alpha(mesh, nick).await;
        if want(state.as_deref()) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{nick}'s presence on alpha stayed {state:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `alpha-ori` mentions `charlie-bob` with its own traceparent; `charlie-bob`'s tool
/// sends a line to `#ops`.
async fn traced_mention(mesh: &mut Mesh) {
    mesh.model.when(
        "traced-mention",
        Reply::call(
            "irc_send",
            json!({"channel": "#ops", "message": "traced line"}),
        ),
    );
    let ori = &mut mesh.users[ALPHA];
    ori.send(&format!(
        "@culture.dev/traceparent=00-{TRACE_ID}-{ORI_SPAN_ID}-01 PRIVMSG #general :@charlie-bob traced-mention"
    ))
    .await;
    expect_from(ori, "charlie-bob", "#ops", "traced line").await;
    expect_from(ori, "charlie-bob", "#general", "ok").await;
}

/// The traced mention is one trace at the receiver: from codexd's handle span on charlie
/// up through charlie's S2S span and alpha's PRIVMSG span to the client's span, and down
/// to the turn, its tool call and the tool's run.
fn one_trace_across(sink: &OtlpSink) {
    let spans = eventually("every span of the trace at the receiver", || {
        let spans: Vec<ReceivedSpan> = sink
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == TRACE_ID)
            .collect();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        let all = [
            "irc.command.PRIVMSG",
            "irc.s2s.SMSG",
            "harness.irc.message.handle",
            "codexd.tool.run",
        ];
        all.iter().all(|name| names.contains(name)).then_some(spans)
    });
    let handle = spans
        .iter()
        .find(|s| {
            s.name == "harness.irc.message.handle"
                && s.attr("irc.client.nick").as_deref() == Some("charlie-bob")
                && s.attr("irc.command").as_deref() == Some("PRIVMSG")
        })
        .unwrap_or_else(|| panic!("charlie-bob's handle span in {spans:#?}"));
    let mut chain = Vec::new();
    let mut parent = handle.parent_span_id.clone();
    while let Some(span) = spans.iter().find(|s| s.span_id == parent) {
        chain.push((span.service_name.clone(), span.name.clone()));
        parent = span.parent_span_id.clone();
    }
    assert_eq!(
        parent, ORI_SPAN_ID,
        "the chain ends at the client's span: {chain:?}"
    );
    let names: Vec<&str> = chain.iter().map(|(_, name)| name.as_str()).collect();
    assert!(
        names.contains(&"irc.s2s.SMSG"),
        "charlie's relay span: {chain:?}"
    );
    assert_eq!(
        names.last(),
        Some(&"irc.command.PRIVMSG"),
        "alpha's span: {chain:?}"
    );
    assert!(
        chain
            .iter()
            .all(|(service, _)| service == "culture.agentirc"),
        "{chain:?}"
    );
    let under = |parent: &str, name: &str| {
        spans
            .iter()
            .find(|s| s.parent_span_id == parent && s.name == name)
            .unwrap_or_else(|| panic!("{name} under {parent} in {spans:#?}"))
    };
    let turn = under(&handle.span_id, "harness.llm.call");
    let call = under(&turn.span_id, "codexd.tool.call");
    let run = under(&call.span_id, "codexd.tool.run");
    assert_eq!(run.attr("tool.name").as_deref(), Some("irc_send"));
    assert_eq!(run.attr("agent.nick").as_deref(), Some("charlie-bob"));
}
