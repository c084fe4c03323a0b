use serde_json::Value;

use super::super::test_support::{
    docker_save, expect_err, gunzip_digest, layout_of, plain_layer, skopeo_diff_ids,
};
use super::*;
use crate::image::archive::test_support::{
    make_image, make_layer, run, sha256_digest, sha256_file, Compression as Fixture,
};
use crate::image::archive::write_docker_archive;
use crate::image::manifest::{self, Parsed};
use crate::image::sources::{from_docker_archive, from_load_dir};

fn image(pushable: ImageOrIndex) -> Result<Image> {
    match pushable {
        ImageOrIndex::Image(image) => Ok(image),
        ImageOrIndex::Index { .. } => bail!("got an index"),
    }
}

/// Checks what every image from a docker archive must be: Docker manifest over these
/// config bytes, every layer a valid blob whose content has the given diff ID.
fn check_image(image: &Image, config: &[u8], diff_ids: &[String]) -> Result<()> {
    // With zstd layers, OCI's manifest (Docker's has no zstd type).
    let oci = image.layers.iter().any(|l| l.media_type == OCI_ZSTD);
    let (manifest_type, config_type) = if oci {
        (OCI_MANIFEST, OCI_CONFIG)
    } else {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    };
    assert_eq!(image.manifest.media_type, manifest_type);
    assert_eq!(image.manifest.digest, sha256_digest(&image.manifest.raw));
    let Parsed::Manifest(parsed) = manifest::parse(manifest_type, &image.manifest.raw)? else {
        bail!("not a manifest");
    };
    assert_eq!(parsed.layers().len(), diff_ids.len());
    assert_eq!(fs::read(image.config.path()?)?, config);
    assert_eq!(image.config.media_type, config_type);
    assert_eq!(parsed.config().digest().to_string(), image.config.digest);
    let copies = tempfile::tempdir()?;
    for (i, layer) in image.layers.iter().enumerate() {
        let path = materialise(layer, copies.path())?;
        assert_eq!(sha256_file(&path)?, layer.digest);
        assert_eq!(fs::metadata(&path)?.len(), layer.size);
        assert_eq!(parsed.layers()[i].digest().to_string(), layer.digest);
        assert_eq!(
            parsed.layers()[i].media_type().to_string(),
            layer.media_type
        );
        if layer.media_type == DOCKER_GZIP || layer.media_type == OCI_GZIP {
            assert_eq!(gunzip_digest(&path)?, diff_ids[i]);
        }
    }
    Ok(())
}

#[test]
fn skopeo_archive_becomes_a_docker_image() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let layers = [
        make_layer(dir.path(), &[("a", b"gzip\n")], Fixture::Gzip)?,
        make_layer(dir.path(), &[("c", b"plain\n")], Fixture::None)?,
    ];
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let source = make_image(dir.path(), "amd64", &layers)?;
    let oci = layout_of(dir.path(), &source)?;
    let archive = dir.path().join("saved.tar");
    run(
        "skopeo",
        &[
            "copy".to_string(),
            format!("oci:{}:latest", oci.display()),
            format!("docker-archive:{}:example.com/app:1", archive.display()),
        ],
    )?;
    let scratch = tempfile::tempdir()?;
    let image = image(from_docker_archive(&archive, None, scratch.path())?)?;
    check_image(&image, &fs::read(source.config.path()?)?, &diff_ids)?;
    // skopeo stores layers uncompressed, so all were compressed by us.
    assert!(image.layers.iter().all(|l| l.media_type == DOCKER_GZIP));

    // Go (skopeo) reads our gzip layers and finds the config's diff IDs. (Its OCI
    // transport takes only OCI manifests, so the check goes through a docker archive.)
    let back = dir.path().join("back.tar");
    write_docker_archive(&back, &image, &[])?;
    let source = format!("docker-archive:{}", back.display());
    assert_eq!(skopeo_diff_ids(&source, "amd64")?, diff_ids);
    Ok(())
}

#[test]
fn layers_are_made_largest_expected_output_first() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let text = |len: usize| -> Vec<u8> {
        (0..)
            .flat_map(|n: u32| format!("line {}\n", n % 977).into_bytes())
            .take(len)
            .collect()
    };
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let random: Vec<u8> = (0..400 * 1024)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    // Expected outputs: a third of 300 KB, all of 400 KB, a third of 900 KB.
    let (small, big) = (text(300 * 1024), text(900 * 1024));
    let layers = [
        make_layer(dir.path(), &[("small", &small[..])], Fixture::None)?,
        make_layer(dir.path(), &[("random", &random[..])], Fixture::None)?,
        make_layer(dir.path(), &[("big", &big[..])], Fixture::None)?,
    ];
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let source = make_image(dir.path(), "amd64", &layers)?;
    let oci = layout_of(dir.path(), &source)?;
    let path = dir.path().join("saved.tar");
    run(
        "skopeo",
        &[
            "copy".to_string(),
            format!("oci:{}:latest", oci.display()),
            format!("docker-archive:{}:example.com/app:1", path.display()),
        ],
    )?;
    let archive = read_docker_archive(&path, None)?;
    assert_eq!(making_order(&archive, vec![0, 1, 2])?, [1, 2, 0]);
    assert_eq!(making_order(&archive, vec![0, 2])?, [2, 0]);
    // The manifest keeps the archive's order.
    let scratch = tempfile::tempdir()?;
    let image = image(from_docker_archive(&path, None, scratch.path())?)?;
    check_image(&image, &fs::read(source.config.path()?)?, &diff_ids)
}

#[test]
fn compressed_members_are_kept_byte_for_byte() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let layers = [
        make_layer(dir.path(), &[("a", b"gzip\n")], Fixture::Gzip)?,
        make_layer(dir.path(), &[("b", b"zstd\n")], Fixture::Zstd)?,
    ];
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let source = make_image(dir.path(), "arm64", &layers)?;
    let archive = dir.path().join("ours.tar");
    write_docker_archive(&archive, &source, &["x:1".to_string()])?;
    let scratch = tempfile::tempdir()?;
    let image = image(from_docker_archive(&archive, Some("x:1"), scratch.path())?)?;
    check_image(&image, &fs::read(source.config.path()?)?, &diff_ids)?;
    assert_eq!(image.layers[0].digest, source.layers[0].digest);
    assert_eq!(image.layers[0].media_type, OCI_GZIP);
    assert_eq!(image.layers[1].digest, source.layers[1].digest);
    assert_eq!(image.layers[1].media_type, OCI_ZSTD);
    assert_eq!(image.manifest.media_type, OCI_MANIFEST);
    // Named by their digests, they are not read until they must be sent.
    assert!(image
        .layers
        .iter()
        .all(|l| matches!(&l.source, BlobSource::Member(m) if m.archive == archive)));
    Ok(())
}

#[test]
fn a_deferred_layer_is_checked_when_it_is_read() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let layers = [make_layer(dir.path(), &[("a", b"gzip\n")], Fixture::Gzip)?];
    let source = make_image(dir.path(), "amd64", &layers)?;
    let archive = dir.path().join("ours.tar");
    write_docker_archive(&archive, &source, &["x:1".to_string()])?;
    let scratch = tempfile::tempdir()?;

    // A config whose diff_id is wrong: found when the layer is read.
    let wrong = Image {
        layers: vec![source.layers[0].clone()],
        ..source.clone()
    };
    let mut config: serde_json::Value = serde_json::from_slice(&fs::read(source.config.path()?)?)?;
    config["rootfs"]["diff_ids"][0] = format!("sha256:{}", "0".repeat(64)).into();
    let config_blob = write_bytes_blob(dir.path(), &serde_json::to_vec(&config)?, DOCKER_CONFIG)?;
    let wrong = Image {
        config: config_blob,
        ..wrong
    };
    let bad_config = dir.path().join("bad-config.tar");
    write_docker_archive(&bad_config, &wrong, &[])?;
    let loaded = image(from_docker_archive(&bad_config, None, scratch.path())?)?;
    let err = format!(
        "{:#}",
        materialise(&loaded.layers[0], scratch.path()).unwrap_err()
    );
    assert!(err.contains("does not match its diff_id"), "{err}");
    assert!(err.contains("bad-config.tar"), "{err}");

    // A name that is not the digest of the bytes: found when the layer is read.
    let misnamed = Image {
        layers: vec![Blob {
            digest: Digest::parse(&format!("sha256:{}", "1".repeat(64)))?,
            ..source.layers[0].clone()
        }],
        ..source.clone()
    };
    write_docker_archive(&archive, &misnamed, &[])?;
    let loaded = image(from_docker_archive(&archive, None, scratch.path())?)?;
    let err = format!(
        "{:#}",
        materialise(&loaded.layers[0], scratch.path()).unwrap_err()
    );
    assert!(err.contains("its name says"), "{err}");
    assert!(err.contains(source.layers[0].digest.as_str()), "{err}");

    // Bytes that are not a valid stream: found when the layer is read.
    let loaded = image(from_docker_archive(&archive, None, scratch.path())?)?;
    let BlobSource::Member(deferred) = loaded.layers[0].source.clone() else {
        bail!("layer 0 is not deferred");
    };
    let mut bytes = fs::read(&archive)?;
    let inside = (deferred.member.offset + deferred.member.size / 2) as usize;
    bytes[inside] ^= 0xff;
    fs::write(&archive, &bytes)?;
    let err = format!(
        "{:#}",
        materialise(&loaded.layers[0], scratch.path()).unwrap_err()
    );
    assert!(err.contains("layer 0 ("), "{err}");
    // No copy of a rejected layer is left in scratch.
    assert!(!scratch
        .path()
        .join(source.layers[0].digest.file_name())
        .exists());
    for entry in fs::read_dir(scratch.path())? {
        let name = entry?.file_name().to_string_lossy().to_string();
        assert!(!name.starts_with("layer-"), "{name} is left");
    }
    Ok(())
}

#[test]
fn digests_in_member_names() {
    let hex = "ab".repeat(32);
    for name in [
        format!("{hex}.tar.gz"),
        format!("{hex}.tar.zst"),
        format!("blobs/sha256/{hex}"),
    ] {
        assert_eq!(
            named_digest(&name).map(|d| d.to_string()),
            Some(format!("sha256:{hex}")),
            "{name}"
        );
    }
    for name in [
        format!("{hex}/layer.tar"),
        format!("{hex}.tar"),
        format!("{}.tar.gz", "AB".repeat(32)),
        format!("{}.tar.gz", "ab".repeat(31)),
        format!("blobs/sha512/{hex}"),
        "layer.tar.gz".to_string(),
    ] {
        assert_eq!(named_digest(&name), None, "{name}");
    }
}

#[test]
fn picks_by_repo_tag_and_lists_tags() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let archive = dir.path().join("two.tar");
    let one = plain_layer(&[("one", b"1")])?;
    let two = plain_layer(&[("two", b"2")])?;
    let configs = docker_save(
        &archive,
        &[
            (&["one:1"], vec![one.clone()]),
            (&["reg.io/two:2"], vec![one, two]),
        ],
    )?;
    let scratch = tempfile::tempdir()?;
    let image = image(from_docker_archive(
        &archive,
        Some("reg.io/two:2"),
        scratch.path(),
    )?)?;
    assert_eq!(image.layers.len(), 2);
    assert_eq!(fs::read(image.config.path()?)?, configs[1]);

    let err = expect_err(from_docker_archive(&archive, None, scratch.path()))?;
    assert!(err.contains("one:1, reg.io/two:2"), "{err}");
    assert!(
        err.contains("load_file") && err.contains("two.tar"),
        "{err}"
    );
    let err = expect_err(from_docker_archive(&archive, Some("one:2"), scratch.path()))?;
    assert!(err.contains("no image tagged one:2"), "{err}");
    assert!(err.contains("one:1, reg.io/two:2"), "{err}");
    Ok(())
}

#[test]
fn corrupted_layer_is_detected() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let archive = dir.path().join("bad.tar");
    let good = plain_layer(&[("f", b"content")])?;
    docker_save(&archive, &[(&["a:1"], vec![good.clone()])])?;
    // Flip one byte of the layer's data inside the tarball.
    let mut bytes = fs::read(&archive)?;
    let at = bytes
        .windows(7)
        .position(|w| w == b"content")
        .context("layer data not found")?;
    bytes[at] = b'C';
    fs::write(&archive, &bytes)?;
    let scratch = tempfile::tempdir()?;
    let err = expect_err(from_docker_archive(&archive, None, scratch.path()))?;
    assert!(
        err.contains("layer 0") && err.contains("bad.tar does not match its diff_id in the config"),
        "{err}"
    );
    assert!(err.contains(&sha256_digest(&good)), "{err}");
    // Nothing is left behind in scratch but the config.
    assert_eq!(fs::read_dir(scratch.path())?.count(), 1);
    Ok(())
}

#[test]
fn load_dir_uses_repository_and_tag_files() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let scratch = tempfile::tempdir()?;
    let err = expect_err(from_load_dir(dir.path(), scratch.path()))?;
    assert!(err.contains("save: true") && err.contains("load "), "{err}");

    let layer = plain_layer(&[("f", b"x")])?;
    docker_save(
        &dir.path().join("image"),
        &[
            (&["docker.io/library/busybox:1"], vec![layer.clone()]),
            (&["docker.io/library/busybox:2"], vec![layer.clone(), layer]),
        ],
    )?;
    fs::write(dir.path().join("repository"), "busybox")?;
    fs::write(dir.path().join("tag"), "2")?;
    let image = image(from_load_dir(dir.path(), scratch.path())?)?;
    assert_eq!(image.layers.len(), 2);
    let config: Value = serde_json::from_slice(&fs::read(image.config.path()?)?)?;
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(2)
    );
    Ok(())
}

#[test]
fn layer_count_must_match_diff_ids() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let layers = [make_layer(dir.path(), &[("a", b"a")], Fixture::None)?];
    let mut source = make_image(dir.path(), "amd64", &layers)?;
    source.layers.push(source.layers[0].clone());
    let archive = dir.path().join("x.tar");
    write_docker_archive(&archive, &source, &[])?;
    let scratch = tempfile::tempdir()?;
    let err = expect_err(from_docker_archive(&archive, None, scratch.path()))?;
    assert!(
        err.contains("lists 2 layers") && err.contains("has 1 rootfs.diff_ids"),
        "{err}"
    );
    Ok(())
}
