//! The built-in checks, active unless `default_checks: false`; a configured
//! check with the same name replaces one. The levels come from the teams
//! vitals is for (see the design notes); `for` and the hysteresis bands are
//! chosen so a single noisy sample neither raises nor clears a state.
//!
//! None is a readiness check: taking an instance out of a load balancer is a
//! decision each deployment makes by configuring a check of the same name
//! with `readiness: true`.

use crate::config::{Band, CheckConfig, Direction, Duration, Selector};

struct Default {
    name: &'static str,
    metric: &'static str,
    direction: Direction,
    warning: Option<f64>,
    critical: Option<f64>,
    hysteresis: Option<Band>,
    for_secs: u64,
    description: &'static str,
}

const ABOVE: Direction = Direction::Above;

/// Ratios get an absolute band; latencies and ages a percentage of the level.
/// A level is left only once it has stopped holding for `for` too
/// (`clear_for` defaults to `for`).
const DEFAULTS: &[Default] = &[
    Default {
        name: "container_cpu",
        metric: "vitals_cgroup_cpu_limit_utilization_ratio",
        direction: ABOVE,
        warning: Some(0.7),
        critical: Some(0.9),
        hysteresis: Some(Band::Absolute(0.05)),
        // CPU use is bursty; a minute of it near the limit is a real trend.
        for_secs: 60,
        description: "CPU used by the container as a share of its CPU limit.",
    },
    Default {
        name: "container_memory",
        metric: "vitals_cgroup_memory_limit_utilization_ratio",
        direction: ABOVE,
        warning: Some(0.8),
        critical: Some(0.95),
        hysteresis: Some(Band::Absolute(0.02)),
        for_secs: 30,
        description: "Memory working set of the container as a share of its memory limit; at the limit the kernel reclaims and then OOM-kills.",
    },
    Default {
        name: "container_cpu_throttling",
        metric: "vitals_cgroup_cpu_throttled_ratio",
        direction: ABOVE,
        warning: Some(0.25),
        critical: Some(0.5),
        hysteresis: Some(Band::Absolute(0.05)),
        for_secs: 120,
        description: "Share of CPU scheduling periods in which the container was throttled by its CPU limit; throttling adds latency even below 100% CPU.",
    },
    Default {
        name: "pg_connections",
        metric: "vitals_pg_connection_utilization_ratio",
        direction: ABOVE,
        warning: Some(0.8),
        critical: Some(0.95),
        hysteresis: Some(Band::Absolute(0.02)),
        for_secs: 60,
        description: "PostgreSQL connections in use as a share of max_connections minus the reserved slots; at 100% new connections are refused.",
    },
    Default {
        name: "pg_pool",
        metric: "vitals_pg_pool_utilization_ratio",
        direction: ABOVE,
        warning: Some(0.8),
        critical: Some(0.95),
        hysteresis: Some(Band::Absolute(0.02)),
        for_secs: 60,
        description: "Connections an application holds as a share of the pool size configured for it; a full pool makes requests queue in the application.",
    },
    Default {
        name: "pgbouncer_pool",
        metric: "vitals_pgbouncer_pool_utilization_ratio",
        direction: ABOVE,
        warning: Some(0.8),
        critical: Some(0.95),
        hysteresis: Some(Band::Absolute(0.02)),
        // Transaction pooling makes single samples jumpy (a server is used
        // only for the length of a transaction): two minutes to enter, and
        // (clear_for defaults to for) two minutes below to leave.
        for_secs: 120,
        description: "PgBouncer server connections in use as a share of the pool size.",
    },
    Default {
        name: "pgbouncer_client_wait",
        metric: "vitals_pgbouncer_pool_maxwait_seconds",
        direction: ABOVE,
        warning: Some(1.0),
        critical: Some(5.0),
        hysteresis: Some(Band::Percent(10.0)),
        for_secs: 30,
        description: "How long the oldest waiting client of a PgBouncer pool has waited for a server connection.",
    },
    Default {
        name: "pg_idle_in_transaction",
        metric: "vitals_pg_idle_in_transaction_max_seconds",
        direction: ABOVE,
        warning: Some(60.0),
        critical: Some(300.0),
        hysteresis: Some(Band::Percent(10.0)),
        // The value is already an age: no need to wait on top of it.
        for_secs: 0,
        description: "Age of the oldest transaction left idle by a client: a leaked connection that holds locks and blocks vacuum.",
    },
    Default {
        name: "pg_longest_query",
        metric: "vitals_pg_longest_query_seconds",
        direction: ABOVE,
        warning: Some(30.0),
        critical: Some(300.0),
        hysteresis: Some(Band::Percent(10.0)),
        for_secs: 0,
        description: "Run time of the longest running query.",
    },
    Default {
        name: "replica_lag",
        metric: "vitals_pg_replication_lag_seconds",
        direction: ABOVE,
        warning: Some(1.0),
        critical: Some(5.0),
        hysteresis: Some(Band::Percent(10.0)),
        for_secs: 30,
        description: "How far a standby's replay is behind the primary, in seconds (0 when everything received is replayed and the stream is up).",
    },
    Default {
        name: "replica_stream",
        metric: "vitals_pg_replication_stream_up",
        direction: Direction::Below,
        warning: None,
        critical: Some(0.5),
        hysteresis: None,
        // A WAL receiver reconnect takes a few seconds; do not page on it.
        for_secs: 30,
        description: "Whether a standby's WAL receiver is streaming and has heard from the primary recently; down means the lag figure can no longer grow to show the problem.",
    },
    Default {
        name: "probe_latency",
        metric: "vitals_probe_duration_seconds",
        direction: ABOVE,
        warning: Some(1.0),
        critical: Some(5.0),
        hysteresis: Some(Band::Percent(10.0)),
        for_secs: 30,
        description: "How long the application's own health endpoint took to answer.",
    },
    Default {
        name: "probe_errors",
        metric: "vitals_probe_error_ratio",
        direction: ABOVE,
        warning: Some(0.05),
        critical: Some(0.1),
        hysteresis: Some(Band::Absolute(0.01)),
        // Already an average over the probe's window.
        for_secs: 0,
        description: "Share of the application health probes over the probe's window that failed (no answer, timeout or an unexpected status).",
    },
    Default {
        name: "redis_memory",
        metric: "vitals_redis_memory_utilization_ratio",
        direction: ABOVE,
        warning: Some(0.8),
        critical: Some(0.95),
        hysteresis: Some(Band::Absolute(0.02)),
        for_secs: 60,
        description: "Memory Redis uses as a share of its maxmemory; at the limit it evicts keys or refuses writes, by maxmemory-policy.",
    },
    Default {
        name: "redis_hit_ratio",
        metric: "vitals_redis_keyspace_hit_ratio",
        direction: Direction::Below,
        warning: Some(0.8),
        critical: Some(0.5),
        hysteresis: Some(Band::Absolute(0.02)),
        // The ratio only exists once min_lookups lookups happened in an
        // interval; a few bad intervals are normal after a deploy.
        for_secs: 120,
        description: "Share of Redis key lookups over the interval that found their key; a falling ratio sends the load to the database behind the cache.",
    },
    Default {
        name: "redis_evictions",
        metric: "vitals_redis_evicted_keys_per_second",
        direction: ABOVE,
        warning: Some(0.0),
        critical: Some(100.0),
        hysteresis: None,
        for_secs: 60,
        description: "Keys Redis evicts per second because it reached maxmemory; any sustained eviction means the cache is too small for its data.",
    },
    Default {
        name: "redis_replica_link",
        metric: "vitals_redis_replica_link_up",
        direction: Direction::Below,
        warning: None,
        critical: Some(0.5),
        hysteresis: None,
        // A replica reconnects in seconds after a primary restart.
        for_secs: 30,
        description: "Whether a Redis replica's link to its primary is up; down, the replica serves ever older data.",
    },
    Default {
        name: "redis_queue",
        metric: "vitals_redis_queue_length",
        direction: ABOVE,
        warning: Some(100.0),
        critical: Some(500.0),
        hysteresis: Some(Band::Percent(10.0)),
        // Bursts are what queues are for; a minute of backlog is a trend.
        for_secs: 60,
        description: "Items waiting in a configured Redis queue key (BullMQ, Sidekiq, Celery, RQ or a plain key); a growing backlog means the workers do not keep up.",
    },
    Default {
        name: "pg_slow_statement",
        metric: "vitals_pg_statement_mean_seconds",
        direction: ABOVE,
        warning: Some(1.0),
        critical: Some(5.0),
        hysteresis: Some(Band::Percent(10.0)),
        // Already a mean over the round; one round of slow calls is news.
        for_secs: 0,
        description: "Mean execution time of a top statement (or of all the others, queryid=\"other\") over the last round, from pg_stat_statements.",
    },
    Default {
        name: "pg_rollback_ratio",
        metric: "vitals_pg_database_rollback_ratio",
        direction: ABOVE,
        warning: Some(0.05),
        critical: Some(0.1),
        hysteresis: Some(Band::Absolute(0.01)),
        // PostgreSQL 15 reports a busy session's counters late and in
        // bursts (none for minutes, then thousands at once), so one round's
        // ratio is noise: five minutes in a row to enter and to leave.
        for_secs: 300,
        description: "Share of a database's transactions that rolled back over the last round: the database side of the query failure rate.",
    },
    Default {
        name: "pg_cache_hit_ratio",
        metric: "vitals_pg_database_cache_hit_ratio",
        direction: Direction::Below,
        warning: Some(0.9),
        critical: Some(0.8),
        hysteresis: Some(Band::Absolute(0.02)),
        // The ratio is only exported for rounds with at least 1000 block
        // accesses, so an idle database never reaches this check.
        for_secs: 300,
        description: "Share of a busy database's block accesses served from shared buffers over the last round; below it, queries wait on disk reads.",
    },
    Default {
        name: "pg_wraparound",
        metric: "vitals_pg_database_wraparound_ratio",
        direction: ABOVE,
        warning: Some(0.5),
        critical: Some(0.8),
        hysteresis: Some(Band::Absolute(0.02)),
        for_secs: 0,
        description: "Transaction ID age of a database's oldest unfrozen row as a share of the 2^31 wraparound limit; at the limit PostgreSQL refuses writes.",
    },
    Default {
        name: "pg_oldest_xmin",
        metric: "vitals_pg_oldest_xmin_age_seconds",
        direction: ABOVE,
        warning: Some(3600.0),
        critical: Some(21600.0),
        hysteresis: Some(Band::Percent(10.0)),
        for_secs: 0,
        description: "Age of the oldest holder of the xmin horizon (a long transaction, a replication slot, a prepared transaction): while it holds, vacuum removes no dead row anywhere.",
    },
];

/// The built-in checks, in a stable order.
pub fn default_checks() -> Vec<CheckConfig> {
    DEFAULTS
        .iter()
        .map(|d| CheckConfig {
            name: d.name.to_owned(),
            metric: Some(Selector::metric_only(d.metric)),
            rate: None,
            ratio: None,
            quantile: None,
            trend: None,
            direction: d.direction,
            warning: d.warning,
            critical: d.critical,
            hysteresis: d.hysteresis,
            for_: (d.for_secs > 0).then(|| Duration::from_secs(d.for_secs)),
            clear_for: None,
            readiness: false,
            description: Some(d.description.to_owned()),
            runbook_url: Some(format!(
                "{}#{}",
                super::rules::RUNBOOK_URL,
                super::rules::alert_name(d.name).to_lowercase()
            )),
            given: crate::config::Given::default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_default_is_valid_and_names_a_known_metric() {
        let checks = default_checks();
        let names: BTreeSet<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), checks.len(), "default names must be unique");
        for c in &checks {
            if let (Some(w), Some(cr)) = (c.warning, c.critical) {
                let ordered = match c.direction {
                    Direction::Above => w < cr,
                    Direction::Below => w > cr,
                };
                assert!(ordered, "{}: warning must come before critical", c.name);
            }
            let s = c.selector();
            assert!(
                crate::collectors::describe(&s.metric).is_some(),
                "{}: {} is not a metric vitals exports",
                c.name,
                s.metric
            );
            assert!(c.description.as_deref().is_some_and(|d| d.ends_with('.')));
        }
    }

    #[test]
    fn levels_are_the_agreed_ones() {
        let by_name = |n: &str| {
            default_checks()
                .into_iter()
                .find(|c| c.name == n)
                .unwrap_or_else(|| panic!("no default {n}"))
        };
        for (name, warning, critical) in [
            ("container_cpu", Some(0.7), Some(0.9)),
            ("container_memory", Some(0.8), Some(0.95)),
            ("container_cpu_throttling", Some(0.25), Some(0.5)),
            ("pg_connections", Some(0.8), Some(0.95)),
            ("pg_pool", Some(0.8), Some(0.95)),
            ("pgbouncer_pool", Some(0.8), Some(0.95)),
            ("pgbouncer_client_wait", Some(1.0), Some(5.0)),
            ("pg_idle_in_transaction", Some(60.0), Some(300.0)),
            ("pg_longest_query", Some(30.0), Some(300.0)),
            ("replica_lag", Some(1.0), Some(5.0)),
            ("replica_stream", None, Some(0.5)),
            ("probe_latency", Some(1.0), Some(5.0)),
            ("probe_errors", Some(0.05), Some(0.1)),
            ("redis_memory", Some(0.8), Some(0.95)),
            ("redis_hit_ratio", Some(0.8), Some(0.5)),
            ("redis_evictions", Some(0.0), Some(100.0)),
            ("redis_replica_link", None, Some(0.5)),
            ("redis_queue", Some(100.0), Some(500.0)),
            ("pg_slow_statement", Some(1.0), Some(5.0)),
            ("pg_rollback_ratio", Some(0.05), Some(0.1)),
            ("pg_cache_hit_ratio", Some(0.9), Some(0.8)),
            ("pg_wraparound", Some(0.5), Some(0.8)),
            ("pg_oldest_xmin", Some(3600.0), Some(21600.0)),
        ] {
            let c = by_name(name);
            assert_eq!((c.warning, c.critical), (warning, critical), "{name}");
        }
        assert_eq!(by_name("replica_stream").direction, Direction::Below);
        assert_eq!(by_name("redis_hit_ratio").direction, Direction::Below);
        assert_eq!(by_name("pg_cache_hit_ratio").direction, Direction::Below);
        assert_eq!(default_checks().len(), 23);
    }
}
