//! crawldns, configured like the other peers: its answer cache is off, so
//! every lookup goes to the wire (single-flight stays on; with distinct
//! names it never merges anything).

use std::net::IpAddr;

use anyhow::{Context, Result};
use crawldns::{Batching, IpStrategy, QueryType, Resolver, ResolverConfig};

use super::{Peer, PeerSetup};

/// crawldns with one nameserver, A and AAAA in parallel for `lookup_ip`.
#[derive(Debug)]
pub struct CrawldnsPeer {
    resolver: Resolver,
}

impl CrawldnsPeer {
    /// Builds the resolver, sending queries as `batching` says. Must be
    /// called inside a tokio runtime.
    pub fn new(setup: PeerSetup, batching: Batching) -> Result<Self> {
        let config = ResolverConfig::builder()
            .nameserver(setup.server)
            .timeout(setup.timeout)
            .attempts(setup.attempts)
            .recv_buffer(setup.recv_buffer)
            .ip_strategy(IpStrategy::Both)
            .ipv6_egress(Some(true))
            .cache(None)
            .batching(batching)
            .build();
        let resolver = Resolver::new(config).context("building the crawldns resolver")?;
        Ok(Self { resolver })
    }

    /// The resolver, for its metrics.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }
}

impl Peer for CrawldnsPeer {
    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        let lookup = self.resolver.lookup(name, QueryType::A).await?;
        Ok(lookup.ips.to_vec())
    }

    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>> {
        let lookup = self.resolver.lookup_ip(name).await?;
        Ok(lookup.addrs.to_vec())
    }
}
