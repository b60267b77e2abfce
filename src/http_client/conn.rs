//! One HTTP/1.1 client connection (hyper 1) over TCP, or TLS with rustls and
//! the ring provider, kept open between requests and opened again after an
//! error. Used by remote write.

use super::{Scheme, Target};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;

/// Built by [`crate::tls`], shared with the database connectors.
pub use crate::tls::TlsFiles;

/// A rustls client configuration for HTTPS: the CA file's roots (or the
/// system's), an optional client certificate, HTTP/1.1 by ALPN.
pub fn client_config(files: &TlsFiles<'_>) -> Result<Arc<ClientConfig>, String> {
    crate::tls::client_config(&files.client_tls(&[b"http/1.1"])).map_err(|e| format!("tls {e}"))
}

/// A response, as far as a sender cares.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    /// The start of the body (for error messages), at most 512 bytes.
    pub body: String,
}

/// A response body is read to its end up to this many bytes, so the
/// connection can carry the next request; past it, the connection is
/// dropped instead. The answer stands either way: its status decides.
const DRAIN_LIMIT: usize = 1024 * 1024;
/// What is kept of a body for messages.
const KEEP: usize = 512;

/// The start of `body` for messages, and whether it was read to its end.
async fn read_body(mut body: hyper::body::Incoming) -> (String, bool) {
    let mut kept: Vec<u8> = Vec::new();
    let mut read = 0usize;
    let whole = loop {
        match body.frame().await {
            None => break true,
            Some(Err(_)) => break false,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    read += data.len();
                    let room = KEEP.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                    if read > DRAIN_LIMIT {
                        break false;
                    }
                }
            }
        }
    };
    (String::from_utf8_lossy(&kept).trim().to_owned(), whole)
}

/// A reusable connection to one endpoint.
pub struct Client {
    scheme: Scheme,
    target: Target,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// The task driving the open connection; aborted when it is replaced,
    /// so a receiver that never answers does not keep sockets around.
    driver: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
    }
}

impl Client {
    pub fn new(
        scheme: Scheme,
        target: Target,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<Self, String> {
        let tls = match (scheme, tls) {
            (Scheme::Https, Some(config)) => {
                let name = ServerName::try_from(target.host.clone())
                    .map_err(|e| format!("tls server name {:?}: {e}", target.host))?;
                Some((config, name))
            }
            (Scheme::Https, None) => return Err("https needs a TLS configuration".into()),
            (Scheme::Http, _) => None,
        };
        Ok(Client {
            scheme,
            target,
            tls,
            sender: None,
            driver: None,
        })
    }

    /// Checks the server's certificate against `name` (`tls.server_name`)
    /// instead of the URL's host.
    pub fn with_server_name(mut self, name: &str) -> Result<Self, String> {
        if let Some((_, server)) = &mut self.tls {
            *server = ServerName::try_from(name.to_owned())
                .map_err(|e| format!("tls server_name {name:?}: {e}"))?;
        }
        Ok(self)
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Sends `request` (its URI is set to the target's path) on the open
    /// connection or a new one. The caller bounds the time it takes; on any
    /// error the connection is dropped.
    pub async fn send(
        &mut self,
        mut request: hyper::Request<Full<Bytes>>,
    ) -> Result<Answer, String> {
        let mut reusable = self.sender.take();
        if let Some(s) = reusable.as_mut() {
            if s.ready().await.is_err() {
                reusable = None;
            }
        }
        let sender = match reusable {
            Some(s) => s,
            None => {
                if let Some(driver) = self.driver.take() {
                    driver.abort();
                }
                let (sender, driver) = self.connect().await?;
                self.driver = Some(driver);
                sender
            }
        };
        let mut sender = sender;
        *request.uri_mut() = self.target.path.parse().map_err(|e| format!("path: {e}"))?;
        let host = hyper::header::HeaderValue::from_str(&self.target.host_header)
            .map_err(|e| format!("host header: {e}"))?;
        request.headers_mut().insert(hyper::header::HOST, host);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("sending the request: {e}"))?;
        let (parts, body) = response.into_parts();
        let (text, whole) = read_body(body).await;
        // A body read to its end leaves the connection ready for the next
        // request; a longer one, or one cut off, is not read further.
        if whole {
            self.sender = Some(sender);
        }
        Ok(Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: text,
        })
    }

    async fn connect(&self) -> Result<(SendRequest<Full<Bytes>>, Driver), String> {
        let where_ = &self.target.host_header;
        let tcp = TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .map_err(|e| format!("connecting to {where_}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        match (&self.scheme, &self.tls) {
            (Scheme::Https, Some((config, name))) => {
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {where_}: {e}"))?;
                handshake(TokioIo::new(stream)).await
            }
            _ => handshake(TokioIo::new(tcp)).await,
        }
    }
}

type Driver = tokio::task::JoinHandle<()>;

async fn handshake<I>(io: I) -> Result<(SendRequest<Full<Bytes>>, Driver), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "client connection ended with an error");
        }
    });
    Ok((sender, driver))
}
