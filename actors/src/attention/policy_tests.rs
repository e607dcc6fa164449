//! Culture's attention vectors (codexd-spec.md §8.3) and the wake-up schedule.

use super::*;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn tracker() -> Tracker {
    Tracker::new(Policy::default())
}

fn band(tracker: &mut Tracker, target: &str, now: u64) -> Band {
    tracker.due_targets(s(now));
    tracker.get(target).expect("tracked").band
}

#[test]
fn a_mention_decays_band_by_band() {
    // (direct at 0, then due_targets at t) → band
    let cases = [
        (0, Band::Hot),
        (119, Band::Hot),
        (120, Band::Hot),
        (121, Band::Warm),
        // Culture's vectors: COOL at 121 + 301, IDLE at 121 + 301 + 601; each hold counts
        // from the previous promotion (120, then 420), not from the call.
        (420, Band::Warm),
        (421, Band::Cool),
        (121 + 301, Band::Cool),
        (1020, Band::Cool),
        (1021, Band::Idle),
        (121 + 301 + 601, Band::Idle),
        (100_000, Band::Idle),
    ];
    for (at, expected) in cases {
        let mut t = tracker();
        t.on_direct("#c", s(0));
        assert_eq!(band(&mut t, "#c", at), expected, "at {at}");
        assert_eq!(t.band_at("#c", s(at)), Some(expected), "band_at {at}");
    }
}

#[test]
fn a_long_silence_walks_several_bands_in_one_call() {
    let mut t = tracker();
    t.on_direct("#c", s(0));
    let (_, changes) = t.due_targets(s(421));
    let steps: Vec<(Band, Band, Cause)> = changes.iter().map(|c| (c.from, c.to, c.cause)).collect();
    assert_eq!(
        steps,
        [
            (Band::Hot, Band::Warm, Cause::Decay),
            (Band::Warm, Band::Cool, Cause::Decay)
        ]
    );
    assert_eq!(t.get("#c").expect("tracked").band, Band::Cool);
}

#[test]
fn a_second_mention_extends_the_hold() {
    let mut t = tracker();
    t.on_direct("#c", s(0));
    assert_eq!(
        t.on_direct("#c", s(119)),
        None,
        "already HOT: no transition"
    );
    assert_eq!(band(&mut t, "#c", 179), Band::Hot);
    assert_eq!(
        band(&mut t, "#c", 239),
        Band::Hot,
        "held 120 s from the second"
    );
    assert_eq!(band(&mut t, "#c", 240), Band::Warm);
}

#[test]
fn ambient_warms_one_step_but_never_to_hot() {
    // (band before, band after one ambient stimulus)
    let cases = [
        (Band::Idle, Band::Cool),
        (Band::Cool, Band::Warm),
        (Band::Warm, Band::Warm),
        (Band::Hot, Band::Hot),
    ];
    for (before, after) in cases {
        let mut t = tracker();
        t.seed("#c");
        // Walk the target to `before`: IDLE, or ambient/direct stimuli.
        match before {
            Band::Idle => {}
            Band::Cool => {
                t.on_ambient("#c", s(0));
            }
            Band::Warm => {
                t.on_ambient("#c", s(0));
                t.on_ambient("#c", s(0));
            }
            Band::Hot => {
                t.on_direct("#c", s(0));
            }
        }
        assert_eq!(t.get("#c").expect("tracked").band, before);
        let change = t.on_ambient("#c", s(1));
        assert_eq!(t.get("#c").expect("tracked").band, after, "from {before:?}");
        let expected = (before != after).then(|| Transition {
            target: "#c".into(),
            from: before,
            to: after,
            cause: Cause::Ambient,
        });
        assert_eq!(change, expected);
    }
}

#[test]
fn due_after_the_bands_interval() {
    // (mention at 0; polled at 0; asked at t) → due, band
    let cases = [
        (10, false, Band::Hot),
        (29, false, Band::Hot),
        (30, true, Band::Hot),
        (121, true, Band::Warm),
    ];
    for (at, due, expected) in cases {
        let mut t = tracker();
        t.on_direct("#c", s(0));
        t.mark_polled("#c", s(0));
        let (list, _) = t.due_targets(s(at));
        assert_eq!(list.contains(&"#c".to_owned()), due, "at {at}");
        assert_eq!(t.get("#c").expect("tracked").band, expected);
    }
}

#[test]
fn never_polled_is_due_at_once_and_seed_keeps_state() {
    let mut t = tracker();
    t.on_direct("#c", s(0));
    assert_eq!(t.due_targets(s(0)).0, ["#c"]);
    t.seed("#c");
    assert_eq!(
        t.get("#c").expect("tracked").band,
        Band::Hot,
        "seed never resets"
    );
    t.seed("#new");
    assert_eq!(t.get("#new").expect("tracked").band, Band::Idle);
}

#[test]
fn a_clock_that_went_backwards_is_survived() {
    let mut t = tracker();
    t.on_direct("#c", s(1000));
    t.mark_polled("#c", s(1000));
    let (due, changes) = t.due_targets(s(500));
    assert!(due.is_empty());
    assert!(changes.is_empty());
    assert_eq!(t.get("#c").expect("tracked").band, Band::Hot);
}

#[test]
fn targets_are_listed_in_first_seen_order() {
    let mut t = tracker();
    t.seed("#b");
    t.seed("#a");
    t.on_direct("spark-codex", s(0));
    let (due, _) = t.due_targets(s(0));
    assert_eq!(due, ["#b", "#a", "spark-codex"]);
}

#[test]
fn next_due_follows_the_band_it_will_have_decayed_to() {
    // (mention at m, polled at p, asked at now) → next due
    let cases = [
        // HOT: 30 s after the poll.
        (0, 0, 0, 30),
        (0, 0, 29, 30),
        (0, 0, 31, 31),
        // Polled at 100 while HOT; at 130 the band is still HOT (hold 120 until 120 → WARM
        // at 121): WARM's interval of 120 s applies → 220.
        (0, 100, 100, 220),
        // Polled at 0, asked at 500: by then COOL (interval 300) → due at 300 ≤ 500 → now.
        (0, 0, 500, 500),
        // IDLE channel polled at 0: 600 s.
        (u64::MAX, 0, 0, 600),
    ];
    for (mention, polled, now, expected) in cases {
        let mut t = tracker();
        t.seed("#c");
        if mention != u64::MAX {
            t.on_direct("#c", s(mention));
        }
        t.mark_polled("#c", s(polled));
        assert_eq!(
            t.next_due("#c", s(now)),
            Some(s(expected)),
            "mention {mention}, polled {polled}, now {now}"
        );
        // It agrees with due_targets: due at `expected`, not a second before.
        let mut probe = t.clone();
        assert!(probe.due_targets(s(expected)).0.contains(&"#c".to_owned()));
        if expected > now {
            let mut probe = t.clone();
            assert!(
                !probe
                    .due_targets(s(expected - 1))
                    .0
                    .contains(&"#c".to_owned())
            );
        }
    }
    assert_eq!(tracker().next_due("#unknown", s(0)), None);
}

#[test]
fn custom_bands_apply() {
    let spec = |interval, hold| BandSpec {
        interval: s(interval),
        hold,
    };
    let mut t = Tracker::new(Policy {
        bands: [
            spec(5, Some(s(10))),
            spec(10, Some(s(10))),
            spec(20, Some(s(10))),
            spec(40, None),
        ],
    });
    t.on_direct("#c", s(0));
    t.mark_polled("#c", s(0));
    assert_eq!(t.next_due("#c", s(0)), Some(s(5)));
    assert_eq!(band(&mut t, "#c", 31), Band::Idle);
}
