//! vitals' metric catalog (`collectors::catalog()`) against what vitals
//! really emits and what the README says.
//!
//! - every family of the golden expositions and of live `vitals once` runs
//!   over fixture trees and this machine is in the catalog, with its type,
//!   help and labels (`common::catalog::assert_families_in_catalog`, also
//!   applied by the PostgreSQL, PgBouncer, probe and real-machine tests);
//! - every catalog family is emitted by one of those runs, by the live suite
//!   named in [`COVERED_BY`], or is listed with its condition in
//!   `EMITTED_ONLY_WHEN`;
//! - the README metric reference names every catalog family and nothing
//!   else.

mod common;

use common::catalog::{assert_covered, assert_families_in_catalog, EMITTED_ONLY_WHEN};
use common::{copy_tree, fixture, repo, temp_config};
use std::collections::BTreeSet;
use std::process::Command;

/// Catalog families whose coverage a live test binary asserts at the end of
/// its suite (it starts a service this binary does not).
const COVERED_BY: &[(&str, &str)] = &[
    ("vitals_pg_", "tests/postgres.rs"),
    ("vitals_pgbouncer_", "tests/pgbouncer.rs"),
    ("vitals_probe_", "tests/checks_probe.rs"),
    ("vitals_redis_", "tests/redis.rs"),
    ("vitals_remote_write_", "tests/remote_write.rs"),
    ("vitals_app_", "tests/app_metrics.rs"),
    ("vitals_relabel_", "tests/relabel.rs"),
];

/// The families covered here: everything but the prefixes of [`COVERED_BY`].
const COVERED_HERE: &[&str] = &[
    "vitals_host_",
    "vitals_cgroup_",
    "vitals_process_",
    "vitals_check_",
    "vitals_source_",
    "vitals_config_",
    "vitals_build_info",
    "process_",
];

fn catalog_names() -> BTreeSet<&'static str> {
    vitals::collectors::catalog()
        .iter()
        .map(|d| d.name)
        .collect()
}

/// `vitals once` with `config`; its exposition (the sources must succeed).
fn once(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_config(dir.path(), "vitals.yaml", config);
    let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .args(["--config", path.to_str().unwrap(), "once"])
        .env_remove("RUST_LOG")
        .output()
        .expect("run vitals once");
    assert!(
        out.status.success(),
        "vitals once failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The process fixture with what git cannot hold: fd entries.
fn process_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    copy_tree(&fixture("process/proc"), &root);
    for pid in ["12177", "12181", "12182", "12183", "2"] {
        let fd = root.join(pid).join("fd");
        std::fs::create_dir(&fd).unwrap();
        std::os::unix::fs::symlink("/dev/null", fd.join("0")).unwrap();
    }
    dir
}

#[test]
fn every_family_vitals_emits_is_in_the_catalog_and_every_entry_is_emitted() {
    let mut seen = BTreeSet::new();
    // The golden expositions: host and every cgroup layout, the agent's own.
    let golden = repo().join("tests/golden");
    for entry in std::fs::read_dir(&golden).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        seen.extend(assert_families_in_catalog(&text));
    }
    // Processes and a check over the host fixture.
    let procs = process_fixture();
    let text = once(&format!(
        "paths: {{proc: '{}'}}
sources:
  host: {{enabled: false}}
  cgroup: {{enabled: false}}
  processes:
    - {{name: python, match: {{comm: '^python3$'}}}}
default_checks: false
checks:
  - {{name: threads, metric: vitals_process_threads, warning: 100, critical: 200}}
",
        procs.path().join("proc").display()
    ));
    seen.extend(assert_families_in_catalog(&text));
    for family in [
        "vitals_process_open_fds",
        "vitals_check_status",
        "vitals_check_value",
    ] {
        assert!(seen.contains(family), "{family} missing from:\n{text}");
    }
    // This machine with the default configuration: the agent's own process.
    seen.extend(assert_families_in_catalog(&once("{}\n")));

    for prefix in COVERED_HERE {
        assert_covered(prefix, &seen);
    }
}

#[test]
fn every_catalog_family_has_a_place_that_proves_it_is_emitted() {
    let prefixes: Vec<&str> = COVERED_HERE
        .iter()
        .copied()
        .chain(COVERED_BY.iter().map(|(p, _)| *p))
        .collect();
    let orphans: Vec<&str> = catalog_names()
        .into_iter()
        .filter(|n| !prefixes.iter().any(|p| n.starts_with(p)))
        .collect();
    assert!(
        orphans.is_empty(),
        "no test covers these families: add their prefix to COVERED_HERE or COVERED_BY: {orphans:?}"
    );
    let catalog = catalog_names();
    for (name, condition) in EMITTED_ONLY_WHEN {
        assert!(
            catalog.contains(name),
            "EMITTED_ONLY_WHEN names {name}, which is not in the catalog"
        );
        assert!(!condition.is_empty());
    }
}

#[test]
fn a_scrape_with_a_family_outside_the_catalog_is_caught() {
    // The helper must be able to fail.
    let stray = "# HELP vitals_nope Nope.\n# TYPE vitals_nope gauge\nvitals_nope 1\n";
    assert!(std::panic::catch_unwind(|| assert_families_in_catalog(stray)).is_err());
    let wrong_type = "# HELP vitals_host_load1 Load average over 1 minute, from /proc/loadavg.\n# TYPE vitals_host_load1 counter\nvitals_host_load1 1\n";
    assert!(std::panic::catch_unwind(|| assert_families_in_catalog(wrong_type)).is_err());
    let right = "# HELP vitals_host_load1 Load average over 1 minute, from /proc/loadavg.\n# TYPE vitals_host_load1 gauge\nvitals_host_load1 1\n";
    assert_eq!(
        assert_families_in_catalog(right),
        BTreeSet::from(["vitals_host_load1".to_owned()])
    );
}

/// The README's "Metric reference" section, up to the next `## ` heading.
fn readme_reference() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find("\n## Metric reference")
        .expect("README has a Metric reference section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

/// The README reference is tested against the catalog rather than generated
/// from it: its tables carry more than the catalog does (the values a label
/// takes, the file and field a figure comes from, notes between tables), in
/// prose a generator would flatten. The test keeps the names from drifting.
#[test]
fn readme_metric_reference_matches_the_catalog_both_ways() {
    let reference = readme_reference();
    let name = regex::Regex::new(r"\b(?:vitals|process)_[a-z0-9_]*[a-z0-9]").unwrap();
    // Names in the first column of a table row: the documented families.
    let mut documented = BTreeSet::new();
    for line in reference.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap_or("");
        documented.extend(name.find_iter(first).map(|m| m.as_str().to_owned()));
    }
    // Any vitals_ name anywhere in the section.
    let mentioned: BTreeSet<String> = name
        .find_iter(&reference)
        .map(|m| m.as_str().to_owned())
        .filter(|n| n.starts_with("vitals_"))
        .collect();
    let catalog = catalog_names();
    let undocumented: Vec<&str> = catalog
        .iter()
        .copied()
        .filter(|n| !documented.contains(*n))
        .collect();
    assert!(
        undocumented.is_empty(),
        "catalog families missing from the README metric reference: {undocumented:?}"
    );
    let unknown: Vec<&String> = documented
        .iter()
        .chain(&mentioned)
        .filter(|n| !catalog.contains(n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "the README metric reference names families vitals does not export: {unknown:?}"
    );
}

#[test]
fn catalog_subcommand_prints_the_catalog() {
    let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .arg("catalog")
        .output()
        .expect("run vitals catalog");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), vitals::collectors::catalog().len());
    assert!(lines.iter().all(|l| l.len() == 4), "{text}");
    assert!(lines.contains(&vec![
        "vitals_host_cpu_seconds_total",
        "counter",
        "mode",
        vitals::collectors::host::CPU_SECONDS.help,
    ]));
}

/// `grep -rn NAME src/` finds every family's producer: each name is written
/// out as a string literal, never built with `format!`.
#[test]
fn every_catalog_name_is_a_literal_in_src() {
    fn read_all(dir: &std::path::Path, into: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                read_all(&path, into);
            } else if path.extension().is_some_and(|e| e == "rs") {
                into.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut src = String::new();
    read_all(&repo().join("src"), &mut src);
    let missing: Vec<&str> = catalog_names()
        .into_iter()
        .filter(|n| !src.contains(&format!("\"{n}\"")))
        .collect();
    assert!(missing.is_empty(), "not written out in src/: {missing:?}");
}
