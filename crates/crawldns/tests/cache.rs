//! Cache, single-flight and pre-warm against the testbed, with the server's
//! own counters as the witness of what went on the wire.
//!
//! TTL tests use tokio's paused clock: lookups run with the clock going
//! (real sockets), then the clock is paused, moved forward, and resumed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crawldns::{
    CacheClock, CacheConfig, ErrorKind, IpStrategy, Lookup, PrewarmOptions, QueryType, Resolver,
    ResolverConfig,
};
use crawldns_testbed::{
    host_v4, Delay, DnsServer, DnsServerConfig, Faults, RcodeFault, ZoneConfig,
};
use hickory_proto::rr::RecordType;

async fn testbed(zone: ZoneConfig, delay: Duration) -> DnsServer {
    DnsServer::start(DnsServerConfig {
        zone,
        delay: Delay::uniform(delay),
        ..Default::default()
    })
    .await
    .expect("testbed starts")
}

/// A resolver whose cache follows tokio's clock, so tests can pause it.
fn resolver_with(server: &DnsServer, mut cache: CacheConfig) -> Resolver {
    cache.clock = CacheClock::Tokio;
    Resolver::new(
        ResolverConfig::builder()
            .nameserver(server.addr())
            .ipv6_egress(Some(true))
            .timeout(Duration::from_millis(500))
            .cache(Some(cache))
            .build(),
    )
    .unwrap()
}

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(host_v4(n).unwrap())
}

/// Moves tokio's clock forward by `by` while no query is in flight.
async fn skip(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// Waits until `done` holds (checked every 5 ms), for what happens in the
/// background (a refresh, a query reaching the server); fails the test
/// after 10 s of real time.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn queries(s: &DnsServer, name: &str, rtype: RecordType) -> u64 {
    s.counters().queries_any(name, rtype)
}

/// Starts `n` lookups that all begin at the same moment (a barrier).
async fn herd<T, F>(n: usize, lookup: impl Fn() -> F) -> Vec<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let gate = Arc::new(tokio::sync::Barrier::new(n + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let gate = gate.clone();
        let work = lookup();
        tasks.spawn(async move {
            gate.wait().await;
            work.await
        });
    }
    gate.wait().await;
    let mut out = Vec::with_capacity(n);
    while let Some(joined) = tasks.join_next().await {
        out.push(joined.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_of_ten_thousand_is_one_query_per_type() {
    let s = testbed(ZoneConfig::default(), Duration::from_millis(500)).await;
    let r = Resolver::new(
        ResolverConfig::builder()
            .nameserver(s.addr())
            .ipv6_egress(Some(true))
            // Wait for AAAA however late it is relative to A.
            .resolution_delay(Duration::from_secs(30))
            .build(),
    )
    .unwrap();
    let answers = herd(10_000, || {
        let r = r.clone();
        async move { r.lookup_ip("h7.crawl.test").await }
    })
    .await;
    let expected = [IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), v4(7)];
    assert_eq!(answers.len(), 10_000);
    for answer in answers {
        assert_eq!(&*answer.unwrap().addrs, &expected);
    }
    // Exactly one query per type, however the herd was scheduled.
    assert_eq!(queries(&s, "h7.crawl.test", RecordType::A), 1);
    assert_eq!(queries(&s, "h7.crawl.test", RecordType::AAAA), 1);
    let m = r.metrics();
    assert_eq!(m.udp_sent, 2);
    // Callers that arrived during the query joined it; any that arrived
    // after it landed were cache hits.
    assert!(m.coalesced > 0, "{m:?}");
    assert_eq!(m.latency.count, 2, "two wire resolutions in all: {m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_on_a_failing_name_shares_the_error() {
    let s = testbed(ZoneConfig::default(), Duration::from_millis(50)).await;
    s.set_faults(Faults {
        rcode: Some(RcodeFault::ServFail),
        ..Default::default()
    });
    let r = Resolver::new(
        ResolverConfig::builder()
            .nameserver(s.addr())
            .attempts(2)
            .build(),
    )
    .unwrap();
    let answers = herd(10_000, || {
        let r = r.clone();
        async move { r.lookup("h8.crawl.test", QueryType::A).await }
    })
    .await;
    for answer in answers {
        let err = answer.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ServFail);
        assert_eq!(err.attempts().len(), 2);
    }
    // One query per attempt, for everyone.
    assert_eq!(
        queries(&s, "h8.crawl.test", RecordType::A),
        2,
        "{:?}",
        r.metrics()
    );
    assert_eq!(r.metrics().failures_of(ErrorKind::ServFail), 1);
}

/// Plain address answers are cached as their addresses alone, answers
/// reached through CNAMEs whole: either way a hit must give back what the
/// wire gave (but the TTL left), and ask nothing more.
#[tokio::test]
async fn cached_typed_answers_equal_the_wire_answers() {
    let server = testbed(ZoneConfig::default(), Duration::ZERO).await;
    let r = resolver_with(&server, CacheConfig::default());
    let asks = [
        ("h1.crawl.test", QueryType::A),
        ("H1.Crawl.Test.", QueryType::A),
        ("h2.crawl.test", QueryType::Aaaa),
        ("chain3-9.crawl.test", QueryType::A),
        ("c9.crawl.test", QueryType::Cname),
    ];
    let mut from_wire = Vec::new();
    for (name, query_type) in asks {
        from_wire.push(r.lookup(name, query_type).await.unwrap());
    }
    assert_eq!(from_wire[0], from_wire[1], "one name, one cache entry");
    assert_eq!(from_wire[3].chain().len(), 3);
    assert_eq!(from_wire[4].target(), Some("h9.crawl.test"));
    let sent = server.counters().totals().udp_queries;
    assert_eq!(sent, 4, "the second spelling of h1 was a hit");

    skip(Duration::from_secs(10)).await;
    for ((name, query_type), wire) in asks.into_iter().zip(&from_wire) {
        let hit = r.lookup(name, query_type).await.unwrap();
        // The same answer, with the TTLs of 10 s later.
        let parts = |l: &Lookup| {
            (
                l.name().to_owned(),
                l.query_type(),
                l.ips().to_vec(),
                l.target().map(str::to_owned),
                l.records().to_vec(),
                l.chain().to_vec(),
            )
        };
        assert_eq!(parts(&hit), parts(wire), "{name} {query_type:?}");
        assert_eq!(hit.ttl(), wire.ttl() - 10, "{name} {query_type:?}");
        assert_eq!(
            hit.cache_ttl(),
            wire.cache_ttl() - 10,
            "{name} {query_type:?}"
        );
    }
    assert_eq!(server.counters().totals().udp_queries, sent);
}

#[tokio::test]
async fn positive_ttls_are_clamped_to_floor_and_ceiling() {
    let short = testbed(
        ZoneConfig {
            ttl: 5,
            ..Default::default()
        },
        Duration::ZERO,
    )
    .await;
    let r = resolver_with(&short, CacheConfig::default());
    let first = r.lookup("h1.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(first.ttl(), 5, "the wire answer reports the server's TTL");
    assert_eq!(first.cache_ttl(), 30, "and what the cache keeps it for");
    skip(Duration::from_secs(29)).await;
    let hit = r.lookup("h1.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(hit.ttl(), 0, "the record's TTL has run out");
    assert_eq!(hit.cache_ttl(), 1, "kept for the 30 s floor");
    assert_eq!(queries(&short, "h1.crawl.test", RecordType::A), 1);
    skip(Duration::from_secs(2)).await;
    r.lookup("h1.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(
        queries(&short, "h1.crawl.test", RecordType::A),
        2,
        "expired after 30 s"
    );

    let long = testbed(
        ZoneConfig {
            ttl: 86_400 * 7,
            ..Default::default()
        },
        Duration::ZERO,
    )
    .await;
    let r = resolver_with(
        &long,
        CacheConfig {
            max_ttl: Duration::from_secs(100),
            prefetch: false,
            ..Default::default()
        },
    );
    r.lookup("h2.crawl.test", QueryType::A).await.unwrap();
    skip(Duration::from_secs(99)).await;
    r.lookup("h2.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(queries(&long, "h2.crawl.test", RecordType::A), 1);
    skip(Duration::from_secs(2)).await;
    r.lookup("h2.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(
        queries(&long, "h2.crawl.test", RecordType::A),
        2,
        "lowered to the ceiling"
    );
    let m = r.metrics();
    assert_eq!((m.cache_hits, m.cache_misses), (1, 2));
}

#[tokio::test]
async fn negative_answers_are_cached_per_rfc_2308() {
    // SOA TTL 3600, MINIMUM 60: the negative TTL is min(3600, 60) = 60.
    let s = testbed(
        ZoneConfig {
            negative_ttl: 60,
            soa_ttl: 3600,
            ..Default::default()
        },
        Duration::ZERO,
    )
    .await;
    let r = resolver_with(&s, CacheConfig::default());
    for _ in 0..3 {
        let err = r.lookup("gone.crawl.test", QueryType::A).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NxDomain);
    }
    assert_eq!(queries(&s, "gone.crawl.test", RecordType::A), 1);
    skip(Duration::from_secs(59)).await;
    r.lookup("gone.crawl.test", QueryType::A).await.unwrap_err();
    assert_eq!(queries(&s, "gone.crawl.test", RecordType::A), 1);
    skip(Duration::from_secs(2)).await;
    r.lookup("gone.crawl.test", QueryType::A).await.unwrap_err();
    assert_eq!(queries(&s, "gone.crawl.test", RecordType::A), 2);

    // An IPv4-only host does not cost an AAAA query on every lookup.
    for _ in 0..5 {
        assert_eq!(
            &*r.lookup_ip("v4-3.crawl.test").await.unwrap().addrs,
            &[v4(3)]
        );
    }
    assert_eq!(queries(&s, "v4-3.crawl.test", RecordType::AAAA), 1);
    assert_eq!(queries(&s, "v4-3.crawl.test", RecordType::A), 1);

    // Without an SOA the short fallback applies.
    let bare = testbed(
        ZoneConfig {
            negative_soa: false,
            ..Default::default()
        },
        Duration::ZERO,
    )
    .await;
    let r = resolver_with(
        &bare,
        CacheConfig {
            negative_fallback_ttl: Duration::from_secs(10),
            ..Default::default()
        },
    );
    r.lookup("gone.crawl.test", QueryType::A).await.unwrap_err();
    skip(Duration::from_secs(9)).await;
    r.lookup("gone.crawl.test", QueryType::A).await.unwrap_err();
    assert_eq!(queries(&bare, "gone.crawl.test", RecordType::A), 1);
    skip(Duration::from_secs(2)).await;
    r.lookup("gone.crawl.test", QueryType::A).await.unwrap_err();
    assert_eq!(queries(&bare, "gone.crawl.test", RecordType::A), 2);
}

#[tokio::test]
async fn failures_are_cached_only_briefly() {
    let s = testbed(ZoneConfig::default(), Duration::ZERO).await;
    s.set_faults(Faults {
        rcode: Some(RcodeFault::ServFail),
        ..Default::default()
    });
    let r = resolver_with(&s, CacheConfig::default());
    let err = r.lookup("h1.crawl.test", QueryType::A).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ServFail);
    s.set_faults(Faults::default());
    // Within the 5 s failure TTL the failure is remembered ...
    assert_eq!(
        r.lookup("h1.crawl.test", QueryType::A)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::ServFail
    );
    skip(Duration::from_secs(6)).await;
    // ... and then forgotten.
    assert_eq!(
        r.lookup("h1.crawl.test", QueryType::A).await.unwrap().ips(),
        &[v4(1)]
    );
}

#[tokio::test]
async fn serve_stale_answers_when_every_server_fails() {
    let s = testbed(
        ZoneConfig {
            ttl: 60,
            ..Default::default()
        },
        Duration::ZERO,
    )
    .await;
    let r = resolver_with(
        &s,
        CacheConfig {
            serve_stale: Some(Duration::from_secs(3600)),
            prefetch: false,
            ..Default::default()
        },
    );
    r.lookup("h4.crawl.test", QueryType::A).await.unwrap();
    r.lookup_ip("h4.crawl.test").await.unwrap();
    s.set_faults(Faults {
        down: true,
        ..Default::default()
    });
    skip(Duration::from_secs(120)).await;
    let stale = r.lookup("h4.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(stale.ips(), &[v4(4)]);
    assert_eq!(stale.ttl(), 30, "RFC 8767 stale answer TTL");
    let stale_ip = r.lookup_ip("h4.crawl.test").await.unwrap();
    assert!(stale_ip.addrs.contains(&v4(4)));
    // The background refreshes fail (server down); the stale answer stays.
    until("a background refresh timed out", || {
        r.metrics().failures_of(ErrorKind::Timeout) >= 1
    })
    .await;
    let again = r.lookup("h4.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(again.ips(), &[v4(4)]);
    let m = r.metrics();
    assert!(m.stale_served >= 3, "{m:?}");
    assert!(m.failures_of(ErrorKind::Timeout) >= 1, "{m:?}");

    // Without serve-stale the same situation is an error.
    let plain = resolver_with(&s, CacheConfig::default());
    s.set_faults(Faults::default());
    plain.lookup("h5.crawl.test", QueryType::A).await.unwrap();
    s.set_faults(Faults {
        down: true,
        ..Default::default()
    });
    skip(Duration::from_secs(120)).await;
    let err = plain
        .lookup("h5.crawl.test", QueryType::A)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn prefetch_refreshes_a_hot_entry_once_before_it_expires() {
    let s = testbed(
        ZoneConfig {
            ttl: 100,
            ..Default::default()
        },
        Duration::ZERO,
    )
    .await;
    let r = resolver_with(&s, CacheConfig::default());
    r.lookup("h6.crawl.test", QueryType::A).await.unwrap();
    skip(Duration::from_secs(80)).await;
    r.lookup("h6.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(
        r.metrics().prefetches,
        0,
        "80 s of 100 is outside the last 10%"
    );
    skip(Duration::from_secs(12)).await;
    for _ in 0..5 {
        let hit = r.lookup("h6.crawl.test", QueryType::A).await.unwrap();
        assert_eq!(hit.ips(), &[v4(6)]);
    }
    // Let the one background refresh land: the server sees it, then the
    // cache holds the refreshed entry (a full TTL again; the old one had 8 s
    // left).
    until("the prefetch reached the server", || {
        queries(&s, "h6.crawl.test", RecordType::A) >= 2
    })
    .await;
    let mut refreshed = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !refreshed {
        assert!(
            std::time::Instant::now() < deadline,
            "the prefetch never landed"
        );
        let hit = r.lookup("h6.crawl.test", QueryType::A).await.unwrap();
        refreshed = hit.ttl() > 90;
        if !refreshed {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(queries(&s, "h6.crawl.test", RecordType::A), 2);
    assert_eq!(r.metrics().prefetches, 1);
    // The refreshed entry has a full TTL again: still cached 50 s later,
    // past the original expiry.
    skip(Duration::from_secs(50)).await;
    let hit = r.lookup("h6.crawl.test", QueryType::A).await.unwrap();
    assert!(hit.ttl() > 40, "{}", hit.ttl());
    assert_eq!(queries(&s, "h6.crawl.test", RecordType::A), 2);
}

#[tokio::test]
async fn cache_off_means_every_lookup_is_a_query() {
    let s = testbed(ZoneConfig::default(), Duration::ZERO).await;
    let r = Resolver::new(
        ResolverConfig::builder()
            .nameserver(s.addr())
            .cache(None)
            .ip_strategy(IpStrategy::V4Only)
            .build(),
    )
    .unwrap();
    for _ in 0..3 {
        r.lookup_ip("h1.crawl.test").await.unwrap();
    }
    assert_eq!(queries(&s, "h1.crawl.test", RecordType::A), 3);
    assert_eq!(r.cache_len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarm_misses_nothing_under_ten_percent_loss() {
    let s = testbed(
        ZoneConfig {
            hosts: 10_000,
            ..Default::default()
        },
        Duration::ZERO,
    )
    .await;
    s.set_faults(Faults {
        drop_fraction: 0.10,
        ..Default::default()
    });
    // A name stays cold only if, in each of the 3 passes (the first and 2
    // retry passes), one of its families loses all its attempts. With 2
    // attempts that is ~0.02 per pass, 8e-6 per name and 0.08 per run of
    // 10,000 names: a flaky test. With 3 attempts it is ~0.002 per pass and
    // 8e-5 per run.
    let r = Resolver::new(
        ResolverConfig::builder()
            .nameserver(s.addr())
            .ipv6_egress(Some(true))
            .attempts(3)
            .timeout(Duration::from_millis(300))
            .min_timeout(Duration::from_millis(100))
            .build(),
    )
    .unwrap();
    let mut hosts: Vec<String> = (0..10_000).map(|i| format!("h{i}.crawl.test")).collect();
    hosts.push("H1.CRAWL.TEST.".into()); // a duplicate
    hosts.push("missing.crawl.test".into());
    hosts.push("bad name".into());
    let report = r
        .prewarm(
            &hosts,
            PrewarmOptions {
                concurrency: 500,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(report.requested, 10_003);
    assert_eq!(report.invalid, 1);
    assert_eq!(report.unique, 10_001);
    assert_eq!(report.resolved, 10_000, "{report:?}");
    assert_eq!(report.failed_of(ErrorKind::NxDomain), 1, "{report:?}");
    assert_eq!(report.failed_total(), 1, "{report:?}");

    // The burst after pre-warm is all cache hits: nothing on the wire.
    s.set_faults(Faults {
        down: true,
        ..Default::default()
    });
    let sent = r.metrics().udp_sent;
    for i in (0..10_000).step_by(7) {
        let got = r.lookup_ip(&format!("h{i}.crawl.test")).await.unwrap();
        assert!(got.addrs.contains(&v4(i)));
    }
    assert_eq!(r.metrics().udp_sent, sent);
}

#[tokio::test]
async fn prewarm_respects_its_rate_limit() {
    let s = testbed(ZoneConfig::default(), Duration::ZERO).await;
    let r = resolver_with(&s, CacheConfig::default());
    let hosts: Vec<String> = (0..50).map(|i| format!("h{i}.crawl.test")).collect();
    let report = r
        .prewarm(
            &hosts,
            PrewarmOptions {
                names_per_second: Some(250),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(report.resolved, 50);
    // 50 names at 250/s cannot start faster than 49 × 4 ms.
    assert!(
        report.elapsed >= Duration::from_millis(190),
        "{:?}",
        report.elapsed
    );
}

#[tokio::test]
async fn dropping_the_first_caller_does_not_strand_the_others() {
    let s = testbed(ZoneConfig::default(), Duration::from_millis(200)).await;
    let r = resolver_with(&s, CacheConfig::default());
    let first = {
        let r = r.clone();
        tokio::spawn(async move { r.lookup("h9.crawl.test", QueryType::A).await })
    };
    // The first caller's query is on the wire (the server holds it 200 ms).
    until("the first query reached the server", || {
        queries(&s, "h9.crawl.test", RecordType::A) == 1
    })
    .await;
    let second = {
        let r = r.clone();
        tokio::spawn(async move { r.lookup("h9.crawl.test", QueryType::A).await })
    };
    first.abort();
    let got = second.await.unwrap().unwrap();
    assert_eq!(got.ips(), &[v4(9)]);
    assert_eq!(queries(&s, "h9.crawl.test", RecordType::A), 1);
}

#[tokio::test]
async fn pending_names_are_bounded_and_the_excess_fails_fast() {
    let s = testbed(ZoneConfig::default(), Duration::from_millis(300)).await;
    let r = Resolver::new(
        ResolverConfig::builder()
            .nameserver(s.addr())
            .max_pending(10)
            .build(),
    )
    .unwrap();
    let answers = herd(20, || {
        let r = r.clone();
        // 20 distinct names.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move { (i, r.lookup(&format!("h{i}.crawl.test"), QueryType::A).await) }
    })
    .await;
    let ok = answers.iter().filter(|(_, a)| a.is_ok()).count();
    let refused: Vec<_> = answers
        .iter()
        .filter_map(|(_, a)| a.as_ref().err())
        .collect();
    assert_eq!(ok + refused.len(), 20);
    assert!(ok >= 10, "{ok} answered");
    assert!(!refused.is_empty(), "the bound was never hit");
    for err in &refused {
        assert_eq!(err.kind(), ErrorKind::Resource);
        assert!(err.to_string().contains("max_pending"), "{err}");
    }
    for (i, answer) in &answers {
        if let Ok(lookup) = answer {
            assert_eq!(lookup.ips(), &[v4(*i)]);
        }
    }
    // Joining a name already pending is always allowed.
    assert_eq!(
        r.metrics().failures_of(ErrorKind::Resource),
        refused.len() as u64
    );
}

/// `lookups` counts every call of `lookup` and `lookup_ip` exactly once,
/// `cache_hits` every fresh answer and `cache_misses` every call the cache
/// could not answer, once each, whichever path the call takes (the hit
/// path counts a lookup and a hit with one increment). The resolver's own
/// lookups (the families of a `lookup_ip`) count as neither.
#[tokio::test]
async fn lookups_and_hits_are_counted_once_on_every_path() {
    let s = testbed(ZoneConfig::default(), Duration::ZERO).await;
    let r = resolver_with(&s, CacheConfig::default());
    let m0 = r.metrics();
    assert_eq!((m0.lookups, m0.cache_hits, m0.cache_misses), (0, 0, 0));

    // A miss: lookup_ip misses its combined entry (its A and AAAA family
    // lookups miss too, but they are not callers' lookups).
    r.lookup_ip("h1.crawl.test").await.unwrap();
    let m = r.metrics();
    assert_eq!((m.lookups, m.cache_hits, m.cache_misses), (1, 0, 1));

    // Fresh hits, lower-case (the fast path) and otherwise.
    r.lookup_ip("h1.crawl.test").await.unwrap();
    r.lookup_ip("H1.Crawl.Test.").await.unwrap();
    r.lookup("h1.crawl.test", QueryType::A).await.unwrap();
    r.lookup("H1.CRAWL.TEST", QueryType::Aaaa).await.unwrap();
    let m = r.metrics();
    assert_eq!((m.lookups, m.cache_hits, m.cache_misses), (5, 4, 1));

    // Neither cache nor wire: IP literals, localhost, invalid names.
    r.lookup_ip("192.0.2.1").await.unwrap();
    r.lookup_ip("[::1]").await.unwrap();
    r.lookup_ip("localhost").await.unwrap();
    r.lookup("127.0.0.1", QueryType::A).await.unwrap();
    r.lookup("a.localhost", QueryType::A).await.unwrap();
    assert_eq!(
        r.lookup_ip("a..b").await.unwrap_err().kind(),
        ErrorKind::InvalidName
    );
    assert_eq!(
        r.lookup("-a.test", QueryType::A).await.unwrap_err().kind(),
        ErrorKind::InvalidName
    );
    let m = r.metrics();
    assert_eq!((m.lookups, m.cache_hits, m.cache_misses), (12, 4, 1));

    // A typed miss, then its hit.
    r.lookup("h2.crawl.test", QueryType::A).await.unwrap();
    r.lookup("h2.crawl.test", QueryType::A).await.unwrap();
    let m = r.metrics();
    assert_eq!((m.lookups, m.cache_hits, m.cache_misses), (14, 5, 2));

    // A lookup_ip whose combined entry is missing but whose family is
    // cached: one lookup, one miss (the family's hit is the resolver's).
    let ipv4 = Resolver::new(
        ResolverConfig::builder()
            .nameserver(s.addr())
            .ip_strategy(IpStrategy::V4Only)
            .cache(Some(CacheConfig {
                clock: CacheClock::Tokio,
                ..Default::default()
            }))
            .build(),
    )
    .unwrap();
    ipv4.lookup("h3.crawl.test", QueryType::A).await.unwrap();
    ipv4.lookup_ip("h3.crawl.test").await.unwrap();
    let m = ipv4.metrics();
    assert_eq!((m.lookups, m.cache_hits, m.cache_misses), (2, 0, 2));
}

/// `localhost` and IP-literal names in a pre-warm list are answered
/// locally: they count as resolved, send nothing and cache nothing; lookups
/// of them are still answered locally.
#[tokio::test]
async fn prewarmed_localhost_and_ip_names_are_still_answered_locally() {
    let s = testbed(ZoneConfig::default(), Duration::ZERO).await;
    let r = resolver_with(&s, CacheConfig::default());
    let report = r
        .prewarm(
            ["localhost", "a.localhost", "127.0.0.1", "h1.crawl.test"],
            PrewarmOptions::default(),
        )
        .await;
    assert_eq!((report.unique, report.resolved), (4, 4), "{report:?}");
    assert_eq!(report.failed_total(), 0, "{report:?}");
    // Only h1.crawl.test went to the server: its A and AAAA.
    assert_eq!(s.counters().totals().udp_queries, 2);
    for _ in 0..2 {
        let local = r.lookup("localhost", QueryType::A).await.unwrap();
        assert_eq!(local.ips(), [IpAddr::from([127, 0, 0, 1])]);
        let local = r.lookup("a.localhost.", QueryType::Aaaa).await.unwrap();
        assert_eq!(local.ips(), [IpAddr::from(std::net::Ipv6Addr::LOCALHOST)]);
        let literal = r.lookup("127.0.0.1", QueryType::A).await.unwrap();
        assert_eq!(literal.ips(), [IpAddr::from([127, 0, 0, 1])]);
        let literal = r.lookup_ip("127.0.0.1").await.unwrap();
        assert_eq!(
            (&*literal.addrs, literal.ttl),
            (&[IpAddr::from([127, 0, 0, 1])][..], 0)
        );
        let local = r.lookup_ip("localhost").await.unwrap();
        assert_eq!(local.ttl, 0);
        assert!(local.addrs.contains(&IpAddr::from([127, 0, 0, 1])));
        assert_eq!(
            r.lookup_ip("h1.crawl.test.").await.unwrap().addrs[..],
            r.lookup_ip("h1.crawl.test").await.unwrap().addrs[..]
        );
    }
}

/// Issue 13 item 3: without an IPv6 route `lookup_ip` says it left AAAA
/// out, in the answer and in a counter; no AAAA goes on the wire.
#[tokio::test]
async fn a_skipped_aaaa_is_said_and_counted() {
    let server = testbed(ZoneConfig::default(), Duration::ZERO).await;
    let r = Resolver::new(
        ResolverConfig::builder()
            .nameserver(server.addr())
            .ipv6_egress(Some(false))
            .build(),
    )
    .unwrap();
    for name in ["h1.crawl.test", "h2.crawl.test", "h1.crawl.test"] {
        let found = r.lookup_ip(name).await.unwrap();
        assert!(found.aaaa_skipped, "{name}");
        assert!(found.addrs.iter().all(IpAddr::is_ipv4), "{name}");
    }
    assert_eq!(
        r.metrics().aaaa_skipped,
        2,
        "two resolutions, one cache hit"
    );
    assert_eq!(server.counters().totals().udp_queries, 2);
    assert_eq!(queries(&server, "h1.crawl.test", RecordType::AAAA), 0);
    let v4_only = Resolver::new(
        ResolverConfig::builder()
            .nameserver(server.addr())
            .ipv6_egress(Some(false))
            .ip_strategy(IpStrategy::V4Only)
            .build(),
    )
    .unwrap();
    assert!(
        !v4_only
            .lookup_ip("h3.crawl.test")
            .await
            .unwrap()
            .aaaa_skipped
    );
    assert_eq!(
        v4_only.metrics().aaaa_skipped,
        0,
        "asked for A only: nothing skipped"
    );
}

/// Issue 13 item 2: `lookup_ip` reports the record's TTL, as `lookup` does,
/// not the cache's floor; what the cache keeps is `cache_ttl`. On the wire
/// answer, on the combined entry's hit and on a hit of the families.
#[tokio::test]
async fn lookup_ip_reports_the_records_ttl_beside_the_cache_clamp() {
    let server = testbed(
        ZoneConfig {
            ttl: 5,
            ..Default::default()
        },
        Duration::ZERO,
    )
    .await;
    let r = resolver_with(&server, CacheConfig::default());
    let typed = r.lookup("h1.crawl.test", QueryType::A).await.unwrap();
    assert_eq!((typed.ttl(), typed.cache_ttl()), (5, 30));
    let wire = r.lookup_ip("h2.crawl.test").await.unwrap();
    assert_eq!((wire.ttl, wire.cache_ttl), (5, 30), "the wire answer");
    assert!(!wire.aaaa_skipped);
    skip(Duration::from_secs(3)).await;
    let hit = r.lookup_ip("h2.crawl.test").await.unwrap();
    assert_eq!(
        (hit.ttl, hit.cache_ttl),
        (2, 27),
        "the combined entry's hit"
    );
    let from_families = r.lookup_ip("h1.crawl.test").await.unwrap();
    assert_eq!(
        (from_families.ttl, from_families.cache_ttl),
        (2, 30),
        "the A entry's 2 s left and a wire AAAA's 5: the smaller; a new combined entry, kept 30 s"
    );
    skip(Duration::from_secs(10)).await;
    let late = r.lookup_ip("h2.crawl.test").await.unwrap();
    assert_eq!((late.ttl, late.cache_ttl), (0, 17), "the record ran out");
    assert_eq!(queries(&server, "h2.crawl.test", RecordType::A), 1);
}

/// A typed hit is served from this thread's copy of the answer: after the
/// first hit (from the shared cache) made it, hits on one thread share it
/// (no copy per hit), another thread makes its own, and the server saw one
/// query.
#[tokio::test]
async fn typed_hits_share_this_threads_copy_of_the_answer() {
    let server = testbed(ZoneConfig::default(), Duration::ZERO).await;
    let r = resolver_with(&server, CacheConfig::default());
    let hits = |r: Resolver| async move {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(r.lookup("h3.crawl.test", QueryType::A).await.unwrap());
        }
        got
    };
    let wire = r.lookup("h3.crawl.test", QueryType::A).await.unwrap();
    let here = hits(r.clone()).await;
    for hit in &here {
        assert_eq!((hit.name(), hit.ips()), ("h3.crawl.test", &[v4(3)][..]));
    }
    assert!(!Arc::ptr_eq(&wire.shared_ips(), &here[1].shared_ips()));
    assert!(!Arc::ptr_eq(&here[0].shared_ips(), &here[1].shared_ips()));
    assert!(
        Arc::ptr_eq(&here[1].shared_ips(), &here[2].shared_ips()),
        "two hits on one thread, one answer"
    );
    let there = {
        let r = r.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(hits(r))
        })
        .join()
        .unwrap()
    };
    assert!(Arc::ptr_eq(&there[1].shared_ips(), &there[2].shared_ips()));
    assert!(
        !Arc::ptr_eq(&there[1].shared_ips(), &here[1].shared_ips()),
        "its own copy"
    );
    assert_eq!(there[2].ips(), [v4(3)]);
    assert_eq!(queries(&server, "h3.crawl.test.", RecordType::A), 1);
    assert_eq!(r.metrics().cache_hits, 6);
}
