//! The cgroup source against the running kernel. One test builds a real
//! cgroup v1 group (cpu, cpuacct, memory, pids) with limits, moves a bounded
//! busy loop into it and checks vitals' figures against the files and the
//! limits set; it needs root and cgroup v1 controllers and skips with a
//! printed reason otherwise. The other compares vitals' view of the test's
//! own cgroup with the files read directly (any cgroup version).

mod cgroupfs;

use cgroupfs::{own_cgroups, read_u64, write};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vitals::collectors::cgroup::CgroupSource;
use vitals::collectors::Source;
use vitals::config::{CgroupConfig, CgroupTarget, Paths};
use vitals::metrics::Output;

async fn collect(source: &mut CgroupSource) -> Output {
    let mut out = Output::new();
    source.collect(&mut out).await.expect("cgroup round");
    out
}

/// Kills the busy child and removes the cgroups, also when an assertion
/// failed half-way.
struct Scratch {
    dirs: Vec<PathBuf>,
    child: Option<Child>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        cgroupfs::remove_cgroups(&self.dirs);
    }
}

const MEMORY_LIMIT: u64 = 64 << 20;
const PIDS_LIMIT: u64 = 64;

#[tokio::test]
async fn v1_cgroup_with_limits_and_a_busy_child() {
    let own = own_cgroups();
    let mut parents = BTreeMap::new();
    for controller in ["cpu", "cpuacct", "memory", "pids"] {
        match own.v1.get(controller) {
            Some(dir) => parents.insert(controller, dir.clone()),
            None => {
                println!("skipped: no cgroup v1 {controller} hierarchy on this host");
                return;
            }
        };
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let name = format!("vitals-test-{}-{nanos}", std::process::id());
    let dirs: BTreeMap<&str, PathBuf> = parents
        .iter()
        .map(|(c, parent)| (*c, parent.join(&name)))
        .collect();
    let mut scratch = Scratch {
        dirs: Vec::new(),
        child: None,
    };
    for dir in dirs.values() {
        // cpu and cpuacct may be one hierarchy (cpu,cpuacct).
        if scratch.dirs.contains(dir) {
            continue;
        }
        match std::fs::create_dir(dir) {
            Ok(()) => scratch.dirs.push(dir.clone()),
            // EPERM/EACCES, or EROFS (30) where /sys/fs/cgroup is read-only.
            Err(e)
                if e.kind() == std::io::ErrorKind::PermissionDenied
                    || e.raw_os_error() == Some(30) =>
            {
                println!("skipped: the kernel refused mkdir {}: {e}", dir.display());
                return;
            }
            Err(e) => panic!("mkdir {}: {e}", dir.display()),
        }
    }
    write(
        &dirs["memory"].join("memory.limit_in_bytes"),
        &MEMORY_LIMIT.to_string(),
    );
    write(&dirs["cpu"].join("cpu.cfs_period_us"), "100000");
    write(&dirs["cpu"].join("cpu.cfs_quota_us"), "20000");
    write(&dirs["pids"].join("pids.max"), &PIDS_LIMIT.to_string());

    // Bounded in count (10M iterations, ~10 s of one core) and in time
    // (killed by the guard after the two rounds, ~3 s).
    let child = Command::new("sh")
        .args(["-c", "i=0; while [ $i -lt 10000000 ]; do i=$((i+1)); done"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let pid = child.id();
    scratch.child = Some(child);
    for dir in &scratch.dirs {
        write(&dir.join("cgroup.procs"), &pid.to_string());
    }

    let paths = Paths::default();
    let config = CgroupConfig {
        target: CgroupTarget::Pid(pid),
        ..CgroupConfig::default()
    };
    let mut source = CgroupSource::new(&paths, &config);
    let usage_file = dirs["cpuacct"].join("cpuacct.usage");

    std::thread::sleep(Duration::from_millis(500));
    let before = read_u64(&usage_file) as f64 / 1e9;
    let first = collect(&mut source).await;
    let after = read_u64(&usage_file) as f64 / 1e9;
    let usage = first
        .value("vitals_cgroup_cpu_usage_seconds_total", &[])
        .expect("usage");
    assert!(usage > 0.0, "usage {usage}");
    assert!(
        before <= usage && usage <= after,
        "vitals usage {usage} outside cpuacct.usage read around it [{before}, {after}]"
    );
    assert_eq!(
        first.value("vitals_cgroup_cpu_limit_utilization_ratio", &[]),
        None
    );

    std::thread::sleep(Duration::from_secs(2));
    let second = collect(&mut source).await;
    let info = &second.family("vitals_cgroup_info").expect("info").samples[0];
    let version = info.label("version").unwrap_or_default();
    assert!(version == "v1" || version == "hybrid", "version {version}");
    let path = info.label("path").unwrap_or_default();
    assert!(path.ends_with(&format!("/{name}")), "path {path}");
    let value = |name: &str| second.value(name, &[]);
    assert_eq!(value("vitals_cgroup_cpu_limit_cores"), Some(0.2));
    assert_eq!(
        value("vitals_cgroup_memory_limit_bytes"),
        Some(MEMORY_LIMIT as f64)
    );
    assert_eq!(value("vitals_cgroup_pids_limit"), Some(PIDS_LIMIT as f64));
    // The loop uses shell builtins only: one task.
    assert_eq!(value("vitals_cgroup_pids_current"), Some(1.0));
    let throttled = value("vitals_cgroup_cpu_throttled_periods_total").expect("throttled");
    assert!(throttled > 0.0, "throttled periods {throttled}");
    let ratio = value("vitals_cgroup_cpu_limit_utilization_ratio").expect("ratio");
    assert!(
        (0.5..=1.2).contains(&ratio),
        "a busy loop against a 0.2-core quota used {ratio} of it"
    );
    println!("busy child in {path}: ratio {ratio}, throttled periods {throttled}");
    let memory = value("vitals_cgroup_memory_usage_bytes").expect("memory usage");
    assert!(memory <= MEMORY_LIMIT as f64, "memory {memory}");
    let sources: Vec<_> = second
        .family("vitals_cgroup_limit_source")
        .expect("limit sources")
        .samples
        .iter()
        .map(|s| (s.label("resource"), s.label("source")))
        .collect();
    assert_eq!(
        sources,
        [
            (Some("cpu"), Some("cgroup")),
            (Some("memory"), Some("cgroup"))
        ]
    );
    drop(scratch);
    for dir in dirs.values() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[tokio::test]
async fn own_cgroup_matches_the_files() {
    let own = own_cgroups();
    let memory_file = match (own.v1.get("memory"), &own.v2) {
        (Some(dir), _) => dir.join("memory.usage_in_bytes"),
        (None, Some(dir)) => dir.join("memory.current"),
        (None, None) => {
            println!("skipped: no cgroup memory hierarchy visible");
            return;
        }
    };
    if !memory_file.exists() {
        println!("skipped: {} does not exist", memory_file.display());
        return;
    }
    let mut source = CgroupSource::new(&Paths::default(), &CgroupConfig::default());
    let before = read_u64(&memory_file) as f64;
    let out = collect(&mut source).await;
    let after = read_u64(&memory_file) as f64;
    let usage = out
        .value("vitals_cgroup_memory_usage_bytes", &[])
        .expect("memory usage");
    // Other tests in this process allocate meanwhile: 4 MiB of slack.
    let slack = 4.0 * 1024.0 * 1024.0;
    assert!(
        before.min(after) - slack <= usage && usage <= before.max(after) + slack,
        "vitals {usage} vs {} read around it [{before}, {after}]",
        memory_file.display()
    );
    if let Some(dir) = own.v1.get("cpuacct") {
        let file = dir.join("cpuacct.usage");
        let before = read_u64(&file) as f64 / 1e9;
        let out = collect(&mut source).await;
        let after = read_u64(&file) as f64 / 1e9;
        let usage = out
            .value("vitals_cgroup_cpu_usage_seconds_total", &[])
            .expect("cpu usage");
        assert!(
            before <= usage && usage <= after,
            "vitals {usage} outside cpuacct.usage [{before}, {after}]"
        );
    }
}
