//! Redis: memory against maxmemory, the keyspace hit ratio over the interval,
//! evictions, clients, replication, persistence and queue lengths.
//!
//! One long-lived connection per target over our own RESP2 client
//! ([`resp`]; why not the `redis` crate is said there), over TLS when the
//! target has a `tls` block (files re-read at each reconnect), set up with
//! `AUTH` (password from `password_file`, `password_env` or
//! `password_command`, read at each reconnect; `username` for an ACL user)
//! and `SELECT db`. The password source, the backoff (1 s, 2 s … 30 s) and
//! the scrub are the shared connector's (`collectors/connector.rs`); every command is
//! bounded by the round's deadline, and a connection that missed one is
//! dropped (a late reply would answer the next command).
//!
//! Commands per round: `INFO`, then one pipelined command per queue key:
//! `LLEN`, `ZCARD`, `SCARD` or `XLEN` by the key's type. The type is known
//! from the library pattern (BullMQ `wait`/`active` are lists,
//! `delayed`/`failed` sorted sets; Sidekiq, Celery and RQ queues are lists)
//! or learnt with one `TYPE` the first time (a key of unknown type that does
//! not exist yet is asked with `TYPE` each round: one command, answer 0). A
//! key that changed type answers `WRONGTYPE` and is re-learnt in the same
//! round (`TYPE`, then the length). So the steady state is exactly
//! `1 + queues` commands per round, in two round trips at most.
//!
//! Rates and the hit ratio are over the interval, from the difference of two
//! consecutive `INFO` replies (the server's own clock, `server_time_usec`),
//! not since the server started. vitals' own key lookups (the queue
//! commands count as keyspace hits or misses in Redis 7.0) are subtracted.

pub mod info;
pub mod resp;

pub use info::{parse_info, Info, InfoError};

use super::connector::{Link, PasswordFrom};
use super::{CollectError, Source};
use crate::config::{QueueKey, QueueKind, RedisAddress, RedisConfig};
use crate::metrics::{Desc, Output};
use resp::{Conn, Value};
use std::time::Duration;
use tokio::time::Instant;

const T: &[&str] = &["target"];

pub const UP: Desc = Desc::gauge(
    "vitals_redis_up",
    T,
    "1 when the last round connected to Redis, authenticated and read INFO, else 0.",
);
pub const INFO: Desc = Desc::gauge(
    "vitals_redis_info",
    &["target", "version", "role"],
    "Always 1; version and role (master or slave) from INFO redis_version and role.",
);
pub const UPTIME: Desc = Desc::gauge(
    "vitals_redis_uptime_seconds",
    T,
    "Seconds since the Redis server started, from INFO uptime_in_seconds.",
);
pub const CONNECTED_CLIENTS: Desc = Desc::gauge(
    "vitals_redis_connected_clients",
    T,
    "Client connections open (replicas excluded), from INFO connected_clients.",
);
pub const BLOCKED_CLIENTS: Desc = Desc::gauge(
    "vitals_redis_blocked_clients",
    T,
    "Clients waiting in a blocking call (BLPOP, BRPOP, XREAD BLOCK, WAIT...), from INFO blocked_clients.",
);
pub const MAX_CLIENTS: Desc = Desc::gauge(
    "vitals_redis_max_clients",
    T,
    "The maxclients setting, from INFO maxclients (Redis 7.0 and later).",
);
pub const CLIENTS_RATIO: Desc = Desc::gauge(
    "vitals_redis_clients_utilization_ratio",
    T,
    "INFO connected_clients divided by maxclients; at 1 new connections are refused.",
);
pub const MEMORY_USED: Desc = Desc::gauge(
    "vitals_redis_memory_used_bytes",
    T,
    "Memory allocated by Redis for data and overhead, from INFO used_memory (what maxmemory is compared with).",
);
pub const MEMORY_RSS: Desc = Desc::gauge(
    "vitals_redis_memory_rss_bytes",
    T,
    "Resident memory of the Redis process as the OS sees it, from INFO used_memory_rss.",
);
pub const MEMORY_PEAK: Desc = Desc::gauge(
    "vitals_redis_memory_peak_bytes",
    T,
    "Highest used_memory since the server started, from INFO used_memory_peak.",
);
pub const MEMORY_MAX: Desc = Desc::gauge(
    "vitals_redis_memory_max_bytes",
    T,
    "The maxmemory setting, from INFO maxmemory; absent when 0 (no limit).",
);
pub const MEMORY_RATIO: Desc = Desc::gauge(
    "vitals_redis_memory_utilization_ratio",
    T,
    "INFO used_memory divided by maxmemory, from the same INFO reply; absent without a limit. At 1 Redis evicts keys or refuses writes, by maxmemory-policy.",
);
pub const FRAGMENTATION: Desc = Desc::gauge(
    "vitals_redis_memory_fragmentation_ratio",
    T,
    "Resident memory divided by used memory, from INFO mem_fragmentation_ratio.",
);
pub const HITS: Desc = Desc::counter(
    "vitals_redis_keyspace_hits_total",
    T,
    "Successful key lookups since the server started, from INFO keyspace_hits (vitals' own queue lookups included).",
);
pub const MISSES: Desc = Desc::counter(
    "vitals_redis_keyspace_misses_total",
    T,
    "Key lookups of a missing key since the server started, from INFO keyspace_misses (vitals' own queue lookups included).",
);
pub const HIT_RATIO: Desc = Desc::gauge(
    "vitals_redis_keyspace_hit_ratio",
    T,
    "Hits divided by hits plus misses over the last interval (two consecutive INFO replies, vitals' own lookups removed); absent when fewer than min_lookups lookups happened.",
);
pub const EVICTED: Desc = Desc::counter(
    "vitals_redis_evicted_keys_total",
    T,
    "Keys evicted because of maxmemory since the server started, from INFO evicted_keys.",
);
pub const EVICTED_RATE: Desc = Desc::gauge(
    "vitals_redis_evicted_keys_per_second",
    T,
    "Keys evicted per second over the last interval, from the difference of two INFO evicted_keys.",
);
pub const EXPIRED: Desc = Desc::counter(
    "vitals_redis_expired_keys_total",
    T,
    "Keys removed because their TTL ran out since the server started, from INFO expired_keys.",
);
pub const COMMANDS: Desc = Desc::counter(
    "vitals_redis_commands_processed_total",
    T,
    "Commands the server processed since it started, from INFO total_commands_processed.",
);
pub const COMMANDS_RATE: Desc = Desc::gauge(
    "vitals_redis_commands_per_second",
    T,
    "Commands processed per second over the last interval, from the difference of two INFO total_commands_processed.",
);
pub const CONNECTIONS: Desc = Desc::counter(
    "vitals_redis_connections_received_total",
    T,
    "Connections accepted since the server started, from INFO total_connections_received.",
);
pub const REJECTED: Desc = Desc::counter(
    "vitals_redis_rejected_connections_total",
    T,
    "Connections refused because of maxclients since the server started, from INFO rejected_connections.",
);
pub const LINK_UP: Desc = Desc::gauge(
    "vitals_redis_replica_link_up",
    T,
    "On a replica: 1 when INFO master_link_status is up, else 0. Absent on a primary.",
);
pub const LAST_IO: Desc = Desc::gauge(
    "vitals_redis_replica_last_io_seconds",
    T,
    "On a replica: seconds since the last I/O with its primary, from INFO master_last_io_seconds_ago; absent while the link is down.",
);
pub const LINK_DOWN: Desc = Desc::gauge(
    "vitals_redis_replica_link_down_seconds",
    T,
    "On a replica: seconds the link to the primary has been down, from INFO master_link_down_since_seconds.",
);
pub const OFFSET_LAG: Desc = Desc::gauge(
    "vitals_redis_replica_offset_lag_bytes",
    &["target", "replica"],
    "On a primary, per replica (ip:port): INFO master_repl_offset minus the offset the replica last acknowledged (slaveN offset), in bytes.",
);
pub const REPLICAS: Desc = Desc::gauge(
    "vitals_redis_connected_replicas",
    T,
    "On a primary: replicas listed in INFO (slaveN lines), whatever their state.",
);
pub const REPL_OFFSET: Desc = Desc::gauge(
    "vitals_redis_replication_offset_bytes",
    T,
    "The server's replication offset, from INFO master_repl_offset (on a replica: how far it has processed the stream).",
);
pub const RDB_OK: Desc = Desc::gauge(
    "vitals_redis_rdb_last_save_success",
    T,
    "1 when the last RDB save succeeded (INFO rdb_last_bgsave_status ok), else 0.",
);
pub const RDB_AGE: Desc = Desc::gauge(
    "vitals_redis_rdb_last_save_age_seconds",
    T,
    "Seconds since the last successful RDB save, from INFO server_time_usec minus rdb_last_save_time.",
);
pub const RDB_CHANGES: Desc = Desc::gauge(
    "vitals_redis_rdb_changes_since_last_save",
    T,
    "Writes not yet in an RDB snapshot, from INFO rdb_changes_since_last_save.",
);
pub const AOF_ENABLED: Desc = Desc::gauge(
    "vitals_redis_aof_enabled",
    T,
    "1 when the append-only file is on, from INFO aof_enabled.",
);
pub const AOF_WRITE_OK: Desc = Desc::gauge(
    "vitals_redis_aof_last_write_success",
    T,
    "1 when the last write to the append-only file succeeded (INFO aof_last_write_status ok), else 0.",
);
pub const AOF_REWRITE_OK: Desc = Desc::gauge(
    "vitals_redis_aof_last_rewrite_success",
    T,
    "1 when the last append-only file rewrite succeeded (INFO aof_last_bgrewrite_status ok), else 0.",
);
pub const DB_KEYS: Desc = Desc::gauge(
    "vitals_redis_db_keys",
    &["target", "db"],
    "Keys in the database, from the INFO keyspace section (dbN keys).",
);
pub const QUEUE_LENGTH: Desc = Desc::gauge(
    "vitals_redis_queue_length",
    &["target", "queue"],
    "Items in a configured queue key: LLEN, ZCARD, SCARD or XLEN by the key's type; 0 when the key does not exist.",
);
pub const QUEUE_UP: Desc = Desc::gauge(
    "vitals_redis_queue_up",
    &["target", "queue"],
    "1 when the queue key's length was read, 0 when the key holds a type that is no queue (string, hash...).",
);
pub const SENT: Desc = Desc::counter(
    "vitals_redis_sent_commands_total",
    T,
    "Commands vitals itself sent to this Redis since vitals started (AUTH, SELECT, INFO, queue lengths).",
);

/// Every family this source exports.
pub const METRICS: &[Desc] = &[
    UP,
    INFO,
    UPTIME,
    CONNECTED_CLIENTS,
    BLOCKED_CLIENTS,
    MAX_CLIENTS,
    CLIENTS_RATIO,
    MEMORY_USED,
    MEMORY_RSS,
    MEMORY_PEAK,
    MEMORY_MAX,
    MEMORY_RATIO,
    FRAGMENTATION,
    HITS,
    MISSES,
    HIT_RATIO,
    EVICTED,
    EVICTED_RATE,
    EXPIRED,
    COMMANDS,
    COMMANDS_RATE,
    CONNECTIONS,
    REJECTED,
    LINK_UP,
    LAST_IO,
    LINK_DOWN,
    OFFSET_LAG,
    REPLICAS,
    REPL_OFFSET,
    RDB_OK,
    RDB_AGE,
    RDB_CHANGES,
    AOF_ENABLED,
    AOF_WRITE_OK,
    AOF_REWRITE_OK,
    DB_KEYS,
    QUEUE_LENGTH,
    QUEUE_UP,
    SENT,
];

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Writes the figures of one `INFO` reply (all but `up` and the interval
/// figures).
pub fn emit_info(out: &mut Output, target: &str, i: &Info) {
    let t = [("target", target)];
    let mut put = |d: &Desc, v: Option<f64>| {
        if let Some(v) = v {
            out.add(d, &t, v);
        }
    };
    put(&UPTIME, i.uptime_seconds);
    put(&CONNECTED_CLIENTS, i.connected_clients);
    put(&BLOCKED_CLIENTS, i.blocked_clients);
    put(&MAX_CLIENTS, i.maxclients.filter(|m| *m > 0.0));
    put(
        &CLIENTS_RATIO,
        i.connected_clients
            .zip(i.maxclients.filter(|m| *m > 0.0))
            .map(|(c, m)| c / m),
    );
    put(&MEMORY_USED, i.used_memory);
    put(&MEMORY_RSS, i.used_memory_rss);
    put(&MEMORY_PEAK, i.used_memory_peak);
    put(&MEMORY_MAX, i.maxmemory);
    put(
        &MEMORY_RATIO,
        i.used_memory.zip(i.maxmemory).map(|(u, m)| u / m),
    );
    put(&FRAGMENTATION, i.mem_fragmentation_ratio);
    put(&HITS, i.keyspace_hits);
    put(&MISSES, i.keyspace_misses);
    put(&EVICTED, i.evicted_keys);
    put(&EXPIRED, i.expired_keys);
    put(&COMMANDS, i.total_commands_processed);
    put(&CONNECTIONS, i.total_connections_received);
    put(&REJECTED, i.rejected_connections);
    put(&LINK_UP, i.master_link_up.map(flag));
    put(&LAST_IO, i.master_last_io_seconds);
    put(&LINK_DOWN, i.master_link_down_seconds);
    put(&REPL_OFFSET, i.master_repl_offset);
    if i.role.as_deref() == Some("master") {
        put(&REPLICAS, Some(i.replicas.len() as f64));
    }
    put(&RDB_OK, i.rdb_last_bgsave_ok.map(flag));
    let now = i.server_time.unwrap_or_else(unix_now);
    put(
        &RDB_AGE,
        i.rdb_last_save_time
            .filter(|t| *t > 0.0)
            .map(|t| (now - t).max(0.0)),
    );
    put(&RDB_CHANGES, i.rdb_changes_since_last_save);
    put(&AOF_ENABLED, i.aof_enabled.map(flag));
    if i.aof_enabled == Some(true) {
        put(&AOF_WRITE_OK, i.aof_last_write_ok.map(flag));
        put(&AOF_REWRITE_OK, i.aof_last_bgrewrite_ok.map(flag));
    }
    out.add(
        &INFO,
        &[
            ("target", target),
            ("version", i.version.as_deref().unwrap_or("unknown")),
            ("role", i.role.as_deref().unwrap_or("unknown")),
        ],
        1.0,
    );
    if let Some(master) = i.master_repl_offset {
        for r in &i.replicas {
            out.add(
                &OFFSET_LAG,
                &[("target", target), ("replica", r.address.as_str())],
                (master - r.offset).max(0.0),
            );
        }
    }
    for (db, keys, _) in &i.keyspace {
        out.add(&DB_KEYS, &[("target", target), ("db", db.as_str())], *keys);
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Counters of the previous round, for the interval figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Previous {
    pub hits: f64,
    pub misses: f64,
    pub evicted: f64,
    pub commands: f64,
    /// Server clock (or ours, before Redis 6.2) at that `INFO`.
    pub at: f64,
    pub uptime: f64,
}

impl Previous {
    pub fn of(i: &Info, now: f64) -> Option<Previous> {
        Some(Previous {
            hits: i.keyspace_hits?,
            misses: i.keyspace_misses?,
            evicted: i.evicted_keys.unwrap_or(0.0),
            commands: i.total_commands_processed.unwrap_or(0.0),
            at: i.server_time.unwrap_or(now),
            uptime: i.uptime_seconds.unwrap_or(0.0),
        })
    }
}

/// The figures over the interval between two `INFO` replies.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    pub hit_ratio: Option<f64>,
    pub evicted_per_second: Option<f64>,
    pub commands_per_second: Option<f64>,
}

/// Compares two rounds. `own` is vitals' own (hits, misses) since `prev`.
/// Nothing when the server restarted in between (counters went back) or
/// no time passed.
pub fn window(prev: &Previous, now: &Previous, own: (f64, f64), min_lookups: u64) -> Window {
    let dt = now.at - prev.at;
    let restarted = now.uptime < prev.uptime
        || now.hits < prev.hits
        || now.misses < prev.misses
        || now.commands < prev.commands;
    if restarted || dt <= 0.0 {
        return Window::default();
    }
    let hits = (now.hits - prev.hits - own.0).max(0.0);
    let misses = (now.misses - prev.misses - own.1).max(0.0);
    let lookups = hits + misses;
    Window {
        hit_ratio: (lookups > 0.0 && lookups >= min_lookups as f64).then(|| hits / lookups),
        evicted_per_second: Some((now.evicted - prev.evicted).max(0.0) / dt),
        commands_per_second: Some((now.commands - prev.commands) / dt),
    }
}

/// What vitals knows of a queue key's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    List,
    SortedSet,
    Set,
    Stream,
    /// Not known: ask with `TYPE`.
    Unknown,
}

impl KeyType {
    fn from_kind(kind: QueueKind) -> KeyType {
        match kind {
            QueueKind::List => KeyType::List,
            QueueKind::SortedSet => KeyType::SortedSet,
            QueueKind::Unknown => KeyType::Unknown,
        }
    }

    fn length_command(self) -> Option<&'static [u8]> {
        match self {
            KeyType::List => Some(b"LLEN"),
            KeyType::SortedSet => Some(b"ZCARD"),
            KeyType::Set => Some(b"SCARD"),
            KeyType::Stream => Some(b"XLEN"),
            KeyType::Unknown => None,
        }
    }
}

/// A `TYPE` reply, as a queue type or the name of a type that is no queue.
pub fn key_type(reply: &str) -> Result<Option<KeyType>, String> {
    match reply {
        "none" => Ok(None),
        "list" => Ok(Some(KeyType::List)),
        "zset" => Ok(Some(KeyType::SortedSet)),
        "set" => Ok(Some(KeyType::Set)),
        "stream" => Ok(Some(KeyType::Stream)),
        other => Err(other.to_owned()),
    }
}

/// One configured queue key and what the last rounds learnt about it.
#[derive(Clone, Debug)]
struct Queue {
    key: QueueKey,
    known: KeyType,
    /// The type the key held last time it was not a queue type, so the
    /// warning is logged once per change, not every round.
    wrong: Option<String>,
}

/// The outcome of one queue in one round.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Length(f64),
    WrongType(String),
}

/// A Redis target.
pub struct RedisSource {
    name: String,
    address: RedisAddress,
    username: Option<String>,
    tls: Option<crate::tls::ClientTls>,
    /// The name the certificate must carry (`tls.server_name`, else the
    /// host of `address`).
    server_name: String,
    db: u32,
    timeout: Duration,
    min_lookups: u64,
    queues: Vec<Queue>,
    conn: Option<Conn>,
    /// Password source, backoff and scrub, shared with the PostgreSQL
    /// sources.
    link: Link,
    previous: Option<Previous>,
    /// vitals' own (hits, misses) since the previous INFO.
    own_lookups: (f64, f64),
    /// Commands sent on connections that are gone.
    sent_before: u64,
    /// Whether the connection was opened in this round (a reused one may
    /// have been closed by the server since: a restart, an idle timeout).
    fresh: bool,
}

impl RedisSource {
    pub fn new(config: &RedisConfig) -> Self {
        RedisSource {
            name: config.name.clone(),
            address: config.address.clone(),
            username: config.username.clone(),
            tls: config.tls.as_ref().map(|t| {
                crate::tls::TlsFiles {
                    ca_file: t.ca_file.as_deref(),
                    cert_file: t.cert_file.as_deref(),
                    key_file: t.key_file.as_deref(),
                    insecure_skip_verify: t.insecure_skip_verify,
                }
                .client_tls(&[])
            }),
            server_name: config
                .tls
                .as_ref()
                .and_then(|t| t.server_name.clone())
                .unwrap_or_else(|| config.address.host()),
            db: config.db,
            timeout: config.timeout.as_std(),
            min_lookups: config.min_lookups,
            queues: config
                .queue_keys()
                .into_iter()
                .map(|key| Queue {
                    known: KeyType::from_kind(key.kind),
                    key,
                    wrong: None,
                })
                .collect(),
            conn: None,
            link: Link::new(
                "redis",
                &config.name,
                PasswordFrom::new(
                    config.password_file.as_ref(),
                    config.password_env.as_ref(),
                    config.password_command.as_ref(),
                    config.password_command_ttl.as_std(),
                ),
            ),
            previous: None,
            own_lookups: (0.0, 0.0),
            sent_before: 0,
            fresh: false,
        }
    }

    fn sent(&self) -> u64 {
        self.sent_before + self.conn.as_ref().map_or(0, |c| c.sent)
    }

    fn drop_conn(&mut self, why: &str) {
        if let Some(c) = self.conn.take() {
            self.sent_before += c.sent;
            tracing::info!("redis target {}: dropping connection: {why}", self.name);
        }
    }

    /// Connects (unless a backoff delay runs), authenticates and selects
    /// the database, before `deadline`.
    async fn ensure(&mut self, deadline: Instant) -> Result<(), String> {
        self.fresh = false;
        if self.conn.is_some() {
            return Ok(());
        }
        self.link.may_attempt()?;
        match self.connect(deadline).await {
            Ok(conn) => {
                self.link.connected();
                // Counters may have gone back (a restart): no interval
                // figures across a reconnect.
                self.previous = None;
                self.own_lookups = (0.0, 0.0);
                self.conn = Some(conn);
                self.fresh = true;
                Ok(())
            }
            Err((message, sent)) => {
                self.sent_before += sent;
                Err(self.link.failed(&message))
            }
        }
    }

    /// On failure: the message and the commands sent on the dead connection.
    async fn connect(&mut self, deadline: Instant) -> Result<Conn, (String, u64)> {
        let password = self.link.password(deadline).await.map_err(|m| (m, 0))?;
        // Built at each connect: rotated certificate files are re-read.
        let tls = match &self.tls {
            Some(t) => Some((
                crate::tls::client_config(t).map_err(|e| (format!("TLS: {e}"), 0))?,
                self.server_name.as_str(),
            )),
            None => None,
        };
        let stream = resp::connect(&self.address, tls, deadline)
            .await
            .map_err(|e| match e {
                resp::ConnError::Tls(why) => (format!("TLS: {why} for {}", self.address), 0),
                e => (format!("connecting to {}: {e}", self.address), 0),
            })?;
        let mut conn = Conn::new(stream);
        if let Some(pw) = password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &self.username {
                args.push(user.as_bytes());
            }
            args.push(pw.as_bytes());
            expect_ok(&mut conn, &args, "AUTH", deadline).await?;
        }
        if self.db != 0 {
            let db = self.db.to_string();
            expect_ok(&mut conn, &[b"SELECT", db.as_bytes()], "SELECT", deadline).await?;
        }
        Ok(conn)
    }

    /// Connects if needed and reads `INFO`. On failure: the message, and
    /// whether the connection must go.
    async fn round(&mut self, deadline: Instant) -> Result<Info, (String, bool)> {
        self.ensure(deadline).await.map_err(|m| (m, false))?;
        let conn = self
            .conn
            .as_mut()
            .ok_or(("not connected".to_owned(), false))?;
        let text = match conn.command(&[b"INFO"], deadline).await {
            Ok(Value::Bulk(Some(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Value::Error(e)) => return Err((format!("INFO: {e}"), false)),
            Ok(other) => return Err((format!("INFO: unexpected reply {other:?}"), true)),
            Err(e) => return Err((format!("INFO: {e}"), true)),
        };
        parse_info(&text).map_err(|e| (e.to_string(), false))
    }

    /// Drops the connection if needed and turns `message` into the round's
    /// error, without any secret.
    fn fail(&mut self, out: &mut Output, message: String, drop: bool) -> CollectError {
        if drop {
            self.drop_conn(&message);
        }
        out.add(&SENT, &[("target", self.name.as_str())], self.sent() as f64);
        let message = self.link.scrub(&message);
        CollectError::Other(format!("redis target {}: {message}", self.name))
    }

    /// Pipelined exchanges: the length (or `TYPE` when the type is unknown),
    /// then for the keys whose type was just learnt or changed, `TYPE` and
    /// the length: three passes at most.
    async fn queue_lengths(
        &mut self,
        deadline: Instant,
    ) -> Result<Vec<Result<Outcome, String>>, (String, bool)> {
        let mut results: Vec<Option<Result<Outcome, String>>> = vec![None; self.queues.len()];
        for _pass in 0..3 {
            let pending: Vec<usize> = (0..self.queues.len())
                .filter(|i| results[*i].is_none())
                .collect();
            if pending.is_empty() {
                break;
            }
            let commands: Vec<Vec<&[u8]>> = pending
                .iter()
                .map(|&i| {
                    let q = &self.queues[i];
                    let verb = q.known.length_command().unwrap_or(b"TYPE");
                    vec![verb, q.key.key.as_bytes()]
                })
                .collect();
            let conn = self
                .conn
                .as_mut()
                .ok_or(("not connected".to_owned(), false))?;
            let replies = conn
                .pipeline(&commands, deadline)
                .await
                .map_err(|e| (format!("queue lengths: {e}"), true))?;
            for (&i, reply) in pending.iter().zip(replies) {
                let q = &mut self.queues[i];
                let asked_type = q.known == KeyType::Unknown;
                match reply {
                    Value::Int(n) if !asked_type => {
                        // An existing list, set or sorted set is never empty
                        // in Redis; a stream may be.
                        let hit = n > 0 || q.known == KeyType::Stream;
                        count(&mut self.own_lookups, hit);
                        results[i] = Some(Ok(Outcome::Length(n.max(0) as f64)));
                    }
                    Value::Error(e) if e.starts_with("WRONGTYPE") => {
                        count(&mut self.own_lookups, true);
                        q.known = KeyType::Unknown;
                    }
                    Value::Simple(t) if asked_type => match key_type(&t) {
                        Ok(None) => {
                            count(&mut self.own_lookups, false);
                            results[i] = Some(Ok(Outcome::Length(0.0)));
                        }
                        Ok(Some(kind)) => {
                            count(&mut self.own_lookups, true);
                            q.known = kind;
                        }
                        Err(other) => {
                            count(&mut self.own_lookups, true);
                            results[i] = Some(Ok(Outcome::WrongType(other)));
                        }
                    },
                    Value::Error(e) => {
                        results[i] = Some(Err(format!("{}: {e}", q.key.key)));
                    }
                    other => {
                        return Err((
                            format!("queue {}: unexpected reply {other:?}", q.key.name),
                            true,
                        ))
                    }
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err("type changed twice within one round".into())))
            .collect())
    }

    fn emit_queues(&mut self, out: &mut Output, results: Vec<Result<Outcome, String>>) {
        let target = self.name.clone();
        for (q, result) in self.queues.iter_mut().zip(results) {
            let l = [("target", target.as_str()), ("queue", q.key.name.as_str())];
            match result {
                Ok(Outcome::Length(n)) => {
                    if q.wrong.take().is_some() {
                        tracing::info!(
                            "redis target {target}: queue {} (key {}) holds a queue type again",
                            q.key.name,
                            q.key.key
                        );
                    }
                    out.add(&QUEUE_LENGTH, &l, n);
                    out.add(&QUEUE_UP, &l, 1.0);
                }
                Ok(Outcome::WrongType(t)) => {
                    if q.wrong.as_deref() != Some(t.as_str()) {
                        tracing::warn!(
                            "redis target {target}: queue {}: key {} holds a {t}, not a list, sorted set, set or stream; no length for this queue",
                            q.key.name,
                            q.key.key
                        );
                    }
                    q.wrong = Some(t);
                    out.add(&QUEUE_UP, &l, 0.0);
                }
                Err(e) => {
                    tracing::warn!("redis target {target}: queue {}: {e}", q.key.name);
                    out.add(&QUEUE_UP, &l, 0.0);
                }
            }
        }
    }
}

fn count(own: &mut (f64, f64), hit: bool) {
    if hit {
        own.0 += 1.0;
    } else {
        own.1 += 1.0;
    }
}

/// Sends a setup command that must answer `+OK`. The error names the
/// command, never its arguments.
async fn expect_ok(
    conn: &mut Conn,
    args: &[&[u8]],
    what: &str,
    deadline: Instant,
) -> Result<(), (String, u64)> {
    match conn.command(args, deadline).await {
        Ok(Value::Simple(s)) if s == "OK" => Ok(()),
        Ok(Value::Error(e)) => Err((format!("{what} refused: {e}"), conn.sent)),
        Ok(other) => Err((format!("{what}: unexpected reply {other:?}"), conn.sent)),
        Err(e) => Err((format!("{what}: {e}"), conn.sent)),
    }
}

impl Source for RedisSource {
    async fn collect(&mut self, out: &mut Output) -> Result<(), CollectError> {
        let deadline = Instant::now() + self.timeout.mul_f64(0.9);
        let target = self.name.clone();
        let t = [("target", target.as_str())];
        let started = Instant::now();
        let mut result = self.round(deadline).await;
        // A connection kept from an earlier round that turns out dead (Redis
        // restarted, or closed it) gets one fresh attempt in the same round,
        // if at least half of the round's time is left.
        if let Err((message, true)) = &result {
            if !self.fresh && Instant::now() < started + (deadline - started) / 2 {
                let message = message.clone();
                self.drop_conn(&message);
                result = self.round(deadline).await;
            }
        }
        let info = match result {
            Ok(info) => info,
            Err((message, drop)) => {
                out.add(&UP, &t, 0.0);
                return Err(self.fail(out, message, drop));
            }
        };
        out.add(&UP, &t, 1.0);
        emit_info(out, &target, &info);
        let now = Previous::of(&info, unix_now());
        if let (Some(prev), Some(now)) = (&self.previous, &now) {
            let w = window(prev, now, self.own_lookups, self.min_lookups);
            if let Some(v) = w.hit_ratio {
                out.add(&HIT_RATIO, &t, v);
            }
            if let Some(v) = w.evicted_per_second {
                out.add(&EVICTED_RATE, &t, v);
            }
            if let Some(v) = w.commands_per_second {
                out.add(&COMMANDS_RATE, &t, v);
            }
        }
        self.previous = now;
        self.own_lookups = (0.0, 0.0);
        // INFO's figures stay when the queue commands fail: the round
        // fails, the server was up.
        match self.queue_lengths(deadline).await {
            Ok(lengths) => self.emit_queues(out, lengths),
            Err((message, drop)) => return Err(self.fail(out, message, drop)),
        }
        out.add(&SENT, &t, self.sent() as f64);
        Ok(())
    }
}

/// The pure parsers, for the property tests and fuzz targets only.
#[doc(hidden)]
pub mod fuzz {
    /// (name, parser): each takes bytes and returns the parsed value's
    /// Debug text or the error's.
    pub fn parsers() -> Vec<super::super::FuzzParser> {
        vec![
            ("redis/info", |b| {
                super::parse_info(&String::from_utf8_lossy(b))
                    .map(|v| format!("{v:?}"))
                    .map_err(|e| e.to_string())
            }),
            ("redis/resp", |b| {
                super::resp::parse(b)
                    .map(|v| format!("{v:?}"))
                    .map_err(|e| e.to_string())
            }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: &str = include_str!("../../../tests/fixtures/redis/info-7.0.15-primary.txt");

    fn prev(hits: f64, misses: f64, evicted: f64, at: f64) -> Previous {
        Previous {
            hits,
            misses,
            evicted,
            commands: 1000.0 + at * 10.0,
            at,
            uptime: 100.0 + at,
        }
    }

    #[test]
    fn hit_ratio_is_over_the_interval_without_own_lookups() {
        // 10 000 hits since start, then 80 hits and 20 misses, plus 3 hits
        // and 2 misses of vitals' own queue commands.
        let a = prev(10_000.0, 10.0, 0.0, 0.0);
        let b = prev(10_083.0, 32.0, 50.0, 5.0);
        let w = window(&a, &b, (3.0, 2.0), 100);
        assert_eq!(w.hit_ratio, Some(0.8));
        assert_eq!(w.evicted_per_second, Some(10.0));
        assert_eq!(w.commands_per_second, Some(10.0));
        // Below min_lookups: no ratio.
        assert_eq!(window(&a, &b, (3.0, 2.0), 101).hit_ratio, None);
        // No lookups at all: no ratio even with min_lookups 0.
        assert_eq!(window(&a, &a_later(&a), (0.0, 0.0), 0).hit_ratio, None);
    }

    fn a_later(a: &Previous) -> Previous {
        Previous {
            at: a.at + 5.0,
            uptime: a.uptime + 5.0,
            ..*a
        }
    }

    #[test]
    fn a_restart_between_rounds_gives_no_interval_figures() {
        let a = prev(10_000.0, 10.0, 5.0, 100.0);
        let mut b = prev(3.0, 1.0, 0.0, 105.0);
        b.uptime = 2.0;
        assert_eq!(window(&a, &b, (0.0, 0.0), 1), Window::default());
    }

    #[test]
    fn info_figures_and_memory_ratio_from_the_same_reply() {
        let i = parse_info(PRIMARY).unwrap();
        let mut out = Output::new();
        emit_info(&mut out, "cache", &i);
        let t = [("target", "cache")];
        let used = i.used_memory.unwrap();
        assert_eq!(out.value("vitals_redis_memory_used_bytes", &t), Some(used));
        assert_eq!(
            out.value("vitals_redis_memory_max_bytes", &t),
            Some(67108864.0)
        );
        assert_eq!(
            out.value("vitals_redis_memory_utilization_ratio", &t),
            Some(used / 67108864.0)
        );
        assert_eq!(
            out.value("vitals_redis_clients_utilization_ratio", &t),
            Some(1.0 / 10000.0)
        );
        assert_eq!(out.value("vitals_redis_connected_replicas", &t), Some(1.0));
        assert!(out
            .value(
                "vitals_redis_replica_offset_lag_bytes",
                &[("replica", "127.0.0.1:26392")]
            )
            .is_some());
        assert_eq!(
            out.value("vitals_redis_rdb_last_save_success", &t),
            Some(1.0)
        );
        assert!(out.family("vitals_redis_replica_link_up").is_none());
        assert!(out.family("vitals_redis_aof_last_write_success").is_none());
        assert_eq!(
            out.value(
                "vitals_redis_info",
                &[("version", "7.0.15"), ("role", "master")]
            ),
            Some(1.0)
        );
        // Every family emitted is in the table, with its declared labels.
        for f in &out.families {
            let d = METRICS
                .iter()
                .find(|d| d.name == f.name)
                .unwrap_or_else(|| panic!("{} not in METRICS", f.name));
            for s in &f.samples {
                let names: Vec<&str> = s.labels.iter().map(|(k, _)| k.as_str()).collect();
                assert_eq!(names, d.labels, "{}", f.name);
            }
        }
    }

    #[test]
    fn unlimited_memory_has_no_limit_and_no_ratio() {
        let text = PRIMARY.replace("maxmemory:67108864", "maxmemory:0");
        let mut out = Output::new();
        emit_info(&mut out, "cache", &parse_info(&text).unwrap());
        assert!(out.family("vitals_redis_memory_max_bytes").is_none());
        assert!(out
            .family("vitals_redis_memory_utilization_ratio")
            .is_none());
        assert!(out.family("vitals_redis_memory_used_bytes").is_some());
    }

    #[test]
    fn type_replies() {
        assert_eq!(key_type("none"), Ok(None));
        assert_eq!(key_type("list"), Ok(Some(KeyType::List)));
        assert_eq!(key_type("zset"), Ok(Some(KeyType::SortedSet)));
        assert_eq!(key_type("set"), Ok(Some(KeyType::Set)));
        assert_eq!(key_type("stream"), Ok(Some(KeyType::Stream)));
        assert_eq!(key_type("hash"), Err("hash".to_owned()));
        assert_eq!(key_type("string"), Err("string".to_owned()));
    }

    #[test]
    fn metric_names_follow_the_conventions() {
        for d in METRICS {
            assert!(d.name.starts_with("vitals_redis_"), "{}", d.name);
            assert_eq!(d.labels.first(), Some(&"target"), "{}", d.name);
            assert!(d.help.ends_with('.'), "{}", d.name);
        }
    }
}
