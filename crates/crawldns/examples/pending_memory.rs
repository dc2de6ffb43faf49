//! Memory per pending name (issue 18, item 3): N distinct lookups (default
//! 100,000; `ip` as the second argument for `lookup_ip`) against a UDP
//! socket on loopback that never answers, each in its own task as a
//! crawler would run them, and the growth of RSS once all are waiting.
//! `max_pending` is raised to N; `max_in_flight` keeps its default
//! (10,000), so that many are on the wire and the rest wait for a slot,
//! as they would in a crawler with more names pending than that.
//!
//! `bulk` instead pushes them into one [`crawldns::Bulk`] (no task each).
//!
//! `cargo run --release -p crawldns --example pending_memory -- 100000 [ip|bulk]`
fn rss() -> u64 {
    crawldns_sys::process::rss_bytes().unwrap_or(0)
}
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let mode = std::env::args().nth(2).unwrap_or_default();
    let ip = mode == "ip";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = crawldns::Resolver::new(
            crawldns::ResolverConfig::builder()
                .nameserver(sink.local_addr().unwrap())
                .timeout(std::time::Duration::from_secs(60))
                .ip_strategy(crawldns::IpStrategy::V4Only)
                .max_pending(n.max(crawldns::ResolverConfig::default().max_pending))
                .build(),
        )
        .unwrap();
        let f = r.lookup("a.test", crawldns::QueryType::A);
        println!("lookup future: {} bytes", std::mem::size_of_val(&f));
        drop(f);
        let g = r.lookup_ip("a.test");
        println!("lookup_ip future: {} bytes", std::mem::size_of_val(&g));
        drop(g);
        if mode == "bulk" {
            let mut bulk = r.bulk();
            let names: Vec<String> = (0..n).map(|i| format!("h{i}.crawl.test")).collect();
            let before = rss();
            for (i, name) in names.iter().enumerate() {
                bulk.push(i as u64, name, crawldns::QueryType::A);
            }
            // Let the queries leave (bounded: 1 s of the 60 s timeout).
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), bulk.next()).await;
            assert_eq!(bulk.len(), n, "a lookup ended early");
            let after = rss();
            println!(
                "{n} pending (bulk): +{:.1} MiB, {:.0} bytes per name",
                (after - before) as f64 / 1048576.0,
                (after - before) as f64 / n as f64
            );
            std::process::exit(0);
        }
        let before = rss();
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let r = r.clone();
            let name = format!("h{i}.crawl.test");
            // One async block per call, so that a task's size is that
            // call's future and not the larger of the two.
            tasks.push(if ip {
                tokio::spawn(async move { r.lookup_ip(&name).await.is_ok() })
            } else {
                tokio::spawn(async move { r.lookup(&name, crawldns::QueryType::A).await.is_ok() })
            });
        }
        // Let every task start and park (bounded: 1 s of the 60 s timeout).
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            tasks.iter().all(|t| !t.is_finished()),
            "a lookup ended early"
        );
        let after = rss();
        println!(
            "{n} pending ({}, {} on the wire): +{:.1} MiB, {:.0} bytes per name",
            if ip { "lookup_ip" } else { "lookup" },
            n.min(r.config().max_in_flight),
            (after - before) as f64 / 1048576.0,
            (after - before) as f64 / n as f64
        );
        std::process::exit(0);
    });
}
