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

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use super::{commit, digest_parts, open_blob, tmp_sibling, BlobFile, MAX_JSON_BYTES};

/// Media type of an OCI image index (`index.json` itself is one).
const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation that names an entry of `index.json` (`oci:<dir>:<ref>`).
const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
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
    pub manifests: Vec<TopDescriptor>,
}

/// One descriptor of `index.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopDescriptor {
    /// The media type of the manifest or index it points at.
    pub media_type: String,
    /// Its digest; the blob must be in the layout.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// The `org.opencontainers.image.ref.name` annotation (a tag, for `oci:<dir>:<ref>`).
    pub ref_name: Option<String>,
    /// The platform object, as JSON, when given.
    pub platform: Option<serde_json::Value>,
}

/// `oci-layout`, as written and read.
#[derive(Debug, Serialize, Deserialize)]
struct LayoutJson {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

/// `index.json`, as written and read.
#[derive(Debug, Serialize, Deserialize)]
struct IndexJson {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<DescriptorJson>,
}

/// A descriptor, fields in the order of the image-spec's Go struct (and skopeo's output).
#[derive(Debug, Serialize, Deserialize)]
struct DescriptorJson {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<serde_json::Value>,
}

impl From<&TopDescriptor> for DescriptorJson {
    fn from(d: &TopDescriptor) -> Self {
        DescriptorJson {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
            annotations: d
                .ref_name
                .as_ref()
                .map(|name| BTreeMap::from([(REF_NAME_ANNOTATION.to_string(), name.clone())])),
            platform: d.platform.clone(),
        }
    }
}

impl From<DescriptorJson> for TopDescriptor {
    fn from(d: DescriptorJson) -> Self {
        TopDescriptor {
            ref_name: d
                .annotations
                .and_then(|mut a| a.remove(REF_NAME_ANNOTATION)),
            media_type: d.media_type,
            digest: d.digest,
            size: d.size,
            platform: d.platform,
        }
    }
}

/// Writes an OCI image layout at `dir`: every blob of `blobs` (hard-linked from its file
/// when on the same filesystem, else copied) and an `index.json` listing `index`. Every
/// descriptor of `index` must be among `blobs`. When `index` is one image manifest,
/// `single-image-digest` names it, as R writes it. Works in `<dir>.tmp` (which must not
/// exist) and renames it at the end.
pub fn write_oci_layout(dir: &Path, index: &OciIndexSpec, blobs: &[BlobFile]) -> Result<()> {
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

fn write_layout(tmp: &Path, index: &OciIndexSpec, blobs: &[BlobFile]) -> Result<()> {
    let by_digest: HashMap<&str, &BlobFile> =
        blobs.iter().map(|b| (b.digest.as_str(), b)).collect();
    for top in &index.manifests {
        let blob = by_digest.get(top.digest.as_str()).ok_or_else(|| {
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
        manifests: index.manifests.iter().map(DescriptorJson::from).collect(),
    };
    write_file(&tmp.join(INDEX_FILE), &serde_json::to_vec(&index_json)?)?;
    if let [only] = index.manifests.as_slice() {
        if IMAGE_MANIFEST_MEDIA_TYPES.contains(&only.media_type.as_str()) {
            write_file(&tmp.join(SINGLE_IMAGE_DIGEST_FILE), only.digest.as_bytes())?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Puts a blob at `blobs/<algorithm>/<hex>` under `root`: a hard link to its file, or a
/// streamed copy when linking fails (another filesystem, or the file is not a plain file).
fn place_blob(root: &Path, blob: &BlobFile) -> Result<()> {
    let (algorithm, hex) = digest_parts(&blob.digest)?;
    let algorithm_dir = root.join("blobs").join(algorithm);
    fs::create_dir_all(&algorithm_dir)
        .with_context(|| format!("creating {}", algorithm_dir.display()))?;
    let dest = algorithm_dir.join(hex);
    if fs::symlink_metadata(&dest).is_ok() {
        return Ok(()); // the same blob, listed twice
    }
    drop(open_blob(blob)?); // exists and has the right size
    let plain_file = fs::symlink_metadata(&blob.path).is_ok_and(|m| m.is_file());
    if plain_file && fs::hard_link(&blob.path, &dest).is_ok() {
        return Ok(());
    }
    copy_blob(blob, &dest)
}

fn copy_blob(blob: &BlobFile, dest: &Path) -> Result<()> {
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
pub fn write_bytes_blob(dir: &Path, bytes: &[u8], media_type: &str) -> Result<BlobFile> {
    let hex = hex::encode(Sha256::digest(bytes));
    let path = dir.join(format!("sha256-{hex}"));
    write_file(&path, bytes)?;
    Ok(BlobFile {
        digest: format!("sha256:{hex}"),
        media_type: media_type.to_string(),
        size: bytes.len() as u64,
        path,
        deferred: None,
    })
}

/// An OCI image layout opened for reading: what `index.json` lists, and its blobs.
#[derive(Debug, Clone)]
pub struct OciLayout {
    dir: PathBuf,
    manifests: Vec<TopDescriptor>,
}

impl OciLayout {
    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The descriptors of `index.json`, in order.
    pub fn manifests(&self) -> &[TopDescriptor] {
        &self.manifests
    }

    /// The descriptor named `ref_name`, or the only one when `ref_name` is `None`.
    pub fn select(&self, ref_name: Option<&str>) -> Result<&TopDescriptor> {
        let names = || {
            let names: Vec<&str> = self
                .manifests
                .iter()
                .filter_map(|d| d.ref_name.as_deref())
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
                .find(|d| d.ref_name.as_deref() == Some(want))
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
    pub fn single_image_digest(&self) -> Result<Option<String>> {
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
        digest_parts(&digest)
            .with_context(|| format!("{} does not hold a digest ({digest:?})", path.display()))?;
        Ok(Some(digest))
    }

    /// Where blob `digest` is; an error naming the digest when it is missing.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let (algorithm, hex) = digest_parts(digest)?;
        let path = self.dir.join("blobs").join(algorithm).join(hex);
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
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
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
        let (algorithm, hex) = digest_parts(digest)?;
        let actual = match algorithm {
            "sha512" => hex::encode(Sha512::digest(&bytes)),
            _ => hex::encode(Sha256::digest(&bytes)),
        };
        if actual != hex {
            bail!(
                "blob {digest} in {} has digest {algorithm}:{actual}",
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
            .map(TopDescriptor::from)
            .collect(),
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
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::fs::MetadataExt;

    use serde_json::{json, Value};

    use super::super::test_support::{make_image, make_layer, run, Compression};
    use super::super::LocalImage;
    use super::*;

    /// A layout of one image, named `latest`; returns the image and the layout path.
    fn single_layout(dir: &Path, ref_name: Option<&str>) -> Result<(LocalImage, PathBuf)> {
        let layers = [
            make_layer(dir, &[("hello.txt", b"hello\n")], Compression::Gzip)?,
            make_layer(dir, &[("etc/plain", b"plain\n")], Compression::None)?,
        ];
        let image = make_image(dir, "amd64", &layers)?;
        let manifest = write_bytes_blob(dir, &image.manifest, &image.manifest_media_type)?;
        assert_eq!(manifest.digest, image.manifest_digest);
        let spec = OciIndexSpec {
            manifests: vec![TopDescriptor {
                media_type: manifest.media_type.clone(),
                digest: manifest.digest.clone(),
                size: manifest.size,
                ref_name: ref_name.map(str::to_string),
                platform: None,
            }],
        };
        let mut blobs = vec![manifest, image.config.clone()];
        blobs.extend(image.layers.iter().cloned());
        let layout = dir.join("oci");
        write_oci_layout(&layout, &spec, &blobs)?;
        Ok((image, layout))
    }

    #[test]
    fn single_image_layout_works_with_skopeo_and_umoci() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (image, layout) = single_layout(dir.path(), Some("latest"))?;
        assert!(!dir.path().join("oci.tmp").exists());

        let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
        let want = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX_MEDIA_TYPE,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": image.manifest_digest,
                "size": image.manifest.len(),
                "annotations": {REF_NAME_ANNOTATION: "latest"},
            }],
        });
        assert_eq!(index, want);
        // R's marker: the manifest digest, no newline.
        assert_eq!(
            fs::read_to_string(layout.join(SINGLE_IMAGE_DIGEST_FILE))?,
            image.manifest_digest
        );
        let read = read_oci_layout(&layout)?;
        assert_eq!(
            read.single_image_digest()?.as_deref(),
            Some(image.manifest_digest.as_str())
        );

        let inspect: Value = serde_json::from_str(&run(
            "skopeo",
            &["inspect", &format!("oci:{}:latest", layout.display())],
        )?)?;
        let layer_digests: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(inspect["Layers"], json!(layer_digests));
        assert_eq!(inspect["Digest"], json!(image.manifest_digest));

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
        assert_eq!(fs::read(bundle.join("rootfs/hello.txt"))?, b"hello\n");
        assert_eq!(fs::read(bundle.join("rootfs/etc/plain"))?, b"plain\n");

        // Same filesystem: the layer blob is the downloaded file, linked.
        let (_, hex) = digest_parts(&image.layers[0].digest)?;
        let linked = fs::metadata(layout.join("blobs/sha256").join(hex))?;
        assert_eq!(linked.ino(), fs::metadata(&image.layers[0].path)?.ino());
        Ok(())
    }

    #[test]
    fn index_layout_matches_skopeo_copy_all() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let shared = make_layer(dir.path(), &[("shared", b"both\n")], Compression::Gzip)?;
        let arm = make_layer(dir.path(), &[("arch", b"arm64\n")], Compression::Zstd)?;
        let amd = make_layer(dir.path(), &[("arch", b"amd64\n")], Compression::Gzip)?;
        let images = [
            (
                "amd64",
                make_image(dir.path(), "amd64", &[shared.clone(), amd])?,
            ),
            ("arm64", make_image(dir.path(), "arm64", &[shared, arm])?),
        ];
        let mut blobs = Vec::new();
        let mut entries = Vec::new();
        for (arch, image) in &images {
            let manifest =
                write_bytes_blob(dir.path(), &image.manifest, &image.manifest_media_type)?;
            entries.push(json!({
                "mediaType": manifest.media_type, "digest": manifest.digest, "size": manifest.size,
                "platform": {"architecture": arch, "os": "linux"},
            }));
            blobs.push(manifest);
            blobs.push(image.config.clone());
            blobs.extend(image.layers.iter().cloned());
        }
        let index_bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX_MEDIA_TYPE, "manifests": entries,
        }))?;
        let index_blob = write_bytes_blob(dir.path(), &index_bytes, OCI_INDEX_MEDIA_TYPE)?;
        let spec = OciIndexSpec {
            manifests: vec![TopDescriptor {
                media_type: OCI_INDEX_MEDIA_TYPE.into(),
                digest: index_blob.digest.clone(),
                size: index_blob.size,
                ref_name: Some("1.0".into()),
                platform: None,
            }],
        };
        blobs.push(index_blob.clone());
        let layout = dir.path().join("oci");
        write_oci_layout(&layout, &spec, &blobs)?; // the shared layer is listed twice

        let inspect: Value = serde_json::from_str(&run(
            "skopeo",
            &["inspect", &format!("oci:{}:1.0", layout.display())],
        )?)?;
        assert_eq!(inspect["Architecture"], "amd64");
        let other = dir.path().join("other");
        run(
            "skopeo",
            &[
                "copy".to_string(),
                "--all".to_string(),
                format!("oci:{}:1.0", layout.display()),
                format!("oci:{}:1.0", other.display()),
            ],
        )?;
        // skopeo keeps the index byte for byte and lists it just as we do, except that it
        // leaves out index.json's own mediaType.
        let mut ours: Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
        let theirs: Value = serde_json::from_slice(&fs::read(other.join("index.json"))?)?;
        if let Some(top) = ours.as_object_mut() {
            top.remove("mediaType");
        }
        assert_eq!(ours, theirs);
        let copied = read_oci_layout(&other)?;
        assert_eq!(copied.read_blob(&index_blob.digest)?, index_bytes);

        // Our reader, on our layout; no single-image marker for an index.
        assert!(!layout.join(SINGLE_IMAGE_DIGEST_FILE).exists());
        let read = read_oci_layout(&layout)?;
        assert_eq!(read.single_image_digest()?, None);
        assert_eq!(read.manifests(), spec.manifests.as_slice());
        assert_eq!(read.select(Some("1.0"))?.digest, index_blob.digest);
        assert_eq!(read.select(None)?.digest, index_blob.digest);
        let err = format!("{:#}", read.select(Some("2.0")).err().context("found 2.0")?);
        assert!(err.contains("no image named 2.0; it has 1.0"), "{err}");
        for blob in &blobs {
            assert_eq!(
                fs::read(read.blob_path(&blob.digest)?)?,
                fs::read(&blob.path)?
            );
        }
        Ok(())
    }

    #[test]
    fn layout_without_ref_name_is_read_by_skopeo() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (image, layout) = single_layout(dir.path(), None)?;
        let inspect: Value = serde_json::from_str(&run(
            "skopeo",
            &["inspect", &format!("oci:{}", layout.display())],
        )?)?;
        assert_eq!(inspect["Digest"], json!(image.manifest_digest));
        let read = read_oci_layout(&layout)?;
        assert_eq!(read.select(None)?.ref_name, None);
        assert_eq!(read.read_blob(&image.manifest_digest)?, image.manifest);
        Ok(())
    }

    #[test]
    fn missing_blobs_are_named() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (image, layout) = single_layout(dir.path(), Some("latest"))?;
        let read = read_oci_layout(&layout)?;
        let layer_path = read.blob_path(&image.layers[1].digest)?;
        fs::remove_file(&layer_path)?;
        let err = format!(
            "{:#}",
            read.blob_path(&image.layers[1].digest)
                .err()
                .context("found it")?
        );
        assert!(
            err.contains(&format!("missing blob {}", image.layers[1].digest)),
            "{err}"
        );

        fs::remove_file(read.blob_path(&image.manifest_digest)?)?;
        let err = format!(
            "{:#}",
            read_oci_layout(&layout)
                .err()
                .context("read a broken layout")?
        );
        assert!(
            err.contains(&format!("missing blob {}", image.manifest_digest)),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn corrupt_small_blob_is_detected() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (image, layout) = single_layout(dir.path(), Some("latest"))?;
        let read = read_oci_layout(&layout)?;
        let config_path = read.blob_path(&image.config.digest)?;
        fs::remove_file(&config_path)?; // it is a hard link: do not change the original
        fs::write(&config_path, b"{}")?;
        assert!(read.read_blob(&image.config.digest).is_err());
        Ok(())
    }

    #[test]
    fn index_must_list_given_blobs() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let blob = write_bytes_blob(dir.path(), b"{}", "application/json")?;
        let spec = |digest: &str, size| OciIndexSpec {
            manifests: vec![TopDescriptor {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: digest.into(),
                size,
                ref_name: None,
                platform: None,
            }],
        };
        let layout = dir.path().join("oci");
        let other = format!("sha256:{}", "0".repeat(64));
        let err = format!(
            "{:#}",
            write_oci_layout(&layout, &spec(&other, 2), std::slice::from_ref(&blob))
                .err()
                .context("wrote")?
        );
        assert!(err.contains(&format!("would list {other}")), "{err}");
        assert!(
            write_oci_layout(&layout, &spec(&blob.digest, 3), std::slice::from_ref(&blob)).is_err()
        );
        assert!(!layout.exists() && !dir.path().join("oci.tmp").exists());

        fs::create_dir(dir.path().join("oci.tmp"))?;
        let err = format!(
            "{:#}",
            write_oci_layout(&layout, &spec(&blob.digest, 2), &[blob])
                .err()
                .context("wrote")?
        );
        assert!(err.contains("already exists"), "{err}");
        Ok(())
    }

    #[test]
    fn blobs_behind_symlinks_are_copied() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut blob = write_bytes_blob(dir.path(), b"config", "application/json")?;
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&blob.path, &link)?;
        blob.path = link;
        let root = dir.path().join("root");
        fs::create_dir(&root)?;
        place_blob(&root, &blob)?;
        let (_, hex) = digest_parts(&blob.digest)?;
        let placed = root.join("blobs/sha256").join(hex);
        assert!(fs::symlink_metadata(&placed)?.is_file());
        assert_eq!(fs::read(&placed)?, b"config");

        // And a plain copy, as when the layout is on another filesystem.
        let dest = dir.path().join("copy");
        copy_blob(&blob, &dest)?;
        assert_eq!(fs::read(&dest)?, b"config");
        Ok(())
    }
}
