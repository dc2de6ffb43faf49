//! The wire-level driver: performs the actions of one question's
//! [`Attempts`] (sends over UDP or TCP, waits, reports what came back) and
//! follows CNAME chains across queries. The decisions are `attempts.rs`'s;
//! no cache here.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::answer::{self, display_name, Reading, RecordValue};
use crate::attempts::{Action, Attempts, Event, Policy, Transport};
use crate::config::ResolverConfig;
use crate::error::{describe_io, io_kind, Error, ErrorKind};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::probe::{self, Probe};
use crate::records::{Lookup, QueryType};
use crate::transport::udp::{UdpPool, UdpSettings};
use crate::transport::{tcp, Exchange, TransportError};
use crate::wire::Question;

/// A wire resolution's outcome, with the negative TTL the cache needs.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub result: Result<Lookup, Error>,
    /// From the SOA of an NXDOMAIN/NODATA answer (RFC 2308 §5).
    pub negative_ttl: Option<u32>,
}

/// Sockets, server health and counters, shared by every clone of a resolver.
pub(crate) struct Core {
    pub config: ResolverConfig,
    pub udp: UdpPool,
    pub health: Mutex<Health>,
    pub metrics: Arc<Metrics>,
    slots: Semaphore,
    probing: AtomicBool,
}

impl Core {
    /// Opens nothing yet: sockets are opened on first use.
    pub fn new(config: ResolverConfig) -> Self {
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
        Self {
            slots: Semaphore::new(config.max_in_flight),
            health: Mutex::new(health),
            udp,
            metrics,
            probing: AtomicBool::new(false),
            config,
        }
    }

    fn policy(&self) -> Policy {
        Policy {
            rounds: self.config.attempts,
            budget: None,
        }
    }
}

impl Core {
    /// Resolves `name` (normalized) for one type, following CNAMEs across
    /// queries when an answer stops at a target it does not resolve.
    pub(crate) async fn resolve(self: &Arc<Self>, name: &str, query_type: QueryType) -> Resolved {
        let mut negative_ttl = None;
        let result = self
            .resolve_chain(name, query_type, &mut negative_ttl)
            .await;
        if let Err(err) = &result {
            self.metrics.failure(err.kind());
        }
        Resolved {
            result,
            negative_ttl,
        }
    }

    async fn resolve_chain(
        self: &Arc<Self>,
        name: &str,
        query_type: QueryType,
        negative_ttl: &mut Option<u32>,
    ) -> Result<Lookup, Error> {
        let rtype = query_type.wire();
        let max_depth = self.config.max_cname_depth;
        let randomize = self.config.case_randomization;
        let mut question = Question::new(name, rtype, randomize)
            .map_err(|why| Error::new(ErrorKind::InvalidName, name).with_detail(why))?;
        let mut chain: Vec<String> = Vec::new();
        let mut ttl = u32::MAX;
        while chain.len() <= max_depth {
            let message = self.exchange(name, &question).await?;
            let remaining = max_depth - chain.len();
            // `judge` let through only answers that echo exactly one
            // question, the one sent.
            let Some(echoed) = message.queries.first() else {
                return Err(Error::new(ErrorKind::Malformed, name));
            };
            match answer::read(&message, echoed.name(), rtype, remaining) {
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
                    return Ok(Lookup {
                        name: name.to_string(),
                        query_type,
                        ips: ips.into(),
                        target,
                        records,
                        chain,
                        ttl: ttl.min(t),
                        cache_ttl: 0,
                    });
                }
                Reading::Follow {
                    chain: more,
                    target,
                    ttl: t,
                } => {
                    chain.extend(more.iter().map(display_name));
                    ttl = ttl.min(t);
                    question = Question::for_name(&target, rtype, randomize).map_err(|why| {
                        Error::new(ErrorKind::CnameChain, name)
                            .with_detail(format!("CNAME target {target}: {why}"))
                    })?;
                }
                Reading::NxDomain { negative_ttl: t } => {
                    *negative_ttl = t;
                    return Err(Error::new(ErrorKind::NxDomain, name));
                }
                Reading::NoData { negative_ttl: t } => {
                    *negative_ttl = t;
                    return Err(Error::new(ErrorKind::NoData, name));
                }
                Reading::CnameChain => return Err(Error::new(ErrorKind::CnameChain, name)),
                Reading::Rcode(rcode) => {
                    return Err(Error::new(ErrorKind::Malformed, name)
                        .with_detail(format!("unexpected rcode {rcode}")))
                }
            }
        }
        Err(Error::new(ErrorKind::CnameChain, name))
    }

    /// Gets `question` answered, holding one of the `max_in_flight` slots.
    async fn exchange(self: &Arc<Self>, name: &str, question: &Question) -> Result<Message, Error> {
        let _slot =
            self.slots.acquire().await.map_err(|_| {
                Error::new(ErrorKind::Resource, name).with_detail("resolver shut down")
            })?;
        // Latency is the wire's: it starts once the query holds its slot,
        // so a queue behind max_in_flight does not read as a slow server.
        let started = Instant::now();
        let result = self.drive(name, question).await;
        self.metrics.record_latency(started.elapsed());
        result
    }

    /// Performs the actions of the question's [`Attempts`] until it is
    /// answered or given up.
    async fn drive(self: &Arc<Self>, name: &str, question: &Question) -> Result<Message, Error> {
        let mut attempts = Attempts::new(&self.config.nameservers, self.policy());
        let mut answer = None;
        let mut last_io = None;
        loop {
            let action = attempts.poll(&mut self.health.lock(), Instant::now().into_std());
            match action {
                Action::Send {
                    server,
                    transport,
                    deadline,
                    retry,
                } => {
                    if retry {
                        Metrics::add(&self.metrics.retries);
                    }
                    let addr = self.config.nameservers[server].addr;
                    let sent = Instant::now();
                    let result = self.send(addr, transport, question, deadline).await;
                    let event = self.judge(result, &mut answer, &mut last_io);
                    tracing::debug!(
                        name,
                        qtype = %question.rtype(),
                        server = %addr,
                        transport = ?transport,
                        rtt_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX),
                        verdict = ?event,
                        "query"
                    );
                    let effect = attempts.on_event(
                        &mut self.health.lock(),
                        Instant::now().into_std(),
                        event,
                    );
                    if effect.server_went_down {
                        probe::start(self, self.config.probe_interval);
                    }
                }
                Action::Answered => {
                    return answer.ok_or_else(|| Error::new(ErrorKind::Malformed, name));
                }
                Action::GiveUp(gave_up) => {
                    let mut error = Error::new(gave_up.kind, name);
                    match (gave_up.detail, last_io) {
                        (Some(_), Some(io)) => error = error.with_io_source(io),
                        (Some(detail), None) => error = error.with_detail(detail),
                        _ => {}
                    }
                    return Err(error.with_attempts(gave_up.attempts));
                }
            }
        }
    }

    /// One send over `transport`, waiting until `deadline`.
    async fn send(
        &self,
        server: SocketAddr,
        transport: Transport,
        question: &Question,
        deadline: std::time::Instant,
    ) -> Exchange {
        let timeout = Instant::from_std(deadline).saturating_duration_since(Instant::now());
        match transport {
            // The TCP exchange is boxed: it is rare, and inline its state
            // would make every lookup's future (and single-flight's copy of
            // it) several times larger.
            Transport::Tcp => {
                Metrics::add(&self.metrics.tcp_sent);
                let payload = self.config.edns_payload;
                Box::pin(tcp::query(server, question, payload, timeout)).await
            }
            Transport::Udp => self.udp.query(server, question, timeout).await,
        }
    }

    /// What a send's result means to the attempts, counted; an answer to
    /// act on is kept in `answer`, a socket error in `last_io`.
    fn judge(
        &self,
        result: Exchange,
        answer: &mut Option<Message>,
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
                    *answer = Some(message);
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
            Err(TransportError::Timeout) => {
                Metrics::add(&self.metrics.timeouts);
                Event::Timeout
            }
            Err(TransportError::Malformed) => {
                Metrics::add(&self.metrics.malformed);
                Event::Malformed
            }
            Err(TransportError::Io(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                *last_io = Some(err);
                Event::PortClosed
            }
            Err(TransportError::Io(err)) => {
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
        let Some(ns) = self.config.nameservers.get(server).copied() else {
            return;
        };
        Metrics::add(&self.metrics.probes);
        let started = Instant::now();
        let deadline = (started + self.config.timeout).into_std();
        let transport = match ns.protocol {
            crate::config::Protocol::Tcp => Transport::Tcp,
            crate::config::Protocol::Udp => Transport::Udp,
        };
        let mut result = self.send(ns.addr, transport, &question, deadline).await;
        if transport == Transport::Udp && matches!(&result, Ok(m) if m.metadata.truncation) {
            result = self
                .send(ns.addr, Transport::Tcp, &question, deadline)
                .await;
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
