//! Checks that span several keys, after the schema itself has parsed (a DSN,
//! a probe URL, a selector are parsed by their own types while the file is
//! read). An error names the dotted path of the key it concerns; `load`
//! finds where that key is written.

use super::{CheckConfig, Config, Direction, Duration};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A refused config: the key (`sources.postgres[1].name`) and why.
#[derive(Debug)]
pub(super) struct Invalid {
    pub path: String,
    pub message: String,
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.into(),
        message: message.into(),
    }
}

pub(super) fn validate(config: &Config) -> Result<(), Invalid> {
    let sources = &config.sources;
    unique_names(
        "sources.processes",
        sources.processes.iter().map(|p| p.name.as_str()),
    )?;
    unique_names(
        "sources.postgres",
        sources.postgres.iter().map(|p| p.name.as_str()),
    )?;
    unique_names(
        "sources.pgbouncer",
        sources.pgbouncer.iter().map(|p| p.name.as_str()),
    )?;
    unique_names(
        "sources.http_probes",
        sources.http_probes.iter().map(|p| p.name.as_str()),
    )?;
    database_targets(config)?;
    redis_targets(config)?;
    remote_writes(config)?;
    for (i, probe) in sources.http_probes.iter().enumerate() {
        let at = format!("sources.http_probes[{i}]");
        for (key, value) in [("timeout", probe.timeout), ("window", probe.window)] {
            if value.as_std().is_zero() {
                return Err(invalid(format!("{at}.{key}"), "must be above 0"));
            }
        }
        if let Some((n, bad)) = probe
            .expect_status
            .iter()
            .enumerate()
            .find(|(_, s)| !(100..=599).contains(*s))
        {
            return Err(invalid(
                format!("{at}.expect_status[{n}]"),
                format!("{bad} is not an HTTP status code (100-599)"),
            ));
        }
    }
    app_metrics(config)?;
    relabel_rules(config)?;
    let mut check_names = BTreeSet::new();
    for (i, check) in config.checks.iter().enumerate() {
        let check = &check.value;
        if !check_names.insert(check.name.as_str()) {
            return Err(invalid(
                format!("checks[{i}].name"),
                format!("check `{}` is defined twice", check.name),
            ));
        }
        check_levels(check).map_err(|(key, m)| {
            let path = match key {
                "" => format!("checks[{i}]"),
                key => format!("checks[{i}].{key}"),
            };
            invalid(path, format!("check `{}`: {m}", check.name))
        })?;
        super::derived::validate(check).map_err(|e| {
            invalid(
                format!("checks[{i}]"),
                format!("check `{}`: {e}", check.name),
            )
        })?;
        if let Some(key) = check.given.percent.first() {
            if !check.is_share() {
                return Err(invalid(
                    format!("checks[{i}].{key}"),
                    format!(
                        "check `{}`: a percentage is a share of 1, but `{}` is not a ratio (a `_ratio` family or a `ratio:` check); write the {key} level in the figure's own unit",
                        check.name,
                        check.selector().metric
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Application endpoints (the URL is parsed with the file): bounds and a
/// timeout above 0.
fn app_metrics(config: &Config) -> Result<(), Invalid> {
    let apps = &config.sources.app_metrics;
    unique_names("sources.app_metrics", apps.iter().map(|a| a.name.as_str()))?;
    for (i, app) in apps.iter().enumerate() {
        let at = format!("sources.app_metrics[{i}]");
        if app.timeout.as_std().is_zero() {
            return Err(invalid(format!("{at}.timeout"), "must be above 0"));
        }
        if app.max_bytes == 0 {
            return Err(invalid(format!("{at}.max_bytes"), "must be at least 1"));
        }
        if let Some(label) = &app.status_label {
            let mut chars = label.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(invalid(
                    format!("{at}.status_label"),
                    format!("{label:?} is not a label name (letters, digits, _)"),
                ));
            }
        }
    }
    Ok(())
}

/// Every list of relabeling rules, with Prometheus' own checks.
fn relabel_rules(config: &Config) -> Result<(), Invalid> {
    let lists = std::iter::once((
        "metric_relabel_configs".to_owned(),
        &config.metric_relabel_configs,
    ))
    .chain(config.sources.app_metrics.iter().enumerate().map(|(i, a)| {
        (
            format!("sources.app_metrics[{i}].metric_relabel_configs"),
            &a.metric_relabel_configs,
        )
    }))
    .chain(config.remote_write.iter().enumerate().map(|(i, r)| {
        (
            format!("remote_write[{i}].write_relabel_configs"),
            &r.write_relabel_configs,
        )
    }));
    for (at, rules) in lists {
        super::relabel::check_rules(rules).map_err(|(i, key, message)| {
            let path = match key {
                "" => format!("{at}[{i}]"),
                key => format!("{at}[{i}].{key}"),
            };
            invalid(path, message)
        })?;
    }
    Ok(())
}

/// The largest `statements.top`: a few hundred series per target at most.
const MAX_TOP_STATEMENTS: usize = 200;

/// The most `catalog_databases` per target: one connection each.
const MAX_CATALOG_DATABASES: usize = 32;

/// PostgreSQL and PgBouncer targets: one password source at most, a
/// heartbeat table that is a plain identifier, pool sizes above 0, a timeout
/// above 0, statement and catalog intervals above 0, a bounded
/// `statements.top`, PgBouncer's admin database.
fn database_targets(config: &Config) -> Result<(), Invalid> {
    for (i, pg) in config.sources.postgres.iter().enumerate() {
        let at = format!("sources.postgres[{i}]");
        connection(
            &at,
            Password {
                file: &pg.password_file,
                env: &pg.password_env,
                command: &pg.password_command,
            },
            pg.timeout,
        )?;
        dsn_files(&at, &pg.dsn)?;
        if pg.statements.interval.as_std().is_zero() {
            return Err(invalid(
                format!("{at}.statements.interval"),
                "must be above 0",
            ));
        }
        if pg.catalog_interval.as_std().is_zero() {
            return Err(invalid(format!("{at}.catalog_interval"), "must be above 0"));
        }
        if pg.catalog_databases.len() > MAX_CATALOG_DATABASES {
            return Err(invalid(
                format!("{at}.catalog_databases"),
                format!(
                    "{} databases is above {MAX_CATALOG_DATABASES} (each one is a connection)",
                    pg.catalog_databases.len()
                ),
            ));
        }
        for (j, db) in pg.catalog_databases.iter().enumerate() {
            let key = format!("{at}.catalog_databases[{j}]");
            if db.is_empty() || db.len() > 63 {
                return Err(invalid(key, "a database name has 1 to 63 bytes"));
            }
            if pg.catalog_databases[..j].contains(db) || pg.dsn.config().get_dbname() == Some(db) {
                return Err(invalid(
                    key,
                    format!("`{db}` is listed twice (the DSN's own database is always read)"),
                ));
            }
        }
        if pg.statements.top > MAX_TOP_STATEMENTS {
            return Err(invalid(
                format!("{at}.statements.top"),
                format!(
                    "{} is above {MAX_TOP_STATEMENTS} (each one is a set of series)",
                    pg.statements.top
                ),
            ));
        }
        if let Some((app, _)) = pg.pools.iter().find(|(_, size)| **size == 0) {
            return Err(invalid(
                format!("{at}.pools.{app}"),
                format!("the pool size of `{app}` must be at least 1"),
            ));
        }
        if let Some(hb) = &pg.heartbeat {
            if !is_table_name(&hb.table) {
                return Err(invalid(
                    format!("{at}.heartbeat.table"),
                    format!(
                        "heartbeat table {:?} must be a name like vitals_heartbeat or schema.table (letters, digits, _)",
                        hb.table
                    ),
                ));
            }
        }
    }
    for (i, pgb) in config.sources.pgbouncer.iter().enumerate() {
        let at = format!("sources.pgbouncer[{i}]");
        connection(
            &at,
            Password {
                file: &pgb.password_file,
                env: &pgb.password_env,
                command: &pgb.password_command,
            },
            pgb.timeout,
        )?;
        dsn_files(&at, &pgb.dsn)?;
        if let Some(db) = pgb
            .dsn
            .config()
            .get_dbname()
            .filter(|db| *db != "pgbouncer")
        {
            return Err(invalid(
                format!("{at}.dsn"),
                format!("dbname must be pgbouncer (the admin console), not {db:?}"),
            ));
        }
    }
    Ok(())
}

/// Headers vitals sets itself; a configured one would break the protocol.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-encoding",
    "content-length",
    "transfer-encoding",
    "connection",
    "user-agent",
    "x-prometheus-remote-write-version",
];

/// `remote_write[]`: the URL parses (messages never repeat its query or
/// credentials), one kind of credentials, readable credential and TLS
/// files, headers and label names that are valid, bounds above 0.
fn remote_writes(config: &Config) -> Result<(), Invalid> {
    let mut dirs = BTreeSet::new();
    for (i, rw) in config.remote_write.iter().enumerate() {
        let fail =
            |key: &str, message: String| Err(invalid(format!("remote_write[{i}].{key}"), message));
        if let Err(e) = super::url::parse_url(&rw.url, "url") {
            let hint = if e.contains("user or password") {
                "; use basic_auth with a password_file"
            } else {
                ""
            };
            return fail("url", format!("{e}{hint}"));
        }
        if rw.timeout.as_std().is_zero() {
            return fail("timeout", "must be above 0".into());
        }
        if rw.interval.is_some_and(|d| d.as_std().is_zero()) {
            return fail(
                "interval",
                "must be above 0 (leave it out to send after each round)".into(),
            );
        }
        if rw.queue.max_samples_per_send == 0 {
            return fail("queue.max_samples_per_send", "must be at least 1".into());
        }
        if rw.queue.max_samples == 0 {
            return fail("queue.max_samples", "must be at least 1".into());
        }
        if let Some(dir) = &rw.queue.dir {
            if !dirs.insert(dir) {
                return fail(
                    "queue.dir",
                    format!(
                        "{} is used by another remote_write entry; each needs its own",
                        dir.display()
                    ),
                );
            }
        }
        if rw.basic_auth.is_some() && rw.bearer_token_file.is_some() {
            return fail(
                "bearer_token_file",
                "set basic_auth or bearer_token_file, not both".into(),
            );
        }
        let mut files: Vec<(&str, &std::path::Path)> = Vec::new();
        if let Some(b) = &rw.basic_auth {
            files.push(("basic_auth.password_file", &b.password_file));
        }
        if let Some(f) = &rw.bearer_token_file {
            files.push(("bearer_token_file", f));
        }
        for (key, f) in [
            ("tls.ca_file", &rw.tls.ca_file),
            ("tls.cert_file", &rw.tls.cert_file),
            ("tls.key_file", &rw.tls.key_file),
        ] {
            if let Some(f) = f {
                files.push((key, f));
            }
        }
        for (key, path) in files {
            if let Err(e) = std::fs::metadata(path).and_then(|_| std::fs::File::open(path)) {
                return fail(key, format!("{}: {e}", path.display()));
            }
        }
        if rw.tls.cert_file.is_some() != rw.tls.key_file.is_some() {
            return fail("tls", "tls.cert_file and tls.key_file go together".into());
        }
        for (name, value) in &rw.headers {
            let key = format!("headers.{name}");
            let fail = |message: String| fail(&key, message);
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return fail(format!("vitals sets {name} itself"));
            }
            if name.eq_ignore_ascii_case("authorization")
                && (rw.basic_auth.is_some() || rw.bearer_token_file.is_some())
            {
                return fail("Authorization conflicts with basic_auth or bearer_token_file".into());
            }
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return fail(format!("{name:?} is not a valid header name"));
            }
            // The value is never repeated: it may be a key.
            if hyper::header::HeaderValue::from_str(value).is_err() {
                return fail(format!(
                    "the value of {name} has characters not allowed in a header"
                ));
            }
        }
        for name in rw.external_labels.keys() {
            let key = format!("external_labels.{name}");
            let mut chars = name.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid || name.starts_with("__") {
                return fail(
                    &key,
                    format!(
                        "{name:?} is not a label name (letters, digits, _; not starting with __)"
                    ),
                );
            }
        }
    }
    Ok(())
}

/// The password settings of a database target.
struct Password<'a> {
    file: &'a Option<PathBuf>,
    env: &'a Option<String>,
    command: &'a Option<crate::config::Argv>,
}

/// What PostgreSQL, PgBouncer and Redis targets share: one password source
/// at most, a command with a program, a timeout above 0.
fn connection(at: &str, password: Password<'_>, timeout: Duration) -> Result<(), Invalid> {
    let set = [
        password.file.is_some(),
        password.env.is_some(),
        password.command.is_some(),
    ];
    if set.iter().filter(|s| **s).count() > 1 {
        let key = if password.command.is_some() {
            "password_command"
        } else {
            "password_env"
        };
        return Err(invalid(
            format!("{at}.{key}"),
            "set one of password_file, password_env and password_command",
        ));
    }
    if let Some(argv) = password.command {
        if argv.0.first().map_or(true, |p| p.is_empty()) {
            return Err(invalid(
                format!("{at}.password_command"),
                "a list whose first item is the program, e.g. [aws, rds, generate-db-auth-token, ...]",
            ));
        }
    }
    if timeout.as_std().is_zero() {
        return Err(invalid(format!("{at}.timeout"), "must be above 0"));
    }
    Ok(())
}

/// The file exists and can be opened; the error names it.
fn readable(path: &std::path::Path) -> Result<(), String> {
    std::fs::metadata(path)
        .and_then(|_| std::fs::File::open(path))
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The certificate and key files a DSN names (`sslrootcert`, `sslcert`,
/// `sslkey`) exist and can be read.
fn dsn_files(at: &str, dsn: &crate::config::Dsn) -> Result<(), Invalid> {
    for (key, path) in dsn.tls().files() {
        readable(path).map_err(|e| invalid(format!("{at}.dsn"), format!("{key} {e}")))?;
    }
    Ok(())
}

/// Redis targets: unique names, one password source, a user only with a
/// password, a timeout above 0, queues that expand and stay within
/// `max_queues`, unique queue labels.
fn redis_targets(config: &Config) -> Result<(), Invalid> {
    unique_names(
        "sources.redis",
        config.sources.redis.iter().map(|r| r.name.as_str()),
    )?;
    for (i, r) in config.sources.redis.iter().enumerate() {
        let at = format!("sources.redis[{i}]");
        connection(
            &at,
            Password {
                file: &r.password_file,
                env: &r.password_env,
                command: &r.password_command,
            },
            r.timeout,
        )?;
        if r.username.is_some()
            && r.password_file.is_none()
            && r.password_env.is_none()
            && r.password_command.is_none()
        {
            return Err(invalid(
                format!("{at}.username"),
                "username needs a password (password_file, password_env or password_command)",
            ));
        }
        if let Some(tls) = &r.tls {
            for (key, f) in [
                ("ca_file", &tls.ca_file),
                ("cert_file", &tls.cert_file),
                ("key_file", &tls.key_file),
            ] {
                if let Some(path) = f {
                    readable(path).map_err(|e| invalid(format!("{at}.tls.{key}"), e))?;
                }
            }
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err(invalid(
                    format!("{at}.tls"),
                    "tls.cert_file and tls.key_file go together",
                ));
            }
            if matches!(r.address, crate::config::RedisAddress::Unix(_)) {
                return Err(invalid(
                    format!("{at}.tls"),
                    "TLS needs a host:port address, not a unix socket",
                ));
            }
        }
        if r.max_queues == 0 {
            return Err(invalid(format!("{at}.max_queues"), "must be at least 1"));
        }
        let mut labels = BTreeSet::new();
        let mut count = 0;
        for (n, q) in r.queues.iter().enumerate() {
            // The entry's first kind key, e.g. `sidekiq`, as its position.
            let key = [
                ("key", &q.key),
                ("bullmq", &q.bullmq),
                ("sidekiq", &q.sidekiq),
                ("celery", &q.celery),
                ("rq", &q.rq),
                ("name", &q.name),
            ]
            .into_iter()
            .find(|(_, v)| v.is_some())
            .map_or(format!("{at}.queues[{n}]"), |(k, _)| {
                format!("{at}.queues[{n}].{k}")
            });
            let keys = q.keys().map_err(|m| invalid(&key, m))?;
            for k in keys {
                count += 1;
                if !labels.insert(k.name.clone()) {
                    return Err(invalid(
                        &key,
                        format!("queue name `{}` is used twice", k.name),
                    ));
                }
            }
        }
        if count > r.max_queues {
            // Points at max_queues when set, else at the nearest parent.
            return Err(invalid(
                format!("{at}.max_queues"),
                format!(
                    "{count} queue keys (BullMQ queues count 4 each) exceed max_queues {}",
                    r.max_queues
                ),
            ));
        }
    }
    Ok(())
}

/// `table` or `schema.table`, each part a plain SQL identifier.
fn is_table_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            let mut chars = p.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

/// Warning and critical must be ordered for the direction: above means
/// warning <= critical. The error names the key at fault (`""` for the
/// check as a whole).
fn check_levels(check: &CheckConfig) -> Result<(), (&'static str, String)> {
    if check.warning.is_none() && check.critical.is_none() {
        return Err(("", "needs a warning or a critical level (or both)".into()));
    }
    for (name, level) in [("warning", check.warning), ("critical", check.critical)] {
        if level.is_some_and(|v| !v.is_finite()) {
            return Err((name, format!("{name} level must be a finite number")));
        }
    }
    if let (Some(w), Some(c)) = (check.warning, check.critical) {
        let beyond = match check.direction {
            Direction::Above => w > c,
            Direction::Below => w < c,
        };
        if beyond {
            let dir = match check.direction {
                Direction::Above => "above",
                Direction::Below => "below",
            };
            return Err((
                "warning",
                format!(
                    "warning {w} is beyond critical {c} for direction {dir}; warning must be reached first"
                ),
            ));
        }
    }
    Ok(())
}

/// Names become labels: none empty, none twice (the error is at the second).
fn unique_names<'a>(key: &str, names: impl Iterator<Item = &'a str>) -> Result<(), Invalid> {
    let mut seen = BTreeSet::new();
    for (i, name) in names.enumerate() {
        if name.trim().is_empty() {
            return Err(invalid(format!("{key}[{i}].name"), "must not be empty"));
        }
        if !seen.insert(name) {
            return Err(invalid(
                format!("{key}[{i}].name"),
                format!("name `{name}` is used twice; names become labels and must be unique"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;

    #[test]
    fn below_direction_orders_levels_the_other_way() {
        let ok =
            "checks:\n  - {name: free, metric: m, direction: below, warning: 20, critical: 10}\n";
        assert!(parse_str(ok, "c.yaml").is_ok());
        let bad =
            "checks:\n  - {name: free, metric: m, direction: below, warning: 10, critical: 20}\n";
        assert!(parse_str(bad, "c.yaml").is_err());
    }

    #[test]
    fn https_probe_and_bad_expected_status_are_refused() {
        let text =
            "sources:\n  http_probes:\n    - name: app\n      url: https://127.0.0.1:8443/health\n";
        let e = parse_str(text, "c.yaml").unwrap_err();
        assert_eq!((e.line, e.column), (4, 12));
        assert!(
            e.message
                .starts_with("key `sources.http_probes[0].url`: probe URL"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("https is not supported"),
            "{}",
            e.message
        );
        let text = "sources:\n  http_probes:\n    - {name: app, url: \"http://127.0.0.1:8080/\", expect_status: [200, 42]}\n";
        let e = parse_str(text, "c.yaml").unwrap_err();
        assert_eq!(
            e.message,
            "key `sources.http_probes[0].expect_status[1]`: 42 is not an HTTP status code (100-599)"
        );
        assert_eq!((e.line, e.column), (3, 71));
        let text = "sources:\n  http_probes:\n    - {name: app, url: \"http://127.0.0.1:8080/\", timeout: 0s}\n";
        let e = parse_str(text, "c.yaml").unwrap_err();
        assert!(
            e.message == "key `sources.http_probes[0].timeout`: must be above 0",
            "{}",
            e.message
        );
        let ok = "sources:\n  http_probes:\n    - {name: app, url: \"http://127.0.0.1:8080/health\", timeout: 1s}\n";
        assert!(parse_str(ok, "c.yaml").is_ok());
    }

    #[test]
    fn heartbeat_table_must_be_an_identifier() {
        let ok = "sources:\n  postgres:\n    - name: a\n      dsn: host=127.0.0.1\n      heartbeat: {table: ops.vitals_heartbeat, write: true}\n";
        assert!(parse_str(ok, "c.yaml").is_ok());
        let bad = "sources:\n  postgres:\n    - name: a\n      dsn: host=127.0.0.1\n      heartbeat: {table: \"hb; DROP TABLE x\"}\n";
        let e = parse_str(bad, "c.yaml").unwrap_err();
        assert!(e.message.contains("heartbeat table"), "{}", e.message);
    }

    #[test]
    fn remote_write_entries_are_checked_without_echoing_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "hunter2hunter2\n").unwrap();
        let pw = pw.display();
        let ok = format!(
            "remote_write:\n  - url: https://mimir.example/api/v1/push\n    basic_auth: {{username: u, password_file: {pw}}}\n    headers: {{X-Scope-OrgID: team-a}}\n    queue: {{max_samples: 500, dir: /var/lib/vitals/rw}}\n"
        );
        let config = parse_str(&ok, "c.yaml").unwrap();
        assert_eq!(config.remote_write[0].queue.max_samples, 500);
        for (text, line, message) in [
            (
                "remote_write:\n  - url: \"https://u:hunter2hunter2@h/push\"\n".to_owned(),
                2,
                "key `remote_write[0].url`: url must not contain a user or password; use basic_auth with a password_file",
            ),
            (
                "remote_write:\n  - {url: \"ftp://h/push?key=hunter2hunter2\"}\n".to_owned(),
                2,
                "key `remote_write[0].url`: url \"ftp://h/push\" must start with http://",
            ),
            (
                format!("remote_write:\n  - url: http://h/push\n    basic_auth: {{username: u, password_file: {pw}}}\n    bearer_token_file: {pw}\n"),
                4,
                "key `remote_write[0].bearer_token_file`: set basic_auth or bearer_token_file, not both",
            ),
            (
                "remote_write:\n  - url: http://h/push\n    bearer_token_file: /nonexistent/token\n".to_owned(),
                3,
                "key `remote_write[0].bearer_token_file`: /nonexistent/token: No such file or directory (os error 2)",
            ),
            (
                "remote_write:\n  - url: http://h/push\n    headers: {Content-Encoding: gzip}\n".to_owned(),
                3,
                "key `remote_write[0].headers.Content-Encoding`: vitals sets Content-Encoding itself",
            ),
            (
                "remote_write:\n  - url: http://h/push\n    headers: {X-Key: \"hunter2hunter2\\n\"}\n".to_owned(),
                3,
                "key `remote_write[0].headers.X-Key`: the value of X-Key has characters not allowed in a header",
            ),
            (
                "remote_write:\n  - url: http://h/push\n    external_labels: {__pod: x}\n".to_owned(),
                3,
                "key `remote_write[0].external_labels.__pod`: \"__pod\" is not a label name (letters, digits, _; not starting with __)",
            ),
            (
                "remote_write:\n  - url: http://h/a\n  - url: http://h/b\n    queue: {max_samples: 0}\n".to_owned(),
                4,
                "key `remote_write[1].queue.max_samples`: must be at least 1",
            ),
            (
                "remote_write:\n  - {url: http://h/a, queue: {dir: /q}}\n  - {url: http://h/b, queue: {dir: /q}}\n".to_owned(),
                3,
                "key `remote_write[1].queue.dir`: /q is used by another remote_write entry; each needs its own",
            ),
        ] {
            let e = parse_str(&text, "c.yaml").expect_err(&text);
            assert_eq!(e.message, message, "{text}");
            assert_eq!(e.line, line, "{text}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn external_label_values_come_from_the_environment() {
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        let text = "remote_write:\n  - url: http://h/push\n    external_labels: {path: \"p=${PATH}\", cost: \"$$5\"}\n";
        let config = parse_str(text, "c.yaml").unwrap();
        let labels = &config.remote_write[0].external_labels;
        assert_eq!(labels["path"].0, format!("p={path}"));
        assert_eq!(labels["cost"].0, "$5");
        let text = "remote_write:\n  - url: http://h/push\n    external_labels:\n      pod: \"${VITALS_TEST_SURELY_UNSET}\"\n";
        let e = parse_str(text, "c.yaml").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(
            e.message
                .contains("environment variable VITALS_TEST_SURELY_UNSET is not set"),
            "{}",
            e.message
        );
    }

    #[test]
    fn catalog_databases_are_read_and_checked() {
        let ok = "sources:\n  postgres:\n    - name: a\n      dsn: host=127.0.0.1 dbname=app\n      catalog_databases: [reports, audit]\n";
        let c = parse_str(ok, "c.yaml").unwrap();
        assert_eq!(
            c.sources.postgres[0].catalog_databases,
            ["reports", "audit"]
        );
        for (list, key, says) in [
            (
                "[reports, reports]",
                "catalog_databases[1]",
                "`reports` is listed twice",
            ),
            ("[app]", "catalog_databases[0]", "`app` is listed twice"),
            ("[\"\"]", "catalog_databases[0]", "1 to 63 bytes"),
        ] {
            let text = ok.replace("[reports, audit]", list);
            let e = parse_str(&text, "c.yaml").unwrap_err().to_string();
            assert!(
                e.contains(&format!("key `sources.postgres[0].{key}`")),
                "{e}"
            );
            assert!(e.contains(says), "{e}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("db{i}")).collect();
        let text = ok.replace("[reports, audit]", &format!("[{}]", many.join(", ")));
        let e = parse_str(&text, "c.yaml").unwrap_err().to_string();
        assert!(e.contains("33 databases is above 32"), "{e}");
    }

    #[test]
    fn statements_and_catalog_interval_are_read_and_checked() {
        let ok = "sources:\n  postgres:\n    - name: a\n      dsn: host=127.0.0.1\n      statements: {top: 5, interval: 15s}\n      catalog_interval: 2m\n";
        let c = parse_str(ok, "c.yaml").unwrap();
        let pg = &c.sources.postgres[0];
        assert_eq!(pg.statements.top, 5);
        assert_eq!(pg.statements.interval.as_std().as_secs(), 15);
        assert_eq!(pg.catalog_interval.as_std().as_secs(), 120);
        let defaults = "sources:\n  postgres:\n    - name: a\n      dsn: host=127.0.0.1\n";
        let c = parse_str(defaults, "c.yaml").unwrap();
        assert_eq!(c.sources.postgres[0].statements.top, 20);
        assert_eq!(
            c.sources.postgres[0].catalog_interval.as_std().as_secs(),
            60
        );
        let too_many = "sources:\n  postgres:\n    - name: a\n      dsn: host=127.0.0.1\n      statements: {top: 5000}\n";
        let e = parse_str(too_many, "c.yaml").unwrap_err();
        assert_eq!(e.line, 5, "{}", e.message);
        assert!(
            e.message
                .starts_with("key `sources.postgres[0].statements.top`: 5000 is above"),
            "{}",
            e.message
        );
        let zero = "sources:\n  postgres:\n    - name: a\n      dsn: host=127.0.0.1\n      catalog_interval: 0s\n";
        let e = parse_str(zero, "c.yaml").unwrap_err();
        assert_eq!(
            e.message,
            "key `sources.postgres[0].catalog_interval`: must be above 0"
        );
        let zero = "sources:\n  postgres:\n    - name: a\n      dsn: host=127.0.0.1\n      statements: {interval: 0s}\n";
        let e = parse_str(zero, "c.yaml").unwrap_err();
        assert_eq!(
            e.message,
            "key `sources.postgres[0].statements.interval`: must be above 0"
        );
        let typo = "sources:\n  postgres:\n    - name: a\n      dsn: host=127.0.0.1\n      statements: {tpo: 5}\n";
        let e = parse_str(typo, "c.yaml").unwrap_err();
        assert!(e.message.contains("tpo"), "{}", e.message);
    }

    #[test]
    fn pool_size_zero_is_refused() {
        let text = "sources:\n  postgres:\n    - name: a\n      dsn: host=127.0.0.1\n      pools: {webapp: 0}\n";
        let e = parse_str(text, "c.yaml").unwrap_err();
        assert!(
            e.message.contains("`webapp` must be at least 1"),
            "{}",
            e.message
        );
    }

    #[test]
    fn redis_targets_are_checked_with_positions() {
        let ok = "sources:\n  redis:\n    - name: cache\n      address: 127.0.0.1:6379\n      queues:\n        - {bullmq: emails}\n        - {sidekiq: default}\n        - {key: jobs, name: jobs}\n";
        let c = parse_str(ok, "c.yaml").unwrap();
        let keys = c.sources.redis[0].queue_keys();
        assert_eq!(keys.len(), 6);
        assert_eq!(keys[0].key, "bull:emails:wait");
        assert_eq!(keys[0].name, "emails:wait");
        assert_eq!(keys[4].key, "queue:default");
        let bad_address = "sources:\n  redis:\n    - name: cache\n      address: \"127.0.0.1\"\n";
        let e = parse_str(bad_address, "c.yaml").unwrap_err();
        assert_eq!(e.line, 4, "{}", e.message);
        assert!(e.message.contains("host:port"), "{}", e.message);
        let two_kinds = "sources:\n  redis:\n    - name: cache\n      address: 127.0.0.1:6379\n      queues:\n        - {key: a}\n        - {sidekiq: x, rq: y}\n";
        let e = parse_str(two_kinds, "c.yaml").unwrap_err();
        assert_eq!((e.line, e.column), (7, 21), "{}", e.message);
        assert!(
            e.message
                == "key `sources.redis[0].queues[1].sidekiq`: a queue needs exactly one of key, bullmq, sidekiq, celery, rq (found sidekiq, rq)",
            "{}",
            e.message
        );
        let too_many = "sources:\n  redis:\n    - name: cache\n      address: /run/redis.sock\n      max_queues: 3\n      queues:\n        - {bullmq: emails}\n";
        let e = parse_str(too_many, "c.yaml").unwrap_err();
        assert_eq!(e.line, 5, "{}", e.message);
        assert!(e.message.contains("4 queue keys"), "{}", e.message);
        let user_no_pw = "sources:\n  redis:\n    - {name: cache, address: \"127.0.0.1:6379\", username: vitals}\n";
        let e = parse_str(user_no_pw, "c.yaml").unwrap_err();
        assert!(
            e.message.contains("username needs a password"),
            "{}",
            e.message
        );
        let unknown = "sources:\n  redis:\n    - {name: cache, address: \"127.0.0.1:6379\", pasword_file: /x}\n";
        let e = parse_str(unknown, "c.yaml").unwrap_err();
        assert_eq!(e.line, 3, "{}", e.message);
        assert!(e.message.contains("pasword_file"), "{}", e.message);
    }

    #[test]
    fn pgbouncer_targets_need_the_admin_database_and_one_password_source() {
        let wrong_db = "sources:\n  pgbouncer:\n    - {name: b, dsn: \"host=127.0.0.1 port=6432 dbname=app\"}\n";
        let e = parse_str(wrong_db, "c.yaml").unwrap_err();
        assert!(
            e.message.contains("dbname must be pgbouncer"),
            "{}",
            e.message
        );
        let both = "sources:\n  pgbouncer:\n    - {name: b, dsn: \"host=127.0.0.1\", password_file: /f, password_env: PW}\n";
        let e = parse_str(both, "c.yaml").unwrap_err();
        assert!(e.message.contains("set one of"), "{}", e.message);
        let ok = "sources:\n  pgbouncer:\n    - {name: b, dsn: \"host=127.0.0.1 port=6432 user=monitor\"}\n";
        assert!(parse_str(ok, "c.yaml").is_ok());
    }

    #[test]
    fn tls_files_and_password_commands_are_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, "pem").unwrap();
        let missing = dir.path().join("missing.key");
        let ok = format!(
            "sources:\n  postgres:\n    - name: db\n      dsn: \"host=h sslmode=verify-full sslrootcert={}\"\n      password_command: [aws, rds, generate-db-auth-token]\n      password_command_ttl: 5m\n",
            ca.display()
        );
        let c = parse_str(&ok, "c.yaml").unwrap();
        assert_eq!(
            c.sources.postgres[0]
                .password_command_ttl
                .as_std()
                .as_secs(),
            300
        );
        let bad = format!(
            "sources:\n  postgres:\n    - name: db\n      dsn: \"host=h sslcert={ca} sslkey={key}\"\n",
            ca = ca.display(),
            key = missing.display()
        );
        let e = parse_str(&bad, "c.yaml").unwrap_err();
        assert_eq!((e.line, e.column), (4, 12), "{}", e.message);
        assert!(
            e.message
                .starts_with("key `sources.postgres[0].dsn`: sslkey ")
                && e.message.contains("missing.key: No such file"),
            "{}",
            e.message
        );
        let redis = format!(
            "sources:\n  redis:\n    - name: cache\n      address: \"h:6380\"\n      tls: {{ca_file: {ca}, cert_file: {key}, key_file: {key}}}\n",
            ca = ca.display(),
            key = missing.display()
        );
        let e = parse_str(&redis, "c.yaml").unwrap_err();
        assert_eq!(e.line, 5, "{}", e.message);
        assert!(
            e.message
                .starts_with("key `sources.redis[0].tls.cert_file`: "),
            "{}",
            e.message
        );
        for (text, message) in [
            (
                "sources:\n  redis:\n    - {name: c, address: \"h:1\", password_env: X, password_command: [x]}\n",
                "key `sources.redis[0].password_command`: set one of password_file, password_env and password_command",
            ),
            (
                "sources:\n  pgbouncer:\n    - {name: b, dsn: \"host=h\", password_command: []}\n",
                "key `sources.pgbouncer[0].password_command`: a list whose first item is the program",
            ),
            (
                "sources:\n  postgres:\n    - {name: b, dsn: \"host=h sslmode=verify-ca sslrootcert=system\"}\n",
                "sslrootcert=system needs sslmode=verify-full, not verify-ca",
            ),
        ] {
            let e = parse_str(text, "c.yaml").unwrap_err();
            assert_eq!(e.line, 3, "{}", e.message);
            assert!(e.message.contains(message), "{}", e.message);
        }
    }
}
