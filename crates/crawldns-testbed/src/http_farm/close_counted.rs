//! The connection wrapper that counts a connection closed as soon as the
//! client's end of stream is read.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::counters::ConnectionGuard;

/// A client's connection, counted as open until the client closes it: the
/// count drops the moment its end of stream is read (or the connection is
/// dropped), before the server closes its side. A client that waits for
/// the server's close before opening another connection therefore never
/// sees the farm count more open connections than the client had.
pub(super) struct CloseCounted {
    inner: TcpStream,
    guard: Option<ConnectionGuard>,
}

impl CloseCounted {
    pub(super) fn new(inner: TcpStream, guard: ConnectionGuard) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl AsyncRead for CloseCounted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let eof = matches!(polled, std::task::Poll::Ready(Ok(())))
            && buf.filled().len() == before
            && buf.remaining() > 0;
        if eof || matches!(polled, std::task::Poll::Ready(Err(_))) {
            self.guard.take();
        }
        polled
    }
}

impl AsyncWrite for CloseCounted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
