//! Sources: one file each, behind the [`Source`] trait.
//!
//! | source      | file            | metric prefix        |
//! |-------------|-----------------|----------------------|
//! | host        | `host.rs`       | `vitals_host_`       |
//! | cgroup      | `cgroup/`       | `vitals_cgroup_`     |
//! | process     | `process.rs`    | `vitals_process_`    |
//! | postgres    | `postgres/`     | `vitals_pg_`         |
//! | pgbouncer   | `pgbouncer.rs`  | `vitals_pgbouncer_`  |
//! | http probe  | `http_probe.rs` | `vitals_probe_`      |
//! | app metrics | `app_metrics/`  | `vitals_app_`        |
//!
//! [`build`] is the one table of every source there is. Each runs in its own
//! task on its own interval (see `runtime`); a round fills a fresh
//! [`Output`] that replaces the previous one wholesale.

pub mod app_metrics;
pub mod cgroup;
pub mod host;
pub mod http_probe;
pub mod pgbouncer;
pub mod postgres;
pub mod process;

use crate::config::{Config, Duration, Paths};
use crate::metrics::Output;
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
    #[error("{0}")]
    Other(String),
}

impl CollectError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
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
    match std::fs::read_to_string(path) {
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
    std::fs::read_to_string(path).map_err(|e| CollectError::io(path, e))
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
    AppMetrics(app_metrics::AppMetricsSource),
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
            AnySource::AppMetrics(s) => s.collect(out).await,
        }
    }
}

/// A source with its schedule and the id used in the `source` label.
pub struct Scheduled {
    pub id: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub source: AnySource,
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
        list.push(Scheduled {
            id: "host".into(),
            interval,
            timeout: sources.host.timeout.unwrap_or(default_timeout(interval)),
            source: AnySource::Host(host::HostSource::new(paths)),
        });
    }
    if sources.cgroup.enabled {
        let interval = config.interval_or_default(sources.cgroup.interval);
        list.push(Scheduled {
            id: "cgroup".into(),
            interval,
            timeout: sources.cgroup.timeout.unwrap_or(default_timeout(interval)),
            source: AnySource::Cgroup(cgroup::CgroupSource::new(paths, &sources.cgroup)),
        });
    }
    if !sources.processes.is_empty() {
        let interval = config.interval_or_default(None);
        list.push(Scheduled {
            id: "process".into(),
            interval,
            timeout: default_timeout(interval),
            source: AnySource::Process(process::ProcessSource::new(paths, &sources.processes)),
        });
    }
    for target in &sources.postgres {
        list.push(Scheduled {
            id: format!("postgres/{}", target.name),
            interval: config.interval_or_default(target.interval),
            timeout: target.timeout,
            source: AnySource::Postgres(postgres::PostgresSource::new(target)),
        });
    }
    for target in &sources.pgbouncer {
        list.push(Scheduled {
            id: format!("pgbouncer/{}", target.name),
            interval: config.interval_or_default(target.interval),
            timeout: target.timeout,
            source: AnySource::PgBouncer(pgbouncer::PgBouncerSource::new(target)),
        });
    }
    for probe in &sources.http_probes {
        list.push(Scheduled {
            id: format!("probe/{}", probe.name),
            interval: config.interval_or_default(probe.interval),
            // The probe times itself out and reports that as `up 0`; the
            // scheduler's limit only catches a stuck round.
            timeout: Duration(probe.timeout.as_std() + std::time::Duration::from_secs(1)),
            source: AnySource::HttpProbe(http_probe::HttpProbeSource::new(probe)),
        });
    }
    for app in &sources.app_metrics {
        list.push(Scheduled {
            id: format!("app/{}", app.name),
            interval: config.interval_or_default(app.interval),
            // As for the probe: the source times out itself and says so.
            timeout: Duration(app.timeout.as_std() + std::time::Duration::from_secs(1)),
            source: AnySource::AppMetrics(app_metrics::AppMetricsSource::new(app)),
        });
    }
    list
}

/// Every metric family vitals itself can export (not the application's own
/// series re-exported by an app source), gathered from the `METRICS` table each
/// source declares beside its emit code. Sources not yet converted to
/// [`crate::metrics::Desc`] tables contribute nothing here yet.
pub fn catalog() -> Vec<&'static crate::metrics::Desc> {
    let tables: &[&[crate::metrics::Desc]] = &[app_metrics::METRICS];
    tables.iter().flat_map(|t| t.iter()).collect()
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
    fn show<T: std::fmt::Debug>(r: Result<T, host::ParseError>) -> Result<String, String> {
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
    all.extend(app_metrics::fuzz::parsers());
    all
}
