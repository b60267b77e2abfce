//! The PostgreSQL source against a real primary and streaming standby.
//!
//! One cluster for the whole binary; the cases run in order (the later ones
//! stop and restart servers). `VITALS_CASE=name cargo test --test postgres
//! -- --nocapture` runs only the cases whose name contains `name`; the
//! figures seen are printed with `--nocapture`.

mod common;
#[macro_use]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use support::source::{ok_round, pg_config, round, statements_in_rounds, value};
use support::{block_on, Cluster, LogCapture, Options};
use vitals::collectors::postgres::{PostgresSource, STATES};
use vitals::config::{self, Dsn, HeartbeatConfig};
use vitals::metrics::{render, Format, Output};

#[test]
fn postgres_suite() {
    let cluster = Cluster::start(Options {
        standby: true,
        bouncer: false,
    });
    support::run_cases(
        &cluster,
        &[
            (
                "connections_match_pg_stat_activity",
                connections_match_pg_stat_activity,
            ),
            ("statements_per_round", statements_per_round),
            ("passwords_never_leak", passwords_never_leak),
            (
                "lock_blocked_statement_is_cut_off",
                lock_blocked_statement_is_cut_off,
            ),
            ("replication_pause_and_resume", replication_pause_and_resume),
            ("heartbeat_tracks_a_pause", heartbeat_tracks_a_pause),
            ("fresh_standby_never_replayed", fresh_standby_never_replayed),
            ("idle_primary_keeps_lag_zero", idle_primary_keeps_lag_zero),
            (
                "primary_stopped_and_restarted",
                primary_stopped_and_restarted,
            ),
        ],
    );
    // Only when every case ran (VITALS_CASE picks some).
    if std::env::var_os("VITALS_CASE").is_none() {
        let deep = support::source::deep_families();
        support::source::assert_covered("vitals_pg_", |n| !deep.contains(&n));
    }
}

/// Counts from the server, as `name -> n`.
async fn counts(client: &tokio_postgres::Client, sql: &str) -> BTreeMap<String, i64> {
    client
        .query(sql, &[])
        .await
        .expect("counting query")
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect()
}

fn connections_match_pg_stat_activity(c: &Cluster) {
    block_on(async {
        let port = c.primary.port;
        let check = c.connect(port, "check").await;
        // Extra sessions: one idle in transaction, one running pg_sleep,
        // one waiting on a lock held by another, two idle.
        let idle_tx = c.connect(port, "webapp").await;
        idle_tx.batch_execute("BEGIN; SELECT 1").await.unwrap();
        let sleeper = c.connect(port, "webapp").await;
        let sleep = tokio::spawn(async move {
            let _ = sleeper.simple_query("SELECT pg_sleep(60)").await;
        });
        let holder = c.connect(port, "locker").await;
        holder
            .batch_execute("BEGIN; LOCK TABLE scratch IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let waiter = c.connect(port, "locker").await;
        let wait = tokio::spawn(async move {
            let _ = waiter
                .simple_query("BEGIN; LOCK TABLE scratch IN ACCESS EXCLUSIVE MODE")
                .await;
        });
        let _worker = c.connect(port, "worker").await;
        let _shell = c.connect(port, "psql").await;
        eventually!(
            Duration::from_secs(10),
            Duration::from_millis(100),
            "sessions settled",
            {
                let n: i64 = check
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE (application_name = 'webapp' AND state = 'active') OR wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
                (n == 2).then_some(())
            }
        );

        let mut cfg = pg_config(c, port, "primary");
        cfg.pools = BTreeMap::from([("webapp".to_owned(), 4), ("reporting".to_owned(), 5)]);
        cfg.top_applications = 3;
        let mut src = PostgresSource::new(&cfg);
        let first = ok_round(&mut src).await;

        // The server's own answer. At this moment `check` is active and the
        // agent's session idle, the reverse of the agent's view: per-state
        // counts are the same either way.
        let by_state = counts(
            &check,
            "SELECT state, count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND state IS NOT NULL GROUP BY 1",
        )
        .await;
        let t = ("target", "primary");
        for state in STATES {
            let expected = by_state.get(state).copied().unwrap_or(0) as f64;
            assert_eq!(
                value(&first, "vitals_pg_connections", &[t, ("state", state)]),
                expected,
                "state {state}"
            );
        }
        // The session left in its transaction and the lock holder.
        assert_eq!(by_state.get("idle in transaction"), Some(&2));
        let apps: Vec<(String, i64)> = check
            .query(
                "SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC, 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for (app, n) in apps.iter().take(3) {
            assert_eq!(
                value(
                    &first,
                    "vitals_pg_connections_by_application",
                    &[t, ("application_name", app)]
                ),
                *n as f64,
                "application {app}"
            );
        }
        let rest: i64 = apps.iter().skip(3).map(|(_, n)| n).sum();
        assert!(rest > 0, "the setup has more than 3 applications: {apps:?}");
        assert_eq!(
            value(
                &first,
                "vitals_pg_connections_by_application",
                &[t, ("application_name", "other")]
            ),
            rest as f64
        );
        assert_eq!(
            first
                .family("vitals_pg_connections_by_application")
                .unwrap()
                .samples
                .len(),
            4
        );
        let total: i64 = apps.iter().map(|(_, n)| n).sum();
        assert_eq!(value(&first, "vitals_pg_max_connections", &[t]), 40.0);
        assert_eq!(value(&first, "vitals_pg_reserved_connections", &[t]), 3.0);
        assert_eq!(
            value(&first, "vitals_pg_connection_utilization_ratio", &[t]),
            total as f64 / 37.0
        );
        assert_eq!(
            value(
                &first,
                "vitals_pg_pool_utilization_ratio",
                &[t, ("application_name", "webapp")]
            ),
            0.5
        );
        assert_eq!(
            value(
                &first,
                "vitals_pg_pool_utilization_ratio",
                &[t, ("application_name", "reporting")]
            ),
            0.0
        );
        let waiting: i64 = check
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            value(&first, "vitals_pg_lock_waiters", &[t]),
            waiting as f64
        );
        assert_eq!(waiting, 1);
        assert_eq!(value(&first, "vitals_pg_up", &[t]), 1.0);
        assert_eq!(value(&first, "vitals_pg_in_recovery", &[t]), 0.0);
        let version = first.family("vitals_pg_info").unwrap().samples[0]
            .label("version")
            .unwrap()
            .to_owned();
        assert!(version.starts_with("15."), "{version}");
        assert!(value(&first, "vitals_pg_probe_seconds", &[t]) > 0.0);

        // Ages grow with time.
        let idle1 = value(&first, "vitals_pg_idle_in_transaction_max_seconds", &[t]);
        let query1 = value(&first, "vitals_pg_longest_query_seconds", &[t]);
        assert!(idle1 > 0.0 && query1 > 0.0, "idle {idle1} query {query1}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let second = ok_round(&mut src).await;
        let idle2 = value(&second, "vitals_pg_idle_in_transaction_max_seconds", &[t]);
        let query2 = value(&second, "vitals_pg_longest_query_seconds", &[t]);
        assert!(
            idle2 >= idle1 + 1.4,
            "idle in transaction {idle1} -> {idle2}"
        );
        assert!(query2 >= query1 + 1.4, "longest query {query1} -> {query2}");
        eprintln!("idle in transaction {idle1:.3}s -> {idle2:.3}s; longest query {query1:.3}s -> {query2:.3}s");

        // Leave nothing behind for the next cases.
        holder.batch_execute("ROLLBACK").await.unwrap();
        check
            .batch_execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ('webapp', 'locker', 'worker', 'psql')")
            .await
            .unwrap();
        let _ = tokio::join!(sleep, wait);
    });
}

fn statements_per_round(c: &Cluster) {
    block_on(async {
        let log = c.primary.log.clone();
        // probe, main (pg_stat_statements is not installed in this cluster;
        // see postgres_deep for the budget with it), + heartbeat.
        for (heartbeat, expected) in [(false, 2), (true, 3)] {
            let mut cfg = pg_config(c, c.primary.port, "primary");
            if heartbeat {
                cfg.heartbeat = Some(HeartbeatConfig {
                    table: support::HEARTBEAT_TABLE.into(),
                    write: true,
                });
            }
            let mut src = PostgresSource::new(&cfg);
            let rounds = 5;
            let lines = statements_in_rounds(&mut src, &log, rounds).await;
            eprintln!(
                "heartbeat={heartbeat}: {} statements in {rounds} rounds, {} per round",
                lines.len(),
                lines.len() as f64 / rounds as f64
            );
            assert_eq!(lines.len(), expected * rounds, "{lines:#?}");
        }
    });
}

fn passwords_never_leak(c: &Cluster) {
    let capture = LogCapture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    const WRONG: &str = "Wr0ng-Passw0rd-Kq5";
    let dir = tempfile::tempdir().unwrap();
    let wrong_file = dir.path().join("wrong.pw");
    std::fs::write(&wrong_file, format!("{WRONG}\n")).unwrap();
    let env_name = "VITALS_TEST_PG_PASSWORD";
    std::env::set_var(env_name, support::MONITOR_PASSWORD);
    let port = c.primary.port;

    let mut errors = Vec::new();
    let mut outputs = Vec::new();
    block_on(async {
        // Wrong password, from a file and inside the DSN.
        let mut cfg = pg_config(c, port, "wrongfile");
        cfg.password_file = Some(wrong_file.clone());
        let mut wrong_in_dsn = pg_config(c, port, "wrongdsn");
        wrong_in_dsn.dsn =
            Dsn::parse(&format!("{} password={WRONG}", c.monitor_dsn(port))).unwrap();
        wrong_in_dsn.password_file = None;
        for cfg in [cfg, wrong_in_dsn] {
            let mut src = PostgresSource::new(&cfg);
            let (out, result) = round(&mut src).await;
            assert_eq!(
                value(&out, "vitals_pg_up", &[("target", cfg.name.as_str())]),
                0.0
            );
            let e = result
                .expect_err("a wrong password fails the round")
                .to_string();
            assert!(e.contains(&format!("target {}", cfg.name)), "{e}");
            assert!(e.contains("password authentication failed"), "{e}");
            eprintln!("wrong password error: {e}");
            errors.push(e);
            // A second round within the backoff delay says so, still naming the target.
            let (_, again) = round(&mut src).await;
            errors.push(again.expect_err("still failing").to_string());
            outputs.push(out);
        }

        // Right password from an environment variable and inside the DSN.
        let mut from_env = pg_config(c, port, "fromenv");
        from_env.password_file = None;
        from_env.password_env = Some(env_name.into());
        let mut in_dsn = pg_config(c, port, "indsn");
        in_dsn.password_file = None;
        in_dsn.dsn = Dsn::parse(&format!(
            "postgresql://{}:{}@127.0.0.1:{port}/postgres",
            support::MONITOR_USER,
            support::MONITOR_PASSWORD
        ))
        .unwrap();
        for cfg in [from_env, in_dsn] {
            let mut src = PostgresSource::new(&cfg);
            let out = ok_round(&mut src).await;
            assert_eq!(
                value(&out, "vitals_pg_up", &[("target", cfg.name.as_str())]),
                1.0
            );
            outputs.push(out);
        }

        // Right password, server gone (nothing listens on that port).
        let mut gone = pg_config(c, support::free_port(), "gone");
        gone.dsn = Dsn::parse(&format!(
            "host=127.0.0.1 port={} user=monitor password={} dbname=postgres",
            support::free_port(),
            support::MONITOR_PASSWORD
        ))
        .unwrap();
        gone.password_file = None;
        let mut src = PostgresSource::new(&gone);
        let (out, result) = round(&mut src).await;
        assert_eq!(value(&out, "vitals_pg_up", &[("target", "gone")]), 0.0);
        errors.push(result.expect_err("nothing listens there").to_string());
        outputs.push(out);
        errors.push(format!("{gone:?}"));
    });

    let logs = capture.text();
    assert!(
        logs.contains("wrongfile"),
        "a log line names the target: {logs}"
    );
    assert!(logs.contains("wrongdsn"), "{logs}");
    let exposition = render(outputs.iter(), Format::Text);
    for secret in [WRONG, support::MONITOR_PASSWORD, support::SUPER_PASSWORD] {
        assert!(!logs.contains(secret), "password in logs: {logs}");
        assert!(
            !exposition.contains(secret),
            "password in metrics: {exposition}"
        );
        for e in &errors {
            assert!(!e.contains(secret), "password in error: {e}");
        }
    }
    std::env::remove_var(env_name);
}

fn lock_blocked_statement_is_cut_off(c: &Cluster) {
    block_on(async {
        let port = c.primary.port;
        let mut cfg = pg_config(c, port, "primary");
        cfg.timeout = config::Duration::from_secs(1);
        cfg.heartbeat = Some(HeartbeatConfig {
            table: support::HEARTBEAT_TABLE.into(),
            write: true,
        });
        let mut src = PostgresSource::new(&cfg);
        ok_round(&mut src).await;

        let holder = c.connect(port, "holder").await;
        holder
            .batch_execute(&format!(
                "BEGIN; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
                support::HEARTBEAT_TABLE
            ))
            .await
            .unwrap();
        // Another source rounds concurrently with the blocked one and is not held up.
        let mut other = PostgresSource::new(&pg_config(c, port, "other"));
        let ((blocked_out, blocked), (other_out, other_result)) =
            tokio::join!(round(&mut src), round(&mut other));
        other_result.expect("the other source is not held up by the lock");
        assert_eq!(
            value(&other_out, "vitals_pg_up", &[("target", "other")]),
            1.0
        );
        let e = blocked
            .expect_err("the blocked heartbeat is reported")
            .to_string();
        eprintln!("blocked round: {e}");
        assert!(
            e.contains("target primary") && e.contains("heartbeat write"),
            "{e}"
        );
        assert!(
            e.contains("statement timeout"),
            "cut off by statement_timeout: {e}"
        );
        // The figures read before the heartbeat still stand.
        assert_eq!(
            value(&blocked_out, "vitals_pg_up", &[("target", "primary")]),
            1.0
        );
        assert!(blocked_out
            .value("vitals_pg_connections", &[("state", "idle in transaction")])
            .is_some());
        // Nothing of the agent's is still waiting on the lock.
        let waiting: i64 = holder
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vitals' AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(waiting, 0);
        holder.batch_execute("ROLLBACK").await.unwrap();
        // Same source, same connection: the next round is complete.
        ok_round(&mut src).await;
    });
}

fn standby_source(c: &Cluster) -> PostgresSource {
    PostgresSource::new(&pg_config(c, c.standby().port, "replica"))
}

const REPLICA: (&str, &str) = ("target", "replica");
const PRIMARY: (&str, &str) = ("target", "primary");
const STANDBY: (&str, &str) = ("standby", support::STANDBY_NAME);

async fn write_some(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "INSERT INTO scratch (payload) SELECT repeat('x', 100) FROM generate_series(1, 200)",
        )
        .await
        .unwrap();
}

/// Resumes replay and waits for both sides to read about 0 again.
async fn resume_and_settle(
    c: &Cluster,
    standby: &mut PostgresSource,
    primary: &mut PostgresSource,
) -> (f64, f64) {
    c.psql(c.standby().port, "SELECT pg_wal_replay_resume()");
    eventually!(
        Duration::from_secs(30),
        Duration::from_millis(500),
        "caught up after resume",
        {
            let s = ok_round(standby).await;
            let p = ok_round(primary).await;
            let lag = value(&s, "vitals_pg_replication_lag_seconds", &[REPLICA]);
            let bytes = value(&s, "vitals_pg_replication_lag_bytes", &[REPLICA]);
            let primary_bytes = value(
                &p,
                "vitals_pg_standby_replay_lag_bytes",
                &[PRIMARY, STANDBY],
            );
            // PostgreSQL forgets the lag times (NULL, read as 0) once the standby
            // has reported full replay twice in a row.
            let primary_lag = value(
                &p,
                "vitals_pg_standby_replay_lag_seconds",
                &[PRIMARY, STANDBY],
            );
            (lag == 0.0 && bytes == 0.0 && primary_bytes == 0.0 && primary_lag == 0.0)
                .then_some((lag, primary_lag))
        }
    )
}

/// Replay running and caught up, whatever an earlier case left behind.
fn replay_running(c: &Cluster) {
    c.psql(c.standby().port, "SELECT pg_wal_replay_resume()");
    c.wait_streaming();
}

fn replication_pause_and_resume(c: &Cluster) {
    replay_running(c);
    block_on(async {
        let writer = c.connect(c.primary.port, "writer").await;
        let mut standby = standby_source(c);
        let mut primary = PostgresSource::new(&pg_config(c, c.primary.port, "primary"));
        let s0 = ok_round(&mut standby).await;
        assert_eq!(value(&s0, "vitals_pg_in_recovery", &[REPLICA]), 1.0);
        assert_eq!(
            value(&s0, "vitals_pg_replication_stream_up", &[REPLICA]),
            1.0
        );
        let p0 = ok_round(&mut primary).await;
        assert!(p0
            .value("vitals_pg_standby_write_lag_seconds", &[PRIMARY, STANDBY])
            .is_some());
        assert_eq!(
            value(
                &p0,
                "vitals_pg_slot_active",
                &[PRIMARY, ("slot", support::SLOT_NAME)]
            ),
            1.0
        );
        assert!(
            value(
                &p0,
                "vitals_pg_slot_retained_bytes",
                &[PRIMARY, ("slot", support::SLOT_NAME)]
            ) >= 0.0
        );
        // The primary has no standby view of itself, and vice versa.
        assert!(p0.value("vitals_pg_replication_lag_seconds", &[]).is_none());
        assert!(s0
            .value("vitals_pg_standby_replay_lag_seconds", &[])
            .is_none());

        c.psql(c.standby().port, "SELECT pg_wal_replay_pause()");
        let mut seen = Vec::new();
        for _ in 0..5 {
            write_some(&writer).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let s = ok_round(&mut standby).await;
            let p = ok_round(&mut primary).await;
            seen.push((
                value(&s, "vitals_pg_replication_lag_seconds", &[REPLICA]),
                value(&s, "vitals_pg_replication_lag_bytes", &[REPLICA]),
                value(
                    &p,
                    "vitals_pg_standby_replay_lag_seconds",
                    &[PRIMARY, STANDBY],
                ),
                value(
                    &p,
                    "vitals_pg_standby_replay_lag_bytes",
                    &[PRIMARY, STANDBY],
                ),
                value(
                    &p,
                    "vitals_pg_slot_retained_bytes",
                    &[PRIMARY, ("slot", support::SLOT_NAME)],
                ),
            ));
            assert_eq!(
                value(&s, "vitals_pg_replication_stream_up", &[REPLICA]),
                1.0
            );
        }
        eprintln!("paused (standby lag s, standby lag bytes, primary replay lag s, primary replay bytes, slot retained bytes): {seen:?}");
        let (first, last) = (seen[0], seen[seen.len() - 1]);
        assert!(
            first.0 > 0.0 && first.1 > 0.0,
            "lag as soon as replay is behind: {first:?}"
        );
        assert!(
            last.0 >= first.0 + 3.0,
            "standby lag seconds grow: {seen:?}"
        );
        assert!(last.1 > first.1, "standby lag bytes grow: {seen:?}");
        assert!(
            last.2 > first.2 && last.2 >= 2.0,
            "primary replay lag seconds grow: {seen:?}"
        );
        assert!(last.3 > first.3, "primary replay lag bytes grow: {seen:?}");
        // A physical slot's restart_lsn follows the standby's flush position,
        // not its replay: a paused replay retains nothing more.
        assert!(
            last.4 <= last.3,
            "the slot retains at most what is not replayed: {seen:?}"
        );

        let settled = resume_and_settle(c, &mut standby, &mut primary).await;
        eprintln!(
            "after resume: standby lag {}s, primary replay lag {}s",
            settled.0, settled.1
        );
        assert!(
            settled.1 < 2.0,
            "primary replay lag back near 0: {settled:?}"
        );
    });
}

fn heartbeat_tracks_a_pause(c: &Cluster) {
    replay_running(c);
    block_on(async {
        let mut writer_cfg = pg_config(c, c.primary.port, "primary");
        writer_cfg.heartbeat = Some(HeartbeatConfig {
            table: support::HEARTBEAT_TABLE.into(),
            write: true,
        });
        let mut reader_cfg = pg_config(c, c.standby().port, "replica");
        reader_cfg.heartbeat = Some(HeartbeatConfig {
            table: support::HEARTBEAT_TABLE.into(),
            write: false,
        });
        let mut writer = PostgresSource::new(&writer_cfg);
        let mut reader = PostgresSource::new(&reader_cfg);
        let beat = |out: &Output| value(out, "vitals_pg_heartbeat_lag_seconds", &[REPLICA]);

        let w = ok_round(&mut writer).await;
        assert!(
            w.value("vitals_pg_heartbeat_lag_seconds", &[]).is_none(),
            "the writer reports no lag"
        );
        let before = eventually!(
            Duration::from_secs(10),
            Duration::from_millis(200),
            "heartbeat replicated",
            {
                let lag = beat(&ok_round(&mut reader).await);
                (lag < 1.0).then_some(lag)
            }
        );

        c.psql(c.standby().port, "SELECT pg_wal_replay_pause()");
        let mut seen = Vec::new();
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            ok_round(&mut writer).await;
            seen.push(beat(&ok_round(&mut reader).await));
        }
        eprintln!("heartbeat lag: before pause {before:.3}s, during pause {seen:?}");
        assert!(
            seen[3] >= seen[0] + 2.5 && seen[3] >= 3.5,
            "heartbeat lag grows during the pause: {seen:?}"
        );

        c.psql(c.standby().port, "SELECT pg_wal_replay_resume()");
        let after = eventually!(
            Duration::from_secs(10),
            Duration::from_millis(300),
            "heartbeat lag back",
            {
                ok_round(&mut writer).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let lag = beat(&ok_round(&mut reader).await);
                (lag < 1.5).then_some(lag)
            }
        );
        eprintln!("heartbeat lag after resume {after:.3}s");

        // The same `write: true` config pointed at a standby (after a
        // failover, say) reads instead of failing on a read-only server.
        let mut flipped_cfg = reader_cfg.clone();
        flipped_cfg.heartbeat = writer_cfg.heartbeat.clone();
        let mut flipped = PostgresSource::new(&flipped_cfg);
        let lag = beat(&ok_round(&mut flipped).await);
        assert!(lag < 5.0, "{lag}");
    });
}

fn fresh_standby_never_replayed(c: &Cluster) {
    replay_running(c);
    block_on(async {
        // A restarted standby has not replayed a transaction yet:
        // pg_last_xact_replay_timestamp() is NULL until it does. Its redo
        // starts at the last restartpoint, so checkpoint first, or the
        // commits since would be replayed again at startup.
        c.psql(c.primary.port, "CHECKPOINT");
        let target = c.psql(c.primary.port, "SELECT pg_current_wal_lsn()");
        let caught_up = format!("SELECT pg_last_wal_replay_lsn() >= '{}'", target.trim());
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while c.psql(c.standby().port, &caught_up).trim() != "t" {
            assert!(
                std::time::Instant::now() < until,
                "standby did not replay the checkpoint"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c.psql(c.standby().port, "CHECKPOINT");
        c.restart_standby();
        c.wait_streaming();
        let port = c.standby().port;
        c.psql(port, "SELECT pg_wal_replay_pause()");
        let never = || {
            c.psql(port, "SELECT pg_last_xact_replay_timestamp() IS NULL")
                .trim()
                == "t"
        };
        assert!(
            never(),
            "the restarted standby has not replayed a transaction"
        );
        let mut standby = standby_source(c);
        let mut primary = PostgresSource::new(&pg_config(c, c.primary.port, "primary"));
        let s0 = ok_round(&mut standby).await;
        let lag0 = value(&s0, "vitals_pg_replication_lag_seconds", &[REPLICA]);

        let writer = c.connect(c.primary.port, "writer").await;
        let mut seen = Vec::new();
        for _ in 0..4 {
            write_some(&writer).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let s = ok_round(&mut standby).await;
            seen.push((
                value(&s, "vitals_pg_replication_lag_seconds", &[REPLICA]),
                value(&s, "vitals_pg_replication_lag_bytes", &[REPLICA]),
            ));
        }
        assert!(
            never(),
            "still no replayed transaction, so the test shows what it means to"
        );
        eprintln!("never-replayed standby: lag at pause {lag0}s, then (s, bytes) {seen:?}");
        for (lag, bytes) in &seen {
            assert!(
                *lag > 0.0 && *bytes > 0.0,
                "never 0 while replay is stuck: {seen:?}"
            );
        }
        assert!(seen[3].0 >= seen[0].0 + 2.5, "lag grows: {seen:?}");
        assert!(seen[3].1 > seen[0].1, "bytes grow: {seen:?}");

        let settled = resume_and_settle(c, &mut standby, &mut primary).await;
        eprintln!("never-replayed standby after resume: {settled:?}");
    });
}

fn idle_primary_keeps_lag_zero(c: &Cluster) {
    replay_running(c);
    block_on(async {
        let mut standby = standby_source(c);
        let port = c.standby().port;
        let mut seen = Vec::new();
        for _ in 0..11 {
            let s = ok_round(&mut standby).await;
            seen.push((
                value(&s, "vitals_pg_replication_lag_seconds", &[REPLICA]),
                value(&s, "vitals_pg_replication_stream_up", &[REPLICA]),
                value(
                    &s,
                    "vitals_pg_replication_last_message_age_seconds",
                    &[REPLICA],
                ),
            ));
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        // What the naive now() - pg_last_xact_replay_timestamp() reads now.
        let naive: f64 = c
            .psql(
                port,
                "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())",
            )
            .trim()
            .parse()
            .unwrap();
        eprintln!("idle primary, 33 s: (lag s, stream_up, last message age s) {seen:?}; naive lag {naive:.1}s");
        assert!(
            naive > 30.0,
            "the primary really was idle: naive lag {naive}"
        );
        assert!(
            seen.iter().all(|s| s.1 == 1.0),
            "stream_up stays 1: {seen:?}"
        );
        assert!(
            seen.iter().all(|s| s.0 < 1.0),
            "lag stays about 0: {seen:?}"
        );
        assert!(
            seen.iter().filter(|s| s.0 == 0.0).count() >= 9,
            "lag is 0: {seen:?}"
        );
    });
}

fn primary_stopped_and_restarted(c: &Cluster) {
    replay_running(c);
    block_on(async {
        let mut standby = standby_source(c);
        let mut primary = PostgresSource::new(&pg_config(c, c.primary.port, "primary"));
        ok_round(&mut primary).await;
        let s = ok_round(&mut standby).await;
        assert_eq!(
            value(&s, "vitals_pg_replication_stream_up", &[REPLICA]),
            1.0
        );

        c.stop_primary();
        let (p, result) = round(&mut primary).await;
        assert_eq!(value(&p, "vitals_pg_up", &[PRIMARY]), 0.0);
        let e = result.expect_err("primary down").to_string();
        assert!(e.contains("target primary"), "{e}");
        let down = eventually!(
            Duration::from_secs(30),
            Duration::from_millis(500),
            "stream_up 0",
            {
                let s = ok_round(&mut standby).await;
                (value(&s, "vitals_pg_replication_stream_up", &[REPLICA]) == 0.0).then_some(s)
            }
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let later = ok_round(&mut standby).await;
        let lag_down = value(&later, "vitals_pg_replication_lag_seconds", &[REPLICA]);
        eprintln!(
            "primary down: primary error {e:?}; standby lag {}s then {lag_down}s",
            value(&down, "vitals_pg_replication_lag_seconds", &[REPLICA])
        );
        assert!(
            lag_down >= 2.0,
            "a broken stream does not read 0: {lag_down}"
        );
        assert_eq!(
            value(&later, "vitals_pg_up", &[REPLICA]),
            1.0,
            "the standby itself is up"
        );

        c.start_primary();
        let (lag, stream) = eventually!(
            Duration::from_secs(90),
            Duration::from_secs(1),
            "both recover",
            {
                let (p, _) = round(&mut primary).await;
                let s = ok_round(&mut standby).await;
                let stream = value(&s, "vitals_pg_replication_stream_up", &[REPLICA]);
                let lag = value(&s, "vitals_pg_replication_lag_seconds", &[REPLICA]);
                (value(&p, "vitals_pg_up", &[PRIMARY]) == 1.0 && stream == 1.0 && lag == 0.0)
                    .then_some((lag, stream))
            }
        );
        eprintln!("after restart: standby lag {lag}s, stream_up {stream}");
    });
}
