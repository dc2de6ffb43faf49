//! The UDP transport: for each nameserver, a small pool of long-lived
//! sockets on random ports, connected to that server; many queries in flight
//! on each, answers demultiplexed by ID and then checked against the exact
//! question.
//!
//! Connected sockets (as Unbound's `udp-connect` and c-ares do) let the
//! kernel drop datagrams from any other address or port before we read
//! them, cache the route (cheaper sends), and report ICMP port unreachable:
//! a server that is not listening fails its queries at once instead of
//! after a timeout.
//!
//! Each socket has one receive task. A query registers itself in its socket's
//! in-flight table under a random free ID, sends, and waits on a oneshot
//! channel; a guard removes the entry however the wait ends (answer,
//! timeout, or the caller dropping the future). A datagram that matches no
//! entry, or whose question differs, is dropped and counted; the entry keeps
//! waiting for the genuine answer.
//!
//! A batched query ([`Batching`]) does not send itself: it queues its
//! (padded) packet on its socket. The query that fills a batch of
//! [`BATCH`] sends it (when batching only when busy); otherwise the
//! socket's task, woken by the first query in an empty queue, sends the
//! queue once the other tasks ready now have queued theirs. Either way in
//! as few system calls as sizes allow (UDP GSO, [`super::gso`]).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, Notify};

use super::gso;
use super::recv_batch::RecvBatch;
use super::sockbuf::{size_recv_buffer, udp_drops};
use super::{Exchange, TransportError};
use crate::config::Batching;
use crate::metrics::Metrics;
use crate::rng::{self, Random};
use crate::wire::{
    encode_padded_query, encode_query, judge, peek_id, QueryPacket, Question, Verdict,
};

/// Settings the pool needs from the resolver configuration.
#[derive(Debug, Clone)]
pub struct UdpSettings {
    /// Sockets per nameserver.
    pub sockets: usize,
    /// Queries per socket before it is replaced.
    pub queries_per_socket: u64,
    /// Receive buffer per socket.
    pub recv_buffer: usize,
    /// EDNS0 payload advertised.
    pub payload: u16,
    /// Whether answers must echo the question's case exactly (0x20).
    pub exact_case: bool,
    /// When queries are padded and sent in batches with GSO.
    pub batching: Batching,
}

/// With [`Batching::WhenBusy`]: queries already in flight on a socket from
/// which a new query joins the socket's batch instead of leaving at once.
pub const BUSY: usize = 8;

/// With [`Batching::WhenBusy`]: the batch size that the query filling it
/// sends at once (GSO costs ~1.2 µs per datagram at 8, ~1.0 at 32, against
/// ~3 for one send each: `udp_send_cost` example of crawldns-bench).
pub const BATCH: usize = 8;

/// Sockets for each nameserver.
pub struct UdpPool {
    sets: Vec<SocketSet>,
    settings: UdpSettings,
    metrics: Arc<Metrics>,
}

/// The sockets connected to one server.
struct SocketSet {
    server: SocketAddr,
    slots: Vec<Mutex<Option<Arc<PooledSocket>>>>,
    next: AtomicUsize,
}

struct Pending {
    /// Which registration this is: an ID freed by a delivered answer can be
    /// reused before the first query's guard runs, and that guard must not
    /// remove the new entry.
    ticket: u64,
    question: Question,
    reply: oneshot::Sender<Reply>,
}

/// A query waiting in a socket's batch.
struct Outgoing {
    id: u16,
    packet: QueryPacket,
}

struct PooledSocket {
    socket: UdpSocket,
    /// Keyed by our own random IDs: a fast hasher is safe here.
    in_flight: Mutex<HashMap<u16, Pending, foldhash::fast::RandomState>>,
    sent: AtomicU64,
    tickets: AtomicU64,
    retired: AtomicBool,
    idle: Notify,
    exact_case: bool,
    metrics: Arc<Metrics>,
    /// Batched queries waiting to be sent, and the wake-up for the
    /// socket's task when the queue stops being empty.
    batching: Batching,
    outbox: Mutex<Vec<Outgoing>>,
    flush: Notify,
    /// Whether GSO sends work here (cleared on the first refusal).
    gso: AtomicBool,
}

impl UdpPool {
    /// A pool for `servers`; sockets are opened on first use (inside a
    /// tokio runtime).
    pub fn new(servers: &[SocketAddr], settings: UdpSettings, metrics: Arc<Metrics>) -> Self {
        let mut sets: Vec<SocketSet> = Vec::with_capacity(servers.len());
        for &server in servers {
            if sets.iter().any(|set| set.server == server) {
                continue;
            }
            sets.push(SocketSet {
                server,
                slots: (0..settings.sockets.max(1))
                    .map(|_| Mutex::new(None))
                    .collect(),
                next: AtomicUsize::new(0),
            });
        }
        Self {
            sets,
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
        let mut sent = self.start(server, question).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        sent.wait_until(deadline)
            .await
            .unwrap_or(Err(TransportError::Timeout))
    }

    /// Sends `question` to `server`; the answer is awaited with
    /// [`SentQuery::wait_until`], as long as the query is kept (a query
    /// that timed out can still be answered late while a retry goes out).
    pub async fn start(
        &self,
        server: SocketAddr,
        question: &Question,
    ) -> Result<SentQuery, TransportError> {
        match self.begin(server, question) {
            Begun::Sent(result) => result,
            Begun::Sending(send) => send.await,
        }
    }

    /// [`UdpPool::start`] without a future for the common case: the query
    /// is registered and sent (or queued for its batch) now, and only a
    /// send that must wait (a full socket buffer, a batch this query
    /// filled) is a future, boxed. A pending lookup holds the query, not
    /// the state of a send that seldom waits.
    pub fn begin(&self, server: SocketAddr, question: &Question) -> Begun {
        let Some(set) = self.sets.iter().find(|set| set.server == server) else {
            return Begun::Sent(Err(TransportError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{server} is not a configured nameserver"),
            ))));
        };
        let socket = match self.socket(set) {
            Ok(socket) => socket,
            Err(err) => return Begun::Sent(Err(TransportError::Io(err))),
        };
        let Some((id, ticket, receiver, in_flight)) = socket.register(question) else {
            return Begun::Sent(Err(TransportError::Io(io::Error::from_raw_os_error(
                libc::ENOBUFS,
            ))));
        };
        let query = SentQuery {
            receiver,
            _registration: Registration {
                socket: socket.clone(),
                id,
                ticket,
            },
        };
        let batched = match self.settings.batching {
            Batching::Off => false,
            Batching::WhenBusy => in_flight > BUSY,
            Batching::Always => true,
        };
        if batched {
            // Sent (and counted) by whoever sends the batch; a send error
            // comes back through the reply channel.
            let packet = encode_padded_query(id, question, self.settings.payload);
            return match socket.enqueue(id, packet) {
                Some(mut batch) => {
                    let socket = socket.clone();
                    Begun::Sending(Box::pin(async move {
                        socket.send_batch(&mut batch, &mut Vec::new()).await;
                        Ok(query)
                    }))
                }
                None => Begun::Sent(Ok(query)),
            };
        }
        let packet = encode_query(id, question, self.settings.payload);
        match socket.socket.try_send(&packet) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                let socket = socket.clone();
                let metrics = self.metrics.clone();
                Begun::Sending(Box::pin(async move {
                    let sent = socket.socket.send(&packet).await;
                    sent_one(&socket, &metrics, sent).map(|()| query)
                }))
            }
            sent => Begun::Sent(sent_one(&socket, &self.metrics, sent).map(|()| query)),
        }
    }

    /// Open UDP sockets right now (for tests of resource use).
    pub fn open_sockets(&self) -> usize {
        self.sets
            .iter()
            .flat_map(|set| set.slots.iter())
            .filter(|slot| slot.lock().is_some())
            .count()
    }

    /// Datagrams the kernel dropped on the open sockets (full buffers).
    pub fn kernel_drops(&self) -> u64 {
        self.sets
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
            socket: open_socket(set.server, self.settings.recv_buffer)?,
            in_flight: Mutex::new(HashMap::default()),
            sent: AtomicU64::new(1),
            tickets: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            idle: Notify::new(),
            exact_case: self.settings.exact_case,
            metrics: self.metrics.clone(),
            batching: self.settings.batching,
            outbox: Mutex::new(Vec::new()),
            flush: Notify::new(),
            gso: AtomicBool::new(true),
        });
        tokio::spawn(socket_task(fresh.clone()));
        *slot = Some(fresh.clone());
        Ok(fresh)
    }
}

impl Drop for UdpPool {
    /// Lets every receive task end once its in-flight queries are done.
    fn drop(&mut self) {
        for slot in self.sets.iter().flat_map(|set| set.slots.iter()) {
            if let Some(socket) = slot.lock().take() {
                socket.retire();
            }
        }
    }
}

/// Binds a non-blocking UDP socket on a random port of the unspecified
/// address of `server`'s family, with a burst-sized receive buffer, and
/// connects it to `server`.
pub(crate) fn open_socket(server: SocketAddr, recv_buffer: usize) -> io::Result<UdpSocket> {
    let family = match server {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
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
    let mut rng = rng::system();
    let mut bound = false;
    for _ in 0..16 {
        let port = rng.port();
        if socket.bind(&SocketAddr::new(family, port).into()).is_ok() {
            bound = true;
            break;
        }
    }
    if !bound {
        socket.bind(&SocketAddr::new(family, 0).into())?;
    }
    socket.connect(&server.into())?;
    UdpSocket::from_std(socket.into())
}

impl PooledSocket {
    /// Registers a query under a random free ID; also returns how many
    /// queries are in flight on this socket, this one included.
    fn register(&self, question: &Question) -> Option<(u16, u64, oneshot::Receiver<Reply>, usize)> {
        let mut rng = rng::system();
        let mut in_flight = self.in_flight.lock();
        // Random probing finds a free ID at once unless there are tens of
        // thousands of queries in flight on this one socket; then give up
        // rather than spin (the caller reports local exhaustion).
        let id = (0..64)
            .map(|_| rng.id())
            .find(|id| !in_flight.contains_key(id))?;
        let (reply, receiver) = oneshot::channel();
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let pending = Pending {
            ticket,
            question: question.clone(),
            reply,
        };
        in_flight.insert(id, pending);
        Some((id, ticket, receiver, in_flight.len()))
    }

    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.idle.notify_one();
    }

    fn finished(&self) -> bool {
        self.retired.load(Ordering::Acquire) && self.in_flight.lock().is_empty()
    }

    /// Delivers a datagram (from the server: the socket is connected) to
    /// the query it answers, if any. A datagram that did not arrive `whole`
    /// (longer than any answer we asked for) is a malformed answer.
    fn deliver(&self, bytes: &[u8], whole: bool) {
        let Some(id) = peek_id(bytes) else {
            self.metrics.mismatched.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(len = bytes.len(), "dropped a datagram too short to be DNS");
            return;
        };
        let mut in_flight = self.in_flight.lock();
        let Some(pending) = in_flight.get(&id) else {
            drop(in_flight);
            self.metrics.mismatched.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                id,
                "dropped an answer to no query in flight (late or forged)"
            );
            return;
        };
        let verdict = judge(bytes, &pending.question, self.exact_case);
        let result = match verdict {
            Verdict::Answer(_) if !whole => Err(TransportError::Malformed),
            Verdict::Answer(message) => Ok(message),
            Verdict::Malformed => Err(TransportError::Malformed),
            Verdict::Mismatch => {
                drop(in_flight);
                self.metrics.mismatched.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    id,
                    "dropped an answer whose question differs from the query's (forged?)"
                );
                return;
            }
        };
        if let Some(pending) = in_flight.remove(&id) {
            let _ = pending.reply.send(result.map(Box::new));
        }
    }

    /// Queues a batched query. The first in an empty queue wakes the
    /// socket's task, which runs after the other tasks ready now have
    /// queued theirs. With [`Batching::WhenBusy`], the query that makes the
    /// batch [`BATCH`] long takes it, to send it at once.
    fn enqueue(&self, id: u16, packet: QueryPacket) -> Option<Vec<Outgoing>> {
        let mut outbox = self.outbox.lock();
        outbox.push(Outgoing { id, packet });
        if outbox.len() == 1 {
            drop(outbox);
            self.flush.notify_one();
            return None;
        }
        (self.batching == Batching::WhenBusy && outbox.len() >= BATCH)
            .then(|| std::mem::replace(&mut *outbox, Vec::with_capacity(BATCH)))
    }

    /// Sends what is queued (the socket's task, once per wake-up).
    async fn flush_outbox(&self, batch: &mut Vec<Outgoing>, buf: &mut Vec<u8>) {
        std::mem::swap(&mut *self.outbox.lock(), batch);
        self.send_batch(batch, buf).await;
    }

    /// Sends `batch`, emptying it: grouped by size, each group in GSO sends
    /// of up to [`gso::MAX_SEGMENTS`] datagrams.
    async fn send_batch(&self, batch: &mut Vec<Outgoing>, buf: &mut Vec<u8>) {
        {
            // Queries that ended while queued (timed out, dropped) are not
            // sent: their answers would only be dropped.
            let in_flight = self.in_flight.lock();
            batch.retain(|o| in_flight.contains_key(&o.id));
        }
        batch.sort_unstable_by_key(|o| o.packet.len());
        for group in batch.chunk_by(|a, b| a.packet.len() == b.packet.len()) {
            for chunk in group.chunks(gso::MAX_SEGMENTS) {
                self.send_chunk(chunk, buf).await;
            }
        }
        batch.clear();
    }

    /// Sends datagrams of one size, in one GSO send where possible.
    async fn send_chunk(&self, chunk: &[Outgoing], buf: &mut Vec<u8>) {
        if chunk.len() > 1 && self.gso.load(Ordering::Relaxed) {
            buf.clear();
            for outgoing in chunk {
                buf.extend_from_slice(&outgoing.packet);
            }
            let segment = chunk[0].packet.len() as u16;
            let sent = loop {
                if let Err(err) = self.socket.writable().await {
                    break Err(err);
                }
                match self.socket.try_io(Interest::WRITABLE, || {
                    gso::send_segments(&self.socket, buf, segment)
                }) {
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                    other => break other,
                }
            };
            match sent {
                Ok(_) => {
                    self.metrics.udp_send(chunk.len() as u64);
                    return;
                }
                Err(err) if gso::unsupported(&err) => self.gso.store(false, Ordering::Relaxed),
                Err(err) => {
                    for outgoing in chunk {
                        self.fail(outgoing.id, &err);
                    }
                    return;
                }
            }
        }
        for outgoing in chunk {
            match self.socket.send(&outgoing.packet).await {
                Ok(_) => self.metrics.udp_send(1),
                Err(err) => self.fail(outgoing.id, &err),
            }
        }
    }

    /// Ends the query `id` with a send error (every query in flight, when
    /// the error is the port's refusal).
    fn fail(&self, id: u16, err: &io::Error) {
        if err.kind() == io::ErrorKind::ConnectionRefused {
            self.refused();
            return;
        }
        let Some(pending) = self.in_flight.lock().remove(&id) else {
            return;
        };
        let copy = match err.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(err.kind(), err.to_string()),
        };
        let _ = pending.reply.send(Err(TransportError::Io(copy)));
    }

    /// Reads (and so clears) the socket's pending error, acting on a
    /// refused port, and clears tokio's error readiness with it.
    fn take_error(&self) {
        if let Ok(Some(err)) = self.socket.take_error() {
            if err.kind() == io::ErrorKind::ConnectionRefused {
                self.refused();
            }
        }
        let _ = self.socket.try_io(Interest::ERROR, || {
            Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
        });
    }

    /// The server's port is unreachable (ICMP): every query in flight on
    /// this socket went to it, and fails now rather than at its timeout.
    fn refused(&self) {
        let pending: Vec<Pending> = self.in_flight.lock().drain().map(|(_, p)| p).collect();
        for p in pending {
            let _ = p.reply.send(Err(TransportError::Io(io::Error::from(
                io::ErrorKind::ConnectionRefused,
            ))));
        }
    }
}

/// A query [`UdpPool::begin`] started.
pub enum Begun {
    /// Sent, or queued for its batch (or failed): nothing to wait for.
    Sent(Result<SentQuery, TransportError>),
    /// Its send waits (a full socket buffer, a full batch to send).
    Sending(Pin<Box<dyn Future<Output = Result<SentQuery, TransportError>> + Send>>),
}

/// What one query's send came to: counted when sent; a refused port fails
/// every query on the socket (the send took the ICMP error an earlier
/// query caused: they all went to the same closed port).
fn sent_one(
    socket: &PooledSocket,
    metrics: &Metrics,
    sent: io::Result<usize>,
) -> Result<(), TransportError> {
    match sent {
        Ok(_) => {
            metrics.udp_send(1);
            Ok(())
        }
        Err(err) => {
            if err.kind() == io::ErrorKind::ConnectionRefused {
                socket.refused();
            }
            Err(TransportError::Io(err))
        }
    }
}

/// What a query's channel carries: an [`Exchange`] with its message boxed,
/// so that the channel every pending query allocates is a quarter of the
/// size (the message is allocated only once an answer has come).
type Reply = Result<Box<hickory_proto::op::Message>, TransportError>;

/// Removes its in-flight entry when the query ends, however it ends.
/// A query on the wire, waiting for its answer; dropping it forgets the
/// query (an answer arriving after that is dropped as unmatched).
pub struct SentQuery {
    receiver: oneshot::Receiver<Reply>,
    _registration: Registration,
}

impl SentQuery {
    /// The answer, if it comes before `deadline`; `None` when the deadline
    /// passed first (the query keeps listening).
    pub async fn wait_until(&mut self, deadline: tokio::time::Instant) -> Option<Exchange> {
        match tokio::time::timeout_at(deadline, &mut self.receiver).await {
            Ok(Ok(result)) => Some(result.map(|message| *message)),
            // The sender is never dropped while the entry exists; treat a
            // vanished entry like silence for ever.
            Ok(Err(_)) => Some(Err(TransportError::Timeout)),
            Err(_) => None,
        }
    }

    /// The answer if it has come, without waiting.
    pub fn poll_answer(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Exchange> {
        std::future::Future::poll(std::pin::Pin::new(&mut self.receiver), cx).map(|result| {
            match result {
                Ok(reply) => reply.map(|message| *message),
                Err(_) => Err(TransportError::Timeout),
            }
        })
    }
}

struct Registration {
    socket: Arc<PooledSocket>,
    id: u16,
    ticket: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut in_flight = self.socket.in_flight.lock();
        if in_flight
            .get(&self.id)
            .is_some_and(|p| p.ticket == self.ticket)
        {
            in_flight.remove(&self.id);
        }
        if in_flight.is_empty() && self.socket.retired.load(Ordering::Acquire) {
            self.socket.idle.notify_one();
        }
    }
}

/// What the socket task waits for: answers, and errors (ICMP).
const RECEIVE: Interest = Interest::READABLE.add(Interest::ERROR);

/// Reads datagrams (and sends batched queries) until the
/// socket is retired and has nothing in flight.
async fn socket_task(socket: Arc<PooledSocket>) {
    let mut received = RecvBatch::new();
    let mut batch = Vec::new();
    let mut gso_buf = Vec::new();
    loop {
        if socket.finished() {
            return;
        }
        tokio::select! {
            biased;
            _ = socket.flush.notified(), if socket.batching != Batching::Off => {
                // Let the other tasks that are ready now queue theirs first.
                tokio::task::yield_now().await;
                socket.flush_outbox(&mut batch, &mut gso_buf).await;
            }
            // An ICMP error (a closed port) is only error readiness, not
            // readable: wait for both, or it would never wake this task.
            ready = socket.socket.ready(RECEIVE) => {
                let Ok(ready) = ready else { continue };
                if ready.is_error() {
                    socket.take_error();
                }
                if !ready.is_readable() {
                    continue;
                }
                // One interest per `try_io`: it ignores combined ones.
                let read = socket
                    .socket
                    .try_io(Interest::READABLE, || received.recv(&socket.socket));
                match read {
                    Ok(count) => {
                        for i in 0..count {
                            let (bytes, whole) = received.datagram(i);
                            socket.deliver(bytes, whole);
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
                        socket.refused()
                    }
                    // Nothing after all (readiness cleared), or another ICMP
                    // error (host or net unreachable): left to the queries'
                    // timeouts, as it can be transient.
                    Err(_) => {}
                }
            }
            _ = socket.idle.notified() => {}
        }
    }
}
