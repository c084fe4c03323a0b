//! The registry process killed (SIGKILL) and restarted on the same port and storage in the
//! middle of an `in` and of an `out`, and a token server unreachable and then back: each
//! command completes in one run with the right digest. A registry that stays down ends
//! `out` within the retry budget, with no version printed, no temp files and no tag. The
//! transfers run through the fault front throttled, so the kill lands mid-blob.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::faults::assert_empty;
use crate::faults::{blob_gets, fault_env, get_with_env, one_layer_image, range_start, MIB};
use crate::get::{registry_with, source_for};
use crate::put::{assert_nothing_pushed, pushed, work_dir};
use crate::util::faults::{Fault, FaultFront};
use crate::util::image::random_bytes;
use crate::util::*;

/// Kills `registry` once `started` says the transfer is under way, and starts it again a
/// second later.
fn kill_and_restart(registry: &mut Registry, started: impl Fn() -> bool) {
    assert!(
        wait_until(Duration::from_secs(30), started),
        "the transfer never started"
    );
    std::thread::sleep(Duration::from_millis(800));
    registry.kill();
    std::thread::sleep(Duration::from_secs(1));
    registry.restart();
}

fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn in_survives_the_registry_killed_and_restarted() {
    let data = random_bytes(6 * MIB);
    let image = one_layer_image(&data);
    let (mut registry, digest) = registry_with(&image, "restart/in");
    let layer = image.layers[0].digest.clone();
    let matching = layer.clone();
    let front = Arc::new(FaultFront::start(registry.host(), move |r| {
        if r.is_blob_get(&matching) {
            Fault::Throttle(2 * MIB)
        } else {
            Fault::Forward
        }
    }));
    let tmp = tempfile::tempdir().expect("temp dir");
    let env = fault_env(tmp.path(), "5", "60");
    let source = json!({ "repository": format!("{}/restart/in", front.host()) });
    let fetch = {
        let (source, digest) = (source.clone(), digest.clone());
        std::thread::spawn(move || get_with_env(&source, &digest, &env))
    };
    let watched = Arc::clone(&front);
    kill_and_restart(&mut registry, || !blob_gets(&watched, &layer).is_empty());
    let fetch = fetch.join().expect("the in thread");
    assert_eq!(fetch.response()["version"]["digest"], json!(digest));
    let file = std::fs::read(fetch.rootfs().join("data/random.bin")).expect("layer file");
    assert!(file == data, "the layer's file differs");
    assert!(
        fetch.out.stderr.contains("retrying"),
        "{}",
        fetch.out.stderr
    );
    let gets = blob_gets(&front, &layer);
    assert!(
        gets.iter()
            .skip(1)
            .any(|g| range_start(g).is_some_and(|n| n > 0)),
        "the download was not resumed: {gets:?}"
    );
}

#[test]
fn out_survives_the_registry_killed_and_restarted() {
    let registry = Registry::start(RegistryConfig::new());
    let image = one_layer_image(&random_bytes(6 * MIB));
    let front = Arc::new(FaultFront::start(registry.host(), |r| {
        if r.method == "PUT" && r.target.contains("/blobs/uploads/") {
            Fault::Throttle(2 * MIB)
        } else {
            Fault::Forward
        }
    }));
    let mut registry = registry;
    let tmp = tempfile::tempdir().expect("temp dir");
    let env = fault_env(tmp.path(), "5", "60");
    let source = json!({ "repository": format!("{}/restart/out", front.host()), "tag": "1" });
    let work = work_dir();
    let out = {
        let dir = work.path().to_path_buf();
        let request = json!({ "source": source, "params": { "image": image.path() } });
        std::thread::spawn(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            run_with_env(
                "out",
                &[dir.to_str().expect("UTF-8")],
                &env,
                request.to_string().as_bytes(),
            )
        })
    };
    let watched = Arc::clone(&front);
    kill_and_restart(&mut registry, || {
        watched
            .seen()
            .iter()
            .any(|r| r.method == "PUT" && r.target.contains("/blobs/uploads/"))
    });
    let out = out.join().expect("the out thread");
    assert_eq!(pushed(&out).digest, image.digest, "{}", out.stderr);
    assert!(
        out.stderr.contains("retrying the upload of blob"),
        "{}",
        out.stderr
    );
    assert_eq!(skopeo_raw_digest(&registry, "restart/out:1"), image.digest);
}

#[test]
fn out_fails_cleanly_in_time_when_the_registry_stays_down() {
    let mut registry = Registry::start(RegistryConfig::new());
    let image = one_layer_image(&random_bytes(4 * MIB));
    let front = Arc::new(FaultFront::start(registry.host(), |r| {
        if r.method == "PUT" && r.target.contains("/blobs/uploads/") {
            Fault::Throttle(MIB)
        } else {
            Fault::Forward
        }
    }));
    let tmp = tempfile::tempdir().expect("temp dir");
    let env = fault_env(tmp.path(), "2", "3");
    let source = json!({ "repository": format!("{}/restart/down", front.host()), "tag": "1" });
    let work = work_dir();
    let started = std::time::Instant::now();
    let out = {
        let dir = work.path().to_path_buf();
        let request = json!({ "source": source, "params": { "image": image.path() } });
        std::thread::spawn(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            run_with_env(
                "out",
                &[dir.to_str().expect("UTF-8")],
                &env,
                request.to_string().as_bytes(),
            )
        })
    };
    let watched = Arc::clone(&front);
    assert!(wait_until(Duration::from_secs(30), || watched
        .seen()
        .iter()
        .any(
            |r| r.method == "PUT" && r.target.contains("/blobs/uploads/")
        )));
    registry.kill();
    let out = out.join().expect("the out thread");
    let stderr = out.expect_failure();
    // Budget 3 s per request, for the upload and for the new session's start.
    assert!(started.elapsed() < Duration::from_secs(25), "{stderr}");
    // The front resets the connections it cannot forward to the dead registry.
    assert!(stderr.contains("Connection reset by peer"), "{stderr}");
    assert_eq!(out.stdout.trim(), "", "no version after a failed out");
    assert_empty(tmp.path(), &out);
    registry.restart();
    assert_nothing_pushed(&registry, "restart/down", &out);
}

#[test]
fn check_survives_a_token_server_down_then_up() {
    let tokens = TokenServer::start(TokenConfig::new().user("faulty", "s3cret"));
    let down = Arc::new(AtomicUsize::new(0));
    let left = Arc::clone(&down);
    // The token server is unreachable (every connection reset) while `down` counts.
    let front = FaultFront::start(tokens.host(), move |_| {
        if left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            Fault::ResetAfter(0)
        } else {
            Fault::Forward
        }
    });
    let registry = Registry::start(
        RegistryConfig::new()
            .token(&tokens)
            .token_realm(&format!("http://{}/token", front.host())),
    );
    let image = random_image(1, 1024);
    push(&registry, &image, "tokens/app:1");
    down.store(3, Ordering::SeqCst);
    let tmp = tempfile::tempdir().expect("temp dir");
    let env = fault_env(tmp.path(), "5", "30");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut source = source_for(&registry, "tokens/app");
    source["tag"] = json!("1");
    let out = run_with_env(
        "check",
        &[],
        &env,
        json!({ "source": source }).to_string().as_bytes(),
    );
    let versions = out.expect_success();
    assert_eq!(
        versions[0]["digest"],
        json!(skopeo_raw_digest(&registry, "tokens/app:1"))
    );
    assert_eq!(down.load(Ordering::SeqCst), 0, "the outage was not reached");
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);
}
