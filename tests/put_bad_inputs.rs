//! `out` with bad inputs: missing files, files that are not tarballs, a layout without an
//! image, a corrupt layer. Each fails clearly, naming what is wrong, with nothing pushed.

use std::fs;

use serde_json::json;

use crate::get::source_for;
use crate::put::{assert_no_blobs, assert_nothing_pushed, copy_dir, put, work_dir, write_file};
use crate::put_sources::{gzip, tar_dir};
use crate::util::image::random_bytes;
use crate::util::*;

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
