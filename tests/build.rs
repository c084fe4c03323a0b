//! `out`'s `build` (issue 5): Dockerfiles built with buildah and pushed by our pusher, against
//! real registries. The base image is busybox made in code (`util/base_image.rs`) and pushed
//! to the test's own registry; nothing comes from Docker Hub.
//!
//! Oracles: skopeo + umoci for the pushed image's files, the registry's `/v2/` API and its
//! blob storage for configs, layers and what was ever uploaded. Every `out` here runs with its
//! own `TMPDIR`, which must be empty afterwards: buildah's storage, configuration and secrets
//! live in the put's scratch directory and go with it.

use std::fs;
use std::io::Read as _;
use std::path::Path;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::get::{get, source_for};
use crate::put::{
    assert_nothing_pushed, blob_counts, merged, pushed, work_dir, write_file, Pushed,
};
use crate::put_sources::{docker_archive, pushed_manifest};
use crate::util::base_image::{busybox_image, push_busybox};
use crate::util::oracle::{pulled_rootfs, repository_tags, stored_blobs};
use crate::util::*;

/// A put's own `TMPDIR`, and `out` run with it (plus `env`).
struct Put {
    tmp: TempDir,
}

impl Put {
    fn new() -> Put {
        let tmp = tempfile::Builder::new()
            .prefix("out-tmp-")
            .tempdir()
            .expect("temp dir");
        Put { tmp }
    }

    fn run(&self, dir: &Path, source: &Value, params: Value, env: &[(&str, &str)]) -> Output {
        let tmp = self.tmp.path().to_str().expect("UTF-8 temp path");
        let mut all = vec![("TMPDIR", tmp)];
        all.extend_from_slice(env);
        let request = json!({ "source": source, "params": params });
        let out = run_with_env(
            "out",
            &[dir.to_str().expect("UTF-8 temp path")],
            &all,
            request.to_string().as_bytes(),
        );
        self.assert_nothing_left(&out);
        out
    }

    /// The scratch directory (buildah's storage, auth file, certificates, secrets) is gone.
    fn assert_nothing_left(&self, out: &Output) {
        let left: Vec<String> = fs::read_dir(self.tmp.path())
            .expect("listing TMPDIR")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            left.is_empty(),
            "out left {left:?} in its TMPDIR; stderr:\n{}",
            out.stderr
        );
    }
}

/// Runs `out` once with a fresh `TMPDIR`.
pub(crate) fn put_build(dir: &Path, source: &Value, params: Value, env: &[(&str, &str)]) -> Output {
    Put::new().run(dir, source, params, env)
}

/// A plain registry holding the busybox base; returns it and the base's name.
pub(crate) fn registry_with_base() -> (Registry, String) {
    let registry = Registry::start(RegistryConfig::new());
    let base = push_busybox(&registry);
    (registry, base)
}

/// The text of `path` in the image `reference` on `registry` (skopeo + umoci).
pub(crate) fn file_in(registry: &Registry, reference: &str, paths: &[&str]) -> Vec<Option<String>> {
    let work = TempDir::new().expect("temp dir");
    let rootfs = pulled_rootfs(registry, reference, work.path(), "built");
    paths
        .iter()
        .map(|p| fs::read_to_string(rootfs.join(p)).ok())
        .collect()
}

/// The layer digests of the manifest at `reference`.
pub(crate) fn layers(registry: &Registry, reference: &str) -> Vec<String> {
    pushed_manifest(registry, reference)["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect()
}

/// The image config at `reference` on a registry without auth.
fn config(registry: &Registry, repository: &str, reference: &str) -> Value {
    let manifest = pushed_manifest(registry, &format!("{repository}:{reference}"));
    let digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let response = registry
        .get(&format!("/v2/{repository}/blobs/{digest}"))
        .expect("GET config");
    assert_eq!(response.status, 200);
    serde_json::from_slice(&response.body).expect("config JSON")
}

/// Every blob the registry ever stored, decompressed when it is gzip.
fn stored_contents(registry: &Registry) -> Vec<(String, Vec<u8>)> {
    stored_blobs(registry)
        .into_iter()
        .map(|digest| {
            let raw = fs::read(registry.blob_path(&digest)).expect("reading a blob");
            let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_end(&mut plain)
                    .expect("gunzip a layer");
                plain
            } else {
                raw
            };
            (digest, bytes)
        })
        .collect()
}

/// Copies what `in` with `save: true` wrote for D's `load_base` (`image`, `repository`,
/// `tag`) from `dest` to `to`.
pub(crate) fn keep_saved(dest: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for name in ["image", "repository", "tag"] {
        fs::copy(dest.join(name), to.join(name))
            .unwrap_or_else(|err| panic!("copying {name} from {}: {err}", dest.display()));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

pub(crate) fn built(out: &Output) -> Pushed {
    let pushed = pushed(out);
    assert!(
        out.stdout.trim_start().starts_with('{'),
        "stdout must hold only the JSON response:\n{}",
        out.stdout
    );
    pushed
}

// ---- building --------------------------------------------------------------------------

#[test]
fn build_runs_the_dockerfile_with_args_labels_and_build_metadata() {
    let (registry, base) = registry_with_base();
    let work = work_dir();
    write_file(
        work.path(),
        "src/Dockerfile",
        format!(
            "FROM {base}\nARG NUMBER\nARG EXPANDED\nARG LITERAL\nARG FROM_FILE\n\
             LABEL from.dockerfile=yes\n\
             RUN echo build-log-marker && printf '%s|%s|%s|%s' \"$NUMBER\" \"$EXPANDED\" \"$LITERAL\" \"$FROM_FILE\" > /args\n"
        ),
    );
    write_file(work.path(), "args.json", r#"{"FROM_FILE": 1.50}"#);
    write_file(work.path(), "labels.json", r#"{"org.example.b": true}"#);
    let source = merged(&source_for(&registry, "built/app"), json!({"tag": "v1"}));
    let out = put_build(
        work.path(),
        &source,
        json!({
            "build": "src",
            "build_args": {"NUMBER": 42, "EXPANDED": "id-$BUILD_ID-${BUILD_TEAM_NAME}", "LITERAL": "$HOME/x"},
            "build_args_file": "args.json",
            "labels": {"org.example.a": "1"},
            "labels_file": "labels.json",
        }),
        &[("BUILD_ID", "4242"), ("BUILD_TEAM_NAME", "main")],
    );
    let pushed = built(&out);
    assert_eq!(pushed.tags, ["v1"]);
    for expected in [
        "STEP 1/8: FROM",
        "RUN echo build-log-marker",
        "\nbuild-log-marker\n",
    ] {
        assert!(
            out.stderr.contains(expected),
            "stderr lacks {expected:?}:\n{}",
            out.stderr
        );
    }
    assert_eq!(
        skopeo_raw_digest(&registry, "built/app:v1"),
        pushed.digest,
        "the pushed digest is what the registry serves"
    );
    assert_eq!(
        file_in(&registry, "built/app:v1", &["args"]),
        [Some("42|id-4242-main|$HOME/x|1.50".to_string())]
    );
    let layers = layers(&registry, "built/app:v1");
    assert_eq!(
        layers.len(),
        2,
        "the base's layer and the RUN's: {layers:?}"
    );
    // The base's layer is the registry's own blob (mounted), not buildah's recompression.
    assert_eq!(
        layers[0],
        self::layers(&registry, "base/busybox:1")[0],
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("1 base layer(s) are pushed as"),
        "{}",
        out.stderr
    );
    assert_eq!(blob_counts(&out).mounted, 1, "{}", out.stderr);
    let labels = &config(&registry, "built/app", "v1")["config"]["Labels"];
    assert_eq!(
        labels,
        &json!({"from.dockerfile": "yes", "org.example.a": "1", "org.example.b": "true"})
    );
}

#[test]
fn build_multi_stage_stops_at_target_name_with_a_dockerfile_outside_the_context() {
    let (registry, base) = registry_with_base();
    let work = work_dir();
    write_file(work.path(), "ctx/hello.txt", "hello from the context\n");
    write_file(
        work.path(),
        "ci/Containerfile",
        format!(
            "FROM {base} AS first\nRUN echo first > /stage\n\
             FROM {base} AS second\nCOPY --from=first /stage /from-first\nCOPY hello.txt /hello.txt\n\
             RUN echo second > /stage\n\
             FROM {base} AS third\nRUN echo third > /stage\n"
        ),
    );
    let out = put_build(
        work.path(),
        &source_for(&registry, "built/stages"),
        json!({"build": "ctx", "dockerfile": "ci/Containerfile", "target_name": "second"}),
        &[],
    );
    built(&out);
    assert_eq!(
        file_in(
            &registry,
            "built/stages:latest",
            &["from-first", "hello.txt", "stage"]
        ),
        [
            Some("first\n".to_string()),
            Some("hello from the context\n".to_string()),
            Some("second\n".to_string())
        ]
    );
    assert!(
        !out.stderr.contains("echo third"),
        "stage third ran:\n{}",
        out.stderr
    );
}

#[test]
fn build_secrets_are_readable_in_run_and_absent_from_everything_pushed() {
    let (registry, base) = registry_with_base();
    let work = work_dir();
    let from_env = format!(
        "env-secret-{}",
        hex::encode(crate::util::image::random_bytes(8))
    );
    let from_file = format!(
        "file-secret-{}",
        hex::encode(crate::util::image::random_bytes(8))
    );
    write_file(work.path(), "secrets/token", &from_file);
    write_file(
        work.path(),
        "src/Dockerfile",
        format!(
            "FROM {base}\n\
             RUN --mount=type=secret,id=from_env --mount=type=secret,id=from_file \
             test \"$(sha256sum < /run/secrets/from_env | cut -c1-64)\" = {} && \
             test \"$(sha256sum < /run/secrets/from_file | cut -c1-64)\" = {} && \
             echo secrets-ok > /secrets-ok\n",
            sha256_hex(&from_env),
            sha256_hex(&from_file)
        ),
    );
    let out = put_build(
        work.path(),
        &source_for(&registry, "built/secrets"),
        json!({"build": "src", "secrets": {
            "from_env": {"env": "BUILD_SECRET_VALUE"},
            "from_file": {"source": "secrets/token"},
        }}),
        &[("BUILD_SECRET_VALUE", &from_env)],
    );
    built(&out);
    assert_eq!(
        file_in(&registry, "built/secrets:latest", &["secrets-ok"]),
        [Some("secrets-ok\n".to_string())]
    );
    for secret in [&from_env, &from_file] {
        assert!(!out.stderr.contains(secret.as_str()) && !out.stdout.contains(secret.as_str()));
        for (digest, bytes) in stored_contents(&registry) {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "the secret {secret:?} is in the pushed blob {digest}"
            );
        }
    }
}

#[test]
fn build_pulls_private_bases_with_the_source_credentials_and_tls_options() {
    let ca = Ca::new();
    let private = Registry::start(RegistryConfig::new().tls(&ca).htpasswd("builder", "pw-1"));
    let base = push_busybox(&private);
    let work = work_dir();
    write_file(
        work.path(),
        "src/Dockerfile",
        format!("FROM {base}\nRUN echo private > /private\n"),
    );
    let params = json!({"build": "src"});

    // The repository is on the private registry: its own credentials and CA.
    let out = put_build(
        work.path(),
        &source_for(&private, "built/own"),
        params.clone(),
        &[],
    );
    built(&out);
    assert_eq!(
        file_in(&private, "built/own:latest", &["private"]),
        [Some("private\n".to_string())]
    );
    // On the base's own registry, the base layer is shared with the base.
    let base_layer = layers(&private, "base/busybox:1")[0].clone();
    assert_eq!(layers(&private, "built/own:latest")[0], base_layer);

    // The repository is elsewhere: additional_private_registries and a CA for the base's
    // registry only.
    let (target, _) = registry_with_base();
    let ca_for_base = json!([{"domain": private.host(), "cert": ca.cert_pem()}]);
    let login = json!([{"registry": private.host(), "username": "builder", "password": "pw-1"}]);
    let source = merged(
        &source_for(&target, "built/other"),
        json!({"ca_certs": ca_for_base, "additional_private_registries": login}),
    );
    built(&put_build(work.path(), &source, params.clone(), &[]));
    assert_eq!(
        file_in(&target, "built/other:latest", &["private"]),
        [Some("private\n".to_string())]
    );
    // On another registry, the base layer is uploaded as buildah compressed it.
    assert_ne!(layers(&target, "built/other:latest")[0], base_layer);

    // Without the credentials the base cannot be pulled.
    let source = merged(
        &source_for(&target, "built/denied"),
        json!({"ca_certs": ca_for_base}),
    );
    let out = put_build(work.path(), &source, params, &[]);
    let stderr = out.expect_failure();
    assert!(
        stderr.contains("unauthorized") || stderr.contains("authentication required"),
        "{stderr}"
    );
    assert_nothing_pushed(&target, "built/denied", &out);
}

#[test]
fn build_uses_load_base_and_load_bases_without_any_registry() {
    let base_registry = Registry::start(RegistryConfig::new());
    let base = push_busybox(&base_registry);
    let work = work_dir();
    let base_source = merged(
        &source_for(&base_registry, "base/busybox"),
        json!({"tag": "1"}),
    );
    let digest = skopeo_raw_digest(&base_registry, "base/busybox:1");
    let fetched = get(
        &base_source,
        &digest,
        json!({"save": true, "skip_download": false}),
    );
    fetched.response();
    keep_saved(&fetched.dest, &work.path().join("from-in"));
    // A saved image named as Docker Hub's `busybox`, as D's users write it.
    write_file(work.path(), "hub/repository", "busybox");
    write_file(work.path(), "hub/tag", "latest");
    docker_archive(
        &busybox_image(),
        &work.path().join("hub/image"),
        "busybox:latest",
    );
    drop(base_registry);

    let (target, _) = registry_with_base();
    write_file(
        work.path(),
        "src/Dockerfile",
        format!(
            "FROM busybox AS hub\nRUN echo hub > /hub\n\
             FROM {base}\nCOPY --from=hub /hub /hub\nRUN echo loaded > /loaded\n"
        ),
    );
    // Docker Hub points at a closed port: a pull of `busybox` would fail.
    let out = put_build(
        work.path(),
        &source_for(&target, "built/loaded"),
        json!({"build": "src", "load_base": "from-in", "load_bases": ["hub"], "pull": "if-not-exists"}),
        &[("IMAGE_RESOURCE_DOCKER_HUB_HOST", "127.0.0.1:1")],
    );
    built(&out);
    assert!(!out.stderr.contains("Trying to pull"), "{}", out.stderr);
    assert_eq!(
        file_in(&target, "built/loaded:latest", &["hub", "loaded"]),
        [Some("hub\n".to_string()), Some("loaded\n".to_string())]
    );
}

// ---- cache -----------------------------------------------------------------------------

#[test]
fn build_cache_reuses_every_layer_and_without_it_runs_again() {
    let (registry, base) = registry_with_base();
    let work = work_dir();
    write_file(work.path(), "src/input.txt", "input\n");
    write_file(
        work.path(),
        "src/Dockerfile",
        format!(
            "FROM {base}\nCOPY input.txt /input.txt\n\
             RUN cat /proc/sys/kernel/random/uuid > /stamp1\n\
             RUN date > /stamp2 && cat /proc/sys/kernel/random/uuid >> /stamp2\n"
        ),
    );
    let source = source_for(&registry, "built/cached");
    let cached = json!({"build": "src", "cache": true});

    let first = put_build(work.path(), &source, cached.clone(), &[]);
    let first_digest = built(&first).digest;
    assert!(
        first.stderr.contains("building without it"),
        "the first build has no cache image and says so:\n{}",
        first.stderr
    );
    let first_layers = layers(&registry, "built/cached:latest");
    assert_eq!(first_layers.len(), 4, "{first_layers:?}");

    let second = put_build(work.path(), &source, cached, &[]);
    assert_eq!(
        layers(&registry, "built/cached:latest"),
        first_layers,
        "a rebuild with cache pushes the same layers; stderr:\n{}",
        second.stderr
    );
    assert_eq!(built(&second).digest, first_digest, "and the same image");
    assert!(second.stderr.contains("Using cache"), "{}", second.stderr);

    let third = put_build(work.path(), &source, json!({"build": "src"}), &[]);
    built(&third);
    let third_layers = layers(&registry, "built/cached:latest");
    assert_eq!(third_layers[..2], first_layers[..2], "base and COPY layers");
    assert_ne!(
        third_layers[2], first_layers[2],
        "without cache the RUNs run again"
    );
    assert_ne!(third_layers[3], first_layers[3]);

    // buildah keeps its layer cache in the repository, tagged by its cache keys.
    let tags = repository_tags(&registry, "built/cached").unwrap_or_default();
    assert!(
        tags.iter()
            .any(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())),
        "{tags:?}"
    );
}

#[test]
fn build_cache_from_a_saved_image_reuses_its_layer() {
    let (registry, base) = registry_with_base();
    let work = work_dir();
    write_file(
        work.path(),
        "src/Dockerfile",
        format!("FROM {base}\nRUN cat /proc/sys/kernel/random/uuid > /stamp\n"),
    );
    let source = source_for(&registry, "built/from");
    let first = built(&put_build(
        work.path(),
        &source,
        json!({"build": "src"}),
        &[],
    ));
    let first_layers = layers(&registry, "built/from:latest");
    let fetched = get(&source, &first.digest, json!({"save": true}));
    fetched.response();
    keep_saved(&fetched.dest, &work.path().join("previous"));

    let out = put_build(
        work.path(),
        &source,
        json!({"build": "src", "cache_from": ["previous"]}),
        &[],
    );
    built(&out);
    assert_eq!(
        layers(&registry, "built/from:latest"),
        first_layers,
        "stderr:\n{}",
        out.stderr
    );
}

// ---- failures --------------------------------------------------------------------------

#[test]
fn build_failing_run_fails_the_put_and_names_the_dockerfile() {
    let (registry, base) = registry_with_base();
    let work = work_dir();
    write_file(
        work.path(),
        "src/Dockerfile",
        format!("FROM {base}\nRUN echo about-to-fail && false\n"),
    );
    let out = put_build(
        work.path(),
        &source_for(&registry, "built/failing"),
        json!({"build": "src"}),
        &[],
    );
    let stderr = out.expect_failure();
    let dockerfile = work.path().join("src/Dockerfile");
    for expected in [
        "RUN echo about-to-fail && false".to_string(),
        "\nabout-to-fail\n".to_string(),
        format!("building {}", dockerfile.display()),
    ] {
        assert!(
            stderr.contains(&expected),
            "stderr lacks {expected:?}:\n{stderr}"
        );
    }
    assert_nothing_pushed(&registry, "built/failing", &out);
}

#[test]
fn build_without_buildah_says_what_to_install() {
    let (registry, base) = registry_with_base();
    let work = work_dir();
    write_file(work.path(), "src/Dockerfile", format!("FROM {base}\n"));
    let empty = TempDir::new().expect("temp dir");
    let path = empty.path().to_str().expect("UTF-8");
    let out = put_build(
        work.path(),
        &source_for(&registry, "built/nobuildah"),
        json!({"build": "src"}),
        &[("PATH", path), ("IMAGE_RESOURCE_BUILDAH", "")],
    );
    let stderr = out.expect_failure();
    assert!(stderr.contains("buildah is not installed"), "{stderr}");
    assert!(stderr.contains("apt-get install buildah"), "{stderr}");
    assert_nothing_pushed(&registry, "built/nobuildah", &out);

    // IMAGE_RESOURCE_BUILDAH names one that does not exist.
    let out = put_build(
        work.path(),
        &source_for(&registry, "built/nobuildah"),
        json!({"build": "src"}),
        &[("IMAGE_RESOURCE_BUILDAH", "/nonexistent/buildah")],
    );
    let stderr = out.expect_failure();
    assert!(
        stderr.contains("/nonexistent/buildah (from IMAGE_RESOURCE_BUILDAH) was not found"),
        "{stderr}"
    );
    assert_nothing_pushed(&registry, "built/nobuildah", &out);
}

#[test]
fn build_bad_inputs_are_named_before_anything_runs() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    write_file(work.path(), "src/Dockerfile", "FROM scratch\n");
    write_file(work.path(), "args.json", "[1, 2]");
    let source = source_for(&registry, "built/bad");
    for (params, expected) in [
        (
            json!({"build": "src", "build_args_file": "args.json"}),
            format!(
                "params.build_args_file {}: expected a JSON object",
                work.path().join("args.json").display()
            ),
        ),
        (
            json!({"build": "src", "secrets": {"token": {"env": "NO_SUCH_SECRET_VARIABLE"}}}),
            "params.secrets.token: the environment variable NO_SUCH_SECRET_VARIABLE is not set"
                .to_string(),
        ),
        (
            json!({"build": "src", "dockerfile": "src/Missing"}),
            "params.dockerfile: ".to_string(),
        ),
    ] {
        let out = put_build(work.path(), &source, params, &[]);
        let stderr = out.expect_failure();
        assert!(
            stderr.contains(&expected),
            "stderr lacks {expected:?}:\n{stderr}"
        );
        assert_nothing_pushed(&registry, "built/bad", &out);
    }
}
