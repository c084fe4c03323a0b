//! `out` of a docker-save tarball without compressing what the registry already has.
//!
//! - When the first tag being pushed already holds an image manifest with the same config
//!   digest, and its layers are compressed as asked (`params.compression`), the push is
//!   that manifest written again under every tag: nothing is compressed or uploaded, and the
//!   version is that manifest's digest. One manifest GET decides. (An index under the tag
//!   is not compared: the tarball holds one image.)
//! - Otherwise the images that tag and `source.tag` hold give, through their configs'
//!   `rootfs.diff_ids`, the compressed blobs the repository has for uncompressed content;
//!   layers of the tarball with those diff_ids are pushed as those blobs (see
//!   [`crate::image::reuse`]) instead of being compressed again.
//!
//! Anything that goes wrong here (a missing tag, a registry that refuses) only means no
//! short-cut: the push then runs in full and reports real errors itself.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::Deserialize;

use crate::digest::Digest;
use crate::image::compress::{Codec, Encoding, KnownLayer, LayerOptions};
use crate::image::compression::{self, Compression};
use crate::image::model::Manifest;
use crate::image::sources;
use crate::log::Log;
use crate::push::PushPlan;
use crate::registry::Client;

/// What [`prepare`] found.
#[derive(Debug)]
pub enum Outcome {
    /// The first tag holds this image already: push nothing but the manifest.
    Unchanged(PushPlan),
    /// Push the image, with these options (the known layers, if any).
    Push(LayerOptions),
}

/// The manifest fields read here (an index has `manifests` and no `config`).
#[derive(Debug, Deserialize)]
struct RemoteManifest {
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<RemoteDescriptor>,
    #[serde(default)]
    layers: Vec<RemoteDescriptor>,
}

#[derive(Debug, Deserialize)]
struct RemoteDescriptor {
    #[serde(default, rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
}

/// An image manifest a tag holds.
struct Tagged {
    manifest: Manifest,
    parsed: RemoteManifest,
}

/// For a docker-save tarball (`path`, the image `want` picks): whether `candidates[0]`
/// (the first tag being pushed) of `repository` holds it already, else which of its layers
/// the images under `candidates` have. `encoding` is what the user asked for.
pub async fn prepare(
    client: &Client,
    repository: &str,
    candidates: &[String],
    path: PathBuf,
    want: Option<String>,
    encoding: Encoding,
    log: &Log,
) -> Result<Outcome> {
    let mut options = LayerOptions {
        encoding,
        known: BTreeMap::new(),
        ready: None,
    };
    let config =
        tokio::task::spawn_blocking(move || sources::docker_archive_config(&path, want.as_deref()))
            .await
            .context("reading the tarball's config panicked")?;
    // A tarball that cannot be read is reported by the full push, as for any source.
    let Ok(config) = config else {
        return Ok(Outcome::Push(options));
    };
    let config_digest = crate::digest::sha256(&config);
    let mut seen: Vec<&str> = Vec::new();
    for (i, tag) in candidates.iter().enumerate() {
        if seen.contains(&tag.as_str()) {
            continue;
        }
        seen.push(tag);
        let Some(tagged) = image_at(client, repository, tag, log).await else {
            continue;
        };
        if i == 0 && is_same(&tagged.parsed, &config_digest, encoding) {
            log.line(format_args!(
                "{repository}:{tag} already holds this image ({}, config {config_digest}): \
                 only tagging",
                tagged.manifest.digest
            ));
            return Ok(Outcome::Unchanged(PushPlan {
                blobs: Vec::new(),
                children: Vec::new(),
                top: tagged.manifest,
            }));
        }
        let found = known_layers(client, repository, &tagged.parsed, encoding, log).await;
        for (diff_id, layer) in found {
            options.known.entry(diff_id).or_insert(layer);
        }
    }
    if !options.known.is_empty() {
        log.line(format_args!(
            "{repository} has {} compressed layers (found through the diff_ids of {}): \
             layers with those diff_ids are not compressed again",
            options.known.len(),
            seen.join(", ")
        ));
    }
    Ok(Outcome::Push(options))
}

/// Whether `manifest` is an image with config `config_digest` and layers in `encoding`'s
/// compression.
fn is_same(manifest: &RemoteManifest, config_digest: &str, encoding: Encoding) -> bool {
    let config_matches = manifest
        .config
        .as_ref()
        .is_some_and(|c| c.digest == config_digest);
    config_matches
        && manifest
            .layers
            .iter()
            .all(|l| compressed_as(&l.media_type, encoding))
}

/// Whether a layer media type says `encoding`'s compression.
fn compressed_as(media_type: &str, encoding: Encoding) -> bool {
    let want = match encoding.codec() {
        Codec::Gzip => Compression::Gzip,
        Codec::Zstd => Compression::Zstd,
    };
    compression::claimed(media_type) == Some(want)
}

/// The image manifest `tag` holds; `None` when there is none (or an index, or an error).
async fn image_at(client: &Client, repository: &str, tag: &str, log: &Log) -> Option<Tagged> {
    let (descriptor, raw) = match client.get_manifest(repository, tag).await {
        Ok(Some(found)) => found,
        Ok(None) => return None,
        Err(e) => {
            log.line(format_args!("not comparing with {repository}:{tag}: {e}"));
            return None;
        }
    };
    let parsed: RemoteManifest = serde_json::from_slice(&raw).ok()?;
    if parsed.manifests.is_some() || parsed.config.is_none() {
        return None;
    }
    Some(Tagged {
        manifest: Manifest {
            raw,
            media_type: descriptor.media_type,
            digest: descriptor.digest,
        },
        parsed,
    })
}

/// The layers of `manifest` compressed as `encoding` says, by the diff_ids its config
/// gives them (nothing when the config cannot be read or does not match the layers).
async fn known_layers(
    client: &Client,
    repository: &str,
    manifest: &RemoteManifest,
    encoding: Encoding,
    log: &Log,
) -> Vec<(String, KnownLayer)> {
    let Some(config) = &manifest.config else {
        return Vec::new();
    };
    let Ok(config_digest) = Digest::parse(&config.digest) else {
        return Vec::new();
    };
    let bytes = match client
        .fetch_small_blob(repository, &config_digest, config.size)
        .await
    {
        Ok(bytes) => bytes,
        Err(e) => {
            log.line(format_args!(
                "not reusing layers of {repository}: config {}: {e}",
                config.digest
            ));
            return Vec::new();
        }
    };
    let Ok(diff_ids) = crate::image::json::config_diff_ids(&bytes) else {
        return Vec::new();
    };
    if diff_ids.len() != manifest.layers.len() {
        return Vec::new();
    }
    diff_ids
        .into_iter()
        .zip(&manifest.layers)
        .filter(|(_, layer)| compressed_as(&layer.media_type, encoding))
        .filter_map(|(diff_id, layer)| {
            let known = KnownLayer {
                digest: Digest::parse(&layer.digest).ok()?,
                size: layer.size,
                media_type: layer.media_type.clone(),
                repository: repository.to_string(),
            };
            Some((diff_id, known))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(config: &str, media_types: &[&str]) -> RemoteManifest {
        RemoteManifest {
            manifests: None,
            config: Some(RemoteDescriptor {
                media_type: "application/vnd.docker.container.image.v1+json".into(),
                digest: config.into(),
                size: 10,
            }),
            layers: media_types
                .iter()
                .map(|m| RemoteDescriptor {
                    media_type: (*m).to_string(),
                    digest: "sha256:00".into(),
                    size: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn same_config_and_compression_is_the_same_image() -> Result<()> {
        let gzip = Encoding::default();
        let zstd = Encoding::from_params(Some("zstd"), None)?;
        let docker_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
        let oci_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
        assert!(is_same(
            &manifest("sha256:c", &[docker_gzip]),
            "sha256:c",
            gzip
        ));
        assert!(!is_same(
            &manifest("sha256:d", &[docker_gzip]),
            "sha256:c",
            gzip
        ));
        assert!(!is_same(
            &manifest("sha256:c", &[docker_gzip]),
            "sha256:c",
            zstd
        ));
        assert!(is_same(
            &manifest("sha256:c", &[oci_zstd]),
            "sha256:c",
            zstd
        ));
        assert!(!is_same(
            &manifest("sha256:c", &[oci_zstd, docker_gzip]),
            "sha256:c",
            zstd
        ));
        Ok(())
    }
}
