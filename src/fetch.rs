//! Fetching an image from a registry endpoint: resolving the version digest to the manifest
//! for a platform (or every platform), fetching configs, and downloading blobs in parallel to
//! files whose completion the layer applier ([`crate::image::unpack`]) waits on, in order.

use crate::image::manifest::{self, Parsed, PlatformSpec};
use crate::image::unpack::Arrivals;
use crate::progress::Progress;
use crate::registry::Client;
use anyhow::{bail, Context as _};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One single-platform image: its manifest and config, raw and parsed.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// Manifest bytes as the registry sent them.
    pub manifest_raw: Vec<u8>,
    /// Their digest.
    pub manifest_digest: String,
    /// Their media type.
    pub manifest_media_type: String,
    /// Parsed manifest.
    pub manifest: ImageManifest,
    /// Config bytes as fetched.
    pub config_raw: Vec<u8>,
    /// Parsed config.
    pub config: ImageConfiguration,
    /// The index entry's platform, when the image came out of an index.
    pub platform: Option<serde_json::Value>,
}

impl PlatformImage {
    /// `(digest, media type, size)` of each layer.
    pub fn layers(&self) -> Vec<(String, String, u64)> {
        self.manifest
            .layers()
            .iter()
            .map(|d| (d.digest().to_string(), manifest::media_type(d), d.size()))
            .collect()
    }
}

/// What a version digest resolved to.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The bytes the version digest names (an index or a manifest).
    pub top_raw: Vec<u8>,
    /// Their media type.
    pub top_media_type: String,
    /// Their digest.
    pub top_digest: String,
    /// The index, for a multi-platform image.
    pub index: Option<ImageIndex>,
    /// The selected platform's image first; with `all_platforms`, every other one after it.
    pub images: Vec<PlatformImage>,
}

/// One single-platform manifest, raw and parsed, as fetched.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// Bytes as the registry sent them.
    pub raw: Vec<u8>,
    /// Their digest.
    pub digest: String,
    /// Their media type.
    pub media_type: String,
    /// Parsed.
    pub manifest: ImageManifest,
    /// The index entry's platform, when it came out of an index.
    pub platform: Option<serde_json::Value>,
}

/// What a reference names, manifests only (no configs, no layers).
#[derive(Debug, Clone)]
pub struct Manifests {
    /// The bytes the reference names (an index or a manifest).
    pub top_raw: Vec<u8>,
    /// Their media type.
    pub top_media_type: String,
    /// Their digest.
    pub top_digest: String,
    /// The index, for a multi-platform image.
    pub index: Option<ImageIndex>,
    /// The single-platform manifests: see [`fetch_manifests`] for which, in what order.
    pub images: Vec<FetchedManifest>,
}

/// Fetches the manifest `reference` (a digest or tag) of `repository` and, for an index,
/// its manifests: with `platform`, the matching one first (and, with `all_platforms`, every
/// other one after it); without, all of them in the index's order.
pub async fn fetch_manifests(
    client: &Client,
    repository: &str,
    reference: &str,
    platform: Option<&PlatformSpec>,
    all_platforms: bool,
) -> anyhow::Result<Manifests> {
    let (top, top_raw) = client
        .get_manifest(repository, reference)
        .await?
        .with_context(|| format!("manifest {reference} does not exist in {repository}"))?;
    let parsed = manifest::parse(&top.media_type, &top_raw)
        .with_context(|| format!("manifest {reference} of {repository}"))?;
    let mut fetched = Manifests {
        top_media_type: top.media_type.clone(),
        top_digest: top.digest.clone(),
        top_raw: top_raw.clone(),
        index: None,
        images: Vec::new(),
    };
    match parsed {
        Parsed::Manifest(manifest) => fetched.images.push(FetchedManifest {
            raw: top_raw,
            digest: top.digest,
            media_type: top.media_type,
            manifest: *manifest,
            platform: None,
        }),
        Parsed::Index(index) => {
            let wanted: Vec<Descriptor> = match platform {
                Some(platform) => {
                    let selected = manifest::select_platform(&index, platform)
                        .with_context(|| format!("{repository}@{}", top.digest))?
                        .clone();
                    let others: Vec<Descriptor> = index
                        .manifests()
                        .iter()
                        .filter(|d| all_platforms && d.digest() != selected.digest())
                        .cloned()
                        .collect();
                    std::iter::once(selected).chain(others).collect()
                }
                None => index.manifests().clone(),
            };
            for descriptor in &wanted {
                fetched
                    .images
                    .push(fetch_child(client, repository, descriptor).await?);
            }
            fetched.index = Some(*index);
        }
    }
    Ok(fetched)
}

/// Fetches the manifest `reference` (a digest or tag) of `repository`, picks `platform` out
/// of an index (or, with `all_platforms`, takes every image of it), and fetches the configs.
pub async fn resolve(
    client: &Client,
    repository: &str,
    reference: &str,
    platform: &PlatformSpec,
    all_platforms: bool,
) -> anyhow::Result<Resolved> {
    let manifests =
        fetch_manifests(client, repository, reference, Some(platform), all_platforms).await?;
    let mut images = Vec::with_capacity(manifests.images.len());
    for fetched in manifests.images {
        let (config_raw, config) = fetch_config(client, repository, &fetched.manifest).await?;
        images.push(PlatformImage {
            manifest_raw: fetched.raw,
            manifest_digest: fetched.digest,
            manifest_media_type: fetched.media_type,
            manifest: fetched.manifest,
            config_raw,
            config,
            platform: fetched.platform,
        });
    }
    Ok(Resolved {
        top_raw: manifests.top_raw,
        top_media_type: manifests.top_media_type,
        top_digest: manifests.top_digest,
        index: manifests.index,
        images,
    })
}

async fn fetch_child(
    client: &Client,
    repository: &str,
    descriptor: &Descriptor,
) -> anyhow::Result<FetchedManifest> {
    let digest = descriptor.digest().to_string();
    let (found, raw) = client
        .get_manifest(repository, &digest)
        .await?
        .with_context(|| {
            format!("the index names manifest {digest}, but {repository} does not have it")
        })?;
    let manifest = match manifest::parse(&found.media_type, &raw)? {
        Parsed::Manifest(m) => *m,
        Parsed::Index(_) => bail!(
            "manifest {digest} of {repository} is a nested index; nested indexes are not supported"
        ),
    };
    Ok(FetchedManifest {
        raw,
        digest: found.digest,
        media_type: found.media_type,
        manifest,
        platform: descriptor
            .platform()
            .as_ref()
            .and_then(|p| serde_json::to_value(p).ok()),
    })
}

async fn fetch_config(
    client: &Client,
    repository: &str,
    manifest: &ImageManifest,
) -> anyhow::Result<(Vec<u8>, ImageConfiguration)> {
    let descriptor = manifest.config();
    let digest = descriptor.digest().to_string();
    let raw = client
        .fetch_small_blob(repository, &digest, descriptor.size())
        .await
        .with_context(|| format!("fetching config {digest}"))?;
    let config =
        manifest::parse_config(&raw).with_context(|| format!("config {digest} of {repository}"))?;
    let diff_ids = config.rootfs().diff_ids().len();
    let layers = manifest.layers().len();
    if diff_ids != layers {
        bail!("image config {digest} of {repository} lists {diff_ids} diff_ids for {layers} layers: the image is corrupt");
    }
    Ok((raw, config))
}

/// Downloads `blobs` (`(digest, size)`, unique) into `dir/<hex>` with at most `concurrency`
/// at once, reporting each arrival. Returns once all are done or one failed (then the
/// error; the others are cancelled by dropping the returned future).
pub async fn download(
    client: Arc<Client>,
    repository: String,
    blobs: Vec<(String, u64)>,
    dir: PathBuf,
    concurrency: usize,
    progress: Arc<Progress>,
    arrivals: Arc<Arrivals>,
) -> anyhow::Result<()> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (digest, size)) in blobs.into_iter().enumerate() {
        let (client, repository, dir, progress, arrivals, semaphore) = (
            Arc::clone(&client),
            repository.clone(),
            dir.clone(),
            Arc::clone(&progress),
            Arc::clone(&arrivals),
            Arc::clone(&semaphore),
        );
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let path = blob_path(&dir, &digest);
            let result =
                download_one(&client, &repository, &digest, size, &path, &progress, i).await;
            arrivals.arrive(
                &digest,
                result
                    .as_ref()
                    .map(|()| path.clone())
                    .map_err(|e| format!("{e:#}")),
            );
            result
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let result = joined.context("a download task panicked").and_then(|r| r);
        if let Err(e) = result {
            arrivals.fail_all(&format!("{e:#}"));
            return Err(e);
        }
    }
    Ok(())
}

async fn download_one(
    client: &Client,
    repository: &str,
    digest: &str,
    size: u64,
    path: &Path,
    progress: &Progress,
    index: usize,
) -> anyhow::Result<()> {
    let counter = progress.counter(index);
    // Retries (resuming with Range) are the client's: see registry::blob.
    client
        .fetch_blob_to_file(repository, digest, size, path, &counter)
        .await
        .with_context(|| format!("downloading blob {digest}"))?;
    if let Some(item) = progress.item(index) {
        item.finished
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

/// `dir/<hex>` for a digest.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    dir.join(hex)
}
