//! The send loop of one receiver: oldest rounds first, one request at a
//! time (so each series arrives in order), retry with backoff on 5xx, 429
//! (after its `Retry-After`) and network errors, drop on any other refusal.
//! Catching up after an outage, queued requests are joined up to
//! `queue.max_samples_per_send` samples; a 2xx is a success whatever its
//! body says (remote write 1.0: "clients MUST ignore the response body").

use super::proto;
use super::queue::{self, DropReason};
use super::Writer;
use crate::http_client::conn::Answer;
use bytes::Bytes;
use http_body_util::Full;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A `Retry-After` longer than this is shortened to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// What to do after one attempt.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Delivered,
    /// Try the same rounds again, after at least this long.
    Retry(Option<Duration>),
    /// Refused for good (4xx other than 429).
    Drop,
}

/// Classifies a receiver's answer.
pub fn verdict(answer: &Answer, now: SystemTime) -> Verdict {
    match answer.status {
        200..=299 => Verdict::Delivered,
        429 | 500..=599 => Verdict::Retry(
            answer
                .headers
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now)),
        ),
        _ => Verdict::Drop,
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3),
/// capped at five minutes.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The next backoff: doubled, within [MIN_BACKOFF, MAX_BACKOFF].
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).clamp(MIN_BACKOFF, MAX_BACKOFF)
}

/// One request body from several rounds: their `WriteRequest`s
/// concatenated (a repeated field concatenates on the wire), compressed
/// again. One round is sent as it is.
fn body(batches: &[queue::Batch]) -> Result<Bytes, String> {
    if let [one] = batches {
        return Ok(one.payload.clone());
    }
    let mut raw = Vec::new();
    for b in batches {
        raw.extend(proto::decompress(&b.payload)?);
    }
    Ok(Bytes::from(proto::compress(&raw)))
}

pub(super) async fn run(writer: Arc<Writer>) {
    let mut backoff = Duration::ZERO;
    // The highest round already attempted once and failed: sending it again
    // counts as a retry.
    let mut failed_through = 0u64;
    let mut next_send = tokio::time::Instant::now();
    loop {
        writer.persist();
        writer.expire();
        let batches = writer.lock_queue().front(writer.max_per_send);
        if batches.is_empty() {
            writer.notify.notified().await;
            continue;
        }
        // Wait for the send interval or the backoff, persisting rounds that
        // arrive meanwhile.
        let flushing = writer.flushing.load(std::sync::atomic::Ordering::Relaxed);
        if flushing && backoff.is_zero() {
            next_send = tokio::time::Instant::now();
        }
        if tokio::time::Instant::now() < next_send {
            tokio::select! {
                _ = tokio::time::sleep_until(next_send) => {}
                _ = writer.notify.notified() => continue,
            }
        }
        let samples: usize = batches.iter().map(|b| b.samples).sum();
        let last_seq = batches.last().map_or(0, |b| b.seq);
        let retried: usize = batches
            .iter()
            .filter(|b| b.seq <= failed_through)
            .map(|b| b.samples)
            .sum();
        writer.stats(|s| s.samples_retried += retried as u64);
        let (outcome, bytes) = match body(&batches) {
            Ok(body) => {
                let bytes = body.len() as u64;
                (writer.send(body).await, bytes)
            }
            Err(e) => (Err(format!("re-reading queued rounds: {e}")), 0),
        };
        let now = SystemTime::now();
        let verdict = match &outcome {
            Ok(answer) => verdict(answer, now),
            Err(_) => Verdict::Retry(None),
        };
        match verdict {
            Verdict::Delivered => {
                writer.lock_queue().remove_through(last_seq);
                writer.stats(|s| {
                    s.samples_sent += samples as u64;
                    s.bytes_sent += bytes;
                    s.last_success = Some(crate::runtime::unix_now());
                    s.last_error = None;
                });
                if backoff > Duration::ZERO {
                    tracing::info!(remote = %writer.remote, "remote write delivering again");
                }
                backoff = Duration::ZERO;
                next_send = match writer.interval {
                    Some(every) => tokio::time::Instant::now() + every,
                    None => tokio::time::Instant::now(),
                };
            }
            Verdict::Drop => {
                let removed = writer.lock_queue().remove_through(last_seq);
                let error = describe(&outcome);
                tracing::warn!(remote = %writer.remote, samples = removed, error = %error, "remote write refused; samples dropped");
                writer.stats(|s| {
                    s.samples_failed += samples as u64;
                    s.count_drop(DropReason::Rejected, removed);
                    s.last_error = Some(error);
                });
                next_send = tokio::time::Instant::now();
            }
            Verdict::Retry(after) => {
                failed_through = failed_through.max(last_seq);
                backoff = next_backoff(backoff);
                let wait = after.map_or(backoff, |a| a.max(MIN_BACKOFF));
                let error = describe(&outcome);
                if writer.stats(|s| s.last_error.is_none()) {
                    tracing::warn!(remote = %writer.remote, error = %error, retry_in = ?wait, "remote write failed; will retry");
                } else {
                    tracing::debug!(remote = %writer.remote, error = %error, retry_in = ?wait, "remote write failed again");
                }
                writer.stats(|s| {
                    s.samples_failed += samples as u64;
                    s.last_error = Some(error);
                });
                next_send = tokio::time::Instant::now() + wait;
            }
        }
    }
}

/// The error line for logs and `/status`: the status and the start of the
/// receiver's answer, or the network error. Never a header or credential.
fn describe(outcome: &Result<Answer, String>) -> String {
    match outcome {
        Ok(a) if a.body.is_empty() => format!("HTTP {}", a.status),
        Ok(a) => format!("HTTP {}: {}", a.status, a.body),
        Err(e) => e.clone(),
    }
}

/// Builds the POST of a remote-write body with the protocol's headers.
pub fn request(body: Bytes) -> hyper::Request<Full<Bytes>> {
    let mut req = hyper::Request::new(Full::new(body));
    *req.method_mut() = hyper::Method::POST;
    let h = req.headers_mut();
    use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
    h.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    h.insert(
        "x-prometheus-remote-write-version",
        HeaderValue::from_static("0.1.0"),
    );
    h.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("vitals/", env!("CARGO_PKG_VERSION"))),
    );
    req
}

/// Does the queue's pending file work for `dir`.
pub(super) fn persist(dir: &std::path::Path, ops: Vec<queue::FsOp>) -> Result<(), String> {
    if ops.is_empty() {
        return Ok(());
    }
    queue::apply_fs_ops(dir, ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Answer {
        let mut headers = hyper::HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert(hyper::header::RETRY_AFTER, v.parse().unwrap());
        }
        Answer {
            status,
            headers,
            body: String::new(),
        }
    }

    #[test]
    fn verdicts_by_status() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        for (status, retry_after, want) in [
            (200, None, Verdict::Delivered),
            (204, None, Verdict::Delivered),
            (500, None, Verdict::Retry(None)),
            (503, Some("7"), Verdict::Retry(Some(Duration::from_secs(7)))),
            (429, None, Verdict::Retry(None)),
            (429, Some("3"), Verdict::Retry(Some(Duration::from_secs(3)))),
            (
                429,
                Some("Wed, 21 Oct 2015 07:28:30 GMT"),
                Verdict::Retry(Some(Duration::from_secs(30))),
            ),
            (429, Some("86400"), Verdict::Retry(Some(MAX_RETRY_AFTER))),
            (429, Some("soon"), Verdict::Retry(None)),
            (400, None, Verdict::Drop),
            (404, None, Verdict::Drop),
            (413, Some("5"), Verdict::Drop),
        ] {
            assert_eq!(
                verdict(&answer(status, retry_after), now),
                want,
                "{status} {retry_after:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_within_bounds() {
        let mut b = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..7 {
            b = next_backoff(b);
            seen.push(b.as_millis());
        }
        assert_eq!(seen, [250, 500, 1000, 2000, 4000, 5000, 5000]);
    }

    #[test]
    fn several_rounds_make_one_body_with_all_their_series() {
        use prost::Message;
        let round = |v: f64, seq: u64| {
            let mut out = crate::metrics::Output::new();
            out.gauge("vitals_host_load1", "Load.", &[], v);
            let series = proto::round_series([&out]);
            let raw = proto::round_requests(&series, &[], seq as i64, &[], 2000)[0].encode_to_vec();
            queue::Batch {
                seq,
                timestamp_ms: seq as i64,
                samples: 1,
                payload: Bytes::from(proto::compress(&raw)),
            }
        };
        let batches = [round(0.5, 1), round(0.75, 2)];
        let merged = body(&batches).unwrap();
        let req =
            proto::WriteRequest::decode(proto::decompress(&merged).unwrap().as_slice()).unwrap();
        let values: Vec<(f64, i64)> = req
            .timeseries
            .iter()
            .map(|t| (t.samples[0].value, t.samples[0].timestamp))
            .collect();
        assert_eq!(values, [(0.5, 1), (0.75, 2)]);
        assert_eq!(body(&batches[..1]).unwrap(), batches[0].payload);
    }
}
