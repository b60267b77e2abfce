//! Reading a config file and turning every problem into `file:line:column:
//! message` naming the key, with a did-you-mean for misspelt keys.

use super::Config;
use std::fmt;
use std::path::Path;

/// The configuration `vitals` runs with when given no `--config`: the host and
/// its own cgroup, no database.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.yaml");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: label.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read config file: {e}"),
    })?;
    parse_str(&text, &label)
}

/// Parses and validates config text; `file` is only used in messages.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    let config: Config = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        ConfigError {
            file: file.to_owned(),
            line,
            column,
            message: describe(text, line, column, &e.to_string()),
        }
    })?;
    super::validate::validate(&config, text).map_err(|(line, column, message)| ConfigError {
        file: file.to_owned(),
        line,
        column,
        message,
    })?;
    Ok(config)
}

/// The parser's own message without its "error: line L column C:" prefix and
/// source snippet, plus the key it concerns and a did-you-mean.
fn describe(text: &str, line: u64, column: u64, raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw);
    let message = first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .split_once(": ")
        .filter(|(prefix, _)| prefix.starts_with("line ") && prefix.contains(" column "))
        .map_or(first, |(_, rest)| rest);
    // "unknown field `intervl`, expected one of interval, enabled"
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once('`') {
            let choices: Vec<&str> = expected
                .trim_start_matches(", expected one of ")
                .trim_start_matches(", expected ")
                .split(", ")
                .map(|s| s.trim_matches('`'))
                .collect();
            let path = key_path_at(text, line, column)
                .map(|p| format!(" (key `{p}`)"))
                .unwrap_or_default();
            let hint = did_you_mean(field, &choices)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!("; valid keys here: {}", choices.join(", ")));
            return format!("unknown key `{field}`{path}{hint}");
        }
    }
    match key_path_at(text, line, column) {
        Some(path) => format!("key `{path}`: {message}"),
        None => message.to_owned(),
    }
}

/// The closest of `choices` to `word`, if it is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, choices: &[&'a str]) -> Option<&'a str> {
    choices
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Best-effort dotted path (`sources.postgres[1].interval`) of the key whose
/// value or name sits at `line:column` (1-based) of block-style YAML, with
/// flow mappings on the last line (`target: {pid: -1}`) handled too.
pub fn key_path_at(text: &str, line: u64, column: u64) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let idx = usize::try_from(line).ok()?.checked_sub(1)?;
    let here = *lines.get(idx)?;
    // The parser counts columns in characters; slicing needs a byte index
    // (a non-ASCII character before the error used to panic here).
    let chars = usize::try_from(column).ok()?.saturating_sub(1);
    let col = here
        .char_indices()
        .nth(chars)
        .map_or(here.len(), |(i, _)| i);

    // Keys on the error's own line, up to the error position (flow style may
    // nest several: `target: {pid: -1}` gives target.pid).
    let mut own: Vec<String> = Vec::new();
    let before = &here[..col];
    let at_key = key_of_line(here).filter(|(indent, _)| *indent == col);
    if let Some((_, key)) = at_key {
        own.push(key);
    } else {
        let mut depth_keys: Vec<String> = Vec::new();
        let mut token = String::new();
        for ch in before.chars() {
            match ch {
                ':' => {
                    let t = token.trim().trim_start_matches(['-', '{', ',', ' ']).trim();
                    if !t.is_empty() {
                        depth_keys.push(t.trim_matches(['"', '\'']).to_owned());
                    }
                    token.clear();
                }
                '{' | ',' => token.clear(),
                _ => token.push(ch),
            }
        }
        own = depth_keys;
    }
    let own_indent = indent_of(here);

    // Walk up through parents: each line with a smaller indentation opens the
    // block we are in.
    let mut path: Vec<String> = Vec::new();
    let mut current = own_indent;
    let mut i = idx;
    while i > 0 && current > 0 {
        i -= 1;
        let line = lines[i];
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = indent_of(line);
        let dash = line.trim_start().starts_with("- ") || line.trim() == "-";
        let raw_indent = line.len() - line.trim_start().len();
        if dash && raw_indent < current {
            // We are inside list item number N of the block above.
            let count = lines[..=i]
                .iter()
                .rev()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= raw_indent)
                .filter(|l| {
                    l.len() - l.trim_start().len() == raw_indent && l.trim_start().starts_with('-')
                })
                .count();
            path.push(format!("[{}]", count.saturating_sub(1)));
            current = raw_indent;
            continue;
        }
        if indent < current {
            if let Some((_, key)) = key_of_line(line) {
                path.push(key);
            }
            current = indent;
        }
    }
    path.reverse();
    let mut out = String::new();
    for part in path.into_iter().chain(own) {
        if !out.is_empty() && !part.starts_with('[') {
            out.push('.');
        }
        out.push_str(&part);
    }
    (!out.is_empty()).then_some(out)
}

/// Indentation of a line's first key, treating "- " as indentation.
fn indent_of(line: &str) -> usize {
    let mut n = line.len() - line.trim_start().len();
    let mut rest = line.trim_start();
    while let Some(r) = rest.strip_prefix("- ") {
        n += 2 + (r.len() - r.trim_start().len());
        rest = r.trim_start();
    }
    n
}

/// The key a block-style line starts with, and its column (0-based).
fn key_of_line(line: &str) -> Option<(usize, String)> {
    let indent = indent_of(line);
    let rest = line.get(indent..)?;
    let (key, _) = rest.split_once(':')?;
    let key = key.trim().trim_matches(['"', '\'']);
    (!key.is_empty() && !key.contains([' ', '{', '['])).then(|| (indent, key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        parse_str(text, "vitals.yaml").expect_err("config should be refused")
    }

    #[test]
    fn embedded_default_is_valid() {
        let config = parse_str(EMBEDDED_DEFAULT, "<embedded>").unwrap();
        assert!(config.sources.host.enabled);
        assert!(config.sources.cgroup.enabled);
        assert!(config.sources.postgres.is_empty());
    }

    #[test]
    fn empty_file_means_defaults() {
        let config = parse_str("", "x.yaml").unwrap();
        assert_eq!(config.listen.port(), crate::config::DEFAULT_PORT);
        assert_eq!(config.interval.as_secs_f64(), 5.0);
    }

    #[test]
    fn unknown_key_names_position_path_and_suggestion() {
        let e = err("listen: 127.0.0.1:1\nsources:\n  host:\n    enabled: true\n    intervl: 5s\n");
        assert_eq!((e.line, e.column), (5, 5));
        assert_eq!(
            e.message,
            "unknown key `intervl` (key `sources.host.intervl`); did you mean `interval`?"
        );
        assert!(e.to_string().starts_with("vitals.yaml:5:5: unknown key"));
    }

    #[test]
    fn bad_duration_names_key_in_list_item() {
        let text = "sources:\n  postgres:\n    - name: a\n      dsn: x\n    - name: b\n      dsn: y\n      interval: 5 seconds\n";
        let e = err(text);
        assert_eq!((e.line, e.column), (7, 17));
        assert!(
            e.message
                .starts_with("key `sources.postgres[1].interval`: invalid duration"),
            "{}",
            e.message
        );
    }

    #[test]
    fn flow_mapping_value_error_names_nested_key() {
        let e = err("sources:\n  cgroup:\n    target: {pid: -1}\n");
        assert_eq!(e.line, 3);
        assert!(
            e.message.starts_with("key `sources.cgroup.target.pid`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let e = err("listen: [\n");
        assert_eq!(e.line, 1);
        assert!(e.column >= 9);
    }

    #[test]
    fn bad_listen_address_and_regex_are_refused() {
        let e = err("listen: nowhere\n");
        assert_eq!((e.line, e.column), (1, 9));
        assert!(e.message.contains("listen"), "{}", e.message);
        let e = err("sources:\n  processes:\n    - {name: app, match: {comm: \"(\"}}\n");
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("invalid regular expression"),
            "{}",
            e.message
        );
    }

    #[test]
    fn did_you_mean_only_for_close_words() {
        assert_eq!(
            did_you_mean("intervl", &["interval", "enabled"]),
            Some("interval")
        );
        assert_eq!(did_you_mean("zzz", &["interval", "enabled"]), None);
    }
}
