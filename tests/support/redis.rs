//! Throwaway Redis primary and replica (Debian's redis-server) for the
//! integration tests, on free loopback ports in a temporary directory, with
//! a password, no persistence and `maxmemory 64mb` on the primary.
//!
//! Everything started is stopped when the [`Pair`] is dropped, on a panic
//! too. One pair per test binary; cases run in order.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const REDIS_SERVER: &str = "/usr/bin/redis-server";
pub const REDIS_CLI: &str = "/usr/bin/redis-cli";
/// The `requirepass` of both servers (the tests also grep for it).
pub const REDIS_PASSWORD: &str = "R3dis-Secret-Pw-5k";

/// One redis-server process.
pub struct Server {
    pub port: u16,
    /// Its unix socket, beside the TCP port.
    pub socket: PathBuf,
    dir: PathBuf,
    args: Vec<String>,
    /// Behind a lock so a case holding `&Pair` can stop and start it.
    child: Mutex<Option<Child>>,
}

impl Server {
    fn spawn(&self) {
        let log = std::fs::File::create(self.dir.join(format!("redis-{}.log", self.port)))
            .expect("redis log file");
        let child = Command::new(REDIS_SERVER)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("starting redis-server (Debian package redis-server)");
        *self.child.lock().expect("lock") = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        while self.cli_raw(&["PING"]).trim() != "PONG" {
            assert!(
                Instant::now() < until,
                "redis-server on {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child
            .lock()
            .expect("lock")
            .as_ref()
            .map(Child::id)
            .expect("server running")
    }

    /// Stops the server (SIGKILL: what a crash or an OOM kill looks like).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().expect("lock").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn start(&self) {
        assert!(
            self.child.lock().expect("lock").is_none(),
            "already running"
        );
        self.spawn();
    }

    /// Pauses or resumes the whole process (SIGSTOP / SIGCONT).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    fn cli_raw(&self, args: &[&str]) -> String {
        let out = Command::new(REDIS_CLI)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .env("REDISCLI_AUTH", REDIS_PASSWORD)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli (Debian package redis-tools)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One command through redis-cli; its reply as redis-cli prints it.
    pub fn cli(&self, args: &[&str]) -> String {
        self.cli_raw(args)
    }

    /// Many commands, one per line, through one redis-cli (one connection).
    pub fn batch(&self, commands: &[String]) -> String {
        let mut child = Command::new(REDIS_CLI)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .env("REDISCLI_AUTH", REDIS_PASSWORD)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli");
        let mut stdin = child.stdin.take().expect("stdin");
        for c in commands {
            writeln!(stdin, "{c}").expect("writing to redis-cli");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A field of `INFO`, as a number.
    pub fn info_field(&self, field: &str) -> f64 {
        let text = self.cli(&["INFO", "everything"]);
        text.lines()
            .find_map(|l| l.trim_end().strip_prefix(&format!("{field}:")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric {field} in INFO"))
    }

    /// `calls` of every command from `INFO commandstats`, by command name.
    pub fn command_calls(&self) -> std::collections::BTreeMap<String, u64> {
        self.cli(&["INFO", "commandstats"])
            .lines()
            .filter_map(|l| {
                let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
                Some((name.to_owned(), calls.trim().parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self
            .child
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(Child::id))
        {
            // A test that failed while the server was paused must not
            // leave a stopped process behind.
            let _ = Command::new("kill")
                .args(["-CONT", &child.to_string()])
                .status();
        }
        self.stop();
    }
}

/// A primary and its replica.
pub struct Pair {
    pub primary: Server,
    pub replica: Server,
    /// A file holding [`REDIS_PASSWORD`], for `password_file`.
    pub password_file: PathBuf,
    _dir: TempDir,
}

fn server(dir: &Path, extra: &[String]) -> Server {
    let port = crate::support::free_port();
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--dir",
        &dir.display().to_string(),
        "--dbfilename",
        &format!("dump-{port}.rdb"),
        "--save",
        "",
        "--appendonly",
        "no",
        "--requirepass",
        REDIS_PASSWORD,
        "--daemonize",
        "no",
        "--unixsocket",
        &dir.join(format!("redis-{port}.sock")).display().to_string(),
        "--unixsocketperm",
        "700",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend_from_slice(extra);
    let s = Server {
        port,
        socket: dir.join(format!("redis-{port}.sock")),
        dir: dir.to_owned(),
        args,
        child: Mutex::new(None),
    };
    s.spawn();
    s
}

impl Pair {
    pub fn start() -> Pair {
        let dir = tempfile::tempdir().expect("temp dir");
        let primary = server(
            dir.path(),
            &[
                "--maxmemory".into(),
                "64mb".into(),
                // Sync a new replica at once, not after the default 5 s.
                "--repl-diskless-sync-delay".into(),
                "0".into(),
            ],
        );
        let replica = server(
            dir.path(),
            &[
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.port.to_string(),
                "--masterauth".into(),
                REDIS_PASSWORD.into(),
            ],
        );
        let password_file = dir.path().join("redis.pw");
        std::fs::write(&password_file, format!("{REDIS_PASSWORD}\n")).expect("password file");
        let pair = Pair {
            primary,
            replica,
            password_file,
            _dir: dir,
        };
        pair.wait_replica_online();
        pair
    }

    /// Waits until the replica's link is up and it has acknowledged
    /// everything.
    pub fn wait_replica_online(&self) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let info = self.primary.cli(&["INFO", "replication"]);
            if info.contains("state=online") {
                return;
            }
            assert!(Instant::now() < until, "replica not online: {info}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
