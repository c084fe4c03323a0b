//! Layers of a docker-save tarball that the registry being pushed to already has,
//! compressed: `out` finds them through the `rootfs.diff_ids` of an image there (see
//! [`crate::repush`]) and pushes those blobs (present, or mounted) instead of compressing the
//! same content again. The tarball's layer is still read once and its sha256 checked
//! against the config's `diff_id`, which is ten times cheaper than compressing it.

use std::io::{BufReader, Read};

use anyhow::{bail, Context, Result};

use super::archive::DockerArchive;
use super::compress::LayerOptions;
use super::compression::{self, Compression};
use super::hashing::HashingReader;
use super::model::{Blob, BlobSource};

/// Layer `i` of `archive` (whose config gives it `diff_id`) as the compressed blob
/// `options.known` has for that diff_id: a [`BlobSource::Remote`] of the repository that has
/// it, after the layer's content was checked against `diff_id`. `None` when nothing is
/// known for it, or the member is compressed (it is pushed as it is then).
pub fn known_layer(
    archive: &DockerArchive,
    i: usize,
    diff_id: &str,
    options: &LayerOptions,
) -> Result<Option<Blob>> {
    let Some(known) = options.known.get(diff_id) else {
        return Ok(None);
    };
    let member = &archive.layers()[i].name;
    let what = || format!("layer {i} ({member}) of {}", archive.path().display());
    let mut reader = BufReader::with_capacity(1 << 20, archive.open_layer(i)?);
    let mut head = Vec::with_capacity(compression::MAGIC_LEN);
    (&mut reader)
        .take(compression::MAGIC_LEN as u64)
        .read_to_end(&mut head)
        .with_context(what)?;
    if compression::sniff(&head) != Compression::None {
        return Ok(None);
    }
    let (found, _) = HashingReader::new(head.chain(reader))
        .finish()
        .with_context(what)?;
    if found != diff_id {
        bail!(
            "{} does not match its diff_id in the config: its content is {found}, the \
             config says {diff_id}",
            what()
        );
    }
    Ok(Some(Blob {
        digest: known.digest.clone(),
        media_type: known.media_type.clone(),
        size: known.size,
        source: BlobSource::Remote {
            client: None,
            repository: known.repository.clone(),
        },
    }))
}
