//! `--metrics-addr`: the endpoint is scraped while `resolve` and `fetch`
//! run against the testbed (started in this process), and its numbers are
//! checked exactly once the run's records are out.

crawldns_testkit::bind_crawldns_binary!();

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::{Duration, Instant};

use crawldns_testkit::cli::{lines_of, texts, Bed, BedConfig};

/// How long anything may take on a slow, loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `crawldns` whose stdout and stderr are read line by line.
struct Running {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str], stdin: &str) -> Self {
        let mut child = crawldns()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("crawldns starts");
        let mut pipe = child.stdin.take().expect("piped");
        pipe.write_all(stdin.as_bytes()).expect("write stdin");
        drop(pipe);
        let stdout = lines_of(child.stdout.take().expect("piped"));
        let stderr = lines_of(child.stderr.take().expect("piped"));
        Self {
            child,
            stdout,
            stderr,
            stderr_seen: Vec::new(),
        }
    }

    /// Waits for the `metrics: http://ADDR/metrics` line.
    fn metrics_addr(&mut self) -> SocketAddr {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.stderr.recv_timeout(left).unwrap_or_else(|e| {
                panic!("no metrics line ({e}); stderr: {:?}", self.stderr_seen)
            });
            self.stderr_seen.push(line.clone());
            if let Some(rest) = line.strip_prefix("metrics: http://") {
                let addr = rest.strip_suffix("/metrics").expect("…/metrics");
                return addr.parse().expect("an address");
            }
        }
    }

    /// Waits for `n` stdout lines.
    fn records(&mut self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        (0..n)
            .map(|i| {
                let left = deadline.saturating_duration_since(Instant::now());
                self.stdout
                    .recv_timeout(left)
                    .unwrap_or_else(|e| panic!("record {i} of {n} missing: {e}"))
            })
            .collect()
    }

    /// Sends `signal`, waits for the exit; returns the code and the rest of
    /// stderr.
    fn stop(mut self, signal: libc::c_int) -> (Option<i32>, String) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) on our own child, not yet waited for.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "still running after the signal");
            thread::sleep(Duration::from_millis(20));
        };
        let mut rest = self.stderr_seen.join("\n");
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            rest.push('\n');
            rest.push_str(&line);
        }
        (status.code(), rest)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `GET path` over HTTP/1.1; returns the status line, headers and body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_owned(), body.to_owned())
}

/// The value of the sample `name` (with its labels, as printed).
fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{body}"))
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn resolve_serves_live_metrics_until_stopped() {
    let bed = Bed::start(BedConfig {
        http: false,
        dns_delay: Duration::from_millis(300),
        ..BedConfig::default()
    });
    let names: String = (0..10)
        .map(|i| format!("h{i}.crawl.test\n"))
        .chain(["nope.crawl.test\n".to_owned()])
        .collect();
    let mut running = Running::start(
        &[
            "resolve",
            "--nameserver",
            &bed.nameserver(),
            "--type",
            "A",
            "--concurrency",
            "1",
            "--metrics-addr",
            "127.0.0.1:0",
            "--linger-ms",
            "120000",
        ],
        &names,
    );
    let addr = running.metrics_addr();
    assert!(addr.ip().is_loopback());

    // During the run: 11 lookups one at a time, 300 ms each.
    let (head, body) = get(addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        body.contains("# TYPE crawldns_resolver_lookups_total counter"),
        "{body}"
    );
    // No slow names here: no question was answered late.
    assert_eq!(sample(&body, "crawldns_resolver_late_answers_total"), 0.0);
    let early = sample(&body, "crawldns_resolver_lookups_total");
    assert!(
        early < 11.0,
        "scraped during the run: {early} lookups so far"
    );

    let (head, _) = get(addr, "/other");
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");

    // After the last record: the whole run's numbers.
    running.records(11);
    let (_, body) = get(addr, "/metrics");
    assert_eq!(sample(&body, "crawldns_resolver_lookups_total"), 11.0);
    assert_eq!(
        sample(
            &body,
            "crawldns_resolver_queries_sent_total{transport=\"udp\"}"
        ),
        11.0
    );
    assert_eq!(
        sample(
            &body,
            "crawldns_resolver_queries_sent_total{transport=\"tcp\"}"
        ),
        0.0
    );
    assert_eq!(
        sample(&body, "crawldns_resolver_failures_total{kind=\"nxdomain\"}"),
        1.0
    );
    assert_eq!(
        sample(&body, "crawldns_resolver_failures_total{kind=\"timeout\"}"),
        0.0
    );
    assert_eq!(sample(&body, "crawldns_resolver_cache_hits_total"), 0.0);
    assert_eq!(sample(&body, "crawldns_resolver_timeouts_total"), 0.0);
    assert_eq!(
        sample(&body, "crawldns_resolver_aaaa_skipped_total"),
        0.0,
        "--type A asks for no AAAA: none skipped"
    );
    let server = format!("{{server=\"{}\"}}", bed.dns_addr());
    assert_eq!(
        sample(&body, &format!("crawldns_resolver_server_down{server}")),
        0.0
    );
    assert_eq!(
        sample(
            &body,
            &format!("crawldns_resolver_server_rtt_samples_total{server}")
        ),
        11.0
    );
    let srtt = sample(
        &body,
        &format!("crawldns_resolver_server_srtt_seconds{server}"),
    );
    assert!((0.29..5.0).contains(&srtt), "srtt {srtt}");
    let hist = "crawldns_resolver_lookup_duration_seconds";
    assert!(body.contains(&format!("# TYPE {hist} histogram")), "{body}");
    assert_eq!(sample(&body, &format!("{hist}_count")), 11.0);
    assert_eq!(sample(&body, &format!("{hist}_bucket{{le=\"0.25\"}}")), 0.0);
    assert_eq!(
        sample(&body, &format!("{hist}_bucket{{le=\"+Inf\"}}")),
        11.0
    );
    let sum = sample(&body, &format!("{hist}_sum"));
    assert!(sum >= 11.0 * 0.29, "sum {sum}");

    let (code, stderr) = running.stop(libc::SIGTERM);
    assert_eq!(code, Some(3), "one NXDOMAIN: {stderr}");
    assert!(stderr.contains(": 10 ok, 1 nxdomain"), "{stderr}");
}

#[test]
fn fetch_serves_outcomes_connections_and_ttfb() {
    let bed = Bed::start(BedConfig::default());
    let urls = [bed.url(1, "/"), bed.url(2, "/"), bed.url(3, "/status/503")].join("\n");
    let mut running = Running::start(
        &[
            "fetch",
            "--nameserver",
            &bed.nameserver(),
            "--metrics-addr",
            "127.0.0.1:0",
            "--linger-ms",
            "120000",
        ],
        &urls,
    );
    let addr = running.metrics_addr();
    running.records(3);
    let (head, body) = get(addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let requests = |class: &str| {
        sample(
            &body,
            &format!("crawldns_fetch_requests_total{{class=\"{class}\"}}"),
        )
    };
    assert_eq!(requests("ok"), 2.0);
    assert_eq!(requests("http_status"), 1.0);
    assert_eq!(requests("dns"), 0.0);
    assert_eq!(
        sample(&body, "crawldns_fetch_connections_opened_total"),
        3.0
    );
    assert_eq!(
        sample(&body, "crawldns_fetch_connections_reused_total"),
        0.0
    );
    assert_eq!(sample(&body, "crawldns_fetch_ttfb_seconds_count"), 3.0);
    assert_eq!(
        sample(&body, "crawldns_fetch_ttfb_seconds_bucket{le=\"+Inf\"}"),
        3.0
    );
    assert_eq!(sample(&body, "crawldns_fetch_dns_seconds_count"), 3.0);
    // The resolver's numbers are there too: 3 hosts pre-warmed.
    assert!(
        sample(&body, "crawldns_resolver_lookups_total") >= 3.0,
        "{body}"
    );

    let (code, stderr) = running.stop(libc::SIGINT);
    assert_eq!(code, Some(3), "one 503: {stderr}");
    assert!(stderr.contains("errors: http_status/503 1"), "{stderr}");
}

#[test]
fn a_non_loopback_metrics_address_is_refused() {
    for addr in ["0.0.0.0:9464", "192.0.2.1:9464", "[::]:9464"] {
        let out = run(
            &[
                "resolve",
                "--nameserver",
                "127.0.0.1:5353",
                "--metrics-addr",
                addr,
            ],
            "",
        );
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{addr}: {stderr}");
        assert!(
            stderr.contains("not a loopback address"),
            "{addr}: {stderr}"
        );
    }
}
