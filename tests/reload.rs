//! Reloading: a bad file is refused, counted and logged while the old
//! configuration keeps serving; a good one takes effect.

mod common;

use common::{sample, Daemon};

#[test]
fn bad_reload_keeps_old_config_good_reload_applies() {
    let d = Daemon::run("interval: 1s\nsources:\n  cgroup: {enabled: false}\n");
    let path = d.config_path();

    // Invalid file + SIGHUP: refused, old config still serving.
    std::fs::write(
        &path,
        "interval: 1s\nsources:\n  cgroup: {enabled: false}\n  hots: {}\n",
    )
    .unwrap();
    d.signal("HUP");
    d.wait_until("refused reload", |d| {
        sample(
            &d.get("/metrics").text(),
            "vitals_config_last_reload_success",
            &[],
        ) == Some(0.0)
    });
    let text = d.get("/metrics").text();
    assert_eq!(
        sample(&text, "vitals_config_reload_failures_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "vitals_source_success", &[("source", "host")]),
        Some(1.0)
    );
    let status: serde_json::Value = serde_json::from_slice(&d.get("/status").body).unwrap();
    let err = status["config"]["last_reload_error"].as_str().unwrap();
    assert!(
        err.ends_with(
            "vitals.yaml:4:3: unknown key `hots` (key `sources.hots`); did you mean `host`?"
        ),
        "{err}"
    );
    assert!(
        d.log().contains("configuration reload refused"),
        "{}",
        d.log()
    );

    // The same refusal through the HTTP endpoint answers 400 with the reason.
    let r = d.request("POST", "/-/reload", &[]);
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("vitals.yaml:4:3: unknown key `hots`"),
        "{}",
        r.text()
    );

    // A check on a misspelt family is refused on reload as at start.
    std::fs::write(
        &path,
        "interval: 1s\nsources:\n  cgroup: {enabled: false}\nchecks:\n  - {name: load, metric: vitals_host_lod1, warning: 50}\n",
    )
    .unwrap();
    let r = d.request("POST", "/-/reload", &[]);
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains(
            "vitals.yaml:5:26: key `checks[0].metric`: check `load`: `vitals_host_lod1` is not a metric vitals exports"
        ) && r.text().contains("did you mean `vitals_host_load1`?"),
        "{}",
        r.text()
    );

    // A valid file through POST /-/reload: the cgroup source appears.
    std::fs::write(&path, "interval: 1s\nsources:\n  cgroup: {enabled: true}\n").unwrap();
    let r = d.request("POST", "/-/reload", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "reloaded\n"));
    d.wait_until("cgroup source round", |d| {
        sample(
            &d.get("/metrics").text(),
            "vitals_source_errors_total",
            &[("source", "cgroup")],
        )
        .is_some()
    });
    let text = d.get("/metrics").text();
    assert_eq!(
        sample(&text, "vitals_config_last_reload_success", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "vitals_config_reload_failures_total", &[]),
        Some(3.0)
    );
}

/// The `vitals_host_*` and `vitals_cgroup_*` series of an exposition, by
/// name and labels.
fn host_and_cgroup_series(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("vitals_host_") || l.starts_with("vitals_cgroup_"))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}

/// A reload keeps what did not change: across two reloads, one changing
/// only a PostgreSQL target whose server never answers (so its new round
/// takes the whole 3 s timeout), one changing the host source's interval,
/// `/health/ready` stays 200 and every host and cgroup series is in every
/// scrape taken 100 ms apart; the counters go on from where they were.
#[test]
fn reload_keeps_readiness_series_and_counters() {
    // A "database" that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for stream in silent.incoming().take(16).flatten() {
                held.lock().unwrap().push(stream);
            }
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let config = |host_interval: &str, top: u32| {
        format!(
            "interval: 500ms\ndefault_checks: false\nsources:\n  host: {{enabled: true, interval: {host_interval}}}\n  cgroup: {{enabled: true}}\n  postgres:\n    - name: silent\n      dsn: \"host=127.0.0.1 port={port} user=monitor dbname=postgres connect_timeout=30\"\n      password_file: {}\n      timeout: 3s\n      top_applications: {top}\n",
            pw.display()
        )
    };
    let d = Daemon::spawn_in(dir, &config("500ms", 5), &[], &[]);
    d.wait_ready();
    let errors = |text: &str, source: &str| {
        sample(text, "vitals_source_errors_total", &[("source", source)]).unwrap_or(-1.0)
    };
    // Two cgroup rounds, so the interval ratios are there too.
    d.wait_until("a second cgroup round", |d| {
        let status: serde_json::Value = serde_json::from_slice(&d.get("/status").body).unwrap();
        status["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["source"] == "postgres/silent" || s["rounds"].as_u64() >= Some(2))
    });
    let before = d.get("/metrics").text();
    let series = host_and_cgroup_series(&before);
    assert!(
        series.iter().any(|s| s.starts_with("vitals_host_load1"))
            && series
                .iter()
                .any(|s| s.starts_with("vitals_cgroup_memory_usage_bytes")),
        "{before}"
    );
    let pg_errors = errors(&before, "postgres/silent");
    assert!(pg_errors >= 1.0, "{before}");

    for (step, (host_interval, top)) in [("500ms", 6), ("700ms", 6)].into_iter().enumerate() {
        std::fs::write(d.config_path(), config(host_interval, top)).unwrap();
        d.signal("HUP");
        // 50 polls, 100 ms apart: the reload and the replaced target's
        // first (3 s) round fall inside them.
        for poll in 0..50 {
            let ready = d.get("/health/ready");
            assert_eq!(
                ready.status,
                200,
                "reload {step}, poll {poll}: {}",
                ready.text()
            );
            let text = d.get("/metrics").text();
            let now = host_and_cgroup_series(&text);
            let missing: Vec<_> = series.difference(&now).collect();
            assert!(
                missing.is_empty(),
                "reload {step}, poll {poll}: missing {missing:?}"
            );
            assert!(
                errors(&text, "postgres/silent") >= pg_errors,
                "reload {step}, poll {poll}: the error counter went back: {text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let text = d.get("/metrics").text();
        assert_eq!(
            sample(&text, "vitals_config_last_reload_success", &[]),
            Some(1.0)
        );
        // The replaced target's first new round came and failed as before:
        // its counter went on from where it was.
        assert!(errors(&text, "postgres/silent") > pg_errors, "{text}");
    }
    let status: serde_json::Value = serde_json::from_slice(&d.get("/status").body).unwrap();
    let host = status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "host")
        .unwrap();
    // The host source's interval changed in the second reload; its round
    // count went on (about 20 rounds in 10 s, not the 7 since that reload).
    assert_eq!(host["interval_seconds"], 0.7);
    assert!(host["rounds"].as_u64() > Some(10), "{host}");
}
