//! Just enough of PromQL to find the series selectors of an expression: the
//! metric names it reads and the label matchers of each. Not a validator —
//! `promtool` parses every expression for that — but it must never mistake a
//! function, a keyword, a label name or a `by (...)` list for a metric.
//! Grafana variables (`$job`, `${instance}`, `[$__rate_interval]`) are
//! accepted where dashboards use them: in strings and in range brackets.

use std::collections::BTreeSet;

/// One label matcher: `label op "value"` (op is `=`, `!=`, `=~` or `!~`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    pub label: String,
    pub op: String,
    pub value: String,
}

/// One series selector: `metric{matchers}[range]`. `metric` is `None` for
/// `{__name__=~"..."}` with a regular expression.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    pub metric: Option<String>,
    pub matchers: Vec<Matcher>,
    /// The text between the brackets of a range selector, as written.
    pub range: Option<String>,
}

impl Selector {
    pub fn matcher(&self, label: &str) -> Option<&Matcher> {
        self.matchers.iter().find(|m| m.label == label)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number,
    /// A Grafana variable outside a string.
    Var,
    /// `[...]`, its inside as written.
    Range(String),
    Punct(&'static str),
}

const PUNCTS: [&str; 21] = [
    "=~", "!~", "!=", "==", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", "^", "(", ")", "{",
    "}", ",", "@",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LIST_KEYWORDS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Words that are never metric names where they stand.
const KEYWORDS: [&str; 8] = [
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

/// Aggregation operators: `sum by (x) (...)` puts the label list before the
/// parenthesis.
const AGGREGATIONS: [&str; 14] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

fn lex(expr: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while chars.get(i).is_some_and(|&c| c != '\n') {
                i += 1;
            }
        } else if c == '"' || c == '\'' || c == '`' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated string in {expr:?}")),
                    Some(&q) if q == c => break,
                    Some('\\') if c != '`' => {
                        if let Some(&n) = chars.get(i + 1) {
                            value.push(n);
                        }
                        i += 2;
                    }
                    Some(&other) => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            i += 1;
            tokens.push(Token::Str(value));
        } else if c == '[' {
            let start = i + 1;
            while chars.get(i).is_some_and(|&c| c != ']') {
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("unterminated [ in {expr:?}"));
            }
            tokens.push(Token::Range(chars[start..i].iter().collect()));
            i += 1;
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'{') {
                while chars.get(i).is_some_and(|&c| c != '}') {
                    i += 1;
                }
                i += 1;
            } else {
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
            }
            tokens.push(Token::Var);
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // Numbers, hex, exponents and durations (5m, 1h30m) in one token.
            let hex = c == '0' && matches!(chars.get(i + 1), Some('x' | 'X'));
            i += 1;
            while let Some(&n) = chars.get(i) {
                let exponent_sign =
                    (n == '+' || n == '-') && !hex && matches!(chars.get(i - 1), Some('e' | 'E'));
                if n.is_ascii_alphanumeric() || n == '.' || n == '_' || exponent_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            tokens.push(Token::Number);
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            // ':' starts recording-rule names; as the subquery step separator
            // it only appears inside brackets, which are lexed whole.
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
                return Err(format!("unexpected {c:?} in {expr:?}"));
            };
            tokens.push(Token::Punct(p));
            i += p.len();
        }
    }
    Ok(tokens)
}

/// Skips a parenthesised group starting at `tokens[i] == "("`; returns the
/// index after its ")".
fn skip_group(tokens: &[Token], mut i: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    while let Some(t) = tokens.get(i) {
        match t {
            Token::Punct("(") => depth += 1,
            Token::Punct(")") => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err("unbalanced parentheses".into())
}

/// Parses `{label op "value", ...}` starting at `tokens[i] == "{"`; returns
/// the matchers and the index after "}".
fn matchers(tokens: &[Token], mut i: usize) -> Result<(Vec<Matcher>, usize), String> {
    let mut out = Vec::new();
    i += 1;
    loop {
        match tokens.get(i) {
            Some(Token::Punct("}")) => return Ok((out, i + 1)),
            Some(Token::Punct(",")) => i += 1,
            Some(Token::Ident(label) | Token::Str(label)) => {
                let (Some(Token::Punct(op)), Some(Token::Str(value))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                else {
                    return Err(format!("malformed matcher after {label:?}"));
                };
                if !["=", "!=", "=~", "!~"].contains(op) {
                    return Err(format!("unknown matcher operator {op:?}"));
                }
                out.push(Matcher {
                    label: label.clone(),
                    op: (*op).to_owned(),
                    value: value.clone(),
                });
                i += 3;
            }
            other => return Err(format!("unexpected {other:?} in label matchers")),
        }
    }
}

/// Every series selector of a PromQL expression, in order.
pub fn selectors_in_expr(expr: &str) -> Result<Vec<Selector>, String> {
    let tokens = lex(expr)?;
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        let next = tokens.get(i + 1);
        match token {
            Token::Ident(word) => {
                let lower = word.to_ascii_lowercase();
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                    i = match next {
                        Some(Token::Punct("(")) => skip_group(&tokens, i + 1)?,
                        // group_left without a list.
                        _ => i + 1,
                    };
                } else if KEYWORDS.contains(&lower.as_str())
                    || matches!(next, Some(Token::Punct("(")))
                    || (AGGREGATIONS.contains(&lower.as_str())
                        && matches!(next, Some(Token::Ident(w)) if w == "by" || w == "without"))
                {
                    i += 1;
                } else {
                    let mut selector = Selector {
                        metric: Some(word.clone()),
                        ..Selector::default()
                    };
                    i += 1;
                    if let Some(Token::Punct("{")) = tokens.get(i) {
                        let (m, after) = matchers(&tokens, i)?;
                        selector.matchers = m;
                        i = after;
                    }
                    if let Some(Token::Range(r)) = tokens.get(i) {
                        selector.range = Some(r.trim().to_owned());
                        i += 1;
                    }
                    out.push(selector);
                }
            }
            Token::Punct("{") => {
                let (m, after) = matchers(&tokens, i)?;
                let metric = m
                    .iter()
                    .find(|m| m.label == "__name__" && m.op == "=")
                    .map(|m| m.value.clone());
                let mut selector = Selector {
                    metric,
                    matchers: m
                        .into_iter()
                        .filter(|m| !(m.label == "__name__" && m.op == "="))
                        .collect(),
                    range: None,
                };
                i = after;
                if let Some(Token::Range(r)) = tokens.get(i) {
                    selector.range = Some(r.trim().to_owned());
                    i += 1;
                }
                out.push(selector);
            }
            _ => i += 1,
        }
    }
    Ok(out)
}

/// The metric names an expression reads: no functions, keywords, label
/// names or `by`/`without`/`on`/`ignoring`/`group_*` lists.
pub fn metric_names_in_expr(expr: &str) -> Result<BTreeSet<String>, String> {
    Ok(selectors_in_expr(expr)?
        .into_iter()
        .filter_map(|s| s.metric)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_names_in_expr(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .into_iter()
            .collect()
    }

    #[test]
    fn finds_metrics_and_nothing_else() {
        let cases: &[(&str, &[&str])] = &[
            ("up", &["up"]),
            ("up == 0", &["up"]),
            (r#"up{job=~".*vitals.*"} == 0"#, &["up"]),
            (
                r#"rate(vitals_cgroup_cpu_usage_seconds_total{job=~"$job",instance=~"$instance"}[$__rate_interval])"#,
                &["vitals_cgroup_cpu_usage_seconds_total"],
            ),
            (
                "sum by (job, instance, state) (vitals_pg_connections)",
                &["vitals_pg_connections"],
            ),
            (
                "sum(vitals_pg_connections) by (target, state)",
                &["vitals_pg_connections"],
            ),
            (
                "max without (severity) (vitals_check_threshold{severity=\"warning\"})",
                &["vitals_check_threshold"],
            ),
            ("a / on(job, instance) group_left(version) b", &["a", "b"]),
            (
                "a > 0.9 unless on(job, instance) vitals_check_status{check=\"x\"}",
                &["a", "vitals_check_status"],
            ),
            ("a * ignoring(mode) group_right b", &["a", "b"]),
            ("count(a == 2) or vector(0)", &["a"]),
            (
                "time() - vitals_source_last_success_timestamp_seconds",
                &["vitals_source_last_success_timestamp_seconds"],
            ),
            ("increase(x_total[10m]) > 0", &["x_total"]),
            ("avg_over_time(x[1h:5m]) offset 5m", &["x"]),
            ("x @ start()", &["x"]),
            ("a > bool 1e+06", &["a"]),
            ("a > 0x1F and b < Inf", &["a", "b"]),
            (
                r#"label_replace(x, "dst", "$1 {not} a(metric)", "src", "(.*)")"#,
                &["x"],
            ),
            (r#"{__name__="by_name", job="x"}"#, &["by_name"]),
            (r#"{__name__=~"regex_.*"}"#, &[]),
            (
                "rate(level:recorded:rate5m[1m])",
                &["level:recorded:rate5m"],
            ),
            (
                "topk(5, sum by (app) (rate(req_total[5m])))",
                &["req_total"],
            ),
            ("-a + (b)", &["a", "b"]),
        ];
        for (expr, want) in cases {
            assert_eq!(names(expr), *want, "{expr}");
        }
    }

    #[test]
    fn keeps_matchers_and_ranges() {
        let s = selectors_in_expr(
            r#"rate(x{job=~"$job", instance!="a,b}", mode='idle'}[ $__rate_interval ]) / y"#,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].metric.as_deref(), Some("x"));
        assert_eq!(s[0].range.as_deref(), Some("$__rate_interval"));
        assert_eq!(
            s[0].matchers,
            vec![
                Matcher {
                    label: "job".into(),
                    op: "=~".into(),
                    value: "$job".into()
                },
                Matcher {
                    label: "instance".into(),
                    op: "!=".into(),
                    value: "a,b}".into()
                },
                Matcher {
                    label: "mode".into(),
                    op: "=".into(),
                    value: "idle".into()
                },
            ]
        );
        assert_eq!(s[1].metric.as_deref(), Some("y"));
        assert!(s[1].matchers.is_empty() && s[1].range.is_none());
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in [r#"x{job="a"#, "x{job=}", "x{job~\"a\"}", "x[5m", "x ? y"] {
            assert!(selectors_in_expr(bad).is_err(), "{bad}");
        }
    }
}
