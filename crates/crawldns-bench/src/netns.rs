//! The network namespace in which the system resolver (glibc
//! `getaddrinfo`) is pointed at the test server.
//!
//! glibc takes its nameservers from `/etc/resolv.conf` and only uses port
//! 53. `ip netns exec NAME` bind-mounts `/etc/netns/NAME/resolv.conf` over
//! `/etc/resolv.conf`, so inside the namespace glibc asks 127.0.0.1:53 — the
//! namespace's own loopback, where the child process runs its own server.
//! The namespace has no interface but `lo`, so nothing can leave it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::suite::{Job, JobResult};

/// The namespace's name.
pub const NAME: &str = "crawldns-bench";

/// Set in the child's environment to the namespace's name.
pub const ENV: &str = "CRAWLDNS_BENCH_NETNS";

/// The server glibc is pointed at inside the namespace.
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53);

/// The resolv.conf written for the namespace: the test server, with the
/// same timeout and attempts as every other peer.
pub const RESOLV_CONF: &str = "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n";

fn etc_dir() -> PathBuf {
    PathBuf::from("/etc/netns").join(NAME)
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running ip {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Why the namespace cannot be made here, or `None` when it can.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("skipped: needs root to create a network namespace".into());
    }
    let ok = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Some("skipped: the `ip` command (iproute2) is missing".into());
    }
    None
}

/// The namespace, removed (with its /etc/netns files) on drop.
#[derive(Debug)]
pub struct Namespace {
    _private: (),
}

impl Namespace {
    /// Creates the namespace with loopback up and its resolv.conf, removing
    /// any leftover of a crashed run first.
    pub fn create() -> Result<Self> {
        if let Some(why) = unavailable() {
            bail!("{why}");
        }
        remove_leftovers();
        ip(&["netns", "add", NAME])?;
        let namespace = Self { _private: () };
        ip(&["netns", "exec", NAME, "ip", "link", "set", "lo", "up"])?;
        std::fs::create_dir_all(etc_dir()).context("creating /etc/netns/crawldns-bench")?;
        std::fs::write(etc_dir().join("resolv.conf"), RESOLV_CONF)
            .context("writing the namespace's resolv.conf")?;
        Ok(namespace)
    }

    /// Runs `job` in a child process inside the namespace and returns what
    /// it measured. The child's progress goes to our stderr.
    pub fn run_job(&self, job: &Job, limit: Duration) -> Result<JobResult> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let exe = exe.to_str().context("bench binary path is not UTF-8")?;
        let spec = serde_json::to_string(job).context("encoding the job")?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", NAME, exe, "netns-child", "--job", &spec])
            .env(ENV, NAME)
            .stdin(Stdio::null());
        let out = crate::process::stdout_with_timeout(&mut command, limit)
            .context("running the getaddrinfo peers in the network namespace")?;
        if !out.status.success() {
            bail!("netns child failed ({})", out.status);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or("");
        serde_json::from_str(line).with_context(|| format!("reading the child's result: {text}"))
    }
}

fn remove_leftovers() {
    let _ = Command::new("ip")
        .args(["netns", "delete", NAME])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(etc_dir());
    // Only removed when empty, i.e. when nothing else uses /etc/netns.
    let _ = std::fs::remove_dir("/etc/netns");
}

impl Drop for Namespace {
    fn drop(&mut self) {
        remove_leftovers();
    }
}

/// Refuses unless this process is the harness's child inside the namespace,
/// glibc is pointed only at 127.0.0.1, the server is 127.0.0.1:53, and the
/// only network interface is loopback: the system resolver then cannot send
/// a query anywhere but the test server.
pub fn check_isolated(server: SocketAddr) -> Result<()> {
    if std::env::var(ENV).ok().as_deref() != Some(NAME) {
        bail!("the getaddrinfo peers only run inside the bench's network namespace");
    }
    if server != SERVER {
        bail!("inside the namespace the test server must be {SERVER}, not {server}");
    }
    let conf = std::fs::read_to_string("/etc/resolv.conf").context("reading /etc/resolv.conf")?;
    let servers: Vec<&str> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    if servers != ["127.0.0.1"] {
        bail!("/etc/resolv.conf names {servers:?}, not only 127.0.0.1: not inside the namespace");
    }
    let interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .context("listing /sys/class/net")?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if interfaces != ["lo"] {
        bail!("network interfaces {interfaces:?} besides lo: not inside the namespace");
    }
    Ok(())
}
