//! Load against one local registry: 50 concurrent `check`s and 10 concurrent `in`s into
//! distinct destinations, all at once; every one must succeed with the right digest. The
//! wall-clock figures are printed (run with `--nocapture` to see them).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::get::{get, registry_with};
use crate::util::*;

const CHECKS: usize = 50;
const GETS: usize = 10;

#[test]
fn fifty_checks_and_ten_ins_at_once() {
    let image = random_image(3, 256 << 10);
    let (registry, digest) = registry_with(&image, "load/app");
    let source = json!({ "repository": format!("{}/load/app", registry.host()), "tag": image.tag });
    let started = Instant::now();
    let checks: Vec<_> = (0..CHECKS)
        .map(|_| {
            let source = source.clone();
            std::thread::spawn(move || {
                let began = Instant::now();
                let out = run("check", &[], &json!({ "source": source }));
                (out, began.elapsed())
            })
        })
        .collect();
    let gets: Vec<_> = (0..GETS)
        .map(|_| {
            let (source, digest) = (source.clone(), digest.clone());
            std::thread::spawn(move || {
                let began = Instant::now();
                let fetch = get(&source, &digest, json!({}));
                (fetch, began.elapsed())
            })
        })
        .collect();
    let mut check_times: Vec<Duration> = Vec::new();
    for handle in checks {
        let (out, took) = handle.join().expect("a check thread");
        let versions = out.expect_success();
        assert_eq!(versions[0]["digest"], json!(digest), "{}", out.stderr);
        check_times.push(took);
    }
    let mut get_times: Vec<Duration> = Vec::new();
    for handle in gets {
        let (fetch, took) = handle.join().expect("an in thread");
        assert_eq!(fetch.response()["version"]["digest"], json!(digest));
        assert!(
            fetch.rootfs().join("random").is_dir(),
            "{}",
            fetch.out.stderr
        );
        get_times.push(took);
    }
    check_times.sort();
    get_times.sort();
    eprintln!(
        "load: {CHECKS} checks and {GETS} ins in {:.2} s; check median {:.2} s, max {:.2} s; in median {:.2} s, max {:.2} s",
        started.elapsed().as_secs_f64(),
        check_times[CHECKS / 2].as_secs_f64(),
        check_times[CHECKS - 1].as_secs_f64(),
        get_times[GETS / 2].as_secs_f64(),
        get_times[GETS - 1].as_secs_f64(),
    );
}
