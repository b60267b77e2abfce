//! The statements a PostgreSQL round sends, and the typed snapshot read from
//! the main one. A round is:
//!
//! 1. [`PROBE`] (simple protocol) — the round trip, and the server's version
//!    (the main statement's text depends on it);
//! 2. [`main`] (prepared once per connection) — everything else, one row;
//! 3. with `heartbeat` configured: [`heartbeat_write`] on a primary with
//!    `write: true`, [`heartbeat_read`] otherwise.
//!
//! Works on PostgreSQL 10 and later (`backend_type`, `pg_last_wal_*_lsn`);
//! `reserved_connections` is read where the server has it (16+). The role
//! needs `pg_monitor` to see other sessions' state and the WAL receiver.

use std::collections::BTreeMap;
use tokio_postgres::types::PgLsn;
use tokio_postgres::Row;

/// The probe: a utility statement (no planning, no snapshot) that also
/// tells the server's version, so the main statement can be written for it.
pub const PROBE: &str = "SHOW server_version_num";

/// The major version from `server_version_num` ("150014" → 15, "90624" →
/// 9); 0 when it does not read as a number.
pub fn major_from_version_num(text: &str) -> u32 {
    text.trim().parse::<u32>().map_or(0, |n| n / 10000)
}

/// Everything a round reads, as one row: connections, replication, every
/// database's counters from `pg_stat_database` (cluster-wide: one statement
/// covers them all), WAL position, archiver, checkpoints, autovacuum
/// workers, and whether pg_stat_statements is installed in the connected
/// database (and in which schema). Replication values are NULL where they
/// don't apply (primary vs standby).
///
/// Shaped for what the server pays on a cold backend (the agent's session
/// sleeps between rounds, so every round runs with cold caches):
/// - `pg_stat_get_activity()` copies every backend's status: it runs once,
///   in `act`; the standbys come from `pg_stat_get_wal_senders()` joined to
///   it rather than from `pg_stat_replication`, which would run it again;
/// - each list (states, applications, standbys, slots, databases) is one
///   `json_agg` without ORDER BY: one aggregate per list instead of one
///   sorted `array_agg` per column (a third of the statement's time with
///   50 databases); the agent parses and orders them;
/// - the per-connection figures are one aggregate pass (`c`).
///
/// `now() - state_change` can be slightly negative for a session that
/// changed state after this statement began; the reader clamps at 0.
const MAIN_TEMPLATE: &str = r#"
WITH act AS (
    SELECT pid, backend_type, state, application_name, state_change, query_start, wait_event_type
    FROM pg_stat_get_activity(NULL)
), client AS (
    SELECT * FROM act WHERE backend_type = 'client backend'
), pos AS (
    -- pg_current_wal_lsn() raises an error during recovery (PostgreSQL 10+).
    SELECT CASE WHEN pg_is_in_recovery()
                THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                ELSE pg_current_wal_lsn() END AS lsn
), states AS (
    SELECT state, count(*) AS n FROM client WHERE state IS NOT NULL GROUP BY state
), apps AS (
    SELECT coalesce(application_name, '') AS name, count(*) AS n FROM client GROUP BY 1
), rep AS (
    SELECT a.application_name AS name,
           coalesce(extract(epoch FROM w.write_lag), 0)::float8 AS write_lag,
           coalesce(extract(epoch FROM w.flush_lag), 0)::float8 AS flush_lag,
           coalesce(extract(epoch FROM w.replay_lag), 0)::float8 AS replay_lag,
           pg_wal_lsn_diff((SELECT lsn FROM pos), w.replay_lsn)::float8 AS replay_bytes
    FROM pg_stat_get_wal_senders() w JOIN act a ON a.pid = w.pid
), slots AS (
    SELECT slot_name::text AS name, active,
           pg_wal_lsn_diff((SELECT lsn FROM pos), restart_lsn)::float8 AS retained_bytes
    FROM pg_replication_slots
), db AS (
    SELECT datname::text AS name,
           xact_commit::float8 AS commits, xact_rollback::float8 AS rollbacks,
           blks_read::float8 AS blks_read, blks_hit::float8 AS blks_hit,
           deadlocks::float8 AS deadlocks, temp_files::float8 AS temp_files,
           temp_bytes::float8 AS temp_bytes, conflicts::float8 AS conflicts,
           coalesce(checksum_failures, 0)::float8 AS checksum_failures
    FROM pg_stat_database
    WHERE datname IS NOT NULL
)
SELECT
    current_setting('server_version') AS version,
    pg_is_in_recovery() AS in_recovery,
    extract(epoch FROM now())::float8 AS now,
    current_setting('max_connections')::int8 AS max_connections,
    current_setting('superuser_reserved_connections')::int8 AS superuser_reserved,
    coalesce(current_setting('reserved_connections', true), '0')::int8 AS reserved,
    c.clients, c.idle_in_xact_max, c.longest_query, c.lock_waiters,
    (SELECT json_agg(states) FROM states)::text AS states,
    (SELECT json_agg(apps) FROM apps)::text AS applications,
    pg_last_wal_receive_lsn() AS receive_lsn,
    pg_last_wal_replay_lsn() AS replay_lsn,
    extract(epoch FROM pg_last_xact_replay_timestamp())::float8 AS last_replay,
    extract(epoch FROM pg_postmaster_start_time())::float8 AS started,
    r.status AS receiver_status,
    extract(epoch FROM r.last_msg_receipt_time)::float8 AS receiver_last_msg,
    -- current_setting() and not pg_settings, which builds every setting
    -- (about 1 ms a round); the value carries its unit ("1min").
    (extract(epoch FROM current_setting('wal_receiver_timeout')::interval) * 1000)::int8 AS receiver_timeout_ms,
    (SELECT json_agg(rep) FROM rep)::text AS standbys,
    (SELECT json_agg(slots) FROM slots)::text AS slots,
    (SELECT json_agg(db) FROM db)::text AS databases,
    CASE WHEN pg_is_in_recovery() THEN NULL
         ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 END AS wal_bytes,
    a.archived_count::float8 AS archived,
    a.failed_count::float8 AS archive_failed,
    extract(epoch FROM now() - a.last_failed_time)::float8 AS archive_failed_age,
    extract(epoch FROM now() - a.last_archived_time)::float8 AS archived_age,
    {checkpoints}
    c.autovacuum_workers,
    current_setting('autovacuum_max_workers')::int8 AS autovacuum_max_workers,
    x.extversion AS pgss_version,
    x.schema AS pgss_schema
FROM pg_stat_archiver a
CROSS JOIN {checkpointer} b
CROSS JOIN (
    SELECT count(*) FILTER (WHERE backend_type = 'client backend') AS clients,
           (max(extract(epoch FROM now() - state_change)) FILTER (
               WHERE backend_type = 'client backend'
                 AND state IN ('idle in transaction', 'idle in transaction (aborted)')))::float8 AS idle_in_xact_max,
           (max(extract(epoch FROM now() - query_start)) FILTER (
               WHERE backend_type = 'client backend' AND state = 'active'
                 AND pid <> pg_backend_pid()))::float8 AS longest_query,
           count(*) FILTER (WHERE backend_type = 'client backend' AND wait_event_type = 'Lock') AS lock_waiters,
           count(*) FILTER (WHERE backend_type = 'autovacuum worker') AS autovacuum_workers
    FROM act
) c
LEFT JOIN (SELECT status, last_msg_receipt_time FROM pg_stat_wal_receiver LIMIT 1) r ON true
LEFT JOIN (
    SELECT e.extversion, n.nspname::text AS schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_stat_statements'
) x ON true
"#;

/// The main statement for a server of major version `major`: PostgreSQL 17
/// moved the checkpoint counters from pg_stat_bgwriter to
/// pg_stat_checkpointer (num_timed, num_requested).
pub fn main(major: u32) -> String {
    let (checkpoints, checkpointer) = if major >= 17 {
        (
            "b.num_timed::float8 AS checkpoints_timed, b.num_requested::float8 AS checkpoints_requested,",
            "pg_stat_checkpointer",
        )
    } else {
        (
            "b.checkpoints_timed::float8 AS checkpoints_timed, b.checkpoints_req::float8 AS checkpoints_requested,",
            "pg_stat_bgwriter",
        )
    };
    MAIN_TEMPLATE
        .replace("{checkpoints}", checkpoints)
        .replace("{checkpointer}", checkpointer)
}

/// One standby as the primary sees it (`pg_stat_replication`'s figures).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct StandbyRow {
    pub name: String,
    pub write_lag: f64,
    pub flush_lag: f64,
    pub replay_lag: f64,
    pub replay_bytes: Option<f64>,
}

/// One row of `pg_replication_slots`.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
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

/// A list the statement aggregated with `json_agg` (sent as text; NULL
/// when empty).
fn list<T: serde::de::DeserializeOwned>(row: &Row, column: &str) -> Result<Vec<T>, String> {
    match get::<Option<String>>(row, column)? {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text).map_err(|e| format!("reading {column}: {e}")),
    }
}

#[derive(serde::Deserialize)]
struct Count {
    #[serde(alias = "state")]
    name: String,
    n: i64,
}

impl Snapshot {
    pub fn from_row(row: &Row) -> Result<Snapshot, String> {
        let counts = |column| -> Result<Vec<(String, i64)>, String> {
            Ok(list::<Count>(row, column)?
                .into_iter()
                .map(|c| (c.name, c.n))
                .collect())
        };
        let mut states = counts("states")?;
        states.sort();
        let mut applications = counts("applications")?;
        applications.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut standbys: Vec<StandbyRow> = list(row, "standbys")?;
        standbys.sort_by(|a, b| a.name.cmp(&b.name));
        let mut slots: Vec<SlotRow> = list(row, "slots")?;
        slots.sort_by(|a, b| a.name.cmp(&b.name));
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

// ---------------------------------------------------------------------
// The deeper figures: pg_stat_database, WAL, archiver and checkpoints come
// with the main statement ([`Activity`] reads them from its row);
// pg_stat_statements once per `statements.interval` when it is installed
// ([`statements`], plus [`statement_texts`] only when a statement joins the
// top list); wraparound, the xmin horizon, dead tuples and unused indexes
// on the slower catalog interval ([`CATALOG_TEMPLATE`]).
// ---------------------------------------------------------------------

/// Cumulative counters of one database in `pg_stat_database`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Deserialize)]
pub struct DatabaseCounters {
    pub commits: f64,
    pub rollbacks: f64,
    pub blks_read: f64,
    pub blks_hit: f64,
    pub deadlocks: f64,
    pub temp_files: f64,
    pub temp_bytes: f64,
    pub conflicts: f64,
    pub checksum_failures: f64,
}

/// The deeper half of the main statement's row, typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Activity {
    pub now: f64,
    /// By database name.
    pub databases: Vec<(String, DatabaseCounters)>,
    /// pg_current_wal_lsn() - '0/0' on a primary; None on a standby.
    pub wal_bytes: Option<f64>,
    pub archived: f64,
    pub archive_failed: f64,
    pub archive_failed_age: Option<f64>,
    pub archived_age: Option<f64>,
    pub checkpoints_timed: f64,
    pub checkpoints_requested: f64,
    pub autovacuum_workers: i64,
    pub autovacuum_max_workers: i64,
    /// pg_stat_statements' extversion and schema, when installed in the
    /// connected database.
    pub pgss: Option<(String, String)>,
}

#[derive(serde::Deserialize)]
struct DatabaseRow {
    name: String,
    #[serde(flatten)]
    counters: DatabaseCounters,
}

impl Activity {
    pub fn from_row(row: &Row) -> Result<Activity, String> {
        let mut databases: Vec<(String, DatabaseCounters)> = list::<DatabaseRow>(row, "databases")?
            .into_iter()
            .map(|d| (d.name, d.counters))
            .collect();
        databases.sort_by(|a, b| a.0.cmp(&b.0));
        let version: Option<String> = get(row, "pgss_version")?;
        let schema: Option<String> = get(row, "pgss_schema")?;
        Ok(Activity {
            now: get(row, "now")?,
            databases,
            wal_bytes: get(row, "wal_bytes")?,
            archived: get(row, "archived")?,
            archive_failed: get(row, "archive_failed")?,
            archive_failed_age: get(row, "archive_failed_age")?,
            archived_age: get(row, "archived_age")?,
            checkpoints_timed: get(row, "checkpoints_timed")?,
            checkpoints_requested: get(row, "checkpoints_requested")?,
            autovacuum_workers: get(row, "autovacuum_workers")?,
            autovacuum_max_workers: get(row, "autovacuum_max_workers")?,
            pgss: version.zip(schema),
        })
    }
}

/// Which pg_stat_statements columns the installed version has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgssFlavor {
    /// 1.8 (PostgreSQL 13): total_exec_time, no pg_stat_statements_info.
    V18,
    /// 1.9 and later (PostgreSQL 14+): pg_stat_statements_info (dealloc,
    /// stats_reset).
    V19,
}

/// The flavor of pg_stat_statements `extversion`, None for versions before
/// 1.8 (total_time instead of total_exec_time: not supported).
pub fn pgss_flavor(extversion: &str) -> Option<PgssFlavor> {
    let mut parts = extversion.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    match (major, minor) {
        (1, m) if m >= 9 => Some(PgssFlavor::V19),
        (1, 8) => Some(PgssFlavor::V18),
        (m, _) if m >= 2 => Some(PgssFlavor::V19),
        _ => None,
    }
}

/// Every entry's cumulative counters, read with `pg_stat_statements(false)`:
/// without the query texts, which live in a file the server would
/// otherwise read on every call. One row per entry (user, database,
/// queryid, top level), unsorted and not grouped: the agent sums them per
/// queryid (so the series never multiply by role or database), which
/// costs the server nothing, where a GROUP BY doubles the statement's time.
pub fn statements(schema: &str, flavor: PgssFlavor) -> String {
    let schema = quote_table(schema);
    let (info, from_info) = match flavor {
        PgssFlavor::V19 => (
            "i.dealloc AS dealloc, extract(epoch FROM i.stats_reset)::float8 AS stats_reset"
                .to_owned(),
            format!(" CROSS JOIN {schema}.pg_stat_statements_info i"),
        ),
        PgssFlavor::V18 => (
            "NULL::int8 AS dealloc, NULL::float8 AS stats_reset".to_owned(),
            String::new(),
        ),
    };
    format!(
        r#"
SELECT s.queryid, s.calls, s.total_exec_time AS exec_ms, s.max_exec_time AS max_ms, s.rows,
       s.shared_blks_hit AS blks_hit, s.shared_blks_read AS blks_read, {info}
FROM {schema}.pg_stat_statements(false) s{from_info}
WHERE s.queryid IS NOT NULL
"#
    )
}

/// The normalised text (literals already replaced by `$n` by the
/// extension) of the statements in `$1`, whitespace collapsed and cut to
/// 200 characters. Sent only when a statement joins the top list: reading
/// texts makes the server read its query-text file.
pub fn statement_texts(schema: &str) -> String {
    format!(
        "SELECT DISTINCT ON (queryid) queryid, left(regexp_replace(query, '\\s+', ' ', 'g'), 200) \
         FROM {}.pg_stat_statements(true) WHERE queryid = ANY($1) ORDER BY queryid",
        quote_table(schema)
    )
}

/// Cumulative counters of one statement (one queryid).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StatementCounters {
    pub calls: f64,
    pub exec_ms: f64,
    pub rows: f64,
    pub blks_hit: f64,
    pub blks_read: f64,
}

/// The statements statement's row, typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Statements {
    pub dealloc: Option<i64>,
    pub stats_reset: Option<f64>,
    /// (queryid, counters, max_exec_time in ms since the last reset).
    pub rows: Vec<(i64, StatementCounters, f64)>,
}

impl Statements {
    /// From the rows of [`statements`]: one per entry, each carrying the
    /// extension's dealloc and stats_reset; summed per queryid (the max is
    /// the largest of the entries').
    pub fn from_rows(rows: &[Row]) -> Result<Statements, String> {
        let mut out = Statements::default();
        let mut by_id: BTreeMap<i64, (StatementCounters, f64)> = BTreeMap::new();
        for row in rows {
            let entry = StatementCounters {
                calls: get::<i64>(row, "calls")? as f64,
                exec_ms: get(row, "exec_ms")?,
                rows: get::<i64>(row, "rows")? as f64,
                blks_hit: get::<i64>(row, "blks_hit")? as f64,
                blks_read: get::<i64>(row, "blks_read")? as f64,
            };
            let max_ms: f64 = get(row, "max_ms")?;
            let (sum, max) = by_id.entry(get(row, "queryid")?).or_default();
            sum.calls += entry.calls;
            sum.exec_ms += entry.exec_ms;
            sum.rows += entry.rows;
            sum.blks_hit += entry.blks_hit;
            sum.blks_read += entry.blks_read;
            *max = max.max(max_ms);
            out.dealloc = get(row, "dealloc")?;
            out.stats_reset = get(row, "stats_reset")?;
        }
        out.rows = by_id
            .into_iter()
            .map(|(id, (sum, max))| (id, sum, max))
            .collect();
        Ok(out)
    }
}

/// How many tables (by dead tuples) and unused indexes (by size) the
/// catalog statement returns.
pub const TOP_TABLES: usize = 10;
pub const TOP_UNUSED_INDEXES: usize = 10;

/// The catalog statement, sent every `catalog_interval`: wraparound age of
/// every database (pg_database, cluster-wide), the oldest xmin holder of
/// each kind (pg_stat_activity.backend_xmin, pg_replication_slots xmin and
/// catalog_xmin, walsenders' hot-standby feedback, pg_prepared_xacts), and
/// the connected database's tables and indexes ([`database_catalog`]).
pub fn catalog() -> String {
    format!(
        "WITH {SHARED_CTES}, {PER_DATABASE_CTES}\nSELECT {SHARED_COLUMNS}, {PER_DATABASE_COLUMNS}"
    )
    .replace("{top_tables}", &TOP_TABLES.to_string())
    .replace("{top_indexes}", &TOP_UNUSED_INDEXES.to_string())
}

/// The per-database half of the catalog, for each of `catalog_databases`
/// over its own connection (pg_stat_user_tables and pg_stat_user_indexes
/// only describe the database a session is connected to): the tables with
/// the most dead tuples and the indexes never scanned. Index sizes are
/// pg_class.relpages × block_size: no lock is taken on any index
/// (pg_relation_size() would take one per index and wait behind DDL).
/// Unique and primary-key indexes are not counted as unused: they enforce a
/// constraint even when no query scans them.
pub fn database_catalog() -> String {
    format!("WITH {PER_DATABASE_CTES}\nSELECT {PER_DATABASE_COLUMNS}")
        .replace("{top_tables}", &TOP_TABLES.to_string())
        .replace("{top_indexes}", &TOP_UNUSED_INDEXES.to_string())
}

const SHARED_CTES: &str = r#"
dbs AS (
    SELECT datname::text AS name, age(datfrozenxid)::float8 AS xid_age,
           mxid_age(datminmxid)::float8 AS mxid_age
    FROM pg_database
), holders AS (
    SELECT 'transaction' AS kind, age(backend_xmin)::float8 AS xid_age,
           extract(epoch FROM now() - xact_start)::float8 AS seconds, NULL::text AS xmin
    FROM pg_stat_activity
    WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid() AND backend_type <> 'walsender'
    UNION ALL
    SELECT 'replication', age(backend_xmin)::float8, NULL, backend_xmin::text
    FROM pg_stat_activity
    WHERE backend_xmin IS NOT NULL AND backend_type = 'walsender'
    UNION ALL
    SELECT 'replication', age(x)::float8, NULL, x::text
    FROM pg_replication_slots, LATERAL (VALUES (xmin), (catalog_xmin)) AS v(x)
    WHERE x IS NOT NULL
    UNION ALL
    SELECT 'prepared_transaction', age(transaction)::float8,
           extract(epoch FROM now() - prepared)::float8, NULL
    FROM pg_prepared_xacts
), oldest AS (
    SELECT DISTINCT ON (kind) kind, xid_age, seconds, xmin
    FROM holders
    ORDER BY kind, xid_age DESC, seconds DESC NULLS LAST
)"#;

const SHARED_COLUMNS: &str = r#"
    (SELECT json_agg(dbs ORDER BY name) FROM dbs)::text AS wraparound,
    (SELECT json_agg(oldest ORDER BY kind) FROM oldest)::text AS holders"#;

const PER_DATABASE_CTES: &str = r#"
tables AS (
    SELECT schemaname || '.' || relname AS name, n_dead_tup::float8 AS dead,
           n_live_tup::float8 AS live,
           extract(epoch FROM now() - greatest(last_vacuum, last_autovacuum))::float8 AS vacuum_age,
           extract(epoch FROM now() - greatest(last_analyze, last_autoanalyze))::float8 AS analyze_age
    FROM pg_stat_user_tables
    WHERE n_dead_tup > 0
    ORDER BY n_dead_tup DESC, 1
    LIMIT {top_tables}
), unused AS (
    SELECT s.schemaname || '.' || s.indexrelname AS name,
           s.schemaname || '.' || s.relname AS "table",
           c.relpages::float8 * current_setting('block_size')::float8 AS bytes
    FROM pg_stat_user_indexes s
    JOIN pg_index i ON i.indexrelid = s.indexrelid
    JOIN pg_class c ON c.oid = s.indexrelid
    WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
), unused_top AS (
    SELECT * FROM unused ORDER BY bytes DESC, name LIMIT {top_indexes}
)"#;

const PER_DATABASE_COLUMNS: &str = r#"
    current_database()::text AS database,
    (SELECT json_agg(tables ORDER BY dead DESC, name) FROM tables)::text AS tables,
    (SELECT count(*) FROM unused) AS unused_indexes,
    (SELECT coalesce(sum(bytes), 0)::float8 FROM unused) AS unused_index_bytes,
    (SELECT json_agg(unused_top ORDER BY bytes DESC, name) FROM unused_top)::text AS unused_top"#;

/// The oldest xmin holder of one kind.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct XminHolder {
    /// `transaction`, `replication` or `prepared_transaction`.
    pub kind: String,
    /// age(xmin), in transactions.
    pub xid_age: f64,
    /// now() - xact_start (transaction) or now() - prepared; None for
    /// replication, which PostgreSQL does not date.
    pub seconds: Option<f64>,
    /// The xmin itself (replication only), so the agent can date it.
    pub xmin: Option<String>,
}

/// A table with dead tuples (pg_stat_user_tables).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct TableRow {
    pub name: String,
    pub dead: f64,
    pub live: f64,
    pub vacuum_age: Option<f64>,
    pub analyze_age: Option<f64>,
}

/// An index never scanned (pg_stat_user_indexes.idx_scan = 0).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnusedIndex {
    pub name: String,
    pub table: String,
    pub bytes: f64,
}

/// One database's tables and indexes (the per-database half of the
/// catalog).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DatabaseCatalog {
    pub database: String,
    pub tables: Vec<TableRow>,
    pub unused_indexes: i64,
    pub unused_index_bytes: f64,
    pub unused_top: Vec<UnusedIndex>,
}

/// The catalog statement's row, typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    /// (database, age(datfrozenxid), mxid_age(datminmxid)).
    pub wraparound: Vec<(String, f64, f64)>,
    pub holders: Vec<XminHolder>,
    /// The connected database's tables and indexes.
    pub own: DatabaseCatalog,
}

#[derive(serde::Deserialize)]
struct Wraparound {
    name: String,
    xid_age: f64,
    mxid_age: f64,
}

impl Catalog {
    pub fn from_row(row: &Row) -> Result<Catalog, String> {
        let wraparound = list::<Wraparound>(row, "wraparound")?
            .into_iter()
            .map(|w| (w.name, w.xid_age, w.mxid_age))
            .collect();
        let holders = list::<XminHolder>(row, "holders")?
            .into_iter()
            .map(|h| XminHolder {
                seconds: h.seconds.map(|s| s.max(0.0)),
                ..h
            })
            .collect();
        Ok(Catalog {
            wraparound,
            holders,
            own: DatabaseCatalog::from_row(row)?,
        })
    }
}

impl DatabaseCatalog {
    /// From a row of [`catalog`] or [`database_catalog`] (same columns).
    pub fn from_row(row: &Row) -> Result<DatabaseCatalog, String> {
        let tables = list::<TableRow>(row, "tables")?
            .into_iter()
            .map(|t| TableRow {
                vacuum_age: t.vacuum_age.map(|a| a.max(0.0)),
                analyze_age: t.analyze_age.map(|a| a.max(0.0)),
                ..t
            })
            .collect();
        Ok(DatabaseCatalog {
            database: get(row, "database")?,
            tables,
            unused_indexes: get(row, "unused_indexes")?,
            unused_index_bytes: get(row, "unused_index_bytes")?,
            unused_top: list(row, "unused_top")?,
        })
    }
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

    #[test]
    fn versions_pick_the_right_columns() {
        assert_eq!(major_from_version_num("150014"), 15);
        assert_eq!(major_from_version_num("170000\n"), 17);
        assert_eq!(major_from_version_num("90624"), 9);
        assert_eq!(major_from_version_num("x"), 0);
        assert!(main(17).contains("pg_stat_checkpointer"));
        assert!(main(15).contains("pg_stat_bgwriter"));
        assert!(!main(15).contains('{'));
        // One copy of every backend's status per round.
        assert_eq!(main(15).matches("pg_stat_get_activity").count(), 1);
        assert!(!main(15).contains("pg_stat_activity"));
        assert!(!main(15).contains("pg_stat_replication"));
        assert_eq!(pgss_flavor("1.10"), Some(PgssFlavor::V19));
        assert_eq!(pgss_flavor("1.9"), Some(PgssFlavor::V19));
        assert_eq!(pgss_flavor("1.8"), Some(PgssFlavor::V18));
        assert_eq!(pgss_flavor("1.7"), None);
        assert!(
            statements("public", PgssFlavor::V19).contains("\"public\".pg_stat_statements_info")
        );
        assert!(!statements("public", PgssFlavor::V18).contains("pg_stat_statements_info"));
        assert!(catalog().contains("LIMIT 10"));
        assert!(!catalog().contains('{'));
        assert!(catalog().contains("FROM pg_stat_user_tables"));
        assert!(database_catalog().contains("FROM pg_stat_user_tables"));
        assert!(!database_catalog().contains('{'));
        // Nothing cluster-wide in the per-database half.
        assert!(!database_catalog().contains("pg_database"));
        assert!(!database_catalog().contains("pg_stat_activity"));
    }
}
