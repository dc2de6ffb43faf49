//! Tests of the HTTP host farm, driven by a minimal HTTP/1.1 client written
//! here on top of plain `tokio::net::TcpStream` (so no code of the crawler's
//! own fetcher is involved), which gives exact control over connections.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crawldns_testbed::http_farm::{
    FarmError, HttpFarm, HttpFarmConfig, HOST_INDEX_HEADER, SLOW_BODY_CHUNKS, SLOW_BODY_CHUNK_SIZE,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Upper bound for anything that should be quick, generous for noisy CI.
const PATIENCE: Duration = Duration::from_secs(30);

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

/// One client connection; requests are sent one after another (keep-alive).
struct Conn {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> Conn {
        let stream = timeout(PATIENCE, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        Conn {
            stream: BufReader::new(stream),
            host: addr.to_string(),
        }
    }

    async fn send(&mut self, path: &str) {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: farm-test\r\n\r\n",
            self.host
        );
        self.stream
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .expect("write request");
    }

    /// Reads the status line and headers.
    async fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        let mut line = String::new();
        self.stream
            .read_line(&mut line)
            .await
            .expect("read status line");
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {line:?}");
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            let n = self.stream.read_line(&mut line).await.expect("read header");
            assert!(n > 0, "connection closed inside the response head");
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                break;
            }
            let (name, value) = l.split_once(':').expect("header without colon");
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        (status, headers)
    }

    async fn read_response(&mut self) -> Resp {
        let (status, headers) = self.read_head().await;
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        assert!(
            resp.header("transfer-encoding").is_none(),
            "this client only reads content-length bodies: {resp:?}"
        );
        // 204 and 304 responses have no body (and no content-length).
        let len: usize = if matches!(status, 204 | 304) {
            0
        } else {
            resp.header("content-length")
                .expect("content-length")
                .parse()
                .expect("numeric content-length")
        };
        resp.body = vec![0; len];
        self.stream
            .read_exact(&mut resp.body)
            .await
            .expect("read body");
        resp
    }

    /// Sends a GET and reads its response.
    async fn get(&mut self, path: &str) -> Resp {
        timeout(PATIENCE, async {
            self.send(path).await;
            self.read_response().await
        })
        .await
        .expect("request timed out")
    }

    /// Half-closes, waits for the server to close its end, and drops.
    async fn close(mut self) {
        let _ = self.stream.get_mut().shutdown().await;
        let mut rest = Vec::new();
        let _ = timeout(PATIENCE, self.stream.read_to_end(&mut rest)).await;
    }
}

/// One request on a fresh connection, closed afterwards.
async fn get_once(addr: SocketAddr, path: &str) -> Resp {
    let mut conn = Conn::connect(addr).await;
    let resp = conn.get(path).await;
    conn.close().await;
    resp
}

/// Waits (generously) until host `n` has no open connection left.
async fn wait_until_idle(farm: &HttpFarm, n: u32) {
    let deadline = Instant::now() + PATIENCE;
    while farm.host_stats(n).unwrap().open_connections != 0 {
        assert!(
            Instant::now() < deadline,
            "host {n} still has open connections: {:?}",
            farm.host_stats(n)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn start(config: HttpFarmConfig) -> HttpFarm {
    timeout(PATIENCE, HttpFarm::start(config))
        .await
        .expect("farm start timed out")
        .expect("farm start failed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_100_hosts_and_counts_requests_per_host() {
    let farm = start(HttpFarmConfig::default()).await;
    assert_eq!(farm.hosts(), 100);
    assert_ne!(farm.port(), 0);

    let requests_for = |i: u32| u64::from(i % 5 + 1);
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let addr = farm.addr(i).unwrap();
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(addr.port(), farm.port());
        assert_eq!(
            Some(addr.ip()),
            crawldns_testbed::host_v4(i).map(Into::into)
        );
        tasks.push(tokio::spawn(async move {
            for _ in 0..requests_for(i) {
                let resp = get_once(addr, &format!("/page/{i}")).await;
                assert_eq!(resp.status, 200, "{resp:?}");
                assert_eq!(resp.host_index(), Some(i), "{resp:?}");
                assert_eq!(resp.body.len(), 1024);
                assert!(resp.body.iter().all(|&b| b == b'x'));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let stats = farm.stats();
    assert_eq!(stats.hosts.len(), 100);
    let mut expected_total = 0;
    for i in 0..100u32 {
        let host = farm.host_stats(i).unwrap();
        assert_eq!(host, stats.hosts[i as usize]);
        assert_eq!(host.requests, requests_for(i), "host {i}: {host:?}");
        assert_eq!(host.connections, requests_for(i), "host {i}: {host:?}");
        expected_total += requests_for(i);
    }
    assert_eq!(farm.total_stats().requests, expected_total);
    assert_eq!(farm.total_stats().connections, expected_total);
    assert_eq!(stats.accept_errors, 0);
    assert_eq!(stats.tls_handshakes, 0);
    assert_eq!(stats.tls_handshake_failures, 0);
    assert!(farm.host_stats(100).is_none());
    assert!(farm.addr(100).is_none());

    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_concurrent_connections() {
    let delay = Duration::from_millis(300);
    let farm = start(HttpFarmConfig {
        hosts: 10,
        response_delay: delay,
        ..HttpFarmConfig::default()
    })
    .await;

    // K connections to host 3, all open at once: every one sends a request
    // (delayed by the farm so they overlap) and stays open until all K
    // responses are in, so the farm must have seen K open at the same time.
    const K: usize = 6;
    let addr = farm.addr(3).unwrap();
    let mut conns = Vec::new();
    for _ in 0..K {
        let mut conn = Conn::connect(addr).await;
        conn.send("/").await;
        conns.push(conn);
    }
    for conn in &mut conns {
        let resp = timeout(PATIENCE, conn.read_response()).await.unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.host_index(), Some(3));
    }
    let host3 = farm.host_stats(3).unwrap();
    assert_eq!(host3.max_concurrent_connections, K as u64, "{host3:?}");
    assert_eq!(host3.open_connections, K as u64, "{host3:?}");
    assert_eq!(host3.connections, K as u64, "{host3:?}");
    assert_eq!(host3.requests, K as u64, "{host3:?}");
    assert!(farm.total_stats().max_concurrent_connections >= K as u64);

    for conn in conns {
        conn.close().await;
    }
    wait_until_idle(&farm, 3).await;
    let host3 = farm.host_stats(3).unwrap();
    assert_eq!(host3.max_concurrent_connections, K as u64, "{host3:?}");

    // One at a time to host 7: each closed (and seen closed by the farm)
    // before the next is opened.
    for _ in 0..4 {
        let resp = get_once(farm.addr(7).unwrap(), "/").await;
        assert_eq!(resp.status, 200);
        wait_until_idle(&farm, 7).await;
    }
    let host7 = farm.host_stats(7).unwrap();
    assert_eq!(host7.connections, 4, "{host7:?}");
    assert_eq!(host7.requests, 4, "{host7:?}");
    assert_eq!(host7.max_concurrent_connections, 1, "{host7:?}");
    assert_eq!(host7.open_connections, 0, "{host7:?}");

    // Untouched hosts stay at zero.
    assert_eq!(farm.host_stats(0).unwrap(), Default::default());
    let total = farm.total_stats();
    assert_eq!(total.connections, K as u64 + 4);
    assert_eq!(total.open_connections, 0);
}

#[tokio::test]
async fn keep_alive_requests_share_one_connection() {
    let farm = start(HttpFarmConfig {
        hosts: 3,
        ..HttpFarmConfig::default()
    })
    .await;
    let mut conn = Conn::connect(farm.addr(2).unwrap()).await;
    for i in 0..5 {
        let resp = conn.get(&format!("/ka/{i}")).await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.host_index(), Some(2));
        assert_eq!(resp.body.len(), 1024);
    }
    let host = farm.host_stats(2).unwrap();
    assert_eq!(host.connections, 1, "{host:?}");
    assert_eq!(host.requests, 5, "{host:?}");
    assert_eq!(host.open_connections, 1, "{host:?}");
    assert_eq!(host.max_concurrent_connections, 1, "{host:?}");
    conn.close().await;
    wait_until_idle(&farm, 2).await;
}

#[tokio::test]
async fn status_and_bytes_paths() {
    let farm = start(HttpFarmConfig {
        hosts: 2,
        body_size: 100,
        ..HttpFarmConfig::default()
    })
    .await;
    let addr = farm.addr(1).unwrap();
    let mut conn = Conn::connect(addr).await;

    let resp = conn.get("/status/500").await;
    assert_eq!(resp.status, 500);
    assert_eq!(resp.host_index(), Some(1));

    let resp = conn.get("/status/404").await;
    assert_eq!(resp.status, 404);

    let resp = conn.get("/status/204").await;
    assert_eq!(resp.status, 204);
    assert!(resp.body.is_empty());

    let resp = conn.get("/bytes/10").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"xxxxxxxxxx");

    let resp = conn.get("/bytes/0").await;
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());

    let resp = conn.get("/bytes/100000").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 100_000);

    let resp = conn.get("/").await;
    assert_eq!(resp.body.len(), 100);

    for bad in [
        "/status/abc",
        "/status/99",
        "/status/600",
        "/bytes/-1",
        "/bytes/999999999999",
    ] {
        let resp = conn.get(bad).await;
        assert_eq!(resp.status, 400, "{bad}: {resp:?}");
    }

    let host = farm.host_stats(1).unwrap();
    assert_eq!(host.requests, 12);
    assert_eq!(host.connections, 1);
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_delay_is_applied() {
    let delay = Duration::from_millis(400);
    let farm = start(HttpFarmConfig {
        hosts: 2,
        response_delay: delay,
        ..HttpFarmConfig::default()
    })
    .await;
    let mut conn = Conn::connect(farm.addr(0).unwrap()).await;
    for path in ["/", "/status/503", "/bytes/5"] {
        let started = Instant::now();
        let resp = conn.get(path).await;
        let took = started.elapsed();
        assert!(
            took >= delay,
            "{path} took {took:?}, expected at least {delay:?}"
        );
        assert_eq!(resp.host_index(), Some(0));
    }
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_sends_headers_then_dribbles() {
    // The response delay does not apply to /slow-body.
    let farm = start(HttpFarmConfig {
        hosts: 1,
        response_delay: Duration::from_secs(60),
        ..HttpFarmConfig::default()
    })
    .await;
    let mut conn = Conn::connect(farm.addr(0).unwrap()).await;
    conn.send("/slow-body").await;
    let (status, headers) = timeout(PATIENCE, conn.read_head())
        .await
        .expect("headers of /slow-body should come at once");
    assert_eq!(status, 200);
    let total = SLOW_BODY_CHUNKS * SLOW_BODY_CHUNK_SIZE;
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.clone());
    assert_eq!(len, Some(total.to_string()));

    // Some body arrives, but the whole body takes ~10 s: it cannot be
    // complete after 1 s.
    let mut first = [0u8; 1];
    timeout(PATIENCE, conn.stream.read_exact(&mut first))
        .await
        .expect("first body byte")
        .expect("read");
    let mut rest = vec![0u8; total - 1];
    let finished = timeout(Duration::from_secs(1), conn.stream.read_exact(&mut rest)).await;
    assert!(
        finished.is_err(),
        "the slow body came in less than a second"
    );
}

#[tokio::test]
async fn urls_and_shutdown() {
    let farm = start(HttpFarmConfig {
        hosts: 5,
        ..HttpFarmConfig::default()
    })
    .await;
    let port = farm.port();
    assert!(!farm.is_tls());
    assert_eq!(farm.scheme(), "http");
    assert_eq!(farm.ca_pem(), None);
    assert!(farm.test_ca().is_none());
    assert_eq!(
        farm.url(4, "/a/b"),
        format!("http://h4.crawl.test:{port}/a/b")
    );
    assert_eq!(farm.url(4, "a"), format!("http://h4.crawl.test:{port}/a"));
    let ip = crawldns_testbed::host_v4(4).unwrap();
    assert_eq!(
        farm.url_by_ip(4, "/x"),
        Some(format!("http://{ip}:{port}/x"))
    );
    assert_eq!(farm.url_by_ip(5, "/x"), None);

    // An idle keep-alive connection is closed by shutdown, and the
    // listeners are gone.
    let addr = farm.addr(1).unwrap();
    let mut conn = Conn::connect(addr).await;
    assert_eq!(conn.get("/").await.status, 200);
    farm.shutdown().await;
    let mut rest = Vec::new();
    let read = timeout(PATIENCE, conn.stream.read_to_end(&mut rest))
        .await
        .expect("connection should be closed by shutdown");
    assert!(read.is_err() || rest.is_empty(), "{read:?} {rest:?}");
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn fixed_port_and_errors() {
    let first = start(HttpFarmConfig {
        hosts: 3,
        ..HttpFarmConfig::default()
    })
    .await;
    // The same port on the same addresses is taken: a clear error naming
    // the address.
    let err = HttpFarm::start(HttpFarmConfig {
        hosts: 3,
        port: first.port(),
        ..HttpFarmConfig::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, FarmError::Bind { host: 0, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&first.addr(0).unwrap().to_string()), "{msg}");

    // After shutdown, the port can be reused by a farm asking for it.
    let port = first.port();
    first.shutdown().await;
    let second = start(HttpFarmConfig {
        hosts: 3,
        port,
        ..HttpFarmConfig::default()
    })
    .await;
    assert_eq!(second.port(), port);
    assert_eq!(
        get_once(second.addr(2).unwrap(), "/").await.host_index(),
        Some(2)
    );

    let err = HttpFarm::start(HttpFarmConfig {
        hosts: 0,
        ..HttpFarmConfig::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, FarmError::NoHosts), "{err:?}");
}
