//! Persistent, pipelined stream connections (RFC 7766 §6.2; RFC 7858 for
//! TLS): per server a few long-lived connections, each carrying many queries
//! at once, answers matched out of order by ID and question
//! ([`super::in_flight`]).
//!
//! - A query goes to the least loaded open connection; another connection is
//!   opened when that one has [`StreamSettings::spread_at`] queries in flight,
//!   up to [`StreamSettings::max_connections`] per server. A connection takes
//!   at most [`StreamSettings::max_in_flight`]; past that, queries wait for
//!   room (within their own timeout).
//! - A connection closes after [`StreamSettings::idle_timeout`] without
//!   queries, or sooner if the server says so with `edns-tcp-keepalive`
//!   (RFC 7828), which the first query of each connection asks for.
//! - When the server closes a connection, the queries pending on it go again
//!   on another (a new one if need be), within their timeout: a server
//!   closing an idle or busy connection (or one that carried its quota of
//!   queries) is not a failure of the server. Only closes of connections that
//!   answered nothing at all count, up to [`CLOSED_RETRIES`] per query, so a
//!   server that accepts and closes at once fails the query quickly. A failed
//!   connect or handshake is a failure, reported to every query that waited
//!   on it.
//! - A query that times out on a connection that has delivered nothing since
//!   the query was sent marks the connection stalled: it is closed, so that
//!   queries after it do not wait on it too.
//!
//! Generic over the byte stream ([`Dial`]): plain TCP ([`super::tcp::TcpDial`])
//! and TLS ([`super::tls::TlsDial`]) share it.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use hickory_proto::op::{Edns, Message};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use super::in_flight::{InFlight, Matched};
use super::{StreamError, StreamExchange, TransportError};
use crate::wire::{encode_padded_query, encode_query, Question};

/// How many times one query is sent again after the connection it waited on
/// closed without having answered anything, before it fails with an I/O
/// error (closes of connections that did answer are retried freely within
/// the query's timeout).
pub const CLOSED_RETRIES: u32 = 3;

/// The EDNS option code of `edns-tcp-keepalive` (RFC 7828).
const KEEPALIVE_OPTION: u16 = 11;

/// Bytes gathered from queued queries into one write (one TLS record, one
/// segment) before it is sent.
const WRITE_BATCH: usize = 16 * 1024;

/// Opens byte streams to a server: plain TCP, or TLS over it.
pub trait Dial: Clone + Send + Sync + 'static {
    /// The connected stream.
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// Connects (and, for TLS, runs the handshake).
    fn dial(
        &self,
        server: SocketAddr,
    ) -> impl Future<Output = Result<Self::Stream, StreamError>> + Send;
}

/// The knobs of a [`StreamPool`], each with its default.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Connections per server at most. Default 4.
    pub max_connections: usize,
    /// Queries in flight per connection at most. Default 128.
    pub max_in_flight: usize,
    /// Open another connection (below `max_connections`) when the least
    /// loaded one has this many in flight. Default 32.
    pub spread_at: usize,
    /// Close a connection after this long without queries in flight.
    /// Default 10 s; a shorter `edns-tcp-keepalive` from the server wins.
    pub idle_timeout: Duration,
    /// The EDNS payload size advertised. Default 1232.
    pub payload: u16,
    /// Require answers to echo the question's 0x20 case exactly.
    pub exact_case: bool,
    /// Pad queries to a multiple of 64 bytes (RFC 7830, RFC 8467): for TLS.
    pub padded: bool,
    /// Ask for `edns-tcp-keepalive` (RFC 7828) on each connection's first
    /// query. Default on.
    pub keepalive: bool,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_connections: 4,
            max_in_flight: 128,
            spread_at: 32,
            idle_timeout: Duration::from_secs(10),
            payload: 1232,
            exact_case: false,
            padded: false,
            keepalive: true,
        }
    }
}

/// What a waiting query is told.
#[derive(Debug)]
enum Reply {
    Answer(Message),
    Malformed,
    /// The connection closed before the answer came: ask again elsewhere.
    /// `answered`: whether it had answered anything before.
    Closed {
        answered: bool,
    },
    /// The connection was given up as stalled (another query waited a whole
    /// timeout on it without a byte): ask again, not counted against the
    /// server; the query's own deadline still bounds it.
    Stalled,
    /// The connection could not be made.
    Failed(StreamError),
}

type Waiter = oneshot::Sender<Reply>;

/// Counters of one pool, for tests and metrics.
#[derive(Debug, Default)]
struct PoolCounters {
    opened: AtomicU64,
    reconnects: AtomicU64,
    unmatched: AtomicU64,
}

/// A point-in-time copy of a pool's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections opened (dialed) so far.
    pub opened: u64,
    /// Queries sent again because their connection closed.
    pub reconnects: u64,
    /// Frames that answered nothing outstanding (dropped).
    pub unmatched: u64,
    /// Connections open (or opening) now.
    pub open: u64,
}

/// Long-lived pipelined connections to any number of servers.
pub struct StreamPool<D: Dial> {
    inner: Arc<PoolInner<D>>,
}

impl<D: Dial> std::fmt::Debug for StreamPool<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamPool")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct PoolInner<D> {
    dial: D,
    settings: StreamSettings,
    servers: Mutex<HashMap<SocketAddr, Vec<Arc<Conn>>>>,
    /// Woken when a connection frees room or closes.
    freed: Arc<Notify>,
    counters: Arc<PoolCounters>,
}

impl<D> Drop for PoolInner<D> {
    fn drop(&mut self) {
        for conn in self.servers.get_mut().values().flatten() {
            conn.kill.notify_one();
        }
    }
}

/// One connection as the askers see it; its task owns the stream.
struct Conn {
    state: Mutex<ConnState>,
    outbox: mpsc::UnboundedSender<Vec<u8>>,
    /// Frames read so far: progress, for stall detection.
    frames: AtomicU64,
    /// The idle timeout in force (the server's keepalive may lower it), ms.
    idle_ms: AtomicU64,
    /// Tells the task to close the connection.
    kill: Notify,
}

struct ConnState {
    table: InFlight<Waiter>,
    closed: bool,
    asked_keepalive: bool,
}

impl Conn {
    fn load(&self) -> Option<usize> {
        let state = self.state.lock();
        (!state.closed).then(|| state.table.len())
    }

    /// Marks the connection closed and hands every pending query `reply`.
    fn close(&self, reply: impl Fn() -> Reply) {
        let waiters = {
            let mut state = self.state.lock();
            state.closed = true;
            state.table.drain()
        };
        for waiter in waiters {
            let _ = waiter.send(reply());
        }
    }
}

impl<D: Dial> StreamPool<D> {
    /// A pool that opens connections with `dial`. Opens nothing yet.
    pub fn new(dial: D, settings: StreamSettings) -> Self {
        Self {
            inner: Arc::new(PoolInner {
                dial,
                settings,
                servers: Mutex::new(HashMap::new()),
                freed: Arc::new(Notify::new()),
                counters: Arc::new(PoolCounters::default()),
            }),
        }
    }

    /// Asks `server` within `timeout` (connecting, queueing and waiting
    /// included), with IDs drawn from `next_id`.
    pub async fn query(
        &self,
        server: SocketAddr,
        question: &Question,
        timeout: Duration,
        next_id: &mut (impl FnMut() -> u16 + Send),
    ) -> StreamExchange {
        let deadline = Instant::now() + timeout;
        let mut closed = 0;
        loop {
            let Some(conn) = self.pick(server) else {
                // Every connection is full: wait for room.
                let freed = self.inner.freed.notified();
                if self.pick_would_succeed(server) {
                    continue;
                }
                if tokio::time::timeout_at(deadline, freed).await.is_err() {
                    return Err(TransportError::Timeout.into());
                }
                continue;
            };
            let (tx, rx) = oneshot::channel();
            let inserted = {
                let mut state = conn.state.lock();
                if state.closed {
                    None
                } else if let Ok(id) = state.table.insert(question.clone(), tx, next_id) {
                    let keepalive = self.inner.settings.keepalive && !state.asked_keepalive;
                    state.asked_keepalive = true;
                    Some((id, keepalive))
                } else {
                    None
                }
            };
            let Some((id, keepalive)) = inserted else {
                // Closed or filled up since it was picked: pick again.
                tokio::task::yield_now().await;
                continue;
            };
            let progress = conn.frames.load(Ordering::Acquire);
            let frame = self.frame(id, question, keepalive);
            if conn.outbox.send(frame).is_err() {
                // The task is gone (it drains the table as it goes).
                conn.state.lock().table.remove(id);
                continue;
            }
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(Reply::Answer(message))) => return Ok(message),
                Ok(Ok(Reply::Malformed)) => return Err(TransportError::Malformed.into()),
                Ok(Ok(Reply::Failed(err))) => return Err(err),
                Ok(Ok(Reply::Closed { answered: true } | Reply::Stalled)) => {
                    self.inner
                        .counters
                        .reconnects
                        .fetch_add(1, Ordering::Relaxed);
                }
                Ok(Ok(Reply::Closed { answered: false }) | Err(_)) => {
                    closed += 1;
                    if closed > CLOSED_RETRIES {
                        return Err(StreamError::io(
                            std::io::ErrorKind::ConnectionReset,
                            format!("{server} closed {closed} connections unanswered"),
                        ));
                    }
                    self.inner
                        .counters
                        .reconnects
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    if conn.state.lock().table.remove(id).is_some() {
                        self.inner.freed.notify_waiters();
                    }
                    if conn.frames.load(Ordering::Acquire) == progress {
                        // Nothing came on this connection for a whole
                        // timeout: stalled (or the server is down).
                        conn.kill.notify_one();
                    }
                    return Err(TransportError::Timeout.into());
                }
            }
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> PoolStats {
        let counters = &self.inner.counters;
        let open = self
            .inner
            .servers
            .lock()
            .values()
            .flatten()
            .filter(|c| c.load().is_some())
            .count() as u64;
        PoolStats {
            opened: counters.opened.load(Ordering::Relaxed),
            reconnects: counters.reconnects.load(Ordering::Relaxed),
            unmatched: counters.unmatched.load(Ordering::Relaxed),
            open,
        }
    }

    /// The encoded, length-prefixed query.
    fn frame(&self, id: u16, question: &Question, keepalive: bool) -> Vec<u8> {
        let settings = &self.inner.settings;
        let packet = if settings.padded {
            encode_padded_query(id, question, settings.payload)
        } else {
            encode_query(id, question, settings.payload)
        };
        let with_keepalive = if keepalive {
            add_keepalive(&packet)
        } else {
            None
        };
        let message: &[u8] = with_keepalive.as_deref().unwrap_or(&packet);
        let mut frame = Vec::with_capacity(message.len() + 2);
        // Queries are at most a few hundred bytes: the length fits.
        frame.extend_from_slice(&(message.len() as u16).to_be_bytes());
        frame.extend_from_slice(message);
        frame
    }

    /// The connection a query should go on, opening one if the policy says
    /// so; `None` when every connection is full.
    fn pick(&self, server: SocketAddr) -> Option<Arc<Conn>> {
        let settings = &self.inner.settings;
        let mut servers = self.inner.servers.lock();
        let conns = servers.entry(server).or_default();
        let mut best: Option<(usize, &Arc<Conn>)> = None;
        let mut live = 0;
        for conn in conns.iter() {
            if let Some(load) = conn.load() {
                live += 1;
                if best.is_none_or(|(l, _)| load < l) {
                    best = Some((load, conn));
                }
            }
        }
        let picked = match best {
            Some((load, conn)) if load < settings.spread_at || live >= settings.max_connections => {
                (load < settings.max_in_flight).then(|| conn.clone())
            }
            _ => None,
        };
        if picked.is_some() || live >= settings.max_connections {
            return picked;
        }
        conns.retain(|c| c.load().is_some());
        let conn = self.open(server);
        conns.push(conn.clone());
        Some(conn)
    }

    fn pick_would_succeed(&self, server: SocketAddr) -> bool {
        let settings = &self.inner.settings;
        let servers = self.inner.servers.lock();
        let Some(conns) = servers.get(&server) else {
            return true;
        };
        let loads: Vec<usize> = conns.iter().filter_map(|c| c.load()).collect();
        loads.len() < settings.max_connections || loads.iter().any(|&l| l < settings.max_in_flight)
    }

    /// Starts a connection's task; the connection takes queries at once
    /// (they wait in its outbox while it connects).
    fn open(&self, server: SocketAddr) -> Arc<Conn> {
        let settings = &self.inner.settings;
        let (outbox, queued) = mpsc::unbounded_channel();
        let conn = Arc::new(Conn {
            state: Mutex::new(ConnState {
                table: InFlight::new(settings.max_in_flight),
                closed: false,
                asked_keepalive: false,
            }),
            outbox,
            frames: AtomicU64::new(0),
            idle_ms: AtomicU64::new(settings.idle_timeout.as_millis() as u64),
            kill: Notify::new(),
        });
        self.inner.counters.opened.fetch_add(1, Ordering::Relaxed);
        let task = ConnTask {
            conn: conn.clone(),
            freed: self.inner.freed.clone(),
            counters: self.inner.counters.clone(),
            exact_case: settings.exact_case,
        };
        let dial = self.inner.dial.clone();
        tokio::spawn(async move {
            let connected = tokio::select! {
                stream = dial.dial(server) => stream,
                () = task.conn.kill.notified() => {
                    task.conn.close(|| Reply::Stalled);
                    task.freed.notify_waiters();
                    return;
                }
            };
            match connected {
                Ok(stream) => task.run(stream, queued).await,
                Err(err) => {
                    task.conn.close(|| Reply::Failed(err.duplicate()));
                    task.freed.notify_waiters();
                }
            }
        });
        conn
    }
}

/// What a connection's task works with.
struct ConnTask {
    conn: Arc<Conn>,
    freed: Arc<Notify>,
    counters: Arc<PoolCounters>,
    exact_case: bool,
}

impl ConnTask {
    /// Writes queued queries, reads and matches answers, until the server
    /// closes, the connection idles out or is killed.
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        self,
        stream: S,
        mut queued: mpsc::UnboundedReceiver<Vec<u8>>,
    ) {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut buf = BytesMut::with_capacity(4096);
        let mut batch: Vec<u8> = Vec::with_capacity(4096);
        let mut last_activity = Instant::now();
        let mut killed = false;
        loop {
            let idle = self.conn.state.lock().table.is_empty();
            let idle_for = Duration::from_millis(self.conn.idle_ms.load(Ordering::Relaxed));
            tokio::select! {
                biased;
                () = self.conn.kill.notified() => {
                    killed = true;
                    break;
                }
                read = reader.read_buf(&mut buf) => {
                    match read {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if self.take_frames(&mut buf) {
                        last_activity = Instant::now();
                    }
                }
                query = queued.recv() => {
                    let Some(first) = query else { break };
                    batch.extend_from_slice(&first);
                    while batch.len() < WRITE_BATCH {
                        let Ok(more) = queued.try_recv() else { break };
                        batch.extend_from_slice(&more);
                    }
                    let written = writer.write_all(&batch).await;
                    batch.clear();
                    if written.is_err() || writer.flush().await.is_err() {
                        break;
                    }
                    last_activity = Instant::now();
                }
                () = tokio::time::sleep_until(last_activity + idle_for), if idle => break,
            }
        }
        let answered = self.conn.frames.load(Ordering::Acquire) > 0;
        if killed {
            self.conn.close(|| Reply::Stalled);
        } else {
            self.conn.close(|| Reply::Closed { answered });
        }
        self.freed.notify_waiters();
        // A polite close (TLS close_notify, FIN), but never wait long.
        let _ = tokio::time::timeout(Duration::from_millis(100), writer.shutdown()).await;
    }

    /// Matches every whole frame in `buf`; whether any answered a query.
    fn take_frames(&self, buf: &mut BytesMut) -> bool {
        let mut delivered = false;
        while buf.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
            if buf.len() < 2 + len {
                buf.reserve(2 + len - buf.len());
                break;
            }
            buf.advance(2);
            let frame = buf.split_to(len);
            self.conn.frames.fetch_add(1, Ordering::AcqRel);
            let matched = self
                .conn
                .state
                .lock()
                .table
                .on_frame(&frame, self.exact_case);
            match matched {
                Matched::Answer(waiter, message) => {
                    if let Some(idle) = keepalive_timeout(&message) {
                        let ms = idle.as_millis() as u64;
                        self.conn.idle_ms.fetch_min(ms, Ordering::Relaxed);
                    }
                    let _ = waiter.send(Reply::Answer(message));
                    delivered = true;
                }
                Matched::Malformed(waiter) => {
                    let _ = waiter.send(Reply::Malformed);
                    delivered = true;
                }
                Matched::Unmatched => {
                    self.counters.unmatched.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if delivered {
            self.freed.notify_waiters();
        }
        delivered
    }
}

/// Adds an empty `edns-tcp-keepalive` option to an encoded query whose last
/// record is its OPT record; `None` if the packet is not of that shape.
pub fn add_keepalive(packet: &[u8]) -> Option<Vec<u8>> {
    let additional = u16::from_be_bytes([*packet.get(10)?, *packet.get(11)?]);
    if additional != 1 || packet.get(6..10)? != [0, 0, 0, 0] {
        return None;
    }
    // Skip the question's name (uncompressed labels) and type and class.
    let mut at = 12;
    loop {
        let len = usize::from(*packet.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        at += len;
    }
    at += 4;
    // OPT: root owner, type 41, class, TTL, then RDLENGTH at +9.
    if packet.get(at..at + 3)? != [0, 0, 41] {
        return None;
    }
    let rdlength_at = at + 9;
    let rdlength = u16::from_be_bytes([*packet.get(rdlength_at)?, *packet.get(rdlength_at + 1)?]);
    if packet.len() != rdlength_at + 2 + usize::from(rdlength) {
        return None;
    }
    let mut with = packet.to_vec();
    with[rdlength_at..rdlength_at + 2].copy_from_slice(&(rdlength + 4).to_be_bytes());
    with.extend_from_slice(&KEEPALIVE_OPTION.to_be_bytes());
    with.extend_from_slice(&[0, 0]);
    Some(with)
}

/// The idle timeout a server announced with `edns-tcp-keepalive`, if any.
pub fn keepalive_timeout(message: &Message) -> Option<Duration> {
    let edns: &Edns = message.edns.as_ref()?;
    match edns.option(EdnsCode::Keepalive)? {
        EdnsOption::Unknown(_, data) if data.len() == 2 => {
            let units = u16::from_be_bytes([data[0], data[1]]);
            Some(Duration::from_millis(u64::from(units) * 100))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::RecordType;

    #[test]
    fn keepalive_is_appended_to_the_opt_record() {
        let question = Question::new("h1.crawl.test", RecordType::A, false).unwrap();
        let plain = encode_query(0x4242, &question, 1232).to_vec();
        let with = add_keepalive(&plain).unwrap();
        assert_eq!(with.len(), plain.len() + 4);
        let message = Message::from_vec(&with).unwrap();
        let edns = message.edns.as_ref().unwrap();
        assert_eq!(edns.max_payload(), 1232);
        assert!(edns.option(EdnsCode::Keepalive).is_some());
        assert_eq!(message.queries.len(), 1);
        // Padded queries keep their padding and gain the option too.
        let padded = encode_padded_query(1, &question, 1232).to_vec();
        let with = add_keepalive(&padded).unwrap();
        let message = Message::from_vec(&with).unwrap();
        let edns = message.edns.as_ref().unwrap();
        assert!(edns.option(EdnsCode::Keepalive).is_some());
        assert!(edns.option(EdnsCode::Padding).is_some());
        // Not a query of the expected shape: left alone.
        assert!(add_keepalive(&[0; 5]).is_none());
    }

    #[test]
    fn the_servers_keepalive_is_read_in_units_of_100_ms() {
        let mut message = Message::query();
        let mut edns = Edns::new();
        edns.options_mut()
            .insert(EdnsOption::Unknown(KEEPALIVE_OPTION, vec![0, 25]));
        message.set_edns(edns);
        let bytes = message.to_vec().unwrap();
        let parsed = Message::from_vec(&bytes).unwrap();
        assert_eq!(
            keepalive_timeout(&parsed),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(keepalive_timeout(&Message::query()), None);
    }
}
