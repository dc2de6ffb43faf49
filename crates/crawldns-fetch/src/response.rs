//! What a server answered: status, HTTP version, headers, the remote
//! address, and the body (decoded, up to the cap), in plain types.

use std::fmt;
use std::net::SocketAddr;

use serde::Serialize;

/// The HTTP version a response came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum HttpVersion {
    /// HTTP/1.0.
    #[serde(rename = "HTTP/1.0")]
    Http10,
    /// HTTP/1.1.
    #[serde(rename = "HTTP/1.1")]
    Http11,
    /// HTTP/2 (negotiated by ALPN).
    #[serde(rename = "HTTP/2")]
    Http2,
}

impl HttpVersion {
    /// `HTTP/1.1`, as in a status line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http10 => "HTTP/1.0",
            Self::Http11 => "HTTP/1.1",
            Self::Http2 => "HTTP/2",
        }
    }

    pub(crate) fn of(version: hyper::Version) -> Self {
        match version {
            hyper::Version::HTTP_10 | hyper::Version::HTTP_09 => Self::Http10,
            hyper::Version::HTTP_2 => Self::Http2,
            _ => Self::Http11,
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Response headers in the order received; names lower-case, values as
/// bytes (a header value need not be UTF-8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Vec<u8>)>);

impl Headers {
    pub(crate) fn of(map: &hyper::HeaderMap) -> Self {
        Self(
            map.iter()
                .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// The first value of `name` (any case), as text; `None` when absent or
    /// not UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Every (name, value) pair.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The head of a response: everything but the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The HTTP version.
    pub version: HttpVersion,
    /// The headers.
    pub headers: Headers,
    /// The server's address and port.
    pub remote_addr: Option<SocketAddr>,
    /// The request that got this response, as HTTP/1.1 text (request
    /// line, headers, blank line).
    pub request: Vec<u8>,
}

/// A complete response, its body read (up to [`crate::FetcherConfig::max_body`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status, version, headers, remote address.
    pub head: ResponseHead,
    /// The body, decoded (`Content-Encoding` undone).
    pub body: Vec<u8>,
    /// The body as it came over the wire (after transfer decoding, before
    /// content decoding), kept only when it differs from `body` and
    /// [`crate::FetcherConfig::keep_wire_body`] is set (for archives,
    /// whose payload is the encoded entity).
    pub wire_body: Option<Vec<u8>>,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The body as sent by the server (content encoding included): the
    /// archive's payload. `None` when the body was decoded and the wire
    /// bytes were not kept ([`crate::FetcherConfig::keep_wire_body`]).
    pub fn payload(&self) -> Option<&[u8]> {
        match (&self.wire_body, self.head.headers.get("content-encoding")) {
            (Some(wire), _) => Some(wire),
            (None, None) => Some(&self.body),
            (None, Some(coding)) if coding.trim().eq_ignore_ascii_case("identity") => {
                Some(&self.body)
            }
            (None, Some(_)) => None,
        }
    }

    /// The response as HTTP/1.1 text: status line, headers (without
    /// `Transfer-Encoding`, which was undone), blank line, payload. `None`
    /// when the payload is not at hand (see [`Response::payload`]).
    pub fn raw(&self) -> Option<Vec<u8>> {
        let payload = self.payload()?;
        let reason = hyper::StatusCode::from_u16(self.head.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let mut raw = format!("HTTP/1.1 {} {reason}\r\n", self.head.status).into_bytes();
        for (name, value) in self.head.headers.iter() {
            if name.eq_ignore_ascii_case("transfer-encoding") {
                continue;
            }
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(value);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(payload);
        Some(raw)
    }
}
