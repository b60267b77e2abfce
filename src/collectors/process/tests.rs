// Real files captured on Linux 6.18 (Debian 12 userland, x86_64) from
// processes started for the purpose: the fixture tree under
// tests/fixtures/process/proc.
use super::parse::{parse_btime, parse_max_open_files, parse_status_rss};
use super::sum::{aggregate, Figures, MaxFds, ProcSample};
use super::*;
use crate::collectors::procfs::{parse_cmdline, parse_comm};
use crate::config::parse_str;
use std::fs;
use std::path::Path;

fn fixture(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/process/proc")
        .join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn status_rss() {
    // 13552 kB of a python3, Linux 6.18.
    assert_eq!(
        parse_status_rss(&fixture("12177/status")),
        Ok(Some(13552 * 1024))
    );
    // Kernel threads and zombies have no VmRSS line.
    assert_eq!(parse_status_rss(&fixture("2/status")), Ok(None));
    assert_eq!(parse_status_rss(&fixture("12183/status")), Ok(None));
    assert!(parse_status_rss("VmRSS:\t    lots kB\n").is_err());
    assert!(parse_status_rss("VmRSS:\t    1808\n").is_err());
    assert!(parse_status_rss("VmRSS:\t    1808 MB\n").is_err());
}

#[test]
fn limits_soft_open_files() {
    assert_eq!(
        parse_max_open_files(&fixture("12181/limits")),
        Ok(Some(4096))
    );
    // kthreadd: soft 1024, hard 4096; the soft one is what bites.
    assert_eq!(parse_max_open_files(&fixture("2/limits")), Ok(Some(1024)));
    // Edited: RLIM_INFINITY is refused for NOFILE by setrlimit, but the
    // file format allows it.
    let unlimited = fixture("2/limits").replace(
        "Max open files            1024                 4096",
        "Max open files            unlimited            unlimited",
    );
    assert_ne!(unlimited, fixture("2/limits"));
    assert_eq!(parse_max_open_files(&unlimited), Ok(None));
    assert!(parse_max_open_files("Limit Soft Limit Hard Limit Units\n").is_err());
    assert!(parse_max_open_files("Max open files   many   many   files\n").is_err());
    assert!(parse_max_open_files("Max open files\n").is_err());
}

#[test]
fn btime() {
    assert_eq!(parse_btime(&fixture("stat")), Ok(1795416728));
    assert!(parse_btime("cpu  1 2 3\n").is_err());
    assert!(parse_btime("btime soon\n").is_err());
}

#[test]
fn comm_and_cmdline() {
    assert_eq!(parse_comm(fixture("12182/comm").as_bytes()), "a) b (c");
    assert_eq!(
        parse_cmdline(fixture("12177/cmdline").as_bytes()),
        "python3 w.py --role=api 3"
    );
    assert_eq!(
        parse_cmdline(fixture("12182/cmdline").as_bytes()),
        "bin/a) b (c 1000"
    );
    // Kernel threads and zombies: empty.
    assert_eq!(parse_cmdline(b""), "");
    // A rewritten title padded with NULs; an empty argument in between.
    assert_eq!(
        parse_cmdline(b"postgres: checkpointer\0\0\0\0"),
        "postgres: checkpointer"
    );
    assert_eq!(parse_cmdline(b"a\0\0b\0"), "a  b");
}

fn proc_sample(start: u64, fds: Option<u64>, max: MaxFds) -> ProcSample {
    ProcSample {
        cpu_ticks: 10,
        rss_bytes: 4096,
        virtual_bytes: 8192,
        threads: 2,
        start_ticks: start,
        open_fds: fds,
        max_fds: max,
    }
}

#[test]
fn aggregation() {
    assert_eq!(aggregate(&[]), None);
    let both = aggregate(&[
        proc_sample(500, Some(3), MaxFds::Limit(4096)),
        proc_sample(200, Some(4), MaxFds::Limit(1024)),
    ]);
    assert_eq!(
        both,
        Some(Figures {
            count: 2,
            cpu_ticks: 20,
            rss_bytes: 8192,
            threads: 4,
            oldest_start_ticks: 200,
            open_fds: Some(7),
            max_fds: Some(1024),
        })
    );
    // One unreadable fd directory: no open_fds rather than a low sum.
    let f = aggregate(&[
        proc_sample(1, Some(3), MaxFds::Limit(10)),
        proc_sample(1, None, MaxFds::Limit(10)),
    ]);
    assert_eq!(f.map(|f| f.open_fds), Some(None));
    // Unlimited processes do not lower the minimum...
    let f = aggregate(&[
        proc_sample(1, Some(1), MaxFds::Unlimited),
        proc_sample(1, Some(1), MaxFds::Limit(10)),
    ]);
    assert_eq!(f.map(|f| f.max_fds), Some(Some(10)));
    // ...all unlimited is absent, and one unknown makes it unknown.
    let f = aggregate(&[proc_sample(1, Some(1), MaxFds::Unlimited)]);
    assert_eq!(f.map(|f| f.max_fds), Some(None));
    let f = aggregate(&[
        proc_sample(1, Some(1), MaxFds::Unknown),
        proc_sample(1, Some(1), MaxFds::Limit(10)),
    ]);
    assert_eq!(f.map(|f| f.max_fds), Some(None));
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The fixture tree in a scratch dir, with what git cannot hold: fd
/// entries (as many as the captured processes had) and a `self` link
/// that makes 12182 "vitals itself".
fn fixture_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let proc_root = dir.path().join("proc");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/process/proc"),
        &proc_root,
    );
    for (pid, fds) in [
        ("12177", 3),
        ("12181", 3),
        ("12182", 3),
        ("12183", 0),
        ("2", 0),
    ] {
        let fd_dir = proc_root.join(pid).join("fd");
        fs::create_dir(&fd_dir).unwrap();
        for fd in 0..fds {
            std::os::unix::fs::symlink("/dev/null", fd_dir.join(fd.to_string())).unwrap();
        }
    }
    std::os::unix::fs::symlink("12182", proc_root.join("self")).unwrap();
    for (file, text) in [
        ("tricky.pid", "12182\n"),
        ("stale.pid", "4242\n"),
        ("zombie.pid", "12183\n"),
        ("empty.pid", ""),
    ] {
        fs::write(dir.path().join(file), text).unwrap();
    }
    dir
}

/// A source built from YAML, as a user writes it, over `dir`.
fn source_from_yaml(dir: &Path, processes: &str) -> ProcessSource {
    let d = dir.display();
    let yaml = format!("paths: {{proc: '{d}/proc'}}\nsources:\n  processes:\n{processes}");
    let config = parse_str(&yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    ProcessSource {
        // USER_HZ of the machine the fixture comes from.
        inner: Arc::new(Scanner::new(&config.paths, &config.sources.processes, 100)),
    }
}

#[tokio::test]
async fn fixture_tree_gives_traceable_figures() {
    let dir = fixture_tree();
    let d = dir.path().display();
    let mut source = source_from_yaml(
        dir.path(),
        &format!(
            "    - {{name: python, match: {{comm: '^python3$'}}}}\n\
             \x20   - {{name: worker, match: {{cmdline: '--role=worker'}}}}\n\
             \x20   - {{name: tricky, match: {{pidfile: '{d}/tricky.pid'}}}}\n\
             \x20   - {{name: kernel, match: {{comm: '^kthreadd$'}}}}\n\
             \x20   - {{name: own, match: {{cmdline: '^bin/a\\) b \\(c 1000$'}}}}\n\
             \x20   - {{name: nginx, match: {{comm: '^nginx$'}}}}\n\
             \x20   - {{name: stale, match: {{pidfile: '{d}/stale.pid'}}}}\n\
             \x20   - {{name: zombie, match: {{pidfile: '{d}/zombie.pid'}}}}\n\
             \x20   - {{name: empty, match: {{pidfile: '{d}/empty.pid'}}}}\n\
             \x20   - {{name: nofile, match: {{pidfile: '{d}/no-such.pid'}}}}\n"
        ),
    );
    let mut out = Output::new();
    source.collect(&mut out).await.unwrap();
    let v = |name: &str, process: &str| out.value(name, &[("process", process)]);

    // python: 12177 and 12181; the zombie 12183 (also python3) is out.
    assert_eq!(v("vitals_process_up", "python"), Some(1.0));
    assert_eq!(v("vitals_process_count", "python"), Some(2.0));
    // utime+stime (65+1) + (3+1) = 70 ticks at USER_HZ 100.
    assert_eq!(v("vitals_process_cpu_seconds_total", "python"), Some(0.7));
    // VmRSS 13552 kB + 13516 kB.
    assert_eq!(
        v("vitals_process_resident_memory_bytes", "python"),
        Some((13552.0 + 13516.0) * 1024.0)
    );
    assert_eq!(v("vitals_process_threads", "python"), Some(5.0));
    assert_eq!(v("vitals_process_open_fds", "python"), Some(6.0));
    // min(1024, 4096).
    assert_eq!(v("vitals_process_max_fds", "python"), Some(1024.0));
    // btime 1795416728 + the older starttime 310485 / 100.
    assert_eq!(
        v("vitals_process_start_time_seconds", "python"),
        Some(1795419832.85)
    );

    // worker: 12181 alone, by its command line.
    assert_eq!(v("vitals_process_count", "worker"), Some(1.0));
    assert_eq!(v("vitals_process_cpu_seconds_total", "worker"), Some(0.04));
    assert_eq!(v("vitals_process_max_fds", "worker"), Some(4096.0));
    assert_eq!(
        v("vitals_process_start_time_seconds", "worker"),
        Some(1795419833.35)
    );

    // tricky: by pid file, even though it is "vitals itself" here: the
    // comm "a) b (c" did not throw the stat fields off.
    assert_eq!(v("vitals_process_up", "tricky"), Some(1.0));
    assert_eq!(v("vitals_process_threads", "tricky"), Some(1.0));
    assert_eq!(
        v("vitals_process_resident_memory_bytes", "tricky"),
        Some(1808.0 * 1024.0)
    );
    assert_eq!(
        v("vitals_process_start_time_seconds", "tricky"),
        Some(1795419833.36)
    );

    // kthreadd: no memory map, an empty fd directory, soft limit 1024.
    assert_eq!(
        v("vitals_process_resident_memory_bytes", "kernel"),
        Some(0.0)
    );
    assert_eq!(v("vitals_process_open_fds", "kernel"), Some(0.0));
    assert_eq!(v("vitals_process_max_fds", "kernel"), Some(1024.0));
    assert_eq!(
        v("vitals_process_start_time_seconds", "kernel"),
        Some(1795416728.25)
    );

    // Not running, for each reason; only `up` is there.
    for name in ["own", "nginx", "stale", "zombie", "empty", "nofile"] {
        assert_eq!(v("vitals_process_up", name), Some(0.0), "{name}");
        assert_eq!(v("vitals_process_count", name), None, "{name}");
        assert_eq!(v("vitals_process_cpu_seconds_total", name), None, "{name}");
    }
    assert_eq!(
        out.family("vitals_process_up").map(|f| f.samples.len()),
        Some(10)
    );
}

#[tokio::test]
async fn garbage_is_an_error() {
    let dir = fixture_tree();
    fs::write(
        dir.path().join("proc/12181/stat"),
        "12181 (python3) S 1 2\n",
    )
    .unwrap();
    let mut source = source_from_yaml(
        dir.path(),
        "    - {name: worker, match: {cmdline: '--role=worker'}}\n",
    );
    let err = source.collect(&mut Output::new()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("12181/stat"), "{msg}");
    assert!(msg.contains("field 14 (utime)"), "{msg}");

    fs::write(dir.path().join("app.pid"), "twelve\n").unwrap();
    let d = dir.path().display();
    let mut source = source_from_yaml(
        dir.path(),
        &format!("    - {{name: app, match: {{pidfile: '{d}/app.pid'}}}}\n"),
    );
    let err = source.collect(&mut Output::new()).await.unwrap_err();
    assert!(err.to_string().contains("app.pid"), "{err}");
}

#[tokio::test]
async fn vanished_process_is_skipped_silently() {
    // 12181 listed and matched by comm, but its files are gone (it exited
    // between the listing and the read).
    let dir = fixture_tree();
    for file in ["stat", "status", "limits"] {
        fs::remove_file(dir.path().join("proc/12181").join(file)).unwrap();
    }
    let mut source = source_from_yaml(
        dir.path(),
        "    - {name: python, match: {comm: '^python3$'}}\n",
    );
    let mut out = Output::new();
    source.collect(&mut out).await.unwrap();
    let labels = [("process", "python")];
    assert_eq!(out.value("vitals_process_count", &labels), Some(1.0));
    assert_eq!(out.value("vitals_process_threads", &labels), Some(4.0));
}

#[tokio::test]
async fn missing_proc_root_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = source_from_yaml(
        dir.path(),
        "    - {name: python, match: {comm: '^python3$'}}\n",
    );
    assert!(source.collect(&mut Output::new()).await.is_err());
}
