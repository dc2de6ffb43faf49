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

/// How an answer compares with the one host `n` must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Exactly the expected addresses.
    Correct,
    /// Some of the expected addresses and nothing else: one family is
    /// missing (c-ares returns this by design when the A answer came and the
    /// AAAA datagram was lost).
    Partial,
    /// Anything else: a foreign address, or nothing.
    Wrong,
}

/// Judges `got` against host `n`'s answer: its A address, plus, for
/// [`Family::Both`], the IPv4-mapped AAAA address. Order and duplicates do
/// not matter (getaddrinfo repeats addresses per socket type).
pub fn judge(n: u32, family: Family, got: &[IpAddr]) -> Verdict {
    let Some(v4) = crawldns_testbed::host_v4(n) else {
        return Verdict::Wrong;
    };
    let mut want = vec![IpAddr::V4(v4)];
    if family == Family::Both {
        want.push(IpAddr::V6(v4.to_ipv6_mapped()));
    }
    let mut got: Vec<IpAddr> = got.to_vec();
    got.sort();
    got.dedup();
    want.sort();
    if got == want {
        Verdict::Correct
    } else if !got.is_empty() && got.iter().all(|ip| want.contains(ip)) {
        Verdict::Partial
    } else {
        Verdict::Wrong
    }
}

/// Whether `got` is exactly the expected answer for host `n`.
pub fn is_correct(n: u32, family: Family, got: &[IpAddr]) -> bool {
    judge(n, family, got) == Verdict::Correct
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

    #[test]
    fn a_missing_family_is_partial_and_a_foreign_address_wrong() {
        let v4 = IpAddr::V4(expected_v4(7).unwrap());
        let v6 = IpAddr::V6(expected_v4(7).unwrap().to_ipv6_mapped());
        let other = IpAddr::V4(expected_v4(8).unwrap());
        assert_eq!(judge(7, Family::Both, &[v4]), Verdict::Partial);
        assert_eq!(judge(7, Family::Both, &[v6, v6]), Verdict::Partial);
        assert_eq!(judge(7, Family::Both, &[v4, other]), Verdict::Wrong);
        assert_eq!(judge(7, Family::Both, &[]), Verdict::Wrong);
        assert_eq!(judge(7, Family::V4, &[v6]), Verdict::Wrong);
        assert_eq!(judge(7, Family::Both, &[v4, v6]), Verdict::Correct);
    }
}
