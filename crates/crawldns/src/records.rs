//! The plain data of lookups: the record types asked for and the answers
//! returned. Imports nothing of the resolver's mechanisms, so every layer
//! (cache, exchange, the façade) can use it.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::RecordType;

/// The record types a lookup can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueryType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// The canonical-name record of the name itself.
    Cname,
    /// Mail exchangers.
    Mx,
    /// Text strings.
    Txt,
    /// Name servers of a zone.
    Ns,
    /// The start of authority of a zone.
    Soa,
    /// A pointer, e.g. the name of an address (reverse lookups).
    Ptr,
    /// Service locations (RFC 2782).
    Srv,
    /// Certification authority authorization (RFC 8659).
    Caa,
    /// HTTPS service binding (RFC 9460): ALPN, port, address hints.
    Https,
    /// General service binding (RFC 9460).
    Svcb,
}

impl QueryType {
    /// Every type, in a fixed order.
    pub const ALL: [QueryType; 12] = [
        Self::A,
        Self::Aaaa,
        Self::Cname,
        Self::Mx,
        Self::Txt,
        Self::Ns,
        Self::Soa,
        Self::Ptr,
        Self::Srv,
        Self::Caa,
        Self::Https,
        Self::Svcb,
    ];

    pub(crate) fn wire(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
            Self::Cname => RecordType::CNAME,
            Self::Mx => RecordType::MX,
            Self::Txt => RecordType::TXT,
            Self::Ns => RecordType::NS,
            Self::Soa => RecordType::SOA,
            Self::Ptr => RecordType::PTR,
            Self::Srv => RecordType::SRV,
            Self::Caa => RecordType::CAA,
            Self::Https => RecordType::HTTPS,
            Self::Svcb => RecordType::SVCB,
        }
    }

    /// Position in [`QueryType::ALL`].
    #[inline]
    pub(crate) fn index(self) -> u8 {
        self as u8
    }

    /// The type's name as written in zone files ("A", "AAAA", "MX", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Txt => "TXT",
            Self::Ns => "NS",
            Self::Soa => "SOA",
            Self::Ptr => "PTR",
            Self::Srv => "SRV",
            Self::Caa => "CAA",
            Self::Https => "HTTPS",
            Self::Svcb => "SVCB",
        }
    }

    /// The type named `text` (any case), as [`QueryType::as_str`] writes it.
    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text))
    }
}

/// The data of one record of a type other than A, AAAA and CNAME. Names
/// are written as users write them: lower-case, no final dot (the root is
/// `"."`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordData {
    /// A mail exchanger.
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// The host.
        exchange: String,
    },
    /// The character-strings of one TXT record, as bytes.
    Txt(Vec<Vec<u8>>),
    /// A name server.
    Ns(String),
    /// A pointer target.
    Ptr(String),
    /// A start of authority.
    Soa(Soa),
    /// A service location.
    Srv {
        /// Lower is tried first.
        priority: u16,
        /// Share among equal priorities.
        weight: u16,
        /// The service's port.
        port: u16,
        /// The host.
        target: String,
    },
    /// A CAA property.
    Caa {
        /// The issuer-critical flag.
        critical: bool,
        /// `issue`, `issuewild`, `iodef`, ...
        tag: String,
        /// The value, as bytes.
        value: Vec<u8>,
    },
    /// An HTTPS or SVCB record.
    ServiceBinding(ServiceBinding),
}

/// A start-of-authority record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    /// The primary name server.
    pub mname: String,
    /// The responsible mailbox, as a name.
    pub rname: String,
    /// The zone's serial.
    pub serial: u32,
    /// Seconds between refreshes.
    pub refresh: u32,
    /// Seconds between retries.
    pub retry: u32,
    /// Seconds until the zone expires.
    pub expire: u32,
    /// The negative-caching TTL (RFC 2308).
    pub minimum: u32,
}

/// An HTTPS or SVCB record (RFC 9460): what a crawler learns about how to
/// reach a service before connecting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceBinding {
    /// 0 for alias mode; otherwise lower is preferred.
    pub priority: u16,
    /// The target name (`"."`: the owner itself).
    pub target: String,
    /// Protocols offered (`h2`, `h3`, ...).
    pub alpn: Vec<String>,
    /// The default ALPN (`http/1.1` for HTTPS) is not offered.
    pub no_default_alpn: bool,
    /// The port, when not the default.
    pub port: Option<u16>,
    /// IPv4 addresses to try.
    pub ipv4hint: Vec<std::net::Ipv4Addr>,
    /// IPv6 addresses to try.
    pub ipv6hint: Vec<std::net::Ipv6Addr>,
    /// An ECH configuration is present.
    pub ech: bool,
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
    /// The records, for the other types (empty for A, AAAA and CNAME).
    pub records: Vec<RecordData>,
    /// The CNAME chain followed to reach the records (empty when none).
    pub chain: Vec<String>,
    /// The record's TTL, in seconds: on a wire answer the smallest TTL on
    /// the way, on a cached one what is left of it (0 once the record has
    /// expired while the cache's floor still keeps it; 30 on a stale answer,
    /// RFC 8767).
    pub ttl: u32,
    /// Seconds the resolver's cache keeps this answer still: `ttl` raised
    /// to the cache's floor or lowered to its ceiling. 0 when it is not
    /// cached (no cache, a local or a stale answer).
    pub cache_ttl: u32,
}

impl Lookup {
    /// An answer made without the network (an IP literal, `localhost`, the
    /// hosts file): addresses only, TTL 0, never cached.
    pub(crate) fn local(name: String, query_type: QueryType, ips: Arc<[IpAddr]>) -> Self {
        Self {
            name,
            query_type,
            ips,
            target: None,
            records: Vec::new(),
            chain: Vec::new(),
            ttl: 0,
            cache_ttl: 0,
        }
    }
}

/// The addresses of a host, ordered for connection attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupIp {
    /// Addresses in the order to try them (RFC 8305 for [`crate::IpStrategy::Both`]).
    pub addrs: Arc<[IpAddr]>,
    /// The smallest remaining TTL of the records, in seconds (see
    /// [`Lookup::ttl`]).
    pub ttl: u32,
    /// Seconds the resolver's cache keeps this answer still (see
    /// [`Lookup::cache_ttl`]).
    pub cache_ttl: u32,
    /// No AAAA query was sent because the machine has no IPv6 route
    /// ([`crate::ResolverConfig::ipv6_egress`]); the answer holds IPv4
    /// addresses only.
    pub aaaa_skipped: bool,
}
