//! Checks that span several keys, after the schema itself has parsed.
//! Errors carry `(line, column, message)`; `load` adds the file name.

use super::{CheckConfig, Config, Direction};
use std::collections::BTreeSet;

pub(super) type Invalid = (u64, u64, String);

pub(super) fn validate(config: &Config, text: &str) -> Result<(), Invalid> {
    unique_names(
        text,
        "sources.processes",
        config.sources.processes.iter().map(|p| p.name.as_str()),
    )?;
    unique_names(
        text,
        "sources.postgres",
        config.sources.postgres.iter().map(|p| p.name.as_str()),
    )?;
    unique_names(
        text,
        "sources.pgbouncer",
        config.sources.pgbouncer.iter().map(|p| p.name.as_str()),
    )?;
    unique_names(
        text,
        "sources.http_probes",
        config.sources.http_probes.iter().map(|p| p.name.as_str()),
    )?;
    for pg in &config.sources.postgres {
        if pg.password_file.is_some() && pg.password_env.is_some() {
            let (line, column) = locate(text, &format!("name: {}", pg.name));
            return Err((
                line,
                column,
                format!(
                    "sources.postgres `{}`: set password_file or password_env, not both",
                    pg.name
                ),
            ));
        }
    }
    database_targets(config, text)?;
    for probe in &config.sources.http_probes {
        let (line, column) = locate(text, &probe.url);
        crate::collectors::http_probe::parse_target(&probe.url).map_err(|m| {
            (
                line,
                column,
                format!("sources.http_probes `{}`: {m}", probe.name),
            )
        })?;
        for (key, value) in [("timeout", probe.timeout), ("window", probe.window)] {
            if value.as_std().is_zero() {
                return Err((
                    line,
                    column,
                    format!(
                        "sources.http_probes `{}`: {key} must be above 0",
                        probe.name
                    ),
                ));
            }
        }
        if let Some(bad) = probe
            .expect_status
            .iter()
            .find(|s| !(100..=599).contains(*s))
        {
            let (line, column) = locate(text, "expect_status");
            return Err((
                line,
                column,
                format!(
                    "sources.http_probes `{}`: expect_status {bad} is not an HTTP status code (100-599)",
                    probe.name
                ),
            ));
        }
    }
    app_metrics(config, text)?;
    let mut check_names = BTreeSet::new();
    for check in &config.checks {
        let (line, column) = (check.referenced.line(), check.referenced.column());
        if !check_names.insert(check.value.name.as_str()) {
            return Err((
                line,
                column,
                format!("check `{}` is defined twice", check.value.name),
            ));
        }
        check_levels(&check.value)
            .map_err(|m| (line, column, format!("check `{}`: {m}", check.value.name)))?;
        crate::checks::derived::validate(&check.value)
            .map_err(|e| (line, column, format!("check `{}`: {e}", check.value.name)))?;
    }
    Ok(())
}

/// Application endpoints: a loopback-style `http://` URL without
/// credentials (the message never repeats one), bounds and a timeout above 0.
fn app_metrics(config: &Config, text: &str) -> Result<(), Invalid> {
    unique_names(
        text,
        "sources.app_metrics",
        config.sources.app_metrics.iter().map(|a| a.name.as_str()),
    )?;
    for app in &config.sources.app_metrics {
        let fail = |message: String| {
            let (line, column) = locate(text, &format!("name: {}", app.name));
            Err((
                line,
                column,
                format!("sources.app_metrics `{}`: {message}", app.name),
            ))
        };
        if let Err(m) = crate::collectors::http_probe::parse_http_url(&app.url, "app_metrics") {
            // Point at the URL unless it holds credentials.
            let (line, column) = if m.contains("user or password") {
                locate(text, &format!("name: {}", app.name))
            } else {
                locate(text, &app.url)
            };
            return Err((
                line,
                column,
                format!("sources.app_metrics `{}`: {m}", app.name),
            ));
        }
        if app.timeout.as_std().is_zero() {
            return fail("timeout must be above 0".into());
        }
        if app.max_series == 0 {
            return fail("max_series must be at least 1".into());
        }
        if app.max_bytes == 0 {
            return fail("max_bytes must be at least 1".into());
        }
        if let Some(queue) = &app.queue {
            if let Err(e) = crate::checks::Selector::parse(queue) {
                return fail(format!("queue: {e}"));
            }
        }
    }
    Ok(())
}

/// PostgreSQL and PgBouncer targets: the DSN parses (the message never
/// repeats it), one password source at most, a heartbeat table that is a
/// plain identifier, pool sizes above 0, a timeout above 0.
fn database_targets(config: &Config, text: &str) -> Result<(), Invalid> {
    let fail = |kind: &str, name: &str, message: String| {
        let (line, column) = locate(text, &format!("name: {name}"));
        Err((line, column, format!("sources.{kind} `{name}`: {message}")))
    };
    for pg in &config.sources.postgres {
        if let Err(e) = crate::collectors::postgres::parse_dsn(pg.dsn.expose()) {
            return fail("postgres", &pg.name, e);
        }
        if pg.timeout.as_std().is_zero() {
            return fail("postgres", &pg.name, "timeout must be above 0".into());
        }
        if let Some((app, _)) = pg.pools.iter().find(|(_, size)| **size == 0) {
            return fail(
                "postgres",
                &pg.name,
                format!("pools: the pool size of `{app}` must be at least 1"),
            );
        }
        if let Some(hb) = &pg.heartbeat {
            if !is_table_name(&hb.table) {
                return fail(
                    "postgres",
                    &pg.name,
                    format!(
                        "heartbeat table {:?} must be a name like vitals_heartbeat or schema.table (letters, digits, _)",
                        hb.table
                    ),
                );
            }
        }
    }
    for pgb in &config.sources.pgbouncer {
        if pgb.password_file.is_some() && pgb.password_env.is_some() {
            return fail(
                "pgbouncer",
                &pgb.name,
                "set password_file or password_env, not both".into(),
            );
        }
        match crate::collectors::postgres::parse_dsn(pgb.dsn.expose()) {
            Err(e) => return fail("pgbouncer", &pgb.name, e),
            Ok(dsn) => {
                if let Some(db) = dsn.get_dbname().filter(|db| *db != "pgbouncer") {
                    return fail(
                        "pgbouncer",
                        &pgb.name,
                        format!("dbname must be pgbouncer (the admin console), not {db:?}"),
                    );
                }
            }
        }
        if pgb.timeout.as_std().is_zero() {
            return fail("pgbouncer", &pgb.name, "timeout must be above 0".into());
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
/// warning <= critical.
pub fn check_levels(check: &CheckConfig) -> Result<(), String> {
    if check.warning.is_none() && check.critical.is_none() {
        return Err("needs a warning or a critical level (or both)".into());
    }
    for (name, level) in [("warning", check.warning), ("critical", check.critical)] {
        if level.is_some_and(|v| !v.is_finite()) {
            return Err(format!("{name} level must be a finite number"));
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
            return Err(format!(
                "warning {w} is beyond critical {c} for direction {dir}; warning must be reached first"
            ));
        }
    }
    Ok(())
}

fn unique_names<'a>(
    text: &str,
    key: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), Invalid> {
    let mut seen = BTreeSet::new();
    for name in names {
        if name.trim().is_empty() {
            let (line, column) = locate(text, key.rsplit('.').next().unwrap_or(key));
            return Err((line, column, format!("{key}: name must not be empty")));
        }
        if !seen.insert(name) {
            let (line, column) = locate_nth(text, &format!("name: {name}"), 1);
            return Err((
                line,
                column,
                format!(
                    "{key}: name `{name}` is used twice; names become labels and must be unique"
                ),
            ));
        }
    }
    Ok(())
}

/// 1-based position of the first occurrence of `needle`, or 1:1.
pub(super) fn locate(text: &str, needle: &str) -> (u64, u64) {
    locate_nth(text, needle, 0)
}

fn locate_nth(text: &str, needle: &str, nth: usize) -> (u64, u64) {
    let mut seen = 0;
    for (i, line) in text.lines().enumerate() {
        if let Some(col) = line.find(needle) {
            if seen == nth {
                return (i as u64 + 1, col as u64 + 1);
            }
            seen += 1;
        }
    }
    (1, 1)
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;

    #[test]
    fn warning_beyond_critical_points_at_the_check() {
        let text = "checks:\n  - name: lag\n    metric: vitals_pg_replication_lag_seconds\n    warning: 5\n    critical: 1\n";
        let e = parse_str(text, "c.yaml").unwrap_err();
        assert_eq!((e.line, e.column), (2, 5));
        assert!(
            e.message.contains("warning 5 is beyond critical 1"),
            "{}",
            e.message
        );
    }

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
    fn bad_selector_points_at_the_check() {
        let text = "checks:\n  - name: ok\n    metric: vitals_host_load1\n    warning: 1\n  - name: lag\n    metric: 'vitals_pg_replication_lag_seconds{target=replica}'\n    critical: 5\n";
        let e = parse_str(text, "c.yaml").unwrap_err();
        assert_eq!((e.line, e.column), (5, 5));
        assert_eq!(
            e.message,
            "check `lag`: invalid selector \"vitals_pg_replication_lag_seconds{target=replica}\" at character 42: expected a quoted string, found `r`"
        );
    }

    #[test]
    fn https_probe_and_bad_expected_status_are_refused() {
        let text =
            "sources:\n  http_probes:\n    - name: app\n      url: https://127.0.0.1:8443/health\n";
        let e = parse_str(text, "c.yaml").unwrap_err();
        assert_eq!((e.line, e.column), (4, 12));
        assert!(
            e.message
                .starts_with("sources.http_probes `app`: probe URL"),
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
        assert!(e.message.contains("expect_status 42"), "{}", e.message);
        let text = "sources:\n  http_probes:\n    - {name: app, url: \"http://127.0.0.1:8080/\", timeout: 0s}\n";
        let e = parse_str(text, "c.yaml").unwrap_err();
        assert!(
            e.message.ends_with("timeout must be above 0"),
            "{}",
            e.message
        );
        let ok = "sources:\n  http_probes:\n    - {name: app, url: \"http://127.0.0.1:8080/health\", timeout: 1s}\n";
        assert!(parse_str(ok, "c.yaml").is_ok());
    }

    #[test]
    fn duplicate_target_names_are_refused_at_the_second() {
        let text =
            "sources:\n  postgres:\n    - name: a\n      dsn: x\n    - name: a\n      dsn: y\n";
        let e = parse_str(text, "c.yaml").unwrap_err();
        assert_eq!((e.line, e.column), (5, 7));
        assert!(e.message.contains("used twice"));
    }

    #[test]
    fn invalid_dsn_points_at_the_target_and_hides_the_dsn() {
        let text = "sources:\n  postgres:\n    - name: main\n      dsn: \"host=127.0.0.1 password=hunter2hunter2 port=x\"\n";
        let e = parse_str(text, "c.yaml").unwrap_err();
        assert_eq!((e.line, e.column), (3, 7));
        assert!(
            e.message.contains("sources.postgres `main`: invalid dsn"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("hunter2"), "{}", e.message);
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
