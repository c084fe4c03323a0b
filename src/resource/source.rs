//! The resource's `source`, its nested option types, the options that parse but are not built
//! yet ([`Source::reject_unsupported`]), and the image reference ([`Source::reference`]).

use super::forms::{nullable, positive, required_string, string_or_number};
use super::Command;
use crate::reference::Reference;
use crate::secret::Secret;
use anyhow::{anyhow, bail};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

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
    /// ECR: the registry's account id (a string or number, kept as written).
    #[serde(default, deserialize_with = "string_or_number")]
    pub aws_account_id: Option<String>,
    /// ECR: R's deprecated alias of `aws_account_id` (same meaning).
    #[serde(default, deserialize_with = "string_or_number")]
    pub aws_ecr_registry_id: Option<String>,
    /// R: authenticate to Azure ACR through an AAD token.
    #[serde(default, deserialize_with = "nullable")]
    pub azure_acr: bool,
    /// R: the managed identity's client id for ACR.
    pub azure_client_id: Option<String>,
    /// R: the AAD tenant for ACR.
    pub azure_tenant_id: Option<String>,
    /// R: `AzurePublic`, `AzureGovernment` or `AzureChina`.
    pub azure_environment: Option<String>,
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
    /// known_hosts lines for `git_repo`'s ssh host (then only these keys are trusted).
    pub git_known_hosts: Option<String>,
    /// `check`: fail instead of emitting nothing (or the given version, with `git_repo`)
    /// when the tag does not exist.
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
    /// R (`in`): config labels whose key matches become metadata entries.
    pub label_regex: Option<String>,
    /// R (`in`): manifest annotations whose key matches become metadata entries.
    pub annotation_regex: Option<String>,
    /// Accept only images signed by one of these cosign keys (see [`crate::sigstore`]).
    pub verify: Option<crate::sigstore::VerifyOptions>,
    /// D: seconds to wait for the Docker daemon. There is no daemon: accepted, noted.
    #[serde(default, deserialize_with = "string_or_number")]
    pub startup_timeout: Option<String>,
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

const NOTARY: &str = "signing with Notary is not built; remove it to push unsigned";

/// Options that parse but do nothing yet: (option, the commands whose behaviour it changes,
/// what is missing). Shrink this as features land. `variant`, `pre_releases` and
/// `pre_release_prefixes` are built (R's listing without a tag); the listing options below
/// count as set only when no tag is given, since R's `check` ignores them next to a tag
/// ([`Source::is_set`]).
const UNSUPPORTED: &[(&str, &[Command], &str)] = &[("content_trust", &[Command::Put], NOTARY)];

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

    /// Notes for options that are accepted so a pipeline of D or R keeps working, but have
    /// nothing to do here; the caller prints them on stderr.
    pub fn notes(&self, command: Command) -> Vec<String> {
        let mut notes = Vec::new();
        if let (Some(timeout), Command::Get | Command::Put) = (&self.startup_timeout, command) {
            notes.push(format!(
                "note: source.startup_timeout ({timeout}) is accepted for docker-image-resource \
                 pipelines; there is no Docker daemon to start, so it changes nothing"
            ));
        }
        if self
            .aws_ecr_registry_id
            .as_deref()
            .is_some_and(|v| !v.trim().is_empty())
        {
            notes.push(
                "note: source.aws_ecr_registry_id is registry-image-resource's deprecated name \
                 for aws_account_id; it is read as aws_account_id (rename it)"
                    .to_string(),
            );
        }
        if !self.azure_acr {
            let azure = [
                ("azure_client_id", &self.azure_client_id),
                ("azure_tenant_id", &self.azure_tenant_id),
                ("azure_environment", &self.azure_environment),
            ];
            for (option, value) in azure {
                if value.as_deref().is_some_and(|v| !v.trim().is_empty()) {
                    notes.push(format!(
                        "note: source.{option} is set but source.azure_acr is not true, so it \
                         changes nothing; set azure_acr: true to authenticate to Azure ACR"
                    ));
                }
            }
        }
        notes
    }

    /// Whether an option in [`UNSUPPORTED`] has a non-default value; `None` for a name
    /// this function does not know.
    fn is_set(&self, option: &str) -> Option<bool> {
        Some(match option {
            "content_trust" => self.content_trust.is_some(),
            _ => return None,
        })
    }

    /// `repository` naming the image: as written, except R's ECR form. R takes a name
    /// without a registry host (`team/app`) next to `aws_region` to be on ECR; with
    /// `aws_account_id` (or R's `aws_ecr_registry_id`) we put it on
    /// `<account>.dkr.ecr.<region>.amazonaws.com` as R does. A name with a registry host is
    /// never rewritten (D's form, the full ECR URI, works as written).
    pub fn repository_name(&self) -> Cow<'_, str> {
        let region = self.aws_region.as_deref().map(str::trim).unwrap_or("");
        let account = [&self.aws_account_id, &self.aws_ecr_registry_id]
            .into_iter()
            .find_map(|a| a.as_deref().map(str::trim).filter(|a| !a.is_empty()));
        match account {
            Some(account) if !region.is_empty() && !names_registry(&self.repository) => {
                let domain = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                Cow::Owned(format!(
                    "{account}.dkr.ecr.{region}.{domain}/{}",
                    self.repository.trim()
                ))
            }
            _ => Cow::Borrowed(&self.repository),
        }
    }

    /// The normalised reference from `repository` ([`Source::repository_name`]), with `tag`
    /// applied when set.
    pub fn reference(&self) -> anyhow::Result<Reference> {
        let name = self.repository_name();
        let on_docker_hub = !names_registry(&name);
        if on_docker_hub
            && self
                .aws_region
                .as_deref()
                .is_some_and(|r| !r.trim().is_empty())
        {
            bail!(
                "source.repository {:?} names no registry, and source.aws_region is set: for \
                 Amazon ECR give source.aws_account_id (then the image is \
                 <account>.dkr.ecr.<region>.amazonaws.com/{}), or write the full ECR name in \
                 repository; registry-image-resource used the AWS identity's own account here, \
                 which this resource does not look up",
                self.repository,
                self.repository.trim()
            );
        }
        let parsed = Reference::parse(&name).map_err(|e| anyhow!("source.repository: {e}"))?;
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

/// True when `repository`'s first component is a registry host (Docker's rule: it has a `.`
/// or `:`, or is `localhost`); otherwise the name is on Docker Hub.
fn names_registry(repository: &str) -> bool {
    match repository.trim().split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
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
            .field("aws_ecr_registry_id", &self.aws_ecr_registry_id)
            .field("azure_acr", &self.azure_acr)
            .field("azure_client_id", &self.azure_client_id)
            .field("azure_tenant_id", &self.azure_tenant_id)
            .field("azure_environment", &self.azure_environment)
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
            .field("git_known_hosts", &self.git_known_hosts)
            .field("fail_when_missing", &self.fail_when_missing)
            .field("max_concurrent_downloads", &self.max_concurrent_downloads)
            .field("max_concurrent_uploads", &self.max_concurrent_uploads)
            .field("debug", &self.debug)
            .field("content_trust", &redacted)
            .field("label_regex", &self.label_regex)
            .field("annotation_regex", &self.annotation_regex)
            .field("verify", &self.verify)
            .field("startup_timeout", &self.startup_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::tests::{source, DIGEST};

    #[test]
    fn reject_unsupported_names_each_option() {
        let all = [Command::Check, Command::Get, Command::Put];
        let accepted = source(
            r#""additional_private_registries": [{"registry": "r", "username": "u", "password": "p"}],
            "platform": {"os": "linux"}, "max_concurrent_downloads": 2, "insecure_registries": ["r"],
            "registry_mirror": "https://m", "debug": true, "insecure": true, "ca_certs": ["P"],
            "registry_extension": {"endpoint": "https://e", "token": "t", "skip_verify": true}"#,
        );
        for command in all {
            assert!(accepted.reject_unsupported(command).is_ok());
        }
        for (option, commands, _) in UNSUPPORTED {
            let value = match *option {
                "content_trust" => "{}",
                _ => r#""x""#,
            };
            let s = source(&format!(r#""{option}": {value}"#));
            assert_eq!(s.is_set(option), Some(true), "{option}");
            for command in all {
                match s.reject_unsupported(command) {
                    Err(e) if commands.contains(&command) => {
                        let e = e.to_string();
                        // `created_at_sort` only counts with `tag_regex`, which is named first.
                        assert!(
                            e.starts_with(&format!("not supported yet: {option} (in `source`): "))
                                || e.ends_with(&format!("; also not supported yet: {option}")),
                            "{e}"
                        );
                    }
                    Ok(()) if !commands.contains(&command) => {}
                    other => panic!("{option} {command:?}: {other:?}"),
                }
            }
        }
        // Next to a tag, R's check ignores the listing options (check notes it on stderr).
        let pinned = source(
            r#""tag": "1", "tag_regex": "x", "semver_constraint": "1", "created_at_sort": true,
            "variant": "v", "pre_releases": true, "pre_release_prefixes": ["x"]"#,
        );
        assert!(pinned.reject_unsupported(Command::Check).is_ok());
        let in_repository = source(r#""repository": "golang:1", "semver_constraint": "1""#);
        assert!(in_repository.reject_unsupported(Command::Check).is_ok());
        // Without a tag: R's listing options are built, `created_at_sort` alone is ignored.
        let listing = source(
            r#""variant": "v", "pre_releases": true, "pre_release_prefixes": ["x"],
            "created_at_sort": true"#,
        );
        assert!(listing.reject_unsupported(Command::Check).is_ok());
        let s = source(r#""semver_constraint": "1", "content_trust": {}"#);
        let e = s
            .reject_unsupported(Command::Put)
            .map_err(|e| e.to_string());
        let expected =
            "not supported yet: content_trust (in `source`): signing with Notary is not built; \
                        remove it to push unsigned";
        assert_eq!(e, Err(expected.to_string()));
        assert!(s.is_set("no_such_option").is_none());
    }

    #[test]
    fn r_ecr_names_get_their_registry() {
        let name = |fields: &str| source(fields).repository_name().into_owned();
        let account = r#""aws_account_id": "012345678901", "aws_region": "eu-west-1""#;
        assert_eq!(
            name(&format!(r#""repository": "team/app", {account}"#)),
            "012345678901.dkr.ecr.eu-west-1.amazonaws.com/team/app"
        );
        assert_eq!(
            name(
                r#""repository": "app", "aws_ecr_registry_id": "012345678901", "aws_region": "cn-north-1""#
            ),
            "012345678901.dkr.ecr.cn-north-1.amazonaws.com.cn/app"
        );
        // A registry host, or no region: as written.
        let full = "012345678901.dkr.ecr.eu-west-1.amazonaws.com/app";
        assert_eq!(name(&format!(r#""repository": "{full}", {account}"#)), full);
        assert_eq!(
            name(&format!(r#""repository": "localhost/app", {account}"#)),
            "localhost/app"
        );
        assert_eq!(name(r#""aws_account_id": "012345678901""#), "golang");
        let reference =
            source(&format!(r#""repository": "app", "tag": "1", {account}"#)).reference();
        assert_eq!(
            reference.map(|r| r.to_string()).ok().as_deref(),
            Some("012345678901.dkr.ecr.eu-west-1.amazonaws.com/app:1")
        );
        // A bare name next to aws_region without an account: an error, not Docker Hub.
        let err = source(r#""aws_region": "eu-west-1""#)
            .reference()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("aws_account_id") && err.contains("\"golang\""),
            "{err}"
        );
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
}
