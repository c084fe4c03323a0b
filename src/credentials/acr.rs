//! Azure ACR (`azure_acr: true`, R's options): an Entra ID (AAD) token ([`aad`]) exchanged at
//! the registry's `POST /oauth2/exchange` (`grant_type=access_token`, `service`, `tenant`,
//! `access_token`) for an ACR refresh token, which becomes Basic credentials with the user
//! `00000000-0000-0000-0000-000000000000` (as R and `az acr login` do); the registry's token
//! endpoint takes them like any password.
//!
//! - Which registries: the repository's own, and other ACR hosts (`*.azurecr.io`, `.us`,
//!   `.cn`) the run meets (base images, `pull_repository`); one exchange per registry, one AAD
//!   token per run.
//! - `tenant` of the exchange: `azure_tenant_id` (the registry's tenant, R's meaning), else
//!   the `tenant=` of the registry's `/v2/` challenge, else `common` (R's order).
//! - Transport: the registry's own TLS options (`ca_certs`, `client_certs`, `insecure*`) and
//!   schemes (plain HTTP only for loopback and insecure registries, as for the registry API).

pub mod aad;

use super::Found;
use crate::registry::auth::Credentials;
use crate::registry::error::Error as RegistryError;
use crate::registry::retry::{is_retryable_status, send_small, Expect};
use crate::registry::transport::{InsecureRule, Transport, TransportOptions};
use crate::resource::Source;
use crate::secret::Secret;
use aad::{Cloud, Identity};
use anyhow::{anyhow, bail, Context as _};

/// The user name ACR takes with a refresh token as password.
pub const REFRESH_TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";

/// The configured source.
#[derive(Debug)]
pub struct Acr {
    origin_host: String,
    cloud: Cloud,
    identity: Identity,
    tenant: Option<String>,
    options: TransportOptions,
    aad_token: tokio::sync::Mutex<Option<Secret>>,
}

/// A string option that counts as set: present and not blank.
fn given(option: &Option<String>) -> Option<&str> {
    option.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// True for an ACR registry host.
fn is_acr_host(host: &str) -> bool {
    let (name, _) = crate::registry::transport::split_host_port(host);
    let name = name.to_ascii_lowercase();
    [".azurecr.io", ".azurecr.us", ".azurecr.cn"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// The `tenant=` value in a `WWW-Authenticate` challenge (R's parse), if any.
fn challenge_tenant(header: &str) -> Option<String> {
    let start = header.find("tenant=")? + "tenant=".len();
    let value: String = header[start..]
        .chars()
        .take_while(|c| !matches!(c, '"' | '&' | ',' | ' '))
        .collect();
    (!value.is_empty()).then_some(value)
}

impl Acr {
    /// Reads the options; `None` unless `azure_acr` is true.
    /// HTTP traces and retry notes go to `log`.
    pub fn from_source(
        source: &Source,
        origin_host: &str,
        log: &crate::log::Log,
    ) -> anyhow::Result<Option<Acr>> {
        Self::from_source_with(source, origin_host, |name| std::env::var(name).ok(), log)
    }

    fn from_source_with(
        source: &Source,
        origin_host: &str,
        env: impl Fn(&str) -> Option<String>,
        log: &crate::log::Log,
    ) -> anyhow::Result<Option<Acr>> {
        if !source.azure_acr {
            // Other azure_* options alone do nothing: Source::notes says so on stderr.
            return Ok(None);
        }
        if origin_host.eq_ignore_ascii_case(crate::reference::DOCKER_HUB_API) {
            bail!(
                "source.repository {:?} is on Docker Hub, and source.azure_acr is true: Azure \
                 tokens are never sent to Docker Hub; write the full ACR name \
                 (<registry>.azurecr.io/...)",
                source.repository
            );
        }
        let cloud = Cloud::choose(source.azure_environment.as_deref(), origin_host)?;
        let identity = Identity::choose(
            given(&source.azure_client_id),
            given(&source.azure_tenant_id),
            env,
        )?;
        let mut insecure: Vec<InsecureRule> = source
            .insecure_registries
            .iter()
            .filter_map(|entry| InsecureRule::parse(entry).ok())
            .collect();
        if source.insecure {
            insecure.push(InsecureRule::Host(origin_host.to_ascii_lowercase()));
        }
        Ok(Some(Acr {
            origin_host: origin_host.to_ascii_lowercase(),
            cloud,
            identity,
            tenant: given(&source.azure_tenant_id).map(str::to_string),
            options: TransportOptions {
                ca_certs: crate::settings::tls_cas(source),
                client_certs: crate::settings::tls_identities(source),
                insecure,
                debug: source.debug,
                log: log.clone(),
                ..TransportOptions::from_env()
            },
            aad_token: tokio::sync::Mutex::new(None),
        }))
    }

    /// The credentials this source has for registry `host`, if any.
    pub async fn lookup(&self, host: &str) -> anyhow::Result<Option<Found>> {
        let host = host.to_ascii_lowercase();
        if host != self.origin_host && !is_acr_host(&host) {
            return Ok(None);
        }
        let refresh = self.refresh_token(&host).await.with_context(|| {
            format!(
                "Azure ACR credentials for registry {host} (source.azure_acr, with {})",
                self.identity.describe()
            )
        })?;
        Ok(Some(Found {
            credentials: Credentials::basic(REFRESH_TOKEN_USER, refresh),
            from: format!(
                "Azure ACR ({} exchanged at {host}/oauth2/exchange)",
                self.identity.describe()
            ),
        }))
    }

    /// The AAD token (once per run), then the registry's exchange.
    async fn refresh_token(&self, host: &str) -> anyhow::Result<Secret> {
        let aad = {
            let mut cached = self.aad_token.lock().await;
            match cached.as_ref() {
                Some(token) => token.clone(),
                None => {
                    let token = self
                        .identity
                        .token(self.cloud, &self.options)
                        .await
                        .context("getting an Entra ID (AAD) token")?;
                    *cached = Some(token.clone());
                    token
                }
            }
        };
        let transport = Transport::new(host, &self.options).await?;
        let (base, challenged) = self.probe(&transport, host).await?;
        let tenant = self
            .tenant
            .clone()
            .or(challenged)
            .unwrap_or_else(|| "common".to_string());
        let url = format!("{base}/oauth2/exchange");
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "access_token")
            .append_pair("service", host)
            .append_pair("tenant", &tenant)
            .append_pair("access_token", aad.expose())
            .finish();
        // The exchange only hands out a token: safe to repeat, so retried like any request.
        let answer = send_small(&transport, "ACR token exchange", Expect::Service, |http| {
            http.post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.clone())
                .build()
                .map_err(|e| RegistryError::Config(format!("building the request to {url}: {e}")))
        })
        .await?;
        let status = answer.status;
        let body = answer.text();
        if !(200..300).contains(&status) {
            let hint = if self.tenant.is_some() {
                " (source.azure_tenant_id must be the registry's tenant, not the identity's)"
            } else {
                ""
            };
            bail!(
                "POST {url} (tenant {tenant}) answered HTTP {status}: {}{hint}",
                crate::registry::error::diagnostics(body.as_bytes())
            );
        }
        let parsed: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| anyhow!("POST {url} answered with invalid JSON ({e})"))?;
        parsed["refresh_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| anyhow!("POST {url} answered without a refresh_token"))
    }

    /// The registry's base URL (`https://host`, or `http://host` where plain HTTP is allowed
    /// and only it answers) and the tenant its `/v2/` challenge names. Without a tenant to
    /// find and with only HTTPS to try, no request is made (R skips it too). A round over the
    /// schemes is tried again, through the retry policy, when the registry answered 408, 429
    /// or 5xx or could not be reached for a temporary reason (as the registry's own probe).
    async fn probe(
        &self,
        transport: &Transport,
        host: &str,
    ) -> anyhow::Result<(String, Option<String>)> {
        if self.tenant.is_some() && transport.schemes().len() == 1 {
            return Ok((format!("https://{host}"), None));
        }
        let what = format!("the ACR /v2/ probe of registry {host}");
        let mut retry = transport.retrying();
        loop {
            match probe_once(transport, host).await {
                Ok(found) => return Ok(found),
                Err(e) if e.is_temporary() && retry.again(&what, &e, e.retry_after()).await => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// One round of [`Acr::probe`] over the schemes: the first that answers (but for 408, 429
/// or 5xx), else the error to report: a busy answer first, then a lasting failure, then a
/// temporary one.
async fn probe_once(
    transport: &Transport,
    host: &str,
) -> Result<(String, Option<String>), RegistryError> {
    let mut busy = None;
    let mut lasting = None;
    let mut temporary = None;
    for scheme in transport.schemes() {
        let url = format!("{scheme}://{host}/v2/");
        let request =
            transport.http().get(&url).build().map_err(|e| {
                RegistryError::Config(format!("building the request to {url}: {e}"))
            })?;
        match transport.send(request).await {
            Ok(response) if is_retryable_status(response.status().as_u16()) => {
                busy.get_or_insert(RegistryError::Status {
                    registry: host.to_string(),
                    method: "GET".into(),
                    url,
                    status: response.status().as_u16(),
                    diagnostics: String::new(),
                    retry_after: crate::registry::retry::retry_after(response.headers()),
                });
            }
            Ok(response) => {
                let tenant = response
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(challenge_tenant);
                return Ok((format!("{scheme}://{host}"), tenant));
            }
            Err(e) if e.is_temporary() => {
                temporary.get_or_insert(e);
            }
            Err(e) => {
                lasting.get_or_insert(e);
            }
        }
    }
    Err(busy
        .or(lasting)
        .or(temporary)
        .unwrap_or_else(|| RegistryError::Protocol {
            registry: host.to_string(),
            detail: "no scheme to reach it".into(),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(extra: serde_json::Value) -> Source {
        let mut value = json!({"repository": "reg.azurecr.io/app"});
        if let (Some(object), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            object.extend(extra.clone());
        }
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    fn configured(extra: serde_json::Value) -> Result<Option<Acr>, String> {
        Acr::from_source_with(
            &source(extra),
            "reg.azurecr.io",
            |_| None,
            &Default::default(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn options() {
        assert!(matches!(configured(json!({})), Ok(None)));
        assert!(matches!(
            configured(json!({"azure_client_id": "c"})),
            Ok(None)
        ));
        match configured(
            json!({"azure_acr": true, "azure_tenant_id": "t", "azure_client_id": "mi"}),
        ) {
            Ok(Some(acr)) => {
                assert_eq!(acr.tenant.as_deref(), Some("t"));
                assert_eq!(acr.cloud, Cloud::Public);
                assert!(
                    matches!(acr.identity, Identity::Managed { client_id: Some(ref id) } if id == "mi")
                );
            }
            other => panic!("{other:?}"),
        }
        let hub = Acr::from_source_with(
            &source(json!({"azure_acr": true})),
            "registry-1.docker.io",
            |_| None,
            &Default::default(),
        );
        assert!(hub.is_err_and(|e| e.to_string().contains("never sent to Docker Hub")));
        let err = configured(json!({"azure_acr": true, "azure_environment": "Mars"}));
        assert!(err.is_err_and(|e| e.contains("source.azure_environment")));
    }

    #[test]
    fn hosts_and_challenges() {
        assert!(is_acr_host("reg.azurecr.io"));
        assert!(is_acr_host("Reg.AzureCR.us:443"));
        assert!(!is_acr_host("ghcr.io"));
        let header = r#"Bearer realm="https://reg.azurecr.io/oauth2/exchange?tenant=abc-123",service="reg.azurecr.io""#;
        assert_eq!(challenge_tenant(header).as_deref(), Some("abc-123"));
        assert_eq!(
            challenge_tenant(r#"Bearer realm="x",tenant=t1"#).as_deref(),
            Some("t1")
        );
        assert_eq!(
            challenge_tenant(r#"Bearer realm="https://r/oauth2/token""#),
            None
        );
    }
}
