//! An HTTP/1.1 host farm on loopback, plain or over TLS: one listener per
//! synthetic host.
//!
//! Host `N` of the farm listens on [`host_v4`]`(N)` (an address in
//! `127.0.0.0/8`, see [`crate::hosts`]), and every host uses the same port, so
//! `http://h<N>.crawl.test:<port>/` reaches host `N` once the testbed DNS server
//! resolves the name. Nothing but loopback addresses is ever bound: the only
//! addresses come from [`host_v4`], which only returns `127.x.y.z`.
//!
//! # Paths
//!
//! Every response carries an `x-host-index: N` header. The request method is
//! not looked at.
//!
//! | Path | Response |
//! |------|----------|
//! | `/status/<code>` | status `<code>` (200–599) with a short text body (empty for 204/304); 400 for anything else |
//! | `/bytes/<n>` | 200 with exactly `n` bytes of `b'x'` (`n` up to [`MAX_BYTES`]); 400 otherwise |
//! | `/slow-body` | 200, headers at once (no response delay), then [`SLOW_BODY_CHUNKS`] chunks of [`SLOW_BODY_CHUNK_SIZE`] bytes, one every [`SLOW_BODY_CHUNK_INTERVAL`] (10 s in all) |
//! | anything else | 200 with [`HttpFarmConfig::body_size`] bytes of `b'x'` |
//!
//! Every response except `/slow-body` is delayed by
//! [`HttpFarmConfig::response_delay`] before its headers are sent.
//!
//! # Counters
//!
//! The farm counts requests and accepted connections per host and overall, the
//! connections open right now, and the most connections ever open at once (see
//! [`HttpFarm::host_stats`], [`HttpFarm::total_stats`] and [`HttpFarm::stats`]).
//! A connection counts as open from the moment the farm accepts it until the
//! farm has finished with it, which may be shortly after the client closed
//! its end.
//!
//! Idle keep-alive connections are kept open until the client closes them or
//! the farm shuts down.
//!
//! # HTTPS
//!
//! With [`HttpFarmConfig::tls`] set, the farm generates a [`TestCa`] at start
//! (a fresh CA and a leaf certificate for `*.crawl.test`, see [`crate::tls`]),
//! and every listener does a TLS handshake (TLS 1.2 or 1.3, ALPN `http/1.1`)
//! on each accepted connection before serving HTTP/1.1 on it, with the same
//! paths and counters as above. Clients trust [`HttpFarm::ca_pem`] and reach
//! hosts by name ([`HttpFarm::url`] gives `https://h<N>.crawl.test:<port>/`):
//! the certificate names no `127.x.y.z` host address. A connection counts as
//! accepted and open from the TCP accept on, handshake included. A handshake
//! that fails (untrusted certificate, no common protocol, the client closing
//! or sending garbage) is counted in [`FarmStats::tls_handshake_failures`]
//! and closes the connection; there is no handshake timeout, as there is no
//! request-head timeout.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::hosts::{host_v4, MAX_HOSTS};
use crate::tls::{TestCa, TlsError};

/// Name of the response header that carries the index of the answering host.
pub const HOST_INDEX_HEADER: &str = "x-host-index";

/// Largest body `/bytes/<n>` serves (64 MiB); larger requests get a 400.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Time between two body chunks of `/slow-body` (and before the first one).
pub const SLOW_BODY_CHUNK_INTERVAL: Duration = Duration::from_millis(100);

/// Number of body chunks `/slow-body` sends.
pub const SLOW_BODY_CHUNKS: usize = 100;

/// Size in bytes of each `/slow-body` chunk.
pub const SLOW_BODY_CHUNK_SIZE: usize = 16;

/// How many times [`HttpFarm::start`] picks a new port when `port` is 0 and
/// the port it picked is taken on some host address.
const PORT_ATTEMPTS: u32 = 8;

/// Listen backlog of every host listener.
const BACKLOG: i32 = 1024;

/// How long an accept loop pauses after running out of file descriptors.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// `EMFILE` / `ENFILE`: the same numbers on Linux, the BSDs and macOS.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// Configuration of an [`HttpFarm`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFarmConfig {
    /// Number of hosts; the farm serves host indices `0..hosts`.
    pub hosts: u32,
    /// The port every host listens on. `0` picks a port that is free on the
    /// first host's address and then binds every other host on that same
    /// port, picking again (a few times) if some address has it taken.
    pub port: u16,
    /// Delay before the response headers are sent (all paths but `/slow-body`).
    pub response_delay: Duration,
    /// Body size in bytes of ordinary responses (the body is all `b'x'`).
    pub body_size: usize,
    /// Serve HTTPS: generate a [`TestCa`] at start and do a TLS handshake on
    /// every connection before HTTP (see the module docs).
    pub tls: bool,
}

impl Default for HttpFarmConfig {
    /// 100 hosts, any free port, no delay, 1024-byte bodies, plain HTTP.
    fn default() -> Self {
        Self {
            hosts: 100,
            port: 0,
            response_delay: Duration::ZERO,
            body_size: 1024,
            tls: false,
        }
    }
}

/// Why an [`HttpFarm`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum FarmError {
    /// The configuration asked for no hosts at all.
    #[error("the HTTP farm needs at least one host (config.hosts is 0)")]
    NoHosts,
    /// The configuration asked for more hosts than have loopback addresses.
    #[error(
        "the HTTP farm cannot serve {requested} hosts: at most {max} hosts have a loopback address"
    )]
    TooManyHosts {
        /// The requested host count.
        requested: u32,
        /// [`MAX_HOSTS`].
        max: u32,
    },
    /// The process (or system) ran out of file descriptors while binding.
    #[error(
        "ran out of file descriptors binding {addr} for host {host} \
         ({hosts} listeners needed; raise the open-file limit, e.g. `ulimit -n`, or use fewer hosts): {source}"
    )]
    TooManyOpenFiles {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The host index of that address.
        host: u32,
        /// How many listeners the farm needs in all.
        hosts: u32,
        /// The underlying error (`EMFILE` or `ENFILE`).
        #[source]
        source: io::Error,
    },
    /// Binding or listening on a host's address failed.
    #[error("cannot listen on {addr} (host {host}): {source}")]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The host index of that address.
        host: u32,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// With `port: 0`, no port was free on every host address.
    #[error(
        "found no port free on all {hosts} host addresses after {attempts} attempts; \
         last failure: cannot listen on {addr} (host {host}): {source}"
    )]
    NoCommonPort {
        /// How many host addresses needed the port.
        hosts: u32,
        /// How many ports were tried.
        attempts: u32,
        /// The address of the last failure.
        addr: SocketAddr,
        /// The host index of that address.
        host: u32,
        /// The last underlying error.
        #[source]
        source: io::Error,
    },
    /// With `tls: true`, the certificates or the TLS configuration could not
    /// be made.
    #[error("cannot set up TLS for the HTTP farm: {0}")]
    Tls(#[from] TlsError),
}

/// A snapshot of connection and request counters, for one host or the farm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Requests received (counted when the request head has been read).
    pub requests: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Connections open right now.
    pub open_connections: u64,
    /// The most connections that were open at the same time.
    pub max_concurrent_connections: u64,
}

/// A snapshot of all counters of a farm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FarmStats {
    /// Counters over all hosts. `max_concurrent_connections` is the most
    /// connections open at once across the whole farm.
    pub total: HostStats,
    /// Counters of each host, indexed by host index.
    pub hosts: Vec<HostStats>,
    /// Errors from `accept` (for example running out of file descriptors).
    pub accept_errors: u64,
    /// TLS handshakes completed (always 0 without [`HttpFarmConfig::tls`]).
    pub tls_handshakes: u64,
    /// TLS handshakes that failed, each closing its connection (always 0
    /// without [`HttpFarmConfig::tls`]).
    pub tls_handshake_failures: u64,
}

/// Live counters of one host (or of the whole farm).
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    connections: AtomicU64,
    open: AtomicU64,
    max_open: AtomicU64,
}

impl Counters {
    fn open_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let now_open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_open.fetch_max(now_open, Ordering::AcqRel);
    }

    fn close_connection(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    fn snapshot(&self) -> HostStats {
        HostStats {
            requests: self.requests.load(Ordering::Acquire),
            connections: self.connections.load(Ordering::Acquire),
            open_connections: self.open.load(Ordering::Acquire),
            max_concurrent_connections: self.max_open.load(Ordering::Acquire),
        }
    }
}

/// State shared by the farm handle and all its tasks.
#[derive(Debug)]
struct Shared {
    hosts: Vec<Counters>,
    total: Counters,
    accept_errors: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_handshake_failures: AtomicU64,
    response_delay: Duration,
    /// The ordinary response body, shared by every response.
    body: Bytes,
}

impl Shared {
    fn host(&self, n: u32) -> Option<&Counters> {
        self.hosts.get(usize::try_from(n).ok()?)
    }
}

/// Counts a connection as open for as long as it lives.
struct ConnectionGuard {
    shared: Arc<Shared>,
    host: u32,
}

impl ConnectionGuard {
    fn new(shared: Arc<Shared>, host: u32) -> Self {
        if let Some(counters) = shared.host(host) {
            counters.open_connection();
        }
        shared.total.open_connection();
        Self { shared, host }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(counters) = self.shared.host(self.host) {
            counters.close_connection();
        }
        self.shared.total.close_connection();
    }
}

/// A running HTTP/1.1 (or HTTPS) host farm. Dropping it (or
/// [`HttpFarm::shutdown`]) stops every listener and closes every connection.
pub struct HttpFarm {
    hosts: u32,
    port: u16,
    addrs: Vec<SocketAddr>,
    ca: Option<TestCa>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for HttpFarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFarm")
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .field("tls", &self.ca.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpFarm {
    /// Binds one listener per host on `host_v4(n):port` and starts serving;
    /// with `config.tls`, first generates the farm's [`TestCa`].
    ///
    /// Must be called inside a Tokio runtime (with timers enabled); the
    /// farm's tasks run on that runtime.
    pub async fn start(config: HttpFarmConfig) -> Result<HttpFarm, FarmError> {
        let ca = if config.tls {
            Some(TestCa::generate()?)
        } else {
            None
        };
        let acceptor = ca.as_ref().map(|ca| TlsAcceptor::from(ca.server_config()));
        let (listeners, addrs): (Vec<TcpListener>, Vec<SocketAddr>) =
            bind_all(config.hosts, config.port)?.into_iter().unzip();
        let port = addrs.first().map_or(config.port, SocketAddr::port);

        let shared = Arc::new(Shared {
            hosts: (0..config.hosts).map(|_| Counters::default()).collect(),
            total: Counters::default(),
            accept_errors: AtomicU64::new(0),
            tls_handshakes: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            response_delay: config.response_delay,
            body: Bytes::from(vec![b'x'; config.body_size]),
        });
        let (stop, stop_rx) = watch::channel(false);
        let tasks = listeners
            .into_iter()
            .zip(0u32..)
            .map(|(listener, host)| {
                tokio::spawn(accept_loop(
                    listener,
                    host,
                    Arc::clone(&shared),
                    acceptor.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect();

        Ok(HttpFarm {
            hosts: config.hosts,
            port,
            addrs,
            ca,
            shared,
            stop,
            tasks,
        })
    }

    /// Number of hosts served (host indices `0..hosts()`).
    pub fn hosts(&self) -> u32 {
        self.hosts
    }

    /// The port every host listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The listening address of host `n`, or `None` if the farm has no host `n`.
    pub fn addr(&self, n: u32) -> Option<SocketAddr> {
        self.addrs.get(usize::try_from(n).ok()?).copied()
    }

    /// Whether the farm serves HTTPS ([`HttpFarmConfig::tls`]).
    pub fn is_tls(&self) -> bool {
        self.ca.is_some()
    }

    /// `"https"` when the farm serves TLS, `"http"` otherwise.
    pub fn scheme(&self) -> &'static str {
        if self.is_tls() {
            "https"
        } else {
            "http"
        }
    }

    /// The PEM of the CA certificate clients must trust, or `None` for a
    /// plain HTTP farm.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca.as_ref().map(TestCa::ca_pem)
    }

    /// The farm's certificate authority, or `None` for a plain HTTP farm.
    pub fn test_ca(&self) -> Option<&TestCa> {
        self.ca.as_ref()
    }

    /// `http://h<n>.crawl.test:<port><path>` (`https://` with TLS): the URL
    /// of `path` on host `n` by DNS name. A missing leading `/` in `path` is
    /// added. The host index is not checked against the farm's size.
    pub fn url(&self, n: u32, path: &str) -> String {
        format!(
            "{}://h{n}.crawl.test:{}{}",
            self.scheme(),
            self.port,
            slash(path)
        )
    }

    /// `http://<ip>:<port><path>` (`https://` with TLS): the URL of `path` on
    /// host `n` by IP address, or `None` if the farm has no host `n`. A
    /// missing leading `/` in `path` is added. With TLS, the certificate
    /// does not name the host's address: a client must check it against
    /// `h<n>.crawl.test` (send that SNI) to get through.
    pub fn url_by_ip(&self, n: u32, path: &str) -> Option<String> {
        self.addr(n)
            .map(|addr| format!("{}://{addr}{}", self.scheme(), slash(path)))
    }

    /// Counters of host `n`, or `None` if the farm has no host `n`.
    pub fn host_stats(&self, n: u32) -> Option<HostStats> {
        self.shared.host(n).map(Counters::snapshot)
    }

    /// Counters over the whole farm.
    pub fn total_stats(&self) -> HostStats {
        self.shared.total.snapshot()
    }

    /// A snapshot of every counter. The counters are read one by one while
    /// the farm keeps serving, so a snapshot taken under load is not atomic.
    pub fn stats(&self) -> FarmStats {
        FarmStats {
            total: self.shared.total.snapshot(),
            hosts: self.shared.hosts.iter().map(Counters::snapshot).collect(),
            accept_errors: self.shared.accept_errors.load(Ordering::Acquire),
            tls_handshakes: self.shared.tls_handshakes.load(Ordering::Acquire),
            tls_handshake_failures: self.shared.tls_handshake_failures.load(Ordering::Acquire),
        }
    }

    /// Stops every listener and closes every connection, and waits until
    /// that is done (the ports are free again when this returns).
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        for task in std::mem::take(&mut self.tasks) {
            // An accept loop only ends by returning; a JoinError would mean
            // it was cancelled, which is just as stopped.
            let _ = task.await;
        }
    }
}

impl Drop for HttpFarm {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        // Aborting an accept loop drops its listener and its JoinSet, which
        // aborts its connection tasks.
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// `path` with a leading `/`.
fn slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(EMFILE | ENFILE))
}

/// Why binding one round of listeners failed.
struct BindFailure {
    host: u32,
    addr: SocketAddr,
    source: io::Error,
}

/// Binds every host, picking a common port if `port` is 0.
fn bind_all(hosts: u32, port: u16) -> Result<Vec<(TcpListener, SocketAddr)>, FarmError> {
    if hosts == 0 {
        return Err(FarmError::NoHosts);
    }
    if hosts > MAX_HOSTS {
        return Err(FarmError::TooManyHosts {
            requested: hosts,
            max: MAX_HOSTS,
        });
    }
    let attempts = if port == 0 { PORT_ATTEMPTS } else { 1 };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let failure = match bind_round(hosts, port) {
            Ok(listeners) => return Ok(listeners),
            Err(failure) => failure,
        };
        let BindFailure { host, addr, source } = failure;
        if is_fd_exhaustion(&source) {
            return Err(FarmError::TooManyOpenFiles {
                addr,
                host,
                hosts,
                source,
            });
        }
        // Only a port that is taken on some other host address is worth a
        // new pick; host 0 bound with port 0 cannot be "taken".
        let retry = port == 0
            && host != 0
            && source.kind() == io::ErrorKind::AddrInUse
            && attempt < attempts;
        if retry {
            continue;
        }
        if port == 0 && source.kind() == io::ErrorKind::AddrInUse {
            return Err(FarmError::NoCommonPort {
                hosts,
                attempts: attempt,
                addr,
                host,
                source,
            });
        }
        return Err(FarmError::Bind { addr, host, source });
    }
}

/// One attempt at binding every host. With `port == 0`, host 0 gets a fresh
/// port and every other host binds that one.
fn bind_round(hosts: u32, port: u16) -> Result<Vec<(TcpListener, SocketAddr)>, BindFailure> {
    let mut listeners = Vec::with_capacity(usize::try_from(hosts).unwrap_or(0));
    let mut port = port;
    for host in 0..hosts {
        let Some(ip) = host_v4(host) else {
            // Unreachable: `hosts <= MAX_HOSTS` was checked.
            return Err(BindFailure {
                host,
                addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
                source: io::Error::new(io::ErrorKind::InvalidInput, "host has no address"),
            });
        };
        debug_assert!(ip.is_loopback());
        let addr = SocketAddrV4::new(ip, port);
        let (listener, local) = bind_one(addr).map_err(|source| BindFailure {
            host,
            addr: addr.into(),
            source,
        })?;
        port = local.port();
        listeners.push((listener, local));
    }
    Ok(listeners)
}

/// A non-blocking listener on `addr` registered with the current runtime,
/// and the address it is bound to.
fn bind_one(addr: SocketAddrV4) -> io::Result<(TcpListener, SocketAddr)> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    // Lets a restarted farm reuse a port that still has TIME_WAIT
    // connections; it never lets two listeners share an address.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(addr).into())?;
    socket.listen(BACKLOG)?;
    let listener = TcpListener::from_std(socket.into())?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Accepts connections for one host until told to stop; then closes them all.
async fn accept_loop(
    listener: TcpListener,
    host: u32,
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let guard = ConnectionGuard::new(Arc::clone(&shared), host);
                    connections.spawn(serve_connection(
                        stream,
                        host,
                        Arc::clone(&shared),
                        acceptor.clone(),
                        guard,
                    ));
                }
                Err(e) => {
                    shared.accept_errors.fetch_add(1, Ordering::Relaxed);
                    if is_fd_exhaustion(&e) {
                        tracing::warn!(host, error = %e, "HTTP farm: out of file descriptors accepting a connection");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    } else {
                        tracing::debug!(host, error = %e, "HTTP farm: accept failed");
                    }
                }
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// Serves one accepted connection: the TLS handshake first if there is an
/// acceptor, then HTTP/1.1 with keep-alive.
async fn serve_connection(
    stream: TcpStream,
    host: u32,
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
    guard: ConnectionGuard,
) {
    let _ = stream.set_nodelay(true);
    let stream = CloseCounted {
        inner: stream,
        guard: Some(guard),
    };
    match acceptor {
        None => serve_http(stream, host, shared).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(tls) => {
                shared.tls_handshakes.fetch_add(1, Ordering::Relaxed);
                serve_http(tls, host, shared).await;
            }
            Err(e) => {
                shared
                    .tls_handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(host, error = %e, "HTTP farm: TLS handshake failed");
            }
        },
    }
}

/// A client's connection, counted as open until the client closes it: the
/// count drops the moment its end of stream is read (or the connection is
/// dropped), before the server closes its side. A client that waits for
/// the server's close before opening another connection therefore never
/// sees the farm count more open connections than the client had.
struct CloseCounted {
    inner: TcpStream,
    guard: Option<ConnectionGuard>,
}

impl AsyncRead for CloseCounted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let eof = matches!(polled, std::task::Poll::Ready(Ok(())))
            && buf.filled().len() == before
            && buf.remaining() > 0;
        if eof || matches!(polled, std::task::Poll::Ready(Err(_))) {
            self.guard.take();
        }
        polled
    }
}

impl AsyncWrite for CloseCounted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves HTTP/1.1 (with keep-alive) on `io` until either side closes.
async fn serve_http<I>(io: I, host: u32, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| respond(req, host, Arc::clone(&shared)));
    let result = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(e) = result {
        tracing::debug!(host, error = %e, "HTTP farm: connection ended with an error");
    }
}

type FarmBody = BoxBody<Bytes, Infallible>;

/// Answers one request on host `host`.
async fn respond(
    req: Request<Incoming>,
    host: u32,
    shared: Arc<Shared>,
) -> Result<Response<FarmBody>, Infallible> {
    if let Some(counters) = shared.host(host) {
        counters.requests.fetch_add(1, Ordering::Relaxed);
    }
    shared.total.requests.fetch_add(1, Ordering::Relaxed);

    let path = req.uri().path();
    let mut response = if path == "/slow-body" {
        Response::new(SlowBody::new().boxed())
    } else {
        let (status, body) = plain_response(path, &shared);
        if !shared.response_delay.is_zero() {
            tokio::time::sleep(shared.response_delay).await;
        }
        let mut response = Response::new(Full::new(body).boxed());
        *response.status_mut() = status;
        response
    };
    response
        .headers_mut()
        .insert(HOST_INDEX_HEADER, HeaderValue::from(host));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// Status and body for every path but `/slow-body`.
fn plain_response(path: &str, shared: &Shared) -> (StatusCode, Bytes) {
    if let Some(code) = path.strip_prefix("/status/") {
        return match code.parse::<u16>().ok().filter(|c| (200..=599).contains(c)) {
            Some(code) => match StatusCode::from_u16(code) {
                Ok(status)
                    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED =>
                {
                    (status, Bytes::new())
                }
                Ok(status) => (status, Bytes::from(format!("{status}\n"))),
                Err(_) => bad_request("bad status code"),
            },
            None => bad_request("/status/<code> needs a code in 200..=599"),
        };
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        return match n.parse::<usize>().ok().filter(|n| *n <= MAX_BYTES) {
            Some(n) if n <= shared.body.len() => (StatusCode::OK, shared.body.slice(..n)),
            Some(n) => (StatusCode::OK, Bytes::from(vec![b'x'; n])),
            None => bad_request("/bytes/<n> needs a byte count up to 64 MiB"),
        };
    }
    (StatusCode::OK, shared.body.clone())
}

fn bad_request(why: &'static str) -> (StatusCode, Bytes) {
    (StatusCode::BAD_REQUEST, Bytes::from_static(why.as_bytes()))
}

/// One `/slow-body` chunk.
static SLOW_CHUNK: [u8; SLOW_BODY_CHUNK_SIZE] = [b'x'; SLOW_BODY_CHUNK_SIZE];

/// The `/slow-body` body: a chunk every [`SLOW_BODY_CHUNK_INTERVAL`].
struct SlowBody {
    remaining: usize,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl SlowBody {
    fn new() -> Self {
        Self {
            remaining: SLOW_BODY_CHUNKS,
            sleep: Box::pin(tokio::time::sleep(SLOW_BODY_CHUNK_INTERVAL)),
        }
    }
}

impl Body for SlowBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.remaining -= 1;
        let next = tokio::time::Instant::now() + SLOW_BODY_CHUNK_INTERVAL;
        self.sleep.as_mut().reset(next);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&SLOW_CHUNK)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        let bytes = self.remaining.saturating_mul(SLOW_BODY_CHUNK_SIZE);
        SizeHint::with_exact(u64::try_from(bytes).unwrap_or(u64::MAX))
    }
}
