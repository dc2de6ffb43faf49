//! The public resolver: lookups on top of the exchange with servers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::answer::{self, Reading, RecordValue};
use crate::config::{IpStrategy, Protocol, ResolverConfig};
use crate::error::{io_kind, Attempt, Error, ErrorKind};
use crate::happy_eyeballs::interleave;
use crate::health::{Health, ServerHealth};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::name::{is_localhost, normalize};
use crate::transport::udp::{UdpPool, UdpSettings};
use crate::transport::{tcp, Exchange, TransportError};
use crate::wire::Question;

/// The record types a lookup can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// The canonical-name record of the name itself.
    Cname,
}

impl QueryType {
    fn wire(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
            Self::Cname => RecordType::CNAME,
        }
    }

    /// The type's name as written in zone files ("A", "AAAA", "CNAME").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
        }
    }
}

/// The answer to a typed lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The name asked for, normalized (lower-case ASCII, no final dot).
    pub name: String,
    /// The type asked for.
    pub query_type: QueryType,
    /// Addresses, for A and AAAA lookups.
    pub ips: Arc<[IpAddr]>,
    /// The CNAME target, for CNAME lookups.
    pub target: Option<String>,
    /// The CNAME chain followed to reach the records (empty when none).
    pub chain: Vec<String>,
    /// Seconds the answer may be cached: the smallest TTL on the way.
    pub ttl: u32,
}

/// The addresses of a host, ordered for connection attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupIp {
    /// Addresses in the order to try them (RFC 8305 for [`IpStrategy::Both`]).
    pub addrs: Arc<[IpAddr]>,
    /// Seconds the answer may be cached.
    pub ttl: u32,
}

/// An event-driven DNS stub resolver. Cheap to clone; clones share sockets,
/// server health and metrics. Must be used inside a tokio runtime.
///
/// ```no_run
/// # async fn run() -> Result<(), crawldns::Error> {
/// use crawldns::{Resolver, ResolverConfig};
/// let config = ResolverConfig::builder()
///     .nameserver("127.0.0.1:5353".parse().unwrap())
///     .build();
/// let resolver = Resolver::new(config)?;
/// let ips = resolver.lookup_ip("h1.crawl.test").await?;
/// println!("{:?} for {} s", ips.addrs, ips.ttl);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("nameservers", &self.inner.config.nameservers)
            .finish()
    }
}

struct Inner {
    config: ResolverConfig,
    udp: UdpPool,
    health: Mutex<Health>,
    metrics: Arc<Metrics>,
    slots: Semaphore,
    ipv6_egress: bool,
    probing: AtomicBool,
}

impl Resolver {
    /// A resolver with `config`. Fails when the configuration is unusable
    /// (no nameservers, zero attempts or timeout).
    pub fn new(config: ResolverConfig) -> Result<Self, Error> {
        config.validate()?;
        let metrics = Arc::new(Metrics::default());
        let udp = UdpPool::new(
            UdpSettings {
                sockets: config.udp_sockets,
                queries_per_socket: config.queries_per_socket.max(1),
                recv_buffer: config.recv_buffer,
                payload: config.edns_payload,
                exact_case: config.case_randomization,
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
        let ipv6_egress = config
            .ipv6_egress
            .unwrap_or_else(crate::egress::has_ipv6_route);
        let inner = Inner {
            slots: Semaphore::new(config.max_in_flight),
            health: Mutex::new(health),
            udp,
            metrics,
            ipv6_egress,
            probing: AtomicBool::new(false),
            config,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ResolverConfig {
        &self.inner.config
    }

    /// Whether AAAA queries are sent by [`Resolver::lookup_ip`] (IPv6 egress
    /// detected or configured).
    pub fn ipv6_egress(&self) -> bool {
        self.inner.ipv6_egress
    }

    /// Health of each configured server, in configuration order.
    pub fn server_health(&self) -> Vec<ServerHealth> {
        self.inner.health.lock().servers().to_vec()
    }

    /// The counters so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        let mut snapshot = self.inner.metrics.snapshot();
        snapshot.kernel_drops = self.inner.udp.kernel_drops();
        snapshot
    }

    /// UDP sockets currently open.
    pub fn open_sockets(&self) -> usize {
        self.inner.udp.open_sockets()
    }

    /// Looks up records of one type for `host`, following CNAMEs.
    pub async fn lookup(&self, host: &str, query_type: QueryType) -> Result<Lookup, Error> {
        Metrics::add(&self.inner.metrics.lookups);
        let name = normalize_host(host)?;
        if let Some(ips) = local_answer(&name, query_type) {
            return ips.map(|ips| Lookup {
                name,
                query_type,
                ips: ips.into(),
                target: None,
                chain: Vec::new(),
                ttl: 0,
            });
        }
        self.inner.resolve(&name, query_type).await
    }

    /// The addresses of `host`, per the configured [`IpStrategy`]: A and AAAA
    /// in parallel, ordered for happy eyeballs. IP literals and `localhost`
    /// are answered without the network.
    pub async fn lookup_ip(&self, host: &str) -> Result<LookupIp, Error> {
        Metrics::add(&self.inner.metrics.lookups);
        let name = normalize_host(host)?;
        let strategy = self.inner.config.ip_strategy;
        if let Some(ip) = parse_ip_literal(host) {
            return Ok(LookupIp {
                addrs: Arc::from([ip]),
                ttl: 0,
            });
        }
        if is_localhost(&name) {
            let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
            let addrs: Vec<IpAddr> = match strategy {
                IpStrategy::V4Only => vec![v4],
                IpStrategy::V6Only => vec![v6],
                IpStrategy::PreferV4 => vec![v4, v6],
                IpStrategy::Both | IpStrategy::PreferV6 => vec![v6, v4],
            };
            return Ok(LookupIp {
                addrs: addrs.into(),
                ttl: 0,
            });
        }
        let inner = &self.inner;
        let both =
            inner.ipv6_egress && !matches!(strategy, IpStrategy::V4Only | IpStrategy::V6Only);
        if !both {
            let query_type = if strategy == IpStrategy::V6Only {
                QueryType::Aaaa
            } else {
                QueryType::A
            };
            let lookup = inner.resolve(&name, query_type).await?;
            return Ok(LookupIp {
                addrs: lookup.ips,
                ttl: lookup.ttl,
            });
        }
        let a = inner.resolve(&name, QueryType::A);
        let aaaa = inner.resolve(&name, QueryType::Aaaa);
        tokio::pin!(a, aaaa);
        let (a, aaaa) = tokio::select! {
            a_first = &mut a => {
                let wait_briefly = strategy == IpStrategy::Both
                    && a_first.as_ref().is_ok_and(|l| !l.ips.is_empty());
                let aaaa = if wait_briefly {
                    // RFC 8305 §3: give AAAA a short head start, not a full timeout.
                    tokio::time::timeout(inner.config.resolution_delay, aaaa).await.ok()
                } else {
                    Some(aaaa.await)
                };
                (a_first, aaaa)
            }
            aaaa_first = &mut aaaa => (a.await, Some(aaaa_first)),
        };
        combine(strategy, a, aaaa)
    }
}

/// Merges the A and AAAA outcomes of a dual-stack lookup. `aaaa` is `None`
/// when the resolution delay ran out before it answered.
fn combine(
    strategy: IpStrategy,
    a: Result<Lookup, Error>,
    aaaa: Option<Result<Lookup, Error>>,
) -> Result<LookupIp, Error> {
    let aaaa = aaaa.unwrap_or_else(|| Err(Error::new(ErrorKind::Timeout, "")));
    let (v4, v6) = match (a, aaaa) {
        (Err(a), Err(aaaa)) => {
            // Report what A said, unless A only says "no IPv4" and AAAA
            // failed for a reason worth knowing.
            return Err(
                if a.kind() == ErrorKind::NoData && aaaa.kind() != ErrorKind::NoData {
                    aaaa
                } else {
                    a
                },
            );
        }
        (a, aaaa) => (a.ok(), aaaa.ok()),
    };
    let ttl = v4.iter().chain(&v6).map(|l| l.ttl).min().unwrap_or(0);
    let empty: Arc<[IpAddr]> = Arc::from([]);
    let v4 = v4.map_or(empty.clone(), |l| l.ips);
    let v6 = v6.map_or(empty, |l| l.ips);
    let addrs: Vec<IpAddr> = match strategy {
        IpStrategy::PreferV4 => v4.iter().chain(v6.iter()).copied().collect(),
        IpStrategy::PreferV6 => v6.iter().chain(v4.iter()).copied().collect(),
        _ => interleave(&v6, &v4),
    };
    Ok(LookupIp {
        addrs: addrs.into(),
        ttl,
    })
}

fn normalize_host(host: &str) -> Result<String, Error> {
    if let Some(ip) = parse_ip_literal(host) {
        return Ok(ip.to_string());
    }
    normalize(host)
}

/// `127.0.0.1`, `::1` and `[::1]` are addresses, not names.
fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// Answers for IP literals and `localhost` names, without the network.
fn local_answer(name: &str, query_type: QueryType) -> Option<Result<Vec<IpAddr>, Error>> {
    let ip = match parse_ip_literal(name) {
        Some(ip) => ip,
        None if is_localhost(name) => match query_type {
            QueryType::A => IpAddr::V4(Ipv4Addr::LOCALHOST),
            QueryType::Aaaa => IpAddr::V6(Ipv6Addr::LOCALHOST),
            QueryType::Cname => return Some(Err(Error::new(ErrorKind::NoData, name))),
        },
        None => return None,
    };
    let fits = matches!(
        (ip, query_type),
        (IpAddr::V4(_), QueryType::A) | (IpAddr::V6(_), QueryType::Aaaa)
    );
    Some(if fits {
        Ok(vec![ip])
    } else {
        Err(Error::new(ErrorKind::NoData, name))
    })
}

impl Inner {
    /// Resolves `name` (normalized) for one type, following CNAMEs across
    /// queries when an answer stops at a target it does not resolve.
    async fn resolve(self: &Arc<Self>, name: &str, query_type: QueryType) -> Result<Lookup, Error> {
        let rtype = query_type.wire();
        let max_depth = self.config.max_cname_depth;
        let mut current = name.to_string();
        let mut chain: Vec<String> = Vec::new();
        let mut ttl = u32::MAX;
        while chain.len() <= max_depth {
            let question = Question::new(&current, rtype, self.config.case_randomization)
                .map_err(|why| Error::new(ErrorKind::InvalidName, name).with_detail(why))?;
            let message = self.exchange(name, &question).await?;
            let remaining = max_depth - chain.len();
            match answer::read(&message, &question.name, rtype, remaining) {
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
                    current = display_name(&target);
                }
                Reading::NxDomain { .. } => return Err(Error::new(ErrorKind::NxDomain, name)),
                Reading::NoData { .. } => return Err(Error::new(ErrorKind::NoData, name)),
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
        let mut attempts: Vec<Attempt> = Vec::new();
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
                        kind
                    }
                };
                attempts.push(Attempt {
                    server: server.addr,
                    outcome,
                });
                if self.health.lock().failure(index) {
                    self.start_probing();
                }
            }
        }
        Err(Error::new(final_kind(&attempts), name).with_attempts(attempts))
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
        if protocol == Protocol::Tcp {
            Metrics::add(&self.metrics.tcp_sent);
            return tcp::query(server, question, payload, timeout).await;
        }
        let started = Instant::now();
        match self.udp.query(server, question, timeout).await {
            Ok(message) if message.metadata.truncation => {
                Metrics::add(&self.metrics.truncated);
                Metrics::add(&self.metrics.tcp_sent);
                // The TCP exchange gets what is left of this attempt's time,
                // and at least the whole timeout again for the handshake.
                let left = timeout.saturating_sub(started.elapsed()).max(timeout);
                tcp::query(server, question, payload, left).await
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
async fn probe_loop(weak: Weak<Inner>, interval: std::time::Duration) {
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
