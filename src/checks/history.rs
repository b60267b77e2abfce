//! The short, bounded in-memory history the derived check kinds need: per
//! check, per raw series it reads, the recent `(time, value)` points.
//!
//! Bounds (also in the README):
//! - at most [`MAX_POINTS`] points per series, [`POINT_BYTES`] bytes each
//!   (two `f64`), so at most 4 KiB of points per series whatever the window
//!   and the interval: points closer than `window / (MAX_POINTS - 16)` to the
//!   previous one are not kept;
//! - at most [`MAX_SERIES`] series per check; more are ignored (and logged);
//! - points older than the window are dropped at each round, and a series
//!   is dropped as soon as a round of its source succeeds without it.

use super::compute::Point;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// Points kept per series at most.
pub const MAX_POINTS: usize = 256;
/// Bytes of one point: its time and its value.
pub const POINT_BYTES: usize = std::mem::size_of::<Point>();
/// Series kept per check at most.
pub const MAX_SERIES: usize = 10_000;

/// Which series: what the check reads it as (metric, numerator, bucket…)
/// and its labels, sorted.
pub type SeriesKey = (&'static str, Vec<(String, String)>);

#[derive(Clone, Debug)]
pub struct Series {
    points: VecDeque<Point>,
    /// When the series was first seen (for warm-up).
    pub first_seen: f64,
    /// The source it came from, so a failed round does not drop it.
    pub source: String,
    seen: bool,
}

impl Series {
    pub fn points(&self) -> &VecDeque<Point> {
        &self.points
    }
}

/// The series of one check.
#[derive(Clone, Debug)]
pub struct History {
    /// How far back points are needed.
    window: f64,
    /// Minimum gap between two kept points.
    spacing: f64,
    series: HashMap<SeriesKey, Series>,
    warned_full: bool,
}

impl History {
    /// A history keeping `window` seconds of points.
    pub fn new(window: f64) -> Self {
        History {
            window,
            spacing: window / (MAX_POINTS - 16) as f64,
            series: HashMap::new(),
            warned_full: false,
        }
    }

    /// Starts a round: every series is unseen until recorded again.
    pub fn begin(&mut self) {
        for s in self.series.values_mut() {
            s.seen = false;
        }
    }

    /// Records the value of one series at `now`. A point is kept when the
    /// last one is at least the spacing old and either the value changed or
    /// a quarter of the window passed: the checks are evaluated after every
    /// source's round, and an unchanged value seen again is most likely the
    /// same sample, so its repetitions are not new points (a flat series
    /// still gets a few points per window).
    pub fn record(&mut self, key: SeriesKey, source: &str, now: f64, value: f64) {
        if !value.is_finite() {
            return;
        }
        let full = self.series.len() >= MAX_SERIES;
        let series = match self.series.get_mut(&key) {
            Some(s) => s,
            None if full => {
                if !self.warned_full {
                    tracing::warn!(
                        "a derived check reads more than {MAX_SERIES} series; the others are ignored"
                    );
                    self.warned_full = true;
                }
                return;
            }
            None => self.series.entry(key).or_insert_with(|| Series {
                points: VecDeque::new(),
                first_seen: now,
                source: source.to_owned(),
                seen: false,
            }),
        };
        series.seen = true;
        source.clone_into(&mut series.source);
        let keep = match series.points.back() {
            None => true,
            Some(&(t, v)) => {
                let gap = now - t;
                gap >= self.spacing && (v != value || gap >= self.window / 4.0)
            }
        };
        if keep {
            series.points.push_back((now, value));
        }
        let oldest = now - self.window - 4.0 * self.spacing;
        while series.points.len() > MAX_POINTS
            || series.points.front().is_some_and(|(t, _)| *t < oldest)
        {
            series.points.pop_front();
        }
    }

    /// Ends a round: drops the series not recorded whose source did not
    /// fail (the series is gone at the source).
    pub fn end(&mut self, failed: &BTreeSet<&str>) {
        self.series
            .retain(|_, s| s.seen || failed.contains(s.source.as_str()));
    }

    pub fn get(&self, key: &SeriesKey) -> Option<&Series> {
        self.series.get(key)
    }

    /// Every series read as `role`.
    pub fn role<'a>(
        &'a self,
        role: &'static str,
    ) -> impl Iterator<Item = (&'a [(String, String)], &'a Series)> + 'a {
        self.series
            .iter()
            .filter(move |((r, _), _)| *r == role)
            .map(|((_, labels), s)| (labels.as_slice(), s))
    }

    /// Points held in all, for the README's memory figure and the tests.
    pub fn points(&self) -> usize {
        self.series.values().map(|s| s.points.len()).sum()
    }
}

/// Values kept per check instance for the page's sparkline.
pub const RECENT_POINTS: usize = 120;

/// A check instance's recent values: at most [`RECENT_POINTS`], at least
/// 5 s apart (so 10 minutes at the least).
#[derive(Clone, Debug, Default)]
pub struct Recent(VecDeque<Point>);

impl Recent {
    pub fn push(&mut self, now: f64, value: f64) {
        if !value.is_finite() || self.0.back().is_some_and(|(t, _)| now - t < 5.0) {
            return;
        }
        if self.0.len() == RECENT_POINTS {
            self.0.pop_front();
        }
        self.0.push_back((now, value));
    }

    pub fn points(&self) -> Vec<Point> {
        self.0.iter().copied().collect()
    }
}

/// How a check's value reads: from its kind and the metric's base unit.
pub fn unit(c: &crate::config::CheckConfig) -> &'static str {
    let name = c.selector().metric.as_str();
    let base = if name.ends_with("_ratio") {
        "ratio"
    } else if name.ends_with("_seconds") || name.ends_with("_seconds_total") {
        "seconds"
    } else if name.ends_with("_bytes") || name.ends_with("_bytes_total") {
        "bytes"
    } else {
        ""
    };
    if c.ratio.is_some() {
        "ratio"
    } else if c.rate.is_some() {
        if base == "bytes" {
            "bytes_per_second"
        } else {
            "per_second"
        }
    } else if let Some(t) = &c.trend {
        match (&t.limit, base) {
            (Some(_), _) => "seconds",
            (None, "bytes") => "bytes_per_hour",
            (None, _) => "per_hour",
        }
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: &str) -> SeriesKey {
        ("m", vec![("a".into(), v.into())])
    }

    #[test]
    fn bounded_in_points_and_spaced() {
        // A 60 s window: spacing 0.25 s. One value a millisecond for 100 s.
        let mut h = History::new(60.0);
        for i in 0..100_000 {
            h.begin();
            h.record(key("x"), "app/web", i as f64 / 1000.0, i as f64);
            h.end(&BTreeSet::new());
        }
        let s = h.get(&key("x")).unwrap();
        assert!(s.points().len() <= MAX_POINTS, "{}", s.points().len());
        assert!(s.points().len() >= 240, "{}", s.points().len());
        let (first, last) = (s.points()[0].0, s.points().back().unwrap().0);
        assert!(last - first >= 60.0, "{first}..{last}");
        assert_eq!(POINT_BYTES, 16);
    }

    #[test]
    fn unchanged_repeats_are_one_point_and_gone_series_are_dropped() {
        let mut h = History::new(60.0);
        h.begin();
        h.record(key("x"), "app/web", 0.0, 5.0);
        h.record(key("y"), "app/web", 0.0, 5.0);
        h.end(&BTreeSet::new());
        // Another source's round 0.3 s later: same value, not a new point.
        h.begin();
        h.record(key("x"), "app/web", 0.3, 5.0);
        h.record(key("y"), "app/web", 0.3, 6.0);
        h.end(&BTreeSet::new());
        assert_eq!(h.get(&key("x")).unwrap().points().len(), 1);
        assert_eq!(h.get(&key("y")).unwrap().points().len(), 2);
        // y is gone while its source fails: kept; once it succeeds: dropped.
        h.begin();
        h.record(key("x"), "app/web", 1.0, 5.0);
        h.end(&BTreeSet::from(["app/web"]));
        assert!(h.get(&key("y")).is_some());
        h.begin();
        h.record(key("x"), "app/web", 2.0, 5.0);
        h.end(&BTreeSet::new());
        assert!(h.get(&key("y")).is_none());
        assert_eq!(h.role("m").count(), 1);
    }

    #[test]
    fn bounded_in_series() {
        let mut h = History::new(60.0);
        h.begin();
        for i in 0..MAX_SERIES + 5 {
            h.record(key(&i.to_string()), "app/web", 0.0, 1.0);
        }
        assert_eq!(h.role("m").count(), MAX_SERIES);
    }
}
