//! A throwaway cgroup v2 machine for the tests: a Debian cloud kernel
//! (`linux-image-cloud-amd64`'s versioned package, unpacked with
//! `dpkg-deb`, never installed), `busybox-static`, a small static helper
//! (`helper.c`, for the cgroup namespaces busybox's `unshare` lacks) and
//! the `vitals` binary with its libraries in an initramfs, booted in
//! `qemu-system-x86_64` under software emulation (no KVM needed). `init.sh`
//! is PID 1: it runs the scenarios and prints their sections on the serial
//! console, which is the VM's stdout.
//!
//! The kernel and busybox are cached under `target/vm-cache/`; the
//! initramfs is built again every run (vitals changes), uncompressed so the
//! emulated kernel spends no time on gzip.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The VM's run: the console text and its sections by name.
pub struct Vm {
    pub console: String,
    pub sections: BTreeMap<String, String>,
    /// Image build and boot to power-off.
    pub build: Duration,
    pub boot: Duration,
}

impl Vm {
    /// The text of section `name`; panics with the console's tail when it
    /// is missing.
    pub fn section(&self, name: &str) -> &str {
        match self.sections.get(name) {
            Some(text) => text,
            None => panic!(
                "no section {name:?} on the VM's console; its end:\n{}",
                tail(&self.console, 60)
            ),
        }
    }

    /// The value printed on a line `=== KEY value`.
    pub fn marker(&self, key: &str) -> Option<&str> {
        let prefix = format!("=== {key} ");
        self.console
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(str::trim)
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `target/` of this build (the vitals binary is `target/debug/vitals`).
fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_vitals"));
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target dir of the vitals binary")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Downloads the Debian package `name` into `dir` (`apt-get download`)
/// and unpacks it there; returns the unpacked tree.
fn fetch_deb(name: &str, dir: &Path) -> PathBuf {
    let tree = dir.join(format!("{name}.tree"));
    let _ = std::fs::remove_dir_all(&tree);
    run(Command::new("apt-get")
        .args(["download", "-q", name])
        .current_dir(dir));
    let deb = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}_")) && n.ends_with(".deb"))
        })
        .unwrap_or_else(|| panic!("apt-get download {name} left no .deb in {}", dir.display()));
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));
    let _ = std::fs::remove_file(&deb);
    tree
}

/// The cloud kernel's image, cached as `vm-cache/vmlinuz` (with its
/// `config` beside it), and its RAM disk module `brd.ko` (a block device
/// for the io scenario; the cloud kernel builds it as a module, and
/// uncompressed, so busybox's insmod loads it).
fn kernel(cache: &Path) -> (PathBuf, PathBuf) {
    let image = cache.join("vmlinuz");
    let brd = cache.join("brd.ko");
    if image.exists() && brd.exists() {
        return (image, brd);
    }
    // linux-image-cloud-amd64 is a metapackage: its one dependency is the
    // versioned image package (linux-image-6.1.0-N-cloud-amd64 on bookworm).
    let depends = run(Command::new("apt-cache").args(["depends", "linux-image-cloud-amd64"]));
    let package = depends
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .filter(|p| p.starts_with("linux-image-"))
        .unwrap_or_else(|| panic!("no image package in apt-cache depends:\n{depends}"))
        .to_string();
    let tree = fetch_deb(&package, cache);
    for entry in std::fs::read_dir(tree.join("boot")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("config-") {
            std::fs::copy(&path, cache.join("config")).unwrap();
        }
        if let Some(version) = name.strip_prefix("vmlinuz-") {
            std::fs::copy(&path, cache.join("vmlinuz.part")).unwrap();
            std::fs::write(cache.join("kernel-version"), version).unwrap();
        }
    }
    let version = std::fs::read_to_string(cache.join("kernel-version")).expect("no vmlinuz");
    std::fs::copy(
        tree.join(format!("lib/modules/{version}/kernel/drivers/block/brd.ko")),
        &brd,
    )
    .expect("brd.ko in the kernel package");
    std::fs::remove_dir_all(&tree).unwrap();
    std::fs::rename(cache.join("vmlinuz.part"), &image).expect("no vmlinuz in the package");
    (image, brd)
}

fn is_static(path: &Path) -> bool {
    // ldd exits non-zero with "not a dynamic executable" on a static one.
    Command::new("ldd")
        .arg(path)
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(false)
}

/// A static busybox: the host's when it is busybox-static, else the
/// package's, cached.
fn busybox(cache: &Path) -> PathBuf {
    let cached = cache.join("busybox");
    if cached.exists() {
        return cached;
    }
    let host = PathBuf::from("/bin/busybox");
    if host.exists() && is_static(&host) {
        return host;
    }
    let tree = fetch_deb("busybox-static", cache);
    std::fs::copy(tree.join("bin/busybox"), &cached).unwrap();
    std::fs::remove_dir_all(&tree).unwrap();
    cached
}

/// The shared libraries `ldd` lists for `binary`, with the loader.
fn libraries(binary: &Path) -> Vec<PathBuf> {
    run(Command::new("ldd").arg(binary))
        .lines()
        .filter_map(|l| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let path = match l.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// An initramfs in the kernel's `newc` cpio format, uncompressed
/// (Documentation/driver-api/early-userspace/buffer-format.rst).
struct Cpio {
    out: Vec<u8>,
    ino: u32,
    dirs: Vec<String>,
}

impl Cpio {
    fn new() -> Cpio {
        Cpio {
            out: Vec::new(),
            ino: 1,
            dirs: Vec::new(),
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    /// A directory and its parents, once each.
    fn dir(&mut self, path: &str) {
        let mut sofar = String::new();
        for part in path.trim_matches('/').split('/') {
            if !sofar.is_empty() {
                sofar.push('/');
            }
            sofar.push_str(part);
            if !self.dirs.contains(&sofar) {
                self.dirs.push(sofar.clone());
                let name = sofar.clone();
                self.entry(&name, 0o040755, &[]);
            }
        }
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, 0o100000 | mode, data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

/// Whether this machine can emulate the VM at all.
pub fn qemu() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/qemu-system-x86_64");
    path.exists().then_some(path)
}

/// Builds the image with `init` (a shell script) as PID 1 and boots it;
/// returns the console once the VM powered off. None (after a loud
/// message) where qemu is not installed.
pub fn boot(init: &str, timeout: Duration) -> Option<Vm> {
    let Some(qemu) = qemu() else {
        eprintln!(
            "\n\n*** SKIPPED: qemu-system-x86_64 is not installed (Debian package \
             qemu-system-x86): the cgroup v2 kernel tests did not run ***\n"
        );
        return None;
    };
    let started = Instant::now();
    let cache = target_dir().join("vm-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let (kernel, brd) = kernel(&cache);
    let busybox = busybox(&cache);
    let work = tempfile::tempdir().unwrap();

    let helper = work.path().join("helper");
    run(Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&helper)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/helper.c")));
    // The debug binary is 160 MB with its debug info, 30 MB without.
    let vitals = work.path().join("vitals");
    run(Command::new("strip")
        .arg("-o")
        .arg(&vitals)
        .arg(env!("CARGO_BIN_EXE_vitals")));

    let mut cpio = Cpio::new();
    for dir in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "etc",
        "host/sys/fs/cgroup",
    ] {
        cpio.dir(dir);
    }
    cpio.file("init", 0o755, init.as_bytes());
    cpio.file("bin/busybox", 0o755, &std::fs::read(&busybox).unwrap());
    let helper_bytes = std::fs::read(&helper).unwrap();
    cpio.file("bin/helper", 0o755, &helper_bytes);
    // The pod's infrastructure container: its comm must be "pause".
    cpio.file("bin/pause", 0o755, &helper_bytes);
    cpio.file("bin/vitals", 0o755, &std::fs::read(&vitals).unwrap());
    cpio.file("lib/modules/brd.ko", 0o644, &std::fs::read(&brd).unwrap());
    for lib in libraries(Path::new(env!("CARGO_BIN_EXE_vitals"))) {
        let bytes = std::fs::read(&lib).unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
        cpio.file(lib.to_str().unwrap(), 0o755, &bytes);
    }
    cpio.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n",
    );
    cpio.file("etc/group", 0o644, b"root:x:0:\napp:x:1000:\n");
    let initrd = work.path().join("initrd.cpio");
    std::fs::File::create(&initrd)
        .and_then(|mut f| f.write_all(&cpio.finish()))
        .unwrap();
    let build = started.elapsed();

    let booted = Instant::now();
    let mut child = Command::new(qemu)
        .args([
            "-machine", "q35", "-accel", "tcg", "-m", "512M", "-smp", "1",
        ])
        .args(["-nographic", "-no-reboot", "-kernel"])
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        // loglevel=1: the OOM killer's report stays off the console the
        // test parses.
        .arg(
            "console=ttyS0 loglevel=1 panic=-1 rdinit=/init cgroup_no_v1=all \
             systemd.unified_cgroup_hierarchy=1",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-x86_64");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut console = String::new();
    let mut done = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let line = line.trim_end_matches('\r');
                console.push_str(line);
                console.push('\n');
                if line == "=== DONE" {
                    done = true;
                }
            }
            Err(_) => break,
        }
    }
    if !done {
        let _ = child.kill();
    }
    let status = child.wait();
    let boot = booted.elapsed();
    // Kept for a look after a failure.
    let _ = std::fs::write(cache.join("console.log"), &console);
    assert!(
        done,
        "the VM did not finish its scenarios in {timeout:?} (qemu: {status:?}); console's end:\n{}",
        tail(&console, 80)
    );
    Some(Vm {
        sections: sections(&console),
        console,
        build,
        boot,
    })
}

/// `=== BEGIN name` … `=== END name` blocks of the console.
fn sections(console: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in console.lines() {
        if let Some(name) = line.strip_prefix("=== BEGIN ") {
            current = Some((name.to_string(), String::new()));
        } else if let Some(name) = line.strip_prefix("=== END ") {
            if let Some((open, text)) = current.take() {
                if open == name {
                    out.insert(open, text);
                }
            }
        } else if let Some((_, text)) = &mut current {
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// The kernel's files in a dump section: file name → its text.
pub fn files(section: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        if let Some(name) = line.strip_prefix("--- ") {
            current = Some(name.to_string());
            out.entry(name.to_string()).or_default();
        } else if let Some(name) = &current {
            let text = out.get_mut(name).unwrap();
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// `key value` of a flat keyed file (cpu.stat, memory.stat, memory.events).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// `total=` of a PSI file's `some` or `full` line, in microseconds.
pub fn psi_total(text: &str, line: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{line} ")))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}
