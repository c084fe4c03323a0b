//! `in` against real registries: the files it writes for each `format` / `save` / `rootfs` /
//! `skip_download`, and the response. Oracles: the image fixtures themselves and skopeo
//! (for the archives and layouts we write).

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::get::{
    assert_dest_holds, assert_docker_archive, fixture_diff_ids, get, layout_blob, layout_diff_ids,
    layout_json, metadata_value, read, registry_with, source_for, ROOTFS_OUTPUTS,
};
use crate::util::tree::names_in;
use crate::util::*;

/// A small image with everything metadata.json, labels.json and docker_inspect.json show.
fn described_image() -> Image {
    ImageBuilder::new()
        .tag("1.0")
        .env("GREETING=hello world")
        .user("app:app")
        .entrypoint(&["/entry.sh"])
        .cmd(&["--serve", "8080"])
        .label("org.opencontainers.image.title", "fixture")
        .label("maintainer", "ci@example.com")
        .layer(
            LayerBuilder::new()
                .dir("etc", 0o755)
                .file("etc/hello", b"first\n"),
        )
        .layer(
            LayerBuilder::new()
                .dir("etc", 0o755)
                .file("etc/hello", b"second\n")
                .file_mode("entry.sh", b"#!/bin/sh\n", 0o755),
        )
        .build()
}

#[test]
fn rootfs_format_writes_every_file_and_the_response() {
    let image = described_image();
    let (registry, digest) = registry_with(&image, "get/described");
    assert_eq!(digest, image.digest);
    let mut source = source_for(&registry, "get/described");
    source["tag"] = json!("1.0");
    let fetch = get(&source, &digest, json!({}));
    let response = fetch.response().clone();
    assert_dest_holds(&fetch, ROOTFS_OUTPUTS);

    let repository = format!("{}/get/described", registry.host());
    assert_eq!(fetch.text("repository"), repository);
    assert_eq!(fetch.text("tag"), "1.0");
    assert_eq!(fetch.text("digest"), digest);
    assert_eq!(fetch.text("image-id"), image.config_digest);

    assert_eq!(
        fetch.json("metadata.json"),
        json!({
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "GREETING=hello world"],
            "user": "app:app",
            "cmd": ["--serve", "8080"],
            "entrypoint": ["/entry.sh"],
        })
    );
    assert_eq!(
        fetch.json("labels.json"),
        json!({"org.opencontainers.image.title": "fixture", "maintainer": "ci@example.com"})
    );

    let inspect = fetch.json("docker_inspect.json");
    let list = inspect
        .as_array()
        .unwrap_or_else(|| panic!("docker_inspect.json is not an array: {inspect}"));
    assert_eq!(list.len(), 1, "{inspect}");
    let inspect = &list[0];
    assert_eq!(inspect["Id"], json!(image.config_digest), "{inspect}");
    assert_eq!(
        inspect["RepoTags"],
        json!([format!("{repository}:1.0")]),
        "{inspect}"
    );
    assert_eq!(
        inspect["RepoDigests"],
        json!([format!("{repository}@{digest}")]),
        "{inspect}"
    );
    assert_eq!(
        inspect["Created"],
        json!("2023-11-14T22:13:20Z"),
        "{inspect}"
    );
    assert_eq!(inspect["Os"], json!("linux"), "{inspect}");
    assert_eq!(
        inspect["Architecture"], image.config["architecture"],
        "{inspect}"
    );
    assert_eq!(
        inspect["Config"]["Env"], image.config["config"]["Env"],
        "{inspect}"
    );
    assert_eq!(
        inspect["Config"]["Labels"], image.config["config"]["Labels"],
        "{inspect}"
    );
    assert_eq!(
        inspect["Config"]["Entrypoint"],
        json!(["/entry.sh"]),
        "{inspect}"
    );
    assert_eq!(inspect["RootFS"]["Type"], json!("layers"), "{inspect}");
    assert_eq!(
        inspect["RootFS"]["Layers"],
        json!(fixture_diff_ids(&image)),
        "{inspect}"
    );
    assert!(inspect["Size"].is_u64(), "Size is not a number: {inspect}");

    // Later layers win.
    assert_eq!(read(&fetch.rootfs().join("etc/hello")), "second\n");
    assert_eq!(read(&fetch.rootfs().join("entry.sh")), "#!/bin/sh\n");

    assert_eq!(
        response["version"],
        json!({"digest": digest, "tag": "1.0"}),
        "{response}"
    );
    for (name, value) in [
        ("repository", json!(repository)),
        ("tag", json!("1.0")),
        ("image_id", json!(image.config_digest)),
    ] {
        assert_eq!(
            metadata_value(&response, name),
            Some(value),
            "metadata {name} in {response}"
        );
    }
    assert!(
        metadata_value(&response, "size").is_some(),
        "no size in {response}"
    );
    for entry in response["metadata"].as_array().expect("metadata list") {
        assert!(
            entry["name"].is_string() && entry["value"].is_string(),
            "metadata entries are {{name, value}} strings: {entry}"
        );
    }
}

#[test]
fn no_labels_is_an_empty_labels_json_and_default_tag_is_latest() {
    let image = ImageBuilder::new()
        .layer(LayerBuilder::new().file("hello", b"hi"))
        .build();
    let (registry, digest) = registry_with(&image, "get/plain");
    let fetch = get(&source_for(&registry, "get/plain"), &digest, json!({}));
    fetch.response();
    assert_eq!(fetch.json("labels.json"), json!({}));
    assert_eq!(fetch.text("tag"), "latest");
    assert_eq!(read(&fetch.rootfs().join("hello")), "hi");
}

#[test]
fn skip_download_writes_only_repository_tag_and_digest() {
    let image = random_image(1, 256);
    let registry = Registry::start(RegistryConfig::new().log_level("info"));
    push(&registry, &image, "get/skip:v1");
    let digest = skopeo_raw_digest(&registry, "get/skip:v1");
    let mut source = source_for(&registry, "get/skip");
    source["tag"] = json!("v1");
    let log_before = registry.log().len();
    let fetch = get(&source, &digest, json!({"skip_download": true}));
    let response = fetch.response().clone();
    assert_dest_holds(&fetch, &["repository", "tag", "digest"]);
    assert_eq!(
        fetch.text("repository"),
        format!("{}/get/skip", registry.host())
    );
    assert_eq!(fetch.text("tag"), "v1");
    assert_eq!(fetch.text("digest"), digest);
    assert_eq!(response["version"]["digest"], json!(digest), "{response}");
    // Nothing else is fetched: no manifest or blob request reached the registry (whose
    // info log does record requests: the push is in it).
    let log = registry.log();
    assert!(
        log[..log_before].contains("/manifests/v1"),
        "the registry log does not record requests, so this check would prove nothing:\n{log}"
    );
    let fetched: Vec<&str> = log[log_before..]
        .lines()
        .filter(|line| line.contains("/manifests/") || line.contains("/blobs/"))
        .collect();
    assert!(
        fetched.is_empty(),
        "skip_download still fetched:\n{}",
        fetched.join("\n")
    );
}

#[test]
fn save_writes_a_docker_archive_tagged_repository_tag() {
    let image = described_image();
    let (registry, digest) = registry_with(&image, "get/save");
    let mut source = source_for(&registry, "get/save");
    source["tag"] = json!("1.0");
    let fetch = get(&source, &digest, json!({"save": true}));
    fetch.response();
    let mut expected = ROOTFS_OUTPUTS.to_vec();
    expected.push("image");
    assert_dest_holds(&fetch, &expected);
    assert_docker_archive(
        &fetch.dest.join("image"),
        &format!("{}/get/save:1.0", registry.host()),
        &fixture_diff_ids(&image),
    );
}

#[test]
fn format_oci_writes_image_tar_in_docker_save_format() {
    let image = described_image();
    let (registry, digest) = registry_with(&image, "get/ocitar");
    let mut source = source_for(&registry, "get/ocitar");
    source["tag"] = json!("1.0");
    let fetch = get(&source, &digest, json!({"format": "oci"}));
    fetch.response();
    for name in ["repository", "tag", "digest", "image.tar"] {
        assert!(
            fetch.dest.join(name).exists(),
            "no {name}; dest holds {:?}",
            names_in(&fetch.dest)
        );
    }
    assert_docker_archive(
        &fetch.dest.join("image.tar"),
        &format!("{}/get/ocitar:1.0", registry.host()),
        &fixture_diff_ids(&image),
    );
}

#[test]
fn format_oci_layout_of_one_image() {
    let image = described_image();
    let (registry, digest) = registry_with(&image, "get/layout");
    let mut source = source_for(&registry, "get/layout");
    source["tag"] = json!("1.0");
    let fetch = get(&source, &digest, json!({"format": "oci-layout"}));
    fetch.response();
    let layout = fetch.dest.join("oci");
    let index: Value =
        serde_json::from_str(&read(&layout.join("index.json"))).expect("index.json JSON");
    let descriptor = &index["manifests"][0];
    assert_eq!(descriptor["digest"], json!(digest), "{index}");
    assert_eq!(
        descriptor["annotations"]["org.opencontainers.image.ref.name"],
        json!("1.0"),
        "{index}"
    );
    let inspected = skopeo(&["inspect".into(), format!("oci:{}:1.0", layout.display())])
        .unwrap_or_else(|err| panic!("skopeo cannot read our layout: {err}"));
    let inspected: Value = serde_json::from_str(&inspected).expect("skopeo inspect JSON");
    assert_eq!(inspected["Digest"], json!(digest), "{inspected}");
    assert_eq!(layout_diff_ids(&layout), fixture_diff_ids(&image));
    // Every blob is whole.
    layout_blob(&layout, &image.config_digest);
    for layer in &image.layers {
        layout_blob(&layout, &layer.digest);
    }
}

#[test]
fn format_oci_layout_of_an_index_keeps_every_platform() {
    let index = multi_arch_index(&["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    let (registry, digest) = registry_with(&index, "get/multi-layout");
    assert_eq!(digest, index.digest);
    let fetch = get(
        &source_for(&registry, "get/multi-layout"),
        &digest,
        json!({"format": "oci-layout"}),
    );
    fetch.response();
    let layout = fetch.dest.join("oci");
    let top: Value =
        serde_json::from_str(&read(&layout.join("index.json"))).expect("index.json JSON");
    assert_eq!(top["manifests"][0]["digest"], json!(digest), "{top}");
    assert_eq!(
        top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        json!("latest"),
        "{top}"
    );
    assert_eq!(layout_blob(&layout, &digest), index.manifest);
    for platform in &index.manifests {
        let manifest = layout_json(&layout, &platform.digest);
        layout_blob(&layout, &platform.config_digest);
        for layer in manifest["layers"].as_array().expect("layers") {
            layout_blob(&layout, layer["digest"].as_str().expect("layer digest"));
        }
    }
    let copy = TempDir::new().expect("temp dir");
    skopeo(&[
        "copy".into(),
        "--insecure-policy".into(),
        "--all".into(),
        format!("oci:{}:latest", layout.display()),
        format!("oci:{}:x", copy.path().display()),
    ])
    .unwrap_or_else(|err| panic!("skopeo copy --all of our layout: {err}"));
}
