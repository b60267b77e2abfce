//! The checks in effect: the built-in set merged with the configured ones.

use super::{app_defaults, defaults, Levels};
use crate::config::{CheckConfig, Config};
use serde::Serialize;

/// Where an effective check comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The built-in set.
    Default,
    /// The `checks` list of the config file.
    Configured,
}

/// A check as it is evaluated: its config (with its parsed selector) and
/// where it came from.
#[derive(Clone, Debug)]
pub struct Check {
    pub config: CheckConfig,
    pub origin: Origin,
}

impl Check {
    pub fn levels(&self) -> Levels {
        Levels {
            direction: self.config.direction,
            warning: self.config.warning,
            critical: self.config.critical,
            hysteresis: self.config.hysteresis,
            for_: self.config.for_.map(|d| d.as_std()).unwrap_or_default(),
            clear_for: self.clear_for(),
        }
    }

    /// How long a level's condition must have stopped before it is left:
    /// `clear_for`, or the check's `for`.
    pub fn clear_for(&self) -> std::time::Duration {
        self.config
            .clear_for
            .or(self.config.for_)
            .map(|d| d.as_std())
            .unwrap_or_default()
    }
}

/// The checks in effect: the defaults (unless `default_checks: false`) with
/// configured checks of the same name in their place, then the other
/// configured checks in file order.
pub fn effective_checks(config: &Config) -> Vec<Check> {
    let configured: Vec<&CheckConfig> = config.checks.iter().map(|c| &c.value).collect();
    let mut list: Vec<(CheckConfig, Origin)> = Vec::new();
    if config.default_checks {
        for d in defaults::default_checks()
            .into_iter()
            .chain(app_defaults::checks(config))
        {
            match configured.iter().find(|c| c.name == d.name) {
                Some(c) => list.push(((*c).clone(), Origin::Configured)),
                None => list.push((d, Origin::Default)),
            }
        }
    }
    for c in configured {
        if !list.iter().any(|(l, _)| l.name == c.name) {
            list.push((c.clone(), Origin::Configured));
        }
    }
    list.into_iter()
        .map(|(config, origin)| Check { config, origin })
        .collect()
}
