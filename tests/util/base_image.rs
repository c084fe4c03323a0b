//! A runnable base image for build tests, made in code: Debian's static busybox
//! (`/bin/busybox`, package busybox-static) with symlinks for the applets the tests' `RUN`
//! lines use, a `/tmp`, `/root` and a root user. No Docker Hub needed.

use std::fs;

use super::image::{Image, ImageBuilder, LayerBuilder};
use super::registry::Registry;

/// The static busybox the image is made of.
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked in `/bin`.
const APPLETS: &[&str] = &[
    "sh",
    "cat",
    "echo",
    "date",
    "test",
    "[",
    "mkdir",
    "ls",
    "env",
    "true",
    "false",
    "printf",
    "sleep",
    "rm",
    "cp",
    "grep",
    "head",
    "wc",
    "id",
    "touch",
    "sha256sum",
    "cut",
    "od",
    "tr",
];

/// The busybox image as an OCI layout (one gzip layer, `Cmd ["/bin/sh"]`).
pub fn busybox_image() -> Image {
    busybox_builder().build()
}

/// [`busybox_image`] with a second layer holding `/marker` (`text`): bases that differ.
pub fn busybox_with_marker(text: &str) -> Image {
    let marker = LayerBuilder::new().file("marker", text.as_bytes());
    busybox_builder().layer(marker).build()
}

fn busybox_builder() -> ImageBuilder {
    let busybox = fs::read(BUSYBOX)
        .unwrap_or_else(|err| panic!("reading {BUSYBOX}: {err} (apt-get install busybox-static)"));
    let mut layer = LayerBuilder::new()
        .dir("bin", 0o755)
        .file_mode("bin/busybox", &busybox, 0o755);
    for applet in APPLETS {
        layer = layer.symlink(&format!("bin/{applet}"), "busybox");
    }
    let layer = layer
        .dir("etc", 0o755)
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        .file("etc/group", b"root:x:0:\n")
        .dir("root", 0o700)
        .dir("tmp", 0o1777);
    ImageBuilder::new().layer(layer)
}

/// Pushes [`busybox_image`] to `registry` as `base/busybox:1`; returns the full name
/// (`127.0.0.1:PORT/base/busybox:1`) for a Dockerfile's `FROM`.
pub fn push_busybox(registry: &Registry) -> String {
    let image = busybox_image();
    super::image::push(registry, &image, "base/busybox:1");
    format!("{}/base/busybox:1", registry.host())
}
