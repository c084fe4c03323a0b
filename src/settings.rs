//! [`Settings`]: the validated form of a request's `source`, built once: the image
//! [`Reference`], the transport options every registry client is built from, credentials by
//! registry, and the Docker Hub mirror. Also where the mirror-then-origin order lives.

use crate::credentials::Keychain;
use crate::log::Log;
use crate::reference::{Reference, DOCKER_HUB_API};
use crate::registry::auth::Credentials;
use crate::registry::transport::{InsecureRule, TlsCa, TlsIdentity, TransportOptions};
use crate::registry::Client;
use crate::resource::{CaCert, ClientCert, RegistryMirror, Source};
use anyhow::Context as _;

/// Environment variable that replaces Docker Hub's API host (`registry-1.docker.io`), for
/// air-gapped setups and tests that stand a local registry in for Docker Hub.
pub const DOCKER_HUB_HOST_ENV: &str = "IMAGE_RESOURCE_DOCKER_HUB_HOST";

/// Validated settings from `source`.
#[derive(Debug)]
pub struct Settings {
    /// The image.
    pub reference: Reference,
    /// TLS and trace options for every registry client.
    pub transport: TransportOptions,
    /// Credentials for every registry, from every source the user configured.
    pub keychain: Keychain,
    mirror: Option<RegistryMirror>,
}

/// `source.ca_certs` as the registry client takes them.
pub fn tls_cas(source: &Source) -> Vec<TlsCa> {
    let convert = |ca: &CaCert| TlsCa {
        domain: ca.domain.clone(),
        cert: ca.cert.clone(),
    };
    source.ca_certs.iter().map(convert).collect()
}

/// `source.client_certs` as the registry client takes them.
pub fn tls_identities(source: &Source) -> Vec<TlsIdentity> {
    let convert = |cc: &ClientCert| TlsIdentity {
        domain: cc.domain.clone(),
        cert: cc.cert.clone(),
        key: cc.key.clone(),
    };
    source.client_certs.iter().map(convert).collect()
}

/// Where to read an image from: a registry client and the repository path on it.
#[derive(Debug)]
pub struct Endpoint {
    /// The client (shared with download tasks).
    pub client: std::sync::Arc<Client>,
    /// Repository path on that registry.
    pub repository: String,
    /// `mirror HOST` or `registry HOST`, for messages.
    pub label: String,
}

impl Settings {
    /// Validates `source`. Every client and credential source built from these settings
    /// writes its notes (retries, `debug` traces, credential choices) to `log`.
    pub fn from_source(source: &Source, log: &Log) -> anyhow::Result<Settings> {
        let reference = source.reference()?;
        let mut insecure = source
            .insecure_registries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                InsecureRule::parse(entry).with_context(|| format!("insecure_registries[{i}]"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if source.insecure {
            insecure.push(InsecureRule::Host(
                reference.registry().to_ascii_lowercase(),
            ));
            insecure.push(InsecureRule::Host(
                api_host(&reference).to_ascii_lowercase(),
            ));
        }
        let keychain = Keychain::from_source(source, &api_host(&reference), log)?;
        Ok(Settings {
            reference,
            transport: TransportOptions {
                ca_certs: tls_cas(source),
                client_certs: tls_identities(source),
                insecure,
                debug: source.debug,
                timeouts: crate::registry::retry::Timeouts::from_env(),
                retry: crate::registry::retry::RetryPolicy::from_env(),
                log: log.clone(),
            },
            keychain,
            mirror: source.registry_mirror.clone(),
        })
    }

    /// The API host of the repository's own registry.
    pub fn origin_host(&self) -> String {
        api_host(&self.reference)
    }

    /// A client for the repository's own registry, with the keychain's credentials for it.
    pub async fn origin(&self) -> anyhow::Result<Endpoint> {
        let host = self.origin_host();
        let credentials = self.credentials_for(&host).await?;
        let client = Client::new(&host, credentials, &self.transport)
            .await
            .with_context(|| format!("setting up the client for registry {host}"))?;
        Ok(Endpoint {
            client: std::sync::Arc::new(client),
            repository: self.reference.repository().to_string(),
            label: format!("registry {host}"),
        })
    }

    /// The API host of any reference (Docker Hub's honouring [`DOCKER_HUB_HOST_ENV`]).
    pub fn api_host_of(&self, reference: &Reference) -> String {
        api_host(reference)
    }

    /// A client for another reference's registry, with the source's TLS options and the
    /// keychain's credentials for that registry (explicit `username`/`password` go only to
    /// the source's own registry).
    pub async fn client_for(&self, reference: &Reference) -> anyhow::Result<Client> {
        let host = api_host(reference);
        let credentials = self.credentials_for(&host).await?;
        Client::new(&host, credentials, &self.transport)
            .await
            .with_context(|| format!("setting up the client for registry {host}"))
    }

    /// The credentials for registry `host` from the keychain (`None`: anonymous).
    pub async fn credentials_for(&self, host: &str) -> anyhow::Result<Option<Credentials>> {
        Ok(self
            .keychain
            .lookup(host)
            .await?
            .map(|found| found.credentials))
    }

    /// Where to read from, in order: the mirror (Docker Hub repositories only), then the
    /// repository's own registry.
    pub async fn pull_endpoints(&self) -> anyhow::Result<Vec<Endpoint>> {
        let mut endpoints = Vec::with_capacity(2);
        if let (Some(mirror), true) = (&self.mirror, self.reference.is_docker_hub()) {
            // R's mirror credentials, else whatever the keychain has for the mirror's host.
            let credentials = match (&mirror.username, &mirror.password) {
                (Some(u), Some(p)) if !u.is_empty() => {
                    Some(Credentials::basic(u.clone(), p.clone()))
                }
                _ => self.credentials_for(&mirror.host).await?,
            };
            let mut transport = self.transport.clone();
            if mirror.scheme.as_deref() == Some("http") {
                // A mirror given as http:// URL is meant to be spoken to in plain HTTP.
                transport
                    .insecure
                    .push(InsecureRule::Host(mirror.host.to_ascii_lowercase()));
            }
            let client = Client::new(&mirror.host, credentials, &transport)
                .await
                .with_context(|| {
                    format!("setting up the client for registry_mirror {}", mirror.host)
                })?;
            endpoints.push(Endpoint {
                client: std::sync::Arc::new(client),
                repository: self.reference.repository().to_string(),
                label: format!("mirror {}", mirror.host),
            });
        }
        endpoints.push(self.origin().await?);
        Ok(endpoints)
    }
}

/// The API host for a reference, honouring [`DOCKER_HUB_HOST_ENV`].
fn api_host(reference: &Reference) -> String {
    if reference.is_docker_hub() {
        match std::env::var(DOCKER_HUB_HOST_ENV) {
            Ok(host) if !host.trim().is_empty() => host.trim().to_string(),
            _ => DOCKER_HUB_API.to_string(),
        }
    } else {
        reference.api_host().to_string()
    }
}

/// Runs `operation` against each endpoint in turn until one succeeds, returning that
/// endpoint and the value; a failure on a mirror is reported on the endpoint client's log and
/// the next endpoint
/// is tried. The last error is returned with the earlier ones named in it.
pub async fn first_success<'e, T>(
    endpoints: &'e [Endpoint],
    operation: impl AsyncFn(&Endpoint) -> anyhow::Result<T>,
) -> anyhow::Result<(&'e Endpoint, T)> {
    first_found(endpoints, operation, |_| true).await
}

/// [`first_success`] where a mirror's answer that `found` calls "not found" (a missing tag,
/// an empty tag list) also falls through to the next endpoint, as R's `check` does; the last
/// endpoint's answer is returned whatever it is.
pub async fn first_found<'e, T>(
    endpoints: &'e [Endpoint],
    operation: impl AsyncFn(&Endpoint) -> anyhow::Result<T>,
    found: impl Fn(&T) -> bool,
) -> anyhow::Result<(&'e Endpoint, T)> {
    let mut failures: Vec<String> = Vec::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let next = endpoints.get(i + 1);
        match (operation(endpoint).await, next) {
            (Ok(value), None) => return Ok((endpoint, value)),
            (Ok(value), Some(_)) if found(&value) => return Ok((endpoint, value)),
            (Ok(_), Some(next)) => {
                endpoint.client.log().line(format_args!(
                    "{} does not have it (not found), falling back to {}",
                    endpoint.label, next.label
                ));
                failures.push(format!("{}: not found", endpoint.label));
            }
            (Err(e), Some(next)) => {
                endpoint.client.log().line(format_args!(
                    "{} failed, falling back to {}: {e:#}",
                    endpoint.label, next.label
                ));
                failures.push(format!("{}: {e:#}", endpoint.label));
            }
            (Err(e), None) if failures.is_empty() => return Err(e),
            (Err(e), None) => {
                return Err(anyhow::anyhow!(
                    "{e:#} (before that, {})",
                    failures.join("; ")
                ));
            }
        }
    }
    anyhow::bail!("no registry endpoint to try")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use serde_json::json;

    #[test]
    fn tls_options_carry_every_ca_and_identity_over() {
        let source: Source = serde_json::from_value(json!({
            "repository": "registry.local/app",
            "ca_certs": ["PEM-ALL", {"domain": "registry.local", "cert": "PEM-ONE"}],
            "client_certs": [{"domain": "registry.local", "cert": "CERT", "key": "KEY"}],
        }))
        .unwrap();
        assert_eq!(
            tls_cas(&source),
            [
                TlsCa {
                    domain: None,
                    cert: "PEM-ALL".into()
                },
                TlsCa {
                    domain: Some("registry.local".into()),
                    cert: "PEM-ONE".into()
                },
            ]
        );
        assert_eq!(
            tls_identities(&source),
            [TlsIdentity {
                domain: "registry.local".into(),
                cert: "CERT".into(),
                key: Secret::new("KEY".to_string()),
            }]
        );
    }
}
