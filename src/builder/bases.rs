//! Base layers as their registry has them. buildah writes every layer of the built image
//! compressed anew, so a base layer gets another digest than the one its registry holds.
//! When the base comes from the registry being pushed to, its layers are pushed as that
//! registry has them instead: mounted from the base's repository, with the base's digests,
//! so the two images share them (as `buildah push` and `docker push` do on one registry).
//!
//! What buildah pulled is read from its storage: `buildah images --json` names the images,
//! and `buildah inspect --type image` gives each one's manifest as pulled (compressed
//! digests) and its config's `diff_ids`.

use anyhow::{Context as _, Result};
use serde::Deserialize;

use crate::image::model::{Blob, Digest, Image as LocalImage};
use crate::push::BlobSource;
use crate::reference::Reference;

/// A layer of a pulled image: its content digest and the blob its registry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseLayer {
    /// The digest of its uncompressed content (the config's `diff_id`).
    pub diff_id: String,
    /// The compressed blob's digest in the registry.
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// Its media type in the pulled manifest.
    pub media_type: String,
    /// The registry it was pulled from (normalised, `docker.io` for Docker Hub).
    pub registry: String,
    /// The repository it was pulled from.
    pub repository: String,
}

#[derive(Deserialize)]
struct ListedImage {
    #[serde(default)]
    names: Option<Vec<String>>,
}

/// The names in `buildah images --json` output.
pub fn image_names(images_json: &str) -> Result<Vec<String>> {
    let images: Vec<ListedImage> =
        serde_json::from_str(images_json).context("reading `buildah images --json`")?;
    Ok(images
        .into_iter()
        .flat_map(|image| image.names.unwrap_or_default())
        .collect())
}

#[derive(Deserialize)]
struct Inspected {
    #[serde(rename = "Manifest", default)]
    manifest: String,
    #[serde(rename = "OCIv1", default)]
    oci: Option<ConfigPart>,
    #[serde(rename = "Docker", default)]
    docker: Option<ConfigPart>,
}

#[derive(Deserialize)]
struct ConfigPart {
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Deserialize)]
struct PulledManifest {
    #[serde(default)]
    layers: Vec<PulledLayer>,
}

#[derive(Deserialize)]
struct PulledLayer {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
}

/// The layers of the image `name` (as buildah names it) from `buildah inspect --type image`
/// output; none when its manifest and config do not line up (an image built or loaded
/// here has no registry blobs to share).
pub fn layers_of(name: &str, inspect_json: &str) -> Result<Vec<BaseLayer>> {
    let reference =
        Reference::parse(name).with_context(|| format!("reading the image name {name:?}"))?;
    let inspected: Inspected = serde_json::from_str(inspect_json)
        .with_context(|| format!("reading `buildah inspect` of {name}"))?;
    let Ok(manifest) = serde_json::from_str::<PulledManifest>(&inspected.manifest) else {
        return Ok(Vec::new());
    };
    let diff_ids = inspected
        .oci
        .and_then(|c| c.rootfs)
        .or_else(|| inspected.docker.and_then(|c| c.rootfs))
        .map(|r| r.diff_ids)
        .unwrap_or_default();
    if diff_ids.len() != manifest.layers.len() {
        return Ok(Vec::new());
    }
    Ok(manifest
        .layers
        .into_iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| BaseLayer {
            diff_id,
            digest: layer.digest,
            size: layer.size,
            media_type: layer.media_type,
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
        })
        .collect())
}

/// The compression a layer media type names (`gzip`, `zstd`), if any: see
/// [`crate::image::compression::claimed`].
fn compression(media_type: &str) -> Option<&'static str> {
    crate::image::compression::claimed(media_type).and_then(|c| c.name())
}

/// Replaces each layer of `image` whose content is a base layer from `registry` (the
/// registry being pushed to) with that base layer's blob, to be mounted from its repository.
/// `diff_ids` are the built config's. Layers keep an OCI media type of the base blob's
/// compression; an uncompressed base blob is not used (it would grow the image).
pub fn reuse(
    image: LocalImage,
    diff_ids: &[String],
    bases: &[BaseLayer],
    registry: &str,
) -> Result<(LocalImage, usize)> {
    let mut replacements = Vec::new();
    for (i, layer) in image.layers.iter().enumerate() {
        let Some(diff_id) = diff_ids.get(i) else {
            break;
        };
        let found = bases.iter().find(|base| {
            base.diff_id == *diff_id
                && base.registry == registry
                && compression(&base.media_type).is_some()
        });
        let Some(base) = found else {
            continue;
        };
        let digest = Digest::parse(&base.digest)
            .with_context(|| format!("base layer of {}", base.repository))?;
        if digest == layer.digest {
            continue;
        }
        let media_type = match compression(&base.media_type) {
            Some("zstd") => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar+gzip",
        };
        replacements.push((
            i,
            Blob {
                digest,
                media_type: media_type.to_string(),
                size: base.size,
                source: BlobSource::Remote {
                    client: None,
                    repository: base.repository.clone(),
                },
            },
        ));
    }
    let count = replacements.len();
    if count == 0 {
        return Ok((image, 0));
    }
    let image = crate::image::sources::replace_layers(image, replacements)
        .context("pointing the built image at its base's blobs")?;
    Ok((image, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGES: &str = r#"[
        {"id": "9bf387c01a78", "names": ["127.0.0.1:5000/base/bb:1"], "digest": "sha256:83"},
        {"id": "38b3df13b29d", "names": null, "digest": "sha256:f3"},
        {"id": "aa", "names": ["docker.io/library/debian:12", "docker.io/library/debian:bookworm"]}
    ]"#;

    fn inspect(manifest: &str, diff_ids: &[&str]) -> String {
        serde_json::json!({
            "Manifest": manifest,
            "OCIv1": {"rootfs": {"type": "layers", "diff_ids": diff_ids}},
        })
        .to_string()
    }

    const PULLED: &str = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":1},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:g1","size":10},{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"sha256:z2","size":20}]}"#;

    #[test]
    fn names_of_listed_images() -> Result<()> {
        assert_eq!(
            image_names(IMAGES)?,
            [
                "127.0.0.1:5000/base/bb:1",
                "docker.io/library/debian:12",
                "docker.io/library/debian:bookworm"
            ]
        );
        assert!(image_names("not json").is_err());
        Ok(())
    }

    #[test]
    fn layers_pair_blobs_with_diff_ids() -> Result<()> {
        let layers = layers_of(
            "127.0.0.1:5000/base/bb:1",
            &inspect(PULLED, &["sha256:d1", "sha256:d2"]),
        )?;
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0].diff_id, "sha256:d1");
        assert_eq!(layers[0].digest, "sha256:g1");
        assert_eq!(layers[1].size, 20);
        assert_eq!(layers[1].registry, "127.0.0.1:5000");
        assert_eq!(layers[1].repository, "base/bb");
        // A manifest that does not line up with the config, or is missing: nothing.
        assert!(layers_of("x:1", &inspect(PULLED, &["sha256:d1"]))?.is_empty());
        assert!(layers_of("x:1", &inspect("", &[]))?.is_empty());
        let hub = layers_of("docker.io/library/debian:12", &inspect(PULLED, &["a", "b"]))?;
        assert_eq!(
            (hub[0].registry.as_str(), hub[0].repository.as_str()),
            ("docker.io", "library/debian")
        );
        Ok(())
    }

    #[test]
    fn compression_of_media_types() {
        assert_eq!(
            compression("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some("gzip")
        );
        assert_eq!(
            compression("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some("zstd")
        );
        assert_eq!(compression("application/vnd.oci.image.layer.v1.tar"), None);
    }
}
