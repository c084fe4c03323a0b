//! Pipelines written for D (docker-image-resource) or R (registry-image-resource) keep
//! working: their options are known (R's `label_regex` / `annotation_regex`, D's
//! `startup_timeout` and `docker_buildkit`, the ECR and ACR keys), D's empty version `{}`,
//! the `repository` and `tag` files as D and R write them, a mirror that lacks an image or
//! fails part-way, D's `ca_certs` domain `host:443`, and a non-UTF-8 argument. All against
//! real registries; the mirror's failures come from a forwarding front before a real one.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt as _;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::get::{get, registry_with, source_for};
use crate::put::{put, work_dir};
use crate::util::bin::{bin_path, run_command};
use crate::util::front::{Action, Front};
use crate::util::*;

fn metadata_pairs(response: &Value) -> Vec<(String, String)> {
    response["metadata"]
        .as_array()
        .unwrap_or_else(|| panic!("no metadata in {response}"))
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default().to_string(),
                m["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn label_and_annotation_regex_become_metadata_as_r_prints_them() {
    let image = ImageBuilder::new()
        .label("org.opencontainers.image.source", "https://example.com/app")
        .label("com.example.team", "platform")
        .label("org.opencontainers.image.version", "1.2.3")
        .annotation("org.opencontainers.image.revision", "abc123")
        .annotation("com.example.build", "77")
        .build();
    let (registry, digest) = registry_with(&image, "drop/labels");
    let mut source = source_for(&registry, "drop/labels");
    source["label_regex"] = json!("org\\.opencontainers");
    source["annotation_regex"] = json!("^org\\.");
    let fetch = get(&source, &digest, json!({}));
    let pairs = metadata_pairs(fetch.response());
    let repository = format!("{}/drop/labels", registry.host());
    // R's order: repository, tag, matching labels by key, matching annotations by key.
    let expected: Vec<(String, String)> = [
        ("repository", repository.as_str()),
        ("tag", "latest"),
        ("org.opencontainers.image.source", "https://example.com/app"),
        ("org.opencontainers.image.version", "1.2.3"),
        ("org.opencontainers.image.revision", "abc123"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(pairs[..5], expected[..], "{pairs:?}");
    assert!(!pairs.iter().any(|(k, _)| k == "com.example.build"));

    // R reads them without the download too.
    let fetch = get(&source, &digest, json!({"skip_download": true}));
    assert_eq!(metadata_pairs(fetch.response()), expected);
    assert!(!fetch.dest.join("rootfs").exists());

    // A bad pattern names the option and where it goes wrong, before anything is fetched.
    source["label_regex"] = json!("org(\\.");
    let fetch = get(&source, &digest, json!({}));
    let error = fetch.out.expect_failure();
    assert!(
        error.contains("source.label_regex \"org(\\\\.\" is not a valid regular expression")
            && error.contains("at character 4"),
        "{error}"
    );
}

#[test]
fn d_and_r_options_with_nothing_to_do_are_accepted_with_a_note() {
    let image = random_image(1, 256);
    let (registry, digest) = registry_with(&image, "drop/notes");
    let mut source = source_for(&registry, "drop/notes");
    source["startup_timeout"] = json!(300);
    let fetch = get(&source, &digest, json!({}));
    fetch.response();
    assert!(
        fetch
            .out
            .stderr
            .contains("note: source.startup_timeout (300)"),
        "{}",
        fetch.out.stderr
    );

    let work = work_dir();
    let params = json!({"image": image.path(), "docker_buildkit": 1});
    let out = put(work.path(), &source, params);
    out.expect_success();
    assert!(
        out.stderr.contains("note: params.docker_buildkit (1)")
            && out.stderr.contains("note: source.startup_timeout"),
        "{}",
        out.stderr
    );
}

#[test]
fn azure_keys_without_azure_acr_change_nothing_and_say_so() {
    // `azure_acr: true` itself: tests/credentials_acr.rs; R's `aws_ecr_registry_id`:
    // tests/credentials_ecr.rs (accepted, with a note).
    let registry = Registry::start(RegistryConfig::new());
    let cases = [
        ("azure_client_id", json!("c")),
        ("azure_tenant_id", json!("t")),
        ("azure_environment", json!("AzurePublic")),
    ];
    for (key, value) in cases {
        let mut source = source_for(&registry, "drop/cloud");
        source["tag"] = json!("1");
        source[key] = value;
        let out = run("check", &[], &json!({ "source": source }));
        assert_eq!(out.expect_success(), &json!([]), "{key}");
        assert!(
            out.stderr.contains(&format!(
                "note: source.{key} is set but source.azure_acr is not true"
            )),
            "{key}: {}",
            out.stderr
        );
    }
}

#[test]
fn empty_version_is_no_version_and_files_are_as_written() {
    let image = random_image(1, 512);
    let (registry, digest) = registry_with(&image, "drop/files");
    let mut source = source_for(&registry, "drop/files");
    source["tag"] = json!("latest");

    // check: `{}` (D sends it) is no version.
    let out = run("check", &[], &json!({"source": source, "version": {}}));
    assert_eq!(
        out.expect_success(),
        &json!([{"digest": digest, "tag": "latest"}])
    );

    // in: `{}` fetches the source's tag as it is now.
    let tmp = tempfile::tempdir().expect("temp dir");
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).expect("dest");
    let request = json!({"source": source, "version": {}, "params": {}});
    let out = run("in", &[dest.to_str().expect("utf-8")], &request);
    assert_eq!(out.expect_success()["version"]["digest"], json!(digest));
    assert_eq!(
        std::fs::read_to_string(dest.join("digest")).ok(),
        Some(digest.clone())
    );
    assert!(dest.join("rootfs").is_dir());

    // tag: the version's tag first (R), else the source's (D's versions carry none).
    let version = json!({"digest": digest, "tag": "from-version"});
    let request = json!({"source": source, "version": version, "params": {"skip_download": true}});
    let dest2 = tmp.path().join("dest2");
    std::fs::create_dir(&dest2).expect("dest2");
    let out = run("in", &[dest2.to_str().expect("utf-8")], &request);
    out.expect_success();
    assert_eq!(
        std::fs::read_to_string(dest2.join("tag")).ok().as_deref(),
        Some("from-version")
    );

    // repository: as written in source.repository, not normalised (D and R). A Docker Hub
    // short name reaches the local registry through IMAGE_RESOURCE_DOCKER_HUB_HOST.
    let hub = [("IMAGE_RESOURCE_DOCKER_HUB_HOST", registry.host())];
    let env: Vec<(&str, &str)> = hub.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let short = json!({"repository": "drop/files", "tag": "latest"});
    let request = json!({"source": short, "version": {"digest": digest}, "params": {}});
    let dest3 = tmp.path().join("dest3");
    std::fs::create_dir(&dest3).expect("dest3");
    let out = run_with_env(
        "in",
        &[dest3.to_str().expect("utf-8")],
        &env,
        request.to_string().as_bytes(),
    );
    let response = out.expect_success().clone();
    assert_eq!(
        std::fs::read_to_string(dest3.join("repository"))
            .ok()
            .as_deref(),
        Some("drop/files")
    );
    assert_eq!(
        std::fs::read_to_string(dest3.join("tag")).ok().as_deref(),
        Some("latest")
    );
    assert_eq!(
        metadata_pairs(&response)[0],
        ("repository".into(), "drop/files".into())
    );
}

/// A mirror (a plain registry holding the image, behind a front) and the origin, with
/// Docker Hub pointed at the origin.
struct Mirrored {
    origin: Registry,
    _mirror: Registry,
    front: Front,
    digest: String,
    image: Image,
}

fn mirrored(fail_layers: bool, mirror_has_image: bool) -> Mirrored {
    let image = random_image(2, 64 * 1024);
    let origin = Registry::start(RegistryConfig::new());
    push(&origin, &image, "library/app:1");
    let digest = skopeo_raw_digest(&origin, "library/app:1");
    let mirror = Registry::start(RegistryConfig::new());
    if mirror_has_image {
        push(&mirror, &image, "library/app:1");
    }
    let layers: Vec<String> = image.layers.iter().map(|l| l.digest.clone()).collect();
    let front = Front::start(mirror.host(), move |seen| {
        let layer_get = seen.method == "GET" && layers.iter().any(|d| seen.target.ends_with(d));
        if fail_layers && layer_get {
            Action::Respond("500 Internal Server Error".into())
        } else {
            Action::Forward
        }
    });
    Mirrored {
        origin,
        _mirror: mirror,
        front,
        digest,
        image,
    }
}

impl Mirrored {
    fn get(&self, dest: &std::path::Path) -> Output {
        let source = json!({"repository": "app", "tag": "1",
            "registry_mirror": format!("http://{}", self.front.host())});
        let request = json!({"source": source, "version": {"digest": self.digest}});
        run_with_env(
            "in",
            &[dest.to_str().expect("utf-8")],
            &[(
                "IMAGE_RESOURCE_DOCKER_HUB_HOST",
                self.origin.host().as_str(),
            )],
            request.to_string().as_bytes(),
        )
    }
}

#[test]
fn mirror_failing_during_layer_downloads_starts_over_from_the_origin() {
    let setup = mirrored(true, true);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).expect("dest");
    let out = setup.get(&dest);
    assert_eq!(
        out.expect_success()["version"]["digest"],
        json!(setup.digest)
    );
    assert!(
        out.stderr.contains("starting over from registry"),
        "{}",
        out.stderr
    );
    // The mirror was asked for a layer (and failed), then the origin served everything.
    let seen = setup.front.seen();
    assert!(
        seen.iter().any(|s| s.target.contains("/blobs/")),
        "{seen:?}"
    );
    // The result is whole: the last layer's files are there, and no scratch is left.
    let names = crate::util::tree::names_in(&dest);
    assert!(
        !names.iter().any(|n| n.starts_with(".image-resource")),
        "{names:?}"
    );
    assert!(dest.join("rootfs").is_dir());
    assert_eq!(setup.image.layers.len(), 2);

    // A mirror lacking the image: the origin is asked.
    let setup = mirrored(false, false);
    let dest = tmp.path().join("dest2");
    std::fs::create_dir(&dest).expect("dest2");
    let out = setup.get(&dest);
    assert_eq!(
        out.expect_success()["version"]["digest"],
        json!(setup.digest)
    );
    assert!(out.stderr.contains("mirror"), "{}", out.stderr);
}

/// Relays TCP connections from `listen` to `upstream` (bytes both ways, TLS untouched).
fn relay(listen: &str, upstream: String) {
    let listener = TcpListener::bind(listen).unwrap_or_else(|e| {
        panic!("binding {listen} for the :443 relay (the tests run as root): {e}")
    });
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let pipe = |mut from: TcpStream, mut to: TcpStream| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            };
            if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                pipe(client, s2);
                pipe(server, c2);
            }
        }
    });
}

#[test]
fn ca_certs_domain_with_port_443_matches_a_repository_without_a_port() {
    let ca = Ca::new();
    // A loopback address of this test process's own (other test runs on the machine may
    // hold another one's :443); HTTPS's default port leads to the registry.
    let pid = std::process::id();
    let ip = format!("127.43.{}.{}", (pid >> 8) & 0xff, (pid & 0xff).max(1));
    let names = ["127.0.0.1", ip.as_str()];
    let registry = Registry::start(RegistryConfig::new().tls_for(&ca, &names));
    let image = random_image(1, 256);
    push(&registry, &image, "drop/tls:1");
    let digest = skopeo_raw_digest(&registry, "drop/tls:1");
    relay(&format!("{ip}:443"), registry.host());
    let source = json!({"repository": format!("{ip}/drop/tls"), "tag": "1",
        "ca_certs": [{"domain": format!("{ip}:443"), "cert": ca.cert_pem()}]});
    let out = run("check", &[], &json!({"source": source}));
    assert_eq!(
        out.expect_success(),
        &json!([{"digest": digest, "tag": "1"}])
    );
    // Another port's domain does not match it.
    let source = json!({"repository": format!("{ip}/drop/tls"), "tag": "1",
        "ca_certs": [{"domain": format!("{ip}:5000"), "cert": ca.cert_pem()}]});
    let error = run("check", &[], &json!({"source": source}))
        .expect_failure()
        .to_string();
    assert!(error.contains("certificate"), "{error}");
}

#[test]
fn a_non_utf8_argument_is_an_error_not_a_panic() {
    let mut command = Command::new(bin_path("in"));
    command.arg(OsStr::from_bytes(b"/tmp/not-\xff-utf8"));
    let request = json!({"source": {"repository": "x"}, "version": {}});
    let out = run_command(
        command,
        request.to_string().as_bytes(),
        Duration::from_secs(30),
    );
    let error = out.expect_failure();
    assert!(
        error.contains("argument 1") && error.contains("not valid UTF-8"),
        "{error}"
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn credentials_in_params_replace_the_sources_as_in_r() {
    let registry = Registry::start(RegistryConfig::new().htpasswd("step", "short-lived"));
    let image = random_image(1, 256);
    let work = work_dir();
    let source = json!({"repository": format!("{}/drop/creds", registry.host()),
        "username": "step", "password": "expired"});
    // out with the source's (stale) password fails; with the step's it pushes.
    let params = json!({"image": image.path()});
    put(work.path(), &source, params.clone()).expect_failure();
    let mut with_step = params;
    with_step["password"] = json!("short-lived");
    let out = put(work.path(), &source, with_step);
    let digest = out.expect_success()["version"]["digest"].clone();
    // in likewise.
    let version = json!({"digest": digest});
    let tmp = tempfile::tempdir().expect("temp dir");
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).expect("dest");
    let request = json!({"source": source, "version": version,
        "params": {"password": "short-lived", "skip_download": false}});
    let out = run("in", &[dest.to_str().expect("utf-8")], &request);
    out.expect_success();
    assert!(dest.join("rootfs").is_dir());
    assert!(!out.stderr.contains("short-lived") && !out.stdout.contains("short-lived"));
}
