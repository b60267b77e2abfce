//! What the checks tell the operator outside the exposition: a warning at
//! load for a check naming a metric vitals does not export, and one log line
//! per state change.

use super::{selector, State};
use crate::config::Config;
use std::fmt;

/// A configured check naming a metric vitals does not export: worth a
/// warning at load, not an error (it may come from a newer version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownMetric {
    pub check: String,
    pub metric: String,
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for UnknownMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: check `{}` names metric `{}`, which vitals does not export; it will stay unknown",
            self.line, self.column, self.check, self.metric
        )
    }
}

/// The configured checks whose metric is not one vitals exports.
pub fn unknown_metrics(config: &Config) -> Vec<UnknownMetric> {
    config
        .checks
        .iter()
        .filter_map(|c| {
            let metric = &c.value.metric.as_ref()?.metric;
            // With an app_metrics source, any other name may be the app's.
            let app_may_have_it =
                !config.sources.app_metrics.is_empty() && !metric.starts_with("vitals_");
            (crate::collectors::describe(metric).is_none() && !app_may_have_it).then(|| {
                UnknownMetric {
                    check: c.value.name.clone(),
                    metric: metric.clone(),
                    line: c.referenced.line(),
                    column: c.referenced.column(),
                }
            })
        })
        .collect()
}

/// One state change, returned by [`super::CheckEngine::evaluate`] for the caller to
/// log as one line.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub check: String,
    /// The instance's labels, sorted by name.
    pub labels: Vec<(String, String)>,
    pub from: State,
    pub to: State,
    pub value: Option<f64>,
    /// Why the new state is unknown, when it is.
    pub reason: Option<String>,
    pub readiness: bool,
    /// The source the instance's series comes from.
    pub source: Option<String>,
    /// Unknown because that source failed its round: the caller logs one
    /// line for the source rather than one per instance.
    pub source_failed: bool,
    /// Not a change of state: the instance was removed, its series gone
    /// for [`super::SERIES_GRACE`] from a source that did not fail.
    pub removed: bool,
}

impl Transition {
    /// `{target="replica"}`, the instance as written in PromQL.
    pub fn instance(&self) -> String {
        format_labels(&self.labels)
    }
}

/// `check=replica_lag instance={target="replica"} warning -> critical value=6.2`
impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.removed {
            write!(
                f,
                "check={} instance={} {} -> removed",
                self.check,
                self.instance(),
                self.from
            )?;
            if let Some(r) = &self.reason {
                write!(f, " reason={}", selector::quote(r))?;
            }
            return Ok(());
        }
        write!(
            f,
            "check={} instance={} {} -> {}",
            self.check,
            self.instance(),
            self.from,
            self.to
        )?;
        if let Some(v) = self.value {
            write!(f, " value={v}")?;
        }
        if let Some(r) = &self.reason {
            write!(f, " reason={}", selector::quote(r))?;
        }
        Ok(())
    }
}

pub(crate) fn format_labels(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", selector::quote(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// What the log says about one evaluation's transitions: a line per change
/// of state that needs a reader (into warning or critical, back to ok from a
/// level), but one line per source for a failed source's instances going
/// unknown and for their coming back, and one line per check for instances
/// removed because their series went away (issue 28: a stopped database
/// made 44 warning lines in one second).
#[derive(Clone, Debug, PartialEq)]
pub enum LogLine {
    /// One instance's change, logged on its own.
    Change(Transition),
    /// The instances of a failed source went unknown (warning).
    SourceFailed {
        source: String,
        instances: usize,
        /// The checks concerned, each once, in order.
        checks: Vec<String>,
        /// Whether one of them is a readiness check.
        readiness: bool,
    },
    /// Instances of `source` (unknown) have values again (info).
    Back { source: String, instances: usize },
    /// Instances of `check` removed, their series gone (info).
    Removed { check: String, instances: usize },
}

/// Groups `transitions` into the lines to log (see [`LogLine`]).
pub fn log_lines(transitions: Vec<Transition>) -> Vec<LogLine> {
    let mut lines: Vec<LogLine> = Vec::new();
    for t in transitions {
        let source = t.source.clone().unwrap_or_default();
        if t.removed {
            match lines.iter_mut().find_map(|l| match l {
                LogLine::Removed { check, instances } if *check == t.check => Some(instances),
                _ => None,
            }) {
                Some(n) => *n += 1,
                None => lines.push(LogLine::Removed {
                    check: t.check,
                    instances: 1,
                }),
            }
        } else if t.source_failed {
            match lines
                .iter_mut()
                .find(|l| matches!(l, LogLine::SourceFailed { source: s, .. } if *s == source))
            {
                Some(LogLine::SourceFailed {
                    instances,
                    checks,
                    readiness,
                    ..
                }) => {
                    *instances += 1;
                    *readiness |= t.readiness;
                    if !checks.contains(&t.check) {
                        checks.push(t.check);
                    }
                }
                _ => lines.push(LogLine::SourceFailed {
                    source,
                    instances: 1,
                    checks: vec![t.check],
                    readiness: t.readiness,
                }),
            }
        } else if t.from == State::Unknown && t.to == State::Ok {
            match lines.iter_mut().find_map(|l| match l {
                LogLine::Back {
                    source: s,
                    instances,
                } if *s == source => Some(instances),
                _ => None,
            }) {
                Some(n) => *n += 1,
                None => lines.push(LogLine::Back {
                    source,
                    instances: 1,
                }),
            }
        } else {
            lines.push(LogLine::Change(t));
        }
    }
    lines
}
