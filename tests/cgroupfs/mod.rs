//! Helpers for the tests that make real cgroups (cgroup_real, k8s_pod_real).

use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn write(path: &Path, value: &str) {
    std::fs::write(path, value).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Removes test cgroups, children first (`dirs` in creation order), after
/// their tasks were killed; says so when one stays.
pub fn remove_cgroups(dirs: &[PathBuf]) {
    for dir in dirs.iter().rev() {
        // A cgroup whose last task just exited can be busy for a moment.
        for _ in 0..100 {
            match std::fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        if dir.exists() {
            eprintln!("could not remove test cgroup {}", dir.display());
        }
    }
}
