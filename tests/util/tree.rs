//! Filesystem trees as data: [`snapshot`] walks a directory without following symlinks and
//! records, per path, the type, mode (incl. setuid/setgid/sticky), owner, size, content
//! hash, symlink target, xattrs, times, link count and inode; [`diff`] lists differences
//! between two snapshots under [`Compare`] rules. Used to compare our `rootfs/` with an
//! oracle's tree (umoci, GNU tar) and to prove sentinel trees were left untouched.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsString};
use std::fmt;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::image::sha256_digest;

/// The type of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Unix socket.
    Socket,
}

/// What [`snapshot`] records for one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Type.
    pub kind: Kind,
    /// `st_mode & 0o7777`: permission bits plus setuid, setgid, sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (regular files and symlinks; 0 otherwise).
    pub size: u64,
    /// `sha256:<hex>` of the content (regular files only).
    pub sha256: Option<String>,
    /// Symlink target, as written.
    pub link: Option<OsString>,
    /// All extended attributes (name -> value).
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// mtime (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// ctime (seconds, nanoseconds): changes on any metadata change, incl. link count.
    pub ctime: (i64, i64),
    /// Hard link count.
    pub nlink: u64,
    /// (device, inode).
    pub inode: (u64, u64),
    /// Device number (devices only).
    pub rdev: u64,
}

/// A walked tree: relative path (`""` is the root itself) -> entry.
pub type Tree = BTreeMap<PathBuf, Entry>;

/// Walks `root` (not following symlinks, not crossing into anything but directories) and
/// records every entry, the root included as `""`. Panics if `root` cannot be read.
pub fn snapshot(root: &Path) -> Tree {
    let mut tree = Tree::new();
    walk(root, Path::new(""), &mut tree);
    tree
}

fn walk(root: &Path, relative: &Path, tree: &mut Tree) {
    let path = if relative.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(relative)
    };
    let entry = read_entry(&path);
    let is_dir = entry.kind == Kind::Dir;
    tree.insert(relative.to_path_buf(), entry);
    if !is_dir {
        return;
    }
    let mut names: Vec<OsString> = fs::read_dir(&path)
        .unwrap_or_else(|err| panic!("listing {}: {err}", path.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|err| panic!("listing {}: {err}", path.display()))
                .file_name()
        })
        .collect();
    names.sort();
    for name in names {
        walk(root, &relative.join(name), tree);
    }
}

/// Reads one entry (lstat, content hash, link target, xattrs).
pub fn read_entry(path: &Path) -> Entry {
    let meta =
        fs::symlink_metadata(path).unwrap_or_else(|err| panic!("lstat {}: {err}", path.display()));
    let file_type = meta.file_type();
    let kind = if file_type.is_symlink() {
        Kind::Symlink
    } else if file_type.is_dir() {
        Kind::Dir
    } else if file_type.is_file() {
        Kind::File
    } else if file_type.is_fifo() {
        Kind::Fifo
    } else if file_type.is_char_device() {
        Kind::CharDevice
    } else if file_type.is_block_device() {
        Kind::BlockDevice
    } else {
        Kind::Socket
    };
    let sha256 = (kind == Kind::File).then(|| {
        let bytes =
            fs::read(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
        sha256_digest(&bytes)
    });
    let link = (kind == Kind::Symlink).then(|| {
        fs::read_link(path)
            .unwrap_or_else(|err| panic!("readlink {}: {err}", path.display()))
            .into_os_string()
    });
    Entry {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: if kind == Kind::File || kind == Kind::Symlink {
            meta.size()
        } else {
            0
        },
        sha256,
        link,
        xattrs: xattrs(path),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
        nlink: meta.nlink(),
        inode: (meta.dev(), meta.ino()),
        rdev: meta.rdev(),
    }
}

/// Every xattr of `path` itself (not following a symlink): name -> value.
pub fn xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    let mut out = BTreeMap::new();
    // SAFETY: c_path is a valid NUL-terminated string; a null buffer of size 0 asks for
    // the needed size.
    let len = unsafe { libc::llistxattr(c_path.as_ptr(), std::ptr::null_mut(), 0) };
    if len <= 0 {
        return out;
    }
    let mut names = vec![0u8; len as usize];
    // SAFETY: names has names.len() writable bytes.
    let len = unsafe {
        libc::llistxattr(
            c_path.as_ptr(),
            names.as_mut_ptr().cast::<libc::c_char>(),
            names.len(),
        )
    };
    if len <= 0 {
        return out;
    }
    names.truncate(len as usize);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let c_name = CString::new(name).expect("xattr name without NUL");
        // SAFETY: both strings are NUL-terminated; size 0 asks for the needed size.
        let size =
            unsafe { libc::lgetxattr(c_path.as_ptr(), c_name.as_ptr(), std::ptr::null_mut(), 0) };
        let value = if size <= 0 {
            Vec::new()
        } else {
            let mut value = vec![0u8; size as usize];
            // SAFETY: value has value.len() writable bytes.
            let size = unsafe {
                libc::lgetxattr(
                    c_path.as_ptr(),
                    c_name.as_ptr(),
                    value.as_mut_ptr().cast::<libc::c_void>(),
                    value.len(),
                )
            };
            value.truncate(size.max(0) as usize);
            value
        };
        out.insert(String::from_utf8_lossy(name).into_owned(), value);
    }
    out
}

/// What [`diff`] compares. Type, mode, owner, size, content and link target always.
#[derive(Clone, Debug)]
pub struct Compare {
    /// Paths left out with everything under them (relative, e.g. `"dev"`).
    pub exclude: Vec<PathBuf>,
    /// Compare the root entry (`""`) itself.
    pub root: bool,
    /// Compare mtimes of non-directories.
    pub mtimes: bool,
    /// Compare mtimes of directories (other than the root).
    pub dir_mtimes: bool,
    /// Compare only xattrs whose names start with one of these (empty: all xattrs).
    pub xattr_prefixes: Vec<String>,
    /// Compare which paths are hard links of each other (same inode within the tree).
    pub hardlink_groups: bool,
    /// Compare raw identity: link counts, ctimes and inodes (for "untouched" checks of the
    /// very same tree before and after).
    pub identity: bool,
    /// Paths (exactly these, relative) whose mtime is not compared.
    pub ignore_mtime: Vec<PathBuf>,
}

impl Compare {
    /// Two independently unpacked trees: everything but identity, user.* xattrs only.
    pub fn unpacked() -> Compare {
        Compare {
            exclude: Vec::new(),
            root: false,
            mtimes: true,
            dir_mtimes: true,
            xattr_prefixes: vec!["user.".to_string()],
            hardlink_groups: true,
            identity: false,
            ignore_mtime: Vec::new(),
        }
    }

    /// The same tree before and after: every field, the root too, all xattrs.
    pub fn untouched() -> Compare {
        Compare {
            exclude: Vec::new(),
            root: true,
            mtimes: true,
            dir_mtimes: true,
            xattr_prefixes: Vec::new(),
            hardlink_groups: true,
            identity: true,
            ignore_mtime: Vec::new(),
        }
    }

    /// Leaves `path` (relative) and everything under it out.
    pub fn exclude(mut self, path: impl AsRef<Path>) -> Compare {
        self.exclude.push(path.as_ref().to_path_buf());
        self
    }

    /// Does not compare the mtime of `path` (relative) itself.
    pub fn ignore_mtime(mut self, path: impl AsRef<Path>) -> Compare {
        self.ignore_mtime.push(path.as_ref().to_path_buf());
        self
    }

    fn excluded(&self, path: &Path) -> bool {
        (!self.root && path.as_os_str().is_empty())
            || self.exclude.iter().any(|prefix| path.starts_with(prefix))
    }

    fn xattrs<'a>(&self, xattrs: &'a BTreeMap<String, Vec<u8>>) -> BTreeMap<&'a str, &'a [u8]> {
        xattrs
            .iter()
            .filter(|(name, _)| {
                self.xattr_prefixes.is_empty()
                    || self.xattr_prefixes.iter().any(|p| name.starts_with(p))
            })
            .map(|(name, value)| (name.as_str(), value.as_slice()))
            .collect()
    }
}

struct Shown<'a>(&'a Path);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.as_os_str().is_empty() {
            write!(f, "<root>")
        } else {
            write!(f, "{}", self.0.display())
        }
    }
}

/// One line per difference between `a` (called `a_name` in messages) and `b`.
pub fn diff(a_name: &str, a: &Tree, b_name: &str, b: &Tree, compare: &Compare) -> Vec<String> {
    let mut out = Vec::new();
    let paths: BTreeSet<&PathBuf> = a.keys().chain(b.keys()).collect();
    for path in paths {
        if compare.excluded(path) {
            continue;
        }
        let shown = Shown(path);
        let (x, y) = match (a.get(path), b.get(path)) {
            (Some(x), Some(y)) => (x, y),
            (Some(x), None) => {
                out.push(format!("{shown}: only in {a_name} ({})", describe(x)));
                continue;
            }
            (None, Some(y)) => {
                out.push(format!("{shown}: only in {b_name} ({})", describe(y)));
                continue;
            }
            (None, None) => unreachable!(),
        };
        let mut field = |name: &str, left: String, right: String| {
            if left != right {
                out.push(format!(
                    "{shown}: {name} differs: {a_name} {left}, {b_name} {right}"
                ));
            }
        };
        field("type", format!("{:?}", x.kind), format!("{:?}", y.kind));
        if x.kind != y.kind {
            continue;
        }
        if x.kind != Kind::Symlink {
            field("mode", format!("{:04o}", x.mode), format!("{:04o}", y.mode));
        }
        field(
            "owner",
            format!("{}:{}", x.uid, x.gid),
            format!("{}:{}", y.uid, y.gid),
        );
        field("size", x.size.to_string(), y.size.to_string());
        field(
            "content",
            format!("{:?}", x.sha256),
            format!("{:?}", y.sha256),
        );
        field(
            "link target",
            format!("{:?}", x.link),
            format!("{:?}", y.link),
        );
        field(
            "xattrs",
            format!("{:?}", compare.xattrs(&x.xattrs)),
            format!("{:?}", compare.xattrs(&y.xattrs)),
        );
        if x.kind == Kind::CharDevice || x.kind == Kind::BlockDevice {
            field("rdev", x.rdev.to_string(), y.rdev.to_string());
        }
        let mtimes = if x.kind == Kind::Dir {
            compare.dir_mtimes
        } else {
            compare.mtimes
        };
        if mtimes && !compare.ignore_mtime.iter().any(|p| p == path) {
            field("mtime", show_time(x.mtime), show_time(y.mtime));
        }
        if compare.identity {
            field("link count", x.nlink.to_string(), y.nlink.to_string());
            field("ctime", show_time(x.ctime), show_time(y.ctime));
            field("inode", format!("{:?}", x.inode), format!("{:?}", y.inode));
        }
    }
    if compare.hardlink_groups {
        let groups_a = hardlink_groups(a, compare);
        let groups_b = hardlink_groups(b, compare);
        for group in groups_a.difference(&groups_b) {
            out.push(format!(
                "hard links {group:?} share an inode in {a_name} but not in {b_name}"
            ));
        }
        for group in groups_b.difference(&groups_a) {
            out.push(format!(
                "hard links {group:?} share an inode in {b_name} but not in {a_name}"
            ));
        }
    }
    out
}

/// Sets of (non-directory) paths sharing an inode, groups of two or more.
fn hardlink_groups(tree: &Tree, compare: &Compare) -> BTreeSet<Vec<PathBuf>> {
    let mut by_inode: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    for (path, entry) in tree {
        if entry.kind != Kind::Dir && !compare.excluded(path) {
            by_inode.entry(entry.inode).or_default().push(path.clone());
        }
    }
    by_inode.into_values().filter(|g| g.len() > 1).collect()
}

fn show_time((secs, nanos): (i64, i64)) -> String {
    if nanos == 0 {
        secs.to_string()
    } else {
        format!("{secs}.{nanos:09}")
    }
}

/// A short description of an entry for "only in" lines.
pub fn describe(entry: &Entry) -> String {
    match entry.kind {
        Kind::Symlink => format!(
            "symlink -> {}",
            entry
                .link
                .as_deref()
                .map(|l| Path::new(l).display().to_string())
                .unwrap_or_default()
        ),
        Kind::File => format!("file, {} bytes, mode {:04o}", entry.size, entry.mode),
        kind => format!("{kind:?}, mode {:04o}", entry.mode),
    }
}

/// Panics, listing every difference, unless the trees at `a_root` and `b_root` agree under
/// `compare`.
pub fn assert_same_tree(
    a_name: &str,
    a_root: &Path,
    b_name: &str,
    b_root: &Path,
    compare: &Compare,
) {
    let a = snapshot(a_root);
    let b = snapshot(b_root);
    let differences = diff(a_name, &a, b_name, &b, compare);
    assert!(
        differences.is_empty(),
        "{a_name} ({}) and {b_name} ({}) differ in {} ways{}:\n  {}",
        a_root.display(),
        b_root.display(),
        differences.len(),
        if compare.exclude.is_empty() && compare.ignore_mtime.is_empty() {
            String::new()
        } else {
            format!(
                " (excluding {:?}, not comparing the mtime of {:?})",
                compare.exclude, compare.ignore_mtime
            )
        },
        differences.join("\n  ")
    );
}

/// The names directly in `dir` (lossy UTF-8), sorted; empty if it does not exist.
pub fn names_in(dir: &Path) -> BTreeSet<String> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.unwrap_or_else(|err| panic!("listing {}: {err}", dir.display()))
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}
