//! One question's attempts: which server to ask next, over which transport
//! and until when; TCP fallback on truncation; failover on timeouts,
//! SERVFAIL, REFUSED, malformed answers and socket errors; and when to give
//! up, with which error.
//!
//! A deterministic state machine with no I/O, no clock and no runtime (the
//! shape of quinn-proto): time comes in as `now`, the servers' state from
//! the [`Health`] table, and the driver in `exchange.rs` performs the
//! [`Action`]s it returns and reports what came of them as [`Event`]s.
//!
//! Replies that do not match the question exactly (wrong ID, question or
//! DNS 0x20 case) never reach it: the UDP demultiplexer drops and counts
//! them, and the attempt keeps waiting. Each send carries its deadline,
//! computed from the health table at send time (the driver re-arms it,
//! `rearm.rs`), and the retry budget is measured in time as well as in
//! rounds ([`Policy::budget`], [`Policy::extend`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{NameServer, Protocol};
use crate::error::{Attempt, ErrorKind};
use crate::health::Health;

/// How hard one question is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Rounds over the servers (every up server once per round).
    pub rounds: usize,
    /// Give up once this much time has passed since the first send, even
    /// with rounds left (`None`: rounds alone decide).
    pub budget: Option<Duration>,
    /// After the rounds, while the last attempt timed out at a server that
    /// answered other queries since it was sent (the query was lost, or
    /// its name is slow), keep asking that server until this much time has
    /// passed since the first send, each extra attempt waiting twice as
    /// long as the one before: a retry budget in time, where a count of
    /// attempts gives up on a live server after two lost packets.
    pub extend: Option<Duration>,
}

/// How one attempt goes to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// A datagram on the shared UDP pool.
    Udp,
    /// A query on a pipelined TCP connection.
    Tcp,
    /// A query on a pipelined TLS connection (DoT).
    Tls,
    /// An HTTP/2 request (DoH).
    Https,
}

impl Transport {
    /// How a server of `protocol` is asked.
    pub fn of(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Udp => Self::Udp,
            Protocol::Tcp => Self::Tcp,
            Protocol::Tls => Self::Tls,
            Protocol::Https => Self::Https,
        }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Ask server `server` (an index into the configured servers) over
    /// `transport`, waiting until `deadline` for the answer.
    Send {
        server: usize,
        transport: Transport,
        deadline: Instant,
        /// This send follows an earlier attempt that failed (a retry, as
        /// counted in the metrics); a TCP fallback after truncation is not.
        retry: bool,
        /// The deadline is the server's timeout times this (an attempt
        /// past the rounds backs off): what a re-armed deadline keeps.
        backoff: u32,
    },
    /// The question is answered: the driver returns the answer it holds.
    Answered,
    /// Every attempt failed.
    GiveUp(GiveUp),
}

/// Why a question got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GiveUp {
    /// The kind reported (see [`final_kind`]).
    pub kind: ErrorKind,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// What the last socket error said, when the kind is an I/O one.
    pub detail: Option<String>,
}

/// What came of the last [`Action::Send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// An answer to act on: NOERROR or NXDOMAIN.
    Answer,
    /// A UDP answer with TC=1: ask the same server again over TCP.
    Truncated,
    /// The server answered with an error RCODE (SERVFAIL, REFUSED, or
    /// another the resolver does not act on, as [`ErrorKind::Malformed`]).
    ServerError(ErrorKind),
    /// The reply matched the question but did not parse.
    Malformed,
    /// Nothing usable arrived before the deadline.
    Timeout,
    /// The server's certificate did not verify (TLS, HTTPS): the question
    /// moves on and does not ask that server again.
    Certificate { detail: String },
    /// A socket operation failed; `kind` is [`ErrorKind::Io`] or
    /// [`ErrorKind::Resource`] (local exhaustion, which ends the question).
    Socket { kind: ErrorKind, detail: String },
    /// The server's port is closed (an ICMP port unreachable, seen as
    /// "connection refused"): no use asking it again for this question.
    PortClosed,
}

/// What the driver must do besides the next action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Effect {
    /// This event made a server down: start probing it.
    pub server_went_down: bool,
}

/// What every question of a resolver is tried against: its servers and its
/// policy. Shared, so that a question's attempts hold one pointer to them.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The configured nameservers.
    pub servers: Arc<[NameServer]>,
    pub policy: Policy,
}

/// The attempts of one question. Kept small (168 bytes): a pending lookup
/// holds one, so its size is memory per pending name.
#[derive(Debug)]
pub(crate) struct Attempts {
    plan: Arc<Plan>,
    started: Option<Instant>,
    round: u32,
    /// Attempts made past the rounds ([`Policy::extend`]).
    extra: u32,
    /// This round's remaining servers, next last (popped).
    pending: Queue,
    /// The attempt in flight.
    in_flight: Option<InFlight>,
    /// Set by a truncated answer: the next send is TCP to this server.
    tcp_fallback: Option<u32>,
    /// The last attempt timed out at this server while it answered others.
    lost_at: Option<u32>,
    failed: Vec<Attempt>,
    /// Servers whose port was closed, or whose certificate failed, during
    /// this question: skipped.
    closed: Vec<u32>,
    /// What the last socket error and the last certificate failure said:
    /// boxed, as most questions have neither.
    details: Option<Box<Details>>,
    answered: bool,
    resource: bool,
}

/// An attempt in flight: to which server, how, when it was sent, and the
/// server's answers so far then ([`Health::answers`]).
#[derive(Debug, Clone, Copy)]
struct InFlight {
    server: u32,
    transport: Transport,
    sent: Instant,
    answers_at_send: u64,
}

/// What failures said, for the error a question gives up with.
#[derive(Debug, Default)]
struct Details {
    io: Option<String>,
    certificate: Option<String>,
}

/// A round's servers still to ask, next last: inline for up to 22 servers,
/// on the heap beyond (so that a question allocates nothing for it).
#[derive(Debug)]
enum Queue {
    Inline { len: u8, servers: [u8; 22] },
    Heap(Vec<usize>),
}

impl Queue {
    const EMPTY: Self = Self::Inline {
        len: 0,
        servers: [0; 22],
    };

    /// The queue of `order` (next last).
    fn of(order: Vec<usize>) -> Self {
        let mut servers = [0u8; 22];
        if order.len() > servers.len() {
            return Self::Heap(order);
        }
        for (slot, &server) in servers.iter_mut().zip(&order) {
            match u8::try_from(server) {
                Ok(server) => *slot = server,
                Err(_) => return Self::Heap(order),
            }
        }
        Self::Inline {
            len: order.len() as u8,
            servers,
        }
    }

    fn pop(&mut self) -> Option<usize> {
        match self {
            Self::Inline { len, servers } => {
                *len = len.checked_sub(1)?;
                Some(usize::from(servers[usize::from(*len)]))
            }
            Self::Heap(order) => order.pop(),
        }
    }
}

/// A server's index as the attempts keep it (configurations have a few).
fn index(server: usize) -> u32 {
    u32::try_from(server).unwrap_or(u32::MAX)
}

impl Attempts {
    /// The attempts of a new question, to `plan`'s servers.
    pub fn new(plan: Arc<Plan>) -> Self {
        Self {
            plan,
            started: None,
            round: 0,
            extra: 0,
            pending: Queue::EMPTY,
            in_flight: None,
            tcp_fallback: None,
            lost_at: None,
            failed: Vec::new(),
            closed: Vec::new(),
            details: None,
            answered: false,
            resource: false,
        }
    }

    fn is_closed(&self, server: usize) -> bool {
        self.closed.contains(&index(server))
    }

    fn close(&mut self, server: usize) {
        if !self.is_closed(server) {
            self.closed.push(index(server));
        }
    }

    fn details(&mut self) -> &mut Details {
        self.details.get_or_insert_with(Box::default)
    }

    /// The next action at `now`. Call it after [`Attempts::new`] and after
    /// every [`Attempts::on_event`].
    pub fn poll(&mut self, health: &mut Health, now: Instant) -> Action {
        if self.answered {
            return Action::Answered;
        }
        if self.resource {
            return self.give_up();
        }
        let started = *self.started.get_or_insert(now);
        if let Some(server) = self.tcp_fallback.take().map(|s| s as usize) {
            // The TCP exchange gets a whole timeout again: it needs a
            // handshake, and the UDP answer showed the server is there.
            let timeout = health.timeout(server);
            return self.send(health, server, Transport::Tcp, now, timeout, false);
        }
        if self
            .plan
            .policy
            .budget
            .is_some_and(|budget| now.saturating_duration_since(started) >= budget)
            && !self.failed.is_empty()
        {
            return self.give_up();
        }
        let server = loop {
            if let Some(server) = self.pending.pop() {
                if !self.is_closed(server) {
                    break server;
                }
                continue;
            }
            let rounds = self.plan.policy.rounds;
            if self.round as usize >= rounds || self.closed.len() >= self.plan.servers.len() {
                if let Some(action) = self.extend(health, started, now) {
                    return action;
                }
                return self.give_up();
            }
            self.round += 1;
            let mut order = health.order();
            order.reverse();
            self.pending = Queue::of(order);
        };
        let transport = self.transport_of(server);
        let retry = !self.failed.is_empty();
        let timeout = health.timeout(server);
        self.send(health, server, transport, now, timeout, retry)
    }

    /// An attempt past the rounds, if [`Policy::extend`] allows one now.
    fn extend(&mut self, health: &mut Health, started: Instant, now: Instant) -> Option<Action> {
        let window = self.plan.policy.extend?;
        let server = self
            .lost_at
            .map(|s| s as usize)
            .filter(|&s| !self.is_closed(s))?;
        let left = window.checked_sub(now.saturating_duration_since(started))?;
        if left.is_zero() {
            return None;
        }
        self.extra += 1;
        let backoff = 1u32.checked_shl(self.extra).unwrap_or(u32::MAX);
        let timeout = health.timeout(server).saturating_mul(backoff).min(left);
        let transport = self.transport_of(server);
        let mut action = self.send(health, server, transport, now, timeout, true);
        if let Action::Send { backoff: b, .. } = &mut action {
            *b = backoff;
        }
        Some(action)
    }

    /// An earlier attempt's query, to `server` at `sent`, was answered at
    /// `now` (see `late_answers.rs`): the question is answered, and that
    /// server's RTT sample is its own.
    pub fn on_late_answer(
        &mut self,
        health: &mut Health,
        server: usize,
        sent: Instant,
        now: Instant,
    ) {
        health.success(server, now.saturating_duration_since(sent));
        self.in_flight = None;
        self.answered = true;
    }

    /// Reports what came of the attempt in flight, at `now`.
    pub fn on_event(&mut self, health: &mut Health, now: Instant, event: Event) -> Effect {
        let Some(InFlight {
            server,
            transport,
            sent,
            answers_at_send,
        }) = self.in_flight
        else {
            return Effect::default();
        };
        let server = server as usize;
        let outcome = match event {
            Event::Answer => {
                health.success(server, now.saturating_duration_since(sent));
                self.in_flight = None;
                self.answered = true;
                return Effect::default();
            }
            Event::Truncated if transport == Transport::Udp => {
                self.in_flight = None;
                self.tcp_fallback = Some(index(server));
                return Effect::default();
            }
            // TC=1 over TCP: the server cannot give a whole answer.
            Event::Truncated | Event::Malformed => ErrorKind::Malformed,
            Event::ServerError(kind) => kind,
            Event::Timeout => ErrorKind::Timeout,
            Event::Certificate { detail } => {
                // Asking again gets the same certificate.
                self.close(server);
                self.details().certificate = Some(detail);
                ErrorKind::Certificate
            }
            Event::Socket { kind, detail } => {
                self.resource |= kind == ErrorKind::Resource;
                self.details().io = Some(detail);
                kind
            }
            Event::PortClosed => {
                self.close(server);
                self.details().io = Some("connection refused".into());
                ErrorKind::Io
            }
        };
        self.in_flight = None;
        self.failed.push(Attempt {
            server: self.address(server),
            outcome,
        });
        self.lost_at = (outcome == ErrorKind::Timeout && health.answers(server) > answers_at_send)
            .then_some(index(server));
        let server_went_down = match outcome {
            // Local exhaustion says nothing about the server.
            ErrorKind::Resource => false,
            ErrorKind::Timeout => health.timed_out(server, answers_at_send),
            _ => health.failure(server),
        };
        Effect { server_went_down }
    }

    fn send(
        &mut self,
        health: &Health,
        server: usize,
        transport: Transport,
        now: Instant,
        timeout: Duration,
        retry: bool,
    ) -> Action {
        self.in_flight = Some(InFlight {
            server: index(server),
            transport,
            sent: now,
            answers_at_send: health.answers(server),
        });
        Action::Send {
            server,
            transport,
            deadline: now + timeout,
            retry,
            backoff: 1,
        }
    }

    fn give_up(&mut self) -> Action {
        let attempts = std::mem::take(&mut self.failed);
        let kind = final_kind(&attempts);
        let details = self
            .details
            .take()
            .map(|details| *details)
            .unwrap_or_default();
        let detail = match kind {
            ErrorKind::Io | ErrorKind::Resource => details.io,
            ErrorKind::Certificate => details.certificate,
            _ => None,
        };
        Action::GiveUp(GiveUp {
            kind,
            attempts,
            detail,
        })
    }

    /// How configured server `server` is asked.
    fn transport_of(&self, server: usize) -> Transport {
        self.plan
            .servers
            .get(server)
            .map_or(Transport::Udp, |s| Transport::of(s.protocol))
    }

    fn address(&self, server: usize) -> SocketAddr {
        self.plan
            .servers
            .get(server)
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |s| s.addr)
    }
}

/// The kind reported when every attempt failed: local exhaustion first,
/// then what a server said, if any said something, else a timeout.
pub(crate) fn final_kind(attempts: &[Attempt]) -> ErrorKind {
    const PRIORITY: [ErrorKind; 7] = [
        ErrorKind::Resource,
        ErrorKind::Certificate,
        ErrorKind::ServFail,
        ErrorKind::Refused,
        ErrorKind::Malformed,
        ErrorKind::Io,
        ErrorKind::Timeout,
    ];
    PRIORITY
        .into_iter()
        .find(|kind| attempts.iter().any(|a| a.outcome == *kind))
        .unwrap_or(ErrorKind::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn servers(protocols: &[Protocol]) -> Arc<[NameServer]> {
        protocols
            .iter()
            .enumerate()
            .map(|(i, &protocol)| {
                NameServer::new(
                    SocketAddr::from(([127, 0, 0, 1], 5300 + i as u16)),
                    protocol,
                )
            })
            .collect()
    }

    fn attempts(servers: Arc<[NameServer]>, policy: Policy) -> Attempts {
        Attempts::new(Arc::new(Plan { servers, policy }))
    }

    fn health(n: usize) -> Health {
        // Timeout 2 s, floor 250 ms, down after 3 failures, no rotation.
        Health::new(n, 2000 * MS, 250 * MS, 3, false)
    }

    const ONE_ROUND: Policy = Policy {
        rounds: 1,
        budget: None,
        extend: None,
    };
    const TWO_ROUNDS: Policy = Policy {
        rounds: 2,
        budget: None,
        extend: None,
    };

    /// Drives `attempts` through `events`, one per send, at the times
    /// given (milliseconds after `t0`); returns every action seen, with
    /// deadlines as milliseconds after `t0`.
    fn run(
        attempts: &mut Attempts,
        health: &mut Health,
        t0: Instant,
        events: &[(u64, Event)],
    ) -> Vec<String> {
        let mut seen = Vec::new();
        let mut now = t0;
        let mut events = events.iter();
        loop {
            let action = attempts.poll(health, now);
            seen.push(show(&action, t0));
            if !matches!(action, Action::Send { .. }) {
                return seen;
            }
            let Some((at, event)) = events.next() else {
                return seen;
            };
            now = t0 + Duration::from_millis(*at);
            attempts.on_event(health, now, event.clone());
        }
    }

    fn show(action: &Action, t0: Instant) -> String {
        match action {
            Action::Send {
                server,
                transport,
                deadline,
                retry,
                ..
            } => format!(
                "send {server} {transport:?} until {}{}",
                deadline.duration_since(t0).as_millis(),
                if *retry { " retry" } else { "" }
            ),
            Action::Answered => "answered".into(),
            Action::GiveUp(g) => format!(
                "give up {} after {}",
                g.kind,
                g.attempts
                    .iter()
                    .map(|a| format!("{}:{}", a.server.port() - 5300, a.outcome))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    #[test]
    fn a_first_answer_ends_it() {
        let list = servers(&[Protocol::Udp, Protocol::Udp]);
        let mut h = health(2);
        let t0 = Instant::now();
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        let seen = run(&mut a, &mut h, t0, &[(30, Event::Answer)]);
        assert_eq!(seen, ["send 0 Udp until 2000", "answered"]);
        assert_eq!(h.servers()[0].srtt, Some(30 * MS));
        assert_eq!(h.servers()[0].samples, 1);
    }

    #[test]
    fn failover_order_and_give_up_after_rounds_times_servers() {
        let list = servers(&[Protocol::Udp, Protocol::Udp, Protocol::Udp]);
        let mut h = health(3);
        let t0 = Instant::now();
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        let seen = run(
            &mut a,
            &mut h,
            t0,
            &[
                (2000, Event::Timeout),
                (2001, Event::ServerError(ErrorKind::ServFail)),
                (2002, Event::ServerError(ErrorKind::Refused)),
                (6000, Event::Timeout),
                (6001, Event::Malformed),
                (6002, Event::Malformed),
            ],
        );
        assert_eq!(
            seen,
            [
                "send 0 Udp until 2000",
                // Timeouts double up to the configured 2 s: still 2 s.
                "send 1 Udp until 4000 retry",
                "send 2 Udp until 4001 retry",
                // Round two, same order (nothing measured, nothing down).
                "send 0 Udp until 4002 retry",
                "send 1 Udp until 8000 retry",
                "send 2 Udp until 8001 retry",
                "give up servfail after 0:timeout,1:servfail,2:refused,0:timeout,1:malformed,2:malformed",
            ]
        );
    }

    /// What the driver does with a reply read for the attempt in flight:
    /// `wire::judge`, as the UDP and stream demultiplexers call it, makes an
    /// event of an answer and drops anything else (no event at all).
    fn reply_event(bytes: &[u8], question: &crate::wire::Question) -> Option<Event> {
        match crate::wire::judge(bytes, question, true) {
            crate::wire::Verdict::Answer(_) => Some(Event::Answer),
            crate::wire::Verdict::Malformed => Some(Event::Malformed),
            crate::wire::Verdict::Mismatch => None,
        }
    }

    fn reply(name: &str) -> Vec<u8> {
        use hickory_proto::op::{Message, OpCode, Query};
        use hickory_proto::rr::{Name, RecordType};
        let mut m = Message::response(7, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    #[test]
    fn a_0x20_mismatch_is_dropped_and_the_attempt_keeps_its_deadline() {
        use crate::rng::Sequence;
        let list = servers(&[Protocol::Udp, Protocol::Udp]);
        let mut h = health(2);
        let t0 = Instant::now();
        // Letters c,r,a,w,l,t,e,s,t take bits 1,0,1,0,0,0,0,0,0.
        let question = crate::wire::Question::with_case(
            "crawl.test",
            hickory_proto::rr::RecordType::A,
            Some(&mut Sequence::new(&[0b101])),
        )
        .unwrap();
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        let mut seen = vec![show(&a.poll(&mut h, t0), t0)];
        // A forger who guessed the ID and the name but not the case: the
        // reply is no event, so the attempt still waits for its deadline.
        for forged in ["crawl.test", "CRAWL.TEST", "CrAwl.tesT"] {
            assert_eq!(reply_event(&reply(forged), &question), None, "{forged}");
        }
        // The deadline passes with nothing but forgeries: the next server.
        a.on_event(&mut h, t0 + 2000 * MS, Event::Timeout);
        seen.push(show(&a.poll(&mut h, t0 + 2000 * MS), t0));
        assert_eq!(reply_event(&reply("crawl.test"), &question), None);
        // The real answer echoes the case sent, 30 ms after the send.
        let event = reply_event(&reply("CrAwl.test"), &question).unwrap();
        a.on_event(&mut h, t0 + 2030 * MS, event);
        seen.push(show(&a.poll(&mut h, t0 + 2030 * MS), t0));
        assert_eq!(
            seen,
            [
                "send 0 Udp until 2000",
                "send 1 Udp until 4000 retry",
                "answered"
            ]
        );
        // Only the real answer was an RTT sample.
        assert_eq!(h.servers()[1].srtt, Some(30 * MS));
        assert_eq!(h.servers()[1].samples, 1);
        assert_eq!(h.servers()[0].samples, 0);
    }

    #[test]
    fn a_timeout_while_the_server_answers_others_is_the_query_s_not_the_server_s() {
        let list = servers(&[Protocol::Udp]);
        let mut h = health(1);
        let t0 = Instant::now();
        // Three down-making timeouts in a row, each while the server
        // answered other questions (a slow name, or a lost datagram).
        for i in 0..3u64 {
            let mut a = attempts(list.clone(), ONE_ROUND);
            let at = t0 + Duration::from_secs(10 * i);
            assert!(matches!(a.poll(&mut h, at), Action::Send { server: 0, .. }));
            h.success(0, 30 * MS);
            let effect = a.on_event(&mut h, at + 2000 * MS, Event::Timeout);
            assert!(!effect.server_went_down);
        }
        let zero = h.servers()[0];
        assert_eq!((zero.consecutive_failures, zero.down), (0, false));
        // The timeout stays what the RTT says (no back-off).
        assert_eq!(zero.timeout, 250 * MS);
        // Without answers in between, the same three make it down.
        for i in 0..3u64 {
            let mut a = attempts(list.clone(), ONE_ROUND);
            let at = t0 + Duration::from_secs(100 + 10 * i);
            assert!(matches!(a.poll(&mut h, at), Action::Send { server: 0, .. }));
            let effect = a.on_event(&mut h, at + 2000 * MS, Event::Timeout);
            assert_eq!(effect.server_went_down, i == 2);
        }
        assert!(h.servers()[0].down);
    }

    #[test]
    fn a_late_answer_to_an_earlier_attempt_answers_the_question() {
        let list = servers(&[Protocol::Udp, Protocol::Udp]);
        let mut h = health(2);
        let t0 = Instant::now();
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        let mut seen = run(&mut a, &mut h, t0, &[(2000, Event::Timeout)]);
        // Server 1 is being asked; server 0's query answers at 2.5 s.
        a.on_late_answer(&mut h, 0, t0, t0 + 2500 * MS);
        seen.push(show(&a.poll(&mut h, t0 + 2500 * MS), t0));
        assert_eq!(
            seen,
            [
                "send 0 Udp until 2000",
                "send 1 Udp until 4000 retry",
                "answered"
            ]
        );
        // The sample is server 0's, from its own send.
        assert_eq!(h.servers()[0].srtt, Some(2500 * MS));
        assert_eq!(h.servers()[1].samples, 0);
    }

    #[test]
    fn refused_and_servfail_move_on_at_once() {
        let list = servers(&[Protocol::Udp, Protocol::Udp]);
        let mut h = health(2);
        let t0 = Instant::now();
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        let seen = run(
            &mut a,
            &mut h,
            t0,
            &[
                (1, Event::ServerError(ErrorKind::Refused)),
                (3, Event::Answer),
            ],
        );
        assert_eq!(
            seen,
            [
                "send 0 Udp until 2000",
                "send 1 Udp until 2001 retry",
                "answered"
            ]
        );
        assert_eq!(h.servers()[0].consecutive_failures, 1);
        assert_eq!(h.servers()[1].srtt, Some(2 * MS));
    }

    #[test]
    fn truncation_falls_back_to_tcp_on_the_same_server() {
        let list = servers(&[Protocol::Udp, Protocol::Udp]);
        let mut h = health(2);
        let t0 = Instant::now();
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        let seen = run(
            &mut a,
            &mut h,
            t0,
            &[(10, Event::Truncated), (25, Event::Answer)],
        );
        assert_eq!(
            seen,
            [
                "send 0 Udp until 2000",
                // Not a retry: the same attempt, completed over TCP.
                "send 0 Tcp until 2010",
                "answered"
            ]
        );
        // The RTT measured is the TCP exchange's.
        assert_eq!(h.servers()[0].srtt, Some(15 * MS));
    }

    #[test]
    fn a_certificate_failure_moves_on_and_is_what_the_give_up_reports() {
        let list = servers(&[Protocol::Tls, Protocol::Https, Protocol::Tcp]);
        let mut h = health(3);
        let t0 = Instant::now();
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        let bad = || Event::Certificate {
            detail: "invalid peer certificate: UnknownIssuer".into(),
        };
        let seen = run(
            &mut a,
            &mut h,
            t0,
            &[
                (5, bad()),
                (7, bad()),
                (2007, Event::Timeout),
                (4007, Event::Timeout),
            ],
        );
        // Each server over its own transport, never UDP; the second round
        // skips the servers whose certificates failed; the certificate
        // failure outranks the timeouts, with its text kept.
        assert_eq!(
            seen,
            [
                "send 0 Tls until 2000",
                "send 1 Https until 2005 retry",
                "send 2 Tcp until 2007 retry",
                "send 2 Tcp until 4007 retry",
                "give up certificate after 0:certificate,1:certificate,2:timeout,2:timeout"
            ]
        );
        let mut a = attempts(list[..1].into(), ONE_ROUND);
        let mut h = health(1);
        a.poll(&mut h, t0);
        a.on_event(&mut h, t0, bad());
        let Action::GiveUp(gave_up) = a.poll(&mut h, t0) else {
            panic!("expected a give-up");
        };
        assert_eq!(
            gave_up.detail.as_deref(),
            Some("invalid peer certificate: UnknownIssuer")
        );
    }

    #[test]
    fn truncated_over_tcp_is_a_malformed_attempt() {
        let list = servers(&[Protocol::Tcp]);
        let mut h = health(1);
        let t0 = Instant::now();
        let mut a = attempts(list.clone(), ONE_ROUND);
        let seen = run(&mut a, &mut h, t0, &[(5, Event::Truncated)]);
        assert_eq!(
            seen,
            [
                "send 0 Tcp until 2000",
                "give up malformed after 0:malformed"
            ]
        );
    }

    #[test]
    fn the_timeout_adapts_to_the_rtt_and_backs_off() {
        let list = servers(&[Protocol::Udp]);
        let mut h = health(1);
        let t0 = Instant::now();
        // Three answers of 100 ms: the timeout becomes 5 × SRTT = 500 ms.
        for i in 0..3u64 {
            let start = t0 + Duration::from_millis(i * 1000);
            let mut a = attempts(list.clone(), TWO_ROUNDS);
            a.poll(&mut h, start);
            a.on_event(&mut h, start + 100 * MS, Event::Answer);
        }
        assert_eq!(h.timeout(0), 500 * MS);
        let start = t0 + Duration::from_millis(5000);
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        let seen = run(
            &mut a,
            &mut h,
            start,
            &[(500, Event::Timeout), (1500, Event::Timeout)],
        );
        assert_eq!(
            seen,
            [
                "send 0 Udp until 500",
                // Back-off: the timeout doubles after a timeout.
                "send 0 Udp until 1500 retry",
                "give up timeout after 0:timeout,0:timeout",
            ]
        );
        assert_eq!(h.timeout(0), 2000 * MS);
    }

    #[test]
    fn a_server_going_down_is_reported_once_and_skipped() {
        let list = servers(&[Protocol::Udp, Protocol::Udp]);
        let mut h = health(2);
        let t0 = Instant::now();
        let mut downs = 0;
        for i in 0..3u64 {
            let now = t0 + Duration::from_millis(i);
            let mut a = attempts(list.clone(), TWO_ROUNDS);
            assert!(matches!(
                a.poll(&mut h, now),
                Action::Send { server: 0, .. }
            ));
            let e = a.on_event(&mut h, now, Event::ServerError(ErrorKind::ServFail));
            downs += usize::from(e.server_went_down);
            assert!(matches!(
                a.poll(&mut h, now),
                Action::Send { server: 1, .. }
            ));
            a.on_event(&mut h, now + MS, Event::Answer);
        }
        assert_eq!(downs, 1);
        assert!(h.servers()[0].down);
        // Server 0 is left to the probes: only server 1 is asked now.
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        let seen = run(
            &mut a,
            &mut h,
            t0 + 10 * MS,
            &[(10, Event::Timeout), (20, Event::Timeout)],
        );
        assert_eq!(
            seen,
            [
                // Measured at 1 ms: the 250 ms floor, doubled after a timeout.
                "send 1 Udp until 250",
                "send 1 Udp until 510 retry",
                "give up timeout after 1:timeout,1:timeout",
            ]
        );
    }

    #[test]
    fn local_exhaustion_ends_the_question_at_once_without_blaming_the_server() {
        let list = servers(&[Protocol::Udp, Protocol::Udp]);
        let mut h = health(2);
        let t0 = Instant::now();
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        let seen = run(
            &mut a,
            &mut h,
            t0,
            &[(
                0,
                Event::Socket {
                    kind: ErrorKind::Resource,
                    detail: "Too many open files".into(),
                },
            )],
        );
        assert_eq!(
            seen,
            ["send 0 Udp until 2000", "give up resource after 0:resource"]
        );
        assert_eq!(h.servers()[0].consecutive_failures, 0);
    }

    #[test]
    fn an_io_error_keeps_its_detail_and_moves_on() {
        let list = servers(&[Protocol::Udp]);
        let mut h = health(1);
        let t0 = Instant::now();
        let mut a = attempts(list.clone(), ONE_ROUND);
        a.poll(&mut h, t0);
        a.on_event(
            &mut h,
            t0,
            Event::Socket {
                kind: ErrorKind::Io,
                detail: "connection refused".into(),
            },
        );
        match a.poll(&mut h, t0) {
            Action::GiveUp(g) => {
                assert_eq!(g.kind, ErrorKind::Io);
                assert_eq!(g.detail.as_deref(), Some("connection refused"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_closed_port_is_not_asked_again_for_the_question() {
        let list = servers(&[Protocol::Udp, Protocol::Udp]);
        let mut h = health(2);
        let t0 = Instant::now();
        // A refusing primary, a working secondary: one send each.
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        let seen = run(
            &mut a,
            &mut h,
            t0,
            &[(0, Event::PortClosed), (1, Event::Answer)],
        );
        assert_eq!(
            seen,
            [
                "send 0 Udp until 2000",
                "send 1 Udp until 2000 retry",
                "answered"
            ]
        );
        // A lone refusing server: one send, then the lookup fails at once.
        let list = servers(&[Protocol::Udp]);
        let mut h = health(1);
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        match run(&mut a, &mut h, t0, &[(0, Event::PortClosed)]).as_slice() {
            [send, give_up] => {
                assert_eq!(send, "send 0 Udp until 2000");
                assert_eq!(give_up, "give up io after 0:io");
            }
            other => panic!("{other:?}"),
        }
        let mut a = attempts(list.clone(), TWO_ROUNDS);
        a.poll(&mut h, t0);
        a.on_event(&mut h, t0, Event::PortClosed);
        match a.poll(&mut h, t0) {
            Action::GiveUp(g) => assert_eq!(g.detail.as_deref(), Some("connection refused")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_time_budget_ends_it_before_the_rounds_do() {
        let list = servers(&[Protocol::Udp, Protocol::Udp]);
        let mut h = health(2);
        let t0 = Instant::now();
        let mut a = attempts(
            list.clone(),
            Policy {
                rounds: 3,
                budget: Some(3000 * MS),
                extend: None,
            },
        );
        let seen = run(
            &mut a,
            &mut h,
            t0,
            &[(2000, Event::Timeout), (4000, Event::Timeout)],
        );
        assert_eq!(
            seen,
            [
                "send 0 Udp until 2000",
                "send 1 Udp until 4000 retry",
                "give up timeout after 0:timeout,1:timeout"
            ]
        );
    }

    /// Sends and outcomes of one question at one server, with the server
    /// answering other queries (`success`) between them or not.
    fn extended(answers_others: bool) -> Vec<String> {
        let list = servers(&[Protocol::Udp]);
        let mut h = health(1);
        for _ in 0..3 {
            h.success(0, 10 * MS);
        }
        assert_eq!(h.timeout(0), 250 * MS);
        let t0 = Instant::now();
        let mut a = attempts(
            list.clone(),
            Policy {
                rounds: 2,
                budget: None,
                extend: Some(4000 * MS),
            },
        );
        let mut seen = Vec::new();
        let mut now = t0;
        loop {
            let action = a.poll(&mut h, now);
            seen.push(show(&action, t0));
            let Action::Send { deadline, .. } = action else {
                return seen;
            };
            if answers_others {
                h.success(0, 10 * MS);
            }
            now = deadline;
            a.on_event(&mut h, now, Event::Timeout);
        }
    }

    #[test]
    fn lost_queries_at_a_live_server_are_asked_again_within_the_time_budget() {
        assert_eq!(
            extended(true),
            [
                "send 0 Udp until 250",
                "send 0 Udp until 500 retry",
                // Past the two rounds, each extra attempt waits twice as
                // long, the last one cut to the 4 s budget.
                "send 0 Udp until 1000 retry",
                "send 0 Udp until 2000 retry",
                "send 0 Udp until 4000 retry",
                "give up timeout after 0:timeout,0:timeout,0:timeout,0:timeout,0:timeout"
            ]
        );
    }

    #[test]
    fn a_server_that_answers_nothing_gets_no_attempts_past_the_rounds() {
        assert_eq!(
            extended(false),
            [
                "send 0 Udp until 250",
                // A timeout while the server answered nothing is a failure:
                // its timeout doubles (health.rs).
                "send 0 Udp until 750 retry",
                "give up timeout after 0:timeout,0:timeout"
            ]
        );
    }

    #[test]
    fn final_kind_prefers_what_servers_said() {
        let at = |outcome| Attempt {
            server: SocketAddr::from(([127, 0, 0, 1], 53)),
            outcome,
        };
        assert_eq!(final_kind(&[]), ErrorKind::Timeout);
        assert_eq!(
            final_kind(&[at(ErrorKind::Timeout), at(ErrorKind::Io)]),
            ErrorKind::Io
        );
        assert_eq!(
            final_kind(&[at(ErrorKind::Timeout), at(ErrorKind::Refused)]),
            ErrorKind::Refused
        );
    }
}
