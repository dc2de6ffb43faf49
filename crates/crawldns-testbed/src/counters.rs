//! Counters of what the DNS server saw, readable by tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use hickory_proto::rr::RecordType;
use parking_lot::Mutex;

/// The transport a query arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagram.
    Udp,
    /// Stream (2-byte length prefix).
    Tcp,
    /// DNS over TLS (RFC 7858): TCP framing inside TLS.
    Tls,
    /// DNS over HTTPS (RFC 8484) on HTTP/2.
    Https,
}

impl Transport {
    /// Every transport, in a fixed order.
    pub const ALL: [Transport; 4] = [Self::Udp, Self::Tcp, Self::Tls, Self::Https];
}

/// One stream connection the server accepted (TCP, TLS or HTTPS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionStats {
    /// How it arrived.
    pub transport: Transport,
    /// Queries received on it so far.
    pub queries: u64,
    /// Whether it is still open.
    pub open: bool,
    /// Whether its TLS handshake resumed an earlier session (false for TCP).
    pub resumed: bool,
}

/// The live record of one connection, held by the task serving it; the
/// connection counts as closed once this is dropped.
#[derive(Debug)]
pub(crate) struct ConnectionRecord {
    entry: Arc<ConnectionEntry>,
}

#[derive(Debug)]
struct ConnectionEntry {
    transport: Transport,
    queries: AtomicU64,
    open: AtomicBool,
    resumed: AtomicBool,
}

impl ConnectionRecord {
    /// Counts one query received on this connection.
    pub(crate) fn query(&self) {
        self.entry.queries.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks the TLS handshake as resumed.
    pub(crate) fn resumed(&self) {
        self.entry.resumed.store(true, Ordering::Relaxed);
    }
}

impl Drop for ConnectionRecord {
    fn drop(&mut self) {
        self.entry.open.store(false, Ordering::Release);
    }
}

/// Live counters of one server.
#[derive(Debug, Default)]
pub struct Counters {
    per_question: Mutex<HashMap<(String, RecordType, Transport), u64>>,
    udp_queries: AtomicU64,
    tcp_queries: AtomicU64,
    tls_queries: AtomicU64,
    https_queries: AtomicU64,
    unparsable: AtomicU64,
    dropped: AtomicU64,
    responses: AtomicU64,
    forgeries: AtomicU64,
    tcp_connections: AtomicU64,
    connections: Mutex<Vec<Arc<ConnectionEntry>>>,
}

/// A point-in-time copy of the totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Datagrams received that parsed as queries.
    pub udp_queries: u64,
    /// TCP messages received that parsed as queries.
    pub tcp_queries: u64,
    /// DNS-over-TLS messages received that parsed as queries.
    pub tls_queries: u64,
    /// DNS-over-HTTPS requests whose message parsed as a query.
    pub https_queries: u64,
    /// Datagrams or messages that did not parse.
    pub unparsable: u64,
    /// Queries deliberately left unanswered (drop fraction or server down).
    pub dropped: u64,
    /// Responses sent (genuine, error or malformed; not forgeries).
    pub responses: u64,
    /// Forged packets sent (wrong ID, question or port).
    pub forgeries: u64,
    /// Plain TCP connections accepted (TLS and HTTPS are counted apart, see
    /// [`Counters::connections`]).
    pub tcp_connections: u64,
}

impl Counters {
    pub(crate) fn query(&self, name: &str, rtype: RecordType, transport: Transport) {
        match transport {
            Transport::Udp => &self.udp_queries,
            Transport::Tcp => &self.tcp_queries,
            Transport::Tls => &self.tls_queries,
            Transport::Https => &self.https_queries,
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
    /// Counts a response about to be sent: before the send, so that a
    /// client that got it never reads a count without it.
    pub(crate) fn response(&self) {
        self.responses.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes back a [`Counters::response`] whose send failed.
    pub(crate) fn response_not_sent(&self) {
        self.responses.fetch_sub(1, Ordering::Relaxed);
    }
    pub(crate) fn forgery(&self) {
        self.forgeries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn tcp_connection(&self) {
        self.tcp_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a connection accepted over `transport`; it stays open until
    /// the returned record is dropped.
    pub(crate) fn connection(&self, transport: Transport) -> ConnectionRecord {
        if transport == Transport::Tcp {
            self.tcp_connection();
        }
        let entry = Arc::new(ConnectionEntry {
            transport,
            queries: AtomicU64::new(0),
            open: AtomicBool::new(true),
            resumed: AtomicBool::new(false),
        });
        self.connections.lock().push(entry.clone());
        ConnectionRecord { entry }
    }

    /// Every stream connection accepted so far, in order of arrival.
    pub fn connections(&self) -> Vec<ConnectionStats> {
        self.connections
            .lock()
            .iter()
            .map(|e| ConnectionStats {
                transport: e.transport,
                queries: e.queries.load(Ordering::Relaxed),
                open: e.open.load(Ordering::Acquire),
                resumed: e.resumed.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Connections accepted over `transport` so far.
    pub fn connection_count(&self, transport: Transport) -> u64 {
        let lock = self.connections.lock();
        lock.iter().filter(|e| e.transport == transport).count() as u64
    }

    /// Queries received on the connections over `transport`, all together.
    pub fn connection_queries(&self, transport: Transport) -> u64 {
        let lock = self.connections.lock();
        lock.iter()
            .filter(|e| e.transport == transport)
            .map(|e| e.queries.load(Ordering::Relaxed))
            .sum()
    }

    /// Connections over `transport` open right now.
    pub fn open_connections(&self, transport: Transport) -> u64 {
        let lock = self.connections.lock();
        let open = lock
            .iter()
            .filter(|e| e.transport == transport && e.open.load(Ordering::Acquire));
        open.count() as u64
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

    /// Queries received for `name` and `rtype` over every transport.
    pub fn queries_any(&self, name: &str, rtype: RecordType) -> u64 {
        Transport::ALL
            .iter()
            .map(|&t| self.queries(name, rtype, t))
            .sum()
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
            tls_queries: get(&self.tls_queries),
            https_queries: get(&self.https_queries),
            unparsable: get(&self.unparsable),
            dropped: get(&self.dropped),
            responses: get(&self.responses),
            forgeries: get(&self.forgeries),
            tcp_connections: get(&self.tcp_connections),
        }
    }
}
