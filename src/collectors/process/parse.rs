//! Pure parsers of the per-process files only this source reads
//! (`status`, `limits`) and of `<proc>/stat`'s btime; `stat`, `comm`,
//! `cmdline` and pid files are the shared [`crate::collectors::procfs`] ones.

use crate::collectors::procfs::ParseError;

/// VmRSS from `/proc/PID/status`, in bytes; `None` when the line is absent
/// (kernel threads and zombies have no memory map).
pub(super) fn parse_status_rss(text: &str) -> Result<Option<u64>, ParseError> {
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
pub(super) fn parse_max_open_files(text: &str) -> Result<Option<u64>, ParseError> {
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

/// The pure parsers, for the property tests and fuzz targets only.
#[doc(hidden)]
pub mod fuzz {
    use crate::collectors::procfs;

    fn show<T: std::fmt::Debug, E: std::fmt::Debug>(r: Result<T, E>) -> Result<String, String> {
        r.map(|v| format!("{v:?}")).map_err(|e| format!("{e:?}"))
    }

    /// (name, parser): each takes a file's bytes and returns the parsed
    /// value's Debug text or the error's.
    pub fn parsers() -> Vec<crate::collectors::FuzzParser> {
        vec![
            ("process/stat", |b| {
                show(procfs::parse_stat(&String::from_utf8_lossy(b)))
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
            ("process/comm", |b| Ok(procfs::parse_comm(b))),
            ("process/cmdline", |b| Ok(procfs::parse_cmdline(b))),
            ("process/pidfile", |b| {
                show(procfs::parse_pidfile(&String::from_utf8_lossy(b)))
            }),
        ]
    }
}
