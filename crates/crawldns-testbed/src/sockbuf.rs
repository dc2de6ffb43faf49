//! Socket receive buffers sized for bursts, and the kernel's drop counter.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

/// Receive buffer the testbed asks for on its UDP sockets.
pub const RECV_BUFFER: usize = 8 << 20;

/// Sets the receive buffer to `bytes`, past `net.core.rmem_max` when the
/// process may (`SO_RCVBUFFORCE` needs CAP_NET_ADMIN). Returns the size the
/// kernel granted (it reports twice the requested value, bookkeeping included).
pub fn size_recv_buffer(socket: &socket2::Socket, bytes: usize) -> usize {
    let _ = socket.set_recv_buffer_size(bytes);
    if socket.recv_buffer_size().unwrap_or(0) < bytes {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: a plain setsockopt with a pointer to a live c_int of the
        // length given; failure is reported through the return value only.
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

/// Datagrams the kernel dropped on this UDP socket because its receive buffer
/// was full (the `drops` column of `/proc/net/udp{,6}`), or `None` where that
/// cannot be read.
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
                // sl local rem st tx:rx tr:when retr uid timeout inode ref ptr drops
                (cols.get(9)?.parse::<u64>().ok()? == inode).then(|| cols.get(12)?.parse().ok())?
            })
        })
}
