//! Relabeling and scrape limits judged by real peers (issue 26).
//!
//! - One application, one set of `metric_relabel_configs` using every
//!   action (hashmod, labelmap with `${1}`, a regex with alternation and
//!   capture groups, keepequal and dropequal, `\d` against a non-ASCII
//!   digit, a rename of `__name__`). Prometheus 2.42 (Debian) scrapes the
//!   app with the rules in its scrape config; vitals scrapes it with the
//!   same YAML pasted and pushes to a second Prometheus. Both TSDBs hold
//!   the same series and values (ignoring `app`, `job`, `instance`). The
//!   push has `write_relabel_configs` dropping vitals' own families, so the
//!   second Prometheus holds none of them.
//! - Each of Prometheus' four scrape limits refuses a real scrape whole
//!   (`vitals_app_up 0`, the reason in `/status`, the counter), one at its
//!   bound does not, and `sample_limit` counts after relabeling.
//! - `/status` lists each source's rules and what they dropped;
//!   `vitals_relabel_dropped_series` counts it; the top-level rules drop
//!   vitals' own families.

mod common;
#[path = "common/receivers.rs"]
mod receivers;

use common::{poll, sample, unix_now, Daemon};
use receivers::{Kind, Receiver};
use std::time::Duration;

const APP: &str = r#"# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{handler="/api/cart",status="200",pod="web-1"} 10
http_requests_total{handler="/admin/users",status="500",pod="web-2"} 2
http_requests_total{handler="/static/x",status="404",pod="web-3"} 7
http_requests_total{handler="/api/cart",status="201",pod="web-4",junk="x"} 3
# TYPE go_goroutines gauge
go_goroutines 42
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.5
# TYPE legacy_queue_depth gauge
legacy_queue_depth{queue="mail",tag_team="ops",tag_tier="gold"} 5
# TYPE build_info gauge
build_info{version="v12.3.0",env="prod",Mode="FAST"} 1
build_info{version="v١.2",env="dév",Mode="Slow"} 1
# TYPE link_up gauge
link_up{src_zone="a",dst_zone="a"} 1
link_up{src_zone="a",dst_zone="b"} 0
# TYPE self_named gauge
self_named{dup_name="self_named"} 1
self_named{dup_name="other"} 2
# TYPE req_seconds histogram
req_seconds_bucket{le="0.1",pod="web-1"} 1
req_seconds_bucket{le="+Inf",pod="web-1"} 2
req_seconds_sum{pod="web-1"} 0.3
req_seconds_count{pod="web-1"} 2
"#;

/// The rules, as a Prometheus user has them; indented into both configs.
const RULES: &str = r#"- source_labels: [__name__]
  regex: 'go_.*|process_.*'
  action: drop
- source_labels: [status]
  regex: '(2..|5..)?'
  action: keep
- source_labels: [__name__, handler]
  regex: 'http_requests_total;/(api|admin)/(.*)'
  target_label: area
  replacement: '${1}_$2'
- source_labels: [pod]
  modulus: 4
  target_label: shard
  action: hashmod
- regex: 'tag_(.+)'
  replacement: 'label_${1}'
  action: labelmap
- regex: 'tag_.*'
  action: labeldrop
- source_labels: [version]
  regex: 'v(\d+)\..*'
  target_label: major
- source_labels: [env]
  target_label: env_upper
  action: uppercase
- source_labels: [Mode]
  target_label: mode
  action: lowercase
- source_labels: [src_zone]
  target_label: dst_zone
  action: keepequal
- source_labels: [__name__]
  target_label: dup_name
  action: dropequal
- source_labels: [__name__]
  regex: 'legacy_(.*)'
  target_label: __name__
  replacement: 'modern_${1}'
- regex: '__name__|job|instance|app|handler|area|shard|label_.*|env|env_upper|mode|status|le|major|version|src_zone|dst_zone|dup_name|pod|queue'
  action: labelkeep
"#;

const COMPARED: &str = r#"{__name__=~"http_requests_total|go_goroutines|process_cpu_seconds_total|legacy_queue_depth|modern_queue_depth|build_info|link_up|self_named|req_seconds.*"}"#;

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

#[test]
fn prometheus_and_vitals_relabel_the_same_scrape_alike() {
    let port = common::serve(|_| ("text/plain; version=0.0.4", APP.to_owned()));
    let direct = Receiver::start_prometheus(&format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
         scrape_configs:\n\
         \x20 - job_name: shop\n\
         \x20   static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n\
         \x20   metric_relabel_configs:\n{}",
        indent(RULES, 6)
    ));
    let pushed = Receiver::start(Kind::Prometheus);
    let d = Daemon::run(&format!(
        "interval: 1s\ndefault_checks: false\n\
         sources:\n  host: {{enabled: false}}\n  cgroup: {{enabled: false}}\n\
         \x20 app_metrics:\n\
         \x20   - name: shop\n\
         \x20     url: \"http://127.0.0.1:{port}/metrics\"\n\
         \x20     export: true\n\
         \x20     metric_relabel_configs:\n{}\
         remote_write:\n\
         \x20 - url: \"{}\"\n\
         \x20   write_relabel_configs:\n\
         \x20     - {{source_labels: [__name__], regex: 'vitals_.*|process_.*', action: drop}}\n",
        indent(RULES, 8),
        pushed.write_url()
    ));
    for (what, db) in [("direct", &direct), ("pushed", &pushed)] {
        poll(what, Duration::from_secs(60), || {
            !db.query("modern_queue_depth", unix_now()).is_empty()
        });
    }
    std::thread::sleep(Duration::from_secs(2));
    let now = unix_now();
    let reference = direct.series_at(COMPARED, now);
    // Not vacuous: what Prometheus made of the rules, series by series.
    let expected = [
        r#"{"__name__": "build_info", "env": "dév", "env_upper": "DÉV", "mode": "slow", "shard": "2", "version": "v١.2"}"#,
        r#"{"__name__": "build_info", "env": "prod", "env_upper": "PROD", "major": "12", "mode": "fast", "shard": "2", "version": "v12.3.0"}"#,
        r#"{"__name__": "link_up", "dst_zone": "a", "shard": "2", "src_zone": "a"}"#,
        r#"{"__name__": "modern_queue_depth", "label_team": "ops", "label_tier": "gold", "queue": "mail", "shard": "2"}"#,
        r#"{"__name__": "self_named", "dup_name": "other", "shard": "2"}"#,
    ];
    for e in expected {
        assert!(reference.contains_key(e), "{e} not in {reference:#?}");
    }
    let http: Vec<&String> = reference
        .keys()
        .filter(|k| k.contains("http_requests_total"))
        .collect();
    assert_eq!(http.len(), 3, "the 404 is kept out: {http:#?}");
    assert!(http.iter().any(|k| k.contains(r#""area": "admin_users""#)));
    assert!(!reference
        .keys()
        .any(|k| k.contains("junk") || k.contains("go_goroutines")));
    assert_eq!(reference.len(), 3 + 5 + 4, "{reference:#?}");
    assert_eq!(
        pushed.series_at(COMPARED, now),
        reference,
        "vitals' push differs from Prometheus' own scrape"
    );
    // write_relabel_configs kept vitals' own families out of the push.
    assert!(pushed.query(r#"{__name__=~"vitals_.*"}"#, now).is_empty());
    let metrics = d.get("/metrics").text();
    assert!(sample(&metrics, "vitals_app_up", &[("app", "shop")]) == Some(1.0));
    // Dropped by rules: go_goroutines, process_cpu, the 404, link_up a→b,
    // self_named's own name: 5.
    assert_eq!(
        sample(
            &metrics,
            "vitals_relabel_dropped_series",
            &[("source", "app/shop")]
        ),
        Some(5.0),
        "{metrics}"
    );
}

/// 3 series of 3 labels at most (`__name__` and `app` included):
/// `a_metric_name{lbl="value1"}` is the longest name (13) and value (6).
const SMALL: &str = "# TYPE a_metric_name gauge\na_metric_name{lbl=\"value1\"} 1\nb 2\nc 3\n";

#[test]
fn each_limit_refuses_a_real_scrape_and_status_shows_the_rules() {
    let port = common::serve(|_| ("text/plain; version=0.0.4", SMALL.to_owned()));
    let url = format!("http://127.0.0.1:{port}/metrics");
    // (app name, its settings)
    let apps = [
        ("at_bounds", "sample_limit: 3, label_limit: 3, label_name_length_limit: 8, label_value_length_limit: 13"),
        ("samples", "sample_limit: 2"),
        ("labels", "label_limit: 2"),
        ("name_length", "label_name_length_limit: 7"),
        ("value_length", "label_value_length_limit: 12"),
        // Two series dropped by a rule: 1 left, within sample_limit 1.
        ("relabeled", "sample_limit: 1, metric_relabel_configs: [{source_labels: [__name__], regex: 'b|c', action: drop}]"),
    ];
    let list: String = apps
        .iter()
        .map(|(name, settings)| {
            format!("    - {{name: {name}, url: \"{url}\", export: true, {settings}}}\n")
        })
        .collect();
    let d = Daemon::run(&format!(
        "interval: 1s\ndefault_checks: false\n\
         metric_relabel_configs:\n\
         \x20 - {{source_labels: [__name__], regex: vitals_app_scrape_bytes, action: drop}}\n\
         sources:\n  host: {{enabled: false}}\n  cgroup: {{enabled: false}}\n  app_metrics:\n{list}"
    ));
    d.wait_until("the limit counters", |d| {
        let m = d.get("/metrics").text();
        sample(
            &m,
            "vitals_app_limit_exceeded_total",
            &[
                ("app", "value_length"),
                ("limit", "label_value_length_limit"),
            ],
        )
        .is_some_and(|v| v >= 1.0)
    });
    let metrics = d.get("/metrics").text();
    let status = d.get("/status").text();
    let up = |app| sample(&metrics, "vitals_app_up", &[("app", app)]);
    assert_eq!(up("at_bounds"), Some(1.0), "{metrics}");
    assert_eq!(up("relabeled"), Some(1.0), "{metrics}");
    for (app, limit) in [
        ("samples", "sample_limit"),
        ("labels", "label_limit"),
        ("name_length", "label_name_length_limit"),
        ("value_length", "label_value_length_limit"),
    ] {
        assert_eq!(up(app), Some(0.0), "{app}: {metrics}");
        let refused = sample(
            &metrics,
            "vitals_app_limit_exceeded_total",
            &[("app", app), ("limit", limit)],
        );
        assert!(refused.is_some_and(|n| n >= 1.0), "{app}: {refused:?}");
        let error = common::last_error(&status, &format!("app/{app}")).unwrap_or_default();
        assert!(error.contains(limit), "{app}: {error}");
        // Nothing of a refused scrape is shown.
        assert!(
            sample(&metrics, "a_metric_name", &[("app", app)]).is_none(),
            "{app}"
        );
    }
    assert_eq!(
        sample(
            &metrics,
            "vitals_app_limit_exceeded_total",
            &[("app", "at_bounds"), ("limit", "label_limit")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&metrics, "a_metric_name", &[("app", "relabeled")]),
        Some(1.0)
    );
    assert_eq!(sample(&metrics, "b", &[("app", "relabeled")]), None);
    // The top-level rules removed one of vitals' own families everywhere.
    assert!(!metrics.contains("vitals_app_scrape_bytes"), "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "vitals_relabel_dropped_series",
            &[("source", "app/relabeled")]
        ),
        Some(3.0),
        "b and c, and vitals_app_scrape_bytes"
    );
    // /status: each stage's rules and what each rule dropped.
    let json: serde_json::Value = serde_json::from_str(&status).unwrap();
    let source = json["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "app/relabeled")
        .unwrap();
    let stages = source["details"]["relabel"].as_array().unwrap();
    assert_eq!(stages.len(), 2, "{source}");
    assert_eq!(
        stages[0]["rules"][0],
        "{action: drop, source_labels: [__name__], regex: \"b|c\"}"
    );
    assert_eq!(stages[0]["dropped_by_rule"][0], 2);
    assert_eq!(stages[1]["rules_key"], "metric_relabel_configs");
    assert_eq!(stages[1]["dropped_by_rule"][0], 1);
    // vitals' own families, the new ones included, are in the catalog.
    let own: String = metrics
        .lines()
        .filter(|l| {
            l.trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ")
                .starts_with("vitals_")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let seen = common::catalog::assert_families_in_catalog(&own);
    assert!(seen.contains("vitals_app_limit_exceeded_total"));
    common::catalog::assert_covered("vitals_relabel_", &seen);
}
