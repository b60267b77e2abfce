//! Prometheus' `relabel_config`, as `metric_relabel_configs` (on an app
//! source, and at the top level for vitals' own families) and
//! `write_relabel_configs` (on a `remote_write[]` entry). The YAML a user
//! has in a Prometheus 2.42 scrape config reads here unchanged, with the
//! same defaults and the same load-time checks (`model/relabel/relabel.go`
//! `Config.Validate`); `crate::relabel` applies the rules.
//!
//! Regular expressions have RE2's meaning, as in Prometheus: fully anchored
//! (`^(?:re)$`), and `\d \w \s \b` ASCII-only (the `regex` crate's are
//! Unicode), see [`translate`].

use regex::Regex;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;

/// What a rule does (`action`, any case, default `replace`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let lower = text.to_lowercase();
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
                de::Error::custom(format!(
                    "unknown relabel action {text:?}; one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// A rule's `regex`: the text as written and its anchored, RE2-equivalent
/// compiled form.
#[derive(Clone, Debug)]
pub struct RelabelRegex {
    pub text: String,
    pub regex: Regex,
}

impl RelabelRegex {
    pub fn new(text: &str) -> Result<Self, String> {
        let body = translate(text)?;
        let regex = regex::RegexBuilder::new(&format!("^(?:{body})$"))
            .octal(true)
            .build()
            .map_err(|e| {
                let detail = e.to_string();
                let last = detail.lines().rev().find(|l| !l.trim().is_empty());
                format!(
                    "invalid regular expression {text:?}: {}",
                    last.unwrap_or("").trim().trim_start_matches("error: ")
                )
            })?;
        Ok(RelabelRegex {
            text: text.to_owned(),
            regex,
        })
    }

    /// Prometheus' default, `(.*)`.
    pub fn default_regex() -> Self {
        // `(.*)` always compiles.
        RelabelRegex::new("(.*)").unwrap_or_else(|_| RelabelRegex {
            text: "(.*)".into(),
            regex: Regex::new("^(?:(.*))$").expect("(.*) compiles"),
        })
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `regex:` with no value is Go's nil Regexp, which Prometheus
        // replaces with the empty expression.
        let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
        RelabelRegex::new(&text).map_err(de::Error::custom)
    }
}

/// A label name in `source_labels`: checked when the file is read, as
/// Prometheus' `model.LabelName` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelName(pub String);

impl<'de> Deserialize<'de> for LabelName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if is_label_name(&text) {
            Ok(LabelName(text))
        } else {
            Err(de::Error::custom(format!(
                "{text:?} is not a valid label name"
            )))
        }
    }
}

/// One rule as written: every key optional, so the defaults and the checks
/// that span keys can tell "absent" from "set to the default".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default)]
    source_labels: Option<Vec<LabelName>>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default)]
    regex: Option<RelabelRegex>,
    #[serde(default)]
    modulus: Option<u64>,
    #[serde(default)]
    target_label: Option<String>,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    action: Option<Action>,
}

/// One relabeling rule, with Prometheus' defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: RelabelRegex,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
    /// Which keys were written, for the checks of [`check_rules`].
    written: WrittenKeys,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct WrittenKeys {
    source_labels: bool,
    regex: bool,
}

impl<'de> Deserialize<'de> for RelabelConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = Written::deserialize(deserializer)?;
        Ok(RelabelConfig {
            written: WrittenKeys {
                source_labels: w.source_labels.is_some(),
                regex: w.regex.is_some(),
            },
            source_labels: w
                .source_labels
                .unwrap_or_default()
                .into_iter()
                .map(|l| l.0)
                .collect(),
            separator: w.separator.unwrap_or_else(|| DEFAULT_SEPARATOR.into()),
            regex: w.regex.unwrap_or_else(RelabelRegex::default_regex),
            modulus: w.modulus.unwrap_or(0),
            target_label: w.target_label.unwrap_or_default(),
            replacement: w.replacement.unwrap_or_else(|| DEFAULT_REPLACEMENT.into()),
            action: w.action.unwrap_or_default(),
        })
    }
}

pub const DEFAULT_SEPARATOR: &str = ";";
pub const DEFAULT_REPLACEMENT: &str = "$1";

impl RelabelConfig {
    /// A rule built in code (tests, benches): the defaults, then `set`.
    pub fn new(action: Action) -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.into(),
            regex: RelabelRegex::default_regex(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.into(),
            action,
            written: WrittenKeys::default(),
        }
    }

    pub fn source_labels(mut self, labels: &[&str]) -> Self {
        self.source_labels = labels.iter().map(|s| (*s).to_owned()).collect();
        self.written.source_labels = true;
        self
    }

    pub fn regex(mut self, text: &str) -> Result<Self, String> {
        self.regex = RelabelRegex::new(text)?;
        self.written.regex = true;
        Ok(self)
    }

    pub fn target(mut self, label: &str) -> Self {
        self.target_label = label.to_owned();
        self
    }

    pub fn replacement(mut self, text: &str) -> Self {
        self.replacement = text.to_owned();
        self
    }

    pub fn separator(mut self, text: &str) -> Self {
        self.separator = text.to_owned();
        self
    }

    pub fn modulus(mut self, m: u64) -> Self {
        self.modulus = m;
        self
    }

    /// Prometheus 2.42's `Config.Validate`: the key the problem concerns
    /// (`""` for the rule as a whole) and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        use Action::*;
        let a = self.action;
        let name = a.as_str();
        if a == HashMod && self.modulus == 0 {
            return Err((
                "modulus",
                "hashmod requires a modulus above 0 (Prometheus: non-zero modulus)".into(),
            ));
        }
        if matches!(
            a,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && self.target_label.is_empty()
        {
            return Err(("", format!("the {name} action requires target_label")));
        }
        let bad_target = || {
            Err((
                "target_label",
                format!(
                    "{:?} is an invalid target_label for the {name} action",
                    self.target_label
                ),
            ))
        };
        if a == Replace {
            let ok = if self.target_label.contains('$') {
                is_target_template(&self.target_label)
            } else {
                is_label_name(&self.target_label)
            };
            if !ok {
                return bad_target();
            }
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual | HashMod)
            && !is_label_name(&self.target_label)
        {
            return bad_target();
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual)
            && self.replacement != DEFAULT_REPLACEMENT
        {
            return Err((
                "replacement",
                format!("replacement can not be set for the {name} action"),
            ));
        }
        if a == LabelMap && !is_target_template(&self.replacement) {
            return Err((
                "replacement",
                format!(
                    "{:?} is an invalid replacement for the labelmap action",
                    self.replacement
                ),
            ));
        }
        if matches!(a, KeepEqual | DropEqual) {
            let extra = [
                ("regex", self.written.regex),
                ("modulus", self.modulus != 0),
                ("separator", self.separator != DEFAULT_SEPARATOR),
            ]
            .into_iter()
            .find(|(_, set)| *set);
            if let Some((key, _)) = extra {
                return Err((
                    key,
                    format!("the {name} action takes only source_labels and target_label"),
                ));
            }
        }
        if matches!(a, LabelDrop | LabelKeep) {
            let extra = [
                ("source_labels", self.written.source_labels),
                ("target_label", !self.target_label.is_empty()),
                ("modulus", self.modulus != 0),
                ("separator", self.separator != DEFAULT_SEPARATOR),
                ("replacement", self.replacement != DEFAULT_REPLACEMENT),
            ]
            .into_iter()
            .find(|(_, set)| *set);
            if let Some((key, _)) = extra {
                return Err((key, format!("the {name} action takes only regex")));
            }
        }
        Ok(())
    }

    /// The rule as one line of YAML flow text, for `/status`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("action: {}", self.action.as_str())];
        if !self.source_labels.is_empty() {
            parts.push(format!(
                "source_labels: [{}]",
                self.source_labels.join(", ")
            ));
        }
        if self.separator != DEFAULT_SEPARATOR {
            parts.push(format!("separator: {:?}", self.separator));
        }
        if self.written.regex {
            parts.push(format!("regex: {:?}", self.regex.text));
        }
        if self.modulus != 0 {
            parts.push(format!("modulus: {}", self.modulus));
        }
        if !self.target_label.is_empty() {
            parts.push(format!("target_label: {}", self.target_label));
        }
        if self.replacement != DEFAULT_REPLACEMENT {
            parts.push(format!("replacement: {:?}", self.replacement));
        }
        format!("{{{}}}", parts.join(", "))
    }
}

impl fmt::Display for RelabelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Checks a list of rules; the index and key of the first bad one.
pub fn check_rules(rules: &[RelabelConfig]) -> Result<(), (usize, &'static str, String)> {
    for (i, rule) in rules.iter().enumerate() {
        rule.check().map_err(|(key, message)| (i, key, message))?;
    }
    Ok(())
}

/// `^[a-zA-Z_][a-zA-Z0-9_]*$`, Prometheus' label name.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `^[a-zA-Z_:][a-zA-Z0-9_:]*$`, Prometheus' metric name.
pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Prometheus' `relabelTarget`,
/// `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`: a label name in which
/// `$name` / `${name}` references may stand for letters.
pub fn is_target_template(s: &str) -> bool {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$")
            .expect("the template pattern compiles")
    })
    .is_match(s)
}

/// Go's RE2 syntax into the `regex` crate's, with the same meaning:
/// - `\d \w \s` (and `\D \W \S`) are ASCII classes in Go, Unicode ones in
///   Rust: written out as ASCII classes, inside brackets too; `\b \B`
///   become ASCII word boundaries;
/// - `\Q...\E` (a literal text, not in the `regex` crate) is escaped;
/// - inside brackets, `[` `&` `~` are literals in Go but nested classes
///   and set operators in Rust, and a `-` right after a `-` starts Rust's
///   class difference: all are escaped;
/// - a `{` that starts no repetition (`a{`, `{x}`) is a literal in Go, an
///   error in Rust: escaped;
/// - `(?<name>` is refused, as Go before 1.22 (Prometheus 2.42) does.
pub fn translate(go: &str) -> Result<String, String> {
    const D: &str = "0-9";
    const W: &str = "0-9A-Za-z_";
    const S: &str = r"\t\n\x0C\r ";
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut i = 0;
    // Inside a bracket expression: the position after `[` / `[^`.
    let mut in_class = false;
    let mut class_start = 0;
    let mut prev_dash = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                return Err(format!(
                    "invalid regular expression {go:?}: trailing backslash"
                ));
            };
            let class = match n {
                'd' => Some((false, D)),
                'D' => Some((true, D)),
                'w' => Some((false, W)),
                'W' => Some((true, W)),
                's' => Some((false, S)),
                'S' => Some((true, S)),
                _ => None,
            };
            if let Some((negated, set)) = class {
                out.push('[');
                if negated {
                    out.push('^');
                }
                out.push_str(set);
                out.push(']');
                i += 2;
                prev_dash = false;
                continue;
            }
            if !in_class && (n == 'b' || n == 'B') {
                out.push_str(if n == 'b' { r"(?-u:\b)" } else { r"(?-u:\B)" });
                i += 2;
                continue;
            }
            if !in_class && n == 'Q' {
                let rest: String = chars[i + 2..].iter().collect();
                let (literal, after) = match rest.find(r"\E") {
                    Some(end) => (rest[..end].to_owned(), end + 2),
                    None => (rest.clone(), rest.len()),
                };
                out.push_str(&regex::escape(&literal));
                i += 2 + rest[..after].chars().count();
                continue;
            }
            out.push(c);
            out.push(n);
            i += 2;
            // `\p{Greek}`, `\x{263a}`: the braces belong to the escape.
            if matches!(n, 'p' | 'P' | 'x') && chars.get(i) == Some(&'{') {
                if let Some(end) = chars[i..].iter().position(|&c| c == '}') {
                    out.extend(&chars[i..=i + end]);
                    i += end + 1;
                }
            }
            prev_dash = false;
            continue;
        }
        if in_class {
            let at_start = i == class_start;
            match c {
                ']' if !at_start => {
                    in_class = false;
                    out.push(']');
                }
                '[' if chars.get(i + 1) == Some(&':') => {
                    // A POSIX class `[:alpha:]`, the same in both.
                    let rest: String = chars[i..].iter().collect();
                    match rest.find(":]") {
                        Some(end) if end > 1 => {
                            out.push_str(&rest[..end + 2]);
                            i += rest[..end + 2].chars().count();
                            prev_dash = false;
                            continue;
                        }
                        _ => out.push_str(r"\["),
                    }
                }
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                ']' => out.push_str(r"\]"),
                '-' if prev_dash => out.push_str(r"\-"),
                _ => out.push(c),
            }
            prev_dash = c == '-' && !prev_dash;
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                class_start = i;
                prev_dash = false;
                continue;
            }
            '{' => {
                if let Some(len) = repetition_len(&chars[i..]) {
                    out.extend(&chars[i..i + len]);
                    i += len;
                    continue;
                }
                out.push_str(r"\{");
            }
            '}' => out.push_str(r"\}"),
            '(' if chars.get(i + 1) == Some(&'?') && chars.get(i + 2) == Some(&'<') => {
                return Err(format!(
                    "invalid regular expression {go:?}: write a named group (?P<name>...), as RE2 in Prometheus 2.42 needs"
                ));
            }
            _ => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

/// The length of `{n}`, `{n,}` or `{n,m}` at the start of `s`, if it is one.
fn repetition_len(s: &[char]) -> Option<usize> {
    let end = s.iter().position(|&c| c == '}')?;
    let inner: String = s[1..end].iter().collect();
    let (a, b) = match inner.split_once(',') {
        Some((a, b)) => (a, Some(b)),
        None => (inner.as_str(), None),
    };
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
    (digits(a) && b.map_or(true, |b| b.is_empty() || digits(b))).then_some(end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_keeps_re2_meaning() {
        let m = |re: &str, s: &str| RelabelRegex::new(re).unwrap().regex.is_match(s);
        // ASCII-only Perl classes: the Arabic-Indic digit and the é are no
        // \d / \w in Go.
        assert!(m(r"\d+", "123"));
        assert!(!m(r"\d+", "١٢٣"));
        assert!(!m(r"\w+", "café"));
        assert!(m(r"\W", "é"));
        assert!(m(r"[\d_]+", "1_2"));
        assert!(!m(r"[\d]", "٣"));
        assert!(m(r"[^\D]", "7"));
        assert!(!m(r"\s", "\u{a0}"));
        assert!(!m(r"\s", "\u{b}"), "Go's \\s has no vertical tab");
        assert!(m(r"a\b.*", "a é"));
        // é is no ASCII word character: no boundary between it and the end.
        assert!(!m(r".*é\b", "xé"));
        assert!(m(r".*x\b.*", "xé"));
        // \Q...\E
        assert!(m(r"\Qa.b*\E", "a.b*"));
        assert!(!m(r"\Qa.b\E", "axb"));
        assert!(m(r"x\Q(y", "x(y"));
        // Brackets: `&&`, `~~`, `--` and `[` are literals in Go.
        assert!(m(r"[a&&b]", "&"));
        assert!(m(r"[a~~b]", "~"));
        assert!(m(r"[+--]", ","));
        assert!(m(r"[[]", "["));
        assert!(m(r"[[:digit:]x]+", "1x2"));
        assert!(m(r"[]a]", "]"));
        // A `{` that is no repetition is a literal.
        assert!(m(r"a{", "a{"));
        assert!(m(r"{x}", "{x}"));
        assert!(m(r"a{2}", "aa"));
        assert!(m(r"a{1,}", "aaa"));
        assert!(m(r"a{1,2}b", "aab"));
        assert!(m(r"\p{Greek}+\x{41}", "αβA"));
        // Anchored.
        assert!(!m("b", "abc"));
        assert!(m("a|b", "b"));
        assert!(!m("a|b", "ab"));
        assert!(RelabelRegex::new("(?<n>x)").is_err());
        assert!(RelabelRegex::new("(?P<n>x)").is_ok());
        assert!(RelabelRegex::new("(").is_err());
        assert!(RelabelRegex::new(r"a\").is_err());
    }

    #[test]
    fn target_templates() {
        for ok in ["a", "_x", "${1}", "$1", "a_${name}_b", "$1$2", "x$name"] {
            assert!(is_target_template(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "${}", "$", "a b", "${1"] {
            assert!(!is_target_template(bad), "{bad}");
        }
    }

    #[test]
    fn invalid_rules_are_refused_with_their_position_and_key() {
        let base = "sources:\n  app_metrics:\n    - name: web\n      url: http://127.0.0.1:9/metrics\n      metric_relabel_configs:\n        - {source_labels: [a], action: keep}\n        - {regex: x, action: labeldrop}\n";
        let at = "sources.app_metrics[0].metric_relabel_configs[2]";
        // (third rule, line:column of the error, message after the key)
        for (rule, column, key, message) in [
            (
                "{regex: '(', action: drop}",
                19,
                ".regex",
                "invalid regular expression \"(\"",
            ),
            (
                "{action: sideways}",
                20,
                ".action",
                "unknown relabel action \"sideways\"",
            ),
            (
                "{source_labels: [a-b], action: drop}",
                28,
                ".source_labels[0]",
                "\"a-b\" is not a valid label name",
            ),
            (
                "{action: hashmod, target_label: s}",
                11,
                ".modulus",
                "hashmod requires a modulus above 0",
            ),
            (
                "{source_labels: [a]}",
                11,
                "",
                "the replace action requires target_label",
            ),
            (
                "{source_labels: [a], target_label: 1a}",
                46,
                ".target_label",
                "\"1a\" is an invalid target_label",
            ),
            (
                "{source_labels: [a], target_label: 'a-${1}'}",
                46,
                ".target_label",
                "invalid target_label",
            ),
            (
                "{source_labels: [a], target_label: b, action: lowercase, replacement: x}",
                81,
                ".replacement",
                "replacement can not be set",
            ),
            (
                "{source_labels: [a], target_label: b, action: keepequal, regex: x}",
                75,
                ".regex",
                "takes only source_labels and target_label",
            ),
            (
                "{source_labels: [a], action: labeldrop}",
                27,
                ".source_labels",
                "takes only regex",
            ),
            (
                "{regex: x, action: labelmap, replacement: 'a-b'}",
                53,
                ".replacement",
                "invalid replacement for the labelmap action",
            ),
        ] {
            let text = format!("{base}        - {rule}\n");
            let e = super::super::parse_str(&text, "c.yaml").expect_err(rule);
            assert_eq!(e.line, 8, "{rule}: {e}");
            assert_eq!(e.column, column, "{rule}: {e}");
            assert!(
                e.message.starts_with(&format!("key `{at}{key}`: ")) && e.message.contains(message),
                "{rule}: {e}"
            );
        }
        let typo = format!("{base}        - {{regx: x, action: drop}}\n");
        let e = super::super::parse_str(&typo, "c.yaml").unwrap_err();
        assert!(e.message.contains("did you mean `regex`"), "{e}");
        // The same rules are read at the top level and in remote_write.
        let e = super::super::parse_str(
            "metric_relabel_configs:\n  - {action: hashmod, target_label: s, source_labels: [a]}\n",
            "c.yaml",
        )
        .unwrap_err();
        assert!(
            e.message
                .starts_with("key `metric_relabel_configs[0].modulus`"),
            "{e}"
        );
        let e = super::super::parse_str(
            "remote_write:\n  - url: http://127.0.0.1:9/api/v1/write\n    write_relabel_configs:\n      - {action: labelkeep, regex: '['}\n",
            "c.yaml",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (4, 36), "{e}");
        assert!(
            e.message
                .starts_with("key `remote_write[0].write_relabel_configs[0].regex`"),
            "{e}"
        );
        // Defaults as Prometheus': replace, `;`, `(.*)`, `$1`.
        let c = super::super::parse_str(
            &format!("{base}        - {{source_labels: [a, b], target_label: c}}\n"),
            "c.yaml",
        )
        .unwrap();
        let r = &c.sources.app_metrics[0].metric_relabel_configs[2];
        assert_eq!(
            (
                r.action,
                r.separator.as_str(),
                r.regex.text.as_str(),
                r.replacement.as_str()
            ),
            (Action::Replace, ";", "(.*)", "$1")
        );
    }
}
