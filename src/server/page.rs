//! The small HTML page at `/`: links to the endpoints and the checks as a
//! table coloured by state. It reloads itself every 10 seconds; no script.

use crate::checks::{InstanceStatus, State};
use crate::runtime;
use std::fmt::Write as _;

pub fn index(checks: &[InstanceStatus]) -> String {
    let mut rows = String::new();
    for c in checks {
        let labels: Vec<String> = c
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let level = |l: Option<f64>| l.map_or_else(|| "–".to_owned(), |v| v.to_string());
        let state = c.state.to_string();
        let _ = writeln!(
            rows,
            "<tr class=\"{state}\"><td>{}</td><td>{}</td><td class=\"state\">{state}</td><td>{}</td><td>{} {} / {}</td><td data-since=\"{}\">{}</td></tr>",
            escape(&c.check),
            escape(&labels.join(", ")),
            c.value.map_or_else(|| "–".to_owned(), number),
            c.direction,
            level(c.warning),
            level(c.critical),
            c.since,
            since(c.since),
        );
    }
    let table = if checks.is_empty() {
        "<p>No check has an instance yet.</p>\n".to_owned()
    } else {
        format!(
            "<table id=\"checks\">\n<tr><th>check</th><th>instance</th><th>state</th><th>value</th><th>levels (warning / critical)</th><th>since</th></tr>\n{rows}</table>\n"
        )
    };
    let worst = checks.iter().map(|c| severity(c.state)).max().unwrap_or(0);
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"10\">\n\
<title>vitals {version}</title>\n<style>\n\
body {{ font-family: sans-serif; margin: 2em; }}\n\
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3em .6em; text-align: left; }}\n\
tr.ok td.state {{ background: #c8f0c8; }} tr.warning td.state {{ background: #ffe08a; }}\n\
tr.critical td.state {{ background: #f4a3a3; }} tr.unknown td.state {{ background: #ddd; }}\n\
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
