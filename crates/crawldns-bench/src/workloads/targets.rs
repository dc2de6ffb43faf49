//! The targets of issue 7, as data beside the workloads they judge. The
//! report's verdicts read them (the wording of each target is built from
//! these numbers, so the text and the check cannot disagree).

use crate::peers::PeerKind;

/// W1 cold throughput.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct W1Targets {
    /// Client CPU per lookup at most this many µs.
    pub max_cpu_us: f64,
    /// Lookups per client-CPU-second at least this many times each peer's.
    pub cpu_factor_over: [(PeerKind, f64); 2],
    /// Wall throughput at least this fraction of the server's dnsperf
    /// ceiling.
    pub min_ceiling_fraction: f64,
}

/// What W1 must show (judged for the default and the bulk mode).
pub const W1: W1Targets = W1Targets {
    max_cpu_us: 10.0,
    cpu_factor_over: [(PeerKind::Cares, 3.0), (PeerKind::Hickory, 5.0)],
    min_ceiling_fraction: 0.8,
};

/// W2 and W3 bursts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstTargets {
    /// p99 at most this many ms above the server's delay.
    pub max_p99_over_delay_ms: f64,
    /// p99 at most this fraction of c-ares's.
    pub max_p99_vs_cares: f64,
    /// p99 at least this many times better than getaddrinfo on 32 threads.
    pub min_factor_over_gai: f64,
    /// W3's p99 at most this many ms above W2's.
    pub max_w3_over_w2_ms: f64,
}

/// What W2 and W3 must show.
pub const BURST: BurstTargets = BurstTargets {
    max_p99_over_delay_ms: 10.0,
    max_p99_vs_cares: 0.7,
    min_factor_over_gai: 10.0,
    max_w3_over_w2_ms: 1.0,
};

/// At most this many descriptors held by the resolver with the whole Fds
/// burst in flight.
pub const MAX_RESOLVER_FDS: f64 = 64.0;

/// Targets of workloads measured by other commands (see
/// [`PENDING`](super::pending::PENDING), in the same order): listed, judged
/// there.
pub const ELSEWHERE: [&str; 4] = [
    "W4: a hit under 100 ns and ≥ 5× cheaper than hickory-resolver's",
    "Herd: 1 query per record type",
    "Cache: ≤ 150 bytes of overhead per entry",
    "Crawl: TTFB p50 and p99 ≥ 2× and 3× better than the getaddrinfo path",
];

/// Stream transports (issue 17): client CPU per lookup, as ratios between
/// rows of the transport benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamTargets {
    /// crawldns DoT at most this many times crawldns UDP.
    pub max_dot_over_udp: f64,
    /// hickory-resolver DoT at least this many times crawldns DoT.
    pub min_hickory_dot_over_dot: f64,
    /// crawldns DoH at most this many times crawldns DoT.
    pub max_doh_over_dot: f64,
}

/// What the stream transports must show, in W1 and W2 alike.
pub const STREAMS: StreamTargets = StreamTargets {
    max_dot_over_udp: 2.0,
    min_hickory_dot_over_dot: 3.0,
    max_doh_over_dot: 1.5,
};
