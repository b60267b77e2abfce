//! Prometheus relabeling applied to vitals' series: the pure [`process`]
//! of one label set by a list of rules (`config::RelabelConfig`, read and
//! checked with the file), with Prometheus 2.42's semantics
//! (`model/relabel/relabel.go`), and [`apply`], which runs it over the
//! families of a round.
//!
//! Where rules apply (see the README's "Relabeling"):
//! - `sources.app_metrics[].metric_relabel_configs`: the application's
//!   series, after parsing and the `app` label, before the limits, the
//!   checks and the exposition;
//! - the top-level `metric_relabel_configs`: vitals' own families
//!   (`vitals_*`) of every source's round, before checks and exposition;
//! - `remote_write[].write_relabel_configs`: what that receiver is sent,
//!   after `external_labels` and job/instance, stale markers included.
//!
//! One difference from Prometheus, on purpose: a series whose `__name__`
//! a rule removes or makes invalid (or that a `labelmap` gives an invalid
//! label name) is dropped and counted; Prometheus 2.42 fails the whole
//! scrape. Two series a rule makes identical are kept once (the first), as
//! Prometheus' TSDB keeps the first sample of a timestamp.

use crate::config::relabel::{is_label_name, is_metric_name};
use crate::config::{Action, RelabelConfig};
use crate::metrics::{Desc, Family, Kind, Output, Sample};
use std::collections::{BTreeMap, HashSet};

pub const DROPPED_SERIES: Desc = Desc::gauge(
    "vitals_relabel_dropped_series",
    &["source"],
    "Series of the source's last round that relabeling removed: dropped by a keep, drop, keepequal or dropequal rule, left without a valid __name__ or label name, or made identical to another series (sources.app_metrics[].metric_relabel_configs and the top-level metric_relabel_configs).",
);

pub const METRICS: &[Desc] = &[DROPPED_SERIES];

/// A label set: sorted by name, names unique, no empty value (an empty
/// value is an absent label, as in Prometheus), `__name__` included.
pub type Labels = Vec<(String, String)>;

pub const NAME: &str = "__name__";

/// The label set `rules` make of `labels`, or `None` when a rule drops it.
/// `labels` need not be sorted; the result is.
pub fn process(labels: Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    let mut labels = normalize(labels);
    process_sorted(&mut labels, rules).ok().map(|()| labels)
}

/// Sorts by name, keeps the first of a repeated name, drops empty values.
pub fn normalize(mut labels: Labels) -> Labels {
    labels.retain(|(_, v)| !v.is_empty());
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    labels.dedup_by(|later, first| later.0 == first.0);
    labels
}

/// [`process`] in place on a normalized set; `Err(i)` when rule `i` drops it.
pub fn process_sorted(labels: &mut Labels, rules: &[RelabelConfig]) -> Result<(), usize> {
    process_memo(labels, rules, &mut Memo::new(rules.len()))
}

/// [`process_sorted`] remembering each rule's regex work by its input, for
/// the many series of a round that share values and label names (a
/// family's name, a status code, every label name).
pub fn process_memo(
    labels: &mut Labels,
    rules: &[RelabelConfig],
    memo: &mut Memo,
) -> Result<(), usize> {
    for (i, rule) in rules.iter().enumerate() {
        if !relabel(labels, rule, &mut memo.rules[i]) {
            return Err(i);
        }
    }
    Ok(())
}

/// What a rule's regex made of an input it has seen.
#[derive(Clone, Debug)]
enum Cached {
    /// keep, drop, labeldrop, labelkeep: whether it matched.
    Matched(bool),
    /// replace: the expanded target and value; `None` when no match.
    Replaced(Option<(String, String)>),
    /// lowercase, uppercase, hashmod: the value set.
    Value(String),
    /// labelmap: the new name; `None` when no match.
    Mapped(Option<String>),
}

/// A fast hash for the memo's short keys (label names and values; FxHash's
/// mixing). Not DoS-resistant: the keys come from the application on
/// loopback, and a round is bounded by `max_bytes` and `sample_limit`.
#[derive(Clone, Copy, Default)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type MemoMap = std::collections::HashMap<String, Cached, std::hash::BuildHasherDefault<FxHasher>>;

/// Per-rule memo of [`Cached`] results, for one round. Bounded by the
/// distinct inputs of the round; dropped with it.
#[derive(Debug, Default)]
pub struct Memo {
    rules: Vec<MemoMap>,
}

impl Memo {
    pub fn new(rules: usize) -> Self {
        Memo {
            rules: vec![MemoMap::default(); rules],
        }
    }
}

fn cached(memo: &mut MemoMap, key: &str, make: impl FnOnce() -> Cached) -> Cached {
    if let Some(c) = memo.get(key) {
        return c.clone();
    }
    let c = make();
    memo.insert(key.to_owned(), c.clone());
    c
}

/// One rule; false when it drops the set.
fn relabel(labels: &mut Labels, rule: &RelabelConfig, memo: &mut MemoMap) -> bool {
    use std::borrow::Cow;
    let val: Cow<'_, str> = match rule.source_labels.as_slice() {
        [] => Cow::Borrowed(""),
        [one] => Cow::Borrowed(get(labels, one)),
        many => Cow::Owned(
            many.iter()
                .map(|n| get(labels, n))
                .collect::<Vec<_>>()
                .join(&rule.separator),
        ),
    };
    let re = &rule.regex.regex;
    let matched = |memo: &mut MemoMap, text: &str| {
        matches!(
            cached(memo, text, || Cached::Matched(re.is_match(text))),
            Cached::Matched(true)
        )
    };
    match rule.action {
        Action::Drop => return !matched(memo, &val),
        Action::Keep => return matched(memo, &val),
        Action::DropEqual => return get(labels, &rule.target_label) != val.as_ref(),
        Action::KeepEqual => return get(labels, &rule.target_label) == val.as_ref(),
        Action::Replace => {
            let done = cached(memo, &val, || {
                Cached::Replaced(re.captures(&val).map(|caps| {
                    (
                        expand(&caps, &rule.target_label),
                        expand(&caps, &rule.replacement),
                    )
                }))
            });
            let Cached::Replaced(Some((target, value))) = done else {
                return true;
            };
            // Prometheus 2.42 deletes the label named as written (a
            // template like `$1` names none) when the expanded name is
            // invalid or the value empty.
            if !is_label_name(&target) || value.is_empty() {
                del(labels, &rule.target_label);
                return true;
            }
            set(labels, &target, value);
        }
        Action::Lowercase | Action::Uppercase | Action::HashMod => {
            let Cached::Value(value) = cached(memo, &val, || {
                Cached::Value(match rule.action {
                    Action::Lowercase => go_lower(&val),
                    Action::Uppercase => go_upper(&val),
                    _ => hashmod(&val, rule.modulus),
                })
            }) else {
                return true;
            };
            set(labels, &rule.target_label, value);
        }
        Action::LabelMap => {
            // Every label as it was before this rule, in name order; a
            // later one mapped to the same name wins.
            let mut mapped: Vec<(String, String)> = Vec::new();
            for (name, value) in labels.iter() {
                let new = cached(memo, name, || {
                    Cached::Mapped(
                        re.captures(name)
                            .map(|caps| expand(&caps, &rule.replacement)),
                    )
                });
                if let Cached::Mapped(Some(new)) = new {
                    mapped.push((new, value.clone()));
                }
            }
            for (name, value) in mapped {
                set(labels, &name, value);
            }
        }
        Action::LabelDrop => labels.retain(|(name, _)| !matched(memo, name)),
        Action::LabelKeep => labels.retain(|(name, _)| matched(memo, name)),
    }
    true
}

fn get<'a>(labels: &'a Labels, name: &str) -> &'a str {
    match labels.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
        Ok(i) => &labels[i].1,
        Err(_) => "",
    }
}

/// Sets `name`; an empty value deletes it (Prometheus' `Builder.Set`).
fn set(labels: &mut Labels, name: &str, value: String) {
    match labels.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
        Ok(i) if value.is_empty() => {
            labels.remove(i);
        }
        Ok(i) => labels[i].1 = value,
        Err(_) if value.is_empty() => {}
        Err(i) => labels.insert(i, (name.to_owned(), value)),
    }
}

fn del(labels: &mut Labels, name: &str) {
    if let Ok(i) = labels.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
        labels.remove(i);
    }
}

/// Prometheus' hashmod: the last 8 bytes of the MD5, big-endian, modulo.
fn hashmod(val: &str, modulus: u64) -> String {
    use md5::Digest;
    let hash = md5::Md5::digest(val.as_bytes());
    let mut last = [0u8; 8];
    last.copy_from_slice(&hash[8..16]);
    (u64::from_be_bytes(last) % modulus.max(1)).to_string()
}

/// Go's `Regexp.Expand`: `$name` and `${name}` (a name is the longest run
/// of letters, digits and `_`; all digits is a group number, leading zeros
/// not allowed), `$$` a `$`; an unknown or unmatched group is empty; a `$`
/// starting no valid reference stays a `$`.
pub fn expand(caps: &regex::Captures<'_>, template: &str) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let name_char = |c: char| c.is_alphabetic() || c.is_numeric() || c == '_';
        let (name, tail) = if let Some(body) = after.strip_prefix('{') {
            let end = body.find(|c: char| !name_char(c)).unwrap_or(body.len());
            if end == 0 || !body[end..].starts_with('}') {
                out.push('$');
                rest = after;
                continue;
            }
            (&body[..end], &body[end + 1..])
        } else {
            let end = after.find(|c: char| !name_char(c)).unwrap_or(after.len());
            if end == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            (&after[..end], &after[end..])
        };
        let number = (name.bytes().all(|b| b.is_ascii_digit())
            && !(name.len() > 1 && name.starts_with('0')))
        .then(|| name.parse::<usize>().ok())
        .flatten();
        let group = match number {
            Some(n) => caps.get(n),
            None => caps.name(name),
        };
        if let Some(m) = group {
            out.push_str(m.as_str());
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Go's `strings.ToLower`: each character by its simple mapping (no
/// context, one character to one), unlike `str::to_lowercase`.
pub fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut m = c.to_lowercase();
            match (m.next(), m.next()) {
                (Some(one), None) => one,
                // U+0130 İ: full mapping "i̇", simple "i".
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToUpper`: simple mappings (ß stays ß; ᾀ becomes ᾈ).
pub fn go_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut m = c.to_uppercase();
            match (m.next(), m.next()) {
                (Some(one), None) => one,
                _ => match c as u32 {
                    // Greek with ypogegrammeni: the simple uppercase is
                    // the titlecase letter (UnicodeData field 12).
                    0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => {
                        char::from_u32(c as u32 + 8).unwrap_or(c)
                    }
                    0x1FB3 => '\u{1FBC}',
                    0x1FC3 => '\u{1FCC}',
                    0x1FF3 => '\u{1FFC}',
                    _ => c,
                },
            }
        })
        .collect()
}

/// What one stage of rules removed from a round.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// The key the rules were configured under.
    pub rules_key: String,
    /// Each rule as written, for `/status`.
    pub rules: Vec<String>,
    /// Series each rule dropped (`keep`, `drop`, `keepequal`, `dropequal`).
    pub dropped_by_rule: Vec<u64>,
    /// Series left without a valid `__name__` or with an invalid label name.
    pub invalid_name: u64,
    /// Series identical to an earlier one once relabeled.
    pub duplicates: u64,
}

impl Stats {
    pub fn new(rules_key: &str, rules: &[RelabelConfig]) -> Self {
        Stats {
            rules_key: rules_key.to_owned(),
            rules: rules.iter().map(|r| r.describe()).collect(),
            dropped_by_rule: vec![0; rules.len()],
            invalid_name: 0,
            duplicates: 0,
        }
    }

    /// Every series removed.
    pub fn dropped(&self) -> u64 {
        self.dropped_by_rule.iter().sum::<u64>() + self.invalid_name + self.duplicates
    }
}

/// Runs `rules` over every sample of the families `select` picks. A sample
/// whose name a rule changes moves to the family of its new name (one of
/// `families` without a suffix, or a new one: untyped, but a gauge's or a
/// counter's kind is kept when the name still fits it). Families left
/// empty are removed. Nothing changes when `rules` is empty.
pub fn apply(
    families: &mut Vec<Family>,
    rules: &[RelabelConfig],
    select: impl Fn(&Family) -> bool,
    stats: &mut Stats,
) {
    if rules.is_empty() {
        return;
    }
    // Only a rule that writes labels can make two series one.
    let may_merge = rules.iter().any(|r| {
        !matches!(
            r.action,
            Action::Keep | Action::Drop | Action::KeepEqual | Action::DropEqual
        )
    });
    // Every surviving series: (family index, suffix, value, labels with
    // `__name__`), in order; then duplicates are found without copying.
    let mut survivors: Vec<(usize, &'static str, f64, Labels)> = Vec::new();
    let mut memo = Memo::new(rules.len());
    for (index, family) in families.iter_mut().enumerate() {
        if !select(family) {
            continue;
        }
        for sample in std::mem::take(&mut family.samples) {
            let mut labels: Labels = Vec::with_capacity(sample.labels.len() + 1);
            labels.push((NAME.to_owned(), format!("{}{}", family.name, sample.suffix)));
            labels.extend(sample.labels.into_iter().filter(|(k, _)| k != NAME));
            let mut labels = normalize(labels);
            if let Err(rule) = process_memo(&mut labels, rules, &mut memo) {
                stats.dropped_by_rule[rule] += 1;
                continue;
            }
            let named = is_metric_name(get(&labels, NAME));
            if !named || !labels.iter().all(|(k, _)| is_label_name(k)) {
                stats.invalid_name += 1;
                continue;
            }
            survivors.push((index, sample.suffix, sample.value, labels));
        }
    }
    let keep: Vec<bool> = if may_merge {
        let mut seen: HashSet<&Labels> = HashSet::with_capacity(survivors.len());
        survivors.iter().map(|(.., l)| seen.insert(l)).collect()
    } else {
        vec![true; survivors.len()]
    };
    let mut moved: BTreeMap<String, (Kind, String, Vec<Sample>)> = BTreeMap::new();
    for ((index, suffix, value, mut labels), keep) in survivors.into_iter().zip(keep) {
        if !keep {
            stats.duplicates += 1;
            continue;
        }
        let name = match labels.binary_search_by(|(k, _)| k.as_str().cmp(NAME)) {
            Ok(i) => labels.remove(i).1,
            Err(_) => continue,
        };
        let family = &mut families[index];
        if name.strip_prefix(family.name.as_str()) == Some(suffix) {
            family.samples.push(Sample {
                labels,
                value,
                suffix,
            });
            continue;
        }
        let kind = match family.kind {
            Kind::Gauge => Kind::Gauge,
            Kind::Counter if name.ends_with("_total") => Kind::Counter,
            _ => Kind::Untyped,
        };
        let help = if kind == family.kind {
            family.help.clone()
        } else {
            String::new()
        };
        moved
            .entry(name)
            .or_insert_with(|| (kind, help, Vec::new()))
            .2
            .push(Sample {
                labels,
                value,
                suffix: "",
            });
    }
    for (name, (kind, help, samples)) in moved {
        match families
            .iter_mut()
            .find(|f| f.name == name && f.samples.iter().all(|s| s.suffix.is_empty()))
        {
            Some(f) => f.samples.extend(samples),
            None => families.push(Family {
                name,
                help,
                kind,
                samples,
            }),
        }
    }
    families.retain(|f| !f.samples.is_empty());
}

/// The top-level `metric_relabel_configs` on one round of `source`: over
/// vitals' own families (`vitals_*`; an application's series have their
/// source's own rules), with `vitals_relabel_dropped_series{source}` (added
/// to what the source's own rules dropped) and the stage's [`Stats`]
/// appended to the round's `/status` details under `relabel`.
pub fn own_stage(out: &mut Output, source: &str, rules: &[RelabelConfig]) {
    if rules.is_empty() {
        return;
    }
    let mut stats = Stats::new("metric_relabel_configs", rules);
    apply(
        &mut out.families,
        rules,
        |f| f.name.starts_with("vitals_"),
        &mut stats,
    );
    let dropped = stats.dropped() as f64;
    let existing = out
        .families
        .iter_mut()
        .find(|f| f.name == DROPPED_SERIES.name)
        .and_then(|f| {
            f.samples
                .iter_mut()
                .find(|s| s.label("source") == Some(source))
        });
    match existing {
        Some(sample) => sample.value += dropped,
        None => out.add(&DROPPED_SERIES, &[("source", source)], dropped),
    }
    let entry = serde_json::to_value(&stats).unwrap_or_default();
    match &mut out.details {
        Some(serde_json::Value::Object(map)) => match map.get_mut("relabel") {
            Some(serde_json::Value::Array(list)) => list.push(entry),
            _ => {
                map.insert("relabel".into(), serde_json::Value::Array(vec![entry]));
            }
        },
        Some(_) => {}
        None => out.details = Some(serde_json::json!({ "relabel": [entry] })),
    }
}

#[cfg(test)]
mod tests;
