//! The measuring half of `bench/run.sh`: scrapes vitals and the anchor
//! exporters (all on loopback) one after the other, reads their CPU time and
//! memory from `/proc/<pid>`, counts what they sent to PostgreSQL from the
//! servers' statement logs, and prints one Markdown table with the ratio
//! vitals/anchor per figure, then the performance budget with PASS/FAIL.
//!
//! Standard library only, so the client shares no HTTP code with what it
//! measures. Every loop is bounded in count and time; only loopback
//! addresses are accepted.
//!
//! Figures, per exporter:
//! - latency p50/p99: `--seq` sequential scrapes on one keep-alive
//!   connection (a new one per scrape where the server closes it), with the
//!   headers Prometheus sends (OpenMetrics preferred, gzip);
//! - scrapes/s: `--clients` threads scraping back to back for `--conc-secs`;
//! - bytes plain / gzip and samples: one scrape each way, text format 0.0.4;
//! - CPU per scrape: utime+stime of the process over both load phases,
//!   divided by the scrapes served (includes any background sampling);
//! - idle CPU: utime+stime over `--idle-secs` with no scrape at all;
//! - RSS / peak RSS / anonymous RSS: VmRSS / VmHWM / RssAnon at the end
//!   (RSS also counts the pages of the executable and libraries mapped in);
//! - PostgreSQL: statements (`log_statement = all` lines) and transactions
//!   (distinct virtual transaction ids, `%v`) by application_name, in the
//!   load phase beyond the exporter's idle rate, per idle minute, and per
//!   sampling round (a round = statements of one connection less than 1 s
//!   apart); for the PgBouncer target, console commands per round from
//!   PgBouncer's `got admin query` log lines during the idle window.
//!
//! Exit status: 0 when every budget line passes, 2 when one fails, 1 when
//! the measurement itself could not run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What Prometheus 2.x sends on every scrape.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// Give up on an exporter after this many failed scrapes in a row.
const MAX_CONSECUTIVE_ERRORS: usize = 10;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // Helpers for run.sh, so it needs no other tool.
    match argv.first().map(String::as_str) {
        Some("free-port") => return free_port(),
        Some("wait") => return wait(&argv[1..]),
        Some("get") => return get(&argv[1..]),
        _ => {}
    }
    let args = match Args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("measure: {e}\n\n{USAGE}");
            return ExitCode::from(1);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("measure: {e}");
            ExitCode::from(1)
        }
    }
}

/// Prints a loopback port nobody listens on right now.
fn free_port() -> ExitCode {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => {
            println!("{}", a.port());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("measure: free-port: {e}");
            ExitCode::from(1)
        }
    }
}

/// `wait URL SECS`: until GET URL answers 200, at most SECS seconds.
fn wait(args: &[String]) -> ExitCode {
    let (Some(url), Some(secs)) = (
        args.first(),
        args.get(1).and_then(|s| s.parse::<f64>().ok()),
    ) else {
        eprintln!("measure: usage: wait URL SECS");
        return ExitCode::from(1);
    };
    let (addr, host, path) = match parse_loopback_url(url) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("measure: {e}");
            return ExitCode::from(1);
        }
    };
    let ex = Exporter {
        name: url.clone(),
        addr,
        host,
        path,
        pid: 0,
        pg_app: None,
        log: None,
    };
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut last = String::new();
    while Instant::now() < until {
        match Client::new(&ex).get(&[]) {
            Ok(r) if r.status == 200 => return ExitCode::SUCCESS,
            Ok(r) => last = format!("HTTP {}", r.status),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("measure: {url} not answering 200 within {secs} s (last: {last})");
    ExitCode::from(1)
}

/// `get URL`: the body of GET URL (plain text format) on stdout.
fn get(args: &[String]) -> ExitCode {
    let Some(url) = args.first() else {
        eprintln!("measure: usage: get URL");
        return ExitCode::from(1);
    };
    let result = parse_loopback_url(url).and_then(|(addr, host, path)| {
        let ex = Exporter {
            name: url.clone(),
            addr,
            host,
            path,
            pid: 0,
            pg_app: None,
            log: None,
        };
        let r = Client::new(&ex)
            .get(&[("Accept", "text/plain;version=0.0.4")])
            .map_err(|e| format!("{url}: {e}"))?;
        if r.status != 200 {
            return Err(format!("{url}: HTTP {}", r.status));
        }
        Ok(r.body)
    });
    match result {
        Ok(body) => {
            let _ = io::stdout().write_all(&body);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("measure: {e}");
            ExitCode::from(1)
        }
    }
}

const USAGE: &str = "usage: vitals-bench-measure free-port | wait URL SECS | get URL |
       vitals-bench-measure [--seq N] [--seq-max-secs S] [--clients N] [--conc-secs S]
       [--idle-secs S] [--clk-tck HZ] [--interval-secs S]
       --exporter NAME URL PID PG_APP LOG   (first one is vitals; PG_APP/LOG may be -)
       [--pg-log LABEL PATH]... [--console-log LABEL PATH]
       [--idle-start-cmd SH] [--idle-end-cmd SH] [--note TEXT]...";

struct Exporter {
    name: String,
    addr: SocketAddr,
    host: String,
    path: String,
    pid: u32,
    /// application_name it uses on PostgreSQL, if it talks to it.
    pg_app: Option<String>,
    /// Its stderr, to quote the error when its scrapes fail.
    log: Option<PathBuf>,
}

struct Args {
    seq: usize,
    seq_max: Duration,
    clients: usize,
    conc: Duration,
    idle: Duration,
    clk_tck: f64,
    interval_secs: f64,
    exporters: Vec<Exporter>,
    pg_logs: Vec<(String, PathBuf)>,
    /// Printed with the other notes under the table.
    notes: Vec<String>,
    /// PgBouncer's log, with `got admin query:` lines while its verbose
    /// level is 2; only vitals talks to the console while idle.
    console_log: Option<(String, PathBuf)>,
    /// Shell commands run right before and after the idle window (bench/run.sh
    /// turns PgBouncer's verbose logging on and off with them).
    idle_start_cmd: Option<String>,
    idle_end_cmd: Option<String>,
}

impl Args {
    fn parse(argv: Vec<String>) -> Result<Args, String> {
        let mut a = Args {
            seq: 300,
            seq_max: Duration::from_secs(60),
            clients: 8,
            conc: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            clk_tck: 100.0,
            interval_secs: 5.0,
            exporters: Vec::new(),
            pg_logs: Vec::new(),
            notes: Vec::new(),
            console_log: None,
            idle_start_cmd: None,
            idle_end_cmd: None,
        };
        let mut it = argv.into_iter();
        let next = |it: &mut std::vec::IntoIter<String>, what: &str| {
            it.next().ok_or_else(|| format!("{what} needs a value"))
        };
        while let Some(flag) = it.next() {
            let num = |s: String| {
                s.parse::<f64>()
                    .map_err(|_| format!("{flag}: not a number: {s}"))
            };
            match flag.as_str() {
                "--seq" => a.seq = num(next(&mut it, &flag)?)? as usize,
                "--seq-max-secs" => {
                    a.seq_max = Duration::from_secs_f64(num(next(&mut it, &flag)?)?)
                }
                "--clients" => a.clients = num(next(&mut it, &flag)?)? as usize,
                "--conc-secs" => a.conc = Duration::from_secs_f64(num(next(&mut it, &flag)?)?),
                "--idle-secs" => a.idle = Duration::from_secs_f64(num(next(&mut it, &flag)?)?),
                "--clk-tck" => a.clk_tck = num(next(&mut it, &flag)?)?,
                "--interval-secs" => a.interval_secs = num(next(&mut it, &flag)?)?,
                "--exporter" => {
                    let name = next(&mut it, &flag)?;
                    let url = next(&mut it, &flag)?;
                    let pid = next(&mut it, &flag)?;
                    let app = next(&mut it, &flag)?;
                    let log = next(&mut it, &flag)?;
                    let (addr, host, path) = parse_loopback_url(&url)?;
                    a.exporters.push(Exporter {
                        name,
                        addr,
                        host,
                        path,
                        pid: pid.parse().map_err(|_| format!("bad pid {pid}"))?,
                        pg_app: (app != "-").then_some(app),
                        log: (log != "-").then(|| PathBuf::from(log)),
                    });
                }
                "--pg-log" => {
                    let label = next(&mut it, &flag)?;
                    let path = next(&mut it, &flag)?;
                    a.pg_logs.push((label, PathBuf::from(path)));
                }
                "--note" => a.notes.push(next(&mut it, &flag)?),
                "--console-log" => {
                    let label = next(&mut it, &flag)?;
                    a.console_log = Some((label, PathBuf::from(next(&mut it, &flag)?)));
                }
                "--idle-start-cmd" => a.idle_start_cmd = Some(next(&mut it, &flag)?),
                "--idle-end-cmd" => a.idle_end_cmd = Some(next(&mut it, &flag)?),
                _ => return Err(format!("unknown argument {flag}")),
            }
        }
        if a.exporters.len() < 2 {
            return Err("need vitals and at least one anchor (--exporter twice)".into());
        }
        if a.clients == 0 || a.seq == 0 || a.clk_tck <= 0.0 {
            return Err("--seq, --clients and --clk-tck must be positive".into());
        }
        Ok(a)
    }
}

/// `http://HOST:PORT/PATH` with a loopback HOST: the benchmark never sends
/// traffic anywhere else.
fn parse_loopback_url(url: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{url}: not a loopback address; refusing"));
    }
    Ok((addr, hostport.to_owned(), path.to_owned()))
}

// ---------------------------------------------------------------- HTTP ---

struct Response {
    status: u16,
    body: Vec<u8>,
}

/// One HTTP/1.x connection, reopened when the server closes it.
struct Client<'a> {
    ex: &'a Exporter,
    conn: Option<BufReader<TcpStream>>,
}

impl<'a> Client<'a> {
    fn new(ex: &'a Exporter) -> Self {
        Client { ex, conn: None }
    }

    fn get(&mut self, headers: &[(&str, &str)]) -> io::Result<Response> {
        // A reused connection the server closed while idle fails at once;
        // retry such a request on a fresh connection, once.
        let reused = self.conn.is_some();
        match self.try_get(headers) {
            Err(e) if reused && e.kind() == io::ErrorKind::UnexpectedEof => {
                self.conn = None;
                self.try_get(headers)
            }
            other => other,
        }
    }

    fn try_get(&mut self, headers: &[(&str, &str)]) -> io::Result<Response> {
        let result = self.exchange(headers);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn exchange(&mut self, headers: &[(&str, &str)]) -> io::Result<Response> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&self.ex.addr, IO_TIMEOUT)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            self.conn = Some(BufReader::with_capacity(64 * 1024, s));
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| io::Error::other("no connection"))?;
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vitals-bench\r\n",
            self.ex.path, self.ex.host
        );
        for (k, v) in headers {
            let _ = write!(req, "{k}: {v}\r\n");
        }
        req.push_str("\r\n");
        conn.get_mut().write_all(req.as_bytes())?;

        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            ));
        }
        let mut parts = line.split_whitespace();
        let version = parts.next().unwrap_or("").to_owned();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        let mut keep_alive = version == "HTTP/1.1";
        loop {
            line.clear();
            if conn.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "eof in headers",
                ));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => length = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" if v.contains("close") => keep_alive = false,
                "connection" if v.contains("keep-alive") => keep_alive = true,
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                conn.read_line(&mut line)?;
                let size_hex = line.trim().split(';').next().unwrap_or("");
                let size = usize::from_str_radix(size_hex, 16)
                    .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        line.clear();
                        if conn.read_line(&mut line)? == 0 || line.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                conn.read_exact(&mut body[start..])?;
                let mut crlf = [0u8; 2];
                conn.read_exact(&mut crlf)?;
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            conn.read_exact(&mut body)?;
        } else {
            conn.read_to_end(&mut body)?;
            keep_alive = false;
        }
        if !keep_alive {
            self.conn = None;
        }
        Ok(Response { status, body })
    }

    /// A scrape as Prometheus makes it; an error unless 200.
    fn scrape(&mut self) -> Result<usize, String> {
        let r = self
            .get(&[("Accept", PROMETHEUS_ACCEPT), ("Accept-Encoding", "gzip")])
            .map_err(|e| e.to_string())?;
        if r.status != 200 {
            return Err(format!("HTTP {}", r.status));
        }
        Ok(r.body.len())
    }
}

// ---------------------------------------------------------------- /proc ---

/// utime + stime of the whole process (dead threads included), in ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields start after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Field 3 (state) is f[0]; utime is field 14, stime field 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// (VmRSS, VmHWM, RssAnon) in bytes.
fn memory(pid: u32) -> Option<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
            .map(|k| k * 1024)
    };
    Some((kb("VmRSS:")?, kb("VmHWM:")?, kb("RssAnon:")?))
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------- measuring ---

#[derive(Default)]
struct Figures {
    seq_ok: usize,
    seq_errors: usize,
    latencies: Vec<Duration>,
    conc_ok: usize,
    conc_errors: usize,
    conc_secs: f64,
    last_error: Option<String>,
    /// CPU ticks over both load phases.
    load_ticks: Option<u64>,
    /// Wall-clock window of the load phases (epoch seconds).
    load_window: (f64, f64),
    bytes_plain: Option<usize>,
    bytes_gzip: Option<usize>,
    samples: Option<usize>,
    idle_ticks: Option<u64>,
    rss: Option<(u64, u64, u64)>,
    died: bool,
}

impl Figures {
    fn scrapes(&self) -> usize {
        self.seq_ok + self.conc_ok
    }
    fn failed(&self) -> bool {
        self.scrapes() == 0
    }
    fn percentile(&self, p: f64) -> Option<f64> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut v = self.latencies.clone();
        v.sort();
        // Nearest rank.
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v.get(rank.clamp(1, v.len()) - 1)
            .map(|d| d.as_secs_f64() * 1e3)
    }
}

fn warm_up(ex: &Exporter) {
    let mut c = Client::new(ex);
    for _ in 0..3 {
        let _ = c.scrape();
    }
}

fn sizes(ex: &Exporter, f: &mut Figures) {
    let mut c = Client::new(ex);
    if let Ok(r) = c.get(&[("Accept", "text/plain;version=0.0.4")]) {
        if r.status == 200 {
            f.bytes_plain = Some(r.body.len());
            let text = String::from_utf8_lossy(&r.body);
            f.samples = Some(
                text.lines()
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .count(),
            );
        }
    }
    if let Ok(r) = c.get(&[
        ("Accept", "text/plain;version=0.0.4"),
        ("Accept-Encoding", "gzip"),
    ]) {
        if r.status == 200 {
            f.bytes_gzip = Some(r.body.len());
        }
    }
}

fn sequential(a: &Args, ex: &Exporter, f: &mut Figures) {
    let mut c = Client::new(ex);
    let started = Instant::now();
    let mut consecutive = 0;
    while f.seq_ok + f.seq_errors < a.seq && started.elapsed() < a.seq_max {
        let t = Instant::now();
        match c.scrape() {
            Ok(_) => {
                f.latencies.push(t.elapsed());
                f.seq_ok += 1;
                consecutive = 0;
            }
            Err(e) => {
                f.seq_errors += 1;
                f.last_error = Some(e);
                consecutive += 1;
                if consecutive >= MAX_CONSECUTIVE_ERRORS {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn concurrent(a: &Args, ex: &Exporter, f: &mut Figures) {
    let started = Instant::now();
    let deadline = started + a.conc;
    let results: Vec<(usize, usize, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.clients)
            .map(|_| {
                s.spawn(move || {
                    let mut c = Client::new(ex);
                    let (mut ok, mut errors, mut consecutive, mut last) = (0, 0, 0, None);
                    while Instant::now() < deadline {
                        match c.scrape() {
                            Ok(_) => {
                                ok += 1;
                                consecutive = 0;
                            }
                            Err(e) => {
                                errors += 1;
                                last = Some(e);
                                consecutive += 1;
                                if consecutive >= MAX_CONSECUTIVE_ERRORS {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                    (ok, errors, last)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((0, 0, Some("client thread panicked".into())))
            })
            .collect()
    });
    f.conc_secs = started.elapsed().as_secs_f64();
    for (ok, errors, last) in results {
        f.conc_ok += ok;
        f.conc_errors += errors;
        if last.is_some() {
            f.last_error = last;
        }
    }
}

fn load(a: &Args, ex: &Exporter) -> Figures {
    let mut f = Figures::default();
    warm_up(ex);
    sizes(ex, &mut f);
    let t0 = epoch();
    let before = cpu_ticks(ex.pid);
    sequential(a, ex, &mut f);
    concurrent(a, ex, &mut f);
    let after = cpu_ticks(ex.pid);
    f.load_window = (t0, epoch());
    f.load_ticks = before.zip(after).map(|(b, a)| a.saturating_sub(b));
    f.died = !alive(ex.pid);
    eprintln!(
        "measure: {}: {} sequential + {} concurrent scrapes, {} errors{}",
        ex.name,
        f.seq_ok,
        f.conc_ok,
        f.seq_errors + f.conc_errors,
        f.last_error
            .as_ref()
            .map(|e| format!(" (last: {e})"))
            .unwrap_or_default()
    );
    f
}

// -------------------------------------------------------- PostgreSQL ---

/// One statement from a server log whose log_line_prefix is
/// `%n [%p] app=%a vxid=%v ` (epoch seconds with milliseconds).
struct Statement {
    log: usize,
    t: f64,
    pid: u32,
    app: String,
    vxid: String,
}

fn parse_log_line(line: &str) -> Option<(f64, u32, String, String)> {
    if !(line.contains(" LOG:  statement: ") || line.contains(" LOG:  execute ")) {
        return None;
    }
    let (t, rest) = line.split_once(' ')?;
    let t: f64 = t.parse().ok()?;
    let rest = rest.strip_prefix('[')?;
    let (pid, rest) = rest.split_once("] app=")?;
    let (app, rest) = rest.split_once(" vxid=")?;
    let vxid = rest.split(' ').next().unwrap_or("");
    Some((t, pid.parse().ok()?, app.to_owned(), vxid.to_owned()))
}

fn read_statements(logs: &[(String, PathBuf)]) -> Result<Vec<Statement>, String> {
    let mut out = Vec::new();
    for (i, (_, path)) in logs.iter().enumerate() {
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
            if let Some((t, pid, app, vxid)) = parse_log_line(&line) {
                out.push(Statement {
                    log: i,
                    t,
                    pid,
                    app,
                    vxid,
                });
            }
        }
    }
    Ok(out)
}

/// Statements and transactions of `app` within `[from, to)`.
fn count(stmts: &[Statement], app: &str, from: f64, to: f64) -> (usize, usize) {
    let mine: Vec<&Statement> = stmts
        .iter()
        .filter(|s| s.app == app && s.t >= from && s.t < to)
        .collect();
    let xacts: BTreeSet<(usize, &str)> = mine
        .iter()
        .filter(|s| !s.vxid.is_empty())
        .map(|s| (s.log, s.vxid.as_str()))
        .collect();
    (mine.len(), xacts.len())
}

/// Per log (= target): (rounds, max statements in a round, max transactions
/// in a round) of `app` within the window. A round is a run of statements
/// on one connection less than a second apart.
fn rounds(stmts: &[Statement], app: &str, log: usize, from: f64, to: f64) -> (usize, usize, usize) {
    let mut by_pid: BTreeMap<u32, Vec<&Statement>> = BTreeMap::new();
    for s in stmts
        .iter()
        .filter(|s| s.app == app && s.log == log && s.t >= from && s.t < to)
    {
        by_pid.entry(s.pid).or_default().push(s);
    }
    let (mut n, mut max_stmts, mut max_xacts) = (0, 0, 0);
    for list in by_pid.values_mut() {
        list.sort_by(|a, b| a.t.total_cmp(&b.t));
        let mut round: Vec<&Statement> = Vec::new();
        let mut flush = |round: &mut Vec<&Statement>| {
            if round.is_empty() {
                return;
            }
            n += 1;
            max_stmts = max_stmts.max(round.len());
            let x: BTreeSet<&str> = round.iter().map(|s| s.vxid.as_str()).collect();
            max_xacts = max_xacts.max(x.len());
            round.clear();
        };
        for s in list.iter() {
            if round.last().is_some_and(|p| s.t - p.t > 1.0) {
                flush(&mut round);
            }
            round.push(s);
        }
        flush(&mut round);
    }
    (n, max_stmts, max_xacts)
}

/// Runs a helper command of run.sh; it must succeed.
fn shell(cmd: &str) -> Result<(), String> {
    let status = std::process::Command::new("sh")
        .args(["-c", cmd])
        .status()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd}: {status}"))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The time of a PgBouncer 1.18 `got admin query:` line, logged in UTC
/// (run.sh starts PgBouncer with TZ=UTC):
/// `2026-11-23 08:48:45.894 UTC [17846] DEBUG got admin query: SHOW POOLS`.
/// The `SET verbose` commands that switch this logging are the bench's own.
fn parse_console_line(line: &str) -> Option<f64> {
    let (_, query) = line.split_once("got admin query: ")?;
    if query.to_ascii_uppercase().starts_with("SET VERBOSE") {
        return None;
    }
    let mut f = line.split_whitespace();
    let (date, time, zone) = (f.next()?, f.next()?, f.next()?);
    if zone != "UTC" {
        return None;
    }
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    let secs = days_from_civil(d[0], d[1], d[2]) * 86400 + t[0] * 3600 + t[1] * 60 + t[2];
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    Some(secs as f64 + frac)
}

/// (rounds, most events in one round) of sorted-or-not event times, a
/// round being a run of events less than a second apart.
fn clusters(times: &[f64]) -> (usize, usize) {
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    let (mut n, mut max, mut current) = (0, 0, 0);
    for (i, x) in t.iter().enumerate() {
        if i == 0 || x - t[i - 1] > 1.0 {
            n += 1;
            current = 0;
        }
        current += 1;
        max = max.max(current);
    }
    (n, max)
}

// ------------------------------------------------------------ report ---

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if (v.fract() == 0.0 && a < 1e15) || a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

fn fmt_ratio(v: f64, anchor: f64) -> String {
    if anchor == 0.0 || !anchor.is_finite() || !v.is_finite() {
        "–".into()
    } else {
        let r = v / anchor;
        if r >= 10.0 {
            format!("{r:.0}")
        } else if r >= 0.01 {
            format!("{r:.2}")
        } else {
            format!("{r:.4}")
        }
    }
}

fn run(a: &Args) -> Result<bool, String> {
    for ex in &a.exporters {
        if !alive(ex.pid) {
            return Err(format!("{} (pid {}) is not running", ex.name, ex.pid));
        }
    }

    // Load phases, one exporter at a time.
    let mut figures: Vec<Figures> = a.exporters.iter().map(|ex| load(a, ex)).collect();

    // Idle: nobody scrapes anybody.
    eprintln!(
        "measure: idle for {:.0} s (no scrapes)",
        a.idle.as_secs_f64()
    );
    if let Some(cmd) = &a.idle_start_cmd {
        shell(cmd)?;
    }
    let idle_from = epoch();
    let before: Vec<Option<u64>> = a.exporters.iter().map(|e| cpu_ticks(e.pid)).collect();
    std::thread::sleep(a.idle);
    let idle_to = epoch();
    if let Some(cmd) = &a.idle_end_cmd {
        shell(cmd)?;
    }
    for ((ex, f), b) in a.exporters.iter().zip(&mut figures).zip(before) {
        f.idle_ticks = b.zip(cpu_ticks(ex.pid)).map(|(b, a)| a.saturating_sub(b));
        f.rss = memory(ex.pid);
        f.died |= !alive(ex.pid);
    }
    let idle_secs = idle_to - idle_from;
    // Let the servers write their last log lines.
    std::thread::sleep(Duration::from_millis(300));
    let stmts = read_statements(&a.pg_logs)?;
    let console_rounds = match &a.console_log {
        Some((label, path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let times: Vec<f64> = text
                .lines()
                .filter_map(parse_console_line)
                .filter(|t| *t >= idle_from && *t < idle_to)
                .collect();
            let (n, max) = clusters(&times);
            Some((label.clone(), n, max))
        }
        None => None,
    };

    let tick = 1.0 / a.clk_tck;
    let cpu_per_scrape_ms = |f: &Figures| -> Option<f64> {
        let s = f.scrapes();
        (s > 0).then(|| f.load_ticks.map(|t| t as f64 * tick * 1e3 / s as f64))?
    };
    let idle_pct = |f: &Figures| f.idle_ticks.map(|t| t as f64 * tick * 100.0 / idle_secs);

    // PostgreSQL figures per exporter.
    struct Pg {
        stmts_per_scrape: f64,
        xacts_per_scrape: f64,
        xacts_per_idle_min: f64,
        /// (target label, rounds, max statements, max transactions) from the idle window.
        rounds: Vec<(String, usize, usize, usize)>,
    }
    let pg: Vec<Option<Pg>> = a
        .exporters
        .iter()
        .zip(&figures)
        .map(|(ex, f)| {
            let app = ex.pg_app.as_deref()?;
            let (is, ix) = count(&stmts, app, idle_from, idle_to);
            let (ls, lx) = count(&stmts, app, f.load_window.0, f.load_window.1);
            let load_secs = f.load_window.1 - f.load_window.0;
            let scrapes = f.scrapes().max(1) as f64;
            // Beyond what the exporter sends anyway at its idle rate.
            let beyond = |load: usize, idle: usize| {
                (load as f64 - idle as f64 / idle_secs * load_secs).max(0.0) / scrapes
            };
            let rounds = a
                .pg_logs
                .iter()
                .enumerate()
                .map(|(i, (label, _))| {
                    let (n, s, x) = rounds(&stmts, app, i, idle_from, idle_to);
                    (label.clone(), n, s, x)
                })
                .filter(|r| r.1 > 0)
                .collect();
            Some(Pg {
                stmts_per_scrape: beyond(ls, is),
                xacts_per_scrape: beyond(lx, ix),
                xacts_per_idle_min: ix as f64 * 60.0 / idle_secs,
                rounds,
            })
        })
        .collect();

    // The table.
    let vitals = &figures[0];
    let mut t = String::new();
    let _ = write!(t, "| figure |");
    for ex in &a.exporters {
        let _ = write!(t, " {} |", ex.name);
    }
    let _ = write!(t, "\n|---|");
    for _ in &a.exporters {
        let _ = write!(t, "---:|");
    }
    t.push('\n');
    type Getter<'g> = Box<dyn Fn(usize) -> Option<f64> + 'g>;
    let rows: Vec<(&str, Getter<'_>, bool)> = vec![
        (
            "scrape latency p50 (ms)",
            Box::new(|i| figures[i].percentile(50.0)),
            true,
        ),
        (
            "scrape latency p99 (ms)",
            Box::new(|i| figures[i].percentile(99.0)),
            true,
        ),
        (
            "scrapes/s, 8 clients",
            Box::new(|i| {
                let f = &figures[i];
                (f.conc_ok > 0).then(|| f.conc_ok as f64 / f.conc_secs)
            }),
            true,
        ),
        (
            "response bytes, plain",
            Box::new(|i| figures[i].bytes_plain.map(|b| b as f64)),
            true,
        ),
        (
            "response bytes, gzip",
            Box::new(|i| figures[i].bytes_gzip.map(|b| b as f64)),
            true,
        ),
        (
            "samples",
            Box::new(|i| figures[i].samples.map(|b| b as f64)),
            true,
        ),
        (
            "RSS (MiB)",
            Box::new(|i| figures[i].rss.map(|r| r.0 as f64 / 1048576.0)),
            false,
        ),
        (
            "peak RSS (MiB)",
            Box::new(|i| figures[i].rss.map(|r| r.1 as f64 / 1048576.0)),
            false,
        ),
        (
            "RSS anonymous (MiB)",
            Box::new(|i| figures[i].rss.map(|r| r.2 as f64 / 1048576.0)),
            false,
        ),
        (
            "CPU per scrape (ms)",
            Box::new(|i| cpu_per_scrape_ms(&figures[i])),
            true,
        ),
        (
            "idle CPU (% of one core)",
            Box::new(|i| idle_pct(&figures[i])),
            false,
        ),
        (
            "PG statements per scrape",
            Box::new(|i| pg[i].as_ref().map(|p| p.stmts_per_scrape)),
            true,
        ),
        (
            "PG transactions per scrape",
            Box::new(|i| pg[i].as_ref().map(|p| p.xacts_per_scrape)),
            true,
        ),
        (
            "PG transactions per idle minute",
            Box::new(|i| pg[i].as_ref().map(|p| p.xacts_per_idle_min)),
            false,
        ),
    ];
    for (label, get, needs_scrapes) in &rows {
        let _ = write!(t, "| {label} |");
        let v = get(0);
        for (i, f) in figures.iter().enumerate() {
            let failed = *needs_scrapes && f.failed();
            let cell = match (failed, get(i)) {
                (true, _) => "scrapes fail".to_owned(),
                (false, None) => "–".to_owned(),
                (false, Some(x)) if i == 0 => fmt_num(x),
                (false, Some(x)) => match v {
                    Some(v) => format!("{} ({})", fmt_num(x), fmt_ratio(v, x)),
                    None => fmt_num(x),
                },
            };
            let _ = write!(t, " {cell} |");
        }
        t.push('\n');
    }
    let _ = write!(t, "| scrapes ok / failed |");
    for f in &figures {
        let _ = write!(t, " {} / {} |", f.scrapes(), f.seq_errors + f.conc_errors);
    }
    t.push('\n');
    println!("Side by side (cells: value (vitals/anchor)):\n");
    println!("{t}");

    // What went wrong with whom, said plainly.
    for (ex, f) in a.exporters.iter().zip(&figures) {
        let errors = f.seq_errors + f.conc_errors;
        if errors == 0 && !f.died {
            continue;
        }
        let cause = ex
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|log| {
                log.lines()
                    .rev()
                    .find(|l| {
                        let l = l.trim_start();
                        l.contains("Error:") || l.contains("error") || l.starts_with("panic")
                    })
                    .map(|l| l.trim().to_owned())
            });
        println!(
            "NOTE {}: {} of {} scrapes failed{}{}{}",
            ex.name,
            errors,
            errors + f.scrapes(),
            f.last_error
                .as_ref()
                .map(|e| format!("; client saw: {e}"))
                .unwrap_or_default(),
            cause
                .map(|c| format!("; its log says: {c}"))
                .unwrap_or_default(),
            if f.died { "; the process DIED" } else { "" },
        );
    }
    for note in &a.notes {
        println!("NOTE {note}");
    }
    println!(
        "NOTE CPU per scrape = utime+stime over the {} sequential scrapes and {:.0} s of {} clients, / scrapes served (vitals: includes its background sampling in that time).",
        a.seq,
        a.conc.as_secs_f64(),
        a.clients
    );
    println!(
        "NOTE PG per scrape = statements/transactions in the load phase beyond the exporter's own idle rate; idle window {idle_secs:.0} s."
    );

    // Budget.
    let mut all_pass = true;
    let mut b = String::from("| budget | measured | limit | result |\n|---|---:|---:|---|\n");
    let mut line = |what: &str, measured: String, limit: String, pass: Option<bool>| {
        let result = match pass {
            Some(true) => "PASS",
            Some(false) => {
                all_pass = false;
                "FAIL"
            }
            None => {
                all_pass = false;
                "FAIL (not measured)"
            }
        };
        let _ = writeln!(b, "| {what} | {measured} | {limit} | {result} |");
    };
    let mib = |b: u64| b as f64 / 1048576.0;
    // The four anchors: every exporter but vitals.
    let anchors_rss: Option<u64> = figures[1..].iter().map(|f| f.rss.map(|r| r.0)).sum();
    match (vitals.rss, anchors_rss) {
        (Some((v, _, _)), Some(sum)) => line(
            &format!(
                "RSS ≤ 1/8 of the {} anchors' RSS summed",
                a.exporters.len() - 1
            ),
            format!("{:.1} MiB", mib(v)),
            format!("≤ {:.1} MiB (sum {:.1})", mib(sum) / 8.0, mib(sum)),
            Some(v * 8 <= sum),
        ),
        _ => line(
            "RSS ≤ 1/8 of the anchors' RSS summed",
            "–".into(),
            "–".into(),
            None,
        ),
    }
    let node = a
        .exporters
        .iter()
        .position(|e| e.name.contains("node_exporter"));
    let node_f = node.map(|i| &figures[i]);
    match (
        vitals.percentile(99.0),
        node_f.and_then(|f| f.percentile(99.0)),
    ) {
        (Some(v), Some(n)) => line(
            "p99 scrape latency ≤ 1/10 of node_exporter's",
            format!("{v:.3} ms"),
            format!("≤ {:.3} ms", n / 10.0),
            Some(v <= n / 10.0),
        ),
        _ => line(
            "p99 scrape latency ≤ 1/10 of node_exporter's",
            "–".into(),
            "–".into(),
            None,
        ),
    }
    match (
        cpu_per_scrape_ms(vitals),
        node_f.and_then(cpu_per_scrape_ms),
    ) {
        (Some(v), Some(n)) => line(
            "CPU per scrape ≤ 1/25 of node_exporter's",
            format!("{v:.4} ms"),
            format!("≤ {:.4} ms", n / 25.0),
            Some(v <= n / 25.0),
        ),
        _ => line(
            "CPU per scrape ≤ 1/25 of node_exporter's",
            "–".into(),
            "–".into(),
            None,
        ),
    }
    match &pg[0] {
        Some(p) => {
            // Any scrape that reached the database would add at least one
            // transaction per scrape; what is left is sampling-round jitter.
            line(
                "0 PostgreSQL transactions per scrape",
                format!("{:.4}", p.xacts_per_scrape),
                "0 (< 0.05: a scrape reaching PG adds ≥ 1)".into(),
                Some(p.xacts_per_scrape < 0.05),
            );
            let mut worst = p.rounds.iter().map(|r| r.2).max();
            let mut detail: Vec<String> = p
                .rounds
                .iter()
                .map(|(l, n, s, x)| format!("{l}: max {s} stmts / {x} xacts in {n} rounds"))
                .collect();
            if let Some((label, n, max)) = &console_rounds {
                detail.push(format!(
                    "{label} (PgBouncer console): max {max} in {n} rounds"
                ));
                worst = if *n == 0 { None } else { worst.max(Some(*max)) };
            }
            line(
                "≤ 3 statements per sampling round per target",
                if detail.is_empty() {
                    "no rounds seen".into()
                } else {
                    detail.join("; ")
                },
                "≤ 3".into(),
                worst.map(|w| w <= 3),
            );
        }
        None => line(
            "PostgreSQL statements",
            "vitals has no PG target".into(),
            "–".into(),
            None,
        ),
    }
    match idle_pct(vitals) {
        Some(v) => line(
            &format!(
                "idle CPU < 0.5% of one core at a {:.0} s interval",
                a.interval_secs
            ),
            format!("{v:.3} %"),
            "< 0.5 %".into(),
            Some(v < 0.5),
        ),
        None => line("idle CPU < 0.5% of one core", "–".into(), "–".into(), None),
    }
    println!("\nBudget:\n\n{b}");
    println!(
        "budget: {}",
        if all_pass {
            "all PASS"
        } else {
            "some lines FAIL"
        }
    );
    Ok(all_pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_with_and_without_transaction() {
        let l = "1732351234.567 [4242] app=vitals vxid=3/17 LOG:  execute s0: SELECT 1";
        assert_eq!(
            parse_log_line(l),
            Some((1732351234.567, 4242, "vitals".into(), "3/17".into()))
        );
        let l = "1732351234.567 [4242] app=psql vxid= LOG:  statement: SELECT 1";
        assert_eq!(parse_log_line(l).map(|p| p.3), Some(String::new()));
        assert_eq!(
            parse_log_line("1732351234.567 [1] app= vxid= LOG:  checkpoint starting"),
            None
        );
    }

    #[test]
    fn console_lines_and_rounds() {
        let l = "2026-11-23 08:48:45.894 UTC [17846] DEBUG got admin query: SHOW POOLS";
        // date -u -d '2026-11-23 08:48:45' +%s
        assert_eq!(parse_console_line(l), Some(1795423725.894));
        let set = "2026-11-23 08:48:45.894 UTC [17846] DEBUG got admin query: SET verbose = 0";
        assert_eq!(parse_console_line(set), None);
        assert_eq!(clusters(&[10.0, 10.1, 10.2, 15.0, 15.1, 20.0]), (3, 3));
        assert_eq!(clusters(&[]), (0, 0));
    }

    #[test]
    fn only_loopback_urls() {
        assert!(parse_loopback_url("http://127.0.0.1:9100/metrics").is_ok());
        assert!(parse_loopback_url("http://10.0.0.1:9100/metrics").is_err());
    }
}
