//! One GET of an application's metrics endpoint over plain HTTP/1.1 (hyper's
//! client connection, so chunked and Content-Length bodies both work),
//! negotiated like Prometheus does and bounded while reading.

use super::parse::Dialect;
use crate::config::ProbeTarget as Target;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header;
use hyper_util::rt::TokioIo;
use std::io::Read as _;
use tokio::net::TcpStream;

/// What Prometheus 2.x sends: OpenMetrics first, then text 0.0.4.
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A body read whole and decompressed.
#[derive(Debug)]
pub struct Body {
    pub text: String,
    pub dialect: Dialect,
    /// Bytes on the wire (compressed when gzip).
    pub wire_bytes: u64,
}

/// Why a scrape failed. Never repeats the URL (it has no credentials, but
/// errors stay short).
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("connecting to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("HTTP exchange: {0}")]
    Http(#[from] hyper::Error),
    #[error("the endpoint answered with HTTP status {0}")]
    Status(u16),
    #[error("body larger than max_bytes = {limit} bytes; the whole scrape is refused")]
    TooLarge { limit: u64 },
    #[error("gzip body does not decompress: {0}")]
    Gzip(std::io::Error),
    #[error("body is not UTF-8 text (at byte {0})")]
    NotUtf8(usize),
    #[error("building the request: {0}")]
    Request(String),
}

/// Aborts the connection task when the scrape ends or is cancelled.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// GETs `target` once; the body (after decompression) may be at most
/// `max_bytes`. The caller applies the timeout.
pub async fn scrape(target: &Target, max_bytes: u64, timeout: f64) -> Result<Body, ScrapeError> {
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| ScrapeError::Connect(target.host_header.clone(), e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let request = hyper::Request::get(target.path.as_str())
        .header(header::HOST, target.host_header.as_str())
        .header(header::ACCEPT, ACCEPT)
        .header(header::ACCEPT_ENCODING, "gzip")
        .header(
            header::USER_AGENT,
            concat!("vitals/", env!("CARGO_PKG_VERSION")),
        )
        .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{timeout}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| ScrapeError::Request(e.to_string()))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(ScrapeError::Status(status));
    }
    let headers = response.headers();
    let dialect = match headers.get(header::CONTENT_TYPE) {
        Some(v)
            if v.to_str()
                .is_ok_and(|t| t.trim_start().starts_with("application/openmetrics-text")) =>
        {
            Dialect::OpenMetrics
        }
        _ => Dialect::Text,
    };
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_bytes) {
        return Err(ScrapeError::TooLarge { limit: max_bytes });
    }
    let mut body = response.into_body();
    let mut raw: Vec<u8> = Vec::with_capacity(declared.unwrap_or(16 * 1024) as usize);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if (raw.len() + data.len()) as u64 > max_bytes {
                return Err(ScrapeError::TooLarge { limit: max_bytes });
            }
            raw.extend_from_slice(&data);
        }
    }
    let wire_bytes = raw.len() as u64;
    let bytes = if gzip { gunzip(&raw, max_bytes)? } else { raw };
    let text =
        String::from_utf8(bytes).map_err(|e| ScrapeError::NotUtf8(e.utf8_error().valid_up_to()))?;
    Ok(Body {
        text,
        dialect,
        wire_bytes,
    })
}

/// Decompresses at most `max_bytes`; a body that inflates past it (a gzip
/// bomb) is refused after reading one byte more.
pub fn gunzip(data: &[u8], max_bytes: u64) -> Result<Vec<u8>, ScrapeError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(max_bytes as usize));
    flate2::read::MultiGzDecoder::new(data)
        .take(max_bytes + 1)
        .read_to_end(&mut out)
        .map_err(ScrapeError::Gzip)?;
    if out.len() as u64 > max_bytes {
        return Err(ScrapeError::TooLarge { limit: max_bytes });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_is_bounded_by_the_decompressed_size() {
        let body = vec![b'a'; 1_000_000];
        let packed = gz(&body);
        assert!(packed.len() < 10_000);
        assert_eq!(gunzip(&packed, 1_000_000).unwrap().len(), 1_000_000);
        let e = gunzip(&packed, 999_999).unwrap_err();
        assert_eq!(
            e.to_string(),
            "body larger than max_bytes = 999999 bytes; the whole scrape is refused"
        );
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(ScrapeError::Gzip(_))
        ));
    }
}
