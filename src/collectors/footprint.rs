//! vitals' own footprint: the self metrics every Prometheus client library
//! exports (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! ...), read from vitals' own entry `<proc>/self` with the process source's
//! readers and parsers, so users can watch the sidecar's overhead next to the
//! application's.
//!
//! Not a [`super::Source`]: the runtime reads it on the default interval in
//! its own task, independent of scrapes, and it has no `vitals_source_*`
//! series. A proc root without `self` (a fixture tree) gives no figures.

use super::process::{self, MaxFds};
use super::CollectError;
use crate::metrics::{Desc, Output};
use std::path::Path;

pub const CPU_SECONDS_TOTAL: Desc = Desc::counter(
    "process_cpu_seconds_total",
    &[],
    "CPU time vitals itself used in user and system mode, from utime and stime in /proc/self/stat.",
);
pub const RESIDENT_MEMORY_BYTES: Desc = Desc::gauge(
    "process_resident_memory_bytes",
    &[],
    "Resident memory of vitals itself, from VmRSS in /proc/self/status.",
);
pub const VIRTUAL_MEMORY_BYTES: Desc = Desc::gauge(
    "process_virtual_memory_bytes",
    &[],
    "Virtual memory size of vitals itself, from vsize in /proc/self/stat.",
);
pub const OPEN_FDS: Desc = Desc::gauge(
    "process_open_fds",
    &[],
    "File descriptors vitals itself has open, counted in /proc/self/fd.",
);
pub const MAX_FDS: Desc = Desc::gauge(
    "process_max_fds",
    &[],
    "Soft limit on the file descriptors vitals itself may open, from Max open files in /proc/self/limits; absent when unlimited.",
);
pub const START_TIME_SECONDS: Desc = Desc::gauge(
    "process_start_time_seconds",
    &[],
    "Unix time vitals itself started, from starttime in /proc/self/stat and btime in /proc/stat.",
);

/// Every family above, for `collectors::catalog()`.
pub const METRICS: &[Desc] = &[
    CPU_SECONDS_TOTAL,
    RESIDENT_MEMORY_BYTES,
    VIRTUAL_MEMORY_BYTES,
    OPEN_FDS,
    MAX_FDS,
    START_TIME_SECONDS,
];

/// Reads `<proc_root>/self` into an output; empty when the tree has no
/// `self` entry.
pub fn collect(proc_root: &Path, ticks_per_second: u64) -> Result<Output, CollectError> {
    let mut out = Output::new();
    let dir = proc_root.join("self");
    let Some(sample) = process::read_sample(&dir)? else {
        tracing::debug!(path = %dir.display(), "no self entry; no footprint figures");
        return Ok(out);
    };
    let hz = ticks_per_second.max(1);
    out.add(&CPU_SECONDS_TOTAL, &[], sample.cpu_ticks as f64 / hz as f64);
    out.add(&RESIDENT_MEMORY_BYTES, &[], sample.rss_bytes as f64);
    out.add(&VIRTUAL_MEMORY_BYTES, &[], sample.virtual_bytes as f64);
    if let Some(fds) = sample.open_fds {
        out.add(&OPEN_FDS, &[], fds as f64);
    }
    if let MaxFds::Limit(max) = sample.max_fds {
        out.add(&MAX_FDS, &[], max as f64);
    }
    let path = proc_root.join("stat");
    let btime = process::parse_btime(&super::read_required(&path)?)
        .map_err(|e| CollectError::parse(&path, e.0))?;
    // Integer first, one rounding, as the process source does.
    let start = btime.saturating_mul(hz).saturating_add(sample.start_ticks);
    out.add(&START_TIME_SECONDS, &[], start as f64 / hz as f64);
    Ok(out)
}

/// USER_HZ, the unit of the stat times (100 when sysconf cannot tell).
pub fn ticks_per_second() -> u64 {
    match procfs::ticks_per_second() {
        0 => 100,
        t => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process fixture with a `self` link to the tricky `sleep` (pid
    /// 12182) and three fds.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/process/proc");
        std::fs::create_dir(root.join("12182")).unwrap();
        for file in ["stat", "status", "limits", "comm", "cmdline"] {
            std::fs::copy(from.join("12182").join(file), root.join("12182").join(file)).unwrap();
        }
        std::fs::copy(from.join("stat"), root.join("stat")).unwrap();
        std::fs::create_dir(root.join("12182/fd")).unwrap();
        for fd in 0..3 {
            std::os::unix::fs::symlink("/dev/null", root.join(format!("12182/fd/{fd}"))).unwrap();
        }
        std::os::unix::fs::symlink("12182", root.join("self")).unwrap();
        dir
    }

    #[test]
    fn figures_come_from_the_self_entry() {
        let dir = tree();
        let out = collect(dir.path(), 100).unwrap();
        let v = |name: &str| out.value(name, &[]);
        assert_eq!(v("process_cpu_seconds_total"), Some(0.0));
        // VmRSS 1808 kB, vsize 2990080.
        assert_eq!(v("process_resident_memory_bytes"), Some(1808.0 * 1024.0));
        assert_eq!(v("process_virtual_memory_bytes"), Some(2990080.0));
        assert_eq!(v("process_open_fds"), Some(3.0));
        assert_eq!(v("process_max_fds"), Some(1024.0));
        // btime 1795416728 + starttime 310536 / 100.
        assert_eq!(v("process_start_time_seconds"), Some(1795419833.36));
    }

    #[test]
    fn a_tree_without_self_gives_no_figures() {
        let dir = tree();
        std::fs::remove_file(dir.path().join("self")).unwrap();
        assert_eq!(collect(dir.path(), 100).unwrap(), Output::new());
    }
}
