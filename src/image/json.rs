//! Manifests, indexes and descriptors as serde structs in the spec's field order (the wire
//! shapes of the [`super::model`] types, for `out`'s sources and the OCI layout's
//! `index.json`), with sorted maps: serialising one always gives the same bytes, so a rebuilt manifest's
//! digest depends only on its content. (`oci-spec`'s types keep annotations in a
//! `HashMap`, whose order changes from run to run.)

use std::collections::BTreeMap;

use crate::image::model::{self, Blob, Digest};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An OCI descriptor (also Docker's, whose fields are a subset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DescriptorJson {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Value>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl DescriptorJson {
    /// A plain descriptor of a blob.
    pub fn of(blob: &Blob) -> DescriptorJson {
        DescriptorJson {
            media_type: blob.media_type.clone(),
            digest: blob.digest.to_string(),
            size: blob.size,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
            data: None,
        }
    }
}

impl From<&model::Descriptor> for DescriptorJson {
    fn from(d: &model::Descriptor) -> Self {
        DescriptorJson {
            media_type: d.media_type.clone(),
            digest: d.digest.to_string(),
            size: d.size,
            urls: None,
            annotations: d.annotations.clone(),
            platform: d.platform.clone(),
            artifact_type: None,
            data: None,
        }
    }
}

impl TryFrom<DescriptorJson> for model::Descriptor {
    type Error = crate::digest::InvalidDigest;

    fn try_from(d: DescriptorJson) -> Result<Self, Self::Error> {
        Ok(model::Descriptor {
            digest: Digest::parse(&d.digest)?,
            media_type: d.media_type,
            size: d.size,
            annotations: d.annotations,
            platform: d.platform,
        })
    }
}

/// An image manifest (OCI, or Docker schema 2 read through the same fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ManifestJson {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub config: DescriptorJson,
    #[serde(default)]
    pub layers: Vec<DescriptorJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<DescriptorJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexJson {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<DescriptorJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<DescriptorJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A Docker descriptor in the field order `docker push` writes.
#[derive(Debug, Serialize)]
pub(crate) struct DockerDescriptor<'a> {
    #[serde(rename = "mediaType")]
    pub media_type: &'a str,
    pub size: u64,
    pub digest: &'a str,
}

impl<'a> From<&'a Blob> for DockerDescriptor<'a> {
    fn from(blob: &'a Blob) -> Self {
        DockerDescriptor {
            media_type: &blob.media_type,
            size: blob.size,
            digest: blob.digest.as_str(),
        }
    }
}

/// A Docker image manifest, schema 2.
#[derive(Debug, Serialize)]
pub(crate) struct DockerManifest<'a> {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: &'a str,
    pub config: DockerDescriptor<'a>,
    pub layers: Vec<DockerDescriptor<'a>>,
}

/// Serialises `value` and digests the bytes.
pub(crate) fn to_bytes(value: &impl Serialize) -> Result<(Vec<u8>, Digest)> {
    let bytes = serde_json::to_vec(value).context("serialising a manifest")?;
    let digest = Digest::sha256_of(&bytes);
    Ok((bytes, digest))
}

/// The part of an image config that lists its layers' `rootfs.diff_ids`.
#[derive(Deserialize)]
struct ConfigRootfs {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// An image config's `rootfs.diff_ids` (empty when it lists none).
pub(crate) fn config_diff_ids(config: &[u8]) -> serde_json::Result<Vec<String>> {
    serde_json::from_slice::<ConfigRootfs>(config).map(|c| c.rootfs.diff_ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_order_and_sorted_annotations() -> Result<()> {
        let raw = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
          "annotations":{"z":"1","a":"2"},
          "layers":[{"size":3,"digest":"sha256:bb","mediaType":"t","platform":{"os":"linux","architecture":"amd64"}}],
          "config":{"digest":"sha256:aa","size":2,"mediaType":"c"}}"#;
        let manifest: ManifestJson = serde_json::from_str(raw)?;
        let (bytes, digest) = to_bytes(&manifest)?;
        assert_eq!(
            String::from_utf8(bytes.clone())?,
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"c","digest":"sha256:aa","size":2},"layers":[{"mediaType":"t","digest":"sha256:bb","size":3,"platform":{"architecture":"amd64","os":"linux"}}],"annotations":{"a":"2","z":"1"}}"#
        );
        assert_eq!(to_bytes(&manifest)?.1, digest);

        let cc = Digest::sha256_of(b"cc");
        let blob = Blob::file(cc.clone(), "m", 5, "x");
        let docker = DockerManifest {
            schema_version: 2,
            media_type: "d",
            config: (&blob).into(),
            layers: vec![(&blob).into()],
        };
        assert_eq!(
            String::from_utf8(to_bytes(&docker)?.0)?,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"d","config":{{"mediaType":"m","size":5,"digest":"{cc}"}},"layers":[{{"mediaType":"m","size":5,"digest":"{cc}"}}]}}"#
            )
        );
        Ok(())
    }
}
