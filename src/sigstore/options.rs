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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::PutParams;

    #[test]
    fn the_key_and_password_never_show_in_debug() {
        let params: PutParams = serde_json::from_value(serde_json::json!({
            "sign": {"key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----", "password": "hunter2"}
        }))
        .unwrap();
        let debug = format!("{params:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("c2VjcmV0"),
            "{debug}"
        );
        assert!(debug.contains("sign: Some"), "{debug}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let sign =
            serde_json::from_value::<SignParams>(serde_json::json!({"key": "k", "passwd": "x"}));
        assert!(sign.is_err());
        let verify =
            serde_json::from_value::<VerifyOptions>(serde_json::json!({"public_key": "k"}));
        assert!(verify.is_err());
    }
}
