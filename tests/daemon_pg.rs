//! The daemon with database sources against the real throwaway cluster
//! (primary, streaming standby, PgBouncer): secrets never leak anywhere a
//! user can see, and a blocked target never holds up readiness or scrapes
//! beyond its timeout.

mod common;
#[macro_use]
#[allow(unused_macros)]
mod support;

use common::{last_error, sample, Daemon};
use support::{Cluster, Options, MONITOR_PASSWORD, SUPER_PASSWORD};

const WRONG_PASSWORD: &str = "Wr0ng-Guess-Pw-77";

fn config_for(c: &Cluster, extra_sources: &str) -> String {
    let standby = c.standby();
    let bouncer = c.bouncer();
    format!(
        "interval: 1s\n\
         default_checks: false\n\
         sources:\n\
         \x20 cgroup: {{enabled: false}}\n\
         \x20 postgres:\n\
         \x20   - name: primary\n\
         \x20     dsn: \"{primary_dsn}\"\n\
         \x20     password_file: {pw}\n\
         \x20   - name: replica\n\
         \x20     dsn: \"host=127.0.0.1 port={standby_port} user=monitor password={MONITOR_PASSWORD} dbname=postgres\"\n\
         \x20   - name: wrong\n\
         \x20     dsn: \"host=127.0.0.1 port={primary_port} user=monitor dbname=postgres\"\n\
         \x20     password_env: VITALS_TEST_WRONG_PW\n\
         \x20 pgbouncer:\n\
         \x20   - name: bouncer\n\
         \x20     dsn: \"host=127.0.0.1 port={bouncer_port} user=monitor dbname=pgbouncer\"\n\
         \x20     password_env: VITALS_TEST_PW\n\
         {extra_sources}",
        primary_dsn = c.monitor_dsn(c.primary.port),
        pw = c.password_file.display(),
        standby_port = standby.port,
        primary_port = c.primary.port,
        bouncer_port = bouncer.port,
    )
}

#[test]
fn daemon_suite() {
    let cluster = Cluster::start(Options {
        standby: true,
        bouncer: true,
    });
    support::run_cases(
        &cluster,
        &[
            ("secrets_never_leak", secrets_never_leak),
            (
                "blocked_target_does_not_block",
                blocked_target_does_not_block,
            ),
            (
                "replica_lag_check_gates_readiness",
                replica_lag_check_gates_readiness,
            ),
            (
                "primary_and_bouncer_restarts_are_survived",
                primary_and_bouncer_restarts_are_survived,
            ),
        ],
    );
}

fn secrets_never_leak(c: &Cluster) {
    let d = Daemon::run_in(
        tempfile::tempdir().unwrap(),
        &config_for(c, ""),
        &[],
        &[
            ("VITALS_TEST_WRONG_PW", WRONG_PASSWORD),
            ("VITALS_TEST_PW", MONITOR_PASSWORD),
            ("RUST_LOG", "debug"),
        ],
    );
    // Two rounds, so reconnect paths ran too.
    d.wait_until("second round of every target", |d| {
        let text = d.get("/metrics").text();
        [
            "postgres/primary",
            "postgres/replica",
            "postgres/wrong",
            "pgbouncer/bouncer",
        ]
        .iter()
        .all(|s| sample(&text, "vitals_source_errors_total", &[("source", s)]).is_some())
            && sample(&text, "vitals_pg_up", &[("target", "replica")]) == Some(1.0)
    });
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let seen = d.surfaces();
    let (metrics, status, log) = (&seen.metrics, &seen.status, &seen.log);

    // The figures are right: right passwords connect, the wrong one does not.
    assert_eq!(
        sample(metrics, "vitals_pg_up", &[("target", "primary")]),
        Some(1.0),
        "{log}"
    );
    assert_eq!(
        sample(metrics, "vitals_pg_up", &[("target", "replica")]),
        Some(1.0)
    );
    assert_eq!(
        sample(metrics, "vitals_pg_up", &[("target", "wrong")]),
        Some(0.0)
    );
    assert_eq!(
        sample(metrics, "vitals_pgbouncer_up", &[("target", "bouncer")]),
        Some(1.0),
        "{log}"
    );
    assert_eq!(
        sample(
            metrics,
            "vitals_source_success",
            &[("source", "postgres/wrong")]
        ),
        Some(0.0)
    );
    // The failure names the target in the log and in /status.
    assert!(
        log.lines()
            .any(|l| l.contains("postgres/wrong") && l.contains("sampling round failed")),
        "{log}"
    );
    let error = last_error(status, "postgres/wrong").expect("an error for the wrong password");
    assert!(error.contains("wrong"), "{error}");
    assert!(error.contains("password authentication failed"), "{error}");

    // No password, right or wrong, anywhere a user can see.
    seen.assert_no_secret(&[MONITOR_PASSWORD, WRONG_PASSWORD, SUPER_PASSWORD]);
}

fn blocked_target_does_not_block(c: &Cluster) {
    // A "database" that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for stream in silent.incoming().take(16).flatten() {
                held.lock().unwrap().push(stream);
            }
        });
    }
    let text = format!(
        "interval: 1h\ndefault_checks: false\nsources:\n  cgroup: {{enabled: false}}\n  postgres:\n    - name: silent\n      dsn: \"host=127.0.0.1 port={silent_port} user=monitor dbname=postgres connect_timeout=30\"\n      password_file: {}\n      timeout: 3s\n    - name: primary\n      dsn: \"{}\"\n      password_file: {}\n",
        c.password_file.display(),
        c.monitor_dsn(c.primary.port),
        c.password_file.display(),
    );
    let d = Daemon::spawn_in(tempfile::tempdir().unwrap(), &text, &[], &[]);
    // While the silent target's first round hangs, readiness says who is
    // missing and /metrics answers with what the others found.
    d.wait_until("the primary's first round", |d| {
        sample(
            &d.get("/metrics").text(),
            "vitals_pg_up",
            &[("target", "primary")],
        ) == Some(1.0)
    });
    let ready = d.get("/health/ready");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(
        ready.text(),
        "not ready: waiting for the first round of: postgres/silent\n"
    );
    let scrape = d.get("/metrics");
    assert_eq!(scrape.status, 200);
    assert_eq!(
        sample(
            &scrape.text(),
            "vitals_source_success",
            &[("source", "host")]
        ),
        Some(1.0)
    );
    // The round is cut off by the timeout: the source fails, readiness comes.
    d.wait_ready();
    let text = d.get("/metrics").text();
    assert_eq!(
        sample(
            &text,
            "vitals_source_success",
            &[("source", "postgres/silent")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "vitals_pg_up", &[("target", "silent")]),
        Some(0.0),
        "{text}"
    );
    assert!(
        !held.lock().unwrap().is_empty(),
        "vitals never connected to the silent target"
    );
}

/// Replay paused on the standby while the primary takes writes: the
/// replica-lag check (a readiness check here) goes critical and
/// /health/ready answers 503 naming it; after resume both clear.
fn replica_lag_check_gates_readiness(c: &Cluster) {
    c.wait_streaming();
    let text = format!(
        "interval: 500ms\ndefault_checks: true\nsources:\n  cgroup: {{enabled: false}}\n  postgres:\n    - name: replica\n      dsn: \"{}\"\n      password_file: {}\n\
         checks:\n  - name: replica_lag\n    metric: 'vitals_pg_replication_lag_seconds{{target=\"replica\"}}'\n    warning: 1\n    critical: 2\n    hysteresis: 0.5\n    for: 0s\n    clear_for: 0s\n    readiness: true\n",
        c.monitor_dsn(c.standby().port),
        c.password_file.display(),
    );
    let d = Daemon::run(&text);
    let status = |d: &Daemon| {
        sample(
            &d.get("/metrics").text(),
            "vitals_check_status",
            &[("check", "replica_lag")],
        )
    };
    d.wait_until("replica_lag ok", |d| status(d) == Some(0.0));

    c.psql(
        c.primary.port,
        "CREATE TABLE IF NOT EXISTS lag_probe (x int)",
    );
    c.psql(c.standby().port, "SELECT pg_wal_replay_pause()");
    let writer_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = writer_stop.clone();
        let port = c.primary.port;
        let dsn_root = c.root().to_owned();
        std::thread::spawn(move || {
            // Bounded: at most 120 inserts, one every 250 ms.
            for _ in 0..120 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let _ = std::process::Command::new("runuser")
                    .args([
                        "-u",
                        "postgres",
                        "--",
                        "/usr/lib/postgresql/15/bin/psql",
                        "-X",
                        "-q",
                        "-h",
                    ])
                    .arg(&dsn_root)
                    .args([
                        "-p",
                        &port.to_string(),
                        "-U",
                        "postgres",
                        "-d",
                        "postgres",
                        "-c",
                        "INSERT INTO lag_probe VALUES (1)",
                    ])
                    .output();
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        })
    };
    d.wait_until("replica_lag critical", |d| status(d) == Some(2.0));
    let ready = d.get("/health/ready");
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.text(),
        "not ready: critical readiness checks: replica_lag{target=\"replica\"}\n"
    );
    let metrics = d.get("/metrics").text();
    let lag = sample(&metrics, "vitals_check_value", &[("check", "replica_lag")]).unwrap();
    assert!(lag > 2.0, "lag {lag}");
    assert!(
        sample(
            &metrics,
            "vitals_check_transitions_total",
            &[("check", "replica_lag"), ("to", "critical")]
        )
        .unwrap()
            >= 1.0
    );
    let json: serde_json::Value = serde_json::from_slice(&d.get("/status").body).unwrap();
    let inst = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "replica_lag")
        .unwrap();
    assert_eq!(inst["state"], "critical");
    assert_eq!(inst["readiness"], true);

    writer_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    c.psql(c.standby().port, "SELECT pg_wal_replay_resume()");
    d.wait_until("replica_lag back to ok", |d| status(d) == Some(0.0));
    assert_eq!(d.get("/health/ready").status, 200);
    let log = d.log();
    let transitions: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("check state changed") && l.contains("replica_lag"))
        .collect();
    eprintln!("transitions seen:\n{}", transitions.join("\n"));
    assert!(
        transitions.iter().any(|l| l.contains("to=critical")),
        "{log}"
    );
    assert!(
        transitions.last().is_some_and(|l| l.contains("to=ok")),
        "{log}"
    );
}

/// The primary and PgBouncer stopped and started again while the daemon
/// runs: up goes to 0 and back to 1, /metrics keeps answering, and vitals
/// itself is never restarted.
fn primary_and_bouncer_restarts_are_survived(c: &Cluster) {
    let text = format!(
        "interval: 500ms\ndefault_checks: false\nsources:\n  cgroup: {{enabled: false}}\n  postgres:\n    - name: primary\n      dsn: \"{}\"\n      password_file: {pw}\n  pgbouncer:\n    - name: bouncer\n      dsn: \"host=127.0.0.1 port={} user=monitor dbname=pgbouncer\"\n      password_file: {pw}\n",
        c.monitor_dsn(c.primary.port),
        c.bouncer().port,
        pw = c.password_file.display(),
    );
    let d = Daemon::run(&text);
    let pid = d.pid();
    let up = |d: &Daemon, name: &str, target: &str| {
        sample(&d.get("/metrics").text(), name, &[("target", target)])
    };
    d.wait_until("both up", |d| {
        up(d, "vitals_pg_up", "primary") == Some(1.0)
            && up(d, "vitals_pgbouncer_up", "bouncer") == Some(1.0)
    });

    c.stop_primary();
    d.wait_until("primary down", |d| {
        up(d, "vitals_pg_up", "primary") == Some(0.0)
    });
    let scrape = d.get("/metrics");
    assert_eq!(scrape.status, 200);
    assert_eq!(
        sample(
            &scrape.text(),
            "vitals_source_success",
            &[("source", "postgres/primary")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &scrape.text(),
            "vitals_source_success",
            &[("source", "host")]
        ),
        Some(1.0)
    );
    c.start_primary();
    // Reconnect backoff is at most 30 s; allow for it.
    d.wait_until("primary back", |d| {
        up(d, "vitals_pg_up", "primary") == Some(1.0)
    });

    c.stop_bouncer();
    d.wait_until("bouncer down", |d| {
        up(d, "vitals_pgbouncer_up", "bouncer") == Some(0.0)
    });
    c.start_bouncer();
    d.wait_until("bouncer back", |d| {
        up(d, "vitals_pgbouncer_up", "bouncer") == Some(1.0)
    });
    assert_eq!(d.pid(), pid);
    assert!(d.log().contains("source recovered"), "{}", d.log());
}
