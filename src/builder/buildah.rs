//! [`Buildah`]: builds a [`BuildRequest`] with buildah into an OCI layout directory, in a
//! private [`Workspace`] that goes when the build ends. One function per buildah call; a
//! failed call's error keeps the end of what buildah said on stderr.
//!
//! Every call gets `--root`/`--runroot` in the workspace, `--storage-driver vfs` (no
//! kernel overlay needed), and the workspace's registries configuration; `bud` runs with
//! `--isolation chroot` (no runtime, no network namespace), `--layers` (one layer per
//! instruction, as Docker builds) and `--pull=false` (pull a base only when it is not in
//! the storage, so loaded bases are used as they are). buildah's stdout (the step lines and
//! `RUN` output) goes to our stderr: our stdout is only the JSON response.

use super::bases::{image_names, layers_of, BaseLayer};
use super::registries::RegistryAccess;
use super::request::{BuildRequest, SavedImage};
use super::workspace::Workspace;
use crate::log::Log;
use crate::resource::PullPolicy;
use anyhow::{bail, Context as _};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead as _, BufReader};
use std::os::fd::AsFd as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// The program run by default, looked up on `PATH`.
pub const PROGRAM: &str = "buildah";

/// The environment variable that names another buildah to run (a path or a name on `PATH`),
/// such as a wrapper that runs a newer buildah than the machine's (`ci/buildah`).
pub const PROGRAM_VARIABLE: &str = "IMAGE_RESOURCE_BUILDAH";

/// The buildah to run: [`PROGRAM_VARIABLE`] when set and not empty, else [`PROGRAM`].
pub fn program() -> OsString {
    std::env::var_os(PROGRAM_VARIABLE)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| PROGRAM.into())
}

/// How many of the last stderr lines a failed call's error keeps.
const STDERR_TAIL: usize = 6;

/// Builds images with buildah.
#[derive(Debug)]
pub struct Buildah {
    workspace: Workspace,
    log: Log,
}

impl Buildah {
    /// Prepares a private workspace in `scratch` for a build that uses `access` to reach
    /// the registries named by `hosts`; our own lines go to `log` (buildah's output goes to
    /// stderr as buildah writes it).
    pub fn new(
        scratch: &Path,
        access: &RegistryAccess,
        hosts: &[String],
        log: &Log,
    ) -> anyhow::Result<Buildah> {
        let workspace = Workspace::create(scratch, access, hosts)
            .context("preparing buildah's private workspace")?;
        Ok(Buildah {
            workspace,
            log: log.clone(),
        })
    }

    /// Builds `request` and writes the image as an OCI layout at `layout` (tag `latest`).
    pub fn build(&self, request: &BuildRequest, layout: &Path) -> anyhow::Result<()> {
        for saved in &request.bases {
            self.load(saved, false)?;
        }
        for saved in &request.cache_from {
            self.load(saved, true)?;
        }
        if let Some(cache) = &request.cache {
            let name = format!("{}:{}", cache.repository, cache.tag);
            match self.pull(&name) {
                Ok(()) => self.log.line(format_args!(
                    "cache: pulled {name}; its layers are reused where they match"
                )),
                Err(e) => self.log.line(format_args!(
                    "cache: {name} is not available ({e:#}); building without it"
                )),
            }
        }
        self.log.line(format_args!(
            "building {} with buildah",
            request.dockerfile.display()
        ));
        self.bud(request)
            .map_err(|e| match request.pull {
                PullPolicy::Never => e.context(
                    "params.pull is never: bases not supplied by load_base, load_bases or cache_from are not pulled",
                ),
                _ => e,
            })
            .with_context(|| format!("building {}", request.dockerfile.display()))?;
        let id = std::fs::read_to_string(&self.workspace.iid_file)
            .with_context(|| format!("reading {}", self.workspace.iid_file.display()))?;
        self.push_layout(id.trim(), layout)
    }

    /// Loads a saved image (`image` from `in` with `save: true`) and names it. A cache
    /// image is stored as an OCI image: buildah only takes cached layers from images of the
    /// format it builds, and a docker-save tarball loads as a Docker image.
    fn load(&self, saved: &SavedImage, as_cache: bool) -> anyhow::Result<()> {
        let what = saved.archive.display();
        let mut id = self
            .pull_id(&format!("docker-archive:{what}"))
            .with_context(|| format!("loading {what}"))?;
        if as_cache {
            // Relative to `tmp/`: buildah names an image pulled from a layout by its path,
            // and the scratch path may have upper-case letters a name cannot.
            let layout = self.workspace.tmp.join("cache-image");
            let converted = "oci:cache-image:latest";
            self.run(&[os("push"), os("--quiet"), os(&id), os(converted)])
                .with_context(|| format!("storing {what} as an OCI image"))?;
            id = self
                .pull_id(converted)
                .with_context(|| format!("storing {what} as an OCI image"))?;
            std::fs::remove_dir_all(&layout)
                .with_context(|| format!("removing {}", layout.display()))?;
        }
        self.run(&[os("tag"), os(&id), os(&saved.name)])
            .with_context(|| format!("naming {what} {}", saved.name))?;
        self.log
            .line(format_args!("loaded {what} as {}", saved.name));
        Ok(())
    }

    /// `buildah pull` of `source` (a transport:reference); the image's id.
    fn pull_id(&self, source: &str) -> anyhow::Result<String> {
        let auth = self.auth_file();
        let output = self.run(&[
            os("pull"),
            os("--quiet"),
            os("--authfile"),
            auth,
            os(source),
        ])?;
        let id = output.lines().last().unwrap_or_default().trim().to_string();
        if id.is_empty() {
            bail!("buildah pull printed no image id");
        }
        Ok(id)
    }

    /// `buildah pull` of a registry image into the storage.
    fn pull(&self, name: &str) -> anyhow::Result<()> {
        self.pull_id(&format!("docker://{name}")).map(drop)
    }

    /// `buildah bud`, its output streamed to our stderr.
    fn bud(&self, request: &BuildRequest) -> anyhow::Result<()> {
        let ws = &self.workspace;
        let mut args: Vec<OsString> = [
            "bud",
            "--isolation",
            "chroot",
            "--layers",
            pull_flag(request.pull),
            "--format",
            "oci",
            "--identity-label=false",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        for limit in ulimits() {
            args.push("--ulimit".into());
            args.push(limit.into());
        }
        args.push("--authfile".into());
        args.push(self.auth_file().into());
        args.push("--iidfile".into());
        args.push(ws.iid_file.clone().into());
        args.push("--file".into());
        args.push(request.dockerfile.clone().into());
        if let Some(target) = &request.target {
            args.push("--target".into());
            args.push(target.into());
        }
        for (name, value) in &request.build_args {
            args.push("--build-arg".into());
            args.push(format!("{name}={value}").into());
        }
        for (name, value) in &request.labels {
            args.push("--label".into());
            args.push(format!("{name}={value}").into());
        }
        for secret in ws.secret_args(&request.secrets)? {
            args.push("--secret".into());
            args.push(secret.into());
        }
        if let Some(cache) = &request.cache {
            for flag in ["--cache-from", "--cache-to"] {
                args.push(flag.into());
                args.push(cache.layers.clone().into());
            }
        }
        args.push(request.context.clone().into());

        let mut command = self.command();
        command.args(&args);
        let stderr_fd = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating stderr for buildah's output")?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(stderr_fd))
            .stderr(Stdio::piped());
        let mut child = spawn(&mut command)?;
        let tail = match child.stderr.take() {
            Some(pipe) => forward_stderr(pipe, std::io::stderr()),
            None => VecDeque::new(),
        };
        let status = child.wait().context("waiting for buildah bud")?;
        check(status, "bud", &tail)
    }

    /// The layers of every image pulled from `registry` into the storage (bases, cache
    /// images), with the blobs that registry holds; `loaded` names images loaded from
    /// files, which have none. A failure only loses the sharing: it is a warning.
    pub fn pulled_layers(&self, registry: &str, loaded: &[String]) -> Vec<BaseLayer> {
        let names = match self
            .run(&[os("images"), os("--json")])
            .and_then(|listed| image_names(&listed))
        {
            Ok(names) => names,
            Err(e) => {
                self.log.line(format_args!(
                    "warning: listing the base images failed ({e:#}): base layers are pushed as built"
                ));
                return Vec::new();
            }
        };
        let mut layers = Vec::new();
        let from_registry = |name: &String| {
            crate::reference::Reference::parse(name).is_ok_and(|r| r.registry() == registry)
        };
        for name in names
            .iter()
            .filter(|n| !loaded.contains(n) && from_registry(n))
        {
            let found = self
                .run(&[os("inspect"), os("--type"), os("image"), os(name)])
                .and_then(|inspected| layers_of(name, &inspected));
            match found {
                Ok(found) => layers.extend(found),
                Err(e) => self.log.line(format_args!(
                    "warning: reading base image {name} failed ({e:#}): its layers are pushed as built"
                )),
            }
        }
        layers
    }

    /// `buildah push` of the built image into an OCI layout directory.
    fn push_layout(&self, id: &str, layout: &Path) -> anyhow::Result<()> {
        let destination = format!("oci:{}:latest", layout.display());
        self.run(&[os("push"), os("--quiet"), os(id), os(&destination)])
            .map(drop)
            .context("writing the built image as an OCI layout")
    }

    fn auth_file(&self) -> &OsStr {
        self.workspace.auth_file.as_os_str()
    }

    /// Runs a short buildah call, returning its stdout; its stderr goes into the error.
    fn run(&self, args: &[&OsStr]) -> anyhow::Result<String> {
        let mut command = self.command();
        command.args(args).stdin(Stdio::null());
        let output = match command.output() {
            Ok(output) => output,
            Err(e) => return Err(spawn_error(e)),
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: VecDeque<String> = stderr.lines().map(str::to_string).collect();
        let call = args
            .first()
            .map(|a| a.to_string_lossy())
            .unwrap_or_default();
        check(output.status, &call, &tail)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `buildah` with the global flags and environment that keep it in the workspace.
    fn command(&self) -> Command {
        let ws = &self.workspace;
        let mut command = Command::new(program());
        command
            .current_dir(&ws.tmp)
            .arg("--root")
            .arg(&ws.storage)
            .arg("--runroot")
            .arg(&ws.runroot)
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--registries-conf")
            .arg(&ws.registries_conf)
            .arg("--registries-conf-dir")
            .arg(&ws.registries_conf_dir)
            .arg("--short-name-alias-conf")
            .arg(&ws.short_name_aliases);
        for name in [
            "BUILDAH_FORMAT",
            "BUILDAH_ISOLATION",
            "BUILDAH_LAYERS",
            "STORAGE_DRIVER",
            "STORAGE_OPTS",
            "REGISTRY_AUTH_FILE",
            "DOCKER_CONFIG",
        ] {
            command.env_remove(name);
        }
        command
            .env("HOME", &ws.home)
            .env("XDG_CONFIG_HOME", ws.home.join(".config"))
            .env("XDG_DATA_HOME", ws.home.join(".local/share"))
            .env("TMPDIR", &ws.tmp)
            .env("CONTAINERS_CONF", &ws.containers_conf)
            .env("CONTAINERS_STORAGE_CONF", &ws.storage_conf)
            .env("CONTAINERS_REGISTRIES_CONF", &ws.registries_conf);
        if let Some(cas) = &ws.cas {
            // Go reads the system bundle file and then every file in $SSL_CERT_DIR.
            let system = std::env::var("SSL_CERT_DIR")
                .unwrap_or_else(|_| "/etc/ssl/certs:/etc/pki/tls/certs".to_string());
            command.env("SSL_CERT_DIR", format!("{}:{system}", cas.display()));
        }
        command
    }

    /// Removes the workspace: storage, configuration, certificates, secrets. When plain
    /// removal fails (files owned by another user in a rootless user namespace), buildah
    /// removes its containers and images first.
    pub fn remove(self) {
        let root = self.workspace.root.clone();
        if std::fs::remove_dir_all(&root).is_ok() || !root.exists() {
            return;
        }
        let _ = self.run(&[os("rm"), os("--all")]);
        let _ = self.run(&[os("rmi"), os("--all"), os("--force")]);
        if let Err(e) = std::fs::remove_dir_all(&root) {
            self.log.line(format_args!(
                "warning: could not remove buildah's workspace {}: {e}",
                root.display()
            ));
        }
    }
}

/// buildah's `--pull` for `params.pull`.
pub fn pull_flag(policy: PullPolicy) -> &'static str {
    match policy {
        PullPolicy::Always => "--pull=always",
        PullPolicy::IfNotExists => "--pull=missing",
        PullPolicy::Never => "--pull=never",
    }
}

/// `--ulimit` values for `RUN` steps: the soft and hard limits `out` itself runs with, for
/// open files and processes. buildah 1.39 otherwise asks for its own defaults (1048576 open
/// files), which a container with lower hard limits refuses, failing every `RUN`.
pub fn ulimits() -> Vec<String> {
    use rustix::process::{getrlimit, Resource};
    [("nofile", Resource::Nofile), ("nproc", Resource::Nproc)]
        .into_iter()
        .map(|(name, resource)| {
            let limit = getrlimit(resource);
            ulimit(name, limit.current, limit.maximum)
        })
        .collect()
}

/// `NAME=SOFT:HARD`, `-1` for unlimited.
fn ulimit(name: &str, soft: Option<u64>, hard: Option<u64>) -> String {
    let text = |v: Option<u64>| v.map_or("-1".to_string(), |v| v.to_string());
    format!("{name}={}:{}", text(soft), text(hard))
}

fn os(text: &str) -> &OsStr {
    OsStr::new(text)
}

fn spawn(command: &mut Command) -> anyhow::Result<std::process::Child> {
    command.spawn().map_err(spawn_error)
}

fn spawn_error(e: std::io::Error) -> anyhow::Error {
    let program = program();
    let program = program.to_string_lossy();
    if e.kind() != std::io::ErrorKind::NotFound {
        return anyhow::anyhow!("starting {program}: {e}");
    }
    if std::env::var_os(PROGRAM_VARIABLE).is_some_and(|p| !p.is_empty()) {
        anyhow::anyhow!(
            "{program} (from {PROGRAM_VARIABLE}) was not found: `out` builds Dockerfiles (params.build) with buildah; point {PROGRAM_VARIABLE} at a buildah or unset it"
        )
    } else {
        anyhow::anyhow!(
            "{PROGRAM} is not installed (not found on PATH): `out` builds Dockerfiles (params.build) with buildah; install it (apt-get install buildah; 1.39 or later, as in Debian trixie)"
        )
    }
}

/// Copies a child's stderr to `out` (our stderr) line by line, keeping the last
/// [`STDERR_TAIL`] lines.
fn forward_stderr(pipe: impl std::io::Read, mut out: impl std::io::Write) -> VecDeque<String> {
    let mut tail = VecDeque::with_capacity(STDERR_TAIL);
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let _ = out.write_all(&line);
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if !text.is_empty() {
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(text);
                }
            }
        }
    }
    tail
}

/// An error for a failed call: buildah's last `Error:` line, else the end of its stderr.
fn check(status: ExitStatus, call: &str, stderr: &VecDeque<String>) -> anyhow::Result<()> {
    if status.success() {
        return Ok(());
    }
    let lines: Vec<&str> = stderr
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .collect();
    let error = lines.iter().rev().find_map(|line| {
        line.strip_prefix("Error: ")
            .or_else(|| line.strip_prefix("error: "))
    });
    let said = match error {
        Some(error) => error.to_string(),
        None => lines[lines.len().saturating_sub(3)..].join(" / "),
    };
    if said.is_empty() {
        bail!("{PROGRAM} {call} failed ({status})");
    }
    bail!("{PROGRAM} {call} failed ({status}): {said}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt as _;

    #[test]
    fn errors_keep_buildahs_last_error_line_or_the_end_of_stderr() {
        let failed = ExitStatus::from_raw(1 << 8);
        let lines = |text: &str| text.lines().map(str::to_string).collect::<VecDeque<_>>();
        let stderr = lines("Copying config\nsubprocess exited with status 1\nError: building at STEP \"RUN false\": exit status 1\n");
        let e = check(failed, "bud", &stderr).map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err("buildah bud failed (exit status: 1): building at STEP \"RUN false\": exit status 1".into())
        );
        let e = check(failed, "pull", &lines("a\nb\n\nc\nd\n")).map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err("buildah pull failed (exit status: 1): b / c / d".into())
        );
        let e = check(failed, "tag", &VecDeque::new()).map_err(|e| e.to_string());
        assert_eq!(e, Err("buildah tag failed (exit status: 1)".into()));
        assert!(check(ExitStatus::from_raw(0), "tag", &stderr).is_ok());
    }

    #[test]
    fn ulimits_are_soft_and_hard_with_minus_one_for_unlimited() {
        assert_eq!(
            ulimit("nofile", Some(1024), Some(20000)),
            "nofile=1024:20000"
        );
        assert_eq!(ulimit("nproc", None, None), "nproc=-1:-1");
        let limits = ulimits();
        assert!(limits[0].starts_with("nofile=") && limits[1].starts_with("nproc="));
    }

    #[test]
    fn forwarded_stderr_keeps_the_last_lines() {
        let text: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        let mut copy = Vec::new();
        let tail = forward_stderr(text.as_bytes(), &mut copy);
        assert_eq!(copy, text.as_bytes());
        assert_eq!(tail.len(), STDERR_TAIL);
        assert_eq!(tail.back().map(String::as_str), Some("line 10"));
        assert_eq!(tail.front().map(String::as_str), Some("line 5"));
    }
}
