//! Test fixtures for the archive writers: synthetic layers and images written to a
//! directory, and a runner for the real tools (`skopeo`, `umoci`, GNU `tar`) that check them.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::image::model::{Blob, Image, Manifest};

/// How a synthetic layer is compressed.
pub(crate) use crate::image::compression::Compression;

/// A layer blob on disk and the digest of its uncompressed tar.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub blob: Blob,
    pub diff_id: String,
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut file = fs::File::open(path)?;
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// A tar of regular files (mode 0644, mtime 1000000000).
pub(crate) fn tar_bytes(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_000_000_000);
        builder.append_data(&mut header, name, *data)?;
    }
    Ok(builder.into_inner()?)
}

/// Writes `bytes` to `dir/blob-<hex>` and describes it.
pub(crate) fn write_blob(dir: &Path, bytes: &[u8], media_type: &str) -> Result<Blob> {
    let digest = crate::digest::Digest::sha256_of(bytes);
    let path = dir.join(format!("blob-{}", digest.hex()));
    fs::write(&path, bytes)?;
    Ok(Blob::file(digest, media_type, bytes.len() as u64, path))
}

/// A layer holding `files`, compressed as asked, written into `dir`.
pub(crate) fn make_layer(
    dir: &Path,
    files: &[(&str, &[u8])],
    compression: Compression,
) -> Result<Layer> {
    let tar = tar_bytes(files)?;
    let diff_id = sha256_digest(&tar);
    let (bytes, media_type) = match compression {
        Compression::None => (tar, "application/vnd.oci.image.layer.v1.tar"),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&tar)?;
            (
                encoder.finish()?,
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        }
        Compression::Zstd => (
            zstd::encode_all(tar.as_slice(), 3)?,
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    };
    Ok(Layer {
        blob: write_blob(dir, &bytes, media_type)?,
        diff_id,
    })
}

/// An OCI image for `linux/<arch>` with these layers: config and manifest written into `dir`.
pub(crate) fn make_image(dir: &Path, arch: &str, layers: &[Layer]) -> Result<Image> {
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
    });
    let config = write_blob(
        dir,
        &serde_json::to_vec(&config)?,
        "application/vnd.oci.image.config.v1+json",
    )?;
    let descriptor = |blob: &Blob| json!({"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor(&config),
        "layers": layers.iter().map(|l| descriptor(&l.blob)).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest)?;
    Ok(Image {
        manifest: Manifest::sha256(manifest, "application/vnd.oci.image.manifest.v1+json"),
        config,
        layers: layers.iter().map(|l| l.blob.clone()).collect(),
    })
}

/// Runs a tool to completion; its stdout, or an error with its stderr.
pub(crate) fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        bail!(
            "{program} {} failed ({}): {}",
            shown.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
