use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;

use serde_json::{json, Value};

use super::super::test_support::{make_image, make_layer, run, Compression};
use super::*;
use crate::image::model::{Image, REF_NAME_ANNOTATION};

/// A layout of one image, named `latest`; returns the image and the layout path.
fn single_layout(dir: &Path, ref_name: Option<&str>) -> Result<(Image, PathBuf)> {
    let layers = [
        make_layer(dir, &[("hello.txt", b"hello\n")], Compression::Gzip)?,
        make_layer(dir, &[("etc/plain", b"plain\n")], Compression::None)?,
    ];
    let image = make_image(dir, "amd64", &layers)?;
    let manifest = write_bytes_blob(dir, &image.manifest.raw, &image.manifest.media_type)?;
    assert_eq!(manifest.digest, image.manifest.digest);
    let spec = OciIndexSpec {
        manifests: vec![Descriptor::new(
            manifest.media_type.clone(),
            manifest.digest.clone(),
            manifest.size,
        )
        .with_ref_name(ref_name.map(str::to_string))],
    };
    let mut blobs = vec![manifest, image.config.clone()];
    blobs.extend(image.layers.iter().cloned());
    let layout = dir.join("oci");
    write_oci_layout(&layout, &spec, &blobs)?;
    Ok((image, layout))
}

#[test]
fn single_image_layout_works_with_skopeo_and_umoci() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (image, layout) = single_layout(dir.path(), Some("latest"))?;
    assert!(!dir.path().join("oci.tmp").exists());

    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    let want = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": image.manifest.digest,
            "size": image.manifest.raw.len(),
            "annotations": {REF_NAME_ANNOTATION: "latest"},
        }],
    });
    assert_eq!(index, want);
    // R's marker: the manifest digest, no newline.
    assert_eq!(
        fs::read_to_string(layout.join(SINGLE_IMAGE_DIGEST_FILE))?,
        image.manifest.digest
    );
    let read = read_oci_layout(&layout)?;
    assert_eq!(
        read.single_image_digest()?.as_ref().map(|d| d.as_str()),
        Some(image.manifest.digest.as_str())
    );

    let inspect: Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("oci:{}:latest", layout.display())],
    )?)?;
    let layer_digests: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
    assert_eq!(inspect["Layers"], json!(layer_digests));
    assert_eq!(inspect["Digest"], json!(image.manifest.digest));

    let bundle = dir.path().join("bundle");
    run(
        "umoci",
        &[
            OsStr::new("unpack"),
            OsStr::new("--image"),
            format!("{}:latest", layout.display()).as_ref(),
            bundle.as_os_str(),
        ],
    )?;
    assert_eq!(fs::read(bundle.join("rootfs/hello.txt"))?, b"hello\n");
    assert_eq!(fs::read(bundle.join("rootfs/etc/plain"))?, b"plain\n");

    // Same filesystem: the layer blob is the downloaded file, linked.
    let hex = image.layers[0].digest.hex();
    let linked = fs::metadata(layout.join("blobs/sha256").join(hex))?;
    assert_eq!(linked.ino(), fs::metadata(image.layers[0].path()?)?.ino());
    Ok(())
}

#[test]
fn index_layout_matches_skopeo_copy_all() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let shared = make_layer(dir.path(), &[("shared", b"both\n")], Compression::Gzip)?;
    let arm = make_layer(dir.path(), &[("arch", b"arm64\n")], Compression::Zstd)?;
    let amd = make_layer(dir.path(), &[("arch", b"amd64\n")], Compression::Gzip)?;
    let images = [
        (
            "amd64",
            make_image(dir.path(), "amd64", &[shared.clone(), amd])?,
        ),
        ("arm64", make_image(dir.path(), "arm64", &[shared, arm])?),
    ];
    let mut blobs = Vec::new();
    let mut entries = Vec::new();
    for (arch, image) in &images {
        let manifest =
            write_bytes_blob(dir.path(), &image.manifest.raw, &image.manifest.media_type)?;
        entries.push(json!({
            "mediaType": manifest.media_type, "digest": manifest.digest, "size": manifest.size,
            "platform": {"architecture": arch, "os": "linux"},
        }));
        blobs.push(manifest);
        blobs.push(image.config.clone());
        blobs.extend(image.layers.iter().cloned());
    }
    let index_bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX_MEDIA_TYPE, "manifests": entries,
    }))?;
    let index_blob = write_bytes_blob(dir.path(), &index_bytes, OCI_INDEX_MEDIA_TYPE)?;
    let spec = OciIndexSpec {
        manifests: vec![Descriptor::new(
            OCI_INDEX_MEDIA_TYPE,
            index_blob.digest.clone(),
            index_blob.size,
        )
        .with_ref_name(Some("1.0".into()))],
    };
    blobs.push(index_blob.clone());
    let layout = dir.path().join("oci");
    write_oci_layout(&layout, &spec, &blobs)?; // the shared layer is listed twice

    let inspect: Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("oci:{}:1.0", layout.display())],
    )?)?;
    assert_eq!(inspect["Architecture"], "amd64");
    let other = dir.path().join("other");
    run(
        "skopeo",
        &[
            "copy".to_string(),
            "--all".to_string(),
            format!("oci:{}:1.0", layout.display()),
            format!("oci:{}:1.0", other.display()),
        ],
    )?;
    // skopeo keeps the index byte for byte and lists it just as we do, except that it
    // leaves out index.json's own mediaType.
    let mut ours: Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    let theirs: Value = serde_json::from_slice(&fs::read(other.join("index.json"))?)?;
    if let Some(top) = ours.as_object_mut() {
        top.remove("mediaType");
    }
    assert_eq!(ours, theirs);
    let copied = read_oci_layout(&other)?;
    assert_eq!(copied.read_blob(&index_blob.digest)?, index_bytes);

    // Our reader, on our layout; no single-image marker for an index.
    assert!(!layout.join(SINGLE_IMAGE_DIGEST_FILE).exists());
    let read = read_oci_layout(&layout)?;
    assert_eq!(read.single_image_digest()?, None);
    assert_eq!(read.manifests(), spec.manifests.as_slice());
    assert_eq!(read.select(Some("1.0"))?.digest, index_blob.digest);
    assert_eq!(read.select(None)?.digest, index_blob.digest);
    let err = format!("{:#}", read.select(Some("2.0")).err().context("found 2.0")?);
    assert!(err.contains("no image named 2.0; it has 1.0"), "{err}");
    for blob in &blobs {
        assert_eq!(
            fs::read(read.blob_path(&blob.digest)?)?,
            fs::read(blob.path()?)?
        );
    }
    Ok(())
}

#[test]
fn layout_without_ref_name_is_read_by_skopeo() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (image, layout) = single_layout(dir.path(), None)?;
    let inspect: Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("oci:{}", layout.display())],
    )?)?;
    assert_eq!(inspect["Digest"], json!(image.manifest.digest));
    let read = read_oci_layout(&layout)?;
    assert_eq!(read.select(None)?.ref_name(), None);
    assert_eq!(read.read_blob(&image.manifest.digest)?, image.manifest.raw);
    Ok(())
}

#[test]
fn missing_blobs_are_named() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (image, layout) = single_layout(dir.path(), Some("latest"))?;
    let read = read_oci_layout(&layout)?;
    let layer_path = read.blob_path(&image.layers[1].digest)?;
    fs::remove_file(&layer_path)?;
    let err = format!(
        "{:#}",
        read.blob_path(&image.layers[1].digest)
            .err()
            .context("found it")?
    );
    assert!(
        err.contains(&format!("missing blob {}", image.layers[1].digest)),
        "{err}"
    );

    fs::remove_file(read.blob_path(&image.manifest.digest)?)?;
    let err = format!(
        "{:#}",
        read_oci_layout(&layout)
            .err()
            .context("read a broken layout")?
    );
    assert!(
        err.contains(&format!("missing blob {}", image.manifest.digest)),
        "{err}"
    );
    Ok(())
}

#[test]
fn corrupt_small_blob_is_detected() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (image, layout) = single_layout(dir.path(), Some("latest"))?;
    let read = read_oci_layout(&layout)?;
    let config_path = read.blob_path(&image.config.digest)?;
    fs::remove_file(&config_path)?; // it is a hard link: do not change the original
    fs::write(&config_path, b"{}")?;
    assert!(read.read_blob(&image.config.digest).is_err());
    Ok(())
}

#[test]
fn index_must_list_given_blobs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let blob = write_bytes_blob(dir.path(), b"{}", "application/json")?;
    let spec = |digest: &Digest, size| OciIndexSpec {
        manifests: vec![Descriptor::new(
            "application/vnd.oci.image.manifest.v1+json",
            digest.clone(),
            size,
        )],
    };
    let layout = dir.path().join("oci");
    let other = Digest::parse(&format!("sha256:{}", "0".repeat(64)))?;
    let err = format!(
        "{:#}",
        write_oci_layout(&layout, &spec(&other, 2), std::slice::from_ref(&blob))
            .err()
            .context("wrote")?
    );
    assert!(err.contains(&format!("would list {other}")), "{err}");
    assert!(
        write_oci_layout(&layout, &spec(&blob.digest, 3), std::slice::from_ref(&blob)).is_err()
    );
    assert!(!layout.exists() && !dir.path().join("oci.tmp").exists());

    fs::create_dir(dir.path().join("oci.tmp"))?;
    let err = format!(
        "{:#}",
        write_oci_layout(&layout, &spec(&blob.digest, 2), &[blob])
            .err()
            .context("wrote")?
    );
    assert!(err.contains("already exists"), "{err}");
    Ok(())
}

#[test]
fn blobs_behind_symlinks_are_copied() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut blob = write_bytes_blob(dir.path(), b"config", "application/json")?;
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(blob.path()?, &link)?;
    blob.source = crate::push::BlobSource::File(link);
    let root = dir.path().join("root");
    fs::create_dir(&root)?;
    place_blob(&root, &blob)?;
    let hex = blob.digest.hex();
    let placed = root.join("blobs/sha256").join(hex);
    assert!(fs::symlink_metadata(&placed)?.is_file());
    assert_eq!(fs::read(&placed)?, b"config");

    // And a plain copy, as when the layout is on another filesystem.
    let dest = dir.path().join("copy");
    copy_blob(&blob, &dest)?;
    assert_eq!(fs::read(&dest)?, b"config");
    Ok(())
}
