//! The push protocol's less travelled paths, through a forwarding front before a real
//! registry (`util::front`): a registry that asks for chunked uploads
//! (`OCI-Chunk-Min-Length`) gets `PATCH`es of at least that size, and a temporary failure
//! (503) of a blob upload is retried.

use serde_json::json;

use crate::put::{blob_counts, pushed, put, BlobCounts};
use crate::util::front::{Action, Front};
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

#[test]
fn a_temporary_failure_of_an_upload_is_retried() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(2, 4096);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let front = Front::start(registry.host(), move |request| {
        let upload = request.method == "PUT" && request.target.contains("/blobs/uploads/");
        if upload && !failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            Action::Respond("503 Service Unavailable".into())
        } else {
            Action::Forward
        }
    });
    let source = json!({ "repository": format!("{}/retry/app", front.host()), "tag": "1" });
    let work = tempfile::tempdir().expect("temp dir");
    let out = put(work.path(), &source, json!({ "image": image.path() }));
    assert_eq!(pushed(&out).digest, image.digest);
    assert!(out.stderr.contains("retrying an upload"), "{}", out.stderr);
    let puts = front
        .seen()
        .iter()
        .filter(|r| r.method == "PUT" && r.target.contains("/blobs/uploads/"))
        .count();
    assert_eq!(puts, 4, "3 blobs and one retried upload");
    assert_eq!(skopeo_raw_digest(&registry, "retry/app:1"), image.digest);
}
