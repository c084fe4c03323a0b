//! `check` against real registries: every registry kind, the version cursor, multi-arch
//! tags, mirrors, TLS options, and the error messages users see. The oracle for a digest is
//! `skopeo inspect --raw | sha256sum`.

use serde_json::{json, Value};

use crate::get::source_for;
use crate::util::*;

fn check(source: &Value, version: Option<Value>) -> Output {
    let mut request = json!({ "source": source });
    if let Some(version) = version {
        request["version"] = version;
    }
    run("check", &[], &request)
}

/// Runs check and returns the emitted digests.
fn check_digests(source: &Value, version: Option<Value>) -> Vec<String> {
    let out = check(source, version);
    let versions = out.expect_success().as_array().cloned().unwrap_or_else(|| {
        panic!("check did not print an array: {}", out.stdout);
    });
    versions
        .iter()
        .map(|v| v["digest"].as_str().expect("digest").to_string())
        .collect()
}

/// Pushes a fresh random image to `registry` as `reference`; returns the oracle's digest.
fn push_random(registry: &Registry, reference: &str) -> String {
    let image = random_image(1, 1024);
    push(registry, &image, reference);
    skopeo_raw_digest(registry, reference)
}

#[test]
fn plain_http_tag_resolves_to_skopeo_digest() {
    let registry = Registry::start(RegistryConfig::new());
    let digest = push_random(&registry, "check/plain:1.0");
    let mut source = source_for(&registry, "check/plain");
    source["tag"] = json!("1.0");
    let out = check(&source, None);
    assert_eq!(
        out.expect_success(),
        &json!([{ "digest": digest, "tag": "1.0" }])
    );
}

#[test]
fn without_tag_semver_tags_then_latest_and_numeric_tags_keep_their_text() {
    let registry = Registry::start(RegistryConfig::new());
    let latest = push_random(&registry, "check/tags:latest");
    let one_ten = push_random(&registry, "check/tags:1.10");
    let source = source_for(&registry, "check/tags");
    // No tag: R's listing, the semver tags ascending, then latest (a digest of its own).
    // More in check_semver.rs.
    assert_eq!(
        check(&source, None).expect_success(),
        &json!([{ "digest": one_ten, "tag": "1.10" }, { "digest": latest, "tag": "latest" }])
    );
    // A JSON number keeps its text: 1.10, not 1.1.
    let request = format!(
        r#"{{"source": {{"repository": "{}/check/tags", "tag": 1.10}}}}"#,
        registry.host()
    );
    let out = run_raw("check", &[], request.as_bytes());
    assert_eq!(
        out.expect_success(),
        &json!([{ "digest": one_ten, "tag": "1.10" }])
    );
}

#[test]
fn missing_tag_is_no_versions_not_an_error() {
    let registry = Registry::start(RegistryConfig::new());
    push_random(&registry, "check/missing:present");
    let mut source = source_for(&registry, "check/missing");
    source["tag"] = json!("absent");
    assert_eq!(check(&source, None).expect_success(), &json!([]));
    // A repository that does not exist at all is the same.
    let source = source_for(&registry, "check/nothing-here");
    assert_eq!(check(&source, None).expect_success(), &json!([]));
}

#[test]
fn cursor_emits_given_then_current_while_given_exists() {
    let registry = Registry::start(RegistryConfig::new());
    let first = push_random(&registry, "check/cursor:t");
    push_random(&registry, "check/cursor:keep-first"); // unrelated tag
    let mut source = source_for(&registry, "check/cursor");
    source["tag"] = json!("t");
    assert_eq!(check_digests(&source, None), vec![first.clone()]);

    // Same version: just it.
    let same = json!({ "digest": first, "tag": "t" });
    assert_eq!(check_digests(&source, Some(same)), vec![first.clone()]);

    // The tag moves: [given, current].
    let second = push_random(&registry, "check/cursor:t");
    assert_ne!(first, second);
    let given = json!({ "digest": first, "tag": "t" });
    let out = check(&source, Some(given));
    assert_eq!(
        out.expect_success(),
        &json!([{ "digest": first, "tag": "t" }, { "digest": second, "tag": "t" }])
    );
    // D's form of a version (digest only) is accepted.
    let d_form = json!({ "digest": first });
    assert_eq!(
        check_digests(&source, Some(d_form)),
        vec![first.clone(), second.clone()]
    );

    // Once the given version is deleted: [current].
    skopeo(&[
        "delete".into(),
        "--tls-verify=false".into(),
        format!("docker://{}/check/cursor@{first}", registry.host()),
    ])
    .expect("skopeo delete");
    let given = json!({ "digest": first, "tag": "t" });
    assert_eq!(check_digests(&source, Some(given)), vec![second]);
}

#[test]
fn multi_arch_tag_resolves_to_the_index_digest() {
    let registry = Registry::start(RegistryConfig::new());
    let index = multi_arch_index(&["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    push(&registry, &index, "check/multi:1");
    let oracle = skopeo_raw_digest(&registry, "check/multi:1");
    assert_eq!(oracle, index.digest);
    let mut source = source_for(&registry, "check/multi");
    source["tag"] = json!("1");
    assert_eq!(check_digests(&source, None), vec![oracle]);
}

#[test]
fn docker_v2_manifests_resolve_too() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(2, 512);
    push_with_args(&registry, &image, "check/docker:1", &["--format", "v2s2"]);
    let oracle = skopeo_raw_digest(&registry, "check/docker:1");
    let raw = skopeo_inspect_raw(&registry, "check/docker:1");
    assert!(raw.contains("application/vnd.docker.distribution.manifest.v2+json"));
    let mut source = source_for(&registry, "check/docker");
    source["tag"] = json!("1");
    assert_eq!(check_digests(&source, None), vec![oracle]);
}

#[test]
fn repository_with_a_digest_checks_that_digest() {
    let registry = Registry::start(RegistryConfig::new());
    let digest = push_random(&registry, "check/pinned:1");
    let source = json!({ "repository": format!("{}/check/pinned@{digest}", registry.host()) });
    let out = check(&source, None);
    assert_eq!(out.expect_success(), &json!([{ "digest": digest }]));
    // A digest and a tag both: the user must pick one.
    let source = json!({
        "repository": format!("{}/check/pinned@{digest}", registry.host()),
        "tag": "1",
    });
    let err = check(&source, None).expect_failure().to_string();
    assert!(err.contains("tag"), "{err}");
}
