//! Parallel gzip for layers, in one streaming pass: the input is cut into fixed 1 MiB
//! blocks that every core compresses at once with libdeflate, each into a gzip member of
//! its own; the layer is those members one after another. RFC 1952 allows a gzip file to
//! be several members, and every layer reader we know reads them all (Go's
//! `compress/gzip` and so Docker, containerd, skopeo, umoci and buildah; `gzip -d`, `pigz`,
//! zlib's `gzread`; eStargz layers are built the same way). libdeflate needs no history
//! across blocks (deflate's window is 32 KiB; 1 MiB blocks lose no measurable size) and is
//! about 1.5x as fast as zlib-rs for a smaller output (see the README's table of levels).
//!
//! The output depends only on the input and the level, never on the number of cores or on
//! what a worker compressed before: the same layer always gets the same digest. It reads
//! with `gzip -d`, Go's `compress/gzip` and [`super::compression::open`].
//!
//! A block whose bytes look random (already compressed files, random data: an order-0
//! entropy of at least 7.9 bits per byte) is written as stored deflate blocks
//! instead: deflate would gain nothing there and costs as much as on text. The choice
//! depends only on the block's bytes, so the output stays a function of the input.
//!
//! While it runs, the sha256 of the input (the layer's `diff_id`) and of the output (its
//! `digest`) are computed; at most `2 × cores + 2` blocks are in memory at once.
//!
//! [`Encoding`] names a layer compression and level (`params.compression`,
//! `params.compression_level`); [`compress_layer`] runs gzip here or zstd in
//! [`super::zstd_layer`].

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::digest::Hasher;
use crate::image::hashing::HashingWriter;
use anyhow::{anyhow, bail, Context, Result};

/// The gzip level used by [`gzip_layer`]: libdeflate's level 2, the fastest whose output
/// is no bigger than skopeo's (pgzip's default) on the benchmark image (see the README's
/// table of levels).
pub const DEFAULT_LEVEL: u32 = 2;

/// Blocks at least this random (order-0 entropy, bits per byte) are stored, not deflated.
const STORED_ENTROPY: f64 = 7.9;
/// The largest stored deflate block.
const STORED_MAX: usize = 65_535;

/// Bytes of input per block (and gzip member).
const BLOCK_SIZE: usize = 1024 * 1024;
/// gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown (as Go writes).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// What [`gzip_layer`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compressed {
    /// `sha256:<hex>` of the gzip output: the layer's digest.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed input: the layer's `diff_id`.
    pub diff_id: String,
    /// The size of the gzip output in bytes.
    pub size: u64,
}

/// Compresses an uncompressed layer stream to gzip (level [`DEFAULT_LEVEL`]) at `out`,
/// computing in one pass the sha256 of the input (`diff_id`) and of the output (`digest`)
/// and the output size. Uses every core. On failure `out` is removed.
pub fn gzip_layer(input: impl Read, out: &Path) -> Result<Compressed> {
    gzip_layer_with_level(input, out, DEFAULT_LEVEL)
}

/// [`gzip_layer`] at another level, 0 (stored) to 9 (smallest).
pub fn gzip_layer_with_level(input: impl Read, out: &Path, level: u32) -> Result<Compressed> {
    gzip_layer_with_threads(input, out, level, cores())
}

/// The number of threads the compressors use: one per core.
pub fn cores() -> usize {
    thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// [`gzip_layer_with_level`] with `workers` deflate threads (the output does not depend on
/// it).
pub fn gzip_layer_with_threads(
    input: impl Read,
    out: &Path,
    level: u32,
    workers: usize,
) -> Result<Compressed> {
    if level > 9 {
        bail!("gzip level {level} is out of range: use 0 to 9");
    }
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let result = compress_stream(input, file, level, workers.max(1))
        .with_context(|| format!("compressing a layer to {}", out.display()));
    if result.is_err() {
        // The compression error is the one worth reporting.
        let _ = fs::remove_file(out);
    }
    result
}

/// A layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// gzip ([`gzip_layer_with_threads`]).
    Gzip,
    /// zstd ([`super::zstd_layer`]).
    Zstd,
}

/// How layers are compressed: `params.compression` and `params.compression_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    codec: Codec,
    level: u32,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding {
            codec: Codec::Gzip,
            level: DEFAULT_LEVEL,
        }
    }
}

impl Encoding {
    /// `compression` (`gzip`, the default, or `zstd`) at `level` (gzip 1 to 9, default
    /// [`DEFAULT_LEVEL`]; zstd 1 to 19, default [`super::zstd_layer::DEFAULT_LEVEL`]); the
    /// errors name the params.
    pub fn from_params(compression: Option<&str>, level: Option<u32>) -> Result<Encoding> {
        let codec = match compression.unwrap_or("gzip") {
            "gzip" => Codec::Gzip,
            "zstd" => Codec::Zstd,
            other => bail!("params.compression {other:?} is not one of gzip, zstd"),
        };
        let (range, default) = match codec {
            Codec::Gzip => (1..=9, DEFAULT_LEVEL),
            Codec::Zstd => (1..=19, super::zstd_layer::DEFAULT_LEVEL),
        };
        let level = level.unwrap_or(default);
        if !range.contains(&level) {
            bail!(
                "params.compression_level {level} is out of range for {}: use {} to {}",
                codec.name(),
                range.start(),
                range.end()
            );
        }
        Ok(Encoding { codec, level })
    }

    /// The compression.
    pub fn codec(self) -> Codec {
        self.codec
    }

    /// The level.
    pub fn level(self) -> u32 {
        self.level
    }

    /// The OCI layer media type of its output.
    pub fn oci_media_type(self) -> &'static str {
        match self.codec {
            Codec::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Codec::Zstd => ZSTD_MEDIA_TYPE,
        }
    }

    /// For a layer whose uncompressed media type is `uncompressed`: the encoding to use and
    /// the compressed media type. Docker's media types have no zstd variant, so a Docker
    /// layer is gzipped (at gzip's default level) whatever was asked.
    pub fn for_media_type(self, uncompressed: &str) -> (Encoding, String) {
        match self.codec {
            Codec::Zstd if uncompressed.starts_with("application/vnd.oci.") => {
                (self, format!("{uncompressed}+zstd"))
            }
            Codec::Zstd => (
                Encoding::default(),
                super::compression::gzip_media_type(uncompressed),
            ),
            Codec::Gzip => (self, super::compression::gzip_media_type(uncompressed)),
        }
    }

    /// The layer media type for a Docker v2 schema 2 manifest: Docker's gzip type, or
    /// OCI's zstd type (Docker has none of its own and pushes OCI's).
    pub fn docker_media_type(self) -> &'static str {
        match self.codec {
            Codec::Gzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Codec::Zstd => ZSTD_MEDIA_TYPE,
        }
    }
}

impl Codec {
    /// `gzip` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }
}

/// A compressed layer the registry being pushed to already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownLayer {
    /// Its digest.
    pub digest: crate::digest::Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type, as that registry's manifest gives it.
    pub media_type: String,
    /// The repository (on the registry being pushed to) that has it.
    pub repository: String,
}

/// How `out` makes layers out of uncompressed content.
#[derive(Debug, Clone, Default)]
pub struct LayerOptions {
    /// The compression and level.
    pub encoding: Encoding,
    /// Compressed layers (in `encoding`'s compression) the target repository already has,
    /// by `diff_id`: used instead of compressing the same content again.
    pub known: BTreeMap<String, KnownLayer>,
    /// Where each layer made into a verified file goes as soon as it is ready, so that it
    /// can be uploaded while the next one is compressed (see [`crate::upload_ahead`]).
    pub ready: Option<tokio::sync::mpsc::UnboundedSender<super::model::Blob>>,
}

/// OCI's zstd layer media type.
pub const ZSTD_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Compresses an uncompressed layer stream at `out` as `encoding` says, with every core;
/// see [`gzip_layer`] (whose guarantees the zstd encoder keeps).
pub fn compress_layer(input: impl Read, out: &Path, encoding: Encoding) -> Result<Compressed> {
    match encoding.codec {
        Codec::Gzip => gzip_layer_with_threads(input, out, encoding.level, cores()),
        Codec::Zstd => super::zstd_layer::zstd_layer(input, out, encoding.level, cores()),
    }
}

/// One block to compress.
struct Job {
    index: u64,
    data: Vec<u8>,
    last: bool,
}

/// One block made into a gzip member, with its input buffer (recycled by the reader).
struct Done {
    index: u64,
    member: Result<Vec<u8>>,
    data: Vec<u8>,
    last: bool,
}

/// The writer's totals.
struct Written {
    digest: String,
    size: u64,
}

/// The pipeline: this thread reads and hashes the input, workers compress blocks, and a
/// writer thread puts them in order, hashes and writes them. Buffers circulate as tokens,
/// which bounds memory.
fn compress_stream<R: Read, W: Write + Send>(
    mut input: R,
    output: W,
    level: u32,
    workers: usize,
) -> Result<Compressed> {
    let slots = 2 * workers + 2;
    thread::scope(|scope| {
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(slots);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let (free_tx, free_rx) = mpsc::sync_channel::<Vec<u8>>(slots);
        for _ in 0..slots {
            // Cannot fail: the channel has room for every token and its receiver is here.
            let _ = free_tx.send(Vec::new());
        }
        for _ in 0..workers {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || member_worker(&job_rx, &done_tx, level));
        }
        // Only the workers hold the job receiver and the done senders now, so each
        // channel closes when its users are gone.
        drop(job_rx);
        drop(done_tx);
        let writer = scope.spawn(move || write_members(output, &done_rx, &free_tx));

        let read = read_blocks(&mut input, &job_tx, &free_rx);
        drop(job_tx);
        let written = writer
            .join()
            .map_err(|_| anyhow!("the gzip writer thread panicked"))?;
        let diff_id = read?;
        let written = written?;
        Ok(Compressed {
            digest: written.digest,
            diff_id,
            size: written.size,
        })
    })
}

/// Reads the input into blocks and hands them out; returns the input's digest. Stops
/// early (and returns `Ok`) when the writer has gone, which reports why.
fn read_blocks(
    input: &mut impl Read,
    jobs: &SyncSender<Job>,
    free: &Receiver<Vec<u8>>,
) -> Result<String> {
    let mut hasher = Hasher::sha256();
    // The first byte of the next block, read to learn whether a full block is the last.
    let mut carry = None;
    for index in 0.. {
        let Ok(mut data) = free.recv() else {
            break; // the writer failed
        };
        data.clear();
        data.reserve_exact(BLOCK_SIZE);
        data.extend(carry.take());
        let n = fill(input, &mut data).context("reading the layer")?;
        hasher.update(&data);
        if n == BLOCK_SIZE {
            carry = next_byte(input).context("reading the layer")?;
        }
        let last = carry.is_none();
        if jobs.send(Job { index, data, last }).is_err() || last {
            break;
        }
    }
    Ok(hasher.digest())
}

/// One more byte of `input`, `None` at its end.
fn next_byte(input: &mut impl Read) -> io::Result<Option<u8>> {
    let mut byte = [0u8];
    loop {
        match input.read(&mut byte) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(byte[0])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads until `buf` holds [`BLOCK_SIZE`] bytes or the input ends; returns how many.
fn fill(input: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    while buf.len() < BLOCK_SIZE {
        let want = (BLOCK_SIZE - buf.len()) as u64;
        match input.by_ref().take(want).read_to_end(buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf.len())
}

/// Makes jobs into gzip members until there are none. Each worker keeps one compressor:
/// libdeflate starts every call afresh, so what a worker compressed before does not
/// change the next member.
fn member_worker(jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>, level: u32) {
    let mut compressor = None;
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return, // another worker panicked; the writer reports it missing
        };
        let Ok(job) = job else {
            return;
        };
        // A panic here would leave the writer waiting for this block forever.
        let member = panic::catch_unwind(AssertUnwindSafe(|| {
            gzip_member(&mut compressor, &job.data, level)
        }))
        .unwrap_or_else(|_| Err(anyhow!("deflate panicked")));
        let result = Done {
            index: job.index,
            member,
            data: job.data,
            last: job.last,
        };
        if done.send(result).is_err() {
            return;
        }
    }
}

/// `data` as one gzip member: [`GZIP_HEADER`], `data` deflated by libdeflate at `level`
/// (or as stored blocks when it [`looks_random`] or `level` is 0), its CRC-32 and length.
/// `compressor` is made on first use.
fn gzip_member(
    compressor: &mut Option<libdeflater::Compressor>,
    data: &[u8],
    level: u32,
) -> Result<Vec<u8>> {
    let mut member = Vec::with_capacity(data.len() + data.len() / 8 + 1024);
    member.extend_from_slice(&GZIP_HEADER);
    if level == 0 || looks_random(data) {
        stored(data, &mut member);
    } else {
        let compressor = match compressor {
            Some(compressor) => compressor,
            None => {
                let level = libdeflater::CompressionLvl::new(i32::try_from(level)?)
                    .map_err(|_| anyhow!("gzip level {level} is out of range"))?;
                compressor.insert(libdeflater::Compressor::new(level))
            }
        };
        let start = member.len();
        member.resize(start + compressor.deflate_compress_bound(data.len()), 0);
        let n = compressor
            .deflate_compress(data, &mut member[start..])
            .map_err(|e| anyhow!("deflating a block: {e:?}"))?;
        member.truncate(start + n);
    }
    member.extend_from_slice(&libdeflater::crc32(data).to_le_bytes());
    // ISIZE is the input length modulo 2^32.
    member.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(member)
}

/// Whether `data`'s order-0 entropy is at least `STORED_ENTROPY` bits per byte (empty and
/// short data: no): then its blocks are stored, not deflated.
pub fn looks_random(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    // Four interleaved tables, so that runs of one byte do not stall on one counter.
    let mut counts = [[0u32; 256]; 4];
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        counts[0][usize::from(c[0])] += 1;
        counts[1][usize::from(c[1])] += 1;
        counts[2][usize::from(c[2])] += 1;
        counts[3][usize::from(c[3])] += 1;
    }
    for &b in chunks.remainder() {
        counts[0][usize::from(b)] += 1;
    }
    let total = data.len() as f64;
    let mut entropy = 0.0;
    for byte in 0..256 {
        let n = counts.iter().map(|c| c[byte]).sum::<u32>();
        if n > 0 {
            let p = f64::from(n) / total;
            entropy -= p * p.log2();
        }
    }
    entropy >= STORED_ENTROPY
}

/// `data` as stored deflate blocks (RFC 1951 3.2.4), the last one final, appended to `out`.
fn stored(data: &[u8], out: &mut Vec<u8>) {
    let mut chunks: Vec<&[u8]> = data.chunks(STORED_MAX).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let n = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        // BFINAL in bit 0, BTYPE 00, then padding to the byte boundary.
        out.push(u8::from(i + 1 == n));
        // Cannot truncate: chunks are at most STORED_MAX (u16::MAX) long.
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Writes the members in order, hashing what it writes.
fn write_members<W: Write>(
    mut output: W,
    done: &Receiver<Done>,
    free: &SyncSender<Vec<u8>>,
) -> Result<Written> {
    let mut hashed = HashingWriter::new(&mut output);
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    'blocks: loop {
        let Ok(block) = done.recv() else {
            bail!("the layer stream ended early");
        };
        pending.insert(block.index, block);
        while let Some(block) = pending.remove(&next) {
            hashed.write_all(&block.member?).context("writing")?;
            next += 1;
            if block.last {
                break 'blocks;
            }
            // The reader may have stopped already; then the token is not needed.
            let _ = free.send(block.data);
        }
    }
    hashed.flush().context("writing")?;
    let (digest, size) = hashed.finish();
    Ok(Written { digest, size })
}

#[cfg(test)]
mod tests;
