//! The signature image cosign keeps under `sha256-<hex>.sig`: an OCI image manifest whose
//! layers are the signatures (each the payload blob, media type
//! [`super::SIMPLE_SIGNING_MEDIA_TYPE`], with the base64 signature in the
//! [`super::SIGNATURE_ANNOTATION`] annotation), and a config listing the layers as go-
//! containerregistry's `mutate.Append` (which cosign uses) writes it.
//!
//! A new signature is appended to the layers already there, as cosign does; a layer equal to
//! one already there (same payload, same signature) is not added twice.

use super::{SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE};
use anyhow::{bail, Context as _};
use serde_json::{json, Value};

/// The media type of the signature manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The media type of its config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// The most signatures one signature manifest may hold before we refuse to read it.
pub const MAX_SIGNATURES: usize = 256;

/// The largest signature payload fetched (cosign's are a few hundred bytes).
pub const MAX_PAYLOAD_BYTES: u64 = 64 << 10;

/// One layer of a signature manifest: its descriptor as found (kept whole when the manifest
/// is written again) and what we read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// The descriptor JSON.
    pub descriptor: Value,
    /// `digest`.
    pub digest: String,
    /// `size`.
    pub size: u64,
    /// `mediaType`.
    pub media_type: String,
    /// The signature annotation, when present.
    pub signature: Option<String>,
}

impl Layer {
    /// A new signature layer: the payload's digest and size, and the base64 signature.
    pub fn new(digest: &str, size: u64, signature: &str) -> Layer {
        Layer {
            descriptor: json!({
                "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
                "size": size,
                "digest": digest,
                "annotations": {SIGNATURE_ANNOTATION: signature},
            }),
            digest: digest.to_string(),
            size,
            media_type: SIMPLE_SIGNING_MEDIA_TYPE.to_string(),
            signature: Some(signature.to_string()),
        }
    }

    /// Whether this is a cosign signature with its payload and signature.
    pub fn is_signature(&self) -> bool {
        self.media_type == SIMPLE_SIGNING_MEDIA_TYPE && self.signature.is_some()
    }

    /// The same signature (payload and signature) as `other`.
    pub fn same_as(&self, other: &Layer) -> bool {
        self.digest == other.digest && self.signature == other.signature
    }
}

/// The layers of a signature manifest (`raw`); more than [`MAX_SIGNATURES`] is an error.
pub fn layers(raw: &[u8]) -> anyhow::Result<Vec<Layer>> {
    let manifest: Value =
        serde_json::from_slice(raw).context("the signature manifest is not JSON")?;
    let Some(layers) = manifest.get("layers").and_then(Value::as_array) else {
        bail!("the signature manifest has no layers list (not an image manifest)");
    };
    if layers.len() > MAX_SIGNATURES {
        bail!(
            "the signature manifest has {} layers; more than {MAX_SIGNATURES} are refused",
            layers.len()
        );
    }
    layers
        .iter()
        .enumerate()
        .map(|(i, descriptor)| {
            let text = |key: &str| {
                descriptor
                    .get(key)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let digest = text("digest").with_context(|| format!("layer {i} has no digest"))?;
            let size = descriptor
                .get("size")
                .and_then(Value::as_u64)
                .with_context(|| format!("layer {i} has no size"))?;
            crate::reference::validate_digest(&digest)
                .with_context(|| format!("layer {i} of the signature manifest"))?;
            Ok(Layer {
                descriptor: descriptor.clone(),
                digest,
                size,
                media_type: text("mediaType").unwrap_or_default(),
                signature: descriptor
                    .get("annotations")
                    .and_then(|a| a.get(SIGNATURE_ANNOTATION))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
        .collect()
}

/// `existing` followed by each of `new` that is not already there; `None` when nothing is
/// new (the manifest need not be written again).
pub fn merged(existing: &[Layer], new: &[Layer]) -> Option<Vec<Layer>> {
    let mut all = existing.to_vec();
    for layer in new {
        if !all.iter().any(|l| l.same_as(layer)) {
            all.push(layer.clone());
        }
    }
    (all.len() > existing.len()).then_some(all)
}

/// The config blob for `layers`: go-containerregistry's config after `mutate.Append` of each
/// layer to `empty.Image` (the payloads are their own diff IDs; one empty history entry
/// each).
pub fn config(layers: &[Layer]) -> Vec<u8> {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let history: Vec<Value> = layers
        .iter()
        .map(|_| json!({"created": "0001-01-01T00:00:00Z"}))
        .collect();
    json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": history,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    })
    .to_string()
    .into_bytes()
}

/// The manifest bytes for `layers` with the config `config` (its digest and size).
pub fn manifest(layers: &[Layer], config_digest: &str, config_size: u64) -> Vec<u8> {
    let descriptors: Vec<&Value> = layers.iter().map(|l| &l.descriptor).collect();
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "size": config_size, "digest": config_digest},
        "layers": descriptors,
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> String {
        format!("sha256:{}", hex::encode([n; 32]))
    }

    #[test]
    fn appends_without_duplicates_and_keeps_others() {
        let cosigns = Layer::new(&digest(1), 10, "c2ln");
        let written = manifest(std::slice::from_ref(&cosigns), &digest(9), 5);
        let read = layers(&written).unwrap();
        assert_eq!(read, vec![cosigns.clone()]);
        assert!(read[0].is_signature());
        let ours = Layer::new(&digest(2), 11, "b3Vy");
        let all = merged(&read, std::slice::from_ref(&ours)).unwrap();
        assert_eq!(all, vec![cosigns.clone(), ours.clone()]);
        assert_eq!(merged(&all, &[ours]), None);
        let config: Value = serde_json::from_slice(&config(&all)).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"], json!([digest(1), digest(2)]));
    }

    #[test]
    fn refuses_what_is_not_a_signature_manifest() {
        assert!(layers(b"[]").is_err());
        assert!(layers(br#"{"layers":[{"digest":"sha256:zz","size":1}]}"#).is_err());
        let many: Vec<Value> = (0..=MAX_SIGNATURES)
            .map(|_| json!({"digest": digest(1), "size": 1}))
            .collect();
        let raw = json!({"layers": many}).to_string();
        assert!(layers(raw.as_bytes()).is_err());
    }
}
