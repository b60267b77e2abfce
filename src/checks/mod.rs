//! Checks: warning/critical thresholds evaluated inside the agent.
//!
//! A check names a series selector ([`selector`]); every series that matches
//! it is an *instance* with its own state machine ([`state`]) and keeps the
//! series' labels. [`CheckEngine::evaluate`] is pure: the runtime passes the
//! latest output of every source and the time, and gets back the
//! `vitals_check_*` families and the state changes to log. The built-in
//! checks are in [`defaults`]; [`rules`] prints equivalent Prometheus rules.
//!
//! | file             | what                                                  |
//! |------------------|-------------------------------------------------------|
//! | `effective.rs`   | the checks in effect: defaults merged with the config |
//! | `engine.rs`      | instances per matching series, evaluation, readiness  |
//! | `state.rs`       | one instance's state machine: levels, hysteresis, for |
//! | `diagnostics.rs` | load-time warnings and the transition log lines       |
//! | `status.rs`      | the `/status` view of every instance                  |
//! | `exposition.rs`  | the `vitals_check_*` families                         |
//! | `defaults.rs`    | the built-in checks                                   |
//! | `rules.rs`       | `vitals rules`: the checks as Prometheus alert rules  |
//! | `resolve.rs`     | at load: overrides of built-ins, selectors vs catalog |
//!
//! The selector type and its parser live in `config::selector`: the config
//! parses a check's `metric` while it is read.
//!
//! Label names `check`, `severity` and `to` belong to the `vitals_check_*`
//! families; an instance label with one of those names is exported as
//! `exported_<name>` (Prometheus' own convention for clashing target labels),
//! with more `exported_` prefixes until it is unique. `/status` shows the
//! labels unchanged.

pub mod app_defaults;
pub mod compute;
pub mod defaults;
pub mod derived;
mod diagnostics;
mod effective;
mod engine;
mod exposition;
pub mod history;
pub mod resolve;
pub mod rules;
pub mod state;
mod status;

pub use crate::config::selector;
pub use crate::config::{Selector, SelectorError};
pub use diagnostics::{log_lines, unknown_metrics, LogLine, Transition, UnknownMetric};
pub use effective::{effective_checks, Check, Origin};
pub use engine::CheckEngine;
pub use exposition::{METRICS, STATUS, THRESHOLD, TRANSITIONS, VALUE};
pub use resolve::{app_notes, resolve};
pub use state::{Levels, Machine, State};
pub use status::InstanceStatus;

use crate::metrics::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An instance that has been unknown this long (its source failing, or a
/// derived value missing) is forgotten, so vanished series do not
/// accumulate; a series gone from a healthy source goes sooner, after
/// [`SERIES_GRACE`].
pub const UNKNOWN_RETENTION: Duration = Duration::from_secs(600);

/// How long an instance keeps its state once its series is missing from a
/// source that did not fail, before it is removed (one info line). Longer
/// than the slowest default read (`catalog_interval`, 60 s) so figures read
/// on slower rounds never look gone.
pub const SERIES_GRACE: Duration = Duration::from_secs(150);

/// Label names the `vitals_check_*` families use themselves.
pub const RESERVED_LABELS: [&str; 3] = ["check", "severity", "to"];

/// The time of an evaluation: monotonic for `for` and retention, wall clock
/// for the `since` shown in `/status`.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub instant: Instant,
    /// Seconds since the Unix epoch.
    pub unix: f64,
}

impl Now {
    pub fn system() -> Self {
        Now {
            instant: Instant::now(),
            unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        }
    }

    /// `secs` later, for tests and simulations.
    pub fn after(self, secs: f64) -> Self {
        Now {
            instant: self.instant + Duration::from_secs_f64(secs.max(0.0)),
            unix: self.unix + secs.max(0.0),
        }
    }
}

/// The latest round of one source, as the engine sees it.
#[derive(Clone, Copy, Debug)]
pub struct SourceRound<'a> {
    /// The source id (`cgroup`, `postgres/replica`, `probe/app`).
    pub source: &'a str,
    /// Its latest output.
    pub output: &'a Output,
    /// Whether its latest round failed: its instances are then unknown,
    /// even for series it wrote before failing.
    pub failed: bool,
}

#[cfg(test)]
mod tests;
