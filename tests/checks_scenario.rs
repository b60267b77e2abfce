//! Issue 28's first minutes with checks, measured on the real throwaway
//! cluster (primary, streaming standby, PgBouncer) with the default checks
//! and a statement workload: how many warning lines the log gets, and how
//! the page shows the check instances, with a primary restart in the
//! middle. Five minutes, so `#[ignore]`d; run with
//! `cargo test --test checks_scenario -- --ignored --nocapture`
//! (`VITALS_SCENARIO_SECS` shortens it).

mod common;
#[macro_use]
#[allow(unused_macros)]
mod support;

use common::Daemon;
use std::time::{Duration, Instant};
use support::{Cluster, Options};

#[test]
#[ignore = "five minutes of a scenario; run with --ignored to measure"]
fn minutes_with_a_database_restart_log_and_page_counts() {
    let total: u64 = std::env::var("VITALS_SCENARIO_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let c = Cluster::start(Options {
        standby: true,
        bouncer: true,
    });
    c.wait_streaming();
    let pw = c.password_file.display();
    let config = format!(
        "interval: 5s\nsources:\n  cgroup: {{enabled: false}}\n  postgres:\n    - {{name: primary, dsn: \"{}\", password_file: {pw}, statements: {{interval: 30s}}}}\n    - {{name: replica, dsn: \"{}\", password_file: {pw}}}\n  pgbouncer:\n    - {{name: bouncer, dsn: \"host=127.0.0.1 port={} user=monitor dbname=pgbouncer\", password_file: {pw}}}\nchecks:\n  - {{name: replica_lag, metric: 'vitals_pg_replication_lag_seconds{{target=\"replica\"}}', readiness: true}}\n",
        c.monitor_dsn(c.primary.port),
        c.monitor_dsn(c.standby().port),
        c.bouncer().port,
    );
    let d = Daemon::run(&config);
    d.wait_until("first round", |d| d.get("/health/ready").status == 200);
    c.psql(
        c.primary.port,
        "CREATE TABLE IF NOT EXISTS scenario (x int)",
    );
    let start = Instant::now();
    let mut restarted = false;
    let mut i = 0u64;
    while start.elapsed() < Duration::from_secs(total) {
        // A varied workload: different statements, some rolled back.
        let sql = format!(
            "INSERT INTO scenario SELECT g FROM generate_series(1, {}) g; SELECT count(*) FROM scenario WHERE x > {}; BEGIN; DELETE FROM scenario WHERE x = {}; ROLLBACK;",
            1 + i % 7,
            i % 5,
            i % 3
        );
        if !restarted || start.elapsed() > Duration::from_secs(total / 2 + 15) {
            let _ = std::panic::catch_unwind(|| c.psql(c.primary.port, &sql));
        }
        if !restarted && start.elapsed() >= Duration::from_secs(total / 2) {
            c.stop_primary();
            std::thread::sleep(Duration::from_secs(10));
            c.start_primary();
            restarted = true;
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = d.log();
    let warn: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    let check_warn = warn
        .iter()
        .filter(|l| l.contains("check state changed"))
        .count();
    let gone = warn.iter().filter(|l| l.contains("series gone")).count();
    let source_lines = warn
        .iter()
        .filter(|l| l.contains("source failed: its check instances are unknown"))
        .count();
    let removed = log
        .lines()
        .filter(|l| l.contains("check instances removed"))
        .count();
    let page = d.get("/").text();
    let rows = page.matches("<tr class=\"").count();
    let groups = page.matches("<tr class=\"group ").count();
    let folded = page.matches("unknown folded").count();
    println!(
        "{total} s with a primary restart: {} warning lines ({check_warn} check transitions, {gone} 'series gone', {source_lines} 'source failed' lines), {removed} 'instances removed' info lines; page: {rows} rows, {groups} check groups, {folded} folded unknown rows",
        warn.len()
    );
    for l in &warn {
        println!("  {l}");
    }
    // A series gone from a healthy source is never a warning, and the
    // restart's unknown instances are one line per source, not one each.
    assert_eq!(gone, 0, "{log}");
    assert!(
        source_lines >= 1,
        "the restart logged no source line:\n{log}"
    );
    assert!(
        source_lines <= 4,
        "one line per source and restart expected:\n{log}"
    );
}
