//! [`Client`]: the distribution API calls for one registry, over its [`Transport`] and
//! [`Authenticator`]. The first request pings `/v2/` to pick the scheme (HTTPS, or HTTP for
//! insecure and loopback registries) and learn the auth challenge.

use super::auth::{repository_scope, Authenticator, Credentials};
use super::challenge;
use super::error::{diagnostics, Error};
use super::transport::{redact_url, Transport, TransportOptions};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

/// Media types we accept for manifests, most specific first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest we read (distribution's own limit is 4 MiB).
const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// What a manifest HEAD or GET tells: media type, digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// `Content-Type` of the manifest.
    pub media_type: String,
    /// `sha256:...` of the manifest bytes.
    pub digest: String,
    /// Length of the manifest bytes.
    pub size: u64,
}

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

    /// Pings `/v2/` (once), picking the scheme and recording the auth challenge.
    pub async fn ping(&self) -> Result<&str, Error> {
        self.base
            .get_or_try_init(|| async {
                let mut first_error: Option<Error> = None;
                for scheme in self.transport.schemes() {
                    let url = format!("{scheme}://{}/v2/", self.host());
                    let request =
                        self.transport.http().get(&url).build().map_err(|e| {
                            Error::Config(format!("invalid registry URL {url}: {e}"))
                        })?;
                    match self.transport.send(request).await {
                        Ok(response) => {
                            let status = response.status();
                            let is_registry =
                                status.is_success() || status == StatusCode::UNAUTHORIZED;
                            // Plain HTTP is only taken when a registry really answers there.
                            if *scheme == "http" && !is_registry {
                                continue;
                            }
                            if status == StatusCode::UNAUTHORIZED {
                                self.auth.set_challenge(challenge_of(&response));
                            }
                            return Ok(format!("{scheme}://{}", self.host()));
                        }
                        Err(e) => {
                            if first_error.is_none() {
                                first_error = Some(e);
                            }
                        }
                    }
                }
                Err(first_error.unwrap_or_else(|| Error::Protocol {
                    registry: self.host().to_string(),
                    detail: "no /v2/ API endpoint answered".into(),
                }))
            })
            .await
            .map(String::as_str)
    }

    /// Sends an authorised request for `path` (below the base URL), refreshing the token
    /// once on 401. 401 and 403 become [`Error::Unauthorized`] / [`Error::Denied`].
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
        })
        .await
    }

    /// The base URL (`scheme://host`), pinging first if needed.
    pub async fn base_url(&self) -> Result<String, Error> {
        self.ping().await.map(str::to_string)
    }

    /// Sends `request` with the authorization its scopes need, refreshing the token once on
    /// 401 (the body is made anew for the retry).
    pub(crate) async fn send_with(&self, request: Request<'_>) -> Result<reqwest::Response, Error> {
        self.ping().await?;
        let Request {
            method,
            url,
            accept,
            scopes,
            repository,
            headers,
            body,
        } = request;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut builder = self.transport.http().request(method.clone(), url);
            if let Some(accept) = accept {
                builder = builder.header(ACCEPT, accept);
            }
            for (name, value) in headers {
                builder = builder.header(*name, value.as_str());
            }
            if let Some(body) = body() {
                builder = builder.body(body);
            }
            if let Some(auth) = self
                .auth
                .authorization(&self.transport, scopes, Some(repository))
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
            let request = builder
                .build()
                .map_err(|e| Error::Config(format!("invalid request URL {url}: {e}")))?;
            let response = self.transport.send(request).await?;
            match response.status() {
                StatusCode::UNAUTHORIZED if attempt == 1 => {
                    // A new or changed challenge (e.g. the ping needed no auth), or an expired
                    // token: learn it, forget the token, try once more.
                    if let Some(c) = challenge_of(&response) {
                        self.auth.set_challenge(Some(c));
                    }
                    self.auth.invalidate(scopes);
                }
                StatusCode::UNAUTHORIZED => {
                    let detail = challenge_of(&response)
                        .and_then(|c| c.param("error").map(str::to_string))
                        .unwrap_or_default();
                    let body = response.bytes().await.unwrap_or_default();
                    let mut detail = detail;
                    let diag = diagnostics(&body);
                    if !diag.is_empty() {
                        if !detail.is_empty() {
                            detail.push_str("; ");
                        }
                        detail.push_str(&diag);
                    }
                    return Err(Error::Unauthorized {
                        registry: self.host().to_string(),
                        repository: Some(repository.to_string()),
                        had_credentials: self.auth.has_credentials(),
                        detail,
                    });
                }
                StatusCode::FORBIDDEN => {
                    let body = response.bytes().await.unwrap_or_default();
                    return Err(Error::Denied {
                        registry: self.host().to_string(),
                        repository: repository.to_string(),
                        detail: diagnostics(&body),
                    });
                }
                _ => return Ok(response),
            }
        }
    }

    /// An error for an unexpected status, with the body's diagnostics.
    pub(crate) async fn status_error(&self, method: &str, response: reqwest::Response) -> Error {
        let status = response.status().as_u16();
        let url = redact_url(response.url());
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = response.bytes().await.unwrap_or_default();
        Error::Status {
            registry: self.host().to_string(),
            method: method.to_string(),
            url,
            status,
            diagnostics: diagnostics(&body),
            retry_after,
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
            if let (Some(digest), Some(size), Some(media_type)) = (digest, size, media_type) {
                if digest.starts_with("sha256:") || !reference.contains(':') {
                    return Ok(Some(Descriptor {
                        media_type: media_type.to_string(),
                        digest: digest.to_string(),
                        size,
                    }));
                }
            }
        }
        Ok(self
            .get_manifest(repository, reference)
            .await?
            .map(|(descriptor, _)| descriptor))
    }

    /// `GET /v2/<repository>/manifests/<reference>`: the descriptor and the raw bytes (kept
    /// as sent, so the digest holds), or `None` when it does not exist. The body is hashed and
    /// checked against the requested digest and against `Docker-Content-Digest`.
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(Descriptor, Vec<u8>)>, Error> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = self
            .send(
                Method::GET,
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
        if !status.is_success() {
            return Err(self.status_error("GET", response).await);
        }
        let media_type = header_str(response.headers(), "content-type")
            .unwrap_or_default()
            .to_string();
        let claimed = header_str(response.headers(), "docker-content-digest").map(str::to_string);
        let what = format!("manifest {reference} of {repository}");
        let Some(body) = self.read_body(response, MAX_MANIFEST_BYTES, &what).await? else {
            return Err(Error::Protocol {
                registry: self.host().to_string(),
                detail: format!("{what} is larger than {MAX_MANIFEST_BYTES} bytes"),
            });
        };
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        let expected = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            claimed.filter(|c| c.starts_with("sha256:"))
        };
        if let Some(expected) = expected {
            if expected != digest {
                return Err(Error::DigestMismatch {
                    registry: self.host().to_string(),
                    what: format!("manifest {reference} of {repository}"),
                    expected,
                    actual: digest,
                });
            }
        }
        Ok(Some((
            Descriptor {
                media_type,
                digest,
                size: body.len() as u64,
            },
            body,
        )))
    }
}

impl Client {
    /// `GET /v2/<repository>/blobs/<digest>` streamed into `path`, counting bytes into
    /// `progress`; the size and digest are checked as the bytes pass, and on any failure the
    /// file is removed. Redirects to other hosts (object storage) are followed without the
    /// registry's `Authorization` header.
    pub async fn fetch_blob_to_file(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        path: &std::path::Path,
        progress: &std::sync::atomic::AtomicU64,
    ) -> Result<(), Error> {
        let result = self
            .fetch_blob_inner(repository, digest, size, path, progress)
            .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(path).await;
        }
        result
    }

    async fn fetch_blob_inner(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        path: &std::path::Path,
        progress: &std::sync::atomic::AtomicU64,
    ) -> Result<(), Error> {
        use std::sync::atomic::Ordering;
        use tokio::io::AsyncWriteExt as _;
        let mut response = self.get_blob(repository, digest).await?;
        let io_error = |e: std::io::Error| {
            Error::Config(format!("writing blob {digest} to {}: {e}", path.display()))
        };
        let file = tokio::fs::File::create(path).await.map_err(io_error)?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut hasher = Sha256::new();
        let mut received: u64 = 0;
        while let Some(chunk) = response.chunk().await.map_err(|e| Error::Transport {
            host: self.host().to_string(),
            detail: format!(
                "downloading blob {digest} of {repository} (after {received} of {size} bytes): {}",
                super::transport::error_chain(&e)
            ),
        })? {
            received += chunk.len() as u64;
            if received > size {
                return Err(Error::DigestMismatch {
                    registry: self.host().to_string(),
                    what: format!("blob of {repository}"),
                    expected: format!("{digest} ({size} bytes)"),
                    actual: format!("more than {size} bytes"),
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io_error)?;
            progress.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        file.flush().await.map_err(io_error)?;
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if received != size || actual != digest {
            return Err(Error::DigestMismatch {
                registry: self.host().to_string(),
                what: format!("blob of {repository}"),
                expected: format!("{digest} ({size} bytes)"),
                actual: format!("{actual} ({received} bytes)"),
            });
        }
        Ok(())
    }

    /// Reads a response body into memory; `None` as soon as it passes `limit` bytes.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        limit: usize,
        what: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut body = Vec::with_capacity(limit.min(1 << 20));
        while let Some(chunk) = response.chunk().await.map_err(|e| Error::Transport {
            host: self.host().to_string(),
            detail: format!("reading {what}: {e}"),
        })? {
            if body.len() + chunk.len() > limit {
                return Ok(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    /// `GET /v2/<repository>/blobs/<digest>`, answered with success: the response whose
    /// body is the blob.
    async fn get_blob(&self, repository: &str, digest: &str) -> Result<reqwest::Response, Error> {
        let route = format!("/v2/{repository}/blobs/{digest}");
        let response = self
            .send(Method::GET, &route, None, repository, "pull")
            .await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                registry: self.host().to_string(),
                repository: repository.to_string(),
                what: "blob",
                reference: digest.to_string(),
            });
        }
        if !status.is_success() {
            return Err(self.status_error("GET", response).await);
        }
        Ok(response)
    }

    /// `GET` of a small blob (a config) into memory, digest-checked.
    pub async fn fetch_small_blob(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
    ) -> Result<Vec<u8>, Error> {
        const MAX: u64 = 64 << 20;
        if size > MAX {
            return Err(Error::Protocol {
                registry: self.host().to_string(),
                detail: format!("blob {digest} of {repository} claims {size} bytes; configs above {MAX} bytes are refused"),
            });
        }
        let response = self.get_blob(repository, digest).await?;
        let what = format!("blob {digest} of {repository}");
        let Some(body) = self.read_body(response, size as usize, &what).await? else {
            return Err(Error::DigestMismatch {
                registry: self.host().to_string(),
                what: format!("blob of {repository}"),
                expected: format!("{digest} ({size} bytes)"),
                actual: format!("more than {size} bytes"),
            });
        };
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        if actual != digest || body.len() as u64 != size {
            return Err(Error::DigestMismatch {
                registry: self.host().to_string(),
                what: format!("blob of {repository}"),
                expected: format!("{digest} ({size} bytes)"),
                actual: format!("{actual} ({} bytes)", body.len()),
            });
        }
        Ok(body)
    }
}

fn header_str<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
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
