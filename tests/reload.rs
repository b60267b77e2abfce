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
