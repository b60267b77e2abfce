//! The derived check kinds' configuration (`rate`, `ratio`, `quantile`,
//! `trend`), their selectors parsed while the file is read, and their
//! validation ([`DerivedKind::of`]); evaluated by `checks::derived`.

use super::{CheckConfig, Duration, Selector};
use serde::Deserialize;
use std::sync::OnceLock;

fn one_minute() -> Duration {
    Duration::from_secs(60)
}
fn thirty_minutes() -> Duration {
    Duration::from_secs(1800)
}
fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}

/// `rate: {metric, window, by}`: per-second increase of a counter.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub metric: Selector,
    #[serde(default = "one_minute")]
    pub window: Duration,
    /// Sum the series' rates by these labels; absent: one instance per series.
    #[serde(default)]
    pub by: Option<Vec<String>>,
}

/// `ratio: {numerator, denominator, window, by}`: ratio of the summed rates.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RatioSpec {
    pub numerator: Selector,
    pub denominator: Selector,
    #[serde(default = "one_minute")]
    pub window: Duration,
    /// Instances kept apart by these labels; absent: one sum over all.
    #[serde(default)]
    pub by: Vec<String>,
}

/// `quantile: {histogram, q, window, by}`: from a histogram's bucket rates
/// (or a summary's quantile series).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuantileSpec {
    pub histogram: Selector,
    pub q: f64,
    #[serde(default = "one_minute")]
    pub window: Duration,
    #[serde(default)]
    pub by: Vec<String>,
}

/// `trend: {metric, window, warmup, limit}`: least-squares slope per hour,
/// or with `limit` the seconds until the fitted line reaches the limit.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrendSpec {
    pub metric: Selector,
    #[serde(default = "thirty_minutes")]
    pub window: Duration,
    /// No value until a series has been seen this long.
    #[serde(default = "ten_minutes")]
    pub warmup: Duration,
    /// A selector of the limit series (same labels as the metric's).
    #[serde(default)]
    pub limit: Option<Selector>,
}

/// A derived kind with its windows in seconds.
#[derive(Clone, Debug, PartialEq)]
pub enum DerivedKind {
    Rate {
        metric: Selector,
        window: f64,
        by: Option<Vec<String>>,
    },
    Ratio {
        numerator: Selector,
        denominator: Selector,
        window: f64,
        by: Vec<String>,
    },
    Quantile {
        histogram: Selector,
        q: f64,
        window: f64,
        by: Vec<String>,
    },
    Trend {
        metric: Selector,
        window: f64,
        warmup: f64,
        limit: Option<Selector>,
    },
}

fn positive(seconds: f64, key: &str) -> Result<f64, String> {
    if seconds > 0.0 {
        Ok(seconds)
    } else {
        Err(format!("{key} must be above 0"))
    }
}

impl DerivedKind {
    /// The derived kind a check configures, if any; an error for a check
    /// with none or several of `metric`, `rate`, `ratio`, `quantile`,
    /// `trend`, or with a bad window or quantile.
    pub fn of(c: &CheckConfig) -> Result<Option<DerivedKind>, String> {
        let given = [
            c.metric.is_some(),
            c.rate.is_some(),
            c.ratio.is_some(),
            c.quantile.is_some(),
            c.trend.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            return Err("needs exactly one of metric, rate, ratio, quantile, trend".into());
        }
        if let Some(r) = &c.rate {
            return Ok(Some(DerivedKind::Rate {
                metric: r.metric.clone(),
                window: positive(r.window.as_secs_f64(), "rate.window")?,
                by: r.by.clone(),
            }));
        }
        if let Some(r) = &c.ratio {
            return Ok(Some(DerivedKind::Ratio {
                numerator: r.numerator.clone(),
                denominator: r.denominator.clone(),
                window: positive(r.window.as_secs_f64(), "ratio.window")?,
                by: r.by.clone(),
            }));
        }
        if let Some(q) = &c.quantile {
            if !(0.0..=1.0).contains(&q.q) {
                return Err(format!("quantile.q {} must be between 0 and 1", q.q));
            }
            return Ok(Some(DerivedKind::Quantile {
                histogram: q.histogram.clone(),
                q: q.q,
                window: positive(q.window.as_secs_f64(), "quantile.window")?,
                by: q.by.clone(),
            }));
        }
        if let Some(t) = &c.trend {
            return Ok(Some(DerivedKind::Trend {
                metric: t.metric.clone(),
                window: positive(t.window.as_secs_f64(), "trend.window")?,
                warmup: t.warmup.as_secs_f64(),
                limit: t.limit.clone(),
            }));
        }
        Ok(None)
    }

    /// How far back the history must reach.
    pub fn window(&self) -> f64 {
        match self {
            DerivedKind::Rate { window, .. }
            | DerivedKind::Ratio { window, .. }
            | DerivedKind::Quantile { window, .. }
            | DerivedKind::Trend { window, .. } => *window,
        }
    }
}

/// Validates a check's kind (for `validate`): exactly one of `metric` and
/// the derived kinds, windows above 0, a quantile in [0, 1].
pub fn validate(c: &CheckConfig) -> Result<(), String> {
    DerivedKind::of(c).map(|_| ())
}

impl CheckConfig {
    /// The selector that stands for the check where one selector is
    /// expected (reload identity, rule summaries, units): `metric`, or the
    /// derived kind's main series.
    pub fn selector(&self) -> &Selector {
        if let Some(r) = &self.rate {
            &r.metric
        } else if let Some(r) = &self.ratio {
            &r.denominator
        } else if let Some(q) = &self.quantile {
            &q.histogram
        } else if let Some(t) = &self.trend {
            &t.metric
        } else if let Some(m) = &self.metric {
            m
        } else {
            // Only a check that failed validation has none.
            static NONE: OnceLock<Selector> = OnceLock::new();
            NONE.get_or_init(|| Selector::metric_only(""))
        }
    }

    /// The derived kind, for a valid `rate`/`ratio`/`quantile`/`trend`
    /// check; `None` for a plain one.
    pub fn derived(&self) -> Option<DerivedKind> {
        DerivedKind::of(self).ok().flatten()
    }
}
