//! The effective CPU and memory limits of the watched cgroup. A cgroup
//! without a limit of its own is still held by its ancestors (the pod cgroup
//! in Kubernetes, `kubepods.slice` at node allocatable) and by the machine,
//! so the ratios and the default checks always have a denominator:
//!
//! 1. the lowest of the cgroup's own limit and its readable ancestors'
//!    (`cgroup` when its own is the lowest, else `ancestor`; cgroup v1's
//!    `memory.stat` hierarchical_memory_limit counts as an ancestor where
//!    the ancestors themselves are out of sight);
//! 2. else the downward-API files in `limits_dir`;
//! 3. else, and as a cap on the above, the machine: online CPUs from
//!    `<proc>/stat`, MemTotal from `<proc>/meminfo`.

use super::discover::{Flavor, Location};
use super::parse::{parse_max_or_u64, parse_u64, ParseError};
use super::{read_parsed, v1, v2, Figures};
use crate::collectors::host::parse_meminfo;
use crate::collectors::CollectError;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LimitSource {
    /// The cgroup's own limit file.
    Cgroup,
    Ancestor,
    DownwardApi,
    Host,
}

impl LimitSource {
    pub(super) fn label(self) -> &'static str {
        match self {
            LimitSource::Cgroup => "cgroup",
            LimitSource::Ancestor => "ancestor",
            LimitSource::DownwardApi => "downward_api",
            LimitSource::Host => "host",
        }
    }
}

pub(super) struct Limits {
    pub(super) cpu_cores: Option<(f64, LimitSource)>,
    pub(super) memory_bytes: Option<(u64, LimitSource)>,
}

/// The machine's size, read once per round.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Machine {
    pub(super) cpus: Option<u64>,
    pub(super) memory_bytes: Option<u64>,
}

/// The number of per-CPU lines (`cpu0`, `cpu1`, ...) of `<proc>/stat`: the
/// online CPUs.
pub(super) fn parse_cpu_count(text: &str) -> Result<u64, ParseError> {
    let n = text
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    match n {
        0 => Err(ParseError::new("no per-CPU line")),
        n => Ok(n as u64),
    }
}

/// The machine's size; a broken `<proc>/stat` or `meminfo` is the host
/// source's failure to report, here it only costs the `host` fallback.
pub(super) fn machine(proc_root: &Path) -> Machine {
    fn lenient<T>(r: Result<Option<T>, CollectError>) -> Option<T> {
        r.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "no machine-size fallback for the cgroup limits");
            None
        })
    }
    Machine {
        cpus: lenient(read_parsed(&proc_root.join("stat"), parse_cpu_count)),
        memory_bytes: lenient(read_parsed(&proc_root.join("meminfo"), parse_meminfo))
            .map(|m| m.total_bytes),
    }
}

/// The lowest limit among `dir`'s ancestors up to the hierarchy's mount.
fn lowest_ancestor<T: PartialOrd + Copy>(
    loc: &Location,
    read: impl Fn(&Path) -> Result<Option<T>, CollectError>,
) -> Result<Option<T>, CollectError> {
    let mut lowest: Option<T> = None;
    for dir in loc.dir.ancestors().skip(1) {
        if !dir.starts_with(&loc.top) {
            break;
        }
        if let Some(v) = read(dir)? {
            lowest = Some(match lowest {
                Some(l) if l <= v => l,
                _ => v,
            });
        }
    }
    Ok(lowest)
}

fn cpu_limit_of(flavor: Flavor, dir: &Path) -> Result<Option<f64>, CollectError> {
    match flavor {
        Flavor::V1 => v1::read_cpu_limit(dir),
        Flavor::V2 => {
            Ok(read_parsed(&dir.join("cpu.max"), v2::parse_cpu_max)?.and_then(|m| m.cores()))
        }
    }
}

fn memory_limit_of(flavor: Flavor, dir: &Path) -> Result<Option<u64>, CollectError> {
    Ok(match flavor {
        Flavor::V1 => read_parsed(&dir.join("memory.limit_in_bytes"), v1::parse_limit_in_bytes)?,
        Flavor::V2 => read_parsed(&dir.join("memory.max"), parse_max_or_u64)?,
    }
    .flatten()
    .filter(|b| *b > 0))
}

/// The own limit against the ancestors': the lower wins, a tie is the
/// cgroup's own.
fn pick<T: PartialOrd + Copy>(own: Option<T>, ancestor: Option<T>) -> Option<(T, LimitSource)> {
    match (own, ancestor) {
        (Some(o), Some(a)) if a < o => Some((a, LimitSource::Ancestor)),
        (Some(o), _) => Some((o, LimitSource::Cgroup)),
        (None, Some(a)) => Some((a, LimitSource::Ancestor)),
        (None, None) => None,
    }
}

/// A limit above the machine is the machine.
fn cap<T: PartialOrd + Copy>(
    limit: Option<(T, LimitSource)>,
    machine: Option<T>,
) -> Option<(T, LimitSource)> {
    match (limit, machine) {
        (Some((l, _)), Some(m)) if m < l => Some((m, LimitSource::Host)),
        (None, Some(m)) => Some((m, LimitSource::Host)),
        (limit, _) => limit,
    }
}

pub(super) fn effective(
    cpu: Option<&Location>,
    memory: Option<&Location>,
    f: &Figures,
    limits_dir: Option<&Path>,
    host: Machine,
) -> Result<Limits, CollectError> {
    let cpu_ancestor = match cpu {
        Some(loc) => lowest_ancestor(loc, |d| cpu_limit_of(loc.flavor, d))?,
        None => None,
    };
    let memory_ancestor = match memory {
        Some(loc) => lowest_ancestor(loc, |d| memory_limit_of(loc.flavor, d))?,
        None => None,
    };
    let hierarchical = f
        .memory_hierarchical_limit_bytes
        .filter(|h| f.memory_limit_bytes.map_or(true, |own| *h < own));
    let memory_ancestor = match (memory_ancestor, hierarchical) {
        (Some(a), Some(h)) => Some(a.min(h)),
        (a, h) => a.or(h),
    };
    let mut cpu_cores = pick(f.cpu_limit_cores, cpu_ancestor);
    let mut memory_bytes = pick(f.memory_limit_bytes, memory_ancestor);
    if let Some(dir) = limits_dir {
        // Kubernetes quirk: for a container without a limit, resourceFieldRef
        // limits.* reports the node's allocatable amount instead; the
        // limit_source series lets users tell the two apart.
        if cpu_cores.is_none() {
            cpu_cores = read_parsed(&dir.join("cpu_limit"), parse_u64)?
                .filter(|m| *m > 0)
                .map(|millicores| (millicores as f64 / 1000.0, LimitSource::DownwardApi));
        }
        if memory_bytes.is_none() {
            memory_bytes = read_parsed(&dir.join("memory_limit"), parse_u64)?
                .filter(|b| *b > 0)
                .map(|bytes| (bytes, LimitSource::DownwardApi));
        }
    }
    Ok(Limits {
        cpu_cores: cap(cpu_cores, host.cpus.map(|c| c as f64)),
        memory_bytes: cap(memory_bytes, host.memory_bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_count_from_proc_stat() {
        // Linux 6.18, this project's 2-CPU test machine (head of /proc/stat).
        let text = "cpu  226148 1207 92651 9093834 3931 0 3079 0 0 0\n\
                    cpu0 113126 603 46377 4546303 1971 0 1801 0 0 0\n\
                    cpu1 113022 604 46274 4547531 1960 0 1278 0 0 0\n\
                    intr 11052379 0 9 0 0\nctxt 20427447\nbtime 1795416728\n";
        assert_eq!(parse_cpu_count(text), Ok(2));
        assert!(parse_cpu_count("cpu  1 2 3\nintr 5\n").is_err());
    }

    #[test]
    fn the_lowest_limit_wins_and_the_machine_caps() {
        use LimitSource::*;
        assert_eq!(pick(Some(2.0), Some(1.0)), Some((1.0, Ancestor)));
        assert_eq!(pick(Some(1.0), Some(1.0)), Some((1.0, Cgroup)));
        assert_eq!(pick(Some(0.5), Some(1.0)), Some((0.5, Cgroup)));
        assert_eq!(pick(None, Some(1.0)), Some((1.0, Ancestor)));
        assert_eq!(pick::<f64>(None, None), None);
        assert_eq!(cap(Some((8.0, Cgroup)), Some(2.0)), Some((2.0, Host)));
        assert_eq!(cap(Some((1.0, Ancestor)), Some(2.0)), Some((1.0, Ancestor)));
        assert_eq!(cap(None, Some(2.0)), Some((2.0, Host)));
        assert_eq!(cap::<f64>(None, None), None);
    }
}
