//! The instrumented Python application (tests/support/metrics_app.py on
//! Debian's python3-prometheus-client), a load generator for it, and a tiny
//! server of broken metrics bodies, for the app_metrics tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The Python interpreter Debian's python3-prometheus-client is built for.
pub const PYTHON: &str = "/usr/bin/python3";

/// A running metrics_app.py; killed on drop.
pub struct PyApp {
    child: Child,
    pub port: u16,
}

impl PyApp {
    pub fn start(extra: &[&str]) -> PyApp {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/metrics_app.py");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start /usr/bin/python3 (Debian packages python3, python3-prometheus-client)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the app's PORT line");
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("metrics_app.py did not start (is python3-prometheus-client installed?): {line:?}")
            });
        PyApp { child, port }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Changes the app's behaviour: `set(&[("latency", 0.3), ("errors", 0.1)])`.
    pub fn set(&self, settings: &[(&str, f64)]) {
        let query: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let response = get(&self.addr(), &format!("/set?{}", query.join("&")));
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
}

impl Drop for PyApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GET with `Connection: close`; the whole response as text.
pub fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    raw
}

/// Threads GETting `/work` in a loop until dropped.
pub struct Load {
    stop: Arc<AtomicBool>,
    pub requests: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// `workers` concurrent clients, each pausing `pause` between requests,
    /// so the rate is bounded whatever the latency.
    pub fn start(addr: &str, workers: usize, pause: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let threads = (0..workers)
            .map(|_| {
                let (stop, requests, addr) = (stop.clone(), requests.clone(), addr.to_owned());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = get(&addr, "/work");
                        requests.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        Load {
            stop,
            requests,
            threads,
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Serves broken metrics bodies by path, one thread per connection:
/// - `/garbage`: an HTML page as text/plain;
/// - `/binary`: binary noise as text/plain;
/// - `/truncated`: an OpenMetrics body cut off before `# EOF`;
/// - `/huge`: 50 MB of valid text 0.0.4, without Content-Length;
/// - `/million`: 1,000,000 distinct series (about 21 MB), chunked;
/// - `/odd`: valid text 0.0.4 that is easy to get wrong: an unknown escape
///   (`\z`), series repeated with and without timestamps, a histogram
///   without its `+Inf` bucket;
/// - `/interleaved`: OpenMetrics whose family `a` comes back after `b`.
pub struct BadServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl BadServer {
    pub fn start() -> BadServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(stream) = stream {
                    std::thread::spawn(move || serve_bad(stream));
                }
            }
        });
        BadServer { port, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for BadServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_bad(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let text = "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n";
    let result = match path.as_str() {
        "/garbage" => {
            let body = "<html><body><h1>Welcome to nginx!</h1></body></html>\n";
            write!(
                stream,
                "HTTP/1.1 200 OK\r\n{text}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        "/binary" => {
            let body: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\n{text}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .and_then(|_| stream.write_all(&body))
        }
        "/truncated" => {
            let body = "# TYPE jobs counter\njobs_total 5\n# TYPE queue gauge\nqueue 3\n";
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        "/odd" => {
            let body = "# TYPE odd_escape gauge\nodd_escape{path=\"C:\\zip\"} 1\n\
                        # TYPE repeated gauge\n\
                        repeated{a=\"x\"} 1 1700000000000\n\
                        repeated{a=\"x\"} 3 1700000002000\n\
                        repeated{a=\"x\"} 2 1700000001000\n\
                        repeated{a=\"y\"} 5\nrepeated{a=\"y\"} 6\n\
                        # TYPE broken_seconds histogram\n\
                        broken_seconds_bucket{le=\"0.5\"} 1\nbroken_seconds_bucket{le=\"1\"} 2\n\
                        broken_seconds_count 2\nbroken_seconds_sum 1\n";
            write!(
                stream,
                "HTTP/1.1 200 OK\r\n{text}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        "/interleaved" => {
            let body = "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n# EOF\n";
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        "/huge" => {
            // No Content-Length: the body ends when the connection closes,
            // so only reading can find out how large it is.
            let line = "big_gauge{pad=\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"} 1\n";
            let chunk = line.repeat(1024);
            let mut result = write!(stream, "HTTP/1.1 200 OK\r\n{text}Connection: close\r\n\r\n");
            let mut sent = 0;
            while result.is_ok() && sent < 50 * 1024 * 1024 {
                result = stream.write_all(chunk.as_bytes());
                sent += chunk.len();
            }
            result
        }
        "/million" => {
            let mut result = write!(
                stream,
                "HTTP/1.1 200 OK\r\n{text}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            let mut i = 0u32;
            while result.is_ok() && i < 1_000_000 {
                let mut chunk = String::with_capacity(64 * 1024);
                for _ in 0..2000 {
                    chunk.push_str(&format!("many{{i=\"{i}\"}} 1\n"));
                    i += 1;
                }
                result = write!(stream, "{:x}\r\n{chunk}\r\n", chunk.len());
            }
            result.and_then(|_| stream.write_all(b"0\r\n\r\n"))
        }
        _ => write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    };
    let _ = result;
}

/// Peak resident memory of a process in bytes (`VmHWM` of /proc/PID/status).
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM in /proc/PID/status")
}

/// A real Prometheus (Debian package `prometheus`) on a free loopback port,
/// scraping `targets` (host:port, path /metrics) every second; killed on
/// drop.
pub struct Prometheus {
    child: Child,
    pub addr: String,
    log: std::path::PathBuf,
}

impl Prometheus {
    pub fn start(dir: &std::path::Path, targets: &[&str]) -> Prometheus {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}\n\
                 scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prom-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus: install the Debian package prometheus");
        Prometheus {
            child,
            addr: format!("127.0.0.1:{port}"),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of an instant query's single result, if it has exactly one.
    pub fn query(&self, promql: &str) -> Option<f64> {
        let raw = get(
            &self.addr,
            &format!(
                "/api/v1/query?query={}",
                crate::common::percent_encode(promql)
            ),
        );
        let body = raw.split("\r\n\r\n").nth(1)?;
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        let result = json["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
