//! Culture's attention bands as pure code (codexd-spec.md §8): per target, a band that a
//! mention makes HOT, ambient traffic in an engaged thread warms, and silence cools; and
//! when each target is due for a poll. No clock and no I/O: every operation takes `now`,
//! the time since the tracker's start.
//!
//! | band | default interval | default hold | a mention | ambient (engaged) |
//! |------|------------------|--------------|-----------|-------------------|
//! | HOT  | 30 s             | 120 s        | → HOT     | stays HOT         |
//! | WARM | 120 s            | 300 s        | → HOT     | stays WARM        |
//! | COOL | 300 s            | 600 s        | → HOT     | → WARM            |
//! | IDLE | 600 s            | (terminal)   | → HOT     | → COOL            |
//!
//! A band decays one step colder each time its hold elapses after the last promotion
//! (`last_promote_at += hold`, so a long silence walks several bands at once). A target is
//! due when it was never polled or when its band's interval has elapsed since its last poll.

use std::time::Duration;

use serde::Serialize;

/// One of the four bands, hottest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Band {
    /// Just mentioned.
    Hot,
    /// Recently engaged.
    Warm,
    /// Cooling down.
    Cool,
    /// Nothing for a while.
    Idle,
}

impl Band {
    /// Culture's upper-case name (`HOT`, …) used in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Band::Hot => "HOT",
            Band::Warm => "WARM",
            Band::Cool => "COOL",
            Band::Idle => "IDLE",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn colder(self) -> Band {
        match self {
            Band::Hot => Band::Warm,
            Band::Warm => Band::Cool,
            Band::Cool | Band::Idle => Band::Idle,
        }
    }

    /// One step warmer, but ambient traffic never reaches HOT: IDLE → COOL, COOL → WARM,
    /// WARM → WARM, HOT → HOT.
    fn ambient(self) -> Band {
        match self {
            Band::Hot => Band::Hot,
            Band::Warm | Band::Cool => Band::Warm,
            Band::Idle => Band::Cool,
        }
    }
}

/// One band's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandSpec {
    /// How often a target in this band is polled.
    pub interval: Duration,
    /// How long the band holds after a promotion; `None` for IDLE.
    pub hold: Option<Duration>,
}

/// The bands' timing, hottest first (validated by the config: monotonic intervals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// HOT, WARM, COOL, IDLE.
    pub bands: [BandSpec; 4],
}

impl Default for Policy {
    /// Culture's defaults: HOT 30/120, WARM 120/300, COOL 300/600, IDLE 600.
    fn default() -> Self {
        let spec = |interval, hold: Option<u64>| BandSpec {
            interval: Duration::from_secs(interval),
            hold: hold.map(Duration::from_secs),
        };
        Policy {
            bands: [
                spec(30, Some(120)),
                spec(120, Some(300)),
                spec(300, Some(600)),
                spec(600, None),
            ],
        }
    }
}

impl Policy {
    fn spec(&self, band: Band) -> BandSpec {
        self.bands[band.index()]
    }
}

/// Why a band changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A mention or DM.
    Direct,
    /// Other traffic in a thread the agent takes part in.
    Ambient,
    /// A hold elapsed.
    Decay,
}

impl Cause {
    /// Culture's name.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Direct => "direct",
            Cause::Ambient => "ambient",
            Cause::Decay => "decay",
        }
    }
}

/// A band change of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The channel (or the agent's nick for DMs).
    pub target: String,
    /// Before.
    pub from: Band,
    /// After.
    pub to: Band,
    /// Why.
    pub cause: Cause,
}

/// One target's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetState {
    /// Its band (as of the last decay).
    pub band: Band,
    /// When it was last promoted (advanced by a hold on each decay).
    pub last_promote_at: Duration,
    /// When it was last stimulated.
    pub last_stimulus_at: Duration,
    /// When it was last polled; `None`: never.
    pub last_poll_at: Option<Duration>,
}

impl TargetState {
    fn idle() -> Self {
        TargetState {
            band: Band::Idle,
            last_promote_at: Duration::ZERO,
            last_stimulus_at: Duration::ZERO,
            last_poll_at: None,
        }
    }

    /// The band after every hold that elapsed by `now`, and the promotion time that goes
    /// with it. A clock that went backwards decays nothing.
    fn decayed(&self, policy: &Policy, now: Duration) -> (Band, Duration, u32) {
        let (mut band, mut promoted, mut steps) = (self.band, self.last_promote_at, 0);
        while let Some(hold) = policy.spec(band).hold {
            match now.checked_sub(promoted) {
                Some(elapsed) if elapsed > hold => {
                    band = band.colder();
                    promoted += hold;
                    steps += 1;
                }
                _ => break,
            }
        }
        (band, promoted, steps)
    }

    /// Whether a poll is due at `now` in band `band`.
    fn due_in(&self, policy: &Policy, band: Band, now: Duration) -> bool {
        match self.last_poll_at {
            None => true,
            Some(polled) => now
                .checked_sub(polled)
                .is_some_and(|elapsed| elapsed >= policy.spec(band).interval),
        }
    }
}

/// Every target's attention, in the order targets were first seen.
#[derive(Debug, Clone)]
pub struct Tracker {
    policy: Policy,
    targets: Vec<(String, TargetState)>,
}

impl Tracker {
    /// No targets yet.
    pub fn new(policy: Policy) -> Self {
        Tracker {
            policy,
            targets: Vec::new(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn entry(&mut self, target: &str) -> &mut TargetState {
        let at = match self.targets.iter().position(|(t, _)| t == target) {
            Some(at) => at,
            None => {
                self.targets.push((target.to_owned(), TargetState::idle()));
                self.targets.len() - 1
            }
        };
        &mut self.targets[at].1
    }

    /// One target's state, if tracked.
    pub fn get(&self, target: &str) -> Option<&TargetState> {
        self.targets
            .iter()
            .find(|(t, _)| t == target)
            .map(|(_, s)| s)
    }

    /// Tracks `target` as IDLE if it is new; never resets a known target.
    pub fn seed(&mut self, target: &str) {
        self.entry(target);
    }

    /// A mention or DM: HOT, and its hold starts again.
    pub fn on_direct(&mut self, target: &str, now: Duration) -> Option<Transition> {
        self.promote(target, now, |_| Band::Hot, Cause::Direct)
    }

    /// Traffic in a thread the agent takes part in: one band warmer, at most WARM.
    pub fn on_ambient(&mut self, target: &str, now: Duration) -> Option<Transition> {
        self.promote(target, now, Band::ambient, Cause::Ambient)
    }

    fn promote(
        &mut self,
        target: &str,
        now: Duration,
        to: impl Fn(Band) -> Band,
        cause: Cause,
    ) -> Option<Transition> {
        let state = self.entry(target);
        let from = state.band;
        state.band = to(from);
        state.last_promote_at = now;
        state.last_stimulus_at = now;
        (state.band != from).then(|| Transition {
            target: target.to_owned(),
            from,
            to: state.band,
            cause,
        })
    }

    /// Records a poll of `target` at `now` (tracking it if new).
    pub fn mark_polled(&mut self, target: &str, now: Duration) {
        self.entry(target).last_poll_at = Some(now);
    }

    /// Applies decay to every target and lists those due for a poll, in tracking order,
    /// with the band changes the decay made.
    pub fn due_targets(&mut self, now: Duration) -> (Vec<String>, Vec<Transition>) {
        let policy = self.policy;
        let mut due = Vec::new();
        let mut changes = Vec::new();
        for (target, state) in &mut self.targets {
            let (band, promoted, _) = state.decayed(&policy, now);
            let mut from = state.band;
            while from != band {
                let to = from.colder();
                changes.push(Transition {
                    target: target.clone(),
                    from,
                    to,
                    cause: Cause::Decay,
                });
                from = to;
            }
            state.band = band;
            state.last_promote_at = promoted;
            if state.due_in(&policy, band, now) {
                due.push(target.clone());
            }
        }
        (due, changes)
    }

    /// The band `target` has at `now`, decay included, without changing anything.
    pub fn band_at(&self, target: &str, now: Duration) -> Option<Band> {
        self.get(target)
            .map(|state| state.decayed(&self.policy, now).0)
    }

    /// The earliest time, not before `now`, at which `target` is due: its last poll plus
    /// the interval of the band it will have decayed to by then (decay only lengthens the
    /// interval, so this is the least fixed point of `t = poll + interval(band_at(t))`).
    pub fn next_due(&self, target: &str, now: Duration) -> Option<Duration> {
        let state = self.get(target)?;
        let Some(polled) = state.last_poll_at else {
            return Some(now);
        };
        let mut at = now;
        loop {
            let (band, _, _) = state.decayed(&self.policy, at);
            let due = (polled + self.policy.spec(band).interval).max(now);
            if due <= at {
                return Some(at);
            }
            at = due;
        }
    }

    /// Every target with its band at `now` (decay included) and its state.
    pub fn snapshot(&self, now: Duration) -> Vec<(String, Band, TargetState)> {
        self.targets
            .iter()
            .map(|(target, state)| (target.clone(), state.decayed(&self.policy, now).0, *state))
            .collect()
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
