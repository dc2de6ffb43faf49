//! UDP generic segmentation offload (GSO) sends: one system call carries
//! several datagrams of one size to the socket's connected peer, and the
//! kernel splits them (Linux 4.18+, `UDP_SEGMENT`). Loopback delivery runs
//! in the sender's context, so this saves the per-datagram routing and
//! socket work that dominates a stub's CPU per query (see BENCHMARKS.md).

use std::io;
use std::os::fd::AsRawFd;

/// Most datagrams in one GSO send (the kernel allows 64 or more).
pub const MAX_SEGMENTS: usize = 32;

/// Sends `buf` as datagrams of `segment` bytes (the last may be shorter)
/// on the connected socket `socket`, in one `sendmsg`.
#[cfg(target_os = "linux")]
pub fn send_segments(socket: &impl AsRawFd, buf: &[u8], segment: u16) -> io::Result<usize> {
    use std::mem;

    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // Aligned room for one control message carrying a u16.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(mem::size_of::<u16>() as u32) } as usize;
    debug_assert!(space <= mem::size_of_val(&control));
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points at `control`, which has room for the header and
    // its u16 (checked above); CMSG_FIRSTHDR is non-null for that length.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
    }
    // SAFETY: every pointer in `msg` refers to memory live for the call.
    let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, 0) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// Not available: the caller sends datagram by datagram.
#[cfg(not(target_os = "linux"))]
pub fn send_segments(_socket: &impl AsRawFd, _buf: &[u8], _segment: u16) -> io::Result<usize> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Whether `err` means this kernel or route cannot do GSO (as opposed to a
/// failure of these datagrams).
pub fn unsupported(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Unsupported
        || matches!(
            err.raw_os_error(),
            Some(libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
        )
}
