use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::scan::{CORRUPT_SUFFIX, FileName, classify, group_done_name, group_file_name};
use super::*;
use crate::durable::TMP_SUFFIX;

fn new_entry(text: &str, msgid: Option<&str>) -> NewEntry {
    NewEntry {
        kind: EntryKind::Mention,
        key: "#general".into(),
        reply_to: "#general".into(),
        sender: "spark-ori".into(),
        text: text.into(),
        thread: None,
        msgid: msgid.map(str::to_owned),
        prompt: format!("[IRC @mention in #general] <spark-ori> {text}"),
        trace: TraceCtx {
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            tracestate: None,
        },
    }
}

fn open(dir: &Path) -> (Journal, Vec<Entry>) {
    Journal::open(dir).expect("open journal")
}

fn texts(entries: &[Entry]) -> Vec<&str> {
    entries
        .iter()
        .map(|entry| entry.entry.text.as_str())
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn entry_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(ENTRIES_DIR).join(entry_file_name(id))
}

#[test]
fn appended_entry_survives_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("state");
    let (mut journal, pending) = open(&dir);
    assert!(pending.is_empty());
    let mut dm = new_entry("hi", Some("m1"));
    dm.kind = EntryKind::Direct;
    dm.key = "DM:spark-ori".into();
    dm.reply_to = "spark-ori".into();
    dm.thread = Some("api-1".into());
    let appended = journal.append(dm.clone()).expect("append").expect("new");
    assert_eq!((appended.id, appended.attempts), (1, 0));
    assert_eq!(appended.entry, dm);
    assert!(appended.accepted_at > 1.0e9);
    drop(journal);

    let (journal, pending) = open(&dir);
    assert_eq!(pending, vec![appended.clone()]);
    assert_eq!(journal.pending(), vec![appended]);
    assert_eq!(journal.dir(), dir);
}

#[test]
fn entry_file_is_flat_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    journal.append(new_entry("hi", None)).expect("append");
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(entry_path(tmp.path(), 1)).expect("read")).expect("json");
    assert_eq!(json["id"], 1);
    assert_eq!(json["kind"], "mention");
    assert_eq!(json["text"], "hi");
    assert_eq!(
        json["trace"]["traceparent"],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    );
    assert!(json.get("entry").is_none(), "flattened: {json}");
}

#[test]
fn completed_entry_is_gone_after_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    let first = journal.append(new_entry("one", None)).unwrap().unwrap();
    let second = journal.append(new_entry("two", None)).unwrap().unwrap();
    journal.complete(first.id).expect("complete");
    journal.complete(first.id).expect("complete is idempotent");
    journal.complete(999).expect("unknown id is fine");
    assert_eq!(texts(&journal.pending()), ["two"]);
    assert!(!entry_path(tmp.path(), first.id).exists());
    drop(journal);

    let (_, pending) = open(tmp.path());
    assert_eq!(pending, vec![second]);
}

#[test]
fn replay_order_is_id_order_across_reopens() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    for text in ["a", "b", "c"] {
        journal.append(new_entry(text, None)).unwrap();
    }
    journal.complete(2).unwrap();
    drop(journal);

    let (mut journal, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["a", "c"]);
    let next = journal.append(new_entry("d", None)).unwrap().unwrap();
    assert_eq!(next.id, 4);
    drop(journal);

    let (_, pending) = open(tmp.path());
    let ids: Vec<u64> = pending.iter().map(|entry| entry.id).collect();
    assert_eq!(ids, [1, 3, 4]);
    assert_eq!(texts(&pending), ["a", "c", "d"]);
}

#[test]
fn ids_sort_numerically_past_nine() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    for n in 1..=12 {
        journal.append(new_entry(&n.to_string(), None)).unwrap();
    }
    drop(journal);
    let (_, pending) = open(tmp.path());
    let ids: Vec<u64> = pending.iter().map(|entry| entry.id).collect();
    assert_eq!(ids, (1..=12).collect::<Vec<_>>());
}

#[test]
fn pending_msgid_is_deduplicated_across_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    assert!(
        journal
            .append(new_entry("hi", Some("m1")))
            .unwrap()
            .is_some()
    );
    assert!(
        journal
            .append(new_entry("hi", Some("m1")))
            .unwrap()
            .is_none()
    );
    drop(journal);

    let (mut journal, pending) = open(tmp.path());
    assert_eq!(pending.len(), 1);
    assert!(
        journal
            .append(new_entry("again", Some("m1")))
            .unwrap()
            .is_none()
    );
    assert!(
        journal
            .append(new_entry("other", Some("m2")))
            .unwrap()
            .is_some()
    );
    assert_eq!(texts(&journal.pending()), ["hi", "other"]);
}

#[test]
fn completed_msgid_is_deduplicated_across_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    let entry = journal
        .append(new_entry("hi", Some("m1")))
        .unwrap()
        .unwrap();
    journal.complete(entry.id).unwrap();
    assert!(
        journal
            .append(new_entry("hi", Some("m1")))
            .unwrap()
            .is_none()
    );
    drop(journal);

    let (mut journal, pending) = open(tmp.path());
    assert!(pending.is_empty());
    assert!(
        journal
            .append(new_entry("hi", Some("m1")))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join(DONE_FILE)).unwrap(),
        "m1\n"
    );
}

#[test]
fn messages_without_a_usable_msgid_are_never_deduplicated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    for msgid in [None, Some(""), Some("a\nb")] {
        for _ in 0..2 {
            let entry = journal.append(new_entry("hi", msgid)).unwrap();
            let entry = entry.unwrap_or_else(|| panic!("{msgid:?} deduplicated"));
            journal.complete(entry.id).unwrap();
        }
    }
    assert!(!tmp.path().join(DONE_FILE).exists());
}

#[test]
fn entry_completed_before_a_crash_is_not_replayed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    let entry = journal
        .append(new_entry("hi", Some("m1")))
        .unwrap()
        .unwrap();
    journal.append(new_entry("next", Some("m2"))).unwrap();
    // A crash inside complete(): the msgid was recorded, the file not yet removed.
    fs::write(tmp.path().join(DONE_FILE), "m1\n").unwrap();
    drop(journal);

    let (_, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["next"]);
    assert!(!entry_path(tmp.path(), entry.id).exists());
}

#[test]
fn corrupt_entry_is_set_aside_and_its_id_not_reused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    for text in ["a", "b", "c"] {
        journal.append(new_entry(text, None)).unwrap();
    }
    drop(journal);
    fs::write(entry_path(tmp.path(), 3), b"{\"id\": 3, trunc").unwrap();
    let wrong_id = serde_json::to_vec(&Entry {
        id: 9,
        accepted_at: 1.0,
        attempts: 0,
        entry: new_entry("x", None),
    })
    .unwrap();
    fs::write(entry_path(tmp.path(), 2), wrong_id).unwrap();

    let (mut journal, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["a"]);
    for id in [2, 3] {
        let path = entry_path(tmp.path(), id);
        assert!(!path.exists());
        let mut corrupt = path.into_os_string();
        corrupt.push(".corrupt");
        assert!(PathBuf::from(corrupt).exists());
    }
    assert_eq!(journal.append(new_entry("d", None)).unwrap().unwrap().id, 4);
    journal.complete(1).unwrap();
    journal.complete(4).unwrap();
    drop(journal);

    // Only corrupt files left: ids still continue after them.
    let (mut journal, pending) = open(tmp.path());
    assert!(pending.is_empty());
    assert_eq!(journal.append(new_entry("e", None)).unwrap().unwrap().id, 4);
}

#[test]
fn interrupted_writes_and_foreign_files_are_handled() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    journal.append(new_entry("a", None)).unwrap();
    drop(journal);
    let entries = tmp.path().join(ENTRIES_DIR);
    fs::write(entries.join("00000000000000000002.json.tmp"), b"{").unwrap();
    fs::write(entries.join("README"), b"not an entry").unwrap();

    let (_, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["a"]);
    assert!(!entries.join("00000000000000000002.json.tmp").exists());
    assert!(entries.join("README").exists());
}

#[test]
fn started_counts_attempts_durably() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    let entry = journal.append(new_entry("hi", None)).unwrap().unwrap();
    assert_eq!(journal.started(entry.id).unwrap(), 1);
    assert_eq!(journal.started(entry.id).unwrap(), 2);
    assert_eq!(journal.started(42).unwrap(), 0);
    assert_eq!(journal.pending()[0].attempts, 2);
    drop(journal);

    let (mut journal, pending) = open(tmp.path());
    assert_eq!(pending[0].attempts, 2);
    assert_eq!(pending[0].accepted_at, entry.accepted_at);
    assert_eq!(journal.started(entry.id).unwrap(), 3);
}

#[test]
fn files_are_private() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("agents").join("spark-codex");
    let (mut journal, _) = open(&dir);
    let entry = journal
        .append(new_entry("hi", Some("m1")))
        .unwrap()
        .unwrap();
    journal.append(new_entry("hi", Some("m2"))).unwrap();
    journal.complete(entry.id).unwrap();

    for path in [
        tmp.path().join("agents"),
        dir.clone(),
        dir.join(ENTRIES_DIR),
    ] {
        assert_eq!(mode(&path), 0o700, "{}", path.display());
    }
    for path in [entry_path(&dir, 2), dir.join(DONE_FILE)] {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[test]
fn done_msgids_keep_the_most_recent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = Journal::open_with_limit(tmp.path(), 3).unwrap();
    for n in 1..=5 {
        let msgid = format!("m{n}");
        let entry = journal
            .append(new_entry("hi", Some(&msgid)))
            .unwrap()
            .unwrap();
        journal.complete(entry.id).unwrap();
    }
    assert_eq!(
        fs::read_to_string(tmp.path().join(DONE_FILE)).unwrap(),
        "m3\nm4\nm5\n"
    );
    assert_eq!(mode(&tmp.path().join(DONE_FILE)), 0o600);
    assert!(
        journal
            .append(new_entry("hi", Some("m2")))
            .unwrap()
            .is_some()
    );
    assert!(
        journal
            .append(new_entry("hi", Some("m3")))
            .unwrap()
            .is_none()
    );
    drop(journal);

    let (mut journal, _) = Journal::open_with_limit(tmp.path(), 2).unwrap();
    assert!(
        journal
            .append(new_entry("hi", Some("m3")))
            .unwrap()
            .is_some()
    );
    assert!(
        journal
            .append(new_entry("hi", Some("m4")))
            .unwrap()
            .is_none()
    );
}

#[test]
fn unwritable_directory_is_an_error_naming_the_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let blocker = tmp.path().join("file");
    fs::write(&blocker, b"").unwrap();
    let error = Journal::open(&blocker.join("state")).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot create directory {}: ",
            blocker.join("state").display()
        )),
        "{message}"
    );
}

#[test]
fn accepted_at_reads_back_exactly() {
    // The value that once read back one ulp off, then a sweep of nearby microseconds.
    let start = Duration::from_micros(1_795_283_794_653_025);
    for step in 0..100_000u64 {
        let seconds = whole_micros(start + Duration::from_micros(step * 7_919));
        let json = serde_json::to_string(&seconds).unwrap();
        assert_eq!(
            serde_json::from_str::<f64>(&json).unwrap(),
            seconds,
            "{json}"
        );
    }
    let now = epoch_seconds();
    let json = serde_json::to_string(&now).unwrap();
    assert_eq!(serde_json::from_str::<f64>(&json).unwrap(), now, "{json}");
}

#[test]
fn file_names_table() {
    let cases = [
        ("00000000000000000007.json", FileName::Entry(7)),
        ("7.json", FileName::Entry(7)),
        ("18446744073709551615.json", FileName::Entry(u64::MAX)),
        ("00000000000000000007.json.corrupt", FileName::Corrupt(7)),
        ("00000000000000000007.json.tmp", FileName::Interrupted),
        ("x.json", FileName::Other),
        (".json", FileName::Other),
        ("7.txt", FileName::Other),
        ("-1.json", FileName::Other),
        ("+1.json", FileName::Other),
        ("18446744073709551616.json", FileName::Other),
        ("7.corrupt", FileName::Other),
        ("00000000000000000007.group", FileName::Group(7)),
        ("00000000000000000007.group.done", FileName::GroupDone(7)),
        ("00000000000000000007.group.corrupt", FileName::Corrupt(7)),
        ("00000000000000000007.group.tmp", FileName::Interrupted),
        ("x.group", FileName::Other),
        (".group.done", FileName::Other),
    ];
    for (name, expected) in cases {
        assert_eq!(classify(name), expected, "{name}");
    }
    assert_eq!(entry_file_name(7), "00000000000000000007.json");
    assert_eq!(group_file_name(7), "00000000000000000007.group");
    assert_eq!(group_done_name(7), "00000000000000000007.group.done");
}

#[test]
fn a_group_commit_journals_every_entry_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    journal.append(new_entry("pending", Some("m0"))).unwrap();
    let news = vec![
        new_entry("a", Some("m1")),
        new_entry("b", None),
        new_entry("dup of a", Some("m1")),
        new_entry("dup of pending", Some("m0")),
        new_entry("c", Some("m2")),
    ];
    let batch = journal.prepare(news);
    assert_eq!(batch.len(), 3);
    batch.write().expect("group write");
    let committed = journal.commit(batch);
    let ids: Vec<Option<u64>> = committed.iter().map(|e| e.as_ref().map(|e| e.id)).collect();
    assert_eq!(ids, [Some(2), Some(3), None, None, Some(4)]);
    assert_eq!(journal.pending_count(), 4);
    let leftovers: Vec<_> = fs::read_dir(tmp.path().join(ENTRIES_DIR))
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(TMP_SUFFIX))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let group = tmp.path().join(ENTRIES_DIR).join(group_file_name(2));
    assert_eq!(mode(&group), 0o600);
    let lines = fs::read_to_string(&group).unwrap();
    assert_eq!(
        lines.lines().count(),
        3,
        "one file, one line per entry: {lines}"
    );
    for id in 2..=4 {
        assert!(!entry_path(tmp.path(), id).exists());
    }
    drop(journal);

    let (_, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["pending", "a", "b", "c"]);
}

#[test]
fn a_group_that_cannot_be_written_is_not_pending_and_its_ids_are_not_reused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    let batch = journal.prepare(vec![new_entry("a", None), new_entry("b", None)]);
    let entries = tmp.path().join(ENTRIES_DIR);
    fs::remove_dir(&entries).unwrap();
    fs::write(&entries, b"in the way").unwrap();
    let error = batch.write().unwrap_err().to_string();
    assert!(error.contains("cannot write journal entry"), "{error}");
    assert!(error.contains(&entries.display().to_string()), "{error}");
    assert_eq!(journal.pending_count(), 0);
    fs::remove_file(&entries).unwrap();
    fs::create_dir(&entries).unwrap();
    let next = journal.append(new_entry("c", None)).unwrap().unwrap();
    assert_eq!(next.id, 3);
}

#[test]
fn unreadable_done_msgids_are_set_aside() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    journal.append(new_entry("waiting", Some("m1"))).unwrap();
    drop(journal);
    fs::write(tmp.path().join(DONE_FILE), b"m0\n\xff\xfe\n").unwrap();

    let (mut journal, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["waiting"]);
    let notes = journal.take_set_aside();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let corrupt = tmp.path().join(format!("{DONE_FILE}{CORRUPT_SUFFIX}"));
    assert!(corrupt.exists(), "done-msgids not set aside");
    assert!(!tmp.path().join(DONE_FILE).exists());
    assert!(notes[0].contains(&corrupt.display().to_string()));
    assert!(journal.take_set_aside().is_empty(), "taken once");
    // The agent keeps taking mentions, and completing them.
    let entry = journal
        .append(new_entry("new", Some("m2")))
        .unwrap()
        .unwrap();
    journal.complete(entry.id).unwrap();
    drop(journal);
    let (_, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["waiting"]);
}

#[test]
fn a_completion_that_cannot_be_recorded_is_replayed_after_a_restart_not_before() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    let entry = journal
        .append(new_entry("hi", Some("m1")))
        .unwrap()
        .unwrap();
    fs::create_dir(tmp.path().join(DONE_FILE)).unwrap(); // appending to it fails
    let error = journal.complete(entry.id).unwrap_err().to_string();
    assert!(error.contains("done msgids"), "{error}");
    assert_eq!(journal.pending_count(), 0, "not run again by this process");
    drop(journal);
    fs::remove_dir(tmp.path().join(DONE_FILE)).unwrap();
    let (_, pending) = open(tmp.path());
    assert_eq!(
        texts(&pending),
        ["hi"],
        "at least once: replayed after a restart"
    );
}

#[test]
fn an_entry_in_the_first_release_format_replays() {
    // Written by codexd before group commits; kept byte for byte.
    let tmp = tempfile::tempdir().expect("tempdir");
    let entries = tmp.path().join(ENTRIES_DIR);
    fs::create_dir_all(&entries).unwrap();
    let old = r##"{"id":7,"accepted_at":1764950400.123456,"attempts":1,"kind":"direct","key":"DM:spark-ori","reply_to":"spark-ori","sender":"spark-ori","text":"hi","thread":null,"msgid":"m7","prompt":"[IRC DM] <spark-ori> hi","trace":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}"##;
    fs::write(entries.join("00000000000000000007.json"), old).unwrap();
    fs::write(tmp.path().join(DONE_FILE), "m1\nm2\n").unwrap();
    let (mut journal, pending) = open(tmp.path());
    assert_eq!(pending.len(), 1);
    let entry = &pending[0];
    assert_eq!(
        (entry.id, entry.attempts, entry.entry.kind),
        (7, 1, EntryKind::Direct)
    );
    assert_eq!(entry.accepted_at, 1764950400.123456);
    assert_eq!(entry.entry.reply_to, "spark-ori");
    assert!(
        journal
            .append(new_entry("dup", Some("m2")))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        journal.append(new_entry("new", None)).unwrap().unwrap().id,
        8
    );
}

/// A group of `n` DMs without msgids, committed; the journal and the group's first id.
fn group_of(dir: &Path, n: usize) -> (Journal, u64) {
    let (mut journal, _) = open(dir);
    let news = (0..n).map(|i| new_entry(&format!("g{i}"), None)).collect();
    let batch = journal.prepare(news);
    batch.write().unwrap();
    let first = journal.commit(batch)[0].as_ref().unwrap().id;
    (journal, first)
}

fn group_files(dir: &Path, first: u64) -> [PathBuf; 2] {
    let entries = dir.join(ENTRIES_DIR);
    [
        entries.join(group_file_name(first)),
        entries.join(group_done_name(first)),
    ]
}

#[test]
fn a_group_is_completed_member_by_member_across_reopens() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, first) = group_of(tmp.path(), 3);
    journal.complete(first).unwrap();
    journal.complete(first + 2).unwrap();
    drop(journal);

    let (mut journal, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["g1"]);
    let [group, done] = group_files(tmp.path(), first);
    assert!(group.exists() && done.exists());
    journal.complete(first + 1).unwrap();
    assert!(
        !group.exists() && !done.exists(),
        "the last member takes the files along"
    );
    drop(journal);
    let (mut journal, pending) = open(tmp.path());
    assert!(pending.is_empty());
    assert_eq!(
        journal.append(new_entry("next", None)).unwrap().unwrap().id,
        1
    );
}

#[test]
fn an_attempt_on_a_group_member_is_kept_in_its_own_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, first) = group_of(tmp.path(), 2);
    assert_eq!(journal.started(first).unwrap(), 1);
    drop(journal);

    let (mut journal, pending) = open(tmp.path());
    let attempts: Vec<u32> = pending.iter().map(|e| e.attempts).collect();
    assert_eq!(
        attempts,
        [1, 0],
        "the entry file wins over the group's copy"
    );
    journal.complete(first).unwrap();
    assert!(!entry_path(tmp.path(), first).exists());
    journal.complete(first + 1).unwrap();
    drop(journal);
    let (_, pending) = open(tmp.path());
    assert!(pending.is_empty(), "{pending:?}");
    assert!(group_files(tmp.path(), first).iter().all(|f| !f.exists()));
}

#[test]
fn a_group_member_completed_just_before_a_crash_is_not_replayed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = open(tmp.path());
    let news = vec![
        new_entry("done", Some("m1")),
        new_entry("waiting", Some("m2")),
    ];
    let batch = journal.prepare(news);
    batch.write().unwrap();
    journal.commit(batch);
    drop(journal);
    // `complete` recorded the msgid, then the process died before the group's `.done`.
    fs::write(tmp.path().join(DONE_FILE), "m1\n").unwrap();
    let (_, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["waiting"]);
    let (_, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["waiting"], "recorded at the first reopen");
}

#[test]
fn a_group_with_a_torn_line_keeps_its_readable_entries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut journal, first) = group_of(tmp.path(), 3);
    journal.complete(first).unwrap();
    drop(journal);
    let [group, _] = group_files(tmp.path(), first);
    let mut text = fs::read_to_string(&group).unwrap();
    text.push_str("{\"id\": 99, torn");
    fs::write(&group, text).unwrap();

    let (mut journal, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["g1", "g2"]);
    let notes = journal.take_set_aside();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains(".group.corrupt"), "{notes:?}");
    assert!(!group.exists());
    for id in [first + 1, first + 2] {
        assert!(entry_path(tmp.path(), id).exists(), "saved as its own file");
    }
    journal.complete(first + 1).unwrap();
    drop(journal);
    let (_, pending) = open(tmp.path());
    assert_eq!(texts(&pending), ["g2"]);
}
