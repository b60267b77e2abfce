//! The http probe's GET: written by hand over a tokio `TcpStream`, because
//! only the status line matters.

use super::Target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response head read; a health endpoint's is far smaller.
const MAX_HEAD: usize = 16 * 1024;
/// Body bytes read at most; the rest is left unread and the connection closed.
const MAX_BODY: u64 = 1024 * 1024;

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

/// GETs `target` once with `Connection: close` and returns the status,
/// after reading the body up to its `Content-Length` (or 1 MiB, or the end).
/// No timeout of its own: the caller bounds it.
pub async fn get_status(target: &Target) -> Result<u16, String> {
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
