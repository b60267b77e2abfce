//! cgroup v1 files: parsers and thin readers. Formats from
//! Documentation/admin-guide/cgroup-v1/{memory,cpuacct}.rst and
//! Documentation/scheduler/sched-bwc.rst; sample contents in the tests are
//! from Linux 6.18 (this project's hybrid test machine) unless marked.

use super::parse::{err, parse_key_values, parse_u64, ParseError};
use super::{read_parsed, Figures};
use crate::collectors::CollectError;
use std::path::Path;

/// From this value up, `memory.limit_in_bytes` means "no limit": the kernel
/// shows PAGE_COUNTER_MAX * page size, 9223372036854771712 with 4 KiB pages
/// on 64-bit (other page sizes give other values near 2^63).
const V1_UNLIMITED_FROM: u64 = 1 << 62;

/// `cpu.cfs_quota_us`: microseconds per period, -1 for no limit.
pub(crate) fn parse_cfs_quota(text: &str) -> Result<Option<u64>, ParseError> {
    let value = text.trim();
    match value.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(q) if q > 0 => Ok(Some(q.unsigned_abs())),
        _ => Err(err(format!(
            "expected a positive quota or -1, found {value:?}"
        ))),
    }
}

/// `memory.limit_in_bytes`; `None` when unlimited.
pub(crate) fn parse_limit_in_bytes(text: &str) -> Result<Option<u64>, ParseError> {
    let bytes = parse_u64(text)?;
    Ok((bytes > 0 && bytes < V1_UNLIMITED_FROM).then_some(bytes))
}

/// CPU time from `cpuacct.usage` (nanoseconds).
pub(crate) fn read_cpu_usage(dir: &Path, f: &mut Figures) -> Result<(), CollectError> {
    f.cpu_usage_seconds =
        read_parsed(&dir.join("cpuacct.usage"), parse_u64)?.map(|ns| ns as f64 / 1e9);
    Ok(())
}

/// The CFS bandwidth limit in cores, `None` when unlimited.
pub(crate) fn read_cpu_limit(dir: &Path) -> Result<Option<f64>, CollectError> {
    let quota = read_parsed(&dir.join("cpu.cfs_quota_us"), parse_cfs_quota)?.flatten();
    let period = read_parsed(&dir.join("cpu.cfs_period_us"), parse_u64)?;
    Ok(match (quota, period) {
        (Some(q), Some(p)) if p > 0 => Some(q as f64 / p as f64),
        _ => None,
    })
}

/// CFS bandwidth limit and throttling from the cpu controller.
pub(crate) fn read_cpu(dir: &Path, f: &mut Figures) -> Result<(), CollectError> {
    f.cpu_limit_cores = read_cpu_limit(dir)?;
    if let Some(stat) = read_parsed(&dir.join("cpu.stat"), parse_key_values)? {
        f.cpu_periods = stat.get("nr_periods");
        f.cpu_throttled_periods = stat.get("nr_throttled");
        f.cpu_throttled_seconds = stat.get("throttled_time").map(|ns| ns as f64 / 1e9);
    }
    Ok(())
}

pub(crate) fn read_memory(dir: &Path, f: &mut Figures) -> Result<(), CollectError> {
    f.memory_usage_bytes = read_parsed(&dir.join("memory.usage_in_bytes"), parse_u64)?;
    if let Some(stat) = read_parsed(&dir.join("memory.stat"), parse_key_values)? {
        // total_* include descendants, matching usage_in_bytes.
        f.memory_inactive_file_bytes = stat
            .get("total_inactive_file")
            .or_else(|| stat.get("inactive_file"));
        f.memory_rss_bytes = stat.get("total_rss").or_else(|| stat.get("rss"));
        // The lowest limit of the cgroup and its ancestors, readable even
        // where a cgroup namespace hides the ancestors themselves.
        f.memory_hierarchical_limit_bytes = stat
            .get("hierarchical_memory_limit")
            .filter(|b| *b > 0 && *b < V1_UNLIMITED_FROM);
    }
    f.memory_limit_bytes =
        read_parsed(&dir.join("memory.limit_in_bytes"), parse_limit_in_bytes)?.flatten();
    // memory.oom_control has `oom_kill N` since Linux 4.13. v1 has no counter
    // of OOM events: `under_oom` is a 0/1 state and memory.failcnt counts
    // hits of the limit (reclaim), not OOMs, so oom_events stays absent.
    if let Some(oom) = read_parsed(&dir.join("memory.oom_control"), parse_key_values)? {
        f.oom_kills = oom.get("oom_kill");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfs_quota() {
        // Linux 6.18: an unlimited cgroup shows -1; 20000 is 0.2 cores at the
        // default 100000 period.
        let cases: &[(&str, Result<Option<u64>, ()>)] = &[
            ("-1\n", Ok(None)),
            ("20000\n", Ok(Some(20000))),
            ("0\n", Err(())),
            ("-2\n", Err(())),
            ("max\n", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(
                &parse_cfs_quota(text).map_err(|_| ()),
                want,
                "input {text:?}"
            );
        }
    }

    #[test]
    fn limit_in_bytes() {
        let cases: &[(&str, Result<Option<u64>, ()>)] = &[
            // Linux 6.18, x86_64, 4 KiB pages: the "unlimited" value.
            ("9223372036854771712\n", Ok(None)),
            // 64 KiB pages (arm64/ppc64le) give a different "unlimited" value.
            ("9223372036854710272\n", Ok(None)),
            ("67108864\n", Ok(Some(67108864))),
            ("0\n", Ok(None)),
            ("lots\n", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(
                &parse_limit_in_bytes(text).map_err(|_| ()),
                want,
                "input {text:?}"
            );
        }
    }

    #[test]
    fn cpu_stat_and_oom_control() {
        // Linux 6.18, cgroup v1 cpu.stat (nr_bursts/burst_time since 5.14).
        let stat = "nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n";
        let kv = parse_key_values(stat).unwrap();
        assert_eq!(kv.get("throttled_time"), Some(0));
        assert_eq!(kv.get("nr_periods"), Some(0));
        // Linux 6.18, memory.oom_control.
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n";
        assert_eq!(parse_key_values(oom).unwrap().get("oom_kill"), Some(0));
        // Before Linux 4.13 there is no oom_kill line: no data, not 0.
        let old = "oom_kill_disable 0\nunder_oom 0\n";
        assert_eq!(parse_key_values(old).unwrap().get("oom_kill"), None);
    }
}
