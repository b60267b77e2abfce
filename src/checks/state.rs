//! The state machine of one check instance, free of clocks and I/O: the
//! caller passes the value (or its absence) and the current time.
//!
//! Rules, for direction `above` (`below` mirrors every comparison):
//! - a level's condition is `value > level` (strictly, like the `>` of the
//!   generated Prometheus rule);
//! - hysteresis: once the instance is at a level or higher, that level's
//!   condition becomes `value > level - band`, so it is left only once the
//!   value is back past the level by the band (a percent band is a percentage
//!   of the level);
//! - `for`: a level is entered only once its condition has held without a
//!   break for that long;
//! - `clear_for` (default: the check's `for`): a level is left (to a lower
//!   level or ok) only once its condition has stopped holding, without a
//!   break, for that long, so one low sample of a jumpy figure does not
//!   clear a warning (Prometheus' `keep_firing_for`, which `vitals rules`
//!   writes too);
//! - no value (no data, or the source failed) is `unknown` at once, and the
//!   `for` timers start again when data returns.

use crate::config::{Band, Direction};
use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};

/// The state of a check instance. The discriminant is the exported
/// `vitals_check_status` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl State {
    pub const ALL: [State; 4] = [State::Ok, State::Warning, State::Critical, State::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warning => "warning",
            State::Critical => "critical",
            State::Unknown => "unknown",
        }
    }

    /// The value of `vitals_check_status`.
    pub fn code(self) -> f64 {
        f64::from(self as u8)
    }

    /// Severity rank for hysteresis: unknown holds no level.
    fn rank(self) -> u8 {
        match self {
            State::Ok | State::Unknown => 0,
            State::Warning => 1,
            State::Critical => 2,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The levels of a check, as the state machine needs them.
#[derive(Clone, Debug, PartialEq)]
pub struct Levels {
    pub direction: Direction,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub hysteresis: Option<Band>,
    pub for_: Duration,
    /// How long a lower state must hold before a level is left.
    pub clear_for: Duration,
}

impl Levels {
    /// The band around `level`: a percent band is a percentage of the level's
    /// magnitude, so it is never negative.
    pub fn band(&self, level: f64) -> f64 {
        match self.hysteresis {
            None => 0.0,
            Some(Band::Absolute(b)) => b.abs(),
            Some(Band::Percent(p)) => level.abs() * p.abs() / 100.0,
        }
    }

    /// Whether `value` is beyond `level`, the level being held (`held`) or not.
    fn beyond(&self, value: f64, level: f64, held: bool) -> bool {
        let band = if held { self.band(level) } else { 0.0 };
        match self.direction {
            Direction::Above => value > level - band,
            Direction::Below => value < level + band,
        }
    }
}

/// A change of state, as returned by [`Machine::observe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub from: State,
    pub to: State,
}

/// One instance's state.
#[derive(Clone, Debug)]
pub struct Machine {
    state: State,
    since: Instant,
    value: Option<f64>,
    /// When the warning / critical condition started holding without a break.
    warning_since: Option<Instant>,
    critical_since: Option<Instant>,
    /// When the values started asking for a lower state than the current
    /// level, without a break (for `clear_for`).
    clear_since: Option<Instant>,
    /// Never observed yet: the first ok is not reported as a change.
    fresh: bool,
}

impl Machine {
    /// A new instance: unknown until its first observation.
    pub fn new(now: Instant) -> Self {
        Machine {
            state: State::Unknown,
            since: now,
            value: None,
            warning_since: None,
            critical_since: None,
            clear_since: None,
            fresh: true,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// When the current state was entered.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// The last value observed; `None` while unknown.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// Feeds one evaluation. `None` means no data (or a failed source).
    /// Returns the change, if the state changed. A new instance's first
    /// state is reported as a change from unknown unless it is ok, so a
    /// restart does not log "unknown -> ok" for every instance.
    pub fn observe(&mut self, levels: &Levels, value: Option<f64>, now: Instant) -> Option<Change> {
        let value = value.filter(|v| v.is_finite());
        self.value = value;
        let next = match value {
            None => {
                self.warning_since = None;
                self.critical_since = None;
                self.clear_since = None;
                State::Unknown
            }
            Some(v) => self.next_state(levels, v, now),
        };
        let fresh = std::mem::replace(&mut self.fresh, false);
        if next == self.state {
            return None;
        }
        let change = Change {
            from: self.state,
            to: next,
        };
        self.state = next;
        self.since = now;
        if fresh && next == State::Ok {
            return None;
        }
        Some(change)
    }

    fn next_state(&mut self, levels: &Levels, v: f64, now: Instant) -> State {
        let rank = self.state.rank();
        let mut next = State::Ok;
        for (state, level, since) in [
            (State::Warning, levels.warning, &mut self.warning_since),
            (State::Critical, levels.critical, &mut self.critical_since),
        ] {
            let held = rank >= state.rank();
            let holds = level.is_some_and(|l| levels.beyond(v, l, held));
            if !holds {
                *since = None;
                continue;
            }
            let started = *since.get_or_insert(now);
            let waited = now.saturating_duration_since(started) >= levels.for_;
            if held || waited {
                next = state;
            }
        }
        if next.rank() < rank {
            let started = *self.clear_since.get_or_insert(now);
            if now.saturating_duration_since(started) < levels.clear_for {
                return self.state;
            }
        }
        self.clear_since = None;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::{Critical as C, Ok as O, Unknown as U, Warning as W};

    fn levels(
        direction: Direction,
        warning: Option<f64>,
        critical: Option<f64>,
        hysteresis: Option<Band>,
        for_secs: u64,
    ) -> Levels {
        Levels {
            direction,
            warning,
            critical,
            hysteresis,
            for_: Duration::from_secs(for_secs),
            clear_for: Duration::ZERO,
        }
    }

    /// Runs (second, value, expected state) steps, returning the changes.
    fn run(levels: &Levels, steps: &[(u64, Option<f64>, State)]) -> Vec<(u64, State, State)> {
        let t0 = Instant::now();
        let mut m = Machine::new(t0);
        let mut changes = Vec::new();
        for (i, (sec, value, want)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_secs(*sec);
            if let Some(c) = m.observe(levels, *value, now) {
                changes.push((*sec, c.from, c.to));
            }
            assert_eq!(
                m.state(),
                *want,
                "step {i} (t={sec}s value={value:?}) with {levels:?}"
            );
            assert_eq!(m.value(), value.filter(|v| v.is_finite()));
        }
        changes
    }

    #[test]
    fn rising_through_warning_to_critical() {
        let l = levels(Direction::Above, Some(1.0), Some(5.0), None, 0);
        let changes = run(
            &l,
            &[
                (0, Some(0.2), O),
                (5, Some(1.0), O), // strictly above, like `> 1`
                (10, Some(1.3), W),
                (15, Some(4.9), W),
                (20, Some(6.2), C),
                (25, Some(100.0), C),
            ],
        );
        assert_eq!(changes, vec![(10, O, W), (20, W, C)]);
    }

    #[test]
    fn straight_to_critical_skips_warning() {
        let l = levels(Direction::Above, Some(1.0), Some(5.0), None, 0);
        let changes = run(&l, &[(0, Some(0.0), O), (5, Some(9.0), C)]);
        assert_eq!(changes, vec![(5, O, C)]);
    }

    #[test]
    fn falling_without_hysteresis_leaves_at_the_level() {
        let l = levels(Direction::Above, Some(1.0), Some(5.0), None, 0);
        let changes = run(
            &l,
            &[
                (0, Some(6.0), C),
                (5, Some(5.0), W),
                (10, Some(1.01), W),
                (15, Some(1.0), O),
            ],
        );
        assert_eq!(changes, vec![(0, U, C), (5, C, W), (15, W, O)]);
    }

    #[test]
    fn falling_with_percent_hysteresis_leaves_past_the_band() {
        // 10% of 5 is 0.5, of 1 is 0.1.
        let l = levels(
            Direction::Above,
            Some(1.0),
            Some(5.0),
            Some(Band::Percent(10.0)),
            0,
        );
        let changes = run(
            &l,
            &[
                (0, Some(6.0), C),
                (5, Some(4.8), C),
                (10, Some(4.51), C),
                (15, Some(4.5), W),
                (20, Some(0.95), W),
                (25, Some(0.9), O),
                // Entering still needs the plain level, not level - band.
                (30, Some(0.95), O),
                (35, Some(1.05), W),
            ],
        );
        assert_eq!(changes, vec![(0, U, C), (15, C, W), (25, W, O), (35, O, W)]);
    }

    #[test]
    fn falling_with_absolute_hysteresis() {
        let l = levels(
            Direction::Above,
            Some(0.8),
            Some(0.95),
            Some(Band::Absolute(0.05)),
            0,
        );
        let changes = run(
            &l,
            &[
                (0, Some(0.97), C),
                (5, Some(0.91), C),
                (10, Some(0.89), W),
                (15, Some(0.76), W),
                (20, Some(0.74), O),
            ],
        );
        assert_eq!(changes, vec![(0, U, C), (10, C, W), (20, W, O)]);
    }

    #[test]
    fn oscillating_around_a_level() {
        let wave: Vec<f64> = (0..12)
            .map(|i| if i % 2 == 0 { 5.2 } else { 4.8 })
            .collect();
        // Without a band every swing is a transition.
        let plain = levels(Direction::Above, None, Some(5.0), None, 0);
        let steps: Vec<(u64, Option<f64>, State)> = wave
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64 * 5, Some(*v), if *v > 5.0 { C } else { O }))
            .collect();
        assert_eq!(run(&plain, &steps).len(), 12);
        // A 10% band (0.5) holds critical through the swings: one transition.
        let banded = levels(
            Direction::Above,
            None,
            Some(5.0),
            Some(Band::Percent(10.0)),
            0,
        );
        let steps: Vec<(u64, Option<f64>, State)> = wave
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64 * 5, Some(*v), C))
            .collect();
        assert_eq!(run(&banded, &steps), vec![(0, U, C)]);
    }

    #[test]
    fn for_delays_entering_but_not_leaving() {
        let l = levels(Direction::Above, Some(1.0), Some(5.0), None, 30);
        let changes = run(
            &l,
            &[
                (0, Some(2.0), O),  // warning pending since 0
                (20, Some(2.0), O), // 20 s < 30 s
                (25, Some(0.5), O), // broken: timer resets
                (30, Some(2.0), O), // pending since 30
                (55, Some(6.0), O), // critical pending since 55
                (60, Some(6.0), W), // warning held 30 s
                (80, Some(6.0), W),
                (85, Some(6.0), C), // critical held 30 s
                (90, Some(0.0), O), // leaving is immediate
            ],
        );
        assert_eq!(changes, vec![(60, O, W), (85, W, C), (90, C, O)]);
    }

    #[test]
    fn clear_for_holds_a_level_through_short_dips() {
        // PgBouncer pool utilization in transaction pooling: one low sample
        // among high ones must not clear the warning (issue 28: warning ->
        // ok -> warning twice in 3 minutes).
        let mut l = levels(
            Direction::Above,
            Some(0.8),
            Some(0.95),
            Some(Band::Absolute(0.02)),
            0,
        );
        l.clear_for = Duration::from_secs(60);
        let changes = run(
            &l,
            &[
                (0, Some(0.9), W),
                (10, Some(0.1), W),  // a dip: clearing pending since 10
                (20, Some(0.85), W), // back: the clearing timer resets
                (30, Some(0.2), W),  // pending since 30
                (60, Some(0.97), C), // rising is not delayed by clear_for
                (70, Some(0.9), C),  // to warning pending since 70
                (120, Some(0.3), C), // still < 60 s since 70 (50 s)
                (130, Some(0.3), O), // 60 s below critical: leaves, to ok at once
                (140, Some(0.9), W),
            ],
        );
        assert_eq!(
            changes,
            vec![(0, U, W), (60, W, C), (130, C, O), (140, O, W)]
        );
        // No data is unknown at once, whatever clear_for.
        assert_eq!(
            run(&l, &[(0, Some(0.9), W), (5, None, U)]),
            vec![(0, U, W), (5, W, U)]
        );
    }

    #[test]
    fn for_counts_from_when_warning_started_even_past_critical() {
        // Value jumps straight past both levels: both timers start together,
        // so warning and critical are due at the same time -> critical.
        let l = levels(Direction::Above, Some(1.0), Some(5.0), None, 10);
        let changes = run(
            &l,
            &[(0, Some(9.0), O), (5, Some(9.0), O), (10, Some(9.0), C)],
        );
        assert_eq!(changes, vec![(10, O, C)]);
    }

    #[test]
    fn below_direction_mirrors_everything() {
        // Stream up: critical below 0.5. Free space: warning below 20, critical below 10.
        let l = levels(
            Direction::Below,
            Some(20.0),
            Some(10.0),
            Some(Band::Absolute(2.0)),
            0,
        );
        let changes = run(
            &l,
            &[
                (0, Some(50.0), O),
                (5, Some(20.0), O),
                (10, Some(19.0), W),
                (15, Some(9.0), C),
                (20, Some(11.0), C),
                (25, Some(12.0), W),
                (30, Some(21.0), W),
                (35, Some(22.0), O),
            ],
        );
        assert_eq!(
            changes,
            vec![(10, O, W), (15, W, C), (25, C, W), (35, W, O)]
        );
        let up = levels(Direction::Below, None, Some(0.5), None, 0);
        assert_eq!(
            run(
                &up,
                &[(0, Some(1.0), O), (5, Some(0.0), C), (10, Some(1.0), O)]
            ),
            vec![(5, O, C), (10, C, O)]
        );
    }

    #[test]
    fn a_missing_level_is_never_entered() {
        let only_critical = levels(Direction::Above, None, Some(5.0), None, 0);
        assert_eq!(
            run(
                &only_critical,
                &[(0, Some(3.0), O), (5, Some(6.0), C), (10, Some(3.0), O)]
            ),
            vec![(5, O, C), (10, C, O)]
        );
        let only_warning = levels(Direction::Above, Some(1.0), None, None, 0);
        assert_eq!(
            run(&only_warning, &[(0, Some(1e9), W), (5, Some(0.0), O)]),
            vec![(0, U, W), (5, W, O)]
        );
    }

    #[test]
    fn data_disappearing_is_unknown_and_restarts_for() {
        let l = levels(Direction::Above, Some(1.0), Some(5.0), None, 10);
        let changes = run(
            &l,
            &[
                (0, Some(6.0), O),
                (10, Some(6.0), C),
                (15, None, U),
                (20, Some(f64::NAN), U), // NaN is no data
                (25, Some(6.0), O),      // back, pending again
                (35, Some(6.0), C),
            ],
        );
        assert_eq!(
            changes,
            vec![(10, O, C), (15, C, U), (25, U, O), (35, O, C)]
        );
    }

    #[test]
    fn a_new_instance_is_quiet_when_ok_and_loud_otherwise() {
        let l = levels(Direction::Above, Some(1.0), Some(5.0), None, 0);
        assert_eq!(run(&l, &[(0, Some(0.1), O)]), vec![]);
        assert_eq!(run(&l, &[(0, Some(2.0), W)]), vec![(0, U, W)]);
        // A new instance with no data stays unknown without a change.
        assert_eq!(run(&l, &[(0, None, U), (5, Some(0.0), O)]), vec![(5, U, O)]);
    }

    #[test]
    fn since_is_the_time_of_the_last_change() {
        let l = levels(Direction::Above, Some(1.0), None, None, 0);
        let t0 = Instant::now();
        let mut m = Machine::new(t0);
        m.observe(&l, Some(0.0), t0 + Duration::from_secs(1));
        m.observe(&l, Some(2.0), t0 + Duration::from_secs(7));
        m.observe(&l, Some(3.0), t0 + Duration::from_secs(9));
        assert_eq!(m.since(), t0 + Duration::from_secs(7));
        assert_eq!(State::Critical.code(), 2.0);
        assert_eq!(State::Unknown.to_string(), "unknown");
    }
}
