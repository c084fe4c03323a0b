//! Blob redirects. Registries backed by object storage answer blob GETs with `307` to another
//! host; `in` must follow them without sending the registry's `Authorization` there. The
//! distribution registry only redirects with cloud storage drivers, so a small front in test
//! code stands before a real htpasswd registry: it forwards everything unchanged, except blob
//! GETs, which it redirects to a "storage" server on another port that serves the blob from
//! the registry's files and records the headers it was sent.

use std::io::BufReader;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::get::{get, source_for};
use crate::util::http;
use crate::util::*;

/// The front: forwards to `upstream` (one request per connection), redirecting blob GETs to
/// `storage`.
fn start_front(upstream: String, storage: String) -> String {
    http::serve("front", move |client| {
        let mut reader = BufReader::new(client.try_clone().expect("clone"));
        let mut client = client;
        let Some(head) = http::read_head(&mut reader) else {
            return;
        };
        if head.method == "GET" && head.target.contains("/blobs/sha256:") {
            let digest = head.target.rsplit('/').next().unwrap_or("");
            let location = format!("Location: http://{storage}/storage/{digest}?sig=abc");
            http::respond(&mut client, "307 Temporary Redirect", &[location], b"");
            return;
        }
        let forwarded = head.forwarded(
            |lower| !lower.starts_with("host:"),
            &[format!("Host: {upstream}")],
        );
        let answer = http::forward(&upstream, &forwarded, b"");
        let _ = client.write_all(&answer);
    })
}

/// The storage host: serves blobs from the registry's files, recording request headers.
fn start_storage(registry_dir: std::path::PathBuf, seen: Arc<Mutex<Vec<Vec<String>>>>) -> String {
    http::serve("storage", move |client| {
        let mut reader = BufReader::new(client.try_clone().expect("clone"));
        let mut client = client;
        let Some(head) = http::read_head(&mut reader) else {
            return;
        };
        seen.lock().expect("lock").push(head.headers.clone());
        let digest = head
            .target
            .strip_prefix("/storage/")
            .and_then(|p| p.split('?').next())
            .unwrap_or("")
            .to_string();
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or(&digest)
            .to_string();
        let path = registry_dir
            .join("data/docker/registry/v2/blobs/sha256")
            .join(hex.get(..2).unwrap_or(""))
            .join(&hex)
            .join("data");
        let body = std::fs::read(path).unwrap_or_default();
        let content_type = "Content-Type: application/octet-stream".to_string();
        http::respond(&mut client, "200 OK", &[content_type], &body);
    })
}

#[test]
fn blob_redirects_are_followed_without_the_registry_authorization() {
    let registry = Registry::start(RegistryConfig::new().htpasswd("user", "redirect-Pa55"));
    let image = ImageBuilder::new()
        .layer(LayerBuilder::new().file("etc/hello", b"hello from object storage\n"))
        .layer(LayerBuilder::new().file("etc/second", b"two\n"))
        .build();
    push(&registry, &image, "redirect/app:1");
    let digest = skopeo_raw_digest(&registry, "redirect/app:1");

    let seen = Arc::new(Mutex::new(Vec::new()));
    let storage = start_storage(registry.dir().to_path_buf(), Arc::clone(&seen));
    let front = start_front(registry.host(), storage);

    let mut source = source_for(&registry, "redirect/app");
    source["repository"] = json!(format!("{front}/redirect/app"));
    source["debug"] = json!(true);
    let fetch = get(&source, &digest, json!({}));
    fetch.response();
    let hello = std::fs::read_to_string(fetch.dest.join("rootfs/etc/hello")).expect("etc/hello");
    assert_eq!(hello, "hello from object storage\n");

    let seen = seen.lock().expect("lock");
    // Config and both layers came from the storage host.
    assert_eq!(seen.len(), 3, "storage requests: {seen:?}");
    for headers in seen.iter() {
        assert!(
            !headers
                .iter()
                .any(|h| h.to_ascii_lowercase().starts_with("authorization:")),
            "the registry's Authorization leaked to the storage host: {headers:?}"
        );
    }
    // The registry itself did get credentials (so the test would notice a leak).
    assert!(
        fetch.out.stderr.contains("Authorization: Basic <redacted>"),
        "{}",
        fetch.out.stderr
    );
}
