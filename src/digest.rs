//! Content digests (`algorithm:hex`, the [OCI image spec's descriptor digests](https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests)):
//! one streaming [`Hasher`] for every algorithm we accept, so no fetch, push or local
//! source ever takes bytes it could not check. An algorithm we cannot compute is an
//! [`Unsupported`] error, never an unchecked pass.

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
}
