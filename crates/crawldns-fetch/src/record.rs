//! What a fetch produced: one record per URL, with phase timings and an
//! error class a crawler can act on.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::response::{HttpVersion, Response};

/// Where a fetch failed. A DNS failure is never reported as a connect
/// failure: the phase decides the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "class", content = "detail")]
pub enum ErrorClass {
    /// The URL is not something the fetcher can fetch (bad syntax, scheme).
    Url,
    /// Name resolution failed, with the resolver's error kind.
    Dns(#[serde(serialize_with = "kind_label")] crawldns::ErrorKind),
    /// No TCP connection to any of the host's addresses.
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// A deadline ran out after DNS (connect, request or body).
    Timeout,
    /// The server answered with an error status (4xx, 5xx).
    HttpStatus(u16),
    /// The exchange broke after the request was sent (reset, bad HTTP),
    /// or the body exceeded the size cap.
    Body,
    /// More redirects than allowed.
    Redirects,
    /// Not tried: the origin failed to connect K times in a row and is in
    /// its cool-down (or its probe request is deciding).
    HostDown,
    /// Not tried: the origin's robots.txt disallows it, or could not be
    /// had (a 5xx, a timeout), which disallows everything (RFC 9309).
    Robots,
}

fn kind_label<S: serde::Serializer>(kind: &crawldns::ErrorKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

impl ErrorClass {
    /// A short label: `dns`, `connect`, `tls`, `timeout`, `http_status`, ...
    pub fn label(&self) -> &'static str {
        match self {
            Self::Url => "url",
            Self::Dns(_) => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::HttpStatus(_) => "http_status",
            Self::Body => "body",
            Self::Redirects => "redirects",
            Self::HostDown => "host_down",
            Self::Robots => "robots",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(kind) => write!(f, "dns/{kind}"),
            Self::HttpStatus(code) => write!(f, "http_status/{code}"),
            other => f.write_str(other.label()),
        }
    }
}

/// A failed fetch: its class and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchError {
    /// The class.
    #[serde(flatten)]
    pub class: ErrorClass,
    /// What happened.
    pub message: String,
}

/// Time spent in each phase. A phase that did not happen (no DNS or
/// connect on a reused connection, no TLS over http) is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Phases {
    /// Waiting for a connection slot (per-host and global limits, politeness).
    #[serde(serialize_with = "ms")]
    pub queue: Duration,
    /// Name resolution.
    #[serde(serialize_with = "opt_ms")]
    pub dns: Option<Duration>,
    /// TCP connection (happy eyeballs across the addresses).
    #[serde(serialize_with = "opt_ms")]
    pub connect: Option<Duration>,
    /// TLS handshake.
    #[serde(serialize_with = "opt_ms")]
    pub tls: Option<Duration>,
    /// From the end of the queue to the first byte of the response head
    /// (DNS, connect and TLS included).
    #[serde(serialize_with = "opt_ms")]
    pub ttfb: Option<Duration>,
    /// From the end of the queue to the end of the body (or the failure).
    #[serde(serialize_with = "ms")]
    pub total: Duration,
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

fn opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ms(d, s),
        None => s.serialize_none(),
    }
}

/// A failed attempt that was retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retried {
    /// Its status, when a response arrived.
    pub status: Option<u16>,
    /// Its failure.
    pub error: FetchError,
    /// The back-off before the next attempt.
    #[serde(rename = "wait_ms", serialize_with = "ms")]
    pub wait: Duration,
}

/// One URL's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchRecord {
    /// The URL as given.
    pub url: String,
    /// The URL finally fetched (after redirects).
    pub final_url: String,
    /// The host of the final URL.
    pub host: String,
    /// The final HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// The HTTP version of the final response.
    pub http_version: Option<HttpVersion>,
    /// The server's address and port for the final response.
    pub remote_addr: Option<SocketAddr>,
    /// Body bytes received, decoded.
    pub bytes: u64,
    /// Redirects followed.
    pub redirects: u32,
    /// Whether the final request went over a kept-alive connection.
    pub reused_connection: bool,
    /// Phase timings.
    #[serde(rename = "ms")]
    pub phases: Phases,
    /// The failure, if any (an error status is one).
    pub error: Option<FetchError>,
    /// Earlier attempts that failed and were retried
    /// ([`crate::FetcherConfig::retry`]), oldest first; absent from the
    /// JSON line when there were none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<Retried>,
    /// The final response with its body, from [`crate::Fetcher::fetch`]
    /// (`None` when no response head arrived, and from
    /// [`crate::BodyStream::finish`]). Not part of the JSON line.
    #[serde(skip)]
    pub response: Option<Response>,
}

impl FetchRecord {
    /// The record of a URL that could not be fetched at all (class `url`).
    pub fn url_error(url: &str, message: String) -> Self {
        Self {
            url: url.to_string(),
            final_url: url.to_string(),
            host: String::new(),
            status: None,
            http_version: None,
            remote_addr: None,
            bytes: 0,
            redirects: 0,
            reused_connection: false,
            phases: Phases::default(),
            error: Some(FetchError {
                class: ErrorClass::Url,
                message,
            }),
            response: None,
            retries: Vec::new(),
        }
    }

    /// The record as one line of JSON (no newline): the one definition of
    /// the JSON-lines shape, for every crate that writes records. The
    /// response body is not in it.
    pub fn to_json_line(&self) -> String {
        // Plain data with string keys: serialization cannot fail, and if it
        // ever did the line still says which URL and why.
        serde_json::to_string(self).unwrap_or_else(|e| {
            serde_json::json!({
                "url": self.url,
                "error": {"class": "body", "message": format!("cannot encode the record: {e}")},
            })
            .to_string()
        })
    }

    /// True when a 2xx/3xx response arrived with its whole body.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}
