//! Fetching an image from a registry endpoint: resolving the version digest to the manifest
//! for a platform (or every platform), fetching configs, and downloading blobs in parallel to
//! files whose completion the layer applier ([`crate::image::unpack`]) waits on, in order.

use crate::image::manifest::{self, Parsed, PlatformSpec};
use crate::image::model::{self, Digest, Manifest};
use crate::image::unpack::Arrivals;
use crate::progress::Progress;
use crate::registry::Client;
use anyhow::{bail, Context as _};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One single-platform image as fetched: its manifest (raw, and parsed), the index entry's
/// platform, and its config `C`: a [`Config`] once fetched ([`resolve`]), `()` when only
/// manifests were asked for ([`fetch_manifests`]).
#[derive(Debug, Clone)]
pub struct PlatformImage<C = Config> {
    /// The manifest bytes as the registry sent them, their digest and media type.
    pub raw: Manifest,
    /// The manifest, parsed.
    pub manifest: ImageManifest,
    /// The index entry's platform, when the image came out of an index.
    pub platform: Option<serde_json::Value>,
    /// The config.
    pub config: C,
}

/// An image config, raw and parsed.
#[derive(Debug, Clone)]
pub struct Config {
    /// The bytes as fetched (their digest is the manifest's config digest).
    pub raw: Vec<u8>,
    /// Parsed.
    pub parsed: ImageConfiguration,
}

impl<C> PlatformImage<C> {
    /// The layers' descriptors, digests checked (one we cannot verify, or that is not
    /// safe as a file name, is an error naming the manifest).
    pub fn layers(&self) -> anyhow::Result<Vec<model::Descriptor>> {
        self.manifest
            .layers()
            .iter()
            .map(|d| self.descriptor(d))
            .collect()
    }

    /// The config's descriptor, its digest checked.
    pub fn config_descriptor(&self) -> anyhow::Result<model::Descriptor> {
        self.descriptor(self.manifest.config())
    }

    fn descriptor(&self, d: &Descriptor) -> anyhow::Result<model::Descriptor> {
        let digest = Digest::parse(d.digest().as_ref())
            .with_context(|| format!("manifest {}", self.raw.digest))?;
        Ok(model::Descriptor::new(
            manifest::media_type(d),
            digest,
            d.size(),
        ))
    }
}

/// What a reference resolved to: the top manifest (an index or a manifest) and the
/// single-platform images, with configs `C` (see [`PlatformImage`]).
#[derive(Debug, Clone)]
pub struct Resolved<C = Config> {
    /// The bytes the reference names (an index or a manifest).
    pub top: Manifest,
    /// The index, for a multi-platform image.
    pub index: Option<ImageIndex>,
    /// The images: see [`fetch_manifests`] for which, in what order.
    pub images: Vec<PlatformImage<C>>,
}

/// What [`fetch_manifests`] gives: manifests only.
pub type Manifests = Resolved<()>;

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
    let top = Manifest {
        raw: top_raw,
        digest: top.digest,
        media_type: top.media_type,
    };
    let mut fetched = Manifests {
        top: top.clone(),
        index: None,
        images: Vec::new(),
    };
    match parsed {
        Parsed::Manifest(manifest) => fetched.images.push(PlatformImage {
            raw: top,
            manifest: *manifest,
            platform: None,
            config: (),
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
        let config = fetch_config(client, repository, &fetched.manifest).await?;
        images.push(PlatformImage {
            raw: fetched.raw,
            manifest: fetched.manifest,
            platform: fetched.platform,
            config,
        });
    }
    Ok(Resolved {
        top: manifests.top,
        index: manifests.index,
        images,
    })
}

async fn fetch_child(
    client: &Client,
    repository: &str,
    descriptor: &Descriptor,
) -> anyhow::Result<PlatformImage<()>> {
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
    Ok(PlatformImage {
        raw: Manifest {
            raw,
            digest: found.digest,
            media_type: found.media_type,
        },
        manifest,
        config: (),
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
) -> anyhow::Result<Config> {
    let descriptor = manifest.config();
    let digest = Digest::parse(descriptor.digest().as_ref())
        .with_context(|| format!("the config of an image of {repository}"))?;
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
    Ok(Config {
        raw,
        parsed: config,
    })
}

/// Downloads `blobs` (`(digest, size)`, unique) into `dir/<hex>` with at most `concurrency`
/// at once, reporting each arrival. Returns once all are done or one failed (then the
/// error; the others are cancelled by dropping the returned future).
pub async fn download(
    client: Arc<Client>,
    repository: String,
    blobs: Vec<(Digest, u64)>,
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
    digest: &Digest,
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
pub fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join(digest.hex())
}
