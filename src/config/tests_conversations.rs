//! Whole-file tests of `conversations:`, at daemon level and per agent.

use codexd_actors::runner::conversation::{ConversationSettings, DEFAULT_MAX_TURNS, ThreadMode};

use super::tests::{errors, ok};

const SERVER: &str = "server: {name: spark}\n";

fn settings(conversations: &ConversationSettings) -> (ThreadMode, usize, bool) {
    (
        conversations.threads,
        conversations.max_turns,
        conversations.steer,
    )
}

#[test]
fn conversations_default_to_a_thread_per_conversation() {
    let config = ok(&format!("{SERVER}agents:\n  - nick: spark-a\n")).config;
    assert_eq!(config.conversations, ConversationSettings::default());
    assert_eq!(
        settings(&config.agents[0].conversations),
        (ThreadMode::PerConversation, DEFAULT_MAX_TURNS, true)
    );
    assert_eq!(DEFAULT_MAX_TURNS, 4);
}

#[test]
fn conversations_overlay_per_agent_key_by_key() {
    let yaml = format!(
        "{SERVER}conversations: {{threads: shared, max_turns: 2, steer: false}}\nagents:\n  - nick: spark-a\n  - nick: spark-b\n    conversations: {{threads: per_conversation}}\n  - nick: spark-c\n    conversations: {{max_turns: 64, steer: true}}\n"
    );
    let config = ok(&yaml).config;
    assert_eq!(
        settings(&config.conversations),
        (ThreadMode::Shared, 2, false)
    );
    let agents: Vec<_> = config
        .agents
        .iter()
        .map(|agent| settings(&agent.conversations))
        .collect();
    assert_eq!(
        agents,
        [
            (ThreadMode::Shared, 2, false),
            (ThreadMode::PerConversation, 2, false),
            (ThreadMode::Shared, 64, true),
        ]
    );
}

#[test]
fn null_conversations_mean_the_inherited_values() {
    let yaml = format!(
        "{SERVER}conversations: {{max_turns: 8}}\nagents:\n  - nick: spark-a\n    conversations:\n  - nick: spark-b\n    conversations: {{threads: ~, max_turns: ~}}\n"
    );
    let config = ok(&yaml).config;
    for agent in &config.agents {
        assert_eq!(
            settings(&agent.conversations),
            (ThreadMode::PerConversation, 8, true),
            "{}",
            agent.nick
        );
    }
}

#[test]
fn a_bad_conversations_value_names_its_key_and_what_is_accepted() {
    let threads = "expected one of \"per_conversation\", \"shared\"";
    let cases = [
        (
            "conversations: {threads: per-conversation}".to_owned(),
            format!(
                "conversations.threads: {threads}, got \"per-conversation\"; did you mean \"per_conversation\"?"
            ),
        ),
        (
            "conversations: {threads: Shared}".to_owned(),
            format!("conversations.threads: {threads}, got \"Shared\"; did you mean \"shared\"?"),
        ),
        (
            "conversations: {threads: one}".to_owned(),
            format!("conversations.threads: {threads}, got \"one\""),
        ),
        (
            "conversations: {threads: true}".to_owned(),
            format!("conversations.threads: {threads}, got true"),
        ),
        (
            "conversations: {max_turns: 0}".to_owned(),
            "conversations.max_turns: expected an integer from 1 to 64, got 0".to_owned(),
        ),
        (
            "conversations: {max_turns: 65}".to_owned(),
            "conversations.max_turns: expected an integer from 1 to 64, got 65".to_owned(),
        ),
        (
            "conversations: {max_turns: \"4\"}".to_owned(),
            "conversations.max_turns: expected an integer from 1 to 64, got \"4\"".to_owned(),
        ),
        (
            "conversations: {steer: yes}".to_owned(),
            "conversations.steer: expected true or false, got \"yes\"".to_owned(),
        ),
        (
            "conversations: {stear: true}".to_owned(),
            "conversations.stear: unknown key; did you mean \"steer\"?".to_owned(),
        ),
        (
            "conversations: shared".to_owned(),
            "conversations: expected a mapping, got \"shared\"".to_owned(),
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(errors(&format!("{SERVER}{yaml}\n")), [want], "{yaml}");
    }
}

#[test]
fn a_bad_agent_conversations_value_names_the_agent() {
    let yaml = format!(
        "{SERVER}agents:\n  - nick: spark-a\n    conversations: {{threads: solo, max_turns: 100, steer: 1}}\n"
    );
    assert_eq!(
        errors(&yaml),
        [
            "agents[0].conversations.threads: expected one of \"per_conversation\", \"shared\", got \"solo\"",
            "agents[0].conversations.max_turns: expected an integer from 1 to 64, got 100",
            "agents[0].conversations.steer: expected true or false, got 1",
        ]
    );
}
