//! Garbage fixture trees against the real binary: a copy of the host and
//! cgroup v2 fixtures with one file garbled — truncated, a non-number, a
//! number too large for its type, a missing key — or with files vanishing
//! while vitals runs. The broken source must say so in
//! `vitals_source_success` and `/status`; the other source carries on and
//! `/metrics` keeps answering 200.

mod common;

use common::{copy_tree, fixture, sample, temp_config, Daemon};
use std::path::PathBuf;

/// A tree with the host fixture's /proc files, the cgroup v2-limited
/// fixture's proc/self and sys, under a temp dir.
struct Tree {
    dir: tempfile::TempDir,
}

const CGROUP_DIR: &str = "sys/fs/cgroup/system.slice/app.service";

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fixture("host/proc"), &dir.path().join("proc"));
        copy_tree(&fixture("cgroup/v2-limited/proc"), &dir.path().join("proc"));
        copy_tree(&fixture("cgroup/v2-limited/sys"), &dir.path().join("sys"));
        Tree { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }

    fn start(&self, interval: &str) -> Daemon {
        self.start_with(interval, "")
    }

    /// `extra`: more YAML under `sources:`.
    fn start_with(&self, interval: &str, extra: &str) -> Daemon {
        let config = temp_config(
            self.dir.path(),
            "vitals.yaml",
            &format!(
                "interval: {interval}\ndefault_checks: false\npaths:\n  proc: {}\n  sys: {}\nsources:\n  host: {{enabled: true}}\n  cgroup: {{enabled: true, target: self}}\n{extra}",
                self.path("proc").display(),
                self.path("sys").display()
            ),
        );
        Daemon::start(&config)
    }
}

fn success(metrics: &str, source: &str) -> Option<f64> {
    sample(metrics, "vitals_source_success", &[("source", source)])
}

/// Waits for both sources' first round; returns the exposition and /status.
fn first_round(d: &Daemon) -> (String, serde_json::Value) {
    d.wait_until("both sources to report", |d| {
        let m = d.get("/metrics").text();
        success(&m, "host").is_some() && success(&m, "cgroup").is_some()
    });
    let metrics = d.get("/metrics");
    assert_eq!(metrics.status, 200);
    let status: serde_json::Value = serde_json::from_slice(&d.get("/status").body).unwrap();
    (metrics.text(), status)
}

fn source_status<'a>(status: &'a serde_json::Value, source: &str) -> &'a serde_json::Value {
    status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == source)
        .unwrap_or_else(|| panic!("{source} missing from /status: {status}"))
}

/// Garbles one file; `broken` must fail naming the file by its path in the
/// tree (`proc/self/cgroup`, not just `cgroup`, which every cgroup error
/// would match), the other source must succeed and still export
/// `still_there`.
fn case(rel: &str, text: &str, broken: &str, ok: &str, still_there: &str) {
    let tree = Tree::new();
    tree.write(rel, text);
    let d = tree.start("1h");
    let (metrics, status) = first_round(&d);

    assert_eq!(success(&metrics, broken), Some(0.0), "{rel}: {metrics}");
    let s = source_status(&status, broken);
    assert_eq!(s["success"], false, "{rel}: {s}");
    let error = s["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains(rel),
        "{rel}: error {error:?} does not name the file by its path"
    );

    assert_eq!(success(&metrics, ok), Some(1.0), "{rel}: {metrics}");
    assert_eq!(source_status(&status, ok)["success"], true);
    assert!(
        sample(&metrics, still_there, &[]).is_some(),
        "{rel}: {still_there} missing"
    );
    // Still serving after the failure.
    assert_eq!(d.get("/health/live").status, 200);
}

const HOST_OK: &str = "vitals_host_memory_total_bytes";
const CGROUP_OK: &str = "vitals_cgroup_memory_usage_bytes";

#[test]
fn truncated_proc_stat() {
    // Cut in the middle of the aggregate cpu line.
    case(
        "proc/stat",
        "cpu  4705 150 1120 16",
        "host",
        "cgroup",
        CGROUP_OK,
    );
}

#[test]
fn non_number_in_meminfo() {
    case(
        "proc/meminfo",
        "MemTotal:       lots kB\nMemAvailable:   1 kB\n",
        "host",
        "cgroup",
        CGROUP_OK,
    );
}

#[test]
fn number_too_large_in_meminfo() {
    // 2^64 kB: more than u64 can hold, in kB or in bytes.
    case(
        "proc/meminfo",
        "MemTotal:       18446744073709551616 kB\n",
        "host",
        "cgroup",
        CGROUP_OK,
    );
}

#[test]
fn missing_key_in_meminfo() {
    case(
        "proc/meminfo",
        "MemFree:          123 kB\nMemAvailable:   456 kB\n",
        "host",
        "cgroup",
        CGROUP_OK,
    );
}

#[test]
fn empty_loadavg_and_garbled_pressure() {
    case("proc/loadavg", "", "host", "cgroup", CGROUP_OK);
    case(
        "proc/pressure/cpu",
        "some avg10=0.00 avg60=x avg300=0.00 total=1\n",
        "host",
        "cgroup",
        CGROUP_OK,
    );
}

#[test]
fn non_number_in_memory_current() {
    case(
        &format!("{CGROUP_DIR}/memory.current"),
        "garbage\n",
        "cgroup",
        "host",
        HOST_OK,
    );
}

#[test]
fn zero_period_in_cpu_max() {
    case(
        &format!("{CGROUP_DIR}/cpu.max"),
        "max 0\n",
        "cgroup",
        "host",
        HOST_OK,
    );
}

#[test]
fn number_too_large_in_cpu_stat() {
    case(
        &format!("{CGROUP_DIR}/cpu.stat"),
        "usage_usec 99999999999999999999999\nuser_usec 1\nsystem_usec 1\n",
        "cgroup",
        "host",
        HOST_OK,
    );
}

#[test]
fn truncated_memory_stat() {
    case(
        &format!("{CGROUP_DIR}/memory.stat"),
        "anon 150994944\nfile 1\ninactive_fi",
        "cgroup",
        "host",
        HOST_OK,
    );
}

#[test]
fn garbled_membership_and_mountinfo() {
    case("proc/self/cgroup", "nonsense\n", "cgroup", "host", HOST_OK);
    case(
        "proc/self/mountinfo",
        "35 23 0:30 / /sys/fs/cgroup rw,nosuid\n",
        "cgroup",
        "host",
        HOST_OK,
    );
}

/// The watched cgroup's directory vanishes while vitals runs (the
/// container went away between listing and reading) and comes back.
#[test]
fn cgroup_files_vanishing_and_coming_back() {
    let tree = Tree::new();
    let d = tree.start("200ms");
    let (metrics, _) = first_round(&d);
    assert_eq!(success(&metrics, "cgroup"), Some(1.0));
    assert_eq!(sample(&metrics, CGROUP_OK, &[]), Some(268435456.0));

    let dir = tree.path(CGROUP_DIR);
    let aside = tree.path("sys/fs/cgroup/system.slice/moved-away");
    std::fs::rename(&dir, &aside).unwrap();
    d.wait_until("the cgroup source to notice", |d| {
        let m = d.get("/metrics").text();
        success(&m, "cgroup") == Some(0.0) || sample(&m, CGROUP_OK, &[]).is_none()
    });
    let metrics = d.get("/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    // Never a made-up zero for a figure that could not be read.
    assert_ne!(sample(&text, CGROUP_OK, &[]), Some(0.0), "{text}");
    assert_ne!(
        sample(&text, "vitals_cgroup_memory_limit_bytes", &[]),
        Some(0.0)
    );
    // The host source is unaffected.
    assert_eq!(success(&text, "host"), Some(1.0), "{text}");

    std::fs::rename(&aside, &dir).unwrap();
    d.wait_until("the cgroup source to recover", |d| {
        let m = d.get("/metrics").text();
        success(&m, "cgroup") == Some(1.0) && sample(&m, CGROUP_OK, &[]) == Some(268435456.0)
    });
}

/// Single files vanish between rounds: a missing file is no data (the
/// series goes away), not an error and not a zero.
#[test]
fn single_files_vanishing() {
    let tree = Tree::new();
    let d = tree.start("200ms");
    let (metrics, _) = first_round(&d);
    assert!(sample(&metrics, "vitals_host_pressure_cpu_some_seconds_total", &[]).is_some());
    assert!(sample(&metrics, "vitals_cgroup_pids_current", &[]).is_some());

    std::fs::remove_file(tree.path("proc/pressure/cpu")).unwrap();
    std::fs::remove_file(tree.path(&format!("{CGROUP_DIR}/pids.current"))).unwrap();
    d.wait_until("the vanished series to go", |d| {
        let m = d.get("/metrics").text();
        sample(&m, "vitals_host_pressure_cpu_some_seconds_total", &[]).is_none()
            && sample(&m, "vitals_cgroup_pids_current", &[]).is_none()
    });
    let text = d.get("/metrics").text();
    assert_eq!(success(&text, "host"), Some(1.0), "{text}");
    assert_eq!(success(&text, "cgroup"), Some(1.0), "{text}");
    assert!(sample(&text, "vitals_host_pressure_memory_some_seconds_total", &[]).is_some());
    assert!(sample(&text, CGROUP_OK, &[]).is_some());

    // A file that vanishes for good from /proc/stat's place is an error.
    std::fs::remove_file(tree.path("proc/stat")).unwrap();
    d.wait_until("the host source to fail", |d| {
        success(&d.get("/metrics").text(), "host") == Some(0.0)
    });
    assert_eq!(success(&d.get("/metrics").text(), "cgroup"), Some(1.0));
}

const APP: &str = "  processes:\n    - {name: app, match: {comm: \"^app$\"}}\n";

/// A process listed in /proc whose files are gone by the time they are
/// read (it exited in between) is a process that is not running.
#[test]
fn process_vanishing_between_listing_and_reading() {
    let tree = Tree::new();
    std::fs::create_dir_all(tree.path("proc/777")).unwrap();
    tree.write("proc/777/comm", "app\n");
    let d = tree.start_with("1h", APP);
    first_round(&d);
    d.wait_until("the process source", |d| {
        success(&d.get("/metrics").text(), "process").is_some()
    });
    let metrics = d.get("/metrics").text();
    assert_eq!(
        sample(&metrics, "vitals_process_up", &[("process", "app")]),
        Some(0.0)
    );
    assert_eq!(success(&metrics, "process"), Some(1.0));
    assert_eq!(success(&metrics, "host"), Some(1.0));
}

/// A process whose stat line is cut short: the process source fails, the
/// others carry on.
#[test]
fn truncated_process_stat() {
    let tree = Tree::new();
    std::fs::create_dir_all(tree.path("proc/777")).unwrap();
    tree.write("proc/777/comm", "app\n");
    tree.write("proc/777/stat", "777 (app) S 1 777 777 0 -1 4194560 10");
    tree.write("proc/777/cmdline", "app\0");
    let d = tree.start_with("1h", APP);
    first_round(&d);
    d.wait_until("the process source", |d| {
        success(&d.get("/metrics").text(), "process").is_some()
    });
    let response = d.get("/metrics");
    assert_eq!(response.status, 200);
    let metrics = response.text();
    assert_eq!(success(&metrics, "process"), Some(0.0), "{metrics}");
    assert_eq!(success(&metrics, "host"), Some(1.0));
    assert_eq!(success(&metrics, "cgroup"), Some(1.0));
    let status: serde_json::Value = serde_json::from_slice(&d.get("/status").body).unwrap();
    let error = source_status(&status, "process")["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("stat"), "{error}");
}
