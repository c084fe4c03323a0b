//! skopeo, the independent tool: [`push`] copies a fixture into a [`Registry`], and
//! [`skopeo_raw_digest`] is the oracle for what a registry serves.

use std::fs;
use std::process::Command;

use tempfile::TempDir;

use super::{sha256_digest, Image, SKOPEO_TIMEOUT};
use crate::util::bin::run_command;
use crate::util::registry::Registry;

/// Runs skopeo with `args` (60 s timeout); `Ok(stdout)` or `Err` with the command and its
/// stderr.
pub fn skopeo(args: &[String]) -> Result<String, String> {
    let mut command = Command::new("skopeo");
    command.args(args);
    let output = run_command(command, b"", SKOPEO_TIMEOUT);
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(format!(
            "skopeo {} failed ({}):\n{}",
            redact(args).join(" "),
            output.status,
            output.stderr
        ))
    }
}

/// Hides the password in `--creds=user:password` style arguments.
fn redact(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|arg| match arg.split_once("creds=") {
            Some((flag, creds)) => {
                let user = creds.split(':').next().unwrap_or("");
                format!("{flag}creds={user}:<redacted>")
            }
            None => arg.clone(),
        })
        .collect()
}

/// Pushes `image` to `registry` as `reference` (`repo:tag`) with
/// `skopeo copy --preserve-digests [--all]`; returns the pushed manifest digest.
pub fn push(registry: &Registry, image: &Image, reference: &str) -> String {
    push_with_args(registry, image, reference, &[])
}

/// [`push`] with extra `skopeo copy` arguments, e.g. `["--format", "v2s2"]` to convert to
/// a Docker manifest (then digests are not preserved).
pub fn push_with_args(
    registry: &Registry,
    image: &Image,
    reference: &str,
    extra: &[&str],
) -> String {
    assert!(
        !registry.is_mirror(),
        "cannot push to the pull-through mirror {}: push to its upstream",
        registry.host()
    );
    let digest_dir = TempDir::new().expect("temp dir for --digestfile");
    let digest_file = digest_dir.path().join("digest");
    let mut args: Vec<String> = vec!["copy".into(), "--insecure-policy".into()];
    if !extra
        .iter()
        .any(|arg| arg.starts_with("--format") || *arg == "-f")
    {
        args.push("--preserve-digests".into());
    }
    if image.is_index() {
        args.push("--all".into());
    }
    args.push(format!("--digestfile={}", digest_file.display()));
    args.extend(registry.skopeo_flags("dest-"));
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args.push(image.oci_ref());
    args.push(format!("docker://{}/{reference}", registry.host()));
    if let Err(error) = skopeo(&args) {
        panic!(
            "pushing {reference} to {}: {error}\nregistry log:\n{}",
            registry.host(),
            registry.log()
        );
    }
    let digest = fs::read_to_string(&digest_file)
        .unwrap_or_else(|err| panic!("reading skopeo's --digestfile: {err}"));
    digest.trim().to_string()
}

/// `skopeo inspect --raw` of `reference` (`repo:tag` or `repo@digest`) with `flags`;
/// `Err` with skopeo's stderr.
pub fn try_skopeo_inspect_raw(
    registry: &Registry,
    reference: &str,
    flags: &[String],
) -> Result<String, String> {
    let mut args: Vec<String> = vec!["inspect".into(), "--raw".into()];
    args.extend(flags.iter().cloned());
    args.push(format!("docker://{}/{reference}", registry.host()));
    skopeo(&args)
}

/// The manifest bytes (as text) `registry` serves for `reference`, read by skopeo with
/// the registry's own TLS settings and credentials. Panics with stderr and the log.
pub fn skopeo_inspect_raw(registry: &Registry, reference: &str) -> String {
    try_skopeo_inspect_raw(registry, reference, &registry.skopeo_flags(""))
        .unwrap_or_else(|error| panic!("{error}\nregistry log:\n{}", registry.log()))
}

/// The oracle: sha256 of what `skopeo inspect --raw` returns for `reference`.
pub fn skopeo_raw_digest(registry: &Registry, reference: &str) -> String {
    sha256_digest(skopeo_inspect_raw(registry, reference).as_bytes())
}
