//! Transfer progress on the command's [`Log`] (stderr): one summary line every few seconds while blobs move (per
//! blob in flight: done/size and rate), and a final line; never a flood.

use crate::log::Log;
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

    /// The summary line: blobs finished, bytes so far, overall rate.
    #[cfg(test)]
    fn line(&self) -> String {
        self.line_since(&[], Duration::ZERO)
    }

    /// The summary line, and for each blob in flight its bytes so far, its size and its
    /// rate since the last line (`before`: each blob's bytes then, `since`: how long ago).
    fn line_since(&self, before: &[u64], since: Duration) -> String {
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
            .enumerate()
            .filter(|(_, i)| {
                !i.finished.load(Ordering::Relaxed) && i.done.load(Ordering::Relaxed) > 0
            })
            .take(4)
            .map(|(n, i)| {
                let now = i.done.load(Ordering::Relaxed);
                let mut item = format!("{} {}/{}", i.name, mb(now), mb(i.size));
                if let Some(then) = before.get(n).filter(|_| !since.is_zero()) {
                    let rate = now.saturating_sub(*then) as f64 / since.as_secs_f64();
                    item.push_str(&format!(" {}/s", mb(rate as u64)));
                }
                item
            })
            .collect();
        if !active.is_empty() {
            line.push_str(&format!("; in flight: {}", active.join(", ")));
        }
        line
    }

    /// Each blob's bytes so far.
    fn snapshot(&self) -> Vec<u64> {
        self.items
            .iter()
            .map(|i| i.done.load(Ordering::Relaxed))
            .collect()
    }

    /// Writes a progress line to `log` every [`INTERVAL`] until the returned guard is
    /// dropped.
    pub fn report(self: &Arc<Self>, log: &Log) -> Reporter {
        let log = log.clone();
        self.report_to(move |line| log.line(line))
    }

    /// Gives `sink` a progress line every [`INTERVAL`] until the returned guard is dropped.
    fn report_to(self: &Arc<Self>, sink: impl Fn(String) + Send + 'static) -> Reporter {
        let progress = Arc::clone(self);
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(INTERVAL);
            ticker.tick().await;
            let mut before = progress.snapshot();
            loop {
                ticker.tick().await;
                sink(progress.line_since(&before, INTERVAL));
                before = progress.snapshot();
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

    /// One line per interval, none before the first, with each blob in flight's rate
    /// over the last interval; none after the guard is dropped.
    #[tokio::test(start_paused = true)]
    async fn one_line_every_interval_with_rates() {
        let p = Progress::new(
            "downloading",
            &[
                ("sha256:aaaaaaaaaaaa00".into(), 90_000_000),
                ("sha256:bbbbbbbbbbbb00".into(), 9_000_000),
            ],
        );
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reporter = p.report_to(move |line| sink.lock().map(|mut l| l.push(line)).unwrap_or(()));
        let count = || lines.lock().map(|l| l.len()).unwrap_or(usize::MAX);
        tokio::time::sleep(INTERVAL / 2).await;
        assert_eq!(count(), 0, "no line before the first interval");
        p.items[0].done.store(30_000_000, Ordering::Relaxed);
        p.items[1].done.store(9_000_000, Ordering::Relaxed);
        p.items[1].finished.store(true, Ordering::Relaxed);
        tokio::time::sleep(INTERVAL).await;
        assert_eq!(count(), 1);
        p.items[0].done.store(60_000_000, Ordering::Relaxed);
        tokio::time::sleep(INTERVAL).await;
        assert_eq!(count(), 2);
        drop(reporter);
        tokio::time::sleep(INTERVAL * 5).await;
        assert_eq!(count(), 2, "no line after the guard is dropped");
        let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
        assert!(
            lines[0].starts_with("downloading 1/2 blobs, 39.0 MB of 99.0 MB"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains("aaaaaaaaaaaa 30.0 MB/90.0 MB 10.0 MB/s"),
            "{}",
            lines[0]
        );
        assert!(
            !lines[0].contains("bbbbbbbbbbbb"),
            "finished blobs are not in flight"
        );
        assert!(
            lines[1].contains("aaaaaaaaaaaa 60.0 MB/90.0 MB 10.0 MB/s"),
            "{}",
            lines[1]
        );
    }

    /// The command's log gets the lines (stderr for the executables).
    #[tokio::test(start_paused = true)]
    async fn report_writes_to_the_log() {
        let p = Progress::new("uploading", &[("sha256:cccccccccccc00".into(), 4_000_000)]);
        let (log, captured) = crate::log::Captured::log();
        let reporter = p.report(&log);
        p.items[0].done.store(1_000_000, Ordering::Relaxed);
        tokio::time::sleep(INTERVAL + INTERVAL / 2).await;
        drop(reporter);
        let text = captured.text();
        assert!(
            text.starts_with("uploading 0/1 blobs, 1.0 MB of 4.0 MB"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
