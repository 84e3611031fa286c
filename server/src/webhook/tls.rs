//! HTTPS to webhooks: the rustls client configuration of one endpoint.
//!
//! hookd builds it itself, on the `ring` provider, and hands it to reqwest
//! (`tls_backend_preconfigured`), so no process-wide provider is needed and
//! no aws-lc-rs is built. Per webhook (the keys of its `[[webhooks]]` table):
//!
//! - `ca_file`: PEM certificates the endpoint's chain must end in; without
//!   it, the system's CA certificates;
//! - `client_cert_file` + `client_key_file`: a PEM chain and key offered to an
//!   endpoint that asks for a client certificate (mTLS);
//! - `verify_peer` (default true): `false` accepts any server certificate
//!   and host name — for a test endpoint only; the channel is still
//!   encrypted but anyone on the path can read it.
//!
//! Peer and host name verification are rustls' (webpki): a chain to an
//! unrelated CA, an expired certificate, or one for another name fails the
//! handshake, before any request is sent. Only HTTP/1.1 is offered (ALPN), as
//! for `http://` endpoints: one request per pooled connection.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};

use crate::config::WebhookConfig;

/// Why an endpoint's TLS settings cannot be used; the message names the key
/// and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{key} {}: {message}", path.display())]
    File {
        /// The configuration key, e.g. `ca_file`.
        key: &'static str,
        /// The file it names.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Only one of `client_cert_file` and `client_key_file` is set.
    #[error("client_cert_file and client_key_file must be set together")]
    HalfClientIdentity,
    /// No CA file was given and the system has no CA certificates.
    #[error("no system CA certificates were found for an https:// endpoint; set ca_file")]
    NoSystemRoots,
    /// rustls refused the settings (e.g. a key that does not match its certificate).
    #[error("TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
    /// The verifier could not be built from the CA certificates.
    #[error("ca_file: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// The `ring` provider every TLS configuration of hookd uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS client configuration of `webhook`'s endpoint. For an `http://`
/// endpoint it is never used for a handshake (redirects are not followed),
/// and refuses every server certificate should it be.
pub fn client_config(webhook: &WebhookConfig) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let https = webhook.endpoint.starts_with("https://");
    let verifier: Arc<dyn ServerCertVerifier> = if !https {
        Arc::new(Unverified {
            provider: provider.clone(),
            accept: false,
        })
    } else if !webhook.verify_peer {
        Arc::new(Unverified {
            provider: provider.clone(),
            accept: true,
        })
    } else {
        let roots = match &webhook.ca_file {
            Some(path) => Arc::new(roots_from(path, "ca_file")?),
            None => system_roots()?,
        };
        WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build()?
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&webhook.client_cert_file, &webhook.client_key_file) {
        (Some(cert), Some(key)) if https => builder.with_client_auth_cert(
            certs(cert, "client_cert_file")?,
            private_key(key, "client_key_file")?,
        )?,
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) | (None, Some(_)) => return Err(TlsError::HalfClientIdentity),
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The PEM certificates in `path` (`key` names its configuration key).
pub fn certs(path: &Path, key: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |message: String| TlsError::File {
        key,
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// The PEM private key in `path` (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path, key: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        key,
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// A root store of the PEM certificates in `path`.
pub fn roots_from(path: &Path, key: &'static str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(path, key)? {
        roots.add(cert).map_err(|e| TlsError::File {
            key,
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// The system's CA certificates, read once per process.
fn system_roots() -> Result<Arc<RootCertStore>, TlsError> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates are skipped; none at all is an
        // error below, naming the key that fixes it.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        Arc::new(roots)
    });
    if roots.is_empty() {
        return Err(TlsError::NoSystemRoots);
    }
    Ok(roots.clone())
}

/// A verifier that checks no certificate: it accepts every one
/// (`verify_peer = false`) or refuses every one (`http://` endpoints, which
/// never do a handshake). Handshake signatures are still checked, so the
/// peer holds the key of the certificate it sent.
#[derive(Debug)]
struct Unverified {
    provider: Arc<CryptoProvider>,
    accept: bool,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accept {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "TLS on an http:// endpoint's client".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
