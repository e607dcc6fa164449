//! The in-repo fake OpenAI Responses API (`tests/support/fake_model.rs`) as a program, so the
//! real `codex app-server` can run offline outside the tests: `scripts/demo` uses it when no
//! OpenAI credentials are found.
//!
//! ```sh
//! cargo run --example fake_model -- --reply "hi from the fake"
//! # listening http://127.0.0.1:40123/v1
//! ```
//!
//! It binds a free port on 127.0.0.1, prints `listening <base_url>` (the provider `base_url`
//! for codex's `config.toml`) on stdout, and answers every model turn with `--reply` until it
//! is killed. Nothing leaves the machine.

#[path = "../tests/support/fake_model.rs"]
mod fake_model;

use std::io::Write;

use clap::Parser;
use fake_model::{FakeModel, Reply};

/// What every turn answers unless `--reply` says otherwise.
const DEFAULT_REPLY: &str = "Hello from the fake model — codexd relayed this reply from codex.";

/// A fake OpenAI Responses API on 127.0.0.1 for running codex offline.
#[derive(Parser)]
#[command(after_help = "Prints `listening <base_url>` on stdout, then serves until killed.")]
struct Args {
    /// The text every model turn answers.
    #[arg(long, value_name = "TEXT", default_value = DEFAULT_REPLY)]
    reply: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let model = FakeModel::start(Vec::new()).await;
    model.set_fallback(Reply::Text(args.reply));
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening {}", model.base_url())?;
    stdout.flush()?;
    drop(stdout);
    std::future::pending().await
}
