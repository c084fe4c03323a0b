//! Which image source `out` takes: none given lists every kind, and several follow D's
//! precedence. Building itself is in `build.rs`.

use serde_json::json;

use crate::get::source_for;
use crate::put::{assert_nothing_pushed, pushed, put, work_dir, write_file};
use crate::put_sources::{assert_content_of, docker_archive, pushed_manifest};
use crate::util::oracle::pulled_rootfs;
use crate::util::*;

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

    // build before load_file.
    write_file(
        work.path(),
        "Dockerfile",
        "FROM scratch\nCOPY built.txt /built.txt\n",
    );
    write_file(work.path(), "built.txt", "from build");
    let out = put(
        work.path(),
        &source_for(&registry, "put/prec-build"),
        json!({"build": ".", "load_file": "saved.tar", "load_repository": "team/app",
               "load_tag": "1"}),
    );
    pushed(&out);
    let work_pulled = tempfile::TempDir::new().expect("temp dir");
    let rootfs = pulled_rootfs(&registry, "put/prec-build:latest", work_pulled.path(), "b");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("built.txt"))
            .ok()
            .as_deref(),
        Some("from build"),
        "build should win over load_file"
    );
}
