//! The bundled assets as data: the dashboards' and rules' PromQL with where
//! each expression comes from, the metric names they reference, and the
//! external tools that check them. Shared by the tests that check the assets
//! statically (`tests/assets.rs`) and any test that compares the referenced
//! names with a live scrape: `referenced_metrics()` and `missing_metrics()`
//! don't care where the list of exported names comes from.
#![allow(dead_code)]

pub mod promql;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use crate::common::repo;

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn parse_yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

pub fn parse_json(path: &Path) -> Value {
    serde_json::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// Files of a repository directory whose name ends with `suffix`, sorted.
pub fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let dir = repo().join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// A path relative to the repository, for messages.
pub fn rel(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// One PromQL expression of an asset.
#[derive(Clone, Debug)]
pub struct Expr {
    /// `dashboards/x.json panel 7 "Title" target A`, `alerts/x.yml VitalsDown (critical)`.
    pub origin: String,
    /// As written; dashboards' may contain Grafana variables.
    pub promql: String,
    pub from_grafana: bool,
}

pub fn dashboard_files() -> Vec<PathBuf> {
    files("dashboards", ".json")
}

/// Every panel of a dashboard, rows' nested panels included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

pub fn variables(dashboard: &Value) -> Vec<&Value> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .collect()
}

/// A query variable's query text (Grafana writes a string or `{query: ...}`).
pub fn variable_query(variable: &Value) -> Option<&str> {
    variable["query"]
        .as_str()
        .or_else(|| variable["query"]["query"].as_str())
}

/// The PromQL inside a Prometheus variable query: `label_values(EXPR, label)`
/// and `query_result(EXPR)` have one, `label_values(label)` none.
pub fn variable_promql(query: &str) -> Result<Option<String>, String> {
    let query = query.trim();
    if let Some(args) = query
        .strip_prefix("label_values(")
        .and_then(|a| a.strip_suffix(')'))
    {
        return Ok(args
            .rsplit_once(',')
            .map(|(expr, _label)| expr.trim().to_owned()));
    }
    if let Some(expr) = query
        .strip_prefix("query_result(")
        .and_then(|a| a.strip_suffix(')'))
    {
        return Ok(Some(expr.trim().to_owned()));
    }
    Err(format!("unsupported variable query {query:?}"))
}

pub fn dashboard_exprs() -> Vec<Expr> {
    let mut out = Vec::new();
    for file in dashboard_files() {
        let dashboard = parse_json(&file);
        let name = rel(&file);
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(Expr {
                        origin: format!(
                            "{name} panel {} {:?} target {}",
                            panel["id"],
                            panel["title"].as_str().unwrap_or(""),
                            target["refId"].as_str().unwrap_or("?")
                        ),
                        promql: expr.to_owned(),
                        from_grafana: true,
                    });
                }
            }
        }
        for variable in variables(&dashboard) {
            if variable["type"] != "query" {
                continue;
            }
            let query = variable_query(variable).unwrap_or("");
            let origin = format!("{name} variable {}", variable["name"]);
            match variable_promql(query) {
                Ok(Some(promql)) => out.push(Expr {
                    origin,
                    promql,
                    from_grafana: true,
                }),
                Ok(None) => {}
                // Reported as an expression promtool refuses.
                Err(e) => out.push(Expr {
                    origin: format!("{origin} ({e})"),
                    promql: query.to_owned(),
                    from_grafana: true,
                }),
            }
        }
    }
    out
}

/// `alerts/*.rules.yml`: what Prometheus loads (the compose demo's
/// `rule_files` glob and the PrometheusRule carry the same files).
pub fn rule_files() -> Vec<PathBuf> {
    files("alerts", ".rules.yml")
}

/// `alerts/tests/*.yml`: the promtool unit tests.
pub fn rule_test_files() -> Vec<PathBuf> {
    files("alerts/tests", ".yml")
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub file: PathBuf,
    pub group: String,
    pub rule: Value,
}

impl Rule {
    pub fn alert(&self) -> &str {
        self.rule["alert"].as_str().unwrap_or("")
    }
    pub fn severity(&self) -> &str {
        self.rule["labels"]["severity"].as_str().unwrap_or("")
    }
    pub fn expr(&self) -> &str {
        self.rule["expr"].as_str().unwrap_or("")
    }
}

pub fn rules() -> Vec<Rule> {
    let mut out = Vec::new();
    for file in rule_files() {
        let parsed = parse_yaml(&file);
        for group in parsed["groups"].as_array().into_iter().flatten() {
            for rule in group["rules"].as_array().into_iter().flatten() {
                out.push(Rule {
                    file: file.clone(),
                    group: group["name"].as_str().unwrap_or("").to_owned(),
                    rule: rule.clone(),
                });
            }
        }
    }
    out
}

pub fn rule_exprs() -> Vec<Expr> {
    rules()
        .iter()
        .map(|r| Expr {
            origin: format!("{} {} ({})", rel(&r.file), r.alert(), r.severity()),
            promql: r.expr().to_owned(),
            from_grafana: false,
        })
        .collect()
}

pub fn all_exprs() -> Vec<Expr> {
    let mut out = dashboard_exprs();
    out.extend(rule_exprs());
    out
}

/// Grafana's variables replaced by values Prometheus accepts: interval
/// variables by `1m`, the others (all inside label matcher strings) by
/// their own name.
pub fn grafana_to_promql(expr: &str) -> String {
    let variable = regex::Regex::new(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)").expect("valid regex");
    variable
        .replace_all(expr, |c: &regex::Captures<'_>| {
            let name = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
            if name.starts_with("__") {
                "1m".to_owned()
            } else {
                name.to_owned()
            }
        })
        .into_owned()
}

/// Series that Prometheus itself makes for every target, not vitals.
pub const FROM_PROMETHEUS: &[&str] = &["up"];

/// Every metric name the dashboards and rules read, with where.
pub fn referenced_metrics() -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for expr in all_exprs() {
        let names = promql::metric_names_in_expr(&expr.promql)
            .map_err(|e| format!("{}: {e}", expr.origin))?;
        for name in names {
            out.entry(name).or_default().insert(expr.origin.clone());
        }
    }
    Ok(out)
}

/// The referenced names that are neither in `exported` nor made by
/// Prometheus, each with the places that use it.
pub fn missing_metrics(
    referenced: &BTreeMap<String, BTreeSet<String>>,
    exported: &BTreeSet<String>,
) -> Vec<String> {
    referenced
        .iter()
        .filter(|(name, _)| !exported.contains(*name) && !FROM_PROMETHEUS.contains(&name.as_str()))
        .map(|(name, origins)| {
            let origins: Vec<&str> = origins.iter().map(String::as_str).collect();
            format!("{name} (used by {})", origins.join("; "))
        })
        .collect()
}

/// The names vitals exports: its metric catalog (`collectors::catalog()`,
/// which `vitals catalog` prints), each family declared beside its emit code.
pub fn exported_metrics_list() -> BTreeSet<String> {
    vitals::collectors::catalog()
        .iter()
        .map(|d| d.name.to_owned())
        .collect()
}

/// Runs an external checker; a missing one fails the test saying which
/// package to install.
pub fn tool(program: &str, args: &[&str], install: &str) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): install {install}"))
}

pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub const PROMTOOL: &str = "the Debian package `prometheus` (promtool)";

/// `promtool check rules` on a rules text, written to a temporary file.
pub fn promtool_check_rules_text(text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, text).expect("write rules");
    let out = tool(
        "promtool",
        &["check", "rules", path.to_str().expect("utf-8 path")],
        PROMTOOL,
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(output_text(&out))
    }
}
