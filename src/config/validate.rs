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
        if app.max_series == 0 {
            return Err(invalid(format!("{at}.max_series"), "must be at least 1"));
        }
        if app.max_bytes == 0 {
            return Err(invalid(format!("{at}.max_bytes"), "must be at least 1"));
        }
    }
    Ok(())
}

/// PostgreSQL and PgBouncer targets: one password source at most, a
/// heartbeat table that is a plain identifier, pool sizes above 0, a timeout
/// above 0, PgBouncer's admin database.
fn database_targets(config: &Config) -> Result<(), Invalid> {
    for (i, pg) in config.sources.postgres.iter().enumerate() {
        let at = format!("sources.postgres[{i}]");
        connection(&at, &pg.password_file, &pg.password_env, pg.timeout)?;
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
        connection(&at, &pgb.password_file, &pgb.password_env, pgb.timeout)?;
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

/// What PostgreSQL and PgBouncer targets share: one password source at
/// most, a timeout above 0.
fn connection(
    at: &str,
    password_file: &Option<PathBuf>,
    password_env: &Option<String>,
    timeout: Duration,
) -> Result<(), Invalid> {
    if password_file.is_some() && password_env.is_some() {
        return Err(invalid(
            format!("{at}.password_env"),
            "set password_file or password_env, not both",
        ));
    }
    if timeout.as_std().is_zero() {
        return Err(invalid(format!("{at}.timeout"), "must be above 0"));
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
        assert!(e.message.contains("not both"), "{}", e.message);
        let ok = "sources:\n  pgbouncer:\n    - {name: b, dsn: \"host=127.0.0.1 port=6432 user=monitor\"}\n";
        assert!(parse_str(ok, "c.yaml").is_ok());
    }
}
