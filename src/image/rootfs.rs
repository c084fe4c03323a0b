//! Applying layer tar streams to a root directory, safely.
//!
//! [`Rootfs`] assembles a root filesystem from uncompressed layer tars, applied in order
//! with the OCI/Docker semantics: regular files, directories, symlinks, hardlinks and
//! FIFOs; numeric ownership (when running as root), permission bits including setuid,
//! setgid and sticky, modification times, extended attributes from PAX
//! `SCHILY.xattr.*` records; whiteouts and opaque directories ([`super::whiteout`]).
//! GNU long names, PAX paths and names in any encoding are handled by the `tar` reader.
//!
//! # Containment
//! Nothing outside the root is ever created, changed or removed, whatever a layer holds.
//! The tar crate's `unpack` is not used; every operation is an `*at` call on the final
//! name, relative to a directory fd that was resolved inside the root:
//! - entry and hardlink names are interpreted as if the root were `/` (chroot semantics):
//!   they are normalised lexically (`/etc/x` is `etc/x`, `..` at the root stays at the
//!   root, `a/../b` is `b`), then their parent directory is opened inside the root,
//!   following symlinks the way a chrooted process would (absolute targets start again at
//!   the root). So `../escape`, `/etc/x`, a parent `evil -> /` or `evil -> ../../..` all
//!   land inside the root and are applied there; a parent symlink to a path missing from
//!   the root is an error. See `resolve` for the two resolvers (`openat2` with
//!   `RESOLVE_IN_ROOT`, and a manual walk for kernels without it).
//! - the final component is never followed: files are created with `O_CREAT | O_EXCL |
//!   O_NOFOLLOW`, whatever was there before (a symlink to outside included) is removed
//!   first, directories are reopened with `O_NOFOLLOW`, ownership, times and attributes
//!   are set on our own fd or with `AT_SYMLINK_NOFOLLOW` / `lsetxattr`.
//! - removals (whiteouts, replacements) walk trees with `O_NOFOLLOW` and `unlinkat`.
//!
//! # Semantics and policy
//! - **Replacement.** An entry replaces whatever is at its path (a whole directory tree
//!   included), except that a directory entry over an existing directory only updates
//!   its metadata. A file is always written to a new inode (unlink, then create), so
//!   copies hardlinked from lower layers keep their content.
//! - **Missing parents** are created with mode `0755`; a parent that exists but is not a
//!   directory (or is a dangling symlink) is an error.
//! - **Hardlinks** link to an entry of this layer or a lower one, resolved inside the root;
//!   the target must exist and not be a directory. The link shares the target's inode, so
//!   the hardlink entry's own metadata is not applied (as GNU tar does).
//! - **Ownership** is applied only when running as root, never through a symlink; ids
//!   this user namespace does not map (or a missing `CAP_CHOWN`) give a warning.
//!   The mode is set after the owner (`chown` clears setuid and setgid), attributes after
//!   both (`chown` and writes clear `security.capability`).
//! - **Times.** atime = mtime. Files, symlinks and FIFOs get theirs when created;
//!   directories in [`Rootfs::finish`] (their content changes them until then), with the
//!   value from the last layer that had an entry for them. Directories no entry named
//!   (implicit parents) keep the time they got.
//! - **Not root:** ownership is skipped silently, and directories are kept writable by
//!   their owner until [`Rootfs::finish`] sets their final mode.
//! - **The root directory** entry (`./`, `/`, or anything normalising to the root) only
//!   sets the root's permission bits; its owner, time and attributes are ignored, and a
//!   non-directory entry there is skipped with a warning.
//! - **Skipped, with one aggregated warning per kind** in [`LayerStats::skipped`]:
//!   character and block devices, everything under `dev/` (the runtime provides `/dev`),
//!   hardlinks to skipped entries, unsupported entry types, AUFS metadata
//!   (`.wh..wh.*`), owners that cannot be set, and extended attributes the filesystem
//!   refuses.
//! - **Whiteouts** (`.wh.name`, `.wh..wh..opq`) delete only what lower layers left: the
//!   layer's own entries survive, in whichever order the tar lists them. A whiteout of
//!   something missing does nothing. An invalid whiteout name (`.wh.`, `.wh..`, `.wh...`,
//!   `a/.wh.b/c`) is an error.
//! - **Errors** name the layer and the entry (`layer sha256:…: entry usr/bin/x: creating
//!   file: Permission denied`); a truncated tar is an error. After the last entry the
//!   rest of the stream is read and discarded, so a caller hashing it sees all of it.

mod apply;
mod meta;
mod path;
mod resolve;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, Timespec};

use self::path::Show;
use self::resolve::Resolver;

/// The read buffer for layer streams and the copy buffer for file data.
const BUFFER_SIZE: usize = 256 * 1024;

/// A root directory being assembled from layers.
pub struct Rootfs {
    /// Where the root is, for messages.
    path: PathBuf,
    resolver: Resolver,
    /// Whether to apply ownership (and to set directory modes right away).
    as_root: bool,
    /// The most recently used parent directory; see [`apply`].
    cache: Option<apply::CachedDir>,
    /// Bumped whenever a directory or a symlink is removed: cached directory fds from an
    /// older epoch may no longer be what their path resolves to.
    epoch: u64,
    /// Directory metadata to apply in [`Rootfs::finish`], by canonical path.
    deferred: HashMap<Box<[u8]>, DirMeta>,
    /// The copy buffer.
    buf: Vec<u8>,
}

/// Metadata of a directory, applied after everything else.
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mtime: Option<Timespec>,
    /// Set only when not running as root (the directory stays writable until then).
    mode: Option<u32>,
}

/// What one layer did.
#[derive(Debug, Default, Clone)]
pub struct LayerStats {
    /// Tar entries read (extension headers such as PAX and GNU long names not counted).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Whiteout and opaque markers applied.
    pub whiteouts: u64,
    /// Human-readable warnings about what was not applied, one per kind (device nodes,
    /// `dev/*` entries, unsupported types, extended attributes the filesystem refused…).
    pub skipped: Vec<String>,
}

/// Whether this process runs as root (effective uid 0), so can apply ownership.
pub fn is_running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Rootfs {
    /// Creates `path` (must not exist, or be an empty directory) with mode 0755 and opens it.
    pub fn create(path: &Path) -> anyhow::Result<Rootfs> {
        Rootfs::create_with(path, true, is_running_as_root())
    }

    /// [`Rootfs::create`], choosing whether to try `openat2` and whether to act as root
    /// (the tests force both ways).
    fn create_with(path: &Path, try_openat2: bool, as_root: bool) -> anyhow::Result<Rootfs> {
        let shown = path.display();
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = std::fs::symlink_metadata(path)
                    .with_context(|| format!("inspecting {shown}"))?;
                anyhow::ensure!(meta.is_dir(), "{shown} exists and is not a directory");
                let mut entries =
                    std::fs::read_dir(path).with_context(|| format!("reading {shown}"))?;
                anyhow::ensure!(entries.next().is_none(), "{shown} exists and is not empty");
            }
            Err(e) => return Err(e).with_context(|| format!("creating {shown}")),
        }
        let root = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {shown}"))?;
        rustix::fs::fchmod(&root, Mode::from_raw_mode(0o755))
            .with_context(|| format!("setting the mode of {shown}"))?;
        Ok(Rootfs {
            path: path.to_path_buf(),
            resolver: Resolver::new(root, try_openat2),
            as_root,
            cache: None,
            epoch: 0,
            deferred: HashMap::new(),
            buf: vec![0; BUFFER_SIZE],
        })
    }

    /// Applies one uncompressed layer tar. `name` (e.g. the layer digest) is used in messages.
    pub fn apply_layer(&mut self, layer: impl Read, name: &str) -> anyhow::Result<LayerStats> {
        let mut archive = tar::Archive::new(BufReader::with_capacity(BUFFER_SIZE, layer));
        let mut state = Layer::default();
        let mut last: Option<Vec<u8>> = None;
        let reading = |last: &Option<Vec<u8>>| match last {
            Some(raw) => format!("layer {name}: reading the tar after entry {}", Show(raw)),
            None => format!("layer {name}: reading the tar"),
        };
        for entry in archive.entries().with_context(|| reading(&last))? {
            let mut entry = match entry {
                Ok(entry) => entry,
                // The last entry's data was read whole, and the stream ends inside its
                // padding: no end-of-archive marker (umoci 0.4's `insert` writes such layers,
                // and Go's archive/tar, so Docker, accepts them). The layer's diff_id still
                // covers exactly these bytes.
                Err(e) if last.is_some() && is_eof_in_padding(&e) => {
                    state.stats.skipped.push(
                        "the layer ends inside the padding of its last entry, without an end-of-archive marker; treated as its end".to_string(),
                    );
                    break;
                }
                Err(e) => return Err(e).with_context(|| reading(&last)),
            };
            state.stats.entries += 1;
            let raw = entry.path_bytes().into_owned();
            self.apply_entry(&mut state, &mut entry, &raw)
                .with_context(|| format!("layer {name}: entry {}", Show(&raw)))?;
            last = Some(raw);
        }
        // Whatever follows the end-of-archive marker (record padding, usually).
        std::io::copy(&mut archive.into_inner(), &mut std::io::sink())
            .with_context(|| format!("layer {name}: reading the end of the stream"))?;
        Ok(state.into_stats())
    }

    /// Applies deferred metadata (directory mtimes, set after their contents; deepest
    /// first). Call once after the last layer.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.cache = None;
        let mut dirs: Vec<(Box<[u8]>, DirMeta)> = self.deferred.drain().collect();
        dirs.sort_by(|(a, _), (b, _)| path::depth(b).cmp(&path::depth(a)).then(a.cmp(b)));
        for (dir, meta) in dirs {
            self.finish_dir(&dir, meta).with_context(|| {
                format!(
                    "{}: setting the metadata of directory {}",
                    self.path.display(),
                    Show(&dir)
                )
            })?;
        }
        Ok(())
    }

    fn finish_dir(&self, dir: &[u8], meta: DirMeta) -> anyhow::Result<()> {
        use rustix::io::Errno;
        // Canonical paths have no symlinks; if one appeared since, the directory is gone.
        let fd = match self.resolver.open_dir_nofollow(dir) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let fd: OwnedFd = rustix::fs::openat(
            &fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if let Some(mode) = meta.mode {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        }
        if let Some(mtime) = meta.mtime {
            rustix::fs::futimens(&fd, &apply::times(mtime))?;
        }
        Ok(())
    }
}

/// The tar crate's error for a stream that ends while it skips to the next header.
fn is_eof_in_padding(error: &std::io::Error) -> bool {
    // tar 0.4 reports it as ErrorKind::Other with this text.
    error.to_string().contains("unexpected EOF during skip")
}

/// The bookkeeping of the layer being applied.
#[derive(Default)]
struct Layer {
    stats: LayerStats,
    /// Canonical paths this layer has entries for, and all their ancestors: what its
    /// whiteouts must not delete.
    paths: HashSet<Box<[u8]>>,
    /// Normalised paths of entries skipped (devices, `dev/*`): hardlinks to them are
    /// skipped too.
    skipped_paths: HashSet<Box<[u8]>>,
    devices: Tally,
    dev_entries: Tally,
    unsupported: Tally,
    aufs: Tally,
    skipped_links: Tally,
    root_entries: Tally,
    owners: Tally,
    xattrs: Tally,
}

impl Layer {
    /// Records that this layer has an entry at `path` (canonical).
    fn record(&mut self, path: &[u8]) {
        // Everything in the set has its ancestors in the set.
        let mut path = path;
        while !path.is_empty() && !self.paths.contains(path) {
            self.paths.insert(path.into());
            path = path::split(path).0;
        }
    }

    fn into_stats(self) -> LayerStats {
        let mut stats = self.stats;
        let warnings = [
            (self.devices, "device node(s) skipped"),
            (self.dev_entries, "entries under dev/ skipped"),
            (self.skipped_links, "hardlink(s) to skipped entries skipped"),
            (self.unsupported, "entries of unsupported types skipped"),
            (self.aufs, "AUFS metadata entries ignored"),
            (
                self.root_entries,
                "non-directory entries naming the root ignored",
            ),
            (self.owners, "owner(s) could not be set"),
            (self.xattrs, "extended attribute(s) could not be set"),
        ];
        for (tally, what) in warnings {
            if let Some(first) = tally.first {
                stats
                    .skipped
                    .push(format!("{} {what} (first: {first})", tally.count));
            }
        }
        stats
    }
}

/// How many times something happened, and the first occurrence for the message.
#[derive(Default)]
struct Tally {
    count: u64,
    first: Option<String>,
}

impl Tally {
    fn add(&mut self, describe: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(describe());
        }
    }
}
