//! `crawldns testbed` as a user runs it: the built binary, poked with `dig`
//! (a client this project did not write) and a raw HTTP/1.1 request, then
//! stopped with a signal. Everything stays on loopback.
//!
//! Needs `dig` (Debian: bind9-dnsutils; `scripts/test.sh` installs it).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crawldns_testkit::cli::lines_of;

/// How long the binary may take to print `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to exit after a signal.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

crawldns_testkit::bind_crawldns_binary!();

/// A running `crawldns testbed`, killed if a test fails before stopping it.
struct Testbed {
    child: Child,
    lines: Receiver<String>,
    /// What it printed up to and including `ready`.
    banner: Vec<String>,
}

impl Testbed {
    /// Starts `crawldns testbed ARGS` and waits for its `ready` line.
    fn start(args: &[&str]) -> Self {
        let mut child = crawldns()
            .arg("testbed")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("crawldns starts");
        let lines = lines_of(child.stdout.take().expect("stdout is piped"));
        let mut testbed = Testbed {
            child,
            lines,
            banner: Vec::new(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match testbed.lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line == "ready";
                    testbed.banner.push(line);
                    if ready {
                        return testbed;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no `ready` within {READY_TIMEOUT:?}; got {:?}",
                        testbed.banner
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = testbed.child.wait();
                    panic!(
                        "crawldns exited before `ready` ({status:?}); got {:?}",
                        testbed.banner
                    )
                }
            }
        }
    }

    /// The first word after `prefix` on the banner line starting with it.
    fn banner_word(&self, prefix: &str) -> &str {
        self.banner
            .iter()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no `{prefix}` line in {:?}", self.banner))
    }

    /// The DNS address from the `dns: ADDR` line.
    fn dns_addr(&self) -> SocketAddr {
        let word = self.banner_word("dns: ");
        word.parse()
            .unwrap_or_else(|e| panic!("bad DNS address {word:?}: {e}"))
    }

    /// The HTTP port from the `http: port PORT` line.
    fn http_port(&self) -> u16 {
        let word = self.banner_word("http: port ");
        word.parse()
            .unwrap_or_else(|e| panic!("bad HTTP port {word:?}: {e}"))
    }

    /// Sends `signal`, waits for the exit, and returns the exit status and
    /// everything printed after `ready`.
    fn stop(mut self, signal: libc::c_int) -> (ExitStatus, Vec<String>) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) on the pid of our own child, which has not been
        // waited for yet (so the pid cannot have been reused).
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal})");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "crawldns still running {EXIT_TIMEOUT:?} after signal {signal}"
            );
            thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF, which follows the exit.
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        (status, rest)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `dig @SERVER -p PORT ARGS` with a short timeout.
fn dig(server: SocketAddr, args: &[&str]) -> Output {
    Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=2", "+tries=2"])
        .args(args)
        .output()
        .expect("dig runs (Debian: apt-get install bind9-dnsutils)")
}

/// `GET /` on `addr` with HTTP/1.1, returning the whole response.
fn http_get(addr: SocketAddr, host: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    String::from_utf8_lossy(&response).into_owned()
}

/// The number after `key ` in `line` (e.g. `udp 3` → 3).
fn counter(line: &str, key: &str) -> u64 {
    let rest = line
        .split_once(&format!("{key} "))
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no `{key}` in {line:?}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|e| panic!("no number after `{key}` in {line:?}: {e}"))
}

fn line_starting<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .map(|l| l.trim_start())
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in {lines:?}"))
}

#[test]
fn serves_dns_and_http_until_sigint() {
    let testbed = Testbed::start(&[
        "--dns-addr",
        "127.0.0.1:0",
        "--http-port",
        "0",
        "--hosts",
        "20",
    ]);
    let dns = testbed.dns_addr();
    assert!(dns.ip().is_loopback(), "{dns}");
    assert_ne!(dns.port(), 0);
    let http_port = testbed.http_port();
    assert_ne!(http_port, 0);
    let dig_hint = format!("dig @127.0.0.1 -p {} h1.crawl.test", dns.port());
    assert!(
        testbed.banner.iter().any(|l| l.trim() == dig_hint),
        "no `{dig_hint}` in {:?}",
        testbed.banner
    );

    let out = dig(dns, &["h3.crawl.test", "+short"]);
    assert!(out.status.success(), "dig failed: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "127.1.0.4");

    let response = http_get(
        SocketAddr::from((Ipv4Addr::new(127, 1, 0, 4), http_port)),
        "h3.crawl.test",
    );
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-host-index: 3\r\n"),
        "{response}"
    );

    let (status, summary) = testbed.stop(libc::SIGINT);
    assert!(status.success(), "exit {status:?}; printed {summary:?}");
    assert!(
        summary.iter().any(|l| l == "stopped by SIGINT; summary:"),
        "{summary:?}"
    );
    let queries = line_starting(&summary, "dns queries:");
    assert!(counter(queries, "udp") >= 1, "{queries}");
    let answers = line_starting(&summary, "dns answers:");
    assert!(counter(answers, "responses") >= 1, "{answers}");
    let http = line_starting(&summary, "http:");
    assert!(counter(http, "requests") >= 1, "{http}");
    assert!(counter(http, "connections") >= 1, "{http}");
}

#[test]
fn servfail_fault_reaches_dig_and_sigterm_stops_cleanly() {
    let testbed = Testbed::start(&["--dns-addr", "127.0.0.1:0", "--no-http", "--servfail"]);
    assert!(
        testbed
            .banner
            .iter()
            .any(|l| l.trim() == "faults: --servfail"),
        "{:?}",
        testbed.banner
    );
    let out = dig(testbed.dns_addr(), &["h3.crawl.test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status: SERVFAIL"), "{text}");

    let (status, summary) = testbed.stop(libc::SIGTERM);
    assert!(status.success(), "exit {status:?}; printed {summary:?}");
    assert!(
        summary.iter().any(|l| l == "stopped by SIGTERM; summary:"),
        "{summary:?}"
    );
    assert!(counter(line_starting(&summary, "dns queries:"), "udp") >= 1);
    assert_eq!(line_starting(&summary, "http:"), "http: off");
}

#[test]
fn drop_fraction_above_one_is_rejected() {
    let out = crawldns()
        .args([
            "testbed",
            "--no-http",
            "--dns-addr",
            "127.0.0.1:0",
            "--drop",
            "2",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("crawldns runs");
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the fraction must be"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
}

#[test]
fn non_loopback_dns_address_is_refused() {
    // The testbed refuses before creating any socket: nothing is sent to or
    // bound on 10.0.0.1.
    let out = crawldns()
        .args(["testbed", "--no-http", "--dns-addr", "10.0.0.1:53"])
        .stdin(Stdio::null())
        .output()
        .expect("crawldns runs");
    assert_eq!(out.status.code(), Some(2), "a bad command line: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("10.0.0.1:53 is not a loopback address"),
        "{stderr}"
    );
    assert!(stderr.contains("10.0.0.1"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
}

#[test]
fn a_taken_dns_port_is_an_error_naming_the_address() {
    let first = Testbed::start(&["--dns-addr", "127.0.0.1:0", "--no-http"]);
    let taken = first.dns_addr().to_string();
    let out = crawldns()
        .args(["testbed", "--no-http", "--dns-addr", &taken])
        .stdin(Stdio::null())
        .output()
        .expect("crawldns runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&taken), "{stderr}");
    let (status, _) = first.stop(libc::SIGINT);
    assert!(status.success());
}

/// Runs `kdig @ADDR -p PORT ARGS` (Debian: knot-dnsutils) with a short
/// timeout.
fn kdig(server: SocketAddr, args: &[&str]) -> Output {
    Command::new("kdig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=2", "+retry=1"])
        .args(args)
        .output()
        .expect("kdig runs (Debian: apt-get install knot-dnsutils)")
}

#[test]
fn serves_dot_and_doh_with_a_ca_file_that_kdig_trusts() {
    let dir = std::env::temp_dir().join(format!("crawldns-testbed-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca = dir.join("ca.pem");
    let testbed = Testbed::start(&[
        "--dns-addr",
        "127.0.0.1:0",
        "--dot-addr",
        "127.0.0.1:0",
        "--doh-addr",
        "127.0.0.1:0",
        "--ca-out",
        ca.to_str().expect("utf-8 path"),
        "--no-http",
    ]);
    let dot: SocketAddr = testbed.banner_word("dot: ").parse().expect("dot address");
    let doh_url = testbed.banner_word("doh: ").to_owned();
    assert_eq!(testbed.banner_word("ca: "), ca.to_str().unwrap());
    let doh: SocketAddr = doh_url
        .strip_prefix("https://")
        .and_then(|rest| rest.strip_suffix("/dns-query"))
        .unwrap_or_else(|| panic!("bad DoH URL {doh_url}"))
        .parse()
        .expect("doh address");
    assert!(dot.ip().is_loopback() && dot.port() != 0, "{dot}");
    assert!(std::fs::read_to_string(&ca)
        .expect("CA written")
        .starts_with("-----BEGIN CERTIFICATE-----"));

    let tls_ca = format!("+tls-ca={}", ca.display());
    let out = kdig(
        dot,
        &[
            &tls_ca,
            "+tls-hostname=localhost",
            "+short",
            "h3.crawl.test",
        ],
    );
    assert!(out.status.success(), "kdig over TLS failed: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "127.1.0.4");
    let out = kdig(
        doh,
        &[
            &tls_ca,
            "+tls-hostname=localhost",
            "+https=/dns-query",
            "+short",
            "h5.crawl.test",
        ],
    );
    assert!(out.status.success(), "kdig over HTTPS failed: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "127.1.0.6");
    // A name the certificate does not carry fails verification.
    let out = kdig(
        dot,
        &[
            &tls_ca,
            "+tls-hostname=wrong.example",
            "+short",
            "h3.crawl.test",
        ],
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("127.1.0.4"),
        "kdig accepted a wrong name: {out:?}"
    );

    let (status, summary) = testbed.stop(libc::SIGINT);
    assert!(status.success(), "exit {status:?}; printed {summary:?}");
    let streams = summary
        .iter()
        .map(|l| l.trim_start())
        .find(|l| l.starts_with("dns queries: dot"))
        .unwrap_or_else(|| panic!("no DoT/DoH counters in {summary:?}"));
    assert_eq!(counter(streams, "dot"), 1, "{streams}");
    assert_eq!(counter(streams, "doh"), 1, "{streams}");
    assert!(ca.exists(), "an asked-for --ca-out file is kept");
    let _ = std::fs::remove_dir_all(&dir);
}
