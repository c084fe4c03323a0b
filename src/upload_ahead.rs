//! Uploads ahead: while `out` still compresses the layers of a docker-save tarball, the
//! ones already made (verified files in scratch) are uploaded, so that compressing and
//! uploading overlap instead of running one after the other. Each ready layer starts
//! uploading at once (up to `concurrency` at a time), without waiting for the one before
//! it: layers that compress fast (random data is stored) would otherwise queue behind one
//! another after the last is made, leaving a core idle while the registry takes them one by
//! one. The pusher then counts them as uploaded ([`crate::push::push_after`]). A blob that
//! fails here is simply left to the pusher, which uploads it again (with its retries) and
//! reports real errors.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::image::model::{Blob, BlobSource, Digest};
use crate::registry::Client;

/// Uploads every file blob `ready` gives to `repository` on `target`, up to `concurrency`
/// at a time, until the channel closes and the uploads end; returns the digests it uploaded
/// (not those the registry had).
pub async fn upload(
    target: Arc<Client>,
    repository: String,
    mut ready: UnboundedReceiver<Blob>,
    concurrency: usize,
) -> Vec<Digest> {
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let repository = Arc::new(repository);
    let mut started: Vec<Digest> = Vec::new();
    let mut tasks = JoinSet::new();
    while let Some(blob) = ready.recv().await {
        if !matches!(blob.source, BlobSource::File(_)) || started.contains(&blob.digest) {
            continue;
        }
        started.push(blob.digest.clone());
        let (target, repository, semaphore) = (
            Arc::clone(&target),
            Arc::clone(&repository),
            Arc::clone(&semaphore),
        );
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await.ok()?;
            upload_one(&target, &repository, &blob)
                .await
                .then_some(blob.digest)
        });
    }
    let mut uploaded = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some(digest)) = done {
            uploaded.push(digest);
        }
    }
    uploaded
}

/// Uploads one file blob unless the registry has it (or cannot say); whether it did.
async fn upload_one(target: &Client, repository: &str, blob: &Blob) -> bool {
    let BlobSource::File(path) = &blob.source else {
        return false;
    };
    // Present (or unknown): the pusher asks again and counts it.
    if !matches!(
        target.blob_exists(repository, &blob.digest).await,
        Ok(false)
    ) {
        return false;
    }
    let progress = Arc::new(AtomicU64::new(0));
    target
        .upload_blob(repository, &blob.digest, blob.size, path, None, progress)
        .await
        .is_ok()
}
