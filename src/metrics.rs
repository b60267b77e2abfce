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
///
/// Whatever the outputs hold, the exposition is valid in both formats; this
/// is the one place that guards it (an application's families come in as
/// its endpoint wrote them):
/// - a family whose kind differs from the first one of that name (two
///   applications disagreeing) is left out;
/// - a family with an invalid name is left out, and so is a sample with an
///   invalid or repeated label name, a bucket without a numeric `le`, a
///   summary quantile without a `quantile` between 0 and 1, or a suffix
///   its kind does not have;
/// - a series (sample name and label set, an empty label value counting as
///   no label, as Prometheus reads it) given again is left out: the first
///   one stays;
/// - a family whose sample names could clash with an earlier one's (by name
///   order) is left out: a gauge `x_count` beside a histogram `x`, and in
///   OpenMetrics, whose family names drop `_total`, a gauge `x` beside a
///   counter `x_total`, or a gauge `x_created` beside a counter `x_total`
///   unless it is that counter's `_created` samples (then it is rendered
///   inside the counter's family, as OpenMetrics wants it);
/// - a histogram's or summary's samples are rendered grouped by series
///   (their labels but `le` or `quantile`), so no series is interleaved.
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
    merged.retain(|name, _| valid_metric_name(name));
    let blocks = plan(&merged, format);
    let mut out = String::with_capacity(merged.len() * 160 + samples_total * 64);
    for block in blocks {
        let family = block.family;
        let name = family.name.as_str();
        if !family.help.is_empty() {
            let _ = writeln!(
                out,
                "# HELP {} {}",
                block.meta_name,
                escape_help(&family.help, format)
            );
        }
        let _ = writeln!(out, "# TYPE {} {}", block.meta_name, block.kind);
        let mut lines: Vec<(&str, &Sample)> = merged
            .get(name)
            .map(|(_, samples)| samples.iter().map(|s| (name, *s)).collect())
            .unwrap_or_default();
        for created in &block.created {
            if let Some((_, samples)) = merged.get(created) {
                lines.extend(samples.iter().map(|s| (*created, *s)));
            }
        }
        let grouped =
            !block.created.is_empty() || matches!(family.kind, Kind::Histogram | Kind::Summary);
        for (sample_name, sample) in clean(name, family.kind, lines, grouped) {
            out.push_str(sample_name);
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

/// One family as it is rendered.
struct Block<'a> {
    family: &'a Family,
    /// The name on the HELP and TYPE lines.
    meta_name: &'a str,
    kind: &'static str,
    /// OpenMetrics: gauge families `<base>_created` rendered inside this one.
    created: Vec<&'a str>,
}

/// The families to render, in name order, and under which metadata: the
/// ones whose sample names could clash with an earlier family's are left
/// out (see [`render`]).
fn plan<'a>(
    merged: &BTreeMap<&'a str, (&'a Family, Vec<&'a Sample>)>,
    format: Format,
) -> Vec<Block<'a>> {
    // OpenMetrics: `<base>_created` gauges that belong in a counter,
    // histogram or summary family `<base>` of the same exposition.
    let parent_of = |name: &str| -> Option<&'a str> {
        if format != Format::OpenMetrics {
            return None;
        }
        let base = name.strip_suffix("_created")?;
        let (gauge, _) = merged.get(name)?;
        if gauge.kind != Kind::Gauge {
            return None;
        }
        let total = format!("{base}_total");
        if let Some((key, (f, _))) = merged.get_key_value(total.as_str()) {
            if f.kind == Kind::Counter {
                return Some(*key);
            }
        }
        let (key, (f, _)) = merged.get_key_value(base)?;
        matches!(f.kind, Kind::Histogram | Kind::Summary).then_some(*key)
    };
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut blocks: Vec<Block<'a>> = Vec::new();
    let mut children: BTreeMap<&'a str, Vec<&'a str>> = BTreeMap::new();
    for &name in merged.keys() {
        if let Some(parent) = parent_of(name) {
            children.entry(parent).or_default().push(name);
        }
    }
    let accept = |name: &'a str,
                  family: &'a Family,
                  taken: &mut std::collections::HashSet<String>|
     -> Option<Block<'a>> {
        let (meta_name, kind, names) = claims(name, family.kind, format);
        if names.iter().any(|n| taken.contains(n)) {
            return None;
        }
        taken.extend(names);
        Some(Block {
            family,
            meta_name,
            kind,
            created: Vec::new(),
        })
    };
    for (&name, (family, _)) in merged {
        if parent_of(name).is_some() {
            continue;
        }
        if let Some(mut block) = accept(name, family, &mut taken) {
            if let Some(created) = children.remove(name) {
                block.created = created;
            }
            blocks.push(block);
        }
    }
    // A `_created` gauge whose parent was itself left out stands alone.
    for name in children.into_values().flatten() {
        if let Some((family, _)) = merged.get(name) {
            if let Some(block) = accept(name, family, &mut taken) {
                blocks.push(block);
            }
        }
    }
    blocks.sort_by(|a, b| a.family.name.cmp(&b.family.name));
    blocks
}

/// The metadata name, the type word and every name a family may give its
/// samples in `format` (the names no other family may use).
fn claims(name: &str, kind: Kind, format: Format) -> (&str, &'static str, Vec<String>) {
    let with = |base: &str, suffixes: &[&str]| -> Vec<String> {
        suffixes.iter().map(|s| format!("{base}{s}")).collect()
    };
    match (format, kind) {
        (Format::Text, Kind::Histogram) => (
            name,
            "histogram",
            with(name, &["_bucket", "_sum", "_count"]),
        ),
        (Format::Text, Kind::Summary) => (name, "summary", with(name, &["", "_sum", "_count"])),
        (Format::Text, kind) => (name, kind.as_str(), vec![name.to_owned()]),
        // OpenMetrics names a counter family without its `_total` suffix;
        // an application's counter without one (allowed in text 0.0.4) is
        // `unknown` there.
        (Format::OpenMetrics, Kind::Counter) => match name.strip_suffix("_total") {
            Some(base) => (base, "counter", with(base, &["", "_total", "_created"])),
            None => (name, "unknown", vec![name.to_owned()]),
        },
        (Format::OpenMetrics, Kind::Histogram) => (
            name,
            "histogram",
            with(name, &["", "_bucket", "_sum", "_count", "_created"]),
        ),
        (Format::OpenMetrics, Kind::Summary) => (
            name,
            "summary",
            with(name, &["", "_sum", "_count", "_created"]),
        ),
        (Format::OpenMetrics, Kind::Untyped) => (name, "unknown", vec![name.to_owned()]),
        (Format::OpenMetrics, Kind::Gauge) => (name, "gauge", vec![name.to_owned()]),
    }
}

/// A hash of a label set as Prometheus identifies a series: the labels'
/// order aside, an empty value counting as no label, and the label `skip`
/// (`le`, `quantile`) left out. Equal sets hash equal; [`same_series`]
/// tells a rare collision from a repeat.
pub fn series_hash(labels: &[(String, String)], skip: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    labels
        .iter()
        .filter(|(k, v)| !v.is_empty() && Some(k.as_str()) != skip)
        .fold(0u64, |acc, pair| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            pair.hash(&mut h);
            acc.wrapping_add(h.finish())
        })
}

/// Whether two label sets (each without a repeated name) are one series,
/// as [`series_hash`] sees them.
pub fn same_series(a: &[(String, String)], b: &[(String, String)], skip: Option<&str>) -> bool {
    let kept = |(k, v): &&(String, String)| !v.is_empty() && Some(k.as_str()) != skip;
    a.iter().filter(kept).count() == b.iter().filter(kept).count()
        && a.iter().filter(kept).all(|p| b.contains(p))
}

/// A family's samples without the invalid ones and the repeated series,
/// grouped by series when `grouped` (first appearance order kept).
fn clean<'a>(
    family: &str,
    kind: Kind,
    lines: Vec<(&'a str, &'a Sample)>,
    grouped: bool,
) -> Vec<(&'a str, &'a Sample)> {
    let point_label = match kind {
        Kind::Histogram => Some("le"),
        Kind::Summary => Some("quantile"),
        _ => None,
    };
    // Series by hash (with the sample name), to the first kept sample.
    let mut seen: std::collections::HashMap<u64, usize> =
        std::collections::HashMap::with_capacity(lines.len());
    let mut kept: Vec<(&str, &Sample)> = Vec::with_capacity(lines.len());
    for (name, sample) in lines {
        // A `_created` gauge rendered within its parent's family.
        let created = name != family;
        let suffix_ok = match (kind, sample.suffix) {
            (_, "") => created || kind != Kind::Histogram,
            (Kind::Histogram, "_bucket" | "_sum" | "_count") => !created,
            (Kind::Summary, "_sum" | "_count") => !created,
            _ => false,
        };
        // `le` a number, `quantile` one between 0 and 1: OpenMetrics
        // refuses anything else, and no quantile can use it.
        let has_point = point_label
            .and_then(|l| sample.label(l))
            .is_some_and(|v| !v.is_empty());
        let point = match (point_label, point_label.and_then(|l| sample.label(l))) {
            (Some("le"), Some(v)) => v.parse::<f64>().is_ok_and(|v| !v.is_nan()),
            (Some(_), Some(v)) => v.parse::<f64>().is_ok_and(|v| (0.0..=1.0).contains(&v)),
            _ => false,
        };
        let needs_point = !created
            && matches!(
                (kind, sample.suffix),
                (Kind::Histogram, "_bucket") | (Kind::Summary, "")
            );
        let labels_ok = sample.labels.iter().enumerate().all(|(i, (k, _))| {
            valid_label_name(k) && !sample.labels[..i].iter().any(|(o, _)| o == k)
        });
        let point_ok = if needs_point { point } else { !has_point };
        if !suffix_ok || !point_ok || !labels_ok {
            continue;
        }
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (name, sample.suffix).hash(&mut h);
            h.finish() ^ series_hash(&sample.labels, None)
        };
        let same = |(n, s): &(&str, &Sample)| {
            *n == name && s.suffix == sample.suffix && same_series(&s.labels, &sample.labels, None)
        };
        match seen.get(&key) {
            None => {
                seen.insert(key, kept.len());
                kept.push((name, sample));
            }
            // A repeat is the first sample with its hash; anything else
            // is a collision, looked up the long way.
            Some(&at) if same(&kept[at]) => {}
            Some(_) => {
                if !kept.iter().any(same) {
                    kept.push((name, sample));
                }
            }
        }
    }
    if !grouped {
        return kept;
    }
    let mut order: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Vec<(&str, &Sample)>> = Vec::new();
    for (name, sample) in kept {
        let key = series_hash(&sample.labels, point_label);
        let member = |g: &Vec<(&str, &Sample)>| {
            g.first()
                .is_some_and(|(_, first)| same_series(&first.labels, &sample.labels, point_label))
        };
        let at = match order.get(&key) {
            Some(&at) if member(&groups[at]) => Some(at),
            Some(_) => groups.iter().position(member),
            None => None,
        };
        let at = at.unwrap_or_else(|| {
            order.entry(key).or_insert(groups.len());
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push((name, sample));
    }
    groups.into_iter().flatten().collect()
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, as both formats and Prometheus define it.
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
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
    // A carriage return has no escape, and at the end of the line it would
    // read as a CRLF line end (an error in OpenMetrics): HELP is text for
    // people, so it goes.
    let escaped = help
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "");
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

    type Spec<'a> = (&'a [(&'a str, &'a str)], f64, &'static str);

    fn fam(name: &str, kind: Kind, samples: &[Spec<'_>]) -> Family {
        Family {
            name: name.into(),
            help: String::new(),
            kind,
            samples: samples
                .iter()
                .map(|(labels, value, suffix)| Sample {
                    labels: labels
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                    value: *value,
                    suffix,
                })
                .collect(),
        }
    }

    fn both(out: &Output) -> [String; 2] {
        [
            render([out], Format::Text),
            render([out], Format::OpenMetrics),
        ]
    }

    #[test]
    fn a_repeated_series_is_rendered_once_the_first_kept() {
        let mut a = Output::new();
        a.families.push(fam(
            "app_jobs",
            Kind::Gauge,
            &[
                (&[("x", "1"), ("y", "2")], 1.0, ""),
                (&[("y", "2"), ("x", "1")], 2.0, ""),
                (&[("x", "1"), ("y", "2"), ("z", "")], 3.0, ""),
                (&[("x", "2")], 4.0, ""),
            ],
        ));
        // The same series from a second output.
        let mut b = Output::new();
        b.families
            .push(fam("app_jobs", Kind::Gauge, &[(&[("x", "2")], 5.0, "")]));
        for text in [
            render([&a, &b], Format::Text),
            render([&a, &b], Format::OpenMetrics),
        ] {
            let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            assert_eq!(
                samples,
                ["app_jobs{x=\"1\",y=\"2\"} 1", "app_jobs{x=\"2\"} 4"],
                "{text}"
            );
        }
    }

    #[test]
    fn clashing_families_leave_the_later_one_out() {
        let mut out = Output::new();
        out.families.push(fam(
            "lat",
            Kind::Histogram,
            &[(&[("le", "+Inf")], 3.0, "_bucket"), (&[], 3.0, "_count")],
        ));
        out.families
            .push(fam("lat_count", Kind::Gauge, &[(&[], 9.0, "")]));
        out.families
            .push(fam("lat_bucket", Kind::Untyped, &[(&[], 9.0, "")]));
        out.families
            .push(fam("jobs", Kind::Gauge, &[(&[], 1.0, "")]));
        out.families
            .push(fam("jobs_total", Kind::Counter, &[(&[], 2.0, "")]));
        let [text, om] = both(&out);
        for t in [&text, &om] {
            assert!(t.contains("lat_count 3\n"), "{t}");
            assert!(
                !t.contains("lat_count 9") && !t.contains("lat_bucket 9"),
                "{t}"
            );
            assert!(t.contains("jobs 1\n"), "{t}");
        }
        // Text 0.0.4 has both `jobs` and `jobs_total`; OpenMetrics would
        // give both the family name `jobs`.
        assert!(
            text.contains("# TYPE jobs_total counter\njobs_total 2\n"),
            "{text}"
        );
        assert!(!om.contains("jobs_total"), "{om}");
        assert_eq!(om.matches("# TYPE jobs ").count(), 1, "{om}");
    }

    #[test]
    fn created_gauges_go_inside_their_family_in_openmetrics() {
        let mut out = Output::new();
        out.families.push(fam(
            "req_total",
            Kind::Counter,
            &[(&[("code", "200")], 7.0, ""), (&[("code", "500")], 2.0, "")],
        ));
        out.families.push(fam(
            "req_created",
            Kind::Gauge,
            &[
                (&[("code", "200")], 100.0, ""),
                (&[("code", "500")], 200.0, ""),
            ],
        ));
        let [text, om] = both(&out);
        assert!(text.contains("# TYPE req_created gauge\nreq_created{code=\"200\"} 100\n"));
        assert!(
            om.contains(
                "# TYPE req counter\nreq_total{code=\"200\"} 7\nreq_created{code=\"200\"} 100\n\
                 req_total{code=\"500\"} 2\nreq_created{code=\"500\"} 200\n# EOF\n"
            ),
            "{om}"
        );
        assert!(!om.contains("# TYPE req_created"), "{om}");
    }

    #[test]
    fn invalid_names_and_samples_are_left_out_and_series_grouped() {
        let mut out = Output::new();
        out.families
            .push(fam("1bad", Kind::Gauge, &[(&[], 1.0, "")]));
        out.families
            .push(fam("bad-name", Kind::Gauge, &[(&[], 1.0, "")]));
        out.families.push(fam(
            "ok",
            Kind::Gauge,
            &[
                (&[("bad-label", "x")], 1.0, ""),
                (&[("a", "1"), ("a", "2")], 2.0, ""),
                (&[("a", "1")], 3.0, "_sum"),
                (&[("a", "1")], 4.0, ""),
            ],
        ));
        out.families.push(fam(
            "h",
            Kind::Histogram,
            &[
                (&[("s", "a"), ("le", "1")], 1.0, "_bucket"),
                (&[("s", "b"), ("le", "1")], 5.0, "_bucket"),
                (&[("s", "a")], 9.0, "_bucket"),
                (&[("s", "a"), ("le", "+Inf")], 2.0, "_bucket"),
                (&[("s", "b"), ("le", "+Inf")], 6.0, "_bucket"),
                (&[("s", "a")], 2.0, "_count"),
                (&[("s", "b")], 6.0, "_count"),
                (&[("s", "b")], 6.0, ""),
            ],
        ));
        for t in both(&out) {
            assert!(!t.contains("bad"), "{t}");
            let ok: Vec<&str> = t.lines().filter(|l| l.starts_with("ok")).collect();
            assert_eq!(ok, ["ok{a=\"1\"} 4"], "{t}");
            let h: Vec<&str> = t.lines().filter(|l| l.starts_with("h_")).collect();
            assert_eq!(
                h,
                [
                    "h_bucket{s=\"a\",le=\"1\"} 1",
                    "h_bucket{s=\"a\",le=\"+Inf\"} 2",
                    "h_count{s=\"a\"} 2",
                    "h_bucket{s=\"b\",le=\"1\"} 5",
                    "h_bucket{s=\"b\",le=\"+Inf\"} 6",
                    "h_count{s=\"b\"} 6",
                ],
                "{t}"
            );
        }
    }

    #[test]
    fn a_series_is_its_label_set_as_prometheus_sees_it() {
        let l = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        let a = l(&[("x", "1"), ("y", "2")]);
        let b = l(&[("y", "2"), ("z", ""), ("x", "1")]);
        assert!(same_series(&a, &b, None));
        assert_eq!(series_hash(&a, None), series_hash(&b, None));
        let c = l(&[("x", "1"), ("y", "3")]);
        assert!(!same_series(&a, &c, None));
        assert!(!same_series(&a, &l(&[("x", "1")]), None));
        assert!(same_series(
            &a,
            &l(&[("x", "1"), ("y", "2"), ("le", "1")]),
            Some("le")
        ));
        assert_ne!(series_hash(&a, None), series_hash(&c, None));
    }
}
