//! Every metric family the postgres source exports, as [`Desc`] constants.
//! All carry the `target` label (the configured name).

use crate::metrics::Desc;

pub const UP: Desc = Desc::gauge(
    "vitals_pg_up",
    &["target"],
    "1 when the last round connected and queried the server, 0 when it could not (down, refused, authentication failed, timed out).",
);
pub const INFO: Desc = Desc::gauge(
    "vitals_pg_info",
    &["target", "version"],
    "Always 1; the version label is the server's server_version setting (first word).",
);
pub const IN_RECOVERY: Desc = Desc::gauge(
    "vitals_pg_in_recovery",
    &["target"],
    "1 when the server is a standby (pg_is_in_recovery()), 0 on a primary.",
);
pub const PROBE_SECONDS: Desc = Desc::gauge(
    "vitals_pg_probe_seconds",
    &["target"],
    "Round-trip time of the probe statement (SHOW server_version_num) on the agent's own connection.",
);
pub const CONNECTIONS: Desc = Desc::gauge(
    "vitals_pg_connections",
    &["target", "state"],
    "Client backends by state, from pg_stat_activity (backend_type = 'client backend').",
);
pub const CONNECTIONS_BY_APPLICATION: Desc = Desc::gauge(
    "vitals_pg_connections_by_application",
    &["target", "application_name"],
    "Client backends by application_name from pg_stat_activity: the most frequent names, the rest summed as \"other\".",
);
pub const MAX_CONNECTIONS: Desc = Desc::gauge(
    "vitals_pg_max_connections",
    &["target"],
    "The server's max_connections setting.",
);
pub const RESERVED_CONNECTIONS: Desc = Desc::gauge(
    "vitals_pg_reserved_connections",
    &["target"],
    "Connection slots ordinary roles cannot use: superuser_reserved_connections plus reserved_connections (PostgreSQL 16+).",
);
pub const CONNECTION_UTILIZATION_RATIO: Desc = Desc::gauge(
    "vitals_pg_connection_utilization_ratio",
    &["target"],
    "Client backends in pg_stat_activity divided by max_connections minus the reserved slots.",
);
pub const POOL_UTILIZATION_RATIO: Desc = Desc::gauge(
    "vitals_pg_pool_utilization_ratio",
    &["target", "application_name"],
    "Connections of this application_name in pg_stat_activity divided by the pool size configured for it in vitals (sources.postgres[].pools).",
);
pub const IDLE_IN_TRANSACTION_MAX_SECONDS: Desc = Desc::gauge(
    "vitals_pg_idle_in_transaction_max_seconds",
    &["target"],
    "Longest time a session has been idle in a transaction (now() - state_change in pg_stat_activity), 0 when none is; a leaked connection shows here.",
);
pub const LONGEST_QUERY_SECONDS: Desc = Desc::gauge(
    "vitals_pg_longest_query_seconds",
    &["target"],
    "Longest running active statement (now() - query_start in pg_stat_activity, the agent's own excluded), 0 when none runs.",
);
pub const LOCK_WAITERS: Desc = Desc::gauge(
    "vitals_pg_lock_waiters",
    &["target"],
    "Client backends waiting on a heavyweight lock (wait_event_type = 'Lock' in pg_stat_activity).",
);
pub const REPLICATION_LAG_SECONDS: Desc = Desc::gauge(
    "vitals_pg_replication_lag_seconds",
    &["target"],
    "Standby: 0 when everything received is replayed and the WAL receiver is streaming, otherwise how long the oldest unreplayed WAL has been waiting (upper bound; see the README).",
);
pub const REPLICATION_LAG_BYTES: Desc = Desc::gauge(
    "vitals_pg_replication_lag_bytes",
    &["target"],
    "Standby: WAL received but not replayed yet, pg_last_wal_receive_lsn() - pg_last_wal_replay_lsn() (0 when replay is ahead).",
);
pub const REPLICATION_LAST_MESSAGE_AGE_SECONDS: Desc = Desc::gauge(
    "vitals_pg_replication_last_message_age_seconds",
    &["target"],
    "Standby: now() - pg_stat_wal_receiver.last_msg_receipt_time, the age of the last message from the primary.",
);
pub const REPLICATION_STREAM_UP: Desc = Desc::gauge(
    "vitals_pg_replication_stream_up",
    &["target"],
    "Standby: 1 when pg_stat_wal_receiver.status is streaming and a message arrived within wal_receiver_timeout, else 0.",
);
pub const STANDBY_WRITE_LAG_SECONDS: Desc = Desc::gauge(
    "vitals_pg_standby_write_lag_seconds",
    &["target", "standby"],
    "Primary: write_lag of this standby in pg_stat_replication (0 when caught up, where PostgreSQL shows NULL).",
);
pub const STANDBY_FLUSH_LAG_SECONDS: Desc = Desc::gauge(
    "vitals_pg_standby_flush_lag_seconds",
    &["target", "standby"],
    "Primary: flush_lag of this standby in pg_stat_replication (0 when caught up, where PostgreSQL shows NULL).",
);
pub const STANDBY_REPLAY_LAG_SECONDS: Desc = Desc::gauge(
    "vitals_pg_standby_replay_lag_seconds",
    &["target", "standby"],
    "Primary: replay_lag of this standby in pg_stat_replication (0 when caught up, where PostgreSQL shows NULL).",
);
pub const STANDBY_REPLAY_LAG_BYTES: Desc = Desc::gauge(
    "vitals_pg_standby_replay_lag_bytes",
    &["target", "standby"],
    "Primary: pg_current_wal_lsn() - replay_lsn of this standby in pg_stat_replication.",
);
pub const SLOT_RETAINED_BYTES: Desc = Desc::gauge(
    "vitals_pg_slot_retained_bytes",
    &["target", "slot"],
    "WAL a replication slot keeps from being removed: current WAL position - restart_lsn, from pg_replication_slots.",
);
pub const SLOT_ACTIVE: Desc = Desc::gauge(
    "vitals_pg_slot_active",
    &["target", "slot"],
    "1 when a process is using the replication slot (pg_replication_slots.active), else 0.",
);
pub const HEARTBEAT_LAG_SECONDS: Desc = Desc::gauge(
    "vitals_pg_heartbeat_lag_seconds",
    &["target"],
    "Age of the newest row of the heartbeat table written by the agent on the primary: now() on this server minus max(ts).",
);

// The deeper figures (see stats.rs and emit.rs).
pub const STATEMENTS_AVAILABLE: Desc = Desc::gauge(
    "vitals_pg_statements_available",
    &["target"],
    "1 when pg_stat_statements is installed in the connected database and readable, 0 when it is not (the reason is in /status); absent when statements.top is 0.",
);
pub const STATEMENTS_TRACKED: Desc = Desc::gauge(
    "vitals_pg_statements_tracked",
    &["target"],
    "Distinct queryids in pg_stat_statements at the last round (entries summed over users and databases).",
);
pub const STATEMENTS_DEALLOC_TOTAL: Desc = Desc::counter(
    "vitals_pg_statements_dealloc_total",
    &["target"],
    "Times pg_stat_statements evicted its least-used entries because pg_stat_statements.max was reached, from pg_stat_statements_info.dealloc (PostgreSQL 14+).",
);
pub const STATEMENT_CALLS_PER_SECOND: Desc = Desc::gauge(
    "vitals_pg_statement_calls_per_second",
    &["target", "queryid", "query"],
    "Calls per second of this statement over the last statements.interval, from the increase of pg_stat_statements.calls; queryid=\"other\" sums every statement outside the top list.",
);
pub const STATEMENT_MEAN_SECONDS: Desc = Desc::gauge(
    "vitals_pg_statement_mean_seconds",
    &["target", "queryid", "query"],
    "Mean execution time of this statement over the last statements.interval: increase of pg_stat_statements.total_exec_time divided by the increase of calls (absent when it was not called in the interval).",
);
pub const STATEMENT_MAX_SECONDS: Desc = Desc::gauge(
    "vitals_pg_statement_max_seconds",
    &["target", "queryid", "query"],
    "Longest execution of this statement since pg_stat_statements was last reset (max_exec_time); for queryid=\"other\", the longest of the rest.",
);
pub const STATEMENT_EXEC_SECONDS_PER_SECOND: Desc = Desc::gauge(
    "vitals_pg_statement_exec_seconds_per_second",
    &["target", "queryid", "query"],
    "Execution time this statement used per second of the last statements.interval (increase of pg_stat_statements.total_exec_time over its length): the ranking of the top list.",
);
pub const STATEMENT_ROWS_PER_SECOND: Desc = Desc::gauge(
    "vitals_pg_statement_rows_per_second",
    &["target", "queryid", "query"],
    "Rows returned or affected per second over the last statements.interval, from the increase of pg_stat_statements.rows.",
);
pub const STATEMENT_SHARED_BLOCKS_HIT_PER_SECOND: Desc = Desc::gauge(
    "vitals_pg_statement_shared_blocks_hit_per_second",
    &["target", "queryid", "query"],
    "Shared buffer hits per second over the last statements.interval, from the increase of pg_stat_statements.shared_blks_hit.",
);
pub const STATEMENT_SHARED_BLOCKS_READ_PER_SECOND: Desc = Desc::gauge(
    "vitals_pg_statement_shared_blocks_read_per_second",
    &["target", "queryid", "query"],
    "Blocks read from outside shared buffers per second over the last statements.interval, from the increase of pg_stat_statements.shared_blks_read.",
);
pub const DATABASE_CACHE_HIT_RATIO: Desc = Desc::gauge(
    "vitals_pg_database_cache_hit_ratio",
    &["target", "database"],
    "Shared buffer hit ratio over the last round, blks_hit / (blks_hit + blks_read) increases in pg_stat_database; absent when the round saw fewer than 1000 block accesses.",
);
pub const DATABASE_ROLLBACK_RATIO: Desc = Desc::gauge(
    "vitals_pg_database_rollback_ratio",
    &["target", "database"],
    "Rolled-back share of the transactions that ended in the last round, xact_rollback / (xact_commit + xact_rollback) increases in pg_stat_database; absent when none ended.",
);
pub const DATABASE_COMMITS_PER_SECOND: Desc = Desc::gauge(
    "vitals_pg_database_commits_per_second",
    &["target", "database"],
    "Transactions committed per second over the last round, from the increase of pg_stat_database.xact_commit.",
);
pub const DATABASE_ROLLBACKS_PER_SECOND: Desc = Desc::gauge(
    "vitals_pg_database_rollbacks_per_second",
    &["target", "database"],
    "Transactions rolled back per second over the last round, from the increase of pg_stat_database.xact_rollback.",
);
pub const DATABASE_COMMITS_TOTAL: Desc = Desc::counter(
    "vitals_pg_database_commits_total",
    &["target", "database"],
    "Transactions committed, pg_stat_database.xact_commit (for database=\"other\", the agent's sum of the rest's increases).",
);
pub const DATABASE_ROLLBACKS_TOTAL: Desc = Desc::counter(
    "vitals_pg_database_rollbacks_total",
    &["target", "database"],
    "Transactions rolled back, pg_stat_database.xact_rollback (for database=\"other\", the agent's sum of the rest's increases).",
);
pub const DATABASE_DEADLOCKS_TOTAL: Desc = Desc::counter(
    "vitals_pg_database_deadlocks_total",
    &["target", "database"],
    "Deadlocks detected, pg_stat_database.deadlocks (for database=\"other\", the agent's sum of the rest's increases).",
);
pub const DATABASE_TEMP_FILES_TOTAL: Desc = Desc::counter(
    "vitals_pg_database_temp_files_total",
    &["target", "database"],
    "Temporary files created by queries, pg_stat_database.temp_files (for database=\"other\", the agent's sum of the rest's increases).",
);
pub const DATABASE_TEMP_BYTES_TOTAL: Desc = Desc::counter(
    "vitals_pg_database_temp_bytes_total",
    &["target", "database"],
    "Bytes written to temporary files by queries, pg_stat_database.temp_bytes (for database=\"other\", the agent's sum of the rest's increases).",
);
pub const DATABASE_CONFLICTS_TOTAL: Desc = Desc::counter(
    "vitals_pg_database_conflicts_total",
    &["target", "database"],
    "Queries cancelled by recovery conflicts on a standby, pg_stat_database.conflicts (for database=\"other\", the agent's sum of the rest's increases).",
);
pub const DATABASE_CHECKSUM_FAILURES_TOTAL: Desc = Desc::counter(
    "vitals_pg_database_checksum_failures_total",
    &["target", "database"],
    "Data page checksum failures, pg_stat_database.checksum_failures (0 when checksums are off; for database=\"other\", the agent's sum of the rest's increases).",
);
pub const DATABASE_XID_AGE: Desc = Desc::gauge(
    "vitals_pg_database_xid_age",
    &["target", "database"],
    "age(datfrozenxid) from pg_database: transactions since the database was last fully frozen; database=\"other\" is the oldest of the rest.",
);
pub const DATABASE_WRAPAROUND_RATIO: Desc = Desc::gauge(
    "vitals_pg_database_wraparound_ratio",
    &["target", "database"],
    "age(datfrozenxid) from pg_database as a fraction of 2^31, the transaction ID wraparound limit; database=\"other\" is the oldest of the rest.",
);
pub const DATABASE_MULTIXACT_AGE: Desc = Desc::gauge(
    "vitals_pg_database_multixact_age",
    &["target", "database"],
    "mxid_age(datminmxid) from pg_database: multixacts since the database was last fully frozen; database=\"other\" is the oldest of the rest.",
);
pub const DATABASE_MULTIXACT_WRAPAROUND_RATIO: Desc = Desc::gauge(
    "vitals_pg_database_multixact_wraparound_ratio",
    &["target", "database"],
    "mxid_age(datminmxid) from pg_database as a fraction of 2^31, the multixact wraparound limit; database=\"other\" is the oldest of the rest.",
);
pub const OLDEST_XMIN_AGE_SECONDS: Desc = Desc::gauge(
    "vitals_pg_oldest_xmin_age_seconds",
    &["target", "kind"],
    "Age of the oldest holder of the xmin horizon of each kind: transaction (now() - xact_start of a backend with backend_xmin in pg_stat_activity), prepared_transaction (now() - prepared in pg_prepared_xacts), replication (slot xmin/catalog_xmin or a standby's feedback, dated from when the agent first saw that xmin); 0 when none holds one.",
);
pub const OLDEST_XMIN_AGE_XIDS: Desc = Desc::gauge(
    "vitals_pg_oldest_xmin_age_xids",
    &["target", "kind"],
    "age(xmin) in transactions of the oldest holder of the xmin horizon of each kind (pg_stat_activity.backend_xmin, pg_replication_slots xmin and catalog_xmin, pg_prepared_xacts); 0 when none holds one.",
);
pub const TABLE_DEAD_TUPLES: Desc = Desc::gauge(
    "vitals_pg_table_dead_tuples",
    &["target", "database", "table"],
    "Estimated dead tuples (pg_stat_user_tables.n_dead_tup) of the tables with the most, in the connected database.",
);
pub const TABLE_DEAD_TUPLE_RATIO: Desc = Desc::gauge(
    "vitals_pg_table_dead_tuple_ratio",
    &["target", "database", "table"],
    "n_dead_tup / (n_live_tup + n_dead_tup) from pg_stat_user_tables, for the tables with the most dead tuples.",
);
pub const TABLE_LAST_VACUUM_AGE_SECONDS: Desc = Desc::gauge(
    "vitals_pg_table_last_vacuum_age_seconds",
    &["target", "database", "table"],
    "Seconds since the last manual or automatic vacuum (greatest of last_vacuum, last_autovacuum in pg_stat_user_tables) of the tables with the most dead tuples; absent when never vacuumed.",
);
pub const TABLE_LAST_ANALYZE_AGE_SECONDS: Desc = Desc::gauge(
    "vitals_pg_table_last_analyze_age_seconds",
    &["target", "database", "table"],
    "Seconds since the last manual or automatic analyze (greatest of last_analyze, last_autoanalyze in pg_stat_user_tables) of the tables with the most dead tuples; absent when never analyzed.",
);
pub const AUTOVACUUM_WORKERS: Desc = Desc::gauge(
    "vitals_pg_autovacuum_workers",
    &["target"],
    "Autovacuum workers running (backend_type = 'autovacuum worker' in pg_stat_activity).",
);
pub const AUTOVACUUM_MAX_WORKERS: Desc = Desc::gauge(
    "vitals_pg_autovacuum_max_workers",
    &["target"],
    "The server's autovacuum_max_workers setting.",
);
pub const UNUSED_INDEXES: Desc = Desc::gauge(
    "vitals_pg_unused_indexes",
    &["target", "database"],
    "Indexes never scanned since statistics were reset (pg_stat_user_indexes.idx_scan = 0), unique and primary-key indexes excepted, in the connected database.",
);
pub const UNUSED_INDEX_BYTES: Desc = Desc::gauge(
    "vitals_pg_unused_index_bytes",
    &["target", "database"],
    "Total size of the indexes counted by vitals_pg_unused_indexes, pg_class.relpages times block_size (as of their last VACUUM, ANALYZE or CREATE INDEX).",
);
pub const WAL_BYTES_TOTAL: Desc = Desc::counter(
    "vitals_pg_wal_bytes_total",
    &["target"],
    "WAL generated: pg_current_wal_lsn() - '0/0' on a primary (absent on a standby).",
);
pub const WAL_BYTES_PER_SECOND: Desc = Desc::gauge(
    "vitals_pg_wal_bytes_per_second",
    &["target"],
    "WAL generated per second over the last round, from the increase of pg_current_wal_lsn() (absent on a standby).",
);
pub const ARCHIVER_ARCHIVED_TOTAL: Desc = Desc::counter(
    "vitals_pg_archiver_archived_total",
    &["target"],
    "WAL files archived successfully, pg_stat_archiver.archived_count.",
);
pub const ARCHIVER_FAILED_TOTAL: Desc = Desc::counter(
    "vitals_pg_archiver_failed_total",
    &["target"],
    "Failed attempts to archive a WAL file, pg_stat_archiver.failed_count.",
);
pub const ARCHIVER_LAST_FAILURE_AGE_SECONDS: Desc = Desc::gauge(
    "vitals_pg_archiver_last_failure_age_seconds",
    &["target"],
    "Seconds since the last failed archive attempt (now() - pg_stat_archiver.last_failed_time); absent when none failed.",
);
pub const ARCHIVER_LAST_ARCHIVED_AGE_SECONDS: Desc = Desc::gauge(
    "vitals_pg_archiver_last_archived_age_seconds",
    &["target"],
    "Seconds since the last WAL file was archived (now() - pg_stat_archiver.last_archived_time); absent when none was.",
);
pub const CHECKPOINTS_TIMED_TOTAL: Desc = Desc::counter(
    "vitals_pg_checkpoints_timed_total",
    &["target"],
    "Checkpoints started by checkpoint_timeout, pg_stat_bgwriter.checkpoints_timed (pg_stat_checkpointer.num_timed on PostgreSQL 17+).",
);
pub const CHECKPOINTS_REQUESTED_TOTAL: Desc = Desc::counter(
    "vitals_pg_checkpoints_requested_total",
    &["target"],
    "Checkpoints requested (WAL volume, CHECKPOINT, shutdown), pg_stat_bgwriter.checkpoints_req (pg_stat_checkpointer.num_requested on PostgreSQL 17+).",
);

/// Every family above, for `collectors::catalog()`.
pub const METRICS: &[Desc] = &[
    UP,
    INFO,
    IN_RECOVERY,
    PROBE_SECONDS,
    CONNECTIONS,
    CONNECTIONS_BY_APPLICATION,
    MAX_CONNECTIONS,
    RESERVED_CONNECTIONS,
    CONNECTION_UTILIZATION_RATIO,
    POOL_UTILIZATION_RATIO,
    IDLE_IN_TRANSACTION_MAX_SECONDS,
    LONGEST_QUERY_SECONDS,
    LOCK_WAITERS,
    REPLICATION_LAG_SECONDS,
    REPLICATION_LAG_BYTES,
    REPLICATION_LAST_MESSAGE_AGE_SECONDS,
    REPLICATION_STREAM_UP,
    STANDBY_WRITE_LAG_SECONDS,
    STANDBY_FLUSH_LAG_SECONDS,
    STANDBY_REPLAY_LAG_SECONDS,
    STANDBY_REPLAY_LAG_BYTES,
    SLOT_RETAINED_BYTES,
    SLOT_ACTIVE,
    HEARTBEAT_LAG_SECONDS,
    STATEMENTS_AVAILABLE,
    STATEMENTS_TRACKED,
    STATEMENTS_DEALLOC_TOTAL,
    STATEMENT_CALLS_PER_SECOND,
    STATEMENT_MEAN_SECONDS,
    STATEMENT_MAX_SECONDS,
    STATEMENT_EXEC_SECONDS_PER_SECOND,
    STATEMENT_ROWS_PER_SECOND,
    STATEMENT_SHARED_BLOCKS_HIT_PER_SECOND,
    STATEMENT_SHARED_BLOCKS_READ_PER_SECOND,
    DATABASE_CACHE_HIT_RATIO,
    DATABASE_ROLLBACK_RATIO,
    DATABASE_COMMITS_PER_SECOND,
    DATABASE_ROLLBACKS_PER_SECOND,
    DATABASE_COMMITS_TOTAL,
    DATABASE_ROLLBACKS_TOTAL,
    DATABASE_DEADLOCKS_TOTAL,
    DATABASE_TEMP_FILES_TOTAL,
    DATABASE_TEMP_BYTES_TOTAL,
    DATABASE_CONFLICTS_TOTAL,
    DATABASE_CHECKSUM_FAILURES_TOTAL,
    DATABASE_XID_AGE,
    DATABASE_WRAPAROUND_RATIO,
    DATABASE_MULTIXACT_AGE,
    DATABASE_MULTIXACT_WRAPAROUND_RATIO,
    OLDEST_XMIN_AGE_SECONDS,
    OLDEST_XMIN_AGE_XIDS,
    TABLE_DEAD_TUPLES,
    TABLE_DEAD_TUPLE_RATIO,
    TABLE_LAST_VACUUM_AGE_SECONDS,
    TABLE_LAST_ANALYZE_AGE_SECONDS,
    AUTOVACUUM_WORKERS,
    AUTOVACUUM_MAX_WORKERS,
    UNUSED_INDEXES,
    UNUSED_INDEX_BYTES,
    WAL_BYTES_TOTAL,
    WAL_BYTES_PER_SECOND,
    ARCHIVER_ARCHIVED_TOTAL,
    ARCHIVER_FAILED_TOTAL,
    ARCHIVER_LAST_FAILURE_AGE_SECONDS,
    ARCHIVER_LAST_ARCHIVED_AGE_SECONDS,
    CHECKPOINTS_TIMED_TOTAL,
    CHECKPOINTS_REQUESTED_TOTAL,
];
