//! Checks: warning/critical thresholds evaluated inside the agent.
//!
//! A check names a series selector ([`selector`]); every series that matches
//! it is an *instance* with its own state machine ([`state`]) and keeps the
//! series' labels. [`CheckEngine::evaluate`] is pure: the runtime passes the
//! latest output of every source and the time, and gets back the
//! `vitals_check_*` families and the state changes to log. The built-in
//! checks are in [`defaults`]; [`rules`] prints equivalent Prometheus rules.
//!
//! | file          | what                                                  |
//! |---------------|-------------------------------------------------------|
//! | `selector.rs` | PromQL-style selector parsing and matching            |
//! | `state.rs`    | one instance's state machine: levels, hysteresis, for |
//! | `defaults.rs` | the built-in checks                                   |
//! | `rules.rs`    | `vitals rules`: the checks as Prometheus alert rules  |
//!
//! Label names `check`, `severity` and `to` belong to the `vitals_check_*`
//! families; an instance label with one of those names is exported as
//! `exported_<name>` (Prometheus' own convention for clashing target labels),
//! with more `exported_` prefixes until it is unique. `/status` shows the
//! labels unchanged.

pub mod app_defaults;
pub mod compute;
pub mod defaults;
pub mod derived;
pub mod history;
pub mod rules;
pub mod selector;
pub mod state;

pub use selector::{Selector, SelectorError};
pub use state::{Levels, Machine, State};

use crate::config::{CheckConfig, Config, Direction};
use crate::metrics::Output;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An instance that has been unknown this long (its series gone, its source
/// failing) is forgotten, so vanished series do not accumulate.
pub const UNKNOWN_RETENTION: Duration = Duration::from_secs(600);

/// Label names the `vitals_check_*` families use themselves.
pub const RESERVED_LABELS: [&str; 3] = ["check", "severity", "to"];

/// Every metric name vitals exports, for the load-time warning about a check
/// naming a metric nothing produces. Keep in step with the collectors.
pub const KNOWN_METRICS: &[&str] = &[
    // host
    "vitals_host_boot_time_seconds",
    "vitals_host_cpu_seconds_total",
    "vitals_host_load1",
    "vitals_host_load5",
    "vitals_host_load15",
    "vitals_host_memory_total_bytes",
    "vitals_host_memory_available_bytes",
    "vitals_host_pressure_cpu_some_seconds_total",
    "vitals_host_pressure_cpu_full_seconds_total",
    "vitals_host_pressure_memory_some_seconds_total",
    "vitals_host_pressure_memory_full_seconds_total",
    "vitals_host_pressure_io_some_seconds_total",
    "vitals_host_pressure_io_full_seconds_total",
    "vitals_host_uptime_seconds",
    // cgroup
    "vitals_cgroup_info",
    "vitals_cgroup_limit_source",
    "vitals_cgroup_cpu_usage_seconds_total",
    "vitals_cgroup_cpu_limit_cores",
    "vitals_cgroup_cpu_limit_utilization_ratio",
    "vitals_cgroup_cpu_periods_total",
    "vitals_cgroup_cpu_throttled_periods_total",
    "vitals_cgroup_cpu_throttled_seconds_total",
    "vitals_cgroup_cpu_throttled_ratio",
    "vitals_cgroup_memory_usage_bytes",
    "vitals_cgroup_memory_working_set_bytes",
    "vitals_cgroup_memory_rss_bytes",
    "vitals_cgroup_memory_limit_bytes",
    "vitals_cgroup_memory_limit_utilization_ratio",
    "vitals_cgroup_memory_oom_events_total",
    "vitals_cgroup_memory_oom_kills_total",
    "vitals_cgroup_pids_current",
    "vitals_cgroup_pids_limit",
    "vitals_cgroup_pressure_cpu_some_seconds_total",
    "vitals_cgroup_pressure_cpu_full_seconds_total",
    "vitals_cgroup_pressure_memory_some_seconds_total",
    "vitals_cgroup_pressure_memory_full_seconds_total",
    "vitals_cgroup_pressure_io_some_seconds_total",
    "vitals_cgroup_pressure_io_full_seconds_total",
    // process
    "vitals_process_count",
    "vitals_process_cpu_seconds_total",
    "vitals_process_max_fds",
    "vitals_process_open_fds",
    "vitals_process_resident_memory_bytes",
    "vitals_process_start_time_seconds",
    "vitals_process_threads",
    "vitals_process_up",
    // postgres
    "vitals_pg_up",
    "vitals_pg_info",
    "vitals_pg_in_recovery",
    "vitals_pg_connections",
    "vitals_pg_connections_by_application",
    "vitals_pg_max_connections",
    "vitals_pg_reserved_connections",
    "vitals_pg_connection_utilization_ratio",
    "vitals_pg_pool_utilization_ratio",
    "vitals_pg_idle_in_transaction_max_seconds",
    "vitals_pg_longest_query_seconds",
    "vitals_pg_lock_waiters",
    "vitals_pg_probe_seconds",
    "vitals_pg_replication_lag_seconds",
    "vitals_pg_replication_lag_bytes",
    "vitals_pg_replication_stream_up",
    "vitals_pg_replication_last_message_age_seconds",
    "vitals_pg_standby_write_lag_seconds",
    "vitals_pg_standby_flush_lag_seconds",
    "vitals_pg_standby_replay_lag_seconds",
    "vitals_pg_standby_replay_lag_bytes",
    "vitals_pg_slot_active",
    "vitals_pg_slot_retained_bytes",
    "vitals_pg_heartbeat_lag_seconds",
    // pgbouncer
    "vitals_pgbouncer_up",
    "vitals_pgbouncer_pool_clients",
    "vitals_pgbouncer_pool_servers",
    "vitals_pgbouncer_pool_maxwait_seconds",
    "vitals_pgbouncer_pool_size",
    "vitals_pgbouncer_pool_utilization_ratio",
    "vitals_pgbouncer_pool_info",
    "vitals_pgbouncer_database_current_connections",
    "vitals_pgbouncer_database_max_connections",
    "vitals_pgbouncer_database_paused",
    "vitals_pgbouncer_database_disabled",
    "vitals_pgbouncer_client_wait_seconds_total",
    "vitals_pgbouncer_queries_total",
    "vitals_pgbouncer_query_seconds_total",
    "vitals_pgbouncer_transactions_total",
    "vitals_pgbouncer_transaction_seconds_total",
    "vitals_pgbouncer_received_bytes_total",
    "vitals_pgbouncer_sent_bytes_total",
    // http probe
    "vitals_probe_up",
    "vitals_probe_status_code",
    "vitals_probe_duration_seconds",
    "vitals_probe_error_ratio",
    // the agent
    "vitals_source_success",
    "vitals_source_duration_seconds",
    "vitals_source_last_success_timestamp_seconds",
    "vitals_source_errors_total",
    "vitals_config_last_reload_success",
];

/// Where an effective check comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The built-in set.
    Default,
    /// The `checks` list of the config file.
    Configured,
}

/// A check as it is evaluated: its config, where it came from, its parsed
/// selector.
#[derive(Clone, Debug)]
pub struct Check {
    pub config: CheckConfig,
    pub origin: Origin,
    pub selector: Selector,
}

impl Check {
    pub fn levels(&self) -> Levels {
        Levels {
            direction: self.config.direction,
            warning: self.config.warning,
            critical: self.config.critical,
            hysteresis: self.config.hysteresis,
            for_: self.config.for_.map(|d| d.as_std()).unwrap_or_default(),
        }
    }
}

/// The checks in effect: the defaults (unless `default_checks: false`) with
/// configured checks of the same name in their place, then the other
/// configured checks in file order. A check whose selector does not parse
/// (impossible after config validation) is left out with an error log.
pub fn effective_checks(config: &Config) -> Vec<Check> {
    let configured: Vec<&CheckConfig> = config.checks.iter().map(|c| &c.value).collect();
    let mut list: Vec<(CheckConfig, Origin)> = Vec::new();
    if config.default_checks {
        for d in defaults::default_checks()
            .into_iter()
            .chain(app_defaults::checks(config))
        {
            match configured.iter().find(|c| c.name == d.name) {
                Some(c) => list.push(((*c).clone(), Origin::Configured)),
                None => list.push((d, Origin::Default)),
            }
        }
    }
    for c in configured {
        if !list.iter().any(|(l, _)| l.name == c.name) {
            list.push((c.clone(), Origin::Configured));
        }
    }
    list.into_iter()
        .filter_map(
            |(config, origin)| match Selector::parse(derived::primary_selector(&config)) {
                Ok(selector) => Some(Check {
                    config,
                    origin,
                    selector,
                }),
                Err(e) => {
                    tracing::error!(check = %config.name, "check left out: {e}");
                    None
                }
            },
        )
        .collect()
}

/// A configured check naming a metric vitals does not export: worth a
/// warning at load, not an error (it may come from a newer version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownMetric {
    pub check: String,
    pub metric: String,
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for UnknownMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: check `{}` names metric `{}`, which vitals does not export; it will stay unknown",
            self.line, self.column, self.check, self.metric
        )
    }
}

/// The configured checks whose metric is not one vitals exports.
pub fn unknown_metrics(config: &Config) -> Vec<UnknownMetric> {
    config
        .checks
        .iter()
        .filter_map(|c| {
            let selector = Selector::parse(&c.value.metric).ok()?;
            // With an app_metrics source, any other name may be the app's.
            let app_may_have_it =
                !config.sources.app_metrics.is_empty() && !selector.metric.starts_with("vitals_");
            let known = KNOWN_METRICS.contains(&selector.metric.as_str())
                || crate::collectors::catalog()
                    .iter()
                    .any(|d| d.name == selector.metric);
            (!known && !app_may_have_it).then(|| UnknownMetric {
                check: c.value.name.clone(),
                metric: selector.metric,
                line: c.referenced.line(),
                column: c.referenced.column(),
            })
        })
        .collect()
}

/// The time of an evaluation: monotonic for `for` and retention, wall clock
/// for the `since` shown in `/status`.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub instant: Instant,
    /// Seconds since the Unix epoch.
    pub unix: f64,
}

impl Now {
    pub fn system() -> Self {
        Now {
            instant: Instant::now(),
            unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        }
    }

    /// `secs` later, for tests and simulations.
    pub fn after(self, secs: f64) -> Self {
        Now {
            instant: self.instant + Duration::from_secs_f64(secs.max(0.0)),
            unix: self.unix + secs.max(0.0),
        }
    }
}

/// The latest round of one source, as the engine sees it.
#[derive(Clone, Copy, Debug)]
pub struct SourceRound<'a> {
    /// The source id (`cgroup`, `postgres/replica`, `probe/app`).
    pub source: &'a str,
    /// Its latest output.
    pub output: &'a Output,
    /// Whether its latest round failed: its instances are then unknown,
    /// even for series it wrote before failing.
    pub failed: bool,
}

/// Why an instance is unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reason {
    /// The series was seen before and is gone now.
    NoData,
    /// The source that produced the series failed its latest round.
    SourceFailed(String),
    /// A configured check that no series matches (yet).
    NoSeries,
    /// A derived check has no value yet (warming up, no traffic…).
    Derived(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoData => f.write_str("series gone"),
            Reason::SourceFailed(s) => write!(f, "source {s} failed"),
            Reason::NoSeries => f.write_str("no series matches the selector"),
            Reason::Derived(why) => f.write_str(why),
        }
    }
}

/// Series labels, sorted by name: the key of an instance.
type LabelSet = Vec<(String, String)>;

#[derive(Clone, Debug)]
struct Instance {
    machine: Machine,
    since_unix: f64,
    /// The source the series last came from.
    source: Option<String>,
    reason: Option<Reason>,
    /// Changes into each state, indexed by `State as usize`.
    transitions: [u64; 4],
    /// Stands for a configured check that matches nothing yet.
    placeholder: bool,
    /// Recent values, for the page's sparkline.
    recent: history::Recent,
}

impl Instance {
    fn new(now: Now) -> Self {
        Instance {
            machine: Machine::new(now.instant),
            since_unix: now.unix,
            source: None,
            reason: None,
            transitions: [0; 4],
            placeholder: false,
            recent: history::Recent::default(),
        }
    }
}

#[derive(Clone, Debug)]
struct Evaluated {
    check: Check,
    levels: Levels,
    instances: BTreeMap<LabelSet, Instance>,
    /// The kind and history of a `rate`/`ratio`/`quantile`/`trend` check.
    derived: Option<derived::Derived>,
}

/// One state change, returned by [`CheckEngine::evaluate`] for the caller to
/// log as one line.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub check: String,
    /// The instance's labels, sorted by name.
    pub labels: Vec<(String, String)>,
    pub from: State,
    pub to: State,
    pub value: Option<f64>,
    /// Why the new state is unknown, when it is.
    pub reason: Option<String>,
    pub readiness: bool,
}

impl Transition {
    /// `{target="replica"}`, the instance as written in PromQL.
    pub fn instance(&self) -> String {
        format_labels(&self.labels)
    }
}

/// `check=replica_lag instance={target="replica"} warning -> critical value=6.2`
impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "check={} instance={} {} -> {}",
            self.check,
            self.instance(),
            self.from,
            self.to
        )?;
        if let Some(v) = self.value {
            write!(f, " value={v}")?;
        }
        if let Some(r) = &self.reason {
            write!(f, " reason={}", selector::quote(r))?;
        }
        Ok(())
    }
}

fn format_labels(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", selector::quote(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// One instance, for `/status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceStatus {
    pub check: String,
    pub labels: BTreeMap<String, String>,
    pub state: State,
    pub value: Option<f64>,
    /// When the current state was entered, in seconds since the Unix epoch.
    pub since: f64,
    pub direction: &'static str,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub for_seconds: f64,
    pub readiness: bool,
    /// Why the state is unknown, when it is.
    pub reason: Option<String>,
    pub origin: Origin,
    pub description: Option<String>,
    pub runbook_url: Option<String>,
    /// How the page shows the value: `ratio`, `seconds`, `bytes`,
    /// `per_second`… (not in `/status`, whose values stay raw numbers).
    #[serde(skip)]
    pub unit: &'static str,
    /// Recent `(unix time, value)` pairs, oldest first, for the page.
    #[serde(skip)]
    pub recent: Vec<(f64, f64)>,
}

/// Every check instance and its state; see the module documentation.
#[derive(Clone, Debug)]
pub struct CheckEngine {
    checks: Vec<Evaluated>,
}

impl CheckEngine {
    /// The engine for the checks in effect under `config`.
    pub fn new(config: &Config) -> Self {
        CheckEngine {
            checks: effective_checks(config)
                .into_iter()
                .map(|check| Evaluated {
                    levels: check.levels(),
                    derived: derived::Kind::of(&check.config)
                        .ok()
                        .flatten()
                        .map(derived::Derived::new),
                    check,
                    instances: BTreeMap::new(),
                })
                .collect(),
        }
    }

    /// Applies a reloaded config, keeping the instances (state, since,
    /// transition counts) of every check whose name and selector did not
    /// change; new levels apply from the next evaluation.
    pub fn reload(&mut self, config: &Config) {
        let mut old: BTreeMap<String, Evaluated> = std::mem::take(&mut self.checks)
            .into_iter()
            .map(|e| (e.check.config.name.clone(), e))
            .collect();
        *self = CheckEngine::new(config);
        for e in &mut self.checks {
            if let Some(prev) = old.remove(&e.check.config.name) {
                let same_kind =
                    prev.derived.as_ref().map(|d| &d.kind) == e.derived.as_ref().map(|d| &d.kind);
                if prev.check.selector == e.check.selector && same_kind {
                    e.instances = prev.instances;
                    e.derived = prev.derived;
                }
            }
        }
    }

    /// The checks in effect.
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().map(|e| &e.check)
    }

    /// Evaluates every check against the latest round of every source.
    /// Returns the `vitals_check_*` families and the state changes.
    pub fn evaluate<'a>(
        &mut self,
        rounds: impl IntoIterator<Item = SourceRound<'a>>,
        now: Now,
    ) -> (Output, Vec<Transition>) {
        let rounds: Vec<SourceRound<'a>> = rounds.into_iter().collect();
        let failed: BTreeSet<&str> = rounds
            .iter()
            .filter(|r| r.failed)
            .map(|r| r.source)
            .collect();
        let mut transitions = Vec::new();
        for e in &mut self.checks {
            e.evaluate(&rounds, &failed, now, &mut transitions);
        }
        (self.output(), transitions)
    }

    /// Every instance, for `/status`.
    pub fn snapshot(&self) -> Vec<InstanceStatus> {
        let mut list = Vec::new();
        for e in &self.checks {
            let c = &e.check.config;
            for (labels, inst) in &e.instances {
                list.push(InstanceStatus {
                    check: c.name.clone(),
                    labels: labels.iter().cloned().collect(),
                    state: inst.machine.state(),
                    value: inst.machine.value(),
                    since: inst.since_unix,
                    direction: match c.direction {
                        Direction::Above => "above",
                        Direction::Below => "below",
                    },
                    warning: c.warning,
                    critical: c.critical,
                    for_seconds: e.levels.for_.as_secs_f64(),
                    readiness: c.readiness,
                    reason: (inst.machine.state() == State::Unknown)
                        .then(|| inst.reason.as_ref().map(ToString::to_string))
                        .flatten(),
                    origin: e.check.origin,
                    description: c.description.clone(),
                    runbook_url: c.runbook_url.clone(),
                    unit: history::unit(c),
                    recent: inst.recent.points(),
                });
            }
        }
        list
    }

    /// The readiness checks that are critical now, as `name{labels}`, for
    /// the body of a 503 from `/health/ready`. Empty means ready.
    pub fn failing_readiness(&self) -> Vec<String> {
        let mut failing = Vec::new();
        for e in self.checks.iter().filter(|e| e.check.config.readiness) {
            for (labels, inst) in &e.instances {
                if inst.machine.state() == State::Critical {
                    let name = &e.check.config.name;
                    failing.push(if labels.is_empty() {
                        name.clone()
                    } else {
                        format!("{name}{}", format_labels(labels))
                    });
                }
            }
        }
        failing
    }

    fn output(&self) -> Output {
        const STATUS: &str = "vitals_check_status";
        const VALUE: &str = "vitals_check_value";
        const THRESHOLD: &str = "vitals_check_threshold";
        const TRANSITIONS: &str = "vitals_check_transitions_total";
        const STATUS_HELP: &str = "State of each check instance, evaluated by vitals after the sampling rounds: 0 ok, 1 warning, 2 critical, 3 unknown (no data or its source failed).";
        const VALUE_HELP: &str = "Value of the checked series at the last evaluation, copied from the metric the check names; absent while unknown.";
        const THRESHOLD_HELP: &str = "Warning or critical level of each check instance, from the check's configuration or the built-in defaults.";
        const TRANSITIONS_HELP: &str = "State changes of each check instance since vitals started or the instance appeared, by the state entered.";
        let mut out = Output::new();
        for e in &self.checks {
            let name = e.check.config.name.as_str();
            for (labels, inst) in &e.instances {
                let exported = export_labels(labels);
                let mut base: Vec<(&str, &str)> = Vec::with_capacity(exported.len() + 2);
                base.push(("check", name));
                base.extend(exported.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let state = inst.machine.state();
                out.gauge(STATUS, STATUS_HELP, &base, state.code());
                if let Some(v) = inst.machine.value() {
                    out.gauge(VALUE, VALUE_HELP, &base, v);
                }
                for (severity, level) in [
                    ("warning", e.check.config.warning),
                    ("critical", e.check.config.critical),
                ] {
                    if let Some(level) = level {
                        let mut l = base.clone();
                        l.push(("severity", severity));
                        out.gauge(THRESHOLD, THRESHOLD_HELP, &l, level);
                    }
                }
                for to in State::ALL {
                    let mut l = base.clone();
                    l.push(("to", to.as_str()));
                    let count = inst.transitions.get(to as usize).copied().unwrap_or(0);
                    out.counter(TRANSITIONS, TRANSITIONS_HELP, &l, count as f64);
                }
            }
        }
        out
    }
}

impl Evaluated {
    fn evaluate(
        &mut self,
        rounds: &[SourceRound<'_>],
        failed: &BTreeSet<&str>,
        now: Now,
        transitions: &mut Vec<Transition>,
    ) {
        // The series this check selects, first source first; or the
        // values a derived check computes from them.
        let mut seen: BTreeMap<LabelSet, derived::Seen> = BTreeMap::new();
        if let Some(d) = &mut self.derived {
            seen = d.evaluate(rounds, failed, now.unix);
        } else {
            for round in rounds {
                let Some(family) = round.output.family(&self.check.selector.metric) else {
                    continue;
                };
                for sample in &family.samples {
                    if sample.suffix.is_empty() && self.check.selector.matches(&sample.labels) {
                        let mut key = sample.labels.clone();
                        key.sort();
                        seen.entry(key).or_insert_with(|| derived::Seen {
                            value: Some(sample.value),
                            source: round.source.to_owned(),
                            failed: round.failed,
                            why: None,
                        });
                    }
                }
            }
        }

        for (key, s) in &seen {
            let inst = self
                .instances
                .entry(key.clone())
                .or_insert_with(|| Instance::new(now));
            inst.placeholder = false;
            inst.source = Some(s.source.clone());
            let (value, reason) = if s.failed {
                (None, Some(Reason::SourceFailed(s.source.clone())))
            } else if s.value.is_none() {
                (None, s.why.clone().map(Reason::Derived))
            } else {
                (s.value, None)
            };
            observe(
                &self.check,
                &self.levels,
                key,
                inst,
                value,
                reason,
                now,
                transitions,
            );
        }

        for (key, inst) in &mut self.instances {
            if seen.contains_key(key) || inst.placeholder {
                continue;
            }
            let reason = match &inst.source {
                Some(s) if failed.contains(s.as_str()) => Reason::SourceFailed(s.clone()),
                _ => Reason::NoData,
            };
            observe(
                &self.check,
                &self.levels,
                key,
                inst,
                None,
                Some(reason),
                now,
                transitions,
            );
        }

        self.instances.retain(|_, inst| {
            inst.placeholder
                || inst.machine.state() != State::Unknown
                || now.instant.saturating_duration_since(inst.machine.since()) < UNKNOWN_RETENTION
        });

        // A configured check that matches nothing still shows, as unknown.
        let real = self.instances.values().any(|i| !i.placeholder);
        if real || self.check.origin == Origin::Default {
            self.instances.retain(|_, i| !i.placeholder);
        } else if self.instances.is_empty() {
            let mut inst = Instance::new(now);
            inst.placeholder = true;
            inst.reason = Some(Reason::NoSeries);
            self.instances.insert(Vec::new(), inst);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn observe(
    check: &Check,
    levels: &Levels,
    labels: &LabelSet,
    inst: &mut Instance,
    value: Option<f64>,
    reason: Option<Reason>,
    now: Now,
    transitions: &mut Vec<Transition>,
) {
    let change = inst.machine.observe(levels, value, now.instant);
    if let Some(v) = value {
        inst.recent.push(now.unix, v);
    }
    if inst.machine.since() == now.instant {
        inst.since_unix = now.unix;
    }
    if inst.machine.state() == State::Unknown {
        if reason.is_some() {
            inst.reason = reason;
        }
    } else {
        inst.reason = None;
    }
    if let Some(change) = change {
        if let Some(n) = inst.transitions.get_mut(change.to as usize) {
            *n += 1;
        }
        transitions.push(Transition {
            check: check.config.name.clone(),
            labels: labels.clone(),
            from: change.from,
            to: change.to,
            value: inst.machine.value(),
            reason: (change.to == State::Unknown)
                .then(|| inst.reason.as_ref().map(ToString::to_string))
                .flatten(),
            readiness: check.config.readiness,
        });
    }
}

/// The instance labels as exported next to `check`, `severity` and `to`.
fn export_labels(labels: &[(String, String)]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| {
            if !RESERVED_LABELS.contains(&k.as_str()) {
                return (k.clone(), v.clone());
            }
            let mut name = format!("exported_{k}");
            while labels.iter().any(|(other, _)| *other == name) {
                name = format!("exported_{name}");
            }
            (name, v.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests;
