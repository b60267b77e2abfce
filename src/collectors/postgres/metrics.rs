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
    "Round-trip time of SELECT 1 on the agent's own connection.",
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
];
