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
//! | `app_errors_status`, `_status_code`, `_http_status`, `_status_class`, `_micrometer`, `_express` | the same on the other shapes of [`ERROR_SHAPES`] | for apps whose library names them so |
//! | `app_errors_<name>` | the same on `http_requests_total{app="<name>"}` by the app's `status_label` | an app source with `status_label` |
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
        runbook_url: Some(format!(
            "{}#{}",
            super::rules::RUNBOOK_URL,
            super::rules::alert_name(name).to_lowercase()
        )),
        given: Default::default(),
    }
}

/// The request counters and status labels of the common client libraries,
/// as `(check, counter, status label)`; each check has instances only for
/// the apps whose series have that shape, so an app meets one of them.
///
/// - Go client_golang (`promhttp.InstrumentHandlerCounter`) and most
///   hand-written counters: `http_requests_total{code="500"}`;
/// - Python prometheus_client apps (prometheus-fastapi-instrumentator,
///   `status="5xx"`; hand-written `status="500"`):
///   `http_requests_total{status=...}`;
/// - `status_code`, `http_status`, `status_class` (`"5xx"`) on
///   `http_requests_total` for the other conventions;
/// - Java Micrometer (Spring Boot): the timer's
///   `http_server_requests_seconds_count{status="500"}`;
/// - Node prom-client with express-prom-bundle: the histogram's
///   `http_request_duration_seconds_count{status_code="500"}`.
pub const ERROR_SHAPES: &[(&str, &str, &str)] = &[
    ("app_errors", "http_requests_total", "code"),
    ("app_errors_status", "http_requests_total", "status"),
    (
        "app_errors_status_code",
        "http_requests_total",
        "status_code",
    ),
    (
        "app_errors_http_status",
        "http_requests_total",
        "http_status",
    ),
    (
        "app_errors_status_class",
        "http_requests_total",
        "status_class",
    ),
    (
        "app_errors_micrometer",
        "http_server_requests_seconds_count",
        "status",
    ),
    (
        "app_errors_express",
        "http_request_duration_seconds_count",
        "status_code",
    ),
];

/// A 5xx ratio on `counter` by its `label`; `extra` adds matchers (an
/// `app` the check is for, or the apps it leaves to their own check).
fn errors(name: &str, counter: &str, label: &str, extra: &str) -> CheckConfig {
    let mut c = base(
        name,
        &format!("Share of the application's requests answered with a 5xx status over the last minute, from {counter} by its `{label}` label."),
    );
    c.ratio = Some(RatioSpec {
        numerator: sel(&format!("{counter}{{{label}=~\"5..\"{extra}}}")),
        denominator: sel(&format!("{counter}{{{label}!=\"\"{extra}}}")),
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
    // Apps that name their status label get their own check; the shapes
    // above leave them out.
    let own: Vec<&str> = apps
        .iter()
        .filter(|a| a.status_label.is_some())
        .map(|a| a.name.as_str())
        .collect();
    let others = if own.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = own.iter().map(|n| regex::escape(n)).collect();
        format!(",app!~{}", quote(&names.join("|")))
    };
    for (name, counter, label) in ERROR_SHAPES {
        list.push(errors(name, counter, label, &others));
    }
    for app in apps {
        if let Some(label) = &app.status_label {
            let mut c = errors(
                &format!("app_errors_{}", app.name),
                "http_requests_total",
                label,
                &format!(",app={}", quote(&app.name)),
            );
            // Named after the app: no section of its own in the runbook.
            c.runbook_url = None;
            list.push(c);
        }
    }
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
        // Named after the app: no section of its own in the runbook.
        c.runbook_url = None;
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
                "app_errors_status_code",
                "app_errors_http_status",
                "app_errors_status_class",
                "app_errors_micrometer",
                "app_errors_express",
                "app_queue_web",
                "app_queue_api",
                "app_memory_leak"
            ]
        );
        let list: Vec<CheckConfig> = list
            .into_iter()
            .filter(|c| c.name == "app_errors_status" || !c.name.starts_with("app_errors_"))
            .collect();
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

#[cfg(test)]
mod library_shapes {
    //! The error checks against series named as the common client
    //! libraries name them, through the engine.

    use crate::checks::{CheckEngine, Now, SourceRound, State};
    use crate::metrics::{Family, Kind, Output, Sample};
    use std::time::Instant;

    fn family(
        name: &str,
        kind: Kind,
        suffix: &'static str,
        rows: &[(&[(&str, &str)], f64)],
    ) -> Family {
        Family {
            name: name.into(),
            help: String::new(),
            kind,
            samples: rows
                .iter()
                .map(|(labels, v)| Sample {
                    labels: labels
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .chain([("app".to_owned(), "svc".to_owned())])
                        .collect(),
                    value: *v,
                    suffix,
                })
                .collect(),
        }
    }

    /// `ok` and `bad` requests so far, as each library writes them.
    fn shaped(library: &str, ok: f64, bad: f64) -> Family {
        use Kind::*;
        match library {
            // client_golang promhttp.InstrumentHandlerCounter.
            "go" => family(
                "http_requests_total",
                Counter,
                "",
                &[
                    (&[("code", "200"), ("method", "get")], ok),
                    (&[("code", "503"), ("method", "get")], bad),
                ],
            ),
            // prometheus_client via prometheus-fastapi-instrumentator
            // (status codes grouped by default).
            "python" => family(
                "http_requests_total",
                Counter,
                "",
                &[
                    (
                        &[("handler", "/items"), ("method", "GET"), ("status", "2xx")],
                        ok,
                    ),
                    (
                        &[("handler", "/items"), ("method", "GET"), ("status", "5xx")],
                        bad,
                    ),
                ],
            ),
            // Micrometer's Spring Boot timer, Prometheus naming.
            "micrometer" => family(
                "http_server_requests_seconds",
                Histogram,
                "_count",
                &[
                    (
                        &[
                            ("method", "GET"),
                            ("outcome", "SUCCESS"),
                            ("status", "200"),
                            ("uri", "/x"),
                        ],
                        ok,
                    ),
                    (
                        &[
                            ("method", "GET"),
                            ("outcome", "SERVER_ERROR"),
                            ("status", "500"),
                            ("uri", "/x"),
                        ],
                        bad,
                    ),
                ],
            ),
            // prom-client via express-prom-bundle: the duration histogram.
            "express" => family(
                "http_request_duration_seconds",
                Histogram,
                "_count",
                &[
                    (
                        &[("method", "GET"), ("path", "/x"), ("status_code", "200")],
                        ok,
                    ),
                    (
                        &[("method", "GET"), ("path", "/x"), ("status_code", "502")],
                        bad,
                    ),
                ],
            ),
            "http_status" => family(
                "http_requests_total",
                Counter,
                "",
                &[
                    (&[("http_status", "200")], ok),
                    (&[("http_status", "500")], bad),
                ],
            ),
            "status_class" => family(
                "http_requests_total",
                Counter,
                "",
                &[
                    (&[("status_class", "2xx")], ok),
                    (&[("status_class", "5xx")], bad),
                ],
            ),
            // An app naming its label `response_code`, configured with
            // status_label.
            "own" => family(
                "http_requests_total",
                Counter,
                "",
                &[
                    (&[("response_code", "200")], ok),
                    (&[("response_code", "500")], bad),
                ],
            ),
            _ => unreachable!(),
        }
    }

    #[test]
    fn each_library_shape_meets_exactly_one_error_check_with_the_right_ratio() {
        for (library, want, status_label) in [
            ("go", "app_errors", ""),
            ("python", "app_errors_status", ""),
            ("micrometer", "app_errors_micrometer", ""),
            ("express", "app_errors_express", ""),
            ("http_status", "app_errors_http_status", ""),
            ("status_class", "app_errors_status_class", ""),
            ("own", "app_errors_svc", ", status_label: response_code"),
        ] {
            let config = crate::checks::resolve::parse_str(
                &format!("sources:\n  app_metrics:\n    - {{name: svc, url: 'http://127.0.0.1:1/metrics'{status_label}}}\n"),
                "t.yaml",
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let mut engine = CheckEngine::new(&config);
            let start = Now {
                instant: Instant::now(),
                unix: 1_700_000_000.0,
            };
            // 20 requests a second, 12% of them failing, for 90 s (the
            // check's `for` is a minute).
            for i in 0..=90 {
                let mut out = Output::new();
                let n = f64::from(i) * 20.0;
                out.check_only.push(shaped(library, n * 0.88, n * 0.12));
                engine.evaluate(
                    [SourceRound {
                        source: "app/svc",
                        output: &out,
                        failed: false,
                    }],
                    start.after(f64::from(i)),
                );
            }
            let errors: Vec<_> = engine
                .snapshot()
                .into_iter()
                .filter(|s| s.check.starts_with("app_errors"))
                .collect();
            assert_eq!(errors.len(), 1, "{library}: {errors:?}");
            assert_eq!(errors[0].check, want, "{library}");
            let v = errors[0]
                .value
                .unwrap_or_else(|| panic!("{library}: no value"));
            assert!((v - 0.12).abs() < 1e-6, "{library}: {v}");
            assert_eq!(errors[0].state, State::Critical, "{library}");
        }
    }
}
