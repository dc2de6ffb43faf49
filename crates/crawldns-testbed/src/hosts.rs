//! The synthetic host namespace: `h<N>.crawl.test` and its loopback addresses.
//!
//! Host `N` owns a distinct IPv4 address in `127.1.0.0 – 127.254.255.254`
//! (never an address ending in `.0` or `.255`, and never `127.0.0.0/16`, where
//! other local services live), so the DNS server and the HTTP farm agree on
//! where every host is without sharing any state.

use std::net::Ipv4Addr;

/// The zone every synthetic name lives in.
pub const ZONE: &str = "crawl.test.";

/// Last octets 1..=254 per /24.
const PER_24: u32 = 254;
/// How many hosts can be given a distinct address.
pub const MAX_HOSTS: u32 = PER_24 * 256 * 254;

/// The IPv4 loopback address of host `n`, or `None` when `n >= MAX_HOSTS`.
pub fn host_v4(n: u32) -> Option<Ipv4Addr> {
    if n >= MAX_HOSTS {
        return None;
    }
    let last = (n % PER_24) + 1;
    let rest = n / PER_24;
    let third = rest % 256;
    let second = rest / 256 + 1;
    Some(Ipv4Addr::new(127, second as u8, third as u8, last as u8))
}

/// The inverse of [`host_v4`].
pub fn host_index(addr: Ipv4Addr) -> Option<u32> {
    let [a, b, c, d] = addr.octets();
    if a != 127 || b == 0 || b == 255 || d == 0 || d == 255 {
        return None;
    }
    Some((u32::from(b) - 1) * 256 * PER_24 + u32::from(c) * PER_24 + u32::from(d) - 1)
}

/// The fully qualified name of host `n`: `h<n>.crawl.test.`.
pub fn host_name(n: u32) -> String {
    format!("h{n}.{ZONE}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_loopback_and_invertible() {
        let mut seen = std::collections::HashSet::new();
        for n in (0..200_000).chain(MAX_HOSTS - 1000..MAX_HOSTS) {
            let ip = host_v4(n).unwrap();
            assert!(ip.is_loopback());
            let o = ip.octets();
            assert!(o[3] != 0 && o[3] != 255 && o[1] != 0, "{ip}");
            assert_eq!(host_index(ip), Some(n));
            assert!(seen.insert(ip));
        }
        assert_eq!(host_v4(0), Some(Ipv4Addr::new(127, 1, 0, 1)));
        assert_eq!(host_v4(254), Some(Ipv4Addr::new(127, 1, 1, 1)));
        assert_eq!(host_v4(MAX_HOSTS), None);
        assert_eq!(host_index(Ipv4Addr::new(127, 0, 0, 1)), None);
    }
}
