//! One crawl worker: holds partition leases, reads its partitions, fetches
//! under its own limits, stores each result and only then acknowledges.
//!
//! The driver is a `select!` loop over a lease tick, the earliest lease
//! fence, deliveries from the reader task, finished fetches and a flush
//! timer. The reader runs on its own connection (XREADGROUP blocks) and
//! reads only as many entries as there are free fetch slots; slots come
//! back when results are stored, so a worker whose Redis is away stops
//! taking work instead of piling it up.
//!
//! Stopping (the `shutdown` future, e.g. SIGTERM): no new reads; running
//! fetches get `drain_timeout` to finish and be stored; what still runs is
//! aborted and requeued at once (added again, old entry acked); leases are
//! released so live workers take the partitions on their next tick.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tokio::task::{AbortHandle, Id, JoinError, JoinSet};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::collector::crawl_done;
use crate::connection::FleetRedis;
use crate::error::FleetError;
use crate::frontier::{self, Completion, Delivery};
use crate::lease::{plan, Lease, LeaseAction, LeaseConfig, LeaseView};
use crate::partition::host_of;
use crate::redis_url::RedisUrl;
use crate::stats::{DnsStats, RateWindow, WorkerStats};

/// What a worker's fetch produced for one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The result line (e.g. the JSON record of `crawldns fetch`).
    pub line: String,
    /// The outcome class: `ok`, or an error class such as `dns`.
    pub class: String,
}

/// What a worker crawls with: fetch one URL, and report DNS counters.
pub trait Fetch: Send + Sync + 'static {
    /// Fetches `url`; never fails (the line says what happened).
    fn fetch(&self, url: String) -> Pin<Box<dyn Future<Output = Fetched> + Send + 'static>>;
    /// The resolver's counters so far.
    fn dns(&self) -> DnsStats;
}

/// A worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The worker's id, unique in the fleet (a consumer name).
    pub id: String,
    /// P, when this worker is the first to set up the fleet.
    pub partitions: u32,
    /// Lease timing.
    pub lease: LeaseConfig,
    /// Fetches in flight at most (default 1000).
    pub concurrency: usize,
    /// Fetches in flight per host at most (default 8); a host's further
    /// URLs wait in the worker, in order. Set it to the fetcher's per-host
    /// connection limit, so that fetches never queue inside the fetcher.
    pub per_host: usize,
    /// Entries read per partition per round trip at most (default 256).
    pub read_batch: usize,
    /// How long a read waits for new entries (default 200 ms).
    pub block: Duration,
    /// Entries unacknowledged this long are claimed from their consumer
    /// (default: the lease time).
    pub claim_idle: Duration,
    /// On shutdown, how long running fetches may finish (default 10 s).
    pub drain_timeout: Duration,
    /// Exit once the crawl is done (no enqueuer, empty frontier).
    pub until_done: bool,
    /// Results are stored in batches at most this old (default 10 ms).
    pub flush_every: Duration,
    /// Waiting for Redis.
    pub backoff: Backoff,
}

impl WorkerConfig {
    /// Defaults for a worker named `id`.
    pub fn new(id: impl Into<String>) -> Self {
        let lease = LeaseConfig::default();
        Self {
            id: id.into(),
            partitions: 16,
            lease,
            concurrency: 1000,
            per_host: 8,
            read_batch: 256,
            block: Duration::from_millis(200),
            claim_idle: lease.ttl,
            drain_timeout: Duration::from_secs(10),
            until_done: false,
            flush_every: Duration::from_millis(10),
            backoff: Backoff::default(),
        }
    }
}

/// Results stored per flush at most.
const FLUSH_MAX: usize = 256;

/// How long each step of stopping (requeue, store, release) may wait for
/// Redis before leaving the rest to the idle timeout and lease expiry.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Free fetch slots, shared with the reader.
#[derive(Debug, Default)]
struct Slots {
    free: AtomicI64,
    notify: Notify,
}

impl Slots {
    fn give(&self, n: usize) {
        if n > 0 {
            self.free
                .fetch_add(i64::try_from(n).unwrap_or(i64::MAX), Ordering::AcqRel);
            self.notify.notify_one();
        }
    }
}

type Key = (u32, String);

fn key(d: &Delivery) -> Key {
    (d.partition, d.entry.clone())
}

/// A lease this worker holds.
#[derive(Debug, Clone)]
struct Held {
    lease: Lease,
    /// Consume no longer than this on the local clock.
    fence_until: Instant,
    /// Above the fair share: no new reads, released once drained.
    draining: bool,
}

/// The compare-and-set of one lease: `KEYS[1]` the lease hash, `ARGV` the
/// partition, the expected stored value (`""`: none), the new owner (`""`:
/// delete) and the lease time in ms. Returns the new expiry (Redis time),
/// 0 for a delete, -1 when the stored value was not the expected one.
const LEASE_CAS: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then cur = '' end
if cur ~= ARGV[2] then return -1 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', expires) .. ' ' .. ARGV[3])
return expires
";

struct Driver {
    redis: FleetRedis,
    config: WorkerConfig,
    fetch: Arc<dyn Fetch>,
    partitions: u32,
    script: redis::Script,
    held: BTreeMap<u32, Held>,
    tasks: JoinSet<(Delivery, Fetched)>,
    running: HashMap<Key, (Delivery, AbortHandle)>,
    /// Fetches running per host, and the deliveries waiting for one.
    host_running: HashMap<String, usize>,
    host_queue: HashMap<String, VecDeque<Delivery>>,
    task_keys: HashMap<Id, Key>,
    unflushed: Vec<Completion>,
    /// Entries read for a partition that stopped being readable meanwhile
    /// (released, or fenced): given back to their partition, not left
    /// pending under this worker's name until the claim idle time.
    unreadable: Vec<Delivery>,
    /// Running or stored-but-not-flushed entries: a re-delivery is skipped.
    known: HashSet<Key>,
    /// Entries completed lately, oldest first: a claim that read one just
    /// before its XACK must not fetch it again.
    recent: HashSet<Key>,
    recent_order: VecDeque<(Instant, Key)>,
    slots: Arc<Slots>,
    readable: watch::Sender<Vec<u32>>,
    stats: WorkerStats,
    rate: RateWindow,
    next_flush: Option<Instant>,
    flush_attempt: u32,
}

/// Runs a worker until `shutdown` resolves (then drains, requeues and
/// releases), or, with `until_done`, until the crawl is done. Returns its
/// final stats. Redis being away is waited out; only errors that retrying
/// cannot fix (bad credentials, foreign data) end it early.
pub async fn run(
    url: &RedisUrl,
    namespace: &str,
    config: WorkerConfig,
    fetch: Arc<dyn Fetch>,
    shutdown: impl Future<Output = ()>,
) -> Result<WorkerStats, FleetError> {
    let backoff = config.backoff;
    let redis = FleetRedis::connect_retrying(url, namespace, backoff).await?;
    let reader_redis = FleetRedis::connect_retrying(url, namespace, backoff).await?;
    let partitions = redis
        .retry("setting up the partitions", backoff, || {
            frontier::ensure(&redis, config.partitions)
        })
        .await?;
    let started_ms = redis
        .retry("reading the clock", backoff, || redis.time_ms())
        .await?;
    let slots = Arc::new(Slots::default());
    slots.give(config.concurrency.max(1));
    let (readable, readable_rx) = watch::channel(Vec::new());
    let (tx, rx) = mpsc::channel(64);
    let reader = tokio::spawn(read_loop(
        reader_redis,
        config.clone(),
        readable_rx,
        slots.clone(),
        tx,
    ));
    let mut driver = Driver {
        stats: WorkerStats {
            worker: config.id.clone(),
            state: "running".into(),
            started_ms,
            ..WorkerStats::default()
        },
        rate: RateWindow::new(10_000),
        redis,
        fetch,
        partitions,
        script: redis::Script::new(LEASE_CAS),
        held: BTreeMap::new(),
        tasks: JoinSet::new(),
        running: HashMap::new(),
        host_running: HashMap::new(),
        host_queue: HashMap::new(),
        task_keys: HashMap::new(),
        unflushed: Vec::new(),
        unreadable: Vec::new(),
        known: HashSet::new(),
        recent: HashSet::new(),
        recent_order: VecDeque::new(),
        slots,
        readable,
        next_flush: None,
        flush_attempt: 0,
        config,
    };
    tracing::info!(
        "worker {} on {} ({partitions} partitions)",
        driver.config.id,
        driver.redis.url()
    );
    let result = driver.crawl(rx, shutdown).await;
    reader.abort();
    // Stopped for good (its connection closed) before the stop looks for
    // what it read: entries it handed over or was reading are pending
    // under this worker's name, and `stop` gives them back.
    let _ = reader.await;
    let stopped = driver.stop().await;
    result.and(stopped).map(|()| driver.stats)
}

/// Reads entries for the driver: claims idle ones of readable partitions
/// now and then, otherwise blocks on new ones; never more than free slots
/// (give or take one per partition).
async fn read_loop(
    redis: FleetRedis,
    config: WorkerConfig,
    mut readable: watch::Receiver<Vec<u32>>,
    slots: Arc<Slots>,
    tx: mpsc::Sender<(Vec<Delivery>, bool)>,
) {
    let mut last_claim: HashMap<u32, Instant> = HashMap::new();
    let claim_every = (config.claim_idle / 2).max(Duration::from_millis(50));
    let mut attempt = 0;
    loop {
        let partitions = readable.borrow_and_update().clone();
        if partitions.is_empty() {
            if readable.changed().await.is_err() {
                return;
            }
            continue;
        }
        let free = slots.free.load(Ordering::Acquire);
        if free <= 0 {
            tokio::select! {
                () = slots.notify.notified() => {}
                changed = readable.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let free = usize::try_from(free).unwrap_or(0);
        let now = Instant::now();
        let mut got = Vec::new();
        let mut failed = None;

        // Each partition's abandoned entries are looked for at most once
        // per half idle time.
        for &p in &partitions {
            if last_claim.get(&p).is_some_and(|&t| now - t < claim_every) {
                continue;
            }
            match frontier::claim(
                &redis,
                &config.id,
                p,
                config.claim_idle,
                free.min(config.read_batch),
            )
            .await
            {
                Ok(entries) => {
                    got.extend(entries);
                    last_claim.insert(p, now);
                }
                Err(e) => failed = Some(e),
            }
            if got.len() >= free {
                break;
            }
        }
        let claims = !got.is_empty();
        if got.is_empty() && failed.is_none() {
            let per = (free / partitions.len()).clamp(1, config.read_batch.max(1));
            match frontier::read(&redis, &config.id, &partitions, per, config.block).await {
                Ok(entries) => got = entries,
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            if !e.is_transient() {
                tracing::error!("reading the frontier: {e}");
            } else if attempt == 0 {
                tracing::warn!("reading the frontier: {e}; retrying");
            }
            tokio::time::sleep(config.backoff.delay(attempt)).await;
            attempt += 1;
        } else {
            attempt = 0;
        }
        if !got.is_empty() {
            slots.free.fetch_sub(
                i64::try_from(got.len()).unwrap_or(i64::MAX),
                Ordering::AcqRel,
            );
            if tx.send((got, claims)).await.is_err() {
                return;
            }
        }
    }
}

impl Driver {
    async fn crawl(
        &mut self,
        mut deliveries: mpsc::Receiver<(Vec<Delivery>, bool)>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), FleetError> {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.config.lease.tick());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let fence = self.held.values().map(|h| h.fence_until).min();
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                _ = tick.tick() => {
                    tracing::debug!(
                        "tick: {} running, {} to store, {} free slots, held {:?}, readable {:?}, done {}",
                        self.running.len(),
                        self.unflushed.len(),
                        self.slots.free.load(Ordering::Relaxed),
                        self.held.keys().collect::<Vec<_>>(),
                        self.readable.borrow(),
                        self.stats.done
                    );
                    if self.lease_round(false).await? {
                        return Ok(());
                    }
                }
                () = sleep_until_opt(fence) => self.fence(),
                Some((batch, claimed)) = deliveries.recv() => {
                    self.start(batch, claimed);
                    self.give_back().await?;
                }
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => self.finished(joined),
                () = sleep_until_opt(self.next_flush) => self.flush().await?,
            }
            if self.unflushed.len() >= FLUSH_MAX {
                self.flush().await?;
            }
        }
    }

    /// Partitions whose entries may be fetched now.
    fn readable_partitions(&self) -> Vec<u32> {
        let now = Instant::now();
        self.held
            .iter()
            .filter(|(_, h)| !h.draining && h.fence_until > now)
            .map(|(&p, _)| p)
            .collect()
    }

    fn publish_readable(&self) {
        let readable = self.readable_partitions();
        self.readable.send_if_modified(|current| {
            if *current == readable {
                false
            } else {
                *current = readable;
                true
            }
        });
    }

    /// Starts what was read; `claimed` when it came from a claim (counted
    /// in the stats once started).
    fn start(&mut self, batch: Vec<Delivery>, claimed: bool) {
        let readable = self.readable_partitions();
        let mut skipped = 0;
        for d in batch {
            let k = key(&d);
            if self.known.contains(&k) || self.recent.contains(&k) {
                skipped += 1;
                continue;
            }
            if !readable.contains(&d.partition) {
                skipped += 1;
                self.unreadable.push(d);
                continue;
            }
            self.known.insert(k);
            if claimed {
                self.stats.claimed += 1;
            }
            let host = host_of(&d.url);
            let running = self.host_running.get(&host).copied().unwrap_or(0);
            if running < self.config.per_host.max(1) {
                self.spawn(host, d);
            } else {
                self.host_queue.entry(host).or_default().push_back(d);
            }
        }
        self.slots.give(skipped);
    }

    /// Requeues the entries read for partitions no longer readable; on a
    /// transient Redis error they wait for the next batch (or the stop).
    async fn give_back(&mut self) -> Result<(), FleetError> {
        if self.unreadable.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(&mut self.unreadable);
        match frontier::requeue(&self.redis, &entries).await {
            Ok(()) => {
                self.stats.requeued += entries.len() as u64;
                Ok(())
            }
            Err(e) if e.is_transient() => {
                tracing::warn!("giving back {} entries: {e}", entries.len());
                self.unreadable = entries;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn spawn(&mut self, host: String, d: Delivery) {
        *self.host_running.entry(host).or_default() += 1;
        let work = self.fetch.fetch(d.url.clone());
        let delivery = d.clone();
        let handle = self.tasks.spawn(async move { (delivery, work.await) });
        let k = key(&d);
        self.task_keys.insert(handle.id(), k.clone());
        self.running.insert(k, (d, handle));
    }

    /// A fetch of a URL of `host` ended.
    fn host_release(&mut self, host: &str) {
        if let Some(n) = self.host_running.get_mut(host) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.host_running.remove(host);
            }
        }
    }

    /// A fetch of `url` ended: its host's next URL may start.
    fn host_done(&mut self, url: &str) {
        let host = host_of(url);
        self.host_release(&host);
        let next = self.host_queue.get_mut(&host).and_then(VecDeque::pop_front);
        if self.host_queue.get(&host).is_some_and(VecDeque::is_empty) {
            self.host_queue.remove(&host);
        }
        if let Some(d) = next {
            self.spawn(host, d);
        }
    }

    fn finished(&mut self, joined: Result<(Id, (Delivery, Fetched)), JoinError>) {
        match joined {
            Ok((id, (delivery, fetched))) => {
                self.task_keys.remove(&id);
                self.running.remove(&key(&delivery));
                self.host_done(&delivery.url);
                self.unflushed.push(Completion {
                    delivery,
                    line: fetched.line,
                    class: fetched.class,
                });
                if self.next_flush.is_none() {
                    self.next_flush = Some(Instant::now() + self.config.flush_every);
                }
            }
            Err(e) => {
                // Aborted (already accounted for) or panicked: the entry
                // stays pending and is claimed again after the idle time.
                if let Some(k) = self.task_keys.remove(&e.id()) {
                    if let Some((d, _)) = self.running.remove(&k) {
                        self.known.remove(&k);
                        self.slots.give(1);
                        self.host_done(&d.url);
                        if e.is_panic() {
                            tracing::error!("a fetch panicked on partition {} entry {}", k.0, k.1);
                        }
                    }
                }
            }
        }
    }

    /// Stores what finished; slots come back once it is stored.
    async fn flush(&mut self) -> Result<(), FleetError> {
        self.next_flush = None;
        if self.unflushed.is_empty() {
            return Ok(());
        }
        let n = self.unflushed.len().min(FLUSH_MAX);
        match frontier::complete(&self.redis, &self.config.id, &self.unflushed[..n]).await {
            Ok(()) => {
                let now = Instant::now();
                for c in self.unflushed.drain(..n) {
                    let k = key(&c.delivery);
                    self.known.remove(&k);
                    self.stats.count(&c.class);
                    self.recent.insert(k.clone());
                    self.recent_order.push_back((now, k));
                }
                // A claim reply is at most a round trip old: keeping twice
                // the idle time is plenty.
                let keep = self.config.claim_idle * 2;
                while let Some((at, k)) = self.recent_order.front() {
                    if now.duration_since(*at) < keep {
                        break;
                    }
                    self.recent.remove(k);
                    self.recent_order.pop_front();
                }
                self.slots.give(n);
                self.flush_attempt = 0;
                if !self.unflushed.is_empty() {
                    self.next_flush = Some(Instant::now());
                }
                Ok(())
            }
            Err(e) if e.is_transient() => {
                self.stats.redis_errors += 1;
                if self.flush_attempt == 0 {
                    tracing::warn!("storing results: {e}; retrying");
                }
                self.next_flush =
                    Some(Instant::now() + self.config.backoff.delay(self.flush_attempt));
                self.flush_attempt += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Stops consuming partitions whose fence passed.
    fn fence(&mut self) {
        let now = Instant::now();
        let expired: Vec<u32> = self
            .held
            .iter()
            .filter(|(_, h)| h.fence_until <= now)
            .map(|(&p, _)| p)
            .collect();
        for p in expired {
            tracing::warn!("lease of partition {p} not renewed in time: stopped consuming it");
            self.lose(p);
        }
    }

    /// Gives up partition `p` at once: its running fetches are aborted and
    /// their entries left pending for the next holder.
    fn lose(&mut self, p: u32) {
        self.held.remove(&p);
        let keys: Vec<Key> = self.running.keys().filter(|k| k.0 == p).cloned().collect();
        for k in &keys {
            if let Some((d, handle)) = self.running.remove(k) {
                handle.abort();
                self.known.remove(k);
                self.host_release(&host_of(&d.url));
            }
        }
        // The partition's waiting deliveries go too (a host's URLs are all
        // in one partition, so whole queues go).
        let mut waiting = Vec::new();
        self.host_queue.retain(|_, queue| {
            if queue.front().is_some_and(|d| d.partition == p) {
                waiting.extend(queue.drain(..));
            }
            !queue.is_empty()
        });
        for d in &waiting {
            self.known.remove(&key(d));
        }
        self.stats.aborted += keys.len() as u64;
        self.slots.give(keys.len() + waiting.len());
        self.publish_readable();
    }

    fn drained(&self, p: u32) -> bool {
        !self.running.keys().any(|k| k.0 == p)
            && !self.unflushed.iter().any(|c| c.delivery.partition == p)
            && !self.host_queue.values().flatten().any(|d| d.partition == p)
    }

    /// One compare-and-set; `Some(expiry)` on success (0 for a release).
    async fn cas(
        &self,
        p: u32,
        expected: Option<&Lease>,
        owner: Option<&str>,
    ) -> Result<Option<u64>, FleetError> {
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.redis.keys().leases())
            .arg(p)
            .arg(expected.map_or_else(String::new, Lease::encode))
            .arg(owner.unwrap_or(""))
            .arg(self.config.lease.ttl_ms());
        let reply: i64 = self.redis.script(&invocation).await?;
        Ok(u64::try_from(reply).ok())
    }

    /// Brings the reported stats up to date (Redis time `now_ms`).
    fn refresh_stats(&mut self, now_ms: u64) {
        self.stats.seen_ms = now_ms;
        self.stats.in_flight = self.running.len() as u64;
        self.stats.partitions = self.held.keys().copied().collect();
        self.stats.dns = self.fetch.dns();
        self.stats.rate = self.rate.push(now_ms, self.stats.done);
    }

    async fn heartbeat(&mut self, now_ms: u64) -> Result<(), FleetError> {
        self.refresh_stats(now_ms);
        let json =
            serde_json::to_string(&self.stats).map_err(|e| FleetError::Data(e.to_string()))?;
        self.redis
            .query::<i64>(
                redis::cmd("HSET")
                    .arg(self.redis.keys().workers())
                    .arg(&self.config.id)
                    .arg(json),
            )
            .await?;
        Ok(())
    }

    /// Reports, reads the lease table, and carries out the plan. Returns
    /// true when the worker should exit (`until_done` and the crawl is
    /// done). Transient Redis errors are logged and end the round.
    async fn lease_round(&mut self, stopping: bool) -> Result<bool, FleetError> {
        match self.try_lease_round(stopping).await {
            Ok(exit) => Ok(exit),
            Err(e) if e.is_transient() => {
                self.stats.redis_errors += 1;
                tracing::warn!("lease round: {e}");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn try_lease_round(&mut self, stopping: bool) -> Result<bool, FleetError> {
        // Two round trips however many partitions: the reads, then the
        // report and every compare-and-set in one pipeline, so that a
        // busy worker still renews well inside its lease.
        let keys = self.redis.keys().clone();
        let mut reads = redis::pipe();
        reads
            .cmd("TIME")
            .cmd("HGETALL")
            .arg(keys.leases())
            .cmd("HGETALL")
            .arg(keys.workers());
        type Reads = ((u64, u64), HashMap<String, String>, HashMap<String, String>);
        let ((secs, micros), table, workers): Reads = self.redis.pipe(&reads).await?;
        let now_ms = secs * 1000 + micros / 1000;
        let leases: BTreeMap<u32, Lease> = table
            .iter()
            .filter_map(|(p, v)| Some((p.parse().ok()?, Lease::decode(v)?)))
            .collect();
        let ttl = self.config.lease.ttl_ms();
        let live = workers
            .iter()
            .filter(|(id, _)| **id != self.config.id)
            .filter_map(|(_, json)| serde_json::from_str::<WorkerStats>(json).ok())
            .filter(|w| w.state == "running" && now_ms.saturating_sub(w.seen_ms) < ttl)
            .count()
            + 1;
        let actions = plan(&LeaseView {
            now_ms,
            me: &self.config.id,
            partitions: self.partitions,
            leases: &leases,
            live_workers: live,
        });
        // (partition, expected, new owner or "" to release, what it is)
        let mut ops: Vec<(u32, Option<Lease>, bool, LeaseAction)> = Vec::new();
        let mut kept = HashSet::new();
        for action in actions {
            let p = action.partition();
            match &action {
                LeaseAction::Renew { current, .. } => {
                    kept.insert(p);
                    ops.push((p, Some(current.clone()), true, action.clone()));
                }
                LeaseAction::Release { current, .. } => {
                    kept.insert(p);
                    let drained = self.drained(p);
                    if !drained {
                        if let Some(h) = self.held.get_mut(&p) {
                            h.draining = true;
                        }
                    }
                    ops.push((p, Some(current.clone()), !drained, action.clone()));
                }
                LeaseAction::Acquire { .. } | LeaseAction::Steal { .. } if !stopping => {
                    kept.insert(p);
                    ops.push((p, action.expected().cloned(), true, action.clone()));
                }
                LeaseAction::Acquire { .. } | LeaseAction::Steal { .. } => {}
            }
        }
        self.refresh_stats(now_ms);
        let json =
            serde_json::to_string(&self.stats).map_err(|e| FleetError::Data(e.to_string()))?;
        let mut writes = redis::pipe();
        writes
            .cmd("HSET")
            .arg(keys.workers())
            .arg(&self.config.id)
            .arg(json)
            .ignore();
        for (p, expected, keep, _) in &ops {
            writes
                .cmd("EVAL")
                .arg(LEASE_CAS)
                .arg(1)
                .arg(keys.leases())
                .arg(*p)
                .arg(expected.as_ref().map_or_else(String::new, Lease::encode))
                .arg(if *keep { self.config.id.as_str() } else { "" })
                .arg(ttl);
        }
        let sent = Instant::now();
        let fence_until = sent + self.config.lease.fence();
        let replies: Vec<i64> = self.redis.pipe(&writes).await?;
        for ((p, _, keep, action), reply) in ops.into_iter().zip(replies) {
            let expires_ms = u64::try_from(reply).ok();
            match (action, expires_ms) {
                (LeaseAction::Release { .. }, Some(_)) if !keep => {
                    tracing::info!("released partition {p} (above the fair share)");
                    self.held.remove(&p);
                }
                (LeaseAction::Release { .. } | LeaseAction::Renew { .. }, None) => {
                    self.lose(p);
                }
                (_, None) => {}
                (action, Some(expires_ms)) => {
                    if let LeaseAction::Steal { from, .. } = &action {
                        tracing::info!(
                            "took over partition {p} from {} (lease expired)",
                            from.owner
                        );
                    }
                    let held = self.held.entry(p).or_insert_with(|| Held {
                        lease: Lease {
                            owner: String::new(),
                            expires_ms,
                        },
                        fence_until,
                        draining: false,
                    });
                    held.lease = Lease {
                        owner: self.config.id.clone(),
                        expires_ms,
                    };
                    held.fence_until = fence_until;
                }
            }
        }
        // What the table no longer shows as mine (taken over while this
        // worker was cut off) is gone.
        let lost: Vec<u32> = self
            .held
            .keys()
            .filter(|p| !kept.contains(p))
            .copied()
            .collect();
        for p in lost {
            tracing::warn!("partition {p} is no longer leased to this worker");
            self.lose(p);
        }
        self.publish_readable();
        if self.config.until_done
            && !stopping
            && self.running.is_empty()
            && self.host_queue.is_empty()
            && self.unflushed.is_empty()
            && crawl_done(&self.redis, self.partitions).await?
        {
            return Ok(true);
        }
        Ok(false)
    }

    /// Drains, requeues what still runs, stores results, releases leases.
    async fn stop(&mut self) -> Result<(), FleetError> {
        self.stats.state = "draining".into();
        for h in self.held.values_mut() {
            h.draining = true;
        }
        self.publish_readable();
        let deadline = Instant::now() + self.config.drain_timeout;
        let mut tick = tokio::time::interval(self.config.lease.tick());
        while !(self.running.is_empty() && self.host_queue.is_empty()) && Instant::now() < deadline
        {
            tokio::select! {
                Some(joined) = self.tasks.join_next_with_id() => self.finished(joined),
                () = sleep_until_opt(self.next_flush) => self.flush().await?,
                _ = tick.tick() => { self.lease_round(true).await?; }
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        // Whatever still runs goes back to its partition at once.
        let mut leftover = std::mem::take(&mut self.unreadable);
        for (k, (d, handle)) in std::mem::take(&mut self.running) {
            handle.abort();
            self.known.remove(&k);
            leftover.push(d);
        }
        self.task_keys.clear();
        self.host_running.clear();
        for (_, queue) in std::mem::take(&mut self.host_queue) {
            for d in queue {
                self.known.remove(&key(&d));
                leftover.push(d);
            }
        }
        let redis = self.redis.clone();
        let backoff = self.config.backoff;
        if !leftover.is_empty() {
            match tokio::time::timeout(
                STOP_GRACE,
                redis.retry("requeueing", backoff, || {
                    frontier::requeue(&redis, &leftover)
                }),
            )
            .await
            {
                Ok(Ok(())) => self.stats.requeued += leftover.len() as u64,
                Ok(Err(e)) => return Err(e),
                Err(_) => tracing::warn!(
                    "could not requeue {} entries in time: they are claimed after the idle time",
                    leftover.len()
                ),
            }
        }
        let stored = tokio::time::timeout(STOP_GRACE, async {
            while !self.unflushed.is_empty() {
                if let Some(at) = self.next_flush {
                    tokio::time::sleep_until(at).await;
                }
                self.flush().await?;
            }
            Ok::<(), FleetError>(())
        })
        .await;
        match stored {
            Ok(result) => result?,
            Err(_) => tracing::warn!(
                "could not store {} results in time: their URLs are fetched again",
                self.unflushed.len()
            ),
        }
        // Entries read but never started (still in the reader's channel, or
        // delivered to a read the reader was stopped in) are pending under
        // this worker's name: give them back too, instead of leaving them
        // to the claim idle time.
        let partitions: Vec<u32> = self.held.keys().copied().collect();
        let id = self.config.id.clone();
        let unstarted = tokio::time::timeout(STOP_GRACE, async {
            let mut given_back = 0u64;
            for p in partitions {
                let mine = redis
                    .retry("reading this worker's pending entries", backoff, || {
                        frontier::own_pending(&redis, &id, p, 10_000)
                    })
                    .await?;
                redis
                    .retry("requeueing", backoff, || frontier::requeue(&redis, &mine))
                    .await?;
                given_back += mine.len() as u64;
            }
            Ok::<u64, FleetError>(given_back)
        })
        .await;
        match unstarted {
            Ok(Ok(n)) => self.stats.requeued += n,
            Ok(Err(e)) => return Err(e),
            Err(_) => tracing::warn!(
                "could not requeue the entries read but not started in time: they are claimed after the idle time"
            ),
        }
        let held: Vec<(u32, Lease)> = std::mem::take(&mut self.held)
            .into_iter()
            .map(|(p, h)| (p, h.lease))
            .collect();
        self.publish_readable();
        let released = tokio::time::timeout(STOP_GRACE, async {
            for (p, lease) in &held {
                redis
                    .retry("releasing a lease", backoff, || {
                        self.cas(*p, Some(lease), None)
                    })
                    .await?;
            }
            self.stats.state = "stopped".into();
            let now_ms = redis
                .retry("reading the clock", backoff, || redis.time_ms())
                .await?;
            self.heartbeat(now_ms).await
        })
        .await;
        match released {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("could not release the leases in time: they expire by themselves");
                Ok(())
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
