//! The process source's series, one set per target labelled `process`.

use super::sum::Figures;
use crate::metrics::{Desc, Output};

pub const UP: Desc = Desc::gauge(
    "vitals_process_up",
    &["process"],
    "1 when at least one running process matches the target, 0 when none does; from a scan of /proc (comm, cmdline) or the pid file.",
);
pub const COUNT: Desc = Desc::gauge(
    "vitals_process_count",
    &["process"],
    "Number of running processes matching the target (zombies and vitals itself excluded), from a scan of /proc.",
);
pub const CPU_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_process_cpu_seconds_total",
    &["process"],
    "CPU time in user and system mode of the target's processes, summed, from utime and stime in /proc/PID/stat.",
);
pub const RESIDENT_MEMORY_BYTES: Desc = Desc::gauge(
    "vitals_process_resident_memory_bytes",
    &["process"],
    "Resident memory of the target's processes, summed, from VmRSS in /proc/PID/status.",
);
pub const THREADS: Desc = Desc::gauge(
    "vitals_process_threads",
    &["process"],
    "Threads of the target's processes, summed, from num_threads in /proc/PID/stat.",
);
pub const OPEN_FDS: Desc = Desc::gauge(
    "vitals_process_open_fds",
    &["process"],
    "Open file descriptors of the target's processes, summed, counted in /proc/PID/fd.",
);
pub const MAX_FDS: Desc = Desc::gauge(
    "vitals_process_max_fds",
    &["process"],
    "Soft limit on open file descriptors, the lowest among the target's processes, from Max open files in /proc/PID/limits; absent when unlimited.",
);
pub const START_TIME_SECONDS: Desc = Desc::gauge(
    "vitals_process_start_time_seconds",
    &["process"],
    "Unix time the oldest of the target's processes started, from starttime in /proc/PID/stat and btime in /proc/stat.",
);

/// Every family this source exports, for `collectors::catalog()`.
pub const METRICS: &[Desc] = &[
    UP,
    COUNT,
    CPU_SECONDS_TOTAL,
    RESIDENT_MEMORY_BYTES,
    THREADS,
    OPEN_FDS,
    MAX_FDS,
    START_TIME_SECONDS,
];

/// One target's series: `up` always, the figures when anything matched.
pub(super) fn write(
    out: &mut Output,
    name: &str,
    figures: Option<&Figures>,
    btime: Option<u64>,
    hz: u64,
) {
    let labels = [("process", name)];
    out.add(&UP, &labels, if figures.is_some() { 1.0 } else { 0.0 });
    let Some(f) = figures else {
        return;
    };
    out.add(&COUNT, &labels, f.count as f64);
    out.add(&CPU_SECONDS_TOTAL, &labels, f.cpu_ticks as f64 / hz as f64);
    out.add(&RESIDENT_MEMORY_BYTES, &labels, f.rss_bytes as f64);
    out.add(&THREADS, &labels, f.threads as f64);
    if let Some(fds) = f.open_fds {
        out.add(&OPEN_FDS, &labels, fds as f64);
    }
    if let Some(max) = f.max_fds {
        out.add(&MAX_FDS, &labels, max as f64);
    }
    if let Some(btime) = btime {
        // Integer first, one rounding: btime + starttime / USER_HZ.
        let start = btime
            .saturating_mul(hz)
            .saturating_add(f.oldest_start_ticks);
        out.add(&START_TIME_SECONDS, &labels, start as f64 / hz as f64);
    }
}
