//! The steps' `params`: `in`'s [`GetParams`] and `out`'s [`PutParams`].

use super::forms::{build_args, format, nullable, string_or_number};
use super::{Platform, Source};
use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `in`'s params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// `rootfs` (default), `oci` or `oci-layout`.
    #[serde(default, deserialize_with = "format")]
    pub format: Option<String>,
    /// D: also write a `docker save` tarball at `image`.
    #[serde(default, deserialize_with = "nullable")]
    pub save: bool,
    /// D: also write `rootfs.tar`.
    #[serde(default, deserialize_with = "nullable")]
    pub rootfs: bool,
    /// Write only the `repository`, `tag` and `digest` files.
    #[serde(default, deserialize_with = "nullable")]
    pub skip_download: bool,
    /// Overrides `source.platform`.
    pub platform: Option<Platform>,
    /// R: overrides `source.username` for this step (short-lived credentials).
    pub username: Option<String>,
    /// R: overrides `source.password` for this step.
    pub password: Option<Secret>,
    /// R: overrides `source.aws_access_key_id` for this step.
    pub aws_access_key_id: Option<String>,
    /// R: overrides `source.aws_secret_access_key` for this step.
    pub aws_secret_access_key: Option<Secret>,
    /// R: overrides `source.aws_session_token` for this step.
    pub aws_session_token: Option<Secret>,
    /// R: overrides `source.aws_region` for this step.
    pub aws_region: Option<String>,
    /// R: overrides `source.aws_ecr_registry_id` for this step.
    #[serde(default, deserialize_with = "string_or_number")]
    pub aws_ecr_registry_id: Option<String>,
    /// R: overrides `source.aws_role_arn` for this step.
    pub aws_role_arn: Option<String>,
    /// R: overrides `source.aws_role_arns` for this step.
    #[serde(default, deserialize_with = "nullable")]
    pub aws_role_arns: Vec<String>,
}

/// `out`'s params: one image source, build options and tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutParams {
    /// Build context directory.
    pub build: Option<String>,
    /// Dockerfile (default `<build>/Dockerfile`).
    pub dockerfile: Option<String>,
    /// The build stage to stop at.
    pub target_name: Option<String>,
    /// Build arguments; numbers and booleans become their JSON text.
    #[serde(default, deserialize_with = "build_args")]
    pub build_args: BTreeMap<String, String>,
    /// A JSON file of build arguments.
    pub build_args_file: Option<String>,
    /// Labels for the built image.
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// A JSON file of labels.
    pub labels_file: Option<String>,
    /// Use the previously pushed image as a build cache.
    #[serde(default, deserialize_with = "nullable")]
    pub cache: bool,
    /// The tag to pull for `cache` (default: the tag being pushed).
    #[serde(default, deserialize_with = "string_or_number")]
    pub cache_tag: Option<String>,
    /// With `cache`: the repository buildah keeps its per-step cache images in (default: the
    /// repository being pushed).
    pub cache_repository: Option<String>,
    /// Directories from `in` (with `save`) to use as cache.
    #[serde(default, deserialize_with = "nullable")]
    pub cache_from: Vec<String>,
    /// When bases are resolved against their registry (default `always`).
    #[serde(default, deserialize_with = "nullable")]
    pub pull: PullPolicy,
    /// A directory from `in` (with `save`) holding the base image.
    pub load_base: Option<String>,
    /// Several such directories.
    #[serde(default, deserialize_with = "nullable")]
    pub load_bases: Vec<String>,
    /// Build secrets by id.
    #[serde(default, deserialize_with = "nullable")]
    pub secrets: BTreeMap<String, BuildSecret>,
    /// A directory from `in` with `save`: push that image.
    pub load: Option<String>,
    /// A `docker save` tarball to push.
    pub load_file: Option<String>,
    /// The repository of the image in `load_file`.
    pub load_repository: Option<String>,
    /// The tag of the image in `load_file`.
    #[serde(default, deserialize_with = "string_or_number")]
    pub load_tag: Option<String>,
    /// A rootfs tarball to push as a one-layer image.
    pub import_file: Option<String>,
    /// Copy the image from this repository.
    pub pull_repository: Option<String>,
    /// The tag to copy from `pull_repository`.
    #[serde(default, deserialize_with = "string_or_number")]
    pub pull_tag: Option<String>,
    /// R: path or glob to an OCI or docker-save tarball, or an OCI layout directory.
    pub image: Option<String>,
    /// Paths or globs, each one single-platform image (docker-save tarball, OCI layout tarball or
    /// OCI layout directory), pushed as one multi-platform index.
    pub images: Option<Vec<String>>,
    /// A file holding the tag to push.
    pub tag_file: Option<String>,
    /// D's old name for `tag_file`: a path, not a tag.
    pub tag: Option<String>,
    /// Prepended to the tag read from `tag_file`.
    pub tag_prefix: Option<String>,
    /// Also push `latest`.
    #[serde(default, deserialize_with = "nullable")]
    pub tag_as_latest: bool,
    /// A file of whitespace-separated extra tags.
    pub additional_tags: Option<String>,
    /// Sign the pushed image with a cosign key (see [`crate::sigstore`]).
    pub sign: Option<crate::sigstore::SignParams>,
    /// R: a version number to push as a tag (a JSON number is kept as written).
    #[serde(default, deserialize_with = "string_or_number")]
    pub version: Option<String>,
    /// R: with `version`, also move the `major` and `major.minor` aliases.
    #[serde(default, deserialize_with = "nullable")]
    pub bump_aliases: bool,
    /// How uncompressed layers are compressed: `gzip` (the default) or `zstd`.
    pub compression: Option<String>,
    /// The level of `compression` (gzip 1 to 9, default 3; zstd 1 to 19, default 3).
    pub compression_level: Option<u32>,
    /// D: `DOCKER_BUILDKIT` for `docker build`. Builds always use buildah: accepted, noted.
    pub docker_buildkit: Option<serde_json::Value>,
    /// R: overrides `source.username` for this step (short-lived credentials).
    pub username: Option<String>,
    /// R: overrides `source.password` for this step.
    pub password: Option<Secret>,
    /// R: overrides `source.aws_access_key_id` for this step.
    pub aws_access_key_id: Option<String>,
    /// R: overrides `source.aws_secret_access_key` for this step.
    pub aws_secret_access_key: Option<Secret>,
    /// R: overrides `source.aws_session_token` for this step.
    pub aws_session_token: Option<Secret>,
    /// R: overrides `source.aws_region` for this step.
    pub aws_region: Option<String>,
    /// R: overrides `source.aws_ecr_registry_id` for this step.
    #[serde(default, deserialize_with = "string_or_number")]
    pub aws_ecr_registry_id: Option<String>,
    /// R: overrides `source.aws_role_arn` for this step.
    pub aws_role_arn: Option<String>,
    /// R: overrides `source.aws_role_arns` for this step.
    #[serde(default, deserialize_with = "nullable")]
    pub aws_role_arns: Vec<String>,
}

/// R's per-step credentials (`username`, `password` and the `aws_*` keys in `get`/`put`
/// params): each one set replaces the source's, as R's `Inherit` does.
macro_rules! credential_overrides {
    ($params:ty) => {
        impl $params {
            /// `source` with this step's credentials put over it (R's `Inherit`): a
            /// param that is set wins, an unset one leaves the source's.
            pub fn credentials_over(&self, source: &Source) -> Source {
                let mut source = source.clone();
                let text = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
                if let Some(v) = text(&self.username) {
                    source.username = Some(v);
                }
                if let Some(v) = self.password.clone().filter(|v| !v.is_empty()) {
                    source.password = Some(v);
                }
                if let Some(v) = text(&self.aws_access_key_id) {
                    source.aws_access_key_id = Some(v);
                }
                if let Some(v) = self.aws_secret_access_key.clone().filter(|v| !v.is_empty()) {
                    source.aws_secret_access_key = Some(v);
                }
                if let Some(v) = self.aws_session_token.clone().filter(|v| !v.is_empty()) {
                    source.aws_session_token = Some(v);
                }
                if let Some(v) = text(&self.aws_region) {
                    source.aws_region = Some(v);
                }
                if let Some(v) = text(&self.aws_ecr_registry_id) {
                    source.aws_ecr_registry_id = Some(v);
                }
                if let Some(v) = text(&self.aws_role_arn) {
                    source.aws_role_arn = Some(v);
                }
                if !self.aws_role_arns.is_empty() {
                    source.aws_role_arns = self.aws_role_arns.clone();
                }
                source
            }
        }
    };
}

credential_overrides!(GetParams);
credential_overrides!(PutParams);

impl PutParams {
    /// The single-image source params that are set (`load`, `build`, `load_file`,
    /// `import_file`, `pull_repository`, `image`), by name.
    pub fn image_sources(&self) -> Vec<&'static str> {
        let set = [
            ("load", self.load.is_some()),
            ("build", self.build.is_some()),
            ("load_file", self.load_file.is_some()),
            ("import_file", self.import_file.is_some()),
            ("pull_repository", self.pull_repository.is_some()),
            ("image", self.image.is_some()),
        ];
        set.into_iter()
            .filter_map(|(name, is_set)| is_set.then_some(name))
            .collect()
    }

    /// Notes for params that are accepted for D's pipelines but change nothing here; the
    /// caller prints them on stderr.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(value) = &self.docker_buildkit {
            notes.push(format!(
                "note: params.docker_buildkit ({value}) is accepted for docker-image-resource \
                 pipelines; builds always go through buildah, which reads BuildKit's Dockerfile \
                 syntax (`RUN --mount=type=secret`) either way"
            ));
        }
        notes
    }
}

/// `params.pull`: whether a build's bases (`FROM`, `COPY --from` images) are resolved against
/// their registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Every base is pulled from its registry, even one supplied by `load_base(s)` or
    /// `cache_from`: a moved tag is picked up (the default).
    #[default]
    Always,
    /// A base supplied by `load_base(s)` or `cache_from` is used as it is; others are pulled.
    IfNotExists,
    /// Only supplied bases; any other is an error.
    Never,
}

impl PullPolicy {
    /// The param's value as written (`if-not-exists`).
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "always",
            PullPolicy::IfNotExists => "if-not-exists",
            PullPolicy::Never => "never",
        }
    }
}

/// Where a build secret comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawBuildSecret")]
pub enum BuildSecret {
    /// `{env: NAME}`: an environment variable.
    Env(String),
    /// `{source: path}`: a file.
    Source(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuildSecret {
    env: Option<String>,
    source: Option<String>,
}

impl TryFrom<RawBuildSecret> for BuildSecret {
    type Error = String;
    fn try_from(raw: RawBuildSecret) -> Result<BuildSecret, String> {
        match (raw.env, raw.source) {
            (Some(env), None) => Ok(BuildSecret::Env(env)),
            (None, Some(source)) => Ok(BuildSecret::Source(source)),
            _ => Err("give exactly one of `env` (a variable) or `source` (a file)".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::tests::DIGEST;
    use crate::resource::{parse_request, GetRequest, PutRequest};

    #[test]
    fn get_params() {
        let get = |params: &str| {
            let text = format!(
                r#"{{"source": {{"repository": "x"}}, "version": {{"digest": "{DIGEST}"}}{params}}}"#
            );
            match parse_request::<GetRequest>(text.as_bytes()) {
                Ok(request) => request.params,
                Err(e) => panic!("{params}: {e:#}"),
            }
        };
        assert_eq!(get(""), GetParams::default());
        assert_eq!(get(r#", "params": null"#), GetParams::default());
        assert_eq!(get(r#", "params": {}"#), GetParams::default());
        for format in ["rootfs", "oci", "oci-layout"] {
            let params = get(&format!(r#", "params": {{"format": "{format}"}}"#));
            assert_eq!(params.format.as_deref(), Some(format));
        }
        let all = get(
            r#", "params": {"save": true, "rootfs": true, "skip_download": true,
            "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}"#,
        );
        assert!(all.save && all.rootfs && all.skip_download);
        let platform = Platform {
            os: Some("linux".into()),
            architecture: Some("arm64".into()),
            variant: Some("v8".into()),
        };
        assert_eq!(all.platform, Some(platform));
    }

    #[test]
    fn put_params() {
        let text = r#"{"source": {"repository": "x"}, "params": {
            "build": "src", "dockerfile": "src/Containerfile", "target_name": "final",
            "build_args": {"A": 1, "B": true, "C": "x", "D": 1.50}, "build_args_file": "args.json",
            "labels": {"k": "v"}, "labels_file": "l.json", "cache": true, "cache_tag": 2,
            "cache_from": ["c1"], "load_base": "b", "load_bases": ["b1", "b2"],
            "secrets": {"s1": {"env": "E"}, "s2": {"source": "f"}}, "load": "img",
            "load_file": "f.tar", "load_repository": "r", "load_tag": "t", "import_file": "rootfs.tgz",
            "pull_repository": "p", "pull_tag": 3, "image": "i/*.tar",
            "images": ["a.tar", "b/*"], "tag_file": "tf",
            "tag": "version/number", "tag_prefix": "v", "tag_as_latest": true,
            "additional_tags": "tags", "version": 1.20, "bump_aliases": true}}"#;
        let p = match parse_request::<PutRequest>(text.as_bytes()) {
            Ok(request) => request.params,
            Err(e) => panic!("{e:#}"),
        };
        let args: Vec<(&str, &str)> = p
            .build_args
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(args, [("A", "1"), ("B", "true"), ("C", "x"), ("D", "1.50")]);
        assert_eq!(p.secrets["s1"], BuildSecret::Env("E".into()));
        assert_eq!(p.secrets["s2"], BuildSecret::Source("f".into()));
        let tags = [&p.cache_tag, &p.pull_tag, &p.load_tag, &p.version].map(|t| t.as_deref());
        assert_eq!(tags, [Some("2"), Some("3"), Some("t"), Some("1.20")]);
        assert_eq!(
            (p.tag.as_deref(), p.labels["k"].as_str()),
            (Some("version/number"), "v")
        );
        assert!(p.cache && p.tag_as_latest && p.bump_aliases);
        assert_eq!(p.images, Some(vec!["a.tar".to_string(), "b/*".to_string()]));
        assert_eq!(
            p.image_sources(),
            [
                "load",
                "build",
                "load_file",
                "import_file",
                "pull_repository",
                "image"
            ]
        );
        assert_eq!((p.load_bases.len(), p.cache_from.len()), (2, 1));
        let empty =
            parse_request::<PutRequest>(br#"{"source": {"repository": "x"}, "params": null}"#);
        assert_eq!(empty.ok().map(|r| r.params), Some(PutParams::default()));
    }

    #[test]
    fn credentials_in_params_replace_the_sources_as_r_inherits() {
        let text =
            r#"{"source": {"repository": "x", "username": "src-user", "password": "src-pass",
            "aws_region": "eu-west-1", "aws_role_arns": ["arn:a"]},
            "version": {"digest": "DIGEST"},
            "params": {"password": "step-pass", "aws_region": "", "aws_role_arns": ["arn:b"],
            "aws_access_key_id": "AKIA", "aws_ecr_registry_id": 123}}"#
                .replace("DIGEST", DIGEST);
        let request = match parse_request::<GetRequest>(text.as_bytes()) {
            Ok(request) => request,
            Err(e) => panic!("{e:#}"),
        };
        let merged = request.params.credentials_over(&request.source);
        assert_eq!(merged.username.as_deref(), Some("src-user"));
        assert_eq!(
            merged.password.as_ref().map(|p| p.expose()),
            Some("step-pass")
        );
        assert_eq!(
            merged.aws_region.as_deref(),
            Some("eu-west-1"),
            "empty keeps the source's"
        );
        assert_eq!(merged.aws_role_arns, ["arn:b"]);
        assert_eq!(merged.aws_access_key_id.as_deref(), Some("AKIA"));
        assert_eq!(merged.aws_ecr_registry_id.as_deref(), Some("123"));
        let put =
            r#"{"source": {"repository": "x"}, "params": {"username": "u", "password": "p"}}"#;
        let request = match parse_request::<PutRequest>(put.as_bytes()) {
            Ok(request) => request,
            Err(e) => panic!("{e:#}"),
        };
        let merged = request.params.credentials_over(&request.source);
        assert_eq!(merged.username.as_deref(), Some("u"));
    }
}
