//! `check` with `git_repo`: the tag to check is the commit at the head of `git_branch`
//! (default `master`) of a git repository, read with `git ls-remote` (no clone), as the
//! docker-image-resource fork that introduced these options does.
//!
//! - One function per git call (`ls_remote`); its error keeps git's (and ssh's) stderr,
//!   trimmed, with any line of the private key removed.
//! - git runs with a timeout ([`GIT_TIMEOUT`]), stdin closed, `GIT_TERMINAL_PROMPT=0`, no
//!   askpass program and no credential helpers, so it can fail but never wait for a person.
//! - Over ssh (`ssh://`, `git+ssh://`, scp-like `user@host:path`) git runs
//!   `GIT_SSH_COMMAND` = `ssh -o BatchMode=yes ...` (`ssh_command`). `git_private_key` is
//!   written 0600 into a private 0700 temp dir (under `TMPDIR`) and passed with `-i` and
//!   `IdentitiesOnly=yes`; the dir is removed when the check ends, also on failure.
//! - Host keys (`HostKeys`): `git_known_hosts` when given (and only it: strict checking);
//!   otherwise a loopback host (`127.0.0.0/8`, `::1`, `localhost`) is accepted on first use
//!   into a known_hosts file in the temp dir; any other host is checked as the machine's ssh
//!   is configured (its known_hosts; an unknown host fails, since batch mode cannot ask).
//! - The image tag is the full SHA (40 hex, or 64 for a SHA-256 repository), checked like a
//!   pinned tag. No image with that tag yet: the given version again (`[]` without one), or
//!   with `fail_when_missing` an error naming the SHA, branch and repository.

use super::check_tag;
use crate::log::Log;
use crate::reference::Reference;
use crate::resource::{Source, Version};
use crate::secret::Secret;
use crate::settings::{Endpoint, Settings};
use anyhow::{anyhow, bail, Context as _};
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How long one git call may take before it is killed.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The branch when `git_branch` is unset (the fork's default).
pub const DEFAULT_BRANCH: &str = "master";

/// How much of git's stderr an error keeps.
const STDERR_LIMIT: usize = 2000;

/// The git options of `source`, validated.
#[derive(Debug)]
pub struct GitOptions<'a> {
    /// `git_repo` as written.
    pub repo: &'a str,
    /// `git_branch`, or [`DEFAULT_BRANCH`].
    pub branch: &'a str,
    /// `git_private_key`.
    pub private_key: Option<&'a Secret>,
    /// `git_known_hosts`: known_hosts lines for the ssh host.
    pub known_hosts: Option<&'a str>,
    /// `fail_when_missing`.
    pub fail_when_missing: bool,
}

impl<'a> GitOptions<'a> {
    /// The git mode's options when `git_repo` is set; `pinned` says whether the source also
    /// names a tag (`tag`, or `repository` with `:tag`/`@digest`), which is an error: the
    /// tag comes from git. The other git options without `git_repo` are errors too.
    pub fn from_source(source: &'a Source, pinned: bool) -> anyhow::Result<Option<Self>> {
        let Some(repo) = source.git_repo.as_deref() else {
            let stray = [
                ("git_branch", source.git_branch.is_some()),
                ("git_private_key", source.git_private_key.is_some()),
                ("git_known_hosts", source.git_known_hosts.is_some()),
            ];
            if let Some((option, _)) = stray.iter().find(|(_, set)| *set) {
                bail!("source.{option} is set but source.git_repo is not: set `git_repo` (the repository whose commit is the tag) or remove `{option}`");
            }
            if source.fail_when_missing && !pinned {
                bail!("source.fail_when_missing needs a tag to miss: set `git_repo` or `tag`, or remove `fail_when_missing`");
            }
            return Ok(None);
        };
        if pinned {
            bail!(
                "source.git_repo and a tag (`tag`, or `repository` with `:tag` or `@digest`) are \
                 both set: with `git_repo` the tag is the commit SHA of `git_branch`; remove one"
            );
        }
        let listing = [
            ("tag_regex", source.tag_regex.is_some()),
            ("semver_constraint", source.semver_constraint.is_some()),
        ];
        if let Some((option, _)) = listing.iter().find(|(_, set)| *set) {
            bail!("source.git_repo and source.{option} are both set: with `git_repo` the tag is the commit SHA of `git_branch`; remove one");
        }
        let repo = repo.trim();
        if repo.is_empty() || repo.starts_with('-') {
            bail!("source.git_repo: {repo:?} is not a git repository URL (`https://...`, `ssh://...`, `git@host:path`, `file://...` or a path)");
        }
        let branch = source.git_branch.as_deref().map(str::trim);
        let branch = match branch {
            None | Some("") => DEFAULT_BRANCH,
            Some(b) => b.strip_prefix("refs/heads/").unwrap_or(b),
        };
        if branch.starts_with('-') || branch.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!("source.git_branch: {branch:?} is not a branch name");
        }
        Ok(Some(GitOptions {
            repo,
            branch,
            private_key: source.git_private_key.as_ref(),
            known_hosts: source.git_known_hosts.as_deref(),
            fail_when_missing: source.fail_when_missing,
        }))
    }

    /// `refs/heads/<branch>`.
    fn refname(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }
}

/// The git mode: the head commit of the branch is the tag, checked with the cursor like a
/// pinned tag; a missing image is the given version again, or an error with
/// `fail_when_missing`.
pub async fn check(
    settings: &Settings,
    endpoints: &[Endpoint],
    options: &GitOptions<'_>,
    given: Option<&Version>,
    log: &Log,
) -> anyhow::Result<Vec<Version>> {
    let sha = head_commit(options, log).await?;
    let reference: Reference = settings
        .reference
        .clone()
        .with_tag(&sha)
        .map_err(|e| anyhow!("commit {sha} is not a valid tag: {}", e.reason))?;
    let versions = check_tag(&reference, endpoints, given, log).await?;
    if !versions.is_empty() {
        return Ok(versions);
    }
    let name = reference.name();
    if options.fail_when_missing {
        bail!(
            "no image {name}:{sha} yet: commit {sha} is the head of branch `{}` of git_repo {}, \
             and `fail_when_missing` is set; push the image for that commit, or unset \
             `fail_when_missing` to keep the previous version until it exists",
            options.branch,
            options.repo
        );
    }
    log.line(format_args!(
        "no image {name}:{sha} yet (head of branch `{}` of {}): {}",
        options.branch,
        options.repo,
        if given.is_some() {
            "keeping the given version"
        } else {
            "no versions"
        }
    ));
    Ok(given.cloned().into_iter().collect())
}

/// The pinned-tag mode's answer, or with `fail_when_missing` an error when the tag is missing.
pub fn require_found(
    versions: Vec<Version>,
    source: &Source,
    reference: &Reference,
) -> anyhow::Result<Vec<Version>> {
    if versions.is_empty() && source.fail_when_missing {
        bail!(
            "{} does not exist and `fail_when_missing` is set; push it, or unset \
             `fail_when_missing` to get no versions until it exists",
            reference
        );
    }
    Ok(versions)
}

/// The SHA at the head of the branch: `ls_remote` in a private temp dir (key, known_hosts).
pub async fn head_commit(options: &GitOptions<'_>, log: &Log) -> anyhow::Result<String> {
    let ssh = match ssh_host(options.repo) {
        Some(host) => Some(SshSetup::new(options, &host)?),
        None => {
            if options.private_key.is_some() || options.known_hosts.is_some() {
                log.line(format_args!(
                    "note: git_repo {} is not an ssh URL: `git_private_key` and \
                     `git_known_hosts` are not used",
                    options.repo
                ));
            }
            None
        }
    };
    let listing = ls_remote(options, ssh.as_ref()).await;
    // Remove the key now, whatever git said (Drop would too; this reports a failure).
    if let Some(ssh) = ssh {
        ssh.remove()?;
    }
    let listing = listing?;
    parse_head(&listing, &options.refname())
        .with_context(|| format!("reading `git ls-remote {}`", options.repo))?
        .ok_or_else(|| {
            anyhow!(
                "branch `{}` does not exist in git_repo {} (no {} in `git ls-remote`); set \
                 `git_branch` to one of its branches",
                options.branch,
                options.repo,
                options.refname()
            )
        })
}

/// `git ls-remote -- <repo> refs/heads/<branch>`: its stdout; an error with its stderr.
async fn ls_remote(options: &GitOptions<'_>, ssh: Option<&SshSetup>) -> anyhow::Result<String> {
    let refname = options.refname();
    let mut command = tokio::process::Command::new("git");
    command
        .args(["-c", "credential.helper=", "-c", "core.askPass="])
        .args(["ls-remote", "--", options.repo, &refname])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .env_remove("SSH_ASKPASS_REQUIRE")
        .env_remove("GIT_SSH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(ssh) = ssh {
        command.env("GIT_SSH_COMMAND", &ssh.command);
    }
    let failed = |why: String| {
        let mut message = format!(
            "git ls-remote of branch `{}` of git_repo {} failed: {why}",
            options.branch, options.repo
        );
        if why.contains("Host key verification failed") {
            message.push_str(
                "; the ssh host's key is not known: set `git_known_hosts` to its known_hosts \
                 line(s) (`ssh-keyscan HOST`, checked against a trusted copy)",
            );
        }
        anyhow!(message)
    };
    let child = command
        .spawn()
        .map_err(|e| failed(format!("could not run git ({e}); is git installed?")))?;
    let output = tokio::time::timeout(GIT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| failed(format!("no answer within {GIT_TIMEOUT:?}; killed")))?
        .map_err(|e| failed(format!("waiting for git: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = trimmed_reason(&stderr, options.private_key);
        return Err(failed(format!("{} ({})", reason, output.status)));
    }
    String::from_utf8(output.stdout).map_err(|_| failed("its output is not UTF-8".into()))
}

/// The SHA of `refname` in `git ls-remote` output (`<sha>\t<ref>` lines); `None` when the
/// ref is not listed. A listed ref with a malformed SHA is an error.
fn parse_head(listing: &str, refname: &str) -> anyhow::Result<Option<String>> {
    for line in listing.lines() {
        let Some((sha, name)) = line.split_once('\t') else {
            continue;
        };
        if name.trim_end() != refname {
            continue;
        }
        let sha = sha.trim();
        let hex = sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex || !(sha.len() == 40 || sha.len() == 64) {
            bail!("{refname} has no commit SHA (40 or 64 lowercase hex digits): {sha:?}");
        }
        return Ok(Some(sha.to_string()));
    }
    Ok(None)
}

/// git's stderr for an error: trimmed lines joined with `; ` (one paragraph), cut to [`STDERR_LIMIT`],
/// without any line of the private key (ssh never prints it; this makes sure).
fn trimmed_reason(stderr: &str, key: Option<&Secret>) -> String {
    let key_lines: Vec<&str> = key
        .map(|k| {
            k.expose()
                .lines()
                .map(str::trim)
                .filter(|l| l.len() >= 8)
                .collect()
        })
        .unwrap_or_default();
    let mut reason = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    for line in key_lines {
        reason = reason.replace(line, "<redacted>");
    }
    if reason.is_empty() {
        return "git printed no reason".to_string();
    }
    if reason.len() > STDERR_LIMIT {
        let mut end = STDERR_LIMIT;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push_str(" ...");
    }
    reason
}

/// The host of an ssh URL (`ssh://`, `git+ssh://`, `ssh+git://`, scp-like `[user@]host:path`),
/// without user, port or brackets; `None` for other transports and local paths.
fn ssh_host(repo: &str) -> Option<String> {
    let authority = if let Some((scheme, rest)) = repo.split_once("://") {
        if !["ssh", "git+ssh", "ssh+git"].contains(&scheme.to_ascii_lowercase().as_str()) {
            return None;
        }
        let authority = rest.split('/').next().unwrap_or(rest);
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if let Some(bracketed) = host.strip_prefix('[') {
            return bracketed.split(']').next().map(str::to_string);
        }
        return Some(host.split(':').next().unwrap_or(host).to_string());
    } else {
        // git's rule: scp-like when a ':' comes before any '/' (past a bracketed host).
        let from = match (repo.find('['), repo.find(']')) {
            (Some(open), Some(close)) if open < close && !repo[..open].contains('/') => close,
            _ => 0,
        };
        let colon = from + repo[from..].find(':')?;
        if repo.find('/').is_some_and(|slash| slash < colon) {
            return None;
        }
        &repo[..colon]
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| host.to_string())
}

/// Whether an ssh host is this machine (then an unknown host key is accepted on first use).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Where ssh's host keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostKeys {
    /// `git_known_hosts`, written to this file: strict checking against it.
    Given(PathBuf),
    /// A loopback host: accepted on first use into this (fresh) file.
    Loopback(PathBuf),
    /// Whatever the machine's ssh configuration says.
    Machine,
}

/// The private temp dir, key and known_hosts for one ssh `ls-remote`, and the ssh command.
struct SshSetup {
    dir: tempfile::TempDir,
    command: String,
}

impl SshSetup {
    /// Writes the key (0600) and known_hosts into a new 0700 dir under `TMPDIR`.
    fn new(options: &GitOptions<'_>, host: &str) -> anyhow::Result<SshSetup> {
        let dir = tempfile::Builder::new()
            .prefix("image-resource-git.")
            .tempdir()
            .context("creating a private temp dir for git's ssh key (is TMPDIR writable?)")?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .context("making the git temp dir private")?;
        let key = match options.private_key {
            Some(key) => {
                let path = dir.path().join("key");
                let mut text = key.expose().replace("\r\n", "\n");
                if !text.ends_with('\n') {
                    text.push('\n'); // ssh rejects a key without its final newline
                }
                write_private(&path, &text).context("writing source.git_private_key")?;
                Some(path)
            }
            None => None,
        };
        let host_keys = match options.known_hosts {
            Some(lines) => {
                let path = dir.path().join("known_hosts");
                let mut text = lines.to_string();
                text.push('\n');
                write_private(&path, &text).context("writing source.git_known_hosts")?;
                HostKeys::Given(path)
            }
            None if is_loopback(host) => HostKeys::Loopback(dir.path().join("known_hosts")),
            None => HostKeys::Machine,
        };
        let command = ssh_command(key.as_deref(), &host_keys);
        Ok(SshSetup { dir, command })
    }

    /// Removes the dir (key included).
    fn remove(self) -> anyhow::Result<()> {
        let path = self.dir.path().to_path_buf();
        self.dir
            .close()
            .with_context(|| format!("removing git's temp dir {}", path.display()))
    }
}

/// A new file only the owner can read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// `GIT_SSH_COMMAND`: batch mode (never a prompt), the key alone when given, host keys as
/// `HostKeys` says. git runs it through `sh`, so paths are single-quoted.
fn ssh_command(key: Option<&Path>, host_keys: &HostKeys) -> String {
    let mut command = vec![
        "ssh".to_string(),
        "-o BatchMode=yes".to_string(),
        "-o ConnectTimeout=30".to_string(),
    ];
    if let Some(key) = key {
        command.push(format!("-i {}", shell_quote(&key.to_string_lossy())));
        command.push("-o IdentitiesOnly=yes".to_string());
    }
    match host_keys {
        HostKeys::Given(file) => {
            command.push("-o StrictHostKeyChecking=yes".to_string());
            command.push(format!(
                "-o UserKnownHostsFile={}",
                shell_quote(&file.to_string_lossy())
            ));
        }
        HostKeys::Loopback(file) => {
            command.push("-o StrictHostKeyChecking=accept-new".to_string());
            command.push(format!(
                "-o UserKnownHostsFile={}",
                shell_quote(&file.to_string_lossy())
            ));
        }
        HostKeys::Machine => {}
    }
    command.join(" ")
}

/// `text` as one `sh` word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(fields: &str) -> Source {
        let comma = if fields.is_empty() { "" } else { "," };
        serde_json::from_str(&format!(r#"{{"repository": "r.io/a/b"{comma} {fields}}}"#))
            .expect("a valid source")
    }

    #[test]
    fn git_ssh_host_of_each_url_form() {
        let cases = [
            ("ssh://git@github.com/o/r.git", Some("github.com")),
            ("ssh://root@127.0.0.1:2222/srv/r.git", Some("127.0.0.1")),
            ("ssh://[::1]:22/r", Some("::1")),
            ("git+ssh://host/r", Some("host")),
            ("SSH://Host/r", Some("Host")),
            ("git@github.com:o/r.git", Some("github.com")),
            ("localhost:r.git", Some("localhost")),
            ("[::1]:r", Some("::1")),
            ("https://github.com/o/r.git", None),
            ("git://host/r", None),
            ("file:///srv/r.git", None),
            ("/srv/r.git", None),
            ("./a:b", None),
            ("relative/dir", None),
        ];
        for (url, host) in cases {
            assert_eq!(ssh_host(url).as_deref(), host, "{url}");
        }
        assert!(is_loopback("127.0.0.1") && is_loopback("127.1.2.3") && is_loopback("::1"));
        assert!(is_loopback("LocalHost"));
        assert!(!is_loopback("github.com") && !is_loopback("10.0.0.1"));
    }

    #[test]
    fn git_parse_head_exact_ref_and_sha_forms() {
        let sha1 = "af6687b1c63226508f9154d91155c78f62f0a425";
        let sha256 = "a".repeat(64);
        let listing = format!(
            "{sha256}\trefs/heads/x/main\n{sha1}\trefs/heads/main\n{sha1}\trefs/heads/other\n"
        );
        assert_eq!(
            parse_head(&listing, "refs/heads/main").unwrap(),
            Some(sha1.to_string())
        );
        assert_eq!(
            parse_head(&listing, "refs/heads/x/main").unwrap(),
            Some(sha256)
        );
        assert_eq!(parse_head(&listing, "refs/heads/nope").unwrap(), None);
        assert_eq!(parse_head("", "refs/heads/main").unwrap(), None);
        let bad = parse_head("XYZ\trefs/heads/main\n", "refs/heads/main").unwrap_err();
        assert!(bad.to_string().contains("no commit SHA"), "{bad}");
    }

    #[test]
    fn git_reason_is_trimmed_and_never_holds_the_key() {
        let key = Secret::new("-----BEGIN KEY-----\nAAAAsecretbase64line\n-----END KEY-----\n");
        let stderr = "\n  fatal: nope  \n echo AAAAsecretbase64line \n\n";
        assert_eq!(
            trimmed_reason(stderr, Some(&key)),
            "fatal: nope; echo <redacted>"
        );
        assert_eq!(trimmed_reason("  \n", None), "git printed no reason");
        let long = "é".repeat(STDERR_LIMIT);
        assert!(trimmed_reason(&long, None).ends_with(" ..."));
    }

    #[test]
    fn git_ssh_command_per_host_key_policy() {
        let key = Path::new("/t/it's/key");
        let given = ssh_command(Some(key), &HostKeys::Given("/t/kh".into()));
        assert_eq!(
            given,
            "ssh -o BatchMode=yes -o ConnectTimeout=30 -i '/t/it'\\''s/key' -o IdentitiesOnly=yes \
             -o StrictHostKeyChecking=yes -o UserKnownHostsFile='/t/kh'"
        );
        let loopback = ssh_command(None, &HostKeys::Loopback("/t/kh".into()));
        assert!(
            loopback.contains("StrictHostKeyChecking=accept-new"),
            "{loopback}"
        );
        let machine = ssh_command(None, &HostKeys::Machine);
        assert_eq!(machine, "ssh -o BatchMode=yes -o ConnectTimeout=30");
    }

    #[test]
    fn git_options_from_source() {
        let s = source(r#""git_repo": " file:///r ", "git_branch": "refs/heads/dev""#);
        let o = GitOptions::from_source(&s, false).unwrap().unwrap();
        assert_eq!(
            (o.repo, o.branch, o.refname().as_str()),
            ("file:///r", "dev", "refs/heads/dev")
        );
        let s = source(r#""git_repo": "file:///r""#);
        let o = GitOptions::from_source(&s, false).unwrap().unwrap();
        assert_eq!(o.branch, "master");
        assert!(!o.fail_when_missing);
        let error = |fields: &str, pinned: bool| {
            GitOptions::from_source(&source(fields), pinned)
                .unwrap_err()
                .to_string()
        };
        assert!(error(r#""git_repo": "r""#, true).contains("both set"));
        assert!(error(r#""git_repo": "r", "tag_regex": "x""#, false).contains("tag_regex"));
        assert!(error(r#""git_repo": "-u x""#, false).contains("not a git repository URL"));
        assert!(error(r#""git_repo": "r", "git_branch": "-x""#, false).contains("git_branch"));
        assert!(error(r#""git_branch": "main""#, false).contains("git_repo is not"));
        assert!(error(r#""git_private_key": "k""#, false).contains("git_private_key"));
        assert!(error(r#""fail_when_missing": true"#, false).contains("needs a tag"));
        // Without git_repo: nothing to do, and fail_when_missing is fine next to a tag.
        assert!(GitOptions::from_source(&source(""), false)
            .unwrap()
            .is_none());
        let pinned = source(r#""fail_when_missing": true"#);
        assert!(GitOptions::from_source(&pinned, true).unwrap().is_none());
    }
}
