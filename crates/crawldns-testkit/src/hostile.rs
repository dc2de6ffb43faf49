//! A UDP server that answers with the query's own ID and question, then junk
//! that no parser should accept.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::UdpSocket;

/// A UDP server that answers each query with its own ID and question, then
/// junk that no parser should accept (four kinds, in turn).
pub struct HostileServer {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileServer {
    /// Binds 127.0.0.1 on a free port and starts answering.
    pub async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("addr");
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0usize;
            while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
                count.fetch_add(1, Ordering::Relaxed);
                if let Some(reply) = junk_reply(&buf[..len], n) {
                    let _ = socket.send_to(&reply, peer).await;
                }
                n += 1;
            }
        });
        Self {
            addr,
            received,
            task,
        }
    }

    /// Queries received.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The query's ID and question, then one of four kinds of junk.
fn junk_reply(query: &[u8], variant: usize) -> Option<Vec<u8>> {
    // The question: labels from offset 12 up to the root, then type and class.
    let mut end = 12;
    loop {
        let len = usize::from(*query.get(end)?);
        end += 1 + len;
        if len == 0 {
            break;
        }
    }
    let question = query.get(12..end + 4)?;
    let mut reply = query.get(..2)?.to_vec();
    reply.extend_from_slice(&[0x85, 0x80, 0, 1]);
    let rr = |rdlength: u16, rdata: &[u8]| {
        let mut r = vec![0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60];
        r.extend_from_slice(&rdlength.to_be_bytes());
        r.extend_from_slice(rdata);
        r
    };
    let (counts, records): ([u8; 6], Vec<u8>) = match variant % 4 {
        // RDLENGTH runs past the end of the packet.
        0 => ([0, 1, 0, 0, 0, 0], rr(0x4004, &[127, 255, 0, 66])),
        // Far more records claimed than present.
        1 => ([0xff, 0xff, 0, 0, 0, 0], rr(4, &[127, 255, 0, 66])),
        // An A record of 16 bytes.
        2 => ([0, 1, 0, 0, 0, 0], rr(16, &[0x7f; 16])),
        // An answer owner that is a compression loop.
        _ => {
            let at = 12 + question.len();
            let mut r = vec![
                0xc0 | (at >> 8) as u8,
                at as u8,
                0,
                1,
                0,
                1,
                0,
                0,
                0,
                60,
                0,
                4,
            ];
            r.extend_from_slice(&[127, 255, 0, 66]);
            ([0, 1, 0, 0, 0, 0], r)
        }
    };
    reply.extend_from_slice(&counts);
    reply.extend_from_slice(question);
    reply.extend_from_slice(&records);
    Some(reply)
}
