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
//! Modules are named after the mechanism they hold: [`cache`],
//! [`single_flight`], [`prewarm`], [`transport`] (UDP pool and TCP), [`health`] (server selection and adaptive timeouts),
//! [`answer`] (reading answers and CNAME chains), [`wire`] (encoding and
//! matching), [`happy_eyeballs`], [`egress`], [`name`], [`metrics`].

pub mod answer;
mod attempts;
pub mod cache;
mod case_randomization;
pub mod clock;
pub mod config;
pub mod egress;
pub mod error;
mod exchange;
pub mod happy_eyeballs;
pub mod health;
pub mod metrics;
pub mod name;
pub mod prewarm;
mod probe;
mod records;
pub mod resolv_conf;
mod resolver;
mod rng;
pub mod single_flight;
pub mod transport;
pub mod wire;

pub use cache::CacheConfig;
pub use clock::CacheClock;
pub use config::{
    Batching, IpStrategy, NameServer, Protocol, ResolverConfig, ResolverConfigBuilder,
};
pub use error::{Attempt, Error, ErrorKind};
pub use health::ServerHealth;
pub use metrics::{LatencySummary, MetricsSnapshot};
pub use prewarm::{PrewarmOptions, PrewarmReport};
pub use records::{Lookup, LookupIp, QueryType};
pub use resolver::Resolver;
