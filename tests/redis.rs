//! The Redis source against a real redis-server 7.0 primary and its
//! replica (Debian's redis-server), and the daemon with Redis targets.
//! One pair for the binary, cases in order; `VITALS_CASE=name` picks cases.

mod common;
#[macro_use]
mod support;
#[path = "support/redis.rs"]
mod redis_support;

use common::{last_error, sample, Daemon};
use redis_support::{Pair, REDIS_PASSWORD};
use std::time::Duration;
use support::{block_on, value};
use vitals::checks::{CheckEngine, Now, SourceRound};
use vitals::collectors::redis::RedisSource;
use vitals::collectors::CollectError;
use vitals::config::{self, Config};
use vitals::metrics::Output;

#[test]
fn redis_suite() {
    let pair = Pair::start();
    support::run_cases(
        &pair,
        &[
            ("hit_ratio_over_the_interval", hit_ratio_over_the_interval),
            (
                "memory_ratio_from_the_same_info",
                memory_ratio_from_the_same_info,
            ),
            ("queue_check_levels", queue_check_levels),
            ("queue_lengths_by_type", queue_lengths_by_type),
            ("commands_per_round", commands_per_round),
            (
                "replica_offset_lag_grows_and_recovers",
                replica_offset_lag_grows_and_recovers,
            ),
            ("silent_and_garbage_servers", silent_and_garbage_servers),
            ("unix_socket_and_db", unix_socket_and_db),
            ("wrong_password_never_leaks", wrong_password_never_leaks),
            (
                "redis_restart_under_a_running_daemon",
                redis_restart_under_a_running_daemon,
            ),
        ],
    );
    // Only when every case ran (VITALS_CASE picks some).
    if std::env::var_os("VITALS_CASE").is_none() {
        SEEN.assert_covered("vitals_redis_");
    }
}

/// One round (`support::round`), its families checked against the catalog
/// and remembered.
async fn round(src: &mut RedisSource) -> (Output, Result<(), CollectError>) {
    let (out, result) = support::round(src).await;
    SEEN.record(&out);
    (out, result)
}

/// The families the rounds of this suite emitted, for the catalog coverage.
static SEEN: common::catalog::Seen = common::catalog::Seen::new();

async fn ok_round(src: &mut RedisSource) -> Output {
    let (out, result) = round(src).await;
    if let Err(e) = result {
        panic!("round failed: {e}");
    }
    out
}

/// A config with one Redis target `cache` on the primary (or `port`),
/// default checks on, and `extra` appended to the target.
fn config_for(p: &Pair, port: u16, extra: &str) -> Config {
    let text = format!(
        "sources:\n  redis:\n    - name: cache\n      address: \"127.0.0.1:{port}\"\n      password_file: {}\n{extra}",
        p.password_file.display()
    );
    config::parse_str(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn source(config: &Config) -> RedisSource {
    RedisSource::new(&config.sources.redis[0])
}

const T: (&str, &str) = ("target", "cache");

fn hit_ratio_over_the_interval(p: &Pair) {
    let redis = &p.primary;
    let mut setup: Vec<String> = (0..80).map(|i| format!("SET hit:{i} v")).collect();
    setup.push("DEL miss:0".into());
    redis.batch(&setup);
    // A queue whose keys do not exist: vitals' own LLEN and ZCARD are
    // keyspace misses in Redis, and must not count.
    let config = config_for(p, redis.port, "      queues: [{bullmq: hits}]\n");
    block_on(async {
        let mut src = source(&config);
        let first = ok_round(&mut src).await;
        assert_eq!(value(&first, "vitals_redis_up", &[T]), 1.0);
        // No previous INFO: no interval figures yet.
        assert!(first.family("vitals_redis_keyspace_hit_ratio").is_none());
        // A hit ratio since start would differ: earlier misses exist.
        redis.batch(
            &(0..50)
                .map(|i| format!("GET absent:{i}"))
                .collect::<Vec<_>>(),
        );
        ok_round(&mut src).await;

        let mut lookups: Vec<String> = (0..80).map(|i| format!("GET hit:{i}")).collect();
        lookups.extend((0..20).map(|i| format!("GET miss:{i}")));
        redis.batch(&lookups);
        let out = ok_round(&mut src).await;
        assert_eq!(value(&out, "vitals_redis_keyspace_hit_ratio", &[T]), 0.8);
        let hits = value(&out, "vitals_redis_keyspace_hits_total", &[T]);
        let misses = value(&out, "vitals_redis_keyspace_misses_total", &[T]);
        assert!(
            (hits / (hits + misses) - 0.8).abs() > 0.01,
            "the since-start ratio differs ({hits}/{misses}), so the test tells them apart"
        );
        // No lookups but vitals' own: too few for a ratio.
        let quiet = ok_round(&mut src).await;
        assert!(quiet.family("vitals_redis_keyspace_hit_ratio").is_none());
    });
}

fn memory_ratio_from_the_same_info(p: &Pair) {
    let redis = &p.primary;
    let blob = "x".repeat(1024);
    redis.batch(
        &(0..2000)
            .map(|i| format!("SET blob:{i} {blob}"))
            .collect::<Vec<_>>(),
    );
    let config = config_for(p, redis.port, "");
    block_on(async {
        let mut src = source(&config);
        let out = ok_round(&mut src).await;
        let used = value(&out, "vitals_redis_memory_used_bytes", &[T]);
        let max = value(&out, "vitals_redis_memory_max_bytes", &[T]);
        assert_eq!(max, 64.0 * 1024.0 * 1024.0);
        assert!(used > 2000.0 * 1024.0, "2000 values of 1 KiB: {used}");
        assert_eq!(
            value(&out, "vitals_redis_memory_utilization_ratio", &[T]),
            used / max
        );
        // The replica has no maxmemory: no limit and no ratio, never 0.
        let mut replica = source(&config_for(p, p.replica.port, ""));
        let out = ok_round(&mut replica).await;
        assert!(out.family("vitals_redis_memory_max_bytes").is_none());
        assert!(out
            .family("vitals_redis_memory_utilization_ratio")
            .is_none());
    });
    redis.cli(&["FLUSHALL"]);
}

/// Evaluates the checks on `out` at `now` and once the default `for` has
/// passed; the status of check `check` for `queue` afterwards.
fn settled_status(
    engine: &mut CheckEngine,
    out: &Output,
    now: &mut Now,
    check: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let mut status = None;
    for _ in 0..3 {
        let round = SourceRound {
            source: "redis/cache",
            output: out,
            failed: false,
        };
        let (checks, _) = engine.evaluate([round], *now);
        let mut want = vec![("check", check)];
        want.extend_from_slice(labels);
        status = checks.value("vitals_check_status", &want);
        *now = now.after(61.0);
    }
    status.unwrap_or_else(|| panic!("no status for {check} {labels:?}"))
}

fn queue_check_levels(p: &Pair) {
    let redis = &p.primary;
    let config = config_for(p, redis.port, "      queues: [{bullmq: emails}]\n");
    let wait = [T, ("queue", "emails:wait")];
    let push = |n: usize| {
        redis.batch(
            &(0..n)
                .map(|i| format!("LPUSH bull:emails:wait job{i}"))
                .collect::<Vec<_>>(),
        )
    };
    block_on(async {
        let mut engine = CheckEngine::new(&config);
        let mut now = Now::system();
        let mut src = source(&config);
        let mut status =
            |out: &Output| settled_status(&mut engine, out, &mut now, "redis_queue", &wait[1..]);

        push(150);
        let out = ok_round(&mut src).await;
        assert_eq!(value(&out, "vitals_redis_queue_length", &wait), 150.0);
        assert_eq!(status(&out), 1.0, "150 items: warning");

        push(450);
        let out = ok_round(&mut src).await;
        assert_eq!(value(&out, "vitals_redis_queue_length", &wait), 600.0);
        assert_eq!(status(&out), 2.0, "600 items: critical");

        // Drained by a worker.
        redis.batch(
            &(0..600)
                .map(|_| "RPOP bull:emails:wait".to_owned())
                .collect::<Vec<_>>(),
        );
        let out = ok_round(&mut src).await;
        assert_eq!(value(&out, "vitals_redis_queue_length", &wait), 0.0);
        assert_eq!(status(&out), 0.0, "drained: ok");
        // The other BullMQ keys are there too, at 0 (missing keys).
        for state in ["active", "delayed", "failed"] {
            let q = format!("emails:{state}");
            assert_eq!(
                value(&out, "vitals_redis_queue_length", &[T, ("queue", &q)]),
                0.0
            );
        }
    });
}

fn queue_lengths_by_type(p: &Pair) {
    let redis = &p.primary;
    redis.batch(&[
        "DEL jobs:list jobs:zset jobs:set jobs:stream jobs:hash".into(),
        "RPUSH jobs:list a b c".into(),
        "ZADD jobs:zset 1 a 2 b".into(),
        "SADD jobs:set a b c d e".into(),
        "XADD jobs:stream * f 1".into(),
        "HSET jobs:hash f v".into(),
    ]);
    let config = config_for(
        p,
        redis.port,
        "      queues:\n        - {key: jobs:list}\n        - {key: jobs:zset}\n        - {key: jobs:set}\n        - {key: jobs:stream}\n        - {key: jobs:hash, name: hash}\n        - {key: jobs:none}\n        - {sidekiq: default}\n",
    );
    let capture = support::LogCapture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber());
    block_on(async {
        let mut src = source(&config);
        for _ in 0..2 {
            let out = ok_round(&mut src).await;
            let len = |q: &str| out.value("vitals_redis_queue_length", &[T, ("queue", q)]);
            assert_eq!(len("jobs:list"), Some(3.0));
            assert_eq!(len("jobs:zset"), Some(2.0));
            assert_eq!(len("jobs:set"), Some(5.0));
            assert_eq!(len("jobs:stream"), Some(1.0));
            assert_eq!(len("jobs:none"), Some(0.0));
            assert_eq!(len("default"), Some(0.0));
            // A hash is no queue: no length, a 0 for that queue only.
            assert_eq!(len("hash"), None);
            let up = |q: &str| value(&out, "vitals_redis_queue_up", &[T, ("queue", q)]);
            assert_eq!(up("hash"), 0.0);
            assert_eq!(up("jobs:list"), 1.0);
            assert_eq!(value(&out, "vitals_redis_up", &[T]), 1.0);
        }
        // A key that changes type is followed.
        redis.batch(&["DEL jobs:list".into(), "ZADD jobs:list 1 a".into()]);
        let out = ok_round(&mut src).await;
        assert_eq!(
            out.value("vitals_redis_queue_length", &[T, ("queue", "jobs:list")]),
            Some(1.0)
        );
    });
    let logs = capture.text();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("jobs:hash")).collect();
    assert_eq!(warnings.len(), 1, "one warning, not one per round: {logs}");
    assert!(warnings[0].contains("holds a hash"), "{logs}");
    redis.cli(&["FLUSHALL"]);
}

fn commands_per_round(p: &Pair) {
    let redis = &p.primary;
    redis.batch(&["RPUSH jobs:list a".into()]);
    let config = config_for(
        p,
        redis.port,
        "      queues: [{bullmq: emails}, {key: jobs:list}]\n",
    );
    // What vitals sends in a round (AUTH and SELECT only at connect); the
    // test's own `redis-cli INFO commandstats` is one `info` (and an AUTH).
    let ours = ["info", "llen", "zcard", "scard", "xlen", "type"];
    let total = |calls: &std::collections::BTreeMap<String, u64>| -> u64 {
        ours.iter()
            .map(|c| calls.get(*c).copied().unwrap_or(0))
            .sum()
    };
    block_on(async {
        let mut src = source(&config);
        // The first round connects (AUTH) and learns the plain key's type.
        let first = ok_round(&mut src).await;
        let sent_first = value(&first, "vitals_redis_sent_commands_total", &[T]);
        assert_eq!(
            sent_first,
            1.0 + 1.0 + 5.0 + 1.0,
            "AUTH, INFO, 5 lengths, 1 TYPE"
        );
        let before = redis.command_calls();
        let mut last = Output::new();
        for _ in 0..5 {
            last = ok_round(&mut src).await;
        }
        let after = redis.command_calls();
        // Five rounds of INFO + one command per queue key (4 BullMQ + 1),
        // plus the INFO commandstats of the `before` reading.
        assert_eq!(
            total(&after) - total(&before),
            5 * (1 + 5) + 1,
            "{before:?} -> {after:?}"
        );
        let type_calls = |c: &std::collections::BTreeMap<String, u64>| c.get("type").copied();
        assert_eq!(
            type_calls(&after),
            type_calls(&before),
            "no TYPE once known"
        );
        assert_eq!(
            value(&last, "vitals_redis_sent_commands_total", &[T]) - sent_first,
            30.0,
            "vitals counts what Redis counted"
        );
    });
    redis.cli(&["FLUSHALL"]);
}

fn replica_offset_lag_grows_and_recovers(p: &Pair) {
    let config = config_for(p, p.primary.port, "");
    let lag_of = |out: &Output| {
        let replica = format!("127.0.0.1:{}", p.replica.port);
        value(
            out,
            "vitals_redis_replica_offset_lag_bytes",
            &[T, ("replica", replica.as_str())],
        )
    };
    let writes = |n: usize, tag: &str| {
        p.primary.batch(
            &(0..n)
                .map(|i| format!("SET lag:{tag}:{i} some-value-{i}"))
                .collect::<Vec<_>>(),
        );
    };
    block_on(async {
        let mut primary = source(&config);
        let mut replica = source(&config_for(p, p.replica.port, ""));
        let out = ok_round(&mut replica).await;
        assert_eq!(value(&out, "vitals_redis_replica_link_up", &[T]), 1.0);
        assert!(out
            .value("vitals_redis_replica_last_io_seconds", &[T])
            .is_some());
        eventually!(
            Duration::from_secs(20),
            Duration::from_millis(200),
            "lag 0 before the pause",
            {
                let out = ok_round(&mut primary).await;
                (lag_of(&out) == 0.0).then_some(())
            }
        );

        // The replica process is frozen: it acknowledges nothing.
        p.replica.signal("STOP");
        writes(200, "a");
        let first = lag_of(&ok_round(&mut primary).await);
        assert!(first > 1000.0, "200 writes unacknowledged: {first} bytes");
        writes(200, "b");
        let second = lag_of(&ok_round(&mut primary).await);
        assert!(
            second > first,
            "lag grows while paused: {first} then {second}"
        );

        p.replica.signal("CONT");
        eventually!(
            Duration::from_secs(20),
            Duration::from_millis(200),
            "lag back to 0",
            {
                let out = ok_round(&mut primary).await;
                (lag_of(&out) == 0.0).then_some(())
            }
        );
    });
    p.primary.cli(&["FLUSHALL"]);
}

/// The same server through its unix socket, with `db: 3` selected for the
/// queue keys.
fn unix_socket_and_db(p: &Pair) {
    p.primary
        .batch(&["SELECT 3".into(), "RPUSH queue:mailers a b".into()]);
    let text = format!(
        "sources:\n  redis:\n    - name: cache\n      address: {}\n      password_file: {}\n      db: 3\n      queues: [{{sidekiq: mailers}}]\n",
        p.primary.socket.display(),
        p.password_file.display()
    );
    let config = config::parse_str(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
    block_on(async {
        let out = ok_round(&mut source(&config)).await;
        assert_eq!(value(&out, "vitals_redis_up", &[T]), 1.0);
        assert_eq!(
            value(
                &out,
                "vitals_redis_queue_length",
                &[T, ("queue", "mailers")]
            ),
            2.0,
            "read in db 3"
        );
        assert_eq!(value(&out, "vitals_redis_db_keys", &[T, ("db", "3")]), 1.0);
    });
    p.primary.cli(&["FLUSHALL"]);
}

/// A listener that accepts and answers nothing, or answers HTTP: the round
/// ends at its deadline (or at once) with `up 0` and a clear error, and the
/// next round tries again.
fn silent_and_garbage_servers(p: &Pair) {
    use std::io::{Read, Write};
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_port = garbage.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in garbage.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let cases = [
        (
            silent.local_addr().unwrap().port(),
            "no answer within the timeout",
        ),
        (garbage_port, "protocol error"),
    ];
    block_on(async {
        for (port, want) in cases {
            let mut config = config_for(p, port, "      timeout: 1s\n");
            config.sources.redis[0].password_file = None;
            let mut src = source(&config);
            let (out, result) = round(&mut src).await;
            assert_eq!(value(&out, "vitals_redis_up", &[T]), 0.0);
            let e = result.expect_err("a failed round").to_string();
            assert!(e.contains("redis target cache") && e.contains(want), "{e}");
        }
    });
    drop(silent);
}

const WRONG_PASSWORD: &str = "Wr0ng-Redis-Guess-42";

fn daemon_config(p: &Pair, extra: &str) -> String {
    format!(
        "interval: 500ms\n\
         default_checks: false\n\
         sources:\n\
         \x20 cgroup: {{enabled: false}}\n\
         \x20 redis:\n\
         \x20   - name: primary\n\
         \x20     address: \"127.0.0.1:{primary}\"\n\
         \x20     password_file: {pw}\n\
         \x20   - name: replica\n\
         \x20     address: \"127.0.0.1:{replica}\"\n\
         \x20     password_env: VITALS_TEST_REDIS_PW\n\
         {extra}",
        primary = p.primary.port,
        replica = p.replica.port,
        pw = p.password_file.display(),
    )
}

fn wrong_password_never_leaks(p: &Pair) {
    let extra = format!(
        "\x20   - name: wrong\n\
         \x20     address: \"127.0.0.1:{}\"\n\
         \x20     password_env: VITALS_TEST_WRONG_PW\n",
        p.primary.port
    );
    let d = Daemon::run_in(
        tempfile::tempdir().unwrap(),
        &daemon_config(p, &extra),
        &[],
        &[
            ("VITALS_TEST_WRONG_PW", WRONG_PASSWORD),
            ("VITALS_TEST_REDIS_PW", REDIS_PASSWORD),
            ("RUST_LOG", "debug"),
        ],
    );
    d.wait_until("a few rounds of every target", |d| {
        let text = d.get("/metrics").text();
        ["redis/primary", "redis/replica", "redis/wrong"]
            .iter()
            .all(|s| sample(&text, "vitals_source_errors_total", &[("source", s)]).is_some())
            && sample(&text, "vitals_redis_up", &[("target", "replica")]) == Some(1.0)
            && sample(&text, "vitals_redis_up", &[("target", "wrong")]) == Some(0.0)
    });
    // Past the first backoff, so a reconnect attempt ran too.
    std::thread::sleep(Duration::from_millis(2500));
    let seen = d.surfaces();
    let (metrics, status, log) = (&seen.metrics, &seen.status, &seen.log);
    assert_eq!(
        sample(metrics, "vitals_redis_up", &[("target", "primary")]),
        Some(1.0),
        "{log}"
    );
    assert_eq!(
        sample(metrics, "vitals_redis_up", &[("target", "wrong")]),
        Some(0.0)
    );
    assert!(
        log.lines()
            .any(|l| l.contains("redis target wrong") && l.contains("WRONGPASS")),
        "the failure is logged with Redis' reason: {log}"
    );
    let error = last_error(status, "redis/wrong").expect("an error for the wrong password");
    assert!(error.contains("AUTH refused"), "{error}");
    seen.assert_no_secret(&[REDIS_PASSWORD, WRONG_PASSWORD]);
    d.stop();
}

fn redis_restart_under_a_running_daemon(p: &Pair) {
    let d = Daemon::spawn_in(
        tempfile::tempdir().unwrap(),
        &daemon_config(p, ""),
        &[],
        &[("VITALS_TEST_REDIS_PW", REDIS_PASSWORD)],
    );
    let up = |d: &Daemon, target: &str| {
        sample(
            &d.get("/metrics").text(),
            "vitals_redis_up",
            &[("target", target)],
        )
    };
    let link = |d: &Daemon| {
        sample(
            &d.get("/metrics").text(),
            "vitals_redis_replica_link_up",
            &[("target", "replica")],
        )
    };
    d.wait_until("primary up", |d| up(d, "primary") == Some(1.0));
    d.wait_until("replica link up", |d| link(d) == Some(1.0));
    let pid = d.pid();

    p.primary.stop();
    d.wait_until("primary down", |d| up(d, "primary") == Some(0.0));
    d.wait_until("replica link down", |d| link(d) == Some(0.0));
    d.wait_until("replica link down seconds", |d| {
        let text = d.get("/metrics").text();
        common::catalog::assert_families_in_catalog(&text);
        sample(
            &text,
            "vitals_redis_replica_link_down_seconds",
            &[("target", "replica")],
        )
        .is_some()
    });
    d.wait_until("a failed reconnect", |d| {
        d.log().contains("redis target primary: cannot connect")
    });
    p.primary.start();
    d.wait_until("primary up again", |d| up(d, "primary") == Some(1.0));
    d.wait_until("replica link up again", |d| link(d) == Some(1.0));
    assert_eq!(d.pid(), pid, "the same vitals process");
    let log = d.log();
    assert!(
        log.contains("redis target primary: connected after"),
        "the reconnect is logged: {log}"
    );
    d.stop();
}
