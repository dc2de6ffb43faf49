//! c-ares (vendored) through `c-ares-resolver`'s `FutureResolver`, whose
//! event loop runs on a thread of its own.

use std::net::IpAddr;

use anyhow::{anyhow, Context, Result};
use c_ares::{AddrInfoHints, AddressFamily};
use c_ares_resolver::{FutureResolver, Options};

use super::{Peer, PeerSetup};

/// c-ares configured like the other peers: one server, timeout and tries
/// set, query cache off, DNS only (no hosts file), no search domains, and
/// the same socket receive buffer as crawldns asks for.
pub struct CaresPeer {
    resolver: FutureResolver,
}

impl std::fmt::Debug for CaresPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaresPeer").finish_non_exhaustive()
    }
}

impl CaresPeer {
    /// Builds the resolver and its event-loop thread.
    pub fn new(setup: PeerSetup) -> Result<Self> {
        Self::build(setup, 0)
    }

    /// The same with c-ares's query cache on (TTLs up to an hour): W4, Herd.
    pub fn with_cache(setup: PeerSetup) -> Result<Self> {
        Self::build(setup, 3600)
    }

    fn build(setup: PeerSetup, cache_max_ttl: u32) -> Result<Self> {
        let mut options = Options::new();
        options
            .set_timeout(setup.timeout)
            .set_tries(u32::try_from(setup.attempts).context("attempts")?)
            .set_query_cache_max_ttl(cache_max_ttl)
            .set_sock_receive_buffer_size(
                u32::try_from(setup.recv_buffer).context("receive buffer size")?,
            )
            .set_ndots(1);
        options
            .set_lookups("b")
            .map_err(|e| anyhow!("c-ares set_lookups: {e}"))?;
        options
            .set_domains(&[] as &[&str])
            .map_err(|e| anyhow!("c-ares set_domains: {e}"))?;
        let resolver =
            FutureResolver::with_options(options).map_err(|e| anyhow!("c-ares init: {e}"))?;
        resolver
            .set_servers(&[setup.server.to_string()])
            .map_err(|e| anyhow!("c-ares set_servers: {e}"))?;
        Ok(Self { resolver })
    }
}

impl Peer for CaresPeer {
    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        let results = self
            .resolver
            .query_a(name)
            .await
            .map_err(|e| anyhow!("c-ares A {name}: {e}"))?;
        Ok(results.iter().map(|r| IpAddr::V4(r.ipv4())).collect())
    }

    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>> {
        let hints = AddrInfoHints {
            family: Some(AddressFamily::UNSPEC),
            ..AddrInfoHints::default()
        };
        let results = self
            .resolver
            .get_addrinfo(name, None, &hints)
            .await
            .map_err(|e| anyhow!("c-ares getaddrinfo {name}: {e}"))?;
        Ok(results
            .nodes()
            .filter_map(|node| node.socket_addr())
            .map(|addr| addr.ip())
            .collect())
    }
}

/// The c-ares library version linked in.
pub fn library_version() -> String {
    c_ares::version().0.to_string()
}
