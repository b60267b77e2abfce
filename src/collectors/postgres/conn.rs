//! The one long-lived connection a PostgreSQL or PgBouncer target keeps:
//! DSN and password resolution, TLS with libpq's `sslmode` meaning, connect
//! with a deadline, reconnect with backoff (the shared
//! [`Link`](crate::collectors::connector::Link)), and error messages that
//! never carry a secret.
//!
//! tokio-postgres does the `SSLRequest` (or PostgreSQL 17's direct TLS)
//! and the plain-text fallback of `prefer`; [`MakeRustls`] does the
//! handshake with the verification the DSN asks for; `allow` is two
//! attempts. Shared by the `postgres` and `pgbouncer` sources.

pub use crate::collectors::connector::backoff;
use crate::collectors::connector::Link;
pub(crate) use crate::collectors::connector::PasswordFrom;
use crate::config::{Dsn, PgTls, SslMode};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_postgres::config::SslNegotiation;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Client;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;

/// Formats a tokio-postgres error for logs and `/status`. Its Display is
/// "db error: FATAL: ..." for server errors and an I/O description
/// otherwise; it never includes the connection config. TLS failures read
/// `TLS: <cause> for host:port`.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    describe_at(e, "the server")
}

/// [`describe`], naming `peer` (host:port) in TLS failures.
pub(crate) fn describe_at(e: &tokio_postgres::Error, peer: &str) -> String {
    use std::error::Error as _;
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut at = e.source();
    while let Some(err) = at {
        if let Some(t) = err.downcast_ref::<TlsError>() {
            return t.0.clone();
        }
        at = err.source();
    }
    // tokio-postgres' Display leaves out the cause ("error performing TLS
    // handshake"): append the chain.
    let mut text = e.to_string();
    let mut at = e.source();
    while let Some(err) = at {
        let cause = err.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        at = err.source();
    }
    if text.contains("server does not support TLS") {
        return format!(
            "TLS: the server does not accept TLS connections (sslmode requires TLS) for {peer}"
        );
    }
    // In TLS 1.3 the server refuses a client certificate after the
    // handshake: the alert arrives as an I/O error on the first read.
    if let Some(why) = crate::tls::find_error(e) {
        return format!("TLS: {why} for {peer}");
    }
    text
}

/// What kind of server is on the other end; decides the session setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// A PostgreSQL server: `SET statement_timeout` once per connection.
    Postgres,
    /// The PgBouncer admin console: no SET (it only knows SHOW and a few
    /// commands), simple query protocol only.
    PgBouncer,
}

/// The live connection and its bookkeeping.
pub(crate) struct Connector {
    flavor: Flavor,
    config: tokio_postgres::Config,
    tls: PgTls,
    /// `host:port` for TLS error messages.
    peer: String,
    statement_timeout: Duration,
    client: Option<Client>,
    /// How the live connection was opened, for its cancel request.
    cancel_tls: Option<MakeRustls>,
    /// Bumped at each new connection, so callers can drop prepared
    /// statements that belong to an older one.
    generation: u64,
    link: Link,
}

impl Connector {
    pub(crate) fn new(
        kind: &'static str,
        name: &str,
        flavor: Flavor,
        dsn: &Dsn,
        password: PasswordFrom,
        statement_timeout: Duration,
    ) -> Self {
        let config = {
            let mut c = dsn.config().clone();
            // The admin console is the database called "pgbouncer"; without
            // a dbname tokio-postgres would use the user name.
            if flavor == Flavor::PgBouncer && c.get_dbname().is_none() {
                c.dbname("pgbouncer");
            }
            // Shown in pg_stat_activity, so the agent's own session is
            // recognisable (and counted under its own name). PgBouncer
            // 1.x accepts application_name as a startup parameter.
            if c.get_application_name().is_none() {
                c.application_name("vitals");
            }
            if c.get_connect_timeout().is_none() {
                c.connect_timeout(statement_timeout.max(Duration::from_secs(1)));
            }
            c
        };
        let mut link = Link::new(kind, name, password);
        if let Some(pw) = config.get_password() {
            link.add_secret(String::from_utf8_lossy(pw).into_owned());
        }
        Connector {
            flavor,
            peer: peer(&config),
            config,
            tls: dsn.tls().clone(),
            statement_timeout,
            client: None,
            cancel_tls: None,
            generation: 0,
            link,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Removes every known secret from `message`.
    pub(crate) fn scrub(&self, message: &str) -> String {
        self.link.scrub(message)
    }

    /// The live client, if connected.
    pub(crate) fn get(&self) -> Option<&Client> {
        self.client.as_ref()
    }

    /// Connects if needed (unless a backoff delay is still running), so that
    /// [`Connector::get`] returns the client. Never waits past `deadline`.
    pub(crate) async fn ensure(&mut self, deadline: Instant) -> Result<(), String> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            tracing::info!(
                "{} target {}: connection closed; reconnecting",
                self.link.kind(),
                self.link.name()
            );
            self.client = None;
        }
        if self.client.is_none() {
            self.link.may_attempt()?;
            match self.connect(deadline).await {
                Ok(client) => {
                    self.link.connected();
                    self.generation += 1;
                    self.client = Some(client);
                }
                Err(message) => return Err(self.link.failed(&message)),
            }
        }
        Ok(())
    }

    /// Forgets the connection after an error that may have left it unusable
    /// (a query that outlived its deadline). The server side is told to
    /// cancel what is still running, so nothing keeps holding a lock.
    pub(crate) fn reset(&mut self, why: &str) {
        if let Some(client) = self.client.take() {
            tracing::info!(
                "{} target {}: dropping connection: {why}",
                self.link.kind(),
                self.link.name()
            );
            let token = client.cancel_token();
            let limit = self.statement_timeout.max(Duration::from_secs(1));
            if let Some(tls) = self.cancel_tls.clone() {
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(limit, token.cancel_query(tls)).await;
                });
            }
        }
    }

    async fn connect(&mut self, deadline: Instant) -> Result<Client, String> {
        let mut config = self.config.clone();
        if let Some(pw) = self.link.password(deadline).await? {
            config.password(pw);
        }
        // Built at each connect: a certificate, key or CA file rotated on
        // disk is used from the next connection on.
        let direct = config.get_ssl_negotiation() == SslNegotiation::Direct;
        let client_tls = if self.tls.mode == SslMode::Disable {
            // Never used (sslmode=disable): no file is read.
            crate::tls::ClientTls {
                verify: crate::tls::Verify::Nothing,
                roots: None,
                cert_file: None,
                key_file: None,
                sni: false,
                alpn: vec![],
            }
        } else {
            self.tls.client_tls(direct)
        };
        let tls = MakeRustls {
            config: crate::tls::client_config(&client_tls).map_err(|e| format!("TLS: {e}"))?,
            peer: self.peer.clone(),
        };
        use tokio_postgres::config::SslMode as Wire;
        let client = match self.tls.mode {
            SslMode::Disable => {
                self.open(&mut config, Wire::Disable, &tls, deadline)
                    .await?
            }
            SslMode::Prefer => self.open(&mut config, Wire::Prefer, &tls, deadline).await?,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                self.open(&mut config, Wire::Require, &tls, deadline)
                    .await?
            }
            // libpq: plain text first, TLS when the server refuses it
            // (a `hostssl`-only pg_hba.conf).
            SslMode::Allow => match self.open(&mut config, Wire::Disable, &tls, deadline).await {
                Ok(c) => c,
                Err(plain) => {
                    tracing::debug!(
                        "{} target {}: sslmode=allow: plain text refused ({}); trying TLS",
                        self.link.kind(),
                        self.link.name(),
                        self.link.scrub(&plain)
                    );
                    self.open(&mut config, Wire::Require, &tls, deadline)
                        .await?
                }
            },
        };
        self.cancel_tls = Some(tls);
        if self.flavor == Flavor::Postgres {
            // Once per connection, not per round. SET rather than the
            // `options` startup parameter, which PgBouncer refuses when a
            // postgres target goes through it.
            let ms = self.statement_timeout.as_millis().max(1);
            let setup = format!("SET statement_timeout = {ms}");
            match tokio::time::timeout_at(deadline, client.simple_query(&setup)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("setting statement_timeout: {}", describe(&e))),
                Err(_) => {
                    return Err("setting statement_timeout: no answer within the timeout".into())
                }
            }
        }
        Ok(client)
    }

    /// One connection attempt with `mode` on the wire.
    async fn open(
        &self,
        config: &mut tokio_postgres::Config,
        mode: tokio_postgres::config::SslMode,
        tls: &MakeRustls,
        deadline: Instant,
    ) -> Result<Client, String> {
        config.ssl_mode(mode);
        let (client, connection) =
            match tokio::time::timeout_at(deadline, config.connect(tls.clone())).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Err(describe_at(&e, &self.peer)),
                Err(_) => return Err("connect: no answer within the timeout".to_owned()),
            };
        let (kind, name) = (self.link.kind(), self.link.name().to_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("{kind} target {name}: connection ended: {}", describe(&e));
            }
        });
        Ok(client)
    }
}

/// `host:port` of the first host, for messages (no password in it).
fn peer(config: &tokio_postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) if h.contains(':') => format!("[{h}]:{port}"),
        Some(tokio_postgres::config::Host::Tcp(h)) => format!("{h}:{port}"),
        Some(tokio_postgres::config::Host::Unix(p)) => format!("{}", p.display()),
        None => format!("localhost:{port}"),
    }
}

/// A TLS failure, already in words a person can act on.
#[derive(Debug)]
pub(crate) struct TlsError(String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// tokio-postgres' TLS hook over tokio-rustls: it asks for TLS with
/// `SSLRequest` (or directly, PostgreSQL 17) and hands us the socket.
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Arc<ClientConfig>,
    peer: String,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, TlsError> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|_| TlsError(format!("TLS: {domain:?} is not a valid server name")))?;
        Ok(RustlsConnect {
            config: self.config.clone(),
            name,
            peer: self.peer.clone(),
        })
    }
}

pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    peer: String,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, TlsError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(RustlsStream)
                .map_err(|e| {
                    let why = crate::tls::find_error(&e).unwrap_or_else(|| e.to_string());
                    TlsError(format!("TLS: {why} for {}", self.peer))
                })
        })
    }
}

/// The encrypted stream. No channel binding: SCRAM then runs without it, as
/// with libpq's `channel_binding=prefer` against a client that has none.
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_never_debug_prints_or_reports_the_dsn_password() {
        let dsn = Dsn::parse("host=127.0.0.1 port=1 user=u password=hunter2hunter2").unwrap();
        let c = Connector::new(
            "postgres",
            "db",
            Flavor::Postgres,
            &dsn,
            PasswordFrom::Dsn,
            Duration::from_secs(1),
        );
        assert_eq!(
            c.scrub("FATAL: bad password hunter2hunter2"),
            "FATAL: bad password <redacted>"
        );
        assert!(!format!("{dsn:?}").contains("hunter2"));
    }
}
