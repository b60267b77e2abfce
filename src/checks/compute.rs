//! The pure computations of the derived check kinds, written to give what
//! Prometheus gives on the same samples (Prometheus 2.x `promql/functions.go`
//! and `promql/quantile.go`):
//! - [`rate`]: `rate(v[w])`, counter resets and extrapolation included;
//! - [`bucket_quantile`]: `histogram_quantile(q, …)` over cumulative buckets;
//! - [`least_squares`]: `deriv(v[w])` (the slope) and `predict_linear(v[w], 0)`
//!   (the fitted value now), plus the fit (r²) for the page.

/// One sample of a series: seconds (any epoch) and value.
pub type Point = (f64, f64);

/// Per-second rate of the counter whose samples are `points` (sorted by
/// time) over the range `(end - window, end]`, as Prometheus' `rate`:
/// resets add the value before the drop, and the increase is extrapolated
/// to the range's edges when the samples come close to them (to zero at
/// the start for a counter that was not far from zero). `None` with fewer
/// than two samples in the range.
pub fn rate(points: &[Point], end: f64, window: f64) -> Option<f64> {
    let start = end - window;
    let in_range: Vec<Point> = points
        .iter()
        .copied()
        .filter(|(t, _)| *t > start && *t <= end)
        .collect();
    let (first, last) = (*in_range.first()?, *in_range.last()?);
    if in_range.len() < 2 || window <= 0.0 {
        return None;
    }
    let mut increase = last.1 - first.1;
    for pair in in_range.windows(2) {
        if let [a, b] = pair {
            if b.1 < a.1 {
                increase += a.1;
            }
        }
    }
    let sampled = last.0 - first.0;
    if sampled <= 0.0 {
        return None;
    }
    let average_step = sampled / (in_range.len() - 1) as f64;
    let mut to_start = first.0 - start;
    let to_end = end - last.0;
    if increase > 0.0 && first.1 >= 0.0 {
        // The counter cannot have been below zero: do not extrapolate
        // further back than where it would have been zero.
        let to_zero = sampled * (first.1 / increase);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average_step * 1.1;
    let mut extrapolate_to = sampled;
    extrapolate_to += if to_start < threshold {
        to_start
    } else {
        average_step / 2.0
    };
    extrapolate_to += if to_end < threshold {
        to_end
    } else {
        average_step / 2.0
    };
    Some(increase * (extrapolate_to / sampled) / window)
}

/// The `q`-quantile of a histogram from cumulative `(upper bound, count)`
/// buckets (in any order; `+Inf` must be among them), interpolated linearly
/// within the bucket as `histogram_quantile` does. `None` where Prometheus
/// gives NaN (no `+Inf` bucket, fewer than two buckets, no observations).
pub fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    let mut sorted: Vec<(f64, f64)> = buckets.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    sorted.dedup_by(|b, a| {
        // Two buckets with the same bound: keep one (Prometheus sums them
        // upstream; after `sum by (le)` they cannot repeat).
        if a.0 == b.0 {
            a.1 += b.1;
            true
        } else {
            false
        }
    });
    if sorted.len() < 2 || !matches!(sorted.last(), Some(b) if b.0 == f64::INFINITY) {
        return None;
    }
    // Counts must not decrease (scrape races); Prometheus fixes them up.
    let mut max = f64::NEG_INFINITY;
    for b in &mut sorted {
        if b.1 < max {
            b.1 = max;
        }
        max = b.1;
    }
    let total = sorted.last().map_or(0.0, |b| b.1);
    if total <= 0.0 || total.is_nan() {
        return None;
    }
    let mut rank = q * total;
    let index = sorted
        .iter()
        .position(|b| b.1 >= rank)
        .unwrap_or(sorted.len() - 1);
    if index == sorted.len() - 1 {
        return sorted.get(sorted.len() - 2).map(|b| b.0);
    }
    let (end, mut count) = sorted.get(index).copied()?;
    if index == 0 && end <= 0.0 {
        return Some(end);
    }
    let begin = if index == 0 {
        0.0
    } else {
        let below = sorted.get(index - 1).copied()?;
        count -= below.1;
        rank -= below.1;
        below.0
    };
    Some(begin + (end - begin) * (rank / count))
}

/// A least-squares line through a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// Change per second (`deriv`).
    pub slope: f64,
    /// The line's value at the time asked for (`predict_linear(v[w], 0)`).
    pub value_now: f64,
    /// Coefficient of determination, 0..1: 1 is a straight line (a steady
    /// leak), near 0 a sawtooth or noise around a flat level.
    pub r2: f64,
}

/// Least-squares fit of `points` (time, value) evaluated at `now`. `None`
/// with fewer than two points or all at one time.
pub fn least_squares(points: &[Point], now: f64) -> Option<Fit> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    // Relative to `now`, as Prometheus does, for precision with Unix times.
    let (mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0);
    for (t, v) in points {
        let x = t - now;
        sx += x;
        sy += v;
        sxx += x * x;
        sxy += x * v;
    }
    let cov = sxy - sx * sy / n;
    let var = sxx - sx * sx / n;
    if var <= 0.0 {
        return None;
    }
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    let mean = sy / n;
    let (mut ss_tot, mut ss_res) = (0.0, 0.0);
    for (t, v) in points {
        let fitted = intercept + slope * (t - now);
        ss_tot += (v - mean) * (v - mean);
        ss_res += (v - fitted) * (v - fitted);
    }
    let r2 = if ss_tot > 0.0 {
        (1.0 - ss_res / ss_tot).clamp(0.0, 1.0)
    } else {
        1.0
    };
    Some(Fit {
        slope,
        value_now: intercept,
        r2,
    })
}

/// Seconds until the fitted line reaches `limit`; +∞ when it does not grow
/// (a flat or shrinking series never reaches it); 0 when already there.
pub fn time_until(fit: &Fit, limit: f64) -> f64 {
    if fit.value_now >= limit {
        0.0
    } else if fit.slope <= 0.0 {
        f64::INFINITY
    } else {
        (limit - fit.value_now) / fit.slope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn rate_table() {
        // (points, end, window, want) — expected values worked out from
        // Prometheus' extrapolatedRate.
        let steady: Vec<Point> = (0..=6)
            .map(|i| (10.0 * i as f64, 100.0 + 50.0 * i as f64))
            .collect();
        let cases: &[(&[Point], f64, f64, Option<f64>)] = &[
            // Samples every 10 s, 5/s; range (0, 60]: first at 10, last at 60.
            // Increase 250 over 50 s sampled; start gap 10 < 11 → extend to
            // 60 s: 300 / 60 = 5.
            (&steady, 60.0, 60.0, Some(5.0)),
            // Starting near zero: the extrapolation stops at zero. Samples
            // 5, 55 at t=10, 20 in (0, 30]: increase 50 over 10 s; to zero
            // is 1 s back; end gap 10 < 11 → 10 + 1 + 10 = 21 s → 105 / 30.
            (&[(10.0, 5.0), (20.0, 55.0)], 30.0, 30.0, Some(105.0 / 30.0)),
            // A reset: the drop from 200 to 20 adds the 200 before it.
            (
                &[(0.0, 100.0), (10.0, 200.0), (20.0, 20.0), (30.0, 70.0)],
                30.0,
                30.0,
                // first in range is t=10 (range is (0, 30]): 200, 20, 70:
                // increase 70 - 200 + 200 = 70 over 20 s; start gap 10 <
                // 11; to zero = 20 * 200/70 > 10 → 30 s → 70 * 30/20 / 30.
                Some(70.0 * 30.0 / 20.0 / 30.0),
            ),
            (&[(10.0, 1.0)], 30.0, 30.0, None),
            (&[], 30.0, 30.0, None),
            // Gaps far from the edges: half a step on each side.
            (
                &[(100.0, 5.0), (110.0, 15.0)],
                200.0,
                200.0,
                Some(10.0 * 20.0 / 10.0 / 200.0),
            ),
        ];
        for (points, end, window, want) in cases {
            let got = rate(points, *end, *window);
            match (got, want) {
                (Some(g), Some(w)) => assert!(close(g, *w), "{points:?}: {g} != {w}"),
                _ => assert_eq!(got, *want, "{points:?}"),
            }
        }
    }

    #[test]
    fn bucket_quantile_table() {
        let b = [
            (0.1, 10.0),
            (0.5, 60.0),
            (1.0, 90.0),
            (f64::INFINITY, 100.0),
        ];
        type Case<'a> = (f64, &'a [(f64, f64)], Option<f64>);
        let cases: &[Case<'_>] = &[
            // rank 50 in (0.1, 0.5]: 0.1 + 0.4 * (40 / 50).
            (0.5, &b, Some(0.1 + 0.4 * 40.0 / 50.0)),
            // rank 95 in +Inf: the highest finite bound.
            (0.95, &b, Some(1.0)),
            // rank 5 in the first bucket: from 0.
            (0.05, &b, Some(0.05)),
            (0.9, &b, Some(1.0)),
            (1.5, &b, Some(f64::INFINITY)),
            (-0.1, &b, Some(f64::NEG_INFINITY)),
            // No +Inf bucket, no observations, one bucket.
            (0.5, &[(0.1, 1.0), (0.5, 2.0)], None),
            (0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)], None),
            (0.5, &[(f64::INFINITY, 3.0)], None),
            // Out of order and non-monotonic (a scrape race): fixed up.
            (
                0.5,
                &[(f64::INFINITY, 100.0), (1.0, 90.0), (0.1, 10.0), (0.5, 5.0)],
                // counts 10, 10, 90, 100 → rank 50 in (0.5, 1]: 0.5 + 0.5 * 40/80.
                Some(0.5 + 0.5 * 40.0 / 80.0),
            ),
        ];
        for (q, buckets, want) in cases {
            let got = bucket_quantile(*q, buckets);
            match (got, want) {
                (Some(g), Some(w)) if g.is_finite() => {
                    assert!(close(g, *w), "q={q} {buckets:?}: {g} != {w}")
                }
                _ => assert_eq!(got, *want, "q={q} {buckets:?}"),
            }
        }
    }

    #[test]
    fn least_squares_line_sawtooth_and_flat() {
        // A steady leak of 2 units/s from 1000: exact, r² = 1.
        let line: Vec<Point> = (0..50)
            .map(|i| (i as f64, 1000.0 + 2.0 * i as f64))
            .collect();
        let fit = least_squares(&line, 49.0).unwrap();
        assert!(close(fit.slope, 2.0) && close(fit.value_now, 1098.0) && close(fit.r2, 1.0));
        assert!(close(time_until(&fit, 1198.0), 50.0));
        // A garbage-collector sawtooth: climbs 10/s for 10 s, drops back,
        // five times: slope ~0 and a poor fit, never reaching a limit soon.
        let saw: Vec<Point> = (0..50)
            .map(|i| (i as f64, 500.0 + 10.0 * (i % 10) as f64))
            .collect();
        let fit = least_squares(&saw, 49.0).unwrap();
        assert!(fit.slope.abs() < 0.5, "{fit:?}");
        assert!(fit.r2 < 0.05, "{fit:?}");
        assert!(time_until(&fit, 10_000.0) > 10_000.0);
        // Flat: slope 0, never reaches; one point or one time: no fit.
        let flat: Vec<Point> = (0..5).map(|i| (i as f64, 7.0)).collect();
        let fit = least_squares(&flat, 4.0).unwrap();
        assert_eq!((fit.slope, time_until(&fit, 8.0)), (0.0, f64::INFINITY));
        assert_eq!(time_until(&fit, 7.0), 0.0);
        assert_eq!(least_squares(&[(1.0, 1.0)], 1.0), None);
        assert_eq!(least_squares(&[(1.0, 1.0), (1.0, 2.0)], 1.0), None);
    }
}
