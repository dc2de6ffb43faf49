//! Samplers of this process, read from `/proc/self`.

use std::collections::HashSet;
use std::io;

/// Open file descriptors of this process (entries of `/proc/self/fd`, less
/// the one used to read the directory).
pub fn open_fds() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?
        .count()
        .saturating_sub(1))
}

/// Resident memory of this process in bytes (`VmRSS` of
/// `/proc/self/status`); `None` where it cannot be read.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_rss_kib(&status).map(|kib| kib * 1024)
}

fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Inodes of this process's open sockets (the `socket:[N]` targets of
/// `/proc/self/fd`); match them against
/// [`udp_sockets`](crate::sockbuf::udp_sockets).
pub fn socket_inodes() -> io::Result<HashSet<u64>> {
    Ok(std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        assert_eq!(
            vm_rss_kib("Name:\tx\nVmRSS:\t  1234 kB\nVmSwap: 0 kB\n"),
            Some(1234)
        );
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn a_new_socket_shows_in_every_sampler() {
        let fds = open_fds().unwrap();
        assert!(rss_bytes().unwrap() > 0);
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(
            open_fds().unwrap() > fds,
            "the socket is one more descriptor"
        );
        let local = socket.local_addr().unwrap();
        let inodes = socket_inodes().unwrap();
        let listed = crate::sockbuf::udp_sockets()
            .into_iter()
            .find(|s| s.local == local)
            .unwrap();
        assert!(inodes.contains(&listed.inode));
    }
}
