//! Shared helpers of the integration tests: start the real `vitals` binary
//! on a config in a temp dir ([`Daemon::run`]), talk HTTP/1.1 to it with a
//! few lines of std, read its log; the repository root, fixtures, free ports.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub mod catalog;

/// The repository root (where Cargo.toml is).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// Runs `vitals ARGS` to its end (killed after 20 s): exit status, stdout,
/// stderr. For the commands and failures that exit on their own.
pub fn run_to_exit(args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vitals");
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for vitals") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vitals {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    )
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// Copies the tree `from` into `to`, recursively, so a test may change a
/// fixture without touching the committed one.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A running vitals; killed on drop (then its temp dir, if it has one, is
/// removed).
pub struct Daemon {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
    dir: Option<TempDir>,
}

impl Daemon {
    /// The usual start of a test: a fresh temp dir holding `vitals.yaml`
    /// with `config`, vitals started on it, and ready.
    pub fn run(config: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::run_in(dir, config, &[], &[])
    }

    /// [`Daemon::run`] in a temp dir the test has prepared (files the config
    /// names), with more arguments and environment.
    pub fn run_in(dir: TempDir, config: &str, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let d = Self::spawn_in(dir, config, args, env);
        d.wait_ready();
        d
    }

    /// [`Daemon::run_in`] without waiting for readiness (a TLS listener, a
    /// first round that is meant to hang).
    pub fn spawn_in(dir: TempDir, config: &str, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let path = temp_config(dir.path(), "vitals.yaml", config);
        let mut all = vec!["--config", path.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        let mut d = Self::start_with(&all, env);
        d.dir = Some(dir);
        d
    }

    /// The temp dir of [`Daemon::run`] and its kin.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("started by Daemon::run").path()
    }

    /// The config file of [`Daemon::run`] and its kin, to rewrite for a reload.
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("vitals.yaml")
    }

    /// Starts `vitals --config FILE --listen 127.0.0.1:0` and waits for its
    /// "vitals started" line to learn the port.
    pub fn start(config: &Path) -> Daemon {
        Self::start_with(&["--config", config.to_str().expect("utf-8 path")], &[])
    }

    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vitals"));
        cmd.args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start vitals");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    // Text logs say `listen=ADDR`, JSON logs `"listen":"ADDR"`.
                    let addr = line
                        .split("listen=")
                        .nth(1)
                        .and_then(|a| a.split_whitespace().next())
                        .or_else(|| {
                            line.split("\"listen\":\"")
                                .nth(1)
                                .and_then(|a| a.split('"').next())
                        });
                    // The line is in the log before the caller learns the
                    // address, so `log()` right after the start has it.
                    {
                        let mut log = log.lock().unwrap();
                        log.push_str(&line);
                        log.push('\n');
                    }
                    if let (Some(addr), true) = (addr, line.contains("vitals started")) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr.to_owned());
                        }
                    }
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("vitals did not start; log:\n{}", log.lock().unwrap());
            }
        };
        Daemon {
            child,
            addr,
            log,
            dir: None,
        }
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        request(&self.addr, "GET", path, &[])
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        request(&self.addr, method, path, headers)
    }

    /// Polls until `/health/ready` answers 200 (or panics after 20 s).
    pub fn wait_ready(&self) {
        self.wait_until("ready", |d| d.get("/health/ready").status == 200);
    }

    /// Polls `cond` every 100 ms for at most 45 s (a reconnect backoff).
    pub fn wait_until(&self, what: &str, cond: impl Fn(&Daemon) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(45);
        while Instant::now() < deadline {
            if cond(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}; log:\n{}", self.log());
    }

    /// `/metrics` (checked against the catalog), `/status`, `/` and the log.
    pub fn surfaces(&self) -> Surfaces {
        let metrics = self.get("/metrics").text();
        catalog::assert_families_in_catalog(&metrics);
        Surfaces {
            metrics,
            status: self.get("/status").text(),
            index: self.get("/").text(),
            log: self.log(),
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("vitals did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connect to vitals");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// The `last_error` of `source` in the daemon's `/status` JSON.
pub fn last_error(status: &str, source: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(status).expect("/status is JSON");
    json["sources"]
        .as_array()?
        .iter()
        .find(|s| s["source"] == source)?["last_error"]
        .as_str()
        .map(str::to_owned)
}

/// Everything a user can see of a running daemon, taken at one moment.
pub struct Surfaces {
    pub metrics: String,
    pub status: String,
    pub index: String,
    pub log: String,
}

impl Surfaces {
    /// No secret in the metrics, `/status`, the page or the log.
    pub fn assert_no_secret(&self, secrets: &[&str]) {
        for secret in secrets {
            for (what, text) in [
                ("/metrics", &self.metrics),
                ("/status", &self.status),
                ("/", &self.index),
                ("log", &self.log),
            ] {
                assert!(!text.contains(secret), "{what} contains a password");
            }
        }
    }
}

/// The value of the first sample line `name{...labels...} value` whose
/// labels contain every `k="v"` of `labels`.
pub fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, r)) => (m, r),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse().ok())?
        })
}

/// Writes `text` to `dir/name`.
pub fn temp_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs headless Chromium (Debian package `chromium`) with a throwaway
/// profile directory.
pub fn chromium(args: &[&str], profile: &Path) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium not found: install the Debian package `chromium` (scripts/test.sh does)")
}

/// Takes a PNG screenshot of `url` into `shot` (`size` as `W,H`) and checks
/// it is one; copies it to `$VITALS_KEEP_SCREENSHOT` when that is set.
pub fn screenshot(url: &str, shot: &Path, size: &str, profile: &Path) {
    let out = chromium(
        &[
            &format!("--window-size={size}"),
            &format!("--screenshot={}", shot.display()),
            url,
        ],
        profile,
    );
    assert!(out.status.success());
    let png = std::fs::read(shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    if let Ok(keep) = std::env::var("VITALS_KEEP_SCREENSHOT") {
        std::fs::copy(shot, keep).unwrap();
    }
}

/// Percent-encodes a query parameter (the receivers' and Prometheus'
/// query APIs).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A tiny HTTP/1.1 server on a loopback port for the rest of the test:
/// every GET is answered with `respond(path)`'s content type and body
/// (an application's `/metrics`). Returns the port.
pub fn serve(respond: impl Fn(&str) -> (&'static str, String) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let respond = Arc::new(respond);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let respond = respond.clone();
            std::thread::spawn(move || {
                let Ok(read) = conn.try_clone() else { return };
                let mut reader = BufReader::new(read);
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    // Headers up to the blank line; a GET has no body.
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line.trim_end().is_empty() {
                            break;
                        }
                    }
                    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
                    let (content_type, body) = respond(path);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if conn.write_all(head.as_bytes()).is_err()
                        || conn.write_all(body.as_bytes()).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Waits up to `limit` for `cond`, checking every 200 ms; fails the test
/// naming `what` if it never holds.
pub fn poll(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Unix time now, in seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
