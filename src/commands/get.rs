//! `in`: fetches the version's image into the destination directory (`argv[1]`).
//!
//! Steps: write `repository`, `tag`, `digest`; resolve the manifest for the platform; fetch
//! the config; download layers in parallel while applying them in order to `rootfs/` (one
//! layer stream feeds every output); then write the archives asked for and the metadata
//! files. On failure everything written is removed, so nothing half-done looks complete.

use crate::fetch::{self, PlatformImage, Resolved};
use crate::image::archive::{self, OciIndexSpec};
use crate::image::manifest::PlatformSpec;
use crate::image::metadata;
use crate::image::model::{Blob, Descriptor, Digest, Image};
use crate::image::unpack::{self, Arrivals};
use crate::log::Log;
use crate::pattern;
use crate::progress::{self, Progress};
use crate::resource::{parse_request, Command, GetParams, GetRequest, Version};
use crate::settings::{first_found, first_success, Endpoint, Settings};
use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Name of the scratch directory inside the destination.
const SCRATCH: &str = ".image-resource-tmp";

/// Which outputs the params ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outputs {
    rootfs_dir: bool,
    rootfs_tar: bool,
    /// `save`: `image`, a docker-save tarball.
    docker_save: bool,
    /// `format: oci`: `image.tar`, also a docker-save tarball (what R writes for it, through
    /// go-containerregistry's `tarball`), not a tarred OCI layout.
    image_tar: bool,
    /// `format: oci-layout`: `oci/`, an OCI image layout directory.
    oci_layout: bool,
}

impl Outputs {
    fn from_params(params: &GetParams) -> Outputs {
        let format = params.format.as_deref().unwrap_or("rootfs");
        Outputs {
            rootfs_dir: format == "rootfs" || params.rootfs,
            rootfs_tar: params.rootfs,
            docker_save: params.save,
            image_tar: format == "oci",
            oci_layout: format == "oci-layout",
        }
    }

    /// Whether any output is written from the downloaded blobs after the rootfs.
    fn needs_blobs(&self) -> bool {
        self.docker_save || self.image_tar || self.oci_layout
    }
}

/// Runs `in`; `args[0]` is the destination directory. Notes and progress go to `log`.
pub async fn run(input: &[u8], args: &[String], log: &Log) -> anyhow::Result<Value> {
    let dest = args
        .first()
        .map(PathBuf::from)
        .context("`in` needs the destination directory as its first argument")?;
    let request: GetRequest = parse_request(input)?;
    request.source.reject_unsupported(Command::Get)?;
    for note in request.source.notes(Command::Get) {
        log.line(note);
    }
    // R: credentials in params replace the source's for this step.
    let settings = Settings::from_source(&request.params.credentials_over(&request.source), log)?;
    std::fs::create_dir_all(&dest)
        .with_context(|| format!("creating the destination directory {}", dest.display()))?;
    let mut written = Written::new(&dest, log);
    match get(&settings, &request, &dest, &mut written, log).await {
        Ok(response) => {
            written.keep();
            Ok(response)
        }
        Err(e) => Err(e),
    }
}

async fn get(
    settings: &Settings,
    request: &GetRequest,
    dest: &Path,
    written: &mut Written,
    log: &Log,
) -> anyhow::Result<Value> {
    let source = &request.source;
    let reference = &settings.reference;
    // Bad patterns fail before anything is fetched (R finds out after the download).
    let label_regex =
        pattern::compile_optional("source.label_regex", source.label_regex.as_deref())?;
    let annotation_regex = pattern::compile_optional(
        "source.annotation_regex",
        source.annotation_regex.as_deref(),
    )?;
    let verify = source.verify.as_ref();
    let verifier = crate::sigstore::verify::Verifier::from_options(verify, reference)?;
    let endpoints = settings.pull_endpoints().await?;
    let version = match &request.version {
        Some(version) => version.clone(),
        None => current_version(settings, &endpoints).await?,
    };
    if let Some(verifier) = verifier {
        let name = reference.name();
        verifier
            .require(&endpoints, &name, &version.digest, log)
            .await?;
    }
    // As R: the version's tag first; D's versions carry none, so then the source's tag.
    let tag = version
        .tag
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| reference.tag().map(str::to_string))
        .unwrap_or_else(|| "latest".to_string());
    // As written in `source.repository` (D and R do not normalise it), less a tag or digest
    // carried there, so that `repository:tag` still names the image.
    let repository = super::repository_as_written(source);
    written.file("repository", repository.as_bytes())?;
    written.file("tag", tag.as_bytes())?;
    written.file("digest", version.digest.as_bytes())?;
    let mut metadata = vec![
        json!({"name": "repository", "value": repository}),
        json!({"name": "tag", "value": tag}),
    ];
    let response_version = json!({"digest": version.digest, "tag": tag});
    let outputs = Outputs::from_params(&request.params);
    let platform = super::platform_spec(
        request
            .params
            .platform
            .as_ref()
            .or(source.platform.as_ref()),
    );
    let wants_matches = label_regex.is_some() || annotation_regex.is_some();
    let matching = |image: &PlatformImage| {
        let label_matches = |key: &str| label_regex.as_ref().is_some_and(|re| re.is_match(key));
        let annotation_matches =
            |key: &str| annotation_regex.as_ref().is_some_and(|re| re.is_match(key));
        metadata::matching_entries(
            &image.config.parsed,
            &image.manifest,
            &label_matches,
            &annotation_matches,
        )
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
    };
    if request.params.skip_download {
        if wants_matches {
            // R reads labels and annotations even without the download: manifests and the
            // config only.
            let (_, resolved) = first_success(&endpoints, async |endpoint| {
                fetch::resolve(
                    &endpoint.client,
                    &endpoint.repository,
                    &version.digest,
                    &platform,
                    false,
                )
                .await
                .with_context(|| {
                    format!(
                        "fetching {repository}@{} from {}",
                        version.digest, endpoint.label
                    )
                })
            })
            .await?;
            if let Some(image) = resolved.images.first() {
                metadata.extend(matching(image));
            }
        }
        return Ok(json!({"version": response_version, "metadata": metadata}));
    }

    let scratch = written.dir(SCRATCH)?;
    let rootfs_path = dest.join("rootfs");
    let job = Job {
        version: &version,
        repository: &repository,
        outputs,
        platform: &platform,
        scratch: &scratch,
        rootfs: &rootfs_path,
        max_concurrent_downloads: source.max_concurrent_downloads,
        log,
    };
    if outputs.rootfs_dir {
        written.track(&rootfs_path);
    }
    // A mirror that fails part-way (a manifest, a blob, a layer) is left whole: what it
    // wrote is removed and the origin is asked for everything again.
    let mut failures: Vec<String> = Vec::new();
    let mut fetched = None;
    for (i, endpoint) in endpoints.iter().enumerate() {
        match fetch_and_apply(&job, endpoint).await {
            Ok(resolved) => {
                fetched = Some(resolved);
                break;
            }
            Err(e) if i + 1 < endpoints.len() => {
                log.line(format_args!(
                    "{} failed, starting over from {}: {e:#}",
                    endpoint.label,
                    endpoints[i + 1].label
                ));
                failures.push(format!("{}: {e:#}", endpoint.label));
                job.clear()?;
            }
            Err(e) if failures.is_empty() => return Err(e),
            Err(e) => bail!("{e:#} (before that, {})", failures.join("; ")),
        }
    }
    let (resolved, image) = fetched.context("no registry endpoint to try")?;
    let blobs_dir = job.blobs_dir();

    let blob_file = |d: &Descriptor| {
        Blob::file(
            d.digest.clone(),
            d.media_type.clone(),
            d.size,
            fetch::blob_path(&blobs_dir, &d.digest),
        )
    };
    let local = local_image(&scratch, &image, &blob_file)?;
    let repo_tag = format!("{repository}:{tag}");
    if outputs.rootfs_tar {
        let path = dest.join("rootfs.tar");
        written.track(&path);
        archive::write_rootfs_tar(&rootfs_path, &path).context("writing rootfs.tar")?;
    }
    if outputs.docker_save {
        let path = dest.join("image");
        written.track(&path);
        archive::write_docker_archive(&path, &local, std::slice::from_ref(&repo_tag))
            .context("writing the docker-save tarball `image`")?;
    }
    if outputs.image_tar {
        let path = dest.join("image.tar");
        written.track(&path);
        archive::write_docker_archive(&path, &local, std::slice::from_ref(&repo_tag))
            .context("writing image.tar")?;
    }
    if outputs.oci_layout {
        let path = dest.join("oci");
        written.track(&path);
        write_layout(&path, &scratch, &resolved, &tag, &blob_file)
            .context("writing the OCI layout oci/")?;
    }

    let size: u64 = image.manifest.layers().iter().map(|d| d.size()).sum();
    let image_id = image.manifest.config().digest().to_string();
    written.file("image-id", image_id.as_bytes())?;
    written.json(
        "metadata.json",
        &metadata::metadata_json(&image.config.parsed),
    )?;
    written.json("labels.json", &metadata::labels_json(&image.config.parsed))?;
    written.json(
        "docker_inspect.json",
        &metadata::docker_inspect(
            &image.config.raw,
            &image_id,
            None,
            &repo_tag,
            &format!("{repository}@{}", version.digest),
        )?,
    )?;
    metadata.extend(matching(&image));
    metadata.push(json!({"name": "image_id", "value": image_id}));
    metadata.push(json!({"name": "size", "value": progress::mb(size)}));
    for (key, value) in metadata::labels(&image.config.parsed) {
        metadata.push(json!({"name": format!("label {key}"), "value": value}));
    }
    std::fs::remove_dir_all(&scratch)
        .with_context(|| format!("removing the scratch directory {}", scratch.display()))?;
    Ok(json!({"version": response_version, "metadata": metadata}))
}

/// With no version (`{}`), the source's tag (or digest) as it is now: the mirror's
/// "not found" falls through to the origin; the origin's is an error.
async fn current_version(settings: &Settings, endpoints: &[Endpoint]) -> anyhow::Result<Version> {
    let reference = &settings.reference;
    let wanted = reference.reference_string();
    let (_, found) = first_found(
        endpoints,
        async |endpoint| {
            endpoint
                .client
                .head_manifest(&endpoint.repository, &wanted)
                .await
                .with_context(|| format!("resolving {reference} on {}", endpoint.label))
        },
        |found: &Option<_>| found.is_some(),
    )
    .await?;
    let descriptor = found.with_context(|| {
        format!("no version was given and {reference} does not exist: nothing to fetch")
    })?;
    Ok(Version {
        digest: descriptor.digest.to_string(),
        tag: reference.tag().map(str::to_string),
    })
}

/// What one attempt at fetching needs, the same for every endpoint.
struct Job<'a> {
    version: &'a Version,
    repository: &'a str,
    outputs: Outputs,
    platform: &'a PlatformSpec,
    scratch: &'a Path,
    rootfs: &'a Path,
    max_concurrent_downloads: Option<usize>,
    log: &'a Log,
}

impl Job<'_> {
    fn blobs_dir(&self) -> PathBuf {
        self.scratch.join("blobs")
    }

    /// Removes what a failed attempt wrote (the blobs and `rootfs/`).
    fn clear(&self) -> anyhow::Result<()> {
        for path in [self.blobs_dir(), self.rootfs.to_path_buf()] {
            if std::fs::symlink_metadata(&path).is_ok() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {} before starting over", path.display()))?;
            }
        }
        Ok(())
    }
}

/// Resolves the version on `endpoint`, downloads every blob the outputs need, and applies
/// the selected image's layers to `rootfs/` as they arrive; returns what it resolved and
/// the selected image.
async fn fetch_and_apply(
    job: &Job<'_>,
    endpoint: &Endpoint,
) -> anyhow::Result<(Resolved, PlatformImage)> {
    let Job {
        version,
        repository,
        outputs,
        log,
        ..
    } = *job;
    let resolved = fetch::resolve(
        &endpoint.client,
        &endpoint.repository,
        &version.digest,
        job.platform,
        outputs.oci_layout,
    )
    .await
    .with_context(|| {
        format!(
            "fetching {repository}@{} from {}",
            version.digest, endpoint.label
        )
    })?;
    let image = resolved
        .images
        .first()
        .context("the manifest resolved to no image")?
        .clone();
    let blobs_dir = job.blobs_dir();
    std::fs::create_dir_all(&blobs_dir)
        .with_context(|| format!("creating {}", blobs_dir.display()))?;

    // Every blob to download: the selected image's layers first (the applier waits on them
    // in order), then other platforms' (oci-layout only). Unique by digest.
    let mut blobs: Vec<(Digest, u64)> = Vec::new();
    for img in &resolved.images {
        for layer in img.layers()? {
            if !blobs.iter().any(|(d, _)| *d == layer.digest) {
                blobs.push((layer.digest, layer.size));
            }
        }
    }
    let started = Instant::now();
    let sizes: Vec<(String, u64)> = blobs.iter().map(|(d, s)| (d.to_string(), *s)).collect();
    let progress = Progress::new("downloading", &sizes);
    let reporter = progress.report(log);
    let arrivals = Arc::new(Arrivals::default());
    let concurrency = job
        .max_concurrent_downloads
        .unwrap_or(blobs.len().clamp(3, 8));
    let client = Arc::clone(&endpoint.client);
    let downloads = fetch::download(
        client,
        endpoint.repository.clone(),
        blobs.clone(),
        blobs_dir.clone(),
        concurrency,
        Arc::clone(&progress),
        Arc::clone(&arrivals),
    );
    let applier = if outputs.rootfs_dir {
        let layers = image.layers()?;
        let diff_ids = image.config.parsed.rootfs().diff_ids().clone();
        let arrivals = Arc::clone(&arrivals);
        let path = job.rootfs.to_path_buf();
        let keep_blobs = outputs.needs_blobs();
        let log = log.clone();
        Some(tokio::task::spawn_blocking(move || {
            unpack::apply_all(&path, &layers, &diff_ids, &arrivals, keep_blobs, &log)
        }))
    } else {
        None
    };
    // Downloads run on this task, the applier on a blocking thread that waits for each
    // layer in turn. A failed download wakes the applier (through `arrivals`); a failed
    // apply cancels the downloads. Both have stopped before this returns, so cleanup never
    // races a writer.
    let total: u64 = blobs.iter().map(|(_, s)| s).sum();
    let apply_failed = tokio::sync::Notify::new();
    let downloaded = async {
        tokio::select! {
            result = downloads => result?,
            () = apply_failed.notified() => bail!("cancelled"),
        }
        drop(reporter);
        log.line(format_args!(
            "downloaded {} blobs, {} in {:.1} s",
            blobs.len(),
            progress::mb(total),
            started.elapsed().as_secs_f64()
        ));
        anyhow::Ok(())
    };
    let applied = async {
        let Some(applier) = applier else {
            return anyhow::Ok(());
        };
        let result = applier
            .await
            .context("the layer applier panicked")
            .and_then(|r| r);
        if result.is_err() {
            apply_failed.notify_one();
        }
        result?;
        log.line(format_args!(
            "unpacked {} layers into rootfs/ in {:.1} s",
            image.manifest.layers().len(),
            started.elapsed().as_secs_f64()
        ));
        anyhow::Ok(())
    };
    match tokio::join!(downloaded, applied) {
        (_, Err(e)) => Err(e),
        (Err(e), Ok(())) => Err(e),
        (Ok(()), Ok(())) => Ok((resolved, image)),
    }
}

fn local_image(
    scratch: &Path,
    image: &PlatformImage,
    blob_file: &dyn Fn(&Descriptor) -> Blob,
) -> anyhow::Result<Image> {
    let config = image.config_descriptor()?;
    let config_file = archive::write_bytes_blob(scratch, &image.config.raw, &config.media_type)?;
    if config_file.digest != config.digest {
        bail!(
            "config digest changed on disk: expected {}, wrote {}",
            config.digest,
            config_file.digest
        );
    }
    Ok(Image {
        manifest: image.raw.clone(),
        config: config_file,
        layers: image.layers()?.iter().map(blob_file).collect(),
    })
}

fn write_layout(
    path: &Path,
    scratch: &Path,
    resolved: &Resolved,
    tag: &str,
    blob_file: &dyn Fn(&Descriptor) -> Blob,
) -> anyhow::Result<()> {
    let mut blobs: Vec<Blob> = Vec::new();
    for image in &resolved.images {
        let local = local_image(scratch, image, blob_file)?;
        blobs.push(archive::write_bytes_blob(
            scratch,
            &image.raw.raw,
            &image.raw.media_type,
        )?);
        blobs.push(local.config);
        for layer in local.layers {
            if !blobs.iter().any(|b| b.digest == layer.digest) {
                blobs.push(layer);
            }
        }
    }
    if resolved.index.is_some() {
        // The index itself is a blob of the layout; a single manifest already is one.
        blobs.push(archive::write_bytes_blob(
            scratch,
            &resolved.top.raw,
            &resolved.top.media_type,
        )?);
    }
    let top = resolved
        .top
        .descriptor()
        .with_ref_name(Some(tag.to_string()));
    archive::write_oci_layout(
        path,
        &OciIndexSpec {
            manifests: vec![top],
        },
        &blobs,
    )
}

/// What `in` wrote, removed again unless [`Written::keep`] is called.
struct Written {
    dest: PathBuf,
    paths: Vec<PathBuf>,
    kept: bool,
    log: Log,
}

impl Written {
    fn new(dest: &Path, log: &Log) -> Written {
        Written {
            dest: dest.to_path_buf(),
            paths: Vec::new(),
            kept: false,
            log: log.clone(),
        }
    }

    fn track(&mut self, path: &Path) {
        self.paths.push(path.to_path_buf());
    }

    fn file(&mut self, name: &str, contents: &[u8]) -> anyhow::Result<()> {
        let path = self.dest.join(name);
        self.track(&path);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    }

    fn json(&mut self, name: &str, value: &Value) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(value)?;
        self.file(name, &bytes)
    }

    fn dir(&mut self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.dest.join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing a stale {}", path.display()))?;
        }
        self.track(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(path)
    }

    fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for path in self.paths.iter().rev() {
            let removed = match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
                Ok(_) => std::fs::remove_file(path),
                Err(_) => Ok(()),
            };
            if let Err(e) = removed {
                self.log.line(format_args!(
                    "warning: could not remove {} after the failure: {e}",
                    path.display()
                ));
            }
        }
    }
}
