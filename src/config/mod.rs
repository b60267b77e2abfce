//! The configuration schema (the public contract of `config.example.yaml`) and
//! its loading. Every struct refuses unknown keys; `load` turns any problem
//! into a [`ConfigError`] that names `file:line:column` and the dotted key.
//!
//! Values are parsed into what they mean while the file is read, so the rest
//! of the agent never parses a config string: a DSN ([`Dsn`], `dsn.rs`), a
//! probe URL ([`ProbeTarget`], `probe.rs`, from `url.rs`, which remote
//! write's receiver URLs also use; an app source's [`AppTarget`]), a check
//! selector ([`Selector`], `selector.rs`), a derived check's kind
//! ([`DerivedKind`], `derived.rs`, validated there), a duration, a regex. `paths.rs` names the key at a
//! position (and the reverse) from the YAML parser's own spans;
//! `validate.rs` checks what spans several keys. This module depends on
//! nothing else in the crate.

pub mod derived;
mod dsn;
mod duration;
mod load;
mod paths;
mod probe;
pub mod relabel;
mod remote_write;
pub mod selector;
pub mod url;
mod validate;

pub use derived::{DerivedKind, QuantileSpec, RateSpec, RatioSpec, TrendSpec};
pub use dsn::{parse_dsn, Dsn, PgTls, SslMode};
pub use duration::{parse_duration, Duration};
pub use load::{
    did_you_mean, load_file, load_file_with, parse_str, parse_str_with, ConfigError, KeyProblem,
    Resolve, EMBEDDED_DEFAULT,
};
pub use probe::{parse_http_url, parse_target, AppTarget, ProbeTarget};
pub use relabel::{Action, RelabelConfig, RelabelRegex};
pub use remote_write::{
    expand_env, BasicAuth, EnvString, RemoteQueueConfig, RemoteWriteConfig, TlsClientConfig,
};
pub use selector::{Selector, SelectorError};

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The default listen port: outside the 9100–9999 range the Prometheus
/// project allocates to exporters ("VITA" on a phone keypad).
pub const DEFAULT_PORT: u16 = 8482;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// exporter-toolkit web config (TLS, basic auth).
    #[serde(default)]
    pub web_config_file: Option<PathBuf>,
    /// HTTP server limits and the health endpoints' auth exemption.
    #[serde(default)]
    pub web: WebSettings,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub paths: Paths,
    /// Default sampling interval of every source.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    #[serde(default)]
    pub sources: Sources,
    #[serde(default = "yes")]
    pub default_checks: bool,
    #[serde(default)]
    pub checks: Vec<Spanned<CheckConfig>>,
    /// Receivers every round is pushed to (see `remote_write/`).
    #[serde(default)]
    pub remote_write: Vec<RemoteWriteConfig>,
    /// Prometheus relabeling of vitals' own families (`vitals_*`) in every
    /// source's round, before checks and export (see `crate::relabel`).
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))
}
fn default_interval() -> Duration {
    Duration::from_secs(5)
}
fn yes() -> bool {
    true
}

/// The HTTP server's limits (see `server::limits`) and whether the health
/// endpoints need credentials when basic auth is on.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// `/health/live` and `/health/ready` answer without credentials (for
    /// kubelet probes). Off by default, as in node_exporter.
    #[serde(default)]
    pub health_without_auth: bool,
    /// Connections served at once; more wait their turn (`server::limits`).
    #[serde(default = "default_max_connections")]
    pub max_connections: std::num::NonZeroUsize,
    /// Time for a client to finish the TLS handshake and send a request
    /// head; also how long a keep-alive connection may sit idle.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: Duration,
    /// Time for a request to be answered and its response written.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Duration,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            health_without_auth: false,
            max_connections: default_max_connections(),
            header_read_timeout: default_header_read_timeout(),
            request_timeout: default_request_timeout(),
        }
    }
}

fn default_max_connections() -> std::num::NonZeroUsize {
    std::num::NonZeroUsize::new(256).unwrap_or(std::num::NonZeroUsize::MIN)
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `vitals=debug,info`. RUST_LOG wins.
    #[serde(default = "default_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_level(),
            format: LogFormat::Text,
        }
    }
}

fn default_level() -> String {
    "info".into()
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// File-system roots. Tests point these at fixture trees.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    #[serde(default = "default_proc")]
    pub proc: PathBuf,
    #[serde(default = "default_sys")]
    pub sys: PathBuf,
    /// Where cgroup hierarchies are mounted. Default: the mount points listed
    /// in `<proc>/self/mountinfo`, re-rooted under `sys` when they lie under
    /// `/sys` (so a fixture `sys` tree works with a real mountinfo).
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            proc: default_proc(),
            sys: default_sys(),
            cgroup: None,
        }
    }
}

fn default_proc() -> PathBuf {
    "/proc".into()
}
fn default_sys() -> PathBuf {
    "/sys".into()
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    #[serde(default)]
    pub host: HostConfig,
    #[serde(default)]
    pub cgroup: CgroupConfig,
    #[serde(default)]
    pub processes: Vec<ProcessConfig>,
    #[serde(default)]
    pub postgres: Vec<PostgresConfig>,
    #[serde(default)]
    pub pgbouncer: Vec<PgBouncerConfig>,
    #[serde(default)]
    pub http_probes: Vec<HttpProbeConfig>,
    #[serde(default)]
    pub redis: Vec<RedisConfig>,
    #[serde(default)]
    pub app_metrics: Vec<AppMetricsConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub timeout: Option<Duration>,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            enabled: true,
            interval: None,
            timeout: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub target: CgroupTarget,
    /// Directory of Kubernetes downward-API files with the application
    /// container's limits (`cpu_limit` in millicores, `memory_limit` in bytes),
    /// used when the cgroup itself has no limit.
    #[serde(default)]
    pub limits_dir: Option<PathBuf>,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub timeout: Option<Duration>,
}

impl Default for CgroupConfig {
    fn default() -> Self {
        CgroupConfig {
            enabled: true,
            target: CgroupTarget::Own,
            limits_dir: None,
            interval: None,
            timeout: None,
        }
    }
}

/// Whose cgroup to watch.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupTarget {
    /// vitals' own cgroup (right for a sidecar sharing the app's cgroup, or
    /// for a VM service).
    #[default]
    #[serde(rename = "self")]
    Own,
    Pid(u32),
    Pidfile(PathBuf),
    /// The first process whose command line matches.
    Process(Pattern),
    /// A cgroup directory, or a cgroup path as written in /proc/PID/cgroup.
    Path(PathBuf),
    /// `{container: auto}`: with a PID namespace shared across the pod, every
    /// cgroup other than vitals' own that holds a process (the pause process
    /// left out); one series set per cgroup, labelled `container`.
    Container(ContainerSelect),
}

/// Which containers `target: {container: ...}` watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerSelect {
    /// All of them.
    Auto,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// Becomes the `process` label.
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: ProcessMatch,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessMatch {
    /// Regex on /proc/PID/comm (the 15-character command name).
    Comm(Pattern),
    /// Regex on the NUL-separated command line joined with spaces.
    Cmdline(Pattern),
    Pidfile(PathBuf),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Becomes the `target` label.
    pub name: String,
    /// libpq key=value or URL. A password in it works but is never echoed.
    pub dsn: Dsn,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// A program and its arguments (no shell) whose standard output is the
    /// password: cloud IAM tokens. Run at a (re)connect.
    #[serde(default)]
    pub password_command: Option<Argv>,
    /// How long the command's output is reused at most (default 10m).
    #[serde(default = "default_password_command_ttl")]
    pub password_command_ttl: Duration,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default = "default_pg_timeout")]
    pub timeout: Duration,
    /// The application's own pool size per application_name.
    #[serde(default)]
    pub pools: BTreeMap<String, u32>,
    /// How many application_name values get their own series; the rest are
    /// summed as "other".
    #[serde(default = "default_top_applications")]
    pub top_applications: usize,
    #[serde(default)]
    pub heartbeat: Option<HeartbeatConfig>,
    /// Top statements from pg_stat_statements (`top: 0` turns them off).
    #[serde(default)]
    pub statements: StatementsConfig,
    /// The slower interval of the catalog figures (wraparound, xmin
    /// horizon, dead tuples, unused indexes).
    #[serde(default = "default_catalog_interval")]
    pub catalog_interval: Duration,
    /// Other databases on the same server whose tables and indexes are read
    /// every `catalog_interval`, over one more connection each (the DSN
    /// with this dbname): pg_stat_user_tables only describes the database
    /// a session is connected to.
    #[serde(default)]
    pub catalog_databases: Vec<String>,
}

/// `statements: {top: 20}` on a PostgreSQL target.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StatementsConfig {
    /// How many statements get their own series; the rest are summed as
    /// `queryid="other"`. 0 turns the statement figures off.
    #[serde(default = "default_top_statements")]
    pub top: usize,
    /// How often pg_stat_statements is read (every entry, so the costliest
    /// statement of the source); rounds in between repeat the last figures.
    #[serde(default = "default_statements_interval")]
    pub interval: Duration,
}

impl Default for StatementsConfig {
    fn default() -> Self {
        StatementsConfig {
            top: default_top_statements(),
            interval: default_statements_interval(),
        }
    }
}

fn default_statements_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_top_statements() -> usize {
    20
}
fn default_catalog_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_password_command_ttl() -> Duration {
    Duration::from_secs(600)
}

fn default_pg_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_top_applications() -> usize {
    10
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    pub table: String,
    /// true on the agent watching the primary; false (read only) elsewhere.
    #[serde(default)]
    pub write: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgBouncerConfig {
    pub name: String,
    pub dsn: Dsn,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// A program and its arguments (no shell) whose standard output is the
    /// password: cloud IAM tokens. Run at a (re)connect.
    #[serde(default)]
    pub password_command: Option<Argv>,
    /// How long the command's output is reused at most (default 10m).
    #[serde(default = "default_password_command_ttl")]
    pub password_command_ttl: Duration,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default = "default_pg_timeout")]
    pub timeout: Duration,
}

/// A Redis target (see `collectors::redis`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Becomes the `target` label.
    pub name: String,
    /// `host:port` (`[::1]:6379` for IPv6) or the path of a unix socket.
    pub address: RedisAddress,
    /// ACL user (Redis 6+); without it AUTH uses the password alone.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// A program and its arguments (no shell) whose standard output is the
    /// password: cloud IAM tokens. Run at a (re)connect.
    #[serde(default)]
    pub password_command: Option<Argv>,
    /// How long the command's output is reused at most (default 10m).
    #[serde(default = "default_password_command_ttl")]
    pub password_command_ttl: Duration,
    /// TLS to the server (Redis 6+ `tls-port`, managed Redis with in-transit
    /// encryption); the same block as `remote_write[].tls`.
    #[serde(default)]
    pub tls: Option<TlsClientConfig>,
    /// Database selected for the queue keys.
    #[serde(default)]
    pub db: u32,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default = "default_pg_timeout")]
    pub timeout: Duration,
    /// Keys whose length is exported as `vitals_redis_queue_length`.
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
    /// Most queue keys (after expanding the library patterns) allowed, so
    /// the series count stays bounded.
    #[serde(default = "default_max_queues")]
    pub max_queues: usize,
    /// Lookups (hits + misses) needed in an interval before the interval's
    /// hit ratio is exported: a ratio of three lookups means nothing.
    #[serde(default = "default_min_lookups")]
    pub min_lookups: u64,
}

fn default_max_queues() -> usize {
    50
}
fn default_min_lookups() -> u64 {
    100
}

/// Where a Redis server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisAddress {
    /// `host:port`, resolved at each connect.
    Tcp(String),
    Unix(PathBuf),
}

impl fmt::Display for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisAddress::Tcp(a) => f.write_str(a),
            RedisAddress::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl RedisAddress {
    /// The host part without brackets (`localhost`, `::1`); a socket's path.
    pub fn host(&self) -> String {
        match self {
            RedisAddress::Tcp(a) => a
                .rsplit_once(':')
                .map_or(a.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            RedisAddress::Unix(p) => p.display().to_string(),
        }
    }

    /// `host:port` or an absolute socket path (`unix:` prefix optional).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(path) = text
            .strip_prefix("unix:")
            .or(text.starts_with('/').then_some(text))
        {
            return if path.starts_with('/') {
                Ok(RedisAddress::Unix(PathBuf::from(path)))
            } else {
                Err(format!("unix socket path {path:?} must be absolute"))
            };
        }
        let (host, port) = text.rsplit_once(':').ok_or_else(|| {
            format!("address {text:?} must be host:port or an absolute unix socket path")
        })?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("address {text:?}: missing host"));
        }
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(format!(
                "address {text:?}: write an IPv6 host in brackets, [::1]:6379"
            ));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(RedisAddress::Tcp(text.to_owned())),
            _ => Err(format!(
                "address {text:?}: port {port:?} is not a port number"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for RedisAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        RedisAddress::parse(&text).map_err(de::Error::custom)
    }
}

/// One configured queue: a plain key, or a queue of a known library that
/// expands to its keys. Exactly one of `key`, `bullmq`, `sidekiq`, `celery`,
/// `rq` is set (checked in `validate`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// A key holding a list, sorted set, set or stream.
    #[serde(default)]
    pub key: Option<String>,
    /// The `queue` label; default: the key (or the library queue's name).
    #[serde(default)]
    pub name: Option<String>,
    /// A BullMQ (or Bull 3) queue: `<prefix>:<queue>:wait`, `active`,
    /// `delayed`, `failed`.
    #[serde(default)]
    pub bullmq: Option<String>,
    /// BullMQ key prefix (its `prefix` option); default `bull`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// A Sidekiq queue: the list `queue:<name>`.
    #[serde(default)]
    pub sidekiq: Option<String>,
    /// A Celery queue (Redis broker): the list named after the queue.
    #[serde(default)]
    pub celery: Option<String>,
    /// An RQ queue: the list `rq:queue:<name>`.
    #[serde(default)]
    pub rq: Option<String>,
}

/// The kind of Redis value a queue key is expected to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueKind {
    List,
    SortedSet,
    /// Not known until the server says (`TYPE`).
    Unknown,
}

/// One key whose length is exported, after expanding library patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueKey {
    /// The `queue` label.
    pub name: String,
    pub key: String,
    /// What the library stores there, so the first round needs no `TYPE`.
    pub kind: QueueKind,
}

impl QueueConfig {
    /// The keys this entry stands for, or why it is invalid.
    pub fn keys(&self) -> Result<Vec<QueueKey>, String> {
        let set: Vec<&str> = [
            ("key", &self.key),
            ("bullmq", &self.bullmq),
            ("sidekiq", &self.sidekiq),
            ("celery", &self.celery),
            ("rq", &self.rq),
        ]
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| *k)
        .collect();
        if set.len() != 1 {
            return Err(format!(
                "a queue needs exactly one of key, bullmq, sidekiq, celery, rq (found {})",
                if set.is_empty() {
                    "none".to_owned()
                } else {
                    set.join(", ")
                }
            ));
        }
        if self.prefix.is_some() && self.bullmq.is_none() {
            return Err("prefix applies to bullmq queues only".into());
        }
        let one = |name: &str, key: String, kind| QueueKey {
            name: self.name.clone().unwrap_or_else(|| name.to_owned()),
            key,
            kind,
        };
        let keys = if let Some(key) = &self.key {
            vec![one(key, key.clone(), QueueKind::Unknown)]
        } else if let Some(q) = &self.bullmq {
            let prefix = self.prefix.as_deref().unwrap_or("bull");
            let base = self.name.as_deref().unwrap_or(q);
            [
                ("wait", QueueKind::List),
                ("active", QueueKind::List),
                ("delayed", QueueKind::SortedSet),
                ("failed", QueueKind::SortedSet),
            ]
            .into_iter()
            .map(|(state, kind)| QueueKey {
                name: format!("{base}:{state}"),
                key: format!("{prefix}:{q}:{state}"),
                kind,
            })
            .collect()
        } else if let Some(q) = &self.sidekiq {
            vec![one(q, format!("queue:{q}"), QueueKind::List)]
        } else if let Some(q) = &self.celery {
            vec![one(q, q.clone(), QueueKind::List)]
        } else if let Some(q) = &self.rq {
            vec![one(q, format!("rq:queue:{q}"), QueueKind::List)]
        } else {
            Vec::new()
        };
        if keys.iter().any(|k| k.key.is_empty() || k.name.is_empty()) {
            return Err("queue key and name must not be empty".into());
        }
        Ok(keys)
    }
}

impl RedisConfig {
    /// Every queue key, in configuration order; entries that do not expand
    /// are skipped (validation refuses them at load time).
    pub fn queue_keys(&self) -> Vec<QueueKey> {
        self.queues
            .iter()
            .filter_map(|q| q.keys().ok())
            .flatten()
            .take(self.max_queues)
            .collect()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbeConfig {
    pub name: String,
    /// `http://` only, without credentials.
    pub url: ProbeTarget,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default = "default_pg_timeout")]
    pub timeout: Duration,
    /// Expected status codes; default: any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Window of the error ratio.
    #[serde(default = "default_probe_window")]
    pub window: Duration,
}

fn default_probe_window() -> Duration {
    Duration::from_secs(300)
}

/// The application's own metrics endpoint (`collectors::app_metrics`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppMetricsConfig {
    /// Becomes the `app` label.
    pub name: String,
    /// `http://` on loopback; no credentials.
    pub url: AppTarget,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default = "default_app_timeout")]
    pub timeout: Duration,
    /// Samples accepted per scrape, counted after relabeling; one more
    /// refuses the scrape. `sample_limit` is the same key under
    /// Prometheus' name; 0 means no limit.
    #[serde(default = "default_max_series", alias = "sample_limit")]
    pub max_series: usize,
    /// Labels a series may have after relabeling (`__name__` and `app`
    /// included); one more refuses the scrape. 0: no limit.
    #[serde(default)]
    pub label_limit: usize,
    /// Bytes a label name may have after relabeling. 0: no limit.
    #[serde(default)]
    pub label_name_length_limit: usize,
    /// Bytes a label value (the metric name included) may have after
    /// relabeling. 0: no limit.
    #[serde(default)]
    pub label_value_length_limit: usize,
    /// Prometheus relabeling of the application's series, after the `app`
    /// label is added and before the limits, checks and export.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Body bytes accepted per scrape (before and after gzip).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Re-expose the application's series on `/metrics` with `app="<name>"`;
    /// otherwise they are kept for the checks only.
    #[serde(default)]
    pub export: bool,
    /// A selector of the app's queue-length gauge (e.g. `job_queue_size`),
    /// for the built-in `app_queue_<name>` check.
    #[serde(default)]
    pub queue: Option<Selector>,
    /// The label of `http_requests_total` holding the response status, for
    /// an app whose library uses none of `code`, `status`, `status_code`,
    /// `http_status`, `status_class`: its own `app_errors_<name>` check.
    #[serde(default)]
    pub status_label: Option<String>,
}

fn default_app_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_max_series() -> usize {
    20_000
}
fn default_max_bytes() -> u64 {
    10 * 1024 * 1024
}

/// One threshold check (see `checks/`). Read through [`RawCheck`], so it
/// knows which keys the file gave ([`CheckConfig::given`]): a check named
/// like a built-in one changes only those keys of it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(try_from = "RawCheck")]
pub struct CheckConfig {
    pub name: String,
    /// A PromQL-style selector: `name{label="v",other=~"re"}`. Absent for
    /// a derived kind (exactly one of `metric`, `rate`, `ratio`,
    /// `quantile`, `trend`).
    pub metric: Option<Selector>,
    pub rate: Option<RateSpec>,
    pub ratio: Option<RatioSpec>,
    pub quantile: Option<QuantileSpec>,
    pub trend: Option<TrendSpec>,
    pub direction: Direction,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub hysteresis: Option<Band>,
    pub for_: Option<Duration>,
    /// How long a level's condition must have stopped holding before the
    /// instance leaves it; absent: the check's `for`.
    pub clear_for: Option<Duration>,
    pub readiness: bool,
    pub description: Option<String>,
    pub runbook_url: Option<String>,
    /// The keys the file gave, and which levels it wrote as a percentage;
    /// empty for a built-in check.
    pub given: Given,
}

/// What a configured check wrote itself (see [`CheckConfig::given`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Given {
    /// The keys present, by their YAML name (`for`, `warning`, ...).
    pub keys: Vec<&'static str>,
    /// `warning` / `critical` when written as `80%`.
    pub percent: Vec<&'static str>,
}

impl Given {
    pub fn has(&self, key: &str) -> bool {
        self.keys.contains(&key)
    }
}

impl CheckConfig {
    /// The key kinds a check can name its figure with.
    pub const KINDS: [&'static str; 5] = ["metric", "rate", "ratio", "quantile", "trend"];

    /// Whether the file gave one of `metric`, `rate`, `ratio`, `quantile`,
    /// `trend` (a check without one can only change a built-in check).
    pub fn names_a_figure(&self) -> bool {
        Self::KINDS.iter().any(|k| self.given.has(k))
            || self.metric.is_some()
            || self.rate.is_some()
            || self.ratio.is_some()
            || self.quantile.is_some()
            || self.trend.is_some()
    }

    /// This check with the keys `over` gave in place of its own: how a
    /// configured check named like a built-in one changes it. A figure
    /// given (`metric`, `rate`...) replaces the built-in one whole.
    pub fn overridden_by(&self, over: &CheckConfig) -> CheckConfig {
        let mut c = self.clone();
        let has = |k: &str| over.given.has(k);
        if CheckConfig::KINDS.iter().any(|k| has(k)) {
            c.metric.clone_from(&over.metric);
            c.rate.clone_from(&over.rate);
            c.ratio.clone_from(&over.ratio);
            c.quantile.clone_from(&over.quantile);
            c.trend.clone_from(&over.trend);
        }
        if has("direction") {
            c.direction = over.direction;
        }
        if has("warning") {
            c.warning = over.warning;
        }
        if has("critical") {
            c.critical = over.critical;
        }
        if has("hysteresis") {
            c.hysteresis = over.hysteresis;
        }
        if has("for") {
            c.for_ = over.for_;
        }
        if has("clear_for") {
            c.clear_for = over.clear_for;
        }
        if has("readiness") {
            c.readiness = over.readiness;
        }
        if has("description") {
            c.description.clone_from(&over.description);
        }
        if has("runbook_url") {
            c.runbook_url.clone_from(&over.runbook_url);
        }
        c.given = over.given.clone();
        c
    }

    /// Whether the check's figure is a share (a `_ratio` family or a
    /// `ratio:` check), so its levels may be written as `80%`.
    pub fn is_share(&self) -> bool {
        self.ratio.is_some() || self.selector().metric.ends_with("_ratio")
    }
}

/// A check as written in the file (see [`CheckConfig`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    name: String,
    #[serde(default)]
    metric: Option<Selector>,
    #[serde(default)]
    rate: Option<RateSpec>,
    #[serde(default)]
    ratio: Option<RatioSpec>,
    #[serde(default)]
    quantile: Option<QuantileSpec>,
    #[serde(default)]
    trend: Option<TrendSpec>,
    #[serde(default)]
    direction: Option<Direction>,
    #[serde(default)]
    warning: Option<Level>,
    #[serde(default)]
    critical: Option<Level>,
    #[serde(default)]
    hysteresis: Option<Band>,
    #[serde(default, rename = "for")]
    for_: Option<Duration>,
    #[serde(default)]
    clear_for: Option<Duration>,
    #[serde(default)]
    readiness: Option<bool>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    runbook_url: Option<String>,
}

impl TryFrom<RawCheck> for CheckConfig {
    type Error = String;
    fn try_from(r: RawCheck) -> Result<Self, String> {
        let mut given = Given::default();
        for (key, present) in [
            ("metric", r.metric.is_some()),
            ("rate", r.rate.is_some()),
            ("ratio", r.ratio.is_some()),
            ("quantile", r.quantile.is_some()),
            ("trend", r.trend.is_some()),
            ("direction", r.direction.is_some()),
            ("warning", r.warning.is_some()),
            ("critical", r.critical.is_some()),
            ("hysteresis", r.hysteresis.is_some()),
            ("for", r.for_.is_some()),
            ("clear_for", r.clear_for.is_some()),
            ("readiness", r.readiness.is_some()),
            ("description", r.description.is_some()),
            ("runbook_url", r.runbook_url.is_some()),
        ] {
            if present {
                given.keys.push(key);
            }
        }
        let mut level = |key: &'static str, l: Option<Level>| {
            l.map(|l| match l {
                Level::Value(v) => v,
                Level::Percent(p) => {
                    given.percent.push(key);
                    p / 100.0
                }
            })
        };
        let warning = level("warning", r.warning);
        let critical = level("critical", r.critical);
        Ok(CheckConfig {
            name: r.name,
            metric: r.metric,
            rate: r.rate,
            ratio: r.ratio,
            quantile: r.quantile,
            trend: r.trend,
            direction: r.direction.unwrap_or_default(),
            warning,
            critical,
            hysteresis: r.hysteresis,
            for_: r.for_,
            clear_for: r.clear_for,
            readiness: r.readiness.unwrap_or(false),
            description: r.description,
            runbook_url: r.runbook_url,
            given,
        })
    }
}

/// A check level: a number in the figure's unit, or `80%` of a share.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Level {
    Value(f64),
    Percent(f64),
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Level;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, or a percentage such as 80% for a ratio")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Level, E> {
                Ok(Level::Value(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Level, E> {
                Ok(Level::Value(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Level, E> {
                Ok(Level::Value(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Level, E> {
                let bad = || {
                    E::custom(format!(
                        "invalid level {v:?}: write a number, or a percentage such as 80% for a ratio"
                    ))
                };
                match v.trim().strip_suffix('%') {
                    Some(p) => p
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|p| p.is_finite())
                        .map(Level::Percent)
                        .ok_or_else(bad),
                    None => v.trim().parse::<f64>().map(Level::Value).map_err(|_| bad()),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Above,
    Below,
}

/// Hysteresis band: `10%` of the level, or an absolute amount.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Band {
    Percent(f64),
    Absolute(f64),
}

impl<'de> Deserialize<'de> for Band {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Band;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a percentage such as 10%")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Band, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(Band::Absolute(v))
                } else {
                    Err(E::custom(format!(
                        "hysteresis {v} must be a non-negative number"
                    )))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Band, E> {
                Ok(Band::Absolute(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Band, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Band, E> {
                let bad = || E::custom(format!("invalid hysteresis {v:?}: write 10% or a number"));
                match v.trim().strip_suffix('%') {
                    Some(p) => {
                        let p: f64 = p.trim().parse().map_err(|_| bad())?;
                        if p.is_finite() && (0.0..=100.0).contains(&p) {
                            Ok(Band::Percent(p))
                        } else {
                            Err(E::custom(format!(
                                "hysteresis {v} must be between 0% and 100%"
                            )))
                        }
                    }
                    None => v
                        .trim()
                        .parse::<f64>()
                        .map_err(|_| bad())
                        .and_then(|n| self.visit_f64(n)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A regular expression checked when the config is loaded.
#[derive(Clone, Debug)]
pub struct Pattern(pub regex::Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        regex::Regex::new(&text)
            .map(Pattern)
            .map_err(|e| de::Error::custom(format!("invalid regular expression {text:?}: {e}")))
    }
}

/// A program and its arguments (`password_command`). Its Debug output
/// shows the program only: an argument may name a secret.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Argv(pub Vec<String>);

impl fmt::Debug for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let program = self.0.first().map_or("", String::as_str);
        write!(
            f,
            "Argv({program:?}, <{} arguments>)",
            self.0.len().saturating_sub(1)
        )
    }
}

/// A string that may hold a password: its Debug output never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Config {
    /// The interval a source uses: its own, or the global default.
    pub fn interval_or_default(&self, own: Option<Duration>) -> Duration {
        own.unwrap_or(self.interval)
    }
}
