//! Golden end-to-end test: the real binary runs against the fixture trees
//! under tests/fixtures, is scraped over HTTP, and the exposition — minus
//! the lines that change between runs — must equal tests/golden/<case>.prom.
//! `promtool check metrics` must find nothing to complain about.
//!
//! After an intended change, rewrite the golden files with
//! `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

mod common;

use common::{fixture, repo, Daemon};
use std::process::{Command, Stdio};

/// Series whose values depend on when and how fast the run was.
const VARYING: &[&str] = &[
    "vitals_build_info",
    "vitals_config_last_reload_timestamp_seconds",
    "vitals_source_duration_seconds",
    "vitals_source_last_success_timestamp_seconds",
];

fn stable(exposition: &str) -> String {
    exposition
        .lines()
        .filter(|line| {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            line.starts_with('#') || !VARYING.contains(&name)
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn promtool_check(exposition: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool not found: install the Debian package `prometheus` (scripts/test.sh does)",
        );
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "promtool check metrics:\n{complaints}"
    );
}

/// Runs one case: `sources` is the YAML of the `sources` key, with
/// `{proc}` and `{sys}` standing for the case's fixture roots.
fn golden(case: &str, proc_root: &str, sys_root: &str, sources: &str) {
    let proc_path = fixture(proc_root);
    let sys_path = fixture(sys_root);
    let config = format!(
        // A long interval: exactly one round happens before the scrape.
        "interval: 1h\ndefault_checks: false\npaths:\n  proc: {}\n  sys: {}\nsources:\n{}",
        proc_path.display(),
        sys_path.display(),
        sources
    );
    let d = Daemon::run(&config);
    let exposition = d.get("/metrics").text();
    promtool_check(&exposition);
    common::catalog::assert_families_in_catalog(&exposition);
    let got = stable(&exposition);
    let golden_path = repo().join("tests/golden").join(format!("{case}.prom"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1",
            golden_path.display()
        )
    });
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .filter(|l| !got.lines().any(|g| g == *l))
            .map(|l| format!("- {l}"))
            .chain(
                got.lines()
                    .filter(|g| !want.lines().any(|l| l == *g))
                    .map(|l| format!("+ {l}")),
            )
            .collect();
        panic!(
            "{case}: exposition differs from {}:\n{}",
            golden_path.display(),
            diff.join("\n")
        );
    }
}

#[test]
fn host_fixture() {
    golden(
        "host",
        "host/proc",
        "host/proc",
        "  host: {enabled: true}\n  cgroup: {enabled: false}\n",
    );
}

const CGROUP_ONLY: &str = "  host: {enabled: false}\n  cgroup: {enabled: true, target: self}\n";

#[test]
fn cgroup_v2_limited() {
    golden(
        "cgroup-v2-limited",
        "cgroup/v2-limited/proc",
        "cgroup/v2-limited/sys",
        CGROUP_ONLY,
    );
}

#[test]
fn cgroup_v2_unlimited() {
    golden(
        "cgroup-v2-unlimited",
        "cgroup/v2-unlimited/proc",
        "cgroup/v2-unlimited/sys",
        CGROUP_ONLY,
    );
}

#[test]
fn cgroup_v2_unlimited_with_downward_api_limits() {
    let limits = fixture("cgroup/v2-unlimited/podinfo");
    golden(
        "cgroup-v2-downward-api",
        "cgroup/v2-unlimited/proc",
        "cgroup/v2-unlimited/sys",
        &format!(
            "  host: {{enabled: false}}\n  cgroup: {{enabled: true, limits_dir: {}}}\n",
            limits.display()
        ),
    );
}

#[test]
fn cgroup_v2_throttled_oom() {
    golden(
        "cgroup-v2-throttled-oom",
        "cgroup/v2-throttled-oom/proc",
        "cgroup/v2-throttled-oom/sys",
        CGROUP_ONLY,
    );
}

#[test]
fn cgroup_v1() {
    golden("cgroup-v1", "cgroup/v1/proc", "cgroup/v1/sys", CGROUP_ONLY);
}

#[test]
fn cgroup_hybrid() {
    golden(
        "cgroup-hybrid",
        "cgroup/hybrid/proc",
        "cgroup/hybrid/sys",
        CGROUP_ONLY,
    );
}
