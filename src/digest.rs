//! Content digests (`algorithm:hex`, the [OCI image spec's descriptor digests](https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests)):
//! one streaming [`Hasher`] for every algorithm we accept, so no fetch, push or local
//! source ever takes bytes it could not check. An algorithm we cannot compute is an
//! [`Unsupported`] error, never an unchecked pass. [`Digest`] is a digest parsed once
//! (algorithm we verify, exact length of lowercase hex), so its parts are safe as file
//! names; [`check_reference_digest`] is the wider grammar an image reference may carry.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// The algorithms we verify.
pub const ALGORITHMS: [&str; 3] = ["sha256", "sha384", "sha512"];

/// A digest whose algorithm we cannot verify (or that is not `algorithm:hex` at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported digest {digest:?}: only sha256, sha384 and sha512 digests can be verified")]
pub struct Unsupported {
    /// The digest as given.
    pub digest: String,
}

/// An algorithm we verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// `sha256`: what we name the content we make.
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
}

impl Algorithm {
    /// Its name, as digests spell it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The length of its hex digests.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }

    /// The algorithm named `name`, when we verify it.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// A fresh hasher.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
}

/// A string that is not a digest we can verify, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidDigest {
    /// The string as given.
    pub digest: String,
    /// What is wrong with it, naming it: `invalid digest "…": …`, or, for an algorithm we
    /// cannot compute, `unsupported digest "…": …` (as [`Unsupported`] says it).
    pub message: String,
}

/// A content digest in an algorithm we verify: `sha256:`, `sha384:` or `sha512:` and
/// exactly that many lowercase hex digits. Parsed once ([`FromStr`], or serde as a
/// string); its [`hex`](Digest::hex) is safe as a file name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// `algorithm:hex`, checked.
    text: String,
    algorithm: Algorithm,
}

impl Digest {
    /// Parses and checks `text` (see [`Digest`]).
    pub fn parse(text: &str) -> Result<Digest, InvalidDigest> {
        let invalid = |reason: String| InvalidDigest {
            digest: text.to_string(),
            message: format!("invalid digest {text:?}: {reason}"),
        };
        let Some((name, hex)) = text.split_once(':') else {
            return Err(invalid("expected <algorithm>:<hex>".to_string()));
        };
        let Some(algorithm) = Algorithm::from_name(name) else {
            return Err(InvalidDigest {
                digest: text.to_string(),
                message: Unsupported {
                    digest: text.to_string(),
                }
                .to_string(),
            });
        };
        let want = algorithm.hex_len();
        if hex.len() != want || !is_lower_hex(hex) {
            return Err(invalid(format!(
                "a {name} digest is {want} lowercase hex digits"
            )));
        }
        Ok(Digest {
            text: text.to_string(),
            algorithm,
        })
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            text: sha256(bytes),
            algorithm: Algorithm::Sha256,
        }
    }

    /// The digest of `bytes` in this digest's algorithm.
    pub fn same_algorithm_of(&self, bytes: &[u8]) -> Digest {
        let mut hasher = self.algorithm.hasher();
        hasher.update(bytes);
        hasher.finish()
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part: lowercase hex digits only, so safe as a file name.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm.name().len() + 1..]
    }

    /// `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A hasher in its algorithm.
    pub fn hasher(&self) -> Hasher {
        self.algorithm.hasher()
    }

    /// `<root>/blobs/<algorithm>/<hex>`: where an OCI layout keeps the blob.
    pub fn layout_path(&self, root: &Path) -> PathBuf {
        root.join("blobs")
            .join(self.algorithm.name())
            .join(self.hex())
    }

    /// `<algorithm>-<hex>`: a flat file name for the blob.
    pub fn file_name(&self) -> String {
        format!("{}-{}", self.algorithm.name(), self.hex())
    }

    /// `blobs/<algorithm>/<hex>` (a layout or tarball member name) → the digest; `None`
    /// for any other name.
    pub fn from_layout_name(name: &str) -> Option<Digest> {
        let mut parts = name.split('/');
        let (Some("blobs"), Some(algorithm), Some(hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Digest::parse(&format!("{algorithm}:{hex}")).ok()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;

    fn from_str(text: &str) -> Result<Digest, InvalidDigest> {
        Digest::parse(text)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl PartialEq<String> for Digest {
    fn eq(&self, other: &String) -> bool {
        &self.text == other
    }
}

impl PartialEq<Digest> for String {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.text
    }
}

impl PartialEq<Digest> for &str {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.text
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn is_lower_hex(hex: &str) -> bool {
    hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a digest as an image reference may carry it (the distribution grammar
/// `algorithm ":" hex`): the algorithms we verify must parse as a [`Digest`]; another
/// algorithm needs a well-formed name and at least 32 hex digits (it is refused later,
/// when content would have to be verified against it). The error is the reason.
pub fn check_reference_digest(digest: &str) -> Result<(), String> {
    let shape = "digests look like `sha256:` followed by 64 lowercase hex digits";
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("digest {digest:?} has no `:`; {shape}"));
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic())
                && part.chars().all(|c| c.is_ascii_alphanumeric())
        });
    if !algorithm_ok {
        return Err(format!("invalid digest algorithm {algorithm:?}; {shape}"));
    }
    match Algorithm::from_name(algorithm) {
        Some(known) => match Digest::parse(digest) {
            Ok(_) => Ok(()),
            Err(_) => Err(format!(
                "a {algorithm} digest is {} lowercase hex digits, got {hex:?}",
                known.hex_len()
            )),
        },
        None if hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) => Err(format!(
            "digest {digest:?} needs at least 32 hex digits after the algorithm"
        )),
        None => Ok(()),
    }
}

/// A streaming digest in the algorithm a digest names.
#[derive(Clone)]
pub enum Hasher {
    /// `sha256`.
    Sha256(Sha256),
    /// `sha384`.
    Sha384(Sha384),
    /// `sha512`.
    Sha512(Sha512),
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.algorithm())
    }
}

impl Hasher {
    /// The hasher for `digest`'s algorithm (`sha256:…`, `sha384:…`, `sha512:…`).
    pub fn for_digest(digest: &str) -> Result<Hasher, Unsupported> {
        match digest.split_once(':') {
            Some(("sha256", _)) => Ok(Hasher::Sha256(Sha256::new())),
            Some(("sha384", _)) => Ok(Hasher::Sha384(Sha384::new())),
            Some(("sha512", _)) => Ok(Hasher::Sha512(Sha512::new())),
            _ => Err(Unsupported {
                digest: digest.to_string(),
            }),
        }
    }

    /// A sha256 hasher (what we name the content we make).
    pub fn sha256() -> Hasher {
        Hasher::Sha256(Sha256::new())
    }

    /// The algorithm's name.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Hasher::Sha256(_) => "sha256",
            Hasher::Sha384(_) => "sha384",
            Hasher::Sha512(_) => "sha512",
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The [`Digest`] of everything added.
    pub fn finish(self) -> Digest {
        let algorithm = match &self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha384(_) => Algorithm::Sha384,
            Hasher::Sha512(_) => Algorithm::Sha512,
        };
        Digest {
            text: self.digest(),
            algorithm,
        }
    }

    /// `algorithm:hex` of everything added.
    pub fn digest(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Hasher::Sha384(h) => format!("sha384:{}", hex::encode(h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// The digest of `bytes` in the algorithm `like` names.
pub fn of(like: &str, bytes: &[u8]) -> Result<String, Unsupported> {
    let mut hasher = Hasher::for_digest(like)?;
    hasher.update(bytes);
    Ok(hasher.digest())
}

/// `sha256:hex` of `bytes` (what we name the content we make).
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_algorithm_hashes_and_others_are_refused() {
        let empty256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(of("sha256:x", b"").unwrap(), empty256);
        assert_eq!(sha256(b""), empty256);
        assert!(of("sha512:x", b"abc")
            .unwrap()
            .starts_with("sha512:ddaf35a1"));
        assert!(of("sha384:x", b"abc")
            .unwrap()
            .starts_with("sha384:cb00753f"));
        for bad in ["md5:abc", "sha256", "", "blake3:00"] {
            let err = of(bad, b"").unwrap_err();
            assert!(err.to_string().contains("unsupported digest"), "{err}");
        }
        for algorithm in ALGORITHMS {
            let hasher = Hasher::for_digest(&format!("{algorithm}:00")).unwrap();
            assert_eq!(hasher.algorithm(), algorithm);
        }
    }

    #[test]
    fn digest_parses_once_and_only_safe_digests() {
        let hex64 = "a".repeat(64);
        let sha256: Digest = format!("sha256:{hex64}").parse().unwrap();
        assert_eq!(sha256.algorithm(), Algorithm::Sha256);
        assert_eq!(sha256.hex(), hex64);
        assert_eq!(sha256.to_string(), format!("sha256:{hex64}"));
        assert_eq!(sha256.file_name(), format!("sha256-{hex64}"));
        assert_eq!(
            sha256.layout_path(Path::new("/l")),
            Path::new("/l/blobs/sha256").join(&hex64)
        );
        assert!(Digest::parse(&format!("sha512:{}", "0".repeat(128))).is_ok());
        assert!(Digest::parse(&format!("sha384:{}", "0".repeat(96))).is_ok());
        for bad in [
            String::from("sha256"),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("md5:{hex64}"),
            format!("sha256:../{}", "a".repeat(61)),
            format!("sha512:{hex64}"),
            format!("blake3:{hex64}"),
        ] {
            let err = Digest::parse(&bad).unwrap_err().to_string();
            let named = err.contains(&format!("invalid digest {bad:?}"))
                || err.contains(&format!("unsupported digest {bad:?}"));
            assert!(named, "{bad}: {err}");
        }
        let json = serde_json::to_string(&sha256).unwrap();
        assert_eq!(json, format!("\"sha256:{hex64}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), sha256);
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
        assert_eq!(Digest::sha256_of(b"").to_string(), sha256_str(b""));
        assert_eq!(
            Digest::from_layout_name(&format!("blobs/sha256/{hex64}")),
            Some(sha256.clone())
        );
        for name in [
            format!("blobs/sha256/{hex64}/x"),
            format!("blobs/md5/{hex64}"),
            "blobs/sha256/..".to_string(),
            format!("other/sha256/{hex64}"),
        ] {
            assert_eq!(Digest::from_layout_name(&name), None, "{name}");
        }
        let mut hasher = sha256.hasher();
        hasher.update(b"");
        assert_eq!(hasher.finish(), Digest::sha256_of(b""));
    }

    fn sha256_str(bytes: &[u8]) -> String {
        sha256(bytes)
    }
}
