//! `out`'s `build`: a Dockerfile built by an existing OCI builder that needs no daemon
//! (buildah), into an OCI layout in the put's scratch directory, which then goes through the
//! same pusher as every other source ([`sources::from_oci_layout`]).
//!
//! - `request`: params → [`BuildRequest`] (paths, build arguments and their expansion,
//!   labels, secrets, saved images, cache), checked before anything runs;
//! - `registries`: [`RegistryAccess`], the source's credentials and TLS options as buildah's
//!   auth file, `registries.conf` and certificate directories;
//! - `workspace`: the private directory a build runs in, removed afterwards;
//! - `buildah`: [`Buildah`], the builder: one `build` call that writes an OCI layout.

mod buildah;
mod registries;
mod request;
mod workspace;

pub use buildah::{Buildah, PROGRAM};
pub use registries::{dockerfile_registries, RegistryAccess};
pub use request::{
    expand, BuildRequest, CacheImage, SavedImage, SecretInput, SecretSource, BUILD_METADATA,
    PROXY_VARIABLES,
};

use crate::image::local::Pushable;
use crate::image::sources;
use crate::resource::{PutParams, Source};
use crate::settings::Settings;
use anyhow::Context as _;
use std::path::Path;

/// What a build takes from the put besides its params: the repository and first tag being
/// pushed (the default cache image) and how to reach registries.
#[derive(Debug, Clone)]
pub struct Target {
    repository: String,
    tag: String,
    access: RegistryAccess,
}

impl Target {
    /// For a put of `source` (validated as `settings`) whose first tag is `first_tag`.
    pub fn new(source: &Source, settings: &Settings, first_tag: &str) -> Target {
        Target {
            repository: settings.reference.name(),
            tag: first_tag.to_string(),
            access: RegistryAccess::new(source, settings),
        }
    }
}

/// Builds the image `params` describe (paths relative to `dir`) in `scratch` and returns it
/// ready to push. buildah's workspace is removed before this returns; the layout stays in
/// `scratch` for the pusher.
pub fn image(
    params: &PutParams,
    dir: &Path,
    target: &Target,
    scratch: &Path,
) -> anyhow::Result<Pushable> {
    let scratch = &std::path::absolute(scratch)
        .with_context(|| format!("resolving the scratch directory {}", scratch.display()))?;
    let env = |name: &str| std::env::var(name).ok();
    let request = BuildRequest::from_params(params, dir, &target.repository, &target.tag, &env)?;
    let dockerfile = std::fs::read(&request.dockerfile)
        .with_context(|| format!("params.dockerfile {}", request.dockerfile.display()))?;
    let hosts = target
        .access
        .known_hosts(&String::from_utf8_lossy(&dockerfile));
    let builder = Buildah::new(scratch, &target.access, &hosts)?;
    let layout = scratch.join("built");
    let built = builder.build(&request, &layout);
    builder.remove();
    built?;
    sources::from_oci_layout(&layout, None, scratch).context("reading the image buildah built")
}
