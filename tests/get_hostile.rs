//! Hostile layers: whatever a layer contains (`..`, absolute paths, symlinked parents,
//! hard links out of the tree, whiteouts through symlinks, entries over symlinks), `in`
//! writes nothing outside `rootfs/` (SPEC, "in").
//!
//! Each test pushes an image holding one hostile construct and runs `in` into
//! `<base>/work/dest` while sentinels exist at `<base>/outside/...` and in a directory
//! `/tmp/image-resource-hostile-<random>/victim` named by absolute path. Afterwards every
//! sentinel must be untouched (type, content, mode, owner, mtime, ctime, link count, inode;
//! nothing added or removed in `<base>` or the absolute directory), and `dest` may hold only
//! `in`'s own outputs. `in` may skip a hostile entry or apply it inside the rootfs (chroot
//! semantics); it may also fail, with a message naming the entry, leaving nothing that looks
//! complete. Only where SPEC says more (an entry over a symlink replaces the symlink) is
//! more asserted.
//!
//! `<base>/work/dest/rootfs/../../..` is `<base>`, so even `../../..` escapes stay inside
//! the test's own temp dir, where they are detected.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::json;
use tar::EntryType;
use tempfile::TempDir;

use crate::get::{assert_nothing_complete, registry_with, run_get, source_for, ROOTFS_OUTPUTS};
use crate::util::tree::{self, diff, names_in, snapshot, Compare, Kind, Tree};
use crate::util::*;

/// Old mtime given to every sentinel, so a "touch" shows.
const SENTINEL_MTIME: u64 = 1_234_567_890;

struct Scene {
    /// `<base>`: `outside/` sentinels and `work/dest`.
    base: TempDir,
    /// `/tmp/image-resource-hostile-<random>`: `victim/` sentinels.
    abs: TempDir,
    before_base: Tree,
    before_abs: Tree,
}

fn set_mtime(path: &Path) {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(SENTINEL_MTIME);
    fs::File::open(path)
        .and_then(|f| f.set_modified(time))
        .unwrap_or_else(|err| panic!("setting the mtime of {}: {err}", path.display()));
}

fn write_sentinel(path: &Path, contents: &str, mode: u32) {
    fs::write(path, contents).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod sentinel");
    set_mtime(path);
}

fn make_dir(path: &Path, mode: u32) {
    fs::create_dir(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod sentinel dir");
}

impl Scene {
    fn new() -> Scene {
        let base = tempfile::Builder::new()
            .prefix("hostile-base-")
            .tempdir()
            .expect("temp dir");
        let outside = base.path().join("outside");
        make_dir(&outside, 0o755);
        write_sentinel(&outside.join("secret"), "secret", 0o600);
        make_dir(&outside.join("dir"), 0o700);
        write_sentinel(&outside.join("dir/victim"), "victim in dir", 0o644);
        set_mtime(&outside.join("dir"));
        set_mtime(&outside);
        make_dir(&base.path().join("work"), 0o755);
        make_dir(&base.path().join("work/dest"), 0o755);
        set_mtime(&base.path().join("work"));

        let abs = tempfile::Builder::new()
            .prefix("image-resource-hostile-")
            .tempdir_in("/tmp")
            .expect("temp dir under /tmp");
        let victim = abs.path().join("victim");
        make_dir(&victim, 0o700);
        write_sentinel(&victim.join("file"), "absolute victim", 0o644);
        set_mtime(&victim);
        set_mtime(abs.path());

        let before_base = snapshot(base.path());
        let before_abs = snapshot(abs.path());
        Scene {
            base,
            abs,
            before_base,
            before_abs,
        }
    }

    fn dest(&self) -> PathBuf {
        self.base.path().join("work/dest")
    }

    /// `/tmp/image-resource-hostile-<random>` (under 60 bytes, fits a raw tar name).
    fn abs(&self) -> String {
        self.abs.path().to_str().expect("UTF-8").to_string()
    }

    /// Pushes an image of `layers` and runs `in`; checks everything outside `rootfs/`.
    /// On failure, the error must name `hint` (the hostile entry).
    fn get(&self, layers: Vec<LayerBuilder>, hint: &str) -> Outcome {
        let mut builder = ImageBuilder::new();
        for layer in layers {
            builder = builder.layer(layer);
        }
        let image = builder.build();
        let (registry, digest) = registry_with(&image, "hostile/case");
        let dest = self.dest();
        let out = run_get(
            &dest,
            &source_for(&registry, "hostile/case"),
            &digest,
            json!({}),
        );
        self.assert_outside_untouched(&out);
        if out.success() {
            let rootfs = dest.join("rootfs");
            assert!(
                rootfs.is_dir(),
                "in succeeded but there is no rootfs/ (dest holds {:?})",
                names_in(&dest)
            );
            Outcome::Applied(rootfs)
        } else {
            assert_nothing_complete(&dest, &out);
            assert!(
                out.stderr.contains(hint),
                "in refused the hostile layer, but its error does not name the entry {hint:?}:\n{}",
                out.stderr
            );
            Outcome::Refused
        }
    }

    fn assert_outside_untouched(&self, out: &Output) {
        let mut problems = diff(
            "before",
            &self.before_base,
            "after",
            &snapshot(self.base.path()),
            &Compare::untouched().exclude("work/dest"),
        );
        problems.extend(diff(
            "before",
            &self.before_abs,
            "after",
            &snapshot(self.abs.path()),
            &Compare::untouched(),
        ));
        let allowed: std::collections::BTreeSet<String> =
            ROOTFS_OUTPUTS.iter().map(|s| s.to_string()).collect();
        for name in names_in(&self.dest()) {
            if !allowed.contains(&name) {
                problems.push(format!("dest/{name} is not an output of in"));
            }
        }
        assert!(
            problems.is_empty(),
            "in wrote outside rootfs/ (base {}, absolute dir {}):\n  {}\nstderr of in:\n{}",
            self.base.path().display(),
            self.abs.path().display(),
            problems.join("\n  "),
            out.stderr
        );
    }
}

enum Outcome {
    /// `in` succeeded; the path of its rootfs.
    Applied(PathBuf),
    /// `in` failed cleanly.
    Refused,
}

impl Outcome {
    fn rootfs(&self) -> Option<&Path> {
        match self {
            Outcome::Applied(rootfs) => Some(rootfs),
            Outcome::Refused => None,
        }
    }
}

fn raw_file(b: LayerBuilder, path: &str, contents: &[u8]) -> LayerBuilder {
    b.raw(path.as_bytes(), EntryType::Regular, 0o644, None, contents)
}

fn raw_hardlink(b: LayerBuilder, path: &str, target: &str) -> LayerBuilder {
    b.raw(
        path.as_bytes(),
        EntryType::Link,
        0o644,
        Some(target.as_bytes()),
        b"",
    )
}

/// A file escaping by `..` is skipped or lands at `rootfs/<name>`.
fn assert_escape_contained(outcome: &Outcome, name: &str, contents: &str) {
    if let Some(rootfs) = outcome.rootfs() {
        let landed = rootfs.join(name);
        if landed.exists() {
            assert_eq!(
                fs::read_to_string(&landed).expect("reading"),
                contents,
                "rootfs/{name}"
            );
        }
    }
}

#[test]
fn parent_escape() {
    let scene = Scene::new();
    let outcome = scene.get(
        vec![raw_file(LayerBuilder::new(), "../escape", b"escaped")],
        "escape",
    );
    assert_escape_contained(&outcome, "escape", "escaped");
}

#[test]
fn grandparent_escape() {
    let scene = Scene::new();
    let outcome = scene.get(
        vec![raw_file(LayerBuilder::new(), "../../escape", b"escaped")],
        "escape",
    );
    assert_escape_contained(&outcome, "escape", "escaped");
}

#[test]
fn escape_to_base_and_through_a_middle_dotdot() {
    let scene = Scene::new();
    let layer = raw_file(LayerBuilder::new(), "../../../escape", b"three up");
    let layer = raw_file(layer, "sub/../../../../mid-escape", b"mid");
    let outcome = scene.get(vec![layer], "escape");
    assert_escape_contained(&outcome, "escape", "three up");
    assert_escape_contained(&outcome, "mid-escape", "mid");
}

#[test]
fn absolute_path() {
    let scene = Scene::new();
    let path = format!("{}/victim/new", scene.abs());
    scene.get(
        vec![raw_file(LayerBuilder::new(), &path, b"absolute")],
        "victim/new",
    );
}

#[test]
fn absolute_path_over_an_existing_file() {
    let scene = Scene::new();
    let path = format!("{}/victim/file", scene.abs());
    scene.get(
        vec![raw_file(LayerBuilder::new(), &path, b"overwritten")],
        "victim/file",
    );
}

#[test]
fn symlink_to_outside_then_a_file_through_it_in_the_same_layer() {
    let scene = Scene::new();
    let layer = LayerBuilder::new()
        .symlink("evil", &scene.abs())
        .file("evil/file", b"through the link");
    scene.get(vec![layer], "evil");
}

#[test]
fn symlink_to_outside_then_a_file_through_it_in_a_later_layer() {
    let scene = Scene::new();
    let abs = scene.abs();
    scene.get(
        vec![
            LayerBuilder::new().symlink("evil", &format!("{abs}/victim")),
            LayerBuilder::new().file("evil/file", b"overwritten through the link"),
        ],
        "evil",
    );
}

#[test]
fn relative_symlink_up_then_a_file_through_it() {
    let scene = Scene::new();
    let layer = LayerBuilder::new()
        .symlink("evil", "../../..")
        .file("evil/x", b"x");
    scene.get(vec![layer], "evil");
}

#[test]
fn relative_symlink_up_then_a_file_through_it_in_a_later_layer() {
    let scene = Scene::new();
    scene.get(
        vec![
            LayerBuilder::new().symlink("evil", "../../../outside"),
            LayerBuilder::new().file("evil/secret", b"overwritten"),
        ],
        "evil",
    );
}

#[test]
fn chained_symlinks_to_outside() {
    let scene = Scene::new();
    let abs = scene.abs();
    scene.get(
        vec![
            LayerBuilder::new()
                .symlink("a", "b")
                .symlink("b", &format!("{abs}/victim")),
            LayerBuilder::new().file("a/new", b"through two links"),
        ],
        "a/new",
    );
}

#[test]
fn directory_entry_through_a_symlinked_parent() {
    let scene = Scene::new();
    let abs = scene.abs();
    scene.get(
        vec![
            LayerBuilder::new().symlink("evil", &abs),
            LayerBuilder::new().dir("evil/victim", 0o777),
        ],
        "evil",
    );
}

#[test]
fn hardlink_to_a_relative_path_outside() {
    for target in ["../outside/secret", "../../../outside/secret"] {
        let scene = Scene::new();
        scene.get(
            vec![
                raw_hardlink(LayerBuilder::new(), "link", target),
                // If the link were made, writing the file would write the target.
                LayerBuilder::new().file("link", b"pwned"),
            ],
            "link",
        );
    }
}

#[test]
fn hardlink_to_an_absolute_path_outside() {
    let scene = Scene::new();
    let target = format!("{}/victim/file", scene.abs());
    scene.get(
        vec![
            raw_hardlink(LayerBuilder::new(), "link", &target),
            LayerBuilder::new().file("link", b"pwned"),
        ],
        "link",
    );
}

#[test]
fn hardlink_through_a_symlinked_parent() {
    let scene = Scene::new();
    scene.get(
        vec![
            LayerBuilder::new().symlink("evil", "../../../outside"),
            raw_hardlink(LayerBuilder::new(), "stolen", "evil/secret"),
            LayerBuilder::new().file("stolen", b"pwned"),
        ],
        "stolen",
    );
}

#[test]
fn whiteout_through_a_symlink_to_outside() {
    let scene = Scene::new();
    let abs = scene.abs();
    scene.get(
        vec![
            LayerBuilder::new()
                .symlink("evil", &abs)
                .symlink("evil2", "../../../outside"),
            LayerBuilder::new()
                .file("evil/.wh.victim", b"")
                .file("evil2/.wh.secret", b""),
        ],
        "evil",
    );
}

#[test]
fn opaque_whiteout_through_a_symlink_to_outside() {
    let scene = Scene::new();
    let abs = scene.abs();
    scene.get(
        vec![
            LayerBuilder::new()
                .symlink("evil", &format!("{abs}/victim"))
                .symlink("evil2", "../../../outside"),
            LayerBuilder::new()
                .file("evil/.wh..wh..opq", b"")
                .file("evil2/.wh..wh..opq", b""),
        ],
        "evil",
    );
}

#[test]
fn whiteouts_of_dot_and_dotdot() {
    // `.wh...` whites out `..` (the rootfs' parent), `.wh.` an empty name (the directory
    // itself); one scene each, so a refusal of one does not hide the others.
    for name in [".wh...", ".wh.", "sub/.wh...", "sub/.wh.", "sub/.wh..wh.."] {
        let scene = Scene::new();
        let outcome = scene.get(
            vec![
                LayerBuilder::new()
                    .file("keep", b"k")
                    .dir("sub", 0o755)
                    .file("sub/keep", b"k"),
                raw_file(LayerBuilder::new().dir("sub", 0o755), name, b""),
            ],
            ".wh.",
        );
        if let Some(rootfs) = outcome.rootfs() {
            assert!(rootfs.is_dir(), "{name}: rootfs/ was removed");
        }
    }
}

#[test]
fn escaping_names_of_every_entry_type() {
    for (i, kind) in ["dir", "symlink", "hardlink", "fifo"]
        .into_iter()
        .enumerate()
    {
        let scene = Scene::new();
        let layer = LayerBuilder::new().file("keep", b"k");
        let name = format!("../../../escape-{kind}");
        let layer = match i {
            0 => layer.raw(name.as_bytes(), EntryType::Directory, 0o777, None, b""),
            1 => layer.raw(name.as_bytes(), EntryType::Symlink, 0o777, Some(b"/"), b""),
            2 => raw_hardlink(layer, &name, "keep"),
            _ => layer.raw(name.as_bytes(), EntryType::Fifo, 0o666, None, b""),
        };
        scene.get(vec![layer], "escape");
    }
}

#[test]
fn gnu_long_name_escape() {
    let scene = Scene::new();
    let layer = LayerBuilder::new()
        .raw(
            b"././@LongLink",
            EntryType::GNULongName,
            0o644,
            None,
            b"../../../escape-long\0",
        )
        .raw(b"placeholder", EntryType::Regular, 0o644, None, b"long");
    let outcome = scene.get(vec![layer], "escape-long");
    assert_escape_contained(&outcome, "escape-long", "long");
}

#[test]
fn pax_path_escape() {
    let scene = Scene::new();
    let layer = LayerBuilder::new()
        .pax(&[("path", b"../../../escape-pax")])
        .file("innocent", b"pax");
    let outcome = scene.get(vec![layer], "escape-pax");
    assert_escape_contained(&outcome, "escape-pax", "pax");
}

#[test]
fn pax_linkpath_hardlink_to_outside() {
    for absolute in [false, true] {
        let scene = Scene::new();
        let target = if absolute {
            format!("{}/victim/file", scene.abs())
        } else {
            "../../../outside/secret".to_string()
        };
        scene.get(
            vec![
                LayerBuilder::new()
                    .file("innocent-target", b"t")
                    .pax(&[("linkpath", target.as_bytes())])
                    .hardlink("link", "innocent-target"),
                LayerBuilder::new().file("link", b"pwned"),
            ],
            "link",
        );
    }
}

#[test]
fn symlink_metadata_is_not_applied_to_its_target() {
    // A symlink's owner, mtime and xattrs belong to the link (lchown, lutimes, lsetxattr);
    // following it would change the outside file or directory.
    let scene = Scene::new();
    let abs = scene.abs();
    let attrs = Attrs::mode(0o777)
        .owner(1000, 1000)
        .mtime(1_000_000_000)
        .xattr("user.pwned", b"1");
    let outcome = scene.get(
        vec![LayerBuilder::new()
            .symlink_with("evil", &format!("{abs}/victim/file"), &attrs)
            .symlink_with("evil-dir", &format!("{abs}/victim"), &attrs)
            .symlink_with("evil2", "../../../outside/secret", &attrs)],
        "evil",
    );
    if let Some(rootfs) = outcome.rootfs() {
        assert_eq!(
            fs::read_link(rootfs.join("evil")).expect("rootfs/evil is a symlink"),
            PathBuf::from(format!("{abs}/victim/file"))
        );
    }
}

#[test]
fn hardlink_to_a_symlink_pointing_outside() {
    // The hard link is to the symlink itself (linkat without AT_SYMLINK_FOLLOW), never to
    // what it points at.
    let scene = Scene::new();
    let abs = scene.abs();
    let outcome = scene.get(
        vec![
            LayerBuilder::new()
                .symlink("evil", &format!("{abs}/victim/file"))
                .symlink("evil2", "../../../outside/secret")
                .hardlink("hl", "evil")
                .hardlink("hl2", "evil2"),
            LayerBuilder::new()
                .file("hl", b"pwned")
                .file("hl2", b"pwned"),
        ],
        "hl",
    );
    if let Some(rootfs) = outcome.rootfs() {
        assert_replaced_by_file(&outcome, "hl", "pwned");
        assert_replaced_by_file(&outcome, "hl2", "pwned");
        assert_eq!(
            fs::read_link(rootfs.join("evil")).expect("rootfs/evil is still a symlink"),
            PathBuf::from(format!("{abs}/victim/file"))
        );
    }
}

#[test]
fn whiteouts_remove_symlinks_not_their_targets() {
    let scene = Scene::new();
    let abs = scene.abs();
    let outcome = scene.get(
        vec![
            LayerBuilder::new()
                .symlink("evil", &format!("{abs}/victim"))
                .symlink("evil2", "../../../outside")
                .dir("d", 0o755)
                .symlink("d/link", &format!("{abs}/victim"))
                .dir("e", 0o755)
                .symlink("e/link", "../../../../outside"),
            LayerBuilder::new()
                .whiteout("evil")
                .whiteout("evil2")
                .dir("d", 0o755)
                .opaque_whiteout("d")
                // A file replacing a directory that holds a link to outside.
                .file("e", b"now a file"),
        ],
        "evil",
    );
    if let Some(rootfs) = outcome.rootfs() {
        for gone in ["evil", "evil2", "d/link"] {
            assert!(
                fs::symlink_metadata(rootfs.join(gone)).is_err(),
                "rootfs/{gone} should have been whited out"
            );
        }
        assert_replaced_by_file(&outcome, "e", "now a file");
    }
}

/// A regular file over a symlink to outside replaces the symlink.
fn assert_replaced_by_file(outcome: &Outcome, name: &str, contents: &str) {
    if let Some(rootfs) = outcome.rootfs() {
        let path = rootfs.join(name);
        let entry = tree::read_entry(&path);
        assert_eq!(
            entry.kind,
            Kind::File,
            "rootfs/{name} should have been replaced by a regular file"
        );
        assert_eq!(fs::read_to_string(&path).expect("reading"), contents);
    }
}

#[test]
fn file_over_a_symlink_to_outside_replaces_the_link() {
    let scene = Scene::new();
    let abs = scene.abs();
    let outcome = scene.get(
        vec![
            LayerBuilder::new()
                .symlink("evil", &format!("{abs}/victim/file"))
                .symlink("evil2", "../../../outside/secret"),
            LayerBuilder::new()
                .file("evil", b"replaced")
                .file("evil2", b"replaced too"),
        ],
        "evil",
    );
    assert_replaced_by_file(&outcome, "evil", "replaced");
    assert_replaced_by_file(&outcome, "evil2", "replaced too");
}

#[test]
fn file_over_a_symlink_to_outside_in_the_same_layer() {
    let scene = Scene::new();
    let abs = scene.abs();
    let outcome = scene.get(
        vec![LayerBuilder::new()
            .symlink("evil", &format!("{abs}/victim/file"))
            .file("evil", b"replaced")],
        "evil",
    );
    assert_replaced_by_file(&outcome, "evil", "replaced");
}

#[test]
fn hardlink_over_a_symlink_to_outside_replaces_the_link() {
    let scene = Scene::new();
    let abs = scene.abs();
    let outcome = scene.get(
        vec![
            LayerBuilder::new().symlink("evil", &format!("{abs}/victim/file")),
            LayerBuilder::new()
                .file("real", b"real")
                .hardlink("evil", "real"),
        ],
        "evil",
    );
    if let Some(rootfs) = outcome.rootfs() {
        let evil = tree::read_entry(&rootfs.join("evil"));
        let real = tree::read_entry(&rootfs.join("real"));
        assert_eq!(
            evil.kind,
            Kind::File,
            "rootfs/evil should be a hard link now"
        );
        assert_eq!(
            evil.inode, real.inode,
            "rootfs/evil should be a hard link of real"
        );
    }
}

#[test]
fn directory_over_a_symlink_to_outside_replaces_the_link() {
    let scene = Scene::new();
    let abs = scene.abs();
    let outcome = scene.get(
        vec![
            LayerBuilder::new()
                .symlink("evil", &format!("{abs}/victim"))
                .symlink("evil2", "../../../outside/dir"),
            LayerBuilder::new()
                .dir("evil", 0o777)
                .file("evil/inside", b"inside")
                .dir("evil2", 0o777),
        ],
        "evil",
    );
    if let Some(rootfs) = outcome.rootfs() {
        for name in ["evil", "evil2"] {
            let entry = tree::read_entry(&rootfs.join(name));
            assert_eq!(
                entry.kind,
                Kind::Dir,
                "rootfs/{name} should have been replaced by a directory"
            );
            assert_eq!(entry.mode, 0o777, "mode of rootfs/{name}");
        }
        assert_eq!(
            fs::read_to_string(rootfs.join("evil/inside")).expect("evil/inside"),
            "inside"
        );
    }
}
