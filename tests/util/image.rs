//! Image fixtures built in code: [`LayerBuilder`] writes layer tarballs (files, dirs,
//! links, whiteouts, raw hostile entries), [`ImageBuilder`] writes an OCI image layout
//! (<https://github.com/opencontainers/image-spec/blob/main/image-layout.md>) into a
//! TempDir, [`multi_arch_index`] one holding an image index. [`push`] copies a fixture into
//! a [`Registry`](super::Registry) with skopeo, and [`skopeo_raw_digest`] is the independent oracle for
//! what a registry serves.

mod layer;
mod skopeo_cli;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tempfile::TempDir;

use super::bin::run_command;

pub use layer::{Attrs, LayerBuilder};
pub use skopeo_cli::{
    push, push_with_args, skopeo, skopeo_inspect_raw, skopeo_raw_digest, try_skopeo_inspect_raw,
};

/// OCI media types.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, gzip.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI layer, uncompressed.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// How long one skopeo call may take.
const SKOPEO_TIMEOUT: Duration = Duration::from_secs(60);

/// Fixed mtime of fixture entries (2023-11-14T22:13:20Z), so builds are reproducible.
pub const FIXTURE_MTIME: u64 = 1_700_000_000;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
    )
}

/// `len` random bytes.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .expect("random bytes");
    buf
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// gzip (the default).
    Gzip,
    /// zstd (made with the `zstd` command, Debian package `zstd`).
    Zstd,
    /// Plain tar.
    None,
}

impl Compression {
    fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => OCI_LAYER_GZIP,
            Compression::Zstd => OCI_LAYER_ZSTD,
            Compression::None => OCI_LAYER_TAR,
        }
    }

    fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(tar).expect("gzip");
                encoder.finish().expect("gzip")
            }
            Compression::Zstd => zstd_bytes(tar),
        }
    }
}

fn zstd_bytes(tar: &[u8]) -> Vec<u8> {
    let dir = TempDir::new().expect("temp dir");
    let input = dir.path().join("layer.tar");
    fs::write(&input, tar).expect("writing layer.tar");
    let mut command = Command::new("zstd");
    command.args(["-q", "-f", "-k"]).arg(&input);
    let output = run_command(command, b"", SKOPEO_TIMEOUT);
    assert!(
        output.status.success(),
        "zstd failed (apt-get install zstd): {}",
        output.stderr
    );
    fs::read(dir.path().join("layer.tar.zst")).expect("reading layer.tar.zst")
}

/// A layer as written into a layout.
#[derive(Clone, Debug)]
pub struct LayerInfo {
    /// Digest of the blob (compressed).
    pub digest: String,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
    /// Blob size.
    pub size: u64,
    /// Layer media type.
    pub media_type: String,
}

/// One platform's image inside an index fixture.
#[derive(Clone, Debug)]
pub struct PlatformImage {
    /// `os/architecture[/variant]`.
    pub platform: String,
    /// Manifest digest.
    pub digest: String,
    /// Config digest (the `image-id`).
    pub config_digest: String,
}

/// An OCI image layout on disk, holding one tag: an image or an index.
pub struct Image {
    dir: TempDir,
    /// The tag inside the layout (`org.opencontainers.image.ref.name`).
    pub tag: String,
    /// Digest of the manifest (or index) the tag points at.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub manifest: Vec<u8>,
    /// Config digest (images only; empty for an index).
    pub config_digest: String,
    /// The config JSON (images only; `Null` for an index).
    pub config: Value,
    /// Layers (images only).
    pub layers: Vec<LayerInfo>,
    /// The uncompressed layer tars, in order (images only).
    pub layer_tars: Vec<Vec<u8>>,
    /// Per-platform images (indexes only).
    pub manifests: Vec<PlatformImage>,
}

impl Image {
    /// The layout directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `oci:<dir>:<tag>`, skopeo's name for it.
    pub fn oci_ref(&self) -> String {
        format!("oci:{}:{}", self.dir.path().display(), self.tag)
    }

    /// Whether the tag points at an image index.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX
    }
}

/// Builds an image and writes it as an OCI layout. Defaults: the platform the tests run
/// on, `Env` with a `PATH`, `Cmd ["/bin/sh"]`, no labels, tag `latest`.
pub struct ImageBuilder {
    platform: String,
    tag: String,
    env: Vec<String>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
    labels: Map<String, Value>,
    annotations: Map<String, Value>,
    created: String,
    layers: Vec<(Vec<u8>, Compression)>,
    wrong_diff_ids: Vec<usize>,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        ImageBuilder::new()
    }
}

impl ImageBuilder {
    /// The defaults (see the type's doc).
    pub fn new() -> ImageBuilder {
        ImageBuilder {
            platform: host_platform(),
            tag: "latest".to_string(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cmd: Some(vec!["/bin/sh".to_string()]),
            entrypoint: None,
            user: None,
            working_dir: None,
            labels: Map::new(),
            annotations: Map::new(),
            created: "2023-11-14T22:13:20Z".to_string(),
            layers: Vec::new(),
            wrong_diff_ids: Vec::new(),
        }
    }

    /// `os/architecture[/variant]`, e.g. `linux/arm64/v8`.
    pub fn platform(mut self, platform: &str) -> ImageBuilder {
        self.platform = platform.to_string();
        self
    }

    /// The tag inside the layout.
    pub fn tag(mut self, tag: &str) -> ImageBuilder {
        self.tag = tag.to_string();
        self
    }

    /// Adds one `NAME=value` to `Env`.
    pub fn env(mut self, entry: &str) -> ImageBuilder {
        self.env.push(entry.to_string());
        self
    }

    /// Sets `Cmd`.
    pub fn cmd(mut self, cmd: &[&str]) -> ImageBuilder {
        self.cmd = Some(cmd.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Sets `Entrypoint`.
    pub fn entrypoint(mut self, entrypoint: &[&str]) -> ImageBuilder {
        self.entrypoint = Some(entrypoint.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Sets `User`.
    pub fn user(mut self, user: &str) -> ImageBuilder {
        self.user = Some(user.to_string());
        self
    }

    /// Sets `WorkingDir`.
    pub fn working_dir(mut self, dir: &str) -> ImageBuilder {
        self.working_dir = Some(dir.to_string());
        self
    }

    /// Sets the config's `created` (default `2023-11-14T22:13:20Z`).
    pub fn created(mut self, created: &str) -> ImageBuilder {
        self.created = created.to_string();
        self
    }

    /// Adds a manifest annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> ImageBuilder {
        self.annotations
            .insert(key.to_string(), Value::String(value.to_string()));
        self
    }

    /// Adds a config label.
    pub fn label(mut self, key: &str, value: &str) -> ImageBuilder {
        self.labels
            .insert(key.to_string(), Value::String(value.to_string()));
        self
    }

    /// Adds a gzip layer.
    pub fn layer(self, layer: LayerBuilder) -> ImageBuilder {
        self.layer_tar(layer.into_tar(), Compression::Gzip)
    }

    /// Adds a layer from an uncompressed tar, compressed as asked.
    pub fn layer_tar(mut self, tar: Vec<u8>, compression: Compression) -> ImageBuilder {
        self.layers.push((tar, compression));
        self
    }

    /// Makes the config's `rootfs.diff_ids[index]` wrong (the digest of other bytes), so the
    /// layer's uncompressed content no longer matches it. [`LayerInfo::diff_id`] stays the
    /// true one.
    pub fn wrong_diff_id(mut self, index: usize) -> ImageBuilder {
        self.wrong_diff_ids.push(index);
        self
    }

    /// Writes the layout into a new TempDir.
    pub fn build(self) -> Image {
        let dir = tempfile::Builder::new()
            .prefix("image-")
            .tempdir()
            .expect("creating an image temp dir");
        init_layout(dir.path());
        let written = self.write_image(dir.path());
        let descriptor = json!({
            "mediaType": OCI_MANIFEST,
            "digest": written.digest,
            "size": written.manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": self.tag},
        });
        write_index_json(dir.path(), descriptor);
        Image {
            dir,
            tag: self.tag,
            digest: written.digest,
            media_type: OCI_MANIFEST.to_string(),
            manifest: written.manifest,
            config_digest: written.config_digest,
            config: written.config,
            layers: written.layers,
            layer_tars: written.layer_tars,
            manifests: Vec::new(),
        }
    }

    fn write_image(&self, root: &Path) -> WrittenImage {
        let mut layers = Vec::new();
        for (tar, compression) in &self.layers {
            let blob = compression.compress(tar);
            let digest = write_blob(root, &blob);
            layers.push(LayerInfo {
                digest,
                diff_id: sha256_digest(tar),
                size: blob.len() as u64,
                media_type: compression.media_type().to_string(),
            });
        }

        let (os, architecture, variant) = split_platform(&self.platform);
        let mut container = Map::new();
        container.insert("Env".into(), json!(self.env));
        if let Some(cmd) = &self.cmd {
            container.insert("Cmd".into(), json!(cmd));
        }
        if let Some(entrypoint) = &self.entrypoint {
            container.insert("Entrypoint".into(), json!(entrypoint));
        }
        if let Some(user) = &self.user {
            container.insert("User".into(), json!(user));
        }
        if let Some(dir) = &self.working_dir {
            container.insert("WorkingDir".into(), json!(dir));
        }
        if !self.labels.is_empty() {
            container.insert("Labels".into(), Value::Object(self.labels.clone()));
        }
        let created = self.created.as_str();
        let mut config = json!({
            "created": created,
            "architecture": architecture,
            "os": os,
            "config": container,
            "rootfs": {
                "type": "layers",
                "diff_ids": layers
                    .iter()
                    .enumerate()
                    .map(|(i, l)| if self.wrong_diff_ids.contains(&i) {
                        sha256_digest(format!("not the content of layer {i}").as_bytes())
                    } else {
                        l.diff_id.clone()
                    })
                    .collect::<Vec<_>>(),
            },
            "history": layers
                .iter()
                .map(|_| json!({"created": created, "created_by": "image-resource test fixture"}))
                .collect::<Vec<_>>(),
        });
        if let Some(variant) = variant {
            config["variant"] = json!(variant);
        }
        let config_bytes = serde_json::to_vec(&config).expect("config JSON");
        let config_digest = write_blob(root, &config_bytes);

        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_bytes.len()},
            "layers": layers
                .iter()
                .map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size}))
                .collect::<Vec<_>>(),
        });
        if !self.annotations.is_empty() {
            manifest["annotations"] = Value::Object(self.annotations.clone());
        }
        let manifest = serde_json::to_vec(&manifest).expect("manifest JSON");
        let digest = write_blob(root, &manifest);
        WrittenImage {
            digest,
            manifest,
            config_digest,
            config,
            layers,
            layer_tars: self.layers.iter().map(|(tar, _)| tar.clone()).collect(),
        }
    }
}

struct WrittenImage {
    digest: String,
    manifest: Vec<u8>,
    config_digest: String,
    config: Value,
    layers: Vec<LayerInfo>,
    layer_tars: Vec<Vec<u8>>,
}

/// An image of `layers` layers, each one file `random/layer-<i>.bin` of `bytes_per_layer`
/// random bytes (so every call gives new digests).
pub fn random_image(layers: usize, bytes_per_layer: usize) -> Image {
    let mut builder = ImageBuilder::new();
    for i in 0..layers {
        builder = builder.layer(LayerBuilder::new().dir("random", 0o755).file(
            &format!("random/layer-{i}.bin"),
            &random_bytes(bytes_per_layer),
        ));
    }
    builder.build()
}

/// An OCI index with one small image per platform (`"linux/amd64"`, `"linux/arm64/v8"`,
/// ...). Each image has a layer with `/platform` holding its platform string and a random
/// file, and a config with that os/architecture/variant. The layout's tag `latest` points
/// at the index.
pub fn multi_arch_index(platforms: &[&str]) -> Image {
    let dir = tempfile::Builder::new()
        .prefix("index-")
        .tempdir()
        .expect("creating an index temp dir");
    init_layout(dir.path());
    let mut manifests = Vec::new();
    let mut descriptors = Vec::new();
    for platform in platforms {
        let written = ImageBuilder::new()
            .platform(platform)
            .layer(
                LayerBuilder::new()
                    .file("platform", platform.as_bytes())
                    .file("random.bin", &random_bytes(64)),
            )
            .write_image(dir.path());
        let (os, architecture, variant) = split_platform(platform);
        let mut platform_json = json!({"os": os, "architecture": architecture});
        if let Some(variant) = variant {
            platform_json["variant"] = json!(variant);
        }
        descriptors.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": written.digest,
            "size": written.manifest.len(),
            "platform": platform_json,
        }));
        manifests.push(PlatformImage {
            platform: platform.to_string(),
            digest: written.digest,
            config_digest: written.config_digest,
        });
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors});
    let index = serde_json::to_vec(&index).expect("index JSON");
    let digest = write_blob(dir.path(), &index);
    let tag = "latest".to_string();
    write_index_json(
        dir.path(),
        json!({
            "mediaType": OCI_INDEX,
            "digest": digest,
            "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }),
    );
    Image {
        dir,
        tag,
        digest,
        media_type: OCI_INDEX.to_string(),
        manifest: index,
        config_digest: String::new(),
        config: Value::Null,
        layers: Vec::new(),
        layer_tars: Vec::new(),
        manifests,
    }
}

/// `os/architecture[/variant]` of the machine running the tests, in Go's names.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

fn split_platform(platform: &str) -> (&str, &str, Option<&str>) {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or("linux");
    let architecture = parts
        .next()
        .unwrap_or_else(|| panic!("platform {platform:?} is not os/architecture[/variant]"));
    (os, architecture, parts.next())
}

fn init_layout(root: &Path) {
    fs::create_dir_all(root.join("blobs/sha256")).expect("creating blobs/sha256");
    fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("writing oci-layout");
}

fn write_index_json(root: &Path, descriptor: Value) {
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]});
    fs::write(
        root.join("index.json"),
        serde_json::to_vec(&index).expect("index.json"),
    )
    .expect("writing index.json");
}

fn write_blob(root: &Path, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    let path = root
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    fs::write(&path, bytes).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
    digest
}
