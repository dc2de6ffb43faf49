//! Resolves names against a given nameserver.
//!
//! ```text
//! cargo run -p crawldns --example resolve -- 127.0.0.1:5353 h1.crawl.test c2.crawl.test nope.crawl.test
//! ```

use std::time::Duration;

use crawldns::{Resolver, ResolverConfig};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(server) = args.next().and_then(|s| s.parse().ok()) else {
        eprintln!("usage: resolve NAMESERVER_IP:PORT NAME...");
        std::process::exit(2);
    };
    let config = ResolverConfig::builder()
        .nameserver(server)
        .timeout(Duration::from_millis(500))
        .build();
    let resolver = match Resolver::new(config) {
        Ok(resolver) => resolver,
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(2);
        }
    };
    for name in args {
        match resolver.lookup_ip(&name).await {
            Ok(found) => println!("{name}: {:?} (ttl {} s)", found.addrs, found.ttl),
            Err(err) => println!("{name}: error {}: {err}", err.kind()),
        }
    }
}
