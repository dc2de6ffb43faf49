//! Connections kept per origin, under a per-host and a global limit.
//!
//! Every open connection, busy, idle or closing, holds one [`Slot`]: it
//! counts against its origin's limit and the global one until the
//! connection is closed, so the limits count open connections exactly as a
//! server (or the testbed farm) sees them.
//!
//! Keep-alive under the global limit:
//! - a connection coming back goes first to a request queued for the same
//!   origin (no new connection needed there);
//! - only when its origin has nothing queued does it become idle;
//! - when requests of other origins wait for a global slot, idle
//!   connections are closed for them, least recently used first, never one
//!   of an origin with requests queued;
//! - queued requests that may open a connection get the freed slots in
//!   the order they arrived, so no origin starves.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::conn::Conn;

/// Scheme, host and port: what a connection can be reused for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// True for https.
    pub tls: bool,
    /// Host name or IP literal, lower-case.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// [`Slot::life`] values; read and written under the pool's lock only.
const LIVE: u8 = 0;
const EVICTED: u8 = 1;
const RELEASED: u8 = 2;

/// One open connection's place under the limits; released when dropped.
pub(crate) struct Slot {
    pool: Weak<Inner>,
    origin: Origin,
    /// [`LIVE`], [`EVICTED`] (closed for room) or [`RELEASED`].
    life: Arc<AtomicU8>,
    armed: bool,
}

impl Slot {
    /// The flag the slot's connection shares with the pool.
    pub fn life(&self) -> Arc<AtomicU8> {
        self.life.clone()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.release(&self.origin, &self.life);
        }
    }
}

/// What a request gets from the pool.
pub(crate) enum Checkout {
    /// A kept-alive connection.
    Reused(Conn),
    /// Room to open a new connection.
    New(Slot),
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

struct Idle {
    conn: Conn,
    since: Instant,
    seq: u64,
}

struct Waiter {
    seq: u64,
    tx: oneshot::Sender<Checkout>,
}

/// What an origin speaks, once its first connection said so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Proto {
    #[default]
    Unknown,
    H1,
    H2,
}

#[derive(Default)]
struct OriginState {
    /// Idle connections, oldest first.
    idle: VecDeque<Idle>,
    proto: Proto,
    /// The origin's HTTP/2 connection, shared by its requests.
    h2: Option<Conn>,
    /// Requests in flight on `h2` (at most the per-host limit).
    streams: usize,
    /// `h2`'s key in the LRU while it has no stream.
    h2_idle_seq: Option<u64>,
    /// Connections holding a slot: busy, idle or closing.
    open: usize,
    /// Requests waiting, in arrival order.
    waiters: VecDeque<Waiter>,
}

struct State {
    origins: HashMap<Origin, OriginState>,
    /// Origins with requests waiting.
    waiting: HashSet<Origin>,
    /// Every idle connection by its idle sequence number: the first is the
    /// least recently used.
    lru: BTreeMap<u64, Origin>,
    open: usize,
    /// Connections closed for room that have not released their slot yet.
    closing: usize,
    seq: u64,
}

struct Inner {
    state: Mutex<State>,
    global: usize,
    per_host: usize,
    idle_timeout: Duration,
    opened: AtomicU64,
    reused: AtomicU64,
    evicted: AtomicU64,
    pace: Mutex<HashMap<Origin, Instant>>,
}

/// The pool. Cheap to clone (shared).
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    /// A pool allowing `global` open connections, `per_host` per origin.
    pub fn new(global: usize, per_host: usize, idle_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    origins: HashMap::new(),
                    waiting: HashSet::new(),
                    lru: BTreeMap::new(),
                    open: 0,
                    closing: 0,
                    seq: 0,
                }),
                global: global.max(1),
                per_host: per_host.max(1),
                idle_timeout,
                opened: AtomicU64::new(0),
                reused: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
                pace: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            opened: self.inner.opened.load(Ordering::Relaxed),
            reused: self.inner.reused.load(Ordering::Relaxed),
            evicted: self.inner.evicted.load(Ordering::Relaxed),
        }
    }

    /// Waits until this origin may start another request under a politeness
    /// rate of `per_second` requests.
    pub async fn pace(&self, origin: &Origin, per_second: f64) {
        if !(per_second.is_finite() && per_second > 0.0) {
            return;
        }
        let gap = Duration::from_secs_f64(1.0 / per_second);
        let start = {
            let mut pace = self.inner.pace.lock();
            let now = Instant::now();
            if pace.len() > 4096 {
                pace.retain(|_, next| *next > now);
            }
            let next = pace.entry(origin.clone()).or_insert(now);
            let start = (*next).max(now);
            *next = start + gap;
            start
        };
        tokio::time::sleep_until(start).await;
    }

    /// A kept-alive connection to `origin`, or a slot to open one; waits
    /// in line behind earlier requests when neither is free.
    pub async fn checkout(&self, origin: &Origin) -> Checkout {
        loop {
            let rx = {
                let mut state = self.inner.state.lock();
                let now = Instant::now();
                let per_host = self.inner.per_host;
                let o = state.origins.entry(origin.clone()).or_default();
                let mut stale = Vec::new();
                if o.h2.as_ref().is_some_and(|h2| h2.sender.is_closed()) {
                    o.h2 = None;
                    stale.extend(o.h2_idle_seq.take());
                }
                if let Some(h2) = &o.h2 {
                    if o.waiters.is_empty() && o.streams < per_host {
                        if let Some(conn) = h2.share() {
                            o.streams += 1;
                            stale.extend(o.h2_idle_seq.take());
                            for seq in stale {
                                state.lru.remove(&seq);
                            }
                            self.inner.reused.fetch_add(1, Ordering::Relaxed);
                            return Checkout::Reused(conn);
                        }
                    }
                }
                let mut found = None;
                while let Some(idle) = o.idle.pop_back() {
                    stale.push(idle.seq);
                    if !idle.conn.sender.is_closed() && now - idle.since < self.inner.idle_timeout {
                        found = Some(idle.conn);
                        break;
                    }
                    // Dropping it closes it; its driver releases the slot.
                }
                let can_open = o.waiters.is_empty() && may_open(origin, o, per_host);
                for seq in stale {
                    state.lru.remove(&seq);
                }
                if let Some(conn) = found {
                    self.inner.reused.fetch_add(1, Ordering::Relaxed);
                    return Checkout::Reused(conn);
                }
                if can_open && state.open < self.inner.global {
                    return Checkout::New(self.inner.grant_new(&mut state, origin));
                }
                let (tx, rx) = oneshot::channel();
                state.seq += 1;
                let seq = state.seq;
                if let Some(o) = state.origins.get_mut(origin) {
                    o.waiters.push_back(Waiter { seq, tx });
                }
                state.waiting.insert(origin.clone());
                self.inner.dispatch(&mut state);
                rx
            };
            if let Ok(checkout) = rx.await {
                return checkout;
            }
        }
    }

    /// A new connection is up: learn what its origin speaks. An HTTP/2
    /// connection becomes the origin's shared one (this request is its
    /// first stream), and requests that waited to learn it get going.
    pub fn opened(&self, origin: &Origin, conn: &Conn) {
        let mut state = self.inner.state.lock();
        if let Some(o) = state.origins.get_mut(origin) {
            if conn.is_h2() {
                o.proto = Proto::H2;
                if o.h2.is_none() {
                    o.h2 = conn.share();
                    o.streams += 1;
                }
            } else {
                o.proto = Proto::H1;
            }
        }
        self.inner.dispatch(&mut state);
    }

    /// Gives a connection back after a complete exchange.
    pub fn checkin(&self, origin: &Origin, conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let mut state = self.inner.state.lock();
        if conn.is_h2() {
            state.seq += 1;
            let seq = state.seq;
            if let Some(o) = state.origins.get_mut(origin) {
                if o.h2.as_ref().is_some_and(|h2| h2.same_as(&conn)) {
                    o.streams = o.streams.saturating_sub(1);
                    if o.streams == 0 && o.waiters.is_empty() {
                        o.h2_idle_seq = Some(seq);
                        state.lru.insert(seq, origin.clone());
                    }
                }
            }
            // A second HTTP/2 connection (opened in a race) closes when its
            // last handle goes.
            drop(conn);
            self.inner.dispatch(&mut state);
            return;
        }
        let mut conn = conn;
        if let Some(o) = state.origins.get_mut(origin) {
            while let Some(waiter) = o.waiters.pop_front() {
                match waiter.tx.send(Checkout::Reused(conn)) {
                    Ok(()) => {
                        self.inner.reused.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(Checkout::Reused(back)) => conn = back,
                    Err(Checkout::New(mut slot)) => {
                        // Unreachable: we sent a connection. Defuse anyway.
                        slot.armed = false;
                        return;
                    }
                }
            }
        }
        state.seq += 1;
        let seq = state.seq;
        let Some(o) = state.origins.get_mut(origin) else {
            return;
        };
        o.idle.push_back(Idle {
            conn,
            since: Instant::now(),
            seq,
        });
        state.lru.insert(seq, origin.clone());
        state.waiting.remove(origin);
        self.inner.dispatch(&mut state);
    }
}

/// Whether `origin` may open another connection: under its limit, not
/// served by an HTTP/2 connection, and (for https) not while its first
/// connection is still finding out whether it speaks HTTP/2.
fn may_open(origin: &Origin, o: &OriginState, per_host: usize) -> bool {
    o.open < per_host && o.h2.is_none() && !(origin.tls && o.proto == Proto::Unknown && o.open > 0)
}

impl Inner {
    /// Counts a new connection for `origin` (the caller checked the limits).
    fn grant_new(self: &Arc<Self>, state: &mut State, origin: &Origin) -> Slot {
        state.open += 1;
        if let Some(o) = state.origins.get_mut(origin) {
            o.open += 1;
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        Slot {
            pool: Arc::downgrade(self),
            origin: origin.clone(),
            life: Arc::new(AtomicU8::new(LIVE)),
            armed: true,
        }
    }

    /// A connection's slot is free again.
    fn release(self: &Arc<Self>, origin: &Origin, life: &AtomicU8) {
        let mut state = self.state.lock();
        state.open = state.open.saturating_sub(1);
        if life.swap(RELEASED, Ordering::AcqRel) == EVICTED {
            state.closing = state.closing.saturating_sub(1);
        }
        if let Some(o) = state.origins.get_mut(origin) {
            o.open = o.open.saturating_sub(1);
            if o.open == 0 && o.idle.is_empty() && o.waiters.is_empty() && o.h2.is_none() {
                state.origins.remove(origin);
            }
        }
        self.dispatch(&mut state);
    }

    /// Hands out what is free to the requests waiting: new-connection
    /// slots in arrival order, and idle connections of origins with nothing
    /// queued closed (least recently used first) to make room.
    fn dispatch(self: &Arc<Self>, state: &mut State) {
        self.dispatch_h2(state);
        loop {
            let mut oldest: Option<(u64, Origin)> = None;
            let mut eligible = 0usize;
            let mut done = Vec::new();
            for origin in &state.waiting {
                let Some(o) = state.origins.get_mut(origin) else {
                    done.push(origin.clone());
                    continue;
                };
                while o.waiters.front().is_some_and(|w| w.tx.is_closed()) {
                    o.waiters.pop_front();
                }
                let Some(head) = o.waiters.front() else {
                    done.push(origin.clone());
                    continue;
                };
                if may_open(origin, o, self.per_host) {
                    eligible += o.waiters.len().min(self.per_host - o.open);
                    if oldest.as_ref().is_none_or(|(seq, _)| head.seq < *seq) {
                        oldest = Some((head.seq, origin.clone()));
                    }
                }
            }
            for origin in done {
                state.waiting.remove(&origin);
            }
            let Some((_, origin)) = oldest else { return };
            if state.open < self.global {
                let slot = self.grant_new(state, &origin);
                let waiter = state
                    .origins
                    .get_mut(&origin)
                    .and_then(|o| o.waiters.pop_front());
                let sent = match waiter {
                    Some(waiter) => waiter.tx.send(Checkout::New(slot)),
                    None => Err(Checkout::New(slot)),
                };
                if let Err(Checkout::New(mut slot)) = sent {
                    // The request gave up meanwhile: undo, without taking
                    // the lock again in the slot's drop.
                    slot.armed = false;
                    state.open -= 1;
                    if let Some(o) = state.origins.get_mut(&origin) {
                        o.open -= 1;
                    }
                    self.opened.fetch_sub(1, Ordering::Relaxed);
                }
                continue;
            }
            if state.closing >= eligible || !self.evict_lru(state) {
                return;
            }
        }
    }

    /// Starts waiting requests of origins with an HTTP/2 connection on it,
    /// up to the per-host limit of streams.
    fn dispatch_h2(&self, state: &mut State) {
        let State {
            origins,
            waiting,
            lru,
            ..
        } = state;
        for origin in waiting.iter() {
            let Some(o) = origins.get_mut(origin) else {
                continue;
            };
            while o.streams < self.per_host {
                let Some(conn) = o.h2.as_ref().and_then(Conn::share) else {
                    break;
                };
                let Some(waiter) = o.waiters.pop_front() else {
                    break;
                };
                o.streams += 1;
                if let Some(seq) = o.h2_idle_seq.take() {
                    lru.remove(&seq);
                }
                if waiter.tx.send(Checkout::Reused(conn)).is_ok() {
                    self.reused.fetch_add(1, Ordering::Relaxed);
                } else {
                    o.streams -= 1;
                }
            }
        }
    }

    /// Closes the least recently used idle connection of an origin with
    /// nothing queued; false if there is none.
    fn evict_lru(&self, state: &mut State) -> bool {
        let victim = state.lru.iter().find_map(|(seq, origin)| {
            let o = state.origins.get(origin)?;
            o.waiters.is_empty().then(|| (*seq, origin.clone()))
        });
        let Some((seq, origin)) = victim else {
            return false;
        };
        state.lru.remove(&seq);
        let Some(o) = state.origins.get_mut(&origin) else {
            return false;
        };
        if o.h2_idle_seq == Some(seq) {
            o.h2_idle_seq = None;
            if let Some(conn) = o.h2.take() {
                if conn.life.swap(EVICTED, Ordering::AcqRel) == LIVE {
                    state.closing += 1;
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
            }
            return true;
        }
        let Some(at) = o.idle.iter().position(|idle| idle.seq == seq) else {
            return false;
        };
        if let Some(idle) = o.idle.remove(at) {
            // A connection whose slot is already released (the server
            // closed it) frees nothing more.
            if idle.conn.life.swap(EVICTED, Ordering::AcqRel) == LIVE {
                state.closing += 1;
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
            drop(idle);
        }
        true
    }
}
