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
use tokio_rustls::rustls::pki_types::CertificateDer;
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
    let file = deserialize(text, label)?;
    let at = At { label };
    let mut config = WebConfig::plain();
    if let Some(users) = &file.basic_auth_users {
        config.auth = basic_auth_users(users, &at)?;
    }
    if let Some(http) = &file.http_server_config {
        config.headers = http_headers(http, &at)?;
    }
    if let Some(t) = &file.tls_server_config {
        if t.value.is_empty() {
            config.warnings.extend(tls_unused_warning(&t.value));
        } else {
            let server = tls_server_config(t, dir, &at, &mut config)?;
            config.tls = Some(Arc::new(server));
        }
    }
    Ok(config)
}

/// Makes `file:line:column` errors for one file.
struct At<'a> {
    label: &'a str,
}

impl At<'_> {
    fn err(&self, loc: &serde_saphyr::Location, message: String) -> ConfigError {
        ConfigError {
            file: self.label.to_owned(),
            line: loc.line(),
            column: loc.column(),
            message,
        }
    }
}

/// The YAML, with the parser's error reworded and scalars redacted.
fn deserialize(text: &str, label: &str) -> Result<File, ConfigError> {
    serde_saphyr::from_str(text).map_err(|e| {
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
    })
}

/// `basic_auth_users`: every hash checked; `None` when there are none.
fn basic_auth_users(
    users: &BTreeMap<String, Spanned<Secret>>,
    at: &At<'_>,
) -> Result<Option<Arc<BasicAuth>>, ConfigError> {
    let mut hashes = BTreeMap::new();
    for (user, hash) in users {
        // The message names the user, never the hash.
        auth::check_hash(hash.value.expose())
            .map_err(|e| at.err(&hash.referenced, format!("basic_auth_users.{user}: {e}")))?;
        hashes.insert(user.clone(), hash.value.expose().to_owned());
    }
    if hashes.is_empty() {
        return Ok(None);
    }
    let auth = BasicAuth::new(hashes).map_err(|e| at.err(&serde_saphyr::Location::UNKNOWN, e))?;
    Ok(Some(Arc::new(auth)))
}

/// `http_server_config.headers`: only the names exporter-toolkit allows.
fn http_headers(
    http: &HttpFile,
    at: &At<'_>,
) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
    let mut headers = Vec::new();
    for (name, value) in http.headers.iter().flatten() {
        let Some(canonical) = ALLOWED_HEADERS
            .iter()
            .find(|h| h.eq_ignore_ascii_case(name))
        else {
            return Err(at.err(
                &value.referenced,
                format!(
                    "http_server_config.headers: {name:?} cannot be set; allowed: {}",
                    ALLOWED_HEADERS.join(", ")
                ),
            ));
        };
        let header = HeaderName::from_bytes(canonical.as_bytes())
            .map_err(|_| at.err(&value.referenced, format!("bad header name {canonical}")))?;
        let value_ok = HeaderValue::from_str(&value.value).map_err(|_| {
            at.err(
                &value.referenced,
                format!("http_server_config.headers.{canonical}: not a valid header value"),
            )
        })?;
        headers.push((header, value_ok));
    }
    Ok(headers)
}

/// A `tls_server_config` without a certificate serves plain HTTP
/// (exporter-toolkit does the same); say so when it sets anything else.
fn tls_unused_warning(t: &TlsFile) -> Option<String> {
    (t.min_version.is_some()
        || t.max_version.is_some()
        || t.cipher_suites.is_some()
        || t.curve_preferences.is_some()
        || t.client_allowed_sans.is_some())
    .then(|| {
        "tls_server_config sets no certificate (cert_file/key_file): serving plain HTTP".into()
    })
}

/// PEM from a `*_file` key (read relative to `dir`, and watched) or from
/// the inline key beside it; at most one of the two. `None` when neither.
fn pem_source(
    key: &str,
    file: &Option<Spanned<String>>,
    inline: Option<(Vec<u8>, serde_saphyr::Location)>,
    dir: &Path,
    at: &At<'_>,
    files: &mut Vec<PathBuf>,
) -> Result<Option<(Vec<u8>, serde_saphyr::Location)>, ConfigError> {
    let inline_key = key.trim_end_matches("_file");
    match (file, inline) {
        (Some(_), Some((_, loc))) => Err(at.err(
            &loc,
            format!("tls_server_config: set {key} or {inline_key}, not both"),
        )),
        (Some(f), None) => {
            let full = dir.join(&f.value);
            files.push(full.clone());
            let pem = std::fs::read(&full).map_err(|e| {
                at.err(
                    &f.referenced,
                    format!(
                        "tls_server_config.{key}: cannot read {}: {e}",
                        full.display()
                    ),
                )
            })?;
            Ok(Some((pem, f.referenced)))
        }
        (None, inline) => Ok(inline),
    }
}

/// `tls_server_config` with a certificate: the rustls server configuration.
/// Files it names are added to `config.files`, settings it cannot honour
/// as written to `config.warnings`.
fn tls_server_config(
    spanned: &Spanned<TlsFile>,
    dir: &Path,
    at: &At<'_>,
    config: &mut WebConfig,
) -> Result<tokio_rustls::rustls::ServerConfig, ConfigError> {
    let t = &spanned.value;
    let section = spanned.referenced;
    let inline = |v: &Option<Spanned<String>>| {
        v.as_ref()
            .map(|c| (c.value.clone().into_bytes(), c.referenced))
    };
    let key_inline = t
        .key
        .as_ref()
        .map(|k| (k.value.expose().as_bytes().to_vec(), k.referenced));
    let required = |what: &str| at.err(&section, format!("tls_server_config: {what} is required"));
    let (cert_pem, cert_loc) = pem_source(
        "cert_file",
        &t.cert_file,
        inline(&t.cert),
        dir,
        at,
        &mut config.files,
    )?
    .ok_or_else(|| required("cert_file (or cert)"))?;
    let (key_pem, key_loc) = pem_source(
        "key_file",
        &t.key_file,
        key_inline,
        dir,
        at,
        &mut config.files,
    )?
    .ok_or_else(|| required("key_file (or key)"))?;
    let cert_chain = tls::parse_certs(&cert_pem)
        .map_err(|e| at.err(&cert_loc, format!("tls_server_config certificate: {e}")))?;
    let key = tls::parse_key(&key_pem)
        .map_err(|e| at.err(&key_loc, format!("tls_server_config key: {e}")))?;
    let ca = pem_source(
        "client_ca_file",
        &t.client_ca_file,
        inline(&t.client_ca),
        dir,
        at,
        &mut config.files,
    )?;
    let (client_auth, client_cas) = client_auth(t, ca, section, at)?;
    let (min_version, max_version) = versions(t, section, at, &mut config.warnings)?;
    let (cipher_suites, curves) = suites_and_curves(t, min_version, at, &mut config.warnings)?;
    let client_allowed_sans = allowed_sans(t, client_auth, section, at)?;
    tls::build(TlsSettings {
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
    .map_err(|e| at.err(&cert_loc, format!("tls_server_config: {e}")))
}

/// `client_auth_type` and the client CA it needs.
fn client_auth(
    t: &TlsFile,
    ca: Option<(Vec<u8>, serde_saphyr::Location)>,
    section: serde_saphyr::Location,
    at: &At<'_>,
) -> Result<(ClientAuth, Vec<CertificateDer<'static>>), ConfigError> {
    // exporter-toolkit: a CA alone means RequireAndVerifyClientCert.
    let client_auth = match &t.client_auth_type {
        Some(s) => ClientAuth::parse(&s.value).map_err(|e| at.err(&s.referenced, e))?,
        None if ca.is_some() => ClientAuth::RequireAndVerifyClientCert,
        None => ClientAuth::NoClientCert,
    };
    let client_cas = match &ca {
        Some((pem, loc)) => tls::parse_certs(pem)
            .map_err(|e| at.err(loc, format!("tls_server_config client CA: {e}")))?,
        None => Vec::new(),
    };
    if tls::needs_ca(client_auth) && client_cas.is_empty() {
        let loc = t
            .client_auth_type
            .as_ref()
            .map(|s| s.referenced)
            .unwrap_or(section);
        return Err(at.err(
            &loc,
            "tls_server_config: this client_auth_type verifies client certificates and needs client_ca_file".into(),
        ));
    }
    Ok((client_auth, client_cas))
}

/// `min_version` and `max_version` (default TLS 1.2 to 1.3).
fn versions(
    t: &TlsFile,
    section: serde_saphyr::Location,
    at: &At<'_>,
    warnings: &mut Vec<String>,
) -> Result<(Version, Version), ConfigError> {
    let version = |v: &Option<Spanned<String>>, default| match v {
        Some(s) => Version::parse(&s.value).map_err(|e| at.err(&s.referenced, e)),
        None => Ok(default),
    };
    let min_version = version(&t.min_version, Version::Tls12)?;
    let max_version = version(&t.max_version, Version::Tls13)?;
    if min_version < Version::Tls12 {
        warnings.push(
            "tls_server_config.min_version below TLS12: rustls offers TLS12 and TLS13 only".into(),
        );
    }
    if max_version < Version::Tls12 {
        let loc = t
            .max_version
            .as_ref()
            .map(|s| s.referenced)
            .unwrap_or(section);
        return Err(at.err(
            &loc,
            "tls_server_config.max_version: rustls offers TLS12 and TLS13 only".into(),
        ));
    }
    Ok((min_version, max_version))
}

type Suites = Vec<tokio_rustls::rustls::SupportedCipherSuite>;
type Curves = Vec<&'static dyn tokio_rustls::rustls::crypto::SupportedKxGroup>;

/// `cipher_suites` and `curve_preferences`, by Go name; the ones rustls
/// does not offer are skipped with a warning.
fn suites_and_curves(
    t: &TlsFile,
    min_version: Version,
    at: &At<'_>,
    warnings: &mut Vec<String>,
) -> Result<(Suites, Curves), ConfigError> {
    let mut cipher_suites = Vec::new();
    for name in t.cipher_suites.iter().flatten() {
        match tls::cipher_suite(&name.value).map_err(|e| at.err(&name.referenced, e))? {
            Some(suite) => cipher_suites.push(suite),
            None => warnings.push(format!(
                "tls_server_config.cipher_suites: {} is not offered (rustls implements only the ECDHE AEAD suites)",
                name.value
            )),
        }
    }
    if t.cipher_suites.as_ref().is_some_and(|c| !c.is_empty())
        && cipher_suites.is_empty()
        && min_version <= Version::Tls12
    {
        warnings.push(
            "tls_server_config.cipher_suites: none usable; TLS12 uses rustls' defaults".into(),
        );
    }
    let mut curves = Vec::new();
    for name in t.curve_preferences.iter().flatten() {
        match tls::curve(&name.value).map_err(|e| at.err(&name.referenced, e))? {
            Some(c) => curves.push(c),
            None => warnings.push(format!(
                "tls_server_config.curve_preferences: {} is not offered by vitals",
                name.value
            )),
        }
    }
    Ok((cipher_suites, curves))
}

/// `client_allowed_sans`, which only means something with client
/// certificates.
fn allowed_sans(
    t: &TlsFile,
    client_auth: ClientAuth,
    section: serde_saphyr::Location,
    at: &At<'_>,
) -> Result<Vec<String>, ConfigError> {
    let sans: Vec<String> = t
        .client_allowed_sans
        .iter()
        .flatten()
        .map(|s| s.value.clone())
        .collect();
    if !sans.is_empty() && client_auth == ClientAuth::NoClientCert {
        let loc = t
            .client_allowed_sans
            .iter()
            .flatten()
            .next()
            .map(|s| s.referenced)
            .unwrap_or(section);
        return Err(at.err(
            &loc,
            "tls_server_config.client_allowed_sans needs a client_auth_type that asks for a client certificate".into(),
        ));
    }
    Ok(sans)
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
