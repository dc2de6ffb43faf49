//! The resolver against the testbed: answers, volume, failover, TCP
//! fallback, forged and malformed answers, happy eyeballs.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crawldns::{
    Batching, ErrorKind, IpStrategy, MetricsSnapshot, QueryType, Resolver, ResolverConfig,
    ResolverConfigBuilder,
};
use crawldns_testbed::{
    host_v4, AaaaAnswer, Delay, DnsServer, DnsServerConfig, Faults, RcodeFault, Transport,
    ZoneConfig,
};
use hickory_proto::rr::RecordType;

async fn testbed(zone: ZoneConfig) -> DnsServer {
    DnsServer::start(DnsServerConfig {
        zone,
        ..Default::default()
    })
    .await
    .expect("testbed starts")
}

async fn server_on(ip: [u8; 4]) -> DnsServer {
    DnsServer::start(DnsServerConfig {
        addr: SocketAddr::from((ip, 0)),
        ..Default::default()
    })
    .await
    .expect("testbed starts")
}

fn builder(servers: &[&DnsServer]) -> ResolverConfigBuilder {
    servers
        .iter()
        .fold(ResolverConfig::builder(), |b, s| b.nameserver(s.addr()))
        .ipv6_egress(Some(true))
}

fn resolver(servers: &[&DnsServer]) -> Resolver {
    Resolver::new(builder(servers).build()).unwrap()
}

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(host_v4(n).unwrap())
}

#[tokio::test]
async fn answers_every_kind_of_name() {
    let s = testbed(ZoneConfig {
        aaaa: AaaaAnswer::MappedV4,
        ..Default::default()
    })
    .await;
    let r = resolver(&[&s]);

    let a = r.lookup("h5.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(a.ips(), &[v4(5)]);
    assert_eq!(a.ttl(), 300);
    assert!(a.chain().is_empty());

    let aaaa = r.lookup("H5.Crawl.Test.", QueryType::Aaaa).await.unwrap();
    assert_eq!(aaaa.name(), "h5.crawl.test");
    assert_eq!(
        aaaa.ips(),
        &[IpAddr::V6(host_v4(5).unwrap().to_ipv6_mapped())]
    );

    let both = r.lookup_ip("h5.crawl.test").await.unwrap();
    assert_eq!(
        &*both.addrs,
        &[IpAddr::V6(host_v4(5).unwrap().to_ipv6_mapped()), v4(5)]
    );

    let chained = r.lookup("chain3-9.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(chained.ips(), &[v4(9)]);
    assert_eq!(
        chained.chain(),
        [
            "chain2-9.crawl.test",
            "chain1-9.crawl.test",
            "h9.crawl.test"
        ]
    );

    let cname = r.lookup("c9.crawl.test", QueryType::Cname).await.unwrap();
    assert_eq!(cname.target(), Some("h9.crawl.test"));
    assert!(cname.ips().is_empty());

    let err = r.lookup("nope.crawl.test", QueryType::A).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NxDomain);
    assert_eq!(err.name(), "nope.crawl.test");

    let err = r
        .lookup("v4-5.crawl.test", QueryType::Aaaa)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoData);
    // An IPv4-only host still resolves through lookup_ip.
    assert_eq!(
        &*r.lookup_ip("v4-5.crawl.test").await.unwrap().addrs,
        &[v4(5)]
    );

    let err = r.lookup("loop.crawl.test", QueryType::A).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CnameChain);
    let err = r
        .lookup("chain9-1.crawl.test", QueryType::A)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CnameChain, "default depth is 8");

    let sent_before = r.metrics().udp_sent;
    let literal = r.lookup_ip("127.9.8.7").await.unwrap();
    assert_eq!(&*literal.addrs, &["127.9.8.7".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        &*r.lookup_ip("[::1]").await.unwrap().addrs,
        &["::1".parse::<IpAddr>().unwrap()]
    );
    let local = r.lookup_ip("localhost").await.unwrap();
    assert_eq!(local.addrs.len(), 2);
    assert_eq!(
        r.lookup("::1", QueryType::A).await.unwrap_err().kind(),
        ErrorKind::NoData
    );
    for bad in ["", "a..b", "bad name.test", "-x.test", &"x".repeat(64)] {
        assert_eq!(
            r.lookup_ip(bad).await.unwrap_err().kind(),
            ErrorKind::InvalidName,
            "{bad:?}"
        );
    }
    assert_eq!(
        r.metrics().udp_sent,
        sent_before,
        "literals and bad names never reach the wire"
    );
}

#[tokio::test]
async fn ten_thousand_lookups_500_in_flight_on_a_handful_of_sockets() {
    let s = testbed(ZoneConfig {
        hosts: 10_000,
        ..Default::default()
    })
    .await;
    let r = Resolver::new(builder(&[&s]).ip_strategy(IpStrategy::V4Only).build()).unwrap();
    let fds_before = open_fds();
    let peak_fds = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(500));
    for i in 0..10_000u32 {
        let r = r.clone();
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let peak = peak_fds.clone();
        tasks.spawn(async move {
            let got = r.lookup(&format!("h{i}.crawl.test"), QueryType::A).await;
            if i % 500 == 0 {
                peak.fetch_max(open_fds(), std::sync::atomic::Ordering::Relaxed);
            }
            drop(permit);
            (i, got)
        });
    }
    let mut ok = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, got) = joined.unwrap();
        assert_eq!(got.unwrap().ips(), &[v4(i)], "h{i}");
        ok += 1;
    }
    assert_eq!(ok, 10_000);
    let m = r.metrics();
    assert_eq!(m.udp_sent, 10_000, "no retries were needed: {m:?}");
    assert_eq!(m.mismatched, 0);
    assert!(r.open_sockets() <= 4, "{} sockets", r.open_sockets());
    let peak = peak_fds.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        peak <= fds_before + 8,
        "fds went from {fds_before} to {peak}"
    );
}

fn open_fds() -> usize {
    crawldns_sys::process::open_fds().unwrap_or(0)
}

#[tokio::test]
async fn a_down_server_is_skipped_and_the_timeout_adapts() {
    let dead = server_on([127, 0, 0, 11]).await;
    dead.set_faults(Faults {
        down: true,
        ..Default::default()
    });
    let alive = server_on([127, 0, 0, 12]).await;
    let r = Resolver::new(
        builder(&[&dead, &alive])
            .timeout(Duration::from_millis(800))
            .min_timeout(Duration::from_millis(250))
            .probe_interval(Duration::from_secs(3600))
            .build(),
    )
    .unwrap();
    for i in 0..10u32 {
        let got = r
            .lookup(&format!("h{i}.crawl.test"), QueryType::A)
            .await
            .unwrap();
        assert_eq!(got.ips(), &[v4(i)]);
    }
    // Three failures mark the first server down; after that it gets no
    // user queries at all.
    assert_eq!(dead.counters().totals().udp_queries, 3);
    assert_eq!(alive.counters().totals().udp_queries, 10);
    let health = r.server_health();
    assert!(health[0].down);
    assert!(!health[1].down);
    assert!(health[1].timeout < Duration::from_millis(800), "{health:?}");
    assert_eq!(
        health[1].timeout,
        Duration::from_millis(250),
        "loopback RTT × 5 is clamped to the floor"
    );
    let err_free = r.metrics();
    assert_eq!(err_free.timeouts, 3);
}

#[tokio::test]
async fn a_probe_brings_a_recovered_server_back() {
    let flaky = server_on([127, 0, 0, 13]).await;
    flaky.set_faults(Faults {
        down: true,
        ..Default::default()
    });
    let other = server_on([127, 0, 0, 14]).await;
    let r = Resolver::new(
        builder(&[&flaky, &other])
            .timeout(Duration::from_millis(300))
            .down_after_failures(1)
            .probe_interval(Duration::from_millis(100))
            .build(),
    )
    .unwrap();
    r.lookup("h1.crawl.test", QueryType::A).await.unwrap();
    assert!(r.server_health()[0].down);
    flaky.set_faults(Faults::default());
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.server_health()[0].down {
        assert!(
            Instant::now() < deadline,
            "probe never marked the server up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(r.metrics().probes >= 1);
    // The probe asked for the root, not for a user's name.
    assert!(flaky.counters().queries_any(".", RecordType::NS) >= 1);
    assert_eq!(
        flaky.counters().queries_any("h1.crawl.test", RecordType::A),
        1
    );
}

#[tokio::test]
async fn servfail_and_refused_move_to_the_next_server() {
    for fault in [RcodeFault::ServFail, RcodeFault::Refused] {
        let bad = server_on([127, 0, 0, 15]).await;
        bad.set_faults(Faults {
            rcode: Some(fault),
            ..Default::default()
        });
        let good = server_on([127, 0, 0, 16]).await;
        let r = resolver(&[&bad, &good]);
        let got = r.lookup("h3.crawl.test", QueryType::A).await.unwrap();
        assert_eq!(got.ips(), &[v4(3)]);
        assert_eq!(bad.counters().totals().udp_queries, 1);
        assert_eq!(r.metrics().server_errors, 1);

        // Alone, the bad server's rcode is the error, after every attempt.
        let r = Resolver::new(builder(&[&bad]).attempts(2).build()).unwrap();
        let err = r.lookup("h3.crawl.test", QueryType::A).await.unwrap_err();
        let expected = match fault {
            RcodeFault::ServFail => ErrorKind::ServFail,
            RcodeFault::Refused => ErrorKind::Refused,
        };
        assert_eq!(err.kind(), expected);
        assert_eq!(err.attempts().len(), 2);
        assert_eq!(err.servers_tried(), [bad.addr()]);
    }
}

#[tokio::test]
async fn every_server_is_tried_before_one_is_repeated() {
    let a = server_on([127, 0, 0, 17]).await;
    let b = server_on([127, 0, 0, 18]).await;
    for s in [&a, &b] {
        s.set_faults(Faults {
            down: true,
            ..Default::default()
        });
    }
    let r = Resolver::new(
        builder(&[&a, &b])
            .attempts(2)
            .timeout(Duration::from_millis(200))
            .build(),
    )
    .unwrap();
    let started = Instant::now();
    let err = r.lookup("h1.crawl.test", QueryType::A).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    let order: Vec<SocketAddr> = err.attempts().iter().map(|x| x.server).collect();
    assert_eq!(order, [a.addr(), b.addr(), a.addr(), b.addr()]);
    assert!(err.to_string().contains("timed out"), "{err}");
    // 4 attempts × 200 ms, plus a generous margin.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn truncated_answers_are_retried_over_tcp() {
    let s = testbed(ZoneConfig::default()).await;
    let r = resolver(&[&s]);
    let big = r.lookup("big2.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(big.ips().len(), 100);
    assert_eq!(
        s.counters()
            .queries("big2.crawl.test", RecordType::A, Transport::Udp),
        1
    );
    assert_eq!(
        s.counters()
            .queries("big2.crawl.test", RecordType::A, Transport::Tcp),
        1
    );
    assert_eq!(r.metrics().truncated, 1);

    s.set_faults(Faults {
        truncate: true,
        ..Default::default()
    });
    assert_eq!(
        r.lookup("h4.crawl.test", QueryType::A).await.unwrap().ips(),
        &[v4(4)]
    );

    // A TCP-only server gets no UDP at all.
    let tcp_only =
        Resolver::new(ResolverConfig::builder().tcp_nameserver(s.addr()).build()).unwrap();
    assert_eq!(
        tcp_only
            .lookup("h6.crawl.test", QueryType::A)
            .await
            .unwrap()
            .ips(),
        &[v4(6)]
    );
    assert_eq!(
        s.counters()
            .queries("h6.crawl.test", RecordType::A, Transport::Udp),
        0
    );
}

#[tokio::test]
async fn forged_answers_are_dropped_and_the_genuine_one_accepted() {
    let s = testbed(ZoneConfig::default()).await;
    for (i, faults) in [
        Faults {
            wrong_id: true,
            ..Default::default()
        },
        Faults {
            wrong_question: true,
            ..Default::default()
        },
        Faults {
            wrong_port: true,
            ..Default::default()
        },
    ]
    .into_iter()
    .enumerate()
    {
        s.set_faults(faults.clone());
        for case_randomization in [false, true] {
            let r = Resolver::new(
                builder(&[&s])
                    .case_randomization(case_randomization)
                    .build(),
            )
            .unwrap();
            let got = r
                .lookup(&format!("h{i}.crawl.test"), QueryType::A)
                .await
                .unwrap();
            assert_eq!(got.ips(), &[v4(i as u32)], "{faults:?}");
            let m = r.metrics();
            // From another port the forgery never reaches the resolver:
            // its sockets are connected, so the kernel drops it.
            let reaching = u64::from(!faults.wrong_port);
            assert_eq!(m.mismatched, reaching, "{faults:?}: {m:?}");
            assert_eq!(m.udp_sent, 1);
        }
    }
}

#[tokio::test]
async fn malformed_answers_do_not_panic_and_fail_over() {
    let bad = server_on([127, 0, 0, 19]).await;
    bad.set_faults(Faults {
        malformed: true,
        ..Default::default()
    });
    let r = Resolver::new(builder(&[&bad]).timeout(Duration::from_millis(200)).build()).unwrap();
    let err = r.lookup("h1.crawl.test", QueryType::A).await.unwrap_err();
    // The packet's question is a compression loop: it cannot be matched to
    // the query, so it is dropped as a mismatch and the attempt times out.
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(r.metrics().mismatched, 2);

    let good = server_on([127, 0, 0, 20]).await;
    let r = Resolver::new(
        builder(&[&bad, &good])
            .timeout(Duration::from_millis(200))
            .build(),
    )
    .unwrap();
    assert_eq!(
        r.lookup("h1.crawl.test", QueryType::A).await.unwrap().ips(),
        &[v4(1)]
    );
}

#[tokio::test]
async fn happy_eyeballs_waits_briefly_for_a_slow_aaaa() {
    let zone = ZoneConfig {
        aaaa: AaaaAnswer::MappedV4,
        ..Default::default()
    };
    let slow_aaaa = DnsServer::start(DnsServerConfig {
        zone: zone.clone(),
        delay: Delay::default().with_type(RecordType::AAAA, Duration::from_millis(1500)),
        ..Default::default()
    })
    .await
    .unwrap();
    let r = Resolver::new(
        builder(&[&slow_aaaa])
            .resolution_delay(Duration::from_millis(50))
            .build(),
    )
    .unwrap();
    let started = Instant::now();
    let got = r.lookup_ip("h2.crawl.test").await.unwrap();
    assert_eq!(&*got.addrs, &[v4(2)], "AAAA missed the resolution delay");
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "waited {:?}",
        started.elapsed()
    );

    // AAAA a little late but within the delay: both families, IPv6 first.
    let late_aaaa = DnsServer::start(DnsServerConfig {
        zone: zone.clone(),
        delay: Delay::default().with_type(RecordType::AAAA, Duration::from_millis(5)),
        ..Default::default()
    })
    .await
    .unwrap();
    let r = Resolver::new(
        builder(&[&late_aaaa])
            .resolution_delay(Duration::from_millis(500))
            .build(),
    )
    .unwrap();
    let got = r.lookup_ip("h2.crawl.test").await.unwrap();
    assert_eq!(
        &*got.addrs,
        &[IpAddr::V6(host_v4(2).unwrap().to_ipv6_mapped()), v4(2)]
    );

    // PreferV4 waits for both, whatever the order, and puts IPv4 first.
    let r = Resolver::new(
        builder(&[&slow_aaaa])
            .ip_strategy(IpStrategy::PreferV4)
            .build(),
    )
    .unwrap();
    let got = r.lookup_ip("h3.crawl.test").await.unwrap();
    assert_eq!(
        &*got.addrs,
        &[v4(3), IpAddr::V6(host_v4(3).unwrap().to_ipv6_mapped())]
    );

    // Without IPv6 egress no AAAA is asked at all.
    let r = Resolver::new(builder(&[&late_aaaa]).ipv6_egress(Some(false)).build()).unwrap();
    assert_eq!(
        &*r.lookup_ip("h4.crawl.test").await.unwrap().addrs,
        &[v4(4)]
    );
    assert_eq!(
        late_aaaa
            .counters()
            .queries_any("h4.crawl.test", RecordType::AAAA),
        0
    );
}

#[tokio::test]
async fn v6_nameservers_work() {
    let Ok(s) = DnsServer::start(DnsServerConfig {
        addr: "[::1]:0".parse().unwrap(),
        ..Default::default()
    })
    .await
    else {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    };
    let r = resolver(&[&s]);
    assert_eq!(
        r.lookup("h1.crawl.test", QueryType::A).await.unwrap().ips(),
        &[v4(1)]
    );
}

#[tokio::test]
async fn config_errors_are_clear() {
    let err = Resolver::new(ResolverConfig::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoNameservers);
    // Every other validation error is a configuration error, saying what.
    let server = "127.0.0.1:53".parse().unwrap();
    for (config, why) in [
        (
            ResolverConfig::builder()
                .nameserver(server)
                .attempts(0)
                .build(),
            "attempts must be at least 1",
        ),
        (
            ResolverConfig::builder()
                .nameserver(server)
                .timeout(Duration::ZERO)
                .build(),
            "timeout must be positive",
        ),
    ] {
        let err = Resolver::new(config).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(
            err.to_string(),
            format!("config: invalid configuration: {why}")
        );
    }
    let dir = std::env::temp_dir().join(format!("crawldns-resolv-{}", std::process::id()));
    std::fs::write(&dir, "nameserver 127.0.0.1\noptions timeout:1 attempts:4\n").unwrap();
    let config = ResolverConfig::builder().resolv_conf(&dir).unwrap().build();
    std::fs::remove_file(&dir).unwrap();
    assert_eq!(config.nameservers[0].addr, "127.0.0.1:53".parse().unwrap());
    assert_eq!(config.attempts, 4);
    assert_eq!(config.timeout, Duration::from_secs(1));
    let err = ResolverConfig::builder()
        .resolv_conf("/nonexistent/resolv.conf")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
}

#[tokio::test]
async fn sockets_rotate_to_fresh_ports_without_losing_answers() {
    let s = testbed(ZoneConfig::default()).await;
    let r = Resolver::new(builder(&[&s]).udp_sockets(2).queries_per_socket(10).build()).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200u32 {
        let r = r.clone();
        tasks.spawn(async move { (i, r.lookup(&format!("h{i}.crawl.test"), QueryType::A).await) });
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, got) = joined.unwrap();
        assert_eq!(got.unwrap().ips(), &[v4(i)]);
    }
    let m = r.metrics();
    // 200 queries over 2 slots of 10 queries each: every slot rotated.
    assert!(m.socket_rotations >= 18, "{m:?}");
    assert_eq!(m.udp_sent, 200);
    assert!(r.open_sockets() <= 2);
    // Retired sockets close once their last query is answered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fds_now = open_fds();
    let r2 = r.clone();
    drop(r);
    drop(r2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        open_fds() <= fds_now,
        "dropping the resolver closes its sockets"
    );
}

/// A UDP port on `ip` that nothing listens on (bound, then closed).
fn closed_port(ip: [u8; 4]) -> SocketAddr {
    let socket = std::net::UdpSocket::bind(SocketAddr::from((ip, 0))).unwrap();
    socket.local_addr().unwrap()
}

#[tokio::test]
async fn a_server_that_is_not_listening_fails_at_once_not_at_the_timeout() {
    let dead = closed_port([127, 0, 0, 23]);
    let timeout = Duration::from_secs(5);
    // Alone: ICMP port unreachable reaches the connected socket, and the
    // attempt fails as an I/O error instead of waiting out its timeout; a
    // closed port is not asked again for the same question.
    let r = Resolver::new(
        ResolverConfig::builder()
            .nameserver(dead)
            .timeout(timeout)
            .min_timeout(timeout)
            .attempts(2)
            .build(),
    )
    .unwrap();
    let started = Instant::now();
    let err = r.lookup("h1.crawl.test", QueryType::A).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("connection refused"), "{err}");
    assert_eq!(err.attempts().len(), 1, "{err}");
    assert!(err.attempts().iter().all(|a| a.server == dead));
    assert!(started.elapsed() < timeout, "took {:?}", started.elapsed());
    assert_eq!(r.metrics().timeouts, 0);

    // First in line: the next server answers without a timeout in between.
    let good = server_on([127, 0, 0, 24]).await;
    let r = Resolver::new(
        ResolverConfig::builder()
            .nameserver(dead)
            .nameserver(good.addr())
            .rotate(false)
            .timeout(timeout)
            .min_timeout(timeout)
            .build(),
    )
    .unwrap();
    let started = Instant::now();
    let got = r.lookup("h1.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(got.ips(), &[v4(1)]);
    assert!(started.elapsed() < timeout, "took {:?}", started.elapsed());
    let m = r.metrics();
    assert_eq!((m.timeouts, m.udp_sent, m.answers), (0, 2, 1), "{m:?}");
}

/// 1,000 lookups at once against a refused port, alone and as the primary
/// before a working secondary, 20 times each: every lookup fails (or fails
/// over) on the ICMP refusal, none waits for a timeout, and the counters add
/// up (one attempt per server per lookup; retries only where a next server
/// exists).
#[tokio::test]
async fn a_refused_nameserver_fails_a_thousand_lookups_at_once_every_time() {
    let dead = closed_port([127, 0, 0, 25]);
    let good = server_on([127, 0, 0, 26]).await;
    // A timeout no lookup may wait for: if one did, the timeouts counter
    // would say so, and the lookup would take 30 s.
    let timeout = Duration::from_secs(30);
    for run in 0..20 {
        for with_secondary in [false, true] {
            let mut config = ResolverConfig::builder()
                .nameserver(dead)
                .rotate(false)
                .timeout(timeout)
                .min_timeout(timeout)
                .ip_strategy(IpStrategy::V4Only);
            if with_secondary {
                config = config.nameserver(good.addr());
            }
            let r = Resolver::new(config.build()).unwrap();
            let started = Instant::now();
            let mut lookups = tokio::task::JoinSet::new();
            for i in 0..1000u32 {
                let r = r.clone();
                lookups.spawn(async move {
                    let started = Instant::now();
                    let result = r.lookup(&format!("h{i}.crawl.test"), QueryType::A).await;
                    (i, result, started.elapsed())
                });
            }
            let mut slowest = Duration::ZERO;
            while let Some(joined) = lookups.join_next().await {
                let (i, result, took) = joined.unwrap();
                slowest = slowest.max(took);
                match (with_secondary, result) {
                    (false, Err(err)) => {
                        assert_eq!(err.kind(), ErrorKind::Io, "run {run}: {err}");
                        assert_eq!(err.attempts().len(), 1, "run {run}: {err}");
                    }
                    (true, Ok(found)) => assert_eq!(found.ips(), &[v4(i)]),
                    (_, other) => panic!("run {run} (secondary {with_secondary}): {other:?}"),
                }
            }
            let m = r.metrics();
            assert_eq!(m.timeouts, 0, "run {run}: {m:?}");
            assert_eq!(m.lookups, 1000, "run {run}: {m:?}");
            assert!(m.retries <= m.udp_sent, "run {run}: {m:?}");
            if with_secondary {
                assert_eq!(m.answers, 1000, "run {run}: {m:?}");
                // Each lookup moved on at most once (fewer once the
                // primary is marked down and skipped).
                assert!(m.retries <= 1000, "run {run}: {m:?}");
            } else {
                assert_eq!(m.retries, 0, "run {run}: {m:?}");
                assert_eq!(m.failures_of(ErrorKind::Io), 1000, "run {run}: {m:?}");
            }
            // Generous (a loaded CI machine): the timeout is 30 s, and none
            // was waited for. Unloaded, the slowest takes milliseconds.
            assert!(slowest < Duration::from_secs(10), "run {run}: {slowest:?}");
            assert!(started.elapsed() < Duration::from_secs(20), "run {run}");
        }
    }
}

/// Resolves h0 … h1999 all at once with `batching`, checks every answer and
/// that each query reached the server once, then one lookup alone. Returns
/// the resolver's metrics after the burst and after the lone lookup.
async fn burst_then_one(batching: Batching) -> (MetricsSnapshot, MetricsSnapshot) {
    let s = testbed(ZoneConfig {
        hosts: 2_000,
        ..Default::default()
    })
    .await;
    let r = Resolver::new(
        builder(&[&s])
            .ip_strategy(IpStrategy::V4Only)
            .batching(batching)
            .build(),
    )
    .unwrap();
    // Names of 1 to 4 digits: different lengths, one padded size.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..2_000u32 {
        let r = r.clone();
        tasks.spawn(async move { (i, r.lookup(&format!("h{i}.crawl.test"), QueryType::A).await) });
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, got) = joined.unwrap();
        assert_eq!(got.unwrap().ips(), &[v4(i)], "h{i} ({batching:?})");
    }
    let burst = r.metrics();
    assert_eq!(burst.udp_sent, 2_000, "no retries were needed: {burst:?}");
    assert_eq!(burst.mismatched, 0, "{burst:?}");
    // Each query reached the server as its own datagram, once.
    let t = s.counters().totals();
    assert_eq!((t.udp_queries, t.unparsable), (2_000, 0), "{t:?}");

    let one = r.lookup("h1.crawl.test", QueryType::Cname).await;
    assert_eq!(one.unwrap_err().kind(), ErrorKind::NoData);
    let after = r.metrics();
    assert_eq!(after.udp_sent, 2_001);
    (burst, after)
}

/// Started together, batched queries leave in far fewer send calls than
/// there are queries (GSO sends of 8 when busy, up to 32 in bulk; when
/// busy, the first few on each quiet socket leave one by one); unbatched,
/// one call each. One query alone always leaves at once, in its own call.
#[tokio::test]
async fn batching_modes_send_a_burst_in_batches_and_a_lone_query_at_once() {
    for batching in [Batching::Always, Batching::WhenBusy, Batching::Off] {
        let (burst, after) = burst_then_one(batching).await;
        let calls = burst.udp_send_calls;
        if batching == Batching::Off {
            assert_eq!(calls, 2_000);
        } else {
            assert!(
                calls * 4 <= burst.udp_sent,
                "{batching:?}: {calls} send calls"
            );
        }
        assert_eq!(after.udp_send_calls, calls + 1, "{batching:?}");
    }
}

#[tokio::test]
async fn a_hosts_file_answers_before_the_cache_and_the_network() {
    let s = testbed(ZoneConfig::default()).await;
    let path = std::env::temp_dir().join(format!("crawldns-hosts-{}", std::process::id()));
    std::fs::write(
        &path,
        "# test hosts\n10.9.9.9 Pinned.Crawl.Test pinned # comment\n2001:db8::9 pinned.crawl.test\n10.9.9.10 h2.crawl.test\n",
    )
    .unwrap();
    let r = Resolver::new(builder(&[&s]).hosts_file(Some(path.clone())).build()).unwrap();

    let both = r.lookup_ip("PINNED.crawl.test.").await.unwrap();
    let expected: Vec<IpAddr> = vec!["2001:db8::9".parse().unwrap(), "10.9.9.9".parse().unwrap()];
    assert_eq!(&*both.addrs, &expected[..]);
    let alias = r.lookup("pinned", QueryType::A).await.unwrap();
    assert_eq!(alias.ips(), &["10.9.9.9".parse::<IpAddr>().unwrap()]);
    // The file overrides the zone for the family it lists ...
    let h2 = r.lookup("h2.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(h2.ips(), &["10.9.9.10".parse::<IpAddr>().unwrap()]);
    // ... and a family it does not list is asked of DNS.
    r.lookup("h2.crawl.test", QueryType::Aaaa).await.unwrap();
    let counters = s.counters();
    assert_eq!(counters.queries_any("pinned.crawl.test", RecordType::A), 0);
    assert_eq!(
        counters.queries_any("pinned.crawl.test", RecordType::AAAA),
        0
    );
    assert_eq!(counters.queries_any("h2.crawl.test", RecordType::A), 0);
    assert_eq!(counters.queries_any("h2.crawl.test", RecordType::AAAA), 1);
    assert_eq!(r.metrics().udp_sent, 1);

    // Pre-warm has nothing to ask for a name the file answers.
    let report = r
        .prewarm(["pinned.crawl.test"], crawldns::PrewarmOptions::default())
        .await;
    assert_eq!(report.resolved, 1, "{report:?}");
    assert_eq!(r.metrics().udp_sent, 1);

    let missing = builder(&[&s])
        .hosts_file(Some("/nonexistent/hosts".into()))
        .build();
    let err = Resolver::new(missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("/nonexistent/hosts"), "{err}");
    let _ = std::fs::remove_file(path);
}
