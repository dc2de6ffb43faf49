//! DNS over TCP (RFC 7766): [`TcpDial`] makes the long-lived connections of
//! the pipelined pool ([`super::pipeline::StreamPool`]).

use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::pipeline::Dial;
use super::{StreamError, TransportError};

/// Opens a TCP connection to `server`, with Nagle off (queries are small and
/// pipelined: each should leave at once).
pub async fn connect_tcp(server: SocketAddr) -> Result<TcpStream, StreamError> {
    let stream = TcpStream::connect(server)
        .await
        .map_err(|e| StreamError::Transport(TransportError::Io(e)))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Dials plain TCP connections for the pipelined pool.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDial;

impl Dial for TcpDial {
    type Stream = TcpStream;

    async fn dial(&self, server: SocketAddr) -> Result<TcpStream, StreamError> {
        connect_tcp(server).await
    }
}
