//! The sample model every source writes into, and the two exposition formats.
//!
//! A source fills an [`Output`] during one sampling round; the runtime keeps the
//! latest `Output` of each source and renders all of them together. Nothing here
//! is long-lived mutable metric state: a series exists only while the round that
//! produced it is the latest one, which is what makes vanished series vanish.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Prometheus metric type. vitals' own families are gauges and counters;
/// the other kinds come from an application's endpoint re-exported by the
/// `app_metrics` source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Gauge,
    Counter,
    /// Samples `_bucket{le}`, `_sum`, `_count` under the family's name.
    Histogram,
    /// Samples `{quantile}` (no suffix), `_sum`, `_count`.
    Summary,
    /// No TYPE given (`unknown` in OpenMetrics).
    Untyped,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Untyped => "untyped",
        }
    }
}

/// The description of one metric family: everything but its samples.
///
/// Each source declares its families as `const` values beside the code that
/// emits them, plus one `METRICS` table listing them all; `collectors::catalog()`
/// gathers those tables. Anything that needs "every metric vitals exports"
/// (check selector warnings, the README reference, the dashboard cross-check)
/// reads the catalog, never a list of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Desc {
    pub name: &'static str,
    pub kind: Kind,
    /// A full sentence that says where the figure comes from.
    pub help: &'static str,
    /// The label names every sample carries (beyond the ones the runtime adds).
    pub labels: &'static [&'static str],
}

impl Desc {
    pub const fn gauge(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Desc {
            name,
            kind: Kind::Gauge,
            help,
            labels,
        }
    }
    pub const fn counter(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Desc {
            name,
            kind: Kind::Counter,
            help,
            labels,
        }
    }
}

/// One labelled value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Appended to the family name to make the sample's name: `""`, or
    /// `_bucket`, `_sum`, `_count` in a histogram or summary family.
    pub suffix: &'static str,
}

impl Sample {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A metric family: one name, one type, one help text, many samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// What one source produced in one round.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    pub families: Vec<Family>,
    /// Facts for `/status` that are no metric (a PostgreSQL target's top
    /// statements with their texts, its largest unused indexes).
    pub details: Option<serde_json::Value>,
    /// Families the checks read but `/metrics` does not show: an
    /// application's series scraped with `export: false`.
    pub check_only: Vec<Family>,
}

impl Output {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample of the family `desc` describes. Non-finite values are
    /// dropped, as with [`Output::gauge`].
    pub fn add(&mut self, desc: &Desc, labels: &[(&str, &str)], value: f64) {
        debug_assert!(
            desc.kind != Kind::Counter || desc.name.ends_with("_total"),
            "counter {} must end in _total",
            desc.name
        );
        self.push(desc.name, desc.help, desc.kind, labels, value);
    }

    /// Adds a gauge sample. Non-finite values are dropped: a NaN from a
    /// division by a zero limit is "no data", not a number to alert on.
    ///
    /// For tests and for series that are not vitals' own (an application's
    /// re-exported metrics): vitals' own families are emitted with
    /// [`Output::add`] and a [`Desc`] from the catalog.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.push(name, help, Kind::Gauge, labels, value);
    }

    /// Adds a counter sample; `name` must end in `_total`.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        debug_assert!(
            name.ends_with("_total"),
            "counter {name} must end in _total"
        );
        self.push(name, help, Kind::Counter, labels, value);
    }

    fn push(&mut self, name: &str, help: &str, kind: Kind, labels: &[(&str, &str)], value: f64) {
        if !value.is_finite() {
            return;
        }
        let sample = Sample {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
            suffix: "",
        };
        match self.families.iter_mut().find(|f| f.name == name) {
            Some(family) => family.samples.push(sample),
            None => self.families.push(Family {
                name: name.to_owned(),
                help: help.to_owned(),
                kind,
                samples: vec![sample],
            }),
        }
    }

    /// Appends every family of `other`.
    pub fn extend(&mut self, other: Output) {
        for family in other.families {
            match self.families.iter_mut().find(|f| f.name == family.name) {
                Some(existing) => existing.samples.extend(family.samples),
                None => self.families.push(family),
            }
        }
        self.check_only.extend(other.check_only);
    }

    /// The family called `name`, if any sample of it was recorded; the
    /// check-only families included.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families
            .iter()
            .chain(&self.check_only)
            .find(|f| f.name == name)
    }

    /// The value of the first sample of `name` whose labels include all of
    /// `labels`. Meant for tests and for checks, not for the hot path.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.family(name)?
            .samples
            .iter()
            .find(|s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .map(|s| s.value)
    }
}

/// Exposition format chosen by content negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Renders families from several outputs as one exposition. Families with the
/// same name coming from different sources (two PostgreSQL targets) are merged
/// under one TYPE line, and families are sorted by name so output is stable.
/// A family whose kind differs from the first one of that name (two
/// applications disagreeing) is left out rather than rendered invalid.
pub fn render<'a>(outputs: impl IntoIterator<Item = &'a Output>, format: Format) -> String {
    let mut merged: BTreeMap<&str, (&Family, Vec<&Sample>)> = BTreeMap::new();
    let mut samples_total = 0;
    for output in outputs {
        for family in &output.families {
            let entry = merged
                .entry(family.name.as_str())
                .or_insert_with(|| (family, Vec::new()));
            if entry.0.kind == family.kind {
                entry.1.extend(family.samples.iter());
                samples_total += family.samples.len();
            }
        }
    }
    let mut out = String::with_capacity(merged.len() * 160 + samples_total * 64);
    for (name, (family, samples)) in merged {
        let (meta_name, kind) = match (format, family.kind) {
            // OpenMetrics names a counter family without its `_total`
            // suffix; an application's counter without one (allowed in
            // text 0.0.4) is `unknown` there.
            (Format::OpenMetrics, Kind::Counter) => match name.strip_suffix("_total") {
                Some(base) => (base, "counter"),
                None => (name, "unknown"),
            },
            (Format::OpenMetrics, Kind::Untyped) => (name, "unknown"),
            (_, kind) => (name, kind.as_str()),
        };
        if !family.help.is_empty() {
            let _ = writeln!(
                out,
                "# HELP {meta_name} {}",
                escape_help(&family.help, format)
            );
        }
        let _ = writeln!(out, "# TYPE {meta_name} {kind}");
        for sample in samples {
            out.push_str(name);
            out.push_str(sample.suffix);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                }
                out.push('}');
            }
            out.push(' ');
            write_value(&mut out, sample.value);
            out.push('\n');
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // `{}` prints the shortest representation that round-trips, and
        // integers without a trailing ".0": 14.036781, 1073741824.
        let _ = write!(out, "{value}");
    }
}

fn escape_help(help: &str, format: Format) -> String {
    let escaped = help.replace('\\', "\\\\").replace('\n', "\\n");
    match format {
        // OpenMetrics' escaped-string has no bare double quote.
        Format::OpenMetrics => escaped.replace('"', "\\\""),
        Format::Text => escaped,
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_output() -> Output {
        let mut out = Output::new();
        out.gauge("vitals_b", "B gauge.", &[("target", "pri\"ma\\ry\n")], 1.5);
        out.counter("vitals_a_total", "A counter.", &[], 14.036781);
        out.gauge("vitals_b", "B gauge.", &[("target", "replica")], 1e21);
        out.gauge("vitals_nan", "Dropped.", &[], f64::NAN);
        out
    }

    #[test]
    fn text_format_sorts_merges_and_escapes() {
        let text = render([&sample_output()], Format::Text);
        assert_eq!(
            text,
            "# HELP vitals_a_total A counter.\n# TYPE vitals_a_total counter\nvitals_a_total 14.036781\n\
             # HELP vitals_b B gauge.\n# TYPE vitals_b gauge\n\
             vitals_b{target=\"pri\\\"ma\\\\ry\\n\"} 1.5\nvitals_b{target=\"replica\"} 1000000000000000000000\n"
        );
    }

    #[test]
    fn openmetrics_strips_counter_suffix_in_metadata_and_ends_with_eof() {
        let text = render([&sample_output()], Format::OpenMetrics);
        assert!(text.starts_with(
            "# HELP vitals_a A counter.\n# TYPE vitals_a counter\nvitals_a_total 14.036781\n"
        ));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn same_family_from_two_outputs_gets_one_type_line() {
        let mut a = Output::new();
        a.gauge("vitals_pg_up", "Up.", &[("target", "a")], 1.0);
        let mut b = Output::new();
        b.gauge("vitals_pg_up", "Up.", &[("target", "b")], 0.0);
        let text = render([&a, &b], Format::Text);
        assert_eq!(text.matches("# TYPE vitals_pg_up gauge").count(), 1);
        assert!(text.contains("vitals_pg_up{target=\"a\"} 1\nvitals_pg_up{target=\"b\"} 0\n"));
    }

    #[test]
    fn value_lookup_matches_label_subset() {
        let out = sample_output();
        assert_eq!(out.value("vitals_b", &[("target", "replica")]), Some(1e21));
        assert_eq!(out.value("vitals_b", &[("target", "nope")]), None);
        assert_eq!(out.value("vitals_nan", &[]), None);
    }
}
