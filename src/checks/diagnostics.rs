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
