//! A hyper-util connector resolving with crawldns and connecting per
//! RFC 8305, for users of hyper's client directly (plain TCP; wrap it in a
//! TLS connector such as hyper-rustls for https).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use crawldns::{Resolver, ResolverConfig};
//! use crawldns_fetch::CrawlConnector;
//!
//! let resolver = Resolver::new(
//!     ResolverConfig::builder().nameserver("127.0.0.1:5353".parse()?).build(),
//! )?;
//! let client: Client<_, Empty<Bytes>> =
//!     Client::builder(TokioExecutor::new()).build(CrawlConnector::new(Arc::new(resolver)));
//! let response = client.get("http://h1.crawl.test:8080/".parse()?).await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::connect::{happy_connect, DEFAULT_ATTEMPT_DELAY};
use crate::host_resolver::HostResolver;

/// Errors of the connector.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A `tower::Service<Uri>` that hyper-util's legacy client can use.
#[derive(Clone)]
pub struct CrawlConnector {
    resolver: Arc<dyn HostResolver>,
    attempt_delay: Duration,
}

impl CrawlConnector {
    /// A connector resolving with `resolver` (e.g. a `crawldns::Resolver`).
    pub fn new(resolver: Arc<dyn HostResolver>) -> Self {
        Self {
            resolver,
            attempt_delay: DEFAULT_ATTEMPT_DELAY,
        }
    }

    /// Sets the RFC 8305 connection-attempt delay (default 250 ms).
    pub fn attempt_delay(mut self, delay: Duration) -> Self {
        self.attempt_delay = delay;
        self
    }
}

impl tower_service::Service<Uri> for CrawlConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let resolver = self.resolver.clone();
        let delay = self.attempt_delay;
        Box::pin(async move {
            let host = uri.host().ok_or("URI has no host")?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                });
            let addrs: Arc<[IpAddr]> = match host.parse::<IpAddr>() {
                Ok(ip) => Arc::from([ip]),
                Err(_) => resolver.resolve(host).await.map_err(|f| f.message)?,
            };
            let (stream, _) = happy_connect(&addrs, port, delay).await?;
            Ok(TokioIo::new(stream))
        })
    }
}
