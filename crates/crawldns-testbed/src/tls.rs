//! A throw-away certificate authority for HTTPS on the host farm.
//!
//! [`TestCa::generate`] makes, in memory and fresh every time:
//!
//! - a self-signed CA certificate (ECDSA P-256), which clients add to their
//!   trust store ([`TestCa::ca_pem`], [`TestCa::ca_der`]);
//! - a leaf certificate signed by that CA, for the DNS names
//!   [`LEAF_DNS_NAMES`] (`*.crawl.test`, so every `h<N>.crawl.test`, plus
//!   `crawl.test` and `localhost`) and the IP address [`LEAF_IP`] (`127.0.0.1`);
//! - a [`rustls::ServerConfig`] serving that leaf (with the CA certificate as
//!   the rest of its chain), offering ALPN [`ALPN_HTTP11`] only.
//!
//! The leaf names no host by IP address: `https://127.1.0.4:<port>/` does not
//! verify against it. Reach a host by name, resolved by the testbed DNS server
//! or pinned (`curl --resolve h3.crawl.test:PORT:127.1.0.4`).
//!
//! The crypto provider is rustls' aws-lc-rs one, passed explicitly, so nothing
//! needs a process-wide default provider to be installed.
//!
//! ```no_run
//! # fn demo() -> Result<(), crawldns_testbed::tls::TlsError> {
//! let ca = crawldns_testbed::tls::TestCa::generate()?;
//! std::fs::write("/tmp/crawl-test-ca.pem", ca.ca_pem()).unwrap();
//! let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config());
//! # let _ = acceptor; Ok(()) }
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// The DNS names the leaf certificate is valid for.
pub const LEAF_DNS_NAMES: [&str; 3] = ["*.crawl.test", "crawl.test", "localhost"];

/// The IP address the leaf certificate is valid for.
pub const LEAF_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The one ALPN protocol the farm's TLS listeners offer.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Common name of the CA certificate, before a random suffix that tells
/// the CAs of different farms apart (clients look issuers up by name).
pub const CA_COMMON_NAME_PREFIX: &str = "crawldns testbed CA";

/// How long before generation the certificates are valid (clock skew).
const VALID_BEFORE: Duration = Duration::days(1);

/// How long after generation the certificates stay valid.
const VALID_AFTER: Duration = Duration::days(365);

/// Why a [`TestCa`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating a key or certificate failed.
    #[error("cannot generate the test CA or leaf certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the generated certificate or key.
    #[error("cannot build the TLS server configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A freshly generated CA, a leaf certificate it signed for `*.crawl.test`,
/// and a rustls server configuration serving that leaf.
///
/// The private keys live only in memory (the CA's is dropped once the leaf
/// is signed), and every [`TestCa::generate`] makes new ones.
#[derive(Clone)]
pub struct TestCa {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    leaf_der: CertificateDer<'static>,
    leaf_pem: String,
    server_config: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("ca_der_len", &self.ca_der.len())
            .field("leaf_der_len", &self.leaf_der.len())
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// Generates a CA, a leaf certificate signed by it, and the server
    /// configuration. Takes a few milliseconds.
    pub fn generate() -> Result<TestCa, TlsError> {
        let now = OffsetDateTime::now_utc();
        let not_before = now - VALID_BEFORE;
        let not_after = now + VALID_AFTER;

        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        // A CA's subject must be its own: a client that trusts another
        // farm's CA would otherwise take that one for the issuer and report
        // a bad signature instead of an unknown issuer.
        let tag: u64 = rand::random();
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("{CA_COMMON_NAME_PREFIX} {tag:016x}"),
        );
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "crawldns testbed");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = not_before;
        ca_params.not_after = not_after;
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut leaf_params = CertificateParams::default();
        leaf_params.distinguished_name = rcgen::DistinguishedName::new();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, LEAF_DNS_NAMES[0]);
        leaf_params.subject_alt_names = LEAF_DNS_NAMES
            .iter()
            .map(|name| Ok(SanType::DnsName((*name).try_into()?)))
            .chain([Ok(SanType::IpAddress(IpAddr::V4(LEAF_IP)))])
            .collect::<Result<_, rcgen::Error>>()?;
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        // An ECDSA key signs; it never enciphers, so no KeyEncipherment.
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.not_before = not_before;
        leaf_params.not_after = not_after;
        let leaf_key = KeyPair::generate()?;
        let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;

        let ca_der = ca_cert.der().clone();
        let leaf_der = leaf_cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let server_config = server_config(vec![leaf_der.clone(), ca_der.clone()], key)?;

        Ok(TestCa {
            ca_pem: ca_cert.pem(),
            ca_der,
            leaf_pem: leaf_cert.pem(),
            leaf_der,
            server_config,
        })
    }

    /// The CA certificate in PEM, for a client's trust store (`curl --cacert`,
    /// `reqwest::Certificate::from_pem`, ...).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA certificate in DER (for `rustls::RootCertStore::add`).
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// The leaf certificate in PEM.
    pub fn leaf_pem(&self) -> String {
        self.leaf_pem.clone()
    }

    /// The leaf certificate in DER.
    pub fn leaf_der(&self) -> CertificateDer<'static> {
        self.leaf_der.clone()
    }

    /// The server configuration: the leaf and the CA as its chain, no client
    /// authentication, TLS 1.2 and 1.3, ALPN `http/1.1`, the aws-lc-rs
    /// provider.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.server_config)
    }
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_distinct_cas_with_pem_and_alpn() {
        let a = TestCa::generate().unwrap();
        let b = TestCa::generate().unwrap();
        assert_ne!(a.ca_der(), b.ca_der());
        let pem = a.ca_pem();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert!(
            pem.trim_end().ends_with("-----END CERTIFICATE-----"),
            "{pem}"
        );
        assert!(a.leaf_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(a.server_config().alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(!format!("{a:?}").contains("PRIVATE"));
    }
}
