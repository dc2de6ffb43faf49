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

/// The answer to a typed lookup: a handle to an answer that the cache and
/// every caller share, so cloning it (or returning it from a cache hit)
/// copies no records, and only its TTLs are its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    answer: Arc<Answer>,
    ttl: u32,
    cache_ttl: u32,
}

/// What a [`Lookup`] shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) name: String,
    pub(crate) query_type: QueryType,
    pub(crate) ips: Arc<[IpAddr]>,
    pub(crate) target: Option<String>,
    pub(crate) records: Vec<RecordData>,
    pub(crate) chain: Vec<String>,
}

impl Answer {
    /// Addresses of `name` only (an A or AAAA answer).
    pub(crate) fn ips(name: String, query_type: QueryType, ips: Arc<[IpAddr]>) -> Self {
        Self {
            name,
            query_type,
            ips,
            target: None,
            records: Vec::new(),
            chain: Vec::new(),
        }
    }
}

impl Lookup {
    /// A typed answer from its parts, for tests and tools that build
    /// answers themselves (the resolver makes its own); `cache_ttl` 0.
    pub fn from_parts(
        name: impl Into<String>,
        query_type: QueryType,
        ips: impl Into<Arc<[IpAddr]>>,
        target: Option<String>,
        records: Vec<RecordData>,
        chain: Vec<String>,
        ttl: u32,
    ) -> Self {
        let answer = Answer {
            name: name.into(),
            query_type,
            ips: ips.into(),
            target,
            records,
            chain,
        };
        Self::new(answer, ttl, 0)
    }

    /// An answer with these TTLs.
    pub(crate) fn new(answer: impl Into<Arc<Answer>>, ttl: u32, cache_ttl: u32) -> Self {
        Self {
            answer: answer.into(),
            ttl,
            cache_ttl,
        }
    }

    /// An answer made without the network (an IP literal, `localhost`, the
    /// hosts file): addresses only, TTL 0, never cached.
    pub(crate) fn local(name: String, query_type: QueryType, ips: Arc<[IpAddr]>) -> Self {
        Self::new(Answer::ips(name, query_type, ips), 0, 0)
    }

    /// The same answer with other TTLs.
    pub(crate) fn with_ttls(self, ttl: u32, cache_ttl: u32) -> Self {
        Self {
            ttl,
            cache_ttl,
            ..self
        }
    }

    /// The name asked for, normalized (lower-case ASCII, no final dot).
    pub fn name(&self) -> &str {
        &self.answer.name
    }

    /// The type asked for.
    pub fn query_type(&self) -> QueryType {
        self.answer.query_type
    }

    /// Addresses, for A and AAAA lookups (empty for the other types).
    pub fn ips(&self) -> &[IpAddr] {
        &self.answer.ips
    }

    /// The addresses as a shared slice: a reference-count increment, for
    /// keeping them beyond the lookup without copying them.
    pub fn shared_ips(&self) -> Arc<[IpAddr]> {
        self.answer.ips.clone()
    }

    /// The CNAME target, for CNAME lookups.
    pub fn target(&self) -> Option<&str> {
        self.answer.target.as_deref()
    }

    /// The records, for the other types (empty for A, AAAA and CNAME).
    pub fn records(&self) -> &[RecordData] {
        &self.answer.records
    }

    /// The CNAME chain followed to reach the records (empty when none).
    pub fn chain(&self) -> &[String] {
        &self.answer.chain
    }

    /// The record's TTL, in seconds: on a wire answer the smallest TTL on
    /// the way, on a cached one what is left of it (0 once the record has
    /// expired while the cache's floor still keeps it; 30 on a stale answer,
    /// RFC 8767).
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// Seconds the resolver's cache keeps this answer still: `ttl` raised
    /// to the cache's floor or lowered to its ceiling. 0 when it is not
    /// cached (no cache, a local or a stale answer).
    pub fn cache_ttl(&self) -> u32 {
        self.cache_ttl
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
