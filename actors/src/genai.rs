//! OpenTelemetry GenAI semantic-convention names for the runner's turn and tool spans and
//! its token metric, taken from `opentelemetry-semantic-conventions` 0.33.1 (semantic
//! conventions 1.42.0, feature `semconv_experimental`). They sit next to Culture's
//! `harness.*` names, which stay for Culture's dashboards.
//!
//! | where                        | attribute                   | value                                         |
//! |------------------------------|-----------------------------|-----------------------------------------------|
//! | `harness.llm.call`           | `gen_ai.operation.name`     | [`INVOKE_AGENT`]: a turn invokes the codex agent |
//! |                              | `gen_ai.provider.name`      | [`PROVIDER`] (`openai`)                       |
//! |                              | `gen_ai.system`             | [`PROVIDER`] (the older name, still read by many backends) |
//! |                              | `gen_ai.request.model`      | the agent's model                             |
//! |                              | `gen_ai.agent.name`         | the agent's nick                              |
//! |                              | `gen_ai.conversation.id`    | the codex thread id                           |
//! |                              | `gen_ai.usage.input_tokens` / `output_tokens` | the turn's last usage report |
//! | `codexd.tool.call`           | `gen_ai.operation.name`     | [`EXECUTE_TOOL`]                              |
//! |                              | `gen_ai.tool.name`, `gen_ai.tool.call.id`, `gen_ai.tool.type` | name, item id, [`tool_type`] |
//! | `codexd.tool.run`            | `gen_ai.tool.name`, `gen_ai.tool.call.id` | joins the run to its call       |
//! | `gen_ai.client.token.usage`  | histogram (`{token}`)       | `gen_ai.token.type` = `input` / `output`      |
//!
//! The crate marks every `gen_ai.*` constant deprecated ("moved to the OpenTelemetry GenAI
//! semantic conventions repository"); the names themselves did not change, so they are
//! re-exported here once, with the lint allowed in this module only. The operation and
//! token-type values are well-known values of the convention the crate has no constants for.
#![allow(deprecated)]

use opentelemetry_semantic_conventions::{attribute, metric};

/// `gen_ai.operation.name`.
pub const OPERATION_NAME: &str = attribute::GEN_AI_OPERATION_NAME;
/// `gen_ai.provider.name`.
pub const PROVIDER_NAME: &str = attribute::GEN_AI_PROVIDER_NAME;
/// `gen_ai.system` (deprecated by the convention in favour of `gen_ai.provider.name`).
pub const SYSTEM: &str = attribute::GEN_AI_SYSTEM;
/// `gen_ai.request.model`.
pub const REQUEST_MODEL: &str = attribute::GEN_AI_REQUEST_MODEL;
/// `gen_ai.agent.name`.
pub const AGENT_NAME: &str = attribute::GEN_AI_AGENT_NAME;
/// `gen_ai.conversation.id`.
pub const CONVERSATION_ID: &str = attribute::GEN_AI_CONVERSATION_ID;
/// `gen_ai.usage.input_tokens`.
pub const USAGE_INPUT_TOKENS: &str = attribute::GEN_AI_USAGE_INPUT_TOKENS;
/// `gen_ai.usage.output_tokens`.
pub const USAGE_OUTPUT_TOKENS: &str = attribute::GEN_AI_USAGE_OUTPUT_TOKENS;
/// `gen_ai.tool.name`.
pub const TOOL_NAME: &str = attribute::GEN_AI_TOOL_NAME;
/// `gen_ai.tool.call.id`.
pub const TOOL_CALL_ID: &str = attribute::GEN_AI_TOOL_CALL_ID;
/// `gen_ai.tool.type`.
pub const TOOL_TYPE: &str = attribute::GEN_AI_TOOL_TYPE;
/// `gen_ai.token.type`.
pub const TOKEN_TYPE: &str = attribute::GEN_AI_TOKEN_TYPE;
/// The `gen_ai.client.token.usage` histogram.
pub const CLIENT_TOKEN_USAGE: &str = metric::GEN_AI_CLIENT_TOKEN_USAGE;

/// The provider codex talks to.
pub const PROVIDER: &str = "openai";
/// `gen_ai.operation.name` of a turn: the convention's agent span ("invoke_agent": the
/// application invokes an agent, which may call the model and tools several times).
pub const INVOKE_AGENT: &str = "invoke_agent";
/// `gen_ai.operation.name` of a tool call: the convention's tool execution span.
pub const EXECUTE_TOOL: &str = "execute_tool";

/// The explicit bucket boundaries the convention advises for `gen_ai.client.token.usage`.
pub const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// `gen_ai.tool.type` of a codex tool item:
///
/// | item type                                   | type        | who runs it                |
/// |---------------------------------------------|-------------|----------------------------|
/// | `dynamicToolCall`                           | `function`  | codexd, the client         |
/// | `commandExecution`, `fileChange`, `mcpToolCall`, `webSearch` | `extension` | codex, the agent side |
pub fn tool_type(item_type: &str) -> &'static str {
    match item_type {
        "dynamicToolCall" => "function",
        _ => "extension",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_conventions() {
        let table = [
            (OPERATION_NAME, "gen_ai.operation.name"),
            (PROVIDER_NAME, "gen_ai.provider.name"),
            (SYSTEM, "gen_ai.system"),
            (REQUEST_MODEL, "gen_ai.request.model"),
            (USAGE_INPUT_TOKENS, "gen_ai.usage.input_tokens"),
            (USAGE_OUTPUT_TOKENS, "gen_ai.usage.output_tokens"),
            (TOOL_CALL_ID, "gen_ai.tool.call.id"),
            (CLIENT_TOKEN_USAGE, "gen_ai.client.token.usage"),
        ];
        for (constant, name) in table {
            assert_eq!(constant, name);
        }
        assert_eq!(tool_type("dynamicToolCall"), "function");
        assert_eq!(tool_type("commandExecution"), "extension");
    }
}
