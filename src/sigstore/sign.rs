//! `out`'s signing: the payload for the pushed digest signed with `params.sign.key`, and the
//! signature appended to the image's `sha256-<hex>.sig` manifest (see [`super::manifest`]),
//! pushed through the one pusher ([`crate::push`]) with its blobs written to the scratch
//! directory. [`append`] is shared with [`super::copy`].

use super::keys::PrivateKey;
use super::manifest::{self, Layer};
use super::{payload, signature_tag, SignParams};
use crate::digest::Digest;
use crate::image::model::{Blob, Manifest};
use crate::push::{self, BlobSource, PushPlan};
use crate::registry::Client;
use anyhow::Context as _;
use base64::Engine as _;
use std::path::Path;
use std::sync::Arc;

/// A key loaded from `params.sign`, ready to sign.
#[derive(Debug)]
pub struct Signer {
    key: PrivateKey,
}

impl Signer {
    /// Loads (and decrypts) the key of `params.sign`; paths are relative to `dir`. Done
    /// before anything is pushed, so a wrong password pushes nothing.
    pub fn load(params: &SignParams, dir: &Path) -> anyhow::Result<Signer> {
        let key = PrivateKey::load(&params.key, params.password.as_ref(), dir)?;
        Ok(Signer { key })
    }

    /// The payload for `digest` in `name` (`registry/repository`) and its base64 signature.
    pub fn sign(&self, name: &str, digest: &str) -> (Vec<u8>, String) {
        let payload = payload::build(name, digest);
        let signature = base64::engine::general_purpose::STANDARD.encode(self.key.sign(&payload));
        (payload, signature)
    }

    /// Signs `digest`, just pushed to `repository` (named `name`) on `target`, and pushes
    /// the signature; returns the signature tag.
    pub async fn sign_pushed(
        &self,
        target: &Arc<Client>,
        repository: &str,
        name: &str,
        digest: &str,
        scratch: &Path,
    ) -> anyhow::Result<String> {
        let (payload, signature) = self.sign(name, digest);
        let dir = blob_dir(scratch)?;
        let payload_digest = Digest::sha256_of(&payload);
        let path = write_blob(&dir, &payload_digest, &payload)?;
        let size = payload.len() as u64;
        let layer = Layer::new(payload_digest.as_str(), size, &signature);
        let blob = Blob::file(payload_digest, super::SIMPLE_SIGNING_MEDIA_TYPE, size, path);
        append(target, repository, digest, vec![(layer, blob)], scratch)
            .await
            .with_context(|| format!("pushing the signature of {name}@{digest}"))?;
        Ok(signature_tag(digest))
    }
}

/// Appends `new` signature layers (with where their blobs are) to the signature manifest
/// of `digest` in `repository` on `target`, keeping the layers already there; pushes the
/// manifest under [`signature_tag`] unless every new layer was already there. Returns how
/// many layers were added.
pub async fn append(
    target: &Arc<Client>,
    repository: &str,
    digest: &str,
    new: Vec<(Layer, Blob)>,
    scratch: &Path,
) -> anyhow::Result<usize> {
    let tag = signature_tag(digest);
    let existing = match target
        .get_manifest(repository, &tag)
        .await
        .with_context(|| format!("reading {repository}:{tag}"))?
    {
        Some((_, raw)) => manifest::layers(&raw).with_context(|| format!("{repository}:{tag}"))?,
        None => Vec::new(),
    };
    let layers: Vec<Layer> = new.iter().map(|(layer, _)| layer.clone()).collect();
    let Some(all) = manifest::merged(&existing, &layers) else {
        return Ok(0);
    };
    let added = all.len() - existing.len();
    let dir = blob_dir(scratch)?;
    let config = manifest::config(&all);
    let config_digest = Digest::sha256_of(&config);
    let config_path = write_blob(&dir, &config_digest, &config)?;
    let config_size = config.len() as u64;
    let mut blobs = vec![Blob::file(
        config_digest.clone(),
        manifest::CONFIG_MEDIA_TYPE,
        config_size,
        config_path,
    )];
    for layer in &all {
        if blobs.iter().any(|b| b.digest == layer.digest) {
            continue;
        }
        let source = new
            .iter()
            .find(|(l, _)| l.digest == layer.digest)
            .map(|(_, blob)| blob.source.clone())
            // Already in the repository (a layer of the existing manifest).
            .unwrap_or(BlobSource::Remote {
                client: None,
                repository: repository.to_string(),
            });
        blobs.push(Blob {
            digest: Digest::parse(&layer.digest)
                .with_context(|| format!("a layer of {repository}:{tag}"))?,
            media_type: layer.media_type.clone(),
            size: layer.size,
            source,
        });
    }
    let raw = manifest::manifest(&all, config_digest.as_str(), config_size);
    let plan = PushPlan {
        blobs,
        children: Vec::new(),
        top: Manifest::sha256(raw, manifest::MANIFEST_MEDIA_TYPE),
    };
    push::push(Arc::clone(target), repository, &plan, &[tag], 2, &dir).await?;
    Ok(added)
}

fn blob_dir(scratch: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = scratch.join("sigstore");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn write_blob(dir: &Path, digest: &Digest, bytes: &[u8]) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(digest.file_name());
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
