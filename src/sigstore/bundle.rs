//! Sigstore bundles, as cosign 3 stores an image's signature by default: an OCI referrer of
//! the image (artifact type [`BUNDLE_MEDIA_TYPE`]) whose one layer is the bundle JSON. For a
//! key, cosign 3 writes a DSSE envelope (`dsseEnvelope`) over an in-toto statement whose
//! subject is the image digest and whose predicate type is [`COSIGN_SIGN_PREDICATE`]; the
//! signature is ECDSA over DSSE's pre-authentication encoding ([`pae`]) of the payload.
//!
//! Unlike cosign's simple-signing payload, the statement names only the digest, not the
//! repository, so a bundle binds the signature to the image's content alone (as `cosign
//! verify` checks it). Certificates, transparency-log entries and timestamps in the bundle
//! are not read: a signature counts when one of `source.verify.public_keys` verifies it.

use super::keys::PublicKey;
use base64::Engine as _;
use serde::Deserialize;

/// The media type (and artifact type) of a Sigstore bundle, version 0.3, as cosign 3 writes it.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The predicate type of cosign 3's image signature statement.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The in-toto statement types accepted.
const STATEMENT_TYPES: [&str; 2] = [
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];

/// Whether `media_type` is a Sigstore bundle's (any version: `...bundle.v0.N+json` or
/// `...bundle+json;version=0.N`).
pub fn is_bundle(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.dev.sigstore.bundle")
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(body)> <body>`, the
/// lengths in ASCII decimal bytes. This, not the payload, is what is signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: Option<String>,
    dsse_envelope: Option<Envelope>,
    message_signature: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    #[serde(default)]
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    #[serde(default)]
    subject: Vec<Subject>,
    predicate_type: String,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

/// Checks the bundle `raw` as a signature of `digest` (`sha256:<hex>`): `Ok(index)` of the
/// first of `keys` that verifies one of its DSSE signatures over a cosign signing statement
/// for `digest`; `Err(why not)` otherwise.
pub fn check(raw: &[u8], digest: &str, keys: &[PublicKey]) -> Result<usize, String> {
    let bundle: Bundle =
        serde_json::from_slice(raw).map_err(|e| format!("not a Sigstore bundle ({e})"))?;
    if let Some(media_type) = bundle.media_type.as_deref().filter(|t| !is_bundle(t)) {
        return Err(format!("a bundle of media type {media_type:?}"));
    }
    let Some(envelope) = bundle.dsse_envelope else {
        return Err(match bundle.message_signature {
            Some(_) => "a bundle with a message signature (cosign 3 signs images with a DSSE envelope; this form is not read)".into(),
            None => "a bundle with no DSSE envelope".into(),
        });
    };
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(format!(
            "a DSSE payload of type {:?}, not {IN_TOTO_PAYLOAD_TYPE:?}",
            envelope.payload_type
        ));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64
        .decode(envelope.payload.trim())
        .map_err(|_| "the DSSE payload is not base64".to_string())?;
    let signed = pae(&envelope.payload_type, &payload);
    let key = envelope
        .signatures
        .iter()
        .filter_map(|s| b64.decode(s.sig.trim()).ok())
        .find_map(|sig| keys.iter().position(|k| k.verifies(&signed, &sig)))
        .ok_or_else(|| "not signed by any of source.verify.public_keys".to_string())?;
    // Only what a listed key signed is read from here on.
    let statement: Statement = serde_json::from_slice(&payload)
        .map_err(|e| format!("the DSSE payload is not an in-toto statement ({e})"))?;
    if !STATEMENT_TYPES.contains(&statement.kind.as_str()) {
        return Err(format!("a statement of type {:?}", statement.kind));
    }
    if statement.predicate_type != COSIGN_SIGN_PREDICATE {
        return Err(format!(
            "a statement with predicate {:?}, not cosign's signature ({COSIGN_SIGN_PREDICATE})",
            statement.predicate_type
        ));
    }
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("", digest));
    let names = |s: &Subject| {
        s.digest
            .iter()
            .map(|(a, h)| format!("{a}:{h}"))
            .collect::<Vec<_>>()
    };
    if statement
        .subject
        .iter()
        .any(|s| s.digest.get(algorithm).is_some_and(|h| h == hex))
    {
        Ok(key)
    } else {
        Err(format!(
            "the statement signs {}, not {digest}",
            statement
                .subject
                .iter()
                .flat_map(names)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `cosign sign --key` (cosign 3.1.1, Debian sid) stored for
    /// `127.0.0.1:5055/app@sha256:b7bf06…`, and the public key of the key it signed with.
    const COSIGN3_BUNDLE: &str = r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"TEz7e3Eb5u+yxSZB9bkOwROuMA22Dkr5ZNjR2DOCFI8="}},"dsseEnvelope":{"payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiYjdiZjA2NzU4NDFkMGIyNjBhYjZjNDRlYTczM2JlMmYzYWNmNjI1ZDVkYTAzYzE4NWU4OWQzNDk0NzQ4ZGE1YiJ9LCJhbm5vdGF0aW9ucyI6e319XSwicHJlZGljYXRlVHlwZSI6Imh0dHBzOi8vc2lnc3RvcmUuZGV2L2Nvc2lnbi9zaWduL3YxIiwicHJlZGljYXRlIjp7fX0=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEUCIDNxNYnz/7D6WSdYtcAFC/96OctHmkclN3kMgWQhjiTiAiEAylHuclhjHqOpAGiouYdBb7TpCAV2Y+6FMrGlBrv96lE="}]}}"#;
    const COSIGN3_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEWV/0BZKx1rlUFQZE4SMFLcYrsIo
Um2i9BrQlG4Frlu7M9m6IpKyiRGTHH98VDX/RgoEBjp5bXchXBsPwVnHXg==
-----END PUBLIC KEY-----
";
    const SIGNED: &str = "sha256:b7bf0675841d0b260ab6c44ea733be2f3acf625d5da03c185e89d3494748da5b";

    fn keys() -> Vec<PublicKey> {
        vec![PublicKey::from_pem(COSIGN3_KEY).unwrap()]
    }

    #[test]
    fn pae_is_dsses() {
        // The DSSE spec's example (protocol.md).
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn cosign_3s_bundle_verifies_for_its_digest_only() {
        assert_eq!(check(COSIGN3_BUNDLE.as_bytes(), SIGNED, &keys()), Ok(0));
        let other = format!("sha256:{}", "1".repeat(64));
        let err = check(COSIGN3_BUNDLE.as_bytes(), &other, &keys()).unwrap_err();
        assert!(err.contains("the statement signs sha256:b7bf06"), "{err}");
        let another_key = {
            use p256::pkcs8::{EncodePublicKey as _, LineEnding};
            let secret = p256::SecretKey::from_slice(&[7; 32]).unwrap();
            let pem = secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap();
            PublicKey::from_pem(&pem).unwrap()
        };
        let err = check(
            COSIGN3_BUNDLE.as_bytes(),
            SIGNED,
            std::slice::from_ref(&another_key),
        )
        .unwrap_err();
        assert!(err.contains("not signed by any"), "{err}");
        assert_eq!(
            check(
                COSIGN3_BUNDLE.as_bytes(),
                SIGNED,
                &[another_key, keys()[0].clone()]
            ),
            Ok(1)
        );
    }

    #[test]
    fn a_changed_statement_or_type_does_not_verify() {
        let mut bundle: serde_json::Value = serde_json::from_str(COSIGN3_BUNDLE).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let payload = b64
            .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap();
        let forged = String::from_utf8(payload)
            .unwrap()
            .replace("b7bf06", "b7bf07");
        bundle["dsseEnvelope"]["payload"] = b64.encode(forged).into();
        let err = check(bundle.to_string().as_bytes(), SIGNED, &keys()).unwrap_err();
        assert!(err.contains("not signed by any"), "{err}");
        let mut typed: serde_json::Value = serde_json::from_str(COSIGN3_BUNDLE).unwrap();
        typed["dsseEnvelope"]["payloadType"] = "application/json".into();
        let err = check(typed.to_string().as_bytes(), SIGNED, &keys()).unwrap_err();
        assert!(
            err.contains("not \"application/vnd.in-toto+json\""),
            "{err}"
        );
        let err = check(b"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"messageSignature\":{}}", SIGNED, &keys()).unwrap_err();
        assert!(err.contains("message signature"), "{err}");
        assert!(check(b"[]", SIGNED, &keys()).is_err());
    }
}
