//! A test PKI, generated in the test with `rcgen`: certificate authorities
//! and the server and client certificates they issue, written as PEM files
//! into a scratch directory (hookd reads its TLS material from files), and
//! the rustls server configurations of TLS test servers.

use std::{path::PathBuf, sync::Arc};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use rustls::{RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::Scratch;

/// A certificate authority and the directory its files go to.
pub struct Ca {
    name: String,
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    /// The CA certificate, PEM.
    pub cert_file: PathBuf,
    dir: Arc<Scratch>,
}

/// A certificate and its key, issued by a [`Ca`], in memory and on disk.
pub struct Issued {
    /// The certificate (DER).
    pub cert: CertificateDer<'static>,
    key: Vec<u8>,
    /// The certificate, PEM.
    pub cert_file: PathBuf,
    /// Its private key, PEM (PKCS#8).
    pub key_file: PathBuf,
}

/// How long an issued certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From 2000 to 4000.
    Current,
    /// In 2000 only: long expired.
    Expired,
}

impl Ca {
    /// A new CA named `name`, its files in a scratch directory of its own.
    pub fn new(name: &str) -> Self {
        Self::in_dir(name, Arc::new(Scratch::new()))
    }

    /// A new CA named `name` whose files go to `dir` (shared with another CA).
    pub fn in_dir(name: &str, dir: Arc<Scratch>) -> Self {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("a self-signed CA");
        let cert_file = dir.path().join(format!("{name}-ca.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("write the CA certificate");
        Self {
            name: name.to_owned(),
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
            cert_file,
            dir,
        }
    }

    /// A server certificate for `names` (host names or IP addresses).
    pub fn server(&self, file: &str, names: &[&str], validity: Validity) -> Issued {
        self.issue(file, names, ExtendedKeyUsagePurpose::ServerAuth, validity)
    }

    /// A client certificate named `name`.
    pub fn client(&self, file: &str, name: &str) -> Issued {
        self.issue(
            file,
            &[name],
            ExtendedKeyUsagePurpose::ClientAuth,
            Validity::Current,
        )
    }

    /// A root store holding this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone()).expect("a valid CA certificate");
        roots
    }

    fn issue(
        &self,
        file: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
        validity: Validity,
    ) -> Issued {
        let key = KeyPair::generate().expect("a key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{file} by {}", self.name));
        params.extended_key_usages = vec![usage];
        let (from, until) = match validity {
            Validity::Current => (date_time_ymd(2000, 1, 1), date_time_ymd(4000, 1, 1)),
            Validity::Expired => (date_time_ymd(2000, 1, 1), date_time_ymd(2000, 12, 31)),
        };
        params.not_before = from;
        params.not_after = until;
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("an issued certificate");
        let cert_file = self.dir.path().join(format!("{file}.pem"));
        let key_file = self.dir.path().join(format!("{file}-key.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("write the certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("write the key");
        Issued {
            cert: cert.der().clone(),
            key: key.serialize_der(),
            cert_file,
            key_file,
        }
    }
}

impl Issued {
    /// The private key, for a rustls configuration.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }

    /// A TLS server configuration presenting this certificate; with
    /// `clients`, every client must present a certificate that CA issued.
    pub fn server_config(&self, clients: Option<&Ca>) -> ServerConfig {
        self.server_config_of(clients, rustls::DEFAULT_VERSIONS)
    }

    /// Like [`Issued::server_config`], speaking TLS 1.2 only: a refused
    /// client certificate then fails the handshake itself, where under TLS
    /// 1.3 the client may finish first and learn of it only as the
    /// connection closes.
    pub fn server_config_tls12(&self, clients: Option<&Ca>) -> ServerConfig {
        self.server_config_of(clients, &[&rustls::version::TLS12])
    }

    fn server_config_of(
        &self,
        clients: Option<&Ca>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .expect("supported protocol versions");
        let builder = match clients {
            Some(ca) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider)
                    .build()
                    .expect("a client verifier"),
            ),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(vec![self.cert.clone()], self.private_key())
            .expect("a matching key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }
}
