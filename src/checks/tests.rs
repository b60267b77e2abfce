//! Engine tests: effective set, instances, unknown, output families, status.

use super::*;
use crate::config::{parse_str, Config};
use crate::metrics::{render, Format};

fn config(yaml: &str) -> Config {
    parse_str(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

const LAG: &str = "default_checks: false
checks:
  - name: replica_lag
    metric: 'vitals_pg_replication_lag_seconds{target=~\"replica.*\"}'
    warning: 1
    critical: 5
    readiness: true
    description: Replay lag of the standby.
";

fn lag_output(values: &[(&str, f64)]) -> Output {
    let mut out = Output::new();
    for (target, v) in values {
        out.gauge(
            "vitals_pg_replication_lag_seconds",
            "Lag.",
            &[("target", target)],
            *v,
        );
    }
    out
}

fn round<'a>(source: &'a str, output: &'a Output) -> SourceRound<'a> {
    SourceRound {
        source,
        output,
        failed: false,
    }
}

fn t0() -> Now {
    Now {
        instant: Instant::now(),
        unix: 1_700_000_000.0,
    }
}

fn status(out: &Output, check: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut l = vec![("check", check)];
    l.extend_from_slice(labels);
    out.value("vitals_check_status", &l)
}

#[test]
fn effective_set_defaults_replacement_and_opt_out() {
    let names = |c: &Config| -> Vec<(String, Origin)> {
        effective_checks(c)
            .into_iter()
            .map(|c| (c.config.name, c.origin))
            .collect()
    };
    let all = names(&config(""));
    assert_eq!(all.len(), defaults::default_checks().len());
    assert!(all.iter().all(|(_, o)| *o == Origin::Default));

    let replaced = config(
        "checks:
  - {name: replica_lag, metric: 'vitals_pg_replication_lag_seconds{target=\"r\"}', critical: 10}
  - {name: mine, metric: vitals_host_load1, warning: 4}
",
    );
    let list = effective_checks(&replaced);
    assert_eq!(list.len(), defaults::default_checks().len() + 1);
    let lag = list
        .iter()
        .find(|c| c.config.name == "replica_lag")
        .unwrap();
    assert_eq!(lag.origin, Origin::Configured);
    assert_eq!(
        (lag.config.warning, lag.config.critical),
        (None, Some(10.0))
    );
    // Replacement keeps the default's place; new checks come last.
    let pos = |n: &str| list.iter().position(|c| c.config.name == n).unwrap();
    let default_pos = defaults::default_checks()
        .iter()
        .position(|c| c.name == "replica_lag")
        .unwrap();
    assert_eq!(pos("replica_lag"), default_pos);
    assert_eq!(pos("mine"), list.len() - 1);

    let only = names(&config(
        "default_checks: false\nchecks:\n  - {name: mine, metric: vitals_host_load1, warning: 4}\n",
    ));
    assert_eq!(only, vec![("mine".to_owned(), Origin::Configured)]);
}

#[test]
fn each_matching_series_is_an_instance_with_its_labels() {
    let mut engine = CheckEngine::new(&config(LAG));
    let a = lag_output(&[("replica", 0.2), ("replica2", 6.2), ("primary", 99.0)]);
    let (out, transitions) = engine.evaluate([round("postgres/a", &a)], t0());
    assert_eq!(
        status(&out, "replica_lag", &[("target", "replica")]),
        Some(0.0)
    );
    assert_eq!(
        status(&out, "replica_lag", &[("target", "replica2")]),
        Some(2.0)
    );
    // `primary` does not match the anchored regex.
    assert_eq!(status(&out, "replica_lag", &[("target", "primary")]), None);
    assert_eq!(
        out.value(
            "vitals_check_value",
            &[("check", "replica_lag"), ("target", "replica2")]
        ),
        Some(6.2)
    );
    assert_eq!(
        out.value(
            "vitals_check_threshold",
            &[("target", "replica"), ("severity", "critical")]
        ),
        Some(5.0)
    );
    assert_eq!(
        out.value(
            "vitals_check_transitions_total",
            &[("target", "replica2"), ("to", "critical")]
        ),
        Some(1.0)
    );
    // The quiet first ok is not counted.
    assert_eq!(
        out.value(
            "vitals_check_transitions_total",
            &[("target", "replica"), ("to", "ok")]
        ),
        Some(0.0)
    );
    assert_eq!(transitions.len(), 1);
    assert_eq!(
        transitions[0].to_string(),
        "check=replica_lag instance={target=\"replica2\"} unknown -> critical value=6.2"
    );
}

#[test]
fn exposition_of_one_instance() {
    let mut engine = CheckEngine::new(&config(LAG));
    let a = lag_output(&[("replica", 1.5)]);
    let (out, _) = engine.evaluate([round("postgres/a", &a)], t0());
    let text = render([&out], Format::Text);
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        samples,
        vec![
            r#"vitals_check_status{check="replica_lag",target="replica"} 1"#,
            r#"vitals_check_threshold{check="replica_lag",target="replica",severity="warning"} 1"#,
            r#"vitals_check_threshold{check="replica_lag",target="replica",severity="critical"} 5"#,
            r#"vitals_check_transitions_total{check="replica_lag",target="replica",to="ok"} 0"#,
            r#"vitals_check_transitions_total{check="replica_lag",target="replica",to="warning"} 1"#,
            r#"vitals_check_transitions_total{check="replica_lag",target="replica",to="critical"} 0"#,
            r#"vitals_check_transitions_total{check="replica_lag",target="replica",to="unknown"} 0"#,
            r#"vitals_check_value{check="replica_lag",target="replica"} 1.5"#,
        ]
    );
    assert!(text.contains("# TYPE vitals_check_transitions_total counter\n"));
}

#[test]
fn a_sequence_through_every_state() {
    let mut engine = CheckEngine::new(&config(LAG));
    let now = t0();
    let mut log = Vec::new();
    let empty = Output::new();
    for (i, value) in [Some(0.0), Some(1.3), Some(6.2), None, Some(0.1)]
        .iter()
        .enumerate()
    {
        let out = value.map_or_else(Output::new, |v| lag_output(&[("replica", v)]));
        // No value: the source failed its round.
        let r = SourceRound {
            source: "postgres/a",
            output: if value.is_some() { &out } else { &empty },
            failed: value.is_none(),
        };
        let (_, t) = engine.evaluate([r], now.after(i as f64 * 5.0));
        log.extend(t.iter().map(ToString::to_string));
    }
    assert_eq!(
        log,
        vec![
            r#"check=replica_lag instance={target="replica"} ok -> warning value=1.3"#,
            r#"check=replica_lag instance={target="replica"} warning -> critical value=6.2"#,
            r#"check=replica_lag instance={target="replica"} critical -> unknown reason="source postgres/a failed""#,
            r#"check=replica_lag instance={target="replica"} unknown -> ok value=0.1"#,
        ]
    );
}

/// Issue 28: most warning lines were `to=unknown reason="series gone"` for
/// figures left out of quiet rounds by design. A vanished series keeps its
/// instance's state quietly for SERIES_GRACE, then the instance is removed
/// with one info line for the check.
#[test]
fn vanished_series_keep_their_state_for_a_grace_then_are_removed_quietly() {
    let mut engine = CheckEngine::new(&config(LAG));
    let now = t0();
    let all = lag_output(&[("replica", 0.0), ("replica2", 2.0), ("replica3", 0.0)]);
    engine.evaluate([round("postgres/a", &all)], now);
    let one = lag_output(&[("replica", 0.0)]);
    let grace = crate::checks::SERIES_GRACE.as_secs_f64();
    let (out, transitions) = engine.evaluate([round("postgres/a", &one)], now.after(5.0));
    assert!(transitions.is_empty(), "{transitions:?}");
    assert_eq!(
        status(&out, "replica_lag", &[("target", "replica2")]),
        Some(1.0)
    );
    // Back within the grace: nothing happened.
    let (_, transitions) = engine.evaluate([round("postgres/a", &all)], now.after(10.0));
    assert!(transitions.is_empty(), "{transitions:?}");
    // Gone again; just before the grace ends, still there.
    engine.evaluate([round("postgres/a", &one)], now.after(15.0));
    let (out, transitions) =
        engine.evaluate([round("postgres/a", &one)], now.after(15.0 + grace - 1.0));
    assert!(transitions.is_empty());
    assert_eq!(
        status(&out, "replica_lag", &[("target", "replica3")]),
        Some(0.0)
    );
    let (out, transitions) = engine.evaluate([round("postgres/a", &one)], now.after(15.0 + grace));
    assert_eq!(status(&out, "replica_lag", &[("target", "replica2")]), None);
    assert_eq!(status(&out, "replica_lag", &[("target", "replica3")]), None);
    assert_eq!(transitions.len(), 2);
    assert!(transitions.iter().all(|t| t.removed));
    assert_eq!(
        transitions[0].to_string(),
        r#"check=replica_lag instance={target="replica2"} warning -> removed reason="series gone for 2m30s""#
    );
    assert_eq!(
        crate::checks::log_lines(transitions),
        vec![crate::checks::LogLine::Removed {
            check: "replica_lag".into(),
            instances: 2
        }]
    );
    assert_eq!(engine.snapshot().len(), 1);
}

/// A stopped database: one warning line for the source however many
/// instances it had, one info line when it is back.
#[test]
fn a_failed_source_is_one_log_line_not_one_per_instance() {
    let mut engine = CheckEngine::new(&config(LAG));
    let now = t0();
    let names: Vec<String> = (0..44).map(|i| format!("replica{i}")).collect();
    let values: Vec<(&str, f64)> = names.iter().map(|n| (n.as_str(), 0.0)).collect();
    let a = lag_output(&values);
    engine.evaluate([round("postgres/a", &a)], now);
    let empty = Output::new();
    let down = SourceRound {
        source: "postgres/a",
        output: &empty,
        failed: true,
    };
    let (_, transitions) = engine.evaluate([down], now.after(5.0));
    assert_eq!(transitions.len(), 44);
    assert_eq!(
        crate::checks::log_lines(transitions),
        vec![crate::checks::LogLine::SourceFailed {
            source: "postgres/a".into(),
            instances: 44,
            checks: vec!["replica_lag".into()],
            readiness: true,
        }]
    );
    let (_, transitions) = engine.evaluate([round("postgres/a", &a)], now.after(10.0));
    assert_eq!(
        crate::checks::log_lines(transitions),
        vec![crate::checks::LogLine::Back {
            source: "postgres/a".into(),
            instances: 44
        }]
    );
}

#[test]
fn a_failed_source_makes_its_instances_unknown() {
    let mut engine = CheckEngine::new(&config(LAG));
    let now = t0();
    let a = lag_output(&[("replica", 6.0)]);
    let b = lag_output(&[("replica2", 0.0)]);
    engine.evaluate([round("postgres/a", &a), round("postgres/b", &b)], now);
    // a fails and writes nothing; b fails after writing its series.
    let empty = Output::new();
    let rounds = [
        SourceRound {
            source: "postgres/a",
            output: &empty,
            failed: true,
        },
        SourceRound {
            source: "postgres/b",
            output: &b,
            failed: true,
        },
    ];
    let (out, transitions) = engine.evaluate(rounds, now.after(5.0));
    assert_eq!(
        status(&out, "replica_lag", &[("target", "replica")]),
        Some(3.0)
    );
    assert_eq!(
        status(&out, "replica_lag", &[("target", "replica2")]),
        Some(3.0)
    );
    let mut reasons: Vec<Option<&str>> = transitions.iter().map(|t| t.reason.as_deref()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            Some("source postgres/a failed"),
            Some("source postgres/b failed")
        ]
    );
    let snap = engine.snapshot();
    assert_eq!(snap[0].reason.as_deref(), Some("source postgres/a failed"));
    // Not critical any more, so no longer failing readiness.
    assert!(engine.failing_readiness().is_empty());
}

#[test]
fn a_new_series_appearing_gets_its_own_instance() {
    let mut engine = CheckEngine::new(&config(LAG));
    let now = t0();
    let one = lag_output(&[("replica", 2.0)]);
    engine.evaluate([round("postgres/a", &one)], now);
    let two = lag_output(&[("replica", 2.0), ("replica9", 0.5)]);
    let (out, transitions) = engine.evaluate([round("postgres/a", &two)], now.after(5.0));
    assert_eq!(
        status(&out, "replica_lag", &[("target", "replica9")]),
        Some(0.0)
    );
    assert_eq!(
        status(&out, "replica_lag", &[("target", "replica")]),
        Some(1.0)
    );
    assert!(transitions.is_empty(), "{transitions:?}");
    let snap = engine.snapshot();
    let new = snap
        .iter()
        .find(|s| s.labels.get("target").map(String::as_str) == Some("replica9"))
        .unwrap();
    assert_eq!(new.since, 1_700_000_005.0);
    let old = snap
        .iter()
        .find(|s| s.labels.get("target").map(String::as_str) == Some("replica"))
        .unwrap();
    assert_eq!(old.since, 1_700_000_000.0);
}

#[test]
fn reserved_label_names_are_renamed_in_the_exposition_only() {
    let cfg = config("default_checks: false\nchecks:\n  - {name: c, metric: m, warning: 1}\n");
    let mut engine = CheckEngine::new(&cfg);
    let mut src = Output::new();
    src.gauge(
        "m",
        "M.",
        &[
            ("check", "a"),
            ("exported_check", "b"),
            ("severity", "s"),
            ("to", "t"),
            ("zone", "z"),
        ],
        2.0,
    );
    let (out, transitions) = engine.evaluate([round("x", &src)], t0());
    let text = render([&out], Format::Text);
    assert!(text.contains(
        r#"vitals_check_status{check="c",exported_exported_check="a",exported_check="b",exported_severity="s",exported_to="t",zone="z"} 1"#
    ), "{text}");
    assert!(text.contains(
        r#"vitals_check_transitions_total{check="c",exported_exported_check="a",exported_check="b",exported_severity="s",exported_to="t",zone="z",to="warning"} 1"#
    ), "{text}");
    // Logs and /status keep the series' own labels.
    assert_eq!(
        transitions[0].instance(),
        r#"{check="a",exported_check="b",severity="s",to="t",zone="z"}"#
    );
    assert_eq!(
        engine.snapshot()[0].labels.get("check").map(String::as_str),
        Some("a")
    );
}

#[test]
fn configured_check_without_series_shows_unknown_defaults_do_not() {
    let cfg = config(
        "checks:\n  - {name: mine, metric: 'vitals_pg_up{target=\"db\"}', direction: below, critical: 1}\n",
    );
    let mut engine = CheckEngine::new(&cfg);
    let empty = Output::new();
    let now = t0();
    let (out, transitions) = engine.evaluate([round("host", &empty)], now);
    assert_eq!(status(&out, "mine", &[]), Some(3.0));
    assert!(transitions.is_empty());
    // No default check has a series, and none shows.
    let snap = engine.snapshot();
    assert_eq!(snap.len(), 1);
    assert_eq!(
        snap[0].reason.as_deref(),
        Some("no series matches the selector")
    );
    // When the series arrives the placeholder goes; an ok first state is quiet.
    let mut pg = Output::new();
    pg.gauge("vitals_pg_up", "Up.", &[("target", "db")], 1.0);
    let (out, transitions) = engine.evaluate([round("postgres/db", &pg)], now.after(5.0));
    assert_eq!(status(&out, "mine", &[("target", "db")]), Some(0.0));
    assert_eq!(out.family("vitals_check_status").unwrap().samples.len(), 1);
    assert!(transitions.is_empty());
    // Going critical makes it... not a readiness check, so still ready.
    pg = Output::new();
    pg.gauge("vitals_pg_up", "Up.", &[("target", "db")], 0.0);
    let (_, transitions) = engine.evaluate([round("postgres/db", &pg)], now.after(10.0));
    assert_eq!(transitions.len(), 1);
    assert_eq!(transitions[0].to, State::Critical);
    assert!(engine.failing_readiness().is_empty());
}

#[test]
fn readiness_fails_while_critical_and_names_instances() {
    let mut engine = CheckEngine::new(&config(LAG));
    let now = t0();
    let out = lag_output(&[("replica", 6.0), ("replica2", 0.0)]);
    engine.evaluate([round("postgres/a", &out)], now);
    assert_eq!(
        engine.failing_readiness(),
        vec![r#"replica_lag{target="replica"}"#.to_owned()]
    );
    let out = lag_output(&[("replica", 4.0), ("replica2", 0.0)]);
    engine.evaluate([round("postgres/a", &out)], now.after(5.0));
    assert!(engine.failing_readiness().is_empty());
}

#[test]
fn snapshot_serializes_for_status() {
    let mut engine = CheckEngine::new(&config(LAG));
    let out = lag_output(&[("replica", 1.5)]);
    engine.evaluate([round("postgres/a", &out)], t0());
    let json = serde_json::to_value(engine.snapshot()).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "check": "replica_lag",
            "labels": {"target": "replica"},
            "state": "warning",
            "value": 1.5,
            "since": 1_700_000_000.0,
            "direction": "above",
            "warning": 1.0,
            "critical": 5.0,
            "for_seconds": 0.0,
            "readiness": true,
            "reason": null,
            "origin": "configured",
            "description": "Replay lag of the standby.",
            "runbook_url": null,
        }])
    );
}

#[test]
fn reload_keeps_state_of_unchanged_selectors() {
    let mut engine = CheckEngine::new(&config(LAG));
    let now = t0();
    let out = lag_output(&[("replica", 6.0)]);
    engine.evaluate([round("postgres/a", &out)], now);
    // Same selector, higher critical level: state kept, re-evaluated.
    engine.reload(&config(&LAG.replace("critical: 5", "critical: 10")));
    assert_eq!(engine.snapshot()[0].state, State::Critical);
    assert_eq!(engine.snapshot()[0].since, 1_700_000_000.0);
    let (_, transitions) = engine.evaluate([round("postgres/a", &out)], now.after(5.0));
    assert_eq!(
        transitions
            .iter()
            .map(|t| (t.from, t.to))
            .collect::<Vec<_>>(),
        vec![(State::Critical, State::Warning)]
    );
    // A changed selector starts afresh.
    engine.reload(&config(&LAG.replace("replica.*", "other")));
    assert!(engine.snapshot().is_empty());
}

#[test]
fn unknown_metric_is_reported_with_its_position() {
    let cfg = config(
        "checks:\n  - {name: ok, metric: vitals_host_load1, warning: 1}\n  - name: typo\n    metric: 'vitals_pg_replication_lag_second{target=\"r\"}'\n    warning: 1\n",
    );
    let unknown = unknown_metrics(&cfg);
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        unknown[0].to_string(),
        "3:5: check `typo` names metric `vitals_pg_replication_lag_second`, which vitals does not export; it will stay unknown"
    );
}

/// The agent's own families were missing from the hand-kept list the
/// warning used to read, so these checks warned falsely.
#[test]
fn checks_on_the_agents_own_families_do_not_warn() {
    let cfg = config(
        "checks:
  - {name: build, metric: 'vitals_build_info{version=\"0.1.0\"}', warning: 2}
  - {name: reloads, metric: vitals_config_reload_failures_total, warning: 1}
  - {name: reloaded, metric: vitals_config_last_reload_timestamp_seconds, warning: 1}
  - {name: checks, metric: vitals_check_status, warning: 1}
",
    );
    assert_eq!(
        unknown_metrics(&cfg)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        Vec::<String>::new()
    );
}

#[test]
fn hysteresis_and_for_flow_through_the_engine() {
    let cfg = config(
        "default_checks: false
checks:
  - name: mem
    metric: vitals_cgroup_memory_limit_utilization_ratio
    warning: 0.8
    critical: 0.95
    hysteresis: 0.05
    for: 10s
",
    );
    let mut engine = CheckEngine::new(&cfg);
    let now = t0();
    let mut states = Vec::new();
    for (sec, v) in [
        (0.0, 0.97),
        (5.0, 0.97),
        (10.0, 0.97),
        (15.0, 0.92),
        (20.0, 0.89),
        (25.0, 0.5),
        (30.0, 0.5),
    ] {
        let mut out = Output::new();
        out.gauge("vitals_cgroup_memory_limit_utilization_ratio", "M.", &[], v);
        let (res, _) = engine.evaluate([round("cgroup", &out)], now.after(sec));
        states.push(status(&res, "mem", &[]).unwrap());
    }
    // clear_for defaults to `for`: critical is left 10 s after the value
    // went below 0.95 - 0.05, straight to ok as the value is by then.
    assert_eq!(states, vec![0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 0.0]);
}
