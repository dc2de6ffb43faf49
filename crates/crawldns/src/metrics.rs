//! Counters of what the resolver did, cheap enough to leave on.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, updated with relaxed atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) lookups: AtomicU64,
    pub(crate) udp_sent: AtomicU64,
    pub(crate) tcp_sent: AtomicU64,
    pub(crate) answers: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) truncated: AtomicU64,
    pub(crate) mismatched: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) server_errors: AtomicU64,
    pub(crate) socket_rotations: AtomicU64,
    pub(crate) probes: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Lookups asked of the resolver (wire or not).
    pub lookups: u64,
    /// UDP queries sent.
    pub udp_sent: u64,
    /// TCP queries sent.
    pub tcp_sent: u64,
    /// Usable answers received (NOERROR or NXDOMAIN).
    pub answers: u64,
    /// Attempts after the first one of a question.
    pub retries: u64,
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
}

impl Metrics {
    /// Copies the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            lookups: get(&self.lookups),
            udp_sent: get(&self.udp_sent),
            tcp_sent: get(&self.tcp_sent),
            answers: get(&self.answers),
            retries: get(&self.retries),
            timeouts: get(&self.timeouts),
            truncated: get(&self.truncated),
            mismatched: get(&self.mismatched),
            malformed: get(&self.malformed),
            server_errors: get(&self.server_errors),
            socket_rotations: get(&self.socket_rotations),
            probes: get(&self.probes),
            kernel_drops: 0,
        }
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
