//! docker-save tarballs (`load_file`, D's `load`): each layer is read straight out of the
//! tarball, checked against the config's `diff_ids`, and compressed (or, when it is already
//! compressed, copied) into scratch; the manifest is what `docker push` would push.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{encode_layer, scratch_path, settle};
use crate::image::archive::{
    open_member, read_docker_archive, write_bytes_blob, ArchiveLayer, DockerArchive,
};
use crate::image::compress::{Encoding, LayerOptions};
use crate::image::compression::{self, Compression};
use crate::image::hashing::{HashingReader, TeeReader};
use crate::image::json::{self, DockerManifest};
use crate::image::manifest::{DOCKER_MANIFEST, OCI_MANIFEST};
use crate::image::model::{Blob, Digest, Image, ImageOrIndex, Manifest};
use crate::image::reuse;
use crate::push::BlobSource;

/// Docker's image config media type.
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker's gzip layer media type.
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// OCI's image config media type.
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI's gzip layer media type.
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker has no zstd layer type of its own; it pushes OCI's.
const OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// See [`super::from_docker_archive`].
pub(super) fn from_archive(
    path: &Path,
    want: Option<&str>,
    scratch: &Path,
    options: &LayerOptions,
) -> Result<ImageOrIndex> {
    let archive = read_docker_archive(path, want)?;
    let config_bytes = archive.config_bytes()?;
    let diff_ids = json::config_diff_ids(&config_bytes).with_context(|| {
        format!(
            "{}: its config {} has no valid rootfs.diff_ids",
            path.display(),
            archive.config().name
        )
    })?;
    if diff_ids.len() != archive.layers().len() {
        bail!(
            "{} lists {} layers, but its config {} has {} rootfs.diff_ids",
            path.display(),
            archive.layers().len(),
            archive.config().name,
            diff_ids.len()
        );
    }
    let config = write_bytes_blob(scratch, &config_bytes, DOCKER_CONFIG)?;
    let mut slots: Vec<Option<Blob>> = vec![None; diff_ids.len()];
    let mut to_make = Vec::new();
    for (i, want_diff_id) in diff_ids.iter().enumerate() {
        slots[i] = match defer_layer(&archive, i, want_diff_id)? {
            Some(deferred) => Some(deferred),
            None => reuse::known_layer(&archive, i, want_diff_id, options)?,
        };
        if slots[i].is_none() {
            to_make.push(i);
        }
    }
    for i in making_order(&archive, to_make)? {
        let (blob, diff_id) = load_layer(&archive, i, scratch, options.encoding)?;
        let what = layer_name(i, &archive.layers()[i].name, path);
        check_diff_id(blob.path()?, &what, &diff_id, &diff_ids[i])?;
        if let Some(ready) = &options.ready {
            // Nobody listening only means no upload ahead.
            let _ = ready.send(blob.clone());
        }
        slots[i] = Some(blob);
    }
    let mut layers = Vec::with_capacity(slots.len());
    for (i, slot) in slots.into_iter().enumerate() {
        layers.push(slot.with_context(|| format!("layer {i} of {} was not made", path.display()))?);
    }
    // Docker's schema 2 has no zstd layer type (skopeo refuses OCI's there): with zstd
    // layers the manifest is OCI's, as `docker push` makes it then.
    let mut config = config;
    let media_type = if layers.iter().any(|l| l.media_type == OCI_ZSTD) {
        config.media_type = OCI_CONFIG.to_string();
        for layer in &mut layers {
            if layer.media_type == DOCKER_GZIP {
                layer.media_type = OCI_GZIP.to_string();
            }
        }
        OCI_MANIFEST
    } else {
        DOCKER_MANIFEST
    };
    let (raw, digest) = json::to_bytes(&DockerManifest {
        schema_version: 2,
        media_type,
        config: (&config).into(),
        layers: layers.iter().map(Into::into).collect(),
    })?;
    Ok(ImageOrIndex::Image(Image {
        manifest: Manifest {
            raw,
            digest,
            media_type: media_type.to_string(),
        },
        config,
        layers,
    }))
}

/// The order to make layers `to_make` in: largest expected output first, so that the last
/// one made (whose upload nothing overlaps) is the smallest to upload. The expected output
/// is the member's size, a third of it unless its first block looks random (compressed
/// members are copied as they are). Only the work is reordered: the manifest keeps the
/// archive's order, and each layer's bytes do not depend on it.
fn making_order(archive: &DockerArchive, to_make: Vec<usize>) -> Result<Vec<usize>> {
    let mut expected = Vec::with_capacity(to_make.len());
    for i in to_make {
        let member = &archive.layers()[i];
        let mut head = Vec::new();
        archive
            .open_layer(i)?
            .take(512 * 1024)
            .read_to_end(&mut head)
            .with_context(|| {
                format!(
                    "reading layer {i} ({}) of {}",
                    member.name,
                    archive.path().display()
                )
            })?;
        let kept = compression::sniff(&head) != Compression::None
            || crate::image::compress::looks_random(&head);
        expected.push((if kept { member.size } else { member.size / 3 }, i));
    }
    // Stable: equal sizes keep the archive's order.
    expected.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(expected.into_iter().map(|(_, i)| i).collect())
}

/// See [`super::from_load_dir`].
pub(super) fn from_load_dir(
    dir: &Path,
    scratch: &Path,
    options: &LayerOptions,
) -> Result<ImageOrIndex> {
    let (image, want) = load_dir_archive(dir)?;
    from_archive(&image, want.as_deref(), scratch, options)
}

/// See [`super::load_dir_archive`].
pub(super) fn load_dir_archive(dir: &Path) -> Result<(PathBuf, Option<String>)> {
    let image = dir.join("image");
    if !image.is_file() {
        bail!(
            "{} has no docker-save tarball `image`: the `get` step that fetched it needs \
             `params: {{save: true}}`",
            dir.display()
        );
    }
    let repository = read_name(&dir.join("repository"))?;
    let tag = read_name(&dir.join("tag"))?;
    let want = match (repository, tag) {
        (Some(repository), Some(tag)) => Some(format!("{repository}:{tag}")),
        (Some(repository), None) => Some(repository),
        (None, _) => None,
    };
    Ok((image, want))
}

/// The trimmed content of a small name file (`repository`, `tag`); `None` when it is
/// missing or empty.
fn read_name(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Fails (removing the copy) unless `found`, the digest of the content of the layer named
/// `what`, is the config's `want`.
fn check_diff_id(copy: &Path, what: &str, found: &str, want: &str) -> Result<()> {
    if found != want {
        let _ = fs::remove_file(copy);
        bail!(
            "{what} does not match its diff_id in the config: its content is {found}, the \
             config says {want}"
        );
    }
    Ok(())
}

/// How errors name layer `i`: `layer 2 (<member>) of <archive>`.
fn layer_name(i: usize, member: &str, archive: &Path) -> String {
    format!("layer {i} ({member}) of {}", archive.display())
}

/// Layer `i` as an [`ArchiveLayer`], when it is compressed and its member name gives its
/// digest: nothing but its first bytes is read now. `None` for any other layer.
fn defer_layer(archive: &DockerArchive, i: usize, diff_id: &str) -> Result<Option<Blob>> {
    let member = &archive.layers()[i];
    let Some(digest) = named_digest(&member.name) else {
        return Ok(None);
    };
    let what = format!(
        "layer {i} ({}) of {}",
        member.name,
        archive.path().display()
    );
    let mut head = Vec::with_capacity(4);
    archive
        .open_layer(i)?
        .take(4)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {what}"))?;
    let (compression, media_type) = match compression::sniff(&head) {
        Compression::None => return Ok(None),
        Compression::Gzip => (Compression::Gzip, DOCKER_GZIP),
        Compression::Zstd => (Compression::Zstd, OCI_ZSTD),
    };
    Ok(Some(Blob {
        digest,
        media_type: media_type.to_string(),
        size: member.size,
        source: BlobSource::Member(Box::new(ArchiveLayer {
            archive: archive.path().to_path_buf(),
            member: member.clone(),
            compression,
            diff_id: diff_id.to_string(),
            what,
        })),
    }))
}

/// The digest a compressed layer's member name states: `<hex>.tar.gz` and `<hex>.tar.zst`
/// (as `in` writes them), `blobs/sha256/<hex>` (Docker 25 and later).
fn named_digest(name: &str) -> Option<Digest> {
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".tar.gz"))
        .or_else(|| name.strip_suffix(".tar.zst"))?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// Copies an [`ArchiveLayer`] out of its archive into `scratch`, checking that its content
/// is what its name and the config say: the verified blob file.
pub(super) fn materialise(blob: &Blob, scratch: &Path) -> Result<PathBuf> {
    let deferred = match &blob.source {
        BlobSource::File(path) => return Ok(path.clone()),
        BlobSource::Member(deferred) => deferred,
        BlobSource::Remote { .. } => bail!(
            "blob {} is in {}, not on disk",
            blob.digest,
            blob.source.describe()
        ),
    };
    let what = || deferred.what.clone();
    let reader =
        BufReader::with_capacity(1 << 20, open_member(&deferred.archive, &deferred.member)?);
    let (copy, diff_id) = copy_compressed(reader, deferred.compression, scratch, &blob.media_type)
        .with_context(what)?;
    let copy_path = copy.path()?.to_path_buf();
    if copy.digest != blob.digest || copy.size != blob.size {
        let _ = fs::remove_file(&copy_path);
        bail!(
            "{}: its name says {} ({} bytes), but its content is {} ({} bytes)",
            deferred.what,
            blob.digest,
            blob.size,
            copy.digest,
            copy.size
        );
    }
    check_diff_id(&copy_path, &deferred.what, &diff_id, &deferred.diff_id)?;
    Ok(copy_path)
}

/// Layer `i` as a blob in scratch, and the digest of its uncompressed content.
fn load_layer(
    archive: &DockerArchive,
    i: usize,
    scratch: &Path,
    encoding: Encoding,
) -> Result<(Blob, String)> {
    let member = &archive.layers()[i].name;
    let what = || format!("layer {i} ({member}) of {}", archive.path().display());
    let mut reader = BufReader::with_capacity(1 << 20, archive.open_layer(i)?);
    let head = reader.fill_buf().with_context(what)?;
    match compression::sniff(head) {
        Compression::None => {
            let gzip = encode_layer(reader, scratch, encoding, encoding.docker_media_type())
                .with_context(what)?;
            Ok((gzip.blob, gzip.diff_id))
        }
        compression => {
            let media_type = match compression {
                Compression::Zstd => OCI_ZSTD,
                _ => DOCKER_GZIP,
            };
            copy_compressed(reader, compression, scratch, media_type).with_context(what)
        }
    }
}

/// Copies a compressed layer into scratch byte for byte while decompressing it, in one
/// pass: the blob, and the digest of its content.
fn copy_compressed(
    reader: impl Read + Send,
    compression: Compression,
    scratch: &Path,
    media_type: &str,
) -> Result<(Blob, String)> {
    let tmp = scratch_path(scratch, "layer");
    let copied = (|| {
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut blob = HashingReader::new(TeeReader::new(
            reader,
            BufWriter::with_capacity(1 << 20, file),
        ));
        let plain = compression::decompress(BufReader::new(&mut blob), compression)?;
        let (diff_id, _) = HashingReader::new(plain)
            .finish()
            .context("decompressing")?;
        // Whatever follows the compressed stream is part of the blob too.
        let (tee, digest, size) = blob.finish_inner()?;
        tee.into_out().flush()?;
        Ok::<_, anyhow::Error>((Digest::parse(&digest)?, size, diff_id))
    })();
    let (digest, size, diff_id) = match copied {
        Ok(found) => found,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let path = settle(&tmp, scratch, &digest)?;
    Ok((Blob::file(digest, media_type, size, path), diff_id))
}

#[cfg(test)]
mod tests;
