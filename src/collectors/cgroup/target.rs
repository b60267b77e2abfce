//! From the configured target to the cgroup directories to read, whatever
//! the namespaces.
//!
//! A target process's cgroup is first looked up in vitals' own view (its
//! mountinfo, or `paths.cgroup`). On cgroup v2 nodes containerd and CRI-O
//! give each container its own cgroup namespace, so a sidecar sees the app
//! container's cgroup as `/../<scope>` (cgroup_namespaces(7): a path outside
//! the reader's namespace root starts with `/..`), which no mount of its own
//! holds. Then:
//! - with `paths.cgroup` (the host's cgroup tree mounted into the sidecar),
//!   the directory of that name whose `cgroup.procs` lists the process;
//! - otherwise the target's own mounts: `<proc>/<pid>/mountinfo` says where
//!   the target mounted its cgroup hierarchies (their roots read `/../<scope>`
//!   too, relative to vitals' namespace), and `<proc>/<pid>/root/<mount point>`
//!   reaches the files. That needs ptrace-read access to the target (same
//!   UID, or CAP_SYS_PTRACE) and a shared PID namespace.

use super::discover::{self, Hierarchy, Layout, Membership};
use super::CgroupSource;
use crate::collectors::procfs::{self, PidRead};
use crate::collectors::{fsread, CollectError};
use crate::config::CgroupTarget;
use std::collections::BTreeMap;
use std::path::Path;

/// One watched cgroup of a round.
pub(super) struct Watched {
    /// The `container` label under `target: {container: auto}`.
    pub(super) container: Option<String>,
    /// Under `container: auto`, one container that cannot be reached is an
    /// error of its own: the others are still read.
    pub(super) layout: Result<Layout, CollectError>,
}

impl CgroupSource {
    /// The cgroups to read this round.
    pub(super) fn resolve(&mut self) -> Result<Vec<Watched>, CollectError> {
        let hierarchies = self.hierarchies()?;
        let single = |layout| {
            Ok(vec![Watched {
                container: None,
                layout: Ok(layout),
            }])
        };
        match self.target.clone() {
            CgroupTarget::Own => {
                let memberships = self.memberships_of("self")?;
                single(discover::layout(&hierarchies, &memberships).map_err(CollectError::Other)?)
            }
            CgroupTarget::Pid(pid) => single(self.layout_of_pid(pid, &hierarchies)?),
            CgroupTarget::Pidfile(file) => {
                let pid = procfs::read_pidfile(&file)
                    .map_err(|e| {
                        CollectError::Other(format!("target pidfile {}: {e}", file.display()))
                    })?
                    .ok_or_else(|| {
                        CollectError::Other(format!(
                            "target pidfile {} is absent or empty: the target is not running",
                            file.display()
                        ))
                    })?;
                if procfs::running(&self.proc_root, pid)?.is_none() {
                    return Err(CollectError::Other(format!(
                        "target process {pid} from pidfile {} is not running",
                        file.display()
                    )));
                }
                single(self.layout_of_pid(pid, &hierarchies)?)
            }
            CgroupTarget::Process(pattern) => {
                let pid = self.find_process(&pattern.0)?;
                single(self.layout_of_pid(pid, &hierarchies)?)
            }
            CgroupTarget::Path(path) => {
                let memberships = discover::memberships_for_path(&path, &hierarchies)
                    .map_err(CollectError::Other)?;
                single(discover::layout(&hierarchies, &memberships).map_err(CollectError::Other)?)
            }
            CgroupTarget::Container(_) => self.containers(&hierarchies),
        }
    }

    /// The mounted hierarchies as vitals sees them.
    fn hierarchies(&self) -> Result<Vec<Hierarchy>, CollectError> {
        match &self.cgroup_base {
            Some(base) => {
                discover::hierarchies_from_base(base).map_err(|e| CollectError::io(base, e))
            }
            None => {
                let path = self.proc_root.join("self").join("mountinfo");
                let text = crate::collectors::read_required(&path)?;
                let mounts = discover::parse_mountinfo(&text)
                    .map_err(|e| CollectError::parse(&path, e.0))?;
                Ok(discover::hierarchies_from_mounts(&mounts, &self.sys_root))
            }
        }
    }

    pub(super) fn memberships_of(&self, pid: &str) -> Result<Vec<Membership>, CollectError> {
        let path = self.proc_root.join(pid).join("cgroup");
        let text = match fsread::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CollectError::Other(format!(
                    "target process {pid} not found: {} does not exist",
                    path.display()
                )))
            }
            Err(e) => return Err(CollectError::io(&path, e)),
        };
        discover::parse_proc_cgroup(&text).map_err(|e| CollectError::parse(&path, e.0))
    }

    /// The lowest running pid whose command line (NUL-separated arguments
    /// joined by spaces) matches, found by the scan the process source uses
    /// (vitals itself and zombies left out).
    fn find_process(&self, pattern: &regex::Regex) -> Result<u32, CollectError> {
        let found = procfs::scan(&self.proc_root, &[procfs::Matcher::Cmdline(pattern)])?;
        found.into_iter().flatten().next().ok_or_else(|| {
            CollectError::Other(format!(
                "target process not found: no running process under {} has a command line \
                 matching {:?} (in Kubernetes the pod needs shareProcessNamespace: true)",
                self.proc_root.display(),
                pattern.as_str()
            ))
        })
    }

    /// The layout of `pid`'s cgroup: in vitals' own view if it is there,
    /// else across the cgroup namespace boundary.
    fn layout_of_pid(
        &mut self,
        pid: u32,
        hierarchies: &[Hierarchy],
    ) -> Result<Layout, CollectError> {
        let memberships = self.memberships_of(&pid.to_string())?;
        let own_view = match discover::layout(hierarchies, &memberships) {
            Ok(layout) => return Ok(layout),
            Err(e) => e,
        };
        let Some(outside) = memberships
            .iter()
            .find(|m| discover::outside_namespace(&m.path))
        else {
            return Err(CollectError::Other(own_view));
        };
        let outside = outside.path.clone();
        match &self.cgroup_base {
            Some(base) => self.layout_in_host_tree(pid, base.clone(), hierarchies, memberships),
            None => self.layout_through_root(pid, &outside, &memberships),
        }
    }

    /// `paths.cgroup` is the host's whole tree: rewrite each `/..` path to
    /// the directory that lists the process. Found paths are remembered (a
    /// k8s node has thousands of cgroups) while their directory exists.
    fn layout_in_host_tree(
        &mut self,
        pid: u32,
        base: std::path::PathBuf,
        hierarchies: &[Hierarchy],
        mut memberships: Vec<Membership>,
    ) -> Result<Layout, CollectError> {
        for member in &mut memberships {
            if !discover::outside_namespace(&member.path) {
                continue;
            }
            let candidates: Vec<&Hierarchy> =
                discover::hierarchies_of(member, hierarchies).collect();
            for h in candidates {
                let key = (h.dir.clone(), member.path.clone(), pid);
                let cached = self.host_paths.get(&key).filter(|abs| {
                    fsread::is_file(&h.dir.join(abs.trim_start_matches('/')).join("cgroup.procs"))
                });
                let found = match cached {
                    Some(abs) => Some(abs.clone()),
                    None => discover::find_in_tree(&h.dir, &member.path, pid),
                };
                if let Some(abs) = found {
                    self.host_paths.insert(key, abs.clone());
                    member.path = abs;
                    break;
                }
            }
        }
        // On a hybrid host an unresolved unified line only costs the
        // pressure figures; the error is for a layout that cannot be made.
        discover::layout(hierarchies, &memberships).map_err(|e| {
            match memberships
                .iter()
                .find(|m| discover::outside_namespace(&m.path))
            {
                Some(lost) => CollectError::Other(format!(
                    "cgroup {} of process {pid} lies outside vitals' cgroup namespace, and no \
                     directory of that name under paths.cgroup {} lists process {pid} in its \
                     cgroup.procs: mount the host's cgroup tree there (hostPath /sys/fs/cgroup) \
                     and share the pod's PID namespace (shareProcessNamespace: true)",
                    lost.path,
                    base.display()
                )),
                None => CollectError::Other(e),
            }
        })
    }

    /// Through the target's own mount namespace.
    fn layout_through_root(
        &self,
        pid: u32,
        outside: &str,
        memberships: &[Membership],
    ) -> Result<Layout, CollectError> {
        let dir = self.proc_root.join(pid.to_string());
        let root = dir.join("root");
        let mountinfo = dir.join("mountinfo");
        let denied = |what: &Path, e: std::io::Error| {
            CollectError::Other(format!(
                "cgroup {outside} of process {pid} lies outside vitals' cgroup namespace and \
                 {} is not readable ({e}): give the vitals container CAP_SYS_PTRACE (or run \
                 it as the application's user) in a pod with shareProcessNamespace: true, \
                 or mount the host's cgroup tree and set paths.cgroup",
                what.display()
            ))
        };
        let text = fsread::read_to_string(&mountinfo).map_err(|e| denied(&mountinfo, e))?;
        fsread::read_dir(&root).map_err(|e| denied(&root, e))?;
        let mounts =
            discover::parse_mountinfo(&text).map_err(|e| CollectError::parse(&mountinfo, e.0))?;
        let hierarchies = discover::hierarchies_in_root(&mounts, &root);
        discover::layout(&hierarchies, memberships).map_err(|e| {
            CollectError::Other(format!(
                "{e} (looked in the cgroup mounts of process {pid}, through {})",
                root.display()
            ))
        })
    }

    /// `target: {container: auto}`: one cgroup per group of processes that
    /// are not in vitals' own cgroup, the pause process left out; each
    /// reached through its lowest pid.
    fn containers(&mut self, hierarchies: &[Hierarchy]) -> Result<Vec<Watched>, CollectError> {
        let own = self.memberships_of("self")?;
        let own_pid = procfs::own_pid(&self.proc_root);
        let mut groups: BTreeMap<String, u32> = BTreeMap::new();
        for pid in procfs::list_pids(&self.proc_root)? {
            if Some(pid) == own_pid {
                continue;
            }
            let dir = self.proc_root.join(pid.to_string());
            let path = dir.join("cgroup");
            let memberships = match procfs::read_pid_file(&path)? {
                PidRead::Data(bytes) => {
                    discover::parse_proc_cgroup(&String::from_utf8_lossy(&bytes))
                        .map_err(|e| CollectError::parse(&path, e.0))?
                }
                PidRead::Gone | PidRead::Denied(_) => continue,
            };
            if memberships == own {
                continue;
            }
            let comm = match procfs::read_pid_file(&dir.join("comm"))? {
                PidRead::Data(bytes) => procfs::parse_comm(&bytes),
                PidRead::Gone | PidRead::Denied(_) => continue,
            };
            // The pod's infrastructure container (registry.k8s.io/pause), PID
            // 1 of a shared PID namespace.
            if comm == "pause" || procfs::running(&self.proc_root, pid)?.is_none() {
                continue;
            }
            groups.entry(container_key(&memberships)).or_insert(pid);
        }
        if groups.is_empty() {
            return Err(CollectError::Other(format!(
                "target container: auto found no process outside vitals' own cgroup under {} \
                 (in Kubernetes the pod needs shareProcessNamespace: true)",
                self.proc_root.display()
            )));
        }
        let mut watched = Vec::with_capacity(groups.len());
        for (key, pid) in groups {
            let name = Path::new(&key)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(key);
            watched.push(Watched {
                container: Some(name),
                layout: self.layout_of_pid(pid, hierarchies),
            });
        }
        Ok(watched)
    }
}

/// The cgroup path that names a container: the v2 line's, else the memory
/// controller's, else the first line's.
fn container_key(memberships: &[Membership]) -> String {
    memberships
        .iter()
        .find(|m| m.hierarchy_id == 0 && m.controllers.is_empty())
        .filter(|m| m.path != "/")
        .or_else(|| {
            memberships
                .iter()
                .find(|m| m.controllers.iter().any(|c| c == "memory"))
        })
        .or_else(|| memberships.first())
        .map(|m| m.path.clone())
        .unwrap_or_default()
}
