//! The HTTP endpoints of the real binary: status codes, content negotiation,
//! gzip, 404/405.

mod common;

use common::{sample, Daemon};
use std::io::Read;

fn host_only() -> Daemon {
    Daemon::run("interval: 1s\nsources:\n  cgroup: {enabled: false}\n")
}

#[test]
fn metrics_is_text_format_by_default_with_self_metrics() {
    let d = host_only();
    let r = d.get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    assert_eq!(
        sample(&text, "vitals_source_success", &[("source", "host")]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "vitals_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "vitals_config_last_reload_success", &[]),
        Some(1.0)
    );
    assert!(!text.contains("# EOF"));
    // The cgroup source is disabled: no series of it.
    assert!(!text.contains("source=\"cgroup\""));
}

#[test]
fn openmetrics_by_content_negotiation() {
    let d = host_only();
    let accept =
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let r = d.request("GET", "/metrics", &[("Accept", accept)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = r.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE vitals_source_errors counter\n"));
    assert!(text.contains("vitals_source_errors_total{source=\"host\"} 0\n"));
}

#[test]
fn gzip_when_asked_and_only_then() {
    let d = host_only();
    let plain = d.get("/metrics");
    assert_eq!(plain.header("content-encoding"), None);
    let r = d.request("GET", "/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("vary"), Some("Accept, Accept-Encoding"));
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut unzipped)
        .expect("valid gzip");
    assert!(unzipped.starts_with("# HELP "));
    assert_eq!(
        sample(&unzipped, "vitals_source_success", &[("source", "host")]),
        Some(1.0)
    );
    let refused = d.request("GET", "/metrics", &[("Accept-Encoding", "gzip;q=0")]);
    assert_eq!(refused.header("content-encoding"), None);
}

#[test]
fn health_status_and_index() {
    let d = host_only();
    let live = d.get("/health/live");
    assert_eq!((live.status, live.text().as_str()), (200, "ok\n"));
    let ready = d.get("/health/ready");
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));
    let status = d.get("/status");
    assert_eq!(status.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&status.body).expect("status is JSON");
    assert_eq!(json["ready"], true);
    assert_eq!(json["sources"][0]["source"], "host");
    assert_eq!(json["sources"][0]["success"], true);
    assert!(json["sources"][0]["rounds"].as_u64().unwrap() >= 1);
    assert_eq!(json["sources"].as_array().unwrap().len(), 1);
    let index = d.get("/");
    assert_eq!(index.status, 200);
    assert!(index.text().contains("href=\"/metrics\""));
    let head = d.request("HEAD", "/metrics", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[test]
fn unknown_paths_404_and_wrong_methods_405() {
    let d = host_only();
    assert_eq!(d.get("/nope").status, 404);
    assert_eq!(d.get("/metrics/extra").status, 404);
    for (method, path, allow) in [
        ("POST", "/metrics", "GET, HEAD"),
        ("DELETE", "/status", "GET, HEAD"),
        ("PUT", "/health/ready", "GET, HEAD"),
        ("GET", "/-/reload", "POST"),
    ] {
        let r = d.request(method, path, &[]);
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
}

#[test]
fn sigterm_stops_cleanly() {
    let d = host_only();
    let status = d.stop();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn json_logs_when_configured() {
    let d =
        Daemon::run("log: {level: debug, format: json}\nsources:\n  cgroup: {enabled: false}\n");
    let log = d.log();
    let started = log
        .lines()
        .find(|l| l.contains("vitals started"))
        .expect("start line");
    let json: serde_json::Value = serde_json::from_str(started).expect("log lines are JSON");
    assert_eq!(json["message"], "vitals started");
    assert_eq!(json["level"], "INFO");
    assert_eq!(json["listen"].as_str(), Some(d.addr.as_str()));
}
