//! The network namespace in which the system resolver (glibc
//! `getaddrinfo`) is pointed at the test server. The mechanism is
//! [`crawldns_testbed::netns`]; this adds the bench's naming and running
//! the bench binary as a child in it (what the child runs is the suite's).

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use crawldns_testbed::netns::GlibcNamespace;

/// Prefix of the namespace's name (`crawldns-bench-<pid>`).
const PREFIX: &str = "crawldns-bench-";

/// Set in the child's environment to the namespace's name.
pub const ENV: &str = "CRAWLDNS_BENCH_NETNS";

/// The server glibc is pointed at inside the namespace.
pub const SERVER: SocketAddr = crawldns_testbed::netns::GLIBC_SERVER;

/// Why the namespace cannot be made here, or `None` when it can.
pub fn unavailable() -> Option<String> {
    crawldns_testbed::netns::unavailable().map(|why| format!("skipped: {why}"))
}

/// The namespace, removed (with its /etc/netns files) on drop.
#[derive(Debug)]
pub struct Namespace {
    inner: GlibcNamespace,
}

impl Namespace {
    /// Creates the namespace with loopback up and its resolv.conf, removing
    /// leftovers of crashed runs first.
    pub fn create() -> Result<Self> {
        Ok(Self {
            inner: GlibcNamespace::create(PREFIX)?,
        })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Runs this binary with `args` in a child process inside the
    /// namespace, at most `limit`, and returns its stdout. The child's
    /// progress goes to our stderr.
    pub fn run_self(&self, args: &[&str], limit: Duration) -> Result<String> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let mut command = Command::new("ip");
        command
            .args(self.inner.exec_args())
            .arg(exe)
            .args(args)
            .env(ENV, self.inner.name())
            .stdin(Stdio::null());
        let out = crate::process::stdout_with_timeout(&mut command, limit)
            .context("running the getaddrinfo peers in the network namespace")?;
        if !out.status.success() {
            bail!("netns child failed ({})", out.status);
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Refuses unless this process is the harness's child inside the namespace
/// and the server is 127.0.0.1:53: the system resolver then cannot send a
/// query anywhere but the test server.
pub fn check_isolated(server: SocketAddr) -> Result<()> {
    if !std::env::var(ENV).is_ok_and(|name| name.starts_with(PREFIX)) {
        bail!("the getaddrinfo peers only run inside the bench's network namespace");
    }
    if server != SERVER {
        bail!("inside the namespace the test server must be {SERVER}, not {server}");
    }
    crawldns_testbed::netns::check_isolated().map_err(anyhow::Error::msg)
}
