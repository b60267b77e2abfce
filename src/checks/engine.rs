//! The engine: one instance per series a check selects, each with its own
//! state machine, evaluated against the latest round of every source.

use super::diagnostics::{format_labels, Transition};
use super::{derived, history};
use super::{effective_checks, Check, Levels, Machine, Now, Origin, SourceRound, State};
use super::{SERIES_GRACE, UNKNOWN_RETENTION};
use crate::config::Config;
use crate::metrics::Output;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Why an instance is unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Reason {
    /// The series was seen before and is gone now.
    NoData,
    /// The source that produced the series failed its latest round.
    SourceFailed(String),
    /// A configured check that no series matches (yet).
    NoSeries,
    /// A derived check has no value yet (warming up, no traffic…).
    Derived(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoData => f.write_str("series gone"),
            Reason::SourceFailed(s) => write!(f, "source {s} failed"),
            Reason::NoSeries => f.write_str("no series matches the selector"),
            Reason::Derived(why) => f.write_str(why),
        }
    }
}

/// Series labels, sorted by name: the key of an instance.
pub(super) type LabelSet = Vec<(String, String)>;

#[derive(Clone, Debug)]
pub(super) struct Instance {
    pub(super) machine: Machine,
    pub(super) since_unix: f64,
    /// The source the series last came from.
    source: Option<String>,
    pub(super) reason: Option<Reason>,
    /// Changes into each state, indexed by `State as usize`.
    pub(super) transitions: [u64; 4],
    /// Stands for a configured check that matches nothing yet.
    placeholder: bool,
    /// Recent values, for the page's sparkline.
    pub(super) recent: history::Recent,
    /// Since when its series has been missing from a source that did not
    /// fail (see [`SERIES_GRACE`]).
    gone_since: Option<std::time::Instant>,
}

impl Instance {
    fn new(now: Now) -> Self {
        Instance {
            machine: Machine::new(now.instant),
            since_unix: now.unix,
            source: None,
            reason: None,
            transitions: [0; 4],
            placeholder: false,
            recent: history::Recent::default(),
            gone_since: None,
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Evaluated {
    pub(super) check: Check,
    pub(super) levels: Levels,
    pub(super) instances: BTreeMap<LabelSet, Instance>,
    /// The kind and history of a `rate`/`ratio`/`quantile`/`trend` check.
    derived: Option<derived::Derived>,
}

/// Every check instance and its state; see the module documentation.
#[derive(Clone, Debug)]
pub struct CheckEngine {
    pub(super) checks: Vec<Evaluated>,
}

impl CheckEngine {
    /// The engine for the checks in effect under `config`.
    pub fn new(config: &Config) -> Self {
        CheckEngine {
            checks: effective_checks(config)
                .into_iter()
                .map(|check| Evaluated {
                    levels: check.levels(),
                    derived: check.config.derived().map(derived::Derived::new),
                    check,
                    instances: BTreeMap::new(),
                })
                .collect(),
        }
    }

    /// Applies a reloaded config, keeping the instances (state, since,
    /// transition counts) of every check whose name and selector did not
    /// change; new levels apply from the next evaluation.
    pub fn reload(&mut self, config: &Config) {
        let mut old: BTreeMap<String, Evaluated> = std::mem::take(&mut self.checks)
            .into_iter()
            .map(|e| (e.check.config.name.clone(), e))
            .collect();
        *self = CheckEngine::new(config);
        for e in &mut self.checks {
            if let Some(prev) = old.remove(&e.check.config.name) {
                let same_kind =
                    prev.derived.as_ref().map(|d| &d.kind) == e.derived.as_ref().map(|d| &d.kind);
                if prev.check.config.selector() == e.check.config.selector() && same_kind {
                    e.instances = prev.instances;
                    e.derived = prev.derived;
                }
            }
        }
    }

    /// The checks in effect.
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().map(|e| &e.check)
    }

    /// Evaluates every check against the latest round of every source.
    /// Returns the `vitals_check_*` families and the state changes.
    pub fn evaluate<'a>(
        &mut self,
        rounds: impl IntoIterator<Item = SourceRound<'a>>,
        now: Now,
    ) -> (Output, Vec<Transition>) {
        let rounds: Vec<SourceRound<'a>> = rounds.into_iter().collect();
        let failed: BTreeSet<&str> = rounds
            .iter()
            .filter(|r| r.failed)
            .map(|r| r.source)
            .collect();
        let mut transitions = Vec::new();
        for e in &mut self.checks {
            e.evaluate(&rounds, &failed, now, &mut transitions);
        }
        (self.output(), transitions)
    }

    /// The readiness checks that are critical now, as `name{labels}`, for
    /// the body of a 503 from `/health/ready`. Empty means ready.
    pub fn failing_readiness(&self) -> Vec<String> {
        let mut failing = Vec::new();
        for e in self.checks.iter().filter(|e| e.check.config.readiness) {
            for (labels, inst) in &e.instances {
                if inst.machine.state() == State::Critical {
                    let name = &e.check.config.name;
                    failing.push(if labels.is_empty() {
                        name.clone()
                    } else {
                        format!("{name}{}", format_labels(labels))
                    });
                }
            }
        }
        failing
    }
}

impl Evaluated {
    fn evaluate(
        &mut self,
        rounds: &[SourceRound<'_>],
        failed: &BTreeSet<&str>,
        now: Now,
        transitions: &mut Vec<Transition>,
    ) {
        // The series this check selects, first source first; or the
        // values a derived check computes from them.
        let mut seen: BTreeMap<LabelSet, derived::Seen> = BTreeMap::new();
        if let Some(d) = &mut self.derived {
            seen = d.evaluate(rounds, failed, now.unix);
        } else {
            let selector = self.check.config.selector();
            for round in rounds {
                let Some(family) = round.output.family(&selector.metric) else {
                    continue;
                };
                for sample in &family.samples {
                    if sample.suffix.is_empty() && selector.matches(&sample.labels) {
                        let mut key = sample.labels.clone();
                        key.sort();
                        seen.entry(key).or_insert_with(|| derived::Seen {
                            value: Some(sample.value),
                            source: round.source.to_owned(),
                            failed: round.failed,
                            why: None,
                        });
                    }
                }
            }
        }

        for (key, s) in &seen {
            let inst = self
                .instances
                .entry(key.clone())
                .or_insert_with(|| Instance::new(now));
            inst.placeholder = false;
            inst.gone_since = None;
            inst.source = Some(s.source.clone());
            let (value, reason) = if s.failed {
                (None, Some(Reason::SourceFailed(s.source.clone())))
            } else if s.value.is_none() {
                (None, s.why.clone().map(Reason::Derived))
            } else {
                (s.value, None)
            };
            observe(
                &self.check,
                &self.levels,
                key,
                inst,
                value,
                reason,
                now,
                transitions,
            );
        }

        let mut removed = Vec::new();
        for (key, inst) in &mut self.instances {
            if seen.contains_key(key) || inst.placeholder {
                continue;
            }
            let reason = match &inst.source {
                Some(s) if failed.contains(s.as_str()) => Reason::SourceFailed(s.clone()),
                _ => Reason::NoData,
            };
            if reason == Reason::NoData && inst.machine.state() != State::Unknown {
                // Figures left out of quiet rounds by design (a statement
                // not called, a cache ratio below its minimum of accesses)
                // and figures read on slower rounds come and go: the
                // instance keeps its state for a grace period, then is
                // removed with one line, never logged as a warning.
                let since = *inst.gone_since.get_or_insert(now.instant);
                if now.instant.saturating_duration_since(since) >= SERIES_GRACE {
                    removed.push(key.clone());
                    transitions.push(Transition {
                        check: self.check.config.name.clone(),
                        labels: key.clone(),
                        from: inst.machine.state(),
                        to: State::Unknown,
                        value: None,
                        reason: Some(format!(
                            "series gone for {}",
                            crate::config::Duration(SERIES_GRACE)
                        )),
                        readiness: self.check.config.readiness,
                        source: inst.source.clone(),
                        source_failed: false,
                        removed: true,
                    });
                }
                continue;
            }
            inst.gone_since = None;
            observe(
                &self.check,
                &self.levels,
                key,
                inst,
                None,
                Some(reason),
                now,
                transitions,
            );
        }

        for key in &removed {
            self.instances.remove(key);
        }
        self.instances.retain(|_, inst| {
            inst.placeholder
                || inst.machine.state() != State::Unknown
                || now.instant.saturating_duration_since(inst.machine.since()) < UNKNOWN_RETENTION
        });

        // A configured check that matches nothing still shows, as unknown.
        let real = self.instances.values().any(|i| !i.placeholder);
        if real || self.check.origin == Origin::Default {
            self.instances.retain(|_, i| !i.placeholder);
        } else if self.instances.is_empty() {
            let mut inst = Instance::new(now);
            inst.placeholder = true;
            inst.reason = Some(Reason::NoSeries);
            self.instances.insert(Vec::new(), inst);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn observe(
    check: &Check,
    levels: &Levels,
    labels: &LabelSet,
    inst: &mut Instance,
    value: Option<f64>,
    reason: Option<Reason>,
    now: Now,
    transitions: &mut Vec<Transition>,
) {
    let change = inst.machine.observe(levels, value, now.instant);
    if let Some(v) = value {
        inst.recent.push(now.unix, v);
    }
    if inst.machine.since() == now.instant {
        inst.since_unix = now.unix;
    }
    if inst.machine.state() == State::Unknown {
        if reason.is_some() {
            inst.reason = reason;
        }
    } else {
        inst.reason = None;
    }
    if let Some(change) = change {
        if let Some(n) = inst.transitions.get_mut(change.to as usize) {
            *n += 1;
        }
        transitions.push(Transition {
            check: check.config.name.clone(),
            labels: labels.clone(),
            from: change.from,
            to: change.to,
            value: inst.machine.value(),
            reason: (change.to == State::Unknown)
                .then(|| inst.reason.as_ref().map(ToString::to_string))
                .flatten(),
            readiness: check.config.readiness,
            source: inst.source.clone(),
            source_failed: change.to == State::Unknown
                && matches!(inst.reason, Some(Reason::SourceFailed(_))),
            removed: false,
        });
    }
}
