//! The daemon against the real machine: its host and cgroup figures must match
//! the kernel files this test reads itself.

mod common;

use common::{sample, Daemon};

/// Sum of user..steal of the aggregate cpu line of /proc/stat, in seconds
/// (USER_HZ is 100 on every Linux architecture vitals targets).
fn proc_stat_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let line = stat.lines().find(|l| l.starts_with("cpu ")).unwrap();
    line.split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse::<f64>().unwrap())
        .sum::<f64>()
        / 100.0
}

/// The directory of `controller` for `pid` on a v1 or hybrid host, or the
/// v2 directory when `controller` is "".
fn cgroup_dir(pid: u32, controller: &str) -> Option<std::path::PathBuf> {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == controller) {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
            for m in mountinfo.lines() {
                let fields: Vec<&str> = m.split(' ').collect();
                let sep = fields.iter().position(|f| *f == "-")?;
                let fstype = if controller.is_empty() {
                    "cgroup2"
                } else {
                    "cgroup"
                };
                let has_controller = controller.is_empty()
                    || fields
                        .get(sep + 3)
                        .is_some_and(|o| o.split(',').any(|c| c == controller));
                if fields.get(sep + 1) == Some(&fstype) && has_controller {
                    let root = fields[3];
                    let rel = path
                        .strip_prefix(root)
                        .unwrap_or(path)
                        .trim_start_matches('/');
                    return Some(std::path::Path::new(fields[4]).join(rel));
                }
            }
        }
    }
    None
}

#[test]
fn host_and_cgroup_figures_match_the_kernel() {
    let cpu_before = proc_stat_cpu_seconds();
    // The embedded default configuration: host and own cgroup.
    let d = Daemon::start_with(&[], &[]);
    d.wait_ready();
    let text = d.get("/metrics").text();
    let cpu_after = proc_stat_cpu_seconds();
    common::catalog::assert_families_in_catalog(&text);

    // Host CPU: the sum over modes lies between two direct readings.
    let modes = vitals::collectors::host::CPU_MODES;
    let vitals_cpu: f64 = modes
        .iter()
        .map(|m| {
            sample(&text, "vitals_host_cpu_seconds_total", &[("mode", m)])
                .unwrap_or_else(|| panic!("mode {m}"))
        })
        .sum();
    assert!(
        vitals_cpu >= cpu_before - 0.011 && vitals_cpu <= cpu_after + 0.011,
        "vitals {vitals_cpu} not within [{cpu_before}, {cpu_after}]"
    );

    // Host memory total: exactly MemTotal.
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let mem_total_kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        sample(&text, "vitals_host_memory_total_bytes", &[]),
        Some(mem_total_kb * 1024.0)
    );

    // Cgroup memory usage of the daemon's own cgroup, read directly.
    assert_eq!(
        sample(&text, "vitals_source_success", &[("source", "cgroup")]),
        Some(1.0),
        "{}",
        d.log()
    );
    let usage_file = match cgroup_dir(d.pid(), "memory") {
        Some(dir) => dir.join("memory.usage_in_bytes"),
        None => cgroup_dir(d.pid(), "")
            .expect("a cgroup")
            .join("memory.current"),
    };
    let direct: f64 = std::fs::read_to_string(&usage_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let vitals_usage =
        sample(&text, "vitals_cgroup_memory_usage_bytes", &[]).expect("cgroup memory usage");
    let tolerance = (direct * 0.10).max(16.0 * 1024.0 * 1024.0);
    assert!(
        (vitals_usage - direct).abs() <= tolerance,
        "vitals {vitals_usage} vs {} {direct}",
        usage_file.display()
    );
    let limit = sample(&text, "vitals_cgroup_memory_limit_bytes", &[]);
    assert_ne!(limit, Some(0.0), "a memory limit is never exported as 0");
}

/// A `Key:   value kB` line of /proc/PID/status, in bytes.
fn status_bytes(status: &str, key: &str) -> f64 {
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in status"))
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024.0
}

/// The self metrics against vitals' own /proc entry, read here directly.
#[test]
fn self_metrics_match_vitals_own_proc_entry() {
    let d = Daemon::start_with(&[], &[]);
    d.wait_ready();
    d.wait_until("the footprint figures", |d| {
        sample(&d.get("/metrics").text(), "process_start_time_seconds", &[]).is_some()
    });
    let text = d.get("/metrics").text();
    let dir = std::path::PathBuf::from(format!("/proc/{}", d.pid()));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let value = |name: &str| sample(&text, name, &[]).unwrap_or_else(|| panic!("{name}"));
    let hz = vitals::collectors::footprint::ticks_per_second();

    // max_fds: exactly the soft "Max open files" limit.
    let limits = read("limits");
    let soft: f64 = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(value("process_max_fds"), soft);

    // Start time: btime + starttime / USER_HZ, exact.
    let stat = read("stat");
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let field = |n: usize| -> u64 { fields[n - 3].parse().unwrap() };
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let start = (btime * hz + field(22)) as f64 / hz as f64;
    assert_eq!(value("process_start_time_seconds"), start);
    assert_eq!(
        value("process_start_time_seconds").floor(),
        start.floor(),
        "to the second"
    );

    // CPU: never more than the kernel says now (it only grows).
    let cpu_now = (field(14) + field(15)) as f64 / hz as f64;
    let cpu = value("process_cpu_seconds_total");
    assert!(
        cpu >= 0.0 && cpu <= cpu_now,
        "vitals {cpu} vs kernel now {cpu_now}"
    );

    // RSS and virtual size move between the two readings: the figure is
    // from vitals' last footprint round, and the blocking pool's threads
    // (file reads run there) come and go with their stacks and malloc
    // arenas. Read both again, a bounded number of times, until one
    // footprint round and /proc agree within a quarter.
    let mut last = String::new();
    let agree = (0..20).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        let text = d.get("/metrics").text();
        let status = read("status");
        last.clear();
        [
            ("process_resident_memory_bytes", "VmRSS:"),
            ("process_virtual_memory_bytes", "VmSize:"),
        ]
        .iter()
        .all(|(name, field)| {
            let got = sample(&text, name, &[]).unwrap_or_else(|| panic!("{name}"));
            let direct = status_bytes(&status, field);
            last.push_str(&format!("{name}: vitals {got} vs /proc {direct}\n"));
            (got - direct).abs() <= direct * 0.25
        })
    });
    assert!(agree, "{last}");

    // Open fds: a few come and go with connections.
    let fds = std::fs::read_dir(dir.join("fd")).unwrap().count() as f64;
    let got = value("process_open_fds");
    assert!(
        got >= 3.0 && (got - fds).abs() <= 8.0,
        "vitals {got} vs /proc {fds}"
    );
}
