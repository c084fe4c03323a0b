//! `params.pull` (issue 12): `always` (default) resolves every base against its registry, even
//! one supplied by `load_base`; `if-not-exists` uses a supplied base without its registry;
//! `never` builds only from supplied bases and names any other before anything runs.

use std::path::Path;

use serde_json::{json, Value};

use crate::build::{built, file_in, keep_saved, put_build, registry_with_base};
use crate::get::{get, source_for};
use crate::put::{assert_nothing_pushed, merged, work_dir, write_file};
use crate::util::base_image::busybox_with_marker;
use crate::util::*;

/// Pushes busybox with `/marker` = `text` as `base/moving:latest`.
fn push_marked(registry: &Registry, text: &str) {
    crate::util::image::push(registry, &busybox_with_marker(text), "base/moving:latest");
}

/// `in` with `save: true` of `base/moving:latest`, kept in `<work>/<name>` for `load_base`.
fn save_base(registry: &Registry, work: &Path, name: &str) {
    let source = merged(
        &source_for(registry, "base/moving"),
        json!({"tag": "latest"}),
    );
    let digest = skopeo_raw_digest(registry, "base/moving:latest");
    let fetched = get(&source, &digest, json!({"save": true}));
    fetched.response();
    keep_saved(&fetched.dest, &work.join(name));
}

fn with_pull(params: Value, pull: Option<&str>) -> Value {
    match pull {
        Some(pull) => merged(&params, json!({ "pull": pull })),
        None => params,
    }
}

#[test]
fn build_pull_always_picks_up_a_moved_base_tag_and_if_not_exists_keeps_the_loaded_one() {
    let registry = Registry::start(RegistryConfig::new());
    push_marked(&registry, "one");
    let work = work_dir();
    save_base(&registry, work.path(), "old-base");
    push_marked(&registry, "two"); // the tag moves
    write_file(
        work.path(),
        "src/Dockerfile",
        format!(
            "FROM {}/base/moving\nRUN cat /marker > /seen\n",
            registry.host()
        ),
    );
    let params = json!({"build": "src", "load_base": "old-base"});
    for (pull, repository, expected) in [
        (None, "built/default", "two"),
        (Some("always"), "built/always", "two"),
        (Some("if-not-exists"), "built/if-not-exists", "one"),
    ] {
        let out = put_build(
            work.path(),
            &source_for(&registry, repository),
            with_pull(params.clone(), pull),
            &[],
        );
        built(&out);
        assert_eq!(
            file_in(&registry, &format!("{repository}:latest"), &["seen"]),
            [Some(expected.to_string())],
            "pull {pull:?}; stderr:\n{}",
            out.stderr
        );
    }
}

#[test]
fn build_pull_if_not_exists_and_never_use_a_load_base_with_its_registry_stopped() {
    let base_registry = Registry::start(RegistryConfig::new());
    push_marked(&base_registry, "saved");
    let work = work_dir();
    save_base(&base_registry, work.path(), "saved");
    let base_host = base_registry.host();
    drop(base_registry);
    write_file(
        work.path(),
        "src/Dockerfile",
        format!("FROM {base_host}/base/moving:latest\nRUN cat /marker > /seen\n"),
    );
    let (target, _) = registry_with_base();
    let params = json!({"build": "src", "load_base": "saved"});
    for pull in ["if-not-exists", "never"] {
        let repository = format!("built/{pull}");
        let out = put_build(
            work.path(),
            &source_for(&target, &repository),
            with_pull(params.clone(), Some(pull)),
            &[],
        );
        built(&out);
        assert!(!out.stderr.contains("Trying to pull"), "{}", out.stderr);
        assert_eq!(
            file_in(&target, &format!("{repository}:latest"), &["seen"]),
            [Some("saved".to_string())]
        );
    }
    // `always` asks the stopped registry, and fails naming it.
    let out = put_build(
        work.path(),
        &source_for(&target, "built/always"),
        params,
        &[],
    );
    let stderr = out.expect_failure();
    assert!(stderr.contains(&base_host), "{stderr}");
    assert_nothing_pushed(&target, "built/always", &out);
}

#[test]
fn build_pull_never_names_a_base_that_is_not_supplied_and_pushes_nothing() {
    let (registry, base) = registry_with_base();
    let work = work_dir();
    write_file(
        work.path(),
        "src/Dockerfile",
        format!("FROM {base} AS first\nRUN echo ran > /ran\nFROM first\n"),
    );
    let out = put_build(
        work.path(),
        &source_for(&registry, "built/never"),
        json!({"build": "src", "pull": "never"}),
        &[],
    );
    let stderr = out.expect_failure();
    for expected in [
        "params.pull is never",
        &format!("the base {base} "),
        "not supplied by params.load_base",
    ] {
        assert!(stderr.contains(expected), "lacks {expected:?}: {stderr}");
    }
    assert!(!stderr.contains("STEP 1"), "nothing may run: {stderr}");
    assert_nothing_pushed(&registry, "built/never", &out);

    // A base named through an ARG cannot be checked before the build: buildah refuses it,
    // and the error says why.
    write_file(
        work.path(),
        "src/Dockerfile",
        format!("ARG BASE={base}\nFROM $BASE\nRUN echo ran > /ran\n"),
    );
    let out = put_build(
        work.path(),
        &source_for(&registry, "built/never"),
        json!({"build": "src", "pull": "never"}),
        &[],
    );
    let stderr = out.expect_failure();
    assert!(
        stderr.contains("params.pull is never: bases not supplied"),
        "{stderr}"
    );
    assert!(!stderr.contains("Trying to pull"), "{stderr}");
    assert_nothing_pushed(&registry, "built/never", &out);

    // A bad value names the param and the choices.
    let out = put_build(
        work.path(),
        &source_for(&registry, "built/never"),
        json!({"build": "src", "pull": "sometimes"}),
        &[],
    );
    let stderr = out.expect_failure();
    assert!(
        stderr.contains("pull") && stderr.contains("if-not-exists"),
        "{stderr}"
    );
}
