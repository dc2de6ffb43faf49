//! The UDP transport: a small pool of long-lived sockets on random ports,
//! many queries in flight on each, answers demultiplexed by (server, ID) and
//! then checked against the exact question.
//!
//! Each socket has one receive task. A query registers itself in its socket's
//! in-flight table under a random ID that is free for that server, sends, and
//! waits on a oneshot channel; a guard removes the entry however the wait
//! ends (answer, timeout, or the caller dropping the future). A datagram that
//! matches no entry, or whose question differs, is dropped and counted; the
//! entry keeps waiting for the genuine answer.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, Notify};

use super::sockbuf::{size_recv_buffer, udp_drops};
use super::{Exchange, TransportError};
use crate::metrics::Metrics;
use crate::wire::{encode_query, judge, peek_id, Question, Verdict};

/// Settings the pool needs from the resolver configuration.
#[derive(Debug, Clone)]
pub struct UdpSettings {
    /// Sockets per address family.
    pub sockets: usize,
    /// Queries per socket before it is replaced.
    pub queries_per_socket: u64,
    /// Receive buffer per socket.
    pub recv_buffer: usize,
    /// EDNS0 payload advertised.
    pub payload: u16,
    /// Whether answers must echo the question's case exactly (0x20).
    pub exact_case: bool,
}

/// Sockets for both address families.
pub struct UdpPool {
    v4: SocketSet,
    v6: SocketSet,
    settings: UdpSettings,
    metrics: Arc<Metrics>,
}

struct SocketSet {
    family: IpAddr,
    slots: Vec<Mutex<Option<Arc<PooledSocket>>>>,
    next: AtomicUsize,
}

struct Pending {
    /// Which registration this is: an ID freed by a delivered answer can be
    /// reused before the first query's guard runs, and that guard must not
    /// remove the new entry.
    ticket: u64,
    question: Question,
    reply: oneshot::Sender<Exchange>,
}

struct PooledSocket {
    socket: UdpSocket,
    /// Keyed by our own random IDs: a fast hasher is safe here.
    in_flight: Mutex<HashMap<(SocketAddr, u16), Pending, foldhash::fast::RandomState>>,
    sent: AtomicU64,
    tickets: AtomicU64,
    retired: AtomicBool,
    idle: Notify,
    exact_case: bool,
    metrics: Arc<Metrics>,
}

impl UdpPool {
    /// A pool; sockets are opened on first use (inside a tokio runtime).
    pub fn new(settings: UdpSettings, metrics: Arc<Metrics>) -> Self {
        let set = |family| SocketSet {
            family,
            slots: (0..settings.sockets.max(1))
                .map(|_| Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
        };
        Self {
            v4: set(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            v6: set(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            settings,
            metrics,
        }
    }

    /// Sends `question` to `server` and waits up to `timeout` for its answer.
    pub async fn query(
        &self,
        server: SocketAddr,
        question: &Question,
        timeout: Duration,
    ) -> Exchange {
        let set = if server.is_ipv4() { &self.v4 } else { &self.v6 };
        let socket = self.socket(set).map_err(TransportError::Io)?;
        let Some((id, ticket, receiver)) = socket.register(server, question) else {
            return Err(TransportError::Io(io::Error::from_raw_os_error(
                libc::ENOBUFS,
            )));
        };
        let _guard = Registration {
            socket: &socket,
            key: (server, id),
            ticket,
        };
        let packet = encode_query(id, question, self.settings.payload);
        socket
            .socket
            .send_to(&packet, server)
            .await
            .map_err(TransportError::Io)?;
        self.metrics.udp_sent.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(result)) => result,
            // The sender is never dropped while the entry exists; treat a
            // vanished entry like silence.
            Ok(Err(_)) | Err(_) => Err(TransportError::Timeout),
        }
    }

    /// Open UDP sockets right now (for tests of resource use).
    pub fn open_sockets(&self) -> usize {
        [&self.v4, &self.v6]
            .iter()
            .flat_map(|set| set.slots.iter())
            .filter(|slot| slot.lock().is_some())
            .count()
    }

    /// Datagrams the kernel dropped on the open sockets (full buffers).
    pub fn kernel_drops(&self) -> u64 {
        [&self.v4, &self.v6]
            .iter()
            .flat_map(|set| set.slots.iter())
            .filter_map(|slot| slot.lock().as_ref().and_then(|s| udp_drops(&s.socket)))
            .sum()
    }

    /// A socket of `set`, opening or rotating it as needed.
    fn socket(&self, set: &SocketSet) -> io::Result<Arc<PooledSocket>> {
        let index = set.next.fetch_add(1, Ordering::Relaxed) % set.slots.len();
        let mut slot = set.slots[index].lock();
        if let Some(socket) = slot.as_ref() {
            if socket.sent.fetch_add(1, Ordering::Relaxed) < self.settings.queries_per_socket {
                return Ok(socket.clone());
            }
            socket.retire();
            self.metrics
                .socket_rotations
                .fetch_add(1, Ordering::Relaxed);
        }
        let fresh = Arc::new(PooledSocket {
            socket: open_socket(set.family, self.settings.recv_buffer)?,
            in_flight: Mutex::new(HashMap::default()),
            sent: AtomicU64::new(1),
            tickets: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            idle: Notify::new(),
            exact_case: self.settings.exact_case,
            metrics: self.metrics.clone(),
        });
        tokio::spawn(receive_loop(fresh.clone()));
        *slot = Some(fresh.clone());
        Ok(fresh)
    }
}

impl Drop for UdpPool {
    /// Lets every receive task end once its in-flight queries are done.
    fn drop(&mut self) {
        for slot in self.v4.slots.iter().chain(&self.v6.slots) {
            if let Some(socket) = slot.lock().take() {
                socket.retire();
            }
        }
    }
}

/// Binds a non-blocking UDP socket on a random port of the unspecified
/// address of `family`, with a burst-sized receive buffer.
fn open_socket(family: IpAddr, recv_buffer: usize) -> io::Result<UdpSocket> {
    let domain = if family.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if family.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    size_recv_buffer(&socket, recv_buffer);
    // Pick the port ourselves from the whole unprivileged range, like
    // Unbound; fall back to the kernel's choice if we keep colliding.
    let mut rng = rand::rng();
    let mut bound = false;
    for _ in 0..16 {
        let port = rng.random_range(1024..=u16::MAX);
        if socket.bind(&SocketAddr::new(family, port).into()).is_ok() {
            bound = true;
            break;
        }
    }
    if !bound {
        socket.bind(&SocketAddr::new(family, 0).into())?;
    }
    UdpSocket::from_std(socket.into())
}

impl PooledSocket {
    /// Registers a query for `server` under a random ID free for that server.
    fn register(
        &self,
        server: SocketAddr,
        question: &Question,
    ) -> Option<(u16, u64, oneshot::Receiver<Exchange>)> {
        let mut rng = rand::rng();
        let mut in_flight = self.in_flight.lock();
        // Random probing finds a free ID at once unless this server has
        // tens of thousands of queries in flight on this one socket; then
        // give up rather than spin (the caller reports local exhaustion).
        let id = (0..64)
            .map(|_| rng.random::<u16>())
            .find(|id| !in_flight.contains_key(&(server, *id)))?;
        let (reply, receiver) = oneshot::channel();
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let pending = Pending {
            ticket,
            question: question.clone(),
            reply,
        };
        in_flight.insert((server, id), pending);
        Some((id, ticket, receiver))
    }

    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.idle.notify_one();
    }

    fn finished(&self) -> bool {
        self.retired.load(Ordering::Acquire) && self.in_flight.lock().is_empty()
    }

    /// Delivers a datagram from `from` to the query it answers, if any.
    fn deliver(&self, from: SocketAddr, bytes: &[u8]) {
        let Some(id) = peek_id(bytes) else {
            self.metrics.mismatched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut in_flight = self.in_flight.lock();
        let Some(pending) = in_flight.get(&(from, id)) else {
            drop(in_flight);
            self.metrics.mismatched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let verdict = judge(bytes, &pending.question, self.exact_case);
        let result = match verdict {
            Verdict::Answer(message) => Ok(message),
            Verdict::Malformed => Err(TransportError::Malformed),
            Verdict::Mismatch => {
                drop(in_flight);
                self.metrics.mismatched.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if let Some(pending) = in_flight.remove(&(from, id)) {
            let _ = pending.reply.send(result);
        }
    }
}

/// Removes its in-flight entry when the query ends, however it ends.
struct Registration<'a> {
    socket: &'a PooledSocket,
    key: (SocketAddr, u16),
    ticket: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.socket.in_flight.lock();
        if in_flight
            .get(&self.key)
            .is_some_and(|p| p.ticket == self.ticket)
        {
            in_flight.remove(&self.key);
        }
        if in_flight.is_empty() && self.socket.retired.load(Ordering::Acquire) {
            self.socket.idle.notify_one();
        }
    }
}

/// Reads datagrams until the socket is retired and has nothing in flight.
async fn receive_loop(socket: Arc<PooledSocket>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        if socket.finished() {
            return;
        }
        tokio::select! {
            received = socket.socket.recv_from(&mut buf) => match received {
                Ok((len, from)) => socket.deliver(from, &buf[..len]),
                // ICMP port unreachable and the like: the query times out or
                // the server is marked failed by its own timeout.
                Err(_) => continue,
            },
            _ = socket.idle.notified() => {}
        }
    }
}
