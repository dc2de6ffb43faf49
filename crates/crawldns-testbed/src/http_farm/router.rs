//! What each path answers.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use super::compress::{encode, text_body, Coding};
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
    } else if path == "/robots.txt" {
        let (status, body) = robots_txt(host);
        let mut response = Response::new(Full::new(body).boxed());
        *response.status_mut() = status;
        response
    } else {
        let path = path.to_owned();
        let for_reply = Arc::clone(&shared);
        // Compressing a large body is CPU work: off the runtime's threads.
        let reply = match tokio::task::spawn_blocking(move || reply(&path, &for_reply)).await {
            Ok(reply) => reply,
            Err(_) => Reply::plain(StatusCode::INTERNAL_SERVER_ERROR, Bytes::new()),
        };
        if !shared.response_delay.is_zero() {
            tokio::time::sleep(shared.response_delay).await;
        }
        let mut response = Response::new(Full::new(reply.body).boxed());
        *response.status_mut() = reply.status;
        if let Some(coding) = reply.encoding {
            response
                .headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
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

/// What host `host` serves as `/robots.txt`: a 503 on hosts 8, 18, 28, ...
/// (robots.txt unreachable), a 404 on hosts 9, 19, 29, ... (no rules), and
/// on every other host [`ROBOTS_TXT`].
pub fn robots_txt(host: u32) -> (StatusCode, Bytes) {
    match host % 10 {
        8 => (
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(b"busy\n"),
        ),
        9 => (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
        _ => (StatusCode::OK, Bytes::from_static(ROBOTS_TXT.as_bytes())),
    }
}

/// The robots.txt of most hosts: `crawldns` may fetch everything but
/// `/private/`, at most 20 requests a second; every other agent nothing.
pub const ROBOTS_TXT: &str = "# crawldns testbed\n\
User-agent: crawldns\n\
Disallow: /private/\n\
Crawl-delay: 0.05\n\
\n\
User-agent: *\n\
Disallow: /\n";

/// A response: status, body (as sent), content coding.
pub(super) struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    pub encoding: Option<&'static str>,
}

impl Reply {
    fn plain(status: StatusCode, body: Bytes) -> Self {
        Self {
            status,
            body,
            encoding: None,
        }
    }
}

/// The reply to every path but `/slow-body`.
pub(super) fn reply(path: &str, shared: &Shared) -> Reply {
    let encoded = path
        .strip_prefix("/enc/")
        .map(|rest| (rest, false))
        .or_else(|| path.strip_prefix("/bomb/").map(|rest| (rest, true)));
    let Some((rest, bomb)) = encoded else {
        let (status, body) = plain_response(path, shared);
        return Reply::plain(status, body);
    };
    let parsed = rest.split_once('/').and_then(|(coding, n)| {
        let n = n.parse::<usize>().ok().filter(|n| *n <= MAX_BYTES)?;
        Some((Coding::parse(coding)?, n))
    });
    let Some((coding, n)) = parsed else {
        let (status, body) = bad_request("/enc|bomb/<gzip|deflate|br|zstd>/<n up to 64 MiB>");
        return Reply::plain(status, body);
    };
    let plain = if bomb { vec![0u8; n] } else { text_body(n) };
    Reply {
        status: StatusCode::OK,
        body: Bytes::from(encode(coding, &plain)),
        encoding: Some(coding.label()),
    }
}

/// Status and body for every path but `/slow-body`, `/enc/` and `/bomb/`.
fn plain_response(path: &str, shared: &Shared) -> (StatusCode, Bytes) {
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
