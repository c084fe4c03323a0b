//! `in` against real registries, the basics and the shared helpers: a tag carried in the
//! repository, layer compressions and Docker manifests, download parallelism, and token
//! auth over TLS. Oracles: the image fixtures themselves, skopeo (for the archives and
//! layouts we write) and GNU tar.
//!
//! The rest of `in` is in `get_outputs.rs` (the files written for each `format` / `save` /
//! `rootfs` / `skip_download`), `get_platform.rs` (platform selection in an index) and
//! `get_integrity.rs` (a corrupt blob or a wrong diff_id fails, and leaves nothing behind
//! that looks complete). Helpers here are shared with those and with `get_rootfs.rs`,
//! `get_hostile.rs` and `get_redirect.rs`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::util::image::{random_bytes, sha256_digest};
use crate::util::tree::names_in;
use crate::util::*;

/// What `in` writes for the default `format: rootfs`.
pub(crate) const ROOTFS_OUTPUTS: &[&str] = &[
    "repository",
    "tag",
    "digest",
    "rootfs",
    "metadata.json",
    "labels.json",
    "image-id",
    "docker_inspect.json",
];

/// Everything that would make a failed `in` look complete.
pub(crate) const COMPLETE_LOOKING: &[&str] = &[
    "rootfs",
    "rootfs.tar",
    "metadata.json",
    "labels.json",
    "image-id",
    "docker_inspect.json",
    "image",
    "image.tar",
    "oci",
];

/// A `source` with everything needed to reach `registry` (CA, client cert, credentials).
pub(crate) fn source_for(registry: &Registry, repository: &str) -> Value {
    let mut source = json!({ "repository": format!("{}/{repository}", registry.host()) });
    if let Some(ca) = registry.ca_cert_pem() {
        source["ca_certs"] = json!([{ "domain": registry.host(), "cert": ca }]);
    }
    if let Some((cert, key)) = registry.client_cert() {
        source["client_certs"] = json!([{ "domain": registry.host(), "cert": cert, "key": key }]);
    }
    if let Some((user, password)) = registry.credentials() {
        source["username"] = json!(user);
        source["password"] = json!(password);
    }
    source
}

/// Runs `in <dest>` for `digest` with `params`.
pub(crate) fn run_get(dest: &Path, source: &Value, digest: &str, params: Value) -> Output {
    let request = json!({ "source": source, "version": { "digest": digest }, "params": params });
    run("in", &[dest.to_str().expect("UTF-8 temp path")], &request)
}

/// One `in` run into `<tmp>/dest`.
pub(crate) struct Fetch {
    /// Holds `dest`.
    pub tmp: TempDir,
    /// The destination directory given to `in`.
    pub dest: PathBuf,
    /// What `in` did.
    pub out: Output,
}

impl Fetch {
    /// `<dest>/rootfs`.
    pub fn rootfs(&self) -> PathBuf {
        self.dest.join("rootfs")
    }

    /// The text of `<dest>/<name>`.
    pub fn text(&self, name: &str) -> String {
        let path = self.dest.join(name);
        fs::read_to_string(&path).unwrap_or_else(|err| {
            panic!(
                "reading {}: {err}\ndest holds {:?}\nstderr of in:\n{}",
                path.display(),
                names_in(&self.dest),
                self.out.stderr
            )
        })
    }

    /// `<dest>/<name>` parsed as JSON.
    pub fn json(&self, name: &str) -> Value {
        let text = self.text(name);
        serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("{name} is not JSON ({err}):\n{text}"))
    }

    /// The response of a successful run (panics with stderr otherwise).
    pub fn response(&self) -> &Value {
        self.out.expect_success()
    }
}

/// Runs `in` into a fresh `<tmp>/dest` (created first, as Concourse does).
pub(crate) fn get(source: &Value, digest: &str, params: Value) -> Fetch {
    let tmp = tempfile::Builder::new()
        .prefix("in-")
        .tempdir()
        .expect("temp dir");
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).expect("creating dest");
    let out = run_get(&dest, source, digest, params);
    Fetch { tmp, dest, out }
}

/// Starts a plain registry and pushes `image` as `repository:<image.tag>`; returns the
/// registry and the digest the registry serves (skopeo's reading).
pub(crate) fn registry_with(image: &Image, repository: &str) -> (Registry, String) {
    let registry = Registry::start(RegistryConfig::new());
    let reference = format!("{repository}:{}", image.tag);
    push(&registry, image, &reference);
    let digest = skopeo_raw_digest(&registry, &reference);
    (registry, digest)
}

/// Asserts that a failed `in` left nothing in `dest` that looks like a finished result.
pub(crate) fn assert_nothing_complete(dest: &Path, out: &Output) {
    let left: Vec<&str> = COMPLETE_LOOKING
        .iter()
        .copied()
        .filter(|name| fs::symlink_metadata(dest.join(name)).is_ok())
        .collect();
    assert!(
        left.is_empty(),
        "after a failed in, dest still holds {left:?} (all of dest: {:?}); stderr:\n{}",
        names_in(dest),
        out.stderr
    );
}

/// Asserts that `dest` holds exactly `expected` (top-level names).
pub(crate) fn assert_dest_holds(fetch: &Fetch, expected: &[&str]) {
    let expected: std::collections::BTreeSet<String> =
        expected.iter().map(|s| s.to_string()).collect();
    let actual = names_in(&fetch.dest);
    assert_eq!(
        actual,
        expected,
        "dest should hold exactly the expected files; extra: {:?}, missing: {:?}\nstderr:\n{}",
        actual.difference(&expected).collect::<Vec<_>>(),
        expected.difference(&actual).collect::<Vec<_>>(),
        fetch.out.stderr
    );
}

/// The value of metadata entry `name` in an `in` response.
pub(crate) fn metadata_value(response: &Value, name: &str) -> Option<Value> {
    response["metadata"]
        .as_array()?
        .iter()
        .find(|entry| entry["name"] == name)
        .map(|entry| entry["value"].clone())
}

/// Reads a blob `sha256:<hex>` out of an OCI layout, checking it hashes to its name.
pub(crate) fn layout_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let bytes =
        fs::read(&path).unwrap_or_else(|err| panic!("reading blob {}: {err}", path.display()));
    assert_eq!(
        sha256_digest(&bytes),
        digest,
        "{} is corrupt",
        path.display()
    );
    bytes
}

pub(crate) fn layout_json(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&layout_blob(layout, digest))
        .unwrap_or_else(|err| panic!("blob {digest} in {} is not JSON: {err}", layout.display()))
}

/// `rootfs.diff_ids` of the image the layout's `index.json` points at (first manifest).
pub(crate) fn layout_diff_ids(layout: &Path) -> Vec<String> {
    let index: Value = serde_json::from_slice(
        &fs::read(layout.join("index.json")).expect("reading index.json of skopeo's copy"),
    )
    .expect("index.json");
    let manifest = layout_json(
        layout,
        index["manifests"][0]["digest"].as_str().expect("digest"),
    );
    let config = layout_json(
        layout,
        manifest["config"]["digest"].as_str().expect("config"),
    );
    string_list(&config["rootfs"]["diff_ids"])
}

fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a list, got {value}"))
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

/// The config's diff_ids of a fixture image.
pub(crate) fn fixture_diff_ids(image: &Image) -> Vec<String> {
    string_list(&image.config["rootfs"]["diff_ids"])
}

/// Checks a docker-save tarball the way its users will: skopeo inspects it and selects it
/// by `repo_tag`, its `manifest.json` carries that tag, and a copy to an OCI layout has the
/// expected layer diff_ids.
pub(crate) fn assert_docker_archive(path: &Path, repo_tag: &str, diff_ids: &[String]) {
    let archive = format!("docker-archive:{}", path.display());
    let inspected = skopeo(&["inspect".into(), archive.clone()])
        .unwrap_or_else(|err| panic!("skopeo cannot read {}: {err}", path.display()));
    let inspected: Value = serde_json::from_str(&inspected).expect("skopeo inspect JSON");
    assert_eq!(inspected["Os"], "linux", "{inspected}");
    skopeo(&["inspect".into(), format!("{archive}:{repo_tag}")])
        .unwrap_or_else(|err| panic!("{} is not tagged {repo_tag}: {err}", path.display()));

    let mut tar = tar::Archive::new(fs::File::open(path).expect("opening the archive"));
    let mut manifest = None;
    for entry in tar.entries().expect("reading the archive as tar") {
        let mut entry = entry.expect("archive entry");
        if entry.path().expect("entry path").as_os_str() == "manifest.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("manifest.json");
            manifest = Some(serde_json::from_str::<Value>(&text).expect("manifest.json JSON"));
        }
    }
    let manifest = manifest.unwrap_or_else(|| panic!("{} has no manifest.json", path.display()));
    assert_eq!(
        manifest[0]["RepoTags"],
        json!([repo_tag]),
        "manifest.json: {manifest}"
    );

    let copy = TempDir::new().expect("temp dir");
    skopeo(&[
        "copy".into(),
        "--insecure-policy".into(),
        archive,
        format!("oci:{}:x", copy.path().display()),
    ])
    .unwrap_or_else(|err| panic!("skopeo cannot copy {}: {err}", path.display()));
    assert_eq!(
        layout_diff_ids(copy.path()),
        diff_ids,
        "layers of {} differ from the pushed image's",
        path.display()
    );
}

pub(crate) fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

#[test]
fn tag_carried_in_the_repository() {
    let image = ImageBuilder::new()
        .tag("2.5")
        .layer(LayerBuilder::new().file("v", b"2.5"))
        .build();
    let (registry, digest) = registry_with(&image, "get/inline");
    let source = json!({ "repository": format!("{}/get/inline:2.5", registry.host()) });
    let fetch = get(&source, &digest, json!({}));
    fetch.response();
    assert_eq!(
        fetch.text("repository"),
        format!("{}/get/inline", registry.host())
    );
    assert_eq!(fetch.text("tag"), "2.5");
    assert_eq!(read(&fetch.rootfs().join("v")), "2.5");
}

#[test]
fn zstd_gzip_and_uncompressed_layers() {
    let image = ImageBuilder::new()
        .layer_tar(
            LayerBuilder::new()
                .dir("data", 0o755)
                .file("data/gzip", b"from gzip")
                .file("data/over", b"gzip")
                .into_tar(),
            Compression::Gzip,
        )
        .layer_tar(
            LayerBuilder::new()
                .dir("data", 0o755)
                .file("data/zstd", b"from zstd")
                .file("data/over", b"zstd")
                .into_tar(),
            Compression::Zstd,
        )
        .layer_tar(
            LayerBuilder::new()
                .dir("data", 0o755)
                .file("data/plain", b"from plain tar")
                .file("data/over", b"plain")
                .into_tar(),
            Compression::None,
        )
        .build();
    let (registry, digest) = registry_with(&image, "get/compressions");
    let raw = skopeo_inspect_raw(&registry, "get/compressions:latest");
    assert!(
        raw.contains("tar+zstd") && raw.contains("layer.v1.tar\""),
        "fixture lost its media types: {raw}"
    );
    let fetch = get(
        &source_for(&registry, "get/compressions"),
        &digest,
        json!({"format": "oci-layout", "rootfs": true}),
    );
    fetch.response();
    let data = fetch.rootfs().join("data");
    assert_eq!(read(&data.join("gzip")), "from gzip");
    assert_eq!(read(&data.join("zstd")), "from zstd");
    assert_eq!(read(&data.join("plain")), "from plain tar");
    assert_eq!(read(&data.join("over")), "plain");
    assert_eq!(
        layout_diff_ids(&fetch.dest.join("oci")),
        fixture_diff_ids(&image)
    );
}

#[test]
fn docker_v2s2_manifest() {
    let image = ImageBuilder::new()
        .tag("d")
        .layer(LayerBuilder::new().dir("srv", 0o755).file("srv/one", b"1"))
        .layer(LayerBuilder::new().dir("srv", 0o755).file("srv/two", b"2"))
        .build();
    let registry = Registry::start(RegistryConfig::new());
    push_with_args(&registry, &image, "get/docker:d", &["--format", "v2s2"]);
    let raw = skopeo_inspect_raw(&registry, "get/docker:d");
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{raw}"
    );
    let manifest: Value = serde_json::from_str(&raw).expect("manifest JSON");
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let digest = sha256_digest(raw.as_bytes());
    let mut source = source_for(&registry, "get/docker");
    source["tag"] = json!("d");
    let fetch = get(&source, &digest, json!({"save": true}));
    fetch.response();
    assert_eq!(fetch.text("image-id"), config_digest);
    assert_eq!(fetch.text("digest"), digest);
    assert_eq!(read(&fetch.rootfs().join("srv/one")), "1");
    assert_eq!(read(&fetch.rootfs().join("srv/two")), "2");
    assert_docker_archive(
        &fetch.dest.join("image"),
        &format!("{}/get/docker:d", registry.host()),
        &fixture_diff_ids(&image),
    );
}

#[test]
fn one_download_at_a_time_still_gets_six_layers() {
    let mut builder = ImageBuilder::new();
    let mut contents = Vec::new();
    for i in 0..6 {
        let bytes = random_bytes(4096);
        builder = builder.layer(
            LayerBuilder::new()
                .dir("layers", 0o755)
                .file(&format!("layers/{i}"), &bytes)
                .file("layers/last", format!("{i}").as_bytes()),
        );
        contents.push(bytes);
    }
    let image = builder.build();
    let (registry, digest) = registry_with(&image, "get/serial");
    let mut source = source_for(&registry, "get/serial");
    source["max_concurrent_downloads"] = json!(1);
    let fetch = get(&source, &digest, json!({}));
    fetch.response();
    for (i, bytes) in contents.iter().enumerate() {
        let path = fetch.rootfs().join(format!("layers/{i}"));
        assert_eq!(
            &fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display())),
            bytes,
            "layer {i}"
        );
    }
    assert_eq!(read(&fetch.rootfs().join("layers/last")), "5");
    // Progress: a summary of the downloads and one line per applied layer, not a flood.
    let stderr = &fetch.out.stderr;
    assert!(stderr.contains("downloaded 6 blobs"), "{stderr}");
    for i in 1..=6 {
        assert!(
            stderr.contains(&format!("applied layer {i}/6 ")),
            "{stderr}"
        );
    }
    assert!(stderr.lines().count() <= 12, "too chatty:\n{stderr}");
}

#[test]
fn token_auth_over_tls() {
    const USER: &str = "puller";
    const PASSWORD: &str = "in-Pa55word";
    let ca = Ca::new();
    let server = TokenServer::start(TokenConfig::new().user(USER, PASSWORD));
    let registry = Registry::start(RegistryConfig::new().tls(&ca).token(&server));
    let image = ImageBuilder::new()
        .layer(LayerBuilder::new().file("secured", b"over TLS with a token"))
        .build();
    push(&registry, &image, "get/token:latest");
    let digest = skopeo_raw_digest(&registry, "get/token:latest");
    let source = source_for(&registry, "get/token");
    assert!(source["ca_certs"].is_array() && source["password"].is_string());
    let fetch = get(&source, &digest, json!({"save": true}));
    fetch.response();
    assert_eq!(
        read(&fetch.rootfs().join("secured")),
        "over TLS with a token"
    );
    assert!(fetch.dest.join("image").is_file());
    for text in [&fetch.out.stdout, &fetch.out.stderr] {
        assert!(!text.contains(PASSWORD), "the password leaked:\n{text}");
    }
    // The token server was asked, for this repository.
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.scopes.iter().any(|s| s.contains("get/token"))),
        "{requests:?}"
    );
}
