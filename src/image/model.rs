//! The image model every part shares: `in`'s fetch, the archive writers and readers, the
//! local `out` sources and the pusher.
//!
//! - [`Digest`]: a content digest, parsed once (from [`crate::digest`]).
//! - [`Descriptor`]: what points at content: media type, digest, size, and for index
//!   entries a platform and annotations.
//! - [`Manifest`]: a manifest or index as raw bytes (so its digest holds) with its digest
//!   and media type.
//! - [`Blob`]: a config or layer, and where its bytes are ([`BlobSource`], the pusher's).
//! - [`Image`]: one single-platform image: manifest, config and layers.
//! - [`ImageOrIndex`]: what a tag points at: one image, or an index and its images.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};

pub use crate::digest::Digest;
pub use crate::push::BlobSource;

/// The annotation that names an entry of an OCI layout's `index.json` (a tag).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// What points at content: a manifest's config or layer, an index entry, a layout's
/// `index.json` entry, or what a registry answers for a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// The media type of the content.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The platform object (index entries), as JSON.
    pub platform: Option<serde_json::Value>,
    /// Annotations, when any.
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// A plain descriptor: no platform, no annotations.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            platform: None,
            annotations: None,
        }
    }

    /// The same descriptor with the ref name annotation (see [`REF_NAME_ANNOTATION`]).
    pub fn with_ref_name(mut self, name: Option<String>) -> Descriptor {
        if let Some(name) = name {
            self.annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(REF_NAME_ANNOTATION.to_string(), name);
        }
        self
    }

    /// The ref name annotation, when there is one.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .as_ref()
            .and_then(|a| a.get(REF_NAME_ANNOTATION))
            .map(String::as_str)
    }
}

/// A manifest or index exactly as stored or sent: the bytes its digest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The bytes.
    pub raw: Vec<u8>,
    /// Their digest.
    pub digest: Digest,
    /// Their media type.
    pub media_type: String,
}

impl Manifest {
    /// `raw`, named by its sha256 digest.
    pub fn sha256(raw: Vec<u8>, media_type: impl Into<String>) -> Manifest {
        Manifest {
            digest: Digest::sha256_of(&raw),
            raw,
            media_type: media_type.into(),
        }
    }

    /// The descriptor that points at it.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.clone(),
            self.digest.clone(),
            self.raw.len() as u64,
        )
    }
}

/// A config or layer blob of an image: its descriptor's fields and where its bytes are.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Its digest.
    pub digest: Digest,
    /// The media type its descriptor gives.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where its bytes are.
    pub source: BlobSource,
}

impl Blob {
    /// A verified blob in the file at `path`.
    pub fn file(
        digest: Digest,
        media_type: impl Into<String>,
        size: u64,
        path: impl Into<std::path::PathBuf>,
    ) -> Blob {
        Blob {
            digest,
            media_type: media_type.into(),
            size,
            source: BlobSource::File(path.into()),
        }
    }

    /// The descriptor that points at it.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.digest.clone(), self.size)
    }

    /// The file holding it; an error for a blob that is not (yet) a file of its own.
    pub fn path(&self) -> Result<&Path> {
        match &self.source {
            BlobSource::File(path) => Ok(path),
            other => bail!(
                "blob {} is not a file on disk (it is {})",
                self.digest,
                other.describe()
            ),
        }
    }
}

impl PartialEq for Blob {
    fn eq(&self, other: &Blob) -> bool {
        self.digest == other.digest
            && self.media_type == other.media_type
            && self.size == other.size
            && self.source.describe() == other.source.describe()
    }
}

impl Eq for Blob {}

/// One single-platform image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its manifest, byte for byte.
    pub manifest: Manifest,
    /// The image config blob.
    pub config: Blob,
    /// The layer blobs, in manifest order.
    pub layers: Vec<Blob>,
}

/// What a tag points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageOrIndex {
    /// One single-platform image.
    Image(Image),
    /// A multi-platform index (OCI index or Docker manifest list) and every image it
    /// lists, in its order (pushed before it).
    Index {
        /// The index.
        index: Manifest,
        /// Its images.
        images: Vec<Image>,
    },
}

impl ImageOrIndex {
    /// What the tags point at: the image's manifest, or the index.
    pub fn top(&self) -> &Manifest {
        match self {
            ImageOrIndex::Image(image) => &image.manifest,
            ImageOrIndex::Index { index, .. } => index,
        }
    }

    /// The digest that tags will point at.
    pub fn digest(&self) -> &Digest {
        &self.top().digest
    }

    /// Every single-platform image.
    pub fn images(&self) -> Vec<&Image> {
        match self {
            ImageOrIndex::Image(image) => vec![image],
            ImageOrIndex::Index { images, .. } => images.iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_carry_ref_names_and_blobs_know_their_file() {
        let digest = Digest::sha256_of(b"x");
        let plain = Descriptor::new("m", digest.clone(), 1);
        assert_eq!(plain.ref_name(), None);
        let named = plain.clone().with_ref_name(Some("v1".into()));
        assert_eq!(named.ref_name(), Some("v1"));
        let manifest = Manifest::sha256(b"{}".to_vec(), "m");
        assert_eq!(manifest.descriptor().size, 2);
        assert_eq!(manifest.digest, Digest::sha256_of(b"{}"));
        let blob = Blob::file(digest.clone(), "m", 1, "/b");
        assert_eq!(blob.path().ok(), Some(Path::new("/b")));
        let remote = Blob {
            source: BlobSource::Remote {
                client: None,
                repository: "base/bb".into(),
            },
            ..blob
        };
        let err = remote
            .path()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("base/bb"), "{err}");
    }
}
