//! The crawl fetcher: limits, keep-alive, redirects, body cap, and a record
//! with phase timings, an error class and the response for every URL.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{
    HeaderValue, ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, HOST, LOCATION, USER_AGENT,
};
use hyper::{Request, StatusCode};
use tokio::task::JoinSet;
use tokio::time::Instant;
use url::Url;

use crate::body::{BodyReader, Failure};
use crate::breaker::BreakerPolicy;
use crate::conn::Conn;
use crate::conn::{handshake, Stream};
use crate::connect::{happy_connect, DEFAULT_ATTEMPT_DELAY};
use crate::decode::{Decoded, Wire};
use crate::host_down::{HostDownStats, HostsDown};
use crate::host_resolver::HostResolver;
use crate::pool::{Checkout, Origin, Pool, PoolStats, Slot};
use crate::record::{ErrorClass, FetchError, FetchRecord, Phases, Retried};
use crate::response::{Headers, HttpVersion, Response, ResponseHead};
use crate::retry::{parse_retry_after, RetryPolicy, Verdict};
use crate::robots::{RobotsCache, Rules};
use crate::source::{ResultSink, UrlSource};
use crate::tls::{client_config, TlsConfigError};

/// Fetcher tunables, each with its default.
#[derive(Debug, Clone, PartialEq)]
pub struct FetcherConfig {
    /// Open connections at most, all hosts together (default 200).
    pub global_connections: usize,
    /// Open connections at most per host (scheme, host, port) (default 8).
    pub per_host_connections: usize,
    /// Politeness: at most this many request starts per second per host
    /// (default: no limit).
    pub per_host_rate: Option<f64>,
    /// Deadline for the TCP connection (default 10 s).
    pub connect_timeout: Duration,
    /// Deadline for a whole URL, redirects and body included (default 30 s).
    pub request_timeout: Duration,
    /// RFC 8305 connection-attempt delay (default 250 ms).
    pub attempt_delay: Duration,
    /// Redirects followed at most (default 5).
    pub max_redirects: u32,
    /// Decoded body bytes read at most; more is a `body` error (default
    /// 10 MiB).
    pub max_body: u64,
    /// The User-Agent header (default `crawldns/<version>`).
    pub user_agent: String,
    /// Idle keep-alive connections are closed after this (default 30 s).
    pub idle_timeout: Duration,
    /// Extra CA certificates to trust, PEM (default none).
    pub extra_ca_pem: Vec<String>,
    /// Resolve all hosts of a batch before its first request (default true).
    pub prewarm: bool,
    /// Fetches in flight at once in [`Fetcher::crawl`] (default 1,000);
    /// the connection limits still apply beneath it.
    pub concurrency: usize,
    /// Dead hosts: after this many connect-level failures in a row an
    /// origin's requests fail at once with class `host_down` for a
    /// cool-down (doubling while it stays down), then one probe decides
    /// (default K = 3, 60 s; `threshold: 0` turns it off).
    pub host_down: BreakerPolicy,
    /// Opt-in retries of transient failures (default: none).
    pub retry: RetryPolicy,
    /// Keep the body as received as well when it was content-decoded
    /// ([`Response::wire_body`]), as an archive needs (default false).
    pub keep_wire_body: bool,
    /// Obey robots.txt (default false): each origin's file is fetched once
    /// (through the same limits), its rules for the user agent's product
    /// token decide every request (redirects included; a disallowed one is
    /// class `robots`), and its `Crawl-delay` paces the origin when slower
    /// than `per_host_rate`. A robots.txt answering 4xx allows everything;
    /// 5xx or a timeout disallows everything (RFC 9309).
    pub robots: bool,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        Self {
            global_connections: 200,
            per_host_connections: 8,
            per_host_rate: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            attempt_delay: DEFAULT_ATTEMPT_DELAY,
            max_redirects: 5,
            max_body: 10 << 20,
            user_agent: concat!("crawldns/", env!("CARGO_PKG_VERSION")).to_string(),
            idle_timeout: Duration::from_secs(30),
            extra_ca_pem: Vec::new(),
            prewarm: true,
            concurrency: 1000,
            keep_wire_body: false,
            host_down: BreakerPolicy::default(),
            retry: RetryPolicy::default(),
            robots: false,
        }
    }
}

/// Errors creating a fetcher.
#[derive(Debug, thiserror::Error)]
pub enum FetcherError {
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    /// The user agent is not a valid header value.
    #[error("invalid user agent: {0:?}")]
    UserAgent(String),
}

/// Fetches URLs for a crawl. Cheap to share behind an `Arc`.
pub struct Fetcher {
    config: FetcherConfig,
    resolver: Arc<dyn HostResolver>,
    pool: Pool,
    hosts_down: HostsDown,
    /// robots.txt rules per origin (with [`FetcherConfig::robots`]).
    robots: RobotsCache,
    /// The random source of retry jitter (xorshift state).
    rng: parking_lot::Mutex<u64>,
    tls: tokio_rustls::TlsConnector,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("resolver", &self.resolver.name())
            .field("config", &self.config)
            .finish()
    }
}

/// Totals of a crawl.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrawlSummary {
    /// URLs fetched (successfully or not) and handed to the sink.
    pub urls: u64,
    /// Of which without error.
    pub ok: u64,
    /// Fetches cut short by the abort of [`Fetcher::crawl_until`]; no
    /// record was made for them.
    pub aborted: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Where a fetch was when it stopped, to classify a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Queue,
    Dns,
    Connect,
    Tls,
    Exchange,
    Body,
}

/// What a fetch has learned so far; survives a deadline cutting it short.
struct Progress {
    url: String,
    stage: Stage,
    phases: Phases,
    started: Instant,
    work_started: Option<Instant>,
    final_url: Url,
    head: Option<ResponseHead>,
    redirects: u32,
    reused: bool,
}

impl Progress {
    /// The record of this fetch, without the response body.
    fn record(mut self, error: Option<FetchError>, bytes: u64) -> FetchRecord {
        self.phases.total = self.work_started.unwrap_or(self.started).elapsed();
        FetchRecord {
            url: self.url,
            host: self.final_url.host_str().unwrap_or("").to_string(),
            final_url: self.final_url.to_string(),
            status: self.head.as_ref().map(|h| h.status),
            http_version: self.head.as_ref().map(|h| h.version),
            remote_addr: self.head.as_ref().and_then(|h| h.remote_addr),
            bytes,
            redirects: self.redirects,
            reused_connection: self.reused,
            phases: self.phases,
            error,
            response: None,
            retries: Vec::new(),
        }
    }
}

/// A response whose body is read chunk by chunk, for bodies too large to
/// hold: see [`Fetcher::fetch_stream`].
pub struct BodyStream {
    progress: Progress,
    reader: BodyReader,
    deadline: Instant,
    limit: Duration,
    error: Option<FetchError>,
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyStream")
            .field("url", &self.progress.url)
            .field("head", &self.progress.head)
            .finish_non_exhaustive()
    }
}

impl BodyStream {
    /// Status, version, headers, remote address.
    pub fn head(&self) -> &ResponseHead {
        // A stream exists only once a response head arrived.
        self.progress
            .head
            .as_ref()
            .unwrap_or_else(|| unreachable!("a body stream always has a head"))
    }

    /// The next decoded bytes of the body, `None` at its end or after a
    /// failure (which [`BodyStream::finish`] then reports).
    pub async fn chunk(&mut self) -> Option<Vec<u8>> {
        if self.error.is_some() {
            return None;
        }
        match tokio::time::timeout_at(self.deadline, self.reader.chunk()).await {
            Ok(Ok(chunk)) => chunk,
            Ok(Err((class, message))) => {
                self.error = Some(FetchError { class, message });
                None
            }
            Err(_) => {
                self.error = Some(deadline_error(Stage::Body, self.limit));
                None
            }
        }
    }

    /// Bytes received before content decoding, so far.
    pub fn wire_bytes(&self) -> u64 {
        self.reader.wire_bytes()
    }

    /// The record of the fetch (without the body). A body not read to its
    /// end is a `body` error; an error status is an `http_status` error.
    pub fn finish(self) -> FetchRecord {
        self.finish_parts().0
    }

    fn finish_parts(mut self) -> (FetchRecord, Option<Vec<u8>>) {
        let status = self.progress.head.as_ref().map_or(0, |h| h.status);
        let error = match self.error.take() {
            Some(error) => Some(error),
            None if !self.reader.is_done() => Some(FetchError {
                class: ErrorClass::Body,
                message: "the body was not read to its end".into(),
            }),
            None if status >= 400 => Some(FetchError {
                class: ErrorClass::HttpStatus(status),
                message: format!("HTTP status {status}"),
            }),
            None => None,
        };
        let wire = self.reader.take_wire_body();
        let bytes = self.reader.bytes;
        (self.progress.record(error, bytes), wire)
    }
}

impl Fetcher {
    /// A fetcher resolving names with `resolver`.
    pub fn new(
        config: FetcherConfig,
        resolver: Arc<dyn HostResolver>,
    ) -> Result<Self, FetcherError> {
        let tls = tokio_rustls::TlsConnector::from(client_config(&config.extra_ca_pem)?);
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(|_| FetcherError::UserAgent(config.user_agent.clone()))?;
        let pool = Pool::new(
            config.global_connections,
            config.per_host_connections,
            config.idle_timeout,
        );
        Ok(Self {
            hosts_down: HostsDown::new(config.host_down),
            robots: RobotsCache::default(),
            rng: parking_lot::Mutex::new(seed()),
            config,
            resolver,
            pool,
            tls,
            user_agent,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FetcherConfig {
        &self.config
    }

    /// Connection counters.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Counters of the dead-host breakers.
    pub fn host_down_stats(&self) -> HostDownStats {
        self.hosts_down.stats()
    }

    /// The resolver in use.
    pub fn resolver(&self) -> &Arc<dyn HostResolver> {
        &self.resolver
    }

    /// Fetches one URL (GET), following redirects, and reads the whole body
    /// (decoded, up to [`FetcherConfig::max_body`]) into
    /// [`FetchRecord::response`]; transient failures are retried per
    /// [`FetcherConfig::retry`], each earlier attempt listed in
    /// [`FetchRecord::retries`]. Never fails: the record says what
    /// happened.
    pub async fn fetch(&self, url: &str) -> FetchRecord {
        let mut retries = Vec::new();
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let mut record = self.fetch_once(url).await;
            let Some(error) = record.error.clone() else {
                record.retries = retries;
                return record;
            };
            let retry_after = record
                .response
                .as_ref()
                .and_then(|r| r.head.headers.get("retry-after"))
                .and_then(parse_retry_after);
            let jitter = self.jitter();
            match self.config.retry.decide(
                attempt,
                error.class,
                &error.message,
                retry_after,
                jitter,
            ) {
                Verdict::GiveUp => {
                    record.retries = retries;
                    return record;
                }
                Verdict::RetryAfter(wait) => {
                    retries.push(Retried {
                        status: record.status,
                        error,
                        wait,
                    });
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// A uniform draw in `[0, 1)` for retry jitter.
    fn jitter(&self) -> f64 {
        let mut state = self.rng.lock();
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One attempt of [`Fetcher::fetch`].
    async fn fetch_once(&self, url: &str) -> FetchRecord {
        let mut stream = match self.fetch_stream(url).await {
            Ok(stream) => stream,
            Err(record) => return *record,
        };
        let mut body = Vec::new();
        while let Some(chunk) = stream.chunk().await {
            body.extend_from_slice(&chunk);
        }
        let head = stream.head().clone();
        let (mut record, wire_body) = stream.finish_parts();
        record.response = Some(Response {
            head,
            body,
            wire_body,
        });
        record
    }

    /// Fetches one URL (GET), following redirects, up to the final
    /// response's head; the body is then read with [`BodyStream::chunk`]
    /// and the record made with [`BodyStream::finish`]. A fetch that fails
    /// before a final response head is the `Err` record.
    pub async fn fetch_stream(&self, url: &str) -> Result<BodyStream, Box<FetchRecord>> {
        let parsed = match parse_url(url) {
            Ok(parsed) => parsed,
            Err(message) => return Err(Box::new(FetchRecord::url_error(url, message))),
        };
        let started = Instant::now();
        let limit = self.config.request_timeout;
        let deadline = started + limit;
        let mut progress = Progress {
            url: url.to_string(),
            stage: Stage::Queue,
            phases: Phases::default(),
            started,
            work_started: None,
            final_url: parsed.clone(),
            head: None,
            redirects: 0,
            reused: false,
        };
        let outcome = tokio::time::timeout_at(deadline, self.run(parsed, &mut progress)).await;
        let error = match outcome {
            Ok(Ok(reader)) => {
                return Ok(BodyStream {
                    progress,
                    reader,
                    deadline,
                    limit,
                    error: None,
                })
            }
            Ok(Err((class, message))) => FetchError { class, message },
            Err(_) => deadline_error(progress.stage, limit),
        };
        Err(Box::new(progress.record(Some(error), 0)))
    }

    /// Fetches `urls`, at most [`FetcherConfig::concurrency`] at a time,
    /// pre-warming their hosts first when configured. Records come back in
    /// the order of `urls`.
    pub async fn fetch_all(self: &Arc<Self>, urls: Vec<String>) -> Vec<FetchRecord> {
        self.prewarm_hosts(&urls).await;
        let mut records: Vec<Option<FetchRecord>> = vec![None; urls.len()];
        let mut tasks = JoinSet::new();
        let mut pending = urls.into_iter().enumerate();
        loop {
            while tasks.len() < self.config.concurrency.max(1) {
                let Some((i, url)) = pending.next() else {
                    break;
                };
                let this = self.clone();
                tasks.spawn(async move { (i, this.fetch(&url).await) });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            if let Ok((i, record)) = joined {
                records[i] = Some(record);
            }
        }
        records.into_iter().flatten().collect()
    }

    /// Crawls everything `source` yields into `sink`. URLs are taken in
    /// chunks of up to `batch` (a chunk closes early when the source has
    /// nothing ready for 20 ms, so a slow pipe is fetched as it comes); each
    /// chunk's hosts are pre-warmed, then its URLs join the fetches already
    /// running, at most [`FetcherConfig::concurrency`] at once. Records go
    /// to the sink as fetches finish. Stops early only if the sink fails.
    pub async fn crawl(
        self: &Arc<Self>,
        source: &mut dyn UrlSource,
        sink: &mut dyn ResultSink,
        batch: usize,
    ) -> io::Result<CrawlSummary> {
        self.crawl_until(source, sink, batch, std::future::pending())
            .await
    }

    /// [`Fetcher::crawl`], cut short when `abort` completes: fetches still
    /// running then are dropped without a record (counted in
    /// [`CrawlSummary::aborted`]). For a graceful stop, end the source
    /// first (the crawl then finishes what is in flight), and abort after a
    /// grace period.
    pub async fn crawl_until(
        self: &Arc<Self>,
        source: &mut dyn UrlSource,
        sink: &mut dyn ResultSink,
        batch: usize,
        abort: impl Future<Output = ()> + Send,
    ) -> io::Result<CrawlSummary> {
        let started = Instant::now();
        let mut summary = CrawlSummary::default();
        let mut tasks: JoinSet<FetchRecord> = JoinSet::new();
        let result = tokio::select! {
            result = self.crawl_into(source, sink, batch, &mut tasks, &mut summary) => result,
            () = abort => Ok(()),
        };
        summary.aborted = tasks.len() as u64;
        tasks.abort_all();
        summary.elapsed = started.elapsed();
        result.map(|()| summary)
    }

    async fn crawl_into(
        self: &Arc<Self>,
        source: &mut dyn UrlSource,
        sink: &mut dyn ResultSink,
        batch: usize,
        tasks: &mut JoinSet<FetchRecord>,
        summary: &mut CrawlSummary,
    ) -> io::Result<()> {
        const GATHER: Duration = Duration::from_millis(20);
        let mut exhausted = false;
        while !exhausted {
            // Deliver finished fetches while the source has nothing for us.
            let first = loop {
                tokio::select! {
                    url = source.next_url() => break url,
                    Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                        if let Ok(record) = joined {
                            deliver(record, sink, summary).await?;
                        }
                    }
                }
            };
            let Some(first) = first else { break };
            let mut chunk = vec![first];
            let deadline = Instant::now() + GATHER;
            while chunk.len() < batch.max(1) {
                match tokio::time::timeout_at(deadline, source.next_url()).await {
                    Ok(Some(url)) => chunk.push(url),
                    Ok(None) => {
                        exhausted = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.prewarm_hosts(&chunk).await;
            for url in chunk {
                while tasks.len() >= self.config.concurrency.max(1) {
                    if let Some(Ok(record)) = tasks.join_next().await {
                        deliver(record, sink, summary).await?;
                    }
                }
                let this = self.clone();
                tasks.spawn(async move { this.fetch(&url).await });
            }
            while let Some(joined) = tasks.try_join_next() {
                if let Ok(record) = joined {
                    deliver(record, sink, summary).await?;
                }
            }
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok(record) = joined {
                deliver(record, sink, summary).await?;
            }
        }
        Ok(())
    }

    async fn prewarm_hosts(&self, urls: &[String]) {
        if !self.config.prewarm {
            return;
        }
        let mut hosts: Vec<String> = urls
            .iter()
            .filter_map(|u| Url::parse(u).ok())
            .filter_map(|u| u.host_str().map(str::to_string))
            .collect();
        hosts.sort_unstable();
        hosts.dedup();
        self.resolver.prewarm(hosts).await;
    }

    /// The fetch up to the final response's head: redirects followed (their
    /// bodies read and dropped), one exchange per hop.
    async fn run(&self, mut url: Url, progress: &mut Progress) -> Result<BodyReader, Failure> {
        loop {
            progress.final_url = url.clone();
            let origin = origin_of(&url)?;
            if self.config.robots && url.path() != "/robots.txt" {
                self.robots_of(&origin).await.check(url.as_str())?;
            }
            let mut reader = self.hop(&origin, &url, progress).await?;
            let status = progress.head.as_ref().map_or(0, |h| h.status);
            let location =
                if (300..400).contains(&status) && status != StatusCode::NOT_MODIFIED.as_u16() {
                    progress
                        .head
                        .as_ref()
                        .and_then(|h| h.headers.get(LOCATION.as_str()))
                        .map(str::to_string)
                } else {
                    None
                };
            let Some(next) = location else {
                return Ok(reader);
            };
            if progress.redirects >= self.config.max_redirects {
                return Err((
                    ErrorClass::Redirects,
                    format!("more than {} redirects", self.config.max_redirects),
                ));
            }
            // The redirect's own body: read (so the connection is reused)
            // and dropped.
            progress.stage = Stage::Body;
            while reader.chunk().await?.is_some() {}
            progress.redirects += 1;
            url = url.join(&next).map_err(|e| {
                (
                    ErrorClass::Url,
                    format!("bad redirect location {next:?}: {e}"),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err((
                    ErrorClass::Url,
                    format!("redirect to unsupported scheme: {url}"),
                ));
            }
        }
    }

    /// The robots.txt rules of `origin`, fetched (once) if need be.
    async fn robots_of(&self, origin: &Origin) -> Arc<Rules> {
        self.robots
            .rules(origin, || async {
                let url = format!("{origin}/robots.txt");
                // Boxed: a fetch inside a fetch.
                let record = Box::pin(self.fetch_once(&url)).await;
                let body = record.response.as_ref().map_or(&[][..], |r| &r.body[..]);
                let failure = record
                    .error
                    .as_ref()
                    .filter(|e| !matches!(e.class, ErrorClass::HttpStatus(_)))
                    .map(|e| (e.class, e.message.as_str()));
                Rules::from_fetch(record.status, body, failure, &self.config.user_agent)
            })
            .await
    }

    /// Request starts per second allowed to `origin`: the configured
    /// politeness, or its robots.txt `Crawl-delay` when that is slower.
    fn pace_of(&self, origin: &Origin) -> Option<f64> {
        let delay = self
            .config
            .robots
            .then(|| self.robots.known(origin))
            .flatten()
            .and_then(|rules| rules.crawl_delay())
            .map(|d| 1.0 / d.as_secs_f64());
        match (self.config.per_host_rate, delay) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One request to `url` on a pooled or new connection, up to the
    /// response head.
    async fn hop(
        &self,
        origin: &Origin,
        url: &Url,
        progress: &mut Progress,
    ) -> Result<BodyReader, Failure> {
        progress.stage = Stage::Queue;
        let down = |message| (ErrorClass::HostDown, message);
        let mut probe = self.hosts_down.admit(origin).map_err(down)?;
        let queued = Instant::now();
        if let Some(rate) = self.pace_of(origin) {
            self.pool.pace(origin, rate).await;
        }
        let mut checkout = self.pool.checkout(origin).await;
        progress.phases.queue += queued.elapsed();
        // The origin may have gone down while this request waited.
        if probe.is_none() && matches!(checkout, Checkout::New(_)) {
            probe = self.hosts_down.admit(origin).map_err(down)?;
        }
        progress.work_started.get_or_insert_with(Instant::now);
        loop {
            let (conn, reused) = match checkout {
                Checkout::Reused(conn) => (conn, true),
                Checkout::New(slot) => {
                    let conn = self.open(origin, slot, progress).await?;
                    self.pool.opened(origin, &conn);
                    (conn, false)
                }
            };
            drop(probe.take());
            progress.reused = reused;
            match self.exchange(conn, origin, url, progress).await {
                Ok(reader) => return Ok(reader),
                // A kept-alive connection the server had just closed: try
                // once more on a fresh one.
                Err(Retry::Fresh) if reused => checkout = self.pool.checkout(origin).await,
                Err(Retry::Fresh) => {
                    return Err((
                        ErrorClass::Body,
                        "connection closed before the response".into(),
                    ))
                }
                Err(Retry::No(failure)) => return Err(failure),
            }
        }
    }

    /// Resolves, connects and (for https) handshakes a new connection, and
    /// tells the origin's breaker how connecting went (before the slot is
    /// released, so a request waiting for it sees the verdict).
    async fn open(
        &self,
        origin: &Origin,
        slot: Slot,
        progress: &mut Progress,
    ) -> Result<Conn, Failure> {
        let mut slot = Some(slot);
        let opened = self.open_unjudged(origin, &mut slot, progress).await;
        match &opened {
            Ok(_) => self.hosts_down.connected(origin),
            Err((ErrorClass::Connect | ErrorClass::Tls, _)) => self.hosts_down.failed(origin),
            Err((ErrorClass::Timeout, _)) if progress.stage == Stage::Connect => {
                self.hosts_down.failed(origin)
            }
            Err(_) => {}
        }
        drop(slot);
        opened
    }

    async fn open_unjudged(
        &self,
        origin: &Origin,
        slot: &mut Option<Slot>,
        progress: &mut Progress,
    ) -> Result<Conn, Failure> {
        progress.stage = Stage::Dns;
        let dns_started = Instant::now();
        let addrs = match origin.host.parse::<IpAddr>() {
            Ok(ip) => Arc::from([ip]),
            Err(_) => {
                let host = origin.host.trim_start_matches('[').trim_end_matches(']');
                let resolved = self.resolver.resolve(host).await;
                *progress.phases.dns.get_or_insert(Duration::ZERO) += dns_started.elapsed();
                resolved.map_err(|f| (ErrorClass::Dns(f.kind), f.message))?
            }
        };
        progress.stage = Stage::Connect;
        let connect_started = Instant::now();
        let connected = tokio::time::timeout(
            self.config.connect_timeout,
            happy_connect(&addrs, origin.port, self.config.attempt_delay),
        )
        .await;
        *progress.phases.connect.get_or_insert(Duration::ZERO) += connect_started.elapsed();
        let (tcp, remote) = match connected {
            Ok(Ok(connected)) => connected,
            Ok(Err(err)) => {
                return Err((
                    ErrorClass::Connect,
                    format!("{}:{}: {err}", origin.host, origin.port),
                ))
            }
            Err(_) => {
                return Err((
                    ErrorClass::Timeout,
                    format!(
                        "connect to {}:{} timed out after {:?}",
                        origin.host, origin.port, self.config.connect_timeout
                    ),
                ))
            }
        };
        let stream = if origin.tls {
            progress.stage = Stage::Tls;
            let tls_started = Instant::now();
            let server_name = rustls_pki_types::ServerName::try_from(origin.host.clone())
                .map_err(|e| (ErrorClass::Url, format!("{}: {e}", origin.host)))?;
            let handshake = self.tls.connect(server_name, tcp).await;
            *progress.phases.tls.get_or_insert(Duration::ZERO) += tls_started.elapsed();
            Stream::Tls(Box::new(
                handshake.map_err(|e| (ErrorClass::Tls, e.to_string()))?,
            ))
        } else {
            Stream::Plain(tcp)
        };
        progress.stage = Stage::Exchange;
        let Some(slot) = slot.take() else {
            return Err((ErrorClass::Body, "connection slot already used".into()));
        };
        let life = slot.life();
        handshake(stream, remote, slot, life)
            .await
            .map_err(|e| (ErrorClass::Body, e.to_string()))
    }

    /// One request on `conn`, up to the response head; the body reader
    /// gives the connection back when the body is complete.
    async fn exchange(
        &self,
        mut conn: Conn,
        origin: &Origin,
        url: &Url,
        progress: &mut Progress,
    ) -> Result<BodyReader, Retry> {
        progress.stage = Stage::Exchange;
        if !conn.sender.ready().await {
            return Err(Retry::Fresh);
        }
        let request = self.request(origin, url, conn.is_h2()).map_err(Retry::No)?;
        let request_text = request_text(&request);
        let response = match conn.sender.send(request).await {
            Ok(response) => response,
            Err(err) if err.is_canceled() || err.is_incomplete_message() => {
                return Err(Retry::Fresh)
            }
            Err(err) => return Err(Retry::No((ErrorClass::Body, err.to_string()))),
        };
        if progress.phases.ttfb.is_none() || progress.redirects > 0 {
            progress.phases.ttfb = progress.work_started.map(|t| t.elapsed());
        }
        let headers = Headers::of(response.headers());
        let encoding = response
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        progress.head = Some(ResponseHead {
            status: response.status().as_u16(),
            version: HttpVersion::of(response.version()),
            headers,
            remote_addr: conn.remote,
            request: request_text,
        });
        progress.stage = Stage::Body;
        let wire = Wire::new(response.into_body(), self.config.keep_wire_body);
        let decoded = Decoded::new(wire, encoding.as_deref())
            .map_err(|m| Retry::No((ErrorClass::Body, m)))?;
        Ok(BodyReader::new(
            decoded,
            (self.pool.clone(), origin.clone(), conn),
            self.config.max_body,
        ))
    }

    /// The GET request for `url`: origin-form with a Host header for
    /// HTTP/1.1, absolute-form (scheme and authority) for HTTP/2.
    fn request(
        &self,
        origin: &Origin,
        url: &Url,
        h2: bool,
    ) -> Result<Request<Empty<Bytes>>, Failure> {
        let default_port = if origin.tls { 443 } else { 80 };
        let host = if origin.port == default_port {
            origin.host.clone()
        } else {
            format!("{}:{}", origin.host, origin.port)
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let scheme = if origin.tls { "https" } else { "http" };
        let builder = if h2 {
            Request::get(format!("{scheme}://{host}{path}")).version(hyper::Version::HTTP_2)
        } else {
            Request::get(path).header(HOST, host)
        };
        builder
            .header(USER_AGENT, self.user_agent.clone())
            .header(ACCEPT, "*/*")
            .header(ACCEPT_ENCODING, crate::decode::ACCEPT_ENCODING)
            .body(Empty::new())
            .map_err(|e| (ErrorClass::Url, e.to_string()))
    }
}

/// A request as HTTP/1.1 text: request line, headers, blank line.
fn request_text(request: &Request<Empty<Bytes>>) -> Vec<u8> {
    let mut text = format!("{} {} HTTP/1.1\r\n", request.method(), request.uri()).into_bytes();
    for (name, value) in request.headers() {
        text.extend_from_slice(name.as_str().as_bytes());
        text.extend_from_slice(b": ");
        text.extend_from_slice(value.as_bytes());
        text.extend_from_slice(b"\r\n");
    }
    text.extend_from_slice(b"\r\n");
    text
}

/// A non-zero seed for the jitter source: the time and the process.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

async fn deliver(
    record: FetchRecord,
    sink: &mut dyn ResultSink,
    summary: &mut CrawlSummary,
) -> io::Result<()> {
    summary.urls += 1;
    summary.ok += u64::from(record.is_ok());
    sink.record(record).await
}

enum Retry {
    Fresh,
    No(Failure),
}

fn parse_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url.trim()).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("unsupported scheme {:?}", parsed.scheme()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("URL has no host".into());
    }
    Ok(parsed)
}

fn origin_of(url: &Url) -> Result<Origin, Failure> {
    let host = url
        .host_str()
        .ok_or_else(|| (ErrorClass::Url, "URL has no host".to_string()))?
        .to_ascii_lowercase();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| (ErrorClass::Url, "URL has no port".to_string()))?;
    Ok(Origin {
        tls: url.scheme() == "https",
        host,
        port,
    })
}

/// The request deadline ran out: in the DNS phase that is a DNS timeout,
/// anywhere else a timeout.
fn deadline_error(stage: Stage, limit: Duration) -> FetchError {
    let class = match stage {
        Stage::Dns => ErrorClass::Dns(crawldns::ErrorKind::Timeout),
        _ => ErrorClass::Timeout,
    };
    let stage = match stage {
        Stage::Queue => "waiting for a connection slot",
        Stage::Dns => "resolving the host",
        Stage::Connect => "connecting",
        Stage::Tls => "in the TLS handshake",
        Stage::Exchange => "in the HTTP exchange",
        Stage::Body => "reading the body",
    };
    FetchError {
        class,
        message: format!("request deadline of {limit:?} ran out {stage}"),
    }
}
