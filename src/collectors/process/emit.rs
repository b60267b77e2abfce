//! The process source's series, one set per target labelled `process`.

use super::sum::Figures;
use crate::metrics::Output;

/// One target's series: `up` always, the figures when anything matched.
pub(super) fn write(
    out: &mut Output,
    name: &str,
    figures: Option<&Figures>,
    btime: Option<u64>,
    hz: u64,
) {
    let labels = [("process", name)];
    out.gauge(
        "vitals_process_up",
        "1 when at least one running process matches the target, 0 when none does; from a scan of /proc (comm, cmdline) or the pid file.",
        &labels,
        if figures.is_some() { 1.0 } else { 0.0 },
    );
    let Some(f) = figures else {
        return;
    };
    out.gauge(
        "vitals_process_count",
        "Number of running processes matching the target (zombies and vitals itself excluded), from a scan of /proc.",
        &labels,
        f.count as f64,
    );
    out.counter(
        "vitals_process_cpu_seconds_total",
        "CPU time in user and system mode of the target's processes, summed, from utime and stime in /proc/PID/stat.",
        &labels,
        f.cpu_ticks as f64 / hz as f64,
    );
    out.gauge(
        "vitals_process_resident_memory_bytes",
        "Resident memory of the target's processes, summed, from VmRSS in /proc/PID/status.",
        &labels,
        f.rss_bytes as f64,
    );
    out.gauge(
        "vitals_process_threads",
        "Threads of the target's processes, summed, from num_threads in /proc/PID/stat.",
        &labels,
        f.threads as f64,
    );
    if let Some(fds) = f.open_fds {
        out.gauge(
            "vitals_process_open_fds",
            "Open file descriptors of the target's processes, summed, counted in /proc/PID/fd.",
            &labels,
            fds as f64,
        );
    }
    if let Some(max) = f.max_fds {
        out.gauge(
            "vitals_process_max_fds",
            "Soft limit on open file descriptors, the lowest among the target's processes, from Max open files in /proc/PID/limits; absent when unlimited.",
            &labels,
            max as f64,
        );
    }
    if let Some(btime) = btime {
        // Integer first, one rounding: btime + starttime / USER_HZ.
        let start = btime
            .saturating_mul(hz)
            .saturating_add(f.oldest_start_ticks);
        out.gauge(
            "vitals_process_start_time_seconds",
            "Unix time the oldest of the target's processes started, from starttime in /proc/PID/stat and btime in /proc/stat.",
            &labels,
            start as f64 / hz as f64,
        );
    }
}
