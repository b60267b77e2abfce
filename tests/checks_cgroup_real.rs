//! A real cgroup (created here, as root) filled past the memory check's
//! levels drives the check up to critical and back to ok when freed.
//! Skips with a printed reason when the kernel refuses to create it.

mod common;

use common::{sample, Daemon};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The cgroup v1 memory mount, or the cgroup2 mount when memory is not a
/// v1 controller here.
fn memory_mount() -> Option<(PathBuf, bool)> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut v2 = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        let (fstype, options) = (fields.get(sep + 1)?, fields.get(sep + 3)?);
        if *fstype == "cgroup" && options.split(',').any(|o| o == "memory") {
            return Some((PathBuf::from(fields[4]), false));
        }
        if *fstype == "cgroup2" {
            v2 = Some((PathBuf::from(fields[4]), true));
        }
    }
    v2
}

struct Cleanup {
    child: Child,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

const HOG: &str = "import sys\nblocks = []\nfor line in sys.stdin:\n    cmd = line.split()\n    if cmd[0] == 'alloc':\n        blocks.append(bytearray(b'x') * (int(cmd[1]) << 20))\n    elif cmd[0] == 'free':\n        blocks.clear()\n    print('done', flush=True)\n";

#[test]
fn memory_check_follows_a_real_cgroup_up_and_back() {
    let Some((mount, is_v2)) = memory_mount() else {
        eprintln!("SKIP: no memory cgroup mount on this machine");
        return;
    };
    let dir = mount.join(format!("vitals-check-test-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir(&dir) {
        eprintln!("SKIP: the kernel refused to create {}: {e}", dir.display());
        return;
    }
    let limit_file = if is_v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    std::fs::write(dir.join(limit_file), format!("{}", 100u64 << 20)).unwrap();
    let child = Command::new("python3")
        .args(["-c", HOG])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut guard = Cleanup {
        child,
        dir: dir.clone(),
    };
    let pid = guard.child.id();
    std::fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
    let mut stdin = guard.child.stdin.take().unwrap();
    let mut stdout = BufReader::new(guard.child.stdout.take().unwrap());
    let mut command = |c: &str| {
        writeln!(stdin, "{c}").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "done");
    };

    let d = Daemon::run(&format!(
            "interval: 300ms\nsources:\n  host: {{enabled: false}}\n  cgroup: {{enabled: true, target: {{pid: {pid}}}}}\n\
             checks:\n  - {{name: container_memory, metric: vitals_cgroup_memory_limit_utilization_ratio, warning: 0.5, critical: 0.75, hysteresis: 0.05, for: 0s, clear_for: 0s}}\n"
        ));
    let state = |d: &Daemon| {
        sample(
            &d.get("/metrics").text(),
            "vitals_check_status",
            &[("check", "container_memory")],
        )
    };
    let ratio = |d: &Daemon| {
        sample(
            &d.get("/metrics").text(),
            "vitals_cgroup_memory_limit_utilization_ratio",
            &[],
        )
    };
    // Ready means every source finished a round, not that it succeeded: wait
    // for a successful cgroup round, saying why if there is none.
    d.wait_until("a successful cgroup round", |d| {
        sample(
            &d.get("/metrics").text(),
            "vitals_source_success",
            &[("source", "cgroup")],
        ) == Some(1.0)
    });
    assert_eq!(
        sample(
            &d.get("/metrics").text(),
            "vitals_cgroup_memory_limit_bytes",
            &[]
        ),
        Some((100u64 << 20) as f64),
        "/status: {}",
        d.get("/status").text()
    );
    d.wait_until("ok while small", |d| state(d) == Some(0.0));

    command("alloc 60");
    d.wait_until("warning at ~60%", |d| state(d) == Some(1.0));
    let r = ratio(&d).unwrap();
    assert!((0.5..0.75).contains(&r), "ratio {r}");

    command("alloc 25");
    d.wait_until("critical at ~85%", |d| state(d) == Some(2.0));
    let r = ratio(&d).unwrap();
    assert!(r > 0.75, "ratio {r}");

    command("free");
    d.wait_until("ok after freeing", |d| state(d) == Some(0.0));
    let text = d.get("/metrics").text();
    common::catalog::assert_families_in_catalog(&text);
    for (to, at_least) in [("warning", 1.0), ("critical", 1.0), ("ok", 1.0)] {
        let n = sample(
            &text,
            "vitals_check_transitions_total",
            &[("check", "container_memory"), ("to", to)],
        )
        .unwrap();
        assert!(n >= at_least, "transitions to {to}: {n}");
    }
    let log = d.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("check=container_memory"))
        .collect();
    eprintln!("{}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l.contains("from=warning to=critical")),
        "{log}"
    );
    drop(guard);
}
