//! The web config file — the exporter-toolkit format node_exporter and
//! postgres_exporter read, unchanged — and the settings the server runs
//! with, swapped as a whole when the file (or a file it names) changes.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # relative paths: from this file's directory
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: ca.crt
//!   min_version: TLS12
//! http_server_config:
//!   headers: {Strict-Transport-Security: max-age=31536000}
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt
//! ```
//!
//! An invalid file at start is a configuration error (`file:line:column`);
//! an invalid file later (on reload or a change) is logged and the last
//! good settings stay.

use super::auth::{self, BasicAuth};
use super::tls::{self, ClientAuth, TlsSettings, Version};
use crate::config::{ConfigError, Secret, WebSettings};
use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;
use tokio_rustls::TlsAcceptor;

/// How often the files are checked for a change.
pub const WATCH_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<Spanned<TlsFile>>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, Spanned<Secret>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    #[serde(default)]
    cert_file: Option<Spanned<String>>,
    #[serde(default)]
    key_file: Option<Spanned<String>>,
    /// Inline PEM, instead of cert_file.
    #[serde(default)]
    cert: Option<Spanned<String>>,
    /// Inline PEM, instead of key_file.
    #[serde(default)]
    key: Option<Spanned<Secret>>,
    #[serde(default)]
    client_auth_type: Option<Spanned<String>>,
    #[serde(default)]
    client_ca_file: Option<Spanned<String>>,
    #[serde(default)]
    client_ca: Option<Spanned<String>>,
    #[serde(default)]
    cipher_suites: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    curve_preferences: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    min_version: Option<Spanned<String>>,
    #[serde(default)]
    max_version: Option<Spanned<String>>,
    /// rustls always prefers the server's order; accepted for compatibility.
    #[serde(default)]
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<Spanned<String>>>,
}

impl TlsFile {
    /// exporter-toolkit serves plain HTTP when the section sets nothing.
    fn is_empty(&self) -> bool {
        self.cert_file.is_none()
            && self.key_file.is_none()
            && self.cert.is_none()
            && self.key.is_none()
            && self.client_auth_type.is_none()
            && self.client_ca_file.is_none()
            && self.client_ca.is_none()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// vitals speaks HTTP/1.1 only; accepted for compatibility.
    #[serde(default)]
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, Spanned<String>>>,
}

/// The response headers exporter-toolkit lets a web config set.
const ALLOWED_HEADERS: &[&str] = &[
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

/// A web config file, checked and ready to serve with.
pub struct WebConfig {
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    pub auth: Option<Arc<BasicAuth>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The file itself and every file it names: a change to any of them
    /// means reading it again.
    pub files: Vec<PathBuf>,
    /// Settings accepted but not honoured as written (TLS 1.0, P-521…).
    pub warnings: Vec<String>,
}

impl WebConfig {
    /// No TLS, no auth: what runs without a web config file.
    pub fn plain() -> Self {
        WebConfig {
            tls: None,
            auth: None,
            headers: Vec::new(),
            files: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Reads and checks a web config file.
pub fn load_file(path: &Path) -> Result<WebConfig, ConfigError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: label.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read web config file: {e}"),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut config = parse_str(&text, &label, dir)?;
    config.files.insert(0, path.to_path_buf());
    Ok(config)
}

/// Parses web config text; relative paths in it are taken from `dir`.
pub fn parse_str(text: &str, label: &str, dir: &Path) -> Result<WebConfig, ConfigError> {
    let file: File = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let raw = e.to_string();
        let first = raw.lines().next().unwrap_or(&raw);
        // Drop the parser's own "error: line L column C: " prefix.
        let message = first
            .strip_prefix("error: ")
            .unwrap_or(first)
            .split_once(": ")
            .filter(|(p, _)| p.starts_with("line ") && p.contains(" column "))
            .map_or(first, |(_, rest)| rest);
        ConfigError {
            file: label.to_owned(),
            line,
            column,
            message: redact_quoted(message),
        }
    })?;
    let at = |loc: &serde_saphyr::Location, message: String| ConfigError {
        file: label.to_owned(),
        line: loc.line(),
        column: loc.column(),
        message,
    };
    let mut config = WebConfig::plain();

    if let Some(users) = &file.basic_auth_users {
        let mut hashes = BTreeMap::new();
        for (user, hash) in users {
            // The message names the user, never the hash.
            auth::check_hash(hash.value.expose())
                .map_err(|e| at(&hash.referenced, format!("basic_auth_users.{user}: {e}")))?;
            hashes.insert(user.clone(), hash.value.expose().to_owned());
        }
        if !hashes.is_empty() {
            let auth =
                BasicAuth::new(hashes).map_err(|e| at(&serde_saphyr::Location::UNKNOWN, e))?;
            config.auth = Some(Arc::new(auth));
        }
    }

    if let Some(http) = &file.http_server_config {
        for (name, value) in http.headers.iter().flatten() {
            let Some(canonical) = ALLOWED_HEADERS
                .iter()
                .find(|h| h.eq_ignore_ascii_case(name))
            else {
                return Err(at(
                    &value.referenced,
                    format!(
                        "http_server_config.headers: {name:?} cannot be set; allowed: {}",
                        ALLOWED_HEADERS.join(", ")
                    ),
                ));
            };
            let header = HeaderName::from_bytes(canonical.as_bytes())
                .map_err(|_| at(&value.referenced, format!("bad header name {canonical}")))?;
            let value_ok = HeaderValue::from_str(&value.value).map_err(|_| {
                at(
                    &value.referenced,
                    format!("http_server_config.headers.{canonical}: not a valid header value"),
                )
            })?;
            config.headers.push((header, value_ok));
        }
    }

    if let Some(t) = file
        .tls_server_config
        .as_ref()
        .filter(|t| t.value.is_empty())
    {
        let v = &t.value;
        if v.min_version.is_some()
            || v.max_version.is_some()
            || v.cipher_suites.is_some()
            || v.curve_preferences.is_some()
            || v.client_allowed_sans.is_some()
        {
            // exporter-toolkit does the same; say it, at least.
            config.warnings.push(
                "tls_server_config sets no certificate (cert_file/key_file): serving plain HTTP"
                    .into(),
            );
        }
    }
    if let Some(spanned) = file
        .tls_server_config
        .as_ref()
        .filter(|t| !t.value.is_empty())
    {
        let t = &spanned.value;
        let section = spanned.referenced;
        let read = |key: &str, path: &Spanned<String>, files: &mut Vec<PathBuf>| {
            let full = dir.join(&path.value);
            files.push(full.clone());
            std::fs::read(&full).map_err(|e| {
                at(
                    &path.referenced,
                    format!(
                        "tls_server_config.{key}: cannot read {}: {e}",
                        full.display()
                    ),
                )
            })
        };
        let (cert_pem, cert_loc) = match (&t.cert_file, &t.cert) {
            (Some(_), Some(c)) => {
                return Err(at(
                    &c.referenced,
                    "tls_server_config: set cert_file or cert, not both".into(),
                ))
            }
            (Some(f), None) => (read("cert_file", f, &mut config.files)?, f.referenced),
            (None, Some(c)) => (c.value.clone().into_bytes(), c.referenced),
            (None, None) => {
                return Err(at(
                    &section,
                    "tls_server_config: cert_file (or cert) is required".into(),
                ))
            }
        };
        let (key_pem, key_loc) = match (&t.key_file, &t.key) {
            (Some(_), Some(k)) => {
                return Err(at(
                    &k.referenced,
                    "tls_server_config: set key_file or key, not both".into(),
                ))
            }
            (Some(f), None) => (read("key_file", f, &mut config.files)?, f.referenced),
            (None, Some(k)) => (k.value.expose().as_bytes().to_vec(), k.referenced),
            (None, None) => {
                return Err(at(
                    &section,
                    "tls_server_config: key_file (or key) is required".into(),
                ))
            }
        };
        let cert_chain = tls::parse_certs(&cert_pem)
            .map_err(|e| at(&cert_loc, format!("tls_server_config certificate: {e}")))?;
        let key = tls::parse_key(&key_pem)
            .map_err(|e| at(&key_loc, format!("tls_server_config key: {e}")))?;

        let (ca_pem, ca_loc) = match (&t.client_ca_file, &t.client_ca) {
            (Some(_), Some(c)) => {
                return Err(at(
                    &c.referenced,
                    "tls_server_config: set client_ca_file or client_ca, not both".into(),
                ))
            }
            (Some(f), None) => (
                Some(read("client_ca_file", f, &mut config.files)?),
                Some(f.referenced),
            ),
            (None, Some(c)) => (Some(c.value.clone().into_bytes()), Some(c.referenced)),
            (None, None) => (None, None),
        };
        // exporter-toolkit: a CA alone means RequireAndVerifyClientCert.
        let client_auth = match &t.client_auth_type {
            Some(s) => ClientAuth::parse(&s.value).map_err(|e| at(&s.referenced, e))?,
            None if ca_pem.is_some() => ClientAuth::RequireAndVerifyClientCert,
            None => ClientAuth::NoClientCert,
        };
        let client_cas = match (&ca_pem, ca_loc) {
            (Some(pem), Some(loc)) => tls::parse_certs(pem)
                .map_err(|e| at(&loc, format!("tls_server_config client CA: {e}")))?,
            _ => Vec::new(),
        };
        if tls::needs_ca(client_auth) && client_cas.is_empty() {
            let loc = t
                .client_auth_type
                .as_ref()
                .map(|s| s.referenced)
                .unwrap_or(section);
            return Err(at(
                &loc,
                "tls_server_config: this client_auth_type verifies client certificates and needs client_ca_file".into(),
            ));
        }

        let version = |v: &Option<Spanned<String>>, default| match v {
            Some(s) => Version::parse(&s.value).map_err(|e| at(&s.referenced, e)),
            None => Ok(default),
        };
        let min_version = version(&t.min_version, Version::Tls12)?;
        let max_version = version(&t.max_version, Version::Tls13)?;
        if min_version < Version::Tls12 {
            config.warnings.push(
                "tls_server_config.min_version below TLS12: rustls offers TLS12 and TLS13 only"
                    .into(),
            );
        }
        if max_version < Version::Tls12 {
            let loc = t
                .max_version
                .as_ref()
                .map(|s| s.referenced)
                .unwrap_or(section);
            return Err(at(
                &loc,
                "tls_server_config.max_version: rustls offers TLS12 and TLS13 only".into(),
            ));
        }

        let mut cipher_suites = Vec::new();
        for name in t.cipher_suites.iter().flatten() {
            match tls::cipher_suite(&name.value).map_err(|e| at(&name.referenced, e))? {
                Some(suite) => cipher_suites.push(suite),
                None => config.warnings.push(format!(
                    "tls_server_config.cipher_suites: {} is not offered (rustls implements only the ECDHE AEAD suites)",
                    name.value
                )),
            }
        }
        if t.cipher_suites.as_ref().is_some_and(|c| !c.is_empty())
            && cipher_suites.is_empty()
            && min_version <= Version::Tls12
        {
            config.warnings.push(
                "tls_server_config.cipher_suites: none usable; TLS12 uses rustls' defaults".into(),
            );
        }
        let mut curves = Vec::new();
        for name in t.curve_preferences.iter().flatten() {
            match tls::curve(&name.value).map_err(|e| at(&name.referenced, e))? {
                Some(c) => curves.push(c),
                None => config.warnings.push(format!(
                    "tls_server_config.curve_preferences: {} is not offered by vitals",
                    name.value
                )),
            }
        }
        let client_allowed_sans: Vec<String> = t
            .client_allowed_sans
            .iter()
            .flatten()
            .map(|s| s.value.clone())
            .collect();
        if !client_allowed_sans.is_empty() && client_auth == ClientAuth::NoClientCert {
            let loc = t
                .client_allowed_sans
                .iter()
                .flatten()
                .next()
                .map(|s| s.referenced)
                .unwrap_or(section);
            return Err(at(
                &loc,
                "tls_server_config.client_allowed_sans needs a client_auth_type that asks for a client certificate".into(),
            ));
        }
        let server = tls::build(TlsSettings {
            cert_chain,
            key,
            client_auth,
            client_cas,
            min_version,
            max_version,
            cipher_suites,
            curves,
            client_allowed_sans,
        })
        .map_err(|e| at(&cert_loc, format!("tls_server_config: {e}")))?;
        config.tls = Some(Arc::new(server));
    }
    Ok(config)
}

/// The parser quotes a misplaced scalar in its message (`invalid type:
/// string "…", expected a map`); in this file that scalar may be a password
/// hash or a key, so quoted text is left out. Key names (in backticks) stay.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        match (c, quoted) {
            ('"', false) => {
                quoted = true;
                out.push_str("\"…");
            }
            ('"', true) => {
                quoted = false;
                out.push('"');
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

/// What a connection is served with: TLS, auth, headers and limits, as one
/// snapshot taken when the connection is accepted.
pub struct Active {
    pub tls: Option<TlsAcceptor>,
    pub auth: Option<Arc<BasicAuth>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub limits: WebSettings,
}

/// A loaded web config with the file it came from, before it is applied.
pub struct Prepared {
    config: WebConfig,
    path: Option<PathBuf>,
    limits: WebSettings,
}

/// Loads the web config at `path` (none: plain HTTP, no auth).
pub fn prepare(path: Option<&Path>, limits: &WebSettings) -> Result<Prepared, ConfigError> {
    let config = match path {
        Some(p) => load_file(p)?,
        None => WebConfig::plain(),
    };
    Ok(Prepared {
        config,
        path: path.map(Path::to_path_buf),
        limits: limits.clone(),
    })
}

/// The server's current web settings.
pub struct Web {
    active: RwLock<Arc<Active>>,
    watched: Mutex<Watched>,
}

struct Watched {
    path: Option<PathBuf>,
    limits: WebSettings,
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
}

fn stamp(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Web {
    pub fn new(prepared: Prepared) -> Web {
        let web = Web::new_empty();
        web.install(prepared, true);
        web
    }

    fn new_empty() -> Web {
        Web {
            active: RwLock::new(Arc::new(Active {
                tls: None,
                auth: None,
                headers: Vec::new(),
                limits: WebSettings::default(),
            })),
            watched: Mutex::new(Watched {
                path: None,
                limits: WebSettings::default(),
                stamps: Vec::new(),
            }),
        }
    }

    /// Plain HTTP, no auth, default limits; says nothing in the log.
    pub fn plain() -> Web {
        let web = Web::new_empty();
        web.install(
            Prepared {
                config: WebConfig::plain(),
                path: None,
                limits: WebSettings::default(),
            },
            false,
        );
        web
    }

    pub fn active(&self) -> Arc<Active> {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Switches to `prepared` for every connection accepted from now on.
    pub fn apply(&self, prepared: Prepared) {
        self.install(prepared, true);
    }

    fn install(&self, prepared: Prepared, log: bool) {
        let Prepared {
            config,
            path,
            limits,
        } = prepared;
        for w in &config.warnings {
            tracing::warn!(file = ?path, "web config: {w}");
        }
        if log {
            tracing::info!(
                file = ?path,
                tls = config.tls.is_some(),
                basic_auth = config.auth.is_some(),
                max_connections = limits.max_connections.get(),
                "web settings in effect"
            );
        }
        let stamps = config.files.iter().map(|f| (f.clone(), stamp(f))).collect();
        let active = Active {
            tls: config.tls.map(TlsAcceptor::from),
            auth: config.auth,
            headers: config.headers,
            limits: limits.clone(),
        };
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(active);
        *self.watched.lock().unwrap_or_else(|p| p.into_inner()) = Watched {
            path,
            limits,
            stamps,
        };
    }

    /// Reads the web config again if it or a file it names changed since it
    /// was applied; keeps the current settings when the new file is bad.
    pub fn recheck(&self) {
        let (path, limits) = {
            let mut w = self.watched.lock().unwrap_or_else(|p| p.into_inner());
            let changed = w.stamps.iter().any(|(f, s)| stamp(f) != *s);
            if !changed || w.path.is_none() {
                return;
            }
            // Remember the new stamps now, so a bad file is reported once.
            for (f, s) in w.stamps.iter_mut() {
                *s = stamp(f);
            }
            (w.path.clone(), w.limits.clone())
        };
        match prepare(path.as_deref(), &limits) {
            Ok(p) => {
                tracing::info!("web config file changed; reloaded");
                self.apply(p);
            }
            Err(e) => tracing::error!(
                error = %e,
                "web config file changed but is invalid; the previous web settings stay"
            ),
        }
    }

    /// Checks the files every `WATCH_PERIOD` until the task is dropped.
    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(WATCH_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let web = self.clone();
            // A stat per file; on a change, PEM parsing: off the workers.
            let _ = tokio::task::spawn_blocking(move || web.recheck()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        match parse_str(text, "web.yml", Path::new("/nonexistent")) {
            Ok(_) => panic!("should be refused: {text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn empty_file_and_empty_tls_section_mean_plain_http() {
        for text in ["", "tls_server_config: {}\n", "basic_auth_users: {}\n"] {
            let c = parse_str(text, "web.yml", Path::new(".")).unwrap();
            assert!(c.tls.is_none() && c.auth.is_none(), "{text:?}");
        }
    }

    #[test]
    fn unknown_key_has_a_position() {
        let e = err("tls_server_config:\n  cert_fil: x\n");
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.message.contains("cert_fil"), "{}", e.message);
    }

    #[test]
    fn a_plaintext_password_is_refused_without_echoing_it() {
        let e = err("basic_auth_users:\n  alice: hunter2\n");
        assert_eq!(e.line, 2);
        assert!(
            e.message.contains("alice") && e.message.contains("bcrypt"),
            "{}",
            e.message
        );
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn a_misplaced_scalar_is_not_echoed() {
        let hash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
        let e = err(&format!("basic_auth_users: \"{hash}\"\n"));
        assert_eq!(e.line, 1);
        assert!(!e.to_string().contains("QOauh"), "{e}");
        assert_eq!(
            redact_quoted(r#"invalid type: string "s3cret", expected a map"#),
            "invalid type: string \"…\", expected a map"
        );
        assert_eq!(
            redact_quoted("unknown field `cert_fil`"),
            "unknown field `cert_fil`"
        );
    }

    #[test]
    fn tls_file_errors_point_at_the_key() {
        let e = err("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n");
        assert_eq!(e.line, 2);
        assert!(
            e.message.contains("cert_file: cannot read"),
            "{}",
            e.message
        );
        let e = err("tls_server_config:\n  key_file: k\n");
        assert!(
            e.message.contains("cert_file (or cert) is required"),
            "{}",
            e.message
        );
    }

    #[test]
    fn header_names_are_limited() {
        let e = err("http_server_config:\n  headers:\n    Set-Cookie: a=b\n");
        assert_eq!(e.line, 3);
        let c = parse_str(
            "http_server_config:\n  http2: false\n  headers:\n    x-frame-options: deny\n",
            "web.yml",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.headers.len(), 1);
        assert_eq!(c.headers[0].0.as_str(), "x-frame-options");
        assert_eq!(c.headers[0].1, "deny");
    }

    #[test]
    fn go_names_are_checked() {
        assert!(ClientAuth::parse("RequireAndVerifyClientCert").is_ok());
        assert!(ClientAuth::parse("RequireAndVerify").is_err());
        assert_eq!(Version::parse("TLS13"), Ok(Version::Tls13));
        assert!(Version::parse("TLS1.3").is_err());
        assert!(tls::cipher_suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
            .unwrap()
            .is_some());
        assert!(tls::cipher_suite("TLS_RSA_WITH_AES_128_CBC_SHA")
            .unwrap()
            .is_none());
        assert!(tls::cipher_suite("NOT_A_SUITE").is_err());
        assert!(tls::curve("CurveP521").unwrap().is_none());
        assert!(tls::curve("P-256").is_err());
    }
}
