//! [`Client`]: the distribution API calls for one registry, over its [`Transport`] and
//! [`Authenticator`]. The first request pings `/v2/` to pick the scheme (HTTPS, or HTTP for
//! insecure and loopback registries) and learn the auth challenge. Every request goes
//! through the one [`super::retry`] policy: `Client::send_with` retries idempotent
//! requests, `Client::get_small` also retries a body that breaks while being read.

use super::auth::{repository_scope, Authenticator, Credentials};
use super::challenge;
use super::error::{diagnostics, Error};
use super::retry::{self, is_retryable_status};
use super::transport::{redact_url, Transport, TransportOptions};
use crate::digest;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use tokio::sync::OnceCell;

/// Media types we accept for manifests, most specific first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest we read (distribution's own limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// The most of an error body we read (for its diagnostics).
const MAX_ERROR_BODY: u64 = 64 << 10;

/// What a manifest HEAD or GET tells: media type (`Content-Type`), digest (the algorithm
/// asked for, else sha256) and size, as the image model's descriptor.
pub use crate::image::model::Descriptor;
use crate::image::model::Digest;

/// One request for [`Client::send_with`].
pub(crate) struct Request<'a> {
    /// HTTP method.
    pub method: Method,
    /// Absolute URL.
    pub url: &'a str,
    /// `Accept` header.
    pub accept: Option<&'a str>,
    /// Token scopes the request needs.
    pub scopes: &'a [String],
    /// Repository, for messages.
    pub repository: &'a str,
    /// Extra headers.
    pub headers: &'a [(&'static str, String)],
    /// Makes the body (again, for a retry).
    pub body: &'a (dyn Fn() -> Option<reqwest::Body> + Sync),
    /// True when sending it twice does no harm, so temporary failures are retried here;
    /// false for steps of an upload session, which their caller restarts whole instead.
    pub idempotent: bool,
}

/// A client for one registry host.
#[derive(Debug)]
pub struct Client {
    transport: Transport,
    auth: Authenticator,
    base: OnceCell<String>,
}

impl Client {
    /// A client for `host` (`host[:port]`, the API host) with optional credentials.
    pub async fn new(
        host: &str,
        credentials: Option<Credentials>,
        options: &TransportOptions,
    ) -> Result<Client, Error> {
        Ok(Client {
            transport: Transport::new(host, options).await?,
            auth: Authenticator::new(credentials),
            base: OnceCell::new(),
        })
    }

    /// The registry host.
    pub fn host(&self) -> &str {
        self.transport.host()
    }

    /// Where this client's notes (retries, the `debug` trace) go: the command's log.
    pub fn log(&self) -> &crate::log::Log {
        self.transport.log()
    }

    /// The transport (for its retry policy and error mapping).
    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Pings `/v2/` (once), picking the scheme and recording the auth challenge. Refused
    /// connections, 408, 429 and 5xx are retried (a 429 on plain HTTP is an answer from a
    /// registry, not a reason to report the HTTPS attempt's TLS error).
    pub async fn ping(&self) -> Result<&str, Error> {
        self.base
            .get_or_try_init(|| async {
                let what = format!("the /v2/ probe of registry {}", self.host());
                let mut retry = self.transport.retrying();
                loop {
                    match self.ping_once().await {
                        Err(e)
                            if e.is_temporary()
                                && retry.again(&what, &e, e.retry_after()).await => {}
                        other => return other,
                    }
                }
            })
            .await
            .map(String::as_str)
    }

    /// One round of the probe over every scheme: the base URL, or the error to report: a
    /// busy answer (408, 429, 5xx) first, as a registry did answer; else a lasting failure
    /// (a TLS error on HTTPS is not made temporary by nothing listening on plain HTTP);
    /// else a temporary one (nothing answers at all: down, or restarting).
    async fn ping_once(&self) -> Result<String, Error> {
        let mut first_error: Option<Error> = None;
        let mut busy: Option<Error> = None;
        let mut temporary: Option<Error> = None;
        for scheme in self.transport.schemes() {
            let url = format!("{scheme}://{}/v2/", self.host());
            let request = self
                .transport
                .http()
                .get(&url)
                .build()
                .map_err(|e| Error::Config(format!("invalid registry URL {url}: {e}")))?;
            match self.transport.send(request).await {
                Ok(response) => {
                    let status = response.status();
                    if is_retryable_status(status.as_u16()) {
                        busy = Some(self.status_error("GET", response).await);
                        continue;
                    }
                    let is_registry = status.is_success() || status == StatusCode::UNAUTHORIZED;
                    // Plain HTTP is only taken when a registry really answers there.
                    if *scheme == "http" && !is_registry {
                        continue;
                    }
                    if status == StatusCode::UNAUTHORIZED {
                        self.auth.set_challenge(challenge_of(&response));
                    }
                    return Ok(format!("{scheme}://{}", self.host()));
                }
                Err(e) if e.is_temporary() => temporary = Some(e),
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        Err(busy
            .or(first_error)
            .or(temporary)
            .unwrap_or_else(|| Error::Protocol {
                registry: self.host().to_string(),
                detail: "no /v2/ API endpoint answered".into(),
            }))
    }

    /// Sends an authorised request for `path` (below the base URL).
    async fn send(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        repository: &str,
        actions: &str,
    ) -> Result<reqwest::Response, Error> {
        let base = self.ping().await?;
        let url = format!("{base}{path}");
        let scopes = vec![repository_scope(repository, actions)];
        self.send_with(Request {
            method,
            url: &url,
            accept,
            scopes: &scopes,
            repository,
            headers: &[],
            body: &|| None,
            idempotent: true,
        })
        .await
    }

    /// The base URL (`scheme://host`), pinging first if needed.
    pub async fn base_url(&self) -> Result<String, Error> {
        self.ping().await.map(str::to_string)
    }

    /// Sends `request` with the authorization its scopes need (its token fetch retried like
    /// any request), refreshing the token once on 401 (the body is made anew for each try).
    /// An idempotent request is retried on temporary failures (see [`super::retry`]); when
    /// the tries run out, a retryable status is returned as [`Error::Status`].
    /// 401 and 403 become [`Error::Unauthorized`] / [`Error::Denied`].
    pub(crate) async fn send_with(&self, request: Request<'_>) -> Result<reqwest::Response, Error> {
        self.ping().await?;
        let what = format!(
            "{} {}",
            request.method,
            parse_shown(request.url).unwrap_or_default()
        );
        let mut retry = self.transport.retrying();
        let mut refreshed = false;
        loop {
            let response = match self.send_once(&request).await {
                Ok(response) => response,
                Err(e) if request.idempotent && e.is_temporary() => {
                    if retry.again(&what, &e, e.retry_after()).await {
                        continue;
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let status = response.status();
            if request.idempotent && is_retryable_status(status.as_u16()) {
                let e = self.status_error(request.method.as_str(), response).await;
                if retry.again(&what, &e, e.retry_after()).await {
                    continue;
                }
                return Err(e);
            }
            match status {
                StatusCode::UNAUTHORIZED if !refreshed => {
                    // A new or changed challenge (e.g. the ping needed no auth), or an expired
                    // token: learn it, forget the token, try once more.
                    refreshed = true;
                    if let Some(c) = challenge_of(&response) {
                        self.auth.set_challenge(Some(c));
                    }
                    self.auth.invalidate(request.scopes);
                }
                StatusCode::UNAUTHORIZED => {
                    let mut detail = challenge_of(&response)
                        .and_then(|c| c.param("error").map(str::to_string))
                        .unwrap_or_default();
                    let body = read_limited(response, MAX_ERROR_BODY).await;
                    let diag = diagnostics(&body);
                    if !diag.is_empty() {
                        if !detail.is_empty() {
                            detail.push_str("; ");
                        }
                        detail.push_str(&diag);
                    }
                    return Err(Error::Unauthorized {
                        registry: self.host().to_string(),
                        repository: Some(request.repository.to_string()),
                        had_credentials: self.auth.has_credentials(),
                        detail,
                    });
                }
                StatusCode::FORBIDDEN => {
                    let body = read_limited(response, MAX_ERROR_BODY).await;
                    return Err(Error::Denied {
                        registry: self.host().to_string(),
                        repository: request.repository.to_string(),
                        detail: diagnostics(&body),
                    });
                }
                _ => return Ok(response),
            }
        }
    }

    /// One try of `request`: authorization, then the send.
    async fn send_once(&self, request: &Request<'_>) -> Result<reqwest::Response, Error> {
        let mut builder = self
            .transport
            .http()
            .request(request.method.clone(), request.url);
        if let Some(accept) = request.accept {
            builder = builder.header(ACCEPT, accept);
        }
        for (name, value) in request.headers {
            builder = builder.header(*name, value.as_str());
        }
        if let Some(body) = (request.body)() {
            builder = builder.body(body);
        }
        if let Some(auth) = self
            .auth
            .authorization(&self.transport, request.scopes, Some(request.repository))
            .await?
        {
            let mut value = HeaderValue::from_str(auth.expose()).map_err(|_| {
                Error::Config(format!(
                    "credentials for registry {} contain characters that cannot go in an HTTP header",
                    self.host()
                ))
            })?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        let built = builder
            .build()
            .map_err(|e| Error::Config(format!("invalid request URL {}: {e}", request.url)))?;
        self.transport.send(built).await
    }

    /// An error for an unexpected status, with the body's diagnostics.
    pub(crate) async fn status_error(&self, method: &str, response: reqwest::Response) -> Error {
        let status = response.status().as_u16();
        let url = redact_url(response.url());
        let retry_after = retry::retry_after(response.headers());
        let body = read_limited(response, MAX_ERROR_BODY).await;
        Error::Status {
            registry: self.host().to_string(),
            method: method.to_string(),
            url,
            status,
            diagnostics: diagnostics(&body),
            retry_after,
        }
    }

    /// A `GET` of a small document (manifest, config, tag page) read whole into memory, the
    /// request and the reading of its body retried together. `None` on 404. More than
    /// `limit` bytes (by `Content-Length`, before reading, or as they come) is an error.
    pub(crate) async fn get_small(
        &self,
        url: &str,
        accept: Option<&str>,
        scopes: &[String],
        repository: &str,
        limit: u64,
        what: &str,
    ) -> Result<Option<(HeaderMap, Vec<u8>)>, Error> {
        let mut retry = self.transport.retrying();
        loop {
            let response = self
                .send_with(Request {
                    method: Method::GET,
                    url,
                    accept,
                    scopes,
                    repository,
                    headers: &[],
                    body: &|| None,
                    idempotent: true,
                })
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !response.status().is_success() {
                return Err(self.status_error("GET", response).await);
            }
            let too_large = || Error::TooLarge {
                registry: self.host().to_string(),
                what: what.to_string(),
                limit,
            };
            if response.content_length().is_some_and(|n| n > limit) {
                return Err(too_large());
            }
            let headers = response.headers().clone();
            match self.transport.read_body(response, limit, what).await {
                Ok(Some(body)) => return Ok(Some((headers, body))),
                Ok(None) => return Err(too_large()),
                Err(e) if e.is_temporary() && retry.again(what, &e, None).await => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// `HEAD /v2/<repository>/manifests/<reference>`: the manifest's descriptor, or `None`
    /// when it does not exist. Falls back to GET (hashing the body) when the registry sends no
    /// `Docker-Content-Digest` or refuses HEAD.
    pub async fn head_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Descriptor>, Error> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = self
            .send(
                Method::HEAD,
                &path,
                Some(MANIFEST_ACCEPT),
                repository,
                "pull",
            )
            .await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status.is_success() {
            let headers = response.headers();
            let digest = header_str(headers, "docker-content-digest");
            let size = header_str(headers, "content-length").and_then(|v| v.parse::<u64>().ok());
            let media_type = header_str(headers, "content-type");
            let digest = digest.and_then(|d| Digest::parse(d).ok());
            if let (Some(digest), Some(size), Some(media_type)) = (digest, size, media_type) {
                let sha256 = digest.algorithm() == crate::digest::Algorithm::Sha256;
                if sha256 || !reference.contains(':') {
                    return Ok(Some(Descriptor::new(media_type, digest, size)));
                }
            }
        }
        Ok(self
            .get_manifest(repository, reference)
            .await?
            .map(|(descriptor, _)| descriptor))
    }

    /// `GET /v2/<repository>/manifests/<reference>`: the descriptor and the raw bytes (kept
    /// as sent, so the digest holds), or `None` when it does not exist. The body is hashed in
    /// the algorithm of the requested digest (sha256, sha384 or sha512; another algorithm is
    /// an error before any request) and checked against it, and against a
    /// `Docker-Content-Digest` in an algorithm we know.
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(Descriptor, Vec<u8>)>, Error> {
        let by_digest = reference.contains(':');
        let what = format!("manifest {reference} of {repository}");
        let asked = if by_digest {
            Some(Digest::parse(reference).map_err(|e| Error::Protocol {
                registry: self.host().to_string(),
                detail: format!("{what}: {e}"),
            })?)
        } else {
            None
        };
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            self.base_url().await?
        );
        let scopes = vec![repository_scope(repository, "pull")];
        let Some((headers, body)) = self
            .get_small(
                &url,
                Some(MANIFEST_ACCEPT),
                &scopes,
                repository,
                MAX_MANIFEST_BYTES,
                &what,
            )
            .await?
        else {
            return Ok(None);
        };
        let media_type = header_str(&headers, "content-type")
            .unwrap_or_default()
            .to_string();
        let claimed = header_str(&headers, "docker-content-digest").map(str::to_string);
        let sha256 = Digest::sha256_of(&body);
        let mut checks: Vec<String> = Vec::new();
        if by_digest {
            checks.push(reference.to_string());
        }
        if let Some(claimed) = claimed {
            if digest::Hasher::for_digest(&claimed).is_ok() {
                checks.push(claimed);
            }
        }
        for expected in &checks {
            let actual = digest::of(expected, &body).unwrap_or_else(|_| sha256.to_string());
            if &actual != expected {
                return Err(Error::DigestMismatch {
                    registry: self.host().to_string(),
                    what,
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let size = body.len() as u64;
        Ok(Some((
            Descriptor::new(media_type, asked.unwrap_or(sha256), size),
            body,
        )))
    }
}

/// A URL for messages (secrets redacted), if it parses.
fn parse_shown(url: &str) -> Option<String> {
    url::Url::parse(url).ok().map(|u| redact_url(&u))
}

/// Up to `limit` bytes of a body, for diagnostics; read errors end it quietly.
async fn read_limited(mut response: reqwest::Response, limit: u64) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = (limit as usize).saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() as u64 >= limit {
            break;
        }
    }
    body
}

pub(crate) fn header_str<'a>(
    headers: &'a reqwest::header::HeaderMap,
    name: &str,
) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn challenge_of(response: &reqwest::Response) -> Option<challenge::Challenge> {
    response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(challenge::parse)
        .find(|c| !matches!(c.scheme, challenge::Scheme::Other(_)))
}
