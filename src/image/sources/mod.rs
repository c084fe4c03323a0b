//! Turning local `out` sources into an [`ImageOrIndex`]: a docker-save tarball (`load_file`,
//! D's `load`), a rootfs tarball (`import_file`), and R's `image` (an OCI layout tarball, a
//! docker-save tarball or an OCI layout directory, named by a path or glob), and `images`
//! (several of those, one per platform, assembled into one index).
//!
//! Every layer is verified on the way: against the config's `diff_ids` for docker-save
//! archives, against its descriptor's digest and size for OCI layouts. Uncompressed layers
//! are compressed with [`compress_layer`] as `params.compression` says (gzip by default;
//! the manifest is rebuilt with the compressed media types);
//! compressed ones are used as they are, referenced where they lie when that is a plain
//! file, else copied into `scratch`. Nothing holds a layer in memory.
//!
//! Manifests built here are serialised from structs in the spec's field order, so the same
//! input always gives the same digest; manifests that need no change keep their bytes.
//!
//! [`compress_layer`]: super::compress::compress_layer

mod assemble;
mod docker;
mod oci;
mod path;
mod rootfs;

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::image::hashing::{HashingReader, TeeReader};
use anyhow::{bail, Context, Result};

use super::compress::{self as codec, Encoding, LayerOptions};
use super::json;
use super::model::{Blob, Digest, Image, ImageOrIndex};

/// `load_file` (with `load_repository`/`load_tag`: `want` = `Some("repo:tag")`): a
/// docker-save tarball. `want` picks the image; `None` takes the only one (several → an
/// error listing their tags). The result is a Docker v2 schema 2 manifest over the
/// archive's config bytes, as `docker push` would push it.
pub fn from_docker_archive(
    path: &Path,
    want: Option<&str>,
    scratch: &Path,
) -> Result<ImageOrIndex> {
    from_docker_archive_with(path, want, scratch, &LayerOptions::default())
}

/// [`from_docker_archive`] compressing as `options` say, and using the layers it lists as
/// known instead of compressing them.
pub fn from_docker_archive_with(
    path: &Path,
    want: Option<&str>,
    scratch: &Path,
    options: &LayerOptions,
) -> Result<ImageOrIndex> {
    docker::from_archive(path, want, scratch, options)
        .with_context(|| format!("load_file {}", path.display()))
}

/// The config bytes of the image `want` picks in a docker-save tarball (as
/// [`from_docker_archive`] picks it), without reading any layer.
pub fn docker_archive_config(path: &Path, want: Option<&str>) -> Result<Vec<u8>> {
    super::archive::read_docker_archive(path, want)?
        .config_bytes()
        .with_context(|| format!("load_file {}", path.display()))
}

/// The docker-save tarball of D's `load` directory and the image name it picks.
pub fn load_dir_archive(dir: &Path) -> Result<(PathBuf, Option<String>)> {
    docker::load_dir_archive(dir).with_context(|| format!("load {}", dir.display()))
}

/// D's `load`: the directory `in` wrote with `save: true`. Reads `<dir>/image`, picking
/// the image named by `<dir>/repository` and `<dir>/tag` when they are there.
pub fn from_load_dir(dir: &Path, scratch: &Path) -> Result<ImageOrIndex> {
    from_load_dir_with(dir, scratch, &LayerOptions::default())
}

/// [`from_load_dir`] with `options` (see [`from_docker_archive_with`]).
pub fn from_load_dir_with(
    dir: &Path,
    scratch: &Path,
    options: &LayerOptions,
) -> Result<ImageOrIndex> {
    docker::from_load_dir(dir, scratch, options).with_context(|| format!("load {}", dir.display()))
}

/// `import_file`: a rootfs tarball (plain tar, gzip or zstd, told by its first bytes)
/// becomes a one-layer OCI image for `linux` and the host's architecture, created now,
/// with the default `PATH`. A gzip tarball is the layer as it is; others are compressed.
pub fn from_rootfs_tarball(path: &Path, scratch: &Path) -> Result<ImageOrIndex> {
    from_rootfs_tarball_with(path, scratch, Encoding::default())
}

/// [`from_rootfs_tarball`] compressing the layer as `encoding` says.
pub fn from_rootfs_tarball_with(
    path: &Path,
    scratch: &Path,
    encoding: Encoding,
) -> Result<ImageOrIndex> {
    rootfs::from_tarball(path, scratch, encoding)
        .with_context(|| format!("import_file {}", path.display()))
}

/// R's `image`: `pattern`, a path or glob (relative to `base` unless absolute), must
/// match exactly one path: an OCI layout tarball, a docker-save tarball or an OCI layout
/// directory, told apart by content.
pub fn from_image_path(base: &Path, pattern: &str, scratch: &Path) -> Result<ImageOrIndex> {
    from_image_path_with(base, pattern, scratch, &LayerOptions::default())
}

/// [`from_image_path`] with `options` (see [`from_docker_archive_with`]).
pub fn from_image_path_with(
    base: &Path,
    pattern: &str,
    scratch: &Path,
    options: &LayerOptions,
) -> Result<ImageOrIndex> {
    path::from_image_path(base, pattern, scratch, options)
        .with_context(|| format!("image {pattern}"))
}

/// `images`: each pattern (a path or glob, relative to `base` unless absolute; a glob's
/// matches sorted) names single-platform images, read as [`from_image_path`] reads one;
/// the result is an [`ImageOrIndex::Index`], an OCI index listing them in that order, each
/// with the platform its config names. An input holding several images, a pattern that
/// matches nothing and two images for one platform are errors.
pub fn from_images(base: &Path, patterns: &[String], scratch: &Path) -> Result<ImageOrIndex> {
    assemble::assemble(base, patterns, scratch).context("images")
}

/// An OCI layout directory. `ref_name` picks the `index.json` entry; `None` takes the one
/// R's `single-image-digest` marker names, else the only one, else every entry (all image
/// manifests, each platform once) as one index: `index.json` itself, with platforms
/// missing from it taken from the images' configs. An index becomes [`ImageOrIndex::Index`]
/// with every child's image (a nested index is an error); a manifest becomes
/// [`ImageOrIndex::Image`]. Manifests and indexes that need no change keep their bytes and
/// digests.
pub fn from_oci_layout(dir: &Path, ref_name: Option<&str>, scratch: &Path) -> Result<ImageOrIndex> {
    oci::from_layout(dir, ref_name, scratch, Encoding::default())
}

/// The verified file of `blob`: its own file, or, for a layer still inside its archive
/// ([`crate::push::BlobSource::Member`]), a copy in `scratch` checked against the digest
/// its name gave and the config's diff_id (the caller removes a copy when done with it).
/// A blob on a registry is an error.
pub fn materialise(blob: &Blob, scratch: &Path) -> Result<PathBuf> {
    docker::materialise(blob, scratch)
}

/// `image` with some of its layers replaced (`(index, blob)`): the manifest is rebuilt with
/// their descriptors, in the spec's field order, so it gets a new digest.
pub fn replace_layers(mut image: Image, replacements: Vec<(usize, Blob)>) -> Result<Image> {
    let mut manifest: json::ManifestJson =
        serde_json::from_slice(&image.manifest.raw).context("reading the image manifest")?;
    for (i, blob) in replacements {
        let (Some(descriptor), Some(layer)) = (manifest.layers.get_mut(i), image.layers.get_mut(i))
        else {
            bail!("the image has no layer {i}");
        };
        *descriptor = json::DescriptorJson::of(&blob);
        *layer = blob;
    }
    let (raw, digest) = json::to_bytes(&manifest)?;
    image.manifest.raw = raw;
    image.manifest.digest = digest;
    Ok(image)
}

/// A path in `scratch` no other call of this process uses: `<scratch>/<what>-<pid>-<n>`.
fn scratch_path(scratch: &Path, what: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    scratch.join(format!("{what}-{}-{n}", std::process::id()))
}

/// Renames a finished temporary file to its blob name in `scratch` (`sha256-<hex>`, as
/// [`super::archive::write_bytes_blob`] names them).
fn settle(tmp: &Path, scratch: &Path, digest: &Digest) -> Result<PathBuf> {
    let dest = scratch.join(digest.file_name());
    if let Err(e) = fs::rename(tmp, &dest) {
        let _ = fs::remove_file(tmp);
        return Err(e).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()));
    }
    Ok(dest)
}

/// A gzip layer made from an uncompressed stream, and the stream's digest.
struct GzipLayer {
    blob: Blob,
    diff_id: String,
}

/// Compresses an uncompressed layer stream into `scratch` as a `media_type` blob, as
/// `encoding` says.
fn encode_layer(
    input: impl Read,
    scratch: &Path,
    encoding: Encoding,
    media_type: &str,
) -> Result<GzipLayer> {
    let tmp = scratch_path(scratch, "layer");
    let compressed = codec::compress_layer(input, &tmp, encoding)?;
    let digest = Digest::parse(&compressed.digest)?;
    let path = settle(&tmp, scratch, &digest)?;
    Ok(GzipLayer {
        blob: Blob::file(digest, media_type, compressed.size, path),
        diff_id: compressed.diff_id,
    })
}

/// What a pass over a blob found: its digest (in the algorithm asked for), its size and
/// its first bytes.
struct Scanned {
    digest: Digest,
    size: u64,
    head: Vec<u8>,
}

/// Reads `reader` to the end, hashing it in `like`'s algorithm, and, when `copy_to` is
/// given, writing it there.
fn scan(reader: impl Read, like: &Digest, copy_to: Option<&Path>) -> Result<Scanned> {
    let hasher = like.hasher();
    let out: Box<dyn Write> = match copy_to {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(io::sink()),
    };
    let input = BufReader::with_capacity(1 << 20, reader);
    let mut hashed = HashingReader::with_hasher(TeeReader::new(input, out), hasher);
    let mut head = Vec::with_capacity(8);
    (&mut hashed).take(8).read_to_end(&mut head)?;
    let (tee, digest, size) = hashed.finish_inner()?;
    tee.into_out().flush()?;
    let digest = Digest::parse(&digest)?;
    Ok(Scanned { digest, size, head })
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256, Sha512};

    #[test]
    fn scan_hashes_copies_and_keeps_the_head() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let copy = dir.path().join("copy");
        let digest = Digest::sha256_of(b"");
        let scanned = scan(&b"hello world"[..], &digest, Some(&copy))?;
        assert_eq!(
            scanned.digest,
            format!("sha256:{}", hex::encode(Sha256::digest(b"hello world")))
        );
        assert_eq!(
            (scanned.size, scanned.head.as_slice()),
            (11, &b"hello wo"[..])
        );
        assert_eq!(fs::read(&copy)?, b"hello world");
        let sha512_like = Digest::parse(&format!("sha512:{}", "0".repeat(128)))?;
        let sha512 = scan(&b""[..], &sha512_like, None)?.digest;
        assert_eq!(
            sha512,
            format!("sha512:{}", hex::encode(Sha512::digest(b"")))
        );
        Ok(())
    }

    #[test]
    fn scratch_paths_are_unique() {
        let a = scratch_path(Path::new("/s"), "layer");
        let b = scratch_path(Path::new("/s"), "layer");
        assert_ne!(a, b);
    }
}
