//! `import_file`: a root filesystem tarball becomes a one-layer OCI image, as
//! `docker import` makes one. A gzip tarball is the layer as it is (referenced where it
//! lies); a plain or zstd one is compressed with gzip into scratch.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use flate2::bufread::MultiGzDecoder;
use serde::Serialize;

use super::encode_layer;
use crate::image::archive::write_bytes_blob;
use crate::image::compress::Encoding;
use crate::image::compression::{self, Compression};
use crate::image::hashing::HashingReader;
use crate::image::json::{self, DescriptorJson, ManifestJson};
use crate::image::manifest::{PlatformSpec, OCI_MANIFEST};
use crate::image::model::{Blob, Digest, Image, ImageOrIndex, Manifest};

/// OCI's image config media type.
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI's gzip layer media type.
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The `PATH` Docker gives an image that sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// A tar header block.
const BLOCK: usize = 512;

/// The image config written for an imported rootfs, fields in the spec's order.
#[derive(Serialize)]
struct ImportConfig<'a> {
    created: &'a str,
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    config: RuntimeConfig<'a>,
    rootfs: RootFs<'a>,
    history: [History<'a>; 1],
}

#[derive(Serialize)]
struct RuntimeConfig<'a> {
    #[serde(rename = "Env")]
    env: [&'a str; 1],
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    diff_ids: [&'a str; 1],
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
    created_by: &'a str,
}

/// See [`super::from_rootfs_tarball`].
pub(super) fn from_tarball(
    path: &Path,
    scratch: &Path,
    encoding: Encoding,
) -> Result<ImageOrIndex> {
    let compression = probe(path)?;
    let open = || File::open(path).with_context(|| format!("opening {}", path.display()));
    let (layer, diff_id) = match compression {
        Compression::Gzip => keep_gzip(path)?,
        Compression::None => {
            let gzip = encode_layer(open()?, scratch, encoding, encoding.oci_media_type())?;
            (gzip.blob, gzip.diff_id)
        }
        Compression::Zstd => {
            let plain = compression::decompress(BufReader::new(open()?), Compression::Zstd)?;
            let gzip = encode_layer(plain, scratch, encoding, encoding.oci_media_type())?;
            (gzip.blob, gzip.diff_id)
        }
    };

    let created = rfc3339(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs());
    let platform = PlatformSpec::host();
    let config = ImportConfig {
        created: &created,
        architecture: &platform.architecture,
        os: &platform.os,
        variant: platform.variant.as_deref(),
        config: RuntimeConfig {
            env: [DEFAULT_PATH],
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: [&diff_id],
        },
        history: [History {
            created: &created,
            created_by: "image-resource: import_file",
        }],
    };
    let config = write_bytes_blob(scratch, &serde_json::to_vec(&config)?, OCI_CONFIG)?;
    let (raw, digest) = json::to_bytes(&ManifestJson {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: DescriptorJson::of(&config),
        layers: vec![DescriptorJson::of(&layer)],
        subject: None,
        annotations: None,
    })?;
    Ok(ImageOrIndex::Image(Image {
        manifest: Manifest {
            raw,
            digest,
            media_type: OCI_MANIFEST.to_string(),
        },
        config,
        layers: vec![layer],
    }))
}

/// How the tarball is compressed; an error unless it starts with a tar header (or an
/// end-of-archive block) once decompressed.
fn probe(path: &Path) -> Result<Compression> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("it is not a regular file");
    }
    let mut reader =
        BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?);
    let head = io::BufRead::fill_buf(&mut reader)
        .with_context(|| format!("reading {}", path.display()))?;
    let compression = compression::sniff(head);
    let mut block = Vec::with_capacity(BLOCK);
    let read = compression::decompress(reader, compression)
        .and_then(|plain| plain.take(BLOCK as u64).read_to_end(&mut block));
    let what = compression
        .name()
        .map_or(String::new(), |name| format!(" {name}"));
    if let Err(e) = read {
        bail!("it is not a tarball: its{what} data cannot be read ({e})");
    }
    if !is_tar_block(&block) {
        bail!(
            "it is not a tarball (plain tar, gzip or zstd): its{what} content does not start \
             with a tar header"
        );
    }
    Ok(compression)
}

/// Whether `block` is a tar header with a valid checksum, or the all-zero block that ends
/// (here: makes up) an empty archive.
fn is_tar_block(block: &[u8]) -> bool {
    if block.len() < BLOCK {
        return false;
    }
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let Ok(stored) = tar::Header::from_byte_slice(&block[..BLOCK]).cksum() else {
        return false;
    };
    let unsigned: u32 = block[..BLOCK]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    // Some old tars summed signed bytes.
    let signed: i64 = block[..BLOCK]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    stored == unsigned || i64::from(stored) == signed
}

/// A gzip tarball as the layer, where it lies: one pass hashes the file and its content.
fn keep_gzip(path: &Path) -> Result<(Blob, String)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut compressed = HashingReader::new(file);
    let (diff_id, _) = HashingReader::new(MultiGzDecoder::new(BufReader::new(&mut compressed)))
        .finish()
        .with_context(|| format!("decompressing {}", path.display()))?;
    let (digest, size) = compressed
        .finish()
        .with_context(|| format!("reading {}", path.display()))?;
    let blob = Blob::file(Digest::parse(&digest)?, OCI_GZIP, size, path);
    Ok((blob, diff_id))
}

/// `seconds` since the epoch as RFC 3339 in UTC: `2006-01-02T15:04:05Z`.
fn rfc3339(seconds: u64) -> String {
    let (year, month, day) = crate::time::civil_from_days(seconds / 86_400);
    let rest = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::io::Write;

    use serde_json::Value;

    use super::super::test_support::{expect_err, layout_of, plain_layer};
    use super::*;
    use crate::image::archive::test_support::{run, sha256_digest, sha256_file};
    use crate::image::sources::from_rootfs_tarball;

    fn rootfs_tar() -> Result<Vec<u8>> {
        plain_layer(&[
            ("etc/os-release", b"ID=test\n"),
            ("bin/hello", b"#!/bin/sh\n"),
        ])
    }

    fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes)?;
        Ok(encoder.finish()?)
    }

    /// Imports `bytes` written as `name`, checks the image, and unpacks it with umoci.
    fn import(name: &str, bytes: &[u8], tar: &[u8]) -> Result<Image> {
        let dir = tempfile::tempdir()?;
        let input = dir.path().join(name);
        fs::write(&input, bytes)?;
        let scratch = tempfile::tempdir()?;
        let ImageOrIndex::Image(image) = from_rootfs_tarball(&input, scratch.path())? else {
            bail!("an index");
        };
        assert_eq!(image.layers.len(), 1);
        let layer = &image.layers[0];
        assert_eq!(layer.media_type, OCI_GZIP);
        assert_eq!(sha256_file(layer.path()?)?, layer.digest);
        assert_eq!(fs::metadata(layer.path()?)?.len(), layer.size);
        assert_eq!(image.manifest.digest, sha256_digest(&image.manifest.raw));

        let config: Value = serde_json::from_slice(&fs::read(image.config.path()?)?)?;
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256_digest(tar));
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], PlatformSpec::host().architecture);
        assert_eq!(config["config"]["Env"][0], DEFAULT_PATH);
        assert_eq!(config["history"].as_array().map(Vec::len), Some(1));
        let created = config["created"].as_str().unwrap_or_default();
        assert!(
            created.starts_with("20") && created.ends_with('Z'),
            "{created}"
        );

        // Go (umoci) reads the layer and the manifest.
        let layout = layout_of(dir.path(), &image)?;
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
        assert_eq!(
            fs::read(bundle.join("rootfs/etc/os-release"))?,
            b"ID=test\n"
        );
        Ok(image)
    }

    #[test]
    fn plain_gzip_and_zstd_tarballs() -> Result<()> {
        let tar = rootfs_tar()?;
        let plain = import("rootfs.tar", &tar, &tar)?;
        let zstd = import("rootfs.tar.zst", &zstd::encode_all(&tar[..], 3)?, &tar)?;
        // Compressed by us from the same content: the same layer.
        assert_eq!(plain.layers[0].digest, zstd.layers[0].digest);

        let gz = gzip(&tar)?;
        let kept = import("rootfs.tgz", &gz, &tar)?;
        assert_eq!(kept.layers[0].digest, sha256_digest(&gz));
        assert!(kept.layers[0].path()?.ends_with("rootfs.tgz"));
        Ok(())
    }

    #[test]
    fn not_a_tarball_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let scratch = tempfile::tempdir()?;
        for (name, bytes) in [
            ("notes.txt", b"just some text\n".repeat(100)),
            ("empty", Vec::new()),
            ("text.gz", gzip(&b"gzip text\n".repeat(100))?),
            ("broken.gz", vec![0x1f, 0x8b, 8, 0, 1, 2, 3]),
        ] {
            let path = dir.path().join(name);
            fs::write(&path, &bytes)?;
            let err = expect_err(from_rootfs_tarball(&path, scratch.path()))?;
            assert!(err.contains("import_file") && err.contains(name), "{err}");
            assert!(err.contains("not a tarball"), "{err}");
        }
        let err = expect_err(from_rootfs_tarball(
            &dir.path().join("nope"),
            scratch.path(),
        ))?;
        assert!(err.contains("import_file") && err.contains("nope"), "{err}");
        assert_eq!(fs::read_dir(scratch.path())?.count(), 0);
        Ok(())
    }

    #[test]
    fn empty_tarball_is_an_empty_layer() -> Result<()> {
        let tar = vec![0u8; 1024];
        let dir = tempfile::tempdir()?;
        let input = dir.path().join("empty.tar");
        fs::write(&input, &tar)?;
        let scratch = tempfile::tempdir()?;
        let pushable = from_rootfs_tarball(&input, scratch.path())?;
        assert_eq!(pushable.images()[0].layers.len(), 1);
        Ok(())
    }

    #[test]
    fn tar_block_checks() -> Result<()> {
        let tar = rootfs_tar()?;
        assert!(is_tar_block(&tar[..BLOCK]));
        let mut bad = tar[..BLOCK].to_vec();
        bad[0] ^= 1;
        assert!(!is_tar_block(&bad));
        assert!(is_tar_block(&[0; BLOCK]));
        assert!(!is_tar_block(&[0; 100]));
        Ok(())
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
