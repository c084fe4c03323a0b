//! `in` against real registries, integrity: a missing manifest, a corrupt, garbled or
//! truncated blob, or a wrong diff_id fails naming what is wrong, and leaves nothing behind
//! that looks complete.

use std::fs;

use serde_json::json;

use crate::get::{assert_nothing_complete, get, read, registry_with, source_for, Fetch};
use crate::util::image::sha256_digest;
use crate::util::*;

#[test]
fn a_digest_the_registry_does_not_have_fails_naming_it() {
    let image = random_image(1, 256);
    let (registry, _) = registry_with(&image, "get/missing");
    let missing = sha256_digest(b"no such manifest");
    let fetch = get(&source_for(&registry, "get/missing"), &missing, json!({}));
    let err = fetch.out.expect_failure();
    assert!(
        err.contains(&missing) && err.contains("get/missing"),
        "the error should name the repository and the missing digest:\n{err}"
    );
    assert_nothing_complete(&fetch.dest, &fetch.out);
}

/// Overwrites `bytes.len()` bytes at `offset` of the stored blob `digest`.
fn corrupt_blob(registry: &Registry, digest: &str, offset: usize, bytes: &[u8]) {
    let path = registry.blob_path(digest);
    let mut blob =
        fs::read(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    assert!(offset + bytes.len() <= blob.len(), "blob too small");
    assert_ne!(&blob[offset..offset + bytes.len()], bytes, "not a change");
    blob[offset..offset + bytes.len()].copy_from_slice(bytes);
    fs::write(&path, blob).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

fn assert_names_blob_digest(fetch: &Fetch, digest: &str, what: &str) {
    let err = fetch.out.expect_failure();
    assert!(
        err.contains(digest) && err.contains("digest"),
        "{what}: the error should name the blob {digest} and say its digest is wrong:\n{err}"
    );
    assert_nothing_complete(&fetch.dest, &fetch.out);
}

#[test]
fn corrupted_layer_blob_fails_naming_it() {
    let image = random_image(2, 2048);
    let (registry, digest) = registry_with(&image, "get/corrupt");
    let layer = image.layers[1].digest.clone();
    // The gzip header's MTIME field (bytes 4..8): decompression still works and the
    // content is unchanged, so only checking the blob's digest can notice.
    corrupt_blob(&registry, &layer, 4, &[0x11, 0x22, 0x33, 0x44]);
    let source = source_for(&registry, "get/corrupt");
    for params in [
        json!({}),
        json!({"save": true, "rootfs": true}),
        json!({"format": "oci-layout"}),
        json!({"format": "oci"}),
    ] {
        let fetch = get(&source, &digest, params.clone());
        assert_names_blob_digest(&fetch, &layer, &format!("params {params}"));
    }
}

#[test]
fn garbled_layer_blob_fails_naming_it() {
    let image = random_image(2, 4096);
    let (registry, digest) = registry_with(&image, "get/garbled");
    let layer = image.layers[0].digest.clone();
    let size = image.layers[0].size as usize;
    // Garbage in the middle of the deflate stream.
    corrupt_blob(&registry, &layer, size / 2, &[0xff; 16]);
    let fetch = get(&source_for(&registry, "get/garbled"), &digest, json!({}));
    assert_names_blob_digest(&fetch, &layer, "garbled gzip layer");
}

#[test]
fn truncated_layer_blob_fails_naming_it() {
    let image = random_image(1, 4096);
    let (registry, digest) = registry_with(&image, "get/truncated");
    let layer = image.layers[0].digest.clone();
    let path = registry.blob_path(&layer);
    let blob = fs::read(&path).expect("reading the blob");
    fs::write(&path, &blob[..blob.len() - 100]).expect("truncating the blob");
    let fetch = get(&source_for(&registry, "get/truncated"), &digest, json!({}));
    let err = fetch.out.expect_failure();
    assert!(
        err.contains(&layer),
        "the error should name the blob {layer}:\n{err}"
    );
    assert_nothing_complete(&fetch.dest, &fetch.out);
}

#[test]
fn corrupted_config_blob_fails_naming_it() {
    let image = random_image(1, 512);
    let (registry, digest) = registry_with(&image, "get/badconfig");
    let config = image.config_digest.clone();
    // Still valid JSON, with a different `created`: only the digest check can notice.
    let path = registry.blob_path(&config);
    let text = read(&path);
    let changed = text.replacen("2023-11-14T22:13:20Z", "2023-11-15T22:13:20Z", 1);
    assert_ne!(text, changed);
    fs::write(&path, changed).expect("writing the config blob");
    let fetch = get(&source_for(&registry, "get/badconfig"), &digest, json!({}));
    assert_names_blob_digest(&fetch, &config, "corrupted config");
}

#[test]
fn wrong_diff_id_fails() {
    let image = ImageBuilder::new()
        .layer(LayerBuilder::new().file("a", b"layer zero"))
        .layer(LayerBuilder::new().file("b", b"layer one"))
        .wrong_diff_id(1)
        .build();
    let (registry, digest) = registry_with(&image, "get/diffid");
    let fetch = get(&source_for(&registry, "get/diffid"), &digest, json!({}));
    let err = fetch.out.expect_failure();
    assert!(
        err.contains("diff_id") || err.contains("uncompressed"),
        "the error should say the uncompressed layer does not match the config's diff_id:\n{err}"
    );
    assert!(
        err.contains(&image.layers[1].digest) || err.contains(&image.layers[1].diff_id),
        "the error should name the layer:\n{err}"
    );
    assert_nothing_complete(&fetch.dest, &fetch.out);
}
