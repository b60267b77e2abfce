//! `sources.app_metrics` against a real instrumented application (Debian's
//! python3-prometheus-client serving tests/support/metrics_app.py) and a
//! server of broken bodies: metrics merging on `/metrics` in both formats,
//! the bounds (garbage, truncated, 50 MB, 1,000,000 series) and a body that
//! breaks an OpenMetrics rule refusing a round with a clear error and
//! bounded memory, the other sources unaffected; valid text that is easy to
//! get wrong (an unknown escape, repeated series, a histogram without
//! `+Inf`) kept as Prometheus keeps it.
//!
//! One Python app per test binary: the single test runs its cases in order.

mod app_support;
mod common;

use app_support::{peak_rss, BadServer, Load, Prometheus, PyApp};
use common::{chromium, sample, screenshot, temp_config, Daemon};
use std::process::Command;

/// The stated memory bound: vitals' peak resident memory after scraping a
/// 50 MB body (max_bytes 10 MiB) and a 1,000,000-series body (max_bytes
/// 64 MiB, max_series 20,000) stays under this.
const PEAK_RSS_BOUND: u64 = 160 * 1024 * 1024;

fn status_of(d: &Daemon, source: &str) -> serde_json::Value {
    let status: serde_json::Value = serde_json::from_str(&d.get("/status").text()).unwrap();
    status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == source)
        .cloned()
        .unwrap_or_else(|| panic!("no source {source} in /status"))
}

#[test]
fn app_metrics_suite() {
    let app = PyApp::start(&[]);
    merged_exposition_and_bounds(&app);
    credentials_and_https_are_refused_at_load();
    derived_checks_agree_with_prometheus_and_follow_the_app(&app);
}

/// The window of the checks and of the PromQL they are compared with.
const WINDOW: &str = "20s";

fn check_of(d: &Daemon, check: &str) -> serde_json::Value {
    let status: serde_json::Value = serde_json::from_str(&d.get("/status").text()).unwrap();
    status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

fn state_of(d: &Daemon, check: &str) -> String {
    check_of(d, check)["state"]
        .as_str()
        .unwrap_or("absent")
        .to_owned()
}

/// vitals' p95 and 5xx ratio next to a real Prometheus scraping the same
/// app every second and evaluating the same window; then the checks (at
/// the default levels: 1 s / 5 s, 5 % / 10 %) go warning, critical and back
/// as the app slows down and fails, and readiness follows the error check.
fn derived_checks_agree_with_prometheus_and_follow_the_app(app: &PyApp) {
    let dir = tempfile::tempdir().unwrap();
    let prometheus = Prometheus::start(dir.path(), &[&app.addr()]);
    let config = temp_config(
        dir.path(),
        "vitals.yaml",
        &format!(
            "interval: 1s\ndefault_checks: false\nsources:\n  cgroup: {{enabled: false}}\n  app_metrics:\n\
             \x20   - {{name: web, url: 'http://{}/metrics'}}\n\
             \x20   - {{name: gone, url: 'http://127.0.0.1:9/metrics'}}\n\
             checks:\n\
             \x20 - name: app_latency_p95\n\
             \x20   quantile: {{histogram: http_request_duration_seconds, q: 0.95, window: {WINDOW}, by: [app]}}\n\
             \x20   warning: 1\n    critical: 5\n    for: 0s\n    clear_for: 0s\n\
             \x20 - name: app_errors\n\
             \x20   ratio: {{numerator: 'http_requests_total{{code=~\"5..\"}}', denominator: http_requests_total, window: {WINDOW}, by: [app]}}\n\
             \x20   warning: 0.05\n    critical: 0.1\n    for: 0s\n    clear_for: 0s\n    readiness: true\n",
            app.addr()
        ),
    );
    let d = Daemon::start(&config);
    d.wait_ready();

    // Steady traffic: 0.24-0.36 s per request, 25 % errors.
    app.set(&[("latency", 0.3), ("errors", 0.25)]);
    let load = Load::start(&app.addr(), 8, std::time::Duration::ZERO);
    // A full window of it in both.
    std::thread::sleep(std::time::Duration::from_secs(25));
    let p95_q = format!(
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[{WINDOW}])))"
    );
    let ratio_q = format!(
        "sum(rate(http_requests_total{{code=~\"5..\"}}[{WINDOW}])) / sum(rate(http_requests_total[{WINDOW}]))"
    );
    let (mut p95, mut ratio) = (None, None);
    for _ in 0..20 {
        let ours = (
            check_of(&d, "app_latency_p95")["value"].as_f64(),
            check_of(&d, "app_errors")["value"].as_f64(),
        );
        let theirs = (prometheus.query(&p95_q), prometheus.query(&ratio_q));
        if let ((Some(a), Some(b)), (Some(c), Some(e))) = (ours, theirs) {
            p95 = Some((a, c));
            ratio = Some((b, e));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let (p95, ratio) = (
        p95.unwrap_or_else(|| panic!("no p95 from both; prometheus log:\n{}", prometheus.log())),
        ratio.unwrap(),
    );
    println!(
        "window {WINDOW}: p95 vitals {:.4} s, Prometheus {:.4} s; 5xx ratio vitals {:.4}, Prometheus {:.4}",
        p95.0, p95.1, ratio.0, ratio.1
    );
    // Agreement: the two scrape the app at different instants (up to 1 s
    // apart), so their windows hold slightly different requests; the
    // interpolation inside the (0.25, 0.5] bucket is the same.
    assert!(
        (p95.0 - p95.1).abs() <= 0.05 * p95.1,
        "p95: vitals {} vs Prometheus {}",
        p95.0,
        p95.1
    );
    assert!(
        (0.25..=0.5).contains(&p95.0),
        "p95 {} outside the bucket of every request",
        p95.0
    );
    assert!(
        (ratio.0 - ratio.1).abs() <= 0.02,
        "ratio: vitals {} vs Prometheus {}",
        ratio.0,
        ratio.1
    );
    assert!((0.15..=0.35).contains(&ratio.0), "ratio {}", ratio.0);
    // Far past 10 %: critical, and the readiness check takes the pod out.
    assert_eq!(state_of(&d, "app_errors"), "critical");
    assert_eq!(d.get("/health/ready").status, 503);

    page_shows_units_sparklines_and_sources(&d, dir.path());

    // Healthy: both ok, ready again.
    app.set(&[("latency", 0.05), ("errors", 0.0)]);
    d.wait_until("both checks ok", |d| {
        state_of(d, "app_errors") == "ok" && state_of(d, "app_latency_p95") == "ok"
    });
    assert_eq!(d.get("/health/ready").status, 200);
    // Slower than 1 s and 7 % errors: warning on both.
    app.set(&[("latency", 2.0), ("errors", 0.07)]);
    d.wait_until("both checks warning", |d| {
        state_of(d, "app_errors") == "warning" && state_of(d, "app_latency_p95") == "warning"
    });
    assert_eq!(d.get("/health/ready").status, 200);
    // Slower than 5 s and 30 % errors: critical, not ready.
    app.set(&[("latency", 7.0), ("errors", 0.3)]);
    d.wait_until("both checks critical", |d| {
        state_of(d, "app_errors") == "critical" && state_of(d, "app_latency_p95") == "critical"
    });
    let ready = d.get("/health/ready");
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains("app_errors"), "{}", ready.text());
    // And back.
    app.set(&[("latency", 0.05), ("errors", 0.0)]);
    d.wait_until("both checks ok again", |d| {
        state_of(d, "app_errors") == "ok" && state_of(d, "app_latency_p95") == "ok"
    });
    assert_eq!(d.get("/health/ready").status, 200);
    drop(load);
    d.stop();
}

fn merged_exposition_and_bounds(app: &PyApp) {
    let bad = BadServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = temp_config(
        dir.path(),
        "vitals.yaml",
        &format!(
            "interval: 1s\ndefault_checks: false\nsources:\n  cgroup: {{enabled: false}}\n  app_metrics:\n\
             \x20   - {{name: web, url: 'http://{}/metrics', export: true}}\n\
             \x20   - {{name: garbage, url: '{}'}}\n\
             \x20   - {{name: binary, url: '{}'}}\n\
             \x20   - {{name: truncated, url: '{}'}}\n\
             \x20   - {{name: huge, url: '{}', interval: 3s}}\n\
             \x20   - {{name: million, url: '{}', interval: 3s, max_bytes: 67108864}}\n\
             \x20   - {{name: odd, url: '{}', export: true}}\n\
             \x20   - {{name: interleaved, url: '{}'}}\n\
             checks:\n\
             \x20 - name: broken_p95\n\
             \x20   quantile: {{histogram: broken_seconds, q: 0.95, window: 10s, by: [app]}}\n\
             \x20   warning: 1\n",
            app.addr(),
            bad.url("/garbage"),
            bad.url("/binary"),
            bad.url("/truncated"),
            bad.url("/huge"),
            bad.url("/million"),
            bad.url("/odd"),
            bad.url("/interleaved"),
        ),
    );
    let d = Daemon::start(&config);
    d.wait_ready();
    // Two rounds of every source, so the bounded ones were hit twice.
    d.wait_until("two rounds of every source", |d| {
        let status: serde_json::Value = serde_json::from_str(&d.get("/status").text()).unwrap();
        status["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["rounds"].as_u64().unwrap_or(0) >= 2)
    });

    // Each bound and each broken body: a clear error naming it.
    for (source, want) in [
        (
            "app/garbage",
            "parsing the body: line 1: expected a metric name at the start of \"<html>",
        ),
        ("app/binary", "body is not UTF-8 text (at byte 1)"),
        (
            "app/truncated",
            "the OpenMetrics body does not end with `# EOF` (truncated?)",
        ),
        (
            "app/huge",
            "body larger than max_bytes = 10485760 bytes; the whole scrape is refused",
        ),
        (
            "app/million",
            "more than max_series = 20000 series; the whole scrape is refused",
        ),
        (
            "app/interleaved",
            "parsing the body: line 5: family a again after another: OpenMetrics families must not be interleaved",
        ),
    ] {
        let s = status_of(&d, source);
        assert_eq!(s["success"], false, "{source}: {s}");
        let error = s["last_error"].as_str().unwrap_or_default();
        assert!(error.contains(want), "{source}: {error:?} lacks {want:?}");
    }
    let text = d.get("/metrics").text();
    for (source, ok) in [
        ("app/web", 1.0),
        ("host", 1.0),
        ("app/huge", 0.0),
        ("app/million", 0.0),
        ("app/garbage", 0.0),
    ] {
        assert_eq!(
            sample(&text, "vitals_source_success", &[("source", source)]),
            Some(ok),
            "{source}"
        );
    }
    assert_eq!(sample(&text, "vitals_app_up", &[("app", "web")]), Some(1.0));
    assert_eq!(
        sample(&text, "vitals_app_up", &[("app", "million")]),
        Some(0.0)
    );
    // Nothing of a refused body is kept.
    assert!(!text.contains("many{"), "refused series exported");
    assert!(!text.contains("big_gauge"), "refused series exported");
    assert_eq!(
        sample(&text, "vitals_app_up", &[("app", "interleaved")]),
        Some(0.0)
    );
    assert!(
        !text
            .lines()
            .any(|l| l.contains("app=\"interleaved\"") && !l.starts_with("vitals_")),
        "a refused body's series exported"
    );

    // Valid text that is easy to get wrong: the unknown escape kept as
    // written (and so written back escaped), each repeated series once,
    // with the value of its latest timestamp, else the first.
    assert_eq!(sample(&text, "vitals_app_up", &[("app", "odd")]), Some(1.0));
    assert!(
        text.contains("odd_escape{path=\"C:\\\\zip\",app=\"odd\"} 1\n"),
        "{text}"
    );
    let repeated: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("repeated{"))
        .collect();
    assert_eq!(
        repeated,
        [
            "repeated{a=\"x\",app=\"odd\"} 3",
            "repeated{a=\"y\",app=\"odd\"} 5"
        ]
    );
    // The histogram without +Inf is exported as it is, but gives no p95:
    // the check says why.
    assert!(text.contains("broken_seconds_bucket{le=\"1\",app=\"odd\"} 2\n"));
    let broken = check_of(&d, "broken_p95");
    assert_eq!(broken["state"], "unknown", "{broken}");
    assert_eq!(
        broken["reason"],
        "histogram broken_seconds{app=\"odd\"} breaks the format's rules (no +Inf bucket); no quantile is computed from it"
    );

    // Bounded memory: peak RSS of the daemon over all of that.
    let peak = peak_rss(d.pid());
    println!("vitals peak RSS after the 50 MB and 1,000,000-series bodies: {peak} bytes");
    assert!(
        peak < PEAK_RSS_BOUND,
        "peak RSS {peak} bytes is over the bound {PEAK_RSS_BOUND}"
    );

    // Metrics merging: the app's series with app="web", their own TYPE.
    assert!(text.contains("# TYPE http_request_duration_seconds histogram\n"));
    assert!(text.contains("# TYPE http_requests_total counter\n"));
    assert!(text.contains("# TYPE job_queue_size gauge\n"));
    assert_eq!(
        sample(
            &text,
            "http_request_duration_seconds_bucket",
            &[("le", "+Inf"), ("handler", "/work"), ("app", "web")]
        ),
        sample(
            &text,
            "http_request_duration_seconds_count",
            &[("handler", "/work"), ("app", "web")]
        ),
    );
    assert!(text.contains(
        "http_request_duration_seconds_bucket{handler=\"/work\",le=\"+Inf\",app=\"web\"} "
    ));
    assert_eq!(
        sample(
            &text,
            "http_requests_total",
            &[("code", "500"), ("app", "web")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            "tenant_info",
            &[("exported_app", "billing"), ("app", "web")]
        ),
        Some(1.0)
    );
    // The app's own vitals_source_success (42) is dropped and counted.
    assert_eq!(
        sample(&text, "vitals_app_dropped_series", &[("app", "web")]),
        Some(1.0)
    );
    assert!(!text
        .lines()
        .any(|l| l.starts_with("vitals_source_success ")));
    assert!(sample(&text, "vitals_app_series", &[("app", "web")]).unwrap() > 10.0);
    assert!(sample(&text, "vitals_app_scrape_bytes", &[("app", "web")]).unwrap() > 500.0);
    // vitals' own families in the merged scrape are the catalog's, and every
    // `vitals_app_` family of the catalog is among them.
    let own: String = text
        .lines()
        .filter(|l| {
            let name = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            name.starts_with("vitals_")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let seen = common::catalog::assert_families_in_catalog(&own);
    common::catalog::assert_covered("vitals_app_", &seen);

    // The merged exposition is valid for Prometheus' own parser.
    let path = dir.path().join("metrics.txt");
    std::fs::write(&path, &text).unwrap();
    let lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .expect("promtool (Debian package prometheus)");
    let said =
        String::from_utf8_lossy(&lint.stderr).into_owned() + &String::from_utf8_lossy(&lint.stdout);
    assert!(!said.contains("parsing error"), "{said}");

    // OpenMetrics: counter metadata without _total, histogram intact, EOF.
    let om = d
        .request(
            "GET",
            "/metrics",
            &[("Accept", "application/openmetrics-text; version=1.0.0")],
        )
        .text();
    assert!(om.contains("# TYPE http_requests counter\n"), "{om}");
    assert!(om.contains("# TYPE http_request_duration_seconds histogram\n"));
    assert!(om.ends_with("# EOF\n"));
    d.stop();
}

fn credentials_and_https_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    // The error points at the URL, or at the name when the URL holds a
    // password (so the line shown never has it).
    for (url, want, at) in [
        (
            "http://scraper:s3cret-pw@127.0.0.1:9/metrics",
            "key `sources.app_metrics[0].url`: app_metrics URL must not contain a user or password",
            "bad.yaml:4:",
        ),
        (
            "https://127.0.0.1:9/metrics",
            "https is not supported",
            "bad.yaml:4:",
        ),
    ] {
        let config = temp_config(
            dir.path(),
            "bad.yaml",
            &format!("sources:\n  app_metrics:\n    - name: web\n      url: '{url}'\n"),
        );
        let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
            .args(["check-config", config.to_str().unwrap()])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(64), "{said}");
        assert!(said.contains(want), "{said}");
        assert!(said.contains(at), "{said}");
        assert!(!said.contains("s3cret-pw"), "the password leaked: {said}");
    }
}

/// The page at `/` in headless Chromium: values in their units, a
/// sparkline per instance, the sources with the last error; a screenshot.
fn page_shows_units_sparklines_and_sources(d: &Daemon, dir: &std::path::Path) {
    let url = format!("http://{}/", d.addr);
    let profile = dir.join("profile");
    let out = chromium(&["--dump-dom", &url], &profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = |check: &str| -> String {
        dom.split("<tr")
            .find(|r| r.contains(&format!("<td>{check}</td>")))
            .unwrap_or_else(|| panic!("no row for {check} in the DOM:\n{dom}"))
            .to_owned()
    };
    // p95 around 0.49 s reads in ms, the error ratio in %.
    let p95 = row("app_latency_p95");
    assert!(p95.contains(" ms</td>"), "{p95}");
    assert!(p95.contains("1 s / 5 s"), "{p95}");
    let errors = row("app_errors");
    assert!(errors.contains(" %</td>"), "{errors}");
    assert!(errors.contains("5 % / 10 %"), "{errors}");
    for r in [&p95, &errors] {
        assert!(r.contains("<svg class=\"spark\""), "no sparkline: {r}");
        let points = r
            .split("aria-label=\"")
            .nth(1)
            .and_then(|a| a.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        assert!(points >= 2, "{r}");
    }
    // Sources: the app ok, the dead one failing with its error.
    let web = dom
        .split("<tr")
        .find(|r| r.contains("<td>app/web</td>"))
        .unwrap_or_else(|| panic!("no app/web row: {dom}"));
    assert!(web.contains("<td class=\"state\">ok</td>"), "{web}");
    let gone = dom
        .split("<tr")
        .find(|r| r.contains("<td>app/gone</td>"))
        .unwrap_or_else(|| panic!("no app/gone row: {dom}"));
    assert!(gone.contains("failing"), "{gone}");
    assert!(gone.contains("connecting to 127.0.0.1:9"), "{gone}");
    let shot = dir.join("page.png");
    screenshot(&url, &shot, "1200,700", &profile);
    println!("screenshot of the page: {}", shot.display());
}

/// Trend on real processes: one that leaks 2 MB/s fires, one with a 10 MB
/// garbage-collector-like sawtooth (every 2 s) stays ok, and neither has a
/// state during the warm-up. RSS from the process source; a test-scale
/// window and warm-up (20 s each: a fit over fewer sawtooth periods is
/// noise). Runs beside the suite above.
#[test]
fn trend_fires_on_a_real_leak_not_on_a_sawtooth() {
    const LEAK: &str = "import time\nkeep = []\nwhile True:\n    keep.append(bytearray(256 * 1024))\n    time.sleep(0.125)\n";
    // The sawtooth maps its memory itself, so that freeing it really gives
    // it back (glibc's dynamic mmap threshold would keep freed 256 KiB
    // blocks of bytearrays in the heap, and the RSS would ratchet up).
    const SAW: &str = "import mmap, time\nwhile True:\n    m = mmap.mmap(-1, 40 * 256 * 1024)\n    for i in range(40):\n        m[i * 262144:(i + 1) * 262144] = b'x' * 262144\n        time.sleep(0.05)\n    m.close()\n";
    let dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    let mut processes = String::new();
    for (name, code) in [("leaky", LEAK), ("sawtooth", SAW)] {
        let child = Command::new(app_support::PYTHON)
            .args(["-c", code])
            .spawn()
            .expect("python3");
        let pidfile = dir.path().join(format!("{name}.pid"));
        std::fs::write(&pidfile, child.id().to_string()).unwrap();
        processes.push_str(&format!(
            "    - {{name: {name}, match: {{pidfile: '{}'}}}}\n",
            pidfile.display()
        ));
        children.push(KillOnDrop(child));
    }
    let config = temp_config(
        dir.path(),
        "vitals.yaml",
        &format!(
            "interval: 1s\ndefault_checks: false\nsources:\n  cgroup: {{enabled: false}}\n  processes:\n{processes}\
             checks:\n\
             \x20 - name: rss_growth\n\
             \x20   trend: {{metric: vitals_process_resident_memory_bytes, window: 20s, warmup: 20s}}\n\
             \x20   warning: 1e9\n"
        ),
    );
    let d = Daemon::start(&config);
    let state = |d: &Daemon, process: &str| -> (String, Option<String>) {
        let status: serde_json::Value = serde_json::from_str(&d.get("/status").text()).unwrap();
        status["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "rss_growth" && c["labels"]["process"] == process)
            .map(|c| {
                (
                    c["state"].as_str().unwrap_or("").to_owned(),
                    c["reason"].as_str().map(str::to_owned),
                )
            })
            .unwrap_or_default()
    };
    d.wait_until("both instances", |d| {
        !state(d, "leaky").0.is_empty() && !state(d, "sawtooth").0.is_empty()
    });
    // Warm-up: no state, the reason says so.
    for p in ["leaky", "sawtooth"] {
        let (s, reason) = state(&d, p);
        assert_eq!(s, "unknown", "{p}");
        assert!(
            reason.as_deref().unwrap_or("").starts_with("warming up"),
            "{p}: {reason:?}"
        );
    }
    d.wait_until("the leak fires", |d| state(d, "leaky").0 == "warning");
    // By then the sawtooth has had at least as long: ok, and stays so.
    for _ in 0..10 {
        assert_eq!(state(&d, "sawtooth").0, "ok");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    d.stop();
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
