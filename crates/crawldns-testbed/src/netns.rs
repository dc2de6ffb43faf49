//! A network namespace in which glibc's `getaddrinfo` asks a testbed DNS
//! server and nothing else: how the demo and the benchmarks measure the
//! system resolver for real.
//!
//! glibc takes its nameservers from `/etc/resolv.conf` and always uses port
//! 53. `ip netns exec NAME …` bind-mounts `/etc/netns/NAME/resolv.conf` over
//! `/etc/resolv.conf` for the command it runs, so inside the namespace glibc
//! asks 127.0.0.1:53, the namespace's own loopback, where the child process
//! runs its own testbed server. The namespace has no interface but `lo`, so
//! no query and no connection can leave it.
//!
//! Names are `<prefix><pid>`, so concurrent runs do not collide. A namespace
//! (and its `/etc/netns` directory) is removed when dropped; leftovers of a
//! killed run are removed by the next run with the same prefix, once their
//! process is gone. Needs root and `ip` (iproute2).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where glibc is pointed inside the namespace (it only uses port 53).
pub const GLIBC_SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53);

/// The namespace's resolv.conf: the testbed only, with glibc's usual
/// timeout and attempts (those of every peer the benchmarks compare).
pub const RESOLV_CONF: &str = "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n";

/// Why a namespace cannot be made here, or `None` when it can be tried.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some(
            "not running as root: a network namespace (to point glibc's getaddrinfo \
             at a test server on port 53) needs root"
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

/// A namespace with loopback up and a resolv.conf naming 127.0.0.1;
/// removed on drop.
#[derive(Debug)]
pub struct GlibcNamespace {
    name: String,
}

impl GlibcNamespace {
    /// Creates `<prefix><pid>`, after removing leftovers of earlier runs
    /// with the same prefix whose process is gone.
    pub fn create(prefix: &str) -> io::Result<Self> {
        if let Some(why) = unavailable() {
            return Err(io::Error::other(why));
        }
        remove_leftovers(prefix);
        let name = format!("{prefix}{}", std::process::id());
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
            .map_err(|e| io::Error::other(format!("cannot create {}: {e}", dir.display())))?;
        std::fs::write(dir.join("resolv.conf"), RESOLV_CONF).map_err(|e| {
            io::Error::other(format!("cannot write {}/resolv.conf: {e}", dir.display()))
        })?;
        Ok(namespace)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments of `ip` that run a command inside the namespace:
    /// `ip netns exec NAME` followed by the command.
    pub fn exec_args(&self) -> [&str; 3] {
        ["netns", "exec", &self.name]
    }
}

impl Drop for GlibcNamespace {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// Refuses unless this process is inside such a namespace: glibc is
/// pointed only at 127.0.0.1, and the only network interface is loopback.
/// The system resolver then cannot send a query anywhere but the testbed
/// started in this namespace.
pub fn check_isolated() -> Result<(), String> {
    let conf = std::fs::read_to_string("/etc/resolv.conf")
        .map_err(|e| format!("cannot read /etc/resolv.conf: {e}"))?;
    let servers: Vec<&str> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    if servers != ["127.0.0.1"] {
        return Err(format!(
            "/etc/resolv.conf names {servers:?}, not only 127.0.0.1: not inside the namespace"
        ));
    }
    let interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map_err(|e| format!("cannot list /sys/class/net: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if interfaces != ["lo"] {
        return Err(format!(
            "network interfaces {interfaces:?} besides lo: not inside the namespace"
        ));
    }
    Ok(())
}

/// Where `ip netns` keeps the files of namespace `name`.
fn etc_dir(name: &str) -> PathBuf {
    Path::new("/etc/netns").join(name)
}

/// Runs `ip ARGS`, failing with its stderr.
pub(crate) fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::other(format!("cannot run `ip {}`: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Deletes namespace `name` and its /etc/netns directory, quietly.
pub(crate) fn remove(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "delete", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(etc_dir(name));
}

/// Removes `<prefix><pid>` (or `<prefix><pid>-<n>`) namespaces and
/// /etc/netns directories whose process no longer exists.
pub(crate) fn remove_leftovers(prefix: &str) {
    let mut names: Vec<String> = Vec::new();
    for dir in ["/run/netns", "/etc/netns"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            names.extend(
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(prefix)),
            );
        }
    }
    names.sort();
    names.dedup();
    for name in names {
        let alive = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
        if !alive {
            tracing::info!(namespace = %name, "removing a leftover namespace");
            remove(&name);
        }
    }
}
