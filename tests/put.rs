//! `out` against real registries, the push itself: the response, every tag parameter of D
//! and R and their combinations (`tag_file` / `tag` + `tag_prefix`, `tag_as_latest`,
//! `additional_tags`, `version` + `variant` + `bump_aliases`, `source.tag`), invalid tags
//! refused before anything is pushed, blobs already present skipped, cross-repository
//! mounts with token auth, and pushes to TLS + htpasswd and token-auth registries.
//! Oracles: skopeo (tags, manifests, digests) and the registry's own storage.
//!
//! Helpers here are shared with `put_sources.rs`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::get::source_for;
use crate::util::oracle::{repository_tags, stored_blobs};
use crate::util::*;

/// A fresh directory for `out`'s argument (the build's working dir in Concourse).
pub(crate) fn work_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("out-")
        .tempdir()
        .expect("temp dir")
}

/// Writes `contents` to `<dir>/<relative>`, creating parents.
pub(crate) fn write_file(dir: &Path, relative: &str, contents: impl AsRef<[u8]>) {
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("creating parent dirs");
    }
    fs::write(&path, contents).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

/// Copies the directory tree `from` to `to` (regular files and dirs only, as in layouts).
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|err| panic!("mkdir {}: {err}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|err| panic!("{}: {err}", from.display())) {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|err| panic!("copying {}: {err}", entry.path().display()));
        }
    }
}

/// Runs `out <dir>` with `source` and `params`.
pub(crate) fn put(dir: &Path, source: &Value, params: Value) -> Output {
    let request = json!({ "source": source, "params": params });
    run("out", &[dir.to_str().expect("UTF-8 temp path")], &request)
}

/// What a successful `out` answered.
#[derive(Debug)]
pub(crate) struct Pushed {
    /// `version.tag`.
    pub tag: String,
    /// `version.digest`.
    pub digest: String,
    /// The `repository` metadata.
    pub repository: String,
    /// The `tags` metadata, split on spaces, in order.
    pub tags: Vec<String>,
}

/// Checks the response shape of a successful `out` and returns what it says.
pub(crate) fn pushed(out: &Output) -> Pushed {
    let response = out.expect_success();
    let version = response["version"]
        .as_object()
        .unwrap_or_else(|| panic!("no version object in {response}"));
    let mut keys: Vec<&str> = version.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["digest", "tag"],
        "version should be exactly tag and digest: {response}"
    );
    let tag = version["tag"].as_str().expect("version.tag").to_string();
    let digest = version["digest"]
        .as_str()
        .expect("version.digest")
        .to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "version.digest {digest:?} is not a sha256 digest"
    );
    let metadata = |name: &str| -> String {
        response["metadata"]
            .as_array()
            .unwrap_or_else(|| panic!("metadata is not a list: {response}"))
            .iter()
            .find(|entry| entry["name"] == name)
            .unwrap_or_else(|| panic!("no {name} metadata in {response}"))["value"]
            .as_str()
            .unwrap_or_else(|| panic!("metadata {name} is not a string: {response}"))
            .to_string()
    };
    let tags: Vec<String> = metadata("tags")
        .split(' ')
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert!(
        tags.iter().all(|t| !t.is_empty()),
        "the tags metadata should be tags separated by single spaces: {response}"
    );
    assert_eq!(
        tags.first(),
        Some(&tag),
        "version.tag should be the first of the tags metadata: {response}"
    );
    Pushed {
        tag,
        digest,
        repository: metadata("repository"),
        tags,
    }
}

/// The `blobs: U uploaded, P already present, M mounted` line of `out`'s stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobCounts {
    pub uploaded: u64,
    pub present: u64,
    pub mounted: u64,
}

impl BlobCounts {
    pub(crate) fn new(uploaded: u64, present: u64, mounted: u64) -> BlobCounts {
        BlobCounts {
            uploaded,
            present,
            mounted,
        }
    }
}

/// Parses the one `blobs: ...` line of a run's stderr; panics if there is not exactly one.
pub(crate) fn blob_counts(out: &Output) -> BlobCounts {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("blobs: "))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "stderr should have one line `blobs: U uploaded, P already present, M mounted`:\n{}",
        out.stderr
    );
    let parse = || -> Option<BlobCounts> {
        let rest = lines[0].strip_prefix("blobs: ")?;
        // A trailing note such as ` (1.2 MB in 0.3 s)` is allowed.
        let rest = match rest.split_once(" (") {
            Some((counts, note)) if note.ends_with(')') => counts,
            _ => rest,
        };
        let parts: Vec<&str> = rest.split(", ").collect();
        let [uploaded, present, mounted] = parts.as_slice() else {
            return None;
        };
        let number = |part: &str, words: &str| -> Option<u64> {
            part.strip_suffix(words)?.trim_end().parse().ok()
        };
        Some(BlobCounts {
            uploaded: number(uploaded, "uploaded")?,
            present: number(present, "already present")?,
            mounted: number(mounted, "mounted")?,
        })
    };
    parse().unwrap_or_else(|| {
        panic!(
            "malformed blob line {:?}; expected `blobs: U uploaded, P already present, M mounted`",
            lines[0]
        )
    })
}

/// Asserts `repository` has exactly `expected` tags (order aside), each serving `digest`
/// by skopeo's reading.
pub(crate) fn assert_tags(registry: &Registry, repository: &str, expected: &[&str], digest: &str) {
    let mut want: Vec<String> = expected.iter().map(|t| t.to_string()).collect();
    want.sort();
    want.dedup();
    let have = repository_tags(registry, repository).unwrap_or_default();
    assert_eq!(have, want, "tags of {repository}");
    for tag in expected {
        assert_eq!(
            skopeo_raw_digest(registry, &format!("{repository}:{tag}")),
            digest,
            "{repository}:{tag} should serve the pushed digest"
        );
    }
}

/// Asserts the registry has no `repository` (`tags/list` 404 or empty).
pub(crate) fn assert_nothing_pushed(registry: &Registry, repository: &str, out: &Output) {
    let tags = repository_tags(registry, repository).unwrap_or_default();
    assert!(
        tags.is_empty(),
        "a failed out left tags {tags:?} in {repository}; stderr:\n{}",
        out.stderr
    );
}

/// Asserts nothing at all was uploaded to `registry` (its blob storage is empty).
pub(crate) fn assert_no_blobs(registry: &Registry, out: &Output) {
    let blobs = stored_blobs(registry);
    assert!(
        blobs.is_empty(),
        "nothing should have been uploaded, but the registry stores {blobs:?}; stderr:\n{}",
        out.stderr
    );
}

/// `base` with the keys of `extra` added (both objects).
pub(crate) fn merged(base: &Value, extra: Value) -> Value {
    let mut value = base.clone();
    for (key, item) in extra.as_object().expect("an object").clone() {
        value[key] = item;
    }
    value
}

/// Sorted, deduplicated tags.
fn tag_set(tags: &[String]) -> BTreeSet<String> {
    tags.iter().cloned().collect()
}

// ---- the response and skipping ---------------------------------------------------------

#[test]
fn first_push_uploads_every_blob_and_answers_version_and_metadata() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(2, 1024);
    let source = source_for(&registry, "put/first");
    let work = work_dir();
    let out = put(
        work.path(),
        &source,
        json!({ "image": image.path().to_str().unwrap() }),
    );
    let pushed = pushed(&out);
    assert_eq!(pushed.tag, "latest");
    assert_eq!(pushed.tags, ["latest"]);
    assert_eq!(
        pushed.repository,
        source["repository"].as_str().unwrap(),
        "repository metadata"
    );
    assert_eq!(
        pushed.digest, image.digest,
        "an OCI layout with gzip layers is pushed unchanged"
    );
    assert_eq!(blob_counts(&out), BlobCounts::new(3, 0, 0));
    assert_eq!(
        skopeo_inspect_raw(&registry, "put/first:latest").as_bytes(),
        image.manifest.as_slice()
    );
    assert_tags(&registry, "put/first", &["latest"], &image.digest);
    // stdout holds the response and nothing else.
    assert_eq!(
        out.stdout.trim().lines().count(),
        1,
        "stdout:\n{}",
        out.stdout
    );
}

#[test]
fn second_push_of_the_same_image_skips_every_blob() {
    let registry = Registry::start(RegistryConfig::new());
    let image = random_image(3, 1024);
    let source = source_for(&registry, "put/again");
    let work = work_dir();
    let params = json!({ "image": image.path().to_str().unwrap() });
    let first = put(work.path(), &source, params.clone());
    assert_eq!(blob_counts(&first), BlobCounts::new(4, 0, 0));
    let blobs_after_first = stored_blobs(&registry);
    let second = put(work.path(), &source, params);
    assert_eq!(pushed(&second).digest, pushed(&first).digest);
    assert_eq!(
        blob_counts(&second),
        BlobCounts::new(0, 4, 0),
        "stderr:\n{}",
        second.stderr
    );
    assert_eq!(stored_blobs(&registry), blobs_after_first);
    // Under another tag the blobs are still present: only the manifest is pushed.
    let tagged = put(
        work.path(),
        &merged(&source, json!({"tag": "other"})),
        json!({ "image": image.path().to_str().unwrap() }),
    );
    assert_eq!(blob_counts(&tagged), BlobCounts::new(0, 4, 0));
    assert_tags(&registry, "put/again", &["latest", "other"], &image.digest);
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

// ---- registries with auth --------------------------------------------------------------

#[test]
fn push_to_tls_with_htpasswd() {
    const USER: &str = "pusher";
    const PASSWORD: &str = "htpasswd-Pa55word";
    let ca = Ca::new();
    let registry = Registry::start(RegistryConfig::new().tls(&ca).htpasswd(USER, PASSWORD));
    let image = random_image(2, 1024);
    let source = source_for(&registry, "secure/app");
    assert!(source["ca_certs"].is_array() && source["password"] == PASSWORD);
    let work = work_dir();
    copy_dir(image.path(), &work.path().join("layout"));
    let out = put(work.path(), &source, json!({"image": "layout"}));
    let pushed = pushed(&out);
    assert_eq!(pushed.digest, image.digest);
    assert_eq!(blob_counts(&out), BlobCounts::new(3, 0, 0));
    assert_tags(&registry, "secure/app", &["latest"], &image.digest);
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(PASSWORD), "the password leaked:\n{text}");
    }

    // A wrong password: an error naming the registry, nothing pushed.
    let wrong = merged(
        &source_for(&registry, "secure/other"),
        json!({"password": "wrong"}),
    );
    let out = put(work.path(), &wrong, json!({"image": "layout"}));
    let err = out.expect_failure();
    assert!(err.contains(&registry.host()), "{err}");
    assert_nothing_pushed(&registry, "secure/other", &out);
}

#[test]
fn push_to_token_auth() {
    const USER: &str = "token-pusher";
    const PASSWORD: &str = "token-Pa55word";
    let server = TokenServer::start(TokenConfig::new().user(USER, PASSWORD));
    let registry = Registry::start(RegistryConfig::new().token(&server));
    let image = random_image(2, 1024);
    let source = source_for(&registry, "token/app");
    let work = work_dir();
    let out = put(
        work.path(),
        &source,
        json!({ "image": image.path().to_str().unwrap() }),
    );
    let pushed = pushed(&out);
    assert_eq!(pushed.digest, image.digest);
    assert_eq!(blob_counts(&out), BlobCounts::new(3, 0, 0));
    assert_tags(&registry, "token/app", &["latest"], &image.digest);
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.user.as_deref() == Some(USER)
            && r.scopes
                .iter()
                .any(|s| s.starts_with("repository:token/app:") && s.contains("push"))),
        "no token with push on token/app was asked for: {requests:?}"
    );
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(PASSWORD), "the password leaked:\n{text}");
    }
}

#[test]
fn mount_with_token_auth_over_tls() {
    const USER: &str = "mounter";
    const PASSWORD: &str = "mount-Pa55word";
    let ca = Ca::new();
    let server = TokenServer::start(TokenConfig::new().user(USER, PASSWORD));
    let registry = Registry::start(RegistryConfig::new().tls(&ca).token(&server));
    let image = random_image(2, 2048);
    push(&registry, &image, "team/base:1.0");
    server.clear_requests();

    let source = source_for(&registry, "team/app");
    let work = work_dir();
    let out = put(
        work.path(),
        &source,
        json!({
            "pull_repository": format!("{}/team/base", registry.host()),
            "pull_tag": "1.0",
        }),
    );
    let pushed = pushed(&out);
    assert_eq!(pushed.digest, image.digest, "a copy keeps the manifest");
    assert_eq!(
        blob_counts(&out),
        BlobCounts::new(0, 0, 3),
        "every blob should be mounted from team/base; stderr:\n{}",
        out.stderr
    );
    assert_tags(&registry, "team/app", &["latest"], &image.digest);
    // One token carried both: pull on the source repository, push on the target.
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| {
            r.scopes
                .iter()
                .any(|s| s.starts_with("repository:team/base:") && s.contains("pull"))
                && r.scopes
                    .iter()
                    .any(|s| s.starts_with("repository:team/app:") && s.contains("push"))
        }),
        "no token request asked for pull on team/base and push on team/app: {requests:?}"
    );
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(PASSWORD), "the password leaked:\n{text}");
    }
}
