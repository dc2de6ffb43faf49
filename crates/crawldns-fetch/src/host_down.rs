//! Dead hosts fail fast: one [`Breaker`] per origin, driven by the
//! fetcher's connect outcomes, with the clock read here and nowhere in the
//! breaker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::breaker::{Admit, Breaker, BreakerPolicy};
use crate::pool::Origin;

/// Counters of the breakers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostDownStats {
    /// Times an origin was marked down (after K failures, or a failed probe).
    pub marked_down: u64,
    /// Requests failed at once with class `host_down`.
    pub rejected: u64,
    /// Origins down right now (rejecting or probing).
    pub down_now: u64,
}

/// The breakers of every origin that has failed lately.
pub(crate) struct HostsDown {
    policy: BreakerPolicy,
    start: Instant,
    breakers: Mutex<HashMap<Origin, Breaker>>,
    marked_down: AtomicU64,
    rejected: AtomicU64,
}

/// The half-open probe's right to decide; dropped without a verdict it
/// lets the next request probe.
pub(crate) struct Probe<'a> {
    hosts: &'a HostsDown,
    origin: Origin,
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if let Some(breaker) = self.hosts.breakers.lock().get_mut(&self.origin) {
            breaker.on_probe_abandoned();
        }
    }
}

impl HostsDown {
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            start: Instant::now(),
            breakers: Mutex::new(HashMap::new()),
            marked_down: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// `Ok(Some(probe))` for the half-open probe, `Ok(None)` to go, or
    /// `Err(message)` when the origin is down.
    pub fn admit(&self, origin: &Origin) -> Result<Option<Probe<'_>>, String> {
        let now = self.now();
        let mut breakers = self.breakers.lock();
        let Some(breaker) = breakers.get_mut(origin) else {
            return Ok(None);
        };
        match breaker.admit(now) {
            Admit::Go => Ok(None),
            Admit::Probe => Ok(Some(Probe {
                hosts: self,
                origin: origin.clone(),
            })),
            Admit::Reject { until } => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                let wait = until.saturating_sub(now);
                Err(if wait.is_zero() {
                    format!("{origin} is down: a probe request is deciding")
                } else {
                    format!(
                        "{origin} is down after {} connect failures in a row; next probe in {:.1} s",
                        self.policy.threshold,
                        wait.as_secs_f64()
                    )
                })
            }
        }
    }

    /// A connection to `origin` was established.
    pub fn connected(&self, origin: &Origin) {
        let mut breakers = self.breakers.lock();
        if let Some(breaker) = breakers.get_mut(origin) {
            breaker.on_connected();
            breakers.remove(origin);
        }
    }

    /// A connect-level failure for `origin`.
    pub fn failed(&self, origin: &Origin) {
        if self.policy.threshold == 0 {
            return;
        }
        let now = self.now();
        let mut breakers = self.breakers.lock();
        if breakers.len() > 65_536 {
            breakers.retain(|_, b| !b.is_idle());
        }
        let breaker = breakers.entry(origin.clone()).or_default();
        if breaker.on_connect_failure(&self.policy, now) {
            self.marked_down.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> HostDownStats {
        HostDownStats {
            marked_down: self.marked_down.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            down_now: self
                .breakers
                .lock()
                .values()
                .filter(|b| b.is_down())
                .count() as u64,
        }
    }
}
