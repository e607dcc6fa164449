//! The writer's order, on paused time against an in-memory stream: every line is read with
//! the (virtual) millisecond it reached the wire. The flood bucket has the daemon's defaults
//! (10 back to back, then 2 a second, so the 11th normal line waits 500 ms).

use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream, Lines};
use tokio::task::JoinHandle;

use super::*;

const DEFAULT_FLOOD: FloodSettings = FloodSettings {
    burst: 10,
    per_second: 2.0,
};

/// The writer on one end of a duplex stream, the test reading the other.
struct Wire {
    outbox: Shared,
    lines: Lines<BufReader<DuplexStream>>,
    start: Instant,
    writer: JoinHandle<String>,
}

impl Wire {
    fn start() -> Wire {
        let (client, server) = tokio::io::duplex(1 << 20);
        let start = Instant::now();
        let outbox = Shared::new(Outbox::new(DEFAULT_FLOOD, start));
        let writer = tokio::spawn(write_lines(client, outbox.clone()));
        Wire {
            outbox,
            lines: BufReader::new(server).lines(),
            start,
            writer,
        }
    }

    /// The next line on the wire and when it arrived, in ms since the start.
    async fn next(&mut self) -> (u128, String) {
        let line = self.lines.next_line().await.expect("read").expect("a line");
        (self.start.elapsed().as_millis(), line)
    }

    /// The next `n` lines.
    async fn take(&mut self, n: usize) -> Vec<(u128, String)> {
        let mut lines = Vec::with_capacity(n);
        for _ in 0..n {
            lines.push(self.next().await);
        }
        lines
    }

    /// Closes the outbox; the lines that still came out, and why the writer ended.
    async fn close(mut self) -> (Vec<(u128, String)>, String) {
        self.outbox.close();
        let mut rest = Vec::new();
        while let Some(line) = self.lines.next_line().await.expect("read") {
            rest.push((self.start.elapsed().as_millis(), line));
        }
        (rest, self.writer.await.expect("writer"))
    }
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix} {i}")).collect()
}

fn at(ms: u128, lines: &[String]) -> Vec<(u128, String)> {
    lines.iter().map(|line| (ms, line.clone())).collect()
}

#[tokio::test(start_paused = true)]
async fn presence_never_spends_the_normal_budget() {
    let mut wire = Wire::start();
    for i in 0..10 {
        wire.outbox.presence(format!("PRESENCE {i}"));
        if i < 4 {
            assert_eq!(
                wire.next().await,
                (0, format!("PRESENCE {i}")),
                "its own burst"
            );
        }
    }
    let replies = numbered("PRIVMSG #c :reply", 0..11);
    assert!(wire.outbox.normal(replies.clone()));
    assert_eq!(
        wire.take(10).await,
        at(0, &replies[..10]),
        "the whole burst is the replies'"
    );
    assert_eq!(
        wire.take(2).await,
        [(500, replies[10].clone()), (1000, "PRESENCE 9".to_owned())],
        "the 11th reply waits for a token; the latest presence for its own"
    );
    let (rest, ended) = wire.close().await;
    assert_eq!(rest, [], "presence 4..8 were replaced, never sent");
    assert_eq!(ended, "writer closed");
}

#[tokio::test(start_paused = true)]
async fn presence_queued_behind_a_waiting_reply_is_coalesced_to_the_latest() {
    let mut wire = Wire::start();
    let replies = numbered("PRIVMSG #c :reply", 0..11);
    assert!(wire.outbox.normal(replies.clone()));
    assert_eq!(wire.take(10).await, at(0, &replies[..10]));
    for state in ["thinking", "working", "thinking", "working", "idle"] {
        wire.outbox.presence(format!("PRESENCE {state}"));
    }
    assert_eq!(
        wire.take(2).await,
        [
            (500, replies[10].clone()),
            (500, "PRESENCE idle".to_owned())
        ]
    );
    let (rest, _) = wire.close().await;
    assert_eq!(rest, []);
}

#[tokio::test(start_paused = true)]
async fn a_reply_queued_while_presence_is_pending_goes_first() {
    let mut wire = Wire::start();
    for i in 0..4 {
        wire.outbox.presence(format!("PRESENCE {i}"));
        assert_eq!(wire.next().await, (0, format!("PRESENCE {i}")));
    }
    wire.outbox.presence("PRESENCE 4".to_owned());
    assert!(wire.outbox.normal(vec!["PRIVMSG #c :reply".to_owned()]));
    assert_eq!(
        wire.take(2).await,
        [
            (0, "PRIVMSG #c :reply".to_owned()),
            (1000, "PRESENCE 4".to_owned())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn low_lines_never_go_ahead_of_normal_lines_nor_spend_their_tokens() {
    let mut wire = Wire::start();
    let notices = numbered("NOTICE n :refused", 0..3);
    assert!(wire.outbox.low(notices.clone()));
    let replies = numbered("PRIVMSG #c :reply", 0..12);
    assert!(wire.outbox.normal(replies.clone()));
    let mut expected = at(0, &replies[..10]);
    expected.extend([(500, replies[10].clone()), (1000, replies[11].clone())]);
    expected.extend(at(1000, &notices));
    assert_eq!(wire.take(15).await, expected);
    let more = numbered("PRIVMSG #c :more", 0..2);
    assert!(wire.outbox.normal(more.clone()));
    assert_eq!(
        wire.take(2).await,
        [(1500, more[0].clone()), (2000, more[1].clone())],
        "the notices took none of the 2 tokens/s"
    );
}

#[tokio::test(start_paused = true)]
async fn low_lines_have_a_bucket_and_queue_of_their_own() {
    let mut wire = Wire::start();
    let notices = numbered("NOTICE n :refused", 0..LOW_QUEUE);
    assert!(wire.outbox.low(notices.clone()));
    assert!(
        !wire.outbox.low(vec!["NOTICE n :one too many".to_owned()]),
        "a full low queue refuses"
    );
    // The flood settings' pace (burst 10, 2/s) in a bucket of their own.
    assert_eq!(wire.take(10).await, at(0, &notices[..10]));
    assert_eq!(
        wire.next().await,
        (500, notices[10].clone()),
        "then the flood rate"
    );
}

#[tokio::test(start_paused = true)]
async fn urgent_lines_pass_a_waiting_reply_and_spend_no_token() {
    let mut wire = Wire::start();
    let replies = numbered("PRIVMSG #c :reply", 0..11);
    assert!(wire.outbox.normal(replies.clone()));
    assert_eq!(wire.take(10).await, at(0, &replies[..10]));
    wire.outbox.urgent("PONG :a".to_owned());
    wire.outbox.urgent("PONG :b".to_owned());
    assert_eq!(
        wire.take(3).await,
        [
            (0, "PONG :a".to_owned()),
            (0, "PONG :b".to_owned()),
            (500, replies[10].clone())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn after_close_only_urgent_lines_go_out() {
    let mut wire = Wire::start();
    let replies = numbered("PRIVMSG #c :reply", 0..12);
    assert!(wire.outbox.normal(replies.clone()));
    assert_eq!(wire.take(10).await, at(0, &replies[..10]));
    wire.outbox.presence("PRESENCE offline".to_owned());
    wire.outbox.urgent("QUIT :bye".to_owned());
    let (rest, ended) = wire.close().await;
    assert_eq!(rest, [(0, "QUIT :bye".to_owned())]);
    assert_eq!(ended, "writer closed");
}

#[test]
fn the_normal_queue_is_bounded_all_or_nothing() {
    let mut outbox = Outbox::new(DEFAULT_FLOOD, Instant::now());
    assert!(outbox.push_normal(numbered("l", 0..NORMAL_QUEUE - 1)));
    assert!(!outbox.push_normal(numbered("m", 0..2)), "two do not fit");
    assert!(outbox.push_normal(numbered("m", 0..1)), "one does");
    outbox.push_accepted(numbered("rejoin", 0..2));
    assert_eq!(
        outbox.normal.len(),
        NORMAL_QUEUE + 2,
        "accepted lines are never refused"
    );
    outbox.closed = true;
    assert!(!outbox.push_normal(Vec::new()), "closed");
}
