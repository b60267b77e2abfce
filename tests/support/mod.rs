//! Throwaway PostgreSQL 15 primary, streaming standby and PgBouncer for the
//! integration tests, on free loopback ports in a temporary directory.
//!
//! The servers refuse to run as root, so when the tests run as root every
//! server command goes through `runuser -u postgres`; as any other user they
//! run directly. Everything started is stopped when the [`Cluster`] is
//! dropped — at the end of the test and on a panic alike (the guard is built
//! up step by step, so a failure half-way stops what did start).
//!
//! One cluster per test binary: the suite function starts it once and runs
//! its cases in order with [`run_cases`], which reports every failing case.
#![allow(dead_code)]

pub mod source;

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio_postgres::{Client, NoTls};

/// Where Debian's postgresql-15 package puts the server binaries.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Superuser password (the tests also grep for it).
pub const SUPER_PASSWORD: &str = "Sup3r-Secret-Pg-9x";
/// The monitoring role vitals logs in as.
pub const MONITOR_USER: &str = "monitor";
pub const MONITOR_PASSWORD: &str = "Mon1tor-Secret-Zq8";
/// Name of the standby, as the primary's pg_stat_replication shows it.
pub const STANDBY_NAME: &str = "standby1";
pub const SLOT_NAME: &str = "standby1_slot";
pub const HEARTBEAT_TABLE: &str = "vitals_heartbeat";

/// What to start.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub standby: bool,
    pub bouncer: bool,
}

/// One PostgreSQL server.
#[derive(Debug)]
pub struct Server {
    pub data: PathBuf,
    pub port: u16,
    pub log: PathBuf,
}

#[derive(Debug)]
pub struct Bouncer {
    pub port: u16,
    pub pidfile: PathBuf,
    pub log: PathBuf,
}

/// Things to stop, in reverse order of start.
#[derive(Default)]
struct Guard {
    as_postgres: bool,
    servers: Vec<PathBuf>,
    bouncer_pidfile: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pidfile) = &self.bouncer_pidfile {
            if let Ok(pid) = std::fs::read_to_string(pidfile) {
                let pid = pid.trim();
                if !pid.is_empty() {
                    // By its own pid; SIGINT is PgBouncer's safe shutdown.
                    let _ = Command::new("kill").args(["-INT", pid]).status();
                    let _ = Command::new("kill").args(["-TERM", pid]).status();
                }
            }
        }
        for data in self.servers.iter().rev() {
            let _ = pg_cmd(self.as_postgres, "pg_ctl")
                .args([
                    "-D",
                    &data.to_string_lossy(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ])
                .output();
        }
    }
}

/// The running servers. Dropping it stops them all and removes the files.
pub struct Cluster {
    pub primary: Server,
    pub standby: Option<Server>,
    pub bouncer: Option<Bouncer>,
    /// Holds the monitor role's password.
    pub password_file: PathBuf,
    as_postgres: bool,
    // Field order matters: the guard stops the servers before the
    // directory holding their data is removed.
    guard: Guard,
    pub dir: TempDir,
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A server command, run as the `postgres` user when we are root.
fn pg_cmd(as_postgres: bool, tool: &str) -> Command {
    let path = if tool == "pgbouncer" {
        which("pgbouncer").unwrap_or_else(|| PathBuf::from("pgbouncer"))
    } else {
        Path::new(PG_BIN).join(tool)
    };
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub use crate::common::free_port;

/// Hands `path` (recursively) to the `postgres` user, which the servers
/// run as when the tests run as root.
pub fn chown_postgres(path: &Path) {
    run(
        {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres:postgres"]).arg(path);
            c
        },
        "chown",
    );
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    f.write_all(text.as_bytes()).expect("appending config");
}

fn wait_for_port(port: u16, what: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "{what} did not listen on port {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Cluster {
    pub fn start(options: Options) -> Cluster {
        assert!(
            Path::new(PG_BIN).join("postgres").is_file(),
            "PostgreSQL 15 server binaries not found in {PG_BIN}: install the postgresql-15 package"
        );
        if options.bouncer {
            assert!(
                which("pgbouncer").is_some(),
                "the pgbouncer binary is not installed: install the pgbouncer package (apt-get install pgbouncer)"
            );
        }
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("vitals-pg-")
            .tempdir()
            .expect("creating a temporary directory");
        let root = dir.path().to_owned();
        let mut guard = Guard::default();
        guard.as_postgres = as_postgres;
        if as_postgres {
            chown_postgres(&root);
        }

        // Passwords: the superuser's for initdb, the monitor's for vitals.
        let pwfile = root.join("superuser.pw");
        std::fs::write(&pwfile, format!("{SUPER_PASSWORD}\n")).expect("writing pwfile");
        let password_file = root.join("monitor.pw");
        std::fs::write(&password_file, format!("{MONITOR_PASSWORD}\n"))
            .expect("writing password file");
        if as_postgres {
            chown_postgres(&root);
        }

        // Primary.
        let primary = Server {
            data: root.join("primary"),
            port: free_port(),
            log: root.join("primary.log"),
        };
        run(
            {
                let mut c = pg_cmd(as_postgres, "initdb");
                c.arg("-D")
                    .arg(&primary.data)
                    .args(["-U", "postgres", "-E", "UTF8", "--no-sync"])
                    .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                    .arg(format!("--pwfile={}", pwfile.display()));
                c
            },
            "initdb",
        );
        append(
            &primary.data.join("postgresql.conf"),
            &format!(
                "\n# vitals test cluster\n\
                 listen_addresses = '127.0.0.1'\n\
                 port = {port}\n\
                 unix_socket_directories = '{sock}'\n\
                 max_connections = 40\n\
                 shared_buffers = 16MB\n\
                 fsync = off\n\
                 synchronous_commit = off\n\
                 full_page_writes = off\n\
                 autovacuum = off\n\
                 wal_level = replica\n\
                 max_wal_senders = 5\n\
                 max_replication_slots = 5\n\
                 wal_receiver_status_interval = 1s\n\
                 wal_retrieve_retry_interval = 1s\n\
                 client_connection_check_interval = 1s\n\
                 shared_preload_libraries = 'pg_stat_statements'\n\
                 max_prepared_transactions = 5\n\
                 log_statement = 'all'\n\
                 log_line_prefix = '%m [%p] %a: '\n",
                port = primary.port,
                sock = root.display(),
            ),
        );
        start_server(as_postgres, &primary, &mut guard);
        psql(
            as_postgres,
            &root,
            primary.port,
            &format!(
                "CREATE ROLE {MONITOR_USER} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor;\n\
                 CREATE TABLE {HEARTBEAT_TABLE} (id int PRIMARY KEY, ts timestamptz NOT NULL);\n\
                 GRANT SELECT, INSERT, UPDATE ON {HEARTBEAT_TABLE} TO {MONITOR_USER};\n\
                 CREATE TABLE scratch (id serial PRIMARY KEY, payload text);\n"
            ),
        );

        // Standby: a base backup with a replication slot, streaming.
        let standby = options.standby.then(|| {
            let standby = Server {
                data: root.join("standby"),
                port: free_port(),
                log: root.join("standby.log"),
            };
            run(
                {
                    let mut c = pg_cmd(as_postgres, "pg_basebackup");
                    c.arg("-h")
                        .arg(&root)
                        .args(["-p", &primary.port.to_string(), "-U", "postgres"])
                        .arg("-D")
                        .arg(&standby.data)
                        .args(["-R", "-C", "-S", SLOT_NAME, "-X", "stream", "--no-sync"]);
                    c
                },
                "pg_basebackup",
            );
            append(
                &standby.data.join("postgresql.conf"),
                &format!(
                    "\nport = {}\ncluster_name = '{STANDBY_NAME}'\n",
                    standby.port
                ),
            );
            start_server(as_postgres, &standby, &mut guard);
            standby
        });

        // PgBouncer in front of the primary.
        let bouncer = options.bouncer.then(|| {
            let bouncer = Bouncer {
                port: free_port(),
                pidfile: root.join("pgbouncer.pid"),
                log: root.join("pgbouncer.log"),
            };
            let ini = root.join("pgbouncer.ini");
            let userlist = root.join("userlist.txt");
            std::fs::write(
                &userlist,
                format!(
                    "\"{MONITOR_USER}\" \"{MONITOR_PASSWORD}\"\n\"postgres\" \"{SUPER_PASSWORD}\"\n"
                ),
            )
            .expect("writing userlist");
            std::fs::write(
                &ini,
                format!(
                    "[databases]\n\
                     app = host=127.0.0.1 port={pg} dbname=postgres pool_size=3 max_db_connections=10\n\
                     tiny = host=127.0.0.1 port={pg} dbname=postgres pool_size=1\n\
                     [pgbouncer]\n\
                     listen_addr = 127.0.0.1\n\
                     listen_port = {port}\n\
                     unix_socket_dir = {sock}\n\
                     auth_type = scram-sha-256\n\
                     auth_file = {userlist}\n\
                     stats_users = {MONITOR_USER}\n\
                     pool_mode = session\n\
                     max_client_conn = 50\n\
                     default_pool_size = 3\n\
                     stats_period = 1\n\
                     verbose = 2\n\
                     logfile = {log}\n\
                     pidfile = {pidfile}\n",
                    pg = primary.port,
                    port = bouncer.port,
                    sock = root.display(),
                    userlist = userlist.display(),
                    log = bouncer.log.display(),
                    pidfile = bouncer.pidfile.display(),
                ),
            )
            .expect("writing pgbouncer.ini");
            if as_postgres {
                chown_postgres(&root);
            }
            guard.bouncer_pidfile = Some(bouncer.pidfile.clone());
            run(
                {
                    let mut c = pg_cmd(as_postgres, "pgbouncer");
                    c.arg("-d").arg(&ini);
                    c
                },
                "pgbouncer",
            );
            wait_for_port(bouncer.port, "pgbouncer");
            bouncer
        });

        let cluster = Cluster {
            primary,
            standby,
            bouncer,
            password_file,
            as_postgres,
            guard,
            dir,
        };
        if cluster.standby.is_some() {
            cluster.wait_streaming();
        }
        cluster
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the servers run as the `postgres` user (the tests run as
    /// root): files they read must then be handed to it.
    pub fn as_postgres(&self) -> bool {
        self.as_postgres
    }

    /// DSN for the monitor role (password from [`Cluster::password_file`]).
    pub fn monitor_dsn(&self, port: u16) -> String {
        format!("host=127.0.0.1 port={port} user={MONITOR_USER} dbname=postgres")
    }

    pub fn standby(&self) -> &Server {
        self.standby.as_ref().expect("this cluster has a standby")
    }

    pub fn bouncer(&self) -> &Bouncer {
        self.bouncer.as_ref().expect("this cluster has PgBouncer")
    }

    /// Runs SQL through psql on the server at `port` as the superuser.
    pub fn psql(&self, port: u16, sql: &str) -> String {
        psql(self.as_postgres, self.root(), port, sql)
    }

    pub fn stop_primary(&self) {
        run(
            {
                let mut c = pg_cmd(self.as_postgres, "pg_ctl");
                c.arg("-D")
                    .arg(&self.primary.data)
                    .args(["-m", "fast", "-w", "stop"]);
                c
            },
            "pg_ctl stop",
        );
    }

    pub fn start_primary(&self) {
        pg_ctl_start(self.as_postgres, &self.primary);
    }

    /// Stops PgBouncer (SIGINT, its safe shutdown) and waits for its port
    /// to close.
    pub fn stop_bouncer(&self) {
        let b = self.bouncer();
        let pid = std::fs::read_to_string(&b.pidfile).expect("pgbouncer pidfile");
        let _ = Command::new("kill").args(["-INT", pid.trim()]).status();
        let until = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", b.port)).is_ok() {
            assert!(Instant::now() < until, "pgbouncer did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts PgBouncer again with its original configuration.
    pub fn start_bouncer(&self) {
        let b = self.bouncer();
        let _ = std::fs::remove_file(&b.pidfile);
        run(
            {
                let mut c = pg_cmd(self.as_postgres, "pgbouncer");
                c.arg("-d").arg(self.root().join("pgbouncer.ini"));
                c
            },
            "pgbouncer",
        );
        wait_for_port(b.port, "pgbouncer");
    }

    pub fn restart_standby(&self) {
        let s = self.standby();
        run(
            {
                let mut c = pg_cmd(self.as_postgres, "pg_ctl");
                c.arg("-D")
                    .arg(&s.data)
                    .arg("-l")
                    .arg(&s.log)
                    .args(["-m", "fast", "-w", "-t", "60", "restart"]);
                c
            },
            "pg_ctl restart",
        );
    }

    /// Waits (up to 60 s) until the standby's WAL receiver streams.
    pub fn wait_streaming(&self) {
        let port = self.standby().port;
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.psql(
                port,
                "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')",
            );
            if status.trim() == "streaming" {
                return;
            }
            assert!(
                Instant::now() < until,
                "standby not streaming after 60 s: {status}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A client connection as the superuser, with its own application_name.
    pub async fn connect(&self, port: u16, application_name: &str) -> Client {
        connect(
            port,
            "postgres",
            SUPER_PASSWORD,
            "postgres",
            application_name,
        )
        .await
    }
}

fn start_server(as_postgres: bool, server: &Server, guard: &mut Guard) {
    if as_postgres {
        chown_postgres(server.data.parent().unwrap_or(&server.data));
    }
    guard.servers.push(server.data.clone());
    pg_ctl_start(as_postgres, server);
}

fn pg_ctl_start(as_postgres: bool, server: &Server) {
    run(
        {
            let mut c = pg_cmd(as_postgres, "pg_ctl");
            c.arg("-D")
                .arg(&server.data)
                .arg("-l")
                .arg(&server.log)
                .args(["-w", "-t", "60", "start"]);
            c
        },
        "pg_ctl start",
    );
}

fn psql(as_postgres: bool, socket_dir: &Path, port: u16, sql: &str) -> String {
    run(
        {
            let mut c = pg_cmd(as_postgres, "psql");
            c.arg("-h")
                .arg(socket_dir)
                .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
                .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]);
            c
        },
        "psql",
    )
}

/// A tokio-postgres connection over loopback TCP; the connection task is
/// spawned on the current runtime.
pub async fn connect(
    port: u16,
    user: &str,
    password: &str,
    dbname: &str,
    application_name: &str,
) -> Client {
    try_connect(port, user, password, dbname, application_name)
        .await
        .unwrap_or_else(|e| panic!("connecting to port {port} as {user}: {e}"))
}

pub async fn try_connect(
    port: u16,
    user: &str,
    password: &str,
    dbname: &str,
    application_name: &str,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .password(password)
        .dbname(dbname)
        .application_name(application_name)
        .connect_timeout(Duration::from_secs(10));
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Runs `future` on a fresh current-thread runtime: everything (the sources'
/// connection tasks included) runs on this thread, so a thread-local
/// tracing subscriber sees every log line.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime")
        .block_on(future)
}

/// One sampling round of `src`, guarded against a hang far above any
/// round budget.
pub async fn round<S: vitals::collectors::Source>(
    src: &mut S,
) -> (
    vitals::metrics::Output,
    Result<(), vitals::collectors::CollectError>,
) {
    let mut out = vitals::metrics::Output::new();
    let result = tokio::time::timeout(Duration::from_secs(60), src.collect(&mut out))
        .await
        .expect("a round never hangs");
    (out, result)
}

/// One round that must succeed.
pub async fn ok_round<S: vitals::collectors::Source>(src: &mut S) -> vitals::metrics::Output {
    let (out, result) = round(src).await;
    if let Err(e) = result {
        panic!("round failed: {e}");
    }
    out
}

/// The value of a sample that must be there.
pub fn value(out: &vitals::metrics::Output, name: &str, labels: &[(&str, &str)]) -> f64 {
    out.value(name, labels)
        .unwrap_or_else(|| panic!("{name}{labels:?} missing"))
}

/// A test case of a suite: a name and a function of the shared services
/// (the PostgreSQL cluster, or another suite's own).
pub type Case<T = Cluster> = (&'static str, fn(&T));

/// Runs every case (or those whose name contains `VITALS_CASE`), each
/// isolated by `catch_unwind`, and panics at the end listing the failures.
pub fn run_cases<T>(cluster: &T, cases: &[Case<T>]) {
    let filter = std::env::var("VITALS_CASE").ok();
    let mut failed = Vec::new();
    for (name, case) in cases {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        eprintln!("--- case {name}");
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(cluster)));
        let status = if result.is_ok() { "ok" } else { "FAILED" };
        eprintln!(
            "--- case {name}: {status} ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
        if result.is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}

/// Evaluates `$body` (a block that may `.await`, yielding an `Option`)
/// every `$every` until it is `Some`, for at most `$limit`; panics naming
/// `$what` otherwise.
#[macro_export]
macro_rules! eventually {
    ($limit:expr, $every:expr, $what:expr, $body:block) => {{
        let limit: std::time::Duration = $limit;
        let until = std::time::Instant::now() + limit;
        loop {
            if let Some(v) = $body {
                break v;
            }
            assert!(
                std::time::Instant::now() < until,
                "{}: not reached within {:?}",
                $what,
                limit
            );
            tokio::time::sleep($every).await;
        }
    }};
}

/// A tracing writer that keeps everything in memory, for asserting on logs.
#[derive(Clone, Default)]
pub struct LogCapture(pub Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().map(|b| b.clone()).unwrap_or_default()).into_owned()
    }

    /// A subscriber writing every event (debug and up) into this capture.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let sink = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
