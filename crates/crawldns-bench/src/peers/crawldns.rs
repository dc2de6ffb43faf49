//! crawldns, configured like the other peers: its answer cache is off, so
//! every lookup goes to the wire (single-flight stays on; with distinct
//! names it never merges anything).

use std::net::IpAddr;

use anyhow::{Context, Result};
use crawldns::{
    Batching, IpStrategy, NameServer, QueryType, Resolver, ResolverConfig, ResolverConfigBuilder,
};

use super::upstream::Upstream;
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
        Self::build(
            configured(setup)
                .nameserver(setup.server)
                .batching(batching)
                .build(),
        )
    }

    /// Builds the resolver with one nameserver reached over `upstream`'s
    /// transport (its CA trusted), the default batching; `setup.server` is
    /// not used. Must be called inside a tokio runtime.
    pub fn over(setup: PeerSetup, upstream: &Upstream) -> Result<Self> {
        let server = NameServer {
            addr: upstream.addr,
            protocol: upstream.protocol,
            tls_name: Some(upstream.tls_name.clone()),
            path: Some(upstream.doh_path.clone()),
        };
        let encrypted = upstream.protocol.is_encrypted();
        Self::build(
            configured(setup)
                .push_nameserver(server)
                .ca_file(encrypted.then(|| upstream.ca_file.clone()))
                .build(),
        )
    }

    fn build(config: ResolverConfig) -> Result<Self> {
        let resolver = Resolver::new(config).context("building the crawldns resolver")?;
        Ok(Self { resolver })
    }

    /// The resolver, for its metrics.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }
}

/// The settings every crawldns peer shares, from `setup` (no nameserver).
fn configured(setup: PeerSetup) -> ResolverConfigBuilder {
    ResolverConfig::builder()
        .timeout(setup.timeout)
        .attempts(setup.attempts)
        .recv_buffer(setup.recv_buffer)
        .ip_strategy(IpStrategy::Both)
        .ipv6_egress(Some(true))
        .cache(None)
}

impl Peer for CrawldnsPeer {
    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        let lookup = self.resolver.lookup(name, QueryType::A).await?;
        Ok(lookup.ips().to_vec())
    }

    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>> {
        let lookup = self.resolver.lookup_ip(name).await?;
        Ok(lookup.addrs.to_vec())
    }
}
