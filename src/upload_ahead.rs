//! Uploads ahead: while `out` still compresses the layers of a docker-save tarball, the
//! ones already made (verified files in scratch) are uploaded, so that compressing and
//! uploading overlap instead of running one after the other. The pusher then counts them
//! as uploaded ([`crate::push::push_after`]). A blob that fails here is simply left to the
//! pusher, which uploads it again (with its retries) and reports real errors.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::image::model::{Blob, BlobSource, Digest};
use crate::registry::Client;

/// Uploads every file blob `ready` gives to `repository` on `target`, one at a time, until
/// the channel closes; returns the digests it uploaded (not those the registry had).
pub async fn upload(
    target: Arc<Client>,
    repository: String,
    mut ready: UnboundedReceiver<Blob>,
) -> Vec<Digest> {
    let mut uploaded = Vec::new();
    while let Some(blob) = ready.recv().await {
        let BlobSource::File(path) = &blob.source else {
            continue;
        };
        if uploaded.contains(&blob.digest) {
            continue;
        }
        let digest = &blob.digest;
        // Present (or unknown): the pusher asks again and counts it.
        if !matches!(target.blob_exists(&repository, digest).await, Ok(false)) {
            continue;
        }
        let progress = Arc::new(AtomicU64::new(0));
        let sent = target
            .upload_blob(&repository, digest, blob.size, path, None, progress)
            .await;
        if sent.is_ok() {
            uploaded.push(blob.digest.clone());
        }
    }
    uploaded
}
