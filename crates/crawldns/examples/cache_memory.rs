//! Memory per cache entry at 1,000,000 entries, as the resolver stores them.
//!
//! ```text
//! cargo run --release -p crawldns --example cache_memory
//! ```
//!
//! Fills a cache bounded at 1,000,000 entries with `lookup_ip` answers (one
//! IPv4 address each, names `h<N>.crawl.test`) and reports the growth of
//! the process's resident memory per entry, and how much of it is the
//! payload (name bytes and address) versus overhead.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crawldns::internals::cache::{Cache, Key, Slot, Value};
use crawldns::CacheConfig;
use tokio::time::Instant;

fn rss_bytes() -> u64 {
    crawldns_sys::process::rss_bytes().unwrap_or(0)
}

fn main() {
    const ENTRIES: u32 = 1_000_000;
    let names: Vec<String> = (0..ENTRIES).map(|i| format!("h{i}.crawl.test")).collect();
    let name_bytes: usize = names.iter().map(String::len).sum();
    let cache = Cache::new(CacheConfig {
        max_entries: ENTRIES as usize,
        ..Default::default()
    });
    let now = Instant::now();
    let before = rss_bytes();
    for (i, name) in names.iter().enumerate() {
        let ip = IpAddr::V4(Ipv4Addr::from(0x7f01_0000 + i as u32));
        cache.insert_positive(
            Key::new(name, Slot::Ip),
            Value::Ips(Arc::from([ip])),
            300,
            now,
        );
    }
    let after = rss_bytes();
    let held = cache.len();
    let per_entry = (after.saturating_sub(before)) as f64 / held as f64;
    let payload = name_bytes as f64 / f64::from(ENTRIES) + std::mem::size_of::<IpAddr>() as f64;
    println!("entries held:          {held} (bound {ENTRIES})");
    println!(
        "resident growth:       {:.1} MiB",
        (after - before) as f64 / 1048576.0
    );
    println!("bytes per entry:       {per_entry:.0}");
    println!(
        "payload per entry:     {payload:.0} (name {:.1} + one IpAddr {})",
        name_bytes as f64 / f64::from(ENTRIES),
        std::mem::size_of::<IpAddr>()
    );
    println!("overhead per entry:    {:.0}", per_entry - payload);
    println!(
        "size_of Entry:         {} bytes",
        std::mem::size_of::<crawldns::internals::cache::Entry>()
    );
    std::hint::black_box(&cache);
}
