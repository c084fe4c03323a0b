//! The rootfs tarball: a flattened root filesystem as one tar, shaped like `docker export`
//! (D's `rootfs.tar`): names relative without `./`, directories with a trailing `/`, no
//! entry for the root itself.
//!
//! Each entry keeps its type, mode (setuid, setgid and sticky bits included), numeric
//! uid/gid (no user or group names), mtime (whole seconds, as Docker writes), symlink
//! target, and extended attributes (PAX `SCHILY.xattr.<name>` records, as GNU tar and
//! Docker write them). Files sharing an inode become hard links to the first name written.
//! FIFOs and device nodes are written as such; sockets cannot be archived and are left out.
//! Entries are written depth first, each directory's children sorted by name bytes, so
//! the same tree always gives the same tarball. Symlinks are never followed. Long and
//! non-UTF-8 names use GNU long-name records.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rustix::io::Errno;
use tar::{Builder, EntryType, Header};

use super::{commit, tmp_sibling};
use crate::image::hashing::CountingReader;

/// Prefix of the PAX records that carry extended attributes.
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";
/// How often reading an extended attribute is retried when it grows between the size
/// query and the read.
const XATTR_ATTEMPTS: usize = 8;

/// Writes the tree at `root` as one tar at `path`, without following any symlink (`root`
/// itself must be a directory, not a symlink). Works on `<path>.tmp` and renames it at the
/// end.
pub fn write_rootfs_tar(root: &Path, path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(root).with_context(|| format!("reading {}", root.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let tmp = tmp_sibling(path)?;
    let written = write_tar(root, &tmp);
    commit(&tmp, path, written).with_context(|| {
        format!(
            "writing rootfs tarball {} from {}",
            path.display(),
            root.display()
        )
    })
}

fn write_tar(root: &Path, tmp: &Path) -> Result<()> {
    let file = File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    // Should the tarball be inside the tree, it must not archive itself.
    let out = file.metadata()?;
    let out_id = (out.dev(), out.ino());
    let mut tar = Builder::new(BufWriter::with_capacity(1 << 20, file));
    let mut first_names = HashMap::new();
    // Depth first: pop a name, write it, push its children (reversed, so the smallest
    // name comes off next).
    let mut stack: Vec<PathBuf> = sorted_children(root, Path::new(""))?;
    stack.reverse();
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let meta =
            fs::symlink_metadata(&full).with_context(|| format!("reading {}", full.display()))?;
        if (meta.dev(), meta.ino()) == out_id {
            continue;
        }
        append_entry(&mut tar, &full, &rel, &meta, &mut first_names)
            .with_context(|| format!("archiving {}", full.display()))?;
        if meta.is_dir() {
            let mut children = sorted_children(root, &rel)?;
            children.reverse();
            stack.extend(children);
        }
    }
    tar.into_inner()?.flush()?;
    Ok(())
}

/// The entries of directory `root/rel`, as paths relative to `root`, sorted by name bytes.
fn sorted_children(root: &Path, rel: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join(rel);
    let mut names = fs::read_dir(&dir)
        .and_then(|entries| {
            entries
                .map(|entry| entry.map(|e| e.file_name()))
                .collect::<io::Result<Vec<OsString>>>()
        })
        .with_context(|| format!("listing {}", dir.display()))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names.into_iter().map(|name| rel.join(name)).collect())
}

/// What a filesystem object becomes in the tar.
enum Kind {
    Directory,
    Regular,
    Symlink,
    Fifo,
    Char,
    Block,
}

fn kind_of(meta: &Metadata) -> Option<Kind> {
    let file_type = meta.file_type();
    Some(if file_type.is_dir() {
        Kind::Directory
    } else if file_type.is_file() {
        Kind::Regular
    } else if file_type.is_symlink() {
        Kind::Symlink
    } else if file_type.is_fifo() {
        Kind::Fifo
    } else if file_type.is_char_device() {
        Kind::Char
    } else if file_type.is_block_device() {
        Kind::Block
    } else {
        return None; // a socket
    })
}

fn append_entry<W: Write>(
    tar: &mut Builder<W>,
    full: &Path,
    rel: &Path,
    meta: &Metadata,
    first_names: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let Some(kind) = kind_of(meta) else {
        return Ok(());
    };
    let mut header = Header::new_gnu();
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(u64::from(meta.uid()));
    header.set_gid(u64::from(meta.gid()));
    header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    header.set_size(0);

    if !matches!(kind, Kind::Directory) && meta.nlink() > 1 {
        match first_names.entry((meta.dev(), meta.ino())) {
            Entry::Occupied(first) => {
                header.set_entry_type(EntryType::Link);
                tar.append_link(&mut header, rel, first.get())?;
                return Ok(());
            }
            Entry::Vacant(slot) => {
                slot.insert(rel.to_path_buf());
            }
        }
    }

    let xattrs = read_xattrs(full)?;
    if !xattrs.is_empty() {
        tar.append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    }
    match kind {
        Kind::Directory => {
            header.set_entry_type(EntryType::Directory);
            let mut name = rel.as_os_str().to_owned();
            name.push("/");
            tar.append_data(&mut header, Path::new(&name), io::empty())?;
        }
        Kind::Regular => {
            let size = meta.len();
            header.set_entry_type(EntryType::Regular);
            header.set_size(size);
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(full)
                .context("opening")?;
            let mut reader = CountingReader::new(file.take(size));
            tar.append_data(&mut header, rel, &mut reader)?;
            if reader.count() != size {
                bail!(
                    "it shrank from {size} to {} bytes while it was archived",
                    reader.count()
                );
            }
        }
        Kind::Symlink => {
            let target = fs::read_link(full).context("reading the link")?;
            header.set_entry_type(EntryType::Symlink);
            tar.append_link(&mut header, rel, target)?;
        }
        Kind::Fifo | Kind::Char | Kind::Block => {
            header.set_entry_type(match kind {
                Kind::Fifo => EntryType::Fifo,
                Kind::Char => EntryType::Char,
                _ => EntryType::Block,
            });
            if !matches!(kind, Kind::Fifo) {
                header.set_device_major(rustix::fs::major(meta.rdev()))?;
                header.set_device_minor(rustix::fs::minor(meta.rdev()))?;
            }
            tar.append_data(&mut header, rel, io::empty())?;
        }
    }
    Ok(())
}

/// The extended attributes of `path` (not following a symlink), as PAX records
/// (`SCHILY.xattr.<name>`, raw value), sorted by name. None where the filesystem has none.
fn read_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let list = read_sized(|buf| match buf {
        None => rustix::fs::llistxattr_query(path),
        Some(buf) => rustix::fs::llistxattr(path, buf),
    });
    let list = match list {
        Ok(list) => list,
        Err(e) if e == Errno::OPNOTSUPP => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!(e).context("listing extended attributes")),
    };
    let mut records = Vec::new();
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).map_err(|_| {
            anyhow!(
                "extended attribute name {:?} is not UTF-8",
                String::from_utf8_lossy(name)
            )
        })?;
        let value = read_sized(|buf| match buf {
            None => rustix::fs::lgetxattr_query(path, name),
            Some(buf) => rustix::fs::lgetxattr(path, name, buf),
        });
        match value {
            Ok(value) => records.push((format!("{PAX_XATTR_PREFIX}{name}"), value)),
            Err(e) if e == Errno::NODATA => {} // removed since it was listed
            Err(e) => return Err(anyhow!(e).context(format!("reading extended attribute {name}"))),
        }
    }
    records.sort();
    Ok(records)
}

/// Runs a size query (`None`) then a read into a buffer of that size, again while the data
/// grows in between (`ERANGE`).
fn read_sized(
    mut call: impl FnMut(Option<&mut [u8]>) -> Result<usize, Errno>,
) -> Result<Vec<u8>, Errno> {
    let mut last = Errno::RANGE;
    for _ in 0..XATTR_ATTEMPTS {
        let size = call(None)?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match call(Some(&mut buf)) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e == Errno::RANGE => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ffi::OsStr;
    use std::os::unix::fs::{lchown, symlink, PermissionsExt};

    use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};

    use super::super::test_support::{run, sha256_file};
    use super::*;

    /// What the comparison looks at for one entry.
    #[derive(Debug, PartialEq, Eq)]
    struct Seen {
        kind: &'static str,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: i64,
        target: Option<PathBuf>,
        rdev: u64,
        xattrs: Vec<(String, Vec<u8>)>,
        content: Option<String>,
    }

    fn seen(path: &Path) -> Result<Seen> {
        let meta = fs::symlink_metadata(path)?;
        let t = meta.file_type();
        let kind = match kind_of(&meta) {
            Some(Kind::Directory) => "dir",
            Some(Kind::Regular) => "file",
            Some(Kind::Symlink) => "symlink",
            Some(Kind::Fifo) => "fifo",
            Some(Kind::Char) => "char",
            Some(Kind::Block) => "block",
            None => "socket",
        };
        Ok(Seen {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.mtime(),
            target: if t.is_symlink() {
                Some(fs::read_link(path)?)
            } else {
                None
            },
            rdev: meta.rdev(),
            xattrs: read_xattrs(path)?,
            content: if t.is_file() {
                Some(sha256_file(path)?)
            } else {
                None
            },
        })
    }

    /// Every entry under `root` (not `root` itself), by relative path.
    fn walk(root: &Path) -> Result<BTreeMap<PathBuf, Seen>> {
        let mut all = BTreeMap::new();
        let mut stack = sorted_children(root, Path::new(""))?;
        while let Some(rel) = stack.pop() {
            let full = root.join(&rel);
            if fs::symlink_metadata(&full)?.is_dir() {
                stack.extend(sorted_children(root, &rel)?);
            }
            all.insert(rel, seen(&full)?);
        }
        Ok(all)
    }

    fn set_mtime(path: &Path, secs: i64) -> Result<()> {
        let time = Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        let times = Timestamps {
            last_access: time,
            last_modification: time,
        };
        rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    fn chmod(path: &Path, mode: u32) -> Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    /// A tree with one of everything the tarball must keep.
    fn build_tree(root: &Path) -> Result<()> {
        let long_dir = root.join("long").join("d".repeat(120));
        for dir in ["bin", "etc", "tmp", "sgid", "empty", "dev"] {
            fs::create_dir(root.join(dir))?;
        }
        fs::create_dir_all(&long_dir)?;
        fs::write(root.join("bin/su"), b"#!/bin/su\n")?;
        chmod(&root.join("bin/su"), 0o4755)?;
        lchown(root.join("bin/su"), Some(1234), Some(5678))?;
        chmod(&root.join("tmp"), 0o1777)?;
        chmod(&root.join("sgid"), 0o2750)?;
        lchown(root.join("sgid"), Some(0), Some(42))?;
        fs::write(root.join("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n")?;
        fs::hard_link(root.join("etc/passwd"), root.join("etc/hard"))?;
        fs::write(root.join("etc/secret"), b"shh")?;
        chmod(&root.join("etc/secret"), 0o000)?;
        symlink("../etc/passwd", root.join("bin/rel"))?;
        symlink("/etc/passwd", root.join("abs"))?;
        symlink(format!("/{}", "t".repeat(150)), root.join("longlink"))?;
        lchown(root.join("abs"), Some(7), Some(8))?;
        rustix::fs::mknodat(
            CWD,
            root.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o640),
            0,
        )?;
        rustix::fs::mknodat(
            CWD,
            root.join("dev/null"),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )?;
        rustix::fs::mknodat(
            CWD,
            root.join("dev/loop9"),
            FileType::BlockDevice,
            Mode::from_raw_mode(0o660),
            rustix::fs::makedev(7, 9),
        )?;
        chmod(&root.join("dev/null"), 0o666)?;
        rustix::fs::lsetxattr(
            root.join("etc/passwd"),
            "user.test",
            b"val\0ue",
            XattrFlags::empty(),
        )?;
        rustix::fs::lsetxattr(root.join("bin"), "user.test", b"dir", XattrFlags::empty())?;
        rustix::fs::lsetxattr(root.join("bin"), "user.another", b"2", XattrFlags::empty())?;
        fs::write(long_dir.join("f".repeat(120)), b"long\n")?;
        // A PAX record and a GNU long name on one entry.
        rustix::fs::lsetxattr(
            long_dir.join("f".repeat(120)),
            "user.long",
            b"yes",
            XattrFlags::empty(),
        )?;
        let odd = root.join(OsStr::from_bytes(b"caf\xe9"));
        fs::write(&odd, b"latin-1\n")?;
        fs::write(
            long_dir.join(OsStr::from_bytes(&[b'\xff'; 90])),
            b"long and odd\n",
        )?;

        // mtimes last, deepest first, so that creating children does not change them.
        let mut all: Vec<PathBuf> = walk(root)?.into_keys().collect();
        all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for (i, rel) in all.iter().enumerate() {
            set_mtime(&root.join(rel), 1_500_000_000 + i as i64 * 1000)?;
        }
        Ok(())
    }

    #[test]
    fn gnu_tar_extracts_what_was_archived() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("rootfs");
        fs::create_dir(&root)?;
        build_tree(&root)?;
        let tarball = dir.path().join("rootfs.tar");
        write_rootfs_tar(&root, &tarball)?;
        assert!(!dir.path().join("rootfs.tar.tmp").exists());

        let out = dir.path().join("out");
        fs::create_dir(&out)?;
        run(
            "tar",
            &[
                OsStr::new("--xattrs"),
                OsStr::new("--xattrs-include=*"),
                OsStr::new("-xpf"),
                tarball.as_os_str(),
                OsStr::new("-C"),
                out.as_os_str(),
            ],
        )?;
        let want = walk(&root)?;
        let got = walk(&out)?;
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>()
        );
        for (rel, want) in &want {
            assert_eq!(Some(want), got.get(rel), "{}", rel.display());
        }
        let long = format!("long/{}/{}", "d".repeat(120), "f".repeat(120));
        assert_eq!(got[Path::new(&long)].xattrs.len(), 1);
        assert!(want[Path::new("etc/passwd")]
            .xattrs
            .iter()
            .any(|(k, _)| k == "SCHILY.xattr.user.test"));
        let hard = fs::metadata(out.join("etc/hard"))?;
        assert_eq!(hard.ino(), fs::metadata(out.join("etc/passwd"))?.ino());
        Ok(())
    }

    #[test]
    fn entries_are_named_like_docker_export_in_sorted_order() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("rootfs");
        fs::create_dir(&root)?;
        build_tree(&root)?;
        let tarball = dir.path().join("rootfs.tar");
        write_rootfs_tar(&root, &tarball)?;

        let mut archive = tar::Archive::new(File::open(&tarball)?);
        let mut names = Vec::new();
        let mut links = Vec::new();
        for entry in archive.entries()? {
            let entry = entry?;
            let name = entry.path_bytes().into_owned();
            if entry.header().entry_type() == EntryType::Link {
                links.push((
                    name.clone(),
                    entry.link_name_bytes().map(|l| l.into_owned()),
                ));
            }
            assert_eq!(entry.header().username_bytes(), Some(&b""[..]));
            names.push(name);
        }
        let long = format!("long/{}/{}", "d".repeat(120), "f".repeat(120));
        let mut odd_long = format!("long/{}/", "d".repeat(120)).into_bytes();
        odd_long.extend([b'\xff'; 90]);
        let want: Vec<Vec<u8>> = [
            &b"abs"[..],
            b"bin/",
            b"bin/rel",
            b"bin/su",
            b"caf\xe9",
            b"dev/",
            b"dev/loop9",
            b"dev/null",
            b"empty/",
            b"etc/",
            b"etc/hard",
            b"etc/passwd",
            b"etc/secret",
            b"fifo",
            b"long/",
            format!("long/{}/", "d".repeat(120)).as_bytes(),
            long.as_bytes(),
            &odd_long,
            b"longlink",
            b"sgid/",
            b"tmp/",
        ]
        .iter()
        .map(|n| n.to_vec())
        .collect();
        assert_eq!(names, want);
        assert_eq!(
            links,
            vec![(b"etc/passwd".to_vec(), Some(b"etc/hard".to_vec()))]
        );

        // The same tree gives the same bytes.
        let again = dir.path().join("again.tar");
        write_rootfs_tar(&root, &again)?;
        assert_eq!(sha256_file(&tarball)?, sha256_file(&again)?);
        Ok(())
    }

    #[test]
    fn symlinked_root_and_tarball_inside_root() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("rootfs");
        fs::create_dir(&root)?;
        fs::write(root.join("a"), b"a")?;
        let link = dir.path().join("link");
        symlink(&root, &link)?;
        assert!(write_rootfs_tar(&link, &dir.path().join("x.tar")).is_err());
        assert!(!dir.path().join("x.tar").exists());

        write_rootfs_tar(&root, &root.join("self.tar"))?;
        let listing = run(
            "tar",
            &[OsStr::new("-tf"), root.join("self.tar").as_os_str()],
        )?;
        assert_eq!(listing, "a\n");
        Ok(())
    }
}
