//! The system path: glibc `getaddrinfo` on a fixed pool of blocking threads
//! (as Python's asyncio and most async stacks do by default), and tokio's
//! `lookup_host` (its blocking pool). Here to be compared with, not used.
//! The FFI call and the pool live in `crawldns_sys::gai`; this module maps
//! their failures to the resolver's error kinds.

use std::net::IpAddr;
use std::sync::Arc;

use crawldns::ErrorKind;
use crawldns_sys::gai::{self as sys, Family, GaiError, GaiFailure};

use crate::host_resolver::{BoxFuture, DnsFailure, HostResolver};

/// `getaddrinfo` on `threads` dedicated threads.
#[derive(Debug)]
pub struct GaiPool(sys::GaiPool);

impl GaiPool {
    /// Starts `threads` worker threads (32 is the default executor size of
    /// the Python async stacks crawlers use).
    pub fn new(threads: usize) -> std::io::Result<Self> {
        sys::GaiPool::new(threads).map(Self)
    }
}

impl HostResolver for GaiPool {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Arc<[IpAddr]>, DnsFailure>> {
        Box::pin(async move {
            self.0
                .lookup(host, Family::Any)
                .await
                .map(unique)
                .map_err(failure)
        })
    }

    fn name(&self) -> &'static str {
        "getaddrinfo"
    }
}

/// tokio's `lookup_host`: `getaddrinfo` on tokio's blocking pool.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioLookupHost;

impl HostResolver for TokioLookupHost {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Arc<[IpAddr]>, DnsFailure>> {
        Box::pin(async move {
            match tokio::net::lookup_host((host, 0)).await {
                Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect::<Vec<_>>().into()),
                Err(err) => Err(DnsFailure {
                    kind: ErrorKind::NxDomain,
                    message: err.to_string(),
                }),
            }
        })
    }

    fn name(&self) -> &'static str {
        "tokio-lookup_host"
    }
}

/// One blocking `getaddrinfo(host, NULL, {AF_UNSPEC, SOCK_STREAM})` call;
/// addresses in glibc's order, each once.
pub fn getaddrinfo(host: &str) -> Result<Arc<[IpAddr]>, DnsFailure> {
    sys::getaddrinfo(host, Family::Any)
        .map(unique)
        .map_err(failure)
}

fn unique(addrs: Vec<IpAddr>) -> Arc<[IpAddr]> {
    let mut unique: Vec<IpAddr> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !unique.contains(&addr) {
            unique.push(addr);
        }
    }
    unique.into()
}

fn failure(err: GaiError) -> DnsFailure {
    let kind = match err.failure {
        GaiFailure::InvalidName => ErrorKind::InvalidName,
        GaiFailure::NoName => ErrorKind::NxDomain,
        GaiFailure::NoData => ErrorKind::NoData,
        GaiFailure::Again => ErrorKind::Timeout,
        GaiFailure::Fail => ErrorKind::ServFail,
        GaiFailure::Memory | GaiFailure::PoolStopped => ErrorKind::Resource,
        GaiFailure::System => ErrorKind::Io,
        GaiFailure::Other(_) => ErrorKind::Malformed,
    };
    DnsFailure {
        kind,
        message: err.message,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[tokio::test]
    async fn resolves_literals_and_localhost_through_the_pool() {
        let pool = GaiPool::new(2).unwrap();
        let got = pool.resolve("127.0.0.1").await.unwrap();
        assert_eq!(&*got, &[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let local = pool.resolve("localhost").await.unwrap();
        assert!(
            local.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{local:?}"
        );
        let mut once = local.to_vec();
        once.sort();
        once.dedup();
        assert_eq!(once.len(), local.len(), "{local:?}");
        let err = pool.resolve("bad\0name").await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidName);
    }
}
