//! The Prometheus remote-write 1.0 messages (`prometheus/prompb/remote.proto`
//! and `types.proto`), written by hand as prost structs so no `protoc` runs
//! at build time. Only the fields vitals sends: no metadata, exemplars or
//! histograms.
//!
//! What the specification asks of a sender's series, and where it is done:
//! - every sample under its full name: a histogram's `_bucket`, `_sum`,
//!   `_count` ([`round_series`] names a sample `family + suffix`);
//! - label names unique and sorted, no empty label value (an empty value
//!   means the label is absent, so the label is left out), `__name__`
//!   always present ([`round_series`], [`with_target_labels`]);
//! - a stale marker, the NaN `0x7ff0000000000002` and never otherwise, for a
//!   series that will no longer be appended to ([`STALE_NAN`], used by the hub).

use crate::metrics::Output;
use std::collections::HashSet;

/// Prometheus' staleness marker. A NaN an application exposes is sent as
/// the NaN it parsed to (`0x7ff8000000000000`), never as this one.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN)
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Sorted by name, `__name__` included.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// One series of a round as pushed: its labels, `__name__` first among
/// equals, sorted by name, none empty; and its value.
pub type Series = (Vec<Label>, f64);

/// Every sample of `outputs` as a series under its full name (the family's
/// name and the sample's suffix: `_bucket`, `_sum`, `_count`). A series
/// that appears twice (two sources, or an exposition that repeats one) is
/// sent once, with its first value, as `/metrics` shows it.
pub fn round_series<'a>(outputs: impl IntoIterator<Item = &'a Output>) -> Vec<Series> {
    let mut all: Vec<Series> = Vec::new();
    for output in outputs {
        for family in &output.families {
            for sample in &family.samples {
                let mut labels = Vec::with_capacity(1 + sample.labels.len());
                labels.push(Label {
                    name: "__name__".to_owned(),
                    value: format!("{}{}", family.name, sample.suffix),
                });
                for (name, value) in &sample.labels {
                    // An empty value means "no such label" (remote write
                    // 1.0: label values MUST NOT be empty).
                    if !value.is_empty() && name != "__name__" {
                        labels.push(Label {
                            name: name.clone(),
                            value: value.clone(),
                        });
                    }
                }
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                // Label names unique: a repeated name keeps its first value.
                labels.dedup_by(|later, first| later.name == first.name);
                all.push((labels, sample.value));
            }
        }
    }
    let keep: Vec<bool> = {
        let mut seen: HashSet<&[Label]> = HashSet::with_capacity(all.len());
        all.iter().map(|(labels, _)| seen.insert(labels)).collect()
    };
    let mut keep = keep.into_iter();
    all.retain(|_| keep.next().unwrap_or(false));
    all
}

/// The series of `previous` that `current` no longer has: each gets a
/// stale marker, so a receiver stops showing it at once instead of for
/// its lookback (5 minutes in Prometheus).
pub fn vanished(previous: &[Series], current: &[Series]) -> Vec<Vec<Label>> {
    let now: HashSet<&[Label]> = current.iter().map(|(l, _)| l.as_slice()).collect();
    previous
        .iter()
        .filter(|(l, _)| !now.contains(l.as_slice()))
        .map(|(l, _)| l.clone())
        .collect()
}

/// Adds the labels of `extra` a series does not carry already (the series'
/// own value wins, as with Prometheus' external labels); an empty value is
/// no label. Keeps the labels sorted.
pub fn with_target_labels(mut labels: Vec<Label>, extra: &[(String, String)]) -> Vec<Label> {
    let mut added = false;
    for (name, value) in extra {
        if !value.is_empty() && !labels.iter().any(|l| &l.name == name) {
            labels.push(Label {
                name: name.clone(),
                value: value.clone(),
            });
            added = true;
        }
    }
    if added {
        labels.sort_by(|a, b| a.name.cmp(&b.name));
    }
    labels
}

/// The requests of one round at `timestamp_ms`: its series, then a stale
/// marker for each vanished one, with `extra` labels added, at most
/// `max_per_request` samples a request, in order.
pub fn round_requests(
    series: &[Series],
    stale: &[Vec<Label>],
    timestamp_ms: i64,
    extra: &[(String, String)],
    max_per_request: usize,
) -> Vec<WriteRequest> {
    let all = series
        .iter()
        .map(|(labels, value)| (labels, *value))
        .chain(stale.iter().map(|labels| (labels, stale_nan())));
    let mut requests: Vec<WriteRequest> = Vec::new();
    let mut current = WriteRequest::default();
    for (labels, value) in all {
        if current.timeseries.len() >= max_per_request.max(1) {
            requests.push(std::mem::take(&mut current));
        }
        current.timeseries.push(TimeSeries {
            labels: with_target_labels(labels.clone(), extra),
            samples: vec![Sample {
                value,
                timestamp: timestamp_ms,
            }],
        });
    }
    if !current.timeseries.is_empty() {
        requests.push(current);
    }
    requests
}

/// A round as one receiver's `write_relabel_configs` make it: `extra`
/// labels added first (Prometheus relabels after its external labels), then
/// the rules. A series they drop, or leave without a valid name, is not
/// sent, and neither is its stale marker: the receiver never had it. Two
/// series the rules make one are sent once (the first); a stale marker is
/// left out when its relabeled series is still sent in this round.
pub fn relabel_round(
    series: &[Series],
    stale: &[Vec<Label>],
    extra: &[(String, String)],
    rules: &[crate::config::RelabelConfig],
) -> (Vec<Series>, Vec<Vec<Label>>) {
    use crate::config::relabel::{is_label_name, is_metric_name};
    let mut memo = crate::relabel::Memo::new(rules.len());
    let mut one = |labels: &[Label]| -> Option<Vec<Label>> {
        let labels = with_target_labels(labels.to_vec(), extra);
        let mut pairs: crate::relabel::Labels =
            labels.into_iter().map(|l| (l.name, l.value)).collect();
        crate::relabel::process_memo(&mut pairs, rules, &mut memo).ok()?;
        let named = pairs
            .iter()
            .find(|(k, _)| k == "__name__")
            .is_some_and(|(_, v)| is_metric_name(v));
        if !named || !pairs.iter().all(|(k, _)| is_label_name(k)) {
            return None;
        }
        Some(
            pairs
                .into_iter()
                .map(|(name, value)| Label { name, value })
                .collect(),
        )
    };
    let live: Vec<Series> = series
        .iter()
        .filter_map(|(labels, value)| one(labels).map(|l| (l, *value)))
        .collect();
    let gone: Vec<Vec<Label>> = stale.iter().filter_map(|l| one(l)).collect();
    let (keep_live, keep_gone): (Vec<bool>, Vec<bool>) = {
        let mut seen: HashSet<&[Label]> = HashSet::with_capacity(live.len() + gone.len());
        (
            live.iter().map(|(l, _)| seen.insert(l)).collect(),
            gone.iter().map(|l| seen.insert(l)).collect(),
        )
    };
    let out_series: Vec<Series> = live
        .into_iter()
        .zip(keep_live)
        .filter_map(|(s, keep)| keep.then_some(s))
        .collect();
    let out_stale: Vec<Vec<Label>> = gone
        .into_iter()
        .zip(keep_gone)
        .filter_map(|(l, keep)| keep.then_some(l))
        .collect();
    (out_series, out_stale)
}

/// Snappy block format (not framed), as the protocol requires.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .unwrap_or_default()
}

pub fn decompress(data: &[u8]) -> Result<Vec<u8>, String> {
    snap::raw::Decoder::new()
        .decompress_vec(data)
        .map_err(|e| format!("snappy: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn names(ts: &TimeSeries) -> String {
        ts.labels
            .iter()
            .map(|l| format!("{}={}", l.name, l.value))
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn round_requests_sort_labels_add_external_ones_and_round_trip() {
        let mut out = Output::new();
        out.gauge("vitals_host_load1", "Load.", &[], 0.25);
        out.gauge(
            "vitals_pg_up",
            "Up.",
            &[("target", "primary"), ("pod", "own")],
            1.0,
        );
        let external = [
            ("pod".to_owned(), "web-1".to_owned()),
            ("namespace".to_owned(), "shop".to_owned()),
            ("empty".to_owned(), String::new()),
        ];
        let reqs = round_requests(
            &round_series([&out]),
            &[],
            1_700_000_000_123,
            &external,
            2000,
        );
        assert_eq!(reqs.len(), 1);
        let req = &reqs[0];
        assert_eq!(req.timeseries.len(), 2);
        assert_eq!(
            names(&req.timeseries[0]),
            "__name__=vitals_host_load1,namespace=shop,pod=web-1"
        );
        // The series' own `pod` label wins over the external one; an
        // external label with an empty value is no label.
        assert_eq!(
            names(&req.timeseries[1]),
            "__name__=vitals_pg_up,namespace=shop,pod=own,target=primary"
        );
        assert_eq!(
            req.timeseries[0].samples,
            vec![Sample {
                value: 0.25,
                timestamp: 1_700_000_000_123
            }]
        );
        let wire = compress(&req.encode_to_vec());
        let back = WriteRequest::decode(decompress(&wire).unwrap().as_slice()).unwrap();
        assert_eq!(&back, req);
    }

    /// An application's histogram and summary as the app parser models them.
    fn app_output() -> Output {
        use crate::metrics::{Family, Kind, Sample as S};
        let s = |labels: &[(&str, &str)], value, suffix| S {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
            suffix,
        };
        let mut out = Output::new();
        out.families.push(Family {
            name: "http_request_duration_seconds".into(),
            help: "Latency.".into(),
            kind: Kind::Histogram,
            samples: vec![
                s(&[("le", "0.1"), ("path", "/")], 3.0, "_bucket"),
                s(&[("le", "+Inf"), ("path", "/")], 5.0, "_bucket"),
                s(&[("path", "/")], 1.25, "_sum"),
                s(&[("path", "/")], 5.0, "_count"),
            ],
        });
        out.families.push(Family {
            name: "rpc_seconds".into(),
            help: String::new(),
            kind: Kind::Summary,
            samples: vec![
                s(&[("quantile", "0.5")], 0.2, ""),
                s(&[], 7.5, "_sum"),
                s(&[], 30.0, "_count"),
                // Repeated in the same round: sent once, the first value.
                s(&[], 31.0, "_count"),
                // An empty label value is no label: the same series again.
                s(&[("shard", "")], 32.0, "_count"),
            ],
        });
        out
    }

    #[test]
    fn every_sample_goes_under_its_full_name_once() {
        let series = round_series([&app_output()]);
        let shown: Vec<String> = series
            .iter()
            .map(|(labels, value)| {
                let ts = TimeSeries {
                    labels: labels.clone(),
                    samples: vec![],
                };
                format!("{} {value}", names(&ts))
            })
            .collect();
        assert_eq!(
            shown,
            [
                "__name__=http_request_duration_seconds_bucket,le=0.1,path=/ 3",
                "__name__=http_request_duration_seconds_bucket,le=+Inf,path=/ 5",
                "__name__=http_request_duration_seconds_sum,path=/ 1.25",
                "__name__=http_request_duration_seconds_count,path=/ 5",
                "__name__=rpc_seconds,quantile=0.5 0.2",
                "__name__=rpc_seconds_sum 7.5",
                "__name__=rpc_seconds_count 30",
            ]
        );
        // Labels sorted, unique, none empty, `__name__` in every series.
        for (labels, _) in &series {
            assert!(
                labels.windows(2).all(|w| w[0].name < w[1].name),
                "{labels:?}"
            );
            assert!(labels.iter().all(|l| !l.value.is_empty()));
            assert!(labels.iter().any(|l| l.name == "__name__"));
        }
    }

    #[test]
    fn vanished_series_get_the_exact_stale_marker() {
        let mut before = Output::new();
        before.gauge(
            "vitals_pg_connections_by_application",
            "",
            &[("application_name", "web")],
            4.0,
        );
        before.gauge(
            "vitals_pg_connections_by_application",
            "",
            &[("application_name", "batch")],
            2.0,
        );
        let mut after = Output::new();
        after.gauge(
            "vitals_pg_connections_by_application",
            "",
            &[("application_name", "web")],
            5.0,
        );
        let (before, after) = (round_series([&before]), round_series([&after]));
        let gone = vanished(&before, &after);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0][1].value, "batch");
        let reqs = round_requests(&after, &gone, 2_000, &[], 2000);
        let back = WriteRequest::decode(
            decompress(&compress(&reqs[0].encode_to_vec()))
                .unwrap()
                .as_slice(),
        )
        .unwrap();
        assert_eq!(back.timeseries.len(), 2);
        assert_eq!(back.timeseries[0].samples[0].value, 5.0);
        let marker = &back.timeseries[1].samples[0];
        assert_eq!(marker.value.to_bits(), 0x7ff0_0000_0000_0002);
        assert_eq!(marker.timestamp, 2_000);
        // A NaN the application itself exposes is not a stale marker.
        assert_ne!("NaN".parse::<f64>().unwrap().to_bits(), STALE_NAN);
    }

    #[test]
    fn a_round_is_split_in_order_at_the_request_limit() {
        let mut out = Output::new();
        for i in 0..5 {
            out.gauge("m", "", &[("i", &i.to_string())], f64::from(i));
        }
        let series = round_series([&out]);
        let stale = vec![series[0].0.clone()];
        let reqs = round_requests(&series[1..], &stale, 7, &[], 2);
        let sizes: Vec<usize> = reqs.iter().map(|r| r.timeseries.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let order: Vec<f64> = reqs
            .iter()
            .flat_map(|r| &r.timeseries)
            .map(|t| t.samples[0].value)
            .collect();
        assert_eq!(order[..4], [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(order[4].to_bits(), STALE_NAN);
    }

    #[test]
    fn encoding_matches_the_protobuf_wire_format() {
        // Field 1 (timeseries, length-delimited) holding field 1 (labels)
        // and field 2 (samples: double tag 0x09, varint tag 0x10).
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "a".into(),
                    value: "b".into(),
                }],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 2,
                }],
            }],
        };
        assert_eq!(
            req.encode_to_vec(),
            [
                0x0a, 0x15, 0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b', 0x12, 0x0b, 0x09, 0, 0,
                0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x02
            ]
        );
    }

    #[test]
    fn concatenated_requests_decode_as_one() {
        let one = |v: f64| WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "m".into(),
                }],
                samples: vec![Sample {
                    value: v,
                    timestamp: v as i64,
                }],
            }],
        };
        let mut both = one(1.0).encode_to_vec();
        both.extend(one(2.0).encode_to_vec());
        let merged = WriteRequest::decode(both.as_slice()).unwrap();
        assert_eq!(merged.timeseries.len(), 2);
        assert_eq!(merged.timeseries[1].samples[0].value, 2.0);
    }

    #[test]
    fn write_relabel_drops_series_and_their_stale_markers() {
        let series = |name: &str, pod: &str| -> Series {
            (
                vec![
                    Label {
                        name: "__name__".into(),
                        value: name.into(),
                    },
                    Label {
                        name: "pod".into(),
                        value: pod.into(),
                    },
                ],
                1.0,
            )
        };
        let rules: Vec<crate::config::RelabelConfig> = serde_saphyr::from_str(
            "- {source_labels: [__name__], regex: 'debug_.*', action: drop}\n- {regex: pod, action: labeldrop}\n- {source_labels: [region], target_label: zone}\n",
        )
        .unwrap();
        let live = [series("up", "a"), series("up", "b"), series("debug_x", "a")];
        let stale: Vec<Vec<Label>> = [
            series("debug_y", "a"),
            series("up", "c"),
            series("gone", "a"),
        ]
        .into_iter()
        .map(|(l, _)| l)
        .collect();
        let extra = [("region".to_owned(), "eu".to_owned())];
        let (out, stale) = relabel_round(&live, &stale, &extra, &rules);
        let text = |l: &[Label]| {
            l.iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect::<Vec<_>>()
                .join(",")
        };
        // up{pod=a} and up{pod=b} are one series once `pod` is dropped;
        // debug_x is not sent; the external label is there for the rules.
        assert_eq!(
            out.iter().map(|(l, _)| text(l)).collect::<Vec<_>>(),
            ["__name__=up,region=eu,zone=eu"]
        );
        // debug_y's marker is dropped with it; up{pod=c}'s is the live `up`.
        assert_eq!(
            stale.iter().map(|l| text(l)).collect::<Vec<_>>(),
            ["__name__=gone,region=eu,zone=eu"]
        );
    }
}
