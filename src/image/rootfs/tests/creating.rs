//! Creating each kind of entry, with its metadata.

use super::*;

#[test]
fn regular_files_get_content_mode_owner_and_time() {
    let mut f = Fixture::new();
    let stats = f.apply(&[
        dir("bin"),
        file("bin/plain", "hello")
            .mode(0o640)
            .owner(1000, 2000)
            .mtime(T0 + 5),
        file("bin/setuid", "su").mode(0o4755).owner(1000, 1000),
        file("bin/setgid", "sg").mode(0o2711).owner(0, 50),
        file("bin/empty", ""),
        dir("tmp").mode(0o1777),
    ]);
    f.finish();
    assert_eq!(stats.entries, 6);
    assert_eq!(stats.bytes, 9);
    assert!(stats.skipped.is_empty(), "{:?}", stats.skipped);
    let m = f.meta("bin/plain");
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o640, 1000, 2000));
    assert_eq!((m.mtime(), m.atime()), (T0 as i64 + 5, T0 as i64 + 5));
    assert_eq!(f.read("bin/plain"), "hello");
    // The mode is applied after chown, which clears setuid/setgid.
    let m = f.meta("bin/setuid");
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o4755, 1000));
    let m = f.meta("bin/setgid");
    assert_eq!((m.mode() & 0o7777, m.gid()), (0o2711, 50));
    assert_eq!(f.meta("bin/empty").len(), 0);
    assert_eq!(f.meta("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(f.meta("").mode() & 0o7777, 0o755);
}

#[test]
fn directory_times_are_set_last_and_the_last_entry_wins() {
    let mut f = Fixture::new();
    f.apply(&[
        dir("a").mtime(T0 + 1).owner(7, 8).mode(0o750),
        dir("a/b").mtime(T0 + 2),
        file("a/b/f", "x"),
        dir("c").mtime(T0 + 3),
        dir("d").mtime(T0 + 4),
    ]);
    // A later layer adds to `a` without an entry for it, re-lists `c`, and adds an
    // implicit parent `e`.
    f.apply(&[
        file("a/g", "y"),
        dir("c").mtime(T0 + 30).mode(0o700),
        file("c/h", "z"),
        file("e/i", "w"),
    ]);
    f.finish();
    let mtime = |name: &str| f.meta(name).mtime() - T0 as i64;
    assert_eq!(mtime("a"), 1);
    assert_eq!(mtime("a/b"), 2);
    assert_eq!(mtime("c"), 30);
    assert_eq!(mtime("d"), 4);
    assert_eq!(f.meta("a").atime(), T0 as i64 + 1);
    let m = f.meta("a");
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o750, 7, 8));
    assert_eq!(f.meta("c").mode() & 0o7777, 0o700);
    // The implicit parent: 0755, root's, and a recent time.
    let m = f.meta("e");
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o755, 0));
    assert!(m.mtime() > T0 as i64 + 1000);
}

#[test]
fn symlinks_keep_their_target_exactly() {
    let mut f = Fixture::new();
    f.apply(&[
        symlink("abs", "/usr/bin/env").owner(33, 44).mtime(T0 + 9),
        symlink("rel", "../lib/x.so"),
        symlink("dangling", "nowhere/at/all"),
        symlink("dots", "./a/../b/"),
        symlink("weird", b"caf\xc3\xa9\xff"),
    ]);
    f.finish();
    assert_eq!(f.link_target("abs"), Path::new("/usr/bin/env"));
    assert_eq!(f.link_target("rel"), Path::new("../lib/x.so"));
    assert_eq!(f.link_target("dangling"), Path::new("nowhere/at/all"));
    assert_eq!(f.link_target("dots"), Path::new("./a/../b/"));
    use std::os::unix::ffi::OsStrExt as _;
    assert_eq!(
        f.link_target("weird").as_os_str().as_bytes(),
        b"caf\xc3\xa9\xff"
    );
    let m = f.meta("abs");
    assert!(m.file_type().is_symlink());
    assert_eq!((m.uid(), m.gid(), m.mtime()), (33, 44, T0 as i64 + 9));
}

#[test]
fn hardlinks_link_to_this_layer_and_lower_layers() {
    let mut f = Fixture::new();
    f.apply(&[dir("lower"), file("lower/f", "low")]);
    f.apply(&[
        file("a", "same layer"),
        link("b", "a"),
        link("c", "./lower/f"),
        link("d", "/lower/f"),
        link("e", "lower/../a"),
        link("b", "a"), // again: already that inode
    ]);
    f.finish();
    let ino = |name: &str| f.meta(name).ino();
    assert_eq!(ino("a"), ino("b"));
    assert_eq!(ino("a"), ino("e"));
    assert_eq!(ino("lower/f"), ino("c"));
    assert_eq!(ino("lower/f"), ino("d"));
    assert_eq!(f.meta("lower/f").nlink(), 3);
    assert_eq!(f.read("d"), "low");
}

#[test]
fn hardlinks_to_missing_targets_or_directories_are_errors() {
    let mut f = Fixture::new();
    let e = f.error(&[file("a", "x"), link("bad", "missing")]);
    assert!(
        e.contains("entry bad") && e.contains("hardlink target missing does not exist"),
        "{e}"
    );
    let e = f.error(&[dir("d"), link("bad2", "d")]);
    assert!(
        e.contains("entry bad2") && e.contains("is a directory"),
        "{e}"
    );
    let e = f.error(&[link("bad3", "a/x")]);
    assert!(
        e.contains("entry bad3") && e.contains("does not exist"),
        "{e}"
    );
    let e = f.error(&[link("bad4", "./")]);
    assert!(e.contains("entry bad4") && e.contains("root"), "{e}");
}

#[test]
fn fifos_are_created() {
    let mut f = Fixture::new();
    f.apply(&[fifo("run/pipe").mode(0o620).owner(5, 6).mtime(T0 + 2)]);
    f.finish();
    let m = f.meta("run/pipe");
    assert!(m.file_type().is_fifo());
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
        (0o620, 5, 6, T0 as i64 + 2)
    );
}

#[test]
fn devices_and_dev_entries_are_skipped_with_one_warning_each() {
    let mut f = Fixture::new();
    let mut entries = vec![
        dir("dev").mode(0o755),
        entry(EntryType::Char, "dev/null"),
        entry(EntryType::Char, "dev/zero"),
        file("dev/shm/file", "x"),
        dir("dev/pts"),
        entry(EntryType::Char, "lib/udev/devices/null"),
        entry(EntryType::Block, "lib/udev/devices/sda"),
        link("lib/null-again", "lib/udev/devices/null"),
        file("etc/ok", "ok"),
    ];
    entries.extend((0..50).map(|i| entry(EntryType::Char, format!("dev/tty{i}"))));
    let stats = f.apply(&entries);
    f.finish();
    assert_eq!(stats.entries, 59);
    assert_eq!(f.names(), ["dev", "etc", "etc/ok"]);
    assert_eq!(stats.skipped.len(), 3, "{:?}", stats.skipped);
    assert!(
        stats.skipped[0].starts_with("2 device node(s)"),
        "{:?}",
        stats.skipped
    );
    assert!(stats.skipped[0].contains("lib/udev/devices/null"));
    assert!(
        stats.skipped[1].starts_with("54 entries under dev/"),
        "{:?}",
        stats.skipped
    );
    assert!(
        stats.skipped[2].starts_with("1 hardlink(s)"),
        "{:?}",
        stats.skipped
    );
}

#[test]
fn long_names_and_pax_records() {
    let mut f = Fixture::new();
    let long_dir = format!("{}/{}", "d".repeat(120), "e".repeat(90));
    let long_file = format!("{long_dir}/{}", "f".repeat(200));
    // GNU long names (`././@LongLink`), as GNU tar and the tar crate write them.
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_mtime(T0);
    h.set_size(4);
    builder
        .append_data(&mut h, &long_file, &b"long"[..])
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::Symlink);
    h.set_mode(0o777);
    h.set_mtime(T0);
    h.set_size(0);
    builder
        .append_link(&mut h, "gnu-link", format!("/{long_file}"))
        .unwrap();
    let gnu = builder.into_inner().unwrap();
    f.rootfs().apply_layer(gnu.as_slice(), "gnu").unwrap();
    // PAX path, linkpath, fractional mtime and big ids.
    let pax_name = format!("p/{}", "q".repeat(150));
    f.apply(&[
        file(&pax_name, "pax")
            .mtime(0)
            .pax("mtime", "1700000000.123456789"),
        symlink("pax-link", "x").pax("linkpath", "/target/of/pax"),
        link("pax-hard", "y").pax("linkpath", &long_file),
        file("big-ids", "")
            .pax("uid", "5000000")
            .pax("gid", "6000000"),
    ]);
    f.finish();
    assert_eq!(f.read(&long_file), "long");
    assert_eq!(
        f.link_target("gnu-link"),
        Path::new(&format!("/{long_file}"))
    );
    let m = f.meta(&pax_name);
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_700_000_000, 123_456_789));
    assert_eq!(f.link_target("pax-link"), Path::new("/target/of/pax"));
    assert_eq!(f.meta("pax-hard").ino(), f.meta(&long_file).ino());
    let m = f.meta("big-ids");
    assert_eq!((m.uid(), m.gid()), (5_000_000, 6_000_000));
}

#[test]
fn names_in_any_encoding() {
    use std::os::unix::ffi::OsStrExt as _;
    let mut f = Fixture::new();
    let latin1: &[u8] = b"caf\xe9/na\xefve";
    f.apply(&[
        dir("\u{65e5}\u{672c}"),
        file("\u{65e5}\u{672c}/\u{1f600}.txt", "utf8"),
        file(latin1, "latin1"),
        symlink(b"lnk\xff", latin1),
    ]);
    f.finish();
    assert_eq!(f.read("\u{65e5}\u{672c}/\u{1f600}.txt"), "utf8");
    let root = f.root.clone();
    let latin1_path = root.join(std::ffi::OsStr::from_bytes(latin1));
    assert_eq!(std::fs::read(&latin1_path).unwrap(), b"latin1");
    let target = std::fs::read_link(root.join(std::ffi::OsStr::from_bytes(b"lnk\xff"))).unwrap();
    assert_eq!(target.as_os_str().as_bytes(), latin1);
}

#[test]
fn extended_attributes_from_pax_records() {
    let mut f = Fixture::new();
    // security.capability v2 for cap_net_raw (bit 13), permitted.
    let capability: &[u8] = &[
        0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let stats = f.apply(&[
        dir("d").pax("SCHILY.xattr.user.dir", "on a dir"),
        file("d/f", "x")
            .owner(1000, 1000)
            .pax("SCHILY.xattr.user.foo", "bar")
            .pax("SCHILY.xattr.trusted.t", b"\x00\x01binary")
            .pax("SCHILY.xattr.security.capability", capability),
        symlink("s", "d/f").pax("SCHILY.xattr.trusted.link", "on the link"),
        // user.* attributes are not allowed on symlinks: a warning.
        symlink("s2", "d/f").pax("SCHILY.xattr.user.nope", "x"),
        fifo("p").pax("SCHILY.xattr.user.fifo", "x"),
    ]);
    f.finish();
    assert_eq!(xattr(&f.path("d"), "user.dir").unwrap(), b"on a dir");
    assert_eq!(xattr(&f.path("d/f"), "user.foo").unwrap(), b"bar");
    assert_eq!(
        xattr(&f.path("d/f"), "trusted.t").unwrap(),
        b"\x00\x01binary"
    );
    // Set after chown, which would have cleared it.
    assert_eq!(
        xattr(&f.path("d/f"), "security.capability").unwrap(),
        capability
    );
    assert_eq!(xattr(&f.path("s"), "trusted.link").unwrap(), b"on the link");
    assert_eq!(xattr(&f.path("d/f"), "trusted.link"), None);
    assert_eq!(xattr(&f.path("s2"), "user.nope"), None);
    assert_eq!(stats.skipped.len(), 1, "{:?}", stats.skipped);
    assert!(
        stats.skipped[0].starts_with("2 extended attribute(s)"),
        "{:?}",
        stats.skipped
    );
    assert!(
        stats.skipped[0].contains("user.nope on s2"),
        "{:?}",
        stats.skipped
    );
}

#[test]
fn without_root_ownership_is_skipped_and_directories_stay_writable() {
    let mut f = Fixture::with(true, false);
    f.apply(&[
        dir("./").mode(0o555),
        dir("ro").mode(0o555).owner(1000, 1000),
        file("ro/f", "x").owner(1000, 1000).mode(0o600),
    ]);
    assert_eq!(f.meta("ro").mode() & 0o777, 0o755);
    assert_eq!(f.meta("").mode() & 0o777, 0o755);
    f.apply(&[file("ro/g", "y")]);
    f.finish();
    let m = f.meta("ro/f");
    assert_eq!(
        (m.uid(), m.mode() & 0o7777),
        (rustix::process::geteuid().as_raw(), 0o600)
    );
    let m = f.meta("ro");
    assert_eq!(
        (m.uid(), m.mode() & 0o7777, m.mtime()),
        (0, 0o555, T0 as i64)
    );
    assert_eq!(f.meta("").mode() & 0o777, 0o555);
}

#[test]
fn the_root_entry_only_sets_the_mode() {
    let mut f = Fixture::new();
    let stats = f.apply(&[
        dir("./").mode(0o700).owner(1234, 1234).mtime(T0),
        dir("/").mode(0o750).pax("SCHILY.xattr.user.x", "y"),
        file("..", "a file named dot-dot"),
        file("a/../..", "another"),
        symlink(".", "elsewhere"),
    ]);
    f.finish();
    let m = f.meta("");
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o750, 0));
    assert!(m.mtime() > T0 as i64 + 1000);
    assert_eq!(xattr(&f.root, "user.x"), None);
    assert!(f.names().is_empty(), "{:?}", f.names());
    assert_eq!(stats.skipped.len(), 1, "{:?}", stats.skipped);
    assert!(stats.skipped[0].starts_with("3 non-directory entries naming the root"));
}

#[test]
fn old_style_directories_global_headers_and_unknown_types() {
    let mut f = Fixture::new();
    let mut old = entry(EntryType::Regular, "olddir/");
    old.mode = 0o711;
    let mut layer = tar(&[old]);
    // Turn the ustar '0' type flag into the pre-POSIX NUL.
    layer[156] = 0;
    let mut h = tar::Header::from_byte_slice(&layer[..512]).clone();
    h.set_cksum();
    layer[..512].copy_from_slice(h.as_bytes());
    f.rootfs().apply_layer(layer.as_slice(), "old").unwrap();
    let stats = f.apply(&[
        entry(EntryType::XGlobalHeader, "pax_global_header"),
        entry(EntryType::new(b'V'), "volume label"),
        file("after", "x"),
    ]);
    f.finish();
    let m = f.meta("olddir");
    assert!(m.is_dir());
    assert_eq!(m.mode() & 0o7777, 0o711);
    assert_eq!(f.names(), ["after", "olddir"]);
    assert_eq!(stats.skipped.len(), 1, "{:?}", stats.skipped);
    assert!(
        stats.skipped[0].contains("volume label of type 'V'"),
        "{:?}",
        stats.skipped
    );
}
