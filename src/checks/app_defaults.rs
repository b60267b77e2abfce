//! The built-in checks on an application's own metrics, active (like the
//! other defaults, unless `default_checks: false`) when at least one
//! `sources.app_metrics` is configured; a configured check of the same name
//! replaces one. Levels from the teams vitals is for: response time 1 s /
//! 5 s, error rate 5 % / 10 %, queue size 100 / 500, and memory-leak
//! detection on the container's working set (the limit reached within 4 h
//! warning, 1 h critical).
//!
//! | check | kind | on |
//! |---|---|---|
//! | `app_latency_p95` | quantile 0.95 over 1m, by `app` | `http_request_duration_seconds` |
//! | `app_errors` | ratio over 1m, by `app` | `http_requests_total{code=~"5.."}` / `http_requests_total{code!=""}` |
//! | `app_errors_status` | the same with the label `status` | for apps that name it so |
//! | `app_queue_<name>` | plain, above | the app's `queue` selector, with `app="<name>"` |
//! | `app_memory_leak` | trend over 30m, 10m warm-up, below | `vitals_cgroup_memory_working_set_bytes` vs `vitals_cgroup_memory_limit_bytes` |
//!
//! Each kind yields no instance where its series are absent (an app without
//! a histogram, a container without a memory limit), so an app using
//! `status` never sees an `app_errors` instance and vice versa.

use crate::checks::selector::quote;
use crate::config::{
    Band, CheckConfig, Config, Direction, Duration, QuantileSpec, RatioSpec, Selector, TrendSpec,
};

/// A selector of the built-in set (always valid).
fn sel(text: &str) -> Selector {
    Selector::parse(text).unwrap_or_else(|e| panic!("built-in selector {text}: {e}"))
}

fn base(name: &str, description: &str) -> CheckConfig {
    CheckConfig {
        name: name.to_owned(),
        metric: None,
        rate: None,
        ratio: None,
        quantile: None,
        trend: None,
        direction: Direction::Above,
        warning: None,
        critical: None,
        hysteresis: None,
        for_: None,
        clear_for: None,
        readiness: false,
        description: Some(description.to_owned()),
        runbook_url: None,
        given: Default::default(),
    }
}

fn errors(name: &str, label: &str) -> CheckConfig {
    let mut c = base(
        name,
        &format!("Share of the application's requests answered with a 5xx status over the last minute, from http_requests_total by its `{label}` label."),
    );
    c.ratio = Some(RatioSpec {
        numerator: sel(&format!("http_requests_total{{{label}=~\"5..\"}}")),
        denominator: sel(&format!("http_requests_total{{{label}!=\"\"}}")),
        window: Duration::from_secs(60),
        by: vec!["app".into()],
    });
    c.warning = Some(0.05);
    c.critical = Some(0.1);
    c.hysteresis = Some(Band::Absolute(0.01));
    c.for_ = Some(Duration::from_secs(60));
    c
}

/// The application checks in effect under `config` (none without an app
/// source).
pub fn checks(config: &Config) -> Vec<CheckConfig> {
    let apps = &config.sources.app_metrics;
    if apps.is_empty() {
        return Vec::new();
    }
    let mut list = Vec::new();
    let mut p95 = base(
        "app_latency_p95",
        "95th percentile of the application's request duration over the last minute, interpolated from its http_request_duration_seconds histogram buckets as histogram_quantile does.",
    );
    p95.quantile = Some(QuantileSpec {
        histogram: Selector::metric_only("http_request_duration_seconds"),
        q: 0.95,
        window: Duration::from_secs(60),
        by: vec!["app".into()],
    });
    p95.warning = Some(1.0);
    p95.critical = Some(5.0);
    p95.hysteresis = Some(Band::Percent(10.0));
    p95.for_ = Some(Duration::from_secs(60));
    list.push(p95);
    list.push(errors("app_errors", "code"));
    list.push(errors("app_errors_status", "status"));
    for app in apps {
        let Some(selector) = &app.queue else { continue };
        let mut c = base(
            &format!("app_queue_{}", app.name),
            "Length of the application's own queue, from the gauge named by the app source's `queue` key.",
        );
        let mut text = selector.to_string();
        let app_matcher = format!("app={}", quote(&app.name));
        text = match text.strip_suffix('}') {
            Some(open) => format!("{open},{app_matcher}}}"),
            None => format!("{text}{{{app_matcher}}}"),
        };
        c.metric = Some(sel(&text));
        c.warning = Some(100.0);
        c.critical = Some(500.0);
        c.hysteresis = Some(Band::Percent(10.0));
        c.for_ = Some(Duration::from_secs(60));
        list.push(c);
    }
    let mut leak = base(
        "app_memory_leak",
        "Seconds until the container's memory working set reaches its memory limit at the rate it grew over the last 30 minutes (least-squares fit, so a garbage-collector sawtooth does not count); no value during the first 10 minutes of a series.",
    );
    leak.trend = Some(TrendSpec {
        metric: Selector::metric_only("vitals_cgroup_memory_working_set_bytes"),
        window: Duration::from_secs(1800),
        warmup: Duration::from_secs(600),
        limit: Some(Selector::metric_only("vitals_cgroup_memory_limit_bytes")),
    });
    leak.direction = Direction::Below;
    leak.warning = Some(4.0 * 3600.0);
    leak.critical = Some(3600.0);
    leak.hysteresis = Some(Band::Percent(10.0));
    list.push(leak);
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    #[test]
    fn only_with_an_app_source_and_each_is_valid() {
        let none = parse_str("sources: {}\n", "t.yaml").unwrap();
        assert!(checks(&none).is_empty());
        let config = parse_str(
            "sources:\n  app_metrics:\n    - {name: web, url: 'http://127.0.0.1:1/metrics', queue: 'job_queue_size{queue=\"mail\"}'}\n    - {name: api, url: 'http://127.0.0.1:2/metrics', queue: jobs}\n",
            "t.yaml",
        )
        .unwrap();
        let list = checks(&config);
        let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "app_latency_p95",
                "app_errors",
                "app_errors_status",
                "app_queue_web",
                "app_queue_api",
                "app_memory_leak"
            ]
        );
        for c in &list {
            crate::config::derived::validate(c).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        }
        assert_eq!(
            list[3].selector().to_string(),
            "job_queue_size{queue=\"mail\",app=\"web\"}"
        );
        assert_eq!(list[4].selector().to_string(), "jobs{app=\"api\"}");
        let levels: Vec<(Option<f64>, Option<f64>)> =
            list.iter().map(|c| (c.warning, c.critical)).collect();
        assert_eq!(
            levels,
            [
                (Some(1.0), Some(5.0)),
                (Some(0.05), Some(0.1)),
                (Some(0.05), Some(0.1)),
                (Some(100.0), Some(500.0)),
                (Some(100.0), Some(500.0)),
                (Some(14400.0), Some(3600.0)),
            ]
        );
        // In effect with the others, and removable by name.
        let effective = crate::checks::effective_checks(&config);
        assert!(effective.iter().any(|c| c.config.name == "app_memory_leak"));
        let off = parse_str(
            "default_checks: false\nsources:\n  app_metrics:\n    - {name: web, url: 'http://127.0.0.1:1/metrics'}\n",
            "t.yaml",
        )
        .unwrap();
        assert!(crate::checks::effective_checks(&off).is_empty());
    }
}
