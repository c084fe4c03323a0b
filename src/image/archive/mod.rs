//! Local image formats, written from blobs already on disk and read back:
//!
//! - [`write_docker_archive`] / [`read_docker_archive`]: the `docker save` tarball
//!   (`manifest.json`, `<config hex>.json`, one member per layer, `repositories`), which
//!   `docker load` and `skopeo copy docker-archive:` accept.
//! - [`write_oci_layout`] / [`read_oci_layout`]: an [OCI image layout] directory
//!   (`oci-layout`, `index.json`, `blobs/<algorithm>/<hex>`).
//! - [`write_rootfs_tar`]: a flattened root filesystem as one tar, like `docker export`.
//!
//! Nothing here holds a layer in memory: layers are streamed from their files into the
//! tarball, hard-linked into a layout, or read back through a bounded reader. Every writer
//! works on `<name>.tmp` and renames it into place at the end, so a failure never leaves
//! anything that looks complete.
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/main/image-layout.md

mod docker;
mod oci;
mod rootfs_tar;

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::model::Blob;

pub use docker::{
    clean_name, open_member, read_docker_archive, write_docker_archive, ArchiveMember,
    DockerArchive,
};
pub use oci::{read_oci_layout, write_bytes_blob, write_oci_layout, OciIndexSpec, OciLayout};
pub use rootfs_tar::write_rootfs_tar;

/// A compressed layer inside a docker-save archive, known so far by its member name
/// (`<hex>.tar.gz`, `blobs/sha256/<hex>`): not read yet. A registry that already holds a
/// blob of that digest and size makes reading it unnecessary; otherwise it is copied out
/// and checked (digest, size, diff_id) before it is sent (see
/// [`crate::push::BlobSource::Member`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveLayer {
    /// The archive that holds it.
    pub archive: PathBuf,
    /// The member.
    pub member: ArchiveMember,
    /// How it is compressed (from its first bytes).
    pub compression: crate::image::compression::Compression,
    /// The digest of its content, from the image config.
    pub diff_id: String,
    /// How errors name it: `layer 2 (<member>) of <archive>`.
    pub what: String,
}

/// Largest JSON document (manifest, index, config, `manifest.json`) read into memory.
const MAX_JSON_BYTES: u64 = 64 << 20;

/// `<path>.tmp`: where a writer works before renaming its result to `path`.
fn tmp_sibling(path: &Path) -> Result<PathBuf> {
    let Some(name) = path.file_name() else {
        bail!("{} has no file name", path.display());
    };
    let mut tmp_name = OsString::from(name);
    tmp_name.push(".tmp");
    Ok(path.with_file_name(tmp_name))
}

/// Finishes a write to `tmp`: on success renames it to `path`; on failure removes it and
/// returns the failure.
fn commit(tmp: &Path, path: &Path, written: Result<()>) -> Result<()> {
    let renamed = written.and_then(|()| {
        fs::rename(tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    });
    if renamed.is_err() {
        // The first error is the one worth reporting; a failed clean-up adds nothing.
        let _ = remove_any(tmp);
    }
    renamed
}

/// Removes a file or a directory tree, if there is one.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens a blob's file and checks that its length is the blob's size.
fn open_blob(blob: &Blob) -> Result<File> {
    let path = blob.path()?;
    let file = File::open(path)
        .with_context(|| format!("opening blob {} at {}", blob.digest, path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("reading metadata of {}", path.display()))?
        .len();
    if len != blob.size {
        bail!(
            "blob {} at {} is {len} bytes, but its descriptor says {}",
            blob.digest,
            path.display(),
            blob.size
        );
    }
    Ok(file)
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_sibling_appends_tmp() -> Result<()> {
        assert_eq!(
            tmp_sibling(Path::new("/a/image"))?,
            Path::new("/a/image.tmp")
        );
        assert_eq!(tmp_sibling(Path::new("oci"))?, Path::new("oci.tmp"));
        assert!(tmp_sibling(Path::new("/")).is_err());
        Ok(())
    }

    #[test]
    fn commit_removes_tmp_on_failure() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let tmp = dir.path().join("x.tmp");
        fs::write(&tmp, b"half")?;
        let failed = commit(&tmp, &dir.path().join("x"), Err(anyhow::anyhow!("boom")));
        assert!(failed.is_err());
        assert!(!tmp.exists());
        assert!(!dir.path().join("x").exists());
        Ok(())
    }

    #[test]
    fn open_blob_checks_size() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("b");
        fs::write(&path, b"abc")?;
        let mut blob = Blob::file(crate::digest::Digest::sha256_of(b"abc"), "x", 3, path);
        assert!(open_blob(&blob).is_ok());
        blob.size = 4;
        let err = format!("{:#}", open_blob(&blob).err().context("size not checked")?);
        assert!(err.contains("3 bytes"), "{err}");
        Ok(())
    }
}

/// Checks that `file` starts with a tar header (or an empty archive's zero block), so that a
/// file that is not a tarball gets a plain message instead of the tar parser's (which quotes
/// the file's bytes). Leaves the file at offset 0.
pub fn check_tar_start(file: &mut File, path: &Path) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut block = [0u8; 512];
    let mut filled = 0;
    while filled < block.len() {
        match file.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("reading {}", path.display()))?;
    if filled < block.len() {
        bail!(
            "{} is not a tarball: it is only {filled} bytes long",
            path.display()
        );
    }
    if block.iter().all(|b| *b == 0) || tar_checksum_ok(&block) {
        return Ok(());
    }
    bail!(
        "{} is not a tarball: its first 512 bytes are not a tar header",
        path.display()
    )
}

/// The header checksum rule: the sum of all bytes, with the checksum field as spaces, equals
/// the octal number in that field.
fn tar_checksum_ok(block: &[u8; 512]) -> bool {
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    let Ok(claimed) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == claimed
}

#[cfg(test)]
mod start_tests {
    use super::*;

    #[test]
    fn tar_start_detection() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let good = dir.path().join("good.tar");
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_cksum();
        builder
            .append_data(&mut header, "x", &b"x"[..])
            .unwrap_or_else(|e| panic!("{e}"));
        fs::write(
            &good,
            builder.into_inner().unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut file = File::open(&good).unwrap_or_else(|e| panic!("{e}"));
        assert!(check_tar_start(&mut file, &good).is_ok());
        let bad = dir.path().join("bad.tar");
        fs::write(&bad, "{\"not\": \"a tar\"}\n".repeat(100)).unwrap_or_else(|e| panic!("{e}"));
        let mut file = File::open(&bad).unwrap_or_else(|e| panic!("{e}"));
        let err = check_tar_start(&mut file, &bad).unwrap_err().to_string();
        assert!(
            err.contains("not a tarball") && !err.contains("not\""),
            "{err}"
        );
        let short = dir.path().join("short");
        fs::write(&short, "tiny").unwrap_or_else(|e| panic!("{e}"));
        let mut file = File::open(&short).unwrap_or_else(|e| panic!("{e}"));
        assert!(check_tar_start(&mut file, &short)
            .unwrap_err()
            .to_string()
            .contains("4 bytes"));
    }
}
