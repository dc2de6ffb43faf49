//! The fault matrix: crawldns against misbehaving servers, one scenario per
//! row, every answer checked against the address the testbed assigns.
//!
//! ```sh
//! cargo run --release -p crawldns --example fault_matrix
//! ```
//!
//! prints the markdown table in RELIABILITY.md. The same scenarios, with
//! the same checks, are the tests in `tests/fault_matrix.rs` (which includes
//! this file).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crawldns::{ErrorKind, IpStrategy, QueryType, Resolver, ResolverConfig, ResolverConfigBuilder};
use crawldns_testbed::{
    host_v4, Delay, DnsServer, DnsServerConfig, Faults, RcodeFault, ZoneConfig,
};
use tokio::net::UdpSocket;

/// What a lookup should come back with.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Exactly these addresses, in any order.
    Addrs(Vec<IpAddr>),
    /// This error kind.
    Error(ErrorKind),
}

/// One row of the matrix.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Short name.
    pub scenario: &'static str,
    /// Servers and faults.
    pub setup: String,
    /// Lookups made.
    pub lookups: usize,
    /// Lookups that came back exactly as expected (answer or error kind).
    pub correct: usize,
    /// Lookups answered with addresses other than the expected ones.
    pub wrong: usize,
    /// Errors by kind (expected ones included).
    pub errors: BTreeMap<&'static str, usize>,
    /// Queries the servers received (UDP + TCP), in server order.
    pub server_queries: Vec<u64>,
    /// Resolver counters.
    pub udp_sent: u64,
    /// TCP queries sent.
    pub tcp_sent: u64,
    /// Attempts after the first of a question.
    pub retries: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Datagrams dropped as matching no outstanding question.
    pub mismatched: u64,
    /// Truncated answers.
    pub truncated: u64,
    /// Slowest single lookup.
    pub slowest: Duration,
    /// Wall time of the whole scenario.
    pub elapsed: Duration,
    /// Violated expectations (empty when the row passes).
    pub failures: Vec<String>,
}

impl Row {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }

    fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "0".into();
        }
        self.errors
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The markdown header.
    pub fn header() -> String {
        "| scenario | setup | lookups | correct | wrong | errors | queries at servers | udp sent | tcp sent | retries | timeouts | mismatched dropped | slowest lookup | elapsed |\n\
         |---|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"
            .to_string()
    }

    /// This row in markdown.
    pub fn markdown(&self) -> String {
        let queries: Vec<String> = self.server_queries.iter().map(u64::to_string).collect();
        format!(
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ms | {} ms |",
            self.scenario,
            if self.failures.is_empty() {
                ""
            } else {
                " **FAIL**"
            },
            self.setup,
            self.lookups,
            self.correct,
            self.wrong,
            self.errors_text(),
            queries.join(" / "),
            self.udp_sent,
            self.tcp_sent,
            self.retries,
            self.timeouts,
            self.mismatched,
            self.slowest.as_millis(),
            self.elapsed.as_millis(),
        )
    }
}

/// Lookups in flight at once, as a crawler's pre-warm would run them.
const CONCURRENCY: usize = 200;

fn v4(n: u32) -> IpAddr {
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
        ..Default::default()
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
    let semaphore = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (name, expect) in names {
        let resolver = resolver.clone();
        let permit = semaphore.clone().acquire_owned().await.expect("open");
        tasks.spawn(async move {
            let t = Instant::now();
            let got = resolver.lookup(&name, QueryType::A).await;
            drop(permit);
            (name, expect, got, t.elapsed())
        });
    }
    let mut row = Row {
        scenario,
        setup,
        ..Default::default()
    };
    while let Some(joined) = tasks.join_next().await {
        let (name, expect, got, took) = joined.expect("lookup task");
        row.lookups += 1;
        row.slowest = row.slowest.max(took);
        match (&expect, got) {
            (Expect::Addrs(want), Ok(lookup)) => {
                let mut have = lookup.ips.to_vec();
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
                    lookup.ips
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

/// No faults: the baseline.
pub async fn baseline() -> Row {
    let s = server(1000, Duration::ZERO, Faults::default()).await;
    let r = Resolver::new(config(&[s.addr()]).build()).expect("config");
    let mut row = run(
        "baseline",
        "1 server, no faults".into(),
        &r,
        hosts(1000),
        &[&s],
    )
    .await;
    row.check(row.correct == 1000, "every lookup answered");
    row.check(
        row.udp_sent == 1000,
        format!("{} queries for 1000 lookups", row.udp_sent),
    );
    row
}

/// `drop` of the queries lost; enough attempts that a lookup failing all of
/// them is out of reach: with attempts a, P(one lookup fails) = drop^a.
pub async fn loss(drop: f64, attempts: usize) -> Row {
    let s = server(
        1000,
        Duration::ZERO,
        Faults {
            drop_fraction: drop,
            ..Default::default()
        },
    )
    .await;
    let r = Resolver::new(
        config(&[s.addr()])
            .attempts(attempts)
            .timeout(Duration::from_millis(400))
            .min_timeout(Duration::from_millis(200))
            .build(),
    )
    .expect("config");
    let scenario = if drop < 0.2 { "loss 10%" } else { "loss 30%" };
    let setup = format!(
        "1 server dropping {:.0}% of queries; attempts {attempts}, timeout 200-400 ms",
        drop * 100.0
    );
    let mut row = run(scenario, setup, &r, hosts(1000), &[&s]).await;
    row.check(
        row.correct == 1000,
        format!("{} of 1000 answered", row.correct),
    );
    row.check(row.wrong == 0, "no wrong answer");
    let dropped = s.counters().totals().dropped;
    // Every lost query is one timeout and one retry; nothing else retries.
    row.check(
        row.retries == row.timeouts && row.timeouts >= dropped,
        format!(
            "retries {} timeouts {} dropped {dropped}",
            row.retries, row.timeouts
        ),
    );
    // The server drops each query with probability `drop`: far outside
    // many σ would mean the row's loss is not what it says.
    let expected = drop * row.server_queries[0] as f64;
    row.check(
        (dropped as f64) > expected * 0.5 && (dropped as f64) < expected * 1.5,
        format!("{dropped} dropped of {} queries", row.server_queries[0]),
    );
    row
}

/// The first server is down: every answer comes from the second.
pub async fn primary_down() -> Row {
    let down = server(
        1000,
        Duration::ZERO,
        Faults {
            down: true,
            ..Default::default()
        },
    )
    .await;
    let up = server(1000, Duration::ZERO, Faults::default()).await;
    let r = Resolver::new(
        config(&[down.addr(), up.addr()])
            .timeout(Duration::from_millis(500))
            .min_timeout(Duration::from_millis(500))
            .build(),
    )
    .expect("config");
    let mut row = run(
        "primary down",
        "2 servers, the first never answers; timeout 500 ms".into(),
        &r,
        hosts(1000),
        &[&down, &up],
    )
    .await;
    row.check(
        row.correct == 1000,
        format!("{} of 1000 answered", row.correct),
    );
    row.check(
        up.counters().totals().responses == 1000,
        "the secondary answered every lookup",
    );
    // Only lookups already in flight when it was marked down (3 failures)
    // went to the dead server first.
    row.check(
        row.server_queries[0] <= CONCURRENCY as u64 + 3,
        format!("{} queries to the dead server", row.server_queries[0]),
    );
    row.check(r.server_health()[0].down, "the first server is marked down");
    row
}

/// The first server answers every query with `rcode`.
pub async fn rcode_primary(rcode: RcodeFault) -> Row {
    let bad = server(
        1000,
        Duration::ZERO,
        Faults {
            rcode: Some(rcode),
            ..Default::default()
        },
    )
    .await;
    let good = server(1000, Duration::ZERO, Faults::default()).await;
    let r = Resolver::new(config(&[bad.addr(), good.addr()]).build()).expect("config");
    let (scenario, name) = match rcode {
        RcodeFault::ServFail => ("SERVFAIL", "SERVFAIL"),
        RcodeFault::Refused => ("REFUSED", "REFUSED"),
    };
    let mut row = run(
        scenario,
        format!("2 servers, the first answers {name} to everything"),
        &r,
        hosts(1000),
        &[&bad, &good],
    )
    .await;
    row.check(
        row.correct == 1000,
        format!("{} of 1000 answered", row.correct),
    );
    row.check(row.timeouts == 0, "an rcode is an answer, not a timeout");
    row.check(
        good.counters().totals().responses == 1000,
        "the second server answered every lookup",
    );
    row
}

/// Every UDP answer truncated: every lookup retried over TCP.
pub async fn truncation() -> Row {
    let s = server(
        1000,
        Duration::ZERO,
        Faults {
            truncate: true,
            ..Default::default()
        },
    )
    .await;
    let r = Resolver::new(config(&[s.addr()]).build()).expect("config");
    let mut row = run(
        "truncation",
        "1 server, every UDP answer has TC=1".into(),
        &r,
        hosts(1000),
        &[&s],
    )
    .await;
    row.check(
        row.correct == 1000,
        format!("{} of 1000 answered", row.correct),
    );
    row.check(
        row.truncated == 1000 && row.tcp_sent == 1000,
        format!("truncated {} tcp {}", row.truncated, row.tcp_sent),
    );
    row
}

/// Answers too large for UDP (100 A records each): fetched over TCP.
pub async fn big_answers() -> Row {
    let s = server(1000, Duration::ZERO, Faults::default()).await;
    let r = Resolver::new(config(&[s.addr()]).build()).expect("config");
    let all: Vec<IpAddr> = (0..100).map(v4).collect();
    let names = (0..200)
        .map(|i| (format!("big{i}.crawl.test"), Expect::Addrs(all.clone())))
        .collect();
    let mut row = run(
        "large answers",
        "1 server, 100 A records per name (> 1232 bytes)".into(),
        &r,
        names,
        &[&s],
    )
    .await;
    row.check(
        row.correct == 200,
        format!("{} of 200 answered", row.correct),
    );
    row.check(
        row.truncated == 200 && row.tcp_sent == 200,
        "each over TCP once",
    );
    row
}

/// Testbed forgeries before each genuine answer (wrong ID, wrong question
/// or wrong source port): each dropped, the genuine answer taken.
pub async fn forgeries(faults: Faults, label: &'static str, case_randomization: bool) -> Row {
    let s = server(1000, Duration::ZERO, faults.clone()).await;
    let r = Resolver::new(
        config(&[s.addr()])
            .case_randomization(case_randomization)
            .build(),
    )
    .expect("config");
    let mut row = run(
        label,
        "1 server sending a forged answer before each genuine one".into(),
        &r,
        hosts(1000),
        &[&s],
    )
    .await;
    row.check(
        row.correct == 1000,
        format!("{} of 1000 answered", row.correct),
    );
    // From another port, a forgery never reaches the resolver: its sockets
    // are connected to the server, and the kernel drops it.
    let reaching = if faults.wrong_port { 0 } else { 1000 };
    row.check(
        row.mismatched == reaching,
        format!(
            "{} forgeries dropped by the resolver, {reaching} reached it",
            row.mismatched
        ),
    );
    row.check(row.udp_sent == 1000, "no retry needed");
    row
}

/// The testbed's malformed fault: the right ID, then a question that is a
/// compression loop. It cannot be matched to a question, so it is dropped
/// like any unmatchable datagram and the attempt times out.
pub async fn malformed_testbed() -> Row {
    let s = server(
        1000,
        Duration::ZERO,
        Faults {
            malformed: true,
            ..Default::default()
        },
    )
    .await;
    let r = Resolver::new(
        config(&[s.addr()])
            .attempts(2)
            .timeout(Duration::from_millis(150))
            .min_timeout(Duration::from_millis(150))
            .build(),
    )
    .expect("config");
    let names = (0..50)
        .map(|i| {
            (
                format!("h{i}.crawl.test"),
                Expect::Error(ErrorKind::Timeout),
            )
        })
        .collect();
    let mut row = run(
        "malformed question",
        "1 server answering with an unreadable question; attempts 2, timeout 150 ms".into(),
        &r,
        names,
        &[&s],
    )
    .await;
    row.check(row.correct == 50, "every lookup a Timeout error");
    row.check(
        row.mismatched == 100,
        format!("{} dropped, 100 sent", row.mismatched),
    );
    row
}

/// A server whose answers carry the right ID and question, then bytes that
/// do not parse (four kinds, in turn). Each lookup fails with a Malformed
/// error naming the server; with a good second server, it answers instead.
pub async fn malformed_body(with_good_secondary: bool) -> Row {
    let hostile = HostileServer::start().await;
    let good = server(1000, Duration::ZERO, Faults::default()).await;
    let mut servers = vec![hostile.addr];
    if with_good_secondary {
        servers.push(good.addr());
    }
    let r = Resolver::new(config(&servers).attempts(2).build()).expect("config");
    let count = 200;
    let names = if with_good_secondary {
        hosts(count)
    } else {
        (0..count)
            .map(|i| {
                (
                    format!("h{i}.crawl.test"),
                    Expect::Error(ErrorKind::Malformed),
                )
            })
            .collect()
    };
    let (scenario, setup) = if with_good_secondary {
        (
            "malformed body, then good",
            "2 servers, the first answers with the right header and question, then junk",
        )
    } else {
        (
            "malformed body",
            "1 server answering with the right header and question, then junk; attempts 2",
        )
    };
    let others: &[&DnsServer] = if with_good_secondary { &[&good] } else { &[] };
    let mut row = run(scenario, setup.into(), &r, names, others).await;
    row.server_queries.insert(0, hostile.received());
    row.check(
        row.correct == count as usize,
        format!("{} of {count} as expected", row.correct),
    );
    row.check(row.timeouts == 0, "junk is not a timeout");
    row.check(r.metrics().malformed >= 3, "malformed answers counted");
    row
}

/// Servers slower than the timeout: a Timeout error after every attempt at
/// every server, within timeout × attempts × servers plus a margin; the late
/// answers, when they come, are dropped.
pub async fn slow() -> Row {
    let delay = Duration::from_millis(1500);
    let a = server(1000, delay, Faults::default()).await;
    let b = server(1000, delay, Faults::default()).await;
    let timeout = Duration::from_millis(150);
    let attempts = 2;
    let r = Resolver::new(
        config(&[a.addr(), b.addr()])
            .attempts(attempts)
            .timeout(timeout)
            .min_timeout(timeout)
            .build(),
    )
    .expect("config");
    let count = 100;
    let names = (0..count)
        .map(|i| {
            (
                format!("h{i}.crawl.test"),
                Expect::Error(ErrorKind::Timeout),
            )
        })
        .collect();
    let mut row = run(
        "slow servers",
        "2 servers answering after 1.5 s; timeout 150 ms, attempts 2".into(),
        &r,
        names,
        &[&a, &b],
    )
    .await;
    let bound = timeout * (attempts as u32) * 2;
    row.check(row.correct == count, "every lookup a Timeout error");
    row.check(
        row.slowest < bound + Duration::from_millis(1500),
        format!("slowest {:?}, bound {bound:?} + 1.5 s", row.slowest),
    );
    // Every round tries each server that is up; a server marked down (3
    // failures in a row) is skipped while another is up: 2 to 4 attempts.
    row.check(
        (2 * count as u64..=4 * count as u64).contains(&row.udp_sent),
        format!("{} queries for {count} lookups", row.udp_sent),
    );
    // The late answers arrive and are dropped, never taken.
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.metrics().mismatched < row.udp_sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    row.mismatched = r.metrics().mismatched;
    row.check(
        row.mismatched == row.udp_sent,
        format!(
            "{} late answers dropped of {}",
            row.mismatched, row.udp_sent
        ),
    );
    row
}

/// Every scenario, in table order.
pub async fn all() -> Vec<Row> {
    vec![
        baseline().await,
        loss(0.10, 8).await,
        loss(0.30, 16).await,
        primary_down().await,
        rcode_primary(RcodeFault::ServFail).await,
        rcode_primary(RcodeFault::Refused).await,
        truncation().await,
        big_answers().await,
        forgeries(
            Faults {
                wrong_id: true,
                ..Default::default()
            },
            "forged: wrong ID",
            false,
        )
        .await,
        forgeries(
            Faults {
                wrong_question: true,
                ..Default::default()
            },
            "forged: wrong question",
            true,
        )
        .await,
        forgeries(
            Faults {
                wrong_port: true,
                ..Default::default()
            },
            "forged: wrong port",
            true,
        )
        .await,
        malformed_testbed().await,
        malformed_body(false).await,
        malformed_body(true).await,
        slow().await,
    ]
}

/// A UDP server that answers each query with its own ID and question, then
/// junk that no parser should accept (four kinds, in turn).
pub struct HostileServer {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileServer {
    /// Binds 127.0.0.1 on a free port and starts answering.
    pub async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("addr");
        let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = received.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0usize;
            while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(reply) = junk_reply(&buf[..len], n) {
                    let _ = socket.send_to(&reply, peer).await;
                }
                n += 1;
            }
        });
        Self {
            addr,
            received,
            task,
        }
    }

    /// Queries received.
    pub fn received(&self) -> u64 {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The query's ID and question, then one of four kinds of junk.
fn junk_reply(query: &[u8], variant: usize) -> Option<Vec<u8>> {
    // The question: labels from offset 12 up to the root, then type and class.
    let mut end = 12;
    loop {
        let len = usize::from(*query.get(end)?);
        end += 1 + len;
        if len == 0 {
            break;
        }
    }
    let question = query.get(12..end + 4)?;
    let mut reply = query.get(..2)?.to_vec();
    reply.extend_from_slice(&[0x85, 0x80, 0, 1]);
    let rr = |rdlength: u16, rdata: &[u8]| {
        let mut r = vec![0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60];
        r.extend_from_slice(&rdlength.to_be_bytes());
        r.extend_from_slice(rdata);
        r
    };
    let (counts, records): ([u8; 6], Vec<u8>) = match variant % 4 {
        // RDLENGTH runs past the end of the packet.
        0 => ([0, 1, 0, 0, 0, 0], rr(0x4004, &[127, 255, 0, 66])),
        // Far more records claimed than present.
        1 => ([0xff, 0xff, 0, 0, 0, 0], rr(4, &[127, 255, 0, 66])),
        // An A record of 16 bytes.
        2 => ([0, 1, 0, 0, 0, 0], rr(16, &[0x7f; 16])),
        // An answer owner that is a compression loop.
        _ => {
            let at = 12 + question.len();
            let mut r = vec![
                0xc0 | (at >> 8) as u8,
                at as u8,
                0,
                1,
                0,
                1,
                0,
                0,
                0,
                60,
                0,
                4,
            ];
            r.extend_from_slice(&[127, 255, 0, 66]);
            ([0, 1, 0, 0, 0, 0], r)
        }
    };
    reply.extend_from_slice(&counts);
    reply.extend_from_slice(question);
    reply.extend_from_slice(&records);
    Some(reply)
}

#[tokio::main]
#[allow(dead_code)]
async fn main() {
    let rows = all().await;
    println!("{}", Row::header());
    for row in &rows {
        println!("{}", row.markdown());
    }
    let failed: Vec<&Row> = rows.iter().filter(|r| !r.failures.is_empty()).collect();
    for row in &failed {
        eprintln!("{} failed: {:?}", row.scenario, row.failures);
    }
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
