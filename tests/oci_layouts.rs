//! OCI layouts as concourse/registry-image-resource (R) writes and reads them (issue 9,
//! item 5): `out` with `image:` a layout (or OCI tarball) whose `index.json` lists several
//! image manifests directly, as R's `in` writes a multi-platform tag, pushed as one index;
//! a layout holding one index; and `in` with `format: oci-layout` writing what R writes
//! (plus a ref name), read back by skopeo (`oci:DIR` and `oci:DIR:<tag>`), umoci and `out`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::get::{get, layout_blob, registry_with, source_for};
use crate::put::{copy_dir, pushed, put, work_dir};
use crate::put_sources::{pushed_manifest, tagged_source, tar_dir};
use crate::util::image::sha256_digest;
use crate::util::oracle::umoci_unpack;
use crate::util::*;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `skopeo copy --all` of `image` into the layout `<work>/<name>`, without a ref name:
/// for an index, `index.json` lists the index (kept byte for byte) as its only entry.
fn skopeo_layout(image: &Image, work: &Path, name: &str) -> PathBuf {
    let layout = work.join(name);
    skopeo(&[
        "copy".into(),
        "--insecure-policy".into(),
        "--all".into(),
        image.oci_ref(),
        format!("oci:{}", layout.display()),
    ])
    .unwrap_or_else(|err| panic!("skopeo copy --all into a layout: {err}"));
    layout
}

/// Rewrites `layout`'s `index.json` as R's `in` writes a multi-platform tag: the fetched
/// index's own bytes, so that it lists the image manifests directly. Without
/// `platforms`, the entries' platforms are removed (then they come from the configs).
fn list_manifests_directly(layout: &Path, index: &[u8], platforms: bool) {
    let bytes = if platforms {
        index.to_vec()
    } else {
        let mut index: Value = serde_json::from_slice(index).expect("index JSON");
        for entry in index["manifests"].as_array_mut().expect("manifests") {
            entry.as_object_mut().expect("entry").remove("platform");
        }
        serde_json::to_vec(&index).expect("index JSON")
    };
    fs::write(layout.join("index.json"), bytes).expect("writing index.json");
}

/// Asserts the index at `reference` lists exactly `index`'s images, each with its
/// platform, and that each image is on the registry.
fn assert_pushed_index(registry: &Registry, repository: &str, tag: &str, index: &Image) {
    let pushed = pushed_manifest(registry, &format!("{repository}:{tag}"));
    assert_eq!(pushed["mediaType"], OCI_INDEX, "{pushed}");
    let entries = pushed["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), index.manifests.len(), "{pushed}");
    for (entry, platform) in entries.iter().zip(&index.manifests) {
        assert_eq!(entry["digest"], json!(platform.digest), "{pushed}");
        let (os, architecture) = platform.platform.split_once('/').expect("os/architecture");
        assert_eq!(
            entry["platform"],
            json!({"os": os, "architecture": architecture}),
            "{pushed}"
        );
        assert_eq!(
            skopeo_raw_digest(registry, &format!("{repository}@{}", platform.digest)),
            platform.digest,
            "the {} manifest",
            platform.platform
        );
    }
}

#[test]
fn several_manifests_in_index_json_are_pushed_as_one_index() {
    let registry = Registry::start(RegistryConfig::new());
    let index = multi_arch_index(&["linux/amd64", "linux/arm64"]);
    let work = work_dir();
    let repository = "oci/multi";

    // A layout holding one index (what skopeo copy --all writes): that index, unchanged.
    let layout = skopeo_layout(&index, work.path(), "nested");
    let out = put(
        work.path(),
        &tagged_source(&registry, repository, "nested"),
        json!({"image": "nested"}),
    );
    assert_eq!(pushed(&out).digest, index.digest, "{}", out.stderr);

    // The index's manifests listed directly in index.json, with platforms (R's `in`):
    // index.json itself is the index, byte for byte, as R pushes it.
    let direct = work.path().join("direct");
    copy_dir(&layout, &direct);
    list_manifests_directly(&direct, &index.manifest, true);
    let out = put(
        work.path(),
        &tagged_source(&registry, repository, "direct"),
        json!({"image": "direct"}),
    );
    assert_eq!(pushed(&out).digest, index.digest, "{}", out.stderr);
    assert_eq!(
        skopeo_inspect_raw(&registry, &format!("{repository}:direct")).as_bytes(),
        index.manifest.as_slice()
    );
    assert_pushed_index(&registry, repository, "direct", &index);

    // Without platforms: each taken from its image's config; a new index.
    let bare = work.path().join("bare");
    copy_dir(&layout, &bare);
    list_manifests_directly(&bare, &index.manifest, false);
    let out = put(
        work.path(),
        &tagged_source(&registry, repository, "bare"),
        json!({"image": "bare"}),
    );
    let bare_digest = pushed(&out).digest;
    assert_ne!(bare_digest, index.digest);
    assert_eq!(
        skopeo_raw_digest(&registry, &format!("{repository}:bare")),
        bare_digest
    );
    assert_pushed_index(&registry, repository, "bare", &index);

    // The same layout as an OCI tarball: the same index.
    tar_dir(&bare, &work.path().join("bare.tar"));
    let out = put(
        work.path(),
        &tagged_source(&registry, repository, "tarball"),
        json!({"image": "bare.tar"}),
    );
    assert_eq!(pushed(&out).digest, bare_digest, "{}", out.stderr);
    for (tag, digest) in [
        ("nested", &index.digest),
        ("direct", &index.digest),
        ("bare", &bare_digest),
        ("tarball", &bare_digest),
    ] {
        assert_eq!(
            &skopeo_raw_digest(&registry, &format!("{repository}:{tag}")),
            digest,
            "{tag}"
        );
    }
}

#[test]
fn two_images_of_one_platform_are_not_pushed_as_an_index() {
    let registry = Registry::start(RegistryConfig::new());
    let index = multi_arch_index(&["linux/amd64", "linux/amd64"]);
    let work = work_dir();
    let layout = skopeo_layout(&index, work.path(), "same");
    list_manifests_directly(&layout, &index.manifest, false);
    let out = put(
        work.path(),
        &tagged_source(&registry, "oci/same", "1"),
        json!({"image": "same"}),
    );
    let err = out.expect_failure();
    assert!(
        err.contains("two images for linux/amd64") && err.contains("one image per platform"),
        "{err}"
    );
}

/// The blobs of `layout`, as digests.
fn layout_blobs(layout: &Path) -> BTreeSet<String> {
    fs::read_dir(layout.join("blobs/sha256"))
        .expect("listing blobs")
        .map(|e| format!("sha256:{}", e.expect("entry").file_name().to_string_lossy()))
        .collect()
}

/// `skopeo copy` of `from` (a transport:name) to `repository:tag` on `registry`; the
/// digest the registry then serves.
fn skopeo_copy_to(registry: &Registry, from: &str, reference: &str) -> Result<String, String> {
    let mut args: Vec<String> = vec!["copy".into(), "--insecure-policy".into()];
    args.extend(registry.skopeo_flags("dest-"));
    args.push(from.to_string());
    args.push(format!("docker://{}/{reference}", registry.host()));
    skopeo(&args)?;
    Ok(skopeo_raw_digest(registry, reference))
}

/// `out` of `<dest>/oci` (what `in` wrote) to `repository:tag`; the pushed digest.
fn push_back(registry: &Registry, dest: &Path, repository: &str, tag: &str) -> String {
    let out = put(
        dest,
        &tagged_source(registry, repository, tag),
        json!({"image": "oci"}),
    );
    let digest = pushed(&out).digest;
    assert_eq!(
        skopeo_raw_digest(registry, &format!("{repository}:{tag}")),
        digest
    );
    digest
}

#[test]
fn in_oci_layout_of_one_image_is_what_r_writes_and_tools_read() {
    let image = ImageBuilder::new()
        .tag("1.0")
        .layer(
            LayerBuilder::new()
                .dir("etc", 0o755)
                .file("etc/hello", b"hi\n"),
        )
        .layer(LayerBuilder::new().file("second", b"2\n"))
        .build();
    let (registry, digest) = registry_with(&image, "oci/single");
    let mut source = source_for(&registry, "oci/single");
    source["tag"] = json!("1.0");
    let fetch = get(&source, &digest, json!({"format": "oci-layout"}));
    fetch.response();
    let layout = fetch.dest.join("oci");

    // R's shape: an OCI index listing the manifest, the single-image-digest marker, the
    // oci-layout file, and exactly the image's blobs. We add the tag as ref name.
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index.json JSON");
    assert_eq!(
        index,
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": image.manifest.len(),
                "annotations": {REF_NAME: "1.0"},
            }],
        })
    );
    assert_eq!(
        fs::read_to_string(layout.join("single-image-digest")).expect("single-image-digest"),
        digest
    );
    let marker: Value =
        serde_json::from_slice(&fs::read(layout.join("oci-layout")).expect("oci-layout"))
            .expect("oci-layout JSON");
    assert_eq!(marker, json!({"imageLayoutVersion": "1.0.0"}));
    let mut expected: BTreeSet<String> = image.layers.iter().map(|l| l.digest.clone()).collect();
    expected.insert(digest.clone());
    expected.insert(image.config_digest.clone());
    assert_eq!(layout_blobs(&layout), expected);
    assert_eq!(layout_blob(&layout, &digest), image.manifest);

    // skopeo, with and without the ref name; the digest holds.
    for (from, tag) in [
        (format!("oci:{}", layout.display()), "unnamed"),
        (format!("oci:{}:1.0", layout.display()), "named"),
    ] {
        let copied = skopeo_copy_to(&registry, &from, &format!("oci/copied:{tag}"))
            .unwrap_or_else(|err| panic!("skopeo copy {from}: {err}"));
        assert_eq!(copied, digest, "skopeo copy {from}");
    }
    // umoci, by the ref name.
    let work = TempDir::new().expect("temp dir");
    let rootfs = umoci_unpack(&layout, "1.0", work.path(), "single");
    assert_eq!(
        fs::read(rootfs.join("etc/hello")).expect("etc/hello"),
        b"hi\n"
    );
    assert_eq!(fs::read(rootfs.join("second")).expect("second"), b"2\n");

    // Round trip: out with image: oci pushes the same image.
    assert_eq!(
        push_back(&registry, &fetch.dest, "oci/round-trip", "1.0"),
        digest
    );
}

#[test]
fn in_oci_layout_of_a_docker_image_keeps_its_manifest() {
    let image = ImageBuilder::new()
        .tag("d")
        .layer(LayerBuilder::new().file("docker", b"v2s2\n"))
        .build();
    let registry = Registry::start(RegistryConfig::new());
    push_with_args(&registry, &image, "oci/docker:d", &["--format", "v2s2"]);
    let digest = skopeo_raw_digest(&registry, "oci/docker:d");
    let mut source = source_for(&registry, "oci/docker");
    source["tag"] = json!("d");
    let fetch = get(&source, &digest, json!({"format": "oci-layout"}));
    fetch.response();
    let layout = fetch.dest.join("oci");
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index.json JSON");
    // The manifest bytes are kept, so its digest holds: it stays a Docker manifest, as
    // R keeps it.
    assert_eq!(
        index["manifests"][0]["mediaType"], DOCKER_MANIFEST,
        "{index}"
    );
    assert_eq!(index["manifests"][0]["digest"], json!(digest), "{index}");
    assert_eq!(
        fs::read_to_string(layout.join("single-image-digest")).expect("single-image-digest"),
        digest
    );
    assert_eq!(
        sha256_digest(&layout_blob(&layout, &digest)),
        digest,
        "the manifest blob"
    );

    // skopeo (1.9) reads it without a ref name ...
    let unnamed = format!("oci:{}", layout.display());
    assert_eq!(
        skopeo_copy_to(&registry, &unnamed, "oci/docker-copied:unnamed")
            .unwrap_or_else(|err| panic!("skopeo copy {unnamed}: {err}")),
        digest
    );
    // ... but refuses a Docker manifest found by ref name (a limitation of skopeo's
    // layout reader that the README states; R's layout has no ref name at all).
    let named = format!("oci:{}:d", layout.display());
    let err = skopeo_copy_to(&registry, &named, "oci/docker-copied:named")
        .expect_err("skopeo read a Docker manifest by ref name");
    assert!(err.contains("no descriptor found for reference"), "{err}");

    // umoci (0.4) unpacks OCI manifests only, whatever the name (see the README).
    let work = TempDir::new().expect("temp dir");
    let umoci = std::process::Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:d", layout.display())])
        .arg(work.path().join("bundle"))
        .output()
        .expect("running umoci (apt-get install umoci)");
    let stderr = String::from_utf8_lossy(&umoci.stderr);
    assert!(
        !umoci.status.success() && stderr.contains(DOCKER_MANIFEST),
        "umoci on a Docker manifest: {} {stderr}",
        umoci.status
    );

    // Our out pushes it back unchanged.
    assert_eq!(
        push_back(&registry, &fetch.dest, "oci/docker-back", "d"),
        digest
    );
}

#[test]
fn in_oci_layout_of_an_index_round_trips_through_out() {
    let index = multi_arch_index(&["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    let (registry, digest) = registry_with(&index, "oci/multi-in");
    assert_eq!(digest, index.digest);
    let fetch = get(
        &source_for(&registry, "oci/multi-in"),
        &digest,
        json!({"format": "oci-layout"}),
    );
    fetch.response();
    let layout = fetch.dest.join("oci");
    assert!(
        !layout.join("single-image-digest").exists(),
        "no single-image marker for an index"
    );
    assert_eq!(
        push_back(&registry, &fetch.dest, "oci/multi-back", "latest"),
        index.digest
    );
    assert_eq!(
        skopeo_inspect_raw(&registry, "oci/multi-back:latest").as_bytes(),
        index.manifest.as_slice(),
        "the fetched index, byte for byte"
    );
}
