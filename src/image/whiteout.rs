//! OCI whiteout rules: which layer entries are deletions, and what they delete.
//!
//! A layer records deletions with marker names (see the [image spec]):
//! - `dir/.wh.name` (a *whiteout*) hides `dir/name` of the lower layers, whatever it is
//!   (file, symlink or whole directory tree);
//! - `dir/.wh..wh..opq` (the *opaque* marker) hides everything the lower layers have in
//!   `dir`, keeping `dir` itself;
//! - any other name starting `.wh..wh.` is AUFS bookkeeping (`.wh..wh.plnk`,
//!   `.wh..wh.aufs`, and everything under them); it carries no content and is ignored.
//!
//! The markers themselves are never created. Entries of the same layer are not hidden by
//! that layer's markers; that part (which needs the filesystem) lives in
//! [`crate::image::rootfs`]. This module only classifies names, purely, on paths already
//! normalised by the applier: components separated by single `/`, no leading `/`, no
//! `.` or `..` components, the empty path being the root.
//!
//! [image spec]: https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts

use std::fmt;

/// The prefix that marks a whiteout: `.wh.`.
pub const PREFIX: &[u8] = b".wh.";

/// The prefix of AUFS metadata names (including the opaque marker): `.wh..wh.`.
pub const META_PREFIX: &[u8] = b".wh..wh.";

/// The name of the opaque-directory marker: `.wh..wh..opq`.
pub const OPAQUE: &[u8] = b".wh..wh..opq";

/// What a layer entry is, judged by its (normalised) path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class<'a> {
    /// An ordinary entry, to be created.
    Normal,
    /// `dir/.wh.name`: delete `dir/name` as the lower layers left it. `dir` is empty for
    /// the root; `name` is a single component, never empty, `.` or `..`.
    Whiteout {
        /// The directory holding the deleted entry.
        dir: &'a [u8],
        /// The deleted entry's name in `dir`.
        name: &'a [u8],
    },
    /// `dir/.wh..wh..opq`: delete everything the lower layers have in `dir`.
    Opaque {
        /// The directory made opaque (empty for the root).
        dir: &'a [u8],
    },
    /// AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`, or anything under them): ignored.
    Meta,
}

/// A name that looks like a whiteout but cannot be honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// `.wh.` with nothing after the prefix.
    EmptyName,
    /// `.wh..` or `.wh...`: a whiteout of `.` or `..`.
    DotName,
    /// A whiteout name used as a directory (`a/.wh.b/c`): whiteouts are leaves.
    NotALeaf,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invalid::EmptyName => "invalid whiteout: no name after `.wh.`",
            Invalid::DotName => "invalid whiteout: names `.` or `..`",
            Invalid::NotALeaf => "invalid whiteout: a whiteout name used as a directory",
        })
    }
}

impl std::error::Error for Invalid {}

/// Classifies a normalised entry path (see the module docs for the form).
///
/// ```
/// use image_resource::image::whiteout::{classify, Class};
/// assert_eq!(classify(b"etc/.wh.passwd"), Ok(Class::Whiteout { dir: b"etc", name: b"passwd" }));
/// assert_eq!(classify(b"var/cache/.wh..wh..opq"), Ok(Class::Opaque { dir: b"var/cache" }));
/// assert_eq!(classify(b"etc/passwd"), Ok(Class::Normal));
/// ```
pub fn classify(path: &[u8]) -> Result<Class<'_>, Invalid> {
    let (dir, name) = match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    };
    // Markers are leaves; a marker name as an intermediate component is AUFS metadata
    // (`.wh..wh.plnk/…`) or nonsense.
    for component in dir.split(|&b| b == b'/') {
        if component.starts_with(META_PREFIX) {
            return Ok(Class::Meta);
        }
        if component.starts_with(PREFIX) {
            return Err(Invalid::NotALeaf);
        }
    }
    if name == OPAQUE {
        return Ok(Class::Opaque { dir });
    }
    if name.starts_with(META_PREFIX) {
        return Ok(Class::Meta);
    }
    match name.strip_prefix(PREFIX) {
        None => Ok(Class::Normal),
        Some(b"") => Err(Invalid::EmptyName),
        Some(b"." | b"..") => Err(Invalid::DotName),
        Some(target) => Ok(Class::Whiteout { dir, name: target }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wh<'a>(dir: &'a [u8], name: &'a [u8]) -> Result<Class<'a>, Invalid> {
        Ok(Class::Whiteout { dir, name })
    }

    #[test]
    fn classify_table() {
        let cases: &[(&[u8], Result<Class<'_>, Invalid>)] = &[
            (b"", Ok(Class::Normal)),
            (b"etc", Ok(Class::Normal)),
            (b"etc/passwd", Ok(Class::Normal)),
            (b"etc/wh.passwd", Ok(Class::Normal)),
            (b"etc/.whx", Ok(Class::Normal)),
            (b"etc/x.wh.y", Ok(Class::Normal)),
            (b"a/.w", Ok(Class::Normal)),
            (b".wh.etc", wh(b"", b"etc")),
            (b"etc/.wh.passwd", wh(b"etc", b"passwd")),
            (b"a/b/c/.wh.d", wh(b"a/b/c", b"d")),
            (b"a/.wh.foo.wh.bar", wh(b"a", b"foo.wh.bar")),
            (b"a/.wh..hidden", wh(b"a", b".hidden")),
            (b"a/.wh....", wh(b"a", b"...")),
            (b"a/.wh.\xff\xfe", wh(b"a", b"\xff\xfe")),
            (".wh.caf\u{e9}".as_bytes(), wh(b"", "caf\u{e9}".as_bytes())),
            (b".wh..wh..opq", Ok(Class::Opaque { dir: b"" })),
            (
                b"var/cache/.wh..wh..opq",
                Ok(Class::Opaque { dir: b"var/cache" }),
            ),
            (b"a/.wh..wh..opqx", Ok(Class::Meta)),
            (b".wh..wh.plnk", Ok(Class::Meta)),
            (b".wh..wh.plnk/123.456", Ok(Class::Meta)),
            (b"a/.wh..wh.aufs", Ok(Class::Meta)),
            (b"a/.wh..wh..opq/b", Ok(Class::Meta)),
            (b"a/.wh..wh..opq/.wh.b", Ok(Class::Meta)),
            (b".wh.", Err(Invalid::EmptyName)),
            (b"a/.wh.", Err(Invalid::EmptyName)),
            (b"a/.wh..", Err(Invalid::DotName)),
            (b"a/.wh...", Err(Invalid::DotName)),
            (b".wh...", Err(Invalid::DotName)),
            (b"a/.wh.b/c", Err(Invalid::NotALeaf)),
            (b"a/.wh.b/.wh.c", Err(Invalid::NotALeaf)),
            (b".wh./x", Err(Invalid::NotALeaf)),
        ];
        for (path, want) in cases {
            assert_eq!(
                &classify(path),
                want,
                "classify({})",
                String::from_utf8_lossy(path)
            );
        }
    }

    #[test]
    fn invalid_messages_are_readable() {
        assert!(Invalid::EmptyName.to_string().contains("`.wh.`"));
        assert!(Invalid::DotName.to_string().contains(".."));
        assert!(Invalid::NotALeaf.to_string().contains("directory"));
    }
}
