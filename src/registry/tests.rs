//! The registry client against the in-process [`TestServer`]: the `/v2/` probe and auth
//! flows, manifests and their digest checks, tag pagination, blob downloads and uploads, and
//! retries. What needs a real registry is in the integration tests.

use super::auth::Credentials;
use super::retry::RetryPolicy;
use super::test_server::{Reply, Request, TestServer};
use super::transport::TransportOptions;
use super::upload::Mount;
use super::{Client, Error};
use crate::secret::Secret;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MANIFEST: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Fast retries, so that tests of them take milliseconds.
fn options(tries: u32) -> TransportOptions {
    TransportOptions {
        retry: RetryPolicy {
            tries,
            base: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_retry_after: Duration::from_millis(5),
            budget: Duration::from_secs(10),
        },
        ..TransportOptions::default()
    }
}

async fn client(server: &TestServer, credentials: Option<Credentials>) -> anyhow::Result<Client> {
    Ok(Client::new(&server.host(), credentials, &options(3)).await?)
}

/// `/v2/` open to everyone.
fn open_probe(request: &Request) -> Option<Reply> {
    (request.path() == "/v2/").then(|| Reply::status(200))
}

/// A registry whose `/v2/` asks for a Bearer token from its own `/token`, which hands out
/// `token-N` (N counting from 1) and checks nothing; other paths go to `rest`, which gets
/// the `Authorization` header.
fn bearer(
    rest: impl Fn(&Request, Option<&str>) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Request, &str) -> Reply + Send + Sync + 'static {
    let issued = AtomicUsize::new(0);
    move |request, host| match request.path() {
        "/v2/" => Reply::status(401).header(
            "www-authenticate",
            format!(r#"Bearer realm="http://{host}/token",service="test-registry""#),
        ),
        "/token" => {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::json(&serde_json::json!({"token": format!("token-{n}")}))
        }
        _ => rest(request, request.header("authorization")),
    }
}

fn manifest_reply(body: &[u8]) -> Reply {
    Reply::status(200)
        .header("content-type", OCI_MANIFEST)
        .body(body.to_vec())
}

#[tokio::test]
async fn probe_picks_plain_http_on_loopback() -> anyhow::Result<()> {
    let server =
        TestServer::start(|request, _| open_probe(request).unwrap_or(Reply::status(404))).await?;
    let client = client(&server, None).await?;
    assert_eq!(
        client.base_url().await?,
        format!("http://{}", server.host())
    );
    // Once: the base is remembered.
    client.base_url().await?;
    assert_eq!(server.lines(), ["GET /v2/"]);
    Ok(())
}

#[tokio::test]
async fn probe_retries_a_busy_registry() -> anyhow::Result<()> {
    let calls = AtomicUsize::new(0);
    let server = TestServer::start(move |_, _| match calls.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::status(503),
        _ => Reply::status(200),
    })
    .await?;
    let client = client(&server, None).await?;
    client.ping().await?;
    assert_eq!(server.lines(), ["GET /v2/", "GET /v2/"]);
    Ok(())
}

#[tokio::test]
async fn bearer_token_is_fetched_with_scope_and_service_and_cached() -> anyhow::Result<()> {
    let server = TestServer::start(bearer(|request, authorization| {
        match (request.path(), authorization) {
            ("/v2/team/app/manifests/1.0", Some("Bearer token-1")) => Reply::status(200)
                .header("content-type", OCI_MANIFEST)
                .header("docker-content-digest", crate::digest::sha256(MANIFEST))
                .header("content-length", MANIFEST.len().to_string()),
            _ => Reply::status(401),
        }
    }))
    .await?;
    let client = client(&server, None).await?;
    for _ in 0..2 {
        let found = client.head_manifest("team/app", "1.0").await?;
        assert_eq!(
            found.map(|d| d.digest.to_string()),
            Some(crate::digest::sha256(MANIFEST))
        );
    }
    let tokens: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/token")
        .collect();
    assert_eq!(tokens.len(), 1, "the token is cached: {:?}", server.lines());
    assert_eq!(
        tokens[0].target,
        "/token?service=test-registry&scope=repository%3Ateam%2Fapp%3Apull"
    );
    assert_eq!(tokens[0].header("authorization"), None, "anonymous");
    Ok(())
}

#[tokio::test]
async fn bearer_token_request_carries_basic_credentials() -> anyhow::Result<()> {
    let server = TestServer::start(bearer(|_, _| Reply::status(404))).await?;
    let credentials = Credentials::basic("ci", Secret::new("hunter2".to_string()));
    let client = client(&server, Some(credentials)).await?;
    assert_eq!(client.head_manifest("app", "latest").await?, None);
    let token = server
        .requests()
        .into_iter()
        .find(|r| r.path() == "/token")
        .ok_or_else(|| anyhow::anyhow!("no token request"))?;
    // base64("ci:hunter2")
    assert_eq!(
        token.header("authorization"),
        Some("Basic Y2k6aHVudGVyMg==")
    );
    Ok(())
}

#[tokio::test]
async fn a_401_refreshes_the_token_once() -> anyhow::Result<()> {
    let server = TestServer::start(bearer(|_, authorization| match authorization {
        Some("Bearer token-2") => manifest_reply(MANIFEST),
        _ => Reply::status(401),
    }))
    .await?;
    let client = client(&server, None).await?;
    let found = client.get_manifest("app", "latest").await?;
    assert_eq!(found.map(|(_, body)| body), Some(MANIFEST.to_vec()));
    let tokens = server
        .lines()
        .iter()
        .filter(|l| l.starts_with("GET /token"))
        .count();
    assert_eq!(tokens, 2, "{:?}", server.lines());
    Ok(())
}

#[tokio::test]
async fn a_refused_token_is_unauthorized_naming_the_token_server() -> anyhow::Result<()> {
    let server = TestServer::start(|request, host| match request.path() {
        "/v2/" => Reply::status(401).header(
            "www-authenticate",
            format!(r#"Bearer realm="http://{host}/token""#),
        ),
        _ => Reply::status(401).body(r#"{"errors":[{"code":"DENIED","message":"no such user"}]}"#),
    })
    .await?;
    let client = client(&server, None).await?;
    let e = client.head_manifest("app", "latest").await;
    match e {
        Err(Error::Unauthorized { detail, .. }) => {
            assert!(detail.contains("token server http://127.0.0.1"), "{detail}");
            assert!(detail.contains("no such user"), "{detail}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn basic_challenge_sends_basic_credentials() -> anyhow::Result<()> {
    let server =
        TestServer::start(
            |request, _| match (request.path(), request.header("authorization")) {
                ("/v2/", _) => Reply::status(401).header("www-authenticate", r#"Basic realm="r""#),
                (_, Some("Basic Y2k6aHVudGVyMg==")) => manifest_reply(MANIFEST),
                _ => Reply::status(401),
            },
        )
        .await?;
    let credentials = Credentials::basic("ci", Secret::new("hunter2".to_string()));
    let client = client(&server, Some(credentials)).await?;
    assert!(client.get_manifest("app", "latest").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn manifest_by_tag_is_hashed_and_checked_against_the_claimed_digest() -> anyhow::Result<()> {
    let server = TestServer::start(|request, _| {
        open_probe(request).unwrap_or_else(|| match request.path() {
            "/v2/app/manifests/good" => manifest_reply(MANIFEST)
                .header("docker-content-digest", crate::digest::sha256(MANIFEST)),
            "/v2/app/manifests/lying" => manifest_reply(MANIFEST)
                .header("docker-content-digest", crate::digest::sha256(b"other")),
            _ => Reply::status(404),
        })
    })
    .await?;
    let client = client(&server, None).await?;
    let good = client.get_manifest("app", "good").await?;
    let (descriptor, body) = good.ok_or_else(|| anyhow::anyhow!("missing"))?;
    assert_eq!(descriptor.digest, crate::digest::sha256(MANIFEST));
    assert_eq!(descriptor.media_type, OCI_MANIFEST);
    assert_eq!(descriptor.size, MANIFEST.len() as u64);
    assert_eq!(body, MANIFEST);
    assert!(matches!(
        client.get_manifest("app", "lying").await,
        Err(Error::DigestMismatch { .. })
    ));
    assert_eq!(client.get_manifest("app", "missing").await?, None);
    Ok(())
}

#[tokio::test]
async fn manifest_by_digest_refuses_a_body_of_another_digest() -> anyhow::Result<()> {
    let wanted = crate::digest::sha256(MANIFEST);
    let server = TestServer::start(|request, _| {
        open_probe(request).unwrap_or_else(|| manifest_reply(b"{\"tampered\":true}"))
    })
    .await?;
    let client = client(&server, None).await?;
    match client.get_manifest("app", &wanted).await {
        Err(Error::DigestMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, wanted);
            assert_eq!(actual, crate::digest::sha256(b"{\"tampered\":true}"));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    // An algorithm we cannot verify is refused before any request.
    let requests = server.requests().len();
    let sha1 = format!("sha1:{}", "a".repeat(40));
    assert!(client.get_manifest("app", &sha1).await.is_err());
    assert_eq!(server.requests().len(), requests);
    Ok(())
}

#[tokio::test]
async fn head_without_a_digest_header_falls_back_to_get() -> anyhow::Result<()> {
    let server = TestServer::start(|request, _| {
        open_probe(request).unwrap_or_else(|| manifest_reply(MANIFEST))
    })
    .await?;
    let client = client(&server, None).await?;
    let found = client.head_manifest("app", "1").await?;
    assert_eq!(
        found.map(|d| (d.digest.to_string(), d.size)),
        Some((crate::digest::sha256(MANIFEST), MANIFEST.len() as u64))
    );
    assert_eq!(
        server.lines(),
        [
            "GET /v2/",
            "HEAD /v2/app/manifests/1",
            "GET /v2/app/manifests/1"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn tag_listing_follows_link_pages() -> anyhow::Result<()> {
    let server = TestServer::start(|request, _| {
        open_probe(request).unwrap_or_else(|| match request.target.as_str() {
            "/v2/app/tags/list?n=1000" => Reply::json(&serde_json::json!({"tags": ["1", "2"]}))
                .header("link", r#"</v2/app/tags/list?n=1000&last=2>; rel="next""#),
            "/v2/app/tags/list?n=1000&last=2" => {
                Reply::json(&serde_json::json!({"name": "app", "tags": ["3"]}))
            }
            _ => Reply::status(404),
        })
    })
    .await?;
    let client = client(&server, None).await?;
    assert_eq!(client.list_tags("app").await?, ["1", "2", "3"]);
    assert_eq!(client.list_tags("missing").await?, Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn a_503_is_retried_until_it_answers() -> anyhow::Result<()> {
    let calls = AtomicUsize::new(0);
    let server = TestServer::start(move |request, _| {
        open_probe(request).unwrap_or_else(|| match calls.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Reply::status(503).header("retry-after", "0"),
            _ => Reply::json(&serde_json::json!({"tags": ["1"]})),
        })
    })
    .await?;
    let client = client(&server, None).await?;
    assert_eq!(client.list_tags("app").await?, ["1"]);
    assert_eq!(server.requests().len(), 4, "{:?}", server.lines());
    Ok(())
}

/// Retry notes go to the log given in the options (the command's), not to stderr.
#[tokio::test]
async fn retry_notes_go_to_the_options_log() -> anyhow::Result<()> {
    let calls = AtomicUsize::new(0);
    let server = TestServer::start(move |request, _| {
        open_probe(request).unwrap_or_else(|| match calls.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::status(503).header("retry-after", "0"),
            _ => Reply::json(&serde_json::json!({"tags": ["1"]})),
        })
    })
    .await?;
    let (log, captured) = crate::log::Captured::log();
    let options = TransportOptions { log, ..options(3) };
    let client = Client::new(&server.host(), None, &options).await?;
    assert_eq!(client.list_tags("app").await?, ["1"]);
    let text = captured.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].starts_with("retrying "), "{text}");
    assert!(
        lines[0].contains("(try 2 of 3) after: ") && lines[0].contains("503"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_lasting_503_is_an_error_after_the_tries() -> anyhow::Result<()> {
    let server = TestServer::start(|request, _| {
        open_probe(request).unwrap_or_else(|| Reply::status(503).body("down for maintenance"))
    })
    .await?;
    let client = client(&server, None).await?;
    match client.list_tags("app").await {
        Err(Error::Status {
            status,
            diagnostics,
            ..
        }) => {
            assert_eq!(status, 503);
            assert!(
                diagnostics.contains("down for maintenance"),
                "{diagnostics}"
            );
        }
        other => panic!("expected a 503 error, got {other:?}"),
    }
    // 3 tries in all (the policy), after the probe.
    assert_eq!(server.requests().len(), 4, "{:?}", server.lines());
    Ok(())
}

#[tokio::test]
async fn a_404_is_not_retried() -> anyhow::Result<()> {
    let server =
        TestServer::start(|request, _| open_probe(request).unwrap_or(Reply::status(404))).await?;
    let client = client(&server, None).await?;
    assert_eq!(client.head_manifest("app", "1").await?, None);
    assert_eq!(server.requests().len(), 2, "{:?}", server.lines());
    Ok(())
}

#[tokio::test]
async fn blob_download_is_digest_checked_and_removed_when_wrong() -> anyhow::Result<()> {
    let blob = b"layer bytes".to_vec();
    let digest = crate::digest::Digest::sha256_of(&blob);
    let served = blob.clone();
    let server = TestServer::start(move |request, _| {
        open_probe(request).unwrap_or_else(|| match request.path() {
            p if p.starts_with("/v2/good/blobs/") => Reply::status(200).body(served.clone()),
            _ => Reply::status(200).body(b"evil bytes!".to_vec()),
        })
    })
    .await?;
    let client = client(&server, None).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("blob");
    let progress = AtomicU64::new(0);
    client
        .fetch_blob_to_file("good", &digest, blob.len() as u64, &path, &progress)
        .await?;
    assert_eq!(std::fs::read(&path)?, blob);
    assert_eq!(progress.load(Ordering::Relaxed), blob.len() as u64);
    let bad = client
        .fetch_blob_to_file("bad", &digest, blob.len() as u64, &path, &progress)
        .await;
    assert!(matches!(bad, Err(Error::DigestMismatch { .. })), "{bad:?}");
    assert!(!path.exists(), "a wrong blob is removed");
    Ok(())
}

#[tokio::test]
async fn small_blob_is_digest_checked() -> anyhow::Result<()> {
    let config = br#"{"architecture":"amd64"}"#.to_vec();
    let digest = crate::digest::Digest::sha256_of(&config);
    let served = config.clone();
    let server = TestServer::start(move |request, _| {
        open_probe(request).unwrap_or_else(|| match request.path() {
            p if p.starts_with("/v2/good/") => Reply::status(200).body(served.clone()),
            _ => Reply::status(200).body(br#"{"architecture":"arm64"}"#.to_vec()),
        })
    })
    .await?;
    let client = client(&server, None).await?;
    let size = config.len() as u64;
    assert_eq!(
        client.fetch_small_blob("good", &digest, size).await?,
        config
    );
    assert!(matches!(
        client.fetch_small_blob("bad", &digest, size).await,
        Err(Error::DigestMismatch { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn blob_exists_and_mount_read_their_statuses() -> anyhow::Result<()> {
    let digest = crate::digest::Digest::sha256_of(b"x");
    let server = TestServer::start(|request, _| {
        open_probe(request).unwrap_or_else(|| match (request.method.as_str(), request.path()) {
            ("HEAD", "/v2/here/blobs/sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881") => Reply::status(200),
            ("POST", "/v2/here/blobs/uploads/") => Reply::status(201),
            ("POST", "/v2/elsewhere/blobs/uploads/") => {
                Reply::status(202).header("location", "/v2/elsewhere/blobs/uploads/session-1")
            }
            _ => Reply::status(404),
        })
    })
    .await?;
    let client = client(&server, None).await?;
    assert!(client.blob_exists("here", &digest).await?);
    assert!(!client.blob_exists("gone", &digest).await?);
    assert_eq!(
        client.mount_blob("here", &digest, "base").await?,
        Mount::Mounted
    );
    assert_eq!(
        client.mount_blob("elsewhere", &digest, "base").await?,
        Mount::NotMounted(format!(
            "http://{}/v2/elsewhere/blobs/uploads/session-1",
            server.host()
        ))
    );
    let mount = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .ok_or_else(|| anyhow::anyhow!("no mount request"))?;
    assert_eq!(
        mount.target,
        format!(
            "/v2/here/blobs/uploads/?mount={}&from=base",
            digest.as_str().replace(':', "%3A")
        )
    );
    Ok(())
}

/// A registry taking uploads: POST opens a session (asking for chunks when `chunk_min`),
/// PATCH appends, PUT with `?digest=` ends it with 201.
fn upload_registry(chunk_min: Option<u64>) -> impl Fn(&Request, &str) -> Reply + Send + Sync {
    move |request, _| {
        open_probe(request).unwrap_or_else(|| match request.method.as_str() {
            "POST" => {
                let reply = Reply::status(202).header("location", "/upload/1?state=a");
                match chunk_min {
                    Some(min) => reply.header("oci-chunk-min-length", min.to_string()),
                    None => reply,
                }
            }
            "PATCH" => Reply::status(202).header("location", "/upload/1?state=b"),
            "PUT" if request.target.contains("digest=") => Reply::status(201),
            _ => Reply::status(400),
        })
    }
}

#[tokio::test]
async fn monolithic_upload_is_post_then_put_with_the_digest() -> anyhow::Result<()> {
    let blob = b"a layer to push".to_vec();
    let digest = crate::digest::Digest::sha256_of(&blob);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("blob");
    std::fs::write(&path, &blob)?;
    let server = TestServer::start(upload_registry(None)).await?;
    let client = client(&server, None).await?;
    let progress = Arc::new(AtomicU64::new(0));
    client
        .upload_blob(
            "app",
            &digest,
            blob.len() as u64,
            &path,
            None,
            Arc::clone(&progress),
        )
        .await?;
    let requests = server.requests();
    let lines: Vec<String> = requests.iter().map(Request::line).collect();
    let put = format!(
        "PUT /upload/1?state=a&digest={}",
        digest.as_str().replace(':', "%3A")
    );
    assert_eq!(
        lines,
        ["GET /v2/", "POST /v2/app/blobs/uploads/", put.as_str()]
    );
    assert_eq!(requests[2].body, blob);
    assert_eq!(progress.load(Ordering::Relaxed), blob.len() as u64);
    Ok(())
}

#[tokio::test]
async fn chunked_upload_patches_with_a_content_range_then_puts() -> anyhow::Result<()> {
    let blob = b"chunked layer".to_vec();
    let digest = crate::digest::Digest::sha256_of(&blob);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("blob");
    std::fs::write(&path, &blob)?;
    let server = TestServer::start(upload_registry(Some(5))).await?;
    let client = client(&server, None).await?;
    client
        .upload_blob(
            "app",
            &digest,
            blob.len() as u64,
            &path,
            None,
            Arc::default(),
        )
        .await?;
    let requests = server.requests();
    let lines: Vec<String> = requests.iter().map(Request::line).collect();
    let put = format!(
        "PUT /upload/1?state=b&digest={}",
        digest.as_str().replace(':', "%3A")
    );
    assert_eq!(
        lines,
        [
            "GET /v2/",
            "POST /v2/app/blobs/uploads/",
            "PATCH /upload/1?state=a",
            put.as_str()
        ]
    );
    assert_eq!(requests[2].body, blob);
    assert_eq!(requests[2].header("content-range"), Some("0-12"));
    assert!(requests[3].body.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_failed_upload_session_restarts_from_the_post() -> anyhow::Result<()> {
    let blob = b"retried layer".to_vec();
    let digest = crate::digest::Digest::sha256_of(&blob);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("blob");
    std::fs::write(&path, &blob)?;
    let puts = AtomicUsize::new(0);
    let registry = upload_registry(None);
    let server = TestServer::start(move |request, host| {
        if request.method == "PUT" && puts.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::status(502);
        }
        registry(request, host)
    })
    .await?;
    let client = client(&server, None).await?;
    client
        .upload_blob(
            "app",
            &digest,
            blob.len() as u64,
            &path,
            None,
            Arc::default(),
        )
        .await?;
    let methods: Vec<String> = server.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["GET", "POST", "PUT", "POST", "PUT"]);
    Ok(())
}

#[tokio::test]
async fn manifest_put_sends_its_media_type_and_bytes() -> anyhow::Result<()> {
    let server = TestServer::start(|request, _| {
        open_probe(request).unwrap_or_else(|| match request.method.as_str() {
            "PUT" => Reply::status(201),
            _ => Reply::status(405),
        })
    })
    .await?;
    let client = client(&server, None).await?;
    client
        .put_manifest("app", "1.0", OCI_MANIFEST, MANIFEST)
        .await?;
    let put = server
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .ok_or_else(|| anyhow::anyhow!("no PUT"))?;
    assert_eq!(put.target, "/v2/app/manifests/1.0");
    assert_eq!(put.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(put.body, MANIFEST);
    Ok(())
}
