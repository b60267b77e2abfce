//! The HTTP side. Every endpoint:
//!
//! | method     | path            | what                                                     |
//! |------------|-----------------|----------------------------------------------------------|
//! | GET, HEAD  | `/metrics`      | last rendered exposition; text 0.0.4 or OpenMetrics by `Accept`, gzip by `Accept-Encoding` |
//! | GET, HEAD  | `/health/live`  | 200 while the process serves HTTP                        |
//! | GET, HEAD  | `/health/ready` | 200 once every source completed a round, else 503        |
//! | GET, HEAD  | `/status`       | JSON: sources, config reload state                       |
//! | GET, HEAD  | `/`             | small HTML page linking the rest                         |
//! | POST       | `/-/reload`     | reload the config file (like SIGHUP)                     |
//!
//! Other paths answer 404, other methods on these paths 405.

mod auth;
pub mod limits;
mod negotiate;
pub mod page;
pub mod tls;
pub mod webconfig;

use crate::runtime::{self, Shared};
use auth::Verdict;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER,
    VARY,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use limits::{ConnState, Connections, Slot};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use webconfig::{Active, Web};

/// The listen backlog asked for; the kernel caps it at
/// `net.core.somaxconn` (4096 by default since Linux 5.4), the backlog Go
/// programs like node_exporter get. A flood's connections wait there once
/// `limits::waiting_cap` of them wait in the process; a full backlog drops
/// handshakes, which clients then retransmit with a delay.
const LISTEN_BACKLOG: u32 = 65535;

/// Binds the HTTP listener (with `SO_REUSEADDR`, like `TcpListener::bind`).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A reload request from `POST /-/reload`, answered with the outcome.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
    reload: mpsc::Sender<ReloadRequest>,
    web: Arc<Web>,
    conns: Arc<Connections>,
}

impl Server {
    pub fn new(shared: Arc<Shared>, reload: mpsc::Sender<ReloadRequest>) -> Self {
        Server {
            shared,
            reload,
            web: Arc::new(Web::plain()),
            conns: Arc::new(Connections::default()),
        }
    }

    /// Serves with these TLS, auth and limit settings (default: plain
    /// HTTP, no auth, default limits).
    pub fn with_web(mut self, web: Arc<Web>) -> Self {
        self.web = web;
        self
    }

    /// Accepts connections until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        let conns = self.conns.clone();
        tokio::select! {
            _ = self.accept(listener) => {}
            _ = conns.keep_balanced() => {}
        }
    }

    /// Every accepted connection gets a task that waits for a slot (see
    /// `limits`); past `limits::waiting_cap` waiting ones, accepting stops
    /// and new connections wait in the kernel's listen backlog.
    async fn accept(self, listener: TcpListener) {
        let fd_limit = limits::fd_limit();
        loop {
            let max = self.web.active().limits.max_connections.get();
            let cap = limits::waiting_cap(max, fd_limit).max(1);
            while self.conns.waiting() >= cap {
                self.conns.room().await;
            }
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let arrival = self.conns.arrive(peer.ip(), max);
            let server = self.clone();
            tokio::spawn(async move {
                let Some(slot) = arrival.slot().await else {
                    return;
                };
                // Settings are taken when the connection gets its slot: a
                // reload applies to the connections admitted after it.
                let active = server.web.active();
                // Boxed: a waiting task stays small.
                Box::pin(server.connection(stream, slot, active)).await;
            });
        }
    }

    async fn connection(self, stream: TcpStream, slot: Slot, active: Arc<Active>) {
        let state = slot.state.clone();
        let handshake_timeout = at_least(active.limits.header_read_timeout.as_std());
        let _ = stream.set_nodelay(true);
        let stream = limits::Heard::new(stream, state.clone());
        match &active.tls {
            None => self.http(TokioIo::new(stream), &state, &active).await,
            Some(acceptor) => {
                state.handshaking(true);
                let accept = tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                let mut accept = std::pin::pin!(accept);
                let handshake = loop {
                    tokio::select! {
                        r = accept.as_mut() => break r,
                        _ = state.evicted() => {
                            // Chosen while the peer was quiet (half-open,
                            // or stalled mid-handshake); if bytes came
                            // meanwhile, the handshake goes on.
                            if state.quiet() {
                                return;
                            }
                            state.spare();
                        }
                    }
                };
                state.handshaking(false);
                match handshake {
                    Ok(Ok(tls)) => self.http(TokioIo::new(tls), &state, &active).await,
                    // Plain HTTP to the TLS port lands here too: no answer.
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            }
        }
        drop(slot);
    }

    async fn http<I>(&self, io: I, state: &Arc<ConnState>, active: &Arc<Active>)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let request_timeout = at_least(active.limits.request_timeout.as_std());
        let service = {
            let (server, active, state) = (self.clone(), active.clone(), state.clone());
            hyper::service::service_fn(move |req| {
                let (server, active, state) = (server.clone(), active.clone(), state.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(server.guarded(req, &active, &state).await)
                }
            })
        };
        let conn = hyper::server::conn::http1::Builder::new()
            // Also closes a keep-alive connection idle for this long.
            .header_read_timeout(at_least(active.limits.header_read_timeout.as_std()))
            .timer(hyper_util::rt::TokioTimer::new())
            .max_buf_size(limits::MAX_BUF_SIZE)
            .max_headers(limits::MAX_HEADERS)
            .serve_connection(io, service);
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = state.evicted() => {}
            _ = stalled(state, request_timeout) => {
                tracing::debug!("response not written within request_timeout; closing the connection");
                return;
            }
        }
        // Asked to make room, which happens only to a quiet connection:
        // nothing is lost by closing it now.
        if state.quiet() {
            return;
        }
        // A request started meanwhile: answer it, then close.
        conn.as_mut().graceful_shutdown();
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = stalled(state, request_timeout) => {}
        }
    }

    /// Everything a request goes through before and after `handle`: body
    /// and auth checks, the request timeout, configured headers, and the
    /// busy mark that keeps the connection from being evicted.
    async fn guarded(
        &self,
        req: Request<Incoming>,
        active: &Active,
        state: &Arc<ConnState>,
    ) -> Response<limits::TrackedBody> {
        let busy = state.begin();
        let limits = &active.limits;
        let path = req.uri().path();
        let exempt = limits.health_without_auth && matches!(path, "/health/live" | "/health/ready");
        let answer = async {
            if let Some(refusal) = body_refusal(&req) {
                return refusal;
            }
            if let Some(auth) = active.auth.as_ref().filter(|_| !exempt) {
                match auth
                    .check(req.headers().get(hyper::header::AUTHORIZATION))
                    .await
                {
                    Verdict::Allowed => {}
                    Verdict::Denied => {
                        let mut resp = text(StatusCode::UNAUTHORIZED, "401 unauthorized\n".into());
                        resp.headers_mut().insert(
                            hyper::header::WWW_AUTHENTICATE,
                            HeaderValue::from_static("Basic realm=\"vitals\""),
                        );
                        return resp;
                    }
                    Verdict::Busy => return unavailable("too many password checks in progress\n"),
                }
            }
            self.handle(req).await
        };
        let mut resp =
            match tokio::time::timeout(at_least(limits.request_timeout.as_std()), answer).await {
                Ok(resp) => resp,
                Err(_) => unavailable("request timed out\n"),
            };
        for (name, value) in &active.headers {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
        if state.retiring() {
            // Its turn is over while others wait: the client reads this
            // whole response, then reconnects (see `limits`).
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        // The connection stays busy until hyper drops the body, written.
        resp.map(|body| limits::TrackedBody::new(body, busy))
    }

    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        let get = matches!(*req.method(), Method::GET | Method::HEAD);
        match (path, get, req.method() == Method::POST) {
            ("/metrics", true, _) => self.metrics(&req),
            ("/health/live", true, _) => text(StatusCode::OK, "ok\n".into()),
            ("/health/ready", true, _) => self.ready(),
            ("/status", true, _) => self.status(),
            ("/", true, _) => {
                let report = self.shared.report();
                html(page::index(&report.checks, &report.sources))
            }
            ("/-/reload", _, true) => self.reload().await,
            ("/metrics" | "/health/live" | "/health/ready" | "/status" | "/", _, _) => {
                not_allowed("GET, HEAD")
            }
            ("/-/reload", _, _) => not_allowed("POST"),
            _ => text(
                StatusCode::NOT_FOUND,
                format!("404 not found: {path}\nsee / for the endpoints\n"),
            ),
        }
    }

    fn metrics(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let headers = req.headers();
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .unwrap_or("")
        };
        let format = negotiate::format(header(hyper::header::ACCEPT));
        let gzip = negotiate::accepts_gzip(header(hyper::header::ACCEPT_ENCODING));
        let body = self.shared.exposition().body(format, gzip);
        let mut resp = Response::new(Full::new(body));
        let h = resp.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        h.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
        if gzip {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        resp
    }

    /// 503 until every source completed a round, and while a check marked
    /// `readiness: true` is critical; the body says which.
    fn ready(&self) -> Response<Full<Bytes>> {
        let readiness = self.shared.readiness();
        if !readiness.pending_sources.is_empty() {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not ready: waiting for the first round of: {}\n",
                    readiness.pending_sources.join(", ")
                ),
            );
        }
        if !readiness.failing_checks.is_empty() {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not ready: critical readiness checks: {}\n",
                    readiness.failing_checks.join(", ")
                ),
            );
        }
        text(StatusCode::OK, "ready\n".into())
    }

    fn status(&self) -> Response<Full<Bytes>> {
        let report = self.shared.report();
        let body = serde_json::json!({
            "version": runtime::VERSION,
            "revision": runtime::REVISION,
            "started_timestamp_seconds": report.started_timestamp_seconds,
            "ready": report.readiness.is_ready(),
            "config": report.config,
            "sources": report.sources,
            "checks": report.checks,
            "remote_write": self.shared.remote_write().statuses(),
        });
        let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }

    async fn reload(&self) -> Response<Full<Bytes>> {
        let (tx, rx) = oneshot::channel();
        if self.reload.send(tx).await.is_err() {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "reload is not available\n".into(),
            );
        }
        match rx.await {
            Ok(Ok(())) => text(StatusCode::OK, "reloaded\n".into()),
            Ok(Err(e)) => text(
                StatusCode::BAD_REQUEST,
                format!("reload refused, previous configuration kept: {e}\n"),
            ),
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "reload was dropped\n".into(),
            ),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// 503 with `Retry-After`: come back in a second.
fn unavailable(why: &str) -> Response<Full<Bytes>> {
    let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, why.to_owned());
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

fn html(body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut resp = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("405 method not allowed; use {allow}\n"),
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

/// Timeouts of 0 would refuse everything; 100 ms is the floor.
fn at_least(d: Duration) -> Duration {
    d.max(Duration::from_millis(100))
}

/// Only `POST /-/reload` may carry a body, of at most 1 KiB (it is ignored);
/// anything else with a body gets 413 before it is read.
fn body_refusal(req: &Request<Incoming>) -> Option<Response<Full<Bytes>>> {
    let headers = req.headers();
    let chunked = headers.contains_key(hyper::header::TRANSFER_ENCODING);
    let length: u64 = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let allowed = if req.uri().path() == "/-/reload" {
        1024
    } else {
        0
    };
    (chunked || length > allowed).then(|| {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "413 this endpoint takes no request body\n".into(),
        )
    })
}

/// Resolves once a request (with its response) has been going for longer
/// than `limit` plus a second: a client that stopped reading its response.
async fn stalled(state: &ConnState, limit: Duration) {
    let limit = limit + Duration::from_secs(1);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if state.busy_for().is_some_and(|d| d > limit) {
            return;
        }
    }
}
