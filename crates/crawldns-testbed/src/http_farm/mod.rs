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
//! | `/enc/<coding>/<n>` | 200, `Content-Encoding: <coding>` (`gzip`, `deflate`, `br`, `zstd`): [`text_body`]`(n)` encoded |
//! | `/bomb/<coding>/<n>` | the same with `n` zero bytes: a tiny body that decodes to `n` bytes |
//! | `/robots.txt` | [`robots_txt`]: rules for `crawldns` (no `/private/`, `Crawl-delay: 0.05`) and none for others; 503 on hosts 8, 18, ...; 404 on hosts 9, 19, ... |
//! | anything else | 200 with [`HttpFarmConfig::body_size`] bytes of `b'x'` |
//!
//! [`HttpFarm::reply_for`] tells what a path serves (status, coding, bytes
//! as sent), so a test can compare a fetched or archived payload with it.
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

mod accept;
mod bind;
mod close_counted;
mod compress;
mod config;
mod counters;
mod router;
mod serve;
mod slow_body;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use compress::{text_body, Coding};
pub use config::{FarmError, HttpFarmConfig};
pub use counters::{FarmStats, HostStats};
pub use router::{robots_txt, HOST_INDEX_HEADER, MAX_BYTES, ROBOTS_TXT};
pub use slow_body::{SLOW_BODY_CHUNKS, SLOW_BODY_CHUNK_INTERVAL, SLOW_BODY_CHUNK_SIZE};

use crate::tls::TestCa;
use accept::accept_loop;
use bind::bind_all;
use counters::Counters;

/// State shared by the farm handle and all its tasks.
#[derive(Debug)]
pub(super) struct Shared {
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
        let acceptor = ca.as_ref().map(|ca| {
            let mut server = (*ca.server_config()).clone();
            if config.h2 {
                server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            }
            TlsAcceptor::from(Arc::new(server))
        });
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

    /// What the farm serves for `path` (any host): status, `Content-Encoding`
    /// and the body bytes as sent (still encoded), for a test to compare a
    /// fetched payload with; `None` for `/slow-body`.
    pub fn reply_for(&self, path: &str) -> Option<(u16, Option<&'static str>, Vec<u8>)> {
        if path == "/slow-body" {
            return None;
        }
        let reply = router::reply(path, &self.shared);
        Some((reply.status.as_u16(), reply.encoding, reply.body.to_vec()))
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
