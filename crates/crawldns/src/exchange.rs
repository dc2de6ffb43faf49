//! The wire-level driver: performs the actions of one question's
//! [`Attempts`] (sends over UDP, pipelined TCP, TLS or HTTPS, waits, reports
//! what came back) and follows CNAME chains across queries. The decisions
//! are `attempts.rs`'s; no cache here.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, TryAcquireError};
use tokio::time::Instant;

use crate::answer::{self, display_name, Reading, RecordValue};
use crate::attempts::{Action, Attempts, Event, Plan, Policy, Transport};
use crate::config::{NameServer, Protocol, ResolverConfig};
use crate::error::{describe_io, io_kind, Error, ErrorKind};
use crate::health::Health;
use crate::late_answers::{self, LateAnswers, Waited};
use crate::metrics::Metrics;
use crate::probe::{self, Probe};
use crate::rearm::Rearm;
use crate::records::{Answer, Lookup, QueryType};
use crate::rng::{self, Random};
use crate::transport::doh::{DohClient, DohSettings};
use crate::transport::pipeline::{StreamPool, StreamSettings};
use crate::transport::tcp::TcpDial;
use crate::transport::tls::{TlsDial, TlsOptions, TlsSetupError};
use crate::transport::udp::{Begun, UdpPool, UdpSettings};
use crate::transport::{StreamError, StreamExchange, TransportError};
use crate::wire::Question;

/// A wire resolution's outcome, with the negative TTL the cache needs.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub result: Result<Lookup, Error>,
    /// From the SOA of an NXDOMAIN/NODATA answer (RFC 2308 §5).
    pub negative_ttl: Option<u32>,
}

/// The connections of an encrypted server: each has its own certificate
/// name to verify, so its own client.
enum Encrypted {
    Tls(StreamPool<TlsDial>),
    Https(DohClient),
}

/// Sockets, connections, server health and counters, shared by every clone
/// of a resolver.
pub(crate) struct Core {
    pub config: ResolverConfig,
    /// The configured nameservers and the policy every question's attempts
    /// share.
    pub plan: Arc<Plan>,
    pub udp: UdpPool,
    /// Pipelined TCP to every server that needs it (TCP servers, and UDP
    /// servers' truncated answers).
    tcp: StreamPool<TcpDial>,
    /// Per configured server (same index): its TLS or HTTPS client.
    encrypted: Vec<Option<Encrypted>>,
    pub health: Mutex<Health>,
    pub metrics: Arc<Metrics>,
    slots: Semaphore,
    probing: AtomicBool,
}

impl Core {
    /// Opens nothing yet: sockets and connections are opened on first use.
    /// Fails when an encrypted server's TLS client cannot be set up.
    pub fn new(config: ResolverConfig) -> Result<Self, Error> {
        let encrypted = encrypted_clients(&config)?;
        let tcp = StreamPool::new(TcpDial, stream_settings(&config, false));
        let metrics = Arc::new(Metrics::default());
        let servers: Vec<_> = config.nameservers.iter().map(|s| s.addr).collect();
        let udp = UdpPool::new(
            &servers,
            UdpSettings {
                sockets: config.udp_sockets,
                queries_per_socket: config.queries_per_socket.max(1),
                recv_buffer: config.recv_buffer,
                payload: config.edns_payload,
                exact_case: config.case_randomization,
                batching: config.batching,
            },
            metrics.clone(),
        );
        let health = Health::new(
            config.nameservers.len(),
            config.timeout,
            config.min_timeout,
            config.down_after_failures,
            config.rotate,
        );
        Ok(Self {
            plan: Arc::new(Plan {
                servers: config.nameservers.clone().into(),
                policy: Policy {
                    rounds: config.attempts,
                    budget: None,
                    extend: Some(late_answers::budget(config.timeout, config.attempts)),
                },
            }),
            slots: Semaphore::new(config.max_in_flight),
            health: Mutex::new(health),
            udp,
            tcp,
            encrypted,
            metrics,
            probing: AtomicBool::new(false),
            config,
        })
    }

    /// TCP, TLS and HTTP/2 connections opened so far.
    pub fn connections_opened(&self) -> u64 {
        let encrypted: u64 = self
            .encrypted
            .iter()
            .flatten()
            .map(|client| match client {
                Encrypted::Tls(pool) => pool.stats().opened,
                Encrypted::Https(doh) => doh.stats().opened,
            })
            .sum();
        self.tcp.stats().opened + encrypted
    }
}

impl Core {
    /// Resolves `name` (normalized) for one type, following CNAMEs across
    /// queries when an answer stops at a target it does not resolve.
    ///
    /// The lookup holds one of the `max_in_flight` slots while it is on the
    /// wire. Past `max_in_flight`, most pending lookups are waiting for a
    /// slot, and that wait is all they hold: the state of a lookup on the
    /// wire (its questions, CNAME steps, attempts and sends) is allocated,
    /// boxed, once it has a slot, and so is bounded by `max_in_flight`
    /// where pending lookups are bounded only by `max_pending`.
    pub(crate) async fn resolve(self: &Arc<Self>, name: &str, query_type: QueryType) -> Resolved {
        let slot = match self.slots.try_acquire() {
            Ok(slot) => Some(slot),
            // Boxed too: the wait's state is needed only by the lookups
            // that queue.
            Err(TryAcquireError::NoPermits) => Box::pin(self.slots.acquire()).await.ok(),
            Err(TryAcquireError::Closed) => None,
        };
        let (result, negative_ttl) = match slot {
            Some(_slot) => Box::pin(self.resolve_on_wire(name, query_type)).await,
            None => (
                Err(Error::new(ErrorKind::Resource, name).with_detail("resolver shut down")),
                None,
            ),
        };
        if let Err(err) = &result {
            self.metrics.failure(err.kind());
        }
        Resolved {
            result,
            negative_ttl,
        }
    }

    /// [`Core::resolve`] once it holds its slot: the outcome, and the
    /// negative TTL of a negative answer.
    async fn resolve_on_wire(
        self: &Arc<Self>,
        name: &str,
        query_type: QueryType,
    ) -> (Result<Lookup, Error>, Option<u32>) {
        let randomize = self.config.case_randomization;
        let mut question = match Question::new(name, query_type.wire(), randomize) {
            Ok(question) => question,
            Err(why) => {
                return (
                    Err(Error::new(ErrorKind::InvalidName, name).with_detail(why)),
                    None,
                )
            }
        };
        let mut chain: Vec<String> = Vec::new();
        let mut ttl = u32::MAX;
        while chain.len() <= self.config.max_cname_depth {
            let message = match self.drive(name, &question).await {
                Ok(message) => message,
                Err(err) => return (Err(err), None),
            };
            let remaining = self.config.max_cname_depth - chain.len();
            // `judge` let through only answers that echo exactly one
            // question, the one sent.
            let Some(echoed) = message.queries.first() else {
                return (Err(Error::new(ErrorKind::Malformed, name)), None);
            };
            match step(
                &message,
                echoed.name(),
                name,
                query_type,
                remaining,
                &mut chain,
                &mut ttl,
            ) {
                Step::Done(result, negative) => return (result, negative),
                Step::Follow(target) => {
                    question = match Question::for_name(&target, question.rtype(), randomize) {
                        Ok(question) => question,
                        Err(why) => {
                            let err = Error::new(ErrorKind::CnameChain, name)
                                .with_detail(format!("CNAME target {target}: {why}"));
                            return (Err(err), None);
                        }
                    };
                }
            }
        }
        (Err(Error::new(ErrorKind::CnameChain, name)), None)
    }

    /// Gets `question` answered: performs the actions of its [`Attempts`]
    /// until it is answered or given up.
    async fn drive(self: &Arc<Self>, name: &str, question: &Question) -> Result<Message, Error> {
        // Latency is the wire's: it starts once the query holds its slot,
        // so a queue behind max_in_flight does not read as a slow server.
        let started = Instant::now();
        // Boxed, as the answer below: held across every wait, they made the
        // flight's boxed work larger (1,400 bytes) than glibc's per-thread
        // cache serves (1 KiB), so every lookup took malloc's path for large
        // chunks; boxed apart, each piece is served from that cache.
        let mut attempts = Box::new(Attempts::new(self.plan.clone()));
        let mut answer: Option<Box<Message>> = None;
        let mut last_io = None;
        let mut late = LateAnswers::default();
        let mut first_sent = None;
        let result = loop {
            // The action is taken apart in a block of its own, so that it
            // is not kept across the send's wait below.
            let (server, transport, deadline, retry, backoff) = {
                let action = attempts.poll(&mut self.health.lock(), Instant::now().into_std());
                match action {
                    Action::Send {
                        server,
                        transport,
                        deadline,
                        retry,
                        backoff,
                    } => (server, transport, deadline, retry, backoff),
                    Action::Answered => {
                        break answer
                            .map(|message| *message)
                            .ok_or_else(|| Error::new(ErrorKind::Malformed, name));
                    }
                    Action::GiveUp(gave_up) => {
                        // The attempts are used up; a slow name's first
                        // queries may still be answered.
                        if gave_up.kind == ErrorKind::Timeout {
                            if let Some(message) =
                                self.wait_late(&mut late, &mut attempts, first_sent).await
                            {
                                answer = Some(Box::new(message));
                                continue;
                            }
                        }
                        break Err(give_up_error(name, gave_up, last_io));
                    }
                }
            };
            if retry {
                Metrics::add(&self.metrics.retries);
            }
            let sent = Instant::now();
            first_sent.get_or_insert(sent);
            let result = if transport == Transport::Udp {
                match self
                    .send_udp(&mut late, server, question, deadline, backoff)
                    .await
                {
                    UdpSent::Result(result) => result,
                    UdpSent::Late {
                        server,
                        sent,
                        message,
                    } => {
                        // An earlier attempt's answer came first.
                        self.on_late_answer(&mut attempts, server, sent);
                        answer = Some(Box::new(message));
                        continue;
                    }
                }
            } else {
                // Boxed: a stream exchange's state would otherwise be part
                // of every lookup's, though most go over UDP.
                Box::pin(self.send(server, transport, question, deadline)).await
            };
            let event = self.judge(result, &mut answer, &mut last_io);
            let addr = self.config.nameservers[server].addr;
            tracing::debug!(
                name,
                qtype = %question.rtype(),
                server = %addr,
                transport = ?transport,
                rtt_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX),
                verdict = ?event,
                "query"
            );
            let effect =
                attempts.on_event(&mut self.health.lock(), Instant::now().into_std(), event);
            if effect.server_went_down {
                tracing::warn!(
                    server = %addr,
                    failures = self.config.down_after_failures,
                    "nameserver marked down after failures in a row; probing it"
                );
                probe::start(self, self.config.probe_interval);
            }
        };
        self.metrics.record_latency(started.elapsed());
        result
    }

    /// When a question's attempts are used up: waits, within its budget
    /// from `first_sent`, for the queries of its timed-out attempts whose
    /// server is answering others (see `late_answers.rs`).
    async fn wait_late(
        &self,
        late: &mut LateAnswers,
        attempts: &mut Attempts,
        first_sent: Option<Instant>,
    ) -> Option<Message> {
        if !late.retain_alive(&self.health.lock()) {
            return None;
        }
        let budget = late_answers::budget(self.config.timeout, self.config.attempts);
        let budget_end = first_sent.unwrap_or_else(Instant::now) + budget;
        match late.wait_late(budget_end).await? {
            Waited::Late {
                server,
                sent,
                message,
            } => {
                self.on_late_answer(attempts, server, sent);
                Some(message)
            }
            Waited::This(_) | Waited::Deadline => None,
        }
    }

    /// An earlier attempt's query, to `server` at `sent`, was answered now:
    /// counted as an answer and a late one, and told to the attempts.
    fn on_late_answer(&self, attempts: &mut Attempts, server: usize, sent: Instant) {
        Metrics::add(&self.metrics.answers);
        Metrics::add(&self.metrics.late_answers);
        attempts.on_late_answer(
            &mut self.health.lock(),
            server,
            sent.into_std(),
            Instant::now().into_std(),
        );
    }

    /// One UDP attempt: sends `question` to `server` and waits until
    /// `deadline`, listening to the question's earlier queries too. A query
    /// that times out keeps listening in `late`.
    async fn send_udp(
        &self,
        late: &mut LateAnswers,
        server: usize,
        question: &Question,
        deadline: std::time::Instant,
        backoff: u32,
    ) -> UdpSent {
        let addr = self.config.nameservers[server].addr;
        let answers_at_send = self.health.lock().answers(server);
        let sent = Instant::now();
        // Matched in one statement, so that nothing of the start is kept
        // across the wait below.
        let mut query = match match self.udp.begin(addr, question) {
            Begun::Sent(started) => started,
            Begun::Sending(send) => send.await,
        } {
            Ok(query) => query,
            Err(err) => return UdpSent::Result(Err(StreamError::from(err))),
        };
        // Sent to an unmeasured server, the deadline is the configured
        // timeout: re-armed once answers to others have measured it (times
        // the attempt's back-off).
        let mut rearm = Rearm::new(sent.into_std(), deadline, self.config.min_timeout);
        // One timer for the attempt, re-armed in place.
        let sleep = tokio::time::sleep_until(Instant::from_std(rearm.wake_at()));
        tokio::pin!(sleep);
        loop {
            sleep.as_mut().reset(Instant::from_std(rearm.wake_at()));
            let waited = late.wait_first(&mut query, sleep.as_mut()).await;
            return match waited {
                Waited::This(result) => UdpSent::Result(result.map_err(StreamError::from)),
                Waited::Late {
                    server,
                    sent,
                    message,
                } => UdpSent::Late {
                    server,
                    sent,
                    message,
                },
                Waited::Deadline => {
                    let timeout_now = self.health.lock().timeout(server).saturating_mul(backoff);
                    if !rearm.expired(Instant::now().into_std(), timeout_now) {
                        continue;
                    }
                    late.keep(server, sent, answers_at_send, query);
                    UdpSent::Result(Err(StreamError::from(TransportError::Timeout)))
                }
            };
        }
    }

    /// One send to configured server `server` over `transport`, waiting
    /// until `deadline`.
    async fn send(
        &self,
        server: usize,
        transport: Transport,
        question: &Question,
        deadline: std::time::Instant,
    ) -> StreamExchange {
        let addr = self.config.nameservers[server].addr;
        let timeout = Instant::from_std(deadline).saturating_duration_since(Instant::now());
        let mut next_id = || rng::system().id();
        match (
            transport,
            self.encrypted.get(server).and_then(Option::as_ref),
        ) {
            (Transport::Udp, _) => self
                .udp
                .query(addr, question, timeout)
                .await
                .map_err(StreamError::from),
            (Transport::Tcp, _) => {
                Metrics::add(&self.metrics.tcp_sent);
                self.tcp.query(addr, question, timeout, &mut next_id).await
            }
            (Transport::Tls, Some(Encrypted::Tls(pool))) => {
                Metrics::add(&self.metrics.tls_sent);
                pool.query(addr, question, timeout, &mut next_id).await
            }
            (Transport::Https, Some(Encrypted::Https(doh))) => {
                Metrics::add(&self.metrics.https_sent);
                doh.query(addr, question, timeout).await
            }
            // `encrypted_clients` made one for every TLS and HTTPS server:
            // unreachable, but never a send in the clear.
            (Transport::Tls | Transport::Https, _) => Err(StreamError::io(
                std::io::ErrorKind::NotConnected,
                format!("no TLS client for {addr}"),
            )),
        }
    }

    /// What a send's result means to the attempts, counted; an answer to
    /// act on is kept in `answer`, a socket error in `last_io`.
    fn judge(
        &self,
        result: StreamExchange,
        answer: &mut Option<Box<Message>>,
        last_io: &mut Option<std::io::Error>,
    ) -> Event {
        match result {
            Ok(message) if message.metadata.truncation => {
                Metrics::add(&self.metrics.truncated);
                Event::Truncated
            }
            Ok(message) => match message.metadata.response_code {
                ResponseCode::NoError | ResponseCode::NXDomain => {
                    Metrics::add(&self.metrics.answers);
                    *answer = Some(Box::new(message));
                    Event::Answer
                }
                rcode => {
                    Metrics::add(&self.metrics.server_errors);
                    Event::ServerError(match rcode {
                        ResponseCode::ServFail => ErrorKind::ServFail,
                        ResponseCode::Refused => ErrorKind::Refused,
                        _ => ErrorKind::Malformed,
                    })
                }
            },
            Err(StreamError::Verification(detail)) => Event::Certificate { detail },
            Err(StreamError::Transport(TransportError::Timeout)) => {
                Metrics::add(&self.metrics.timeouts);
                Event::Timeout
            }
            Err(StreamError::Transport(TransportError::Malformed)) => {
                Metrics::add(&self.metrics.malformed);
                Event::Malformed
            }
            Err(StreamError::Transport(TransportError::Io(err)))
                if err.kind() == std::io::ErrorKind::ConnectionRefused =>
            {
                *last_io = Some(err);
                Event::PortClosed
            }
            Err(StreamError::Transport(TransportError::Io(err))) => {
                let event = Event::Socket {
                    kind: io_kind(&err),
                    detail: describe_io(&err),
                };
                *last_io = Some(err);
                event
            }
        }
    }
}

impl Probe for Core {
    fn probing(&self) -> &AtomicBool {
        &self.probing
    }

    fn down_servers(&self) -> Vec<usize> {
        self.health.lock().down()
    }

    async fn probe(&self, server: usize) {
        let Ok(question) = Question::new("", RecordType::NS, false) else {
            return;
        };
        let Some(ns) = self.config.nameservers.get(server) else {
            return;
        };
        Metrics::add(&self.metrics.probes);
        let started = Instant::now();
        let deadline = (started + self.config.timeout).into_std();
        let transport = Transport::of(ns.protocol);
        let mut result = self.send(server, transport, &question, deadline).await;
        if transport == Transport::Udp && matches!(&result, Ok(m) if m.metadata.truncation) {
            result = self.send(server, Transport::Tcp, &question, deadline).await;
        }
        // Any answer but SERVFAIL shows the server is serving again.
        if let Ok(message) = result {
            if message.metadata.response_code != ResponseCode::ServFail {
                self.health
                    .lock()
                    .probe_succeeded(server, started.elapsed());
                tracing::info!(server = %ns.addr, "nameserver answers probes again: up");
            }
        }
    }
}

/// The pipelined-stream settings of `config`: padded for TLS (RFC 8467).
fn stream_settings(config: &ResolverConfig, padded: bool) -> StreamSettings {
    StreamSettings {
        max_connections: config.stream_connections,
        payload: config.edns_payload,
        exact_case: config.case_randomization,
        padded,
        ..StreamSettings::default()
    }
}

/// A TLS or HTTPS client for every encrypted server of `config` (`None`
/// for the others), trusting the webpki roots and `config.ca_file`.
fn encrypted_clients(config: &ResolverConfig) -> Result<Vec<Option<Encrypted>>, Error> {
    let wants_tls = config.nameservers.iter().any(|s| s.protocol.is_encrypted());
    let ca_pem = match (&config.ca_file, wants_tls) {
        (Some(path), true) => Some(std::fs::read(path).map_err(|e| {
            Error::new(ErrorKind::Config, path.display().to_string())
                .with_detail(format!("cannot read the CA file: {e}"))
        })?),
        _ => None,
    };
    let setup_error = |server: &NameServer, err: TlsSetupError| {
        Error::new(ErrorKind::Config, server.url()).with_detail(err.to_string())
    };
    config
        .nameservers
        .iter()
        .map(|server| {
            if !server.protocol.is_encrypted() {
                return Ok(None);
            }
            let mut options = TlsOptions::new(server.verified_name());
            if let Some(pem) = &ca_pem {
                options = options.with_ca_pem(pem);
            }
            let client = match server.protocol {
                Protocol::Tls => TlsDial::new(&options).map(|dial| {
                    Encrypted::Tls(StreamPool::new(dial, stream_settings(config, true)))
                }),
                _ => DohClient::new(
                    &options,
                    DohSettings {
                        path: server
                            .path
                            .clone()
                            .unwrap_or_else(|| crate::transport::endpoint::DEFAULT_DOH_PATH.into()),
                        use_get: config.doh_get,
                        payload: config.edns_payload,
                        exact_case: config.case_randomization,
                    },
                )
                .map(Encrypted::Https),
            };
            client.map(Some).map_err(|err| setup_error(server, err))
        })
        .collect()
}

/// What a UDP attempt gave.
enum UdpSent {
    /// Its own result.
    Result(StreamExchange),
    /// An earlier attempt's answer.
    Late {
        server: usize,
        sent: Instant,
        message: Message,
    },
}

/// The error a question gave up with.
pub(crate) fn give_up_error(
    name: &str,
    gave_up: crate::attempts::GiveUp,
    last_io: Option<std::io::Error>,
) -> Error {
    let mut error = Error::new(gave_up.kind, name);
    match (gave_up.detail, last_io) {
        (Some(_), Some(io)) => error = error.with_io_source(io),
        (Some(detail), None) => error = error.with_detail(detail),
        _ => {}
    }
    error.with_attempts(gave_up.attempts)
}

/// What one answer means for a lookup of `name` (normalized) whose
/// question echoed `qname`: its outcome (with the negative TTL of a
/// negative answer), or a CNAME target to ask next. `chain` and `ttl`
/// accumulate over the steps of one lookup.
pub(crate) fn step(
    message: &Message,
    qname: &hickory_proto::rr::Name,
    name: &str,
    query_type: QueryType,
    remaining: usize,
    chain: &mut Vec<String>,
    ttl: &mut u32,
) -> Step {
    match answer::read(message, qname, query_type.wire(), remaining) {
        Reading::Records {
            chain: more,
            data,
            ttl: t,
        } => {
            chain.extend(more.iter().map(display_name));
            let mut ips = Vec::new();
            let mut target = None;
            let mut records = Vec::new();
            for value in data {
                match value {
                    RecordValue::Ip(ip) => ips.push(ip),
                    RecordValue::Name(n) => target = target.or(Some(display_name(&n))),
                    RecordValue::Data(data) => records.push(data),
                }
            }
            Step::Done(
                Ok(Lookup::new(
                    Answer {
                        name: name.to_string(),
                        query_type,
                        ips: ips.into(),
                        target,
                        records,
                        chain: std::mem::take(chain),
                    },
                    (*ttl).min(t),
                    0,
                )),
                None,
            )
        }
        Reading::Follow {
            chain: more,
            target,
            ttl: t,
        } => {
            chain.extend(more.iter().map(display_name));
            *ttl = (*ttl).min(t);
            Step::Follow(target)
        }
        Reading::NxDomain { negative_ttl } => {
            Step::Done(Err(Error::new(ErrorKind::NxDomain, name)), negative_ttl)
        }
        Reading::NoData { negative_ttl } => {
            Step::Done(Err(Error::new(ErrorKind::NoData, name)), negative_ttl)
        }
        Reading::CnameChain => Step::Done(Err(Error::new(ErrorKind::CnameChain, name)), None),
        Reading::Rcode(rcode) => Step::Done(
            Err(Error::new(ErrorKind::Malformed, name)
                .with_detail(format!("unexpected rcode {rcode}"))),
            None,
        ),
    }
}

/// One answer's meaning for a lookup (see [`step`]).
pub(crate) enum Step {
    /// The lookup's outcome, and a negative answer's TTL.
    Done(Result<Lookup, Error>, Option<u32>),
    /// Ask for this CNAME target next.
    Follow(hickory_proto::rr::Name),
}
