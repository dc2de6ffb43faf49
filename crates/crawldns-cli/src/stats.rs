//! Latency histograms and how the commands print them.
//!
//! Every percentile the CLI prints comes from an [`hdrhistogram`] of
//! microseconds (1 µs to 1 hour, 3 significant digits), never from sorting
//! samples.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest value a latency histogram holds: one hour, in microseconds.
const MAX_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        // Constant, valid bounds: 1 ≤ 2 × 1 ≤ MAX_US and 3 significant digits.
        let histogram = Histogram::new_with_bounds(1, MAX_US, 3)
            .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"));
        Self { histogram }
    }

    /// Records one duration (at least 1 µs; longer than an hour counts as
    /// an hour).
    pub fn record(&mut self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(us.clamp(1, MAX_US));
    }

    /// Records a duration given in milliseconds (as in fetch records).
    pub fn record_ms(&mut self, ms: f64) {
        if ms.is_finite() && ms >= 0.0 {
            self.record(Duration::from_secs_f64(ms / 1e3));
        }
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The value at `quantile` (0 to 1), or `None` when nothing was recorded.
    pub fn quantile(&self, quantile: f64) -> Option<Duration> {
        if self.histogram.is_empty() {
            return None;
        }
        Some(Duration::from_micros(
            self.histogram.value_at_quantile(quantile),
        ))
    }

    /// The largest value recorded, or `None`.
    pub fn max(&self) -> Option<Duration> {
        (!self.histogram.is_empty()).then(|| Duration::from_micros(self.histogram.max()))
    }

    /// The histogram itself (microseconds).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }

    /// The fraction of values at or below each of `points_us`, for a CDF.
    pub fn cdf(&self, points_us: &[u64]) -> Vec<f64> {
        let total = self.histogram.len();
        if total == 0 {
            return vec![0.0; points_us.len()];
        }
        points_us
            .iter()
            .map(|&p| count_at_or_below(&self.histogram, p) as f64 / total as f64)
            .collect()
    }
}

/// Values recorded at or below `bound` (to within the histogram's
/// resolution): the cumulative count of a Prometheus `le` bucket.
pub fn count_at_or_below(histogram: &Histogram<u64>, bound: u64) -> u64 {
    histogram
        .iter_recorded()
        .filter(|v| histogram.lowest_equivalent(v.value_iterated_to()) <= bound)
        .map(|v| v.count_at_value())
        .sum()
}

/// A duration as milliseconds with a precision that suits its size:
/// `0.012 ms`, `3.40 ms`, `41.2 ms`, `1204 ms`.
pub fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `fmt_ms`, or `-` when there is no value.
pub fn fmt_opt_ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), fmt_ms)
}

/// Milliseconds with three decimals, as JSON output carries them.
pub fn json_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut latency = Latency::new();
        assert_eq!(latency.quantile(0.5), None);
        for ms in 1..=100 {
            latency.record(Duration::from_millis(ms));
        }
        assert_eq!(latency.count(), 100);
        let p50 = latency.quantile(0.5).unwrap();
        assert!((49_900..=50_100).contains(&p50.as_micros()), "{p50:?}");
        let p99 = latency.quantile(0.99).unwrap();
        assert!((98_900..=99_100).contains(&p99.as_micros()), "{p99:?}");
        assert_eq!(latency.max().unwrap().as_millis(), 100);
    }

    #[test]
    fn cumulative_counts_and_cdf() {
        let mut latency = Latency::new();
        for us in [500, 1_000, 2_000, 4_000] {
            latency.record(Duration::from_micros(us));
        }
        let h = latency.histogram();
        assert_eq!(count_at_or_below(h, 400), 0);
        assert_eq!(count_at_or_below(h, 1_000), 2);
        assert_eq!(count_at_or_below(h, 3_999), 3);
        assert_eq!(count_at_or_below(h, 10_000), 4);
        assert_eq!(latency.cdf(&[400, 1_000, 10_000]), vec![0.0, 0.5, 1.0]);
    }

    #[test]
    fn milliseconds_are_printed_with_sensible_precision() {
        assert_eq!(fmt_ms(Duration::from_micros(12)), "0.012 ms");
        assert_eq!(fmt_ms(Duration::from_micros(3_400)), "3.40 ms");
        assert_eq!(fmt_ms(Duration::from_micros(41_250)), "41.2 ms");
        assert_eq!(fmt_ms(Duration::from_millis(1_204)), "1204 ms");
        assert_eq!(fmt_opt_ms(None), "-");
        assert_eq!(json_ms(Duration::from_nanos(20_512_345)), 20.512);
    }
}
