//! The Microsoft Entra ID (AAD) side of ACR: which cloud, and an access token for its
//! management scope (the audience ACR's `/oauth2/exchange` accepts, as R asks for), from the
//! first of, as the Azure SDK's environment and managed-identity credentials read them:
//!
//! 1. a client secret: `AZURE_CLIENT_SECRET`, with the client id (`azure_client_id`, else
//!    `AZURE_CLIENT_ID`) and the identity's tenant (`AZURE_TENANT_ID`, else
//!    `azure_tenant_id`);
//! 2. a federated token (workload identity, e.g. AKS): the file `AZURE_FEDERATED_TOKEN_FILE`,
//!    with the same client id and tenant;
//! 3. managed identity (R's only way): the instance metadata service, for the user-assigned
//!    identity `azure_client_id` or else the system-assigned one.
//!
//! The authority host is the cloud's, or `AZURE_AUTHORITY_HOST` when set (the Azure SDK's
//! variable); the metadata service is `http://169.254.169.254`, or
//! `IMAGE_RESOURCE_AZURE_IMDS_ENDPOINT` when set (tests).

use crate::registry::error::Error as RegistryError;
use crate::registry::retry::{send_small, Expect, SmallAnswer};
use crate::registry::transport::{Transport, TransportOptions};
use crate::secret::Secret;
use anyhow::{anyhow, bail, Context as _};
use std::path::PathBuf;
use std::time::Duration;

/// Variable that replaces the instance metadata service's address (tests).
pub const IMDS_ENDPOINT_ENV: &str = "IMAGE_RESOURCE_AZURE_IMDS_ENDPOINT";

/// An Azure cloud: its authority host and the management resource whose token ACR takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// `AzurePublic` (`*.azurecr.io`).
    Public,
    /// `AzureGovernment` (`*.azurecr.us`).
    Government,
    /// `AzureChina` (`*.azurecr.cn`).
    China,
}

impl Cloud {
    /// `azure_environment`, else the registry's domain (R's rule; anything else is public).
    /// An unknown name is an error naming the option (R warned and guessed).
    pub fn choose(option: Option<&str>, registry: &str) -> anyhow::Result<Cloud> {
        match option.map(str::trim).filter(|o| !o.is_empty()) {
            Some("AzurePublic") => Ok(Cloud::Public),
            Some("AzureGovernment") => Ok(Cloud::Government),
            Some("AzureChina") => Ok(Cloud::China),
            Some(other) => bail!(
                "source.azure_environment: {other:?} is not an Azure cloud; give AzurePublic, \
                 AzureGovernment or AzureChina (or leave it out to go by the registry's domain)"
            ),
            None => {
                let (host, _) = crate::registry::transport::split_host_port(registry);
                let host = host.to_ascii_lowercase();
                Ok(if host.ends_with(".azurecr.us") {
                    Cloud::Government
                } else if host.ends_with(".azurecr.cn") {
                    Cloud::China
                } else {
                    Cloud::Public
                })
            }
        }
    }

    /// The cloud's Entra ID authority host.
    pub fn authority(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com/",
            Cloud::Government => "https://login.microsoftonline.us/",
            Cloud::China => "https://login.chinacloudapi.cn/",
        }
    }

    /// The management resource (its token is what R exchanges at ACR).
    pub fn resource(self) -> &'static str {
        match self {
            Cloud::Public => "https://management.azure.com/",
            Cloud::Government => "https://management.usgovcloudapi.net/",
            Cloud::China => "https://management.chinacloudapi.cn/",
        }
    }
}

/// Where the AAD token comes from.
#[derive(Debug, Clone)]
pub enum Identity {
    /// An app registration's client secret.
    ClientSecret {
        /// Client (application) id.
        client_id: String,
        /// The identity's tenant.
        tenant: String,
        /// `AZURE_CLIENT_SECRET`.
        secret: Secret,
    },
    /// Workload identity: a federated token file.
    Federated {
        /// Client (application) id.
        client_id: String,
        /// The identity's tenant.
        tenant: String,
        /// `AZURE_FEDERATED_TOKEN_FILE`.
        file: PathBuf,
    },
    /// Managed identity through the instance metadata service.
    Managed {
        /// A user-assigned identity's client id; `None`: the system-assigned one.
        client_id: Option<String>,
    },
}

impl Identity {
    /// Picks the identity from the options and the environment (`env`), as the module says.
    pub fn choose(
        client_id: Option<&str>,
        tenant_id: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Identity> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let client_id = client_id
            .map(str::to_string)
            .filter(|c| !c.trim().is_empty());
        let needs = |what: &str| -> anyhow::Result<(String, String)> {
            let client = client_id.clone().or_else(|| env("AZURE_CLIENT_ID"));
            let tenant = env("AZURE_TENANT_ID").or(tenant_id.map(str::to_string));
            match (client, tenant) {
                (Some(c), Some(t)) => Ok((c, t)),
                (None, _) => bail!(
                    "Azure ACR: {what} is set but no client id: set source.azure_client_id or \
                     AZURE_CLIENT_ID"
                ),
                (_, None) => bail!(
                    "Azure ACR: {what} is set but no tenant: set AZURE_TENANT_ID (the \
                     identity's tenant) or source.azure_tenant_id"
                ),
            }
        };
        if let Some(secret) = env("AZURE_CLIENT_SECRET") {
            let (client_id, tenant) = needs("AZURE_CLIENT_SECRET")?;
            return Ok(Identity::ClientSecret {
                client_id,
                tenant,
                secret: Secret::new(secret),
            });
        }
        if let Some(file) = env("AZURE_FEDERATED_TOKEN_FILE") {
            let (client_id, tenant) = needs("AZURE_FEDERATED_TOKEN_FILE")?;
            return Ok(Identity::Federated {
                client_id,
                tenant,
                file: PathBuf::from(file),
            });
        }
        Ok(Identity::Managed { client_id })
    }

    /// For `debug` lines and errors (no secret).
    pub fn describe(&self) -> String {
        match self {
            Identity::ClientSecret { client_id, .. } => {
                format!("client secret (AZURE_CLIENT_SECRET) of client {client_id}")
            }
            Identity::Federated { client_id, .. } => {
                format!("federated token (AZURE_FEDERATED_TOKEN_FILE) of client {client_id}")
            }
            Identity::Managed {
                client_id: Some(id),
            } => {
                format!("user-assigned managed identity {id}")
            }
            Identity::Managed { client_id: None } => "system-assigned managed identity".into(),
        }
    }

    /// An access token for `cloud`'s management resource.
    pub async fn token(&self, cloud: Cloud, options: &TransportOptions) -> anyhow::Result<Secret> {
        let scope = format!("{}.default", cloud.resource());
        let (tenant, form) = match self {
            Identity::ClientSecret {
                client_id,
                tenant,
                secret,
            } => (
                tenant,
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "client_credentials")
                    .append_pair("client_id", client_id)
                    .append_pair("client_secret", secret.expose())
                    .append_pair("scope", &scope)
                    .finish(),
            ),
            Identity::Federated {
                client_id,
                tenant,
                file,
            } => {
                let assertion = std::fs::read_to_string(file).map_err(|e| {
                    anyhow!(
                        "reading AZURE_FEDERATED_TOKEN_FILE ({}): {e}",
                        file.display()
                    )
                })?;
                (
                    tenant,
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("grant_type", "client_credentials")
                        .append_pair("client_id", client_id)
                        .append_pair(
                            "client_assertion_type",
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                        )
                        .append_pair("client_assertion", assertion.trim())
                        .append_pair("scope", &scope)
                        .finish(),
                )
            }
            Identity::Managed { client_id } => {
                return managed_identity_token(client_id.as_deref(), cloud, options).await
            }
        };
        let authority = std::env::var("AZURE_AUTHORITY_HOST")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| cloud.authority().to_string());
        let url = url::Url::parse(&authority)
            .and_then(|base| base.join(&format!("{tenant}/oauth2/v2.0/token")))
            .map_err(|e| anyhow!("authority host {authority:?} gives no token URL: {e}"))?;
        let transport = transport_for(&url, options).await?;
        // A token request only asks: safe to repeat, so it is retried like any request.
        let answer = send_small(&transport, "Entra ID", Expect::Service, |http| {
            http.post(url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.clone())
                .build()
                .map_err(|e| build_error(&url, e))
        })
        .await?;
        read_token(&answer, &url)
    }
}

/// The managed identity's token from the instance metadata service.
async fn managed_identity_token(
    client_id: Option<&str>,
    cloud: Cloud,
    options: &TransportOptions,
) -> anyhow::Result<Secret> {
    let base = std::env::var(IMDS_ENDPOINT_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "http://169.254.169.254".to_string());
    let mut url = url::Url::parse(&base)
        .and_then(|b| b.join("/metadata/identity/oauth2/token"))
        .map_err(|e| anyhow!("{IMDS_ENDPOINT_ENV} ({base:?}) is not a URL: {e}"))?;
    url.query_pairs_mut()
        .append_pair("api-version", "2018-02-01")
        .append_pair("resource", cloud.resource());
    if let Some(id) = client_id {
        url.query_pairs_mut().append_pair("client_id", id);
    }
    // Off Azure the service does not exist: fail in seconds, not after 30.
    let mut options = options.clone();
    options.timeouts.connect = Duration::from_secs(3);
    let transport = transport_for(&url, &options).await?;
    // A probe as much as a request: off Azure, nothing there fails at once, without backoff.
    let answer = send_small(
        &transport,
        "Azure instance metadata",
        Expect::Probe,
        |http| {
            http.get(url.clone())
                .header("Metadata", "true")
                .build()
                .map_err(|e| build_error(&url, e))
        },
    )
    .await;
    answer
        .map_err(anyhow::Error::from)
        .and_then(|answer| read_token(&answer, &url))
        .context("managed identity (instance metadata service); off Azure, give AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE with a client id and tenant")
}

/// A transport for the host of `url`.
pub async fn transport_for(
    url: &url::Url,
    options: &TransportOptions,
) -> anyhow::Result<Transport> {
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => bail!("{url} has no host"),
    };
    Ok(Transport::new(&host, options).await?)
}

/// The error for a request that cannot be built (a bad URL).
fn build_error(url: &url::Url, error: reqwest::Error) -> RegistryError {
    RegistryError::Config(format!(
        "building the request to {}: {error}",
        crate::registry::transport::redact_url(url)
    ))
}

/// Takes `access_token` from the JSON answer of the token request to `url`.
fn read_token(answer: &SmallAnswer, url: &url::Url) -> anyhow::Result<Secret> {
    let shown = crate::registry::transport::redact_url(url);
    let body = answer.text();
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if !(200..300).contains(&answer.status) {
        let error = match (
            parsed["error"].as_str(),
            parsed["error_description"].as_str(),
        ) {
            (Some(e), Some(d)) => format!("{e}: {d}"),
            (Some(e), None) => e.to_string(),
            _ => body.chars().take(300).collect(),
        };
        bail!("{shown} answered HTTP {}: {error}", answer.status);
    }
    parsed["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| anyhow!("{shown} answered without an access_token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds_by_option_or_domain() {
        let cloud = |o: Option<&str>, r: &str| Cloud::choose(o, r).map_err(|e| e.to_string());
        assert_eq!(cloud(None, "x.azurecr.io"), Ok(Cloud::Public));
        assert_eq!(cloud(None, "x.azurecr.us"), Ok(Cloud::Government));
        assert_eq!(cloud(None, "x.azurecr.cn:443"), Ok(Cloud::China));
        assert_eq!(cloud(Some("AzureChina"), "x.azurecr.io"), Ok(Cloud::China));
        assert_eq!(cloud(Some(""), "x.azurecr.us"), Ok(Cloud::Government));
        let err = cloud(Some("AzureMoon"), "x.azurecr.io").unwrap_err();
        assert!(
            err.contains("source.azure_environment") && err.contains("AzureMoon"),
            "{err}"
        );
        assert_eq!(Cloud::Public.resource(), "https://management.azure.com/");
    }

    #[test]
    fn identity_choice() {
        let env_of = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let secret = env_of(&[
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_CLIENT_ID", "env-client"),
            ("AZURE_TENANT_ID", "env-tenant"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
        ]);
        match Identity::choose(Some("opt-client"), Some("acr-tenant"), secret) {
            Ok(Identity::ClientSecret {
                client_id, tenant, ..
            }) => {
                assert_eq!(
                    (client_id.as_str(), tenant.as_str()),
                    ("opt-client", "env-tenant")
                );
            }
            other => panic!("{other:?}"),
        }
        let federated = env_of(&[
            ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
            ("AZURE_CLIENT_ID", "c"),
        ]);
        match Identity::choose(None, Some("acr-tenant"), federated) {
            Ok(Identity::Federated {
                client_id, tenant, ..
            }) => {
                assert_eq!((client_id.as_str(), tenant.as_str()), ("c", "acr-tenant"));
            }
            other => panic!("{other:?}"),
        }
        let no_client = Identity::choose(None, Some("t"), env_of(&[("AZURE_CLIENT_SECRET", "s")]));
        assert!(no_client.is_err_and(|e| e.to_string().contains("azure_client_id")));
        let no_tenant = Identity::choose(Some("c"), None, env_of(&[("AZURE_CLIENT_SECRET", "s")]));
        assert!(no_tenant.is_err_and(|e| e.to_string().contains("AZURE_TENANT_ID")));
        assert!(matches!(
            Identity::choose(Some("mi"), None, env_of(&[])),
            Ok(Identity::Managed { client_id: Some(id) }) if id == "mi"
        ));
        assert!(matches!(
            Identity::choose(None, None, env_of(&[])),
            Ok(Identity::Managed { client_id: None })
        ));
        let shown = format!("{:?}", Identity::choose(None, None, secret_only()));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    fn secret_only() -> impl Fn(&str) -> Option<String> {
        |name: &str| match name {
            "AZURE_CLIENT_SECRET" => Some("hunter2".into()),
            "AZURE_CLIENT_ID" | "AZURE_TENANT_ID" => Some("x".into()),
            _ => None,
        }
    }
}
