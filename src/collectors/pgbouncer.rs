//! PgBouncer: pools, databases and traffic counters from the admin console.
//!
//! One long-lived connection per target to the `pgbouncer` admin database,
//! simple query protocol only (the console knows no extended protocol), and
//! no startup parameter beyond the ones PgBouncer accepts from any client
//! (`client_encoding`, `application_name`; tokio-postgres sends nothing
//! else unless the DSN asks for `options`). A round is three statements:
//! `SHOW POOLS`, `SHOW DATABASES`, `SHOW STATS`.
//!
//! Columns are read by name: every `cl_*` column of SHOW POOLS becomes a
//! `state` of `vitals_pgbouncer_pool_clients`, every `sv_*` one a state of
//! `vitals_pgbouncer_pool_servers`, so a PgBouncer that adds or drops a
//! column changes the series, never breaks the source.

use super::postgres::conn::{Connector, Flavor, PasswordFrom};
use super::{CollectError, Source};
use crate::config::PgBouncerConfig;
use crate::metrics::{Desc, Output};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::SimpleQueryMessage;

/// A result set of the admin console, as text, columns by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Table {
    /// Collects the rows of one simple-protocol result.
    pub fn from_messages(messages: &[SimpleQueryMessage]) -> Table {
        let mut table = Table::default();
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(columns) => {
                    table.columns = columns.iter().map(|c| c.name().to_owned()).collect();
                }
                SimpleQueryMessage::Row(row) => {
                    if table.columns.is_empty() {
                        table.columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
                    }
                    table.rows.push(
                        (0..row.len())
                            .map(|i| row.try_get(i).ok().flatten().map(str::to_owned))
                            .collect(),
                    );
                }
                _ => {}
            }
        }
        table
    }

    /// Parses psql's unaligned output (`psql -A`: a header line, then rows,
    /// `|`-separated, then "(N rows)"). Used by tests to hold real console
    /// output; an empty field is NULL.
    pub fn from_unaligned(text: &str) -> Table {
        let mut lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('('));
        let columns = lines
            .next()
            .map(|h| h.split('|').map(str::to_owned).collect())
            .unwrap_or_default();
        let rows = lines
            .map(|l| {
                l.split('|')
                    .map(|v| (!v.is_empty()).then(|| v.to_owned()))
                    .collect()
            })
            .collect();
        Table { columns, rows }
    }

    fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    fn text<'a>(&self, row: &'a [Option<String>], column: &str) -> Option<&'a str> {
        self.index(column)
            .and_then(|i| row.get(i))
            .and_then(|v| v.as_deref())
    }

    /// A numeric column: absent column or NULL is `None`, garbage an error.
    fn number(&self, row: &[Option<String>], column: &str) -> Result<Option<f64>, String> {
        match self.text(row, column) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| format!("column {column}: {v:?} is not a number")),
        }
    }
}

/// One row of SHOW POOLS.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub database: String,
    pub user: String,
    /// `cl_active` → ("active", n), in column order.
    pub clients: Vec<(String, f64)>,
    /// `sv_idle` → ("idle", n), in column order.
    pub servers: Vec<(String, f64)>,
    /// `maxwait` + `maxwait_us` / 1e6 (`maxwait_us` exists since 1.8).
    pub maxwait_seconds: Option<f64>,
    pub pool_mode: Option<String>,
}

pub fn parse_pools(t: &Table) -> Result<Vec<Pool>, String> {
    let mut pools = Vec::with_capacity(t.rows.len());
    for row in &t.rows {
        let database = t
            .text(row, "database")
            .ok_or("SHOW POOLS: no database column")?;
        let user = t.text(row, "user").ok_or("SHOW POOLS: no user column")?;
        let mut clients = Vec::new();
        let mut servers = Vec::new();
        for column in &t.columns {
            let (list, state) = if let Some(s) = column.strip_prefix("cl_") {
                (&mut clients, s)
            } else if let Some(s) = column.strip_prefix("sv_") {
                (&mut servers, s)
            } else {
                continue;
            };
            if let Some(n) = t.number(row, column)? {
                list.push((state.to_owned(), n));
            }
        }
        let maxwait_seconds = match (t.number(row, "maxwait")?, t.number(row, "maxwait_us")?) {
            (Some(s), Some(us)) => Some(s + us / 1e6),
            (Some(s), None) => Some(s),
            (None, _) => None,
        };
        pools.push(Pool {
            database: database.to_owned(),
            user: user.to_owned(),
            clients,
            servers,
            maxwait_seconds,
            pool_mode: t.text(row, "pool_mode").map(str::to_owned),
        });
    }
    Ok(pools)
}

/// One row of SHOW DATABASES.
#[derive(Clone, Debug, PartialEq)]
pub struct Database {
    pub name: String,
    pub pool_size: Option<f64>,
    /// 0 means unlimited.
    pub max_connections: Option<f64>,
    pub current_connections: Option<f64>,
    pub paused: Option<f64>,
    pub disabled: Option<f64>,
}

pub fn parse_databases(t: &Table) -> Result<Vec<Database>, String> {
    t.rows
        .iter()
        .map(|row| {
            Ok(Database {
                name: t
                    .text(row, "name")
                    .ok_or("SHOW DATABASES: no name column")?
                    .to_owned(),
                pool_size: t.number(row, "pool_size")?,
                max_connections: t.number(row, "max_connections")?,
                current_connections: t.number(row, "current_connections")?,
                paused: t.number(row, "paused")?,
                disabled: t.number(row, "disabled")?,
            })
        })
        .collect()
}

pub const TRANSACTIONS_TOTAL: Desc = Desc::counter(
    "vitals_pgbouncer_transactions_total",
    &["target", "database"],
    "Transactions pooled, from SHOW STATS total_xact_count.",
);
pub const QUERIES_TOTAL: Desc = Desc::counter(
    "vitals_pgbouncer_queries_total",
    &["target", "database"],
    "Queries pooled, from SHOW STATS total_query_count.",
);
pub const TRANSACTION_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_pgbouncer_transaction_seconds_total",
    &["target", "database"],
    "Time spent in transactions, from SHOW STATS total_xact_time (microseconds).",
);
pub const QUERY_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_pgbouncer_query_seconds_total",
    &["target", "database"],
    "Time spent in queries, from SHOW STATS total_query_time (microseconds).",
);
pub const CLIENT_WAIT_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_pgbouncer_client_wait_seconds_total",
    &["target", "database"],
    "Time clients spent waiting for a server, from SHOW STATS total_wait_time (microseconds).",
);
pub const RECEIVED_BYTES_TOTAL: Desc = Desc::counter(
    "vitals_pgbouncer_received_bytes_total",
    &["target", "database"],
    "Bytes received from clients, from SHOW STATS total_received.",
);
pub const SENT_BYTES_TOTAL: Desc = Desc::counter(
    "vitals_pgbouncer_sent_bytes_total",
    &["target", "database"],
    "Bytes sent to clients, from SHOW STATS total_sent.",
);

/// The SHOW STATS counters exported: column, family and unit scale (the
/// console reports times in microseconds).
const STATS: [(&str, &Desc, f64); 7] = [
    ("total_xact_count", &TRANSACTIONS_TOTAL, 1.0),
    ("total_query_count", &QUERIES_TOTAL, 1.0),
    ("total_xact_time", &TRANSACTION_SECONDS_TOTAL, 1e-6),
    ("total_query_time", &QUERY_SECONDS_TOTAL, 1e-6),
    ("total_wait_time", &CLIENT_WAIT_SECONDS_TOTAL, 1e-6),
    ("total_received", &RECEIVED_BYTES_TOTAL, 1.0),
    ("total_sent", &SENT_BYTES_TOTAL, 1.0),
];

/// One row of SHOW STATS: the database and its counters as
/// (family, value), already in base units.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseStats {
    pub database: String,
    pub counters: Vec<(&'static Desc, f64)>,
}

pub fn parse_stats(t: &Table) -> Result<Vec<DatabaseStats>, String> {
    t.rows
        .iter()
        .map(|row| {
            let database = t
                .text(row, "database")
                .ok_or("SHOW STATS: no database column")?
                .to_owned();
            let mut values = Vec::new();
            for (column, desc, scale) in STATS {
                if let Some(v) = t.number(row, column)? {
                    values.push((desc, v * scale));
                }
            }
            Ok(DatabaseStats {
                database,
                counters: values,
            })
        })
        .collect()
}

/// Writes one round's figures (all but `up`).
pub fn emit(
    out: &mut Output,
    target: &str,
    pools: &[Pool],
    databases: &[Database],
    stats: &[DatabaseStats],
) {
    let pool_size: BTreeMap<&str, f64> = databases
        .iter()
        .filter_map(|d| d.pool_size.map(|n| (d.name.as_str(), n)))
        .collect();
    for p in pools {
        let base = [
            ("target", target),
            ("database", p.database.as_str()),
            ("user", p.user.as_str()),
        ];
        for (state, n) in &p.clients {
            out.add(
                &POOL_CLIENTS,
                &[base[0], base[1], base[2], ("state", state.as_str())],
                *n,
            );
        }
        for (state, n) in &p.servers {
            out.add(
                &POOL_SERVERS,
                &[base[0], base[1], base[2], ("state", state.as_str())],
                *n,
            );
        }
        if let Some(w) = p.maxwait_seconds {
            out.add(&POOL_MAXWAIT_SECONDS, &base, w);
        }
        if let Some(mode) = &p.pool_mode {
            out.add(
                &POOL_INFO,
                &[base[0], base[1], base[2], ("pool_mode", mode.as_str())],
                1.0,
            );
        }
        let active = p
            .servers
            .iter()
            .find(|(s, _)| s == "active")
            .map(|(_, n)| *n);
        if let (Some(active), Some(&size)) = (active, pool_size.get(p.database.as_str())) {
            if size > 0.0 {
                out.add(&POOL_UTILIZATION_RATIO, &base, active / size);
            }
        }
    }
    for d in databases {
        let l = [("target", target), ("database", d.name.as_str())];
        if let Some(n) = d.pool_size {
            out.add(&POOL_SIZE, &l, n);
        }
        if let Some(n) = d.current_connections {
            out.add(&DATABASE_CURRENT_CONNECTIONS, &l, n);
        }
        // 0 means unlimited: no limit series rather than a limit of 0.
        if let Some(n) = d.max_connections.filter(|n| *n > 0.0) {
            out.add(&DATABASE_MAX_CONNECTIONS, &l, n);
        }
        if let Some(n) = d.paused {
            out.add(&DATABASE_PAUSED, &l, n);
        }
        if let Some(n) = d.disabled {
            out.add(&DATABASE_DISABLED, &l, n);
        }
    }
    for st in stats {
        let l = [("target", target), ("database", st.database.as_str())];
        for (desc, v) in &st.counters {
            out.add(desc, &l, *v);
        }
    }
}

pub const POOL_CLIENTS: Desc = Desc::gauge(
    "vitals_pgbouncer_pool_clients",
    &["target", "database", "user", "state"],
    "Client connections of the pool by state, from the cl_<state> columns of SHOW POOLS.",
);
pub const POOL_SERVERS: Desc = Desc::gauge(
    "vitals_pgbouncer_pool_servers",
    &["target", "database", "user", "state"],
    "Server connections of the pool by state, from the sv_<state> columns of SHOW POOLS.",
);
pub const POOL_MAXWAIT_SECONDS: Desc = Desc::gauge(
    "vitals_pgbouncer_pool_maxwait_seconds",
    &["target", "database", "user"],
    "How long the oldest waiting client of the pool has waited, from SHOW POOLS maxwait + maxwait_us.",
);
pub const POOL_INFO: Desc = Desc::gauge(
    "vitals_pgbouncer_pool_info",
    &["target", "database", "user", "pool_mode"],
    "Always 1; pool_mode is the pool's mode from SHOW POOLS.",
);
pub const POOL_UTILIZATION_RATIO: Desc = Desc::gauge(
    "vitals_pgbouncer_pool_utilization_ratio",
    &["target", "database", "user"],
    "Server connections linked to a client (SHOW POOLS sv_active) divided by the database's pool_size (SHOW DATABASES).",
);
pub const POOL_SIZE: Desc = Desc::gauge(
    "vitals_pgbouncer_pool_size",
    &["target", "database"],
    "The database's pool_size, from SHOW DATABASES.",
);
pub const DATABASE_CURRENT_CONNECTIONS: Desc = Desc::gauge(
    "vitals_pgbouncer_database_current_connections",
    &["target", "database"],
    "Server connections open to the database, from SHOW DATABASES current_connections.",
);
pub const DATABASE_MAX_CONNECTIONS: Desc = Desc::gauge(
    "vitals_pgbouncer_database_max_connections",
    &["target", "database"],
    "The database's max_connections in PgBouncer, from SHOW DATABASES (absent when unlimited).",
);
pub const DATABASE_PAUSED: Desc = Desc::gauge(
    "vitals_pgbouncer_database_paused",
    &["target", "database"],
    "1 when the database is paused (SHOW DATABASES paused).",
);
pub const DATABASE_DISABLED: Desc = Desc::gauge(
    "vitals_pgbouncer_database_disabled",
    &["target", "database"],
    "1 when the database is disabled (SHOW DATABASES disabled).",
);

/// Every family this source exports, for `collectors::catalog()`.
pub const METRICS: &[Desc] = &[
    UP,
    POOL_CLIENTS,
    POOL_SERVERS,
    POOL_MAXWAIT_SECONDS,
    POOL_INFO,
    POOL_UTILIZATION_RATIO,
    POOL_SIZE,
    DATABASE_CURRENT_CONNECTIONS,
    DATABASE_MAX_CONNECTIONS,
    DATABASE_PAUSED,
    DATABASE_DISABLED,
    TRANSACTIONS_TOTAL,
    QUERIES_TOTAL,
    TRANSACTION_SECONDS_TOTAL,
    QUERY_SECONDS_TOTAL,
    CLIENT_WAIT_SECONDS_TOTAL,
    RECEIVED_BYTES_TOTAL,
    SENT_BYTES_TOTAL,
];

/// A PgBouncer target.
pub struct PgBouncerSource {
    name: String,
    conn: Connector,
    timeout: Duration,
}

impl PgBouncerSource {
    pub fn new(config: &PgBouncerConfig) -> Self {
        let timeout = config.timeout.as_std();
        PgBouncerSource {
            name: config.name.clone(),
            conn: Connector::new(
                "pgbouncer",
                &config.name,
                Flavor::PgBouncer,
                &config.dsn,
                PasswordFrom::new(
                    config.password_file.as_ref(),
                    config.password_env.as_ref(),
                    config.password_command.as_ref(),
                    config.password_command_ttl.as_std(),
                ),
                timeout,
            ),
            timeout,
        }
    }

    /// The three SHOWs; on failure the message and whether the connection
    /// must go (a statement still in flight).
    async fn round(&mut self, deadline: Instant) -> Result<[Table; 3], (String, bool)> {
        self.conn.ensure(deadline).await.map_err(|m| (m, false))?;
        let client = self.conn.get().ok_or(("not connected".to_owned(), false))?;
        let mut tables: [Table; 3] = Default::default();
        for (slot, command) in tables
            .iter_mut()
            .zip(["SHOW POOLS", "SHOW DATABASES", "SHOW STATS"])
        {
            match tokio::time::timeout_at(deadline, client.simple_query(command)).await {
                Ok(Ok(messages)) => *slot = Table::from_messages(&messages),
                Ok(Err(e)) => {
                    return Err((
                        format!("{command}: {}", super::postgres::conn::describe(&e)),
                        e.is_closed(),
                    ))
                }
                Err(_) => return Err((format!("{command}: no answer within the timeout"), true)),
            }
        }
        Ok(tables)
    }
}

impl Source for PgBouncerSource {
    async fn collect(&mut self, out: &mut Output) -> Result<(), CollectError> {
        let deadline = Instant::now() + self.timeout.mul_f64(0.9);
        let target = self.name.clone();
        let labels = [("target", target.as_str())];
        let fail = |out: &mut Output, message: String| {
            out.add(&UP, &labels, 0.0);
            CollectError::Other(format!("pgbouncer target {target}: {message}"))
        };
        let [pools, databases, stats] = match self.round(deadline).await {
            Ok(tables) => tables,
            Err((message, drop)) => {
                if drop {
                    self.conn.reset(&message);
                }
                return Err(fail(out, self.conn.scrub(&message)));
            }
        };
        let parsed = parse_pools(&pools).and_then(|p| {
            let d = parse_databases(&databases)?;
            let s = parse_stats(&stats)?;
            Ok((p, d, s))
        });
        match parsed {
            Ok((p, d, s)) => {
                out.add(&UP, &labels, 1.0);
                emit(out, &target, &p, &d, &s);
                Ok(())
            }
            Err(message) => Err(fail(out, message)),
        }
    }
}

pub const UP: Desc = Desc::gauge(
    "vitals_pgbouncer_up",
    &["target"],
    "1 when the last round connected to the PgBouncer admin console and read SHOW POOLS, DATABASES and STATS, else 0.",
);

#[cfg(test)]
mod tests {
    use super::*;

    // PgBouncer 1.18.0 (Debian 12 package), `psql -A` on the admin console,
    // one client having run a query through database "app".
    const POOLS_1_18: &str = "\
database|user|cl_active|cl_waiting|cl_active_cancel_req|cl_waiting_cancel_req|sv_active|sv_active_cancel|sv_being_canceled|sv_idle|sv_used|sv_tested|sv_login|maxwait|maxwait_us|pool_mode
app|postgres|0|0|0|0|0|0|0|1|0|0|0|0|0|session
pgbouncer|pgbouncer|1|0|0|0|0|0|0|0|0|0|0|0|0|statement
(2 rows)
";
    const DATABASES_1_18: &str = "\
name|host|port|database|force_user|pool_size|min_pool_size|reserve_pool|pool_mode|max_connections|current_connections|paused|disabled
app|127.0.0.1|25432|postgres||3|0|0||0|1|0|0
pgbouncer||26432|pgbouncer|pgbouncer|2|0|0|statement|0|0|0|0
(2 rows)
";
    const STATS_1_18: &str = "\
database|total_xact_count|total_query_count|total_received|total_sent|total_xact_time|total_query_time|total_wait_time|avg_xact_count|avg_query_count|avg_recv|avg_sent|avg_xact_time|avg_query_time|avg_wait_time
app|1|1|14|154|334|334|6339|0|0|6|75|334|334|3087
pgbouncer|3|3|0|0|0|0|0|1|1|0|0|0|0|0
(2 rows)
";

    #[test]
    fn pools_are_read_by_column_name() {
        let pools = parse_pools(&Table::from_unaligned(POOLS_1_18)).unwrap();
        assert_eq!(pools.len(), 2);
        let app = &pools[0];
        assert_eq!(
            (app.database.as_str(), app.user.as_str()),
            ("app", "postgres")
        );
        assert_eq!(
            app.clients
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>(),
            [
                "active",
                "waiting",
                "active_cancel_req",
                "waiting_cancel_req"
            ]
        );
        assert_eq!(
            app.servers
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>(),
            [
                "active",
                "active_cancel",
                "being_canceled",
                "idle",
                "used",
                "tested",
                "login"
            ]
        );
        assert_eq!(app.servers[3], ("idle".to_owned(), 1.0));
        assert_eq!(app.maxwait_seconds, Some(0.0));
        assert_eq!(app.pool_mode.as_deref(), Some("session"));
    }

    #[test]
    fn maxwait_has_microsecond_precision() {
        let text = POOLS_1_18.replace("|0|0|session", "|3|250042|session");
        let pools = parse_pools(&Table::from_unaligned(&text)).unwrap();
        assert_eq!(pools[0].maxwait_seconds, Some(3.250042));
    }

    #[test]
    fn fewer_or_reordered_columns_still_parse() {
        // Not captured from a server: the column set without maxwait_us and
        // the cancel counters, in another order, as older versions print it.
        let text = "\
user|database|sv_idle|cl_waiting|cl_active|sv_active|maxwait
monitor|app|2|4|7|3|12
";
        let pools = parse_pools(&Table::from_unaligned(text)).unwrap();
        let p = &pools[0];
        assert_eq!((p.database.as_str(), p.user.as_str()), ("app", "monitor"));
        assert_eq!(
            p.clients,
            vec![("waiting".to_owned(), 4.0), ("active".to_owned(), 7.0)]
        );
        assert_eq!(p.maxwait_seconds, Some(12.0));
        assert_eq!(p.pool_mode, None);
    }

    #[test]
    fn garbage_is_an_error_naming_the_column() {
        let text = POOLS_1_18.replace("app|postgres|0|", "app|postgres|many|");
        let e = parse_pools(&Table::from_unaligned(&text)).unwrap_err();
        assert!(e.contains("cl_active"), "{e}");
    }

    #[test]
    fn databases_and_stats_parse_with_units() {
        let dbs = parse_databases(&Table::from_unaligned(DATABASES_1_18)).unwrap();
        assert_eq!(dbs[0].name, "app");
        assert_eq!(dbs[0].pool_size, Some(3.0));
        assert_eq!(dbs[0].current_connections, Some(1.0));
        let stats = parse_stats(&Table::from_unaligned(STATS_1_18)).unwrap();
        assert_eq!(stats[0].database, "app");
        let get = |metric: &str| {
            stats[0]
                .counters
                .iter()
                .find(|c| c.0.name == metric)
                .map(|c| c.1)
        };
        assert_eq!(get("vitals_pgbouncer_queries_total"), Some(1.0));
        assert_eq!(
            get("vitals_pgbouncer_client_wait_seconds_total"),
            Some(0.006339)
        );
        assert_eq!(get("vitals_pgbouncer_sent_bytes_total"), Some(154.0));
    }

    #[test]
    fn emit_computes_utilization_and_hides_unlimited_max() {
        let pools = parse_pools(&Table::from_unaligned(
            &POOLS_1_18.replace("app|postgres|0|0|0|0|0|", "app|postgres|2|1|0|0|2|"),
        ))
        .unwrap();
        let dbs = parse_databases(&Table::from_unaligned(DATABASES_1_18)).unwrap();
        let stats = parse_stats(&Table::from_unaligned(STATS_1_18)).unwrap();
        let mut out = Output::new();
        emit(&mut out, "bouncer", &pools, &dbs, &stats);
        let pool = [
            ("target", "bouncer"),
            ("database", "app"),
            ("user", "postgres"),
        ];
        assert_eq!(
            out.value("vitals_pgbouncer_pool_utilization_ratio", &pool),
            Some(2.0 / 3.0)
        );
        assert_eq!(
            out.value(
                "vitals_pgbouncer_pool_clients",
                &[pool[0], pool[1], ("state", "waiting")]
            ),
            Some(1.0)
        );
        assert_eq!(
            out.value("vitals_pgbouncer_pool_size", &[("database", "app")]),
            Some(3.0)
        );
        assert!(out
            .family("vitals_pgbouncer_database_max_connections")
            .is_none());
        assert_eq!(
            out.value(
                "vitals_pgbouncer_pool_info",
                &[("database", "pgbouncer"), ("pool_mode", "statement")]
            ),
            Some(1.0)
        );
    }
}
