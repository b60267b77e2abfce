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
pub mod deep;
pub mod emit;
pub mod metrics;
pub mod queries;
pub mod redact;
pub mod replication;
pub mod stats;

pub use conn::backoff;

use super::{CollectError, Source};
use crate::config::PostgresConfig;
use crate::metrics::Output;
use conn::{Connector, Flavor, PasswordFrom};
pub use emit::top_applications;
use emit::{emit, Settings};
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
    /// Boxed: the deeper figures' state is large next to the other sources.
    deep: Box<deep::Deep>,
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
    deep: Option<deep::DeepRound>,
}

impl PostgresSource {
    pub fn new(config: &PostgresConfig) -> Self {
        let timeout = config.timeout.as_std();
        // The target's connection and one per catalog database: same role,
        // password source and timeouts.
        let connector = |name: &str, dsn: &crate::config::Dsn| {
            Connector::new(
                "postgres",
                name,
                Flavor::Postgres,
                dsn,
                PasswordFrom::new(
                    config.password_file.as_ref(),
                    config.password_env.as_ref(),
                    config.password_command.as_ref(),
                    config.password_command_ttl.as_std(),
                ),
                statement_timeout(timeout),
            )
        };
        PostgresSource {
            name: config.name.clone(),
            conn: connector(&config.name, &config.dsn),
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
            deep: Box::new(deep::Deep::new(
                &config.name,
                config.statements.top,
                config.statements.interval.as_std(),
                config.catalog_interval.as_std(),
                config
                    .catalog_databases
                    .iter()
                    .map(|db| {
                        let name = format!("{} (database {db})", config.name);
                        deep::OtherDatabase::new(db, connector(&name, &config.dsn.with_dbname(db)))
                    })
                    .collect(),
            )),
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
        let probe = bounded(deadline, "probe", client.simple_query(queries::PROBE)).await?;
        let probe_seconds = started.elapsed().as_secs_f64();
        let major = probe
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0),
                _ => None,
            })
            .map_or(0, queries::major_from_version_num);

        if self.prepared.0 != generation {
            self.prepared = (generation, BTreeMap::new());
        }
        let cache = &mut self.prepared.1;
        let statement = prepare(cache, client, deadline, "main", &queries::main(major)).await?;
        let row = bounded(deadline, "main query", client.query_one(&statement, &[])).await?;
        let unreadable = |message| Failure {
            message,
            drop_connection: false,
        };
        let snapshot = Snapshot::from_row(&row).map_err(unreadable)?;
        let activity = queries::Activity::from_row(&row).map_err(unreadable)?;

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
        // The deeper figures need a usable connection.
        let deep = match &heartbeat_failure {
            Some(f) if f.drop_connection => None,
            _ => Some(self.deep.read(cache, client, deadline, activity).await?),
        };
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
            deep,
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
                let mut deep_errors = Vec::new();
                if let Some(d) = &round.deep {
                    deep_errors.clone_from(&d.errors);
                    emit::emit_activity(
                        out,
                        &target,
                        &d.activity,
                        d.databases.as_ref(),
                        d.wal_bytes_per_second,
                    );
                    let figures = emit::StatementFigures {
                        available: d.statements_available,
                        tracked: d.statements.as_ref().map(|s| s.rows.len()),
                        dealloc: d.statements.as_ref().and_then(|s| s.dealloc),
                        round: d.statement_round.as_ref(),
                        texts: self.deep.texts(),
                        note: self.deep.statements_note(),
                    };
                    emit::emit_statements(out, &target, &figures);
                    out.details = Some(emit::details(&figures, &self.deep.database_catalogs()));
                }
                if let Some((c, replication_age)) = self.deep.catalog() {
                    emit::emit_catalog(out, &target, c, replication_age);
                }
                for db in self.deep.database_catalogs() {
                    emit::emit_database_catalog(out, &target, db);
                }
                let errors: Vec<String> = round
                    .heartbeat_error
                    .into_iter()
                    .chain(deep_errors)
                    .collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(CollectError::Other(format!(
                        "postgres target {target}: {}",
                        self.conn.scrub(&errors.join("; "))
                    )))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_timeout_is_within_the_target_timeout() {
        for ms in [10u64, 100, 2000, 30_000] {
            let t = Duration::from_millis(ms);
            assert!(statement_timeout(t) <= t.max(Duration::from_millis(50)));
            assert!(round_budget(t) < t);
        }
    }
}
