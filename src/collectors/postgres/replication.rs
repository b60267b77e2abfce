//! Standby lag, done right: pure functions over one round's observation and
//! the little history the source keeps between rounds.
//!
//! # What `vitals_pg_replication_lag_seconds` means
//! How long the oldest WAL that the standby has not replayed yet has been
//! waiting, as a tight *upper bound* (never 0 while something is pending):
//!
//! * 0 when everything received has been replayed
//!   (`pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn()`) **and** the WAL
//!   receiver is streaming (`pg_stat_wal_receiver.status = 'streaming'`).
//!   An idle primary therefore reads 0 however old the last transaction is —
//!   the classic `now() - pg_last_xact_replay_timestamp()` grows instead.
//! * otherwise the smallest of these upper bounds, in the standby's clock:
//!   - `now() - pg_last_xact_replay_timestamp()`: anything not yet replayed
//!     was written on the primary after the last replayed commit. Tight
//!     under a steady write load; far too large after an idle period, and
//!     NULL on a standby that has not replayed a transaction since it
//!     started (a known failure: exporters then report 0 or nothing);
//!   - `now - t`, where `t` is the time of the latest round at which the
//!     source saw, while streaming, a received position that is now fully
//!     replayed: the WAL still pending arrived after `t`. Resolution: one
//!     sampling interval. This is what keeps a stuck fresh standby growing,
//!     and bounds the lag after an idle period;
//!   - with neither (the agent just started on a standby already behind,
//!     with no replayed transaction): `now() - pg_postmaster_start_time()`,
//!     since nothing was replayed since the server started.
//!
//! With the stream down and nothing pending, the same bounds apply: the
//! standby cannot know what the primary wrote since it last heard from it,
//! so the lag grows from the last round that saw it streaming and caught up.

use std::collections::VecDeque;

/// How many (time, received position) points to keep while replay is
/// behind. Dropping old points only makes the bound looser, never wrong.
const MAX_POINTS: usize = 512;

/// What one round read on a standby. Times are seconds since the epoch in
/// the server's clock, so agent/server clock skew plays no part.
#[derive(Clone, Debug, PartialEq)]
pub struct StandbyObservation {
    /// `now()` on the standby.
    pub now: f64,
    /// `pg_last_wal_receive_lsn()`; NULL when no receiver ever ran.
    pub receive: Option<u64>,
    /// `pg_last_wal_replay_lsn()`.
    pub replay: Option<u64>,
    /// `pg_stat_wal_receiver.status = 'streaming'`.
    pub streaming: bool,
    /// `pg_last_xact_replay_timestamp()`.
    pub last_replay: Option<f64>,
    /// `pg_postmaster_start_time()`.
    pub started: f64,
}

/// The history behind the second bound: received positions with the round
/// time they were first seen, oldest first, positions increasing.
#[derive(Clone, Debug, Default)]
pub struct LagTracker {
    points: VecDeque<(f64, u64)>,
}

impl LagTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the history (the server was promoted, or is another one).
    pub fn clear(&mut self) {
        self.points.clear();
    }

    /// The lag in seconds for this round; updates the history.
    pub fn observe(&mut self, o: &StandbyObservation) -> f64 {
        let caught_up = matches!((o.receive, o.replay), (Some(rcv), Some(rpl)) if rcv <= rpl);
        if caught_up && o.streaming {
            self.points.clear();
            if let Some(rcv) = o.receive {
                self.points.push_back((o.now, rcv));
            }
            return 0.0;
        }
        // Drop points whose successor is also fully replayed: only the
        // latest replayed point (the anchor) matters.
        if let Some(rpl) = o.replay {
            while self.points.len() >= 2 && self.points.get(1).is_some_and(|p| p.1 <= rpl) {
                self.points.pop_front();
            }
        }
        let anchor = match (self.points.front(), o.replay) {
            (Some(&(t, lsn)), Some(rpl)) if lsn <= rpl => Some(t),
            _ => None,
        };
        if o.streaming {
            if let Some(rcv) = o.receive {
                if self.points.back().map_or(true, |p| rcv > p.1) {
                    self.points.push_back((o.now, rcv));
                    if self.points.len() > MAX_POINTS {
                        // Keep the anchor (front); thin out the next one.
                        self.points.remove(1);
                    }
                }
            }
        }
        let mut bounds = Vec::with_capacity(2);
        if let Some(ts) = o.last_replay {
            bounds.push(o.now - ts);
        }
        if let Some(t) = anchor {
            bounds.push(o.now - t);
        }
        let lag = bounds
            .into_iter()
            .reduce(f64::min)
            .unwrap_or(o.now - o.started);
        lag.max(0.0)
    }
}

/// `stream_up`: the receiver is streaming and heard from the primary within
/// `wal_receiver_timeout` (0 disables the timeout, as in PostgreSQL).
pub fn stream_up(
    status: Option<&str>,
    now: f64,
    last_msg: Option<f64>,
    receiver_timeout_ms: Option<i64>,
) -> bool {
    if status != Some("streaming") {
        return false;
    }
    match (last_msg, receiver_timeout_ms) {
        (_, Some(0)) => true,
        (Some(t), Some(ms)) => (now - t) * 1000.0 <= ms as f64,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(now: f64, receive: u64, replay: u64, streaming: bool) -> StandbyObservation {
        StandbyObservation {
            now,
            receive: Some(receive),
            replay: Some(replay),
            streaming,
            last_replay: None,
            started: 0.0,
        }
    }

    #[test]
    fn idle_primary_reads_zero_however_old_the_last_transaction() {
        let mut t = LagTracker::new();
        for now in [1000.0, 1005.0, 1010.0] {
            let o = StandbyObservation {
                last_replay: Some(10.0),
                ..obs(now, 500, 500, true)
            };
            assert_eq!(t.observe(&o), 0.0);
        }
    }

    #[test]
    fn stuck_fresh_standby_grows_from_the_last_caught_up_round() {
        // pg_last_xact_replay_timestamp() is NULL throughout.
        let mut t = LagTracker::new();
        assert_eq!(t.observe(&obs(100.0, 500, 500, true)), 0.0);
        // Replay paused, WAL keeps arriving.
        assert_eq!(t.observe(&obs(105.0, 800, 500, true)), 5.0);
        assert_eq!(t.observe(&obs(110.0, 900, 500, true)), 10.0);
        assert_eq!(t.observe(&obs(115.0, 900, 500, true)), 15.0);
        // Replay resumes part-way: what is still pending arrived after 105.
        assert_eq!(t.observe(&obs(120.0, 900, 800, true)), 15.0);
        assert_eq!(t.observe(&obs(125.0, 900, 900, true)), 0.0);
    }

    #[test]
    fn agent_starting_on_a_stuck_fresh_standby_uses_the_server_start() {
        let mut t = LagTracker::new();
        let o = StandbyObservation {
            started: 40.0,
            ..obs(100.0, 800, 500, true)
        };
        assert_eq!(t.observe(&o), 60.0);
        let o = StandbyObservation {
            started: 40.0,
            ..obs(105.0, 800, 500, true)
        };
        assert_eq!(t.observe(&o), 65.0);
    }

    #[test]
    fn steady_load_uses_the_replay_timestamp_when_tighter() {
        let mut t = LagTracker::new();
        t.observe(&obs(100.0, 500, 500, true));
        let o = StandbyObservation {
            last_replay: Some(103.5),
            ..obs(105.0, 900, 850, true)
        };
        assert_eq!(t.observe(&o), 1.5);
    }

    #[test]
    fn burst_after_idle_is_bounded_by_the_history_not_the_old_commit() {
        let mut t = LagTracker::new();
        t.observe(&obs(3600.0, 500, 500, true));
        let o = StandbyObservation {
            last_replay: Some(0.0), // an hour ago
            ..obs(3605.0, 900, 500, true)
        };
        assert_eq!(t.observe(&o), 5.0);
    }

    #[test]
    fn broken_stream_never_reads_zero() {
        let mut t = LagTracker::new();
        assert_eq!(t.observe(&obs(100.0, 500, 500, true)), 0.0);
        // Primary gone: receiver not streaming, nothing pending.
        assert_eq!(t.observe(&obs(105.0, 500, 500, false)), 5.0);
        assert_eq!(t.observe(&obs(110.0, 500, 500, false)), 10.0);
        // Back.
        assert_eq!(t.observe(&obs(115.0, 600, 600, true)), 0.0);
    }

    #[test]
    fn history_stays_bounded_and_keeps_the_anchor() {
        let mut t = LagTracker::new();
        t.observe(&obs(0.0, 10, 10, true));
        for i in 1..2000u64 {
            t.observe(&obs(i as f64, 10 + i, 10, true));
        }
        assert!(t.points.len() <= MAX_POINTS);
        assert_eq!(t.observe(&obs(2000.0, 5000, 10, true)), 2000.0);
    }

    #[test]
    fn stream_up_needs_streaming_and_a_recent_message() {
        assert!(stream_up(
            Some("streaming"),
            100.0,
            Some(90.0),
            Some(60_000)
        ));
        assert!(!stream_up(
            Some("streaming"),
            100.0,
            Some(30.0),
            Some(60_000)
        ));
        assert!(stream_up(Some("streaming"), 100.0, Some(30.0), Some(0)));
        assert!(!stream_up(Some("waiting"), 100.0, Some(99.0), Some(60_000)));
        assert!(!stream_up(None, 100.0, None, Some(60_000)));
    }
}
