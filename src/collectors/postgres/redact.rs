//! Statement texts are shown in `/status`, on the page and (cut short) in
//! the `query` label. pg_stat_statements replaces the constants of plans
//! with `$1`, `$2` …, but up to PostgreSQL 15 it keeps utility statements
//! as they were typed: `ALTER ROLE app PASSWORD 'hunter2'`, `CREATE USER
//! MAPPING … OPTIONS (password '…')`, a `DO $$ … $$` block. So every string
//! literal left in a text is replaced before the agent keeps it.

/// What a literal becomes.
pub const REDACTED: &str = "'***'";

/// `text` with every string literal (`'…'`, `E'…'`, `$tag$…$tag$`)
/// replaced by [`REDACTED`]. A literal cut off by the text's end (texts
/// are read truncated) is replaced to the end. Parameters (`$1`) and
/// quoted identifiers (`"…"`) stay.
pub fn redact_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // E'…' takes backslash escapes; the E is already in `out`.
            let backslashes = out.ends_with(['E', 'e'])
                && !out[..out.len() - 1].ends_with(|p: char| p.is_alphanumeric() || p == '_');
            i = skip_quoted(&chars, i + 1, backslashes);
            if backslashes {
                out.pop();
            }
            out.push_str(REDACTED);
        } else if c == '"' {
            // A quoted identifier: copied as is ("" is an escaped quote).
            let end = skip_identifier(&chars, i + 1);
            out.extend(&chars[i..end]);
            i = end;
        } else if let Some(tag_len) = dollar_tag(&chars, i) {
            let tag = &chars[i..i + tag_len];
            i = find(&chars, i + tag_len, tag).map_or(chars.len(), |end| end + tag_len);
            out.push_str(REDACTED);
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The index after the literal's closing quote (`''` is a quote inside;
/// with `backslashes`, so is `\'`), or the end.
fn skip_quoted(chars: &[char], mut i: usize, backslashes: bool) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' if backslashes => i += 2,
            '\'' if chars.get(i + 1) == Some(&'\'') => i += 2,
            '\'' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

fn skip_identifier(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '"' if chars.get(i + 1) == Some(&'"') => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// The length of a dollar-quote opening tag at `i` (`$$`, `$body$`), None
/// for anything else (`$1` is a parameter). Like PostgreSQL, a `$` right
/// after an identifier character starts no tag.
fn dollar_tag(chars: &[char], i: usize) -> Option<usize> {
    if chars[i] != '$' || i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i + 1;
    if chars.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    while chars
        .get(j)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        j += 1;
    }
    (chars.get(j) == Some(&'$')).then_some(j + 1 - i)
}

fn find(chars: &[char], from: usize, needle: &[char]) -> Option<usize> {
    (from..=chars.len().saturating_sub(needle.len())).find(|&k| chars[k..].starts_with(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_replaced_and_the_rest_kept() {
        for (text, want) in [
            (
                "ALTER ROLE app PASSWORD 'hunter2'",
                "ALTER ROLE app PASSWORD '***'",
            ),
            (
                "CREATE ROLE x PASSWORD 'it''s'",
                "CREATE ROLE x PASSWORD '***'",
            ),
            (r"SELECT E'a\'b', 'c' FROM t", "SELECT '***', '***' FROM t"),
            ("DO $$ BEGIN PERFORM 'pw'; END $$", "DO '***'"),
            ("DO $body$ x $$ y $body$; SELECT 1", "DO '***'; SELECT 1"),
            (
                "SELECT a FROM t WHERE b = $1 AND c = $2",
                "SELECT a FROM t WHERE b = $1 AND c = $2",
            ),
            (
                r#"SELECT "it's", "a""b" FROM "t'""#,
                r#"SELECT "it's", "a""b" FROM "t'""#,
            ),
            ("SELECT price$ FROM t", "SELECT price$ FROM t"),
            ("SELECT name FROM tree", "SELECT name FROM tree"),
            // Cut off by the 200-character read.
            (
                "ALTER ROLE a PASSWORD 'hunter",
                "ALTER ROLE a PASSWORD '***'",
            ),
            ("DO $$ BEGIN secret", "DO '***'"),
            ("SELECT 'é', 1", "SELECT '***', 1"),
        ] {
            assert_eq!(redact_literals(text), want, "{text}");
        }
    }
}
