//! `out`: pushes an image. Every source becomes a [`PushPlan`] (local sources through an
//! image on disk; `pull_repository` as blobs in another repository), and one pusher sends it
//! with every tag.

use crate::builder;
use crate::fetch;
use crate::image::compress::{Encoding, LayerOptions};
use crate::image::model::{Blob, ImageOrIndex};
use crate::image::sources;
use crate::log::Log;
use crate::push::{self, BlobSource, PushPlan};
use crate::reference::Reference;
use crate::registry::Client;
use crate::repush;
use crate::resource::{parse_request, Command, PutParams, PutRequest};
use crate::settings::Settings;
use crate::tags::{self, TagRequest};
use crate::upload_ahead;
use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The image sources, in D's precedence.
const SOURCES: &str = "load, build, load_file, import_file, pull_repository, image";

/// Which source a put uses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Load(PathBuf),
    Build(Box<PutParams>),
    LoadFile { path: PathBuf, want: Option<String> },
    ImportFile(PathBuf),
    Pull { repository: String, tag: String },
    Image(String),
    Images(Vec<String>),
}

fn choose_source(params: &PutParams, dir: &Path) -> anyhow::Result<Source> {
    if let Some(images) = &params.images {
        // Several images make their own index: no precedence, any other source is an error.
        let others = params.image_sources();
        if !others.is_empty() {
            bail!("params.images cannot be combined with params.{}: images pushes its own multi-platform index; give one image source", others.join(", params."));
        }
        return Ok(Source::Images(images.clone()));
    }
    if let Some(load) = &params.load {
        return Ok(Source::Load(dir.join(load)));
    }
    if params.build.is_some() {
        return Ok(Source::Build(Box::new(params.clone())));
    }
    if let Some(file) = &params.load_file {
        let want = params
            .load_repository
            .as_ref()
            .map(|repo| format!("{repo}:{}", params.load_tag.as_deref().unwrap_or("latest")));
        if want.is_none() && params.load_tag.is_some() {
            bail!("params.load_tag is set without params.load_repository; give both (or neither, for an archive holding one image)");
        }
        return Ok(Source::LoadFile {
            path: dir.join(file),
            want,
        });
    }
    if let Some(file) = &params.import_file {
        return Ok(Source::ImportFile(dir.join(file)));
    }
    if let Some(repository) = &params.pull_repository {
        return Ok(Source::Pull {
            repository: repository.clone(),
            tag: params.pull_tag.clone().unwrap_or_else(|| "latest".into()),
        });
    }
    if let Some(image) = &params.image {
        return Ok(Source::Image(image.clone()));
    }
    bail!("no image to push: set one of {SOURCES} in params (or images, one image per platform)")
}

/// Runs `out`; `args[0]` is the directory params' paths are relative to. Notes go to `log`.
pub async fn run(input: &[u8], args: &[String], log: &Log) -> anyhow::Result<Value> {
    let dir = args
        .first()
        .map(PathBuf::from)
        .context("`out` needs the sources directory as its first argument")?;
    let request: PutRequest = parse_request(input)?;
    request.source.reject_unsupported(Command::Put)?;
    for note in request
        .source
        .notes(Command::Put)
        .into_iter()
        .chain(request.params.notes())
    {
        log.line(note);
    }
    // R: credentials in params replace the source's for this step.
    let source_with_credentials = request.params.credentials_over(&request.source);
    let settings = Settings::from_source(&source_with_credentials, log)?;
    if settings.reference.digest().is_some() {
        bail!("source.repository names a digest; `out` pushes tags: give the repository (and `tag`) without @digest");
    }
    let params = &request.params;
    let encoding = Encoding::from_params(params.compression.as_deref(), params.compression_level)?;
    let source = choose_source(params, &dir)?;
    // The signing key is read (and decrypted) before anything is pushed.
    let pulled = matches!(source, Source::Pull { .. });
    let signing = crate::sigstore::out::Signing::new(params, &dir, pulled)?;
    let plan = tags::plan(&TagRequest {
        params,
        source_tag: settings.reference.tag(),
        variant: request.source.variant.as_deref(),
        base: &dir,
    })?;
    let target = settings.origin().await?;
    let repository = target.repository.clone();
    let tags = if plan.needs_tag_list() {
        let existing = target
            .client
            .list_tags(&repository)
            .await
            .with_context(|| {
                format!(
                    "listing the tags of {} for bump_aliases",
                    settings.reference.name()
                )
            })?;
        plan.with_aliases(&existing)?
    } else {
        plan.with_aliases(&[])?
    };
    let first_tag = tags
        .first()
        .cloned()
        .context("no tag to push: set tag_file, version or source.tag")?;

    let scratch = tempfile::Builder::new()
        .prefix("image-resource-out.")
        .tempdir()
        .context("creating a scratch directory")?;
    // Blobs uploaded while the image was still being made (see upload_ahead).
    let mut uploaded = Vec::new();
    let plan = match source {
        Source::Pull { repository, tag } => {
            pull_plan(&settings, &repository, &tag, &target.client).await?
        }
        local => {
            // A docker-save tarball the registry may hold already (see repush).
            let options = match docker_archive(&local)? {
                Some((path, want)) => {
                    let candidates: Vec<String> = std::iter::once(first_tag.clone())
                        .chain(settings.reference.tag().map(str::to_string))
                        .collect();
                    let client = &target.client;
                    repush::prepare(client, &repository, &candidates, path, want, encoding, log)
                        .await?
                }
                None => repush::Outcome::Push(LayerOptions {
                    encoding,
                    ..LayerOptions::default()
                }),
            };
            match options {
                repush::Outcome::Unchanged(plan) => plan,
                repush::Outcome::Push(mut options) => {
                    let (ready, ready_rx) = tokio::sync::mpsc::unbounded_channel();
                    options.ready = Some(ready);
                    let ahead = tokio::spawn(upload_ahead::upload(
                        Arc::clone(&target.client),
                        repository.clone(),
                        ready_rx,
                        request.source.max_concurrent_uploads.unwrap_or(4),
                    ));
                    let scratch_path = scratch.path().to_path_buf();
                    let mut build =
                        builder::Target::new(&source_with_credentials, &settings, &first_tag, log);
                    if let Source::Build(params) = &local {
                        build.find_logins(params, &dir, &settings).await?;
                    }
                    let image = tokio::task::spawn_blocking(move || {
                        local_image(local, &dir, &scratch_path, &build, &options)
                    })
                    .await
                    .context("preparing the image panicked");
                    // The options (and so the channel's sender) are gone: the uploads
                    // ahead end with the last ready blob.
                    uploaded = ahead.await.context("uploading ahead panicked")?;
                    if !uploaded.is_empty() {
                        log.line(format_args!(
                            "{} layers uploaded while the image was being made",
                            uploaded.len()
                        ));
                    }
                    PushPlan::from_image(&image??)
                }
            }
        }
    };
    let concurrency = request.source.max_concurrent_uploads.unwrap_or(4);
    push::push_after(
        Arc::clone(&target.client),
        &repository,
        &plan,
        &tags,
        concurrency,
        scratch.path(),
        &uploaded,
    )
    .await
    .with_context(|| format!("pushing to {}", settings.reference.name()))?;
    log.line(format_args!(
        "pushed {}@{} as {}",
        settings.reference.name(),
        plan.top.digest,
        tags.join(", ")
    ));
    let (digest, client) = (plan.top.digest.as_str(), &target.client);
    let signed = signing.after_push(&settings, client, &repository, digest, scratch.path());
    for line in signed.await? {
        log.line(line);
    }
    // The version `check` will report for this image, so a put and the check after it do not
    // make two versions of one push; else the first tag.
    let version_tag = super::check::reported_tag(&settings, &request.source, &tags)
        .unwrap_or_else(|| first_tag.clone());
    // The version's tag first, then the others in the order they were pushed.
    let listed: Vec<&str> = std::iter::once(version_tag.as_str())
        .chain(
            tags.iter()
                .map(String::as_str)
                .filter(|t| *t != version_tag),
        )
        .collect();
    Ok(json!({
        "version": {"tag": version_tag, "digest": plan.top.digest},
        "metadata": [
            {"name": "repository", "value": super::repository_as_written(&request.source)},
            {"name": "tags", "value": listed.join(" ")},
        ],
    }))
}

/// The docker-save tarball and image name of `load_file` and `load`.
fn docker_archive(source: &Source) -> anyhow::Result<Option<(PathBuf, Option<String>)>> {
    Ok(match source {
        Source::LoadFile { path, want } => Some((path.clone(), want.clone())),
        Source::Load(dir) => Some(sources::load_dir_archive(dir)?),
        _ => None,
    })
}

fn local_image(
    source: Source,
    dir: &Path,
    scratch: &Path,
    build: &builder::Target,
    options: &LayerOptions,
) -> anyhow::Result<ImageOrIndex> {
    match source {
        // The sources name the param and the file in their errors.
        Source::Load(path) => sources::from_load_dir_with(&path, scratch, options),
        Source::Build(params) => builder::image(&params, dir, build, scratch),
        Source::LoadFile { path, want } => {
            sources::from_docker_archive_with(&path, want.as_deref(), scratch, options)
        }
        Source::ImportFile(path) => {
            sources::from_rootfs_tarball_with(&path, scratch, options.encoding)
        }
        Source::Image(pattern) => sources::from_image_path_with(dir, &pattern, scratch, options),
        Source::Images(patterns) => sources::from_images(dir, &patterns, scratch),
        Source::Pull { .. } => bail!("internal: pull_repository is not a local source"),
    }
}

/// `pull_repository`: the image (every platform of an index) as blobs in the other
/// repository: mounted when it is on the target's registry, copied otherwise.
async fn pull_plan(
    settings: &Settings,
    repository: &str,
    tag: &str,
    target: &Arc<Client>,
) -> anyhow::Result<PushPlan> {
    let reference = Reference::parse(repository)
        .with_context(|| format!("params.pull_repository {repository:?}"))?
        .with_tag(tag)
        .with_context(|| format!("params.pull_tag {tag:?}"))?;
    let host = settings.api_host_of(&reference);
    let client = if host == target.host() {
        Arc::clone(target)
    } else {
        Arc::new(settings.client_for(&reference).await?)
    };
    let from = reference.repository().to_string();
    // Manifests only: the config is a blob like the layers (its digest and size are in the
    // manifest), so on the same registry nothing at all is downloaded.
    let fetched = fetch::fetch_manifests(&client, &from, &reference.reference_string(), None, true)
        .await
        .with_context(|| format!("params.pull_repository {reference}"))?;
    let is_index = fetched.index.is_some();
    let mut blobs: Vec<Blob> = Vec::new();
    let mut children = Vec::new();
    for image in fetched.images {
        let all = std::iter::once(image.config_descriptor()?).chain(image.layers()?);
        for descriptor in all {
            if !blobs.iter().any(|b| b.digest == descriptor.digest) {
                blobs.push(Blob {
                    digest: descriptor.digest,
                    media_type: descriptor.media_type,
                    size: descriptor.size,
                    source: BlobSource::Remote {
                        client: Some(Arc::clone(&client)),
                        repository: from.clone(),
                    },
                });
            }
        }
        if is_index {
            children.push(image.raw);
        }
    }
    Ok(PushPlan {
        blobs,
        children,
        top: fetched.top,
    })
}
