//! `out`'s image sources against real registries, R's `image`: an OCI layout directory, an
//! OCI tarball, a docker-save tarball, a glob; an index with all its manifests; and
//! uncompressed layers pushed gzip. D's sources are in `put_load_and_pull.rs`, the choice
//! between sources in `put_source_choice.rs`, bad inputs in `put_bad_inputs.rs`; the
//! helpers here are shared with them.
//!
//! The oracle for content: skopeo copies the pushed image out of the registry and umoci
//! unpacks it; the result must equal the input's tree (umoci's unpack of the input layout,
//! or GNU tar's extraction of an imported rootfs tarball).

use std::fs;
use std::path::Path;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::get::source_for;
use crate::put::{
    assert_no_blobs, assert_nothing_pushed, assert_tags, blob_counts, copy_dir, merged, pushed,
    put, work_dir, write_file, BlobCounts,
};
use crate::util::image::random_bytes;
use crate::util::oracle::{pulled_rootfs, umoci_unpack};
use crate::util::tree::{assert_same_tree, Compare};
use crate::util::*;

/// A two-layer image whose layers hold known files: dirs, a setuid file, a symlink, a
/// hard link, an owned file with an xattr, and a whiteout in the second layer.
pub(crate) fn content_image(compression: Compression) -> Image {
    content_builder(compression).build()
}

pub(crate) fn content_builder(compression: Compression) -> ImageBuilder {
    ImageBuilder::new()
        .layer_tar(
            LayerBuilder::new()
                .dir("etc", 0o755)
                .file("etc/config", b"a=1\n")
                .dir("bin", 0o755)
                .file_mode("bin/tool", &random_bytes(2048), 0o4755)
                .symlink("bin/alias", "tool")
                .hardlink("bin/tool-link", "bin/tool")
                .dir("data", 0o750)
                .file("data/old", b"old")
                .file_with(
                    "data/owned",
                    b"owned",
                    &Attrs::mode(0o600)
                        .owner(1000, 1000)
                        .xattr("user.test", b"v"),
                )
                .into_tar(),
            compression,
        )
        .layer_tar(
            LayerBuilder::new()
                .dir("data", 0o750)
                .whiteout("data/old")
                .file("data/new", b"new")
                .into_tar(),
            compression,
        )
}

/// umoci's unpack of a fixture layout.
fn input_rootfs(image: &Image, work: &Path, name: &str) -> std::path::PathBuf {
    umoci_unpack(image.path(), &image.tag, work, name)
}

/// Asserts `reference` on `registry` unpacks (skopeo + umoci) to the same tree as `expected`.
pub(crate) fn assert_content(registry: &Registry, reference: &str, expected: &Path, what: &str) {
    let work = TempDir::new().expect("temp dir");
    let pushed = pulled_rootfs(registry, reference, work.path(), "pushed");
    assert_same_tree(
        &format!("pushed ({what})"),
        &pushed,
        "input",
        expected,
        &Compare::unpacked(),
    );
}

/// Asserts `reference` has the same content as the fixture `image`.
pub(crate) fn assert_content_of(registry: &Registry, reference: &str, image: &Image, what: &str) {
    let work = TempDir::new().expect("temp dir");
    let expected = input_rootfs(image, work.path(), "input");
    assert_content(registry, reference, &expected, what);
}

/// The manifest `registry` serves for `reference`, parsed.
pub(crate) fn pushed_manifest(registry: &Registry, reference: &str) -> Value {
    let raw = skopeo_inspect_raw(registry, reference);
    serde_json::from_str(&raw).unwrap_or_else(|err| panic!("manifest JSON ({err}):\n{raw}"))
}

/// Asserts every layer of the manifest at `reference` is gzip-compressed.
pub(crate) fn assert_gzip_layers(registry: &Registry, reference: &str, layers: usize) {
    let manifest = pushed_manifest(registry, reference);
    let media_types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no layers in {manifest}"))
        .iter()
        .map(|layer| layer["mediaType"].as_str().expect("layer mediaType"))
        .collect();
    assert_eq!(media_types.len(), layers, "{manifest}");
    assert!(
        media_types.iter().all(|m| m.ends_with("gzip")),
        "layers should be pushed gzip-compressed: {media_types:?}"
    );
}

/// `skopeo copy oci:<image> docker-archive:<path>:<reference>`.
pub(crate) fn docker_archive(image: &Image, path: &Path, reference: &str) {
    skopeo(&[
        "copy".into(),
        "--insecure-policy".into(),
        image.oci_ref(),
        format!("docker-archive:{}:{reference}", path.display()),
    ])
    .unwrap_or_else(|err| panic!("writing a docker-save tarball: {err}"));
}

/// A tar of the directory `dir` with names relative to it (`oci-layout`, `index.json`,
/// `blobs/sha256/...`): an OCI tarball when `dir` is a layout.
pub(crate) fn tar_dir(dir: &Path, path: &Path) {
    fn add(builder: &mut tar::Builder<Vec<u8>>, root: &Path, relative: &Path) {
        let mut names: Vec<_> = fs::read_dir(root.join(relative))
            .expect("listing")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        for name in names {
            let rel = relative.join(&name);
            let full = root.join(&rel);
            if full.is_dir() {
                builder.append_dir(&rel, &full).expect("adding a dir");
                add(builder, root, &rel);
            } else {
                builder
                    .append_path_with_name(&full, &rel)
                    .expect("adding a file");
            }
        }
    }
    let mut builder = tar::Builder::new(Vec::new());
    add(&mut builder, dir, Path::new(""));
    fs::write(path, builder.into_inner().expect("finishing the tar")).expect("writing the tar");
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// The source of `repository` on `registry` with `tag`.
pub(crate) fn tagged_source(registry: &Registry, repository: &str, tag: &str) -> Value {
    merged(&source_for(registry, repository), json!({ "tag": tag }))
}

// ---- image (R) -------------------------------------------------------------------------

#[test]
fn image_oci_layout_directory_and_oci_tarball() {
    let registry = Registry::start(RegistryConfig::new());
    let image = content_image(Compression::Gzip);
    let work = work_dir();
    copy_dir(image.path(), &work.path().join("out/layout"));
    tar_dir(image.path(), &work.path().join("out/image.tar"));

    let out = put(
        work.path(),
        &tagged_source(&registry, "put/layout", "dir"),
        json!({"image": "out/layout"}),
    );
    let first = pushed(&out);
    assert_eq!(
        first.digest, image.digest,
        "the layout's manifest is pushed as is"
    );
    assert_eq!(blob_counts(&out), BlobCounts::new(3, 0, 0));
    assert_tags(&registry, "put/layout", &["dir"], &image.digest);
    assert_content_of(&registry, "put/layout:dir", &image, "OCI layout dir");

    let out = put(
        work.path(),
        &tagged_source(&registry, "put/ocitar", "tarball"),
        json!({"image": "out/image.tar"}),
    );
    assert_eq!(pushed(&out).digest, image.digest);
    assert_tags(&registry, "put/ocitar", &["tarball"], &image.digest);
    assert_content_of(&registry, "put/ocitar:tarball", &image, "OCI tarball");
}

#[test]
fn image_docker_save_tarball_and_glob() {
    let registry = Registry::start(RegistryConfig::new());
    let image = content_image(Compression::Gzip);
    let work = work_dir();
    fs::create_dir_all(work.path().join("build")).expect("mkdir");
    docker_archive(&image, &work.path().join("build/app.tar"), "team/app:1.0");
    write_file(work.path(), "build/notes.txt", "not an image");

    let out = put(
        work.path(),
        &source_for(&registry, "put/saved"),
        json!({"image": "build/app.tar"}),
    );
    let saved = pushed(&out);
    assert_eq!(blob_counts(&out).uploaded, 3, "stderr:\n{}", out.stderr);
    assert_tags(&registry, "put/saved", &["latest"], &saved.digest);
    assert_gzip_layers(&registry, "put/saved:latest", 2);
    assert_content_of(&registry, "put/saved:latest", &image, "docker-save tarball");

    // A glob matching exactly that file.
    let out = put(
        work.path(),
        &source_for(&registry, "put/globbed"),
        json!({"image": "build/*.tar"}),
    );
    let globbed = pushed(&out);
    assert_eq!(
        globbed.digest, saved.digest,
        "the same tarball, the same image"
    );
    assert_tags(&registry, "put/globbed", &["latest"], &globbed.digest);
}

#[test]
fn image_glob_must_match_exactly_one_path() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(1, 512);
    let work = work_dir();
    fs::create_dir(work.path().join("build")).expect("mkdir");
    tar_dir(image.path(), &work.path().join("build/a.tar"));
    fs::copy(
        work.path().join("build/a.tar"),
        work.path().join("build/b.tar"),
    )
    .expect("copy");
    let source = source_for(&registry, "put/glob");

    let out = put(work.path(), &source, json!({"image": "build/*.tar"}));
    let err = out.expect_failure();
    assert!(
        err.contains("a.tar") && err.contains("b.tar"),
        "a glob matching two files should list them:\n{err}"
    );
    assert_nothing_pushed(&registry, "put/glob", &out);

    let out = put(work.path(), &source, json!({"image": "nothing/*.tar"}));
    let err = out.expect_failure();
    assert!(
        err.contains("image") && err.contains("nothing/*.tar"),
        "a glob matching nothing should name the param and the pattern:\n{err}"
    );
    assert_nothing_pushed(&registry, "put/glob", &out);
    assert_no_blobs(&registry, &out);
}

#[test]
fn multi_arch_index_is_pushed_as_the_same_index() {
    let registry = Registry::start(RegistryConfig::new());
    let index = multi_arch_index(&["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]);
    let work = work_dir();
    copy_dir(index.path(), &work.path().join("index"));
    let out = put(
        work.path(),
        &tagged_source(&registry, "put/multi", "1.0"),
        json!({"image": "index"}),
    );
    let pushed = pushed(&out);
    assert_eq!(
        pushed.digest, index.digest,
        "version.digest is the index digest"
    );
    assert_eq!(blob_counts(&out), BlobCounts::new(6, 0, 0));
    assert_eq!(
        skopeo_inspect_raw(&registry, "put/multi:1.0").as_bytes(),
        index.manifest.as_slice(),
        "the tag should serve the layout's index byte for byte"
    );
    assert_tags(&registry, "put/multi", &["1.0"], &index.digest);

    // The same index from an OCI tarball, under another tag: every blob is present.
    tar_dir(index.path(), &work.path().join("index.tar"));
    let out = put(
        work.path(),
        &tagged_source(&registry, "put/multi", "tarball"),
        json!({"image": "index.tar"}),
    );
    assert_eq!(crate::put::pushed(&out).digest, index.digest);
    assert_eq!(blob_counts(&out), BlobCounts::new(0, 6, 0));
    assert_tags(&registry, "put/multi", &["1.0", "tarball"], &index.digest);
    for platform in &index.manifests {
        assert_eq!(
            skopeo_raw_digest(&registry, &format!("put/multi@{}", platform.digest)),
            platform.digest,
            "the {} manifest",
            platform.platform
        );
        let config = skopeo(&[
            "inspect".into(),
            "--config".into(),
            "--raw".into(),
            "--tls-verify=false".into(),
            format!("docker://{}/put/multi@{}", registry.host(), platform.digest),
        ])
        .unwrap_or_else(|err| panic!("the {} config: {err}", platform.platform));
        assert_eq!(
            crate::util::image::sha256_digest(config.as_bytes()),
            platform.config_digest
        );
    }
}

#[test]
fn uncompressed_layers_are_pushed_gzip_compressed_and_intact() {
    let registry = Registry::start(RegistryConfig::new());
    let image = content_image(Compression::None);
    let work = work_dir();
    copy_dir(image.path(), &work.path().join("layout"));
    let out = put(
        work.path(),
        &source_for(&registry, "put/plain-layers"),
        json!({"image": "layout"}),
    );
    let pushed = pushed(&out);
    assert_eq!(blob_counts(&out), BlobCounts::new(3, 0, 0));
    assert_tags(&registry, "put/plain-layers", &["latest"], &pushed.digest);
    assert_gzip_layers(&registry, "put/plain-layers:latest", 2);
    let config = skopeo(&[
        "inspect".into(),
        "--config".into(),
        "--raw".into(),
        "--tls-verify=false".into(),
        format!("docker://{}/put/plain-layers:latest", registry.host()),
    ])
    .expect("the pushed config");
    let config: Value = serde_json::from_str(&config).expect("config JSON");
    assert_eq!(
        config["rootfs"]["diff_ids"], image.config["rootfs"]["diff_ids"],
        "compressing must keep the diff_ids"
    );
    assert_content_of(
        &registry,
        "put/plain-layers:latest",
        &image,
        "uncompressed layers",
    );
}
