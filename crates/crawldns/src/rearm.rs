//! Re-arming the deadline of a query in flight.
//!
//! A query gets its deadline when it is sent, from its server's timeout at
//! that moment. In a cold burst no answer has measured the server yet, so
//! every query waits the configured timeout (2 s by default); a lost one
//! kept that wait even after the burst's first answers had shown a 30 ms
//! RTT, and its URL paid the whole 2 s. Now such a query looks again at its
//! server's timeout at a few checkpoints (the minimum timeout after the
//! send, then twice, four times that, ...) and takes `sent + timeout now`
//! when that is sooner. A query due before its first checkpoint gets none,
//! so warm traffic (a measured server's timeout is near the minimum) costs
//! nothing more.
//!
//! A deterministic state machine: time comes in as arguments.

use std::time::{Duration, Instant};

/// The deadline of one query, re-armed at checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rearm {
    sent: Instant,
    deadline: Instant,
    /// Time after `sent` of the next checkpoint, when there is one.
    next: Option<Duration>,
}

impl Rearm {
    /// A query sent at `sent`, due by `deadline`; `min_timeout` is the
    /// shortest timeout a server can have, and the first checkpoint.
    pub fn new(sent: Instant, deadline: Instant, min_timeout: Duration) -> Self {
        let mut rearm = Self {
            sent,
            deadline,
            next: None,
        };
        if !min_timeout.is_zero() {
            rearm.next = rearm.before_deadline(min_timeout);
        }
        rearm
    }

    /// When to wake: the next checkpoint, or the deadline.
    pub fn wake_at(&self) -> Instant {
        match self.next {
            Some(after) => (self.sent + after).min(self.deadline),
            None => self.deadline,
        }
    }

    /// Woken at `now`, with the server's timeout as it is now: re-arms the
    /// deadline (only ever sooner) and says whether the query is timed out.
    pub fn expired(&mut self, now: Instant, timeout_now: Duration) -> bool {
        self.deadline = self.deadline.min(self.sent + timeout_now);
        if now >= self.deadline {
            return true;
        }
        while let Some(after) = self.next {
            if self.sent + after > now {
                break;
            }
            self.next = self.before_deadline(after.saturating_mul(2));
        }
        false
    }

    /// `after` as a checkpoint, if it comes before the deadline.
    fn before_deadline(&self, after: Duration) -> Option<Duration> {
        (self.sent + after < self.deadline).then_some(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_cold_query_takes_the_measured_timeout_at_its_next_checkpoint() {
        let t0 = Instant::now();
        // Sent cold: due in 2 s; checkpoints at 250, 500, 1000 ms.
        let mut r = Rearm::new(t0, t0 + 2000 * MS, 250 * MS);
        assert_eq!(r.wake_at(), t0 + 250 * MS);
        // At 250 ms the server is still unmeasured (timeout 2 s): wait on.
        assert!(!r.expired(t0 + 250 * MS, 2000 * MS));
        assert_eq!(r.wake_at(), t0 + 500 * MS);
        // By 500 ms answers measured it: a 250 ms timeout, long past.
        assert!(r.expired(t0 + 500 * MS, 250 * MS));
    }

    #[test]
    fn a_re_armed_deadline_still_in_the_future_is_the_next_wake() {
        let t0 = Instant::now();
        let mut r = Rearm::new(t0, t0 + 2000 * MS, 250 * MS);
        // At 250 ms the server's timeout is 400 ms: due at 400, not 2000.
        assert!(!r.expired(t0 + 250 * MS, 400 * MS));
        assert_eq!(r.wake_at(), t0 + 400 * MS);
        // A later, longer timeout (the server backed off) never extends it.
        assert!(r.expired(t0 + 400 * MS, 2000 * MS));
    }

    #[test]
    fn checkpoints_double_and_stop_at_the_deadline() {
        let t0 = Instant::now();
        let mut r = Rearm::new(t0, t0 + 2000 * MS, 250 * MS);
        let mut wakes = Vec::new();
        loop {
            let at = r.wake_at();
            wakes.push(at.duration_since(t0).as_millis());
            if r.expired(at, 2000 * MS) {
                break;
            }
        }
        assert_eq!(wakes, [250, 500, 1000, 2000]);
    }

    #[test]
    fn a_late_wake_skips_the_checkpoints_it_missed() {
        let t0 = Instant::now();
        let mut r = Rearm::new(t0, t0 + 2000 * MS, 250 * MS);
        // A busy runtime woke it at 1100 ms: the next checkpoint is none
        // (2000 is the deadline), not 500.
        assert!(!r.expired(t0 + 1100 * MS, 2000 * MS));
        assert_eq!(r.wake_at(), t0 + 2000 * MS);
    }

    #[test]
    fn a_warm_query_has_no_checkpoints() {
        let t0 = Instant::now();
        // Sent with the shortest timeout already: the deadline is the wake.
        let r = Rearm::new(t0, t0 + 250 * MS, 250 * MS);
        assert_eq!(r.wake_at(), t0 + 250 * MS);
        let r = Rearm::new(t0, t0 + 2000 * MS, Duration::ZERO);
        assert_eq!(r.wake_at(), t0 + 2000 * MS);
    }
}
