//! The synthetic zone `crawl.test.`: what the testbed answers, as a pure
//! function from a query to a response (no I/O, no clock).
//!
//! Names served (case-insensitively, question case echoed back):
//!
//! | name                      | answer                                                   |
//! |---------------------------|----------------------------------------------------------|
//! | `h<N>.crawl.test`         | A = [`host_v4`]`(N)`, AAAA per [`AaaaAnswer`]            |
//! | `v4-<N>.crawl.test`       | A as `h<N>`; AAAA is NODATA (an IPv4-only host)          |
//! | `c<N>.crawl.test`         | CNAME → `h<N>.crawl.test` (plus its records)             |
//! | `chain<K>-<N>.crawl.test` | K CNAMEs: `chain<K>-<N>` → … → `chain1-<N>` → `h<N>`     |
//! | `loop.crawl.test`         | CNAME → itself                                           |
//! | `big<N>.crawl.test`       | 100 A / 60 AAAA records: too large for a 1232-byte UDP answer |
//! | `crawl.test` (apex)       | SOA                                                      |
//!
//! `N` must be below the configured host count; anything else in the zone is
//! NXDOMAIN, anything outside it REFUSED. Negative answers carry the zone's
//! SOA in the authority section unless [`ZoneConfig::negative_soa`] is off.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::svcb::{Alpn, IpHint, SvcParamKey, SvcParamValue, SVCB};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, HTTPS, MX, NS, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::hosts::{host_v4, MAX_HOSTS, ZONE};

/// Payload size the server advertises and honours over UDP (DNS flag day 2020).
pub const UDP_PAYLOAD: u16 = 1232;
/// Records in a `big<N>` A answer.
pub const BIG_A_RECORDS: u32 = 100;
/// Records in a `big<N>` AAAA answer.
pub const BIG_AAAA_RECORDS: u32 = 60;
/// Longest `chain<K>-<N>` served.
pub const MAX_CHAIN: u32 = 64;

/// What the AAAA record of a host holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AaaaAnswer {
    /// `::1` for every host: reachable only where something listens on `::1`.
    #[default]
    Loopback,
    /// `::ffff:127.x.y.z`, the IPv4-mapped form of the host's own address:
    /// distinct per host, and reachable through a dual-stack socket.
    MappedV4,
}

/// The zone's shape.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// Hosts `h0 … h<hosts-1>` exist.
    pub hosts: u32,
    /// TTL of positive records, in seconds.
    pub ttl: u32,
    /// SOA MINIMUM (negative-caching TTL, RFC 2308), in seconds.
    pub negative_ttl: u32,
    /// TTL of the SOA record itself, in seconds.
    pub soa_ttl: u32,
    /// Put the SOA in the authority section of negative answers.
    pub negative_soa: bool,
    /// What AAAA records hold.
    pub aaaa: AaaaAnswer,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            hosts: 1000,
            ttl: 300,
            negative_ttl: 60,
            soa_ttl: 3600,
            negative_soa: true,
            aaaa: AaaaAnswer::Loopback,
        }
    }
}

/// What a name in the zone is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Apex,
    Host(u32),
    V4Only(u32),
    Cname(u32),
    Chain { len: u32, host: u32 },
    Loop,
    Big(u32),
}

/// The zone, ready to answer.
#[derive(Debug, Clone)]
pub struct Zone {
    config: ZoneConfig,
    origin: Name,
    soa: Record,
}

impl Zone {
    /// Builds the zone from its configuration.
    pub fn new(mut config: ZoneConfig) -> Self {
        config.hosts = config.hosts.min(MAX_HOSTS);
        let origin = zone_origin();
        let soa = Record::from_rdata(
            origin.clone(),
            config.soa_ttl,
            RData::SOA(SOA::new(
                child(&origin, "ns"),
                child(&origin, "hostmaster"),
                1,
                3600,
                600,
                86400,
                config.negative_ttl,
            )),
        );
        Self {
            config,
            origin,
            soa,
        }
    }

    /// The configuration this zone was built from.
    pub fn config(&self) -> &ZoneConfig {
        &self.config
    }

    /// Answers `request` as an authoritative server would. `udp` selects the
    /// size limit: over UDP an answer larger than the client's EDNS payload
    /// (at most [`UDP_PAYLOAD`], 512 without EDNS) is sent truncated.
    /// Returns the encoded response.
    pub fn respond(&self, request: &Message, udp: bool) -> Vec<u8> {
        let response = self.answer(request);
        let limit = if udp {
            request
                .edns
                .as_ref()
                .map_or(512, |e| e.max_payload().clamp(512, UDP_PAYLOAD))
        } else {
            u16::MAX
        };
        match response.to_vec() {
            Ok(bytes) if bytes.len() <= usize::from(limit) => bytes,
            Ok(_) => truncated(&response),
            Err(_) => {
                let mut fail = header_reply(request);
                fail.metadata.response_code = ResponseCode::ServFail;
                fail.to_vec().unwrap_or_default()
            }
        }
    }

    /// Builds the (untruncated) response message for `request`.
    pub fn answer(&self, request: &Message) -> Message {
        let mut response = header_reply(request);
        let [query] = request.queries.as_slice() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return response;
        };
        if request.metadata.op_code != OpCode::Query || query.query_class() != DNSClass::IN {
            response.metadata.response_code = ResponseCode::NotImp;
            return response;
        }
        let qname = query.name();
        if !self.origin.zone_of(qname) {
            response.metadata.response_code = ResponseCode::Refused;
            response.metadata.authoritative = false;
            return response;
        }
        let Some(node) = self.classify(qname) else {
            response.metadata.response_code = ResponseCode::NXDomain;
            self.add_negative_soa(&mut response);
            return response;
        };
        let qtype = query.query_type();
        let mut owner = qname.clone();
        let mut node = node;
        // Follow in-zone CNAMEs, as an authoritative server does.
        for _ in 0..=MAX_CHAIN {
            let target = match node {
                Node::Cname(n) | Node::Chain { len: 1, host: n } => {
                    Some((child(&self.origin, &format!("h{n}")), Node::Host(n)))
                }
                Node::Chain { len, host } => Some((
                    child(&self.origin, &format!("chain{}-{host}", len - 1)),
                    Node::Chain { len: len - 1, host },
                )),
                Node::Loop => Some((owner.clone(), Node::Loop)),
                _ => None,
            };
            match target {
                Some((target, next)) if qtype != RecordType::CNAME => {
                    let rdata = RData::CNAME(CNAME(target.clone()));
                    response.add_answer(Record::from_rdata(owner, self.config.ttl, rdata));
                    if next == Node::Loop {
                        return response;
                    }
                    owner = target;
                    node = next;
                }
                Some((target, _)) => {
                    let rdata = RData::CNAME(CNAME(target));
                    response.add_answer(Record::from_rdata(owner, self.config.ttl, rdata));
                    return response;
                }
                None => break,
            }
        }
        let records = self.records(node, &owner, qtype);
        if records.is_empty() && response.answers.is_empty() {
            self.add_negative_soa(&mut response);
        }
        response.add_answers(records);
        response
    }

    fn records(&self, node: Node, owner: &Name, qtype: RecordType) -> Vec<Record> {
        let ttl = self.config.ttl;
        let make = |rdata: RData| Record::from_rdata(owner.clone(), ttl, rdata);
        match (node, qtype) {
            (Node::Apex, RecordType::SOA) => vec![self.soa.clone()],
            (Node::Host(n) | Node::V4Only(n), RecordType::A) => host_v4(n)
                .map(|ip| make(RData::A(A(ip))))
                .into_iter()
                .collect(),
            (Node::Host(n), RecordType::AAAA) => {
                let ip = match self.config.aaaa {
                    AaaaAnswer::Loopback => Ipv6Addr::LOCALHOST,
                    AaaaAnswer::MappedV4 => {
                        host_v4(n).map_or(Ipv6Addr::LOCALHOST, |v4| v4.to_ipv6_mapped())
                    }
                };
                vec![make(RData::AAAA(AAAA(ip)))]
            }
            (Node::Big(_), RecordType::A) => (0..BIG_A_RECORDS)
                .filter_map(host_v4)
                .map(|ip| make(RData::A(A(ip))))
                .collect(),
            (Node::Big(_), RecordType::AAAA) => (0..BIG_AAAA_RECORDS)
                .filter_map(host_v4)
                .map(|ip| make(RData::AAAA(AAAA(ip.to_ipv6_mapped()))))
                .collect(),
            // Beyond addresses, so the other record types can be tried
            // offline: a TXT, an MX and an HTTPS record (h2 and
            // http/1.1, the host's address as a hint) for every host.
            (Node::Host(n) | Node::V4Only(n), RecordType::TXT) => vec![make(RData::TXT(TXT::new(
                vec![format!("crawldns testbed host {n}")],
            )))],
            (Node::Host(_) | Node::V4Only(_), RecordType::MX) => {
                vec![make(RData::MX(MX::new(10, child(&zone_origin(), "mail"))))]
            }
            (Node::Host(n) | Node::V4Only(n), RecordType::HTTPS) => {
                let mut params = vec![(
                    SvcParamKey::Alpn,
                    SvcParamValue::Alpn(Alpn(vec!["h2".into(), "http/1.1".into()])),
                )];
                if let Some(ip) = host_v4(n) {
                    params.push((
                        SvcParamKey::Ipv4Hint,
                        SvcParamValue::Ipv4Hint(IpHint(vec![A(ip)])),
                    ));
                }
                vec![make(RData::HTTPS(HTTPS(SVCB::new(
                    1,
                    Name::root(),
                    params,
                ))))]
            }
            (Node::Apex, RecordType::NS) => vec![make(RData::NS(NS(child(&zone_origin(), "ns"))))],
            _ => Vec::new(),
        }
    }

    fn add_negative_soa(&self, response: &mut Message) {
        if self.config.negative_soa {
            response.add_authority(self.soa.clone());
        }
    }

    /// Maps a query name onto a node of the zone, or `None` for NXDOMAIN.
    fn classify(&self, qname: &Name) -> Option<Node> {
        let labels = usize::from(qname.num_labels());
        let origin_labels = usize::from(self.origin.num_labels());
        if labels == origin_labels {
            return Some(Node::Apex);
        }
        if labels != origin_labels + 1 {
            return None;
        }
        let first = qname.iter().next()?;
        let label = std::str::from_utf8(first).ok()?.to_ascii_lowercase();
        let host = |digits: &str| host_like(digits).filter(|n| *n < self.config.hosts);
        if label == "loop" {
            return Some(Node::Loop);
        }
        if let Some(rest) = label.strip_prefix("chain") {
            let (len, n) = rest.split_once('-')?;
            let len = host_like(len)?;
            if len == 0 || len > MAX_CHAIN {
                return None;
            }
            return Some(Node::Chain {
                len,
                host: host(n)?,
            });
        }
        if let Some(rest) = label.strip_prefix("v4-") {
            return host(rest).map(Node::V4Only);
        }
        if let Some(rest) = label.strip_prefix("big") {
            return host(rest).map(Node::Big);
        }
        if let Some(rest) = label.strip_prefix('h') {
            return host(rest).map(Node::Host);
        }
        if let Some(rest) = label.strip_prefix('c') {
            return host(rest).map(Node::Cname);
        }
        None
    }
}

/// Parses a decimal number written the one canonical way (no sign, no
/// leading zero), so that every host has exactly one name.
fn host_like(digits: &str) -> Option<u32> {
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse().ok())
        .flatten()
}

/// The zone's origin, `crawl.test.`.
pub fn zone_origin() -> Name {
    Name::from_ascii(ZONE).unwrap_or_else(|_| Name::root())
}

fn child(origin: &Name, label: &str) -> Name {
    Name::from_ascii(label)
        .and_then(|l| l.append_domain(origin))
        .unwrap_or_else(|_| origin.clone())
}

/// A response skeleton echoing the request's ID, flags and question.
fn header_reply(request: &Message) -> Message {
    let mut response = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.authoritative = true;
    response.add_queries(request.queries.iter().cloned());
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_PAYLOAD);
        response.set_edns(edns);
    }
    response
}

/// The response with its record sections emptied and TC set.
pub fn truncated(response: &Message) -> Vec<u8> {
    let mut short = Message::new(
        response.metadata.id,
        MessageType::Response,
        response.metadata.op_code,
    );
    short.metadata = response.metadata;
    short.metadata.truncation = true;
    short.add_queries(response.queries.iter().cloned());
    short.edns = response.edns.clone();
    short.to_vec().unwrap_or_default()
}

/// An address that no host of the zone has: what forged answers carry.
pub const FORGED_V4: Ipv4Addr = Ipv4Addr::new(127, 255, 0, 66);

/// A forged answer to `query`: the same question answered with [`FORGED_V4`].
pub fn forged_answer(id: u16, query: &Query) -> Vec<u8> {
    let mut forged = Message::new(id, MessageType::Response, OpCode::Query);
    forged.metadata.authoritative = true;
    forged.add_query(query.clone());
    forged.add_answer(Record::from_rdata(
        query.name().clone(),
        86400,
        RData::A(A(FORGED_V4)),
    ));
    forged.to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(zone: &Zone, name: &str, qtype: RecordType) -> Message {
        let mut q = Message::query();
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        zone.answer(&q)
    }

    fn addrs(m: &Message) -> Vec<String> {
        m.answers.iter().map(|r| r.data.to_string()).collect()
    }

    #[test]
    fn hosts_cnames_and_negatives() {
        let zone = Zone::new(ZoneConfig {
            hosts: 10,
            ..Default::default()
        });
        let m = ask(&zone, "H3.Crawl.Test.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addrs(&m), ["127.1.0.4"]);
        assert_eq!(m.answers[0].name.to_ascii(), "H3.Crawl.Test.");
        assert_eq!(
            addrs(&ask(&zone, "h3.crawl.test.", RecordType::AAAA)),
            ["::1"]
        );

        let m = ask(&zone, "c3.crawl.test.", RecordType::A);
        assert_eq!(addrs(&m), ["h3.crawl.test.", "127.1.0.4"]);
        let m = ask(&zone, "chain3-2.crawl.test.", RecordType::A);
        assert_eq!(
            addrs(&m),
            [
                "chain2-2.crawl.test.",
                "chain1-2.crawl.test.",
                "h2.crawl.test.",
                "127.1.0.3"
            ]
        );
        let m = ask(&zone, "loop.crawl.test.", RecordType::A);
        assert_eq!(addrs(&m), ["loop.crawl.test."]);

        let m = ask(&zone, "h10.crawl.test.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.authorities.len(), 1);
        let m = ask(&zone, "h03.crawl.test.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

        let m = ask(&zone, "v4-3.crawl.test.", RecordType::AAAA);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);

        let m = ask(&zone, "example.com.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn negative_soa_can_be_omitted() {
        let zone = Zone::new(ZoneConfig {
            negative_soa: false,
            ..Default::default()
        });
        let m = ask(&zone, "nope.crawl.test.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(m.authorities.is_empty());
    }

    #[test]
    fn big_answers_truncate_over_udp_only() {
        let zone = Zone::new(ZoneConfig::default());
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("big1.crawl.test.").unwrap(),
            RecordType::A,
        ));
        q.set_edns(Edns::new());
        let udp = Message::from_vec(&zone.respond(&q, true)).unwrap();
        assert!(udp.metadata.truncation);
        assert!(udp.answers.is_empty());
        let tcp = Message::from_vec(&zone.respond(&q, false)).unwrap();
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), BIG_A_RECORDS as usize);
    }
}
