use std::fs;

use serde_json::json;

use super::super::test_support::{docker_save, expect_err, index_layout, layout_of, plain_layer};
use super::*;
use crate::image::archive::test_support::{
    make_image, make_layer, sha256_digest, write_blob, Compression, Layer,
};
use crate::image::manifest::OCI_MANIFEST;

/// An OCI image over `layers` whose config is `config` with the layers' diff_ids added.
fn image_with_config(dir: &Path, mut config: Value, layers: &[Layer]) -> Result<Image> {
    config["rootfs"] = json!({
        "type": "layers",
        "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>(),
    });
    let config = write_blob(
        dir,
        &serde_json::to_vec(&config)?,
        "application/vnd.oci.image.config.v1+json",
    )?;
    let descriptor = |b: &crate::image::model::Blob| json!({"mediaType": b.media_type, "digest": b.digest, "size": b.size});
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(&config),
        "layers": layers.iter().map(|l| descriptor(&l.blob)).collect::<Vec<_>>(),
    }))?;
    Ok(Image {
        manifest: Manifest::sha256(manifest, OCI_MANIFEST),
        config,
        layers: layers.iter().map(|l| l.blob.clone()).collect(),
    })
}

/// A tar of the directory `layout` (its contents at the root): an OCI tarball.
fn tar_dir(layout: &Path, out: &Path) -> Result<()> {
    let mut tar = tar::Builder::new(File::create(out)?);
    tar.append_dir_all(".", layout)?;
    tar.into_inner()?;
    Ok(())
}

fn strings(patterns: &[&str]) -> Vec<String> {
    patterns.iter().map(|p| p.to_string()).collect()
}

#[test]
fn index_lists_each_input_with_its_configs_platform_in_the_order_given() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let base = dir.path().join("inputs");
    fs::create_dir_all(base.join("more"))?;
    // amd64: a docker-save tarball (its config says linux/amd64).
    docker_save(
        &base.join("amd64.tar"),
        &[(&["app:amd64"], vec![plain_layer(&[("arch", b"amd64")])?])],
    )?;
    // arm64: an OCI layout directory; arm/v7 with os.version and os.features: an OCI
    // tarball. The glob sorts "a-arm.tar" before "b-arm64".
    let layer = make_layer(dir.path(), &[("f", b"x\n")], Compression::Gzip)?;
    let arm64 = make_image(dir.path(), "arm64", std::slice::from_ref(&layer))?;
    let arm64_layout = layout_of(dir.path(), &arm64)?;
    fs::rename(&arm64_layout, base.join("more/b-arm64"))?;
    let arm = image_with_config(
        dir.path(),
        json!({"architecture": "arm", "os": "linux", "variant": "v7",
               "os.version": "1.0", "os.features": ["f1"]}),
        &[layer],
    )?;
    tar_dir(&layout_of(dir.path(), &arm)?, &base.join("more/a-arm.tar"))?;

    let scratch = tempfile::tempdir()?;
    let patterns = strings(&["amd64.tar", "more/*"]);
    let ImageOrIndex::Index { index, images } = assemble(&base, &patterns, scratch.path())? else {
        bail!("expected an index");
    };
    let Manifest {
        raw,
        digest,
        media_type,
    } = index;
    assert_eq!(media_type, OCI_INDEX);
    assert_eq!(digest.as_str(), sha256_digest(&raw));
    assert_eq!(images.len(), 3);
    assert_eq!(images[1].manifest.digest, arm.manifest.digest);
    assert_eq!(images[2].manifest.digest, arm64.manifest.digest);
    let entry = |image: &Image, platform: &str| {
        format!(
            r#"{{"mediaType":"{}","digest":"{}","size":{},"platform":{platform}}}"#,
            image.manifest.media_type,
            image.manifest.digest,
            image.manifest.raw.len()
        )
    };
    let expected = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{},{},{}]}}"#,
        entry(&images[0], r#"{"architecture":"amd64","os":"linux"}"#),
        entry(
            &images[1],
            r#"{"architecture":"arm","os":"linux","os.features":["f1"],"os.version":"1.0","variant":"v7"}"#
        ),
        entry(&images[2], r#"{"architecture":"arm64","os":"linux"}"#),
    );
    assert_eq!(String::from_utf8(raw.clone())?, expected);
    assert_eq!(
        images[0].manifest.media_type,
        crate::image::manifest::DOCKER_MANIFEST
    );

    // The same inputs give the same bytes; another order, another index.
    let again = tempfile::tempdir()?;
    assert_eq!(assemble(&base, &patterns, again.path())?.digest(), &digest);
    let reordered = strings(&["more/*", "amd64.tar"]);
    let other = assemble(&base, &reordered, again.path())?;
    assert_ne!(other.digest(), &digest);
    assert_eq!(other.images()[2].manifest.digest, images[0].manifest.digest);
    Ok(())
}

#[test]
fn two_images_for_one_platform_name_both_files() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let scratch = tempfile::tempdir()?;
    for name in ["one.tar", "two.tar"] {
        docker_save(
            &dir.path().join(name),
            &[(&[name], vec![plain_layer(&[("f", name.as_bytes())])?])],
        )?;
    }
    let err = expect_err(assemble(
        dir.path(),
        &strings(&["one.tar", "two.tar"]),
        scratch.path(),
    ))?;
    assert!(
        err.contains(&format!(
            "{} and {} are both linux/amd64 images",
            dir.path().join("one.tar").display(),
            dir.path().join("two.tar").display()
        )),
        "{err}"
    );

    // arm64 without a variant is arm64/v8.
    let layer = make_layer(dir.path(), &[("f", b"x\n")], Compression::Gzip)?;
    let plain = make_image(dir.path(), "arm64", std::slice::from_ref(&layer))?;
    let v8 = image_with_config(
        dir.path(),
        json!({"architecture": "arm64", "os": "linux", "variant": "v8"}),
        &[layer],
    )?;
    fs::rename(layout_of(dir.path(), &plain)?, dir.path().join("arm64"))?;
    fs::rename(layout_of(dir.path(), &v8)?, dir.path().join("arm64-v8"))?;
    let err = expect_err(assemble(dir.path(), &strings(&["arm64*"]), scratch.path()))?;
    assert!(err.contains("are both linux/arm64/v8 images"), "{err}");
    Ok(())
}

#[test]
fn platform_keys_follow_containerds_defaults() {
    let key = |v: Value| platform_key(&v);
    let arm64 = key(json!({"os": "linux", "architecture": "arm64"}));
    assert_eq!(
        arm64,
        key(json!({"os": "linux", "architecture": "arm64", "variant": "v8"}))
    );
    assert_eq!(
        key(json!({"os": "linux", "architecture": "arm"})),
        key(json!({"os": "linux", "architecture": "arm", "variant": "v7"}))
    );
    assert_ne!(
        key(json!({"os": "linux", "architecture": "arm", "variant": "v6"})),
        key(json!({"os": "linux", "architecture": "arm", "variant": "v7"}))
    );
    assert_ne!(
        key(json!({"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"})),
        key(json!({"os": "windows", "architecture": "amd64", "os.version": "10.0.20348.1"}))
    );
    assert_ne!(arm64, key(json!({"os": "linux", "architecture": "amd64"})));
}

#[test]
fn bad_inputs_are_named() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let scratch = tempfile::tempdir()?;
    docker_save(
        &dir.path().join("one.tar"),
        &[(&["x:1"], vec![plain_layer(&[("f", b"x")])?])],
    )?;
    let err = expect_err(assemble(
        dir.path(),
        &strings(&["one.tar", "builds/*.tar"]),
        scratch.path(),
    ))?;
    assert!(
        err.contains(r#"images[1] "builds/*.tar": it matches nothing"#),
        "{err}"
    );
    assert!(expect_err(assemble(dir.path(), &[], scratch.path()))?.contains("lists no images"));
    let err = expect_err(assemble(
        dir.path(),
        &strings(&["one.tar", "o*"]),
        scratch.path(),
    ))?;
    assert!(
        err.contains(r#"images[1] "o*": it matches "#)
            && err.contains(r#"one.tar, which images[0] "one.tar" matched already"#),
        "{err}"
    );

    // An input holding an index of several images.
    let layer = make_layer(dir.path(), &[("f", b"x\n")], Compression::Gzip)?;
    let amd64 = make_image(dir.path(), "amd64", std::slice::from_ref(&layer))?;
    let arm64 = make_image(dir.path(), "arm64", std::slice::from_ref(&layer))?;
    let (layout, _) = index_layout(
        dir.path(),
        &[("amd64", &amd64), ("arm64", &arm64)],
        "latest",
    )?;
    let err = expect_err(assemble(
        dir.path(),
        &[layout.display().to_string()],
        scratch.path(),
    ))?;
    assert!(
        err.contains(&layout.display().to_string()) && err.contains("holds an index of 2 images"),
        "{err}"
    );

    // A config without a platform.
    let bare = image_with_config(dir.path(), json!({"config": {}}), &[layer])?;
    let layout = layout_of(dir.path(), &bare)?;
    let err = expect_err(assemble(
        dir.path(),
        &[layout.display().to_string()],
        scratch.path(),
    ))?;
    assert!(err.contains("names no os and architecture"), "{err}");
    Ok(())
}
