use std::process::{Command, Stdio};

use super::*;
use crate::image::compression;

use crate::digest::sha256;

/// Pseudo-random bytes (xorshift), so that tests need no extra crate.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn gunzip_with_gzip(path: &Path) -> Result<Vec<u8>> {
    let output = Command::new("gzip")
        .args(["-d", "-c"])
        .arg(path)
        .stderr(Stdio::piped())
        .output()
        .context("running gzip")?;
    if !output.status.success() {
        bail!(
            "gzip -d failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output.stdout)
}

fn round_trip(data: &[u8]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("layer.gz");
    let compressed = gzip_layer(data, &out)?;
    let bytes = fs::read(&out)?;
    assert_eq!(compressed.size, bytes.len() as u64);
    assert_eq!(compressed.digest, sha256(&bytes));
    assert_eq!(compressed.diff_id, sha256(data));

    assert_eq!(gunzip_with_gzip(&out)?, data, "gzip -d");
    let mut ours = Vec::new();
    compression::open(
        File::open(&out)?,
        "application/vnd.oci.image.layer.v1.tar+gzip",
    )?
    .read_to_end(&mut ours)?;
    assert_eq!(ours, data, "compression::open");
    // One member per block (an empty input is one empty member): a single-member decoder
    // reads the first block only.
    let mut first = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut first)?;
    assert_eq!(first, data[..data.len().min(BLOCK_SIZE)], "GzDecoder");
    assert_eq!(members(&bytes)?, data.len().div_ceil(BLOCK_SIZE).max(1));
    Ok(())
}

/// How many gzip members `bytes` holds (each read to its end by a single-member decoder).
fn members(mut bytes: &[u8]) -> Result<usize> {
    let mut n = 0;
    while !bytes.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(bytes);
        io::copy(&mut decoder, &mut io::sink())?;
        bytes = decoder.into_inner();
        n += 1;
    }
    Ok(n)
}

#[test]
fn empty_and_one_byte_inputs() -> Result<()> {
    round_trip(b"")?;
    round_trip(b"x")
}

#[test]
fn random_input_across_many_blocks() -> Result<()> {
    round_trip(&noise(10 << 20, 0x9e37_79b9_7f4a_7c15))
}

#[test]
fn block_boundaries_and_back_references() -> Result<()> {
    // Text that repeats across block boundaries, exactly one
    // and two blocks long, and one byte past.
    let line = b"the quick brown fox jumps over the lazy dog 0123456789\n";
    let text: Vec<u8> = line.iter().copied().cycle().take(3 * BLOCK_SIZE).collect();
    for len in [
        BLOCK_SIZE,
        2 * BLOCK_SIZE,
        2 * BLOCK_SIZE + 1,
        32 * 1024 - 1,
    ] {
        round_trip(&text[..len])?;
    }
    // Blocks compressed on their own keep the ratio of a single stream.
    let dir = tempfile::tempdir()?;
    let size = gzip_layer(&text[..], &dir.path().join("t.gz"))?.size;
    assert!(size < 3 * BLOCK_SIZE as u64 / 50, "compressed to {size}");
    Ok(())
}

#[test]
fn output_does_not_depend_on_reads() -> Result<()> {
    // A reader that returns a few bytes at a time gives the same bytes as one slice.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(1000);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let data = noise(BLOCK_SIZE + 12345, 7);
    let dir = tempfile::tempdir()?;
    let a = gzip_layer(&data[..], &dir.path().join("a.gz"))?;
    let b = gzip_layer(Trickle(&data), &dir.path().join("b.gz"))?;
    assert_eq!(a, b);
    Ok(())
}

/// Word salad: text with many equal-length matches to choose from.
fn words(len: usize, mut seed: u64) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "layer ", "blob ", "digest ", "image\n", "tar ", "a ", "", "gz ",
    ];
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(WORDS[(seed % 8) as usize].as_bytes());
        out.push((seed >> 8) as u8 & 0x7f);
    }
    out.truncate(len);
    out
}

#[test]
fn same_input_same_digest_whatever_ran_before() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let a = words(3 * BLOCK_SIZE, 11);
    let b = [noise(BLOCK_SIZE, 5), words(3 * BLOCK_SIZE, 12)].concat();
    let first = gzip_layer(&a[..], &dir.path().join("a1.gz"))?;
    gzip_layer(&b[..], &dir.path().join("b.gz"))?;
    let again = gzip_layer(&a[..], &dir.path().join("a2.gz"))?;
    assert_eq!(first, again);
    Ok(())
}

#[test]
fn read_error_removes_output() -> Result<()> {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(b'a');
            self.0 -= n;
            Ok(n)
        }
    }
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("x.gz");
    let err = format!(
        "{:#}",
        gzip_layer(Failing(3 * BLOCK_SIZE + 5), &out)
            .err()
            .context("no error")?
    );
    assert!(
        err.contains("disk on fire") && err.contains("x.gz"),
        "{err}"
    );
    assert!(!out.exists());
    assert!(gzip_layer_with_level(&b""[..], &out, 10).is_err());
    Ok(())
}

#[test]
fn same_digest_with_one_and_many_threads() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Text, random blocks (stored) and text again, over many blocks.
    let data = [
        words(5 * BLOCK_SIZE + 7, 21),
        noise(2 * BLOCK_SIZE, 22),
        words(3 * BLOCK_SIZE, 23),
    ]
    .concat();
    for level in [1, DEFAULT_LEVEL, 6] {
        let one = gzip_layer_with_threads(&data[..], &dir.path().join("1.gz"), level, 1)?;
        let two = gzip_layer_with_threads(&data[..], &dir.path().join("2.gz"), level, 2)?;
        let many = gzip_layer_with_threads(&data[..], &dir.path().join("7.gz"), level, 7)?;
        assert_eq!(one, two, "level {level}");
        assert_eq!(one, many, "level {level}");
    }
    Ok(())
}

#[test]
fn random_blocks_are_stored() -> Result<()> {
    // Deflate at level 1 makes random data 5% bigger; stored blocks add 5 bytes per
    // 64 KiB. Random data between text still round-trips.
    let dir = tempfile::tempdir()?;
    let data = noise(3 * BLOCK_SIZE, 31);
    let size = gzip_layer_with_level(&data[..], &dir.path().join("r.gz"), 1)?.size;
    assert!(size < data.len() as u64 + 1000, "compressed to {size}");
    assert!(looks_random(&data[..BLOCK_SIZE]));
    assert!(!looks_random(&words(BLOCK_SIZE, 3)));
    round_trip(
        &[
            words(BLOCK_SIZE + 3, 1),
            noise(BLOCK_SIZE, 2),
            words(100, 4),
        ]
        .concat(),
    )?;
    round_trip(&noise(BLOCK_SIZE + 5000, 6))?;
    round_trip(&noise(2 * BLOCK_SIZE, 6))
}

#[test]
fn encodings_from_params() -> Result<()> {
    let default = Encoding::from_params(None, None)?;
    assert_eq!(default, Encoding::default());
    assert_eq!(
        (default.codec(), default.level()),
        (Codec::Gzip, DEFAULT_LEVEL)
    );
    let zstd = Encoding::from_params(Some("zstd"), Some(19))?;
    assert_eq!(zstd.oci_media_type(), ZSTD_MEDIA_TYPE);
    assert_eq!(zstd.docker_media_type(), ZSTD_MEDIA_TYPE);
    assert_eq!(
        default.docker_media_type(),
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    for (c, l) in [(Some("gzip"), 10), (Some("gzip"), 0), (Some("zstd"), 20)] {
        let err = format!(
            "{:#}",
            Encoding::from_params(c, Some(l))
                .err()
                .context("accepted")?
        );
        assert!(err.contains("params.compression_level"), "{err}");
    }
    let oci = "application/vnd.oci.image.layer.v1.tar";
    let docker = "application/vnd.docker.image.rootfs.diff.tar";
    assert_eq!(zstd.for_media_type(oci), (zstd, format!("{oci}+zstd")));
    assert_eq!(
        zstd.for_media_type(docker),
        (Encoding::default(), format!("{docker}.gzip"))
    );
    assert_eq!(
        default.for_media_type(oci),
        (default, format!("{oci}+gzip"))
    );
    let err = format!(
        "{:#}",
        Encoding::from_params(Some("xz"), None)
            .err()
            .context("xz")?
    );
    assert!(err.contains("params.compression \"xz\""), "{err}");
    Ok(())
}

#[test]
fn levels_all_decompress() -> Result<()> {
    let data = noise(100_000, 3);
    let dir = tempfile::tempdir()?;
    for level in [0, 1, 9] {
        let out = dir.path().join(format!("{level}.gz"));
        gzip_layer_with_level(&data[..], &out, level)?;
        assert_eq!(gunzip_with_gzip(&out)?, data);
    }
    Ok(())
}
