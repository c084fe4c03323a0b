//! Registry authentication: what to send for a request, following the challenge the registry
//! gave ([token auth spec](https://distribution.github.io/distribution/spec/auth/token/)).
//!
//! 1. The client pings `/v2/`; a `401` carries a `WWW-Authenticate` challenge ([`challenge`]).
//! 2. `Basic`: the credentials go with every request.
//! 3. `Bearer`: a token is fetched from the challenge's `realm` with `service` and the scopes
//!    the request needs (Basic credentials on that GET when we have them, anonymous otherwise),
//!    cached per scope set until it expires, and refetched once when a request still gets 401.
//!
//! [`challenge`]: super::challenge

use super::challenge::{Challenge, Scheme};
use super::error::{diagnostics, Error};
use super::transport::Transport;
use crate::secret::Secret;
use base64::Engine;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Username and password (or a personal access token as password).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
}

impl Credentials {
    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: Secret) -> Credentials {
        Credentials::Basic {
            username: username.into(),
            password,
        }
    }

    fn basic_header(&self) -> String {
        match self {
            Credentials::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }
        }
    }
}

/// The scope a request needs: `repository:<name>:<actions>` entries.
pub fn repository_scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

#[derive(Debug)]
struct CachedToken {
    value: Secret,
    expires: Instant,
}

/// Per-registry authentication state: the last challenge and cached tokens.
#[derive(Debug)]
pub struct Authenticator {
    credentials: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, CachedToken>>,
}

/// A token endpoint's answer.
#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<Secret>,
    #[serde(default)]
    access_token: Option<Secret>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Authenticator {
    /// State for a registry, with optional credentials.
    pub fn new(credentials: Option<Credentials>) -> Authenticator {
        Authenticator {
            credentials,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// True when credentials were configured.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// Records the registry's challenge (from the ping, or a later 401).
    pub fn set_challenge(&self, challenge: Option<Challenge>) {
        if let Ok(mut slot) = self.challenge.lock() {
            *slot = challenge;
        }
    }

    fn challenge(&self) -> Option<Challenge> {
        self.challenge.lock().ok().and_then(|c| c.clone())
    }

    /// Forgets the cached token for these scopes (after a 401).
    pub fn invalidate(&self, scopes: &[String]) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(&scopes.join(" "));
        }
    }

    /// The `Authorization` header value for a request needing `scopes`, if any.
    pub async fn authorization(
        &self,
        transport: &Transport,
        scopes: &[String],
        repository: Option<&str>,
    ) -> Result<Option<Secret>, Error> {
        let Some(challenge) = self.challenge() else {
            return Ok(None);
        };
        match challenge.scheme {
            Scheme::Basic => Ok(self
                .credentials
                .as_ref()
                .map(|c| Secret::new(c.basic_header()))),
            Scheme::Bearer => {
                let key = scopes.join(" ");
                if let Ok(tokens) = self.tokens.lock() {
                    if let Some(cached) = tokens.get(&key) {
                        if cached.expires > Instant::now() {
                            return Ok(Some(Secret::new(format!(
                                "Bearer {}",
                                cached.value.expose()
                            ))));
                        }
                    }
                }
                let (token, lifetime) = self
                    .fetch_token(transport, &challenge, scopes, repository)
                    .await?;
                let header = Secret::new(format!("Bearer {}", token.expose()));
                if let Ok(mut tokens) = self.tokens.lock() {
                    tokens.insert(
                        key,
                        CachedToken {
                            value: token,
                            // Renew a little early so a token never expires in flight.
                            expires: Instant::now() + lifetime.saturating_sub(lifetime / 10),
                        },
                    );
                }
                Ok(Some(header))
            }
            Scheme::Other(ref name) => Err(Error::Protocol {
                registry: transport.host().to_string(),
                detail: format!(
                    "it asks for authentication scheme {name:?}; only Basic and Bearer are supported"
                ),
            }),
        }
    }

    async fn fetch_token(
        &self,
        transport: &Transport,
        challenge: &Challenge,
        scopes: &[String],
        repository: Option<&str>,
    ) -> Result<(Secret, Duration), Error> {
        let registry = transport.host().to_string();
        let realm = challenge.param("realm").ok_or_else(|| Error::Protocol {
            registry: registry.clone(),
            detail: "its Bearer challenge has no realm".into(),
        })?;
        let mut url = url::Url::parse(realm).map_err(|e| Error::Protocol {
            registry: registry.clone(),
            detail: format!("its token realm {realm:?} is not a URL ({e})"),
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = challenge.param("service") {
                query.append_pair("service", service);
            }
            for scope in scopes {
                query.append_pair("scope", scope);
            }
        }
        let mut request = transport.http().get(url.clone());
        if let Some(credentials) = &self.credentials {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                credentials.basic_header().as_str(),
            );
        }
        let request = request.build().map_err(|e| Error::Protocol {
            registry: registry.clone(),
            detail: format!("cannot build the token request: {e}"),
        })?;
        let response = transport.send(request).await?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| Error::Transport {
            host: registry.clone(),
            detail: format!("reading the token response: {e}"),
        })?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized {
                registry,
                repository: repository.map(str::to_string),
                had_credentials: self.credentials.is_some(),
                detail: format!(
                    "token server {} said: {}",
                    url.origin().ascii_serialization(),
                    diagnostics(&body)
                ),
            });
        }
        if !status.is_success() {
            return Err(Error::Status {
                registry,
                method: "GET".into(),
                url: super::transport::redact_url(&url),
                status: status.as_u16(),
                diagnostics: diagnostics(&body),
                retry_after: None,
            });
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
            registry: registry.clone(),
            detail: format!("its token server answered with invalid JSON ({e})"),
        })?;
        let token = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| Error::Protocol {
                registry,
                detail: "its token server answered without `token` or `access_token`".into(),
            })?;
        // The spec: 60 s when absent.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60));
        Ok((token, lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_encodes_user_and_password() {
        let c = Credentials::basic("user", Secret::new("pa:ss"));
        assert_eq!(c.basic_header(), "Basic dXNlcjpwYTpzcw==");
        assert!(!format!("{c:?}").contains("pa:ss"));
    }

    #[test]
    fn scopes() {
        assert_eq!(
            repository_scope("library/golang", "pull"),
            "repository:library/golang:pull"
        );
    }
}
