//! The cgroup and process sources read pid files and skip zombies the same
//! way, because both call the one /proc toolkit (`collectors::procfs`).
//! Against the real /proc: a child `sleep` we start, named by a pid file in
//! PostgreSQL's multi-line `postmaster.pid` format, and a zombie child.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vitals::collectors::cgroup::CgroupSource;
use vitals::collectors::process::ProcessSource;
use vitals::collectors::Source;
use vitals::config::{CgroupConfig, CgroupTarget, Paths, ProcessConfig, ProcessMatch};
use vitals::metrics::Output;

/// Kills and reaps the child however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// PostgreSQL 15's postmaster.pid for a server with pid `pid`: the pid, then
/// the data directory, start time, port, socket directory, listen address,
/// shared memory key and status (src/include/utils/pidfile.h).
fn postmaster_pid(pid: u32) -> String {
    format!(
        "{pid}\n/var/lib/postgresql/15/main\n1795416730\n5432\n/var/run/postgresql\n\
         localhost\n  5432001         0\nready   \n"
    )
}

/// The child's memory cgroup path (v1 line, else the v2 line), read by the
/// test itself from /proc.
fn cgroup_path_of(pid: u32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = |pred: &dyn Fn(&str) -> bool| {
        text.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            pred(controllers).then(|| path.to_owned())
        })
    };
    line(&|c| c.split(',').any(|x| x == "memory"))
        .or_else(|| line(&|c| c.is_empty()))
        .expect("a cgroup line")
}

fn sources(pidfile: &Path) -> (CgroupSource, ProcessSource) {
    let cgroup = CgroupSource::new(
        &Paths::default(),
        &CgroupConfig {
            target: CgroupTarget::Pidfile(pidfile.to_owned()),
            ..CgroupConfig::default()
        },
    );
    let process = ProcessSource::new(
        &Paths::default(),
        &[ProcessConfig {
            name: "pg".into(),
            matcher: ProcessMatch::Pidfile(pidfile.to_owned()),
        }],
    );
    (cgroup, process)
}

#[tokio::test]
async fn multi_line_pid_file_names_the_same_process_for_both_sources() {
    let child = KillOnDrop(
        Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep"),
    );
    let pid = child.0.id();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("postmaster.pid");
    std::fs::write(&pidfile, postmaster_pid(pid)).unwrap();
    let (mut cgroup, mut process) = sources(&pidfile);

    let mut out = Output::new();
    cgroup
        .collect(&mut out)
        .await
        .expect("the cgroup source reads a multi-line pid file");
    let info = &out.family("vitals_cgroup_info").expect("info").samples[0];
    assert_eq!(info.label("path"), Some(cgroup_path_of(pid).as_str()));

    let mut out = Output::new();
    process.collect(&mut out).await.expect("process round");
    assert_eq!(
        out.value("vitals_process_up", &[("process", "pg")]),
        Some(1.0)
    );
    assert_eq!(
        out.value("vitals_process_count", &[("process", "pg")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_zombie_is_not_a_target_for_either_source() {
    // `true` exits at once; not reaped until the guard drops, it stays a zombie.
    let child = KillOnDrop(
        Command::new("true")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn true"),
    );
    let pid = child.0.id();
    let stat = format!("/proc/{pid}/stat");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&stat).unwrap_or_default();
        if text
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "child {pid} never became a zombie"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("postmaster.pid");
    std::fs::write(&pidfile, postmaster_pid(pid)).unwrap();
    let (mut cgroup, mut process) = sources(&pidfile);

    let err = cgroup
        .collect(&mut Output::new())
        .await
        .expect_err("a zombie has no cgroup to watch");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{pid}")) && msg.contains("not running"),
        "{msg}"
    );

    let mut out = Output::new();
    process.collect(&mut out).await.expect("process round");
    assert_eq!(
        out.value("vitals_process_up", &[("process", "pg")]),
        Some(0.0)
    );
}
