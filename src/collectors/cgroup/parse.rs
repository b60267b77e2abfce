//! Pure parsers for the file formats cgroup v1 and v2 share: single values
//! (with "max" meaning no limit), flat "key value" files and PSI files.
//! v1- and v2-only formats live in `v1.rs` and `v2.rs`.

pub(crate) use crate::collectors::procfs::ParseError;

pub(crate) fn err(message: impl Into<String>) -> ParseError {
    ParseError(message.into())
}

/// A single unsigned number: `memory.current`, `cpuacct.usage`, `pids.current`.
pub(crate) fn parse_u64(text: &str) -> Result<u64, ParseError> {
    let value = text.trim();
    value
        .parse()
        .map_err(|_| err(format!("expected an unsigned number, found {value:?}")))
}

/// A single number or the word `max` (no limit): `memory.max`, `pids.max`.
/// `None` means unlimited.
pub(crate) fn parse_max_or_u64(text: &str) -> Result<Option<u64>, ParseError> {
    match text.trim() {
        "max" => Ok(None),
        _ => parse_u64(text).map(Some),
    }
}

/// A flat "key value" file (`cpu.stat`, `memory.stat`, `memory.events`,
/// v1 `memory.oom_control`). Every value must be an unsigned number; keys
/// we do not know are kept so new kernels do not break parsing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct KeyValues(Vec<(String, u64)>);

impl KeyValues {
    pub(crate) fn get(&self, key: &str) -> Option<u64> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

pub(crate) fn parse_key_values(text: &str) -> Result<KeyValues, ParseError> {
    let mut pairs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(err(format!("expected \"key value\", found {line:?}")));
        };
        let value = value.parse().map_err(|_| {
            err(format!(
                "value of {key} is not an unsigned number: {value:?}"
            ))
        })?;
        pairs.push((key.to_owned(), value));
    }
    Ok(KeyValues(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_values() {
        // Linux 6.18: memory.current, pids.max, memory.max of an unlimited cgroup.
        let cases: &[(&str, Result<Option<u64>, ()>)] = &[
            ("4403200\n", Ok(Some(4403200))),
            ("max\n", Ok(None)),
            ("0\n", Ok(Some(0))),
            ("", Err(())),
            ("-1\n", Err(())),
            ("12 34\n", Err(())),
        ];
        for (text, want) in cases {
            let got = parse_max_or_u64(text).map_err(|_| ());
            assert_eq!(&got, want, "input {text:?}");
        }
        assert!(parse_u64("max\n").is_err());
        assert_eq!(parse_u64("229227296946\n"), Ok(229227296946));
    }

    #[test]
    fn key_values_from_a_real_v1_memory_stat_head() {
        // Linux 6.18 (cgroup v1 memory controller), first lines of memory.stat.
        let text = "cache 1122304\nrss 1667072\nrss_huge 0\nshmem 0\n\
                    hierarchical_memory_limit 9223372036854771712\ntotal_inactive_file 147456\n";
        let kv = parse_key_values(text).unwrap();
        assert_eq!(kv.get("rss"), Some(1667072));
        assert_eq!(kv.get("total_inactive_file"), Some(147456));
        assert_eq!(
            kv.get("hierarchical_memory_limit"),
            Some(9223372036854771712)
        );
        assert_eq!(kv.get("swap"), None);
    }

    #[test]
    fn key_values_refuse_garbage() {
        for text in ["rss\n", "rss 12 13\n", "rss twelve\n", "rss -5\n"] {
            assert!(parse_key_values(text).is_err(), "input {text:?}");
        }
        assert_eq!(parse_key_values("\n").unwrap(), KeyValues::default());
    }
}
