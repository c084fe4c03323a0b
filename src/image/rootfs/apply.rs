//! Applying one entry: creating, replacing and deleting, always on a final name relative
//! to a directory fd inside the root (see the parent module's docs for the policy).
//!
//! Parent directories come from a one-entry cache (tars list a directory's entries
//! together), keyed by the entry's normalised parent path. A cached fd stays right as
//! long as no name it was resolved through changes; creating a name cannot change an
//! existing resolution (every name it went through already existed), so only removals
//! of directories and symlinks (whiteouts, replacements) invalidate it, by bumping
//! [`Rootfs::epoch`].

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd as _;

use anyhow::{anyhow, bail, ensure, Context as _};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use super::meta::{self, Meta};
use super::path::{self, Show};
use super::{DirMeta, Layer, Rootfs};
use crate::image::whiteout::{self, Class};

/// Flags to open an existing directory (never through a symlink) for metadata changes
/// and listing.
const DIR_NOFOLLOW: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// A parent directory, opened inside the root.
pub(super) struct CachedDir {
    /// The normalised path it was opened for.
    key: Vec<u8>,
    fd: OwnedFd,
    /// Its path with no symlinks.
    canonical: Vec<u8>,
    /// [`Rootfs::epoch`] when it was resolved.
    epoch: u64,
}

/// Access and modification time both set to `mtime`.
pub(super) fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

impl Rootfs {
    /// Applies one entry, whose name in the tar is `raw`.
    pub(super) fn apply_entry<R: Read>(
        &mut self,
        layer: &mut Layer,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
    ) -> anyhow::Result<()> {
        let header = entry.header();
        let mut kind = header.entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        // Pre-POSIX tars mark directories with a trailing slash on a regular entry.
        if header.as_bytes()[156] == 0 && raw.ends_with(b"/") {
            kind = EntryType::Directory;
        }
        let path = path::normalise(raw);
        if path.starts_with(b"dev/") {
            layer.dev_entries.add(|| Show(&path).to_string());
            layer.skipped_paths.insert(path.into());
            return Ok(());
        }
        match whiteout::classify(&path)? {
            Class::Normal => {}
            Class::Meta => {
                layer.aufs.add(|| Show(&path).to_string());
                return Ok(());
            }
            Class::Whiteout { dir, name } => {
                layer.stats.whiteouts += 1;
                return self.whiteout(layer, dir, name);
            }
            Class::Opaque { dir } => {
                layer.stats.whiteouts += 1;
                return self.opaque(layer, dir);
            }
        }
        match kind {
            EntryType::Char | EntryType::Block => {
                layer.devices.add(|| Show(&path).to_string());
                layer.skipped_paths.insert(path.into());
                return Ok(());
            }
            EntryType::Link => return self.hardlink(layer, entry, &path),
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Fifo => {}
            other => {
                layer
                    .unsupported
                    .add(|| format!("{} of type {:?}", Show(&path), char::from(other.as_byte())));
                return Ok(());
            }
        }
        let meta = meta::read(entry)?;
        if path.is_empty() {
            return self.root_entry(layer, kind, &meta);
        }
        let (dir, name) = path::split(&path);
        let parent = self.parent(dir)?;
        let canonical = path::join(&parent.canonical, name);
        match kind {
            EntryType::Directory => self.directory(layer, &parent, name, &canonical, &meta)?,
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default();
                self.symlink(layer, &parent, name, &canonical, &target, &meta)?;
            }
            EntryType::Fifo => self.fifo(layer, &parent, name, &canonical, &meta)?,
            _ => self.file(layer, &parent, name, &canonical, entry, &meta)?,
        }
        layer.record(&canonical);
        self.keep(parent);
        Ok(())
    }

    /// The directory `dir` (normalised), from the cache or opened (created if missing).
    fn parent(&mut self, dir: &[u8]) -> anyhow::Result<CachedDir> {
        if let Some(cached) = self.cache.take() {
            if cached.epoch == self.epoch && cached.key == dir {
                return Ok(cached);
            }
        }
        let (fd, canonical) = self
            .open_or_create_dir(dir)
            .with_context(|| format!("opening parent directory {}", Show(dir)))?;
        Ok(CachedDir {
            key: dir.to_vec(),
            fd,
            canonical,
            epoch: self.epoch,
        })
    }

    /// Puts a parent back in the cache, unless something it may depend on was removed.
    fn keep(&mut self, dir: CachedDir) {
        if dir.epoch == self.epoch {
            self.cache = Some(dir);
        }
    }

    /// Opens directory `dir`, creating what is missing of it with mode 0755.
    fn open_or_create_dir(&mut self, dir: &[u8]) -> anyhow::Result<(OwnedFd, Vec<u8>)> {
        match self.resolver.open_dir(dir) {
            Err(Errno::NOENT) if !dir.is_empty() => {}
            other => return Ok(other?),
        }
        let (up, name) = path::split(dir);
        let (up, canonical) = self.open_or_create_dir(up)?;
        let created = match rustix::fs::mkdirat(&up, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(e).with_context(|| format!("creating {}", Show(dir))),
        };
        let fd = match rustix::fs::openat(&up, name, DIR_NOFOLLOW, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::LOOP | Errno::NOTDIR) => {
                bail!(
                    "{} exists and is not a directory (or is a dangling symlink)",
                    Show(dir)
                )
            }
            Err(e) => return Err(e).with_context(|| format!("opening {}", Show(dir))),
        };
        if created {
            // Whatever the umask.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755))
                .with_context(|| format!("setting the mode of {}", Show(dir)))?;
        }
        Ok((fd, path::join(&canonical, name)))
    }

    /// Runs `make` to create `name` in `parent`; if something is in the way, removes it
    /// (a whole tree, if need be) and runs `make` again.
    fn create_at<T>(
        &mut self,
        parent: &CachedDir,
        name: &[u8],
        canonical: &[u8],
        what: &str,
        make: impl Fn(BorrowedFd<'_>) -> rustix::io::Result<T>,
    ) -> anyhow::Result<T> {
        match make(parent.fd.as_fd()) {
            Err(Errno::EXIST) => {}
            other => return other.with_context(|| format!("creating {what}")),
        }
        self.remove(parent.fd.as_fd(), canonical, name)?;
        make(parent.fd.as_fd()).with_context(|| format!("creating {what}"))
    }

    /// Removes `name` from `dir` (whose child it is at canonical `path`), whatever it is;
    /// nothing if it is missing.
    fn remove(&mut self, dir: BorrowedFd<'_>, path: &[u8], name: &[u8]) -> anyhow::Result<()> {
        let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("inspecting {}", Show(path))),
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                self.epoch += 1;
                self.deferred.retain(|dir, _| !path::is_within(dir, path));
                remove_tree(dir, name)
                    .with_context(|| format!("removing directory {}", Show(path)))?;
            }
            kind => {
                if kind == FileType::Symlink {
                    self.epoch += 1;
                }
                rustix::fs::unlinkat(dir, name, AtFlags::empty())
                    .with_context(|| format!("removing {}", Show(path)))?;
            }
        }
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        layer: &mut Layer,
        parent: &CachedDir,
        name: &[u8],
        canonical: &[u8],
        data: &mut tar::Entry<'_, R>,
        meta: &Meta,
    ) -> anyhow::Result<()> {
        let size = data.size();
        let fd = self.create_at(parent, name, canonical, "file", |dir| {
            rustix::fs::openat(
                dir,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        })?;
        let mut file = File::from(fd);
        let written = copy(data, &mut file, &mut self.buf)?;
        ensure!(
            written == size,
            "the layer is truncated: {written} of {size} bytes of file data"
        );
        layer.stats.bytes += written;
        if self.as_root {
            let result = rustix::fs::fchown(&file, Some(uid(meta)), Some(gid(meta)));
            owner_result(layer, canonical, meta, result)?;
        }
        rustix::fs::fchmod(&file, Mode::from_raw_mode(meta.mode)).context("setting the mode")?;
        for (key, value) in &meta.xattrs {
            if let Err(e) = rustix::fs::fsetxattr(&file, key.as_slice(), value, XattrFlags::empty())
            {
                xattr_failed(layer, canonical, key, e);
            }
        }
        rustix::fs::futimens(&file, &times(meta.mtime)).context("setting the time")?;
        Ok(())
    }

    fn directory(
        &mut self,
        layer: &mut Layer,
        parent: &CachedDir,
        name: &[u8],
        canonical: &[u8],
        meta: &Meta,
    ) -> anyhow::Result<()> {
        let private = Mode::from_raw_mode(0o700);
        let existing = match rustix::fs::mkdirat(&parent.fd, name, private) {
            Ok(()) => None,
            Err(Errno::EXIST) => {
                match rustix::fs::openat(&parent.fd, name, DIR_NOFOLLOW, Mode::empty()) {
                    // A directory already: keep its content, update its metadata.
                    Ok(fd) => Some(fd),
                    // Anything else (a symlink included): replace it.
                    Err(Errno::LOOP | Errno::NOTDIR) => {
                        self.create_at(parent, name, canonical, "directory", |dir| {
                            rustix::fs::mkdirat(dir, name, private)
                        })?;
                        None
                    }
                    Err(e) => return Err(e).context("opening the existing directory"),
                }
            }
            Err(e) => return Err(e).context("creating directory"),
        };
        let fd = match existing {
            Some(fd) => fd,
            None => rustix::fs::openat(&parent.fd, name, DIR_NOFOLLOW, Mode::empty())
                .context("opening the new directory")?,
        };
        if self.as_root {
            let result = rustix::fs::fchown(&fd, Some(uid(meta)), Some(gid(meta)));
            owner_result(layer, canonical, meta, result)?;
        }
        let mode = if self.as_root {
            meta.mode
        } else {
            meta.mode | 0o700
        };
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).context("setting the mode")?;
        for (key, value) in &meta.xattrs {
            if let Err(e) = rustix::fs::fsetxattr(&fd, key.as_slice(), value, XattrFlags::empty()) {
                xattr_failed(layer, canonical, key, e);
            }
        }
        self.deferred.insert(
            canonical.into(),
            DirMeta {
                mtime: Some(meta.mtime),
                mode: (!self.as_root).then_some(meta.mode),
            },
        );
        Ok(())
    }

    fn symlink(
        &mut self,
        layer: &mut Layer,
        parent: &CachedDir,
        name: &[u8],
        canonical: &[u8],
        target: &[u8],
        meta: &Meta,
    ) -> anyhow::Result<()> {
        self.create_at(parent, name, canonical, "symlink", |dir| {
            rustix::fs::symlinkat(target, dir, name)
        })?;
        self.special_metadata(layer, parent, name, canonical, meta, None)
    }

    fn fifo(
        &mut self,
        layer: &mut Layer,
        parent: &CachedDir,
        name: &[u8],
        canonical: &[u8],
        meta: &Meta,
    ) -> anyhow::Result<()> {
        self.create_at(parent, name, canonical, "FIFO", |dir| {
            rustix::fs::mknodat(dir, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
        })?;
        self.special_metadata(layer, parent, name, canonical, meta, Some(meta.mode))
    }

    /// Owner, mode, attributes and time of a symlink or FIFO we just created, by name
    /// (neither can be opened for this without following or blocking).
    fn special_metadata(
        &mut self,
        layer: &mut Layer,
        parent: &CachedDir,
        name: &[u8],
        canonical: &[u8],
        meta: &Meta,
        mode: Option<u32>,
    ) -> anyhow::Result<()> {
        if self.as_root {
            let result = rustix::fs::chownat(
                &parent.fd,
                name,
                Some(uid(meta)),
                Some(gid(meta)),
                AtFlags::SYMLINK_NOFOLLOW,
            );
            owner_result(layer, canonical, meta, result)?;
        }
        if let Some(mode) = mode {
            // Follows a symlink, but `name` is the FIFO we just created, in a directory
            // nothing else changes.
            rustix::fs::chmodat(
                &parent.fd,
                name,
                Mode::from_raw_mode(mode),
                AtFlags::empty(),
            )
            .context("setting the mode")?;
        }
        if !meta.xattrs.is_empty() {
            // lsetxattr does not follow the final symlink; the parent is reached through
            // our own fd.
            let mut proc_path = format!("/proc/self/fd/{}/", parent.fd.as_raw_fd()).into_bytes();
            proc_path.extend_from_slice(name);
            for (key, value) in &meta.xattrs {
                if let Err(e) = rustix::fs::lsetxattr(
                    proc_path.as_slice(),
                    key.as_slice(),
                    value,
                    XattrFlags::empty(),
                ) {
                    xattr_failed(layer, canonical, key, e);
                }
            }
        }
        rustix::fs::utimensat(
            &parent.fd,
            name,
            &times(meta.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .context("setting the time")?;
        Ok(())
    }

    fn hardlink<R: Read>(
        &mut self,
        layer: &mut Layer,
        entry: &tar::Entry<'_, R>,
        path: &[u8],
    ) -> anyhow::Result<()> {
        let target = path::normalise(&entry.link_name_bytes().unwrap_or_default());
        if layer.skipped_paths.contains(target.as_slice()) {
            layer
                .skipped_links
                .add(|| format!("{} -> {}", Show(path), Show(&target)));
            layer.skipped_paths.insert(path.into());
            return Ok(());
        }
        ensure!(!target.is_empty(), "hardlink to the root directory");
        if path.is_empty() {
            layer.root_entries.add(|| "hardlink".to_string());
            return Ok(());
        }
        let missing = || anyhow!("hardlink target {} does not exist", Show(&target));
        let (target_dir, target_name) = path::split(&target);
        let target_dir = match self.resolver.open_dir(target_dir) {
            Ok((fd, _)) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return Err(missing()),
            Err(e) => return Err(e).context("opening the hardlink target's directory"),
        };
        let target_stat =
            match rustix::fs::statat(&target_dir, target_name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(Errno::NOENT) => return Err(missing()),
                Err(e) => return Err(e).context("inspecting the hardlink target"),
            };
        ensure!(
            FileType::from_raw_mode(target_stat.st_mode) != FileType::Directory,
            "hardlink target {} is a directory",
            Show(&target)
        );
        let (dir, name) = path::split(path);
        let parent = self.parent(dir)?;
        let canonical = path::join(&parent.canonical, name);
        let same = rustix::fs::statat(&parent.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|s| s.st_dev == target_stat.st_dev && s.st_ino == target_stat.st_ino);
        if !same {
            self.create_at(&parent, name, &canonical, "hardlink", |dir| {
                rustix::fs::linkat(&target_dir, target_name, dir, name, AtFlags::empty())
            })?;
        }
        layer.record(&canonical);
        self.keep(parent);
        Ok(())
    }

    /// An entry naming the root itself: only a directory's mode is applied.
    fn root_entry(
        &mut self,
        layer: &mut Layer,
        kind: EntryType,
        meta: &Meta,
    ) -> anyhow::Result<()> {
        if kind != EntryType::Directory {
            layer
                .root_entries
                .add(|| format!("type {:?}", char::from(kind.as_byte())));
            return Ok(());
        }
        let mode = if self.as_root {
            meta.mode
        } else {
            meta.mode | 0o700
        };
        rustix::fs::fchmod(self.resolver.root(), Mode::from_raw_mode(mode))
            .context("setting the mode of the root")?;
        if !self.as_root {
            self.deferred.insert(
                Box::default(),
                DirMeta {
                    mtime: None,
                    mode: Some(meta.mode),
                },
            );
        }
        Ok(())
    }

    /// `dir/.wh.name`: deletes what lower layers left at `dir/name`.
    fn whiteout(&mut self, layer: &mut Layer, dir: &[u8], name: &[u8]) -> anyhow::Result<()> {
        let Some((fd, canonical)) = self.existing_dir(dir)? else {
            return Ok(());
        };
        layer.record(&canonical);
        self.prune(layer, fd.as_fd(), &path::join(&canonical, name), name)
    }

    /// `dir/.wh..wh..opq`: deletes what lower layers left in `dir`.
    fn opaque(&mut self, layer: &mut Layer, dir: &[u8]) -> anyhow::Result<()> {
        let Some((fd, canonical)) = self.existing_dir(dir)? else {
            return Ok(());
        };
        layer.record(&canonical);
        let fd = rustix::fs::openat(&fd, ".", DIR_NOFOLLOW, Mode::empty())
            .with_context(|| format!("opening {}", Show(&canonical)))?;
        let children = list(fd.as_fd()).with_context(|| format!("listing {}", Show(&canonical)))?;
        for (child, _) in children {
            self.prune(layer, fd.as_fd(), &path::join(&canonical, &child), &child)?;
        }
        Ok(())
    }

    /// Directory `dir`, if it exists.
    fn existing_dir(&self, dir: &[u8]) -> anyhow::Result<Option<(OwnedFd, Vec<u8>)>> {
        match self.resolver.open_dir(dir) {
            Ok(found) => Ok(Some(found)),
            Err(Errno::NOENT | Errno::NOTDIR) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("opening {}", Show(dir))),
        }
    }

    /// Deletes `name` in `dir` (at canonical `path`) unless this layer has an entry
    /// there; if it has and it is a directory, prunes its children the same way.
    fn prune(
        &mut self,
        layer: &Layer,
        dir: BorrowedFd<'_>,
        path: &[u8],
        name: &[u8],
    ) -> anyhow::Result<()> {
        if !layer.paths.contains(path) {
            return self.remove(dir, path, name);
        }
        let fd = match rustix::fs::openat(dir, name, DIR_NOFOLLOW, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("opening {}", Show(path))),
        };
        let children = list(fd.as_fd()).with_context(|| format!("listing {}", Show(path)))?;
        for (child, _) in children {
            self.prune(layer, fd.as_fd(), &path::join(path, &child), &child)?;
        }
        Ok(())
    }
}

fn uid(meta: &Meta) -> Uid {
    Uid::from_raw(meta.uid)
}

fn gid(meta: &Meta) -> Gid {
    Gid::from_raw(meta.gid)
}

/// Ownership that cannot be applied because the ids are not mapped in this user
/// namespace (`EINVAL`) or we may not chown (`EPERM`) is a warning; other failures are
/// errors.
fn owner_result(
    layer: &mut Layer,
    path: &[u8],
    meta: &Meta,
    result: rustix::io::Result<()>,
) -> anyhow::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(e @ (Errno::INVAL | Errno::PERM)) => {
            layer
                .owners
                .add(|| format!("{}:{} on {}: {e}", meta.uid, meta.gid, Show(path)));
            Ok(())
        }
        Err(e) => Err(e).context("setting the owner"),
    }
}

fn xattr_failed(layer: &mut Layer, path: &[u8], key: &[u8], error: Errno) {
    layer
        .xattrs
        .add(|| format!("{} on {}: {error}", Show(key), Show(path)));
}

/// Copies all of `from` into `to` through `buf`; returns how many bytes.
fn copy(from: &mut impl Read, to: &mut File, buf: &mut [u8]) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match from.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("reading file data from the layer"),
            }
        }
        to.write_all(&buf[..filled]).context("writing file")?;
        total += filled as u64;
        if filled < buf.len() {
            return Ok(total);
        }
    }
}

/// The names in a directory (but `.` and `..`), with their types as listed.
fn list(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<(Vec<u8>, FileType)>> {
    let mut listing = rustix::fs::Dir::read_from(dir)?;
    let mut names = Vec::new();
    while let Some(entry) = listing.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push((name.to_vec(), entry.file_type()));
        }
    }
    Ok(names)
}

/// Removes directory `name` in `dir` and everything under it, following no symlink.
fn remove_tree(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<()> {
    let fd = rustix::fs::openat(dir, name, DIR_NOFOLLOW, Mode::empty())?;
    for (child, kind) in list(fd.as_fd())? {
        if kind == FileType::Directory {
            remove_tree(fd.as_fd(), &child)?;
            continue;
        }
        match rustix::fs::unlinkat(&fd, child.as_slice(), AtFlags::empty()) {
            // The listing did not know the type.
            Err(Errno::ISDIR) => remove_tree(fd.as_fd(), &child)?,
            other => other?,
        }
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmappable_owners_are_warnings_other_failures_errors() {
        let meta = Meta {
            mode: 0o644,
            uid: 70_000,
            gid: 70_001,
            mtime: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        };
        let mut layer = Layer::default();
        owner_result(&mut layer, b"a", &meta, Ok(())).unwrap();
        owner_result(&mut layer, b"b", &meta, Err(Errno::INVAL)).unwrap();
        owner_result(&mut layer, b"c", &meta, Err(Errno::PERM)).unwrap();
        let e = owner_result(&mut layer, b"d", &meta, Err(Errno::IO)).unwrap_err();
        assert!(format!("{e:#}").starts_with("setting the owner: "), "{e:#}");
        let skipped = layer.into_stats().skipped;
        assert_eq!(skipped.len(), 1);
        assert!(
            skipped[0].starts_with("2 owner(s) could not be set (first: 70000:70001 on b: "),
            "{skipped:?}"
        );
    }
}
