//! `out`'s image sources against real registries: `load` (a directory from `in` with
//! `save`), `load_file` (+ `load_repository` / `load_tag`, multi-image docker-save
//! archives), `import_file` (plain and gzip rootfs tarballs), `pull_repository` (same
//! registry: every blob mounted, none downloaded; another registry: copied), and R's
//! `image` (OCI layout directory, OCI tarball, docker-save tarball, glob; an index with
//! all its manifests); D's precedence between sources; uncompressed layers pushed gzip;
//! and bad inputs, each failing clearly with nothing pushed.
//!
//! The oracle for content: skopeo copies the pushed image out of the registry and umoci
//! unpacks it; the result must equal the input's tree (umoci's unpack of the input layout,
//! or GNU tar's extraction of an imported rootfs tarball).

use std::fs;
use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::get::{get, source_for};
use crate::put::{
    assert_no_blobs, assert_nothing_pushed, assert_tags, blob_counts, copy_dir, merged, pushed,
    put, work_dir, write_file, BlobCounts,
};
use crate::util::image::random_bytes;
use crate::util::oracle::{pulled_rootfs, tar_extract, umoci_unpack};
use crate::util::tree::{assert_same_tree, Compare};
use crate::util::*;

/// A two-layer image whose layers hold known files: dirs, a setuid file, a symlink, a
/// hard link, an owned file with an xattr, and a whiteout in the second layer.
fn content_image(compression: Compression) -> Image {
    content_builder(compression).build()
}

fn content_builder(compression: Compression) -> ImageBuilder {
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
fn assert_content(registry: &Registry, reference: &str, expected: &Path, what: &str) {
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
fn assert_content_of(registry: &Registry, reference: &str, image: &Image, what: &str) {
    let work = TempDir::new().expect("temp dir");
    let expected = input_rootfs(image, work.path(), "input");
    assert_content(registry, reference, &expected, what);
}

/// The manifest `registry` serves for `reference`, parsed.
fn pushed_manifest(registry: &Registry, reference: &str) -> Value {
    let raw = skopeo_inspect_raw(registry, reference);
    serde_json::from_str(&raw).unwrap_or_else(|err| panic!("manifest JSON ({err}):\n{raw}"))
}

/// Asserts every layer of the manifest at `reference` is gzip-compressed.
fn assert_gzip_layers(registry: &Registry, reference: &str, layers: usize) {
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
fn docker_archive(image: &Image, path: &Path, reference: &str) {
    skopeo(&[
        "copy".into(),
        "--insecure-policy".into(),
        image.oci_ref(),
        format!("docker-archive:{}:{reference}", path.display()),
    ])
    .unwrap_or_else(|err| panic!("writing a docker-save tarball: {err}"));
}

/// One docker-save tarball holding the images of `archives`, as `docker save a b` writes
/// it. `familiar` rewrites skopeo's `docker.io/team/x:t` names as Docker writes them
/// (`team/x:t`) for the archives it flags.
fn merge_archives(archives: &[(&Path, bool)], path: &Path) {
    let mut manifest: Vec<Value> = Vec::new();
    let mut repositories = serde_json::Map::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut builder = tar::Builder::new(Vec::new());
    let familiar = |name: &str, rewrite: bool| -> String {
        match (rewrite, name.strip_prefix("docker.io/")) {
            (true, Some(short)) => short.to_string(),
            _ => name.to_string(),
        }
    };
    for (archive, rewrite) in archives {
        let mut tar = tar::Archive::new(fs::File::open(archive).expect("opening an archive"));
        for entry in tar.entries().expect("reading an archive") {
            let mut entry = entry.expect("archive entry");
            let name = entry
                .path()
                .expect("entry path")
                .to_string_lossy()
                .into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("entry data");
            match name.as_str() {
                "manifest.json" => {
                    let list: Vec<Value> = serde_json::from_slice(&data).expect("manifest.json");
                    for mut item in list {
                        let tags: Vec<String> = item["RepoTags"]
                            .as_array()
                            .expect("RepoTags")
                            .iter()
                            .map(|t| familiar(t.as_str().expect("tag"), *rewrite))
                            .collect();
                        item["RepoTags"] = json!(tags);
                        manifest.push(item);
                    }
                }
                "repositories" => {
                    let map: serde_json::Map<String, Value> =
                        serde_json::from_slice(&data).expect("repositories");
                    for (repo, tags) in map {
                        repositories.insert(familiar(&repo, *rewrite), tags);
                    }
                }
                _ => {
                    if seen.insert(name.clone()) {
                        let mut header = entry.header().clone();
                        builder
                            .append_data(&mut header, &name, data.as_slice())
                            .or_else(|_| builder.append(&header, data.as_slice()))
                            .expect("copying an entry");
                    }
                }
            }
        }
    }
    for (name, value) in [
        ("manifest.json", Value::Array(manifest)),
        ("repositories", Value::Object(repositories)),
    ] {
        let bytes = serde_json::to_vec(&value).expect("JSON");
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, bytes.as_slice())
            .expect("adding to the archive");
    }
    fs::write(path, builder.into_inner().expect("finishing the archive"))
        .expect("writing the merged archive");
}

/// A tar of the directory `dir` with names relative to it (`oci-layout`, `index.json`,
/// `blobs/sha256/...`): an OCI tarball when `dir` is a layout.
fn tar_dir(dir: &Path, path: &Path) {
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

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// The source of `repository` on `registry` with `tag`.
fn tagged_source(registry: &Registry, repository: &str, tag: &str) -> Value {
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

// ---- load_file (D) ---------------------------------------------------------------------

#[test]
fn load_file_picks_the_named_image_of_a_multi_image_archive() {
    let registry = Registry::start(RegistryConfig::new());
    let first = content_image(Compression::Gzip);
    let second = content_builder(Compression::Gzip)
        .layer(LayerBuilder::new().file("second", b"the second image"))
        .build();
    let work = work_dir();
    let a = work.path().join("a.tar");
    let b = work.path().join("b.tar");
    docker_archive(&first, &a, "team/app:1.0");
    docker_archive(&second, &b, "team/second:2");
    // skopeo writes docker.io/team/app:1.0; docker save writes team/second:2.
    merge_archives(&[(&a, false), (&b, true)], &work.path().join("images.tar"));

    let out = put(
        work.path(),
        &source_for(&registry, "put/second"),
        json!({"load_file": "images.tar", "load_repository": "team/second", "load_tag": 2}),
    );
    let pushed_second = pushed(&out);
    assert_eq!(blob_counts(&out).uploaded, 4, "stderr:\n{}", out.stderr);
    assert_tags(&registry, "put/second", &["latest"], &pushed_second.digest);
    assert_gzip_layers(&registry, "put/second:latest", 3);
    assert_content_of(
        &registry,
        "put/second:latest",
        &second,
        "second of the archive",
    );

    let out = put(
        work.path(),
        &source_for(&registry, "put/first"),
        json!({"load_file": "images.tar", "load_repository": "team/app", "load_tag": "1.0"}),
    );
    let pushed_first = pushed(&out);
    assert_ne!(pushed_first.digest, pushed_second.digest);
    assert_content_of(
        &registry,
        "put/first:latest",
        &first,
        "first of the archive",
    );

    // Not in the archive: the error lists what it holds; nothing pushed.
    let out = put(
        work.path(),
        &source_for(&registry, "put/absent"),
        json!({"load_file": "images.tar", "load_repository": "team/absent", "load_tag": "1"}),
    );
    let err = out.expect_failure();
    assert!(
        err.contains("team/absent")
            && err.contains("team/app:1.0")
            && err.contains("team/second:2"),
        "the error should name what was asked and list what the archive holds:\n{err}"
    );
    assert_nothing_pushed(&registry, "put/absent", &out);
}

// ---- import_file (D) -------------------------------------------------------------------

#[test]
fn import_file_plain_and_gzip_rootfs_tarballs() {
    let registry = Registry::start(RegistryConfig::new());
    // Each directory's entries together, as real tarballs have them: GNU tar (the oracle)
    // sets a directory's mtime when the archive moves past it.
    let rootfs = LayerBuilder::new()
        .dir("etc", 0o755)
        .file("etc/os-release", b"ID=test\n")
        .file_with(
            "etc/secret",
            b"s",
            &Attrs::mode(0o4750)
                .owner(1000, 50)
                .xattr("user.kind", b"secret"),
        )
        .dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .file_mode("usr/bin/app", &random_bytes(3000), 0o755)
        .symlink("usr/bin/app-alias", "app")
        .hardlink("usr/bin/app-hard", "usr/bin/app")
        .into_tar();
    let work = work_dir();
    write_file(work.path(), "rootfs.tar", &rootfs);
    write_file(work.path(), "rootfs.tgz", gzip(&rootfs));
    let oracle = TempDir::new().expect("temp dir");
    let expected = tar_extract(&work.path().join("rootfs.tar"), oracle.path(), "rootfs");

    for (repository, file) in [
        ("put/import-tar", "rootfs.tar"),
        ("put/import-tgz", "rootfs.tgz"),
    ] {
        let out = put(
            work.path(),
            &source_for(&registry, repository),
            json!({"import_file": file}),
        );
        let pushed = pushed(&out);
        assert_eq!(blob_counts(&out), BlobCounts::new(2, 0, 0), "{file}");
        assert_tags(&registry, repository, &["latest"], &pushed.digest);
        let reference = format!("{repository}:latest");
        assert_gzip_layers(&registry, &reference, 1);
        assert_content(&registry, &reference, &expected, file);
    }
    // An absolute path works too.
    let absolute = work.path().join("rootfs.tgz");
    let out = put(
        work.path(),
        &source_for(&registry, "put/import-abs"),
        json!({"import_file": absolute.to_str().unwrap()}),
    );
    pushed(&out);
}

// ---- load (D) --------------------------------------------------------------------------

#[test]
fn load_a_directory_from_in_with_save_and_image_from_in_format_oci() {
    let registry = Registry::start(RegistryConfig::new());
    let image = content_image(Compression::Gzip);
    push(&registry, &image, "put/origin:1.0");
    let digest = skopeo_raw_digest(&registry, "put/origin:1.0");
    let origin = tagged_source(&registry, "put/origin", "1.0");

    let saved = get(&origin, &digest, json!({"save": true}));
    saved.response();
    let out = put(
        saved.tmp.path(),
        &source_for(&registry, "put/loaded"),
        json!({"load": "dest"}),
    );
    let loaded = pushed(&out);
    assert_tags(&registry, "put/loaded", &["latest"], &loaded.digest);
    assert_content_of(&registry, "put/loaded:latest", &image, "load");

    let oci = get(&origin, &digest, json!({"format": "oci"}));
    oci.response();
    let out = put(
        oci.tmp.path(),
        &source_for(&registry, "put/from-in-oci"),
        json!({"image": "dest/image.tar"}),
    );
    let from_oci = pushed(&out);
    assert_tags(&registry, "put/from-in-oci", &["latest"], &from_oci.digest);
    assert_content_of(
        &registry,
        "put/from-in-oci:latest",
        &image,
        "in's image.tar",
    );
}

// ---- pull_repository (D) ---------------------------------------------------------------

#[test]
fn pull_repository_on_the_same_registry_mounts_every_blob() {
    let registry = Registry::start(RegistryConfig::new().log_level("info"));
    let image = content_image(Compression::Gzip);
    let other = random_image(1, 512);
    push(&registry, &image, "put/base:3.1");
    push(&registry, &other, "put/base:latest");
    let log_before = registry.log().len();

    let work = work_dir();
    let base = format!("{}/put/base", registry.host());
    let out = put(
        work.path(),
        &tagged_source(&registry, "put/copy", "copied"),
        json!({"pull_repository": base, "pull_tag": 3.1}),
    );
    let copied = pushed(&out);
    assert_eq!(copied.digest, image.digest, "a copy keeps the manifest");
    assert_eq!(
        blob_counts(&out),
        BlobCounts::new(0, 0, 3),
        "stderr:\n{}",
        out.stderr
    );
    assert_tags(&registry, "put/copy", &["copied"], &image.digest);
    let log = registry.log();
    let downloads: Vec<&str> = log[log_before..]
        .lines()
        .filter(|line| line.contains("GET") && line.contains("/blobs/sha256:"))
        .collect();
    assert!(
        downloads.is_empty(),
        "mounting should download no blob:\n{}",
        downloads.join("\n")
    );
    assert!(
        log[log_before..].contains("mount="),
        "the registry log should show mount requests (is log level info?)"
    );

    // pull_tag defaults to latest.
    let out = put(
        work.path(),
        &source_for(&registry, "put/copy-latest"),
        json!({ "pull_repository": base }),
    );
    assert_eq!(pushed(&out).digest, other.digest);
    assert_eq!(blob_counts(&out), BlobCounts::new(0, 0, 2));

    assert_content_of(&registry, "put/copy:copied", &image, "mounted copy");
}

#[test]
fn pull_repository_from_another_registry_into_tls_with_htpasswd() {
    let from = Registry::start(RegistryConfig::new());
    let image = content_image(Compression::Gzip);
    push(&from, &image, "upstream/app:2.0");
    let ca = Ca::new();
    let to = Registry::start(
        RegistryConfig::new()
            .tls(&ca)
            .htpasswd("copier", "copy-Pa55"),
    );
    let work = work_dir();
    let out = put(
        work.path(),
        &source_for(&to, "mirror/app"),
        json!({
            "pull_repository": format!("{}/upstream/app", from.host()),
            "pull_tag": "2.0",
        }),
    );
    let copied = pushed(&out);
    assert_eq!(copied.digest, image.digest);
    assert_eq!(blob_counts(&out), BlobCounts::new(3, 0, 0));
    assert_tags(&to, "mirror/app", &["latest"], &image.digest);
    assert_content_of(&to, "mirror/app:latest", &image, "copied across registries");
    assert!(!out.stderr.contains("copy-Pa55"), "{}", out.stderr);
}

// ---- choosing the source ---------------------------------------------------------------

#[test]
fn no_image_source_lists_every_kind() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    let out = put(work.path(), &source_for(&registry, "put/none"), json!({}));
    let err = out.expect_failure();
    for kind in [
        "load",
        "build",
        "load_file",
        "import_file",
        "pull_repository",
        "image",
    ] {
        assert!(err.contains(kind), "the error should list {kind}:\n{err}");
    }
    assert_nothing_pushed(&registry, "put/none", &out);
}

#[test]
fn build_is_not_supported_yet() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    write_file(work.path(), "ctx/Dockerfile", "FROM scratch\n");
    let out = put(
        work.path(),
        &source_for(&registry, "put/build"),
        json!({"build": "ctx"}),
    );
    let err = out.expect_failure();
    assert!(err.contains("not supported yet: build"), "{err}");
    assert_no_blobs(&registry, &out);
}

#[test]
fn sources_follow_d_precedence() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(1, 512);
    let work = work_dir();
    let rootfs = LayerBuilder::new()
        .file("imported", b"from import_file")
        .into_tar();
    write_file(work.path(), "rootfs.tar", &rootfs);
    docker_archive(&image, &work.path().join("saved.tar"), "team/app:1");

    // import_file before image.
    let out = put(
        work.path(),
        &source_for(&registry, "put/prec-import"),
        json!({"import_file": "rootfs.tar", "image": image.path().to_str().unwrap()}),
    );
    let imported = pushed(&out);
    assert_ne!(
        imported.digest, image.digest,
        "image should lose to import_file"
    );
    let manifest = pushed_manifest(&registry, "put/prec-import:latest");
    assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(1));

    // load_file before import_file.
    let out = put(
        work.path(),
        &source_for(&registry, "put/prec-load"),
        json!({"load_file": "saved.tar", "load_repository": "team/app", "load_tag": "1",
               "import_file": "rootfs.tar"}),
    );
    pushed(&out);
    assert_content_of(
        &registry,
        "put/prec-load:latest",
        &image,
        "load_file over import_file",
    );

    // build before load_file: not supported yet.
    let out = put(
        work.path(),
        &source_for(&registry, "put/prec-build"),
        json!({"build": ".", "load_file": "saved.tar", "load_repository": "team/app",
               "load_tag": "1"}),
    );
    assert!(out.expect_failure().contains("not supported yet: build"));
    assert_nothing_pushed(&registry, "put/prec-build", &out);
}

// ---- bad inputs ------------------------------------------------------------------------

#[test]
fn missing_source_files_name_the_param_and_the_path() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    fs::create_dir(work.path().join("empty-dir")).expect("mkdir");
    let source = source_for(&registry, "put/missing");
    for (params, param, path) in [
        (
            json!({"load_file": "missing/images.tar", "load_repository": "a", "load_tag": "b"}),
            "load_file",
            "missing/images.tar",
        ),
        (
            json!({"import_file": "missing/rootfs.tgz"}),
            "import_file",
            "missing/rootfs.tgz",
        ),
        (
            json!({"image": "missing/layout"}),
            "image",
            "missing/layout",
        ),
        (json!({"load": "missing/saved"}), "load", "missing/saved"),
        // A directory from `in` without `save`: no `image` in it.
        (json!({"load": "empty-dir"}), "load", "empty-dir"),
    ] {
        let out = put(work.path(), &source, params.clone());
        let err = out.expect_failure();
        assert!(
            err.contains(param) && err.contains(path),
            "{params}: the error should name {param} and {path}:\n{err}"
        );
        assert_nothing_pushed(&registry, "put/missing", &out);
    }
    assert_no_blobs(
        &registry,
        &put(work.path(), &source, json!({"image": "missing"})),
    );
}

#[test]
fn files_that_are_not_tarballs_are_clear_errors() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    // Random text: any 8 characters of it in an error were echoed from the file.
    let garbage: String = random_bytes(1500)
        .chunks(50)
        .map(|chunk| format!("{}\n", hex::encode(chunk)))
        .collect();
    write_file(work.path(), "garbage.tar", &garbage);
    write_file(
        work.path(),
        "garbage.tgz",
        gzip(b"gzip of text that is not a tar"),
    );
    let source = source_for(&registry, "put/garbage");
    for (params, name) in [
        (
            json!({"load_file": "garbage.tar", "load_repository": "a", "load_tag": "b"}),
            "garbage.tar",
        ),
        (json!({"import_file": "garbage.tar"}), "garbage.tar"),
        (json!({"import_file": "garbage.tgz"}), "garbage.tgz"),
        (json!({"image": "garbage.tar"}), "garbage.tar"),
    ] {
        let out = put(work.path(), &source, params.clone());
        let err = out.expect_failure();
        assert!(
            err.contains(name),
            "{params}: the error should name the file {name}:\n{err}"
        );
        assert!(
            !err.contains("panicked"),
            "{params}: a panic is not a clear error:\n{err}"
        );
        let echoed: Vec<&str> = garbage
            .lines()
            .flat_map(|line| (0..line.len().saturating_sub(8)).map(move |i| &line[i..i + 8]))
            .filter(|window| err.contains(window))
            .collect();
        assert!(
            echoed.is_empty(),
            "{params}: the error should describe the file, not echo its bytes ({echoed:?}):\n{err}"
        );
        assert_nothing_pushed(&registry, "put/garbage", &out);
        assert_no_blobs(&registry, &out);
    }
}

#[test]
fn oci_layout_without_an_image_fails() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    write_file(
        work.path(),
        "layout/oci-layout",
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    write_file(
        work.path(),
        "layout/index.json",
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
    );
    fs::create_dir_all(work.path().join("layout/blobs/sha256")).expect("mkdir");
    let out = put(
        work.path(),
        &source_for(&registry, "put/empty"),
        json!({"image": "layout"}),
    );
    let err = out.expect_failure();
    assert!(
        err.contains("layout"),
        "the error should name the layout:\n{err}"
    );
    assert_nothing_pushed(&registry, "put/empty", &out);
    assert_no_blobs(&registry, &out);
}

#[test]
fn corrupt_layer_in_a_layout_fails_naming_its_digest() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(2, 4096);
    let work = work_dir();
    copy_dir(image.path(), &work.path().join("layout"));
    let layer = image.layers[1].digest.clone();
    let path = work
        .path()
        .join("layout/blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut blob = fs::read(&path).expect("reading the layer");
    let middle = blob.len() / 2;
    for byte in &mut blob[middle..middle + 8] {
        *byte ^= 0xff;
    }
    fs::write(&path, &blob).expect("corrupting the layer");
    tar_dir(&work.path().join("layout"), &work.path().join("layout.tar"));

    for (repository, image_param) in [
        ("put/corrupt-dir", "layout"),
        ("put/corrupt-tar", "layout.tar"),
    ] {
        let out = put(
            work.path(),
            &source_for(&registry, repository),
            json!({ "image": image_param }),
        );
        let err = out.expect_failure();
        assert!(
            err.contains(&layer),
            "{image_param}: the error should name the corrupt layer {layer}:\n{err}"
        );
        assert_nothing_pushed(&registry, repository, &out);
        assert!(
            !crate::util::oracle::stored_blobs(&registry).contains(&layer),
            "the corrupt layer must not be stored"
        );
    }
}
