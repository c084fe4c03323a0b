//! The signed payload: the "simple signing" JSON cosign writes (sigstore's
//! `pkg/signature/payload`, `json.Marshal` of `SimpleContainerImage`):
//!
//! ```text
//! {"critical":{"identity":{"docker-reference":"<registry>/<repository>"},"image":{"docker-manifest-digest":"sha256:<hex>"},"type":"cosign container image signature"},"optional":null}
//! ```
//!
//! On verification the payload must be of that type, name the image's digest, and name
//! the image's repository (normalised as containers/image compares: `docker.io/library/x`,
//! `index.docker.io` being `docker.io`; a tag or digest in the reference is ignored).

use crate::reference::{Reference, DOCKER_HUB, DOCKER_HUB_API};
use anyhow::{bail, Context as _};
use serde::Deserialize;

/// `critical.type` of a cosign signature payload.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";

/// The payload bytes signing `digest` in repository `name` (`registry/repository`), byte
/// for byte as cosign marshals them (no annotations: `"optional":null`).
pub fn build(name: &str, digest: &str) -> Vec<u8> {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":{}}},"image":{{"docker-manifest-digest":{}}},"type":{}}},"optional":null}}"#,
        quote(name),
        quote(digest),
        quote(COSIGN_SIGNATURE_TYPE)
    )
    .into_bytes()
}

#[derive(Deserialize)]
struct SimpleContainerImage {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// `registry/repository` of a reference, normalised for comparison.
pub fn normalised_name(reference: &str) -> anyhow::Result<String> {
    let parsed = Reference::parse(reference)?;
    let registry = match parsed.registry() {
        DOCKER_HUB_API => DOCKER_HUB,
        other => other,
    };
    Ok(format!("{registry}/{}", parsed.repository()))
}

/// Checks that `payload` is a cosign signature payload for `digest` naming one of `names`
/// (each normalised with [`normalised_name`]); the error says what it names instead.
pub fn check(payload: &[u8], digest: &str, names: &[String]) -> anyhow::Result<()> {
    let parsed: SimpleContainerImage = serde_json::from_slice(payload)
        .context("the payload is not cosign's simple signing JSON")?;
    let critical = parsed.critical;
    if critical.kind != COSIGN_SIGNATURE_TYPE {
        bail!(
            "the payload's type is {:?}, not {COSIGN_SIGNATURE_TYPE:?}",
            critical.kind
        );
    }
    if critical.image.docker_manifest_digest != digest {
        bail!(
            "the payload signs {}, not {digest}",
            critical.image.docker_manifest_digest
        );
    }
    let named = normalised_name(&critical.identity.docker_reference).with_context(|| {
        format!(
            "the payload's docker-reference {:?}",
            critical.identity.docker_reference
        )
    })?;
    if !names.contains(&named) {
        bail!("the payload names {named}, not {}", names.join(" or "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn bytes_are_cosigns() {
        let bytes = build("127.0.0.1:5000/app", DIGEST);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/app\"}},\
                 \"image\":{{\"docker-manifest-digest\":\"{DIGEST}\"}},\
                 \"type\":\"cosign container image signature\"}},\"optional\":null}}"
            )
        );
    }

    #[test]
    fn checks_digest_name_and_type() {
        let ours = vec!["docker.io/library/app".to_string()];
        for name in [
            "docker.io/library/app",
            "index.docker.io/library/app",
            "app",
            "app:1.0",
            "registry-1.docker.io/library/app",
        ] {
            check(&build(name, DIGEST), DIGEST, &ours).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        let other = DIGEST.replace("01", "02");
        let err = check(&build("app", DIGEST), &other, &ours).unwrap_err();
        assert!(format!("{err:#}").contains("not sha256:"), "{err:#}");
        let err = check(&build("docker.io/someone/app", DIGEST), DIGEST, &ours).unwrap_err();
        assert!(
            format!("{err:#}").contains("names docker.io/someone/app"),
            "{err:#}"
        );
        let wrong_type = String::from_utf8(build("app", DIGEST)).unwrap().replace(
            "cosign container image signature",
            "atomic container signature",
        );
        assert!(check(wrong_type.as_bytes(), DIGEST, &ours).is_err());
        assert!(check(b"{}", DIGEST, &ours).is_err());
    }

    #[test]
    fn reads_containers_image_payloads() {
        // skopeo 1.18's payload: the same fields, its own order and `optional` object.
        let payload = format!(
            "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/app:v1\"}},\
             \"image\":{{\"docker-manifest-digest\":\"{DIGEST}\"}},\"type\":\"cosign container \
             image signature\"}},\"optional\":{{\"creator\":\"containers/image\",\"timestamp\":1}}}}"
        );
        check(
            payload.as_bytes(),
            DIGEST,
            &["127.0.0.1:5000/app".to_string()],
        )
        .unwrap();
    }
}
