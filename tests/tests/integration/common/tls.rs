//! A certificate authority for the `pulsar+ssl://` tests: it writes its own certificate and the
//! server and client certificates it issues as PEM files, as an operator's PKI would.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    name: String,
    dir: PathBuf,
    /// The authority's certificate: what brokers and clients trust.
    pub cert_file: String,
}

/// A certificate and its private key, as files.
pub struct Issued {
    pub cert_file: String,
    pub key_file: String,
}

impl TestCa {
    /// A new authority named `name`, writing its files into `dir`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA certificate");
        let cert_file = dir.join(format!("{name}.ca.pem"));
        std::fs::write(&cert_file, issuer.pem()).expect("write the CA certificate");
        TestCa {
            issuer,
            name: name.to_string(),
            dir: dir.to_path_buf(),
            cert_file: cert_file.to_string_lossy().into_owned(),
        }
    }

    /// A broker's certificate for `hosts` (DNS names or IP addresses).
    pub fn server(&self, hosts: &[&str]) -> Issued {
        self.issue("broker", hosts, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client's certificate whose common name is `role`.
    pub fn client(&self, role: &str) -> Issued {
        self.issue(role, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, common_name: &str, hosts: &[&str], usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>()).expect("parameters");
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        let file = |kind: &str| self.dir.join(format!("{}-{common_name}.{kind}.pem", self.name));
        let (cert_file, key_file) = (file("cert"), file("key"));
        std::fs::write(&cert_file, cert.pem()).expect("write the certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("write the key");
        Issued {
            cert_file: cert_file.to_string_lossy().into_owned(),
            key_file: key_file.to_string_lossy().into_owned(),
        }
    }
}
