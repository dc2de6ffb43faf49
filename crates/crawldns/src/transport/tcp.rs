//! DNS over TCP (RFC 7766): [`query`] opens one connection per exchange;
//! [`TcpDial`] makes the long-lived connections of the pipelined pool
//! ([`super::pipeline::StreamPool`]).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::pipeline::Dial;
use super::{Exchange, StreamError, TransportError};
use crate::rng::{self, Random};
use crate::wire::{encode_query, judge, Question, Verdict};

/// Asks `server` over TCP, within `timeout` for the whole exchange.
pub async fn query(
    server: SocketAddr,
    question: &Question,
    payload: u16,
    timeout: Duration,
) -> Exchange {
    match tokio::time::timeout(timeout, exchange(server, question, payload)).await {
        Ok(result) => result,
        Err(_) => Err(TransportError::Timeout),
    }
}

async fn exchange(server: SocketAddr, question: &Question, payload: u16) -> Exchange {
    let id = rng::system().id();
    let packet = encode_query(id, question, payload);
    let len = u16::try_from(packet.len()).map_err(|_| TransportError::Malformed)?;
    let mut stream = TcpStream::connect(server)
        .await
        .map_err(TransportError::Io)?;
    let _ = stream.set_nodelay(true);
    let mut framed = Vec::with_capacity(packet.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&packet);
    stream
        .write_all(&framed)
        .await
        .map_err(TransportError::Io)?;
    // A server may send other messages first only if we pipelined; we did not,
    // so the first message must be the answer.
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .await
        .map_err(TransportError::Io)?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream
        .read_exact(&mut reply)
        .await
        .map_err(TransportError::Io)?;
    if crate::wire::peek_id(&reply) != Some(id) {
        return Err(TransportError::Malformed);
    }
    // TCP is not open to off-path forgery: case need not match exactly.
    match judge(&reply, question, false) {
        Verdict::Answer(message) => Ok(message),
        Verdict::Malformed | Verdict::Mismatch => Err(TransportError::Malformed),
    }
}

/// Opens a TCP connection to `server`, with Nagle off (queries are small and
/// pipelined: each should leave at once).
#[allow(dead_code)] // not yet wired into the resolver (issue 17)
pub async fn connect_tcp(server: SocketAddr) -> Result<TcpStream, StreamError> {
    let stream = TcpStream::connect(server)
        .await
        .map_err(|e| StreamError::Transport(TransportError::Io(e)))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Dials plain TCP connections for the pipelined pool.
#[allow(dead_code)] // not yet wired into the resolver (issue 17)
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDial;

impl Dial for TcpDial {
    type Stream = TcpStream;

    async fn dial(&self, server: SocketAddr) -> Result<TcpStream, StreamError> {
        connect_tcp(server).await
    }
}
