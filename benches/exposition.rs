//! Rendering `/metrics`: `metrics::render` over the outputs of one round, in
//! both formats. This is the work done once per source round (never per
//! scrape: a scrape copies out the last rendering).
//!
//! The input is a real exposition captured from `bench/run.sh` (vitals with
//! host, cgroup, a PostgreSQL primary and standby, PgBouncer and the default
//! checks; the cgroup path anonymised), parsed back into one `Output` per
//! source the way the runtime holds them, plus the same with 20 PostgreSQL
//! targets for how it scales.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use vitals::metrics::{render, Format, Kind, Output};

const EXPOSITION: &str = include_str!("data/vitals-exposition.prom");

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `a="x",b="y"` into pairs (values may contain escaped quotes and commas).
fn labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim_start_matches(',').to_owned();
        let body = &rest[eq + 2..];
        let mut end = 0;
        let bytes = body.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        out.push((key, unescape(&body[..end.min(body.len())])));
        rest = body.get(end + 1..).unwrap_or("");
    }
    out
}

/// Which runtime source a family belongs to, so that families shared by
/// several targets end up in several outputs as they do at run time.
fn source_of(name: &str, labels: &[(String, String)]) -> String {
    let target = labels
        .iter()
        .find(|(k, _)| k == "target")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let subsystem = name.split('_').nth(1).unwrap_or("");
    format!("{subsystem}/{target}")
}

/// The exposition as per-source outputs; with `pg_targets` > 2 every
/// PostgreSQL target's output is repeated under new target names.
fn outputs(pg_targets: usize) -> Vec<Output> {
    let mut help = std::collections::HashMap::new();
    let mut kind = std::collections::HashMap::new();
    let mut by_source: std::collections::BTreeMap<String, Output> = Default::default();
    for line in EXPOSITION.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help.insert(name.to_owned(), unescape(text));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, k) = rest.split_once(' ').unwrap_or((rest, "gauge"));
            let k = if k == "counter" {
                Kind::Counter
            } else {
                Kind::Gauge
            };
            kind.insert(name.to_owned(), k);
        } else if !line.is_empty() && !line.starts_with('#') {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let value: f64 = value.parse().expect("sample value");
            let (name, lbls) = match series.split_once('{') {
                Some((n, l)) => (n, labels(l.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            let pairs: Vec<(&str, &str)> =
                lbls.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let h = help.get(name).map(String::as_str).unwrap_or("");
            let source = source_of(name, &lbls);
            let copies = if source.starts_with("pg/") {
                pg_targets.div_ceil(2).max(1)
            } else {
                1
            };
            for copy in 0..copies {
                let renamed: Vec<(String, String)>;
                let (source, pairs) = if copy == 0 {
                    (source.clone(), pairs.clone())
                } else {
                    renamed = lbls
                        .iter()
                        .map(|(k, v)| {
                            let v = if k == "target" {
                                format!("{v}{copy}")
                            } else {
                                v.clone()
                            };
                            (k.clone(), v)
                        })
                        .collect();
                    (
                        format!("{source}{copy}"),
                        renamed
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect(),
                    )
                };
                let out = by_source.entry(source).or_default();
                match kind.get(name) {
                    Some(Kind::Counter) => out.counter(name, h, &pairs, value),
                    _ => out.gauge(name, h, &pairs, value),
                }
            }
        }
    }
    by_source.into_values().collect()
}

fn bench_render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    for pg_targets in [2usize, 20] {
        let outs = outputs(pg_targets);
        let samples: usize = outs
            .iter()
            .flat_map(|o| &o.families)
            .map(|f| f.samples.len())
            .sum();
        group.throughput(Throughput::Elements(samples as u64));
        for (format, label) in [(Format::Text, "text"), (Format::OpenMetrics, "openmetrics")] {
            group.bench_with_input(
                BenchmarkId::new(label, format!("{pg_targets}_pg_targets_{samples}_samples")),
                &outs,
                |b, outs| b.iter(|| render(black_box(outs.iter()), format)),
            );
        }
    }
    group.finish();
}

fn sanity() {
    // The parse above must give back what was captured, or the benchmark
    // measures something else.
    let text = render(outputs(2).iter(), Format::Text);
    assert_eq!(
        text.lines().filter(|l| !l.starts_with('#')).count(),
        EXPOSITION.lines().filter(|l| !l.starts_with('#')).count()
    );
}

fn config() -> Criterion {
    sanity();
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_render
}
criterion_main!(benches);
