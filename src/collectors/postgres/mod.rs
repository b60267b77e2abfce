//! PostgreSQL: connections, the application's pools, leaks, slow queries,
//! replication from both sides, and an optional heartbeat.
//!
//! One long-lived connection per target (`application_name=vitals`,
//! `statement_timeout` = half the target's timeout), reconnected with
//! backoff; never one per scrape. A round sends two statements, three with
//! a heartbeat (see [`queries`]); each is bounded by the round's deadline, so
//! a target that is down, slow or blocked on a lock never delays anything
//! else. Errors name the target and never contain the DSN or a password.
//!
//! Replica lag semantics: see [`replication`].
//!
//! # Heartbeat table
//! With `heartbeat: {table: vitals_heartbeat, write: true}` on the agent that
//! watches the primary, and `heartbeat: {table: vitals_heartbeat}` on the one
//! that watches a standby, the standby's agent reports
//! `vitals_pg_heartbeat_lag_seconds` = standby `now()` − newest heartbeat
//! (resolution: the writer's interval; both clocks must agree, as on one host
//! or with NTP). A `write: true` agent whose server is in recovery reads
//! instead of writing, so the same config survives a failover. Create the
//! table once on the primary:
//!
//! ```sql
//! CREATE TABLE vitals_heartbeat (id int PRIMARY KEY, ts timestamptz NOT NULL);
//! GRANT SELECT, INSERT, UPDATE ON vitals_heartbeat TO monitor;  -- the agent's role
//! ```
//!
//! and give the role the built-in monitoring role so that it sees every
//! session's state and the WAL receiver: `GRANT pg_monitor TO monitor;`.

pub(crate) mod conn;
pub mod metrics;
pub mod queries;
pub mod replication;

pub use conn::backoff;

use super::{CollectError, Source};
use crate::config::PostgresConfig;
use crate::metrics::Output;
use conn::{Connector, Flavor, PasswordFrom};
use queries::Snapshot;
use replication::{LagTracker, StandbyObservation};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::Statement;

/// The connection states PostgreSQL reports in `pg_stat_activity.state`;
/// each gets a series (0 when no session is in it) so dashboards don't show
/// gaps.
pub const STATES: [&str; 6] = [
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
];

/// At most this many standbys get their own `standby` series.
const MAX_STANDBYS: usize = 32;

struct Heartbeat {
    write: bool,
    write_sql: String,
    read_sql: String,
}

/// A PostgreSQL target.
pub struct PostgresSource {
    name: String,
    conn: Connector,
    timeout: Duration,
    pools: BTreeMap<String, u32>,
    top_applications: usize,
    heartbeat: Option<Heartbeat>,
    lag: LagTracker,
    /// Statements prepared on the connection of the given generation (main
    /// query, heartbeat write or read), so a round sends no Parse.
    prepared: (u64, BTreeMap<&'static str, Statement>),
}

/// The part of a round's deadline a statement may use: the server cancels
/// it by itself, before the agent gives up on the connection.
fn statement_timeout(timeout: Duration) -> Duration {
    (timeout / 2).max(Duration::from_millis(50))
}

/// How much of the target's timeout a round plans to use; the rest is
/// margin before the scheduler's own timeout.
fn round_budget(timeout: Duration) -> Duration {
    timeout.mul_f64(0.9)
}

/// What went wrong in a round, and whether the connection is still usable.
struct Failure {
    message: String,
    drop_connection: bool,
}

/// Runs `fut` until `deadline`. A timeout leaves a statement in flight, so
/// the connection is dropped (and the statement cancelled) after it.
async fn bounded<T>(
    deadline: Instant,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure {
            message: format!("{what}: {}", conn::describe(&e)),
            drop_connection: e.is_closed(),
        }),
        Err(_) => Err(Failure {
            message: format!("{what}: no answer within the timeout"),
            drop_connection: true,
        }),
    }
}

/// The statement `key` from `cache`, preparing `sql` first if needed.
async fn prepare(
    cache: &mut BTreeMap<&'static str, Statement>,
    client: &tokio_postgres::Client,
    deadline: Instant,
    key: &'static str,
    sql: &str,
) -> Result<Statement, Failure> {
    if let Some(s) = cache.get(key) {
        return Ok(s.clone());
    }
    let s = bounded(
        deadline,
        &format!("preparing the {key} statement"),
        client.prepare(sql),
    )
    .await?;
    cache.insert(key, s.clone());
    Ok(s)
}

/// Results of one round.
struct Round {
    probe_seconds: f64,
    snapshot: Snapshot,
    /// Heartbeat age read this round (reader side).
    heartbeat_lag: Option<f64>,
    heartbeat_error: Option<String>,
}

impl PostgresSource {
    pub fn new(config: &PostgresConfig) -> Self {
        let timeout = config.timeout.as_std();
        PostgresSource {
            name: config.name.clone(),
            conn: Connector::new(
                "postgres",
                &config.name,
                Flavor::Postgres,
                &config.dsn,
                PasswordFrom::new(config.password_file.as_ref(), config.password_env.as_ref()),
                statement_timeout(timeout),
            ),
            timeout,
            pools: config.pools.clone(),
            top_applications: config.top_applications,
            heartbeat: config.heartbeat.as_ref().map(|h| Heartbeat {
                write: h.write,
                write_sql: queries::heartbeat_write(&h.table),
                read_sql: queries::heartbeat_read(&h.table),
            }),
            lag: LagTracker::new(),
            prepared: (0, BTreeMap::new()),
        }
    }

    async fn round(&mut self, deadline: Instant) -> Result<Round, Failure> {
        self.conn
            .ensure(deadline)
            .await
            .map_err(|message| Failure {
                message,
                drop_connection: false,
            })?;
        let generation = self.conn.generation();
        let Some(client) = self.conn.get() else {
            return Err(Failure {
                message: "not connected".into(),
                drop_connection: false,
            });
        };

        let started = Instant::now();
        bounded(deadline, "probe", client.simple_query(queries::PROBE)).await?;
        let probe_seconds = started.elapsed().as_secs_f64();

        if self.prepared.0 != generation {
            self.prepared = (generation, BTreeMap::new());
        }
        let cache = &mut self.prepared.1;
        let statement = prepare(cache, client, deadline, "main", queries::MAIN).await?;
        let row = bounded(deadline, "main query", client.query_one(&statement, &[])).await?;
        let snapshot = Snapshot::from_row(&row).map_err(|message| Failure {
            message,
            drop_connection: false,
        })?;

        // A heartbeat failure (say, the table is locked) is reported, but
        // the figures read above still stand.
        let mut heartbeat_lag = None;
        let mut heartbeat_failure = None;
        if let Some(hb) = &self.heartbeat {
            if hb.write && !snapshot.in_recovery {
                let write = async {
                    let st =
                        prepare(cache, client, deadline, "heartbeat write", &hb.write_sql).await?;
                    bounded(deadline, "heartbeat write", client.execute(&st, &[])).await
                };
                if let Err(f) = write.await {
                    heartbeat_failure = Some(f);
                }
            } else {
                let read = async {
                    let st =
                        prepare(cache, client, deadline, "heartbeat read", &hb.read_sql).await?;
                    bounded(deadline, "heartbeat read", client.query_one(&st, &[])).await
                };
                match read.await {
                    Ok(row) => match row.try_get::<_, Option<f64>>(0) {
                        Ok(v) => heartbeat_lag = v.map(|v| v.max(0.0)),
                        Err(e) => {
                            heartbeat_failure = Some(Failure {
                                message: format!("heartbeat read: {e}"),
                                drop_connection: false,
                            })
                        }
                    },
                    Err(f) => heartbeat_failure = Some(f),
                }
            }
        }
        let heartbeat_error = heartbeat_failure.map(|f| {
            if f.drop_connection {
                self.conn.reset(&f.message);
            }
            f.message
        });
        Ok(Round {
            probe_seconds,
            snapshot,
            heartbeat_lag,
            heartbeat_error,
        })
    }
}

impl Source for PostgresSource {
    async fn collect(&mut self, out: &mut Output) -> Result<(), CollectError> {
        let deadline = Instant::now() + round_budget(self.timeout);
        let target = self.name.clone();
        let labels = [("target", target.as_str())];
        match self.round(deadline).await {
            Ok(round) => {
                out.add(&metrics::UP, &labels, 1.0);
                let lag = if round.snapshot.in_recovery {
                    Some(self.lag.observe(&observation(&round.snapshot)))
                } else {
                    self.lag.clear();
                    None
                };
                emit(
                    out,
                    &target,
                    &round.snapshot,
                    &Settings {
                        pools: &self.pools,
                        top_applications: self.top_applications,
                    },
                    round.probe_seconds,
                    lag,
                );
                if let Some(v) = round.heartbeat_lag {
                    out.add(&metrics::HEARTBEAT_LAG_SECONDS, &labels, v);
                }
                match round.heartbeat_error {
                    Some(e) => Err(CollectError::Other(format!(
                        "postgres target {target}: {}",
                        self.conn.scrub(&e)
                    ))),
                    None => Ok(()),
                }
            }
            Err(f) => {
                out.add(&metrics::UP, &labels, 0.0);
                if f.drop_connection {
                    self.conn.reset(&f.message);
                }
                Err(CollectError::Other(format!(
                    "postgres target {target}: {}",
                    self.conn.scrub(&f.message)
                )))
            }
        }
    }
}

fn observation(s: &Snapshot) -> StandbyObservation {
    StandbyObservation {
        now: s.now,
        receive: s.receive_lsn,
        replay: s.replay_lsn,
        streaming: s.receiver_status.as_deref() == Some("streaming"),
        last_replay: s.last_replay,
        started: s.started,
    }
}

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

    #[test]
    fn statement_timeout_is_within_the_target_timeout() {
        for ms in [10u64, 100, 2000, 30_000] {
            let t = Duration::from_millis(ms);
            assert!(statement_timeout(t) <= t.max(Duration::from_millis(50)));
            assert!(round_budget(t) < t);
        }
    }
}
