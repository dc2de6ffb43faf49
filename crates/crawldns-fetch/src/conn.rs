//! One HTTP connection: the transport (TCP or TLS), hyper's handshake, the
//! driver task that owns the connection's [`Slot`] until it is closed, and
//! the sending half the fetcher uses.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;

/// How long a closing connection waits for the server to see the close
/// (its end of stream) before the connection's slot is released anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// An open connection, as the pool hands it out. Dropping it closes the
/// connection (its driver task then releases its [`Slot`]).
pub(crate) struct Conn {
    pub sender: Sender,
    pub remote: Option<SocketAddr>,
    /// Shared with the connection's slot in the pool.
    pub life: Arc<AtomicU8>,
    /// Dropping the last clone of this tells the driver to close the
    /// connection (HTTP/2 connections are shared).
    _closing: Arc<oneshot::Sender<()>>,
}

impl Conn {
    /// A connection whose driver holds `slot` and stops when `closing`'s
    /// receiver fires.
    fn new(
        sender: Sender,
        remote: Option<SocketAddr>,
        life: Arc<AtomicU8>,
        closing: oneshot::Sender<()>,
    ) -> Self {
        Self {
            sender,
            remote,
            life,
            _closing: Arc::new(closing),
        }
    }

    /// Another handle on an HTTP/2 connection; `None` for HTTP/1.1.
    pub fn share(&self) -> Option<Self> {
        match &self.sender {
            Sender::H2(sender) => Some(Self {
                sender: Sender::H2(sender.clone()),
                remote: self.remote,
                life: self.life.clone(),
                _closing: self._closing.clone(),
            }),
            Sender::H1(_) => None,
        }
    }

    /// True for HTTP/2.
    pub fn is_h2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    /// True when `other` is a handle on the same connection.
    pub fn same_as(&self, other: &Conn) -> bool {
        Arc::ptr_eq(&self.life, &other.life)
    }
}

/// The request-sending half of a connection.
pub(crate) enum Sender {
    /// HTTP/1.1: one request at a time.
    H1(http1::SendRequest<Empty<Bytes>>),
    /// HTTP/2: many streams at once; clones share the connection.
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    pub fn is_closed(&self) -> bool {
        match self {
            Self::H1(s) => s.is_closed(),
            Self::H2(s) => s.is_closed(),
        }
    }

    /// Waits until a request can be sent; false if the connection is gone.
    pub async fn ready(&mut self) -> bool {
        match self {
            Self::H1(s) => s.ready().await.is_ok(),
            Self::H2(s) => s.ready().await.is_ok(),
        }
    }

    pub async fn send(
        &mut self,
        request: hyper::Request<Empty<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error> {
        match self {
            Self::H1(s) => s.send_request(request).await,
            Self::H2(s) => s.send_request(request).await,
        }
    }
}

/// A TCP or TLS stream, so one hyper connection type serves both.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// True when TLS negotiated HTTP/2 by ALPN.
    pub fn alpn_h2(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            Self::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

/// Handshakes HTTP/2 (when ALPN chose it) or HTTP/1.1 on `stream` and
/// starts the connection's driver, which holds `slot` (its place under the
/// limits, sharing `life`) until the connection is closed.
pub(crate) async fn handshake<S: Send + 'static>(
    stream: Stream,
    remote: SocketAddr,
    slot: S,
    life: Arc<AtomicU8>,
) -> Result<Conn, hyper::Error> {
    let (closing, closed) = oneshot::channel();
    if stream.alpn_h2() {
        let (sender, connection) =
            http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
        let conn = Conn::new(Sender::H2(sender), Some(remote), life, closing);
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                _ = connection => {}
                _ = closed => {}
            }
        });
        return Ok(conn);
    }
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    let conn = Conn::new(Sender::H1(sender), Some(remote), life, closing);
    tokio::spawn(drive_h1(connection, closed, slot));
    Ok(conn)
}

/// Runs an HTTP/1.1 connection until it is done or told to close, then
/// closes it gracefully: our FIN, then the server's end of stream (bounded).
async fn drive_h1<S>(
    connection: http1::Connection<TokioIo<Stream>, Empty<Bytes>>,
    closed: oneshot::Receiver<()>,
    slot: S,
) {
    let _slot = slot;
    let mut running = std::pin::pin!(connection.without_shutdown());
    let parts = tokio::select! {
        parts = &mut running => parts.ok(),
        _ = closed => tokio::time::timeout(CLOSE_WAIT, &mut running).await.ok().and_then(Result::ok),
    };
    let Some(parts) = parts else { return };
    let mut io = parts.io.into_inner();
    let _ = tokio::time::timeout(CLOSE_WAIT, async move {
        let _ = io.shutdown().await;
        let mut sink = [0u8; 1024];
        while let Ok(n) = io.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
