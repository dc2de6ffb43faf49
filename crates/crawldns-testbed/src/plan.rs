//! Deciding the reply to one query under the current faults, for every
//! transport the server speaks (UDP, TCP, TLS, HTTPS), and the state the
//! listeners share.

use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use parking_lot::RwLock;
use rand::Rng;
use tokio::net::UdpSocket;

use crate::counters::{Counters, Transport};
use crate::faults::{Delay, Faults, RcodeFault};
use crate::zone::{forged_answer, truncated, Zone};

/// What every listener of one server shares.
pub(crate) struct Shared {
    pub(crate) zone: Zone,
    pub(crate) delay: RwLock<Delay>,
    pub(crate) faults: RwLock<Faults>,
    pub(crate) counters: Counters,
    pub(crate) udp: UdpSocket,
    /// Where `wrong_port` forgeries come from.
    pub(crate) side_udp: UdpSocket,
}

/// What to send for one query, decided when it arrives.
pub(crate) enum Plan {
    Silence,
    Reply {
        forgery: Option<Forgery>,
        bytes: Vec<u8>,
    },
}

pub(crate) enum Forgery {
    SamePort(Vec<u8>),
    OtherPort(Vec<u8>),
}

/// Decides the reply to `packet` under the current faults, and how long to
/// wait before sending it. Counts the query.
pub(crate) fn plan(shared: &Shared, packet: &[u8], transport: Transport) -> (Plan, Duration) {
    let Ok(request) = Message::from_vec(packet) else {
        shared.counters.unparsable();
        return (Plan::Silence, Duration::ZERO);
    };
    if request.metadata.message_type != MessageType::Query {
        shared.counters.unparsable();
        return (Plan::Silence, Duration::ZERO);
    }
    let first = request.queries.first();
    let rtype = first.map_or(RecordType::A, |q| q.query_type());
    let name = first.map(|q| q.name().to_ascii()).unwrap_or_default();
    if first.is_some() {
        shared.counters.query(&name, rtype, transport);
    }
    let delay = shared.delay.read().for_query(&name, rtype);
    let faults = shared.faults.read().clone();
    let udp = transport == Transport::Udp;
    if faults.down
        || (faults.drop_fraction > 0.0 && rand::rng().random::<f64>() < faults.drop_fraction)
    {
        shared.counters.dropped();
        return (Plan::Silence, delay);
    }
    let id = request.metadata.id;
    if faults.malformed {
        return (
            Plan::Reply {
                forgery: None,
                bytes: malformed(id),
            },
            delay,
        );
    }
    if let Some(rcode) = faults.rcode {
        let code = match rcode {
            RcodeFault::ServFail => ResponseCode::ServFail,
            RcodeFault::Refused => ResponseCode::Refused,
        };
        let mut reply = Message::error_msg(id, request.metadata.op_code, code);
        reply.add_queries(request.queries.iter().cloned());
        reply.metadata.recursion_desired = request.metadata.recursion_desired;
        return (
            Plan::Reply {
                forgery: None,
                bytes: reply.to_vec().unwrap_or_default(),
            },
            delay,
        );
    }
    let bytes = if udp && faults.truncate {
        truncated(&shared.zone.answer(&request))
    } else {
        shared.zone.respond(&request, udp)
    };
    let forgery = match (udp, first) {
        (true, Some(q)) if faults.wrong_id => {
            Some(Forgery::SamePort(forged_answer(id ^ 0x5a5a, q)))
        }
        (true, Some(q)) if faults.wrong_question => {
            let other = Name::from_ascii("forged")
                .and_then(|l| l.append_domain(q.name()))
                .unwrap_or_else(|_| Name::root());
            Some(Forgery::SamePort(forged_answer(
                id,
                &Query::query(other, q.query_type()),
            )))
        }
        (true, Some(q)) if faults.wrong_port => Some(Forgery::OtherPort(forged_answer(id, q))),
        _ => None,
    };
    (Plan::Reply { forgery, bytes }, delay)
}

/// A response-looking packet that no parser should accept: the right ID and
/// QR bit, one question claimed, and a name that is a compression loop.
fn malformed(id: u16) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(&[0x84, 0x00, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00]);
    bytes.extend_from_slice(&[0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0xde, 0xad, 0xbe]);
    bytes
}
