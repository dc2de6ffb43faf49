//! Bulk resolution: many lookups driven by one loop, the shape of massdns.
//!
//! [`Resolver::lookup`] gives every lookup a future, a single-flight entry
//! and a trip through the UDP pool's socket task: right for a crawler,
//! whose names repeat and whose lookups start one by one, and about a
//! microsecond of bookkeeping per lookup too much for a list of a million
//! distinct names. [`Bulk`] keeps each lookup as a slot in a table, maps
//! query IDs to slots, keeps deadlines in one heap, and reads and writes
//! one connected UDP socket per server itself, in the caller's task.
//!
//! The decisions are the resolver's own, not copies: each slot runs an
//! [`Attempts`] against the resolver's health table (server order,
//! adaptive timeouts, failover, the retry budget in time), its deadlines
//! are re-armed as `rearm.rs` says, answers are checked by `wire::judge`
//! exactly as the UDP pool checks them (ID, source, question, 0x20 case),
//! an earlier attempt's answer still counts (late answers), and the
//! answer is read into a [`Lookup`] by the same step as a lookup's. What
//! the loop does not do itself goes to [`Resolver::lookup`], as a future
//! polled here: names that are not already normal (IP literals,
//! `localhost`, upper case, a final dot), PTR lookups, the hosts file,
//! servers that are not plain UDP, truncated answers (TCP) and CNAME
//! chains an answer stops short of. The cache is neither read nor written
//! by the slots: a bulk list is distinct names.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hickory_proto::op::ResponseCode;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use crate::attempts::{Action, Attempts, Event, Transport};
use crate::config::Protocol;
use crate::error::{describe_io, io_kind, Error, ErrorKind};
use crate::exchange::{give_up_error, step, Core, Step};
use crate::metrics::Metrics;
use crate::name::{already_normal, is_localhost};
use crate::probe;
use crate::rearm::Rearm;
use crate::records::{Lookup, QueryType};
use crate::resolver::Resolver;
use crate::rng::{self, Random};
use crate::timer_queue::TimerQueue;
use crate::transport::gso::{send_segments, unsupported as gso_unsupported, MAX_SEGMENTS};
use crate::transport::recv_batch::RecvBatch;
use crate::wire::{encode_padded_query, judge, peek_id, Question, Verdict};

/// No slot: an entry of a server's ID table that is free.
const NO_SLOT: u32 = u32::MAX;

/// Queries in flight per server at most: half the ID space, so that a
/// random free ID is found in a few draws. Lookups past it wait their turn
/// in [`Bulk`]'s queue, without a timer.
const MAX_PER_SERVER: usize = 1 << 15;

/// Many lookups at once, in one loop: [`Bulk::push`] a name, await
/// [`Bulk::next`] for the results as they come (in any order), each with
/// the tag it was pushed with. Made by [`Resolver::bulk`].
pub struct Bulk {
    resolver: Resolver,
    core: Arc<Core>,
    /// Whether the slots may ask the servers themselves (all plain UDP).
    direct: bool,
    /// Per server: its socket, opened on first use.
    sockets: Vec<Option<BulkSocket>>,
    /// Per server: query ID → slot.
    ids: Vec<Box<[u32]>>,
    /// Per server: IDs in use.
    in_use: Vec<usize>,
    /// Attempts waiting for a server's IDs: slot, its attempt number,
    /// server, timeout, back-off.
    waiting: VecDeque<(u32, u32, usize, std::time::Duration, u32)>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// (wake-up, slot, the slot's attempt number then): stale entries are
    /// skipped when they come up.
    timers: TimerQueue<(Instant, u32, u32)>,
    done: VecDeque<(u64, Result<Lookup, Error>)>,
    /// Lookups handed to [`Resolver::lookup`], with their tags.
    handed: JoinSet<(u64, Result<Lookup, Error>)>,
    /// The tag and name of each handed lookup's task, so that a task that
    /// ends without a result (a panic) still gives one.
    handed_tags: HashMap<tokio::task::Id, (u64, String)>,
    sleep: Pin<Box<Sleep>>,
    /// Buffers of one `recvmmsg` (taken while its datagrams are handled).
    batch: Option<Box<RecvBatch>>,
    /// Whether GSO sends work here (off after the first refusal).
    gso: bool,
    /// Queries a socket refused: slot, its attempt number, the error.
    failed: Vec<(u32, u32, io::Error)>,
    /// The time of the step in progress (a push, a batch of answers, a
    /// round of timers): read once per step, not once per decision.
    now: Instant,
}

impl std::fmt::Debug for Bulk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bulk")
            .field("pending", &self.len())
            .field("direct", &self.direct)
            .finish_non_exhaustive()
    }
}

/// A connected UDP socket: received from through tokio, sent on through
/// a duplicate of its descriptor (tokio's send waits for a readiness event
/// a fresh socket has not had yet; the kernel's is immediate).
struct BulkSocket {
    rx: UdpSocket,
    tx: std::net::UdpSocket,
    /// Queries waiting for the next send: padded to one length, so that
    /// one GSO send carries them all.
    out: Vec<u8>,
    segment: usize,
    /// (slot, its attempt number) of each query in `out`.
    queued: Vec<(u32, u32)>,
}

/// One lookup in the table.
struct Slot {
    tag: u64,
    name: String,
    query_type: QueryType,
    question: Question,
    attempts: Attempts,
    /// Every query sent for it, still listening: server, ID, when sent,
    /// the server's answers then.
    queries: Vec<(usize, u16, Instant, u64)>,
    /// The attempt in flight: its query's index in `queries`, its
    /// deadline, its back-off.
    current: Option<(usize, Rearm, u32)>,
    /// Counts attempts, to tell stale timers.
    attempt: u32,
    /// A send the socket's full buffer put off: server, deadline, back-off.
    put_off: Option<(usize, std::time::Instant, u32)>,
    /// Set once the attempts gave up on a timeout while queries to live
    /// servers still listen: the error, and the end of the budget.
    lingering: Option<Error>,
    first_sent: Option<Instant>,
    started: Instant,
}

impl Resolver {
    /// A [`Bulk`]: many lookups driven by one loop in the caller's task,
    /// for lists of distinct names (see `bulk.rs`). It uses this resolver's
    /// servers, health and metrics, not its cache; make and use it inside
    /// a tokio runtime.
    pub fn bulk(&self) -> Bulk {
        Bulk::new(self.clone())
    }
}

impl Bulk {
    fn new(resolver: Resolver) -> Self {
        let core = resolver.core().clone();
        let direct = !resolver.has_hosts_file()
            && core
                .plan
                .servers
                .iter()
                .all(|s| s.protocol == Protocol::Udp);
        let servers = core.plan.servers.len();
        Self {
            resolver,
            direct,
            sockets: (0..servers).map(|_| None).collect(),
            ids: (0..servers)
                .map(|_| vec![NO_SLOT; 1 << 16].into_boxed_slice())
                .collect(),
            in_use: vec![0; servers],
            waiting: VecDeque::new(),
            slots: Vec::new(),
            free: Vec::new(),
            timers: TimerQueue::new(),
            done: VecDeque::new(),
            handed: JoinSet::new(),
            handed_tags: HashMap::new(),
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            batch: Some(Box::new(RecvBatch::new())),
            gso: true,
            failed: Vec::new(),
            now: Instant::now(),
            core,
        }
    }
}

impl Bulk {
    /// Lookups pushed whose result has not been taken yet.
    pub fn len(&self) -> usize {
        (self.slots.len() - self.free.len()) + self.handed.len() + self.done.len()
    }

    /// Whether every pushed lookup's result has been taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a lookup of `name` for `query_type`; its result comes out of
    /// [`Bulk::next`] with `tag`.
    pub fn push(&mut self, tag: u64, name: &str, query_type: QueryType) {
        let direct = self.direct
            && query_type != QueryType::Ptr
            && already_normal(name) == Some(name)
            && !is_localhost(name)
            && !name.as_bytes().first().is_some_and(u8::is_ascii_digit);
        if !direct {
            self.hand_over(tag, name.to_owned(), query_type);
            return;
        }
        self.core.metrics.lookups.add();
        self.now = Instant::now();
        let question =
            match Question::new(name, query_type.wire(), self.core.config.case_randomization) {
                Ok(question) => question,
                Err(why) => {
                    let err = Error::new(ErrorKind::InvalidName, name).with_detail(why);
                    self.core.metrics.failure(err.kind());
                    self.done.push_back((tag, Err(err)));
                    return;
                }
            };
        let slot = Slot {
            tag,
            name: name.to_owned(),
            query_type,
            question,
            attempts: Attempts::new(self.core.plan.clone()),
            queries: Vec::new(),
            current: None,
            attempt: 0,
            put_off: None,
            lingering: None,
            first_sent: None,
            started: self.now,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = Some(slot);
                index
            }
            None => {
                self.slots.push(Some(slot));
                u32::try_from(self.slots.len() - 1).unwrap_or(NO_SLOT)
            }
        };
        self.act(index);
    }

    /// The next result, in the order they come; `None` once every pushed
    /// lookup's result has been taken. Cancel-safe.
    pub async fn next(&mut self) -> Option<(u64, Result<Lookup, Error>)> {
        std::future::poll_fn(|cx| self.poll_next_result(cx)).await
    }

    fn poll_next_result(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(u64, Result<Lookup, Error>)>> {
        loop {
            if let Some(result) = self.done.pop_front() {
                return Poll::Ready(Some(result));
            }
            match self.handed.poll_join_next_with_id(cx) {
                Poll::Ready(Some(Ok((id, result)))) => {
                    self.handed_tags.remove(&id);
                    return Poll::Ready(Some(result));
                }
                // Not aborted (that happens only when the bulk is
                // dropped): the lookup panicked. Its result is an error.
                Poll::Ready(Some(Err(err))) => {
                    if let Some((tag, name)) = self.handed_tags.remove(&err.id()) {
                        let err = Error::new(ErrorKind::Io, &name)
                            .with_detail("the lookup's task ended without a result");
                        return Poll::Ready(Some((tag, Err(err))));
                    }
                    continue;
                }
                _ => {}
            }
            let mut progressed = self.receive(cx);
            progressed |= self.expire();
            progressed |= self.send_waiting();
            if !self.done.is_empty() {
                continue;
            }
            // Nothing to hand back: the queries queued since (the caller's
            // new lookups, retries) leave now, together.
            let _ = self.flush(cx);
            if !self.done.is_empty() {
                continue;
            }
            if self.slots.len() == self.free.len() && self.handed.is_empty() {
                return Poll::Ready(None);
            }
            if let Some((wake, _, _)) = self.timers.peek() {
                if self.sleep.deadline() != wake {
                    self.sleep.as_mut().reset(wake);
                }
                if self.sleep.as_mut().poll(cx).is_ready() {
                    continue;
                }
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }

    /// Reads every datagram waiting on the sockets, a `recvmmsg` at a
    /// time; true if any came.
    fn receive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(mut batch) = self.batch.take() else {
            return false;
        };
        let mut any = false;
        for server in 0..self.sockets.len() {
            while let Some(socket) = self.sockets[server].as_ref() {
                match socket.rx.poll_recv_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    _ => break,
                }
                let got = socket
                    .rx
                    .try_io(Interest::READABLE, || batch.recv(&socket.rx));
                match got {
                    Ok(n) => {
                        any = true;
                        self.now = Instant::now();
                        for i in 0..n {
                            let (bytes, whole) = batch.datagram(i);
                            self.datagram(server, bytes, whole);
                        }
                    }
                    // Readiness cleared: the next poll registers the wake-up.
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    // An ICMP error (a closed port) or the like: the
                    // attempts in flight find out by their deadlines.
                    Err(_) => {
                        any = true;
                        break;
                    }
                }
            }
        }
        self.batch = Some(batch);
        any
    }

    /// Sends `server`'s queued queries: one GSO send (or a send each where
    /// GSO is refused). A failure other than a full buffer fails them,
    /// in `failed`.
    fn flush_server(&mut self, server: usize) -> io::Result<()> {
        let Some(socket) = self.sockets.get_mut(server).and_then(Option::as_mut) else {
            return Ok(());
        };
        if socket.queued.is_empty() {
            return Ok(());
        }
        let count = socket.queued.len();
        let sent = if self.gso && count > 1 {
            match send_segments(&socket.tx, &socket.out, socket.segment as u16) {
                Err(err) if gso_unsupported(&err) => {
                    self.gso = false;
                    send_each(&socket.tx, &socket.out, socket.segment)
                }
                other => other.map(|_| ()),
            }
        } else {
            send_each(&socket.tx, &socket.out, socket.segment)
        };
        match sent {
            Ok(()) => self.core.metrics.udp_send(count as u64),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Err(err),
            Err(err) => {
                let kind = err.kind();
                self.failed
                    .extend(socket.queued.iter().map(|&(index, attempt)| {
                        (index, attempt, io::Error::new(kind, err.to_string()))
                    }));
            }
        }
        socket.out.clear();
        socket.queued.clear();
        Ok(())
    }

    /// Sends every server's queued queries and fails those a socket
    /// refused. Pending when a socket's buffer is full (woken when it has
    /// room).
    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut full = false;
        for server in 0..self.sockets.len() {
            if self.flush_server(server).is_err() {
                full = true;
                if let Some(socket) = self.sockets[server].as_ref() {
                    if socket.rx.poll_send_ready(cx).is_ready() {
                        cx.waker().wake_by_ref();
                    }
                }
            }
        }
        for (index, attempt, err) in std::mem::take(&mut self.failed) {
            let current = self
                .slots
                .get(index as usize)
                .and_then(Option::as_ref)
                .is_some_and(|slot| slot.attempt == attempt && slot.current.is_some());
            if current {
                self.event(index, socket_event(&err));
            }
        }
        if full {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// Handles `bytes`, a datagram from `server` (`whole`: not cut).
    fn datagram(&mut self, server: usize, bytes: &[u8], whole: bool) {
        let metrics = &self.core.metrics;
        let Some(id) = peek_id(bytes) else {
            Metrics::add(&metrics.mismatched);
            return;
        };
        let index = self.ids[server][usize::from(id)];
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            Metrics::add(&metrics.mismatched);
            return;
        };
        let verdict = judge(bytes, &slot.question, self.core.config.case_randomization);
        let Some(query) = slot
            .queries
            .iter()
            .position(|&(s, i, _, _)| s == server && i == id)
        else {
            Metrics::add(&metrics.mismatched);
            return;
        };
        let is_current = slot.current.is_some_and(|(q, _, _)| q == query);
        let (_, _, sent, _) = slot.queries[query];
        let event = match verdict {
            Verdict::Mismatch => {
                Metrics::add(&metrics.mismatched);
                return;
            }
            Verdict::Malformed | Verdict::Answer(_) if !whole => {
                Metrics::add(&metrics.malformed);
                Event::Malformed
            }
            Verdict::Malformed => {
                Metrics::add(&metrics.malformed);
                Event::Malformed
            }
            Verdict::Answer(message) if message.metadata.truncation => {
                Metrics::add(&metrics.truncated);
                Event::Truncated
            }
            Verdict::Answer(message) => match message.metadata.response_code {
                ResponseCode::NoError | ResponseCode::NXDomain => {
                    Metrics::add(&metrics.answers);
                    let now = self.now.into_std();
                    {
                        let mut health = self.core.health.lock();
                        if is_current {
                            slot.attempts.on_event(&mut health, now, Event::Answer);
                        } else {
                            Metrics::add(&metrics.late_answers);
                            slot.attempts
                                .on_late_answer(&mut health, server, sent.into_std(), now);
                        }
                    }
                    self.answered(index, &message);
                    return;
                }
                rcode => {
                    Metrics::add(&metrics.server_errors);
                    Event::ServerError(match rcode {
                        ResponseCode::ServFail => ErrorKind::ServFail,
                        ResponseCode::Refused => ErrorKind::Refused,
                        _ => ErrorKind::Malformed,
                    })
                }
            },
        };
        if is_current {
            self.event(index, event);
        } else {
            // An earlier query's unusable answer: it stops listening.
            self.forget_query(index, query);
        }
    }

    /// Slot `index` got `message`, a NOERROR or NXDOMAIN answer.
    fn answered(&mut self, index: u32, message: &hickory_proto::op::Message) {
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        let Some(echoed) = message.queries.first() else {
            let err = Error::new(ErrorKind::Malformed, &slot.name);
            self.finish(index, Err(err));
            return;
        };
        let depth = self.core.config.max_cname_depth;
        let (mut chain, mut ttl) = (Vec::new(), u32::MAX);
        match step(
            message,
            echoed.name(),
            &slot.name,
            slot.query_type,
            depth,
            &mut chain,
            &mut ttl,
        ) {
            Step::Done(result, _) => self.finish(index, result),
            // The answer stops at a CNAME target: the resolver follows it.
            Step::Follow(_) => self.hand_slot_over(index),
        }
    }

    /// The attempt in flight of slot `index` came to `event`.
    fn event(&mut self, index: u32, event: Event) {
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        slot.current = None;
        let effect =
            slot.attempts
                .on_event(&mut self.core.health.lock(), self.now.into_std(), event);
        if effect.server_went_down {
            probe::start(&self.core, self.core.config.probe_interval);
        }
        self.act(index);
    }

    /// Does what slot `index`'s attempts say next.
    fn act(&mut self, index: u32) {
        loop {
            let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
                return;
            };
            let action = slot
                .attempts
                .poll(&mut self.core.health.lock(), self.now.into_std());
            match action {
                Action::Send {
                    server,
                    transport: Transport::Udp,
                    deadline,
                    retry,
                    backoff,
                } => {
                    if retry {
                        Metrics::add(&self.core.metrics.retries);
                    }
                    if self.in_use[server] >= MAX_PER_SERVER || !self.waiting.is_empty() {
                        let timeout = deadline.saturating_duration_since(self.now.into_std());
                        slot.attempt += 1;
                        self.waiting
                            .push_back((index, slot.attempt, server, timeout, backoff));
                        return;
                    }
                    if let Err(err) = self.send_attempt(index, server, deadline, backoff) {
                        let event = socket_event(&err);
                        let Some(slot) =
                            self.slots.get_mut(index as usize).and_then(Option::as_mut)
                        else {
                            return;
                        };
                        slot.attempts.on_event(
                            &mut self.core.health.lock(),
                            self.now.into_std(),
                            event,
                        );
                        continue;
                    }
                    return;
                }
                // TCP after a truncated answer: the resolver's path.
                Action::Send { .. } => {
                    self.hand_slot_over(index);
                    return;
                }
                Action::Answered => return,
                Action::GiveUp(gave_up) => {
                    let name = slot.name.clone();
                    let timed_out = gave_up.kind == ErrorKind::Timeout;
                    let err = give_up_error(&name, gave_up, None);
                    if timed_out {
                        self.linger(index, err);
                    } else {
                        self.finish(index, Err(err));
                    }
                    return;
                }
            }
        }
    }

    /// The attempts of slot `index` timed out: its queries to servers that
    /// answered others since keep listening until the budget's end (late
    /// answers); with none, it ends now with `err`.
    fn linger(&mut self, index: u32, err: Error) {
        let budget =
            crate::late_answers::budget(self.core.config.timeout, self.core.config.attempts);
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        let alive = {
            let health = self.core.health.lock();
            slot.queries
                .iter()
                .any(|&(server, _, _, answers)| health.answers(server) > answers)
        };
        let end = slot.first_sent.unwrap_or(slot.started) + budget;
        if !alive || self.now >= end {
            self.finish(index, Err(err));
            return;
        }
        slot.lingering = Some(err);
        slot.attempt += 1;
        self.timers.push_other((end, index, slot.attempt));
    }

    /// Sends the waiting attempts whose server has IDs free again, in
    /// order; true if any left.
    fn send_waiting(&mut self) -> bool {
        let mut any = false;
        while let Some(&(index, attempt, server, timeout, backoff)) = self.waiting.front() {
            if self.in_use[server] >= MAX_PER_SERVER {
                break;
            }
            self.waiting.pop_front();
            let current = self
                .slots
                .get(index as usize)
                .and_then(Option::as_ref)
                .is_some_and(|slot| slot.attempt == attempt);
            if !current {
                continue;
            }
            any = true;
            let deadline = self.now.into_std() + timeout;
            if let Err(err) = self.send_attempt(index, server, deadline, backoff) {
                self.event(index, socket_event(&err));
            }
        }
        any
    }

    /// Sends slot `index`'s attempt to `server` and arms its deadline; a
    /// full socket buffer puts the send off by a millisecond.
    fn send_attempt(
        &mut self,
        index: u32,
        server: usize,
        deadline: std::time::Instant,
        backoff: u32,
    ) -> io::Result<()> {
        let sent = match self.send(index, server) {
            Ok(sent) => Some(sent),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => None,
            Err(err) => return Err(err),
        };
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return Ok(());
        };
        slot.attempt += 1;
        let wake = match sent {
            Some((query, sent)) => {
                let rearm = Rearm::new(sent.into_std(), deadline, self.core.config.min_timeout);
                slot.current = Some((query, rearm, backoff));
                Instant::from_std(rearm.wake_at())
            }
            None => {
                slot.put_off = Some((server, deadline, backoff));
                self.now + std::time::Duration::from_millis(1)
            }
        };
        self.timers.push((wake, index, slot.attempt));
        Ok(())
    }

    /// Sends slot `index`'s question to `server` under a fresh ID; returns
    /// the query's index in the slot's list and when it was sent.
    fn send(&mut self, index: u32, server: usize) -> io::Result<(usize, Instant)> {
        if self.sockets[server].is_none() {
            let addr = self.core.plan.servers[server].addr;
            let rx = crate::transport::udp::open_socket(addr, self.core.config.recv_buffer)?;
            let tx = std::net::UdpSocket::from(std::os::fd::AsFd::as_fd(&rx).try_clone_to_owned()?);
            self.sockets[server] = Some(BulkSocket {
                rx,
                tx,
                out: Vec::with_capacity(MAX_SEGMENTS * 128),
                segment: 0,
                queued: Vec::with_capacity(MAX_SEGMENTS),
            });
        }
        let ids = &mut self.ids[server];
        let mut rng = rng::system();
        let id = (0..16)
            .map(|_| rng.id())
            .find(|&id| ids[usize::from(id)] == NO_SLOT)
            // The server's ID table is nearly full: the send waits for
            // answers to free some (a put-off send, like a full buffer).
            .ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))?;
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return Err(io::Error::other("no such lookup"));
        };
        let packet = encode_padded_query(id, &slot.question, self.core.config.edns_payload);
        let compatible = self.sockets[server].as_ref().is_some_and(|socket| {
            socket.queued.is_empty()
                || (packet.len() == socket.segment && socket.queued.len() < MAX_SEGMENTS)
        });
        if !compatible {
            // Another length, or a full batch: the queued ones go first.
            self.flush_server(server)?;
        }
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return Err(io::Error::other("no such lookup"));
        };
        let ids = &mut self.ids[server];
        let socket = self.sockets[server]
            .as_mut()
            .ok_or_else(|| io::Error::other("no socket"))?;
        socket.segment = packet.len();
        socket.out.extend_from_slice(&packet);
        socket.queued.push((index, slot.attempt + 1));
        ids[usize::from(id)] = index;
        self.in_use[server] += 1;
        let sent = self.now;
        slot.first_sent.get_or_insert(sent);
        let answers = self.core.health.lock().answers(server);
        slot.queries.push((server, id, sent, answers));
        Ok((slot.queries.len() - 1, sent))
    }

    /// Handles every timer due now; true if any was.
    fn expire(&mut self) -> bool {
        self.now = Instant::now();
        let now = self.now;
        let mut any = false;
        while let Some((wake, index, attempt)) = self.timers.peek() {
            if wake > now {
                break;
            }
            self.timers.pop();
            any = true;
            let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
                continue;
            };
            if slot.attempt != attempt {
                continue;
            }
            if let Some(err) = slot.lingering.take() {
                self.finish(index, Err(err));
                continue;
            }
            if let Some((server, deadline, backoff)) = slot.put_off.take() {
                if let Err(err) = self.send_attempt(index, server, deadline, backoff) {
                    self.event(index, socket_event(&err));
                }
                continue;
            }
            let Some((query, mut rearm, backoff)) = slot.current else {
                continue;
            };
            let server = slot.queries[query].0;
            let timeout_now = self
                .core
                .health
                .lock()
                .timeout(server)
                .saturating_mul(backoff);
            if !rearm.expired(now.into_std(), timeout_now) {
                slot.current = Some((query, rearm, backoff));
                let wake = Instant::from_std(rearm.wake_at());
                self.timers.push_other((wake, index, attempt));
                continue;
            }
            Metrics::add(&self.core.metrics.timeouts);
            self.event(index, Event::Timeout);
        }
        any
    }

    /// Query `query` of slot `index` stops listening.
    fn forget_query(&mut self, index: u32, query: usize) {
        let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        let (server, id, _, _) = slot.queries[query];
        if self.ids[server][usize::from(id)] == index {
            self.ids[server][usize::from(id)] = NO_SLOT;
            self.in_use[server] -= 1;
        }
        // Keep the list's indices: the entry stays, its ID no longer maps.
    }

    /// Ends slot `index` with `result`.
    fn finish(&mut self, index: u32, result: Result<Lookup, Error>) {
        let Some(slot) = self.release(index) else {
            return;
        };
        let metrics = &self.core.metrics;
        if let Err(err) = &result {
            metrics.failure(err.kind());
        }
        metrics.record_latency(self.now.saturating_duration_since(slot.started));
        self.done.push_back((slot.tag, result));
    }

    /// Gives slot `index`'s lookup to the resolver's own path.
    fn hand_slot_over(&mut self, index: u32) {
        if let Some(slot) = self.release(index) {
            self.hand_over(slot.tag, slot.name, slot.query_type);
        }
    }

    fn hand_over(&mut self, tag: u64, name: String, query_type: QueryType) {
        let resolver = self.resolver.clone();
        let task = self.handed.spawn({
            let name = name.clone();
            async move { (tag, resolver.lookup(&name, query_type).await) }
        });
        self.handed_tags.insert(task.id(), (tag, name));
    }

    /// Frees slot `index` and its query IDs.
    fn release(&mut self, index: u32) -> Option<Slot> {
        let slot = self.slots.get_mut(index as usize)?.take()?;
        for &(server, id, _, _) in &slot.queries {
            if self.ids[server][usize::from(id)] == index {
                self.ids[server][usize::from(id)] = NO_SLOT;
                self.in_use[server] -= 1;
            }
        }
        self.free.push(index);
        Some(slot)
    }
}

/// Sends each `segment`-byte query of `out` on its own (the last may be
/// shorter).
fn send_each(tx: &std::net::UdpSocket, out: &[u8], segment: usize) -> io::Result<()> {
    for query in out.chunks(segment.max(1)) {
        tx.send(query)?;
    }
    Ok(())
}

/// What a failed send means to the attempts.
fn socket_event(err: &io::Error) -> Event {
    if err.kind() == io::ErrorKind::ConnectionRefused {
        Event::PortClosed
    } else {
        Event::Socket {
            kind: io_kind(err),
            detail: describe_io(err),
        }
    }
}
