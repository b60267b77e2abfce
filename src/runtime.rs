//! The sampling side: every source in its own task on its own interval, each
//! round's output published into [`Shared`], and the exposition rendered
//! again right then — so a scrape only copies out the last rendering and
//! never waits on a source.

use crate::checks::{CheckEngine, InstanceStatus, Now, SourceRound};
use crate::collectors::{self, AnySource, Scheduled, Source};
use crate::config::{Config, Duration};
use crate::metrics::{self, Desc, Format, Output};
use bytes::Bytes;
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// Version and git revision, as exported in `vitals_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("VITALS_REVISION");

/// One rendering of `/metrics` in both formats; gzip made on first demand.
pub struct Exposition {
    pub text: Bytes,
    pub openmetrics: Bytes,
    text_gzip: OnceLock<Bytes>,
    openmetrics_gzip: OnceLock<Bytes>,
}

impl Exposition {
    fn new(text: String, openmetrics: String) -> Self {
        Exposition {
            text: Bytes::from(text),
            openmetrics: Bytes::from(openmetrics),
            text_gzip: OnceLock::new(),
            openmetrics_gzip: OnceLock::new(),
        }
    }

    pub fn body(&self, format: Format, gzip: bool) -> Bytes {
        let (plain, cache) = match format {
            Format::Text => (&self.text, &self.text_gzip),
            Format::OpenMetrics => (&self.openmetrics, &self.openmetrics_gzip),
        };
        if gzip {
            cache.get_or_init(|| gzip_bytes(plain)).clone()
        } else {
            plain.clone()
        }
    }
}

fn gzip_bytes(data: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// What `/status` and the self metrics say about one source.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SourceStatus {
    pub source: String,
    pub interval_seconds: f64,
    pub timeout_seconds: f64,
    pub rounds: u64,
    pub errors_total: u64,
    pub success: Option<bool>,
    pub last_round_timestamp_seconds: Option<f64>,
    pub last_success_timestamp_seconds: Option<f64>,
    pub last_duration_seconds: Option<f64>,
    pub last_error: Option<String>,
    /// What the source adds to `/status` beyond its metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

struct Slot {
    id: String,
    /// The task whose rounds this slot takes; rounds of any other task (one
    /// a reload replaced) are ignored.
    ticket: u64,
    output: Output,
    status: SourceStatus,
}

/// Config reload bookkeeping, exported as `vitals_config_*`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReloadStatus {
    pub config_file: Option<String>,
    pub last_reload_success: bool,
    pub last_reload_timestamp_seconds: f64,
    pub reload_failures_total: u64,
    /// Reloads started because the config file was replaced.
    pub file_changes_total: u64,
    pub last_reload_error: Option<String>,
}

struct State {
    /// Bumped by every (re)load, so late footprint readings of a replaced
    /// task are ignored.
    generation: u64,
    /// The last ticket handed to a source task, see [`Slot::ticket`].
    tickets: u64,
    /// Set once every source completed a round; a reload does not take it
    /// back (linkerd's readiness latch), only readiness checks can make
    /// `/health/ready` fail after that.
    ready_latch: bool,
    slots: Vec<Slot>,
    reload: ReloadStatus,
    /// Threshold checks, evaluated after every round.
    checks: Option<CheckEngine>,
    /// The `vitals_check_*` families of the last evaluation.
    check_output: Output,
    /// vitals' own `process_*` figures, see [`collectors::footprint`].
    footprint: Output,
}

/// Sources still waiting for their first round, and readiness checks that
/// are critical now (`name{labels}`).
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    pub pending_sources: Vec<String>,
    pub failing_checks: Vec<String>,
}

impl Readiness {
    /// Ready once every enabled source completed a round and no readiness
    /// check is critical.
    pub fn is_ready(&self) -> bool {
        self.pending_sources.is_empty() && self.failing_checks.is_empty()
    }
}

fn readiness(state: &State) -> Readiness {
    Readiness {
        pending_sources: match state.ready_latch {
            true => Vec::new(),
            false => pending_sources(state),
        },
        failing_checks: state
            .checks
            .as_ref()
            .map(CheckEngine::failing_readiness)
            .unwrap_or_default(),
    }
}

/// Sources that never completed a round.
fn pending_sources(state: &State) -> Vec<String> {
    state
        .slots
        .iter()
        .filter(|s| s.status.rounds == 0)
        .map(|s| s.status.source.clone())
        .collect()
}

/// The agent's state as `/status` and the index page show it.
pub struct Report {
    pub started_timestamp_seconds: f64,
    pub readiness: Readiness,
    pub config: ReloadStatus,
    pub sources: Vec<SourceStatus>,
    pub checks: Vec<InstanceStatus>,
}

/// State shared between the sampling tasks and the HTTP server.
pub struct Shared {
    state: Mutex<State>,
    exposition: RwLock<Arc<Exposition>>,
    started: f64,
    /// Remote-write receivers, fed after every round.
    remote_write: crate::remote_write::Hub,
}

impl Shared {
    pub fn new(config_file: Option<String>) -> Arc<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                tickets: 0,
                ready_latch: false,
                slots: Vec::new(),
                reload: ReloadStatus {
                    config_file,
                    last_reload_success: true,
                    last_reload_timestamp_seconds: unix_now(),
                    reload_failures_total: 0,
                    file_changes_total: 0,
                    last_reload_error: None,
                },
                checks: None,
                check_output: Output::new(),
                footprint: Output::new(),
            }),
            exposition: RwLock::new(Arc::new(Exposition::new(String::new(), String::new()))),
            started: unix_now(),
            remote_write: crate::remote_write::Hub::default(),
        });
        shared.render();
        shared
    }

    /// The last rendered exposition: a clone of an `Arc`, nothing more.
    pub fn exposition(&self) -> Arc<Exposition> {
        self.exposition
            .read()
            .map(|e| e.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the data is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `/health/ready` needs, under one lock.
    pub fn readiness(&self) -> Readiness {
        readiness(&self.lock())
    }

    /// What `/status` and the index page show, as one consistent snapshot.
    pub fn report(&self) -> Report {
        let state = self.lock();
        Report {
            started_timestamp_seconds: self.started,
            readiness: readiness(&state),
            config: state.reload.clone(),
            sources: state.slots.iter().map(|s| s.status.clone()).collect(),
            checks: state
                .checks
                .as_ref()
                .map(CheckEngine::snapshot)
                .unwrap_or_default(),
        }
    }

    pub fn remote_write(&self) -> &crate::remote_write::Hub {
        &self.remote_write
    }

    /// Replaces the set of sources and checks (start or successful reload):
    /// the one place where the new set of source ids is known.
    ///
    /// What did not change is kept: a source whose id stays keeps its last
    /// output and its counters, so `/metrics` shows no gap and no counter
    /// resets. The sources in `kept` go on with their running task (their
    /// ticket stays); every other source gets a fresh ticket for the task
    /// the caller starts, and until that task's first round its slot still
    /// shows the last output. Check instances whose check kept its name and
    /// selector keep their state. Returns the generation (for the footprint
    /// task) and each source's ticket, in `sources` order.
    fn install(
        &self,
        config: &Config,
        sources: &[Scheduled],
        kept: &std::collections::HashSet<String>,
    ) -> (u64, Vec<u64>) {
        let mut state = self.lock();
        state.generation += 1;
        match &mut state.checks {
            Some(engine) => engine.reload(config),
            None => state.checks = Some(CheckEngine::new(config)),
        }
        // A source the new configuration no longer has: its pushed series
        // are marked stale now, not left to the receiver's lookback.
        let ids: Vec<&str> = sources.iter().map(|s| s.id.as_str()).collect();
        self.remote_write.retain_sources(&ids, unix_now());
        let mut old: std::collections::HashMap<String, Slot> = std::mem::take(&mut state.slots)
            .into_iter()
            .map(|slot| (slot.id.clone(), slot))
            .collect();
        let mut tickets = Vec::with_capacity(sources.len());
        for s in sources {
            let previous = old.remove(&s.id);
            let ticket = match &previous {
                Some(slot) if kept.contains(&s.id) => slot.ticket,
                _ => {
                    state.tickets += 1;
                    state.tickets
                }
            };
            let (output, status) = match previous {
                Some(slot) => (slot.output, slot.status),
                None => (
                    Output::new(),
                    SourceStatus {
                        source: s.id.clone(),
                        ..SourceStatus::default()
                    },
                ),
            };
            state.slots.push(Slot {
                id: s.id.clone(),
                ticket,
                output,
                status: SourceStatus {
                    interval_seconds: s.interval.as_secs_f64(),
                    timeout_seconds: s.timeout.as_secs_f64(),
                    ..status
                },
            });
            tickets.push(ticket);
        }
        // `old` now holds the sources the reload removed: their series go.
        let generation = state.generation;
        drop(state);
        self.render();
        (generation, tickets)
    }

    /// Records that the config file was replaced (a reload follows).
    pub fn record_config_file_change(&self) {
        self.lock().reload.file_changes_total += 1;
    }

    /// Records a reload attempt.
    pub fn record_reload(&self, result: Result<(), String>) {
        let mut state = self.lock();
        state.reload.last_reload_timestamp_seconds = unix_now();
        state.reload.last_reload_success = result.is_ok();
        if let Err(e) = result {
            state.reload.reload_failures_total += 1;
            state.reload.last_reload_error = Some(e);
        } else {
            state.reload.last_reload_error = None;
        }
        drop(state);
        self.render();
    }

    /// Stores one round of the source task holding `ticket` and renders
    /// again.
    fn publish(
        &self,
        ticket: u64,
        output: Output,
        result: Result<(), String>,
        took: std::time::Duration,
    ) {
        let mut state = self.lock();
        let Some(index) = state.slots.iter().position(|s| s.ticket == ticket) else {
            // A task a reload replaced or removed.
            return;
        };
        let Some(slot) = state.slots.get_mut(index) else {
            return;
        };
        let now = unix_now();
        slot.status.details.clone_from(&output.details);
        slot.output = output;
        let status = &mut slot.status;
        status.rounds += 1;
        status.last_round_timestamp_seconds = Some(now);
        status.last_duration_seconds = Some(took.as_secs_f64());
        status.success = Some(result.is_ok());
        match result {
            Ok(()) => {
                status.last_success_timestamp_seconds = Some(now);
                status.last_error = None;
            }
            Err(e) => {
                status.errors_total += 1;
                status.last_error = Some(e);
            }
        }
        if !state.ready_latch && pending_sources(&state).is_empty() {
            state.ready_latch = true;
        }
        evaluate_checks(&mut state);
        if let Some(slot) = state.slots.get(index) {
            self.remote_write.offer(&slot.id, now, &slot.output, || {
                let mut own = self_metrics(&state);
                own.extend(state.check_output.clone());
                own.extend(state.footprint.clone());
                own
            });
        }
        drop(state);
        self.render();
    }

    /// Stores vitals' own footprint figures and renders again.
    fn publish_footprint(&self, generation: u64, output: Output) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        state.footprint = output;
        drop(state);
        self.render();
    }

    /// Renders every source's latest output plus the agent's own metrics.
    fn render(&self) {
        let state = self.lock();
        let own = self_metrics(&state);
        let remote = self.remote_write.output();
        let outputs: Vec<&Output> = state
            .slots
            .iter()
            .map(|s| &s.output)
            .chain([&own, &state.check_output, &state.footprint, &remote])
            .collect();
        let text = metrics::render(outputs.iter().copied(), Format::Text);
        let openmetrics = metrics::render(outputs.iter().copied(), Format::OpenMetrics);
        let fresh = Arc::new(Exposition::new(text, openmetrics));
        // Stored while the state is still locked: two sources publishing at
        // once must not let the older rendering replace the newer one (it
        // would stay until the next round, an interval later).
        match self.exposition.write() {
            Ok(mut e) => *e = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        drop(state);
    }
}

/// Runs the checks over every source's latest round and logs each state
/// change once.
fn evaluate_checks(state: &mut State) {
    let State {
        slots,
        checks,
        check_output,
        ..
    } = state;
    let Some(engine) = checks.as_mut() else {
        return;
    };
    let rounds = slots
        .iter()
        .filter(|s| s.status.rounds > 0)
        .map(|s| SourceRound {
            source: &s.id,
            output: &s.output,
            failed: s.status.success == Some(false),
        });
    let (output, transitions) = engine.evaluate(rounds, Now::system());
    *check_output = output;
    for line in crate::checks::log_lines(transitions) {
        use crate::checks::LogLine;
        match line {
            LogLine::Change(t) => {
                let value = t.value.map_or_else(|| "none".to_owned(), |v| v.to_string());
                match t.to {
                    crate::checks::State::Ok => tracing::info!(
                        check = %t.check, instance = %t.instance(), from = %t.from, to = %t.to, value = %value,
                        "check state changed"
                    ),
                    _ => tracing::warn!(
                        check = %t.check, instance = %t.instance(), from = %t.from, to = %t.to, value = %value,
                        reason = t.reason.as_deref(), readiness = t.readiness, "check state changed"
                    ),
                }
            }
            LogLine::SourceFailed {
                source,
                instances,
                checks,
                readiness,
            } => tracing::warn!(
                source = %source, instances, checks = %checks.join(","), readiness,
                "source failed: its check instances are unknown"
            ),
            LogLine::Back { source, instances } => {
                tracing::info!(source = %source, instances, "check instances have values again")
            }
            LogLine::Removed { check, instances } => tracing::info!(
                check = %check, instances,
                "check instances removed: their series are gone (a figure left out of quiet rounds, or no longer there)"
            ),
        }
    }
}

pub const BUILD_INFO: Desc = Desc::gauge(
    "vitals_build_info",
    &["version", "revision"],
    "Always 1; labels give the vitals version and git revision it was built from.",
);
pub const CONFIG_LAST_RELOAD_SUCCESS: Desc = Desc::gauge(
    "vitals_config_last_reload_success",
    &[],
    "1 if the last configuration load or reload succeeded, 0 if it was refused (the previous configuration keeps running).",
);
pub const CONFIG_LAST_RELOAD_TIMESTAMP_SECONDS: Desc = Desc::gauge(
    "vitals_config_last_reload_timestamp_seconds",
    &[],
    "Unix time of the last configuration load or reload attempt.",
);
pub const CONFIG_RELOAD_FAILURES_TOTAL: Desc = Desc::counter(
    "vitals_config_reload_failures_total",
    &[],
    "Configuration reloads refused because the new file was invalid.",
);
/// Reloads the config file watch started (see `daemon`).
pub const CONFIG_FILE_CHANGES: Desc = Desc::counter(
    "vitals_config_file_changes_total",
    &[],
    "Times the configuration file was replaced (renamed over, or a Kubernetes ConfigMap update swapping its symlink) and reloaded; a refused reload counts here and in vitals_config_reload_failures_total.",
);
pub const SOURCE_SUCCESS: Desc = Desc::gauge(
    "vitals_source_success",
    &["source"],
    "1 if the source's last sampling round succeeded, 0 if it failed or timed out.",
);
pub const SOURCE_DURATION_SECONDS: Desc = Desc::gauge(
    "vitals_source_duration_seconds",
    &["source"],
    "Wall time the source's last sampling round took.",
);
pub const SOURCE_LAST_SUCCESS_TIMESTAMP_SECONDS: Desc = Desc::gauge(
    "vitals_source_last_success_timestamp_seconds",
    &["source"],
    "Unix time of the source's last successful sampling round.",
);
pub const SOURCE_ERRORS_TOTAL: Desc = Desc::counter(
    "vitals_source_errors_total",
    &["source"],
    "Sampling rounds of the source that failed or timed out.",
);

/// Every family the agent exports about itself, for `collectors::catalog()`.
pub const METRICS: &[Desc] = &[
    BUILD_INFO,
    CONFIG_LAST_RELOAD_SUCCESS,
    CONFIG_LAST_RELOAD_TIMESTAMP_SECONDS,
    CONFIG_RELOAD_FAILURES_TOTAL,
    CONFIG_FILE_CHANGES,
    SOURCE_SUCCESS,
    SOURCE_DURATION_SECONDS,
    SOURCE_LAST_SUCCESS_TIMESTAMP_SECONDS,
    SOURCE_ERRORS_TOTAL,
];

/// `vitals_source_*`, `vitals_build_info`, `vitals_config_*`.
fn self_metrics(state: &State) -> Output {
    let mut out = Output::new();
    out.add(
        &BUILD_INFO,
        &[("version", VERSION), ("revision", REVISION)],
        1.0,
    );
    out.add(
        &CONFIG_LAST_RELOAD_SUCCESS,
        &[],
        f64::from(u8::from(state.reload.last_reload_success)),
    );
    out.add(
        &CONFIG_LAST_RELOAD_TIMESTAMP_SECONDS,
        &[],
        state.reload.last_reload_timestamp_seconds,
    );
    out.add(
        &CONFIG_RELOAD_FAILURES_TOTAL,
        &[],
        state.reload.reload_failures_total as f64,
    );
    out.add(
        &CONFIG_FILE_CHANGES,
        &[],
        state.reload.file_changes_total as f64,
    );
    for slot in &state.slots {
        let s = &slot.status;
        let labels = [("source", s.source.as_str())];
        if let Some(success) = s.success {
            out.add(&SOURCE_SUCCESS, &labels, f64::from(u8::from(success)));
        }
        if let Some(took) = s.last_duration_seconds {
            out.add(&SOURCE_DURATION_SECONDS, &labels, took);
        }
        if let Some(ts) = s.last_success_timestamp_seconds {
            out.add(&SOURCE_LAST_SUCCESS_TIMESTAMP_SECONDS, &labels, ts);
        }
        out.add(&SOURCE_ERRORS_TOTAL, &labels, s.errors_total as f64);
    }
    out
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The running set of source tasks.
pub struct Agent {
    shared: Arc<Shared>,
    /// vitals' own footprint reader, restarted by every (re)load.
    footprint: Option<JoinHandle<()>>,
    /// Each source's task by source id, with what it was built from.
    sources: std::collections::HashMap<String, Running>,
}

struct Running {
    fingerprint: Option<u64>,
    task: JoinHandle<()>,
}

impl Agent {
    /// Starts every source of `config`.
    pub fn start(shared: Arc<Shared>, config: &Config) -> Agent {
        let mut agent = Agent {
            shared,
            footprint: None,
            sources: std::collections::HashMap::new(),
        };
        agent.apply(config);
        agent
    }

    /// Moves to the sources of `config`: a source built from the same
    /// configuration as before keeps its running task (its connection, its
    /// state between rounds); a changed source's task is replaced, a removed
    /// one stopped, a new one started.
    pub fn apply(&mut self, config: &Config) {
        let sources = collectors::build(config);
        let kept: std::collections::HashSet<String> = sources
            .iter()
            .filter(|s| {
                s.fingerprint.is_some()
                    && self
                        .sources
                        .get(&s.id)
                        .is_some_and(|r| r.fingerprint == s.fingerprint && !r.task.is_finished())
            })
            .map(|s| s.id.clone())
            .collect();
        self.sources.retain(|id, running| {
            let keep = kept.contains(id);
            if !keep {
                running.task.abort();
            }
            keep
        });
        if let Some(task) = self.footprint.take() {
            task.abort();
        }
        let (generation, tickets) = self.shared.install(config, &sources, &kept);
        let most_frequent = sources
            .iter()
            .min_by_key(|s| s.interval)
            .map(|s| s.id.clone());
        self.shared.remote_write.apply(config, most_frequent);
        self.footprint = Some(tokio::spawn(run_footprint(
            self.shared.clone(),
            generation,
            config.paths.proc.clone(),
            config.interval_or_default(None),
        )));
        for (scheduled, ticket) in sources.into_iter().zip(tickets) {
            if kept.contains(&scheduled.id) {
                continue;
            }
            let (id, fingerprint) = (scheduled.id.clone(), scheduled.fingerprint);
            let task = tokio::spawn(run_source(self.shared.clone(), ticket, scheduled));
            self.sources.insert(id, Running { fingerprint, task });
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        for task in self
            .footprint
            .iter()
            .chain(self.sources.values().map(|r| &r.task))
        {
            task.abort();
        }
    }
}

/// Runs one round in its own task so that a panic inside a source is caught
/// and reported like any other failure, instead of ending the loop.
async fn round(
    mut source: AnySource,
    timeout: Duration,
) -> (Option<AnySource>, Output, Result<(), String>) {
    let handle = tokio::spawn(async move {
        let mut out = Output::new();
        let result = match tokio::time::timeout(timeout.as_std(), source.collect(&mut out)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("round timed out after {timeout}")),
        };
        (source, out, result)
    });
    match handle.await {
        Ok((source, out, result)) => (Some(source), out, result),
        Err(e) if e.is_panic() => (
            None,
            Output::new(),
            Err("source panicked; it has been restarted".into()),
        ),
        Err(_) => (None, Output::new(), Err("round cancelled".into())),
    }
}

async fn run_source(shared: Arc<Shared>, ticket: u64, scheduled: Scheduled) {
    let Scheduled {
        id,
        interval,
        timeout,
        source,
        rebuild,
        own_rules,
        ..
    } = scheduled;
    let mut source = Some(source);
    let mut ticker = ticker(interval);
    let mut last_error: Option<String> = None;
    loop {
        ticker.tick().await;
        // After a panic only this source is rebuilt, from its own config.
        let current = source.take().unwrap_or_else(|| rebuild());
        let started = Instant::now();
        let (back, mut output, result) = round(current, timeout).await;
        crate::relabel::own_stage(&mut output, &id, &own_rules);
        source = back;
        match &result {
            Err(e) if last_error.as_deref() != Some(e) => {
                tracing::warn!(source = %id, error = %e, "sampling round failed");
            }
            Err(e) => tracing::debug!(source = %id, error = %e, "sampling round failed again"),
            Ok(()) if last_error.is_some() => tracing::info!(source = %id, "source recovered"),
            Ok(()) => {}
        }
        last_error = result.as_ref().err().cloned();
        shared.publish(ticket, output, result, started.elapsed());
    }
}

/// A tick every `interval` (at least 10 ms), the first one at once; a late
/// round delays the next instead of bunching them up.
fn ticker(interval: Duration) -> tokio::time::Interval {
    let mut ticker =
        tokio::time::interval(interval.as_std().max(std::time::Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// Reads vitals' own footprint on the default interval, whatever the scrapes.
async fn run_footprint(
    shared: Arc<Shared>,
    generation: u64,
    proc_root: std::path::PathBuf,
    interval: Duration,
) {
    let mut ticker = ticker(interval);
    let mut last_error: Option<String> = None;
    loop {
        ticker.tick().await;
        let output = match footprint_round(proc_root.clone()).await {
            Ok(output) => {
                last_error = None;
                output
            }
            Err(e) => {
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "reading vitals' own footprint failed");
                }
                last_error = Some(e);
                Output::new()
            }
        };
        shared.publish_footprint(generation, output);
    }
}

/// One reading of `<proc>/self`, off the async workers.
async fn footprint_round(proc_root: std::path::PathBuf) -> Result<Output, String> {
    let ticks = collectors::footprint::ticks_per_second();
    tokio::task::spawn_blocking(move || collectors::footprint::collect(&proc_root, ticks))
        .await
        .map_err(|e| format!("footprint task failed: {e}"))?
        .map_err(|e| e.to_string())
}

/// One round of every source, for `vitals once`: the exposition text and the
/// ids and errors of the sources that failed.
pub async fn once(config: &Config) -> (String, Vec<(String, String)>) {
    let shared = Shared::new(None);
    let sources = collectors::build(config);
    let (generation, tickets) = shared.install(config, &sources, &Default::default());
    let mut failures = Vec::new();
    let rounds = sources.into_iter().zip(tickets).map(|(s, ticket)| {
        let shared = shared.clone();
        async move {
            let started = Instant::now();
            let (_, mut output, result) = round(s.source, s.timeout).await;
            crate::relabel::own_stage(&mut output, &s.id, &s.own_rules);
            let failure = result.as_ref().err().map(|e| (s.id.clone(), e.clone()));
            shared.publish(ticket, output, result, started.elapsed());
            failure
        }
    });
    let handles: Vec<_> = rounds.map(tokio::spawn).collect();
    match footprint_round(config.paths.proc.clone()).await {
        Ok(output) => shared.publish_footprint(generation, output),
        Err(e) => failures.push(("footprint".to_owned(), e)),
    }
    for handle in handles {
        if let Ok(Some(failure)) = handle.await {
            failures.push(failure);
        }
    }
    let text = String::from_utf8_lossy(&shared.exposition().text).into_owned();
    (text, failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::TestSource;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scheduled test source that panics on its first round when `panics`,
    /// and counts how often it is rebuilt (rebuilt ones never panic).
    fn scripted(id: &str, panics: bool, rebuilt: Arc<AtomicUsize>) -> Scheduled {
        let mut s = Scheduled::new(
            id.into(),
            Duration::from_millis(10),
            Duration::from_secs(5),
            move || {
                rebuilt.fetch_add(1, Ordering::SeqCst);
                AnySource::Test(TestSource { panics: false })
            },
        );
        // The first copy comes from `new`; replace it so only rebuilds count.
        s.source = AnySource::Test(TestSource { panics });
        s
    }

    #[tokio::test]
    async fn a_panicking_source_is_rebuilt_alone() {
        let config = crate::config::parse_str("{}\n", "test.yaml").unwrap();
        let shared = Shared::new(None);
        let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let sources = vec![
            scripted("a", true, a.clone()),
            scripted("b", false, b.clone()),
        ];
        // `new` built each once; count from here.
        a.store(0, Ordering::SeqCst);
        b.store(0, Ordering::SeqCst);
        let (_, tickets) = shared.install(&config, &sources, &Default::default());
        let tasks: Vec<_> = sources
            .into_iter()
            .zip(tickets)
            .map(|(s, ticket)| tokio::spawn(run_source(shared.clone(), ticket, s)))
            .collect();
        // Bounded wait for a round of the rebuilt source (not a timing
        // assertion: the rounds are 10 ms apart).
        let status = |id: &str| {
            shared
                .report()
                .sources
                .into_iter()
                .find(|s| s.source == id)
                .unwrap()
        };
        for _ in 0..1000 {
            if status("a").rounds >= 3 && status("b").rounds >= 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        for task in tasks {
            task.abort();
        }
        let (sa, sb) = (status("a"), status("b"));
        assert!(sa.rounds >= 3 && sb.rounds >= 3, "{sa:?} {sb:?}");
        assert_eq!(sa.errors_total, 1, "one panicked round");
        assert_eq!(sa.success, Some(true), "the rebuilt source works");
        assert_eq!(a.load(Ordering::SeqCst), 1, "the panicked source, once");
        assert_eq!(b.load(Ordering::SeqCst), 0, "the other source, never");
        assert_eq!(sb.errors_total, 0);
    }
}
