//! The statements a PostgreSQL round sends, and the typed snapshot read from
//! the main one. A round is:
//!
//! 1. `SELECT 1` (simple protocol) — the probe round trip;
//! 2. [`MAIN`] (prepared once per connection) — everything else, one row;
//! 3. with `heartbeat` configured: [`heartbeat_write`] on a primary with
//!    `write: true`, [`heartbeat_read`] otherwise.
//!
//! Works on PostgreSQL 10 and later (`backend_type`, `pg_last_wal_*_lsn`);
//! `reserved_connections` is read where the server has it (16+). The role
//! needs `pg_monitor` to see other sessions' state and the WAL receiver.

use tokio_postgres::types::PgLsn;
use tokio_postgres::Row;

/// The probe: the cheapest statement there is.
pub const PROBE: &str = "SELECT 1";

/// Everything a round reads, as one row. Replication values are NULL where
/// they don't apply (primary vs standby), arrays are NULL when empty.
///
/// `now() - state_change` can be slightly negative for a session that
/// changed state after this statement began; the reader clamps at 0.
pub const MAIN: &str = r#"
WITH act AS (
    SELECT pid, state, application_name, state_change, query_start, wait_event_type
    FROM pg_stat_activity
    WHERE backend_type = 'client backend'
), pos AS (
    -- pg_current_wal_lsn() raises an error during recovery (PostgreSQL 10+).
    SELECT CASE WHEN pg_is_in_recovery()
                THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                ELSE pg_current_wal_lsn() END AS lsn
), states AS (
    SELECT state, count(*) AS n FROM act WHERE state IS NOT NULL GROUP BY state
), apps AS (
    SELECT coalesce(application_name, '') AS name, count(*) AS n FROM act GROUP BY 1
), rep AS (
    SELECT application_name AS name,
           coalesce(extract(epoch FROM write_lag), 0)::float8 AS write_lag,
           coalesce(extract(epoch FROM flush_lag), 0)::float8 AS flush_lag,
           coalesce(extract(epoch FROM replay_lag), 0)::float8 AS replay_lag,
           pg_wal_lsn_diff((SELECT lsn FROM pos), replay_lsn)::float8 AS replay_bytes
    FROM pg_stat_replication
), slots AS (
    SELECT slot_name::text AS name, active,
           pg_wal_lsn_diff((SELECT lsn FROM pos), restart_lsn)::float8 AS retained
    FROM pg_replication_slots
), recv AS (
    SELECT status, extract(epoch FROM last_msg_receipt_time)::float8 AS last_msg
    FROM pg_stat_wal_receiver
    LIMIT 1
)
SELECT
    current_setting('server_version') AS version,
    pg_is_in_recovery() AS in_recovery,
    extract(epoch FROM now())::float8 AS now,
    current_setting('max_connections')::int8 AS max_connections,
    current_setting('superuser_reserved_connections')::int8 AS superuser_reserved,
    coalesce(current_setting('reserved_connections', true), '0')::int8 AS reserved,
    (SELECT count(*) FROM act) AS clients,
    (SELECT array_agg(state ORDER BY state) FROM states) AS state_names,
    (SELECT array_agg(n ORDER BY state) FROM states) AS state_counts,
    (SELECT array_agg(name ORDER BY n DESC, name) FROM apps) AS app_names,
    (SELECT array_agg(n ORDER BY n DESC, name) FROM apps) AS app_counts,
    (SELECT max(extract(epoch FROM now() - state_change))::float8 FROM act
        WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')) AS idle_in_xact_max,
    (SELECT max(extract(epoch FROM now() - query_start))::float8 FROM act
        WHERE state = 'active' AND pid <> pg_backend_pid()) AS longest_query,
    (SELECT count(*) FROM act WHERE wait_event_type = 'Lock') AS lock_waiters,
    pg_last_wal_receive_lsn() AS receive_lsn,
    pg_last_wal_replay_lsn() AS replay_lsn,
    extract(epoch FROM pg_last_xact_replay_timestamp())::float8 AS last_replay,
    extract(epoch FROM pg_postmaster_start_time())::float8 AS started,
    (SELECT status FROM recv) AS receiver_status,
    (SELECT last_msg FROM recv) AS receiver_last_msg,
    (SELECT setting::int8 FROM pg_settings WHERE name = 'wal_receiver_timeout') AS receiver_timeout_ms,
    (SELECT array_agg(name ORDER BY name) FROM rep) AS standby_names,
    (SELECT array_agg(write_lag ORDER BY name) FROM rep) AS standby_write_lag,
    (SELECT array_agg(flush_lag ORDER BY name) FROM rep) AS standby_flush_lag,
    (SELECT array_agg(replay_lag ORDER BY name) FROM rep) AS standby_replay_lag,
    (SELECT array_agg(replay_bytes ORDER BY name) FROM rep) AS standby_replay_bytes,
    (SELECT array_agg(name ORDER BY name) FROM slots) AS slot_names,
    (SELECT array_agg(active ORDER BY name) FROM slots) AS slot_active,
    (SELECT array_agg(retained ORDER BY name) FROM slots) AS slot_retained
"#;

/// One standby as the primary sees it in `pg_stat_replication`.
#[derive(Clone, Debug, PartialEq)]
pub struct StandbyRow {
    pub name: String,
    pub write_lag: f64,
    pub flush_lag: f64,
    pub replay_lag: f64,
    pub replay_bytes: Option<f64>,
}

/// One row of `pg_replication_slots`.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotRow {
    pub name: String,
    pub active: bool,
    /// NULL restart_lsn (a slot never used, or invalidated): no figure.
    pub retained_bytes: Option<f64>,
}

/// The main statement's row, typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub version: String,
    pub in_recovery: bool,
    pub now: f64,
    pub max_connections: i64,
    pub superuser_reserved: i64,
    pub reserved: i64,
    pub clients: i64,
    pub states: Vec<(String, i64)>,
    /// Most connections first.
    pub applications: Vec<(String, i64)>,
    pub idle_in_xact_max: f64,
    pub longest_query: f64,
    pub lock_waiters: i64,
    pub receive_lsn: Option<u64>,
    pub replay_lsn: Option<u64>,
    pub last_replay: Option<f64>,
    pub started: f64,
    pub receiver_status: Option<String>,
    pub receiver_last_msg: Option<f64>,
    pub receiver_timeout_ms: Option<i64>,
    pub standbys: Vec<StandbyRow>,
    pub slots: Vec<SlotRow>,
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, column: &str) -> Result<T, String> {
    row.try_get(column)
        .map_err(|e| format!("reading column {column}: {e}"))
}

/// NULL array (no rows aggregated) reads as empty.
fn array<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    column: &str,
) -> Result<Vec<T>, String> {
    Ok(get::<Option<Vec<T>>>(row, column)?.unwrap_or_default())
}

fn zip<A, B>(a: Vec<A>, b: Vec<B>, what: &str) -> Result<Vec<(A, B)>, String> {
    if a.len() != b.len() {
        return Err(format!("{what}: arrays of different lengths"));
    }
    Ok(a.into_iter().zip(b).collect())
}

impl Snapshot {
    pub fn from_row(row: &Row) -> Result<Snapshot, String> {
        let states = zip(
            array::<String>(row, "state_names")?,
            array(row, "state_counts")?,
            "states",
        )?;
        let applications = zip(
            array::<String>(row, "app_names")?,
            array(row, "app_counts")?,
            "applications",
        )?;
        let names: Vec<String> = array(row, "standby_names")?;
        let write: Vec<f64> = array(row, "standby_write_lag")?;
        let flush: Vec<f64> = array(row, "standby_flush_lag")?;
        let replay: Vec<f64> = array(row, "standby_replay_lag")?;
        let bytes: Vec<Option<f64>> = array(row, "standby_replay_bytes")?;
        if [write.len(), flush.len(), replay.len(), bytes.len()]
            .iter()
            .any(|&n| n != names.len())
        {
            return Err("standbys: arrays of different lengths".into());
        }
        let standbys = names
            .into_iter()
            .zip(write)
            .zip(flush)
            .zip(replay)
            .zip(bytes)
            .map(
                |((((name, write_lag), flush_lag), replay_lag), replay_bytes)| StandbyRow {
                    name,
                    write_lag,
                    flush_lag,
                    replay_lag,
                    replay_bytes,
                },
            )
            .collect();
        let slot_names: Vec<String> = array(row, "slot_names")?;
        let slot_active: Vec<bool> = array(row, "slot_active")?;
        let slot_retained: Vec<Option<f64>> = array(row, "slot_retained")?;
        if slot_active.len() != slot_names.len() || slot_retained.len() != slot_names.len() {
            return Err("slots: arrays of different lengths".into());
        }
        let slots = slot_names
            .into_iter()
            .zip(slot_active)
            .zip(slot_retained)
            .map(|((name, active), retained_bytes)| SlotRow {
                name,
                active,
                retained_bytes,
            })
            .collect();
        Ok(Snapshot {
            version: get(row, "version")?,
            in_recovery: get(row, "in_recovery")?,
            now: get(row, "now")?,
            max_connections: get(row, "max_connections")?,
            superuser_reserved: get(row, "superuser_reserved")?,
            reserved: get(row, "reserved")?,
            clients: get(row, "clients")?,
            states,
            applications,
            idle_in_xact_max: get::<Option<f64>>(row, "idle_in_xact_max")?
                .unwrap_or(0.0)
                .max(0.0),
            longest_query: get::<Option<f64>>(row, "longest_query")?
                .unwrap_or(0.0)
                .max(0.0),
            lock_waiters: get(row, "lock_waiters")?,
            receive_lsn: get::<Option<PgLsn>>(row, "receive_lsn")?.map(u64::from),
            replay_lsn: get::<Option<PgLsn>>(row, "replay_lsn")?.map(u64::from),
            last_replay: get(row, "last_replay")?,
            started: get(row, "started")?,
            receiver_status: get(row, "receiver_status")?,
            receiver_last_msg: get(row, "receiver_last_msg")?,
            receiver_timeout_ms: get(row, "receiver_timeout_ms")?,
            standbys,
            slots,
        })
    }
}

/// A heartbeat table name, `table` or `schema.table`, quoted for SQL.
/// Validation accepts only plain identifiers, so quoting is for case.
pub fn quote_table(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// Upsert of the one heartbeat row. The table (see the source's docs):
/// `CREATE TABLE vitals_heartbeat (id int PRIMARY KEY, ts timestamptz NOT NULL)`.
pub fn heartbeat_write(table: &str) -> String {
    format!(
        "INSERT INTO {} (id, ts) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts",
        quote_table(table)
    )
}

/// Age of the newest heartbeat, in the reading server's clock.
pub fn heartbeat_read(table: &str) -> String {
    format!(
        "SELECT extract(epoch FROM now() - max(ts))::float8 FROM {}",
        quote_table(table)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_quoted_per_part() {
        assert_eq!(quote_table("vitals_heartbeat"), "\"vitals_heartbeat\"");
        assert_eq!(quote_table("ops.Beat"), "\"ops\".\"Beat\"");
        assert_eq!(quote_table("a\"b"), "\"a\"\"b\"");
        assert!(heartbeat_write("ops.hb").starts_with("INSERT INTO \"ops\".\"hb\" (id, ts)"));
    }
}
