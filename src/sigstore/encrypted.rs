//! cosign's encrypted private keys: the PEM body of `ENCRYPTED SIGSTORE PRIVATE KEY` (or
//! `ENCRYPTED COSIGN PRIVATE KEY`) is go-securesystemslib's `encrypted` JSON:
//!
//! ```text
//! {"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<base64, 32 bytes>"},
//!  "cipher":{"name":"nacl/secretbox","nonce":"<base64, 24 bytes>"},
//!  "ciphertext":"<base64: Poly1305 tag, then XSalsa20 ciphertext>"}
//! ```
//!
//! The key is scrypt(password, salt, N, r, p) of 32 bytes; the plaintext is the PKCS#8 DER of
//! the private key. As go-securesystemslib, only its three scrypt strengths are accepted
//! (N = 2^15, 2^16 or 2^17 with r = 8, p = 1), so a hostile file cannot ask for gigabytes.

use crate::secret::Secret;
use anyhow::{bail, Context as _};
use base64::Engine as _;
use crypto_secretbox::aead::{Aead as _, KeyInit as _};
use crypto_secretbox::XSalsa20Poly1305;
use serde::{Deserialize, Deserializer};

/// The scrypt parameters go-securesystemslib accepts: (log2 N, r, p).
const ACCEPTED_SCRYPT: [(u8, u32, u32); 3] = [(15, 8, 1), (16, 8, 1), (17, 8, 1)];

#[derive(Deserialize)]
struct Data {
    #[serde(alias = "KDF", alias = "Kdf")]
    kdf: Kdf,
    #[serde(alias = "Cipher")]
    cipher: Cipher,
    #[serde(
        alias = "Ciphertext",
        alias = "CipherText",
        deserialize_with = "base64_bytes"
    )]
    ciphertext: Vec<u8>,
}

#[derive(Deserialize)]
struct Kdf {
    #[serde(alias = "Name")]
    name: String,
    #[serde(alias = "Params")]
    params: ScryptParams,
    #[serde(alias = "Salt", deserialize_with = "base64_bytes")]
    salt: Vec<u8>,
}

#[derive(Deserialize)]
struct ScryptParams {
    #[serde(rename = "N", alias = "n")]
    n: u64,
    #[serde(alias = "R")]
    r: u32,
    #[serde(alias = "P")]
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    #[serde(alias = "Name")]
    name: String,
    #[serde(alias = "Nonce", deserialize_with = "base64_bytes")]
    nonce: Vec<u8>,
}

/// Go's `[]byte` in JSON: standard base64.
fn base64_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(serde::de::Error::custom)
}

/// Decrypts go-securesystemslib's `encrypted` JSON with `password`: the plaintext. A wrong
/// password is `decryption failed` (the secretbox does not open); the password is never
/// part of an error.
pub fn decrypt(json: &[u8], password: &Secret) -> anyhow::Result<Vec<u8>> {
    let data: Data = serde_json::from_slice(json)
        .context("not cosign's encrypted key JSON (kdf, cipher, ciphertext)")?;
    if data.kdf.name != "scrypt" {
        bail!(
            "unknown key derivation {:?} (cosign uses scrypt)",
            data.kdf.name
        );
    }
    if data.cipher.name != "nacl/secretbox" {
        bail!(
            "unknown cipher {:?} (cosign uses nacl/secretbox)",
            data.cipher.name
        );
    }
    let params = &data.kdf.params;
    let log_n = ACCEPTED_SCRYPT
        .iter()
        .find(|(log_n, r, p)| 1u64 << log_n == params.n && *r == params.r && *p == params.p)
        .map(|(log_n, _, _)| *log_n)
        .with_context(|| {
            format!(
                "unsupported scrypt parameters N={} r={} p={} (cosign writes N=32768, 65536 or \
                 131072 with r=8, p=1)",
                params.n, params.r, params.p
            )
        })?;
    let nonce: [u8; 24] =
        data.cipher.nonce.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!("the nonce is {} bytes, not 24", data.cipher.nonce.len())
        })?;
    let key = derive_key(password, &data.kdf.salt, log_n, params.r, params.p)?;
    let cipher = XSalsa20Poly1305::new(&key.into());
    cipher
        .decrypt(&nonce.into(), data.ciphertext.as_slice())
        .map_err(|_| anyhow::anyhow!("decryption failed: wrong password, or a damaged key"))
}

/// scrypt of the password: the 32-byte secretbox key.
fn derive_key(
    password: &Secret,
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> anyhow::Result<[u8; 32]> {
    let params = scrypt::Params::new(log_n, r, p).context("scrypt parameters")?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password.expose().as_bytes(), salt, &params, &mut key)
        .map_err(|_| anyhow::anyhow!("scrypt failed"))?;
    Ok(key)
}

/// Encrypts `plaintext` as go-securesystemslib does, with the given salt and nonce and
/// N = 2^`log_n` (r = 8, p = 1): the JSON. For tests, which make encrypted keys.
pub fn encrypt(
    plaintext: &[u8],
    password: &Secret,
    salt: &[u8; 32],
    nonce: &[u8; 24],
    log_n: u8,
) -> anyhow::Result<Vec<u8>> {
    let key = derive_key(password, salt, log_n, 8, 1)?;
    let cipher = XSalsa20Poly1305::new(&key.into());
    let ciphertext = cipher
        .encrypt(&(*nonce).into(), plaintext)
        .map_err(|_| anyhow::anyhow!("encryption failed"))?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let json = serde_json::json!({
        "kdf": {"name": "scrypt", "params": {"N": 1u64 << log_n, "r": 8, "p": 1}, "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(&ciphertext),
    });
    Ok(serde_json::to_vec(&json)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// go-securesystemslib's `TestDecrypt` vector (encrypted/encrypted_test.go).
    const VECTOR: &str = r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}"#;

    #[test]
    fn decrypts_go_securesystemslibs_vector() {
        let plain = decrypt(VECTOR.as_bytes(), &Secret::new("supersecret")).unwrap();
        assert_eq!(plain, b"reallyimportant");
    }

    #[test]
    fn a_wrong_password_fails_without_showing_it() {
        let err = decrypt(VECTOR.as_bytes(), &Secret::new("hunter2")).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("decryption failed"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn refuses_other_scrypt_parameters() {
        // go-securesystemslib's TestUnsupportedKDFParameters.
        let json = r#"{"kdf":{"name":"scrypt","params":{"N":99,"r":99,"p":99},"salt":"cZFcQJdwPhPyhU1R4qkl0qVOIjZd4V/7LYYAavq166k="},"cipher":{"name":"nacl/secretbox","nonce":"7vhRS7j0hEPBWV05skAdgLj81AkGeE7U"},"ciphertext":"6WYU/YSXVbYzl/NzaeAzmjLyfFhOOjLc0d8/GFV0aBFdJvyCcXc="}"#;
        let err = decrypt(json.as_bytes(), &Secret::new("supersecret")).unwrap_err();
        assert!(
            format!("{err:#}").contains("unsupported scrypt parameters"),
            "{err:#}"
        );
        // N = 2^30 would take a gigabyte of memory: refused before scrypt runs.
        let huge = VECTOR.replace("32768", "1073741824");
        assert!(decrypt(huge.as_bytes(), &Secret::new("supersecret")).is_err());
    }

    #[test]
    fn round_trips() {
        let json = encrypt(b"key bytes", &Secret::new("pw"), &[7; 32], &[9; 24], 15).unwrap();
        assert_eq!(decrypt(&json, &Secret::new("pw")).unwrap(), b"key bytes");
        assert!(decrypt(&json, &Secret::new("")).is_err());
    }
}
