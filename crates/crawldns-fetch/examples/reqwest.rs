//! crawldns as reqwest's resolver, runnable offline: it starts the testbed
//! (a DNS server and an HTTP farm on loopback) and fetches from it.
//!
//! ```text
//! cargo run -p crawldns-fetch --example reqwest
//! ```

use std::sync::Arc;
use std::time::Duration;

use crawldns::{Resolver, ResolverConfig};
use crawldns_fetch::CrawlDnsResolve;
use crawldns_testbed::http_farm::{HttpFarm, HttpFarmConfig};
use crawldns_testbed::{DnsServer, DnsServerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dns = DnsServer::start(DnsServerConfig::default()).await?;
    let farm = HttpFarm::start(HttpFarmConfig {
        hosts: 3,
        ..Default::default()
    })
    .await?;

    // The integration itself: a resolver with a pinned nameserver, handed
    // to reqwest.
    let resolver = Resolver::new(
        ResolverConfig::builder()
            .nameserver(dns.addr())
            .timeout(Duration::from_millis(500))
            .build(),
    )?;
    let client = reqwest::Client::builder()
        .dns_resolver(Arc::new(CrawlDnsResolve::new(resolver.clone())))
        .build()?;

    for host in 0..3 {
        let url = farm.url(host, "/");
        let response = client.get(&url).send().await?;
        let status = response.status();
        let bytes = response.bytes().await?.len();
        println!("{url} -> {status}, {bytes} bytes");
    }
    let m = resolver.metrics();
    println!(
        "dns: {} queries sent, {} cache hits",
        m.udp_sent, m.cache_hits
    );
    Ok(())
}
