//! `out`'s compression of uncompressed (docker-save) layers, against real registries:
//! `params.compression: zstd` read back by skopeo and by our `in`; the re-push short-cut
//! (the tag already holds the image: no blob request at all, counted in the registry's
//! log); layers another tag has, found through its diff_ids instead of compressed
//! again; and gzip layers of many members (one per MiB) read by `gzip -d`, umoci and `in`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::get::{get, source_for};
use crate::put::{blob_counts, pushed, put, work_dir, BlobCounts};
use crate::put_sources::{
    assert_content_of, content_builder, docker_archive, pushed_manifest, tagged_source,
};
use crate::util::front::{Action, Front};
use crate::util::image::{random_bytes, sha256_digest};
use crate::util::oracle::umoci_unpack;
use crate::util::tree::{assert_same_tree, Compare};
use crate::util::*;

const OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The layer media types of the manifest at `reference`.
fn layer_media_types(registry: &Registry, reference: &str) -> Vec<String> {
    let manifest = pushed_manifest(registry, reference);
    manifest["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no layers in {manifest}"))
        .iter()
        .map(|l| l["mediaType"].as_str().expect("mediaType").to_string())
        .collect()
}

/// The layer digests of the manifest at `reference`.
fn layer_digests(registry: &Registry, reference: &str) -> Vec<Value> {
    let manifest = pushed_manifest(registry, reference);
    manifest["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no layers in {manifest}"))
        .iter()
        .map(|l| l["digest"].clone())
        .collect()
}

/// Compressible text, different for each `seed`, with matches that gzip's levels find
/// differently.
fn text(seed: usize) -> Vec<u8> {
    (0..20_000)
        .map(|n| format!("{} {}\n", n * 7 % 1000 + seed, n % 13))
        .collect::<String>()
        .into_bytes()
}

/// `skopeo copy` (which checks every digest) of `reference` on `registry` to a `dir:`
/// layout in `dir`; returns a function giving the path of a blob there by its digest.
fn skopeo_dir_copy(registry: &Registry, reference: &str, dir: &Path) -> impl Fn(&Value) -> PathBuf {
    let mut args: Vec<String> = vec!["copy".into(), "--insecure-policy".into()];
    args.extend(registry.skopeo_flags("src-"));
    args.push(format!("docker://{}/{reference}", registry.host()));
    args.push(format!("dir:{}", dir.display()));
    skopeo(&args).unwrap_or_else(|e| panic!("{e}"));
    let dir = dir.to_path_buf();
    move |digest: &Value| {
        let hex = digest
            .as_str()
            .and_then(|d| d.strip_prefix("sha256:"))
            .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
        dir.join(hex)
    }
}

/// The requests for blobs (any method) in `log`.
fn blob_requests(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("/blobs/")).collect()
}

#[test]
fn zstd_layers_are_read_by_skopeo_and_by_in() {
    let registry = Registry::start(RegistryConfig::new());
    let image = content_builder(Compression::None).build();
    let work = work_dir();
    docker_archive(&image, &work.path().join("image.tar"), "team/app:1");
    let target = tagged_source(&registry, "put/zstd", "1");
    let out = put(
        work.path(),
        &target,
        json!({"load_file": "image.tar", "compression": "zstd", "compression_level": 5}),
    );
    let zstd = pushed(&out);
    assert_eq!(blob_counts(&out), BlobCounts::new(3, 0, 0));
    // Each layer was uploaded as soon as it was compressed, and the summary says so.
    assert!(
        out.stderr
            .contains("2 layers uploaded while the image was being made"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("of it uploaded ahead; "),
        "{}",
        out.stderr
    );
    assert_eq!(
        layer_media_types(&registry, "put/zstd:1"),
        [OCI_ZSTD, OCI_ZSTD]
    );

    // skopeo copies it (checking every digest) and its layers are zstd frames.
    let copy = TempDir::new().expect("temp dir");
    let blob = skopeo_dir_copy(&registry, "put/zstd:1", &copy.path().join("dir"));
    for digest in layer_digests(&registry, "put/zstd:1") {
        let bytes = std::fs::read(blob(&digest)).expect("skopeo's copy of the layer");
        assert!(
            bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
            "not zstd: {digest}"
        );
    }

    // Our `in` unpacks it to the tree umoci makes of the input image.
    let fetch = get(&target, &zstd.digest, json!({}));
    fetch.response();
    let expected = umoci_unpack(image.path(), &image.tag, copy.path(), "input");
    assert_same_tree(
        "in's rootfs of the zstd push",
        &fetch.rootfs(),
        "umoci's unpack of the input",
        &expected,
        &Compare::unpacked(),
    );

    // The same tarball pushed with gzip is another image (not a re-push of this one).
    let gzip = put(
        work.path(),
        &tagged_source(&registry, "put/zstd", "gz"),
        json!({"load_file": "image.tar"}),
    );
    assert_ne!(pushed(&gzip).digest, zstd.digest);
    assert!(layer_media_types(&registry, "put/zstd:gz")
        .iter()
        .all(|m| m.ends_with("gzip")));
    assert_content_of(&registry, "put/zstd:gz", &image, "gzip push");

    // import_file's layer is compressed as asked too.
    let rootfs = LayerBuilder::new()
        .dir("etc", 0o755)
        .file("etc/hello", b"zstd rootfs\n")
        .into_tar();
    std::fs::write(work.path().join("rootfs.tar"), rootfs).expect("writing rootfs.tar");
    let imported = tagged_source(&registry, "put/zstd", "imported");
    let out = put(
        work.path(),
        &imported,
        json!({"import_file": "rootfs.tar", "compression": "zstd"}),
    );
    let digest = pushed(&out).digest;
    assert_eq!(
        layer_media_types(&registry, "put/zstd:imported"),
        [OCI_ZSTD]
    );
    let fetch = get(&imported, &digest, json!({}));
    fetch.response();
    let hello = std::fs::read(fetch.rootfs().join("etc/hello")).expect("etc/hello");
    assert_eq!(hello, b"zstd rootfs\n");

    // Unknown compressions and levels out of range are refused before anything is sent.
    for params in [
        json!({"load_file": "image.tar", "compression": "xz"}),
        json!({"load_file": "image.tar", "compression_level": 10}),
        json!({"load_file": "image.tar", "compression": "zstd", "compression_level": 20}),
    ] {
        let out = put(work.path(), &target, params.clone());
        let err = out.expect_failure();
        assert!(err.contains("params.compression"), "{params}: {err}");
    }
}

#[test]
fn a_re_push_of_the_same_image_sends_no_blob() {
    let registry = Registry::start(RegistryConfig::new().log_level("info"));
    let image = content_builder(Compression::None).build();
    let work = work_dir();
    docker_archive(&image, &work.path().join("image.tar"), "team/app:1");
    let target = tagged_source(&registry, "put/again", "1");
    let params = json!({"load_file": "image.tar", "tag_as_latest": true});
    let first = pushed(&put(work.path(), &target, params.clone()));

    let log_before = registry.log().len();
    let out = put(work.path(), &target, params);
    let again = pushed(&out);
    assert_eq!(again.digest, first.digest);
    assert_eq!(again.tags, ["1", "latest"]);
    assert!(
        out.stderr.contains("already holds this image"),
        "{}",
        out.stderr
    );
    let log = registry.log();
    assert!(
        !blob_requests(&log[..log_before]).is_empty(),
        "the registry log does not record requests, so this check would prove nothing:\n{log}"
    );
    let blobs = blob_requests(&log[log_before..]);
    assert!(
        blobs.is_empty(),
        "the re-push requested blobs:\n{}",
        blobs.join("\n")
    );
    assert!(log[log_before..].contains("/manifests/latest"), "{log}");

    // Asked for zstd, the gzip image under the tag is not the same: it is pushed again.
    let zstd = put(
        work.path(),
        &target,
        json!({"load_file": "image.tar", "compression": "zstd"}),
    );
    assert_ne!(pushed(&zstd).digest, first.digest);
    assert_eq!(blob_counts(&zstd), BlobCounts::new(2, 1, 0));
}

#[test]
fn layers_another_tag_has_are_not_compressed_again() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    // Two images with the same layers and different configs.
    let layers: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            LayerBuilder::new()
                .dir("data", 0o755)
                .file(&format!("data/{i}"), &text(i))
                .into_tar()
        })
        .collect();
    let with_env = |env: &str| {
        layers
            .iter()
            .fold(ImageBuilder::new().env(env), |b, tar| {
                b.layer_tar(tar.clone(), Compression::None)
            })
            .build()
    };
    let (one, two) = (with_env("V=1"), with_env("V=2"));
    docker_archive(&one, &work.path().join("one.tar"), "team/app:1");
    docker_archive(&two, &work.path().join("two.tar"), "team/app:2");
    // Tag 1 holds the layers compressed at level 1; a default push would make other
    // blobs of them (level 3).
    let source = tagged_source(&registry, "put/reuse", "1");
    let first = put(
        work.path(),
        &source,
        json!({"load_file": "one.tar", "compression_level": 1}),
    );
    pushed(&first);
    let level_1 = layer_digests(&registry, "put/reuse:1");
    // The tags pushed are `1` (source.tag, holding another image) and 2.0.0.
    let out = put(
        work.path(),
        &source,
        json!({"load_file": "two.tar", "version": "2"}),
    );
    pushed(&out);
    assert!(
        out.stderr.contains("has 2 compressed layers"),
        "{}",
        out.stderr
    );
    assert_eq!(blob_counts(&out), BlobCounts::new(1, 2, 0));
    assert_eq!(layer_digests(&registry, "put/reuse:2.0.0"), level_1);
    assert_content_of(&registry, "put/reuse:2.0.0", &two, "reused layers");
    // Elsewhere nothing is known: the same tarball is compressed at the default level.
    let fresh = put(
        work.path(),
        &source_for(&registry, "put/fresh"),
        json!({"load_file": "two.tar"}),
    );
    pushed(&fresh);
    assert_eq!(blob_counts(&fresh), BlobCounts::new(3, 0, 0));
    assert_ne!(layer_digests(&registry, "put/fresh:latest"), level_1);
}

#[test]
fn layers_upload_ahead_at_the_same_time() {
    // A front holds the final PUT of the first layer upload until a second upload has
    // started (or 20 s have passed): uploading ahead one layer after the other never
    // starts the second while the first is open.
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let registry = Registry::start(RegistryConfig::new());
    let started = Arc::new(AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicBool::new(false));
    let held = Arc::new(AtomicBool::new(false));
    let (s, o, h) = (
        Arc::clone(&started),
        Arc::clone(&overlapped),
        Arc::clone(&held),
    );
    let front = Front::start(registry.host(), move |seen| {
        if seen.method == "POST" && seen.target.contains("/blobs/uploads/") {
            s.fetch_add(1, Ordering::SeqCst);
        } else if seen.method == "PUT"
            && seen.target.contains("digest=")
            && !h.swap(true, Ordering::SeqCst)
        {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if s.load(Ordering::SeqCst) >= 2 {
                    o.store(true, Ordering::SeqCst);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Action::Forward
    });
    let image = content_builder(Compression::None).build();
    let work = work_dir();
    docker_archive(&image, &work.path().join("image.tar"), "team/app:1");
    let target = json!({ "repository": format!("{}/put/ahead", front.host()), "tag": "1" });
    let out = put(work.path(), &target, json!({"load_file": "image.tar"}));
    pushed(&out);
    assert_eq!(blob_counts(&out), BlobCounts::new(3, 0, 0));
    assert!(
        out.stderr
            .contains("2 layers uploaded while the image was being made"),
        "{}",
        out.stderr
    );
    assert!(
        overlapped.load(Ordering::SeqCst),
        "the second layer's upload waited for the first's"
    );
}

/// How many gzip members `bytes` holds, each read to its end by a single-member decoder.
fn gzip_members(mut bytes: &[u8]) -> usize {
    let mut n = 0;
    while !bytes.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(bytes);
        std::io::copy(&mut decoder, &mut std::io::sink()).expect("a gzip member");
        bytes = decoder.into_inner();
        n += 1;
    }
    n
}

#[test]
fn gzip_layers_of_many_members_are_read_by_gzip_umoci_and_in() {
    // A layer of 3 MB of text and 2 MB of random bytes: 1 MiB blocks, each its own member,
    // some deflated and some stored.
    let big_text: Vec<u8> = (0..150).flat_map(text).take(3_000_000).collect();
    let image = ImageBuilder::new()
        .layer_tar(
            LayerBuilder::new()
                .dir("data", 0o755)
                .file("data/text", &big_text)
                .file("data/random", &random_bytes(2_000_000))
                .into_tar(),
            Compression::None,
        )
        .build();
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    docker_archive(&image, &work.path().join("image.tar"), "team/app:1");
    let target = tagged_source(&registry, "put/members", "1");
    let out = put(work.path(), &target, json!({"load_file": "image.tar"}));
    let digest = pushed(&out).digest;

    // skopeo copies it (checking the digests); the layer is several gzip members, which
    // `gzip -d` reads as one stream equal to the diff_id in the config.
    let copy = TempDir::new().expect("temp dir");
    let blob = skopeo_dir_copy(&registry, "put/members:1", &copy.path().join("dir"));
    let manifest = pushed_manifest(&registry, "put/members:1");
    let layer = blob(&manifest["layers"][0]["digest"]);
    let members = gzip_members(&std::fs::read(&layer).expect("skopeo's copy of the layer"));
    assert!(members >= 5, "{members} gzip member(s)");
    let unzipped = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(&layer)
        .output()
        .expect("running gzip -dc");
    assert!(unzipped.status.success(), "gzip -dc failed");
    let config = std::fs::read(blob(&manifest["config"]["digest"])).expect("the config");
    let config: Value = serde_json::from_slice(&config).expect("config JSON");
    assert_eq!(
        config["rootfs"]["diff_ids"][0].as_str(),
        Some(sha256_digest(&unzipped.stdout).as_str())
    );

    // umoci (Go's compress/gzip) and our `in` unpack it to the input's tree.
    assert_content_of(&registry, "put/members:1", &image, "many gzip members");
    let fetch = get(&target, &digest, json!({}));
    fetch.response();
    let expected = umoci_unpack(image.path(), &image.tag, copy.path(), "input");
    assert_same_tree(
        "in's rootfs of the push",
        &fetch.rootfs(),
        "umoci's unpack of the input",
        &expected,
        &Compare::unpacked(),
    );
}
