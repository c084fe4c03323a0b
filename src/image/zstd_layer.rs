//! zstd for layers (`params.compression: zstd`), in one streaming pass with zstd's own
//! worker threads. zstd cuts the input into jobs whose size depends only on the level, so
//! with one worker or many the output is the same bytes (it differs from zstd's
//! single-threaded mode, which is never used here): the same layer always gets the same
//! digest. No checksum and no content size are written, as `zstd` does for a stream.
//!
//! As [`super::compress::gzip_layer`], the sha256 of the input (`diff_id`) and of the
//! output (`digest`) are computed on the way.

use std::fs::{self, File};
use std::io::Read;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::compress::Compressed;
use super::hashing::{HashingReader, HashingWriter};

/// The zstd level used when `params.compression_level` is not given: zstd's own default.
pub const DEFAULT_LEVEL: u32 = 3;

/// Compresses an uncompressed layer stream to zstd at `level` (1 to 19) at `out`, with
/// `workers` threads (at least one; the output does not depend on it). On failure `out` is
/// removed.
pub fn zstd_layer(input: impl Read, out: &Path, level: u32, workers: usize) -> Result<Compressed> {
    if !(1..=19).contains(&level) {
        bail!("zstd level {level} is out of range: use 1 to 19");
    }
    let result = encode(input, out, level, workers)
        .with_context(|| format!("compressing a layer to {}", out.display()));
    if result.is_err() {
        // The compression error is the one worth reporting.
        let _ = fs::remove_file(out);
    }
    result
}

fn encode(input: impl Read, out: &Path, level: u32, workers: usize) -> Result<Compressed> {
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let hashed = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let level = i32::try_from(level)?;
    let mut encoder = zstd::stream::write::Encoder::new(hashed, level).context("starting zstd")?;
    // At least one worker: zstd's multi-threaded format, whatever the number of cores.
    let workers = u32::try_from(workers.max(1)).unwrap_or(u32::MAX);
    encoder
        .multithread(workers)
        .context("starting zstd's worker threads")?;
    encoder
        .include_checksum(false)
        .context("configuring zstd")?;
    encoder
        .include_contentsize(false)
        .context("configuring zstd")?;
    let mut plain = HashingReader::new(input);
    io::copy(&mut plain, &mut encoder).context("reading or compressing the layer")?;
    let (diff_id, _) = plain.finish().context("reading the layer")?;
    let mut hashed = encoder.finish().context("finishing the zstd stream")?;
    hashed.flush().context("writing")?;
    let (digest, size) = hashed.finish();
    Ok(Compressed {
        digest,
        diff_id,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256;
    use crate::image::compression;

    /// Text with repeats far apart, so that zstd's jobs and their overlap matter.
    fn text(len: usize, mut seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            out.extend_from_slice(
                format!("line {} of layer {}\n", seed % 5000, seed % 7).as_bytes(),
            );
        }
        out.truncate(len);
        out
    }

    #[test]
    fn round_trip_and_digests() -> Result<()> {
        let dir = tempfile::tempdir()?;
        for data in [Vec::new(), b"x".to_vec(), text(3 << 20, 1)] {
            let out = dir.path().join("layer.zst");
            let c = zstd_layer(&data[..], &out, DEFAULT_LEVEL, 2)?;
            let bytes = fs::read(&out)?;
            assert_eq!(
                (c.size, c.digest.clone()),
                (bytes.len() as u64, sha256(&bytes))
            );
            assert_eq!(c.diff_id, sha256(&data));
            let mut back = Vec::new();
            compression::open(&bytes[..], super::super::compress::ZSTD_MEDIA_TYPE)?
                .read_to_end(&mut back)?;
            assert_eq!(back, data);
            let status = std::process::Command::new("zstd")
                .args(["-t", "-q"])
                .arg(&out)
                .status();
            if let Ok(status) = status {
                assert!(status.success(), "zstd -t");
            }
        }
        Ok(())
    }

    #[test]
    fn same_digest_with_one_and_many_threads() -> Result<()> {
        let dir = tempfile::tempdir()?;
        // Several of zstd's jobs at level 1 (its jobs are a few MB there).
        let data = text(24 << 20, 9);
        let one = zstd_layer(&data[..], &dir.path().join("1"), 1, 1)?;
        let many = zstd_layer(&data[..], &dir.path().join("4"), 1, 4)?;
        let two = zstd_layer(&data[..], &dir.path().join("2"), 1, 2)?;
        assert_eq!(one, many);
        assert_eq!(one, two);
        Ok(())
    }

    #[test]
    fn bad_level_and_read_error() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("x.zst");
        assert!(zstd_layer(&b""[..], &out, 0, 1).is_err());
        assert!(zstd_layer(&b""[..], &out, 20, 1).is_err());
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let err = format!(
            "{:#}",
            zstd_layer(Failing, &out, 3, 2).err().context("no error")?
        );
        assert!(
            err.contains("disk on fire") && err.contains("x.zst"),
            "{err}"
        );
        assert!(!out.exists());
        Ok(())
    }
}
