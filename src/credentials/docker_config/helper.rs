//! Docker credential helpers (`credHelpers`, `credsStore`): `docker-credential-NAME get` with
//! the server URL on stdin answers `{"ServerURL", "Username", "Secret"}` on stdout
//! ([protocol](https://github.com/docker/docker-credential-helpers)). A user name of
//! `<token>` means the secret is an identity token (Docker's convention). A non-zero exit
//! saying "credentials not found" means there are none; any other failure is an error that
//! names the helper and keeps its stderr (a helper never prints the secret there).

use super::ClassifyName as _;
use crate::registry::auth::Credentials;
use crate::secret::Secret;
use anyhow::{anyhow, bail, Context as _};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

/// How long a helper may take before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// What the protocol says a missing entry looks like (docker-credential-helpers'
/// `ErrCredentialsNotFound`).
const NOT_FOUND: &str = "credentials not found";

/// The user name that marks the secret as an identity token.
const TOKEN_USER: &str = "<token>";

/// The helper's answer on stdout.
#[derive(serde::Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: Secret,
}

/// The executable for helper `name`.
pub fn program(name: &str) -> String {
    format!("docker-credential-{name}")
}

/// Runs helper `name` for `server_url`; `None` when it has no credentials for it.
pub async fn get(
    name: &str,
    server_url: &str,
    timeout: Duration,
) -> anyhow::Result<Option<Credentials>> {
    if name.is_empty() || name.contains('/') {
        bail!("credential helper name {name:?} is not a plain name");
    }
    run(&program(name), server_url, timeout).await
}

/// Runs `program get` (a name looked up on PATH, or a path) for `server_url`.
async fn run(
    program: &str,
    server_url: &str,
    timeout: Duration,
) -> anyhow::Result<Option<Credentials>> {
    let mut child = tokio::process::Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow!(
                "credential helper {program} is not installed (not found on PATH); install it \
                 in the resource's image or remove it from docker_config"
            ),
            _ => anyhow!("starting credential helper {program}: {e}"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is judged by its exit status.
        let _ = stdin.write_all(server_url.as_bytes()).await;
    }
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            anyhow!(
                "credential helper {program} did not answer within {} s for {server_url}",
                timeout.as_secs()
            )
        })?
        .with_context(|| format!("running credential helper {program}"))?;
    parse(
        program,
        server_url,
        output.status.success(),
        &output.stdout,
        &output.stderr,
    )
}

/// The protocol's answer, pure: exit status, stdout and stderr → credentials, none, or an
/// error naming `program` that never holds stdout of a success (the secret).
pub fn parse(
    program: &str,
    server_url: &str,
    success: bool,
    stdout: &[u8],
    stderr: &[u8],
) -> anyhow::Result<Option<Credentials>> {
    let stderr = String::from_utf8_lossy(stderr);
    if !success {
        let stdout = String::from_utf8_lossy(stdout);
        if stdout.to_ascii_lowercase().contains(NOT_FOUND)
            || stderr.to_ascii_lowercase().contains(NOT_FOUND)
        {
            return Ok(None);
        }
        bail!(
            "credential helper {program} failed for {server_url}: {}",
            one_line(&stderr)
                .unwrap_or_else(|| "it exited non-zero and said nothing on stderr".into())
        );
    }
    let answer: Answer = serde_json::from_slice(stdout).map_err(|e| {
        anyhow!(
            "credential helper {program} answered for {server_url} with something other than \
             {{\"Username\", \"Secret\"}} JSON ({} bytes, {}: line {} column {})",
            stdout.len(),
            e.classify_name(),
            e.line(),
            e.column()
        )
    })?;
    Ok(match (answer.username.as_str(), answer.secret.is_empty()) {
        (_, true) => None,
        (TOKEN_USER, false) => Some(Credentials::IdentityToken(answer.secret)),
        (username, false) => Some(Credentials::basic(username, answer.secret)),
    })
}

/// Stderr as one trimmed line of at most 300 characters; `None` when empty.
fn one_line(text: &str) -> Option<String> {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.chars().count() {
        0 => None,
        n if n > 300 => Some(format!("{}…", line.chars().take(300).collect::<String>())),
        _ => Some(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn parsed(success: bool, stdout: &str, stderr: &str) -> Result<Option<Credentials>, String> {
        parse(
            "docker-credential-t",
            "gcr.io",
            success,
            stdout.as_bytes(),
            stderr.as_bytes(),
        )
        .map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn protocol_answers() {
        let basic = parsed(
            true,
            r#"{"ServerURL":"gcr.io","Username":"u","Secret":"s3"}"#,
            "",
        );
        assert_eq!(basic, Ok(Some(Credentials::basic("u", Secret::new("s3")))));
        let token = parsed(true, r#"{"Username":"<token>","Secret":"rt"}"#, "");
        assert_eq!(
            token,
            Ok(Some(Credentials::IdentityToken(Secret::new("rt"))))
        );
        assert_eq!(parsed(true, r#"{"Username":"","Secret":""}"#, ""), Ok(None));
        for (stdout, stderr) in [
            ("credentials not found in native keychain\n", ""),
            ("", "Credentials not found"),
        ] {
            assert_eq!(parsed(false, stdout, stderr), Ok(None));
        }
    }

    #[test]
    fn protocol_failures_name_the_helper_and_keep_no_secret() {
        let err = parsed(
            false,
            "",
            "error getting credentials - err: exit status 1\n",
        )
        .err()
        .unwrap_or_default();
        assert!(
            err.contains("docker-credential-t") && err.contains("exit status 1"),
            "{err}"
        );
        assert!(err.contains("gcr.io"), "{err}");
        let silent = parsed(false, "", "").err().unwrap_or_default();
        assert!(silent.contains("said nothing"), "{silent}");
        let garbled = parsed(true, r#"{"Username":"u","Secret":"s3cr3t-value"#, "")
            .err()
            .unwrap_or_default();
        assert!(garbled.contains("docker-credential-t"), "{garbled}");
        assert!(!garbled.contains("s3cr3t-value"), "{garbled}");
    }

    fn script(dir: &std::path::Path, body: &str) -> String {
        let path = dir.join("docker-credential-unit");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap_or_default();
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        path.display().to_string()
    }

    #[tokio::test]
    async fn a_slow_helper_times_out_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let slow = script(dir.path(), "sleep 5");
        let started = std::time::Instant::now();
        let err = run(&slow, "gcr.io", Duration::from_millis(200)).await;
        assert!(started.elapsed() < Duration::from_secs(4));
        let err = format!("{:#}", err.err().unwrap_or_else(|| anyhow!("no error")));
        assert!(err.contains("did not answer within"), "{err}");

        let missing = get("no-such-helper-xyz", "gcr.io", TIMEOUT).await;
        let err = format!("{:#}", missing.err().unwrap_or_else(|| anyhow!("no error")));
        assert!(
            err.contains("docker-credential-no-such-helper-xyz") && err.contains("not installed"),
            "{err}"
        );
    }
}
