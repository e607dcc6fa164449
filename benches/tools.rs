//! `cargo bench --bench tools`: the latency of one of the agent's IRC tools as the model sees
//! it: from the fake model receiving the request it answers with a `function_call` (it
//! answers at once) to codex's next model request, which carries the call's output. In
//! between: codex parses the call, asks codexd (`item/tool/call`), the socket actor carries
//! it out through the `irc` actor, codexd answers, codex builds the next request. One agent,
//! real codex offline, real agentirc; `TOOLS_TURNS` turns (default 40) of one call each, for
//! `irc_channels` (answered by the `irc` actor from memory) and `irc_send` (a line to the
//! server). Nothing is asserted: the figures are printed.

#[path = "../tests/support/codex_agent.rs"]
mod codex_agent;
#[path = "../tests/support/codex_peer.rs"]
mod codex_peer;
#[path = "../tests/support/fake_model.rs"]
mod fake_model;
#[path = "../tests/support/irc_client.rs"]
mod irc_client;
#[path = "../tests/support/ircd.rs"]
mod ircd;
#[path = "support/latency.rs"]
mod latency;
#[path = "../tests/support/otlp.rs"]
#[allow(dead_code)]
mod otlp;
#[path = "../tests/support/mod.rs"]
mod support;

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use fake_model::Reply;
use latency::Stats;
use serde_json::json;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let turns: usize = std::env::var("TOOLS_TURNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    for (tool, arguments) in [
        ("irc_channels", json!({})),
        (
            "irc_send",
            json!({"channel": "#ops", "message": "from the tool"}),
        ),
    ] {
        let mut script = Vec::new();
        for n in 0..turns {
            script.push(Reply::call(tool, arguments.clone()));
            script.push(Reply::text(&format!("done {n}")));
        }
        let extra = Extra {
            top: "admission: {per_sender: 0}\n",
            server: "  flood_rate: 0\n",
            ..Extra::default()
        };
        let Some(mut agent) = CodexAgent::start(Codex::Real(script), extra).await else {
            eprintln!("tools: agentirc or codex missing (scripts/install-peers); nothing measured");
            return;
        };
        for n in 0..turns {
            agent.say("#general", &format!("@{NICK} go {n}")).await;
            agent.reply("#general", &format!("done {n}")).await;
        }
        let model = agent.model.as_ref().expect("real codex");
        let requests = model.received();
        let requests: Vec<_> = requests
            .iter()
            .filter(|r| r.path.ends_with("/responses"))
            .collect();
        let mut latencies: Vec<f64> = (0..turns)
            .filter_map(|n| {
                let gap = requests.get(2 * n + 1)?.at - requests.get(2 * n)?.at;
                Some(gap.as_secs_f64() * 1000.0)
            })
            .collect();
        let stats = Stats::of(&mut latencies);
        let mut own: Vec<u64> = agent
            .log()
            .lines()
            .filter(|line| line.contains("tool call answered"))
            .filter_map(|line| {
                let field = line
                    .split_whitespace()
                    .find(|f| f.starts_with("duration_ms="))?;
                field.trim_start_matches("duration_ms=").parse().ok()
            })
            .collect();
        own.sort_unstable();
        println!(
            "{tool:<13} {stats}  (codexd's own run: p50 {} ms, max {} ms)",
            own.get(own.len() / 2).copied().unwrap_or_default(),
            own.last().copied().unwrap_or_default(),
        );
    }
}
