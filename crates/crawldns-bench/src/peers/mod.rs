//! The resolvers compared, behind one small trait.
//!
//! Every peer is configured alike: one pinned nameserver, a 2 s timeout, 2
//! attempts, and no cache (cold workloads use distinct names and a fresh
//! resolver per run, so nothing could be answered from a cache anyway).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub mod cares;
pub mod crawldns;
pub mod gai;
pub mod hickory;
pub mod null;
pub mod timed;
pub mod upstream;

/// A resolver under test.
pub trait Peer: Send + Sync + 'static {
    /// The A records of `name`.
    fn lookup_a(&self, name: &str) -> impl Future<Output = Result<Vec<IpAddr>>> + Send;

    /// The A and AAAA records of `name`, as the peer's dual-stack lookup
    /// returns them.
    fn lookup_ip(&self, name: &str) -> impl Future<Output = Result<Vec<IpAddr>>> + Send;
}

/// How every peer is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSetup {
    /// The one nameserver.
    pub server: SocketAddr,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Attempts per query.
    pub attempts: usize,
    /// Receive buffer asked for each long-lived UDP socket (crawldns's and
    /// c-ares's; hickory-resolver opens a socket per query and glibc one per
    /// call, with no knob for it). Without it, a burst of answers can
    /// overflow c-ares's one socket on a busy machine.
    pub recv_buffer: usize,
}

impl PeerSetup {
    /// One server, with the timeout and attempts given and crawldns's
    /// default receive buffer.
    pub fn new(server: SocketAddr, timeout: Duration, attempts: usize) -> Self {
        Self {
            server,
            timeout,
            attempts,
            recv_buffer: ::crawldns::ResolverConfig::default().recv_buffer,
        }
    }
}

/// The peers the harness knows.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
pub enum PeerKind {
    /// crawldns, the resolver of this workspace.
    #[value(name = "crawldns")]
    Crawldns,
    /// crawldns in bulk mode: every query padded and batched with UDP GSO.
    #[value(name = "crawldns-bulk")]
    CrawldnsBulk,
    /// crawldns with batching off: one send per query.
    #[value(name = "crawldns-unbatched")]
    CrawldnsUnbatched,
    /// hickory-resolver (tokio, UDP, cache size 0).
    #[value(name = "hickory")]
    Hickory,
    /// c-ares through the `c-ares-resolver` crate's `FutureResolver`.
    #[value(name = "c-ares")]
    Cares,
    /// glibc `getaddrinfo` on tokio's blocking pool (as `tokio::net::lookup_host`).
    #[value(name = "gai-tokio")]
    GaiTokio,
    /// glibc `getaddrinfo` on a fixed pool of 32 threads.
    #[value(name = "gai-32")]
    Gai32,
    /// No resolver: answers from the name itself, to measure the harness.
    #[value(name = "null")]
    Null,
}

impl PeerKind {
    /// The peers compared in a full run, crawldns first.
    pub const COMPARED: [PeerKind; 7] = [
        PeerKind::Crawldns,
        PeerKind::CrawldnsBulk,
        PeerKind::CrawldnsUnbatched,
        PeerKind::Hickory,
        PeerKind::Cares,
        PeerKind::GaiTokio,
        PeerKind::Gai32,
    ];

    /// The name used in tables.
    pub fn label(self) -> &'static str {
        match self {
            PeerKind::Crawldns => "crawldns",
            PeerKind::CrawldnsBulk => "crawldns, bulk mode",
            PeerKind::CrawldnsUnbatched => "crawldns, batching off",
            PeerKind::Hickory => "hickory-resolver",
            PeerKind::Cares => "c-ares",
            PeerKind::GaiTokio => "getaddrinfo, tokio blocking pool",
            PeerKind::Gai32 => "getaddrinfo, 32 threads",
            PeerKind::Null => "harness floor (no resolver)",
        }
    }

    /// Whether the peer is crawldns, in any mode.
    pub fn is_crawldns(self) -> bool {
        matches!(
            self,
            PeerKind::Crawldns | PeerKind::CrawldnsBulk | PeerKind::CrawldnsUnbatched
        )
    }

    /// Whether the peer is the system resolver, which can only be pointed at
    /// a test server from inside a network namespace.
    pub fn is_system(self) -> bool {
        matches!(self, PeerKind::GaiTokio | PeerKind::Gai32)
    }
}

impl std::fmt::Display for PeerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Builds the peer of `kind` for `setup` and evaluates `$body` with it bound
/// (as an `Arc`) to `$peer`. Generic code stays monomorphic: no boxing per
/// lookup.
#[macro_export]
macro_rules! with_peer {
    ($kind:expr, $setup:expr, |$peer:ident| $body:expr) => {{
        use std::sync::Arc;
        use $crate::peers::PeerKind;
        match $kind {
            PeerKind::Crawldns | PeerKind::CrawldnsBulk | PeerKind::CrawldnsUnbatched => {
                let batching = match $kind {
                    PeerKind::CrawldnsBulk => ::crawldns::Batching::Always,
                    PeerKind::CrawldnsUnbatched => ::crawldns::Batching::Off,
                    _ => ::crawldns::Batching::default(),
                };
                let $peer = Arc::new($crate::peers::crawldns::CrawldnsPeer::new(
                    $setup, batching,
                )?);
                $body
            }
            PeerKind::Hickory => {
                let $peer = Arc::new($crate::peers::hickory::HickoryPeer::new($setup)?);
                $body
            }
            PeerKind::Cares => {
                let $peer = Arc::new($crate::peers::cares::CaresPeer::new($setup)?);
                $body
            }
            PeerKind::GaiTokio => {
                let $peer = Arc::new($crate::peers::gai::GaiTokioPeer::new($setup)?);
                $body
            }
            PeerKind::Gai32 => {
                let $peer = Arc::new($crate::peers::gai::GaiPoolPeer::new($setup, 32)?);
                $body
            }
            PeerKind::Null => {
                let $peer = Arc::new($crate::peers::null::NullPeer);
                $body
            }
        }
    }};
}
