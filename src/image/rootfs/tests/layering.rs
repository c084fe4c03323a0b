//! Layers over layers: whiteouts, opaque directories and replacements.

use super::*;

#[test]
fn whiteouts_remove_files_symlinks_and_trees_from_lower_layers() {
    let mut f = Fixture::new();
    f.apply(&[
        file("etc/a", "a"),
        symlink("etc/s", "/outside"),
        dir("etc/tree"),
        file("etc/tree/x/y/z", "deep"),
        symlink("etc/tree/x/l", "/"),
        file("etc/keep", "k"),
        file("top", "t"),
    ]);
    let stats = f.apply(&[
        file("etc/.wh.a", ""),
        file("etc/.wh.s", ""),
        file("etc/.wh.tree", ""),
        file("etc/.wh.missing", ""),
        file("nodir/.wh.x", ""),
        file("top/.wh.x", ""),
        file(".wh.top", ""),
    ]);
    f.finish();
    assert_eq!(stats.whiteouts, 7);
    assert_eq!(f.names(), ["etc", "etc/keep"]);
}

#[test]
fn whiteouts_leave_entries_of_their_own_layer_in_either_order() {
    let mut f = Fixture::new();
    f.apply(&[
        file("a", "lower a"),
        file("b", "lower b"),
        file("d/old", "old"),
        file("d/same", "o"),
    ]);
    f.apply(&[
        file(".wh.a", ""),
        file("a", "upper a"),
        file("b", "upper b"),
        file(".wh.b", ""),
        dir("d"),
        file("d/new", "n"),
        file("d/same", "s"),
        file(".wh.d", ""),
    ]);
    f.finish();
    assert_eq!(f.read("a"), "upper a");
    assert_eq!(f.read("b"), "upper b");
    assert_eq!(f.names(), ["a", "b", "d", "d/new", "d/same"]);
    assert_eq!(f.read("d/same"), "s");
}

#[test]
fn opaque_directories_drop_lower_content_only() {
    for marker_first in [true, false] {
        let mut f = Fixture::new();
        f.apply(&[
            dir("o").mode(0o750).owner(3, 4),
            file("o/lower", "l"),
            file("o/replaced", "lower"),
            file("o/sub/lower", "l"),
            file("o/implicit/lower", "l"),
            file("o/keepdir/lower", "l"),
            file("other/untouched", "u"),
        ]);
        let mut upper = vec![
            file("o/replaced", "upper"),
            dir("o/sub"),
            file("o/sub/new", "n"),
            file("o/implicit/new", "n"),
        ];
        let marker = file("o/.wh..wh..opq", "");
        if marker_first {
            upper.insert(0, marker);
        } else {
            upper.push(marker);
        }
        let stats = f.apply(&upper);
        f.finish();
        assert_eq!(stats.whiteouts, 1);
        assert_eq!(
            f.names(),
            [
                "o",
                "o/implicit",
                "o/implicit/new",
                "o/replaced",
                "o/sub",
                "o/sub/new",
                "other",
                "other/untouched"
            ],
            "marker first: {marker_first}"
        );
        assert_eq!(f.read("o/replaced"), "upper");
        let m = f.meta("o");
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o750, 3, 4));
    }
}

#[test]
fn opaque_root_and_missing_opaque_directories() {
    let mut f = Fixture::new();
    f.apply(&[file("a", "a"), file("b/c", "c")]);
    f.apply(&[
        file("x/.wh..wh..opq", ""),
        file("b/new", "n"),
        file(".wh..wh..opq", ""),
    ]);
    f.finish();
    assert_eq!(f.names(), ["b", "b/new"]);
}

#[test]
fn invalid_whiteouts_are_errors_and_aufs_metadata_is_ignored() {
    let mut f = Fixture::new();
    f.apply(&[file("a/b", "b")]);
    for name in ["a/.wh.", "a/.wh..", "a/.wh...", "a/.wh.b/c", ".wh."] {
        let e = f.error(&[file(name, "")]);
        assert!(
            e.contains("invalid whiteout") && e.contains(&format!("entry {name}")),
            "{e}"
        );
    }
    let stats = f.apply(&[
        dir(".wh..wh.plnk"),
        file(".wh..wh.plnk/123.456", "x"),
        file(".wh..wh.aufs", ""),
    ]);
    f.finish();
    assert_eq!(f.names(), ["a", "a/b"]);
    assert!(
        stats.skipped[0].starts_with("3 AUFS metadata entries ignored"),
        "{:?}",
        stats.skipped
    );
}

#[test]
fn a_file_replaces_a_directory_tree() {
    let mut f = Fixture::new();
    f.apply(&[
        dir("x").mtime(T0 + 1),
        file("x/y/z", "deep"),
        symlink("x/l", "/"),
    ]);
    f.apply(&[file("x", "now a file")]);
    f.finish();
    assert_eq!(f.read("x"), "now a file");
    assert_eq!(f.names(), ["x"]);
}

#[test]
fn a_directory_replaces_a_file_or_symlink_and_keeps_a_directory() {
    let mut f = Fixture::new();
    f.apply(&[
        file("f", "file"),
        symlink("s", "target"),
        dir("target"),
        dir("d").mode(0o700),
        file("d/kept", "k"),
    ]);
    f.apply(&[
        dir("f").mode(0o711),
        dir("s"),
        file("s/inside", "i"),
        dir("d").mode(0o755).owner(9, 9).mtime(T0 + 7),
    ]);
    f.finish();
    assert!(f.meta("f").is_dir());
    assert_eq!(f.meta("f").mode() & 0o7777, 0o711);
    assert!(f.meta("s").is_dir());
    assert!(!f.exists("target/inside"));
    assert_eq!(f.read("d/kept"), "k");
    let m = f.meta("d");
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.mtime()),
        (0o755, 9, T0 as i64 + 7)
    );
}

#[test]
fn a_file_over_a_file_is_a_new_inode() {
    let mut f = Fixture::new();
    f.apply(&[file("orig", "lower"), link("copy", "orig")]);
    f.apply(&[file("orig", "upper").mode(0o600)]);
    f.finish();
    assert_eq!(f.read("orig"), "upper");
    assert_eq!(f.read("copy"), "lower");
    assert_eq!(f.meta("copy").mode() & 0o7777, 0o644);
    assert_ne!(f.meta("orig").ino(), f.meta("copy").ino());
}

#[test]
fn replacements_of_every_kind_by_every_kind() {
    let lower = |name: &str, kind: usize| match kind {
        0 => vec![file(name, "old")],
        1 => vec![dir(name), file(format!("{name}/child"), "c")],
        2 => vec![symlink(name, "/")],
        3 => vec![fifo(name)],
        _ => vec![file("target", "t"), link(name, "target")],
    };
    for old in 0..5 {
        for new in 0..5 {
            let mut f = Fixture::new();
            f.apply(&[file("target", "t")]);
            f.apply(&lower("n", old));
            let upper = match new {
                0 => file("n", "new"),
                1 => dir("n"),
                2 => symlink("n", "target"),
                3 => fifo("n"),
                _ => link("n", "target"),
            };
            f.apply(&[upper]);
            f.finish();
            let m = f.meta("n");
            let got = match () {
                _ if m.file_type().is_symlink() => 2,
                _ if m.is_dir() => 1,
                _ if m.file_type().is_fifo() => 3,
                _ if m.ino() == f.meta("target").ino() => 4,
                _ => 0,
            };
            assert_eq!(got, new, "{old} replaced by {new}");
            if new == 1 {
                assert_eq!(f.exists("n/child"), old == 1, "{old} replaced by {new}");
            }
            assert_eq!(f.read("target"), "t");
        }
    }
}

#[test]
fn the_parent_cache_follows_replacements() {
    let mut f = Fixture::new();
    f.apply(&[
        dir("real1"),
        dir("real2"),
        symlink("l", "real1"),
        file("l/x", "x"),
        symlink("l", "real2"),
        file("l/y", "y"),
        dir("d"),
        file("d/a", "a"),
        file("d", "now a file"),
        symlink("w", "real1"),
    ]);
    // `w/z` is cached as real1; the whiteout removes the lower symlink `w`, so `w/v`
    // must make a new directory `w`.
    f.apply(&[file("w/z", "z"), file(".wh.w", ""), file("w/v", "v")]);
    // `a/l/x` is cached as b/x; the whiteout removes directory `a` (and `a/l` in it).
    f.apply(&[dir("b"), symlink("a/l", "/b")]);
    f.apply(&[
        file("a/l/x/f1", "1"),
        file(".wh.a", ""),
        file("a/l/x/f2", "2"),
    ]);
    f.finish();
    assert_eq!(
        f.names(),
        [
            "a", "a/l", "a/l/x", "a/l/x/f2", "b", "b/x", "b/x/f1", "d", "l", "real1", "real1/x",
            "real1/z", "real2", "real2/y", "w", "w/v"
        ]
    );
}
