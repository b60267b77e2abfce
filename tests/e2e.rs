//! End to end with real programs, all on loopback:
//! - vitals runs every source against the throwaway cluster (primary,
//!   streaming standby, PgBouncer), a Redis primary and replica, a local
//!   "application" and this machine, and pushes to a local remote-write
//!   receiver;
//!   every metric the bundled dashboards and rules name must be in its live
//!   scrape (or, for figures this kernel cannot have, in the golden files of
//!   the cgroup v2 fixture trees);
//! - a real Prometheus scrapes it with the bundled rules and a real
//!   Alertmanager sends to a webhook receiver run here: replay paused on the
//!   standby makes the critical replica-lag alert reach the webhook, and
//!   resuming replay resolves it.

mod bundled;
mod common;
#[macro_use]
#[allow(unused_macros)]
mod support;
#[path = "support/redis.rs"]
mod redis_support;

use common::{free_port, request, sample, Daemon};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Cluster, Options, HEARTBEAT_TABLE};

/// Requests a test server received: when, and the body.
type Received = Arc<Mutex<Vec<(Instant, String)>>>;

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads one HTTP/1.1 request (headers and Content-Length body).
fn read_request(stream: &mut std::net::TcpStream) -> Option<(String, String)> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).ok()?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..]).into_owned();
            return Some((head, body));
        }
    }
}

/// A tiny HTTP server on loopback answering every request with 200, for at
/// most `limit` connections. Returns its port.
fn serve_ok(limit: usize, received: Option<Received>) -> u16 {
    serve_body(limit, received, "ok\n")
}

/// Answers up to `limit` requests with 200 and `answer`.
fn serve_body(limit: usize, received: Option<Received>, answer: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().take(limit).flatten() {
            if let Some((_, body)) = read_request(&mut stream) {
                if let Some(r) = &received {
                    r.lock().unwrap().push((Instant::now(), body));
                }
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    )
                    .as_bytes(),
                );
            }
        }
    });
    port
}

fn vitals_config(
    c: &Cluster,
    redis: &redis_support::Pair,
    dir: &Path,
    probe_port: u16,
    app_port: u16,
    remote_write_port: u16,
) -> String {
    // Downward-API limit files, so the limit figures exist on a machine
    // whose own cgroup is unlimited.
    let podinfo = dir.join("podinfo");
    std::fs::create_dir_all(&podinfo).unwrap();
    std::fs::write(podinfo.join("cpu_limit"), "2000\n").unwrap();
    std::fs::write(podinfo.join("memory_limit"), format!("{}\n", 8u64 << 30)).unwrap();
    format!(
        "interval: 1s
sources:
  cgroup: {{enabled: true, limits_dir: {podinfo}}}
  processes:
    - {{name: postgres, match: {{comm: '^postgres$'}}}}
  postgres:
    - name: primary
      dsn: \"{primary}\"
      password_file: {pw}
      pools: {{app: 5}}
      heartbeat: {{table: {HEARTBEAT_TABLE}, write: true}}
      statements: {{top: 20, interval: 2s}}
    - name: replica
      dsn: \"{replica}\"
      password_file: {pw}
      heartbeat: {{table: {HEARTBEAT_TABLE}}}
  pgbouncer:
    - name: bouncer
      dsn: \"host=127.0.0.1 port={bouncer} user=monitor dbname=pgbouncer\"
      password_file: {pw}
  http_probes:
    - {{name: app, url: \"http://127.0.0.1:{probe_port}/health\", timeout: 2s}}
  app_metrics:
    - {{name: web, url: \"http://127.0.0.1:{app_port}/metrics\", queue: jobs}}
  redis:
    - name: cache
      address: \"127.0.0.1:{redis_primary}\"
      password_file: {redis_pw}
      queues: [{{bullmq: emails}}, {{key: jobs:hash}}]
    - name: cache_replica
      address: \"127.0.0.1:{redis_replica}\"
      password_file: {redis_pw}
# A receiver that accepts everything, so the vitals_remote_write_* families
# the bundled rules read are live.
remote_write:
  - url: \"http://127.0.0.1:{remote_write_port}/api/v1/write\"
checks:
  # The default levels, without the agent-side `for`, so that the alert's
  # own `for` is what the end-to-end delay is made of.
  - name: replica_lag
    metric: vitals_pg_replication_lag_seconds
    warning: 1
    critical: 5
    hysteresis: 10%
    for: 0s
    clear_for: 0s
",
        podinfo = podinfo.display(),
        primary = c.monitor_dsn(c.primary.port),
        replica = c.monitor_dsn(c.standby().port),
        pw = c.password_file.display(),
        bouncer = c.bouncer().port,
        redis_primary = redis.primary.port,
        redis_replica = redis.replica.port,
        redis_pw = redis.password_file.display(),
    )
}

/// Metric names of an exposition: the sample names.
fn names_in(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn e2e_suite() {
    let cluster = Cluster::start(Options {
        standby: true,
        bouncer: true,
    });
    cluster.wait_streaming();
    let redis = redis_support::Pair::start();
    // A key of another type: vitals_redis_queue_up 0.
    redis.primary.cli(&["HSET", "jobs:hash", "f", "v"]);
    // The statement figures need the extension (the harness preloads it),
    // the cache hit ratio a round with enough block accesses, the table
    // figures a table with dead tuples before the first catalog read.
    cluster.psql(
        cluster.primary.port,
        "CREATE EXTENSION pg_stat_statements; \
         CREATE TABLE e2e_load AS SELECT generate_series(1, 100000) AS g; \
         DELETE FROM e2e_load WHERE g <= 10",
    );
    let dir = tempfile::tempdir().unwrap();
    let probe_port = serve_ok(100_000, None);
    // The application's own metrics, so the app scrape families are live.
    let app_port = serve_body(
        100_000,
        None,
        "# TYPE jobs gauge\njobs 3\n# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 7\n",
    );
    // The remote-write receiver: one connection per request (it closes
    // each), about ten rounds a second.
    let remote_write_port = serve_ok(1_000_000, None);
    let config = vitals_config(
        &cluster,
        &redis,
        dir.path(),
        probe_port,
        app_port,
        remote_write_port,
    );
    let vitals = Daemon::run_in(dir, &config, &[], &[]);
    // Both parts run even when the first fails; the test fails if either did.
    let metrics = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        bundled_metrics_are_exported(&cluster, &vitals, &redis)
    }));
    let alert = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        replica_lag_alert_reaches_webhook_and_resolves(&cluster, &vitals, vitals.dir())
    }));
    assert!(
        metrics.is_ok() && alert.is_ok(),
        "failed: metrics {:?}, alert {:?}",
        metrics.is_ok(),
        alert.is_ok()
    );
}

fn bundled_metrics_are_exported(c: &Cluster, vitals: &Daemon, redis: &redis_support::Pair) {
    // Enough key lookups per interval for the Redis hit ratio to exist.
    let lookups: Vec<String> = (0..150).map(|i| format!("GET key:{i}")).collect();
    // Two rounds of everything: ratios need a previous reading.
    vitals.wait_until("every source succeeded twice, ratios present", |d| {
        // About 440 pages read twice per poll: a busy round for the
        // cache hit ratio (it is absent below 1000 block accesses).
        c.psql(
            c.primary.port,
            "SELECT count(*) FROM e2e_load; SELECT count(*) FROM e2e_load",
        );
        let text = d.get("/metrics").text();
        let sources = [
            "host",
            "cgroup",
            "process",
            "postgres/primary",
            "postgres/replica",
            "pgbouncer/bouncer",
            "probe/app",
            "redis/cache",
            "redis/cache_replica",
        ];
        redis.primary.batch(&lookups);
        sources
            .iter()
            .all(|s| sample(&text, "vitals_source_success", &[("source", s)]) == Some(1.0))
            && sample(&text, "vitals_cgroup_cpu_limit_utilization_ratio", &[]).is_some()
            && sample(
                &text,
                "vitals_pg_heartbeat_lag_seconds",
                &[("target", "replica")],
            )
            .is_some()
            && sample(
                &text,
                "vitals_redis_keyspace_hit_ratio",
                &[("target", "cache")],
            )
            .is_some()
            && sample(
                &text,
                "vitals_pg_database_cache_hit_ratio",
                &[("target", "primary"), ("database", "postgres")],
            )
            .is_some()
            && sample(
                &text,
                "vitals_pg_statement_mean_seconds",
                &[("target", "primary")],
            )
            .is_some()
    });
    let live = names_in(&vitals.get("/metrics").text());
    // Figures this kernel (cgroup v1 + unified) cannot produce, such as the
    // v2-only OOM event counter, come from the golden files of the v2 trees.
    let mut exported = live.clone();
    for golden in ["cgroup-v2-throttled-oom", "cgroup-v2-limited"] {
        let text =
            std::fs::read_to_string(common::repo().join(format!("tests/golden/{golden}.prom")))
                .unwrap();
        exported.extend(names_in(&text));
    }
    let referenced = bundled::referenced_metrics().expect("every bundled expression parses");
    assert!(
        referenced.len() > 30,
        "suspiciously few metrics referenced: {}",
        referenced.len()
    );
    let missing = bundled::missing_metrics(&referenced, &exported);
    assert!(
        missing.is_empty(),
        "dashboards/rules name metrics vitals does not export:\n{}",
        missing.join("\n")
    );
    let from_golden_only: Vec<&String> = referenced
        .keys()
        .filter(|n| exported.contains(*n) && !live.contains(*n))
        .collect();
    eprintln!(
        "referenced: {}, live: {}, only in v2 golden files: {from_golden_only:?}",
        referenced.len(),
        live.len()
    );
}

fn replica_lag_alert_reaches_webhook_and_resolves(c: &Cluster, vitals: &Daemon, dir: &Path) {
    let received: Received = Arc::default();
    let webhook_port = serve_ok(1000, Some(received.clone()));
    let (prom_port, am_port) = (free_port(), free_port());
    let fixture =
        |name: &str| std::fs::read_to_string(common::fixture(&format!("e2e/{name}"))).unwrap();
    let rules = common::repo().join("alerts/*.rules.yml");
    let prom_yml = fixture("prometheus.yml")
        .replace("@VITALS@", &vitals.addr)
        .replace("@RULES@", rules.to_str().unwrap())
        .replace("@ALERTMANAGER@", &format!("127.0.0.1:{am_port}"));
    let am_yml = fixture("alertmanager.yml").replace(
        "@WEBHOOK@",
        &format!("http://127.0.0.1:{webhook_port}/hook"),
    );
    std::fs::write(dir.join("prometheus.yml"), prom_yml).unwrap();
    std::fs::write(dir.join("alertmanager.yml"), am_yml).unwrap();

    let _am = Running(
        Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=") // no gossip port
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("alertmanager.log")).unwrap())
            .spawn()
            .expect("prometheus-alertmanager: install the Debian package prometheus-alertmanager"),
    );
    let _prom = Running(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prom-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus: install the Debian package prometheus"),
    );
    let prom = format!("127.0.0.1:{prom_port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = std::net::TcpStream::connect(&prom).ok().map(|_| {
            request(
                &prom,
                "GET",
                "/api/v1/query?query=up%7Bjob%3D%22vitals%22%7D",
                &[],
            )
            .text()
        });
        if up
            .as_deref()
            .is_some_and(|t| t.contains("\"value\"") && t.contains("\"1\"]"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped vitals; log:\n{}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Lag: replay paused on the standby, writes on the primary (bounded).
    c.psql(c.standby().port, "SELECT pg_wal_replay_pause()");
    let paused_at = Instant::now();
    let firing = |r: &Vec<(Instant, String)>, status: &str| {
        r.iter().find_map(|(at, body)| {
            let json: serde_json::Value = serde_json::from_str(body).ok()?;
            json["alerts"]
                .as_array()?
                .iter()
                .any(|a| {
                    a["status"] == status
                        && a["labels"]["alertname"] == "VitalsCheckCritical"
                        && a["labels"]["check"] == "replica_lag"
                        && a["labels"]["target"] == "replica"
                        && a["labels"]["severity"] == "critical"
                })
                .then_some(*at)
        })
    };
    let mut fired_at = None;
    for i in 0..480 {
        if i % 2 == 0 {
            c.psql(
                c.primary.port,
                "INSERT INTO scratch (payload) VALUES ('e2e')",
            );
        }
        if let Some(at) = firing(&received.lock().unwrap(), "firing") {
            fired_at = Some(at);
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let fired_at = fired_at.unwrap_or_else(|| {
        panic!(
            "no firing VitalsCheckCritical{{check=replica_lag}} at the webhook within 120 s; received: {:?}\nprometheus log:\n{}",
            received.lock().unwrap().iter().map(|(_, b)| b.clone()).collect::<Vec<_>>(),
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        )
    });
    let lag_now = sample(
        &vitals.get("/metrics").text(),
        "vitals_pg_replication_lag_seconds",
        &[("target", "replica")],
    )
    .unwrap();
    assert!(lag_now > 5.0, "lag {lag_now}");
    eprintln!(
        "E2E: critical replica-lag alert reached the webhook {:.1}s after replay was paused",
        (fired_at - paused_at).as_secs_f64()
    );

    c.psql(c.standby().port, "SELECT pg_wal_replay_resume()");
    let resumed_at = Instant::now();
    let deadline = resumed_at + Duration::from_secs(120);
    let resolved_at = loop {
        if let Some(at) = firing(&received.lock().unwrap(), "resolved") {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "the alert never resolved at the webhook"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!(
        "E2E: resolved notification {:.1}s after replay resumed",
        (resolved_at - resumed_at).as_secs_f64()
    );
    assert_eq!(
        sample(
            &vitals.get("/metrics").text(),
            "vitals_pg_replication_lag_seconds",
            &[("target", "replica")]
        ),
        Some(0.0)
    );
}
