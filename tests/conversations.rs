//! Conversations (actors/src/runner/conversation.rs): the real codex binary, offline
//! against the fake model, on a real agentirc. Each channel and DM peer has a codex thread
//! of its own; a follow-up in the conversation whose turn streams is steered into that turn;
//! conversations run at once; a codex killed under two turns replays each on its own
//! thread; an agent from before conversations keeps its thread.

#[path = "support/codex_agent.rs"]
mod codex_agent;
#[path = "support/codex_peer.rs"]
mod codex_peer;
#[path = "support/fake_model.rs"]
mod fake_model;
#[path = "support/irc_client.rs"]
mod irc_client;
#[path = "support/ircd.rs"]
mod ircd;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
mod support;

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use fake_model::{FakeModel, Gate, Reply, call_outputs, last_user_text, user_texts};
use serde_json::{Value, json};
use support::eventually;

/// The runner's conversations: (name, thread id, state).
fn conversations(agent: &CodexAgent) -> Option<Vec<(String, Value, String)>> {
    let runner = agent.runner()?;
    let list = runner["detail"]["conversations"].as_array()?.clone();
    Some(
        list.into_iter()
            .map(|c| {
                (
                    c["conversation"].as_str().unwrap_or_default().to_owned(),
                    c["thread_id"].clone(),
                    c["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    )
}

fn thread_of(agent: &CodexAgent, conversation: &str) -> Option<Value> {
    conversations(agent)?
        .into_iter()
        .find(|(name, thread, _)| name == conversation && thread.is_string())
        .map(|(_, thread, _)| thread)
}

fn idle_and_empty(agent: &CodexAgent) -> Option<Value> {
    let runner = agent.runner()?;
    (runner["detail"]["pending"] == 0 && runner["detail"]["phase"] == "idle").then_some(runner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_told_in_a_dm_never_reaches_a_channel_turn_and_is_remembered_in_the_next_dm() {
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), Extra::default()).await else {
        return;
    };
    let model = agent.model.as_ref().expect("fake model");
    model.when("the secret word", Reply::text("noted"));
    // The channel's turn tries to read the DM with its tool.
    model.when(
        "anything new",
        Reply::call("irc_read", json!({"channel": "DM:spark-ori"})),
    );
    model.when("what was the word", Reply::text("it was xylophone"));

    agent.say(NICK, "the secret word is xylophone").await;
    agent.reply("spark-ori", "noted").await;
    agent
        .say("#general", &format!("@{NICK} anything new?"))
        .await;
    agent.reply("#general", "ok").await;
    agent.say(NICK, "what was the word?").await;
    agent.reply("spark-ori", "it was xylophone").await;

    let model = agent.model.as_ref().expect("fake model");
    let channel = model.requests_with("anything new");
    assert_eq!(channel.len(), 2, "the call, then its output");
    for request in &channel {
        assert!(
            !request.to_string().contains("xylophone"),
            "a DM reached a channel's turn: {request}"
        );
    }
    let outputs = call_outputs(&channel[1]);
    assert!(
        outputs
            .iter()
            .any(|(_, output)| output.contains("DM:spark-ori is a private conversation")),
        "the channel's read of the DM is refused: {outputs:?}"
    );
    let dm = model.requests_with("what was the word");
    assert_eq!(dm.len(), 1);
    assert!(
        user_texts(&dm[0])
            .iter()
            .any(|text| text.contains("the secret word is xylophone")),
        "the DM's thread remembers it: {:?}",
        user_texts(&dm[0])
    );
    let general = thread_of(&agent, "#general").expect("#general's thread");
    let private = thread_of(&agent, "DM:spark-ori").expect("the DM's thread");
    assert_ne!(general, private, "two threads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_sent_while_a_turn_streams_is_steered_into_it_and_answered_once() {
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), Extra::default()).await else {
        return;
    };
    let gate = Gate::new();
    let model = agent.model.as_ref().expect("fake model");
    model.when(
        "deploy the app",
        Reply::held("deploying to production", &gate),
    );
    model.when("use staging", Reply::text("switching to staging"));

    agent
        .say("#general", &format!("@{NICK} deploy the app"))
        .await;
    let held = |agent: &CodexAgent| agent.model.as_ref().map_or(0, FakeModel::held);
    eventually("the first turn streams", || {
        (held(&agent) == 1).then_some(())
    });
    agent
        .say("#general", &format!("@{NICK} actually, use staging"))
        .await;
    agent.reply("#general", "switching to staging").await;
    let runner = eventually("both mentions done", || idle_and_empty(&agent));

    let model = agent.model.as_ref().expect("fake model");
    let steered = model.requests_with("use staging");
    assert_eq!(steered.len(), 1, "one request carries the follow-up");
    let texts = user_texts(&steered[0]);
    assert!(
        texts.iter().any(|t| t.contains("deploy the app"))
            && last_user_text(&steered[0]).is_some_and(|t| t.contains("use staging")),
        "the follow-up reached the model in the same turn, after the first: {texts:?}"
    );
    assert_eq!(model.held(), 0, "codex abandoned the streaming answer");
    let detail = &runner["detail"];
    assert_eq!(detail["turns_completed"], 1, "one turn for both: {detail}");
    assert_eq!(detail["intake"]["journaled"], 2, "{detail}");
    let answers = agent
        .ori
        .received()
        .iter()
        .filter(|line| line.contains("PRIVMSG #general :switching to staging"))
        .count();
    assert_eq!(answers, 1, "answered once");
    assert!(
        !agent
            .ori
            .received()
            .iter()
            .any(|line| line.contains("deploying to production")),
        "the abandoned answer was never posted"
    );
    assert!(
        agent
            .log()
            .contains("a follow-up is steered into the running turn")
    );
    gate.open();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_killed_under_two_conversations_replays_each_on_its_own_thread() {
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), Extra::default()).await else {
        return;
    };
    let gate = Gate::new();
    let model = agent.model.as_ref().expect("fake model");
    model.when("alpha", Reply::held("never delivered", &gate));
    model.when("beta", Reply::held("never delivered", &gate));
    agent.say("#general", &format!("@{NICK} alpha")).await;
    agent.say("#ops", &format!("@{NICK} beta")).await;
    let held = |agent: &CodexAgent| agent.model.as_ref().map_or(0, FakeModel::held);
    eventually("both turns stream at once", || {
        (held(&agent) == 2).then_some(())
    });
    let general = thread_of(&agent, "#general").expect("#general's thread");
    let ops = thread_of(&agent, "#ops").expect("#ops's thread");
    assert_ne!(general, ops);
    let model = agent.model.as_ref().expect("fake model");
    model.when("alpha", Reply::text("alpha after the crash"));
    model.when("beta", Reply::text("beta after the crash"));
    let pid = agent.runner().expect("status")["detail"]["pid"].clone();

    agent.fault("kill");
    // The two replays run at once: their answers come in either order.
    let mut answered = Vec::new();
    while answered.len() < 2 {
        let line = agent
            .ori
            .expect("a replayed answer", |line| line.contains("after the crash"))
            .await;
        answered.push(line);
    }
    for (channel, text) in [("#general", "alpha"), ("#ops", "beta")] {
        let wanted = format!("PRIVMSG {channel} :{text} after the crash");
        assert!(
            answered.iter().any(|line| line.contains(&wanted)),
            "{wanted} in {answered:?}"
        );
    }
    let runner = eventually("both replayed", || idle_and_empty(&agent));
    assert_ne!(runner["detail"]["pid"], pid, "a new codex");
    assert_eq!(thread_of(&agent, "#general"), Some(general), "resumed");
    assert_eq!(thread_of(&agent, "#ops"), Some(ops), "resumed");

    let model = agent.model.as_ref().expect("fake model");
    for (mine, other) in [("alpha", "beta"), ("beta", "alpha")] {
        let requests = model.requests_with(mine);
        assert_eq!(requests.len(), 2, "the cut-off turn and its replay");
        for request in requests {
            assert!(
                !user_texts(&request).iter().any(|t| t.contains(other)),
                "{mine}'s thread carries {other}: {:?}",
                user_texts(&request)
            );
        }
    }
    gate.open();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_agents_thread_carries_on_as_its_first_channels_conversation() {
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), Extra::default()).await else {
        return;
    };
    let model = agent.model.as_ref().expect("fake model");
    model.when("remember the word", Reply::text("noted"));
    model.when_always("which word", Reply::text("zebra, I remember"));
    agent.say(NICK, "remember the word zebra").await;
    agent.reply("spark-ori", "noted").await;
    let runner = eventually("done", || idle_and_empty(&agent));
    let old = runner["detail"]["thread_id"].clone();
    let old_id = old.as_str().expect("a thread id").to_owned();
    agent.stop_daemon();

    // As codexd before conversations left it: one thread, its tool set, no book.
    let state = agent.scratch.path(&format!("state/{NICK}"));
    let book: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("threads.json")).expect("book"))
            .expect("json");
    let tools = book["threads"]["DM:spark-ori"]["tools"]
        .as_str()
        .expect("tool set")
        .to_owned();
    std::fs::remove_file(state.join("threads.json")).expect("remove book");
    std::fs::write(state.join("thread-id"), format!("{old_id}\n")).expect("thread-id");
    std::fs::write(state.join("tool-set"), format!("{tools}\n")).expect("tool-set");
    agent.restart_daemon();

    agent.say("#general", &format!("@{NICK} which word?")).await;
    agent.reply("#general", "zebra, I remember").await;
    eventually("done", || idle_and_empty(&agent));
    assert_eq!(
        thread_of(&agent, "#general"),
        Some(old.clone()),
        "the old thread is #general's now (the agent's first channel)"
    );
    let model = agent.model.as_ref().expect("fake model");
    let asked = model.requests_with("which word");
    assert!(
        user_texts(&asked[0])
            .iter()
            .any(|t| t.contains("remember the word zebra")),
        "resumed, with its history: {:?}",
        user_texts(&asked[0])
    );
    for legacy in ["thread-id", "tool-set"] {
        assert!(!state.join(legacy).exists(), "{legacy} moved into the book");
    }
    let runner = agent.runner().expect("status");
    assert!(runner["detail"]["replaced_thread"].is_null(), "no handover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_turn_at_a_time_and_no_steering_mentions_wait_in_journal_order() {
    let extra = Extra {
        top: "conversations: {max_turns: 1, steer: false}\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), extra).await else {
        return;
    };
    let gate = Gate::new();
    let model = agent.model.as_ref().expect("fake model");
    model.when("first", Reply::held("answer one", &gate));
    model.when("second", Reply::text("answer two"));
    model.when("third", Reply::text("answer three"));
    agent.say("#general", &format!("@{NICK} first")).await;
    let held = |agent: &CodexAgent| agent.model.as_ref().map_or(0, FakeModel::held);
    eventually("#general's turn streams", || {
        (held(&agent) == 1).then_some(())
    });
    agent.say("#ops", &format!("@{NICK} second")).await;
    agent.say("#general", &format!("@{NICK} third")).await;
    let runner = eventually("all three journaled", || {
        let runner = agent.runner()?;
        (runner["detail"]["intake"]["journaled"] == 3).then_some(runner)
    });
    let turns = runner["detail"]["turns"].as_array().expect("turns").len();
    assert_eq!(turns, 1, "one turn at a time: {runner}");
    let model = agent.model.as_ref().expect("fake model");
    assert!(model.requests_with("second").is_empty(), "#ops waited");
    assert!(model.requests_with("third").is_empty(), "not steered");

    gate.open();
    agent.reply("#general", "answer one").await;
    agent.reply("#ops", "answer two").await;
    agent.reply("#general", "answer three").await;
    let runner = eventually("done", || idle_and_empty(&agent));
    assert_eq!(runner["detail"]["turns_completed"], 3, "{runner}");
    let order: Vec<usize> = ["answer one", "answer two", "answer three"]
        .iter()
        .map(|answer| {
            agent
                .ori
                .received()
                .iter()
                .position(|line| line.contains(answer))
                .expect("posted")
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "journal order: {order:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_codex_died_during_replays_alone_so_a_second_death_gives_up_only_on_it() {
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), Extra::default()).await else {
        return;
    };
    let first = Gate::new();
    let model = agent.model.as_ref().expect("fake model");
    model.when("alpha", Reply::held("never delivered", &first));
    model.when("beta", Reply::held("never delivered", &first));
    agent.say("#general", &format!("@{NICK} alpha")).await;
    agent.say("#ops", &format!("@{NICK} beta")).await;
    let held = |agent: &CodexAgent| agent.model.as_ref().map_or(0, FakeModel::held);
    eventually("both turns stream", || (held(&agent) == 2).then_some(()));
    // The first death counts an attempt against both.
    let second = Gate::new();
    let model = agent.model.as_ref().expect("fake model");
    model.when("alpha", Reply::held("never delivered", &second));
    model.when("beta", Reply::text("beta answered"));
    agent.fault("kill");

    // alpha (journaled first) replays alone: beta waits.
    eventually("alpha's replay streams", || {
        let model = agent.model.as_ref()?;
        (model.held() == 1 && model.requests_with("alpha").len() == 2).then_some(())
    });
    let model = agent.model.as_ref().expect("fake model");
    assert_eq!(model.requests_with("beta").len(), 1, "beta waits for alpha");
    let runner = agent.runner().expect("status");
    assert_eq!(
        runner["detail"]["turns"].as_array().map(Vec::len),
        Some(1),
        "{runner}"
    );
    // The second death is alpha's alone: it is given up, beta is answered.
    agent.fault("kill");
    agent
        .reply("#general", "Sorry, I encountered an error")
        .await;
    agent.reply("#ops", "beta answered").await;
    let runner = eventually("done", || idle_and_empty(&agent));
    assert_eq!(runner["detail"]["turns_failed"], 1, "{runner}");
    assert!(
        !agent
            .ori
            .received()
            .iter()
            .any(|line| line.contains("PRIVMSG #ops :Sorry")),
        "beta was not given up"
    );
    first.open();
    second.open();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_eight_loaded_threads_the_one_idle_longest_is_unloaded_and_resumed_when_needed() {
    const CHANNELS: [&str; 10] = [
        "#c0", "#c1", "#c2", "#c3", "#c4", "#c5", "#c6", "#c7", "#c8", "#c9",
    ];
    let extra = Extra {
        channels: &CHANNELS,
        top: "admission: {per_sender: 0}\n",
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Real(Vec::new()), extra).await else {
        return;
    };
    let model = agent.model.as_ref().expect("fake model");
    model.when("remember lemon", Reply::text("noted lemon"));
    model.when("what fruit", Reply::text("it was lemon"));
    agent.say("#c0", &format!("@{NICK} remember lemon")).await;
    agent.reply("#c0", "noted lemon").await;
    for channel in &CHANNELS[1..] {
        eventually("the last turn ended", || idle_and_empty(&agent));
        agent
            .say(channel, &format!("@{NICK} hello {channel}"))
            .await;
        agent.reply(channel, "ok").await;
    }
    let runner = eventually("all ten answered", || idle_and_empty(&agent));
    let states: Vec<(String, String)> = runner["detail"]["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|c| {
            (
                c["conversation"].as_str().unwrap_or_default().to_owned(),
                c["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let loaded = states.iter().filter(|(_, state)| state == "idle").count();
    assert_eq!(loaded, 8, "{states:?}");
    for unloaded in ["#c0", "#c1"] {
        assert!(
            states.contains(&(unloaded.to_owned(), "not loaded".to_owned())),
            "{unloaded} idle longest: {states:?}"
        );
    }
    assert!(agent.log().contains("unloading the thread idle longest"));

    agent.say("#c0", &format!("@{NICK} what fruit?")).await;
    agent.reply("#c0", "it was lemon").await;
    let model = agent.model.as_ref().expect("fake model");
    let asked = model.requests_with("what fruit");
    assert!(
        user_texts(&asked[0])
            .iter()
            .any(|t| t.contains("remember lemon")),
        "resumed with its history: {:?}",
        user_texts(&asked[0])
    );
}
