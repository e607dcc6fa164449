use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::trace::TraceCtx;

fn entry(kind: EntryKind, key: &str, thread: Option<&str>) -> NewEntry {
    NewEntry {
        kind,
        key: key.into(),
        reply_to: key.strip_prefix("DM:").unwrap_or(key).into(),
        sender: "spark-ori".into(),
        text: "hi".into(),
        thread: thread.map(str::to_owned),
        msgid: None,
        prompt: "hi".into(),
        trace: TraceCtx::default(),
    }
}

#[test]
fn a_conversation_is_a_channel_an_irc_thread_or_a_dm_peer() {
    let cases = [
        (EntryKind::Mention, "#dev", None, "#dev"),
        (
            EntryKind::Mention,
            "#dev",
            Some("fix-ci"),
            "#dev thread:fix-ci",
        ),
        (EntryKind::Direct, "DM:spark-ori", None, "DM:spark-ori"),
        // A poll is the channel's, whatever thread its last line was in.
        (EntryKind::Poll, "#dev", Some("fix-ci"), "#dev"),
        (EntryKind::Mention, "&local", Some("t"), "&local thread:t"),
    ];
    for (kind, key, thread, expected) in cases {
        assert_eq!(
            Conversation::of(&entry(kind, key, thread)).as_str(),
            expected
        );
    }
    assert_eq!(
        Conversation::of(&entry(EntryKind::Direct, "DM:ori", None)).dm_peer(),
        Some("ori")
    );
}

#[test]
fn parse_accepts_the_three_forms_and_names_what_it_expects() {
    for good in ["#dev", "#dev thread:fix-ci", "DM:spark-ori", " #dev "] {
        assert!(Conversation::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "dev",
        "DM:",
        "#dev thread:",
        "#a b",
        "#dev\r\nQUIT",
        "DM:a b",
    ] {
        let error = Conversation::parse(bad).unwrap_err();
        assert!(error.contains("expected #channel"), "{bad}: {error}");
    }
}

#[test]
fn the_book_keeps_each_threads_id_tools_and_handover_across_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut book, aside) = ThreadBook::open(tmp.path(), "#general").unwrap();
    assert!(aside.is_empty());
    assert_eq!(book.get("#dev"), None);
    book.set("#dev", "thr-dev", "v1:all").unwrap();
    book.set("DM:ori", "thr-dm", "v1:all").unwrap();
    book.set_handover("DM:ori", "we talked").unwrap();
    book.touch("DM:ori");
    book.set("DM:ori", "thr-dm2", "v1:all").unwrap();
    let path = tmp.path().join("threads.json");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    drop(book);

    let (mut book, _) = ThreadBook::open(tmp.path(), "#general").unwrap();
    assert_eq!(book.get("#dev").unwrap().thread, "thr-dev");
    let dm = book.get("DM:ori").unwrap();
    assert_eq!(
        (dm.thread.as_str(), dm.tools.as_deref()),
        ("thr-dm2", Some("v1:all"))
    );
    assert_eq!(book.last(), Some("DM:ori"));
    assert_eq!(book.keys().collect::<Vec<_>>(), ["#dev", "DM:ori"]);
    assert_eq!(book.take_handover("DM:ori").as_deref(), Some("we talked"));
    assert_eq!(book.take_handover("DM:ori"), None, "taken once");
    book.forget("#dev").unwrap();
    drop(book);
    let (book, _) = ThreadBook::open(tmp.path(), "#general").unwrap();
    assert_eq!(book.get("#dev"), None);
    assert_eq!(book.get("DM:ori").unwrap().handover, None);
}

#[test]
fn an_upgraded_agents_thread_carries_on_as_its_first_channels_conversation() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("thread-id"), "thr-old\n").unwrap();
    fs::write(tmp.path().join("tool-set"), "v1:all\n").unwrap();
    fs::write(tmp.path().join("handover"), "summary").unwrap();
    let (book, aside) = ThreadBook::open(tmp.path(), "#general").unwrap();
    assert!(aside.is_empty());
    let record = book.get("#general").unwrap();
    assert_eq!(record.thread, "thr-old");
    assert_eq!(record.tools.as_deref(), Some("v1:all"));
    assert_eq!(record.handover.as_deref(), Some("summary"));
    for old in ["thread-id", "tool-set", "handover"] {
        assert!(!tmp.path().join(old).exists(), "{old} left behind");
    }
    drop(book);
    let (book, _) = ThreadBook::open(tmp.path(), "#general").unwrap();
    assert_eq!(book.get("#general").unwrap().thread, "thr-old", "written");
}

#[test]
fn without_a_channel_the_first_channel_conversation_adopts_the_upgraded_thread() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("thread-id"), "thr-old\n").unwrap();
    let (mut book, _) = ThreadBook::open(tmp.path(), SHARED_KEY).unwrap();
    assert_eq!(book.get(SHARED_KEY).unwrap().thread, "thr-old");
    assert!(
        !book.adopt("DM:ori").unwrap(),
        "never a DM: it holds every peer's words"
    );
    assert_eq!(book.get("DM:ori"), None);
    assert!(book.adopt("#dev").unwrap());
    assert_eq!(book.get("#dev").unwrap().thread, "thr-old");
    assert_eq!(book.get(SHARED_KEY), None);
    assert!(!book.adopt("#ops").unwrap(), "adopted once");
    assert_eq!(book.get("#ops"), None);
}

#[test]
fn an_unreadable_book_is_set_aside_and_new_threads_start() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("threads.json"), "{not json").unwrap();
    let (book, aside) = ThreadBook::open(tmp.path(), "#general").unwrap();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].contains("threads.json.corrupt"), "{aside:?}");
    assert!(tmp.path().join("threads.json.corrupt").exists());
    assert_eq!(book.keys().count(), 0);

    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("thread-id")).unwrap();
    let (book, aside) = ThreadBook::open(tmp.path(), "#general").unwrap();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(book.keys().count(), 0);
}
