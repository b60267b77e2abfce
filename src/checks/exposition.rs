//! The `vitals_check_*` families: status, value, thresholds and transitions
//! of every instance.

use super::{CheckEngine, State, RESERVED_LABELS};
use crate::metrics::{Desc, Output};

pub const STATUS: Desc = Desc::gauge(
    "vitals_check_status",
    &["check"],
    "State of each check instance, evaluated by vitals after the sampling rounds: 0 ok, 1 warning, 2 critical, 3 unknown (no data or its source failed).",
);
pub const VALUE: Desc = Desc::gauge(
    "vitals_check_value",
    &["check"],
    "Value of the checked series at the last evaluation, copied from the metric the check names; absent while unknown.",
);
pub const THRESHOLD: Desc = Desc::gauge(
    "vitals_check_threshold",
    &["check", "severity"],
    "Warning or critical level of each check instance, from the check's configuration or the built-in defaults.",
);
pub const TRANSITIONS: Desc = Desc::counter(
    "vitals_check_transitions_total",
    &["check", "to"],
    "State changes of each check instance since vitals started or the instance appeared, by the state entered.",
);

/// Every family the checks export, for `collectors::catalog()`.
pub const METRICS: &[Desc] = &[STATUS, VALUE, THRESHOLD, TRANSITIONS];

impl CheckEngine {
    pub(super) fn output(&self) -> Output {
        let mut out = Output::new();
        for e in &self.checks {
            let name = e.check.config.name.as_str();
            for (labels, inst) in &e.instances {
                let exported = export_labels(labels);
                let mut base: Vec<(&str, &str)> = Vec::with_capacity(exported.len() + 2);
                base.push(("check", name));
                base.extend(exported.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let state = inst.machine.state();
                out.add(&STATUS, &base, state.code());
                if let Some(v) = inst.machine.value() {
                    out.add(&VALUE, &base, v);
                }
                for (severity, level) in [
                    ("warning", e.check.config.warning),
                    ("critical", e.check.config.critical),
                ] {
                    if let Some(level) = level {
                        let mut l = base.clone();
                        l.push(("severity", severity));
                        out.add(&THRESHOLD, &l, level);
                    }
                }
                for to in State::ALL {
                    let mut l = base.clone();
                    l.push(("to", to.as_str()));
                    let count = inst.transitions.get(to as usize).copied().unwrap_or(0);
                    out.add(&TRANSITIONS, &l, count as f64);
                }
            }
        }
        out
    }
}

/// The instance labels as exported next to `check`, `severity` and `to`.
pub(super) fn export_labels(labels: &[(String, String)]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| {
            if !RESERVED_LABELS.contains(&k.as_str()) {
                return (k.clone(), v.clone());
            }
            let mut name = format!("exported_{k}");
            while labels.iter().any(|(other, _)| *other == name) {
                name = format!("exported_{name}");
            }
            (name, v.clone())
        })
        .collect()
}
