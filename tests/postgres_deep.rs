//! The deeper PostgreSQL figures against a real primary with
//! `shared_preload_libraries = pg_stat_statements`: top statements, database
//! ratios, deadlocks, unused indexes, dead tuples, wraparound, the xmin
//! horizon, and the statements a round costs (counted from the server log).
//!
//! One cluster for the binary; the cases run in order (the first one
//! creates the extension). `VITALS_CASE=name cargo test --test
//! postgres_deep -- --nocapture` runs only matching cases.

mod common;
#[macro_use]
mod support;

use std::time::Duration;
use support::source::{ok_round, pg_config, statements_in_rounds, value};
use support::{block_on, Cluster, Options, SUPER_PASSWORD};
use vitals::checks::{CheckEngine, Now, SourceRound};
use vitals::collectors::postgres::PostgresSource;
use vitals::config::{self, PostgresConfig};
use vitals::metrics::Output;

const PRIMARY: (&str, &str) = ("target", "primary");
/// A database of its own, so other sessions' transactions do not blur the
/// ratios.
const WORK_DB: &str = "deepwork";

#[test]
fn postgres_deep_suite() {
    let cluster = Cluster::start(Options {
        standby: false,
        bouncer: false,
    });
    cluster.psql(cluster.primary.port, &format!("CREATE DATABASE {WORK_DB}"));
    support::run_cases(
        &cluster,
        &[
            (
                "statements_not_installed_then_installed",
                statements_not_installed_then_installed,
            ),
            (
                "slow_statement_mean_and_check",
                slow_statement_mean_and_check,
            ),
            (
                "statement_reset_never_negative",
                statement_reset_never_negative,
            ),
            (
                "three_hundred_statements_give_top_plus_one_series",
                three_hundred_statements_give_top_plus_one_series,
            ),
            (
                "utility_statement_secrets_never_shown",
                utility_statement_secrets_never_shown,
            ),
            ("statement_budget_per_round", statement_budget_per_round),
            ("rollback_ratio", rollback_ratio),
            ("deadlock_counts_one", deadlock_counts_one),
            (
                "unused_index_counted_with_its_size",
                unused_index_counted_with_its_size,
            ),
            ("dead_tuples_reported", dead_tuples_reported),
            (
                "other_databases_over_their_own_connection",
                other_databases_over_their_own_connection,
            ),
            (
                "wraparound_age_matches_the_catalog",
                wraparound_age_matches_the_catalog,
            ),
            (
                "prepared_transaction_holds_the_xmin",
                prepared_transaction_holds_the_xmin,
            ),
        ],
    );
    // Only when every case ran (VITALS_CASE picks some).
    if std::env::var_os("VITALS_CASE").is_none() {
        let deep = support::source::deep_families();
        support::source::assert_covered("vitals_pg_", |n| deep.contains(&n));
    }
}

/// The rounds here run back to back: pg_stat_statements is read every
/// round (the default, 30 s, would repeat the first read's figures).
fn config(c: &Cluster) -> PostgresConfig {
    let mut cfg = pg_config(c, c.primary.port, "primary");
    cfg.statements.interval = config::Duration::from_millis(1);
    cfg
}

fn source(c: &Cluster) -> PostgresSource {
    PostgresSource::new(&config(c))
}

async fn superuser(c: &Cluster, db: &str, app: &str) -> tokio_postgres::Client {
    support::connect(c.primary.port, "postgres", SUPER_PASSWORD, db, app).await
}

/// The page `/` as it shows this round's details.
fn page_of(out: &Output) -> String {
    vitals::server::page::index(
        &[],
        &[vitals::runtime::SourceStatus {
            source: "postgres/primary".into(),
            details: out.details.clone(),
            ..Default::default()
        }],
    )
}

/// Runs `sql` on the server and reads one number.
fn number(c: &Cluster, sql: &str) -> f64 {
    let text = c.psql(c.primary.port, sql);
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {text:?}: {e}"))
}

/// Every sample of `family` for the target, as (labels, value).
fn samples(out: &Output, family: &str) -> Vec<(Vec<(String, String)>, f64)> {
    out.family(family)
        .map(|f| {
            f.samples
                .iter()
                .map(|s| (s.labels.clone(), s.value))
                .collect()
        })
        .unwrap_or_default()
}

/// The queryid of the statement whose `query` label contains `needle`.
fn queryid_of(out: &Output, needle: &str) -> Option<String> {
    let f = out.family("vitals_pg_statement_calls_per_second")?;
    f.samples
        .iter()
        .find(|s| s.label("query").is_some_and(|q| q.contains(needle)))
        .and_then(|s| s.label("queryid").map(str::to_owned))
}

fn statements_not_installed_then_installed(c: &Cluster) {
    block_on(async {
        let mut src = source(c);
        let out = ok_round(&mut src).await;
        assert_eq!(
            value(&out, "vitals_pg_statements_available", &[PRIMARY]),
            0.0
        );
        assert!(out.family("vitals_pg_statement_calls_per_second").is_none());
        // /status says why.
        let details = out.details.as_ref().expect("details for /status");
        let note = details["statements"]["note"].as_str().unwrap_or_default();
        assert!(note.contains("not installed"), "{details}");
        c.psql(c.primary.port, "CREATE EXTENSION pg_stat_statements");
        let out = ok_round(&mut src).await;
        assert_eq!(
            value(&out, "vitals_pg_statements_available", &[PRIMARY]),
            1.0
        );
        assert!(value(&out, "vitals_pg_statements_tracked", &[PRIMARY]) > 0.0);
    });
}

fn slow_statement_mean_and_check(c: &Cluster) {
    block_on(async {
        let mut src = source(c);
        ok_round(&mut src).await;
        ok_round(&mut src).await;
        let client = superuser(c, "postgres", "sleeper").await;
        for _ in 0..2 {
            client.simple_query("SELECT pg_sleep(1.2)").await.unwrap();
        }
        let out = ok_round(&mut src).await;
        let id = queryid_of(&out, "pg_sleep").expect("the pg_sleep statement is in the top list");
        let l = [PRIMARY, ("queryid", id.as_str())];
        let mean = value(&out, "vitals_pg_statement_mean_seconds", &l);
        let max = value(&out, "vitals_pg_statement_max_seconds", &l);
        eprintln!("pg_sleep(1.2): mean {mean} s, max {max} s");
        assert!(mean >= 1.2, "{mean}");
        assert!(max >= 1.2, "{max}");
        assert!(value(&out, "vitals_pg_statement_calls_per_second", &l) > 0.0);
        // The normalised text is in /status, not in a label.
        let details = out.details.as_ref().expect("details for /status");
        let top = details["statements"]["top"].as_array().unwrap();
        let entry = top
            .iter()
            .find(|e| e["queryid"] == id.as_str())
            .expect("the statement in /status");
        assert_eq!(entry["query"], "SELECT pg_sleep($1)", "{entry}");
        // And on the page, with its mean.
        let page = page_of(&out);
        let row = page
            .lines()
            .find(|l| l.contains("SELECT pg_sleep($1)"))
            .unwrap_or_else(|| panic!("no statement row on the page:\n{page}"));
        assert!(row.contains(&format!("<td>{id}</td>")), "{row}");
        assert!(
            row.contains(&format!("{} s", (mean * 100.0).round() / 100.0)),
            "{row}"
        );

        // The default slow-statement check goes to warning (1 s / 5 s).
        let config = config::parse_str(
            "sources: {host: {enabled: false}, cgroup: {enabled: false}}\n",
            "t.yaml",
        )
        .unwrap();
        let mut engine = CheckEngine::new(&config);
        let (checks, _) = engine.evaluate(
            [SourceRound {
                source: "postgres/primary",
                output: &out,
                failed: false,
            }],
            Now::system(),
        );
        assert_eq!(
            checks.value(
                "vitals_check_status",
                &[("check", "pg_slow_statement"), ("queryid", id.as_str())]
            ),
            Some(1.0),
            "{:#?}",
            samples(&checks, "vitals_check_status")
        );
    });
}

fn statement_reset_never_negative(c: &Cluster) {
    block_on(async {
        let mut src = source(c);
        let client = superuser(c, "postgres", "resetter").await;
        ok_round(&mut src).await;
        for i in 0..50 {
            client
                .query("SELECT count(*) FROM pg_class WHERE relpages > $1", &[&i])
                .await
                .unwrap();
        }
        ok_round(&mut src).await;
        client
            .simple_query("SELECT pg_stat_statements_reset()")
            .await
            .unwrap();
        client.simple_query("SELECT 1").await.unwrap();
        for round in 0..2 {
            let out = ok_round(&mut src).await;
            let mut seen = 0;
            for family in [
                "vitals_pg_statement_calls_per_second",
                "vitals_pg_statement_mean_seconds",
                "vitals_pg_statement_exec_seconds_per_second",
                "vitals_pg_statement_rows_per_second",
                "vitals_pg_statement_shared_blocks_hit_per_second",
                "vitals_pg_statement_shared_blocks_read_per_second",
            ] {
                for (labels, v) in samples(&out, family) {
                    seen += 1;
                    assert!(v >= 0.0, "round {round}: {family}{labels:?} = {v}");
                }
            }
            assert!(seen > 0, "no statement figures after the reset");
        }
    });
}

fn three_hundred_statements_give_top_plus_one_series(c: &Cluster) {
    block_on(async {
        let mut cfg = config(c);
        cfg.statements.top = 20;
        let mut src = PostgresSource::new(&cfg);
        let client = superuser(c, "postgres", "many").await;
        ok_round(&mut src).await;
        for round in 0..2 {
            // 300 distinct statements: a different number of columns each,
            // so each has its own queryid.
            for i in 1..=300 {
                let sql = format!("SELECT {}", vec!["1"; i].join(", "));
                client.simple_query(&sql).await.unwrap();
            }
            let out = ok_round(&mut src).await;
            let series = samples(&out, "vitals_pg_statement_calls_per_second");
            let tracked = value(&out, "vitals_pg_statements_tracked", &[PRIMARY]);
            eprintln!(
                "round {round}: {tracked} statements tracked, {} series",
                series.len()
            );
            assert!(tracked >= 300.0, "{tracked}");
            assert_eq!(series.len(), 21, "{series:#?}");
            let other: Vec<_> = series
                .iter()
                .filter(|(l, _)| l.iter().any(|(k, v)| k == "queryid" && v == "other"))
                .collect();
            assert_eq!(other.len(), 1);
            for family in [
                "vitals_pg_statement_max_seconds",
                "vitals_pg_statement_exec_seconds_per_second",
            ] {
                assert_eq!(samples(&out, family).len(), 21, "{family}");
            }
        }
    });
}

/// PostgreSQL 15's pg_stat_statements keeps utility statements as typed,
/// literals included: a password set with ALTER ROLE must not reach a
/// label, /status or the page.
fn utility_statement_secrets_never_shown(c: &Cluster) {
    const SECRET: &str = "Leak-Pw-9xQ2";
    block_on(async {
        let admin = superuser(c, "postgres", "admin").await;
        admin
            .batch_execute(
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; \
                 SELECT pg_stat_statements_reset()",
            )
            .await
            .unwrap();
        let mut src = source(c);
        ok_round(&mut src).await;
        for _ in 0..3 {
            admin
                .batch_execute(&format!(
                    "DROP ROLE IF EXISTS leak_probe; CREATE ROLE leak_probe PASSWORD '{SECRET}'; \
                     ALTER ROLE leak_probe PASSWORD '{SECRET}'"
                ))
                .await
                .unwrap();
        }
        // The server does keep it: the test is not vacuous.
        let kept = number(
            c,
            &format!("SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%{SECRET}%'"),
        );
        assert!(
            kept >= 1.0,
            "pg_stat_statements has no text with the password"
        );
        // Fewer entries than places: every statement is a member, its text
        // read.
        let out = ok_round(&mut src).await;
        let details = out.details.as_ref().expect("details").to_string();
        assert!(
            details.contains("ALTER ROLE leak_probe PASSWORD '***'"),
            "{details}"
        );
        assert!(!details.contains(SECRET), "{details}");
        for family in &out.families {
            for sample in &family.samples {
                for (name, value) in &sample.labels {
                    assert!(!value.contains(SECRET), "{}{{{name}={value}}}", family.name);
                }
            }
        }
        let page = page_of(&out);
        assert!(
            page.contains("ALTER ROLE leak_probe PASSWORD '***'"),
            "{page}"
        );
        assert!(!page.contains(SECRET));
        admin.batch_execute("DROP ROLE leak_probe").await.unwrap();
    });
}

fn statement_budget_per_round(c: &Cluster) {
    block_on(async {
        let log = c.primary.log.clone();
        // Statements per round besides the texts: probe, main;
        // pg_stat_statements once per statements.interval (30 s), the
        // catalog once per catalog_interval (60 s): with the defaults none
        // of those falls in the 5 rounds; read every round, 4 per round.
        for (every_round, expected) in [(false, 2), (true, 4)] {
            let mut cfg = pg_config(c, c.primary.port, "primary");
            if every_round {
                cfg.statements.interval = config::Duration::from_millis(1);
                cfg.catalog_interval = config::Duration::from_millis(1);
            }
            let mut src = PostgresSource::new(&cfg);
            let rounds = 5;
            let lines = statements_in_rounds(&mut src, &log, rounds).await;
            let texts = lines
                .iter()
                .filter(|l| l.contains("pg_stat_statements(true)"))
                .count();
            eprintln!(
                "every_round={every_round}: {} statements in {rounds} rounds ({texts} text reads)",
                lines.len()
            );
            assert_eq!(lines.len() - texts, expected * rounds, "{lines:#?}");
            assert!(texts <= rounds, "{lines:#?}");
            // Never one statement per database.
            assert!(!lines.iter().any(|l| l.contains(WORK_DB)), "{lines:#?}");
        }
    });
}

/// Waits until the server's statistics show `sql` (a number) at `want` or
/// more: backends report their counters when idle or at exit.
async fn settled(c: &Cluster, sql: &str, want: f64) {
    eventually!(Duration::from_secs(20), Duration::from_millis(200), sql, {
        (number(c, sql) >= want).then_some(())
    });
}

fn xacts_sql() -> String {
    format!("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{WORK_DB}'")
}

fn rollback_ratio(c: &Cluster) {
    block_on(async {
        {
            let setup = superuser(c, WORK_DB, "setup").await;
            setup
                .batch_execute("CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v int)")
                .await
                .unwrap();
        }
        let mut src = source(c);
        ok_round(&mut src).await;
        let before = number(c, &xacts_sql());
        {
            let work = superuser(c, WORK_DB, "work").await;
            for i in 0..100 {
                let end = if i % 25 < 2 { "ROLLBACK" } else { "COMMIT" };
                work.batch_execute(&format!(
                    "BEGIN; INSERT INTO t VALUES ({i}, 0) ON CONFLICT DO NOTHING; {end}"
                ))
                .await
                .unwrap();
            }
        }
        settled(c, &xacts_sql(), before + 100.0).await;
        let out = ok_round(&mut src).await;
        let ratio = value(
            &out,
            "vitals_pg_database_rollback_ratio",
            &[PRIMARY, ("database", WORK_DB)],
        );
        eprintln!("8 rollbacks in 100 transactions: ratio {ratio}");
        assert!((ratio - 0.08).abs() <= 0.01, "{ratio}");
    });
}

fn deadlock_counts_one(c: &Cluster) {
    block_on(async {
        let a = superuser(c, WORK_DB, "dl_a").await;
        let b = superuser(c, WORK_DB, "dl_b").await;
        a.batch_execute(
            "CREATE TABLE IF NOT EXISTS dl (id int PRIMARY KEY, v int); \
             INSERT INTO dl VALUES (1, 0), (2, 0) ON CONFLICT DO NOTHING",
        )
        .await
        .unwrap();
        let mut src = source(c);
        ok_round(&mut src).await;
        let deadlocks =
            format!("SELECT deadlocks FROM pg_stat_database WHERE datname = '{WORK_DB}'");
        let before_db = number(c, &deadlocks);
        let out = ok_round(&mut src).await;
        let l = [PRIMARY, ("database", WORK_DB)];
        let before = value(&out, "vitals_pg_database_deadlocks_total", &l);
        assert_eq!(before, before_db);

        a.batch_execute("BEGIN; UPDATE dl SET v = 1 WHERE id = 1")
            .await
            .unwrap();
        b.batch_execute("BEGIN; UPDATE dl SET v = 1 WHERE id = 2")
            .await
            .unwrap();
        let a_side = tokio::spawn(async move {
            let r = a.batch_execute("UPDATE dl SET v = 2 WHERE id = 2").await;
            let _ = a.batch_execute("ROLLBACK").await;
            r.is_err()
        });
        // Give a's update time to block first (not a timing assertion: if
        // it has not, b blocks instead and a detects the deadlock).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let b_failed = b
            .batch_execute("UPDATE dl SET v = 2 WHERE id = 1")
            .await
            .is_err();
        let _ = b.batch_execute("ROLLBACK").await;
        let a_failed = a_side.await.unwrap();
        assert!(
            a_failed ^ b_failed,
            "exactly one side is the deadlock victim"
        );
        drop(b);
        settled(c, &deadlocks, before_db + 1.0).await;
        let out = ok_round(&mut src).await;
        let after = value(&out, "vitals_pg_database_deadlocks_total", &l);
        assert_eq!(after - before, 1.0);
    });
}

fn unused_index_counted_with_its_size(c: &Cluster) {
    let port = c.primary.port;
    c.psql(
        port,
        "CREATE TABLE idx_t (a int, b int); \
         INSERT INTO idx_t SELECT g, g FROM generate_series(1, 5000) g; \
         CREATE INDEX idx_t_b ON idx_t (b); \
         CREATE UNIQUE INDEX idx_t_a ON idx_t (a)",
    );
    let size = number(c, "SELECT pg_relation_size('idx_t_b')");
    assert!(size > 8192.0, "{size}");
    block_on(async {
        let out = ok_round(&mut source(c)).await;
        let l = [PRIMARY, ("database", "postgres")];
        // The unique index enforces a constraint: not "unused".
        assert_eq!(value(&out, "vitals_pg_unused_indexes", &l), 1.0);
        assert_eq!(value(&out, "vitals_pg_unused_index_bytes", &l), size);
    });
    c.psql(port, "DROP TABLE idx_t");
}

fn dead_tuples_reported(c: &Cluster) {
    c.psql(
        c.primary.port,
        "CREATE TABLE dead_t (id int); \
         INSERT INTO dead_t SELECT generate_series(1, 1000); \
         DELETE FROM dead_t WHERE id <= 300",
    );
    block_on(async {
        settled(
            c,
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'dead_t'",
            300.0,
        )
        .await;
        let out = ok_round(&mut source(c)).await;
        let l = [
            PRIMARY,
            ("database", "postgres"),
            ("table", "public.dead_t"),
        ];
        assert_eq!(value(&out, "vitals_pg_table_dead_tuples", &l), 300.0);
        let ratio = value(&out, "vitals_pg_table_dead_tuple_ratio", &l);
        assert!((ratio - 0.3).abs() < 1e-9, "{ratio}");
        // Never vacuumed (autovacuum is off in the test cluster).
        assert!(out
            .value("vitals_pg_table_last_vacuum_age_seconds", &l)
            .is_none());
        assert!(value(&out, "vitals_pg_autovacuum_max_workers", &[PRIMARY]) >= 1.0);
    });
}

/// `catalog_databases`: another database's tables and indexes, read over
/// a connection of its own; a database that cannot be read is an error of
/// the round that drops only its own figures.
fn other_databases_over_their_own_connection(c: &Cluster) {
    const OTHER_DB: &str = "deepother";
    c.psql(c.primary.port, &format!("CREATE DATABASE {OTHER_DB}"));
    block_on(async {
        let setup = superuser(c, OTHER_DB, "setup").await;
        setup
            .batch_execute(
                "CREATE TABLE other_t (id int, v int); \
                 INSERT INTO other_t SELECT g, g FROM generate_series(1, 1000) g; \
                 CREATE INDEX other_t_v ON other_t (v); \
                 DELETE FROM other_t WHERE id <= 250",
            )
            .await
            .unwrap();
        let dead_sql = "SELECT coalesce(sum(n_dead_tup), 0)::float8 FROM pg_stat_user_tables WHERE relname = 'other_t'";
        eventually!(
            Duration::from_secs(20),
            Duration::from_millis(200),
            dead_sql,
            {
                let dead: f64 = setup.query_one(dead_sql, &[]).await.unwrap().get(0);
                (dead >= 250.0).then_some(())
            }
        );
        let size: f64 = setup
            .query_one("SELECT pg_relation_size('other_t_v')::float8", &[])
            .await
            .unwrap()
            .get(0);

        let mut cfg = config(c);
        cfg.catalog_databases = vec![OTHER_DB.into(), "no_such_db".into()];
        let mut src = PostgresSource::new(&cfg);
        let (out, result) = support::source::round(&mut src).await;
        let error = result
            .expect_err("a database that does not exist fails its part")
            .to_string();
        assert!(error.contains("catalog of database no_such_db"), "{error}");
        assert!(error.contains("\"no_such_db\" does not exist"), "{error}");
        assert!(!error.contains(support::MONITOR_PASSWORD), "{error}");
        // The other database's figures, labelled with its name...
        let l = [PRIMARY, ("database", OTHER_DB)];
        assert_eq!(value(&out, "vitals_pg_unused_indexes", &l), 1.0);
        assert_eq!(value(&out, "vitals_pg_unused_index_bytes", &l), size);
        let t = [PRIMARY, ("database", OTHER_DB), ("table", "public.other_t")];
        assert_eq!(value(&out, "vitals_pg_table_dead_tuples", &t), 250.0);
        // ... next to the target's own database's, and the rest of the
        // round is there.
        assert!(out
            .value(
                "vitals_pg_unused_indexes",
                &[PRIMARY, ("database", "postgres")]
            )
            .is_some());
        assert_eq!(value(&out, "vitals_pg_up", &[PRIMARY]), 1.0);
        // /status lists both databases' unused indexes.
        let details = out.details.as_ref().expect("details");
        let dbs: Vec<&str> = details["unused_indexes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["database"].as_str())
            .collect();
        assert_eq!(dbs, ["postgres", OTHER_DB], "{details}");
    });
}

fn wraparound_age_matches_the_catalog(c: &Cluster) {
    // Use up some transaction IDs so the age is not trivially small.
    c.psql(
        c.primary.port,
        "DO $$ BEGIN FOR i IN 1..50 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$",
    );
    block_on(async {
        let out = ok_round(&mut source(c)).await;
        let catalog = number(
            c,
            "SELECT age(datfrozenxid) FROM pg_database WHERE datname = 'postgres'",
        );
        let l = [PRIMARY, ("database", "postgres")];
        let age = value(&out, "vitals_pg_database_xid_age", &l);
        eprintln!("age(datfrozenxid): vitals {age}, catalog {catalog}");
        // Nothing assigns a transaction ID between the two reads.
        assert_eq!(age, catalog);
        assert!(age > 50.0, "{age}");
        assert_eq!(
            value(&out, "vitals_pg_database_wraparound_ratio", &l),
            age / 2_147_483_648.0
        );
        assert!(out.value("vitals_pg_database_multixact_age", &l).is_some());
    });
}

fn prepared_transaction_holds_the_xmin(c: &Cluster) {
    let port = c.primary.port;
    c.psql(
        port,
        "BEGIN; INSERT INTO scratch (payload) VALUES ('held'); PREPARE TRANSACTION 'vitals_held'",
    );
    block_on(async {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let out = ok_round(&mut source(c)).await;
        let prepared = [PRIMARY, ("kind", "prepared_transaction")];
        let seconds = value(&out, "vitals_pg_oldest_xmin_age_seconds", &prepared);
        assert!(seconds >= 1.0, "{seconds}");
        assert!(value(&out, "vitals_pg_oldest_xmin_age_xids", &prepared) >= 0.0);
        // No replication here: the series is there, at 0.
        assert_eq!(
            value(
                &out,
                "vitals_pg_oldest_xmin_age_seconds",
                &[PRIMARY, ("kind", "replication")]
            ),
            0.0
        );
    });
    c.psql(port, "COMMIT PREPARED 'vitals_held'");
}
