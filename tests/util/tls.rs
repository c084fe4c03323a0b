//! A throw-away certificate authority for tests: server certificates with IP SANs for
//! the registries we start, and client certificates for mutual TLS. Everything is made
//! with rcgen in memory; nothing is read from or written to the system trust store.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A test CA. Each `Ca::new()` is a fresh key and self-signed certificate.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    /// Makes a new CA named "image-resource test CA".
    pub fn new() -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "image-resource test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("generating the test CA key");
        let issuer = CertifiedIssuer::self_signed(params, key)
            .expect("self-signing the test CA certificate");
        Ca { issuer }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (IP addresses become IP SANs, anything else a DNS
    /// SAN), signed by this CA. Returns `(cert_pem, key_pem)`; the key is PKCS#8.
    pub fn server_cert(&self, names: &[&str]) -> (String, String) {
        let sans: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(sans)
            .unwrap_or_else(|err| panic!("bad server certificate names {names:?}: {err}"));
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate with common name `name`, for mutual TLS.
    /// Returns `(cert_pem, key_pem)`; the key is PKCS#8.
    pub fn client_cert(&self, name: &str) -> (String, String) {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    /// An X.509 **v1** client certificate (no extensions), as `openssl x509 -req` makes one
    /// without an extension file, signed by this CA with the openssl CLI. Returns
    /// `(cert_pem, key_pem)`.
    pub fn client_cert_v1(&self, name: &str) -> (String, String) {
        let dir = tempfile::tempdir().expect("temp dir for openssl");
        let path = |file: &str| dir.path().join(file);
        write_file(&path("ca.crt"), &self.cert_pem());
        write_file(&path("ca.key"), &self.issuer.key().serialize_pem());
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("running openssl (apt-get install openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "client.key",
        ]);
        let subject = format!("/CN={name}");
        openssl(&[
            "req",
            "-new",
            "-key",
            "client.key",
            "-subj",
            &subject,
            "-out",
            "client.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "client.crt",
        ]);
        let read = |file: &str| fs::read_to_string(path(file)).expect("reading openssl output");
        (read("client.crt"), read("client.key"))
    }

    /// Writes the CA certificate to `path` (PEM).
    pub fn write_cert(&self, path: &Path) {
        write_file(path, &self.cert_pem());
    }

    fn sign(&self, params: CertificateParams) -> (String, String) {
        let key = KeyPair::generate().expect("generating a certificate key");
        let issuer: &rcgen::Issuer<'static, KeyPair> = &self.issuer;
        let cert = params
            .signed_by(&key, issuer)
            .expect("signing a certificate with the test CA");
        (cert.pem(), key.serialize_pem())
    }
}

/// Writes `cert_pem` and `key_pem` as `<dir>/<name>.crt` and `<dir>/<name>.key`.
/// Returns both paths.
pub fn write_pair(dir: &Path, name: &str, pair: &(String, String)) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    write_file(&cert, &pair.0);
    write_file(&key, &pair.1);
    (cert, key)
}

/// Writes `contents` to `path`, creating parent directories; panics naming the path.
pub fn write_file(path: &Path, contents: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .unwrap_or_else(|err| panic!("creating {}: {err}", parent.display()));
    }
    fs::write(path, contents).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}
