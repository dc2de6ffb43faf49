//! crawldns-bench: crawldns measured side by side with the resolvers a
//! crawler would otherwise use — hickory-resolver, c-ares, and glibc
//! `getaddrinfo` on thread pools — in one run, on the same servers, with
//! every answer checked. See DESIGN.md, “Benchmarks”, and issue 7.
//!
//! - [`peers`]: the resolvers, behind the [`peers::Peer`] trait.
//! - [`workloads`]: one module per workload (W1 throughput, W2/W3 burst,
//!   resources), each a `run` function generic over the peer.
//! - [`servers`]: the testbed DNS server on its own thread, Knot, dnsperf.
//! - [`netns`]: the network namespace that points glibc at a test server.
//! - [`suite`]: jobs, rounds and plans (`full`, `smoke`).
//! - [`cache_suite`]: W4 (hot-cache hits) and Herd, with caches on.
//! - [`transport_suite`]: crawldns over UDP, TCP, DoT and DoH against
//!   hickory-resolver's stream transports (issue 17).
//! - [`report`]: medians, ratios, targets, Markdown.
//!
//! Every load is bounded in count and time, and all traffic stays on
//! loopback (the host's, or the namespace's).

pub mod bulk_suite;
pub mod cache_suite;
pub mod cli;
pub mod cli_suite;
pub mod env_info;
pub mod measure;
pub mod names;
pub mod netns;
pub mod peers;
pub mod process;
pub mod report;
pub mod servers;
pub mod suite;
pub mod sysctl;
pub mod transport_suite;
pub mod workloads;
