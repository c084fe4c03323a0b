//! [`Workspace`]: the private directory one build runs in, inside the put's scratch
//! directory (mode 0700): buildah's storage (`storage/`, `run/`), its configuration
//! (`auth.json`, `registries.conf`, an empty `registries.conf.d/`, `containers.conf`,
//! `storage.conf`, written from the image's `assets/`), a `home/` whose `.config/containers/`
//! holds `policy.json` (from `assets/`) and in `certs.d/` per-registry certificates, extra CAs (`cas/`), secrets (`secrets/`, 0700, files 0600) and `tmp/`.
//! Nothing of the machine's own containers configuration is read or written, and
//! everything goes when the build ends.

use super::assets;
use super::registries::RegistryAccess;
use super::request::{SecretInput, SecretSource};
use anyhow::Context as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// The build's private directory and what is in it.
#[derive(Debug)]
pub struct Workspace {
    /// The directory itself.
    pub root: PathBuf,
    /// `--root`.
    pub storage: PathBuf,
    /// `--runroot`.
    pub runroot: PathBuf,
    /// `$HOME` for buildah (its `certs.d`).
    pub home: PathBuf,
    /// `$TMPDIR` for buildah.
    pub tmp: PathBuf,
    /// `--authfile`.
    pub auth_file: PathBuf,
    /// `--registries-conf`.
    pub registries_conf: PathBuf,
    /// `--registries-conf-dir` (empty: no drop-ins, no short-name aliases).
    pub registries_conf_dir: PathBuf,
    /// `--short-name-alias-conf`.
    pub short_name_aliases: PathBuf,
    /// `$CONTAINERS_CONF`.
    pub containers_conf: PathBuf,
    /// `$CONTAINERS_STORAGE_CONF`.
    pub storage_conf: PathBuf,
    /// Extra CAs for every registry (`$SSL_CERT_DIR`), when there are any.
    pub cas: Option<PathBuf>,
    /// `--iidfile`.
    pub iid_file: PathBuf,
    secrets: PathBuf,
}

impl Workspace {
    /// Creates `<scratch>/build` with the configuration for `access` and the registries
    /// named by `hosts`.
    pub fn create(
        scratch: &Path,
        access: &RegistryAccess,
        hosts: &[String],
    ) -> anyhow::Result<Workspace> {
        let root = scratch.join("build");
        private_dir(&root)?;
        let ws = Workspace {
            storage: root.join("storage"),
            runroot: root.join("run"),
            home: root.join("home"),
            tmp: root.join("tmp"),
            auth_file: root.join("auth.json"),
            registries_conf: root.join("registries.conf"),
            registries_conf_dir: root.join("registries.conf.d"),
            short_name_aliases: root.join("short-name-aliases.conf"),
            containers_conf: root.join("containers.conf"),
            storage_conf: root.join("storage.conf"),
            cas: None,
            iid_file: root.join("image-id"),
            secrets: root.join("secrets"),
            root,
        };
        for dir in [
            &ws.storage,
            &ws.runroot,
            &ws.home,
            &ws.tmp,
            &ws.registries_conf_dir,
            &ws.secrets,
        ] {
            private_dir(dir)?;
        }
        private_file(&ws.auth_file, access.auth_file().as_bytes())?;
        let registries = access.registries_conf(hosts, &super::registries::resolve);
        private_file(&ws.registries_conf, registries.as_bytes())?;
        let network = ws.root.join("network");
        private_dir(&network)?;
        // Network backends keep lock files in their config dir: keep them here too.
        let ulimits: Vec<String> = super::buildah::ulimits()
            .iter()
            .map(|limit| toml_string(limit))
            .collect();
        let containers = assets::set(
            "containers.conf",
            assets::CONTAINERS_CONF,
            &[
                ("default_ulimits", format!("[{}]", ulimits.join(", "))),
                (
                    "network_config_dir",
                    format!("\"{}\"", toml_path(&network)?),
                ),
            ],
        )?;
        private_file(&ws.containers_conf, containers.as_bytes())?;
        let storage = assets::set(
            "storage.conf",
            assets::STORAGE_CONF,
            &[
                ("graphroot", format!("\"{}\"", toml_path(&ws.storage)?)),
                ("runroot", format!("\"{}\"", toml_path(&ws.runroot)?)),
            ],
        )?;
        private_file(&ws.storage_conf, storage.as_bytes())?;
        // containers/image reads $HOME/.config/containers/policy.json before the machine's.
        let containers_dir = ws.home.join(".config/containers");
        private_dir(&containers_dir)?;
        private_file(
            &containers_dir.join("policy.json"),
            assets::POLICY_JSON.as_bytes(),
        )?;
        let certs_d = ws.home.join(".config/containers/certs.d");
        for dir in access.cert_dirs(hosts) {
            let path = certs_d.join(&dir.name);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            if let Some(ca) = &dir.ca {
                private_file(&path.join("ca.crt"), ca.as_bytes())?;
            }
            if let Some((cert, key)) = &dir.client {
                private_file(&path.join("client.cert"), cert.as_bytes())?;
                private_file(&path.join("client.key"), key.expose().as_bytes())?;
            }
        }
        let shared = access.shared_cas();
        let cas = if shared.is_empty() {
            None
        } else {
            let dir = ws.root.join("cas");
            private_dir(&dir)?;
            for (i, pem) in shared.iter().enumerate() {
                private_file(&dir.join(format!("ca-{i}.crt")), pem.as_bytes())?;
            }
            Some(dir)
        };
        Ok(Workspace { cas, ..ws })
    }

    /// The `--secret` values for buildah: `id=ID,src=PATH`. A secret from the environment
    /// is written to a 0600 file in the 0700 `secrets/` directory first.
    pub fn secret_args(&self, secrets: &[SecretInput]) -> anyhow::Result<Vec<String>> {
        secrets
            .iter()
            .map(|secret| {
                let path = match &secret.source {
                    SecretSource::File(path) => path.clone(),
                    SecretSource::Value(value) => {
                        let path = self.secrets.join(&secret.id);
                        private_file(&path, value.expose().as_bytes())
                            .with_context(|| format!("params.secrets.{}", secret.id))?;
                        path
                    }
                };
                Ok(format!("id={},src={}", secret.id, path.display()))
            })
            .collect()
    }
}

/// A TOML basic string for a value made here (no quotes or backslashes to escape).
fn toml_string(value: &str) -> String {
    format!("\"{value}\"")
}

fn private_dir(path: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))
}

fn private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

/// A path for a TOML basic string; paths with quotes, backslashes or control characters
/// are refused rather than escaped.
fn toml_path(path: &Path) -> anyhow::Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    if text.contains(['"', '\\']) || text.chars().any(char::is_control) {
        anyhow::bail!("the scratch path {text:?} cannot be written into buildah's configuration; set TMPDIR to a plain path");
    }
    Ok(text.to_string())
}
