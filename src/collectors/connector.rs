//! What every database source shares about its one long-lived connection
//! (PostgreSQL and PgBouncer in `postgres/conn.rs`, Redis in `redis/`):
//! the password source (in the DSN, a file, a variable, or a command for
//! cloud IAM tokens), reconnect backoff, one warning per outage, and the
//! scrub that keeps every secret out of logs, `/status` and errors. TLS
//! material comes from [`crate::tls`], read at each connect. Each source
//! keeps its own protocol.

use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// Where the password comes from. Read at each (re)connect, so a rotated
/// secret is picked up without a restart.
#[derive(Clone, Debug)]
pub(crate) enum PasswordFrom {
    /// In the DSN itself, or none (trust / peer / certificate auth).
    Dsn,
    File(PathBuf),
    Env(String),
    Command(PasswordCommand),
}

/// `password_command`: an argv run without a shell; its trimmed stdout is
/// the password, kept for at most `ttl`.
#[derive(Clone)]
pub(crate) struct PasswordCommand {
    argv: Vec<String>,
    ttl: Duration,
    cached: Option<(String, Instant)>,
}

impl std::fmt::Debug for PasswordCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The arguments after the program may hold a secret.
        write!(f, "PasswordCommand({})", self.program())
    }
}

impl PasswordCommand {
    fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    async fn run(&mut self, deadline: Instant) -> Result<String, String> {
        if let Some((pw, at)) = &self.cached {
            if at.elapsed() < self.ttl {
                return Ok(pw.clone());
            }
        }
        self.cached = None;
        let program = self.program().to_owned();
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(self.argv.iter().skip(1))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            // Never read: it may echo the token.
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| format!("password_command {program}: cannot run it: {e}"))?;
        let output = match tokio::time::timeout_at(deadline, child.wait_with_output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Err(format!("password_command {program}: {e}")),
            Err(_) => {
                return Err(format!(
                    "password_command {program}: no answer within the timeout"
                ))
            }
        };
        if !output.status.success() {
            return Err(format!(
                "password_command {program}: failed with {}",
                output.status
            ));
        }
        let text = String::from_utf8(output.stdout)
            .map_err(|_| format!("password_command {program}: output is not UTF-8"))?;
        let pw = text.trim().to_owned();
        if pw.is_empty() {
            return Err(format!("password_command {program}: printed nothing"));
        }
        self.cached = Some((pw.clone(), Instant::now()));
        Ok(pw)
    }
}

impl PasswordFrom {
    /// At most one of them is set (the config refuses more).
    pub(crate) fn new(
        file: Option<&PathBuf>,
        env: Option<&String>,
        command: Option<&crate::config::Argv>,
        ttl: Duration,
    ) -> Self {
        match (file, env, command) {
            (Some(f), _, _) => PasswordFrom::File(f.clone()),
            (None, Some(e), _) => PasswordFrom::Env(e.clone()),
            (None, None, Some(argv)) => PasswordFrom::Command(PasswordCommand {
                argv: argv.0.clone(),
                ttl,
                cached: None,
            }),
            (None, None, None) => PasswordFrom::Dsn,
        }
    }

    /// The password, if this source provides one. The message of an error
    /// names the file, the variable or the program, never a secret.
    pub(crate) async fn read(&mut self, deadline: Instant) -> Result<Option<String>, String> {
        match self {
            PasswordFrom::Dsn => Ok(None),
            PasswordFrom::File(path) => std::fs::read_to_string(&*path)
                .map(|text| Some(trim_newline(&text).to_owned()))
                .map_err(|e| format!("reading password_file {}: {e}", path.display())),
            PasswordFrom::Env(name) => match std::env::var(&*name) {
                Ok(value) => Ok(Some(trim_newline(&value).to_owned())),
                Err(std::env::VarError::NotPresent) => Err(format!(
                    "password_env: environment variable {name} is not set"
                )),
                Err(std::env::VarError::NotUnicode(_)) => Err(format!(
                    "password_env: environment variable {name} is not valid UTF-8"
                )),
            },
            PasswordFrom::Command(c) => c.run(deadline).await.map(Some),
        }
    }

    /// Values that must never be shown: the command's arguments after the
    /// program (a profile, a role, maybe a key).
    fn secrets(&self) -> Vec<String> {
        match self {
            PasswordFrom::Command(c) => c.argv.iter().skip(1).cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// After a failed connect: a cached token may be the reason (expired,
    /// rotated), so the next attempt runs the command again.
    fn forget(&mut self) {
        if let PasswordFrom::Command(c) = self {
            c.cached = None;
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
/// what it was sent. Secrets shorter than 4 characters are not scrubbed
/// (replacing every "a" would make messages unreadable and hide nothing).
pub(crate) fn scrub(message: &str, secrets: &[String]) -> String {
    let mut text = message.to_owned();
    for secret in secrets.iter().filter(|s| s.chars().count() >= 4) {
        text = text.replace(secret.as_str(), "<redacted>");
    }
    text
}

/// Delay before the next connection attempt after `failures` consecutive
/// failures: 1 s, 2 s, 4 s … capped at 30 s.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(5);
    Duration::from_secs((1u64 << exp).min(30))
}

/// The connection state every database source keeps: the password source,
/// the secrets seen, and the backoff between failed attempts.
pub(crate) struct Link {
    /// `postgres`, `pgbouncer` or `redis`: used in log lines.
    kind: &'static str,
    name: String,
    password: PasswordFrom,
    failures: u32,
    next_attempt: Option<Instant>,
    last_error: Option<String>,
    /// Every password seen (DSN, file, env, command output) and the
    /// command's arguments, for [`scrub`].
    secrets: Vec<String>,
}

impl Link {
    pub(crate) fn new(kind: &'static str, name: &str, password: PasswordFrom) -> Self {
        let secrets = password.secrets();
        Link {
            kind,
            name: name.to_owned(),
            password,
            failures: 0,
            next_attempt: None,
            last_error: None,
            secrets,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn kind(&self) -> &'static str {
        self.kind
    }

    /// Remembers a secret to scrub (a password from the DSN).
    pub(crate) fn add_secret(&mut self, secret: String) {
        if !self.secrets.contains(&secret) {
            self.secrets.push(secret);
        }
    }

    /// Removes every known secret from `message`.
    pub(crate) fn scrub(&self, message: &str) -> String {
        scrub(message, &self.secrets)
    }

    /// `Err` while the backoff delay after a failure is still running.
    pub(crate) fn may_attempt(&self) -> Result<(), String> {
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
        Ok(())
    }

    /// The password for this attempt, remembered for the scrub.
    pub(crate) async fn password(&mut self, deadline: Instant) -> Result<Option<String>, String> {
        let pw = self.password.read(deadline).await?;
        if let Some(pw) = &pw {
            self.add_secret(pw.clone());
        }
        Ok(pw)
    }

    /// A connection was opened.
    pub(crate) fn connected(&mut self) {
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
    }

    /// A connection attempt failed: the backoff grows, one warning per
    /// outage (then debug: the runtime logs each failed round already).
    /// Returns the scrubbed message.
    pub(crate) fn failed(&mut self, message: &str) -> String {
        let message = self.scrub(message);
        self.password.forget();
        self.failures = self.failures.saturating_add(1);
        self.next_attempt = Some(Instant::now() + backoff(self.failures));
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
        message
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

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[tokio::test]
    async fn password_file_is_read_and_trimmed_and_errors_name_only_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "Zq8-secret\n").unwrap();
        assert_eq!(
            PasswordFrom::File(path.clone())
                .read(soon())
                .await
                .unwrap()
                .as_deref(),
            Some("Zq8-secret")
        );
        let missing = dir.path().join("missing");
        let e = PasswordFrom::File(missing).read(soon()).await.unwrap_err();
        assert!(e.contains("password_file") && e.contains("missing"), "{e}");
        let e = PasswordFrom::Env("VITALS_TEST_SURELY_UNSET_VAR".into())
            .read(soon())
            .await
            .unwrap_err();
        assert!(e.contains("VITALS_TEST_SURELY_UNSET_VAR"), "{e}");
    }

    fn command(argv: &[&str], ttl: Duration) -> PasswordFrom {
        let argv = crate::config::Argv(argv.iter().map(|s| s.to_string()).collect());
        PasswordFrom::new(None, None, Some(&argv), ttl)
    }

    #[tokio::test]
    async fn password_command_output_is_trimmed_cached_and_its_failures_say_only_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("n");
        let script = format!(
            "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; printf '  tok-%s\\n' $n",
            c = counter.display()
        );
        let mut pw = command(&["sh", "-c", &script], Duration::from_secs(600));
        assert_eq!(pw.read(soon()).await.unwrap().as_deref(), Some("tok-1"));
        // Cached within the ttl: not run again.
        assert_eq!(pw.read(soon()).await.unwrap().as_deref(), Some("tok-1"));
        pw.forget();
        assert_eq!(pw.read(soon()).await.unwrap().as_deref(), Some("tok-2"));
        // A ttl of 0: run at every connect.
        let mut pw = command(&["sh", "-c", &script], Duration::ZERO);
        assert_eq!(pw.read(soon()).await.unwrap().as_deref(), Some("tok-3"));
        assert_eq!(pw.read(soon()).await.unwrap().as_deref(), Some("tok-4"));

        let mut pw = command(
            &[
                "sh",
                "-c",
                "echo leaked-Output-77; echo err-Output-77 >&2; exit 3",
            ],
            Duration::ZERO,
        );
        let e = pw.read(soon()).await.unwrap_err();
        assert_eq!(e, "password_command sh: failed with exit status: 3");
        let mut pw = command(&["sh", "-c", "sleep 5"], Duration::ZERO);
        let e = pw
            .read(Instant::now() + Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(e.contains("no answer within the timeout"), "{e}");
        let e = command(&["/surely/not/here"], Duration::ZERO)
            .read(soon())
            .await
            .unwrap_err();
        assert!(
            e.starts_with("password_command /surely/not/here: cannot run it"),
            "{e}"
        );
        let e = command(&["true"], Duration::ZERO)
            .read(soon())
            .await
            .unwrap_err();
        assert!(e.contains("printed nothing"), "{e}");
    }

    #[test]
    fn command_arguments_are_secrets_and_never_debug_printed() {
        let pw = command(&["aws", "--profile", "prod-db-admin"], Duration::ZERO);
        assert_eq!(format!("{pw:?}"), "Command(PasswordCommand(aws))");
        let link = Link::new("postgres", "db", pw);
        assert_eq!(link.scrub("using prod-db-admin"), "using <redacted>");
    }
}
