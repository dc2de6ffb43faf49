//! The accept loop of one host, and the start of each connection: the
//! close-counting wrapper, then TLS when the farm serves HTTPS.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::bind::is_fd_exhaustion;
use super::close_counted::CloseCounted;
use super::counters::ConnectionGuard;
use super::serve::{serve_h2, serve_http};
use super::Shared;

/// How long an accept loop pauses after running out of file descriptors.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Accepts connections for one host until told to stop; then closes them all.
pub(super) async fn accept_loop(
    listener: TcpListener,
    host: u32,
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let guard = ConnectionGuard::new(Arc::clone(&shared), host);
                    connections.spawn(serve_connection(
                        stream,
                        host,
                        Arc::clone(&shared),
                        acceptor.clone(),
                        guard,
                    ));
                }
                Err(e) => {
                    shared.accept_errors.fetch_add(1, Ordering::Relaxed);
                    if is_fd_exhaustion(&e) {
                        tracing::warn!(host, error = %e, "HTTP farm: out of file descriptors accepting a connection");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    } else {
                        tracing::debug!(host, error = %e, "HTTP farm: accept failed");
                    }
                }
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// Serves one accepted connection: the TLS handshake first if there is an
/// acceptor, then HTTP/1.1 with keep-alive.
async fn serve_connection(
    stream: TcpStream,
    host: u32,
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
    guard: ConnectionGuard,
) {
    let _ = stream.set_nodelay(true);
    let stream = CloseCounted::new(stream, guard);
    match acceptor {
        None => serve_http(stream, host, shared).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(tls) => {
                shared.tls_handshakes.fetch_add(1, Ordering::Relaxed);
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    serve_h2(tls, host, shared).await;
                } else {
                    serve_http(tls, host, shared).await;
                }
            }
            Err(e) => {
                shared
                    .tls_handshake_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(host, error = %e, "HTTP farm: TLS handshake failed");
            }
        },
    }
}
