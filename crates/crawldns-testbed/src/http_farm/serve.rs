//! Serving HTTP on an accepted (and possibly TLS) connection.

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};

use super::router::respond;
use super::Shared;

/// Serves HTTP/1.1 (with keep-alive) on `io` until either side closes.
pub(super) async fn serve_http<I>(io: I, host: u32, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| respond(req, host, Arc::clone(&shared)));
    let result = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(e) = result {
        tracing::debug!(host, error = %e, "HTTP farm: connection ended with an error");
    }
}

/// Serves HTTP/2 on `io` (a TLS stream that chose `h2`) until either side
/// closes.
pub(super) async fn serve_h2<I>(io: I, host: u32, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| respond(req, host, Arc::clone(&shared)));
    let result = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(e) = result {
        tracing::debug!(host, error = %e, "HTTP farm: HTTP/2 connection ended with an error");
    }
}
