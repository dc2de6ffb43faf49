//! The CLI child-process harness: the testbed started in the test process
//! (on its own Tokio runtime, so the test itself can block on the binary),
//! and running the built `crawldns` binary with piped input and output.
//!
//! Cargo tells only the CLI crate's own integration tests where its binary
//! is (`CARGO_BIN_EXE_crawldns`, at compile time), so a test file binds the
//! harness to it with [`bind_crawldns_binary!`](crate::bind_crawldns_binary).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use crawldns_testbed::http_farm::{HttpFarm, HttpFarmConfig};
use crawldns_testbed::{Delay, DnsServer, DnsServerConfig, ZoneConfig};
use tokio::runtime::Runtime;

/// Defines, in the calling test file, `crawldns()` (a [`Command`] for the
/// built binary) and `run(args, stdin)` (it, run to completion with `stdin`
/// as its input; see [`run`]).
#[macro_export]
macro_rules! bind_crawldns_binary {
    () => {
        /// The built binary.
        #[allow(dead_code)]
        fn crawldns() -> ::std::process::Command {
            ::std::process::Command::new(env!("CARGO_BIN_EXE_crawldns"))
        }

        /// Runs `crawldns ARGS` with `stdin` as its standard input.
        #[allow(dead_code)]
        fn run(args: &[&str], stdin: &str) -> ::std::process::Output {
            $crate::cli::run(crawldns(), args, stdin)
        }
    };
}

/// Runs `command ARGS` with `stdin` as its standard input, to completion.
pub fn run(mut command: Command, args: &[&str], stdin: &str) -> Output {
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("crawldns starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let input = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("crawldns runs");
    let _ = writer.join();
    out
}

/// The lines of `pipe` (a child's stdout or stderr), read on a thread of
/// their own: a test waits for a line with `recv_timeout`, the event it
/// synchronises on.
pub fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Stdout and stderr as text, for assertions.
pub fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every stdout line parsed as JSON.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
        })
        .collect()
}

/// A temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory whose name contains `tag`.
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "crawldns-cli-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    /// Writes `text` to `name` in the directory; returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The testbed's DNS server and (optionally) HTTP farm, on loopback.
pub struct Bed {
    runtime: Runtime,
    dns: Option<DnsServer>,
    farm: Option<HttpFarm>,
}

/// How to start a [`Bed`].
pub struct BedConfig {
    /// Hosts of the zone (and of the farm).
    pub hosts: u32,
    /// Delay of every DNS answer.
    pub dns_delay: Duration,
    /// Start the HTTP farm too.
    pub http: bool,
    /// Serve the farm over TLS.
    pub tls: bool,
    /// Bytes of every response body.
    pub body_size: usize,
    /// Delay of every HTTP response's headers.
    pub http_delay: Duration,
    /// The TTL of the zone's records.
    pub dns_ttl: u32,
    /// Also listen for DNS over TLS and DNS over HTTPS (see
    /// [`Bed::dns_url`], [`Bed::dns_ca_pem`]).
    pub dns_tls: bool,
}

impl Default for BedConfig {
    fn default() -> Self {
        Self {
            hosts: 20,
            dns_delay: Duration::ZERO,
            http: true,
            tls: false,
            body_size: 1000,
            http_delay: Duration::ZERO,
            dns_ttl: ZoneConfig::default().ttl,
            dns_tls: false,
        }
    }
}

impl Bed {
    /// Starts what `config` asks for; panics if it cannot (a test without
    /// its testbed cannot run).
    pub fn start(config: BedConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (dns, farm) = runtime.block_on(async {
            let dns = DnsServer::start(DnsServerConfig {
                zone: ZoneConfig {
                    hosts: config.hosts,
                    ttl: config.dns_ttl,
                    ..ZoneConfig::default()
                },
                delay: Delay::uniform(config.dns_delay),
                dot_addr: config
                    .dns_tls
                    .then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
                doh_addr: config
                    .dns_tls
                    .then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
                ..DnsServerConfig::default()
            })
            .await
            .expect("DNS server starts");
            let farm = if config.http {
                Some(
                    HttpFarm::start(HttpFarmConfig {
                        hosts: config.hosts,
                        body_size: config.body_size,
                        tls: config.tls,
                        response_delay: config.http_delay,
                        ..HttpFarmConfig::default()
                    })
                    .await
                    .expect("HTTP farm starts"),
                )
            } else {
                None
            };
            (dns, farm)
        });
        Self {
            runtime,
            dns: Some(dns),
            farm,
        }
    }

    /// `--nameserver` for this bed over `scheme` (`tls` or `https`; the
    /// bed must have been started with `dns_tls`).
    pub fn dns_url(&self, scheme: &str) -> String {
        let dns = self.dns();
        match scheme {
            "tls" => format!("tls://{}", dns.dot_addr().expect("dns_tls")),
            "https" => format!("https://{}/dns-query", dns.doh_addr().expect("dns_tls")),
            other => format!("{other}://{}", dns.addr()),
        }
    }

    /// The CA certificate (PEM) of the bed's DoT and DoH listeners.
    pub fn dns_ca_pem(&self) -> String {
        self.dns().tls().expect("dns_tls").ca_pem()
    }

    /// `--nameserver` for this bed.
    pub fn nameserver(&self) -> String {
        self.dns_addr().to_string()
    }

    /// The DNS server.
    pub fn dns(&self) -> &DnsServer {
        self.dns.as_ref().expect("DNS is up")
    }

    /// The DNS server's address.
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns.as_ref().expect("DNS is up").addr()
    }

    /// The HTTP farm.
    pub fn farm(&self) -> &HttpFarm {
        self.farm.as_ref().expect("this bed has an HTTP farm")
    }

    /// `http://h<n>.crawl.test:<port><path>`.
    pub fn url(&self, n: u32, path: &str) -> String {
        self.farm().url(n, path)
    }

    /// The HTTP port.
    pub fn port(&self) -> u16 {
        self.farm().port()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let dns = self.dns.take();
        let farm = self.farm.take();
        self.runtime.block_on(async move {
            if let Some(farm) = farm {
                farm.shutdown().await;
            }
            if let Some(dns) = dns {
                dns.shutdown();
            }
        });
    }
}

/// The bin directory of the test venv that `scripts/pyenv.sh` makes (and
/// fills with warcio, aiohttp, ...), made first if need be.
pub fn test_venv_bin() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/pyenv.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/pyenv.sh runs");
    assert!(out.status.success(), "scripts/pyenv.sh failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("bin")
}
