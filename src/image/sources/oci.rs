//! OCI layouts (R's `image` as a directory, and what builders write) and OCI image
//! tarballs (a tar of a layout, extracted into scratch as it is read).
//!
//! Without a ref name, a layout whose `index.json` lists several image manifests (what R's
//! `in` writes for a multi-platform tag, and what multi-platform builds write) is pushed as
//! one index, as R pushes it: see [`choose`].
//!
//! Every blob is checked against its descriptor (digest and size). Compressed layers are
//! referenced where they lie; uncompressed ones are compressed into scratch and their
//! manifest rebuilt, and an index whose children changed is rebuilt too. Otherwise the
//! manifest and index bytes, and so their digests, stay exactly as they were.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::{encode_layer, scan, scratch_path};
use crate::image::archive::{read_oci_layout, OciLayout};
use crate::image::compress::Encoding;
use crate::image::compression::{self, Compression};
use crate::image::hashing::CountingReader;
use crate::image::json::{self, DescriptorJson};
use crate::image::manifest::{self, Parsed};
use crate::image::model::{self, Blob, Digest, Image, ImageOrIndex, Manifest};

/// Blobs already hashed (while an OCI layout tarball was extracted): digest → size.
type Verified = HashMap<Digest, u64>;

/// Largest `oci-layout`, `index.json` or `single-image-digest` taken from a tarball, and
/// largest `index.json` read.
const MAX_JSON_BYTES: u64 = 64 << 20;

/// See [`super::from_oci_layout`].
pub(super) fn from_layout(
    dir: &Path,
    ref_name: Option<&str>,
    scratch: &Path,
    encoding: Encoding,
) -> Result<ImageOrIndex> {
    let layout = read_oci_layout(dir)?;
    load(&layout, ref_name, scratch, &Verified::new(), encoding)
}

/// An OCI layout tarball: its layout is extracted into scratch (blobs hashed on the way),
/// then loaded like a directory without a ref name (see [`choose`]).
pub(super) fn from_tarball(
    path: &Path,
    scratch: &Path,
    encoding: Encoding,
) -> Result<ImageOrIndex> {
    let dir = scratch_path(scratch, "oci-tarball");
    fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let verified = extract(path, &dir)
        .with_context(|| format!("extracting the OCI layout tarball {}", path.display()))?;
    let layout = read_oci_layout(&dir)
        .with_context(|| format!("{} is not a complete OCI layout tarball", path.display()))?;
    load(&layout, None, scratch, &verified, encoding)
}

/// What `ref_name` names, with every image it covers; without a name, what [`choose`]
/// picks.
fn load(
    layout: &OciLayout,
    ref_name: Option<&str>,
    scratch: &Path,
    verified: &Verified,
    encoding: Encoding,
) -> Result<ImageOrIndex> {
    let mut loader = Loader {
        layout,
        scratch,
        verified,
        encoding,
        layers: HashMap::new(),
    };
    let top = match ref_name {
        Some(_) => layout.select(ref_name)?,
        None => {
            let marker = layout.single_image_digest()?;
            match choose(layout.manifests(), marker.as_ref()).with_context(|| loader.where_())? {
                Choice::One(top) => top,
                Choice::All => return loader.index_json(),
            }
        }
    };
    let raw = loader.read_json_blob(&top.digest, top.size)?;
    match manifest::parse(&top.media_type, &raw)
        .with_context(|| format!("{} in {}", top.digest, loader.where_()))?
    {
        Parsed::Index(_) => {
            let origin = IndexOrigin {
                what: format!("index {}", top.digest),
                digest: top.digest.clone(),
                media_type: top.media_type.clone(),
                is_index_json: false,
            };
            loader.index(&origin, raw)
        }
        Parsed::Manifest(_) => Ok(ImageOrIndex::Image(loader.image(
            &top.media_type,
            raw,
            &top.digest,
        )?)),
    }
}

/// What a layout read without a ref name pushes.
#[derive(Debug, PartialEq)]
enum Choice<'a> {
    /// One entry of `index.json`: an image, or an index.
    One(&'a model::Descriptor),
    /// Every entry (all image manifests), as one index: `index.json` itself.
    All,
}

/// Which entries of `index.json` (`entries`) are pushed when no ref name is given, as
/// concourse/registry-image-resource (R) decides (`commands/oci_layout.go`,
/// `NewIndexImageFromPath`): the entry R's `single-image-digest` marker (`marker`) names;
/// else the only entry; else all of them as one index, which is how R's `in` and
/// multi-platform builds list several platforms. Ref names play no part, as in R; unlike
/// R, several entries must all be image manifests (an index among them is refused).
fn choose<'a>(entries: &'a [model::Descriptor], marker: Option<&Digest>) -> Result<Choice<'a>> {
    if let Some(digest) = marker {
        return entries
            .iter()
            .find(|e| e.digest == *digest)
            .map(Choice::One)
            .ok_or_else(|| {
                anyhow!(
                    "its single-image-digest file names {digest}, which index.json does not \
                     list"
                )
            });
    }
    match entries {
        [] => bail!("its index.json lists no images"),
        [only] => Ok(Choice::One(only)),
        all => {
            if let Some(index) = all.iter().find(|e| is_index(&e.media_type)) {
                bail!(
                    "its index.json lists {} entries ({}), and {} is an index: several entries \
                     are pushed as one index only when each is an image manifest (nested \
                     indexes are not supported)",
                    all.len(),
                    entry_names(all),
                    index.digest
                );
            }
            Ok(Choice::All)
        }
    }
}

/// The entries' ref names (or digests, for entries without one), for messages.
fn entry_names(entries: &[model::Descriptor]) -> String {
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e.ref_name().unwrap_or(e.digest.as_str()))
        .collect();
    names.join(", ")
}

/// Whether `media_type` is an index (OCI index or Docker manifest list).
fn is_index(media_type: &str) -> bool {
    matches!(media_type, manifest::OCI_INDEX | manifest::DOCKER_LIST)
}

/// The platform an image config names (`architecture`, `os`, and `variant`, `os.version`,
/// `os.features` when given), as an index descriptor's `platform`; `None` when it names
/// no `os` or `architecture`.
pub(super) fn config_platform(config: &[u8]) -> Result<Option<Value>> {
    let config: Value = serde_json::from_slice(config).context("parsing the image config")?;
    let text = |key: &str| {
        config
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(os), Some(architecture)) = (text("os"), text("architecture")) else {
        return Ok(None);
    };
    let mut platform = serde_json::Map::new();
    platform.insert("architecture".into(), architecture.into());
    platform.insert("os".into(), os.into());
    if let Some(version) = text("os.version") {
        platform.insert("os.version".into(), version.into());
    }
    if let Some(features) = config.get("os.features").filter(|f| f.is_array()) {
        platform.insert("os.features".into(), features.clone());
    }
    if let Some(variant) = text("variant") {
        platform.insert("variant".into(), variant.into());
    }
    Ok(Some(Value::Object(platform)))
}

/// `os/architecture[/variant][ (os.version)]` of a descriptor's platform.
pub(super) fn platform_name(platform: &Value) -> String {
    let text = |key: &str| platform.get(key).and_then(Value::as_str).unwrap_or("");
    let mut name = format!("{}/{}", text("os"), text("architecture"));
    if !text("variant").is_empty() {
        name = format!("{name}/{}", text("variant"));
    }
    if !text("os.version").is_empty() {
        name = format!("{name} ({})", text("os.version"));
    }
    name
}

/// An error when two entries (`(name, platform)`) are for the same platform: then they are
/// not the platforms of one image (two tags of one platform, say). `unknown/unknown`
/// (BuildKit's attestation manifests) may repeat.
fn check_distinct_platforms(entries: &[(String, &Value)]) -> Result<()> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (name, platform) in entries {
        let key = platform_name(platform);
        if key == "unknown/unknown" {
            continue;
        }
        if let Some(first) = seen.insert(key.clone(), name) {
            bail!(
                "index.json lists two images for {key} ({first} and {name}), so they cannot \
                 be pushed as one multi-platform index; keep one image per platform in the \
                 layout (skopeo copy oci:<dir>:<ref> oci:<new dir> copies one out)"
            );
        }
    }
    Ok(())
}

/// The index being loaded: for messages, and for what may change.
struct IndexOrigin {
    /// `index <digest>`, or `index.json`.
    what: String,
    /// Its digest.
    digest: Digest,
    /// Its media type when it states none.
    media_type: String,
    /// `index.json` itself, listing several images: a missing `platform` is taken from the
    /// image's config, and a missing `mediaType` is added.
    is_index_json: bool,
}

/// Loads images out of one layout, compressing each uncompressed layer once.
struct Loader<'a> {
    layout: &'a OciLayout,
    scratch: &'a Path,
    verified: &'a Verified,
    /// How uncompressed layers are compressed.
    encoding: Encoding,
    /// Layers done so far, by their descriptor's digest.
    layers: HashMap<String, Blob>,
}

impl Loader<'_> {
    /// `OCI layout <dir>`, for messages.
    fn where_(&self) -> String {
        format!("OCI layout {}", self.layout.dir().display())
    }

    /// A manifest, index or config: read, digest-checked, and size-checked.
    fn read_json_blob(&self, digest: &Digest, size: u64) -> Result<Vec<u8>> {
        let raw = self.layout.read_blob(digest)?;
        if raw.len() as u64 != size {
            bail!(
                "blob {digest} in {} is {} bytes, but its descriptor says {size}",
                self.where_(),
                raw.len()
            );
        }
        Ok(raw)
    }

    /// `index.json` itself, listing several images (see [`choose`]): pushed as one index.
    fn index_json(&mut self) -> Result<ImageOrIndex> {
        let path = self.layout.dir().join("index.json");
        let mut raw = Vec::new();
        File::open(&path)
            .with_context(|| format!("opening {}", path.display()))?
            .take(MAX_JSON_BYTES)
            .read_to_end(&mut raw)
            .with_context(|| format!("reading {}", path.display()))?;
        let origin = IndexOrigin {
            what: "index.json".to_string(),
            digest: Digest::sha256_of(&raw),
            media_type: manifest::OCI_INDEX.to_string(),
            is_index_json: true,
        };
        self.index(&origin, raw)
    }

    /// An index and every image it lists; rebuilt when a child's manifest was (or, for
    /// `index.json`, when a platform or the media type had to be filled in).
    fn index(&mut self, origin: &IndexOrigin, raw: Vec<u8>) -> Result<ImageOrIndex> {
        let mut index: json::IndexJson = serde_json::from_slice(&raw)
            .with_context(|| format!("parsing {} in {}", origin.what, self.where_()))?;
        let mut images = Vec::with_capacity(index.manifests.len());
        let mut changed = false;
        for child in &mut index.manifests {
            if is_index(&child.media_type) {
                bail!(
                    "{} in {} lists another index, {}: nested indexes are not supported",
                    origin.what,
                    self.where_(),
                    child.digest
                );
            }
            let child_digest = self.digest(&child.digest)?;
            let child_raw = self.read_json_blob(&child_digest, child.size)?;
            let image = self.image(&child.media_type, child_raw, &child_digest)?;
            if image.manifest.digest != child_digest {
                child.digest = image.manifest.digest.to_string();
                child.size = image.manifest.raw.len() as u64;
                changed = true;
            }
            images.push(image);
        }
        if origin.is_index_json {
            changed |= self.fill_platforms(&mut index, &images)?;
            if index.media_type.is_none() {
                index.media_type = Some(manifest::OCI_INDEX.to_string());
                changed = true;
            }
        }
        let media_type = index
            .media_type
            .clone()
            .unwrap_or_else(|| origin.media_type.clone());
        let (raw, digest) = if changed {
            json::to_bytes(&index)?
        } else {
            (raw, origin.digest.clone())
        };
        Ok(ImageOrIndex::Index {
            index: Manifest {
                raw,
                digest,
                media_type,
            },
            images,
        })
    }

    /// Gives every entry of `index` without a platform the one its image's config names,
    /// and checks that no two entries are for the same platform; whether any was filled in.
    fn fill_platforms(&self, index: &mut json::IndexJson, images: &[Image]) -> Result<bool> {
        let mut filled = false;
        for (entry, image) in index.manifests.iter_mut().zip(images) {
            if entry.platform.is_some() {
                continue;
            }
            let what = || {
                format!(
                    "image {} listed in index.json of {}",
                    entry.digest,
                    self.where_()
                )
            };
            let config = self
                .layout
                .read_blob(&image.config.digest)
                .with_context(what)?;
            let platform = config_platform(&config)
                .with_context(what)?
                .ok_or_else(|| {
                    anyhow!(
                        "{}: it has no platform in index.json and its config {} names no os and \
                     architecture; add a platform to its index.json entry",
                        what(),
                        image.config.digest
                    )
                })?;
            entry.platform = Some(platform);
            filled = true;
        }
        let named: Vec<(String, &Value)> = index
            .manifests
            .iter()
            .filter_map(|e| {
                let name = e
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(model::REF_NAME_ANNOTATION))
                    .unwrap_or(&e.digest);
                Some((name.clone(), e.platform.as_ref()?))
            })
            .collect();
        check_distinct_platforms(&named).with_context(|| self.where_())?;
        Ok(filled)
    }

    /// One image manifest with its config and layers.
    fn image(&mut self, media_type: &str, raw: Vec<u8>, digest: &Digest) -> Result<Image> {
        let what = || format!("manifest {digest} in {}", self.where_());
        if let Parsed::Index(_) = manifest::parse(media_type, &raw).with_context(what)? {
            bail!(
                "{} is an index inside an index: nested indexes are not supported",
                what()
            );
        }
        let mut parsed: json::ManifestJson = serde_json::from_slice(&raw).with_context(what)?;
        let config_digest = self.digest(&parsed.config.digest)?;
        self.read_json_blob(&config_digest, parsed.config.size)?;
        let config = Blob::file(
            config_digest.clone(),
            parsed.config.media_type.clone(),
            parsed.config.size,
            self.layout.blob_path(&config_digest)?,
        );
        let mut layers = Vec::with_capacity(parsed.layers.len());
        let mut changed = false;
        for descriptor in &mut parsed.layers {
            let blob = self.layer(descriptor)?;
            if blob.digest != descriptor.digest {
                descriptor.media_type.clone_from(&blob.media_type);
                descriptor.digest = blob.digest.to_string();
                descriptor.size = blob.size;
                changed = true;
            }
            layers.push(blob);
        }
        let manifest_media_type = parsed
            .media_type
            .clone()
            .unwrap_or_else(|| media_type.to_string());
        let (raw, digest) = if changed {
            json::to_bytes(&parsed)?
        } else {
            (raw, digest.clone())
        };
        Ok(Image {
            manifest: Manifest {
                raw,
                digest,
                media_type: manifest_media_type,
            },
            config,
            layers,
        })
    }

    /// A layer, checked: compressed into scratch when its media type says plain tar, else
    /// the layout's file.
    fn layer(&mut self, descriptor: &DescriptorJson) -> Result<Blob> {
        if let Some(done) = self.layers.get(&descriptor.digest) {
            return Ok(done.clone());
        }
        let digest = self.digest(&descriptor.digest)?;
        let path = self.layout.blob_path(&digest)?;
        let blob = match compression::claimed(&descriptor.media_type) {
            Some(Compression::None) => self.compress(descriptor, &digest, &path)?,
            _ => self.keep(descriptor, &digest, path)?,
        };
        self.layers.insert(descriptor.digest.clone(), blob.clone());
        Ok(blob)
    }

    /// An uncompressed layer, compressed into scratch; its digest and size are checked on
    /// the way (the input of the compressor is the blob).
    fn compress(&self, descriptor: &DescriptorJson, digest: &Digest, path: &Path) -> Result<Blob> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let head = reader
            .fill_buf()
            .with_context(|| format!("reading {}", path.display()))?;
        compression::detect(&descriptor.media_type, head)
            .with_context(|| format!("layer {} in {}", descriptor.digest, self.where_()))?;
        let mut counted = CountingReader::new(reader);
        let (encoding, media_type) = self.encoding.for_media_type(&descriptor.media_type);
        let gzip = encode_layer(&mut counted, self.scratch, encoding, &media_type)?;
        let actual = if digest.algorithm() == crate::digest::Algorithm::Sha256 {
            gzip.diff_id.clone()
        } else {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            scan(file, digest, None)?.digest.to_string()
        };
        if let Err(e) = self.check(descriptor, path, &actual, counted.count()) {
            if let Ok(copy) = gzip.blob.path() {
                let _ = fs::remove_file(copy);
            }
            return Err(e);
        }
        Ok(gzip.blob)
    }

    /// A compressed (or not a tar) layer, used where it lies once it is checked.
    fn keep(&self, descriptor: &DescriptorJson, digest: &Digest, path: PathBuf) -> Result<Blob> {
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let head = if self.verified.get(digest) == Some(&descriptor.size) {
            let size = file
                .metadata()
                .with_context(|| format!("reading metadata of {}", path.display()))?
                .len();
            self.check(descriptor, &path, digest.as_str(), size)?;
            let mut head = Vec::with_capacity(8);
            file.take(8)
                .read_to_end(&mut head)
                .with_context(|| format!("reading {}", path.display()))?;
            head
        } else {
            let scanned =
                scan(file, digest, None).with_context(|| format!("reading {}", path.display()))?;
            self.check(descriptor, &path, scanned.digest.as_str(), scanned.size)?;
            scanned.head
        };
        if compression::claimed(&descriptor.media_type).is_some() {
            compression::detect(&descriptor.media_type, &head)
                .with_context(|| format!("layer {} in {}", descriptor.digest, self.where_()))?;
        }
        Ok(Blob::file(
            digest.clone(),
            descriptor.media_type.clone(),
            descriptor.size,
            path,
        ))
    }

    /// A descriptor's digest, parsed: an error naming the layout when it is not one we
    /// can verify and use as a file name.
    fn digest(&self, text: &str) -> Result<Digest> {
        Digest::parse(text).with_context(|| self.where_())
    }

    /// An error unless a blob's content had the digest and size of its descriptor.
    fn check(
        &self,
        descriptor: &DescriptorJson,
        path: &Path,
        digest: &str,
        size: u64,
    ) -> Result<()> {
        if digest != descriptor.digest || size != descriptor.size {
            bail!(
                "blob {} in {} ({}) does not match its descriptor: it is {size} bytes with \
                 digest {digest}, the descriptor says {} bytes",
                descriptor.digest,
                self.where_(),
                path.display(),
                descriptor.size
            );
        }
        Ok(())
    }
}

/// Extracts the layout inside an OCI layout tarball (`oci-layout`, `index.json`, `blobs/...`)
/// into `dir`, hashing each blob as it is written; other members are skipped.
fn extract(path: &Path, dir: &Path) -> Result<Verified> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let mut verified = Verified::new();
    for entry in archive.entries().context("reading the tar")? {
        let mut entry = entry.context("reading the tar")?;
        let name = crate::image::archive::clean_name(&String::from_utf8_lossy(&entry.path_bytes()));
        let entry_type = entry.header().entry_type();
        let digest = match name.as_str() {
            "oci-layout" | "index.json" | "single-image-digest" => None,
            _ => match Digest::from_layout_name(&name) {
                Some(digest) => Some(digest),
                None => continue,
            },
        };
        let dest = dir.join(&name);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        if entry_type.is_hard_link() || entry_type.is_symlink() {
            link_member(&entry, &name, dir, &dest)?;
            continue;
        }
        if !entry_type.is_file() {
            continue;
        }
        match digest {
            None => {
                if entry.size() > MAX_JSON_BYTES {
                    bail!("its {name} is {} bytes, too large", entry.size());
                }
                let mut out =
                    File::create(&dest).with_context(|| format!("creating {}", dest.display()))?;
                io::copy(&mut entry, &mut out).with_context(|| format!("extracting {name}"))?;
            }
            Some(digest) => {
                let scanned = scan(&mut entry, &digest, Some(&dest))
                    .with_context(|| format!("extracting {name}"))?;
                if scanned.digest != digest {
                    bail!("its blob {digest} ({name}) has digest {}", scanned.digest);
                }
                verified.insert(digest, scanned.size);
            }
        }
    }
    Ok(verified)
}

/// A link member inside `blobs/`: made a hard link to (or copy of) the blob it names, which
/// must have come earlier. It is not marked verified: it is hashed when loaded.
fn link_member<R: Read>(entry: &tar::Entry<R>, name: &str, dir: &Path, dest: &Path) -> Result<()> {
    let target = entry
        .link_name_bytes()
        .ok_or_else(|| anyhow!("its link {name} has no target"))?;
    let target = String::from_utf8_lossy(&target);
    let target = if entry.header().entry_type().is_symlink() && !target.starts_with('/') {
        let parent = name.rsplit_once('/').map_or("", |(parent, _)| parent);
        crate::image::archive::clean_name(&format!("{parent}/{target}"))
    } else {
        crate::image::archive::clean_name(&target)
    };
    if Digest::from_layout_name(&target).is_none() && target != "index.json" {
        bail!("its link {name} points at {target}, outside the layout");
    }
    let source = dir.join(&target);
    if fs::hard_link(&source, dest).is_err() {
        fs::copy(&source, dest).with_context(|| {
            format!("its link {name} points at {target}, which is not (yet) in the tarball")
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
