use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::*;

/// 2026-03-01T23:59:59Z.
const BEFORE_MIDNIGHT: u64 = 1_772_409_599;

fn settings(dir: &Path, max_file_bytes: u64, rotate_utc_midnight: bool) -> AuditSettings {
    AuditSettings {
        dir: dir.to_path_buf(),
        server: "spark".to_owned(),
        max_file_bytes,
        rotate_utc_midnight,
        queue_depth: 1000,
    }
}

/// A clock the test moves.
fn manual_clock(epoch_s: u64) -> (Clock, Arc<Mutex<SystemTime>>) {
    let now = Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(epoch_s)));
    let reading = now.clone();
    let clock: Clock = Arc::new(move || *reading.lock().expect("clock"));
    (clock, now)
}

fn out(text: &str) -> Event {
    Event::MessageOut(MessageOut {
        command: "PRIVMSG",
        target: "#ops".to_owned(),
        text: text.to_owned(),
        lines: 1,
        queued: false,
    })
}

const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn traced() -> TraceCtx {
    TraceCtx {
        traceparent: Some(TRACE.to_owned()),
        tracestate: None,
    }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

/// Polls `check` for up to 10 s (the writer is a thread; no timing is asserted).
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn a_record_is_one_line_with_timestamp_agent_event_and_trace_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (clock, _) = manual_clock(BEFORE_MIDNIGHT);
    let (audit, writer) = start(settings(dir.path(), 1 << 20, true), clock).expect("starts");
    audit.agent("spark-a").record(out("hello"), &traced());
    audit
        .agent("spark-b")
        .record(out("untraced"), &TraceCtx::default());
    writer.finish(Duration::from_secs(10)).await;

    let path = dir.path().join("codexd.2026-03-01.jsonl");
    let text = std::fs::read_to_string(&path).expect("written");
    let first = text.lines().next().expect("a line");
    assert_eq!(
        first,
        r##"{"ts":"2026-03-01T23:59:59.000000Z","server":"spark","agent":"spark-a","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","event_type":"message.out","payload":{"command":"PRIVMSG","target":"#ops","text":"hello","lines":1,"queued":false}}"##
    );
    let second = &lines(&path)[1];
    assert_eq!(second["agent"], "spark-b");
    assert_eq!(second["trace_id"], "");
    assert_eq!(second["span_id"], "");
}

#[test]
fn files_rotate_by_size_and_a_restart_keeps_to_the_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = [b'x'; 39].iter().chain(b"\n").copied().collect::<Vec<u8>>();
    let mut files = writer::Files::new(&settings(dir.path(), 100, true));
    for _ in 0..3 {
        files.append("2026-03-01", &line).expect("appends");
    }
    files.sync().expect("syncs");
    let size = |name: &str| std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
    assert_eq!(
        size("codexd.2026-03-01.jsonl"),
        80,
        "two lines fit in 100 bytes"
    );
    assert_eq!(size("codexd.2026-03-01.1.jsonl"), 40, "the third starts .1");

    // A restart the same day appends where the line fits: .1, then .2.
    let mut files = writer::Files::new(&settings(dir.path(), 100, true));
    for _ in 0..3 {
        files.append("2026-03-01", &line).expect("appends");
    }
    files.sync().expect("syncs");
    assert_eq!(size("codexd.2026-03-01.jsonl"), 80);
    assert_eq!(size("codexd.2026-03-01.1.jsonl"), 80);
    assert_eq!(size("codexd.2026-03-01.2.jsonl"), 80);
    assert_eq!(
        files.path(),
        Some(dir.path().join("codexd.2026-03-01.2.jsonl").as_path())
    );
}

#[tokio::test]
async fn files_rotate_at_utc_midnight_when_asked() {
    for (rotate, want) in [
        (
            true,
            vec!["codexd.2026-03-01.jsonl", "codexd.2026-03-02.jsonl"],
        ),
        (false, vec!["codexd.2026-03-01.jsonl"]),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (clock, now) = manual_clock(BEFORE_MIDNIGHT);
        let (audit, writer) = start(settings(dir.path(), 1 << 20, rotate), clock).expect("starts");
        audit.record(out("before"), &traced());
        // Written before the clock moves: the writer dates lines by their timestamps anyway.
        eventually("the first line is written", || audit.stats().written == 1);
        *now.lock().expect("clock") += Duration::from_secs(2);
        audit.record(out("after"), &traced());
        writer.finish(Duration::from_secs(10)).await;

        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        assert_eq!(names, want, "rotate_utc_midnight: {rotate}");
        let last = lines(&dir.path().join(want.last().expect("a file")));
        assert_eq!(last.last().expect("a line")["payload"]["text"], "after");
        assert_eq!(
            last.last().expect("a line")["ts"],
            "2026-03-02T00:00:01.000000Z"
        );
    }
}

#[tokio::test]
async fn the_directory_is_0700_and_files_0600_even_when_they_were_wider() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("deep/audit");
    let (clock, _) = manual_clock(BEFORE_MIDNIGHT);
    let (audit, writer) = start(settings(&dir, 1 << 20, true), clock.clone()).expect("starts");
    audit.record(out("one"), &traced());
    writer.finish(Duration::from_secs(10)).await;
    assert_eq!(mode(&dir), 0o700);
    let path = dir.join("codexd.2026-03-01.jsonl");
    assert_eq!(mode(&path), 0o600);

    std::fs::set_permissions(&path, Permissions::from_mode(0o644)).expect("chmod");
    let (audit, writer) = start(settings(&dir, 1 << 20, true), clock).expect("starts");
    audit.record(out("two"), &traced());
    writer.finish(Duration::from_secs(10)).await;
    assert_eq!(mode(&path), 0o600, "an existing wider file is narrowed");
    assert_eq!(lines(&path).len(), 2, "and appended to");
}

#[tokio::test]
async fn lines_are_fsynced_in_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (clock, _) = manual_clock(BEFORE_MIDNIGHT);
    let (audit, writer) = start(settings(dir.path(), 1 << 20, true), clock).expect("starts");
    // One line alone is fsynced within the interval, without a close.
    audit.record(out("alone"), &traced());
    eventually("a lone line is fsynced", || audit.stats().syncs == 1);

    for n in 0..250 {
        audit.record(out(&n.to_string()), &traced());
    }
    writer.finish(Duration::from_secs(10)).await;
    let stats = audit.stats();
    assert_eq!(stats.written, 251);
    assert_eq!(stats.dropped, 0);
    // 250 lines: at least 3 fsyncs (100, 100, the rest at close), far fewer than lines.
    assert!(
        (3..=20).contains(&(stats.syncs - 1)),
        "fsyncs after the lone line: {}",
        stats.syncs - 1
    );
    let path = dir.path().join("codexd.2026-03-01.jsonl");
    assert_eq!(lines(&path).len(), 251);
    assert_eq!(stats.file.as_deref(), Some(path.as_path()));
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let (clock, _) = manual_clock(BEFORE_MIDNIGHT);
    let (sender, receiver) = std::sync::mpsc::sync_channel(2);
    let audit = Audit {
        shared: Arc::new(Shared {
            sender: Some(sender),
            tap: tap::channel(),
            server: "spark".to_owned(),
            dir: "/nonexistent".into(),
            clock,
            stats: Counters::default(),
            closing: AtomicBool::new(false),
            file: Mutex::new(None),
        }),
        agent: Arc::from("spark-a"),
    };
    for n in 0..5 {
        audit.record(out(&n.to_string()), &traced());
    }
    assert_eq!(
        audit.stats().dropped,
        3,
        "two fit the queue, three are counted"
    );
    drop(receiver);
    audit.record(out("after the writer"), &traced());
    let stats = audit.stats();
    assert_eq!(stats.dropped, 4, "a gone writer counts too");
    assert!(stats.summary.contains("4 dropped"), "{}", stats.summary);
}

#[test]
fn warnings_about_drops_thin_out() {
    let warned: Vec<u64> = (1..=20).filter(|n| worth_a_warning(*n)).collect();
    assert_eq!(warned, [1, 2, 4, 8, 16]);
}

#[test]
fn agentirc_cannot_name_a_file_like_codexds() {
    // agentirc: `<server>-<date>[.<n>].jsonl`; the character before the date tells them apart.
    for name in [
        writer::file_name("2026-03-01", 0),
        writer::file_name("2026-03-01", 7),
    ] {
        let date_at = name.find("2026-03-01").expect("dated");
        assert_eq!(&name[date_at - 1..date_at], ".", "{name}");
        assert!(name.ends_with(".jsonl"), "{name}");
    }
}

#[tokio::test]
async fn a_watcher_sees_every_agents_records_with_or_without_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (clock, _) = manual_clock(BEFORE_MIDNIGHT);
    let (written, writer) =
        start(settings(dir.path(), 1 << 20, true), clock.clone()).expect("starts");
    for audit in [written, live("spark", clock)] {
        let mut tap = audit.watch();
        audit.agent("spark-a").record(out("one"), &traced());
        audit.agent("spark-b").record(out("two"), &traced());
        for (agent, text) in [("spark-a", "one"), ("spark-b", "two")] {
            let Tapped::Record(record) = tap.next().await else {
                panic!("a record");
            };
            assert_eq!(record.agent(), agent);
            let line = serde_json::to_value(&*record).expect("json");
            assert_eq!(line["event_type"], "message.out");
            assert_eq!(line["payload"]["text"], text);
            assert_eq!(line["server"], "spark");
            assert_eq!(line["ts"], "2026-03-01T23:59:59.000000Z");
        }
    }
    writer.finish(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_told_how_many_it_missed() {
    let (clock, _) = manual_clock(BEFORE_MIDNIGHT);
    let audit = live("spark", clock).agent("spark-a");
    let mut tap = audit.watch();
    let sent = TAP_CAPACITY + 10;
    for n in 0..sent {
        audit.record(out(&n.to_string()), &traced());
    }
    let Tapped::Skipped(skipped) = tap.next().await else {
        panic!("the oldest records were lost");
    };
    assert_eq!(skipped, 10);
    let Tapped::Record(next) = tap.next().await else {
        panic!("then the records still held");
    };
    let Event::MessageOut(message) = next.event() else {
        panic!("{next:?}");
    };
    assert_eq!(message.text, "10");
    assert!(!audit.writes_files());
}
