//! [`LayerBuilder`]: one layer's tarball, entry by entry (files, dirs, links, whiteouts,
//! devices, raw hostile entries), with the attributes of [`Attrs`].

use super::FIXTURE_MTIME;

/// Builds one layer's uncompressed tar. Entries are owned by root with a fixed mtime.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder::new()
    }
}

impl LayerBuilder {
    /// An empty layer.
    pub fn new() -> LayerBuilder {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Deterministic);
        LayerBuilder { tar }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(FIXTURE_MTIME);
        header
    }

    /// A regular file with mode 0644.
    pub fn file(self, path: &str, contents: &[u8]) -> LayerBuilder {
        self.file_mode(path, contents, 0o644)
    }

    /// A regular file with `mode` (e.g. `0o4755` for setuid).
    pub fn file_mode(mut self, path: &str, contents: &[u8], mode: u32) -> LayerBuilder {
        let mut header = Self::header(tar::EntryType::Regular, mode, contents.len() as u64);
        self.tar
            .append_data(&mut header, path, contents)
            .unwrap_or_else(|err| panic!("adding file {path} to a layer: {err}"));
        self
    }

    /// A directory with `mode`.
    pub fn dir(mut self, path: &str, mode: u32) -> LayerBuilder {
        let mut header = Self::header(tar::EntryType::Directory, mode, 0);
        self.tar
            .append_data(&mut header, path, std::io::empty())
            .unwrap_or_else(|err| panic!("adding dir {path} to a layer: {err}"));
        self
    }

    /// A symlink `path -> target`.
    pub fn symlink(mut self, path: &str, target: &str) -> LayerBuilder {
        let mut header = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.tar
            .append_link(&mut header, path, target)
            .unwrap_or_else(|err| panic!("adding symlink {path} to a layer: {err}"));
        self
    }

    /// A hard link `path` to the earlier entry `target`.
    pub fn hardlink(mut self, path: &str, target: &str) -> LayerBuilder {
        let mut header = Self::header(tar::EntryType::Link, 0o644, 0);
        self.tar
            .append_link(&mut header, path, target)
            .unwrap_or_else(|err| panic!("adding hardlink {path} to a layer: {err}"));
        self
    }

    /// An OCI whiteout deleting `path` from lower layers (`dir/.wh.name`).
    pub fn whiteout(self, path: &str) -> LayerBuilder {
        let (parent, name) = match path.trim_end_matches('/').rsplit_once('/') {
            Some((parent, name)) => (format!("{parent}/"), name),
            None => (String::new(), path),
        };
        self.file(&format!("{parent}.wh.{name}"), b"")
    }

    /// An opaque whiteout: hides everything lower layers put in `dir`.
    pub fn opaque_whiteout(self, dir: &str) -> LayerBuilder {
        self.file(&format!("{}/.wh..wh..opq", dir.trim_end_matches('/')), b"")
    }

    /// An entry written byte for byte, with no path checks (for `../x`, `/etc/x` and other
    /// hostile names; at most 100 bytes each). `link` is the link target for links.
    pub fn raw(
        mut self,
        path: &[u8],
        kind: tar::EntryType,
        mode: u32,
        link: Option<&[u8]>,
        contents: &[u8],
    ) -> LayerBuilder {
        let mut header = Self::header(kind, mode, contents.len() as u64);
        {
            let old = header.as_old_mut();
            assert!(path.len() <= old.name.len(), "raw tar path over 100 bytes");
            old.name[..path.len()].copy_from_slice(path);
            if let Some(link) = link {
                assert!(link.len() <= old.linkname.len(), "raw link over 100 bytes");
                old.linkname[..link.len()].copy_from_slice(link);
            }
        }
        header.set_cksum();
        self.tar
            .append(&header, contents)
            .expect("adding a raw entry to a layer");
        self
    }

    /// A regular file with the mode, owner, mtime and xattrs of `attrs`.
    pub fn file_with(mut self, path: &str, contents: &[u8], attrs: &Attrs) -> LayerBuilder {
        let mut header = attrs.header(tar::EntryType::Regular, contents.len() as u64);
        self.pax_xattrs(attrs);
        self.tar
            .append_data(&mut header, path, contents)
            .unwrap_or_else(|err| panic!("adding file {path} to a layer: {err}"));
        self
    }

    /// A directory with the mode, owner, mtime and xattrs of `attrs`.
    pub fn dir_with(mut self, path: &str, attrs: &Attrs) -> LayerBuilder {
        let mut header = attrs.header(tar::EntryType::Directory, 0);
        self.pax_xattrs(attrs);
        self.tar
            .append_data(&mut header, path, std::io::empty())
            .unwrap_or_else(|err| panic!("adding dir {path} to a layer: {err}"));
        self
    }

    /// A symlink `path -> target` with the owner, mtime and xattrs of `attrs` (its mode is
    /// written as given; Linux ignores a symlink's mode).
    pub fn symlink_with(mut self, path: &str, target: &str, attrs: &Attrs) -> LayerBuilder {
        let mut header = attrs.header(tar::EntryType::Symlink, 0);
        self.pax_xattrs(attrs);
        self.tar
            .append_link(&mut header, path, target)
            .unwrap_or_else(|err| panic!("adding symlink {path} to a layer: {err}"));
        self
    }

    /// A FIFO (named pipe) with `attrs`.
    pub fn fifo(mut self, path: &str, attrs: &Attrs) -> LayerBuilder {
        let mut header = attrs.header(tar::EntryType::Fifo, 0);
        self.pax_xattrs(attrs);
        self.tar
            .append_data(&mut header, path, std::io::empty())
            .unwrap_or_else(|err| panic!("adding fifo {path} to a layer: {err}"));
        self
    }

    /// A character device `major:minor` (e.g. `1, 3` is `/dev/null`).
    pub fn char_device(self, path: &str, major: u32, minor: u32, attrs: &Attrs) -> LayerBuilder {
        self.device(path, tar::EntryType::Char, major, minor, attrs)
    }

    /// A block device `major:minor` (e.g. `8, 0` is `/dev/sda`).
    pub fn block_device(self, path: &str, major: u32, minor: u32, attrs: &Attrs) -> LayerBuilder {
        self.device(path, tar::EntryType::Block, major, minor, attrs)
    }

    fn device(
        mut self,
        path: &str,
        kind: tar::EntryType,
        major: u32,
        minor: u32,
        attrs: &Attrs,
    ) -> LayerBuilder {
        let mut header = attrs.header(kind, 0);
        header
            .set_device_major(major)
            .and_then(|()| header.set_device_minor(minor))
            .expect("setting device numbers");
        self.tar
            .append_data(&mut header, path, std::io::empty())
            .unwrap_or_else(|err| panic!("adding device {path} to a layer: {err}"));
        self
    }

    /// A PAX extended header with `records` (e.g. `("path", b"../x")`), which applies to the
    /// entry added next and overrides its header fields: for hostile `path` / `linkpath`.
    pub fn pax(mut self, records: &[(&str, &[u8])]) -> LayerBuilder {
        self.tar
            .append_pax_extensions(records.iter().copied())
            .expect("adding a PAX header to a layer");
        self
    }

    /// The PAX `SCHILY.xattr.<name>` records for the next entry, if `attrs` has xattrs.
    fn pax_xattrs(&mut self, attrs: &Attrs) {
        let records: Vec<(String, &[u8])> = attrs
            .xattrs
            .iter()
            .map(|(name, value)| (format!("SCHILY.xattr.{name}"), value.as_slice()))
            .collect();
        self.tar
            .append_pax_extensions(records.iter().map(|(key, value)| (key.as_str(), *value)))
            .expect("adding PAX xattr records to a layer");
    }

    /// The uncompressed tar.
    pub fn into_tar(self) -> Vec<u8> {
        self.tar.into_inner().expect("finishing a layer tar")
    }
}

/// Mode, owner, mtime and xattrs of one entry, for [`LayerBuilder::file_with`] and the
/// other `*_with` methods. Defaults: root-owned, [`FIXTURE_MTIME`], no xattrs.
#[derive(Clone, Debug)]
pub struct Attrs {
    /// Permission bits incl. setuid/setgid/sticky, e.g. `0o4755`.
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
    /// Extended attributes, written as PAX `SCHILY.xattr.<name>` records.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Attrs {
    /// `mode`, root-owned, [`FIXTURE_MTIME`], no xattrs.
    pub fn mode(mode: u32) -> Attrs {
        Attrs {
            mode,
            uid: 0,
            gid: 0,
            mtime: FIXTURE_MTIME,
            xattrs: Vec::new(),
        }
    }

    /// Sets the owner.
    pub fn owner(mut self, uid: u64, gid: u64) -> Attrs {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Sets the mtime.
    pub fn mtime(mut self, mtime: u64) -> Attrs {
        self.mtime = mtime;
        self
    }

    /// Adds an xattr, e.g. `("user.test", b"value")`.
    pub fn xattr(mut self, name: &str, value: &[u8]) -> Attrs {
        self.xattrs.push((name.to_string(), value.to_vec()));
        self
    }

    fn header(&self, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(self.mode);
        header.set_size(size);
        header.set_uid(self.uid);
        header.set_gid(self.gid);
        header.set_mtime(self.mtime);
        header
    }
}
