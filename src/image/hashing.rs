//! Readers and writers that count, hash or copy what passes through them: the one set every
//! layer stream uses (a `diff_id` checked while a layer is applied, a blob's digest and size
//! while it is copied or compressed). Hashing is [`crate::digest::Hasher`]'s, so any
//! algorithm we verify works here too; `new` means sha256, what we name our own content.

use crate::digest::Hasher;
use std::io::{self, Read, Write};

/// A reader that counts and hashes every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`, hashing in sha256.
    pub fn new(inner: R) -> Self {
        Self::with_hasher(inner, Hasher::sha256())
    }

    /// Wraps `inner`, hashing with `hasher`.
    pub fn with_hasher(inner: R, hasher: Hasher) -> Self {
        HashingReader {
            inner,
            hasher,
            bytes: 0,
        }
    }

    /// Reads what is left (a tar reader stops before the end padding), then returns the
    /// digest and byte count of everything that passed.
    pub fn finish(self) -> io::Result<(String, u64)> {
        self.finish_inner()
            .map(|(_, digest, bytes)| (digest, bytes))
    }

    /// [`HashingReader::finish`], handing back the inner reader too.
    pub fn finish_inner(mut self) -> io::Result<(R, String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.inner, self.hasher.digest(), self.bytes))
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

/// A writer that hashes and counts what it passes on.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`, hashing in sha256.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::sha256(),
            bytes: 0,
        }
    }

    /// The digest and byte count of everything written (flush first).
    pub fn finish(self) -> (String, u64) {
        (self.hasher.digest(), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that counts what passes through it, to check that a stream had the length
/// its descriptor or tar header promised.
pub struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> CountingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        CountingReader { inner, count: 0 }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// A reader that writes a copy of everything read through it to `out`.
pub struct TeeReader<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> TeeReader<R, W> {
    /// Reads from `inner`, copying to `out`.
    pub fn new(inner: R, out: W) -> Self {
        TeeReader { inner, out }
    }

    /// The copy's writer (to flush it).
    pub fn into_out(self) -> W {
        self.out
    }
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest;

    #[test]
    fn readers_and_writers_count_hash_and_copy() {
        let data = b"some layer bytes".repeat(100);
        let mut tar_reader_stops_early = HashingReader::new(&data[..]);
        let mut first = [0u8; 10];
        tar_reader_stops_early.read_exact(&mut first).unwrap();
        assert_eq!(
            tar_reader_stops_early.finish().unwrap(),
            (digest::sha256(&data), data.len() as u64)
        );

        let sha512 = HashingReader::with_hasher(&data[..], Hasher::for_digest("sha512:").unwrap());
        assert_eq!(
            sha512.finish().unwrap().0,
            digest::of("sha512:", &data).unwrap()
        );

        let mut writer = HashingWriter::new(Vec::new());
        writer.write_all(&data).unwrap();
        assert_eq!(writer.finish(), (digest::sha256(&data), data.len() as u64));

        let mut counting = CountingReader::new(&data[..]);
        io::copy(&mut counting, &mut io::sink()).unwrap();
        assert_eq!(counting.count(), data.len() as u64);

        let hashed = HashingReader::new(TeeReader::new(&data[..], Vec::new()));
        let (tee, digest, size) = hashed.finish_inner().unwrap();
        assert_eq!((digest, size), (digest::sha256(&data), data.len() as u64));
        assert_eq!(tee.into_out(), data);
    }
}
