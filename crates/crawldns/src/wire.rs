//! The wire format boundary: encoding queries, and checking that an answer
//! belongs to the question it claims to answer.
//!
//! A stub resolver only ever sends one shape of message: a header, one
//! question and an EDNS0 OPT record. That shape is written here directly,
//! into a stack buffer, and an answer's header and question are checked
//! against the bytes that were sent before hickory-proto parses the rest
//! once. Going through a hickory `Message` for both cost about a third of a
//! cold lookup's user-space instructions (see BENCHMARKS.md, "Profile").
//! Round-trip tests below hold the encoder to hickory's decoder.

use std::ops::Deref;
use std::sync::Arc;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};

use crate::case_randomization;
use crate::rng::{self, Random};

/// Block size of padded (batched) queries: EDNS(0) Padding (RFC 7830)
/// brings every query to a multiple of it, so most queries share one size
/// and can leave together in one UDP GSO send.
pub const PAD_BLOCK: usize = 64;

/// Longest possible query: header, a 255-byte name, type and class, OPT,
/// and padding up to the next block.
pub const MAX_QUERY_LEN: usize = (HEADER_LEN + MAX_NAME_LEN + 4 + OPT_LEN + PADDING_OPTION_HEADER)
    .div_ceil(PAD_BLOCK)
    * PAD_BLOCK;

const HEADER_LEN: usize = 12;
const MAX_NAME_LEN: usize = 255;
const MAX_LABEL_LEN: usize = 63;
const OPT_LEN: usize = 11;
const CLASS_IN: u16 = 1;
const TYPE_OPT: u16 = 41;
const OPTION_PADDING: u16 = 12;
const PADDING_OPTION_HEADER: usize = 4;

/// A question as it goes on the wire: QNAME (with 0x20 case when enabled),
/// QTYPE and QCLASS IN. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    wire: Arc<[u8]>,
    rtype: RecordType,
}

impl Question {
    /// A question for `name`: lower-case ASCII labels separated by dots, no
    /// escapes, an optional final dot; `""` or `"."` is the root. With
    /// `randomize_case`, letters get DNS 0x20 random case.
    pub fn new(name: &str, rtype: RecordType, randomize_case: bool) -> Result<Self, String> {
        Self::with_case(name, rtype, randomize_case.then(rng::system).as_mut())
    }

    /// As [`Question::new`], with 0x20 case drawn from `case` when given.
    pub(crate) fn with_case(
        name: &str,
        rtype: RecordType,
        case: Option<&mut impl Random>,
    ) -> Result<Self, String> {
        let name = name.strip_suffix('.').unwrap_or(name);
        let labels = if name.is_empty() { 0 } else { usize::MAX };
        let labels = name.split('.').take(labels).map(str::as_bytes);
        Self::from_labels(labels, rtype, case)
    }

    /// A question for a name read from an answer (a CNAME target), label by
    /// label, so no byte of it is reinterpreted.
    pub fn for_name(name: &Name, rtype: RecordType, randomize_case: bool) -> Result<Self, String> {
        Self::from_labels(
            name.iter(),
            rtype,
            randomize_case.then(rng::system).as_mut(),
        )
    }

    fn from_labels<'a>(
        labels: impl Iterator<Item = &'a [u8]>,
        rtype: RecordType,
        case: Option<&mut impl Random>,
    ) -> Result<Self, String> {
        let mut wire = [0u8; MAX_NAME_LEN + 4];
        let mut len = 0;
        for label in labels {
            if label.is_empty() {
                return Err("empty label".into());
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(format!("label longer than {MAX_LABEL_LEN} bytes"));
            }
            // Room for this label, its length octet and the root's.
            if len + 1 + label.len() + 1 > MAX_NAME_LEN {
                return Err(format!("name longer than {MAX_NAME_LEN} bytes"));
            }
            wire[len] = label.len() as u8;
            wire[len + 1..len + 1 + label.len()].copy_from_slice(label);
            len += 1 + label.len();
        }
        len += 1; // the root label
        if let Some(rng) = case {
            case_randomization::apply(&mut wire[..len], rng);
        }
        wire[len..len + 2].copy_from_slice(&u16::from(rtype).to_be_bytes());
        wire[len + 2..len + 4].copy_from_slice(&CLASS_IN.to_be_bytes());
        Ok(Self {
            wire: Arc::from(&wire[..len + 4]),
            rtype,
        })
    }

    /// The type asked for.
    pub fn rtype(&self) -> RecordType {
        self.rtype
    }

    /// The name exactly as sent (case included).
    pub fn name(&self) -> Name {
        let mut labels = Vec::new();
        let mut rest = self.qname();
        while let Some((&len, tail)) = rest.split_first() {
            if len == 0 {
                break;
            }
            let (label, tail) = tail.split_at(usize::from(len));
            labels.push(label);
            rest = tail;
        }
        // The labels were validated when the question was built.
        Name::from_labels(labels).unwrap_or_else(|_| Name::root())
    }

    /// The QNAME in wire form.
    fn qname(&self) -> &[u8] {
        &self.wire[..self.wire.len() - 4]
    }
}

/// An encoded query, on the stack.
pub struct QueryPacket {
    bytes: [u8; MAX_QUERY_LEN],
    len: usize,
}

impl Deref for QueryPacket {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Encodes a recursive query (RD set) with EDNS0 advertising `payload` bytes.
pub fn encode_query(id: u16, question: &Question, payload: u16) -> QueryPacket {
    encode(id, question, payload, false)
}

/// [`encode_query`], padded with an EDNS(0) Padding option (RFC 7830) to a
/// multiple of [`PAD_BLOCK`] bytes.
pub fn encode_padded_query(id: u16, question: &Question, payload: u16) -> QueryPacket {
    encode(id, question, payload, true)
}

fn encode(id: u16, question: &Question, payload: u16, padded: bool) -> QueryPacket {
    let mut bytes = [0u8; MAX_QUERY_LEN];
    bytes[..2].copy_from_slice(&id.to_be_bytes());
    bytes[2] = 0x01; // RD
    bytes[5] = 1; // QDCOUNT
    bytes[11] = 1; // ARCOUNT: the OPT record
    let end = HEADER_LEN + question.wire.len();
    bytes[HEADER_LEN..end].copy_from_slice(&question.wire);
    // OPT: root owner, type, CLASS = payload size, TTL = 0 (extended rcode,
    // version 0, no DO), then RDLENGTH and the options.
    bytes[end + 1..end + 3].copy_from_slice(&TYPE_OPT.to_be_bytes());
    bytes[end + 3..end + 5].copy_from_slice(&payload.to_be_bytes());
    let mut len = end + OPT_LEN;
    if padded {
        let total = (len + PADDING_OPTION_HEADER).div_ceil(PAD_BLOCK) * PAD_BLOCK;
        let padding = total - len - PADDING_OPTION_HEADER;
        let rdlength = (PADDING_OPTION_HEADER + padding) as u16;
        bytes[len - 2..len].copy_from_slice(&rdlength.to_be_bytes());
        bytes[len..len + 2].copy_from_slice(&OPTION_PADDING.to_be_bytes());
        bytes[len + 2..len + 4].copy_from_slice(&(padding as u16).to_be_bytes());
        // The padding octets are zero already (RFC 7830 §3).
        len = total;
    }
    QueryPacket { bytes, len }
}

/// How an incoming datagram relates to an outstanding question.
#[derive(Debug)]
pub enum Verdict {
    /// A well-formed response to exactly this question.
    Answer(Message),
    /// Its header and question match, but the rest does not parse.
    Malformed,
    /// Not an answer to this question (wrong question, not a response, or
    /// unreadable before the question): drop it.
    Mismatch,
}

/// Reads the 16-bit ID of a datagram, if it has one.
pub fn peek_id(bytes: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
}

/// Checks `bytes` against the outstanding `question` (whose ID and source
/// address the caller has already matched): a standard-query response with
/// exactly one question, the one sent, with the name uncompressed. With
/// `exact_case` (0x20 on), the name must echo the sent case byte for byte.
pub fn judge(bytes: &[u8], question: &Question, exact_case: bool) -> Verdict {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Verdict::Mismatch;
    };
    let is_response = header[2] & 0x80 != 0;
    let opcode = (header[2] >> 3) & 0x0f;
    let questions = u16::from_be_bytes([header[4], header[5]]);
    if !is_response || opcode != 0 || questions != 1 {
        return Verdict::Mismatch;
    }
    let Some(echo) = bytes.get(HEADER_LEN..HEADER_LEN + question.wire.len()) else {
        return Verdict::Mismatch;
    };
    let (echo_name, echo_type_class) = echo.split_at(echo.len() - 4);
    let (sent_name, sent_type_class) = question.wire.split_at(question.wire.len() - 4);
    let same_name = if exact_case {
        echo_name == sent_name
    } else {
        echo_name.eq_ignore_ascii_case(sent_name)
    };
    if !same_name || echo_type_class != sent_type_class {
        return Verdict::Mismatch;
    }
    match Message::from_vec(bytes) {
        Ok(message) => Verdict::Answer(message),
        Err(_) => Verdict::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, MessageType, OpCode, Query, ResponseCode};

    fn response_to(query: &[u8], f: impl FnOnce(&mut Message)) -> Vec<u8> {
        let mut m = Message::from_vec(query).unwrap();
        m.metadata.message_type = MessageType::Response;
        m.metadata.response_code = ResponseCode::NoError;
        f(&mut m);
        m.to_vec().unwrap()
    }

    /// The same query built through hickory-proto's `Message`.
    fn hickory_query(id: u16, name: &str, rtype: RecordType, payload: u16) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        message.set_edns(edns);
        message.to_vec().unwrap()
    }

    #[test]
    fn encodes_byte_for_byte_what_hickory_encodes() {
        let long_label = "a".repeat(63);
        let longest = [long_label.as_str(); 4].join(".")[..253].to_string();
        for (name, rtype, payload) in [
            ("h1.crawl.test", RecordType::A, 1232),
            ("xn--bcher-kva.example", RecordType::AAAA, 512),
            ("_dmarc.a-b.c0", RecordType::CNAME, 4096),
            ("", RecordType::NS, 1232),
            (long_label.as_str(), RecordType::A, 1232),
            (longest.as_str(), RecordType::A, 1232),
        ] {
            let q = Question::new(name, rtype, false).unwrap();
            let ours = encode_query(0xbeef, &q, payload);
            let theirs = hickory_query(0xbeef, &format!("{name}."), rtype, payload);
            assert_eq!(&*ours, theirs.as_slice(), "{name:?} {rtype}");
            assert_eq!(q.name(), Name::from_ascii(format!("{name}.")).unwrap());
            assert_eq!(q.rtype(), rtype);
        }
        let dotted = Question::new("h1.crawl.test.", RecordType::A, false).unwrap();
        assert_eq!(
            dotted,
            Question::new("h1.crawl.test", RecordType::A, false).unwrap()
        );
    }

    #[test]
    fn padded_queries_fill_whole_blocks_and_parse_as_the_same_query() {
        let long = format!("{}.crawl.test", "a".repeat(60));
        for name in ["h1.crawl.test", "h12345.crawl.test", long.as_str(), ""] {
            let q = Question::new(name, RecordType::A, false).unwrap();
            let plain = Message::from_vec(&encode_query(9, &q, 1232)).unwrap();
            let bytes = encode_padded_query(9, &q, 1232);
            assert_eq!(
                bytes.len() % PAD_BLOCK,
                0,
                "{name:?}: {} bytes",
                bytes.len()
            );
            assert!(bytes.len() >= encode_query(9, &q, 1232).len() + 4);
            let padded = Message::from_vec(&bytes).unwrap();
            assert_eq!(padded.queries, plain.queries, "{name:?}");
            assert_eq!(padded.metadata, plain.metadata, "{name:?}");
            let edns = padded.edns.as_ref().expect("OPT present");
            assert_eq!(edns.max_payload(), 1232);
            let option = edns
                .options()
                .as_ref()
                .iter()
                .find(|(code, _)| u16::from(*code) == OPTION_PADDING);
            assert!(option.is_some(), "{name:?}: no padding option");
        }
        let longest = [&*"a".repeat(63); 4].join(".")[..253].to_string();
        let q = Question::new(&longest, RecordType::AAAA, true).unwrap();
        assert!(encode_padded_query(1, &q, 1232).len() <= MAX_QUERY_LEN);
    }

    #[test]
    fn rejects_names_that_cannot_go_on_the_wire() {
        let long_label = "a".repeat(64);
        let too_long = ["a".repeat(63).as_str(); 4].join(".");
        for bad in ["a..b", ".a", long_label.as_str(), too_long.as_str(), ".."] {
            assert!(
                Question::new(bad, RecordType::A, false).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn questions_for_answer_names_keep_every_byte() {
        let target = Name::from_labels(vec![&b"we.ird"[..], b"crawl", b"test"]).unwrap();
        let q = Question::for_name(&target, RecordType::A, false).unwrap();
        assert_eq!(q.name(), target);
        let sent = encode_query(1, &q, 1232);
        assert_eq!(&sent[12..20], b"\x06we.ird\x05");
    }

    #[test]
    fn accepts_only_the_exact_question() {
        let q = Question::new("h1.crawl.test", RecordType::A, false).unwrap();
        let query = encode_query(7, &q, 1232);
        assert_eq!(peek_id(&query), Some(7));
        assert!(
            matches!(judge(&query, &q, false), Verdict::Mismatch),
            "a query is not an answer"
        );
        let ok = response_to(&query, |_| {});
        assert!(matches!(judge(&ok, &q, false), Verdict::Answer(_)));
        let upper = response_to(&query, |m| {
            m.queries[0].set_name(Name::from_ascii("H1.Crawl.TEST.").unwrap());
        });
        assert!(matches!(judge(&upper, &q, false), Verdict::Answer(_)));
        let other_type = response_to(&query, |m| {
            m.queries[0].set_query_type(RecordType::AAAA);
        });
        assert!(matches!(judge(&other_type, &q, false), Verdict::Mismatch));
        // 'A' (65) and 'a' (97) as type numbers must not match by case folding.
        let q65 = Question::new("h1.crawl.test", RecordType::from(65), false).unwrap();
        let q97 = Question::new("h1.crawl.test", RecordType::from(97), false).unwrap();
        let answer97 = response_to(&encode_query(7, &q97, 1232), |_| {});
        assert!(matches!(judge(&answer97, &q65, false), Verdict::Mismatch));
        let other_class = response_to(&query, |m| {
            m.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
        });
        assert!(matches!(judge(&other_class, &q, false), Verdict::Mismatch));
        let other_name = response_to(&query, |m| {
            m.queries[0].set_name(Name::from_ascii("h2.crawl.test.").unwrap());
        });
        assert!(matches!(judge(&other_name, &q, false), Verdict::Mismatch));
        let two_questions = response_to(&query, |m| {
            let again = m.queries[0].clone();
            m.add_query(again);
        });
        assert!(matches!(
            judge(&two_questions, &q, false),
            Verdict::Mismatch
        ));
        let mut notify = ok.clone();
        notify[2] |= 4 << 3; // opcode NOTIFY
        assert!(matches!(judge(&notify, &q, false), Verdict::Mismatch));
        let mut garbage = ok.clone();
        garbage.truncate(ok.len() - 3);
        garbage[7] = 5; // claims answers it does not have
        assert!(matches!(judge(&garbage, &q, false), Verdict::Malformed));
        assert!(matches!(judge(&ok[..20], &q, false), Verdict::Mismatch));
        assert!(matches!(judge(&[1, 2, 3], &q, false), Verdict::Mismatch));
    }

    #[test]
    fn a_compressed_echo_is_not_the_question() {
        let q = Question::new("h1.crawl.test", RecordType::A, false).unwrap();
        let ok = response_to(&encode_query(7, &q, 1232), |_| {});
        // Replace the echoed name by a pointer to offset 12 (itself).
        let mut pointer = ok[..12].to_vec();
        pointer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(matches!(judge(&pointer, &q, false), Verdict::Mismatch));
    }

    #[test]
    fn case_randomization_requires_an_exact_echo() {
        let q =
            Question::new("abcdefghijklmnopqrstuvwxyz.crawl.test", RecordType::A, true).unwrap();
        let sent = q.name().to_ascii();
        assert_eq!(
            sent.to_ascii_lowercase(),
            "abcdefghijklmnopqrstuvwxyz.crawl.test."
        );
        let query = encode_query(1, &q, 1232);
        let echo = response_to(&query, |_| {});
        assert!(matches!(judge(&echo, &q, true), Verdict::Answer(_)));
        let lowered = response_to(&query, |m| {
            let lower = m.queries[0].name().to_lowercase();
            m.queries[0].set_name(lower);
        });
        if sent != sent.to_ascii_lowercase() {
            assert!(matches!(judge(&lowered, &q, true), Verdict::Mismatch));
        }
        assert!(matches!(judge(&lowered, &q, false), Verdict::Answer(_)));
    }

    #[test]
    fn case_randomization_varies_and_touches_only_letters() {
        let names: std::collections::HashSet<String> = (0..16)
            .map(|_| {
                let q =
                    Question::new("abcdefghijklmnop.crawl-1.test", RecordType::A, true).unwrap();
                q.name().to_ascii()
            })
            .collect();
        assert!(names.len() > 1, "16 questions all had the same case");
        for name in names {
            assert_eq!(name.to_ascii_lowercase(), "abcdefghijklmnop.crawl-1.test.");
        }
    }
}
