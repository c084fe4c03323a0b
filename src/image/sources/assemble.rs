//! `images`: several single-platform images (docker-save tarballs, OCI layout tarballs,
//! OCI layout directories) assembled into one multi-platform OCI image index on `out`.
//!
//! Each path or glob is expanded (a glob's matches sorted), each input is read as R's
//! `image` reads one and must hold exactly one image, and the index lists them in that
//! order, each entry with the platform its config names (`architecture`, `os`, and
//! `variant`, `os.version`, `os.features` when set). Two inputs for the same platform are
//! an error naming both. The index is serialised from structs in the spec's field order,
//! so the same inputs in the same order always give the same bytes.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{oci, path};
use crate::image::json::{self, DescriptorJson, IndexJson};
use crate::image::manifest::OCI_INDEX;
use crate::image::model::{Image, ImageOrIndex, Manifest};

/// Largest image config read for its platform.
const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// One image of the index: where it came from, and the platform its config names.
#[derive(Debug, Clone)]
struct Entry {
    /// The input file or directory.
    path: PathBuf,
    /// Its image.
    image: Image,
    /// The index descriptor's `platform`.
    platform: Value,
}

/// See [`super::from_images`].
pub(super) fn assemble(base: &Path, patterns: &[String], scratch: &Path) -> Result<ImageOrIndex> {
    if patterns.is_empty() {
        bail!("it lists no images; give one path or glob per platform's image");
    }
    let paths = expand(base, patterns)?;
    let mut entries = Vec::with_capacity(paths.len());
    for path in paths {
        let entry = load(&path, scratch).with_context(|| path.display().to_string())?;
        entries.push(entry);
    }
    check_distinct(&entries)?;
    Ok(ImageOrIndex::Index {
        index: index_manifest(&entries)?,
        images: entries.into_iter().map(|e| e.image).collect(),
    })
}

/// Every path the patterns match, in the order given (a glob's matches sorted); a pattern
/// that matches nothing, or a path matched twice, is an error naming the pattern.
fn expand(base: &Path, patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<(PathBuf, usize)> = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let what = || format!("images[{i}] {pattern:?}");
        let (full, matched) = path::matches(base, pattern).with_context(what)?;
        if matched.is_empty() {
            bail!("{}: it matches nothing (looked for {full})", what());
        }
        for path in matched {
            if let Some((_, first)) = paths.iter().find(|(p, _)| *p == path) {
                bail!(
                    "{}: it matches {}, which images[{first}] {:?} matched already; list each \
                     image once",
                    what(),
                    path.display(),
                    patterns[*first]
                );
            }
            paths.push((path, i));
        }
    }
    Ok(paths.into_iter().map(|(path, _)| path).collect())
}

/// The one image at `path`, with its platform.
fn load(path: &Path, scratch: &Path) -> Result<Entry> {
    let image = match path::from_path(path, scratch, &Default::default())? {
        ImageOrIndex::Image(image) => image,
        ImageOrIndex::Index { images, index } => bail!(
            "it holds an index of {} images ({digest}), but each input of `images` must be \
             one single-platform image; give each platform's image as its own input (or push \
             this index as it is with `image`)",
            images.len(),
            digest = index.digest
        ),
    };
    let config = read_config(&image)?;
    let platform = oci::config_platform(&config)
        .with_context(|| format!("its config {}", image.config.digest))?
        .with_context(|| {
            format!(
                "its config {} names no os and architecture, so it has no platform to list in \
                 the index",
                image.config.digest
            )
        })?;
    Ok(Entry {
        path: path.to_path_buf(),
        image,
        platform,
    })
}

/// The config blob's bytes (already verified against its digest when the input was read).
fn read_config(image: &Image) -> Result<Vec<u8>> {
    let path = image.config.path()?;
    if image.config.size > MAX_CONFIG_BYTES {
        bail!(
            "its config {} is {} bytes, more than the {MAX_CONFIG_BYTES} read",
            image.config.digest,
            image.config.size
        );
    }
    let mut bytes = Vec::new();
    File::open(path)
        .with_context(|| format!("opening its config {}", path.display()))?
        .take(MAX_CONFIG_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading its config {}", path.display()))?;
    Ok(bytes)
}

/// What makes two platforms the same: os, architecture, variant (`arm64` without one is
/// `v8`, `arm` without one is `v7`, containerd's rules, as `in` selects) and `os.version`.
fn platform_key(platform: &Value) -> (String, String, String, String) {
    let text = |key: &str| {
        platform
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let architecture = text("architecture");
    let variant = match (architecture.as_str(), text("variant").as_str()) {
        ("arm64", "") => "v8".to_string(),
        ("arm", "") => "v7".to_string(),
        (_, variant) => variant.to_string(),
    };
    (text("os"), architecture, variant, text("os.version"))
}

/// An error naming both inputs when two are for the same platform.
fn check_distinct(entries: &[Entry]) -> Result<()> {
    let mut seen: HashMap<_, &Entry> = HashMap::new();
    for entry in entries {
        if let Some(first) = seen.insert(platform_key(&entry.platform), entry) {
            bail!(
                "{} and {} are both {} images: an index lists one image per platform; drop \
                 one, or build it for another platform",
                first.path.display(),
                entry.path.display(),
                oci::platform_name(&entry.platform)
            );
        }
    }
    Ok(())
}

/// The OCI index over `entries`, in their order.
fn index_manifest(entries: &[Entry]) -> Result<Manifest> {
    let manifests = entries
        .iter()
        .map(|entry| DescriptorJson {
            platform: Some(entry.platform.clone()),
            ..DescriptorJson::from(&entry.image.manifest.descriptor())
        })
        .collect();
    let (raw, digest) = json::to_bytes(&IndexJson {
        schema_version: 2,
        media_type: Some(OCI_INDEX.to_string()),
        artifact_type: None,
        manifests,
        subject: None,
        annotations: None,
    })?;
    Ok(Manifest {
        raw,
        digest,
        media_type: OCI_INDEX.to_string(),
    })
}

#[cfg(test)]
mod tests;
