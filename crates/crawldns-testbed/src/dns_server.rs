//! The testbed's authoritative DNS server: UDP and TCP on one loopback port,
//! answering the synthetic zone with timer-driven delays and injected faults.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crawldns_sys::sockbuf::{size_recv_buffer, udp_drops};
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use parking_lot::RwLock;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::counters::{Counters, Transport};
use crate::faults::{Delay, Faults, RcodeFault};
use crate::zone::{forged_answer, truncated, Zone, ZoneConfig};

/// Receive buffer the server asks for on its UDP socket (bursts of
/// thousands of queries arrive before it reads one).
const RECV_BUFFER: usize = 8 << 20;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum DnsServerError {
    /// The testbed only ever binds loopback addresses.
    #[error("refusing to bind {0}: the testbed binds loopback addresses only")]
    NotLoopback(IpAddr),
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
}

impl Default for DnsServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            zone: ZoneConfig::default(),
            delay: Delay::default(),
            faults: Faults::default(),
        }
    }
}

struct Shared {
    zone: Zone,
    delay: RwLock<Delay>,
    faults: RwLock<Faults>,
    counters: Counters,
    udp: UdpSocket,
    /// Where `wrong_port` forgeries come from.
    side_udp: UdpSocket,
}

/// A running DNS server. Dropping it stops it.
pub struct DnsServer {
    addr: SocketAddr,
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
        Ok(Self {
            addr,
            recv_buffer,
            shared,
            tasks,
        })
    }

    /// The address (UDP and TCP) the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

/// What to send for one query, decided when it arrives.
enum Plan {
    Silence,
    Reply {
        forgery: Option<Forgery>,
        bytes: Vec<u8>,
    },
}

enum Forgery {
    SamePort(Vec<u8>),
    OtherPort(Vec<u8>),
}

/// Decides the reply to `packet` under the current faults. Counts the query.
fn plan(shared: &Shared, packet: &[u8], transport: Transport) -> (Plan, RecordType) {
    let Ok(request) = Message::from_vec(packet) else {
        shared.counters.unparsable();
        return (Plan::Silence, RecordType::A);
    };
    if request.metadata.message_type != MessageType::Query {
        shared.counters.unparsable();
        return (Plan::Silence, RecordType::A);
    }
    let first = request.queries.first();
    let rtype = first.map_or(RecordType::A, |q| q.query_type());
    if let Some(q) = first {
        shared
            .counters
            .query(&q.name().to_ascii(), rtype, transport);
    }
    let faults = shared.faults.read().clone();
    let udp = transport == Transport::Udp;
    if faults.down
        || (faults.drop_fraction > 0.0 && rand::rng().random::<f64>() < faults.drop_fraction)
    {
        shared.counters.dropped();
        return (Plan::Silence, rtype);
    }
    let id = request.metadata.id;
    if faults.malformed {
        return (
            Plan::Reply {
                forgery: None,
                bytes: malformed(id),
            },
            rtype,
        );
    }
    if let Some(rcode) = faults.rcode {
        let code = match rcode {
            RcodeFault::ServFail => ResponseCode::ServFail,
            RcodeFault::Refused => ResponseCode::Refused,
        };
        let mut reply = Message::error_msg(id, request.metadata.op_code, code);
        reply.add_queries(request.queries.iter().cloned());
        reply.metadata.recursion_desired = request.metadata.recursion_desired;
        return (
            Plan::Reply {
                forgery: None,
                bytes: reply.to_vec().unwrap_or_default(),
            },
            rtype,
        );
    }
    let bytes = if udp && faults.truncate {
        truncated(&shared.zone.answer(&request))
    } else {
        shared.zone.respond(&request, udp)
    };
    let forgery = match (udp, first) {
        (true, Some(q)) if faults.wrong_id => {
            Some(Forgery::SamePort(forged_answer(id ^ 0x5a5a, q)))
        }
        (true, Some(q)) if faults.wrong_question => {
            let other = Name::from_ascii("forged")
                .and_then(|l| l.append_domain(q.name()))
                .unwrap_or_else(|_| Name::root());
            Some(Forgery::SamePort(forged_answer(
                id,
                &Query::query(other, q.query_type()),
            )))
        }
        (true, Some(q)) if faults.wrong_port => Some(Forgery::OtherPort(forged_answer(id, q))),
        _ => None,
    };
    (Plan::Reply { forgery, bytes }, rtype)
}

/// A response-looking packet that no parser should accept: the right ID and
/// QR bit, one question claimed, and a name that is a compression loop.
fn malformed(id: u16) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(&[0x84, 0x00, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00]);
    bytes.extend_from_slice(&[0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0xde, 0xad, 0xbe]);
    bytes
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
        let (plan, rtype) = plan(&shared, packet, Transport::Udp);
        let Plan::Reply { forgery, bytes } = plan else {
            continue;
        };
        let delay = shared.delay.read().for_type(rtype);
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
    if shared.udp.send_to(&bytes, peer).await.is_ok() {
        shared.counters.response();
    }
}

async fn serve_tcp(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of fds or similar: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        shared.counters.tcp_connection();
        tokio::spawn(serve_tcp_connection(shared.clone(), stream));
    }
}

/// Serves one TCP connection: length-prefixed queries, possibly pipelined;
/// each answered after its own delay, in whatever order the delays give.
async fn serve_tcp_connection(shared: Arc<Shared>, stream: TcpStream) {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let writer_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            let Ok(len) = u16::try_from(bytes.len()) else {
                continue;
            };
            let mut framed = Vec::with_capacity(bytes.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&bytes);
            if writer.write_all(&framed).await.is_err() {
                break;
            }
        }
    });
    let idle = std::time::Duration::from_secs(10);
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(idle, reader.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if reader.read_exact(&mut packet).await.is_err() {
            break;
        }
        let (plan, rtype) = plan(&shared, &packet, Transport::Tcp);
        let Plan::Reply { bytes, .. } = plan else {
            continue;
        };
        let delay = shared.delay.read().for_type(rtype);
        let tx = tx.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if tx.send(bytes).await.is_ok() {
                shared.counters.response();
            }
        });
    }
    drop(tx);
    let _ = writer_task.await;
}
