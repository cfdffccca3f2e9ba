//! `pulsar+ssl://`: the TLS listener's acceptor, built from PEM files when the broker starts (a
//! bad file stops the start with a message naming it), and the role a client certificate names.
//! Server authentication by default, as Pulsar's; with `tls_trust_certs_file` client
//! certificates signed by those authorities are verified (required or optional), and their
//! common name is the role of Pulsar's `tls` authentication method. rustls with the aws-lc-rs
//! provider, which the rest of the broker already builds.

use crate::BinaryConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How long a client may take over its TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn certificates(file: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what} `{file}`: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what} `{file}` holds no PEM certificate"));
    }
    Ok(certs)
}

/// The acceptor of the TLS listener `config` describes.
pub(crate) fn acceptor(config: &BinaryConfig) -> Result<TlsAcceptor, String> {
    let (cert_file, key_file) = (&config.tls_cert_file, &config.tls_key_file);
    let certs = certificates(cert_file, "binary.tls_cert_file")?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("binary.tls_key_file `{key_file}`: {e}"))?;
    let provider = Arc::new(aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if config.tls_trust_certs_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        let file = &config.tls_trust_certs_file;
        let mut roots = RootCertStore::empty();
        for cert in certificates(file, "binary.tls_trust_certs_file")? {
            roots.add(cert).map_err(|e| format!("binary.tls_trust_certs_file `{file}`: {e}"))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if config.tls_require_trusted_client_cert { verifier } else { verifier.allow_unauthenticated() };
        builder.with_client_cert_verifier(
            verifier.build().map_err(|e| format!("binary.tls_trust_certs_file `{file}`: {e}"))?,
        )
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("binary.tls_cert_file `{cert_file}` and binary.tls_key_file `{key_file}`: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The connector a proxying broker reaches the other brokers' TLS listeners with: their
/// certificates must be signed by an authority of `trust_file` and name the host of the URL
/// connected to. The proxy presents no certificate of its own (see `proxy::vouch_for_certificate`).
pub(crate) fn connector(trust_file: &str) -> Result<TlsConnector, String> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(trust_file, "binary.proxy_tls_trust_certs_file")? {
        roots.add(cert).map_err(|e| format!("binary.proxy_tls_trust_certs_file `{trust_file}`: {e}"))?;
    }
    let config = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The role a verified client certificate names: the first common name of its subject, as
/// Pulsar's TLS authentication provider reads it. `None` without a certificate (or without a
/// common name); rustls has verified any certificate it hands over against the trusted CAs.
pub(crate) fn client_role(chain: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let leaf = chain?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.trim().to_string();
    Some(cn).filter(|cn| !cn.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(cert: &str, key: &str) -> BinaryConfig {
        BinaryConfig { tls_cert_file: cert.into(), tls_key_file: key.into(), ..BinaryConfig::default() }
    }

    #[test]
    fn a_missing_or_empty_file_is_named_in_the_error() {
        let e = acceptor(&config("no/such/cert.pem", "no/such/key.pem")).err().expect("refused");
        assert!(e.contains("binary.tls_cert_file `no/such/cert.pem`"), "{e}");
        let dir = std::env::temp_dir().join(format!("magnetar-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = acceptor(&config(empty.to_str().unwrap(), "no/such/key.pem")).err().expect("refused");
        assert!(e.contains("holds no PEM certificate"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_certificate_names_no_role() {
        assert_eq!(client_role(None), None);
        assert_eq!(client_role(Some(&[])), None);
        assert_eq!(client_role(Some(&[CertificateDer::from(vec![1, 2, 3])])), None);
    }

    #[test]
    fn the_role_is_the_subject_common_name() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["client.example".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Example");
        params.distinguished_name.push(rcgen::DnType::CommonName, "app-orders");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(client_role(Some(&[cert.der().clone()])).as_deref(), Some("app-orders"));
    }
}
