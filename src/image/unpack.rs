//! The apply side of `in`: layers go from downloaded blob files into `rootfs/`, in order,
//! while downloads finish in any order. [`Arrivals`] is where a download says its blob is
//! ready (or failed) and where [`apply_all`] waits; each layer is read, decompressed and
//! hashed on one thread (a bounded pipe) while this one applies its tar, and its `diff_id` is
//! checked at the end. Nothing here speaks HTTP: the downloads are [`crate::fetch`]'s.

use crate::image::compression;
use crate::image::hashing::HashingReader;
use crate::image::model::{Descriptor, Digest};
use crate::image::rootfs::{LayerStats, Rootfs};
use crate::log::Log;
use crate::progress;
use anyhow::{bail, Context as _};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// Where each downloaded blob is, once it is: the applier waits on this, in layer order,
/// while downloads finish in any order.
#[derive(Debug, Default)]
pub struct Arrivals {
    state: Mutex<ArrivalState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct ArrivalState {
    /// Finished downloads, by digest.
    blobs: HashMap<Digest, Result<PathBuf, String>>,
    /// Set when the download as a whole failed: every waiter gets it.
    failed: Option<String>,
}

impl Arrivals {
    /// Records that `digest` arrived at a path (or failed to) and wakes the waiters.
    pub fn arrive(&self, digest: &Digest, result: Result<PathBuf, String>) {
        if let Ok(mut state) = self.state.lock() {
            state.blobs.insert(digest.clone(), result);
        }
        self.changed.notify_all();
    }

    /// Wakes every waiter with `message`: the download as a whole failed.
    pub fn fail_all(&self, message: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.failed = Some(message.to_string());
        }
        self.changed.notify_all();
    }

    /// Blocks until `digest` has arrived (or failed). For blocking threads only.
    pub fn wait(&self, digest: &Digest) -> anyhow::Result<PathBuf> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("download state poisoned"))?;
        loop {
            if let Some(result) = state.blobs.get(digest) {
                return result.clone().map_err(anyhow::Error::msg);
            }
            if let Some(message) = &state.failed {
                return Err(anyhow::Error::msg(message.clone()));
            }
            state = self
                .changed
                .wait(state)
                .map_err(|_| anyhow::anyhow!("download state poisoned"))?;
        }
    }
}

/// Applies `layers` (descriptors, in the manifest's order) to a new rootfs
/// at `root`, each as its download arrives; checks each layer against its `diff_ids` entry
/// while it streams. Unless `keep_blobs`, removes each downloaded blob once
/// applied (used once, it then often leaves the page cache without ever being written to
/// disk). Runs on a blocking thread; says each applied layer on `log`.
pub fn apply_all(
    root: &Path,
    layers: &[Descriptor],
    diff_ids: &[String],
    arrivals: &Arrivals,
    keep_blobs: bool,
    log: &Log,
) -> anyhow::Result<()> {
    let mut rootfs = Rootfs::create(root)?;
    for (i, layer) in layers.iter().enumerate() {
        let (digest, media_type, size) = (layer.digest.as_str(), &layer.media_type, &layer.size);
        let path = arrivals.wait(&layer.digest)?;
        let expected = diff_ids.get(i).map(String::as_str).unwrap_or_default();
        let started = Instant::now();
        let stats = apply_one(&mut rootfs, &path, digest, media_type, expected)
            .with_context(|| format!("applying layer {} of {}", i + 1, layers.len()))?;
        // The same blob may be listed again further up: keep it for that.
        let used_again = layers[i + 1..].iter().any(|l| l.digest == layer.digest);
        if !keep_blobs && !used_again {
            let _ = std::fs::remove_file(&path);
        }
        log.line(format_args!(
            "applied layer {}/{} {} ({}, {} entries) in {:.1} s",
            i + 1,
            layers.len(),
            progress::short(digest),
            progress::mb(*size),
            stats.entries,
            started.elapsed().as_secs_f64()
        ));
        for warning in &stats.skipped {
            log.line(format_args!("  warning: {warning}"));
        }
    }
    rootfs.finish()
}

/// One layer: a thread reads, decompresses and hashes; this thread applies the tar.
fn apply_one(
    rootfs: &mut Rootfs,
    path: &Path,
    digest: &str,
    media_type: &str,
    expected_diff_id: &str,
) -> anyhow::Result<LayerStats> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let decompressed = compression::open(file, media_type)?;
    let (reader, decompressor) = pipe::spawn(HashingReader::new(decompressed));
    let applied = rootfs.apply_layer(reader, digest);
    let hashed = decompressor
        .join()
        .map_err(|_| anyhow::anyhow!("the decompressor thread panicked"))?;
    let stats = applied?;
    let (diff_id, _) = hashed.context("decompressing the layer")?;
    if diff_id != expected_diff_id {
        bail!("uncompressed layer digest is {diff_id} but the image config says {expected_diff_id}: the layer is corrupt");
    }
    Ok(stats)
}

mod pipe {
    //! A bounded pipe between a decompressing thread and the applier, so both cores work.
    use crate::image::hashing::HashingReader;
    use std::io::{self, Read};
    use std::sync::mpsc::{sync_channel, Receiver};
    use std::thread::JoinHandle;

    const CHUNK: usize = 256 * 1024;
    const DEPTH: usize = 16;

    /// The reading end.
    pub struct PipeReader {
        rx: Receiver<io::Result<Vec<u8>>>,
        current: Vec<u8>,
        offset: usize,
    }

    impl Read for PipeReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            while self.offset == self.current.len() {
                match self.rx.recv() {
                    Ok(Ok(chunk)) => {
                        self.current = chunk;
                        self.offset = 0;
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Ok(0),
                }
            }
            let n = buf.len().min(self.current.len() - self.offset);
            buf[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
            self.offset += n;
            Ok(n)
        }
    }

    /// Starts a thread reading `source` to its end (so the hash covers everything, even
    /// past where the tar reader stops) and returns the reading end and the thread, which
    /// yields the digest and size.
    pub fn spawn<R: Read + Send + 'static>(
        mut source: HashingReader<R>,
    ) -> (PipeReader, JoinHandle<io::Result<(String, u64)>>) {
        let (tx, rx) = sync_channel(DEPTH);
        let handle = std::thread::spawn(move || {
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let mut filled = 0;
                while filled < CHUNK {
                    match source.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let message = e.to_string();
                            let _ = tx.send(Err(e));
                            return Err(io::Error::other(message));
                        }
                    }
                }
                if filled == 0 {
                    break;
                }
                chunk.truncate(filled);
                // A closed receiver (the applier stopped) is not an error here: the hash
                // still covers the whole stream below.
                let _ = tx.send(Ok(chunk));
            }
            drop(tx);
            source.finish()
        });
        (
            PipeReader {
                rx,
                current: Vec::new(),
                offset: 0,
            },
            handle,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiter_gets_its_blob_or_the_failure_whichever_comes() {
        let [a, b, c] = [b"a", b"b", b"c"].map(|bytes| Digest::sha256_of(bytes));
        let arrivals = Arc::new(Arrivals::default());
        let waiter = {
            let (arrivals, b) = (Arc::clone(&arrivals), b.clone());
            std::thread::spawn(move || arrivals.wait(&b))
        };
        arrivals.arrive(&a, Ok(PathBuf::from("/blobs/a")));
        arrivals.arrive(&b, Err("404".to_string()));
        assert_eq!(waiter.join().unwrap().unwrap_err().to_string(), "404");
        assert_eq!(arrivals.wait(&a).unwrap(), PathBuf::from("/blobs/a"));
        arrivals.fail_all("download failed");
        let err = arrivals.wait(&c).unwrap_err();
        assert_eq!(err.to_string(), "download failed");
    }
}
