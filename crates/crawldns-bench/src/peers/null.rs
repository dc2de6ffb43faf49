//! A peer that resolves nothing: it answers from the name itself. Running a
//! workload through it measures what the harness costs per lookup.

use std::net::IpAddr;

use anyhow::{anyhow, Result};

use super::Peer;

/// Answers `h<N>.crawl.test` with its expected addresses, without I/O.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullPeer;

fn index(name: &str) -> Result<u32> {
    name.strip_prefix('h')
        .and_then(|rest| rest.split('.').next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("not a testbed host name: {name}"))
}

impl Peer for NullPeer {
    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        let v4 = crate::names::expected_v4(index(name)?)?;
        Ok(vec![IpAddr::V4(v4)])
    }

    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>> {
        let v4 = crate::names::expected_v4(index(name)?)?;
        Ok(vec![IpAddr::V4(v4), IpAddr::V6(v4.to_ipv6_mapped())])
    }
}
