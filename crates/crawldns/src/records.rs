//! The plain data of lookups: the record types asked for and the answers
//! returned. Imports nothing of the resolver's mechanisms, so every layer
//! (cache, exchange, the façade) can use it.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::RecordType;

/// The record types a lookup can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// The canonical-name record of the name itself.
    Cname,
}

impl QueryType {
    pub(crate) fn wire(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
            Self::Cname => RecordType::CNAME,
        }
    }

    /// The type's name as written in zone files ("A", "AAAA", "CNAME").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
        }
    }
}

/// The answer to a typed lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The name asked for, normalized (lower-case ASCII, no final dot).
    pub name: String,
    /// The type asked for.
    pub query_type: QueryType,
    /// Addresses, for A and AAAA lookups.
    pub ips: Arc<[IpAddr]>,
    /// The CNAME target, for CNAME lookups.
    pub target: Option<String>,
    /// The CNAME chain followed to reach the records (empty when none).
    pub chain: Vec<String>,
    /// Seconds the answer may still be cached: on a wire answer the
    /// smallest TTL on the way, on a cached one what is left of it.
    pub ttl: u32,
}

/// The addresses of a host, ordered for connection attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupIp {
    /// Addresses in the order to try them (RFC 8305 for [`crate::IpStrategy::Both`]).
    pub addrs: Arc<[IpAddr]>,
    /// Seconds the answer may still be cached.
    pub ttl: u32,
}
