//! Driving a `PostgresSource` round by round against the test cluster.

use super::Cluster;
use std::collections::BTreeMap;
use std::time::Duration;
use vitals::collectors::postgres::PostgresSource;
use vitals::collectors::{CollectError, Source};
use vitals::config::{self, Dsn, PostgresConfig, StatementsConfig};
use vitals::metrics::Output;

/// A target on `port` as the monitor role, with the defaults users run with.
pub fn pg_config(c: &Cluster, port: u16, name: &str) -> PostgresConfig {
    PostgresConfig {
        name: name.to_owned(),
        dsn: Dsn::parse(&c.monitor_dsn(port)).unwrap(),
        password_file: Some(c.password_file.clone()),
        password_env: None,
        password_command: None,
        password_command_ttl: config::Duration::from_secs(600),
        interval: None,
        timeout: config::Duration::from_secs(2),
        pools: BTreeMap::new(),
        top_applications: 10,
        heartbeat: None,
        statements: StatementsConfig::default(),
        catalog_interval: config::Duration::from_secs(60),
        catalog_databases: Vec::new(),
    }
}

/// The families the rounds of this test binary emitted, checked against the
/// catalog as they come, for the coverage assertion at the end of its suite.
pub static SEEN: crate::common::catalog::Seen = crate::common::catalog::Seen::new();

/// The deeper families (pg_stat_statements, pg_stat_database, the catalog
/// figures, WAL and archiver): tests/postgres_deep.rs covers them,
/// tests/postgres.rs the others.
pub fn deep_families() -> Vec<&'static str> {
    use vitals::collectors::postgres::metrics::{METRICS, STATEMENTS_AVAILABLE};
    let first = METRICS
        .iter()
        .position(|d| d.name == STATEMENTS_AVAILABLE.name)
        .expect("the deep families in the postgres table");
    METRICS[first..].iter().map(|d| d.name).collect()
}

/// Asserts that the families `SEEN` named `prefix*` that `only` keeps
/// cover the catalog (or are listed in `EMITTED_ONLY_WHEN`).
pub fn assert_covered(prefix: &str, only: impl Fn(&str) -> bool) {
    let missing: Vec<&str> = crate::common::catalog::not_covered(prefix, &SEEN.names())
        .into_iter()
        .filter(|n| only(n))
        .collect();
    assert!(
        missing.is_empty(),
        "catalog families never emitted (emit them or list the condition in EMITTED_ONLY_WHEN): {missing:?}"
    );
}

/// One round, with a generous guard against a hang (not a timing assertion:
/// the round budget is the target's timeout, far below it).
pub async fn round(src: &mut PostgresSource) -> (Output, Result<(), CollectError>) {
    let mut out = Output::new();
    let result = tokio::time::timeout(Duration::from_secs(60), src.collect(&mut out))
        .await
        .expect("a round never hangs");
    SEEN.record(&out);
    (out, result)
}

pub async fn ok_round(src: &mut PostgresSource) -> Output {
    let (out, result) = round(src).await;
    if let Err(e) = result {
        panic!("round failed: {e}");
    }
    out
}

pub fn value(out: &Output, name: &str, labels: &[(&str, &str)]) -> f64 {
    out.value(name, labels).unwrap_or_else(|| {
        panic!(
            "{name}{labels:?} missing from {:#?}",
            out.families.iter().map(|f| &f.name).collect::<Vec<_>>()
        )
    })
}

/// Statements the agent sent, counted from the server log
/// (`log_statement = all`, `%a` = application_name in the prefix).
pub fn agent_statements(log: &std::path::Path, from: u64) -> Vec<String> {
    let text = std::fs::read(log).expect("reading the server log");
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default()).into_owned();
    text.lines()
        .filter(|l| {
            l.contains(" vitals: LOG:  statement: ") || l.contains(" vitals: LOG:  execute ")
        })
        .map(str::to_owned)
        .collect()
}

/// The statements the agent sent in `rounds` rounds after a first one
/// (which also connects and prepares), from the server log.
pub async fn statements_in_rounds(
    src: &mut PostgresSource,
    log: &std::path::Path,
    rounds: usize,
) -> Vec<String> {
    ok_round(src).await;
    let from = std::fs::metadata(log).expect("the server log").len();
    for _ in 0..rounds {
        ok_round(src).await;
    }
    // The server writes its log asynchronously.
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent_statements(log, from)
}
