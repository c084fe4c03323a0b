//! `out` against real registries, the tags it pushes: every tag parameter of D and R and
//! their combinations (`tag_file` / `tag` + `tag_prefix`, `tag_as_latest`,
//! `additional_tags`, `version` + `variant` + `bump_aliases`, `source.tag`), and invalid
//! tags refused before anything is pushed. Oracles: skopeo (tags, digests) and the
//! registry's own storage.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::get::source_for;
use crate::put::{
    assert_no_blobs, assert_nothing_pushed, merged, pushed, put, work_dir, write_file, Pushed,
};
use crate::util::oracle::repository_tags;
use crate::util::*;

/// Sorted, deduplicated tags.
fn run_check(source: &Value) -> Value {
    run("check", &[], &json!({ "source": source }))
        .expect_success()
        .clone()
}

fn tag_set(tags: &[String]) -> BTreeSet<String> {
    tags.iter().cloned().collect()
}

// ---- tags -----------------------------------------------------------------------------

/// One push of a fresh random image to `put/tags` on a fresh registry, with `source_extra`
/// added to the source, the files `files` written into the work dir, and `params` plus
/// `image`.
struct TagRun {
    registry: Registry,
    image: Image,
    out: Output,
}

fn tag_run(source_extra: Value, params: Value, files: &[(&str, &str)]) -> TagRun {
    let registry = Registry::start(RegistryConfig::new());
    tag_run_on(registry, source_extra, params, files)
}

fn tag_run_on(
    registry: Registry,
    source_extra: Value,
    params: Value,
    files: &[(&str, &str)],
) -> TagRun {
    let image = random_image(1, 512);
    let work = work_dir();
    for (name, contents) in files {
        write_file(work.path(), name, contents);
    }
    let source = merged(&source_for(&registry, "put/tags"), source_extra);
    let params = merged(&json!({ "image": image.path().to_str().unwrap() }), params);
    let out = put(work.path(), &source, params);
    TagRun {
        registry,
        image,
        out,
    }
}

impl TagRun {
    /// Asserts the first tag, the set of tags in the response, that each serves the
    /// pushed digest, and that the repository holds exactly `expected` plus `others`.
    fn assert_pushed(&self, expected: &[&str], others: &[&str]) -> Pushed {
        let pushed = pushed(&self.out);
        assert_eq!(
            pushed.tag, expected[0],
            "first tag; stderr:\n{}",
            self.out.stderr
        );
        let want: BTreeSet<String> = expected.iter().map(|t| t.to_string()).collect();
        assert_eq!(tag_set(&pushed.tags), want, "tags metadata");
        assert_eq!(pushed.digest, self.image.digest);
        let mut all: Vec<&str> = expected.to_vec();
        all.extend_from_slice(others);
        let have = repository_tags(&self.registry, "put/tags").unwrap_or_default();
        let mut all_sorted: Vec<String> = all.iter().map(|t| t.to_string()).collect();
        all_sorted.sort();
        all_sorted.dedup();
        assert_eq!(have, all_sorted, "tags in the registry");
        for tag in expected {
            assert_eq!(
                skopeo_raw_digest(&self.registry, &format!("put/tags:{tag}")),
                pushed.digest,
                "put/tags:{tag} should serve version.digest"
            );
        }
        pushed
    }
}

#[test]
fn default_tag_is_source_tag_else_latest() {
    tag_run(json!({}), json!({}), &[]).assert_pushed(&["latest"], &[]);
    tag_run(json!({"tag": "stable"}), json!({}), &[]).assert_pushed(&["stable"], &[]);
    // A number is kept as written.
    tag_run(json!({"tag": 7}), json!({}), &[]).assert_pushed(&["7"], &[]);
    // A tag carried in the repository.
    let registry = Registry::start(RegistryConfig::new());
    let repository = format!("{}/put/tags:carried", registry.host());
    tag_run_on(
        registry,
        json!({ "repository": repository }),
        json!({}),
        &[],
    )
    .assert_pushed(&["carried"], &[]);
}

#[test]
fn additional_tags_alone_push_only_those_tags() {
    // No `latest` appears: it is implied only when no tag is named anywhere (R).
    let run = tag_run(
        json!({}),
        json!({"additional_tags": "more"}),
        &[("more", "v1 v1.2 latest\n")],
    );
    // The version is the one `check` reports for this source (R's listing picks the most
    // specific semver tag of a digest), so the check after the put finds no new version.
    let pushed = run.assert_pushed(&["v1.2", "v1", "latest"], &[]);
    let source = source_for(&run.registry, "put/tags");
    let checked = run_check(&source);
    assert_eq!(
        checked,
        json!([{"tag": pushed.tag, "digest": pushed.digest}]),
        "check after put"
    );
    // R's error for a tag_prefix with nothing to prefix; nothing is pushed.
    let run = tag_run(json!({"tag": "dev"}), json!({"tag_prefix": "v"}), &[]);
    let error = run.out.expect_failure();
    assert!(
        error.contains("tag_prefix can only be used when additional_tags are specified"),
        "{error}"
    );
    assert_eq!(
        repository_tags(&run.registry, "put/tags").unwrap_or_default(),
        Vec::<String>::new()
    );
}

#[test]
fn tag_file_with_prefix_latest_and_additional_tags() {
    let run = tag_run(
        json!({"tag": "ignored-source-tag"}),
        json!({
            "tag_file": "meta/tag",
            "tag_prefix": "v",
            "tag_as_latest": true,
            "additional_tags": "meta/additional",
        }),
        &[
            ("meta/tag", "1.0.3\n"),
            ("meta/additional", "extra-1 extra-2\n\textra-3\n\n"),
        ],
    );
    run.assert_pushed(&["v1.0.3", "latest", "extra-1", "extra-2", "extra-3"], &[]);
}

#[test]
fn tag_file_alone_and_d_tag_param_is_a_path() {
    tag_run(
        json!({}),
        json!({"tag_file": "tag"}),
        &[("tag", "  release-5  \n")],
    )
    .assert_pushed(&["release-5"], &[]);
    tag_run(
        json!({}),
        json!({"tag": "dir/name"}),
        &[("dir/name", "from-d-tag")],
    )
    .assert_pushed(&["from-d-tag"], &[]);
    tag_run(
        json!({}),
        json!({"tag": "dir/name", "tag_prefix": "pre-"}),
        &[("dir/name", "x")],
    )
    .assert_pushed(&["pre-x"], &[]);
}

#[test]
fn tag_as_latest_and_additional_tags_with_the_source_tag() {
    tag_run(json!({"tag": "dev"}), json!({"tag_as_latest": true}), &[])
        .assert_pushed(&["dev", "latest"], &[]);
    tag_run(
        json!({"tag": "main"}),
        json!({"additional_tags": "more"}),
        &[("more", "a b")],
    )
    .assert_pushed(&["main", "a", "b"], &[]);
    // Without source.tag: latest, once.
    tag_run(
        json!({}),
        json!({"tag_as_latest": true, "additional_tags": "more"}),
        &[("more", "latest c")],
    )
    .assert_pushed(&["latest", "c"], &[]);
}

#[test]
fn version_is_pushed_in_r_normal_form_after_an_explicit_source_tag() {
    // As R (Masterminds/semver's String()): missing parts are 0 and a leading v goes, so
    // the JSON number 1.20 (kept as written: minor 20) is 1.20.0.
    // (Parsed from text: `json!(1.20)` would be the f64 1.2.)
    let number: Value = serde_json::from_str("1.20").expect("a JSON number");
    assert_eq!(
        number.to_string(),
        "1.20",
        "serde_json's arbitrary_precision is on"
    );
    tag_run(json!({}), json!({ "version": number }), &[]).assert_pushed(&["1.20.0"], &[]);
    tag_run(json!({}), json!({"version": "v1.2"}), &[]).assert_pushed(&["1.2.0"], &[]);
    // R pushes an explicitly set source.tag too, first.
    tag_run(json!({"tag": "dev"}), json!({"version": "1.2.3"}), &[])
        .assert_pushed(&["dev", "1.2.3"], &[]);
    tag_run(
        json!({}),
        json!({"version": "2.0.0", "additional_tags": "more"}),
        &[("more", "edge")],
    )
    .assert_pushed(&["2.0.0", "edge"], &[]);
    tag_run(
        json!({"variant": "alpine"}),
        json!({"version": "1.2.3"}),
        &[],
    )
    .assert_pushed(&["1.2.3-alpine"], &[]);
}

#[test]
fn bump_aliases_on_the_newest_version_moves_every_alias() {
    tag_run(
        json!({}),
        json!({"version": "1.2.3", "bump_aliases": true}),
        &[],
    )
    .assert_pushed(&["1.2.3", "1.2", "1", "latest"], &[]);
    tag_run(
        json!({"variant": "slim"}),
        json!({"version": "1.2.3", "bump_aliases": true}),
        &[],
    )
    .assert_pushed(&["1.2.3-slim", "1.2-slim", "1-slim", "slim"], &[]);
    // A pre-release moves no alias.
    tag_run(
        json!({}),
        json!({"version": "1.3.0-rc.1", "bump_aliases": true}),
        &[],
    )
    .assert_pushed(&["1.3.0-rc.1"], &[]);
}

/// Pushes `old` (with skopeo) to `put/tags:<tag>` for each of `tags`.
fn seed(registry: &Registry, old: &Image, tags: &[&str]) {
    for tag in tags {
        push(registry, old, &format!("put/tags:{tag}"));
    }
}

fn assert_still_old(registry: &Registry, old: &Image, tags: &[&str]) {
    for tag in tags {
        assert_eq!(
            skopeo_raw_digest(registry, &format!("put/tags:{tag}")),
            old.digest,
            "put/tags:{tag} should not have moved"
        );
    }
}

#[test]
fn bump_aliases_with_higher_versions_present() {
    let registry = Registry::start(RegistryConfig::new());
    let old = random_image(1, 256);
    let existing = ["2.0.0", "2.0", "2", "latest", "1.3.0", "1.3", "1"];
    seed(&registry, &old, &existing);

    // 1.2.4 is the newest 1.2.x only: 1 and latest stay.
    let run = tag_run_on(
        registry,
        json!({}),
        json!({"version": "1.2.4", "bump_aliases": true}),
        &[],
    );
    run.assert_pushed(&["1.2.4", "1.2"], &existing);
    assert_still_old(&run.registry, &old, &existing);

    // 1.4.0 is the newest 1.x: 1 moves, 2 and latest stay.
    let run = tag_run_on(
        run.registry,
        json!({}),
        json!({"version": "1.4.0", "bump_aliases": true}),
        &[],
    );
    run.assert_pushed(
        &["1.4.0", "1.4", "1"],
        &[
            "2.0.0", "2.0", "2", "latest", "1.3.0", "1.3", "1.2.4", "1.2",
        ],
    );
    assert_still_old(
        &run.registry,
        &old,
        &["2.0.0", "2.0", "2", "latest", "1.3.0", "1.3"],
    );
}

#[test]
fn bump_aliases_with_a_variant_compares_only_that_variant() {
    let registry = Registry::start(RegistryConfig::new());
    let old = random_image(1, 256);
    // A higher plain version and a higher pre-release do not count; 1.9.0-alpine does.
    let existing = ["3.0.0", "latest", "1.9.0-alpine", "2.0.0-rc.1-alpine"];
    seed(&registry, &old, &existing);
    let run = tag_run_on(
        registry,
        json!({"variant": "alpine"}),
        json!({"version": "1.5.0", "bump_aliases": true}),
        &[],
    );
    run.assert_pushed(&["1.5.0-alpine", "1.5-alpine"], &existing);
    assert_still_old(&run.registry, &old, &existing);
}

/// An invalid-tag case: source overrides, params, files to write, and the bad tag.
type BadTagCase<'a> = (Value, Value, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn invalid_tags_fail_before_anything_is_pushed() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(1, 512);
    let long = "x".repeat(129);
    let cases: Vec<BadTagCase> = vec![
        (
            json!({}),
            json!({"tag_file": "t"}),
            vec![("t", "-leading-dash")],
            "-leading-dash",
        ),
        (
            json!({}),
            json!({"tag_file": "t"}),
            vec![("t", "two words")],
            "two",
        ),
        (
            json!({}),
            json!({"tag_file": "t", "tag_prefix": "v/"}),
            vec![("t", "1.0")],
            "v/1.0",
        ),
        (
            json!({}),
            json!({"additional_tags": "more"}),
            vec![("more", "fine no:colon")],
            "no:colon",
        ),
        (
            json!({}),
            json!({"version": "1.2.3+build.5"}),
            vec![],
            "1.2.3+build.5",
        ),
        (json!({"tag": ".dot"}), json!({}), vec![], ".dot"),
        (json!({"tag": long.clone()}), json!({}), vec![], "tag"),
    ];
    for (i, (source_extra, params, files, named)) in cases.into_iter().enumerate() {
        let repository = format!("put/bad-{i}");
        let work = work_dir();
        for (name, contents) in &files {
            write_file(work.path(), name, contents);
        }
        let source = merged(&source_for(&registry, &repository), source_extra);
        let params = merged(&json!({ "image": image.path().to_str().unwrap() }), params);
        let out = put(work.path(), &source, params.clone());
        let err = out.expect_failure();
        assert!(
            err.contains(named),
            "case {i} ({params}): the error should name the bad tag {named:?}:\n{err}"
        );
        assert_nothing_pushed(&registry, &repository, &out);
        assert_no_blobs(&registry, &out);
    }
}

#[test]
fn missing_tag_files_name_the_param_and_the_path() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(1, 512);
    let source = source_for(&registry, "put/notags");
    for (param, value) in [
        ("tag_file", "nowhere/tag-file"),
        ("tag", "nowhere/d-tag"),
        ("additional_tags", "nowhere/extra"),
    ] {
        let work = work_dir();
        let mut params = json!({ "image": image.path().to_str().unwrap() });
        params[param] = json!(value);
        let out = put(work.path(), &source, params);
        let err = out.expect_failure();
        assert!(
            err.contains(param) && err.contains(value),
            "the error should name {param} and {value}:\n{err}"
        );
        assert_nothing_pushed(&registry, "put/notags", &out);
        assert_no_blobs(&registry, &out);
    }
}
