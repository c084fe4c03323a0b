//! Fixtures for the source tests: hand-made docker-save tarballs, OCI layouts written from
//! images, and checks through Go tools (skopeo) that read what we produce.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::ImageOrIndex;
use crate::image::archive::test_support::{run, sha256_digest, tar_bytes};
use crate::image::archive::{
    read_docker_archive, write_bytes_blob, write_oci_layout, OciIndexSpec,
};
use crate::image::manifest::OCI_INDEX;
use crate::image::model::{Blob, Descriptor, Image, Manifest};

/// The error chain of a result that must be an error.
pub(crate) fn expect_err<T>(result: Result<T>) -> Result<String> {
    match result {
        Ok(_) => bail!("expected an error"),
        Err(e) => Ok(format!("{e:#}")),
    }
}

/// An uncompressed layer holding `files`.
pub(crate) fn plain_layer(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    tar_bytes(files)
}

/// The sha256 of a gzip file's content.
pub(crate) fn gunzip_digest(path: &Path) -> Result<String> {
    let mut decoder = flate2::read::MultiGzDecoder::new(File::open(path)?);
    let mut plain = Vec::new();
    io::copy(&mut decoder, &mut plain)?;
    Ok(sha256_digest(&plain))
}

/// Writes a docker-save tarball holding `images`, each `(repo tags, uncompressed layers)`;
/// returns each image's config bytes.
pub(crate) fn docker_save(path: &Path, images: &[(&[&str], Vec<Vec<u8>>)]) -> Result<Vec<Vec<u8>>> {
    let mut tar = tar::Builder::new(File::create(path)?);
    let mut written = HashSet::new();
    let mut entries = Vec::new();
    let mut configs = Vec::new();
    for (tags, layers) in images {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"tags": tags.join(",")}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))?;
        let config_name = format!("{}.json", &sha256_digest(&config)["sha256:".len()..]);
        append(&mut tar, &config_name, &config)?;
        let mut names = Vec::new();
        for (layer, diff_id) in layers.iter().zip(&diff_ids) {
            let name = format!("{}/layer.tar", &diff_id["sha256:".len()..]);
            if written.insert(name.clone()) {
                append(&mut tar, &name, layer)?;
            }
            names.push(name);
        }
        entries.push(json!({"Config": config_name, "RepoTags": tags, "Layers": names}));
        configs.push(config);
    }
    append(&mut tar, "manifest.json", &serde_json::to_vec(&entries)?)?;
    tar.into_inner()?.flush()?;
    Ok(configs)
}

fn append(tar: &mut tar::Builder<File>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, name, bytes)?;
    Ok(())
}

/// A fresh directory name under `dir`.
fn fresh(dir: &Path, what: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    dir.join(format!("{what}-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// The blobs of one image: its manifest (written to `dir`), config and layers.
fn image_blobs(dir: &Path, image: &Image) -> Result<(Blob, Vec<Blob>)> {
    let manifest = write_bytes_blob(dir, &image.manifest.raw, &image.manifest.media_type)?;
    let mut blobs = vec![manifest.clone(), image.config.clone()];
    blobs.extend(image.layers.iter().cloned());
    Ok((manifest, blobs))
}

/// `oci:<layout>:latest`, for skopeo.
pub(crate) fn oci_latest(layout: &Path) -> String {
    format!("oci:{}:latest", layout.display())
}

/// Writes `image` as an OCI layout under `dir`, named `latest`; returns the layout.
pub(crate) fn layout_of(dir: &Path, image: &Image) -> Result<PathBuf> {
    layout_of_pushable(dir, &ImageOrIndex::Image(image.clone()))
}

/// Writes `pushable` as an OCI layout under `dir`, its top entry named `latest`.
pub(crate) fn layout_of_pushable(dir: &Path, pushable: &ImageOrIndex) -> Result<PathBuf> {
    let scratch = fresh(dir, "blobs");
    fs::create_dir(&scratch)?;
    let mut blobs = Vec::new();
    let top = match pushable {
        ImageOrIndex::Image(image) => {
            let (manifest, image_blobs) = image_blobs(&scratch, image)?;
            blobs.extend(image_blobs);
            manifest
        }
        ImageOrIndex::Index { index, images } => {
            for image in images {
                blobs.extend(image_blobs(&scratch, image)?.1);
            }
            write_bytes_blob(&scratch, &index.raw, &index.media_type)?
        }
    };
    let spec = OciIndexSpec {
        manifests: vec![
            Descriptor::new(top.media_type.clone(), top.digest.clone(), top.size)
                .with_ref_name(Some("latest".into())),
        ],
    };
    blobs.push(top);
    let layout = fresh(dir, "layout");
    write_oci_layout(&layout, &spec, &blobs)?;
    Ok(layout)
}

/// An index over `images` (each with its architecture), as raw bytes.
pub(crate) fn index_bytes(images: &[(&str, &Image)]) -> Result<Vec<u8>> {
    let manifests: Vec<_> = images
        .iter()
        .map(|(arch, image)| {
            json!({
                "mediaType": image.manifest.media_type,
                "digest": image.manifest.digest,
                "size": image.manifest.raw.len(),
                "platform": {"architecture": arch, "os": "linux"},
            })
        })
        .collect();
    Ok(serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests,
    }))?)
}

/// Writes an OCI layout under `dir` whose only entry, `ref_name`, is an index over
/// `images`; returns the layout and the index bytes.
pub(crate) fn index_layout(
    dir: &Path,
    images: &[(&str, &Image)],
    ref_name: &str,
) -> Result<(PathBuf, Vec<u8>)> {
    let raw = index_bytes(images)?;
    let pushable = ImageOrIndex::Index {
        index: Manifest::sha256(raw.clone(), OCI_INDEX),
        images: images.iter().map(|(_, image)| (*image).clone()).collect(),
    };
    let layout = layout_of_pushable(dir, &pushable)?;
    if ref_name != "latest" {
        let index = fs::read_to_string(layout.join("index.json"))?;
        fs::write(
            layout.join("index.json"),
            index.replace("\"latest\"", &format!("{ref_name:?}")),
        )?;
    }
    Ok((layout, raw))
}

/// Copies `source` (a skopeo transport:name; for `arch` out of an index) to a docker-save
/// tarball with skopeo, which decompresses every layer with Go's gzip, and returns the
/// digests of the layers it wrote. (skopeo refuses zstd layers in docker-save tarballs.)
pub(crate) fn skopeo_diff_ids(source: &str, arch: &str) -> Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let archive = dir.path().join("copy.tar");
    run(
        "skopeo",
        &[
            format!("--override-arch={arch}"),
            "copy".to_string(),
            source.to_string(),
            format!("docker-archive:{}:check:1", archive.display()),
        ],
    )?;
    let read = read_docker_archive(&archive, None)?;
    (0..read.layers().len())
        .map(|i| {
            let mut bytes = Vec::new();
            io::copy(&mut read.open_layer(i)?, &mut bytes)?;
            Ok(sha256_digest(&bytes))
        })
        .collect::<Result<Vec<_>>>()
        .context("reading skopeo's copy")
}
