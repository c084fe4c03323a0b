//! ECDSA P-256 keys in the PEM forms cosign reads and writes: private keys as PKCS#8
//! (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or cosign's encrypted PEM ([`super::encrypted`]);
//! public keys as PKIX (`PUBLIC KEY`). Signatures are ECDSA over SHA-256 of the message,
//! ASN.1 DER (Go's `ecdsa.SignASN1`/`VerifyASN1`).

use super::encrypted;
use crate::secret::Secret;
use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _, LineEnding};
use std::fmt;
use std::path::Path;

/// cosign's PEM labels for its encrypted private keys (`pkg/cosign/keys.go`).
const ENCRYPTED_LABELS: [&str; 2] = [
    "ENCRYPTED SIGSTORE PRIVATE KEY",
    "ENCRYPTED COSIGN PRIVATE KEY",
];

/// The largest key file read.
const MAX_KEY_FILE: u64 = 64 << 10;

/// A private signing key. Its `Debug` shows nothing of it.
pub struct PrivateKey(SigningKey);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl PrivateKey {
    /// The key in PEM text `pem`; `password` decrypts cosign's encrypted form (none is the
    /// empty password, as cosign reads it).
    pub fn from_pem(pem: &str, password: Option<&Secret>) -> anyhow::Result<PrivateKey> {
        let (label, der) =
            pem_block(pem).context("no PEM block (-----BEGIN ...-----) in the key")?;
        let key = match label.as_str() {
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der).map_err(|e| {
                anyhow!("not a PKCS#8 ECDSA P-256 private key ({e}); only P-256 keys sign")
            })?,
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der)
                .map(SigningKey::from)
                .map_err(|e| anyhow!("not a SEC1 P-256 private key ({e}); only P-256 keys sign"))?,
            label if ENCRYPTED_LABELS.contains(&label) => {
                let empty = Secret::default();
                let plain = encrypted::decrypt(&der, password.unwrap_or(&empty))
                    .with_context(|| format!("decrypting the {label}"))?;
                SigningKey::from_pkcs8_der(&plain).map_err(|e| {
                    anyhow!("the decrypted key is not an ECDSA P-256 PKCS#8 key ({e}); only P-256 keys sign")
                })?
            }
            other => bail!(
                "a PEM block {other:?} is not a private key this resource reads (PRIVATE KEY, \
                 EC PRIVATE KEY, ENCRYPTED SIGSTORE PRIVATE KEY, ENCRYPTED COSIGN PRIVATE KEY)"
            ),
        };
        Ok(PrivateKey(key))
    }

    /// `params.sign.key`: PEM text itself, or the path of a PEM file relative to `dir`.
    pub fn load(key: &Secret, password: Option<&Secret>, dir: &Path) -> anyhow::Result<PrivateKey> {
        let text = key.expose();
        if text.contains("-----BEGIN") {
            return PrivateKey::from_pem(text, password).context("params.sign.key");
        }
        let path = dir.join(text.trim());
        // The value is not shown when it names no file: it may be key material pasted
        // without its PEM lines.
        let size = std::fs::metadata(&path)
            .map_err(|e| {
                anyhow!(
                    "params.sign.key is neither PEM text (no -----BEGIN line) nor a file under \
                     the sources directory ({})",
                    e.kind()
                )
            })?
            .len();
        if size > MAX_KEY_FILE {
            bail!(
                "params.sign.key: {} is {size} bytes, not a key",
                path.display()
            );
        }
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("params.sign.key: reading {}", path.display()))?;
        PrivateKey::from_pem(&pem, password)
            .with_context(|| format!("params.sign.key ({})", path.display()))
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// ECDSA P-256 over SHA-256 of `message`: the ASN.1 DER signature (deterministic, RFC 6979).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.0.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

/// A public key that verifies signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The key in PEM text (`-----BEGIN PUBLIC KEY-----`, PKIX).
    pub fn from_pem(pem: &str) -> anyhow::Result<PublicKey> {
        let (label, der) = pem_block(pem).context("no PEM block (-----BEGIN PUBLIC KEY-----)")?;
        if label != "PUBLIC KEY" {
            bail!("a PEM block {label:?}, not a PUBLIC KEY");
        }
        VerifyingKey::from_public_key_der(&der)
            .map(PublicKey)
            .map_err(|e| anyhow!("not an ECDSA P-256 public key ({e}); only P-256 keys verify"))
    }

    /// The key as PEM (`cosign.pub`'s form).
    pub fn to_pem(&self) -> String {
        self.0.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// Whether `signature` (ASN.1 DER) is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_der(signature).is_ok_and(|sig| self.0.verify(message, &sig).is_ok())
    }
}

/// The label and bytes of the first PEM block in `text`, read as leniently as Go's
/// `pem.Decode`: any line length, surrounding text and indentation ignored, header lines
/// (`Key: value`) skipped.
pub fn pem_block(text: &str) -> Option<(String, Vec<u8>)> {
    let mut lines = text.lines().map(str::trim);
    let label = lines.find_map(|line| {
        line.strip_prefix("-----BEGIN ")?
            .strip_suffix("-----")
            .map(str::to_string)
    })?;
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines.by_ref() {
        if line == end {
            return base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .ok()
                .map(|bytes| (label, bytes));
        }
        if !line.contains(':') {
            body.push_str(line);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cosign's `pemsigstorekey` (pkg/cosign/keys_test.go), password `hello`.
    pub const COSIGN_SIGSTORE_KEY: &str = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
";

    #[test]
    fn reads_cosigns_encrypted_test_key() {
        let key = PrivateKey::from_pem(COSIGN_SIGSTORE_KEY, Some(&Secret::new("hello"))).unwrap();
        let signature = key.sign(b"payload");
        let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
        assert!(public.verifies(b"payload", &signature));
        assert!(!public.verifies(b"payloaD", &signature));
        let err =
            PrivateKey::from_pem(COSIGN_SIGSTORE_KEY, Some(&Secret::new("nope"))).unwrap_err();
        let text = format!("{err:#} {err:?}");
        assert!(text.contains("decryption failed"), "{text}");
        assert!(!text.contains("nope"), "{text}");
    }

    #[test]
    fn reads_pkcs8_and_sec1_and_their_encrypted_form() {
        use p256::pkcs8::EncodePrivateKey as _;
        let secret = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
        let signing = SigningKey::from(&secret);
        let pkcs8 = signing.to_pkcs8_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_bytes());
        let pem8 = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
        let sec1 = secret.to_sec1_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&sec1);
        // Indented, as in a YAML block: still read.
        let pem1 =
            format!("  -----BEGIN EC PRIVATE KEY-----\n  {b64}\n  -----END EC PRIVATE KEY-----\n");
        let json = encrypted::encrypt(pkcs8.as_bytes(), &Secret::new("pw"), &[1; 32], &[2; 24], 15)
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&json);
        let pemx = format!("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n{b64}\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n");
        let public = PublicKey(*signing.verifying_key());
        for (pem, password) in [(pem8, None), (pem1, None), (pemx, Some(Secret::new("pw")))] {
            let key = PrivateKey::from_pem(&pem, password.as_ref()).unwrap();
            assert_eq!(key.public_key(), public);
            assert!(public.verifies(b"m", &key.sign(b"m")));
        }
    }

    #[test]
    fn a_value_that_is_no_file_is_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            PrivateKey::load(&Secret::new("MHcCAQEEIKEYMATERIAL"), None, dir.path()).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("neither PEM text"), "{text}");
        assert!(!text.contains("KEYMATERIAL"), "{text}");
        std::fs::write(dir.path().join("k.pem"), COSIGN_SIGSTORE_KEY).unwrap();
        let password = Secret::new("hello");
        PrivateKey::load(&Secret::new("k.pem"), Some(&password), dir.path()).unwrap();
    }

    #[test]
    fn refuses_other_keys() {
        assert!(PublicKey::from_pem("no pem").is_err());
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(PublicKey::from_pem(pem).is_err());
        assert!(PrivateKey::from_pem(pem, None).is_err());
        let debug = format!(
            "{:?}",
            PrivateKey::from_pem(COSIGN_SIGSTORE_KEY, Some(&Secret::new("hello"))).unwrap()
        );
        assert_eq!(debug, "PrivateKey(<redacted>)");
    }
}
