//! [`Pushable`]: an image ready to push, as every `out` source becomes one: manifests in
//! memory (raw bytes, so their digests hold) and blobs in files on disk.

use super::archive::LocalImage;

/// An image ready to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushable {
    /// One single-platform image.
    Image(LocalImage),
    /// A multi-platform index and every image it lists (pushed before it).
    Index {
        /// The index bytes.
        raw: Vec<u8>,
        /// Their digest.
        digest: String,
        /// Their media type (OCI index or Docker manifest list).
        media_type: String,
        /// The images the index lists, in its order.
        images: Vec<LocalImage>,
    },
}

impl Pushable {
    /// The digest that tags will point at.
    pub fn digest(&self) -> &str {
        match self {
            Pushable::Image(image) => &image.manifest_digest,
            Pushable::Index { digest, .. } => digest,
        }
    }

    /// Every single-platform image.
    pub fn images(&self) -> Vec<&LocalImage> {
        match self {
            Pushable::Image(image) => vec![image],
            Pushable::Index { images, .. } => images.iter().collect(),
        }
    }
}
