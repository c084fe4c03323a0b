//! `pull_repository` copies keep their OCI referrers (cosign's `--registry-referrers-mode=
//! oci-1-1` signatures, SBOMs, attestations: manifests whose `subject` is the image): every
//! referrer the source lists for the pushed digest ([`Client::list_referrers`](crate::registry::Client::list_referrers): the referrers
//! API, else the `sha256-<hex>` referrers tag) is copied to the target repository, its blobs
//! mounted or copied like the image's, its manifest put by digest with the same bytes (so
//! the same digest, and the same `subject`). When the target's registry does not answer
//! that `PUT` with `OCI-Subject` (it has no referrers API, as CNCF distribution 2.8), the
//! referrer is added to the target's referrers tag, keeping what it lists already.
//!
//! A referrer that is an index is copied with its manifests; one whose manifests are
//! indexes again is skipped with a note, as is one listed but missing, or whose `subject`
//! is not the digest. Referrers of referrers are not copied.

use super::copy::Copying;
use crate::digest::Digest;
use crate::image::model::{Blob, Manifest};
use crate::push::{self, BlobSource, PushPlan};
use crate::registry::referrers::{descriptor_of, fallback_tag};
use anyhow::Context as _;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// What [`copy_referrers`] did.
#[derive(Debug, Default, PartialEq)]
pub struct Copied {
    /// Referrers copied.
    pub copied: usize,
    /// How many were added to the target's referrers tag (not those its registry indexed
    /// itself, answering with `OCI-Subject`, nor those the tag listed already).
    pub tagged: usize,
    /// Referrers skipped, with why.
    pub skipped: Vec<String>,
}

/// Copies the referrers of the copied image from the source to the target.
pub async fn copy_referrers(copying: &Copying<'_>) -> anyhow::Result<Copied> {
    let Copying {
        source,
        from,
        target,
        repository,
        digest,
        scratch,
    } = *copying;
    let listing = source
        .list_referrers(from, digest)
        .await
        .with_context(|| format!("listing the referrers of {}/{from}@{digest}", source.host()))?;
    let mut done = Copied::default();
    let mut untagged = Vec::new();
    let dir = scratch.join("referrers");
    for listed in &listing.descriptors {
        // Checked by the listing.
        let Some(referrer) = listed.get("digest").and_then(Value::as_str) else {
            continue;
        };
        let copy = Copier {
            job: copying,
            scratch: &dir,
        };
        match copy
            .one(referrer)
            .await
            .with_context(|| format!("copying referrer {referrer} of {digest}"))?
        {
            Outcome::Copied { indexed: true, .. } => done.copied += 1,
            Outcome::Copied {
                indexed: false,
                descriptor,
            } => {
                done.copied += 1;
                untagged.push(descriptor);
            }
            Outcome::Skipped(why) => done
                .skipped
                .push(format!("skipped referrer {referrer} of {digest}: {why}")),
        }
    }
    if !untagged.is_empty() {
        done.tagged = target
            .add_to_referrers_tag(repository, digest, &untagged)
            .await
            .with_context(|| {
                format!(
                    "adding the copied referrers to {}/{repository}:{}",
                    target.host(),
                    fallback_tag(digest)
                )
            })?;
    }
    Ok(done)
}

/// What became of one referrer.
enum Outcome {
    /// Copied; `indexed` when the target registry answered with `OCI-Subject`, else
    /// `descriptor` is for the referrers tag.
    Copied { indexed: bool, descriptor: Value },
    /// Not copied, because.
    Skipped(String),
}

/// One copy's where from and where to, and where its blobs are written.
struct Copier<'a> {
    job: &'a Copying<'a>,
    scratch: &'a Path,
}

impl Copier<'_> {
    async fn one(&self, referrer: &str) -> anyhow::Result<Outcome> {
        let Some((found, raw)) = self.read(referrer).await? else {
            return Ok(Outcome::Skipped("listed, but not found".into()));
        };
        let Ok(manifest) = serde_json::from_slice::<Value>(&raw) else {
            return Ok(Outcome::Skipped("not JSON".into()));
        };
        let subject = manifest.pointer("/subject/digest").and_then(Value::as_str);
        if subject != Some(self.job.digest) {
            return Ok(Outcome::Skipped(format!(
                "its subject is {}, not this image",
                subject.unwrap_or("missing")
            )));
        }
        let media_type = manifest
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(&found.media_type)
            .to_string();
        let mut blobs = Vec::new();
        let mut children = Vec::new();
        if let Some(manifests) = manifest.get("manifests").and_then(Value::as_array) {
            for child in manifests {
                let Some(child_digest) = child.get("digest").and_then(Value::as_str) else {
                    return Ok(Outcome::Skipped("an index entry has no digest".into()));
                };
                let Some((found, raw)) = self.read(child_digest).await? else {
                    return Ok(Outcome::Skipped(format!(
                        "its manifest {child_digest} is missing"
                    )));
                };
                let Ok(parsed) = serde_json::from_slice::<Value>(&raw) else {
                    return Ok(Outcome::Skipped(format!(
                        "its manifest {child_digest} is not JSON"
                    )));
                };
                if parsed.get("manifests").is_some() {
                    return Ok(Outcome::Skipped(format!(
                        "its manifest {child_digest} is an index again (not copied)"
                    )));
                }
                if let Err(why) = self.blobs_of(&parsed, &mut blobs) {
                    return Ok(Outcome::Skipped(format!(
                        "its manifest {child_digest}: {why}"
                    )));
                }
                let media_type = parsed
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .unwrap_or(&found.media_type)
                    .to_string();
                children.push(Manifest {
                    raw,
                    digest: found.digest,
                    media_type,
                });
            }
        } else if let Err(why) = self.blobs_of(&manifest, &mut blobs) {
            return Ok(Outcome::Skipped(why));
        }
        let descriptor = descriptor_of(&raw, referrer, &media_type)
            .map_err(anyhow::Error::msg)
            .context("its descriptor")?;
        std::fs::create_dir_all(self.scratch)
            .with_context(|| format!("creating {}", self.scratch.display()))?;
        let plan = PushPlan {
            blobs,
            children,
            top: Manifest {
                raw: raw.clone(),
                digest: found.digest,
                media_type: media_type.clone(),
            },
        };
        // No tags: the blobs and the index's manifests only; the referrer itself is put
        // below, by digest, to learn whether the registry indexed it.
        push::push(
            Arc::clone(self.job.target),
            self.job.repository,
            &plan,
            &[],
            2,
            self.scratch,
        )
        .await?;
        let answered = self
            .job
            .target
            .put_manifest_reporting_subject(self.job.repository, referrer, &media_type, &raw)
            .await
            .with_context(|| format!("pushing manifest {referrer} to {}", self.job.repository))?;
        Ok(Outcome::Copied {
            indexed: answered.as_deref() == Some(self.job.digest),
            descriptor,
        })
    }

    /// A manifest of the source, by digest (checked by the client).
    async fn read(
        &self,
        digest: &str,
    ) -> anyhow::Result<Option<(crate::registry::Descriptor, Vec<u8>)>> {
        self.job
            .source
            .get_manifest(self.job.from, digest)
            .await
            .with_context(|| {
                format!(
                    "reading {}/{}@{digest}",
                    self.job.source.host(),
                    self.job.from
                )
            })
    }

    /// Adds the config and layers of the image manifest `manifest` to `blobs` (once each),
    /// to be mounted or copied from the source.
    fn blobs_of(&self, manifest: &Value, blobs: &mut Vec<Blob>) -> Result<(), String> {
        let config = manifest
            .get("config")
            .ok_or("neither an image manifest nor an index")?;
        let layers = match manifest.get("layers") {
            Some(Value::Array(layers)) => layers.as_slice(),
            None | Some(Value::Null) => &[],
            Some(_) => return Err("its layers are not a list".into()),
        };
        for (i, descriptor) in std::iter::once(config).chain(layers).enumerate() {
            let what = if i == 0 {
                "config".to_string()
            } else {
                format!("layer {}", i - 1)
            };
            let digest = descriptor
                .get("digest")
                .and_then(Value::as_str)
                .ok_or(format!("its {what} has no digest"))?;
            let digest = Digest::parse(digest).map_err(|e| format!("its {what}: {e}"))?;
            let size = descriptor
                .get("size")
                .and_then(Value::as_u64)
                .ok_or(format!("its {what} has no size"))?;
            if blobs.iter().any(|b| b.digest == digest) {
                continue;
            }
            blobs.push(Blob {
                digest,
                media_type: descriptor
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                size,
                source: BlobSource::Remote {
                    client: Some(Arc::clone(self.job.source)),
                    repository: self.job.from.to_string(),
                },
            });
        }
        Ok(())
    }
}
