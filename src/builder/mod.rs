//! `out`'s `build`: a Dockerfile built by an existing OCI builder that needs no daemon
//! (buildah), into an OCI layout in the put's scratch directory, which then goes through the
//! same pusher as every other source ([`sources::from_oci_layout`]).
//!
//! - `request`: params → [`BuildRequest`] (paths, build arguments and their expansion,
//!   labels, secrets, saved images, cache), checked before anything runs;
//! - `registries`: [`RegistryAccess`], the source's credentials and TLS options as buildah's
//!   auth file, `registries.conf` and certificate directories;
//! - `assets`: the image's `assets/` files (buildah's configuration), compiled in;
//! - `workspace`: the private directory a build runs in, removed afterwards, configured from
//!   `assets`;
//! - `buildah`: [`Buildah`], the builder: one `build` call that writes an OCI layout.

pub(crate) mod assets;
mod bases;
mod buildah;
mod registries;
mod request;
mod workspace;

pub use buildah::{program, Buildah, PROGRAM, PROGRAM_VARIABLE};
pub use registries::{dockerfile_images, dockerfile_registries, RegistryAccess};
pub use request::{
    expand, BuildRequest, CacheImage, SavedImage, SecretInput, SecretSource, BUILD_METADATA,
    PROXY_VARIABLES,
};

use crate::image::model::ImageOrIndex;
use crate::image::sources;
use crate::log::Log;
use crate::reference::Reference;
use crate::resource::{PullPolicy, PutParams, Source};
use crate::settings::Settings;
use anyhow::Context as _;
use std::path::Path;

/// What a build takes from the put besides its params: the repository and first tag being
/// pushed (the default cache image) and how to reach registries.
#[derive(Debug, Clone)]
pub struct Target {
    registry: String,
    repository: String,
    tag: String,
    access: RegistryAccess,
    log: Log,
}

impl Target {
    /// For a put of `source` (validated as `settings`) whose first tag is `first_tag`;
    /// notes go to `log`.
    pub fn new(source: &Source, settings: &Settings, first_tag: &str, log: &Log) -> Target {
        Target {
            registry: settings.reference.registry().to_string(),
            repository: settings.reference.name(),
            tag: first_tag.to_string(),
            access: RegistryAccess::new(source, settings),
            log: log.clone(),
        }
    }

    /// Looks up, before the build, the keychain's credentials for every registry the build
    /// of `params` (sources in `dir`) will reach: the repository's, the additional ones and
    /// those its Dockerfile names. A Dockerfile that cannot be read is left for
    /// [`image`] to report.
    pub async fn find_logins(
        &mut self,
        params: &PutParams,
        dir: &Path,
        settings: &Settings,
    ) -> anyhow::Result<()> {
        let dockerfile = request::dockerfile_path(params, dir)
            .and_then(|path| std::fs::read(path).ok())
            .unwrap_or_default();
        let hosts = build_hosts(&self.access, &dockerfile, params);
        self.access
            .add_keychain_logins(&hosts, settings, &self.log)
            .await
    }
}

/// The registries a build reaches: [`RegistryAccess::known_hosts`] for `dockerfile`, plus
/// `cache_repository`'s.
fn build_hosts(access: &RegistryAccess, dockerfile: &[u8], params: &PutParams) -> Vec<String> {
    let mut hosts = access.known_hosts(&String::from_utf8_lossy(dockerfile));
    let cache = params
        .cache_repository
        .as_deref()
        .and_then(|name| Reference::parse(name).ok());
    if let Some(cache) = cache {
        let host = cache.registry().to_ascii_lowercase();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

/// With `pull: never`, every image the Dockerfile names must be supplied by `load_base`,
/// `load_bases` or `cache_from`; the first that is not is an error, before anything runs.
/// (Names built from `ARG`s cannot be checked here; buildah refuses those itself.)
fn check_supplied(dockerfile: &[u8], request: &BuildRequest) -> anyhow::Result<()> {
    if request.pull != PullPolicy::Never {
        return Ok(());
    }
    let supplied: Vec<&str> = request
        .bases
        .iter()
        .chain(&request.cache_from)
        .map(|saved| saved.name.as_str())
        .collect();
    for image in dockerfile_images(&String::from_utf8_lossy(dockerfile)) {
        let name = match (image.tag(), image.digest()) {
            (None, None) => image.clone().with_tag("latest").unwrap_or(image),
            _ => image,
        };
        if !supplied.contains(&name.to_string().as_str()) {
            anyhow::bail!(
                "params.pull is never, but the base {name} ({}) is not supplied by params.load_base, load_bases or cache_from (supplied: {}); supply it or use pull: if-not-exists",
                request.dockerfile.display(),
                if supplied.is_empty() { "none".to_string() } else { supplied.join(", ") }
            );
        }
    }
    Ok(())
}

/// Builds the image `params` describe (paths relative to `dir`) in `scratch` and returns it
/// ready to push. buildah's workspace is removed before this returns; the layout stays in
/// `scratch` for the pusher.
pub fn image(
    params: &PutParams,
    dir: &Path,
    target: &Target,
    scratch: &Path,
) -> anyhow::Result<ImageOrIndex> {
    let scratch = &std::path::absolute(scratch)
        .with_context(|| format!("resolving the scratch directory {}", scratch.display()))?;
    let env = |name: &str| std::env::var(name).ok();
    let request = BuildRequest::from_params(params, dir, &target.repository, &target.tag, &env)?;
    let dockerfile = std::fs::read(&request.dockerfile)
        .with_context(|| format!("params.dockerfile {}", request.dockerfile.display()))?;
    check_supplied(&dockerfile, &request)?;
    let hosts = build_hosts(&target.access, &dockerfile, params);
    let builder = Buildah::new(scratch, &target.access, &hosts, &target.log)?;
    let layout = scratch.join("built");
    let built = builder.build(&request, &layout);
    let loaded: Vec<String> = request
        .bases
        .iter()
        .chain(&request.cache_from)
        .map(|saved| saved.name.clone())
        .collect();
    let bases = match built {
        Ok(()) => builder.pulled_layers(&target.registry, &loaded),
        Err(_) => Vec::new(),
    };
    builder.remove();
    built?;
    let image = sources::from_oci_layout(&layout, None, scratch)
        .context("reading the image buildah built")?;
    share_base_layers(image, &bases, &target.registry, &target.log)
}

/// Points the built image's base layers at the blobs the target registry already has (see
/// [`bases`]), and says how many.
fn share_base_layers(
    image: ImageOrIndex,
    bases: &[bases::BaseLayer],
    registry: &str,
    log: &Log,
) -> anyhow::Result<ImageOrIndex> {
    let ImageOrIndex::Image(local) = image else {
        return Ok(image);
    };
    let config_path = local.config.path()?;
    let config =
        std::fs::read(config_path).with_context(|| format!("reading {}", config_path.display()))?;
    let diff_ids: Vec<String> = serde_json::from_slice::<serde_json::Value>(&config)
        .context("reading the built image's config")?["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let (local, shared) = bases::reuse(local, &diff_ids, bases, registry)?;
    if shared > 0 {
        log.line(format_args!(
            "{shared} base layer(s) are pushed as {registry} has them (mounted, not uploaded)"
        ));
    }
    Ok(ImageOrIndex::Image(local))
}
