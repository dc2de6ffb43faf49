//! The wire format boundary: encoding queries, and checking that an answer
//! belongs to the question it claims to answer. Built on hickory-proto.

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use rand::Rng;

/// A question as it was put on the wire (with 0x20 case, when enabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name exactly as sent.
    pub name: Name,
    /// The type asked for.
    pub rtype: RecordType,
}

impl Question {
    /// A question for `name` (lower-case ASCII, no final dot), optionally with
    /// DNS 0x20 case randomization applied.
    pub fn new(name: &str, rtype: RecordType, randomize_case: bool) -> Result<Self, String> {
        let mut text = String::with_capacity(name.len() + 1);
        if randomize_case {
            let mut rng = rand::rng();
            let mut bits: u64 = rng.random();
            let mut left = 64;
            for c in name.chars() {
                if c.is_ascii_alphabetic() {
                    if left == 0 {
                        bits = rng.random();
                        left = 64;
                    }
                    text.push(if bits & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    });
                    bits >>= 1;
                    left -= 1;
                } else {
                    text.push(c);
                }
            }
        } else {
            text.push_str(name);
        }
        text.push('.');
        let name = Name::from_ascii(&text).map_err(|e| e.to_string())?;
        Ok(Self { name, rtype })
    }
}

/// Encodes a recursive query with EDNS0 advertising `payload` bytes.
pub fn encode_query(id: u16, question: &Question, payload: u16) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(question.name.clone(), question.rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    message.set_edns(edns);
    // Encoding a message we built ourselves from a valid Name cannot fail
    // short of allocation failure; an empty packet would simply time out.
    message.to_vec().unwrap_or_default()
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
/// address the caller has already matched). With `exact_case` (0x20 on), the
/// name must echo the sent case byte for byte.
pub fn judge(bytes: &[u8], question: &Question, exact_case: bool) -> Verdict {
    let mut decoder = BinDecoder::new(bytes);
    let Ok(header) = Header::read(&mut decoder) else {
        return Verdict::Mismatch;
    };
    if header.metadata.message_type != MessageType::Response || header.counts.queries != 1 {
        return Verdict::Mismatch;
    }
    let Ok(query) = Query::read(&mut decoder) else {
        return Verdict::Mismatch;
    };
    let same_name = if exact_case {
        query.name().eq_case(&question.name)
    } else {
        query.name() == &question.name
    };
    if !same_name || query.query_type() != question.rtype || query.query_class() != DNSClass::IN {
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
    use hickory_proto::op::ResponseCode;

    fn response_to(query: &[u8], f: impl FnOnce(&mut Message)) -> Vec<u8> {
        let mut m = Message::from_vec(query).unwrap();
        m.metadata.message_type = MessageType::Response;
        m.metadata.response_code = ResponseCode::NoError;
        f(&mut m);
        m.to_vec().unwrap()
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
        let other_type = response_to(&query, |m| {
            m.queries[0].set_query_type(RecordType::AAAA);
        });
        assert!(matches!(judge(&other_type, &q, false), Verdict::Mismatch));
        let other_name = response_to(&query, |m| {
            m.queries[0].set_name(Name::from_ascii("h2.crawl.test.").unwrap());
        });
        assert!(matches!(judge(&other_name, &q, false), Verdict::Mismatch));
        let mut garbage = ok.clone();
        garbage.truncate(ok.len() - 3);
        garbage[7] = 5; // claims answers it does not have
        assert!(matches!(judge(&garbage, &q, false), Verdict::Malformed));
        assert!(matches!(judge(&[1, 2, 3], &q, false), Verdict::Mismatch));
    }

    #[test]
    fn case_randomization_requires_an_exact_echo() {
        let q =
            Question::new("abcdefghijklmnopqrstuvwxyz.crawl.test", RecordType::A, true).unwrap();
        let sent = q.name.to_ascii();
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
}
