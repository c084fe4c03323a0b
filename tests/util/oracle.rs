//! Independent readings of what a registry holds, for `out` tests: the tags of a
//! repository (`/v2/<name>/tags/list`, or skopeo for registries with auth), the blobs in its
//! storage, and an image's filesystem as the standard tools see it (`skopeo copy` to an OCI
//! layout, then `umoci unpack`; or GNU tar for a plain rootfs tarball).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::bin::run_command;
use super::image::skopeo;
use super::registry::Registry;

/// How long one tool (umoci, tar) may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `program` with `args`; panics with its output unless it succeeds.
pub fn run_tool(program: &str, args: &[&str]) {
    let mut command = Command::new(program);
    command.args(args);
    let out = run_command(command, b"", TOOL_TIMEOUT);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// The tags of `repository` on `registry`, sorted; `None` when the registry does not know
/// the repository (404 / `NAME_UNKNOWN`). Plain registries are asked over HTTP; registries
/// with credentials through `skopeo list-tags`.
pub fn repository_tags(registry: &Registry, repository: &str) -> Option<Vec<String>> {
    let mut tags = if registry.credentials().is_none() {
        let path = format!("/v2/{repository}/tags/list");
        let response = registry
            .get(&path)
            .unwrap_or_else(|err| panic!("GET {path}: {err}"));
        if response.status == 404 {
            return None;
        }
        assert_eq!(
            response.status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&response.body)
        );
        let body: Value = serde_json::from_slice(&response.body).expect("tags/list JSON");
        string_list(&body["tags"])
    } else {
        let mut args: Vec<String> = vec!["list-tags".into()];
        args.extend(registry.skopeo_flags(""));
        args.push(format!("docker://{}/{repository}", registry.host()));
        match skopeo(&args) {
            Ok(stdout) => {
                let body: Value = serde_json::from_str(&stdout).expect("skopeo list-tags JSON");
                string_list(&body["Tags"])
            }
            Err(error)
                if error.contains("NAME_UNKNOWN")
                    || error.contains("name unknown")
                    || error.contains("404") =>
            {
                return None
            }
            Err(error) => panic!("{error}"),
        }
    };
    tags.sort();
    Some(tags)
}

fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().expect("a tag string").to_string())
            .collect(),
        other => panic!("expected a list of tags, got {other}"),
    }
}

/// Every blob digest in the registry's storage (`sha256:<hex>`), sorted: what was uploaded,
/// to any repository, including blobs no manifest references.
pub fn stored_blobs(registry: &Registry) -> Vec<String> {
    let root = registry.dir().join("data/docker/registry/v2/blobs/sha256");
    let mut digests = Vec::new();
    let Ok(prefixes) = fs::read_dir(&root) else {
        return digests;
    };
    for prefix in prefixes {
        let prefix = prefix.expect("listing blob storage").path();
        for blob in fs::read_dir(&prefix).expect("listing blob storage") {
            let blob = blob.expect("listing blob storage").path();
            if blob.join("data").is_file() {
                digests.push(format!(
                    "sha256:{}",
                    blob.file_name().expect("blob dir name").to_string_lossy()
                ));
            }
        }
    }
    digests.sort();
    digests
}

/// Copies `reference` (`repo:tag` or `repo@digest`) out of `registry` with skopeo into an
/// OCI layout `<work>/<name>-layout` (tag `x`) and returns the layout's path.
pub fn pull_layout(registry: &Registry, reference: &str, work: &Path, name: &str) -> PathBuf {
    let layout = work.join(format!("{name}-layout"));
    let mut args: Vec<String> = vec!["copy".into(), "--insecure-policy".into()];
    args.extend(registry.skopeo_flags("src-"));
    args.push(format!("docker://{}/{reference}", registry.host()));
    args.push(format!("oci:{}:x", layout.display()));
    if let Err(error) = skopeo(&args) {
        panic!("{error}\nregistry log:\n{}", registry.log());
    }
    layout
}

/// `umoci unpack` of `<layout>:<tag>` into `<work>/<name>-bundle`; returns its `rootfs`.
pub fn umoci_unpack(layout: &Path, tag: &str, work: &Path, name: &str) -> PathBuf {
    let bundle = work.join(format!("{name}-bundle"));
    run_tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{tag}", path_str(layout)),
            path_str(&bundle),
        ],
    );
    bundle.join("rootfs")
}

/// The filesystem of `reference` on `registry` as skopeo + umoci see it (see
/// [`pull_layout`], [`umoci_unpack`]).
pub fn pulled_rootfs(registry: &Registry, reference: &str, work: &Path, name: &str) -> PathBuf {
    let layout = pull_layout(registry, reference, work, name);
    umoci_unpack(&layout, "x", work, name)
}

/// GNU tar's extraction (numeric owners, permissions, xattrs) of `tarball` (plain or gzip)
/// into `<work>/<name>-extracted`.
pub fn tar_extract(tarball: &Path, work: &Path, name: &str) -> PathBuf {
    let dest = work.join(format!("{name}-extracted"));
    fs::create_dir_all(&dest).expect("creating the extraction dir");
    run_tool(
        "tar",
        &[
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-xpf",
            path_str(tarball),
            "-C",
            path_str(&dest),
        ],
    );
    dest
}
