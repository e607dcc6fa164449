//! `scripts/demo`, README's first command, run end to end so it cannot rot: two agents on a
//! real agentirc, each with the real codex offline against the fake model
//! (`examples/fake_model.rs`) and sharing one codex process, answer a mention in `#demo` and
//! a DM, answer again after `codexd fault codex process-0 kill`, and the demo exits 0.
//!
//! The demo runs the `codexd` this test run built (`--codexd`) and the fake model `cargo test`
//! built beside it (`--fake-model`, from `target/<profile>/examples/`), so it builds nothing.
//! When that example is missing or older than its sources (`cargo test --test demo` does not
//! build examples), the demo builds it with cargo's dev profile (`--debug`). It never sees a
//! real credential: `OPENAI_API_KEY` is removed and `HOME` and `CODEX_HOME` are empty temp
//! dirs (cargo and rustup keep their own homes).
//!
//! Peers: agentirc and codex from `scripts/install-peers`; a missing peer is a loud SKIP
//! (a failure under `CI=true`). The test never installs them.

#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use otlp::{peers_dir, skip_or_fail};

/// Hang detector for the whole demo, a cold fake-model build included: not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(600);

/// What the demo prints when it runs offline, and the agents' replies (the fake's default).
const OFFLINE_NOTICE: &str =
    "no OpenAI credentials found: codex runs against codexd's in-repo fake model server (offline)";
const ALPHA_REPLY: &str = "[#demo] <spark-alpha> Hello from the fake model";
const BETA_REPLY: &str = "[DM spark-beta] <spark-beta> Hello from the fake model";

#[test]
fn the_demo_gets_both_agents_to_answer_offline() {
    let peers = peers_dir();
    for peer in ["agentirc/venv/bin/agentirc", "codex/codex"] {
        if !peers.join(peer).exists() {
            skip_or_fail(&format!("{peer} is not installed in {}", peers.display()));
            return;
        }
    }
    let scratch = tempfile::tempdir().expect("temp dir");
    let home = scratch.path().join("home");
    std::fs::create_dir_all(&home).expect("create HOME");
    let stdout_path = scratch.path().join("demo.stdout");
    let stderr_path = scratch.path().join("demo.stderr");

    let mut demo = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo"));
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(set_by_cargo_for_this_test) {
            demo.env_remove(key);
        }
    }
    demo.args(["--debug", "--codexd", env!("CARGO_BIN_EXE_codexd")]);
    if let Some(fake_model) = built_fake_model() {
        demo.arg("--fake-model").arg(fake_model);
    }
    demo.env("CODEXD_PEERS", &peers)
        .env_remove("OPENAI_API_KEY")
        .env("CODEX_HOME", &home)
        .env("CARGO_HOME", tool_home("CARGO_HOME", ".cargo"))
        .env("RUSTUP_HOME", tool_home("RUSTUP_HOME", ".rustup"))
        .env("HOME", &home)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"));
    let mut child = demo.spawn().expect("run scripts/demo");

    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            // SIGTERM: the demo's EXIT trap stops what it started.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
            panic!(
                "scripts/demo did not finish within {PATIENCE:?}\n{}",
                outputs(&stdout_path, &stderr_path)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let report = outputs(&stdout_path, &stderr_path);
    eprintln!("{report}");
    assert!(status.success(), "scripts/demo failed: {status}\n{report}");
    assert!(
        stdout.contains(OFFLINE_NOTICE),
        "stdout lacks {OFFLINE_NOTICE:?}\n{report}"
    );
    // Each agent answers twice: before and after their shared codex process is killed.
    for expected in [ALPHA_REPLY, BETA_REPLY] {
        assert_eq!(
            stdout.matches(expected).count(),
            2,
            "stdout has {expected:?} twice\n{report}"
        );
    }
    assert!(
        stdout.contains("both answered again on the restarted process"),
        "{report}"
    );
}

/// `target/<profile>/examples/fake_model` beside this test's `deps/`, if it is at least as
/// new as its sources.
fn built_fake_model() -> Option<PathBuf> {
    let test_exe = std::env::current_exe().ok()?;
    let bin = test_exe.parent()?.parent()?.join("examples/fake_model");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = ["examples/fake_model.rs", "tests/support/fake_model.rs"];
    let fresh = sources.iter().all(|source| {
        std::fs::metadata(root.join(source))
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified <= built)
    });
    fresh.then_some(bin)
}

/// What `cargo test` sets for the test process about this package (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_NAME`, …). Left in, they reach the demo's `cargo build`, where build scripts that
/// watch them (ring's) see a change: the dependencies would be rebuilt on every run.
fn set_by_cargo_for_this_test(key: &str) -> bool {
    const PREFIXES: [&str; 6] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
    ];
    key == "OUT_DIR" || PREFIXES.iter().any(|prefix| key.starts_with(prefix))
}

/// `$<var>`, else `$HOME/<dir>`: where cargo and rustup keep their state, kept for the demo's
/// cargo while HOME points elsewhere.
fn tool_home(var: &str, dir: &str) -> OsString {
    std::env::var_os(var).unwrap_or_else(|| {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        home.join(dir).into_os_string()
    })
}

fn outputs(stdout: &Path, stderr: &Path) -> String {
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    format!(
        "--- demo stdout ---\n{}--- demo stderr ---\n{}",
        read(stdout),
        read(stderr)
    )
}
