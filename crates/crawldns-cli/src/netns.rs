//! The network namespace in which `crawldns demo` runs the system path, so
//! that glibc's `getaddrinfo` asks the testbed and nothing else.
//!
//! glibc takes its nameservers from `/etc/resolv.conf` and always uses port
//! 53. `ip netns exec NAME …` bind-mounts `/etc/netns/NAME/resolv.conf` over
//! `/etc/resolv.conf` for the command it runs, so inside the namespace glibc
//! asks 127.0.0.1:53: the namespace's own loopback, where the child process
//! runs its own testbed DNS server. The namespace has no interface but `lo`,
//! so no query and no connection can leave it.
//!
//! Names are `crawldns-demo-<pid>`, so concurrent demos do not collide. A
//! namespace (and its `/etc/netns` directory) is removed when the
//! [`Namespace`] is dropped; leftovers of a run that was killed are removed
//! by the next run, once their pid is gone.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Prefix of the namespaces' names.
const PREFIX: &str = "crawldns-demo-";

/// Set in the child's environment to its namespace's name.
pub const ENV: &str = "CRAWLDNS_DEMO_NETNS";

/// Where glibc is pointed inside the namespace.
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53);

/// The namespace's resolv.conf: the testbed only, with glibc's usual
/// timeout and attempts.
pub const RESOLV_CONF: &str = "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n";

/// Where `ip netns` keeps the files of namespace `name`.
fn etc_dir(name: &str) -> PathBuf {
    Path::new("/etc/netns").join(name)
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `ip {}`", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Why a namespace cannot be made here, or `None` when it can be tried.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some(
            "not running as root: creating a network namespace (to point glibc's \
             getaddrinfo at the testbed's DNS on port 53) needs root"
                .to_owned(),
        );
    }
    let works = Command::new("ip")
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        return Some("the `ip` command (Debian package iproute2) is missing".to_owned());
    }
    None
}

/// A network namespace with loopback up and a resolv.conf pointing at
/// 127.0.0.1; removed on drop.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates `crawldns-demo-<pid>`, after removing leftovers of earlier
    /// runs whose process is gone.
    pub fn create() -> Result<Self> {
        if let Some(why) = unavailable() {
            bail!("{why}");
        }
        remove_leftovers();
        let name = format!("{PREFIX}{}", std::process::id());
        remove(&name);
        ip(&["netns", "add", &name])?;
        let namespace = Self { name };
        ip(&[
            "netns",
            "exec",
            &namespace.name,
            "ip",
            "link",
            "set",
            "lo",
            "up",
        ])?;
        let dir = etc_dir(&namespace.name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(dir.join("resolv.conf"), RESOLV_CONF)
            .with_context(|| format!("cannot write {}/resolv.conf", dir.display()))?;
        Ok(namespace)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME PROGRAM ARGS`, with [`ENV`] set for the child.
    pub fn command(&self, program: &Path, args: &[String]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ip");
        command
            .args(["netns", "exec", &self.name])
            .arg(program)
            .args(args)
            .env(ENV, &self.name);
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// Deletes namespace `name` and its /etc/netns directory, quietly.
fn remove(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "delete", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(etc_dir(name));
}

/// Removes `crawldns-demo-<pid>` namespaces and /etc/netns directories
/// whose process no longer exists.
fn remove_leftovers() {
    let mut names: Vec<String> = Vec::new();
    for dir in ["/run/netns", "/etc/netns"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            names.extend(
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(PREFIX)),
            );
        }
    }
    names.sort();
    names.dedup();
    for name in names {
        let alive = name
            .strip_prefix(PREFIX)
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
        if !alive {
            tracing::info!(namespace = %name, "removing a leftover demo namespace");
            remove(&name);
        }
    }
}

/// Refuses unless this process is the demo's child inside its namespace:
/// glibc is pointed only at 127.0.0.1, and the only network interface is
/// loopback. The system resolver then cannot send a query anywhere but the
/// testbed started in this namespace.
pub fn check_isolated() -> Result<()> {
    let Ok(name) = std::env::var(ENV) else {
        bail!("this command only runs inside `crawldns demo`'s network namespace");
    };
    if !name.starts_with(PREFIX) {
        bail!("unexpected namespace name {name:?}");
    }
    let conf =
        std::fs::read_to_string("/etc/resolv.conf").context("cannot read /etc/resolv.conf")?;
    let servers: Vec<&str> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    if servers != ["127.0.0.1"] {
        bail!("/etc/resolv.conf names {servers:?}, not only 127.0.0.1: not inside the demo's namespace");
    }
    let interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .context("cannot list /sys/class/net")?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if interfaces != ["lo"] {
        bail!("network interfaces {interfaces:?} besides lo: not inside the demo's namespace");
    }
    Ok(())
}
