//! hickory-resolver: tokio runtime, UDP to one nameserver, cache size 0.

use std::net::IpAddr;

use anyhow::{Context, Result};
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

use super::{Peer, PeerSetup};

/// hickory-resolver configured like the other peers.
pub struct HickoryPeer {
    resolver: TokioResolver,
}

impl std::fmt::Debug for HickoryPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HickoryPeer").finish_non_exhaustive()
    }
}

impl HickoryPeer {
    /// Builds the resolver. Must be called inside a tokio runtime.
    pub fn new(setup: PeerSetup) -> Result<Self> {
        Self::with_cache(setup, 0)
    }

    /// The same with a cache of `cache_size` entries (W4, Herd).
    pub fn with_cache(setup: PeerSetup, cache_size: u64) -> Result<Self> {
        let mut server = NameServerConfig::udp(setup.server.ip());
        for connection in &mut server.connections {
            connection.port = setup.server.port();
        }
        let config = ResolverConfig::from_name_servers(vec![server]);
        let mut options = ResolverOpts::default();
        options.timeout = setup.timeout;
        options.attempts = setup.attempts;
        options.cache_size = cache_size;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        options.use_hosts_file = ResolveHosts::Never;
        options.num_concurrent_reqs = 1;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .context("building the hickory resolver")?;
        Ok(Self { resolver })
    }
}

impl Peer for HickoryPeer {
    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        let lookup = self.resolver.lookup(name, RecordType::A).await?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect())
    }

    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>> {
        let lookup = self.resolver.lookup_ip(name).await?;
        Ok(lookup.iter().collect())
    }
}
