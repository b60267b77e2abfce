//! The application's own health endpoint, probed with a plain HTTP/1.1 GET.
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `vitals_probe_up{probe}` | gauge | 1 if the last GET answered with an expected status |
//! | `vitals_probe_status_code{probe}` | gauge | status of the last answer (absent without one) |
//! | `vitals_probe_duration_seconds{probe}` | gauge | connect to end of body, or to the failure or timeout |
//! | `vitals_probe_error_ratio{probe}` | gauge | failed share of the probes within the configured window |
//!
//! A failing application is data, not a failing source: the round succeeds
//! with `up 0`. Only `http://` is supported (the endpoint is on loopback, in
//! the same pod or host); the request is written by hand over a tokio
//! `TcpStream` because only the status line matters, which keeps an HTTP
//! client stack out of the agent.

use super::{CollectError, Source};
use crate::config::{HttpProbeConfig, ProbeTarget as Target};
use crate::metrics::{Desc, Output};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response head read; a health endpoint's is far smaller.
const MAX_HEAD: usize = 16 * 1024;
/// Body bytes read at most; the rest is left unread and the connection closed.
const MAX_BODY: u64 = 1024 * 1024;
/// Results kept for the error ratio, whatever the window and interval.
const MAX_RESULTS: usize = 10_000;

/// The response head, as far as the probe cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<u64>,
}

/// Parses a response head (status line and headers, without the blank line).
pub fn parse_head(head: &str) -> Result<Head, String> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!(
            "not an HTTP/1 response: {:?}",
            status_line.chars().take(40).collect::<String>()
        ));
    }
    let code = parts.next().unwrap_or("");
    let status: u16 = code
        .parse()
        .ok()
        .filter(|c| (100..=999).contains(c) && code.len() == 3)
        .ok_or_else(|| format!("invalid status code {code:?} in the status line"))?;
    let mut content_length = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| format!("invalid Content-Length {:?}", value.trim()))?,
                );
            }
        }
    }
    Ok(Head {
        status,
        content_length,
    })
}

/// What one probe found.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeResult {
    /// The status of the answer, if one came.
    pub status: Option<u16>,
    /// From connecting to the end of the body, or to the failure.
    pub duration: Duration,
    /// Why no answer came.
    pub error: Option<String>,
}

/// GETs `target` once, giving up after `timeout`.
pub async fn probe(target: &Target, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let outcome = tokio::time::timeout(timeout, exchange(target)).await;
    let duration = start.elapsed();
    match outcome {
        Ok(Ok(status)) => ProbeResult {
            status: Some(status),
            duration,
            error: None,
        },
        Ok(Err(e)) => ProbeResult {
            status: None,
            duration,
            error: Some(e),
        },
        Err(_) => ProbeResult {
            status: None,
            duration,
            error: Some(format!(
                "no complete answer within the timeout of {}",
                crate::config::Duration(timeout)
            )),
        },
    }
}

async fn exchange(target: &Target) -> Result<u16, String> {
    let mut stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("connecting to {}: {e}", target.host_header))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vitals/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path,
        target.host_header,
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;

    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("response head larger than {MAX_HEAD} bytes"));
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the response: {e}"))?;
        if n == 0 {
            return Err("connection closed before a complete response head".into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let head = parse_head(&String::from_utf8_lossy(
        buf.get(..head_end).unwrap_or_default(),
    ))?;

    // Read the body (up to a cap) so the latency covers the whole answer and
    // the server is not cut off mid-write. With a Content-Length, stop there:
    // a server ignoring `Connection: close` must not make the probe time out.
    let mut body = (buf.len() - (head_end + 4)) as u64;
    let want = head.content_length.unwrap_or(u64::MAX).min(MAX_BODY);
    while body < want {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the response body: {e}"))?;
        if n == 0 {
            if head.content_length.is_some() {
                return Err("connection closed before the end of the body".into());
            }
            break;
        }
        body += n as u64;
    }
    Ok(head.status)
}

/// Recent probe results, by time, for the error ratio.
#[derive(Clone, Debug)]
pub struct ErrorWindow {
    window: Duration,
    results: VecDeque<(Instant, bool)>,
}

impl ErrorWindow {
    pub fn new(window: Duration) -> Self {
        ErrorWindow {
            window,
            results: VecDeque::new(),
        }
    }

    /// Records one result and forgets those older than the window.
    pub fn record(&mut self, now: Instant, failed: bool) {
        self.results.push_back((now, failed));
        while self
            .results
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > self.window)
            || self.results.len() > MAX_RESULTS
        {
            self.results.pop_front();
        }
    }

    /// Failed share of the results in the window; `None` before any.
    pub fn ratio(&self) -> Option<f64> {
        if self.results.is_empty() {
            return None;
        }
        let failed = self.results.iter().filter(|(_, f)| *f).count();
        Some(failed as f64 / self.results.len() as f64)
    }
}

/// One configured probe.
pub struct HttpProbeSource {
    name: String,
    target: Target,
    timeout: Duration,
    expect: Vec<u16>,
    window: ErrorWindow,
}

impl HttpProbeSource {
    pub fn new(config: &HttpProbeConfig) -> Self {
        HttpProbeSource {
            name: config.name.clone(),
            target: config.url.clone(),
            timeout: config.timeout.as_std(),
            expect: config.expect_status.clone(),
            window: ErrorWindow::new(config.window.as_std()),
        }
    }

    /// Whether `status` is an expected answer: the configured list, or any 2xx.
    pub fn expected(&self, status: u16) -> bool {
        if self.expect.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect.contains(&status)
        }
    }
}

impl Source for HttpProbeSource {
    async fn collect(&mut self, out: &mut Output) -> Result<(), CollectError> {
        let result = probe(&self.target, self.timeout).await;
        let ok = result.status.is_some_and(|s| self.expected(s));
        self.window.record(Instant::now(), !ok);
        if !ok {
            let why = match (&result.error, result.status) {
                (Some(e), _) => e.clone(),
                (None, Some(s)) => format!("unexpected status {s}"),
                (None, None) => "no answer".to_owned(),
            };
            tracing::debug!(probe = %self.name, "probe failed: {why}");
        }
        let labels = [("probe", self.name.as_str())];
        out.add(&UP, &labels, if ok { 1.0 } else { 0.0 });
        if let Some(status) = result.status {
            out.add(&STATUS_CODE, &labels, f64::from(status));
        }
        out.add(&DURATION_SECONDS, &labels, result.duration.as_secs_f64());
        if let Some(ratio) = self.window.ratio() {
            out.add(&ERROR_RATIO, &labels, ratio);
        }
        Ok(())
    }
}

pub const UP: Desc = Desc::gauge(
    "vitals_probe_up",
    &["probe"],
    "Whether the last GET of the application's health endpoint by the http probe answered with an expected status (1) or not (0).",
);
pub const STATUS_CODE: Desc = Desc::gauge(
    "vitals_probe_status_code",
    &["probe"],
    "HTTP status code of the last answer of the application's health endpoint to the http probe.",
);
pub const DURATION_SECONDS: Desc = Desc::gauge(
    "vitals_probe_duration_seconds",
    &["probe"],
    "Duration of the last http probe of the application's health endpoint, from connecting to the end of the answer, or to the failure or timeout.",
);
pub const ERROR_RATIO: Desc = Desc::gauge(
    "vitals_probe_error_ratio",
    &["probe"],
    "Share of the http probes of the application's health endpoint within the probe's configured window that failed (no answer, timeout or an unexpected status).",
);

/// Every family this source exports, for `collectors::catalog()`.
pub const METRICS: &[Desc] = &[UP, STATUS_CODE, DURATION_SECONDS, ERROR_RATIO];

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    #[test]
    fn parse_head_table() {
        // Heads as sent by Python's http.server (HTTP/1.0), nginx 1.22 and
        // a hyper 1 server.
        for (head, status, length) in [
            (
                "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nContent-type: text/html",
                200,
                None,
            ),
            (
                "HTTP/1.1 503 Service Temporarily Unavailable\r\nServer: nginx/1.22.1\r\nContent-Length: 190\r\nConnection: close",
                503,
                Some(190),
            ),
            ("HTTP/1.1 204 \r\ncontent-length: 0", 204, Some(0)),
            ("HTTP/1.1 200", 200, None),
        ] {
            assert_eq!(
                parse_head(head),
                Ok(Head {
                    status,
                    content_length: length
                }),
                "{head}"
            );
        }
        for (head, message) in [
            ("SSH-2.0-OpenSSH_9.2p1", "not an HTTP/1 response"),
            ("HTTP/1.1 2000 OK", "invalid status code"),
            ("HTTP/1.1 abc OK", "invalid status code"),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: -1",
                "invalid Content-Length",
            ),
        ] {
            let e = parse_head(head).expect_err(head);
            assert!(e.contains(message), "{head}: {e}");
        }
    }

    #[test]
    fn error_window_counts_only_recent_results() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = ErrorWindow::new(Duration::from_secs(60));
        assert_eq!(w.ratio(), None);
        w.record(at(0), true);
        w.record(at(10), false);
        w.record(at(20), false);
        w.record(at(30), false);
        assert_eq!(w.ratio(), Some(0.25));
        // At 61 s the failure at 0 s has left the window.
        w.record(at(61), false);
        assert_eq!(w.ratio(), Some(0.0));
        w.record(at(62), true);
        assert_eq!(w.ratio(), Some(0.2));
    }

    #[test]
    fn error_window_is_bounded_in_count() {
        let t0 = Instant::now();
        let mut w = ErrorWindow::new(Duration::from_secs(86_400));
        for i in 0..(MAX_RESULTS as u64 + 10) {
            w.record(t0 + Duration::from_millis(i), i < 10);
        }
        assert_eq!(w.results.len(), MAX_RESULTS);
        assert_eq!(w.ratio(), Some(0.0));
    }

    enum Reply {
        /// Answer with this raw response, then close.
        Raw(&'static str),
        /// Answer, then keep the connection open until the test ends.
        KeepOpen(&'static str),
        /// Never answer; hold the connection until the test ends.
        Hang,
    }

    /// A one-connection server on 127.0.0.1:0. Returns the URL, the request
    /// it received, and a guard that ends held connections when dropped.
    fn serve(reply: Reply, path: &str) -> (String, mpsc::Receiver<String>, mpsc::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let (req_tx, req_rx) = mpsc::channel();
        let (end_tx, end_rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = req_tx.send(String::from_utf8_lossy(&request).into_owned());
            match reply {
                Reply::Raw(r) => {
                    let _ = conn.write_all(r.as_bytes());
                }
                Reply::KeepOpen(r) => {
                    let _ = conn.write_all(r.as_bytes());
                    let _ = end_rx.recv_timeout(Duration::from_secs(30));
                }
                Reply::Hang => {
                    let _ = end_rx.recv_timeout(Duration::from_secs(30));
                }
            }
        });
        (url, req_rx, end_tx)
    }

    fn source(url: &str, timeout_ms: u64, expect: Vec<u16>) -> HttpProbeSource {
        HttpProbeSource::new(&HttpProbeConfig {
            name: "app".into(),
            url: Target::parse(url).unwrap(),
            interval: None,
            timeout: crate::config::Duration::from_millis(timeout_ms),
            expect_status: expect,
            window: crate::config::Duration::from_secs(300),
        })
    }

    async fn round(src: &mut HttpProbeSource) -> Output {
        let mut out = Output::new();
        src.collect(&mut out)
            .await
            .expect("a probe round never fails");
        out
    }

    fn v(out: &Output, name: &str) -> Option<f64> {
        out.value(name, &[("probe", "app")])
    }

    #[tokio::test]
    async fn answers_200_then_500_then_hangs() {
        let mut src;
        // 200: up, and the request is a well-formed GET of the path.
        let (url, req, _guard) = serve(
            Reply::Raw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            "/health?deep=1",
        );
        src = source(&url, 5000, vec![]);
        let out = round(&mut src).await;
        assert_eq!(v(&out, "vitals_probe_up"), Some(1.0));
        assert_eq!(v(&out, "vitals_probe_status_code"), Some(200.0));
        assert_eq!(v(&out, "vitals_probe_error_ratio"), Some(0.0));
        assert!(v(&out, "vitals_probe_duration_seconds").is_some_and(|d| d >= 0.0));
        let request = req.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            request.starts_with("GET /health?deep=1 HTTP/1.1\r\n"),
            "{request}"
        );
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches("/health?deep=1");
        assert!(
            request.contains(&format!("\r\nHost: {host}\r\n")),
            "{request}"
        );

        // 500 from the same source (a new server on another port): down,
        // with its status, and half of the window's probes failed.
        let (url500, _req, _guard500) = serve(
            Reply::Raw("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"),
            "/",
        );
        src.target = Target::parse(&url500).unwrap();
        let out = round(&mut src).await;
        assert_eq!(v(&out, "vitals_probe_up"), Some(0.0));
        assert_eq!(v(&out, "vitals_probe_status_code"), Some(500.0));
        assert_eq!(v(&out, "vitals_probe_error_ratio"), Some(0.5));

        // A server that never answers: the timeout ends the probe, there is
        // no status, and the duration is reported (it feeds the latency check).
        let (url_hang, _req, guard_hang) = serve(Reply::Hang, "/");
        src.target = Target::parse(&url_hang).unwrap();
        src.timeout = Duration::from_millis(200);
        let out = round(&mut src).await;
        assert_eq!(v(&out, "vitals_probe_up"), Some(0.0));
        assert_eq!(v(&out, "vitals_probe_status_code"), None);
        assert!(v(&out, "vitals_probe_duration_seconds").is_some_and(|d| d >= 0.2));
        let ratio = v(&out, "vitals_probe_error_ratio").unwrap();
        assert!((ratio - 2.0 / 3.0).abs() < 1e-9, "{ratio}");
        drop(guard_hang);
    }

    #[tokio::test]
    async fn content_length_ends_the_read_even_if_the_server_keeps_the_connection() {
        let (url, _req, guard) = serve(
            Reply::KeepOpen("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
            "/",
        );
        // Long timeout: if the probe waited for the server to close, it
        // would hit it and report down.
        let mut src = source(&url, 10_000, vec![]);
        let out = round(&mut src).await;
        assert_eq!(v(&out, "vitals_probe_up"), Some(1.0));
        drop(guard);
    }

    #[tokio::test]
    async fn expected_status_list_and_refused_connection() {
        let (url, _req, _guard) = serve(
            Reply::Raw("HTTP/1.0 503 Service Unavailable\r\n\r\ndraining"),
            "/",
        );
        let mut src = source(&url, 5000, vec![200, 503]);
        let out = round(&mut src).await;
        assert_eq!(v(&out, "vitals_probe_up"), Some(1.0));
        assert_eq!(v(&out, "vitals_probe_status_code"), Some(503.0));

        // A port nobody listens on: bind, note it, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut src = source(&format!("http://127.0.0.1:{port}/"), 5000, vec![]);
        let out = round(&mut src).await;
        assert_eq!(v(&out, "vitals_probe_up"), Some(0.0));
        assert_eq!(v(&out, "vitals_probe_status_code"), None);
        assert_eq!(v(&out, "vitals_probe_error_ratio"), Some(1.0));
        let result = probe(
            &Target::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
            Duration::from_secs(5),
        )
        .await;
        assert!(
            result
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("connecting to 127.0.0.1:")),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn garbage_answer_is_a_failed_probe_not_a_failed_source() {
        let (url, _req, _guard) = serve(Reply::Raw("SSH-2.0-OpenSSH_9.2p1\r\n\r\n"), "/");
        let mut src = source(&url, 5000, vec![]);
        let out = round(&mut src).await;
        assert_eq!(v(&out, "vitals_probe_up"), Some(0.0));
        assert_eq!(v(&out, "vitals_probe_status_code"), None);
    }
}
