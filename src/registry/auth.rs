//! Registry authentication: what to send for a request, following the challenge the registry
//! gave ([token auth spec](https://distribution.github.io/distribution/spec/auth/token/)).
//!
//! 1. The client pings `/v2/`; a `401` carries a `WWW-Authenticate` challenge ([`challenge`]).
//! 2. `Basic`: the credentials go with every request.
//! 3. `Bearer`: a token is fetched from the challenge's `realm` with `service` and the scopes
//!    the request needs (Basic credentials on that GET when we have them, anonymous otherwise;
//!    an identity token is an OAuth2 refresh token, sent as a `grant_type=refresh_token`
//!    POST form), cached per scope set until it expires, and refetched once when a request
//!    still gets 401.
//! 4. A registry token (Docker's `registrytoken`) is sent as `Bearer <token>` as it is: no
//!    exchange, whatever the challenge.
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
    /// An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the Bearer realm for
    /// an access token; useless with a Basic challenge.
    IdentityToken(Secret),
    /// A bearer token for the registry itself (Docker's `registrytoken`), sent as it is.
    RegistryToken(Secret),
}

/// OAuth2 `client_id` sent with refresh-token exchanges.
pub const CLIENT_ID: &str = "image-resource";

impl Credentials {
    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: Secret) -> Credentials {
        Credentials::Basic {
            username: username.into(),
            password,
        }
    }

    /// What kind of credentials these are, for messages (never the secret).
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::Basic { .. } => "username and password",
            Credentials::IdentityToken(_) => "identity token",
            Credentials::RegistryToken(_) => "registry token",
        }
    }

    /// `Basic base64(user:password)`; `None` for token credentials.
    fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
            }
            Credentials::IdentityToken(_) | Credentials::RegistryToken(_) => None,
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
        if let Some(Credentials::RegistryToken(token)) = &self.credentials {
            return Ok(Some(Secret::new(format!("Bearer {}", token.expose()))));
        }
        match challenge.scheme {
            Scheme::Basic => match &self.credentials {
                None => Ok(None),
                Some(credentials) => match credentials.basic_header() {
                    Some(header) => Ok(Some(Secret::new(header))),
                    None => Err(Error::Protocol {
                        registry: transport.host().to_string(),
                        detail: format!(
                            "it asks for Basic authentication, but the credentials found for it \
                             are an {}, which only works with Bearer token auth: give a \
                             username and password for this registry instead",
                            credentials.kind()
                        ),
                    }),
                },
            },
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
        let (method, request) = match &self.credentials {
            Some(Credentials::IdentityToken(token)) => (
                "POST",
                refresh_token_request(transport, &url, challenge, scopes, token),
            ),
            credentials => {
                let mut request = transport.http().get(url.clone());
                if let Some(header) = credentials.as_ref().and_then(Credentials::basic_header) {
                    request = request.header(reqwest::header::AUTHORIZATION, header.as_str());
                }
                ("GET", request)
            }
        };
        let request = request.build().map_err(|e| Error::Protocol {
            registry: registry.clone(),
            detail: format!("cannot build the token request: {e}"),
        })?;
        let response = transport.send(request).await?;
        let status = response.status();
        let retry_after = super::retry::retry_after(response.headers());
        let body = read_token_body(transport, response).await?;
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
                method: method.into(),
                url: super::transport::redact_url(&url),
                status: status.as_u16(),
                diagnostics: diagnostics(&body),
                retry_after,
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

/// The largest token response we read (tokens are a few KiB; a JWT with many grants
/// stays far below this).
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;

/// Reads a token server's answer, refusing one larger than [`MAX_TOKEN_RESPONSE`] before it
/// is read whole.
async fn read_token_body(
    transport: &Transport,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, Error> {
    let too_large = || Error::TooLarge {
        registry: transport.host().to_string(),
        what: "a token response".into(),
        limit: MAX_TOKEN_RESPONSE,
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_TOKEN_RESPONSE)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > MAX_TOKEN_RESPONSE {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(transport.body_error(e, "reading the token response")),
        }
    }
}

/// The OAuth2 refresh-token grant for an identity token (Docker/distribution's
/// [OAuth2 token spec](https://distribution.github.io/distribution/spec/auth/oauth/)): a POST
/// form to the realm (without the GET's query) with `service`, the scopes space-separated,
/// and our `client_id`.
fn refresh_token_request(
    transport: &Transport,
    url: &url::Url,
    challenge: &Challenge,
    scopes: &[String],
    token: &Secret,
) -> reqwest::RequestBuilder {
    let mut realm = url.clone();
    realm.set_query(None);
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "refresh_token");
    form.append_pair("refresh_token", token.expose());
    if let Some(service) = challenge.param("service") {
        form.append_pair("service", service);
    }
    if !scopes.is_empty() {
        form.append_pair("scope", &scopes.join(" "));
    }
    form.append_pair("client_id", CLIENT_ID);
    transport
        .http()
        .post(realm)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_encodes_user_and_password() {
        let c = Credentials::basic("user", Secret::new("pa:ss"));
        assert_eq!(c.basic_header().as_deref(), Some("Basic dXNlcjpwYTpzcw=="));
        assert!(!format!("{c:?}").contains("pa:ss"));
    }

    #[test]
    fn token_credentials_have_no_basic_header_and_redact() {
        for c in [
            Credentials::IdentityToken(Secret::new("refresh-xyz")),
            Credentials::RegistryToken(Secret::new("bearer-xyz")),
        ] {
            assert_eq!(c.basic_header(), None);
            let shown = format!("{c:?}");
            assert!(!shown.contains("-xyz"), "{shown}");
        }
    }

    #[test]
    fn json_key_survives_the_basic_header() {
        let key = "{\n  \"type\": \"service_account\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIE:abc\\n-----END PRIVATE KEY-----\\n\"\n}";
        let c = Credentials::basic("_json_key", Secret::new(key));
        let header = c.basic_header().unwrap_or_default();
        let encoded = header.strip_prefix("Basic ").unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map(String::from_utf8);
        let expected = format!("_json_key:{key}");
        assert!(matches!(decoded, Ok(Ok(ref text)) if *text == expected));
    }

    #[test]
    fn scopes() {
        assert_eq!(
            repository_scope("library/golang", "pull"),
            "repository:library/golang:pull"
        );
    }
}
