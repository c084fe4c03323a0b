//! Layer streams: which compression a layer uses (by media type, checked by magic bytes),
//! a decompressing reader, and a reader that hashes what passes through it (to check a
//! layer's `diff_id` while it is applied).

use anyhow::bail;
use sha2::{Digest as _, Sha256};
use std::io::{self, BufRead, BufReader, Read};

/// A layer's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The compression a media type claims, if it says.
pub fn claimed(media_type: &str) -> Option<Compression> {
    if media_type.ends_with("+gzip") || media_type.ends_with(".gzip") {
        Some(Compression::Gzip)
    } else if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
        Some(Compression::Zstd)
    } else if media_type.ends_with(".tar") || media_type.ends_with("diff.tar") {
        Some(Compression::None)
    } else {
        None
    }
}

/// Decides a layer's compression from its media type and first bytes. A media type that
/// contradicts the bytes is an error (a corrupt or mislabelled layer).
pub fn detect(media_type: &str, head: &[u8]) -> anyhow::Result<Compression> {
    let by_magic = if head.starts_with(&GZIP_MAGIC) {
        Some(Compression::Gzip)
    } else if head.starts_with(&ZSTD_MAGIC) {
        Some(Compression::Zstd)
    } else {
        None
    };
    match (claimed(media_type), by_magic) {
        (Some(c), Some(m)) if c == m => Ok(c),
        (Some(Compression::None), None) => Ok(Compression::None),
        (None, Some(m)) => Ok(m),
        (None, None) => Ok(Compression::None),
        (Some(c), m) => bail!(
            "media type {media_type} says {c:?} but the data is {}",
            match m {
                Some(m) => format!("{m:?}"),
                None => "not compressed".to_string(),
            }
        ),
    }
}

/// Wraps `input` in the decompressor for `compression`.
pub fn decompress<'a, R: BufRead + Send + 'a>(
    input: R,
    compression: Compression,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    })
}

/// Opens a layer file (or any reader) for reading its uncompressed tar: sniffs the first
/// bytes, checks them against `media_type`, and returns the decompressing reader.
pub fn open<'a, R: Read + Send + 'a>(
    input: R,
    media_type: &str,
) -> anyhow::Result<Box<dyn Read + Send + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered.fill_buf()?.to_vec();
    let compression = detect(media_type, &head)?;
    Ok(decompress(buffered, compression)?)
}

/// A reader that counts and sha256-hashes every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads what is left (a tar reader stops before the end padding), then returns the
    /// `sha256:` digest and byte count of everything that passed.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.bytes,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detection_by_media_type_and_magic() {
        let gz = "application/vnd.oci.image.layer.v1.tar+gzip";
        let docker_gz = "application/vnd.docker.image.rootfs.diff.tar.gzip";
        let zst = "application/vnd.oci.image.layer.v1.tar+zstd";
        let tar = "application/vnd.oci.image.layer.v1.tar";
        assert_eq!(detect(gz, &[0x1f, 0x8b, 8]).unwrap(), Compression::Gzip);
        assert_eq!(
            detect(docker_gz, &[0x1f, 0x8b, 8]).unwrap(),
            Compression::Gzip
        );
        assert_eq!(detect(zst, &ZSTD_MAGIC).unwrap(), Compression::Zstd);
        assert_eq!(detect(tar, b"etc/").unwrap(), Compression::None);
        assert_eq!(
            detect("application/octet-stream", &ZSTD_MAGIC).unwrap(),
            Compression::Zstd
        );
        assert!(detect(gz, b"etc/").is_err());
        assert!(detect(zst, &[0x1f, 0x8b]).is_err());
        assert!(detect(tar, &[0x1f, 0x8b]).is_err());
    }

    #[test]
    fn gzip_and_zstd_round_trip_with_hash() {
        let data = b"hello layer".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 1).unwrap();
        for (bytes, mt) in [
            (gz, "application/vnd.oci.image.layer.v1.tar+gzip"),
            (zst, "application/vnd.oci.image.layer.v1.tar+zstd"),
            (data.clone(), "application/vnd.oci.image.layer.v1.tar"),
        ] {
            let reader = open(&bytes[..], mt).unwrap();
            let hashing = HashingReader::new(reader);
            let (digest, n) = hashing.finish().unwrap();
            assert_eq!(n, data.len() as u64);
            assert_eq!(
                digest,
                format!("sha256:{}", hex::encode(Sha256::digest(&data)))
            );
        }
    }
}
