//! The [OCI image layout] directory: writing one from blobs on disk, and reading one back.
//!
//! ```text
//! oci-layout                  {"imageLayoutVersion":"1.0.0"}
//! index.json                  {"schemaVersion":2,"mediaType":"<OCI index>","manifests":[...]}
//! blobs/sha256/<hex>          every blob, hard-linked from its file when possible
//! ```
//!
//! For a multi-platform image `index.json` lists one descriptor: the fetched index itself,
//! stored as a blob byte for byte, with the ref name annotation. That is what
//! `skopeo copy --all docker://… oci:<dir>:<ref>` (skopeo 1.9) writes; skopeo omits the
//! top-level `mediaType` of `index.json`, which image-spec 1.1 asks for and we write.
//!
//! For a single image, `index.json` lists its manifest, and the layout also holds
//! `single-image-digest` (the manifest digest, no newline), the marker that
//! concourse/registry-image-resource's `in` writes (`commands/oci_layout.go`, `WriteToPath`)
//! and its `out` reads: without it, R's `out` pushes `index.json` itself as a one-entry
//! index instead of the image. The layout spec allows extra files; other readers ignore it.
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/main/image-layout.md

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{commit, open_blob, tmp_sibling, MAX_JSON_BYTES};
use crate::image::json::{DescriptorJson, IndexJson};
use crate::image::model::{Blob, Descriptor, Digest};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Media type of an OCI image index (`index.json` itself is one).
const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The layout marker file.
const LAYOUT_FILE: &str = "oci-layout";
/// The layout's entry point.
const INDEX_FILE: &str = "index.json";
/// The only layout version there is.
const LAYOUT_VERSION: &str = "1.0.0";
/// R's marker: the digest of the one image a layout holds (see the module doc).
const SINGLE_IMAGE_DIGEST_FILE: &str = "single-image-digest";
/// Media types of image manifests (as opposed to indexes).
const IMAGE_MANIFEST_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// What `index.json` lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OciIndexSpec {
    /// The top-level descriptors: one image manifest, or the fetched index.
    pub manifests: Vec<Descriptor>,
}

/// `oci-layout`, as written and read.
#[derive(Debug, Serialize, Deserialize)]
struct LayoutJson {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

/// Writes an OCI image layout at `dir`: every blob of `blobs` (hard-linked from its file
/// when on the same filesystem, else copied) and an `index.json` listing `index`. Every
/// descriptor of `index` must be among `blobs`. When `index` is one image manifest,
/// `single-image-digest` names it, as R writes it. Works in `<dir>.tmp` (which must not
/// exist) and renames it at the end.
pub fn write_oci_layout(dir: &Path, index: &OciIndexSpec, blobs: &[Blob]) -> Result<()> {
    let tmp = tmp_sibling(dir)?;
    if fs::symlink_metadata(&tmp).is_ok() {
        bail!(
            "writing OCI layout {}: {} already exists (left by an earlier run?); remove it",
            dir.display(),
            tmp.display()
        );
    }
    let written = write_layout(&tmp, index, blobs);
    commit(&tmp, dir, written).with_context(|| format!("writing OCI layout {}", dir.display()))
}

fn write_layout(tmp: &Path, index: &OciIndexSpec, blobs: &[Blob]) -> Result<()> {
    let by_digest: HashMap<&Digest, &Blob> = blobs.iter().map(|b| (&b.digest, b)).collect();
    for top in &index.manifests {
        let blob = by_digest.get(&top.digest).ok_or_else(|| {
            anyhow!(
                "index.json would list {}, but no such blob was given",
                top.digest
            )
        })?;
        if blob.size != top.size {
            bail!(
                "index.json would list {} with size {}, but the blob is {} bytes",
                top.digest,
                top.size,
                blob.size
            );
        }
    }
    fs::create_dir(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for blob in blobs {
        place_blob(tmp, blob)?;
    }
    let layout = LayoutJson {
        image_layout_version: LAYOUT_VERSION.to_string(),
    };
    write_file(&tmp.join(LAYOUT_FILE), &serde_json::to_vec(&layout)?)?;
    let index_json = IndexJson {
        schema_version: 2,
        media_type: Some(OCI_INDEX_MEDIA_TYPE.to_string()),
        artifact_type: None,
        manifests: index.manifests.iter().map(DescriptorJson::from).collect(),
        subject: None,
        annotations: None,
    };
    write_file(&tmp.join(INDEX_FILE), &serde_json::to_vec(&index_json)?)?;
    if let [only] = index.manifests.as_slice() {
        if IMAGE_MANIFEST_MEDIA_TYPES.contains(&only.media_type.as_str()) {
            write_file(
                &tmp.join(SINGLE_IMAGE_DIGEST_FILE),
                only.digest.as_str().as_bytes(),
            )?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Puts a blob at `blobs/<algorithm>/<hex>` under `root`: a hard link to its file, or a
/// streamed copy when linking fails (another filesystem, or the file is not a plain file).
fn place_blob(root: &Path, blob: &Blob) -> Result<()> {
    let dest = blob.digest.layout_path(root);
    if let Some(algorithm_dir) = dest.parent() {
        fs::create_dir_all(algorithm_dir)
            .with_context(|| format!("creating {}", algorithm_dir.display()))?;
    }
    if fs::symlink_metadata(&dest).is_ok() {
        return Ok(()); // the same blob, listed twice
    }
    drop(open_blob(blob)?); // exists and has the right size
    let path = blob.path()?;
    let plain_file = fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
    if plain_file && fs::hard_link(path, &dest).is_ok() {
        return Ok(());
    }
    copy_blob(blob, &dest)
}

fn copy_blob(blob: &Blob, dest: &Path) -> Result<()> {
    let mut source = open_blob(blob)?.take(blob.size);
    let mut out = File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let copied = io::copy(&mut source, &mut out)
        .with_context(|| format!("copying blob {} to {}", blob.digest, dest.display()))?;
    if copied != blob.size {
        bail!(
            "blob {} shrank to {copied} bytes while it was copied",
            blob.digest
        );
    }
    Ok(())
}

/// Writes `bytes` (a manifest, index or config held in memory) to `dir/<algorithm>-<hex>`
/// and describes it as a blob of `media_type`, ready for [`write_oci_layout`]. `dir` is a
/// scratch directory: not the layout, nor its `.tmp`.
pub fn write_bytes_blob(dir: &Path, bytes: &[u8], media_type: &str) -> Result<Blob> {
    let digest = Digest::sha256_of(bytes);
    let path = dir.join(digest.file_name());
    write_file(&path, bytes)?;
    Ok(Blob::file(digest, media_type, bytes.len() as u64, path))
}

/// An OCI image layout opened for reading: what `index.json` lists, and its blobs.
#[derive(Debug, Clone)]
pub struct OciLayout {
    dir: PathBuf,
    manifests: Vec<Descriptor>,
}

impl OciLayout {
    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The descriptors of `index.json`, in order.
    pub fn manifests(&self) -> &[Descriptor] {
        &self.manifests
    }

    /// The descriptor named `ref_name`, or the only one when `ref_name` is `None`.
    pub fn select(&self, ref_name: Option<&str>) -> Result<&Descriptor> {
        let names = || {
            let names: Vec<&str> = self
                .manifests
                .iter()
                .filter_map(Descriptor::ref_name)
                .collect();
            if names.is_empty() {
                "no ref names".to_string()
            } else {
                names.join(", ")
            }
        };
        match (ref_name, self.manifests.as_slice()) {
            (Some(want), all) => all
                .iter()
                .find(|d| d.ref_name() == Some(want))
                .ok_or_else(|| {
                    anyhow!(
                        "OCI layout {} has no image named {want}; it has {}",
                        self.dir.display(),
                        names()
                    )
                }),
            (None, [only]) => Ok(only),
            (None, []) => bail!("OCI layout {} lists no images", self.dir.display()),
            (None, all) => bail!(
                "OCI layout {} lists {} images ({}); say which one to use",
                self.dir.display(),
                all.len(),
                names()
            ),
        }
    }

    /// The digest R's `single-image-digest` marker names, when the layout has one.
    pub fn single_image_digest(&self) -> Result<Option<Digest>> {
        let path = self.dir.join(SINGLE_IMAGE_DIGEST_FILE);
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(file) => file
                .take(1024)
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        };
        let digest = String::from_utf8_lossy(&bytes).trim().to_string();
        let digest = Digest::parse(&digest)
            .with_context(|| format!("{} does not hold a digest ({digest:?})", path.display()))?;
        Ok(Some(digest))
    }

    /// Where blob `digest` is; an error naming the digest when it is missing.
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        let path = digest.layout_path(&self.dir);
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(path),
            Ok(_) => bail!(
                "OCI layout {}: blob {digest} is not a file",
                self.dir.display()
            ),
            Err(e) => Err(e).with_context(|| {
                format!("OCI layout {} is missing blob {digest}", self.dir.display())
            }),
        }
    }

    /// A small blob (manifest, index, config; at most 64 MiB) read into memory and checked
    /// against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let mut bytes = Vec::new();
        File::open(&path)
            .with_context(|| format!("opening {}", path.display()))?
            .take(MAX_JSON_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        if bytes.len() as u64 > MAX_JSON_BYTES {
            bail!("blob {digest} is too large to read into memory");
        }
        let actual = digest.same_algorithm_of(&bytes);
        if actual != *digest {
            bail!(
                "blob {digest} in {} has digest {actual}",
                self.dir.display()
            );
        }
        Ok(bytes)
    }
}

/// Reads the OCI image layout at `dir`: checks `oci-layout`, parses `index.json`, and checks
/// that every blob it lists is there with the size it says.
pub fn read_oci_layout(dir: &Path) -> Result<OciLayout> {
    read(dir).with_context(|| format!("reading OCI layout {}", dir.display()))
}

fn read(dir: &Path) -> Result<OciLayout> {
    let layout: LayoutJson = read_json(&dir.join(LAYOUT_FILE))?;
    if layout.image_layout_version != LAYOUT_VERSION {
        bail!(
            "unsupported imageLayoutVersion {:?}",
            layout.image_layout_version
        );
    }
    let index: IndexJson = read_json(&dir.join(INDEX_FILE))?;
    if index.schema_version != 2 {
        bail!(
            "index.json has schemaVersion {}, not 2",
            index.schema_version
        );
    }
    let found = OciLayout {
        dir: dir.to_path_buf(),
        manifests: index
            .manifests
            .into_iter()
            .map(Descriptor::try_from)
            .collect::<Result<_, _>>()
            .context("index.json")?,
    };
    for top in &found.manifests {
        let path = found.blob_path(&top.digest)?;
        let size = fs::metadata(&path)
            .with_context(|| format!("reading metadata of {}", path.display()))?
            .len();
        if size != top.size {
            bail!(
                "blob {} is {size} bytes, but index.json says {}",
                top.digest,
                top.size
            );
        }
    }
    Ok(found)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
#[path = "oci/tests.rs"]
mod tests;
