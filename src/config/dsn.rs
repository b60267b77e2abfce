//! A PostgreSQL or PgBouncer connection string, parsed when the config is
//! read. Neither its Debug output nor any error message repeats it: it may
//! hold a password.
//!
//! libpq's TLS keys (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`,
//! `sslsni`) are taken out here into a typed [`PgTls`] with libpq's
//! meaning: tokio-postgres 0.7 knows only `sslmode` disable/prefer/require
//! and verifies nothing, so vitals does the TLS part itself
//! (`collectors/postgres/conn.rs`). `sslnegotiation` stays with
//! tokio-postgres, which implements PostgreSQL 17's direct TLS.

use crate::tls::{ClientTls, Roots, Verify};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    /// Plain text first; TLS if the server refuses it.
    Allow,
    /// TLS if the server offers it, else plain text (libpq's default).
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "invalid dsn: sslmode {other:?}: use disable, allow, prefer, require, verify-ca or verify-full"
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS settings of a DSN, with libpq's defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgTls {
    pub mode: SslMode,
    /// `sslrootcert`: a CA file, or `system` for the OS store.
    pub root_cert: Option<Roots>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `sslsni` (default 1).
    pub sni: bool,
}

impl Default for PgTls {
    fn default() -> Self {
        PgTls {
            mode: SslMode::Prefer,
            root_cert: None,
            cert: None,
            key: None,
            sni: true,
        }
    }
}

impl PgTls {
    /// What is checked of the server's certificate. libpq: `require` (and
    /// `prefer`/`allow` when TLS is used) with a root certificate file
    /// verifies the chain like `verify-ca`.
    pub fn verify(&self) -> Verify {
        match self.mode {
            SslMode::VerifyFull => Verify::Full,
            SslMode::VerifyCa => Verify::Chain,
            _ if self.root_cert.is_some() => Verify::Chain,
            _ => Verify::Nothing,
        }
    }

    /// The client configuration to build at each connect.
    pub fn client_tls(&self, direct: bool) -> ClientTls {
        ClientTls {
            verify: self.verify(),
            roots: self.root_cert.clone(),
            cert_file: self.cert.clone(),
            key_file: self.key.clone(),
            sni: self.sni,
            // PostgreSQL 17 refuses a direct TLS connection without this
            // ALPN protocol.
            alpn: if direct {
                vec![b"postgresql".to_vec()]
            } else {
                vec![]
            },
        }
    }

    /// Every file the settings name, with its DSN key.
    pub fn files(&self) -> Vec<(&'static str, &std::path::Path)> {
        let mut files = Vec::new();
        if let Some(Roots::File(p)) = &self.root_cert {
            files.push(("sslrootcert", p.as_path()));
        }
        if let Some(p) = &self.cert {
            files.push(("sslcert", p.as_path()));
        }
        if let Some(p) = &self.key {
            files.push(("sslkey", p.as_path()));
        }
        files
    }
}

/// A parsed libpq key=value string or `postgresql://` URL.
#[derive(Clone)]
pub struct Dsn {
    config: tokio_postgres::Config,
    tls: PgTls,
}

impl Dsn {
    /// Parses `text`; the error never contains it (see [`parse_dsn`]).
    pub fn parse(text: &str) -> Result<Dsn, String> {
        let (rest, tls) = take_tls(text)?;
        let config = parse_dsn(&rest)?;
        // libpq 17: direct TLS has no plain-text fallback to offer.
        if config.get_ssl_negotiation() == tokio_postgres::config::SslNegotiation::Direct
            && tls.mode < SslMode::Require
        {
            return Err(format!(
                "invalid dsn: sslnegotiation=direct needs sslmode=require, verify-ca or verify-full, not {}",
                tls.mode.name()
            ));
        }
        Ok(Dsn { config, tls })
    }

    /// The connection settings, password included; `ssl_mode` is left to
    /// the connector.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The TLS settings, libpq's defaults applied.
    pub fn tls(&self) -> &PgTls {
        &self.tls
    }

    /// The same settings for another database on the same server.
    pub fn with_dbname(&self, dbname: &str) -> Dsn {
        let mut config = self.config.clone();
        config.dbname(dbname);
        Dsn {
            config,
            tls: self.tls.clone(),
        }
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dsn(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Dsn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Dsn::parse(&text).map_err(de::Error::custom)
    }
}

/// Parses a libpq key=value string or a `postgresql://` URL. The error
/// message never contains the DSN: tokio-postgres names the offending key,
/// and at most one character of the text, which we drop as well.
pub fn parse_dsn(dsn: &str) -> Result<tokio_postgres::Config, String> {
    tokio_postgres::Config::from_str(dsn).map_err(|e| {
        let text = e.to_string();
        // "unexpected character at byte 12: expected `=` but got `x`"
        let text = match text.find(" but got ") {
            Some(at) => text.get(..at).unwrap_or("invalid dsn").to_owned(),
            None => text,
        };
        format!("invalid dsn: {text}")
    })
}

/// The DSN's keys that vitals handles itself.
const TLS_KEYS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey", "sslsni"];

/// Splits the TLS keys off `dsn`: the rest (for tokio-postgres) and the
/// typed settings. Errors never repeat a value other than the TLS key's.
fn take_tls(dsn: &str) -> Result<(String, PgTls), String> {
    let (rest, pairs) = if dsn.starts_with("postgresql://") || dsn.starts_with("postgres://") {
        take_from_url(dsn)?
    } else {
        take_from_key_values(dsn)?
    };
    let mut mode = None;
    let mut tls = PgTls::default();
    for (key, value) in pairs {
        match key.as_str() {
            "sslmode" => mode = Some(SslMode::parse(&value)?),
            "sslrootcert" if value == "system" => tls.root_cert = Some(Roots::System),
            "sslrootcert" => tls.root_cert = Some(Roots::File(PathBuf::from(value))),
            "sslcert" => tls.cert = Some(PathBuf::from(value)),
            "sslkey" => tls.key = Some(PathBuf::from(value)),
            "sslsni" => {
                tls.sni = match value.as_str() {
                    "1" => true,
                    "0" => false,
                    _ => return Err("invalid dsn: sslsni must be 0 or 1".into()),
                }
            }
            _ => {}
        }
    }
    // libpq 16: sslrootcert=system makes verify-full the default, and
    // refuses anything weaker (any public CA would do for verify-ca).
    tls.mode = match (mode, &tls.root_cert) {
        (None, Some(Roots::System)) => SslMode::VerifyFull,
        (Some(m), Some(Roots::System)) if m != SslMode::VerifyFull => {
            return Err(format!(
                "invalid dsn: sslrootcert=system needs sslmode=verify-full, not {}",
                m.name()
            ))
        }
        (m, _) => m.unwrap_or(SslMode::Prefer),
    };
    if tls.cert.is_some() != tls.key.is_some() {
        return Err("invalid dsn: sslcert and sslkey go together".into());
    }
    Ok((rest, tls))
}

/// libpq key=value syntax: `key = value` pairs separated by spaces, a value
/// in single quotes may hold spaces, `\'` and `\\` are escapes.
fn take_from_key_values(dsn: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut chars = dsn.chars().peekable();
    let mut rest = String::new();
    let mut taken = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            // tokio-postgres gives the precise error (never the text).
            return Ok((dsn.to_owned(), Vec::new()));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\'' => {
                        closed = true;
                        break;
                    }
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
            if !closed {
                return Ok((dsn.to_owned(), Vec::new()));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        if TLS_KEYS.contains(&key.as_str()) {
            taken.push((key, value));
        } else {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            rest.push_str(&format!("{key}='{quoted}' "));
        }
    }
    Ok((rest, taken))
}

/// URL syntax: TLS keys are query parameters (percent-encoded).
fn take_from_url(dsn: &str) -> Result<(String, Vec<(String, String)>), String> {
    let Some((base, query)) = dsn.split_once('?') else {
        return Ok((dsn.to_owned(), Vec::new()));
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let key_decoded = percent_decode(key)?;
        if TLS_KEYS.contains(&key_decoded.as_str()) {
            taken.push((key_decoded, percent_decode(value)?));
        } else {
            kept.push(param);
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, taken))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("invalid dsn: bad percent-encoding in the URL")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "invalid dsn: percent-encoding is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_errors_never_echo_the_password() {
        for dsn in [
            "host=127.0.0.1 password=hunter2hunter2 port=notaport",
            "host=127.0.0.1 password='hunter2hunter2",
            "host=127.0.0.1 password hunter2hunter2",
            "postgresql://u:hunter2hunter2@127.0.0.1:notaport/db",
            "host=127.0.0.1 password=hunter2hunter2 bogus=1",
        ] {
            let e = parse_dsn(dsn).unwrap_err();
            assert!(e.starts_with("invalid dsn"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
            assert!(!e.contains("127.0.0.1"), "{e}");
        }
        let dsn = Dsn::parse("host=127.0.0.1 password=hunter2hunter2").unwrap();
        assert_eq!(format!("{dsn:?}"), "Dsn(<redacted>)");
    }

    #[test]
    fn dsn_forms_parse() {
        let c = parse_dsn("host=127.0.0.1 port=5433 user=monitor dbname=app").unwrap();
        assert_eq!(c.get_ports(), &[5433]);
        assert_eq!(c.get_user(), Some("monitor"));
        let c = parse_dsn("postgresql://monitor:pw@127.0.0.1:5433/app").unwrap();
        assert_eq!(c.get_dbname(), Some("app"));
        let other = Dsn::parse("postgresql://monitor:pw@127.0.0.1:5433/app")
            .unwrap()
            .with_dbname("reports");
        assert_eq!(other.config().get_dbname(), Some("reports"));
        assert_eq!(other.config().get_user(), Some("monitor"));
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
    }

    #[test]
    fn tls_keys_get_libpq_meaning_and_defaults() {
        let tls = |dsn: &str| Dsn::parse(dsn).map(|d| d.tls().clone());
        let d = tls("host=h user=u").unwrap();
        assert_eq!(
            (d.mode, d.verify(), d.sni),
            (SslMode::Prefer, Verify::Nothing, true)
        );
        let d = tls("host=h sslmode=require").unwrap();
        assert_eq!(d.verify(), Verify::Nothing);
        // require with a root certificate verifies like verify-ca.
        let d = tls("host=h sslmode=require sslrootcert=/ca.crt").unwrap();
        assert_eq!(d.verify(), Verify::Chain);
        assert_eq!(d.root_cert, Some(Roots::File("/ca.crt".into())));
        let d = tls("host=h sslmode=verify-full sslrootcert = '/my dir/ca.crt'").unwrap();
        assert_eq!((d.mode, d.verify()), (SslMode::VerifyFull, Verify::Full));
        assert_eq!(d.root_cert, Some(Roots::File("/my dir/ca.crt".into())));
        // sslrootcert=system: verify-full by default, nothing weaker.
        let d = tls("host=h sslrootcert=system").unwrap();
        assert_eq!(
            (d.mode, d.root_cert),
            (SslMode::VerifyFull, Some(Roots::System))
        );
        let e = tls("host=h sslrootcert=system sslmode=verify-ca").unwrap_err();
        assert!(e.contains("needs sslmode=verify-full"), "{e}");
        let d = tls("postgresql://u:pw@h:5433/db?sslmode=verify-ca&sslcert=%2Fc.crt&sslkey=/c.key&application_name=x&sslsni=0").unwrap();
        assert_eq!((d.mode, d.sni), (SslMode::VerifyCa, false));
        assert_eq!(d.cert, Some("/c.crt".into()));
        assert_eq!(d.key, Some("/c.key".into()));
        for bad in [
            "host=h sslmode=verify",
            "host=h sslcert=/c.crt",
            "host=h sslsni=yes",
            "host=h sslmode=prefer sslnegotiation=direct",
        ] {
            assert!(tls(bad).is_err(), "{bad}");
        }
        assert!(tls("host=h sslmode=require sslnegotiation=direct").is_ok());
    }

    #[test]
    fn the_rest_of_the_dsn_survives_taking_tls_keys_out() {
        let d = Dsn::parse(
            "host=127.0.0.1 sslmode=verify-full password='it\\'s a p\\\\w' port=5433 sslrootcert=/ca dbname=app",
        )
        .unwrap();
        let c = d.config();
        assert_eq!(c.get_password(), Some(&br"it's a p\w"[..]));
        assert_eq!((c.get_ports(), c.get_dbname()), (&[5433][..], Some("app")));
        let e = Dsn::parse("host=127.0.0.1 password='hunter2hunter2 sslmode=require").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
