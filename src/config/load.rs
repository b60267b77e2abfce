//! Reading a config file and turning every problem into `file:line:column:
//! message` naming the key, with a did-you-mean for misspelt keys.

use super::paths::{PathIndex, Position};
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

/// A problem found by a [`Resolve`] step: the dotted key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    pub path: String,
    pub message: String,
}

/// A step the layers above the config run between parsing and validation
/// (the checks resolve overrides of built-in checks and look selectors up
/// in the metric catalog); its problems are reported like the config's own.
pub type Resolve<'a> = &'a dyn Fn(&mut Config) -> Result<(), KeyProblem>;

fn no_resolve(_: &mut Config) -> Result<(), KeyProblem> {
    Ok(())
}

/// Reads and validates `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_with(path, &no_resolve)
}

/// Reads `path`, runs `resolve` on it, then validates it.
pub fn load_file_with(path: &Path, resolve: Resolve<'_>) -> Result<Config, ConfigError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: label.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read config file: {e}"),
    })?;
    parse_str_with(&text, &label, resolve)
}

/// Parses and validates config text; `file` is only used in messages.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    parse_str_with(text, file, &no_resolve)
}

/// Parses config text, runs `resolve` on it, then validates it.
pub fn parse_str_with(text: &str, file: &str, resolve: Resolve<'_>) -> Result<Config, ConfigError> {
    let index = PathIndex::new(text);
    let error = |(line, column): Position, message: String| ConfigError {
        file: file.to_owned(),
        line,
        column,
        message,
    };
    let mut config: Config = serde_saphyr::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        error(at, describe(&index, at, &e.to_string()))
    })?;
    resolve(&mut config).map_err(|p| {
        error(
            index.position_of(&p.path),
            format!("key `{}`: {}", p.path, p.message),
        )
    })?;
    super::validate::validate(&config).map_err(|invalid| {
        error(
            index.position_of(&invalid.path),
            format!("key `{}`: {}", invalid.path, invalid.message),
        )
    })?;
    Ok(config)
}

/// The parser's own message without its "error: line L column C:" prefix and
/// source snippet, plus the key it concerns and a did-you-mean.
fn describe(index: &PathIndex, at: Position, raw: &str) -> String {
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
            let path = index
                .key_at(at, field)
                .map(|p| format!(" (key `{p}`)"))
                .unwrap_or_default();
            let hint = did_you_mean(field, &choices)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!("; valid keys here: {}", choices.join(", ")));
            return format!("unknown key `{field}`{path}{hint}");
        }
    }
    match index.path_at(at) {
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
        let text = "sources:\n  postgres:\n    - name: a\n      dsn: host=a\n    - name: b\n      dsn: host=b\n      interval: 5 seconds\n";
        let e = err(text);
        assert_eq!((e.line, e.column), (7, 17));
        assert!(
            e.message
                .starts_with("key `sources.postgres[1].interval`: invalid duration"),
            "{}",
            e.message
        );
    }

    /// Every class of error, in block and in flow style: the same dotted
    /// path, each at its own position.
    #[test]
    fn every_error_class_names_path_and_position_in_block_and_flow_style() {
        const PG: &str = "sources:\n  postgres:\n";
        const DSN: &str = "dsn: \"host=127.0.0.1\"";
        let cases: Vec<(String, (u64, u64), &str)> = vec![
            // unknown key, with a did-you-mean
            (
                format!("{PG}    - name: a\n      {DSN}\n      intervl: 5s\n"),
                (5, 7),
                "unknown key `intervl` (key `sources.postgres[0].intervl`); did you mean `interval`?",
            ),
            (
                format!("{PG}    - {{name: a, {DSN}, intervl: 5s}}\n"),
                (3, 40),
                "unknown key `intervl` (key `sources.postgres[0].intervl`); did you mean `interval`?",
            ),
            // wrong type
            (
                format!("{PG}    - name: a\n      {DSN}\n      top_applications: many\n"),
                (5, 25),
                "key `sources.postgres[0].top_applications`: ",
            ),
            (
                format!("{PG}    - {{name: a, {DSN}, top_applications: many}}\n"),
                (3, 58),
                "key `sources.postgres[0].top_applications`: ",
            ),
            // bad duration
            (
                format!("{PG}    - name: a\n      {DSN}\n      interval: 5 seconds\n"),
                (5, 17),
                "key `sources.postgres[0].interval`: invalid duration",
            ),
            (
                format!("{PG}    - {{name: a, {DSN}, interval: 5 seconds}}\n"),
                (3, 50),
                "key `sources.postgres[0].interval`: invalid duration",
            ),
            // bad address
            ("listen: nowhere\n".into(), (1, 9), "key `listen`: "),
            ("{interval: 5s, listen: nowhere}\n".into(), (1, 24), "key `listen`: "),
            // bad DSN (its text, password included, is never repeated)
            (
                format!("{PG}    - name: a\n      dsn: \"host=127.0.0.1 password=hunter2hunter2 port=x\"\n"),
                (4, 12),
                "key `sources.postgres[0].dsn`: invalid dsn",
            ),
            (
                format!("{PG}    - {{name: a, dsn: \"host=127.0.0.1 password=hunter2hunter2 port=x\"}}\n"),
                (3, 22),
                "key `sources.postgres[0].dsn`: invalid dsn",
            ),
            // bad probe URL
            (
                "sources:\n  http_probes:\n    - name: app\n      url: https://127.0.0.1/\n".into(),
                (4, 12),
                "key `sources.http_probes[0].url`: probe URL \"https://127.0.0.1/\": https is not supported",
            ),
            (
                "sources:\n  http_probes:\n    - {name: app, url: \"https://127.0.0.1/\"}\n".into(),
                (3, 24),
                "key `sources.http_probes[0].url`: probe URL \"https://127.0.0.1/\": https is not supported",
            ),
            // bad selector
            (
                "checks:\n  - name: lag\n    metric: 'x{target=replica}'\n    critical: 5\n".into(),
                (3, 13),
                "key `checks[0].metric`: invalid selector \"x{target=replica}\" at character 10: expected a quoted string, found `r`",
            ),
            (
                "checks:\n  - {name: lag, metric: 'x{target=replica}', critical: 5}\n".into(),
                (2, 25),
                "key `checks[0].metric`: invalid selector \"x{target=replica}\" at character 10: expected a quoted string, found `r`",
            ),
            // levels out of order
            (
                "checks:\n  - name: lag\n    metric: m\n    warning: 5\n    critical: 1\n".into(),
                (4, 14),
                "key `checks[0].warning`: check `lag`: warning 5 is beyond critical 1",
            ),
            (
                "checks:\n  - {name: lag, metric: m, warning: 5, critical: 1}\n".into(),
                (2, 37),
                "key `checks[0].warning`: check `lag`: warning 5 is beyond critical 1",
            ),
            // unknown enum value
            (
                "checks:\n  - name: lag\n    metric: m\n    direction: sideways\n    critical: 1\n".into(),
                (4, 16),
                "key `checks[0].direction`: unknown variant `sideways`",
            ),
            (
                "checks:\n  - {name: lag, metric: m, direction: sideways, critical: 1}\n".into(),
                (2, 39),
                "key `checks[0].direction`: unknown variant `sideways`",
            ),
            // two targets with one name: at the second name
            (
                format!("{PG}    - name: a\n      {DSN}\n    - name: a\n      {DSN}\n"),
                (5, 13),
                "key `sources.postgres[1].name`: name `a` is used twice",
            ),
            (
                format!("{PG}    - {{name: a, {DSN}}}\n    - {{name: a, {DSN}}}\n"),
                (4, 14),
                "key `sources.postgres[1].name`: name `a` is used twice",
            ),
            // YAML syntax
            (
                "sources:\n  host:\n    enabled: true\n    interval: \"5s\n".into(),
                (4, 15),
                "key `sources.host.interval`: unclosed quote",
            ),
            (
                "sources:\n  host: {enabled: true, interval: 5s]\n".into(),
                (2, 9),
                "key `sources.host`: mismatched bracket '{' closed by ']'",
            ),
        ];
        let mut wrong = Vec::new();
        for (text, at, message) in &cases {
            let e = err(text);
            if (e.line, e.column) != *at || !e.message.starts_with(message) {
                wrong.push(format!(
                    "{text:?}\n  want {}:{} {message}\n  got  {}:{} {}",
                    at.0, at.1, e.line, e.column, e.message
                ));
            }
            assert!(!e.message.contains("hunter2"), "{}", e.message);
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
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
