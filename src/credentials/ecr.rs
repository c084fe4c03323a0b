//! Amazon ECR (`source.aws_*`): AWS credentials, roles assumed in order through STS, then
//! ECR's `GetAuthorizationToken`, whose base64 `AWS:<password>` becomes Basic credentials
//! (user `AWS`) for the repository's registry.
//!
//! - Which registries: the repository's own registry (whatever its host: an ECR host, or a
//!   proxy or test registry in front of one), and any other ECR host
//!   (`<account>.dkr.ecr.<region>.amazonaws.com`) in the same region (an ECR token is valid
//!   for every registry of the region the identity may read, as R relies on).
//! - Region: `aws_region`, else the region in the repository's ECR host, else `AWS_REGION` /
//!   `AWS_DEFAULT_REGION`; none, a malformed one, or one that contradicts the host is an error
//!   naming `aws_region`.
//! - AWS credentials, first found: the options, the environment's keys, web identity,
//!   container credentials, the EC2 instance profile (`chain`; `~/.aws` files are not read).
//! - Then `aws_role_arn` or `aws_role_arns` (not both, as R) are assumed in order, each with
//!   the previous role's credentials.
//! - R's bare repository names (`alpine` with `aws_account_id`) are rewritten by
//!   [`crate::resource::Source::repository_name`]; this module only sees the final host.
//!
//! The token is fetched once per run (on the first registry that needs it) and shared.

mod aws;
mod chain;

use super::Found;
use crate::registry::auth::Credentials;
use crate::registry::transport::{split_host_port, TransportOptions};
use crate::resource::Source;
use crate::secret::Secret;
use anyhow::{anyhow, bail, Context as _};
use aws::{Caller, Keys, Service};
use base64::Engine as _;
use chain::Base;

/// The configured source.
#[derive(Debug)]
pub struct Ecr {
    origin_host: String,
    /// Where the region came from, for messages (`source.aws_region`, ...).
    region_from: String,
    base: Base,
    roles: Vec<String>,
    caller: Caller,
    token: tokio::sync::Mutex<Option<Credentials>>,
}

/// A string option that counts as set: present and not blank.
fn given(option: &Option<String>) -> Option<&str> {
    option.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `(account, region)` of an ECR registry host such as
/// `123456789012.dkr.ecr.us-east-1.amazonaws.com` (also FIPS, China and dual-stack hosts).
pub fn ecr_host(host: &str) -> Option<(&str, &str)> {
    let (name, _) = split_host_port(host);
    let (account, rest) = name.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = ["dkr.ecr.", "dkr.ecr-fips.", "dkr-ecr.", "dkr-ecr-fips."]
        .iter()
        .find_map(|prefix| rest.strip_prefix(prefix))?;
    let (region, domain) = rest.split_once('.')?;
    ["amazonaws.com", "amazonaws.com.cn", "on.aws"]
        .contains(&domain)
        .then_some((account, region))
}

/// True for a well-formed region name (`us-east-1`, `cn-north-1`, `us-gov-west-1`).
fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// The account id from `aws_account_id` or R's deprecated `aws_ecr_registry_id` (the same
/// meaning; both set and different is an error).
pub fn account_id(source: &Source) -> anyhow::Result<Option<&str>> {
    let account = match (
        given(&source.aws_account_id),
        given(&source.aws_ecr_registry_id),
    ) {
        (Some(a), Some(b)) if a != b => bail!(
            "source.aws_account_id ({a}) and source.aws_ecr_registry_id ({b}) disagree; \
             aws_ecr_registry_id is R's deprecated name for aws_account_id: give only aws_account_id"
        ),
        (Some(a), _) => (a, "aws_account_id"),
        (None, Some(b)) => (b, "aws_ecr_registry_id"),
        (None, None) => return Ok(None),
    };
    if account.0.len() != 12 || !account.0.bytes().all(|b| b.is_ascii_digit()) {
        bail!(
            "source.{}: {:?} is not an AWS account id (12 digits; quote it so leading zeros stay)",
            account.1,
            account.0
        );
    }
    Ok(Some(account.0))
}

/// True when any `aws_*` option is set: ECR is wanted.
pub fn wanted(source: &Source) -> bool {
    [
        &source.aws_access_key_id,
        &source.aws_region,
        &source.aws_role_arn,
        &source.aws_account_id,
        &source.aws_ecr_registry_id,
    ]
    .into_iter()
    .any(|o| given(o).is_some())
        || source.aws_secret_access_key.is_some()
        || source.aws_session_token.is_some()
        || !source.aws_role_arns.is_empty()
}

impl Ecr {
    /// Reads the options; `None` when no `aws_*` option is given. The region and the first
    /// credentials are settled here, so a mistake fails before any registry is contacted.
    /// HTTP traces and retry notes go to `log`.
    pub fn from_source(
        source: &Source,
        origin_host: &str,
        log: &crate::log::Log,
    ) -> anyhow::Result<Option<Ecr>> {
        if !wanted(source) {
            return Ok(None);
        }
        Self::from_source_with(source, origin_host, |name| std::env::var(name).ok(), log)
    }

    fn from_source_with(
        source: &Source,
        origin_host: &str,
        env: impl Fn(&str) -> Option<String>,
        log: &crate::log::Log,
    ) -> anyhow::Result<Option<Ecr>> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        account_id(source)?;
        if origin_host.eq_ignore_ascii_case(crate::reference::DOCKER_HUB_API) {
            bail!(
                "source.repository {:?} is on Docker Hub, and aws_* options are set: ECR \
                 credentials are never sent to Docker Hub; write the full ECR name \
                 (<account>.dkr.ecr.<region>.amazonaws.com/...), or give source.aws_region and \
                 source.aws_account_id with a bare name",
                source.repository
            );
        }
        let host_region = ecr_host(origin_host).map(|(_, region)| region);
        let (region, region_from) = match (given(&source.aws_region), host_region) {
            (Some(option), Some(host)) if option != host => bail!(
                "source.aws_region ({option}) is not the region of the repository's ECR \
                 registry {origin_host} ({host}); ECR tokens are per region: set aws_region to \
                 {host} or remove it"
            ),
            (Some(option), _) => (option.to_string(), "source.aws_region".to_string()),
            (None, Some(host)) => (host.to_string(), format!("the registry host {origin_host}")),
            (None, None) => match (env("AWS_REGION"), env("AWS_DEFAULT_REGION")) {
                (Some(region), _) => (region, "AWS_REGION".to_string()),
                (None, Some(region)) => (region, "AWS_DEFAULT_REGION".to_string()),
                (None, None) => bail!(
                    "Amazon ECR for registry {origin_host}: no region: set source.aws_region \
                     (such as us-east-1); it is not in the registry host, and neither \
                     AWS_REGION nor AWS_DEFAULT_REGION is set"
                ),
            },
        };
        if !valid_region(&region) {
            bail!(
                "Amazon ECR for registry {origin_host}: {region:?} (from {region_from}) is not \
                 an AWS region; set source.aws_region to one such as us-east-1"
            );
        }
        let base = Base::choose(source, &env)?;
        let roles = match (given(&source.aws_role_arn), source.aws_role_arns.as_slice()) {
            (Some(_), [_, ..]) => bail!(
                "source.aws_role_arn and source.aws_role_arns are both set; give one (a single \
                 role in aws_role_arn, or the chain of roles in aws_role_arns)"
            ),
            (Some(role), []) => vec![role.to_string()],
            (None, roles) => roles.to_vec(),
        };
        if let Some(i) = roles.iter().position(|r| r.trim().is_empty()) {
            bail!("source.aws_role_arns[{i}] is empty; give a role ARN such as arn:aws:iam::123456789012:role/ci");
        }
        let options = TransportOptions {
            ca_certs: crate::settings::tls_cas(source),
            debug: source.debug,
            log: log.clone(),
            ..TransportOptions::from_env()
        };
        Ok(Some(Ecr {
            origin_host: origin_host.to_ascii_lowercase(),
            region_from,
            base,
            roles,
            caller: Caller::new(&region, options),
            token: tokio::sync::Mutex::new(None),
        }))
    }

    /// True for the registries this source has credentials for: the repository's own, and
    /// ECR hosts of the same region.
    fn serves(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        host == self.origin_host
            || ecr_host(&host).is_some_and(|(_, region)| region == self.caller.region())
    }

    /// The credentials this source has for registry `host`, if any.
    pub async fn lookup(&self, host: &str) -> anyhow::Result<Option<Found>> {
        if !self.serves(host) {
            return Ok(None);
        }
        let mut token = self.token.lock().await;
        let credentials = match token.as_ref() {
            Some(credentials) => credentials.clone(),
            None => {
                let fetched = self.fetch().await.with_context(|| {
                    format!(
                        "Amazon ECR credentials for registry {host} (source.aws_*; region {} \
                         from {})",
                        self.caller.region(),
                        self.region_from
                    )
                })?;
                *token = Some(fetched.clone());
                fetched
            }
        };
        let roles = match self.roles.as_slice() {
            [] => String::new(),
            roles => format!(", as role {}", roles.join(" then ")),
        };
        Ok(Some(Found {
            credentials,
            from: format!(
                "Amazon ECR (GetAuthorizationToken in {}, with {}{roles})",
                self.caller.region(),
                self.base.describe()
            ),
        }))
    }

    /// First credentials, roles, then the ECR token.
    async fn fetch(&self) -> anyhow::Result<Credentials> {
        let mut keys = self.base.keys(&self.caller).await?;
        for (i, role) in self.roles.iter().enumerate() {
            let option = if self.roles.len() == 1 {
                "source.aws_role_arn(s)".to_string()
            } else {
                format!("source.aws_role_arns[{i}]")
            };
            keys = self
                .caller
                .assume_role(&keys, role)
                .await
                .with_context(|| format!("assuming role {role} ({option})"))?;
        }
        self.authorization_token(&keys).await
    }

    /// ECR `GetAuthorizationToken` (JSON 1.1 protocol): `AWS:<password>`.
    async fn authorization_token(&self, keys: &Keys) -> anyhow::Result<Credentials> {
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            (
                "x-amz-target",
                "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
            ),
        ];
        let (url, answer) = self
            .caller
            .post(Service::Ecr, &headers, b"{}", Some(keys))
            .await
            .context("calling ECR GetAuthorizationToken")?;
        if !(200..300).contains(&answer.status) {
            bail!(
                "ECR GetAuthorizationToken at {url} answered HTTP {}: {}",
                answer.status,
                aws::json_error(&answer.body)
            );
        }
        let parsed: serde_json::Value = serde_json::from_str(&answer.body).map_err(|e| {
            anyhow!("ECR GetAuthorizationToken at {url} answered with invalid JSON ({e})")
        })?;
        let encoded = parsed["authorizationData"][0]["authorizationToken"]
            .as_str()
            .ok_or_else(|| {
                anyhow!("ECR GetAuthorizationToken at {url} answered without authorizationData")
            })?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                anyhow!("ECR GetAuthorizationToken at {url}: the token is not base64 text")
            })?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| {
            anyhow!("ECR GetAuthorizationToken at {url}: the token is not `user:password`")
        })?;
        Ok(Credentials::basic(user, Secret::new(password.trim())))
    }
}

#[cfg(test)]
mod tests;
