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
//!   app's values as of vitals' scrape, and text 0.0.4 has no exemplars.
//!
//! Errors name the line; an OpenMetrics body must end with `# EOF`, which
//! is how a truncated body is told from a short one.

use crate::metrics::{Family, Kind, Sample};
use std::collections::HashMap;

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

#[derive(Default)]
struct Meta {
    kind: Option<Declared>,
    help: Option<String>,
}

/// Where a sample goes: its family's name, kind and the sample's suffix.
struct Placement<'a> {
    family: &'a str,
    kind: Kind,
    suffix: &'static str,
    /// The metadata name whose HELP the family takes.
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
            Declared::Summary => {
                return Placement {
                    family: name,
                    kind: Kind::Summary,
                    suffix: "",
                    meta: name,
                }
            }
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

/// Parses a whole body. At most `max_series` samples are accepted; one more
/// refuses the body.
pub fn parse_exposition(
    text: &str,
    dialect: Dialect,
    max_series: usize,
) -> Result<Vec<Family>, ParseError> {
    let mut meta: HashMap<String, Meta> = HashMap::new();
    let mut families: Vec<Family> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut series = 0usize;
    let mut eof = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let fail = |message: String| ParseError::Syntax {
            line: line_no,
            message,
        };
        if eof {
            if line.is_empty() {
                continue;
            }
            return Err(fail("content after `# EOF`".into()));
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start_matches([' ', '\t']);
            if dialect == Dialect::OpenMetrics && comment.trim_end() == "EOF" {
                eof = true;
                continue;
            }
            let mut words = comment.splitn(3, [' ', '\t']);
            let keyword = words.next().unwrap_or("");
            if keyword != "HELP" && keyword != "TYPE" {
                continue; // a plain comment, or OpenMetrics' UNIT
            }
            let name = words.next().unwrap_or("");
            if !valid_metric_name(name) {
                return Err(fail(format!(
                    "# {keyword} names no valid metric: {:?}",
                    excerpt(name)
                )));
            }
            let rest = words.next().unwrap_or("");
            let entry = meta.entry(name.to_owned()).or_default();
            if keyword == "HELP" {
                entry.help = Some(unescape_help(rest));
            } else {
                let word = rest.trim();
                let kind = declared(word)
                    .ok_or_else(|| fail(format!("unknown metric type {:?}", excerpt(word))))?;
                if entry.kind.is_some_and(|k| k != kind) {
                    return Err(fail(format!("second, different TYPE for {name}")));
                }
                entry.kind = Some(kind);
            }
            continue;
        }
        let (name, labels, value) = parse_sample(line).map_err(fail)?;
        series += 1;
        if series > max_series {
            return Err(ParseError::TooManySeries { limit: max_series });
        }
        let placement = place(name, &meta);
        if placement.kind == Kind::Histogram
            && placement.suffix == "_bucket"
            && !labels.iter().any(|(k, _)| k == "le")
        {
            return Err(fail(format!("histogram bucket {name} has no `le` label")));
        }
        let at = match index.get(placement.family) {
            Some(&at) => at,
            None => {
                let help = meta
                    .get(placement.meta)
                    .and_then(|m| m.help.clone())
                    .unwrap_or_default();
                families.push(Family {
                    name: placement.family.to_owned(),
                    help,
                    kind: placement.kind,
                    samples: Vec::new(),
                });
                index.insert(placement.family.to_owned(), families.len() - 1);
                families.len() - 1
            }
        };
        if let Some(family) = families.get_mut(at) {
            family.samples.push(Sample {
                labels,
                value,
                suffix: placement.suffix,
            });
        }
    }
    if dialect == Dialect::OpenMetrics && !eof {
        return Err(ParseError::MissingEof);
    }
    Ok(families)
}

type Labels = Vec<(String, String)>;

/// `name{labels} value [timestamp] [# exemplar]`.
fn parse_sample(line: &str) -> Result<(&str, Labels, f64), String> {
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
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("expected a space and a value after {name}"));
    }
    // An OpenMetrics exemplar follows ` # `; it is not part of the sample.
    let rest = rest.split(" # ").next().unwrap_or("");
    let mut fields = rest.split([' ', '\t']).filter(|f| !f.is_empty());
    let value_text = fields
        .next()
        .ok_or_else(|| format!("sample {name} has no value"))?;
    let value = parse_value(value_text)
        .ok_or_else(|| format!("invalid value {:?} of {name}", excerpt(value_text)))?;
    if let Some(ts) = fields.next() {
        if !matches!(parse_value(ts), Some(t) if t.is_finite()) {
            return Err(format!("invalid timestamp {:?} of {name}", excerpt(ts)));
        }
    }
    if fields.next().is_some() {
        return Err(format!("unexpected text after the value of {name}"));
    }
    Ok((name, labels, value))
}

/// Label pairs after the `{`, up to and including the `}`; returns them and
/// what follows.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
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
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("unterminated value of label {name}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => {
                        return Err(format!("invalid escape `\\{c}` in label {name}"));
                    }
                    None => return Err(format!("unterminated value of label {name}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
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

fn unescape_help(text: &str) -> String {
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
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// At most 40 characters of `text`, for error messages.
fn excerpt(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests;
