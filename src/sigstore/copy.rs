//! `pull_repository` copies keep their signatures: the source's `sha256-<hex>.sig` layers
//! are appended to the target's signature manifest for the same digest (the copy has the
//! same manifest bytes, so the same digest), their payload blobs mounted or copied like the
//! image's. The payloads still name the repository they were signed in: to accept them with
//! `source.verify`, list that repository in `source.verify.repositories`.
//!
//! This is cosign's tag scheme; the image's OCI referrers (cosign's
//! `--registry-referrers-mode=oci-1-1` signatures among them) are copied by
//! [`super::referrers`].

use super::manifest;
use super::sign::append;
use super::signature_tag;
use crate::digest::Digest;
use crate::image::model::Blob;
use crate::push::BlobSource;
use crate::registry::Client;
use anyhow::Context as _;
use std::path::Path;
use std::sync::Arc;

/// One `pull_repository` copy: the image `digest` of `from` on `source`, pushed to
/// `repository` on `target`, whose signatures ([`copy_signatures`]) and referrers
/// ([`super::referrers::copy_referrers`]) follow it; `scratch` holds what is written on the
/// way.
#[derive(Debug, Clone, Copy)]
pub struct Copying<'a> {
    /// The source registry's client.
    pub source: &'a Arc<Client>,
    /// The source repository.
    pub from: &'a str,
    /// The target registry's client.
    pub target: &'a Arc<Client>,
    /// The target repository.
    pub repository: &'a str,
    /// The copied image's digest (the same in both).
    pub digest: &'a str,
    /// A scratch directory.
    pub scratch: &'a Path,
}

/// Copies the signatures of the copied image from the source to the target; returns how
/// many were added (0 when the source has none).
pub async fn copy_signatures(copying: &Copying<'_>) -> anyhow::Result<usize> {
    let Copying {
        source,
        from,
        target,
        repository,
        digest,
        scratch,
    } = *copying;
    let tag = signature_tag(digest);
    let Some((_, raw)) = source
        .get_manifest(from, &tag)
        .await
        .with_context(|| format!("reading {}/{from}:{tag}", source.host()))?
    else {
        return Ok(0);
    };
    let layers =
        manifest::layers(&raw).with_context(|| format!("{}/{from}:{tag}", source.host()))?;
    let mut new = Vec::with_capacity(layers.len());
    for layer in layers {
        let blob = Blob {
            digest: Digest::parse(&layer.digest)
                .with_context(|| format!("a layer of {}/{from}:{tag}", source.host()))?,
            media_type: layer.media_type.clone(),
            size: layer.size,
            source: BlobSource::Remote {
                client: Some(Arc::clone(source)),
                repository: from.to_string(),
            },
        };
        new.push((layer, blob));
    }
    append(target, repository, digest, new, scratch).await
}
