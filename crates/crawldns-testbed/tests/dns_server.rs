//! The testbed DNS server on the wire: answers, delays, every fault mode, and
//! interop with `dig`, a client this project did not write.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crawldns_testbed::{
    Delay, DnsServer, DnsServerConfig, Faults, RcodeFault, Transport, ZoneConfig, FORGED_V4,
};
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

async fn server(hosts: u32) -> DnsServer {
    DnsServer::start(DnsServerConfig {
        zone: ZoneConfig {
            hosts,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .expect("testbed starts")
}

fn query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m.set_edns(Edns::new());
    m.to_vec().unwrap()
}

/// Sends one query and collects every datagram that comes back within `wait`.
async fn exchange(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    wait: Duration,
) -> Vec<(SocketAddr, Vec<u8>)> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&query(0x1234, name, rtype), server)
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65535];
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Ok((len, from))) =
        tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
    {
        got.push((from, buf[..len].to_vec()));
    }
    got
}

fn v4s(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

const WAIT: Duration = Duration::from_millis(400);

#[tokio::test]
async fn answers_hosts_over_udp_and_counts_them() {
    let s = server(100).await;
    let got = exchange(s.addr(), "h5.crawl.test.", RecordType::A, WAIT).await;
    assert_eq!(got.len(), 1);
    let m = Message::from_vec(&got[0].1).unwrap();
    assert_eq!(m.metadata.id, 0x1234);
    assert_eq!(v4s(&m), ["127.1.0.6"]);
    assert_eq!(
        s.counters()
            .queries("h5.crawl.test", RecordType::A, Transport::Udp),
        1
    );
    assert_eq!(
        s.counters()
            .queries("h5.crawl.test", RecordType::A, Transport::Tcp),
        0
    );
    assert_eq!(s.counters().totals().responses, 1);
}

#[tokio::test]
async fn two_thousand_delayed_queries_are_served_concurrently() {
    let s = DnsServer::start(DnsServerConfig {
        zone: ZoneConfig {
            hosts: 2000,
            ..Default::default()
        },
        delay: Delay::uniform(Duration::from_millis(20)),
        ..Default::default()
    })
    .await
    .unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    crawldns_sys::sockbuf::size_recv_buffer(&sock, 8 << 20);
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    sock.set_nonblocking(true).unwrap();
    let sock = UdpSocket::from_std(sock.into()).unwrap();

    let start = Instant::now();
    for i in 0..2000u16 {
        sock.send_to(
            &query(i, &format!("h{i}.crawl.test."), RecordType::A),
            s.addr(),
        )
        .await
        .unwrap();
    }
    let mut seen = vec![false; 2000];
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut answered = 0;
    while answered < 2000 {
        let Ok(Ok((len, _))) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
        else {
            break;
        };
        let m = Message::from_vec(&buf[..len]).unwrap();
        let i = usize::from(m.metadata.id);
        let expected = crawldns_testbed::host_v4(i as u32).unwrap().to_string();
        assert_eq!(v4s(&m), [expected]);
        assert!(!seen[i], "duplicate answer for {i}");
        seen[i] = true;
        answered += 1;
    }
    let elapsed = start.elapsed();
    assert_eq!(answered, 2000, "kernel drops: {:?}", s.kernel_drops());
    // Served one after another this would take 40 s; timers take ~20 ms.
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(20));
    assert_eq!(s.kernel_drops().unwrap_or(0), 0);
    assert!(
        s.recv_buffer() >= 1 << 20,
        "receive buffer {}",
        s.recv_buffer()
    );
}

#[tokio::test]
async fn per_type_delay_lets_a_overtake_aaaa() {
    let s = DnsServer::start(DnsServerConfig {
        delay: Delay::default().with_type(RecordType::AAAA, Duration::from_millis(300)),
        ..Default::default()
    })
    .await
    .unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&query(1, "h1.crawl.test.", RecordType::AAAA), s.addr())
        .await
        .unwrap();
    sock.send_to(&query(2, "h1.crawl.test.", RecordType::A), s.addr())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let started = Instant::now();
    let mut order = Vec::new();
    for _ in 0..2 {
        let (len, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        order.push(Message::from_vec(&buf[..len]).unwrap().metadata.id);
    }
    assert_eq!(order, [2, 1]);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

async fn with_faults(faults: Faults) -> DnsServer {
    let s = server(10).await;
    s.set_faults(faults);
    s
}

#[tokio::test]
async fn fault_drop_everything_and_some() {
    let s = with_faults(Faults {
        drop_fraction: 1.0,
        ..Default::default()
    })
    .await;
    assert!(exchange(s.addr(), "h1.crawl.test.", RecordType::A, WAIT)
        .await
        .is_empty());
    assert_eq!(s.counters().totals().dropped, 1);

    s.set_faults(Faults {
        drop_fraction: 0.5,
        ..Default::default()
    });
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..200u16 {
        sock.send_to(&query(i, "h1.crawl.test.", RecordType::A), s.addr())
            .await
            .unwrap();
    }
    let mut answered = 0u64;
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok(_)) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf)).await {
        answered += 1;
    }
    let dropped = s.counters().totals().dropped - 1;
    assert_eq!(answered + dropped, 200);
    // 0.5 of 200: the chance of falling outside 40..160 is below 1e-17.
    assert!((40..160).contains(&answered), "answered {answered}");
}

#[tokio::test]
async fn fault_rcodes() {
    for (fault, rcode) in [
        (RcodeFault::ServFail, ResponseCode::ServFail),
        (RcodeFault::Refused, ResponseCode::Refused),
    ] {
        let s = with_faults(Faults {
            rcode: Some(fault),
            ..Default::default()
        })
        .await;
        let got = exchange(s.addr(), "h1.crawl.test.", RecordType::A, WAIT).await;
        assert_eq!(got.len(), 1);
        let m = Message::from_vec(&got[0].1).unwrap();
        assert_eq!(m.metadata.response_code, rcode);
        assert!(m.answers.is_empty());
        assert_eq!(m.queries.len(), 1);
    }
}

#[tokio::test]
async fn fault_truncate_applies_to_udp_only() {
    let s = with_faults(Faults {
        truncate: true,
        ..Default::default()
    })
    .await;
    let got = exchange(s.addr(), "h1.crawl.test.", RecordType::A, WAIT).await;
    let m = Message::from_vec(&got[0].1).unwrap();
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    let tcp = tcp_exchange(s.addr(), "h1.crawl.test.", RecordType::A).await;
    assert!(!tcp.metadata.truncation);
    assert_eq!(v4s(&tcp), ["127.1.0.2"]);
}

#[tokio::test]
async fn fault_malformed_bytes_do_not_parse() {
    let s = with_faults(Faults {
        malformed: true,
        ..Default::default()
    })
    .await;
    let got = exchange(s.addr(), "h1.crawl.test.", RecordType::A, WAIT).await;
    assert_eq!(got.len(), 1);
    let bytes = &got[0].1;
    assert_eq!(&bytes[..2], &0x1234u16.to_be_bytes());
    assert!(Message::from_vec(bytes).is_err());
}

#[tokio::test]
async fn fault_forgeries_precede_the_genuine_answer() {
    /// Recognises the forged packet: (message, its source, the server).
    type IsForgery = fn(&Message, SocketAddr, SocketAddr) -> bool;
    let cases: [(Faults, IsForgery); 3] = [
        (
            Faults {
                wrong_id: true,
                ..Default::default()
            },
            |m, _, _| m.metadata.id != 0x1234,
        ),
        (
            Faults {
                wrong_question: true,
                ..Default::default()
            },
            |m, _, _| {
                m.metadata.id == 0x1234 && m.queries[0].name().to_ascii() == "forged.h1.crawl.test."
            },
        ),
        (
            Faults {
                wrong_port: true,
                ..Default::default()
            },
            |m, from, server| {
                m.metadata.id == 0x1234 && from.port() != server.port() && from.ip() == server.ip()
            },
        ),
    ];
    for (faults, is_forgery) in cases {
        let s = with_faults(faults.clone()).await;
        let got = exchange(s.addr(), "h1.crawl.test.", RecordType::A, WAIT).await;
        assert_eq!(got.len(), 2, "{faults:?}");
        let forged = Message::from_vec(&got[0].1).unwrap();
        assert!(
            is_forgery(&forged, got[0].0, s.addr()),
            "{faults:?}: {forged:?}"
        );
        assert_eq!(v4s(&forged), [FORGED_V4.to_string()]);
        let genuine = Message::from_vec(&got[1].1).unwrap();
        assert_eq!(got[1].0, s.addr());
        assert_eq!(genuine.metadata.id, 0x1234);
        assert_eq!(v4s(&genuine), ["127.1.0.2"]);
        assert_eq!(s.counters().totals().forgeries, 1);
    }
}

#[tokio::test]
async fn fault_down_counts_but_never_answers() {
    let s = with_faults(Faults {
        down: true,
        ..Default::default()
    })
    .await;
    assert!(exchange(s.addr(), "h1.crawl.test.", RecordType::A, WAIT)
        .await
        .is_empty());
    assert_eq!(s.counters().queries_any("h1.crawl.test.", RecordType::A), 1);
    assert_eq!(s.counters().totals().responses, 0);
    // Back up: answers again.
    s.set_faults(Faults::default());
    assert_eq!(
        exchange(s.addr(), "h1.crawl.test.", RecordType::A, WAIT)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn refuses_to_bind_outside_loopback() {
    let err = DnsServer::start(DnsServerConfig {
        addr: "0.0.0.0:0".parse().unwrap(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

async fn tcp_exchange(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
    let q = query(7, name, rtype);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    stream.write_all(&framed).await.unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

// ---- dig, a client this project did not write ----

async fn dig(server: SocketAddr, args: &[&str]) -> String {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .await
        .expect("dig is not installed: run scripts/test.sh, which installs bind9-dnsutils");
    assert!(
        out.status.success(),
        "dig {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn dig_gets_answers_over_udp_and_tcp() {
    let s = server(100).await;
    let a = s.addr();
    assert_eq!(
        dig(a, &["h7.crawl.test", "A", "+short"]).await.trim(),
        "127.1.0.8"
    );
    assert_eq!(
        dig(a, &["h7.crawl.test", "AAAA", "+short"]).await.trim(),
        "::1"
    );
    assert_eq!(
        dig(a, &["h7.crawl.test", "A", "+short", "+tcp"])
            .await
            .trim(),
        "127.1.0.8"
    );
    assert_eq!(
        s.counters()
            .queries("h7.crawl.test", RecordType::A, Transport::Udp),
        1
    );
    assert_eq!(
        s.counters()
            .queries("h7.crawl.test", RecordType::A, Transport::Tcp),
        1
    );

    let cname = dig(a, &["c7.crawl.test", "A", "+short"]).await;
    assert_eq!(
        cname.lines().collect::<Vec<_>>(),
        ["h7.crawl.test.", "127.1.0.8"]
    );
    let chain = dig(a, &["chain2-7.crawl.test", "A", "+short"]).await;
    assert_eq!(
        chain.lines().collect::<Vec<_>>(),
        ["chain1-7.crawl.test.", "h7.crawl.test.", "127.1.0.8"]
    );

    let nx = dig(a, &["h100.crawl.test", "A"]).await;
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(nx.contains("AUTHORITY: 1"), "{nx}");
    let nodata = dig(a, &["v4-7.crawl.test", "AAAA"]).await;
    assert!(
        nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0"),
        "{nodata}"
    );
}

#[tokio::test]
async fn dig_retries_a_truncated_answer_over_tcp() {
    let s = server(10).await;
    let a = s.addr();
    let udp_only = dig(a, &["big1.crawl.test", "A", "+ignore", "+bufsize=1232"]).await;
    assert!(
        udp_only.contains(" tc") || udp_only.contains("tc "),
        "{udp_only}"
    );
    assert!(udp_only.contains("ANSWER: 0"), "{udp_only}");

    let full = dig(a, &["big1.crawl.test", "A", "+short", "+bufsize=1232"]).await;
    assert_eq!(full.lines().count(), 100, "{full}");
    // One UDP query per dig run; the second dig fell back to TCP after TC.
    assert_eq!(
        s.counters()
            .queries("big1.crawl.test", RecordType::A, Transport::Udp),
        2
    );
    assert_eq!(
        s.counters()
            .queries("big1.crawl.test", RecordType::A, Transport::Tcp),
        1
    );
}
