//! The HTTP server's limits against the real binary on loopback: idle and
//! half-open connections do not starve a scrape, slowloris connections are
//! closed, oversized request heads and bodies are refused. Every loop is
//! bounded in count and time.

mod common;

use common::{temp_config, Daemon};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

fn start(dir: &Path, web: &str, extra_args: &[&str]) -> Daemon {
    let config = temp_config(
        dir,
        "vitals.yaml",
        &format!(
            "interval: 1h\ndefault_checks: false\nlog: {{level: debug}}\nsources:\n  host: {{enabled: true}}\n  cgroup: {{enabled: false}}\nweb:\n{web}"
        ),
    );
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(extra_args);
    Daemon::start_with(&args, &[])
}

/// Sends raw bytes and reads whatever comes back until EOF or `wait`.
/// `None`: the connection was reset or closed with nothing sent.
fn exchange(addr: &str, raw: &[u8], wait: Duration) -> Option<String> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    if s.write_all(raw).is_err() {
        return None;
    }
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!(
                "no answer and no close within {wait:?}; got {:?}",
                String::from_utf8_lossy(&out)
            )
        }
        Err(_) => {}
    }
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
}

fn status_of(response: &str) -> Option<u16> {
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the server closed `s` (EOF or reset) within `wait`.
fn closed_within(s: &TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut s = s;
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + wait;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {
                // An error answer (408) before the close is fine too.
                if Instant::now() > deadline {
                    return false;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_and_half_open_connections_do_not_starve_a_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 8;
    let d = start(
        dir.path(),
        &format!("  max_connections: {limit}\n  header_read_timeout: 30s\n"),
        &[],
    );
    d.wait_ready();

    // Twice the limit of connections that never send a byte, plus half as
    // many that sent half a request head (slowloris).
    let mut idle: Vec<TcpStream> = (0..2 * limit)
        .map(|_| TcpStream::connect(&d.addr).unwrap())
        .collect();
    for _ in 0..limit / 2 {
        let mut s = TcpStream::connect(&d.addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        idle.push(s);
    }
    // Give the server a moment to accept them all.
    std::thread::sleep(Duration::from_millis(500));

    // A real scrape still gets its answer, well within the header timeout.
    for _ in 0..3 {
        let r = d.get("/metrics");
        assert_eq!(r.status, 200);
        assert!(r.text().contains("vitals_build_info"));
    }
    assert_eq!(d.get("/health/live").status, 200);

    // The longest-idle connections were closed to make room: at most
    // `limit` of the idle ones can still be open.
    let total = idle.len();
    let closed = idle
        .iter()
        .filter(|s| closed_within(s, Duration::from_millis(300)))
        .count();
    assert!(
        closed >= total - limit,
        "only {closed} of {total} idle connections closed with a limit of {limit}"
    );
}

#[test]
fn slowloris_is_closed_by_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), "  header_read_timeout: 1s\n", &[]);
    d.wait_ready();

    // Trickles a header line every 200 ms, never finishing the head.
    let mut s = TcpStream::connect(&d.addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut closed = false;
    let mut i = 0;
    while Instant::now() < deadline {
        if s.write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
            .is_err()
        {
            closed = true;
            break;
        }
        if closed_within(&s, Duration::from_millis(200)) {
            closed = true;
            break;
        }
        i += 1;
    }
    assert!(closed, "a slowloris connection stayed open for 10 s");

    // A connection that sends nothing at all is closed too.
    let silent = TcpStream::connect(&d.addr).unwrap();
    assert!(closed_within(&silent, Duration::from_secs(10)));
    // The server is fine.
    assert_eq!(d.get("/health/live").status, 200);
}

#[test]
fn tls_handshake_that_never_finishes_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.path().join("s.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("s.key"), cert.signing_key.serialize_pem()).unwrap();
    let web = temp_config(
        dir.path(),
        "web.yml",
        "tls_server_config: {cert_file: s.crt, key_file: s.key}\n",
    );
    let d = start(
        dir.path(),
        "  header_read_timeout: 1s\n",
        &["--web.config.file", web.to_str().unwrap()],
    );
    let mut s = TcpStream::connect(&d.addr).unwrap();
    // Half a TLS record header, then nothing.
    s.write_all(&[0x16, 0x03, 0x01]).unwrap();
    assert!(closed_within(&s, Duration::from_secs(10)));
    d.wait_until("the handshake timeout in the log", |d| {
        d.log().contains("TLS handshake timed out")
    });
}

#[test]
fn oversized_request_heads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), "  max_connections: 16\n", &[]);
    d.wait_ready();

    // One 64 KiB header line.
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    match exchange(&d.addr, big.as_bytes(), Duration::from_secs(10)) {
        None => {}
        Some(r) => assert_eq!(status_of(&r), Some(431), "{}", &r[..r.len().min(200)]),
    }

    // Many small headers.
    let mut many = String::from("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    match exchange(&d.addr, many.as_bytes(), Duration::from_secs(10)) {
        None => {}
        Some(r) => assert_eq!(status_of(&r), Some(431), "{}", &r[..r.len().min(200)]),
    }

    // Still serving; a normal request with a few headers is fine.
    assert_eq!(d.get("/metrics").status, 200);
}

#[test]
fn request_bodies_are_refused_except_a_small_one_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), "  request_timeout: 5s\n", &[]);
    d.wait_ready();
    let ask = |head: &str| {
        let r = exchange(&d.addr, head.as_bytes(), Duration::from_secs(10)).expect("an answer");
        status_of(&r).unwrap()
    };
    assert_eq!(
        ask("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100000\r\n\r\n"),
        413
    );
    assert_eq!(
        ask("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"),
        413
    );
    assert_eq!(
        ask("POST /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5000\r\n\r\n"),
        413
    );
    // An empty body on reload is what Prometheus' tooling sends: it reaches
    // the handler (which reloads the file).
    assert_eq!(
        ask("POST /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
        200
    );
}

/// Resident set size of a process, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS")
}

/// 1000 concurrent keep-alive connections scraping `/metrics` for
/// `VITALS_LOAD_SECONDS` (default 30): no failed response, and RSS after
/// within a small factor of before. Bounded in count and time; prints its
/// figures with `cargo test --test web_limits load -- --nocapture`.
#[test]
fn load_1000_concurrent_connections() {
    let connections: usize = std::env::var("VITALS_LOAD_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .min(5000);
    let seconds: u64 = std::env::var("VITALS_LOAD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .min(600);
    let dir = tempfile::tempdir().unwrap();
    // Info-level log: a debug line per connection would be part of the load.
    let config = temp_config(
        dir.path(),
        "vitals.yaml",
        &format!(
            "interval: 1s\ndefault_checks: false\nweb:\n  max_connections: {}\n",
            connections + 64
        ),
    );
    let d = Daemon::start(&config);
    d.wait_ready();
    // Warm up: the exposition and its gzip rendered, allocator settled.
    for _ in 0..50 {
        assert_eq!(d.get("/metrics").status, 200);
    }
    let before = rss_bytes(d.pid());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = d.addr.clone();
    let (ok, failed) = rt.block_on(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move { client(&addr, deadline).await }));
        }
        let (mut ok, mut failed) = (0u64, 0u64);
        for t in tasks {
            let (o, f) = t.await.unwrap_or((0, 1));
            ok += o;
            failed += f;
        }
        (ok, failed)
    });
    let after = rss_bytes(d.pid());
    println!(
        "load: {connections} connections for {seconds} s: {ok} responses, {failed} failures; \
         RSS before {:.1} MiB, after {:.1} MiB",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    assert_eq!(failed, 0, "failed requests under load");
    assert!(ok >= connections as u64, "fewer responses than connections");
    assert!(
        after < before * 4 + 64 * 1024 * 1024,
        "RSS grew from {before} to {after} bytes"
    );
    assert_eq!(d.get("/health/live").status, 200);
}

/// One keep-alive connection scraping until `deadline`: (responses, failures).
async fn client(addr: &str, deadline: tokio::time::Instant) -> (u64, u64) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return (0, 1);
    };
    let mut stream = BufReader::new(stream);
    let (mut ok, mut failed) = (0u64, 0u64);
    while tokio::time::Instant::now() < deadline {
        let one = async {
            stream
                .get_mut()
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .ok()?;
            let mut line = String::new();
            stream.read_line(&mut line).await.ok()?;
            let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
            let mut length = 0usize;
            loop {
                line.clear();
                stream.read_line(&mut line).await.ok()?;
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().ok()?;
                    }
                }
            }
            let mut body = vec![0u8; length];
            stream.read_exact(&mut body).await.ok()?;
            (status == 200 && body.starts_with(b"#")).then_some(())
        };
        match tokio::time::timeout(Duration::from_secs(20), one).await {
            Ok(Some(())) => ok += 1,
            _ => {
                failed += 1;
                break;
            }
        }
    }
    (ok, failed)
}
