//! Referrers against the in-process [`TestServer`] playing a registry with or without the
//! referrers API (distribution 2.8, the registry of the integration tests, has none): the
//! listing takes `/referrers/` when it answers and the referrers tag when it is 404; a copy
//! to a registry that answers the referrer's `PUT` with `OCI-Subject` leaves the tag alone,
//! and one to a registry that does not adds to the tag (keeping what it lists, no
//! duplicates). `source.verify` of referrers against the same server is in
//! `verify_referrers_tests.rs`.

use super::referrers::{fallback_tag, Listed, INDEX_MEDIA_TYPE};
use super::test_server::{Reply, Request, TestServer};
use super::Client;
use crate::sigstore::copy::Copying;
use crate::sigstore::referrers::{copy_referrers, Copied};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub(super) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(super) const SIG_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// What the fake registry stores: manifests by `repository@reference` (a tag or digest),
/// with their media type.
pub(super) type Store = Arc<Mutex<HashMap<String, (String, Vec<u8>)>>>;

/// A registry keeping manifests in `store`, with every blob present; `api`: it has the
/// referrers API (lists the stored manifests whose subject is the digest, answers a `PUT`
/// of a manifest with a subject with `OCI-Subject`), else `/referrers/` is 404.
pub(super) fn registry(store: Store, api: bool) -> impl Fn(&Request, &str) -> Reply + Send + Sync {
    move |request, _| {
        let path = request.path();
        if path == "/v2/" {
            return Reply::status(200);
        }
        let Ok(mut store) = store.lock() else {
            return Reply::status(500);
        };
        if let Some((repository, digest)) = path
            .strip_prefix("/v2/")
            .and_then(|p| p.split_once("/referrers/"))
        {
            if !api {
                return Reply::status(404).body("404 page not found");
            }
            let manifests: Vec<Value> = store
                .iter()
                .filter(|(key, _)| key.starts_with(&format!("{repository}@sha256:")))
                .filter_map(|(key, (media_type, raw))| {
                    let manifest: Value = serde_json::from_slice(raw).ok()?;
                    (manifest.pointer("/subject/digest")?.as_str()? == digest).then(|| {
                        let (_, d) = key.split_once('@')?;
                        super::referrers::descriptor_of(raw, d, media_type).ok()
                    })?
                })
                .collect();
            let index =
                json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": manifests});
            return Reply::status(200)
                .header("content-type", INDEX_MEDIA_TYPE)
                .body(index.to_string());
        }
        if let Some((repository, reference)) = path
            .strip_prefix("/v2/")
            .and_then(|p| p.split_once("/manifests/"))
        {
            let key = format!("{repository}@{reference}");
            return match request.method.as_str() {
                "GET" | "HEAD" => match store.get(&key) {
                    Some((media_type, raw)) => Reply::status(200)
                        .header("content-type", media_type.clone())
                        .header("docker-content-digest", crate::digest::sha256(raw))
                        .body(raw.clone()),
                    None => Reply::status(404),
                },
                "PUT" => {
                    let media_type = request.header("content-type").unwrap_or("").to_string();
                    let digest = crate::digest::sha256(&request.body);
                    let entry = (media_type, request.body.clone());
                    store.insert(key, entry.clone());
                    store.insert(format!("{repository}@{digest}"), entry);
                    let mut reply =
                        Reply::status(201).header("docker-content-digest", digest.clone());
                    let subject = serde_json::from_slice::<Value>(&request.body)
                        .ok()
                        .and_then(|m| m.pointer("/subject/digest")?.as_str().map(str::to_string));
                    if let (true, Some(subject)) = (api, subject) {
                        reply = reply.header("oci-subject", subject);
                    }
                    reply
                }
                _ => Reply::status(405),
            };
        }
        if let Some((repository, digest)) = path
            .strip_prefix("/v2/")
            .and_then(|p| p.split_once("/blobs/"))
        {
            // Every blob is there for a HEAD; a GET gets the stored ones.
            return match (
                request.method.as_str(),
                store.get(&format!("{repository}@{digest}")),
            ) {
                ("HEAD", _) => Reply::status(200),
                ("GET", Some((_, raw))) => Reply::status(200).body(raw.clone()),
                _ => Reply::status(404),
            };
        }
        Reply::status(404)
    }
}

pub(super) fn store() -> Store {
    Arc::default()
}

pub(super) fn put(store: &Store, key: &str, media_type: &str, raw: &[u8]) {
    if let Ok(mut store) = store.lock() {
        store.insert(key.to_string(), (media_type.to_string(), raw.to_vec()));
    }
}

fn get(store: &Store, key: &str) -> Option<Vec<u8>> {
    store.lock().ok()?.get(key).map(|(_, raw)| raw.clone())
}

pub(super) async fn client(server: &TestServer) -> anyhow::Result<Arc<Client>> {
    Ok(Arc::new(
        Client::new(&server.host(), None, &Default::default()).await?,
    ))
}

/// The copy of `digest` from `src` on `source` to `dst` on `target`.
fn copying<'a>(
    source: &'a Arc<Client>,
    target: &'a Arc<Client>,
    digest: &'a str,
    scratch: &'a Path,
) -> Copying<'a> {
    Copying {
        source,
        from: "src",
        target,
        repository: "dst",
        digest,
        scratch,
    }
}

/// The image's digest (the subject; the image itself need not be stored).
pub(super) fn subject() -> String {
    format!("sha256:{}", "5".repeat(64))
}

/// A cosign-like signature manifest referring to `subject`, and its digest.
fn signature(subject: &str, n: u8) -> (Vec<u8>, String) {
    let raw = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": SIG_TYPE, "size": 233, "digest": format!("sha256:{}", hex::encode([n; 32]))},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "size": 235, "digest": format!("sha256:{}", hex::encode([n + 1; 32]))}],
        "subject": {"mediaType": OCI_MANIFEST, "size": 418, "digest": subject},
    })
    .to_string()
    .into_bytes();
    let digest = crate::digest::sha256(&raw);
    (raw, digest)
}

fn digests(index: &[u8]) -> Vec<String> {
    let index: Value = serde_json::from_slice(index).unwrap_or_default();
    index["manifests"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|d| d["digest"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn asked_for_tag(server: &TestServer, digest: &str) -> bool {
    let tag = format!("/manifests/{}", fallback_tag(digest));
    server.lines().iter().any(|l| l.ends_with(&tag))
}

#[tokio::test]
async fn the_listing_uses_the_referrers_api_when_it_answers() -> anyhow::Result<()> {
    let store = store();
    let (raw, digest) = signature(&subject(), 1);
    put(&store, &format!("app@{digest}"), OCI_MANIFEST, &raw);
    let server = TestServer::start(registry(store, true)).await?;
    let referrers = client(&server)
        .await?
        .list_referrers("app", &subject())
        .await?;
    assert_eq!(referrers.listed, Listed::Api);
    assert_eq!(referrers.descriptors.len(), 1);
    assert_eq!(referrers.descriptors[0]["digest"], digest.as_str());
    assert_eq!(referrers.descriptors[0]["artifactType"], SIG_TYPE);
    let referrers_get = format!("GET /v2/app/referrers/{}", subject());
    assert!(
        server.lines().contains(&referrers_get),
        "{:?}",
        server.lines()
    );
    assert!(!asked_for_tag(&server, &subject()), "{:?}", server.lines());
    Ok(())
}

#[tokio::test]
async fn the_listing_falls_back_to_the_tag_on_404() -> anyhow::Result<()> {
    let store = store();
    let server = TestServer::start(registry(Arc::clone(&store), false)).await?;
    let client = client(&server).await?;
    // No tag yet: nothing.
    let referrers = client.list_referrers("team/app", &subject()).await?;
    assert_eq!(referrers.listed, Listed::Nothing);
    assert!(referrers.descriptors.is_empty());
    let (raw, digest) = signature(&subject(), 1);
    let index = json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": raw.len(), "artifactType": SIG_TYPE}
    ]});
    let tag = fallback_tag(&subject());
    put(
        &store,
        &format!("team/app@{tag}"),
        INDEX_MEDIA_TYPE,
        index.to_string().as_bytes(),
    );
    let referrers = client.list_referrers("team/app", &subject()).await?;
    assert_eq!(referrers.listed, Listed::Tag);
    assert_eq!(
        referrers.descriptors,
        index["manifests"].as_array().cloned().unwrap_or_default()
    );
    let lines = server.lines();
    let api = format!("GET /v2/team/app/referrers/{}", subject());
    let by_tag = format!("GET /v2/team/app/manifests/{tag}");
    let first_api = lines.iter().position(|l| *l == api);
    let first_tag = lines.iter().position(|l| *l == by_tag);
    assert!(first_api.is_some() && first_api < first_tag, "{lines:?}");
    Ok(())
}

#[tokio::test]
async fn a_non_index_answer_or_a_client_error_falls_back_and_401_fails() -> anyhow::Result<()> {
    let server = TestServer::start(|request: &Request, _: &str| match request.path() {
        "/v2/" => Reply::status(200),
        p if p.contains("/referrers/") && p.starts_with("/v2/html/") => Reply::status(200)
            .header("content-type", "text/html")
            .body("<html/>"),
        p if p.contains("/referrers/") && p.starts_with("/v2/proxy/") => Reply::status(405),
        p if p.contains("/referrers/") && p.starts_with("/v2/forbidden/") => Reply::status(403),
        p if p.contains("/referrers/") => Reply::status(401),
        _ => Reply::status(404),
    })
    .await?;
    let client = client(&server).await?;
    for repository in ["html", "proxy", "forbidden"] {
        let referrers = client.list_referrers(repository, &subject()).await?;
        assert_eq!(referrers.listed, Listed::Nothing, "{repository}");
        let tag = format!(
            "GET /v2/{repository}/manifests/{}",
            fallback_tag(&subject())
        );
        assert!(
            server.lines().contains(&tag),
            "{repository}: {:?}",
            server.lines()
        );
    }
    assert!(client.list_referrers("denied", &subject()).await.is_err());
    Ok(())
}

#[tokio::test]
async fn the_listing_follows_link_pages() -> anyhow::Result<()> {
    let page = |n: u8| {
        json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": format!("sha256:{}", hex::encode([n; 32])), "size": 1}
        ]})
        .to_string()
    };
    let server = TestServer::start(move |request: &Request, _: &str| {
        let reply = Reply::status(200).header("content-type", INDEX_MEDIA_TYPE);
        match request.target.as_str() {
            "/v2/" => Reply::status(200),
            t if t.ends_with("?next=2") => reply.body(page(2)),
            t if t.contains("/referrers/") => reply
                .header(
                    "link",
                    format!(r#"<{}?next=2>; rel="next""#, request.path()),
                )
                .body(page(1)),
            _ => Reply::status(404),
        }
    })
    .await?;
    let referrers = client(&server)
        .await?
        .list_referrers("app", &subject())
        .await?;
    assert_eq!(referrers.listed, Listed::Api);
    assert_eq!(referrers.descriptors.len(), 2);
    Ok(())
}

/// A source without the API whose referrers tag lists one signature (and one manifest
/// whose subject is another image); `(store, signature digest)`.
fn source_with_a_signature() -> (Store, String) {
    let store = store();
    let (raw, digest) = signature(&subject(), 1);
    put(&store, &format!("src@{digest}"), OCI_MANIFEST, &raw);
    let (other, other_digest) = signature(&format!("sha256:{}", "6".repeat(64)), 3);
    put(&store, &format!("src@{other_digest}"), OCI_MANIFEST, &other);
    let index = json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": raw.len(), "artifactType": SIG_TYPE},
        {"mediaType": OCI_MANIFEST, "digest": other_digest, "size": other.len(), "artifactType": SIG_TYPE},
    ]});
    put(
        &store,
        &format!("src@{}", fallback_tag(&subject())),
        INDEX_MEDIA_TYPE,
        index.to_string().as_bytes(),
    );
    (store, digest)
}

#[tokio::test]
async fn a_put_answered_with_oci_subject_leaves_the_tag_alone() -> anyhow::Result<()> {
    let (source_store, digest) = source_with_a_signature();
    let source = TestServer::start(registry(source_store, false)).await?;
    let target_store = store();
    let target = TestServer::start(registry(Arc::clone(&target_store), true)).await?;
    let scratch = tempfile::tempdir()?;
    let (from, to) = (client(&source).await?, client(&target).await?);
    let copied = copy_referrers(&copying(&from, &to, &subject(), scratch.path())).await?;
    assert_eq!(copied.copied, 1);
    assert_eq!(copied.tagged, 0);
    assert_eq!(copied.skipped.len(), 1, "{copied:?}");
    assert!(
        copied.skipped[0].contains("its subject is sha256:666"),
        "{copied:?}"
    );
    assert!(
        target
            .lines()
            .contains(&format!("PUT /v2/dst/manifests/{digest}")),
        "{:?}",
        target.lines()
    );
    assert!(!asked_for_tag(&target, &subject()), "{:?}", target.lines());
    assert_eq!(
        get(&target_store, &format!("dst@{digest}")),
        Some(signature(&subject(), 1).0)
    );
    Ok(())
}

#[tokio::test]
async fn without_oci_subject_the_copy_adds_to_the_tag_once() -> anyhow::Result<()> {
    let (source_store, digest) = source_with_a_signature();
    let source = TestServer::start(registry(source_store, false)).await?;
    let target_store = store();
    // The target's tag lists a referrer of its own already.
    let (theirs, their_digest) = signature(&subject(), 7);
    let tag = fallback_tag(&subject());
    let index = json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": their_digest, "size": theirs.len()}
    ]});
    put(
        &target_store,
        &format!("dst@{tag}"),
        INDEX_MEDIA_TYPE,
        index.to_string().as_bytes(),
    );
    let target = TestServer::start(registry(Arc::clone(&target_store), false)).await?;
    let scratch = tempfile::tempdir()?;
    let (source, target_client) = (client(&source).await?, client(&target).await?);
    let image = subject();
    let copying = copying(&source, &target_client, &image, scratch.path());
    let copy = || copy_referrers(&copying);
    let copied = copy().await?;
    assert_eq!((copied.copied, copied.tagged), (1, 1), "{copied:?}");
    let tagged = get(&target_store, &format!("dst@{tag}")).unwrap_or_default();
    assert_eq!(digests(&tagged), vec![their_digest.clone(), digest.clone()]);
    let listed: Value = serde_json::from_slice(&tagged)?;
    assert_eq!(listed["manifests"][1]["artifactType"], SIG_TYPE);
    // Again: the referrer is put again, the tag is not (nothing new for it).
    let tag_puts = || {
        target
            .lines()
            .iter()
            .filter(|l| **l == format!("PUT /v2/dst/manifests/{tag}"))
            .count()
    };
    assert_eq!(tag_puts(), 1);
    let again: Copied = copy().await?;
    assert_eq!(again.copied, 1);
    assert_eq!(tag_puts(), 1);
    let tagged = get(&target_store, &format!("dst@{tag}")).unwrap_or_default();
    assert_eq!(digests(&tagged), vec![their_digest, digest]);
    Ok(())
}

#[tokio::test]
async fn an_index_referrer_is_copied_with_its_manifests_a_nested_one_is_skipped(
) -> anyhow::Result<()> {
    let source_store = store();
    // An index referring to the image, listing a manifest (whose own subject is not needed).
    let (child, child_digest) = signature(&format!("sha256:{}", "7".repeat(64)), 1);
    put(
        &source_store,
        &format!("src@{child_digest}"),
        OCI_MANIFEST,
        &child,
    );
    let index = |manifests: Value| {
        let raw = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "artifactType": "application/example",
            "manifests": manifests,
            "subject": {"mediaType": OCI_MANIFEST, "size": 418, "digest": subject()},
        })
        .to_string()
        .into_bytes();
        let digest = crate::digest::sha256(&raw);
        (raw, digest)
    };
    let entry = |raw: &[u8], digest: &str, media_type: &str| json!({"mediaType": media_type, "digest": digest, "size": raw.len()});
    let (flat, flat_digest) = index(json!([entry(&child, &child_digest, OCI_MANIFEST)]));
    put(
        &source_store,
        &format!("src@{flat_digest}"),
        INDEX_MEDIA_TYPE,
        &flat,
    );
    // An index whose manifest is an index again.
    let (inner, inner_digest) = index(json!([]));
    put(
        &source_store,
        &format!("src@{inner_digest}"),
        INDEX_MEDIA_TYPE,
        &inner,
    );
    let (nested, nested_digest) = index(json!([entry(&inner, &inner_digest, INDEX_MEDIA_TYPE)]));
    put(
        &source_store,
        &format!("src@{nested_digest}"),
        INDEX_MEDIA_TYPE,
        &nested,
    );
    let source = TestServer::start(registry(source_store, true)).await?;
    let target_store = store();
    let target = TestServer::start(registry(Arc::clone(&target_store), false)).await?;
    let scratch = tempfile::tempdir()?;
    let (from, to) = (client(&source).await?, client(&target).await?);
    let copied = copy_referrers(&copying(&from, &to, &subject(), scratch.path())).await?;
    // The source's API lists the three indexes (`inner` refers to the image too).
    assert_eq!(copied.copied, 2, "{copied:?}");
    assert_eq!(copied.skipped.len(), 1, "{copied:?}");
    assert!(copied.skipped[0].contains(&nested_digest), "{copied:?}");
    assert!(copied.skipped[0].contains("an index again"), "{copied:?}");
    let lines = target.lines();
    let child_put = lines
        .iter()
        .position(|l| *l == format!("PUT /v2/dst/manifests/{child_digest}"));
    let index_put = lines
        .iter()
        .position(|l| *l == format!("PUT /v2/dst/manifests/{flat_digest}"));
    assert!(child_put.is_some() && child_put < index_put, "{lines:?}");
    assert_eq!(
        get(&target_store, &format!("dst@{flat_digest}")),
        Some(flat)
    );
    let tagged =
        get(&target_store, &format!("dst@{}", fallback_tag(&subject()))).unwrap_or_default();
    let mut listed = digests(&tagged);
    listed.sort();
    let mut expected = vec![flat_digest, inner_digest];
    expected.sort();
    assert_eq!(listed, expected);
    let listed: Value = serde_json::from_slice(&tagged)?;
    assert_eq!(
        listed["manifests"][0]["artifactType"],
        "application/example"
    );
    Ok(())
}
