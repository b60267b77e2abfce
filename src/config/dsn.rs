//! A PostgreSQL or PgBouncer connection string, parsed when the config is
//! read. Neither its Debug output nor any error message repeats it: it may
//! hold a password.

use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;

/// A parsed libpq key=value string or `postgresql://` URL.
#[derive(Clone)]
pub struct Dsn(tokio_postgres::Config);

impl Dsn {
    /// Parses `text`; the error never contains it (see [`parse_dsn`]).
    pub fn parse(text: &str) -> Result<Dsn, String> {
        parse_dsn(text).map(Dsn)
    }

    /// The connection settings, password included.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.0
    }

    /// The same settings for another database on the same server.
    pub fn with_dbname(&self, dbname: &str) -> Dsn {
        let mut config = self.0.clone();
        config.dbname(dbname);
        Dsn(config)
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
        let other = Dsn(c.clone()).with_dbname("reports");
        assert_eq!(other.config().get_dbname(), Some("reports"));
        assert_eq!(other.config().get_user(), Some("monitor"));
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
    }
}
