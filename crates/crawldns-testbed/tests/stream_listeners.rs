//! The testbed's stream listeners on the wire: pipelined TCP answered out of
//! order, DNS over TLS and over HTTPS with the generated test CA, the delays
//! and faults applying to them, the stream faults (close after N answers,
//! stall mid-answer), and the per-connection counters. Clients here are
//! written directly on tokio-rustls and hyper, not the resolver's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crawldns_testbed::{
    Delay, DnsServer, DnsServerConfig, Faults, RcodeFault, Transport, ZoneConfig, ALPN_H2,
    DNS_MESSAGE, DOH_PATH,
};
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds every wait: nothing here should take more than a fraction of it.
const WAIT: Duration = Duration::from_secs(5);

async fn server(delay: Delay, faults: Faults) -> DnsServer {
    DnsServer::start(DnsServerConfig {
        zone: ZoneConfig {
            hosts: 100,
            ..Default::default()
        },
        delay,
        faults,
        dot_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        doh_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
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

fn framed(packet: &[u8]) -> Vec<u8> {
    let mut out = (packet.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(packet);
    out
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Option<Message> {
    let mut len = [0u8; 2];
    tokio::time::timeout(WAIT, r.read_exact(&mut len))
        .await
        .ok()?
        .ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tokio::time::timeout(WAIT, r.read_exact(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(Message::from_vec(&buf).unwrap())
}

fn first_v4(m: &Message) -> Option<String> {
    m.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0.to_string()),
        _ => None,
    })
}

fn tls_client(s: &DnsServer, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(s.tls().unwrap().ca_der()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn dot_connect(
    s: &DnsServer,
    connector: &tokio_rustls::TlsConnector,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(s.dot_addr().unwrap()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Sends two queries on one stream, A delayed more than AAAA: the AAAA
/// answer comes first.
async fn out_of_order<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    let mut both = framed(&query(1, "h1.crawl.test.", RecordType::A));
    both.extend(framed(&query(2, "h1.crawl.test.", RecordType::AAAA)));
    stream.write_all(&both).await.unwrap();
    let first = read_frame(stream).await.unwrap();
    let second = read_frame(stream).await.unwrap();
    assert_eq!(first.metadata.id, 2, "the faster AAAA answer first");
    assert_eq!(second.metadata.id, 1);
    assert_eq!(first_v4(&second).as_deref(), Some("127.1.0.2"));
}

#[tokio::test]
async fn pipelined_tcp_is_answered_out_of_order_on_one_connection() {
    let delay = Delay::uniform(Duration::from_millis(150))
        .with_type(RecordType::AAAA, Duration::from_millis(0));
    let s = server(delay, Faults::default()).await;
    let mut tcp = TcpStream::connect(s.addr()).await.unwrap();
    out_of_order(&mut tcp).await;
    let conns = s.counters().connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].transport, Transport::Tcp);
    assert_eq!(conns[0].queries, 2);
    assert!(conns[0].open);
    assert_eq!(s.counters().totals().tcp_connections, 1);
    drop(tcp);
    // The server notices the close and counts the connection as closed.
    let deadline = tokio::time::Instant::now() + WAIT;
    while s.counters().open_connections(Transport::Tcp) != 0 {
        assert!(tokio::time::Instant::now() < deadline, "still open");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn dot_answers_pipelined_with_the_test_ca_and_resumes_sessions() {
    let delay = Delay::uniform(Duration::from_millis(150))
        .with_type(RecordType::AAAA, Duration::from_millis(0));
    let s = server(delay, Faults::default()).await;
    let connector = tls_client(&s, b"dot");
    let mut first = dot_connect(&s, &connector).await;
    out_of_order(&mut first).await;
    let mut second = dot_connect(&s, &connector).await;
    second
        .write_all(&framed(&query(7, "h9.crawl.test.", RecordType::A)))
        .await
        .unwrap();
    let answer = read_frame(&mut second).await.unwrap();
    assert_eq!(first_v4(&answer).as_deref(), Some("127.1.0.10"));
    let conns = s.counters().connections();
    assert_eq!(conns.len(), 2, "{conns:?}");
    assert!(conns.iter().all(|c| c.transport == Transport::Tls));
    assert_eq!(conns.iter().map(|c| c.queries).collect::<Vec<_>>(), [2, 1]);
    assert!(!conns[0].resumed);
    assert!(conns[1].resumed, "the second handshake resumes the first");
    assert_eq!(s.counters().totals().tls_queries, 3);
    assert_eq!(
        s.counters()
            .queries("h9.crawl.test", RecordType::A, Transport::Tls),
        1
    );
}

#[tokio::test]
async fn dot_applies_the_dns_faults() {
    let s = server(
        Delay::default(),
        Faults {
            rcode: Some(RcodeFault::ServFail),
            ..Faults::default()
        },
    )
    .await;
    let connector = tls_client(&s, b"dot");
    let mut tls = dot_connect(&s, &connector).await;
    tls.write_all(&framed(&query(3, "h1.crawl.test.", RecordType::A)))
        .await
        .unwrap();
    let answer = read_frame(&mut tls).await.unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn close_after_n_closes_the_stream_after_n_answers() {
    let s = server(
        Delay::default(),
        Faults {
            close_after: Some(2),
            ..Faults::default()
        },
    )
    .await;
    let mut tcp = TcpStream::connect(s.addr()).await.unwrap();
    let mut three = Vec::new();
    for id in 1..=3 {
        three.extend(framed(&query(id, "h1.crawl.test.", RecordType::A)));
    }
    tcp.write_all(&three).await.unwrap();
    assert!(read_frame(&mut tcp).await.is_some());
    assert!(read_frame(&mut tcp).await.is_some());
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "closed after two: {read:?}");
}

#[tokio::test]
async fn stall_after_n_sends_half_an_answer_then_nothing() {
    let s = server(
        Delay::default(),
        Faults {
            stall_after: Some(1),
            ..Faults::default()
        },
    )
    .await;
    let connector = tls_client(&s, b"dot");
    let mut tls = dot_connect(&s, &connector).await;
    tls.write_all(&framed(&query(1, "h1.crawl.test.", RecordType::A)))
        .await
        .unwrap();
    assert!(read_frame(&mut tls).await.is_some());
    tls.write_all(&framed(&query(2, "h1.crawl.test.", RecordType::A)))
        .await
        .unwrap();
    let mut len = [0u8; 2];
    tls.read_exact(&mut len).await.unwrap();
    let full = usize::from(u16::from_be_bytes(len));
    let mut got = vec![0u8; full];
    let mut have = 0;
    // Read what comes until a short quiet period: half the message.
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(300), tls.read(&mut got[have..])).await
    {
        assert!(n > 0, "the stalled connection stays open");
        have += n;
    }
    assert_eq!(have, full / 2);
    assert_eq!(s.counters().open_connections(Transport::Tls), 1);
}

type H2Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

async fn doh_connect(s: &DnsServer) -> H2Sender {
    let connector = tls_client(s, ALPN_H2);
    let tcp = TcpStream::connect(s.doh_addr().unwrap()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_H2));
    let (send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    send
}

async fn doh_post(send: &mut H2Sender, packet: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
    let request = hyper::Request::post(format!("https://localhost{DOH_PATH}"))
        .header("content-type", DNS_MESSAGE)
        .body(Full::new(Bytes::from(packet)))
        .unwrap();
    let response = tokio::time::timeout(WAIT, send.send_request(request))
        .await
        .map_err(|_| "timeout".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((status, body.to_vec()))
}

#[tokio::test]
async fn doh_answers_post_and_get_multiplexed_on_one_connection() {
    let delay = Delay::uniform(Duration::from_millis(150))
        .with_type(RecordType::AAAA, Duration::from_millis(0));
    let s = server(delay, Faults::default()).await;
    let send = doh_connect(&s).await;
    // Two requests at once: the AAAA (no delay) completes while A waits.
    let (mut a_send, mut aaaa_send) = (send.clone(), send.clone());
    let a = tokio::spawn(async move {
        let r = doh_post(&mut a_send, query(0, "h4.crawl.test.", RecordType::A)).await;
        (r, tokio::time::Instant::now())
    });
    let aaaa = tokio::spawn(async move {
        let r = doh_post(&mut aaaa_send, query(0, "h4.crawl.test.", RecordType::AAAA)).await;
        (r, tokio::time::Instant::now())
    });
    let (a, a_done) = a.await.unwrap();
    let (aaaa, aaaa_done) = aaaa.await.unwrap();
    let (status, body) = a.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        first_v4(&Message::from_vec(&body).unwrap()).as_deref(),
        Some("127.1.0.5")
    );
    assert_eq!(aaaa.unwrap().0, 200);
    assert!(
        aaaa_done < a_done,
        "the faster answer is not held behind the slower"
    );

    // GET with the message in base64url.
    let encoded = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(query(
            0,
            "h2.crawl.test.",
            RecordType::A,
        ))
    };
    let request = hyper::Request::get(format!("https://localhost{DOH_PATH}?dns={encoded}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut get_send = send.clone();
    let response = get_send.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], DNS_MESSAGE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        first_v4(&Message::from_vec(&body).unwrap()).as_deref(),
        Some("127.1.0.3")
    );

    // A wrong path or media type is an HTTP error, not a DNS answer.
    let request = hyper::Request::post("https://localhost/other")
        .header("content-type", DNS_MESSAGE)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut other = send.clone();
    assert_eq!(other.send_request(request).await.unwrap().status(), 404);

    let conns = s.counters().connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].transport, Transport::Https);
    assert_eq!(conns[0].queries, 3);
    assert_eq!(s.counters().totals().https_queries, 3);
}

#[tokio::test]
async fn doh_close_after_n_sends_goaway_after_n_answers() {
    let s = server(
        Delay::default(),
        Faults {
            close_after: Some(2),
            ..Faults::default()
        },
    )
    .await;
    let mut send = doh_connect(&s).await;
    for _ in 0..2 {
        let (status, _) = doh_post(&mut send, query(0, "h1.crawl.test.", RecordType::A))
            .await
            .unwrap();
        assert_eq!(status, 200);
    }
    // The connection is going away: a third request on it fails.
    let third = doh_post(&mut send, query(0, "h1.crawl.test.", RecordType::A)).await;
    assert!(third.is_err(), "{third:?}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while s.counters().open_connections(Transport::Https) != 0 {
        assert!(tokio::time::Instant::now() < deadline, "still open");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn doh_stall_sends_half_a_body() {
    let s = server(
        Delay::default(),
        Faults {
            stall_after: Some(0),
            ..Faults::default()
        },
    )
    .await;
    let mut send = doh_connect(&s).await;
    let request = hyper::Request::post(format!("https://localhost{DOH_PATH}"))
        .header("content-type", DNS_MESSAGE)
        .body(Full::new(Bytes::from(query(
            0,
            "h1.crawl.test.",
            RecordType::A,
        ))))
        .unwrap();
    let response = send.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let declared: usize = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.len(), declared / 2);
    let more = tokio::time::timeout(Duration::from_millis(300), body.frame()).await;
    assert!(more.is_err(), "nothing after half the body");
}
