//! What each path answers.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use super::slow_body::SlowBody;
use super::Shared;

/// Name of the response header that carries the index of the answering host.
pub const HOST_INDEX_HEADER: &str = "x-host-index";

/// Largest body `/bytes/<n>` serves (64 MiB); larger requests get a 400.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

type FarmBody = BoxBody<Bytes, Infallible>;

/// Answers one request on host `host`.
pub(super) async fn respond(
    req: Request<Incoming>,
    host: u32,
    shared: Arc<Shared>,
) -> Result<Response<FarmBody>, Infallible> {
    if let Some(counters) = shared.host(host) {
        counters.requests.fetch_add(1, Ordering::Relaxed);
    }
    shared.total.requests.fetch_add(1, Ordering::Relaxed);

    let path = req.uri().path();
    let mut response = if path == "/slow-body" {
        Response::new(SlowBody::new().boxed())
    } else {
        let (status, body) = plain_response(path, &shared);
        if !shared.response_delay.is_zero() {
            tokio::time::sleep(shared.response_delay).await;
        }
        let mut response = Response::new(Full::new(body).boxed());
        *response.status_mut() = status;
        response
    };
    response
        .headers_mut()
        .insert(HOST_INDEX_HEADER, HeaderValue::from(host));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// Status and body for every path but `/slow-body`.
pub(super) fn plain_response(path: &str, shared: &Shared) -> (StatusCode, Bytes) {
    if let Some(code) = path.strip_prefix("/status/") {
        return match code.parse::<u16>().ok().filter(|c| (200..=599).contains(c)) {
            Some(code) => match StatusCode::from_u16(code) {
                Ok(status)
                    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED =>
                {
                    (status, Bytes::new())
                }
                Ok(status) => (status, Bytes::from(format!("{status}\n"))),
                Err(_) => bad_request("bad status code"),
            },
            None => bad_request("/status/<code> needs a code in 200..=599"),
        };
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        return match n.parse::<usize>().ok().filter(|n| *n <= MAX_BYTES) {
            Some(n) if n <= shared.body.len() => (StatusCode::OK, shared.body.slice(..n)),
            Some(n) => (StatusCode::OK, Bytes::from(vec![b'x'; n])),
            None => bad_request("/bytes/<n> needs a byte count up to 64 MiB"),
        };
    }
    (StatusCode::OK, shared.body.clone())
}

fn bad_request(why: &'static str) -> (StatusCode, Bytes) {
    (StatusCode::BAD_REQUEST, Bytes::from_static(why.as_bytes()))
}
