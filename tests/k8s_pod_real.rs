//! A Kubernetes pod built for real on this kernel, and vitals reading the
//! application container's cgroup from a sidecar in its own cgroup
//! namespace, as on a cgroup v2 node with containerd or CRI-O.
//!
//! The pod: cgroups `<pod>/app` (64 MiB, 0.2 core; a busy loop and 16 MiB
//! held by python3), `<pod>/app2` (no limits
//! of its own) and `<pod>/sidecar` under a pod cgroup limited to 96 MiB and
//! 0.5 core; one PID namespace for all (`shareProcessNamespace: true`) whose
//! PID 1 is a process named `pause`; each container in its own cgroup and
//! mount namespace with the cgroup hierarchies mounted inside it, so the
//! sidecar sees the app's cgroup as `/../app`. vitals runs as `vitals once`
//! inside the sidecar; the test reads the kernel's files from the host side.
//!
//! Needs root, `unshare`/`nsenter`/`setpriv` (util-linux) and cgroup v1
//! cpu, cpuacct, memory and pids hierarchies plus the unified cgroup2 mount
//! (a hybrid host, like this project's test machine); skips with a printed
//! reason otherwise. Bounded: every process is killed and every cgroup
//! removed by a guard, also when an assertion fails.

mod cgroupfs;
mod common;

use cgroupfs::{own_cgroups, read_u64, write};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "pids", "unified"];
const APP_MEMORY: u64 = 64 << 20;
const POD_MEMORY: u64 = 96 << 20;

/// The test's own cgroup directory per hierarchy (v1 controllers by name,
/// "unified" for cgroup2).
fn own_dirs() -> BTreeMap<String, PathBuf> {
    let own = own_cgroups();
    let mut dirs = own.v1;
    if let Some(v2) = own.v2 {
        dirs.insert("unified".into(), v2);
    }
    dirs
}

/// The pod; dropping it kills PID 1 of the pod's PID namespace (which takes
/// every process in it) and removes the cgroups.
struct Pod {
    tmp: tempfile::TempDir,
    /// Hierarchy name -> the pod cgroup directory.
    pod: BTreeMap<String, PathBuf>,
    /// `unshare --pid --fork`, the parent of the pause process.
    unshare: Option<Child>,
    pause_pid: u32,
    containers: Vec<Child>,
    created: Vec<PathBuf>,
}

impl Drop for Pod {
    fn drop(&mut self) {
        if self.pause_pid != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pause_pid.to_string()])
                .status();
        }
        // Killing PID 1 ends the namespace; each parent (`unshare --fork`,
        // `nsenter -p`) then reaps its child and exits. Killed only if it
        // does not, so no process is left to init unreaped.
        for child in self.containers.iter_mut().chain(self.unshare.as_mut()) {
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        cgroupfs::remove_cgroups(&self.created);
    }
}

/// Shell that moves itself into `container`'s cgroups (by the pid the pod's
/// PID namespace gives it: cgroup.procs reads pids in the writer's namespace).
fn join(pod: &BTreeMap<String, PathBuf>, container: &str) -> String {
    pod.values()
        .map(|dir| format!("echo $$ > {}/{container}/cgroup.procs", dir.display()))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Shell, run after `unshare --cgroup --mount`: mounts the hierarchies as a
/// container runtime does, rooted at the new cgroup namespace. With
/// `host_tree`, first bind-mounts the host's hierarchies at /mnt (the
/// hostPath mode).
fn mount_cgroups(host_tree: bool) -> String {
    let mut script = String::new();
    if host_tree {
        script.push_str("mount -t tmpfs tmpfs /mnt && ");
        for c in CONTROLLERS {
            script.push_str(&format!(
                "mkdir /mnt/{c} && mount --bind /sys/fs/cgroup/{c} /mnt/{c} && "
            ));
        }
    }
    script.push_str("mount -t tmpfs tmpfs /sys/fs/cgroup");
    for c in CONTROLLERS {
        let how = match c {
            "unified" => "-t cgroup2 cgroup2".to_owned(),
            _ => format!("-t cgroup -o {c} cgroup"),
        };
        script.push_str(&format!(
            " && mkdir /sys/fs/cgroup/{c} && mount {how} /sys/fs/cgroup/{c}"
        ));
    }
    script
}

/// A shell-quoted word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Pod {
    /// Builds the pod, or says why it cannot here.
    fn build() -> Result<Pod, String> {
        let own = own_dirs();
        let mut parents = BTreeMap::new();
        for c in CONTROLLERS {
            match own.get(c) {
                Some(dir) if dir.is_dir() => parents.insert(c.to_owned(), dir.clone()),
                _ => return Err(format!("no cgroup {c} hierarchy mounted whole")),
            };
        }
        for tool in ["unshare", "nsenter", "setpriv"] {
            let found = Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .status();
            if !found.is_ok_and(|s| s.success()) {
                return Err(format!("{tool} not available"));
            }
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!("vitals-pod-{}-{nanos}", std::process::id());
        let mut pod = Pod {
            tmp: tempfile::tempdir().map_err(|e| e.to_string())?,
            pod: parents
                .iter()
                .map(|(c, dir)| (c.clone(), dir.join(&name)))
                .collect(),
            unshare: None,
            pause_pid: 0,
            containers: Vec::new(),
            created: Vec::new(),
        };
        for dir in pod.pod.values() {
            for sub in ["", "app", "app2", "sidecar"] {
                let d = dir.join(sub);
                match std::fs::create_dir(&d) {
                    Ok(()) => pod.created.push(d),
                    // EPERM/EACCES, or EROFS (30) where /sys/fs/cgroup is read-only.
                    Err(e)
                        if e.kind() == std::io::ErrorKind::PermissionDenied
                            || e.raw_os_error() == Some(30) =>
                    {
                        return Err(format!("the kernel refused mkdir {}: {e}", d.display()));
                    }
                    Err(e) => panic!("mkdir {}: {e}", d.display()),
                }
            }
        }
        let memory = &pod.pod["memory"];
        write(
            &memory.join("memory.limit_in_bytes"),
            &POD_MEMORY.to_string(),
        );
        write(
            &memory.join("app/memory.limit_in_bytes"),
            &APP_MEMORY.to_string(),
        );
        let cpu = &pod.pod["cpu"];
        write(&cpu.join("cpu.cfs_quota_us"), "50000");
        write(&cpu.join("app/cpu.cfs_quota_us"), "20000");

        // PID 1 of the pod: a copy of sleep named `pause`, as the pause
        // container's process is. Bounded: 300 s at most.
        let pause = pod.tmp.path().join("pause");
        std::fs::copy("/bin/sleep", &pause).map_err(|e| e.to_string())?;
        let unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc"])
            .arg(&pause)
            .arg("300")
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let unshare_pid = unshare.id();
        pod.unshare = Some(unshare);
        let children = format!("/proc/{unshare_pid}/task/{unshare_pid}/children");
        let deadline = Instant::now() + Duration::from_secs(10);
        pod.pause_pid = loop {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next().and_then(|p| p.parse().ok()) {
                break pid;
            }
            if Instant::now() > deadline {
                return Err("unshare --pid --fork started no pause process".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };

        // app: a busy loop against its 0.2-core quota (30M iterations of a
        // shell loop, far more than the test lasts; killed with the pod).
        let busy = "marker=vitals-pod-app; i=0; while [ $i -lt 30000000 ]; do i=$((i+1)); done";
        // Beside it, 16 MiB written and held (bounded to 300 s), so the
        // memory figure is large and steady enough to compare in percent.
        let hold = "b = b'x' * (16 << 20); import time; time.sleep(300)";
        pod.start(
            "app",
            &format!(
                "{{ python3 -c {} & }} && exec sh -c {}",
                quote(hold),
                quote(busy)
            ),
        )?;
        // app2: no limit of its own.
        pod.start("app2", "exec sleep 300")?;
        // Both are in their cgroups once their memory.usage is charged.
        let deadline = Instant::now() + Duration::from_secs(10);
        for c in ["app", "app2"] {
            let procs = pod.pod["memory"].join(c).join("cgroup.procs");
            while std::fs::read_to_string(&procs)
                .unwrap_or_default()
                .trim()
                .is_empty()
            {
                if Instant::now() > deadline {
                    return Err(format!("{c} never joined its cgroup"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // The app's 16 MiB in place, then a moment to settle.
        let usage = pod.pod["memory"].join("app/memory.usage_in_bytes");
        while read_u64(&usage) < 16 << 20 {
            if Instant::now() > deadline {
                return Err("the app never held its 16 MiB".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500));
        Ok(pod)
    }

    /// `nsenter` into the pod's PID and mount namespaces, join the
    /// container's cgroups, then a new cgroup and mount namespace with the
    /// hierarchies mounted inside it; then `then`.
    fn container_command(&self, container: &str, host_tree: bool, then: &str) -> Command {
        let inner = format!("{} && {then}", mount_cgroups(host_tree));
        let outer = format!(
            "{} && exec unshare --cgroup --mount sh -c {}",
            join(&self.pod, container),
            quote(&inner)
        );
        let mut cmd = Command::new("nsenter");
        cmd.args([
            "-t",
            &self.pause_pid.to_string(),
            "-p",
            "-m",
            "--",
            "sh",
            "-c",
        ])
        .arg(outer)
        .stdin(Stdio::null());
        cmd
    }

    fn start(&mut self, container: &str, then: &str) -> Result<(), String> {
        let child = self
            .container_command(container, false, then)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        self.containers.push(child);
        Ok(())
    }

    /// `vitals once` in the sidecar with `cgroup:` config `cgroup`; `prefix`
    /// goes before the vitals command (e.g. a capability drop).
    fn sidecar(&self, cgroup: &str, host_tree: bool, prefix: &str) -> Output {
        let config = self.tmp.path().join(format!("vitals-{}.yaml", nanos()));
        let paths = if host_tree {
            "paths: {cgroup: /mnt}\n"
        } else {
            ""
        };
        write(
            &config,
            &format!("{paths}sources:\n  host: {{enabled: false}}\n  cgroup: {cgroup}\n"),
        );
        let vitals = env!("CARGO_BIN_EXE_vitals");
        let then = format!(
            "exec {prefix} {} --config {} once",
            quote(vitals),
            quote(&config.display().to_string())
        );
        let mut cmd = self.container_command("sidecar", host_tree, &then);
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the sidecar");
        wait_bounded(child, Duration::from_secs(60))
    }

    fn host_file(&self, controller: &str, container: &str, file: &str) -> PathBuf {
        self.pod[controller].join(container).join(file)
    }
}

fn nanos() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default()
}

/// Waits for `child` at most `limit`, killing it after.
fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("sidecar output")
}

/// The value of the sample of `name` whose labels include all of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, v) = line.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            return None;
        }
        let have = rest.trim_end_matches('}');
        labels
            .iter()
            .all(|(k, want)| have.split(',').any(|kv| kv == format!("{k}=\"{want}\"")))
            .then(|| v.parse().ok())?
    })
}

fn containers(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("vitals_cgroup_info{"))
        .filter_map(|l| {
            let start = l.find("container=\"")? + "container=\"".len();
            Some(l.get(start..)?.split('"').next()?.to_owned())
        })
        .collect();
    names.sort();
    names
}

fn stdout_ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "vitals once failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every family, the optional `container` label aside, is the catalog's.
    common::catalog::assert_families_in_catalog(&stdout);
    stdout
}

#[test]
fn sidecar_reads_the_app_container_cgroup_across_namespaces() {
    let pod = match Pod::build() {
        Ok(pod) => pod,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let cpus = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as f64;

    let host_throttled = || {
        let stat = std::fs::read_to_string(pod.host_file("cpu", "app", "cpu.stat")).unwrap();
        stat.lines()
            .find_map(|l| l.strip_prefix("nr_throttled "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("nr_throttled in the app's cpu.stat")
    };
    let hb = host_throttled();

    // 1. Through the app's own mount namespace, every container.
    let usage_file = pod.host_file("memory", "app", "memory.usage_in_bytes");
    let before = read_u64(&usage_file) as f64;
    let first = stdout_ok(&pod.sidecar("{target: {container: auto}}", false, ""));
    let after = read_u64(&usage_file) as f64;
    assert_eq!(containers(&first), ["app", "app2"], "{first}");
    let app = [("container", "app")];
    let usage = value(&first, "vitals_cgroup_memory_usage_bytes", &app).expect("usage");
    let (low, high) = (before.min(after), before.max(after));
    assert!(
        low * 0.97 <= usage && usage <= high * 1.03,
        "vitals {usage} vs memory.usage_in_bytes read around it [{before}, {after}]"
    );
    assert_eq!(
        value(&first, "vitals_cgroup_memory_limit_bytes", &app),
        Some(APP_MEMORY as f64)
    );
    assert_eq!(
        value(&first, "vitals_cgroup_cpu_limit_cores", &app),
        Some(0.2)
    );
    for resource in ["cpu", "memory"] {
        let labels = [
            ("container", "app"),
            ("resource", resource),
            ("source", "cgroup"),
        ];
        assert_eq!(
            value(&first, "vitals_cgroup_limit_source", &labels),
            Some(1.0),
            "{resource}: {first}"
        );
    }
    let info = [("container", "app"), ("path", "/../app")];
    assert_eq!(value(&first, "vitals_cgroup_info", &info), Some(1.0));
    // app2 has no limit of its own: memory from the pod cgroup (v1
    // hierarchical_memory_limit; the ancestors themselves are out of the
    // app2 container's sight), CPU from the machine.
    let app2 = [("container", "app2")];
    assert_eq!(
        value(&first, "vitals_cgroup_memory_limit_bytes", &app2),
        Some(POD_MEMORY as f64)
    );
    let ancestor = [
        ("container", "app2"),
        ("resource", "memory"),
        ("source", "ancestor"),
    ];
    assert_eq!(
        value(&first, "vitals_cgroup_limit_source", &ancestor),
        Some(1.0)
    );
    assert_eq!(
        value(&first, "vitals_cgroup_cpu_limit_cores", &app2),
        Some(cpus)
    );
    let throttled_before = value(&first, "vitals_cgroup_cpu_throttled_periods_total", &app)
        .expect("throttled periods");
    // 2. A second round: throttling of the busy loop keeps rising.
    std::thread::sleep(Duration::from_millis(1500));
    let second = stdout_ok(&pod.sidecar("{target: {container: auto}}", false, ""));
    let throttled_after = value(&second, "vitals_cgroup_cpu_throttled_periods_total", &app)
        .expect("throttled periods");
    assert!(
        throttled_after > throttled_before,
        "throttled periods {throttled_before} then {throttled_after}"
    );
    let ha = host_throttled();
    assert!(
        hb <= throttled_before && throttled_after <= ha,
        "vitals {throttled_before}, {throttled_after} vs the kernel's {hb}, {ha}"
    );

    // 3. The issue's own case: a process regex, no container label.
    let by_regex =
        stdout_ok(&pod.sidecar("{target: {process: 'marker=vitals-pod-app'}}", false, ""));
    assert_eq!(
        value(&by_regex, "vitals_cgroup_memory_limit_bytes", &[]),
        Some(APP_MEMORY as f64)
    );
    assert!(!by_regex.contains("container=\""), "{by_regex}");

    // 4. The host's tree mounted (hostPath mode): the same cgroups by their
    // full paths, and the pod's CPU limit now visible as app2's ancestor.
    let host = stdout_ok(&pod.sidecar("{target: {container: auto}}", true, ""));
    assert_eq!(containers(&host), ["app", "app2"], "{host}");
    assert_eq!(
        value(&host, "vitals_cgroup_memory_limit_bytes", &app),
        Some(APP_MEMORY as f64)
    );
    assert_eq!(
        value(&host, "vitals_cgroup_cpu_limit_cores", &app),
        Some(0.2)
    );
    assert_eq!(
        value(&host, "vitals_cgroup_cpu_limit_cores", &app2),
        Some(0.5)
    );
    let cpu_ancestor = [
        ("container", "app2"),
        ("resource", "cpu"),
        ("source", "ancestor"),
    ];
    assert_eq!(
        value(&host, "vitals_cgroup_limit_source", &cpu_ancestor),
        Some(1.0),
        "{host}"
    );
    let full_path = host
        .lines()
        .find(|l| l.starts_with("vitals_cgroup_info{") && l.contains("container=\"app\""))
        .expect("info");
    let pod_name = pod.pod["memory"]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        full_path.contains(&format!("{pod_name}/app\"")) && !full_path.contains("/.."),
        "{full_path}"
    );

    // 5. Without CAP_SYS_PTRACE the app's root is out of reach: one line says
    // what is missing.
    let denied = pod.sidecar(
        "{target: {container: auto}}",
        false,
        "setpriv --bounding-set -sys_ptrace --inh-caps -sys_ptrace",
    );
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("source cgroup failed"))
        .unwrap_or_else(|| panic!("no failure line: {stderr}"));
    for want in [
        "/../app",
        "Permission denied",
        "CAP_SYS_PTRACE",
        "paths.cgroup",
    ] {
        assert!(line.contains(want), "{want} missing: {line}");
    }
    println!(
        "simulated pod, app container: memory {usage} bytes (kernel memory.usage_in_bytes \
         {before}..{after}), limit {} (kernel {}), cpu quota {} cores (kernel cpu.cfs_quota_us \
         {} / cpu.cfs_period_us {}), throttled periods {throttled_before} -> {throttled_after} \
         (kernel nr_throttled {hb} -> {ha})",
        APP_MEMORY,
        read_u64(&pod.host_file("memory", "app", "memory.limit_in_bytes")),
        0.2,
        read_u64(&pod.host_file("cpu", "app", "cpu.cfs_quota_us")),
        read_u64(&pod.host_file("cpu", "app", "cpu.cfs_period_us")),
    );
    drop(pod);
}
