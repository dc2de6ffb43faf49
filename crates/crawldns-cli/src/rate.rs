//! Rates given on the command line (`--rate`, `--per-host-rate`): a positive
//! number per second, and the interval between two starts it allows.

use std::time::Duration;

/// Parses a rate: a positive, finite number per second (e.g. `2` or `0.5`).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "the rate must be a positive number per second (e.g. 2 or 0.5), not {text:?}"
        )),
    }
}

/// The time between two starts at `rate` per second: at least 1 ns (a
/// rate too high to pace is not paced), at most a day.
pub fn period(rate: f64) -> Duration {
    const DAY: Duration = Duration::from_secs(86_400);
    Duration::try_from_secs_f64(1.0 / rate)
        .unwrap_or(DAY)
        .clamp(Duration::from_nanos(1), DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_must_be_positive() {
        assert_eq!(parse_rate("2"), Ok(2.0));
        assert_eq!(parse_rate(" 0.5 "), Ok(0.5));
        for bad in ["0", "-1", "inf", "NaN", "fast", ""] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_stay_usable_at_the_extremes() {
        assert_eq!(period(4.0), Duration::from_millis(250));
        assert_eq!(period(1e18), Duration::from_nanos(1));
        assert_eq!(period(1e-300), Duration::from_secs(86_400));
        assert_eq!(period(f64::MIN_POSITIVE), Duration::from_secs(86_400));
    }
}
