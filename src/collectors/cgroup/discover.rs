//! Where the watched cgroup's files are: the cgroup hierarchies (from
//! `<proc>/self/mountinfo`, or from `paths.cgroup`), the target's membership
//! (`<proc>/<pid>/cgroup`), and from both, one directory per controller.

use super::parse::{err, ParseError};
use crate::collectors::fsread;
use std::path::{Component, Path, PathBuf};

/// One line of `/proc/<pid>/mountinfo` (proc(5)), the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The mounted directory of the file system: for a cgroup mount, the
    /// cgroup that appears at the mount point ("/" unless a container sees a
    /// namespaced or bind-mounted part of the tree).
    pub(crate) root: String,
    pub(crate) mount_point: PathBuf,
    pub(crate) fstype: String,
    pub(crate) super_options: Vec<String>,
}

/// `36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue`:
/// six fixed fields, optional fields up to a lone `-`, then type, source and
/// super options.
pub(crate) fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, ParseError> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = || err(format!("malformed mountinfo line {line:?}"));
        let dash = fields.iter().position(|f| *f == "-").ok_or_else(bad)?;
        if dash < 6 {
            return Err(bad());
        }
        let (Some(root), Some(mount_point), Some(fstype)) =
            (fields.get(3), fields.get(4), fields.get(dash + 1))
        else {
            return Err(bad());
        };
        let super_options = fields
            .get(dash + 3)
            .map(|o| o.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        mounts.push(Mount {
            root: unescape(root),
            mount_point: PathBuf::from(unescape(mount_point)),
            fstype: (*fstype).to_owned(),
            super_options,
        });
    }
    Ok(mounts)
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal.
fn unescape(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'\\' {
            if let Some(byte) = tail.get(..3).and_then(octal_byte) {
                out.push(byte);
                rest = tail.get(3..).unwrap_or_default();
                continue;
            }
        }
        out.push(first);
        rest = tail;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn octal_byte(digits: &[u8]) -> Option<u8> {
    digits.iter().try_fold(0u8, |acc, &d| {
        let digit = d.checked_sub(b'0').filter(|v| *v < 8)?;
        acc.checked_mul(8)?.checked_add(digit)
    })
}

/// One line of `/proc/<pid>/cgroup` (cgroups(7)): `hierarchy-ID:controllers:path`.
/// cgroup v2 is the line with ID 0 and no controllers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    pub(crate) hierarchy_id: u32,
    pub(crate) controllers: Vec<String>,
    pub(crate) path: String,
}

pub(crate) fn parse_proc_cgroup(text: &str) -> Result<Vec<Membership>, ParseError> {
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || err(format!("expected \"ID:controllers:path\", found {line:?}"));
        // The path is the rest of the line: it may itself contain ':'.
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let hierarchy_id = id.parse().map_err(|_| bad())?;
        if !path.starts_with('/') {
            return Err(bad());
        }
        lines.push(Membership {
            hierarchy_id,
            controllers: controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            path: path.to_owned(),
        });
    }
    if lines.is_empty() {
        return Err(err("no cgroup lines"));
    }
    Ok(lines)
}

/// A mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// `None` for cgroup v2, the controllers (and `name=` options) for v1.
    pub(crate) v1_controllers: Option<Vec<String>>,
    /// The cgroup at `dir` (the mount's root field).
    pub(crate) root: String,
    /// The mount point as the kernel lists it.
    pub(crate) mount_point: PathBuf,
    /// Where vitals reads it: the mount point, re-rooted under `paths.sys`.
    pub(crate) dir: PathBuf,
}

impl Hierarchy {
    fn has(&self, controller: &str) -> bool {
        self.v1_controllers
            .as_ref()
            .is_some_and(|c| c.iter().any(|x| x == controller))
    }
}

/// The cgroup mounts of a mountinfo. Mount points under `/sys` are read
/// under `sys` when that is not `/sys`, so a fixture `sys` tree works with a
/// mountinfo written for a real host.
pub(crate) fn hierarchies_from_mounts(mounts: &[Mount], sys: &Path) -> Vec<Hierarchy> {
    mounts
        .iter()
        .enumerate()
        // A mount that a later one covers (the same mount point, or one above
        // it other than "/") is hidden: a container that mounts its own cgroup
        // hierarchies over /sys/fs/cgroup still lists the ones it inherited.
        .filter(|(i, m)| {
            !mounts.iter().skip(i + 1).any(|later| {
                later.mount_point != Path::new("/") && m.mount_point.starts_with(&later.mount_point)
            })
        })
        .filter_map(|(_, m)| {
            let v1_controllers = match m.fstype.as_str() {
                "cgroup2" => None,
                "cgroup" => Some(m.super_options.clone()),
                _ => return None,
            };
            let dir = match m.mount_point.strip_prefix("/sys") {
                Ok(rest) if sys != Path::new("/sys") => sys.join(rest),
                _ => m.mount_point.clone(),
            };
            Some(Hierarchy {
                v1_controllers,
                root: m.root.clone(),
                mount_point: m.mount_point.clone(),
                dir,
            })
        })
        .collect()
}

/// The hierarchies under a configured `paths.cgroup`: the directory itself
/// when it is a v2 tree (has `cgroup.controllers`); otherwise each
/// subdirectory, a v2 tree if it has `cgroup.controllers` (e.g. `unified`),
/// else a v1 hierarchy named by its controllers (`memory`, `cpu,cpuacct`).
/// Each is taken to be mounted at its root ("/").
pub(crate) fn hierarchies_from_base(base: &Path) -> std::io::Result<Vec<Hierarchy>> {
    let whole = |dir: PathBuf, v1_controllers| Hierarchy {
        v1_controllers,
        root: "/".into(),
        mount_point: dir.clone(),
        dir,
    };
    if fsread::is_file(&base.join("cgroup.controllers")) {
        return Ok(vec![whole(base.to_owned(), None)]);
    }
    let mut subdirs: Vec<(String, PathBuf)> = fsread::read_dir(base)?
        .into_iter()
        .map(|e| (e.name.to_string_lossy().into_owned(), e.path))
        .filter(|(_, path)| fsread::is_dir(path))
        .collect();
    subdirs.sort();
    Ok(subdirs
        .into_iter()
        .map(|(name, dir)| {
            if fsread::is_file(&dir.join("cgroup.controllers")) {
                whole(dir, None)
            } else {
                let controllers = name.split(',').map(str::to_owned).collect();
                whole(dir, Some(controllers))
            }
        })
        .collect())
}

/// For `target: {path: P}`: the membership a process in that cgroup would
/// have. P is either a directory under a hierarchy's mount point (its place
/// in that hierarchy is used for every hierarchy) or a cgroup path as
/// `/proc/<pid>/cgroup` writes it.
pub(crate) fn memberships_for_path(
    target: &Path,
    hierarchies: &[Hierarchy],
) -> Result<Vec<Membership>, String> {
    let under_mount = hierarchies
        .iter()
        .flat_map(|h| [(&h.dir, h), (&h.mount_point, h)])
        .filter_map(|(dir, h)| Some((dir.components().count(), target.strip_prefix(dir).ok()?, h)))
        .max_by_key(|(depth, _, _)| *depth);
    let path = match under_mount {
        Some((_, rel, h)) => {
            let rel = rel
                .to_str()
                .ok_or_else(|| format!("cgroup path {} is not UTF-8", target.display()))?;
            join_cgroup(&h.root, rel)
        }
        None => target
            .to_str()
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| {
                format!(
                    "target path {} is neither under a cgroup mount nor an absolute cgroup path",
                    target.display()
                )
            })?
            .to_owned(),
    };
    Ok(hierarchies
        .iter()
        .enumerate()
        .map(|(i, h)| Membership {
            hierarchy_id: match h.v1_controllers {
                Some(_) => u32::try_from(i + 1).unwrap_or(u32::MAX),
                None => 0,
            },
            controllers: h.v1_controllers.clone().unwrap_or_default(),
            path: path.clone(),
        })
        .collect())
}

fn join_cgroup(root: &str, rel: &str) -> String {
    let root = root.trim_end_matches('/');
    if rel.is_empty() {
        if root.is_empty() {
            "/".into()
        } else {
            root.into()
        }
    } else {
        format!("{root}/{rel}")
    }
}

/// The part of cgroup `path` below a mount whose root is `root`, or `None`
/// when the cgroup is not inside that mount (another container's cgroup seen
/// through a namespaced mount). Both are as the kernel shows them to vitals,
/// relative to vitals' cgroup namespace, so a cgroup outside it reads
/// `/../app`; a mount rooted outside it (the target's own cgroup mount, seen
/// through `<proc>/<pid>/mountinfo`) reads the same way, and compares by its
/// components like any other.
fn strip_root<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let mut rest = path.trim_start_matches('/');
    for part in root.split('/').filter(|p| !p.is_empty()) {
        let tail = rest.strip_prefix(part)?;
        rest = match tail.strip_prefix('/') {
            Some(after) => after,
            None if tail.is_empty() => tail,
            None => return None,
        };
    }
    let outside = Path::new(rest)
        .components()
        .any(|c| c == Component::ParentDir);
    (!outside).then_some(rest.trim_end_matches('/'))
}

/// Whether a cgroup path from `/proc/<pid>/cgroup` lies outside vitals' own
/// cgroup namespace (`/../sibling`), as a container runtime's other
/// containers do on cgroup v2 nodes.
pub(crate) fn outside_namespace(path: &str) -> bool {
    Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir)
}

/// The cgroup mounts of another process's mountinfo, reached through
/// `root` (`<proc>/<pid>/root`, the process's own root directory in its own
/// mount namespace).
pub(crate) fn hierarchies_in_root(mounts: &[Mount], root: &Path) -> Vec<Hierarchy> {
    let mut list = hierarchies_from_mounts(mounts, Path::new("/sys"));
    for h in &mut list {
        let rel = h.mount_point.strip_prefix("/").unwrap_or(&h.mount_point);
        h.dir = root.join(rel);
    }
    list
}

/// In a host cgroup tree mounted whole (`paths.cgroup`), the directory of a
/// cgroup whose path vitals only knows relative to its own namespace
/// (`/../app`): the directory named like the path's last part whose
/// `cgroup.procs` lists `pid` (pids read in vitals' own PID namespace, which
/// the target shares). Returns the cgroup path from the tree's root.
/// Bounded: at most `MAX_DEPTH` levels and `MAX_DIRS` directories.
pub(crate) fn find_in_tree(tree: &Path, ns_path: &str, pid: u32) -> Option<String> {
    const MAX_DEPTH: usize = 12;
    const MAX_DIRS: usize = 100_000;
    let name = Path::new(ns_path).file_name()?.to_owned();
    let mut stack = vec![(tree.to_path_buf(), 0usize)];
    let mut seen = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        seen += 1;
        if seen > MAX_DIRS {
            tracing::warn!(tree = %tree.display(), "cgroup tree search stopped after {MAX_DIRS} directories");
            return None;
        }
        if dir.file_name() == Some(name.as_os_str()) && lists_pid(&dir, pid) {
            let rel = dir.strip_prefix(tree).ok()?.to_str()?;
            return Some(format!("/{rel}"));
        }
        if depth >= MAX_DEPTH {
            continue;
        }
        let Ok(entries) = fsread::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            if entry.is_dir == Some(true) {
                stack.push((entry.path, depth + 1));
            }
        }
    }
    None
}

fn lists_pid(dir: &Path, pid: u32) -> bool {
    fsread::read_to_string(&dir.join("cgroup.procs"))
        .map(|text| text.lines().any(|l| l.trim().parse() == Ok(pid)))
        .unwrap_or(false)
}

/// The hierarchies a membership line belongs to: the v2 tree for the v2
/// line, the v1 hierarchies sharing a controller otherwise.
pub(crate) fn hierarchies_of<'a>(
    member: &'a Membership,
    hierarchies: &'a [Hierarchy],
) -> impl Iterator<Item = &'a Hierarchy> + 'a {
    hierarchies.iter().filter(move |h| match &h.v1_controllers {
        None => member.hierarchy_id == 0 && member.controllers.is_empty(),
        Some(_) => member.controllers.iter().any(|c| h.has(c)),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    V1,
    V2,
}

/// A controller's directory and which cgroup version its files follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) dir: PathBuf,
    pub(crate) flavor: Flavor,
    /// The hierarchy's mount directory: `dir`'s ancestors up to it are the
    /// cgroup's ancestors vitals can read (for their limits).
    pub(crate) top: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
    Hybrid,
}

impl Version {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
            Version::Hybrid => "hybrid",
        }
    }
}

/// Where each figure of the watched cgroup is read from this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) version: Version,
    /// The cgroup path for the info series: the first v1 path of memory,
    /// cpu, cpuacct, pids, else the v2 path.
    pub(crate) path: String,
    /// v1 cpuacct or v2 cpu.stat.
    pub(crate) cpu_usage: Option<Location>,
    /// v1 cpu (CFS) or v2 cpu.max / cpu.stat.
    pub(crate) cpu: Option<Location>,
    pub(crate) memory: Option<Location>,
    pub(crate) pids: Option<Location>,
    /// The v2 cgroup directory (PSI files), also on hybrid hosts.
    pub(crate) unified: Option<PathBuf>,
}

impl Layout {
    /// Every directory the layout names, with what it is for.
    pub(crate) fn dirs(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        [
            ("memory", self.memory.as_ref().map(|l| l.dir.as_path())),
            ("cpu", self.cpu.as_ref().map(|l| l.dir.as_path())),
            ("cpuacct", self.cpu_usage.as_ref().map(|l| l.dir.as_path())),
            ("pids", self.pids.as_ref().map(|l| l.dir.as_path())),
            ("unified", self.unified.as_deref()),
        ]
        .into_iter()
        .filter_map(|(what, dir)| Some((what, dir?)))
    }
}

impl Layout {
    /// On a hybrid host the v2 cgroup only adds figures (PSI, controllers not
    /// bound to v1), and a `target: {path}` given for the v1 layout may not
    /// exist there: drop those locations instead of failing the round.
    pub(crate) fn forget_missing_v2(&mut self) {
        if self.version != Version::Hybrid {
            return;
        }
        for slot in [
            &mut self.cpu_usage,
            &mut self.cpu,
            &mut self.memory,
            &mut self.pids,
        ] {
            if slot
                .as_ref()
                .is_some_and(|l| l.flavor == Flavor::V2 && !fsread::is_dir(&l.dir))
            {
                *slot = None;
            }
        }
        if self.unified.as_ref().is_some_and(|d| !fsread::is_dir(d)) {
            tracing::debug!(path = %self.path, "no cgroup v2 directory for the target; no pressure figures");
            self.unified = None;
        }
    }
}

/// Resolves each controller: a v1 hierarchy that has it wins; otherwise the
/// v2 cgroup (on a pure v2 host all of them; on a hybrid host the
/// controllers not bound to v1).
pub(crate) fn layout(
    hierarchies: &[Hierarchy],
    memberships: &[Membership],
) -> Result<Layout, String> {
    let v1 = |controller: &str| -> Result<Option<(Found, &str)>, String> {
        let Some(member) = memberships
            .iter()
            .find(|m| m.hierarchy_id != 0 && m.controllers.iter().any(|c| c == controller))
        else {
            return Ok(None);
        };
        locate(
            hierarchies.iter().filter(|h| h.has(controller)),
            &member.path,
            controller,
        )
        .map(|dir| dir.map(|d| (d, member.path.as_str())))
    };
    // An unreachable v2 cgroup is an error only where nothing else is found:
    // on a hybrid host it only costs the PSI figures.
    let (v2, v2_error) = match memberships
        .iter()
        .find(|m| m.hierarchy_id == 0 && m.controllers.is_empty())
    {
        Some(member) => match locate(
            hierarchies.iter().filter(|h| h.v1_controllers.is_none()),
            &member.path,
            "cgroup2",
        ) {
            Ok(found) => (found.map(|f| (f, member.path.as_str())), None),
            Err(e) => (None, Some(e)),
        },
        None => (None, None),
    };

    let mut path = None;
    let mut any_v1 = false;
    let mut pick = |controller: &str| -> Result<Option<Location>, String> {
        if let Some((found, p)) = v1(controller)? {
            any_v1 = true;
            path.get_or_insert_with(|| p.to_owned());
            return Ok(Some(Location {
                dir: found.dir,
                flavor: Flavor::V1,
                top: found.top,
            }));
        }
        Ok(v2.as_ref().map(|(found, _)| Location {
            dir: found.dir.clone(),
            flavor: Flavor::V2,
            top: found.top.clone(),
        }))
    };
    let memory = pick("memory")?;
    let cpu = pick("cpu")?;
    let cpu_usage = pick("cpuacct")?;
    let pids = pick("pids")?;
    let version = match (any_v1, v2.is_some()) {
        (true, true) => Version::Hybrid,
        (true, false) => Version::V1,
        (false, true) => Version::V2,
        (false, false) => {
            if let Some(e) = v2_error {
                return Err(e);
            }
            return Err(
                "no mounted cgroup hierarchy holds the target: no cgroup2 mount and no \
                 cgroup v1 mount of cpu, cpuacct, memory or pids matches its cgroup lines"
                    .into(),
            );
        }
    };
    if let Some(e) = v2_error {
        tracing::debug!("{e}; no cgroup v2 pressure figures");
    }
    let path = path
        .or_else(|| v2.as_ref().map(|(_, p)| (*p).to_owned()))
        .unwrap_or_else(|| "/".into());
    Ok(Layout {
        version,
        path,
        cpu_usage,
        cpu,
        memory,
        pids,
        unified: v2.map(|(found, _)| found.dir),
    })
}

/// A cgroup's directory and its hierarchy's mount directory.
struct Found {
    dir: PathBuf,
    top: PathBuf,
}

/// The directory of cgroup `path` in the first of `candidates` that holds it.
/// A hierarchy that is mounted but only partly visible is an error, so a
/// container that cannot see the target's cgroup says so.
fn locate<'a>(
    candidates: impl Iterator<Item = &'a Hierarchy>,
    path: &str,
    what: &str,
) -> Result<Option<Found>, String> {
    let mut seen = Vec::new();
    for h in candidates {
        if let Some(rel) = strip_root(path, &h.root) {
            return Ok(Some(Found {
                dir: h.dir.join(rel),
                top: h.dir.clone(),
            }));
        }
        seen.push(format!("{} (root {})", h.mount_point.display(), h.root));
    }
    if seen.is_empty() {
        Ok(None)
    } else {
        Err(format!(
            "{what} cgroup {path} is outside the mounted part of the hierarchy: {}; \
             mount the host's cgroup tree and set paths.cgroup",
            seen.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Linux 6.18, this project's hybrid test machine: /proc/self/mountinfo
    // (cgroup lines and one other) and /proc/self/cgroup, with the memory
    // cgroup renamed.
    const HYBRID_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
4:memory:/sandbox/app-1f3c
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn mountinfo_lines() {
        let mounts = parse_mountinfo(HYBRID_MOUNTINFO).unwrap();
        assert_eq!(mounts.len(), 8);
        assert_eq!(mounts[2].fstype, "cgroup");
        assert_eq!(mounts[2].super_options, ["rw", "cpu"]);
        assert_eq!(mounts[7].fstype, "cgroup2");
        assert_eq!(mounts[7].mount_point, Path::new("/sys/fs/cgroup/unified"));
        // Ubuntu 22.04 / Linux 5.15, pure v2 with optional fields; a Docker
        // container without a cgroup namespace (root is the container's
        // cgroup); an escaped space in a mount point.
        let text = "\
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
1046 1040 0:30 /system.slice/docker-4f1c.scope /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate
77 35 0:40 / /mnt/my\\040cgroups rw master:3 master:4 - cgroup cgroup rw,cpu,cpuacct
";
        let mounts = parse_mountinfo(text).unwrap();
        assert_eq!(mounts[0].root, "/");
        assert_eq!(
            mounts[0].super_options,
            ["rw", "nsdelegate", "memory_recursiveprot"]
        );
        assert_eq!(mounts[1].root, "/system.slice/docker-4f1c.scope");
        assert_eq!(mounts[2].mount_point, Path::new("/mnt/my cgroups"));
        assert_eq!(mounts[2].super_options, ["rw", "cpu", "cpuacct"]);
        for bad in [
            "31 23 0:28 / /sys/fs/cgroup rw,relatime tmpfs tmpfs rw\n",
            "31 23 - tmpfs tmpfs rw\n",
            "31 23 0:28 / /x rw -\n",
        ] {
            assert!(parse_mountinfo(bad).is_err(), "input {bad:?}");
        }
    }

    #[test]
    fn proc_cgroup_lines() {
        let lines = parse_proc_cgroup(HYBRID_CGROUP).unwrap();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[0].controllers, ["name=systemd"]);
        assert_eq!(lines[3].path, "/sandbox/app-1f3c");
        assert_eq!(lines[6].hierarchy_id, 0);
        assert!(lines[6].controllers.is_empty());
        // A path with a colon stays whole.
        let odd = parse_proc_cgroup("0::/a:b\n").unwrap();
        assert_eq!(odd[0].path, "/a:b");
        for bad in ["", "x::/\n", "0:/\n", "0::relative\n"] {
            assert!(parse_proc_cgroup(bad).is_err(), "input {bad:?}");
        }
    }

    fn hybrid_layout(sys: &str) -> Layout {
        let mounts = parse_mountinfo(HYBRID_MOUNTINFO).unwrap();
        let hierarchies = hierarchies_from_mounts(&mounts, Path::new(sys));
        layout(&hierarchies, &parse_proc_cgroup(HYBRID_CGROUP).unwrap()).unwrap()
    }

    #[test]
    fn hybrid_resolves_v1_controllers_and_unified() {
        let l = hybrid_layout("/sys");
        assert_eq!(l.version, Version::Hybrid);
        assert_eq!(l.path, "/sandbox/app-1f3c");
        let memory = l.memory.unwrap();
        assert_eq!(
            memory.dir,
            Path::new("/sys/fs/cgroup/memory/sandbox/app-1f3c")
        );
        assert_eq!(memory.flavor, Flavor::V1);
        assert_eq!(l.cpu.unwrap().dir, Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(
            l.cpu_usage.unwrap().dir,
            Path::new("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(l.unified.unwrap(), Path::new("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn mount_points_under_sys_are_rerooted() {
        let l = hybrid_layout("/tmp/fixture/sys");
        assert_eq!(
            l.pids.unwrap().dir,
            Path::new("/tmp/fixture/sys/fs/cgroup/pids")
        );
    }

    #[test]
    fn namespaced_root_is_stripped_and_outsiders_refused() {
        let mounts = parse_mountinfo(
            "1046 1040 0:30 /kubepods/pod1/abc /sys/fs/cgroup ro - cgroup2 cgroup rw\n",
        )
        .unwrap();
        let h = hierarchies_from_mounts(&mounts, Path::new("/sys"));
        let own = parse_proc_cgroup("0::/kubepods/pod1/abc/sub\n").unwrap();
        let l = layout(&h, &own).unwrap();
        assert_eq!(l.version, Version::V2);
        assert_eq!(l.path, "/kubepods/pod1/abc/sub");
        assert_eq!(l.memory.unwrap().dir, Path::new("/sys/fs/cgroup/sub"));
        for other in ["0::/kubepods/pod1/abcdef\n", "0::/../../pod2/x\n"] {
            let e = layout(&h, &parse_proc_cgroup(other).unwrap()).unwrap_err();
            assert!(e.contains("outside the mounted part"), "{e}");
        }
    }

    #[test]
    fn unreachable_unified_only_costs_pressure_on_hybrid() {
        // A container on a hybrid host whose unified mount shows another cgroup.
        let mounts = parse_mountinfo(
            "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n\
             41 31 0:38 /docker/abc /sys/fs/cgroup/unified ro - cgroup2 cgroup2 rw\n",
        )
        .unwrap();
        let h = hierarchies_from_mounts(&mounts, Path::new("/sys"));
        let lines = parse_proc_cgroup("4:memory:/docker/abc\n0::/init.scope\n").unwrap();
        let l = layout(&h, &lines).unwrap();
        assert_eq!(l.version, Version::V1);
        assert_eq!(l.unified, None);
        assert_eq!(l.memory.unwrap().dir, Path::new("/sys/fs/cgroup/memory"));
        // Without the v1 line the same problem is the error.
        let e = layout(&h, &lines[1..]).unwrap_err();
        assert!(e.contains("cgroup2 cgroup /init.scope is outside"), "{e}");
    }

    #[test]
    fn no_matching_hierarchy_is_an_error() {
        let mounts = parse_mountinfo(
            "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n",
        )
        .unwrap();
        let h = hierarchies_from_mounts(&mounts, Path::new("/sys"));
        let e = layout(&h, &parse_proc_cgroup("1:name=systemd:/\n").unwrap()).unwrap_err();
        assert!(e.contains("no mounted cgroup hierarchy"), "{e}");
    }

    #[test]
    fn target_path_under_a_mount_or_as_cgroup_path() {
        let mounts = parse_mountinfo(HYBRID_MOUNTINFO).unwrap();
        let h = hierarchies_from_mounts(&mounts, Path::new("/fx/sys"));
        for target in [
            "/sys/fs/cgroup/memory/kubepods/abc",
            "/fx/sys/fs/cgroup/cpu/kubepods/abc",
            "/kubepods/abc",
        ] {
            let m = memberships_for_path(Path::new(target), &h).unwrap();
            let l = layout(&h, &m).unwrap();
            assert_eq!(l.path, "/kubepods/abc", "target {target}");
            assert_eq!(
                l.memory.unwrap().dir,
                Path::new("/fx/sys/fs/cgroup/memory/kubepods/abc")
            );
            assert_eq!(
                l.unified.unwrap(),
                Path::new("/fx/sys/fs/cgroup/unified/kubepods/abc")
            );
        }
        assert!(memberships_for_path(Path::new("relative/x"), &h).is_err());
    }

    #[test]
    fn strip_root_cases() {
        assert_eq!(strip_root("/a/b", "/"), Some("a/b"));
        assert_eq!(strip_root("/", "/"), Some(""));
        assert_eq!(strip_root("/a/b", "/a"), Some("b"));
        assert_eq!(strip_root("/a", "/a"), Some(""));
        assert_eq!(strip_root("/ab", "/a"), None);
        assert_eq!(strip_root("/../x", "/"), None);
        // Another container's cgroup and its own cgroup mount, both seen
        // from vitals' cgroup namespace (Linux 6.18, the simulated pod).
        assert_eq!(strip_root("/../app", "/../app"), Some(""));
        assert_eq!(strip_root("/../app/sub", "/../app"), Some("sub"));
        assert_eq!(strip_root("/../appx", "/../app"), None);
        assert_eq!(strip_root("/../../pod2/x", "/../app"), None);
        assert!(outside_namespace("/../cri-containerd-4f1c.scope"));
        assert!(!outside_namespace("/kubepods.slice/x.scope"));
    }

    #[test]
    fn overmounted_hierarchies_are_hidden() {
        // Linux 6.18, the simulated pod's sidecar: the inherited host mounts,
        // then its own tmpfs and cgroup mounts over /sys/fs/cgroup.
        let mounts = parse_mountinfo(
            "98 97 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
             102 98 0:32 /../../../.. /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
             108 98 0:38 /../.. /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
             114 98 0:41 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw\n\
             117 114 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
             119 114 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
        )
        .unwrap();
        let h = hierarchies_from_mounts(&mounts, Path::new("/sys"));
        let roots: Vec<&str> = h.iter().map(|h| h.root.as_str()).collect();
        assert_eq!(roots, ["/", "/"]);
    }

    #[test]
    fn target_mounts_through_its_root() {
        // The app container's mountinfo as the sidecar reads it: its cgroup
        // v2 mount rooted at its own namespace root, outside the sidecar's.
        let mounts = parse_mountinfo(
            "1046 1040 0:30 /../cri-containerd-4f1c.scope /sys/fs/cgroup ro - cgroup2 cgroup rw\n",
        )
        .unwrap();
        let h = hierarchies_in_root(&mounts, Path::new("/proc/7/root"));
        let lines = parse_proc_cgroup("0::/../cri-containerd-4f1c.scope\n").unwrap();
        let l = layout(&h, &lines).unwrap();
        assert_eq!(l.version, Version::V2);
        assert_eq!(l.path, "/../cri-containerd-4f1c.scope");
        let memory = l.memory.unwrap();
        assert_eq!(memory.dir, Path::new("/proc/7/root/sys/fs/cgroup"));
        assert_eq!(memory.top, Path::new("/proc/7/root/sys/fs/cgroup"));
    }
}
