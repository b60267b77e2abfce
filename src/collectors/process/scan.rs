//! Which pids each target matches, and one process's figures.

use super::super::procfs::{self, Matcher, PidRead};
use super::sum::{MaxFds, ProcSample};
use super::{parse, Scanner};
use crate::collectors::CollectError;
use crate::config::ProcessMatch;
use std::path::Path;

impl Scanner {
    /// The pids matching each target, in target order: a pid-file target its
    /// pid, a comm or cmdline target every running process the shared scan
    /// finds (vitals itself and zombies left out).
    pub(super) fn resolve(&self) -> Result<Vec<Vec<u32>>, CollectError> {
        let mut matchers = Vec::new();
        let mut slots = Vec::new();
        let mut matched = vec![Vec::new(); self.targets.len()];
        for (i, target) in self.targets.iter().enumerate() {
            match &target.matcher {
                ProcessMatch::Comm(re) => {
                    matchers.push(Matcher::Comm(&re.0));
                    slots.push(i);
                }
                ProcessMatch::Cmdline(re) => {
                    matchers.push(Matcher::Cmdline(&re.0));
                    slots.push(i);
                }
                ProcessMatch::Pidfile(file) => {
                    if let (Some(pid), Some(list)) =
                        (procfs::read_pidfile(file)?, matched.get_mut(i))
                    {
                        list.push(pid);
                    }
                }
            }
        }
        let found = procfs::scan(&self.proc_root, &matchers)?;
        for (slot, pids) in slots.into_iter().zip(found) {
            if let Some(list) = matched.get_mut(slot) {
                *list = pids;
            }
        }
        Ok(matched)
    }

    /// Reads one process. `None`: it is gone (or a zombie, which is not
    /// running either).
    pub(super) fn sample(&self, pid: u32) -> Result<Option<ProcSample>, CollectError> {
        read_sample(&self.proc_root.join(pid.to_string()))
    }
}

/// Reads the process whose directory is `dir` (`<proc>/<pid>` or
/// `<proc>/self`, for vitals' own footprint). `None`: it is gone, or a zombie
/// (a pid file can name one), which is not running either.
pub(crate) fn read_sample(dir: &Path) -> Result<Option<ProcSample>, CollectError> {
    let Some(stat) = procfs::running_at(dir)? else {
        return Ok(None);
    };
    // VmRSS rather than stat's rss field: on Linux 6.18 stat read 3375
    // pages (13500 kB) while VmRSS read 13552 kB for the same idle
    // process, status summing the per-CPU counters exactly. It is in kB,
    // so no page size is needed either.
    let path = dir.join("status");
    let rss_bytes = match procfs::read_pid_file(&path)? {
        PidRead::Data(bytes) => parse::parse_status_rss(&String::from_utf8_lossy(&bytes))
            .map_err(|e| CollectError::parse(&path, e.0))?,
        PidRead::Gone => return Ok(None),
        PidRead::Denied(e) => return Err(CollectError::io(&path, e)),
    };
    let path = dir.join("limits");
    let max_fds = match procfs::read_pid_file(&path)? {
        PidRead::Data(bytes) => {
            match parse::parse_max_open_files(&String::from_utf8_lossy(&bytes))
                .map_err(|e| CollectError::parse(&path, e.0))?
            {
                Some(limit) => MaxFds::Limit(limit),
                None => MaxFds::Unlimited,
            }
        }
        PidRead::Gone => return Ok(None),
        PidRead::Denied(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "limits not readable; no max_fds");
            MaxFds::Unknown
        }
    };
    let open_fds = match count_fds(&dir.join("fd"))? {
        PidRead::Data(n) => Some(n),
        PidRead::Gone => return Ok(None),
        PidRead::Denied(e) => {
            // Another user's process without CAP_SYS_PTRACE.
            tracing::debug!(dir = %dir.display(), error = %e, "fd directory not readable; no open_fds");
            None
        }
    };
    Ok(Some(ProcSample {
        cpu_ticks: stat.utime.saturating_add(stat.stime),
        virtual_bytes: stat.vsize,
        // No VmRSS line: a kernel thread, which has no user memory.
        rss_bytes: rss_bytes.unwrap_or(0),
        threads: stat.num_threads,
        start_ticks: stat.starttime,
        open_fds,
        max_fds,
    }))
}

fn count_fds(dir: &Path) -> Result<PidRead<u64>, CollectError> {
    match crate::collectors::fsread::read_dir(dir) {
        Ok(entries) => Ok(PidRead::Data(entries.len() as u64)),
        Err(e) => procfs::classify(dir, e),
    }
}
