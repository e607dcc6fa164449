//! `cargo bench --bench journal`: how many entries per second the journal commits durably,
//! one at a time (`append`: write, fsync, rename, fsync the directory, per entry) against
//! group commits (`prepare` → `Batch::write` → `commit`: one `syncfs` and one directory
//! fsync per group), as the intake does for a burst. Entries are the size of a real DM's.
//!
//! `JOURNAL_DIR` picks the file system (default: a temp dir under `$TMPDIR`), `ENTRIES` the
//! count (default 2000), `GROUPS` the group sizes (default `1,16,64,512`). Nothing is
//! asserted: the figures are printed.

use std::path::PathBuf;
use std::time::Instant;

use codexd_actors::runner::journal::{EntryKind, Journal, NewEntry};
use codexd_actors::trace::TraceCtx;

fn entry(i: usize) -> NewEntry {
    let text = format!("spark-ori #{i}: can you look at the failing build on main?");
    NewEntry {
        kind: EntryKind::Direct,
        key: "DM:spark-ori".into(),
        reply_to: "spark-ori".into(),
        sender: "spark-ori".into(),
        prompt: format!("[IRC DM] <spark-ori> {text}"),
        text,
        thread: None,
        msgid: Some(format!("msg-{i:08}")),
        trace: TraceCtx {
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            tracestate: None,
        },
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let entries: usize = env_or("ENTRIES", 2000);
    let groups: Vec<usize> = std::env::var("GROUPS")
        .unwrap_or_else(|_| "1,16,64,512".into())
        .split(',')
        .filter_map(|g| g.trim().parse().ok())
        .collect();
    let base = std::env::var_os("JOURNAL_DIR").map(PathBuf::from);
    println!("journal: {entries} entries per run");
    for &group in &groups {
        let tmp = match &base {
            Some(dir) => tempfile::tempdir_in(dir),
            None => tempfile::tempdir(),
        }
        .expect("temp dir");
        let (mut journal, _) = Journal::open(tmp.path()).expect("open");
        let started = Instant::now();
        let mut next = 0;
        while next < entries {
            let end = (next + group).min(entries);
            let news: Vec<NewEntry> = (next..end).map(entry).collect();
            if group == 1 {
                journal
                    .append(news.into_iter().next().expect("one"))
                    .expect("append");
            } else {
                let batch = journal.prepare(news);
                batch.write().expect("group write");
                journal.commit(batch);
            }
            next = end;
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(journal.pending_count(), entries);
        let how = if group == 1 {
            "one at a time"
        } else {
            "grouped"
        };
        println!(
            "  group {group:>4} ({how:>13}): {:>8.0} entries/s, {:>7.1} ms per commit",
            entries as f64 / elapsed,
            elapsed * 1000.0 / entries.div_ceil(group) as f64
        );
    }
}
