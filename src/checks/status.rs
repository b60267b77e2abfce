//! The `/status` view of every check instance.

use super::{CheckEngine, Origin, State};
use crate::config::Direction;
use serde::Serialize;
use std::collections::BTreeMap;

/// One instance, for `/status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceStatus {
    pub check: String,
    pub labels: BTreeMap<String, String>,
    pub state: State,
    pub value: Option<f64>,
    /// When the current state was entered, in seconds since the Unix epoch.
    pub since: f64,
    pub direction: &'static str,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub for_seconds: f64,
    pub readiness: bool,
    /// Why the state is unknown, when it is.
    pub reason: Option<String>,
    pub origin: Origin,
    pub description: Option<String>,
    pub runbook_url: Option<String>,
    /// How the page shows the value: `ratio`, `seconds`, `bytes`,
    /// `per_second`… (not in `/status`, whose values stay raw numbers).
    #[serde(skip)]
    pub unit: &'static str,
    /// Recent `(unix time, value)` pairs, oldest first, for the page.
    #[serde(skip)]
    pub recent: Vec<(f64, f64)>,
}

impl CheckEngine {
    /// Every instance, for `/status`.
    pub fn snapshot(&self) -> Vec<InstanceStatus> {
        let mut list = Vec::new();
        for e in &self.checks {
            let c = &e.check.config;
            for (labels, inst) in &e.instances {
                list.push(InstanceStatus {
                    check: c.name.clone(),
                    labels: labels.iter().cloned().collect(),
                    state: inst.machine.state(),
                    value: inst.machine.value(),
                    since: inst.since_unix,
                    direction: match c.direction {
                        Direction::Above => "above",
                        Direction::Below => "below",
                    },
                    warning: c.warning,
                    critical: c.critical,
                    for_seconds: e.levels.for_.as_secs_f64(),
                    readiness: c.readiness,
                    reason: (inst.machine.state() == State::Unknown)
                        .then(|| inst.reason.as_ref().map(ToString::to_string))
                        .flatten(),
                    origin: e.check.origin,
                    description: c.description.clone(),
                    runbook_url: c.runbook_url.clone(),
                    unit: super::history::unit(c),
                    recent: inst.recent.points(),
                });
            }
        }
        list
    }
}
