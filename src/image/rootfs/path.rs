//! Entry paths: normalisation with chroot semantics, and display.
//!
//! Paths from a layer are bytes (any encoding, any shape). [`normalise`] turns them into
//! the one form the rest of the applier uses: components separated by single `/`, no
//! leading or trailing `/`, no `.` or `..` components; the empty path is the root.

use std::fmt;

/// Normalises a path as if the root were `/`: leading `/`s, empty and `.` components are
/// dropped, and `..` removes the previous component (or nothing, at the root).
///
/// This is lexical: `a/../b` is `b` even if `a` is a symlink, as in Go's `filepath.Clean`
/// (which Docker and containerd apply to entry names).
pub(super) fn normalise(raw: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                let keep = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(keep);
            }
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(component);
            }
        }
    }
    out
}

/// Splits a normalised path into its parent directory and final name (`(b"", b"")` for
/// the root).
pub(super) fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    }
}

/// Joins a normalised directory path and a name.
pub(super) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(dir.len() + 1 + name.len());
    out.extend_from_slice(dir);
    if !dir.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// Whether `path` is `dir` or lies under it (both normalised; the empty `dir` is the
/// root, which holds everything).
pub(super) fn is_within(path: &[u8], dir: &[u8]) -> bool {
    dir.is_empty()
        || (path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/'))
}

/// The number of components of a normalised path.
pub(super) fn depth(path: &[u8]) -> usize {
    if path.is_empty() {
        0
    } else {
        1 + path.iter().filter(|&&b| b == b'/').count()
    }
}

/// Displays a path for messages: UTF-8 as is, other bytes as `\xNN`, the root as `/`.
pub(super) struct Show<'a>(pub(super) &'a [u8]);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c.is_control() {
                    write!(f, "{}", c.escape_default())?;
                } else {
                    write!(f, "{c}")?;
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"/", b""),
            (b".", b""),
            (b"./", b""),
            (b"..", b""),
            (b"../..", b""),
            (b"a", b"a"),
            (b"./a", b"a"),
            (b"a/", b"a"),
            (b"/a", b"a"),
            (b"///a//b///", b"a/b"),
            (b"a/./b/.", b"a/b"),
            (b"a/../b", b"b"),
            (b"a/b/../../c", b"c"),
            (b"a/b/../../../c", b"c"),
            (b"../escape", b"escape"),
            (b"../../x", b"x"),
            (b"/etc/x", b"etc/x"),
            (b"./../etc/../../passwd", b"passwd"),
            (b"a/..", b""),
            (b"a/...", b"a/..."),
            (b"..a/b..", b"..a/b.."),
            (b"usr/bin/\xff\x00x", b"usr/bin/\xff\x00x"),
            (
                "caf\u{e9}/\u{1f600}".as_bytes(),
                "caf\u{e9}/\u{1f600}".as_bytes(),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                normalise(raw),
                *want,
                "normalise({})",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn split_join_within_depth() {
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"a"), (&b""[..], &b"a"[..]));
        assert_eq!(split(b""), (&b""[..], &b""[..]));
        assert_eq!(join(b"", b"a"), b"a");
        assert_eq!(join(b"a/b", b"c"), b"a/b/c");
        assert!(is_within(b"a/b", b""));
        assert!(is_within(b"a/b", b"a"));
        assert!(is_within(b"a", b"a"));
        assert!(!is_within(b"ab", b"a"));
        assert!(!is_within(b"a", b"a/b"));
        assert_eq!(depth(b""), 0);
        assert_eq!(depth(b"a"), 1);
        assert_eq!(depth(b"a/b/c"), 3);
    }

    #[test]
    fn show_escapes_what_is_not_text() {
        assert_eq!(Show(b"").to_string(), "/");
        assert_eq!(Show(b"usr/bin/x").to_string(), "usr/bin/x");
        assert_eq!(Show("caf\u{e9}".as_bytes()).to_string(), "caf\u{e9}");
        assert_eq!(Show(b"a\xffb").to_string(), "a\\xffb");
        assert_eq!(Show(b"a\nb").to_string(), "a\\nb");
    }
}
