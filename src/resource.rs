//! The wire contract: the request JSON that Concourse writes on stdin, as serde types.
//!
//! The types mirror the JSON of both `concourse/docker-image-resource` (D) and
//! `concourse/registry-image-resource` (R), and accept either's forms (a `tag` that is a
//! number, `ca_certs` as `[{domain, cert}]` or `[PEM]`, `registry_mirror` as a URL or an
//! object). Unknown keys anywhere are errors that name the key, where it is, and the closest
//! known key. Only type-level checks live here; [`Source::reference`] and the commands turn
//! these into validated values. Secrets are [`Secret`]s and never print.

use crate::reference::{self, Reference};
use crate::secret::Secret;
use anyhow::{anyhow, bail};
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The request `check` reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The resource's configuration.
    pub source: Source,
    /// The last version emitted, if any.
    pub version: Option<Version>,
}

/// The request `in` reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetRequest {
    /// The resource's configuration.
    pub source: Source,
    /// The version to fetch.
    pub version: Version,
    /// The step's `params` (default: none).
    #[serde(default, deserialize_with = "nullable")]
    pub params: GetParams,
}

/// The request `out` reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutRequest {
    /// The resource's configuration.
    pub source: Source,
    /// The step's `params` (default: none).
    #[serde(default, deserialize_with = "nullable")]
    pub params: PutParams,
}

/// A version: the manifest (or index) digest and, from R, the tag it was found under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// `sha256:...`.
    #[serde(deserialize_with = "digest")]
    pub digest: String,
    /// The tag; absent in D's versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// The resource's `source`: every option of D and R.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The image repository, maybe with `:tag` or `@digest` (only when `tag` is unset).
    #[serde(deserialize_with = "required_string")]
    pub repository: String,
    /// The tag as written (a JSON number `1.10` stays `"1.10"`); `""` counts as unset.
    #[serde(default, deserialize_with = "string_or_number")]
    pub tag: Option<String>,
    /// Username for the repository's registry.
    pub username: Option<String>,
    /// Password for the repository's registry.
    pub password: Option<Secret>,
    /// A Docker `config.json`, given as an object or a string holding one.
    pub docker_config: Option<DockerConfigJson>,
    /// D: credentials for base images pulled during `build`.
    #[serde(default, deserialize_with = "nullable")]
    pub additional_private_registries: Vec<PrivateRegistry>,
    /// A Drone registry-extension credential service.
    pub registry_extension: Option<RegistryExtension>,
    /// ECR: access key id.
    pub aws_access_key_id: Option<String>,
    /// ECR: secret access key.
    pub aws_secret_access_key: Option<Secret>,
    /// ECR: session token.
    pub aws_session_token: Option<Secret>,
    /// ECR: region.
    pub aws_region: Option<String>,
    /// ECR: a role to assume.
    pub aws_role_arn: Option<String>,
    /// ECR: roles to assume, in order.
    #[serde(default, deserialize_with = "nullable")]
    pub aws_role_arns: Vec<String>,
    /// ECR: the registry's account id.
    pub aws_account_id: Option<String>,
    /// D: `host:port` or CIDR entries allowed plain HTTP and unverified TLS.
    #[serde(default, deserialize_with = "nullable")]
    pub insecure_registries: Vec<String>,
    /// R: the same for the repository's own registry.
    #[serde(default, deserialize_with = "nullable")]
    pub insecure: bool,
    /// Extra CAs, in D's or R's form.
    #[serde(default, deserialize_with = "nullable")]
    pub ca_certs: Vec<CaCert>,
    /// Mutual-TLS identities, by domain.
    #[serde(default, deserialize_with = "nullable")]
    pub client_certs: Vec<ClientCert>,
    /// A pull-through mirror for Docker Hub (D's URL or R's object).
    pub registry_mirror: Option<RegistryMirror>,
    /// The platform to pick out of an index.
    pub platform: Option<Platform>,
    /// List tags matching this regex.
    pub tag_regex: Option<String>,
    /// Order `tag_regex` matches by creation time.
    #[serde(default, deserialize_with = "nullable")]
    pub created_at_sort: bool,
    /// R's semver mode: the constraint.
    pub semver_constraint: Option<String>,
    /// R's semver mode: the tag suffix.
    pub variant: Option<String>,
    /// R's semver mode: include pre-releases.
    #[serde(default, deserialize_with = "nullable")]
    pub pre_releases: bool,
    /// R's semver mode: pre-release prefixes to accept.
    #[serde(default, deserialize_with = "nullable")]
    pub pre_release_prefixes: Vec<String>,
    /// Tag from the commit SHA of this git repository.
    pub git_repo: Option<String>,
    /// SSH key for `git_repo`.
    pub git_private_key: Option<Secret>,
    /// Branch of `git_repo` (default `master`).
    pub git_branch: Option<String>,
    /// Fail instead of waiting when the tag does not exist.
    #[serde(default, deserialize_with = "nullable")]
    pub fail_when_missing: bool,
    /// Parallel layer downloads (at least 1).
    #[serde(default, deserialize_with = "positive")]
    pub max_concurrent_downloads: Option<usize>,
    /// Parallel layer uploads (at least 1).
    #[serde(default, deserialize_with = "positive")]
    pub max_concurrent_uploads: Option<usize>,
    /// HTTP trace on stderr, secrets redacted.
    #[serde(default, deserialize_with = "nullable")]
    pub debug: bool,
    /// R's notary options: parsed, reported unsupported. May hold keys; never printed.
    pub content_trust: Option<Value>,
}

/// A Docker `config.json`: a JSON object. Its `Debug` shows only the top-level keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DockerConfigJson(Map<String, Value>);

impl DockerConfigJson {
    /// Wraps a parsed `config.json` object.
    pub fn new(object: Map<String, Value>) -> DockerConfigJson {
        DockerConfigJson(object)
    }

    /// The object itself (holds secrets: never print it).
    pub fn as_object(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl fmt::Debug for DockerConfigJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&String> = self.0.keys().collect();
        write!(f, "DockerConfigJson {{ keys: {keys:?}, .. }}")
    }
}

/// D: credentials for another registry, used for base images during `build`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRegistry {
    /// Registry host, `host[:port]`.
    pub registry: String,
    /// Username.
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// A Drone registry-extension endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryExtension {
    /// The service's URL.
    pub endpoint: String,
    /// The shared secret for the HTTP signature.
    pub token: Secret,
    /// Skip TLS verification of the endpoint (default false).
    #[serde(default, deserialize_with = "nullable")]
    pub skip_verify: bool,
}

/// An extra CA: D's `{domain, cert}` or R's bare PEM string (then `domain` is `None` and the
/// CA applies to every registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCert {
    /// The registry it is for, `host[:port]`; `None` for all.
    pub domain: Option<String>,
    /// PEM text, one or more certificates.
    pub cert: String,
}

/// A client certificate for mutual TLS with one registry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCert {
    /// The registry, `host[:port]`.
    pub domain: String,
    /// PEM certificate (chain).
    pub cert: String,
    /// PEM private key.
    pub key: Secret,
}

/// A registry mirror for Docker Hub: D's URL string or R's `{host, username, password}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryMirror {
    /// `http` or `https` when D's URL said so; `None` for R's `host`.
    pub scheme: Option<String>,
    /// `host[:port]`, no path.
    pub host: String,
    /// Username for the mirror.
    pub username: Option<String>,
    /// Password for the mirror.
    pub password: Option<Secret>,
}

/// A platform to select from an image index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: Option<String>,
    /// `amd64`, `arm64`, ...
    pub architecture: Option<String>,
    /// `v8`, `v7`, ...
    pub variant: Option<String>,
}

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
    /// Directories from `in` (with `save`) to use as cache.
    #[serde(default, deserialize_with = "nullable")]
    pub cache_from: Vec<String>,
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
    /// R: a version number to push as a tag (a JSON number is kept as written).
    #[serde(default, deserialize_with = "string_or_number")]
    pub version: Option<String>,
    /// R: with `version`, also move the `major` and `major.minor` aliases.
    #[serde(default, deserialize_with = "nullable")]
    pub bump_aliases: bool,
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

/// The command that is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `check`.
    Check,
    /// `in`.
    Get,
    /// `out`.
    Put,
}

const ALL: &[Command] = &[Command::Check, Command::Get, Command::Put];
const CHECK: &[Command] = &[Command::Check];
const AUTH: &str = "this way of getting credentials is not built; use `username` and `password`";
const LIST: &str = "listing tags is not built; pin `tag` instead";
const SEMVER: &str = "R's semver mode is not built; pin `tag` instead";
const GIT: &str = "tags from git commits are not built; pin `tag` instead";
const NOTARY: &str = "signing with Notary is not built; remove it to push unsigned";

/// Options that parse but do nothing yet: (option, the commands whose behaviour it changes,
/// what is missing). Shrink this as features land.
const UNSUPPORTED: &[(&str, &[Command], &str)] = &[
    ("docker_config", ALL, AUTH),
    ("registry_extension", ALL, AUTH),
    ("aws_access_key_id", ALL, AUTH),
    ("aws_secret_access_key", ALL, AUTH),
    ("aws_session_token", ALL, AUTH),
    ("aws_region", ALL, AUTH),
    ("aws_role_arn", ALL, AUTH),
    ("aws_role_arns", ALL, AUTH),
    ("aws_account_id", ALL, AUTH),
    ("tag_regex", CHECK, LIST),
    ("created_at_sort", CHECK, LIST),
    ("semver_constraint", CHECK, SEMVER),
    ("variant", &[Command::Check, Command::Put], SEMVER),
    ("pre_releases", CHECK, SEMVER),
    ("pre_release_prefixes", CHECK, SEMVER),
    ("git_repo", CHECK, GIT),
    ("git_private_key", CHECK, GIT),
    ("git_branch", CHECK, GIT),
    ("fail_when_missing", CHECK, GIT),
    ("content_trust", &[Command::Put], NOTARY),
];

impl Source {
    /// Options that parse but whose behaviour is not built yet; the caller passes which
    /// command runs. Fails with `not supported yet: <option>` for the first one that is set.
    pub fn reject_unsupported(&self, command: Command) -> anyhow::Result<()> {
        let mut set = UNSUPPORTED.iter().filter(|(option, commands, _)| {
            commands.contains(&command) && self.is_set(option) == Some(true)
        });
        let Some((option, _, why)) = set.next() else {
            return Ok(());
        };
        let mut message = format!("not supported yet: {option} (in `source`): {why}");
        let others: Vec<&str> = set.map(|(option, _, _)| *option).collect();
        if !others.is_empty() {
            message.push_str(&format!("; also not supported yet: {}", others.join(", ")));
        }
        Err(anyhow!(message))
    }

    /// Whether an option in [`UNSUPPORTED`] has a non-default value; `None` for a name
    /// this function does not know.
    fn is_set(&self, option: &str) -> Option<bool> {
        Some(match option {
            "docker_config" => self.docker_config.is_some(),
            "registry_extension" => self.registry_extension.is_some(),
            "aws_access_key_id" => self.aws_access_key_id.is_some(),
            "aws_secret_access_key" => self.aws_secret_access_key.is_some(),
            "aws_session_token" => self.aws_session_token.is_some(),
            "aws_region" => self.aws_region.is_some(),
            "aws_role_arn" => self.aws_role_arn.is_some(),
            "aws_role_arns" => !self.aws_role_arns.is_empty(),
            "aws_account_id" => self.aws_account_id.is_some(),
            "tag_regex" => self.tag_regex.is_some(),
            "created_at_sort" => self.created_at_sort,
            "semver_constraint" => self.semver_constraint.is_some(),
            "variant" => self.variant.is_some(),
            "pre_releases" => self.pre_releases,
            "pre_release_prefixes" => !self.pre_release_prefixes.is_empty(),
            "git_repo" => self.git_repo.is_some(),
            "git_private_key" => self.git_private_key.is_some(),
            "git_branch" => self.git_branch.is_some(),
            "fail_when_missing" => self.fail_when_missing,
            "content_trust" => self.content_trust.is_some(),
            _ => return None,
        })
    }

    /// The normalised reference from `repository`, with `tag` applied when set.
    pub fn reference(&self) -> anyhow::Result<Reference> {
        let parsed =
            Reference::parse(&self.repository).map_err(|e| anyhow!("source.repository: {e}"))?;
        let Some(tag) = &self.tag else {
            return Ok(parsed);
        };
        if parsed.tag().is_some() || parsed.digest().is_some() {
            bail!(
                "source: `repository` carries a tag/digest, and `tag` is set too; use one \
                 (repository: {:?}, tag: {tag:?})",
                self.repository
            );
        }
        parsed
            .with_tag(tag)
            .map_err(|e| anyhow!("source.tag: invalid tag {tag:?}: {}", e.reason))
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = self.content_trust.as_ref().map(|_| "<redacted>");
        f.debug_struct("Source")
            .field("repository", &self.repository)
            .field("tag", &self.tag)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("docker_config", &self.docker_config)
            .field(
                "additional_private_registries",
                &self.additional_private_registries,
            )
            .field("registry_extension", &self.registry_extension)
            .field("aws_access_key_id", &self.aws_access_key_id)
            .field("aws_secret_access_key", &self.aws_secret_access_key)
            .field("aws_session_token", &self.aws_session_token)
            .field("aws_region", &self.aws_region)
            .field("aws_role_arn", &self.aws_role_arn)
            .field("aws_role_arns", &self.aws_role_arns)
            .field("aws_account_id", &self.aws_account_id)
            .field("insecure_registries", &self.insecure_registries)
            .field("insecure", &self.insecure)
            .field("ca_certs", &self.ca_certs)
            .field("client_certs", &self.client_certs)
            .field("registry_mirror", &self.registry_mirror)
            .field("platform", &self.platform)
            .field("tag_regex", &self.tag_regex)
            .field("created_at_sort", &self.created_at_sort)
            .field("semver_constraint", &self.semver_constraint)
            .field("variant", &self.variant)
            .field("pre_releases", &self.pre_releases)
            .field("pre_release_prefixes", &self.pre_release_prefixes)
            .field("git_repo", &self.git_repo)
            .field("git_private_key", &self.git_private_key)
            .field("git_branch", &self.git_branch)
            .field("fail_when_missing", &self.fail_when_missing)
            .field("max_concurrent_downloads", &self.max_concurrent_downloads)
            .field("max_concurrent_uploads", &self.max_concurrent_uploads)
            .field("debug", &self.debug)
            .field("content_trust", &redacted)
            .finish()
    }
}

/// Parses a request from stdin's bytes. Errors say where the problem is
/// (`source.ca_certs[0]`), never show secret values, and suggest the closest key for a typo.
pub fn parse_request<T: DeserializeOwned>(input: &[u8]) -> anyhow::Result<T> {
    if input.iter().all(u8::is_ascii_whitespace) {
        bail!("stdin was empty: expected a JSON request such as {{\"source\": {{\"repository\": \"golang\"}}}}");
    }
    let mut json = serde_json::Deserializer::from_slice(input);
    let request = serde_path_to_error::deserialize(&mut json).map_err(describe)?;
    json.end().map_err(|e| describe_json(&e))?;
    Ok(request)
}

/// The JSON library's message without its ` at line L column C` suffix, and where.
fn split_position(error: &serde_json::Error) -> (String, String) {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
    let position = format!("line {}, column {}", error.line(), error.column());
    (message, position)
}

fn describe_json(error: &serde_json::Error) -> anyhow::Error {
    let (message, position) = split_position(error);
    anyhow!("the request on stdin is not valid JSON: {message} ({position})")
}

fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> anyhow::Error {
    use serde_path_to_error::Segment;
    let inner = error.inner();
    if inner.classify() != serde_json::error::Category::Data {
        return describe_json(inner);
    }
    let (message, position) = split_position(inner);
    let mut segments: Vec<&Segment> = error.path().iter().collect();
    // serde_path_to_error puts an unknown key into the path; the place is its object.
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next());
    if matches!(segments.last(), Some(Segment::Map { key }) if Some(key.as_str()) == unknown) {
        segments.pop();
    }
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                path.push_str(&format!("{}{key}", if path.is_empty() { "" } else { "." }))
            }
            Segment::Unknown => path.push_str(".?"),
        }
    }
    let place = match path.is_empty() {
        true => "the request".to_string(),
        false => path,
    };
    anyhow!(
        "invalid request on stdin: {} ({position})",
        explain(&place, &message)
    )
}

/// The key serde_json uses to pass a number through `visit_map` (`arbitrary_precision`).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Rewrites serde's message: names the place, drops values (they may be secrets), and
/// suggests keys.
fn explain(place: &str, message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let list = known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if key == NUMBER_TOKEN {
            return format!(
                "{place}: expected a string or an object with keys {list}, got a number"
            );
        }
        let hint = match closest(key, &known) {
            Some(best) => format!("did you mean `{best}`?"),
            None if known.is_empty() => "no keys are allowed there".into(),
            None => format!("known keys: {list}"),
        };
        return format!("unknown key `{key}` in {place}; {hint}");
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.trim_end_matches('`');
        return format!("{place} is missing the required key `{key}`");
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (got, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, "?"));
            let expected = match expected {
                e if e.starts_with("struct ") || e == "a map" => "an object",
                "a sequence" => "a list",
                "usize" | "u64" | "u32" => "a positive integer",
                e => e,
            };
            return match (prefix, kind(got)) {
                ("invalid type: ", Some(got)) => format!("{place}: expected {expected}, got {got}"),
                _ => format!("{place}: expected {expected}"),
            };
        }
    }
    if message.starts_with("invalid length") && message.contains("expected struct") {
        return format!("{place}: expected an object, got a list");
    }
    if let Some(rest) = message.strip_prefix("duplicate field `") {
        return format!(
            "{place}: the key `{}` is given twice",
            rest.trim_end_matches('`')
        );
    }
    format!("{place}: {message}")
}

/// What kind of JSON value serde's "unexpected" text describes, without the value.
fn kind(unexpected: &str) -> Option<&'static str> {
    let word = unexpected.split([' ', '`']).next().unwrap_or("");
    Some(match word {
        "string" | "char" | "character" => "a string",
        "integer" | "floating" | "number" => "a number",
        "boolean" => "a boolean",
        "null" | "unit" => "null",
        "map" => "an object",
        "sequence" => "a list",
        _ => return None,
    })
}

/// The known key closest to a mistyped one, when it is close enough to be a typo.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let normal = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let key = normal(key);
    known
        .iter()
        .map(|&k| (k, edit_distance(&key, &normal(k))))
        .filter(|&(k, d)| d <= (key.len() / 3).max(2) || (key.len() >= 3 && k.starts_with(&key)))
        .min_by_key(|&(_, d)| d)
        .map(|(k, _)| k)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// `null` is the default, for options that are lists, maps or booleans.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn required_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    if value.trim().is_empty() {
        return Err(de::Error::custom(
            "must not be empty; give an image such as `golang` or `registry.example.com/team/app`",
        ));
    }
    Ok(value)
}

/// A string or a number, kept as written; `""` and `null` count as unset.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(de::Error::custom(format!(
            "expected a string or a number, got {}",
            value_kind(&other)
        ))),
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match Option::<usize>::deserialize(d)? {
        Some(0) => Err(de::Error::custom("must be at least 1")),
        n => Ok(n),
    }
}

fn digest<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    reference::validate_digest(&value).map_err(|e| de::Error::custom(e.reason))?;
    Ok(value)
}

fn format<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    match value.as_deref() {
        None | Some("rootfs" | "oci" | "oci-layout") => Ok(value),
        Some(other) => Err(de::Error::custom(format!(
            "unknown format {other:?}; use `rootfs` (the default), `oci` or `oci-layout`"
        ))),
    }
}

/// A build argument's value: a string, number or boolean, as text.
struct BuildArg(String);

impl<'de> Deserialize<'de> for BuildArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(BuildArg(s)),
            Value::Number(n) => Ok(BuildArg(n.to_string())),
            Value::Bool(b) => Ok(BuildArg(b.to_string())),
            other => Err(de::Error::custom(format!(
                "expected a string, number or boolean, got {}",
                value_kind(&other)
            ))),
        }
    }
}

fn build_args<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: BTreeMap<String, BuildArg> = nullable(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k, v.0)).collect())
}

impl<'de> Deserialize<'de> for DockerConfigJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let object = match Value::deserialize(d)? {
            Value::Object(object) => object,
            Value::String(text) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(object)) => object,
                Ok(other) => {
                    return Err(de::Error::custom(format!(
                        "the string must hold a JSON object, not {}",
                        value_kind(&other)
                    )))
                }
                Err(e) => {
                    let (message, position) = split_position(&e);
                    return Err(de::Error::custom(format!(
                        "the string is not valid JSON: {message} ({position} of the string)"
                    )));
                }
            },
            other => {
                return Err(de::Error::custom(format!(
                    "expected an object or a string holding one, got {}",
                    value_kind(&other)
                )))
            }
        };
        Ok(DockerConfigJson(object))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaCert {
    domain: String,
    cert: String,
}

impl<'de> Deserialize<'de> for CaCert {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Form;
        impl<'de> Visitor<'de> for Form {
            type Value = CaCert;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a PEM string or an object with `domain` and `cert`")
            }
            fn visit_str<E: de::Error>(self, pem: &str) -> Result<CaCert, E> {
                if pem.trim().is_empty() {
                    return Err(E::custom("the certificate is empty"));
                }
                Ok(CaCert {
                    domain: None,
                    cert: pem.to_string(),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CaCert, A::Error> {
                let raw = RawCaCert::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if raw.domain.trim().is_empty() || raw.cert.trim().is_empty() {
                    return Err(de::Error::custom("`domain` and `cert` must not be empty"));
                }
                Ok(CaCert {
                    domain: Some(raw.domain),
                    cert: raw.cert,
                })
            }
        }
        d.deserialize_any(Form)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMirror {
    host: String,
    username: Option<String>,
    password: Option<Secret>,
}

impl<'de> Deserialize<'de> for RegistryMirror {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Form;
        impl<'de> Visitor<'de> for Form {
            type Value = RegistryMirror;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a URL string or an object with `host`, `username` and `password`")
            }
            fn visit_str<E: de::Error>(self, url: &str) -> Result<RegistryMirror, E> {
                mirror_from_url(url).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RegistryMirror, A::Error> {
                let raw = RawMirror::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let host = raw.host.trim();
                if host.is_empty() || host.contains('/') {
                    return Err(de::Error::custom(
                        "`host` must be `host[:port]`, with no scheme or path",
                    ));
                }
                Ok(RegistryMirror {
                    scheme: None,
                    host: host.to_string(),
                    username: raw.username,
                    password: raw.password,
                })
            }
        }
        d.deserialize_any(Form)
    }
}

/// D's mirror URL: `http(s)://host[:port][/]`. Errors never repeat the URL (it may hold
/// credentials).
fn mirror_from_url(text: &str) -> Result<RegistryMirror, String> {
    let usage = "give a URL such as `https://mirror.example.com:5000`";
    if !text.contains("://") {
        return Err(format!("the URL has no `http://` or `https://`; {usage}"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("not a valid URL ({e}); {usage}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("unsupported scheme `{}`; {usage}", url.scheme()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed; use the form \
                    {host, username, password}"
            .into());
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "a mirror URL has no path, query or fragment; {usage}"
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("the URL has no host; {usage}"))?;
    Ok(RegistryMirror {
        scheme: Some(url.scheme().to_string()),
        host: match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        },
        username: None,
        password: None,
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A check request whose source is `repository: golang` plus `fields`.
    fn with_source(fields: &str) -> String {
        match fields {
            "" => r#"{"source": {"repository": "golang"}}"#.to_string(),
            _ if fields.contains("\"repository\"") => format!(r#"{{"source": {{{fields}}}}}"#),
            _ => format!(r#"{{"source": {{"repository": "golang", {fields}}}}}"#),
        }
    }

    fn source(fields: &str) -> Source {
        match parse_request::<CheckRequest>(with_source(fields).as_bytes()) {
            Ok(request) => request.source,
            Err(e) => panic!("{fields}: {e:#}"),
        }
    }

    /// The error for a request of kind `c`heck, `g`et or `p`ut; `DIGEST` is replaced.
    fn error(kind: char, text: &str) -> String {
        let text = text.replace("DIGEST", DIGEST);
        let bytes = text.as_bytes();
        let result = match kind {
            'c' => parse_request::<CheckRequest>(bytes).map(|r| format!("{r:?}")),
            'g' => parse_request::<GetRequest>(bytes).map(|r| format!("{r:?}")),
            _ => parse_request::<PutRequest>(bytes).map(|r| format!("{r:?}")),
        };
        match result {
            Ok(parsed) => panic!("{text} parsed: {parsed}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[rustfmt::skip]
    const SOURCE_ERRORS: &[(&str, &str)] = &[
        (r#""repositry": "x""#, "unknown key `repositry` in source; did you mean `repository`?"),
        (r#""insecure_registry": ["x"]"#, "in source; did you mean `insecure_registries`?"),
        (r#""tag-regex": "x""#, "did you mean `tag_regex`?"),
        (r#""zzzzzzzz": 1"#, "unknown key `zzzzzzzz` in source; known keys: `repository`, `tag`, `username`"),
        (r#""platform": {"arch": "arm64"}"#, "unknown key `arch` in source.platform; did you mean `architecture`?"),
        (r#""platform": "linux/amd64""#, "source.platform: expected an object, got a string"),
        (r#""registry_extension": {"endpoint": "e", "token": "t", "skipverify": true}"#,
            "unknown key `skipverify` in source.registry_extension; did you mean `skip_verify`?"),
        (r#""registry_extension": {"endpoint": "e"}"#, "source.registry_extension is missing the required key `token`"),
        (r#""additional_private_registries": [{"registry": "r", "username": "u"}]"#,
            "source.additional_private_registries[0] is missing the required key `password`"),
        (r#""insecure": "yes""#, "source.insecure: expected a boolean, got a string"),
        (r#""debug": 1"#, "source.debug: expected a boolean, got a number"),
        (r#""username": 1"#, "source.username: expected a string, got a number"),
        (r#""insecure_registries": "r:5000""#, "source.insecure_registries: expected a list, got a string"),
        (r#""max_concurrent_downloads": 0"#, "source.max_concurrent_downloads: must be at least 1"),
        (r#""max_concurrent_uploads": -1"#, "source.max_concurrent_uploads: expected a positive integer"),
        (r#""repository": """#, "source.repository: must not be empty"),
        (r#""repository": null"#, "source.repository: expected a string, got null"),
        (r#""tag": 1, "tag": 2"#, "source: the key `tag` is given twice"),
        (r#""tag": true"#, "source.tag: expected a string or a number, got a boolean"),
        (r#""tag": {"a": 1}"#, "source.tag: expected a string or a number, got an object"),
        (r#""docker_config": "{nope""#, "source.docker_config: the string is not valid JSON"),
        (r#""docker_config": "[1]""#, "source.docker_config: the string must hold a JSON object, not a list"),
        (r#""docker_config": 5"#, "source.docker_config: expected an object or a string holding one, got a number"),
        (r#""ca_certs": ["P", {"domain": "d", "cert": "c", "dmain": "x"}]"#,
            "unknown key `dmain` in source.ca_certs[1]; did you mean `domain`?"),
        (r#""ca_certs": [{"domain": "d", "cert": "c", "foo": 1}]"#, "source.ca_certs[0]; known keys: `domain`, `cert`"),
        (r#""ca_certs": [{"domain": "d"}]"#, "source.ca_certs[0] is missing the required key `cert`"),
        (r#""ca_certs": [{"domain": "", "cert": "c"}]"#, "source.ca_certs[0]: `domain` and `cert` must not be empty"),
        (r#""ca_certs": [5]"#, "source.ca_certs[0]: expected a PEM string or an object"),
        (r#""ca_certs": [1.5]"#, "source.ca_certs[0]: expected a string or an object with keys `domain`, `cert`, got a number"),
        (r#""ca_certs": [true]"#, "source.ca_certs[0]: expected a PEM string or an object with `domain` and `cert`, got a boolean"),
        (r#""ca_certs": [" "]"#, "source.ca_certs[0]: the certificate is empty"),
        (r#""ca_certs": "PEM""#, "source.ca_certs: expected a list, got a string"),
        (r#""client_certs": [{"domain": "d", "cert": "c", "key": "k", "ky": 1}]"#, "unknown key `ky` in source.client_certs[0]"),
        (r#""client_certs": [{"domain": "d", "cert": "c"}]"#, "source.client_certs[0] is missing the required key `key`"),
        (r#""registry_mirror": "https://m/v2""#, "source.registry_mirror: a mirror URL has no path"),
        (r#""registry_mirror": "https://m/?q=1""#, "source.registry_mirror: a mirror URL has no path, query"),
        (r#""registry_mirror": "https://m#f""#, "a mirror URL has no path, query or fragment"),
        (r#""registry_mirror": "ftp://m""#, "source.registry_mirror: unsupported scheme `ftp`"),
        (r#""registry_mirror": "mirror:5000""#, "source.registry_mirror: the URL has no `http://` or `https://`"),
        (r#""registry_mirror": "https://""#, "source.registry_mirror: not a valid URL"),
        (r#""registry_mirror": "https://u:mirror-pw-42@m""#, "source.registry_mirror: credentials in the URL"),
        (r#""registry_mirror": {"host": "https://m"}"#, "source.registry_mirror: `host` must be `host[:port]`"),
        (r#""registry_mirror": {"hst": "m"}"#, "unknown key `hst` in source.registry_mirror; did you mean `host`?"),
        (r#""registry_mirror": ["m"]"#, "source.registry_mirror: expected a URL string or an object"),
        (r#""registry_mirror": 1.5"#, "source.registry_mirror: expected a string or an object with keys `host`"),
    ];

    #[test]
    fn source_errors() {
        for (fields, expected) in SOURCE_ERRORS {
            let e = error('c', &with_source(fields));
            assert!(e.starts_with("invalid request on stdin: "), "{e}");
            assert!(
                e.contains(expected),
                "{fields}:\n  {e}\nlacks\n  {expected}"
            );
            assert!(!e.contains("mirror-pw-42"), "{e}");
        }
    }

    #[rustfmt::skip]
    const REQUEST_ERRORS: &[(char, &str, &str)] = &[
        ('c', "", "stdin was empty"),
        ('c', " \n\t", "stdin was empty"),
        ('c', r#"{"source": {"repository": "x",}}"#, "the request on stdin is not valid JSON: trailing comma (line 1, column 31)"),
        ('c', "{\n  \"source\": \n", "not valid JSON: EOF while parsing a value (line 3, column 0)"),
        ('c', r#"{"source": {"repository": "x"}} x"#, "not valid JSON: trailing characters"),
        ('c', r#"{"source": {}}"#, "source is missing the required key `repository`"),
        ('c', r#"{}"#, "the request is missing the required key `source`"),
        ('c', r#"[]"#, "the request: expected an object, got a list"),
        ('c', r#"{"source": 1.5}"#, "source: expected an object, got a number"),
        ('c', r#"{"sauce": {}}"#, "unknown key `sauce` in the request; did you mean `source`?"),
        ('c', r#"{"source": {"repository": "x"}, "params": {}}"#, "unknown key `params` in the request; known keys: `source`, `version`"),
        ('c', r#"{"source": {"repository": "x"}, "version": {"digest": "DIGEST", "tga": "1"}}"#,
            "unknown key `tga` in version; did you mean `tag`?"),
        ('c', r#"{"source": {"repository": "x"}, "version": {"tag": "1"}}"#, "version is missing the required key `digest`"),
        ('g', r#"{"source": {"repository": "x"}, "version": {"digest": "sha256:abc"}}"#,
            "version.digest: a sha256 digest is 64 lowercase hex digits"),
        ('g', r#"{"source": {"repository": "x"}}"#, "the request is missing the required key `version`"),
        ('g', r#"{"source": {"repository": "x"}, "version": {"digest": "DIGEST"}, "params": {"format": "tarball"}}"#,
            "params.format: unknown format \"tarball\"; use `rootfs` (the default), `oci` or `oci-layout`"),
        ('g', r#"{"source": {"repository": "x"}, "version": {"digest": "DIGEST"}, "params": {"formt": "oci"}}"#,
            "unknown key `formt` in params; did you mean `format`?"),
        ('g', r#"{"source": {"repository": "x"}, "version": {"digest": "DIGEST"}, "params": {"platform": {"os": 1}}}"#,
            "params.platform.os: expected a string, got a number"),
        ('p', r#"{"source": {"repository": "x"}, "params": {"build_args": {"E": null}}}"#,
            "params.build_args.E: expected a string, number or boolean, got null"),
        ('p', r#"{"source": {"repository": "x"}, "params": {"build_args": {"E": [1]}}}"#, "got a list"),
        ('p', r#"{"source": {"repository": "x"}, "params": {"labels": {"k": 1}}}"#, "params.labels.k: expected a string, got a number"),
        ('p', r#"{"source": {"repository": "x"}, "params": {"secrets": {"s": {"env": "E", "source": "f"}}}}"#,
            "params.secrets.s: give exactly one of `env` (a variable) or `source` (a file)"),
        ('p', r#"{"source": {"repository": "x"}, "params": {"secrets": {"s": {}}}}"#, "params.secrets.s: give exactly one"),
        ('p', r#"{"source": {"repository": "x"}, "params": {"secrets": {"s": {"file": "f"}}}}"#,
            "unknown key `file` in params.secrets.s; known keys: `env`, `source`"),
        ('p', r#"{"source": {"repository": "x"}, "params": {"tag_as_latest": "true"}}"#,
            "params.tag_as_latest: expected a boolean, got a string"),
        ('p', r#"{"source": {"repository": "x"}, "params": {"cache_from": "dir"}}"#, "params.cache_from: expected a list, got a string"),
        ('p', r#"{"source": {"repository": "x"}, "params": {"load_tags": "t"}}"#, "did you mean `load_tag`?"),
        ('p', r#"{"source": {"repository": "x"}, "params": {"get_params": {}}}"#, "unknown key `get_params` in params"),
    ];

    #[test]
    fn request_errors() {
        for (kind, text, expected) in REQUEST_ERRORS {
            let e = error(*kind, text);
            assert!(e.contains(expected), "{text}:\n  {e}\nlacks\n  {expected}");
        }
    }

    #[test]
    fn versions() {
        let check = |version: &str| {
            let text = format!(r#"{{"source": {{"repository": "x"}}, "version": {version}}}"#);
            match parse_request::<CheckRequest>(text.replace("DIGEST", DIGEST).as_bytes()) {
                Ok(request) => request.version,
                Err(e) => panic!("{e:#}"),
            }
        };
        assert_eq!(check("null"), None);
        let d_form = Version {
            digest: DIGEST.into(),
            tag: None,
        };
        assert_eq!(check(r#"{"digest": "DIGEST"}"#), Some(d_form.clone()));
        let r_form = Version {
            tag: Some("1.7".into()),
            ..d_form.clone()
        };
        assert_eq!(
            check(r#"{"digest": "DIGEST", "tag": "1.7"}"#),
            Some(r_form.clone())
        );
        let json = |v: &Version| serde_json::to_string(v).unwrap_or_default();
        assert_eq!(json(&d_form), format!(r#"{{"digest":"{DIGEST}"}}"#));
        assert_eq!(
            json(&r_form),
            format!(r#"{{"digest":"{DIGEST}","tag":"1.7"}}"#)
        );
        let request = parse_request::<CheckRequest>(with_source("").as_bytes());
        assert_eq!(request.ok().and_then(|r| r.version), None);
    }

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
            "pull_repository": "p", "pull_tag": 3, "image": "i/*.tar", "tag_file": "tf",
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
        assert_eq!((p.load_bases.len(), p.cache_from.len()), (2, 1));
        let empty =
            parse_request::<PutRequest>(br#"{"source": {"repository": "x"}, "params": null}"#);
        assert_eq!(empty.ok().map(|r| r.params), Some(PutParams::default()));
    }

    #[test]
    fn source_forms() {
        assert_eq!(source(r#""tag": 1.10"#).tag.as_deref(), Some("1.10"));
        assert_eq!(source(r#""tag": 7"#).tag.as_deref(), Some("7"));
        assert_eq!(
            source(r#""tag": "1.7-alpine""#).tag.as_deref(),
            Some("1.7-alpine")
        );
        assert_eq!(source(r#""tag": """#).tag, None);
        assert_eq!(source(r#""tag": null"#).tag, None);
        let nulls = source(
            r#""insecure_registries": null, "insecure": null, "ca_certs": null, "debug": null"#,
        );
        assert_eq!(
            nulls,
            Source {
                repository: "golang".into(),
                ..Source::default()
            }
        );
        let config = r#"{"auths": {"r.io": {"auth": "c2VjcmV0"}}}"#;
        let from_string = source(&format!(r#""docker_config": {:?}"#, config));
        assert_eq!(
            from_string,
            source(&format!(r#""docker_config": {config}"#))
        );
        let shown = format!("{from_string:?}");
        assert!(
            shown.contains(r#"DockerConfigJson { keys: ["auths"], .. }"#),
            "{shown}"
        );
        let s = source(r#""ca_certs": [{"domain": "r:5000", "cert": "PEM1"}, "PEM2"]"#);
        assert_eq!(
            s.ca_certs[0],
            CaCert {
                domain: Some("r:5000".into()),
                cert: "PEM1".into()
            }
        );
        assert_eq!(
            s.ca_certs[1],
            CaCert {
                domain: None,
                cert: "PEM2".into()
            }
        );
        let mirror =
            |value: &str| source(&format!(r#""registry_mirror": {value}"#)).registry_mirror;
        let m = mirror(r#""https://mirror.example.com:5000""#).unwrap_or_else(|| panic!());
        assert_eq!(
            (m.scheme.as_deref(), m.host.as_str()),
            (Some("https"), "mirror.example.com:5000")
        );
        let m = mirror(r#""http://10.0.0.1/""#).unwrap_or_else(|| panic!());
        assert_eq!(
            (m.scheme.as_deref(), m.host.as_str()),
            (Some("http"), "10.0.0.1")
        );
        assert_eq!(
            mirror(r#""http://[::1]:5000""#).map(|m| m.host).as_deref(),
            Some("[::1]:5000")
        );
        let m = mirror(r#"{"host": "mirror:5000", "username": "u", "password": "p"}"#)
            .unwrap_or_else(|| panic!());
        assert_eq!(
            (m.scheme, m.host.as_str(), m.username.as_deref()),
            (None, "mirror:5000", Some("u"))
        );
        assert_eq!(m.password.as_ref().map(Secret::expose), Some("p"));
    }

    /// Every option of D and R, with these secret values.
    const SECRETS: [&str; 10] = [
        "pw-0", "ext-1", "aws-2", "sess-3", "git-4", "ckey-5", "mpw-6", "notary-7", "dcauth-8",
        "apr-9",
    ];
    const EVERY_OPTION: &str = r#""username": "u", "password": "pw-0", "docker_config": {"auths": {"r": {"auth": "dcauth-8"}}},
        "additional_private_registries": [{"registry": "r.io", "username": "u", "password": "apr-9"}],
        "registry_extension": {"endpoint": "https://ext", "token": "ext-1"}, "aws_access_key_id": "a",
        "aws_secret_access_key": "aws-2", "aws_session_token": "sess-3", "aws_region": "eu-west-1",
        "aws_role_arn": "arn1", "aws_role_arns": ["arn2"], "aws_account_id": "1",
        "insecure_registries": ["r:5000", "10.0.0.0/8"], "ca_certs": ["PEM"],
        "client_certs": [{"domain": "r:5000", "cert": "C", "key": "ckey-5"}],
        "registry_mirror": {"host": "m", "password": "mpw-6"}, "platform": {"os": "linux"},
        "tag_regex": "^1", "created_at_sort": true, "semver_constraint": "~1", "variant": "alpine",
        "pre_releases": true, "pre_release_prefixes": ["rc"], "git_repo": "g", "git_private_key": "git-4",
        "git_branch": "main", "fail_when_missing": true, "max_concurrent_downloads": 3,
        "max_concurrent_uploads": 4, "debug": true, "content_trust": {"repository_key": "notary-7"}"#;

    #[test]
    fn every_option_parses_and_secrets_never_print() {
        let s = source(EVERY_OPTION);
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("pw-0"));
        assert_eq!(s.client_certs[0].key.expose(), "ckey-5");
        assert!(s
            .registry_extension
            .as_ref()
            .is_some_and(|e| !e.skip_verify));
        assert_eq!(
            (s.max_concurrent_downloads, s.max_concurrent_uploads),
            (Some(3), Some(4))
        );
        assert!(
            s.debug && s.fail_when_missing && s.created_at_sort && s.pre_releases && !s.insecure
        );
        let debug = format!("{s:?}");
        let bad = error(
            'c',
            &with_source(&format!(r#"{EVERY_OPTION}, "insecure": "not-a-bool""#)),
        );
        assert!(
            bad.contains("source.insecure: expected a boolean, got a string"),
            "{bad}"
        );
        for secret in SECRETS {
            assert!(!debug.contains(secret), "{debug}");
            assert!(!bad.contains(secret), "{bad}");
        }
        let e = error('c', &with_source(r#""password": 987654321"#));
        assert!(
            e.contains("source.password: expected a string, got a number")
                && !e.contains("987654321"),
            "{e}"
        );
        let e = error('c', &with_source(r#""insecure": "s3cr3t-value""#));
        assert!(!e.contains("s3cr3t-value"), "{e}");
    }

    #[test]
    fn reject_unsupported_names_each_option() {
        let all = [Command::Check, Command::Get, Command::Put];
        let accepted = source(
            r#""additional_private_registries": [{"registry": "r", "username": "u", "password": "p"}],
            "platform": {"os": "linux"}, "max_concurrent_downloads": 2, "insecure_registries": ["r"],
            "registry_mirror": "https://m", "debug": true, "insecure": true, "ca_certs": ["P"]"#,
        );
        for command in all {
            assert!(accepted.reject_unsupported(command).is_ok());
        }
        for (option, commands, _) in UNSUPPORTED {
            let value = match *option {
                "created_at_sort" | "pre_releases" | "fail_when_missing" => "true",
                "aws_role_arns" | "pre_release_prefixes" => r#"["x"]"#,
                "docker_config" | "content_trust" => "{}",
                "registry_extension" => r#"{"endpoint": "e", "token": "t"}"#,
                _ => r#""x""#,
            };
            let s = source(&format!(r#""{option}": {value}"#));
            assert_eq!(s.is_set(option), Some(true), "{option}");
            for command in all {
                match s.reject_unsupported(command) {
                    Err(e) if commands.contains(&command) => {
                        let e = e.to_string();
                        assert!(
                            e.starts_with(&format!("not supported yet: {option} (in `source`): ")),
                            "{e}"
                        );
                    }
                    Ok(()) if !commands.contains(&command) => {}
                    other => panic!("{option} {command:?}: {other:?}"),
                }
            }
        }
        let s = source(r#""tag_regex": "x", "semver_constraint": "1", "aws_region": "r""#);
        let e = s
            .reject_unsupported(Command::Check)
            .map_err(|e| e.to_string());
        let expected = "not supported yet: aws_region (in `source`): this way of getting credentials is not built; \
                        use `username` and `password`; also not supported yet: tag_regex, semver_constraint";
        assert_eq!(e, Err(expected.to_string()));
        assert!(s.is_set("no_such_option").is_none());
    }

    #[test]
    fn source_reference() {
        let shown = |fields: &str| {
            source(fields)
                .reference()
                .map(|r| r.to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            shown(r#""tag": 1.10"#),
            Ok("docker.io/library/golang:1.10".into())
        );
        assert_eq!(shown(""), Ok("docker.io/library/golang:latest".into()));
        assert_eq!(
            shown(r#""repository": "r.io/a/b:7""#),
            Ok("r.io/a/b:7".into())
        );
        let digest = format!("golang@{DIGEST}");
        assert_eq!(
            shown(&format!(r#""repository": "{digest}""#)),
            Ok(format!("docker.io/library/{digest}"))
        );
        let both = "source: `repository` carries a tag/digest, and `tag` is set too; use one \
                    (repository: \"golang:1\", tag: \"2\")";
        assert_eq!(
            shown(r#""repository": "golang:1", "tag": "2""#),
            Err(both.into())
        );
        assert!(shown(&format!(r#""repository": "{digest}", "tag": "2""#))
            .is_err_and(|e| e.contains("carries")));
        let upper = shown(r#""repository": "Golang""#).unwrap_err();
        assert!(
            upper.starts_with("source.repository: invalid image reference")
                && upper.contains("lowercase")
        );
        let tag = shown(r#""tag": "bad tag!""#).unwrap_err();
        assert!(
            tag.starts_with("source.tag: invalid tag \"bad tag!\""),
            "{tag}"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            [
                edit_distance("kitten", "sitting"),
                edit_distance("", "abc"),
                edit_distance("a", "a")
            ],
            [3, 3, 0]
        );
        let known = ["repository", "tag", "tag_regex", "username"];
        let cases = [
            ("Repository", Some("repository")),
            ("tags", Some("tag")),
            ("tag_regexp", Some("tag_regex")),
            ("user", Some("username")),
            ("completely_else", None),
        ];
        for (typo, expected) in cases {
            assert_eq!(closest(typo, &known), expected, "{typo}");
        }
    }
}
