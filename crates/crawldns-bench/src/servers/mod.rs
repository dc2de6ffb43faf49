//! The servers the peers query: the testbed's DNS server (with delay) on a
//! thread of its own, Knot (a real authoritative server, as a process), and
//! dnsperf to measure Knot's own ceiling. Everything binds loopback only.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub mod dnsperf;
pub mod knot;
pub mod testbed;
pub mod testbed_process;

/// A free loopback port for both UDP and TCP (free when checked; the caller
/// binds it right after).
pub fn free_port() -> Result<u16> {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").context("binding a probe UDP socket")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port found")
}

/// Encodes a DNS query for `name`, type A, with recursion desired.
fn encode_query(id: u16, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&[0, 1, 0, 1]);
    out
}

/// Asks `server` for the A record of `name` once; true when it answers
/// NOERROR with at least one answer record.
pub fn probe(server: SocketAddr, name: &str, wait: Duration) -> bool {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    if socket.set_read_timeout(Some(wait)).is_err() {
        return false;
    }
    let id = 0x4242;
    if socket.send_to(&encode_query(id, name), server).is_err() {
        return false;
    }
    let mut buf = [0u8; 1500];
    match socket.recv_from(&mut buf) {
        Ok((len, from)) if from == server && len >= 12 => {
            let reply_id = u16::from_be_bytes([buf[0], buf[1]]);
            let rcode = buf[3] & 0x0f;
            let answers = u16::from_be_bytes([buf[6], buf[7]]);
            reply_id == id && rcode == 0 && answers > 0
        }
        _ => false,
    }
}

/// Probes `server` until it answers for `name` or `limit` passes.
pub fn wait_until_serving(server: SocketAddr, name: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if probe(server, name, Duration::from_millis(200)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{server} did not answer {name} within {limit:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        let q = encode_query(7, "h1.crawl.test");
        assert_eq!(&q[..2], &[0, 7]);
        assert_eq!(&q[12..], b"\x02h1\x05crawl\x04test\x00\x00\x01\x00\x01");
    }
}
