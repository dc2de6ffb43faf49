//! crawldns as reqwest's resolver.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use crawldns::{Resolver, ResolverConfig};
//! use crawldns_fetch::CrawlDnsResolve;
//!
//! let resolver = Resolver::new(
//!     ResolverConfig::builder().nameserver("127.0.0.1:5353".parse()?).build(),
//! )?;
//! let client = reqwest::Client::builder()
//!     .dns_resolver(Arc::new(CrawlDnsResolve::new(resolver)))
//!     .build()?;
//! let body = client.get("http://h1.crawl.test:8080/").send().await?.text().await?;
//! # Ok(()) }
//! ```
//!
//! reqwest's own connector then races the addresses in crawldns's order,
//! with its fixed 300 ms fallback delay; [`crate::Fetcher`] and
//! [`crate::CrawlConnector`] use the RFC 8305 attempt delay instead.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Adapts a [`crawldns::Resolver`] to `reqwest::dns::Resolve`.
#[derive(Debug, Clone)]
pub struct CrawlDnsResolve {
    resolver: crawldns::Resolver,
}

impl CrawlDnsResolve {
    /// Wraps `resolver`.
    pub fn new(resolver: crawldns::Resolver) -> Self {
        Self { resolver }
    }
}

impl Resolve for CrawlDnsResolve {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.resolver.clone();
        Box::pin(async move {
            let found = resolver.lookup_ip(name.as_str()).await?;
            // reqwest puts the URL's port on every address.
            let addrs: Vec<SocketAddr> = found
                .addrs
                .iter()
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
