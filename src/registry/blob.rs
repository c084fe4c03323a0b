//! Blob downloads on [`Client`]: configs into memory, layers streamed to files. A layer
//! download cut mid-way continues from the byte it reached with a `Range` request when the
//! registry (or the storage it redirects to) answers `206`, and starts again from byte 0
//! when it answers `200`; either way the digest covers the whole blob, hashed as it is
//! written. Tries and waits follow the one [`retry`](super::retry) policy, counted afresh
//! whenever a try made progress.

use super::auth::repository_scope;
use super::client::{header_str, Client, Request};
use super::error::Error;
use super::retry::Failure;
use crate::digest::{Digest, Hasher};
use reqwest::{Method, StatusCode};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _, BufWriter};

/// The largest config we read into memory.
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// A download in progress: the file, the hash and the count of what is in it.
struct Partial {
    file: BufWriter<tokio::fs::File>,
    hasher: Hasher,
    received: u64,
}

impl Client {
    /// `GET /v2/<repository>/blobs/<digest>` streamed into `path`, counting bytes into
    /// `progress`; the size and digest are checked as the bytes pass, and on any failure the
    /// file is removed. Redirects to other hosts (object storage) are followed without the
    /// registry's `Authorization` header.
    pub async fn fetch_blob_to_file(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
        progress: &AtomicU64,
    ) -> Result<(), Error> {
        let digest = digest.as_str();
        let result = self
            .download(repository, digest, size, path, progress)
            .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(path).await;
        }
        result
    }

    async fn download(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        path: &Path,
        progress: &AtomicU64,
    ) -> Result<(), Error> {
        let hasher = self.hasher(repository, digest)?;
        let file = tokio::fs::File::create(path)
            .await
            .map_err(|source| Error::Io {
                what: format!("creating {} for blob {digest}", path.display()),
                source,
            })?;
        let mut partial = Partial {
            file: BufWriter::with_capacity(1 << 20, file),
            hasher,
            received: 0,
        };
        let what = format!("the download of blob {digest} of {repository}");
        let mut retry = self.transport().retrying();
        loop {
            let before = partial.received;
            match self
                .download_rest(repository, digest, size, path, &mut partial, progress)
                .await
            {
                Ok(()) => break,
                // The body broke off: go on from where it stopped.
                Err(Failure::Restart(e)) => {
                    if partial.received > before {
                        retry.progressed();
                    }
                    if !retry.again(&what, &e, e.retry_after()).await {
                        return Err(e);
                    }
                }
                Err(Failure::Final(e)) => return Err(e),
            }
        }
        partial.file.flush().await.map_err(|source| Error::Io {
            what: format!("writing blob {digest} to {}", path.display()),
            source,
        })?;
        let actual = partial.hasher.digest();
        if partial.received != size || actual != digest {
            return Err(Error::DigestMismatch {
                registry: self.host().to_string(),
                what: format!("blob of {repository}"),
                expected: format!("{digest} ({size} bytes)"),
                actual: format!("{actual} ({} bytes)", partial.received),
            });
        }
        Ok(())
    }

    /// One try: asks for the bytes from `partial.received` on and appends them.
    async fn download_rest(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        path: &Path,
        partial: &mut Partial,
        progress: &AtomicU64,
    ) -> Result<(), Failure> {
        let io_error = |source| {
            Failure::Final(Error::Io {
                what: format!("writing blob {digest} to {}", path.display()),
                source,
            })
        };
        let base = self.base_url().await.map_err(Failure::Final)?;
        let url = format!("{base}/v2/{repository}/blobs/{digest}");
        let scopes = vec![repository_scope(repository, "pull")];
        let range = [("range", format!("bytes={}-", partial.received))];
        let response = self
            .send_with(Request {
                method: Method::GET,
                url: &url,
                accept: None,
                scopes: &scopes,
                repository,
                headers: if partial.received > 0 { &range } else { &[] },
                body: &|| None,
                idempotent: true,
            })
            .await
            .map_err(Failure::Final)?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Err(Failure::Final(Error::NotFound {
                registry: self.host().to_string(),
                repository: repository.to_string(),
                what: "blob",
                reference: digest.to_string(),
            }));
        }
        if status == StatusCode::PARTIAL_CONTENT && partial.received > 0 {
            let start = header_str(response.headers(), "content-range").and_then(range_start);
            if start != Some(partial.received) {
                return Err(Failure::Final(Error::Protocol {
                    registry: self.host().to_string(),
                    detail: format!(
                        "asked for blob {digest} of {repository} from byte {}, it answered Content-Range {:?}",
                        partial.received,
                        header_str(response.headers(), "content-range").unwrap_or("(none)")
                    ),
                }));
            }
        } else if status.is_success() {
            if partial.received > 0 {
                // No Range support: start over, hashing from the first byte again.
                self.log().line(format_args!(
                    "registry {} does not resume downloads (answered {} to a Range request): downloading blob {digest} again from the start",
                    self.host(),
                    status.as_u16()
                ));
                partial.file.flush().await.map_err(io_error)?;
                let file = partial.file.get_mut();
                file.set_len(0).await.map_err(io_error)?;
                file.seek(std::io::SeekFrom::Start(0))
                    .await
                    .map_err(io_error)?;
                progress.fetch_sub(partial.received, Ordering::Relaxed);
                partial.received = 0;
                partial.hasher = self.hasher(repository, digest).map_err(Failure::Final)?;
            }
        } else {
            return Err(Failure::Final(self.status_error("GET", response).await));
        }
        let mut response = response;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    let what = format!(
                        "downloading blob {digest} of {repository} (after {} of {size} bytes)",
                        partial.received
                    );
                    return Err(Failure::Restart(self.transport().body_error(e, &what)));
                }
            };
            partial.received += chunk.len() as u64;
            if partial.received > size {
                return Err(Failure::Final(Error::DigestMismatch {
                    registry: self.host().to_string(),
                    what: format!("blob of {repository}"),
                    expected: format!("{digest} ({size} bytes)"),
                    actual: format!("more than {size} bytes"),
                }));
            }
            partial.hasher.update(&chunk);
            partial.file.write_all(&chunk).await.map_err(io_error)?;
            progress.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        if partial.received < size {
            // The body ended early but cleanly (no Content-Length): a cut connection.
            return Err(Failure::Restart(Error::Transport {
                host: self.host().to_string(),
                detail: format!(
                    "the download of blob {digest} of {repository} ended after {} of {size} bytes",
                    partial.received
                ),
                source: None,
            }));
        }
        Ok(())
    }

    /// The hasher for `digest`, or an error naming the blob.
    fn hasher(&self, repository: &str, digest: &str) -> Result<Hasher, Error> {
        Hasher::for_digest(digest).map_err(|e| Error::Protocol {
            registry: self.host().to_string(),
            detail: format!("blob of {repository}: {e}"),
        })
    }

    /// `GET` of a small blob (a config) into memory, digest-checked; more than `size` bytes
    /// (or a claimed size above [`MAX_CONFIG_BYTES`]) is refused before it is read whole.
    pub async fn fetch_small_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<Vec<u8>, Error> {
        let digest = digest.as_str();
        if size > MAX_CONFIG_BYTES {
            return Err(Error::Protocol {
                registry: self.host().to_string(),
                detail: format!("blob {digest} of {repository} claims {size} bytes; configs above {MAX_CONFIG_BYTES} bytes are refused"),
            });
        }
        let mut hasher = self.hasher(repository, digest)?;
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base_url().await?);
        let scopes = vec![repository_scope(repository, "pull")];
        let what = format!("blob {digest} of {repository}");
        let mismatch = |actual: String| Error::DigestMismatch {
            registry: self.host().to_string(),
            what: format!("blob of {repository}"),
            expected: format!("{digest} ({size} bytes)"),
            actual,
        };
        let body = match self
            .get_small(&url, None, &scopes, repository, size, &what)
            .await
        {
            Ok(Some((_, body))) => body,
            Ok(None) => {
                return Err(Error::NotFound {
                    registry: self.host().to_string(),
                    repository: repository.to_string(),
                    what: "blob",
                    reference: digest.to_string(),
                })
            }
            Err(Error::TooLarge { .. }) => return Err(mismatch(format!("more than {size} bytes"))),
            Err(e) => return Err(e),
        };
        hasher.update(&body);
        let actual = hasher.digest();
        if actual != digest || body.len() as u64 != size {
            return Err(mismatch(format!("{actual} ({} bytes)", body.len())));
        }
        Ok(body)
    }
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL`.
fn range_start(header: &str) -> Option<u64> {
    let range = header.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_starts() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/1"), Some(0));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
