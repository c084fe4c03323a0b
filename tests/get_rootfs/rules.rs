//! The rules of `get_rootfs.rs`: each adds its entries to layer `i` of an image, under its
//! own top-level directory, so the rules combine into the rich image unchanged.

use super::Rule;
use crate::util::{Attrs, LayerBuilder};

pub(super) fn order(i: usize, b: LayerBuilder) -> LayerBuilder {
    let b = b.dir("order", 0o755);
    match i {
        0 => b
            .file("order/version", b"1")
            .file("order/only-first", b"first"),
        1 => b
            .file("order/version", b"2")
            .file("order/only-second", b"second"),
        // The same path twice in one layer: the later entry wins.
        _ => b
            .file("order/version", b"3-first")
            .file("order/version", b"3"),
    }
}

pub(super) fn whiteouts(i: usize, b: LayerBuilder) -> LayerBuilder {
    match i {
        0 => b
            .dir("wh", 0o755)
            .file("wh/removed", b"x")
            .file("wh/kept", b"k")
            .dir("wh/tool", 0o755)
            .dir("wh/tool/bin", 0o755)
            .file("wh/tool/bin/x", b"x")
            .dir("wh/tool/lib", 0o755)
            .file("wh/tool/lib/y", b"y"),
        1 => b
            .dir("wh", 0o755)
            .whiteout("wh/removed")
            .whiteout("wh/tool")
            .whiteout("wh/never-existed"),
        _ => b,
    }
}

/// A whiteout hides only lower layers' content (OCI image-spec, layer.md, "Whiteouts"):
/// a directory recreated in the same layer, before the whiteout entry, survives.
pub(super) fn whiteout_same_layer(i: usize, b: LayerBuilder) -> LayerBuilder {
    match i {
        0 => b
            .dir("whsame", 0o755)
            .dir("whsame/dir", 0o755)
            .file("whsame/dir/old", b"old"),
        1 => b
            .dir("whsame", 0o755)
            .dir("whsame/dir", 0o755)
            .file("whsame/dir/new", b"new")
            .whiteout("whsame/dir"),
        _ => b,
    }
}

pub(super) fn opaque(i: usize, b: LayerBuilder) -> LayerBuilder {
    match i {
        0 => b
            .dir("opq", 0o755)
            .dir("opq/app", 0o755)
            .file("opq/app/lower-file", b"l")
            .dir("opq/app/lower-dir", 0o755)
            .file("opq/app/lower-dir/deep", b"d")
            .dir("opq/cache", 0o755)
            .file("opq/cache/lower", b"l"),
        1 => b
            .dir("opq", 0o755)
            // The marker first (as Docker writes it), then same-layer content...
            .dir("opq/app", 0o700)
            .opaque_whiteout("opq/app")
            .file("opq/app/same-layer", b"s")
            // ...and same-layer content first, then the marker.
            .dir("opq/cache", 0o750)
            .file("opq/cache/same-layer", b"s")
            .opaque_whiteout("opq/cache")
            // Opaque over nothing lower: a no-op.
            .dir("opq/fresh", 0o755)
            .opaque_whiteout("opq/fresh")
            .file("opq/fresh/same-layer", b"s"),
        _ => b,
    }
}

pub(super) fn replace(i: usize, b: LayerBuilder) -> LayerBuilder {
    match i {
        0 => b
            .dir("replace", 0o755)
            .dir("replace/a", 0o755)
            .file("replace/a/x", b"x")
            .dir("replace/a/sub", 0o755)
            .file("replace/a/sub/y", b"y")
            .file("replace/b", b"file")
            .dir("replace/c", 0o755)
            .file("replace/c/z", b"z")
            .symlink("replace/d", "c"),
        1 => b
            .dir("replace", 0o755)
            .file("replace/a", b"now a file")
            .dir("replace/b", 0o755)
            .file("replace/b/y", b"in dir")
            .symlink("replace/c", "b")
            .dir("replace/d", 0o755)
            .file("replace/d/w", b"w"),
        _ => b,
    }
}

pub(super) fn hardlinks(i: usize, b: LayerBuilder) -> LayerBuilder {
    let b = b.dir("hard", 0o755);
    match i {
        0 => b
            .dir("hard/bin", 0o755)
            .file_mode("hard/bin/busybox", b"#!busybox", 0o755)
            .hardlink("hard/bin/sh", "hard/bin/busybox")
            .hardlink("hard/bin/ls", "hard/bin/busybox")
            .dir("hard/lib", 0o755)
            .file("hard/lib/libfoo.so.1", b"libfoo")
            .file("hard/shared", b"old")
            .hardlink("hard/shared-link", "hard/shared"),
        1 => b
            .dir("hard/lib", 0o755)
            .hardlink("hard/lib/libfoo-hard", "hard/lib/libfoo.so.1")
            // A new file replaces one name of a hard-linked pair; the other keeps the old
            // content (writing in place would change both).
            .file("hard/shared", b"new"),
        _ => b.dir("hard/lib", 0o755).whiteout("hard/lib/libfoo.so.1"),
    }
}

pub(super) fn symlinks(i: usize, b: LayerBuilder) -> LayerBuilder {
    match i {
        0 => b
            .dir("sym", 0o755)
            .symlink_with(
                "sym/absolute",
                "/usr/bin/python3",
                &Attrs::mode(0o777).owner(1000, 1000).mtime(1_600_000_000),
            )
            .symlink("sym/relative", "../order/version")
            .symlink("sym/dangling", "../nowhere/at/all")
            .symlink("sym/dot", ".")
            .symlink("sym/chain", "relative"),
        _ => b,
    }
}

pub(super) fn through(i: usize, b: LayerBuilder) -> LayerBuilder {
    match i {
        0 => b
            .dir("through", 0o755)
            .dir("through/realdir", 0o755)
            .symlink("through/linkdir", "realdir")
            .dir("through/run", 0o755)
            .dir("through/var", 0o755)
            // Like Debian's /var/run -> /run: absolute, so relative to the rootfs.
            .symlink("through/var/run", "/through/run"),
        1 => b
            .dir("through", 0o755)
            .file("through/linkdir/via-relative", b"rel")
            .file("through/var/run/app.pid", b"42")
            // The directories that really changed, declared after their content.
            .dir("through/realdir", 0o755)
            .dir("through/run", 0o755),
        _ => b,
    }
}

pub(super) fn long_component() -> String {
    "n".repeat(200)
}

/// A path of over 255 bytes (components under 255 each).
pub(super) fn deep_path() -> String {
    format!(
        "long/{}/{}/{}/file-at-the-end",
        "d".repeat(120),
        "e".repeat(120),
        "f".repeat(120)
    )
}

pub(super) fn long_names(i: usize, b: LayerBuilder) -> LayerBuilder {
    match i {
        0 => {
            let deep = deep_path();
            let d1 = format!("long/{}", "d".repeat(120));
            let d2 = format!("{d1}/{}", "e".repeat(120));
            let d3 = format!("{d2}/{}", "f".repeat(120));
            let relative_target = deep.trim_start_matches("long/").to_string();
            b.dir("long", 0o755)
                .file(&format!("long/{}", long_component()), b"200")
                .file(&format!("long/{}", "b".repeat(95)), b"exactly 100")
                .dir(&d1, 0o755)
                .dir(&d2, 0o755)
                .dir(&d3, 0o755)
                .file(&deep, b"deep")
                .symlink("long/link-to-deep", &relative_target)
                .hardlink("long/hard-to-deep", &deep)
        }
        _ => b,
    }
}

pub(super) fn names(i: usize, b: LayerBuilder) -> LayerBuilder {
    match i {
        0 => b
            .dir("names", 0o755)
            .dir("names/ünïcödé", 0o755)
            .file("names/ünïcödé/файл", "данные".as_bytes())
            .file("names/日本語.txt", b"jp")
            .file("names/emoji-\u{1f980}", b"crab")
            .file("names/with space & 'quotes'", b"q")
            .symlink("names/ссылка", "ünïcödé/файл"),
        _ => b,
    }
}

pub(super) fn ownership(i: usize, b: LayerBuilder) -> LayerBuilder {
    match i {
        0 => b
            .dir("own", 0o755)
            .file_with("own/user-file", b"u", &Attrs::mode(0o644).owner(1000, 1000))
            .dir_with("own/nobody", &Attrs::mode(0o750).owner(65534, 65534))
            .file_with(
                "own/nobody/file",
                b"n",
                &Attrs::mode(0o640).owner(65534, 65534),
            )
            .symlink_with(
                "own/user-link",
                "user-file",
                &Attrs::mode(0o777).owner(1000, 1000),
            )
            .file_with("own/mixed", b"m", &Attrs::mode(0o644).owner(0, 1000)),
        _ => b,
    }
}

pub(super) fn modes(i: usize, b: LayerBuilder) -> LayerBuilder {
    let b = b.dir("modes", 0o755);
    match i {
        0 => b
            // Owned by a user: chown after chmod would drop the setuid bit.
            .file_with(
                "modes/setuid",
                b"su",
                &Attrs::mode(0o4755).owner(1000, 1000),
            )
            .file_with(
                "modes/setgid-file",
                b"sg",
                &Attrs::mode(0o2755).owner(0, 50),
            )
            .dir_with("modes/setgid-dir", &Attrs::mode(0o2755).owner(0, 50))
            // Created in a setgid dir, these would inherit gid 50 (and the dir the setgid
            // bit) unless ownership and mode are set explicitly.
            .file("modes/setgid-dir/child", b"c")
            .dir("modes/setgid-dir/subdir", 0o755)
            .dir("modes/tmp", 0o1777)
            .file_mode("modes/private", b"p", 0o600)
            .file_mode("modes/none", b"", 0o000)
            // Not narrowed by a umask.
            .file_mode("modes/world", b"w", 0o777)
            .dir("modes/world-dir", 0o777)
            .dir("modes/readonly", 0o555)
            .file("modes/readonly/inside", b"ro"),
        1 => b
            .dir("modes/readonly", 0o555)
            .file("modes/readonly/later", b"later"),
        _ => b,
    }
}

pub(super) fn xattrs(i: usize, b: LayerBuilder) -> LayerBuilder {
    let b = b.dir("xattr", 0o755);
    match i {
        0 => b
            .file_with(
                "xattr/file",
                b"x",
                &Attrs::mode(0o644)
                    .xattr("user.test", b"value")
                    .xattr("user.binary", &[0, 1, 2, 255]),
            )
            .dir_with("xattr/dir", &Attrs::mode(0o755).xattr("user.dir", b"d"))
            .file_with(
                "xattr/setuid",
                b"s",
                &Attrs::mode(0o4755)
                    .owner(1000, 1000)
                    .xattr("user.test", b"on setuid"),
            )
            .file_with(
                "xattr/replaced",
                b"old",
                &Attrs::mode(0o644).xattr("user.old", b"o"),
            ),
        1 => b.file("xattr/replaced", b"new"),
        _ => b,
    }
}

pub(super) fn mtimes(i: usize, b: LayerBuilder) -> LayerBuilder {
    let b = b.dir("mtime", 0o755);
    match i {
        0 => b
            .file_with(
                "mtime/old-file",
                b"o",
                &Attrs::mode(0o644).mtime(1_000_000_000),
            )
            .dir_with("mtime/stamped", &Attrs::mode(0o755).mtime(1_500_000_000))
            .file("mtime/stamped/child", b"c")
            .dir("mtime/stamped/sub", 0o755)
            .dir_with("mtime/redeclared", &Attrs::mode(0o755).mtime(1_100_000_000))
            .file("mtime/redeclared/a", b"a")
            .fifo("mtime/fifo", &Attrs::mode(0o600).mtime(1_300_000_000)),
        1 => b
            .dir_with("mtime/redeclared", &Attrs::mode(0o755).mtime(1_200_000_000))
            .file("mtime/redeclared/b", b"b"),
        _ => b,
    }
}

pub(super) fn special(i: usize, b: LayerBuilder) -> LayerBuilder {
    match i {
        0 => b
            .dir("special", 0o755)
            .fifo("special/pipe", &Attrs::mode(0o640).owner(1000, 1000))
            .char_device("special/null", 1, 3, &Attrs::mode(0o666))
            .block_device("special/sda", 8, 0, &Attrs::mode(0o660))
            .file("special/regular", b"r")
            .dir("dev", 0o755)
            .char_device("dev/null", 1, 3, &Attrs::mode(0o666))
            .dir("dev/shm", 0o1777)
            .file("dev/shm/leftover", b"l")
            .symlink("dev/stdout", "/proc/self/fd/1"),
        _ => b,
    }
}

/// Entries written as many tar tools write them: `./` prefixes, a `./` root entry,
/// trailing slashes on directories, and `./` in whiteouts and hard link targets.
pub(super) fn dotslash(i: usize, b: LayerBuilder) -> LayerBuilder {
    let dir = |b: LayerBuilder, path: &str| {
        b.raw(path.as_bytes(), tar::EntryType::Directory, 0o755, None, b"")
    };
    let file = |b: LayerBuilder, path: &str, contents: &[u8]| {
        b.raw(
            path.as_bytes(),
            tar::EntryType::Regular,
            0o644,
            None,
            contents,
        )
    };
    match i {
        0 => {
            let b = dir(b, "./");
            let b = dir(b, "./dotslash/");
            let b = file(b, "./dotslash/removed", b"r");
            let b = dir(b, "./dotslash/sub/");
            file(b, "./dotslash/sub/file", b"f")
        }
        1 => {
            let b = dir(b, "./dotslash/");
            let b = file(b, "./dotslash/.wh.removed", b"");
            let b = file(b, "./dotslash/other", b"o");
            b.raw(
                b"./dotslash/hard",
                tar::EntryType::Link,
                0o644,
                Some(b"./dotslash/other"),
                b"",
            )
        }
        _ => b,
    }
}

/// A file larger than any buffer between download, decompression and unpacking.
pub(super) fn big(i: usize, b: LayerBuilder) -> LayerBuilder {
    match i {
        0 => b.dir("big", 0o755).file("big/file", &big_content()),
        _ => b,
    }
}

pub(super) fn big_content() -> Vec<u8> {
    // Deterministic and poorly compressible: an LCG.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..700 * 1024)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

/// Every rule: the rich image.
pub(super) const ALL_RULES: &[Rule] = &[
    order,
    whiteouts,
    whiteout_same_layer,
    opaque,
    replace,
    hardlinks,
    symlinks,
    through,
    long_names,
    names,
    ownership,
    modes,
    xattrs,
    mtimes,
    special,
    dotslash,
    big,
];

/// Device nodes outside `dev/` in the rich image: skipped by us, created by umoci.
pub(super) const DEVICES: &[&str] = &["special/null", "special/sda"];
