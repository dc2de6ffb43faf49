//! Workloads of issue 7 that the full run does not measure itself, listed
//! with the command that does, so the report never leaves them out.

/// A workload not measured yet, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The workload's name in the report.
    pub name: &'static str,
    /// What it will measure.
    pub measures: &'static str,
    /// Why it is not measured yet.
    pub status: &'static str,
}

/// The workloads waiting for other work to land.
pub const PENDING: [Pending; 4] = [
    Pending {
        name: "W4 hot cache",
        measures: "lookups over 100 cached names, one and two threads: ns per lookup",
        status: "measured by `crawldns-bench cache`: see the notes below",
    },
    Pending {
        name: "Herd",
        measures: "10,000 concurrent lookups of one cold name: queries seen by the server",
        status: "measured by `crawldns-bench cache`: see the notes below",
    },
    Pending {
        name: "Memory per cache entry",
        measures: "bytes of overhead per entry at 1,000,000 entries",
        status: "measured by `cargo run --release -p crawldns --example cache_memory`: see the notes below",
    },
    Pending {
        name: "Crawl",
        measures: "the demo's crawl (testbed HTTP farm, DNS delay): TTFB p50/p99, getaddrinfo path vs crawldns",
        status: "measured by `crawldns demo`: see the notes below",
    },
];
