//! Connections kept per origin, under a per-host and a global limit.
//!
//! Every open connection, busy or idle, holds one permit of its host's
//! semaphore and one of the global semaphore, so the limits count open
//! connections exactly as a server (or the testbed farm) sees them. When
//! the global limit is reached, idle connections of other hosts are closed
//! to make room; a connection coming back while someone waits for a global
//! permit is closed instead of kept idle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::Connection;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Scheme, host and port: what a connection can be reused for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// True for https.
    pub tls: bool,
    /// Host name or IP literal, lower-case.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// How long a closing connection waits for the server to see the close
/// (its end of stream) before the connection's permits are released anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// An open HTTP/1.1 connection. Its permits live in its driver task and
/// are released only when the connection is closed, so the limits hold as
/// the server counts them.
pub struct Conn {
    pub sender: SendRequest<Empty<Bytes>>,
    idle_since: Instant,
    /// Dropping this tells the driver to close the connection.
    _closing: oneshot::Sender<()>,
}

impl Conn {
    /// Takes over a handshaken connection: spawns its driver, which owns
    /// `permits` until the connection is closed.
    pub fn start<T>(
        sender: SendRequest<Empty<Bytes>>,
        connection: Connection<T, Empty<Bytes>>,
        permits: Permits,
    ) -> Self
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        T: IntoInnerIo,
    {
        let (closing, closed) = oneshot::channel();
        tokio::spawn(drive(connection, closed, permits));
        Self {
            sender,
            idle_since: Instant::now(),
            _closing: closing,
        }
    }
}

/// Gives back the transport under hyper's I/O adapter, for a graceful close.
pub trait IntoInnerIo {
    /// The transport.
    type Io: AsyncRead + AsyncWrite + Unpin + Send;
    /// Unwraps it.
    fn into_inner_io(self) -> Self::Io;
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> IntoInnerIo for TokioIo<S> {
    type Io = S;
    fn into_inner_io(self) -> S {
        self.into_inner()
    }
}

/// Runs a connection until it is done or told to close, then closes it
/// gracefully: our FIN, then the server's end of stream (bounded).
async fn drive<T>(
    connection: Connection<T, Empty<Bytes>>,
    closed: oneshot::Receiver<()>,
    permits: Permits,
) where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static + IntoInnerIo,
{
    let _permits = permits;
    let mut running = std::pin::pin!(connection.without_shutdown());
    let parts = tokio::select! {
        parts = &mut running => parts.ok(),
        _ = closed => tokio::time::timeout(CLOSE_WAIT, &mut running).await.ok().and_then(Result::ok),
    };
    let Some(parts) = parts else { return };
    let mut io = parts.io.into_inner_io();
    let _ = tokio::time::timeout(CLOSE_WAIT, async move {
        let _ = io.shutdown().await;
        let mut sink = [0u8; 1024];
        while let Ok(n) = io.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// The two permits a new connection needs.
pub struct Permits {
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

/// What a request gets from the pool.
pub enum Checkout {
    /// A kept-alive connection.
    Reused(Conn),
    /// Room to open a new connection.
    New(Permits),
}

struct HostSlot {
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
    returned: Notify,
    /// Requests waiting for a connection to this origin.
    waiters: AtomicUsize,
    next_start: Mutex<Option<Instant>>,
}

/// Counters of connection use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections opened.
    pub opened: u64,
    /// Requests that reused a kept-alive connection.
    pub reused: u64,
    /// Idle connections closed to make room under the global limit.
    pub evicted: u64,
}

/// The pool.
pub struct Pool {
    hosts: Mutex<HashMap<Origin, Arc<HostSlot>>>,
    global: Arc<Semaphore>,
    global_waiters: AtomicUsize,
    per_host: usize,
    idle_timeout: Duration,
    checkouts: AtomicU64,
    opened: AtomicU64,
    reused: AtomicU64,
    evicted: AtomicU64,
}

impl Pool {
    /// A pool allowing `global` open connections, `per_host` per origin.
    pub fn new(global: usize, per_host: usize, idle_timeout: Duration) -> Self {
        Self {
            hosts: Mutex::new(HashMap::new()),
            global: Arc::new(Semaphore::new(global.max(1))),
            global_waiters: AtomicUsize::new(0),
            per_host: per_host.max(1),
            idle_timeout,
            checkouts: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            reused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            opened: self.opened.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    fn slot(&self, origin: &Origin) -> Arc<HostSlot> {
        let mut hosts = self.hosts.lock();
        // Forget hosts with nothing open now and then, so a crawl over
        // millions of hosts does not keep a slot for each.
        if self.checkouts.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            let per_host = self.per_host;
            hosts.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || !slot.idle.lock().is_empty()
                    || slot.permits.available_permits() < per_host
                    || slot.next_start.lock().is_some_and(|t| t > Instant::now())
            });
        }
        hosts
            .entry(origin.clone())
            .or_insert_with(|| {
                Arc::new(HostSlot {
                    idle: Mutex::new(Vec::new()),
                    permits: Arc::new(Semaphore::new(self.per_host)),
                    returned: Notify::new(),
                    waiters: AtomicUsize::new(0),
                    next_start: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Waits until this origin may start another request under a politeness
    /// rate of `per_second` requests.
    pub async fn pace(&self, origin: &Origin, per_second: f64) {
        if !(per_second.is_finite() && per_second > 0.0) {
            return;
        }
        let gap = Duration::from_secs_f64(1.0 / per_second);
        let slot = self.slot(origin);
        let start = {
            let mut next = slot.next_start.lock();
            let now = Instant::now();
            let start = next.map_or(now, |t| t.max(now));
            *next = Some(start + gap);
            start
        };
        tokio::time::sleep_until(start).await;
    }

    /// A kept-alive connection to `origin`, or the permits to open one.
    pub async fn checkout(&self, origin: &Origin) -> Checkout {
        let slot = self.slot(origin);
        loop {
            let returned = slot.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            if let Some(conn) = self.take_idle(&slot) {
                self.reused.fetch_add(1, Ordering::Relaxed);
                return Checkout::Reused(conn);
            }
            slot.waiters.fetch_add(1, Ordering::AcqRel);
            let host = tokio::select! {
                permit = slot.permits.clone().acquire_owned() => permit.ok(),
                _ = &mut returned => None,
            };
            slot.waiters.fetch_sub(1, Ordering::AcqRel);
            let Some(host) = host else { continue };
            let global = self.global_permit(origin).await;
            self.opened.fetch_add(1, Ordering::Relaxed);
            return Checkout::New(Permits {
                _host: host,
                _global: global,
            });
        }
    }

    /// Gives a connection back after a complete exchange.
    pub fn checkin(&self, origin: &Origin, mut conn: Conn) {
        let slot = self.slot(origin);
        let host_waiting = slot.waiters.load(Ordering::Acquire) > 0;
        if conn.sender.is_closed()
            || (!host_waiting && self.global_waiters.load(Ordering::Acquire) > 0)
        {
            // Requests for other hosts need the global permit more than this
            // host needs an idle connection.
            drop(conn);
            return;
        }
        conn.idle_since = Instant::now();
        slot.idle.lock().push(conn);
        slot.returned.notify_one();
    }

    fn take_idle(&self, slot: &HostSlot) -> Option<Conn> {
        let mut idle = slot.idle.lock();
        while let Some(conn) = idle.pop() {
            if !conn.sender.is_closed() && conn.idle_since.elapsed() < self.idle_timeout {
                return Some(conn);
            }
        }
        None
    }

    async fn global_permit(&self, origin: &Origin) -> OwnedSemaphorePermit {
        loop {
            if let Ok(permit) = self.global.clone().try_acquire_owned() {
                return permit;
            }
            if !self.evict_idle_elsewhere(origin) {
                break;
            }
        }
        self.global_waiters.fetch_add(1, Ordering::AcqRel);
        let permit = self.global.clone().acquire_owned().await;
        self.global_waiters.fetch_sub(1, Ordering::AcqRel);
        // The semaphore is never closed.
        permit.expect("the global semaphore is never closed")
    }

    /// Closes one idle connection of another origin; false if none.
    fn evict_idle_elsewhere(&self, origin: &Origin) -> bool {
        let hosts = self.hosts.lock();
        for (other, slot) in hosts.iter() {
            if other == origin {
                continue;
            }
            if let Some(conn) = slot.idle.lock().pop() {
                drop(conn);
                self.evicted.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        false
    }
}
