//! What one UDP datagram costs the sender on this kernel's loopback, with
//! no resolver involved: the floor under any stub's CPU per query.
//!
//! A sink socket on 127.0.0.1 is drained by a thread on CPU 1 (when there
//! is one); the sender, on CPU 0, sends 45-byte datagrams (the size of a
//! W1 query) four ways: `sendto` on an unconnected socket, `send` on a
//! connected one, `sendmmsg` in batches of 32 on each, and UDP GSO sends
//! of 4, 8 and 32 datagrams on the connected one (what crawldns's bulk mode
//! does, through the same function). CPU time is the
//! sending thread's own (`RUSAGE_THREAD`), so the drain thread is not
//! counted. Loopback delivery into the receiver's socket runs in the
//! sender's context, so it is part of the cost, as it is for every client.
//!
//! `cargo run --release -p crawldns-bench --example udp_send_cost`

use std::mem;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const DATAGRAMS: usize = 200_000;
const BATCH: usize = 32;

fn main() -> std::io::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sink = UdpSocket::bind("127.0.0.1:0")?;
    sink.set_read_timeout(Some(Duration::from_millis(20)))?;
    let to = sink.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let drain = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            if cpus > 1 {
                let _ = crawldns_bench::measure::pin_current_thread(1);
            }
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                let _ = sink.recv(&mut buf);
            }
        })
    };
    if cpus > 1 {
        let _ = crawldns_bench::measure::pin_current_thread(0);
    }
    let packet = [1u8; 45];
    let unconnected = UdpSocket::bind("127.0.0.1:0")?;
    let connected = UdpSocket::bind("127.0.0.1:0")?;
    connected.connect(to)?;

    println!("UDP send cost on loopback, {DATAGRAMS} datagrams of 45 bytes each way:");
    println!("| how | sender CPU µs per datagram |");
    println!("| --- | ---: |");
    let per = |cpu: Duration| cpu.as_secs_f64() * 1e6 / DATAGRAMS as f64;
    let cpu = thread_cpu(|| {
        for _ in 0..DATAGRAMS {
            let _ = unconnected.send_to(&packet, to);
        }
    });
    println!("| sendto, unconnected socket | {:.2} |", per(cpu));
    let cpu = thread_cpu(|| {
        for _ in 0..DATAGRAMS {
            let _ = connected.send(&packet);
        }
    });
    println!("| send, connected socket | {:.2} |", per(cpu));
    let target = socket2::SockAddr::from(to);
    let cpu = thread_cpu(|| sendmmsg_all(unconnected.as_raw_fd(), &packet, Some(&target)));
    println!(
        "| sendmmsg ×{BATCH}, unconnected socket | {:.2} |",
        per(cpu)
    );
    let cpu = thread_cpu(|| sendmmsg_all(connected.as_raw_fd(), &packet, None));
    println!("| sendmmsg ×{BATCH}, connected socket | {:.2} |", per(cpu));
    for segments in [4, 8, 32] {
        let batch = packet.repeat(segments);
        let cpu = thread_cpu(|| {
            for _ in 0..DATAGRAMS / segments {
                let _ = crawldns::internals::gso::send_segments(
                    &connected,
                    &batch,
                    packet.len() as u16,
                );
            }
        });
        println!(
            "| UDP GSO ×{segments}, connected socket | {:.2} |",
            per(cpu)
        );
    }

    stop.store(true, Ordering::Relaxed);
    let _ = drain.join();
    Ok(())
}

/// Sends `DATAGRAMS` copies of `packet` in `sendmmsg` batches of `BATCH`.
fn sendmmsg_all(fd: i32, packet: &[u8], to: Option<&socket2::SockAddr>) {
    let mut iov = libc::iovec {
        iov_base: packet.as_ptr() as *mut libc::c_void,
        iov_len: packet.len(),
    };
    // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
    let mut headers: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for header in &mut headers {
        header.msg_hdr.msg_iov = &mut iov;
        header.msg_hdr.msg_iovlen = 1;
        if let Some(to) = to {
            header.msg_hdr.msg_name = to.as_ptr() as *mut libc::c_void;
            header.msg_hdr.msg_namelen = to.len();
        }
    }
    for _ in 0..DATAGRAMS / BATCH {
        // SAFETY: every header points at live buffers (`iov`, `packet`,
        // `to`) for the duration of the call.
        unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), BATCH as u32, 0) };
    }
}

/// The calling thread's CPU time (user + system) spent in `f`.
fn thread_cpu(f: impl FnOnce()) -> Duration {
    let before = thread_rusage();
    f();
    thread_rusage().saturating_sub(before)
}

fn thread_rusage() -> Duration {
    // SAFETY: `getrusage` writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { mem::zeroed() };
    // SAFETY: valid pointer to a properly sized `rusage`.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
