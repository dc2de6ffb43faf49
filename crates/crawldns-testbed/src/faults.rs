//! Fault injection and delay settings, switchable at run time per server.

use std::collections::HashMap;
use std::time::Duration;

use hickory_proto::rr::RecordType;

/// What a misbehaving server does. Every field is independent; the default is
/// a well-behaved server.
///
/// `drop_fraction`, `rcode`, `malformed` and `down` apply to UDP and TCP;
/// `truncate` and the forgeries (`wrong_id`, `wrong_question`, `wrong_port`)
/// apply to UDP, where they make sense; `close_after` and `stall_after` to the
/// stream transports (TCP, TLS, HTTPS).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Fraction of queries silently dropped, 0.0 ..= 1.0.
    pub drop_fraction: f64,
    /// Answer every query with this rcode (e.g. SERVFAIL or REFUSED) instead.
    pub rcode: Option<RcodeFault>,
    /// Answer every UDP query with TC=1 and no records (TCP answers normally).
    pub truncate: bool,
    /// Answer with bytes that are not a valid DNS message (a matching ID and
    /// QR bit, then a compression loop and junk). No genuine answer follows.
    pub malformed: bool,
    /// Before the genuine answer, send a forged one whose ID is wrong.
    pub wrong_id: bool,
    /// Before the genuine answer, send one (right ID) for a different name.
    pub wrong_question: bool,
    /// Before the genuine answer, send a forged one (right ID and question)
    /// from a different source port of the server's address.
    pub wrong_port: bool,
    /// Receive queries and count them, but never answer.
    pub down: bool,
    /// Stream transports (TCP, TLS, HTTPS): close each connection once it
    /// has carried this many answers (HTTPS: a GOAWAY, then the close).
    /// Queries still pending on it are never answered.
    pub close_after: Option<u32>,
    /// Stream transports: after this many complete answers on a connection,
    /// send only the first half of the next one (HTTPS: half its body) and
    /// stall: that connection sends nothing more.
    pub stall_after: Option<u32>,
}

/// The error rcodes a server can be told to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcodeFault {
    /// SERVFAIL (2).
    ServFail,
    /// REFUSED (5).
    Refused,
}

/// How long the server waits before answering, per record type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delay {
    /// Delay for every query whose type has no entry in `per_type`.
    pub base: Duration,
    /// Overrides for some record types (e.g. a slower AAAA).
    pub per_type: HashMap<RecordType, Duration>,
}

impl Delay {
    /// The same delay for every query.
    pub fn uniform(delay: Duration) -> Self {
        Self {
            base: delay,
            per_type: HashMap::new(),
        }
    }

    /// Sets the delay for one record type.
    pub fn with_type(mut self, rtype: RecordType, delay: Duration) -> Self {
        self.per_type.insert(rtype, delay);
        self
    }

    /// The delay that applies to a query of `rtype`.
    pub fn for_type(&self, rtype: RecordType) -> Duration {
        self.per_type.get(&rtype).copied().unwrap_or(self.base)
    }
}
