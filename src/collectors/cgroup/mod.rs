//! The watched container's cgroup: CPU and memory against its limits,
//! throttling, OOM kills, pids and per-cgroup pressure, on cgroup v2, v1 and
//! hybrid hosts (v1 controllers plus a unified cgroup2 mount).
//!
//! Each round re-resolves the target (a restarted process has a new pid and
//! maybe a new cgroup): `discover` finds one directory per controller from
//! `<proc>/self/mountinfo` (or `paths.cgroup`) and `<proc>/<pid>/cgroup`;
//! `v1` and `v2` read the files. Unlimited limits are absent, never 0.
//!
//! | figure | cgroup v2 | cgroup v1 |
//! |---|---|---|
//! | CPU usage | `cpu.stat` usage_usec | `cpuacct.usage` (ns) |
//! | CPU limit | `cpu.max` | `cpu.cfs_quota_us` / `cpu.cfs_period_us` |
//! | throttling | `cpu.stat` nr_periods, nr_throttled, throttled_usec | `cpu.stat` nr_periods, nr_throttled, throttled_time (ns) |
//! | memory | `memory.current`, `memory.stat` anon / inactive_file, `memory.max` | `memory.usage_in_bytes`, `memory.stat` total_rss / total_inactive_file, `memory.limit_in_bytes` |
//! | OOM | `memory.events` oom, oom_kill | `memory.oom_control` oom_kill (no OOM event counter in v1) |
//! | pids | `pids.current`, `pids.max` | same |
//! | PSI | `{cpu,memory,io}.pressure` of the v2 cgroup (the unified one on hybrid hosts) | — |

mod discover;
mod limits;
mod parse;
mod target;
mod v1;
mod v2;

use super::host::{parse_pressure, Pressure};
use super::{read_optional, CollectError, Source};
use crate::config::{CgroupConfig, CgroupTarget, Paths};
use crate::metrics::{Desc, Output};
use discover::{Flavor, Layout};
use limits::{LimitSource, Limits};
use parse::{parse_u64, ParseError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone)]
pub struct CgroupSource {
    proc_root: PathBuf,
    sys_root: PathBuf,
    cgroup_base: Option<PathBuf>,
    target: CgroupTarget,
    limits_dir: Option<PathBuf>,
    /// The last CPU reading per watched cgroup (`container` label).
    previous_cpu: HashMap<Option<String>, CpuSample>,
    /// `/..` paths found in the host tree: (hierarchy dir, path, pid) to the
    /// path from the tree's root.
    host_paths: HashMap<(PathBuf, String, u32), String>,
}

/// The last CPU usage reading, for the utilization ratio.
#[derive(Clone)]
struct CpuSample {
    /// Where it was read: a different cgroup means a different counter.
    from: PathBuf,
    usage_seconds: f64,
    periods: Option<(u64, u64)>,
    at: Instant,
}

/// Ratios over the last sampling interval.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IntervalRatios {
    /// CPU used / wall time / limit.
    pub(crate) cpu_utilization: Option<f64>,
    /// Throttled periods / periods.
    pub(crate) throttled: Option<f64>,
}

/// The figures of one round; `None` is "no data" (file absent, or unlimited).
#[derive(Debug, Default)]
pub(crate) struct Figures {
    pub(crate) cpu_usage_seconds: Option<f64>,
    pub(crate) cpu_limit_cores: Option<f64>,
    pub(crate) cpu_periods: Option<u64>,
    pub(crate) cpu_throttled_periods: Option<u64>,
    pub(crate) cpu_throttled_seconds: Option<f64>,
    pub(crate) memory_usage_bytes: Option<u64>,
    pub(crate) memory_inactive_file_bytes: Option<u64>,
    pub(crate) memory_rss_bytes: Option<u64>,
    pub(crate) memory_limit_bytes: Option<u64>,
    /// cgroup v1 memory.stat hierarchical_memory_limit, when limited.
    pub(crate) memory_hierarchical_limit_bytes: Option<u64>,
    pub(crate) oom_events: Option<u64>,
    pub(crate) oom_kills: Option<u64>,
    pub(crate) pids_current: Option<u64>,
    pub(crate) pids_limit: Option<u64>,
    /// (resource, pressure) for cpu, memory, io.
    pub(crate) pressure: Vec<(&'static str, Pressure)>,
}

/// Reads and parses an optional file: absent is `Ok(None)`, garbage is an
/// error naming the file.
pub(crate) fn read_parsed<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<Option<T>, CollectError> {
    match read_optional(path)? {
        Some(text) => parse(&text)
            .map(Some)
            .map_err(|e| CollectError::parse(path, e.0)),
        None => Ok(None),
    }
}

impl CgroupSource {
    pub fn new(paths: &Paths, config: &CgroupConfig) -> Self {
        CgroupSource {
            proc_root: paths.proc.clone(),
            sys_root: paths.sys.clone(),
            cgroup_base: paths.cgroup.clone(),
            target: config.target.clone(),
            limits_dir: config.limits_dir.clone(),
            previous_cpu: HashMap::new(),
            host_paths: HashMap::new(),
        }
    }

    /// One round as of `now`. `collect` passes the monotonic clock; tests
    /// pass instants of their choosing so the utilization ratio is exact.
    ///
    /// The files are read on the blocking pool, each read bounded (see
    /// [`super::fsread`]): a hung read (a `/proc/PID/cmdline` of a process in
    /// uninterruptible sleep, a broken `/sys` file) fails the round instead
    /// of hanging it, and never holds an async worker.
    pub async fn collect_at(&mut self, out: &mut Output, now: Instant) -> Result<(), CollectError> {
        self.round(out, Some(now)).await
    }

    /// One round; without `now`, each cgroup's instant is taken when its
    /// files have just been read, so the time spent resolving targets or
    /// waiting for a blocking thread is not counted as CPU time's interval.
    async fn round(&mut self, out: &mut Output, now: Option<Instant>) -> Result<(), CollectError> {
        let mut worker = self.clone();
        let (round, result, worker) = tokio::task::spawn_blocking(move || {
            let mut round = Output::new();
            let result = worker.collect_blocking(&mut round, now);
            (round, result, worker)
        })
        .await
        .map_err(|e| CollectError::Other(format!("cgroup read task failed: {e}")))?;
        *self = worker;
        out.extend(round);
        result
    }

    fn collect_blocking(
        &mut self,
        out: &mut Output,
        now: Option<Instant>,
    ) -> Result<(), CollectError> {
        let watched = self.resolve()?;
        let machine = limits::machine(&self.proc_root);
        let mut seen = Vec::with_capacity(watched.len());
        let mut failed = Vec::new();
        for target::Watched { container, layout } in watched {
            match self.read_one(out, &container, layout, machine, now) {
                Ok(()) => seen.push(container),
                // A single target's error is the round's, as it was.
                Err(e) => match &container {
                    None => return Err(e),
                    Some(name) => failed.push(format!("container {name}: {e}")),
                },
            }
        }
        self.previous_cpu.retain(|k, _| seen.contains(k));
        if failed.is_empty() {
            Ok(())
        } else {
            // The containers read are published; the round says which
            // were not.
            Err(CollectError::Other(failed.join("; ")))
        }
    }

    /// Reads and emits one watched cgroup.
    fn read_one(
        &mut self,
        out: &mut Output,
        container: &Option<String>,
        layout: Result<Layout, CollectError>,
        machine: limits::Machine,
        now: Option<Instant>,
    ) -> Result<(), CollectError> {
        let mut layout = layout?;
        layout.forget_missing_v2();
        for (what, dir) in layout.dirs() {
            if !super::fsread::is_dir(dir) {
                return Err(CollectError::Other(format!(
                    "{what} cgroup directory {} of cgroup {} does not exist",
                    dir.display(),
                    layout.path
                )));
            }
        }
        let figures = read_figures(&layout)?;
        let now = now.unwrap_or_else(Instant::now);
        let limits = limits::effective(
            layout.cpu.as_ref(),
            layout.memory.as_ref(),
            &figures,
            self.limits_dir.as_deref(),
            machine,
        )?;
        let ratios = self.interval_ratios(container, &layout, &figures, limits.cpu_cores, now);
        let base: Vec<(&str, &str)> = container
            .as_deref()
            .map(|c| ("container", c))
            .into_iter()
            .collect();
        emit(out, &base, &layout, &figures, &limits, ratios);
        Ok(())
    }

    /// Δusage / Δwall / limit and Δthrottled / Δperiods since the previous
    /// round; none on the first round, after the cgroup changed, after a
    /// counter reset, or without a CPU limit.
    fn interval_ratios(
        &mut self,
        key: &Option<String>,
        layout: &Layout,
        f: &Figures,
        limit: Option<(f64, LimitSource)>,
        now: Instant,
    ) -> IntervalRatios {
        let (Some(usage), Some(from)) = (
            f.cpu_usage_seconds,
            layout.cpu_usage.as_ref().map(|l| l.dir.clone()),
        ) else {
            self.previous_cpu.remove(key);
            return IntervalRatios::default();
        };
        let periods = f.cpu_periods.zip(f.cpu_throttled_periods);
        let Some(previous) = self.previous_cpu.insert(
            key.clone(),
            CpuSample {
                from: from.clone(),
                usage_seconds: usage,
                periods,
                at: now,
            },
        ) else {
            return IntervalRatios::default();
        };
        let Some((cores, _)) = limit else {
            return IntervalRatios::default();
        };
        let wall = now
            .checked_duration_since(previous.at)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        if previous.from != from || usage < previous.usage_seconds || wall <= 0.0 {
            return IntervalRatios::default();
        }
        let throttled = match (previous.periods, periods) {
            (Some((p0, t0)), Some((p1, t1))) if p1 >= p0 && t1 >= t0 => {
                // No elapsed period means the cgroup never ran: nothing throttled.
                Some(if p1 == p0 {
                    0.0
                } else {
                    (t1 - t0) as f64 / (p1 - p0) as f64
                })
            }
            _ => None,
        };
        IntervalRatios {
            cpu_utilization: Some((usage - previous.usage_seconds) / wall / cores),
            throttled,
        }
    }
}

impl Source for CgroupSource {
    async fn collect(&mut self, out: &mut Output) -> Result<(), CollectError> {
        self.round(out, None).await
    }
}

fn read_figures(layout: &Layout) -> Result<Figures, CollectError> {
    let mut f = Figures::default();
    if let Some(loc) = &layout.cpu_usage {
        match loc.flavor {
            Flavor::V1 => v1::read_cpu_usage(&loc.dir, &mut f)?,
            Flavor::V2 => v2::read_cpu_usage(&loc.dir, &mut f)?,
        }
    }
    if let Some(loc) = &layout.cpu {
        match loc.flavor {
            Flavor::V1 => v1::read_cpu(&loc.dir, &mut f)?,
            Flavor::V2 => v2::read_cpu(&loc.dir, &mut f)?,
        }
    }
    if let Some(loc) = &layout.memory {
        match loc.flavor {
            Flavor::V1 => v1::read_memory(&loc.dir, &mut f)?,
            Flavor::V2 => v2::read_memory(&loc.dir, &mut f)?,
        }
    }
    if let Some(loc) = &layout.pids {
        // pids.current and pids.max read the same in v1 and v2.
        f.pids_current = read_parsed(&loc.dir.join("pids.current"), parse_u64)?;
        f.pids_limit = read_parsed(&loc.dir.join("pids.max"), parse::parse_max_or_u64)?.flatten();
    }
    if let Some(dir) = &layout.unified {
        for (resource, _, _) in PRESSURE {
            let path = dir.join(format!("{resource}.pressure"));
            if let Some(p) = read_parsed(&path, |t| parse_pressure(t).map_err(|e| parse::err(e.0)))?
            {
                f.pressure.push((resource, p));
            }
        }
    }
    Ok(f)
}

/// One watched cgroup's series; `base` is its `container` label, if any.
fn emit(
    out: &mut Output,
    base: &[(&str, &str)],
    layout: &Layout,
    f: &Figures,
    limits: &Limits,
    ratios: IntervalRatios,
) {
    out.add(
        &INFO,
        &[
            base,
            &[("version", layout.version.label()), ("path", &layout.path)],
        ]
        .concat(),
        1.0,
    );
    let mut add = |desc: &Desc, v: Option<f64>| {
        if let Some(v) = v {
            out.add(desc, base, v);
        }
    };
    add(&CPU_USAGE_SECONDS_TOTAL, f.cpu_usage_seconds);
    add(&CPU_PERIODS_TOTAL, f.cpu_periods.map(|v| v as f64));
    add(
        &CPU_THROTTLED_PERIODS_TOTAL,
        f.cpu_throttled_periods.map(|v| v as f64),
    );
    add(&CPU_THROTTLED_SECONDS_TOTAL, f.cpu_throttled_seconds);
    add(&MEMORY_OOM_EVENTS_TOTAL, f.oom_events.map(|v| v as f64));
    add(&MEMORY_OOM_KILLS_TOTAL, f.oom_kills.map(|v| v as f64));
    for (resource, some, full) in PRESSURE {
        if let Some((_, p)) = f.pressure.iter().find(|(r, _)| *r == resource) {
            add(some, p.some.map(|l| l.total_micros as f64 / 1e6));
            add(full, p.full.map(|l| l.total_micros as f64 / 1e6));
        }
    }

    add(&CPU_LIMIT_CORES, limits.cpu_cores.map(|(c, _)| c));
    add(&CPU_LIMIT_UTILIZATION_RATIO, ratios.cpu_utilization);
    add(&CPU_THROTTLED_RATIO, ratios.throttled);
    add(&MEMORY_USAGE_BYTES, f.memory_usage_bytes.map(|v| v as f64));
    let working_set = f
        .memory_usage_bytes
        .zip(f.memory_inactive_file_bytes)
        .map(|(usage, inactive)| usage.saturating_sub(inactive));
    add(&MEMORY_WORKING_SET_BYTES, working_set.map(|v| v as f64));
    add(&MEMORY_RSS_BYTES, f.memory_rss_bytes.map(|v| v as f64));
    add(
        &MEMORY_LIMIT_BYTES,
        limits.memory_bytes.map(|(b, _)| b as f64),
    );
    add(
        &MEMORY_LIMIT_UTILIZATION_RATIO,
        working_set
            .zip(limits.memory_bytes)
            .map(|(ws, (limit, _))| ws as f64 / limit as f64),
    );
    add(&PIDS_CURRENT, f.pids_current.map(|v| v as f64));
    add(&PIDS_LIMIT, f.pids_limit.map(|v| v as f64));
    for (resource, limit) in [
        ("cpu", limits.cpu_cores.map(|(_, s)| s)),
        ("memory", limits.memory_bytes.map(|(_, s)| s)),
    ] {
        if let Some(source) = limit {
            out.add(
                &LIMIT_SOURCE,
                &[base, &[("resource", resource), ("source", source.label())]].concat(),
                1.0,
            );
        }
    }
}

pub const INFO: Desc = Desc::gauge(
    "vitals_cgroup_info",
    &["version", "path"],
    "The watched cgroup: its path as in /proc/PID/cgroup and the cgroup version of the host (v1, v2, or hybrid: v1 controllers plus a unified cgroup2 mount); always 1.",
);
pub const CPU_USAGE_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_cpu_usage_seconds_total",
    &[],
    "CPU time used by the cgroup, from cgroup v2 cpu.stat usage_usec or cgroup v1 cpuacct.usage.",
);
pub const CPU_PERIODS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_cpu_periods_total",
    &[],
    "CFS enforcement periods that elapsed while the cgroup was runnable, from cpu.stat nr_periods.",
);
pub const CPU_THROTTLED_PERIODS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_cpu_throttled_periods_total",
    &[],
    "CFS periods in which the cgroup was throttled by its CPU limit, from cpu.stat nr_throttled.",
);
pub const CPU_THROTTLED_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_cpu_throttled_seconds_total",
    &[],
    "Time the cgroup spent throttled by its CPU limit, from cgroup v2 cpu.stat throttled_usec or cgroup v1 cpu.stat throttled_time.",
);
pub const MEMORY_OOM_EVENTS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_memory_oom_events_total",
    &[],
    "Times the cgroup hit its memory limit and the OOM killer was invoked, from cgroup v2 memory.events oom (absent on cgroup v1, which has no such counter).",
);
pub const MEMORY_OOM_KILLS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_memory_oom_kills_total",
    &[],
    "Processes in the cgroup killed by the OOM killer, from cgroup v2 memory.events oom_kill or cgroup v1 memory.oom_control oom_kill (Linux 4.13+).",
);
pub const CPU_LIMIT_CORES: Desc = Desc::gauge(
    "vitals_cgroup_cpu_limit_cores",
    &[],
    "Effective CPU limit of the cgroup in cores: the lowest of its own and its ancestors' cgroup v2 cpu.max or cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us, else the downward-API cpu_limit file, else the machine's CPUs from /proc/stat; vitals_cgroup_limit_source says which.",
);
pub const CPU_LIMIT_UTILIZATION_RATIO: Desc = Desc::gauge(
    "vitals_cgroup_cpu_limit_utilization_ratio",
    &[],
    "CPU used by the cgroup over the last sampling interval as a ratio of its effective CPU limit; absent on the first round.",
);
pub const CPU_THROTTLED_RATIO: Desc = Desc::gauge(
    "vitals_cgroup_cpu_throttled_ratio",
    &[],
    "Share of the CFS periods of the last sampling interval in which the cgroup was throttled, from cpu.stat nr_throttled / nr_periods; absent on the first round and without a CPU limit.",
);
pub const MEMORY_USAGE_BYTES: Desc = Desc::gauge(
    "vitals_cgroup_memory_usage_bytes",
    &[],
    "Memory charged to the cgroup, from cgroup v2 memory.current or cgroup v1 memory.usage_in_bytes.",
);
pub const MEMORY_WORKING_SET_BYTES: Desc = Desc::gauge(
    "vitals_cgroup_memory_working_set_bytes",
    &[],
    "Memory usage of the cgroup minus inactive file cache (memory.stat inactive_file, v1 total_inactive_file), at least 0: what the kernel cannot easily reclaim.",
);
pub const MEMORY_RSS_BYTES: Desc = Desc::gauge(
    "vitals_cgroup_memory_rss_bytes",
    &[],
    "Anonymous memory of the cgroup, from cgroup v2 memory.stat anon or cgroup v1 memory.stat total_rss.",
);
pub const MEMORY_LIMIT_BYTES: Desc = Desc::gauge(
    "vitals_cgroup_memory_limit_bytes",
    &[],
    "Effective memory limit of the cgroup: the lowest of its own and its ancestors' cgroup v2 memory.max or cgroup v1 memory.limit_in_bytes (or v1 memory.stat hierarchical_memory_limit), else the downward-API memory_limit file, else MemTotal from /proc/meminfo; vitals_cgroup_limit_source says which.",
);
pub const MEMORY_LIMIT_UTILIZATION_RATIO: Desc = Desc::gauge(
    "vitals_cgroup_memory_limit_utilization_ratio",
    &[],
    "Working set of the cgroup as a ratio of its effective memory limit.",
);
pub const PIDS_CURRENT: Desc = Desc::gauge(
    "vitals_cgroup_pids_current",
    &[],
    "Tasks in the cgroup, from pids.current.",
);
pub const PIDS_LIMIT: Desc = Desc::gauge(
    "vitals_cgroup_pids_limit",
    &[],
    "Task limit of the cgroup, from pids.max; absent when unlimited.",
);
pub const LIMIT_SOURCE: Desc = Desc::gauge(
    "vitals_cgroup_limit_source",
    &["resource", "source"],
    "Where the effective CPU or memory limit of the cgroup comes from: its own limit file (cgroup), a lower limit of an ancestor cgroup such as the pod's (ancestor), the Kubernetes downward-API files in limits_dir (downward_api), or the machine's CPUs and MemTotal from /proc (host); 1 for each limit present.",
);
pub const PRESSURE_CPU_SOME_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_pressure_cpu_some_seconds_total",
    &[],
    "Time in which some tasks of the cgroup were stalled on cpu, from the some total of the cgroup v2 cpu.pressure file.",
);
pub const PRESSURE_CPU_FULL_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_pressure_cpu_full_seconds_total",
    &[],
    "Time in which all non-idle tasks of the cgroup were stalled on cpu, from the full total of the cgroup v2 cpu.pressure file.",
);
pub const PRESSURE_MEMORY_SOME_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_pressure_memory_some_seconds_total",
    &[],
    "Time in which some tasks of the cgroup were stalled on memory, from the some total of the cgroup v2 memory.pressure file.",
);
pub const PRESSURE_MEMORY_FULL_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_pressure_memory_full_seconds_total",
    &[],
    "Time in which all non-idle tasks of the cgroup were stalled on memory, from the full total of the cgroup v2 memory.pressure file.",
);
pub const PRESSURE_IO_SOME_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_pressure_io_some_seconds_total",
    &[],
    "Time in which some tasks of the cgroup were stalled on io, from the some total of the cgroup v2 io.pressure file.",
);
pub const PRESSURE_IO_FULL_SECONDS_TOTAL: Desc = Desc::counter(
    "vitals_cgroup_pressure_io_full_seconds_total",
    &[],
    "Time in which all non-idle tasks of the cgroup were stalled on io, from the full total of the cgroup v2 io.pressure file.",
);

/// The cgroup v2 `<resource>.pressure` file and its some and full families.
const PRESSURE: [(&str, &Desc, &Desc); 3] = [
    (
        "cpu",
        &PRESSURE_CPU_SOME_SECONDS_TOTAL,
        &PRESSURE_CPU_FULL_SECONDS_TOTAL,
    ),
    (
        "memory",
        &PRESSURE_MEMORY_SOME_SECONDS_TOTAL,
        &PRESSURE_MEMORY_FULL_SECONDS_TOTAL,
    ),
    (
        "io",
        &PRESSURE_IO_SOME_SECONDS_TOTAL,
        &PRESSURE_IO_FULL_SECONDS_TOTAL,
    ),
];

/// Every family the cgroup source exports, for `collectors::catalog()`.
pub const METRICS: &[Desc] = &[
    INFO,
    CPU_USAGE_SECONDS_TOTAL,
    CPU_PERIODS_TOTAL,
    CPU_THROTTLED_PERIODS_TOTAL,
    CPU_THROTTLED_SECONDS_TOTAL,
    MEMORY_OOM_EVENTS_TOTAL,
    MEMORY_OOM_KILLS_TOTAL,
    CPU_LIMIT_CORES,
    CPU_LIMIT_UTILIZATION_RATIO,
    CPU_THROTTLED_RATIO,
    MEMORY_USAGE_BYTES,
    MEMORY_WORKING_SET_BYTES,
    MEMORY_RSS_BYTES,
    MEMORY_LIMIT_BYTES,
    MEMORY_LIMIT_UTILIZATION_RATIO,
    PIDS_CURRENT,
    PIDS_LIMIT,
    LIMIT_SOURCE,
    PRESSURE_CPU_SOME_SECONDS_TOTAL,
    PRESSURE_CPU_FULL_SECONDS_TOTAL,
    PRESSURE_MEMORY_SOME_SECONDS_TOTAL,
    PRESSURE_MEMORY_FULL_SECONDS_TOTAL,
    PRESSURE_IO_SOME_SECONDS_TOTAL,
    PRESSURE_IO_FULL_SECONDS_TOTAL,
];

/// The pure parsers, for the property tests and fuzz targets only.
#[doc(hidden)]
pub mod fuzz {
    fn show<T: std::fmt::Debug, E: std::fmt::Debug>(r: Result<T, E>) -> Result<String, String> {
        r.map(|v| format!("{v:?}")).map_err(|e| format!("{e:?}"))
    }

    fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(b)
    }

    /// (name, parser): each takes a file's bytes and returns the parsed
    /// value's Debug text or the error's.
    pub fn parsers() -> Vec<super::super::FuzzParser> {
        vec![
            ("cgroup/mountinfo", |b| {
                show(super::discover::parse_mountinfo(&text(b)))
            }),
            ("cgroup/proc_cgroup", |b| {
                show(super::discover::parse_proc_cgroup(&text(b)))
            }),
            ("cgroup/u64", |b| show(super::parse::parse_u64(&text(b)))),
            ("cgroup/max_or_u64", |b| {
                show(super::parse::parse_max_or_u64(&text(b)))
            }),
            ("cgroup/key_values", |b| {
                show(super::parse::parse_key_values(&text(b)))
            }),
            ("cgroup/v1_cfs_quota", |b| {
                show(super::v1::parse_cfs_quota(&text(b)))
            }),
            ("cgroup/v1_limit_in_bytes", |b| {
                show(super::v1::parse_limit_in_bytes(&text(b)))
            }),
            ("cgroup/v2_cpu_max", |b| {
                show(super::v2::parse_cpu_max(&text(b)))
            }),
        ]
    }
}
