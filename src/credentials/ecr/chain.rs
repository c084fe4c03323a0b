//! Where the first AWS credentials come from, in the AWS SDKs' default order (less the
//! `~/.aws` files, which a Concourse worker does not have for its tasks):
//!
//! 1. `source.aws_access_key_id` + `aws_secret_access_key` (+ `aws_session_token`);
//! 2. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//! 3. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`),
//!    through STS `AssumeRoleWithWebIdentity` (EKS IRSA);
//! 4. container credentials: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (ECS, at
//!    `169.254.170.2`) or `AWS_CONTAINER_CREDENTIALS_FULL_URI` (+
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`, EKS Pod Identity);
//! 5. the EC2 instance metadata service (IMDSv2; the instance profile), at
//!    `AWS_EC2_METADATA_SERVICE_ENDPOINT` or `http://169.254.169.254`, unless
//!    `AWS_EC2_METADATA_DISABLED=true`.

use super::aws::{Call, Caller, Keys, SESSION_NAME};
use crate::registry::retry::Expect;
use crate::resource::Source;
use crate::secret::Secret;
use anyhow::{anyhow, bail, Context as _};
use reqwest::Method;
use std::path::PathBuf;
use std::time::Duration;

/// The first credentials' source.
#[derive(Debug)]
pub(super) enum Base {
    /// `source.aws_access_key_id` and friends.
    Source(Keys),
    /// `AWS_ACCESS_KEY_ID` and friends.
    Environment(Keys),
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`.
    WebIdentity {
        token_file: PathBuf,
        role_arn: String,
        session_name: String,
    },
    /// ECS / EKS Pod Identity container credentials.
    Container {
        url: url::Url,
        token: Option<Secret>,
        token_file: Option<PathBuf>,
    },
    /// EC2 instance metadata (IMDSv2).
    InstanceMetadata { endpoint: url::Url },
}

/// Hosts a container-credentials URL may use plain HTTP to (as the AWS SDKs allow).
fn plain_http_allowed(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback() || ip.octets()[..3] == [169, 254, 170] // ECS and EKS agents
        }
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

impl Base {
    /// The first source that is configured, in the module's order.
    pub(super) fn choose(
        source: &Source,
        env: &impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Base> {
        let id = source
            .aws_access_key_id
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let secret = source
            .aws_secret_access_key
            .as_ref()
            .filter(|s| !s.is_empty());
        let token = source.aws_session_token.clone().filter(|s| !s.is_empty());
        match (id, secret) {
            (Some(id), Some(secret)) => {
                return Ok(Base::Source(Keys {
                    access_key_id: id.to_string(),
                    secret_access_key: secret.clone(),
                    session_token: token,
                }))
            }
            (Some(_), None) => bail!(
                "source.aws_access_key_id is set but source.aws_secret_access_key is not; give both"
            ),
            (None, Some(_)) => bail!(
                "source.aws_secret_access_key is set but source.aws_access_key_id is not; give both"
            ),
            (None, None) if token.is_some() => bail!(
                "source.aws_session_token is set without source.aws_access_key_id and \
                 source.aws_secret_access_key; give all three"
            ),
            (None, None) => {}
        }
        if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            return Ok(Base::Environment(Keys {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
                session_token: env("AWS_SESSION_TOKEN").map(Secret::new),
            }));
        }
        if let (Some(file), Some(role_arn)) =
            (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN"))
        {
            return Ok(Base::WebIdentity {
                token_file: PathBuf::from(file),
                role_arn,
                session_name: env("AWS_ROLE_SESSION_NAME")
                    .unwrap_or_else(|| SESSION_NAME.to_string()),
            });
        }
        let container = match (
            env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            env("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        ) {
            (Some(relative), _) => Some((
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                format!("http://169.254.170.2{relative}"),
            )),
            (None, Some(full)) => Some(("AWS_CONTAINER_CREDENTIALS_FULL_URI", full)),
            (None, None) => None,
        };
        if let Some((name, value)) = container {
            let url = url::Url::parse(&value)
                .map_err(|e| anyhow!("{name} ({value:?}) is not a URL: {e}"))?;
            if url.scheme() != "https" && !plain_http_allowed(&url) {
                bail!("{name} ({value}) must be https, or http to a loopback or ECS/EKS agent address");
            }
            return Ok(Base::Container {
                url,
                token: env("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(Secret::new),
                token_file: env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(PathBuf::from),
            });
        }
        if !env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            let value = env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                .unwrap_or_else(|| "http://169.254.169.254".to_string());
            let endpoint = url::Url::parse(&value).map_err(|e| {
                anyhow!("AWS_EC2_METADATA_SERVICE_ENDPOINT ({value:?}) is not a URL: {e}")
            })?;
            return Ok(Base::InstanceMetadata { endpoint });
        }
        bail!(
            "Amazon ECR: no AWS credentials: set source.aws_access_key_id and \
             source.aws_secret_access_key, or give the worker AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN), \
             container credentials, or an EC2 instance profile (AWS_EC2_METADATA_DISABLED is \
             true); ~/.aws files are not read"
        )
    }

    /// For `debug` lines and errors (no secret).
    pub(super) fn describe(&self) -> String {
        match self {
            Base::Source(_) => "source.aws_access_key_id".into(),
            Base::Environment(_) => "AWS_ACCESS_KEY_ID from the environment".into(),
            Base::WebIdentity { role_arn, .. } => {
                format!("web identity (AWS_WEB_IDENTITY_TOKEN_FILE) for role {role_arn}")
            }
            Base::Container { url, .. } => format!("container credentials from {url}"),
            Base::InstanceMetadata { endpoint } => {
                format!("the EC2 instance profile (instance metadata at {endpoint})")
            }
        }
    }

    /// The keys themselves (a call for every source but the static ones).
    pub(super) async fn keys(&self, caller: &Caller) -> anyhow::Result<Keys> {
        match self {
            Base::Source(keys) | Base::Environment(keys) => Ok(keys.clone()),
            Base::WebIdentity {
                token_file,
                role_arn,
                session_name,
            } => {
                let token = std::fs::read_to_string(token_file).map_err(|e| {
                    anyhow!(
                        "reading the web identity token AWS_WEB_IDENTITY_TOKEN_FILE ({}): {e}",
                        token_file.display()
                    )
                })?;
                caller
                    .assume_role_with_web_identity(
                        role_arn,
                        session_name,
                        &Secret::new(token.trim()),
                    )
                    .await
                    .with_context(|| format!("assuming AWS_ROLE_ARN {role_arn} by web identity"))
            }
            Base::Container {
                url,
                token,
                token_file,
            } => {
                let token = match (token, token_file) {
                    (_, Some(file)) => Some(Secret::new(
                        std::fs::read_to_string(file)
                            .map_err(|e| {
                                anyhow!(
                                    "reading AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE ({}): {e}",
                                    file.display()
                                )
                            })?
                            .trim(),
                    )),
                    (token, None) => token.clone(),
                };
                let headers: Vec<(String, String)> = token
                    .iter()
                    .map(|t| ("authorization".to_string(), t.expose().to_string()))
                    .collect();
                // Configured on purpose: the answer matters, so every temporary failure is
                // tried again (connections still give up after 3 s each).
                let call = Call {
                    method: Method::GET,
                    url,
                    body: b"",
                    connect_timeout: Some(Duration::from_secs(3)),
                    expect: Expect::Service,
                };
                let answer = caller
                    .send("AWS container credentials", &call, &headers)
                    .await
                    .with_context(|| format!("container credentials from {url}"))?;
                credentials_json(&answer.status, &answer.body, url)
            }
            Base::InstanceMetadata { endpoint } => {
                instance_profile(caller, endpoint).await.with_context(|| {
                    format!(
                        "EC2 instance metadata at {endpoint} (the last place AWS credentials are \
                         looked for; off EC2, set source.aws_access_key_id and \
                         source.aws_secret_access_key)"
                    )
                })
            }
        }
    }
}

/// IMDSv2: a session token, the instance profile's role name, its credentials. The token
/// `PUT` is the probe: off EC2 nothing answers it, and a connection that cannot be made (or
/// stays silent) fails at once, without backoff; once the service has answered, each
/// request is retried like any other.
async fn instance_profile(caller: &Caller, endpoint: &url::Url) -> anyhow::Result<Keys> {
    // Off EC2 nothing answers: fail in seconds.
    let timeout = Some(Duration::from_secs(3));
    let join = |path: &str| {
        endpoint
            .join(path)
            .map_err(|e| anyhow!("instance metadata URL {endpoint}{path}: {e}"))
    };
    let call = |method: Method, url, expect| Call {
        method,
        url,
        body: b"",
        connect_timeout: timeout,
        expect,
    };
    let token_url = join("/latest/api/token")?;
    let ttl = vec![(
        "x-aws-ec2-metadata-token-ttl-seconds".to_string(),
        "300".to_string(),
    )];
    let answer = caller
        .send(IMDS, &call(Method::PUT, &token_url, Expect::Probe), &ttl)
        .await?;
    if answer.status != 200 {
        bail!("PUT {token_url} answered HTTP {}", answer.status);
    }
    let session = vec![(
        "x-aws-ec2-metadata-token".to_string(),
        answer.body.trim().to_string(),
    )];
    let roles_url = join("/latest/meta-data/iam/security-credentials/")?;
    let roles = caller
        .send(
            IMDS,
            &call(Method::GET, &roles_url, Expect::Service),
            &session,
        )
        .await?;
    let role = roles.body.lines().next().map(str::trim).unwrap_or("");
    if roles.status != 200 || role.is_empty() {
        bail!(
            "GET {roles_url} answered HTTP {} with no role: the instance has no instance profile",
            roles.status
        );
    }
    let keys_url = join(&format!(
        "/latest/meta-data/iam/security-credentials/{role}"
    ))?;
    let answer = caller
        .send(
            IMDS,
            &call(Method::GET, &keys_url, Expect::Service),
            &session,
        )
        .await?;
    credentials_json(&answer.status, &answer.body, &keys_url)
}

/// The instance metadata service's name in retry notes.
const IMDS: &str = "EC2 instance metadata";

/// `{AccessKeyId, SecretAccessKey, Token}`, the answer of ECS's and EC2's credential services.
fn credentials_json(status: &u16, body: &str, url: &url::Url) -> anyhow::Result<Keys> {
    if !(200..300).contains(status) {
        bail!(
            "{url} answered HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        );
    }
    let parsed: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| anyhow!("{url} answered with invalid JSON ({e})"))?;
    let field = |name: &str| {
        parsed[name]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{url} answered without {name}"))
    };
    Ok(Keys {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: Secret::new(field("SecretAccessKey")?),
        session_token: field("Token").ok().map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_answers() {
        let url = url::Url::parse("http://169.254.170.2/v2/credentials/x")
            .unwrap_or_else(|e| panic!("{e}"));
        let ok = r#"{"AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"2030-01-01T00:00:00Z"}"#;
        let keys = credentials_json(&200, ok, &url).map_err(|e| e.to_string());
        assert_eq!(keys.map(|k| k.access_key_id), Ok("ASIA1".to_string()));
        assert!(
            credentials_json(&404, "no", &url).is_err_and(|e| e.to_string().contains("HTTP 404"))
        );
        assert!(credentials_json(&200, "{}", &url)
            .is_err_and(|e| e.to_string().contains("AccessKeyId")));
    }

    #[test]
    fn container_urls_must_be_safe() {
        let parse = |s: &str| url::Url::parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert!(plain_http_allowed(&parse("http://169.254.170.2/creds")));
        assert!(plain_http_allowed(&parse(
            "http://169.254.170.23/v1/credentials"
        )));
        assert!(plain_http_allowed(&parse("http://127.0.0.1:9/x")));
        assert!(!plain_http_allowed(&parse("http://example.com/x")));
    }
}
