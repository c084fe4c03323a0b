//! The options: `params.sign` (`out`) and `source.verify` (`check`, `in`).

use crate::secret::Secret;
use serde::Deserialize;

/// `params.sign`: sign the pushed image with a cosign key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignParams {
    /// The private key: PEM text, or the path of a PEM file (relative to the sources
    /// directory). PKCS#8, SEC1, or cosign's encrypted format (then `password` decrypts it).
    pub key: Secret,
    /// The password of an encrypted key (`COSIGN_PASSWORD`); an unset password is the empty
    /// one, as cosign reads it.
    #[serde(default)]
    pub password: Option<Secret>,
}

/// `source.verify`: only images signed by one of these keys are versions (`check`) or
/// fetched (`in`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyOptions {
    /// PEM public keys (`-----BEGIN PUBLIC KEY-----`, ECDSA P-256), as `cosign.pub`.
    pub public_keys: Vec<String>,
    /// Other repositories a signature's payload may name besides `source.repository` (as
    /// containers/image's `remapIdentity`): for images copied here with their signatures,
    /// whose payloads name the repository they were signed in.
    #[serde(default)]
    pub repositories: Vec<String>,
}
