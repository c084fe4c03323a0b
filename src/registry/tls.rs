//! The rustls client configuration of one registry: which roots it trusts, whether it
//! verifies at all (`insecure`), and the client certificate it presents.
//!
//! Why our own configuration rather than reqwest's `identity`: rustls checks that a client
//! certificate matches its key by parsing the certificate with webpki, which refuses X.509
//! v1 certificates (`UnsupportedCertVersion`). `openssl x509 -req` without an extension file
//! makes exactly such certificates, and Go (the registry, docker, skopeo) accepts them. We
//! only present our certificate, never verify it, so the chain is sent as given and the
//! server decides; a key that does not belong to the certificate fails the handshake, and
//! the error says to check `client_certs`.

use super::error::Error;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// A client certificate chain and its private key, parsed from PEM.
pub struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientIdentity {{ certificates: {}, key: <redacted> }}",
            self.chain.len()
        )
    }
}

impl ClientIdentity {
    /// Parses `cert_pem` (the certificate, then any intermediates) and `key_pem` (PKCS#8,
    /// PKCS#1 or SEC1). `name` (`client_certs[0] (domain x)`) goes into errors; the key's
    /// text never does.
    pub fn from_pem(name: &str, cert_pem: &str, key_pem: &str) -> Result<ClientIdentity, Error> {
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Config(format!("{name}: `cert` is not PEM: {e}")))?;
        if chain.is_empty() {
            return Err(Error::Config(format!(
                "{name}: `cert` holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)"
            )));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| {
            Error::Config(format!(
                "{name}: `key` is not a usable PEM private key (PKCS#8, RSA or EC \
                 PRIVATE KEY)"
            ))
        })?;
        Ok(ClientIdentity { chain, key })
    }
}

/// Always presents the one configured certificate.
#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesClientCert for Present {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Accepts any server certificate (`insecure_registries` / `insecure`), still checking
/// that the handshake signatures are well formed.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client configuration for one registry: `roots` trusted (unless `insecure`), and
/// `identity` presented when given. ALPN offers HTTP/2 and HTTP/1.1.
pub fn client_config(
    host: &str,
    roots: &[CertificateDer<'static>],
    insecure: bool,
    identity: Option<ClientIdentity>,
) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS settings for registry {host}: {e}")))?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(Arc::clone(&provider))))
    } else {
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(roots.iter().cloned());
        builder.with_root_certificates(store)
    };
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let signing_key = provider
                .key_provider
                .load_private_key(identity.key)
                .map_err(|e| {
                    Error::Config(format!(
                        "client certificate for registry {host}: the key cannot sign: {e}"
                    ))
                })?;
            let certified = CertifiedKey::new(identity.chain, signing_key);
            builder.with_client_cert_resolver(Arc::new(Present(Arc::new(certified))))
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Every certificate in a PEM bundle (`CERTIFICATE` blocks; other blocks are skipped).
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_named_without_the_key() {
        let e = ClientIdentity::from_pem("client_certs[0] (domain r)", "nope", "secret-key")
            .map(|_| ())
            .map_err(|e| e.to_string());
        let e = e.err().unwrap_or_default();
        assert!(
            e.contains("client_certs[0] (domain r)") && e.contains("no PEM certificate"),
            "{e}"
        );
        assert!(!e.contains("secret-key"));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = ClientIdentity::from_pem("client_certs[1] (domain r)", cert, "secret-key")
            .map(|_| ())
            .map_err(|e| e.to_string());
        let e = e.err().unwrap_or_default();
        assert!(e.contains("`key` is not a usable PEM private key"), "{e}");
        assert!(!e.contains("secret-key"));
    }
}
