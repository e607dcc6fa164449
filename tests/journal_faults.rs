//! The journal under storage faults, through `codexd run` on a real agentirc (codex is the
//! scripted fake app-server: these are the journal's faults, not codex's). A full disk is a
//! real one: a small tmpfs mounted as the state directory (root only; skipped loudly
//! otherwise, a failure under `CI=true`).
//!
//! - a full disk refuses mentions visibly (a NOTICE to the sender, `refused_journal` and
//!   `journal_error` in status, one `journal_error` alert) and the agent takes mentions
//!   again once there is room;
//! - a turn whose completion cannot be recorded is answered, counted, alerted, and answered
//!   again after a restart (at least once, never lost);
//! - an unreadable `done-msgids` is set aside with an alert; the agent keeps answering.

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
#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use codex_agent::{Codex, CodexAgent, Extra, NICK};
use irc_client::{command_and_params, source_nick};
use serde_json::Value;
use support::eventually;
use webhook_receiver::WebhookReceiver;

/// A tmpfs of a few MiB mounted on a fresh directory; unmounted on drop.
struct SmallDisk {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallDisk {
    /// `None` (skipped loudly, or a panic under `CI=true`) when it cannot be mounted.
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path().join("state");
        std::fs::create_dir(&mount).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"])
            .arg(&mount)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(SmallDisk { _dir: dir, mount }),
            other => {
                otlp::skip_or_fail(&format!(
                    "cannot mount a small tmpfs (needs root): {other:?}"
                ));
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.mount
    }

    /// Fills the disk with `<mount>/filler` until it is full.
    fn fill(&self) {
        let mut filler = std::fs::File::create(self.mount.join("filler")).expect("filler");
        let chunk = vec![0u8; 4096];
        loop {
            match filler.write_all(&chunk).and_then(|()| filler.sync_all()) {
                Ok(()) => continue,
                Err(error) if error.raw_os_error() == Some(28) => return, // ENOSPC
                Err(error) => panic!("filling the disk: {error}"),
            }
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.mount.join("filler")).expect("remove filler");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// `webhooks:` posting generic bodies to `receiver`.
fn webhooks(receiver: &WebhookReceiver) -> String {
    format!(
        "webhooks:\n  url: {}\n  format: generic\n  timeout: 5s\n  max_attempts: 1\n",
        receiver.url()
    )
}

/// An agent on the fake app-server (`modes`) whose state is on a [`SmallDisk`], with its
/// alerts posted to a receiver.
async fn on_a_small_disk(modes: &'static str) -> Option<(SmallDisk, WebhookReceiver, CodexAgent)> {
    let disk = SmallDisk::mount()?;
    let receiver = WebhookReceiver::start().await;
    let top = webhooks(&receiver);
    let state = disk.path().display().to_string();
    let extra = Extra {
        top: &top,
        state_dir: &state,
        ..Extra::default()
    };
    let agent = CodexAgent::start(Codex::Fake(modes), extra).await?;
    Some((disk, receiver, agent))
}

fn intake(agent: &CodexAgent) -> Option<Value> {
    Some(agent.runner()?["detail"]["intake"].clone())
}

/// The `journal_error` alerts the receiver got: their messages.
fn journal_alerts(receiver: &WebhookReceiver) -> Vec<String> {
    receiver
        .requests()
        .iter()
        .map(|request| request.json())
        .filter(|body| body["event"] == "journal_error")
        .map(|body| body["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn is_notice_to_ori(line: &str, needle: &str) -> bool {
    let (command, params) = command_and_params(line);
    command == "NOTICE"
        && source_nick(line).as_deref() == Some(NICK)
        && params.first().is_some_and(|t| t == "spark-ori")
        && params.get(1).is_some_and(|t| t.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_mentions_visibly_until_there_is_room() {
    let Some((disk, receiver, mut agent)) = on_a_small_disk("").await else {
        return;
    };
    agent.say(NICK, "before the disk fills").await;
    agent.reply("spark-ori", "before the disk fills").await;
    eventually("that DM's completion recorded", || {
        (agent.runner()?["detail"]["pending"] == 0).then_some(())
    });

    disk.fill();
    agent.say(NICK, "while the disk is full").await;
    let notice = agent
        .ori
        .expect("a notice saying the DM was not saved", |line| {
            is_notice_to_ori(line, "could not be saved (disk full)")
        })
        .await;
    assert!(notice.contains("retry later"), "{notice}");
    let counts = eventually("the refusal counted", || {
        let counts = intake(&agent)?;
        (counts["refused_journal"] == 1).then_some(counts)
    });
    let error = counts["journal_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("disk full:"), "{counts}");
    let runner = agent.runner().expect("status");
    let summary = runner["detail"]["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("journal failing (disk full"), "{summary}");
    let alerts = eventually("one journal_error alert", || {
        Some(journal_alerts(&receiver)).filter(|a| !a.is_empty())
    });
    assert!(
        alerts[0].contains("the journal cannot write (disk full)"),
        "{alerts:?}"
    );

    agent.say(NICK, "still full").await; // refused again: no second alert, no second notice
    eventually("the second refusal counted", || {
        (intake(&agent)?["refused_journal"] == 2).then_some(())
    });

    disk.free();
    agent.say(NICK, "after the disk has room").await;
    agent.reply("spark-ori", "after the disk has room").await;
    let counts = intake(&agent).expect("status");
    assert!(counts.get("journal_error").is_none(), "cleared: {counts}");
    assert_eq!(
        journal_alerts(&receiver).len(),
        1,
        "one alert per failing spell"
    );
    let notices = agent
        .ori
        .received()
        .iter()
        .filter(|line| is_notice_to_ori(line, "not accepted"))
        .count();
    assert_eq!(notices, 1, "one notice per window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_that_cannot_be_recorded_is_answered_again_after_a_restart() {
    let Some((disk, receiver, mut agent)) = on_a_small_disk("slow:3000").await else {
        return;
    };
    agent.say(NICK, "answer me at least once").await;
    eventually("the turn is running", || {
        (agent.runner()?["detail"]["phase"] == "turn").then_some(())
    });
    disk.fill();
    agent.reply("spark-ori", "answer me at least once").await;
    let counts = eventually("the unrecorded completion counted", || {
        let counts = intake(&agent)?;
        (counts["completions_unrecorded"] == 1).then_some(counts)
    });
    assert!(counts["journal_error"].as_str().is_some(), "{counts}");
    let alerts = eventually("a journal_error alert", || {
        Some(journal_alerts(&receiver)).filter(|a| !a.is_empty())
    });
    assert!(
        alerts[0].contains("may be answered again after a restart"),
        "{alerts:?}"
    );
    let runner = agent.runner().expect("status");
    assert_eq!(
        runner["detail"]["pending"], 0,
        "not run again by this process"
    );

    disk.free();
    agent.stop_daemon();
    agent.restart_daemon();
    agent.reply("spark-ori", "answer me at least once").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_done_msgids_is_set_aside_and_the_agent_keeps_answering() {
    let receiver = WebhookReceiver::start().await;
    let top = webhooks(&receiver);
    let extra = Extra {
        top: &top,
        ..Extra::default()
    };
    let Some(mut agent) = CodexAgent::start(Codex::Fake(""), extra).await else {
        return;
    };
    agent.stop_daemon();
    let done = agent.scratch.path(&format!("state/{NICK}/done-msgids"));
    std::fs::write(&done, b"m1\n\xff\xfe\n").expect("corrupt done-msgids");
    agent.restart_daemon();

    agent.say(NICK, "are you still listening").await;
    agent.reply("spark-ori", "are you still listening").await;
    let mut corrupt = done.clone().into_os_string();
    corrupt.push(".corrupt");
    assert!(PathBuf::from(corrupt).exists(), "set aside");
    let alerts = eventually("a journal_error alert", || {
        Some(journal_alerts(&receiver)).filter(|a| !a.is_empty())
    });
    assert!(
        alerts[0].contains("set aside 1 file(s)") && alerts[0].contains("done-msgids.corrupt"),
        "{alerts:?}"
    );
}

/// Every directory codexd creates under `state_dir` is 0700 and every file 0600, even when
/// the daemon runs under umask 000 with agents sharing a codex process.
#[test]
fn state_is_private_whatever_the_umask() {
    let scratch = support::Scratch::new();
    let fake = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/fake_app_server.py"
    );
    scratch.write_config(&format!(
        "server: {{name: spark, host: 127.0.0.1, port: 1}}\nstate_dir: {{home}}/state\ncontrol_socket: {{socket}}\ncodex: {{agents_per_process: 2, binary: {fake}}}\nagents:\n  - nick: spark-a\n    directory: {{home}}\n  - nick: spark-b\n    directory: {{home}}\n"
    ));
    let template = scratch.codexd();
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 000; exec \"$0\" run --config \"$1\""])
        .arg(template.get_program())
        .arg(scratch.config())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let mut daemon = command.spawn().expect("spawn codexd under umask 000");
    let state = scratch.path("state");
    // A live status query opens each agent's first channel's thread (threads are opened
    // when a turn needs one): the thread book is written.
    eventually("both agents' threads started", || {
        ["spark-a", "spark-b"]
            .iter()
            .all(|nick| {
                if !state.join(nick).join("threads.json").exists() {
                    let _ = status_query(&scratch, nick);
                }
                state.join(nick).join("threads.json").exists()
            })
            .then_some(())
    });
    let mut seen = Vec::new();
    let mut dirs = vec![state.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read state") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
            let want = if meta.is_dir() { 0o700 } else { 0o600 };
            seen.push((entry.path(), mode, want));
            if meta.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let state_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&state).expect("state").permissions(),
    ) & 0o777;
    assert_eq!(state_mode, 0o700, "state_dir itself");
    assert!(
        seen.iter().any(|(p, _, _)| p.ends_with("codex-pool")),
        "{seen:?}"
    );
    let wrong: Vec<_> = seen.iter().filter(|(_, mode, want)| mode != want).collect();
    assert!(wrong.is_empty(), "not private: {wrong:?}");
}

/// `status` with `query` on `nick`'s IPC socket; true when answered.
fn status_query(scratch: &support::Scratch, nick: &str) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let path = scratch.path(&format!("run/culture-{nick}.sock"));
    let Ok(stream) = std::os::unix::net::UnixStream::connect(path) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(15)));
    let request = b"{\"type\":\"status\",\"id\":\"q\",\"query\":true}\n";
    if (&stream).write_all(request).is_err() {
        return false;
    }
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).is_ok() && !answer.is_empty()
}
