//! The README's numbers against the code: the built-in checks table is
//! generated from `checks::defaults`, the timeouts of the configuration
//! reference are the config's defaults.

use super::*;
use vitals::checks::rules::{figure, in_unit};

const TABLE_BEGIN: &str = "<!-- The table below is generated from checks::defaults; VITALS_UPDATE_DOCS=1 cargo test --test assets rewrites it. -->\n";
const TABLE_END: &str = "<!-- End of the generated table. -->\n";

/// The built-in checks as a README table.
fn built_in_table() -> String {
    let config = vitals::checks::resolve::parse_str("{}\n", "t.yaml").unwrap();
    let mut out = String::from(
        "| name | figure | direction | warning / critical | for | clear_for | hysteresis |\n|---|---|---|---|---|---|---|\n",
    );
    for check in vitals::checks::effective_checks(&config) {
        let c = &check.config;
        let unit = vitals::checks::history::unit(c);
        let level = |l: Option<f64>| l.map_or_else(|| "–".to_owned(), |l| in_unit(l, unit));
        let dur = |d: std::time::Duration| {
            if d.is_zero() {
                "–".to_owned()
            } else {
                vitals::config::Duration(d).to_string()
            }
        };
        let band = match c.hysteresis {
            None => "–".to_owned(),
            Some(vitals::config::Band::Percent(p)) => format!("{p}% of the level"),
            Some(vitals::config::Band::Absolute(b)) => in_unit(b, unit),
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} / {} | {} | {} | {} |\n",
            c.name,
            figure(c),
            match c.direction {
                vitals::config::Direction::Above => "above",
                vitals::config::Direction::Below => "below",
            },
            level(c.warning),
            level(c.critical),
            dur(check.levels().for_),
            dur(check.clear_for()),
            band
        ));
    }
    out
}

/// Issue 28: the built-in checks table was split in two, half of it under
/// another heading. It is one table, written from the code.
#[test]
fn readme_built_in_checks_table_is_the_code() {
    let path = repo().join("README.md");
    let text = read(&path);
    let (Some(b), Some(e)) = (text.find(TABLE_BEGIN), text.find(TABLE_END)) else {
        panic!("README.md lacks the generated table's markers");
    };
    let fresh = format!(
        "{}{TABLE_BEGIN}{}{TABLE_END}{}",
        &text[..b],
        built_in_table(),
        &text[e + TABLE_END.len()..]
    );
    if std::env::var_os("VITALS_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    assert!(
        fresh == text,
        "README.md's built-in checks table is not checks::defaults'; run VITALS_UPDATE_DOCS=1 cargo test --test assets readme_built_in"
    );
    // Every built-in check is in it once, and in no other table.
    for d in vitals::checks::defaults::default_checks() {
        assert_eq!(
            text.matches(&format!("| `{}` |", d.name)).count(),
            1,
            "{}",
            d.name
        );
    }
}

/// The section of the README under `heading`, up to the next heading.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading}"));
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    &rest[..end]
}

/// The default a reference table gives `key`.
fn default_of(section: &str, key: &str) -> String {
    let row = section
        .lines()
        .find(|l| l.starts_with(&format!("| `{key}` |")))
        .unwrap_or_else(|| panic!("no row {key}"));
    row.split('|')
        .nth(2)
        .unwrap()
        .trim()
        .trim_matches('`')
        .to_owned()
}

/// Issue 28: `/status` showed 3 s and 6 s where the README said 2 s and
/// 5 s. The README's defaults are the config's, and what it says of the
/// round's bound is what the scheduler uses.
#[test]
fn readme_timeouts_are_the_code() {
    let text = read(&repo().join("README.md"));
    let config = vitals::checks::resolve::parse_str(
        "sources:\n  postgres: [{name: p, dsn: 'host=127.0.0.1'}]\n  pgbouncer: [{name: b, dsn: 'host=127.0.0.1 dbname=pgbouncer'}]\n  http_probes: [{name: h, url: 'http://127.0.0.1:1/'}]\n  redis: [{name: r, address: '127.0.0.1:6379'}]\n  app_metrics: [{name: a, url: 'http://127.0.0.1:1/metrics'}]\n",
        "t.yaml",
    )
    .unwrap();
    let s = &config.sources;
    for (heading, key, value) in [
        ("### PostgreSQL targets", "timeout", s.postgres[0].timeout),
        ("### HTTP probes", "timeout", s.http_probes[0].timeout),
        ("### Redis targets", "timeout", s.redis[0].timeout),
        (
            "### Application metrics (`sources.app_metrics[]`)",
            "timeout",
            s.app_metrics[0].timeout,
        ),
        ("### HTTP probes", "window", s.http_probes[0].window),
        (
            "### PostgreSQL targets",
            "catalog_interval",
            s.postgres[0].catalog_interval,
        ),
    ] {
        let written = default_of(section(&text, heading), key);
        assert_eq!(
            vitals::config::parse_duration(&written).map(|d| d.as_secs_f64()),
            Ok(value.as_secs_f64()),
            "{heading} {key}: README {written}"
        );
    }
    // The probe and app rounds are bounded at timeout + 1 s, as the README says.
    let scheduled = vitals::collectors::build(&config);
    for (id, own, heading) in [
        ("probe/h", s.http_probes[0].timeout, "### HTTP probes"),
        (
            "app/a",
            s.app_metrics[0].timeout,
            "### Application metrics (`sources.app_metrics[]`)",
        ),
    ] {
        let bound = scheduled.iter().find(|x| x.id == id).unwrap().timeout;
        assert_eq!(bound.as_secs_f64() - own.as_secs_f64(), 1.0, "{id}");
        assert!(
            section(&text, heading).contains("bounded at `timeout` + 1 s"),
            "{heading}"
        );
    }
    // The global interval and the check timings the Checks section states.
    assert_eq!(config.interval.to_string(), "5s");
    assert!(text.contains("default 5 s) with a timeout"));
    let checks = section(&text, "## Checks");
    assert!(checks.contains(&format!(
        "instance's state for {}",
        vitals::config::Duration(vitals::checks::SERIES_GRACE)
    )));
    assert!(checks.contains(&format!(
        "forgotten\n  after {} minutes",
        vitals::checks::UNKNOWN_RETENTION.as_secs() / 60
    )));
}
