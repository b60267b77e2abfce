//! The one /proc toolkit every source uses: vitals' own pid, the pid list,
//! a process's comm, command line and state, pid files, and the one
//! [`ParseError`] of every kernel-file parser. Two sources that need the same
//! thing from `/proc` call one function here, so they cannot drift into two
//! behaviours (they had: the cgroup source refused PostgreSQL's multi-line
//! `postmaster.pid` and matched zombies, the process source did neither).
//!
//! Every function takes the proc root (`paths.proc`), never `/proc` itself.

use super::{fsread, CollectError};
use std::io;
use std::path::Path;

/// Why a kernel file's text is not what the kernel writes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        ParseError(message.into())
    }
}

/// vitals' own pid as seen in `proc_root`, from its `self` link (right when a
/// host /proc is mounted into a container); `None` for a tree without
/// `self`, e.g. a fixture.
pub fn own_pid(proc_root: &Path) -> Option<u32> {
    let link = proc_root.join("self");
    match fsread::read_link(&link) {
        Ok(target) => target.to_str().and_then(|s| s.parse().ok()),
        Err(e) => {
            tracing::debug!(path = %link.display(), error = %e, "no self link; vitals' own pid unknown");
            None
        }
    }
}

/// Numeric entries of the proc root, sorted: one per process (threads are
/// not listed, only reachable by name).
pub fn list_pids(proc_root: &Path) -> Result<Vec<u32>, CollectError> {
    let entries = fsread::read_dir(proc_root).map_err(|e| CollectError::io(proc_root, e))?;
    let mut pids = Vec::new();
    for entry in entries {
        if let Some(pid) = entry.name.to_str().and_then(|n| n.parse().ok()) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// What reading a file of one process gave.
#[derive(Debug)]
pub enum PidRead<T> {
    Data(T),
    /// The process exited between listing and reading: normal, skipped.
    Gone,
    /// Not ours to read (another user's fds, hidepid, no ptrace access).
    Denied(io::Error),
}

/// ESRCH on Linux: a /proc/PID file read after the process was reaped.
const ESRCH: i32 = 3;

/// Sorts an error reading under `/proc/PID`: gone, denied, or a real error.
pub fn classify<T>(path: &Path, e: io::Error) -> Result<PidRead<T>, CollectError> {
    if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(ESRCH) {
        Ok(PidRead::Gone)
    } else if e.kind() == io::ErrorKind::PermissionDenied {
        Ok(PidRead::Denied(e))
    } else {
        Err(CollectError::io(path, e))
    }
}

/// Reads one file of one process.
pub fn read_pid_file(path: &Path) -> Result<PidRead<Vec<u8>>, CollectError> {
    match fsread::read(path) {
        Ok(bytes) => Ok(PidRead::Data(bytes)),
        Err(e) => classify(path, e),
    }
}

/// `/proc/PID/comm` without its newline.
pub fn parse_comm(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.strip_suffix('\n').unwrap_or(&text).to_owned()
}

/// `/proc/PID/cmdline` with its NUL separators as spaces. Trailing NULs go
/// first: some programs that rewrite their title pad it with them.
pub fn parse_cmdline(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let args = bytes.get(..end).unwrap_or_default();
    String::from_utf8_lossy(args).replace('\0', " ")
}

/// The fields of `/proc/PID/stat` vitals uses.
#[derive(Debug, PartialEq, Eq)]
pub struct PidStat {
    pub comm: String,
    pub state: char,
    pub utime: u64,
    pub stime: u64,
    pub num_threads: u64,
    pub starttime: u64,
    /// Virtual memory size in bytes.
    pub vsize: u64,
}

impl PidStat {
    /// 'Z' zombie, 'X' dead; 'x' is dead on Linux 2.6.33 to 3.13. Neither is
    /// running, so neither is a target.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses `/proc/PID/stat`. The comm in parentheses may itself hold spaces
/// and `)`, so the fields start after the LAST `)`.
pub fn parse_stat(text: &str) -> Result<PidStat, ParseError> {
    let text = text.trim_end();
    let open = text
        .find('(')
        .ok_or_else(|| ParseError::new("no '(' before the command name"))?;
    let close = text
        .rfind(')')
        .filter(|&c| c > open)
        .ok_or_else(|| ParseError::new("no ')' after the command name"))?;
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
        .ok_or_else(|| ParseError::new("no state after the command name"))?;
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

/// The pid on the first line of a pid file (PostgreSQL's `postmaster.pid`
/// has more lines after it); `None` when empty.
pub fn parse_pidfile(text: &str) -> Result<Option<u32>, ParseError> {
    let first = text.lines().next().unwrap_or_default().trim();
    if first.is_empty() {
        return Ok(None);
    }
    match first.parse::<u32>() {
        Ok(0) | Err(_) => Err(ParseError(format!("{first:?} is not a process id"))),
        Ok(pid) => Ok(Some(pid)),
    }
}

/// The pid in a pid file; `None` when the file is absent or empty (the
/// service is stopped, or is starting and has not written it yet).
pub fn read_pidfile(path: &Path) -> Result<Option<u32>, CollectError> {
    let Some(text) = super::read_optional(path)? else {
        return Ok(None);
    };
    let pid = parse_pidfile(&text).map_err(|e| CollectError::parse(path, e.0))?;
    if pid.is_none() {
        tracing::debug!(path = %path.display(), "pid file is empty; target not running");
    }
    Ok(pid)
}

/// Whether `pid` is a running process: `Some(stat)` when it is, `None` when
/// it is gone, a zombie, or its stat is not readable.
pub fn running(proc_root: &Path, pid: u32) -> Result<Option<PidStat>, CollectError> {
    running_at(&proc_root.join(pid.to_string()))
}

/// [`running`] for the process whose directory is `dir` (`<proc>/<pid>` or
/// `<proc>/self`).
pub fn running_at(dir: &Path) -> Result<Option<PidStat>, CollectError> {
    let path = dir.join("stat");
    match read_pid_file(&path)? {
        PidRead::Data(bytes) => {
            let stat = parse_stat(&String::from_utf8_lossy(&bytes))
                .map_err(|e| CollectError::parse(&path, e.0))?;
            if stat.is_dead() {
                tracing::debug!(dir = %dir.display(), state = %stat.state, "process is dead; not a target");
                return Ok(None);
            }
            Ok(Some(stat))
        }
        PidRead::Gone => Ok(None),
        PidRead::Denied(e) => Err(CollectError::io(&path, e)),
    }
}

/// How a scan picks processes: a regex on comm or on the command line.
#[derive(Clone, Copy, Debug)]
pub enum Matcher<'a> {
    Comm(&'a regex::Regex),
    Cmdline(&'a regex::Regex),
}

/// The running processes under `proc_root` matching each matcher, in matcher
/// order, pids ascending. vitals itself is skipped (a pattern that happens to
/// match vitals' own arguments must not watch vitals), and so are zombies,
/// processes that exit while we read them, and processes whose comm or
/// command line we may not read.
pub fn scan(proc_root: &Path, matchers: &[Matcher<'_>]) -> Result<Vec<Vec<u32>>, CollectError> {
    let mut matched = vec![Vec::new(); matchers.len()];
    if matchers.is_empty() {
        return Ok(matched);
    }
    let need_comm = matchers.iter().any(|m| matches!(m, Matcher::Comm(_)));
    let need_cmdline = matchers.iter().any(|m| matches!(m, Matcher::Cmdline(_)));
    let own = own_pid(proc_root);
    for pid in list_pids(proc_root)? {
        if Some(pid) == own {
            continue;
        }
        let dir = proc_root.join(pid.to_string());
        let read = |file: &str| -> Result<Option<Vec<u8>>, CollectError> {
            Ok(match read_pid_file(&dir.join(file))? {
                PidRead::Data(bytes) => Some(bytes),
                PidRead::Gone => None,
                PidRead::Denied(e) => {
                    tracing::debug!(pid, file, error = %e, "not readable; process skipped");
                    None
                }
            })
        };
        let comm = match need_comm {
            true => match read("comm")? {
                Some(bytes) => Some(parse_comm(&bytes)),
                None => continue,
            },
            false => None,
        };
        let cmdline = match need_cmdline {
            true => match read("cmdline")? {
                Some(bytes) => Some(parse_cmdline(&bytes)),
                None => continue,
            },
            false => None,
        };
        let mut hit_any = false;
        let hits: Vec<bool> = matchers
            .iter()
            .map(|m| {
                let hit = match m {
                    Matcher::Comm(re) => comm.as_deref().is_some_and(|c| re.is_match(c)),
                    Matcher::Cmdline(re) => cmdline.as_deref().is_some_and(|c| re.is_match(c)),
                };
                hit_any |= hit;
                hit
            })
            .collect();
        // Only a candidate costs a stat read: zombies keep their comm.
        if !hit_any || running(proc_root, pid)?.is_none() {
            continue;
        }
        for (list, hit) in matched.iter_mut().zip(hits) {
            if hit {
                list.push(pid);
            }
        }
    }
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real files captured on Linux 6.18 (Debian 12 userland, x86_64).
    const STAT_PYTHON_4_THREADS: &str = "12177 (python3) S 12136 12128 6056 0 -1 4194304 2184 0 0 0 65 1 0 0 20 0 4 0 310485 243515392 3375 18446744073709551615 94367600619520 94367600619861 140726719460528 0 0 0 0 16781312 2 0 0 0 17 1 0 0 0 0 0 94367600631216 94367600631832 94367655542784 140726719461640 140726719461666 140726719461666 140726719463375 0\n";
    // `sleep` copied to a file named "a) b (c": the comm holds ") " and "(".
    const STAT_TRICKY_COMM: &str = "12182 (a) b (c) S 12136 12128 6056 0 -1 4194304 308 0 0 0 0 0 0 0 20 0 1 0 310536 2990080 425 18446744073709551615 94589649494016 94589649511945 140723159976672 0 0 0 0 0 0 1 0 0 17 0 0 0 0 0 0 94589649526032 94589649527296 94590017339392 140723159984430 140723159984447 140723159984447 140723159986156 0\n";
    const STAT_ZOMBIE: &str = "12183 (python3) Z 12136 12128 6056 0 -1 4227148 222 0 0 0 0 0 0 0 20 0 1 0 310536 0 0 18446744073709551615 0 0 0 0 0 0 0 16781312 2 1 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
    const STAT_KTHREADD: &str = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 25 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

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
        assert!(parse_stat(STAT_ZOMBIE).unwrap().is_dead());
        assert!(!parse_stat(STAT_KTHREADD).unwrap().is_dead());
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
    fn comm_and_cmdline() {
        assert_eq!(parse_comm(b"a) b (c\n"), "a) b (c");
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
        // PostgreSQL 15's postmaster.pid: the pid, then the data directory,
        // start time, port, socket directory, listen address, shmem key, status.
        assert_eq!(
            parse_pidfile(
                "25720\n/var/lib/postgresql/15/main\n1795416730\n5432\n/var/run/postgresql\n\
                 localhost\n  5432001         0\nready   \n"
            ),
            Ok(Some(25720))
        );
        assert_eq!(parse_pidfile(""), Ok(None));
        assert_eq!(parse_pidfile("\n"), Ok(None));
        for bad in ["0\n", "-5\n", "app\n", "99999999999\n"] {
            assert!(parse_pidfile(bad).is_err(), "{bad:?}");
        }
    }
}
