//! Forged answers from an attacker on loopback.
//!
//! While the genuine server is slow (the testbed delays every answer by
//! 300 ms), an attacker floods the resolver's UDP sockets with forged
//! answers for the outstanding queries. It learns the sockets' ports the way
//! a local attacker could, from `/proc/self/fd` and `/proc/self/net/udp`,
//! and spoofs the server's address and port with a raw socket
//! (`IP_HDRINCL`), so its packets differ from the genuine answer only in
//! what it cannot know: the ID, the 0x20 case of the name, and — for the
//! classes meant to fail — the question or the source.
//!
//! Raw sockets need root (CAP_NET_RAW): these tests are `#[ignore]`d and
//! run by the root-only step of `scripts/test.sh`
//! (`--run-ignored only`); elsewhere they show as skipped.
//! RELIABILITY.md gives the numbers and the arithmetic of
//! what a blind forgery can achieve.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crawldns::{CacheConfig, ErrorKind, QueryType, Resolver, ResolverConfig};
use crawldns_testbed::{host_v4, Delay, DnsServer, DnsServerConfig, Faults, ZoneConfig, FORGED_V4};
use crawldns_testkit::spoof::{Sniffer, Spoofer};
use rand::Rng;

/// The tests in this file share /proc views and raw sockets: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The genuine server's delay: the window the attacker has.
const DELAY: Duration = Duration::from_millis(300);

/// How a forged answer is built.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// QR bit set.
    response: bool,
    /// QDCOUNT written in the header (the question is included only if > 0).
    qdcount: u16,
    qtype: u16,
    qclass: u16,
}

const FORGED: Shape = Shape {
    response: true,
    qdcount: 1,
    qtype: 1,
    qclass: 1,
};

/// A forged response: `name`/`shape` as the question, answered with
/// FORGED_V4 for 1 day.
fn forged_answer(id: u16, name: &str, shape: Shape) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.push(if shape.response { 0x85 } else { 0x01 });
    p.push(0x80);
    p.extend_from_slice(&shape.qdcount.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
    let mut owner = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        owner.push(label.len() as u8);
        owner.extend_from_slice(label.as_bytes());
    }
    owner.push(0);
    for _ in 0..shape.qdcount {
        p.extend_from_slice(&owner);
        p.extend_from_slice(&shape.qtype.to_be_bytes());
        p.extend_from_slice(&shape.qclass.to_be_bytes());
    }
    p.extend_from_slice(&owner);
    p.extend_from_slice(&[0, 1, 0, 1]);
    p.extend_from_slice(&86_400u32.to_be_bytes());
    p.extend_from_slice(&[0, 4]);
    p.extend_from_slice(&FORGED_V4.octets());
    p
}

/// Inodes of this process's open sockets.
fn socket_inodes() -> HashSet<u64> {
    crawldns_sys::process::socket_inodes().unwrap_or_default()
}

/// The ports of UDP sockets bound to 0.0.0.0 among `inodes`, as
/// `/proc/self/net/udp` lists them: what a local attacker can read.
fn udp_ports(inodes: &HashSet<u64>) -> Vec<u16> {
    let mut ports: Vec<u16> = crawldns_sys::sockbuf::udp_sockets()
        .into_iter()
        // Unconnected sockets show 0.0.0.0, connected ones 127.0.0.1.
        .filter(|s| {
            inodes.contains(&s.inode)
                && (s.local.ip() == Ipv4Addr::UNSPECIFIED || s.local.ip() == Ipv4Addr::LOCALHOST)
        })
        .map(|s| s.local.port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

struct Setup {
    server: DnsServer,
    resolver: Resolver,
    /// The resolver's UDP ports, learned from /proc.
    ports: Vec<u16>,
}

/// A slow testbed and a resolver whose `sockets` UDP sockets are all open;
/// their ports read from /proc.
async fn setup(
    case_randomization: bool,
    sockets: usize,
    delay: Duration,
    timeout: Duration,
) -> Setup {
    let server = DnsServer::start(DnsServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        zone: ZoneConfig {
            hosts: 100_000,
            ..Default::default()
        },
        delay: Delay::uniform(delay),
        ..Default::default()
    })
    .await
    .unwrap();
    let before = socket_inodes();
    let resolver = Resolver::new(
        ResolverConfig::builder()
            .nameserver(server.addr())
            .case_randomization(case_randomization)
            .udp_sockets(sockets)
            .timeout(timeout)
            .min_timeout(timeout)
            .attempts(2)
            .ipv6_egress(Some(false))
            .cache(Some(CacheConfig::default()))
            .build(),
    )
    .unwrap();
    // Sockets open on first use, one per query in turn: warm them all up.
    let mut warm = tokio::task::JoinSet::new();
    for i in 0..sockets as u32 {
        let r = resolver.clone();
        warm.spawn(async move {
            r.lookup(&format!("h{}.crawl.test", 90_000 + i), QueryType::A)
                .await
        });
    }
    while let Some(done) = warm.join_next().await {
        done.unwrap().unwrap();
    }
    let new: HashSet<u64> = socket_inodes().difference(&before).copied().collect();
    let ports = udp_ports(&new);
    assert_eq!(
        ports.len(),
        sockets,
        "resolver sockets found in /proc: {ports:?}"
    );
    Setup {
        server,
        resolver,
        ports,
    }
}

fn server_v4(server: &DnsServer) -> SocketAddrV4 {
    match server.addr() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => unreachable!("the testbed runs on 127.0.0.1"),
    }
}

fn genuine(n: u32) -> IpAddr {
    IpAddr::V4(host_v4(n).unwrap())
}

/// Why a test of this file cannot run without root.
const NEEDS_ROOT: &str = "raw sockets need root (CAP_NET_RAW) to spoof the server's address";

/// Flips the case of the first letter of `name`.
fn flip_one(name: &str) -> String {
    let mut done = false;
    name.chars()
        .map(|c| {
            if !done && c.is_ascii_alphabetic() {
                done = true;
                if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// An attacker who sees the query (on-path: it knows the ID, the port and
/// the exact case) but gets one thing wrong per packet. Every variant must
/// be dropped, the genuine answer taken. The control at the end, identical
/// to the genuine answer, is accepted: nothing can tell them apart, which
/// also shows the harness's packets are well-formed and really delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: raw sockets (CAP_NET_RAW) to spoof the server's address"]
async fn on_path_forgeries_that_get_one_thing_wrong_are_rejected() {
    let _serial = SERIAL.lock().await;
    let mut spoofer = Spoofer::new().expect(NEEDS_ROOT);
    for case_randomization in [true, false] {
        let Setup {
            server,
            resolver,
            ports,
        } = setup(case_randomization, 4, DELAY, Duration::from_secs(3)).await;
        let sniffer = Sniffer::new(server.addr().port()).unwrap();
        let from = server_v4(&server);
        let mut variants_sent = 0u64;
        for round in 0..2u32 {
            let n = round * 10 + 1;
            let name = format!("h{n}.crawl.test");
            let lookup = {
                let r = resolver.clone();
                let name = name.clone();
                tokio::spawn(async move { r.lookup(&name, QueryType::A).await })
            };
            let seen = tokio::task::block_in_place(|| sniffer.queries(1, Duration::from_secs(2)));
            let q = seen.first().expect("the query was seen").clone();
            assert_eq!(q.name.to_ascii_lowercase(), name);
            assert_eq!(q.qtype, 1);
            let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, q.port);
            let other_port = *ports.iter().find(|p| **p != q.port).unwrap();
            let other_name = format!("h{}.crawl.test", n + 1);
            let mut variants: Vec<(&str, SocketAddrV4, SocketAddrV4, Vec<u8>)> = vec![
                (
                    "wrong name",
                    from,
                    to,
                    forged_answer(q.id, &other_name, FORGED),
                ),
                (
                    "wrong type",
                    from,
                    to,
                    forged_answer(
                        q.id,
                        &q.name,
                        Shape {
                            qtype: 28,
                            ..FORGED
                        },
                    ),
                ),
                (
                    "wrong class",
                    from,
                    to,
                    forged_answer(
                        q.id,
                        &q.name,
                        Shape {
                            qclass: 3,
                            ..FORGED
                        },
                    ),
                ),
                (
                    "not a response",
                    from,
                    to,
                    forged_answer(
                        q.id,
                        &q.name,
                        Shape {
                            response: false,
                            ..FORGED
                        },
                    ),
                ),
                (
                    "no question",
                    from,
                    to,
                    forged_answer(
                        q.id,
                        &q.name,
                        Shape {
                            qdcount: 0,
                            ..FORGED
                        },
                    ),
                ),
                (
                    "two questions",
                    from,
                    to,
                    forged_answer(
                        q.id,
                        &q.name,
                        Shape {
                            qdcount: 2,
                            ..FORGED
                        },
                    ),
                ),
                (
                    "wrong ID",
                    from,
                    to,
                    forged_answer(q.id.wrapping_add(1), &q.name, FORGED),
                ),
                (
                    "wrong source port",
                    SocketAddrV4::new(*from.ip(), from.port().wrapping_add(1)),
                    to,
                    forged_answer(q.id, &q.name, FORGED),
                ),
                (
                    "wrong source address",
                    SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), from.port()),
                    to,
                    forged_answer(q.id, &q.name, FORGED),
                ),
                (
                    "another socket of the resolver",
                    from,
                    SocketAddrV4::new(Ipv4Addr::LOCALHOST, other_port),
                    forged_answer(q.id, &q.name, FORGED),
                ),
            ];
            if case_randomization {
                variants.push((
                    "one letter's case flipped",
                    from,
                    to,
                    forged_answer(q.id, &flip_one(&q.name), FORGED),
                ));
                let other_case = if q.name == q.name.to_ascii_lowercase() {
                    q.name.to_ascii_uppercase()
                } else {
                    q.name.to_ascii_lowercase()
                };
                variants.push((
                    "case not echoed",
                    from,
                    to,
                    forged_answer(q.id, &other_case, FORGED),
                ));
            }
            for (what, src, dst, packet) in &variants {
                assert!(spoofer.send(*src, *dst, packet), "send {what}");
            }
            // Packets from another address or port never reach the
            // resolver: its sockets are connected, and the kernel drops them.
            variants_sent += variants.iter().filter(|v| v.1 == from).count() as u64;
            let got = lookup.await.unwrap().unwrap();
            assert_eq!(
                got.ips(),
                &[genuine(n)],
                "0x20 {case_randomization}: a forgery was taken"
            );
            println!(
                "0x20 {case_randomization}: query {} id {} port {}: {} on-path variants rejected: {}",
                q.name,
                q.id,
                q.port,
                variants.len(),
                variants.iter().map(|v| v.0).collect::<Vec<_>>().join(", ")
            );
        }
        let m = resolver.metrics();
        assert_eq!(m.kernel_drops, 0);
        assert_eq!(
            m.mismatched, variants_sent,
            "every variant from the server's address arrived and was dropped: {m:?}"
        );
        // From the cache, still the genuine answers.
        for n in [1, 11] {
            let cached = resolver
                .lookup(&format!("h{n}.crawl.test"), QueryType::A)
                .await
                .unwrap();
            assert_eq!(cached.ips(), &[genuine(n)]);
        }

        // Control: the exact answer, ID, case, source and port. Accepted,
        // and cached: an on-path attacker wins against any stub resolver.
        let lookup = {
            let r = resolver.clone();
            tokio::spawn(async move { r.lookup("h77.crawl.test", QueryType::A).await })
        };
        let q = tokio::task::block_in_place(|| sniffer.queries(1, Duration::from_secs(2)))
            .pop()
            .unwrap();
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, q.port);
        assert!(spoofer.send(from, to, &forged_answer(q.id, &q.name, FORGED)));
        let got = lookup.await.unwrap().unwrap();
        assert_eq!(
            got.ips(),
            &[IpAddr::V4(FORGED_V4)],
            "control: the exact forgery is accepted"
        );
    }
}

/// What the blind flood sent and found.
#[derive(Debug, Default)]
struct FloodStats {
    sent: u64,
    /// Of those, packets from an address or port other than the server's:
    /// the kernel drops them before they reach the resolver's connected
    /// sockets.
    wrong_source: u64,
    /// Packets whose (port, ID) belonged to a query outstanding at the time.
    id_hits: u64,
    /// ... and whose question was that query's name (any case).
    own_name_hits: u64,
    /// Right-question packets from the spoofed server address.
    right_question: u64,
    /// Sum over right-question packets of P(accepted): 2^-(16 + letters)
    /// divided by the number of sockets the packet could have been for.
    expected_accepted: f64,
    rounds: u32,
    lookups: u32,
}

/// The packet classes of the blind flood.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    /// The outstanding name, lower case, random ID: can succeed only by
    /// guessing the ID and (0x20) the case.
    RightLower,
    /// The outstanding name with a random case, random ID.
    RightRandomCase,
    /// A name not asked for: never acceptable.
    WrongName,
    /// The outstanding name with type AAAA: never acceptable.
    WrongType,
    /// The outstanding name from the server's address but another port
    /// (the kernel drops it: the resolver's sockets are connected).
    WrongSourcePort,
}

fn letters(name: &str) -> i32 {
    name.bytes().filter(u8::is_ascii_alphabetic).count() as i32
}

/// A blind off-path attacker (knows the ports from /proc, not the IDs or
/// the case) floods forged answers while the genuine ones are delayed. No
/// forgery may be accepted or cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: raw sockets (CAP_NET_RAW) to spoof the server's address"]
async fn a_blind_flood_of_forged_answers_is_never_accepted() {
    let _serial = SERIAL.lock().await;
    assert!(Spoofer::new().is_some(), "{NEEDS_ROOT}");
    let mut total_sent = 0;
    for case_randomization in [true, false] {
        // With 0x20 off, a right-question packet with a guessed ID is
        // indistinguishable from the answer (P = 2^-16 per packet and
        // socket): those classes are left to the ID-sweep test below, and
        // this flood sends only classes that can never be accepted.
        let classes: &[Class] = if case_randomization {
            &[
                Class::RightLower,
                Class::RightRandomCase,
                Class::WrongName,
                Class::WrongType,
                Class::WrongSourcePort,
            ]
        } else {
            &[Class::WrongName, Class::WrongType, Class::WrongSourcePort]
        };
        let stats = blind_flood(case_randomization, classes, 100_000, Duration::from_secs(5)).await;
        println!(
            "blind flood, 0x20 {case_randomization}: {} forged packets in {} rounds against {} lookups; \
             {} carried the (port, ID) of an outstanding query ({} of them with its name), all dropped; \
             {} right-question packets, expected acceptances {:.2e}; accepted 0",
            stats.sent,
            stats.rounds,
            stats.lookups,
            stats.id_hits,
            stats.own_name_hits,
            stats.right_question,
            stats.expected_accepted
        );
        assert!(stats.expected_accepted < 1e-3, "{stats:?}");
        total_sent += stats.sent;
    }
    println!("blind flood total: {total_sent} forged packets, 0 accepted, 0 cached");
}

async fn blind_flood(
    case_randomization: bool,
    classes: &[Class],
    budget: u64,
    time_budget: Duration,
) -> FloodStats {
    let Setup {
        server,
        resolver,
        ports,
    } = setup(case_randomization, 4, DELAY, Duration::from_secs(3)).await;
    let sniffer = Arc::new(Sniffer::new(server.addr().port()).unwrap());
    let from = server_v4(&server);
    let started = Instant::now();
    let mut stats = FloodStats::default();
    let mut names: Vec<(String, Option<u32>)> = Vec::new();
    let per_round = 200u32;
    let mut next = 0u32;
    while stats.sent < budget && started.elapsed() < time_budget {
        // Half the names resolve through 5 CNAMEs (14 letters); half do not
        // exist and are long (50+ letters): both are 0x20's best and worst.
        let round: Vec<(String, Option<u32>)> = (next..next + per_round)
            .map(|i| {
                if i % 2 == 0 {
                    (format!("chain5-{i}.crawl.test"), Some(i))
                } else {
                    (
                        format!("nosuchhostwithaverylongnameforzerotwentyx{i}.crawl.test"),
                        None,
                    )
                }
            })
            .collect();
        next += per_round;
        let mut lookups = tokio::task::JoinSet::new();
        for (name, host) in round.clone() {
            let r = resolver.clone();
            lookups.spawn(async move { (name.clone(), host, r.lookup(&name, QueryType::A).await) });
        }
        let round_start = Instant::now();
        // The attacker's window: until shortly before the genuine answers.
        let window_end = round_start + DELAY - Duration::from_millis(60);
        let sniffer = sniffer.clone();
        let ports = ports.clone();
        let classes = classes.to_vec();
        let left = budget - stats.sent;
        let outstanding_names: Vec<String> = round.iter().map(|(n, _)| n.clone()).collect();
        let pace = Pace {
            resolver: resolver.clone(),
            already_sent: stats.sent - stats.wrong_source,
        };
        let round_stats = tokio::task::spawn_blocking(move || {
            // The test's own view of what is outstanding (not the attacker's).
            let seen = sniffer.queries(per_round as usize, Duration::from_millis(150));
            let live: HashMap<(u16, u16), String> = seen
                .iter()
                .map(|q| ((q.port, q.id), q.name.to_ascii_lowercase()))
                .collect();
            flood_window(
                &classes,
                &ports,
                from,
                &outstanding_names,
                &live,
                left,
                window_end,
                &pace,
            )
        })
        .await
        .unwrap();
        while let Some(done) = lookups.join_next().await {
            let (name, host, got) = done.unwrap();
            match (host, got) {
                (Some(n), Ok(lookup)) => assert_eq!(
                    lookup.ips(),
                    &[genuine(n)],
                    "{name}: forged answer accepted"
                ),
                (None, Err(e)) => assert_eq!(e.kind(), ErrorKind::NxDomain, "{name}: {e}"),
                (_, other) => panic!("{name}: {other:?} (0x20 {case_randomization})"),
            }
        }
        names.extend(round);
        stats.sent += round_stats.sent;
        stats.wrong_source += round_stats.wrong_source;
        stats.id_hits += round_stats.id_hits;
        stats.own_name_hits += round_stats.own_name_hits;
        stats.right_question += round_stats.right_question;
        stats.expected_accepted += round_stats.expected_accepted;
        stats.rounds += 1;
        stats.lookups += per_round;
    }
    // Everything cached is genuine.
    for (name, host) in &names {
        match (host, resolver.lookup(name, QueryType::A).await) {
            (Some(n), Ok(lookup)) => {
                assert_eq!(lookup.ips(), &[genuine(*n)], "{name}: cache poisoned")
            }
            (None, Err(e)) => assert_eq!(e.kind(), ErrorKind::NxDomain),
            (_, other) => panic!("{name}: cached {other:?}"),
        }
    }
    let m = resolver.metrics();
    assert_eq!(
        m.cache_hits,
        u64::from(stats.lookups),
        "every name came from the cache: {m:?}"
    );
    // Every forged packet from the server's address reached a resolver
    // socket and was dropped there; the kernel dropped the others.
    assert_eq!(m.kernel_drops, 0, "{m:?}");
    assert_eq!(m.mismatched, stats.sent - stats.wrong_source, "{m:?}");
    assert_eq!(m.timeouts, 0, "the flood cost no genuine answer: {m:?}");
    stats
}

/// Keeps the flood within what the resolver has read: its receive buffers
/// must not overflow (a genuine answer dropped by the kernel would be a
/// timeout, not a forgery, and an uncounted forgery would spoil the count).
struct Pace {
    resolver: Resolver,
    /// Forged packets sent in earlier rounds that reach the resolver.
    already_sent: u64,
}

impl Pace {
    /// Waits until the resolver has read all but 2,000 of the forged
    /// packets that reach it (`sent_now` of them in this round).
    fn wait(&self, sent_now: u64, until: Instant) {
        while self.already_sent + sent_now > self.resolver.metrics().mismatched + 2_000
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// Sends forged packets until `window_end` or `budget`, rotating classes.
#[allow(clippy::too_many_arguments)]
fn flood_window(
    classes: &[Class],
    ports: &[u16],
    from: SocketAddrV4,
    names: &[String],
    live: &HashMap<(u16, u16), String>,
    budget: u64,
    window_end: Instant,
    pace: &Pace,
) -> FloodStats {
    let mut spoofer = Spoofer::new().unwrap();
    let mut rng = rand::rng();
    let mut stats = FloodStats::default();
    let wrong_port = SocketAddrV4::new(*from.ip(), from.port().wrapping_add(1));
    while stats.sent < budget && Instant::now() < window_end {
        for _ in 0..64 {
            let class = classes[stats.sent as usize % classes.len()];
            let id: u16 = rng.random();
            let port = ports[rng.random_range(0..ports.len())];
            let name = &names[rng.random_range(0..names.len())];
            let (qname, shape, src) = match class {
                Class::RightLower => (name.clone(), FORGED, from),
                Class::RightRandomCase => (
                    name.chars()
                        .map(|c| {
                            if rng.random() {
                                c.to_ascii_uppercase()
                            } else {
                                c
                            }
                        })
                        .collect(),
                    FORGED,
                    from,
                ),
                Class::WrongName => (format!("x{name}"), FORGED, from),
                Class::WrongType => (
                    name.clone(),
                    Shape {
                        qtype: 28,
                        ..FORGED
                    },
                    from,
                ),
                Class::WrongSourcePort => (name.clone(), FORGED, wrong_port),
            };
            let packet = forged_answer(id, &qname, shape);
            if !spoofer.send(src, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port), &packet) {
                continue;
            }
            stats.sent += 1;
            if src != from {
                stats.wrong_source += 1;
            }
            if let Some(owner) = live.get(&(port, id)) {
                stats.id_hits += 1;
                if owner.eq_ignore_ascii_case(&qname) {
                    stats.own_name_hits += 1;
                }
            }
            if matches!(class, Class::RightLower | Class::RightRandomCase) {
                stats.right_question += 1;
                stats.expected_accepted +=
                    (-(16 + letters(&qname)) as f64).exp2() / ports.len() as f64;
            }
        }
        pace.wait(stats.sent - stats.wrong_source, window_end);
    }
    stats
}

/// Without 0x20, the ID is all that protects a question whose port is
/// known: sweeping all 65,536 IDs with the right question is accepted (the
/// expected limit of ID + port randomization, and why 0x20 matters). With
/// 0x20 on, the same sweep against a long name is rejected: each ID is
/// tried once, with one guess of the case out of 2^letters.
///
/// The genuine server is silent during the sweep, so every ID is tried
/// while the query is outstanding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: raw sockets (CAP_NET_RAW) to spoof the server's address"]
async fn an_id_sweep_poisons_without_0x20_and_fails_with_it() {
    let _serial = SERIAL.lock().await;
    assert!(Spoofer::new().is_some(), "{NEEDS_ROOT}");
    let mut total = 0u64;
    for (case_randomization, name) in [
        (false, "h42.crawl.test"),
        (
            true,
            "nosuchhostwithaverylongnameforzerotwentysweep.crawl.test",
        ),
    ] {
        // One socket, its port known from /proc.
        let Setup {
            server,
            resolver,
            ports,
        } = setup(
            case_randomization,
            1,
            Duration::ZERO,
            Duration::from_secs(60),
        )
        .await;
        server.set_faults(Faults {
            down: true,
            ..Default::default()
        });
        let cached_before = resolver.cache_len();
        let from = server_v4(&server);
        let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, ports[0]);
        let lookup = {
            let r = resolver.clone();
            tokio::spawn(async move { r.lookup(name, QueryType::A).await })
        };
        while server.counters().totals().dropped == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = Instant::now();
        let finished = Arc::new(AtomicBool::new(false));
        let sweep = {
            let resolver = resolver.clone();
            let finished = finished.clone();
            tokio::task::spawn_blocking(move || {
                let mut spoofer = Spoofer::new().unwrap();
                let mut sent = 0u64;
                for id in 0..=u16::MAX {
                    if finished.load(Ordering::Relaxed) {
                        break;
                    }
                    assert!(spoofer.send(from, to, &forged_answer(id, name, FORGED)));
                    sent += 1;
                    // Pace to what the resolver has processed: its buffer
                    // must not overflow and drop the one right guess.
                    if sent.is_multiple_of(512) {
                        while sent > resolver.metrics().mismatched + 2048
                            && !finished.load(Ordering::Relaxed)
                        {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                }
                sent
            })
        };
        if case_randomization {
            let sent = sweep.await.unwrap();
            // Wait until the resolver has read every guess.
            let deadline = Instant::now() + Duration::from_secs(20);
            while resolver.metrics().mismatched < sent && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let m = resolver.metrics();
            println!(
                "ID sweep, 0x20 on, {name}: {sent} forged packets in {:?}, {} dropped, query still outstanding: {}",
                started.elapsed(),
                m.mismatched,
                !lookup.is_finished()
            );
            assert_eq!(sent, 65_536);
            assert_eq!(m.mismatched, 65_536, "every guess dropped: {m:?}");
            assert!(
                !lookup.is_finished(),
                "no guess was taken: the query still waits"
            );
            assert_eq!(resolver.cache_len(), cached_before, "nothing was cached");
            lookup.abort();
            total += sent;
        } else {
            let got = lookup.await.unwrap();
            finished.store(true, Ordering::Relaxed);
            let sent = sweep.await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while resolver.metrics().mismatched + 1 < sent && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let m = resolver.metrics();
            println!(
                "ID sweep, 0x20 off, {name}: accepted after {sent} forged packets in {:?} ({} dropped): {:?}",
                started.elapsed(),
                m.mismatched,
                got.as_ref().map(|l| l.ips().to_vec())
            );
            // Accepted, and cached.
            assert_eq!(got.unwrap().ips(), &[IpAddr::V4(FORGED_V4)]);
            assert_eq!(m.mismatched, sent - 1, "exactly one guess matched: {m:?}");
            let cached = resolver.lookup(name, QueryType::A).await.unwrap();
            assert_eq!(cached.ips(), &[IpAddr::V4(FORGED_V4)], "and it is cached");
            total += sent;
        }
    }
    println!("ID sweeps total: {total} forged packets");
}
