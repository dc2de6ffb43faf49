//! UDP receive buffers sized for bursts, and the kernel's per-socket drop count.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

/// Asks for a receive buffer of `bytes`, past `net.core.rmem_max` where the
/// process is allowed to (CAP_NET_ADMIN). Returns what the kernel granted.
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

/// Datagrams the kernel dropped on this socket for a full receive buffer
/// (the `drops` column of `/proc/net/udp{,6}`); `None` where unreadable.
pub fn udp_drops(socket: &impl AsRawFd) -> Option<u64> {
    let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
        .ok()?
        .ino();
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                (cols.get(9)?.parse::<u64>().ok()? == inode).then(|| cols.get(12)?.parse().ok())?
            })
        })
}
