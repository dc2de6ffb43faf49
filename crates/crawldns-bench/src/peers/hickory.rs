//! hickory-resolver: tokio runtime, one nameserver (UDP, or for the
//! stream-transport benchmark TCP, DNS over TLS or DNS over HTTPS), cache
//! size 0.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::upstream::{Protocol, Upstream};
use super::{Peer, PeerSetup};

/// Queries in flight per TCP, TLS or HTTP/2 connection of the stream peers
/// (hickory's default is 32; beyond it a query fails as busy, and W1 and W2
/// keep 500 in flight, so the default failed about half of a W2 burst with
/// "no connections available"). crawldns carries up to 4 × 128.
pub const STREAM_MAX_ACTIVE_REQUESTS: usize = 512;

/// hickory-resolver configured like the other peers.
pub struct HickoryPeer {
    resolver: TokioResolver,
}

impl std::fmt::Debug for HickoryPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HickoryPeer").finish_non_exhaustive()
    }
}

impl HickoryPeer {
    /// Builds the resolver. Must be called inside a tokio runtime.
    pub fn new(setup: PeerSetup) -> Result<Self> {
        Self::with_cache(setup, 0)
    }

    /// The same with a cache of `cache_size` entries (W4, Herd).
    pub fn with_cache(setup: PeerSetup, cache_size: u64) -> Result<Self> {
        let mut server = NameServerConfig::udp(setup.server.ip());
        for connection in &mut server.connections {
            connection.port = setup.server.port();
        }
        Self::build(server, options(setup, cache_size), None)
    }

    /// Builds the resolver with one nameserver reached over `upstream`'s
    /// transport, trusting its CA, no cache; `setup.server` is not used.
    /// Must be called inside a tokio runtime.
    pub fn over(setup: PeerSetup, upstream: &Upstream) -> Result<Self> {
        let ip = upstream.addr.ip();
        let name: Arc<str> = Arc::from(upstream.tls_name.as_str());
        let mut server = match upstream.protocol {
            Protocol::Udp => NameServerConfig::udp(ip),
            Protocol::Tcp => NameServerConfig::tcp(ip),
            Protocol::Tls => NameServerConfig::tls(ip, name),
            Protocol::Https => {
                NameServerConfig::https(ip, name, Some(Arc::from(upstream.doh_path.as_str())))
            }
        };
        for connection in &mut server.connections {
            connection.port = upstream.addr.port();
        }
        let tls = if upstream.protocol.is_encrypted() {
            Some(trusting(&upstream.ca_file)?)
        } else {
            None
        };
        let mut options = options(setup, 0);
        options.max_active_requests = STREAM_MAX_ACTIVE_REQUESTS;
        Self::build(server, options, tls)
    }

    fn build(
        server: NameServerConfig,
        options: ResolverOpts,
        tls: Option<rustls::ClientConfig>,
    ) -> Result<Self> {
        let config = ResolverConfig::from_name_servers(vec![server]);
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(options);
        if let Some(tls) = tls {
            builder = builder.with_tls_config(tls);
        }
        let resolver = builder.build().context("building the hickory resolver")?;
        Ok(Self { resolver })
    }
}

/// The options every hickory peer shares, from `setup`.
fn options(setup: PeerSetup, cache_size: u64) -> ResolverOpts {
    let mut options = ResolverOpts::default();
    options.timeout = setup.timeout;
    options.attempts = setup.attempts;
    options.cache_size = cache_size;
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    options.use_hosts_file = ResolveHosts::Never;
    options.num_concurrent_reqs = 1;
    options
}

/// A rustls client configuration (aws-lc-rs, like crawldns's) that trusts
/// the CA certificates of the PEM file `ca_file` and nothing else.
fn trusting(ca_file: &Path) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(ca_file)
        .with_context(|| format!("reading {}", ca_file.display()))?;
    for certificate in certificates {
        let certificate =
            certificate.with_context(|| format!("a certificate in {}", ca_file.display()))?;
        roots
            .add(certificate)
            .with_context(|| format!("trusting a certificate of {}", ca_file.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Peer for HickoryPeer {
    async fn lookup_a(&self, name: &str) -> Result<Vec<IpAddr>> {
        let lookup = self.resolver.lookup(name, RecordType::A).await?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect())
    }

    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>> {
        let lookup = self.resolver.lookup_ip(name).await?;
        Ok(lookup.iter().collect())
    }
}
