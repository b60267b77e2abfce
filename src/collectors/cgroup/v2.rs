//! cgroup v2 (unified hierarchy) files: parsers and thin readers.
//! Formats from Documentation/admin-guide/cgroup-v2.rst; the sample contents
//! in the tests are from Linux 6.18 where this machine had them (the unified
//! root's cpu.stat and *.pressure) and written to the documented format
//! otherwise (marked "per cgroup-v2.rst").

use super::parse::{err, parse_key_values, parse_max_or_u64, parse_u64, ParseError};
use super::{read_parsed, Figures};
use crate::collectors::CollectError;
use std::path::Path;

/// `cpu.max`: "$MAX $PERIOD", where $MAX is "max" for no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuMax {
    pub(crate) quota_us: Option<u64>,
    pub(crate) period_us: u64,
}

impl CpuMax {
    /// The limit in cores, `None` when unlimited.
    pub(crate) fn cores(self) -> Option<f64> {
        let quota = self.quota_us?;
        Some(quota as f64 / self.period_us as f64)
    }
}

pub(crate) fn parse_cpu_max(text: &str) -> Result<CpuMax, ParseError> {
    let mut fields = text.split_whitespace();
    let (Some(max), Some(period), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(err(format!(
            "expected \"$MAX $PERIOD\", found {:?}",
            text.trim()
        )));
    };
    let quota_us = parse_max_or_u64(max)?;
    let period_us = parse_u64(period)?;
    if period_us == 0 {
        return Err(err("period is 0"));
    }
    Ok(CpuMax {
        quota_us,
        period_us,
    })
}

/// CPU time from `cpu.stat` usage_usec; the file exists whether or not the
/// cpu controller is enabled, so it also serves hybrid hosts.
pub(crate) fn read_cpu_usage(dir: &Path, f: &mut Figures) -> Result<(), CollectError> {
    if let Some(stat) = read_parsed(&dir.join("cpu.stat"), parse_key_values)? {
        f.cpu_usage_seconds = stat.get("usage_usec").map(|us| us as f64 / 1e6);
    }
    Ok(())
}

/// Limit and throttling: `cpu.max` and the cpu controller's `cpu.stat` keys
/// (present only when the cpu controller is enabled for the cgroup).
pub(crate) fn read_cpu(dir: &Path, f: &mut Figures) -> Result<(), CollectError> {
    if let Some(max) = read_parsed(&dir.join("cpu.max"), parse_cpu_max)? {
        f.cpu_limit_cores = max.cores();
    }
    if let Some(stat) = read_parsed(&dir.join("cpu.stat"), parse_key_values)? {
        f.cpu_periods = stat.get("nr_periods");
        f.cpu_throttled_periods = stat.get("nr_throttled");
        f.cpu_throttled_seconds = stat.get("throttled_usec").map(|us| us as f64 / 1e6);
    }
    Ok(())
}

pub(crate) fn read_memory(dir: &Path, f: &mut Figures) -> Result<(), CollectError> {
    f.memory_usage_bytes = read_parsed(&dir.join("memory.current"), parse_u64)?;
    if let Some(stat) = read_parsed(&dir.join("memory.stat"), parse_key_values)? {
        f.memory_inactive_file_bytes = stat.get("inactive_file");
        f.memory_rss_bytes = stat.get("anon");
    }
    // A limit of 0 is refused as "no usable limit": the contract is that a
    // limit series is never 0, and a ratio against 0 means nothing.
    f.memory_limit_bytes = read_parsed(&dir.join("memory.max"), parse_max_or_u64)?
        .flatten()
        .filter(|&b| b > 0);
    // memory.events counts this cgroup and its descendants (Linux 5.2+;
    // memory.events.local has the cgroup alone).
    if let Some(events) = read_parsed(&dir.join("memory.events"), parse_key_values)? {
        f.oom_events = events.get("oom");
        f.oom_kills = events.get("oom_kill");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max() {
        // per cgroup-v2.rst: "max 100000" is the default (no limit).
        let cases: &[(&str, Option<CpuMax>)] = &[
            (
                "max 100000\n",
                Some(CpuMax {
                    quota_us: None,
                    period_us: 100000,
                }),
            ),
            (
                "20000 100000\n",
                Some(CpuMax {
                    quota_us: Some(20000),
                    period_us: 100000,
                }),
            ),
            (
                "150000 50000\n",
                Some(CpuMax {
                    quota_us: Some(150000),
                    period_us: 50000,
                }),
            ),
            ("max\n", None),
            ("20000 0\n", None),
            ("20000 100000 7\n", None),
            ("-1 100000\n", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_cpu_max(text).ok(), *want, "input {text:?}");
        }
        assert_eq!(parse_cpu_max("20000 100000").unwrap().cores(), Some(0.2));
        assert_eq!(parse_cpu_max("150000 50000").unwrap().cores(), Some(3.0));
        assert_eq!(parse_cpu_max("max 100000").unwrap().cores(), None);
    }

    #[test]
    fn cpu_stat_root_and_limited() {
        // Linux 6.18, cgroup2 root on a hybrid host (cpu controller bound to
        // v1): only the core keys.
        let root = "usage_usec 223129365\nuser_usec 153769475\nsystem_usec 69359889\nnice_usec 0\n";
        let kv = parse_key_values(root).unwrap();
        assert_eq!(kv.get("usage_usec"), Some(223129365));
        assert_eq!(kv.get("nr_periods"), None);
        // per cgroup-v2.rst (Linux 6.x), cpu controller enabled.
        let limited = "usage_usec 14036781\nuser_usec 9036781\nsystem_usec 5000000\n\
                       core_sched.force_idle_usec 0\nnr_periods 3150\nnr_throttled 412\n\
                       throttled_usec 8250000\nnr_bursts 0\nburst_usec 0\n";
        let kv = parse_key_values(limited).unwrap();
        assert_eq!(kv.get("nr_periods"), Some(3150));
        assert_eq!(kv.get("nr_throttled"), Some(412));
        assert_eq!(kv.get("throttled_usec"), Some(8250000));
    }

    #[test]
    fn memory_events() {
        // per cgroup-v2.rst (Linux 6.x): memory.events of an OOM-killed cgroup.
        let text = "low 0\nhigh 0\nmax 57\noom 3\noom_kill 2\noom_group_kill 0\n";
        let kv = parse_key_values(text).unwrap();
        assert_eq!(kv.get("oom"), Some(3));
        assert_eq!(kv.get("oom_kill"), Some(2));
    }
}
