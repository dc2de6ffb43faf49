//! Request and connection counters, per host and for the whole farm.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::Shared;

/// A snapshot of connection and request counters, for one host or the farm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Requests received (counted when the request head has been read).
    pub requests: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Connections open right now.
    pub open_connections: u64,
    /// The most connections that were open at the same time.
    pub max_concurrent_connections: u64,
}

/// A snapshot of all counters of a farm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FarmStats {
    /// Counters over all hosts. `max_concurrent_connections` is the most
    /// connections open at once across the whole farm.
    pub total: HostStats,
    /// Counters of each host, indexed by host index.
    pub hosts: Vec<HostStats>,
    /// Errors from `accept` (for example running out of file descriptors).
    pub accept_errors: u64,
    /// TLS handshakes completed (always 0 without [`HttpFarmConfig::tls`]).
    pub tls_handshakes: u64,
    /// TLS handshakes that failed, each closing its connection (always 0
    /// without [`HttpFarmConfig::tls`]).
    pub tls_handshake_failures: u64,
}

/// Live counters of one host (or of the whole farm).
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    connections: AtomicU64,
    open: AtomicU64,
    max_open: AtomicU64,
}

impl Counters {
    pub(super) fn open_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let now_open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_open.fetch_max(now_open, Ordering::AcqRel);
    }

    pub(super) fn close_connection(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    pub(super) fn snapshot(&self) -> HostStats {
        HostStats {
            requests: self.requests.load(Ordering::Acquire),
            connections: self.connections.load(Ordering::Acquire),
            open_connections: self.open.load(Ordering::Acquire),
            max_concurrent_connections: self.max_open.load(Ordering::Acquire),
        }
    }
}

/// Counts a connection as open for as long as it lives.
pub(super) struct ConnectionGuard {
    shared: Arc<Shared>,
    host: u32,
}

impl ConnectionGuard {
    pub(super) fn new(shared: Arc<Shared>, host: u32) -> Self {
        if let Some(counters) = shared.host(host) {
            counters.open_connection();
        }
        shared.total.open_connection();
        Self { shared, host }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(counters) = self.shared.host(self.host) {
            counters.close_connection();
        }
        self.shared.total.close_connection();
    }
}
