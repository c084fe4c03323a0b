//! Hostile layers: nothing may happen outside the root, with either resolver.

use super::*;

#[test]
fn dotdot_and_absolute_names_land_inside() {
    both(|f| {
        let host = format!("/etc/image-resource-test-{}", std::process::id());
        f.apply(&[
            file("../escape", "1"),
            file("../../x", "2"),
            file("a/../../../y", "3"),
            file(&host, "4"),
            file(format!("{}/planted", f.outside.display()), "5"),
            dir("../../d"),
        ]);
        assert_eq!(f.read("escape"), "1");
        assert_eq!(f.read("x"), "2");
        assert_eq!(f.read("y"), "3");
        assert_eq!(f.read(&host[1..]), "4");
        assert!(!Path::new(&host).exists());
        let inside = format!("{}/planted", f.outside.display());
        assert_eq!(f.read(&inside[1..]), "5");
        assert!(f.meta("d").is_dir());
    });
}

#[test]
fn symlinked_parents_resolve_inside_the_root() {
    both(|f| {
        let stats = f.apply(&[
            symlink("evil", "/"),
            symlink("up", "../../.."),
            symlink("a/deep", "../../../../../.."),
            file("evil/f1", "1"),
            file("up/f2", "2"),
            file("a/deep/f3", "3"),
            file("evil/evil/up/sub/f4", "4"),
        ]);
        assert_eq!(stats.entries, 7);
        f.apply(&[
            file("evil/f5", "5"),
            file("up/evil/f6", "6"),
            dir("evil/d7"),
        ]);
        for (name, content) in [
            ("f1", "1"),
            ("f2", "2"),
            ("f3", "3"),
            ("sub/f4", "4"),
            ("f5", "5"),
            ("f6", "6"),
        ] {
            assert_eq!(f.read(name), content, "{name}");
        }
        assert!(f.meta("d7").is_dir());
        assert!(f.meta("evil").file_type().is_symlink());
    });
}

#[test]
fn symlinked_parents_pointing_outside_are_errors() {
    both(|f| {
        let outside = f.outside.display().to_string();
        let sub = format!("{outside}/sub");
        for (link, entries) in [
            (&outside, vec![file("evil/keep", "overwritten?")]),
            (&outside, vec![file("evil/new", "x")]),
            (&sub, vec![dir("evil/newdir")]),
            (&outside, vec![symlink("evil/l", "/")]),
            (&outside, vec![fifo("evil/p")]),
            (&outside, vec![file("z", "z"), link("evil/hard", "z")]),
        ] {
            f.apply(&[symlink("evil", link)]);
            let e = f.error(&entries);
            assert!(e.contains("opening parent directory evil"), "{e}");
            // The same in one layer.
            let mut one = vec![symlink("evil", link)];
            one.extend(entries);
            let e = f.error(&one);
            assert!(
                e.contains("is not a directory (or is a dangling symlink)"),
                "{e}"
            );
        }
        // Chains: a -> b -> c -> outside.
        f.apply(&[
            symlink("c", &outside),
            symlink("b", "c"),
            symlink("a2", "b"),
        ]);
        let e = f.error(&[file("a2/keep", "x")]);
        assert!(e.contains("entry a2/keep"), "{e}");
        // Loops.
        f.apply(&[symlink("l1", "l2"), symlink("l2", "l1")]);
        let e = f.error(&[file("l1/x", "x")]);
        assert!(e.contains("entry l1/x"), "{e}");
    });
}

#[test]
fn symlink_chains_resolve_inside() {
    both(|f| {
        f.apply(&[
            dir("real"),
            symlink("one", "two/.."),
            symlink("two", "/three"),
            symlink("three", "real/../../../../real"),
            file("one/x", "x"),
        ]);
        assert_eq!(f.read("x"), "x");
        f.apply(&[symlink("four", "three"), file("four/y", "y")]);
        assert_eq!(f.read("real/y"), "y");
    });
}

#[test]
fn whiteouts_and_opaques_through_symlinks_stay_inside() {
    both(|f| {
        let outside = f.outside.display().to_string();
        f.apply(&[
            symlink("evil", &outside),
            symlink("root", "/"),
            symlink("up", "../.."),
            file("keep", "in root"),
            file("victim", "v"),
            file("victim2", "v"),
            file("victim3", "v"),
            file("d/x", "x"),
        ]);
        f.apply(&[
            file("evil/.wh.keep", ""),
            file("evil/.wh.sub", ""),
            file("evil/.wh..wh..opq", ""),
            file("evil/sub/.wh..wh..opq", ""),
            file("root/.wh.victim", ""),
            file("../../.wh.victim2", ""),
            file("/d/../../.wh.victim3", ""),
            file(format!("../{}/.wh.keep", f.outside.display()), ""),
            file("up/d/.wh..wh..opq", ""),
        ]);
        assert_eq!(f.read("keep"), "in root");
        assert!(!f.exists("victim"));
        assert!(!f.exists("victim2"));
        assert!(!f.exists("victim3"));
        assert!(f.meta("d").is_dir());
        assert!(!f.exists("d/x"));
        // An opaque root through a symlink: only the root's lower content goes.
        f.apply(&[file("fresh", "f"), file("up/.wh..wh..opq", "")]);
        assert_eq!(f.names(), ["fresh"]);
    });
}

#[test]
fn hardlink_targets_resolve_inside() {
    both(|f| {
        let outside_keep = format!("{}/keep", f.outside.display());
        let e = f.error(&[link("h1", "../outside/keep")]);
        assert!(
            e.contains("entry h1") && e.contains("does not exist"),
            "{e}"
        );
        let e = f.error(&[link("h2", &outside_keep)]);
        assert!(
            e.contains("entry h2") && e.contains("does not exist"),
            "{e}"
        );
        f.apply(&[symlink("evil", f.outside.display().to_string())]);
        let e = f.error(&[link("h3", "evil/keep")]);
        assert!(
            e.contains("entry h3") && e.contains("does not exist"),
            "{e}"
        );
        // With in-root files there, the same names link to them.
        f.apply(&[
            file("etc/passwd", "root:x:0:0"),
            file("outside/keep", "in-root keep"),
            symlink("root", "/"),
        ]);
        f.apply(&[
            link("p1", "/etc/passwd"),
            link("p2", "../../../etc/passwd"),
            link("p3", "root/etc/passwd"),
            link("p4", "../outside/keep"),
        ]);
        let passwd = f.meta("etc/passwd").ino();
        for name in ["p1", "p2", "p3"] {
            assert_eq!(f.meta(name).ino(), passwd, "{name}");
        }
        assert_eq!(f.read("p4"), "in-root keep");
        assert_ne!(std::fs::metadata("/etc/passwd").unwrap().ino(), passwd);
    });
}

#[test]
fn entries_over_symlinks_to_outside_replace_the_symlink() {
    both(|f| {
        let keep = format!("{}/keep", f.outside.display());
        let sub = format!("{}/sub", f.outside.display());
        f.apply(&[
            symlink("file-abs", &keep),
            symlink("file-rel", "../outside/keep"),
            symlink("dir-abs", &sub),
            symlink("dir-rel", "../outside/sub"),
            symlink("fifo", &keep),
            symlink("sym", &keep),
            symlink("hard", &keep),
            file("target", "t"),
        ]);
        f.apply(&[
            file("file-abs", "replaced")
                .mode(0o4777)
                .owner(1, 1)
                .pax("SCHILY.xattr.user.a", "a"),
            file("file-rel", "replaced").mode(0o777),
            dir("dir-abs")
                .mode(0o777)
                .owner(2, 2)
                .mtime(1)
                .pax("SCHILY.xattr.user.b", "b"),
            dir("dir-rel").mode(0o777),
            file("dir-rel/inner", "new"),
            fifo("fifo").mode(0o777).owner(3, 3),
            symlink("sym", &keep)
                .owner(4, 4)
                .mtime(1)
                .pax("SCHILY.xattr.trusted.c", "c"),
            link("hard", "target"),
        ]);
        assert_eq!(f.read("file-abs"), "replaced");
        assert_eq!(f.read("file-rel"), "replaced");
        assert!(f.meta("dir-abs").is_dir());
        assert_eq!(f.read("dir-rel/inner"), "new");
        assert!(f.meta("fifo").file_type().is_fifo());
        assert_eq!(f.meta("sym").uid(), 4);
        assert_eq!(f.read("hard"), "t");
    });
}

#[test]
fn metadata_entries_on_symlinks_to_outside_do_not_follow() {
    both(|f| {
        let keep = format!("{}/keep", f.outside.display());
        let sub = format!("{}/sub", f.outside.display());
        // Each entry re-lists a symlink to outside with metadata only a follow would
        // carry over; the outside must not change (checked by `both`).
        f.apply(&[symlink("s", &keep), symlink("t", &sub)]);
        f.apply(&[
            symlink("s", &keep)
                .owner(99, 99)
                .mtime(5)
                .pax("SCHILY.xattr.trusted.x", "x"),
            symlink("t", &sub)
                .owner(99, 99)
                .mtime(5)
                .pax("SCHILY.xattr.trusted.x", "x"),
        ]);
        let m = f.meta("s");
        assert_eq!((m.uid(), m.mtime()), (99, 5));
        assert_eq!(xattr(&f.path("t"), "trusted.x").unwrap(), b"x");
        // Directory entries for names whose final component is a symlink replace it.
        f.apply(&[dir("t").mode(0o700).mtime(6)]);
        assert!(f.meta("t").is_dir());
        // A whiteout of the symlink removes the symlink only.
        f.apply(&[file(".wh.s", "")]);
        assert!(!f.exists("s"));
    });
}

#[test]
fn a_directory_replaced_by_a_symlink_in_the_same_layer_is_not_written_through() {
    both(|f| {
        let outside = f.outside.display().to_string();
        f.apply(&[
            dir("real"),
            dir("a"),
            file("a/one", "1"),
            symlink("a", "real"),
            file("a/two", "2"),
            dir("b"),
            file("b/one", "1"),
            symlink("b", &outside),
        ]);
        assert!(f.meta("a").file_type().is_symlink());
        assert_eq!(f.read("real/two"), "2");
        assert!(!f.exists("real/one"));
        let e = f.error(&[
            dir("c"),
            file("c/x", "x"),
            symlink("c", &outside),
            file("c/keep", "x"),
        ]);
        assert!(e.contains("entry c/keep"), "{e}");
    });
}
