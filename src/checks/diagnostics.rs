//! What the checks tell the operator outside the exposition: a warning at
//! load for a check naming a metric vitals does not export, and one log line
//! per state change.

use super::{selector, State};
use crate::config::Config;
use std::fmt;

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
            let metric = &c.value.metric.metric;
            (!KNOWN_METRICS.contains(&metric.as_str())).then(|| UnknownMetric {
                check: c.value.name.clone(),
                metric: metric.clone(),
                line: c.referenced.line(),
                column: c.referenced.column(),
            })
        })
        .collect()
}

/// One state change, returned by [`super::CheckEngine::evaluate`] for the caller to
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

pub(super) fn format_labels(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", selector::quote(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}
