//! The collector: reads the result stream, writes each URL's result once
//! (deduplicated by URL id), flushes the output to disk, then trims what it
//! wrote from Redis.
//!
//! At-least-once delivery means a URL may be fetched twice (a worker died
//! after storing its result but before its XACK, or a lease moved while a
//! fetch ran); the first result of an id wins. Ids already in the output
//! file (from an earlier run of the collector) count as seen, so a
//! collector can be restarted onto the same file.
//!
//! Each output line is the worker's result line with the URL id and the
//! worker spliced in first when it is a JSON object
//! (`{"id":7,"worker":"w1",...}`), or a JSON object holding them otherwise.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::time::Duration;

use crate::backoff::Backoff;
use crate::connection::FleetRedis;
use crate::error::FleetError;
use crate::frontier;
use crate::results::{self, ResultEntry};

/// The URL ids already written.
#[derive(Debug, Default, Clone)]
pub struct Dedup {
    seen: HashSet<u64>,
}

impl Dedup {
    /// Remembers `id`; true when it is new.
    pub fn insert(&mut self, id: u64) -> bool {
        self.seen.insert(id)
    }

    /// Ids seen.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Learns the ids of an earlier output (lines from [`output_line`]);
    /// returns how many lines it read.
    pub fn load(&mut self, reader: impl BufRead) -> Result<u64, FleetError> {
        let mut lines = 0;
        for line in reader.lines() {
            let line = line.map_err(|source| FleetError::Io {
                what: "cannot read the earlier output".into(),
                source,
            })?;
            if let Some(id) = id_of_line(&line) {
                self.seen.insert(id);
            }
            lines += 1;
        }
        Ok(lines)
    }
}

/// The id of an output line, read from its leading `{"id":N,`.
pub fn id_of_line(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("{\"id\":")?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// The output line of a result.
pub fn output_line(entry: &ResultEntry) -> String {
    let worker = serde_json::Value::String(entry.worker.clone()).to_string();
    let line = entry.line.trim();
    match line.strip_prefix('{') {
        Some(rest) if line.ends_with('}') => {
            let rest = rest.trim_start();
            if rest == "}" {
                format!("{{\"id\":{},\"worker\":{worker}}}", entry.id)
            } else {
                format!("{{\"id\":{},\"worker\":{worker},{rest}", entry.id)
            }
        }
        _ => {
            let text = serde_json::Value::String(entry.line.clone()).to_string();
            format!(
                "{{\"id\":{},\"worker\":{worker},\"line\":{text}}}",
                entry.id
            )
        }
    }
}

/// How to collect.
#[derive(Debug, Clone, Copy)]
pub struct CollectOptions {
    /// Keep collecting after the crawl is done (until stopped).
    pub follow: bool,
    /// Results per round trip.
    pub batch: usize,
    /// The pause when there is nothing to collect.
    pub idle: Duration,
    /// Waiting for Redis.
    pub backoff: Backoff,
}

impl Default for CollectOptions {
    fn default() -> Self {
        Self {
            follow: false,
            batch: 1000,
            idle: Duration::from_millis(100),
            backoff: Backoff::default(),
        }
    }
}

/// What a collection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectReport {
    /// Results written.
    pub written: u64,
    /// Results dropped as duplicates of an id already written.
    pub duplicates: u64,
    /// Results by outcome: written with class `ok`.
    pub ok: u64,
}

/// Collects results into `out` until the crawl is done (no enqueuer
/// running, the frontier empty, every result collected), or forever with
/// `follow`, or until `stop` resolves. `out` is flushed and `sync` called
/// before each trim, so a result leaves Redis only once it is on disk.
pub async fn collect<W, S>(
    redis: &FleetRedis,
    dedup: &mut Dedup,
    out: &mut W,
    mut sync: S,
    options: CollectOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<CollectReport, FleetError>
where
    W: Write,
    S: FnMut(&mut W) -> std::io::Result<()>,
{
    let backoff = options.backoff;
    let partitions = redis
        .retry("reading the partitions", backoff, || {
            frontier::ensure(redis, 1)
        })
        .await?;
    let mut report = CollectReport::default();
    tokio::pin!(stop);
    loop {
        // Done is decided before the read: once the frontier is empty and
        // no enqueuer runs, every result is already in the stream.
        let done = !options.follow
            && redis
                .retry("checking progress", backoff, || {
                    crawl_done(redis, partitions)
                })
                .await?;
        let batch = redis
            .retry("reading results", backoff, || {
                results::read_after(redis, "-", options.batch)
            })
            .await?;
        if let Some(last) = batch.last() {
            for entry in &batch {
                if dedup.insert(entry.id) {
                    let line = output_line(entry);
                    out.write_all(line.as_bytes())
                        .and_then(|()| out.write_all(b"\n"))
                        .map_err(|source| FleetError::Io {
                            what: "cannot write the output".into(),
                            source,
                        })?;
                    report.written += 1;
                    if entry.class == "ok" {
                        report.ok += 1;
                    }
                } else {
                    report.duplicates += 1;
                }
            }
            sync(out).map_err(|source| FleetError::Io {
                what: "cannot flush the output".into(),
                source,
            })?;
            let last = last.entry.clone();
            redis
                .retry("trimming collected results", backoff, || {
                    results::trim_through(redis, &last)
                })
                .await?;
            continue;
        }
        if done {
            return Ok(report);
        }
        tokio::select! {
            () = &mut stop => return Ok(report),
            () = tokio::time::sleep(options.idle) => {}
        }
    }
}

/// True when no enqueuer runs, something was enqueued, and the frontier
/// is empty (every URL completed).
pub async fn crawl_done(redis: &FleetRedis, partitions: u32) -> Result<bool, FleetError> {
    let (enqueuers, enqueued): (Option<i64>, Option<u64>) = redis
        .query(
            redis::cmd("HMGET")
                .arg(redis.keys().meta())
                .arg("enqueuers")
                .arg("enqueued"),
        )
        .await?;
    if enqueuers.unwrap_or(0) > 0 || enqueued.unwrap_or(0) == 0 {
        return Ok(false);
    }
    Ok(frontier::len(redis, partitions).await? == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, line: &str) -> ResultEntry {
        ResultEntry {
            entry: "1-0".into(),
            id,
            worker: "w\"1".into(),
            class: "ok".into(),
            line: line.into(),
        }
    }

    #[test]
    fn lines_carry_the_id_and_worker_first() {
        assert_eq!(
            output_line(&entry(7, r#"{"url":"http://a/","status":200}"#)),
            r#"{"id":7,"worker":"w\"1","url":"http://a/","status":200}"#
        );
        assert_eq!(output_line(&entry(8, "{}")), r#"{"id":8,"worker":"w\"1"}"#);
        assert_eq!(
            output_line(&entry(9, "plain text")),
            r#"{"id":9,"worker":"w\"1","line":"plain text"}"#
        );
        for line in [
            output_line(&entry(7, r#"{"url":"x"}"#)),
            output_line(&entry(8, "{ }")),
            output_line(&entry(9, "[1]")),
        ] {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert!(v["id"].is_u64(), "{line}");
        }
    }

    #[test]
    fn dedup_keeps_the_first_and_learns_old_output() {
        let mut d = Dedup::default();
        let old = format!(
            "{}\n{}\ngarbage\n",
            output_line(&entry(3, "{}")),
            output_line(&entry(5, "{\"a\":1}"))
        );
        assert_eq!(d.load(old.as_bytes()).unwrap(), 3);
        assert_eq!(d.len(), 2);
        assert!(!d.insert(3));
        assert!(!d.insert(5));
        assert!(d.insert(4));
        assert_eq!(id_of_line(r#"{"id":12,"worker":"w"}"#), Some(12));
        assert_eq!(id_of_line(r#"{"worker":"w","id":12}"#), None);
    }
}
