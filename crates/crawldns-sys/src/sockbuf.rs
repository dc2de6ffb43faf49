//! UDP receive buffers sized for bursts, and the kernel's table of UDP
//! sockets (`/proc/net/udp{,6}`): per-socket drops, local addresses, inodes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

/// Asks for a receive buffer of `bytes`, past `net.core.rmem_max` where the
/// process is allowed to (`SO_RCVBUFFORCE` needs CAP_NET_ADMIN). Returns the
/// size the kernel granted (it reports twice the request, bookkeeping
/// included).
pub fn size_recv_buffer(socket: &socket2::Socket, bytes: usize) -> usize {
    let _ = socket.set_recv_buffer_size(bytes);
    if socket.recv_buffer_size().unwrap_or(0) < bytes {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live
        // c_int; an error is only reported through the return value.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    socket.recv_buffer_size().unwrap_or(0)
}

/// Datagrams the kernel dropped on this UDP socket because its receive
/// buffer was full (the `drops` column of `/proc/net/udp{,6}`); `None` where
/// that cannot be read.
pub fn udp_drops(socket: &impl AsRawFd) -> Option<u64> {
    let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
        .ok()?
        .ino();
    udp_sockets()
        .into_iter()
        .find(|s| s.inode == inode)
        .map(|s| s.drops)
}

/// One row of `/proc/net/udp` or `/proc/net/udp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSocketEntry {
    /// The address the socket is bound to (unspecified when unbound to one).
    pub local: SocketAddr,
    /// The socket's inode (what `/proc/<pid>/fd/N` links to as `socket:[N]`).
    pub inode: u64,
    /// Datagrams dropped on a full receive buffer.
    pub drops: u64,
}

/// Every UDP socket of this network namespace, IPv4 then IPv6, as the kernel
/// lists them (readable by any local process); empty where unreadable.
pub fn udp_sockets() -> Vec<UdpSocketEntry> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| parse_udp_table(&text))
        .collect()
}

/// Parses the text of `/proc/net/udp{,6}`; rows it cannot read are skipped.
pub fn parse_udp_table(text: &str) -> Vec<UdpSocketEntry> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            // sl local rem st tx:rx tr:when retr uid timeout inode ref ptr drops
            let cols: Vec<&str> = line.split_whitespace().collect();
            Some(UdpSocketEntry {
                local: parse_hex_addr(cols.get(1)?)?,
                inode: cols.get(9)?.parse().ok()?,
                drops: cols.get(12)?.parse().ok()?,
            })
        })
        .collect()
}

/// `0100007F:0035` (IPv4) or 32 hex digits then a port (IPv6): the kernel
/// prints each 32-bit word of the address in host byte order.
fn parse_hex_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = ip.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn reads_rows_of_both_tables() {
        let v4 = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                  1: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
                  2: garbage\n";
        assert_eq!(
            parse_udp_table(v4),
            [UdpSocketEntry {
                local: "127.0.0.1:53".parse().unwrap(),
                inode: 4242,
                drops: 17,
            }]
        );
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                  0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0000000000000000 0\n";
        assert_eq!(
            parse_udp_table(v6),
            [UdpSocketEntry {
                local: "[::1]:8080".parse().unwrap(),
                inode: 99,
                drops: 0,
            }]
        );
    }

    #[test]
    fn a_bound_socket_is_listed_with_its_drops() {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let local = socket.local_addr().unwrap().as_socket().unwrap();
        // 64 KiB is below the default `net.core.rmem_max`: granted without privilege.
        assert!(size_recv_buffer(&socket, 64 << 10) >= 64 << 10);
        assert_eq!(udp_drops(&socket), Some(0));
        assert!(udp_sockets()
            .iter()
            .any(|s| s.local == local && s.drops == 0));
    }
}
