//! Opt-in retries, as a pure policy: which outcomes are worth another
//! attempt and how long to wait first (exponential back-off with full
//! jitter, or the server's `Retry-After`). The random draw and the attempt
//! count are inputs, so tests are exact.

use std::time::Duration;

use crate::record::ErrorClass;

/// Retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries at most after the first attempt (0: none, the default).
    pub retries: u32,
    /// The back-off before the first retry; it doubles per retry.
    pub base: Duration,
    /// The longest back-off, and the longest `Retry-After` honoured (a
    /// longer one gives up).
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// No retries; 250 ms doubling up to 30 s when enabled.
    fn default() -> Self {
        Self {
            retries: 0,
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again after this long.
    RetryAfter(Duration),
    /// Keep this outcome.
    GiveUp,
}

/// True for failures that another attempt may not meet: timeouts, a
/// refused or reset connection, a broken exchange, 429 and 5xx
/// overload statuses. Never other 4xx, DNS, TLS, URL, redirect or
/// host-down failures, nor a body over the cap.
pub fn is_transient(class: ErrorClass, message: &str) -> bool {
    match class {
        ErrorClass::Timeout | ErrorClass::Connect => true,
        ErrorClass::Body => !message.contains("byte cap"),
        ErrorClass::HttpStatus(code) => matches!(code, 429 | 502 | 503 | 504),
        _ => false,
    }
}

impl RetryPolicy {
    /// After attempt number `attempt` (1 for the first) failed with
    /// `class`: retry, and when. `retry_after` is the server's
    /// `Retry-After`, `jitter` a uniform draw in `[0, 1)`.
    pub fn decide(
        &self,
        attempt: u32,
        class: ErrorClass,
        message: &str,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Verdict {
        if attempt > self.retries || !is_transient(class, message) {
            return Verdict::GiveUp;
        }
        if let Some(wait) = retry_after {
            return if wait <= self.max {
                Verdict::RetryAfter(wait)
            } else {
                Verdict::GiveUp
            };
        }
        let exp = self
            .base
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.max);
        Verdict::RetryAfter(exp.mul_f64(jitter.clamp(0.0, 1.0)))
    }
}

/// `Retry-After` in delta-seconds (an HTTP date is not honoured: the
/// back-off applies).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// attempt, class, message, Retry-After, jitter, expected verdict.
    type Row = (
        u32,
        ErrorClass,
        &'static str,
        Option<Duration>,
        f64,
        Verdict,
    );

    #[test]
    fn decisions() {
        let policy = RetryPolicy {
            retries: 3,
            base: 100 * MS,
            max: 1000 * MS,
        };
        let timeout = ErrorClass::Timeout;
        let rows: &[Row] = &[
            (1, timeout, "", None, 1.0, Verdict::RetryAfter(100 * MS)),
            (2, timeout, "", None, 1.0, Verdict::RetryAfter(200 * MS)),
            (3, timeout, "", None, 0.5, Verdict::RetryAfter(200 * MS)),
            (4, timeout, "", None, 0.5, Verdict::GiveUp),
            (
                1,
                ErrorClass::Connect,
                "",
                None,
                0.0,
                Verdict::RetryAfter(Duration::ZERO),
            ),
            (
                1,
                ErrorClass::HttpStatus(503),
                "",
                Some(700 * MS),
                0.9,
                Verdict::RetryAfter(700 * MS),
            ),
            (
                1,
                ErrorClass::HttpStatus(429),
                "",
                Some(5000 * MS),
                0.9,
                Verdict::GiveUp,
            ),
            (
                1,
                ErrorClass::HttpStatus(429),
                "",
                None,
                1.0,
                Verdict::RetryAfter(100 * MS),
            ),
            (
                1,
                ErrorClass::HttpStatus(404),
                "",
                None,
                1.0,
                Verdict::GiveUp,
            ),
            (
                1,
                ErrorClass::HttpStatus(403),
                "",
                Some(MS),
                1.0,
                Verdict::GiveUp,
            ),
            (
                1,
                ErrorClass::Body,
                "connection reset",
                None,
                1.0,
                Verdict::RetryAfter(100 * MS),
            ),
            (
                1,
                ErrorClass::Body,
                "body exceeds the 10 byte cap",
                None,
                1.0,
                Verdict::GiveUp,
            ),
            (1, ErrorClass::HostDown, "", None, 1.0, Verdict::GiveUp),
            (1, ErrorClass::Tls, "", None, 1.0, Verdict::GiveUp),
        ];
        for (i, &(attempt, class, message, after, jitter, want)) in rows.iter().enumerate() {
            assert_eq!(
                policy.decide(attempt, class, message, after, jitter),
                want,
                "row {i}"
            );
        }
        // Capped at max however many attempts.
        let many = RetryPolicy {
            retries: 40,
            ..policy
        };
        assert_eq!(
            many.decide(30, timeout, "", None, 1.0),
            Verdict::RetryAfter(1000 * MS)
        );
        // Off by default.
        assert_eq!(
            RetryPolicy::default().decide(1, timeout, "", None, 1.0),
            Verdict::GiveUp
        );
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
