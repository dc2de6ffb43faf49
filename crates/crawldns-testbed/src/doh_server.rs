//! DNS over HTTPS (RFC 8484) on HTTP/2 over TLS: `POST /dns-query` with an
//! `application/dns-message` body, or `GET /dns-query?dns=<base64url>`.
//!
//! Every request is one query, planned and delayed like a UDP or TCP one;
//! many are multiplexed on one connection and answered in the order their
//! delays give. The stream faults act per connection: `close_after` sends
//! GOAWAY after N answers and closes once the answered streams are done;
//! `stall_after` sends the headers and half the body of every answer after
//! the first N, then nothing more on those streams.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use crate::counters::{ConnectionRecord, Transport};
use crate::plan::{plan, Plan, Shared};
use crate::stream_server::accept_tls;

/// The path the server answers on (RFC 8484's example, what clients use).
pub const DOH_PATH: &str = "/dns-query";

/// The media type of a DNS message over HTTP.
pub const DNS_MESSAGE: &str = "application/dns-message";

/// The largest request body accepted: one DNS message.
const MAX_BODY: usize = 65_535;

/// Accepts DoH connections for ever.
pub(crate) async fn serve_https(shared: Arc<Shared>, listener: TcpListener, acceptor: TlsAcceptor) {
    accept_tls(
        shared,
        listener,
        acceptor,
        Transport::Https,
        serve_connection,
    )
    .await;
}

/// What one connection's requests share.
struct ConnState {
    shared: Arc<Shared>,
    record: ConnectionRecord,
    close_after: Option<u32>,
    stall_after: Option<u32>,
    /// Answers handed to hyper on this connection.
    answered: AtomicU32,
    /// Woken when `close_after` answers have gone out.
    close: Notify,
}

async fn serve_connection<S>(shared: Arc<Shared>, tls: S, record: ConnectionRecord)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let faults = shared.faults.read().clone();
    let state = Arc::new(ConnState {
        shared,
        record,
        close_after: faults.close_after,
        stall_after: faults.stall_after,
        answered: AtomicU32::new(0),
        close: Notify::new(),
    });
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |request| {
        let state = service_state.clone();
        async move { Ok::<_, Infallible>(answer(&state, request).await) }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .keep_alive_interval(None)
        .max_concurrent_streams(1024);
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        () = state.close.notified() => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// Answers one request.
async fn answer(state: &ConnState, request: Request<Incoming>) -> Response<DohBody> {
    let query = match read_query(request).await {
        Ok(query) => query,
        Err(status) => return status_only(status),
    };
    state.record.query();
    let (plan, delay) = plan(&state.shared, &query, Transport::Https);
    let Plan::Reply { bytes, .. } = plan else {
        // Dropped or down: never answer; the client gives up on the stream.
        return std::future::pending().await;
    };
    tokio::time::sleep(delay).await;
    let n = state.answered.fetch_add(1, Ordering::AcqRel);
    let stall = state.stall_after.is_some_and(|limit| n >= limit);
    if state.close_after.is_some_and(|limit| n + 1 == limit) {
        state.close.notify_one();
    }
    if !stall {
        state.shared.counters.response();
    }
    let len = bytes.len();
    let body = DohBody {
        data: Some(Bytes::from(bytes)),
        stall,
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, DNS_MESSAGE)
        .header(hyper::header::CONTENT_LENGTH, len)
        .header(hyper::header::CACHE_CONTROL, "max-age=0")
        .body(body)
        .unwrap_or_else(|_| status_only(StatusCode::INTERNAL_SERVER_ERROR))
}

/// The DNS message of a POST body or a GET `dns` parameter.
async fn read_query(request: Request<Incoming>) -> Result<Vec<u8>, StatusCode> {
    if request.uri().path() != DOH_PATH {
        return Err(StatusCode::NOT_FOUND);
    }
    match *request.method() {
        Method::POST => {
            let content_type = request.headers().get(hyper::header::CONTENT_TYPE);
            if content_type.and_then(|v| v.to_str().ok()) != Some(DNS_MESSAGE) {
                return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            }
            let limited = http_body_util::Limited::new(request.into_body(), MAX_BODY);
            let body = limited
                .collect()
                .await
                .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)?;
            Ok(body.to_bytes().to_vec())
        }
        Method::GET => {
            let query = request.uri().query().unwrap_or("");
            let encoded = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("dns="))
                .ok_or(StatusCode::BAD_REQUEST)?;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .map_err(|_| StatusCode::BAD_REQUEST)
        }
        _ => Err(StatusCode::METHOD_NOT_ALLOWED),
    }
}

fn status_only(status: StatusCode) -> Response<DohBody> {
    let mut response = Response::new(DohBody {
        data: None,
        stall: false,
    });
    *response.status_mut() = status;
    response
}

/// A response body: the whole message, or (stalling) its first half and
/// then nothing, ever, while the declared length promises more.
pub(crate) struct DohBody {
    data: Option<Bytes>,
    stall: bool,
}

impl Body for DohBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.data.take() {
            Some(data) if self.stall => {
                let half = data.slice(..data.len() / 2);
                Poll::Ready(Some(Ok(Frame::data(half))))
            }
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            // The stalled body never wakes again: the stream stays open
            // until the client resets it or the connection closes.
            None if self.stall => Poll::Pending,
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && !self.stall
    }
}
