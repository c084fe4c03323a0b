//! The one pusher every `out` source goes through: blobs first, in parallel (skipped when the
//! registry has them, mounted when they are in another repository of the same registry,
//! otherwise uploaded streaming from disk, or copied through a scratch file from another
//! registry), then child manifests by digest, then the top manifest once per tag.

use crate::image::archive::ArchiveLayer;
use crate::image::model::{Blob, Digest, ImageOrIndex, Manifest};
use crate::progress::{self, Progress};
use crate::registry::upload::Mount;
use crate::registry::Client;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Where a blob's bytes are: the one answer for every blob of the model
/// ([`crate::image::model::Blob`]).
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// A file on disk holding exactly the blob (verified).
    File(PathBuf),
    /// A layer still inside a docker-save archive, read (and verified) only if it must be
    /// sent.
    Member(Box<ArchiveLayer>),
    /// A repository on a registry (mounted when it is the target's registry).
    Remote {
        /// The client for that registry; `None`: the registry being pushed to.
        client: Option<Arc<Client>>,
        /// The repository that has the blob.
        repository: String,
    },
}

impl BlobSource {
    /// Where it is, for messages: a path, `<member> of <archive>`, or `<host>/<repository>`.
    pub fn describe(&self) -> String {
        match self {
            BlobSource::File(path) => path.display().to_string(),
            BlobSource::Member(layer) => layer.what.clone(),
            BlobSource::Remote { client, repository } => match client {
                Some(client) => format!("{}/{repository}", client.host()),
                None => format!("{repository} on the target registry"),
            },
        }
    }
}

/// Everything a push sends.
#[derive(Debug, Clone)]
pub struct PushPlan {
    /// Unique blobs (configs and layers).
    pub blobs: Vec<Blob>,
    /// Manifests an index lists (pushed by digest before it).
    pub children: Vec<Manifest>,
    /// What the tags point at.
    pub top: Manifest,
}

impl PushPlan {
    /// The plan for a local image.
    pub fn from_image(image: &ImageOrIndex) -> PushPlan {
        let mut blobs: Vec<Blob> = Vec::new();
        for local in image.images() {
            for blob in std::iter::once(&local.config).chain(local.layers.iter()) {
                if !blobs.iter().any(|b| b.digest == blob.digest) {
                    blobs.push(blob.clone());
                }
            }
        }
        match image {
            ImageOrIndex::Image(local) => PushPlan {
                blobs,
                children: Vec::new(),
                top: local.manifest.clone(),
            },
            ImageOrIndex::Index { index, images } => PushPlan {
                blobs,
                children: images.iter().map(|i| i.manifest.clone()).collect(),
                top: index.clone(),
            },
        }
    }
}

/// What happened to the blobs.
#[derive(Debug, Default)]
pub struct PushReport {
    /// Sent over the wire.
    pub uploaded: AtomicUsize,
    /// Already in the target repository.
    pub present: AtomicUsize,
    /// Linked from another repository of the same registry.
    pub mounted: AtomicUsize,
}

impl PushReport {
    /// `blobs: U uploaded, P already present, M mounted`.
    pub fn line(&self) -> String {
        format!(
            "blobs: {} uploaded, {} already present, {} mounted",
            self.uploaded.load(Ordering::Relaxed),
            self.present.load(Ordering::Relaxed),
            self.mounted.load(Ordering::Relaxed)
        )
    }
}

/// Pushes `plan` to `repository` on `target` and tags it with every tag in `tags`.
pub async fn push(
    target: Arc<Client>,
    repository: &str,
    plan: &PushPlan,
    tags: &[String],
    concurrency: usize,
    scratch: &Path,
) -> anyhow::Result<Arc<PushReport>> {
    push_after(target, repository, plan, tags, concurrency, scratch, &[]).await
}

/// [`push`] where the blobs `uploaded` were uploaded already, in this run (see
/// [`crate::upload_ahead`]): they are counted as uploaded and not asked for again.
pub async fn push_after(
    target: Arc<Client>,
    repository: &str,
    plan: &PushPlan,
    tags: &[String],
    concurrency: usize,
    scratch: &Path,
    uploaded: &[Digest],
) -> anyhow::Result<Arc<PushReport>> {
    let started = Instant::now();
    let report = Arc::new(PushReport::default());
    let sizes: Vec<(String, u64)> = plan
        .blobs
        .iter()
        .map(|b| (b.digest.to_string(), b.size))
        .collect();
    let progress = Progress::new("uploading", &sizes);
    let reporter = progress.report(target.log());
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, blob) in plan.blobs.iter().enumerate() {
        let (target, repository, blob, report, progress, semaphore, scratch) = (
            Arc::clone(&target),
            repository.to_string(),
            blob.clone(),
            Arc::clone(&report),
            Arc::clone(&progress),
            Arc::clone(&semaphore),
            scratch.to_path_buf(),
        );
        let ahead = uploaded.contains(&blob.digest);
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            if ahead {
                report.uploaded.fetch_add(1, Ordering::Relaxed);
                mark_done(&progress, i, blob.size);
                if let Some(item) = progress.item(i) {
                    item.finished.store(true, Ordering::Relaxed);
                }
                return Ok(());
            }
            let result = push_blob(&target, &repository, &blob, &report, &progress, i, &scratch)
                .await
                .with_context(|| format!("pushing blob {}", blob.digest));
            if let Some(item) = progress.item(i) {
                item.finished.store(true, Ordering::Relaxed);
            }
            result
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("an upload task panicked")??;
    }
    drop(reporter);
    let total: u64 = sizes.iter().map(|(_, s)| s).sum();
    let ahead: u64 = plan
        .blobs
        .iter()
        .filter(|b| uploaded.contains(&b.digest))
        .map(|b| b.size)
        .sum();
    // The time is this step's; blobs uploaded ahead were sent before it began.
    let before = if ahead > 0 {
        format!(", {} of it uploaded ahead", progress::mb(ahead))
    } else {
        String::new()
    };
    target.log().line(format_args!(
        "{} ({}{before}; {:.1} s)",
        report.line(),
        progress::mb(total),
        started.elapsed().as_secs_f64()
    ));
    for child in &plan.children {
        put_manifest(&target, repository, child.digest.as_str(), child)
            .await
            .with_context(|| format!("pushing manifest {}", child.digest))?;
    }
    for tag in tags {
        put_manifest(&target, repository, tag, &plan.top)
            .await
            .with_context(|| format!("tagging {repository}:{tag}"))?;
    }
    Ok(report)
}

/// `PUT` of a manifest under `reference` (a digest or a tag); retries are the client's.
async fn put_manifest(
    target: &Client,
    repository: &str,
    reference: &str,
    manifest: &Manifest,
) -> Result<(), crate::registry::Error> {
    target
        .put_manifest(repository, reference, &manifest.media_type, &manifest.raw)
        .await
}

async fn push_blob(
    target: &Client,
    repository: &str,
    blob: &Blob,
    report: &PushReport,
    progress: &Progress,
    index: usize,
    scratch: &Path,
) -> anyhow::Result<()> {
    let counter = progress.counter(index);
    let digest = &blob.digest;
    let exists = target.blob_exists(repository, digest).await?;
    if exists {
        report.present.fetch_add(1, Ordering::Relaxed);
        mark_done(progress, index, blob.size);
        return Ok(());
    }
    let mut session = None;
    let (path, scratch_copy) = match &blob.source {
        BlobSource::File(path) => (path.clone(), false),
        BlobSource::Member(_) => {
            let (blob, scratch) = (blob.clone(), scratch.to_path_buf());
            let path = tokio::task::spawn_blocking(move || {
                crate::image::sources::materialise(&blob, &scratch)
            })
            .await
            .context("checking a layer panicked")??;
            (path, true)
        }
        BlobSource::Remote {
            client,
            repository: from,
        } => {
            let client = client.as_deref().unwrap_or(target);
            if client.host() == target.host() && from != repository {
                match target.mount_blob(repository, digest, from).await? {
                    Mount::Mounted => {
                        report.mounted.fetch_add(1, Ordering::Relaxed);
                        mark_done(progress, index, blob.size);
                        return Ok(());
                    }
                    Mount::NotMounted(location) => session = Some(location),
                }
            }
            let path = scratch.join(blob.digest.hex());
            let fetched = AtomicU64::new(0);
            client
                .fetch_blob_to_file(from, digest, blob.size, &path, &fetched)
                .await
                .with_context(|| format!("copying it from {}/{from}", client.host()))?;
            (path, true)
        }
    };
    // A failed upload starts again in a new session (the mount's session is used once).
    let result = target
        .upload_blob(
            repository,
            digest,
            blob.size,
            &path,
            session.take(),
            Arc::clone(&counter),
        )
        .await;
    if scratch_copy {
        let _ = std::fs::remove_file(&path);
    }
    result?;
    report.uploaded.fetch_add(1, Ordering::Relaxed);
    mark_done(progress, index, blob.size);
    Ok(())
}

fn mark_done(progress: &Progress, index: usize, size: u64) {
    progress.counter(index).store(size, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::model::{Digest, Image};

    fn blob(content: &[u8], source: BlobSource) -> Blob {
        Blob {
            digest: Digest::sha256_of(content),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: content.len() as u64,
            source,
        }
    }

    fn image(config: &[u8], layers: Vec<Blob>) -> Image {
        Image {
            manifest: Manifest::sha256(
                config.to_vec(),
                "application/vnd.oci.image.manifest.v1+json",
            ),
            config: blob(config, BlobSource::File(PathBuf::from("/c"))),
            layers,
        }
    }

    #[test]
    fn a_plan_sends_each_blob_once_then_the_children_then_the_top() {
        let shared = blob(b"shared", BlobSource::File(PathBuf::from("/s")));
        let mounted = blob(
            b"base",
            BlobSource::Remote {
                client: None,
                repository: "base/bb".into(),
            },
        );
        let amd = image(b"amd", vec![shared.clone(), mounted.clone()]);
        let arm = image(b"arm", vec![shared.clone()]);
        let index = Manifest::sha256(b"index".to_vec(), "application/vnd.oci.image.index.v1+json");
        let plan = PushPlan::from_image(&ImageOrIndex::Index {
            index: index.clone(),
            images: vec![amd.clone(), arm.clone()],
        });
        let digests: Vec<&Digest> = plan.blobs.iter().map(|b| &b.digest).collect();
        assert_eq!(
            digests,
            [
                &amd.config.digest,
                &shared.digest,
                &mounted.digest,
                &arm.config.digest
            ]
        );
        assert_eq!(
            plan.blobs[2].source.describe(),
            "base/bb on the target registry"
        );
        assert_eq!(plan.children, [amd.manifest.clone(), arm.manifest]);
        assert_eq!(plan.top, index);

        let single = PushPlan::from_image(&ImageOrIndex::Image(amd.clone()));
        assert!(single.children.is_empty());
        assert_eq!(single.top, amd.manifest);
    }
}
