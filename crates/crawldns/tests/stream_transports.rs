//! The resolver over its stream transports, against the testbed's TCP, DoT
//! and DoH listeners: the answers, the connections the server counted, the
//! certificate failures and their error kind, and no query ever in the
//! clear for an encrypted server.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crawldns::{ErrorKind, NameServer, Protocol, QueryType, Resolver, ResolverConfig};
use crawldns_testbed::{host_v4, DnsServer, DnsServerConfig, Transport, ZoneConfig};
use tokio::task::JoinSet;

async fn testbed(hosts: u32) -> DnsServer {
    DnsServer::start(DnsServerConfig {
        zone: ZoneConfig {
            hosts,
            ..Default::default()
        },
        dot_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        doh_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Default::default()
    })
    .await
    .expect("testbed starts")
}

/// The testbed's CA in a file, as a user would pass it (`--ca-file`).
fn ca_file(s: &DnsServer, tag: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("crawldns-ca-{}-{tag}.pem", std::process::id()));
    std::fs::write(&path, s.tls().expect("TLS on").ca_pem()).unwrap();
    path
}

/// The server of `s` for `protocol`, its certificate checked against
/// `tls_name`.
fn server(s: &DnsServer, protocol: Protocol, tls_name: &str) -> NameServer {
    let addr = match protocol {
        Protocol::Udp | Protocol::Tcp => s.addr(),
        Protocol::Tls => s.dot_addr().unwrap(),
        Protocol::Https => s.doh_addr().unwrap(),
    };
    NameServer {
        tls_name: protocol.is_encrypted().then(|| tls_name.to_owned()),
        ..NameServer::new(addr, protocol)
    }
}

/// A resolver with `server` alone, trusting `ca`, no cache. Timeouts are
/// generous (5 s, not adapting below): on a busy two-core machine a debug
/// build with 500 lookups in flight can take over the adaptive 250 ms, and
/// a retry would blur the counts these tests compare.
fn resolver(server: NameServer, ca: Option<PathBuf>) -> Resolver {
    Resolver::new(
        ResolverConfig::builder()
            .push_nameserver(server)
            .ca_file(ca)
            .timeout(Duration::from_secs(5))
            .min_timeout(Duration::from_secs(5))
            .cache(None)
            .ipv6_egress(Some(false))
            .build(),
    )
    .expect("resolver")
}

fn testbed_transport(protocol: Protocol) -> Transport {
    match protocol {
        Protocol::Udp => Transport::Udp,
        Protocol::Tcp => Transport::Tcp,
        Protocol::Tls => Transport::Tls,
        Protocol::Https => Transport::Https,
    }
}

/// Looks up h0..h{n} (A), 500 at a time, and checks every answer.
async fn resolve_all(r: &Resolver, n: u32) {
    let mut set = JoinSet::new();
    let mut next = 0;
    let mut done = 0;
    while done < n {
        while next < n && set.len() < 500 {
            let r = r.clone();
            let i = next;
            set.spawn(
                async move { (i, r.lookup(&format!("h{i}.crawl.test"), QueryType::A).await) },
            );
            next += 1;
        }
        let (i, result) = set.join_next().await.unwrap().unwrap();
        let lookup = result.unwrap_or_else(|e| panic!("h{i}: {e}"));
        assert_eq!(lookup.ips(), &[IpAddr::V4(host_v4(i).unwrap())], "h{i}");
        done += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_lookups_over_tcp_dot_and_doh_use_at_most_four_connections_each() {
    const N: u32 = 10_000;
    let s = testbed(N).await;
    let ca = ca_file(&s, "ten-thousand");
    for protocol in [Protocol::Tcp, Protocol::Tls, Protocol::Https] {
        let r = resolver(server(&s, protocol, "dns.crawl.test"), Some(ca.clone()));
        resolve_all(&r, N).await;
        let m = r.metrics();
        let sent = match protocol {
            Protocol::Tcp => m.tcp_sent,
            Protocol::Tls => m.tls_sent,
            _ => m.https_sent,
        };
        assert_eq!(
            (sent, m.answers, m.udp_sent),
            (u64::from(N), u64::from(N), 0),
            "{protocol:?}: {m:?}"
        );
        let transport = testbed_transport(protocol);
        let connections = s.counters().connection_count(transport);
        assert!(
            (1..=4).contains(&connections),
            "{protocol:?}: {connections} connections"
        );
        assert_eq!(m.connections_opened, connections, "{protocol:?}");
        assert_eq!(
            s.counters().connection_queries(transport),
            u64::from(N),
            "{protocol:?}: server-side queries"
        );
    }
    assert_eq!(s.counters().totals().udp_queries, 0);
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn untrusted_and_misnamed_certificates_fail_with_their_own_kind_and_never_in_the_clear() {
    let s = testbed(10).await;
    let ca = ca_file(&s, "certificates");
    for protocol in [Protocol::Tls, Protocol::Https] {
        // The testbed's CA is not among the webpki roots.
        let untrusted = resolver(server(&s, protocol, "dns.crawl.test"), None);
        // Trusted, but the leaf is for *.crawl.test, localhost, 127.0.0.1.
        let misnamed = resolver(server(&s, protocol, "dns.example"), Some(ca.clone()));
        for (what, r) in [("untrusted", &untrusted), ("misnamed", &misnamed)] {
            let err = r.lookup("h1.crawl.test", QueryType::A).await.unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::Certificate,
                "{protocol:?} {what}: {err}"
            );
            let detail = err.detail().unwrap_or_default().to_owned();
            let expected = if what == "untrusted" {
                "UnknownIssuer"
            } else {
                "not valid for name \"dns.example\""
            };
            assert!(detail.contains(expected), "{protocol:?} {what}: {detail}");
            let m = r.metrics();
            assert_eq!(
                (m.udp_sent, m.tcp_sent, m.answers),
                (0, 0, 0),
                "{protocol:?} {what}"
            );
        }
        // The address itself is a name the leaf is valid for.
        let by_address = resolver(server(&s, protocol, "127.0.0.1"), Some(ca.clone()));
        let ok = by_address
            .lookup("h1.crawl.test", QueryType::A)
            .await
            .unwrap();
        assert_eq!(ok.ips(), &[IpAddr::V4(host_v4(1).unwrap())]);
    }
    let totals = s.counters().totals();
    assert_eq!((totals.udp_queries, totals.tcp_queries), (0, 0));
    assert_eq!((totals.tls_queries, totals.https_queries), (1, 1));
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn a_list_may_mix_transports_and_a_bad_ca_file_is_a_configuration_error() {
    let s = testbed(10).await;
    let ca = ca_file(&s, "mixed");
    let r = Resolver::new(
        ResolverConfig::builder()
            .nameserver_url(
                &format!("tls://{}", s.dot_addr().unwrap()),
                Some("dns.crawl.test"),
            )
            .unwrap()
            .nameserver_url(
                &format!("https://{}/dns-query", s.doh_addr().unwrap()),
                Some("dns.crawl.test"),
            )
            .unwrap()
            .nameserver_url(&format!("tcp://{}", s.addr()), None)
            .unwrap()
            .ca_file(Some(ca.clone()))
            .cache(None)
            .build(),
    )
    .unwrap();
    let urls: Vec<String> = r.config().nameservers.iter().map(NameServer::url).collect();
    assert_eq!(
        urls,
        [
            format!("tls://{}", s.dot_addr().unwrap()),
            format!("https://{}/dns-query", s.doh_addr().unwrap()),
            format!("tcp://{}", s.addr()),
        ]
    );
    let a = r.lookup("h3.crawl.test", QueryType::A).await.unwrap();
    assert_eq!(a.ips(), &[IpAddr::V4(host_v4(3).unwrap())]);

    let missing = ResolverConfig::builder()
        .nameserver_url(&format!("tls://{}", s.dot_addr().unwrap()), None)
        .unwrap()
        .ca_file(Some(PathBuf::from("/nonexistent/ca.pem")))
        .build();
    let err = Resolver::new(missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

    let junk = std::env::temp_dir().join(format!("crawldns-junk-ca-{}.pem", std::process::id()));
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let err = Resolver::new(
        ResolverConfig::builder()
            .nameserver_url(&format!("tls://{}", s.dot_addr().unwrap()), None)
            .unwrap()
            .ca_file(Some(junk.clone()))
            .build(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");

    let err = ResolverConfig::builder()
        .nameserver_url("tls://dns.example", None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let _ = std::fs::remove_file(ca);
    let _ = std::fs::remove_file(junk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_udp_answers_share_a_few_pipelined_tcp_connections() {
    let s = DnsServer::start(DnsServerConfig {
        zone: ZoneConfig {
            hosts: 1000,
            ..Default::default()
        },
        faults: crawldns_testbed::Faults {
            truncate: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let r = resolver(server(&s, Protocol::Udp, ""), None);
    resolve_all(&r, 1000).await;
    let m = r.metrics();
    assert_eq!((m.truncated, m.tcp_sent), (1000, 1000), "{m:?}");
    let connections = s.counters().connection_count(Transport::Tcp);
    assert!(
        (1..=4).contains(&connections),
        "{connections} TCP connections for 1000 truncated answers"
    );
}

/// Looks up h0..h{n} (A), 100 at a time, and returns how many were answered
/// (each answer checked) and the kinds of the failures, sorted.
async fn outcomes(r: &Resolver, n: u32) -> (u32, Vec<ErrorKind>) {
    let mut set = JoinSet::new();
    let (mut next, mut answered, mut failed) = (0, 0, Vec::new());
    while next < n || !set.is_empty() {
        while next < n && set.len() < 100 {
            let r = r.clone();
            let i = next;
            set.spawn(
                async move { (i, r.lookup(&format!("h{i}.crawl.test"), QueryType::A).await) },
            );
            next += 1;
        }
        match set.join_next().await.unwrap().unwrap() {
            (i, Ok(lookup)) => {
                assert_eq!(lookup.ips(), &[IpAddr::V4(host_v4(i).unwrap())], "h{i}");
                answered += 1;
            }
            (_, Err(e)) => failed.push(e.kind()),
        }
    }
    failed.sort_by_key(|k| k.index());
    (answered, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_close_or_stall_connections_end_every_lookup_rightly() {
    use crawldns_testbed::Faults;
    let s = testbed(2000).await;
    let ca = ca_file(&s, "faults");
    for protocol in [Protocol::Tcp, Protocol::Tls, Protocol::Https] {
        // Closing every connection after 7 answers: every lookup answered,
        // the queries of a closed connection asked again on a new one.
        s.set_faults(Faults {
            close_after: Some(7),
            ..Faults::default()
        });
        let r = resolver(server(&s, protocol, "dns.crawl.test"), Some(ca.clone()));
        let (answered, failed) = outcomes(&r, 2000).await;
        assert_eq!((answered, failed), (2000, vec![]), "{protocol:?} closing");
        let opened = r.metrics().connections_opened;
        // HTTP/2 answers many queries at once on a connection: how many
        // connections 2000 lookups took depends on timing, but more than one.
        assert!(opened > 1, "{protocol:?}: {opened} connections");
        if protocol != Protocol::Https {
            assert!(opened >= 2000 / 7, "{protocol:?}: {opened} connections");
        }

        // Stalling every connection after 5 answers: each lookup is answered
        // or times out, in bounded time; none hangs.
        s.set_faults(Faults {
            stall_after: Some(5),
            ..Faults::default()
        });
        let r = Resolver::new(
            ResolverConfig::builder()
                .push_nameserver(server(&s, protocol, "dns.crawl.test"))
                .ca_file(Some(ca.clone()))
                .cache(None)
                .timeout(Duration::from_millis(300))
                .min_timeout(Duration::from_millis(300))
                .attempts(2)
                .build(),
        )
        .unwrap();
        let started = Instant::now();
        let (answered, failed) = outcomes(&r, 300).await;
        let took = started.elapsed();
        assert_eq!(answered + failed.len() as u32, 300, "{protocol:?} stalling");
        assert!(answered >= 5, "{protocol:?}: {answered} answered");
        assert!(
            failed.iter().all(|k| *k == ErrorKind::Timeout),
            "{protocol:?}: {failed:?}"
        );
        // 300 lookups, 100 at a time, each at most 2 × 300 ms: far below.
        assert!(
            took < Duration::from_secs(30),
            "{protocol:?}: took {took:?}"
        );
    }
    s.set_faults(Faults::default());
    let _ = std::fs::remove_file(ca);
}
