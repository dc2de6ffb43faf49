//! A server for the TCP fallback that misbehaves: every UDP answer is
//! truncated, and the TCP retry meets a wrong ID, a wrong question, junk, a
//! short read or silence.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a hostile TCP server answers the TCP retry of a truncated answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpMischief {
    /// The right question, another ID.
    WrongId,
    /// The right ID, another name.
    WrongQuestion,
    /// The right ID and question, then junk.
    Junk,
    /// A length prefix of 65,535, then the connection closes.
    ShortRead,
    /// Accepts, reads the query, never answers.
    Stall,
}

/// A server whose UDP answers are all truncated (TC=1, echoing the query),
/// and whose TCP side misbehaves as told.
pub async fn hostile_tcp_server(mischief: TcpMischief) -> SocketAddr {
    // A port free for both UDP and TCP.
    let mut bound = None;
    for _ in 0..50 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            bound = Some((udp, tcp, addr));
            break;
        }
    }
    let (udp, tcp, addr) = bound.expect("a port free for UDP and TCP");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, peer)) = udp.recv_from(&mut buf).await {
            let mut reply = buf[..len].to_vec();
            reply[2] = 0x87; // QR, AA, TC, RD
            reply[3] = 0x80;
            reply[10] = 0; // no EDNS record echoed
            reply[11] = 0;
            let question_end = 12 + reply[12..].iter().position(|b| *b == 0).unwrap() + 5;
            reply.truncate(question_end);
            let _ = udp.send_to(&reply, peer).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                let question_end = 12 + query[12..].iter().position(|b| *b == 0).unwrap() + 5;
                let mut reply = query[..question_end].to_vec();
                reply[2] = 0x85;
                reply[3] = 0x80;
                reply[10] = 0;
                reply[11] = 0;
                match mischief {
                    TcpMischief::WrongId => reply[0] ^= 0xff,
                    TcpMischief::WrongQuestion => reply[13] ^= 0x01,
                    TcpMischief::Junk => {
                        reply[7] = 1; // one answer, which is junk
                        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0x40, 0x04]);
                    }
                    TcpMischief::ShortRead => {
                        let _ = stream.write_all(&[0xff, 0xff, 1, 2, 3]).await;
                        return;
                    }
                    TcpMischief::Stall => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                }
                let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                let _ = stream.write_all(&framed).await;
                // Hold the connection open a little, as a lazy server would.
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    addr
}
