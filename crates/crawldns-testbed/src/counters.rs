//! Counters of what the DNS server saw, readable by tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::rr::RecordType;
use parking_lot::Mutex;

/// The transport a query arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagram.
    Udp,
    /// Stream (2-byte length prefix).
    Tcp,
}

/// Live counters of one server.
#[derive(Debug, Default)]
pub struct Counters {
    per_question: Mutex<HashMap<(String, RecordType, Transport), u64>>,
    udp_queries: AtomicU64,
    tcp_queries: AtomicU64,
    unparsable: AtomicU64,
    dropped: AtomicU64,
    responses: AtomicU64,
    forgeries: AtomicU64,
    tcp_connections: AtomicU64,
}

/// A point-in-time copy of the totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Datagrams received that parsed as queries.
    pub udp_queries: u64,
    /// TCP messages received that parsed as queries.
    pub tcp_queries: u64,
    /// Datagrams or messages that did not parse.
    pub unparsable: u64,
    /// Queries deliberately left unanswered (drop fraction or server down).
    pub dropped: u64,
    /// Responses sent (genuine, error or malformed; not forgeries).
    pub responses: u64,
    /// Forged packets sent (wrong ID, question or port).
    pub forgeries: u64,
    /// TCP connections accepted.
    pub tcp_connections: u64,
}

impl Counters {
    pub(crate) fn query(&self, name: &str, rtype: RecordType, transport: Transport) {
        match transport {
            Transport::Udp => &self.udp_queries,
            Transport::Tcp => &self.tcp_queries,
        }
        .fetch_add(1, Ordering::Relaxed);
        let key = (name.to_ascii_lowercase(), rtype, transport);
        *self.per_question.lock().entry(key).or_default() += 1;
    }

    pub(crate) fn unparsable(&self) {
        self.unparsable.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn response(&self) {
        self.responses.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn forgery(&self) {
        self.forgeries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn tcp_connection(&self) {
        self.tcp_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Queries received for `name` (any case, with or without the final dot)
    /// and `rtype` over `transport`.
    pub fn queries(&self, name: &str, rtype: RecordType, transport: Transport) -> u64 {
        let mut key = name.to_ascii_lowercase();
        if !key.ends_with('.') {
            key.push('.');
        }
        self.per_question
            .lock()
            .get(&(key, rtype, transport))
            .copied()
            .unwrap_or(0)
    }

    /// Queries received for `name` and `rtype` over both transports.
    pub fn queries_any(&self, name: &str, rtype: RecordType) -> u64 {
        self.queries(name, rtype, Transport::Udp) + self.queries(name, rtype, Transport::Tcp)
    }

    /// A copy of the per-question counts: (lower-case name, type, transport) → count.
    pub fn per_question(&self) -> HashMap<(String, RecordType, Transport), u64> {
        self.per_question.lock().clone()
    }

    /// A copy of the totals.
    pub fn totals(&self) -> Totals {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Totals {
            udp_queries: get(&self.udp_queries),
            tcp_queries: get(&self.tcp_queries),
            unparsable: get(&self.unparsable),
            dropped: get(&self.dropped),
            responses: get(&self.responses),
            forgeries: get(&self.forgeries),
            tcp_connections: get(&self.tcp_connections),
        }
    }
}
