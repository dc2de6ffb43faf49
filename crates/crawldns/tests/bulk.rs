//! `Resolver::bulk` against the testbed: the same answers as `lookup`, one
//! query per name when nothing is lost, every name answered under loss,
//! and the names it leaves to the resolver's own path (IP literals, upper
//! case, PTR) answered there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crawldns::{ErrorKind, Lookup, QueryType, Resolver};
use crawldns_testbed::{host_v4, Faults};
use crawldns_testkit::fault_matrix as matrix;

/// Pushes every `(tag, name)`, keeping at most `window` in flight, and
/// collects every result by tag.
async fn run_bulk(
    resolver: &Resolver,
    names: &[(u64, String, QueryType)],
    window: usize,
) -> HashMap<u64, Result<Lookup, crawldns::Error>> {
    let mut bulk = resolver.bulk();
    let mut results = HashMap::new();
    for (tag, name, query_type) in names {
        while bulk.len() >= window {
            let (tag, result) = bulk.next().await.expect("a result is pending");
            assert!(results.insert(tag, result).is_none(), "tag {tag} twice");
        }
        bulk.push(*tag, name, *query_type);
    }
    while let Some((tag, result)) = bulk.next().await {
        assert!(results.insert(tag, result).is_none(), "tag {tag} twice");
    }
    assert!(bulk.is_empty());
    results
}

/// Tags 0..n asking A of `h<tag>.crawl.test`.
fn host_lookups(n: u64) -> Vec<(u64, String, QueryType)> {
    (0..n)
        .map(|i| (i, format!("h{i}.crawl.test"), QueryType::A))
        .collect()
}

fn v4(i: u32) -> IpAddr {
    IpAddr::V4(host_v4(i).unwrap())
}

/// Tags 0..n are `h<tag>.crawl.test`, each answered with its address.
fn assert_hosts_answered(results: &HashMap<u64, Result<Lookup, crawldns::Error>>, n: u64) {
    for i in 0..n {
        let got = results[&i].as_ref().map(|l| l.ips().to_vec());
        assert_eq!(
            got.as_ref().ok(),
            Some(&vec![v4(i as u32)]),
            "h{i}: {:?}",
            results[&i]
        );
        assert_eq!(
            results[&i].as_ref().unwrap().name(),
            format!("h{i}.crawl.test")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_answers_as_lookup_does_with_one_query_per_name() {
    let s = matrix::server(2000, Duration::ZERO, Faults::default()).await;
    let r = Resolver::new(matrix::config(&[s.addr()]).build()).unwrap();
    let mut names: Vec<(u64, String, QueryType)> = host_lookups(2000);
    // Not in the zone: NXDOMAIN.
    names.extend((0..50u64).map(|i| (10_000 + i, format!("nope{i}.crawl.test"), QueryType::A)));
    // Left to `lookup`: an IP literal, upper case, a final dot, a PTR.
    names.push((20_000, "192.0.2.7".into(), QueryType::A));
    names.push((20_001, "H3.Crawl.Test".into(), QueryType::A));
    names.push((20_002, "h4.crawl.test.".into(), QueryType::A));
    names.push((20_003, "bad..name".into(), QueryType::A));
    let results = run_bulk(&r, &names, 300).await;
    assert_eq!(results.len(), names.len());
    assert_hosts_answered(&results, 2000);
    for i in 0..50u64 {
        let err = results[&(10_000 + i)].as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NxDomain, "nope{i}: {err}");
    }
    let literal = results[&20_000].as_ref().unwrap();
    assert_eq!(
        literal.ips().to_vec(),
        ["192.0.2.7".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(results[&20_001].as_ref().unwrap().ips().to_vec(), [v4(3)]);
    assert_eq!(results[&20_002].as_ref().unwrap().ips().to_vec(), [v4(4)]);
    assert_eq!(
        results[&20_003].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidName
    );
    // One query per name asked of the server: 2,000 + 50 + the two
    // normalized names; none for the literal or the invalid name.
    let totals = s.counters().totals();
    assert_eq!(totals.udp_queries, 2052);
    let m = r.metrics();
    assert_eq!((m.retries, m.timeouts), (0, 0), "{m:?}");
    assert_eq!(m.lookups, names.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_loss_every_name_is_answered_and_retries_are_counted() {
    let s = matrix::server(
        1000,
        Duration::ZERO,
        Faults {
            drop_fraction: 0.1,
            ..Faults::default()
        },
    )
    .await;
    let r = Resolver::new(
        matrix::config(&[s.addr()])
            .timeout(Duration::from_millis(400))
            .min_timeout(Duration::from_millis(200))
            .attempts(8)
            .build(),
    )
    .unwrap();
    let names: Vec<(u64, String, QueryType)> = host_lookups(1000);
    let results = run_bulk(&r, &names, 200).await;
    assert_hosts_answered(&results, 1000);
    let totals = s.counters().totals();
    let m = r.metrics();
    // Every query the server got was one the resolver sent, and each lost
    // one was asked again: queries = names + retries.
    assert_eq!(totals.udp_queries, 1000 + m.retries);
    // Only timeouts lead to retries here, and every lost query timed out.
    assert!(totals.dropped > 0);
    assert_eq!(m.timeouts, m.retries);
    assert!(m.retries >= totals.dropped, "{m:?} {totals:?}");
    assert_eq!(m.udp_sent, totals.udp_queries);
}

/// More lookups at once than a server's half of the ID space (32,768):
/// the rest wait their turn. Every one is answered; the burst may overflow
/// the server's socket, so some are asked again, and every query the
/// server got was a lookup's first or a counted retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_lookups_at_once_than_query_ids_wait_their_turn() {
    let s = matrix::server(40_000, Duration::ZERO, Faults::default()).await;
    let r = Resolver::new(
        matrix::config(&[s.addr()])
            .timeout(Duration::from_secs(1))
            .min_timeout(Duration::from_secs(1))
            .attempts(4)
            .build(),
    )
    .unwrap();
    let names: Vec<(u64, String, QueryType)> = host_lookups(40_000);
    let results = run_bulk(&r, &names, names.len()).await;
    assert_hosts_answered(&results, 40_000);
    let m = r.metrics();
    let queries = s.counters().totals().udp_queries;
    assert!(queries <= 40_000 + m.retries, "{queries} queries, {m:?}");
    assert_eq!(m.udp_sent, 40_000 + m.retries);
}
