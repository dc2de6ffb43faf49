//! The names looked up and the answers they must get.
//!
//! Every workload asks for `h<N>.crawl.test`, whose A record is
//! [`crawldns_testbed::host_v4`]`(N)` on every server the harness runs (the
//! testbed builds it; the Knot zone is generated from the same function), and
//! whose AAAA record is the IPv4-mapped form of that address
//! ([`crawldns_testbed::AaaaAnswer::MappedV4`]). Answers are checked exactly,
//! so a peer that returns the wrong address, or an extra or missing one,
//! counts as wrong, not as a lookup done.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{anyhow, Result};

/// The name of host `n`, without the final dot (as a crawler passes it).
pub fn host(n: u32) -> String {
    format!("h{n}.crawl.test")
}

/// The A record of host `n`.
pub fn expected_v4(n: u32) -> Result<Ipv4Addr> {
    crawldns_testbed::host_v4(n).ok_or_else(|| anyhow!("host index {n} out of range"))
}

/// What a lookup asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Family {
    /// A only.
    V4,
    /// A and AAAA (`lookup_ip`).
    Both,
}

/// Whether `got` is exactly the expected answer for host `n`: its A address,
/// plus, for [`Family::Both`], the IPv4-mapped AAAA address. Order and
/// duplicates do not matter (getaddrinfo repeats addresses per socket type).
pub fn is_correct(n: u32, family: Family, got: &[IpAddr]) -> bool {
    let Some(v4) = crawldns_testbed::host_v4(n) else {
        return false;
    };
    let mut want = vec![IpAddr::V4(v4)];
    if family == Family::Both {
        want.push(IpAddr::V6(v4.to_ipv6_mapped()));
    }
    let mut got: Vec<IpAddr> = got.to_vec();
    got.sort();
    got.dedup();
    want.sort();
    got == want
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_exact_sets() {
        let v4 = IpAddr::V4(expected_v4(7).unwrap());
        let v6 = IpAddr::V6(expected_v4(7).unwrap().to_ipv6_mapped());
        assert!(is_correct(7, Family::V4, &[v4]));
        assert!(is_correct(7, Family::V4, &[v4, v4]));
        assert!(!is_correct(7, Family::V4, &[v4, v6]));
        assert!(!is_correct(8, Family::V4, &[v4]));
        assert!(is_correct(7, Family::Both, &[v6, v4]));
        assert!(!is_correct(7, Family::Both, &[v4]));
        assert!(!is_correct(7, Family::V4, &[]));
        assert_eq!(host(7), "h7.crawl.test");
    }
}
