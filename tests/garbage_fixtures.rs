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

/// Replaces `rel` in the tree with a FIFO that nobody writes: opening it for
/// reading blocks, as a `/proc/PID/cmdline` of a process stuck in
/// uninterruptible sleep or a `/sys` file of a broken device does.
fn make_fifo(tree: &Tree, rel: &str) -> PathBuf {
    let path = tree.path(rel);
    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
    path
}

/// Releases the reader stuck on a FIFO by opening it for writing once, in a
/// thread of its own (the open waits for a reader; the daemon's stuck read
/// is one, and the daemon is killed anyway when the test ends).
fn release_fifo(path: PathBuf) {
    std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(path)));
}

/// vitals at its default interval and timeouts on the tree.
fn start_default(tree: &Tree) -> Daemon {
    let config = temp_config(
        tree.dir.path(),
        "vitals.yaml",
        &format!(
            "default_checks: false\npaths:\n  proc: {}\n  sys: {}\nsources:\n  host: {{enabled: true}}\n  cgroup: {{enabled: true, target: self}}\n",
            tree.path("proc").display(),
            tree.path("sys").display()
        ),
    );
    Daemon::start(&config)
}

fn status_of(d: &Daemon, source: &str) -> serde_json::Value {
    let status: serde_json::Value = serde_json::from_slice(&d.get("/status").body).unwrap();
    source_status(&status, source).clone()
}

/// A `loadavg` that blocks: the host round times out on that read, says so
/// in `/status` and in `vitals_source_errors_total`, and the next round
/// starts on schedule without a second stuck read; `/metrics`,
/// `/health/live` and the cgroup source carry on.
#[test]
fn a_blocking_loadavg_fails_the_host_round_and_nothing_else() {
    let tree = Tree::new();
    let fifo = make_fifo(&tree, "proc/loadavg");
    let d = start_default(&tree);
    let want = format!("timed out after 2s reading {}", fifo.display());
    d.wait_until("the host round to time out", |d| {
        status_of(d, "host")["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&want))
    });
    let metrics = d.get("/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert_eq!(success(&text, "host"), Some(0.0), "{text}");
    assert!(
        sample(&text, "vitals_source_errors_total", &[("source", "host")]) >= Some(1.0),
        "{text}"
    );
    // The other host files were read in the same round.
    // MemTotal 24684084 kB.
    assert_eq!(
        sample(&text, HOST_OK, &[]),
        Some(24684084.0 * 1024.0),
        "{text}"
    );
    assert_eq!(success(&text, "cgroup"), Some(1.0), "{text}");
    assert_eq!(sample(&text, CGROUP_OK, &[]), Some(268435456.0));
    assert_eq!(d.get("/health/live").status, 200);

    // The next round comes on schedule and fails at once on the same path,
    // without starting a second read of it.
    d.wait_until("a second host round", |d| {
        status_of(d, "host")["rounds"].as_u64() >= Some(2)
    });
    let host = status_of(&d, "host");
    let error = host["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with(&want), "{host}");
    assert!(error.contains("still stuck"), "{host}");
    assert!(host["errors_total"].as_u64() >= Some(2), "{host}");
    assert_eq!(status_of(&d, "cgroup")["success"], true);
    release_fifo(fifo);
}

/// Two files that block at once (more than the runtime's two workers could
/// absorb if the reads ran on them): `/metrics` keeps answering, and both
/// sources report the stuck read.
#[test]
fn two_blocking_files_do_not_stop_metrics() {
    let tree = Tree::new();
    let loadavg = make_fifo(&tree, "proc/loadavg");
    let current = make_fifo(&tree, &format!("{CGROUP_DIR}/memory.current"));
    let d = start_default(&tree);
    d.wait_until("both rounds to time out", |d| {
        let timed_out = |source| {
            status_of(d, source)["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("timed out after 2s reading "))
        };
        timed_out("host") && timed_out("cgroup")
    });
    assert!(status_of(&d, "cgroup")["last_error"]
        .as_str()
        .unwrap()
        .contains(&current.display().to_string()));
    // Scrapes keep being answered (each one would wait forever otherwise;
    // the client gives up after 20 s).
    for _ in 0..20 {
        let metrics = d.get("/metrics");
        assert_eq!(metrics.status, 200);
        assert_eq!(success(&metrics.text(), "host"), Some(0.0));
        assert_eq!(d.get("/health/live").status, 200);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    release_fifo(loadavg);
    release_fifo(current);
}
