//! The fuzz corpus as ordinary tests: every file in `fuzz/corpus/<target>/`
//! and `fuzz/regressions/<target>/` runs through the same code as the
//! cargo-fuzz target of that name (the code is `fuzz/src/lib.rs`, included
//! here), so CI replays what the fuzzer found without running the fuzzer.
//!
//! `cargo test -p crawldns --test fuzz_corpus -- --ignored` regenerates the
//! seed files made from the testbed's real answers and hand-made hostile
//! packets (`scripts/fuzz.sh seed` runs it, plus the Knot/Unbound seeds of
//! the interop test).

#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crawldns::internals::wire::{encode_query, Question};
use crawldns_testbed::{DnsServer, DnsServerConfig, Faults, RcodeFault, ZoneConfig};
use hickory_proto::rr::RecordType;

/// A target's name and the function it runs.
type Target = (&'static str, fn(&[u8]));

/// Targets and the function each runs.
const TARGETS: [Target; 2] = [
    ("answer_decode", |d| {
        let _ = targets::answer_decode(d);
    }),
    ("answer_to_cache", targets::answer_to_cache),
];

/// The committed corpus stays small: a seed, not the fuzzer's working set.
const MAX_FILES: usize = 200;
const MAX_BYTES: u64 = 4 << 20;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_file_replays_without_panic() {
    let root = fuzz_dir();
    let mut total_files = 0;
    let mut total_bytes = 0u64;
    for (target, run) in TARGETS {
        let corpus = files(&root.join("corpus").join(target));
        let regressions = files(&root.join("regressions").join(target));
        assert!(
            !corpus.is_empty(),
            "no seed corpus in {}: run scripts/fuzz.sh seed",
            root.join("corpus").join(target).display()
        );
        for path in corpus.iter().chain(&regressions) {
            let bytes = std::fs::read(path).unwrap();
            total_bytes += bytes.len() as u64;
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{target} panics on {}", path.display());
        }
        total_files += corpus.len() + regressions.len();
        println!(
            "{target}: {} corpus files, {} regressions",
            corpus.len(),
            regressions.len()
        );
    }
    // Each packet of the decode corpus also goes through the cache path,
    // under a few cache configurations.
    for path in files(&root.join("corpus/answer_decode")) {
        let packet = std::fs::read(&path).unwrap();
        for config in [
            [0x3f, 30, 20, 60],
            [0x00, 0x80, 0, 0],
            [0x7f, 0xff, 0xff, 0xff],
        ] {
            let len = u16::try_from(packet.len()).unwrap_or(u16::MAX);
            let mut input = config.to_vec();
            input.push(1);
            input.extend_from_slice(&len.to_be_bytes());
            input.extend_from_slice(&packet);
            targets::answer_to_cache(&input);
        }
    }
    assert!(
        total_files <= MAX_FILES,
        "{total_files} files: keep the committed corpus small"
    );
    assert!(
        total_bytes <= MAX_BYTES,
        "{total_bytes} bytes: keep the committed corpus small"
    );
}

/// Hostile packets must be judged and read without panicking, and must not
/// be accepted as answers (each claims to answer `h1.crawl.test A`).
#[test]
fn hostile_packets_are_never_answers() {
    for (name, packet) in hostile() {
        if name == "answer-stray-owner" || name.starts_with("answer-ttl") {
            continue; // well-formed on purpose
        }
        let mut input = vec![0x88]; // fixed question h1.crawl.test A, depth 8
        input.extend_from_slice(&packet);
        let decoded = targets::answer_decode(&input).unwrap();
        if let Some(reading) = &decoded.reading {
            assert!(
                !matches!(
                    reading,
                    crawldns::internals::answer::Reading::Records { .. }
                ),
                "{name}: hostile packet read as records: {reading:?}"
            );
        }
    }
}

#[test]
#[ignore = "regenerates fuzz/corpus from the testbed; run by `scripts/fuzz.sh seed`"]
fn regenerate_seed_corpus() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let decode_dir = fuzz_dir().join("corpus/answer_decode");
    let cache_dir = fuzz_dir().join("corpus/answer_to_cache");
    std::fs::create_dir_all(&decode_dir).unwrap();
    std::fs::create_dir_all(&cache_dir).unwrap();
    let mut seeds: Vec<(String, u8, Vec<u8>)> = Vec::new();
    runtime.block_on(async {
        let server = DnsServer::start(DnsServerConfig {
            zone: ZoneConfig {
                hosts: 100,
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();
        let asks: [(&str, RecordType); 12] = [
            ("h1.crawl.test", RecordType::A),
            ("h1.crawl.test", RecordType::AAAA),
            ("c1.crawl.test", RecordType::A),
            ("c1.crawl.test", RecordType::CNAME),
            ("chain3-1.crawl.test", RecordType::A),
            ("chain12-1.crawl.test", RecordType::A),
            ("loop.crawl.test", RecordType::A),
            ("big1.crawl.test", RecordType::A),
            ("big1.crawl.test", RecordType::AAAA),
            ("nope.crawl.test", RecordType::A),
            ("v4-1.crawl.test", RecordType::AAAA),
            ("example.com", RecordType::A),
        ];
        for (i, (name, rtype)) in asks.iter().enumerate() {
            let randomize = i % 2 == 1;
            let label = format!("{}-{rtype}", name.split('.').next().unwrap());
            let q = Question::new(name, *rtype, randomize).unwrap();
            let control = control_for(*rtype, randomize);
            let packet = udp_exchange(server.addr(), &q, i as u16).await;
            seeds.push((format!("testbed-{label}-udp"), control, packet));
            if name.starts_with("big") || name.starts_with("chain12") {
                let packet = tcp_exchange(server.addr(), &q, i as u16).await;
                seeds.push((format!("testbed-{label}-tcp"), control, packet));
            }
        }
        for (label, faults) in [
            (
                "servfail",
                Faults {
                    rcode: Some(RcodeFault::ServFail),
                    ..Default::default()
                },
            ),
            (
                "refused",
                Faults {
                    rcode: Some(RcodeFault::Refused),
                    ..Default::default()
                },
            ),
            (
                "malformed",
                Faults {
                    malformed: true,
                    ..Default::default()
                },
            ),
            (
                "truncated",
                Faults {
                    truncate: true,
                    ..Default::default()
                },
            ),
        ] {
            server.set_faults(faults);
            let q = Question::new("h2.crawl.test", RecordType::A, false).unwrap();
            let packet = udp_exchange(server.addr(), &q, 77).await;
            seeds.push((format!("testbed-fault-{label}"), 0, packet));
        }
        // A forged answer (question echoed, forged address): what the
        // forgery tests send.
        let forged = crawldns_testbed::zone::forged_answer(
            7,
            &hickory_proto::op::Query::query(
                hickory_proto::rr::Name::from_ascii("h1.crawl.test.").unwrap(),
                RecordType::A,
            ),
        );
        seeds.push(("testbed-forged".into(), 0, forged));
    });
    for (name, packet) in hostile() {
        seeds.push((format!("hostile-{name}"), 0x88, packet));
    }
    for (name, control, packet) in &seeds {
        let mut bytes = vec![*control];
        bytes.extend_from_slice(packet);
        std::fs::write(decode_dir.join(name), &bytes).unwrap();
    }
    // Cache seeds: a few sequences of answers under different configs.
    let sequences: [(&str, [u8; 4], &[&str]); 4] = [
        (
            "mixed",
            [0x3f, 30, 20, 60],
            &[
                "testbed-h1-A-udp",
                "testbed-nope-A-udp",
                "testbed-c1-A-udp",
                "testbed-fault-servfail",
            ],
        ),
        (
            "tiny-cache",
            [0x01, 0x80, 1, 3],
            &[
                "testbed-h1-A-udp",
                "testbed-h1-AAAA-udp",
                "testbed-chain3-1-A-udp",
                "testbed-big1-A-tcp",
            ],
        ),
        (
            "stale",
            [0x10, 0x85, 2, 9],
            &[
                "testbed-h1-A-udp",
                "testbed-fault-refused",
                "testbed-loop-A-udp",
                "testbed-v4-1-AAAA-udp",
            ],
        ),
        (
            "hostile",
            [0x08, 0x00, 0xff, 0xff],
            &[
                "hostile-answer-ttl-max",
                "hostile-count-overflow",
                "hostile-cname-loop-2",
            ],
        ),
    ];
    for (label, config, parts) in sequences {
        let mut bytes = config.to_vec();
        for part in parts {
            let (_, control, packet) = seeds.iter().find(|(n, _, _)| n == part).unwrap();
            let len = u16::try_from(packet.len() + 1).unwrap();
            bytes.push(3);
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.push(*control);
            bytes.extend_from_slice(packet);
        }
        std::fs::write(cache_dir.join(format!("seq-{label}")), bytes).unwrap();
    }
    println!("wrote {} decode seeds and {} cache seeds", seeds.len(), 4);
}

/// The control byte (see `fuzz/src/lib.rs`) for a packet's own question.
fn control_for(rtype: RecordType, exact_case: bool) -> u8 {
    let selector = match rtype {
        RecordType::AAAA => 1,
        RecordType::CNAME => 2,
        _ => 0,
    };
    (8 << 4) | (selector << 1) | u8::from(exact_case)
}

async fn udp_exchange(server: std::net::SocketAddr, q: &Question, id: u16) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send_to(&encode_query(id, q, 1232), server).unwrap();
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 65_535];
        let (len, _) = socket.recv_from(&mut buf).unwrap();
        buf.truncate(len);
        buf
    })
    .await
    .unwrap()
}

async fn tcp_exchange(server: std::net::SocketAddr, q: &Question, id: u16) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
    let query = encode_query(id, q, 1232);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).await.unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).await.unwrap();
    reply
}

/// Hand-made hostile packets, each claiming to answer `h1.crawl.test A`.
fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    // Header: ID 0x1234, QR+AA+RD+RA, NOERROR.
    fn header(qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
        let mut h = vec![0x12, 0x34, 0x85, 0x80];
        for n in [qd, an, ns, ar] {
            h.extend_from_slice(&n.to_be_bytes());
        }
        h
    }
    fn name(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in text.split('.').filter(|l| !l.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }
    fn question() -> Vec<u8> {
        let mut q = name("h1.crawl.test");
        q.extend_from_slice(&[0, 1, 0, 1]);
        q
    }
    fn rr(owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut r = owner.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&[0, 1]);
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }
    let to_q = [0xc0, 0x0c]; // pointer to the question name
    let cat = |parts: &[&[u8]]| parts.concat();
    let mut out: Vec<(&'static str, Vec<u8>)> = vec![
        ("zero-length", Vec::new()),
        ("one-byte", vec![0x12]),
        ("header-only-claims-question", header(1, 0, 0, 0)),
        // The question's name points at itself.
        (
            "compression-loop-question",
            cat(&[&header(1, 1, 0, 0), &[0xc0, 0x0c, 0, 1, 0, 1]]),
        ),
        // An answer whose owner points at itself.
        (
            "compression-loop-answer",
            cat(&[
                &header(1, 1, 0, 0),
                &question(),
                &rr(&[0xc0, 0x1f], 1, 60, &[127, 255, 0, 66]),
            ]),
        ),
        // Two pointers pointing at each other.
        (
            "compression-loop-mutual",
            cat(&[
                &header(1, 1, 0, 0),
                &question(),
                &[0xc0, 0x21, 0xc0, 0x1f],
                &[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 255, 0, 66],
            ]),
        ),
        // A forward pointer past the end of the packet.
        (
            "pointer-past-end",
            cat(&[
                &header(1, 1, 0, 0),
                &question(),
                &rr(&[0xc3, 0xff], 1, 60, &[127, 255, 0, 66]),
            ]),
        ),
        // Counts far larger than the packet holds.
        (
            "count-overflow",
            cat(&[
                &header(1, 0xffff, 0xffff, 0xffff),
                &question(),
                &rr(&to_q, 1, 60, &[127, 255, 0, 66]),
            ]),
        ),
        (
            "question-count-two",
            cat(&[&header(2, 0, 0, 0), &question(), &question()]),
        ),
        (
            "question-count-zero",
            cat(&[
                &header(0, 1, 0, 0),
                &rr(&name("h1.crawl.test"), 1, 60, &[127, 255, 0, 66]),
            ]),
        ),
        // RDLENGTH longer than what follows.
        ("rdlength-past-end", {
            let mut p = cat(&[
                &header(1, 1, 0, 0),
                &question(),
                &rr(&to_q, 1, 60, &[127, 255, 0, 66]),
            ]);
            let n = p.len();
            p[n - 6] = 0x40; // rdlength 0x4004
            p
        }),
        // An A record with 16 bytes of data.
        (
            "a-record-wrong-length",
            cat(&[
                &header(1, 1, 0, 0),
                &question(),
                &rr(&to_q, 1, 60, &[127; 16]),
            ]),
        ),
        // A label length byte of 64..=191 (reserved label types).
        (
            "reserved-label-type",
            cat(&[&header(1, 0, 0, 0), &[0x45, b'a', 0, 0, 1, 0, 1]]),
        ),
        // A name longer than 255 bytes made of 63-byte labels.
        ("name-too-long", {
            let mut p = header(1, 0, 0, 0);
            for _ in 0..5 {
                p.push(63);
                p.extend_from_slice(&[b'a'; 63]);
            }
            p.extend_from_slice(&[0, 0, 1, 0, 1]);
            p
        }),
        // A CNAME loop across two names.
        (
            "cname-loop-2",
            cat(&[
                &header(1, 2, 0, 0),
                &question(),
                &rr(&to_q, 5, 60, &name("x.crawl.test")),
                &rr(&name("x.crawl.test"), 5, 60, &name("h1.crawl.test")),
            ]),
        ),
        // The right question, but the address belongs to another owner.
        (
            "answer-stray-owner",
            cat(&[
                &header(1, 1, 0, 0),
                &question(),
                &rr(&name("evil.test"), 1, 86_400, &[127, 255, 0, 66]),
            ]),
        ),
        // Extreme TTLs on a record and on the SOA of a negative answer.
        (
            "answer-ttl-max",
            cat(&[
                &header(1, 1, 0, 0),
                &question(),
                &rr(&to_q, 1, u32::MAX, &[127, 1, 0, 2]),
            ]),
        ),
        ("nxdomain-soa-ttl-max", {
            let mut p = header(1, 0, 1, 0);
            p[3] = 0x83; // NXDOMAIN
            let mut soa = name("ns.crawl.test");
            soa.extend_from_slice(&name("hostmaster.crawl.test"));
            for v in [1u32, 3600, 600, 86_400, u32::MAX] {
                soa.extend_from_slice(&v.to_be_bytes());
            }
            cat(&[&p, &question(), &rr(&name("crawl.test"), 6, u32::MAX, &soa)])
        }),
        // Two OPT records, one with an absurd payload and version.
        ("edns-twice", {
            let opt = |payload: u16| {
                let mut r = vec![0, 0, 41];
                r.extend_from_slice(&payload.to_be_bytes());
                r.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0]);
                r
            };
            cat(&[&header(1, 0, 0, 2), &question(), &opt(0), &opt(65_535)])
        }),
        // A query (QR=0) echoing the question.
        ("not-a-response", {
            let mut p = cat(&[&header(1, 0, 0, 0), &question()]);
            p[2] = 0x01;
            p
        }),
    ];
    // 64 KiB: a valid start, then records until the size limit, then junk.
    let mut big = cat(&[&header(1, 0xffff, 0, 0), &question()]);
    while big.len() + 16 < 65_535 {
        big.extend_from_slice(&rr(&to_q, 1, 60, &[127, 1, 0, 2]));
    }
    big.resize(65_535, 0xff);
    out.push(("size-64k", big));
    out
}
