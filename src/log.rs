//! Where a command's messages go: stderr for the executables, a buffer in tests. Cheap to
//! clone into tasks; each line is written whole, so lines from tasks never interleave.

use std::fmt::Display;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A line-oriented message sink shared by a command and the tasks it spawns.
#[derive(Clone)]
pub struct Log {
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl Log {
    /// The process's stderr.
    pub fn stderr() -> Log {
        Log::to(std::io::stderr())
    }

    /// Any writer (a file, a pipe, a buffer).
    pub fn to(writer: impl Write + Send + 'static) -> Log {
        Log {
            sink: Arc::new(Mutex::new(Box::new(writer))),
        }
    }

    /// Writes `text` and a newline in one write, as `eprintln!` does; a failing sink (a
    /// closed stderr) is ignored rather than failing the command.
    pub fn line(&self, text: impl Display) {
        let line = format!("{text}\n");
        // A panic while holding the lock leaves the writer usable: keep logging.
        let mut sink = self
            .sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = sink.write_all(line.as_bytes());
        let _ = sink.flush();
    }
}

/// The process's stderr, as [`Log::stderr`]: what a registry client or credential source
/// built without a command's log writes to.
impl Default for Log {
    fn default() -> Log {
        Log::stderr()
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Log")
    }
}

/// What a test [`Log`] captured.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

#[cfg(test)]
impl Captured {
    /// A log writing into a new buffer, and the buffer.
    pub(crate) fn log() -> (Log, Captured) {
        let captured = Captured::default();
        (Log::to(captured.clone()), captured)
    }

    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_written_whole_from_every_clone() {
        let (log, captured) = Captured::log();
        let threads: Vec<_> = (0..4)
            .map(|n| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        log.line(format_args!("thread {n} line {i}"));
                    }
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().is_ok());
        }
        let text = captured.text();
        assert_eq!(text.lines().count(), 200);
        assert!(text
            .lines()
            .all(|l| l.starts_with("thread ") && l.contains(" line ")));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn a_failing_sink_is_ignored() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("closed"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::Error::other("closed"))
            }
        }
        Log::to(Broken).line("nobody hears this");
    }
}
