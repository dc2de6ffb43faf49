//! crawldns: DNS resolution for high-throughput crawlers.
//!
//! An event-driven stub resolver: pinned nameservers, short adaptive
//! timeouts with retries and failover, A and AAAA in parallel with
//! happy-eyeballs ordering, TCP fallback, and answers checked against the
//! exact question they claim to answer. No thread pool, no socket per query.
//!
//! ```no_run
//! # async fn run() -> Result<(), crawldns::Error> {
//! use std::time::Duration;
//! use crawldns::{QueryType, Resolver, ResolverConfig};
//!
//! let resolver = Resolver::new(
//!     ResolverConfig::builder()
//!         .nameserver("127.0.0.1:5353".parse().unwrap())
//!         .timeout(Duration::from_millis(500))
//!         .build(),
//! )?;
//! let addrs = resolver.lookup_ip("h1.crawl.test").await?;
//! let v4 = resolver.lookup("h1.crawl.test", QueryType::A).await?;
//! # Ok(()) }
//! ```
//!
//! The public API is the façade re-exported below: [`Resolver`], its
//! [`ResolverConfig`], the answers ([`Lookup`], [`LookupIp`]), the one
//! [`Error`] with its [`ErrorKind`], and the metrics snapshot. Mechanisms
//! are private modules, one file each, named after what they hold (see
//! ARCHITECTURE.md); fuzz targets, benchmarks and tests reach the few they
//! need through [`internals`], which is not part of the API.

mod answer;
mod attempts;
mod bulk;
mod cache;
mod cache_front;
mod case_randomization;
mod clock;
mod config;
mod egress;
mod error;
mod exchange;
mod happy_eyeballs;
mod health;
mod hosts;
mod late_answers;
mod local;
mod metrics;
mod name;
mod prewarm;
mod probe;
mod rearm;
mod records;
mod resolv_conf;
mod resolver;
mod rng;
mod single_flight;
mod timer_queue;
mod transport;
mod wire;

pub use bulk::Bulk;
pub use cache::CacheConfig;
pub use clock::CacheClock;
pub use config::{
    Batching, IpStrategy, NameServer, Protocol, ResolverConfig, ResolverConfigBuilder,
};
pub use error::{Attempt, Error, ErrorKind};
pub use health::ServerHealth;
pub use local::normalize_host;
pub use metrics::{LatencyHistogram, LatencySummary, MetricsSnapshot};
pub use prewarm::{ErrorKindKey, PrewarmOptions, PrewarmReport};
pub use records::{Lookup, LookupIp, QueryType, RecordData, ServiceBinding, Soa};
pub use resolver::Resolver;

/// The door for the fuzz targets, benchmarks and tests that exercise
/// mechanisms below the façade (wire encoding, answer reading, the cache
/// store, GSO sends). **Not part of the API**: no stability promise, and
/// it exposes hickory-proto types, which the API proper never does.
#[doc(hidden)]
pub mod internals {
    /// Reading answers and CNAME chains.
    pub mod answer {
        pub use crate::answer::{read, Reading, RecordValue};
    }
    /// The answer cache's store and policy.
    pub mod cache {
        pub use crate::cache::{Cache, Entry, Hit, Key, Slot, Value};
    }
    /// Query encoding and answer matching.
    pub mod wire {
        pub use crate::wire::{
            encode_padded_query, encode_query, judge, peek_id, Question, Verdict,
        };
    }
    /// UDP GSO sends.
    pub mod gso {
        pub use crate::transport::gso::send_segments;
    }
}
