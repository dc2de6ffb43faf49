//! The cache workloads: W4 (hot-cache hit cost, one and two threads) and
//! Herd (10,000 concurrent lookups of one cold name: queries on the wire),
//! for crawldns, hickory-resolver and c-ares with their caches on.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use crawldns_testbed::{host_v4, Delay, DnsServer, DnsServerConfig, Transport, ZoneConfig};
use hickory_resolver::proto::rr::RecordType;

use crate::measure::upper_median;
use crate::peers::cares::CaresPeer;
use crate::peers::hickory::HickoryPeer;
use crate::peers::{Peer, PeerSetup};

/// Names kept hot in W4.
const HOT_NAMES: u32 = 100;
/// Concurrent lookups in the herd.
const HERD: usize = 10_000;

/// A peer with its cache on, behind one type.
#[allow(clippy::large_enum_variant)] // a handful live for a benchmark run
enum Cached {
    Crawldns(crawldns::Resolver),
    /// crawldns through `lookup_ip` (IPv4 only here): the call a crawler
    /// makes, whose hit returns the cached `Arc` without allocating.
    CrawldnsIp(crawldns::Resolver),
    Hickory(HickoryPeer),
    Cares(CaresPeer),
}

impl Cached {
    fn name(&self) -> &'static str {
        match self {
            Cached::Crawldns(_) => "crawldns (`lookup`, A)",
            Cached::CrawldnsIp(_) => "crawldns (`lookup_ip`, IPv4 only)",
            Cached::Hickory(_) => "hickory-resolver",
            Cached::Cares(_) => "c-ares",
        }
    }

    /// One timed hit: the answer is looked at but not copied out (for the
    /// peers whose API returns owned data, it is what their API returns).
    async fn hit(&self, name: &str) -> Result<usize> {
        match self {
            Cached::Crawldns(r) => Ok(r.lookup(name, crawldns::QueryType::A).await?.ips().len()),
            Cached::CrawldnsIp(r) => Ok(r.lookup_ip(name).await?.addrs.len()),
            other => Ok(other.lookup_a(name).await?.len()),
        }
    }

    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        match self {
            Cached::Crawldns(r) => Ok(r.lookup(name, crawldns::QueryType::A).await?.ips().to_vec()),
            Cached::CrawldnsIp(r) => Ok(r.lookup_ip(name).await?.addrs.to_vec()),
            Cached::Hickory(p) => p.lookup_a(name).await,
            Cached::Cares(p) => p.lookup_a(name).await,
        }
    }
}

fn build(kind: usize, server: SocketAddr) -> Result<Cached> {
    let setup = PeerSetup::new(server, Duration::from_secs(2), 2);
    Ok(match kind {
        0 => Cached::Crawldns(
            crawldns::Resolver::new(
                crawldns::ResolverConfig::builder()
                    .nameserver(server)
                    .timeout(setup.timeout)
                    .attempts(setup.attempts)
                    .build(),
            )
            .context("crawldns")?,
        ),
        1 => Cached::CrawldnsIp(
            crawldns::Resolver::new(
                crawldns::ResolverConfig::builder()
                    .nameserver(server)
                    .timeout(setup.timeout)
                    .attempts(setup.attempts)
                    .ip_strategy(crawldns::IpStrategy::V4Only)
                    .build(),
            )
            .context("crawldns")?,
        ),
        2 => Cached::Hickory(HickoryPeer::with_cache(setup, 4096)?),
        _ => Cached::Cares(CaresPeer::with_cache(setup)?),
    })
}

const PEERS: usize = 4;

/// A peer of the cache suite, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CachedPeer {
    /// crawldns through `lookup` (A).
    Crawldns,
    /// crawldns through `lookup_ip` (IPv4 only).
    CrawldnsIp,
    /// hickory-resolver with its cache.
    Hickory,
    /// c-ares with its cache.
    Cares,
}

impl CachedPeer {
    const ALL: [Self; PEERS] = [Self::Crawldns, Self::CrawldnsIp, Self::Hickory, Self::Cares];

    fn kind(self) -> usize {
        self as usize
    }
}

/// What the cache suite runs.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// Rounds (medians are reported).
    pub rounds: usize,
    /// Timed lookups per thread (c-ares does a tenth of them).
    pub per_thread: u32,
    /// Skip Herd.
    pub w4_only: bool,
    /// Peers to measure; empty means all.
    pub peers: Vec<CachedPeer>,
}

fn check(name_index: u32, got: &[IpAddr]) -> Result<()> {
    let expected = IpAddr::V4(host_v4(name_index).ok_or_else(|| anyhow!("no host {name_index}"))?);
    if got == [expected] {
        Ok(())
    } else {
        Err(anyhow!("h{name_index}: expected {expected}, got {got:?}"))
    }
}

/// ns per hit for one peer: `threads` threads each doing `per_thread`
/// lookups over the hot names, measured as wall time per lookup per thread.
fn w4(
    peer: &Arc<Cached>,
    names: &Arc<Vec<String>>,
    threads: usize,
    per_thread: u32,
) -> Result<f64> {
    let gate = Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let peer = peer.clone();
            let names = names.clone();
            let gate = gate.clone();
            std::thread::spawn(move || -> Result<Duration> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    // Check every hot answer once, then time the hits.
                    for (i, name) in names.iter().enumerate() {
                        check(i as u32, &peer.lookup_a(name).await?)?;
                    }
                    gate.wait();
                    let started = Instant::now();
                    for i in 0..per_thread {
                        let name = &names[((i as usize) + t * 37) % names.len()];
                        std::hint::black_box(peer.hit(name).await?);
                    }
                    Ok(started.elapsed())
                })
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    for handle in handles {
        let took = handle.join().map_err(|_| anyhow!("W4 thread panicked"))??;
        worst = worst.max(took);
    }
    Ok(worst.as_nanos() as f64 / f64::from(per_thread))
}

/// Runs W4 and Herd for every peer; returns Markdown.
pub fn run(rounds: usize, per_thread: u32) -> Result<String> {
    run_with(&CacheOptions {
        rounds,
        per_thread,
        w4_only: false,
        peers: Vec::new(),
    })
}

/// Runs W4 and (unless `w4_only`) Herd for the chosen peers; returns
/// Markdown.
pub fn run_with(options: &CacheOptions) -> Result<String> {
    let CacheOptions {
        rounds, per_thread, ..
    } = *options;
    let peers: Vec<usize> = if options.peers.is_empty() {
        CachedPeer::ALL.iter().map(|p| p.kind()).collect()
    } else {
        options.peers.iter().map(|p| p.kind()).collect()
    };
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let hot = server_rt.block_on(DnsServer::start(DnsServerConfig::default()))?;
    let names: Arc<Vec<String>> =
        Arc::new((0..HOT_NAMES).map(|i| format!("h{i}.crawl.test")).collect());
    let mut out = String::new();

    // W4: median over rounds of ns per hit, 1 and 2 threads.
    let mut w4_rows = Vec::new();
    for &kind in &peers {
        let mut one = Vec::new();
        let mut two = Vec::new();
        let mut label = "";
        for _ in 0..rounds.max(1) {
            // Each peer is built inside a runtime that lives as long as it.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let peer = Arc::new(rt.block_on(async { build(kind, hot.addr()) })?);
            label = peer.name();
            // c-ares answers hits on its own event thread: fewer lookups.
            let n = if kind == 3 {
                per_thread / 10
            } else {
                per_thread
            };
            one.push(w4(&peer, &names, 1, n)?);
            two.push(w4(&peer, &names, 2, n)?);
            drop(peer);
            drop(rt);
        }
        w4_rows.push((
            label,
            upper_median(one).unwrap_or(f64::NAN),
            upper_median(two).unwrap_or(f64::NAN),
        ));
    }
    let crawldns_one = w4_rows[0].1;
    out.push_str("### W4 hot cache\n\n");
    out.push_str(&format!(
        "{HOT_NAMES} names cached, then lookups (A) cycling over them; wall time per lookup per thread, upper median of {rounds} rounds. \
         Every hot answer is checked once per thread before timing.\n\n"
    ));
    out.push_str("| peer | 1 thread: ns per hit | 2 threads: ns per hit | 1 thread: peer ÷ crawldns |\n| --- | ---: | ---: | ---: |\n");
    for (label, one, two) in &w4_rows {
        out.push_str(&format!(
            "| {label} | {one:.0} | {two:.0} | {:.1}× |\n",
            one / crawldns_one
        ));
    }

    if options.w4_only {
        return Ok(out);
    }

    // Herd: one cold name per peer, 10,000 lookups at once, 200 ms delay.
    let slow = server_rt.block_on(DnsServer::start(DnsServerConfig {
        zone: ZoneConfig::default(),
        delay: Delay::uniform(Duration::from_millis(200)),
        ..Default::default()
    }))?;
    out.push_str("\n### Herd\n\n");
    out.push_str(&format!(
        "{HERD} concurrent lookups (A) of one cold name, released together behind a barrier; server delay 200 ms. \
         Queries counted by the test server for that name.\n\n"
    ));
    out.push_str(
        "| peer | lookups | correct | queries on the wire |\n| --- | ---: | ---: | ---: |\n",
    );
    for &kind in &peers {
        let index = 900 + kind as u32;
        let name = format!("h{index}.crawl.test");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let peer = Arc::new(rt.block_on(async { build(kind, slow.addr()) })?);
        let correct = rt.block_on(async {
            let gate = Arc::new(tokio::sync::Barrier::new(HERD));
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..HERD {
                let peer = peer.clone();
                let gate = gate.clone();
                let name = name.clone();
                tasks.spawn(async move {
                    gate.wait().await;
                    peer.lookup_a(&name)
                        .await
                        .ok()
                        .is_some_and(|got| check(index, &got).is_ok())
                });
            }
            let mut correct = 0usize;
            while let Some(joined) = tasks.join_next().await {
                correct += usize::from(joined.unwrap_or(false));
            }
            correct
        });
        let queries = slow
            .counters()
            .queries(&name, RecordType::A, Transport::Udp)
            + slow
                .counters()
                .queries(&name, RecordType::A, Transport::Tcp);
        out.push_str(&format!(
            "| {} | {HERD} | {correct} | {queries} |\n",
            peer.name()
        ));
        drop(peer);
        drop(rt);
    }
    Ok(out)
}
