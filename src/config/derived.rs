//! The derived check kinds' configuration (`rate`, `ratio`, `quantile`,
//! `trend`); evaluated by `checks::derived`.

use super::Duration;
use serde::Deserialize;

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
    pub metric: String,
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
    pub numerator: String,
    pub denominator: String,
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
    pub histogram: String,
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
    pub metric: String,
    #[serde(default = "thirty_minutes")]
    pub window: Duration,
    /// No value until a series has been seen this long.
    #[serde(default = "ten_minutes")]
    pub warmup: Duration,
    /// A selector of the limit series (same labels as the metric's).
    #[serde(default)]
    pub limit: Option<String>,
}
