//! The resolver the fetcher asks for a host's addresses: crawldns, or the
//! system's `getaddrinfo` (see [`crate::gai`]) for comparison.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use crawldns::ErrorKind;

/// Why a host could not be resolved. Displays as the message and the
/// kind: `nope.crawl.test: name does not exist (nxdomain)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({})", kind.as_str())]
pub struct DnsFailure {
    /// The resolver's error kind.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
}

/// A boxed future, as trait objects need.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Turns a host name into addresses, in the order to try them.
pub trait HostResolver: Send + Sync + 'static {
    /// The addresses of `host`.
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Arc<[IpAddr]>, DnsFailure>>;

    /// Resolves a batch ahead of a crawl, if the resolver can cache.
    fn prewarm<'a>(&'a self, _hosts: Vec<String>) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// A short name for reports ("crawldns", "getaddrinfo").
    fn name(&self) -> &'static str;
}

impl HostResolver for crawldns::Resolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Arc<[IpAddr]>, DnsFailure>> {
        Box::pin(async move {
            self.lookup_ip(host)
                .await
                .map(|found| found.addrs)
                .map_err(|err| DnsFailure {
                    kind: err.kind(),
                    message: err.to_string(),
                })
        })
    }

    fn prewarm<'a>(&'a self, hosts: Vec<String>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let report =
                crawldns::Resolver::prewarm(self, hosts, crawldns::PrewarmOptions::default()).await;
            tracing::debug!(?report, "prewarm");
        })
    }

    fn name(&self) -> &'static str {
        "crawldns"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dns_failure_is_an_error_that_reads_well() {
        let failure = DnsFailure {
            kind: ErrorKind::NxDomain,
            message: "nope.crawl.test: name does not exist".into(),
        };
        assert_eq!(
            failure.to_string(),
            "nope.crawl.test: name does not exist (nxdomain)"
        );
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(failure.clone());
        assert!(boxed.source().is_none());
        assert_eq!(boxed.to_string(), failure.to_string());
    }
}
