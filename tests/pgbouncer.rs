//! The PgBouncer source against a real PgBouncer in front of a real
//! PostgreSQL primary. Databases: `app` (pool_size 3) and `tiny`
//! (pool_size 1), session pooling. One cluster for the binary, cases in
//! order; `VITALS_CASE=name` picks cases.

mod common;
#[macro_use]
mod support;

use std::time::Duration;
use support::{
    block_on, value, Cluster, LogCapture, Options, MONITOR_PASSWORD, MONITOR_USER, SUPER_PASSWORD,
};
use vitals::collectors::pgbouncer::{parse_databases, parse_pools, PgBouncerSource, Table};
use vitals::collectors::CollectError;
use vitals::config::{self, Dsn, PgBouncerConfig};
use vitals::metrics::{render, Format, Output};

#[test]
fn pgbouncer_suite() {
    let cluster = Cluster::start(Options {
        standby: false,
        bouncer: true,
    });
    support::run_cases(
        &cluster,
        &[
            ("pools_match_show_pools", pools_match_show_pools),
            (
                "exhausted_pool_has_a_waiting_client",
                exhausted_pool_has_a_waiting_client,
            ),
            (
                "counters_and_statements_per_round",
                counters_and_statements_per_round,
            ),
            ("passwords_never_leak", passwords_never_leak),
        ],
    );
    // Only when every case ran (VITALS_CASE picks some).
    if std::env::var_os("VITALS_CASE").is_none() {
        SEEN.assert_covered("vitals_pgbouncer_");
    }
}

fn bouncer_config(c: &Cluster, name: &str) -> PgBouncerConfig {
    PgBouncerConfig {
        name: name.to_owned(),
        dsn: Dsn::parse(&format!(
            "host=127.0.0.1 port={} user={MONITOR_USER} dbname=pgbouncer",
            c.bouncer().port
        ))
        .unwrap(),
        password_file: Some(c.password_file.clone()),
        password_env: None,
        password_command: None,
        password_command_ttl: config::Duration::from_secs(600),
        interval: None,
        timeout: config::Duration::from_secs(2),
    }
}

/// One round (`support::round`), its families checked against the catalog
/// and remembered.
async fn round(src: &mut PgBouncerSource) -> (Output, Result<(), CollectError>) {
    let (out, result) = support::round(src).await;
    SEEN.record(&out);
    (out, result)
}

/// The families the rounds of this suite emitted, for the catalog coverage.
static SEEN: common::catalog::Seen = common::catalog::Seen::new();

async fn ok_round(src: &mut PgBouncerSource) -> Output {
    let (out, result) = round(src).await;
    if let Err(e) = result {
        panic!("round failed: {e}");
    }
    out
}

/// A client of database `db` through PgBouncer.
async fn client(c: &Cluster, db: &str) -> tokio_postgres::Client {
    support::connect(c.bouncer().port, "postgres", SUPER_PASSWORD, db, "client").await
}

/// The console's own answer, through a separate admin connection.
async fn show(c: &Cluster, command: &str) -> Table {
    let admin = support::connect(
        c.bouncer().port,
        MONITOR_USER,
        MONITOR_PASSWORD,
        "pgbouncer",
        "check",
    )
    .await;
    Table::from_messages(
        &admin
            .simple_query(command)
            .await
            .expect("SHOW on the console"),
    )
}

const T: (&str, &str) = ("target", "bouncer");

fn pools_match_show_pools(c: &Cluster) {
    block_on(async {
        let in_tx = client(c, "app").await;
        in_tx.batch_execute("BEGIN; SELECT 1").await.unwrap();
        let idle = client(c, "app").await;
        idle.simple_query("SELECT 1").await.unwrap();

        let mut src = PgBouncerSource::new(&bouncer_config(c, "bouncer"));
        let out = ok_round(&mut src).await;
        assert_eq!(value(&out, "vitals_pgbouncer_up", &[T]), 1.0);

        let pools = parse_pools(&show(c, "SHOW POOLS").await).unwrap();
        let app = pools
            .iter()
            .find(|p| p.database == "app" && p.user == "postgres")
            .expect("pool app/postgres");
        let l = |state: &'static str| {
            [
                T,
                ("database", "app"),
                ("user", "postgres"),
                ("state", state),
            ]
        };
        for (state, n) in &app.clients {
            let state: &'static str = Box::leak(state.clone().into_boxed_str());
            assert_eq!(
                value(&out, "vitals_pgbouncer_pool_clients", &l(state)),
                *n,
                "cl_{state}"
            );
        }
        for (state, n) in &app.servers {
            let state: &'static str = Box::leak(state.clone().into_boxed_str());
            assert_eq!(
                value(&out, "vitals_pgbouncer_pool_servers", &l(state)),
                *n,
                "sv_{state}"
            );
        }
        let active = app.servers.iter().find(|(s, _)| s == "active").unwrap().1;
        assert_eq!(active, 2.0, "session pooling: each client holds a server");
        let pool = [T, ("database", "app"), ("user", "postgres")];
        assert_eq!(
            value(&out, "vitals_pgbouncer_pool_utilization_ratio", &pool),
            2.0 / 3.0
        );
        assert_eq!(
            value(&out, "vitals_pgbouncer_pool_maxwait_seconds", &pool),
            0.0
        );
        assert_eq!(
            value(
                &out,
                "vitals_pgbouncer_pool_info",
                &[pool[0], pool[1], ("pool_mode", "session")]
            ),
            1.0
        );

        let dbs = parse_databases(&show(c, "SHOW DATABASES").await).unwrap();
        let db = dbs.iter().find(|d| d.name == "app").unwrap();
        let d = [T, ("database", "app")];
        assert_eq!(value(&out, "vitals_pgbouncer_pool_size", &d), 3.0);
        assert_eq!(
            value(&out, "vitals_pgbouncer_database_current_connections", &d),
            db.current_connections.unwrap()
        );
        eprintln!("app pool: {app:?}");
    });
}

fn exhausted_pool_has_a_waiting_client(c: &Cluster) {
    block_on(async {
        let holder = client(c, "tiny").await;
        holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
        let port = c.bouncer().port;
        let waiter = tokio::spawn(async move {
            let waiting =
                support::connect(port, "postgres", SUPER_PASSWORD, "tiny", "waiter").await;
            waiting.simple_query("SELECT 1").await.map(|_| ())
        });

        let mut src = PgBouncerSource::new(&bouncer_config(c, "bouncer"));
        let pool = [T, ("database", "tiny"), ("user", "postgres")];
        let waiting = [pool[0], pool[1], pool[2], ("state", "waiting")];
        let first = eventually!(
            Duration::from_secs(10),
            Duration::from_millis(200),
            "a waiting client",
            {
                let out = ok_round(&mut src).await;
                (out.value("vitals_pgbouncer_pool_clients", &waiting) == Some(1.0)).then_some(out)
            }
        );
        assert_eq!(
            value(&first, "vitals_pgbouncer_pool_utilization_ratio", &pool),
            1.0
        );
        let m1 = value(&first, "vitals_pgbouncer_pool_maxwait_seconds", &pool);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let second = ok_round(&mut src).await;
        let m2 = value(&second, "vitals_pgbouncer_pool_maxwait_seconds", &pool);
        eprintln!("maxwait {m1}s -> {m2}s");
        assert!(m2 >= m1 + 1.4, "maxwait grows: {m1} -> {m2}");
        assert!(
            m2.fract() != 0.0,
            "microsecond precision, not whole seconds: {m2}"
        );
        let shown = parse_pools(&show(c, "SHOW POOLS").await).unwrap();
        let tiny = shown.iter().find(|p| p.database == "tiny").unwrap();
        assert_eq!(
            tiny.clients.iter().find(|(s, _)| s == "waiting").unwrap().1,
            1.0
        );
        assert!(
            tiny.maxwait_seconds.unwrap() >= m2,
            "SHOW POOLS, read later, agrees"
        );

        // Releasing the server lets the waiter through.
        drop(holder);
        let result = tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .expect("the waiting client gets a server")
            .expect("task");
        result.expect("the waiting client's query");
        let after = ok_round(&mut src).await;
        assert_eq!(
            value(&after, "vitals_pgbouncer_pool_clients", &waiting),
            0.0
        );
        assert_eq!(
            value(&after, "vitals_pgbouncer_pool_maxwait_seconds", &pool),
            0.0
        );
    });
}

fn counters_and_statements_per_round(c: &Cluster) {
    block_on(async {
        let mut src = PgBouncerSource::new(&bouncer_config(c, "bouncer"));
        // A database shows up in SHOW STATS once it has been used.
        let queries = |out: &Output, db: &'static str| {
            out.value("vitals_pgbouncer_queries_total", &[T, ("database", db)])
                .unwrap_or(0.0)
        };
        let before = ok_round(&mut src).await;
        let app = client(c, "app").await;
        for _ in 0..5 {
            app.simple_query("SELECT 1").await.unwrap();
        }
        // Totals are published every stats_period (1 s here).
        let q0 = queries(&before, "app");
        let after = eventually!(
            Duration::from_secs(10),
            Duration::from_millis(500),
            "counters grow",
            {
                let out = ok_round(&mut src).await;
                (queries(&out, "app") >= q0 + 5.0).then_some(out)
            }
        );
        let xacts = |out: &Output| {
            out.value(
                "vitals_pgbouncer_transactions_total",
                &[T, ("database", "app")],
            )
            .unwrap_or(0.0)
        };
        assert!(xacts(&after) >= xacts(&before) + 5.0);

        // Server side: PgBouncer (verbose = 2) logs every console command.
        let log = c.bouncer().log.clone();
        let from = std::fs::metadata(&log).unwrap().len() as usize;
        let rounds = 5;
        for _ in 0..rounds {
            ok_round(&mut src).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let text = std::fs::read(&log).unwrap();
        let text = String::from_utf8_lossy(text.get(from..).unwrap_or_default()).into_owned();
        let commands: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once("got admin query: ").map(|(_, q)| q))
            .collect();
        eprintln!(
            "pgbouncer: {} console statements in {rounds} rounds",
            commands.len()
        );
        assert_eq!(commands.len(), 3 * rounds, "{commands:?}");
        assert_eq!(
            commands[..3],
            ["SHOW POOLS", "SHOW DATABASES", "SHOW STATS"]
        );
        let per_round = commands.len() / rounds;
        assert_eq!(per_round, 3);
    });
}

fn passwords_never_leak(c: &Cluster) {
    let capture = LogCapture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    const WRONG: &str = "Wr0ng-Bouncer-Pw-7t";
    let dir = tempfile::tempdir().unwrap();
    let wrong_file = dir.path().join("wrong.pw");
    std::fs::write(&wrong_file, format!("{WRONG}\n")).unwrap();
    let mut errors = Vec::new();
    let mut outputs = Vec::new();
    block_on(async {
        let mut cfg = bouncer_config(c, "wrongbouncer");
        cfg.password_file = Some(wrong_file.clone());
        let mut src = PgBouncerSource::new(&cfg);
        let (out, result) = round(&mut src).await;
        assert_eq!(
            value(&out, "vitals_pgbouncer_up", &[("target", "wrongbouncer")]),
            0.0
        );
        let e = result.expect_err("wrong password").to_string();
        eprintln!("wrong password: {e}");
        assert!(e.contains("pgbouncer target wrongbouncer"), "{e}");
        errors.push(e);
        outputs.push(out);

        let mut in_dsn = bouncer_config(c, "dsnbouncer");
        in_dsn.password_file = None;
        in_dsn.dsn = Dsn::parse(&format!(
            "host=127.0.0.1 port={} user={MONITOR_USER} dbname=pgbouncer password={MONITOR_PASSWORD}",
            c.bouncer().port
        ))
        .unwrap();
        let mut src = PgBouncerSource::new(&in_dsn);
        outputs.push(ok_round(&mut src).await);
        errors.push(format!("{in_dsn:?}"));
    });
    let logs = capture.text();
    assert!(logs.contains("wrongbouncer"), "{logs}");
    let exposition = render(outputs.iter(), Format::Text);
    for secret in [WRONG, MONITOR_PASSWORD, SUPER_PASSWORD] {
        assert!(!logs.contains(secret), "password in logs: {logs}");
        assert!(!exposition.contains(secret), "password in metrics");
        for e in &errors {
            assert!(!e.contains(secret), "password in error: {e}");
        }
    }
}
