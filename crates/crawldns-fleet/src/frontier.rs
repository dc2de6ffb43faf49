//! The frontier: one Redis stream per partition, consumed through the
//! consumer group [`GROUP`].
//!
//! An entry is `id` (the URL id, from `NS:seq`) and `url`. A worker reads
//! entries with XREADGROUP, and once the result is in the result stream it
//! XACKs and XDELs them in the same MULTI, so the frontier only holds what
//! is not done yet and Redis memory is bounded by the enqueue cap. Entries
//! another worker left pending are claimed (XPENDING IDLE + XCLAIM) by the
//! partition's new holder.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::streams::{
    StreamClaimReply, StreamId, StreamPendingCountReply, StreamReadOptions, StreamReadReply,
};
use redis::Value;

use crate::backoff::Backoff;
use crate::connection::FleetRedis;
use crate::error::FleetError;
use crate::keys::GROUP;
use crate::partition::partition_of;

/// One URL handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The partition it came from.
    pub partition: u32,
    /// The stream entry id (`ms-seq`).
    pub entry: String,
    /// The URL id.
    pub id: u64,
    /// The URL.
    pub url: String,
}

/// A finished URL, ready to complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// What was fetched.
    pub delivery: Delivery,
    /// The result line.
    pub line: String,
    /// The outcome class (`ok`, `dns`, ...).
    pub class: String,
}

/// Sets up the fleet's partitions: the first caller fixes P (`hint`), later
/// callers read it. Creates every partition's consumer group. Returns P.
pub async fn ensure(redis: &FleetRedis, hint: u32) -> Result<u32, FleetError> {
    let meta = redis.keys().meta();
    let _: i64 = redis
        .query(
            redis::cmd("HSETNX")
                .arg(&meta)
                .arg("partitions")
                .arg(hint.max(1)),
        )
        .await?;
    let stored: Option<String> = redis
        .query(redis::cmd("HGET").arg(&meta).arg("partitions"))
        .await?;
    let partitions: u32 = stored
        .as_deref()
        .and_then(|s| s.parse().ok())
        .filter(|&p| p > 0)
        .ok_or_else(|| FleetError::Data(format!("{meta} partitions is {stored:?}")))?;
    for p in 0..partitions {
        let created: Result<Value, FleetError> = redis
            .query(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(redis.keys().partition(p))
                    .arg(GROUP)
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        match created {
            Ok(_) => {}
            Err(FleetError::Redis { message, .. }) if message.contains("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(partitions)
}

/// Entries in the frontier (queued or in flight), all partitions together.
pub async fn len(redis: &FleetRedis, partitions: u32) -> Result<u64, FleetError> {
    Ok(lens(redis, partitions).await?.iter().sum())
}

/// Entries per partition.
pub async fn lens(redis: &FleetRedis, partitions: u32) -> Result<Vec<u64>, FleetError> {
    let mut pipe = redis::pipe();
    for p in 0..partitions {
        pipe.cmd("XLEN").arg(redis.keys().partition(p));
    }
    redis.pipe(&pipe).await
}

/// How to enqueue.
#[derive(Debug, Clone, Copy)]
pub struct EnqueueOptions {
    /// P for a new fleet (an existing fleet keeps its own).
    pub partitions: u32,
    /// The most entries the frontier may hold; the enqueuer waits below it.
    pub cap: u64,
    /// URLs per round trip.
    pub batch: usize,
    /// Waiting for Redis, and for room under the cap.
    pub backoff: Backoff,
}

impl Default for EnqueueOptions {
    fn default() -> Self {
        Self {
            partitions: 16,
            cap: 1_000_000,
            batch: 1000,
            backoff: Backoff::default(),
        }
    }
}

/// What an enqueue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnqueueReport {
    /// URLs enqueued.
    pub urls: u64,
    /// Times the enqueuer waited for the frontier to drain below the cap.
    pub waits: u64,
    /// The first and last URL ids handed out.
    pub ids: Option<(u64, u64)>,
}

/// An enqueue in progress: registered as a running enqueuer (so that
/// collectors and `--until-done` workers wait for it) from
/// [`Enqueuer::start`] to [`Enqueuer::finish`].
#[derive(Debug)]
pub struct Enqueuer<'a> {
    redis: &'a FleetRedis,
    partitions: u32,
    options: EnqueueOptions,
    report: EnqueueReport,
}

impl<'a> Enqueuer<'a> {
    /// Sets the fleet up if needed and registers the enqueuer.
    pub async fn start(redis: &'a FleetRedis, options: EnqueueOptions) -> Result<Self, FleetError> {
        let partitions = redis
            .retry("setting up the partitions", options.backoff, || {
                ensure(redis, options.partitions)
            })
            .await?;
        add_enqueuer(redis, options.backoff, 1).await?;
        Ok(Self {
            redis,
            partitions,
            options,
            report: EnqueueReport::default(),
        })
    }

    /// P.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Enqueues `urls`, in batches, each waiting for room under the cap
    /// and for Redis. A URL with no host goes in all the same: its worker
    /// reports it as invalid, so every line gets a result.
    pub async fn push(&mut self, urls: &[String]) -> Result<(), FleetError> {
        let size = self.options.batch.clamp(
            1,
            usize::try_from(self.options.cap.max(1)).unwrap_or(usize::MAX),
        );
        for batch in urls.chunks(size) {
            self.push_batch(batch).await?;
        }
        Ok(())
    }

    async fn push_batch(&mut self, batch: &[String]) -> Result<(), FleetError> {
        let (redis, options, partitions) = (self.redis, self.options, self.partitions);
        let n = batch.len() as u64;
        // Back-pressure: wait until the batch fits under the cap.
        let mut attempt = 0;
        loop {
            let queued = redis
                .retry("reading the frontier size", options.backoff, || {
                    len(redis, partitions)
                })
                .await?;
            if queued + n <= options.cap {
                break;
            }
            self.report.waits += 1;
            tokio::time::sleep(
                options
                    .backoff
                    .delay(attempt)
                    .max(Duration::from_millis(20)),
            )
            .await;
            attempt += 1;
        }
        let last: u64 = redis
            .retry("handing out URL ids", options.backoff, || async move {
                redis
                    .query(redis::cmd("INCRBY").arg(redis.keys().seq()).arg(n))
                    .await
            })
            .await?;
        let first = last + 1 - n;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (i, url) in batch.iter().enumerate() {
            pipe.cmd("XADD")
                .arg(redis.keys().partition(partition_of(url, partitions)))
                .arg("*")
                .arg("id")
                .arg(first + i as u64)
                .arg("url")
                .arg(url)
                .ignore();
        }
        pipe.cmd("HINCRBY")
            .arg(redis.keys().meta())
            .arg("enqueued")
            .arg(n)
            .ignore();
        // A retried MULTI whose first try did land enqueues the same ids
        // twice: the collector keeps one result per id.
        redis
            .retry("enqueueing", options.backoff, || redis.pipe::<()>(&pipe))
            .await?;
        self.report.urls += n;
        self.report.ids = Some((self.report.ids.map_or(first, |(f, _)| f), last));
        Ok(())
    }

    /// Unregisters the enqueuer; returns what it did.
    pub async fn finish(self) -> Result<EnqueueReport, FleetError> {
        add_enqueuer(self.redis, self.options.backoff, -1).await?;
        Ok(self.report)
    }
}

async fn add_enqueuer(redis: &FleetRedis, backoff: Backoff, delta: i64) -> Result<(), FleetError> {
    let meta = redis.keys().meta();
    let meta = &meta;
    redis
        .retry("registering the enqueuer", backoff, || async move {
            redis
                .query::<i64>(redis::cmd("HINCRBY").arg(meta).arg("enqueuers").arg(delta))
                .await
        })
        .await
        .map(drop)
}

/// Enqueues all of `urls` (see [`Enqueuer`]).
pub async fn enqueue_lines(
    redis: &FleetRedis,
    urls: &[String],
    options: EnqueueOptions,
) -> Result<EnqueueReport, FleetError> {
    let mut enqueuer = Enqueuer::start(redis, options).await?;
    let pushed = enqueuer.push(urls).await;
    let report = enqueuer.finish().await?;
    pushed.map(|()| report)
}

fn delivery(partition: u32, entry: &StreamId) -> Result<Delivery, FleetError> {
    let id: Option<u64> = entry.get("id");
    let url: Option<String> = entry.get("url");
    match (id, url) {
        (Some(id), Some(url)) => Ok(Delivery {
            partition,
            entry: entry.id.clone(),
            id,
            url,
        }),
        _ => Err(FleetError::Data(format!(
            "partition {partition} entry {} has no id or url",
            entry.id
        ))),
    }
}

/// Reads new entries of `partitions` for `consumer`, at most `count` per
/// partition, waiting up to `block` when there are none.
pub async fn read(
    redis: &FleetRedis,
    consumer: &str,
    partitions: &[u32],
    count: usize,
    block: Duration,
) -> Result<Vec<Delivery>, FleetError> {
    if partitions.is_empty() || count == 0 {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = partitions
        .iter()
        .map(|&p| redis.keys().partition(p))
        .collect();
    let ids: Vec<&str> = vec![">"; keys.len()];
    let options = StreamReadOptions::default()
        .group(GROUP, consumer)
        .count(count)
        .block(usize::try_from(block.as_millis()).unwrap_or(usize::MAX));
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg(&options).arg("STREAMS").arg(&keys).arg(&ids);
    let reply: Option<StreamReadReply> = redis.query(&cmd).await?;
    let by_key: BTreeMap<&str, u32> = keys
        .iter()
        .map(String::as_str)
        .zip(partitions.iter().copied())
        .collect();
    let mut out = Vec::new();
    for key in reply.map(|r| r.keys).unwrap_or_default() {
        let Some(&p) = by_key.get(key.key.as_str()) else {
            continue;
        };
        for entry in &key.ids {
            out.push(delivery(p, entry)?);
        }
    }
    Ok(out)
}

/// Claims for `consumer` the entries of `partition` that were read and not
/// acknowledged for `min_idle`: XPENDING with IDLE to find them, paging
/// through the pending list, then XCLAIM. They may be another consumer's
/// (a dead worker, or one that lost the lease) or this consumer's own
/// (from before it lost and took back the partition, or an earlier run
/// under the same id); the caller skips those it is still working on. An
/// entry deleted meanwhile is dropped from the pending list by XCLAIM.
pub async fn claim(
    redis: &FleetRedis,
    consumer: &str,
    partition: u32,
    min_idle: Duration,
    count: usize,
) -> Result<Vec<Delivery>, FleetError> {
    const PAGE: usize = 500;
    let key = redis.keys().partition(partition);
    let idle_ms = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
    let mut theirs: Vec<String> = Vec::new();
    let mut start = "-".to_owned();
    loop {
        let page: StreamPendingCountReply = redis
            .query(
                redis::cmd("XPENDING")
                    .arg(&key)
                    .arg(GROUP)
                    .arg("IDLE")
                    .arg(idle_ms)
                    .arg(&start)
                    .arg("+")
                    .arg(PAGE),
            )
            .await?;
        let full = page.ids.len() >= PAGE;
        let last = page.ids.last().map(|p| p.id.clone());
        theirs.extend(page.ids.into_iter().map(|p| p.id));
        match last {
            Some(last) if full && theirs.len() < count => start = format!("({last}"),
            _ => break,
        }
    }
    theirs.truncate(count.max(1));
    xclaim(redis, consumer, partition, idle_ms, &theirs).await
}

/// XCLAIM of `ids` of `partition` for `consumer` (those idle `idle_ms` at
/// least), as deliveries.
async fn xclaim(
    redis: &FleetRedis,
    consumer: &str,
    partition: u32,
    idle_ms: u64,
    ids: &[String],
) -> Result<Vec<Delivery>, FleetError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let reply: StreamClaimReply = redis
        .query(
            redis::cmd("XCLAIM")
                .arg(redis.keys().partition(partition))
                .arg(GROUP)
                .arg(consumer)
                .arg(idle_ms)
                .arg(ids),
        )
        .await?;
    reply
        .ids
        .iter()
        .map(|entry| delivery(partition, entry))
        .collect()
}

/// The entries of `partition` pending under `consumer` itself (read and not
/// acknowledged), at most `count`, taken back from the pending list with
/// XCLAIM (to the same consumer) so that their URLs can be requeued: what
/// a stopping worker read but never started, e.g. a read that its reader
/// was stopped in the middle of.
pub async fn own_pending(
    redis: &FleetRedis,
    consumer: &str,
    partition: u32,
    count: usize,
) -> Result<Vec<Delivery>, FleetError> {
    let key = redis.keys().partition(partition);
    let page: StreamPendingCountReply = redis
        .query(
            redis::cmd("XPENDING")
                .arg(&key)
                .arg(GROUP)
                .arg("-")
                .arg("+")
                .arg(count.max(1))
                .arg(consumer),
        )
        .await?;
    let ids: Vec<String> = page.ids.into_iter().map(|p| p.id).collect();
    xclaim(redis, consumer, partition, 0, &ids).await
}

/// In one MULTI: each result into the result stream, then XACK and XDEL of
/// the entries. A result is never acknowledged before it is stored.
pub async fn complete(
    redis: &FleetRedis,
    worker: &str,
    done: &[Completion],
) -> Result<(), FleetError> {
    if done.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for c in done {
        pipe.cmd("XADD")
            .arg(redis.keys().results())
            .arg("*")
            .arg("id")
            .arg(c.delivery.id)
            .arg("worker")
            .arg(worker)
            .arg("class")
            .arg(&c.class)
            .arg("line")
            .arg(&c.line)
            .ignore();
    }
    ack_and_delete(redis, &mut pipe, done.iter().map(|c| &c.delivery));
    redis.pipe(&pipe).await
}

/// In one MULTI: each entry added again at the end of its partition, the
/// old one acked and deleted. For in-flight entries a stopping worker
/// gives back at once instead of leaving them to the idle timeout.
pub async fn requeue(redis: &FleetRedis, entries: &[Delivery]) -> Result<(), FleetError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for d in entries {
        pipe.cmd("XADD")
            .arg(redis.keys().partition(d.partition))
            .arg("*")
            .arg("id")
            .arg(d.id)
            .arg("url")
            .arg(&d.url)
            .ignore();
    }
    ack_and_delete(redis, &mut pipe, entries.iter());
    redis.pipe(&pipe).await
}

fn ack_and_delete<'a>(
    redis: &FleetRedis,
    pipe: &mut redis::Pipeline,
    entries: impl Iterator<Item = &'a Delivery>,
) {
    let mut by_partition: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for d in entries {
        by_partition.entry(d.partition).or_default().push(&d.entry);
    }
    for (p, ids) in by_partition {
        let key = redis.keys().partition(p);
        pipe.cmd("XACK").arg(&key).arg(GROUP).arg(&ids).ignore();
        pipe.cmd("XDEL").arg(&key).arg(&ids).ignore();
    }
}
