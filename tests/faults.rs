//! Faults survived (or reported in time) by `in` and `check`, proven against a real
//! registry behind the fault-injecting front (`util::faults`): a blob connection cut
//! mid-way (resumed with `Range`, or restarted when the registry ignores `Range`), a
//! registry that stalls (an error naming it within the stall bound), a burst of 429s with
//! `Retry-After` on the `/v2/` probe, 500s on the manifest GET. After a failure that ends the
//! command, nothing complete-looking and no temp files are left. Timeouts and the retry
//! budget are lowered through their environment variables.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::get::{assert_nothing_complete, registry_with, Fetch};
use crate::util::faults::{Fault, FaultFront, Seen};
use crate::util::image::random_bytes;
use crate::util::*;

pub(crate) const MIB: usize = 1 << 20;

/// An image with one incompressible layer of `bytes` (at `data/random.bin`).
pub(crate) fn one_layer_image(bytes: &[u8]) -> Image {
    ImageBuilder::new()
        .layer(LayerBuilder::new().file("data/random.bin", bytes))
        .build()
}

/// Lowered timeouts and budget, and `TMPDIR` pointed at `tmp` (to find leftovers).
pub(crate) fn fault_env(tmp: &Path, stall: &str, budget: &str) -> Vec<(String, String)> {
    vec![
        ("IMAGE_RESOURCE_STALL_TIMEOUT".into(), stall.into()),
        ("IMAGE_RESOURCE_CONNECT_TIMEOUT".into(), "2".into()),
        ("IMAGE_RESOURCE_RETRY_BUDGET".into(), budget.into()),
        ("TMPDIR".into(), tmp.display().to_string()),
    ]
}

/// Runs `in` for `digest` into a fresh dest with `env`.
pub(crate) fn get_with_env(source: &Value, digest: &str, env: &[(String, String)]) -> Fetch {
    let tmp = tempfile::Builder::new()
        .prefix("in-")
        .tempdir()
        .expect("temp dir");
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).expect("creating dest");
    let request = json!({ "source": source, "version": { "digest": digest }, "params": {} });
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = run_with_env(
        "in",
        &[dest.to_str().expect("UTF-8 temp path")],
        &env,
        request.to_string().as_bytes(),
    );
    Fetch { tmp, dest, out }
}

/// Runs `check` with `env`.
fn check_with_env(source: &Value, env: &[(String, String)]) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_with_env(
        "check",
        &[],
        &env,
        json!({ "source": source }).to_string().as_bytes(),
    )
}

/// Asserts `dir` is empty (no temp files left behind).
pub(crate) fn assert_empty(dir: &Path, out: &Output) {
    let left = crate::util::tree::names_in(dir);
    assert!(
        left.is_empty(),
        "{} still holds {left:?}; stderr:\n{}",
        dir.display(),
        out.stderr
    );
}

/// The requests for blob `digest`, in order.
pub(crate) fn blob_gets(front: &FaultFront, digest: &str) -> Vec<Seen> {
    front
        .seen()
        .into_iter()
        .filter(|r| r.is_blob_get(digest))
        .collect()
}

/// The start of a `Range: bytes=N-` header.
pub(crate) fn range_start(request: &Seen) -> Option<u64> {
    request
        .header("range")?
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

/// A front failing the first `count` requests matching `matches` with `fault`.
fn front_failing_first(
    upstream: String,
    count: usize,
    matches: impl Fn(&Seen) -> bool + Send + Sync + 'static,
    fault: Fault,
) -> FaultFront {
    let left = AtomicUsize::new(count);
    FaultFront::start(upstream, move |request| {
        if matches(request)
            && left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            fault.clone()
        } else {
            Fault::Forward
        }
    })
}

#[test]
fn a_blob_cut_mid_way_is_resumed_with_range() {
    let data = random_bytes(3 * MIB);
    let image = one_layer_image(&data);
    let (registry, digest) = registry_with(&image, "faults/cut");
    let layer = image.layers[0].digest.clone();
    let matching = layer.clone();
    let front = front_failing_first(
        registry.host(),
        1,
        move |r| r.is_blob_get(&matching),
        Fault::CutAfter(MIB),
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let source = json!({ "repository": format!("{}/faults/cut", front.host()) });
    let fetch = get_with_env(&source, &digest, &fault_env(tmp.path(), "5", "30"));
    assert_eq!(fetch.response()["version"]["digest"], json!(digest));
    let file = std::fs::read(fetch.rootfs().join("data/random.bin")).expect("layer file");
    assert!(file == data, "the resumed layer's file differs");
    let gets = blob_gets(&front, &layer);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(range_start(&gets[0]), None, "{gets:?}");
    let resumed_at = range_start(&gets[1]).unwrap_or_else(|| panic!("no Range: {gets:?}"));
    assert!(
        resumed_at > 0 && resumed_at < image.layers[0].size,
        "resumed at {resumed_at}"
    );
    assert!(
        fetch.out.stderr.contains("retrying the download of blob"),
        "{}",
        fetch.out.stderr
    );
    assert_empty(tmp.path(), &fetch.out);
}

#[test]
fn a_cut_blob_starts_again_when_the_registry_ignores_range() {
    let data = random_bytes(2 * MIB);
    let image = one_layer_image(&data);
    let (registry, digest) = registry_with(&image, "faults/norange");
    let layer = image.layers[0].digest.clone();
    let matching = layer.clone();
    let cut = AtomicUsize::new(0);
    let front = FaultFront::start(registry.host(), move |r| {
        if !r.is_blob_get(&matching) {
            Fault::Forward
        } else if cut.fetch_add(1, Ordering::SeqCst) == 0 {
            Fault::CutAfter(MIB)
        } else {
            // A registry without Range support: the request reaches it without the header.
            Fault::ForwardWithout("range".into())
        }
    });
    let tmp = tempfile::tempdir().expect("temp dir");
    let source = json!({ "repository": format!("{}/faults/norange", front.host()) });
    let fetch = get_with_env(&source, &digest, &fault_env(tmp.path(), "5", "30"));
    assert_eq!(fetch.response()["version"]["digest"], json!(digest));
    let file = std::fs::read(fetch.rootfs().join("data/random.bin")).expect("layer file");
    assert!(file == data, "the restarted layer's file differs");
    assert!(
        fetch.out.stderr.contains("does not resume downloads"),
        "{}",
        fetch.out.stderr
    );
    assert_eq!(blob_gets(&front, &layer).len(), 2);
}

#[test]
fn a_stalled_blob_is_an_error_naming_the_registry_within_the_bound() {
    let image = one_layer_image(&random_bytes(MIB));
    let (registry, digest) = registry_with(&image, "faults/stall");
    let layer = image.layers[0].digest.clone();
    // Every try stalls after 200 KB: the command must give up, not hang.
    let front = FaultFront::start(registry.host(), move |r| {
        if r.is_blob_get(&layer) {
            Fault::StallAfter(200 << 10)
        } else {
            Fault::Forward
        }
    });
    let tmp = tempfile::tempdir().expect("temp dir");
    let source = json!({ "repository": format!("{}/faults/stall", front.host()) });
    let started = Instant::now();
    let fetch = get_with_env(&source, &digest, &fault_env(tmp.path(), "1", "4"));
    let elapsed = started.elapsed();
    let stderr = fetch.out.expect_failure();
    assert!(
        stderr.contains(&format!("registry {} sent nothing for 1 s", front.host())),
        "{stderr}"
    );
    assert!(stderr.contains("IMAGE_RESOURCE_STALL_TIMEOUT"), "{stderr}");
    // Budget 4 s, plus the try in flight (1 s stall) and start-up.
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    assert_nothing_complete(&fetch.dest, &fetch.out);
    assert_empty(&fetch.dest, &fetch.out);
    assert_empty(tmp.path(), &fetch.out);
}

#[test]
fn a_registry_that_accepts_and_says_nothing_fails_check_in_time() {
    let registry = Registry::start(RegistryConfig::new());
    let front = FaultFront::start(registry.host(), |_| Fault::StallAfter(0));
    let tmp = tempfile::tempdir().expect("temp dir");
    let source = json!({ "repository": format!("{}/faults/silent", front.host()), "tag": "1" });
    let started = Instant::now();
    let out = check_with_env(&source, &fault_env(tmp.path(), "1", "3"));
    let elapsed = started.elapsed();
    let stderr = out.expect_failure();
    assert!(
        stderr.contains(&format!("registry {} sent nothing for 1 s", front.host())),
        "{stderr}"
    );
    assert!(elapsed < Duration::from_secs(12), "took {elapsed:?}");
    assert_eq!(out.stdout.trim(), "", "no versions on failure");
}

#[test]
fn a_burst_of_429s_on_the_probe_is_waited_out() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(1, 1024);
    push(&registry, &image, "faults/busy:1");
    let front = front_failing_first(
        registry.host(),
        3,
        |r| r.target == "/v2/",
        Fault::Respond(
            "429 Too Many Requests".into(),
            vec!["Retry-After: 1".into()],
        ),
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let source = json!({ "repository": format!("{}/faults/busy", front.host()), "tag": "1" });
    let started = Instant::now();
    let out = check_with_env(&source, &fault_env(tmp.path(), "5", "30"));
    let versions = out.expect_success();
    assert_eq!(
        versions[0]["digest"],
        json!(skopeo_raw_digest(&registry, "faults/busy:1"))
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(
        out.stderr.contains("retrying the /v2/ probe"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("HTTP 429"), "{}", out.stderr);
    assert!(!out.stderr.contains("TLS"), "{}", out.stderr);
}

#[test]
fn server_errors_on_the_manifest_get_are_retried() {
    let image = random_image(2, 4096);
    let (registry, digest) = registry_with(&image, "faults/manifest");
    let front = front_failing_first(
        registry.host(),
        2,
        |r| r.method == "GET" && r.target.contains("/manifests/"),
        Fault::Respond("500 Internal Server Error".into(), Vec::new()),
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let source = json!({ "repository": format!("{}/faults/manifest", front.host()) });
    let fetch = get_with_env(&source, &digest, &fault_env(tmp.path(), "5", "30"));
    assert_eq!(fetch.response()["version"]["digest"], json!(digest));
    assert!(
        fetch.out.stderr.contains("HTTP 500"),
        "{}",
        fetch.out.stderr
    );
    let manifest_gets = front
        .seen()
        .iter()
        .filter(|r| r.method == "GET" && r.target.contains("/manifests/"))
        .count();
    assert_eq!(manifest_gets, 3);
}

/// A front answering requests that match `matches` with a head claiming 100 MiB and 1 KiB
/// of it, then silence: only a client that refuses by `Content-Length` ends quickly.
fn front_claiming_huge(
    upstream: String,
    matches: impl Fn(&Seen) -> bool + Send + Sync + 'static,
    content_type: &str,
) -> FaultFront {
    let content_type = content_type.to_string();
    FaultFront::start(upstream, move |request| {
        if matches(request) {
            Fault::RespondThenStall(
                "200 OK".into(),
                vec![
                    format!("Content-Length: {}", 100 * MIB),
                    format!("Content-Type: {content_type}"),
                ],
                vec![b' '; 1024],
            )
        } else {
            Fault::Forward
        }
    })
}

#[test]
fn oversized_manifests_and_configs_are_refused_before_they_are_read() {
    let image = random_image(1, 1024);
    let (registry, digest) = registry_with(&image, "faults/huge");
    let config = image.config_digest.clone();
    let cases: Vec<(&str, FaultFront)> = vec![
        (
            "manifest",
            front_claiming_huge(
                registry.host(),
                |r| r.method == "GET" && r.target.contains("/manifests/"),
                "application/vnd.oci.image.manifest.v1+json",
            ),
        ),
        (
            "blob",
            front_claiming_huge(
                registry.host(),
                move |r| r.is_blob_get(&config),
                "application/octet-stream",
            ),
        ),
    ];
    for (what, front) in cases {
        let tmp = tempfile::tempdir().expect("temp dir");
        let source = json!({ "repository": format!("{}/faults/huge", front.host()) });
        let started = Instant::now();
        // A stall timeout longer than the test allows: reading on would fail the bound.
        let fetch = get_with_env(&source, &digest, &fault_env(tmp.path(), "30", "30"));
        let stderr = fetch.out.expect_failure();
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: took {:?}",
            started.elapsed()
        );
        let expected = match what {
            "manifest" => "larger than 4194304 bytes: refused".to_string(),
            _ => "more than".to_string(),
        };
        assert!(stderr.contains(&expected), "{what}: {stderr}");
        assert_nothing_complete(&fetch.dest, &fetch.out);
        assert_empty(tmp.path(), &fetch.out);
    }
}

#[test]
fn an_oversized_token_response_is_refused_before_it_is_read() {
    let tokens = TokenServer::start(TokenConfig::new().user("big", "tokens"));
    let front = front_claiming_huge(tokens.host(), |_| true, "application/json");
    let registry = Registry::start(
        RegistryConfig::new()
            .token(&tokens)
            .token_realm(&format!("http://{}/token", front.host())),
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut source = crate::get::source_for(&registry, "faults/token");
    source["tag"] = json!("1");
    let started = Instant::now();
    let out = check_with_env(&source, &fault_env(tmp.path(), "30", "30"));
    let stderr = out.expect_failure();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        stderr.contains("a token response larger than 1048576 bytes: refused"),
        "{stderr}"
    );
}
