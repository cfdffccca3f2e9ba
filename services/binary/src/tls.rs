//! `pulsar+ssl://`: the TLS listener's acceptor, built from PEM files when the broker starts (a
//! bad file stops the start with a message naming it). Server authentication only, as Pulsar's
//! default; rustls with the aws-lc-rs provider, which the rest of the broker already builds.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;

/// How long a client may take over its TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The acceptor for the certificate chain in `cert_file` and the private key in `key_file`.
pub(crate) fn acceptor(cert_file: &str, key_file: &str) -> Result<TlsAcceptor, String> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("binary.tls_cert_file `{cert_file}`: {e}"))?;
    if certs.is_empty() {
        return Err(format!("binary.tls_cert_file `{cert_file}` holds no PEM certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("binary.tls_key_file `{key_file}`: {e}"))?;
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("binary.tls_cert_file `{cert_file}` and binary.tls_key_file `{key_file}`: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_file_is_named_in_the_error() {
        let e = acceptor("no/such/cert.pem", "no/such/key.pem").err().expect("refused");
        assert!(e.contains("binary.tls_cert_file `no/such/cert.pem`"), "{e}");
        let dir = std::env::temp_dir().join(format!("magnetar-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = acceptor(empty.to_str().unwrap(), "no/such/key.pem").err().expect("refused");
        assert!(e.contains("holds no PEM certificate"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
