//! `out` against real registries, the push itself: the response, blobs already present
//! skipped, cross-repository mounts with token auth, and pushes to TLS + htpasswd and
//! token-auth registries. Oracles: skopeo (tags, manifests, digests) and the registry's own
//! storage. The tag parameters are in `put_tags.rs`.
//!
//! Helpers here are shared with `put_tags.rs` and the `put_*` source tests.

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
        // A trailing note such as ` (1.2 MB; 0.3 s)` is allowed.
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
