//! The dotted path of every node in a YAML text (`sources.postgres[0].dsn`)
//! and where it starts, read from the YAML parser's own events and spans, so
//! block and flow style (`- {name: a, intervl: 5s}`) name keys alike.
//!
//! An error found while deserialising has a position; [`PathIndex::path_at`]
//! turns it into the key it concerns. An error found afterwards (two targets
//! with one name) has a path; [`PathIndex::position_of`] finds where it is.

use serde_saphyr::granit_parser::{Event, Parser};
use std::fmt::Write as _;

/// A 1-based `(line, column)`, columns counted in characters as
/// serde-saphyr's `Location` does.
pub type Position = (u64, u64);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// One node or mapping key of the document.
#[derive(Clone, Debug)]
struct Entry {
    at: Position,
    path: Vec<Segment>,
    /// A mapping key rather than a value.
    is_key: bool,
}

enum Frame {
    Mapping {
        /// The next node is a key (else the value of `key`).
        expect_key: bool,
        key: Option<String>,
    },
    Sequence {
        next: usize,
    },
}

/// Every key and value of a YAML text with its path, in document order. A
/// text that does not parse is indexed up to the error.
#[derive(Debug, Default)]
pub struct PathIndex {
    entries: Vec<Entry>,
    /// The path open where the parser gave up, for syntax errors.
    open_at_error: Option<Vec<Segment>>,
}

impl PathIndex {
    pub fn new(text: &str) -> PathIndex {
        let mut index = PathIndex::default();
        let mut stack: Vec<(Frame, Vec<Segment>)> = Vec::new();
        let mut parser = Parser::new_from_str(text);
        while let Some(event) = parser.next_event() {
            let (event, span) = match event {
                Ok(e) => e,
                Err(_) => {
                    index.open_at_error = Some(open_path(&stack));
                    break;
                }
            };
            let at = (span.start.line() as u64, span.start.col() as u64 + 1);
            let is_node = matches!(
                event,
                Event::Scalar(..)
                    | Event::SequenceStart(..)
                    | Event::MappingStart(..)
                    | Event::Alias(..)
            );
            if is_node {
                // A key of the enclosing mapping?
                if let Some((Frame::Mapping { expect_key, key }, parent)) = stack.last_mut() {
                    if *expect_key {
                        let name = match &event {
                            Event::Scalar(text, ..) => text.to_string(),
                            _ => "?".to_owned(),
                        };
                        let mut path = parent.clone();
                        path.push(Segment::Key(name.clone()));
                        index.entries.push(Entry {
                            at,
                            path,
                            is_key: true,
                        });
                        *key = Some(name);
                        *expect_key = false;
                        // A complex key (a mapping as key) is not descended.
                        if matches!(event, Event::Scalar(..) | Event::Alias(..)) {
                            continue;
                        }
                    }
                }
                let path = value_path(&stack);
                index.entries.push(Entry {
                    at,
                    path: path.clone(),
                    is_key: false,
                });
                match event {
                    Event::MappingStart(..) => stack.push((
                        Frame::Mapping {
                            expect_key: true,
                            key: None,
                        },
                        path,
                    )),
                    Event::SequenceStart(..) => {
                        stack.push((Frame::Sequence { next: 0 }, path));
                    }
                    _ => value_done(&mut stack),
                }
            } else if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
                stack.pop();
                value_done(&mut stack);
            }
        }
        index
    }

    /// The dotted path of the node at `at`: the outermost one starting
    /// there (a block mapping starts where its first key does), else the
    /// last one starting before it, else where a syntax error left off.
    pub fn path_at(&self, at: Position) -> Option<String> {
        let exact = self
            .entries
            .iter()
            .filter(|e| e.at == at && !e.is_key)
            .min_by_key(|e| e.path.len());
        let found = exact
            .or_else(|| self.entries.iter().rev().find(|e| e.at == at))
            .map(|e| &e.path)
            .or(self
                .open_at_error
                .as_ref()
                .filter(|_| self.entries.last().map_or(true, |e| e.at <= at)))
            .or_else(|| {
                self.entries
                    .iter()
                    .rev()
                    .find(|e| e.at <= at)
                    .map(|e| &e.path)
            })?;
        let text = render(found);
        (!text.is_empty()).then_some(text)
    }

    /// The dotted path of the mapping key `name` written at `at`.
    pub fn key_at(&self, at: Position, name: &str) -> Option<String> {
        self.entries
            .iter()
            .find(|e| {
                e.is_key && e.at == at && e.path.last() == Some(&Segment::Key(name.to_owned()))
            })
            .map(|e| render(&e.path))
    }

    /// Where the value of `path` starts, or the nearest enclosing node that
    /// is written (a key left to its default is not in the text).
    pub fn position_of(&self, path: &str) -> Position {
        let mut wanted = parse(path);
        loop {
            if let Some(e) = self.entries.iter().find(|e| !e.is_key && e.path == wanted) {
                return e.at;
            }
            if wanted.pop().is_none() {
                return (1, 1);
            }
        }
    }
}

fn open_path(stack: &[(Frame, Vec<Segment>)]) -> Vec<Segment> {
    match stack.last() {
        Some((Frame::Mapping { key: Some(k), .. }, parent)) => {
            let mut p = parent.clone();
            p.push(Segment::Key(k.clone()));
            p
        }
        Some((_, parent)) => parent.clone(),
        None => Vec::new(),
    }
}

/// The path of the value about to start inside the innermost container.
fn value_path(stack: &[(Frame, Vec<Segment>)]) -> Vec<Segment> {
    let Some((frame, parent)) = stack.last() else {
        return Vec::new();
    };
    let mut path = parent.clone();
    match frame {
        Frame::Mapping { key, .. } => path.push(Segment::Key(key.clone().unwrap_or_default())),
        Frame::Sequence { next } => path.push(Segment::Index(*next)),
    }
    path
}

/// A value of the innermost container is complete: the next node is a key,
/// or the next item.
fn value_done(stack: &mut [(Frame, Vec<Segment>)]) {
    match stack.last_mut() {
        Some((Frame::Mapping { expect_key, .. }, _)) => *expect_key = true,
        Some((Frame::Sequence { next }, _)) => *next += 1,
        None => {}
    }
}

fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// `a.b[2].c` back into segments (keys never contain `.` or `[` in vitals'
/// schema).
fn parse(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            out.push(Segment::Key(key.to_owned()));
        }
        for index in rest.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str =
        "sources:\n  postgres:\n    - name: a\n      dsn: x\n    - name: b\n      interval: 5s\n";
    const FLOW: &str =
        "sources:\n  postgres:\n    - {name: a, dsn: x}\n    - {name: b, interval: 5s}\n";

    #[test]
    fn block_and_flow_give_the_same_paths() {
        // (text, where the value of `interval` starts, where its key does,
        // where the second item's mapping starts: with its first key in
        // block style, at `{` in flow style)
        for (text, value, key, item) in [
            (BLOCK, (6, 17), (6, 7), (5, 7)),
            (FLOW, (4, 27), (4, 17), (4, 7)),
        ] {
            let index = PathIndex::new(text);
            let interval = Some("sources.postgres[1].interval");
            assert_eq!(index.path_at(value).as_deref(), interval, "{text}");
            assert_eq!(index.key_at(key, "interval").as_deref(), interval, "{text}");
            assert_eq!(index.key_at(key, "other"), None, "{text}");
            assert_eq!(
                index.path_at(item).as_deref(),
                Some("sources.postgres[1]"),
                "{text}"
            );
        }
    }

    #[test]
    fn position_of_a_path_or_its_nearest_written_parent() {
        let block = PathIndex::new(BLOCK);
        assert_eq!(block.position_of("sources.postgres[1].name"), (5, 13));
        assert_eq!(block.position_of("sources.postgres[0].timeout"), (3, 7));
        assert_eq!(block.position_of("nothing.here"), (1, 1));
        let flow = PathIndex::new(FLOW);
        assert_eq!(flow.position_of("sources.postgres[1].name"), (4, 14));
    }

    #[test]
    fn a_syntax_error_leaves_the_open_path() {
        // The scanner reads a flow collection whole before the parser
        // emits its events, so the path is the one enclosing it.
        let index = PathIndex::new("sources:\n  postgres:\n    - {name: a, dsn: [x}\n");
        assert_eq!(index.path_at((3, 26)).as_deref(), Some("sources.postgres"));
        let index = PathIndex::new("sources:\n  host:\n    enabled: true\n    interval: \"5s\n");
        assert_eq!(
            index.path_at((5, 1)).as_deref(),
            Some("sources.host.interval")
        );
    }

    #[test]
    fn path_text_round_trips() {
        for p in ["a", "sources.postgres[1].interval", "a[0][2].b"] {
            assert_eq!(render(&parse(p)), p);
        }
    }
}
