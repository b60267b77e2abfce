//! The one long-lived connection a PostgreSQL or PgBouncer target keeps:
//! DSN and password resolution, connect with a deadline, reconnect with
//! backoff, and error messages that never carry a secret.
//!
//! Shared by the `postgres` and `pgbouncer` sources.

use crate::config::Dsn;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls};

/// Where the password comes from. Read at each (re)connect, so a rotated
/// secret file is picked up without a restart.
#[derive(Clone, Debug)]
pub(crate) enum PasswordFrom {
    /// In the DSN itself, or none (trust / peer authentication).
    Dsn,
    File(PathBuf),
    Env(String),
}

impl PasswordFrom {
    pub(crate) fn new(file: Option<&PathBuf>, env: Option<&String>) -> Self {
        match (file, env) {
            (Some(f), _) => PasswordFrom::File(f.clone()),
            (None, Some(e)) => PasswordFrom::Env(e.clone()),
            (None, None) => PasswordFrom::Dsn,
        }
    }

    /// The password, if this source provides one. The message of an error
    /// names the file or the variable, never its content.
    fn read(&self) -> Result<Option<String>, String> {
        match self {
            PasswordFrom::Dsn => Ok(None),
            PasswordFrom::File(path) => std::fs::read_to_string(path)
                .map(|text| Some(trim_newline(&text).to_owned()))
                .map_err(|e| format!("reading password_file {}: {e}", path.display())),
            PasswordFrom::Env(name) => match std::env::var(name) {
                Ok(value) => Ok(Some(trim_newline(&value).to_owned())),
                Err(std::env::VarError::NotPresent) => Err(format!(
                    "password_env: environment variable {name} is not set"
                )),
                Err(std::env::VarError::NotUnicode(_)) => Err(format!(
                    "password_env: environment variable {name} is not valid UTF-8"
                )),
            },
        }
    }
}

/// Secret files usually end with a newline (`echo pw > file`); it is not
/// part of the password.
fn trim_newline(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

/// Replaces every known secret in `message` by `<redacted>`. Belt and braces:
/// nothing we format should contain one, but a server message might echo
/// what it was sent. Passwords shorter than 4 characters are not scrubbed
/// (replacing every "a" would make messages unreadable and hide nothing).
pub(crate) fn scrub(message: &str, secrets: &[String]) -> String {
    let mut text = message.to_owned();
    for secret in secrets.iter().filter(|s| s.chars().count() >= 4) {
        text = text.replace(secret.as_str(), "<redacted>");
    }
    text
}

/// Formats a tokio-postgres error for logs and `/status`. Its Display is
/// "db error: FATAL: ..." for server errors and an I/O description
/// otherwise; it never includes the connection config.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => e.to_string(),
    }
}

/// Delay before the next connection attempt after `failures` consecutive
/// failures: 1 s, 2 s, 4 s … capped at 30 s.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(5);
    Duration::from_secs((1u64 << exp).min(30))
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
    /// `postgres` or `pgbouncer`: used in log lines.
    kind: &'static str,
    name: String,
    flavor: Flavor,
    config: tokio_postgres::Config,
    password: PasswordFrom,
    statement_timeout: Duration,
    client: Option<Client>,
    /// Bumped at each new connection, so callers can drop prepared
    /// statements that belong to an older one.
    generation: u64,
    failures: u32,
    next_attempt: Option<Instant>,
    last_error: Option<String>,
    /// Every password seen (DSN, file, env), for [`scrub`].
    secrets: Vec<String>,
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
        let mut secrets = Vec::new();
        if let Some(pw) = config.get_password() {
            secrets.push(String::from_utf8_lossy(pw).into_owned());
        }
        Connector {
            kind,
            name: name.to_owned(),
            flavor,
            config,
            password,
            statement_timeout,
            client: None,
            generation: 0,
            failures: 0,
            next_attempt: None,
            last_error: None,
            secrets,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Removes every known secret from `message`.
    pub(crate) fn scrub(&self, message: &str) -> String {
        scrub(message, &self.secrets)
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
                self.kind,
                self.name
            );
            self.client = None;
        }
        if self.client.is_none() {
            if let Some(at) = self.next_attempt {
                let now = Instant::now();
                if now < at {
                    return Err(format!(
                        "not connected; next attempt in {:.1}s (last error: {})",
                        (at - now).as_secs_f64(),
                        self.last_error.as_deref().unwrap_or("none")
                    ));
                }
            }
            match self.connect(deadline).await {
                Ok(client) => {
                    if self.failures > 0 {
                        tracing::info!(
                            "{} target {}: connected after {} failed attempt(s)",
                            self.kind,
                            self.name,
                            self.failures
                        );
                    }
                    self.failures = 0;
                    self.next_attempt = None;
                    self.last_error = None;
                    self.generation += 1;
                    self.client = Some(client);
                }
                Err(message) => {
                    let message = self.scrub(&message);
                    self.failures = self.failures.saturating_add(1);
                    let delay = backoff(self.failures);
                    self.next_attempt = Some(Instant::now() + delay);
                    // One warning per outage, then debug: the runtime logs
                    // each failed round already.
                    if self.failures == 1 {
                        tracing::warn!(
                            "{} target {}: cannot connect: {message}",
                            self.kind,
                            self.name
                        );
                    } else {
                        tracing::debug!(
                            "{} target {}: connect attempt {} failed: {message}",
                            self.kind,
                            self.name,
                            self.failures
                        );
                    }
                    self.last_error = Some(message.clone());
                    return Err(message);
                }
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
                self.kind,
                self.name
            );
            let token = client.cancel_token();
            let limit = self.statement_timeout.max(Duration::from_secs(1));
            tokio::spawn(async move {
                let _ = tokio::time::timeout(limit, token.cancel_query(NoTls)).await;
            });
        }
    }

    async fn connect(&mut self, deadline: Instant) -> Result<Client, String> {
        let mut config = self.config.clone();
        if let Some(pw) = self.password.read()? {
            if !self.secrets.contains(&pw) {
                self.secrets.push(pw.clone());
            }
            config.password(pw);
        }
        let (client, connection) =
            match tokio::time::timeout_at(deadline, config.connect(NoTls)).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Err(describe(&e)),
                Err(_) => return Err("connect: no answer within the timeout".to_owned()),
            };
        let (kind, name) = (self.kind, self.name.clone());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("{kind} target {name}: connection ended: {}", describe(&e));
            }
        });
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_newline_is_not_part_of_the_password() {
        assert_eq!(trim_newline("s3cret\n"), "s3cret");
        assert_eq!(trim_newline("s3cret\r\n"), "s3cret");
        assert_eq!(trim_newline("s3cret"), "s3cret");
        assert_eq!(trim_newline("two words \n\n"), "two words \n");
    }

    #[test]
    fn secrets_are_scrubbed_but_short_ones_are_left() {
        let secrets = vec!["hunter2".to_owned(), "ab".to_owned()];
        assert_eq!(
            scrub("auth failed for hunter2 at abc", &secrets),
            "auth failed for <redacted> at abc"
        );
    }

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let secs: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

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

    #[test]
    fn password_file_is_read_and_trimmed_and_errors_name_only_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "Zq8-secret\n").unwrap();
        assert_eq!(
            PasswordFrom::File(path.clone()).read().unwrap().as_deref(),
            Some("Zq8-secret")
        );
        let missing = dir.path().join("missing");
        let e = PasswordFrom::File(missing).read().unwrap_err();
        assert!(e.contains("password_file") && e.contains("missing"), "{e}");
        let e = PasswordFrom::Env("VITALS_TEST_SURELY_UNSET_VAR".into())
            .read()
            .unwrap_err();
        assert!(e.contains("VITALS_TEST_SURELY_UNSET_VAR"), "{e}");
    }
}
