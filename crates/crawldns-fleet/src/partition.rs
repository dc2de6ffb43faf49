//! Which partition a URL belongs to: hash(host) mod P.
//!
//! Every URL of a host lands in the same partition, so the one worker that
//! owns the partition sees all of the host's URLs: its per-host connection
//! limit, politeness and DNS cache hold for the whole fleet. The hash is
//! FNV-1a over the lower-cased host, fixed here so that enqueuers and
//! workers of different builds agree.

/// The host of `url` (lower case, no port), or `""` when it has none (such
/// a URL still gets a partition, and its worker reports it as invalid).
pub fn host_of(url: &str) -> String {
    url::Url::parse(url.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// The partition, in `0..partitions`, of a host.
pub fn partition_of_host(host: &str, partitions: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in host.bytes() {
        hash ^= u64::from(byte.to_ascii_lowercase());
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let p = u64::from(partitions.max(1));
    // The remainder is below `partitions`, which is a u32.
    u32::try_from(hash % p).unwrap_or(0)
}

/// The partition of a URL.
pub fn partition_of(url: &str, partitions: u32) -> u32 {
    partition_of_host(&host_of(url), partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_always_lands_in_one_partition() {
        let p = partition_of("http://h7.crawl.test:8080/a", 16);
        assert_eq!(partition_of("http://H7.Crawl.Test:8080/b?c", 16), p);
        assert_eq!(partition_of("https://h7.crawl.test/", 16), p);
        assert_eq!(partition_of_host("h7.crawl.test", 16), p);
        // FNV-1a is fixed: these values must never change between builds.
        assert_eq!(
            u64::from(partition_of_host("", 16)),
            0xcbf2_9ce4_8422_2325_u64 % 16
        );
        assert_eq!(
            u64::from(partition_of_host("a", 1_000_000)),
            0xaf63_dc4c_8601_ec8c_u64 % 1_000_000
        );
    }

    #[test]
    fn hosts_spread_over_partitions() {
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            counts[partition_of_host(&format!("h{i}.crawl.test"), 8) as usize] += 1;
        }
        for n in counts {
            assert!((800..1200).contains(&n), "{counts:?}");
        }
    }

    #[test]
    fn urls_without_a_host_still_have_a_partition() {
        assert_eq!(host_of("not a url"), "");
        assert_eq!(partition_of("not a url", 4), partition_of_host("", 4));
    }
}
