//! A nameserver reached over a chosen transport (UDP, TCP, DNS over TLS,
//! DNS over HTTPS), with what the encrypted ones need: the name the
//! certificate must be valid for, the DoH path, and the test CA to trust.
//! The stream-transport benchmark builds crawldns and hickory-resolver
//! peers from one of these.

use std::net::SocketAddr;
use std::path::PathBuf;

pub use crawldns::Protocol;

/// One nameserver and the transport to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The transport.
    pub protocol: Protocol,
    /// Where the server listens for it.
    pub addr: SocketAddr,
    /// TLS, HTTPS: the name checked against the server's certificate.
    pub tls_name: String,
    /// HTTPS: the URL path (e.g. `/dns-query`).
    pub doh_path: String,
    /// TLS, HTTPS: a PEM file of the CA certificates to trust.
    pub ca_file: PathBuf,
}
