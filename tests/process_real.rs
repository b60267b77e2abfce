//! The process source against the real /proc: a child `sleep` we start and
//! whose figures the test reads itself from /proc to compare.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vitals::collectors::process::ProcessSource;
use vitals::collectors::Source;
use vitals::config::{Paths, Pattern, ProcessConfig, ProcessMatch};
use vitals::metrics::Output;

/// Kills and reaps the child however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn target(name: &str, matcher: ProcessMatch) -> ProcessConfig {
    ProcessConfig {
        name: name.into(),
        matcher,
    }
}

fn cmdline_regex(re: &str) -> ProcessMatch {
    ProcessMatch::Cmdline(Pattern(regex::Regex::new(re).unwrap()))
}

fn proc_dir(pid: u32) -> PathBuf {
    PathBuf::from("/proc").join(pid.to_string())
}

/// VmRSS of `pid` in bytes, read by the test itself.
fn vm_rss_bytes(pid: u32) -> f64 {
    let status = std::fs::read_to_string(proc_dir(pid).join("status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS line");
    kib * 1024.0
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn real_child_process_figures() {
    // A marker no other process has: sleep adds its arguments up, so an
    // extra tiny interval makes the command line unique and harmless.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let marker = format!("0.000{}{:09}", std::process::id(), nanos);
    let started = now_unix();
    // `ulimit -n 777` gives a soft limit the test knows; `exec` keeps the pid.
    let child = Command::new("sh")
        .args(["-c", &format!("ulimit -n 777 && exec sleep 30 {marker}")])
        .spawn()
        .expect("spawn sh");
    let child = KillOnDrop(child);
    let pid = child.0.id();

    // Wait (bounded) until sh has exec'd sleep.
    let wanted = format!("sleep\u{0}30\u{0}{marker}\u{0}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cmdline = std::fs::read(proc_dir(pid).join("cmdline")).unwrap_or_default();
        if cmdline == wanted.as_bytes() {
            break;
        }
        assert!(Instant::now() < deadline, "child never exec'd sleep");
        std::thread::sleep(Duration::from_millis(10));
    }

    // The test binary's own command line: vitals leaves itself out.
    let own_exe = std::env::args().next().unwrap();
    let targets = [
        target(
            "sleeper",
            cmdline_regex(&format!("^sleep 30 {}$", regex::escape(&marker))),
        ),
        target(
            "nothing",
            ProcessMatch::Comm(Pattern(
                regex::Regex::new("^vitals-no-such-process-[0-9]+$").unwrap(),
            )),
        ),
        target(
            "myself",
            cmdline_regex(&format!("^{}", regex::escape(&own_exe))),
        ),
    ];
    let mut source = ProcessSource::new(&Paths::default(), &targets);
    let rss_before = vm_rss_bytes(pid);
    let mut out = Output::new();
    source.collect(&mut out).await.expect("collect");
    let rss_after = vm_rss_bytes(pid);
    let fds = std::fs::read_dir(proc_dir(pid).join("fd")).unwrap().count() as f64;

    let v = |name: &str, process: &str| out.value(name, &[("process", process)]);
    assert_eq!(v("vitals_process_up", "sleeper"), Some(1.0));
    assert_eq!(v("vitals_process_count", "sleeper"), Some(1.0));
    assert_eq!(v("vitals_process_threads", "sleeper"), Some(1.0));
    assert_eq!(v("vitals_process_open_fds", "sleeper"), Some(fds));
    assert_eq!(v("vitals_process_max_fds", "sleeper"), Some(777.0));

    let rss = v("vitals_process_resident_memory_bytes", "sleeper").unwrap();
    let (lo, hi) = (rss_before.min(rss_after), rss_before.max(rss_after));
    assert!(
        rss >= lo - 64.0 * 1024.0 && rss <= hi + 64.0 * 1024.0,
        "rss {rss} vs VmRSS {rss_before}..{rss_after}"
    );
    assert!(rss > 0.0);

    let cpu = v("vitals_process_cpu_seconds_total", "sleeper").unwrap();
    assert!((0.0..1.0).contains(&cpu), "sleep used {cpu} s of CPU");

    // btime in /proc/stat is whole seconds, so allow a little either side.
    let start = v("vitals_process_start_time_seconds", "sleeper").unwrap();
    assert!(
        (start - started).abs() < 3.0,
        "start {start} vs spawned at {started}"
    );

    assert_eq!(v("vitals_process_up", "nothing"), Some(0.0));
    assert_eq!(v("vitals_process_count", "nothing"), None);
    assert_eq!(v("vitals_process_up", "myself"), Some(0.0));
    drop(child);
}

#[tokio::test]
async fn target_matching_nothing_is_up_zero_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let targets = [
        target("ghost", cmdline_regex("^vitals-no-such-command-line$")),
        target(
            "stopped",
            ProcessMatch::Pidfile(dir.path().join("not-written-yet.pid")),
        ),
    ];
    let mut source = ProcessSource::new(&Paths::default(), &targets);
    let mut out = Output::new();
    source
        .collect(&mut out)
        .await
        .expect("no match is no error");
    for name in ["ghost", "stopped"] {
        assert_eq!(
            out.value("vitals_process_up", &[("process", name)]),
            Some(0.0)
        );
    }
    assert!(out.family("vitals_process_count").is_none());
    assert!(out.family("vitals_process_cpu_seconds_total").is_none());
}
