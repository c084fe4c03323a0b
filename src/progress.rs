//! Transfer progress on stderr: one summary line every few seconds while blobs move (per
//! blob in flight: done/size and rate), and a final line; never a flood.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a progress line is printed.
pub const INTERVAL: Duration = Duration::from_secs(3);

/// One blob's transfer.
#[derive(Debug)]
pub struct Item {
    /// Short name (digest prefix).
    pub name: String,
    /// Expected size in bytes.
    pub size: u64,
    /// Bytes moved so far (shared with the transfer that counts them).
    pub done: Arc<AtomicU64>,
    /// Set when finished.
    pub finished: AtomicBool,
}

/// The transfers of one command.
#[derive(Debug)]
pub struct Progress {
    verb: &'static str,
    items: Vec<Item>,
    started: Instant,
}

impl Progress {
    /// Tracks blobs `(digest, size)`, described by `verb` ("downloading", "uploading").
    pub fn new(verb: &'static str, blobs: &[(String, u64)]) -> Arc<Progress> {
        Arc::new(Progress {
            verb,
            items: blobs
                .iter()
                .map(|(digest, size)| Item {
                    name: short(digest),
                    size: *size,
                    done: Arc::new(AtomicU64::new(0)),
                    finished: AtomicBool::new(false),
                })
                .collect(),
            started: Instant::now(),
        })
    }

    /// The tracker of blob `i`.
    pub fn item(&self, i: usize) -> Option<&Item> {
        self.items.get(i)
    }

    /// The byte counter of blob `i` (a detached one when out of range).
    pub fn counter(&self, i: usize) -> Arc<AtomicU64> {
        self.items
            .get(i)
            .map(|item| Arc::clone(&item.done))
            .unwrap_or_default()
    }

    /// The summary line.
    pub fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let total: u64 = self.items.iter().map(|i| i.size).sum();
        let done: u64 = self
            .items
            .iter()
            .map(|i| i.done.load(Ordering::Relaxed))
            .sum();
        let finished = self
            .items
            .iter()
            .filter(|i| i.finished.load(Ordering::Relaxed))
            .count();
        let mut line = format!(
            "{} {finished}/{} blobs, {} of {} ({}/s)",
            self.verb,
            self.items.len(),
            mb(done),
            mb(total),
            mb((done as f64 / elapsed) as u64)
        );
        let active: Vec<String> = self
            .items
            .iter()
            .filter(|i| !i.finished.load(Ordering::Relaxed) && i.done.load(Ordering::Relaxed) > 0)
            .take(4)
            .map(|i| {
                format!(
                    "{} {}/{}",
                    i.name,
                    mb(i.done.load(Ordering::Relaxed)),
                    mb(i.size)
                )
            })
            .collect();
        if !active.is_empty() {
            line.push_str(&format!("; in flight: {}", active.join(", ")));
        }
        line
    }

    /// Prints [`Self::line`] every [`INTERVAL`] until the returned guard is dropped.
    pub fn report(self: &Arc<Self>) -> Reporter {
        let progress = Arc::clone(self);
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(INTERVAL);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                eprintln!("{}", progress.line());
            }
        });
        Reporter { handle }
    }
}

/// Stops the periodic progress line when dropped.
#[derive(Debug)]
pub struct Reporter {
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// `sha256:0123456789ab…` → `0123456789ab`.
pub fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// Bytes as `12.3 MB`.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line() {
        let p = Progress::new(
            "downloading",
            &[
                ("sha256:0123456789abcdef".into(), 2_000_000),
                ("sha256:ffff".into(), 1_000_000),
            ],
        );
        p.items[0].done.store(1_000_000, Ordering::Relaxed);
        let line = p.line();
        assert!(
            line.starts_with("downloading 0/2 blobs, 1.0 MB of 3.0 MB"),
            "{line}"
        );
        assert!(line.contains("0123456789ab 1.0 MB/2.0 MB"), "{line}");
        assert_eq!(short("sha256:abc"), "abc");
    }
}
