//! HTTP fetching for crawlers on top of the crawldns resolver.
//!
//! - [`CrawlDnsResolve`]: crawldns as reqwest's resolver (feature `reqwest`).
//! - [`CrawlConnector`]: a hyper-util connector with RFC 8305 connection attempts.
//! - [`Fetcher`]: a crawl fetcher with a global and a per-host connection
//!   limit, politeness, keep-alive that survives the global limit, HTTP/2 by
//!   ALPN, content decoding, redirects, a body cap, dead hosts failing fast
//!   ([`BreakerPolicy`]), and a [`FetchRecord`] per URL with phase timings,
//!   an [`ErrorClass`] and the [`Response`] (or a [`BodyStream`]).
//! - [`WarcWriter`]: WARC 1.1 output of fetched pages.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use crawldns::{Resolver, ResolverConfig};
//! use crawldns_fetch::{Fetcher, FetcherConfig};
//!
//! let resolver = Resolver::new(
//!     ResolverConfig::builder().nameserver("127.0.0.1:5353".parse()?).build(),
//! )?;
//! let fetcher = Arc::new(Fetcher::new(FetcherConfig::default(), Arc::new(resolver))?);
//! for record in fetcher.fetch_all(vec!["http://h1.crawl.test:8080/".into()]).await {
//!     println!("{} {:?} {:?}", record.url, record.status, record.error);
//! }
//! # Ok(()) }
//! ```

mod body;
pub mod breaker;
mod conn;
pub mod connect;
mod decode;
pub mod fetcher;
pub mod gai;
mod host_down;
pub mod host_resolver;
pub mod hyper_connector;
mod pool;
pub mod record;
#[cfg(feature = "reqwest")]
pub mod reqwest_dns;
pub mod response;
pub mod retry;
mod robots;
pub mod source;
pub mod tls;
pub mod ttl_cache;
pub mod warc;

pub use breaker::BreakerPolicy;
pub use decode::ACCEPT_ENCODING;
pub use fetcher::{BodyStream, CrawlSummary, Fetcher, FetcherConfig, FetcherError};
pub use host_down::HostDownStats;
pub use host_resolver::{DnsFailure, HostResolver};
pub use hyper_connector::CrawlConnector;
pub use pool::{Origin, PoolStats};
pub use record::{ErrorClass, FetchError, FetchRecord, Phases, Retried};
#[cfg(feature = "reqwest")]
pub use reqwest_dns::CrawlDnsResolve;
pub use response::{Headers, HttpVersion, Response, ResponseHead};
pub use retry::RetryPolicy;
pub use source::{IterSource, ResultSink, UrlSource, VecSink};
pub use warc::WarcWriter;
