//! Push: every round's samples sent to Prometheus-compatible receivers with
//! the remote-write protocol 1.0 (protobuf `WriteRequest`, snappy block
//! compression), with the round's own timestamp.
//!
//! | file        | what |
//! |-------------|------|
//! | `proto.rs`  | the protobuf messages and a round's `WriteRequest` |
//! | `queue.rs`  | the bounded buffer, in memory and optionally on disk |
//! | `sender.rs` | the send loop: order, retries, backoff, drops |
//!
//! The runtime hands every published round to [`Hub::offer`]; each receiver
//! has its own [`Writer`] (queue, counters, send task), so a slow or dead
//! receiver delays nothing else, scrapes included. The agent's own families
//! (`vitals_source_*`, `vitals_check_*`, these) go with every round of the
//! most frequent source.
//!
//! The hub remembers the series each source sent last: one that a round no
//! longer has (a closed connection's `application_name`, a failed round, a
//! source removed by a reload) gets a stale marker at that round's time,
//! as Prometheus does for a scrape target's series. Per source, timestamps
//! only go up, whatever the wall clock does.

pub mod proto;
pub mod queue;
pub mod sender;

use crate::config::{Config, RemoteWriteConfig};
use crate::http_client::{self, conn};
use crate::metrics::{Desc, Output};
use bytes::Bytes;
use prost::Message as _;
use proto::Series;
use queue::{DropReason, Queue};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub const SAMPLES_SENT: Desc = Desc::counter(
    "vitals_remote_write_samples_sent_total",
    &["remote"],
    "Samples the remote-write receiver accepted (a 2xx answer to the request that carried them).",
);
pub const BYTES_SENT: Desc = Desc::counter(
    "vitals_remote_write_bytes_sent_total",
    &["remote"],
    "Bytes of remote-write request bodies (protobuf, snappy-compressed) the receiver accepted.",
);
pub const SAMPLES_FAILED: Desc = Desc::counter(
    "vitals_remote_write_samples_failed_total",
    &["remote"],
    "Samples in remote-write requests that failed (network error, timeout, 5xx, 429 or another refusal), counted once per failed request.",
);
pub const SAMPLES_RETRIED: Desc = Desc::counter(
    "vitals_remote_write_samples_retried_total",
    &["remote"],
    "Samples sent again to the remote-write receiver after a failed request.",
);
pub const SAMPLES_DROPPED: Desc = Desc::counter(
    "vitals_remote_write_samples_dropped_total",
    &["remote", "reason"],
    "Samples given up without delivery, by reason: queue_full (the buffer's oldest round made room), too_old (past queue.max_age), rejected (a 4xx other than 429 from the receiver), corrupt (an unreadable file in queue.dir).",
);
pub const QUEUE_SAMPLES: Desc = Desc::gauge(
    "vitals_remote_write_queue_samples",
    &["remote"],
    "Samples buffered for the remote-write receiver and not yet delivered.",
);
pub const OLDEST_QUEUED_AGE: Desc = Desc::gauge(
    "vitals_remote_write_oldest_queued_age_seconds",
    &["remote"],
    "Age of the oldest round buffered for the remote-write receiver, from its sample timestamp; 0 when nothing is buffered.",
);
pub const LAST_SUCCESS: Desc = Desc::gauge(
    "vitals_remote_write_last_success_timestamp_seconds",
    &["remote"],
    "Unix time of the last remote-write request the receiver accepted; absent before the first.",
);

pub const METRICS: &[Desc] = &[
    SAMPLES_SENT,
    BYTES_SENT,
    SAMPLES_FAILED,
    SAMPLES_RETRIED,
    SAMPLES_DROPPED,
    QUEUE_SAMPLES,
    OLDEST_QUEUED_AGE,
    LAST_SUCCESS,
];

/// The `remote` label of a URL: host, port and path, never a user,
/// password or query.
pub fn remote_label(url: &str) -> String {
    match http_client::parse_url(url, "url") {
        Ok((_, t)) => format!("{}{}", t.host_header, http_client::shown(&t.path)),
        Err(_) => "invalid".to_owned(),
    }
}

/// Counters of one receiver.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub samples_sent: u64,
    pub bytes_sent: u64,
    pub samples_failed: u64,
    pub samples_retried: u64,
    pub dropped: BTreeMap<&'static str, u64>,
    pub last_success: Option<f64>,
    pub last_error: Option<String>,
}

impl Stats {
    fn count_drop(&mut self, reason: DropReason, samples: usize) {
        *self.dropped.entry(reason.as_str()).or_default() += samples as u64;
    }
}

/// What `/status` shows of one receiver.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RemoteStatus {
    pub remote: String,
    pub samples_sent_total: u64,
    pub bytes_sent_total: u64,
    pub samples_failed_total: u64,
    pub samples_retried_total: u64,
    pub samples_dropped_total: BTreeMap<&'static str, u64>,
    pub queue_samples: usize,
    /// Requests queued (a round is one or more, see `queue.max_samples_per_send`).
    pub queue_rounds: usize,
    pub queue_max_samples: usize,
    pub queue_dir: Option<String>,
    pub oldest_queued_age_seconds: f64,
    pub last_success_timestamp_seconds: Option<f64>,
    pub last_error: Option<String>,
}

enum Auth {
    None,
    Basic {
        username: String,
        password_file: std::path::PathBuf,
    },
    Bearer(std::path::PathBuf),
}

/// One receiver: its settings, queue, counters and connection.
pub struct Writer {
    remote: String,
    interval: Option<Duration>,
    timeout: Duration,
    max_age: Option<Duration>,
    max_samples: usize,
    max_per_send: usize,
    /// `external_labels`, then `job` and `instance` unless turned off:
    /// added to a series that does not carry a label of that name.
    extra: Vec<(String, String)>,
    /// `write_relabel_configs`, applied after `extra` to every series and
    /// stale marker sent here.
    rules: Arc<[crate::config::RelabelConfig]>,
    headers: hyper::HeaderMap,
    auth: Auth,
    client: tokio::sync::Mutex<Result<conn::Client, String>>,
    queue: Mutex<Queue>,
    stats: Mutex<Stats>,
    notify: Notify,
    /// Set at shutdown: send what is queued now, without waiting for
    /// `interval` (a backoff is still honoured).
    flushing: std::sync::atomic::AtomicBool,
}

impl Writer {
    fn new(config: &RemoteWriteConfig, adopted: Option<(Queue, Stats)>) -> Arc<Writer> {
        let remote = remote_label(&config.url);
        let client =
            http_client::parse_url(&config.url, "remote_write url").and_then(|(scheme, target)| {
                let tls = match scheme {
                    http_client::Scheme::Https => {
                        let t = &config.tls;
                        Some(conn::client_config(&conn::TlsFiles {
                            ca_file: t.ca_file.as_deref(),
                            cert_file: t.cert_file.as_deref(),
                            key_file: t.key_file.as_deref(),
                            insecure_skip_verify: t.insecure_skip_verify,
                        })?)
                    }
                    http_client::Scheme::Http => None,
                };
                let client = conn::Client::new(scheme, target, tls)?;
                match &config.tls.server_name {
                    Some(name) => client.with_server_name(name),
                    None => Ok(client),
                }
            });
        if let Err(e) = &client {
            tracing::error!(remote = %remote, error = %e, "remote write cannot start");
        }
        let mut headers = hyper::HeaderMap::new();
        for (name, value) in &config.headers {
            // Checked when the configuration was loaded.
            if let (Ok(n), Ok(v)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                hyper::header::HeaderValue::from_str(value),
            ) {
                headers.insert(n, v);
            }
        }
        let auth = match (&config.basic_auth, &config.bearer_token_file) {
            (Some(b), _) => Auth::Basic {
                username: b.username.clone(),
                password_file: b.password_file.clone(),
            },
            (None, Some(f)) => Auth::Bearer(f.clone()),
            (None, None) => Auth::None,
        };
        let q = &config.queue;
        let (queue, stats) = match adopted {
            Some((mut queue, mut stats)) => {
                let dropped = queue.set_max_samples(q.max_samples);
                stats.count_drop(DropReason::QueueFull, dropped);
                (queue, stats)
            }
            None => {
                let mut queue = Queue::new(q.max_samples, q.dir.clone());
                let mut stats = Stats::default();
                if let Some(dir) = &q.dir {
                    if let Err(e) = std::fs::create_dir_all(dir) {
                        tracing::error!(remote = %remote, dir = %dir.display(), error = %e, "cannot create queue.dir");
                    }
                    for (reason, samples, error) in queue.replay() {
                        stats.count_drop(reason, samples);
                        if !error.is_empty() {
                            tracing::warn!(remote = %remote, error = %error, "queue.dir: dropped an unreadable round");
                        }
                    }
                    if queue.rounds() > 0 {
                        tracing::info!(remote = %remote, rounds = queue.rounds(), samples = queue.samples(), "remote write resumes rounds buffered before the restart");
                    }
                }
                (queue, stats)
            }
        };
        Arc::new(Writer {
            remote,
            interval: config.interval.map(|d| d.as_std()),
            timeout: config.timeout.as_std(),
            max_age: config.queue.max_age.map(|d| d.as_std()),
            max_samples: config.queue.max_samples,
            max_per_send: config.queue.max_samples_per_send,
            extra: target_labels(config),
            rules: config.write_relabel_configs.clone().into(),
            headers,
            auth,
            client: tokio::sync::Mutex::new(client),
            queue: Mutex::new(queue),
            stats: Mutex::new(stats),
            notify: Notify::new(),
            flushing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stats<T>(&self, f: impl FnOnce(&mut Stats) -> T) -> T {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Queues one round (its series and the stale markers of the ones it
    /// lost), split into requests of at most `queue.max_samples_per_send`;
    /// never waits on the network or the disk.
    fn offer(&self, round: &Round) {
        let requests = if self.rules.is_empty() {
            proto::round_requests(
                &round.series,
                &round.stale,
                round.timestamp_ms,
                &self.extra,
                self.max_per_send,
            )
        } else {
            let (series, stale) =
                proto::relabel_round(&round.series, &round.stale, &self.extra, &self.rules);
            proto::round_requests(&series, &stale, round.timestamp_ms, &[], self.max_per_send)
        };
        if requests.is_empty() {
            return;
        }
        let mut dropped = 0;
        {
            let mut queue = self.lock_queue();
            for request in requests {
                let samples = request.timeseries.len();
                let payload = Bytes::from(proto::compress(&request.encode_to_vec()));
                dropped += queue.push(round.timestamp_ms, samples, payload);
            }
        }
        if dropped > 0 {
            self.stats(|s| s.count_drop(DropReason::QueueFull, dropped));
        }
        self.notify.notify_one();
    }

    /// Writes new rounds to `queue.dir` and deletes finished ones.
    fn persist(&self) {
        let (dir, ops) = {
            let mut q = self.lock_queue();
            (q.dir().map(|d| d.to_owned()), q.take_fs_ops())
        };
        if let Some(dir) = dir {
            // A full, read-only or deleted queue.dir: the rounds stay in
            // memory (nothing is dropped for it), said once per episode.
            // Only a segment written says the directory works again (deletes
            // still work on a full file system).
            let writes = ops.iter().any(|op| matches!(op, queue::FsOp::Write(_)));
            let result = sender::persist(&dir, ops);
            let change = match (&result, writes) {
                (Ok(()), false) => None,
                _ => self.lock_queue().persist_outcome(result.is_ok()),
            };
            match (result, change) {
                (Err(e), Some(true)) => {
                    tracing::warn!(remote = %self.remote, error = %e, "queue.dir cannot be written; rounds are kept in memory only until it can")
                }
                (Err(e), _) => {
                    tracing::debug!(remote = %self.remote, error = %e, "queue.dir still cannot be written")
                }
                (Ok(()), Some(false)) => {
                    tracing::info!(remote = %self.remote, "queue.dir can be written again")
                }
                (Ok(()), _) => {}
            }
        }
    }

    fn expire(&self) {
        let Some(max_age) = self.max_age else {
            return;
        };
        let min = ((crate::runtime::unix_now() - max_age.as_secs_f64()) * 1000.0) as i64;
        let dropped = self.lock_queue().expire(min);
        if dropped > 0 {
            self.stats(|s| s.count_drop(DropReason::TooOld, dropped));
        }
    }

    /// One POST with the configured headers and credentials, within the
    /// timeout. Credential files are read each time, so a rotated secret
    /// is picked up without a reload.
    async fn send(&self, body: Bytes) -> Result<conn::Answer, String> {
        let mut request = sender::request(body);
        for (name, value) in &self.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        if let Some(value) = self.authorization()? {
            request
                .headers_mut()
                .insert(hyper::header::AUTHORIZATION, value);
        }
        let mut client = self.client.lock().await;
        let client = client.as_mut().map_err(|e| e.clone())?;
        match tokio::time::timeout(self.timeout, client.send(request)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "no answer within the timeout of {}",
                crate::config::Duration(self.timeout)
            )),
        }
    }

    fn authorization(&self) -> Result<Option<hyper::header::HeaderValue>, String> {
        let read = |what: &str, path: &std::path::Path| {
            std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| format!("reading {what} {}: {e}", path.display()))
        };
        let value = match &self.auth {
            Auth::None => return Ok(None),
            Auth::Basic {
                username,
                password_file,
            } => {
                use base64::Engine as _;
                let password = read("basic_auth.password_file", password_file)?;
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"))
                )
            }
            Auth::Bearer(file) => format!("Bearer {}", read("bearer_token_file", file)?),
        };
        let mut value = hyper::header::HeaderValue::from_str(&value).map_err(|_| {
            "the credential file holds characters not allowed in a header".to_owned()
        })?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    fn status(&self) -> RemoteStatus {
        let (samples, rounds, oldest, dir) = {
            let q = self.lock_queue();
            (
                q.samples(),
                q.rounds(),
                q.oldest_timestamp_ms(),
                q.dir().map(|d| d.display().to_string()),
            )
        };
        let stats = self.stats(|s| s.clone());
        let mut dropped: BTreeMap<&'static str, u64> =
            DropReason::ALL.iter().map(|r| (r.as_str(), 0)).collect();
        dropped.extend(stats.dropped);
        RemoteStatus {
            remote: self.remote.clone(),
            samples_sent_total: stats.samples_sent,
            bytes_sent_total: stats.bytes_sent,
            samples_failed_total: stats.samples_failed,
            samples_retried_total: stats.samples_retried,
            samples_dropped_total: dropped,
            queue_samples: samples,
            queue_rounds: rounds,
            queue_max_samples: self.max_samples,
            queue_dir: dir,
            oldest_queued_age_seconds: oldest.map_or(0.0, |ms| {
                (crate::runtime::unix_now() - ms as f64 / 1000.0).max(0.0)
            }),
            last_success_timestamp_seconds: stats.last_success,
            last_error: stats.last_error,
        }
    }
}

/// The labels `job="vitals"` and `instance="<host name>"` (the pod's name in
/// Kubernetes), as Prometheus' agent gives a target's series, after the
/// configured `external_labels`: two agents pushing the same host or
/// PostgreSQL series to one receiver stay two series.
fn target_labels(config: &RemoteWriteConfig) -> Vec<(String, String)> {
    let mut extra: Vec<(String, String)> = config
        .external_labels
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    if config.job_instance_labels {
        extra.push(("job".to_owned(), "vitals".to_owned()));
        extra.push(("instance".to_owned(), host_name()));
    }
    extra
}

/// The host name (`uname -n`): the pod's name in Kubernetes.
pub fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// One round as every receiver gets it.
struct Round {
    series: Arc<Vec<Series>>,
    stale: Vec<Vec<proto::Label>>,
    timestamp_ms: i64,
}

/// What was last sent of one source (or of the agent's own families).
struct Sent {
    series: Arc<Vec<Series>>,
    timestamp_ms: i64,
}

/// The stream of the agent's own families, whichever source carries them.
const AGENT_STREAM: &str = "";

struct Running {
    config: RemoteWriteConfig,
    writer: Arc<Writer>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Inner {
    running: Vec<Running>,
    /// The source whose rounds carry the agent's own families.
    agent_source: Option<String>,
    /// Per source id (and [`AGENT_STREAM`]): what its last round sent.
    sent: HashMap<String, Sent>,
}

/// Every configured receiver.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts, keeps or replaces the writers for `config.remote_write`. A
    /// receiver whose settings are unchanged keeps running; one whose URL
    /// and queue directory stay keeps its queue and counters. Needs a tokio
    /// runtime.
    pub fn apply(&self, config: &Config, agent_source: Option<String>) {
        let mut inner = self.lock();
        inner.agent_source = agent_source;
        let mut old: Vec<Running> = std::mem::take(&mut inner.running);
        for wanted in &config.remote_write {
            if let Some(i) = old.iter().position(|r| &r.config == wanted) {
                inner.running.push(old.swap_remove(i));
                continue;
            }
            let adopted = old
                .iter()
                .position(|r| r.config.url == wanted.url && r.config.queue.dir == wanted.queue.dir)
                .map(|i| {
                    let r = old.swap_remove(i);
                    r.task.abort();
                    let queue = std::mem::replace(&mut *r.writer.lock_queue(), Queue::new(1, None));
                    let stats = r.writer.stats(std::mem::take);
                    (queue, stats)
                });
            let writer = Writer::new(wanted, adopted);
            let task = tokio::spawn(sender::run(writer.clone()));
            inner.running.push(Running {
                config: wanted.clone(),
                writer,
                task,
            });
        }
        for r in old {
            r.task.abort();
        }
        if inner.running.is_empty() {
            inner.sent.clear();
        }
    }

    /// Records `series` as the latest of `stream` and returns the round to
    /// send: its stale markers are the series the previous round had and
    /// this one lacks; its timestamp is past the previous one's.
    fn advance(&self, stream: &str, series: Vec<Series>, timestamp_ms: i64) -> Round {
        let series = Arc::new(series);
        let mut inner = self.lock();
        let (stale, timestamp_ms) = match inner.sent.get(stream) {
            Some(last) => (
                proto::vanished(&last.series, &series),
                timestamp_ms.max(last.timestamp_ms + 1),
            ),
            None => (Vec::new(), timestamp_ms),
        };
        inner.sent.insert(
            stream.to_owned(),
            Sent {
                series: series.clone(),
                timestamp_ms,
            },
        );
        Round {
            series,
            stale,
            timestamp_ms,
        }
    }

    /// After a reload: every series of a source that no longer exists gets
    /// a stale marker at `timestamp` (Unix seconds).
    pub fn retain_sources(&self, ids: &[&str], timestamp: f64) {
        let (writers, gone) = {
            let mut inner = self.lock();
            let ids_gone: Vec<String> = inner
                .sent
                .keys()
                .filter(|k| k.as_str() != AGENT_STREAM && !ids.contains(&k.as_str()))
                .cloned()
                .collect();
            let gone: Vec<Sent> = ids_gone
                .iter()
                .filter_map(|k| inner.sent.remove(k))
                .collect();
            (writers(&inner.running), gone)
        };
        let timestamp_ms = (timestamp * 1000.0).round() as i64;
        for last in gone {
            let round = Round {
                series: Arc::new(Vec::new()),
                stale: last.series.iter().map(|(l, _)| l.clone()).collect(),
                timestamp_ms: timestamp_ms.max(last.timestamp_ms + 1),
            };
            for writer in &writers {
                writer.offer(&round);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lock().running.is_empty()
    }

    /// Queues one published round of `source` at `timestamp` (Unix
    /// seconds) for every receiver; `agent` gives the agent's own families
    /// when this source carries them.
    pub fn offer(
        &self,
        source: &str,
        timestamp: f64,
        output: &Output,
        agent: impl FnOnce() -> Output,
    ) {
        let (writers, with_agent) = {
            let inner = self.lock();
            if inner.running.is_empty() {
                return;
            }
            (
                writers(&inner.running),
                inner.agent_source.as_deref() == Some(source),
            )
        };
        let timestamp_ms = (timestamp * 1000.0).round() as i64;
        let mut rounds = vec![self.advance(source, proto::round_series([output]), timestamp_ms)];
        if with_agent {
            let mut own = agent();
            own.extend(self.output());
            rounds.push(self.advance(AGENT_STREAM, proto::round_series([&own]), timestamp_ms));
        }
        for writer in writers {
            for round in &rounds {
                writer.offer(round);
            }
        }
    }

    /// At shutdown: sends what is queued without waiting for `interval`,
    /// for at most `limit`; returns the samples still undelivered.
    pub async fn flush(&self, limit: Duration) -> usize {
        let writers = writers(&self.lock().running);
        for w in &writers {
            w.flushing.store(true, std::sync::atomic::Ordering::Relaxed);
            w.notify.notify_one();
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left: usize = writers.iter().map(|w| w.lock_queue().samples()).sum();
            if left == 0 || tokio::time::Instant::now() >= deadline {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn statuses(&self) -> Vec<RemoteStatus> {
        let writers = writers(&self.lock().running);
        writers.iter().map(|w| w.status()).collect()
    }

    /// The `vitals_remote_write_*` families.
    pub fn output(&self) -> Output {
        let mut out = Output::new();
        for s in self.statuses() {
            let remote = [("remote", s.remote.as_str())];
            out.add(&SAMPLES_SENT, &remote, s.samples_sent_total as f64);
            out.add(&BYTES_SENT, &remote, s.bytes_sent_total as f64);
            out.add(&SAMPLES_FAILED, &remote, s.samples_failed_total as f64);
            out.add(&SAMPLES_RETRIED, &remote, s.samples_retried_total as f64);
            for (reason, n) in &s.samples_dropped_total {
                out.add(
                    &SAMPLES_DROPPED,
                    &[("remote", s.remote.as_str()), ("reason", reason)],
                    *n as f64,
                );
            }
            out.add(&QUEUE_SAMPLES, &remote, s.queue_samples as f64);
            out.add(&OLDEST_QUEUED_AGE, &remote, s.oldest_queued_age_seconds);
            if let Some(ts) = s.last_success_timestamp_seconds {
                out.add(&LAST_SUCCESS, &remote, ts);
            }
        }
        out
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        for r in &self.lock().running {
            r.task.abort();
        }
    }
}

/// A snapshot of the running writers, so a caller can work on them (send,
/// wait, read status) without holding the hub's lock.
fn writers(running: &[Running]) -> Vec<Arc<Writer>> {
    running.iter().map(|r| r.writer.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_label_is_host_and_path_only() {
        assert_eq!(
            remote_label("https://mimir.example:8443/api/v1/push?X-Key=s3cr3t"),
            "mimir.example:8443/api/v1/push"
        );
        assert_eq!(
            remote_label("http://127.0.0.1:9090/api/v1/write"),
            "127.0.0.1:9090/api/v1/write"
        );
        assert_eq!(remote_label("http://u:pw@host/x"), "invalid");
    }

    #[tokio::test]
    async fn a_reload_keeps_the_queue_of_a_receiver_whose_url_stays() {
        // Port 9 (discard) on loopback: nothing listens, every send fails.
        let config = |timeout: &str, url: &str| {
            crate::config::parse_str(
                &format!("remote_write:\n  - {{url: \"{url}\", timeout: {timeout}}}\n"),
                "c.yaml",
            )
            .unwrap()
        };
        let mut round = Output::new();
        round.gauge("vitals_host_load1", "Load.", &[], 0.5);
        let hub = Hub::default();
        hub.apply(&config("1s", "http://127.0.0.1:9/a"), Some("host".into()));
        hub.offer("host", 1000.0, &round, Output::new);
        hub.offer("cgroup", 1001.0, &round, || {
            unreachable!("not the agent's source")
        });
        // The host round, the agent's own families that go with it, the
        // cgroup round: three requests.
        assert_eq!(hub.statuses()[0].queue_rounds, 3);
        // Same URL, another timeout: a new writer with the old queue.
        hub.apply(&config("2s", "http://127.0.0.1:9/a"), Some("host".into()));
        let s = &hub.statuses()[0];
        // The host round carries the 10 `vitals_remote_write_*` samples too.
        assert_eq!((s.queue_rounds, s.queue_samples), (3, 12));
        // Another URL: a fresh queue.
        hub.apply(&config("2s", "http://127.0.0.1:9/b"), Some("host".into()));
        assert_eq!(hub.statuses()[0].queue_rounds, 0);
        assert_eq!(hub.statuses()[0].remote, "127.0.0.1:9/b");
        hub.apply(&crate::config::parse_str("", "c.yaml").unwrap(), None);
        assert!(hub.is_empty());
    }

    /// Every queued request of the hub's first receiver, decoded: each
    /// series as `name{labels} value@timestamp` (`STALE` for a marker).
    fn queued(hub: &Hub) -> Vec<Vec<String>> {
        let writer = hub.lock().running[0].writer.clone();
        let batches = writer.lock_queue().front(usize::MAX);
        batches
            .iter()
            .map(|b| {
                let raw = proto::decompress(&b.payload).unwrap();
                let req = proto::WriteRequest::decode(raw.as_slice()).unwrap();
                req.timeseries
                    .iter()
                    .map(|ts| {
                        let labels: Vec<String> = ts
                            .labels
                            .iter()
                            .map(|l| format!("{}={}", l.name, l.value))
                            .collect();
                        let s = &ts.samples[0];
                        let value = if s.value.to_bits() == proto::STALE_NAN {
                            "STALE".to_owned()
                        } else {
                            s.value.to_string()
                        };
                        format!("{} {value}@{}", labels.join(","), s.timestamp)
                    })
                    .collect()
            })
            .collect()
    }

    #[tokio::test]
    async fn vanished_series_failed_rounds_and_removed_sources_are_marked_stale() {
        let config = crate::config::parse_str(
            "remote_write:\n  - {url: \"http://127.0.0.1:9/a\", job_instance_labels: false, queue: {max_samples_per_send: 2}}\n",
            "c.yaml",
        )
        .unwrap();
        let hub = Hub::default();
        hub.apply(&config, Some("agent-carrier".into()));
        let round = |apps: &[&str]| {
            let mut out = Output::new();
            for app in apps {
                out.gauge(
                    "vitals_pg_connections_by_application",
                    "",
                    &[("application_name", app)],
                    1.0,
                );
            }
            out
        };
        hub.offer("pg", 10.0, &round(&["web", "batch", "cron"]), Output::new);
        // `batch` closed its connections.
        hub.offer("pg", 15.0, &round(&["web", "cron"]), Output::new);
        // The wall clock went back: the round is stamped after the last one.
        hub.offer("pg", 14.0, &round(&["web", "cron"]), Output::new);
        // A failed round with nothing in it: everything it had goes stale.
        hub.offer("pg", 20.0, &Output::new(), Output::new);
        hub.offer("redis", 21.0, &round(&["queue"]), Output::new);
        // A reload that keeps `pg` and removes `redis`.
        hub.retain_sources(&["pg"], 22.0);
        let n = "__name__=vitals_pg_connections_by_application,application_name=";
        assert_eq!(
            queued(&hub),
            [
                vec![format!("{n}web 1@10000"), format!("{n}batch 1@10000")],
                vec![format!("{n}cron 1@10000")],
                vec![format!("{n}web 1@15000"), format!("{n}cron 1@15000")],
                vec![format!("{n}batch STALE@15000")],
                vec![format!("{n}web 1@15001"), format!("{n}cron 1@15001")],
                vec![
                    format!("{n}web STALE@20000"),
                    format!("{n}cron STALE@20000")
                ],
                vec![format!("{n}queue 1@21000")],
                vec![format!("{n}queue STALE@22000")],
            ]
        );
    }

    #[tokio::test]
    async fn job_and_instance_are_added_unless_the_series_or_external_labels_have_them() {
        let config = crate::config::parse_str(
            "remote_write:\n  - {url: \"http://127.0.0.1:9/a\", external_labels: {instance: pod-7}}\n",
            "c.yaml",
        )
        .unwrap();
        let hub = Hub::default();
        hub.apply(&config, None);
        let mut out = Output::new();
        out.gauge("up_like", "", &[], 1.0);
        out.gauge("app_metric", "", &[("job", "checkout")], 2.0);
        hub.offer("app", 1.0, &out, Output::new);
        assert_eq!(
            queued(&hub),
            [vec![
                "__name__=up_like,instance=pod-7,job=vitals 1@1000".to_owned(),
                "__name__=app_metric,instance=pod-7,job=checkout 2@1000".to_owned(),
            ]]
        );
        assert!(!host_name().is_empty());
    }
}
