//! DNS over HTTPS (RFC 8484) on HTTP/2 (the `h2` crate, directly: hyper's
//! client spawned a task per request to send its body, which cost more CPU
//! than the rest of a query) over TLS ([`super::tls`]):
//! one connection per server carrying every query as its own stream, by
//! `POST` with an `application/dns-message` body (or `GET ?dns=`, as an
//! option). Queries use ID 0 (RFC 8484 §4.1); answers are checked against
//! the exact question as over UDP.
//!
//! A connection that the server closes (or sends GOAWAY on) is replaced on
//! the next query; a query whose stream was refused or reset by a closing
//! connection goes again on the new one within its timeout, without counting
//! as a server failure (only connections that answered nothing count, up to
//! [`CLOSED_RETRIES`]). A query that times out while its
//! connection delivered nothing at all since it was sent drops that
//! connection (stalled), so queries after it get a fresh one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::AtomicBool;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderValue, Method, Request, StatusCode};
use tokio::time::Instant;

use super::pipeline::CLOSED_RETRIES;
use super::tls::{TlsClient, TlsOptions, TlsSetupError, ALPN_H2};
use super::{StreamError, StreamExchange, TransportError};
use crate::wire::{
    encode_padded_query, judge, peek_id, Question, Verdict, MAX_QUERY_LEN, PAD_BLOCK,
};

/// The media type of a DNS message over HTTP.
pub const DNS_MESSAGE: &str = "application/dns-message";

/// The largest answer read: one DNS message.
const MAX_ANSWER: usize = 65_535;

/// How a DoH server is asked.
#[derive(Debug, Clone)]
pub struct DohSettings {
    /// The URL path, e.g. `/dns-query`.
    pub path: String,
    /// `GET /path?dns=<base64url>` instead of `POST` (cacheable by HTTP
    /// caches, slightly longer requests). Default off.
    pub use_get: bool,
    /// The EDNS payload size advertised. Default 1232.
    pub payload: u16,
    /// Require answers to echo the question's 0x20 case exactly.
    pub exact_case: bool,
}

impl Default for DohSettings {
    fn default() -> Self {
        Self {
            path: "/dns-query".to_owned(),
            use_get: false,
            payload: 1232,
            exact_case: false,
        }
    }
}

/// A DoH client: one multiplexed HTTP/2 connection per server.
#[derive(Clone)]
pub struct DohClient {
    inner: Arc<DohInner>,
}

impl std::fmt::Debug for DohClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DohClient")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct DohInner {
    tls: TlsClient,
    /// The `:authority` of requests: the TLS name.
    authority: String,
    settings: DohSettings,
    /// The live connection per server (read on every query).
    conns: parking_lot::Mutex<HashMap<SocketAddr, Live>>,
    /// Per server, held while connecting, so that one connection is made,
    /// not one per waiting query (and a server slow to connect delays no
    /// other).
    connecting: parking_lot::Mutex<HashMap<SocketAddr, Arc<tokio::sync::Mutex<()>>>>,
    /// The POST request URI, parsed once.
    post_uri: http::Uri,
    /// `application/dns-message`, made once.
    dns_message: HeaderValue,
    /// `content-length` values of padded queries (multiples of
    /// [`PAD_BLOCK`]), made once: index `len / PAD_BLOCK`.
    lengths: Vec<HeaderValue>,
    opened: AtomicU64,
    reconnects: AtomicU64,
}

/// One HTTP/2 connection as the askers see it (cloned per query).
#[derive(Clone)]
struct Connection {
    send: SendRequest<Bytes>,
    /// Whole responses received on it: progress, for stall detection.
    responses: Arc<AtomicU64>,
    id: u64,
}

/// A server's current connection, as the client keeps it.
struct Live {
    conn: Connection,
    /// Set when the connection's task ends (closed by either side).
    closed: Arc<AtomicBool>,
}

/// Counters of a DoH client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DohStats {
    /// Connections opened so far.
    pub opened: u64,
    /// Queries sent again because their connection closed.
    pub reconnects: u64,
}

/// Why one request did not give an answer.
enum Failure {
    /// The connection went away before the answer: ask again.
    Closed,
    Final(StreamError),
}

impl DohClient {
    /// A client verifying servers as `tls` says, requiring ALPN `h2`.
    pub fn new(tls: &TlsOptions, settings: DohSettings) -> Result<Self, TlsSetupError> {
        let client = TlsClient::new(tls, &[ALPN_H2])?;
        let authority = if tls.name.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{}]", tls.name)
        } else {
            tls.name.clone()
        };
        let post_uri = format!("https://{authority}{}", settings.path)
            .parse::<http::Uri>()
            .map_err(|e| {
                TlsSetupError::Config(format!("invalid DoH path {:?}: {e}", settings.path))
            })?;
        Ok(Self {
            inner: Arc::new(DohInner {
                tls: client,
                authority,
                settings,
                conns: parking_lot::Mutex::new(HashMap::new()),
                connecting: parking_lot::Mutex::new(HashMap::new()),
                post_uri,
                dns_message: HeaderValue::from_static(DNS_MESSAGE),
                lengths: (0..=MAX_QUERY_LEN / PAD_BLOCK)
                    .map(|blocks| HeaderValue::from(blocks * PAD_BLOCK))
                    .collect(),
                opened: AtomicU64::new(0),
                reconnects: AtomicU64::new(0),
            }),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> DohStats {
        DohStats {
            opened: self.inner.opened.load(Ordering::Relaxed),
            reconnects: self.inner.reconnects.load(Ordering::Relaxed),
        }
    }

    /// Asks `server` within `timeout`, connecting if need be.
    pub async fn query(
        &self,
        server: SocketAddr,
        question: &Question,
        timeout: Duration,
    ) -> StreamExchange {
        let deadline = Instant::now() + timeout;
        match tokio::time::timeout_at(deadline, self.ask(server, question, deadline)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout.into()),
        }
    }

    async fn ask(
        &self,
        server: SocketAddr,
        question: &Question,
        deadline: Instant,
    ) -> StreamExchange {
        let mut closed = 0;
        loop {
            // The connection's handle is cloned once per query, and moved
            // into the request.
            let Connection {
                send,
                responses,
                id,
            } = self.connection(server).await?;
            let progress = responses.load(Ordering::Acquire);
            let stall_guard = StallGuard {
                client: self,
                server,
                id,
                responses: &responses,
                progress,
                deadline,
                armed: true,
            };
            let result = self.exchange(send, &responses, question).await;
            stall_guard.disarm();
            match result {
                Ok(message) => return Ok(message),
                Err(Failure::Final(err)) => return Err(err),
                Err(Failure::Closed) => {
                    self.forget(server, id);
                    // As in the pipelined pool: only connections that
                    // answered nothing count against the query.
                    if responses.load(Ordering::Acquire) > 0 {
                        self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    closed += 1;
                    if closed > CLOSED_RETRIES {
                        return Err(StreamError::io(
                            std::io::ErrorKind::ConnectionReset,
                            format!("{server} closed {closed} connections unanswered"),
                        ));
                    }
                    self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// The open connection to `server`, made now if there is none.
    async fn connection(&self, server: SocketAddr) -> Result<Connection, StreamError> {
        match self.live(server) {
            Some(conn) => Ok(conn),
            // Boxed: the TLS and HTTP/2 handshakes' state is most of a
            // query's future, and only the first query of a connection
            // needs it.
            None => Box::pin(self.connect(server)).await,
        }
    }

    /// Opens a connection to `server`, unless another query did meanwhile.
    async fn connect(&self, server: SocketAddr) -> Result<Connection, StreamError> {
        // Others asking the same server wait here meanwhile: one
        // connection, not one per query.
        let gate = self
            .inner
            .connecting
            .lock()
            .entry(server)
            .or_default()
            .clone();
        let _connecting = gate.lock().await;
        if let Some(conn) = self.live(server) {
            return Ok(conn);
        }
        let tls = self.inner.tls.connect(server).await?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(ALPN_H2);
        if !h2 {
            return Err(StreamError::io(
                std::io::ErrorKind::InvalidData,
                format!("{server} did not agree to HTTP/2 (ALPN h2)"),
            ));
        }
        let (send, connection) = h2::client::Builder::new()
            .handshake::<_, Bytes>(tls)
            .await
            .map_err(|e| StreamError::io(std::io::ErrorKind::ConnectionAborted, e.to_string()))?;
        let closed = Arc::new(AtomicBool::new(false));
        let on_close = closed.clone();
        tokio::spawn(async move {
            let _ = connection.await;
            on_close.store(true, Ordering::Release);
        });
        let id = self.inner.opened.fetch_add(1, Ordering::Relaxed);
        let conn = Connection {
            send,
            responses: Arc::new(AtomicU64::new(0)),
            id,
        };
        let live = Live {
            conn: conn.clone(),
            closed,
        };
        self.inner.conns.lock().insert(server, live);
        Ok(conn)
    }

    /// The open connection to `server`, if there is one.
    fn live(&self, server: SocketAddr) -> Option<Connection> {
        let conns = self.inner.conns.lock();
        conns
            .get(&server)
            .filter(|live| !live.closed.load(Ordering::Acquire))
            .map(|live| live.conn.clone())
    }

    /// Drops the connection `id` to `server` if it is still the current one.
    fn forget(&self, server: SocketAddr, id: u64) {
        let mut conns = self.inner.conns.lock();
        if conns.get(&server).is_some_and(|live| live.conn.id == id) {
            conns.remove(&server);
        }
    }

    /// A `POST` of a `len`-byte query, its headers made from values built
    /// once (a query is sent with the same three).
    fn post_request(&self, len: usize) -> Request<()> {
        let inner = &self.inner;
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = inner.post_uri.clone();
        let length = match inner.lengths.get(len / PAD_BLOCK) {
            Some(value) if len.is_multiple_of(PAD_BLOCK) => value.clone(),
            _ => HeaderValue::from(len),
        };
        let headers = request.headers_mut();
        headers.insert(http::header::ACCEPT, inner.dns_message.clone());
        headers.insert(http::header::CONTENT_TYPE, inner.dns_message.clone());
        headers.insert(http::header::CONTENT_LENGTH, length);
        request
    }

    /// Sends `question` as a request on `send`: the part of an exchange
    /// that does not wait, kept out of its future (a request and its
    /// headers would otherwise be held across every await of it).
    fn send_query(
        &self,
        send: &mut SendRequest<Bytes>,
        question: &Question,
    ) -> Result<h2::client::ResponseFuture, Failure> {
        let settings = &self.inner.settings;
        let packet = encode_padded_query(0, question, settings.payload);
        if settings.use_get {
            let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*packet);
            let request = Request::builder()
                .method(Method::GET)
                .uri(format!(
                    "https://{}{}?dns={encoded}",
                    self.inner.authority, settings.path
                ))
                .header(http::header::ACCEPT, DNS_MESSAGE)
                .body(())
                .map_err(|e| {
                    Failure::Final(StreamError::io(
                        std::io::ErrorKind::InvalidInput,
                        e.to_string(),
                    ))
                })?;
            let (response, _) = send.send_request(request, true).map_err(failure)?;
            return Ok(response);
        }
        let request = self.post_request(packet.len());
        let (response, mut stream) = send.send_request(request, false).map_err(failure)?;
        // Fits the initial window (a query is far below 64 KiB): sent at
        // once, with the end of the stream.
        stream
            .send_data(Bytes::copy_from_slice(&packet), true)
            .map_err(failure)?;
        Ok(response)
    }

    /// One request and its answer.
    async fn exchange(
        &self,
        send: SendRequest<Bytes>,
        responses: &AtomicU64,
        question: &Question,
    ) -> Result<hickory_proto::op::Message, Failure> {
        let settings = &self.inner.settings;
        let mut send = send.ready().await.map_err(failure)?;
        let response = self.send_query(&mut send, question)?;
        drop(send);
        let response = response.await.map_err(failure)?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(Failure::Final(StreamError::io(
                std::io::ErrorKind::Other,
                format!("HTTP status {status} from the DoH server"),
            )));
        }
        let mut received = response.into_body();
        // Most answers arrive as one DATA frame: kept as it is, copied
        // only when a second one follows.
        let mut body = Body::Empty;
        while let Some(chunk) = received.data().await {
            let chunk = chunk.map_err(|_| Failure::Closed)?;
            let _ = received.flow_control().release_capacity(chunk.len());
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(Failure::Final(TransportError::Malformed.into()));
            }
            body.push(chunk);
        }
        let body = body.bytes();
        // Progress is a whole answer: headers alone may precede a stall.
        responses.fetch_add(1, Ordering::AcqRel);
        if peek_id(body) != Some(0) {
            return Err(Failure::Final(TransportError::Malformed.into()));
        }
        match judge(body, question, settings.exact_case) {
            Verdict::Answer(message) => Ok(message),
            Verdict::Malformed | Verdict::Mismatch => {
                Err(Failure::Final(TransportError::Malformed.into()))
            }
        }
    }
}

/// A response body read frame by frame.
enum Body {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::One(bytes) => bytes.len(),
            Body::Many(bytes) => bytes.len(),
        }
    }

    fn push(&mut self, chunk: Bytes) {
        *self = match std::mem::replace(self, Body::Empty) {
            Body::Empty => Body::One(chunk),
            Body::One(first) => {
                let mut all = BytesMut::with_capacity(first.len() + chunk.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&chunk);
                Body::Many(all)
            }
            Body::Many(mut all) => {
                all.extend_from_slice(&chunk);
                Body::Many(all)
            }
        };
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Body::Empty => &[],
            Body::One(bytes) => bytes,
            Body::Many(bytes) => bytes,
        }
    }
}

/// What an HTTP/2 error means for the query: a stream the server refused
/// or reset, or a connection gone (GOAWAY, I/O), was not answered, so the
/// query may go again on a new connection; anything else is final.
fn failure(err: h2::Error) -> Failure {
    let refused = matches!(
        err.reason(),
        Some(h2::Reason::REFUSED_STREAM | h2::Reason::CANCEL | h2::Reason::NO_ERROR)
    );
    if err.is_go_away() || err.is_io() || err.is_reset() || refused {
        Failure::Closed
    } else {
        Failure::Final(StreamError::io(
            std::io::ErrorKind::ConnectionAborted,
            err.to_string(),
        ))
    }
}

/// On a query's timeout (the future dropped before `disarm`): if the
/// connection delivered nothing since the query was sent, forget it, so that
/// later queries open a new one instead of waiting on a stalled one.
struct StallGuard<'a> {
    client: &'a DohClient,
    server: SocketAddr,
    /// The connection's id and its count of whole responses.
    id: u64,
    responses: &'a AtomicU64,
    progress: u64,
    deadline: Instant,
    armed: bool,
}

impl StallGuard<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for StallGuard<'_> {
    fn drop(&mut self) {
        if !self.armed || Instant::now() < self.deadline {
            return;
        }
        if self.responses.load(Ordering::Acquire) != self.progress {
            return;
        }
        self.client.forget(self.server, self.id);
    }
}
