//! Tests of the `docker save` writer and reader: skopeo reads what we write, members are
//! named by digest and compression, and the reader follows links, picks images by tag
//! and refuses what it cannot read.

use std::fs;

use serde_json::Value;

use super::super::test_support::{make_image, make_layer, run, sha256_digest, Compression};
use super::*;

fn read_all(mut reader: impl Read) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// An image with a gzip, a zstd and an uncompressed layer.
fn mixed_image(dir: &Path) -> Result<(Image, Vec<String>)> {
    let layers = [
        make_layer(dir, &[("hello.txt", b"hello\n")], Compression::Gzip)?,
        make_layer(dir, &[("etc/zstd", b"zstd\n")], Compression::Zstd)?,
        make_layer(dir, &[("plain", b"plain\n")], Compression::None)?,
    ];
    let diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
    Ok((make_image(dir, "amd64", &layers)?, diff_ids))
}

#[test]
fn skopeo_reads_what_we_write() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (image, diff_ids) = mixed_image(dir.path())?;
    let archive = dir.path().join("image.tar");
    let tags = vec!["example.com/test/app:1.0".to_string()];
    write_docker_archive(&archive, &image, &tags)?;
    assert!(!dir.path().join("image.tar.tmp").exists());

    let transport = format!("docker-archive:{}", archive.display());
    let inspect: Value = serde_json::from_str(&run("skopeo", &["inspect", &transport])?)?;
    assert_eq!(inspect["Layers"], serde_json::to_value(&diff_ids)?);
    assert_eq!(inspect["Architecture"], "amd64");
    let config: Value =
        serde_json::from_str(&run("skopeo", &["inspect", "--config", &transport])?)?;
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::to_value(&diff_ids)?
    );

    // Picking the image by tag, and copying it to an OCI layout.
    let by_tag = format!("{transport}:example.com/test/app:1.0");
    let oci = dir.path().join("oci");
    run(
        "skopeo",
        &["copy", &by_tag, &format!("oci:{}:x", oci.display())],
    )?;
    let copied: Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", "--config", &format!("oci:{}:x", oci.display())],
    )?)?;
    assert_eq!(
        copied["rootfs"]["diff_ids"],
        serde_json::to_value(&diff_ids)?
    );
    Ok(())
}

#[test]
fn members_are_named_by_digest_and_compression() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (image, _) = mixed_image(dir.path())?;
    let archive = dir.path().join("image.tar");
    write_docker_archive(&archive, &image, &["a/b:c".to_string()])?;
    let listing = run("tar", &[std::ffi::OsStr::new("-tf"), archive.as_os_str()])?;
    let hex = |blob: &Blob| blob.digest.hex().to_string();
    let want = [
        format!("{}.json", hex(&image.config)),
        format!("{}.tar.gz", hex(&image.layers[0])),
        format!("{}.tar.zst", hex(&image.layers[1])),
        format!("{}/", hex(&image.layers[2])),
        format!("{}/layer.tar", hex(&image.layers[2])),
        "manifest.json".to_string(),
        "repositories".to_string(),
    ];
    assert_eq!(listing.lines().collect::<Vec<_>>(), want);

    let read = read_docker_archive(&archive, None)?;
    let repositories =
        read_member_bytes(&archive, &resolve(&scan_members(&archive)?, REPOSITORIES)?)?;
    let repositories: Value = serde_json::from_slice(&repositories)?;
    assert_eq!(repositories["a/b"]["c"], hex(&image.layers[2]));
    assert_eq!(read.repo_tags(), ["a/b:c"]);
    Ok(())
}

#[test]
fn reader_round_trips_config_and_layers() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (image, _) = mixed_image(dir.path())?;
    let archive = dir.path().join("image.tar");
    write_docker_archive(
        &archive,
        &image,
        &["docker.io/library/busybox:1".to_string()],
    )?;

    let read = read_docker_archive(&archive, Some("busybox:1"))?;
    assert_eq!(read.config_bytes()?, fs::read(image.config.path()?)?);
    assert_eq!(read.layers().len(), 3);
    for (i, layer) in image.layers.iter().enumerate() {
        assert_eq!(read.layers()[i].size, layer.size);
        assert_eq!(sha256_digest(&read_all(read.open_layer(i)?)?), layer.digest);
    }
    assert!(read.open_layer(3).is_err());
    // The only image is chosen when none is asked for.
    assert_eq!(read_docker_archive(&archive, None)?.layers().len(), 3);

    let err = format!(
        "{:#}",
        read_docker_archive(&archive, Some("busybox:2"))
            .err()
            .context("found a missing tag")?
    );
    assert!(err.contains("no image tagged busybox:2"), "{err}");
    assert!(err.contains("docker.io/library/busybox:1"), "{err}");
    Ok(())
}

#[test]
fn reader_reads_skopeo_archives() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (image, diff_ids) = mixed_image(dir.path())?;
    let ours = dir.path().join("ours.tar");
    write_docker_archive(&ours, &image, &["one:1".to_string()])?;
    let theirs = dir.path().join("theirs.tar");
    run(
        "skopeo",
        &[
            "copy".to_string(),
            format!("docker-archive:{}", ours.display()),
            format!("docker-archive:{}:two:2", theirs.display()),
        ],
    )?;
    let read = read_docker_archive(&theirs, Some("two:2"))?;
    assert_eq!(read.config_bytes()?, fs::read(image.config.path()?)?);
    // skopeo stores layers uncompressed: each is its diff ID.
    for (i, diff_id) in diff_ids.iter().enumerate() {
        assert_eq!(&sha256_digest(&read_all(read.open_layer(i)?)?), diff_id);
    }
    Ok(())
}

#[test]
fn reader_needs_a_choice_among_several_images() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (image, _) = mixed_image(dir.path())?;
    let archive = dir.path().join("image.tar");
    write_docker_archive(&archive, &image, &[])?;
    // Rewrite manifest.json with two entries by building a second tar around the members.
    let members = scan_members(&archive)?;
    let entry = ManifestEntry {
        config: format!("{}.json", &image.config.digest.hex()),
        repo_tags: Some(vec!["x:1".into()]),
        layers: vec![],
    };
    let second = ManifestEntry {
        repo_tags: Some(vec!["y:2".into()]),
        ..entry.clone()
    };
    let two = dir.path().join("two.tar");
    let mut tar = Builder::new(File::create(&two)?);
    let config = resolve(&members, &entry.config)?;
    append_bytes(
        &mut tar,
        &entry.config,
        &read_member_bytes(&archive, &config)?,
    )?;
    append_bytes(
        &mut tar,
        MANIFEST_JSON,
        &serde_json::to_vec(&[entry, second])?,
    )?;
    tar.into_inner()?.flush()?;

    let err = format!(
        "{:#}",
        read_docker_archive(&two, None)
            .err()
            .context("no choice needed")?
    );
    assert!(err.contains("2 images (x:1, y:2)"), "{err}");
    assert_eq!(read_docker_archive(&two, Some("y:2"))?.repo_tags(), ["y:2"]);
    Ok(())
}

#[test]
fn untagged_archive_has_null_repo_tags_and_no_repositories() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (image, _) = mixed_image(dir.path())?;
    let archive = dir.path().join("image.tar");
    write_docker_archive(&archive, &image, &[])?;
    let members = scan_members(&archive)?;
    assert!(!members.contains_key(REPOSITORIES));
    let manifest: Value = serde_json::from_slice(&read_member_bytes(
        &archive,
        &resolve(&members, MANIFEST_JSON)?,
    )?)?;
    assert_eq!(manifest[0]["RepoTags"], Value::Null);
    Ok(())
}

#[test]
fn failed_write_leaves_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut image, _) = mixed_image(dir.path())?;
    image.layers[1].size += 1;
    let archive = dir.path().join("image.tar");
    let err = format!(
        "{:#}",
        write_docker_archive(&archive, &image, &[])
            .err()
            .context("wrote a bad blob")?
    );
    assert!(err.contains("descriptor says"), "{err}");
    assert!(!archive.exists());
    assert!(!dir.path().join("image.tar.tmp").exists());
    assert!(write_docker_archive(&archive, &image, &["no-tag@x".into()]).is_err());
    Ok(())
}

#[test]
fn gzip_archive_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("image.tar.gz");
    fs::write(&path, [0x1f, 0x8b, 0, 0])?;
    let err = format!(
        "{:#}",
        read_docker_archive(&path, None)
            .err()
            .context("read gzip")?
    );
    assert!(err.contains("gzip-compressed"), "{err}");
    Ok(())
}

#[test]
fn names_and_links_resolve() -> Result<()> {
    assert_eq!(clean_name("./a//b/../c"), "a/c");
    assert_eq!(clean_name("manifest.json"), "manifest.json");
    let mut members = HashMap::new();
    members.insert(
        "d.tar".to_string(),
        MemberKind::Data {
            offset: 512,
            size: 3,
        },
    );
    members.insert(
        "id/layer.tar".to_string(),
        MemberKind::Symlink("../d.tar".into()),
    );
    members.insert(
        "hard".to_string(),
        MemberKind::Hardlink("id/layer.tar".into()),
    );
    members.insert("loop".to_string(), MemberKind::Symlink("loop".into()));
    members.insert(
        "dangling".to_string(),
        MemberKind::Symlink("nowhere".into()),
    );
    assert_eq!(resolve(&members, "./hard")?.name, "d.tar");
    assert_eq!(resolve(&members, "id/layer.tar")?.offset, 512);
    assert!(resolve(&members, "loop").is_err());
    let err = format!(
        "{:#}",
        resolve(&members, "dangling").err().context("dangling")?
    );
    assert!(err.contains("links to nowhere"), "{err}");
    Ok(())
}

#[test]
fn repo_tags_compare_normalised() {
    for (a, b, same) in [
        ("docker.io/library/busybox:latest", "busybox", true),
        ("busybox:1", "index.docker.io/library/busybox:1", true),
        ("busybox:1", "busybox:2", false),
        ("localhost:5000/a:b", "localhost:5000/a:b", true),
        ("localhost:5000/a", "localhost:5000/a:latest", true),
        ("Not Valid", "Not Valid", true),
        ("Not Valid", "not valid", false),
    ] {
        assert_eq!(same_repo_tag(a, b), same, "{a} vs {b}");
    }
    assert_eq!(
        split_repo_tag("localhost:5000/a:b"),
        Some(("localhost:5000/a", "b"))
    );
    assert_eq!(split_repo_tag("localhost:5000/a"), None);
    assert_eq!(split_repo_tag("a@sha256:00"), None);
}
