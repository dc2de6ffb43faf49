//! Tests of the host farm over HTTPS, with clients this project did not
//! write: `curl` (Debian package `curl`, with OpenSSL), and rustls through
//! tokio-rustls with the farm's CA as the only trusted root. The HTTP/1.1
//! exchange on top of the rustls client is a minimal one written here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crawldns_testbed::http_farm::{HttpFarm, HttpFarmConfig, HOST_INDEX_HEADER};
use crawldns_testbed::tls::{TestCa, ALPN_HTTP11, LEAF_DNS_NAMES};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore, SupportedProtocolVersion};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Upper bound for anything that should be quick, generous for noisy CI.
const PATIENCE: Duration = Duration::from_secs(30);

async fn start(config: HttpFarmConfig) -> HttpFarm {
    timeout(PATIENCE, HttpFarm::start(config))
        .await
        .expect("farm start timed out")
        .expect("farm start failed")
}

async fn start_tls(hosts: u32) -> HttpFarm {
    start(HttpFarmConfig {
        hosts,
        tls: true,
        ..HttpFarmConfig::default()
    })
    .await
}

/// A rustls client configuration trusting exactly `roots`, with the aws-lc-rs
/// provider and ALPN `http/1.1`.
fn client_config(
    roots: &[CertificateDer<'static>],
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Arc::new(config)
}

/// A client configuration trusting only the farm's CA.
fn farm_client(farm: &HttpFarm) -> Arc<ClientConfig> {
    let ca = farm.test_ca().expect("a TLS farm has a CA");
    client_config(&[ca.ca_der()], rustls::DEFAULT_VERSIONS)
}

async fn tls_connect(
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    name: ServerName<'static>,
) -> std::io::Result<TlsStream<TcpStream>> {
    timeout(PATIENCE, async {
        let tcp = TcpStream::connect(addr).await?;
        TlsConnector::from(config).connect(name, tcp).await
    })
    .await
    .expect("connect and handshake timed out")
}

fn dns(name: &str) -> ServerName<'static> {
    ServerName::try_from(name.to_owned()).expect("valid server name")
}

/// The rustls error inside an I/O error from a handshake, if any.
fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Waits (generously) until `cond` holds.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn host_index(&self) -> Option<u32> {
        self.header(HOST_INDEX_HEADER)?.parse().ok()
    }
}

/// Sends `GET path` on `stream` and reads a content-length response.
async fn get<S>(stream: &mut BufReader<S>, host: &str, path: &str) -> Resp
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    timeout(PATIENCE, async {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: farm-test\r\n\r\n");
        stream
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .expect("write request");
        stream.get_mut().flush().await.expect("flush request");

        let mut line = String::new();
        stream.read_line(&mut line).await.expect("status line");
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {line:?}");
        let status: u16 = parts.next().and_then(|s| s.parse().ok()).expect("status");
        let mut headers = Vec::new();
        loop {
            line.clear();
            let n = stream.read_line(&mut line).await.expect("header");
            assert!(n > 0, "connection closed inside the response head");
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                break;
            }
            let (name, value) = l.split_once(':').expect("header without colon");
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = resp
            .header("content-length")
            .map_or(0, |v| v.parse().expect("numeric content-length"));
        resp.body = vec![0; len];
        stream.read_exact(&mut resp.body).await.expect("body");
        resp
    })
    .await
    .expect("request timed out")
}

/// Closes a TLS client connection cleanly and waits for the farm's end.
async fn close<S>(mut stream: BufReader<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = stream.get_mut().shutdown().await;
    let mut rest = Vec::new();
    let _ = timeout(PATIENCE, stream.read_to_end(&mut rest)).await;
}

/// A file holding the farm's CA PEM, removed on drop.
struct CaFile(PathBuf);

impl CaFile {
    fn new(farm: &HttpFarm) -> CaFile {
        let path = std::env::temp_dir().join(format!(
            "crawldns-farm-ca-{}-{}.pem",
            std::process::id(),
            farm.port()
        ));
        std::fs::write(&path, farm.ca_pem().expect("TLS farm has a CA PEM")).expect("write CA");
        CaFile(path)
    }
}

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs curl with a clean environment (no proxy, no user config) and
/// returns (exit status, stdout, stderr).
async fn curl(args: &[String]) -> (std::process::ExitStatus, String, String) {
    let out = timeout(
        PATIENCE,
        tokio::process::Command::new("curl")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("--disable") // ignore ~/.curlrc; must come first
            .args(["--silent", "--show-error", "--noproxy", "*"])
            .args(["--max-time", "20"])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("curl timed out")
    .unwrap_or_else(|e| panic!("cannot run curl ({e}); install it (Debian: apt-get install curl)"));
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--resolve h<n>.crawl.test:PORT:<address of host n>`.
fn resolve_arg(farm: &HttpFarm, n: u32) -> [String; 2] {
    let addr = farm.addr(n).unwrap();
    [
        "--resolve".to_owned(),
        format!("h{n}.crawl.test:{}:{}", addr.port(), addr.ip()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_fetches_over_https_with_the_farm_ca() {
    let farm = start_tls(10).await;
    let ca = CaFile::new(&farm);
    let port = farm.port();
    assert_eq!(farm.addr(3).unwrap().ip(), Ipv4Addr::new(127, 1, 0, 4));
    let url = farm.url(3, "/");
    assert_eq!(url, format!("https://h3.crawl.test:{port}/"));

    // Headers to stdout, body discarded, then the status and HTTP version.
    let mut args = vec![
        "--cacert".to_owned(),
        ca.0.display().to_string(),
        "--dump-header".to_owned(),
        "-".to_owned(),
        "--output".to_owned(),
        "/dev/null".to_owned(),
        "--write-out".to_owned(),
        "code=%{http_code} version=%{http_version} verify=%{ssl_verify_result}\\n".to_owned(),
    ];
    args.extend(resolve_arg(&farm, 3));
    args.push(url.clone());
    let (status, stdout, stderr) = curl(&args).await;
    assert!(
        status.success(),
        "curl failed: {status}\n{stderr}\n{stdout}"
    );
    assert!(stdout.starts_with("HTTP/1.1 200"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_end().eq_ignore_ascii_case("x-host-index: 3")),
        "{stdout}"
    );
    // curl offers h2 too; the farm picks http/1.1 by ALPN.
    assert!(stdout.contains("code=200 version=1.1 verify=0"), "{stdout}");

    // Two URLs in one curl run share one TLS connection (keep-alive), and
    // a third goes to another host.
    let mut args = vec![
        "--cacert".to_owned(),
        ca.0.display().to_string(),
        "--output".to_owned(),
        "/dev/null".to_owned(),
        "--output".to_owned(),
        "/dev/null".to_owned(),
        "--output".to_owned(),
        "/dev/null".to_owned(),
        "--write-out".to_owned(),
        "%{http_code} %header{x-host-index}\\n".to_owned(),
    ];
    args.extend(resolve_arg(&farm, 3));
    args.extend(resolve_arg(&farm, 5));
    args.extend([
        farm.url(3, "/bytes/10"),
        farm.url(3, "/status/404"),
        farm.url(5, "/"),
    ]);
    let (status, stdout, stderr) = curl(&args).await;
    assert!(
        status.success(),
        "curl failed: {status}\n{stderr}\n{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines, ["200 3", "404 3", "200 5"], "{stdout}");

    let h3 = farm.host_stats(3).unwrap();
    assert_eq!(h3.requests, 3, "{h3:?}");
    assert_eq!(h3.connections, 2, "{h3:?}");
    let h5 = farm.host_stats(5).unwrap();
    assert_eq!(h5.requests, 1, "{h5:?}");
    assert_eq!(h5.connections, 1, "{h5:?}");
    let stats = farm.stats();
    assert_eq!(stats.tls_handshakes, 3, "{stats:?}");
    assert_eq!(stats.tls_handshake_failures, 0, "{stats:?}");

    // Without the CA, curl refuses the certificate (exit 60), and the farm
    // counts a failed handshake.
    let mut args = vec!["--output".to_owned(), "/dev/null".to_owned()];
    args.extend(resolve_arg(&farm, 3));
    args.push(url);
    let (status, _stdout, stderr) = curl(&args).await;
    assert_eq!(status.code(), Some(60), "{stderr}");
    wait_for("the farm to count curl's failed handshake", || {
        farm.stats().tls_handshake_failures == 1
    })
    .await;
    assert_eq!(farm.host_stats(3).unwrap().requests, 3);

    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rustls_client_trusting_only_the_ca_gets_pages() {
    let farm = start_tls(10).await;
    let config = farm_client(&farm);

    let tls = tls_connect(
        Arc::clone(&config),
        farm.addr(3).unwrap(),
        dns("h3.crawl.test"),
    )
    .await
    .expect("handshake with the farm CA as the only root");
    {
        let (_, conn) = tls.get_ref();
        assert_eq!(conn.alpn_protocol(), Some(ALPN_HTTP11));
        assert_eq!(conn.protocol_version(), Some(ProtocolVersion::TLSv1_3));
        let chain = conn.peer_certificates().expect("server certificates");
        assert_eq!(chain.len(), 2, "leaf and CA");
        let ca = farm.test_ca().unwrap();
        assert_eq!(chain[0], ca.leaf_der());
        assert_eq!(chain[1], ca.ca_der());
    }
    let host = format!("h3.crawl.test:{}", farm.port());
    let mut stream = BufReader::new(tls);
    for path in ["/", "/bytes/5", "/status/503"] {
        let resp = get(&mut stream, &host, path).await;
        assert_eq!(resp.host_index(), Some(3), "{resp:?}");
        match path {
            "/" => {
                assert_eq!(resp.status, 200);
                assert_eq!(resp.body.len(), 1024);
            }
            "/bytes/5" => assert_eq!(resp.body, b"xxxxx"),
            _ => assert_eq!(resp.status, 503),
        }
    }
    let h3 = farm.host_stats(3).unwrap();
    assert_eq!(h3.requests, 3, "{h3:?}");
    assert_eq!(h3.connections, 1, "{h3:?}");
    assert_eq!(h3.open_connections, 1, "{h3:?}");
    close(stream).await;
    wait_for("host 3 to be idle", || {
        farm.host_stats(3).unwrap().open_connections == 0
    })
    .await;

    // TLS 1.2 works too.
    let tls12 = client_config(
        &[farm.test_ca().unwrap().ca_der()],
        &[&rustls::version::TLS12],
    );
    let tls = tls_connect(tls12, farm.addr(4).unwrap(), dns("h4.crawl.test"))
        .await
        .expect("TLS 1.2 handshake");
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_2)
    );
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_HTTP11));
    let mut stream = BufReader::new(tls);
    let resp = get(&mut stream, "h4.crawl.test", "/").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.host_index(), Some(4));
    close(stream).await;

    let stats = farm.stats();
    assert_eq!(stats.tls_handshakes, 2, "{stats:?}");
    assert_eq!(stats.tls_handshake_failures, 0, "{stats:?}");
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_names() {
    let farm = start_tls(5).await;
    let config = farm_client(&farm);
    let addr = farm.addr(2).unwrap();

    // The names the leaf covers: the wildcard (one label only), the apex,
    // localhost, and the IP address 127.0.0.1.
    assert_eq!(LEAF_DNS_NAMES, ["*.crawl.test", "crawl.test", "localhost"]);
    let good = [
        dns("h2.crawl.test"),
        dns("h999999.crawl.test"),
        dns("crawl.test"),
        dns("localhost"),
        ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into()),
    ];
    for name in good {
        let tls = tls_connect(Arc::clone(&config), addr, name.clone())
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        close(BufReader::new(tls)).await;
    }
    let bad = [
        dns("a.h2.crawl.test"),
        dns("h2.crawl.example"),
        ServerName::IpAddress(IpAddr::V4(Ipv4Addr::new(127, 1, 0, 3)).into()),
    ];
    let bad_count = bad.len() as u64;
    for name in bad {
        let e = tls_connect(Arc::clone(&config), addr, name.clone())
            .await
            .expect_err(&format!("{name:?} must not verify"));
        assert!(
            matches!(
                rustls_error(&e),
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. }
                        | rustls::CertificateError::NotValidForName
                ))
            ),
            "{name:?}: {e:?}"
        );
    }
    wait_for("the farm to count the name mismatches", || {
        farm.stats().tls_handshake_failures == bad_count
    })
    .await;
    assert_eq!(farm.stats().tls_handshakes, 5);
    assert_eq!(farm.host_stats(2).unwrap().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusting_client_fails_and_is_counted() {
    let farm = start_tls(5).await;
    let addr = farm.addr(1).unwrap();

    // A client that trusts some other CA, not the farm's.
    let other = TestCa::generate().unwrap();
    let stranger = client_config(&[other.ca_der()], rustls::DEFAULT_VERSIONS);
    let e = tls_connect(stranger, addr, dns("h1.crawl.test"))
        .await
        .expect_err("a client that does not trust the farm CA must fail");
    assert!(
        matches!(
            rustls_error(&e),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "{e:?}"
    );
    wait_for("the farm to count one handshake failure", || {
        farm.stats().tls_handshake_failures == 1
    })
    .await;
    let stats = farm.stats();
    assert_eq!(stats.tls_handshakes, 0, "{stats:?}");
    assert_eq!(stats.total.requests, 0, "{stats:?}");
    assert_eq!(farm.host_stats(1).unwrap().connections, 1);
    wait_for("host 1 to be idle", || {
        farm.host_stats(1).unwrap().open_connections == 0
    })
    .await;

    // Plain HTTP to a TLS listener fails the handshake too (counted, no
    // response), and so does a client that closes before its hello.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: h1.crawl.test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = timeout(PATIENCE, plain.read_to_end(&mut answer))
        .await
        .expect("the farm closes a plain-HTTP connection to a TLS port");
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    drop(TcpStream::connect(addr).await.unwrap());
    wait_for("the farm to count three handshake failures", || {
        farm.stats().tls_handshake_failures == 3
    })
    .await;

    // The farm keeps serving: a trusting client still gets its page.
    let tls = tls_connect(farm_client(&farm), addr, dns("h1.crawl.test"))
        .await
        .expect("trusted handshake after failures");
    let mut stream = BufReader::new(tls);
    let resp = get(&mut stream, "h1.crawl.test", "/").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.host_index(), Some(1));
    close(stream).await;
    let stats = farm.stats();
    assert_eq!(stats.tls_handshakes, 1, "{stats:?}");
    assert_eq!(stats.tls_handshake_failures, 3, "{stats:?}");
    assert_eq!(stats.total.requests, 1, "{stats:?}");
    assert_eq!(stats.accept_errors, 0, "{stats:?}");
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_requests_per_host_over_https() {
    let farm = start_tls(30).await;
    let config = farm_client(&farm);
    let requests_for = |i: u32| u64::from(i % 4 + 1);
    let mut tasks = Vec::new();
    for i in 0..30u32 {
        let addr = farm.addr(i).unwrap();
        let config = Arc::clone(&config);
        tasks.push(tokio::spawn(async move {
            let name = format!("h{i}.crawl.test");
            for _ in 0..requests_for(i) {
                let tls = tls_connect(Arc::clone(&config), addr, dns(&name))
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let mut stream = BufReader::new(tls);
                let resp = get(&mut stream, &name, &format!("/page/{i}")).await;
                assert_eq!(resp.status, 200, "{resp:?}");
                assert_eq!(resp.host_index(), Some(i), "{resp:?}");
                assert_eq!(resp.body.len(), 1024);
                close(stream).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut total = 0;
    for i in 0..30u32 {
        let host = farm.host_stats(i).unwrap();
        assert_eq!(host.requests, requests_for(i), "host {i}: {host:?}");
        assert_eq!(host.connections, requests_for(i), "host {i}: {host:?}");
        total += requests_for(i);
    }
    let stats = farm.stats();
    assert_eq!(stats.total.requests, total);
    assert_eq!(stats.tls_handshakes, total);
    assert_eq!(stats.tls_handshake_failures, 0);
    farm.shutdown().await;
}

#[tokio::test]
async fn urls_ca_and_shutdown_with_tls() {
    let farm = start_tls(5).await;
    let port = farm.port();
    assert!(farm.is_tls());
    assert_eq!(farm.scheme(), "https");
    assert_eq!(
        farm.url(4, "a/b"),
        format!("https://h4.crawl.test:{port}/a/b")
    );
    let ip = crawldns_testbed::host_v4(4).unwrap();
    assert_eq!(
        farm.url_by_ip(4, "/x"),
        Some(format!("https://{ip}:{port}/x"))
    );
    let pem = farm.ca_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert_eq!(pem, farm.test_ca().unwrap().ca_pem());
    assert!(format!("{farm:?}").contains("tls: true"));

    // Two farms get two different CAs.
    let other = start_tls(1).await;
    assert_ne!(other.ca_pem(), farm.ca_pem());
    other.shutdown().await;

    // An idle keep-alive TLS connection is closed by shutdown.
    let addr = farm.addr(1).unwrap();
    let tls = tls_connect(farm_client(&farm), addr, dns("h1.crawl.test"))
        .await
        .unwrap();
    let mut stream = BufReader::new(tls);
    assert_eq!(get(&mut stream, "h1.crawl.test", "/").await.status, 200);
    farm.shutdown().await;
    let mut rest = Vec::new();
    let read = timeout(PATIENCE, stream.read_to_end(&mut rest))
        .await
        .expect("connection should be closed by shutdown");
    assert!(read.is_err() || rest.is_empty(), "{read:?} {rest:?}");
    assert!(TcpStream::connect(addr).await.is_err());
}
