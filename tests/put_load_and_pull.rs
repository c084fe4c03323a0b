//! `out`'s D sources against real registries: `load` (a directory from `in` with `save`),
//! `load_file` (+ `load_repository` / `load_tag`, multi-image docker-save archives),
//! `import_file` (plain and gzip rootfs tarballs) and `pull_repository` (same registry:
//! every blob mounted, none downloaded; another registry: copied). Oracles as in
//! `put_sources.rs`.

use std::fs;
use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::get::{get, source_for};
use crate::put::{
    assert_nothing_pushed, assert_tags, blob_counts, pushed, put, work_dir, write_file, BlobCounts,
};
use crate::put_sources::{
    assert_content, assert_content_of, assert_gzip_layers, content_builder, content_image,
    docker_archive, gzip, tagged_source,
};
use crate::util::image::random_bytes;
use crate::util::oracle::tar_extract;
use crate::util::*;

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

/// Flips one byte in the middle of every `.tar.gz` member of the tarball at `path`,
/// keeping its size; returns how many members it changed.
fn corrupt_gzip_members(path: &Path) -> usize {
    let mut spots = Vec::new();
    let mut archive = tar::Archive::new(fs::File::open(path).expect("opening the tarball"));
    for entry in archive.entries().expect("reading the tarball") {
        let entry = entry.expect("tarball entry");
        let name = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".tar.gz") {
            spots.push(entry.raw_file_position() + entry.size() / 2);
        }
    }
    let mut bytes = fs::read(path).expect("reading the tarball");
    for spot in &spots {
        bytes[*spot as usize] ^= 0xff;
    }
    fs::write(path, bytes).expect("writing the tarball");
    spots.len()
}

#[test]
fn a_re_push_of_a_saved_image_reads_no_layer_the_registry_has() {
    let registry = Registry::start(RegistryConfig::new());
    let image = content_image(Compression::Gzip);
    push(&registry, &image, "put/origin:1.0");
    let digest = skopeo_raw_digest(&registry, "put/origin:1.0");
    let saved = get(
        &tagged_source(&registry, "put/origin", "1.0"),
        &digest,
        json!({"save": true}),
    );
    saved.response();
    let target = source_for(&registry, "put/again");
    let first = put(saved.tmp.path(), &target, json!({"load": "dest"}));
    let first_digest = pushed(&first).digest;
    let layers = image.layers.len() as u64;
    assert_eq!(blob_counts(&first), BlobCounts::new(layers + 1, 0, 0));

    // The layers' member names give their digests, and the registry has those blobs: a
    // re-push does not read them. Damaged layer bytes prove it: the re-push still gives
    // the same image, made of the registry's intact blobs.
    // (Another tag: under `latest` the config digest alone would show the image is there.)
    let image_file = saved.tmp.path().join("dest/image");
    assert_eq!(corrupt_gzip_members(&image_file) as u64, layers);
    let other_tag = tagged_source(&registry, "put/again", "other");
    let again = put(saved.tmp.path(), &other_tag, json!({"load": "dest"}));
    assert_eq!(pushed(&again).digest, first_digest);
    assert_eq!(blob_counts(&again), BlobCounts::new(0, layers + 1, 0));
    assert_content_of(&registry, "put/again:other", &image, "re-pushed");

    // Where the registry lacks them, the same layers are read, and the damage is found
    // before any tag is pushed.
    let out = put(
        saved.tmp.path(),
        &source_for(&registry, "put/elsewhere"),
        json!({"load": "dest"}),
    );
    let err = out.expect_failure();
    assert!(
        err.contains("layer ") && err.contains("dest/image"),
        "{err}"
    );
    assert_nothing_pushed(&registry, "put/elsewhere", &out);
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
