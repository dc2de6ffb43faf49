//! The system resolver: glibc `getaddrinfo`, called from threads, as crawlers
//! built on thread-pool executors do (the call and the pool:
//! `crawldns_sys::gai`).
//!
//! glibc reads its nameservers from `/etc/resolv.conf`, so these peers only
//! run inside the harness's network namespace, where that file names the test
//! server on 127.0.0.1:53 and the only interface is loopback. The
//! constructors refuse to run anywhere else, so no query can leave the
//! machine.

use std::net::IpAddr;

use anyhow::{anyhow, Context, Result};
use crawldns_sys::gai::{self as sys, GaiPool};

use super::{Peer, PeerSetup};
use crate::names::Family;

/// Calls glibc `getaddrinfo` for `name` (`AF_INET` for [`Family::V4`],
/// `AF_UNSPEC` otherwise; `SOCK_STREAM`, as std's `lookup_host` does) and
/// returns the addresses in the order given.
pub fn getaddrinfo(name: &str, family: Family) -> Result<Vec<IpAddr>> {
    sys::getaddrinfo(name, sys_family(family)).map_err(|e| anyhow!("getaddrinfo {e}"))
}

fn sys_family(family: Family) -> sys::Family {
    match family {
        Family::V4 => sys::Family::V4,
        Family::Both => sys::Family::Any,
    }
}

/// `getaddrinfo` on tokio's blocking pool: A lookups through
/// `spawn_blocking` (as `tokio::net::lookup_host` does internally, but with
/// `AF_INET`), dual-stack lookups through `tokio::net::lookup_host` itself.
#[derive(Debug)]
pub struct GaiTokioPeer;

impl GaiTokioPeer {
    /// Checks that the system resolver points at the test server only.
    pub fn new(setup: PeerSetup) -> Result<Self> {
        crate::netns::check_isolated(setup.server)?;
        Ok(Self)
    }
}

impl Peer for GaiTokioPeer {
    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        let name = name.to_string();
        tokio::task::spawn_blocking(move || getaddrinfo(&name, Family::V4))
            .await
            .context("blocking task")?
    }

    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((name, 0))
            .await
            .with_context(|| format!("lookup_host {name}"))?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// `getaddrinfo` on a fixed pool of threads sharing one queue, like the
/// default executor of Python's asyncio (`loop.getaddrinfo`).
#[derive(Debug)]
pub struct GaiPoolPeer(GaiPool);

impl GaiPoolPeer {
    /// Starts `threads` worker threads, after checking that the system
    /// resolver points at the test server only.
    pub fn new(setup: PeerSetup, threads: usize) -> Result<Self> {
        crate::netns::check_isolated(setup.server)?;
        GaiPool::new(threads)
            .map(Self)
            .context("spawning a getaddrinfo thread")
    }

    async fn submit(&self, name: &str, family: Family) -> Result<Vec<IpAddr>> {
        self.0
            .lookup(name, sys_family(family))
            .await
            .map_err(|e| anyhow!("getaddrinfo {e}"))
    }
}

impl Peer for GaiPoolPeer {
    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        self.submit(name, Family::V4).await
    }

    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>> {
        self.submit(name, Family::Both).await
    }
}
