//! The testbed DNS server as a separate process (`crawldns testbed`), with
//! DNS over TLS and DNS over HTTPS on: its CPU time is then never the
//! client's, and its counters (queries and connections per transport) are
//! read from the summary it prints when stopped with SIGINT.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::knot::{pinned_command, ScratchDir};

/// How long the testbed may take to print `ready`, and to exit after SIGINT.
const START_LIMIT: Duration = Duration::from_secs(20);
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Where a started testbed serves, from its banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Plain DNS, UDP and TCP.
    pub dns: SocketAddr,
    /// DNS over TLS.
    pub dot: SocketAddr,
    /// DNS over HTTPS: the address…
    pub doh: SocketAddr,
    /// …and the URL path.
    pub doh_path: String,
    /// The test CA's certificate (PEM), to trust.
    pub ca: PathBuf,
}

/// The server's counters, from the summary it prints when stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerSummary {
    /// Queries over UDP.
    pub udp: u64,
    /// Queries over TCP.
    pub tcp: u64,
    /// TCP connections accepted.
    pub tcp_connections: u64,
    /// Queries over TLS.
    pub dot: u64,
    /// TLS connections accepted.
    pub dot_connections: u64,
    /// Queries over HTTPS.
    pub doh: u64,
    /// HTTPS connections accepted.
    pub doh_connections: u64,
}

/// A running `crawldns testbed`. Dropping it kills the process; [`stop`]
/// stops it cleanly and returns its counters.
///
/// [`stop`]: TestbedProcess::stop
#[derive(Debug)]
pub struct TestbedProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    endpoints: Endpoints,
    pinned: Option<usize>,
    _dir: ScratchDir,
}

impl TestbedProcess {
    /// Starts `binary testbed` for hosts `h0 … h<hosts-1>`, answering after
    /// `delay_ms`, with DoT and DoH on free loopback ports, pinned to `cpu`
    /// when given and `taskset` exists. Returns once it prints `ready`.
    pub fn start(binary: &Path, hosts: u32, delay_ms: u64, cpu: Option<usize>) -> Result<Self> {
        let dir = ScratchDir::new("testbed")?;
        let ca = dir.path().join("ca.pem");
        let (mut command, pinned) = pinned_command(binary, cpu);
        command
            .arg("testbed")
            .arg("--no-http")
            .arg("--hosts")
            .arg(hosts.to_string())
            .arg("--aaaa")
            .arg("mapped")
            .arg("--dns-delay-ms")
            .arg(delay_ms.to_string())
            .arg("--dns-addr")
            .arg("127.0.0.1:0")
            .arg("--dot-addr")
            .arg("127.0.0.1:0")
            .arg("--doh-addr")
            .arg("127.0.0.1:0")
            .arg("--ca-out")
            .arg(&ca)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} testbed", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout from the testbed")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = String::new();
        let started = Instant::now();
        loop {
            let left = START_LIMIT.saturating_sub(started.elapsed());
            match lines.recv_timeout(left) {
                Ok(line) if line == "ready" => break,
                Ok(line) => {
                    banner.push_str(&line);
                    banner.push('\n');
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("the testbed did not print `ready` within {START_LIMIT:?}:\n{banner}");
                }
            }
        }
        let endpoints = match parse_banner(&banner) {
            Ok(endpoints) => endpoints,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Self {
            child,
            lines,
            endpoints,
            pinned,
            _dir: dir,
        })
    }

    /// Where it serves.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The process id (for its CPU clock).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The CPU it is pinned to, if any.
    pub fn pinned(&self) -> Option<usize> {
        self.pinned
    }

    /// Stops it with SIGINT and reads the counters it prints.
    pub fn stop(mut self) -> Result<ServerSummary> {
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: signals our own child, which has not been waited for.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let started = Instant::now();
        let mut text = String::new();
        while let Some(left) = STOP_LIMIT.checked_sub(started.elapsed()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                }
                // The pipe closed: the testbed exited.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => break,
            }
        }
        let _ = self.child.wait();
        parse_summary(&text).ok_or_else(|| anyhow!("no counters in the testbed's summary:\n{text}"))
    }
}

impl Drop for TestbedProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_end(&mut Vec::new());
        }
    }
}

/// The first word after `prefix` on the line that starts with it.
fn field<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
}

/// Reads the addresses from the testbed's banner (`dns: ADDR …`, `dot:
/// ADDR …`, `doh: https://ADDR/PATH …`, `ca: PATH …`).
pub fn parse_banner(text: &str) -> Result<Endpoints> {
    let addr = |prefix: &str| -> Result<SocketAddr> {
        let word = field(text, prefix).with_context(|| format!("no `{prefix}` in:\n{text}"))?;
        word.parse()
            .with_context(|| format!("`{prefix}{word}` is not an address"))
    };
    let url = field(text, "doh: ").with_context(|| format!("no `doh: ` in:\n{text}"))?;
    let rest = url
        .strip_prefix("https://")
        .with_context(|| format!("DoH URL {url} is not https://"))?;
    let slash = rest.find('/').unwrap_or(rest.len());
    let doh = rest[..slash]
        .parse()
        .with_context(|| format!("DoH URL {url} has no address"))?;
    let ca = field(text, "ca: ").with_context(|| format!("no `ca: ` in:\n{text}"))?;
    Ok(Endpoints {
        dns: addr("dns: ")?,
        dot: addr("dot: ")?,
        doh,
        doh_path: rest[slash..].to_string(),
        ca: PathBuf::from(ca),
    })
}

/// The numbers of a line, in order (`tcp 5 (2 tcp connections)` → 5, 2).
fn numbers(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// Reads the counters from the summary the testbed prints when stopped.
pub fn parse_summary(text: &str) -> Option<ServerSummary> {
    let line = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(numbers)
    };
    let plain = line("dns queries: udp")?;
    let secure = line("dns queries: dot")?;
    match (plain.as_slice(), secure.as_slice()) {
        ([udp, tcp, tcp_connections, ..], [dot, dot_connections, doh, doh_connections, ..]) => {
            Some(ServerSummary {
                udp: *udp,
                tcp: *tcp,
                tcp_connections: *tcp_connections,
                dot: *dot,
                dot_connections: *dot_connections,
                doh: *doh,
                doh_connections: *doh_connections,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_and_summary_are_read() {
        let banner = "zone: crawl.test with 10 hosts h0 .. h9 (A h0 = 127.1.0.1)\n\
            dns: 127.0.0.1:4000 (UDP and TCP)\n  dig @127.0.0.1 -p 4000 h1.crawl.test\n\
            dot: 127.0.0.1:4001 (DNS over TLS; name localhost or *.crawl.test)\n\
            doh: https://127.0.0.1:4002/dns-query (DNS over HTTPS, HTTP/2)\n\
            ca: /tmp/x/ca.pem (the test CA to trust)\nhttp: off (--no-http)\n";
        let e = parse_banner(banner).unwrap();
        assert_eq!(e.dns, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(e.dot, "127.0.0.1:4001".parse().unwrap());
        assert_eq!(e.doh, "127.0.0.1:4002".parse().unwrap());
        assert_eq!(e.doh_path, "/dns-query");
        assert_eq!(e.ca, PathBuf::from("/tmp/x/ca.pem"));
        assert!(parse_banner("dns: 127.0.0.1:1\n").is_err());

        let summary = "stopped by SIGINT; summary:\n\
            \x20 dns queries: udp 10, tcp 20 (3 tcp connections), unparsable 0\n\
            \x20 dns queries: dot 40 (5 connections), doh 60 (7 connections)\n\
            \x20 dns answers: responses 130, dropped 0, forged 0, kernel drops 0\n";
        assert_eq!(
            parse_summary(summary),
            Some(ServerSummary {
                udp: 10,
                tcp: 20,
                tcp_connections: 3,
                dot: 40,
                dot_connections: 5,
                doh: 60,
                doh_connections: 7,
            })
        );
        assert_eq!(parse_summary("stopped\n"), None);
    }
}
