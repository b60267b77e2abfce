//! Following a Kubernetes ConfigMap: the kubelet writes each version of a
//! mounted ConfigMap into a new `..<timestamp>` directory and swaps the
//! `..data` symlink to it; the file the pod reads is `vitals.yaml ->
//! ..data/vitals.yaml`. vitals reloads when that chain comes to name another
//! file, with the same keep-the-last-good rule as SIGHUP, and counts it.

mod common;

use common::{sample, Daemon};
use std::os::unix::fs::symlink;
use std::path::Path;

/// Writes version `name` of the ConfigMap and points `..data` at it, the
/// way the kubelet's atomic writer does (new symlink, renamed over the old).
fn publish(dir: &Path, name: &str, config: &str) {
    let version = dir.join(name);
    std::fs::create_dir(&version).unwrap();
    std::fs::write(version.join("vitals.yaml"), config).unwrap();
    let tmp = dir.join("..data_tmp");
    symlink(name, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

fn value(d: &Daemon, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    sample(&d.get("/metrics").text(), name, labels)
}

#[test]
fn a_configmap_update_is_followed_and_a_bad_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    publish(
        dir.path(),
        "..2026_11_30_10_00_00.000000001",
        "interval: 1s\nsources:\n  cgroup: {enabled: false}\n",
    );
    let path = dir.path().join("vitals.yaml");
    symlink("..data/vitals.yaml", &path).unwrap();
    let d = Daemon::start(&path);
    d.wait_ready();
    assert_eq!(
        value(&d, "vitals_config_file_changes_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&d, "vitals_source_success", &[("source", "cgroup")]),
        None
    );

    // A new version: the cgroup source appears, without a signal.
    publish(
        dir.path(),
        "..2026_11_30_10_05_00.000000002",
        "interval: 1s\nsources:\n  cgroup: {enabled: true}\n",
    );
    d.wait_until("the new version", |d| {
        value(d, "vitals_source_errors_total", &[("source", "cgroup")]).is_some()
    });
    assert_eq!(
        value(&d, "vitals_config_file_changes_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(&d, "vitals_config_last_reload_success", &[]),
        Some(1.0)
    );

    // A broken version: refused and counted; the last good one keeps running.
    publish(
        dir.path(),
        "..2026_11_30_10_10_00.000000003",
        "interval: 1s\nsources:\n  cgroup: {enabled: true}\n  hots: {}\n",
    );
    d.wait_until("the refusal", |d| {
        value(d, "vitals_config_last_reload_success", &[]) == Some(0.0)
    });
    let text = d.get("/metrics").text();
    common::catalog::assert_families_in_catalog(&text);
    assert_eq!(
        sample(&text, "vitals_config_file_changes_total", &[]),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "vitals_config_reload_failures_total", &[]),
        Some(1.0)
    );
    assert!(
        sample(&text, "vitals_source_errors_total", &[("source", "cgroup")]).is_some(),
        "{text}"
    );
    assert!(
        d.log().contains("unknown key `hots`"),
        "the log names the mistake: {}",
        d.log()
    );
}
