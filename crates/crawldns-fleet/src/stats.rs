//! What a worker reports about itself (in `NS:workers`, for `status`):
//! counters, a recent rate, and its DNS cache's hit ratio.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// A worker's resolver counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsStats {
    /// Lookups asked of the resolver.
    pub lookups: u64,
    /// Lookups answered from its cache.
    pub cache_hits: u64,
    /// Lookups its cache could not answer.
    pub cache_misses: u64,
    /// Queries it sent to its nameservers (the recursive tier), retries
    /// included.
    pub queries: u64,
    /// Of those, retries after a timeout or a failed attempt.
    #[serde(default)]
    pub retries: u64,
}

impl DnsStats {
    /// The share of lookups answered without a query of their own: from
    /// the cache, or by joining a query already in flight (single-flight).
    /// A retry is not a lookup's own query. `None` before the first lookup.
    pub fn hit_ratio(&self) -> Option<f64> {
        let own = self.queries.saturating_sub(self.retries);
        (self.lookups > 0).then(|| self.lookups.saturating_sub(own) as f64 / self.lookups as f64)
    }
}

/// A worker's state and counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// The worker's id.
    pub worker: String,
    /// `running`, `draining` (stopping) or `stopped`.
    pub state: String,
    /// Redis time of the last report, ms.
    pub seen_ms: u64,
    /// Redis time when it started, ms.
    pub started_ms: u64,
    /// URLs completed (result stored, entry acknowledged).
    pub done: u64,
    /// Completed URLs by outcome class (`ok`, `dns`, `connect`, ...).
    pub by_class: BTreeMap<String, u64>,
    /// Entries taken over from other consumers (XAUTOCLAIM).
    pub claimed: u64,
    /// In-flight entries given back when stopping.
    pub requeued: u64,
    /// Fetches given up because a lease was lost.
    pub aborted: u64,
    /// Fetches running now.
    pub in_flight: u64,
    /// Partitions held now.
    pub partitions: Vec<u32>,
    /// URLs completed per second over the last few seconds.
    pub rate: f64,
    /// Failed Redis operations (each retried).
    pub redis_errors: u64,
    /// The resolver's counters.
    pub dns: DnsStats,
}

impl WorkerStats {
    /// Counts a completed URL.
    pub fn count(&mut self, class: &str) {
        self.done += 1;
        *self.by_class.entry(class.to_owned()).or_default() += 1;
    }

    /// Completed URLs of class `ok`.
    pub fn ok(&self) -> u64 {
        self.by_class.get("ok").copied().unwrap_or(0)
    }

    /// The share of completed URLs that cost no DNS query of their own:
    /// what the cache's locality decides. (The lookup-level
    /// [`DnsStats::hit_ratio`] also moves with keep-alive: a URL fetched
    /// over a pooled connection makes no lookup at all, so it counts how
    /// connections overlapped.) `None` before the first URL.
    pub fn url_hit_ratio(&self) -> Option<f64> {
        let own = self.dns.queries.saturating_sub(self.dns.retries);
        (self.done > 0).then(|| self.done.saturating_sub(own) as f64 / self.done as f64)
    }
}

/// A rate over a sliding window, from (time, total) samples.
#[derive(Debug, Clone)]
pub struct RateWindow {
    window_ms: u64,
    samples: VecDeque<(u64, u64)>,
}

impl RateWindow {
    /// A window of `window_ms`.
    pub fn new(window_ms: u64) -> Self {
        Self {
            window_ms: window_ms.max(1),
            samples: VecDeque::new(),
        }
    }

    /// Adds a sample (`total` at `now_ms`) and returns the rate per second
    /// over the window (0 until two samples are apart in time).
    pub fn push(&mut self, now_ms: u64, total: u64) -> f64 {
        self.samples.push_back((now_ms, total));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|&(t, _)| now_ms.saturating_sub(t) >= self.window_ms)
        {
            self.samples.pop_front();
        }
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, n0)), Some(&(t1, n1))) if t1 > t0 => {
                n1.saturating_sub(n0) as f64 * 1000.0 / (t1 - t0) as f64
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_the_window() {
        let mut r = RateWindow::new(10_000);
        assert_eq!(r.push(0, 0), 0.0);
        assert_eq!(r.push(1000, 100), 100.0);
        assert_eq!(r.push(2000, 300), 150.0);
        // Past the window, old samples go: 20 s later at 10/s.
        for s in 3..=22 {
            r.push(s * 1000, 300 + (s - 2) * 10);
        }
        assert_eq!(r.push(23_000, 510), 10.0);
    }

    #[test]
    fn hit_ratio_and_counts() {
        assert_eq!(DnsStats::default().hit_ratio(), None);
        // 400 lookups, 50 on the wire: the rest from the cache or joined.
        let d = DnsStats {
            lookups: 400,
            cache_hits: 91,
            cache_misses: 618,
            queries: 50,
            retries: 0,
        };
        assert_eq!(d.hit_ratio(), Some(0.875));
        // Retries are not lookups' own queries.
        let retried = DnsStats { retries: 10, ..d };
        assert_eq!(retried.hit_ratio(), Some(0.9));
        let all_on_the_wire = DnsStats {
            lookups: 10,
            queries: 12,
            retries: 2,
            ..d
        };
        assert_eq!(all_on_the_wire.hit_ratio(), Some(0.0));
        let mut w = WorkerStats::default();
        assert_eq!(w.url_hit_ratio(), None);
        w.count("ok");
        w.count("ok");
        w.count("dns");
        assert_eq!((w.done, w.ok()), (3, 2));
        // 3 URLs, 2 queries of which 1 a retry: 2 of 3 URLs cost none.
        w.dns = DnsStats {
            queries: 2,
            retries: 1,
            ..d
        };
        assert_eq!(w.url_hit_ratio(), Some(2.0 / 3.0));
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<WorkerStats>(&json).unwrap(), w);
    }
}
