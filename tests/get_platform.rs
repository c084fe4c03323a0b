//! `in` against real registries: picking one image out of an index (OCI index or Docker
//! manifest list) by the host's platform, `params.platform` or `source.platform`, and
//! the error when none matches.

use serde_json::json;

use crate::get::{assert_nothing_complete, get, read, registry_with, source_for};
use crate::util::image::sha256_digest;
use crate::util::*;

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
