//! Derived kinds on synthetic series, through the whole engine (same YAML,
//! same state machine) and alone.

use super::*;
use crate::checks::{CheckEngine, Now, SourceRound, State};
use crate::config::parse_str;
use crate::metrics::{Family, Output, Sample};
use std::time::Instant;

fn engine(yaml: &str) -> CheckEngine {
    CheckEngine::new(&parse_str(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}")))
}

fn sample(labels: &[(&str, &str)], value: f64, suffix: &'static str) -> Sample {
    Sample {
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        value,
        suffix,
    }
}

/// What the Python test app exposes after `ok` 2xx and `errors` 5xx
/// requests, `latencies` giving the cumulative bucket counts.
fn app_output(ok: f64, errors: f64, buckets: &[(&str, f64)]) -> Output {
    let mut out = Output::new();
    out.check_only.push(Family {
        name: "http_requests_total".into(),
        help: String::new(),
        kind: MetricKind::Counter,
        samples: vec![
            sample(&[("code", "200"), ("app", "web")], ok, ""),
            sample(&[("code", "500"), ("app", "web")], errors, ""),
        ],
    });
    out.check_only.push(Family {
        name: "http_request_duration_seconds".into(),
        help: String::new(),
        kind: MetricKind::Histogram,
        samples: buckets
            .iter()
            .map(|(le, n)| sample(&[("le", le), ("app", "web")], *n, "_bucket"))
            .collect(),
    });
    out
}

const CHECKS: &str = "default_checks: false
checks:
  - name: errors
    ratio: {numerator: 'http_requests_total{code=~\"5..\"}', denominator: http_requests_total, window: 1m, by: [app]}
    warning: 0.05
    critical: 0.1
  - name: p95
    quantile: {histogram: http_request_duration_seconds, q: 0.95, window: 1m, by: [app]}
    warning: 1
    critical: 5
  - name: requests
    rate: {metric: http_requests_total, window: 1m, by: [app]}
    warning: 1000
";

fn t0() -> Now {
    Now {
        instant: Instant::now(),
        unix: 1_700_000_000.0,
    }
}

fn value(engine: &CheckEngine, check: &str) -> (State, Option<f64>, Option<String>) {
    let s = engine
        .snapshot()
        .into_iter()
        .find(|s| s.check == check)
        .unwrap_or_else(|| panic!("no instance of {check}"));
    (s.state, s.value, s.reason)
}

/// Runs `seconds` of traffic at 10 requests/s, `error_share` failing and
/// every latency in the bucket `le`, one round a second.
fn drive(
    engine: &mut CheckEngine,
    now: &mut Now,
    totals: &mut (f64, f64, f64),
    seconds: usize,
    error_share: f64,
    le: f64,
) {
    let bounds = [0.5, 1.0, 2.5, 5.0, 10.0, f64::INFINITY];
    for _ in 0..seconds {
        totals.0 += 10.0 * (1.0 - error_share);
        totals.1 += 10.0 * error_share;
        totals.2 += 10.0;
        let counts: Vec<(String, f64)> = bounds
            .iter()
            .map(|b| {
                let name = if b.is_infinite() {
                    "+Inf".to_owned()
                } else {
                    b.to_string()
                };
                (name, if *b >= le { totals.2 } else { 0.0 })
            })
            .collect();
        let refs: Vec<(&str, f64)> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let out = app_output(totals.0, totals.1, &refs);
        engine.evaluate(
            [SourceRound {
                source: "app/web",
                output: &out,
                failed: false,
            }],
            *now,
        );
        *now = now.after(1.0);
    }
}

#[test]
fn ratio_quantile_and_rate_go_warning_critical_and_back() {
    let mut e = engine(CHECKS);
    let mut now = t0();
    let mut totals = (0.0, 0.0, 0.0);
    // First round: one sample, no rate yet: unknown with the reason.
    drive(&mut e, &mut now, &mut totals, 1, 0.0, 0.5);
    let (state, _, reason) = value(&e, "errors");
    assert_eq!(state, State::Unknown);
    assert_eq!(reason.as_deref(), Some(NOT_ENOUGH));
    // A minute of healthy traffic: 10/s, no errors, every request ≤ 0.5 s.
    drive(&mut e, &mut now, &mut totals, 60, 0.0, 0.5);
    assert_eq!(value(&e, "errors").0, State::Ok);
    assert_eq!(value(&e, "errors").1, Some(0.0));
    let (state, rate, _) = value(&e, "requests");
    assert_eq!(state, State::Ok);
    assert!((rate.unwrap() - 10.0).abs() < 1e-6, "{rate:?}");
    let p95 = value(&e, "p95").1.unwrap();
    assert!((p95 - 0.475).abs() < 1e-9, "{p95}"); // 0.95 of the way to 0.5
                                                  // 8% errors, requests 1-2.5 s: warning on both (after a full window).
    drive(&mut e, &mut now, &mut totals, 61, 0.08, 2.0);
    let (state, ratio, _) = value(&e, "errors");
    assert_eq!(state, State::Warning);
    assert!((ratio.unwrap() - 0.08).abs() < 1e-6, "{ratio:?}");
    let (state, p95, _) = value(&e, "p95");
    assert_eq!(state, State::Warning);
    assert!((p95.unwrap() - (1.0 + 1.5 * 0.95)).abs() < 1e-9, "{p95:?}");
    // 20% errors, requests 5-10 s: critical.
    drive(&mut e, &mut now, &mut totals, 61, 0.2, 7.0);
    assert_eq!(value(&e, "errors").0, State::Critical);
    assert_eq!(value(&e, "p95").0, State::Critical);
    // Healthy again: back to ok.
    drive(&mut e, &mut now, &mut totals, 61, 0.0, 0.5);
    assert_eq!(value(&e, "errors").0, State::Ok);
    assert_eq!(value(&e, "p95").0, State::Ok);
    // The instance keeps the `by` label only.
    let labels = &e.snapshot()[0].labels;
    assert_eq!(labels.len(), 1);
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
}

#[test]
fn no_traffic_is_unknown_with_the_reason() {
    let mut e = engine(CHECKS);
    let mut now = t0();
    let mut totals = (5.0, 0.0, 5.0);
    drive(&mut e, &mut now, &mut totals, 30, 0.0, 0.5);
    // Counters that stop: rate 0 → ratio undefined.
    for _ in 0..70 {
        let out = app_output(totals.0, totals.1, &[("+Inf", totals.2), ("0.5", totals.2)]);
        e.evaluate(
            [SourceRound {
                source: "app/web",
                output: &out,
                failed: false,
            }],
            now,
        );
        now = now.after(1.0);
    }
    let (state, _, reason) = value(&e, "errors");
    assert_eq!(state, State::Unknown);
    assert_eq!(
        reason.as_deref(),
        Some("no traffic: the denominator's rate is 0")
    );
    assert_eq!(
        value(&e, "p95").2.as_deref(),
        Some("no observations in the window")
    );
}

#[test]
fn summary_quantile_series_are_used_as_they_are() {
    let mut e = engine(
        "default_checks: false\nchecks:\n  - name: p99\n    quantile: {histogram: rpc_seconds, q: 0.99}\n    warning: 0.3\n",
    );
    let mut out = Output::new();
    out.families.push(Family {
        name: "rpc_seconds".into(),
        help: String::new(),
        kind: MetricKind::Summary,
        samples: vec![
            sample(&[("quantile", "0.5")], 0.1, ""),
            sample(&[("quantile", "0.99")], 0.4, ""),
            sample(&[], 100.0, "_count"),
        ],
    });
    e.evaluate(
        [SourceRound {
            source: "app/rpc",
            output: &out,
            failed: false,
        }],
        t0(),
    );
    assert_eq!(value(&e, "p99").1, Some(0.4));
    assert_eq!(value(&e, "p99").0, State::Warning);
}

/// A memory series over `minutes`, one point every 5 s.
fn run_trend(e: &mut CheckEngine, minutes: usize, memory: impl Fn(f64) -> f64) -> Now {
    let mut now = t0();
    for i in 0..minutes * 12 {
        let t = i as f64 * 5.0;
        let mut out = Output::new();
        out.gauge(
            "vitals_cgroup_memory_working_set_bytes",
            "W.",
            &[],
            memory(t),
        );
        out.gauge("vitals_cgroup_memory_limit_bytes", "L.", &[], 1e9);
        e.evaluate(
            [SourceRound {
                source: "cgroup",
                output: &out,
                failed: false,
            }],
            now,
        );
        now = now.after(5.0);
    }
    now
}

const LEAK: &str = "default_checks: false
checks:
  - name: memory_leak
    trend: {metric: vitals_cgroup_memory_working_set_bytes, limit: vitals_cgroup_memory_limit_bytes, window: 30m, warmup: 10m}
    direction: below
    warning: 14400
    critical: 3600
";

#[test]
fn a_steady_leak_fires_a_sawtooth_does_not_neither_during_warmup() {
    // 400 MB growing 100 kB/s: reaches 1 GB in 6000 s = 1.7 h → warning.
    let leak = |t: f64| 4e8 + 1e5 * t;
    let mut e = engine(LEAK);
    run_trend(&mut e, 9, leak);
    let (state, _, reason) = value(&e, "memory_leak");
    assert_eq!(state, State::Unknown, "no state during warm-up");
    assert!(reason
        .unwrap()
        .starts_with("warming up: seen for 535s of the 600s"));
    let mut e = engine(LEAK);
    run_trend(&mut e, 40, leak);
    let (state, until, _) = value(&e, "memory_leak");
    assert_eq!(state, State::Warning, "{until:?}");
    // At t = 2395 s the line is at 4e8 + 2.395e8: (1e9 - 6.395e8) / 1e5.
    assert!((until.unwrap() - 3605.0).abs() < 1.0, "{until:?}");
    // Faster, 300 kB/s from 200 MB: under an hour left → critical.
    let mut e = engine(LEAK);
    run_trend(&mut e, 40, |t| 2e8 + 3e5 * t.min(2500.0));
    assert_eq!(value(&e, "memory_leak").0, State::Critical);

    // A large garbage-collector sawtooth: 300 MB → 900 MB over 2 min, then
    // collected, for 40 minutes: ok (it never trends up), nor in warm-up.
    let saw = |t: f64| 3e8 + 6e8 * ((t % 120.0) / 120.0);
    let mut e = engine(LEAK);
    run_trend(&mut e, 40, saw);
    let (state, until, _) = value(&e, "memory_leak");
    assert_eq!(state, State::Ok, "{until:?}");
    let mut e = engine(LEAK);
    run_trend(&mut e, 5, saw);
    assert_eq!(value(&e, "memory_leak").0, State::Unknown);
}

#[test]
fn trend_without_a_limit_is_the_slope_per_hour() {
    let mut e = engine(
        "default_checks: false\nchecks:\n  - name: growth\n    trend: {metric: vitals_cgroup_memory_working_set_bytes, window: 10m, warmup: 0s}\n    warning: 1e8\n",
    );
    run_trend(&mut e, 12, |t| 1e8 + 5e4 * t);
    let (state, slope, _) = value(&e, "growth");
    assert!((slope.unwrap() - 1.8e8).abs() < 1.0, "{slope:?}");
    assert_eq!(state, State::Warning);
}

#[test]
fn history_is_bounded_and_dropped_with_the_series() {
    let mut d = Derived::new(
        Kind::of(&parse_str(CHECKS, "t.yaml").unwrap().checks[0].value)
            .unwrap()
            .unwrap(),
    );
    let mut out = app_output(1.0, 1.0, &[]);
    fn rounds(o: &Output) -> Vec<SourceRound<'_>> {
        vec![SourceRound {
            source: "app/web",
            output: o,
            failed: false,
        }]
    }
    for i in 0..10_000 {
        out.check_only[0].samples[0].value = i as f64;
        d.evaluate(&rounds(&out), &BTreeSet::new(), i as f64 * 0.1);
    }
    // Two series (numerator 500 and denominator 200 + 500 = three keys).
    assert!(
        d.points() <= 3 * crate::checks::history::MAX_POINTS,
        "{}",
        d.points()
    );
    let empty = Output::new();
    d.evaluate(&rounds(&empty), &BTreeSet::new(), 2000.0);
    assert_eq!(d.points(), 0);
}

#[test]
fn promql_of_each_kind() {
    let c = parse_str(
        &format!(
            "{CHECKS}  - name: leak\n    trend: {{metric: w, limit: l, window: 30m}}\n    direction: below\n    warning: 14400\n  - name: slope\n    trend: {{metric: 'w{{a=\"b\"}}', window: 1h}}\n    warning: 1\n  - name: r\n    rate: {{metric: x_total}}\n    warning: 1\n"
        ),
        "t.yaml",
    )
    .unwrap();
    let got: Vec<String> = c.checks.iter().map(|c| promql(&c.value).unwrap()).collect();
    assert_eq!(
        got,
        [
            "sum by (app) (rate(http_requests_total{code=~\"5..\"}[1m])) / sum by (app) (rate(http_requests_total[1m]))",
            "histogram_quantile(0.95, sum by (le, app) (rate(http_request_duration_seconds_bucket[1m])))",
            "sum by (app) (rate(http_requests_total[1m]))",
            "(l - predict_linear(w[30m], 0)) / (deriv(w[30m]) > 0)",
            "deriv(w{a=\"b\"}[1h]) * 3600",
            "rate(x_total[1m])",
        ]
    );
}

#[test]
fn exactly_one_kind_and_valid_parameters() {
    // A selector is parsed with the file (the error names its key and
    // line); the rest is checked per check (the error points at the check).
    for (check, want, line) in [
        (
            "metric: a\n    rate: {metric: b}",
            "needs exactly one of metric, rate, ratio, quantile, trend",
            3,
        ),
        ("direction: above", "needs exactly one of", 3),
        (
            "quantile: {histogram: h, q: 1.5}",
            "quantile.q 1.5 must be between 0 and 1",
            3,
        ),
        (
            "rate: {metric: 'a{', window: 1m}",
            "`checks[0].rate.metric`: invalid selector",
            4,
        ),
        (
            "ratio: {numerator: a, denominator: b, window: 0s}",
            "ratio.window must be above 0",
            3,
        ),
    ] {
        let yaml =
            format!("default_checks: false\nchecks:\n  - name: c\n    {check}\n    warning: 1\n");
        let e = parse_str(&yaml, "t.yaml").unwrap_err();
        assert!(e.message.contains(want), "{check}: {}", e.message);
        assert_eq!(e.line, line, "{check}");
    }
}

/// The agent and Prometheus on the same input series: every derived kind's
/// value at one instant, from the engine and from `promtool test rules`
/// evaluating the PromQL `vitals rules` emits for it (rounded to six
/// significant digits: Prometheus sums with Kahan compensation). The
/// evaluation time falls between samples, so that Prometheus 2.x's
/// closed range `[t - w, t]` and the agent's `(t - w, t]` hold the same
/// samples.
#[test]
fn promtool_agrees_with_the_agent_on_the_same_series() {
    const STEP: f64 = 15.0;
    const STEPS: usize = 161; // 0 .. 40 m
    const EVAL: f64 = 40.0 * 60.0 + 10.0;
    // (PromQL series, family, kind, suffix, labels, value at step i)
    type Gen = fn(usize) -> f64;
    type Input = (
        &'static str,
        MetricKind,
        &'static str,
        Vec<(&'static str, &'static str)>,
        Gen,
    );
    let series: Vec<Input> = vec![
        // 6/s, reset to 5 at step 100 (a restart), 6/s again.
        (
            "http_requests_total",
            MetricKind::Counter,
            "",
            vec![("code", "200"), ("app", "web")],
            |i| {
                if i < 100 {
                    90.0 * i as f64
                } else {
                    5.0 + 90.0 * (i - 100) as f64
                }
            },
        ),
        (
            "http_requests_total",
            MetricKind::Counter,
            "",
            vec![("code", "500"), ("app", "web")],
            |i| 10.0 * i as f64 + if i > 140 { 7.0 * (i - 140) as f64 } else { 0.0 },
        ),
        (
            "lat",
            MetricKind::Histogram,
            "_bucket",
            vec![("le", "0.1"), ("app", "web")],
            |i| 3.0 * i as f64,
        ),
        (
            "lat",
            MetricKind::Histogram,
            "_bucket",
            vec![("le", "0.5"), ("app", "web")],
            |i| 8.0 * i as f64,
        ),
        (
            "lat",
            MetricKind::Histogram,
            "_bucket",
            vec![("le", "1"), ("app", "web")],
            |i| 9.0 * i as f64 + if i > 150 { (i - 150) as f64 } else { 0.0 },
        ),
        (
            "lat",
            MetricKind::Histogram,
            "_bucket",
            vec![("le", "+Inf"), ("app", "web")],
            |i| 10.0 * i as f64 + if i > 150 { 2.0 * (i - 150) as f64 } else { 0.0 },
        ),
        // A leak of 50 kB/s under a 120 s sawtooth of up to 30 MB.
        ("mem", MetricKind::Gauge, "", vec![("app", "web")], |i| {
            let t = i as f64 * 15.0;
            1e8 + 5e4 * t + 3e7 * ((t % 120.0) / 120.0)
        }),
        (
            "mem_limit",
            MetricKind::Gauge,
            "",
            vec![("app", "web")],
            |_| 1e9,
        ),
    ];
    let checks = "default_checks: false
checks:
  - {name: rate, rate: {metric: 'http_requests_total{code=\"200\"}', window: 1m}, warning: 1e9}
  - {name: ratio, ratio: {numerator: 'http_requests_total{code=~\"5..\"}', denominator: http_requests_total, window: 5m, by: [app]}, warning: 1}
  - {name: quantile, quantile: {histogram: lat, q: 0.9, window: 2m, by: [app]}, warning: 1e9}
  - {name: slope, trend: {metric: mem, window: 30m, warmup: 0s}, warning: 1e12}
  - {name: until, trend: {metric: mem, limit: mem_limit, window: 30m, warmup: 0s}, direction: below, warning: 1}
";
    let config = parse_str(checks, "t.yaml").unwrap_or_else(|e| panic!("{e}"));
    let mut engine = CheckEngine::new(&config);
    let start = Now {
        instant: Instant::now(),
        unix: 0.0,
    };
    let output_at = |i: usize| {
        let mut out = Output::new();
        for (name, kind, suffix, labels, gen) in &series {
            let s = sample(labels, gen(i), suffix);
            match out.check_only.iter_mut().find(|f| f.name == *name) {
                Some(f) => f.samples.push(s),
                None => out.check_only.push(Family {
                    name: (*name).into(),
                    help: String::new(),
                    kind: *kind,
                    samples: vec![s],
                }),
            }
        }
        out
    };
    let round = |out: &Output, at: f64, engine: &mut CheckEngine| {
        engine.evaluate(
            [SourceRound {
                source: "app/web",
                output: out,
                failed: false,
            }],
            start.after(at),
        );
    };
    for i in 0..STEPS {
        round(&output_at(i), i as f64 * STEP, &mut engine);
    }
    round(&output_at(STEPS - 1), EVAL, &mut engine);

    let mut tests = String::new();
    for check in &config.checks {
        let name = &check.value.name;
        let status = engine
            .snapshot()
            .into_iter()
            .find(|s| &s.check == name)
            .unwrap_or_else(|| panic!("no instance of {name}"));
        let value = status
            .value
            .unwrap_or_else(|| panic!("{name}: no value: {:?}", status.reason));
        assert!(value.is_finite() && value != 0.0, "{name}: {value}");
        let scale = 10f64.powi(5 - value.abs().log10().floor() as i32);
        let labels: Vec<String> = status
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        tests.push_str(&format!(
            "      - expr: 'round(({}) * {scale:e})'\n        eval_time: {EVAL}s\n        exp_samples:\n          - labels: '{{{}}}'\n            value: {:e}\n",
            promql(&check.value).unwrap().replace('\'', "''"),
            labels.join(","),
            (value * scale).round()
        ));
    }
    let mut input = String::new();
    for (name, _, suffix, labels, gen) in &series {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let values: Vec<String> = (0..STEPS).map(|i| gen(i).to_string()).collect();
        input.push_str(&format!(
            "      - series: '{name}{suffix}{{{}}}'\n        values: '{}'\n",
            l.join(","),
            values.join(" ")
        ));
    }
    let file = format!(
        "rule_files: []\nevaluation_interval: 15s\ntests:\n  - interval: 15s\n    input_series:\n{input}    promql_expr_test:\n{tests}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agree.yml");
    std::fs::write(&path, &file).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["test", "rules"])
        .arg(&path)
        .output()
        .expect("promtool (Debian package prometheus)");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("SUCCESS"),
        "{said}\n{tests}"
    );
}

/// A histogram that breaks the format's rules gives no quantile: its group
/// is unknown with the rule in the reason (shown in `/status`), while a
/// valid histogram of another group is computed as usual.
#[test]
fn a_histogram_breaking_the_rules_is_refused_with_the_reason() {
    type Case<'a> = (&'a [(&'a str, f64)], Option<f64>, &'a str);
    let cases: &[Case<'_>] = &[
        (
            &[("0.5", 1.0), ("1", 2.0)],
            None,
            "histogram http_request_duration_seconds{app=\"web\"} breaks the format's rules (no +Inf bucket); no quantile is computed from it",
        ),
        (
            &[("0.5", 5.0), ("1", 2.0), ("+Inf", 6.0)],
            None,
            "(bucket counts decrease: le=0.5 has 15, le=1 has 6)",
        ),
        (
            &[("0.5", 1.0), ("+Inf", 6.0)],
            Some(7.0),
            "(_count 21 is not the +Inf bucket's 18)",
        ),
        (
            &[("0.5", 1.0), ("x", 2.0), ("+Inf", 6.0)],
            None,
            "(bucket le=\"x\" is not a number)",
        ),
    ];
    // Three rounds: the values below times 3 in the reason.
    for (buckets, count, want) in cases {
        let mut e = engine(CHECKS);
        let mut now = t0();
        for round in 0..3 {
            let mut out = app_output(1.0, 0.0, &[]);
            let h = &mut out.check_only[1];
            for (le, v) in *buckets {
                h.samples.push(sample(
                    &[("le", le), ("app", "web")],
                    v * (round as f64 + 1.0),
                    "_bucket",
                ));
            }
            if let Some(c) = count {
                h.samples.push(sample(
                    &[("app", "web")],
                    c * (round as f64 + 1.0),
                    "_count",
                ));
            }
            // A valid histogram of another app, in the same family.
            for (le, v) in [("0.5", 1.0), ("+Inf", 2.0)] {
                h.samples.push(sample(
                    &[("le", le), ("app", "api")],
                    v * (round as f64 + 1.0),
                    "_bucket",
                ));
            }
            h.samples.push(sample(
                &[("app", "api")],
                2.0 * (round as f64 + 1.0),
                "_count",
            ));
            e.evaluate(
                [SourceRound {
                    source: "app/web",
                    output: &out,
                    failed: false,
                }],
                now,
            );
            now = now.after(1.0);
        }
        let of = |app: &str| {
            e.snapshot()
                .into_iter()
                .find(|s| s.check == "p95" && s.labels.get("app").map(String::as_str) == Some(app))
                .unwrap_or_else(|| panic!("no p95 for {app}"))
        };
        let web = of("web");
        assert_eq!(web.state, State::Unknown, "{want}");
        assert_eq!(web.value, None);
        let reason = web.reason.unwrap_or_default();
        assert!(reason.contains(want), "{reason:?} lacks {want:?}");
        let api = of("api");
        assert!(
            api.value.is_some_and(|v| v > 0.0 && v <= 0.5),
            "{:?}",
            api.value
        );
    }
}
