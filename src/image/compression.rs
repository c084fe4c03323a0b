//! Layer compression, decided in one place: what a media type claims ([`claimed`]), what
//! the first bytes are ([`sniff`]), the two checked against each other ([`detect`]), the
//! decompressing reader ([`decompress`], [`open`]) and the media type a compressed layer
//! gets ([`gzip_media_type`]). Every module that asks "is this gzip or zstd?" asks here.

use anyhow::bail;
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

impl Compression {
    /// `"gzip"`, `"zstd"`, or `None` for plain data.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
        }
    }
}

/// gzip's first two bytes (RFC 1952).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// A zstd frame's first four bytes (RFC 8878).
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// How many first bytes [`sniff`] needs.
pub const MAGIC_LEN: usize = ZSTD_MAGIC.len();

/// The compression the first bytes show: gzip, zstd, or (anything else) none.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// [`sniff`] on the first bytes `input` gives (it reads at most [`MAGIC_LEN`]).
pub fn sniff_start(input: impl Read) -> io::Result<Compression> {
    let mut head = Vec::with_capacity(MAGIC_LEN);
    input.take(MAGIC_LEN as u64).read_to_end(&mut head)?;
    Ok(sniff(&head))
}

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
    let by_magic = sniff(head);
    match claimed(media_type) {
        None => Ok(by_magic),
        Some(c) if c == by_magic => Ok(c),
        Some(c) => bail!(
            "media type {media_type} says {c:?} but the data is {}",
            match by_magic {
                Compression::None => "not compressed".to_string(),
                m => format!("{m:?}"),
            }
        ),
    }
}

/// The gzip media type for an uncompressed layer media type.
pub fn gzip_media_type(uncompressed: &str) -> String {
    if uncompressed.starts_with("application/vnd.docker.") {
        format!("{uncompressed}.gzip")
    } else {
        format!("{uncompressed}+gzip")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::hashing::HashingReader;
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
        assert_eq!(detect("", b"").unwrap(), Compression::None);
        assert!(detect(gz, b"etc/").is_err());
        assert!(detect(zst, &[0x1f, 0x8b]).is_err());
        assert!(detect(tar, &[0x1f, 0x8b]).is_err());
    }

    #[test]
    fn sniffing_needs_the_whole_magic() {
        assert_eq!(sniff(&[0x1f, 0x8b]), Compression::Gzip);
        assert_eq!(sniff(&[0x1f]), Compression::None);
        assert_eq!(sniff(&ZSTD_MAGIC[..3]), Compression::None);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Compression::Zstd);
        let mut input = &[0x1f, 0x8b, 8, 0, 0, 1][..];
        assert_eq!(sniff_start(&mut input).unwrap(), Compression::Gzip);
        assert_eq!(input, &[0, 1], "reads the magic's length only");
        assert_eq!(sniff_start(&b""[..]).unwrap(), Compression::None);
        assert_eq!(Compression::Zstd.name(), Some("zstd"));
        assert_eq!(Compression::None.name(), None);
    }

    #[test]
    fn gzip_media_types() {
        for (plain, gzip) in [
            (
                "application/vnd.oci.image.layer.v1.tar",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            ),
        ] {
            assert_eq!(gzip_media_type(plain), gzip);
            assert_eq!(claimed(gzip), Some(Compression::Gzip));
            assert_eq!(claimed(plain), Some(Compression::None));
        }
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
            let (digest, n) = HashingReader::new(reader).finish().unwrap();
            assert_eq!(n, data.len() as u64);
            assert_eq!(digest, crate::digest::sha256(&data));
        }
    }
}
