//! `params.sign` and `source.verify` against a real registry: `out` signs what it pushes
//! (cosign's payload, annotation, `.sig` tag) with a cosign-format encrypted key made by
//! trixie's skopeo; `check` and `in` accept it; openssl verifies the ECDSA signature over
//! the payload bytes; trixie's skopeo (containers/image) verifies it under a
//! `sigstoreSigned` policy. Then the rejections: an unsigned tag, a wrong key, a tampered
//! payload and a signature moved to another image, each refused by `check` (the version left
//! out, with a note) and by `in` (an error naming the digest).

use serde_json::{json, Value};

use crate::get::{get, source_for};
use crate::put::{pushed, put, work_dir};
use crate::util::sigstore::*;
use crate::util::*;

const PASSWORD: &str = "correct horse battery staple";

/// `check` of `source`: the digests emitted and stderr.
pub(crate) fn check_digests(source: &Value) -> (Vec<String>, String) {
    let out = run("check", &[], &json!({ "source": source }));
    let versions = out
        .expect_success()
        .as_array()
        .expect("check answers an array")
        .clone();
    let digests = versions
        .iter()
        .map(|v| v["digest"].as_str().expect("digest").to_string())
        .collect();
    (digests, out.stderr)
}

/// `source` for `repository:tag` on `registry`, verifying with `keys`.
pub(crate) fn verifying(
    registry: &Registry,
    repository: &str,
    tag: &str,
    keys: &[&KeyPair],
) -> Value {
    let mut source = source_for(registry, repository);
    source["tag"] = json!(tag);
    let pems: Vec<&str> = keys.iter().map(|k| k.public_pem.as_str()).collect();
    source["verify"] = json!({ "public_keys": pems });
    source
}

/// `out` copying `from:tag` (same registry) to `repository:tag`, signed with `key` (given
/// as a path relative to the work dir, or as PEM text with `inline`).
pub(crate) fn put_signed(
    registry: &Registry,
    from: &str,
    repository: &str,
    tag: &str,
    key: &KeyPair,
    work: &std::path::Path,
    inline: bool,
) -> crate::util::Output {
    let key_value = if inline {
        std::fs::read_to_string(&key.private).expect("reading the key")
    } else {
        std::fs::copy(&key.private, work.join("signing.key")).expect("copying the key");
        "signing.key".to_string()
    };
    let mut source = source_for(registry, repository);
    source["tag"] = json!(tag);
    put(
        work,
        &source,
        json!({
            "pull_repository": format!("{}/{from}", registry.host()),
            "pull_tag": tag,
            "sign": {"key": key_value, "password": key.password},
        }),
    )
}

#[test]
fn out_signs_and_check_in_openssl_and_skopeo_verify() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(1, 4096);
    let digest = push(&registry, &image, "base:v1");
    let work = work_dir();
    let key = skopeo_key(work.path(), "cosign", PASSWORD);

    let out = put_signed(&registry, "base", "app", "v1", &key, work.path(), false);
    assert_eq!(pushed(&out).digest, digest);
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(PASSWORD), "the password leaked:\n{text}");
    }
    assert!(out.stderr.contains("signed "), "{}", out.stderr);

    // The signature image as cosign writes it.
    let manifest = signature_manifest(&registry, "app", &digest);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "{manifest}");
    let layer = &layers[0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let signature = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .expect("the signature annotation");
    let payload = blob(&registry, "app", layer["digest"].as_str().expect("digest"));
    let name = format!("{}/app", registry.host());
    assert_eq!(
        String::from_utf8_lossy(&payload),
        cosign_payload(&name, &digest)
    );

    // openssl: ECDSA P-256 over SHA-256 of the payload, DER, by the key skopeo made.
    assert!(openssl_verifies(
        work.path(),
        &key.public,
        &payload,
        signature
    ));
    assert!(!openssl_verifies(
        work.path(),
        &key.public,
        b"another payload",
        signature
    ));

    // check and in accept it.
    let source = verifying(&registry, "app", "v1", &[&key]);
    let (digests, stderr) = check_digests(&source);
    assert_eq!(digests, vec![digest.clone()], "{stderr}");
    let fetch = get(&source, &digest, json!({}));
    fetch.response();
    assert!(
        fetch.out.stderr.contains("signature verified"),
        "{}",
        fetch.out.stderr
    );
    assert_eq!(fetch.text("digest"), digest);

    // containers/image verifies it, by tag and by digest, with matchRepository: cosign's
    // payload names the repository without a tag, which its default rule
    // (matchRepoDigestOrExact) refuses for any cosign signature.
    let repository_rule = json!({"type": "matchRepository"});
    for reference in ["app:v1".to_string(), format!("app@{digest}")] {
        skopeo_verifies(
            &registry,
            &reference,
            &key.public,
            repository_rule.clone(),
            work.path(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    // The oracle does refuse: another key, and an unsigned image.
    let other = openssl_key(work.path(), "other");
    let refused = skopeo_verifies(
        &registry,
        &format!("app@{digest}"),
        &other.public,
        repository_rule.clone(),
        work.path(),
    );
    assert!(
        refused.is_err(),
        "skopeo accepted a signature by another key"
    );
    let refused = skopeo_verifies(
        &registry,
        &format!("base@{digest}"),
        &key.public,
        repository_rule,
        work.path(),
    );
    assert!(refused.is_err(), "skopeo accepted an unsigned image");
}

#[test]
fn a_plain_pkcs8_key_given_inline_signs_too_and_signing_again_adds_nothing() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(1, 1024);
    let digest = push(&registry, &image, "app:v1");
    let work = work_dir();
    let key = openssl_key(work.path(), "plain");
    // Pushing the image onto itself, signing it: twice.
    for _ in 0..2 {
        let out = put_signed(&registry, "app", "app", "v1", &key, work.path(), true);
        assert_eq!(pushed(&out).digest, digest);
    }
    let manifest = signature_manifest(&registry, "app", &digest);
    assert_eq!(
        manifest["layers"].as_array().map(Vec::len),
        Some(1),
        "{manifest}"
    );
    let (digests, stderr) = check_digests(&verifying(&registry, "app", "v1", &[&key]));
    assert_eq!(digests, vec![digest], "{stderr}");
}

#[test]
fn a_wrong_password_pushes_nothing_and_does_not_show() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(1, 1024);
    push(&registry, &image, "base:v1");
    let work = work_dir();
    let mut key = skopeo_key(work.path(), "cosign", PASSWORD);
    key.password = "not-the-password-xyzzy".into();
    let out = put_signed(&registry, "base", "app", "v1", &key, work.path(), false);
    let stderr = out.expect_failure();
    assert!(stderr.contains("params.sign.key"), "{stderr}");
    assert!(stderr.contains("decryption failed"), "{stderr}");
    assert!(
        !stderr.contains("xyzzy") && !out.stdout.contains("xyzzy"),
        "{stderr}"
    );
    assert_eq!(crate::util::oracle::repository_tags(&registry, "app"), None);
}

#[test]
fn unsigned_wrong_key_tampered_and_moved_signatures_are_refused() {
    let registry = Registry::start(RegistryConfig::new());
    let signed_image = random_image(1, 1024);
    let unsigned_image = random_image(1, 1024);
    let signed = push(&registry, &signed_image, "app:signed");
    let unsigned = push(&registry, &unsigned_image, "app:unsigned");
    let work = work_dir();
    let key = skopeo_key(work.path(), "cosign", PASSWORD);
    let wrong = openssl_key(work.path(), "wrong");
    put_signed(&registry, "app", "app", "signed", &key, work.path(), false).expect_success();

    let refused = |tag: &str, digest: &str, keys: &[&KeyPair], why: &str| {
        let source = verifying(&registry, "app", tag, keys);
        let (digests, stderr) = check_digests(&source);
        assert!(digests.is_empty(), "check emitted {digests:?} for {tag}");
        assert!(stderr.contains(&format!("skipping {digest}")), "{stderr}");
        assert!(stderr.contains(why), "expected {why:?} in:\n{stderr}");
        let fetch = get(&source, digest, json!({}));
        let stderr = fetch.out.expect_failure();
        assert!(
            stderr.contains(digest) && stderr.contains("no valid signature"),
            "{stderr}"
        );
        assert!(stderr.contains(why), "expected {why:?} in:\n{stderr}");
        assert!(!fetch.dest.join("rootfs").exists(), "in wrote a rootfs");
    };
    // The signed one passes with its key, and with a list holding it.
    let (digests, _) = check_digests(&verifying(&registry, "app", "signed", &[&wrong, &key]));
    assert_eq!(digests, vec![signed.clone()]);

    refused("unsigned", &unsigned, &[&key], "no signature tag");
    refused(
        "signed",
        &signed,
        &[&wrong],
        "not signed by any of source.verify.public_keys",
    );

    // The valid signature manifest of `signed` put under the tag of `unsigned`: the
    // signature verifies, but the payload names the other digest.
    let original = manifest(&registry, "app", &signature_tag(&signed)).expect("signature manifest");
    put_manifest(&registry, "app", &signature_tag(&unsigned), &original);
    refused(
        "unsigned",
        &unsigned,
        &[&key],
        &format!("the payload signs {signed}"),
    );

    // A tampered payload (naming another repository) under the original signature.
    let mut tampered: Value = serde_json::from_slice(&original).expect("JSON");
    let payload = cosign_payload(&format!("{}/evil", registry.host()), &signed);
    let payload_digest = upload_blob(&registry, "app", payload.as_bytes());
    tampered["layers"][0]["digest"] = json!(payload_digest);
    tampered["layers"][0]["size"] = json!(payload.len());
    let tampered = serde_json::to_vec(&tampered).expect("JSON");
    put_manifest(&registry, "app", &signature_tag(&signed), &tampered);
    refused(
        "signed",
        &signed,
        &[&key],
        "not signed by any of source.verify.public_keys",
    );
    // The original signature back, its payload changed in the registry's storage (same
    // length): served under its digest, refused as not what the digest says, not an error.
    put_manifest(&registry, "app", &signature_tag(&signed), &original);
    let layer_digest = serde_json::from_slice::<Value>(&original).expect("JSON")["layers"][0]
        ["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let stored = registry.blob_path(&layer_digest);
    let mut bytes = std::fs::read(&stored).expect("reading the stored payload");
    let at = bytes.len() - 3;
    bytes[at] = if bytes[at] == b'u' { b'x' } else { b'u' };
    std::fs::write(&stored, bytes).expect("writing the stored payload");
    refused("signed", &signed, &[&key], "the payload blob");
}

#[test]
fn an_index_is_signed_once_as_a_whole() {
    let registry = Registry::start(RegistryConfig::new());
    let index = multi_arch_index(&["linux/amd64", "linux/arm64/v8"]);
    let digest = push(&registry, &index, "base:v1");
    let work = work_dir();
    let key = openssl_key(work.path(), "plain");
    let out = put_signed(&registry, "base", "app", "v1", &key, work.path(), false);
    assert_eq!(pushed(&out).digest, digest);
    let manifest = signature_manifest(&registry, "app", &digest);
    assert_eq!(
        manifest["layers"].as_array().map(Vec::len),
        Some(1),
        "{manifest}"
    );
    let payload = blob(
        &registry,
        "app",
        manifest["layers"][0]["digest"].as_str().expect("digest"),
    );
    let name = format!("{}/app", registry.host());
    assert_eq!(
        String::from_utf8_lossy(&payload),
        cosign_payload(&name, &digest)
    );
    // Only the index: no signature tag for a platform's manifest.
    let tags = crate::util::oracle::repository_tags(&registry, "app").expect("tags");
    assert_eq!(tags, vec![signature_tag(&digest), "v1".to_string()]);
    let source = verifying(&registry, "app", "v1", &[&key]);
    let (digests, stderr) = check_digests(&source);
    assert_eq!(digests, vec![digest.clone()], "{stderr}");
    let fetch = get(
        &source,
        &digest,
        json!({"platform": {"architecture": "arm64"}}),
    );
    fetch.response();
}

#[test]
fn oversized_signature_payloads_are_not_read() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(1, 1024);
    let digest = push(&registry, &image, "app:v1");
    let work = work_dir();
    let key = openssl_key(work.path(), "plain");
    // A "payload" of 100 KiB (the limit is 64 KiB) with some signature: not fetched.
    let big = vec![b' '; 100 << 10];
    let big_digest = upload_blob(&registry, "app", &big);
    let config =
        br#"{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
    let config_digest = upload_blob(&registry, "app", config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "size": big.len(),
            "digest": big_digest,
            "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="},
        }],
    });
    let raw = serde_json::to_vec(&manifest).expect("JSON");
    put_manifest(&registry, "app", &signature_tag(&digest), &raw);
    let (digests, stderr) = check_digests(&verifying(&registry, "app", "v1", &[&key]));
    assert!(digests.is_empty(), "{stderr}");
    assert!(stderr.contains("more than 65536 are not read"), "{stderr}");
    let blob_reads = registry
        .log()
        .lines()
        .filter(|line| line.contains(&format!("/blobs/{big_digest}")))
        .count();
    assert_eq!(blob_reads, 0, "the oversized payload was fetched");
}

#[test]
fn a_semver_listing_leaves_out_the_unsigned_versions() {
    let registry = Registry::start(RegistryConfig::new());
    let work = work_dir();
    let key = openssl_key(work.path(), "plain");
    let mut digests = Vec::new();
    for tag in ["1.0.0", "1.1.0", "1.2.0"] {
        digests.push(push(
            &registry,
            &random_image(1, 512),
            &format!("app:{tag}"),
        ));
    }
    for (i, tag) in [(0, "1.0.0"), (2, "1.2.0")] {
        let out = put_signed(&registry, "app", "app", tag, &key, work.path(), false);
        assert_eq!(pushed(&out).digest, digests[i]);
    }
    let mut source = source_for(&registry, "app");
    let request = |source: &Value| json!({"source": source, "version": {"tag": "1.0.0", "digest": digests[0]}});
    // Without verify: all three.
    let out = run("check", &[], &request(&source));
    assert_eq!(
        out.expect_success().as_array().map(Vec::len),
        Some(3),
        "{}",
        out.stdout
    );
    source["verify"] = json!({"public_keys": [key.public_pem]});
    let out = run("check", &[], &request(&source));
    let emitted: Vec<&str> = out
        .expect_success()
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v["tag"].as_str().expect("tag"))
        .collect();
    assert_eq!(emitted, ["1.0.0", "1.2.0"], "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("skipping {} (tag 1.1.0)", digests[1])),
        "{}",
        out.stderr
    );
}

#[test]
fn docker_hub_names_are_normalised_and_signatures_read_through_a_mirror() {
    let upstream = Registry::start(RegistryConfig::new());
    let digest = push(&upstream, &random_image(1, 512), "library/busybox:1.36");
    let work = work_dir();
    let key = openssl_key(work.path(), "plain");
    std::fs::copy(&key.private, work.path().join("signing.key")).expect("copy");
    // `upstream` plays Docker Hub: `busybox` is docker.io/library/busybox.
    let upstream_host = upstream.host();
    let hub = [("IMAGE_RESOURCE_DOCKER_HUB_HOST", upstream_host.as_str())];
    let request = json!({
        "source": {"repository": "busybox", "tag": "1.36"},
        "params": {"pull_repository": "busybox", "pull_tag": "1.36", "sign": {"key": "signing.key"}},
    });
    let dir = work.path().to_str().expect("UTF-8").to_string();
    let out = run_with_env("out", &[dir.as_str()], &hub, request.to_string().as_bytes());
    assert_eq!(pushed(&out).digest, digest);
    let manifest = signature_manifest(&upstream, "library/busybox", &digest);
    let payload = blob(
        &upstream,
        "library/busybox",
        manifest["layers"][0]["digest"].as_str().expect("digest"),
    );
    assert_eq!(
        String::from_utf8_lossy(&payload),
        cosign_payload("docker.io/library/busybox", &digest)
    );

    // Docker Hub unreachable, only the mirror answers: the signature comes through it.
    let mirror = Registry::start(RegistryConfig::new().proxy(&upstream));
    let closed = [("IMAGE_RESOURCE_DOCKER_HUB_HOST", "127.0.0.1:9")];
    let source = json!({
        "repository": "library/busybox", "tag": "1.36",
        "registry_mirror": {"host": mirror.host()},
        "verify": {"public_keys": [key.public_pem]},
    });
    let out = run_with_env(
        "check",
        &[],
        &closed,
        json!({"source": source}).to_string().as_bytes(),
    );
    let versions = out.expect_success();
    assert_eq!(versions[0]["digest"], json!(digest), "{}", out.stderr);
    // Another key: the mirror has no valid signature, nor has the origin (reachable now).
    let other = openssl_key(work.path(), "other");
    let mut refused = source.clone();
    refused["verify"] = json!({"public_keys": [other.public_pem]});
    let out = run_with_env(
        "check",
        &[],
        &hub,
        json!({"source": refused}).to_string().as_bytes(),
    );
    assert_eq!(out.expect_success(), &json!([]), "{}", out.stderr);
}
