//! A snapshot of the fleet for `crawldns fleet status`: partitions (owner,
//! queued, lag, pending), workers (state, rate, DNS hit ratio) and totals.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use redis::Value;
use serde::Serialize;

use crate::connection::FleetRedis;
use crate::error::FleetError;
use crate::keys::GROUP;
use crate::lease::Lease;
use crate::stats::WorkerStats;

/// One partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    /// Its number.
    pub partition: u32,
    /// The worker holding its lease (`None`: free or expired).
    pub owner: Option<String>,
    /// Entries in its stream (queued and in flight).
    pub entries: u64,
    /// Entries never delivered yet.
    pub lag: u64,
    /// Entries delivered and not acknowledged (in flight).
    pub pending: u64,
}

/// One worker, as it last reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerStatus {
    /// Whether it reported within the lease time and did not stop.
    pub alive: bool,
    /// Seconds since its last report.
    pub last_seen_s: f64,
    /// Its report.
    pub stats: WorkerStats,
}

/// The whole fleet.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FleetStatus {
    /// Partitions P.
    pub partitions: u32,
    /// URLs ever enqueued.
    pub enqueued: u64,
    /// Enqueuers running.
    pub enqueuers: i64,
    /// Entries in the frontier (all partitions).
    pub queued: u64,
    /// Results waiting for the collector.
    pub uncollected: u64,
    /// Per partition.
    pub partition: Vec<PartitionStatus>,
    /// Per worker, by id.
    pub workers: BTreeMap<String, WorkerStatus>,
}

fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

/// `lag` and `pending` of the group from an XINFO GROUPS reply.
fn group_counts(reply: &Value) -> (u64, u64) {
    let Value::Array(groups) = reply else {
        return (0, 0);
    };
    for group in groups {
        let fields: Vec<&Value> = match group {
            Value::Array(items) => items.iter().collect(),
            Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
            _ => continue,
        };
        let mut map: HashMap<String, &Value> = HashMap::new();
        for pair in fields.chunks(2) {
            if let [k, v] = pair {
                let key = match k {
                    Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    Value::SimpleString(s) => s.clone(),
                    _ => continue,
                };
                map.insert(key, v);
            }
        }
        let name = map.get("name").and_then(|v| match v {
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        });
        if name.as_deref() == Some(GROUP) {
            let lag = map.get("lag").and_then(|v| int(v)).unwrap_or(0);
            let pending = map.get("pending").and_then(|v| int(v)).unwrap_or(0);
            return (lag, pending);
        }
    }
    (0, 0)
}

impl FleetStatus {
    /// Reads the fleet's state (one pass, not atomic).
    pub async fn read(redis: &FleetRedis, lease_ms: u64) -> Result<Self, FleetError> {
        let keys = redis.keys();
        let meta: HashMap<String, String> =
            redis.query(redis::cmd("HGETALL").arg(keys.meta())).await?;
        let get = |k: &str| meta.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let partitions = u32::try_from(get("partitions")).unwrap_or(0);
        let now = redis.time_ms().await?;
        let leases: HashMap<String, String> = redis
            .query(redis::cmd("HGETALL").arg(keys.leases()))
            .await?;
        let workers: HashMap<String, String> = redis
            .query(redis::cmd("HGETALL").arg(keys.workers()))
            .await?;
        let mut status = Self {
            partitions,
            enqueued: u64::try_from(get("enqueued")).unwrap_or(0),
            enqueuers: get("enqueuers"),
            uncollected: redis.query(redis::cmd("XLEN").arg(keys.results())).await?,
            ..Self::default()
        };
        for p in 0..partitions {
            let key = keys.partition(p);
            let entries: u64 = redis.query(redis::cmd("XLEN").arg(&key)).await?;
            let info: Value = redis
                .query(redis::cmd("XINFO").arg("GROUPS").arg(&key))
                .await
                .unwrap_or(Value::Nil);
            let (lag, pending) = group_counts(&info);
            let owner = leases
                .get(&p.to_string())
                .and_then(|v| Lease::decode(v))
                .filter(|l| l.is_live(now))
                .map(|l| l.owner);
            status.queued += entries;
            status.partition.push(PartitionStatus {
                partition: p,
                owner,
                entries,
                lag,
                pending,
            });
        }
        for (id, json) in workers {
            let Ok(stats) = serde_json::from_str::<WorkerStats>(&json) else {
                continue;
            };
            let age = now.saturating_sub(stats.seen_ms);
            status.workers.insert(
                id,
                WorkerStatus {
                    alive: stats.state != "stopped" && age < lease_ms,
                    last_seen_s: age as f64 / 1000.0,
                    stats,
                },
            );
        }
        Ok(status)
    }

    /// The status as a text table.
    pub fn render(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "partitions {}  enqueued {}  queued {}  uncollected results {}  enqueuers running {}",
            self.partitions, self.enqueued, self.queued, self.uncollected, self.enqueuers
        );
        let _ = writeln!(
            t,
            "\n{:>9}  {:<28} {:>8} {:>8} {:>8}",
            "partition", "owner", "entries", "lag", "pending"
        );
        for p in &self.partition {
            let _ = writeln!(
                t,
                "{:>9}  {:<28} {:>8} {:>8} {:>8}",
                p.partition,
                p.owner.as_deref().unwrap_or("-"),
                p.entries,
                p.lag,
                p.pending
            );
        }
        let _ = writeln!(
            t,
            "\n{:<28} {:<8} {:>8} {:>8} {:>9} {:>6} {:>10} {:>10} {:>9} {:>6}",
            "worker",
            "state",
            "done",
            "ok",
            "URLs/s",
            "flight",
            "DNS hits",
            "URL hits",
            "DNS qry",
            "seen"
        );
        for (id, w) in &self.workers {
            let s = &w.stats;
            let state = if w.alive {
                s.state.as_str()
            } else if s.state == "stopped" {
                "stopped"
            } else {
                "dead"
            };
            let percent =
                |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0));
            let ratio = percent(s.dns.hit_ratio());
            let url_ratio = percent(s.url_hit_ratio());
            let _ = writeln!(
                t,
                "{:<28} {:<8} {:>8} {:>8} {:>9.1} {:>6} {:>10} {:>10} {:>9} {:>5.1}s",
                id,
                state,
                s.done,
                s.ok(),
                s.rate,
                s.in_flight,
                ratio,
                url_ratio,
                s.dns.queries,
                w.last_seen_s
            );
        }
        t
    }
}
