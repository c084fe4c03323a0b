//! Blob redirects. Registries backed by object storage answer blob GETs with `307` to another
//! host; `in` must follow them without sending the registry's `Authorization` there. The
//! distribution registry only redirects with cloud storage drivers, so a small front in test
//! code stands before a real htpasswd registry: it forwards everything unchanged, except blob
//! GETs, which it redirects to a "storage" server on another port that serves the blob from
//! the registry's files and records the headers it was sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::json;

use crate::get::{get, source_for};
use crate::util::*;

/// Reads one HTTP/1.1 request head (these requests carry no body).
fn read_head(stream: &mut BufReader<TcpStream>) -> Option<(String, Vec<String>)> {
    let mut request_line = String::new();
    if stream.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).ok()?;
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    Some((request_line.trim_end().to_string(), headers))
}

/// The front: forwards to `upstream` (one request per connection), redirecting blob GETs to
/// `storage`.
fn start_front(upstream: String, storage: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the front");
    let address = listener.local_addr().expect("front address").to_string();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (upstream, storage) = (upstream.clone(), storage.clone());
            thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().expect("clone"));
                let mut client = client;
                let Some((line, headers)) = read_head(&mut reader) else {
                    return;
                };
                let mut parts = line.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                if method == "GET" && path.contains("/blobs/sha256:") {
                    let digest = path.rsplit('/').next().unwrap_or("");
                    let response = format!(
                        "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{storage}/storage/{digest}?sig=abc\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = client.write_all(response.as_bytes());
                    return;
                }
                let mut server = TcpStream::connect(&upstream).expect("connecting upstream");
                let mut request = format!("{line}\r\n");
                for header in headers {
                    let lower = header.to_ascii_lowercase();
                    if lower.starts_with("connection:") || lower.starts_with("host:") {
                        continue;
                    }
                    request.push_str(&header);
                    request.push_str("\r\n");
                }
                request.push_str(&format!("Host: {upstream}\r\nConnection: close\r\n\r\n"));
                server.write_all(request.as_bytes()).expect("forwarding");
                let mut response = Vec::new();
                let _ = server.read_to_end(&mut response);
                let _ = client.write_all(&response);
            });
        }
    });
    address
}

/// The storage host: serves blobs from the registry's files, recording request headers.
fn start_storage(registry_dir: std::path::PathBuf, seen: Arc<Mutex<Vec<Vec<String>>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding storage");
    let address = listener.local_addr().expect("storage address").to_string();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (registry_dir, seen) = (registry_dir.clone(), Arc::clone(&seen));
            thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().expect("clone"));
                let mut client = client;
                let Some((line, headers)) = read_head(&mut reader) else {
                    return;
                };
                seen.lock().expect("lock").push(headers);
                let digest = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.strip_prefix("/storage/"))
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
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = client.write_all(head.as_bytes());
                let _ = client.write_all(&body);
            });
        }
    });
    address
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
