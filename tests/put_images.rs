//! `out` with `images`: single-platform images (a docker-save tarball, an OCI layout
//! directory, an OCI layout tarball) pushed as one multi-platform OCI index. Oracles: skopeo
//! (`inspect --raw` of the index and of each child, the tags) and our `in` selecting each
//! platform; the registry's storage for "nothing pushed". An assembled index is signed as a
//! whole (`params.sign`) and verified by `check` and `in`.

use std::path::Path;

use serde_json::{json, Value};

use crate::get::{get, read};
use crate::put::{
    assert_no_blobs, assert_nothing_pushed, assert_tags, blob_counts, copy_dir, pushed, put,
    work_dir, BlobCounts,
};
use crate::put_sources::{docker_archive, pushed_manifest, tagged_source, tar_dir};
use crate::util::image::random_bytes;
use crate::util::sigstore::{blob, cosign_payload, openssl_key, signature_manifest};
use crate::util::*;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A small image for `platform` whose layer holds `/platform` (the platform's name) and a
/// random file, so every call gives new digests.
fn platform_image(platform: &str) -> Image {
    ImageBuilder::new()
        .platform(platform)
        .layer(
            LayerBuilder::new()
                .file("platform", platform.as_bytes())
                .file("random.bin", &random_bytes(256)),
        )
        .build()
}

/// Writes the three inputs under `<work>/images`: linux/amd64 as a docker-save tarball
/// (`amd64.tar`), linux/arm/v7 as an OCI layout tarball (`arm-v7.tar`), linux/arm64 as an OCI
/// layout directory (`arm64`). Returns the images in that order.
fn write_inputs(work: &Path) -> [Image; 3] {
    let amd64 = platform_image("linux/amd64");
    let arm = platform_image("linux/arm/v7");
    let arm64 = platform_image("linux/arm64");
    std::fs::create_dir_all(work.join("images")).expect("mkdir images");
    docker_archive(&amd64, &work.join("images/amd64.tar"), "team/app:amd64");
    tar_dir(arm.path(), &work.join("images/arm-v7.tar"));
    copy_dir(arm64.path(), &work.join("images/arm64"));
    [amd64, arm, arm64]
}

fn platform_of(entry: &Value) -> String {
    let p = &entry["platform"];
    let mut name = format!(
        "{}/{}",
        p["os"].as_str().unwrap_or(""),
        p["architecture"].as_str().unwrap_or("")
    );
    if let Some(variant) = p["variant"].as_str() {
        name = format!("{name}/{variant}");
    }
    name
}

#[test]
fn images_are_pushed_as_one_index_and_in_selects_each_platform() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    let [_, arm, arm64] = write_inputs(work.path());
    let source = tagged_source(&registry, "put/multi", "1.0");
    // A glob's matches are sorted: arm-v7.tar before arm64.
    let params = json!({"images": ["images/amd64.tar", "images/arm*"], "tag_as_latest": true});
    let out = put(work.path(), &source, params.clone());
    let result = pushed(&out);
    assert_tags(&registry, "put/multi", &["1.0", "latest"], &result.digest);
    // Every image's config and layer.
    assert_eq!(
        blob_counts(&out),
        BlobCounts::new(6, 0, 0),
        "{}",
        out.stderr
    );

    let index = pushed_manifest(&registry, "put/multi:1.0");
    assert_eq!(index["mediaType"], OCI_INDEX, "{index}");
    let entries = index["manifests"].as_array().expect("manifests");
    let platforms: Vec<String> = entries.iter().map(platform_of).collect();
    assert_eq!(
        platforms,
        ["linux/amd64", "linux/arm/v7", "linux/arm64"],
        "{index}"
    );
    // The OCI inputs' manifests are pushed as they are; the docker-save one as `docker
    // push` would, a Docker manifest.
    assert_eq!(entries[1]["digest"], json!(arm.digest));
    assert_eq!(entries[2]["digest"], json!(arm64.digest));
    assert_eq!(entries[0]["mediaType"], DOCKER_MANIFEST);
    for entry in entries {
        let digest = entry["digest"].as_str().expect("digest");
        let raw = skopeo_inspect_raw(&registry, &format!("put/multi@{digest}"));
        assert_eq!(entry["size"], json!(raw.len()), "{entry}");
        assert_eq!(
            entry["mediaType"],
            pushed_manifest(&registry, &format!("put/multi@{digest}"))["mediaType"]
        );
    }

    // `in` picks each platform out of the index.
    for (entry, platform) in entries.iter().zip(&platforms) {
        let digest = entry["digest"].as_str().expect("digest");
        let config = pushed_manifest(&registry, &format!("put/multi@{digest}"))["config"]["digest"]
            .as_str()
            .expect("config digest")
            .to_string();
        let (os, rest) = platform.split_once('/').expect("os/arch");
        let (architecture, variant) = rest
            .split_once('/')
            .map_or((rest, None), |(a, v)| (a, Some(v)));
        let mut wanted = json!({"os": os, "architecture": architecture});
        if let Some(variant) = variant {
            wanted["variant"] = json!(variant);
        }
        let fetch = get(&source, &result.digest, json!({"platform": wanted}));
        assert!(
            fetch.out.success(),
            "{platform}: in failed:\n{}",
            fetch.out.stderr
        );
        assert_eq!(read(&fetch.rootfs().join("platform")), *platform);
        assert_eq!(fetch.text("image-id"), config, "{platform}");
        assert_eq!(fetch.text("digest"), result.digest, "{platform}");
    }

    // The same inputs in the same order: the same index, byte for byte.
    let again = put(
        work.path(),
        &tagged_source(&registry, "put/multi-again", "1.0"),
        params,
    );
    assert_eq!(pushed(&again).digest, result.digest);
}

#[test]
fn two_images_for_one_platform_push_nothing() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    write_inputs(work.path());
    let other = platform_image("linux/arm64");
    copy_dir(other.path(), &work.path().join("images/arm64-again"));
    let out = put(
        work.path(),
        &tagged_source(&registry, "put/dup", "1"),
        json!({"images": ["images/*"]}),
    );
    let err = out.expect_failure();
    let named = |name: &str| work.path().join("images").join(name).display().to_string();
    assert!(
        err.contains(&format!(
            "{} and {} are both linux/arm64 images",
            named("arm64"),
            named("arm64-again")
        )),
        "the error should name both inputs:\n{err}"
    );
    assert_nothing_pushed(&registry, "put/dup", &out);
    assert_no_blobs(&registry, &out);
}

#[test]
fn bad_images_inputs_are_named_and_push_nothing() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    write_inputs(work.path());
    let index = multi_arch_index(&["linux/amd64", "linux/arm64"]);
    copy_dir(index.path(), &work.path().join("index"));
    let source = tagged_source(&registry, "put/bad", "1");
    let cases = [
        (
            "a glob matching nothing",
            json!({"images": ["images/amd64.tar", "builds/*.tar"]}),
            r#"images[1] "builds/*.tar": it matches nothing"#.to_string(),
        ),
        (
            "an input holding an index",
            json!({"images": ["images/amd64.tar", "index"]}),
            format!(
                "{}: it holds an index of 2 images",
                work.path().join("index").display()
            ),
        ),
        (
            "images with load_file",
            json!({"images": ["images/amd64.tar"], "load_file": "images/amd64.tar"}),
            "params.images cannot be combined with params.load_file".to_string(),
        ),
        (
            "images with image and build",
            json!({"images": ["images/amd64.tar"], "image": "images/arm64", "build": "."}),
            "params.images cannot be combined with params.build, params.image".to_string(),
        ),
    ];
    for (what, params, expected) in cases {
        let out = put(work.path(), &source, params);
        let err = out.expect_failure();
        assert!(
            err.contains(&expected),
            "{what}: expected {expected:?} in:\n{err}"
        );
        assert_nothing_pushed(&registry, "put/bad", &out);
        assert_no_blobs(&registry, &out);
    }
}

#[test]
fn an_assembled_index_is_signed_as_a_whole() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    write_inputs(work.path());
    std::fs::create_dir(work.path().join("keys")).expect("mkdir keys");
    let key = openssl_key(&work.path().join("keys"), "multi");
    let source = tagged_source(&registry, "put/signed", "1");
    let out = put(
        work.path(),
        &source,
        json!({"images": ["images/*"], "sign": {"key": "keys/multi.key"}}),
    );
    let index = pushed(&out).digest;
    let signature = signature_manifest(&registry, "put/signed", &index);
    let payload = &signature["layers"][0];
    assert_eq!(
        String::from_utf8_lossy(&blob(
            &registry,
            "put/signed",
            payload["digest"].as_str().expect("payload digest")
        )),
        cosign_payload(&format!("{}/put/signed", registry.host()), &index),
        "the payload names the index"
    );

    // A verifying `check` reports the index; a verifying `in` takes one platform out of it.
    let mut verifying = source.clone();
    verifying["verify"] = json!({"public_keys": [key.public_pem]});
    let check = run("check", &[], &json!({ "source": verifying }));
    assert_eq!(
        check.expect_success()[0]["digest"],
        json!(index),
        "{}",
        check.stderr
    );
    let fetch = get(
        &verifying,
        &index,
        json!({"platform": {"architecture": "arm", "variant": "v7"}}),
    );
    assert!(fetch.out.success(), "in failed:\n{}", fetch.out.stderr);
    assert_eq!(read(&fetch.rootfs().join("platform")), "linux/arm/v7");
}
