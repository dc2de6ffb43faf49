//! A network namespace that stands for another machine: a process run in it
//! reaches the testbed (the farm's `127.x.y.z` hosts, and services on
//! [`SERVICE_ADDR`]) across a link, from an address of its own, as a crawl
//! worker on a separate host would.
//!
//! The link is a veth pair between this namespace and the new one, with a
//! /30 of 198.18.0.0/15 (RFC 2544's range for benchmarking networks, so no
//! real network's routes are shadowed). Inside, only 127.0.0.1 stays local;
//! the rest of 127.0.0.0/8 is routed over the link, and both ends set
//! `route_localnet` so the kernel carries 127/8 across it. Every packet
//! stays between this namespace and the ones made here; nothing is
//! forwarded anywhere else.
//!
//! Names are `<prefix><pid>-<n>`; a namespace (and with it both ends of its
//! link) is removed when dropped, and leftovers of a killed run are removed
//! by the next run with the same prefix once their process is gone. Needs
//! root and `ip` (iproute2), like [`crate::netns`].

use std::io;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::netns::{ip, remove, remove_leftovers, unavailable};

/// The loopback address where the test's shared services (Redis, Unbound)
/// listen so that separate hosts can reach them: outside `127.0.0.0/16`'s
/// first address, which inside a separate host is its own.
pub const SERVICE_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 1);

/// The range the links' addresses come from.
pub const LINK_RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 0, 0), 15);

/// /30 links in [`LINK_RANGE`].
const LINKS: u32 = 1 << (32 - 15 - 2);

/// A namespace linked to this one; removed on drop.
#[derive(Debug)]
pub struct SeparateHost {
    name: String,
    addr: Ipv4Addr,
}

impl SeparateHost {
    /// Creates `<prefix><pid>-<n>` with its link, after removing leftovers
    /// of earlier runs with the same prefix whose process is gone.
    pub fn create(prefix: &str, n: u32) -> io::Result<Self> {
        if let Some(why) = unavailable() {
            return Err(io::Error::other(why));
        }
        remove_leftovers(prefix);
        let pid = std::process::id();
        let name = format!("{prefix}{pid}-{n}");
        remove(&name);
        let link = free_link(pid.wrapping_mul(8).wrapping_add(n))?;
        let [ours, theirs] = link_ends(link);
        // Interface names are at most 15 bytes: `cdh<link>` / `cdw<link>`.
        let (outer, inner) = (format!("cdh{link}"), format!("cdw{link}"));
        ip(&["netns", "add", &name])?;
        let host = Self { name, addr: theirs };
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &host.name,
        ])?;
        ip(&["addr", "add", &format!("{ours}/30"), "dev", &outer])?;
        ip(&["link", "set", &outer, "up"])?;
        route_localnet(None, &outer)?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &host.name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["link", "set", "lo", "up"])?;
        inside(&["addr", "add", &format!("{theirs}/30"), "dev", &inner])?;
        inside(&["link", "set", &inner, "up"])?;
        route_localnet(Some(&host.name), &inner)?;
        inside(&[
            "route",
            "del",
            "local",
            "127.0.0.0/8",
            "dev",
            "lo",
            "table",
            "local",
        ])?;
        inside(&[
            "route",
            "add",
            "127.0.0.0/8",
            "via",
            &ours.to_string(),
            "dev",
            &inner,
            "src",
            &theirs.to_string(),
        ])?;
        Ok(host)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address its traffic comes from, as the testbed's servers see it.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The arguments of `ip` that run a command inside the namespace:
    /// `ip netns exec NAME` followed by the command.
    pub fn exec_args(&self) -> [&str; 3] {
        ["netns", "exec", &self.name]
    }
}

impl Drop for SeparateHost {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// This side's and the other side's address of /30 link `link`.
fn link_ends(link: u32) -> [Ipv4Addr; 2] {
    let base = u32::from(LINK_RANGE.0) + (link % LINKS) * 4;
    [Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2)]
}

/// The first link from `start` on whose address no interface holds.
fn free_link(start: u32) -> io::Result<u32> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::other(format!("cannot run `ip -4 -o addr show`: {e}")))?;
    let listing = String::from_utf8_lossy(&out.stdout);
    (0..64)
        .map(|i| start.wrapping_add(i) % LINKS)
        .find(|&link| {
            let ours = format!(" {}/", link_ends(link)[0]);
            !listing.contains(&ours)
        })
        .ok_or_else(|| io::Error::other("no free link address in 198.18.0.0/15"))
}

/// Sets `route_localnet` on `interface`, in namespace `netns` or here.
/// `/proc/sys/net` shows the namespace of whoever opens it, so inside the
/// namespace a shell under `ip netns exec` writes it.
fn route_localnet(netns: Option<&str>, interface: &str) -> io::Result<()> {
    let path = format!("/proc/sys/net/ipv4/conf/{interface}/route_localnet");
    match netns {
        None => std::fs::write(&path, "1")
            .map_err(|e| io::Error::other(format!("cannot write {path}: {e}"))),
        Some(name) => ip(&[
            "netns",
            "exec",
            name,
            "sh",
            "-c",
            &format!("echo 1 > {path}"),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_distinct_30s_inside_the_benchmarking_range() {
        assert_eq!(
            link_ends(0),
            [Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2)]
        );
        assert_eq!(
            link_ends(LINKS - 1),
            [
                Ipv4Addr::new(198, 19, 255, 253),
                Ipv4Addr::new(198, 19, 255, 254)
            ]
        );
        assert_eq!(link_ends(LINKS), link_ends(0));
    }
}
