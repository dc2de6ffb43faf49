//! Batched receives: one `recvmmsg` reads up to [`SLOTS`] waiting datagrams
//! from a socket, where `recv` would take one system call (and its fixed
//! cost) per answer. Under a burst the answers arrive together, and
//! reading them one call each made the receive side the bottleneck once
//! queries left in batches.

use std::io;
use std::os::fd::AsRawFd;

/// Datagrams read per call.
pub const SLOTS: usize = 32;

/// Bytes kept per datagram: room for any answer to the EDNS payload we
/// advertise (1,232 by default, at most 4,096 is sensible) and then some.
/// A longer datagram is cut, and reported as such.
pub const SLOT_BYTES: usize = 4096;

/// Buffers for one batch of datagrams.
pub struct RecvBatch {
    buffers: Vec<[u8; SLOT_BYTES]>,
    /// Per slot: bytes received, and whether the datagram was longer.
    lengths: [(usize, bool); SLOTS],
}

impl RecvBatch {
    /// Empty buffers for [`SLOTS`] datagrams.
    pub fn new() -> Self {
        Self {
            buffers: vec![[0; SLOT_BYTES]; SLOTS],
            lengths: [(0, false); SLOTS],
        }
    }

    /// Reads the datagrams waiting on the non-blocking `socket`, up to
    /// [`SLOTS`]; returns how many. `WouldBlock` when there are none.
    #[cfg(target_os = "linux")]
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        use std::mem;

        let mut iovecs: [libc::iovec; SLOTS] = std::array::from_fn(|i| libc::iovec {
            iov_base: self.buffers[i].as_mut_ptr().cast(),
            iov_len: SLOT_BYTES,
        });
        // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
        let mut headers: [libc::mmsghdr; SLOTS] = unsafe { mem::zeroed() };
        for (header, iov) in headers.iter_mut().zip(iovecs.iter_mut()) {
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at one iovec, and every iovec at a
        // buffer of SLOT_BYTES, all live and unaliased for the call.
        let got = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                SLOTS as _,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = got as usize;
        for (length, header) in self.lengths.iter_mut().zip(&headers[..got]) {
            let cut = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            *length = ((header.msg_len as usize).min(SLOT_BYTES), cut);
        }
        Ok(got)
    }

    /// Reads one waiting datagram (no `recvmmsg` here).
    #[cfg(not(target_os = "linux"))]
    pub fn recv(&mut self, socket: &tokio::net::UdpSocket) -> io::Result<usize> {
        let len = socket.try_recv(&mut self.buffers[0])?;
        self.lengths[0] = (len, false);
        Ok(1)
    }

    /// Datagram `i` of the last batch (cut to [`SLOT_BYTES`]), and whether
    /// it arrived whole.
    pub fn datagram(&self, i: usize) -> (&[u8], bool) {
        let (len, cut) = self.lengths[i];
        (&self.buffers[i][..len], !cut)
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn reads_several_datagrams_at_once_and_flags_a_cut_one() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_nonblocking(true).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.connect(receiver.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(
            batch.recv(&receiver).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        for i in 0..3u8 {
            sender.send(&[i; 10]).unwrap();
        }
        sender.send(&vec![7u8; SLOT_BYTES + 100]).unwrap();
        let mut seen = Vec::new();
        while seen.len() < 4 {
            match batch.recv(&receiver) {
                Ok(n) => seen.extend((0..n).map(|i| {
                    let (bytes, whole) = batch.datagram(i);
                    (bytes.to_vec(), whole)
                })),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        for i in 0..3u8 {
            assert_eq!(seen[i as usize], (vec![i; 10], true));
        }
        assert_eq!(seen[3], (vec![7u8; SLOT_BYTES], false));
    }
}

#[cfg(all(test, target_os = "linux"))]
mod refused_tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn a_closed_port_reports_connection_refused() {
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap();
        drop(closed);
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(port).unwrap();
        socket.set_nonblocking(true).unwrap();
        socket.send(b"hello").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut batch = RecvBatch::new();
        let err = batch.recv(&socket).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }
}
