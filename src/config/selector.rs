//! PromQL-style series selectors: `name` or `name{a="x",b!="y",c=~"re",d!~"re"}`.
//!
//! The syntax and meaning follow Prometheus so a selector can be copied
//! between a check and a query: strings are double-quoted, single-quoted or
//! back-quoted (raw) with Go escapes; regular expressions are fully anchored
//! (`c=~"a|b"` matches `a` or `b`, not `xab`); a label the series lacks counts
//! as the empty string, so `a=""` selects series without `a`.

use regex::Regex;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;

/// How one label is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One `label op "value"` term.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    /// The anchored regex, for `=~` and `!~`.
    regex: Option<Regex>,
}

impl Matcher {
    /// Whether a label value (empty when the series lacks the label) passes.
    pub fn matches_value(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // Unreachable by construction: parse always compiles regex ops.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op == other.op && self.value == other.value
    }
}

/// A parsed selector.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

/// Why a selector was refused; `position` is the 0-based character offset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {text:?} at character {}: {message}", position + 1)]
pub struct SelectorError {
    pub text: String,
    pub position: usize,
    pub message: String,
}

impl Selector {
    /// Parses `name` or `name{matchers}`.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        Parser::new(text).selector()
    }

    /// A selector of every series of `metric`, without label matchers.
    pub fn metric_only(metric: &str) -> Selector {
        Selector {
            metric: metric.to_owned(),
            matchers: Vec::new(),
        }
    }

    /// Whether a series with these labels is selected (its name having been
    /// compared already).
    pub fn matches(&self, labels: &[(String, String)]) -> bool {
        self.matchers.iter().all(|m| {
            let value = labels
                .iter()
                .find(|(k, _)| *k == m.label)
                .map_or("", |(_, v)| v.as_str());
            m.matches_value(value)
        })
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Selector::parse(&text).map_err(de::Error::custom)
    }
}

/// The canonical PromQL text: `name{a="x",c=~"re"}`, strings double-quoted
/// with Go escapes, so it can be pasted into a query or a rule file.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if self.matchers.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}{}{}", m.label, m.op.as_str(), quote(&m.value))?;
        }
        f.write_str("}")
    }
}

/// A PromQL double-quoted string literal.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Parser<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    fn error<T>(&self, position: usize, message: impl Into<String>) -> Result<T, SelectorError> {
        Err(SelectorError {
            text: self.text.to_owned(),
            position,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        self.skip_space();
        if self.peek() == Some('{') {
            return self.error(
                self.pos,
                "a metric name is needed before the braces, e.g. vitals_pg_up{target=\"db\"}",
            );
        }
        let metric = self.identifier(true)?;
        self.skip_space();
        let mut matchers = Vec::new();
        if self.peek() == Some('{') {
            self.pos += 1;
            loop {
                self.skip_space();
                match self.peek() {
                    Some('}') => {
                        self.pos += 1;
                        break;
                    }
                    None => return self.error(self.pos, "missing closing brace `}`"),
                    _ => {}
                }
                matchers.push(self.matcher()?);
                self.skip_space();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some('}') => {}
                    None => return self.error(self.pos, "missing closing brace `}`"),
                    Some(c) => {
                        return self.error(self.pos, format!("expected `,` or `}}`, found `{c}`"))
                    }
                }
            }
        }
        self.skip_space();
        if let Some(c) = self.peek() {
            return self.error(
                self.pos,
                format!("unexpected `{c}` after the selector; only a name and {{label matchers}} are allowed"),
            );
        }
        Ok(Selector { metric, matchers })
    }

    /// A metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or a label name (no colons).
    fn identifier(&mut self, metric: bool) -> Result<String, SelectorError> {
        let start = self.pos;
        let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (metric && c == ':');
        let ok_rest = |c: char| ok_first(c) || c.is_ascii_digit();
        match self.peek() {
            Some(c) if ok_first(c) => self.pos += 1,
            Some(c) => {
                let what = if metric {
                    "a metric name"
                } else {
                    "a label name"
                };
                return self.error(start, format!("expected {what}, found `{c}`"));
            }
            None => {
                let what = if metric {
                    "a metric name"
                } else {
                    "a label name"
                };
                return self.error(start, format!("expected {what}, found the end"));
            }
        }
        while self.peek().is_some_and(ok_rest) {
            self.pos += 1;
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn matcher(&mut self) -> Result<Matcher, SelectorError> {
        let label = self.identifier(false)?;
        if label == "__name__" {
            return self.error(
                self.pos - label.len(),
                "write the metric name before the braces instead of matching __name__",
            );
        }
        self.skip_space();
        let op_at = self.pos;
        let op = match (self.peek(), self.chars.get(self.pos + 1).copied()) {
            (Some('='), Some('~')) => MatchOp::Regex,
            (Some('!'), Some('=')) => MatchOp::NotEqual,
            (Some('!'), Some('~')) => MatchOp::NotRegex,
            (Some('='), _) => MatchOp::Equal,
            _ => {
                return self.error(
                    op_at,
                    format!("expected one of =, !=, =~, !~ after label `{label}`"),
                )
            }
        };
        self.pos += op.as_str().len();
        self.skip_space();
        let value_at = self.pos;
        let value = self.string()?;
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                // Prometheus anchors every label regex at both ends.
                match Regex::new(&format!("^(?:{value})$")) {
                    Ok(re) => Some(re),
                    Err(e) => {
                        return self.error(
                            value_at,
                            format!("invalid regular expression {value:?}: {e}"),
                        )
                    }
                }
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            label,
            op,
            value,
            regex,
        })
    }

    /// A quoted string: "..." or '...' with Go escapes, or `raw`.
    fn string(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        let quote = match self.peek() {
            Some(q @ ('"' | '\'' | '`')) => q,
            Some(c) => return self.error(start, format!("expected a quoted string, found `{c}`")),
            None => return self.error(start, "expected a quoted string, found the end"),
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return self.error(start, format!("unterminated string (missing {quote})"));
            };
            self.pos += 1;
            if c == quote {
                return Ok(out);
            }
            if c == '\\' && quote != '`' {
                let esc_at = self.pos - 1;
                let Some(e) = self.peek() else {
                    return self.error(start, format!("unterminated string (missing {quote})"));
                };
                self.pos += 1;
                match e {
                    '\\' => out.push('\\'),
                    '"' if quote == '"' => out.push('"'),
                    '\'' if quote == '\'' => out.push('\''),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    'u' | 'U' | 'x' => {
                        let len = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = self.chars.iter().skip(self.pos).take(len).collect();
                        let code = (hex.len() == len)
                            .then(|| u32::from_str_radix(&hex, 16).ok())
                            .flatten()
                            .and_then(char::from_u32);
                        match code {
                            Some(ch) => {
                                out.push(ch);
                                self.pos += len;
                            }
                            None => {
                                return self.error(esc_at, format!("invalid escape \\{e}{hex}"))
                            }
                        }
                    }
                    other => {
                        return self.error(
                            esc_at,
                            format!(
                                "unknown escape \\{other}; in a regular expression write \\\\{other} as in PromQL"
                            ),
                        )
                    }
                }
            } else {
                out.push(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_name_and_every_operator() {
        let s = Selector::parse(
            r#" vitals_pg_up { target = "replica", db != 'x', app=~"web.*" , user!~`adm\w+`, } "#,
        )
        .unwrap();
        assert_eq!(s.metric, "vitals_pg_up");
        let got: Vec<(&str, MatchOp, &str)> = s
            .matchers
            .iter()
            .map(|m| (m.label.as_str(), m.op, m.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("target", MatchOp::Equal, "replica"),
                ("db", MatchOp::NotEqual, "x"),
                ("app", MatchOp::Regex, "web.*"),
                ("user", MatchOp::NotRegex, r"adm\w+"),
            ]
        );
        let bare = Selector::parse("vitals_host_load1").unwrap();
        assert!(bare.matchers.is_empty());
        assert!(Selector::parse("ns:rule_name{}")
            .unwrap()
            .matchers
            .is_empty());
    }

    #[test]
    fn matching_table() {
        // (selector, labels, selected?)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case<'_>] = &[
            (r#"m{t="a"}"#, &[("t", "a")], true),
            (r#"m{t="a"}"#, &[("t", "ab")], false),
            (r#"m{t="a"}"#, &[], false),
            (r#"m{t!="a"}"#, &[("t", "b")], true),
            (r#"m{t!="a"}"#, &[], true),
            // Anchored like Prometheus: "rep" does not match "replica".
            (r#"m{t=~"rep"}"#, &[("t", "replica")], false),
            (r#"m{t=~"rep.*"}"#, &[("t", "replica")], true),
            (r#"m{t=~"a|b"}"#, &[("t", "b")], true),
            (r#"m{t=~"a|b"}"#, &[("t", "xb")], false),
            (r#"m{t!~"a|b"}"#, &[("t", "c")], true),
            (r#"m{t!~"a|b"}"#, &[("t", "a")], false),
            // A missing label is the empty string.
            (r#"m{t=""}"#, &[("u", "x")], true),
            (r#"m{t=""}"#, &[("t", "x")], false),
            (r#"m{t=~".*"}"#, &[], true),
            (r#"m{t=~".+"}"#, &[], false),
            (r#"m{a="1",b="2"}"#, &[("b", "2"), ("a", "1")], true),
            (r#"m{a="1",b="2"}"#, &[("a", "1")], false),
            (r#"m{t=~"\\d+"}"#, &[("t", "42")], true),
            (r#"m{t="say \"hi\""}"#, &[("t", "say \"hi\"")], true),
        ];
        for (text, l, want) in cases {
            let s = Selector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(s.matches(&labels(l)), *want, "{text} on {l:?}");
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        // (selector, position (0-based), part of the message)
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected a metric name, found the end"),
            ("{a=\"b\"}", 0, "metric name is needed before the braces"),
            ("1abc", 0, "expected a metric name"),
            ("m{a=\"b\"", 7, "missing closing brace"),
            ("m{a==\"b\"}", 4, "expected a quoted string, found `=`"),
            ("m{a~\"b\"}", 3, "expected one of =, !=, =~, !~"),
            ("m{a=b}", 4, "expected a quoted string, found `b`"),
            ("m{a=\"b}", 4, "unterminated string"),
            ("m{a=~\"(\"}", 5, "invalid regular expression"),
            ("m{a=\"\\d\"}", 5, "unknown escape \\d"),
            ("m{a=\"1\" b=\"2\"}", 8, "expected `,` or `}`"),
            ("m{__name__=\"x\"}", 2, "instead of matching __name__"),
            ("m{a:b=\"x\"}", 3, "expected one of"),
            ("m > 5", 2, "unexpected `>` after the selector"),
            ("rate(m[5m])", 4, "unexpected `(`"),
        ];
        for (text, pos, msg) in cases {
            let e = Selector::parse(text).expect_err(text);
            assert_eq!(e.position, *pos, "{text}: {e}");
            assert!(e.message.contains(msg), "{text}: {e}");
        }
        let e = Selector::parse("m{a=b}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid selector \"m{a=b}\" at character 5: expected a quoted string, found `b`"
        );
    }

    #[test]
    fn display_is_canonical_promql_and_round_trips() {
        for (text, canonical) in [
            ("m", "m"),
            ("m{}", "m"),
            (
                r#"m{ a = 'x' , b!~`q\d`,c=~"a\\.b"}"#,
                r#"m{a="x",b!~"q\\d",c=~"a\\.b"}"#,
            ),
            (r#"m{a="l1\nl2\"q\""}"#, r#"m{a="l1\nl2\"q\""}"#),
            (r#"m{a="\u00e9\x41"}"#, r#"m{a="éA"}"#),
        ] {
            let s = Selector::parse(text).unwrap();
            assert_eq!(s.to_string(), canonical, "{text}");
            assert_eq!(Selector::parse(&s.to_string()).unwrap(), s, "{text}");
        }
    }
}
