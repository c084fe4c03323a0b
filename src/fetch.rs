//! Fetching an image from a registry endpoint: resolving the version digest to the manifest
//! for a platform (or every platform), fetching configs, and downloading blobs in parallel to
//! files whose completion the layer applier waits on, in order.

use crate::image::manifest::{self, Parsed, PlatformSpec};
use crate::progress::Progress;
use crate::registry::Client;
use anyhow::{bail, Context as _};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

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

/// Fetches the manifest `reference` (a digest or tag) of `repository`, picks `platform` out
/// of an index (or, with `all_platforms`, takes every image of it), and fetches the configs.
pub async fn resolve(
    client: &Client,
    repository: &str,
    reference: &str,
    platform: &PlatformSpec,
    all_platforms: bool,
) -> anyhow::Result<Resolved> {
    let (top, top_raw) = client
        .get_manifest(repository, reference)
        .await?
        .with_context(|| format!("manifest {reference} no longer exists in {repository}"))?;
    let parsed = manifest::parse(&top.media_type, &top_raw)
        .with_context(|| format!("manifest {reference} of {repository}"))?;
    let mut resolved = Resolved {
        top_media_type: top.media_type.clone(),
        top_digest: top.digest.clone(),
        top_raw: top_raw.clone(),
        index: None,
        images: Vec::new(),
    };
    match parsed {
        Parsed::Manifest(manifest) => {
            let config = fetch_config(client, repository, &manifest).await?;
            resolved.images.push(PlatformImage {
                manifest_raw: top_raw,
                manifest_digest: top.digest,
                manifest_media_type: top.media_type,
                manifest: *manifest,
                config_raw: config.0,
                config: config.1,
                platform: None,
            });
        }
        Parsed::Index(index) => {
            let selected = manifest::select_platform(&index, platform)
                .with_context(|| format!("{repository}@{}", top.digest))?
                .clone();
            let mut wanted: Vec<Descriptor> = vec![selected.clone()];
            if all_platforms {
                wanted.extend(
                    index
                        .manifests()
                        .iter()
                        .filter(|d| d.digest() != selected.digest())
                        .cloned(),
                );
            }
            for descriptor in &wanted {
                resolved
                    .images
                    .push(fetch_platform_image(client, repository, descriptor).await?);
            }
            resolved.index = Some(*index);
        }
    }
    Ok(resolved)
}

async fn fetch_platform_image(
    client: &Client,
    repository: &str,
    descriptor: &Descriptor,
) -> anyhow::Result<PlatformImage> {
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
    let (config_raw, config) = fetch_config(client, repository, &manifest).await?;
    Ok(PlatformImage {
        manifest_raw: raw,
        manifest_digest: found.digest,
        manifest_media_type: found.media_type,
        manifest,
        config_raw,
        config,
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

/// Where each downloaded blob is, once it is: the applier waits on this, in layer order,
/// while downloads finish in any order.
#[derive(Debug, Default)]
pub struct Arrivals {
    state: Mutex<HashMap<String, Result<PathBuf, String>>>,
    changed: Condvar,
}

impl Arrivals {
    fn arrive(&self, digest: &str, result: Result<PathBuf, String>) {
        if let Ok(mut state) = self.state.lock() {
            state.insert(digest.to_string(), result);
        }
        self.changed.notify_all();
    }

    /// Wakes every waiter with `message`: the download as a whole failed.
    pub fn fail_all(&self, message: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.insert(String::new(), Err(message.to_string()));
        }
        self.changed.notify_all();
    }

    /// Blocks until `digest` has arrived (or failed). For blocking threads only.
    pub fn wait(&self, digest: &str) -> anyhow::Result<PathBuf> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("download state poisoned"))?;
        loop {
            if let Some(result) = state.get(digest).or_else(|| state.get("")) {
                return result.clone().map_err(anyhow::Error::msg);
            }
            state = self
                .changed
                .wait(state)
                .map_err(|_| anyhow::anyhow!("download state poisoned"))?;
        }
    }
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
    let mut attempt = 0;
    loop {
        attempt += 1;
        counter.store(0, std::sync::atomic::Ordering::Relaxed);
        match client
            .fetch_blob_to_file(repository, digest, size, path, &counter)
            .await
        {
            Ok(()) => break,
            Err(e) if e.is_temporary() && attempt < 3 => {
                eprintln!("retrying blob {digest} after: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("downloading blob {digest}")),
        }
    }
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
