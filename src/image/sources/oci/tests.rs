use std::ffi::OsStr;

use serde_json::Value;

use super::super::test_support::{
    expect_err, gunzip_digest, index_bytes, index_layout, layout_of, layout_of_pushable,
    oci_latest, skopeo_diff_ids,
};
use super::*;
use crate::image::archive::test_support::{
    make_image, make_layer, run, sha256_digest, sha256_file, Compression as Fixture, Layer,
};
use crate::image::manifest::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::image::sources::from_oci_layout;
use crate::push::BlobSource;

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

fn only_image(pushable: ImageOrIndex) -> Result<Image> {
    match pushable {
        ImageOrIndex::Image(image) => Ok(image),
        ImageOrIndex::Index { .. } => bail!("got an index"),
    }
}

#[test]
fn compressed_layout_keeps_its_manifest_bytes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let source = make_image(dir.path(), "amd64", &layers(dir.path(), false)?)?;
    let layout = layout_of(dir.path(), &source)?;
    let scratch = tempfile::tempdir()?;
    let image = only_image(from_oci_layout(&layout, None, scratch.path())?)?;
    assert_eq!(image.manifest.raw, source.manifest.raw);
    assert_eq!(image.manifest.digest, source.manifest.digest);
    assert_eq!(image.manifest.media_type, OCI_MANIFEST);
    assert_eq!(image.config.digest, source.config.digest);
    for (ours, theirs) in image.layers.iter().zip(&source.layers) {
        assert_eq!(ours.digest, theirs.digest);
        assert_eq!(ours.media_type, theirs.media_type);
        // Referenced in the layout, not copied.
        assert!(
            ours.path()?.starts_with(&layout),
            "{}",
            ours.source.describe()
        );
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
    assert_ne!(image.manifest.digest, source.manifest.digest);
    assert_eq!(image.manifest.digest, sha256_digest(&image.manifest.raw));
    assert_eq!(image.config, {
        let mut config = source.config.clone();
        config.source = BlobSource::File(config.digest.layout_path(&layout));
        config
    });
    assert_eq!(image.layers[0].digest, source.layers[0].digest);
    assert_eq!(image.layers[1].digest, source.layers[1].digest);
    let compressed = &image.layers[2];
    assert_eq!(compressed.media_type, OCI_GZIP);
    assert!(compressed.path()?.starts_with(scratch.path()));
    assert_eq!(sha256_file(compressed.path()?)?, compressed.digest);
    assert_eq!(gunzip_digest(compressed.path()?)?, diff_ids[2]);

    let manifest: Value = serde_json::from_slice(&image.manifest.raw)?;
    assert_eq!(manifest["layers"][2]["mediaType"], OCI_GZIP);
    assert_eq!(manifest["layers"][2]["digest"], compressed.digest.as_str());
    assert_eq!(manifest["layers"][2]["size"], compressed.size);
    assert_eq!(manifest["config"]["digest"], source.config.digest.as_str());

    // The same input gives the same manifest.
    let again = only_image(from_oci_layout(&layout, None, scratch.path())?)?;
    assert_eq!(again.manifest.raw, image.manifest.raw);

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
        assert_eq!(&gunzip_digest(layer.path()?)?, diff_id);
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
fn two_platforms(dir: &Path, plain: bool) -> Result<(Image, Image)> {
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
    let ImageOrIndex::Index {
        index:
            Manifest {
                raw: got,
                digest,
                media_type,
            },
        images,
    } = from_oci_layout(&layout, Some("1.0"), scratch.path())?
    else {
        bail!("not an index");
    };
    assert_eq!(got, raw);
    assert_eq!(digest, sha256_digest(&raw));
    assert_eq!(media_type, OCI_INDEX);
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].manifest.raw, amd.manifest.raw);
    assert_eq!(images[1].manifest.raw, arm.manifest.raw);
    Ok(())
}

#[test]
fn index_is_rebuilt_when_a_child_is() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (amd, arm) = two_platforms(dir.path(), true)?;
    let (layout, raw) = index_layout(dir.path(), &[("amd64", &amd), ("arm64", &arm)], "latest")?;
    let scratch = tempfile::tempdir()?;
    let pushable = from_oci_layout(&layout, None, scratch.path())?;
    let ImageOrIndex::Index {
        index: Manifest {
            raw: got, digest, ..
        },
        images,
    } = &pushable
    else {
        bail!("not an index");
    };
    assert_ne!(got, &raw);
    assert_eq!(digest, &sha256_digest(got));
    assert_eq!(images[0].manifest.raw, amd.manifest.raw); // untouched
    assert_ne!(images[1].manifest.digest, arm.manifest.digest);
    assert_eq!(images[1].layers[1].media_type, OCI_GZIP);

    let index: Value = serde_json::from_slice(got)?;
    let entries = index["manifests"].as_array().context("no manifests")?;
    for (entry, image) in entries.iter().zip(images) {
        assert_eq!(entry["digest"], image.manifest.digest.as_str());
        assert_eq!(entry["size"], image.manifest.raw.len());
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
    let arm_diff_ids = serde_json::from_slice::<Value>(&fs::read(images[1].config.path()?)?)?;
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
    // The marker of the one-image layout would still pick the amd64 image (as in R).
    assert_eq!(
        fs::read_to_string(layout.join("single-image-digest"))?,
        amd.manifest.digest
    );
    fs::remove_file(layout.join("single-image-digest"))?;
    for entry in fs::read_dir(other.join("blobs/sha256"))? {
        let entry = entry?;
        let dest = layout.join("blobs/sha256").join(entry.file_name());
        if !dest.exists() {
            fs::copy(entry.path(), dest)?;
        }
    }
    let scratch = tempfile::tempdir()?;
    let image = only_image(from_oci_layout(&layout, Some("arm"), scratch.path())?)?;
    assert_eq!(image.manifest.digest, arm.manifest.digest);
    let err = expect_err(from_oci_layout(&layout, Some("x"), scratch.path()))?;
    assert!(err.contains("no image named x"), "{err}");
    // Without a name, both entries (two platforms) are pushed as one index, as R does.
    let ImageOrIndex::Index { images, .. } = from_oci_layout(&layout, None, scratch.path())? else {
        bail!("not an index");
    };
    assert_eq!(images.len(), 2);
    Ok(())
}

/// Writes a layout whose `index.json` lists `images` directly (as R's `in` writes a
/// multi-platform tag), each with its platform when `with_platforms`; returns the layout.
fn flat_layout(
    dir: &Path,
    images: &[(&str, &Image)],
    with_platforms: bool,
    media_type: bool,
) -> Result<PathBuf> {
    let (layout, _) = index_layout(dir, images, "latest")?;
    let mut index: Value = serde_json::from_slice(&index_bytes(images)?)?;
    if !with_platforms {
        for entry in index["manifests"].as_array_mut().context("manifests")? {
            entry.as_object_mut().context("entry")?.remove("platform");
        }
    }
    if !media_type {
        index.as_object_mut().context("index")?.remove("mediaType");
    }
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(layout)
}

#[test]
fn index_json_listing_several_images_is_pushed_as_it_is() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (amd, arm) = two_platforms(dir.path(), false)?;
    let layout = flat_layout(dir.path(), &[("amd64", &amd), ("arm64", &arm)], true, true)?;
    let scratch = tempfile::tempdir()?;
    let ImageOrIndex::Index {
        index: Manifest {
            raw,
            digest,
            media_type,
        },
        images,
    } = from_oci_layout(&layout, None, scratch.path())?
    else {
        bail!("not an index");
    };
    // index.json's own bytes, as R pushes them: the same digest.
    assert_eq!(raw, fs::read(layout.join("index.json"))?);
    assert_eq!(digest, sha256_digest(&raw));
    assert_eq!(media_type, OCI_INDEX);
    let digests: Vec<&str> = images.iter().map(|i| i.manifest.digest.as_str()).collect();
    assert_eq!(
        digests,
        [amd.manifest.digest.as_str(), arm.manifest.digest.as_str()]
    );
    // A ref name still picks one entry... of none here: an error naming what there is.
    let err = expect_err(from_oci_layout(&layout, Some("latest"), scratch.path()))?;
    assert!(err.contains("no image named latest"), "{err}");
    Ok(())
}

#[test]
fn missing_platforms_and_media_type_are_filled_in() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (amd, arm) = two_platforms(dir.path(), true)?;
    let layout = flat_layout(
        dir.path(),
        &[("amd64", &amd), ("arm64", &arm)],
        false,
        false,
    )?;
    let scratch = tempfile::tempdir()?;
    let ImageOrIndex::Index {
        index: Manifest {
            raw,
            digest,
            media_type,
        },
        images,
    } = from_oci_layout(&layout, None, scratch.path())?
    else {
        bail!("not an index");
    };
    assert_eq!(digest, sha256_digest(&raw));
    assert_eq!(media_type, OCI_INDEX);
    let index: Value = serde_json::from_slice(&raw)?;
    assert_eq!(index["mediaType"], OCI_INDEX);
    let entries = index["manifests"].as_array().context("manifests")?;
    for ((entry, image), arch) in entries.iter().zip(&images).zip(["amd64", "arm64"]) {
        assert_eq!(
            entry["platform"],
            serde_json::json!({"architecture": arch, "os": "linux"})
        );
        assert_eq!(entry["digest"], image.manifest.digest.as_str());
    }
    // The arm64 image had a plain layer: compressed, its manifest rebuilt.
    assert_ne!(images[1].manifest.digest, arm.manifest.digest);
    // The same input gives the same index.
    assert_eq!(
        from_oci_layout(&layout, None, scratch.path())?.digest(),
        &digest
    );

    // The same layout, tarred (an OCI layout tarball).
    let tarball = dir.path().join("flat.tar");
    let mut tar = tar::Builder::new(File::create(&tarball)?);
    tar.append_dir_all(".", &layout)?;
    tar.into_inner()?;
    let from_tar = super::from_tarball(&tarball, scratch.path(), Default::default())?;
    assert_eq!(from_tar.digest(), &digest);
    Ok(())
}

#[test]
fn two_images_for_one_platform_are_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (amd, _) = two_platforms(dir.path(), false)?;
    let other = make_image(
        dir.path(),
        "amd64",
        &[make_layer(dir.path(), &[("x", b"other\n")], Fixture::Gzip)?],
    )?;
    let layout = flat_layout(
        dir.path(),
        &[("amd64", &amd), ("amd64", &other)],
        false,
        true,
    )?;
    let scratch = tempfile::tempdir()?;
    let err = expect_err(from_oci_layout(&layout, None, scratch.path()))?;
    assert!(
        err.contains("two images for linux/amd64")
            && err.contains(amd.manifest.digest.as_str())
            && err.contains(other.manifest.digest.as_str()),
        "{err}"
    );
    Ok(())
}

#[test]
fn single_image_digest_marker_picks_the_image() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (amd, arm) = two_platforms(dir.path(), false)?;
    let layout = flat_layout(dir.path(), &[("amd64", &amd), ("arm64", &arm)], true, true)?;
    fs::write(
        layout.join("single-image-digest"),
        arm.manifest.digest.as_str(),
    )?;
    let scratch = tempfile::tempdir()?;
    let image = only_image(from_oci_layout(&layout, None, scratch.path())?)?;
    assert_eq!(image.manifest.digest, arm.manifest.digest);
    // In a tarball too.
    let tarball = dir.path().join("marked.tar");
    let mut tar = tar::Builder::new(File::create(&tarball)?);
    tar.append_dir_all(".", &layout)?;
    tar.into_inner()?;
    assert_eq!(
        super::from_tarball(&tarball, scratch.path(), Default::default())?.digest(),
        &arm.manifest.digest
    );

    let missing = format!("sha256:{}", "1".repeat(64));
    fs::write(layout.join("single-image-digest"), &missing)?;
    let err = expect_err(from_oci_layout(&layout, None, scratch.path()))?;
    assert!(
        err.contains("single-image-digest") && err.contains(&missing),
        "{err}"
    );
    fs::write(layout.join("single-image-digest"), "latest")?;
    let err = expect_err(from_oci_layout(&layout, None, scratch.path()))?;
    assert!(err.contains("does not hold a digest"), "{err}");
    Ok(())
}

fn entry(media_type: &str, digest: char, ref_name: Option<&str>) -> model::Descriptor {
    model::Descriptor::new(
        media_type,
        Digest::parse(&format!("sha256:{}", digest.to_string().repeat(64)))
            .unwrap_or_else(|e| panic!("{e}")),
        1,
    )
    .with_ref_name(ref_name.map(str::to_string))
}

#[test]
fn which_entries_are_pushed() -> Result<()> {
    let a = entry(OCI_MANIFEST, 'a', Some("amd"));
    let b = entry(DOCKER_MANIFEST, 'b', None);
    let i = entry(OCI_INDEX, 'c', Some("multi"));
    assert_eq!(choose(std::slice::from_ref(&a), None)?, Choice::One(&a));
    assert_eq!(choose(std::slice::from_ref(&i), None)?, Choice::One(&i));
    let both = [a.clone(), b.clone()];
    assert_eq!(choose(&both, None)?, Choice::All);
    assert_eq!(choose(&both, Some(&b.digest))?, Choice::One(&both[1]));
    let err = expect_err(choose(&both, Some(&i.digest)))?;
    assert!(err.contains("single-image-digest"), "{err}");
    let err = expect_err(choose(&[a.clone(), i.clone()], None))?;
    assert!(
        err.contains("lists 2 entries (amd, multi)") && err.contains(i.digest.as_str()),
        "{err}"
    );
    assert!(expect_err(choose(&[], None))?.contains("no images"));
    Ok(())
}

#[test]
fn platforms_from_configs() -> Result<()> {
    let platform = |config: Value| config_platform(&serde_json::to_vec(&config)?);
    assert_eq!(
        platform(
            serde_json::json!({"os": "linux", "architecture": "arm", "variant": "v7",
            "config": {}})
        )?,
        Some(serde_json::json!({"architecture": "arm", "os": "linux", "variant": "v7"}))
    );
    assert_eq!(
        platform(serde_json::json!({"os": "windows", "architecture": "amd64",
            "os.version": "10.0.17763.1", "os.features": ["win32k"]}))?,
        Some(serde_json::json!({"architecture": "amd64", "os": "windows",
            "os.version": "10.0.17763.1", "os.features": ["win32k"]}))
    );
    assert_eq!(platform(serde_json::json!({"os": "linux"}))?, None);
    assert_eq!(
        platform(serde_json::json!({"os": "", "architecture": "amd64"}))?,
        None
    );
    assert!(config_platform(b"not json").is_err());

    let amd = serde_json::json!({"os": "linux", "architecture": "amd64"});
    let arm = serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
    let unknown = serde_json::json!({"os": "unknown", "architecture": "unknown"});
    assert_eq!(platform_name(&arm), "linux/arm64/v8");
    let named = |list: &[(&str, &Value)]| -> Vec<(String, Value)> {
        list.iter()
            .map(|(n, p)| (n.to_string(), (*p).clone()))
            .collect()
    };
    let check = |list: Vec<(String, Value)>| {
        let refs: Vec<(String, &Value)> = list.iter().map(|(n, p)| (n.clone(), p)).collect();
        check_distinct_platforms(&refs)
    };
    check(named(&[
        ("a", &amd),
        ("b", &arm),
        ("c", &unknown),
        ("d", &unknown),
    ]))?;
    let err = expect_err(check(named(&[("a", &amd), ("b", &arm), ("c", &amd)])))?;
    assert!(
        err.contains("two images for linux/amd64 (a and c)"),
        "{err}"
    );
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
        let path = layout.join("blobs/sha256").join(victim.digest.hex());
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
    assert!(err.contains(fixture[0].blob.digest.as_str()), "{err}");
    Ok(())
}

#[test]
fn blob_names() {
    let hex = "a".repeat(64);
    assert_eq!(
        Digest::from_layout_name(&format!("blobs/sha256/{hex}")).map(|d| d.to_string()),
        Some(format!("sha256:{hex}"))
    );
    for bad in [
        format!("blobs/sha256/{}", "A".repeat(64)),
        format!("blobs/md5/{hex}"),
        format!("blobs/sha256/{hex}/x"),
        "blobs/sha256/..".to_string(),
        "index.json".to_string(),
    ] {
        assert_eq!(Digest::from_layout_name(&bad), None, "{bad}");
    }
    assert_eq!(
        crate::image::archive::clean_name("./blobs//sha256/../sha256/x"),
        "blobs/sha256/x"
    );
}
