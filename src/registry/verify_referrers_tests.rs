//! `source.verify` of signatures stored as OCI referrers, against the in-process registry of
//! [`super::referrers_tests`] (with and without the referrers API): cosign 2's `oci-1-1`
//! signatures and cosign 3's Sigstore bundles; wrong keys, referrers of other images,
//! payloads and statements naming other digests are refused; other artifacts are not read.

use super::referrers::{fallback_tag, INDEX_MEDIA_TYPE};
use super::referrers_tests::{
    client, put, registry, store, subject, Store, OCI_MANIFEST, SIG_TYPE,
};
use super::test_server::TestServer;
use crate::sigstore::keys::PrivateKey;
use crate::sigstore::verify::{Verdict, Verifier};
use crate::sigstore::VerifyOptions;
use serde_json::{json, Value};
use std::sync::Arc;

/// `source.verify` of `subject()` in `app` on `server`, accepting `key`.
async fn verdict_of(server: &TestServer, key: &str) -> anyhow::Result<Verdict> {
    let reference = crate::reference::Reference::parse(&format!("{}/app", server.host()))?;
    let options = VerifyOptions {
        public_keys: vec![key.to_string()],
        repositories: vec![],
    };
    let verifier = Verifier::from_options(Some(&options), &reference)?
        .ok_or_else(|| anyhow::anyhow!("no verifier"))?;
    verifier
        .verdict(client(server).await?.as_ref(), "app", &subject())
        .await
}

/// A P-256 key from `seed`: the private key, and the public key's PEM.
fn key(seed: u8) -> anyhow::Result<(PrivateKey, String)> {
    use base64::Engine as _;
    use p256::pkcs8::EncodePrivateKey as _;
    let secret = p256::SecretKey::from_slice(&[seed; 32])?;
    let der = secret.to_pkcs8_der()?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
    let key = PrivateKey::from_pem(&pem, None)?;
    let public = key.public_key().to_pem();
    Ok((key, public))
}

/// Stores in `app` a cosign `oci-1-1` signature of `signed` (the payload names `name` and
/// `signed`) by `key`, as a referrer of `subject`; its manifest's digest.
fn store_signature_referrer(
    store: &Store,
    key: &PrivateKey,
    name: &str,
    signed: &str,
    subject: &str,
) -> String {
    use base64::Engine as _;
    let payload = crate::sigstore::payload::build(name, signed);
    let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&payload));
    let payload_digest = crate::digest::sha256(&payload);
    put(store, &format!("app@{payload_digest}"), "blob", &payload);
    let layer =
        crate::sigstore::manifest::Layer::new(&payload_digest, payload.len() as u64, &signature);
    let raw = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIG_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": crate::digest::sha256(b"{}")},
        "layers": [layer.descriptor],
        "subject": {"mediaType": OCI_MANIFEST, "size": 418, "digest": subject},
    })
    .to_string()
    .into_bytes();
    let digest = crate::digest::sha256(&raw);
    put(store, &format!("app@{digest}"), OCI_MANIFEST, &raw);
    digest
}

#[tokio::test]
async fn verify_accepts_a_signature_stored_as_a_referrer_through_the_api() -> anyhow::Result<()> {
    let store = store();
    let server = TestServer::start(registry(Arc::clone(&store), true)).await?;
    let name = format!("{}/app", server.host());
    let (signer, public) = key(0x42)?;
    let (_, other_public) = key(0x43)?;
    assert!(
        matches!(verdict_of(&server, &public).await?, Verdict::Unsigned(why) if why.contains("no signature tag") && why.contains("no cosign signature among its 0"))
    );
    store_signature_referrer(&store, &signer, &name, &subject(), &subject());
    assert_eq!(verdict_of(&server, &public).await?, Verdict::Signed(0));
    let Verdict::Unsigned(why) = verdict_of(&server, &other_public).await? else {
        panic!("another key verified it");
    };
    assert!(
        why.contains("not signed by any of source.verify.public_keys"),
        "{why}"
    );
    Ok(())
}

#[tokio::test]
async fn verify_reads_the_referrers_tag_and_checks_subject_and_payload() -> anyhow::Result<()> {
    let store = store();
    let server = TestServer::start(registry(Arc::clone(&store), false)).await?;
    let name = format!("{}/app", server.host());
    let (signer, public) = key(0x42)?;
    let other_image = format!("sha256:{}", "6".repeat(64));
    // Listed in the tag but referring to another image; then one whose payload names
    // another image; then an SBOM (not fetched).
    let wrong_subject = store_signature_referrer(&store, &signer, &name, &subject(), &other_image);
    let wrong_payload = store_signature_referrer(&store, &signer, &name, &other_image, &subject());
    let sbom = format!("sha256:{}", "8".repeat(64));
    let descriptor = |digest: &str, artifact_type: &str| json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": 1, "artifactType": artifact_type});
    let mut listed = vec![
        descriptor(&wrong_subject, SIG_TYPE),
        descriptor(&wrong_payload, SIG_TYPE),
        descriptor(&sbom, "application/spdx+json"),
    ];
    let tag = format!("app@{}", fallback_tag(&subject()));
    let write_tag = |listed: &[Value]| {
        let index = json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": listed});
        put(&store, &tag, INDEX_MEDIA_TYPE, index.to_string().as_bytes());
    };
    write_tag(&listed);
    let Verdict::Unsigned(why) = verdict_of(&server, &public).await? else {
        panic!("a signature of another image was accepted");
    };
    assert!(why.contains("is not a referrer of"), "{why}");
    assert!(
        why.contains(&format!("the payload signs {other_image}")),
        "{why}"
    );
    assert!(
        !server.lines().iter().any(|l| l.contains(&sbom)),
        "the SBOM was fetched: {:?}",
        server.lines()
    );
    let good = store_signature_referrer(&store, &signer, &name, &subject(), &subject());
    listed.push(descriptor(&good, SIG_TYPE));
    write_tag(&listed);
    assert_eq!(verdict_of(&server, &public).await?, Verdict::Signed(0));
    Ok(())
}

/// Stores in `app` a cosign 3 signature of `signed` by `key`: a Sigstore bundle (a DSSE
/// envelope over cosign's in-toto statement) as a referrer of `subject()`, listed in the
/// referrers tag with the empty artifact type, as cosign 3 lists it.
fn store_bundle_referrer(store: &Store, key: &PrivateKey, signed: &str) {
    use crate::sigstore::bundle::{pae, BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE};
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (_, hex) = signed.split_once(':').unwrap_or_default();
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": hex}, "annotations": {}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    })
    .to_string();
    let sig = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, statement.as_bytes()));
    let bundle = json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": "x"}},
        "dsseEnvelope": {"payload": b64.encode(&statement), "payloadType": IN_TOTO_PAYLOAD_TYPE, "signatures": [{"sig": b64.encode(sig)}]},
    })
    .to_string()
    .into_bytes();
    let bundle_digest = crate::digest::sha256(&bundle);
    put(store, &format!("app@{bundle_digest}"), "blob", &bundle);
    let empty = "application/vnd.oci.empty.v1+json";
    let raw = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": empty, "size": 2, "digest": crate::digest::sha256(b"{}"), "artifactType": BUNDLE_MEDIA_TYPE},
        "layers": [{"mediaType": BUNDLE_MEDIA_TYPE, "size": bundle.len(), "digest": bundle_digest}],
        "annotations": {"dev.sigstore.bundle.content": "dsse-envelope"},
        "subject": {"mediaType": OCI_MANIFEST, "size": 418, "digest": subject()},
        "artifactType": BUNDLE_MEDIA_TYPE,
    })
    .to_string()
    .into_bytes();
    let digest = crate::digest::sha256(&raw);
    put(store, &format!("app@{digest}"), OCI_MANIFEST, &raw);
    let index = json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": raw.len(), "artifactType": empty}
    ]});
    put(
        store,
        &format!("app@{}", fallback_tag(&subject())),
        INDEX_MEDIA_TYPE,
        index.to_string().as_bytes(),
    );
}

#[tokio::test]
async fn verify_accepts_a_cosign_3_bundle_for_the_digest_only() -> anyhow::Result<()> {
    let (signer, public) = key(0x42)?;
    let (_, other_public) = key(0x43)?;
    let store = store();
    store_bundle_referrer(&store, &signer, &subject());
    let server = TestServer::start(registry(Arc::clone(&store), false)).await?;
    assert_eq!(verdict_of(&server, &public).await?, Verdict::Signed(0));
    let Verdict::Unsigned(why) = verdict_of(&server, &other_public).await? else {
        panic!("another key verified the bundle");
    };
    assert!(why.contains("not signed by any"), "{why}");
    // A bundle whose statement signs another digest, attached to this image.
    let store = self::store();
    store_bundle_referrer(&store, &signer, &format!("sha256:{}", "6".repeat(64)));
    let server = TestServer::start(registry(Arc::clone(&store), false)).await?;
    let Verdict::Unsigned(why) = verdict_of(&server, &public).await? else {
        panic!("a bundle for another digest was accepted");
    };
    assert!(why.contains("the statement signs sha256:666"), "{why}");
    Ok(())
}
