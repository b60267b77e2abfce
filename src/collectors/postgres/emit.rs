//! Writes one round's figures into the [`Output`]: everything but `up`,
//! which the source writes itself (see [`super::PostgresSource`]).

use super::metrics;
use super::queries::{self, Snapshot};
use super::replication;
use super::{MAX_STANDBYS, STATES};
use crate::metrics::Output;
use std::collections::BTreeMap;

/// Per-target settings that shape the output.
pub struct Settings<'a> {
    pub pools: &'a BTreeMap<String, u32>,
    pub top_applications: usize,
}

/// The `top` most frequent application names (input: most connections
/// first), the rest summed as "other". A real application called "other"
/// is merged with the rest so no series appears twice.
pub fn top_applications(apps: &[(String, i64)], top: usize) -> Vec<(String, i64)> {
    let mut kept: Vec<(String, i64)> = apps.iter().take(top).cloned().collect();
    let rest: i64 = apps.iter().skip(top).map(|(_, n)| n).sum();
    if apps.len() > top {
        match kept.iter_mut().find(|(name, _)| name == "other") {
            Some(entry) => entry.1 += rest,
            None => kept.push(("other".to_owned(), rest)),
        }
    }
    kept
}

/// Writes every figure of one successful round (all but `up`).
pub fn emit(
    out: &mut Output,
    target: &str,
    s: &Snapshot,
    settings: &Settings<'_>,
    probe_seconds: f64,
    standby_lag: Option<f64>,
) {
    let t = [("target", target)];
    let version = s.version.split_whitespace().next().unwrap_or("");
    out.add(
        &metrics::INFO,
        &[("target", target), ("version", version)],
        1.0,
    );
    out.add(&metrics::IN_RECOVERY, &t, bool_value(s.in_recovery));
    out.add(&metrics::PROBE_SECONDS, &t, probe_seconds);

    let mut by_state: BTreeMap<&str, i64> = STATES.iter().map(|st| (*st, 0)).collect();
    for (state, n) in &s.states {
        *by_state.entry(state.as_str()).or_insert(0) += n;
    }
    for (state, n) in by_state {
        out.add(
            &metrics::CONNECTIONS,
            &[("target", target), ("state", state)],
            n as f64,
        );
    }
    for (app, n) in top_applications(&s.applications, settings.top_applications) {
        out.add(
            &metrics::CONNECTIONS_BY_APPLICATION,
            &[("target", target), ("application_name", app.as_str())],
            n as f64,
        );
    }
    out.add(&metrics::MAX_CONNECTIONS, &t, s.max_connections as f64);
    let reserved = s.superuser_reserved + s.reserved;
    out.add(&metrics::RESERVED_CONNECTIONS, &t, reserved as f64);
    let usable = s.max_connections - reserved;
    if usable > 0 {
        out.add(
            &metrics::CONNECTION_UTILIZATION_RATIO,
            &t,
            s.clients as f64 / usable as f64,
        );
    }
    for (app, &size) in settings.pools {
        if size == 0 {
            continue;
        }
        let n = s
            .applications
            .iter()
            .filter(|(name, _)| name == app)
            .map(|(_, n)| *n)
            .sum::<i64>();
        out.add(
            &metrics::POOL_UTILIZATION_RATIO,
            &[("target", target), ("application_name", app.as_str())],
            n as f64 / f64::from(size),
        );
    }
    out.add(
        &metrics::IDLE_IN_TRANSACTION_MAX_SECONDS,
        &t,
        s.idle_in_xact_max,
    );
    out.add(&metrics::LONGEST_QUERY_SECONDS, &t, s.longest_query);
    out.add(&metrics::LOCK_WAITERS, &t, s.lock_waiters as f64);

    if s.in_recovery {
        if let Some(lag) = standby_lag {
            out.add(&metrics::REPLICATION_LAG_SECONDS, &t, lag);
        }
        if let (Some(rcv), Some(rpl)) = (s.receive_lsn, s.replay_lsn) {
            out.add(
                &metrics::REPLICATION_LAG_BYTES,
                &t,
                rcv.saturating_sub(rpl) as f64,
            );
        }
        if let Some(last) = s.receiver_last_msg {
            out.add(
                &metrics::REPLICATION_LAST_MESSAGE_AGE_SECONDS,
                &t,
                (s.now - last).max(0.0),
            );
        }
        out.add(
            &metrics::REPLICATION_STREAM_UP,
            &t,
            bool_value(replication::stream_up(
                s.receiver_status.as_deref(),
                s.now,
                s.receiver_last_msg,
                s.receiver_timeout_ms,
            )),
        );
    }

    // Several walsenders may share an application_name: keep the worst.
    let mut standbys: BTreeMap<&str, queries::StandbyRow> = BTreeMap::new();
    for row in &s.standbys {
        if standbys.len() >= MAX_STANDBYS && !standbys.contains_key(row.name.as_str()) {
            continue;
        }
        let entry = standbys
            .entry(row.name.as_str())
            .or_insert_with(|| row.clone());
        entry.write_lag = entry.write_lag.max(row.write_lag);
        entry.flush_lag = entry.flush_lag.max(row.flush_lag);
        entry.replay_lag = entry.replay_lag.max(row.replay_lag);
        entry.replay_bytes = match (entry.replay_bytes, row.replay_bytes) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    for (name, row) in &standbys {
        let l = [("target", target), ("standby", *name)];
        out.add(&metrics::STANDBY_WRITE_LAG_SECONDS, &l, row.write_lag);
        out.add(&metrics::STANDBY_FLUSH_LAG_SECONDS, &l, row.flush_lag);
        out.add(&metrics::STANDBY_REPLAY_LAG_SECONDS, &l, row.replay_lag);
        if let Some(bytes) = row.replay_bytes {
            out.add(&metrics::STANDBY_REPLAY_LAG_BYTES, &l, bytes.max(0.0));
        }
    }
    for slot in &s.slots {
        let l = [("target", target), ("slot", slot.name.as_str())];
        if let Some(bytes) = slot.retained_bytes {
            out.add(&metrics::SLOT_RETAINED_BYTES, &l, bytes.max(0.0));
        }
        out.add(&metrics::SLOT_ACTIVE, &l, bool_value(slot.active));
    }
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps(list: &[(&str, i64)]) -> Vec<(String, i64)> {
        list.iter().map(|(a, n)| ((*a).to_owned(), *n)).collect()
    }

    #[test]
    fn top_applications_keeps_n_and_sums_the_rest() {
        let list = apps(&[("webapp", 9), ("worker", 4), ("psql", 2), ("cron", 1)]);
        assert_eq!(
            top_applications(&list, 2),
            apps(&[("webapp", 9), ("worker", 4), ("other", 3)])
        );
        assert_eq!(top_applications(&list, 10), list);
        assert_eq!(top_applications(&list, 0), apps(&[("other", 16)]));
    }

    #[test]
    fn an_application_called_other_is_merged_not_duplicated() {
        let list = apps(&[("other", 5), ("webapp", 4), ("cron", 1)]);
        assert_eq!(
            top_applications(&list, 2),
            apps(&[("other", 6), ("webapp", 4)])
        );
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            version: "15.14 (Debian 15.14-0+deb12u1)".into(),
            max_connections: 100,
            superuser_reserved: 3,
            reserved: 0,
            clients: 6,
            states: vec![("active".into(), 2), ("idle".into(), 4)],
            applications: apps(&[("webapp", 5), ("vitals", 1)]),
            idle_in_xact_max: 0.0,
            standbys: vec![
                queries::StandbyRow {
                    name: "walreceiver".into(),
                    write_lag: 0.5,
                    flush_lag: 0.0,
                    replay_lag: 0.0,
                    replay_bytes: Some(100.0),
                },
                queries::StandbyRow {
                    name: "walreceiver".into(),
                    write_lag: 0.1,
                    flush_lag: 0.0,
                    replay_lag: 2.0,
                    replay_bytes: Some(50.0),
                },
            ],
            ..Snapshot::default()
        }
    }

    #[test]
    fn emit_computes_ratios_and_fills_every_state() {
        let pools = BTreeMap::from([("webapp".to_owned(), 20), ("readonly".to_owned(), 10)]);
        let mut out = Output::new();
        let settings = Settings {
            pools: &pools,
            top_applications: 10,
        };
        emit(&mut out, "db", &snapshot(), &settings, 0.001, None);
        let t = ("target", "db");
        assert_eq!(
            out.value("vitals_pg_connection_utilization_ratio", &[t]),
            Some(6.0 / 97.0)
        );
        assert_eq!(
            out.value(
                "vitals_pg_pool_utilization_ratio",
                &[t, ("application_name", "webapp")]
            ),
            Some(0.25)
        );
        assert_eq!(
            out.value(
                "vitals_pg_pool_utilization_ratio",
                &[t, ("application_name", "readonly")]
            ),
            Some(0.0)
        );
        assert_eq!(
            out.value(
                "vitals_pg_connections",
                &[t, ("state", "idle in transaction")]
            ),
            Some(0.0)
        );
        assert_eq!(
            out.value("vitals_pg_connections", &[t, ("state", "idle")]),
            Some(4.0)
        );
        assert_eq!(
            out.family("vitals_pg_connections").map(|f| f.samples.len()),
            Some(6)
        );
        assert_eq!(
            out.value("vitals_pg_info", &[("version", "15.14")]),
            Some(1.0)
        );
        assert_eq!(out.value("vitals_pg_reserved_connections", &[t]), Some(3.0));
        // Two walsenders named alike: the worst of each figure.
        let s = [t, ("standby", "walreceiver")];
        assert_eq!(
            out.value("vitals_pg_standby_write_lag_seconds", &s),
            Some(0.5)
        );
        assert_eq!(
            out.value("vitals_pg_standby_replay_lag_seconds", &s),
            Some(2.0)
        );
        assert_eq!(
            out.value("vitals_pg_standby_replay_lag_bytes", &s),
            Some(100.0)
        );
        // A primary has no standby view of itself.
        assert!(out.family("vitals_pg_replication_stream_up").is_none());
    }

    #[test]
    fn standby_view_is_written_on_a_standby() {
        let s = Snapshot {
            in_recovery: true,
            now: 1000.0,
            receive_lsn: Some(900),
            replay_lsn: Some(400),
            receiver_status: Some("streaming".into()),
            receiver_last_msg: Some(998.5),
            receiver_timeout_ms: Some(60_000),
            ..snapshot()
        };
        let pools = BTreeMap::new();
        let mut out = Output::new();
        let settings = Settings {
            pools: &pools,
            top_applications: 10,
        };
        emit(&mut out, "replica", &s, &settings, 0.001, Some(3.0));
        let t = [("target", "replica")];
        assert_eq!(
            out.value("vitals_pg_replication_lag_bytes", &t),
            Some(500.0)
        );
        assert_eq!(
            out.value("vitals_pg_replication_lag_seconds", &t),
            Some(3.0)
        );
        assert_eq!(
            out.value("vitals_pg_replication_last_message_age_seconds", &t),
            Some(1.5)
        );
        assert_eq!(out.value("vitals_pg_replication_stream_up", &t), Some(1.0));
    }
}
