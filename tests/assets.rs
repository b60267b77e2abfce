//! Static checks of the bundled assets: the Grafana dashboards, the
//! Prometheus rules and their unit tests, the runbook, and the deployment
//! files (Kubernetes, docker compose, Dockerfile, systemd). External
//! checkers do the parsing where one exists: `promtool` (Debian package
//! `prometheus`), `amtool` (`prometheus-alertmanager`), `kubernetes-validate`
//! (PyPI), `systemd-analyze` (`systemd`); a missing one fails its test with
//! the package to install.
//!
//! After changing alerts/, rewrite deploy/kubernetes/prometheusrule.yaml with
//! `UPDATE_ASSETS=1 cargo test --test assets`.

mod bundled;

use bundled::promql::{selectors_in_expr, Selector};
use bundled::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the alerts' runbook_url point: docs/runbook.md of the published
/// repository, one section per alert name.
const RUNBOOK_URL: &str = "https://github.com/vitals/vitals/blob/main/docs/runbook.md";

/// The dashboards: file, uid, title. Uids and titles are stable: links and
/// bookmarks use them.
const DASHBOARDS: &[(&str, &str, &str)] = &[
    ("vitals-checks.json", "vitals-checks", "vitals / Checks"),
    (
        "vitals-container.json",
        "vitals-container",
        "vitals / Container resources",
    ),
    (
        "vitals-postgres.json",
        "vitals-postgres",
        "vitals / PostgreSQL and PgBouncer",
    ),
];

/// The rule files and their one group each.
const RULE_GROUPS: &[(&str, &str)] = &[
    ("vitals-agent.rules.yml", "vitals-agent"),
    ("vitals-checks.rules.yml", "vitals-checks"),
    ("vitals-raw.rules.yml", "vitals-raw"),
];

/// A default check's levels: what the dashboards draw and the raw-metric
/// rules fire at.
struct Level {
    check: &'static str,
    metric: &'static str,
    warning: Option<f64>,
    critical: f64,
    /// Fires above the levels (else below).
    above: bool,
}

const fn above(check: &'static str, metric: &'static str, warning: f64, critical: f64) -> Level {
    Level {
        check,
        metric,
        warning: Some(warning),
        critical,
        above: true,
    }
}

/// The default checks (DESIGN.md "Checks": CPU 70/90 %, memory 80/95 %,
/// replica lag 1/5 s, connection and pool utilization 80/95 %, PgBouncer
/// client wait 1/5 s, probe latency 1/5 s and error ratio 5/10 %; throttling,
/// idle-in-transaction and long-query levels are vitals' own defaults).
const DEFAULT_LEVELS: &[Level] = &[
    above(
        "container_cpu",
        "vitals_cgroup_cpu_limit_utilization_ratio",
        0.7,
        0.9,
    ),
    above(
        "container_cpu_throttling",
        "vitals_cgroup_cpu_throttled_ratio",
        0.25,
        0.5,
    ),
    above(
        "container_memory",
        "vitals_cgroup_memory_limit_utilization_ratio",
        0.8,
        0.95,
    ),
    above(
        "pg_connections",
        "vitals_pg_connection_utilization_ratio",
        0.8,
        0.95,
    ),
    above("pg_pool", "vitals_pg_pool_utilization_ratio", 0.8, 0.95),
    above(
        "pgbouncer_pool",
        "vitals_pgbouncer_pool_utilization_ratio",
        0.8,
        0.95,
    ),
    above(
        "pgbouncer_client_wait",
        "vitals_pgbouncer_pool_maxwait_seconds",
        1.0,
        5.0,
    ),
    above(
        "pg_idle_in_transaction",
        "vitals_pg_idle_in_transaction_max_seconds",
        60.0,
        300.0,
    ),
    above(
        "pg_longest_query",
        "vitals_pg_longest_query_seconds",
        30.0,
        300.0,
    ),
    above("replica_lag", "vitals_pg_replication_lag_seconds", 1.0, 5.0),
    Level {
        check: "replica_stream",
        metric: "vitals_pg_replication_stream_up",
        warning: None,
        critical: 0.5,
        above: false,
    },
    above("probe_latency", "vitals_probe_duration_seconds", 1.0, 5.0),
    above("probe_errors", "vitals_probe_error_ratio", 0.05, 0.1),
    above(
        "pg_slow_statement",
        "vitals_pg_statement_mean_seconds",
        1.0,
        5.0,
    ),
    above(
        "pg_rollback_ratio",
        "vitals_pg_database_rollback_ratio",
        0.05,
        0.1,
    ),
    Level {
        check: "pg_cache_hit_ratio",
        metric: "vitals_pg_database_cache_hit_ratio",
        warning: Some(0.9),
        critical: 0.8,
        above: false,
    },
    above(
        "pg_wraparound",
        "vitals_pg_database_wraparound_ratio",
        0.5,
        0.8,
    ),
    above(
        "pg_oldest_xmin",
        "vitals_pg_oldest_xmin_age_seconds",
        3600.0,
        21600.0,
    ),
];

fn level_of(metric: &str) -> Option<&'static Level> {
    DEFAULT_LEVELS.iter().find(|l| l.metric == metric)
}

/// Fails with every problem at once, one per line.
fn assert_none(problems: Vec<String>, what: &str) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

fn vitals_check_config(path: &Path) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .arg("check-config")
        .arg(path)
        .output()
        .expect("run vitals check-config");
    if out.status.success() {
        Ok(())
    } else {
        Err(output_text(&out))
    }
}

fn vitals_check_config_text(text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vitals.yaml");
    std::fs::write(&path, text).expect("write config");
    vitals_check_config(&path)
}

// ------------------------------------------------------------ dashboards

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn uses_variable(m: Option<&bundled::promql::Matcher>, variable: &str) -> bool {
    m.is_some_and(|m| {
        m.op == "=~" && (m.value == format!("${variable}") || m.value == format!("${{{variable}}}"))
    })
}

fn selector_problems(selector: &Selector) -> Vec<String> {
    let mut out = Vec::new();
    let name = selector.metric.as_deref().unwrap_or("{...}");
    for variable in ["job", "instance"] {
        if !uses_variable(selector.matcher(variable), variable) {
            out.push(format!("{name} lacks {variable}=~\"${variable}\""));
        }
    }
    if let Some(range) = &selector.range {
        if range != "$__rate_interval" {
            out.push(format!("{name}[{range}] should use [$__rate_interval]"));
        }
    }
    out
}

#[test]
fn dashboards_follow_the_conventions() {
    let files: Vec<String> = dashboard_files()
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let expected: Vec<String> = DASHBOARDS.iter().map(|d| d.0.to_owned()).collect();
    assert_eq!(
        files, expected,
        "dashboards/ holds exactly these dashboards"
    );

    let mut problems = Vec::new();
    for (file, uid, title) in DASHBOARDS {
        let dashboard = parse_json(&repo().join("dashboards").join(file));
        let mut problem = |p: String| problems.push(format!("{file}: {p}"));
        if str_of(&dashboard, "uid") != *uid {
            problem(format!("uid {} is not {uid}", dashboard["uid"]));
        }
        if str_of(&dashboard, "title") != *title {
            problem(format!("title {} is not {title:?}", dashboard["title"]));
        }
        if dashboard.get("__inputs").is_some() {
            problem("has __inputs: use the datasource variable instead".into());
        }
        if !dashboard["id"].is_null() {
            problem("id must be null (Grafana assigns it)".into());
        }
        if str_of(&dashboard, "description").is_empty() {
            problem("no description".into());
        }

        // Variables: datasource, then job, then instance, then the rest, each
        // narrowed by the ones before it.
        let variables = variables(&dashboard);
        let names: Vec<&str> = variables.iter().map(|v| str_of(v, "name")).collect();
        if names.get(..3) != Some(&["datasource", "job", "instance"][..]) {
            problem(format!(
                "variables {names:?} must start with datasource, job, instance"
            ));
        }
        for variable in &variables {
            let name = str_of(variable, "name");
            if name == "datasource" {
                if str_of(variable, "type") != "datasource"
                    || str_of(variable, "query") != "prometheus"
                {
                    problem(
                        "variable datasource must be of type datasource, query prometheus".into(),
                    );
                }
                continue;
            }
            if str_of(variable, "type") != "query" {
                problem(format!("variable {name} is not a query variable"));
            }
            if variable["datasource"]["uid"] != "${datasource}" {
                problem(format!("variable {name} does not use ${{datasource}}"));
            }
            let query = variable_query(variable).unwrap_or("");
            let narrowed_by: &[&str] = match name {
                "job" => &[],
                "instance" => &["job"],
                _ => &["job", "instance"],
            };
            match variable_promql(query) {
                Ok(Some(expr)) => {
                    for selector in selectors_in_expr(&expr).unwrap_or_default() {
                        for v in narrowed_by {
                            if !uses_variable(selector.matcher(v), v) {
                                problem(format!(
                                    "variable {name}: {query} is not narrowed by ${v}"
                                ));
                            }
                        }
                    }
                }
                Ok(None) => problem(format!("variable {name}: {query} reads no series")),
                Err(e) => problem(format!("variable {name}: {e}")),
            }
        }

        let mut ids = BTreeSet::new();
        for panel in panels(&dashboard) {
            let id = panel["id"].as_u64().unwrap_or(0);
            let ptitle = str_of(panel, "title");
            let mut problem =
                |p: String| problems.push(format!("{file} panel {id} {ptitle:?}: {p}"));
            if !ids.insert(id) {
                problem("duplicate or missing id".into());
            }
            if ptitle.is_empty() {
                problem("no title".into());
            }
            if !panel["gridPos"]["w"].is_u64() || !panel["gridPos"]["h"].is_u64() {
                problem("no gridPos".into());
            }
            if panel["type"] == "row" {
                continue;
            }
            if str_of(panel, "description").len() < 20 {
                problem("no description".into());
            }
            if str_of(&panel["fieldConfig"]["defaults"], "unit").is_empty() {
                problem("no unit".into());
            }
            if panel["datasource"]["uid"] != "${datasource}" {
                problem("panel datasource is not ${datasource}".into());
            }
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                problem("no queries".into());
            }
            for target in &targets {
                let refid = str_of(target, "refId");
                if target["datasource"]["uid"] != "${datasource}" {
                    problem(format!("target {refid} datasource is not ${{datasource}}"));
                }
                let expr = str_of(target, "expr");
                match selectors_in_expr(expr) {
                    Ok(selectors) if selectors.is_empty() => {
                        problem(format!("target {refid} reads no series: {expr}"))
                    }
                    Ok(selectors) => {
                        for p in selectors.iter().flat_map(selector_problems) {
                            problem(format!("target {refid}: {p}"));
                        }
                    }
                    Err(e) => problem(format!("target {refid}: {e}")),
                }
            }
        }
    }
    assert_none(problems, "dashboard conventions broken");
}

#[test]
fn dashboard_thresholds_sit_at_the_default_check_levels() {
    let mut problems = Vec::new();
    let mut drawn: BTreeSet<&str> = BTreeSet::new();
    for file in dashboard_files() {
        let dashboard = parse_json(&file);
        for panel in panels(&dashboard) {
            let mut levels: Vec<&Level> = Vec::new();
            for target in panel["targets"].as_array().into_iter().flatten() {
                for selector in selectors_in_expr(str_of(target, "expr")).unwrap_or_default() {
                    if let Some(level) = selector.metric.as_deref().and_then(level_of) {
                        levels.push(level);
                    }
                }
            }
            let Some(first) = levels.first() else {
                continue;
            };
            let at = format!("{} panel {:?}", rel(&file), str_of(panel, "title"));
            if levels.iter().any(|l| {
                (l.warning, l.critical, l.above) != (first.warning, first.critical, first.above)
            }) {
                problems.push(format!("{at}: mixes metrics with different check levels"));
                continue;
            }
            let defaults = &panel["fieldConfig"]["defaults"];
            let steps: Vec<(Option<f64>, &str)> = defaults["thresholds"]["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| (s["value"].as_f64(), str_of(s, "color")))
                .collect();
            let want: Vec<(Option<f64>, &str)> = match (first.above, first.warning) {
                (true, Some(w)) => vec![
                    (None, "green"),
                    (Some(w), "orange"),
                    (Some(first.critical), "red"),
                ],
                (true, None) => vec![(None, "green"), (Some(first.critical), "red")],
                (false, _) => vec![(None, "red"), (Some(first.critical), "green")],
            };
            if steps != want {
                problems.push(format!(
                    "{at}: thresholds {steps:?}, want the {} levels {want:?}",
                    first.check
                ));
            }
            if panel["type"] == "timeseries"
                && matches!(
                    defaults["custom"]["thresholdsStyle"]["mode"].as_str(),
                    None | Some("off")
                )
            {
                problems.push(format!(
                    "{at}: thresholds are not drawn (thresholdsStyle off)"
                ));
            }
            drawn.insert(first.check);
        }
    }
    for level in DEFAULT_LEVELS {
        if !drawn.contains(level.check) {
            problems.push(format!(
                "no panel shows {} ({}) with its levels",
                level.metric, level.check
            ));
        }
    }
    assert_none(problems, "dashboard thresholds");
}

// ------------------------------------------------------------ expressions

#[test]
fn every_expression_parses_with_promtool() {
    let exprs = all_exprs();
    assert!(exprs.len() > 100, "only {} expressions found", exprs.len());
    // Each expression becomes a recording rule named after where it comes
    // from, so promtool's complaint names the panel or the alert.
    let mut text = String::from("groups:\n  - name: bundled-expressions\n    rules:\n");
    let mut names = BTreeMap::new();
    for (i, expr) in exprs.iter().enumerate() {
        let promql = if expr.from_grafana {
            grafana_to_promql(&expr.promql)
        } else {
            expr.promql.clone()
        };
        assert!(
            !promql.contains('$') || !expr.from_grafana,
            "{}: variable left in {promql}",
            expr.origin
        );
        let record: String = format!("expr_{i}_{}", expr.origin)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        names.insert(record.clone(), expr.origin.clone());
        text.push_str(&format!(
            "      - record: {record}\n        expr: {}\n",
            serde_json::to_string(&promql).unwrap()
        ));
    }
    if let Err(e) = promtool_check_rules_text(&text) {
        panic!("promtool refuses an expression (the record name says where it is from):\n{e}");
    }
}

#[test]
fn a_broken_expression_is_caught_by_the_promtool_wrapper() {
    // The wrapper above must be able to fail.
    let text =
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: \"rate(x[1m]\"\n";
    assert!(promtool_check_rules_text(text).is_err());
}

#[test]
fn every_referenced_metric_is_exported() {
    let referenced = referenced_metrics().unwrap_or_else(|e| panic!("{e}"));
    // The extraction must find what the assets are about.
    for name in [
        "vitals_pg_replication_lag_seconds",
        "vitals_cgroup_cpu_usage_seconds_total",
        "vitals_check_status",
        "vitals_build_info",
        "up",
    ] {
        assert!(
            referenced.contains_key(name),
            "{name} not found in the assets"
        );
    }
    let exported = exported_metrics_list();
    assert_none(
        missing_metrics(&referenced, &exported),
        "dashboards or rules use metrics vitals does not export (tests/exported_metrics.txt)",
    );
    for name in referenced.keys() {
        assert!(
            name.starts_with("vitals_") || FROM_PROMETHEUS.contains(&name.as_str()),
            "{name} is not a vitals metric"
        );
    }
}

// ------------------------------------------------------------ rules

#[test]
fn rules_pass_promtool_check_rules() {
    let files = rule_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let expected: Vec<&str> = RULE_GROUPS.iter().map(|g| g.0).collect();
    assert_eq!(names, expected, "alerts/ holds exactly these rule files");
    let mut args = vec!["check", "rules"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = tool("promtool", &args, PROMTOOL);
    let text = output_text(&out);
    assert!(out.status.success(), "promtool check rules:\n{text}");
    assert!(
        !text.contains("WARNING"),
        "promtool check rules warns:\n{text}"
    );
}

#[test]
fn rules_pass_their_promtool_unit_tests() {
    let files = rule_test_files();
    assert_eq!(
        files.len(),
        RULE_GROUPS.len(),
        "one unit test file per rule file"
    );
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = tool("promtool", &args, PROMTOOL);
    assert!(
        out.status.success(),
        "promtool test rules:\n{}",
        output_text(&out)
    );
}

/// `## Heading` → the body up to the next `## `.
fn runbook_sections() -> BTreeMap<String, String> {
    let text = read(&repo().join("docs/runbook.md"));
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            if let Some((h, body)) = current.take() {
                out.insert(h, body);
            }
            current = Some((heading.trim().to_owned(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((h, body)) = current {
        out.insert(h, body);
    }
    out
}

fn duration_seconds(text: &str) -> Option<f64> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    })
}

#[test]
fn rules_follow_the_conventions() {
    let name_re = regex::Regex::new(r"^Vitals[A-Z][A-Za-z0-9]+$").unwrap();
    let sections = runbook_sections();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (file, group) in RULE_GROUPS {
        let parsed = parse_yaml(&repo().join("alerts").join(file));
        let groups: Vec<&str> = parsed["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| str_of(g, "name"))
            .collect();
        if groups != [*group] {
            problems.push(format!("{file}: groups {groups:?}, want [{group}]"));
        }
    }
    let rules = rules();
    assert!(rules.len() >= 30, "only {} rules", rules.len());
    for rule in &rules {
        let name = rule.alert();
        let at = format!("{} {name} ({})", rel(&rule.file), rule.severity());
        let mut problem = |p: &str| problems.push(format!("{at}: {p}"));
        if !name_re.is_match(name) {
            problem("alert name is not CamelCase with the Vitals prefix");
        }
        if !["warning", "critical"].contains(&rule.severity()) {
            problem("severity must be warning or critical");
        }
        if !seen.insert((name.to_owned(), rule.severity().to_owned())) {
            problem("defined twice");
        }
        let labels: Vec<&String> = rule.rule["labels"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        if labels != ["severity"] {
            problem("labels must be exactly severity (routing uses it)");
        }
        let annotations: BTreeSet<&str> = rule.rule["annotations"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if annotations != BTreeSet::from(["summary", "description", "runbook_url"]) {
            problem("annotations must be summary, description, runbook_url");
        }
        for key in ["summary", "description"] {
            if str_of(&rule.rule["annotations"], key).len() < 20 {
                problem(&format!("{key} is missing or too short"));
            }
        }
        let url = str_of(&rule.rule["annotations"], "runbook_url");
        if url != format!("{RUNBOOK_URL}#{}", name.to_lowercase()) {
            problem(&format!(
                "runbook_url {url} is not the runbook's section of this alert"
            ));
        }
        match sections.get(name) {
            None => problem("docs/runbook.md has no section for it"),
            Some(body) => {
                for part in ["**Meaning.**", "**Confirm.**", "**Act.**"] {
                    if !body.contains(part) {
                        problem(&format!("its runbook section lacks {part}"));
                    }
                }
            }
        }
        // The agent already debounces its checks: a short `for` only.
        if rule.group == "vitals-checks" {
            let f = str_of(&rule.rule, "for");
            if !duration_seconds(f).is_some_and(|s| s <= 60.0) {
                problem(&format!("for {f:?} should be at most 1m"));
            }
        }
    }
    let alerts: BTreeSet<&str> = rules.iter().map(Rule::alert).collect();
    for heading in sections.keys() {
        if heading.starts_with("Vitals") && !alerts.contains(heading.as_str()) {
            problems.push(format!("docs/runbook.md section {heading} has no alert"));
        }
    }
    assert_none(problems, "rule conventions broken");
}

#[test]
fn every_alert_has_a_firing_and_a_silent_unit_test() {
    // (alertname, severity) -> [fires at some eval, silent at some eval]
    let mut seen: BTreeMap<(String, String), [bool; 2]> = BTreeMap::new();
    let rules = rules();
    for rule in &rules {
        seen.insert(
            (rule.alert().to_owned(), rule.severity().to_owned()),
            [false; 2],
        );
    }
    let mut tested_files = BTreeSet::new();
    for file in rule_test_files() {
        let parsed = parse_yaml(&file);
        for rule_file in parsed["rule_files"].as_array().into_iter().flatten() {
            let path = file
                .parent()
                .unwrap()
                .join(rule_file.as_str().unwrap_or(""));
            tested_files.insert(path.canonicalize().unwrap_or(path));
        }
        for test in parsed["tests"].as_array().into_iter().flatten() {
            for eval in test["alert_rule_test"].as_array().into_iter().flatten() {
                let name = str_of(eval, "alertname");
                let firing: BTreeSet<&str> = eval["exp_alerts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a["exp_labels"]["severity"].as_str().unwrap_or(""))
                    .collect();
                for ((alert, severity), cases) in seen.iter_mut() {
                    if alert == name {
                        if firing.contains(severity.as_str()) {
                            cases[0] = true;
                        } else {
                            cases[1] = true;
                        }
                    }
                }
            }
        }
    }
    let mut problems = Vec::new();
    for file in rule_files() {
        if !tested_files.contains(&file.canonicalize().unwrap()) {
            problems.push(format!("{} is in no unit test file", rel(&file)));
        }
    }
    for ((alert, severity), [fires, silent]) in &seen {
        if !fires {
            problems.push(format!(
                "{alert} ({severity}) has no test case where it fires"
            ));
        }
        if !silent {
            problems.push(format!(
                "{alert} ({severity}) has no test case where it must stay silent"
            ));
        }
    }
    assert_none(problems, "alerts without unit tests");
}

#[test]
fn raw_rules_fire_at_the_default_check_levels() {
    let form = regex::Regex::new(
        r#"^(\w+) ([<>]) ([0-9.]+) unless on\(job, instance\) vitals_check_status\{check="(\w+)"\}$"#,
    )
    .unwrap();
    let mut covered: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut problems = Vec::new();
    for rule in rules().iter().filter(|r| r.group == "vitals-raw") {
        let expr = rule.expr();
        let Some(c) = form.captures(expr) else {
            // The rules without a check counterpart (down, OOM kills).
            if selectors_in_expr(expr)
                .unwrap_or_default()
                .iter()
                .any(|s| s.metric.as_deref().and_then(level_of).is_some())
            {
                problems.push(format!(
                    "{}: {expr} reads a checked metric but not in the checked form",
                    rule.alert()
                ));
            }
            continue;
        };
        let (metric, op, value, check) =
            (&c[1], &c[2], c[3].parse::<f64>().unwrap_or(f64::NAN), &c[4]);
        let Some(level) = level_of(metric) else {
            problems.push(format!("{}: {metric} has no default check", rule.alert()));
            continue;
        };
        let want = match rule.severity() {
            "warning" => level.warning,
            _ => Some(level.critical),
        };
        if want != Some(value) {
            problems.push(format!(
                "{} ({}): level {value}, the default check has {want:?}",
                rule.alert(),
                rule.severity()
            ));
        }
        if (op == ">") != level.above {
            problems.push(format!(
                "{}: direction {op} is wrong for {}",
                rule.alert(),
                level.check
            ));
        }
        if check != level.check {
            problems.push(format!(
                "{}: silenced by check {check}, the check of {metric} is {}",
                rule.alert(),
                level.check
            ));
        }
        covered.insert((
            level.check,
            if rule.severity() == "warning" {
                "warning"
            } else {
                "critical"
            },
        ));
    }
    for level in DEFAULT_LEVELS {
        if level.warning.is_some() && !covered.contains(&(level.check, "warning")) {
            problems.push(format!("no warning rule for {}", level.check));
        }
        if !covered.contains(&(level.check, "critical")) {
            problems.push(format!("no critical rule for {}", level.check));
        }
    }
    assert_none(problems, "raw-metric rules and default levels disagree");
}

// ------------------------------------------------------------ kubernetes

fn k8s(file: &str) -> Value {
    parse_yaml(&repo().join("deploy/kubernetes").join(file))
}

/// The text of deploy/kubernetes/prometheusrule.yaml for the current rule
/// files: their groups, indented under spec.
fn prometheus_rule_text() -> String {
    let mut text = String::from(
        "# Generated from alerts/*.rules.yml: the same groups, for prometheus-operator.\n\
         # Do not edit; after changing alerts/, run `UPDATE_ASSETS=1 cargo test --test assets`.\n\
         # Add the labels your Prometheus' ruleSelector requires (kube-prometheus-stack:\n\
         # release: <its release name>).\n\
         apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: vitals\n  \
         labels:\n    app.kubernetes.io/name: vitals\nspec:\n  groups:\n",
    );
    for file in rule_files() {
        text.push_str(&format!("    # {}\n", rel(&file)));
        let body = read(&file);
        let after = body
            .split_once("\ngroups:\n")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("{}: no top-level groups:", rel(&file)));
        for line in after.lines() {
            if !line.trim().is_empty() {
                text.push_str("  ");
                text.push_str(line);
            }
            text.push('\n');
        }
    }
    text
}

#[test]
fn prometheus_rule_carries_the_alert_groups() {
    let path = repo().join("deploy/kubernetes/prometheusrule.yaml");
    if std::env::var_os("UPDATE_ASSETS").is_some() {
        std::fs::write(&path, prometheus_rule_text()).expect("write prometheusrule.yaml");
    }
    let rule = parse_yaml(&path);
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    let mut groups = Vec::new();
    for file in rule_files() {
        groups.extend(
            parse_yaml(&file)["groups"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    assert!(!groups.is_empty());
    assert!(
        rule["spec"]["groups"] == Value::Array(groups),
        "deploy/kubernetes/prometheusrule.yaml does not carry the groups of alerts/; \
         rewrite it with UPDATE_ASSETS=1 cargo test --test assets"
    );
    // And promtool accepts them as they stand in the PrometheusRule.
    let spec = serde_json::json!({ "groups": rule["spec"]["groups"] });
    promtool_check_rules_text(&serde_json::to_string(&spec).unwrap())
        .unwrap_or_else(|e| panic!("promtool refuses the PrometheusRule's groups:\n{e}"));
}

const KUBERNETES_VALIDATE: &str =
    "the PyPI package kubernetes-validate (pip install kubernetes-validate)";

#[test]
fn kubernetes_manifests_pass_schema_validation() {
    let dir = repo().join("deploy/kubernetes");
    // Native sidecars need Kubernetes 1.29 (restartPolicy on an init
    // container); the classic variant also works on older clusters. The
    // package's own default is the newest release it knows.
    let runs: &[(&str, &[&str])] = &[
        (
            "1.29.0",
            &["deployment.yaml", "configmap.yaml", "secret.yaml"],
        ),
        (
            "1.25.0",
            &[
                "deployment-classic-sidecar.yaml",
                "configmap.yaml",
                "secret.yaml",
            ],
        ),
        (
            "",
            &[
                "deployment.yaml",
                "deployment-classic-sidecar.yaml",
                "configmap.yaml",
                "secret.yaml",
            ],
        ),
    ];
    for (version, files) in runs {
        let mut args = vec!["--strict".to_owned()];
        if !version.is_empty() {
            args.push("-k".into());
            args.push((*version).into());
        }
        args.extend(
            files
                .iter()
                .map(|f| dir.join(f).to_string_lossy().into_owned()),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tool("kubernetes-validate", &args, KUBERNETES_VALIDATE);
        let text = output_text(&out);
        assert!(
            out.status.success(),
            "kubernetes-validate {args:?}:\n{text}"
        );
        for file in *files {
            assert!(
                text.lines()
                    .any(|l| l.contains(file) && l.contains(" passed for resource ")),
                "kubernetes-validate did not validate {file}:\n{text}"
            );
        }
    }
    // It must be able to fail: restartPolicy on an init container is not in
    // the 1.27 schema.
    let out = tool(
        "kubernetes-validate",
        &[
            "--strict",
            "-k",
            "1.27.0",
            dir.join("deployment.yaml").to_str().unwrap(),
        ],
        KUBERNETES_VALIDATE,
    );
    assert!(
        !out.status.success(),
        "a native sidecar validated against 1.27:\n{}",
        output_text(&out)
    );
}

fn container<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|c| c["name"] == name)
}

fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    container(&pod["volumes"], name).unwrap_or(&Value::Null)
}

/// The directory a container mounts volume `name` at.
fn mount_of<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    container(&c["volumeMounts"], name).and_then(|m| m["mountPath"].as_str())
}

/// Checks the vitals container of a pod spec against the ConfigMap's
/// configuration, the Secret and the PodMonitor.
fn check_vitals_pod(file: &str, pod: &Value, vitals: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |p: String| problems.push(format!("{file}: {p}"));
    let configmap = k8s("configmap.yaml");
    let config_text = str_of(&configmap["data"], "vitals.yaml");
    if let Err(e) = vitals_check_config_text(config_text) {
        problem(format!("vitals refuses the ConfigMap's configuration: {e}"));
    }
    let config: Value = serde_saphyr::from_str(config_text).expect("config YAML");

    if pod["shareProcessNamespace"] != true {
        problem("shareProcessNamespace must be true: vitals watches the app's process".into());
    }
    let args: Vec<&str> = vitals["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let config_path = match args.as_slice() {
        ["--config", path] => Path::new(*path),
        _ => {
            problem(format!("vitals args {args:?} must be --config FILE"));
            Path::new("")
        }
    };
    // The ConfigMap, at the directory of --config.
    let config_volume = container(&vitals["volumeMounts"], "vitals-config");
    if volume(pod, "vitals-config")["configMap"]["name"] != configmap["metadata"]["name"]
        || config_volume
            .and_then(|m| m["mountPath"].as_str())
            .map(Path::new)
            != config_path.parent()
        || !configmap["data"][config_path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("")]
        .is_string()
    {
        problem("the ConfigMap is not mounted where --config reads it".into());
    }
    // The Secret, as the password_file of every PostgreSQL target.
    let secret = k8s("secret.yaml");
    let secret_dir = mount_of(vitals, "vitals-secret").unwrap_or("(not mounted)");
    if volume(pod, "vitals-secret")["secret"]["secretName"] != secret["metadata"]["name"] {
        problem("volume vitals-secret is not the Secret of secret.yaml".into());
    }
    let targets = config["sources"]["postgres"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if targets.is_empty() {
        problem("the configuration has no PostgreSQL target".into());
    }
    for target in &targets {
        let password_file = Path::new(str_of(target, "password_file"));
        let key = password_file
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("");
        if password_file.parent() != Some(Path::new(secret_dir))
            || !secret["stringData"][key].is_string()
        {
            problem(format!(
                "password_file {} is not a key of the mounted Secret",
                password_file.display()
            ));
        }
    }
    // The application's limits by the downward API, where limits_dir says.
    let items = volume(pod, "podinfo")["downwardAPI"]["items"].clone();
    let want = serde_json::json!([
        {"path": "cpu_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}},
        {"path": "memory_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1"}},
    ]);
    if items != want {
        problem(format!("downward API items {items}, want {want}"));
    }
    let limits_dir = str_of(&config["sources"]["cgroup"], "limits_dir");
    if limits_dir.is_empty() || mount_of(vitals, "podinfo") != Some(limits_dir) {
        problem("the podinfo volume is not mounted at the configuration's limits_dir".into());
    }
    if !config["sources"]["cgroup"]["target"]["process"].is_string() {
        problem(
            "the cgroup target must be the app's process ({process: REGEX}), not vitals' own"
                .into(),
        );
    }
    let app = container(&pod["containers"], "app").unwrap_or(&Value::Null);
    for resource in ["cpu", "memory"] {
        if app["resources"]["limits"][resource].is_null() {
            problem(format!(
                "the app has no {resource} limit for the downward API to pass on"
            ));
        }
    }
    // Locked down.
    let sc = &vitals["securityContext"];
    for (key, want) in [
        ("readOnlyRootFilesystem", true),
        ("runAsNonRoot", true),
        ("allowPrivilegeEscalation", false),
    ] {
        if sc[key] != want {
            problem(format!("vitals securityContext.{key} must be {want}"));
        }
    }
    if sc["capabilities"]["drop"] != serde_json::json!(["ALL"]) {
        problem("vitals must drop all capabilities".into());
    }
    if !sc["runAsUser"].as_u64().is_some_and(|u| u > 0) {
        problem("vitals must run as a non-zero uid".into());
    }
    // Probes and the port the PodMonitor scrapes.
    let port = &vitals["ports"][0];
    let podmonitor = k8s("podmonitor.yaml");
    let listen_port = str_of(&config, "listen").rsplit(':').next().unwrap_or("");
    if port["containerPort"] != 8482
        || listen_port != "8482"
        || podmonitor["spec"]["podMetricsEndpoints"][0]["port"] != port["name"]
    {
        problem("vitals listens on 8482, the container port the PodMonitor scrapes by name".into());
    }
    for (probe, path) in [
        ("livenessProbe", "/health/live"),
        ("readinessProbe", "/health/ready"),
    ] {
        if vitals[probe]["httpGet"]["path"] != path {
            problem(format!("vitals {probe} must GET {path}"));
        }
    }
    problems
}

fn pod_spec(file: &str) -> Value {
    let deployment = k8s(file);
    assert_eq!(deployment["kind"], "Deployment", "{file}");
    deployment["spec"]["template"]["spec"].clone()
}

#[test]
fn kubernetes_deployment_runs_vitals_as_a_native_sidecar() {
    let pod = pod_spec("deployment.yaml");
    let vitals = container(&pod["initContainers"], "vitals").expect("vitals is an init container");
    assert_eq!(
        vitals["restartPolicy"], "Always",
        "a native sidecar is an init container with restartPolicy Always"
    );
    assert!(container(&pod["containers"], "vitals").is_none());
    assert!(container(&pod["containers"], "app").is_some());
    assert_none(
        check_vitals_pod("deployment.yaml", &pod, vitals),
        "deployment.yaml",
    );
}

#[test]
fn kubernetes_classic_sidecar_is_the_same_pod_with_vitals_in_containers() {
    let classic = pod_spec("deployment-classic-sidecar.yaml");
    let vitals = container(&classic["containers"], "vitals").expect("vitals is a container");
    assert!(vitals.get("restartPolicy").is_none());
    assert!(classic.get("initContainers").is_none());
    assert_none(
        check_vitals_pod("deployment-classic-sidecar.yaml", &classic, vitals),
        "classic sidecar",
    );

    // Moving vitals back to the init containers gives the native pod.
    let mut moved = classic.clone();
    let mut vitals = vitals.clone();
    vitals
        .as_object_mut()
        .unwrap()
        .insert("restartPolicy".into(), "Always".into());
    moved["containers"] = Value::Array(
        classic["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] != "vitals")
            .cloned()
            .collect(),
    );
    moved
        .as_object_mut()
        .unwrap()
        .insert("initContainers".into(), Value::Array(vec![vitals]));
    assert_eq!(
        moved,
        pod_spec("deployment.yaml"),
        "the two variants differ beyond where vitals runs"
    );
}

#[test]
fn podmonitor_selects_the_application_pods() {
    let podmonitor = k8s("podmonitor.yaml");
    assert_eq!(podmonitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(podmonitor["kind"], "PodMonitor");
    // The job label prometheus-operator gives is <namespace>/<name>, which
    // VitalsDown's job=~".*vitals.*" must match.
    assert!(str_of(&podmonitor["metadata"], "name").contains("vitals"));
    let endpoint = &podmonitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    let labels = &k8s("deployment.yaml")["spec"]["template"]["metadata"]["labels"];
    let selector = podmonitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels");
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(
            &labels[k], v,
            "the PodMonitor's selector {k} does not match the pods"
        );
    }
}

#[test]
fn kustomization_lists_the_native_variant() {
    let kustomization = k8s("kustomization.yaml");
    let resources: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for file in &resources {
        assert!(
            repo().join("deploy/kubernetes").join(file).is_file(),
            "{file} does not exist"
        );
    }
    for file in [
        "configmap.yaml",
        "secret.yaml",
        "deployment.yaml",
        "podmonitor.yaml",
        "prometheusrule.yaml",
    ] {
        assert!(resources.contains(&file), "kustomization.yaml lacks {file}");
    }
    assert!(
        !resources.contains(&"deployment-classic-sidecar.yaml"),
        "both Deployments would clash"
    );
}

// ------------------------------------------------------------ compose

fn compose_dir() -> PathBuf {
    repo().join("deploy/compose")
}

/// A service's bind mounts as (host path, container path).
fn binds(service: &Value) -> Vec<(PathBuf, String)> {
    service["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|v| {
            let mut parts = v.split(':');
            let (host, inside) = (parts.next()?, parts.next()?);
            (host.starts_with('.') || host.starts_with('/'))
                .then(|| (compose_dir().join(host), inside.to_owned()))
        })
        .collect()
}

/// Where a container path of a service comes from on the host.
fn host_path(service: &Value, inside: &str) -> Option<PathBuf> {
    binds(service).into_iter().find_map(|(host, mount)| {
        let rest = Path::new(inside).strip_prefix(&mount).ok()?;
        Some(if rest.as_os_str().is_empty() {
            host
        } else {
            host.join(rest)
        })
    })
}

fn glob_files(pattern: &Path) -> BTreeSet<PathBuf> {
    // Only `dir/*suffix` patterns are used.
    let dir = pattern.parent().expect("dir");
    let name = pattern.file_name().and_then(|f| f.to_str()).expect("name");
    let suffix = name.strip_prefix('*').expect("a * pattern");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .map(|p| p.canonicalize().unwrap())
        .collect()
}

#[test]
fn compose_file_is_complete_and_consistent() {
    let compose = parse_yaml(&compose_dir().join("compose.yaml"));
    let services = compose["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "alertmanager",
            "app",
            "grafana",
            "pgbouncer",
            "postgres-primary",
            "postgres-standby",
            "prometheus",
            "vitals"
        ]),
    );
    let mut problems = Vec::new();
    let secrets = compose["secrets"].as_object().cloned().unwrap_or_default();
    for (name, service) in services {
        for port in service["ports"].as_array().into_iter().flatten() {
            if !port.as_str().is_some_and(|p| p.starts_with("127.0.0.1:")) {
                problems.push(format!(
                    "{name}: port {port} is not published on loopback only"
                ));
            }
        }
        for (host, _) in binds(service) {
            if !host.exists() {
                problems.push(format!(
                    "{name}: mounts {} which does not exist",
                    host.display()
                ));
            }
        }
        for secret in service["secrets"].as_array().into_iter().flatten() {
            let secret = secret
                .as_str()
                .or_else(|| secret["source"].as_str())
                .unwrap_or("");
            if !secrets.contains_key(secret) {
                problems.push(format!("{name}: secret {secret} is not declared"));
            }
        }
        for dep in service["depends_on"]
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .or_else(|| {
                service["depends_on"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default()
        {
            if !services.contains_key(&dep) {
                problems.push(format!("{name}: depends on unknown service {dep}"));
            }
        }
    }
    for (name, secret) in &secrets {
        let file = compose_dir().join(str_of(secret, "file"));
        if !file.is_file() {
            problems.push(format!("secret {name}: {} does not exist", file.display()));
        }
    }

    // vitals: the image built here, locked down, a sidecar of app.
    let vitals = &services["vitals"];
    let build = compose_dir().join(str_of(&vitals["build"], "context"));
    if !build.join(str_of(&vitals["build"], "dockerfile")).is_file() {
        problems.push("vitals: the Dockerfile of its build does not exist".into());
    }
    if vitals["read_only"] != true {
        problems.push("vitals: read_only must be true".into());
    }
    if str_of(vitals, "user").starts_with("0") || str_of(vitals, "user").is_empty() {
        problems.push("vitals: must run as a non-root user".into());
    }
    if vitals["network_mode"] != "service:app" || vitals["pid"] != "service:app" {
        problems.push("vitals: must share app's network and process namespaces".into());
    }
    let config_path = host_path(vitals, "/etc/vitals/vitals.yaml").expect("vitals config mounted");
    if let Err(e) = vitals_check_config(&config_path) {
        problems.push(format!("vitals refuses deploy/compose/vitals.yaml: {e}"));
    }
    let config = parse_yaml(&config_path);
    let listen_port = str_of(&config, "listen")
        .rsplit(':')
        .next()
        .unwrap_or("")
        .to_owned();
    if !services["app"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| {
            p.as_str()
                .is_some_and(|p| p.ends_with(&format!(":{listen_port}")))
        })
    {
        problems.push(format!("app does not publish vitals' port {listen_port}"));
    }
    let vitals_secrets: BTreeSet<String> = vitals["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "/run/secrets/{}",
                s.as_str().or_else(|| s["source"].as_str()).unwrap_or("")
            )
        })
        .collect();
    let monitor_password = read(&compose_dir().join("secrets/pg_monitor_password"));
    for kind in ["postgres", "pgbouncer"] {
        for target in config["sources"][kind].as_array().into_iter().flatten() {
            let file = str_of(target, "password_file");
            if !vitals_secrets.contains(file) {
                problems.push(format!("vitals.yaml {kind} {}: password_file {file} is not a secret of the vitals service", target["name"]));
            }
            let dsn = str_of(target, "dsn");
            let host = dsn
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("host="))
                .unwrap_or("");
            if !services.contains_key(host) {
                problems.push(format!(
                    "vitals.yaml {kind} {}: host {host} is not a service",
                    target["name"]
                ));
            }
        }
    }
    // PgBouncer lets vitals' user read its admin console with that password.
    let userlist = read(&compose_dir().join("pgbouncer/userlist.txt"));
    if !userlist.contains(&format!("\"vitals\" \"{}\"", monitor_password.trim())) {
        problems.push("pgbouncer/userlist.txt does not give vitals the password of secrets/pg_monitor_password".into());
    }
    if !read(&compose_dir().join("pgbouncer/pgbouncer.ini"))
        .lines()
        .any(|l| l.replace(' ', "") == "stats_users=vitals")
    {
        problems.push("pgbouncer.ini: vitals is not a stats user".into());
    }

    // Prometheus: loads exactly the rule files, scrapes vitals, sends to Alertmanager.
    let prometheus = &services["prometheus"];
    let prom_config_path =
        host_path(prometheus, "/etc/prometheus/prometheus.yml").expect("prometheus.yml mounted");
    let prom_config = parse_yaml(&prom_config_path);
    let mut loaded = BTreeSet::new();
    for pattern in prom_config["rule_files"].as_array().into_iter().flatten() {
        match host_path(prometheus, pattern.as_str().unwrap_or("")) {
            Some(host) => loaded.extend(glob_files(&host)),
            None => problems.push(format!("prometheus: rule_files {pattern} is not mounted")),
        }
    }
    let want: BTreeSet<PathBuf> = rule_files()
        .iter()
        .map(|f| f.canonicalize().unwrap())
        .collect();
    if loaded != want {
        problems.push(format!(
            "prometheus loads {loaded:?}, want the rule files {want:?}"
        ));
    }
    let scrape_targets: Vec<&str> = prom_config["scrape_configs"][0]["static_configs"][0]
        ["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if scrape_targets != [format!("app:{listen_port}")] {
        problems.push(format!("prometheus scrapes {scrape_targets:?}, want app:{listen_port} (vitals in app's network)"));
    }
    let am = prom_config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
        .as_str()
        .unwrap_or("");
    if am.split(':').next() != Some("alertmanager") {
        problems.push(format!(
            "prometheus sends alerts to {am}, not the alertmanager service"
        ));
    }
    let out = tool(
        "promtool",
        &[
            "check",
            "config",
            "--syntax-only",
            prom_config_path.to_str().unwrap(),
        ],
        PROMTOOL,
    );
    if !out.status.success() {
        problems.push(format!(
            "promtool check config prometheus.yml:\n{}",
            output_text(&out)
        ));
    }
    let am_config = host_path(
        &services["alertmanager"],
        "/etc/alertmanager/alertmanager.yml",
    )
    .expect("alertmanager.yml mounted");
    let out = tool(
        "amtool",
        &["check-config", am_config.to_str().unwrap()],
        AMTOOL,
    );
    if !out.status.success() {
        problems.push(format!(
            "amtool check-config alertmanager.yml:\n{}",
            output_text(&out)
        ));
    }

    // Grafana: provisioned with the Prometheus service and the dashboards.
    let grafana = &services["grafana"];
    let provisioning =
        host_path(grafana, "/etc/grafana/provisioning").expect("provisioning mounted");
    let datasources = parse_yaml(&provisioning.join("datasources/vitals.yml"));
    let url = str_of(&datasources["datasources"][0], "url");
    if url != "http://prometheus:9090" || datasources["datasources"][0]["type"] != "prometheus" {
        problems.push(format!(
            "grafana datasource {url} is not the prometheus service"
        ));
    }
    let providers = parse_yaml(&provisioning.join("dashboards/vitals.yml"));
    let path = str_of(&providers["providers"][0]["options"], "path");
    let shown: BTreeSet<PathBuf> = host_path(grafana, path)
        .map(|p| glob_files(&p.join("*.json")))
        .unwrap_or_default();
    let want: BTreeSet<PathBuf> = dashboard_files()
        .iter()
        .map(|f| f.canonicalize().unwrap())
        .collect();
    if shown != want {
        problems.push(format!(
            "grafana provisions {shown:?} from {path}, want the dashboards"
        ));
    }

    // Scripts the PostgreSQL containers run.
    for script in ["postgres/primary-init.sh", "postgres/standby-entrypoint.sh"] {
        let out = tool(
            "sh",
            &["-n", compose_dir().join(script).to_str().unwrap()],
            "a POSIX sh",
        );
        if !out.status.success() {
            problems.push(format!("{script}: {}", output_text(&out)));
        }
    }
    assert_none(problems, "deploy/compose");
}

const AMTOOL: &str = "the Debian package `prometheus-alertmanager` (amtool)";

#[test]
fn end_to_end_configs_are_valid_once_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = repo().join("tests/fixtures/e2e");
    let rules = repo().join("alerts/*.rules.yml");
    let prom = read(&fixtures.join("prometheus.yml"))
        .replace("@VITALS@", "127.0.0.1:18482")
        .replace("@ALERTMANAGER@", "127.0.0.1:19093")
        .replace("@RULES@", rules.to_str().unwrap());
    let am = read(&fixtures.join("alertmanager.yml"))
        .replace("@WEBHOOK@", "http://127.0.0.1:19999/alerts");
    assert!(
        !prom.contains('@') && !am.contains('@'),
        "a placeholder is left"
    );
    std::fs::write(dir.path().join("prometheus.yml"), &prom).unwrap();
    std::fs::write(dir.path().join("alertmanager.yml"), &am).unwrap();
    // Not --syntax-only: promtool also loads the rule files the glob names.
    let out = tool(
        "promtool",
        &[
            "check",
            "config",
            dir.path().join("prometheus.yml").to_str().unwrap(),
        ],
        PROMTOOL,
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    for file in rule_files() {
        assert!(
            text.contains(file.file_name().unwrap().to_str().unwrap()),
            "promtool did not load {}:\n{text}",
            rel(&file)
        );
    }
    let out = tool(
        "amtool",
        &[
            "check-config",
            dir.path().join("alertmanager.yml").to_str().unwrap(),
        ],
        AMTOOL,
    );
    assert!(out.status.success(), "{}", output_text(&out));
}

// ------------------------------------------------------------ image and VM

#[test]
fn dockerfile_builds_a_small_non_root_image() {
    let text = read(&repo().join("deploy/Dockerfile"));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let stages: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "a multi-stage build");
    let last = &lines[*stages.last().unwrap()..];
    assert!(
        last[0].contains("distroless") && last[0].ends_with(":nonroot"),
        "final stage {:?} is not distroless nonroot",
        last[0]
    );
    let user = last
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER in the final stage");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric USER (runAsNonRoot needs it)");
    assert_ne!(uid, 0);
    assert!(
        last.iter().any(|l| l.starts_with("COPY --from=")),
        "the final stage copies the binary only"
    );
    assert!(last.contains(&"EXPOSE 8482"));
    assert!(last.contains(&r#"ENTRYPOINT ["/usr/local/bin/vitals"]"#));
    assert!(
        !last.iter().any(|l| l.starts_with("VOLUME")),
        "nothing to write: no VOLUME"
    );
    // What the build stage copies exists and is not ignored.
    let ignore = read(&repo().join("deploy/Dockerfile.dockerignore"));
    for line in &lines[..stages[1]] {
        if let Some(args) = line.strip_prefix("COPY ") {
            let parts: Vec<&str> = args.split_whitespace().collect();
            for source in &parts[..parts.len() - 1] {
                assert!(repo().join(source).exists(), "COPY {source}: missing");
                let source = source.trim_end_matches('/');
                assert!(
                    ignore
                        .lines()
                        .any(|l| l.trim() == format!("!{source}")
                            || l.trim() == format!("!{source}/")),
                    "{source} is left out of the build context by Dockerfile.dockerignore"
                );
            }
        }
    }
}

fn unit_settings(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(k.trim().to_owned())
                .or_default()
                .push(v.trim().to_owned());
        }
    }
    out
}

#[test]
fn systemd_unit_is_hardened_and_verifies() {
    let path = repo().join("deploy/systemd/vitals.service");
    let text = read(&path);
    let s = unit_settings(&text);
    let one = |k: &str| {
        s.get(k)
            .and_then(|v| v.last())
            .map(String::as_str)
            .unwrap_or("")
    };
    for (key, want) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestartPreventExitStatus", "64"),
    ] {
        assert_eq!(one(key), want, "{key}");
        assert!(s.contains_key(key), "{key} is not set");
    }
    // vitals reads other processes' /proc entries and host-wide /proc files.
    assert!(!s.contains_key("ProtectProc") && !s.contains_key("ProcSubset"));

    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert_eq!(
        exec.get(..2),
        Some(&["/usr/local/bin/vitals", "--config"][..])
    );
    let config = repo()
        .join("deploy/systemd")
        .join(Path::new(exec[2]).file_name().unwrap());
    vitals_check_config(&config).unwrap_or_else(|e| panic!("vitals refuses {}: {e}", rel(&config)));
    // The password arrives as a credential the dynamic user may read.
    let credentials: Vec<&str> = s["LoadCredential"]
        .iter()
        .filter_map(|c| c.split(':').next())
        .collect();
    for target in parse_yaml(&config)["sources"]["postgres"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let file = str_of(target, "password_file");
        let name = file
            .strip_prefix("/run/credentials/vitals.service/")
            .unwrap_or("");
        assert!(
            credentials.contains(&name),
            "password_file {file} is not a LoadCredential of the unit"
        );
    }

    // systemd's own check, with the binary where the unit expects it.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("vitals.service");
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/vitals", env!("CARGO_BIN_EXE_vitals")),
    )
    .unwrap();
    let out = tool(
        "systemd-analyze",
        &["verify", unit.to_str().unwrap()],
        "the Debian package `systemd` (systemd-analyze)",
    );
    let complaints = output_text(&out);
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify:\n{complaints}"
    );
}

/// The levels the bundled rules and dashboards use are the agent's own
/// built-in checks: same names, metrics, directions and levels.
#[test]
fn default_levels_are_the_agents_built_in_checks() {
    let engine = vitals::checks::defaults::default_checks();
    let mut problems = Vec::new();
    for check in &engine {
        match DEFAULT_LEVELS.iter().find(|l| l.check == check.name) {
            None => problems.push(format!(
                "built-in check {} has no entry in DEFAULT_LEVELS",
                check.name
            )),
            Some(l) => {
                let above = check.direction == vitals::config::Direction::Above;
                if l.metric != check.metric
                    || l.above != above
                    || l.warning != check.warning
                    || Some(l.critical) != check.critical
                {
                    problems.push(format!(
                        "{}: assets say {} {} {:?}/{}, the agent {} {:?} {:?}/{:?}",
                        check.name,
                        l.metric,
                        l.above,
                        l.warning,
                        l.critical,
                        check.metric,
                        check.direction,
                        check.warning,
                        check.critical
                    ));
                }
            }
        }
    }
    for l in DEFAULT_LEVELS {
        if !engine.iter().any(|c| c.name == l.check) {
            problems.push(format!(
                "DEFAULT_LEVELS names {}, which is not a built-in check",
                l.check
            ));
        }
    }
    assert_none(
        problems,
        "bundled levels differ from the agent's built-in checks",
    );
}
