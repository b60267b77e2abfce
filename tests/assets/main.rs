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
//!
//! One module per kind of asset: `dashboards`, `expressions` (the PromQL of
//! dashboards and rules), `rules`, `kubernetes`, `compose`, `image`
//! (Dockerfile), `systemd`.

#[path = "../bundled/mod.rs"]
mod bundled;
#[path = "../common/mod.rs"]
mod common;

mod compose;
mod dashboards;
mod docs;
mod expressions;
mod image;
mod kubernetes;
mod rules;
mod systemd;

use bundled::promql::{selectors_in_expr, Selector};
use bundled::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
    ("vitals-redis.json", "vitals-redis", "vitals / Redis"),
];

/// The rule files and their one group each.
const RULE_GROUPS: &[(&str, &str)] = &[
    ("vitals-agent.rules.yml", "vitals-agent"),
    ("vitals-checks.rules.yml", "vitals-checks"),
    ("vitals-raw.rules.yml", "vitals-raw"),
];

/// A built-in check's levels: what the dashboards draw and the raw-metric
/// rules fire at.
struct Level {
    check: String,
    metric: String,
    warning: Option<f64>,
    critical: f64,
    /// Fires above the levels (else below).
    above: bool,
}

/// The built-in checks' levels, read from the agent itself
/// (`vitals::checks::defaults`), so the assets are checked against what
/// vitals evaluates, not against a copy.
fn default_levels() -> &'static [Level] {
    static LEVELS: OnceLock<Vec<Level>> = OnceLock::new();
    LEVELS.get_or_init(|| {
        vitals::checks::defaults::default_checks()
            .into_iter()
            .map(|c| {
                let selector = c.selector().clone();
                assert!(
                    c.metric.is_some() && selector.matchers.is_empty(),
                    "built-in check {} selects by label; the assets compare metric names only",
                    c.name
                );
                Level {
                    critical: c.critical.unwrap_or_else(|| {
                        panic!("built-in check {} has no critical level", c.name)
                    }),
                    above: c.direction == vitals::config::Direction::Above,
                    check: c.name,
                    metric: selector.metric,
                    warning: c.warning,
                }
            })
            .collect()
    })
}

fn level_of(metric: &str) -> Option<&'static Level> {
    default_levels().iter().find(|l| l.metric == metric)
}

/// `v[key]` as a string, empty when absent or not a string.
fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// Fails with every problem at once, one per line.
fn assert_none(problems: Vec<String>, what: &str) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

/// `vitals check-config PATH`: Ok, or the binary's complaint.
fn vitals_check_config(path: &Path) -> Result<(), String> {
    let (status, stdout, stderr) =
        common::run_to_exit(&["check-config", path.to_str().expect("utf-8 path")]);
    if status.success() {
        Ok(())
    } else {
        Err(format!("{stdout}{stderr}"))
    }
}

fn vitals_check_config_text(text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vitals.yaml");
    std::fs::write(&path, text).expect("write config");
    vitals_check_config(&path)
}
