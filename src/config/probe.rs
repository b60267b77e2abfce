//! An HTTP probe's target, parsed from its `http://` URL when the config is
//! read.

use super::url::{parse_url, shown, Scheme};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;

/// Where a probe goes, from its `http://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    /// Host name or address to connect to (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
    /// The `Host` header: the URL's authority.
    pub host_header: String,
}

/// Parses a probe URL. Refuses https, credentials in the URL and anything
/// that is not an absolute http URL; the message never repeats a URL that
/// may hold a password.
pub fn parse_target(url: &str) -> Result<ProbeTarget, String> {
    parse_http_url(url, "probe")
}

/// [`parse_target`] for any loopback `http://` URL vitals GETs; `what` names
/// it in messages (`probe`, `app_metrics`).
pub fn parse_http_url(url: &str, what: &str) -> Result<ProbeTarget, String> {
    let rest = url.find("://").map_or("", |i| &url[i + 3..]);
    if rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .contains('@')
    {
        return Err(format!(
            "{what} URL must not contain a user or password; vitals sends no credentials"
        ));
    }
    let (scheme, target) = parse_url(url, &format!("{what} URL"))?;
    if scheme == Scheme::Https {
        return Err(format!(
            "{what} URL {:?}: https is not supported; use the application's own endpoint on loopback with http://",
            shown(url)
        ));
    }
    Ok(target)
}

impl ProbeTarget {
    /// Parses a probe URL (see [`parse_target`]).
    pub fn parse(url: &str) -> Result<ProbeTarget, String> {
        parse_target(url)
    }
}

/// The URL again, as `http://authority/path`.
impl fmt::Display for ProbeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host_header, self.path)
    }
}

/// An `app_metrics` endpoint: a [`ProbeTarget`] whose messages name
/// `app_metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppTarget(pub ProbeTarget);

impl<'de> Deserialize<'de> for AppTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_http_url(&text, "app_metrics")
            .map(AppTarget)
            .map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ProbeTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_target(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_target_table() {
        let ok = |host: &str, port: u16, path: &str, hh: &str| ProbeTarget {
            host: host.into(),
            port,
            path: path.into(),
            host_header: hh.into(),
        };
        for (url, want) in [
            (
                "http://127.0.0.1:8080/health",
                ok("127.0.0.1", 8080, "/health", "127.0.0.1:8080"),
            ),
            (
                "http://localhost/ready?full=1",
                ok("localhost", 80, "/ready?full=1", "localhost"),
            ),
            ("http://[::1]:9000", ok("::1", 9000, "/", "[::1]:9000")),
            (
                "HTTP://127.0.0.1:1/",
                ok("127.0.0.1", 1, "/", "127.0.0.1:1"),
            ),
        ] {
            assert_eq!(parse_target(url), Ok(want), "{url}");
        }
        for (url, message) in [
            ("https://127.0.0.1/health", "https is not supported"),
            ("127.0.0.1:8080/health", "must start with http://"),
            ("ftp://127.0.0.1/", "must start with http://"),
            ("http:///health", "invalid probe URL"),
            ("http://127.0.0.1:99999/", "bad port \"99999\""),
            ("http://127.0.0.1:0/", "bad port \"0\""),
        ] {
            let e = parse_target(url).expect_err(url);
            assert!(e.contains(message), "{url}: {e}");
        }
        let e = parse_target("http://admin:s3cret@127.0.0.1/").unwrap_err();
        assert!(e.contains("must not contain a user or password"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
