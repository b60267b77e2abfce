//! Sources: one file each, behind the [`Source`] trait.
//!
//! | source      | file            | metric prefix        |
//! |-------------|-----------------|----------------------|
//! | host        | `host.rs`       | `vitals_host_`       |
//! | cgroup      | `cgroup/`       | `vitals_cgroup_`     |
//! | process     | `process/`      | `vitals_process_`    |
//! | postgres    | `postgres/`     | `vitals_pg_`         |
//! | pgbouncer   | `pgbouncer.rs`  | `vitals_pgbouncer_`  |
//! | http probe  | `http_probe.rs` | `vitals_probe_`      |
//! | redis       | `redis/`        | `vitals_redis_`      |
//! | app metrics | `app_metrics/`  | `vitals_app_`        |
//!
//! `connector.rs` is not a source either: the password source, backoff
//! and scrub every database source's connection shares.
//!
//! `footprint.rs` is not a source: it reads vitals' own `<proc>/self` for the
//! conventional `process_*` self metrics, on the runtime's own tick.
//!
//! [`build`] is the one table of every source there is. Each runs in its own
//! task on its own interval (see `runtime`); a round fills a fresh
//! [`Output`] that replaces the previous one wholesale.

pub mod app_metrics;
pub mod cgroup;
pub mod connector;
pub mod footprint;
pub mod fsread;
pub mod host;
pub mod http_probe;
pub mod pgbouncer;
pub mod postgres;
pub mod process;
pub mod procfs;
pub mod redis;

use crate::config::{Config, Duration, Paths};
use crate::metrics::{Desc, Output};
use std::future::Future;
use std::path::{Path, PathBuf};

/// One source of samples.
pub trait Source: Send + 'static {
    /// Fills `out` with this round's samples. What was written before an
    /// error is kept (a database source reports `up 0` and then fails).
    fn collect(
        &mut self,
        out: &mut Output,
    ) -> impl Future<Output = Result<(), CollectError>> + Send;
}

/// Why a round failed. Shown in logs and `/status`; never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A read that did not return in time, see [`fsread`].
    #[error("{0}")]
    Stuck(fsread::Stuck),
    #[error("{0}")]
    Other(String),
}

impl CollectError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        if let Some(stuck) = fsread::Stuck::of(&source) {
            return CollectError::Stuck(stuck.clone());
        }
        CollectError::Io {
            path: path.to_owned(),
            source,
        }
    }
    pub fn parse(path: &Path, message: impl Into<String>) -> Self {
        CollectError::Parse {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// Reads a whole small file; a file that does not exist is `Ok(None)`
/// ("no data", e.g. PSI on a kernel without it), anything else is an error.
pub fn read_optional(path: &Path) -> Result<Option<String>, CollectError> {
    match fsread::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(path = %path.display(), "file absent; no data");
            Ok(None)
        }
        Err(e) => Err(CollectError::io(path, e)),
    }
}

/// Reads a whole small file that must exist.
pub fn read_required(path: &Path) -> Result<String, CollectError> {
    fsread::read_to_string(path).map_err(|e| CollectError::io(path, e))
}

/// Every kind of source, so the scheduler can hold them in one list without
/// boxing futures.
pub enum AnySource {
    Host(host::HostSource),
    Cgroup(cgroup::CgroupSource),
    Process(process::ProcessSource),
    Postgres(postgres::PostgresSource),
    PgBouncer(pgbouncer::PgBouncerSource),
    HttpProbe(http_probe::HttpProbeSource),
    Redis(redis::RedisSource),
    AppMetrics(app_metrics::AppMetricsSource),
    /// A source the runtime's own tests script (panics, counts rebuilds).
    #[cfg(test)]
    Test(TestSource),
}

impl Source for AnySource {
    async fn collect(&mut self, out: &mut Output) -> Result<(), CollectError> {
        match self {
            AnySource::Host(s) => s.collect(out).await,
            AnySource::Cgroup(s) => s.collect(out).await,
            AnySource::Process(s) => s.collect(out).await,
            AnySource::Postgres(s) => s.collect(out).await,
            AnySource::PgBouncer(s) => s.collect(out).await,
            AnySource::HttpProbe(s) => s.collect(out).await,
            AnySource::Redis(s) => s.collect(out).await,
            AnySource::AppMetrics(s) => s.collect(out).await,
            #[cfg(test)]
            AnySource::Test(s) => {
                assert!(!s.panics, "test source panics as scripted");
                Ok(())
            }
        }
    }
}

/// See [`AnySource::Test`].
#[cfg(test)]
pub struct TestSource {
    pub panics: bool,
}

/// Builds a fresh copy of one source from its own configuration; the
/// runtime calls it after the source panicked, and nothing else is rebuilt.
pub type Rebuild = std::sync::Arc<dyn Fn() -> AnySource + Send + Sync>;

/// A source with its schedule and the id used in the `source` label.
pub struct Scheduled {
    pub id: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub source: AnySource,
    pub rebuild: Rebuild,
    /// A digest of everything the source was built from (its configuration,
    /// the paths, its schedule): a reload keeps a running source whose
    /// digest is unchanged. `None`: always rebuilt.
    pub fingerprint: Option<u64>,
    /// The top-level `metric_relabel_configs`, applied to the source's own
    /// families after each round (`relabel::own_stage`).
    pub own_rules: std::sync::Arc<[crate::config::RelabelConfig]>,
}

impl Scheduled {
    /// Builds the source once with `make`, which is kept to rebuild it.
    pub fn new(
        id: String,
        interval: Duration,
        timeout: Duration,
        make: impl Fn() -> AnySource + Send + Sync + 'static,
    ) -> Self {
        let rebuild: Rebuild = std::sync::Arc::new(make);
        Scheduled {
            id,
            interval,
            timeout,
            source: rebuild(),
            rebuild,
            fingerprint: None,
            own_rules: std::sync::Arc::new([]),
        }
    }

    /// Records what the source was built from, see [`Scheduled::fingerprint`].
    /// The digest never leaves the process (it is of configuration that may
    /// hold a password), and is only compared for equality.
    pub fn built_from(mut self, config: &impl std::fmt::Debug) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        format!("{config:?}").hash(&mut hasher);
        self.id.hash(&mut hasher);
        self.interval.as_std().hash(&mut hasher);
        self.timeout.as_std().hash(&mut hasher);
        self.fingerprint = Some(hasher.finish());
        self
    }

    /// Sets the rules for the source's own families; they are part of what
    /// it was built from, so a reload that changes them restarts its task.
    fn set_own_rules(&mut self, rules: std::sync::Arc<[crate::config::RelabelConfig]>) {
        use std::hash::{Hash, Hasher};
        if let Some(fingerprint) = self.fingerprint {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            fingerprint.hash(&mut hasher);
            format!("{rules:?}").hash(&mut hasher);
            self.fingerprint = Some(hasher.finish());
        }
        self.own_rules = rules;
    }
}

/// The timeout of a source that has none configured: its interval, capped
/// at 10 s so a stuck round is noticed.
fn default_timeout(interval: Duration) -> Duration {
    interval.min(Duration::from_secs(10))
}

/// Builds every enabled source of `config`, in a stable order.
pub fn build(config: &Config) -> Vec<Scheduled> {
    let paths: &Paths = &config.paths;
    let mut list = Vec::new();
    let sources = &config.sources;
    if sources.host.enabled {
        let interval = config.interval_or_default(sources.host.interval);
        let paths = paths.clone();
        list.push(
            Scheduled::new(
                "host".into(),
                interval,
                sources.host.timeout.unwrap_or(default_timeout(interval)),
                move || AnySource::Host(host::HostSource::new(&paths)),
            )
            .built_from(&(&config.paths, &sources.host)),
        );
    }
    if sources.cgroup.enabled {
        let interval = config.interval_or_default(sources.cgroup.interval);
        let (paths, cgroup) = (paths.clone(), sources.cgroup.clone());
        list.push(
            Scheduled::new(
                "cgroup".into(),
                interval,
                sources.cgroup.timeout.unwrap_or(default_timeout(interval)),
                move || AnySource::Cgroup(cgroup::CgroupSource::new(&paths, &cgroup)),
            )
            .built_from(&(&config.paths, &sources.cgroup)),
        );
    }
    if !sources.processes.is_empty() {
        let interval = config.interval_or_default(None);
        let (paths, processes) = (paths.clone(), sources.processes.clone());
        list.push(
            Scheduled::new(
                "process".into(),
                interval,
                default_timeout(interval),
                move || AnySource::Process(process::ProcessSource::new(&paths, &processes)),
            )
            .built_from(&(&config.paths, &sources.processes)),
        );
    }
    for target in &sources.postgres {
        let t = target.clone();
        list.push(
            Scheduled::new(
                format!("postgres/{}", target.name),
                config.interval_or_default(target.interval),
                target.timeout,
                move || AnySource::Postgres(postgres::PostgresSource::new(&t)),
            )
            .built_from(target),
        );
    }
    for target in &sources.pgbouncer {
        let t = target.clone();
        list.push(
            Scheduled::new(
                format!("pgbouncer/{}", target.name),
                config.interval_or_default(target.interval),
                target.timeout,
                move || AnySource::PgBouncer(pgbouncer::PgBouncerSource::new(&t)),
            )
            .built_from(target),
        );
    }
    for probe in &sources.http_probes {
        let p = probe.clone();
        list.push(
            Scheduled::new(
                format!("probe/{}", probe.name),
                config.interval_or_default(probe.interval),
                // The probe times itself out and reports that as `up 0`; the
                // scheduler's limit only catches a stuck round.
                Duration(probe.timeout.as_std() + std::time::Duration::from_secs(1)),
                move || AnySource::HttpProbe(http_probe::HttpProbeSource::new(&p)),
            )
            .built_from(probe),
        );
    }
    for target in &sources.redis {
        let t = target.clone();
        list.push(
            Scheduled::new(
                format!("redis/{}", target.name),
                config.interval_or_default(target.interval),
                target.timeout,
                move || AnySource::Redis(redis::RedisSource::new(&t)),
            )
            .built_from(target),
        );
    }
    for app in &sources.app_metrics {
        let a = app.clone();
        list.push(
            Scheduled::new(
                format!("app/{}", app.name),
                config.interval_or_default(app.interval),
                // As for the probe: the source times out itself and says so.
                Duration(app.timeout.as_std() + std::time::Duration::from_secs(1)),
                move || AnySource::AppMetrics(app_metrics::AppMetricsSource::new(&a)),
            )
            .built_from(app),
        );
    }
    let own_rules: std::sync::Arc<[crate::config::RelabelConfig]> =
        config.metric_relabel_configs.clone().into();
    for s in &mut list {
        s.set_own_rules(own_rules.clone());
    }
    list
}

/// Every metric family vitals itself can export, gathered from the `METRICS`
/// table each source (and the agent, the checks and remote write) declares beside its emit
/// code. A source's output that is not vitals' own (an application's series
/// re-exported by an app source) is not in the catalog. Anything that needs
/// "every metric vitals exports" reads this: the check selector warning, the
/// README reference test, the dashboard and alert cross-checks,
/// `vitals catalog`.
pub fn catalog() -> Vec<&'static Desc> {
    let tables: &[&[Desc]] = &[
        app_metrics::METRICS,
        host::METRICS,
        cgroup::METRICS,
        process::METRICS,
        postgres::metrics::METRICS,
        pgbouncer::METRICS,
        http_probe::METRICS,
        crate::runtime::METRICS,
        footprint::METRICS,
        redis::METRICS,
        crate::checks::METRICS,
        crate::remote_write::METRICS,
        crate::relabel::METRICS,
    ];
    tables.iter().flat_map(|t| t.iter()).collect()
}

/// The catalog entry of the family called `name`.
pub fn describe(name: &str) -> Option<&'static Desc> {
    catalog().into_iter().find(|d| d.name == name)
}

/// One pure parser of a kernel file, by name: takes the file's bytes and
/// returns the parsed value's Debug text or the error's. For the property
/// tests and the fuzz targets.
#[doc(hidden)]
pub type FuzzParser = (&'static str, fn(&[u8]) -> Result<String, String>);

/// Every pure parser of a kernel file, for the property tests and the fuzz
/// targets: arbitrary input must give a value or an error, never a panic.
#[doc(hidden)]
pub fn kernel_file_parsers() -> Vec<FuzzParser> {
    fn show<T: std::fmt::Debug>(r: Result<T, procfs::ParseError>) -> Result<String, String> {
        r.map(|v| format!("{v:?}")).map_err(|e| e.0)
    }
    fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(b)
    }
    let mut all: Vec<FuzzParser> = vec![
        ("host/stat", |b| show(host::parse_stat(&text(b)))),
        ("host/loadavg", |b| show(host::parse_loadavg(&text(b)))),
        ("host/meminfo", |b| show(host::parse_meminfo(&text(b)))),
        ("host/uptime", |b| show(host::parse_uptime(&text(b)))),
        ("host/pressure", |b| show(host::parse_pressure(&text(b)))),
    ];
    all.extend(cgroup::fuzz::parsers());
    all.extend(process::fuzz::parsers());
    all.extend(redis::fuzz::parsers());
    all.extend(app_metrics::fuzz::parsers());
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Kind;
    use std::collections::BTreeSet;

    #[test]
    fn catalog_names_are_unique_well_formed_and_described() {
        let all = catalog();
        let names: BTreeSet<&str> = all.iter().map(|d| d.name).collect();
        assert_eq!(names.len(), all.len(), "a family is declared twice");
        for d in &all {
            let conventional = d.name.starts_with("vitals_") || d.name.starts_with("process_");
            assert!(conventional, "{}: not a vitals_ or process_ name", d.name);
            assert!(
                d.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                d.name
            );
            assert_eq!(
                d.kind == Kind::Counter,
                d.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                d.name
            );
            assert!(d.help.ends_with('.'), "{}: help is a sentence", d.name);
            let labels: BTreeSet<&str> = d.labels.iter().copied().collect();
            assert_eq!(labels.len(), d.labels.len(), "{}: repeated label", d.name);
        }
        assert_eq!(
            describe("vitals_config_reload_failures_total").map(|d| d.kind),
            Some(Kind::Counter)
        );
        assert!(describe("vitals_build_info").is_some());
        assert!(describe("vitals_no_such_family").is_none());
    }
}
