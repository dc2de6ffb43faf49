//! The wire-level core: getting one question answered by the configured
//! servers (attempts, failover, TCP fallback, probes of down servers) and
//! following CNAME chains across queries. No cache here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::answer::{self, Reading, RecordValue};
use crate::config::{Protocol, ResolverConfig};
use crate::error::{io_kind, Attempt, Error, ErrorKind};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::resolver::{Lookup, QueryType};
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
                    let mut ips = Vec::with_capacity(data.len());
                    let mut target = None;
                    for value in data {
                        match value {
                            RecordValue::Ip(ip) => ips.push(ip),
                            RecordValue::Name(n) => target = target.or(Some(display_name(&n))),
                        }
                    }
                    return Ok(Lookup {
                        name: name.to_string(),
                        query_type,
                        ips: ips.into(),
                        target,
                        chain,
                        ttl: ttl.min(t),
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

    /// Gets `question` answered: every server once per round, in health
    /// order, for `attempts` rounds; SERVFAIL, REFUSED, malformed answers and
    /// timeouts move on to the next server (RFC 1035 §4.2.1).
    async fn exchange(
        self: &Arc<Self>,
        name: &str,
        question: &Question,
    ) -> Result<hickory_proto::op::Message, Error> {
        let _slot =
            self.slots.acquire().await.map_err(|_| {
                Error::new(ErrorKind::Resource, name).with_detail("resolver shut down")
            })?;
        // Latency is the wire's: it starts once the query holds its slot,
        // so a queue behind max_in_flight does not read as a slow server.
        let started = Instant::now();
        let result = self.exchange_in_slot(name, question).await;
        self.metrics.record_latency(started.elapsed());
        result
    }

    async fn exchange_in_slot(
        self: &Arc<Self>,
        name: &str,
        question: &Question,
    ) -> Result<hickory_proto::op::Message, Error> {
        let mut attempts: Vec<Attempt> = Vec::new();
        // What the last I/O error said ("Connection refused"): the kind
        // alone would not tell a user why.
        let mut io_detail: Option<String> = None;
        for _round in 0..self.config.attempts {
            let order = self.health.lock().order();
            for index in order {
                if !attempts.is_empty() {
                    Metrics::add(&self.metrics.retries);
                }
                let server = self.config.nameservers[index];
                let timeout = self.health.lock().timeout(index);
                let started = Instant::now();
                let result = self
                    .ask(server.addr, server.protocol, question, timeout)
                    .await;
                let outcome = match result {
                    Ok(message) => match message.metadata.response_code {
                        ResponseCode::NoError | ResponseCode::NXDomain => {
                            self.health.lock().success(index, started.elapsed());
                            Metrics::add(&self.metrics.answers);
                            return Ok(message);
                        }
                        rcode => {
                            Metrics::add(&self.metrics.server_errors);
                            match rcode {
                                ResponseCode::ServFail => ErrorKind::ServFail,
                                ResponseCode::Refused => ErrorKind::Refused,
                                _ => ErrorKind::Malformed,
                            }
                        }
                    },
                    Err(TransportError::Timeout) => {
                        Metrics::add(&self.metrics.timeouts);
                        ErrorKind::Timeout
                    }
                    Err(TransportError::Malformed) => {
                        Metrics::add(&self.metrics.malformed);
                        ErrorKind::Malformed
                    }
                    Err(TransportError::Io(err)) => {
                        let kind = io_kind(&err);
                        if kind == ErrorKind::Resource {
                            attempts.push(Attempt {
                                server: server.addr,
                                outcome: kind,
                            });
                            return Err(Error::new(kind, name)
                                .with_detail(err.to_string())
                                .with_attempts(attempts));
                        }
                        io_detail = Some(err.to_string());
                        kind
                    }
                };
                attempts.push(Attempt {
                    server: server.addr,
                    outcome,
                });
                let went_down = {
                    let mut health = self.health.lock();
                    if outcome == ErrorKind::Timeout {
                        health.timed_out(index)
                    } else {
                        health.failure(index)
                    }
                };
                if went_down {
                    self.start_probing();
                }
            }
        }
        let kind = final_kind(&attempts);
        let error = Error::new(kind, name);
        let error = match io_detail {
            Some(detail) if kind == ErrorKind::Io => error.with_detail(detail),
            _ => error,
        };
        Err(error.with_attempts(attempts))
    }

    /// One attempt at one server, falling back to TCP on truncation.
    async fn ask(
        &self,
        server: std::net::SocketAddr,
        protocol: Protocol,
        question: &Question,
        timeout: std::time::Duration,
    ) -> Exchange {
        let payload = self.config.edns_payload;
        // The TCP exchange is boxed: it is rare, and inline its state
        // would make every lookup's future (and single-flight's copy of
        // it) several times larger.
        if protocol == Protocol::Tcp {
            Metrics::add(&self.metrics.tcp_sent);
            return Box::pin(tcp::query(server, question, payload, timeout)).await;
        }
        let started = Instant::now();
        match self.udp.query(server, question, timeout).await {
            Ok(message) if message.metadata.truncation => {
                Metrics::add(&self.metrics.truncated);
                Metrics::add(&self.metrics.tcp_sent);
                // The TCP exchange gets what is left of this attempt's time,
                // and at least the whole timeout again for the handshake.
                let left = timeout.saturating_sub(started.elapsed()).max(timeout);
                Box::pin(tcp::query(server, question, payload, left)).await
            }
            other => other,
        }
    }

    /// Starts the background probe of down servers, unless it runs already.
    fn start_probing(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        let interval = self.config.probe_interval;
        tokio::spawn(probe_loop(weak, interval));
    }
}

/// Re-checks down servers every `interval` until none is down or the
/// resolver is gone. Users' queries never serve as probes.
async fn probe_loop(weak: Weak<Core>, interval: std::time::Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = weak.upgrade() else { return };
        let down = inner.health.lock().down();
        if down.is_empty() {
            inner.probing.store(false, Ordering::Release);
            // A server may have gone down between the check and the store.
            if inner.health.lock().down().is_empty() || inner.probing.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        let Ok(question) = Question::new("", RecordType::NS, false) else {
            return;
        };
        for index in down {
            let server = inner.config.nameservers[index];
            Metrics::add(&inner.metrics.probes);
            let started = Instant::now();
            let result = inner
                .ask(
                    server.addr,
                    server.protocol,
                    &question,
                    inner.config.timeout,
                )
                .await;
            if let Ok(message) = result {
                // Any answer but SERVFAIL shows the server is serving again.
                if message.metadata.response_code != ResponseCode::ServFail {
                    inner
                        .health
                        .lock()
                        .probe_succeeded(index, started.elapsed());
                }
            }
        }
    }
}

/// The kind reported when every attempt failed: what a server said, if any
/// said something, else a timeout.
fn final_kind(attempts: &[Attempt]) -> ErrorKind {
    const PRIORITY: [ErrorKind; 5] = [
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

/// A name as users write it: lower-case, no final dot.
fn display_name(name: &hickory_proto::rr::Name) -> String {
    let mut text = name.to_ascii().to_ascii_lowercase();
    if text.len() > 1 && text.ends_with('.') {
        text.pop();
    }
    text
}
