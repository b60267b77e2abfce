//! Helpers for the tests that make real cgroups (cgroup_real, k8s_pod_real).

use std::collections::BTreeMap;
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

/// The test's own cgroup directory per v1 controller, and its cgroup v2
/// directory, from /proc/self/{mountinfo,cgroup}. Deliberately simpler than
/// vitals' own discovery so the two do not share mistakes.
#[derive(Debug, Default)]
pub struct OwnCgroups {
    pub v1: BTreeMap<String, PathBuf>,
    pub v2: Option<PathBuf>,
}

pub fn own_cgroups() -> OwnCgroups {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    // controller ("" for v2) -> path
    let mut paths = BTreeMap::new();
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            paths.insert(String::new(), path.to_owned());
        }
        for c in controllers.split(',').filter(|c| !c.is_empty()) {
            paths.insert(c.to_owned(), path.to_owned());
        }
    }
    let mut own = OwnCgroups::default();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mount_point), Some(fstype)) =
            (left.get(3), left.get(4), right.first())
        else {
            continue;
        };
        let dir_for = |path: &str| -> Option<PathBuf> {
            let rel = path.strip_prefix(root.trim_end_matches('/'))?;
            Some(Path::new(mount_point).join(rel.trim_start_matches('/')))
        };
        match *fstype {
            "cgroup2" => {
                own.v2 = paths.get("").and_then(|p| dir_for(p));
            }
            "cgroup" => {
                for option in right.get(2).unwrap_or(&"").split(',') {
                    if let Some(dir) = paths.get(option).and_then(|p| dir_for(p)) {
                        own.v1.insert(option.to_owned(), dir);
                    }
                }
            }
            _ => {}
        }
    }
    own
}
