//! Writes one round's figures into the [`Output`]: everything but `up`,
//! which the source writes itself (see [`super::PostgresSource`]).

use super::metrics;
use super::queries::DatabaseCounters;
use super::queries::{self, Snapshot};
use super::replication;
use super::stats::{
    top_and_max_rest, DatabaseDelta, DatabaseRound, StatementDelta, StatementRound,
};
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

/// Fewer block accesses than this in a round give no cache hit ratio: a
/// ratio of a handful of reads on an idle database means nothing and would
/// only trip the check.
pub const MIN_CACHE_BLOCKS: f64 = 1000.0;

/// Transaction ID and multixact wraparound limit (2^31): PostgreSQL stops
/// assigning IDs a few million before it.
pub const WRAPAROUND_LIMIT: f64 = 2_147_483_648.0;

/// At most this many databases get their own series in the per-database
/// figures; the rest are `database="other"`.
pub const TOP_DATABASES: usize = 10;

/// Every kind of xmin holder, each with a series (0 when none holds one).
pub const XMIN_KINDS: [&str; 3] = ["transaction", "replication", "prepared_transaction"];

/// Characters of the normalised query text kept in the `query` label.
pub const QUERY_LABEL_CHARS: usize = 48;

/// The short `query` label of a statement: its normalised text (literals
/// are `$n` already), whitespace collapsed, cut at [`QUERY_LABEL_CHARS`]
/// characters with "…" when cut; "?" when the text is unknown.
pub fn query_label(text: Option<&str>) -> String {
    let Some(text) = text else {
        return "?".to_owned();
    };
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= QUERY_LABEL_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(QUERY_LABEL_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// pg_stat_database, WAL, archiver, checkpoints and autovacuum workers.
pub fn emit_activity(
    out: &mut Output,
    target: &str,
    a: &queries::Activity,
    databases: Option<&DatabaseRound>,
    wal_bytes_per_second: Option<f64>,
) {
    let t = [("target", target)];
    if let Some(r) = databases {
        let mut rows: Vec<(&str, &DatabaseCounters, &DatabaseDelta)> = r
            .top
            .iter()
            .map(|(name, c, d)| (name.as_str(), c, d))
            .collect();
        if r.has_other {
            rows.push(("other", &r.other_totals, &r.other));
        }
        for (name, c, d) in rows {
            let l = [("target", target), ("database", name)];
            if let Some(v) = d.cache_hit_ratio(MIN_CACHE_BLOCKS) {
                out.add(&metrics::DATABASE_CACHE_HIT_RATIO, &l, v);
            }
            if let Some(v) = d.rollback_ratio() {
                out.add(&metrics::DATABASE_ROLLBACK_RATIO, &l, v);
            }
            out.add(
                &metrics::DATABASE_COMMITS_PER_SECOND,
                &l,
                d.commits / r.seconds,
            );
            out.add(
                &metrics::DATABASE_ROLLBACKS_PER_SECOND,
                &l,
                d.rollbacks / r.seconds,
            );
            out.add(&metrics::DATABASE_COMMITS_TOTAL, &l, c.commits);
            out.add(&metrics::DATABASE_ROLLBACKS_TOTAL, &l, c.rollbacks);
            out.add(&metrics::DATABASE_DEADLOCKS_TOTAL, &l, c.deadlocks);
            out.add(&metrics::DATABASE_TEMP_FILES_TOTAL, &l, c.temp_files);
            out.add(&metrics::DATABASE_TEMP_BYTES_TOTAL, &l, c.temp_bytes);
            out.add(&metrics::DATABASE_CONFLICTS_TOTAL, &l, c.conflicts);
            out.add(
                &metrics::DATABASE_CHECKSUM_FAILURES_TOTAL,
                &l,
                c.checksum_failures,
            );
        }
    }
    if let Some(wal) = a.wal_bytes {
        out.add(&metrics::WAL_BYTES_TOTAL, &t, wal);
    }
    if let Some(v) = wal_bytes_per_second {
        out.add(&metrics::WAL_BYTES_PER_SECOND, &t, v);
    }
    out.add(&metrics::ARCHIVER_ARCHIVED_TOTAL, &t, a.archived);
    out.add(&metrics::ARCHIVER_FAILED_TOTAL, &t, a.archive_failed);
    if let Some(v) = a.archive_failed_age {
        out.add(&metrics::ARCHIVER_LAST_FAILURE_AGE_SECONDS, &t, v.max(0.0));
    }
    if let Some(v) = a.archived_age {
        out.add(&metrics::ARCHIVER_LAST_ARCHIVED_AGE_SECONDS, &t, v.max(0.0));
    }
    out.add(&metrics::CHECKPOINTS_TIMED_TOTAL, &t, a.checkpoints_timed);
    out.add(
        &metrics::CHECKPOINTS_REQUESTED_TOTAL,
        &t,
        a.checkpoints_requested,
    );
    out.add(
        &metrics::AUTOVACUUM_WORKERS,
        &t,
        a.autovacuum_workers as f64,
    );
    out.add(
        &metrics::AUTOVACUUM_MAX_WORKERS,
        &t,
        a.autovacuum_max_workers as f64,
    );
}

/// What the statement figures of a round are made of.
pub struct StatementFigures<'a> {
    /// None: not read this round (top 0); Some(false): not installed or
    /// not readable.
    pub available: Option<bool>,
    pub tracked: Option<usize>,
    pub dealloc: Option<i64>,
    pub round: Option<&'a StatementRound>,
    pub texts: &'a BTreeMap<i64, String>,
    /// Why there are no statement figures, when there are none.
    pub note: Option<&'a str>,
}

/// The top statements and `other`: at most N+1 series per family.
pub fn emit_statements(out: &mut Output, target: &str, f: &StatementFigures<'_>) {
    let t = [("target", target)];
    let Some(available) = f.available else {
        return;
    };
    out.add(&metrics::STATEMENTS_AVAILABLE, &t, bool_value(available));
    if let Some(n) = f.tracked {
        out.add(&metrics::STATEMENTS_TRACKED, &t, n as f64);
    }
    if let Some(n) = f.dealloc {
        out.add(&metrics::STATEMENTS_DEALLOC_TOTAL, &t, n as f64);
    }
    let Some(r) = f.round else {
        return;
    };
    let mut rows: Vec<(String, String, &StatementDelta)> = r
        .top
        .iter()
        .map(|(id, d)| {
            (
                id.to_string(),
                query_label(f.texts.get(id).map(String::as_str)),
                d,
            )
        })
        .collect();
    rows.push(("other".to_owned(), "other".to_owned(), &r.other));
    for (id, query, d) in &rows {
        let l = [
            ("target", target),
            ("queryid", id.as_str()),
            ("query", query.as_str()),
        ];
        out.add(
            &metrics::STATEMENT_CALLS_PER_SECOND,
            &l,
            d.calls / r.seconds,
        );
        if let Some(mean) = d.mean_seconds() {
            out.add(&metrics::STATEMENT_MEAN_SECONDS, &l, mean);
        }
        out.add(&metrics::STATEMENT_MAX_SECONDS, &l, d.max_seconds);
        out.add(
            &metrics::STATEMENT_EXEC_SECONDS_PER_SECOND,
            &l,
            d.exec_seconds / r.seconds,
        );
        out.add(&metrics::STATEMENT_ROWS_PER_SECOND, &l, d.rows / r.seconds);
        out.add(
            &metrics::STATEMENT_SHARED_BLOCKS_HIT_PER_SECOND,
            &l,
            d.blks_hit / r.seconds,
        );
        out.add(
            &metrics::STATEMENT_SHARED_BLOCKS_READ_PER_SECOND,
            &l,
            d.blks_read / r.seconds,
        );
    }
}

/// The catalog figures (read every `catalog_interval`, written every
/// round from the last read). `replication_age` dates the replication
/// holder's xmin (see [`super::stats::XminClock`]).
pub fn emit_catalog(
    out: &mut Output,
    target: &str,
    c: &queries::Catalog,
    replication_age: Option<f64>,
) {
    let (top, rest) = top_and_max_rest(&c.wraparound, TOP_DATABASES, |w| w.1);
    let mut rows: Vec<(&str, f64, f64)> =
        top.iter().map(|(n, x, m)| (n.as_str(), *x, *m)).collect();
    if let Some(max_xid) = rest {
        let max_mxid = c
            .wraparound
            .iter()
            .filter(|w| !top.contains(w))
            .map(|w| w.2)
            .fold(0.0, f64::max);
        rows.push(("other", max_xid, max_mxid));
    }
    for (name, xid, mxid) in rows {
        let l = [("target", target), ("database", name)];
        out.add(&metrics::DATABASE_XID_AGE, &l, xid);
        out.add(
            &metrics::DATABASE_WRAPAROUND_RATIO,
            &l,
            xid / WRAPAROUND_LIMIT,
        );
        out.add(&metrics::DATABASE_MULTIXACT_AGE, &l, mxid);
        out.add(
            &metrics::DATABASE_MULTIXACT_WRAPAROUND_RATIO,
            &l,
            mxid / WRAPAROUND_LIMIT,
        );
    }
    for kind in XMIN_KINDS {
        let l = [("target", target), ("kind", kind)];
        let holder = c.holders.iter().find(|h| h.kind == kind);
        let seconds = match (kind, holder) {
            (_, None) => 0.0,
            ("replication", Some(_)) => replication_age.unwrap_or(0.0),
            (_, Some(h)) => h.seconds.unwrap_or(0.0),
        };
        out.add(&metrics::OLDEST_XMIN_AGE_SECONDS, &l, seconds);
        out.add(
            &metrics::OLDEST_XMIN_AGE_XIDS,
            &l,
            holder.map_or(0.0, |h| h.xid_age),
        );
    }
}

/// One database's tables with the most dead tuples and its unused indexes.
pub fn emit_database_catalog(out: &mut Output, target: &str, c: &queries::DatabaseCatalog) {
    let db = c.database.as_str();
    for table in &c.tables {
        let l = [
            ("target", target),
            ("database", db),
            ("table", table.name.as_str()),
        ];
        out.add(&metrics::TABLE_DEAD_TUPLES, &l, table.dead);
        let all = table.dead + table.live;
        if all > 0.0 {
            out.add(&metrics::TABLE_DEAD_TUPLE_RATIO, &l, table.dead / all);
        }
        if let Some(v) = table.vacuum_age {
            out.add(&metrics::TABLE_LAST_VACUUM_AGE_SECONDS, &l, v);
        }
        if let Some(v) = table.analyze_age {
            out.add(&metrics::TABLE_LAST_ANALYZE_AGE_SECONDS, &l, v);
        }
    }
    let l = [("target", target), ("database", db)];
    out.add(&metrics::UNUSED_INDEXES, &l, c.unused_indexes as f64);
    out.add(&metrics::UNUSED_INDEX_BYTES, &l, c.unused_index_bytes);
}

/// What a PostgreSQL target adds to `/status`: the top statements with
/// their normalised texts (cut at 200 characters by the query), the reason
/// when there are none, and the largest unused indexes of each database
/// read.
pub fn details(
    f: &StatementFigures<'_>,
    databases: &[&queries::DatabaseCatalog],
) -> serde_json::Value {
    let top: Vec<serde_json::Value> = f
        .round
        .map(|r| {
            r.top
                .iter()
                .map(|(id, d)| {
                    serde_json::json!({
                        "queryid": id.to_string(),
                        "query": f.texts.get(id),
                        "calls_per_second": d.calls / r.seconds,
                        "mean_seconds": d.mean_seconds(),
                        "exec_seconds_per_second": d.exec_seconds / r.seconds,
                        "max_seconds": d.max_seconds,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "statements": {
            "available": f.available,
            "note": f.note,
            "top": top,
        },
        "unused_indexes": databases.iter().map(|c| serde_json::json!({
            "database": c.database,
            "count": c.unused_indexes,
            "bytes": c.unused_index_bytes,
            "largest": c.unused_top,
        })).collect::<Vec<_>>(),
    })
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

    #[test]
    fn query_labels_are_short_flat_and_cut_on_characters() {
        assert_eq!(query_label(None), "?");
        assert_eq!(
            query_label(Some("SELECT pg_sleep($1)")),
            "SELECT pg_sleep($1)"
        );
        assert_eq!(
            query_label(Some("SELECT *\n   FROM t\tWHERE id = $1")),
            "SELECT * FROM t WHERE id = $1"
        );
        let long = format!("SELECT 'é', {}", "$1, ".repeat(40));
        let label = query_label(Some(&long));
        assert_eq!(label.chars().count(), QUERY_LABEL_CHARS);
        assert!(
            label.starts_with("SELECT 'é', $1,") && label.ends_with('…'),
            "{label}"
        );
    }
}
