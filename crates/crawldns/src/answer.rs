//! Reading an answer: following the CNAME chain from the question's name,
//! collecting the records of the type asked for, and classifying negative
//! answers (RFC 2308). Records that are not on the chain are ignored.

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::svcb::{SvcParamValue, SVCB};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::records::{RecordData, ServiceBinding, Soa};

/// What an answer says about a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Records of the type asked for, at the end of `chain`.
    Records {
        /// The CNAMEs followed, in order (empty when none).
        chain: Vec<Name>,
        /// Addresses (A/AAAA) or CNAME targets, in answer order.
        data: Vec<RecordValue>,
        /// The smallest TTL on the chain and the records.
        ttl: u32,
    },
    /// The chain ends at `target`, which the answer does not resolve: ask again for it.
    Follow {
        /// The CNAMEs followed so far.
        chain: Vec<Name>,
        /// Where to continue.
        target: Name,
        /// The smallest TTL on the chain.
        ttl: u32,
    },
    /// NXDOMAIN (for the end of the chain).
    NxDomain {
        /// Negative TTL from the SOA, when present (RFC 2308 §5).
        negative_ttl: Option<u32>,
    },
    /// The name exists but has no record of the type.
    NoData {
        /// Negative TTL from the SOA, when present.
        negative_ttl: Option<u32>,
    },
    /// The chain loops or exceeds the depth limit.
    CnameChain,
    /// An error rcode (SERVFAIL, REFUSED, ...): the exchange layer handles these.
    Rcode(ResponseCode),
}

/// One record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    /// An address (A or AAAA).
    Ip(IpAddr),
    /// A CNAME target.
    Name(Name),
    /// The data of another type.
    Data(RecordData),
}

/// Reads `message` as the answer for `qname`/`qtype`, following at most
/// `max_depth` CNAMEs.
pub fn read(message: &Message, qname: &Name, qtype: RecordType, max_depth: usize) -> Reading {
    let rcode = message.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return Reading::Rcode(rcode);
    }
    let mut owner = qname.clone();
    let mut chain: Vec<Name> = Vec::new();
    let mut ttl = u32::MAX;
    loop {
        let mut data = Vec::new();
        let mut records_ttl = u32::MAX;
        for record in message
            .answers
            .iter()
            .filter(|r| r.name == owner && r.record_type() == qtype)
        {
            let value = match (&record.data, qtype) {
                (RData::A(a), RecordType::A) => RecordValue::Ip(IpAddr::V4(a.0)),
                (RData::AAAA(a), RecordType::AAAA) => RecordValue::Ip(IpAddr::V6(a.0)),
                (RData::CNAME(c), RecordType::CNAME) => RecordValue::Name(c.0.clone()),
                (data, _) => match record_data(data) {
                    Some(data) => RecordValue::Data(data),
                    None => continue,
                },
            };
            records_ttl = records_ttl.min(record.ttl);
            data.push(value);
        }
        if !data.is_empty() {
            return Reading::Records {
                chain,
                data,
                ttl: ttl.min(records_ttl),
            };
        }
        let cname = message.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if r.name == owner => Some((c.0.clone(), r.ttl)),
            _ => None,
        });
        let Some((target, cname_ttl)) = cname else {
            break;
        };
        if chain.len() >= max_depth || target == *qname || chain.contains(&target) {
            return Reading::CnameChain;
        }
        ttl = ttl.min(cname_ttl);
        chain.push(target.clone());
        owner = target;
    }
    let negative_ttl = negative_ttl(message);
    if rcode == ResponseCode::NXDomain {
        return Reading::NxDomain { negative_ttl };
    }
    match chain.last() {
        // An authoritative answer that stops at a CNAME target it does not
        // serve carries no SOA for it: the target must be asked separately.
        Some(target) if negative_ttl.is_none() => Reading::Follow {
            target: target.clone(),
            ttl,
            chain,
        },
        _ => Reading::NoData { negative_ttl },
    }
}

/// The typed data of a record of the other types; `None` for a type the
/// resolver does not ask for.
fn record_data(data: &RData) -> Option<RecordData> {
    Some(match data {
        RData::MX(mx) => RecordData::Mx {
            preference: mx.preference,
            exchange: display_name(&mx.exchange),
        },
        RData::TXT(txt) => RecordData::Txt(txt.txt_data.iter().map(|s| s.to_vec()).collect()),
        RData::NS(ns) => RecordData::Ns(display_name(&ns.0)),
        RData::PTR(ptr) => RecordData::Ptr(display_name(&ptr.0)),
        RData::SOA(soa) => RecordData::Soa(Soa {
            mname: display_name(&soa.mname),
            rname: display_name(&soa.rname),
            serial: soa.serial,
            // Signed in hickory, unsigned on the wire (RFC 1035 §3.3.13).
            refresh: soa.refresh as u32,
            retry: soa.retry as u32,
            expire: soa.expire as u32,
            minimum: soa.minimum,
        }),
        RData::SRV(srv) => RecordData::Srv {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: display_name(&srv.target),
        },
        RData::CAA(caa) => RecordData::Caa {
            critical: caa.issuer_critical,
            tag: caa.tag.clone(),
            value: caa.value.clone(),
        },
        RData::HTTPS(https) => RecordData::ServiceBinding(service_binding(&https.0)),
        RData::SVCB(svcb) => RecordData::ServiceBinding(service_binding(svcb)),
        _ => return None,
    })
}

fn service_binding(svcb: &SVCB) -> ServiceBinding {
    let mut binding = ServiceBinding {
        priority: svcb.svc_priority,
        target: display_name(&svcb.target_name),
        ..ServiceBinding::default()
    };
    for (_, value) in &svcb.svc_params {
        match value {
            SvcParamValue::Alpn(alpn) => binding.alpn.clone_from(&alpn.0),
            SvcParamValue::NoDefaultAlpn => binding.no_default_alpn = true,
            SvcParamValue::Port(port) => binding.port = Some(*port),
            SvcParamValue::Ipv4Hint(hint) => {
                binding.ipv4hint = hint.0.iter().map(|a| a.0).collect()
            }
            SvcParamValue::Ipv6Hint(hint) => {
                binding.ipv6hint = hint.0.iter().map(|a| a.0).collect()
            }
            SvcParamValue::EchConfigList(_) => binding.ech = true,
            _ => {}
        }
    }
    binding
}

/// A name as users write it: lower-case, no final dot; the root is ".".
pub(crate) fn display_name(name: &Name) -> String {
    let mut text = name.to_ascii().to_ascii_lowercase();
    if text.len() > 1 && text.ends_with('.') {
        text.pop();
    }
    text
}

/// RFC 2308 §5: the negative TTL is min(SOA TTL, SOA MINIMUM).
fn negative_ttl(message: &Message) -> Option<u32> {
    message.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, CNAME, SOA};
    use hickory_proto::rr::Record;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn msg(rcode: ResponseCode, answers: Vec<Record>, soa: bool) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.add_query(Query::query(n("a.test."), RecordType::A));
        m.add_answers(answers);
        if soa {
            let rdata = SOA::new(n("ns.test."), n("h.test."), 1, 1, 1, 1, 60);
            m.add_authority(Record::from_rdata(n("test."), 300, RData::SOA(rdata)));
        }
        m
    }

    fn a(owner: &str, ip: [u8; 4], ttl: u32) -> Record {
        Record::from_rdata(n(owner), ttl, RData::A(A(ip.into())))
    }

    fn cname(owner: &str, target: &str, ttl: u32) -> Record {
        Record::from_rdata(n(owner), ttl, RData::CNAME(CNAME(n(target))))
    }

    #[test]
    fn follows_chains_and_ignores_strays() {
        let m = msg(
            ResponseCode::NoError,
            vec![
                cname("A.test.", "b.test.", 100),
                a("evil.test.", [127, 0, 0, 66], 999),
                cname("b.test.", "c.test.", 50),
                a("c.test.", [127, 0, 0, 2], 300),
                a("c.test.", [127, 0, 0, 3], 200),
            ],
            false,
        );
        let reading = read(&m, &n("a.test."), RecordType::A, 8);
        assert_eq!(
            reading,
            Reading::Records {
                chain: vec![n("b.test."), n("c.test.")],
                data: vec![
                    RecordValue::Ip([127, 0, 0, 2].into()),
                    RecordValue::Ip([127, 0, 0, 3].into())
                ],
                ttl: 50,
            }
        );
        assert_eq!(
            read(&m, &n("a.test."), RecordType::A, 1),
            Reading::CnameChain
        );
    }

    #[test]
    fn negatives_loops_and_follow() {
        let nx = msg(ResponseCode::NXDomain, vec![], true);
        assert_eq!(
            read(&nx, &n("a.test."), RecordType::A, 8),
            Reading::NxDomain {
                negative_ttl: Some(60)
            }
        );
        let nodata = msg(ResponseCode::NoError, vec![], false);
        assert_eq!(
            read(&nodata, &n("a.test."), RecordType::A, 8),
            Reading::NoData { negative_ttl: None }
        );
        let looped = msg(
            ResponseCode::NoError,
            vec![cname("a.test.", "a.test.", 5)],
            false,
        );
        assert_eq!(
            read(&looped, &n("a.test."), RecordType::A, 8),
            Reading::CnameChain
        );
        let two_loop = msg(
            ResponseCode::NoError,
            vec![
                cname("a.test.", "b.test.", 5),
                cname("b.test.", "a.test.", 5),
            ],
            false,
        );
        assert_eq!(
            read(&two_loop, &n("a.test."), RecordType::A, 8),
            Reading::CnameChain
        );
        let dangling = msg(
            ResponseCode::NoError,
            vec![cname("a.test.", "elsewhere.example.", 30)],
            false,
        );
        assert_eq!(
            read(&dangling, &n("a.test."), RecordType::A, 8),
            Reading::Follow {
                chain: vec![n("elsewhere.example.")],
                target: n("elsewhere.example."),
                ttl: 30
            }
        );
        let servfail = msg(ResponseCode::ServFail, vec![], false);
        assert_eq!(
            read(&servfail, &n("a.test."), RecordType::A, 8),
            Reading::Rcode(ResponseCode::ServFail)
        );
    }
}
