//! Serving DNS over a byte stream (RFC 7766 framing: a 2-byte length before
//! each message), for plain TCP and for DNS over TLS (RFC 7858) alike.
//!
//! A connection carries any number of pipelined queries; each is answered
//! after its own delay, so answers leave in whatever order the delays give.
//! The stream faults act per connection: `close_after` closes it after N
//! answers, `stall_after` sends half of answer N+1 and then nothing more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::counters::{ConnectionRecord, Transport};
use crate::plan::{plan, Plan, Shared};

/// How long a connection may stay without a query before the server closes
/// it (RFC 7766 §6.2.3 suggests a few seconds; Unbound uses 30).
pub(crate) const IDLE: Duration = Duration::from_secs(10);

/// Accepts plain TCP connections for ever.
pub(crate) async fn serve_tcp(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of fds or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let record = shared.counters.connection(Transport::Tcp);
        tokio::spawn(serve_connection(
            shared.clone(),
            stream,
            Transport::Tcp,
            record,
        ));
    }
}

/// Accepts DNS-over-TLS connections for ever.
pub(crate) async fn serve_tls(shared: Arc<Shared>, listener: TcpListener, acceptor: TlsAcceptor) {
    accept_tls(
        shared,
        listener,
        acceptor,
        Transport::Tls,
        |shared, tls, record| serve_connection(shared, tls, Transport::Tls, record),
    )
    .await;
}

/// Accepts TLS connections for ever, counting each as `transport`; each
/// handshake runs in the connection's own task, then `serve` takes over.
pub(crate) async fn accept_tls<F, Fut>(
    shared: Arc<Shared>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    transport: Transport,
    serve: F,
) where
    F: Fn(Arc<Shared>, TlsStream<TcpStream>, ConnectionRecord) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        let serve = serve.clone();
        tokio::spawn(async move {
            let record = shared.counters.connection(transport);
            // A client that fails verification aborts the handshake: that
            // is the client's business, nothing to serve.
            let Ok(Ok(tls)) = tokio::time::timeout(IDLE, acceptor.accept(stream)).await else {
                return;
            };
            if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                record.resumed();
            }
            serve(shared, tls, record).await;
        });
    }
}

/// Serves one connection: length-prefixed queries, possibly pipelined.
pub(crate) async fn serve_connection<S>(
    shared: Arc<Shared>,
    stream: S,
    transport: Transport,
    record: ConnectionRecord,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
    // Set by the writer when it stops (closing, stalled or failed), so the
    // reader stops too and the stream's two halves are dropped.
    let (stop_tx, mut stop_rx) = watch::channel(false);
    // Set by the writer when it stalls: the stream stays open, silent, until
    // the client closes it or goes idle.
    let stalled = Arc::new(AtomicBool::new(false));
    let faults = shared.faults.read().clone();
    let writer_task = tokio::spawn(write_answers(
        writer,
        rx,
        Signals {
            stop: stop_tx,
            stalled: stalled.clone(),
        },
        faults.close_after,
        faults.stall_after,
    ));
    loop {
        let packet = tokio::select! {
            read = tokio::time::timeout(IDLE, read_frame(&mut reader)) => match read {
                Ok(Some(packet)) => packet,
                _ => break,
            },
            _ = stop_rx.changed() => break,
        };
        record.query();
        let (plan, delay) = plan(&shared, &packet, transport);
        let Plan::Reply { bytes, .. } = plan else {
            continue;
        };
        let tx = tx.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            shared.counters.response();
            if tx.send(bytes).await.is_err() {
                shared.counters.response_not_sent();
            }
        });
    }
    drop(tx);
    if *stop_rx.borrow() || stalled.load(Ordering::Acquire) {
        // The writer is done or stalled for good: do not wait for it.
        writer_task.abort();
    } else {
        // The client stopped asking: answer what it asked, then close.
        let _ = writer_task.await;
    }
    drop(record);
}

/// Reads one length-prefixed message; `None` at the end of the stream.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    reader.read_exact(&mut len).await.ok()?;
    let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
    reader.read_exact(&mut packet).await.ok()?;
    Some(packet)
}

/// How the writer tells the reader it stopped or stalled.
struct Signals {
    stop: watch::Sender<bool>,
    stalled: Arc<AtomicBool>,
}

/// Writes answers as they come, applying the stream faults.
async fn write_answers<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
    signals: Signals,
    close_after: Option<u32>,
    stall_after: Option<u32>,
) {
    let mut written: u32 = 0;
    while let Some(bytes) = rx.recv().await {
        let Ok(len) = u16::try_from(bytes.len()) else {
            continue;
        };
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        if stall_after == Some(written) {
            // The prefix and half the message, then silence.
            let half = 2 + bytes.len() / 2;
            let _ = writer.write_all(&framed[..half]).await;
            let _ = writer.flush().await;
            signals.stalled.store(true, Ordering::Release);
            // Keep the stream open: the client must notice the stall by
            // itself. The reader aborts this task once the client is gone.
            std::future::pending::<()>().await;
        }
        if writer.write_all(&framed).await.is_err() || writer.flush().await.is_err() {
            break;
        }
        written = written.saturating_add(1);
        if close_after == Some(written) {
            let _ = writer.shutdown().await;
            break;
        }
    }
    let _ = signals.stop.send(true);
}
