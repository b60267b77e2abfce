//! Every file-system read of every source goes through here, so that no read
//! can hang a source, or the runtime, for good.
//!
//! A read of `/proc` or `/sys` can block without end: `/proc/PID/cmdline`
//! takes the target's mmap lock and waits while that process is stuck in
//! uninterruptible sleep, a `/sys` attribute of a broken device can hang, and
//! a FIFO put where a file was expected never answers its `open`. Each read
//! therefore runs on tokio's blocking pool (a plain thread outside a
//! runtime) while the caller waits at most [`READ_TIMEOUT`]; past that the
//! read fails with `timed out after 2s reading <path>` and the round fails
//! with it, counted and shown in `/status`.
//!
//! A thread stuck in a read cannot be taken back. So that stuck reads do not
//! pile up round after round, a path whose read timed out is remembered until
//! that read returns, and a new read of it fails at once with the same kind
//! of error: at most one outstanding read per path.
//!
//! The callers (sources) run on the blocking pool themselves (see `host`,
//! `cgroup`, `process`, `footprint`): these functions block the calling
//! thread for up to [`READ_TIMEOUT`], which must never be an async worker.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long one read may take before its round fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Paths whose last read timed out and has not returned yet.
static STUCK: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn stuck_paths() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    // A poisoned set is still a valid set.
    STUCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A read that did not return within [`READ_TIMEOUT`], carried inside an
/// `io::Error` of kind `TimedOut` so that every caller's existing error path
/// handles it; `CollectError::io` turns it into `CollectError::Stuck`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stuck {
    pub path: PathBuf,
    pub after: Duration,
    /// The read was not even started: an earlier one is still stuck.
    pub earlier: bool,
}

impl fmt::Display for Stuck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {}s reading {}",
            self.after.as_secs_f64(),
            self.path.display()
        )?;
        if self.earlier {
            f.write_str(" (an earlier read of it is still stuck; not retried until it returns)")?;
        }
        Ok(())
    }
}

impl std::error::Error for Stuck {}

impl Stuck {
    /// The [`Stuck`] inside an error from this module, if that is what it is.
    pub fn of(e: &io::Error) -> Option<&Stuck> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<Stuck>())
    }
}

fn stuck(path: &Path, after: Duration, earlier: bool) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        Stuck {
            path: path.to_owned(),
            after,
            earlier,
        },
    )
}

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

/// Runs `op(path)` off the calling thread and waits for it at most `limit`.
fn bounded<T: Send + 'static>(
    path: &Path,
    limit: Duration,
    op: impl FnOnce(&Path) -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    if stuck_paths().contains(path) {
        return Err(stuck(path, limit, true));
    }
    let (tx, rx) = mpsc::sync_channel(1);
    // Who gives up first: the reader finishing, or the caller timing out.
    let state = Arc::new(AtomicU8::new(RUNNING));
    let job = {
        let (path, state) = (path.to_owned(), state.clone());
        move || {
            let result = op(&path);
            if state
                .compare_exchange(RUNNING, DONE, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // The caller gave up and marked the path stuck: it is free again.
                stuck_paths().remove(&path);
                tracing::info!(path = %path.display(), "a stuck read returned at last");
            }
            let _ = tx.send(result);
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(job)),
        Err(_) => {
            std::thread::Builder::new()
                .name("vitals-read".into())
                .spawn(job)?;
        }
    }
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(io::Error::other(
            "the read ended without an answer (its thread panicked)",
        )),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let mut paths = stuck_paths();
            if state
                .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                paths.insert(path.to_owned());
                return Err(stuck(path, limit, false));
            }
            drop(paths);
            // It finished just now: its answer is in the channel.
            rx.recv().unwrap_or_else(|_| Err(stuck(path, limit, false)))
        }
    }
}

/// `std::fs::read_to_string`, bounded.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    bounded(path, READ_TIMEOUT, |p| std::fs::read_to_string(p))
}

/// `std::fs::read`, bounded.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    bounded(path, READ_TIMEOUT, |p| std::fs::read(p))
}

/// One entry of [`read_dir`].
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub name: std::ffi::OsString,
    pub path: PathBuf,
    /// `None` when the type could not be read.
    pub is_dir: Option<bool>,
}

/// `std::fs::read_dir`, bounded, its entries read to the end; an error
/// reading an entry is the whole listing's error.
pub fn read_dir(path: &Path) -> io::Result<Vec<DirEntry>> {
    bounded(path, READ_TIMEOUT, |p| {
        std::fs::read_dir(p)?
            .map(|entry| {
                let entry = entry?;
                Ok(DirEntry {
                    name: entry.file_name(),
                    path: entry.path(),
                    is_dir: entry.file_type().ok().map(|t| t.is_dir()),
                })
            })
            .collect()
    })
}

/// `std::fs::read_link`, bounded.
pub fn read_link(path: &Path) -> io::Result<PathBuf> {
    bounded(path, READ_TIMEOUT, |p| std::fs::read_link(p))
}

/// `Path::is_dir`, bounded: false when it cannot be told in time.
pub fn is_dir(path: &Path) -> bool {
    bounded(path, READ_TIMEOUT, |p| Ok(p.is_dir())).unwrap_or(false)
}

/// `Path::is_file`, bounded: false when it cannot be told in time.
pub fn is_file(path: &Path) -> bool {
    bounded(path, READ_TIMEOUT, |p| Ok(p.is_file())).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO without a writer: opening it for reading blocks.
    fn fifo(dir: &Path) -> PathBuf {
        let path = dir.join("loadavg");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        path
    }

    /// Opens the FIFO for writing and closes it, which releases its reader.
    fn release(path: &Path) {
        drop(std::fs::OpenOptions::new().write(true).open(path).unwrap());
    }

    #[test]
    fn a_hung_read_times_out_and_is_not_started_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo(dir.path());
        let limit = Duration::from_millis(100);
        let read = |p: &Path| std::fs::read_to_string(p);
        let first = bounded(&path, limit, read).unwrap_err();
        assert_eq!(
            Stuck::of(&first),
            Some(&Stuck {
                path: path.clone(),
                after: limit,
                earlier: false
            })
        );
        assert_eq!(
            first.to_string(),
            format!("timed out after 0.1s reading {}", path.display())
        );
        // Still stuck: refused at once, nothing new started.
        let second = bounded(&path, limit, read).unwrap_err();
        assert_eq!(Stuck::of(&second).map(|s| s.earlier), Some(true));
        // Once the stuck read returns, the path is read again.
        release(&path);
        for _ in 0..500 {
            if !stuck_paths().contains(&path) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!stuck_paths().contains(&path), "released read forgotten");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "0.5 0.4 0.3 1/2 3\n").unwrap();
        assert_eq!(read_to_string(&path).unwrap(), "0.5 0.4 0.3 1/2 3\n");
    }

    #[test]
    fn ordinary_reads_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        assert_eq!(read(&dir.path().join("a")).unwrap(), b"x");
        let err = read(&dir.path().join("missing")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let mut names: Vec<_> = read_dir(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| (e.name.into_string().unwrap(), e.is_dir))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [("a".to_owned(), Some(false)), ("d".to_owned(), Some(true))]
        );
        assert!(is_dir(&dir.path().join("d")));
        assert!(!is_dir(&dir.path().join("a")));
    }
}
