//! Push mode against real receivers on loopback: Prometheus with its
//! remote-write receiver and VictoriaMetrics (Debian packages), started and
//! stopped here; plus tiny receivers that answer 429, 400 or never.
//!
//! vitals runs with `interval: 1s` and only the host source so rounds are
//! many and alike. The outage lasts 20 s (20 rounds) instead of the 90 s of
//! the issue so the suite stays short; `VITALS_TEST_OUTAGE_SECONDS=90`
//! runs the long one.

mod common;
#[path = "common/receivers.rs"]
mod receivers;

use common::{poll, sample, temp_config, Daemon};
use prost::Message as _;
use receivers::{Kind, Receiver};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vitals::remote_write::proto;

fn config(dir: &Path, name: &str, remotes: &str) -> std::path::PathBuf {
    temp_config(
        dir,
        name,
        &format!(
            "interval: 1s\ndefault_checks: false\nsources:\n  host: {{enabled: true}}\n  cgroup: {{enabled: false}}\nremote_write:\n{remotes}"
        ),
    )
}

fn status(d: &Daemon) -> Value {
    let resp = d.get("/status");
    assert_eq!(resp.status, 200);
    serde_json::from_slice(&resp.body).unwrap()
}

/// Host rounds so far and the Unix time (ms) of the last one: the
/// timestamp its samples were pushed with.
fn host_rounds(d: &Daemon) -> (usize, i64) {
    let s = status(d);
    let host = s["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "host")
        .cloned()
        .unwrap();
    (
        host["rounds"].as_u64().unwrap() as usize,
        (host["last_round_timestamp_seconds"].as_f64().unwrap() * 1000.0).round() as i64,
    )
}

fn remote(d: &Daemon, i: usize) -> Value {
    status(d)["remote_write"][i].clone()
}

/// Waits until every receiver of `d` has delivered everything queued.
fn drained(d: &Daemon) {
    let n = status(d)["remote_write"].as_array().unwrap().len();
    for i in 0..n {
        poll("the queue to drain", Duration::from_secs(120), || {
            let r = remote(d, i);
            r["queue_samples"] == 0 && r["samples_sent_total"].as_u64().unwrap() > 0
        });
    }
}

/// Samples of the one series `selector` selects, with timestamps <= `until`.
/// VictoriaMetrics makes the newest rows searchable a little after it
/// acknowledged them (even after a forced flush): asks again, for up to
/// 10 s, while fewer than `expect` samples show.
fn samples_until(r: &Receiver, selector: &str, until: i64) -> Vec<(i64, f64)> {
    samples_expecting(r, selector, until, 0)
}

fn samples_expecting(r: &Receiver, selector: &str, until: i64, expect: usize) -> Vec<(i64, f64)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = samples_once(r, selector, until);
        if got.len() >= expect || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn samples_once(r: &Receiver, selector: &str, until: i64) -> Vec<(i64, f64)> {
    let series = r.raw_samples(selector);
    assert_eq!(
        series.len(),
        1,
        "{selector} at {:?}: {series:?}\n{}",
        r.kind,
        r.log()
    );
    series[0]
        .1
        .iter()
        .copied()
        .filter(|(t, _)| *t <= until)
        .collect()
}

#[test]
fn series_reach_prometheus_and_victoriametrics_with_the_values_served() {
    let prom = Receiver::start(Kind::Prometheus);
    let vm = Receiver::start(Kind::VictoriaMetrics);
    let dir = tempfile::tempdir().unwrap();
    let labels = "    external_labels: {pod: \"${POD_NAME}\", namespace: \"${POD_NAMESPACE}\"}\n";
    let path = config(
        dir.path(),
        "vitals.yaml",
        &format!(
            "  - url: {}\n{labels}  - url: {}\n{labels}",
            prom.write_url(),
            vm.write_url()
        ),
    );
    let d = Daemon::start_with(
        &["--config", path.to_str().unwrap()],
        &[("POD_NAME", "web-7d4b9"), ("POD_NAMESPACE", "shop")],
    );
    d.wait_ready();

    // What /metrics served, round after round: the host round's duration
    // differs every round, the CPU counter grows.
    let mut served: Vec<(f64, f64)> = Vec::new();
    poll(
        "12 distinct rounds on /metrics",
        Duration::from_secs(60),
        || {
            let text = d.get("/metrics").text();
            let duration = sample(
                &text,
                "vitals_source_duration_seconds",
                &[("source", "host")],
            );
            let user = sample(&text, "vitals_host_cpu_seconds_total", &[("mode", "user")]);
            if let (Some(a), Some(b)) = (duration, user) {
                if served.last().map(|l| l.0) != Some(a) {
                    served.push((a, b));
                }
            }
            served.len() >= 12
        },
    );
    let (rounds, last) = host_rounds(&d);
    drained(&d);

    let sel =
        |name: &str, extra: &str| format!("{name}{{pod=\"web-7d4b9\",namespace=\"shop\"{extra}}}");
    for r in [&prom, &vm] {
        // Every round, exactly once.
        let load = samples_expecting(r, &sel("vitals_host_load1", ""), last, rounds);
        assert_eq!(load.len(), rounds, "{:?}: {load:?}", r.kind);
        let durations = samples_expecting(
            r,
            &sel("vitals_source_duration_seconds", ",source=\"host\""),
            last,
            rounds,
        );
        let users = samples_expecting(
            r,
            &sel("vitals_host_cpu_seconds_total", ",mode=\"user\""),
            last,
            rounds,
        );
        assert_eq!(durations.len(), rounds, "{:?}", r.kind);
        // Each value served on /metrics is there, in the same order, with the
        // CPU counter of the same round (same timestamp).
        let mut from = 0;
        for (duration, user) in &served {
            let at = durations[from..]
                .iter()
                .position(|(_, v)| v == duration)
                .unwrap_or_else(|| {
                    panic!(
                        "{:?}: served duration {duration} missing in {durations:?}",
                        r.kind
                    )
                })
                + from;
            let ts = durations[at].0;
            assert_eq!(
                users.iter().find(|(t, _)| *t == ts).map(|p| p.1),
                Some(*user),
                "{:?}: the CPU counter of the round at {ts}",
                r.kind
            );
            from = at + 1;
        }
    }
    let r = remote(&d, 0);
    assert_eq!(r["remote"], format!("{}/api/v1/write", prom.addr()));
    assert_eq!(r["samples_dropped_total"]["queue_full"], 0);
}

fn outage_seconds() -> u64 {
    std::env::var("VITALS_TEST_OUTAGE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

fn count_segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".rwb"))
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn an_outage_loses_nothing_that_fits_the_buffer_and_the_queue_dir_survives_sigkill() {
    let mut vm = Receiver::start(Kind::VictoriaMetrics);
    let dir = tempfile::tempdir().unwrap();
    let queue_dir = dir.path().join("queue");
    let entry = |run: &str, queue: &str| {
        format!(
            "  - url: {}\n    external_labels: {{run: {run}}}\n    queue: {{{queue}}}\n",
            vm.write_url()
        )
    };
    let full = config(
        dir.path(),
        "full.yaml",
        &entry("full", "max_samples: 100000"),
    );
    let small = config(
        dir.path(),
        "small.yaml",
        &entry("small", "max_samples: 400"),
    );
    let killed = config(
        dir.path(),
        "killed.yaml",
        &entry("killed", &format!("dir: {}", queue_dir.display())),
    );
    let a = Daemon::start(&full);
    let b = Daemon::start(&small);
    let c = Daemon::start(&killed);
    for d in [&a, &b, &c] {
        d.wait_ready();
        drained(d);
    }

    vm.stop();
    let outage = Duration::from_secs(outage_seconds());
    let stopped = Instant::now();
    std::thread::sleep(outage / 2);
    // Kill the third one mid-outage, once what it queued is on disk.
    let (c_rounds, c_last) = host_rounds(&c);
    let queued = remote(&c, 0)["queue_rounds"].as_u64().unwrap() as usize;
    assert!(queued > 0, "nothing queued during the outage");
    poll("the queued rounds on disk", Duration::from_secs(30), || {
        count_segments(&queue_dir) >= queued
    });
    c.signal("KILL");
    drop(c);
    let c_restart = (vitals::runtime::unix_now() * 1000.0) as i64;
    let c = Daemon::start(&killed);
    assert!(
        c.log()
            .contains("remote write resumes rounds buffered before the restart"),
        "{}",
        c.log()
    );
    std::thread::sleep(outage.saturating_sub(stopped.elapsed()));
    let b_queue_before = remote(&b, 0)["queue_samples"].as_u64().unwrap();
    vm.restart();

    let (a_rounds, a_last) = host_rounds(&a);
    let (b_rounds, b_last) = host_rounds(&b);
    let (c2_rounds, c2_last) = host_rounds(&c);
    for d in [&a, &b, &c] {
        drained(d);
    }
    // VictoriaMetrics makes acknowledged rows searchable within a couple
    // of seconds.
    std::thread::sleep(Duration::from_secs(3));

    // Big buffer: every round of the run, the outage included.
    let full_load = samples_expecting(&vm, "vitals_host_load1{run=\"full\"}", a_last, a_rounds);
    assert_eq!(full_load.len(), a_rounds, "{full_load:?}");
    let a_status = remote(&a, 0);
    assert_eq!(a_status["samples_dropped_total"]["queue_full"], 0);
    assert!(a_status["samples_retried_total"].as_u64().unwrap() > 0);

    // Small buffer: whole rounds are missing, and the drop counter says
    // exactly how many samples they held.
    let small_load = samples_until(&vm, "vitals_host_load1{run=\"small\"}", b_last);
    let missing = b_rounds - small_load.len();
    let round_size = vm
        .raw_samples("{run=\"small\"}")
        .iter()
        .filter(|(_, s)| s.iter().any(|(t, _)| *t == b_last))
        .count();
    assert!(missing > 0 && round_size > 0, "{missing} {round_size}");
    assert!(
        b_queue_before <= 400,
        "the buffer held {b_queue_before} samples"
    );
    let dropped = remote(&b, 0)["samples_dropped_total"]["queue_full"]
        .as_u64()
        .unwrap();
    assert_eq!(
        dropped,
        (missing * round_size) as u64,
        "{missing} rounds of {round_size} samples"
    );
    // The missing rounds are the oldest of the outage: after the last round
    // delivered before it, the held rounds continue without a hole up to
    // the end, so exactly one gap in the sequence is wider than the rest.
    let gaps: Vec<i64> = small_load.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let typical = {
        let mut g = gaps.clone();
        g.sort();
        g[g.len() / 2]
    };
    let wide: Vec<&i64> = gaps
        .iter()
        // The hole spans missing + 1 intervals; half of that is far above
        // any delay of one round.
        .filter(|g| **g > typical * (missing as i64 + 1) / 2)
        .collect();
    assert_eq!(wide.len(), 1, "gaps {gaps:?}, {missing} missing");

    // SIGKILL with queue.dir: the rounds buffered before the kill arrive
    // after the restart, and so do the second life's.
    let killed_load = vm.raw_samples("vitals_host_load1{run=\"killed\"}");
    assert_eq!(killed_load.len(), 1);
    let first_life = killed_load[0]
        .1
        .iter()
        .filter(|(t, _)| *t <= c_last)
        .count();
    assert_eq!(first_life, c_rounds);
    let second_life = killed_load[0]
        .1
        .iter()
        .filter(|(t, _)| *t >= c_restart && *t <= c2_last)
        .count();
    assert_eq!(second_life, c2_rounds);
    assert_eq!(
        count_segments(&queue_dir),
        0,
        "delivered rounds stay on disk"
    );
    eprintln!(
        "outage of {} s: run=full {a_rounds} rounds, {} load1 samples at the receiver; \
         run=small {b_rounds} rounds, {missing} missing, {dropped} samples dropped \
         ({round_size} a round); run=killed {c_rounds} rounds before SIGKILL, all delivered \
         after the restart, then {c2_rounds} more",
        outage.as_secs(),
        full_load.len()
    );
}

/// How a tiny receiver answers.
#[derive(Clone, Copy)]
enum Mode {
    /// 429 with `Retry-After: 2` to the first two requests, then 204.
    TooMany,
    /// 400 to everything.
    BadRequest,
    /// Reads the request and never answers.
    Silent,
    /// 204 to everything.
    Accept,
    /// 200 with a 256 KiB body.
    AcceptTalkative,
    /// 400 with a 2 MiB body.
    RefuseTalkative,
}

#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    authorization: String,
    /// Timestamp and value of the first sample.
    first: (i64, f64),
    /// Distinct sample timestamps: the rounds the request carried.
    rounds: usize,
    /// Series in the request.
    series: usize,
    /// Each series' name and value, in request order.
    samples: Vec<(String, f64)>,
}

fn tiny_receiver(mode: Mode) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let log = log.clone();
            std::thread::spawn(move || loop {
                // One request: head, then Content-Length bytes.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                let length: usize = header("content-length").parse().unwrap_or(0);
                while buf.len() < head_end + length {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = &buf[head_end..head_end + length];
                let req = proto::WriteRequest::decode(
                    proto::decompress(body).expect("snappy body").as_slice(),
                )
                .expect("protobuf body");
                assert_eq!(header("content-encoding"), "snappy");
                assert_eq!(header("x-prometheus-remote-write-version"), "0.1.0");
                let first = &req.timeseries[0].samples[0];
                let rounds = req
                    .timeseries
                    .iter()
                    .map(|t| t.samples[0].timestamp)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(Seen {
                        at: Instant::now(),
                        authorization: header("authorization"),
                        first: (first.timestamp, first.value),
                        rounds,
                        series: req.timeseries.len(),
                        samples: req
                            .timeseries
                            .iter()
                            .map(|t| (t.labels[0].value.clone(), t.samples[0].value))
                            .collect(),
                    });
                    log.len()
                };
                let talk = |status: &str, size: usize| {
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {size}\r\n\r\n{}",
                        "x".repeat(size)
                    )
                };
                let answer = match mode {
                    Mode::AcceptTalkative => &talk("200 OK", 256 * 1024),
                    Mode::RefuseTalkative => &talk("400 Bad Request", 2 * 1024 * 1024),
                    Mode::TooMany if n <= 2 => "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
                    Mode::TooMany | Mode::Accept => "HTTP/1.1 204 No Content\r\n\r\n",
                    Mode::BadRequest => "HTTP/1.1 400 Bad Request\r\nContent-Length: 17\r\n\r\nout of order: no\n",
                    Mode::Silent => {
                        // Hold the connection open until vitals gives up.
                        let _ = conn.read(&mut chunk);
                        return;
                    }
                };
                if conn.write_all(answer.as_bytes()).is_err() {
                    return;
                }
            });
        }
    });
    (url, seen)
}

#[test]
fn receivers_that_throttle_refuse_or_hang_behave_as_specified_and_scrapes_go_on() {
    const TOKEN: &str = "t0ken-s3cret-xyz";
    const PASSWORD: &str = "b4sic-s3cret-pw";
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let (throttle_url, throttle) = tiny_receiver(Mode::TooMany);
    let (refuse_url, refuse) = tiny_receiver(Mode::BadRequest);
    let (hang_url, hang) = tiny_receiver(Mode::Silent);
    let (every_url, every) = tiny_receiver(Mode::Accept);
    let path = config(
        dir.path(),
        "vitals.yaml",
        &format!(
            "  - url: {throttle_url}\n    bearer_token_file: {}\n\
             \x20 - url: {refuse_url}\n    basic_auth: {{username: pusher, password_file: {}}}\n\
             \x20 - url: {hang_url}\n    timeout: 1s\n    headers: {{X-Api-Key: {TOKEN}}}\n\
             \x20 - url: {every_url}\n    interval: 4s\n",
            token.display(),
            password.display()
        ),
    );
    let d = Daemon::start(&path);
    d.wait_ready();
    let (rounds_before, _) = host_rounds(&d);

    // 429: retried after Retry-After, the same round first, then delivered.
    poll("delivery after two 429s", Duration::from_secs(60), || {
        remote(&d, 0)["samples_sent_total"].as_u64().unwrap() > 0
    });
    let seen = throttle.lock().unwrap().clone();
    assert!(seen.len() >= 3);
    assert_eq!(seen[0].authorization, format!("Bearer {TOKEN}"));
    for w in seen[..3].windows(2) {
        assert!(
            w[1].at - w[0].at >= Duration::from_secs(2),
            "retried before Retry-After"
        );
        assert_eq!(w[1].first, w[0].first, "the oldest round goes first");
    }
    let r = remote(&d, 0);
    assert!(r["samples_retried_total"].as_u64().unwrap() > 0);
    assert!(r["samples_failed_total"].as_u64().unwrap() > 0);
    assert_eq!(r["samples_dropped_total"]["rejected"], 0);

    // 400: dropped with the reason, nothing sent, the queue does not grow.
    poll("a rejected round", Duration::from_secs(30), || {
        remote(&d, 1)["samples_dropped_total"]["rejected"]
            .as_u64()
            .unwrap()
            > 0
    });
    let r = remote(&d, 1);
    assert_eq!(r["samples_sent_total"], 0);
    assert!(r["queue_rounds"].as_u64().unwrap() <= 1, "{r}");
    assert!(
        r["last_error"].as_str().unwrap().starts_with("HTTP 400"),
        "{r}"
    );
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("pusher:{PASSWORD}"));
    assert_eq!(
        refuse.lock().unwrap()[0].authorization,
        format!("Basic {basic}")
    );

    // Never answers: a timeout, retried, the rounds wait in the queue.
    poll("a timed-out request", Duration::from_secs(30), || {
        remote(&d, 2)["samples_failed_total"].as_u64().unwrap() > 0
    });
    let r = remote(&d, 2);
    assert!(r["last_error"].as_str().unwrap().contains("timeout"), "{r}");
    assert_eq!(r["samples_sent_total"], 0);
    assert!(!hang.lock().unwrap().is_empty());

    // `interval: 4s`: requests at least that far apart, carrying the
    // rounds of the meantime (1 s rounds).
    poll(
        "three requests at the interval",
        Duration::from_secs(60),
        || every.lock().unwrap().len() >= 3,
    );
    let seen = every.lock().unwrap().clone();
    for w in seen.windows(2) {
        assert!(
            w[1].at - w[0].at >= Duration::from_secs(4),
            "sent before the interval"
        );
    }
    assert!(
        seen.iter().any(|s| s.rounds >= 2),
        "no request carried several rounds"
    );

    // Scrapes and rounds go on meanwhile.
    poll("three more host rounds", Duration::from_secs(30), || {
        host_rounds(&d).0 >= rounds_before + 3
    });
    let metrics = d.get("/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        sample(&text, "vitals_host_load1", &[]).is_some(),
        "no host samples in /metrics"
    );
    // The scrape matches the catalog, and every remote-write family of the
    // catalog is in it (tests/catalog.rs leaves them to this binary).
    let seen = common::catalog::assert_families_in_catalog(&text);
    common::catalog::assert_covered("vitals_remote_write_", &seen);
    assert!(sample(
        &text,
        "vitals_remote_write_samples_dropped_total",
        &[
            ("remote", refuse_url.trim_start_matches("http://")),
            ("reason", "rejected")
        ]
    )
    .is_some_and(|v| v > 0.0));

    // No secret anywhere vitals writes.
    let status = d.get("/status").text();
    let log = d.log();
    for secret in [TOKEN, PASSWORD, basic.as_str()] {
        for (what, text) in [("/status", &status), ("/metrics", &text), ("log", &log)] {
            assert!(!text.contains(secret), "{what} shows a secret:\n{text}");
        }
    }
}

#[test]
fn the_kubernetes_push_example_is_a_valid_configuration_fed_by_the_downward_api() {
    let k8s = common::repo().join("deploy/kubernetes/push");
    let yaml = |file: &str| -> Value {
        serde_saphyr::from_str(&std::fs::read_to_string(k8s.join(file)).unwrap()).unwrap()
    };
    let patch = yaml("configmap-patch.yaml");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password"), "pw\n").unwrap();
    let text = patch["data"]["vitals.yaml"].as_str().unwrap().replace(
        "/etc/vitals-remote-write/",
        &format!("{}/", dir.path().display()),
    );
    let path = temp_config(dir.path(), "vitals.yaml", &text);

    // Every ${VAR} of the config is set by the Deployment from the pod.
    let deployment = yaml("deployment-patch.yaml");
    let env: Vec<&str> = deployment["spec"]["template"]["spec"]["initContainers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["valueFrom"]["fieldRef"]["fieldPath"].is_string())
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let used: Vec<&str> = text
        .split("${")
        .skip(1)
        .map(|s| s.split('}').next().unwrap())
        .collect();
    assert_eq!(used.len(), 3);
    for var in &used {
        assert!(env.contains(var), "{var} is not set by the Deployment");
    }

    let check = |env: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vitals"));
        cmd.arg("check-config").arg(&path);
        for var in used.iter() {
            cmd.env_remove(var);
        }
        for var in env {
            cmd.env(var, "x");
        }
        cmd.output().unwrap()
    };
    let out = check(&env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the downward API the pod fails to start, naming the variable.
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("environment variable"));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as
/// PEM files in `dir`.
fn pki(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "vitals push test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    for (name, san, usage) in [
        ("server", "127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth),
        (
            "client",
            "vitals.example",
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    ] {
        let mut params = CertificateParams::new(vec![san.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, san);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

#[test]
fn https_with_a_private_ca_and_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    pki(p);
    let web = temp_config(
        p,
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: {0}/server.crt\n  key_file: {0}/server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {0}/ca.crt\n",
            p.display()
        ),
    );
    let prom = Receiver::start_with(Kind::Prometheus, Some(web));
    let url = prom.write_url();
    let client = format!(
        "cert_file: {0}/client.crt, key_file: {0}/client.key",
        p.display()
    );
    let path = config(
        p,
        "vitals.yaml",
        &format!(
            "  - {{url: \"{url}\", tls: {{ca_file: {0}/ca.crt, {client}}}}}\n\
             \x20 - {{url: \"{url}\", tls: {{insecure_skip_verify: true, {client}}}}}\n\
             \x20 - {{url: \"{url}\", tls: {{ca_file: {0}/ca.crt}}}}\n\
             \x20 - {{url: \"{url}\", tls: {{ca_file: {0}/client.crt, {client}}}}}\n",
            p.display()
        ),
    );
    let d = Daemon::start(&path);
    d.wait_ready();
    for i in [0, 1] {
        poll("delivery over mutual TLS", Duration::from_secs(60), || {
            remote(&d, i)["samples_sent_total"].as_u64().unwrap() > 0
        });
    }
    // No client certificate: refused by the receiver. A CA that did not
    // sign the server's certificate: refused by vitals.
    for (i, error) in [(2, ""), (3, "certificate")] {
        poll("a failed TLS request", Duration::from_secs(60), || {
            remote(&d, i)["samples_failed_total"].as_u64().unwrap() > 0
        });
        let r = remote(&d, i);
        assert_eq!(r["samples_sent_total"], 0, "{r}");
        assert!(r["last_error"].as_str().unwrap().contains(error), "{r}");
    }
}

#[test]
fn sigterm_sends_what_is_queued_before_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = tiny_receiver(Mode::Accept);
    // With `interval: 1h` only the first round goes out on its own.
    let path = config(
        dir.path(),
        "vitals.yaml",
        &format!("  - {{url: \"{url}\", interval: 1h}}\n"),
    );
    let d = Daemon::start(&path);
    d.wait_ready();
    poll(
        "the first request and three more rounds",
        Duration::from_secs(60),
        // A source's round and the agent's own families that go with it
        // are two queued requests at one timestamp: six requests hold at
        // least three rounds.
        || seen.lock().unwrap().len() == 1 && remote(&d, 0)["queue_rounds"].as_u64().unwrap() >= 6,
    );
    let log = d.log();
    let status = d.stop();
    assert!(status.success(), "{status:?}\n{log}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one request at exit");
    assert!(seen[1].rounds >= 3, "{:?}", seen[1]);
    assert!(seen[1].first.0 > seen[0].first.0);
}

#[test]
fn an_answer_stands_as_its_status_says_whatever_its_body() {
    // Remote write 1.0: "clients MUST ignore the response body"; no retry
    // on a 2xx, nor on a 4xx other than 429.
    let dir = tempfile::tempdir().unwrap();
    let (accept_url, accept) = tiny_receiver(Mode::AcceptTalkative);
    let (refuse_url, refuse) = tiny_receiver(Mode::RefuseTalkative);
    let path = config(
        dir.path(),
        "vitals.yaml",
        &format!("  - url: {accept_url}\n  - url: {refuse_url}\n"),
    );
    let d = Daemon::start(&path);
    d.wait_ready();
    poll(
        "five accepted and five refused requests",
        Duration::from_secs(60),
        || accept.lock().unwrap().len() >= 5 && refuse.lock().unwrap().len() >= 5,
    );
    let r = remote(&d, 0);
    assert!(r["samples_sent_total"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["samples_failed_total"], 0, "{r}");
    assert_eq!(r["samples_retried_total"], 0, "{r}");
    // Each round went once: no request repeats an earlier one's first sample.
    let firsts: Vec<(i64, f64)> = accept.lock().unwrap().iter().map(|s| s.first).collect();
    let distinct: std::collections::BTreeSet<_> = firsts.iter().map(|f| f.0).collect();
    assert_eq!(distinct.len(), firsts.len(), "{firsts:?}");
    let r = remote(&d, 1);
    assert!(
        r["samples_dropped_total"]["rejected"].as_u64().unwrap() > 0,
        "{r}"
    );
    assert_eq!(r["samples_retried_total"], 0, "{r}");
    assert_eq!(r["samples_sent_total"], 0, "{r}");
    let firsts: Vec<i64> = refuse.lock().unwrap().iter().map(|s| s.first.0).collect();
    let distinct: std::collections::BTreeSet<_> = firsts.iter().collect();
    assert_eq!(
        distinct.len(),
        firsts.len(),
        "a refused round was sent again: {firsts:?}"
    );
}

#[test]
fn a_large_round_is_split_at_max_samples_per_send_in_order() {
    // An application with 4,500 series: its round goes out as requests of
    // at most 2,000 samples (the default), in order, none lost.
    let body: String = (0..4500)
        .map(|i| format!("app_series{{i=\"{i}\"}} {i}\n"))
        .collect();
    let port = common::serve(move |_| ("text/plain; version=0.0.4", body.clone()));
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = tiny_receiver(Mode::Accept);
    let path = temp_config(
        dir.path(),
        "vitals.yaml",
        &format!(
            "interval: 1h\ndefault_checks: false\nsources:\n  host: {{enabled: false}}\n  cgroup: {{enabled: false}}\n  app_metrics:\n    - {{name: big, url: \"http://127.0.0.1:{port}/metrics\", export: true}}\nremote_write:\n  - {{url: \"{url}\"}}\n"
        ),
    );
    let d = Daemon::start(&path);
    d.wait_ready();
    poll("the app round delivered", Duration::from_secs(60), || {
        seen.lock().unwrap().iter().map(|s| s.series).sum::<usize>() >= 4500
    });
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|s| s.series <= 2000), "{seen:?}");
    // All 4,500 in order (`__name__` sorts first), across several
    // requests of one timestamp.
    let app: Vec<f64> = seen
        .iter()
        .flat_map(|s| &s.samples)
        .filter(|(name, _)| name == "app_series")
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(app, (0..4500).map(f64::from).collect::<Vec<_>>());
    assert!(seen.len() >= 3, "{}", seen.len());
    assert!(seen.windows(2).all(|w| w[0].first.0 <= w[1].first.0));
    drop(d);
}

/// A small tmpfs mounted for one test (needs root, as the suite runs);
/// unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount")
            .success();
        assert!(
            ok,
            "mount -t tmpfs on {} (the test needs root)",
            at.display()
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// `queue.dir` on a full file system (ENOSPC) during an outage: the rounds
/// that cannot be written stay in memory, nothing that fits the buffer is
/// lost, the log says so once, no half-written file is left behind, and
/// the sender delivers everything once the receiver is back. Then the
/// same directory made read-only while running: the same, once more.
#[test]
fn a_full_queue_dir_loses_nothing_that_fits_in_memory() {
    let mut vm = Receiver::start(Kind::VictoriaMetrics);
    let dir = tempfile::tempdir().unwrap();
    let queue_dir = dir.path().join("queue");
    let _tmpfs = Tmpfs::mount(&queue_dir, "64k");
    let config = config(
        dir.path(),
        "vitals.yaml",
        &format!(
            "  - url: {}\n    external_labels: {{run: enospc}}\n    queue: {{dir: {}}}\n",
            vm.write_url(),
            queue_dir.display()
        ),
    );
    let d = Daemon::start(&config);
    d.wait_ready();
    drained(&d);
    // Leave room for a few segments only (tmpfs counts whole pages).
    let filler = vec![0u8; 48 * 1024];
    std::fs::write(queue_dir.join("filler"), &filler).unwrap();

    vm.stop();
    poll("queue.dir to fill up", Duration::from_secs(60), || {
        d.log().contains("queue.dir cannot be written")
    });
    // A few more rounds on the full file system.
    std::thread::sleep(Duration::from_secs(4));
    let queued = remote(&d, 0)["queue_rounds"].as_u64().unwrap() as usize;
    let on_disk = count_segments(&queue_dir);
    assert!(
        queued > on_disk,
        "{queued} rounds queued, {on_disk} on disk"
    );
    let names: Vec<String> = std::fs::read_dir(&queue_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "a half-written segment stayed: {names:?}"
    );
    vm.restart();

    let (rounds, last) = host_rounds(&d);
    drained(&d);
    std::thread::sleep(Duration::from_secs(3));
    let load = samples_expecting(&vm, "vitals_host_load1{run=\"enospc\"}", last, rounds);
    assert_eq!(load.len(), rounds, "{load:?}");
    let r = remote(&d, 0);
    for reason in ["queue_full", "too_old", "rejected", "corrupt"] {
        assert_eq!(r["samples_dropped_total"][reason], 0, "{reason}: {r}");
    }
    let log = d.log();
    assert_eq!(
        log.matches("queue.dir cannot be written").count(),
        1,
        "one line for the episode:\n{log}"
    );

    // Made read-only while running: one line again, delivery goes on from
    // memory, nothing dropped, and it is used again once writable.
    let remount = |how: &str| {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(&queue_dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {how}");
    };
    remount("ro");
    poll(
        "the read-only queue.dir noticed",
        Duration::from_secs(30),
        || d.log().matches("queue.dir cannot be written").count() == 2,
    );
    let sent = remote(&d, 0)["samples_sent_total"].as_u64().unwrap();
    poll("delivery from memory", Duration::from_secs(30), || {
        remote(&d, 0)["samples_sent_total"].as_u64().unwrap() > sent
    });
    remount("rw");
    poll("queue.dir used again", Duration::from_secs(30), || {
        d.log().matches("queue.dir can be written again").count() >= 2
    });
    assert_eq!(d.get("/health/live").status, 200);
    let r = remote(&d, 0);
    for reason in ["queue_full", "too_old", "rejected", "corrupt"] {
        assert_eq!(r["samples_dropped_total"][reason], 0, "{reason}: {r}");
    }
    let log = d.log();
    assert!(log.contains("Read-only file system"), "{log}");
    assert_eq!(
        log.matches("queue.dir cannot be written").count(),
        2,
        "{log}"
    );
}
