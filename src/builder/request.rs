//! [`BuildRequest`]: `out`'s build params turned into what the builder runs. Paths are
//! resolved against the sources directory (`argv[1]`); build arguments are the proxy
//! variables, then `build_args` (Concourse's build metadata variables expanded), then
//! `build_args_file` (a later source wins for the same name); labels are `labels`, then
//! `labels_file`; secrets are read here. Every file and variable is checked before the
//! build starts, and errors name the param and the file.

use crate::reference::{self, Reference};
use crate::resource::{BuildSecret, PullPolicy, PutParams};
use crate::secret::Secret;
use anyhow::{bail, Context as _};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Concourse's build metadata variables, expanded as `$NAME` or `${NAME}` in `build_args`.
pub const BUILD_METADATA: [&str; 10] = [
    "BUILD_ID",
    "BUILD_NAME",
    "BUILD_JOB_NAME",
    "BUILD_PIPELINE_NAME",
    "BUILD_PIPELINE_INSTANCE_VARS",
    "BUILD_TEAM_NAME",
    "BUILD_TEAM_ID",
    "BUILD_CREATED_BY",
    "ATC_EXTERNAL_URL",
    "BUILD_URL",
];

/// Proxy variables passed on as build arguments when set, as D does (plus upper case).
pub const PROXY_VARIABLES: [&str; 6] = [
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
];

/// Everything one build needs, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile.
    pub dockerfile: PathBuf,
    /// `--target`: the stage to stop at.
    pub target: Option<String>,
    /// Build arguments by name.
    pub build_args: BTreeMap<String, String>,
    /// Labels by name.
    pub labels: BTreeMap<String, String>,
    /// Secrets for `RUN --mount=type=secret,id=...`.
    pub secrets: Vec<SecretInput>,
    /// Saved images (`load_base`, `load_bases`) to load before the build.
    pub bases: Vec<SavedImage>,
    /// Saved images (`cache_from`) to load as cache candidates.
    pub cache_from: Vec<SavedImage>,
    /// `cache: true`: the repository and tag of the previous image.
    pub cache: Option<CacheImage>,
    /// `pull`: whether bases are resolved against their registry.
    pub pull: PullPolicy,
}

/// One build secret: its id and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInput {
    /// The id `RUN --mount=type=secret,id=ID` names.
    pub id: String,
    /// Its value.
    pub source: SecretSource,
}

/// Where a secret's value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file (`{source: path}`), resolved.
    File(PathBuf),
    /// An environment variable's value (`{env: NAME}`), read already; never printed.
    Value(Secret),
}

/// A directory written by `in` with `save: true`: the docker-save tarball and the name
/// it is given in the builder's storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedImage {
    /// `<dir>/image`.
    pub archive: PathBuf,
    /// `registry/repository:tag`, normalised (`busybox` → `docker.io/library/busybox:latest`).
    pub name: String,
}

/// `cache: true`: the image pushed before, and the repository buildah keeps its layer
/// cache in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheImage {
    /// `registry/repository` being pushed.
    pub repository: String,
    /// `cache_tag`, default the first tag being pushed.
    pub tag: String,
    /// `registry/repository` of buildah's per-step cache images (`--cache-from`,
    /// `--cache-to`): `cache_repository`, default [`CacheImage::repository`].
    pub layers: String,
}

impl BuildRequest {
    /// Checks the params and reads their files; `dir` is `out`'s sources directory,
    /// `repository` and `first_tag` what is being pushed, `env` the environment.
    pub fn from_params(
        params: &PutParams,
        dir: &Path,
        repository: &str,
        first_tag: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<BuildRequest> {
        let build = params
            .build
            .as_deref()
            .context("internal: no params.build")?;
        // buildah runs in another working directory: every path must be absolute.
        let dir = &std::path::absolute(dir)
            .with_context(|| format!("resolving the sources directory {}", dir.display()))?;
        let context = dir.join(build);
        if !context.is_dir() {
            bail!(
                "params.build: {} is not a directory (the build context, relative to the sources directory)",
                context.display()
            );
        }
        let dockerfile = dockerfile_path(params, dir).unwrap_or_else(|| context.join("Dockerfile"));
        if !dockerfile.is_file() {
            bail!(
                "params.dockerfile: {} is not a file (default: <build>/Dockerfile)",
                dockerfile.display()
            );
        }
        let mut build_args = BTreeMap::new();
        for name in PROXY_VARIABLES {
            if let Some(value) = env(name).filter(|v| !v.is_empty()) {
                build_args.insert(name.to_string(), value);
            }
        }
        for (name, value) in &params.build_args {
            build_args.insert(name.clone(), expand(value, env));
        }
        if let Some(file) = &params.build_args_file {
            build_args.extend(read_string_map(&dir.join(file), "params.build_args_file")?);
        }
        let mut labels = params.labels.clone();
        if let Some(file) = &params.labels_file {
            labels.extend(read_string_map(&dir.join(file), "params.labels_file")?);
        }
        let secrets = params
            .secrets
            .iter()
            .map(|(id, secret)| secret_input(id, secret, dir, env))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let bases = params
            .load_base
            .iter()
            .map(|d| ("params.load_base", d))
            .chain(params.load_bases.iter().map(|d| ("params.load_bases", d)))
            .map(|(param, d)| saved_image(&dir.join(d), param))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let cache_from = params
            .cache_from
            .iter()
            .map(|d| saved_image(&dir.join(d), "params.cache_from"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let cache = if params.cache {
            let tag = params.cache_tag.as_deref().unwrap_or(first_tag);
            reference::validate_tag(tag)
                .map_err(|e| anyhow::anyhow!("params.cache_tag {tag:?}: {}", e.reason))?;
            let layers = match &params.cache_repository {
                Some(name) => cache_repository(name)?,
                None => repository.to_string(),
            };
            Some(CacheImage {
                repository: repository.to_string(),
                tag: tag.to_string(),
                layers,
            })
        } else {
            if let Some(name) = &params.cache_repository {
                bail!("params.cache_repository ({name}) is only used with params.cache: true; set cache: true or remove it");
            }
            None
        };
        Ok(BuildRequest {
            context,
            dockerfile,
            target: params.target_name.clone().filter(|t| !t.is_empty()),
            build_args,
            labels,
            secrets,
            bases,
            cache_from,
            cache,
            pull: params.pull,
        })
    }
}

/// `cache_repository`: a repository name (normalised, `registry/path`) without tag or digest.
fn cache_repository(name: &str) -> anyhow::Result<String> {
    let reference = Reference::parse(name).map_err(|e| {
        anyhow::anyhow!(
            "params.cache_repository {name:?} is not a repository: {}",
            e.reason
        )
    })?;
    if reference.tag().is_some() || reference.digest().is_some() {
        bail!("params.cache_repository {name:?}: give a repository without a tag or digest (the cache images are tagged by buildah's cache keys)");
    }
    Ok(reference.name())
}

/// The Dockerfile of `params` (sources in `dir`): `dockerfile`, else `<build>/Dockerfile`;
/// `None` without `build`.
pub fn dockerfile_path(params: &PutParams, dir: &Path) -> Option<PathBuf> {
    match (&params.dockerfile, &params.build) {
        (Some(file), _) => Some(dir.join(file)),
        (None, Some(build)) => Some(dir.join(build).join("Dockerfile")),
        (None, None) => None,
    }
}

/// Expands `$NAME` and `${NAME}` for the [`BUILD_METADATA`] variables (unset ones become
/// empty, as D does); every other `$` is left as written.
pub fn expand(value: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, remainder) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => ("", after),
            },
            None => {
                let len = after
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                (&after[..len], &after[len..])
            }
        };
        if BUILD_METADATA.contains(&name) {
            out.push_str(&env(name).unwrap_or_default());
            rest = remainder;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Reads a JSON object of string, number or boolean values (`build_args_file`,
/// `labels_file`).
fn read_string_map(path: &Path, param: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let what = format!("{param} {}", path.display());
    let text = std::fs::read(path).with_context(|| format!("{what}: reading the file"))?;
    let value: Value = serde_json::from_slice(&text).map_err(|e| {
        anyhow::anyhow!("{what}: not valid JSON ({e}); expected an object of NAME: value")
    })?;
    let Value::Object(object) = value else {
        bail!(
            "{what}: expected a JSON object of NAME: value, got {}",
            kind(&value)
        );
    };
    object
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key, s)),
            Value::Number(n) => Ok((key, n.to_string())),
            Value::Bool(b) => Ok((key, b.to_string())),
            other => bail!(
                "{what}: the value of {key:?} is {}; expected a string, number or boolean",
                kind(&other)
            ),
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn secret_input(
    id: &str,
    secret: &BuildSecret,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<SecretInput> {
    if id.is_empty() || id.contains([',', '=', '/']) || id == "." || id == ".." {
        bail!("params.secrets: {id:?} is not a usable secret id (no `,`, `=` or `/`)");
    }
    let source = match secret {
        BuildSecret::Env(name) => match env(name) {
            Some(value) => SecretSource::Value(Secret::new(value)),
            None => bail!(
                "params.secrets.{id}: the environment variable {name} is not set (set it in the step's `params` or the task's environment)"
            ),
        },
        BuildSecret::Source(path) => {
            let path = dir.join(path);
            if !path.is_file() {
                bail!("params.secrets.{id}: {} is not a file", path.display());
            }
            if path.to_string_lossy().contains(',') {
                bail!(
                    "params.secrets.{id}: buildah cannot take a secret path with a comma: {}",
                    path.display()
                );
            }
            SecretSource::File(path)
        }
    };
    Ok(SecretInput {
        id: id.to_string(),
        source,
    })
}

/// A directory from `in` with `save: true`: `image`, `repository`, `tag`.
fn saved_image(dir: &Path, param: &str) -> anyhow::Result<SavedImage> {
    let what = format!("{param} {}", dir.display());
    let archive = dir.join("image");
    if !archive.is_file() {
        bail!("{what}: no `image` file (give a directory that `in` wrote with `save: true`)");
    }
    let repository = std::fs::read_to_string(dir.join("repository"))
        .with_context(|| format!("{what}: reading its `repository` file"))?;
    let tag = match std::fs::read_to_string(dir.join("tag")) {
        Ok(tag) if !tag.trim().is_empty() => tag.trim().to_string(),
        _ => "latest".to_string(),
    };
    let reference = Reference::parse(repository.trim())
        .and_then(|r| r.with_tag(&tag))
        .map_err(|e| {
            anyhow::anyhow!(
                "{what}: {}:{tag} is not an image name: {}",
                repository.trim(),
                e.reason
            )
        })?;
    if reference.digest().is_some() {
        bail!("{what}: its `repository` file names a digest; expected registry/repository");
    }
    Ok(SavedImage {
        archive,
        name: reference.to_string(),
    })
}

#[cfg(test)]
mod tests;
