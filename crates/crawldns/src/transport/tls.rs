//! The TLS client of DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484):
//! rustls with the aws-lc-rs provider, certificate verification always on
//! (the webpki roots, plus any CA certificates the user adds), the server's
//! name for SNI and verification, and TLS session resumption (an in-memory
//! ticket cache shared by every connection made from one [`TlsClient`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::pipeline::Dial;
use super::tcp::connect_tcp;
use super::StreamError;

/// The ALPN protocol offered for DNS over TLS.
pub const ALPN_DOT: &[u8] = b"dot";

/// The ALPN protocol required for DNS over HTTPS (HTTP/2).
pub const ALPN_H2: &[u8] = b"h2";

/// Whom to trust and which name to check.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// The server's name, sent as SNI and checked against its certificate;
    /// an IP address literal is checked against the certificate's IP
    /// addresses (and sends no SNI).
    pub name: String,
    /// CA certificates (PEM) trusted in addition to the webpki roots.
    pub extra_ca_pem: Vec<u8>,
    /// Whether to trust the webpki (Mozilla) roots. On by default.
    pub webpki_roots: bool,
}

impl TlsOptions {
    /// Verify `name` against the webpki roots.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            extra_ca_pem: Vec::new(),
            webpki_roots: true,
        }
    }

    /// Also trusts the CA certificates in `pem`.
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Self {
        self.extra_ca_pem.extend_from_slice(pem);
        self.extra_ca_pem.push(b'\n');
        self
    }
}

/// Why a TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The name is neither a DNS name nor an IP address.
    #[error("invalid TLS server name {0:?}")]
    Name(String),
    /// The extra CA certificates could not be read or used.
    #[error("cannot use the CA certificates: {0}")]
    Ca(String),
    /// rustls refused the configuration.
    #[error("cannot build the TLS configuration: {0}")]
    Config(String),
}

/// Makes TLS connections to one server name, resuming sessions.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A client verifying as `options` say and offering `alpn`.
    pub fn new(options: &TlsOptions, alpn: &[&[u8]]) -> Result<Self, TlsSetupError> {
        let name = ServerName::try_from(options.name.clone())
            .map_err(|_| TlsSetupError::Name(options.name.clone()))?;
        let mut roots = rustls::RootCertStore::empty();
        if options.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if !options.extra_ca_pem.is_empty() {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(&options.extra_ca_pem) {
                let cert = cert.map_err(|e| TlsSetupError::Ca(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsSetupError::Ca(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(TlsSetupError::Ca("no certificate in the PEM data".into()));
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // The default: an in-memory cache of session tickets, so that every
        // connection after the first to a server resumes (RFC 7858 §3.4).
        config.resumption = rustls::client::Resumption::default();
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// Runs the handshake on `tcp`.
    pub async fn handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, StreamError> {
        self.connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(classify)
    }

    /// Connects to `server` and runs the handshake.
    pub async fn connect(&self, server: SocketAddr) -> Result<TlsStream<TcpStream>, StreamError> {
        let tcp = connect_tcp(server).await?;
        self.handshake(tcp).await
    }
}

/// Sorts a failed handshake: a certificate that does not verify is a
/// [`StreamError::Verification`]; anything else an I/O error.
pub fn classify(err: io::Error) -> StreamError {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(
            e @ (rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::InvalidCertRevocationList(_)),
        ) => StreamError::Verification(e.to_string()),
        _ => StreamError::Transport(super::TransportError::Io(err)),
    }
}

/// Dials DNS-over-TLS connections for the pipelined pool.
#[derive(Debug, Clone)]
pub struct TlsDial {
    client: TlsClient,
}

impl TlsDial {
    /// Dials with `client` (made with ALPN [`ALPN_DOT`], see [`TlsDial::new`]).
    pub fn from_client(client: TlsClient) -> Self {
        Self { client }
    }

    /// A dialer verifying as `options` say, offering ALPN `dot`.
    pub fn new(options: &TlsOptions) -> Result<Self, TlsSetupError> {
        Ok(Self::from_client(TlsClient::new(options, &[ALPN_DOT])?))
    }
}

impl Dial for TlsDial {
    type Stream = TlsStream<TcpStream>;

    async fn dial(&self, server: SocketAddr) -> Result<Self::Stream, StreamError> {
        self.client.connect(server).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ca_files_are_checked() {
        assert!(TlsClient::new(&TlsOptions::new("dns.example"), &[]).is_ok());
        assert!(TlsClient::new(&TlsOptions::new("127.0.0.1"), &[]).is_ok());
        assert!(matches!(
            TlsClient::new(&TlsOptions::new("bad name!"), &[]),
            Err(TlsSetupError::Name(_))
        ));
        let junk = TlsOptions::new("dns.example").with_ca_pem(b"not a certificate");
        assert!(matches!(
            TlsClient::new(&junk, &[]),
            Err(TlsSetupError::Ca(_))
        ));
    }

    #[test]
    fn only_certificate_failures_are_verification_errors() {
        let bad = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(matches!(classify(bad), StreamError::Verification(_)));
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(
            classify(reset),
            StreamError::Transport(super::super::TransportError::Io(_))
        ));
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
        );
        assert!(matches!(classify(alert), StreamError::Transport(_)));
    }
}
