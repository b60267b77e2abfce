//! A minimal RESP2 client: just what the Redis source sends (`AUTH`,
//! `SELECT`, `INFO`, `TYPE`, `LLEN`/`ZCARD`/`SCARD`/`XLEN`).
//!
//! Why our own and not the `redis` crate: the source needs a handful of
//! commands on one connection it owns (reconnect, backoff and deadlines are
//! already ours, shared with the PostgreSQL sources), and RESP2 replies are
//! five line-based types. The crate would bring its own connection manager,
//! URL parsing and a dozen transitive dependencies for that; a pure parser
//! of ~100 lines can be table-tested and fuzzed like the kernel-file parsers.
//!
//! [`parse`] is pure and bounded (bulk size, array length, nesting), so a
//! server sending garbage gives an error, never a panic or unbounded memory.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Largest bulk string accepted: an `INFO` reply is a few kilobytes; 8 MiB
/// leaves room for every section of a big server and refuses a runaway.
pub const MAX_BULK: usize = 8 << 20;
/// Largest array accepted (we send no command that returns a long one).
pub const MAX_ARRAY: usize = 65_536;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 8;

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`: the server refused the command.
    Error(String),
    /// `:42`
    Int(i64),
    /// `$n` ... or `$-1` (None).
    Bulk(Option<Vec<u8>>),
    /// `*n` ... or `*-1` (None).
    Array(Option<Vec<Value>>),
}

/// The bytes are not RESP2, or break a limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("protocol error: {0}")]
pub struct ProtocolError(pub String);

/// Parses one reply at the start of `buf`: `Ok(None)` when more bytes are
/// needed, `Ok(Some((value, used)))` when complete.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, ProtocolError> {
    parse_at(buf, 0)
}

fn parse_at(buf: &[u8], depth: usize) -> Result<Option<(Value, usize)>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError(format!("nesting deeper than {MAX_DEPTH}")));
    }
    let Some(line_end) = find_crlf(buf) else {
        // A header line longer than any valid one is garbage, not "more".
        if buf.len() > 64 * 1024 {
            return Err(ProtocolError("line too long".into()));
        }
        return Ok(None);
    };
    let Some((&kind, rest)) = buf[..line_end].split_first() else {
        return Err(ProtocolError("empty line".into()));
    };
    let line =
        std::str::from_utf8(rest).map_err(|_| ProtocolError("header line is not UTF-8".into()))?;
    let after = line_end + 2;
    match kind {
        b'+' => Ok(Some((Value::Simple(line.to_owned()), after))),
        b'-' => Ok(Some((Value::Error(line.to_owned()), after))),
        b':' => Ok(Some((Value::Int(integer(line)?), after))),
        b'$' => {
            let n = integer(line)?;
            if n == -1 {
                return Ok(Some((Value::Bulk(None), after)));
            }
            let n = length(n, MAX_BULK, "bulk string")?;
            let end = after + n;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError("bulk string not followed by CRLF".into()));
            }
            Ok(Some((Value::Bulk(Some(buf[after..end].to_vec())), end + 2)))
        }
        b'*' => {
            let n = integer(line)?;
            if n == -1 {
                return Ok(Some((Value::Array(None), after)));
            }
            let n = length(n, MAX_ARRAY, "array")?;
            let mut items = Vec::with_capacity(n.min(64));
            let mut at = after;
            for _ in 0..n {
                match parse_at(&buf[at..], depth + 1)? {
                    Some((v, used)) => {
                        items.push(v);
                        at += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Value::Array(Some(items)), at)))
        }
        other => Err(ProtocolError(format!(
            "unknown reply type byte 0x{other:02x}"
        ))),
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn integer(text: &str) -> Result<i64, ProtocolError> {
    text.parse()
        .map_err(|_| ProtocolError(format!("{text:?} is not an integer")))
}

fn length(n: i64, max: usize, what: &str) -> Result<usize, ProtocolError> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| ProtocolError(format!("{what} length {n} outside 0..={max}")))
}

/// Encodes one command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// A byte stream to the server: TCP or a unix socket.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Why a command got no reply. Never contains an argument (a password).
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("no answer within the timeout")]
    Timeout,
    #[error("connection closed by the server")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// One open connection. Any error leaves it in an unknown state (a reply
/// may still be in flight): the caller drops it.
pub struct Conn {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
    /// Commands written since the connection opened, for tests and the
    /// per-round count.
    pub sent: u64,
}

impl Conn {
    pub fn new(stream: Box<dyn Io>) -> Self {
        Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            sent: 0,
        }
    }

    /// Sends every command in one write and reads as many replies, all
    /// before `deadline`.
    pub async fn pipeline(
        &mut self,
        commands: &[Vec<&[u8]>],
        deadline: Instant,
    ) -> Result<Vec<Value>, ConnError> {
        let mut out = Vec::new();
        for c in commands {
            encode(c, &mut out);
        }
        match tokio::time::timeout_at(deadline, self.exchange(&out, commands.len())).await {
            Ok(result) => result,
            Err(_) => Err(ConnError::Timeout),
        }
    }

    /// One command, one reply.
    pub async fn command(&mut self, args: &[&[u8]], deadline: Instant) -> Result<Value, ConnError> {
        let mut replies = self.pipeline(&[args.to_vec()], deadline).await?;
        replies.pop().ok_or(ConnError::Closed)
    }

    async fn exchange(&mut self, request: &[u8], count: usize) -> Result<Vec<Value>, ConnError> {
        self.stream.write_all(request).await?;
        self.stream.flush().await?;
        self.sent += count as u64;
        let mut replies = Vec::with_capacity(count);
        while replies.len() < count {
            match parse(&self.buf)? {
                Some((value, used)) => {
                    self.buf.drain(..used);
                    replies.push(value);
                }
                None => {
                    let mut chunk = [0u8; 16 * 1024];
                    let n = self.stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Err(ConnError::Closed);
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        Ok(replies)
    }
}

/// Opens a stream to `address` before `deadline`.
pub async fn connect(
    address: &crate::config::RedisAddress,
    tls: Option<(std::sync::Arc<tokio_rustls::rustls::ClientConfig>, &str)>,
    deadline: Instant,
) -> Result<Box<dyn Io>, ConnError> {
    use crate::config::RedisAddress;
    let open = async {
        let plain: Box<dyn Io> = match address {
            RedisAddress::Tcp(host_port) => {
                let s = tokio::net::TcpStream::connect(host_port.as_str()).await?;
                s.set_nodelay(true)?;
                match tls {
                    None => Box::new(s),
                    Some((config, name)) => return handshake(config, name, s).await,
                }
            }
            RedisAddress::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
        };
        Ok(plain)
    };
    match tokio::time::timeout_at(deadline, open).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ConnError::Timeout),
    }
}

async fn handshake(
    config: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    name: &str,
    tcp: tokio::net::TcpStream,
) -> Result<Box<dyn Io>, ConnError> {
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|_| ConnError::Tls(format!("{name:?} is not a valid server name")))?;
    match tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
    {
        Ok(s) => Ok(Box::new(s)),
        Err(e) => Err(ConnError::Tls(
            crate::tls::find_error(&e).unwrap_or_else(|| e.to_string()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Value {
        let (v, used) = parse(bytes).unwrap().expect("complete");
        assert_eq!(used, bytes.len(), "consumed everything");
        v
    }

    #[test]
    fn every_reply_type_parses() {
        // Replies as redis-server 7.0.15 sends them.
        assert_eq!(one(b"+OK\r\n"), Value::Simple("OK".into()));
        assert_eq!(
            one(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
            Value::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
        );
        assert_eq!(one(b":150\r\n"), Value::Int(150));
        assert_eq!(one(b":-2\r\n"), Value::Int(-2));
        assert_eq!(one(b"$4\r\nlist\r\n"), Value::Bulk(Some(b"list".to_vec())));
        assert_eq!(one(b"$0\r\n\r\n"), Value::Bulk(Some(vec![])));
        assert_eq!(one(b"$-1\r\n"), Value::Bulk(None));
        assert_eq!(one(b"*-1\r\n"), Value::Array(None));
        assert_eq!(
            one(b"*2\r\n$1\r\na\r\n:1\r\n"),
            Value::Array(Some(vec![Value::Bulk(Some(b"a".to_vec())), Value::Int(1)]))
        );
        // A bulk string may contain CRLF itself.
        assert_eq!(
            one(b"$8\r\na\r\nb:1\r\n\r\n"),
            Value::Bulk(Some(b"a\r\nb:1\r\n".to_vec()))
        );
    }

    #[test]
    fn incomplete_input_asks_for_more() {
        for partial in [
            &b""[..],
            b"+OK",
            b"+OK\r",
            b"$4\r\nli",
            b"$4\r\nlist",
            b"$4\r\nlist\r",
            b"*2\r\n:1\r\n",
            b"*2\r\n:1\r\n$3\r\nab",
        ] {
            assert_eq!(parse(partial).unwrap(), None, "{partial:?}");
        }
    }

    #[test]
    fn two_replies_in_one_buffer_parse_one_at_a_time() {
        let buf = b":3\r\n+list\r\n";
        let (v, used) = parse(buf).unwrap().unwrap();
        assert_eq!((v, used), (Value::Int(3), 4));
        assert_eq!(
            parse(&buf[used..]).unwrap().unwrap().0,
            Value::Simple("list".into())
        );
    }

    #[test]
    fn garbage_and_limits_are_errors() {
        for bad in [
            &b"?\r\n"[..],
            b"\r\n",
            b":12x\r\n",
            b"$-2\r\n",
            b"$3\r\nabcd\r\n",
            b"*-5\r\n",
            b"$99999999999\r\n",
            b"*999999999\r\n",
            b"HTTP/1.1 400 Bad Request\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2) + ":1\r\n";
        assert!(parse(deep.as_bytes()).is_err());
        assert!(parse(&[b'+'; 70 * 1024]).is_err());
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&[b"LLEN", b"bull:q:wait"], &mut out);
        assert_eq!(out, b"*2\r\n$4\r\nLLEN\r\n$11\r\nbull:q:wait\r\n");
    }
}
