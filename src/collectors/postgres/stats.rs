//! Rates over a round from PostgreSQL's cumulative counters, and top-N
//! lists whose membership stays put: pure functions and small state
//! machines, tested without a server.
//!
//! PostgreSQL's statistics views hold totals since their last reset. vitals
//! reads them every round and reports what happened *since the previous
//! round*; a counter that went down (a reset, `pg_stat_statements_reset()`,
//! an entry evicted and re-created, see `pg_stat_statements_info.dealloc`)
//! restarted from 0, so its delta is its current value — never negative.

use super::queries::{DatabaseCounters, StatementCounters};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;

/// How much of a key's score is left after one round: a statement that
/// stops running halves its weight in about three rounds.
pub const DECAY: f64 = 0.8;
/// An incumbent member keeps its place unless a newcomer's score beats
/// its own by this factor, so two statements of nearly equal weight do not
/// swap places every round.
pub const MARGIN: f64 = 1.25;
/// A score below this counts as 0 (an idle key).
const FORGET: f64 = 1e-9;

/// The increase of a cumulative counter; a counter that went down restarted
/// from 0 (reset or eviction), so the increase is its current value.
pub fn increase(previous: f64, current: f64) -> f64 {
    if current >= previous {
        current - previous
    } else {
        current.max(0.0)
    }
}

/// A top-N list with stable membership: keys are ranked by a score that
/// decays each round ([`DECAY`]) and grows by the round's weight, an
/// incumbent is displaced only by a newcomer scoring [`MARGIN`] times more,
/// so an idle member keeps its place until an active key needs it. At most
/// `n` members, whatever the input.
#[derive(Clone, Debug, Default)]
pub struct StableTop<K: Ord + Clone> {
    n: usize,
    scores: BTreeMap<K, f64>,
    members: BTreeSet<K>,
}

impl<K: Ord + Clone + Hash> StableTop<K> {
    pub fn new(n: usize) -> Self {
        StableTop {
            n,
            scores: BTreeMap::new(),
            members: BTreeSet::new(),
        }
    }

    /// Adds this round's weights (every key that still exists, with its
    /// weight in the round, 0 when idle) and returns the members. A key
    /// absent from `weights` no longer exists at the source and is dropped.
    pub fn update(&mut self, weights: &[(K, f64)]) -> &BTreeSet<K> {
        let mut scores = BTreeMap::new();
        for (key, w) in weights {
            let old = self.scores.get(key).copied().unwrap_or(0.0);
            let score = old * DECAY + w.max(0.0);
            // Idle keys stay candidates (with fewer keys than places, all
            // are members); they rank last.
            scores.insert(key.clone(), if score < FORGET { 0.0 } else { score });
        }
        self.scores = scores;
        // Rank with the incumbents' advantage; ties by key, so the order
        // never depends on the input's.
        let mut ranked: Vec<(&K, f64)> = self
            .scores
            .iter()
            .map(|(k, &s)| {
                let boost = if self.members.contains(k) {
                    MARGIN
                } else {
                    1.0
                };
                (k, s * boost)
            })
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        self.members = ranked
            .into_iter()
            .take(self.n)
            .map(|(k, _)| k.clone())
            .collect();
        &self.members
    }

    pub fn members(&self) -> &BTreeSet<K> {
        &self.members
    }

    /// The `k` best-scoring keys that are not members (idle ones left out):
    /// the likeliest next members.
    pub fn contenders(&self, k: usize) -> Vec<K> {
        let mut ranked: Vec<(&K, f64)> = self
            .scores
            .iter()
            .filter(|(key, &score)| score > 0.0 && !self.members.contains(key))
            .map(|(key, &score)| (key, score))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        ranked
            .into_iter()
            .take(k)
            .map(|(key, _)| key.clone())
            .collect()
    }

    pub fn is_member(&self, key: &K) -> bool {
        self.members.contains(key)
    }
}

/// What one statement (or the `other` rest) did over a round.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StatementDelta {
    pub calls: f64,
    pub exec_seconds: f64,
    pub rows: f64,
    pub blks_hit: f64,
    pub blks_read: f64,
    /// max_exec_time since the extension's last reset, in seconds (for
    /// `other`: the largest of the rest).
    pub max_seconds: f64,
}

impl StatementDelta {
    fn add(&mut self, d: &StatementDelta) {
        self.calls += d.calls;
        self.exec_seconds += d.exec_seconds;
        self.rows += d.rows;
        self.blks_hit += d.blks_hit;
        self.blks_read += d.blks_read;
        self.max_seconds = self.max_seconds.max(d.max_seconds);
    }

    /// Mean execution time over the round; None without a call.
    pub fn mean_seconds(&self) -> Option<f64> {
        (self.calls > 0.0).then(|| self.exec_seconds / self.calls)
    }
}

fn statement_delta(
    previous: Option<&StatementCounters>,
    current: &StatementCounters,
    max_ms: f64,
    restarted: bool,
) -> StatementDelta {
    let zero = StatementCounters::default();
    // A statement absent last round was created since: it counted from 0.
    let p = match previous {
        Some(p) if !restarted && current.calls >= p.calls => p,
        _ => &zero,
    };
    StatementDelta {
        calls: increase(p.calls, current.calls),
        exec_seconds: increase(p.exec_ms, current.exec_ms) / 1000.0,
        rows: increase(p.rows, current.rows),
        blks_hit: increase(p.blks_hit, current.blks_hit),
        blks_read: increase(p.blks_read, current.blks_read),
        max_seconds: max_ms.max(0.0) / 1000.0,
    }
}

/// One round of statements: the members (by queryid) and the rest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatementRound {
    /// Seconds between the two reads.
    pub seconds: f64,
    pub top: Vec<(i64, StatementDelta)>,
    pub other: StatementDelta,
    /// Members that joined this round (their text is not known yet).
    pub joined: Vec<i64>,
    /// Entries the extension evicted since the previous round
    /// (`pg_stat_statements_info.dealloc` increase; 0 when unknown).
    pub evicted: f64,
}

/// A read of pg_stat_statements: when (server clock), every queryid's
/// totals, stats_reset and dealloc.
type StatementRead = (
    f64,
    BTreeMap<i64, StatementCounters>,
    Option<f64>,
    Option<i64>,
);

/// The statements' totals between rounds and the stable top list.
#[derive(Clone, Debug)]
pub struct StatementTracker {
    previous: Option<StatementRead>,
    top: StableTop<i64>,
}

impl StatementTracker {
    pub fn new(n: usize) -> Self {
        StatementTracker {
            previous: None,
            top: StableTop::new(n),
        }
    }

    /// The statements likeliest to join the list next, best first.
    pub fn contenders(&self, k: usize) -> Vec<i64> {
        self.top.contenders(k)
    }

    /// Forgets the previous read (the next round only records).
    pub fn clear(&mut self) {
        self.previous = None;
    }

    /// Records a read taken at `now` (server clock, seconds); returns the
    /// round since the previous read, None on the first.
    pub fn observe(
        &mut self,
        now: f64,
        rows: &[(i64, StatementCounters, f64)],
        stats_reset: Option<f64>,
        dealloc: Option<i64>,
    ) -> Option<StatementRound> {
        let current: BTreeMap<i64, StatementCounters> =
            rows.iter().map(|(id, c, _)| (*id, *c)).collect();
        let previous = self.previous.replace((now, current, stats_reset, dealloc));
        let (then, before, reset_before, dealloc_before) = previous?;
        let seconds = now - then;
        if seconds <= 0.0 {
            return None;
        }
        // pg_stat_statements_reset() moves stats_reset: every entry
        // restarted from 0 (entries reset one by one keep it, and are seen
        // by their calls going down).
        let restarted = matches!((reset_before, stats_reset), (Some(a), Some(b)) if a != b);
        let deltas: Vec<(i64, StatementDelta)> = rows
            .iter()
            .map(|(id, c, max_ms)| (*id, statement_delta(before.get(id), c, *max_ms, restarted)))
            .collect();
        let weights: Vec<(i64, f64)> = deltas.iter().map(|(id, d)| (*id, d.exec_seconds)).collect();
        let old_members = self.top.members().clone();
        let members = self.top.update(&weights).clone();
        let mut round = StatementRound {
            seconds,
            evicted: match (dealloc_before, dealloc) {
                (Some(a), Some(b)) => increase(a as f64, b as f64),
                _ => 0.0,
            },
            ..StatementRound::default()
        };
        for (id, d) in deltas {
            if members.contains(&id) {
                round.top.push((id, d));
            } else {
                round.other.add(&d);
            }
        }
        round.joined = members.difference(&old_members).copied().collect();
        Some(round)
    }
}

/// What one database (or the `other` rest) did over a round.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DatabaseDelta {
    pub commits: f64,
    pub rollbacks: f64,
    pub blks_read: f64,
    pub blks_hit: f64,
}

impl DatabaseDelta {
    fn add(&mut self, d: &DatabaseDelta) {
        self.commits += d.commits;
        self.rollbacks += d.rollbacks;
        self.blks_read += d.blks_read;
        self.blks_hit += d.blks_hit;
    }

    /// rollbacks / (commits + rollbacks); None without a transaction.
    pub fn rollback_ratio(&self) -> Option<f64> {
        let n = self.commits + self.rollbacks;
        (n > 0.0).then(|| self.rollbacks / n)
    }

    /// blks_hit / (blks_hit + blks_read); None below `min_blocks` block
    /// accesses in the round, so an idle database does not report (and
    /// alert on) a ratio of three reads.
    pub fn cache_hit_ratio(&self, min_blocks: f64) -> Option<f64> {
        let n = self.blks_hit + self.blks_read;
        (n >= min_blocks && n > 0.0).then(|| self.blks_hit / n)
    }
}

/// One round of databases: members by name with their totals and the
/// round's increase, and the rest summed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DatabaseRound {
    pub seconds: f64,
    pub top: Vec<(String, DatabaseCounters, DatabaseDelta)>,
    pub other: DatabaseDelta,
    /// Counters of the rest, accumulated by the agent from the rest's
    /// increases: monotonic, whatever moves in or out of the top list.
    pub other_totals: DatabaseCounters,
    /// Whether any database is summed in `other`.
    pub has_other: bool,
}

fn database_delta(p: &DatabaseCounters, c: &DatabaseCounters) -> DatabaseDelta {
    DatabaseDelta {
        commits: increase(p.commits, c.commits),
        rollbacks: increase(p.rollbacks, c.rollbacks),
        blks_read: increase(p.blks_read, c.blks_read),
        blks_hit: increase(p.blks_hit, c.blks_hit),
    }
}

fn add_increase(total: &mut DatabaseCounters, p: &DatabaseCounters, c: &DatabaseCounters) {
    total.commits += increase(p.commits, c.commits);
    total.rollbacks += increase(p.rollbacks, c.rollbacks);
    total.blks_read += increase(p.blks_read, c.blks_read);
    total.blks_hit += increase(p.blks_hit, c.blks_hit);
    total.deadlocks += increase(p.deadlocks, c.deadlocks);
    total.temp_files += increase(p.temp_files, c.temp_files);
    total.temp_bytes += increase(p.temp_bytes, c.temp_bytes);
    total.conflicts += increase(p.conflicts, c.conflicts);
    total.checksum_failures += increase(p.checksum_failures, c.checksum_failures);
}

/// pg_stat_database between rounds, with a stable top list by activity
/// (transactions plus blocks read from outside shared buffers).
#[derive(Clone, Debug)]
pub struct DatabaseTracker {
    previous: Option<(f64, BTreeMap<String, DatabaseCounters>)>,
    top: StableTop<String>,
    other_totals: DatabaseCounters,
}

impl DatabaseTracker {
    pub fn new(n: usize) -> Self {
        DatabaseTracker {
            previous: None,
            top: StableTop::new(n),
            other_totals: DatabaseCounters::default(),
        }
    }

    pub fn clear(&mut self) {
        self.previous = None;
    }

    /// Records a read at `now`; the round since the previous one, None on
    /// the first.
    pub fn observe(
        &mut self,
        now: f64,
        databases: &[(String, DatabaseCounters)],
    ) -> Option<DatabaseRound> {
        let current: BTreeMap<String, DatabaseCounters> = databases.iter().cloned().collect();
        let (then, before) = self.previous.replace((now, current))?;
        let seconds = now - then;
        if seconds <= 0.0 {
            return None;
        }
        let zero = DatabaseCounters::default();
        let deltas: Vec<(&String, &DatabaseCounters, DatabaseDelta)> = databases
            .iter()
            .map(|(name, c)| {
                (
                    name,
                    c,
                    database_delta(before.get(name).unwrap_or(&zero), c),
                )
            })
            .collect();
        let weights: Vec<(String, f64)> = deltas
            .iter()
            .map(|(name, _, d)| ((*name).clone(), d.commits + d.rollbacks + d.blks_read))
            .collect();
        let members = self.top.update(&weights).clone();
        let mut round = DatabaseRound {
            seconds,
            ..DatabaseRound::default()
        };
        for (name, c, d) in deltas {
            if members.contains(name) {
                round.top.push((name.clone(), *c, d));
            } else {
                round.has_other = true;
                round.other.add(&d);
                add_increase(&mut self.other_totals, before.get(name).unwrap_or(&zero), c);
            }
        }
        round.other_totals = self.other_totals;
        Some(round)
    }
}

/// Dates an xmin PostgreSQL does not date (a replication slot's, a
/// standby's feedback): the first time the agent saw that value. The age
/// is a lower bound, exact to the catalog interval once the agent has run
/// longer than the holder.
#[derive(Clone, Debug, Default)]
pub struct XminClock {
    seen: Option<(String, f64)>,
}

impl XminClock {
    /// Age in seconds of `xmin` at `now`; None without an xmin.
    pub fn age(&mut self, xmin: Option<&str>, now: f64) -> Option<f64> {
        let Some(x) = xmin else {
            self.seen = None;
            return None;
        };
        match &self.seen {
            Some((v, since)) if v == x => Some((now - since).max(0.0)),
            _ => {
                self.seen = Some((x.to_owned(), now));
                Some(0.0)
            }
        }
    }
}

/// The `n` largest by `key`, and the largest of the rest (None when there
/// is no rest): wraparound ages by database.
pub fn top_and_max_rest<T: Clone>(
    items: &[T],
    n: usize,
    key: impl Fn(&T) -> f64,
) -> (Vec<T>, Option<f64>) {
    let mut sorted: Vec<T> = items.to_vec();
    sorted.sort_by(|a, b| key(b).total_cmp(&key(a)));
    let rest = sorted.split_off(n.min(sorted.len()));
    let max_rest = rest.iter().map(&key).reduce(f64::max);
    (sorted, max_rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(calls: f64, exec_ms: f64) -> StatementCounters {
        StatementCounters {
            calls,
            exec_ms,
            rows: calls,
            blks_hit: calls * 10.0,
            blks_read: calls,
        }
    }

    #[test]
    fn increase_never_goes_negative() {
        for (p, c, want) in [
            (10.0, 15.0, 5.0),
            (10.0, 10.0, 0.0),
            (10.0, 3.0, 3.0), // reset, then 3 more
            (10.0, 0.0, 0.0),
            (0.0, 7.0, 7.0),
        ] {
            assert_eq!(increase(p, c), want, "{p} -> {c}");
        }
    }

    #[test]
    fn statement_rounds_give_interval_means_not_lifetime_ones() {
        let mut t = StatementTracker::new(2);
        // Lifetime: 100 calls of 10 ms each.
        assert!(t
            .observe(100.0, &[(1, stmt(100.0, 1000.0), 10.0)], Some(5.0), Some(0))
            .is_none());
        // Then 4 calls of 1.2 s each in 10 s.
        let r = t
            .observe(
                110.0,
                &[(1, stmt(104.0, 5800.0), 1200.0)],
                Some(5.0),
                Some(0),
            )
            .unwrap();
        assert_eq!(r.seconds, 10.0);
        assert_eq!(r.top.len(), 1);
        let d = r.top[0].1;
        assert_eq!(d.calls, 4.0);
        assert!((d.mean_seconds().unwrap() - 1.2).abs() < 1e-9);
        assert_eq!(d.max_seconds, 1.2);
        assert_eq!(r.joined, vec![1]);
        assert_eq!(r.other, StatementDelta::default());
    }

    #[test]
    fn reset_and_eviction_never_give_negative_rates() {
        // (previous, current, stats_reset moved?, expected calls delta)
        let cases = [
            // pg_stat_statements_reset(): stats_reset moves; counts since.
            (stmt(100.0, 1000.0), stmt(3.0, 30.0), true, 3.0),
            // Reset moved, but the entry already grew past its old total.
            (stmt(100.0, 1000.0), stmt(150.0, 1500.0), true, 150.0),
            // Evicted (dealloc) and re-created: counts went down.
            (stmt(100.0, 1000.0), stmt(2.0, 20.0), false, 2.0),
            // Ordinary growth.
            (stmt(100.0, 1000.0), stmt(110.0, 1100.0), false, 10.0),
        ];
        for (before, after, moved, want) in cases {
            let mut t = StatementTracker::new(5);
            t.observe(0.0, &[(7, before, 1.0)], Some(1.0), Some(0));
            let reset = if moved { 2.0 } else { 1.0 };
            let r = t
                .observe(10.0, &[(7, after, 1.0)], Some(reset), Some(1))
                .unwrap();
            let d = r.top[0].1;
            assert_eq!(d.calls, want, "{before:?} -> {after:?}");
            for v in [d.calls, d.exec_seconds, d.rows, d.blks_hit, d.blks_read] {
                assert!(v >= 0.0, "{d:?}");
            }
            assert_eq!(r.evicted, 1.0);
        }
        // An entry that disappeared (evicted) is simply gone; a new one
        // counts from 0.
        let mut t = StatementTracker::new(5);
        t.observe(0.0, &[(1, stmt(50.0, 500.0), 1.0)], None, None);
        let r = t
            .observe(5.0, &[(2, stmt(4.0, 40.0), 1.0)], None, None)
            .unwrap();
        assert_eq!(
            r.top,
            vec![(2, statement_delta(None, &stmt(4.0, 40.0), 1.0, false))]
        );
        assert_eq!(r.evicted, 0.0);
    }

    #[test]
    fn three_hundred_statements_give_n_members_and_other() {
        let mut t = StatementTracker::new(20);
        let rows = |k: f64| -> Vec<(i64, StatementCounters, f64)> {
            (0..300)
                .map(|i| (i as i64, stmt(k, k * (1.0 + i as f64)), 1.0))
                .collect()
        };
        t.observe(0.0, &rows(1.0), None, None);
        for round in 2..6 {
            let r = t
                .observe(round as f64 * 10.0, &rows(round as f64), None, None)
                .unwrap();
            assert_eq!(r.top.len(), 20);
            // The 20 busiest (highest ids) are the members.
            assert!(r.top.iter().all(|(id, _)| *id >= 280), "{:?}", r.top);
            assert_eq!(r.other.calls, 280.0);
        }
    }

    #[test]
    fn membership_is_stable_under_jitter() {
        // Three statements of nearly equal weight, two places: the order of
        // the weights flips every round but the members stay.
        let mut top = StableTop::new(2);
        let first = top.update(&[(1, 10.0), (2, 9.0), (3, 8.5)]).clone();
        assert_eq!(first, BTreeSet::from([1, 2]));
        for round in 0..20 {
            let w = if round % 2 == 0 {
                [(1, 8.5), (2, 9.0), (3, 10.0)]
            } else {
                [(1, 10.0), (2, 8.5), (3, 9.0)]
            };
            assert_eq!(top.update(&w), &first, "round {round}");
        }
        // A clear newcomer does take a place, from the weakest.
        let mut joined = false;
        for _ in 0..5 {
            joined |= top.update(&[(1, 10.0), (2, 1.0), (3, 40.0)]).contains(&3);
        }
        assert!(joined);
        assert!(top.is_member(&1));
        assert_eq!(top.members().len(), 2);
        // An idle member keeps its place while no active key needs it,
        // then gives it up; a statement gone from the source leaves at once.
        let mut top = StableTop::new(2);
        top.update(&[(1, 1.0), (2, 1.0)]);
        for _ in 0..100 {
            assert!(top.update(&[(1, 0.0), (2, 1.0)]).contains(&1));
        }
        assert!(top.update(&[(1, 0.0), (2, 1.0), (3, 0.01)]).contains(&3));
        assert!(!top.is_member(&1));
        assert!(!top.update(&[(2, 1.0)]).contains(&1));
        // Fewer keys than places: all are members, idle or not.
        let mut top = StableTop::new(10);
        assert_eq!(top.update(&[(1, 0.0), (2, 0.0)]).len(), 2);
    }

    #[test]
    fn contenders_are_the_best_non_members() {
        let mut top = StableTop::new(2);
        top.update(&[(1, 10.0), (2, 9.0), (3, 8.0), (4, 7.0), (5, 0.0)]);
        assert_eq!(
            top.members().iter().copied().collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(top.contenders(5), vec![3, 4]); // 5 is idle
        assert_eq!(top.contenders(1), vec![3]);
    }

    #[test]
    fn top_zero_keeps_nothing() {
        let mut top: StableTop<i64> = StableTop::new(0);
        assert!(top.update(&[(1, 5.0)]).is_empty());
    }

    fn db(commits: f64, rollbacks: f64, hit: f64, read: f64) -> DatabaseCounters {
        DatabaseCounters {
            commits,
            rollbacks,
            blks_hit: hit,
            blks_read: read,
            deadlocks: rollbacks,
            ..DatabaseCounters::default()
        }
    }

    #[test]
    fn database_ratios_over_the_round() {
        let mut t = DatabaseTracker::new(1);
        let first = [
            ("app".to_owned(), db(1000.0, 10.0, 5000.0, 500.0)),
            ("idle".to_owned(), db(5.0, 0.0, 10.0, 2.0)),
        ];
        assert!(t.observe(0.0, &first).is_none());
        let second = [
            ("app".to_owned(), db(1092.0, 18.0, 14500.0, 1000.0)),
            ("idle".to_owned(), db(6.0, 1.0, 11.0, 2.0)),
        ];
        let r = t.observe(10.0, &second).unwrap();
        assert_eq!(r.top.len(), 1);
        let (name, totals, d) = &r.top[0];
        assert_eq!(name, "app");
        assert_eq!(totals.commits, 1092.0);
        assert!((d.rollback_ratio().unwrap() - 0.08).abs() < 1e-12);
        assert!((d.cache_hit_ratio(1000.0).unwrap() - 0.95).abs() < 1e-12);
        // The idle one is summed in other; too few reads for a ratio.
        assert!(r.has_other);
        assert_eq!(r.other.commits, 1.0);
        assert_eq!(r.other.cache_hit_ratio(1000.0), None);
        assert_eq!(r.other_totals.deadlocks, 1.0);
        assert_eq!(DatabaseDelta::default().rollback_ratio(), None);
    }

    #[test]
    fn other_totals_only_grow_even_when_members_change_or_reset() {
        let mut t = DatabaseTracker::new(1);
        t.observe(
            0.0,
            &[
                ("a".into(), db(10.0, 0.0, 0.0, 0.0)),
                ("b".into(), db(5.0, 0.0, 0.0, 0.0)),
            ],
        );
        let mut last = 0.0;
        let reads = [
            [
                ("a".to_owned(), db(20.0, 0.0, 0.0, 0.0)),
                ("b".to_owned(), db(6.0, 0.0, 0.0, 0.0)),
            ],
            [
                ("a".to_owned(), db(21.0, 0.0, 0.0, 0.0)),
                ("b".to_owned(), db(60.0, 0.0, 0.0, 0.0)),
            ],
            // pg_stat_reset() on b.
            [
                ("a".to_owned(), db(22.0, 0.0, 0.0, 0.0)),
                ("b".to_owned(), db(1.0, 0.0, 0.0, 0.0)),
            ],
        ];
        for (i, read) in reads.iter().enumerate() {
            let r = t.observe(10.0 * (i + 1) as f64, read).unwrap();
            assert!(r.other_totals.commits >= last, "round {i}: {r:?}");
            assert!(r.other.commits >= 0.0);
            last = r.other_totals.commits;
        }
    }

    #[test]
    fn xmin_clock_dates_from_first_sight() {
        let mut c = XminClock::default();
        assert_eq!(c.age(Some("1234"), 100.0), Some(0.0));
        assert_eq!(c.age(Some("1234"), 160.0), Some(60.0));
        assert_eq!(c.age(Some("1300"), 220.0), Some(0.0));
        assert_eq!(c.age(None, 280.0), None);
        assert_eq!(c.age(Some("1300"), 300.0), Some(0.0));
    }

    #[test]
    fn top_and_max_rest_splits() {
        let items = [("a", 5.0), ("b", 9.0), ("c", 1.0), ("d", 7.0)];
        let (top, rest) = top_and_max_rest(&items, 2, |x| x.1);
        assert_eq!(top, vec![("b", 9.0), ("d", 7.0)]);
        assert_eq!(rest, Some(5.0));
        let (top, rest) = top_and_max_rest(&items, 10, |x| x.1);
        assert_eq!(top.len(), 4);
        assert_eq!(rest, None);
    }
}
