//! `check` with `git_repo` (issue 10, item 3): the tag is the commit SHA at the head of
//! `git_branch`, read with `git ls-remote` from a repository the test makes, over `file://`,
//! a plain path, and `ssh://` to a real sshd on 127.0.0.1 ([`Sshd`]); images are pushed to a
//! real registry with tag = SHA.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::get::source_for;
use crate::util::sshd::{generate_key, Sshd};
use crate::util::*;

/// A git repository made with `git init` in a TempDir.
pub(crate) struct GitRepo {
    dir: TempDir,
}

impl GitRepo {
    /// `git init` with `master` as the first branch and one commit.
    pub(crate) fn init() -> GitRepo {
        let dir = tempfile::Builder::new()
            .prefix("git-repo-")
            .tempdir()
            .expect("a temp dir");
        let repo = GitRepo { dir };
        repo.git(&["init", "-q", "-b", "master"]);
        repo.commit("first");
        repo
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file_url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    pub(crate) fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .output()
            .expect("running git (apt-get install git)");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// A new (empty) commit on the current branch; its SHA.
    fn commit(&self, message: &str) -> String {
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// Pushes a random image as `repository:tag`; returns skopeo's digest.
fn push_image(registry: &Registry, repository: &str, tag: &str) -> String {
    let reference = format!("{repository}:{tag}");
    push(registry, &random_image(1, 512), &reference);
    skopeo_raw_digest(registry, &reference)
}

fn check(source: &Value, version: Option<&Value>) -> Output {
    check_in(source, version, None)
}

/// Runs check, with `TMPDIR` set when given.
fn check_in(source: &Value, version: Option<&Value>, tmpdir: Option<&Path>) -> Output {
    let mut request = json!({ "source": source });
    if let Some(version) = version {
        request["version"] = version.clone();
    }
    let tmp = tmpdir.map(|d| d.display().to_string());
    let env: Vec<(&str, &str)> = tmp.iter().map(|d| ("TMPDIR", d.as_str())).collect();
    run_with_env("check", &[], &env, request.to_string().as_bytes())
}

fn git_source(registry: &Registry, repository: &str, git_repo: &str) -> Value {
    let mut source = source_for(registry, repository);
    source["git_repo"] = json!(git_repo);
    source
}

/// The entries of a dir (for "the key's temp dir is gone").
fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("reading the test's TMPDIR")
        .map(|e| e.expect("a dir entry").path())
        .collect()
}

#[test]
fn file_repo_branch_moves_and_a_second_branch() {
    let registry = Registry::start(RegistryConfig::new());
    let repo = GitRepo::init();
    let first = repo.git(&["rev-parse", "HEAD"]);
    let first_digest = push_image(&registry, "git/app", &first);
    let source = git_source(&registry, "git/app", &repo.file_url());

    // Default branch `master`: the image tagged with its head SHA.
    let v1 = json!({ "digest": first_digest, "tag": first });
    assert_eq!(check(&source, None).expect_success(), &json!([v1]));
    assert_eq!(check(&source, Some(&v1)).expect_success(), &json!([v1]));

    // The branch moves and the new commit's image is pushed: [given, new].
    let second = repo.commit("second");
    let second_digest = push_image(&registry, "git/app", &second);
    let v2 = json!({ "digest": second_digest, "tag": second });
    assert_eq!(check(&source, Some(&v1)).expect_success(), &json!([v1, v2]));

    // A plain path works as git_repo too.
    let by_path = git_source(&registry, "git/app", &repo.path().display().to_string());
    assert_eq!(check(&by_path, None).expect_success(), &json!([v2]));

    // A non-default branch, at its own commit with its own image.
    repo.git(&["checkout", "-q", "-b", "release", &first]);
    let release = repo.commit("release");
    let release_digest = push_image(&registry, "git/app", &release);
    let mut on_release = source.clone();
    on_release["git_branch"] = json!("release");
    assert_eq!(
        check(&on_release, None).expect_success(),
        &json!([{ "digest": release_digest, "tag": release }])
    );
    // master is unchanged.
    assert_eq!(check(&source, None).expect_success(), &json!([v2]));
}

#[test]
fn missing_image_keeps_the_given_version_or_fails_when_asked() {
    let registry = Registry::start(RegistryConfig::new());
    let repo = GitRepo::init();
    let first = repo.git(&["rev-parse", "HEAD"]);
    let digest = push_image(&registry, "git/missing", &first);
    let head = repo.commit("no image yet");
    let source = git_source(&registry, "git/missing", &repo.file_url());

    // No image for the head commit: nothing without a version, the given one with one.
    assert_eq!(check(&source, None).expect_success(), &json!([]));
    let given = json!({ "digest": digest, "tag": first });
    assert_eq!(
        check(&source, Some(&given)).expect_success(),
        &json!([given])
    );

    // fail_when_missing: an error naming the SHA, the branch and the repository.
    let mut failing = source.clone();
    failing["fail_when_missing"] = json!(true);
    for version in [None, Some(&given)] {
        let out = check(&failing, version);
        let err = out.expect_failure();
        for needle in [
            head.as_str(),
            "`master`",
            &repo.file_url(),
            "fail_when_missing",
        ] {
            assert!(err.contains(needle), "{needle} missing from: {err}");
        }
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }

    // Once the image exists, fail_when_missing changes nothing.
    let head_digest = push_image(&registry, "git/missing", &head);
    assert_eq!(
        check(&failing, Some(&given)).expect_success(),
        &json!([given, { "digest": head_digest, "tag": head }])
    );
}

#[test]
fn a_missing_branch_or_repository_is_an_error_naming_it() {
    let registry = Registry::start(RegistryConfig::new());
    let repo = GitRepo::init();
    let mut source = git_source(&registry, "git/errors", &repo.file_url());
    source["git_branch"] = json!("no-such-branch");
    let err = check(&source, None).expect_failure().to_string();
    assert!(
        err.contains("branch `no-such-branch` does not exist") && err.contains(&repo.file_url()),
        "{err}"
    );

    // A repository that is not there: git's own reason.
    let gone = format!("{}/nothing-here", repo.file_url());
    let err = check(&git_source(&registry, "git/errors", &gone), None)
        .expect_failure()
        .to_string();
    assert!(
        err.contains(&gone) && err.contains("does not appear to be a git repository"),
        "{err}"
    );

    // git_repo and a tag: the user picks one.
    let mut both = git_source(&registry, "git/errors", &repo.file_url());
    both["tag"] = json!("1");
    let err = check(&both, None).expect_failure().to_string();
    assert!(
        err.contains("git_repo") && err.contains("remove one"),
        "{err}"
    );
}

#[test]
fn ssh_with_a_private_key_and_the_key_dir_is_removed() {
    let registry = Registry::start(RegistryConfig::new());
    let sshd = Sshd::start();
    let repo = GitRepo::init();
    let head = repo.git(&["rev-parse", "HEAD"]);
    let digest = push_image(&registry, "git/ssh", &head);
    let tmp = tempfile::tempdir().expect("a TMPDIR for check");

    let mut source = git_source(&registry, "git/ssh", &sshd.url(repo.path()));
    source["git_private_key"] = json!(sshd.user_key().private);
    let out = check_in(&source, None, Some(tmp.path()));
    assert_eq!(
        out.expect_success(),
        &json!([{ "digest": digest, "tag": head }]),
        "sshd log:\n{}",
        sshd.log()
    );
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    // It really went through sshd with that key.
    assert!(
        sshd.log().contains("Accepted publickey for root"),
        "{}",
        sshd.log()
    );

    // The branch moves: [given, new], over ssh too.
    let next = repo.commit("next");
    let next_digest = push_image(&registry, "git/ssh", &next);
    let given = json!({ "digest": digest, "tag": head });
    assert_eq!(
        check_in(&source, Some(&given), Some(tmp.path())).expect_success(),
        &json!([given, { "digest": next_digest, "tag": next }])
    );

    // git_known_hosts with the server's key: strict checking passes.
    let mut pinned = source.clone();
    pinned["git_known_hosts"] = json!(sshd.known_hosts_line());
    assert_eq!(
        check_in(&pinned, None, Some(tmp.path())).expect_success(),
        &json!([{ "digest": next_digest, "tag": next }])
    );
    // ... and with another key, the host is refused (no silent acceptance), with a hint.
    let other = generate_key(tmp.path(), "other_host");
    std::fs::remove_file(tmp.path().join("other_host")).expect("removing a test key");
    std::fs::remove_file(tmp.path().join("other_host.pub")).expect("removing a test key");
    let mut fields = other.public.split_whitespace();
    let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
    pinned["git_known_hosts"] = json!(format!("[127.0.0.1]:{} {kind} {key}", sshd.port()));
    let out = check_in(&pinned, None, Some(tmp.path()));
    let err = out.expect_failure();
    assert!(
        err.contains("Host key verification failed") && err.contains("git_known_hosts"),
        "{err}"
    );
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
}

#[test]
fn ssh_wrong_key_and_bad_url_give_git_reasons_never_the_key() {
    let registry = Registry::start(RegistryConfig::new());
    let sshd = Sshd::start();
    let repo = GitRepo::init();
    let tmp = tempfile::tempdir().expect("a TMPDIR for check");
    let keys = tempfile::tempdir().expect("a dir for a stranger's key");
    let stranger = generate_key(keys.path(), "stranger");

    let assert_no_key = |out: &Output, lines: &[String]| {
        for line in lines {
            assert!(
                !out.stderr.contains(line.as_str()) && !out.stdout.contains(line.as_str()),
                "key material printed:\n{}\n{}",
                out.stdout,
                out.stderr
            );
        }
    };

    // A key the server does not authorize: ssh's reason.
    let mut source = git_source(&registry, "git/ssh-bad", &sshd.url(repo.path()));
    source["git_private_key"] = json!(stranger.private);
    let out = check_in(&source, None, Some(tmp.path()));
    let err = out.expect_failure();
    assert!(
        err.contains("Permission denied (publickey)") && err.contains(&sshd.url(repo.path())),
        "{err}"
    );
    assert_no_key(&out, &stranger.private_body_lines());
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));

    // Not a key at all: ssh's reason, and none of the text.
    let garbage = "-----BEGIN OPENSSH PRIVATE KEY-----\nTOTALLYSECRETNOTAKEYTEXT0123456789\n\
                   -----END OPENSSH PRIVATE KEY-----\n";
    source["git_private_key"] = json!(garbage);
    let out = check_in(&source, None, Some(tmp.path()));
    let err = out.expect_failure();
    assert!(
        err.contains("Permission denied") || err.contains("invalid format"),
        "{err}"
    );
    assert_no_key(&out, &["TOTALLYSECRETNOTAKEYTEXT0123456789".to_string()]);
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));

    // A URL where nothing listens: ssh's reason, with the key given and not printed.
    let closed = format!("ssh://root@127.0.0.1:{}/srv/repo.git", free_port());
    let mut source = git_source(&registry, "git/ssh-bad", &closed);
    source["git_private_key"] = json!(sshd.user_key().private);
    let out = check_in(&source, None, Some(tmp.path()));
    let err = out.expect_failure();
    assert!(
        err.contains("Connection refused") && err.contains(&closed),
        "{err}"
    );
    assert_no_key(&out, &sshd.user_key().private_body_lines());
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));

    // The right key but a path with no repository: git's reason from the far side.
    let mut source = git_source(
        &registry,
        "git/ssh-bad",
        &sshd.url(&repo.path().join("nope")),
    );
    source["git_private_key"] = json!(sshd.user_key().private);
    let out = check_in(&source, None, Some(tmp.path()));
    let err = out.expect_failure();
    assert!(
        err.contains("does not appear to be a git repository"),
        "{err}"
    );
    assert_no_key(&out, &sshd.user_key().private_body_lines());
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
}

#[test]
fn fail_when_missing_with_a_pinned_tag_fails_instead_of_no_versions() {
    let registry = Registry::start(RegistryConfig::new());
    let digest = push_image(&registry, "git/pinned", "present");
    let mut source = source_for(&registry, "git/pinned");
    source["tag"] = json!("absent");
    source["fail_when_missing"] = json!(true);
    let err = check(&source, None).expect_failure().to_string();
    assert!(
        err.contains("git/pinned:absent does not exist") && err.contains("fail_when_missing"),
        "{err}"
    );
    source["tag"] = json!("present");
    assert_eq!(
        check(&source, None).expect_success(),
        &json!([{ "digest": digest, "tag": "present" }])
    );
    // Without a tag or git_repo there is nothing to miss: a clear error, not a silent no-op.
    let mut listing = source_for(&registry, "git/pinned");
    listing["fail_when_missing"] = json!(true);
    let err = check(&listing, None).expect_failure().to_string();
    assert!(err.contains("fail_when_missing needs a tag"), "{err}");
}
