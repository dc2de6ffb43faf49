//! The fetch layer against the testbed's DNS server and HTTP farm: limits
//! seen from the server side, error classes, dead hosts, happy eyeballs at
//! connect, and the reqwest and hyper integrations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crawldns::{ErrorKind, IpStrategy, Resolver, ResolverConfig};
use crawldns_fetch::{CrawlConnector, CrawlDnsResolve, ErrorClass, Fetcher, FetcherConfig};
use crawldns_testbed::http_farm::{HttpFarm, HttpFarmConfig};
use crawldns_testbed::{DnsServer, DnsServerConfig, Faults, ZoneConfig};
use hickory_proto::rr::RecordType;

struct Bed {
    dns: DnsServer,
    farm: HttpFarm,
}

async fn bed(hosts: u32, response_delay: Duration) -> Bed {
    let dns = DnsServer::start(DnsServerConfig {
        zone: ZoneConfig {
            hosts,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let farm = HttpFarm::start(HttpFarmConfig {
        hosts,
        response_delay,
        body_size: 2048,
        ..Default::default()
    })
    .await
    .unwrap();
    Bed { dns, farm }
}

fn resolver(dns: &DnsServer) -> Resolver {
    Resolver::new(
        ResolverConfig::builder()
            .nameserver(dns.addr())
            .ip_strategy(IpStrategy::V4Only)
            .timeout(Duration::from_millis(300))
            .build(),
    )
    .unwrap()
}

fn fetcher(dns: &DnsServer, config: FetcherConfig) -> Arc<Fetcher> {
    Arc::new(Fetcher::new(config, Arc::new(resolver(dns))).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_urls_over_200_hosts_within_the_limits() {
    let bed = bed(200, Duration::from_millis(20)).await;
    let f = fetcher(
        &bed.dns,
        FetcherConfig {
            global_connections: 100,
            per_host_connections: 8,
            ..Default::default()
        },
    );
    // Host-major order, so each host gets a burst of 10 at once.
    let urls: Vec<String> = (0..200)
        .flat_map(|h| (0..10).map(move |i| (h, i)))
        .map(|(h, i)| bed.farm.url(h, &format!("/page{i}")))
        .collect();
    let records = f.fetch_all(urls.clone()).await;
    assert_eq!(records.len(), 2000);
    for (record, url) in records.iter().zip(&urls) {
        assert_eq!(&record.url, url);
        assert!(record.is_ok(), "{record:?}");
        assert_eq!(record.status, Some(200));
        assert_eq!(record.bytes, 2048);
        assert!(record.phases.ttfb.is_some());
    }
    let total = bed.farm.total_stats();
    assert_eq!(total.requests, 2000);
    assert!(total.max_concurrent_connections <= 100, "{total:?}");
    let mut busiest = 0;
    for h in 0..200 {
        let stats = bed.farm.host_stats(h).unwrap();
        assert_eq!(stats.requests, 10);
        assert!(stats.max_concurrent_connections <= 8, "host {h}: {stats:?}");
        busiest = busiest.max(stats.max_concurrent_connections);
    }
    assert!(busiest >= 2, "the per-host limit was never even approached");
    // Every request either opened a connection or reused one.
    assert!(total.connections < 2000, "{total:?}");
    let pool = f.pool_stats();
    assert_eq!(pool.opened, total.connections, "{pool:?} vs {total:?}");
    assert_eq!(pool.reused + pool.opened, 2000);
    // Pre-warm resolved every host once: 200 A queries, none later.
    assert_eq!(bed.dns.counters().totals().udp_queries, 200);
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_few_connections() {
    let bed = bed(1, Duration::from_millis(5)).await;
    let f = fetcher(&bed.dns, FetcherConfig::default());
    let urls: Vec<String> = (0..100)
        .map(|i| bed.farm.url(0, &format!("/{i}")))
        .collect();
    let records = f.fetch_all(urls).await;
    assert!(records.iter().all(|r| r.is_ok()));
    let stats = bed.farm.host_stats(0).unwrap();
    assert_eq!(stats.requests, 100);
    assert!(stats.connections <= 8, "{stats:?}");
    assert!(stats.max_concurrent_connections <= 8, "{stats:?}");
    assert!(records.iter().filter(|r| r.reused_connection).count() >= 92);
    let reused = records.iter().find(|r| r.reused_connection).unwrap();
    assert!(
        reused.phases.dns.is_none() && reused.phases.connect.is_none(),
        "{reused:?}"
    );
}

#[tokio::test]
async fn error_classes_are_exact() {
    let bed = bed(10, Duration::ZERO).await;
    let f = fetcher(
        &bed.dns,
        FetcherConfig {
            request_timeout: Duration::from_millis(1500),
            ..Default::default()
        },
    );
    let port = bed.farm.port();

    let nx = f.fetch(&format!("http://nowhere.crawl.test:{port}/")).await;
    assert_eq!(
        nx.error.as_ref().unwrap().class,
        ErrorClass::Dns(ErrorKind::NxDomain),
        "{nx:?}"
    );
    assert!(
        nx.phases.connect.is_none(),
        "no connect after a DNS failure"
    );

    let closed = f.fetch("http://h1.crawl.test:1/").await;
    assert_eq!(
        closed.error.as_ref().unwrap().class,
        ErrorClass::Connect,
        "{closed:?}"
    );
    assert!(closed.phases.dns.is_some());

    let status = f.fetch(&bed.farm.url(2, "/status/500")).await;
    assert_eq!(
        status.error.as_ref().unwrap().class,
        ErrorClass::HttpStatus(500)
    );
    assert_eq!(status.status, Some(500));

    let slow = f.fetch(&bed.farm.url(3, "/slow-body")).await;
    assert_eq!(
        slow.error.as_ref().unwrap().class,
        ErrorClass::Timeout,
        "{slow:?}"
    );
    assert_eq!(slow.status, Some(200), "headers came, the body did not");

    let bad = f.fetch("ftp://h1.crawl.test/").await;
    assert_eq!(bad.error.as_ref().unwrap().class, ErrorClass::Url);
    let bad = f.fetch("not a url").await;
    assert_eq!(bad.error.as_ref().unwrap().class, ErrorClass::Url);

    let capped = Fetcher::new(
        FetcherConfig {
            max_body: 100,
            ..Default::default()
        },
        Arc::new(resolver(&bed.dns)),
    )
    .unwrap();
    let big = capped.fetch(&bed.farm.url(4, "/bytes/5000")).await;
    assert_eq!(
        big.error.as_ref().unwrap().class,
        ErrorClass::Body,
        "{big:?}"
    );

    // The record serializes to the JSON a crawler logs.
    let json = serde_json::to_value(&nx).unwrap();
    assert_eq!(json["error"]["class"], "dns");
    assert_eq!(json["error"]["detail"], "nxdomain");
}

#[tokio::test]
async fn a_dns_timeout_is_a_dns_error() {
    let bed = bed(10, Duration::ZERO).await;
    bed.dns.set_faults(Faults {
        down: true,
        ..Default::default()
    });
    let f = fetcher(&bed.dns, FetcherConfig::default());
    let record = f.fetch(&bed.farm.url(1, "/")).await;
    assert_eq!(
        record.error.unwrap().class,
        ErrorClass::Dns(ErrorKind::Timeout)
    );
}

#[tokio::test]
async fn a_dead_host_fails_fast_without_more_queries() {
    let bed = bed(10, Duration::ZERO).await;
    let f = fetcher(
        &bed.dns,
        FetcherConfig {
            prewarm: false,
            ..Default::default()
        },
    );
    let url = format!("http://dead.crawl.test:{}/", bed.farm.port());
    let first = f.fetch(&url).await;
    assert_eq!(
        first.error.unwrap().class,
        ErrorClass::Dns(ErrorKind::NxDomain)
    );
    let started = Instant::now();
    for _ in 0..20 {
        let again = f.fetch(&url).await;
        assert_eq!(
            again.error.unwrap().class,
            ErrorClass::Dns(ErrorKind::NxDomain)
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "dead host is not fast: {:?}",
        started.elapsed()
    );
    assert_eq!(
        bed.dns
            .counters()
            .queries_any("dead.crawl.test", RecordType::A),
        1
    );
}

#[tokio::test]
async fn per_host_politeness_spaces_requests() {
    let bed = bed(2, Duration::ZERO).await;
    let f = fetcher(
        &bed.dns,
        FetcherConfig {
            per_host_rate: Some(20.0),
            ..Default::default()
        },
    );
    let urls: Vec<String> = (0..6).map(|i| bed.farm.url(0, &format!("/{i}"))).collect();
    let started = Instant::now();
    let records = f.fetch_all(urls).await;
    assert!(records.iter().all(|r| r.is_ok()));
    // 6 starts at 20/s: the last cannot start before 5 × 50 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(240),
        "{:?}",
        started.elapsed()
    );
}

/// A listener whose accept queue is full: further SYNs are dropped, so a
/// connection attempt to it hangs, as to a blackholed address.
fn black_hole(addr: SocketAddr) -> Option<(socket2::Socket, std::net::TcpStream)> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .ok()?;
    socket.bind(&addr.into()).ok()?;
    socket.listen(0).ok()?;
    let filler = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    Some((socket, filler))
}

#[tokio::test]
async fn happy_eyeballs_moves_on_from_a_silent_address() {
    let bed = bed(10, Duration::ZERO).await;
    // h5's AAAA is ::1: make [::1]:port swallow SYNs.
    let Some(_hole) = black_hole(SocketAddr::from((
        [0u16, 0, 0, 0, 0, 0, 0, 1],
        bed.farm.port(),
    ))) else {
        eprintln!("skipped: no IPv6 loopback here to black-hole");
        return;
    };
    let resolver = Resolver::new(
        ResolverConfig::builder()
            .nameserver(bed.dns.addr())
            .ip_strategy(IpStrategy::Both)
            .ipv6_egress(Some(true))
            .resolution_delay(Duration::from_millis(500))
            .build(),
    )
    .unwrap();
    let f = Fetcher::new(FetcherConfig::default(), Arc::new(resolver)).unwrap();
    let record = f.fetch(&bed.farm.url(5, "/")).await;
    assert!(record.is_ok(), "{record:?}");
    let connect = record.phases.connect.unwrap();
    // IPv6 first (silent), IPv4 after the 250 ms attempt delay.
    assert!(connect >= Duration::from_millis(240), "{connect:?}");
    assert!(connect < Duration::from_secs(3), "{connect:?}");
    assert_eq!(bed.farm.host_stats(5).unwrap().requests, 1);
}

#[tokio::test]
async fn reqwest_uses_crawldns() {
    let bed = bed(10, Duration::ZERO).await;
    let resolver = resolver(&bed.dns);
    let client = reqwest::Client::builder()
        .dns_resolver(Arc::new(CrawlDnsResolve::new(resolver.clone())))
        .build()
        .unwrap();
    let response = client.get(bed.farm.url(6, "/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-host-index"], "6");
    assert_eq!(response.bytes().await.unwrap().len(), 2048);
    assert_eq!(resolver.metrics().udp_sent, 1);
    let err = client
        .get(format!("http://nope.crawl.test:{}/", bed.farm.port()))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.is_connect(),
        "reqwest reports resolution failures as connect errors: {err}"
    );
}

#[tokio::test]
async fn hyper_connector_uses_crawldns() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let bed = bed(10, Duration::ZERO).await;
    let resolver = resolver(&bed.dns);
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(CrawlConnector::new(Arc::new(resolver)));
    let response = client
        .get(bed.farm.url(7, "/").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 2048);
    assert_eq!(bed.farm.host_stats(7).unwrap().requests, 1);
}

#[tokio::test]
async fn https_measures_the_tls_phase_and_classifies_tls_failures() {
    let dns = DnsServer::start(DnsServerConfig::default()).await.unwrap();
    let farm = HttpFarm::start(HttpFarmConfig {
        hosts: 4,
        tls: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let ca = farm.ca_pem().unwrap();
    let trusting = Fetcher::new(
        FetcherConfig {
            extra_ca_pem: vec![ca],
            ..Default::default()
        },
        Arc::new(resolver(&dns)),
    )
    .unwrap();
    let url = farm.url(2, "/");
    assert!(url.starts_with("https://h2.crawl.test:"), "{url}");
    let record = trusting.fetch(&url).await;
    assert!(record.is_ok(), "{record:?}");
    assert_eq!(record.status, Some(200));
    assert!(record.phases.tls.is_some(), "{record:?}");
    let again = trusting.fetch(&farm.url(2, "/again")).await;
    assert!(
        again.reused_connection && again.phases.tls.is_none(),
        "{again:?}"
    );

    // Without the testbed's CA the handshake fails: class tls, not connect.
    let web_pki_only = Fetcher::new(FetcherConfig::default(), Arc::new(resolver(&dns))).unwrap();
    let record = web_pki_only.fetch(&farm.url(3, "/")).await;
    assert_eq!(
        record.error.as_ref().unwrap().class,
        ErrorClass::Tls,
        "{record:?}"
    );
    // The farm learns of the failure when it reads the client's alert.
    let deadline = Instant::now() + Duration::from_secs(5);
    while farm.stats().tls_handshake_failures == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(farm.stats().tls_handshake_failures, 1);
}

/// A source fed by a channel, as a pipe or a stream consumer would be.
struct ChannelSource(tokio::sync::mpsc::Receiver<String>);

impl crawldns_fetch::UrlSource for ChannelSource {
    fn next_url(&mut self) -> crawldns_fetch::host_resolver::BoxFuture<'_, Option<String>> {
        Box::pin(self.0.recv())
    }
}

/// Remembers when each record arrived.
struct TimedSink(Vec<(Instant, crawldns_fetch::FetchRecord)>);

impl crawldns_fetch::ResultSink for TimedSink {
    fn record(
        &mut self,
        record: crawldns_fetch::FetchRecord,
    ) -> crawldns_fetch::host_resolver::BoxFuture<'_, std::io::Result<()>> {
        self.0.push((Instant::now(), record));
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn crawl_fetches_a_slow_source_as_it_comes() {
    let bed = bed(5, Duration::ZERO).await;
    let f = fetcher(&bed.dns, FetcherConfig::default());
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    for h in 0..5 {
        tx.send(bed.farm.url(h, "/")).await.unwrap();
    }
    let late = bed.farm.url(4, "/late");
    let started = Instant::now();
    tokio::spawn(async move {
        // The producer pauses long before its last URL and the end.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tx.send(late).await.unwrap();
    });
    let mut sink = TimedSink(Vec::new());
    let summary = f
        .crawl(&mut ChannelSource(rx), &mut sink, 10_000)
        .await
        .unwrap();
    assert_eq!((summary.urls, summary.ok), (6, 6));
    let early = sink
        .0
        .iter()
        .filter(|(at, _)| at.duration_since(started) < Duration::from_millis(1000))
        .count();
    assert_eq!(
        early, 5,
        "the first five were fetched while the producer paused"
    );
    assert!(sink.0.iter().any(|(_, r)| r.url.ends_with("/late")));
}

#[tokio::test]
async fn the_response_reaches_the_caller_whole() {
    let bed = bed(3, Duration::ZERO).await;
    let f = fetcher(&bed.dns, FetcherConfig::default());
    let record = f.fetch(&bed.farm.url(2, "/bytes/3000")).await;
    assert!(record.is_ok(), "{record:?}");
    let response = record.response.as_ref().expect("the response is delivered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.head.version, crawldns_fetch::HttpVersion::Http11);
    assert_eq!(response.head.headers.get("X-Host-Index"), Some("2"));
    assert_eq!(
        response.head.headers.get("content-type"),
        Some("text/plain")
    );
    assert_eq!(response.head.remote_addr, bed.farm.addr(2));
    assert_eq!(response.body, vec![b'x'; 3000]);
    assert_eq!(record.remote_addr, bed.farm.addr(2));
    assert_eq!(record.bytes, 3000);

    // An error status still delivers its response.
    let missing = f.fetch(&bed.farm.url(1, "/status/404")).await;
    assert_eq!(missing.error.unwrap().class, ErrorClass::HttpStatus(404));
    assert_eq!(missing.response.unwrap().body, b"404 Not Found\n");

    // The JSON line carries the metadata, not the body.
    let line = record.to_json_line();
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(json["status"], 200);
    assert_eq!(json["http_version"], "HTTP/1.1");
    assert_eq!(
        json["remote_addr"],
        bed.farm.addr(2).unwrap().to_string().as_str()
    );
    assert!(json.get("response").is_none() && json.get("body").is_none());
}

#[tokio::test]
async fn a_streamed_body_comes_in_chunks_and_frees_the_connection() {
    let bed = bed(1, Duration::ZERO).await;
    let f = fetcher(&bed.dns, FetcherConfig::default());
    let size = 1 << 20;
    let mut stream = f
        .fetch_stream(&bed.farm.url(0, &format!("/bytes/{size}")))
        .await
        .unwrap();
    assert_eq!(stream.head().status, 200);
    let (mut total, mut chunks) = (0usize, 0usize);
    while let Some(chunk) = stream.chunk().await {
        assert!(chunk.iter().all(|b| *b == b'x'));
        total += chunk.len();
        chunks += 1;
    }
    assert_eq!(total, size);
    assert!(chunks >= 16, "{chunks} chunks: the body was not streamed");
    let record = stream.finish();
    assert!(record.is_ok() && record.response.is_none(), "{record:?}");
    assert_eq!(record.bytes, size as u64);
    // The connection went back to the pool: the next fetch reuses it.
    let again = f.fetch(&bed.farm.url(0, "/")).await;
    assert!(again.reused_connection, "{again:?}");
    assert_eq!(bed.farm.host_stats(0).unwrap().connections, 1);

    // A body left unread is a `body` error, and its connection is closed.
    let stream = f
        .fetch_stream(&bed.farm.url(0, "/bytes/100"))
        .await
        .unwrap();
    let abandoned = stream.finish();
    assert_eq!(abandoned.error.unwrap().class, ErrorClass::Body);
}

/// A fixed permutation of `items` (xorshift Fisher-Yates), so a shuffled
/// order is the same on every run.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_survives_the_global_limit() {
    let bed = bed(100, Duration::from_millis(10)).await;
    let f = fetcher(
        &bed.dns,
        FetcherConfig {
            global_connections: 200,
            per_host_connections: 8,
            ..Default::default()
        },
    );
    let mut urls: Vec<String> = (0..100)
        .flat_map(|h| (0..20).map(move |i| (h, i)))
        .map(|(h, i)| bed.farm.url(h, &format!("/page{i}")))
        .collect();
    shuffle(&mut urls, 0x9e37_79b9_7f4a_7c15);
    let records = f.fetch_all(urls).await;
    assert_eq!(records.len(), 2000);
    assert!(records.iter().all(|r| r.is_ok()), "every URL fetched");

    let total = bed.farm.total_stats();
    assert_eq!(total.requests, 2000);
    let reused = total.requests - total.connections;
    eprintln!(
        "server side: {} requests on {} connections ({reused} reused, {:.1}%); pool {:?}",
        total.requests,
        total.connections,
        100.0 * reused as f64 / total.requests as f64,
        f.pool_stats()
    );
    assert!(
        reused * 10 >= total.requests * 7,
        "only {reused} of {} requests reused a connection",
        total.requests
    );
    assert!(total.max_concurrent_connections <= 200, "{total:?}");
    for h in 0..100 {
        let stats = bed.farm.host_stats(h).unwrap();
        assert_eq!(stats.requests, 20, "host {h} progressed: {stats:?}");
        assert!(stats.max_concurrent_connections <= 8, "host {h}: {stats:?}");
    }
    let pool = f.pool_stats();
    assert_eq!(pool.opened, total.connections, "{pool:?} vs {total:?}");
    assert_eq!(pool.reused + pool.opened, 2000, "{pool:?}");
}

#[tokio::test]
async fn compressed_bodies_decode_exactly_and_a_bomb_stops_at_the_cap() {
    use crawldns_testbed::http_farm::text_body;
    let bed = bed(2, Duration::ZERO).await;
    let f = fetcher(
        &bed.dns,
        FetcherConfig {
            max_body: 1 << 20,
            keep_wire_body: true,
            ..Default::default()
        },
    );
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let path = format!("/enc/{coding}/100000");
        let record = f.fetch(&bed.farm.url(1, &path)).await;
        assert!(record.is_ok(), "{coding}: {record:?}");
        let response = record.response.unwrap();
        assert_eq!(response.head.headers.get("content-encoding"), Some(coding));
        assert_eq!(response.body, text_body(100_000), "{coding}");
        assert_eq!(record.bytes, 100_000);
        let (_, _, sent) = bed.farm.reply_for(&path).unwrap();
        assert!(sent.len() < 40_000, "{coding} compresses");
        assert_eq!(response.wire_body.as_deref(), Some(&sent[..]), "{coding}");
        assert_eq!(response.payload(), Some(&sent[..]));

        // 8 MiB of zeros in a few KiB: decoding stops at the 1 MiB cap.
        let bomb = f
            .fetch(&bed.farm.url(0, &format!("/bomb/{coding}/{}", 8 << 20)))
            .await;
        let error = bomb.error.as_ref().expect("the bomb is stopped");
        assert_eq!(error.class, ErrorClass::Body, "{coding}: {bomb:?}");
        assert!(error.message.contains("cap"), "{error:?}");
        assert_eq!(bomb.bytes, 1 << 20);
    }
    // The fetcher asked for every coding it decodes.
    assert_eq!(crawldns_fetch::ACCEPT_ENCODING, "gzip, br, zstd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_origin_fails_fast_after_k_connect_timeouts() {
    let hole = crawldns_testbed::BlackHole::bind("127.0.88.1:0".parse().unwrap()).unwrap();
    let dns = DnsServer::start(DnsServerConfig::default()).await.unwrap();
    let f = fetcher(
        &dns,
        FetcherConfig {
            connect_timeout: Duration::from_secs(2),
            per_host_connections: 8,
            ..Default::default()
        },
    );
    let urls: Vec<String> = (0..200)
        .map(|i| format!("http://{}/p{i}", hole.addr()))
        .collect();
    let started = Instant::now();
    let records = f.fetch_all(urls).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(6),
        "200 URLs took {elapsed:?}: more than 3 connect timeouts"
    );
    let class_count = |class: ErrorClass| {
        records
            .iter()
            .filter(|r| r.error.as_ref().map(|e| e.class) == Some(class))
            .count()
    };
    let timeouts = class_count(ErrorClass::Timeout);
    let down = class_count(ErrorClass::HostDown);
    assert_eq!(timeouts + down, 200, "{records:?}");
    // The first wave (one attempt per connection slot, 8) times out
    // together; a slot freed by the first or second failure (before K = 3
    // is reached) may start one more attempt; then the breaker is open and
    // everything else fails at once: at most 8 + K - 1 timeouts.
    assert!((3..=10).contains(&timeouts), "{timeouts} connect timeouts");
    let stats = f.host_down_stats();
    assert_eq!(stats.marked_down, 1, "{stats:?}");
    assert_eq!(stats.rejected, down as u64);
    assert_eq!(stats.down_now, 1);
    let first_down = records
        .iter()
        .find(|r| {
            r.error
                .as_ref()
                .is_some_and(|e| e.class == ErrorClass::HostDown)
        })
        .unwrap();
    assert!(first_down.phases.connect.is_none(), "no connect attempt");
    let json: serde_json::Value = serde_json::from_str(&first_down.to_json_line()).unwrap();
    assert_eq!(json["error"]["class"], "host_down");
}

#[tokio::test]
async fn a_refused_origin_that_comes_back_is_fetched_after_its_cool_down() {
    let dns = DnsServer::start(DnsServerConfig::default()).await.unwrap();
    let farm = HttpFarm::start(HttpFarmConfig {
        hosts: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let port = farm.port();
    let url = farm.url_by_ip(0, "/").unwrap();
    farm.shutdown().await;
    let cool_down = Duration::from_millis(300);
    let f = fetcher(
        &dns,
        FetcherConfig {
            host_down: crawldns_fetch::BreakerPolicy {
                cool_down,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let class = |r: &crawldns_fetch::FetchRecord| r.error.as_ref().map(|e| e.class);
    for _ in 0..3 {
        assert_eq!(class(&f.fetch(&url).await), Some(ErrorClass::Connect));
    }
    let started = Instant::now();
    let down = f.fetch(&url).await;
    assert_eq!(class(&down), Some(ErrorClass::HostDown), "{down:?}");
    assert!(started.elapsed() < Duration::from_millis(100));

    // The host comes back on the same address; after the cool-down one
    // probe gets through and closes the breaker.
    let farm = HttpFarm::start(HttpFarmConfig {
        hosts: 1,
        port,
        ..Default::default()
    })
    .await
    .unwrap();
    tokio::time::sleep(cool_down).await;
    let back = f.fetch(&url).await;
    assert!(back.is_ok(), "{back:?}");
    assert!(f.fetch(&url).await.is_ok());
    assert_eq!(farm.total_stats().requests, 2);
    assert_eq!(f.host_down_stats().down_now, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_requests_to_an_h2_origin_share_one_connection() {
    let dns = DnsServer::start(DnsServerConfig::default()).await.unwrap();
    let farm = HttpFarm::start(HttpFarmConfig {
        hosts: 2,
        tls: true,
        h2: true,
        response_delay: Duration::from_millis(5),
        ..Default::default()
    })
    .await
    .unwrap();
    let f = Fetcher::new(
        FetcherConfig {
            extra_ca_pem: vec![farm.ca_pem().unwrap()],
            per_host_connections: 8,
            ..Default::default()
        },
        Arc::new(resolver(&dns)),
    )
    .unwrap();
    let urls: Vec<String> = (0..500).map(|i| farm.url(1, &format!("/p{i}"))).collect();
    let f = Arc::new(f);
    let records = f.fetch_all(urls).await;
    for record in &records {
        assert!(record.is_ok(), "{record:?}");
        assert_eq!(
            record.http_version,
            Some(crawldns_fetch::HttpVersion::Http2)
        );
        assert_eq!(record.bytes, 1024);
    }
    let stats = farm.host_stats(1).unwrap();
    assert_eq!(stats.requests, 500);
    assert_eq!(stats.connections, 1, "{stats:?}");
    assert_eq!(farm.stats().tls_handshakes, 1);
    let pool = f.pool_stats();
    assert_eq!((pool.opened, pool.reused), (1, 499), "{pool:?}");
    // A compressed body over HTTP/2 decodes the same.
    let record = f.fetch(&farm.url(1, "/enc/br/5000")).await;
    assert_eq!(
        record.response.unwrap().body,
        crawldns_testbed::http_farm::text_body(5000)
    );
}

#[tokio::test]
async fn retries_are_opt_in_and_every_attempt_is_in_the_record() {
    let bed = bed(2, Duration::ZERO).await;
    let retrying = fetcher(
        &bed.dns,
        FetcherConfig {
            retry: crawldns_fetch::RetryPolicy {
                retries: 2,
                base: Duration::from_millis(10),
                max: Duration::from_millis(50),
            },
            ..Default::default()
        },
    );
    // 503 is transient: three attempts in all, the last one kept.
    let record = retrying.fetch(&bed.farm.url(0, "/status/503")).await;
    assert_eq!(
        record.error.as_ref().unwrap().class,
        ErrorClass::HttpStatus(503)
    );
    assert_eq!(record.retries.len(), 2, "{record:?}");
    assert!(record.retries.iter().all(|r| r.status == Some(503)));
    assert!(record
        .retries
        .iter()
        .all(|r| r.wait <= Duration::from_millis(50)));
    assert_eq!(bed.farm.host_stats(0).unwrap().requests, 3);
    let json: serde_json::Value = serde_json::from_str(&record.to_json_line()).unwrap();
    assert_eq!(json["retries"][0]["error"]["detail"], 503);

    // 404 never is.
    let missing = retrying.fetch(&bed.farm.url(1, "/status/404")).await;
    assert!(missing.retries.is_empty());
    assert_eq!(bed.farm.host_stats(1).unwrap().requests, 1);

    // Off by default: one attempt, no "retries" in the JSON line.
    let plain = fetcher(&bed.dns, FetcherConfig::default());
    let once = plain.fetch(&bed.farm.url(0, "/status/503")).await;
    assert!(once.retries.is_empty());
    assert_eq!(bed.farm.host_stats(0).unwrap().requests, 4);
    assert!(!once.to_json_line().contains("retries"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_txt_is_fetched_once_per_origin_and_obeyed() {
    let bed = bed(20, Duration::ZERO).await;
    let config = FetcherConfig {
        robots: true,
        ..Default::default()
    };
    let f = fetcher(&bed.dns, config.clone());
    let urls = vec![
        bed.farm.url(1, "/page"),
        bed.farm.url(1, "/private/secret"),
        bed.farm.url(1, "/page2"),
        // robots.txt answers 503: everything disallowed.
        bed.farm.url(8, "/page"),
        // robots.txt answers 404: everything allowed.
        bed.farm.url(9, "/page"),
        bed.farm.url(9, "/private/open"),
    ];
    let records = f.fetch_all(urls).await;
    let outcome: Vec<(Option<u16>, Option<ErrorClass>)> = records
        .iter()
        .map(|r| (r.status, r.error.as_ref().map(|e| e.class)))
        .collect();
    assert_eq!(
        outcome,
        [
            (Some(200), None),
            (None, Some(ErrorClass::Robots)),
            (Some(200), None),
            (None, Some(ErrorClass::Robots)),
            (Some(200), None),
            (Some(200), None),
        ]
    );
    let message = &records[3].error.as_ref().unwrap().message;
    assert!(message.contains("robots.txt answered 503"), "{message}");
    // One robots.txt per origin, through the same limits; nothing
    // disallowed was asked for.
    let requests = |h| bed.farm.host_stats(h).unwrap().requests;
    assert_eq!((requests(1), requests(8), requests(9)), (3, 1, 3));

    // Crawl-delay 0.05 s: ten pages of one host take at least 9 gaps.
    let f = fetcher(&bed.dns, config.clone());
    f.fetch_all(vec![bed.farm.url(2, "/warm")]).await;
    let started = Instant::now();
    let pages: Vec<String> = (0..10)
        .map(|i| bed.farm.url(2, &format!("/p{i}")))
        .collect();
    let records = f.fetch_all(pages).await;
    assert!(records.iter().all(|r| r.is_ok()), "{records:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );

    // Another agent is disallowed everything by the same file.
    let f = fetcher(
        &bed.dns,
        FetcherConfig {
            user_agent: "OtherBot/1.0".into(),
            ..config
        },
    );
    let record = f.fetch(&bed.farm.url(3, "/page")).await;
    assert_eq!(record.error.map(|e| e.class), Some(ErrorClass::Robots));
    assert_eq!(requests(3), 1, "only robots.txt");
}
