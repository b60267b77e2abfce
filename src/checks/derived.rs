//! The derived check kinds: `rate`, `ratio`, `quantile` and `trend`. A
//! derived check reads raw series from the sources' rounds, keeps their
//! recent points in its [`History`], and gives each instance a value
//! computed by [`compute`](super::compute); the value then goes through the
//! same state machine as a plain check's (levels, hysteresis, `for`,
//! readiness, unknown). [`promql`] gives the equivalent expression for
//! `vitals rules`.

use super::compute::{self, Point};
use super::history::{History, SeriesKey};
use super::{Selector, SourceRound};
use crate::config::CheckConfig;
use crate::metrics::Kind as MetricKind;
use std::collections::{BTreeMap, BTreeSet};

/// Series labels, sorted by name.
pub type LabelSet = Vec<(String, String)>;

/// A derived kind with its selectors parsed and windows in seconds (the
/// config owns it, with its validation).
pub use crate::config::DerivedKind as Kind;

/// One instance's value this evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub value: Option<f64>,
    pub source: String,
    pub failed: bool,
    /// Why there is no value (warming up, no traffic…).
    pub why: Option<String>,
}

/// A derived check's kind and history.
#[derive(Clone, Debug)]
pub struct Derived {
    pub kind: Kind,
    history: History,
}

/// A raw sample a selector picked.
struct Hit<'a> {
    labels: &'a [(String, String)],
    value: f64,
    source: &'a str,
}

/// The samples named `sel.metric` (a family's own samples, or a histogram
/// or summary family's `_bucket`/`_sum`/`_count` by their full name) whose
/// labels match.
fn hits<'a>(rounds: &[SourceRound<'a>], sel: &Selector, want: Want) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    for round in rounds {
        let families = round.output.families.iter().chain(&round.output.check_only);
        for family in families {
            let suffix = match want {
                Want::Buckets if family.kind == MetricKind::Histogram => {
                    if family.name == sel.metric || format!("{}_bucket", family.name) == sel.metric
                    {
                        "_bucket"
                    } else {
                        continue;
                    }
                }
                Want::Quantiles if family.kind == MetricKind::Summary => {
                    if family.name == sel.metric {
                        ""
                    } else {
                        continue;
                    }
                }
                Want::Buckets | Want::Quantiles => continue,
                Want::Plain => match sel.metric.strip_prefix(family.name.as_str()) {
                    Some("") => "",
                    Some(s @ ("_bucket" | "_sum" | "_count"))
                        if matches!(family.kind, MetricKind::Histogram | MetricKind::Summary) =>
                    {
                        match s {
                            "_bucket" => "_bucket",
                            "_sum" => "_sum",
                            _ => "_count",
                        }
                    }
                    _ => continue,
                },
            };
            for sample in &family.samples {
                if sample.suffix == suffix && sel.matches(&sample.labels) {
                    out.push(Hit {
                        labels: &sample.labels,
                        value: sample.value,
                        source: round.source,
                    });
                }
            }
        }
    }
    out
}

/// A histogram series' buckets (le as written, value) and `_count`.
type Buckets<'a> = (Vec<(&'a str, f64)>, Option<f64>);

/// Why a histogram series cannot give a quantile: the rules both text
/// formats state for it ("Histogram MetricPoints MUST have one bucket with
/// an +Inf threshold. Buckets MUST be cumulative"; the `_count` is the
/// `+Inf` bucket's value). Returned per series (labels but `le`, sorted),
/// with its source. The series stay exported; only the quantile refuses
/// them rather than interpolating a wrong value.
fn histogram_faults(rounds: &[SourceRound<'_>], sel: &Selector) -> Vec<(LabelSet, String, String)> {
    let mut faults = Vec::new();
    for round in rounds {
        let families = round.output.families.iter().chain(&round.output.check_only);
        for family in families {
            if family.kind != MetricKind::Histogram
                || !(family.name == sel.metric || format!("{}_bucket", family.name) == sel.metric)
            {
                continue;
            }
            // Per series: its buckets (le as written, value) and _count.
            let mut series: BTreeMap<LabelSet, Buckets<'_>> = BTreeMap::new();
            for sample in &family.samples {
                if !sel.matches(&sample.labels) && sample.suffix == "_bucket" {
                    continue;
                }
                let key: LabelSet = sorted(&sample.labels)
                    .into_iter()
                    .filter(|(k, _)| k != "le")
                    .collect();
                match sample.suffix {
                    "_bucket" => {
                        let le = sample.label("le").unwrap_or("");
                        series.entry(key).or_default().0.push((le, sample.value));
                    }
                    "_count" => {
                        if let Some(entry) = series.get_mut(&key) {
                            entry.1 = Some(sample.value);
                        } else if sel.matches(&sample.labels) {
                            series.entry(key).or_default().1 = Some(sample.value);
                        }
                    }
                    _ => {}
                }
            }
            for (labels, (buckets, count)) in series {
                if buckets.is_empty() {
                    continue; // a _count the selector's buckets do not have
                }
                let fault = bucket_fault(&buckets, count);
                if let Some(fault) = fault {
                    let series = format!(
                        "{}{}",
                        family.name,
                        super::diagnostics::format_labels(&labels)
                    );
                    faults.push((
                        labels,
                        round.source.to_owned(),
                        format!("histogram {series} breaks the format's rules ({fault}); no quantile is computed from it"),
                    ));
                }
            }
        }
    }
    faults
}

/// The first rule `buckets` (le as written, cumulative count) and `count`
/// break, if any.
fn bucket_fault(buckets: &[(&str, f64)], count: Option<f64>) -> Option<String> {
    let mut bounds: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for (le, value) in buckets {
        match le.parse::<f64>() {
            Ok(b) if !b.is_nan() => bounds.push((b, *value)),
            _ => return Some(format!("bucket le={le:?} is not a number")),
        }
    }
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(w) = bounds.windows(2).find(|w| w[0].0 == w[1].0) {
        return Some(format!("two buckets le={}", w[0].0));
    }
    let Some(&(_, inf)) = bounds.last().filter(|(b, _)| *b == f64::INFINITY) else {
        return Some("no +Inf bucket".to_owned());
    };
    if let Some(w) = bounds.windows(2).find(|w| w[1].1 < w[0].1) {
        return Some(format!(
            "bucket counts decrease: le={} has {}, le={} has {}",
            w[0].0, w[0].1, w[1].0, w[1].1
        ));
    }
    match count {
        Some(c) if c != inf => Some(format!("_count {c} is not the +Inf bucket's {inf}")),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Plain,
    Buckets,
    Quantiles,
}

fn sorted(labels: &[(String, String)]) -> LabelSet {
    let mut l = labels.to_vec();
    l.sort();
    l
}

/// The labels named in `by` (sorted), as `sum by (…)` keeps them.
fn group(labels: &[(String, String)], by: &[String]) -> LabelSet {
    let mut l: LabelSet = labels
        .iter()
        .filter(|(k, _)| by.contains(k))
        .cloned()
        .collect();
    l.sort();
    l
}

/// Points of a series within `(now - window, now]`.
fn in_window(points: &std::collections::VecDeque<Point>, now: f64, window: f64) -> Vec<Point> {
    points
        .iter()
        .copied()
        .filter(|(t, _)| *t > now - window && *t <= now)
        .collect()
}

/// Sums per group: `(sum of the values, source of the first, any failed)`.
#[derive(Default)]
struct Sum {
    total: f64,
    count: usize,
    series: usize,
    source: String,
}

impl Sum {
    fn add(&mut self, value: Option<f64>, source: &str) {
        if self.series == 0 {
            self.source = source.to_owned();
        }
        self.series += 1;
        if let Some(v) = value {
            self.total += v;
            self.count += 1;
        }
    }
}

const NOT_ENOUGH: &str = "fewer than two samples in the window yet";

impl Derived {
    pub fn new(kind: Kind) -> Self {
        let window = kind.window();
        Derived {
            kind,
            history: History::new(window),
        }
    }

    /// Records this evaluation's samples and computes every instance.
    pub fn evaluate(
        &mut self,
        rounds: &[SourceRound<'_>],
        failed: &BTreeSet<&str>,
        now: f64,
    ) -> BTreeMap<LabelSet, Seen> {
        self.history.begin();
        let record = |history: &mut History, role: &'static str, hits: Vec<Hit<'_>>| {
            for h in hits {
                let key: SeriesKey = (role, sorted(h.labels));
                history.record(key, h.source, now, h.value);
            }
        };
        let mut summary: Vec<Hit<'_>> = Vec::new();
        let mut faults: Vec<(LabelSet, String, String)> = Vec::new();
        let mut limits: Vec<Hit<'_>> = Vec::new();
        match &self.kind {
            Kind::Rate { metric, .. } | Kind::Trend { metric, .. } => {
                record(&mut self.history, "m", hits(rounds, metric, Want::Plain));
            }
            Kind::Ratio {
                numerator,
                denominator,
                ..
            } => {
                record(&mut self.history, "n", hits(rounds, numerator, Want::Plain));
                record(
                    &mut self.history,
                    "d",
                    hits(rounds, denominator, Want::Plain),
                );
            }
            Kind::Quantile { histogram, .. } => {
                record(
                    &mut self.history,
                    "h",
                    hits(rounds, histogram, Want::Buckets),
                );
                summary = hits(rounds, histogram, Want::Quantiles);
                faults = histogram_faults(rounds, histogram);
            }
        }
        if let Kind::Trend {
            limit: Some(limit), ..
        } = &self.kind
        {
            limits = hits(rounds, limit, Want::Plain);
        }
        self.history.end(failed);

        let mut seen: BTreeMap<LabelSet, Seen> = BTreeMap::new();
        let mut put = |labels: LabelSet, value: Option<f64>, source: &str, why: Option<String>| {
            seen.insert(
                labels,
                Seen {
                    value,
                    source: source.to_owned(),
                    failed: failed.contains(source),
                    why,
                },
            );
        };
        match &self.kind {
            Kind::Rate { window, by, .. } => {
                let mut sums: BTreeMap<LabelSet, Sum> = BTreeMap::new();
                for (labels, s) in self.history.role("m") {
                    let r = compute::rate(&in_window(s.points(), now, *window), now, *window);
                    match by {
                        None => put(
                            labels.to_vec(),
                            r,
                            &s.source,
                            r.is_none().then(|| NOT_ENOUGH.into()),
                        ),
                        Some(by) => sums.entry(group(labels, by)).or_default().add(r, &s.source),
                    }
                }
                for (labels, sum) in sums {
                    let value = (sum.count > 0).then_some(sum.total);
                    put(
                        labels,
                        value,
                        &sum.source,
                        value.is_none().then(|| NOT_ENOUGH.into()),
                    );
                }
            }
            Kind::Ratio { window, by, .. } => {
                let mut sums: BTreeMap<LabelSet, (Sum, Sum)> = BTreeMap::new();
                for (role, side) in [("n", 0), ("d", 1)] {
                    for (labels, s) in self.history.role(role) {
                        let r = compute::rate(&in_window(s.points(), now, *window), now, *window);
                        let entry = sums.entry(group(labels, by)).or_default();
                        let sum = if side == 0 {
                            &mut entry.0
                        } else {
                            &mut entry.1
                        };
                        sum.add(r, &s.source);
                    }
                }
                for (labels, (num, den)) in sums {
                    if den.series == 0 {
                        continue; // no denominator series: not an instance
                    }
                    let (value, why) = if den.count == 0 {
                        (None, Some(NOT_ENOUGH.to_owned()))
                    } else if den.total <= 0.0 {
                        (
                            None,
                            Some("no traffic: the denominator's rate is 0".to_owned()),
                        )
                    } else {
                        // A group without numerator series has none of them.
                        (Some(num.total / den.total), None)
                    };
                    put(labels, value, &den.source, why);
                }
            }
            Kind::Quantile { q, window, by, .. } => {
                let mut groups: BTreeMap<LabelSet, (Vec<(f64, f64)>, Sum)> = BTreeMap::new();
                for (labels, s) in self.history.role("h") {
                    let Some(le) = labels
                        .iter()
                        .find(|(k, _)| k == "le")
                        .and_then(|(_, v)| v.parse::<f64>().ok())
                    else {
                        continue;
                    };
                    let r = compute::rate(&in_window(s.points(), now, *window), now, *window);
                    let entry = groups.entry(group(labels, by)).or_default();
                    entry.1.add(r, &s.source);
                    if let Some(r) = r {
                        entry.0.push((le, r));
                    }
                }
                // A group with a histogram that breaks the rules is refused
                // whole: its sum by le would be a wrong distribution.
                let mut refused: BTreeMap<LabelSet, (String, String)> = BTreeMap::new();
                for (labels, source, why) in faults {
                    refused.entry(group(&labels, by)).or_insert((source, why));
                }
                for (labels, (buckets, sum)) in groups {
                    if refused.contains_key(&labels) {
                        continue;
                    }
                    let value = compute::bucket_quantile(*q, &buckets);
                    let why = value.is_none().then(|| {
                        if sum.count == 0 {
                            NOT_ENOUGH.to_owned()
                        } else {
                            "no observations in the window".to_owned()
                        }
                    });
                    put(labels, value, &sum.source, why);
                }
                for (labels, (source, why)) in refused {
                    put(labels, None, &source, Some(why));
                }
                // A summary's own quantile series: the largest per group.
                let mut maxima: BTreeMap<LabelSet, (f64, &str)> = BTreeMap::new();
                for h in &summary {
                    let matches_q = h
                        .labels
                        .iter()
                        .find(|(k, _)| k == "quantile")
                        .and_then(|(_, v)| v.parse::<f64>().ok())
                        .is_some_and(|v| (v - q).abs() < 1e-9);
                    if matches_q && !h.value.is_nan() {
                        let entry = maxima
                            .entry(group(h.labels, by))
                            .or_insert((f64::NEG_INFINITY, h.source));
                        entry.0 = entry.0.max(h.value);
                    }
                }
                for (labels, (value, source)) in maxima {
                    put(labels, Some(value), source, None);
                }
            }
            Kind::Trend {
                window,
                warmup,
                limit,
                ..
            } => {
                for (labels, s) in self.history.role("m") {
                    let age = now - s.first_seen;
                    let limit_value = match limit {
                        None => None,
                        Some(_) => {
                            let same = limits.iter().find(|l| sorted(l.labels) == labels);
                            match same.or(if limits.len() == 1 {
                                limits.first()
                            } else {
                                None
                            }) {
                                Some(l) => Some(l.value),
                                // No limit for this series: nothing to reach.
                                None => continue,
                            }
                        }
                    };
                    if age < *warmup {
                        let why =
                            format!("warming up: seen for {age:.0}s of the {warmup:.0}s warm-up");
                        put(labels.to_vec(), None, &s.source, Some(why));
                        continue;
                    }
                    let fit = compute::least_squares(&in_window(s.points(), now, *window), now);
                    let value = fit.map(|f| match limit_value {
                        Some(l) => compute::time_until(&f, l),
                        None => f.slope * 3600.0,
                    });
                    put(
                        labels.to_vec(),
                        value,
                        &s.source,
                        value.is_none().then(|| NOT_ENOUGH.into()),
                    );
                }
            }
        }
        seen
    }

    /// Points held, for the tests and the README's figure.
    pub fn points(&self) -> usize {
        self.history.points()
    }
}

/// The PromQL expression whose value is the derived check's value, for
/// `vitals rules`; `None` for a plain check.
pub fn promql(c: &CheckConfig) -> Option<String> {
    let kind = c.derived()?;
    let dur = |w: f64| crate::config::Duration(std::time::Duration::from_secs_f64(w)).to_string();
    let by = |labels: &[String]| {
        if labels.is_empty() {
            "sum".to_owned()
        } else {
            format!("sum by ({})", labels.join(", "))
        }
    };
    Some(match kind {
        Kind::Rate {
            metric,
            window,
            by: None,
        } => format!("rate({metric}[{}])", dur(window)),
        Kind::Rate {
            metric,
            window,
            by: Some(labels),
        } => format!("{} (rate({metric}[{}]))", by(&labels), dur(window)),
        Kind::Ratio {
            numerator,
            denominator,
            window,
            by: labels,
        } => format!(
            "{} (rate({numerator}[{w}])) / {} (rate({denominator}[{w}]))",
            by(&labels),
            by(&labels),
            w = dur(window)
        ),
        Kind::Quantile {
            mut histogram,
            q,
            window,
            by: labels,
        } => {
            if !histogram.metric.ends_with("_bucket") {
                histogram.metric.push_str("_bucket");
            }
            let mut keep = vec!["le".to_owned()];
            keep.extend(labels);
            format!(
                "histogram_quantile({q}, {} (rate({histogram}[{}])))",
                by(&keep),
                dur(window)
            )
        }
        Kind::Trend {
            metric,
            window,
            limit: None,
            ..
        } => format!("deriv({metric}[{}]) * 3600", dur(window)),
        Kind::Trend {
            metric,
            window,
            limit: Some(limit),
            ..
        } => format!(
            "({limit} - predict_linear({metric}[{w}], 0)) / (deriv({metric}[{w}]) > 0)",
            w = dur(window)
        ),
    })
}

#[cfg(test)]
mod tests;
