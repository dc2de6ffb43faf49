//! DNS over HTTPS (RFC 8484) on HTTP/2 over TLS: `POST /dns-query` with an
//! `application/dns-message` body, or `GET /dns-query?dns=<base64url>`.
//!
//! Every request is one query, planned and delayed like a UDP or TCP one;
//! many are multiplexed on one connection and answered in the order their
//! delays give. A connection's requests are served inside its own task (h2
//! directly, no task per request, as a production DoH server does), so the
//! listener is not what limits a benchmark's client. The stream faults act
//! per connection: `close_after` sends GOAWAY after N answers and closes
//! once the answered streams are done; `stall_after` sends the headers and
//! half the body of every answer after the first N, then nothing more on
//! those streams.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
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

/// Streams a client may open at once on one connection.
const MAX_STREAMS: u32 = 1024;

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
    /// Answers handed to h2 on this connection (stalled ones included).
    answered: AtomicU32,
}

/// How a request ended, for the connection's loop.
enum Served {
    /// Answered, or refused with a status.
    Done,
    /// Half an answer sent: the stream is kept open, silent, until the
    /// connection ends.
    Stalled(SendStream<Bytes>),
}

async fn serve_connection<S>(shared: Arc<Shared>, tls: S, record: ConnectionRecord)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let faults = shared.faults.read().clone();
    let state = ConnState {
        shared,
        record,
        close_after: faults.close_after,
        stall_after: faults.stall_after,
        answered: AtomicU32::new(0),
    };
    let Ok(mut connection) = h2::server::Builder::new()
        .max_concurrent_streams(MAX_STREAMS)
        .handshake::<_, Bytes>(tls)
        .await
    else {
        return;
    };
    let mut requests = FuturesUnordered::new();
    let mut stalled = Vec::new();
    let mut closing = false;
    loop {
        tokio::select! {
            next = connection.accept() => match next {
                Some(Ok((request, respond))) => requests.push(answer(&state, request, respond)),
                // The client is gone, or the connection is done closing.
                _ => break,
            },
            Some(served) = requests.next(), if !requests.is_empty() => {
                if let Served::Stalled(stream) = served {
                    stalled.push(stream);
                }
            }
        }
        let answered = state.answered.load(Ordering::Relaxed);
        if !closing && state.close_after.is_some_and(|limit| answered >= limit) {
            closing = true;
            connection.graceful_shutdown();
        }
    }
    drop(stalled);
}

/// Serves one request.
async fn answer(
    state: &ConnState,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
) -> Served {
    let query = match read_query(request).await {
        Ok(query) => query,
        Err(status) => {
            let _ = respond.send_response(status_only(status), true);
            return Served::Done;
        }
    };
    state.record.query();
    let (plan, delay) = plan(&state.shared, &query, Transport::Https);
    let Plan::Reply { bytes, .. } = plan else {
        // Dropped or down: never answer. The request is forgotten once the
        // client gives up on its stream (or the connection closes).
        let _ = std::future::poll_fn(|cx| respond.poll_reset(cx)).await;
        return Served::Done;
    };
    if !delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = std::future::poll_fn(|cx| respond.poll_reset(cx)) => return Served::Done,
        }
    }
    answer_now(state, respond, Bytes::from(bytes))
}

/// Sends `bytes` as the answer, or half of it when the connection stalls.
fn answer_now(state: &ConnState, mut respond: SendResponse<Bytes>, bytes: Bytes) -> Served {
    let n = state.answered.fetch_add(1, Ordering::Relaxed);
    let stall = state.stall_after.is_some_and(|limit| n >= limit);
    let Ok(mut stream) = respond.send_response(ok_response(bytes.len()), false) else {
        return Served::Done;
    };
    if stall {
        let _ = stream.send_data(bytes.slice(..bytes.len() / 2), false);
        return Served::Stalled(stream);
    }
    state.shared.counters.response();
    if stream.send_data(bytes, true).is_err() {
        state.shared.counters.response_not_sent();
    }
    Served::Done
}

fn ok_response(len: usize) -> Response<()> {
    let mut response = Response::new(());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(DNS_MESSAGE),
    );
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=0"),
    );
    response
}

/// The DNS message of a POST body or a GET `dns` parameter.
async fn read_query(request: Request<RecvStream>) -> Result<Vec<u8>, StatusCode> {
    if request.uri().path() != DOH_PATH {
        return Err(StatusCode::NOT_FOUND);
    }
    match *request.method() {
        Method::POST => {
            let content_type = request.headers().get(http::header::CONTENT_TYPE);
            if content_type.and_then(|v| v.to_str().ok()) != Some(DNS_MESSAGE) {
                return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            }
            let mut body = request.into_body();
            let mut query = BytesMut::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
                let _ = body.flow_control().release_capacity(chunk.len());
                if query.len() + chunk.len() > MAX_BODY {
                    return Err(StatusCode::PAYLOAD_TOO_LARGE);
                }
                query.extend_from_slice(&chunk);
            }
            Ok(query.to_vec())
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

fn status_only(status: StatusCode) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    response
}
