//! Opening directories inside the root, never outside it.
//!
//! Every path is resolved as if the root were `/`: absolute symlink targets start again
//! at the root and `..` at the root stays there. Two ways, with the same results:
//! - the kernel's `openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, used with
//!   `RESOLVE_NO_SYMLINKS` as the fast path: a path without symlinks is its own
//!   canonical form;
//! - a walk, one component at a time: each step is `openat(dir, name, O_PATH |
//!   O_NOFOLLOW)` of a single name relative to a directory already inside the root, and
//!   symlinks are read and expanded here, with `..` popping our own stack of directories
//!   (never below the root). It is used when a path goes through a symlink (it also
//!   yields the canonical path, which the whiteout bookkeeping needs) and for every path
//!   when `openat2` is unavailable (kernels before 5.6, seccomp filters).

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::{Errno, Result};

/// Flags for the directory fds the resolver hands out: usable as `dirfd` for `*at` calls.
const DIR_FLAGS: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);

/// How many symlinks one resolution may expand (Linux's limit).
const MAX_SYMLINKS: usize = 40;

/// Resolves normalised paths (see `super::path`) to directory fds inside a root.
pub(super) struct Resolver {
    root: OwnedFd,
    openat2: bool,
}

impl Resolver {
    /// Takes the root directory's fd. With `try_openat2`, probes whether `openat2` with
    /// `RESOLVE_IN_ROOT` works here; otherwise (or if it does not) always walks.
    pub(super) fn new(root: OwnedFd, try_openat2: bool) -> Resolver {
        let openat2 = try_openat2
            && rustix::fs::openat2(
                &root,
                ".",
                DIR_FLAGS,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            )
            .is_ok();
        Resolver { root, openat2 }
    }

    /// The root directory.
    pub(super) fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Whether the fast path (`openat2`) is in use.
    #[cfg(test)]
    pub(super) fn uses_openat2(&self) -> bool {
        self.openat2
    }

    /// Opens directory `path` (an `O_PATH` fd), following symlinks inside the root, and
    /// returns it with its canonical path (no symlinks). Errors are the kernel's:
    /// `ENOENT` (missing, or a dangling symlink), `ENOTDIR` (not a directory), `ELOOP`.
    pub(super) fn open_dir(&self, path: &[u8]) -> Result<(OwnedFd, Vec<u8>)> {
        if self.openat2 {
            match self.openat2(path, ResolveFlags::NO_SYMLINKS) {
                Ok(fd) => return Ok((fd, path.to_vec())),
                // A symlink on the way: walk, to learn the canonical path.
                Err(Errno::LOOP) => {}
                Err(e) => return Err(e),
            }
        }
        self.walk(path, true)
    }

    /// Opens directory `path` (an `O_PATH` fd) only if no component is a symlink
    /// (`ELOOP` otherwise).
    pub(super) fn open_dir_nofollow(&self, path: &[u8]) -> Result<OwnedFd> {
        if self.openat2 {
            return self.openat2(path, ResolveFlags::NO_SYMLINKS);
        }
        self.walk(path, false).map(|(fd, _)| fd)
    }

    fn openat2(&self, path: &[u8], extra: ResolveFlags) -> Result<OwnedFd> {
        let path: &[u8] = if path.is_empty() { b"." } else { path };
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | extra;
        loop {
            match rustix::fs::openat2(&self.root, path, DIR_FLAGS, Mode::empty(), resolve) {
                // The kernel asks for a retry when a rename raced with the lookup.
                Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                other => return other,
            }
        }
    }

    /// Resolves `path` component by component; see the module docs.
    fn walk(&self, path: &[u8], follow: bool) -> Result<(OwnedFd, Vec<u8>)> {
        // Directories entered so far below the root, with their names.
        let mut stack: Vec<(OwnedFd, Vec<u8>)> = Vec::new();
        // Components still to resolve, last first.
        let mut pending: Vec<Vec<u8>> = path
            .split(|&b| b == b'/')
            .rev()
            .map(<[u8]>::to_vec)
            .collect();
        let mut links = 0;
        while let Some(component) = pending.pop() {
            match component.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let dir = stack.last().map_or(self.root.as_fd(), |(fd, _)| fd.as_fd());
            let fd = rustix::fs::openat(
                dir,
                component.as_slice(),
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let stat = rustix::fs::fstat(&fd)?;
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => stack.push((fd, component)),
                FileType::Symlink if follow => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Errno::LOOP);
                    }
                    let target = rustix::fs::readlinkat(dir, component.as_slice(), Vec::new())?;
                    let target = target.as_bytes();
                    if target.is_empty() {
                        return Err(Errno::NOENT);
                    }
                    if target[0] == b'/' {
                        stack.clear();
                    }
                    pending.extend(target.split(|&b| b == b'/').rev().map(<[u8]>::to_vec));
                }
                FileType::Symlink => return Err(Errno::LOOP),
                _ => return Err(Errno::NOTDIR),
            }
        }
        let mut canonical = Vec::new();
        for (_, name) in &stack {
            if !canonical.is_empty() {
                canonical.push(b'/');
            }
            canonical.extend_from_slice(name);
        }
        let fd = match stack.pop() {
            Some((fd, _)) => fd,
            None => rustix::fs::openat(&self.root, ".", DIR_FLAGS, Mode::empty())?,
        };
        Ok((fd, canonical))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A tree with every kind of symlink, including hostile ones, and a sentinel outside.
    fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("sub")).unwrap();
        for dir in ["a/b/c", "usr/lib", "etc"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(root.join("etc/file"), b"x").unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/usr/lib", root.join("abs-lib")).unwrap();
        symlink("/", root.join("to-root")).unwrap();
        symlink("../../..", root.join("a/up")).unwrap();
        symlink("../../../../../..", root.join("a/b/c/way-up")).unwrap();
        symlink(&outside, root.join("to-outside")).unwrap();
        symlink("lib", root.join("chain1")).unwrap();
        symlink("chain1/../etc", root.join("chain2")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        symlink("missing", root.join("dangling")).unwrap();
        symlink("etc/file", root.join("to-file")).unwrap();
        symlink("", root.join("empty")).unwrap_or(());
        (tmp, root)
    }

    fn resolvers(root: &std::path::Path) -> [Resolver; 2] {
        let open = || {
            rustix::fs::open(
                root,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap()
        };
        let fast = Resolver::new(open(), true);
        assert!(fast.uses_openat2(), "this kernel has openat2");
        let walk = Resolver::new(open(), false);
        assert!(!walk.uses_openat2());
        [fast, walk]
    }

    #[test]
    fn open_dir_resolves_inside_the_root_both_ways() {
        let (_tmp, root) = tree();
        type Want = std::result::Result<&'static [u8], Errno>;
        let cases: &[(&[u8], Want)] = &[
            (b"", Ok(b"")),
            (b"a/b/c", Ok(b"a/b/c")),
            (b"lib", Ok(b"usr/lib")),
            (b"abs-lib", Ok(b"usr/lib")),
            (b"to-root", Ok(b"")),
            (b"to-root/etc", Ok(b"etc")),
            (b"to-root/to-root/a", Ok(b"a")),
            (b"a/up", Ok(b"")),
            (b"a/up/usr", Ok(b"usr")),
            (b"a/b/c/way-up/etc", Ok(b"etc")),
            (b"chain2", Ok(b"usr/etc")),
            (b"to-outside", Err(Errno::NOENT)),
            (b"to-outside/sub", Err(Errno::NOENT)),
            (b"dangling", Err(Errno::NOENT)),
            (b"missing/x", Err(Errno::NOENT)),
            (b"etc/file", Err(Errno::NOTDIR)),
            (b"to-file", Err(Errno::NOTDIR)),
            (b"loop1", Err(Errno::LOOP)),
            (b"empty", Err(Errno::NOENT)),
        ];
        std::fs::create_dir(root.join("usr/etc")).unwrap();
        for resolver in resolvers(&root) {
            for (path, want) in cases {
                let got = resolver.open_dir(path).map(|(_, canonical)| canonical);
                assert_eq!(
                    got.as_deref().map_err(|e| *e),
                    *want,
                    "open_dir({}) with openat2={}",
                    String::from_utf8_lossy(path),
                    resolver.uses_openat2()
                );
            }
        }
    }

    #[test]
    fn open_dir_nofollow_refuses_symlinks_both_ways() {
        let (_tmp, root) = tree();
        for resolver in resolvers(&root) {
            assert!(resolver.open_dir_nofollow(b"a/b").is_ok());
            assert!(resolver.open_dir_nofollow(b"").is_ok());
            assert_eq!(resolver.open_dir_nofollow(b"lib").err(), Some(Errno::LOOP));
            assert_eq!(
                resolver.open_dir_nofollow(b"to-root/a").err(),
                Some(Errno::LOOP)
            );
            assert_eq!(
                resolver.open_dir_nofollow(b"nope").err(),
                Some(Errno::NOENT)
            );
            assert_eq!(
                resolver.open_dir_nofollow(b"etc/file").err(),
                Some(Errno::NOTDIR)
            );
        }
    }

    #[test]
    fn the_fd_is_the_resolved_directory() {
        let (_tmp, root) = tree();
        std::fs::write(root.join("usr/lib/marker"), b"m").unwrap();
        for resolver in resolvers(&root) {
            let (fd, _) = resolver.open_dir(b"a/up/lib").unwrap();
            let stat = rustix::fs::statat(&fd, "marker", rustix::fs::AtFlags::empty()).unwrap();
            assert_eq!(stat.st_size, 1);
        }
    }
}
