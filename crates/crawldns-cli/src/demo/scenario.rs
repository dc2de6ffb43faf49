//! The crawl both paths run: hosts, URLs, delays and limits, as options of
//! `crawldns demo` (and, as JSON, of the namespaced child).

use std::time::Duration;

use clap::Args;
use crawldns_fetch::FetcherConfig;
use crawldns_testbed::http_farm::HttpFarm;
use serde::{Deserialize, Serialize};

/// The crawl both paths run, and the testbed it runs against.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct Scenario {
    /// Synthetic hosts h0 .. h<N-1>.crawl.test, each on its own loopback
    /// address.
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub hosts: u32,

    /// URLs per host. URLs are ordered host by host in rounds (every host's
    /// first page, then every host's second, ...), as a polite frontier
    /// hands them out.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub urls_per_host: u32,

    /// Delay before every DNS answer, in milliseconds: the round trip to a
    /// real recursive resolver.
    #[arg(long, value_name = "MS", default_value_t = 30)]
    pub dns_delay_ms: u64,

    /// A long-tailed DNS: this fraction of the hosts (the same ones every
    /// run) answered after a delay of their own between MIN and MAX ms,
    /// e.g. `0.02:1000-3000`.
    #[arg(long, value_name = "FRACTION:MIN-MAX", value_parser = slow_names)]
    pub dns_slow: Option<String>,

    /// A lossy DNS: this fraction of all queries (0 to 1) never answered.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0,
          value_parser = crate::testbed_cmd::parse_fraction)]
    pub dns_drop: f64,

    /// Delay before every HTTP response, in milliseconds: the server's own
    /// time.
    #[arg(long, value_name = "MS", default_value_t = 20)]
    pub http_delay_ms: u64,

    /// Body size of every response, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 2048)]
    pub body_size: usize,

    /// Open connections at most, all hosts together (every crawl).
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub global_connections: u64,

    /// Open connections at most per host (every crawl).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub per_host: u64,

    /// Threads of the system path's getaddrinfo pool.
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=1_024))]
    pub gai_threads: u64,

    /// The middle column: the system path with each host's addresses kept
    /// this many seconds, without single-flight (aiohttp's default,
    /// `ttl_dns_cache=10`). 0 leaves the column out.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub system_dns_cache: u64,

    /// Deadline for each URL, in milliseconds (every crawl).
    #[arg(long, value_name = "MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
}

/// Checks `--dns-slow` and keeps its text (the scenario goes to the
/// namespaced child as JSON).
fn slow_names(text: &str) -> Result<String, String> {
    crate::testbed_cmd::parse_slow(text).map(|_| text.to_owned())
}

impl Scenario {
    /// Every URL, host by host in rounds.
    pub(super) fn urls(&self, farm: &HttpFarm) -> Vec<String> {
        (0..self.urls_per_host)
            .flat_map(|page| (0..self.hosts).map(move |host| (host, page)))
            .map(|(host, page)| farm.url(host, &format!("/page{page}")))
            .collect()
    }

    /// How many URLs.
    pub(super) fn url_count(&self) -> u64 {
        u64::from(self.hosts) * u64::from(self.urls_per_host)
    }

    /// The fetcher limits every crawl uses; `prewarm` resolves the hosts
    /// before the first request (a no-op for the system path, which has
    /// no cache to fill).
    pub(super) fn fetcher_config(&self, prewarm: bool) -> FetcherConfig {
        FetcherConfig {
            global_connections: usize::try_from(self.global_connections).unwrap_or(usize::MAX),
            per_host_connections: usize::try_from(self.per_host).unwrap_or(usize::MAX),
            request_timeout: Duration::from_millis(self.timeout_ms),
            prewarm,
            ..FetcherConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_go_round_robin_over_hosts() {
        let scenario = Scenario {
            hosts: 3,
            urls_per_host: 2,
            dns_delay_ms: 0,
            http_delay_ms: 0,
            body_size: 1,
            global_connections: 1,
            per_host: 1,
            gai_threads: 1,
            system_dns_cache: 0,
            dns_slow: None,
            dns_drop: 0.0,
            timeout_ms: 1,
        };
        assert_eq!(scenario.url_count(), 6);
        let json = serde_json::to_string(&scenario).unwrap();
        let back: Scenario = serde_json::from_str(&json).unwrap();
        assert_eq!(back.hosts, 3);
    }
}
