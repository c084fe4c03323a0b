//! The push protocol's less travelled paths, through a forwarding front before a real
//! registry (`util::front`): a registry that asks for chunked uploads
//! (`OCI-Chunk-Min-Length`) gets `PATCH`es of at least that size, and temporary failures
//! are retried: a 503 or a reset connection during a blob upload, a 429 with `Retry-After`
//! on a blob check (waited for as asked), a 502 on a manifest upload.

use serde_json::json;

use crate::put::{blob_counts, pushed, put, BlobCounts};
use crate::util::front::{Action, Front, Seen};
use crate::util::image::random_bytes;
use crate::util::*;

const MIB: usize = 1 << 20;

#[test]
fn chunked_uploads_when_the_registry_asks_for_them() {
    let registry = Registry::start(RegistryConfig::new());
    // One 90 MiB incompressible layer: three PATCHes of 40 MiB, 40 MiB and the rest.
    let image = ImageBuilder::new()
        .layer(LayerBuilder::new().file("data/random.bin", &random_bytes(90 * MIB)))
        .build();
    let front = Front::start(registry.host(), |request| {
        if request.method == "POST" && request.target.contains("/blobs/uploads/") {
            Action::ForwardAddingHeader(format!("OCI-Chunk-Min-Length: {}", 40 * MIB))
        } else {
            Action::Forward
        }
    });
    let source = json!({ "repository": format!("{}/chunked/app", front.host()), "tag": "1" });
    let work = tempfile::tempdir().expect("temp dir");
    let out = put(work.path(), &source, json!({ "image": image.path() }));
    let result = pushed(&out);
    assert_eq!(result.digest, image.digest);
    assert_eq!(blob_counts(&out), BlobCounts::new(2, 0, 0));

    let patches: Vec<usize> = front
        .seen()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| {
            r.headers
                .iter()
                .find_map(|h| {
                    h.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0)
        })
        .collect();
    let layer_size = image.layers[0].size as usize;
    assert!(
        layer_size > 80 * MIB,
        "the layer should not compress: {layer_size}"
    );
    // Two full 40 MiB chunks and the rest of the layer, and one small chunk for the config.
    let full = patches.iter().filter(|n| **n == 40 * MIB).count();
    assert_eq!(full, 2, "PATCH sizes: {patches:?}");
    assert!(
        patches.contains(&(layer_size - 80 * MIB)),
        "PATCH sizes: {patches:?}"
    );
    assert_eq!(patches.len(), 4, "PATCH sizes: {patches:?}");
    // What was pushed reads back whole.
    assert_eq!(skopeo_raw_digest(&registry, "chunked/app:1"), image.digest);
}

/// Pushes a small image through a front that gives `failure` to the first request that
/// `matches`, and checks that the push retried it and the registry got the whole image.
fn assert_retried(
    repository: &str,
    failure: impl Fn() -> Action + Send + Sync + 'static,
    matches: impl Fn(&Seen) -> bool + Send + Sync + 'static,
    what: &str,
) -> Output {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(2, 4096);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let front = Front::start(registry.host(), move |request| {
        if matches(request) && !failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            failure()
        } else {
            Action::Forward
        }
    });
    let source = json!({ "repository": format!("{}/{repository}", front.host()), "tag": "1" });
    let work = tempfile::tempdir().expect("temp dir");
    let out = put(work.path(), &source, json!({ "image": image.path() }));
    assert_eq!(pushed(&out).digest, image.digest, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("retrying {what}")),
        "{}",
        out.stderr
    );
    assert_eq!(
        skopeo_raw_digest(&registry, &format!("{repository}:1")),
        image.digest
    );
    out
}

fn is_upload(request: &Seen) -> bool {
    request.method == "PUT" && request.target.contains("/blobs/uploads/")
}

#[test]
fn a_temporary_failure_of_an_upload_is_retried() {
    let out = assert_retried(
        "retry/app",
        || Action::Respond("503 Service Unavailable".into()),
        is_upload,
        "the upload of blob",
    );
    assert!(out.stderr.contains("HTTP 503"), "{}", out.stderr);
}

#[test]
fn a_reset_connection_during_an_upload_is_retried() {
    let out = assert_retried(
        "retry/reset",
        || Action::Reset,
        is_upload,
        "the upload of blob",
    );
    assert!(out.stderr.contains("reset"), "{}", out.stderr);
}

#[test]
fn too_many_requests_waits_as_long_as_the_registry_asks() {
    let started = std::time::Instant::now();
    let out = assert_retried(
        "retry/busy",
        || {
            Action::RespondWithHeaders(
                "429 Too Many Requests".into(),
                vec!["Retry-After: 2".into()],
            )
        },
        |request| request.method == "HEAD" && request.target.contains("/blobs/"),
        "HEAD http://",
    );
    assert!(out.stderr.contains("in 2.0 s"), "{}", out.stderr);
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
}

#[test]
fn a_temporary_failure_of_a_manifest_upload_is_retried() {
    assert_retried(
        "retry/manifest",
        || Action::Respond("502 Bad Gateway".into()),
        |request| request.method == "PUT" && request.target.contains("/manifests/"),
        "PUT http://",
    );
}
