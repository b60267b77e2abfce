//! A pure parser of the Prometheus text format 0.0.4 and OpenMetrics 1.0
//! text, into vitals' own sample model ([`crate::metrics::Family`]).
//!
//! Written here rather than taken from crates.io: `prometheus-parse` knows
//! only text 0.0.4 and builds the whole scrape before any bound can apply,
//! and `openmetrics-parser` is LGPL-3.0. This one stops at the first sample
//! past `max_series`, so a 1,000,000-series body costs what `max_series`
//! samples cost, not more.
//!
//! The model it produces is the one text 0.0.4 shows, whichever format came
//! in, so an application's series are re-exposed unchanged in either:
//! - a counter's family is named as its sample (`x_total`, or `x` in text
//!   0.0.4 without the suffix);
//! - a histogram's or summary's samples stay under one family with their
//!   suffix (`_bucket`, `_sum`, `_count`; a summary's quantiles have none);
//! - `_created` samples become a gauge family of their own, as client
//!   libraries write them in text 0.0.4; OpenMetrics `info` and `stateset`
//!   become gauges, `gaugehistogram` and `unknown` untyped series;
//! - timestamps and exemplars are checked and dropped: the samples are the
//!   app's values as of vitals' scrape, and text 0.0.4 has no exemplars;
//! - a series given several times keeps one sample: the one with the latest
//!   timestamp when they have timestamps, else the first, as Prometheus
//!   2.42 keeps the first of two samples of a series at one timestamp
//!   (tried: a text 0.0.4 body `dup{a="x"} 1` then `dup{a="x"} 2` served to
//!   Debian's Prometheus 2.42 gives `dup{a="x"} 1` in its TSDB).
//!
//! The two formats are held to their own rules. Text 0.0.4 is read as
//! leniently as Prometheus reads it: comments and blank lines anywhere,
//! `\r\n` line ends, a TYPE only before the samples it types. OpenMetrics
//! is read to the letter of its specification, because "partial or invalid
//! expositions MUST be considered erroneous in their entirety": families
//! not interleaved, metadata (at most one TYPE, UNIT and HELP) before the
//! family's samples, sample names with their type's suffixes only, no two
//! families whose sample names could clash, a UNIT that is the suffix of
//! its family's name, increasing timestamps for a series given twice, no
//! comment but metadata, no blank line, no `\r\n` line end, and `# EOF`
//! at the end.
//! Both keep an unknown escape (`\z`) as written, as Prometheus does: it
//! replaces only `\\`, `\"` and `\n` in label values (`\\` and `\n` in a
//! text 0.0.4 HELP).
//!
//! Errors name the line and the rule; nothing of a refused body is kept.

use crate::metrics::{
    same_series, series_hash, valid_label_name, valid_metric_name, Family, Kind, Sample,
};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Which of the two formats the body is in (from its Content-Type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `text/plain; version=0.0.4` (and anything not OpenMetrics).
    Text,
    /// `application/openmetrics-text`.
    OpenMetrics,
}

/// Why a body was refused. The message quotes at most a short excerpt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("more than max_series = {limit} series; the whole scrape is refused")]
    TooManySeries { limit: usize },
    #[error("the OpenMetrics body does not end with `# EOF` (truncated?)")]
    MissingEof,
}

/// A TYPE as declared, before the model above maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Declared {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
    Info,
    StateSet,
    GaugeHistogram,
}

fn declared(word: &str) -> Option<Declared> {
    Some(match word {
        "counter" => Declared::Counter,
        "gauge" => Declared::Gauge,
        "histogram" => Declared::Histogram,
        "summary" => Declared::Summary,
        "untyped" | "unknown" => Declared::Untyped,
        "info" => Declared::Info,
        "stateset" => Declared::StateSet,
        "gaugehistogram" => Declared::GaugeHistogram,
        _ => return None,
    })
}

impl Declared {
    fn word(self) -> &'static str {
        match self {
            Declared::Counter => "counter",
            Declared::Gauge => "gauge",
            Declared::Histogram => "histogram",
            Declared::Summary => "summary",
            Declared::Untyped => "unknown",
            Declared::Info => "info",
            Declared::StateSet => "stateset",
            Declared::GaugeHistogram => "gaugehistogram",
        }
    }

    /// The suffixes OpenMetrics gives this type's sample names ("Suffixes
    /// for the respective types"), the empty one left out.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Declared::Counter => &["_total", "_created"],
            Declared::Histogram => &["_bucket", "_sum", "_count", "_created"],
            Declared::Summary => &["_sum", "_count", "_created"],
            Declared::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            Declared::Info => &["_info"],
            Declared::Gauge | Declared::StateSet | Declared::Untyped => &[],
        }
    }

    /// Whether a sample may be named as the family itself.
    fn bare_sample(self) -> bool {
        matches!(
            self,
            Declared::Gauge | Declared::StateSet | Declared::Untyped | Declared::Summary
        )
    }

    /// The label that tells a MetricPoint's samples apart within a Metric.
    fn point_label(self) -> Option<&'static str> {
        match self {
            Declared::Histogram | Declared::GaugeHistogram => Some("le"),
            Declared::Summary => Some("quantile"),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Meta {
    kind: Option<Declared>,
    help: Option<String>,
    help_seen: bool,
    unit: Option<String>,
}

/// Where a sample goes: its family's name, kind and the sample's suffix.
struct Placement<'a> {
    family: &'a str,
    kind: Kind,
    suffix: &'static str,
    /// The metadata name whose HELP the family takes (the OpenMetrics
    /// MetricFamily the sample belongs to).
    meta: &'a str,
}

const SUFFIXES: [&str; 8] = [
    "_total", "_created", "_bucket", "_sum", "_count", "_info", "_gcount", "_gsum",
];

/// Where the sample `name` belongs, given the metadata seen so far.
fn place<'a>(name: &'a str, meta: &HashMap<String, Meta>) -> Placement<'a> {
    let own = |kind| Placement {
        family: name,
        kind,
        suffix: "",
        meta: name,
    };
    // The name itself first: a gauge named `x_count` is a gauge.
    if let Some(kind) = meta.get(name).and_then(|m| m.kind) {
        match kind {
            Declared::Counter => return own(Kind::Counter),
            Declared::Gauge | Declared::StateSet => return own(Kind::Gauge),
            Declared::Untyped => return own(Kind::Untyped),
            Declared::Summary => return own(Kind::Summary),
            _ => {}
        }
    }
    for suffix in SUFFIXES {
        let Some(base) = name.strip_suffix(suffix) else {
            continue;
        };
        let Some(kind) = meta.get(base).and_then(|m| m.kind) else {
            continue;
        };
        let within = |kind, suffix| Placement {
            family: base,
            kind,
            suffix,
            meta: base,
        };
        let apart = |kind| Placement {
            family: name,
            kind,
            suffix: "",
            meta: base,
        };
        match (kind, suffix) {
            (Declared::Counter, "_total") => return apart(Kind::Counter),
            (Declared::Histogram, "_bucket") => return within(Kind::Histogram, "_bucket"),
            (Declared::Histogram, "_sum") => return within(Kind::Histogram, "_sum"),
            (Declared::Histogram, "_count") => return within(Kind::Histogram, "_count"),
            (Declared::Summary, "_sum") => return within(Kind::Summary, "_sum"),
            (Declared::Summary, "_count") => return within(Kind::Summary, "_count"),
            (Declared::Counter | Declared::Histogram | Declared::Summary, "_created") => {
                return apart(Kind::Gauge)
            }
            (Declared::Info, "_info") => return apart(Kind::Gauge),
            (Declared::GaugeHistogram, "_bucket" | "_gcount" | "_gsum") => {
                return apart(Kind::Untyped)
            }
            _ => {}
        }
    }
    own(Kind::Untyped)
}

type Labels = Vec<(String, String)>;

/// One sample line, split.
struct Line<'a> {
    name: &'a str,
    labels: Labels,
    value: f64,
    timestamp: Option<f64>,
    exemplar: bool,
}

/// The parser's state across lines.
struct Parser {
    dialect: Dialect,
    max_series: usize,
    series: usize,
    meta: HashMap<String, Meta>,
    families: Vec<Family>,
    /// The timestamp each kept sample came with, beside `families`.
    times: Vec<Vec<Option<f64>>>,
    index: HashMap<String, usize>,
    /// Series by [`series_hash`] of (family, suffix, labels): the first
    /// kept sample with that hash.
    seen: HashMap<u64, (usize, usize)>,
    /// Metadata names that have samples (a TYPE must come before them).
    sampled: HashSet<String>,
    /// OpenMetrics: the family being read, whether it has samples yet, the
    /// families already ended, every family name met.
    current: Option<String>,
    current_sampled: bool,
    ended: HashSet<String>,
    names: HashSet<String>,
    /// OpenMetrics: the Metric being read in the current family and the
    /// ones already ended (Metrics must not be interleaved either).
    metric: Option<u64>,
    ended_metrics: HashSet<u64>,
    /// OpenMetrics: the latest timestamp of the current Metric's points.
    metric_time: Option<f64>,
    eof: bool,
}

/// Parses a whole body. At most `max_series` samples are accepted; one more
/// refuses the body.
pub fn parse_exposition(
    text: &str,
    dialect: Dialect,
    max_series: usize,
) -> Result<Vec<Family>, ParseError> {
    let mut p = Parser {
        dialect,
        max_series,
        series: 0,
        meta: HashMap::new(),
        families: Vec::new(),
        times: Vec::new(),
        index: HashMap::new(),
        seen: HashMap::new(),
        sampled: HashSet::new(),
        current: None,
        current_sampled: false,
        ended: HashSet::new(),
        names: HashSet::new(),
        metric: None,
        ended_metrics: HashSet::new(),
        metric_time: None,
        eof: false,
    };
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let last = lines.peek().is_none();
        p.line(raw, last).map_err(|e| match e {
            Refusal::Syntax(message) => ParseError::Syntax {
                line: i + 1,
                message,
            },
            Refusal::TooMany => ParseError::TooManySeries { limit: max_series },
        })?;
    }
    if dialect == Dialect::OpenMetrics && !p.eof {
        return Err(ParseError::MissingEof);
    }
    Ok(p.families)
}

enum Refusal {
    Syntax(String),
    TooMany,
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Refusal::Syntax(message)
    }
}

impl Parser {
    fn om(&self) -> bool {
        self.dialect == Dialect::OpenMetrics
    }

    fn line(&mut self, raw: &str, last: bool) -> Result<(), Refusal> {
        let line = match self.dialect {
            Dialect::Text => raw
                .strip_suffix('\r')
                .unwrap_or(raw)
                .trim_start_matches([' ', '\t']),
            Dialect::OpenMetrics => {
                // A carriage return inside a label value or a HELP is a
                // normal-char of the ABNF; only a line ending has none.
                if raw.ends_with('\r') {
                    return Err(
                        "carriage return: OpenMetrics lines end with a line feed alone"
                            .to_owned()
                            .into(),
                    );
                }
                raw
            }
        };
        if self.eof {
            if line.is_empty() && last {
                return Ok(());
            }
            return Err("content after `# EOF`".to_owned().into());
        }
        if line.trim().is_empty() {
            if self.om() && !(last && line.is_empty()) {
                return Err("empty line: OpenMetrics has none".to_owned().into());
            }
            return Ok(());
        }
        if let Some(comment) = line.strip_prefix('#') {
            return Ok(self.comment(comment)?);
        }
        self.sample(line)
    }

    fn comment(&mut self, comment: &str) -> Result<(), String> {
        let (keyword, name, value) = if self.om() {
            if comment == " EOF" {
                self.end_family();
                self.eof = true;
                return Ok(());
            }
            let mut words = comment.strip_prefix(' ').unwrap_or("").splitn(3, ' ');
            let keyword = words.next().unwrap_or("");
            if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
                return Err(format!(
                    "{:?} is no OpenMetrics line: only TYPE, UNIT, HELP and EOF may start with #",
                    excerpt(&format!("#{comment}"))
                ));
            }
            (
                keyword,
                words.next().unwrap_or(""),
                words.next().unwrap_or(""),
            )
        } else {
            let comment = comment.trim_start_matches([' ', '\t']);
            let mut words = comment.splitn(3, [' ', '\t']);
            let keyword = words.next().unwrap_or("");
            if keyword != "HELP" && keyword != "TYPE" {
                return Ok(()); // a plain comment; UNIT is not text 0.0.4
            }
            (
                keyword,
                words.next().unwrap_or(""),
                words.next().unwrap_or(""),
            )
        };
        if !valid_metric_name(name) {
            return Err(format!(
                "# {keyword} names no valid metric: {:?}",
                excerpt(name)
            ));
        }
        if self.om() {
            self.enter_family(name)?;
            if self.current_sampled {
                return Err(format!(
                    "# {keyword} {name} after the family's samples: OpenMetrics metadata comes first"
                ));
            }
        } else if keyword == "TYPE" && self.sampled.contains(name) {
            return Err(format!(
                "# TYPE {name} after its first sample: the TYPE line must come before"
            ));
        }
        let dialect = self.dialect;
        match keyword {
            "HELP" => {
                let entry = self.meta.entry(name.to_owned()).or_default();
                if dialect == Dialect::OpenMetrics && entry.help_seen {
                    return Err(format!("second HELP for {name}"));
                }
                entry.help_seen = true;
                let help = unescape(value, dialect, true);
                entry.help = (!help.is_empty()).then_some(help);
            }
            "TYPE" => {
                let word = if dialect == Dialect::OpenMetrics {
                    value
                } else {
                    value.trim()
                };
                let kind = declared(word)
                    .filter(|_| dialect == Dialect::Text || word != "untyped")
                    .ok_or_else(|| format!("unknown metric type {:?}", excerpt(word)))?;
                let entry = self.meta.entry(name.to_owned()).or_default();
                match entry.kind {
                    Some(_) if dialect == Dialect::OpenMetrics => {
                        return Err(format!("second TYPE for {name}"))
                    }
                    Some(k) if k != kind => {
                        return Err(format!("second, different TYPE for {name}"))
                    }
                    _ => {}
                }
                entry.kind = Some(kind);
                if dialect == Dialect::OpenMetrics {
                    let unit = entry.unit.clone();
                    self.check_unit(name, unit.as_deref())?;
                    self.check_clash(name, kind)?;
                }
            }
            _ => {
                // UNIT, OpenMetrics only.
                if !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                {
                    return Err(format!("invalid unit {:?} for {name}", excerpt(value)));
                }
                let entry = self.meta.entry(name.to_owned()).or_default();
                if entry.unit.is_some() {
                    return Err(format!("second UNIT for {name}"));
                }
                entry.unit = Some(value.to_owned());
                self.check_unit(name, Some(value))?;
            }
        }
        Ok(())
    }

    /// "If non-empty, [the unit] MUST be a suffix of the MetricFamily name
    /// separated by an underscore"; info and stateset have none.
    fn check_unit(&self, name: &str, unit: Option<&str>) -> Result<(), String> {
        let Some(unit) = unit.filter(|u| !u.is_empty()) else {
            return Ok(());
        };
        if !name
            .strip_suffix(unit)
            .is_some_and(|base| base.ends_with('_'))
        {
            return Err(format!(
                "UNIT {unit} of {name}: the family's name must end with _{unit}"
            ));
        }
        let kind = self.meta.get(name).and_then(|m| m.kind);
        if matches!(kind, Some(Declared::Info | Declared::StateSet)) {
            return Err(format!(
                "UNIT {unit} of {name}: an info or stateset has no unit"
            ));
        }
        Ok(())
    }

    /// "The name of a MetricFamily MUST NOT result in a potential clash for
    /// sample metric names ... with another MetricFamily" (a counter `foo`
    /// and a gauge `foo_created`).
    fn check_clash(&self, name: &str, kind: Declared) -> Result<(), String> {
        for suffix in kind.suffixes() {
            let other = format!("{name}{suffix}");
            if self.names.contains(&other) {
                return Err(format!(
                    "family {name} clashes with family {other}, a sample name of {name}"
                ));
            }
        }
        for suffix in SUFFIXES {
            let Some(base) = name.strip_suffix(suffix) else {
                continue;
            };
            let kind = self.meta.get(base).and_then(|m| m.kind);
            if kind.is_some_and(|k| k.suffixes().contains(&suffix)) {
                return Err(format!(
                    "family {name} clashes with family {base}, whose samples may be named {name}"
                ));
            }
        }
        Ok(())
    }

    /// OpenMetrics: `name` is the family from now on; one that ended before
    /// cannot come back.
    fn enter_family(&mut self, name: &str) -> Result<(), String> {
        if self.current.as_deref() == Some(name) {
            return Ok(());
        }
        if self.ended.contains(name) {
            return Err(format!(
                "family {name} again after another: OpenMetrics families must not be interleaved"
            ));
        }
        self.end_family();
        self.current = Some(name.to_owned());
        self.names.insert(name.to_owned());
        Ok(())
    }

    fn end_family(&mut self) {
        if let Some(done) = self.current.take() {
            self.ended.insert(done);
        }
        self.current_sampled = false;
        self.metric = None;
        self.ended_metrics.clear();
        self.metric_time = None;
    }

    fn sample(&mut self, text: &str) -> Result<(), Refusal> {
        let line = parse_sample(text, self.dialect)?;
        self.series += 1;
        if self.series > self.max_series {
            return Err(Refusal::TooMany);
        }
        let name = line.name;
        let placement = place(name, &self.meta);
        let declared = self.meta.get(placement.meta).and_then(|m| m.kind);
        if placement.kind == Kind::Histogram
            && placement.suffix == "_bucket"
            && !line.labels.iter().any(|(k, _)| k == "le")
        {
            return Err(format!("histogram bucket {name} has no `le` label").into());
        }
        if self.om() {
            self.om_sample(&line, &placement, declared)?;
        } else {
            self.sampled.insert(placement.meta.to_owned());
        }
        let at = match self.index.get(placement.family) {
            // `x 1` beside a histogram `x`, or `x_created 1` before and
            // after a TYPE x counter: one name, two kinds.
            Some(&at) if self.families[at].kind != placement.kind => {
                return Err(format!(
                    "sample {name} would be {} in the {} family {}",
                    placement.kind.as_str(),
                    self.families[at].kind.as_str(),
                    placement.family
                )
                .into());
            }
            Some(&at) => at,
            None => {
                let help = self
                    .meta
                    .get(placement.meta)
                    .and_then(|m| m.help.clone())
                    .unwrap_or_default();
                self.families.push(Family {
                    name: placement.family.to_owned(),
                    help,
                    kind: placement.kind,
                    samples: Vec::new(),
                });
                self.times.push(Vec::new());
                self.index
                    .insert(placement.family.to_owned(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (at, placement.suffix).hash(&mut h);
        let key = h.finish() ^ series_hash(&line.labels, None);
        let family = &self.families[at];
        let same =
            |s: &Sample| s.suffix == placement.suffix && same_series(&s.labels, &line.labels, None);
        // A repeat is the first sample with its hash; anything else is a
        // collision, looked up the long way.
        let repeat = match self.seen.get(&key) {
            None => None,
            Some(&(f, s)) if f == at && same(&family.samples[s]) => Some((f, s)),
            Some(_) => family.samples.iter().position(same).map(|s| (at, s)),
        };
        match repeat {
            Some((f, s)) => {
                let before = self.times[f][s];
                match (before, line.timestamp) {
                    (Some(a), Some(b)) if b > a => {
                        self.families[f].samples[s].value = line.value;
                        self.times[f][s] = Some(b);
                    }
                    _ if self.om() => {
                        return Err(format!(
                            "series {name}{} given twice without a later timestamp",
                            format_labels(&line.labels)
                        )
                        .into())
                    }
                    // Text 0.0.4: the first is kept, as Prometheus does.
                    _ => {}
                }
            }
            None => {
                let family = &mut self.families[at];
                family.samples.push(Sample {
                    labels: line.labels,
                    value: line.value,
                    suffix: placement.suffix,
                });
                self.times[at].push(line.timestamp);
                let kept = (at, family.samples.len() - 1);
                self.seen.entry(key).or_insert(kept);
            }
        }
        Ok(())
    }

    /// The OpenMetrics rules a sample line must keep.
    fn om_sample(
        &mut self,
        line: &Line<'_>,
        placement: &Placement<'_>,
        declared: Option<Declared>,
    ) -> Result<(), String> {
        let name = line.name;
        let family = placement.meta;
        if let Some(kind) = declared {
            if name == family && !kind.bare_sample() {
                let names: Vec<String> = kind
                    .suffixes()
                    .iter()
                    .map(|s| format!("{name}{s}"))
                    .collect();
                return Err(format!(
                    "sample {name} of a family typed {}: its samples are named {}",
                    kind.word(),
                    names.join(", ")
                ));
            }
            if let Some(label) = kind.point_label() {
                let needs = match kind {
                    Declared::Summary => name == family,
                    _ => name.ends_with("_bucket"),
                };
                if !needs && line.labels.iter().any(|(k, v)| k == label && !v.is_empty()) {
                    // "A Histogram's Metric's LabelSet MUST NOT have a "le"
                    // label name", nor a summary's a "quantile".
                    return Err(format!(
                        "sample {name} has a `{label}` label, which only a {} sample has",
                        if label == "le" { "bucket" } else { "quantile" }
                    ));
                }
                if needs {
                    let value = line.labels.iter().find(|(k, _)| k == label);
                    let number = value.and_then(|(_, v)| parse_value(v));
                    let ok = match (label, number) {
                        ("le", Some(v)) => !v.is_nan(),
                        ("quantile", Some(v)) => (0.0..=1.0).contains(&v),
                        _ => false,
                    };
                    if !ok {
                        return Err(format!(
                            "sample {name} needs a numeric `{label}` label{}",
                            if label == "quantile" {
                                " between 0 and 1"
                            } else {
                                ""
                            }
                        ));
                    }
                }
            }
            if kind == Declared::StateSet && !line.labels.iter().any(|(k, _)| k == family) {
                return Err(format!(
                    "stateset sample {name} has no label {family} naming its state"
                ));
            }
        }
        if line.exemplar {
            let allowed = match declared {
                Some(Declared::Counter) => name.ends_with("_total"),
                Some(Declared::Histogram | Declared::GaugeHistogram) => name.ends_with("_bucket"),
                _ => false,
            };
            if !allowed {
                return Err(format!(
                    "exemplar on {name}: only a counter's _total and a histogram's _bucket samples have one"
                ));
            }
        }
        self.enter_family(family)?;
        self.current_sampled = true;
        let metric = series_hash(&line.labels, declared.and_then(Declared::point_label));
        if self.metric != Some(metric) {
            if self.ended_metrics.contains(&metric) {
                return Err(format!(
                    "series {name}{} again after another series of {family}: OpenMetrics Metrics must not be interleaved",
                    format_labels(&line.labels)
                ));
            }
            if let Some(done) = self.metric.replace(metric) {
                self.ended_metrics.insert(done);
            }
            self.metric_time = None;
        }
        if let Some(t) = line.timestamp {
            if self.metric_time.is_some_and(|m| t < m) {
                return Err(format!(
                    "sample {name} at {t} after a point of the same series at a later time: OpenMetrics MetricPoints must not be interleaved"
                ));
            }
            self.metric_time = Some(t);
        }
        Ok(())
    }
}

/// `{a="1",b="2"}` for error messages, short.
fn format_labels(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", excerpt(&inner.join(",")))
}

/// `name{labels} value [timestamp] [# exemplar]`.
fn parse_sample(line: &str, dialect: Dialect) -> Result<Line<'_>, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err(format!(
            "expected a metric name at the start of {:?}",
            excerpt(line)
        ));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner, dialect)?;
        labels = parsed;
        rest = after;
    }
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("expected a space and a value after {name}"));
    }
    // An OpenMetrics exemplar follows ` # `; it is not part of the sample.
    let (rest, exemplar) = match (dialect, rest.split_once(" # ")) {
        (Dialect::OpenMetrics, Some((sample, exemplar))) => (sample, Some(exemplar)),
        _ => (rest, None),
    };
    let mut fields = rest.split([' ', '\t']).filter(|f| !f.is_empty());
    let value_text = fields
        .next()
        .ok_or_else(|| format!("sample {name} has no value"))?;
    let value = parse_value(value_text)
        .ok_or_else(|| format!("invalid value {:?} of {name}", excerpt(value_text)))?;
    let timestamp = match fields.next() {
        None => None,
        Some(ts) => Some(parse_timestamp(ts, dialect).ok_or_else(|| {
            let want = match dialect {
                Dialect::Text => "text 0.0.4 wants integer milliseconds",
                Dialect::OpenMetrics => "OpenMetrics wants seconds",
            };
            format!("invalid timestamp {:?} of {name} ({want})", excerpt(ts))
        })?),
    };
    if fields.next().is_some() {
        return Err(format!("unexpected text after the value of {name}"));
    }
    if let Some(exemplar) = exemplar {
        check_exemplar(exemplar).map_err(|e| format!("exemplar of {name}: {e}"))?;
    }
    Ok(Line {
        name,
        labels,
        value,
        timestamp,
        exemplar: exemplar.is_some(),
    })
}

fn parse_timestamp(text: &str, dialect: Dialect) -> Option<f64> {
    match dialect {
        // Prometheus reads a text 0.0.4 timestamp as an int64.
        Dialect::Text => text.parse::<i64>().ok().map(|t| t as f64),
        Dialect::OpenMetrics => parse_value(text).filter(|t| t.is_finite()),
    }
}

/// `{labels} value [timestamp]`, the labels' names and values at most 128
/// characters together.
fn check_exemplar(text: &str) -> Result<(), String> {
    let inner = text
        .strip_prefix('{')
        .ok_or_else(|| "expected `{` after ` # `".to_owned())?;
    let (labels, rest) = parse_labels(inner, Dialect::OpenMetrics)?;
    let length: usize = labels
        .iter()
        .map(|(k, v)| k.chars().count() + v.chars().count())
        .sum();
    if length > 128 {
        return Err(format!(
            "its labels have {length} characters, more than the 128 allowed"
        ));
    }
    let mut fields = rest
        .strip_prefix(' ')
        .ok_or_else(|| "expected a space and a value after its labels".to_owned())?
        .split(' ');
    let value = fields.next().unwrap_or("");
    if parse_value(value).is_none() {
        return Err(format!("invalid value {:?}", excerpt(value)));
    }
    if let Some(ts) = fields.next() {
        if parse_timestamp(ts, Dialect::OpenMetrics).is_none() {
            return Err(format!("invalid timestamp {:?}", excerpt(ts)));
        }
    }
    if fields.next().is_some() {
        return Err("unexpected text after its timestamp".to_owned());
    }
    Ok(())
}

/// Label pairs after the `{`, up to and including the `}`; returns them and
/// what follows.
fn parse_labels(mut s: &str, dialect: Dialect) -> Result<(Labels, &str), String> {
    let mut labels: Labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        let name = &s[..name_end];
        if !valid_label_name(name) {
            return Err(format!("expected a label name at {:?}", excerpt(s)));
        }
        s = s[name_end..].trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("expected `=` after label {name}"))?
            .trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("expected `\"` to open the value of label {name}"))?;
        let mut end = None;
        let mut escaped = false;
        for (i, c) in s.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or_else(|| format!("unterminated value of label {name}"))?;
        let value = unescape(&s[..end], dialect, false);
        if labels.iter().any(|(k, _)| k == name) {
            return Err(format!("label {name} appears twice"));
        }
        labels.push((name.to_owned(), value));
        s = s[end + 1..].trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err(format!("expected `,` or `}}` after label {name}"));
        }
    }
}

/// A sample value: a decimal float, `NaN`, `+Inf`, `-Inf` (any case, as Go's
/// ParseFloat takes them).
fn parse_value(text: &str) -> Option<f64> {
    // Rust takes "inf", "infinity" and "nan" in any case too, but also
    // nothing Go would refuse that matters here; refuse Rust-only forms
    // such as a bare "." by requiring a digit or a letter.
    if !text.bytes().any(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    text.parse::<f64>().ok()
}

/// Replaces the escapes the format defines and keeps any other backslash as
/// written, as Prometheus does: `\\`, `\"` and `\n` in a label value and an
/// OpenMetrics HELP, `\\` and `\n` in a text 0.0.4 HELP.
fn unescape(text: &str, dialect: Dialect, help: bool) -> String {
    if !text.contains('\\') {
        return text.to_owned();
    }
    let quote = !(help && dialect == Dialect::Text);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') if quote => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// At most 40 characters of `text`, for error messages.
fn excerpt(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests;
