//! The crawl fetcher: limits, keep-alive, redirects, body cap, and a record
//! with phase timings and an error class for every URL.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderValue, ACCEPT, HOST, LOCATION, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use url::Url;

use crate::connect::{happy_connect, DEFAULT_ATTEMPT_DELAY};
use crate::host_resolver::HostResolver;
use crate::pool::{Checkout, Conn, Origin, Permits, Pool, PoolStats};
use crate::record::{ErrorClass, FetchError, FetchRecord, Phases};
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
    /// Body bytes read at most; more is a `body` error (default 10 MiB).
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
    /// URLs fetched (successfully or not).
    pub urls: u64,
    /// Of which without error.
    pub ok: u64,
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
}

/// What a fetch has learned so far; survives a deadline cutting it short.
struct Progress {
    stage: Stage,
    phases: Phases,
    work_started: Option<Instant>,
    final_url: Url,
    status: Option<u16>,
    bytes: u64,
    redirects: u32,
    reused: bool,
}

type Failure = (ErrorClass, String);

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

    /// The resolver in use.
    pub fn resolver(&self) -> &Arc<dyn HostResolver> {
        &self.resolver
    }

    /// Fetches one URL (GET), following redirects. Never fails: the record
    /// says what happened.
    pub async fn fetch(&self, url: &str) -> FetchRecord {
        let parsed = match parse_url(url) {
            Ok(parsed) => parsed,
            Err(message) => return FetchRecord::url_error(url, message),
        };
        let started = Instant::now();
        let mut progress = Progress {
            stage: Stage::Queue,
            phases: Phases::default(),
            work_started: None,
            final_url: parsed.clone(),
            status: None,
            bytes: 0,
            redirects: 0,
            reused: false,
        };
        let outcome =
            tokio::time::timeout(self.config.request_timeout, self.run(parsed, &mut progress))
                .await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err((class, message))) => Some(FetchError { class, message }),
            Err(_) => Some(deadline_error(&progress, self.config.request_timeout)),
        };
        progress.phases.total = progress.work_started.unwrap_or(started).elapsed();
        FetchRecord {
            url: url.to_string(),
            host: progress.final_url.host_str().unwrap_or("").to_string(),
            final_url: progress.final_url.to_string(),
            status: progress.status,
            bytes: progress.bytes,
            redirects: progress.redirects,
            reused_connection: progress.reused,
            phases: progress.phases,
            error,
        }
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
        const GATHER: Duration = Duration::from_millis(20);
        let started = Instant::now();
        let mut summary = CrawlSummary::default();
        let mut tasks: JoinSet<FetchRecord> = JoinSet::new();
        let mut exhausted = false;
        while !exhausted {
            // Deliver finished fetches while the source has nothing for us.
            let first = loop {
                tokio::select! {
                    url = source.next_url() => break url,
                    Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                        if let Ok(record) = joined {
                            deliver(record, sink, &mut summary).await?;
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
                        deliver(record, sink, &mut summary).await?;
                    }
                }
                let this = self.clone();
                tasks.spawn(async move { this.fetch(&url).await });
            }
            while let Some(joined) = tasks.try_join_next() {
                if let Ok(record) = joined {
                    deliver(record, sink, &mut summary).await?;
                }
            }
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok(record) = joined {
                deliver(record, sink, &mut summary).await?;
            }
        }
        summary.elapsed = started.elapsed();
        Ok(summary)
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

    /// The fetch proper: redirects, one exchange per hop.
    async fn run(&self, mut url: Url, progress: &mut Progress) -> Result<(), Failure> {
        loop {
            progress.final_url = url.clone();
            let origin = origin_of(&url)?;
            progress.stage = Stage::Queue;
            let queued = Instant::now();
            if let Some(rate) = self.config.per_host_rate {
                self.pool.pace(&origin, rate).await;
            }
            let mut checkout = self.pool.checkout(&origin).await;
            progress.phases.queue += queued.elapsed();
            progress.work_started.get_or_insert_with(Instant::now);
            let (status, location) = loop {
                let (conn, reused) = match checkout {
                    Checkout::Reused(conn) => (conn, true),
                    Checkout::New(permits) => (self.open(&origin, permits, progress).await?, false),
                };
                progress.reused = reused;
                match self.exchange(conn, &origin, &url, progress).await {
                    Ok(done) => break done,
                    // A kept-alive connection the server had just closed:
                    // try once more on a fresh one.
                    Err(Retry::Fresh) if reused => checkout = self.pool.checkout(&origin).await,
                    Err(Retry::Fresh) => {
                        return Err((
                            ErrorClass::Body,
                            "connection closed before the response".into(),
                        ))
                    }
                    Err(Retry::No(failure)) => return Err(failure),
                }
            };
            match location {
                Some(next) if progress.redirects < self.config.max_redirects => {
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
                Some(_) => {
                    return Err((
                        ErrorClass::Redirects,
                        format!("more than {} redirects", self.config.max_redirects),
                    ))
                }
                None if status >= 400 => {
                    return Err((
                        ErrorClass::HttpStatus(status),
                        format!("HTTP status {status}"),
                    ))
                }
                None => return Ok(()),
            }
        }
    }

    /// Resolves, connects and (for https) handshakes a new connection.
    async fn open(
        &self,
        origin: &Origin,
        permits: Permits,
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
        let (tcp, _) = match connected {
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
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| (ErrorClass::Body, e.to_string()))?;
        Ok(Conn::start(sender, connection, permits))
    }

    /// One request/response on `conn`; returns the status and a redirect
    /// location, and gives the connection back when it can be reused.
    async fn exchange(
        &self,
        mut conn: Conn,
        origin: &Origin,
        url: &Url,
        progress: &mut Progress,
    ) -> Result<(u16, Option<String>), Retry> {
        progress.stage = Stage::Exchange;
        if conn.sender.ready().await.is_err() {
            return Err(Retry::Fresh);
        }
        let request = self.request(origin, url).map_err(Retry::No)?;
        let response = match conn.sender.send_request(request).await {
            Ok(response) => response,
            Err(err) if err.is_canceled() || err.is_incomplete_message() => {
                return Err(Retry::Fresh)
            }
            Err(err) => return Err(Retry::No((ErrorClass::Body, err.to_string()))),
        };
        if progress.phases.ttfb.is_none() || progress.redirects > 0 {
            progress.phases.ttfb = progress.work_started.map(|t| t.elapsed());
        }
        let status = response.status();
        progress.status = Some(status.as_u16());
        let location = if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        } else {
            None
        };
        let mut body = response.into_body();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Retry::No((ErrorClass::Body, e.to_string())))?;
            if let Some(data) = frame.data_ref() {
                bytes += data.len() as u64;
                progress.bytes = bytes;
                if bytes > self.config.max_body {
                    return Err(Retry::No((
                        ErrorClass::Body,
                        format!("body exceeds the {} byte cap", self.config.max_body),
                    )));
                }
            }
        }
        self.pool.checkin(origin, conn);
        Ok((status.as_u16(), location))
    }

    fn request(&self, origin: &Origin, url: &Url) -> Result<Request<Empty<Bytes>>, Failure> {
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
        Request::get(path)
            .header(HOST, host)
            .header(USER_AGENT, self.user_agent.clone())
            .header(ACCEPT, "*/*")
            .body(Empty::new())
            .map_err(|e| (ErrorClass::Url, e.to_string()))
    }
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
fn deadline_error(progress: &Progress, limit: Duration) -> FetchError {
    let class = match progress.stage {
        Stage::Dns => ErrorClass::Dns(crawldns::ErrorKind::Timeout),
        Stage::Queue | Stage::Connect | Stage::Tls | Stage::Exchange => ErrorClass::Timeout,
    };
    let stage = match progress.stage {
        Stage::Queue => "waiting for a connection slot",
        Stage::Dns => "resolving the host",
        Stage::Connect => "connecting",
        Stage::Tls => "in the TLS handshake",
        Stage::Exchange => "in the HTTP exchange",
    };
    FetchError {
        class,
        message: format!("request deadline of {limit:?} ran out {stage}"),
    }
}

/// A TCP or TLS stream, so one hyper connection type serves both.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
