//! Signatures across tools: what trixie's skopeo (containers/image 5.x, sigstore enabled)
//! signs, `check` and `in` verify; our signature is appended next to skopeo's (both kept,
//! both verify, skopeo accepts ours); and a `pull_repository` copy to another registry keeps
//! the signatures: verifiable where the policy accepts the repository they were signed in
//! (`source.verify.repositories`, containers/image's `remapIdentity`), refused where not;
//! and one of an image cosign signed as an OCI 1.1 referrer keeps the referrer (cosign
//! verifies the copy through the referrers tag distribution 2.8 needs), and `check` and `in`
//! verify such a signature, before and after the copy; and cosign 3's default Sigstore
//! bundles (also referrers) are verified and kept by copies.

use serde_json::json;

use crate::get::{get, source_for};
use crate::put::{pushed, put, work_dir};
use crate::sign::{check_digests, put_signed, verifying};
use crate::util::sigstore::*;
use crate::util::*;

#[test]
fn skopeo_signs_we_verify_and_our_signature_is_appended() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(1, 2048);
    let work = work_dir();
    let theirs = skopeo_key(work.path(), "skopeo", "their password");
    skopeo_push_signed(&registry, &image, "app:v1", &theirs, work.path());
    let digest = image.digest.clone();
    let before = signature_manifest(&registry, "app", &digest);
    assert_eq!(
        before["layers"].as_array().map(Vec::len),
        Some(1),
        "{before}"
    );

    let (digests, stderr) = check_digests(&verifying(&registry, "app", "v1", &[&theirs]));
    assert_eq!(digests, vec![digest.clone()], "{stderr}");
    get(
        &verifying(&registry, "app", "v1", &[&theirs]),
        &digest,
        json!({"skip_download": true}),
    )
    .response();

    // Our signature goes next to skopeo's.
    let ours = openssl_key(work.path(), "ours");
    std::fs::copy(&ours.private, work.path().join("ours-signing.key")).expect("copy");
    let mut source = source_for(&registry, "app");
    source["tag"] = json!("v1");
    let out = put(
        work.path(),
        &source,
        json!({
            "pull_repository": format!("{}/app", registry.host()),
            "pull_tag": "v1",
            "sign": {"key": "ours-signing.key"},
        }),
    );
    assert_eq!(pushed(&out).digest, digest);
    let after = signature_manifest(&registry, "app", &digest);
    let layers = after["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2, "{after}");
    assert_eq!(
        layers[0], before["layers"][0],
        "skopeo's signature was changed"
    );
    for key in [&theirs, &ours] {
        let (digests, stderr) = check_digests(&verifying(&registry, "app", "v1", &[key]));
        assert_eq!(digests, vec![digest.clone()], "{stderr}");
    }
    // containers/image accepts ours among them.
    skopeo_verifies(
        &registry,
        &format!("app@{digest}"),
        &ours.public,
        json!({"type": "matchRepository"}),
        work.path(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_pull_repository_copy_keeps_the_signatures() {
    let origin = Registry::start(RegistryConfig::new());
    let copy = Registry::start(RegistryConfig::new());
    let image = random_image(2, 2048);
    let work = work_dir();
    let key = skopeo_key(work.path(), "cosign", "pw");
    skopeo_push_signed(&origin, &image, "src:v1", &key, work.path());
    let digest = image.digest.clone();

    let mut source = source_for(&copy, "dst");
    source["tag"] = json!("v1");
    let out = put(
        work.path(),
        &source,
        json!({"pull_repository": format!("{}/src", origin.host()), "pull_tag": "v1"}),
    );
    assert_eq!(pushed(&out).digest, digest);
    assert!(out.stderr.contains("copied 1 signature"), "{}", out.stderr);
    let copied = signature_manifest(&copy, "dst", &digest);
    let original = signature_manifest(&origin, "src", &digest);
    assert_eq!(copied["layers"], original["layers"]);

    // The payload names the origin repository: refused as it is, accepted when the source
    // says that repository's signatures count.
    let strict = verifying(&copy, "dst", "v1", &[&key]);
    let (digests, stderr) = check_digests(&strict);
    assert!(digests.is_empty(), "{stderr}");
    assert!(
        stderr.contains(&format!("names {}/src", origin.host())),
        "{stderr}"
    );
    let mut remapped = strict.clone();
    remapped["verify"]["repositories"] = json!([format!("{}/src", origin.host())]);
    let (digests, stderr) = check_digests(&remapped);
    assert_eq!(digests, vec![digest.clone()], "{stderr}");
    get(&remapped, &digest, json!({"skip_download": true})).response();

    // containers/image agrees: with remapIdentity the copy verifies.
    let identity = json!({
        "type": "remapIdentity",
        "prefix": format!("{}/dst", copy.host()),
        "signedPrefix": format!("{}/src", origin.host()),
    });
    skopeo_verifies(
        &copy,
        &format!("dst@{digest}"),
        &key.public,
        identity,
        work.path(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn cosign_verifies_ours_and_we_verify_cosigns() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(1, 2048);
    let digest = push(&registry, &image, "theirs:v1");
    push(&registry, &image, "base:v1");
    let work = work_dir();
    let key = cosign_key(work.path(), "cosign", "cosign password");

    // cosign signs; check and in verify.
    cosign_sign(&registry, "theirs", &digest, &key);
    let source = verifying(&registry, "theirs", "v1", &[&key]);
    let (digests, stderr) = check_digests(&source);
    assert_eq!(digests, vec![digest.clone()], "{stderr}");
    get(&source, &digest, json!({"skip_download": true})).response();

    // We sign with cosign's own key file; cosign verifies it (and refuses another key).
    let out = put_signed(&registry, "base", "ours", "v1", &key, work.path(), false);
    assert_eq!(pushed(&out).digest, digest);
    let verified =
        cosign_verify(&registry, "ours", &digest, &key.public).unwrap_or_else(|e| panic!("{e}"));
    assert!(verified.contains(&digest), "{verified}");
    let other = openssl_key(work.path(), "other");
    assert!(cosign_verify(&registry, "ours", &digest, &other.public).is_err());
    assert!(cosign_verify(&registry, "base", &digest, &key.public).is_err());
}

#[test]
fn a_pull_repository_copy_keeps_cosigns_oci_referrers() {
    let origin = Registry::start(RegistryConfig::new());
    let copy = Registry::start(RegistryConfig::new());
    let image = random_image(2, 2048);
    let digest = push(&origin, &image, "src:v1");
    let work = work_dir();
    let key = cosign_key(work.path(), "cosign", "pw");
    cosign_sign_referrer(&origin, "src", &digest, &key);
    // What cosign wrote: no .sig tag, a referrer listed in the referrers tag (distribution
    // 2.8 has no referrers API), and it verifies that way only.
    assert!(manifest(&origin, "src", &signature_tag(&digest)).is_none());
    let listed = referrers_tag_index(&origin, "src", &digest).expect("cosign's referrers tag");
    let referrers = listed["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(referrers.len(), 1, "{listed}");
    let referrer = referrers[0]["digest"].as_str().expect("digest").to_string();
    cosign_verify_referrer(&origin, "src", &digest, &key.public).unwrap_or_else(|e| panic!("{e}"));
    assert!(cosign_verify(&origin, "src", &digest, &key.public).is_err());

    // check and in find cosign's signature among the referrers; another key is refused.
    let source = verifying(&origin, "src", "v1", &[&key]);
    let (digests, stderr) = check_digests(&source);
    assert_eq!(digests, vec![digest.clone()], "{stderr}");
    let fetched = get(&source, &digest, json!({"skip_download": true}));
    fetched.out.expect_success();
    assert!(
        fetched.out.stderr.contains("signature verified"),
        "{}",
        fetched.out.stderr
    );
    let other = openssl_key(work.path(), "other");
    let refusing = verifying(&origin, "src", "v1", &[&other]);
    let (digests, stderr) = check_digests(&refusing);
    assert!(digests.is_empty(), "{stderr}");
    assert!(
        stderr.contains("not signed by any of source.verify.public_keys"),
        "{stderr}"
    );
    let refused = get(&refusing, &digest, json!({"skip_download": true}));
    assert!(refused.out.expect_failure().contains("no valid signature"));

    // Copied to another registry, and to another repository of the same one (mounted).
    for (registry, repository) in [(&copy, "dst"), (&origin, "mounted")] {
        let mut source = source_for(registry, repository);
        source["tag"] = json!("v1");
        let out = put(
            work.path(),
            &source,
            json!({"pull_repository": format!("{}/src", origin.host()), "pull_tag": "v1"}),
        );
        assert_eq!(pushed(&out).digest, digest);
        assert!(
            out.stderr.contains(&format!(
                "copied 1 referrer(s) of {}/src@{digest}",
                origin.host()
            )),
            "{}",
            out.stderr
        );
        if repository == "mounted" {
            // The image's blobs and the referrer's (config and payload), each linked.
            assert!(out.stderr.contains("3 mounted"), "{}", out.stderr);
            assert!(out.stderr.contains("2 mounted"), "{}", out.stderr);
        }
        let copied = referrers_tag_index(registry, repository, &digest)
            .unwrap_or_else(|| panic!("no referrers tag in {repository}:\n{}", out.stderr));
        assert_eq!(copied["manifests"], listed["manifests"], "{}", out.stderr);
        assert_eq!(
            manifest(registry, repository, &referrer),
            manifest(&origin, "src", &referrer),
            "the referrer's bytes"
        );
        let verified = cosign_verify_referrer(registry, repository, &digest, &key.public)
            .unwrap_or_else(|e| panic!("{e}\n{}", out.stderr));
        assert!(verified.contains(&digest), "{verified}");
        assert!(cosign_verify_referrer(registry, repository, &digest, &other.public).is_err());
        // And check verifies the copy (its payload names the source repository).
        let mut source = verifying(registry, repository, "v1", &[&key]);
        source["verify"]["repositories"] = json!([format!("{}/src", origin.host())]);
        let (digests, stderr) = check_digests(&source);
        assert_eq!(digests, vec![digest.clone()], "{stderr}");
    }
}

#[test]
fn cosign_3s_bundles_are_verified_and_kept_by_copies() {
    let registry = Registry::start(RegistryConfig::new());
    let copy = Registry::start(RegistryConfig::new());
    let image = random_image(3, 2048);
    let digest = push(&registry, &image, "src:v1");
    let work = work_dir();
    let key = cosign_key(work.path(), "cosign", "pw");
    cosign3_sign(&registry, "src", &digest, &key, work.path());
    // What cosign 3 wrote: no .sig tag, one referrer holding a Sigstore bundle.
    assert!(manifest(&registry, "src", &signature_tag(&digest)).is_none());
    let listed = referrers_tag_index(&registry, "src", &digest).expect("cosign 3's referrers tag");
    let referrer = listed["manifests"][0]["digest"]
        .as_str()
        .expect("a referrer")
        .to_string();
    let raw = manifest(&registry, "src", &referrer).expect("the referrer");
    let referrer_manifest: serde_json::Value = serde_json::from_slice(&raw).expect("JSON");
    assert_eq!(
        referrer_manifest["layers"][0]["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        "{referrer_manifest}"
    );

    // check and in accept it with its key, and refuse another key.
    let source = verifying(&registry, "src", "v1", &[&key]);
    let (digests, stderr) = check_digests(&source);
    assert_eq!(digests, vec![digest.clone()], "{stderr}");
    let fetched = get(&source, &digest, json!({"skip_download": true}));
    fetched.out.expect_success();
    let other = openssl_key(work.path(), "other");
    let refusing = verifying(&registry, "src", "v1", &[&other]);
    let (digests, stderr) = check_digests(&refusing);
    assert!(digests.is_empty(), "{stderr}");
    assert!(stderr.contains("not signed by any"), "{stderr}");
    let refused = get(&refusing, &digest, json!({"skip_download": true}));
    assert!(refused.out.expect_failure().contains("no valid signature"));

    // A copy to another registry keeps the bundle, which verifies there (a bundle names
    // only the digest, so no verify.repositories is needed).
    let mut target = source_for(&copy, "dst");
    target["tag"] = json!("v1");
    let out = put(
        work.path(),
        &target,
        json!({"pull_repository": format!("{}/src", registry.host()), "pull_tag": "v1"}),
    );
    assert_eq!(pushed(&out).digest, digest);
    let (digests, stderr) = check_digests(&verifying(&copy, "dst", "v1", &[&key]));
    assert_eq!(digests, vec![digest.clone()], "{stderr}\n{}", out.stderr);
    cosign3_verify(&copy, "dst", &digest, &key.public).unwrap_or_else(|e| panic!("{e}"));

    // cosign 3 with its default flags verifies what out signs (the .sig format), on an
    // image with no bundle to find first.
    let plain = push(&copy, &random_image(4, 2048), "plain:v1");
    let signed = put_signed(&copy, "plain", "ours", "v1", &key, work.path(), false);
    assert_eq!(pushed(&signed).digest, plain);
    let verified = cosign3_verify(&copy, "ours", &plain, &key.public)
        .unwrap_or_else(|e| panic!("{e}\n{}", signed.stderr));
    assert!(
        verified.contains("cosign container image signature"),
        "{verified}"
    );
    assert!(cosign3_verify(&copy, "ours", &plain, &other.public).is_err());
}
