//! The public resolver: cache first, then one shared query per name and
//! type (single-flight), then the wire. `lookup_ip` runs A and AAAA in
//! parallel and orders the addresses for happy eyeballs.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use crate::cache::{Cache, Decision, Entry, Found, Fresh, Key, Slot, Value};
use crate::config::{IpStrategy, ResolverConfig};
use crate::error::{Error, ErrorKind};
use crate::exchange::{Core, Resolved};
use crate::happy_eyeballs::{interleave, race};
use crate::health::ServerHealth;
use crate::hosts::Hosts;
use crate::local::{local_answer, localhost, normalize_host, parse_ip_literal, reverse_name};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::name::{already_normal, is_localhost, normalize};
use crate::records::{Answer, Lookup, LookupIp, QueryType};
use crate::single_flight::{Role, SingleFlight};

type Flights = SingleFlight<Key, Result<Lookup, Error>>;

/// An event-driven DNS stub resolver with a TTL cache and single-flight.
/// Cheap to clone; clones share sockets, cache, server health and metrics.
/// Must be used inside a tokio runtime.
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
            .field("nameservers", &self.inner.core.config.nameservers)
            .field("cache", &self.inner.cache)
            .finish()
    }
}

struct Inner {
    core: Arc<Core>,
    /// The hosts file's names, when one is configured.
    hosts: Option<Hosts>,
    cache: Option<Cache>,
    flights: Flights,
    ipv6_egress: bool,
}

impl Resolver {
    /// A resolver with `config`. Fails when the configuration is unusable
    /// (no nameservers, zero attempts or timeout, an unreadable `ca_file`
    /// or `hosts_file`, a TLS name that is neither a DNS name nor an IP
    /// address).
    pub fn new(config: ResolverConfig) -> Result<Self, Error> {
        config.validate()?;
        let ipv6_egress = config
            .ipv6_egress
            .unwrap_or_else(crate::egress::has_ipv6_route);
        let cache = config.cache.clone().map(Cache::new);
        let hosts = match &config.hosts_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::new(ErrorKind::Config, path.display().to_string())
                        .with_detail(format!("cannot read the hosts file: {e}"))
                })?;
                let hosts = Hosts::parse(&text);
                tracing::debug!(path = %path.display(), names = hosts.len(), "hosts file read");
                Some(hosts)
            }
            None => None,
        };
        let inner = Inner {
            core: Arc::new(Core::new(config)?),
            hosts,
            cache,
            flights: Flights::default(),
            ipv6_egress,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ResolverConfig {
        &self.inner.core.config
    }

    /// Whether AAAA queries are sent by [`Resolver::lookup_ip`] (IPv6 egress
    /// detected or configured).
    pub fn ipv6_egress(&self) -> bool {
        self.inner.ipv6_egress
    }

    /// Health of each configured server, in configuration order.
    pub fn server_health(&self) -> Vec<ServerHealth> {
        self.inner.core.health.lock().servers().to_vec()
    }

    /// The counters so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        let mut snapshot = self.inner.core.metrics.snapshot();
        snapshot.kernel_drops = self.inner.core.udp.kernel_drops();
        snapshot.connections_opened = self.inner.core.connections_opened();
        snapshot.cache_evictions = self.inner.cache.as_ref().map_or(0, Cache::evictions);
        snapshot
    }

    /// A copy of the wire-lookup latency histogram, in microseconds.
    pub fn latency_histogram(&self) -> crate::metrics::LatencyHistogram {
        self.inner.core.metrics.latency_histogram()
    }

    /// UDP sockets currently open.
    pub fn open_sockets(&self) -> usize {
        self.inner.core.udp.open_sockets()
    }

    /// Entries in the cache (0 when caching is off).
    pub fn cache_len(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, Cache::len)
    }

    /// Looks up records of one type for `host`, following CNAMEs; from the
    /// cache when it can.
    pub async fn lookup(&self, host: &str, query_type: QueryType) -> Result<Lookup, Error> {
        // Decided without awaiting, so that a pending lookup holds only the
        // name it asks for and the wait (see `Inner::prepare`).
        let name = match self.inner.prepare(host, query_type) {
            Prepared::Done(result) => return result,
            Prepared::Ask(name) => name,
        };
        self.inner.lookup_public(&name, query_type).await
    }

    /// The resolution core (servers, health, metrics), for `bulk.rs`.
    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.inner.core
    }

    /// Whether names are answered from a hosts file first.
    pub(crate) fn has_hosts_file(&self) -> bool {
        self.inner.hosts.is_some()
    }

    /// The addresses of `host`, per the configured [`IpStrategy`]: A and AAAA
    /// in parallel, ordered for happy eyeballs. IP literals and `localhost`
    /// are answered without the network. A cache hit allocates nothing but
    /// the returned `Arc`'s reference count.
    pub async fn lookup_ip(&self, host: &str) -> Result<LookupIp, Error> {
        let inner = &self.inner;
        let metrics = &inner.core.metrics;
        if let Some(found) = inner.hosts_lookup_ip(host) {
            return Ok(found);
        }
        // The hottest path: `host` is a key of the cache, and fresh.
        if let Some(found) = cache_probe_name(host).and_then(|name| inner.fresh_ip(name)) {
            return Ok(found);
        }
        // The hot path: a lower-case name, which cannot be an IP literal,
        // checked in one pass without allocating.
        let name = match already_normal(host) {
            Some(name) => Cow::Borrowed(name),
            None => {
                if let Some(ip) = parse_ip_literal(host) {
                    metrics.lookups.add();
                    return Ok(LookupIp {
                        addrs: Arc::from([ip]),
                        ttl: 0,
                        cache_ttl: 0,
                        aaaa_skipped: false,
                    });
                }
                match normalize(host) {
                    Ok(name) => name,
                    Err(err) => {
                        metrics.lookups.add();
                        return Err(err);
                    }
                }
            }
        };
        if is_localhost(&name) {
            metrics.lookups.add();
            return Ok(localhost(inner.core.config.ip_strategy));
        }
        if let Some(cache) = &inner.cache {
            match cache.decide(&name, Slot::Ip, cache.tick()) {
                Decision::Fresh(fresh) => {
                    if let Some(found) = inner.answer_fresh_ip(fresh, false, &name) {
                        return Ok(found);
                    }
                }
                Decision::Prefetch(fresh) => {
                    if let Some(found) = inner.answer_fresh_ip(fresh, true, &name) {
                        return Ok(found);
                    }
                }
                Decision::Stale(entry) => {
                    if let Value::Ips(addrs) = &entry.value {
                        metrics.lookups.add();
                        Metrics::add(&metrics.stale_served);
                        inner.refresh_ip_in_background(&name);
                        return Ok(LookupIp {
                            addrs: addrs.clone(),
                            ttl: cache.config().stale_answer_ttl,
                            cache_ttl: 0,
                            aaaa_skipped: inner.aaaa_skipped(),
                        });
                    }
                }
                Decision::Miss => {}
            }
            Metrics::add(&metrics.cache_misses);
        }
        metrics.lookups.add();
        let (result, _) = inner.resolve_ip(&name, IpMode::INTERACTIVE).await;
        result
    }

    /// Resolves a batch of hosts before a crawl burst; see [`crate::prewarm`].
    pub async fn prewarm<I, S>(
        &self,
        hosts: I,
        options: crate::prewarm::PrewarmOptions,
    ) -> crate::prewarm::PrewarmReport
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        crate::prewarm::prewarm(self, hosts, options).await
    }

    /// Pre-warm's lookup: waits for every family the strategy asks for, and
    /// (on `retry`) ignores cached transient failures. Succeeds only when
    /// every family has a definitive answer, so a name that is reported
    /// warm is fully in the cache.
    async fn warm_name(&self, name: &str, retry: bool) -> Result<(), Error> {
        // IP literals, `localhost` names and the hosts file's names are
        // answered without the network: nothing to ask, nothing to cache,
        // and not a failure.
        if local_answer(name, QueryType::A).is_some() || self.inner.in_hosts(name) {
            return Ok(());
        }
        let mode = IpMode {
            freshness: if retry {
                Freshness::SkipFailures
            } else {
                Freshness::Cached
            },
            wait_for_both: true,
        };
        match self.inner.resolve_ip(name, mode).await {
            (Ok(_), true) => Ok(()),
            (Err(err), _) => Err(err),
            (Ok(_), false) => Err(Error::new(ErrorKind::Timeout, name)
                .with_detail("one address family has no definitive answer yet")),
        }
    }
}

impl crate::prewarm::Warm for Resolver {
    async fn warm(&self, name: String, retry: bool) -> Result<(), Error> {
        self.warm_name(&name, retry).await
    }
}

/// Who asks [`Inner::cached_type`]: a caller of the resolver (whose lookup
/// is counted there) or the resolver itself (`lookup_ip`'s families,
/// refreshes, pre-warming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Public,
    Internal,
}

/// Where `lookup_ip`'s per-family answers may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// The cache, then the wire.
    Cached,
    /// The cache's positive and negative answers, but not its remembered
    /// transient failures.
    SkipFailures,
    /// The wire (a refresh).
    Wire,
}

/// How `resolve_ip` runs.
#[derive(Debug, Clone, Copy)]
struct IpMode {
    freshness: Freshness,
    /// Wait for both families instead of the RFC 8305 resolution delay.
    wait_for_both: bool,
}

impl IpMode {
    const INTERACTIVE: Self = Self {
        freshness: Freshness::Cached,
        wait_for_both: false,
    };
    const REFRESH: Self = Self {
        freshness: Freshness::Wire,
        wait_for_both: true,
    };
}

/// What a typed lookup does, decided before any wait.
enum Prepared<'a> {
    /// Answered without the network: the hosts file, the cache, a local
    /// name, an invalid one.
    Done(Result<Lookup, Error>),
    /// Ask the cache and then the wire for this name (normalized).
    Ask(Cow<'a, str>),
}

impl Inner {
    /// `lookup`'s steps up to the cache: the hosts file, the hottest path
    /// (`host` is a fresh key of the cache), the name check, reverse names
    /// of addresses and local answers.
    #[inline(always)]
    fn prepare<'a>(self: &Arc<Self>, host: &'a str, query_type: QueryType) -> Prepared<'a> {
        if let Some(found) = self.hosts_lookup(host, query_type) {
            return Prepared::Done(Ok(found));
        }
        // The hottest path: `host` is a key of the cache, and fresh.
        if let Some(found) =
            cache_probe_name(host).and_then(|name| self.fresh_type(name, query_type))
        {
            return Prepared::Done(found);
        }
        // The hot path: a lower-case name, which is neither an IP literal
        // nor `localhost`, straight to the cache.
        if let Some(name) = already_normal(host).filter(|name| !is_localhost(name)) {
            return Prepared::Ask(Cow::Borrowed(name));
        }
        let metrics = &self.core.metrics;
        let name = match normalize_host(host) {
            Ok(name) => name,
            Err(err) => {
                metrics.lookups.add();
                return Prepared::Done(Err(err));
            }
        };
        // A reverse lookup of an address asks for its arpa name.
        if let Some(ip) = parse_ip_literal(&name).filter(|_| query_type == QueryType::Ptr) {
            return Prepared::Ask(Cow::Owned(reverse_name(ip)));
        }
        if let Some(ips) = local_answer(&name, query_type) {
            metrics.lookups.add();
            return Prepared::Done(
                ips.map(|ips| Lookup::local(name.into_owned(), query_type, ips.into())),
            );
        }
        Prepared::Ask(name)
    }

    /// `host`'s addresses of `query_type`'s family from the hosts file, if
    /// one is configured and lists them (never for other types).
    fn hosts_lookup(&self, host: &str, query_type: QueryType) -> Option<Lookup> {
        let hosts = self.hosts.as_ref()?;
        let v6 = match query_type {
            QueryType::A => false,
            QueryType::Aaaa => true,
            _ => return None,
        };
        let name = normalize_host(host).ok()?;
        let ips = hosts.family(&name, v6)?;
        self.core.metrics.lookups.add();
        Some(Lookup::local(name.into_owned(), query_type, ips.into()))
    }

    /// `host`'s addresses from the hosts file, ordered per the strategy, if
    /// one is configured and lists any the strategy asks for.
    fn hosts_lookup_ip(&self, host: &str) -> Option<LookupIp> {
        let hosts = self.hosts.as_ref()?;
        let name = normalize_host(host).ok()?;
        let addrs = hosts.addresses(&name, self.core.config.ip_strategy, self.ipv6_egress)?;
        self.core.metrics.lookups.add();
        Some(LookupIp {
            addrs: addrs.into(),
            ttl: 0,
            cache_ttl: 0,
            aaaa_skipped: false,
        })
    }

    /// True when the hosts file answers `name` (normalized) for `lookup_ip`.
    fn in_hosts(&self, name: &str) -> bool {
        self.hosts.as_ref().is_some_and(|hosts| {
            hosts
                .addresses(name, self.core.config.ip_strategy, self.ipv6_egress)
                .is_some()
        })
    }

    /// A caller's typed lookup of `name` (normalized): counted as a lookup
    /// and a hit or a miss, then the cache, then single-flight.
    async fn lookup_public(
        self: &Arc<Self>,
        name: &str,
        query_type: QueryType,
    ) -> Result<Lookup, Error> {
        // Returned from, not matched on: a scrutinee would be kept across
        // the await below, in every pending lookup.
        if let Some(found) = self.cached_type(name, query_type, Freshness::Cached, Caller::Public) {
            return found;
        }
        self.fetch(name, query_type, Freshness::Cached).await
    }

    async fn lookup_type_with(
        self: &Arc<Self>,
        name: &str,
        query_type: QueryType,
        freshness: Freshness,
    ) -> Result<Lookup, Error> {
        if let Some(found) = self.cached_type(name, query_type, freshness, Caller::Internal) {
            return found;
        }
        self.fetch(name, query_type, freshness).await
    }

    /// The cache's answer to a typed lookup, if it has one `freshness`
    /// allows (starting a prefetch or a stale refresh as due). A
    /// [`Caller::Public`] lookup is counted here too: one increment when a
    /// fresh entry answers it.
    fn cached_type(
        self: &Arc<Self>,
        name: &str,
        query_type: QueryType,
        freshness: Freshness,
        caller: Caller,
    ) -> Option<Result<Lookup, Error>> {
        let metrics = &self.core.metrics;
        let count_lookup = || {
            if caller == Caller::Public {
                metrics.lookups.add();
            }
        };
        let Some(cache) = self.cache.as_ref().filter(|_| freshness != Freshness::Wire) else {
            count_lookup();
            return None;
        };
        let slot = Slot::Type(query_type);
        match cache.decide(name, slot, cache.tick()) {
            Decision::Fresh(fresh) | Decision::Prefetch(fresh)
                if freshness == Freshness::SkipFailures && fresh.entry.is_transient_failure() =>
            {
                count_lookup();
                None
            }
            Decision::Fresh(fresh) => {
                Some(self.answer_fresh(name, query_type, fresh, false, caller))
            }
            Decision::Prefetch(fresh) => {
                Some(self.answer_fresh(name, query_type, fresh, true, caller))
            }
            Decision::Stale(entry) => {
                count_lookup();
                Metrics::add(&metrics.stale_served);
                self.refresh_in_background(name, query_type);
                Some(from_entry(
                    entry,
                    name,
                    query_type,
                    (cache.config().stale_answer_ttl, 0),
                ))
            }
            Decision::Miss => {
                // One miss per caller's lookup: the families of a
                // `lookup_ip`, refreshes and pre-warming are not lookups.
                if caller == Caller::Public {
                    metrics.lookups.add();
                    Metrics::add(&metrics.cache_misses);
                }
                None
            }
        }
    }

    /// Asks the wire, sharing one query among concurrent callers, and
    /// stores the outcome. On failure, a stale answer (serve-stale) wins.
    async fn fetch(
        self: &Arc<Self>,
        name: &str,
        query_type: QueryType,
        freshness: Freshness,
    ) -> Result<Lookup, Error> {
        debug_assert!(is_cache_key(name), "{name:?} would be a cache key");
        // The key is made in a block of its own, so that the pending
        // lookup does not keep a copy of it beside the flight's.
        let flight = {
            let key = Key::new(name, Slot::Type(query_type));
            let max_pending = self.core.config.max_pending;
            if self.flights.in_flight() >= max_pending && !self.flights.contains(&key) {
                self.core.metrics.failure(ErrorKind::Resource);
                return Err(Error::new(ErrorKind::Resource, name).with_detail(format!(
                    "{max_pending} names are already pending (max_pending)"
                )));
            }
            let this = self.clone();
            self.flights.run(key.clone(), move || async move {
                // A caller can miss the cache, be descheduled while another
                // flight for the same name lands, and only then start its
                // own: look again before asking the wire.
                if let Some(found) = this.fresh_in_cache(&key, query_type, freshness) {
                    return found;
                }
                let Resolved {
                    result,
                    negative_ttl,
                } = this.core.resolve(key.name(), query_type).await;
                this.store(key, query_type, result, negative_ttl)
            })
        };
        let (result, role) = flight.await;
        if role == Role::Follower {
            Metrics::add(&self.core.metrics.coalesced);
        }
        result.unwrap_or_else(|| {
            Err(Error::new(ErrorKind::Io, name)
                .with_detail("the resolution task ended without an answer"))
        })
    }

    /// A fresh cached outcome for `key` (a `query_type` lookup), unless
    /// `freshness` says to ignore it.
    fn fresh_in_cache(
        &self,
        key: &Key,
        query_type: QueryType,
        freshness: Freshness,
    ) -> Option<Result<Lookup, Error>> {
        let cache = self
            .cache
            .as_ref()
            .filter(|_| freshness != Freshness::Wire)?;
        match cache.find(key.name(), key.slot(), cache.tick()) {
            Found::Fresh(fresh)
                if !(freshness == Freshness::SkipFailures
                    && fresh.entry.is_transient_failure()) =>
            {
                let ttls = (fresh.record_remaining(), fresh.remaining());
                Some(from_entry(fresh.entry, key.name(), query_type, ttls))
            }
            _ => None,
        }
    }

    /// Puts a wire outcome in the cache; returns what callers should get.
    fn store(
        &self,
        key: Key,
        query_type: QueryType,
        result: Result<Lookup, Error>,
        negative_ttl: Option<u32>,
    ) -> Result<Lookup, Error> {
        let Some(cache) = &self.cache else {
            return result;
        };
        let now = cache.now();
        match result {
            Ok(lookup) => {
                let ttl = lookup.ttl();
                let kept = cache.insert_positive(key, Value::of_lookup(&lookup), ttl, now);
                Ok(lookup.with_ttls(ttl, kept))
            }
            Err(err) => {
                if !err.kind().is_authoritative_negative() {
                    if let Some(stale) = cache.stale(key.name(), key.slot(), now) {
                        Metrics::add(&self.core.metrics.stale_served);
                        let ttls = (cache.config().stale_answer_ttl, 0);
                        return from_entry(stale, key.name(), query_type, ttls);
                    }
                }
                cache.insert_error(key, &err, negative_ttl, now);
                Err(err)
            }
        }
    }

    fn refresh_in_background(self: &Arc<Self>, name: &str, query_type: QueryType) {
        let this = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let _ = this.fetch(&name, query_type, Freshness::Wire).await;
        });
    }

    /// A typed lookup's answer from a fresh entry, counted (for a
    /// [`Caller::Public`] lookup, one increment counts the lookup and the
    /// hit), starting the entry's refresh when the cache decided a prefetch.
    #[inline(always)]
    fn answer_fresh(
        self: &Arc<Self>,
        name: &str,
        query_type: QueryType,
        fresh: Fresh,
        prefetch: bool,
        caller: Caller,
    ) -> Result<Lookup, Error> {
        let metrics = &self.core.metrics;
        // A caller's lookup counts as a lookup and a hit in one increment;
        // the resolver's own (a `lookup_ip` family, a refresh) as neither.
        if caller == Caller::Public {
            metrics.fresh_hit_lookups.add();
        }
        if prefetch {
            Metrics::add(&metrics.prefetches);
            self.refresh_in_background(name, query_type);
        }
        let ttls = (fresh.record_remaining(), fresh.remaining());
        from_entry(fresh.entry, name, query_type, ttls)
    }

    /// `lookup`'s answer when `name`, as given, is a key of the cache and
    /// its entry is fresh (see [`cache_probe_name`]); `None` otherwise,
    /// having counted nothing.
    #[inline(always)]
    fn fresh_type(
        self: &Arc<Self>,
        name: &str,
        query_type: QueryType,
    ) -> Option<Result<Lookup, Error>> {
        let cache = self.cache.as_ref()?;
        match cache.decide(name, Slot::Type(query_type), cache.tick()) {
            Decision::Fresh(fresh) => {
                Some(self.answer_fresh(name, query_type, fresh, false, Caller::Public))
            }
            Decision::Prefetch(fresh) => {
                Some(self.answer_fresh(name, query_type, fresh, true, Caller::Public))
            }
            _ => None,
        }
    }

    /// `lookup_ip`'s answer when `name`, as given, is a key of the cache
    /// and its combined entry is fresh (see [`cache_probe_name`]); `None`
    /// otherwise, having counted nothing.
    #[inline(always)]
    fn fresh_ip(self: &Arc<Self>, name: &str) -> Option<LookupIp> {
        let cache = self.cache.as_ref()?;
        match cache.decide(name, Slot::Ip, cache.tick()) {
            Decision::Fresh(fresh) => self.answer_fresh_ip(fresh, false, name),
            Decision::Prefetch(fresh) => self.answer_fresh_ip(fresh, true, name),
            _ => None,
        }
    }

    /// `lookup_ip`'s answer from a fresh combined entry, counted (one
    /// increment: a lookup and a hit), starting its refresh when the cache
    /// decided a prefetch; `None`, having counted nothing, if the entry
    /// holds no addresses (the combined slot only ever holds addresses).
    #[inline(always)]
    fn answer_fresh_ip(
        self: &Arc<Self>,
        fresh: Fresh,
        prefetch: bool,
        name: &str,
    ) -> Option<LookupIp> {
        let (ttl, cache_ttl) = (fresh.record_remaining(), fresh.remaining());
        // The entry is this call's copy: its `Arc` is the answer.
        let Value::Ips(addrs) = fresh.entry.value else {
            return None;
        };
        self.core.metrics.fresh_hit_lookups.add();
        if prefetch {
            Metrics::add(&self.core.metrics.prefetches);
            self.refresh_ip_in_background(name);
        }
        Some(LookupIp {
            addrs,
            ttl,
            cache_ttl,
            aaaa_skipped: self.aaaa_skipped(),
        })
    }

    fn refresh_ip_in_background(self: &Arc<Self>, name: &str) {
        let this = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let _ = this.resolve_ip(&name, IpMode::REFRESH).await;
        });
    }

    /// Whether `lookup_ip` leaves AAAA out for want of an IPv6 route (the
    /// strategy asks for both families, the egress says no).
    fn aaaa_skipped(&self) -> bool {
        !self.ipv6_egress
            && !matches!(
                self.core.config.ip_strategy,
                IpStrategy::V4Only | IpStrategy::V6Only
            )
    }

    /// The families to ask for, given the strategy and the egress.
    fn families(&self) -> (bool, bool) {
        match self.core.config.ip_strategy {
            IpStrategy::V4Only => (true, false),
            IpStrategy::V6Only => (false, true),
            _ if !self.ipv6_egress => (true, false),
            _ => (true, true),
        }
    }

    /// Resolves both families (per strategy) and orders them. When both
    /// outcomes are definitive (an answer, NXDOMAIN or NODATA) the combined
    /// answer is cached and the returned flag is true.
    async fn resolve_ip(
        self: &Arc<Self>,
        name: &str,
        mode: IpMode,
    ) -> (Result<LookupIp, Error>, bool) {
        // The name is borrowed, so a pending `lookup_ip` holds no copy of
        // it; and each family's result is awaited before it is put in a
        // pair, so that the other half of the pair is not held across it.
        let freshness = mode.freshness;
        let (a, aaaa) = match self.families() {
            (true, false) => {
                if self.aaaa_skipped() {
                    Metrics::add(&self.core.metrics.aaaa_skipped);
                    tracing::debug!(target: "crawldns", name = %name, "AAAA skipped: no IPv6 route");
                }
                let a = self.lookup_type_with(name, QueryType::A, freshness).await;
                (Some(a), None)
            }
            (false, _) => {
                let aaaa = self
                    .lookup_type_with(name, QueryType::Aaaa, freshness)
                    .await;
                (None, Some(aaaa))
            }
            (true, true) => {
                let strategy = self.core.config.ip_strategy;
                // RFC 8305 §3: with A answered first, AAAA gets a short
                // head start, not a full timeout (not when both are needed).
                let delay = (strategy == IpStrategy::Both && !mode.wait_for_both)
                    .then_some(self.core.config.resolution_delay);
                // Boxed: two families' futures side by side would make
                // every `lookup_ip` future (and a task holding a pending
                // one) twice the size a one-family lookup needs.
                let (a, aaaa) = Box::pin(race(
                    self.lookup_type_with(name, QueryType::A, freshness),
                    self.lookup_type_with(name, QueryType::Aaaa, freshness),
                    delay,
                    |a: &Result<Lookup, Error>| a.as_ref().is_ok_and(|l| !l.ips().is_empty()),
                ))
                .await;
                (Some(a), aaaa)
            }
        };
        let definitive = |r: &Option<Result<Lookup, Error>>| match r {
            None | Some(Ok(_)) => true,
            Some(Err(e)) => e.kind().is_authoritative_negative(),
        };
        let complete =
            definitive(&a) && definitive(&aaaa) && (aaaa.is_some() || !self.families().1);
        let mut combined = combine(self.core.config.ip_strategy, a, aaaa);
        if let Ok(found) = &mut combined {
            found.aaaa_skipped = self.aaaa_skipped();
        }
        if let (Some(cache), Ok(found), true) = (&self.cache, &mut combined, complete) {
            debug_assert!(is_cache_key(name), "{name:?} would be a cache key");
            let key = Key::new(name, Slot::Ip);
            let value = Value::Ips(found.addrs.clone());
            found.cache_ttl = cache.insert_positive(key, value, found.ttl, cache.now());
        }
        (combined, complete)
    }
}

/// A typed answer from a cache entry, with `(ttl, cache_ttl)` seconds left.
/// Inlined into the hit path, so the answer is built where it is returned
/// instead of being moved there.
#[inline(always)]
fn from_entry(
    entry: Entry,
    name: &str,
    query_type: QueryType,
    (ttl, cache_ttl): (u32, u32),
) -> Result<Lookup, Error> {
    match entry.value {
        // The entry is this call's copy: its `Arc` is the answer's.
        Value::Ips(ips) => Ok(Lookup::new(
            Answer::ips(name.to_owned(), query_type, ips),
            ttl,
            cache_ttl,
        )),
        Value::Lookup(lookup) => Ok(lookup.with_ttls(ttl, cache_ttl)),
        Value::Error(err) => Err(Error::clone(&err)),
    }
}

/// Merges the A and AAAA outcomes of a lookup. A family is `None` when it
/// was not asked for, or when the resolution delay ran out before it
/// answered.
fn combine(
    strategy: IpStrategy,
    a: Option<Result<Lookup, Error>>,
    aaaa: Option<Result<Lookup, Error>>,
) -> Result<LookupIp, Error> {
    let (v4, v6) = match (a, aaaa) {
        (Some(Err(a)), Some(Err(aaaa))) => {
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
        (Some(Err(err)), None) | (None, Some(Err(err))) => return Err(err),
        (a, aaaa) => (a.and_then(Result::ok), aaaa.and_then(Result::ok)),
    };
    let ttl = v4.iter().chain(&v6).map(Lookup::ttl).min().unwrap_or(0);
    let cache_ttl = v4
        .iter()
        .chain(&v6)
        .map(Lookup::cache_ttl)
        .min()
        .unwrap_or(0);
    let one = |addrs| LookupIp {
        addrs,
        ttl,
        cache_ttl,
        aaaa_skipped: false,
    };
    let (v4, v6) = match (v4, v6) {
        (Some(v4), None) => return Ok(one(v4.shared_ips())),
        (None, Some(v6)) => return Ok(one(v6.shared_ips())),
        (v4, v6) => (
            v4.map(|l| l.shared_ips()).unwrap_or_else(|| Arc::from([])),
            v6.map(|l| l.shared_ips()).unwrap_or_else(|| Arc::from([])),
        ),
    };
    let addrs: Vec<IpAddr> = match strategy {
        IpStrategy::PreferV4 => v4.iter().chain(v6.iter()).copied().collect(),
        IpStrategy::PreferV6 => v6.iter().chain(v4.iter()).copied().collect(),
        _ => interleave(&v6, &v4),
    };
    Ok(one(addrs.into()))
}

/// The name to probe the cache with before `host` is checked at all, if
/// any: `host` without one final dot, unless it is `localhost` (or under
/// it) or starts with a digit.
///
/// Every key of the resolver's cache is a name [`normalize`] returned (see
/// [`is_cache_key`], asserted where keys are made), which `normalize`
/// returns unchanged and which has no ':' (so no IPv6 literal). When the
/// probe finds an entry, `host` is therefore exactly the name the full path
/// (IP literal, `normalize`, `localhost`, cache) would look up, and the
/// answer is the same, with the name check skipped. Two kinds of name are
/// answered otherwise by the full path and so are excluded here, should
/// such a key ever reach the cache: `localhost` names and IPv4 literals (an
/// IPv4 literal starts with a digit). Pre-warming skips both.
fn cache_probe_name(host: &str) -> Option<&str> {
    let name = host.strip_suffix('.').unwrap_or(host);
    let first = *name.as_bytes().first()?;
    (!first.is_ascii_digit() && !is_localhost(name)).then_some(name)
}

/// Whether `name` may be a key of the resolver's cache: what [`normalize`]
/// returns, unchanged by it. [`cache_probe_name`] relies on it.
fn is_cache_key(name: &str) -> bool {
    normalize(name).is_ok_and(|normal| normal == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_probe_skips_what_the_full_path_answers_locally() {
        assert_eq!(cache_probe_name("h1.crawl.test"), Some("h1.crawl.test"));
        assert_eq!(cache_probe_name("h1.crawl.test."), Some("h1.crawl.test"));
        // Not keys, so a probe just misses.
        assert_eq!(cache_probe_name("H1.Crawl.Test"), Some("H1.Crawl.Test"));
        assert_eq!(cache_probe_name("::1"), Some("::1"));
        // Never probed: the full path answers these without the cache.
        for host in [
            "",
            ".",
            "localhost",
            "localhost.",
            "a.localhost",
            "127.0.0.1",
            "1.2.3.4.",
            "0x.test",
        ] {
            assert_eq!(cache_probe_name(host), None, "{host:?}");
        }
        for key in [
            "h1.crawl.test",
            "xn--bcher-kva.de",
            "_dmarc.example.com",
            "123",
        ] {
            assert!(is_cache_key(key), "{key:?}");
        }
        for not_key in [
            "H1.crawl.test",
            "h1.crawl.test.",
            "bücher.de",
            "a..b",
            "::1",
            "",
        ] {
            assert!(!is_cache_key(not_key), "{not_key:?}");
        }
    }
}
