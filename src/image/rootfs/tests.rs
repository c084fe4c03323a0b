//! Tests of the layer applier: each builds layer tars in memory, applies them into a
//! temporary directory and checks the result. Hostile layers run with both resolvers
//! (`openat2`, and the walk forced) and check that nothing outside the root changed.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::*;

/// The default mtime of test entries.
const T0: u64 = 1_600_000_000;

/// One entry of a test layer. Names and link names are raw bytes, written as they are
/// (a PAX record when longer than the header field), so anything can be expressed.
#[derive(Clone)]
struct E {
    kind: EntryType,
    name: Vec<u8>,
    link: Option<Vec<u8>>,
    data: Vec<u8>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    pax: Vec<(String, Vec<u8>)>,
}

fn entry(kind: EntryType, name: impl AsRef<[u8]>) -> E {
    E {
        kind,
        name: name.as_ref().to_vec(),
        link: None,
        data: Vec::new(),
        mode: if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        },
        uid: 0,
        gid: 0,
        mtime: T0,
        pax: Vec::new(),
    }
}

fn file(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> E {
    E {
        data: data.as_ref().to_vec(),
        ..entry(EntryType::Regular, name)
    }
}

fn dir(name: impl AsRef<[u8]>) -> E {
    entry(EntryType::Directory, name)
}

fn symlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> E {
    E {
        link: Some(target.as_ref().to_vec()),
        mode: 0o777,
        ..entry(EntryType::Symlink, name)
    }
}

fn link(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> E {
    E {
        link: Some(target.as_ref().to_vec()),
        ..entry(EntryType::Link, name)
    }
}

fn fifo(name: impl AsRef<[u8]>) -> E {
    entry(EntryType::Fifo, name)
}

impl E {
    fn mode(self, mode: u32) -> E {
        E { mode, ..self }
    }
    fn owner(self, uid: u64, gid: u64) -> E {
        E { uid, gid, ..self }
    }
    fn mtime(self, mtime: u64) -> E {
        E { mtime, ..self }
    }
    fn pax(mut self, key: &str, value: impl AsRef<[u8]>) -> E {
        self.pax.push((key.to_string(), value.as_ref().to_vec()));
        self
    }
}

/// PAX records: `<length> <key>=<value>\n`, the length counting itself.
fn pax_records(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let rest = 1 + key.len() + 1 + value.len() + 1;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

fn header(kind: EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_size(size);
    header
}

/// A layer tar holding `entries`.
fn tar(entries: &[E]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut pax = e.pax.clone();
        let mut h = header(e.kind, e.data.len() as u64);
        if e.name.len() <= 100 {
            h.as_old_mut().name[..e.name.len()].copy_from_slice(&e.name);
        } else {
            pax.push(("path".into(), e.name.clone()));
        }
        if let Some(target) = &e.link {
            if target.len() <= 100 {
                h.as_old_mut().linkname[..target.len()].copy_from_slice(target);
            } else {
                pax.push(("linkpath".into(), target.clone()));
            }
        }
        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut x = header(EntryType::XHeader, records.len() as u64);
            x.as_old_mut().name[..9].copy_from_slice(b"PaxHeader");
            x.set_mode(0o644);
            x.set_cksum();
            builder.append(&x, records.as_slice()).unwrap();
        }
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_cksum();
        builder.append(&h, e.data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A temporary directory with the root at `root` and sentinels at `outside`.
struct Fixture {
    tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    rootfs: Option<Rootfs>,
    before: BTreeMap<PathBuf, String>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(true, true)
    }

    fn with(openat2: bool, as_root: bool) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("sub")).unwrap();
        std::fs::write(outside.join("keep"), b"KEEP").unwrap();
        std::fs::write(outside.join("sub/inner"), b"INNER").unwrap();
        std::os::unix::fs::symlink("keep", outside.join("link")).unwrap();
        let rootfs = Rootfs::create_with(&root, openat2, as_root).unwrap();
        assert_eq!(rootfs.resolver.uses_openat2(), openat2);
        let before = snapshot(tmp.path(), &root);
        Fixture {
            tmp,
            root,
            outside,
            rootfs: Some(rootfs),
            before,
        }
    }

    fn rootfs(&mut self) -> &mut Rootfs {
        self.rootfs.as_mut().unwrap()
    }

    fn try_apply(&mut self, entries: &[E]) -> anyhow::Result<LayerStats> {
        let layer = tar(entries);
        self.rootfs().apply_layer(layer.as_slice(), "sha256:test")
    }

    fn apply(&mut self, entries: &[E]) -> LayerStats {
        match self.try_apply(entries) {
            Ok(stats) => stats,
            Err(e) => panic!("{e:#}"),
        }
    }

    fn error(&mut self, entries: &[E]) -> String {
        match self.try_apply(entries) {
            Ok(_) => panic!("the layer applied"),
            Err(e) => format!("{e:#}"),
        }
    }

    fn finish(&mut self) {
        self.rootfs.take().unwrap().finish().unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn read(&self, name: &str) -> String {
        String::from_utf8(std::fs::read(self.path(name)).unwrap()).unwrap()
    }

    fn exists(&self, name: &str) -> bool {
        std::fs::symlink_metadata(self.path(name)).is_ok()
    }

    fn meta(&self, name: &str) -> std::fs::Metadata {
        std::fs::symlink_metadata(self.path(name)).unwrap()
    }

    fn link_target(&self, name: &str) -> PathBuf {
        std::fs::read_link(self.path(name)).unwrap()
    }

    /// Every name under the root, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = snapshot(&self.root, Path::new("/nonexistent"))
            .into_keys()
            .filter_map(|p| {
                let p = p
                    .strip_prefix(&self.root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (!p.is_empty()).then_some(p)
            })
            .collect();
        names.sort();
        names
    }

    /// Nothing outside the root was created, changed or removed.
    fn assert_outside_untouched(&self) {
        assert_eq!(self.before, snapshot(self.tmp.path(), &self.root));
        assert_eq!(std::fs::read(self.outside.join("keep")).unwrap(), b"KEEP");
    }
}

/// Everything about every name under `dir` but `skip`: type, mode, owner, size, times
/// (ctime catches any metadata change), link count, content or link target.
fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, String> {
    fn describe(path: &Path) -> String {
        let m = std::fs::symlink_metadata(path).unwrap();
        let mut out = format!(
            "mode={:o} owner={}:{} size={} mtime={}.{} ctime={}.{} nlink={}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
            m.nlink()
        );
        if m.file_type().is_symlink() {
            out += &format!(" -> {:?}", std::fs::read_link(path).unwrap());
        } else if m.is_file() {
            out += &format!(" {:?}", std::fs::read(path).unwrap());
        }
        out
    }
    fn walk(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for child in std::fs::read_dir(dir).unwrap() {
            let path = child.unwrap().path();
            if path == skip {
                continue;
            }
            out.insert(path.clone(), describe(&path));
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                walk(&path, skip, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    out.insert(dir.to_path_buf(), describe(dir));
    walk(dir, skip, &mut out);
    out
}

/// Runs a hostile-layer test with `openat2` and with the walk, checking the outside.
fn both(test: impl Fn(&mut Fixture)) {
    for openat2 in [true, false] {
        let mut f = Fixture::with(openat2, true);
        test(&mut f);
        f.assert_outside_untouched();
        if f.rootfs.is_some() {
            f.finish();
        }
        f.assert_outside_untouched();
    }
}

/// An extended attribute of `path` itself (not following a symlink).
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, buf.as_mut_slice()).ok()?;
    buf.truncate(n);
    Some(buf)
}

mod creating;
mod hostile;
mod layering;
mod stream;
