//! The Prometheus remote-write 1.0 messages (`prometheus/prompb/remote.proto`
//! and `types.proto`), written by hand as prost structs so no `protoc` runs
//! at build time. Only the fields vitals sends: no metadata, exemplars or
//! histograms.

use crate::metrics::Output;

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

#[derive(Clone, PartialEq, Eq, prost::Message)]
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

/// One round's samples as a `WriteRequest`: every sample of `outputs` at
/// `timestamp_ms`, with `external` labels added where the series does not
/// carry a label of that name already (as Prometheus does).
pub fn round_request<'a>(
    outputs: impl IntoIterator<Item = &'a Output>,
    timestamp_ms: i64,
    external: &[(String, String)],
) -> WriteRequest {
    let mut timeseries = Vec::new();
    for output in outputs {
        for family in &output.families {
            for sample in &family.samples {
                let mut labels = Vec::with_capacity(1 + sample.labels.len() + external.len());
                labels.push(Label {
                    name: "__name__".to_owned(),
                    value: family.name.clone(),
                });
                for (name, value) in &sample.labels {
                    labels.push(Label {
                        name: name.clone(),
                        value: value.clone(),
                    });
                }
                for (name, value) in external {
                    if !labels.iter().any(|l| &l.name == name) {
                        labels.push(Label {
                            name: name.clone(),
                            value: value.clone(),
                        });
                    }
                }
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                timeseries.push(TimeSeries {
                    labels,
                    samples: vec![Sample {
                        value: sample.value,
                        timestamp: timestamp_ms,
                    }],
                });
            }
        }
    }
    WriteRequest { timeseries }
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

    #[test]
    fn round_request_sorts_labels_adds_external_ones_and_round_trips() {
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
        ];
        let req = round_request([&out], 1_700_000_000_123, &external);
        let names = |ts: &TimeSeries| {
            ts.labels
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(req.timeseries.len(), 2);
        assert_eq!(
            names(&req.timeseries[0]),
            "__name__=vitals_host_load1,namespace=shop,pod=web-1"
        );
        // The series' own `pod` label wins over the external one.
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
        assert_eq!(back, req);
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
}
