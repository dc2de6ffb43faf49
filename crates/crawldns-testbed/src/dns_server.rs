//! The testbed's authoritative DNS server: UDP and TCP on one loopback port,
//! and optionally DNS over TLS and DNS over HTTPS on ports of their own,
//! answering the synthetic zone with timer-driven delays and injected faults.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::counters::{Counters, Transport};
use crate::faults::{Delay, Faults};
use crate::plan::{plan, Forgery, Plan, Shared};
use crate::stream_server::{serve_tcp, serve_tls};
use crate::tls::{TestCa, TlsError};
use crate::zone::{Zone, ZoneConfig};
use crawldns_sys::sockbuf::{size_recv_buffer, udp_drops};

/// Receive buffer the server asks for on its UDP socket (bursts of
/// thousands of queries arrive before it reads one).
const RECV_BUFFER: usize = 8 << 20;

/// The ALPN protocol of DNS over TLS (RFC 7858, IANA registry).
pub const ALPN_DOT: &[u8] = b"dot";

/// The ALPN protocol of DNS over HTTPS: HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum DnsServerError {
    /// The testbed only ever binds loopback addresses.
    #[error("refusing to bind {0}: the testbed binds loopback addresses only")]
    NotLoopback(IpAddr),
    /// The test CA for the TLS listeners could not be made.
    #[error("cannot make the TLS certificates: {0}")]
    Tls(#[from] TlsError),
    /// A socket could not be created or bound.
    #[error("cannot bind DNS server on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct DnsServerConfig {
    /// Where to listen (UDP and TCP). Port 0 picks a free port for both.
    pub addr: SocketAddr,
    /// The zone served.
    pub zone: ZoneConfig,
    /// Initial delay settings (changeable later).
    pub delay: Delay,
    /// Initial faults (changeable later).
    pub faults: Faults,
    /// Where to listen for DNS over TLS (RFC 7858), if at all. Port 0 picks
    /// a free port.
    pub dot_addr: Option<SocketAddr>,
    /// Where to listen for DNS over HTTPS (RFC 8484, HTTP/2, path
    /// `/dns-query`), if at all. Port 0 picks a free port.
    pub doh_addr: Option<SocketAddr>,
    /// The certificates the TLS listeners serve; generated when `None` and
    /// a TLS listener is asked for. Its leaf is valid for `*.crawl.test`,
    /// `localhost` and 127.0.0.1.
    pub tls: Option<TestCa>,
}

impl Default for DnsServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            zone: ZoneConfig::default(),
            delay: Delay::default(),
            faults: Faults::default(),
            dot_addr: None,
            doh_addr: None,
            tls: None,
        }
    }
}

/// A running DNS server. Dropping it stops it.
pub struct DnsServer {
    addr: SocketAddr,
    dot_addr: Option<SocketAddr>,
    doh_addr: Option<SocketAddr>,
    tls: Option<TestCa>,
    recv_buffer: usize,
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl DnsServer {
    /// Binds UDP and TCP on `config.addr` and starts serving.
    pub async fn start(config: DnsServerConfig) -> Result<Self, DnsServerError> {
        if !config.addr.ip().is_loopback() {
            return Err(DnsServerError::NotLoopback(config.addr.ip()));
        }
        let (udp, tcp, recv_buffer) = bind_pair(config.addr)?;
        let addr = udp.local_addr().map_err(|source| DnsServerError::Bind {
            addr: config.addr,
            source,
        })?;
        let side_addr = SocketAddr::new(addr.ip(), 0);
        let side_udp = UdpSocket::bind(side_addr)
            .await
            .map_err(|source| DnsServerError::Bind {
                addr: side_addr,
                source,
            })?;
        let shared = Arc::new(Shared {
            zone: Zone::new(config.zone),
            delay: RwLock::new(config.delay),
            faults: RwLock::new(config.faults),
            counters: Counters::default(),
            udp,
            side_udp,
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_udp(shared.clone()));
        tasks.spawn(serve_tcp(shared.clone(), tcp));
        let tls = match (&config.tls, config.dot_addr.or(config.doh_addr)) {
            (Some(ca), _) => Some(ca.clone()),
            (None, Some(_)) => Some(TestCa::generate()?),
            (None, None) => None,
        };
        let mut dot_addr = None;
        let mut doh_addr = None;
        if let Some(ca) = &tls {
            if let Some(want) = config.dot_addr {
                let (listener, bound) = bind_stream(want)?;
                let acceptor = acceptor(ca, ALPN_DOT);
                tasks.spawn(serve_tls(shared.clone(), listener, acceptor));
                dot_addr = Some(bound);
            }
            if let Some(want) = config.doh_addr {
                let (listener, bound) = bind_stream(want)?;
                let acceptor = acceptor(ca, ALPN_H2);
                tasks.spawn(crate::doh_server::serve_https(
                    shared.clone(),
                    listener,
                    acceptor,
                ));
                doh_addr = Some(bound);
            }
        }
        Ok(Self {
            addr,
            dot_addr,
            doh_addr,
            tls,
            recv_buffer,
            shared,
            tasks,
        })
    }

    /// The address (UDP and TCP) the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where DNS over TLS is served, if it is.
    pub fn dot_addr(&self) -> Option<SocketAddr> {
        self.dot_addr
    }

    /// Where DNS over HTTPS is served (path [`crate::DOH_PATH`]), if it is.
    pub fn doh_addr(&self) -> Option<SocketAddr> {
        self.doh_addr
    }

    /// The CA whose leaf the TLS listeners serve, if any: clients trust
    /// [`TestCa::ca_pem`].
    pub fn tls(&self) -> Option<&TestCa> {
        self.tls.as_ref()
    }

    /// What the server has seen.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Replaces the fault settings; applies to queries received from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.write() = faults;
    }

    /// The current fault settings.
    pub fn faults(&self) -> Faults {
        self.shared.faults.read().clone()
    }

    /// Replaces the delay settings; applies to queries received from now on.
    pub fn set_delay(&self, delay: Delay) {
        *self.shared.delay.write() = delay;
    }

    /// The UDP receive buffer the kernel granted, in bytes.
    pub fn recv_buffer(&self) -> usize {
        self.recv_buffer
    }

    /// Queries the kernel dropped before the server could read them (full
    /// receive buffer), where the platform reports it.
    pub fn kernel_drops(&self) -> Option<u64> {
        udp_drops(&self.shared.udp)
    }

    /// Stops serving and closes the sockets.
    pub fn shutdown(mut self) {
        self.tasks.abort_all();
    }
}

/// Binds a UDP socket and a TCP listener on the same port.
fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener, usize), DnsServerError> {
    let bind_err = |source| DnsServerError::Bind { addr, source };
    let attempts = if addr.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = new_udp(addr).map_err(bind_err)?;
        let recv_buffer = size_recv_buffer(&udp, RECV_BUFFER);
        let bound = udp
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or_else(|| bind_err(io::Error::other("UDP socket has no local address")))?;
        match new_tcp(bound) {
            Ok(tcp) => {
                let udp = UdpSocket::from_std(udp.into()).map_err(bind_err)?;
                let tcp = TcpListener::from_std(tcp.into()).map_err(bind_err)?;
                return Ok((udp, tcp, recv_buffer));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(bind_err(
        last.unwrap_or_else(|| io::Error::other("no attempt made")),
    ))
}

/// Binds a TCP listener for a TLS service.
fn bind_stream(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), DnsServerError> {
    if !addr.ip().is_loopback() {
        return Err(DnsServerError::NotLoopback(addr.ip()));
    }
    let bind_err = |source| DnsServerError::Bind { addr, source };
    let socket = new_tcp(addr).map_err(bind_err)?;
    let listener = TcpListener::from_std(socket.into()).map_err(bind_err)?;
    let bound = listener.local_addr().map_err(bind_err)?;
    Ok((listener, bound))
}

/// A TLS acceptor serving the CA's leaf with one ALPN protocol.
fn acceptor(ca: &TestCa, alpn: &[u8]) -> TlsAcceptor {
    let mut config = (*ca.server_config()).clone();
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

fn new_udp(addr: SocketAddr) -> io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

fn new_tcp(addr: SocketAddr) -> io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_nonblocking(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket)
}

async fn serve_udp(shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (len, peer) = match shared.udp.recv_from(&mut buf).await {
            Ok(received) => received,
            // ICMP errors from earlier sends surface here on some systems.
            Err(_) => continue,
        };
        let packet = &buf[..len];
        let (plan, delay) = plan(&shared, packet, Transport::Udp);
        let Plan::Reply { forgery, bytes } = plan else {
            continue;
        };
        if delay.is_zero() {
            send_udp(&shared, peer, forgery, bytes).await;
        } else {
            let shared = shared.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                send_udp(&shared, peer, forgery, bytes).await;
            });
        }
    }
}

async fn send_udp(shared: &Shared, peer: SocketAddr, forgery: Option<Forgery>, bytes: Vec<u8>) {
    match forgery {
        Some(Forgery::SamePort(forged)) => {
            let _ = shared.udp.send_to(&forged, peer).await;
            shared.counters.forgery();
        }
        Some(Forgery::OtherPort(forged)) => {
            let _ = shared.side_udp.send_to(&forged, peer).await;
            shared.counters.forgery();
        }
        None => {}
    }
    shared.counters.response();
    if shared.udp.send_to(&bytes, peer).await.is_err() {
        shared.counters.response_not_sent();
    }
}
