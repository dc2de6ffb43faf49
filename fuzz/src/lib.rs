//! The code paths the fuzz targets drive, shared with the ordinary test
//! `crates/crawldns/tests/fuzz_corpus.rs` (which includes this file), so the
//! committed corpus replays through exactly what the fuzzer ran.
//!
//! Only public APIs of `crawldns` are used, and only `crawldns`,
//! `hickory_proto` and `tokio` (all available to crawldns's own tests).
//!
//! Both paths check invariants as well as "no panic": an answer that
//! `wire::judge` accepts really is a response to the question, a reading
//! from `answer::read` is consistent with the question, and what goes into
//! the cache comes back out unchanged, with its TTL inside the configured
//! bounds.

use std::net::IpAddr;
use std::time::Duration;

use crawldns::internals::answer::{self, Reading, RecordValue};
use crawldns::internals::cache::{Cache, Hit, Key, Slot, Value};
use crawldns::internals::wire::{self, Question, Verdict};
use crawldns::{CacheConfig, Error, ErrorKind, Lookup, QueryType, RecordData};
use hickory_proto::op::{Header, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::time::Instant;

/// What one decoded packet said about one question.
#[derive(Debug)]
pub struct Decoded {
    /// The question the packet was judged against.
    pub question: Question,
    /// The record type as the resolver's public API names it.
    pub query_type: QueryType,
    /// The reading, when `judge` accepted the packet.
    pub reading: Option<Reading>,
}

fn query_type_of(selector: u8) -> QueryType {
    match selector & 3 {
        0 => QueryType::A,
        1 => QueryType::Aaaa,
        2 => QueryType::Cname,
        // The other types, chosen by the higher bits.
        _ => QueryType::ALL[3 + usize::from(selector >> 2) % (QueryType::ALL.len() - 3)],
    }
}

fn wire_type(query_type: QueryType) -> RecordType {
    query_type
        .as_str()
        .parse()
        .expect("every query type is a record type hickory knows")
}

/// Whether typed data is of the record type asked for.
fn data_fits(data: &RecordData, rtype: RecordType) -> bool {
    matches!(
        (data, rtype),
        (RecordData::Mx { .. }, RecordType::MX)
            | (RecordData::Txt(_), RecordType::TXT)
            | (RecordData::Ns(_), RecordType::NS)
            | (RecordData::Ptr(_), RecordType::PTR)
            | (RecordData::Soa(_), RecordType::SOA)
            | (RecordData::Srv { .. }, RecordType::SRV)
            | (RecordData::Caa { .. }, RecordType::CAA)
            | (
                RecordData::ServiceBinding(_),
                RecordType::HTTPS | RecordType::SVCB
            )
    )
}

/// The packet's own question, when it has a readable one.
fn own_question(packet: &[u8]) -> Option<Query> {
    let mut decoder = BinDecoder::new(packet);
    Header::read(&mut decoder).ok()?;
    Query::read(&mut decoder).ok()
}

/// Target `answer_decode`: `control` byte, then the datagram.
///
/// Control bits: 0 = exact case (0x20 on); 1-2 = type asked (A, AAAA,
/// CNAME, CNAME); 3 = judge against a fixed question (`h1.crawl.test`)
/// instead of the packet's own one (which makes every readable packet reach
/// the full parser); 4-7 = CNAME depth limit.
pub fn answer_decode(data: &[u8]) -> Option<Decoded> {
    let (&control, packet) = data.split_first()?;
    let exact_case = control & 1 == 1;
    let query_type = query_type_of(control >> 1);
    let rtype = wire_type(query_type);
    let max_depth = usize::from(control >> 4);
    let fixed = || Question::new("h1.crawl.test", rtype, false).ok();
    let question = if control & 8 == 0 {
        match own_question(packet) {
            Some(q) => match Question::for_name(q.name(), rtype, false) {
                Ok(question) => question,
                Err(_) => fixed()?,
            },
            None => fixed()?,
        }
    } else {
        fixed()?
    };

    let _ = wire::peek_id(packet);
    let reading = match wire::judge(packet, &question, exact_case) {
        Verdict::Answer(message) => {
            assert_eq!(message.metadata.message_type, MessageType::Response);
            assert_eq!(
                message.queries.len(),
                1,
                "judge accepted a packet without one question"
            );
            let echoed = message.queries[0].name();
            let sent = question.name();
            if exact_case {
                assert!(echoed.eq_case(&sent), "{echoed} vs {sent}");
            } else {
                assert_eq!(echoed, &sent);
            }
            assert_eq!(message.queries[0].query_type(), rtype);
            // As the resolver does: read from the echoed name.
            let reading = answer::read(&message, echoed, rtype, max_depth);
            check_reading(&reading, &sent, rtype, max_depth);
            Some(reading)
        }
        Verdict::Malformed | Verdict::Mismatch => None,
    };
    Some(Decoded {
        question,
        query_type,
        reading,
    })
}

/// What `answer::read` promises about its result.
fn check_reading(reading: &Reading, qname: &Name, rtype: RecordType, max_depth: usize) {
    match reading {
        Reading::Records { chain, data, .. } => {
            assert!(!data.is_empty(), "Records without data");
            assert!(
                chain.len() <= max_depth,
                "chain {} > {max_depth}",
                chain.len()
            );
            assert!(!chain.contains(qname), "chain loops back to the question");
            for value in data {
                match (value, rtype) {
                    (RecordValue::Ip(IpAddr::V4(_)), RecordType::A)
                    | (RecordValue::Ip(IpAddr::V6(_)), RecordType::AAAA)
                    | (RecordValue::Name(_), RecordType::CNAME) => {}
                    (RecordValue::Data(data), _) if data_fits(data, rtype) => {}
                    other => panic!("record of the wrong kind for {rtype}: {other:?}"),
                }
            }
        }
        Reading::Follow { chain, target, .. } => {
            assert!(chain.len() <= max_depth);
            assert_eq!(
                chain.last(),
                Some(target),
                "Follow target is not the chain's end"
            );
        }
        Reading::Rcode(rcode) => {
            assert!(
                *rcode != ResponseCode::NoError && *rcode != ResponseCode::NXDomain,
                "{rcode} reported as an error rcode"
            );
        }
        Reading::NxDomain { .. } | Reading::NoData { .. } | Reading::CnameChain => {}
    }
}

/// A name as the resolver shows it to users: lower case, no final dot.
fn display(name: &Name) -> String {
    let mut text = name.to_ascii().to_ascii_lowercase();
    if text.len() > 1 && text.ends_with('.') {
        text.pop();
    }
    text
}

/// A cache configuration chosen by four bytes of fuzz input, within the
/// ranges a configuration can sensibly have (up to ~10 years).
pub fn cache_config(bytes: [u8; 4]) -> CacheConfig {
    let secs = |b: u8| Duration::from_secs(u64::from(b) * u64::from(b) * 4_000);
    CacheConfig {
        max_entries: 1 + usize::from(bytes[0] & 0x3f),
        min_ttl: Duration::from_secs(u64::from(bytes[1] & 0x7f)),
        // Sometimes below the floor: the cache must cope with that too.
        max_ttl: secs(bytes[2]),
        negative_max_ttl: Duration::from_secs(u64::from(bytes[3]) * 60),
        negative_fallback_ttl: Duration::from_secs(15),
        failure_ttl: Duration::from_secs(u64::from(bytes[3] & 7)),
        serve_stale: (bytes[1] & 0x80 != 0).then(|| secs(bytes[3])),
        stale_answer_ttl: 30,
        prefetch: bytes[0] & 0x40 != 0,
        ..CacheConfig::default()
    }
}

/// Target `answer_to_cache`: four bytes of cache configuration, then
/// records of `[advance seconds][u16 length][answer_decode input]`. Each
/// packet is decoded as in `answer_decode`, turned into what the resolver
/// would store (as `Resolver` does after an exchange) and stored in one
/// cache, at a clock that moves forward between packets.
pub fn answer_to_cache(data: &[u8]) {
    let Some((config, mut rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let config = cache_config(*config);
    let cache = Cache::new(config.clone());
    let start = Instant::now();
    let mut now = start;
    while let [advance, hi, lo, tail @ ..] = rest {
        now += Duration::from_secs(u64::from(*advance) * 37);
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (record, next) = tail.split_at(len);
        rest = next;
        if let Some(decoded) = answer_decode(record) {
            store(&cache, &config, &decoded, now);
        }
        assert!(
            cache.len() <= config.max_entries.max(1) + config.max_entries / 10 + 1,
            "cache holds {} entries, bound {}",
            cache.len(),
            config.max_entries
        );
    }
}

/// Stores a decoded answer as the resolver would, then reads it back.
fn store(cache: &Cache, config: &CacheConfig, decoded: &Decoded, now: Instant) {
    let name = display(&decoded.question.name());
    // Whatever a server put in a name must not upset name handling.
    let _ = crawldns::normalize_host(&name);
    let slot = Slot::Type(decoded.query_type);
    let key = Key::new(&name, slot);
    let Some(reading) = &decoded.reading else {
        // An exchange that ended without an answer: a remembered timeout.
        let err = Error::new(ErrorKind::Timeout, name.as_str());
        cache.insert_error(key, &err, None, now);
        return;
    };
    match reading {
        Reading::Records { chain, data, ttl } => {
            let mut ips = Vec::new();
            let mut target = None;
            let mut records = Vec::new();
            for value in data {
                match value {
                    RecordValue::Ip(ip) => ips.push(*ip),
                    RecordValue::Name(n) => target = target.or_else(|| Some(display(n))),
                    RecordValue::Data(data) => records.push(data.clone()),
                }
            }
            let lookup = Lookup::from_parts(
                name.clone(),
                decoded.query_type,
                ips,
                target,
                records,
                chain.iter().map(display).collect(),
                *ttl,
            );
            let kept = cache.insert_positive(key, Value::of_lookup(&lookup), *ttl, now);
            let floor = config.min_ttl.as_secs();
            let ceiling = config.max_ttl.max(config.min_ttl).as_secs();
            assert!(
                (floor..=ceiling).contains(&u64::from(kept)),
                "kept ttl {kept} outside {floor}..={ceiling}"
            );
            if kept == 0 {
                // Expired as soon as stored (a zero TTL under a zero floor).
                return;
            }
            match cache.get(&name, slot, now) {
                Hit::Fresh(entry) => {
                    match &entry.value {
                        Value::Lookup(stored) => assert_eq!(stored, &lookup),
                        Value::Ips(stored) => {
                            assert!(lookup.target().is_none() && lookup.chain().is_empty());
                            assert_eq!(&stored[..], lookup.ips());
                        }
                        other => panic!("stored a lookup, read back {other:?}"),
                    }
                    assert!(entry.remaining(now) <= kept);
                }
                Hit::Stale(_) => panic!("an entry stored just now is stale"),
                // The store may turn away a newcomer when it is full.
                Hit::Miss => {}
            }
            let after = now + Duration::from_secs(u64::from(kept));
            assert!(
                !matches!(cache.get(&name, slot, after), Hit::Fresh(_)),
                "fresh past its ttl"
            );
        }
        Reading::Follow { .. } => {
            // The resolver asks again for the target; nothing is stored yet.
        }
        Reading::NxDomain { negative_ttl } | Reading::NoData { negative_ttl } => {
            let kind = if matches!(reading, Reading::NxDomain { .. }) {
                ErrorKind::NxDomain
            } else {
                ErrorKind::NoData
            };
            let err = Error::new(kind, name.as_str());
            if cache.insert_error(key, &err, *negative_ttl, now) {
                if let Hit::Fresh(entry) = cache.get(&name, slot, now) {
                    match &entry.value {
                        Value::Error(e) => assert_eq!(e.kind(), kind),
                        other => panic!("stored {kind}, read back {other:?}"),
                    }
                }
                let after = now + config.negative_max_ttl;
                assert!(
                    !matches!(cache.get(&name, slot, after), Hit::Fresh(_)),
                    "negative entry outlives negative_max_ttl"
                );
            }
        }
        Reading::CnameChain => {
            let err = Error::new(ErrorKind::CnameChain, name.as_str());
            cache.insert_error(key, &err, None, now);
        }
        Reading::Rcode(rcode) => {
            let kind = match *rcode {
                ResponseCode::ServFail => ErrorKind::ServFail,
                ResponseCode::Refused => ErrorKind::Refused,
                _ => ErrorKind::Malformed,
            };
            let err = Error::new(kind, name.as_str());
            if cache.insert_error(key, &err, None, now) {
                let after = now + config.failure_ttl;
                assert!(!matches!(cache.get(&name, slot, after), Hit::Fresh(_)));
            }
        }
    }
}
