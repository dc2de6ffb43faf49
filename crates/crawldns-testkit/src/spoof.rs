//! An attacker on loopback, for the forgery tests: a raw socket that sends
//! UDP datagrams from any source address (`IP_HDRINCL`), and a sniffer
//! that sees the queries sent to a server's port. Both need root
//! (CAP_NET_RAW) and say so by returning `None` without it.

use std::io::Read;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, SockFilter, Socket, Type};

/// A raw IPv4 socket that sends UDP datagrams with any source address.
pub struct Spoofer {
    socket: Socket,
    buf: Vec<u8>,
}

impl Spoofer {
    /// `None` without CAP_NET_RAW.
    pub fn new() -> Option<Self> {
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )
        .ok()?;
        Some(Self {
            socket,
            buf: Vec::with_capacity(2048),
        })
    }

    /// Sends `payload` from `src` to `dst` (IPv4 and UDP headers built here;
    /// the kernel fills in the IP checksum; the UDP checksum is 0, "none").
    pub fn send(&mut self, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> bool {
        let udp_len = 8 + payload.len();
        let total = 20 + udp_len;
        self.buf.clear();
        self.buf.extend_from_slice(&[0x45, 0]);
        self.buf.extend_from_slice(&(total as u16).to_be_bytes());
        self.buf.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
        self.buf.extend_from_slice(&src.ip().octets());
        self.buf.extend_from_slice(&dst.ip().octets());
        self.buf.extend_from_slice(&src.port().to_be_bytes());
        self.buf.extend_from_slice(&dst.port().to_be_bytes());
        self.buf.extend_from_slice(&(udp_len as u16).to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(payload);
        let to = SockAddr::from(SocketAddrV4::new(*dst.ip(), 0));
        self.socket.send_to(&self.buf, &to).is_ok()
    }
}

/// A query seen on the wire.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The resolver socket's port.
    pub port: u16,
    /// The query's ID.
    pub id: u16,
    /// The name exactly as sent (0x20 case included), without the final dot.
    pub name: String,
    /// The query type.
    pub qtype: u16,
}

/// Copies of the UDP datagrams sent to the server's port (a raw socket with
/// a BPF filter). The blind attacker does not use it: it is the test's own
/// view, for the on-path variants and for counting how many blind guesses
/// hit a live (port, ID).
pub struct Sniffer {
    socket: Socket,
    server_port: u16,
}

impl Sniffer {
    /// A sniffer of queries to `server_port`; `None` without CAP_NET_RAW.
    pub fn new(server_port: u16) -> Option<Self> {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).ok()?;
        // ldh [22] (UDP destination port, no IP options on loopback);
        // jeq port ? accept : drop.
        let filter = [
            SockFilter::new(0x28, 0, 0, 22),
            SockFilter::new(0x15, 0, 1, u32::from(server_port)),
            SockFilter::new(0x06, 0, 0, 0xffff),
            SockFilter::new(0x06, 0, 0, 0),
        ];
        socket.attach_filter(&filter).ok()?;
        socket.set_recv_buffer_size(8 << 20).ok()?;
        let sniffer = Self {
            socket,
            server_port,
        };
        // Drop what arrived before the filter was attached.
        sniffer.socket.set_nonblocking(true).ok()?;
        let mut buf = [0u8; 2048];
        while (&sniffer.socket).read(&mut buf).is_ok() {}
        sniffer.socket.set_nonblocking(false).ok()?;
        Some(sniffer)
    }

    /// Waits up to `timeout` for `count` queries.
    pub fn queries(&self, count: usize, timeout: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        let mut buf = [0u8; 2048];
        while seen.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = self.socket.set_read_timeout(Some(left));
            let Ok(len) = (&self.socket).read(&mut buf) else {
                break;
            };
            if let Some(q) = parse_query(&buf[..len], self.server_port) {
                seen.push(q);
            }
        }
        seen
    }
}

/// An IPv4 + UDP + DNS query to `server_port`.
pub fn parse_query(packet: &[u8], server_port: u16) -> Option<Seen> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    let udp = packet.get(ihl..)?;
    let port = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    if u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]) != server_port {
        return None;
    }
    let dns = udp.get(8..)?;
    let id = u16::from_be_bytes([*dns.first()?, *dns.get(1)?]);
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*dns.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        labels.push(String::from_utf8_lossy(dns.get(at + 1..at + 1 + len)?).into_owned());
        at += 1 + len;
    }
    let qtype = u16::from_be_bytes([*dns.get(at)?, *dns.get(at + 1)?]);
    Some(Seen {
        port,
        id,
        name: labels.join("."),
        qtype,
    })
}
