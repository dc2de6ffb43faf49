//! Fleet mode for crawldns: many crawl workers share one frontier on Redis
//! Streams and one recursive resolver tier.
//!
//! - [`partition`]: a URL goes to partition hash(host) mod P, so a host lives
//!   on one partition, consumed by one worker at a time.
//! - [`lease`]: who consumes which partition, as a pure state machine.
//! - [`frontier`]: the partition streams: enqueue under a cap, read with a
//!   consumer group, claim a dead worker's entries, complete (result, then
//!   XACK + XDEL) or requeue.
//! - [`results`]: the result stream, trimmed as it is collected.
//! - [`collector`]: writes each URL's result once, deduplicated by URL id.
//! - [`worker`]: the async driver of one worker around a [`worker::Fetch`].
//! - [`stats`], [`status`]: what workers report and `status` shows.
//!
//! The fleet knows nothing of the record's shape: a worker's fetch returns
//! one result line and an outcome class.

pub mod backoff;
pub mod collector;
pub mod connection;
pub mod error;
pub mod frontier;
pub mod keys;
pub mod lease;
pub mod partition;
pub mod redis_url;
pub mod results;
pub mod stats;
pub mod status;
pub mod worker;

pub use backoff::Backoff;
pub use collector::{collect, CollectOptions, CollectReport};
pub use connection::FleetRedis;
pub use error::FleetError;
pub use frontier::{enqueue_lines, EnqueueOptions, EnqueueReport, Enqueuer};
pub use lease::LeaseConfig;
pub use redis_url::RedisUrl;
pub use stats::{DnsStats, WorkerStats};
pub use status::FleetStatus;
pub use worker::{Fetch, Fetched, WorkerConfig};
