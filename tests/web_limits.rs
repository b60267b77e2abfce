//! The HTTP server's limits against the real binary on loopback: idle and
//! half-open connections do not starve a scrape, slowloris connections are
//! closed, oversized request heads and bodies are refused, and floods of
//! 4× and 20× the default `max_connections` slow vitals down without
//! stopping it, plain and TLS. Every loop is bounded in count and time.

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

/// Resident set size and its peak (VmRSS, VmHWM) of a process, in bytes.
fn rss_bytes(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ------------------------------------------------------------ overload ---
//
// Floods of keep-alive clients at 4× and 20× the DEFAULT max_connections
// (256), plain and TLS + basic auth: every response is a 200 or a 503, no
// connection is cut before or in the middle of its answer, and a separate
// Prometheus-style scraper (one connection, 10 s timeout, from another
// loopback address, as Prometheus runs on another host) gets its 200.
// Bounded: FLOOD_SECONDS of requests, then every client waits for the
// answer to the request it has sent, at most header_read_timeout +
// request_timeout.

/// The default `web.max_connections`.
const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// The default `web.header_read_timeout` + `web.request_timeout`: the
/// longest an accepted request may take to be answered.
const ANSWER_WITHIN: Duration = Duration::from_secs(10 + 30);
/// Prometheus' default scrape_timeout.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
const FLOOD_SECONDS: u64 = 6;
/// How long past the flood's end a client still waits for its slot.
const QUEUE_GRACE: Duration = Duration::from_secs(10);
/// One flood at a time: two would share the two cores and the fds.
static FLOODS: std::sync::Mutex<()> = std::sync::Mutex::new(());

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Where and how the flood clients and the scraper connect.
#[derive(Clone)]
struct Target {
    addr: std::net::SocketAddr,
    tls: Option<tokio_rustls::TlsConnector>,
    /// An `Authorization` header value.
    auth: Option<String>,
    /// Source address (a loopback one).
    from: std::net::IpAddr,
    /// Counts TCP connections established.
    connected: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Target {
    async fn connect(&self) -> std::io::Result<Box<dyn Io>> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((self.from, 0).into())?;
        let tcp = socket.connect(self.addr).await?;
        self.connected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(tls) => {
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost")
                    .expect("a DNS name");
                Ok(Box::new(tls.connect(name, tcp).await?))
            }
        }
    }

    fn request(&self) -> String {
        let mut req = String::from("GET /metrics HTTP/1.1\r\nHost: localhost\r\n");
        if let Some(auth) = &self.auth {
            req.push_str(&format!("Authorization: {auth}\r\n"));
        }
        req.push_str("\r\n");
        req
    }

    /// Sends one request and reads its whole answer: (status, the server
    /// said `Connection: close`, body).
    async fn exchange(
        &self,
        io: &mut tokio::io::BufReader<Box<dyn Io>>,
    ) -> Result<(u16, bool, Vec<u8>), String> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let req = self.request();
        io.get_mut()
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        io.get_mut()
            .flush()
            .await
            .map_err(|e| format!("flush: {e}"))?;
        let mut line = String::new();
        match io.read_line(&mut line).await {
            Ok(0) => return Err("closed without an answer".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("no answer: {e}")),
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let (mut length, mut close) = (None, false);
        loop {
            line.clear();
            io.read_line(&mut line)
                .await
                .map_err(|e| format!("cut in the response head: {e}"))?;
            if line.is_empty() {
                return Err("cut in the response head".into());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                }
                if k.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        }
        let length = length.ok_or("a response without Content-Length")?;
        let mut body = vec![0u8; length];
        io.read_exact(&mut body)
            .await
            .map_err(|e| format!("cut mid-response ({length} bytes announced): {e}"))?;
        Ok((status, close, body))
    }
}

/// What the flood clients saw.
#[derive(Default, Debug)]
struct Tally {
    ok: u64,
    unavailable: u64,
    /// Reconnects after a `Connection: close` answer (a turn at a slot
    /// ended, see src/server/limits.rs).
    turns: u64,
    /// Connections still waiting for a slot when the client stopped.
    gave_up: u64,
    /// Connections closed between two requests, before any byte of the
    /// second answer (retried on a new connection).
    idle_closes: u64,
    failures: Vec<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.unavailable += other.unavailable;
        self.turns += other.turns;
        self.gave_up += other.gave_up;
        self.idle_closes += other.idle_closes;
        self.failures.extend(other.failures);
    }
}

/// One keep-alive client: requests back to back until `deadline`, a new
/// connection whenever the server closes one after a complete answer; stops
/// at the first failure. A connection still waiting for its slot at the
/// deadline (no answer yet, or for TLS no handshake yet) is given up after
/// `QUEUE_GRACE`, as a client with a timeout would: a flood's excess waits,
/// it is not served at once.
async fn flood_client(target: Target, deadline: tokio::time::Instant) -> Tally {
    let mut t = Tally::default();
    let fail = |t: &mut Tally, what: String| t.failures.push(what);
    let give_up = deadline + QUEUE_GRACE;
    loop {
        let io = match tokio::time::timeout_at(give_up, target.connect()).await {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => {
                fail(&mut t, format!("connect: {e}"));
                return t;
            }
            Err(_) => {
                t.gave_up += 1;
                return t;
            }
        };
        let mut io = tokio::io::BufReader::new(io);
        let mut answered = false;
        loop {
            let limit = if answered {
                tokio::time::Instant::now() + ANSWER_WITHIN
            } else {
                give_up
            };
            let answered_before = answered;
            let exchange = tokio::time::timeout_at(limit, target.exchange(&mut io)).await;
            if matches!(exchange, Ok(Ok(_))) {
                answered = true;
            }
            match exchange {
                Err(_) if !answered_before => {
                    t.gave_up += 1;
                    return t;
                }
                Err(_) => {
                    fail(&mut t, format!("no answer within {ANSWER_WITHIN:?}"));
                    return t;
                }
                Ok(Err(e))
                    if answered_before
                        && (e.starts_with("no answer") || e.starts_with("closed without")) =>
                {
                    // Closed between two requests: HTTP's keep-alive race
                    // (the server closed a connection it saw idle; see
                    // EVICT_MIN_IDLE). Clients retry on a new connection.
                    t.idle_closes += 1;
                    break;
                }
                Ok(Err(e)) => {
                    fail(&mut t, e);
                    return t;
                }
                Ok(Ok((200, close, _))) => {
                    t.ok += 1;
                    t.turns += u64::from(close);
                    if close {
                        break;
                    }
                }
                Ok(Ok((503, close, _))) => {
                    t.unavailable += 1;
                    t.turns += u64::from(close);
                    if close {
                        break;
                    }
                }
                Ok(Ok((status, _, body))) => {
                    let body = String::from_utf8_lossy(&body);
                    fail(&mut t, format!("status {status}: {}", body.trim()));
                    return t;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return t;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return t;
        }
    }
}

/// One scrape on one connection within `SCRAPE_TIMEOUT`: the status and
/// whether the body is vitals' exposition.
async fn scrape(target: &Target) -> Result<(u16, bool), String> {
    scrape_within(target, SCRAPE_TIMEOUT).await
}

/// [`scrape`] with the client's own time limit.
async fn scrape_within(target: &Target, limit: Duration) -> Result<(u16, bool), String> {
    let one = async {
        let io = target
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut io = tokio::io::BufReader::new(io);
        let (status, _, body) = target.exchange(&mut io).await?;
        let text = String::from_utf8_lossy(&body);
        Ok::<_, String>((status, text.contains("vitals_build_info")))
    };
    tokio::time::timeout(limit, one)
        .await
        .map_err(|_| format!("no answer within {limit:?}"))?
}

/// Floods with `clients` keep-alive clients, scrapes once from 127.0.0.2
/// while every client is connected, and checks what everyone got.
fn overload(d: &Daemon, target: &Target, clients: usize, what: &str) {
    let _one_at_a_time = FLOODS.lock().unwrap_or_else(|p| p.into_inner());
    // Each client is a socket in this process (and one in vitals).
    let fds = vitals::server::limits::raise_fd_limit()
        .ok()
        .and_then(|(_, after)| after);
    if let Some(fds) = fds {
        assert!(
            fds > clients as u64 + 64,
            "{what}: the open files limit ({fds}) is too low for {clients} clients"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (rss_before, _) = rss_bytes(d.pid());
    let (tally, scraped) = rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(FLOOD_SECONDS);
        target
            .connected
            .store(0, std::sync::atomic::Ordering::Relaxed);
        let tasks: Vec<_> = (0..clients)
            .map(|_| tokio::spawn(flood_client(target.clone(), deadline)))
            .collect();
        // Every flood client connected (most of them waiting for a slot).
        let until = tokio::time::Instant::now() + Duration::from_secs(FLOOD_SECONDS);
        while target.connected.load(std::sync::atomic::Ordering::Relaxed) < clients
            && tokio::time::Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let scraper = Target {
            from: "127.0.0.2".parse().unwrap(),
            connected: Default::default(),
            ..target.clone()
        };
        let scraped = scrape(&scraper).await;
        let mut tally = Tally::default();
        for t in tasks {
            match t.await {
                Ok(t) => tally.add(t),
                Err(e) => tally.failures.push(format!("client task: {e}")),
            }
        }
        (tally, scraped)
    });
    let (rss_after, rss_peak) = rss_bytes(d.pid());
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "{what}: {clients} clients for {FLOOD_SECONDS} s: {} × 200, {} × 503, {} turns ended by \
         Connection: close, {} waiting connections given up, {} closed between requests, {} failures; scraper: {scraped:?}; RSS before {:.1} MiB, peak {:.1} MiB, \
         after {:.1} MiB",
        tally.ok,
        tally.unavailable,
        tally.turns,
        tally.gave_up,
        tally.idle_closes,
        tally.failures.len(),
        mib(rss_before),
        mib(rss_peak),
        mib(rss_after),
    );
    assert!(
        tally.failures.is_empty(),
        "{what}: {} clients failed, e.g. {:?}",
        tally.failures.len(),
        &tally.failures[..tally.failures.len().min(5)]
    );
    assert_eq!(scraped, Ok((200, true)), "{what}: the scraper's request");
    // Served, not only refused: more 200s than slots, and turns taken.
    assert!(
        tally.ok > DEFAULT_MAX_CONNECTIONS as u64 && tally.turns > 0,
        "{what}: only {} × 200 and {} turns",
        tally.ok,
        tally.turns
    );
    // Memory stays bounded: the served connections' buffers, not the flood's.
    assert!(
        rss_peak < rss_before + 192 * 1024 * 1024,
        "{what}: peak RSS {rss_peak} bytes from {rss_before}"
    );
    assert_eq!(
        rt.block_on(scrape(target)),
        Ok((200, true)),
        "{what}: still serving after the flood"
    );
}

fn overload_daemon(dir: &Path, web_config: Option<&Path>) -> Daemon {
    // The web settings are left at their defaults; info-level log (a debug
    // line per connection would be part of the load).
    let config = temp_config(
        dir,
        "vitals.yaml",
        "interval: 1s\ndefault_checks: false\nsources:\n  host: {enabled: true}\n  cgroup: {enabled: false}\n",
    );
    let mut args = vec!["--config", config.to_str().unwrap()];
    if let Some(web) = web_config {
        args.extend(["--web.config.file", web.to_str().unwrap()]);
    }
    Daemon::start_with(&args, &[])
}

fn plain_target(d: &Daemon) -> Target {
    Target {
        addr: d.addr.parse().unwrap(),
        tls: None,
        auth: None,
        from: std::net::Ipv4Addr::LOCALHOST.into(),
        connected: Default::default(),
    }
}

#[test]
fn overload_plain_4x_and_20x_the_default_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = overload_daemon(dir.path(), None);
    d.wait_ready();
    let target = plain_target(&d);
    for factor in [4, 20] {
        overload(
            &d,
            &target,
            factor * DEFAULT_MAX_CONNECTIONS,
            &format!("plain {factor}×"),
        );
    }
}

#[test]
fn overload_tls_and_basic_auth_4x_and_20x_the_default_limit() {
    use tokio_rustls::rustls;
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.path().join("s.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("s.key"), cert.signing_key.serialize_pem()).unwrap();
    let password = "flood-test-password";
    // Cost 10, what htpasswd and the exporter-toolkit docs use.
    let hash = bcrypt::hash(password, 10).unwrap();
    let web = temp_config(
        dir.path(),
        "web.yml",
        &format!(
            "tls_server_config: {{cert_file: s.crt, key_file: s.key}}\nbasic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    );
    let d = overload_daemon(dir.path(), Some(&web));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    use base64::Engine as _;
    let target = Target {
        tls: Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
            client,
        ))),
        auth: Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("prometheus:{password}"))
        )),
        ..plain_target(&d)
    };
    // Prometheus scrapes all the time: its credentials are checked once
    // (bcrypt) and remembered before any flood.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut ready = false;
    for _ in 0..100 {
        if rt.block_on(scrape(&target)) == Ok((200, true)) {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ready, "no TLS scrape succeeded; log:\n{}", d.log());
    for factor in [4, 20] {
        overload(
            &d,
            &target,
            factor * DEFAULT_MAX_CONNECTIONS,
            &format!("TLS + basic auth {factor}×"),
        );
    }
}

/// A self-signed certificate for `localhost` in `dir` (`s.crt`, `s.key`),
/// a web config serving TLS with it, and a client config trusting it.
fn tls_files(dir: &Path) -> (std::path::PathBuf, tokio_rustls::rustls::ClientConfig) {
    use tokio_rustls::rustls;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("s.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("s.key"), cert.signing_key.serialize_pem()).unwrap();
    let web = temp_config(
        dir,
        "web.yml",
        "tls_server_config: {cert_file: s.crt, key_file: s.key}\n",
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    (web, client)
}

/// More stalled TLS handshakes than `max_connections` (default settings):
/// each peer sends two bytes of a TLS record and then nothing. Quiet is
/// quiet: they make room after `EVICT_MIN_IDLE` (2 s), so a scrape from
/// another address is answered within a 3 s client timeout, instead of
/// waiting for `header_read_timeout` (10 s) to end them.
#[test]
fn stalled_tls_handshakes_past_the_limit_do_not_starve_a_scrape() {
    let _one_flood_at_a_time = FLOODS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (web, client) = tls_files(dir.path());
    let d = overload_daemon(dir.path(), Some(&web));
    let target = Target {
        tls: Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
            client,
        ))),
        from: std::net::Ipv4Addr::new(127, 0, 0, 2).into(),
        ..plain_target(&d)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    d.wait_until("a first TLS scrape", |_| {
        rt.block_on(scrape(&target)) == Ok((200, true))
    });

    let stalled: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(&d.addr).unwrap();
            // A handshake record's type and the first byte of its version.
            s.write_all(&[0x16, 0x03]).unwrap();
            s
        })
        .collect();
    // Every slot is taken by a stalled handshake before the scrape comes.
    std::thread::sleep(Duration::from_millis(500));
    let answer = rt.block_on(scrape_within(&target, Duration::from_secs(3)));
    assert_eq!(answer, Ok((200, true)), "log:\n{}", d.log());
    // The stalled ones were closed to make room, not served.
    let closed = stalled
        .iter()
        .filter(|s| closed_within(s, Duration::from_millis(100)))
        .count();
    assert!(closed >= 300 - DEFAULT_MAX_CONNECTIONS, "{closed} closed");
}
