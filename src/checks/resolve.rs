//! The checks' part of loading a config (run by `check-config`, at start
//! and on reload, between parsing and validation; see
//! [`crate::config::Resolve`]):
//!
//! - a configured check named like a built-in one changes only the keys it
//!   gives (`{name: replica_lag, warning: 2}`);
//! - every selector naming a `vitals_*` family must name one of the catalog
//!   (`collectors::catalog()`) that a source emits, with labels that family
//!   has; a typo is refused with a did-you-mean, so a check cannot stay
//!   unknown forever;
//! - a selector on another name is the application's, and [`app_notes`]
//!   says which `app_metrics` source it is expected from.

use super::{app_defaults, defaults};
use crate::collectors;
use crate::config::{did_you_mean, CheckConfig, Config, KeyProblem, Selector};
use crate::metrics::Desc;

/// Labels a source adds to its families beyond the catalog's: the cgroup
/// source labels every series with `container` when it watches several
/// (`target: {container: auto}`).
fn added_labels(family: &str) -> &'static [&'static str] {
    if family.starts_with("vitals_cgroup_") {
        &["container"]
    } else {
        &[]
    }
}

/// Families the agent exports about itself (sources, checks, push): on
/// `/metrics`, but not in any source's round, so no check can read them.
fn agent_own(name: &str) -> bool {
    [
        crate::runtime::METRICS,
        super::METRICS,
        crate::remote_write::METRICS,
    ]
    .iter()
    .any(|t| t.iter().any(|d| d.name == name))
}

/// The built-in checks a configured one may change: the defaults and the
/// application defaults under `config`.
fn templates(config: &Config) -> Vec<CheckConfig> {
    defaults::default_checks()
        .into_iter()
        .chain(app_defaults::checks(config))
        .collect()
}

/// Resolves overrides of built-in checks and looks every check selector up
/// in the catalog; see the module documentation.
pub fn resolve(config: &mut Config) -> Result<(), KeyProblem> {
    let templates = templates(config);
    for (i, spanned) in config.checks.iter_mut().enumerate() {
        let c = &mut spanned.value;
        match templates.iter().find(|t| t.name == c.name) {
            Some(t) => *c = t.overridden_by(c),
            None if !c.names_a_figure() => {
                let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
                let hint = did_you_mean(&c.name, &names)
                    .map(|n| format!("; did you mean the built-in check `{n}`?"))
                    .unwrap_or_else(|| {
                        "; give one of metric, rate, ratio, quantile, trend, or the name of a built-in check to change".to_owned()
                    });
                return Err(KeyProblem {
                    path: format!("checks[{i}].name"),
                    message: format!(
                        "check `{}` names no figure and no built-in check is called so{hint}",
                        c.name
                    ),
                });
            }
            None => {}
        }
    }
    for (i, spanned) in config.checks.iter().enumerate() {
        let c = &spanned.value;
        for (key, selector) in selectors(c) {
            check_selector(config, selector).map_err(|message| KeyProblem {
                path: format!("checks[{i}].{key}"),
                message: format!("check `{}`: {message}", c.name),
            })?;
        }
    }
    Ok(())
}

/// Every selector a check names, with its key.
pub fn selectors(c: &CheckConfig) -> Vec<(&'static str, &Selector)> {
    let mut list = Vec::new();
    if let Some(m) = &c.metric {
        list.push(("metric", m));
    }
    if let Some(r) = &c.rate {
        list.push(("rate.metric", &r.metric));
    }
    if let Some(r) = &c.ratio {
        list.push(("ratio.numerator", &r.numerator));
        list.push(("ratio.denominator", &r.denominator));
    }
    if let Some(q) = &c.quantile {
        list.push(("quantile.histogram", &q.histogram));
    }
    if let Some(t) = &c.trend {
        list.push(("trend.metric", &t.metric));
        if let Some(l) = &t.limit {
            list.push(("trend.limit", l));
        }
    }
    list
}

/// The catalog families a check can read (those a source emits).
fn readable() -> Vec<&'static Desc> {
    collectors::catalog()
        .into_iter()
        .filter(|d| d.name.starts_with("vitals_") && !agent_own(d.name))
        .collect()
}

/// Why `selector` can never match, if it cannot.
fn check_selector(config: &Config, selector: &Selector) -> Result<(), String> {
    let name = selector.metric.as_str();
    if !name.starts_with("vitals_") {
        return check_app_selector(config, selector);
    }
    if agent_own(name) {
        return Err(format!(
            "`{name}` is the agent's own figure (about its sources, checks or push), which checks do not read; checks read what the sources sample"
        ));
    }
    let families = readable();
    let Some(desc) = families.iter().find(|d| d.name == name) else {
        let names: Vec<&str> = families.iter().map(|d| d.name).collect();
        let hint = did_you_mean(name, &names)
            .map(|n| format!("; did you mean `{n}`?"))
            .unwrap_or_default();
        return Err(format!(
            "`{name}` is not a metric vitals exports (see the README metric reference){hint}"
        ));
    };
    let labels: Vec<&str> = desc
        .labels
        .iter()
        .chain(added_labels(name))
        .copied()
        .collect();
    for m in &selector.matchers {
        if !labels.contains(&m.label.as_str()) {
            let hint = did_you_mean(&m.label, &labels)
                .map(|l| format!("; did you mean `{l}`?"))
                .unwrap_or_default();
            let has = if labels.is_empty() {
                "no labels".to_owned()
            } else {
                format!("the labels {}", labels.join(", "))
            };
            return Err(format!(
                "`{name}` has no label `{}` (it has {has}){hint}",
                m.label
            ));
        }
    }
    Ok(())
}

/// An application family: a matcher `app="x"` must name an app source.
fn check_app_selector(config: &Config, selector: &Selector) -> Result<(), String> {
    let apps: Vec<&str> = config
        .sources
        .app_metrics
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    for m in &selector.matchers {
        if m.label == "app"
            && m.op == crate::config::selector::MatchOp::Equal
            && !apps.contains(&m.value.as_str())
        {
            let hint = did_you_mean(&m.value, &apps)
                .map(|a| format!("; did you mean `{a}`?"))
                .unwrap_or_default();
            return Err(format!(
                "`{}` selects app=\"{}\", but no sources.app_metrics entry is called so{hint}",
                selector.metric, m.value
            ));
        }
    }
    Ok(())
}

/// One line per configured check reading an application's series: which
/// `app_metrics` source it expects them from (or that none is configured,
/// so it stays unknown), and whether they are exported for Prometheus.
pub fn app_notes(config: &Config) -> Vec<String> {
    let apps = &config.sources.app_metrics;
    let mut notes = Vec::new();
    for c in config.checks.iter().map(|c| &c.value) {
        for (key, s) in selectors(c) {
            if s.metric.starts_with("vitals_") {
                continue;
            }
            let named = s
                .matchers
                .iter()
                .find(|m| m.label == "app" && m.op == crate::config::selector::MatchOp::Equal)
                .map(|m| m.value.as_str());
            let from: Vec<&str> = apps
                .iter()
                .map(|a| a.name.as_str())
                .filter(|a| named.map_or(true, |n| n == *a))
                .collect();
            notes.push(if from.is_empty() {
                format!(
                    "check `{}` {key} `{}` is an application metric, but no sources.app_metrics is configured: it will stay unknown",
                    c.name, s.metric
                )
            } else {
                format!(
                    "check `{}` {key} `{}` is an application metric, expected from app source {}",
                    c.name,
                    s.metric,
                    from.iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )
            });
        }
    }
    notes
}

/// Parses config text the way the daemon does (with [`resolve`]).
pub fn parse_str(text: &str, file: &str) -> Result<Config, crate::config::ConfigError> {
    crate::config::parse_str_with(text, file, &resolve)
}

/// Reads a config file the way the daemon does (with [`resolve`]).
pub fn load_file(path: &std::path::Path) -> Result<Config, crate::config::ConfigError> {
    crate::config::load_file_with(path, &resolve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse_str(text, "v.yaml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    fn ok(text: &str) -> Config {
        parse_str(text, "v.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn check<'a>(config: &'a Config, name: &str) -> &'a CheckConfig {
        &config
            .checks
            .iter()
            .find(|c| c.value.name == name)
            .unwrap_or_else(|| panic!("no check {name}"))
            .value
    }

    #[test]
    fn a_misspelt_family_is_refused_at_its_key_with_a_suggestion_in_both_styles() {
        let block = "checks:\n  - name: lag\n    metric: vitals_pg_replication_lag_second\n    warning: 1\n";
        assert_eq!(
            err(block),
            "v.yaml:3:13: key `checks[0].metric`: check `lag`: `vitals_pg_replication_lag_second` is not a metric vitals exports (see the README metric reference); did you mean `vitals_pg_replication_lag_seconds`?"
        );
        let flow = "checks:\n  - {name: a, metric: vitals_host_load1, warning: 9}\n  - {name: lag, rate: {metric: vitals_pg_xact_rolback_total}, warning: 1}\n";
        let e = err(flow);
        assert!(
            e.starts_with("v.yaml:3:") && e.contains("key `checks[1].rate.metric`"),
            "{e}"
        );
        // Far from every name: no suggestion, still refused.
        let e = err("checks:\n  - {name: x, metric: vitals_nothing_like_it, warning: 1}\n");
        assert!(e.contains("is not a metric vitals exports") && !e.contains("did you mean"));
    }

    #[test]
    fn a_label_the_family_lacks_is_refused_and_runtime_added_labels_are_accepted() {
        let e = err(
            "checks:\n  - name: lag\n    metric: 'vitals_pg_replication_lag_seconds{targt=\"replica\"}'\n    warning: 1\n",
        );
        assert!(e.starts_with("v.yaml:3:13: key `checks[0].metric`"), "{e}");
        assert!(
            e.ends_with("has no label `targt` (it has the labels target); did you mean `target`?"),
            "{e}"
        );
        // `container` is added by the cgroup source in container mode.
        let c = ok("checks:\n  - {name: m, metric: 'vitals_cgroup_memory_limit_utilization_ratio{container=\"app\"}', warning: 0.5}\n");
        assert_eq!(check(&c, "m").warning, Some(0.5));
        // The agent's own families are not in any source's round.
        let e = err("checks:\n  - {name: s, metric: vitals_source_success, direction: below, critical: 1}\n");
        assert!(e.contains("the agent's own figure"), "{e}");
    }

    #[test]
    fn an_app_family_is_accepted_and_named_with_its_source() {
        let c = ok(
            "sources:\n  app_metrics:\n    - {name: api, url: 'http://127.0.0.1:9/metrics'}\n    - {name: web, url: 'http://127.0.0.1:8/metrics'}\nchecks:\n  - {name: q, metric: 'jobs{app=\"web\"}', warning: 10}\n  - {name: all, metric: jobs, warning: 10}\n",
        );
        assert_eq!(
            app_notes(&c),
            [
                "check `q` metric `jobs` is an application metric, expected from app source `web`",
                "check `all` metric `jobs` is an application metric, expected from app source `api` or `web`",
            ]
        );
        let e = err(
            "sources:\n  app_metrics:\n    - {name: api, url: 'http://127.0.0.1:9/metrics'}\nchecks:\n  - {name: q, metric: 'jobs{app=\"apo\"}', warning: 10}\n",
        );
        assert!(
            e.contains("key `checks[0].metric`") && e.ends_with("did you mean `api`?"),
            "{e}"
        );
        let none = ok("checks:\n  - {name: q, metric: jobs, warning: 10}\n");
        assert!(app_notes(&none)[0]
            .ends_with("no sources.app_metrics is configured: it will stay unknown"));
    }

    #[test]
    fn overriding_a_default_changes_only_the_keys_given() {
        let c = ok("checks:\n  - {name: replica_lag, warning: 2}\n  - {name: pg_pool, readiness: true, for: 5m}\n");
        let lag = check(&c, "replica_lag");
        let builtin = defaults::default_checks()
            .into_iter()
            .find(|d| d.name == "replica_lag")
            .unwrap();
        assert_eq!(lag.warning, Some(2.0));
        assert_eq!(lag.critical, builtin.critical);
        assert_eq!(lag.for_, builtin.for_);
        assert_eq!(lag.hysteresis, builtin.hysteresis);
        assert_eq!(lag.selector(), builtin.selector());
        assert!(!lag.readiness);
        let pool = check(&c, "pg_pool");
        assert!(pool.readiness);
        assert_eq!(pool.for_.map(|d| d.as_secs_f64()), Some(300.0));
        assert_eq!((pool.warning, pool.critical), (Some(0.8), Some(0.95)));
        // A metric given replaces the figure; the levels stay the built-in ones.
        let c = ok("checks:\n  - name: replica_lag\n    metric: 'vitals_pg_replication_lag_seconds{target=\"replica\"}'\n    readiness: true\n");
        let lag = check(&c, "replica_lag");
        assert_eq!(
            lag.selector().to_string(),
            "vitals_pg_replication_lag_seconds{target=\"replica\"}"
        );
        assert_eq!((lag.warning, lag.critical), (Some(1.0), Some(5.0)));
        // In effect in the default's place, once.
        let effective = crate::checks::effective_checks(&c);
        assert_eq!(
            effective
                .iter()
                .filter(|e| e.config.name == "replica_lag")
                .count(),
            1
        );
        // Application defaults can be changed the same way.
        let c = ok("sources:\n  app_metrics:\n    - {name: api, url: 'http://127.0.0.1:9/metrics'}\nchecks:\n  - {name: app_latency_p95, critical: 2}\n");
        let p95 = check(&c, "app_latency_p95");
        assert_eq!((p95.warning, p95.critical), (Some(1.0), Some(2.0)));
        assert!(p95.quantile.is_some());
        // Levels out of order after the merge are refused at the key given.
        let e = err("checks:\n  - {name: replica_lag, warning: 9}\n");
        assert!(
            e.contains("key `checks[0].warning`") && e.contains("beyond critical 5"),
            "{e}"
        );
        let e = err("checks:\n  - {name: replica_lga, warning: 3}\n");
        assert!(
            e.starts_with("v.yaml:2:12: key `checks[0].name`")
                && e.ends_with("did you mean the built-in check `replica_lag`?"),
            "{e}"
        );
    }

    #[test]
    fn percent_levels_are_shares_of_ratio_families_only() {
        let c = ok("checks:\n  - {name: pgbouncer_pool, warning: 70%, critical: '90 %'}\n  - {name: errs, ratio: {numerator: 'a_total{code=~\"5..\"}', denominator: a_total}, warning: 5%}\n");
        let pool = check(&c, "pgbouncer_pool");
        assert_eq!((pool.warning, pool.critical), (Some(0.7), Some(0.9)));
        assert_eq!(check(&c, "errs").warning, Some(0.05));
        let e = err("checks:\n  - {name: replica_lag, warning: 80%}\n");
        assert!(
            e.starts_with("v.yaml:2:34: key `checks[0].warning`")
                && e.contains("`vitals_pg_replication_lag_seconds` is not a ratio"),
            "{e}"
        );
        let e = err("checks:\n  - {name: replica_lag, warning: 8O}\n");
        assert!(e.contains("invalid level \"8O\""), "{e}");
    }
}
