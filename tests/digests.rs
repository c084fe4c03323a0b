//! Every digest algorithm we accept is verified, for manifests and blobs: an image named
//! by a sha512 manifest digest, and a layer named by a sha512 digest, are fetched and
//! checked in that algorithm (wrong bytes are a digest mismatch), and a digest in an
//! algorithm we cannot compute is a clear error, never an unchecked fetch. A real registry
//! holds the image; the fault front serves what a registry with such digests would.

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};

use crate::faults::{fault_env, get_with_env};
use crate::get::{assert_nothing_complete, registry_with};
use crate::util::faults::{Fault, FaultFront};
use crate::util::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(bytes)))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A front serving `manifest` for GETs of `/manifests/<digest>` and `blob` for GETs of
/// `/blobs/<blob_digest>`, forwarding everything else to `upstream`.
fn serving(
    upstream: String,
    digest: String,
    manifest: Vec<u8>,
    blob: Option<(String, Vec<u8>)>,
) -> FaultFront {
    FaultFront::start(upstream, move |request| {
        if request.method == "GET" && request.target.ends_with(&format!("/manifests/{digest}")) {
            return Fault::RespondWithBody(
                "200 OK".into(),
                vec![format!("Content-Type: {OCI_MANIFEST}")],
                manifest.clone(),
            );
        }
        if let Some((blob_digest, bytes)) = &blob {
            if request.is_blob_get(blob_digest) {
                return Fault::RespondWithBody("200 OK".into(), Vec::new(), bytes.clone());
            }
        }
        Fault::Forward
    })
}

#[test]
fn sha512_manifest_digests_are_verified() {
    let image = random_image(1, 2048);
    let (registry, _) = registry_with(&image, "digests/m512");
    let good = sha512(&image.manifest);
    let tmp = tempfile::tempdir().expect("temp dir");
    let env = fault_env(tmp.path(), "5", "10");

    let front = serving(registry.host(), good.clone(), image.manifest.clone(), None);
    let source = json!({ "repository": format!("{}/digests/m512", front.host()) });
    let fetch = get_with_env(&source, &good, &env);
    assert_eq!(fetch.response()["version"]["digest"], json!(good));

    // Other bytes under that digest: refused, in sha512.
    let mut other: Value = serde_json::from_slice(&image.manifest).expect("manifest JSON");
    other["annotations"] = json!({ "tampered": "yes" });
    let front = serving(
        registry.host(),
        good.clone(),
        serde_json::to_vec(&other).expect("JSON"),
        None,
    );
    let source = json!({ "repository": format!("{}/digests/m512", front.host()) });
    let fetch = get_with_env(&source, &good, &env);
    let stderr = fetch.out.expect_failure();
    assert!(
        stderr.contains("digest mismatch") && stderr.contains(&good),
        "{stderr}"
    );
    assert!(stderr.contains("got sha512:"), "{stderr}");
    assert_nothing_complete(&fetch.dest, &fetch.out);
}

/// The image's manifest with its one layer renamed to `layer_digest`: its bytes and sha256.
fn manifest_naming_layer(image: &Image, layer_digest: &str) -> (Vec<u8>, String) {
    let mut manifest: Value = serde_json::from_slice(&image.manifest).expect("manifest JSON");
    manifest["layers"][0]["digest"] = json!(layer_digest);
    let bytes = serde_json::to_vec(&manifest).expect("JSON");
    let digest = sha256(&bytes);
    (bytes, digest)
}

#[test]
fn sha512_layer_digests_are_verified_and_unknown_algorithms_refused() {
    let image = random_image(1, 4096);
    let (registry, _) = registry_with(&image, "digests/l512");
    let layer = std::fs::read(
        image
            .path()
            .join("blobs/sha256")
            .join(image.layers[0].digest.trim_start_matches("sha256:")),
    )
    .expect("the layer blob");
    let tmp = tempfile::tempdir().expect("temp dir");
    let env = fault_env(tmp.path(), "5", "10");
    let layer512 = sha512(&layer);
    let (manifest, digest) = manifest_naming_layer(&image, &layer512);

    // The right bytes: fetched, verified in sha512, applied.
    let front = serving(
        registry.host(),
        digest.clone(),
        manifest.clone(),
        Some((layer512.clone(), layer.clone())),
    );
    let source = json!({ "repository": format!("{}/digests/l512", front.host()) });
    let fetch = get_with_env(&source, &digest, &env);
    assert_eq!(fetch.response()["version"]["digest"], json!(digest));
    assert!(
        fetch.rootfs().join("random").is_dir(),
        "{}",
        fetch.out.stderr
    );

    // Other bytes of the same length: a sha512 mismatch.
    let mut flipped = layer.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    let front = serving(
        registry.host(),
        digest.clone(),
        manifest,
        Some((layer512.clone(), flipped)),
    );
    let source = json!({ "repository": format!("{}/digests/l512", front.host()) });
    let fetch = get_with_env(&source, &digest, &env);
    let stderr = fetch.out.expect_failure();
    assert!(
        stderr.contains("digest mismatch") && stderr.contains(&layer512),
        "{stderr}"
    );
    assert_nothing_complete(&fetch.dest, &fetch.out);

    // An algorithm we cannot compute: an error naming it, and the blob is never asked for.
    let unknown = format!("blake3:{}", "ab".repeat(32));
    let (manifest, digest) = manifest_naming_layer(&image, &unknown);
    let front = serving(registry.host(), digest.clone(), manifest, None);
    let source = json!({ "repository": format!("{}/digests/l512", front.host()) });
    let fetch = get_with_env(&source, &digest, &env);
    let stderr = fetch.out.expect_failure();
    assert!(
        stderr.contains("unsupported digest") && stderr.contains(&unknown),
        "{stderr}"
    );
    assert!(
        !front.seen().iter().any(|r| r.is_blob_get(&unknown)),
        "{:?}",
        front.seen()
    );
    assert_nothing_complete(&fetch.dest, &fetch.out);
}
