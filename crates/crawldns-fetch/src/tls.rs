//! The TLS client configuration: the web PKI roots, plus extra CAs the user
//! trusts (a crawl of an intranet, or the testbed's generated CA).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// Errors building the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// The extra CA text held no usable certificate.
    #[error("no usable CA certificate in the PEM given: {0}")]
    BadPem(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A client configuration trusting the web PKI roots and `extra_ca_pem`
/// (zero or more PEM certificates), offering HTTP/2 and HTTP/1.1 by ALPN.
pub fn client_config(extra_ca_pem: &[String]) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for pem in extra_ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| TlsConfigError::BadPem(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| TlsConfigError::BadPem(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsConfigError::BadPem("no CERTIFICATE block".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_pem_without_certificates() {
        assert!(client_config(&[]).is_ok());
        assert!(matches!(
            client_config(&["not a pem".into()]),
            Err(TlsConfigError::BadPem(_))
        ));
    }
}
