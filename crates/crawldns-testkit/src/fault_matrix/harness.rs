//! What every scenario shares: testbed servers, the resolver config, and
//! running the lookups (a bounded number at once) into a [`Row`].

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crawldns::{
    Error, IpStrategy, Lookup, QueryType, Resolver, ResolverConfig, ResolverConfigBuilder,
};
use crawldns_sys::bounded::BoundedSet;
use crawldns_testbed::{host_v4, Delay, DnsServer, DnsServerConfig, Faults, ZoneConfig};

use super::row::{Expect, Row};

/// Lookups in flight at once, as a crawler's pre-warm would run them.
pub const CONCURRENCY: usize = 200;

/// The address the testbed gives host `n`.
pub fn v4(n: u32) -> IpAddr {
    IpAddr::V4(host_v4(n).expect("host index in range"))
}

/// `count` host names with their addresses.
pub fn hosts(count: u32) -> Vec<(String, Expect)> {
    (0..count)
        .map(|i| (format!("h{i}.crawl.test"), Expect::Addrs(vec![v4(i)])))
        .collect()
}

/// A testbed server on 127.0.0.1 (a free port) serving `hosts` hosts.
pub async fn server(hosts: u32, delay: Duration, faults: Faults) -> DnsServer {
    DnsServer::start(DnsServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        zone: ZoneConfig {
            hosts,
            ..Default::default()
        },
        delay: Delay::uniform(delay),
        faults,
        ..DnsServerConfig::default()
    })
    .await
    .expect("testbed starts")
}

/// A resolver config over `servers`, A-only, no cache (every lookup is a
/// wire lookup), long probe interval (no background traffic in the counts),
/// and a fixed 2 s timeout (the adaptive one would shrink to 250 ms, and a
/// loaded test machine can stall that long: the counts must be exact).
pub fn config(servers: &[SocketAddr]) -> ResolverConfigBuilder {
    servers
        .iter()
        .fold(ResolverConfig::builder(), |b, s| b.nameserver(*s))
        .ip_strategy(IpStrategy::V4Only)
        .ipv6_egress(Some(false))
        .cache(None)
        .timeout(Duration::from_secs(2))
        .min_timeout(Duration::from_secs(2))
        .probe_interval(Duration::from_secs(3600))
}

/// Runs every lookup (`CONCURRENCY` at a time) and fills in a row.
pub async fn run(
    scenario: &'static str,
    setup: String,
    resolver: &Resolver,
    names: Vec<(String, Expect)>,
    servers: &[&DnsServer],
) -> Row {
    let started = Instant::now();
    let mut row = Row {
        scenario,
        setup,
        ..Default::default()
    };
    let mut tasks = BoundedSet::new(CONCURRENCY);
    for (name, expect) in names {
        let resolver = resolver.clone();
        let finished = tasks
            .spawn(async move {
                let t = Instant::now();
                let got = resolver.lookup(&name, QueryType::A).await;
                Finished {
                    name,
                    expect,
                    got,
                    took: t.elapsed(),
                }
            })
            .await;
        if let Some(joined) = finished {
            record(&mut row, joined.expect("lookup task"));
        }
    }
    while let Some(joined) = tasks.join_next().await {
        record(&mut row, joined.expect("lookup task"));
    }
    row.elapsed = started.elapsed();
    let m = resolver.metrics();
    row.udp_sent = m.udp_sent;
    row.tcp_sent = m.tcp_sent;
    row.retries = m.retries;
    row.timeouts = m.timeouts;
    row.mismatched = m.mismatched;
    row.truncated = m.truncated;
    row.server_queries = servers
        .iter()
        .map(|s| {
            let t = s.counters().totals();
            t.udp_queries + t.tcp_queries
        })
        .collect();
    row
}

/// One finished lookup.
struct Finished {
    name: String,
    expect: Expect,
    got: Result<Lookup, Error>,
    took: Duration,
}

/// Counts one finished lookup into `row`, noting what violates its
/// expectation.
fn record(row: &mut Row, done: Finished) {
    let Finished {
        name,
        expect,
        got,
        took,
    } = done;
    row.lookups += 1;
    row.slowest = row.slowest.max(took);
    match (&expect, got) {
        (Expect::Addrs(want), Ok(lookup)) => {
            let mut have = lookup.ips().to_vec();
            let mut want = want.clone();
            have.sort();
            want.sort();
            if have == want {
                row.correct += 1;
            } else {
                row.wrong += 1;
                row.failures
                    .push(format!("{name}: {have:?} instead of {want:?}"));
            }
        }
        (Expect::Error(_), Ok(lookup)) => {
            row.wrong += 1;
            row.failures.push(format!(
                "{name}: answered {:?}, expected an error",
                lookup.ips()
            ));
        }
        (expect, Err(err)) => {
            *row.errors.entry(err.kind().as_str()).or_default() += 1;
            if *expect == Expect::Error(err.kind()) {
                row.correct += 1;
            } else if row.failures.len() < 5 {
                row.failures.push(format!("{name}: {err}"));
            }
            // A clear error: it names the lookup and, unless the name's
            // authority answered (NXDOMAIN/NODATA), the servers tried.
            let text = err.to_string();
            let unclear = !text.contains(&name)
                || (err.attempts().is_empty() && !err.kind().is_authoritative_negative());
            if unclear && row.failures.len() < 5 {
                row.failures.push(format!("unclear error: {text}"));
            }
        }
    }
}
