//! Named target processes: `sources.processes`.
//!
//! Each target (`{name, match: {comm: RE} | {cmdline: RE} | {pidfile: F}}`)
//! is resolved every round against `<paths.proc>`: a regex target scans the
//! numeric directories, a pid-file target reads its pid. All processes that
//! match a target are summed into one set of series labelled
//! `process="<name>"`:
//!
//! | metric                                   | type    | from                                   |
//! |------------------------------------------|---------|----------------------------------------|
//! | `vitals_process_up`                      | gauge   | 1 if anything matched, else 0          |
//! | `vitals_process_count`                   | gauge   | number of matching processes           |
//! | `vitals_process_cpu_seconds_total`       | counter | `stat` utime + stime                   |
//! | `vitals_process_resident_memory_bytes`   | gauge   | `status` VmRSS                         |
//! | `vitals_process_threads`                 | gauge   | `stat` num_threads                     |
//! | `vitals_process_open_fds`                | gauge   | entries of `fd/`                       |
//! | `vitals_process_max_fds`                 | gauge   | `limits` soft "Max open files" (min)   |
//! | `vitals_process_start_time_seconds`      | gauge   | `stat` starttime + `<proc>/stat` btime |
//!
//! A target that matches nothing is `up 0` with no other series; that is
//! data, not a failure. Zombies are not running and never match; vitals
//! itself is left out of comm/cmdline matching (it is not the application).
//! A process that exits while we read it is skipped silently.
//!
//! The reading runs on tokio's blocking pool: reading `/proc/PID/cmdline`
//! takes the target's mmap lock and can block while that process is stuck,
//! which must not stall the runtime or defeat the round's timeout.
//!
//! | file       | what                                                        |
//! |------------|-------------------------------------------------------------|
//! | `scan.rs`  | which pids each target matches, and one process's figures   |
//! | `parse.rs` | the pure parsers of `status`, `limits` and `<proc>/stat`     |
//! | `sum.rs`   | a target's processes summed into one set of figures          |
//! | `emit.rs`  | the series, and their `Desc` table `METRICS`                 |
//!
//! Listing, comm, cmdline, stat and pid files come from the shared
//! [`super::procfs`] toolkit, which the cgroup source uses too.

mod emit;
mod parse;
mod scan;
mod sum;
#[cfg(test)]
mod tests;

pub use emit::METRICS;
pub use parse::fuzz;
// vitals' own footprint (`super::footprint`) reads `<proc>/self` with these.
pub(crate) use parse::parse_btime;
pub(crate) use scan::read_sample;
pub(crate) use sum::{MaxFds, ProcSample};

use super::{CollectError, Source};
use crate::config::{Paths, ProcessConfig};
use crate::metrics::Output;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use sum::aggregate;

pub struct ProcessSource {
    inner: Arc<Scanner>,
}

impl ProcessSource {
    pub fn new(paths: &Paths, targets: &[ProcessConfig]) -> Self {
        let ticks = ::procfs::ticks_per_second();
        // USER_HZ is 100 on every architecture Linux supports today; never
        // divide by a zero sysconf answer.
        let ticks_per_second = if ticks == 0 { 100 } else { ticks };
        ProcessSource {
            inner: Arc::new(Scanner::new(paths, targets, ticks_per_second)),
        }
    }
}

impl Source for ProcessSource {
    async fn collect(&mut self, out: &mut Output) -> Result<(), CollectError> {
        let scanner = Arc::clone(&self.inner);
        let round = tokio::task::spawn_blocking(move || scanner.collect())
            .await
            .map_err(|e| CollectError::Other(format!("process scan task failed: {e}")))??;
        out.extend(round);
        Ok(())
    }
}

/// Everything a round needs; shared with the blocking task.
struct Scanner {
    proc_root: PathBuf,
    targets: Vec<ProcessConfig>,
    ticks_per_second: u64,
}

impl Scanner {
    fn new(paths: &Paths, targets: &[ProcessConfig], ticks_per_second: u64) -> Self {
        Scanner {
            proc_root: paths.proc.clone(),
            targets: targets.to_vec(),
            ticks_per_second,
        }
    }

    fn collect(&self) -> Result<Output, CollectError> {
        let matched = self.resolve()?;
        // One pid can match several targets: read it once per round.
        let mut samples: HashMap<u32, Option<ProcSample>> = HashMap::new();
        let mut figures = Vec::with_capacity(self.targets.len());
        for pids in &matched {
            let mut found = Vec::with_capacity(pids.len());
            for &pid in pids {
                let sample = match samples.get(&pid) {
                    Some(s) => s.clone(),
                    None => {
                        let s = self.sample(pid)?;
                        samples.insert(pid, s.clone());
                        s
                    }
                };
                found.extend(sample);
            }
            figures.push(aggregate(&found));
        }
        let btime = if figures.iter().any(Option::is_some) {
            let path = self.proc_root.join("stat");
            let text = super::read_required(&path)?;
            Some(parse::parse_btime(&text).map_err(|e| CollectError::parse(&path, e.0))?)
        } else {
            None
        };
        let mut out = Output::new();
        for (target, figures) in self.targets.iter().zip(&figures) {
            emit::write(
                &mut out,
                &target.name,
                figures.as_ref(),
                btime,
                self.ticks_per_second,
            );
        }
        Ok(out)
    }
}
