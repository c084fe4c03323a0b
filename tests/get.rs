//! `in` against real registries: the files it writes for each `format` / `save` / `rootfs` /
//! `skip_download`, platform selection in an index, layer compressions and Docker
//! manifests, download parallelism, token auth over TLS, and integrity (a corrupt blob or a
//! wrong diff_id fails, and leaves nothing behind that looks complete). Oracles: the image
//! fixtures themselves, skopeo (for the archives and layouts we write) and GNU tar.
//!
//! Helpers here are shared with `get_rootfs.rs` and `get_hostile.rs`.

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

fn layout_json(layout: &Path, digest: &str) -> Value {
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
fn assert_docker_archive(path: &Path, repo_tag: &str, diff_ids: &[String]) {
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

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

/// A small image with everything metadata.json, labels.json and docker_inspect.json show.
fn described_image() -> Image {
    ImageBuilder::new()
        .tag("1.0")
        .env("GREETING=hello world")
        .user("app:app")
        .entrypoint(&["/entry.sh"])
        .cmd(&["--serve", "8080"])
        .label("org.opencontainers.image.title", "fixture")
        .label("maintainer", "ci@example.com")
        .layer(
            LayerBuilder::new()
                .dir("etc", 0o755)
                .file("etc/hello", b"first\n"),
        )
        .layer(
            LayerBuilder::new()
                .dir("etc", 0o755)
                .file("etc/hello", b"second\n")
                .file_mode("entry.sh", b"#!/bin/sh\n", 0o755),
        )
        .build()
}

#[test]
fn rootfs_format_writes_every_file_and_the_response() {
    let image = described_image();
    let (registry, digest) = registry_with(&image, "get/described");
    assert_eq!(digest, image.digest);
    let mut source = source_for(&registry, "get/described");
    source["tag"] = json!("1.0");
    let fetch = get(&source, &digest, json!({}));
    let response = fetch.response().clone();
    assert_dest_holds(&fetch, ROOTFS_OUTPUTS);

    let repository = format!("{}/get/described", registry.host());
    assert_eq!(fetch.text("repository"), repository);
    assert_eq!(fetch.text("tag"), "1.0");
    assert_eq!(fetch.text("digest"), digest);
    assert_eq!(fetch.text("image-id"), image.config_digest);

    assert_eq!(
        fetch.json("metadata.json"),
        json!({
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "GREETING=hello world"],
            "user": "app:app",
            "cmd": ["--serve", "8080"],
            "entrypoint": ["/entry.sh"],
        })
    );
    assert_eq!(
        fetch.json("labels.json"),
        json!({"org.opencontainers.image.title": "fixture", "maintainer": "ci@example.com"})
    );

    let inspect = fetch.json("docker_inspect.json");
    let list = inspect
        .as_array()
        .unwrap_or_else(|| panic!("docker_inspect.json is not an array: {inspect}"));
    assert_eq!(list.len(), 1, "{inspect}");
    let inspect = &list[0];
    assert_eq!(inspect["Id"], json!(image.config_digest), "{inspect}");
    assert_eq!(
        inspect["RepoTags"],
        json!([format!("{repository}:1.0")]),
        "{inspect}"
    );
    assert_eq!(
        inspect["RepoDigests"],
        json!([format!("{repository}@{digest}")]),
        "{inspect}"
    );
    assert_eq!(
        inspect["Created"],
        json!("2023-11-14T22:13:20Z"),
        "{inspect}"
    );
    assert_eq!(inspect["Os"], json!("linux"), "{inspect}");
    assert_eq!(
        inspect["Architecture"], image.config["architecture"],
        "{inspect}"
    );
    assert_eq!(
        inspect["Config"]["Env"], image.config["config"]["Env"],
        "{inspect}"
    );
    assert_eq!(
        inspect["Config"]["Labels"], image.config["config"]["Labels"],
        "{inspect}"
    );
    assert_eq!(
        inspect["Config"]["Entrypoint"],
        json!(["/entry.sh"]),
        "{inspect}"
    );
    assert_eq!(inspect["RootFS"]["Type"], json!("layers"), "{inspect}");
    assert_eq!(
        inspect["RootFS"]["Layers"],
        json!(fixture_diff_ids(&image)),
        "{inspect}"
    );
    assert!(inspect["Size"].is_u64(), "Size is not a number: {inspect}");

    // Later layers win.
    assert_eq!(read(&fetch.rootfs().join("etc/hello")), "second\n");
    assert_eq!(read(&fetch.rootfs().join("entry.sh")), "#!/bin/sh\n");

    assert_eq!(
        response["version"],
        json!({"digest": digest, "tag": "1.0"}),
        "{response}"
    );
    for (name, value) in [
        ("repository", json!(repository)),
        ("tag", json!("1.0")),
        ("image_id", json!(image.config_digest)),
    ] {
        assert_eq!(
            metadata_value(&response, name),
            Some(value),
            "metadata {name} in {response}"
        );
    }
    assert!(
        metadata_value(&response, "size").is_some(),
        "no size in {response}"
    );
    for entry in response["metadata"].as_array().expect("metadata list") {
        assert!(
            entry["name"].is_string() && entry["value"].is_string(),
            "metadata entries are {{name, value}} strings: {entry}"
        );
    }
}

#[test]
fn no_labels_is_an_empty_labels_json_and_default_tag_is_latest() {
    let image = ImageBuilder::new()
        .layer(LayerBuilder::new().file("hello", b"hi"))
        .build();
    let (registry, digest) = registry_with(&image, "get/plain");
    let fetch = get(&source_for(&registry, "get/plain"), &digest, json!({}));
    fetch.response();
    assert_eq!(fetch.json("labels.json"), json!({}));
    assert_eq!(fetch.text("tag"), "latest");
    assert_eq!(read(&fetch.rootfs().join("hello")), "hi");
}

#[test]
fn skip_download_writes_only_repository_tag_and_digest() {
    let image = random_image(1, 256);
    let registry = Registry::start(RegistryConfig::new().log_level("info"));
    push(&registry, &image, "get/skip:v1");
    let digest = skopeo_raw_digest(&registry, "get/skip:v1");
    let mut source = source_for(&registry, "get/skip");
    source["tag"] = json!("v1");
    let log_before = registry.log().len();
    let fetch = get(&source, &digest, json!({"skip_download": true}));
    let response = fetch.response().clone();
    assert_dest_holds(&fetch, &["repository", "tag", "digest"]);
    assert_eq!(
        fetch.text("repository"),
        format!("{}/get/skip", registry.host())
    );
    assert_eq!(fetch.text("tag"), "v1");
    assert_eq!(fetch.text("digest"), digest);
    assert_eq!(response["version"]["digest"], json!(digest), "{response}");
    // Nothing else is fetched: no manifest or blob request reached the registry (whose
    // info log does record requests: the push is in it).
    let log = registry.log();
    assert!(
        log[..log_before].contains("/manifests/v1"),
        "the registry log does not record requests, so this check would prove nothing:\n{log}"
    );
    let fetched: Vec<&str> = log[log_before..]
        .lines()
        .filter(|line| line.contains("/manifests/") || line.contains("/blobs/"))
        .collect();
    assert!(
        fetched.is_empty(),
        "skip_download still fetched:\n{}",
        fetched.join("\n")
    );
}

#[test]
fn save_writes_a_docker_archive_tagged_repository_tag() {
    let image = described_image();
    let (registry, digest) = registry_with(&image, "get/save");
    let mut source = source_for(&registry, "get/save");
    source["tag"] = json!("1.0");
    let fetch = get(&source, &digest, json!({"save": true}));
    fetch.response();
    let mut expected = ROOTFS_OUTPUTS.to_vec();
    expected.push("image");
    assert_dest_holds(&fetch, &expected);
    assert_docker_archive(
        &fetch.dest.join("image"),
        &format!("{}/get/save:1.0", registry.host()),
        &fixture_diff_ids(&image),
    );
}

#[test]
fn format_oci_writes_image_tar_in_docker_save_format() {
    let image = described_image();
    let (registry, digest) = registry_with(&image, "get/ocitar");
    let mut source = source_for(&registry, "get/ocitar");
    source["tag"] = json!("1.0");
    let fetch = get(&source, &digest, json!({"format": "oci"}));
    fetch.response();
    for name in ["repository", "tag", "digest", "image.tar"] {
        assert!(
            fetch.dest.join(name).exists(),
            "no {name}; dest holds {:?}",
            names_in(&fetch.dest)
        );
    }
    assert_docker_archive(
        &fetch.dest.join("image.tar"),
        &format!("{}/get/ocitar:1.0", registry.host()),
        &fixture_diff_ids(&image),
    );
}

#[test]
fn format_oci_layout_of_one_image() {
    let image = described_image();
    let (registry, digest) = registry_with(&image, "get/layout");
    let mut source = source_for(&registry, "get/layout");
    source["tag"] = json!("1.0");
    let fetch = get(&source, &digest, json!({"format": "oci-layout"}));
    fetch.response();
    let layout = fetch.dest.join("oci");
    let index: Value =
        serde_json::from_str(&read(&layout.join("index.json"))).expect("index.json JSON");
    let descriptor = &index["manifests"][0];
    assert_eq!(descriptor["digest"], json!(digest), "{index}");
    assert_eq!(
        descriptor["annotations"]["org.opencontainers.image.ref.name"],
        json!("1.0"),
        "{index}"
    );
    let inspected = skopeo(&["inspect".into(), format!("oci:{}:1.0", layout.display())])
        .unwrap_or_else(|err| panic!("skopeo cannot read our layout: {err}"));
    let inspected: Value = serde_json::from_str(&inspected).expect("skopeo inspect JSON");
    assert_eq!(inspected["Digest"], json!(digest), "{inspected}");
    assert_eq!(layout_diff_ids(&layout), fixture_diff_ids(&image));
    // Every blob is whole.
    layout_blob(&layout, &image.config_digest);
    for layer in &image.layers {
        layout_blob(&layout, &layer.digest);
    }
}

#[test]
fn format_oci_layout_of_an_index_keeps_every_platform() {
    let index = multi_arch_index(&["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    let (registry, digest) = registry_with(&index, "get/multi-layout");
    assert_eq!(digest, index.digest);
    let fetch = get(
        &source_for(&registry, "get/multi-layout"),
        &digest,
        json!({"format": "oci-layout"}),
    );
    fetch.response();
    let layout = fetch.dest.join("oci");
    let top: Value =
        serde_json::from_str(&read(&layout.join("index.json"))).expect("index.json JSON");
    assert_eq!(top["manifests"][0]["digest"], json!(digest), "{top}");
    assert_eq!(
        top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        json!("latest"),
        "{top}"
    );
    assert_eq!(layout_blob(&layout, &digest), index.manifest);
    for platform in &index.manifests {
        let manifest = layout_json(&layout, &platform.digest);
        layout_blob(&layout, &platform.config_digest);
        for layer in manifest["layers"].as_array().expect("layers") {
            layout_blob(&layout, layer["digest"].as_str().expect("layer digest"));
        }
    }
    let copy = TempDir::new().expect("temp dir");
    skopeo(&[
        "copy".into(),
        "--insecure-policy".into(),
        "--all".into(),
        format!("oci:{}:latest", layout.display()),
        format!("oci:{}:x", copy.path().display()),
    ])
    .unwrap_or_else(|err| panic!("skopeo copy --all of our layout: {err}"));
}

#[test]
fn platform_from_host_params_or_source() {
    // "unknown/unknown" is how BuildKit lists attestation manifests in an index.
    let index = multi_arch_index(&[
        "unknown/unknown",
        "linux/amd64",
        "linux/arm64/v8",
        "linux/arm/v7",
        "linux/arm/v6",
    ]);
    let (registry, digest) = registry_with(&index, "get/multi");
    let source = source_for(&registry, "get/multi");
    let config_of = |platform: &str| {
        index
            .manifests
            .iter()
            .find(|m| m.platform == platform)
            .unwrap_or_else(|| panic!("fixture has no {platform}"))
            .config_digest
            .clone()
    };
    let cases = [
        ("host default", source.clone(), json!({}), "linux/amd64"),
        (
            "params.platform without a variant",
            source.clone(),
            json!({"platform": {"architecture": "arm64"}}),
            "linux/arm64/v8",
        ),
        (
            "params.platform with a variant",
            source.clone(),
            json!({"platform": {"architecture": "arm", "variant": "v6"}}),
            "linux/arm/v6",
        ),
        (
            "source.platform",
            {
                let mut s = source.clone();
                s["platform"] = json!({"os": "linux", "architecture": "arm", "variant": "v7"});
                s
            },
            json!({}),
            "linux/arm/v7",
        ),
        (
            "params over source",
            {
                let mut s = source.clone();
                s["platform"] = json!({"os": "linux", "architecture": "arm", "variant": "v7"});
                s
            },
            json!({"platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}),
            "linux/arm64/v8",
        ),
    ];
    for (what, source, params, platform) in cases {
        let fetch = get(&source, &digest, params);
        assert!(
            fetch.out.success(),
            "{what}: in failed:\n{}",
            fetch.out.stderr
        );
        assert_eq!(
            read(&fetch.rootfs().join("platform")),
            platform,
            "{what}: wrong platform unpacked"
        );
        assert_eq!(fetch.text("image-id"), config_of(platform), "{what}");
        assert_eq!(
            fetch.text("digest"),
            digest,
            "{what}: digest is the index's"
        );
        assert_eq!(
            fetch.response()["version"]["digest"],
            json!(digest),
            "{what}"
        );
    }
}

#[test]
fn docker_manifest_list_picks_the_host_platform() {
    let index = multi_arch_index(&["linux/arm64", "linux/amd64"]);
    let registry = Registry::start(RegistryConfig::new());
    push_with_args(&registry, &index, "get/list:latest", &["--format", "v2s2"]);
    let raw = skopeo_inspect_raw(&registry, "get/list:latest");
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.list.v2+json"),
        "skopeo did not push a Docker manifest list: {raw}"
    );
    let digest = sha256_digest(raw.as_bytes());
    let fetch = get(&source_for(&registry, "get/list"), &digest, json!({}));
    fetch.response();
    assert_eq!(read(&fetch.rootfs().join("platform")), "linux/amd64");
    assert_eq!(fetch.text("digest"), digest);
}

#[test]
fn a_digest_the_registry_does_not_have_fails_naming_it() {
    let image = random_image(1, 256);
    let (registry, _) = registry_with(&image, "get/missing");
    let missing = sha256_digest(b"no such manifest");
    let fetch = get(&source_for(&registry, "get/missing"), &missing, json!({}));
    let err = fetch.out.expect_failure();
    assert!(
        err.contains(&missing) && err.contains("get/missing"),
        "the error should name the repository and the missing digest:\n{err}"
    );
    assert_nothing_complete(&fetch.dest, &fetch.out);
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
fn no_matching_platform_lists_the_available_ones() {
    // The host (linux/amd64) is not in this index.
    let index = multi_arch_index(&["linux/arm64", "linux/arm/v7"]);
    let (registry, digest) = registry_with(&index, "get/foreign");
    let source = source_for(&registry, "get/foreign");
    for params in [
        json!({}),
        json!({"platform": {"os": "linux", "architecture": "s390x"}}),
    ] {
        let fetch = get(&source, &digest, params.clone());
        let err = fetch.out.expect_failure();
        assert!(
            err.contains("linux/arm64") && err.contains("linux/arm/v7"),
            "params {params}: the error should list the available platforms:\n{err}"
        );
        assert_nothing_complete(&fetch.dest, &fetch.out);
    }
}

/// Overwrites `bytes.len()` bytes at `offset` of the stored blob `digest`.
fn corrupt_blob(registry: &Registry, digest: &str, offset: usize, bytes: &[u8]) {
    let path = registry.blob_path(digest);
    let mut blob =
        fs::read(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    assert!(offset + bytes.len() <= blob.len(), "blob too small");
    assert_ne!(&blob[offset..offset + bytes.len()], bytes, "not a change");
    blob[offset..offset + bytes.len()].copy_from_slice(bytes);
    fs::write(&path, blob).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

fn assert_names_blob_digest(fetch: &Fetch, digest: &str, what: &str) {
    let err = fetch.out.expect_failure();
    assert!(
        err.contains(digest) && err.contains("digest"),
        "{what}: the error should name the blob {digest} and say its digest is wrong:\n{err}"
    );
    assert_nothing_complete(&fetch.dest, &fetch.out);
}

#[test]
fn corrupted_layer_blob_fails_naming_it() {
    let image = random_image(2, 2048);
    let (registry, digest) = registry_with(&image, "get/corrupt");
    let layer = image.layers[1].digest.clone();
    // The gzip header's MTIME field (bytes 4..8): decompression still works and the
    // content is unchanged, so only checking the blob's digest can notice.
    corrupt_blob(&registry, &layer, 4, &[0x11, 0x22, 0x33, 0x44]);
    let source = source_for(&registry, "get/corrupt");
    for params in [
        json!({}),
        json!({"save": true, "rootfs": true}),
        json!({"format": "oci-layout"}),
        json!({"format": "oci"}),
    ] {
        let fetch = get(&source, &digest, params.clone());
        assert_names_blob_digest(&fetch, &layer, &format!("params {params}"));
    }
}

#[test]
fn garbled_layer_blob_fails_naming_it() {
    let image = random_image(2, 4096);
    let (registry, digest) = registry_with(&image, "get/garbled");
    let layer = image.layers[0].digest.clone();
    let size = image.layers[0].size as usize;
    // Garbage in the middle of the deflate stream.
    corrupt_blob(&registry, &layer, size / 2, &[0xff; 16]);
    let fetch = get(&source_for(&registry, "get/garbled"), &digest, json!({}));
    assert_names_blob_digest(&fetch, &layer, "garbled gzip layer");
}

#[test]
fn truncated_layer_blob_fails_naming_it() {
    let image = random_image(1, 4096);
    let (registry, digest) = registry_with(&image, "get/truncated");
    let layer = image.layers[0].digest.clone();
    let path = registry.blob_path(&layer);
    let blob = fs::read(&path).expect("reading the blob");
    fs::write(&path, &blob[..blob.len() - 100]).expect("truncating the blob");
    let fetch = get(&source_for(&registry, "get/truncated"), &digest, json!({}));
    let err = fetch.out.expect_failure();
    assert!(
        err.contains(&layer),
        "the error should name the blob {layer}:\n{err}"
    );
    assert_nothing_complete(&fetch.dest, &fetch.out);
}

#[test]
fn corrupted_config_blob_fails_naming_it() {
    let image = random_image(1, 512);
    let (registry, digest) = registry_with(&image, "get/badconfig");
    let config = image.config_digest.clone();
    // Still valid JSON, with a different `created`: only the digest check can notice.
    let path = registry.blob_path(&config);
    let text = read(&path);
    let changed = text.replacen("2023-11-14T22:13:20Z", "2023-11-15T22:13:20Z", 1);
    assert_ne!(text, changed);
    fs::write(&path, changed).expect("writing the config blob");
    let fetch = get(&source_for(&registry, "get/badconfig"), &digest, json!({}));
    assert_names_blob_digest(&fetch, &config, "corrupted config");
}

#[test]
fn wrong_diff_id_fails() {
    let image = ImageBuilder::new()
        .layer(LayerBuilder::new().file("a", b"layer zero"))
        .layer(LayerBuilder::new().file("b", b"layer one"))
        .wrong_diff_id(1)
        .build();
    let (registry, digest) = registry_with(&image, "get/diffid");
    let fetch = get(&source_for(&registry, "get/diffid"), &digest, json!({}));
    let err = fetch.out.expect_failure();
    assert!(
        err.contains("diff_id") || err.contains("uncompressed"),
        "the error should say the uncompressed layer does not match the config's diff_id:\n{err}"
    );
    assert!(
        err.contains(&image.layers[1].digest) || err.contains(&image.layers[1].diff_id),
        "the error should name the layer:\n{err}"
    );
    assert_nothing_complete(&fetch.dest, &fetch.out);
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
