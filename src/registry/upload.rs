//! The push half of the distribution API on [`Client`]: blob existence, cross-repository
//! mounts, uploads streamed from files (monolithic `PUT`, or chunked `PATCH` when the registry
//! asks for a minimum chunk size), and manifest `PUT`s.

use super::auth::repository_scope;
use super::client::{Client, Request};
use super::error::Error;
use super::retry::Failure;
use crate::digest::Digest;
use futures_util::StreamExt as _;
use reqwest::{Method, StatusCode};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The result of a mount attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// The registry linked the blob from the other repository (201).
    Mounted,
    /// It did not (202); this upload session can be used instead.
    NotMounted(String),
}

/// Header with which a registry asks for chunks of at least this many bytes.
const CHUNK_MIN_HEADER: &str = "oci-chunk-min-length";
/// Chunk size when a registry asks for chunked uploads.
const CHUNK_SIZE: u64 = 32 << 20;

impl Client {
    fn push_scopes(repository: &str) -> Vec<String> {
        vec![repository_scope(repository, "pull,push")]
    }

    /// `HEAD /v2/<repository>/blobs/<digest>`: whether the registry has it.
    pub async fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<bool, Error> {
        let digest = digest.as_str();
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base_url().await?);
        let scopes = Self::push_scopes(repository);
        let response = self
            .send_with(Request {
                method: Method::HEAD,
                url: &url,
                accept: None,
                scopes: &scopes,
                repository,
                headers: &[],
                body: &|| None,
                idempotent: true,
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error("HEAD", response).await),
        }
    }

    /// `POST /v2/<repository>/blobs/uploads/?mount=<digest>&from=<from>`.
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<Mount, Error> {
        let digest = digest.as_str();
        let base = self.base_url().await?;
        let mut url = parse_url(
            self.host(),
            &format!("{base}/v2/{repository}/blobs/uploads/"),
        )?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let scopes = vec![
            repository_scope(repository, "pull,push"),
            repository_scope(from, "pull"),
        ];
        let response = self
            .send_with(Request {
                method: Method::POST,
                url: url.as_str(),
                accept: None,
                scopes: &scopes,
                repository,
                headers: &[("content-length", "0".to_string())],
                body: &|| None,
                idempotent: true,
            })
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::NotMounted(self.location(&base, &response)?)),
            _ => Err(self.status_error("POST", response).await),
        }
    }

    /// Starts an upload session; returns its URL and the registry's minimum chunk size, if it
    /// asks for chunked uploads.
    async fn start_upload(&self, repository: &str) -> Result<(String, Option<u64>), Error> {
        let base = self.base_url().await?;
        let url = format!("{base}/v2/{repository}/blobs/uploads/");
        let scopes = Self::push_scopes(repository);
        let response = self
            .send_with(Request {
                method: Method::POST,
                url: &url,
                accept: None,
                scopes: &scopes,
                repository,
                headers: &[("content-length", "0".to_string())],
                body: &|| None,
                idempotent: true,
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.status_error("POST", response).await);
        }
        let chunk_min = response
            .headers()
            .get(CHUNK_MIN_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        Ok((self.location(&base, &response)?, chunk_min))
    }

    /// Uploads the blob in `path` (`size` bytes, `digest`), streaming from disk and counting
    /// into `progress`. `session` is an upload URL from a failed mount, if any. An upload
    /// session is not repeatable step by step (its offset lives on the registry): after a
    /// temporary failure the whole upload starts again in a new session.
    pub async fn upload_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
        session: Option<String>,
        progress: Arc<AtomicU64>,
    ) -> Result<(), Error> {
        let digest = digest.as_str();
        let what = format!("the upload of blob {digest} to {repository} in a new session");
        let mut retry = self.transport().retrying();
        let mut session = session;
        loop {
            let result = self
                .upload_session(repository, digest, size, path, session.take(), &progress)
                .await;
            match result {
                Ok(()) => return Ok(()),
                Err(Failure::Restart(e)) if retry.again(&what, &e, e.retry_after()).await => {}
                Err(Failure::Restart(e) | Failure::Final(e)) => return Err(e),
            }
        }
    }

    /// One upload session, from its start (or a mount's session) to the final `PUT`. The
    /// start is an idempotent request, retried on its own; a temporary failure after it
    /// restarts the session.
    async fn upload_session(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        path: &Path,
        session: Option<String>,
        progress: &Arc<AtomicU64>,
    ) -> Result<(), Failure> {
        let (location, chunk_min) = match session {
            Some(location) => (location, None),
            None => self
                .start_upload(repository)
                .await
                .map_err(Failure::Final)?,
        };
        self.send_session(
            repository, digest, size, path, location, chunk_min, progress,
        )
        .await
        .map_err(Failure::of)
    }

    /// The `PATCH`es (when chunked) and the final `PUT` of a session at `location`.
    #[allow(clippy::too_many_arguments)]
    async fn send_session(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        path: &Path,
        location: String,
        chunk_min: Option<u64>,
        progress: &Arc<AtomicU64>,
    ) -> Result<(), Error> {
        let scopes = Self::push_scopes(repository);
        progress.store(0, Ordering::Relaxed);
        let location = match chunk_min {
            Some(min) if size > 0 => {
                self.upload_chunks(
                    repository,
                    path,
                    size,
                    location,
                    min.max(CHUNK_SIZE),
                    progress,
                )
                .await?
            }
            _ => location,
        };
        let mut url = parse_url(self.host(), &location)?;
        url.query_pairs_mut().append_pair("digest", digest);
        let monolithic = chunk_min.is_none() || size == 0;
        let open_error = |source| Error::Io {
            what: format!("reading blob {digest} from {}", path.display()),
            source,
        };
        // Fail early and clearly if the file is not readable.
        std::fs::File::open(path).map_err(open_error)?;
        let body = || -> Option<reqwest::Body> {
            if !monolithic {
                return None;
            }
            let file = std::fs::File::open(path).ok()?;
            let counter = Arc::clone(progress);
            counter.store(0, Ordering::Relaxed);
            let stream = tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                256 * 1024,
            )
            .map(move |chunk| {
                if let Ok(bytes) = &chunk {
                    counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                chunk
            });
            Some(reqwest::Body::wrap_stream(stream))
        };
        let length = if monolithic { size } else { 0 };
        let headers = [
            ("content-length", length.to_string()),
            ("content-type", "application/octet-stream".to_string()),
        ];
        let response = self
            .send_with(Request {
                method: Method::PUT,
                url: url.as_str(),
                accept: None,
                scopes: &scopes,
                repository,
                headers: &headers,
                body: &body,
                idempotent: false,
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.status_error("PUT", response).await);
        }
        Ok(())
    }

    async fn upload_chunks(
        &self,
        repository: &str,
        path: &Path,
        size: u64,
        mut location: String,
        chunk: u64,
        progress: &AtomicU64,
    ) -> Result<String, Error> {
        let base = self.base_url().await?;
        let scopes = Self::push_scopes(repository);
        let mut offset = 0u64;
        while offset < size {
            let len = chunk.min(size - offset);
            let bytes = read_range(path, offset, len).map_err(|source| Error::Io {
                what: format!("reading {}", path.display()),
                source,
            })?;
            let bytes = bytes::Bytes::from(bytes);
            let headers = [
                ("content-length", len.to_string()),
                ("content-range", format!("{offset}-{}", offset + len - 1)),
                ("content-type", "application/octet-stream".to_string()),
            ];
            let body = || Some(reqwest::Body::from(bytes.clone()));
            let response = self
                .send_with(Request {
                    method: Method::PATCH,
                    url: &location,
                    accept: None,
                    scopes: &scopes,
                    repository,
                    headers: &headers,
                    body: &body,
                    idempotent: false,
                })
                .await?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(self.status_error("PATCH", response).await);
            }
            location = self.location(&base, &response)?;
            offset += len;
            progress.store(offset, Ordering::Relaxed);
        }
        Ok(location)
    }

    /// `PUT /v2/<repository>/manifests/<reference>`; checks the digest the registry reports.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), Error> {
        self.put_manifest_reporting_subject(repository, reference, media_type, bytes)
            .await
            .map(|_| ())
    }

    /// [`Client::put_manifest`], returning the `OCI-Subject` header of the answer: a
    /// registry with the referrers API sends it (the subject's digest) when the manifest has
    /// a `subject` it indexed; without it, the client keeps the referrers tag up to date
    /// ([distribution spec, pushing manifests with subject](https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests-with-subject)).
    pub async fn put_manifest_reporting_subject(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Option<String>, Error> {
        let url = format!(
            "{}/v2/{repository}/manifests/{reference}",
            self.base_url().await?
        );
        let scopes = Self::push_scopes(repository);
        let payload = bytes::Bytes::copy_from_slice(bytes);
        let headers = [("content-type", media_type.to_string())];
        let body = || Some(reqwest::Body::from(payload.clone()));
        let response = self
            .send_with(Request {
                method: Method::PUT,
                url: &url,
                accept: None,
                scopes: &scopes,
                repository,
                headers: &headers,
                body: &body,
                idempotent: true,
            })
            .await?;
        if response.status() != StatusCode::CREATED && !response.status().is_success() {
            return Err(self.status_error("PUT", response).await);
        }
        if let Some(reported) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            // Checked in the algorithm the registry reports (one we know).
            let expected = crate::digest::of(reported, bytes).ok();
            if let Some(expected) = expected.filter(|e| e != reported) {
                return Err(Error::DigestMismatch {
                    registry: self.host().to_string(),
                    what: format!("manifest pushed to {repository}:{reference}"),
                    expected,
                    actual: reported.to_string(),
                });
            }
        }
        Ok(response
            .headers()
            .get("oci-subject")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }

    /// The absolute URL of a response's `Location`.
    fn location(&self, base: &str, response: &reqwest::Response) -> Result<String, Error> {
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Protocol {
                registry: self.host().to_string(),
                detail: "an upload response has no Location header".into(),
            })?;
        let base = parse_url(self.host(), base)?;
        base.join(location)
            .map(|u| u.to_string())
            .map_err(|e| Error::Protocol {
                registry: self.host().to_string(),
                detail: format!("invalid upload Location {location:?}: {e}"),
            })
    }
}

pub(super) fn parse_url(host: &str, url: &str) -> Result<url::Url, Error> {
    url::Url::parse(url).map_err(|e| Error::Protocol {
        registry: host.to_string(),
        detail: format!("invalid URL {url:?}: {e}"),
    })
}

fn read_range(path: &Path, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}
