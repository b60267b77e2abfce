//! The deeper half of a round: pg_stat_database, WAL, archiver and
//! checkpoints and (when installed) pg_stat_statements every round; the
//! catalog figures (wraparound, xmin horizon, dead tuples, unused indexes)
//! every `catalog_interval`.
//!
//! # Statement budget
//! pg_stat_database, WAL, archiver, checkpoints and autovacuum workers
//! arrive with the main statement (all databases at once: pg_stat_database
//! is cluster-wide). On top of the probe and the main statement, this half
//! sends:
//! - 1 pg_stat_statements statement, when installed and `statements.top` is
//!   above 0, read without query texts, once per `statements.interval`
//!   (default 30 s; the rounds in between repeat the last read's figures);
//! - 1 text statement, only in a read where a statement joins the top list
//!   and its text is not known yet (texts are fetched for the likeliest
//!   newcomers too, and kept while they stay candidates);
//! - 1 catalog statement, once per `catalog_interval` (default 60 s).
//!
//! So 2 statements per round (3 with a heartbeat), plus one per
//! `statements.interval`, one per `catalog_interval` and one per change of
//! the top list; never one per database. Each is bounded by the
//! connection's `statement_timeout`.
//!
//! pg_stat_user_tables and pg_stat_user_indexes only describe the database
//! a session is connected to: the table and index figures cover the
//! target's own database (its DSN's dbname) and each of
//! `catalog_databases`, read over one more connection per database with
//! [`queries::database_catalog`], once per `catalog_interval` (never per
//! round). A database that cannot be read is an error of the round and
//! drops only its own figures.

use super::conn::Connector;
use super::queries::{self, Activity, Catalog, DatabaseCatalog, PgssFlavor, Statements};
use super::stats::{DatabaseRound, DatabaseTracker, StatementRound, StatementTracker, XminClock};
use super::{bounded, prepare, Failure};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::{Client, Statement};

/// How many contenders per place in the top list get their text fetched
/// with the members'.
const PREFETCH: usize = 3;

/// Whether pg_stat_statements can be read, and how.
#[derive(Clone, Debug, PartialEq)]
enum Pgss {
    /// Not known yet, or not installed / not readable (the reason, and
    /// when to look again: a failing statement is not retried each round).
    Unavailable {
        reason: String,
        retry: Instant,
    },
    Ready {
        sql: String,
        texts_sql: String,
    },
}

/// One of `catalog_databases`: its own connection and last read.
pub(super) struct OtherDatabase {
    name: String,
    conn: Connector,
    /// Statements prepared on the connection of the given generation.
    prepared: (u64, BTreeMap<&'static str, Statement>),
    last: Option<DatabaseCatalog>,
}

impl OtherDatabase {
    pub(super) fn new(name: &str, conn: Connector) -> Self {
        OtherDatabase {
            name: name.to_owned(),
            conn,
            prepared: (0, BTreeMap::new()),
            last: None,
        }
    }

    /// Reads the database's tables and indexes; the error is scrubbed of
    /// every secret the connection knows.
    async fn read(&mut self, deadline: Instant) -> Result<DatabaseCatalog, String> {
        self.conn.ensure(deadline).await?;
        let generation = self.conn.generation();
        let Some(client) = self.conn.get() else {
            return Err("not connected".into());
        };
        if self.prepared.0 != generation {
            self.prepared = (generation, BTreeMap::new());
        }
        let cache = &mut self.prepared.1;
        let read = async {
            let sql = queries::database_catalog();
            let st = prepare(cache, client, deadline, "catalog", &sql).await?;
            bounded(deadline, "catalog query", client.query_one(&st, &[])).await
        };
        match read.await {
            Ok(row) => DatabaseCatalog::from_row(&row),
            Err(f) => {
                let message = self.conn.scrub(&f.message);
                if f.drop_connection {
                    self.conn.reset(&message);
                }
                Err(message)
            }
        }
    }
}

/// State kept between rounds for the deeper figures.
pub struct Deep {
    target: String,
    top: usize,
    catalog_interval: Duration,
    databases: DatabaseTracker,
    statements: StatementTracker,
    texts: BTreeMap<i64, String>,
    pgss: Option<Pgss>,
    statements_interval: Duration,
    next_statements: Option<Instant>,
    last_statements: Option<(Statements, Option<StatementRound>)>,
    next_catalog: Option<Instant>,
    catalog: Option<Catalog>,
    catalog_error: Option<String>,
    others: Vec<OtherDatabase>,
    /// Why some of `others` gave nothing at their last read.
    other_errors: Vec<String>,
    xmin: XminClock,
    replication_age: Option<f64>,
    wal: Option<(f64, f64)>,
}

/// What the deeper half of one round read.
pub struct DeepRound {
    pub activity: Activity,
    pub databases: Option<DatabaseRound>,
    pub wal_bytes_per_second: Option<f64>,
    /// None when statements are off (`top: 0`).
    pub statements_available: Option<bool>,
    pub statements: Option<Statements>,
    pub statement_round: Option<StatementRound>,
    /// Problems that leave the rest of the round standing.
    pub errors: Vec<String>,
}

impl Deep {
    pub(super) fn new(
        target: &str,
        top: usize,
        statements_interval: Duration,
        catalog_interval: Duration,
        others: Vec<OtherDatabase>,
    ) -> Self {
        Deep {
            target: target.to_owned(),
            top,
            catalog_interval,
            databases: DatabaseTracker::new(super::emit::TOP_DATABASES),
            statements: StatementTracker::new(top),
            texts: BTreeMap::new(),
            pgss: None,
            statements_interval,
            next_statements: None,
            last_statements: None,
            next_catalog: None,
            catalog: None,
            catalog_error: None,
            others,
            other_errors: Vec::new(),
            xmin: XminClock::default(),
            replication_age: None,
            wal: None,
        }
    }

    /// The statement texts of the current members, by queryid.
    pub fn texts(&self) -> &BTreeMap<i64, String> {
        &self.texts
    }

    /// The last catalog read and the age of the replication xmin.
    pub fn catalog(&self) -> Option<(&Catalog, Option<f64>)> {
        self.catalog.as_ref().map(|c| (c, self.replication_age))
    }

    /// The tables and indexes of every database read at the last catalog
    /// read: the target's own first, then each of `catalog_databases` that
    /// could be read.
    pub fn database_catalogs(&self) -> Vec<&DatabaseCatalog> {
        self.catalog
            .iter()
            .map(|c| &c.own)
            .chain(self.others.iter().filter_map(|o| o.last.as_ref()))
            .collect()
    }

    /// Why pg_stat_statements gives no figures, if it does not.
    pub fn statements_note(&self) -> Option<&str> {
        match &self.pgss {
            Some(Pgss::Unavailable { reason, .. }) => Some(reason),
            _ => None,
        }
    }

    /// Reads this round's deeper figures, `activity` being what the main
    /// statement read. A failure that leaves the connection usable
    /// (pg_stat_statements not loaded, a catalog statement cut by
    /// statement_timeout) is in `errors`; one that does not fails the round.
    pub(super) async fn read(
        &mut self,
        cache: &mut BTreeMap<&'static str, Statement>,
        client: &Client,
        deadline: Instant,
        activity: Activity,
    ) -> Result<DeepRound, Failure> {
        let databases = self.databases.observe(activity.now, &activity.databases);
        let wal_bytes_per_second = match (self.wal, activity.wal_bytes) {
            (Some((then, before)), Some(now_bytes)) if activity.now > then => {
                Some(super::stats::increase(before, now_bytes) / (activity.now - then))
            }
            _ => None,
        };
        self.wal = activity.wal_bytes.map(|b| (activity.now, b));

        let mut round = DeepRound {
            activity,
            databases,
            wal_bytes_per_second,
            statements_available: None,
            statements: None,
            statement_round: None,
            errors: Vec::new(),
        };
        if self.top > 0 {
            self.read_statements(cache, client, deadline, &mut round)
                .await?;
        }
        if self.next_catalog.map_or(true, |at| Instant::now() >= at) {
            self.next_catalog = Some(Instant::now() + self.catalog_interval);
            let sql = queries::catalog();
            let read = async {
                let st = prepare(cache, client, deadline, "catalog", &sql).await?;
                bounded(deadline, "catalog query", client.query_one(&st, &[])).await
            };
            match read.await {
                Ok(row) => match Catalog::from_row(&row) {
                    Ok(c) => {
                        let xmin = c
                            .holders
                            .iter()
                            .find(|h| h.kind == "replication")
                            .and_then(|h| h.xmin.as_deref());
                        self.replication_age = self.xmin.age(xmin, round.activity.now);
                        self.catalog = Some(c);
                        self.catalog_error = None;
                    }
                    Err(e) => self.catalog_error = Some(format!("catalog query: {e}")),
                },
                Err(f) if f.drop_connection => return Err(f),
                Err(f) => {
                    // Stale figures would look current: drop them.
                    self.catalog = None;
                    self.catalog_error = Some(f.message);
                }
            }
            self.other_errors.clear();
            for db in &mut self.others {
                match db.read(deadline).await {
                    Ok(c) => db.last = Some(c),
                    Err(e) => {
                        db.last = None;
                        self.other_errors
                            .push(format!("catalog of database {}: {e}", db.name));
                    }
                }
            }
        }
        if let Some(e) = &self.catalog_error {
            round.errors.push(e.clone());
        }
        round.errors.extend(self.other_errors.iter().cloned());
        Ok(round)
    }

    async fn read_statements(
        &mut self,
        cache: &mut BTreeMap<&'static str, Statement>,
        client: &Client,
        deadline: Instant,
        round: &mut DeepRound,
    ) -> Result<(), Failure> {
        let wanted = match &round.activity.pgss {
            None => Err("pg_stat_statements is not installed in this database (CREATE EXTENSION pg_stat_statements, with shared_preload_libraries = 'pg_stat_statements')".to_owned()),
            Some((version, schema)) => match queries::pgss_flavor(version) {
                None => Err(format!(
                    "pg_stat_statements {version} is too old (1.8, PostgreSQL 13, or later is needed)"
                )),
                Some(flavor) => Ok(ready(schema, flavor)),
            },
        };
        let ready_now = match (wanted, &self.pgss) {
            (Err(reason), _) => {
                self.set_unavailable(reason, None);
                None
            }
            // Failed recently with this very setup: wait before retrying.
            (Ok(_), Some(Pgss::Unavailable { retry, .. })) if Instant::now() < *retry => None,
            (Ok(p), current) => {
                if current.as_ref() != Some(&p) {
                    cache.remove("statements");
                    cache.remove("statement texts");
                    self.statements.clear();
                    self.texts.clear();
                    self.last_statements = None;
                    self.next_statements = None;
                }
                self.pgss = Some(p.clone());
                Some(p)
            }
        };
        let Some(Pgss::Ready { sql, texts_sql }) = ready_now else {
            round.statements_available = Some(false);
            self.last_statements = None;
            return Ok(());
        };
        // Between two reads (statements.interval), the last read's figures
        // stand: reading every entry is the costliest thing a round does.
        if let (Some(at), Some((s, r))) = (self.next_statements, &self.last_statements) {
            if Instant::now() < at {
                round.statements_available = Some(true);
                round.statements = Some(s.clone());
                round.statement_round.clone_from(r);
                return Ok(());
            }
        }
        self.next_statements = Some(Instant::now() + self.statements_interval);
        let read = async {
            let st = prepare(cache, client, deadline, "statements", &sql).await?;
            bounded(deadline, "pg_stat_statements query", client.query(&st, &[])).await
        };
        let statements = match read.await {
            Ok(rows) => Statements::from_rows(&rows).map_err(|message| Failure {
                message,
                drop_connection: false,
            }),
            Err(f) => Err(f),
        };
        let statements = match statements {
            Ok(s) => s,
            Err(f) if f.drop_connection => return Err(f),
            Err(f) => {
                // Typically "pg_stat_statements must be loaded via
                // shared_preload_libraries", or a missing privilege.
                cache.remove("statements");
                self.set_unavailable(f.message, Some(self.catalog_interval));
                round.statements_available = Some(false);
                return Ok(());
            }
        };
        round.statements_available = Some(true);
        let statement_round = self.statements.observe(
            round.activity.now,
            &statements.rows,
            statements.stats_reset,
            statements.dealloc,
        );
        if let Some(r) = &statement_round {
            let members: Vec<i64> = r.top.iter().map(|(id, _)| *id).collect();
            // Reading texts makes the server load its whole text file, so
            // one read also fetches the likeliest newcomers' texts; texts
            // are kept while their statement stays a member or contender.
            let contenders = self.statements.contenders(PREFETCH * self.top);
            if self.texts.len() > (PREFETCH + 1) * self.top {
                self.texts
                    .retain(|id, _| members.contains(id) || contenders.contains(id));
            }
            if members.iter().any(|id| !self.texts.contains_key(id)) {
                let wanted: Vec<i64> = members
                    .iter()
                    .chain(&contenders)
                    .filter(|id| !self.texts.contains_key(id))
                    .copied()
                    .collect();
                let read = async {
                    let st =
                        prepare(cache, client, deadline, "statement texts", &texts_sql).await?;
                    bounded(
                        deadline,
                        "pg_stat_statements texts",
                        client.query(&st, &[&wanted]),
                    )
                    .await
                };
                match read.await {
                    Ok(rows) => {
                        for row in rows {
                            if let (Ok(id), Ok(text)) =
                                (row.try_get::<_, i64>(0), row.try_get::<_, String>(1))
                            {
                                self.texts.insert(id, super::redact::redact_literals(&text));
                            }
                        }
                    }
                    Err(f) if f.drop_connection => return Err(f),
                    Err(f) => round.errors.push(f.message),
                }
            }
        }
        self.last_statements = Some((statements.clone(), statement_round.clone()));
        round.statement_round = statement_round;
        round.statements = Some(statements);
        Ok(())
    }

    fn set_unavailable(&mut self, reason: String, retry_after: Option<Duration>) {
        if !matches!(&self.pgss, Some(Pgss::Unavailable { reason: r, .. }) if *r == reason) {
            tracing::info!(
                "postgres target {}: no statement figures: {reason}",
                self.target
            );
        }
        self.statements.clear();
        self.texts.clear();
        self.last_statements = None;
        self.next_statements = None;
        self.pgss = Some(Pgss::Unavailable {
            reason,
            retry: Instant::now() + retry_after.unwrap_or_default(),
        });
    }
}

fn ready(schema: &str, flavor: PgssFlavor) -> Pgss {
    Pgss::Ready {
        sql: queries::statements(schema, flavor),
        texts_sql: queries::statement_texts(schema),
    }
}
