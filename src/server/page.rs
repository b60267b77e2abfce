//! The small HTML page at `/`: links to the endpoints, the checks as a
//! table coloured by state with each value in its unit and a sparkline of
//! its recent values (inline SVG), and the sources with their last error
//! (an application's scrape among them), and the PostgreSQL targets' top
//! statements and largest unused indexes. It reloads itself every 10
//! seconds; no script.

use crate::checks::{InstanceStatus, State};
use crate::runtime::{self, SourceStatus};
use std::fmt::Write as _;

/// One instance's row.
fn instance_row(rows: &mut String, c: &InstanceStatus) {
    let labels: Vec<String> = c
        .labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    let level = |l: Option<f64>| l.map_or_else(|| "–".to_owned(), |l| in_unit(l, c.unit));
    let state = c.state.to_string();
    let _ = writeln!(
        rows,
        "<tr class=\"{state}\"><td>{}</td><td>{}</td><td class=\"state\">{state}</td><td class=\"value\" data-value=\"{}\">{}</td><td>{}</td><td>{} {} / {}</td><td data-since=\"{}\">{}</td></tr>",
        escape(&c.check),
        escape(&labels.join(", ")),
        c.value.map_or_else(String::new, |v| v.to_string()),
        c.value.map_or_else(
            || c.reason.as_deref().map_or_else(|| "–".to_owned(), escape),
            |v| in_unit(v, c.unit)
        ),
        sparkline(&c.recent, c.warning, c.critical),
        c.direction,
        level(c.warning),
        level(c.critical),
        c.since,
        since(c.since),
    );
}

/// The rows of the checks table: a check with several instances gets a
/// heading row counting them by state, and its unknown instances fold
/// into one row (issue 28: ~40 `pg_slow_statement` rows, most unknown).
fn check_rows(checks: &[InstanceStatus]) -> String {
    let mut rows = String::new();
    let mut names: Vec<&str> = Vec::new();
    for c in checks {
        if !names.contains(&c.check.as_str()) {
            names.push(&c.check);
        }
    }
    for name in names {
        let group: Vec<&InstanceStatus> = checks.iter().filter(|c| c.check == name).collect();
        if group.len() > 1 {
            let counts: Vec<String> = State::ALL
                .iter()
                .filter_map(|s| {
                    let n = group.iter().filter(|c| c.state == *s).count();
                    (n > 0).then(|| format!("{n} {s}"))
                })
                .collect();
            let worst = group
                .iter()
                .map(|c| c.state)
                .max_by_key(|s| severity(*s))
                .unwrap_or(State::Unknown);
            let _ = writeln!(
                rows,
                "<tr class=\"group {worst}\"><th colspan=\"7\">{} — {} instances: {}</th></tr>",
                escape(name),
                group.len(),
                counts.join(", ")
            );
        }
        let unknown: Vec<&&InstanceStatus> =
            group.iter().filter(|c| c.state == State::Unknown).collect();
        for c in &group {
            if c.state != State::Unknown || unknown.len() == 1 {
                instance_row(&mut rows, c);
            }
        }
        if unknown.len() > 1 {
            let items: Vec<String> = unknown
                .iter()
                .map(|c| {
                    let labels: Vec<String> = c
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{v}\""))
                        .collect();
                    format!(
                        "<li>{}: {}</li>",
                        escape(&labels.join(", ")),
                        escape(c.reason.as_deref().unwrap_or("no value"))
                    )
                })
                .collect();
            let _ = writeln!(
                rows,
                "<tr class=\"unknown folded\"><td>{}</td><td colspan=\"6\"><details><summary>{} unknown instances</summary><ul>{}</ul></details></td></tr>",
                escape(name),
                unknown.len(),
                items.concat()
            );
        }
    }
    rows
}

pub fn index(checks: &[InstanceStatus], sources: &[SourceStatus]) -> String {
    let rows = check_rows(checks);
    let table = if checks.is_empty() {
        "<p>No check has an instance yet.</p>\n".to_owned()
    } else {
        format!(
            "<table id=\"checks\">\n<tr><th>check</th><th>instance</th><th>state</th><th>value</th><th>recent</th><th>levels (warning / critical)</th><th>since</th></tr>\n{rows}</table>\n"
        )
    };
    let mut source_rows = String::new();
    for s in sources {
        let (class, word) = match s.success {
            None => ("unknown", "pending"),
            Some(true) => ("ok", "ok"),
            Some(false) => ("critical", "failing"),
        };
        let _ = writeln!(
            source_rows,
            "<tr class=\"{class}\"><td>{}</td><td class=\"state\">{word}</td><td>{}</td><td>{}</td><td class=\"error\">{}</td></tr>",
            escape(&s.source),
            s.last_duration_seconds
                .map_or_else(|| "–".to_owned(), |d| in_unit(d, "seconds")),
            s.last_success_timestamp_seconds
                .map_or_else(|| "never".to_owned(), since),
            s.last_error.as_deref().map_or_else(String::new, escape),
        );
    }
    let table = format!(
        "{table}<h2>Sources</h2>\n<table id=\"sources\">\n<tr><th>source</th><th>state</th><th>last round took</th><th>last success</th><th>last error</th></tr>\n{source_rows}</table>\n{}",
        database_details(sources)
    );
    let worst = checks.iter().map(|c| severity(c.state)).max().unwrap_or(0);
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"10\">\n\
<title>vitals {version}</title>\n<style>\n\
body {{ font-family: sans-serif; margin: 2em; }}\n\
table {{ border-collapse: collapse; max-width: 100%; }} td, th {{ border: 1px solid #ccc; padding: .3em .6em; text-align: left; overflow-wrap: anywhere; }}\n\
tr.group th {{ background: #f4f4f4; font-weight: normal; }}\n\
tr.ok td.state {{ background: #c8f0c8; }} tr.warning td.state {{ background: #ffe08a; }}\n\
tr.critical td.state {{ background: #f4a3a3; }} tr.unknown td.state {{ background: #ddd; }}\n\
td.value {{ text-align: right; white-space: nowrap; }} td.error {{ color: #a00; max-width: 40em; }}\n\
td.query {{ font-family: monospace; max-width: 60em; }}\n\
svg.spark polyline {{ fill: none; stroke: #357; stroke-width: 1.5; }} svg.spark line {{ stroke-width: 1; stroke-dasharray: 2 2; }}\n\
</style></head>\n<body>\n<h1>vitals {version}</h1>\n<p id=\"summary\">{summary}</p>\n{table}\
<ul>\n<li><a href=\"/metrics\">/metrics</a> — Prometheus exposition</li>\n\
<li><a href=\"/status\">/status</a> — sources, checks and configuration (JSON)</li>\n\
<li><a href=\"/health/live\">/health/live</a> — liveness</li>\n\
<li><a href=\"/health/ready\">/health/ready</a> — readiness</li>\n</ul>\n</body></html>\n",
        version = runtime::VERSION,
        summary = match worst {
            0 => "All checks ok.",
            1 => "Some checks are unknown.",
            2 => "Some checks are at warning.",
            _ => "Some checks are critical.",
        },
    )
}

/// The PostgreSQL targets' top statements (normalised text, per-second
/// figures over the last interval) and largest unused indexes, from the
/// details they add to `/status`; empty when no source has any.
fn database_details(sources: &[SourceStatus]) -> String {
    let number_at =
        |v: &serde_json::Value, key: &str| v.get(key).and_then(serde_json::Value::as_f64);
    let cell = |v: Option<f64>, unit: &str| v.map_or_else(|| "–".to_owned(), |v| in_unit(v, unit));
    let mut statements = String::new();
    let mut indexes = String::new();
    for s in sources {
        let Some(details) = &s.details else { continue };
        let top = details
            .pointer("/statements/top")
            .and_then(serde_json::Value::as_array);
        for st in top.into_iter().flatten() {
            let text = st.get("query").and_then(serde_json::Value::as_str);
            let _ = writeln!(
                statements,
                "<tr><td>{}</td><td>{}</td><td class=\"query\">{}</td><td class=\"value\">{}</td><td class=\"value\">{}</td><td class=\"value\">{}</td><td class=\"value\">{}</td></tr>",
                escape(&s.source),
                escape(st.get("queryid").and_then(serde_json::Value::as_str).unwrap_or("")),
                text.map_or_else(|| "(text not read yet)".to_owned(), escape),
                cell(number_at(st, "calls_per_second"), "per_second"),
                cell(number_at(st, "mean_seconds"), "seconds"),
                cell(number_at(st, "exec_seconds_per_second"), ""),
                cell(number_at(st, "max_seconds"), "seconds"),
            );
        }
        let databases = details
            .get("unused_indexes")
            .and_then(serde_json::Value::as_array);
        for db in databases.into_iter().flatten() {
            let name = db.get("database").and_then(serde_json::Value::as_str);
            let largest = db.get("largest").and_then(serde_json::Value::as_array);
            for ix in largest.into_iter().flatten() {
                let text = |key: &str| {
                    escape(
                        ix.get(key)
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or(""),
                    )
                };
                let _ = writeln!(
                    indexes,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"value\">{}</td></tr>",
                    escape(&s.source),
                    escape(name.unwrap_or("")),
                    text("name"),
                    text("table"),
                    cell(number_at(ix, "bytes"), "bytes"),
                );
            }
        }
    }
    let mut out = String::new();
    if !statements.is_empty() {
        let _ = write!(
            out,
            "<h2>Top statements</h2>\n<table id=\"statements\">\n<tr><th>source</th><th>queryid</th><th>statement (normalised)</th><th>calls</th><th>mean</th><th>busy (s/s)</th><th>max since reset</th></tr>\n{statements}</table>\n"
        );
    }
    if !indexes.is_empty() {
        let _ = write!(
            out,
            "<h2>Largest unused indexes</h2>\n<table id=\"unused-indexes\">\n<tr><th>source</th><th>database</th><th>index</th><th>table</th><th>size</th></tr>\n{indexes}</table>\n"
        );
    }
    out
}

/// Ordering for the summary line: critical worst.
fn severity(state: State) -> u8 {
    match state {
        State::Ok => 0,
        State::Unknown => 1,
        State::Warning => 2,
        State::Critical => 3,
    }
}

fn since(unix: f64) -> String {
    let ago = (runtime::unix_now() - unix).max(0.0);
    match ago as u64 {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s => format!("{}h ago", s / 3600),
    }
}

/// A value in its unit: `49.96 %`, `486 ms`, `1.7 h`, `512 MiB`, `12.5/s`.
pub fn in_unit(v: f64, unit: &str) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "∞".into()
        } else {
            "−∞".into()
        };
    }
    match unit {
        "ratio" => format!("{} %", number((v * 10000.0).round() / 100.0)),
        "seconds" => duration(v),
        "bytes" => bytes(v),
        "per_second" => format!("{}/s", number(v)),
        "per_hour" => format!("{}/h", number(v)),
        "bytes_per_second" => format!("{}/s", bytes(v)),
        "bytes_per_hour" => format!("{}/h", bytes(v)),
        _ => number(v),
    }
}

fn duration(v: f64) -> String {
    let a = v.abs();
    if a < 1.0 {
        format!("{} ms", number((v * 1000.0 * 10.0).round() / 10.0))
    } else if a < 120.0 {
        format!("{} s", number((v * 100.0).round() / 100.0))
    } else if a < 7200.0 {
        format!("{} min", number((v / 60.0 * 10.0).round() / 10.0))
    } else {
        format!("{} h", number((v / 3600.0 * 10.0).round() / 10.0))
    }
}

fn bytes(v: f64) -> String {
    let mut x = v;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if x.abs() < 1024.0 || unit == "TiB" {
            return format!("{} {unit}", number((x * 10.0).round() / 10.0));
        }
        x /= 1024.0;
    }
    number(v)
}

/// An inline SVG line of `points` (time, value), 120×24, with the levels as
/// dashed lines when they fall within the range shown.
pub fn sparkline(points: &[(f64, f64)], warning: Option<f64>, critical: Option<f64>) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    if points.len() < 2 {
        return String::new();
    }
    let (t0, t1) = (points[0].0, points[points.len() - 1].0);
    let (mut lo, mut hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, v)| {
            (lo.min(*v), hi.max(*v))
        });
    if hi - lo < 1e-12 {
        lo -= 1.0;
        hi += 1.0;
    }
    let x = |t: f64| {
        if t1 > t0 {
            (t - t0) / (t1 - t0) * W
        } else {
            0.0
        }
    };
    let y = |v: f64| H - 1.0 - (v - lo) / (hi - lo) * (H - 2.0);
    let line: Vec<String> = points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect();
    let mut svg = format!(
        "<svg class=\"spark\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{} recent values\"><polyline points=\"{}\"/>",
        points.len(),
        line.join(" ")
    );
    for (level, colour) in [(warning, "#c90"), (critical, "#c00")] {
        if let Some(l) = level.filter(|l| (lo..=hi).contains(l)) {
            let _ = write!(
                svg,
                "<line x1=\"0\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\"/>",
                y = y(l)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Up to four decimals, without trailing zeros: 0.9512, 6.2, 25276502016.
fn number(v: f64) -> String {
    let text = format!("{v:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(check: &str, statement: &str, state: State) -> InstanceStatus {
        InstanceStatus {
            check: check.into(),
            labels: [("queryid".to_owned(), statement.to_owned())].into(),
            state,
            value: (state != State::Unknown).then_some(0.5),
            since: 0.0,
            direction: "above",
            warning: Some(1.0),
            critical: Some(5.0),
            for_seconds: 0.0,
            readiness: false,
            reason: (state == State::Unknown).then(|| "source postgres/p failed".to_owned()),
            origin: crate::checks::Origin::Default,
            description: None,
            runbook_url: None,
            unit: "seconds",
            recent: Vec::new(),
        }
    }

    #[test]
    fn instances_of_a_check_are_grouped_and_unknown_ones_folded() {
        let mut checks = vec![
            instance("pg_slow_statement", "1", State::Ok),
            instance("pg_slow_statement", "2", State::Warning),
        ];
        for i in 3..40 {
            checks.push(instance(
                "pg_slow_statement",
                &i.to_string(),
                State::Unknown,
            ));
        }
        checks.push(instance("replica_lag", "x", State::Unknown));
        let rows = check_rows(&checks);
        assert!(
            rows.contains("<tr class=\"group warning\"><th colspan=\"7\">pg_slow_statement — 39 instances: 1 ok, 1 warning, 37 unknown</th></tr>"),
            "{rows}"
        );
        // Two rows of their own, the 37 unknown in one folded row.
        assert_eq!(
            rows.matches("<tr class=\"ok\"><td>pg_slow_statement</td>")
                .count(),
            1
        );
        assert_eq!(
            rows.matches("<tr class=\"warning\"><td>pg_slow_statement</td>")
                .count(),
            1
        );
        assert_eq!(
            rows.matches("<tr class=\"unknown\"><td>pg_slow_statement</td>")
                .count(),
            0
        );
        assert!(rows.contains("<tr class=\"unknown folded\"><td>pg_slow_statement</td><td colspan=\"6\"><details><summary>37 unknown instances</summary><ul><li>queryid=&quot;3&quot;: source postgres/p failed</li>"), "{rows}");
        // A single instance is one plain row, unknown or not.
        assert!(rows.contains("<tr class=\"unknown\"><td>replica_lag</td>"));
        assert!(!rows.contains("replica_lag — "));
        assert_eq!(rows.lines().count(), 5);
    }

    #[test]
    fn values_read_in_their_units() {
        for (v, unit, want) in [
            (0.4996, "ratio", "49.96 %"),
            (0.277647, "ratio", "27.76 %"),
            (0.4862, "seconds", "486.2 ms"),
            (2.5, "seconds", "2.5 s"),
            (6000.0, "seconds", "100 min"),
            (14400.0, "seconds", "4 h"),
            (f64::INFINITY, "seconds", "∞"),
            (536870912.0, "bytes", "512 MiB"),
            (1536.0, "bytes", "1.5 KiB"),
            (12.5, "per_second", "12.5/s"),
            (1.8e8, "bytes_per_hour", "171.7 MiB/h"),
            (42.0, "", "42"),
        ] {
            assert_eq!(in_unit(v, unit), want, "{v} {unit}");
        }
    }

    #[test]
    fn statement_texts_and_unused_indexes_are_shown_escaped() {
        let status = |details| SourceStatus {
            source: "postgres/main".into(),
            interval_seconds: 5.0,
            timeout_seconds: 2.0,
            rounds: 3,
            errors_total: 0,
            success: Some(true),
            last_round_timestamp_seconds: None,
            last_success_timestamp_seconds: None,
            last_duration_seconds: None,
            last_error: None,
            details,
        };
        let details = serde_json::json!({
            "statements": {"available": true, "note": null, "top": [
                {"queryid": "-42", "query": "SELECT * FROM t WHERE a < $1", "calls_per_second": 2.5,
                 "mean_seconds": 1.25, "exec_seconds_per_second": 3.125, "max_seconds": 4.0},
                {"queryid": "7", "query": null, "calls_per_second": 0.0,
                 "mean_seconds": null, "exec_seconds_per_second": 0.0, "max_seconds": 0.5},
            ]},
            "unused_indexes": [
                {"database": "app", "count": 1, "bytes": 16384.0,
                 "largest": [{"name": "public.t_v", "table": "public.t", "bytes": 16384.0}]},
                {"database": "reports", "count": 0, "bytes": 0.0, "largest": []},
            ],
        });
        let page = index(&[], &[status(Some(details)), status(None)]);
        assert!(page.contains("<td class=\"query\">SELECT * FROM t WHERE a &lt; $1</td><td class=\"value\">2.5/s</td><td class=\"value\">1.25 s</td><td class=\"value\">3.125</td><td class=\"value\">4 s</td>"), "{page}");
        assert!(page.contains("<td>-42</td>"), "{page}");
        assert!(
            page.contains(
                "(text not read yet)</td><td class=\"value\">0/s</td><td class=\"value\">–</td>"
            ),
            "{page}"
        );
        assert!(
            page.contains(
                "<td>app</td><td>public.t_v</td><td>public.t</td><td class=\"value\">16 KiB</td>"
            ),
            "{page}"
        );
        // No source with details: no section.
        let bare = index(&[], &[status(None)]);
        assert!(
            !bare.contains("Top statements") && !bare.contains("unused"),
            "{bare}"
        );
    }

    #[test]
    fn sparkline_scales_into_the_box_and_draws_levels_in_range() {
        let svg = sparkline(
            &[(0.0, 0.0), (5.0, 10.0), (10.0, 5.0)],
            Some(8.0),
            Some(50.0),
        );
        assert!(
            svg.contains("points=\"0.0,23.0 60.0,1.0 120.0,12.0\""),
            "{svg}"
        );
        assert_eq!(svg.matches("<line").count(), 1, "{svg}"); // 50 is off the range
        assert_eq!(sparkline(&[(0.0, 1.0)], None, None), "");
    }
}
