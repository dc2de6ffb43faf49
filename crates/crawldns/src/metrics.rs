//! Counters and the wire-latency histogram, cheap enough to leave on.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::error::ErrorKind;

/// A counter spread over cache lines, so threads hitting the cache at once
/// do not fight over one line. Reading sums the stripes.
#[derive(Debug, Default)]
pub(crate) struct Striped([Padded; STRIPES]);

const STRIPES: usize = 8;

#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

impl Striped {
    pub(crate) fn add(&self) {
        // A const-initialized thread-local has no lazy-init state to check
        // on each access; `STRIPES` (out of range) means "not chosen yet".
        thread_local! {
            static STRIPE: Cell<usize> = const { Cell::new(STRIPES) };
        }
        let mut stripe = STRIPE.get();
        if stripe >= STRIPES {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            stripe = (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % STRIPES;
            STRIPE.set(stripe);
        }
        self.0[stripe].0.fetch_add(1, Ordering::Relaxed);
    }

    fn sum(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
    }
}

/// Live counters, updated with relaxed atomics; latency is recorded once per
/// wire exchange (never on a cache hit).
#[derive(Debug)]
pub struct Metrics {
    /// Lookups asked of the resolver, except those in `fresh_hit_lookups`.
    pub(crate) lookups: Striped,
    /// Lookups asked of the resolver and answered by a fresh cache entry:
    /// each is a lookup and a cache hit, counted with one increment on the
    /// hot path. The snapshot adds it to both.
    pub(crate) fresh_hit_lookups: Striped,
    pub(crate) udp_sent: AtomicU64,
    pub(crate) udp_send_calls: AtomicU64,
    pub(crate) tcp_sent: AtomicU64,
    pub(crate) tls_sent: AtomicU64,
    pub(crate) https_sent: AtomicU64,
    pub(crate) answers: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) late_answers: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) truncated: AtomicU64,
    pub(crate) mismatched: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) server_errors: AtomicU64,
    pub(crate) socket_rotations: AtomicU64,
    pub(crate) probes: AtomicU64,
    /// Fresh hits other than those in `fresh_hit_lookups` (the per-family
    /// lookups of a `lookup_ip` that missed its combined entry).
    pub(crate) cache_hits: Striped,
    pub(crate) cache_misses: AtomicU64,
    pub(crate) stale_served: AtomicU64,
    pub(crate) prefetches: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    /// `lookup_ip` resolutions that left AAAA out for want of an IPv6 route.
    pub(crate) aaaa_skipped: AtomicU64,
    pub(crate) failures: [AtomicU64; ErrorKind::ALL.len()],
    latency_us: Mutex<Histogram<u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            lookups: Striped::default(),
            fresh_hit_lookups: Striped::default(),
            udp_sent: AtomicU64::new(0),
            udp_send_calls: AtomicU64::new(0),
            tcp_sent: AtomicU64::new(0),
            tls_sent: AtomicU64::new(0),
            https_sent: AtomicU64::new(0),
            answers: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            late_answers: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            mismatched: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            socket_rotations: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            cache_hits: Striped::default(),
            cache_misses: AtomicU64::new(0),
            stale_served: AtomicU64::new(0),
            prefetches: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            aaaa_skipped: AtomicU64::new(0),
            failures: Default::default(),
            // 1 µs .. 1 h at 3 significant digits: constant, valid bounds.
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid constant bounds"),
            ),
        }
    }
}

/// A copy of the wire-lookup latency histogram, in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Histogram<u64>);

impl LatencyHistogram {
    /// Lookups recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Lookups that took at most `us` microseconds (to the histogram's
    /// three significant digits).
    pub fn count_at_most(&self, us: u64) -> u64 {
        self.0.count_between(0, us)
    }

    /// The latency at quantile `q` (0 to 1), in microseconds.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        self.0.value_at_quantile(q)
    }

    /// The sum of all latencies recorded, in microseconds.
    pub fn sum_us(&self) -> u64 {
        (self.0.mean() * self.0.len() as f64).round() as u64
    }

    /// Each recorded value (microseconds) with its count, in increasing order.
    pub fn recorded(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
    }
}

/// Percentiles of wire lookups, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Wire lookups recorded.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Slowest.
    pub max_us: u64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Lookups asked of the resolver (cached or not).
    pub lookups: u64,
    /// UDP queries sent.
    pub udp_sent: u64,
    /// System calls that sent them: fewer than `udp_sent` when queries
    /// were batched into GSO sends.
    pub udp_send_calls: u64,
    /// TCP queries sent (to TCP servers, and UDP answers' truncation fallback).
    pub tcp_sent: u64,
    /// DNS-over-TLS queries sent.
    pub tls_sent: u64,
    /// DNS-over-HTTPS queries sent.
    pub https_sent: u64,
    /// TCP, TLS and HTTP/2 connections opened to nameservers.
    pub connections_opened: u64,
    /// Usable answers received (NOERROR or NXDOMAIN).
    pub answers: u64,
    /// Attempts after the first one of a question.
    pub retries: u64,
    /// Questions answered by a query whose attempt had timed out (a slow
    /// name; see `late_answers.rs`).
    pub late_answers: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Truncated UDP answers (each retried over TCP).
    pub truncated: u64,
    /// Datagrams dropped because they matched no outstanding question.
    pub mismatched: u64,
    /// Answers to an outstanding question that did not parse.
    pub malformed: u64,
    /// SERVFAIL, REFUSED and other error rcodes received.
    pub server_errors: u64,
    /// UDP sockets replaced by a fresh one on a new port.
    pub socket_rotations: u64,
    /// Background probes sent to down servers.
    pub probes: u64,
    /// Datagrams the kernel dropped on the resolver's sockets.
    pub kernel_drops: u64,
    /// Lookups answered from the cache (fresh).
    pub cache_hits: u64,
    /// Lookups the cache could not answer.
    pub cache_misses: u64,
    /// Cache entries evicted for room (the cache at `max_entries`).
    pub cache_evictions: u64,
    /// Lookups answered with an expired entry (serve-stale).
    pub stale_served: u64,
    /// Background refreshes started by a hit near expiry.
    pub prefetches: u64,
    /// Lookups that joined a query already in flight instead of sending one.
    pub coalesced: u64,
    /// `lookup_ip` resolutions that sent no AAAA query because the machine
    /// has no IPv6 route ([`crate::ResolverConfig::ipv6_egress`]).
    pub aaaa_skipped: u64,
    /// Failed wire resolutions by error kind, as (kind, count), non-zero only.
    pub failures: Vec<(ErrorKind, u64)>,
    /// Latency of wire exchanges (one question, all its attempts), from the moment it held an in-flight slot.
    pub latency: LatencySummary,
}

impl MetricsSnapshot {
    /// Failures of one kind.
    pub fn failures_of(&self, kind: ErrorKind) -> u64 {
        self.failures
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

impl Metrics {
    /// Copies the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let latency = {
            let h = self.latency_us.lock();
            LatencySummary {
                count: h.len(),
                p50_us: h.value_at_quantile(0.5),
                p90_us: h.value_at_quantile(0.9),
                p99_us: h.value_at_quantile(0.99),
                max_us: h.max(),
            }
        };
        let fresh_hit_lookups = self.fresh_hit_lookups.sum();
        MetricsSnapshot {
            lookups: self.lookups.sum() + fresh_hit_lookups,
            udp_sent: get(&self.udp_sent),
            udp_send_calls: get(&self.udp_send_calls),
            tcp_sent: get(&self.tcp_sent),
            tls_sent: get(&self.tls_sent),
            https_sent: get(&self.https_sent),
            connections_opened: 0,
            answers: get(&self.answers),
            retries: get(&self.retries),
            late_answers: get(&self.late_answers),
            timeouts: get(&self.timeouts),
            truncated: get(&self.truncated),
            mismatched: get(&self.mismatched),
            malformed: get(&self.malformed),
            server_errors: get(&self.server_errors),
            socket_rotations: get(&self.socket_rotations),
            probes: get(&self.probes),
            kernel_drops: 0,
            cache_hits: self.cache_hits.sum() + fresh_hit_lookups,
            cache_misses: get(&self.cache_misses),
            cache_evictions: 0,
            stale_served: get(&self.stale_served),
            prefetches: get(&self.prefetches),
            coalesced: get(&self.coalesced),
            aaaa_skipped: get(&self.aaaa_skipped),
            failures: ErrorKind::ALL
                .iter()
                .zip(&self.failures)
                .map(|(k, c)| (*k, get(c)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            latency,
        }
    }

    /// A copy of the wire-latency histogram (microseconds).
    pub fn latency_histogram(&self) -> LatencyHistogram {
        LatencyHistogram(self.latency_us.lock().clone())
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// One UDP send system call that carried `datagrams` queries.
    pub(crate) fn udp_send(&self, datagrams: u64) {
        self.udp_sent.fetch_add(datagrams, Ordering::Relaxed);
        Self::add(&self.udp_send_calls);
    }

    pub(crate) fn failure(&self, kind: ErrorKind) {
        Self::add(&self.failures[kind.index()]);
    }

    pub(crate) fn record_latency(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency_us.lock().saturating_record(us);
    }
}
