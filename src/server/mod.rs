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

mod negotiate;
mod page;

use crate::metrics::Format;
use crate::runtime::{self, Shared};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// A reload request from `POST /-/reload`, answered with the outcome.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
    reload: mpsc::Sender<ReloadRequest>,
}

impl Server {
    pub fn new(shared: Arc<Shared>, reload: mpsc::Sender<ReloadRequest>) -> Self {
        Server { shared, reload }
    }

    /// Accepts connections until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let (stream, _peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let server = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .header_read_timeout(std::time::Duration::from_secs(10))
                    .timer(hyper_util::rt::TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
    }

    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        let get = matches!(*req.method(), Method::GET | Method::HEAD);
        match (path, get, req.method() == Method::POST) {
            ("/metrics", true, _) => self.metrics(&req),
            ("/health/live", true, _) => text(StatusCode::OK, "ok\n".into()),
            ("/health/ready", true, _) => self.ready(),
            ("/status", true, _) => self.status(),
            ("/", true, _) => html(page::index(&self.shared.check_statuses())),
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
        let pending = self.shared.pending_sources();
        if !pending.is_empty() {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not ready: waiting for the first round of: {}\n",
                    pending.join(", ")
                ),
            );
        }
        let failing = self.shared.failing_readiness();
        if !failing.is_empty() {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not ready: critical readiness checks: {}\n",
                    failing.join(", ")
                ),
            );
        }
        text(StatusCode::OK, "ready\n".into())
    }

    fn status(&self) -> Response<Full<Bytes>> {
        let pending = self.shared.pending_sources();
        let body = serde_json::json!({
            "version": runtime::VERSION,
            "revision": runtime::REVISION,
            "started_timestamp_seconds": self.shared.started(),
            "ready": pending.is_empty() && self.shared.failing_readiness().is_empty(),
            "config": self.shared.reload_status(),
            "sources": self.shared.source_statuses(),
            "checks": self.shared.check_statuses(),
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

/// Keeps `Format` in this module's public surface for tests.
pub fn negotiate_format(accept: &str) -> Format {
    negotiate::format(accept)
}
