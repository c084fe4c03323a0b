use std::ffi::OsStr;

use serde_json::Value;

use super::super::test_support::{
    expect_err, gunzip_digest, index_layout, layout_of, layout_of_pushable, oci_latest,
    skopeo_diff_ids,
};
use super::*;
use crate::image::archive::test_support::{
    make_image, make_layer, run, sha256_digest, sha256_file, Compression as Fixture, Layer,
};
use crate::image::manifest::{OCI_INDEX, OCI_MANIFEST};
use crate::image::sources::from_oci_layout;

const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Three layers: gzip, zstd (or, for skopeo's docker-archive, which refuses zstd, gzip)
/// and plain (or gzip).
fn layers(dir: &Path, plain: bool) -> Result<Vec<Layer>> {
    let second = if plain { Fixture::Gzip } else { Fixture::Zstd };
    Ok(vec![
        make_layer(dir, &[("a", b"gzip\n")], Fixture::Gzip)?,
        make_layer(dir, &[("b", b"second\n")], second)?,
        make_layer(
            dir,
            &[("c", b"plain\n")],
            if plain { Fixture::None } else { Fixture::Gzip },
        )?,
    ])
}

fn only_image(pushable: Pushable) -> Result<LocalImage> {
    match pushable {
        Pushable::Image(image) => Ok(image),
        Pushable::Index { .. } => bail!("got an index"),
    }
}

#[test]
fn compressed_layout_keeps_its_manifest_bytes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let source = make_image(dir.path(), "amd64", &layers(dir.path(), false)?)?;
    let layout = layout_of(dir.path(), &source)?;
    let scratch = tempfile::tempdir()?;
    let image = only_image(from_oci_layout(&layout, None, scratch.path())?)?;
    assert_eq!(image.manifest, source.manifest);
    assert_eq!(image.manifest_digest, source.manifest_digest);
    assert_eq!(image.manifest_media_type, OCI_MANIFEST);
    assert_eq!(image.config.digest, source.config.digest);
    for (ours, theirs) in image.layers.iter().zip(&source.layers) {
        assert_eq!(ours.digest, theirs.digest);
        assert_eq!(ours.media_type, theirs.media_type);
        // Referenced in the layout, not copied.
        assert!(ours.path.starts_with(&layout), "{}", ours.path.display());
    }
    assert_eq!(fs::read_dir(scratch.path())?.count(), 0);
    Ok(())
}

#[test]
fn uncompressed_layers_are_compressed_and_the_manifest_rebuilt() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let fixture = layers(dir.path(), true)?;
    let diff_ids: Vec<String> = fixture.iter().map(|l| l.diff_id.clone()).collect();
    let source = make_image(dir.path(), "amd64", &fixture)?;
    let layout = layout_of(dir.path(), &source)?;
    let scratch = tempfile::tempdir()?;
    let image = only_image(from_oci_layout(&layout, Some("latest"), scratch.path())?)?;
    assert_ne!(image.manifest_digest, source.manifest_digest);
    assert_eq!(image.manifest_digest, sha256_digest(&image.manifest));
    assert_eq!(image.config, {
        let mut config = source.config.clone();
        config.path = layout.join("blobs/sha256").join(&config.digest[7..]);
        config
    });
    assert_eq!(image.layers[0].digest, source.layers[0].digest);
    assert_eq!(image.layers[1].digest, source.layers[1].digest);
    let compressed = &image.layers[2];
    assert_eq!(compressed.media_type, OCI_GZIP);
    assert!(compressed.path.starts_with(scratch.path()));
    assert_eq!(sha256_file(&compressed.path)?, compressed.digest);
    assert_eq!(gunzip_digest(&compressed.path)?, diff_ids[2]);

    let manifest: Value = serde_json::from_slice(&image.manifest)?;
    assert_eq!(manifest["layers"][2]["mediaType"], OCI_GZIP);
    assert_eq!(manifest["layers"][2]["digest"], compressed.digest.as_str());
    assert_eq!(manifest["layers"][2]["size"], compressed.size);
    assert_eq!(manifest["config"]["digest"], source.config.digest.as_str());

    // The same input gives the same manifest.
    let again = only_image(from_oci_layout(&layout, None, scratch.path())?)?;
    assert_eq!(again.manifest, image.manifest);

    // Go (skopeo) reads the result and finds the config's diff IDs.
    let back = layout_of(dir.path(), &image)?;
    assert_eq!(skopeo_diff_ids(&oci_latest(&back), "amd64")?, diff_ids);
    Ok(())
}

#[test]
fn skopeo_layout_with_plain_layers() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let fixture = layers(dir.path(), true)?;
    let diff_ids: Vec<String> = fixture.iter().map(|l| l.diff_id.clone()).collect();
    let source = make_image(dir.path(), "amd64", &fixture)?;
    let ours = layout_of(dir.path(), &source)?;
    // docker-archive stores plain layers; skopeo copies them to OCI as they are.
    let archive = dir.path().join("a.tar");
    let theirs = dir.path().join("theirs");
    run(
        "skopeo",
        &[
            "copy".to_string(),
            format!("oci:{}:latest", ours.display()),
            format!("docker-archive:{}:a:1", archive.display()),
        ],
    )?;
    run(
        "skopeo",
        &[
            "copy".to_string(),
            format!("docker-archive:{}", archive.display()),
            format!("oci:{}:v1", theirs.display()),
        ],
    )?;
    let scratch = tempfile::tempdir()?;
    let image = only_image(from_oci_layout(&theirs, Some("v1"), scratch.path())?)?;
    assert!(image.layers.iter().all(|l| l.media_type == OCI_GZIP));
    for (layer, diff_id) in image.layers.iter().zip(&diff_ids) {
        assert_eq!(&gunzip_digest(&layer.path)?, diff_id);
    }
    let bundle = dir.path().join("bundle");
    let back = layout_of(dir.path(), &image)?;
    run(
        "umoci",
        &[
            OsStr::new("unpack"),
            OsStr::new("--image"),
            format!("{}:latest", back.display()).as_ref(),
            bundle.as_os_str(),
        ],
    )?;
    assert_eq!(fs::read(bundle.join("rootfs/c"))?, b"plain\n");
    Ok(())
}

/// Two platforms sharing a layer; the arm64 one has an uncompressed layer when `plain`.
fn two_platforms(dir: &Path, plain: bool) -> Result<(LocalImage, LocalImage)> {
    let shared = make_layer(dir, &[("shared", b"both\n")], Fixture::Gzip)?;
    let amd = make_layer(dir, &[("arch", b"amd64\n")], Fixture::Gzip)?;
    let arm = make_layer(
        dir,
        &[("arch", b"arm64\n")],
        if plain { Fixture::None } else { Fixture::Zstd },
    )?;
    Ok((
        make_image(dir, "amd64", &[shared.clone(), amd])?,
        make_image(dir, "arm64", &[shared, arm])?,
    ))
}

#[test]
fn index_of_two_platforms() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (amd, arm) = two_platforms(dir.path(), false)?;
    let (layout, raw) = index_layout(dir.path(), &[("amd64", &amd), ("arm64", &arm)], "1.0")?;
    let scratch = tempfile::tempdir()?;
    let Pushable::Index {
        raw: got,
        digest,
        media_type,
        images,
    } = from_oci_layout(&layout, Some("1.0"), scratch.path())?
    else {
        bail!("not an index");
    };
    assert_eq!(got, raw);
    assert_eq!(digest, sha256_digest(&raw));
    assert_eq!(media_type, OCI_INDEX);
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].manifest, amd.manifest);
    assert_eq!(images[1].manifest, arm.manifest);
    Ok(())
}

#[test]
fn index_is_rebuilt_when_a_child_is() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (amd, arm) = two_platforms(dir.path(), true)?;
    let (layout, raw) = index_layout(dir.path(), &[("amd64", &amd), ("arm64", &arm)], "latest")?;
    let scratch = tempfile::tempdir()?;
    let pushable = from_oci_layout(&layout, None, scratch.path())?;
    let Pushable::Index {
        raw: got,
        digest,
        images,
        ..
    } = &pushable
    else {
        bail!("not an index");
    };
    assert_ne!(got, &raw);
    assert_eq!(digest, &sha256_digest(got));
    assert_eq!(images[0].manifest, amd.manifest); // untouched
    assert_ne!(images[1].manifest_digest, arm.manifest_digest);
    assert_eq!(images[1].layers[1].media_type, OCI_GZIP);

    let index: Value = serde_json::from_slice(got)?;
    let entries = index["manifests"].as_array().context("no manifests")?;
    for (entry, image) in entries.iter().zip(images) {
        assert_eq!(entry["digest"], image.manifest_digest.as_str());
        assert_eq!(entry["size"], image.manifest.len());
    }
    assert_eq!(entries[1]["platform"]["architecture"], "arm64");

    // skopeo picks the arm64 child out of the index and reads its layers.
    let back = layout_of_pushable(dir.path(), &pushable)?;
    let inspect: Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "--override-arch=arm64".to_string(),
            "inspect".to_string(),
            format!("oci:{}:latest", back.display()),
        ],
    )?)?;
    assert_eq!(inspect["Digest"], digest.as_str());
    assert_eq!(inspect["Architecture"], "arm64");
    let arm_diff_ids = serde_json::from_slice::<Value>(&fs::read(&images[1].config.path)?)?;
    assert_eq!(
        serde_json::to_value(skopeo_diff_ids(&oci_latest(&back), "arm64")?)?,
        arm_diff_ids["rootfs"]["diff_ids"]
    );
    Ok(())
}

#[test]
fn entries_are_chosen_by_ref_name() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (amd, arm) = two_platforms(dir.path(), false)?;
    let layout = layout_of(dir.path(), &amd)?;
    // A second entry, named "arm".
    let other = layout_of(dir.path(), &arm)?;
    let mut index: Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    let mut second: Value = serde_json::from_slice(&fs::read(other.join("index.json"))?)?;
    second["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "arm".into();
    if let Some(list) = index["manifests"].as_array_mut() {
        list.push(second["manifests"][0].clone());
    }
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    for entry in fs::read_dir(other.join("blobs/sha256"))? {
        let entry = entry?;
        let dest = layout.join("blobs/sha256").join(entry.file_name());
        if !dest.exists() {
            fs::copy(entry.path(), dest)?;
        }
    }
    let scratch = tempfile::tempdir()?;
    let image = only_image(from_oci_layout(&layout, Some("arm"), scratch.path())?)?;
    assert_eq!(image.manifest_digest, arm.manifest_digest);
    let err = expect_err(from_oci_layout(&layout, None, scratch.path()))?;
    assert!(err.contains("latest, arm"), "{err}");
    let err = expect_err(from_oci_layout(&layout, Some("x"), scratch.path()))?;
    assert!(err.contains("no image named x"), "{err}");
    Ok(())
}

#[test]
fn nested_index_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (amd, arm) = two_platforms(dir.path(), false)?;
    let (inner, inner_raw) = index_layout(dir.path(), &[("amd64", &amd), ("arm64", &arm)], "i")?;
    // An outer index listing the inner one.
    let outer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": sha256_digest(&inner_raw),
                       "size": inner_raw.len()}],
    }))?;
    let outer_digest = sha256_digest(&outer);
    fs::write(inner.join("blobs/sha256").join(&outer_digest[7..]), &outer)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_INDEX, "digest": outer_digest, "size": outer.len()}],
    });
    fs::write(inner.join("index.json"), serde_json::to_vec(&index)?)?;
    let scratch = tempfile::tempdir()?;
    let err = expect_err(from_oci_layout(&inner, None, scratch.path()))?;
    assert!(err.contains("nested indexes are not supported"), "{err}");
    assert!(err.contains(&sha256_digest(&inner_raw)), "{err}");
    Ok(())
}

#[test]
fn corrupt_and_missing_blobs_are_named() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for plain in [false, true] {
        let source = make_image(dir.path(), "amd64", &layers(dir.path(), plain)?)?;
        let layout = layout_of(dir.path(), &source)?;
        let victim = &source.layers[2];
        let path = layout.join("blobs/sha256").join(&victim.digest[7..]);
        let mut bytes = fs::read(&path)?;
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::remove_file(&path)?; // a hard link to the fixture: do not change that
        fs::write(&path, &bytes)?;
        let scratch = tempfile::tempdir()?;
        let err = expect_err(from_oci_layout(&layout, None, scratch.path()))?;
        assert!(
            err.contains(&format!("blob {}", victim.digest))
                && err.contains("does not match its descriptor"),
            "{err}"
        );
        assert_eq!(fs::read_dir(scratch.path())?.count(), 0, "left in scratch");

        fs::remove_file(&path)?;
        let err = expect_err(from_oci_layout(&layout, None, scratch.path()))?;
        assert!(
            err.contains(&format!("missing blob {}", victim.digest)),
            "{err}"
        );
    }
    Ok(())
}

#[test]
fn mislabelled_layer_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut fixture = layers(dir.path(), false)?;
    fixture[0].blob.media_type = OCI_TAR.to_string(); // it is gzip
    let source = make_image(dir.path(), "amd64", &fixture)?;
    let layout = layout_of(dir.path(), &source)?;
    let scratch = tempfile::tempdir()?;
    let err = expect_err(from_oci_layout(&layout, None, scratch.path()))?;
    assert!(err.contains(&fixture[0].blob.digest), "{err}");
    Ok(())
}

#[test]
fn blob_names() {
    let hex = "a".repeat(64);
    assert_eq!(
        blob_digest(&format!("blobs/sha256/{hex}")),
        Some(format!("sha256:{hex}"))
    );
    for bad in [
        format!("blobs/sha256/{}", "A".repeat(64)),
        format!("blobs/md5/{hex}"),
        format!("blobs/sha256/{hex}/x"),
        "blobs/sha256/..".to_string(),
        "index.json".to_string(),
    ] {
        assert_eq!(blob_digest(&bad), None, "{bad}");
    }
    assert_eq!(
        crate::image::archive::clean_name("./blobs//sha256/../sha256/x"),
        "blobs/sha256/x"
    );
}
