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

use super::{CollectError, Source};
use crate::config::{Paths, ProcessConfig, ProcessMatch};
use crate::metrics::{Desc, Output};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct ProcessSource {
    inner: Arc<Scanner>,
}

impl ProcessSource {
    pub fn new(paths: &Paths, targets: &[ProcessConfig]) -> Self {
        let ticks = procfs::ticks_per_second();
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
    /// vitals' own pid as seen in `proc_root` (from its `self` link, so it is
    /// right when a host /proc is mounted into a container); `None` for a
    /// tree without `self`, e.g. a fixture.
    own_pid: Option<u32>,
    ticks_per_second: u64,
}

impl Scanner {
    fn new(paths: &Paths, targets: &[ProcessConfig], ticks_per_second: u64) -> Self {
        let self_link = paths.proc.join("self");
        let own_pid = match std::fs::read_link(&self_link) {
            Ok(target) => target.to_str().and_then(|s| s.parse().ok()),
            Err(e) => {
                tracing::debug!(path = %self_link.display(), error = %e, "no self link; vitals' own pid is not excluded");
                None
            }
        };
        Scanner {
            proc_root: paths.proc.clone(),
            targets: targets.to_vec(),
            own_pid,
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
            Some(parse_btime(&text).map_err(|e| CollectError::parse(&path, e.0))?)
        } else {
            None
        };
        let mut out = Output::new();
        for (target, figures) in self.targets.iter().zip(&figures) {
            self.write(&mut out, &target.name, figures.as_ref(), btime);
        }
        Ok(out)
    }

    /// The pids matching each target, in target order.
    fn resolve(&self) -> Result<Vec<Vec<u32>>, CollectError> {
        let mut matched = vec![Vec::new(); self.targets.len()];
        let need_comm = self
            .targets
            .iter()
            .any(|t| matches!(t.matcher, ProcessMatch::Comm(_)));
        let need_cmdline = self
            .targets
            .iter()
            .any(|t| matches!(t.matcher, ProcessMatch::Cmdline(_)));
        for (i, target) in self.targets.iter().enumerate() {
            if let ProcessMatch::Pidfile(file) = &target.matcher {
                if let Some(pid) = read_pidfile(file)? {
                    if let Some(list) = matched.get_mut(i) {
                        list.push(pid);
                    }
                }
            }
        }
        if !(need_comm || need_cmdline) {
            return Ok(matched);
        }
        for pid in self.list_pids()? {
            if Some(pid) == self.own_pid {
                continue;
            }
            let dir = self.proc_root.join(pid.to_string());
            let comm = if need_comm {
                match read_pid_file(&dir.join("comm"))? {
                    PidRead::Data(bytes) => Some(parse_comm(&bytes)),
                    PidRead::Gone => continue,
                    PidRead::Denied(e) => {
                        tracing::debug!(pid, error = %e, "comm not readable; process skipped");
                        continue;
                    }
                }
            } else {
                None
            };
            let cmdline = if need_cmdline {
                match read_pid_file(&dir.join("cmdline"))? {
                    PidRead::Data(bytes) => Some(parse_cmdline(&bytes)),
                    PidRead::Gone => continue,
                    PidRead::Denied(e) => {
                        tracing::debug!(pid, error = %e, "cmdline not readable; process skipped");
                        continue;
                    }
                }
            } else {
                None
            };
            for (target, list) in self.targets.iter().zip(matched.iter_mut()) {
                let hit = match &target.matcher {
                    ProcessMatch::Comm(re) => comm.as_deref().is_some_and(|c| re.0.is_match(c)),
                    ProcessMatch::Cmdline(re) => {
                        cmdline.as_deref().is_some_and(|c| re.0.is_match(c))
                    }
                    ProcessMatch::Pidfile(_) => false,
                };
                if hit {
                    list.push(pid);
                }
            }
        }
        Ok(matched)
    }

    /// Numeric entries of the proc root: one per process (threads are not
    /// listed, only reachable by name).
    fn list_pids(&self) -> Result<Vec<u32>, CollectError> {
        let root = &self.proc_root;
        let entries = std::fs::read_dir(root).map_err(|e| CollectError::io(root, e))?;
        let mut pids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| CollectError::io(root, e))?;
            if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }

    /// Reads one process. `None`: it is gone (or a zombie, which is not
    /// running either).
    fn sample(&self, pid: u32) -> Result<Option<ProcSample>, CollectError> {
        read_sample(&self.proc_root.join(pid.to_string()))
    }

    fn write(&self, out: &mut Output, name: &str, figures: Option<&Figures>, btime: Option<u64>) {
        let labels = [("process", name)];
        out.add(&UP, &labels, if figures.is_some() { 1.0 } else { 0.0 });
        let Some(f) = figures else {
            return;
        };
        let hz = self.ticks_per_second;
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
}

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

/// Reads the process whose directory is `dir` (`<proc>/<pid>` or
/// `<proc>/self`). `None`: it is gone (or a zombie, which is not running
/// either).
pub(crate) fn read_sample(dir: &Path) -> Result<Option<ProcSample>, CollectError> {
    let Some(stat) = read_parsed(&dir.join("stat"), parse_stat)? else {
        return Ok(None);
    };
    // 'Z' zombie, 'X' dead; 'x' is dead on Linux 2.6.33 to 3.13.
    if matches!(stat.state, 'Z' | 'X' | 'x') {
        tracing::debug!(dir = %dir.display(), state = %stat.state, "process is dead; not counted");
        return Ok(None);
    }
    // VmRSS rather than stat's rss field: on Linux 6.18 stat read 3375
    // pages (13500 kB) while VmRSS read 13552 kB for the same idle
    // process, status summing the per-CPU counters exactly. It is in kB,
    // so no page size is needed either.
    let Some(rss_bytes) = read_parsed(&dir.join("status"), parse_status_rss)? else {
        return Ok(None);
    };
    let path = dir.join("limits");
    let max_fds = match read_pid_file(&path)? {
        PidRead::Data(bytes) => match parse_max_open_files(&String::from_utf8_lossy(&bytes))
            .map_err(|e| CollectError::parse(&path, e.0))?
        {
            Some(limit) => MaxFds::Limit(limit),
            None => MaxFds::Unlimited,
        },
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

/// One process's figures, in the kernel's units.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProcSample {
    pub(crate) cpu_ticks: u64,
    pub(crate) rss_bytes: u64,
    /// Virtual memory size, stat's vsize.
    pub(crate) virtual_bytes: u64,
    pub(crate) threads: u64,
    pub(crate) start_ticks: u64,
    /// `None`: the fd directory could not be read.
    pub(crate) open_fds: Option<u64>,
    pub(crate) max_fds: MaxFds,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum MaxFds {
    Limit(u64),
    Unlimited,
    /// limits could not be read.
    Unknown,
}

/// One target's figures: all its processes together.
#[derive(Clone, Debug, PartialEq)]
struct Figures {
    count: u64,
    cpu_ticks: u64,
    rss_bytes: u64,
    threads: u64,
    oldest_start_ticks: u64,
    /// Absent unless every process's fd directory was read: a partial sum
    /// would look like a drop.
    open_fds: Option<u64>,
    /// The lowest soft limit; absent when all are unlimited or one is unknown.
    max_fds: Option<u64>,
}

/// Sums a target's processes; `None` when there are none (`up 0`).
fn aggregate(samples: &[ProcSample]) -> Option<Figures> {
    let first = samples.first()?;
    let mut f = Figures {
        count: 0,
        cpu_ticks: 0,
        rss_bytes: 0,
        threads: 0,
        oldest_start_ticks: first.start_ticks,
        open_fds: Some(0),
        max_fds: None,
    };
    let mut max_known = true;
    for s in samples {
        f.count += 1;
        f.cpu_ticks = f.cpu_ticks.saturating_add(s.cpu_ticks);
        f.rss_bytes = f.rss_bytes.saturating_add(s.rss_bytes);
        f.threads = f.threads.saturating_add(s.threads);
        f.oldest_start_ticks = f.oldest_start_ticks.min(s.start_ticks);
        f.open_fds = match (f.open_fds, s.open_fds) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            _ => None,
        };
        match s.max_fds {
            MaxFds::Limit(l) => f.max_fds = Some(f.max_fds.map_or(l, |m| m.min(l))),
            MaxFds::Unlimited => {}
            MaxFds::Unknown => max_known = false,
        }
    }
    if !max_known {
        f.max_fds = None;
    }
    Some(f)
}

/// Reads and parses a file of one process that must be readable; `None`
/// when the process is gone.
fn read_parsed<T>(
    path: &Path,
    parse: fn(&str) -> Result<T, ParseError>,
) -> Result<Option<T>, CollectError> {
    match read_pid_file(path)? {
        PidRead::Data(bytes) => parse(&String::from_utf8_lossy(&bytes))
            .map(Some)
            .map_err(|e| CollectError::parse(path, e.0)),
        PidRead::Gone => Ok(None),
        PidRead::Denied(e) => Err(CollectError::io(path, e)),
    }
}

/// What reading a file of one process gave.
enum PidRead<T> {
    Data(T),
    /// The process exited between listing and reading: normal, skipped.
    Gone,
    /// Not ours to read (another user's fds, hidepid).
    Denied(io::Error),
}

/// ESRCH on Linux: a /proc/PID file read after the process was reaped.
const ESRCH: i32 = 3;

fn classify<T>(path: &Path, e: io::Error) -> Result<PidRead<T>, CollectError> {
    if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(ESRCH) {
        Ok(PidRead::Gone)
    } else if e.kind() == io::ErrorKind::PermissionDenied {
        Ok(PidRead::Denied(e))
    } else {
        Err(CollectError::io(path, e))
    }
}

fn read_pid_file(path: &Path) -> Result<PidRead<Vec<u8>>, CollectError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(PidRead::Data(bytes)),
        Err(e) => classify(path, e),
    }
}

fn count_fds(dir: &Path) -> Result<PidRead<u64>, CollectError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return classify(dir, e),
    };
    let mut n = 0u64;
    for entry in entries {
        match entry {
            Ok(_) => n += 1,
            Err(e) => return classify(dir, e),
        }
    }
    Ok(PidRead::Data(n))
}

/// The pid in a pid file; `None` when the file is absent or empty (the
/// service is stopped, or is starting and has not written it yet).
fn read_pidfile(path: &Path) -> Result<Option<u32>, CollectError> {
    let Some(text) = super::read_optional(path)? else {
        return Ok(None);
    };
    let pid = parse_pidfile(&text).map_err(|e| CollectError::parse(path, e.0))?;
    if pid.is_none() {
        tracing::debug!(path = %path.display(), "pid file is empty; target not running");
    }
    Ok(pid)
}

/// Why a file's contents could not be understood.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

/// The fields of `/proc/PID/stat` this source uses.
#[derive(Debug, PartialEq, Eq)]
struct PidStat {
    comm: String,
    state: char,
    utime: u64,
    stime: u64,
    num_threads: u64,
    starttime: u64,
    vsize: u64,
}

/// Parses `/proc/PID/stat`. The comm in parentheses may itself hold spaces
/// and `)`, so the fields start after the LAST `)`.
fn parse_stat(text: &str) -> Result<PidStat, ParseError> {
    let text = text.trim_end();
    let open = text
        .find('(')
        .ok_or_else(|| ParseError("no '(' before the command name".into()))?;
    let close = text
        .rfind(')')
        .filter(|&c| c > open)
        .ok_or_else(|| ParseError("no ')' after the command name".into()))?;
    let comm = text.get(open + 1..close).unwrap_or_default().to_owned();
    let rest: Vec<&str> = text
        .get(close + 1..)
        .unwrap_or_default()
        .split_ascii_whitespace()
        .collect();
    // rest[0] is field 3 (state) in proc(5) numbering.
    let field = |n: usize, name: &str| -> Result<u64, ParseError> {
        let raw = rest
            .get(n - 3)
            .ok_or_else(|| ParseError(format!("line ends before field {n} ({name})")))?;
        raw.parse()
            .map_err(|_| ParseError(format!("field {n} ({name}) is {raw:?}, not a count")))
    };
    let state = rest
        .first()
        .and_then(|s| s.chars().next())
        .ok_or_else(|| ParseError("no state after the command name".into()))?;
    Ok(PidStat {
        comm,
        state,
        utime: field(14, "utime")?,
        stime: field(15, "stime")?,
        num_threads: field(20, "num_threads")?,
        starttime: field(22, "starttime")?,
        vsize: field(23, "vsize")?,
    })
}

/// VmRSS from `/proc/PID/status`, in bytes; `None` when the line is absent
/// (kernel threads and zombies have no memory map).
fn parse_status_rss(text: &str) -> Result<Option<u64>, ParseError> {
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("VmRSS:")) else {
        return Ok(None);
    };
    let mut words = line.split_whitespace();
    let (Some(value), Some("kB"), None) = (words.next(), words.next(), words.next()) else {
        return Err(ParseError(format!("VmRSS line {line:?} is not 'N kB'")));
    };
    let kib: u64 = value
        .parse()
        .map_err(|_| ParseError(format!("VmRSS value {value:?} is not a number")))?;
    Ok(Some(kib.saturating_mul(1024)))
}

/// The soft limit of "Max open files" in `/proc/PID/limits`; `None` when it
/// is "unlimited".
fn parse_max_open_files(text: &str) -> Result<Option<u64>, ParseError> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .ok_or_else(|| ParseError("no 'Max open files' line".into()))?;
    let soft = line
        .split_whitespace()
        .next()
        .ok_or_else(|| ParseError("'Max open files' has no soft limit".into()))?;
    if soft == "unlimited" {
        return Ok(None);
    }
    soft.parse()
        .map(Some)
        .map_err(|_| ParseError(format!("soft 'Max open files' {soft:?} is not a number")))
}

/// `btime` (boot time, unix seconds) from `<proc>/stat`.
pub(crate) fn parse_btime(text: &str) -> Result<u64, ParseError> {
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .ok_or_else(|| ParseError("no btime line".into()))?
        .trim();
    value
        .parse()
        .map_err(|_| ParseError(format!("btime {value:?} is not a number")))
}

/// `/proc/PID/comm` without its newline.
fn parse_comm(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.strip_suffix('\n').unwrap_or(&text).to_owned()
}

/// `/proc/PID/cmdline` with its NUL separators as spaces. Trailing NULs go
/// first: some programs that rewrite their title pad it with them.
fn parse_cmdline(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let args = bytes.get(..end).unwrap_or_default();
    String::from_utf8_lossy(args).replace('\0', " ")
}

/// The pid on the first line of a pid file (PostgreSQL's `postmaster.pid`
/// has more lines after it); `None` when empty.
fn parse_pidfile(text: &str) -> Result<Option<u32>, ParseError> {
    let first = text.lines().next().unwrap_or_default().trim();
    if first.is_empty() {
        return Ok(None);
    }
    match first.parse::<u32>() {
        Ok(0) | Err(_) => Err(ParseError(format!("{first:?} is not a process id"))),
        Ok(pid) => Ok(Some(pid)),
    }
}

/// The pure parsers, for the property tests and fuzz targets only.
#[doc(hidden)]
pub mod fuzz {
    fn show<T: std::fmt::Debug, E: std::fmt::Debug>(r: Result<T, E>) -> Result<String, String> {
        r.map(|v| format!("{v:?}")).map_err(|e| format!("{e:?}"))
    }

    /// (name, parser): each takes a file's bytes and returns the parsed
    /// value's Debug text or the error's.
    pub fn parsers() -> Vec<super::super::FuzzParser> {
        vec![
            ("process/stat", |b| {
                show(super::parse_stat(&String::from_utf8_lossy(b)))
            }),
            ("process/status", |b| {
                show(super::parse_status_rss(&String::from_utf8_lossy(b)))
            }),
            ("process/limits", |b| {
                show(super::parse_max_open_files(&String::from_utf8_lossy(b)))
            }),
            ("process/btime", |b| {
                show(super::parse_btime(&String::from_utf8_lossy(b)))
            }),
            ("process/comm", |b| Ok(super::parse_comm(b))),
            ("process/cmdline", |b| Ok(super::parse_cmdline(b))),
            ("process/pidfile", |b| {
                show(super::parse_pidfile(&String::from_utf8_lossy(b)))
            }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::fs;

    // Real files captured on Linux 6.18 (Debian 12 userland, x86_64) from
    // processes started for the purpose; they are also the fixture tree
    // under tests/fixtures/process/proc.
    const STAT_PYTHON_4_THREADS: &str = "12177 (python3) S 12136 12128 6056 0 -1 4194304 2184 0 0 0 65 1 0 0 20 0 4 0 310485 243515392 3375 18446744073709551615 94367600619520 94367600619861 140726719460528 0 0 0 0 16781312 2 0 0 0 17 1 0 0 0 0 0 94367600631216 94367600631832 94367655542784 140726719461640 140726719461666 140726719461666 140726719463375 0\n";
    // `sleep` copied to a file named "a) b (c": the comm holds ") " and "(".
    const STAT_TRICKY_COMM: &str = "12182 (a) b (c) S 12136 12128 6056 0 -1 4194304 308 0 0 0 0 0 0 0 20 0 1 0 310536 2990080 425 18446744073709551615 94589649494016 94589649511945 140723159976672 0 0 0 0 0 0 1 0 0 17 0 0 0 0 0 0 94589649526032 94589649527296 94590017339392 140723159984430 140723159984447 140723159984447 140723159986156 0\n";
    const STAT_ZOMBIE: &str = "12183 (python3) Z 12136 12128 6056 0 -1 4227148 222 0 0 0 0 0 0 0 20 0 1 0 310536 0 0 18446744073709551615 0 0 0 0 0 0 0 16781312 2 1 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
    const STAT_KTHREADD: &str = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 25 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    fn fixture(rel: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/process/proc")
            .join(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn stat_lines_parse() {
        let cases = [
            // (line, comm, state, utime, stime, num_threads, starttime, vsize)
            (
                STAT_PYTHON_4_THREADS,
                "python3",
                'S',
                65,
                1,
                4,
                310485,
                243515392,
            ),
            (STAT_TRICKY_COMM, "a) b (c", 'S', 0, 0, 1, 310536, 2990080),
            (STAT_ZOMBIE, "python3", 'Z', 0, 0, 1, 310536, 0),
            (STAT_KTHREADD, "kthreadd", 'S', 0, 0, 1, 25, 0),
        ];
        for (line, comm, state, utime, stime, num_threads, starttime, vsize) in cases {
            assert_eq!(
                parse_stat(line),
                Ok(PidStat {
                    comm: comm.into(),
                    state,
                    utime,
                    stime,
                    num_threads,
                    starttime,
                    vsize,
                }),
                "{line}"
            );
        }
    }

    #[test]
    fn broken_stat_lines_are_errors_not_panics() {
        let cases = [
            ("", "no '('"),
            ("12177 python3 S 1 2", "no '('"),
            ("12177 (python3", "no ')'"),
            (")12177 (python3", "no ')'"),
            ("12177 (python3)", "no state"),
            // Cut after num_threads (field 20).
            (
                "12177 (python3) S 12136 12128 6056 0 -1 4194304 2184 0 0 0 65 1 0 0 20 0 4",
                "field 22 (starttime)",
            ),
            (
                "12177 (python3) S 12136 12128 6056 0 -1 4194304 2184 0 0 0 -65 1 0 0 20 0 4 0 310485",
                "field 14 (utime) is \"-65\"",
            ),
        ];
        for (line, want) in cases {
            let err = parse_stat(line).expect_err(line);
            assert!(err.0.contains(want), "{line:?}: {}", err.0);
        }
    }

    #[test]
    fn status_rss() {
        // 13552 kB of a python3, Linux 6.18.
        assert_eq!(
            parse_status_rss(&fixture("12177/status")),
            Ok(Some(13552 * 1024))
        );
        // Kernel threads and zombies have no VmRSS line.
        assert_eq!(parse_status_rss(&fixture("2/status")), Ok(None));
        assert_eq!(parse_status_rss(&fixture("12183/status")), Ok(None));
        assert!(parse_status_rss("VmRSS:\t    lots kB\n").is_err());
        assert!(parse_status_rss("VmRSS:\t    1808\n").is_err());
        assert!(parse_status_rss("VmRSS:\t    1808 MB\n").is_err());
    }

    #[test]
    fn limits_soft_open_files() {
        assert_eq!(
            parse_max_open_files(&fixture("12181/limits")),
            Ok(Some(4096))
        );
        // kthreadd: soft 1024, hard 4096; the soft one is what bites.
        assert_eq!(parse_max_open_files(&fixture("2/limits")), Ok(Some(1024)));
        // Edited: RLIM_INFINITY is refused for NOFILE by setrlimit, but the
        // file format allows it.
        let unlimited = fixture("2/limits").replace(
            "Max open files            1024                 4096",
            "Max open files            unlimited            unlimited",
        );
        assert_ne!(unlimited, fixture("2/limits"));
        assert_eq!(parse_max_open_files(&unlimited), Ok(None));
        assert!(parse_max_open_files("Limit Soft Limit Hard Limit Units\n").is_err());
        assert!(parse_max_open_files("Max open files   many   many   files\n").is_err());
        assert!(parse_max_open_files("Max open files\n").is_err());
    }

    #[test]
    fn btime() {
        assert_eq!(parse_btime(&fixture("stat")), Ok(1795416728));
        assert!(parse_btime("cpu  1 2 3\n").is_err());
        assert!(parse_btime("btime soon\n").is_err());
    }

    #[test]
    fn comm_and_cmdline() {
        assert_eq!(parse_comm(fixture("12182/comm").as_bytes()), "a) b (c");
        assert_eq!(
            parse_cmdline(fixture("12177/cmdline").as_bytes()),
            "python3 w.py --role=api 3"
        );
        assert_eq!(
            parse_cmdline(fixture("12182/cmdline").as_bytes()),
            "bin/a) b (c 1000"
        );
        // Kernel threads and zombies: empty.
        assert_eq!(parse_cmdline(b""), "");
        // A rewritten title padded with NULs; an empty argument in between.
        assert_eq!(
            parse_cmdline(b"postgres: checkpointer\0\0\0\0"),
            "postgres: checkpointer"
        );
        assert_eq!(parse_cmdline(b"a\0\0b\0"), "a  b");
    }

    #[test]
    fn pidfile_contents() {
        assert_eq!(parse_pidfile("12182\n"), Ok(Some(12182)));
        assert_eq!(parse_pidfile(" 12182 "), Ok(Some(12182)));
        // PostgreSQL's postmaster.pid: the pid, then the data directory...
        assert_eq!(
            parse_pidfile("4242\n/var/lib/postgresql/16/main\n1795416730\n5432\n"),
            Ok(Some(4242))
        );
        assert_eq!(parse_pidfile(""), Ok(None));
        assert_eq!(parse_pidfile("\n"), Ok(None));
        for bad in ["0\n", "-5\n", "app\n", "99999999999\n"] {
            assert!(parse_pidfile(bad).is_err(), "{bad:?}");
        }
    }

    fn proc_sample(start: u64, fds: Option<u64>, max: MaxFds) -> ProcSample {
        ProcSample {
            cpu_ticks: 10,
            rss_bytes: 4096,
            virtual_bytes: 8192,
            threads: 2,
            start_ticks: start,
            open_fds: fds,
            max_fds: max,
        }
    }

    #[test]
    fn aggregation() {
        assert_eq!(aggregate(&[]), None);
        let both = aggregate(&[
            proc_sample(500, Some(3), MaxFds::Limit(4096)),
            proc_sample(200, Some(4), MaxFds::Limit(1024)),
        ]);
        assert_eq!(
            both,
            Some(Figures {
                count: 2,
                cpu_ticks: 20,
                rss_bytes: 8192,
                threads: 4,
                oldest_start_ticks: 200,
                open_fds: Some(7),
                max_fds: Some(1024),
            })
        );
        // One unreadable fd directory: no open_fds rather than a low sum.
        let f = aggregate(&[
            proc_sample(1, Some(3), MaxFds::Limit(10)),
            proc_sample(1, None, MaxFds::Limit(10)),
        ]);
        assert_eq!(f.map(|f| f.open_fds), Some(None));
        // Unlimited processes do not lower the minimum...
        let f = aggregate(&[
            proc_sample(1, Some(1), MaxFds::Unlimited),
            proc_sample(1, Some(1), MaxFds::Limit(10)),
        ]);
        assert_eq!(f.map(|f| f.max_fds), Some(Some(10)));
        // ...all unlimited is absent, and one unknown makes it unknown.
        let f = aggregate(&[proc_sample(1, Some(1), MaxFds::Unlimited)]);
        assert_eq!(f.map(|f| f.max_fds), Some(None));
        let f = aggregate(&[
            proc_sample(1, Some(1), MaxFds::Unknown),
            proc_sample(1, Some(1), MaxFds::Limit(10)),
        ]);
        assert_eq!(f.map(|f| f.max_fds), Some(None));
    }

    fn copy_tree(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let dest = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_tree(&entry.path(), &dest);
            } else {
                fs::copy(entry.path(), &dest).unwrap();
            }
        }
    }

    /// The fixture tree in a scratch dir, with what git cannot hold: fd
    /// entries (as many as the captured processes had) and a `self` link
    /// that makes 12182 "vitals itself".
    fn fixture_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let proc_root = dir.path().join("proc");
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/process/proc"),
            &proc_root,
        );
        for (pid, fds) in [
            ("12177", 3),
            ("12181", 3),
            ("12182", 3),
            ("12183", 0),
            ("2", 0),
        ] {
            let fd_dir = proc_root.join(pid).join("fd");
            fs::create_dir(&fd_dir).unwrap();
            for fd in 0..fds {
                std::os::unix::fs::symlink("/dev/null", fd_dir.join(fd.to_string())).unwrap();
            }
        }
        std::os::unix::fs::symlink("12182", proc_root.join("self")).unwrap();
        for (file, text) in [
            ("tricky.pid", "12182\n"),
            ("stale.pid", "4242\n"),
            ("zombie.pid", "12183\n"),
            ("empty.pid", ""),
        ] {
            fs::write(dir.path().join(file), text).unwrap();
        }
        dir
    }

    /// A source built from YAML, as a user writes it, over `dir`.
    fn source_from_yaml(dir: &Path, processes: &str) -> ProcessSource {
        let d = dir.display();
        let yaml = format!("paths: {{proc: '{d}/proc'}}\nsources:\n  processes:\n{processes}");
        let config = parse_str(&yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        ProcessSource {
            // USER_HZ of the machine the fixture comes from.
            inner: Arc::new(Scanner::new(&config.paths, &config.sources.processes, 100)),
        }
    }

    #[tokio::test]
    async fn fixture_tree_gives_traceable_figures() {
        let dir = fixture_tree();
        let d = dir.path().display();
        let mut source = source_from_yaml(
            dir.path(),
            &format!(
                "    - {{name: python, match: {{comm: '^python3$'}}}}\n\
                 \x20   - {{name: worker, match: {{cmdline: '--role=worker'}}}}\n\
                 \x20   - {{name: tricky, match: {{pidfile: '{d}/tricky.pid'}}}}\n\
                 \x20   - {{name: kernel, match: {{comm: '^kthreadd$'}}}}\n\
                 \x20   - {{name: own, match: {{cmdline: '^bin/a\\) b \\(c 1000$'}}}}\n\
                 \x20   - {{name: nginx, match: {{comm: '^nginx$'}}}}\n\
                 \x20   - {{name: stale, match: {{pidfile: '{d}/stale.pid'}}}}\n\
                 \x20   - {{name: zombie, match: {{pidfile: '{d}/zombie.pid'}}}}\n\
                 \x20   - {{name: empty, match: {{pidfile: '{d}/empty.pid'}}}}\n\
                 \x20   - {{name: nofile, match: {{pidfile: '{d}/no-such.pid'}}}}\n"
            ),
        );
        let mut out = Output::new();
        source.collect(&mut out).await.unwrap();
        let v = |name: &str, process: &str| out.value(name, &[("process", process)]);

        // python: 12177 and 12181; the zombie 12183 (also python3) is out.
        assert_eq!(v("vitals_process_up", "python"), Some(1.0));
        assert_eq!(v("vitals_process_count", "python"), Some(2.0));
        // utime+stime (65+1) + (3+1) = 70 ticks at USER_HZ 100.
        assert_eq!(v("vitals_process_cpu_seconds_total", "python"), Some(0.7));
        // VmRSS 13552 kB + 13516 kB.
        assert_eq!(
            v("vitals_process_resident_memory_bytes", "python"),
            Some((13552.0 + 13516.0) * 1024.0)
        );
        assert_eq!(v("vitals_process_threads", "python"), Some(5.0));
        assert_eq!(v("vitals_process_open_fds", "python"), Some(6.0));
        // min(1024, 4096).
        assert_eq!(v("vitals_process_max_fds", "python"), Some(1024.0));
        // btime 1795416728 + the older starttime 310485 / 100.
        assert_eq!(
            v("vitals_process_start_time_seconds", "python"),
            Some(1795419832.85)
        );

        // worker: 12181 alone, by its command line.
        assert_eq!(v("vitals_process_count", "worker"), Some(1.0));
        assert_eq!(v("vitals_process_cpu_seconds_total", "worker"), Some(0.04));
        assert_eq!(v("vitals_process_max_fds", "worker"), Some(4096.0));
        assert_eq!(
            v("vitals_process_start_time_seconds", "worker"),
            Some(1795419833.35)
        );

        // tricky: by pid file, even though it is "vitals itself" here: the
        // comm "a) b (c" did not throw the stat fields off.
        assert_eq!(v("vitals_process_up", "tricky"), Some(1.0));
        assert_eq!(v("vitals_process_threads", "tricky"), Some(1.0));
        assert_eq!(
            v("vitals_process_resident_memory_bytes", "tricky"),
            Some(1808.0 * 1024.0)
        );
        assert_eq!(
            v("vitals_process_start_time_seconds", "tricky"),
            Some(1795419833.36)
        );

        // kthreadd: no memory map, an empty fd directory, soft limit 1024.
        assert_eq!(
            v("vitals_process_resident_memory_bytes", "kernel"),
            Some(0.0)
        );
        assert_eq!(v("vitals_process_open_fds", "kernel"), Some(0.0));
        assert_eq!(v("vitals_process_max_fds", "kernel"), Some(1024.0));
        assert_eq!(
            v("vitals_process_start_time_seconds", "kernel"),
            Some(1795416728.25)
        );

        // Not running, for each reason; only `up` is there.
        for name in ["own", "nginx", "stale", "zombie", "empty", "nofile"] {
            assert_eq!(v("vitals_process_up", name), Some(0.0), "{name}");
            assert_eq!(v("vitals_process_count", name), None, "{name}");
            assert_eq!(v("vitals_process_cpu_seconds_total", name), None, "{name}");
        }
        assert_eq!(
            out.family("vitals_process_up").map(|f| f.samples.len()),
            Some(10)
        );
    }

    #[tokio::test]
    async fn garbage_is_an_error() {
        let dir = fixture_tree();
        fs::write(
            dir.path().join("proc/12181/stat"),
            "12181 (python3) S 1 2\n",
        )
        .unwrap();
        let mut source = source_from_yaml(
            dir.path(),
            "    - {name: worker, match: {cmdline: '--role=worker'}}\n",
        );
        let err = source.collect(&mut Output::new()).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("12181/stat"), "{msg}");
        assert!(msg.contains("field 14 (utime)"), "{msg}");

        fs::write(dir.path().join("app.pid"), "twelve\n").unwrap();
        let d = dir.path().display();
        let mut source = source_from_yaml(
            dir.path(),
            &format!("    - {{name: app, match: {{pidfile: '{d}/app.pid'}}}}\n"),
        );
        let err = source.collect(&mut Output::new()).await.unwrap_err();
        assert!(err.to_string().contains("app.pid"), "{err}");
    }

    #[tokio::test]
    async fn vanished_process_is_skipped_silently() {
        // 12181 listed and matched by comm, but its files are gone (it exited
        // between the listing and the read).
        let dir = fixture_tree();
        for file in ["stat", "status", "limits"] {
            fs::remove_file(dir.path().join("proc/12181").join(file)).unwrap();
        }
        let mut source = source_from_yaml(
            dir.path(),
            "    - {name: python, match: {comm: '^python3$'}}\n",
        );
        let mut out = Output::new();
        source.collect(&mut out).await.unwrap();
        let labels = [("process", "python")];
        assert_eq!(out.value("vitals_process_count", &labels), Some(1.0));
        assert_eq!(out.value("vitals_process_threads", &labels), Some(4.0));
    }

    #[tokio::test]
    async fn missing_proc_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut source = source_from_yaml(
            dir.path(),
            "    - {name: python, match: {comm: '^python3$'}}\n",
        );
        assert!(source.collect(&mut Output::new()).await.is_err());
    }
}
