//! Docker `config.json` given as `source.docker_config` (an object, or a JSON string of
//! one): credentials from `auths`, `credHelpers` and `credsStore`.
//!
//! - `auths` entries: `auth` (base64 `user:password`, split at the first `:` so a password
//!   may hold more; Google's `_json_key` and a service-account JSON work as any password),
//!   `username`/`password`, `identitytoken` (an OAuth2 refresh token, see
//!   [`Credentials::IdentityToken`]) and `registrytoken` (sent as it is). An entry with none
//!   of them (Docker writes `{}` next to a `credsStore`) holds no credentials.
//! - Per registry, first match wins: `credHelpers` (its helper), then `auths`, then
//!   `credsStore` (the default helper). A helper with no credentials ("credentials not
//!   found") passes on to the next; a helper that is missing or fails is an error.
//! - Keys are matched as `keys` says: deterministic, and when several keys match, a line
//!   on stderr names the one used.
//!
//! Everything is read and checked when the source is; helpers run on the first lookup of
//! a registry (the keychain caches answers per registry).

mod helper;
mod keys;

use super::Found;
use crate::registry::auth::Credentials;
use crate::resource::Source;
use crate::secret::Secret;
use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The configured source.
#[derive(Debug)]
pub struct DockerConfig {
    /// `auths` by key; `None` for an entry without credentials.
    auths: BTreeMap<String, Option<Credentials>>,
    /// `credHelpers`: key → helper name.
    cred_helpers: BTreeMap<String, String>,
    /// `credsStore`: the helper for every other registry.
    creds_store: Option<String>,
    /// How long a helper may run.
    helper_timeout: Duration,
    /// Where key-choice notes go.
    log: crate::log::Log,
}

/// One `auths` entry as written (secrets wrapped).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Entry {
    auth: Option<Secret>,
    username: Option<String>,
    password: Option<Secret>,
    identitytoken: Option<Secret>,
    registrytoken: Option<Secret>,
}

impl DockerConfig {
    /// Reads the options; `None` when they are not given. Key-choice notes go to `log`.
    pub fn from_source(
        source: &Source,
        log: &crate::log::Log,
    ) -> anyhow::Result<Option<DockerConfig>> {
        match &source.docker_config {
            Some(config) => DockerConfig::parse(config.as_object()).map(|parsed| {
                Some(DockerConfig {
                    log: log.clone(),
                    ..parsed
                })
            }),
            None => Ok(None),
        }
    }

    /// Reads a `config.json` object; errors name the key and field (never a value). Notes
    /// go to stderr.
    pub fn parse(config: &Map<String, Value>) -> anyhow::Result<DockerConfig> {
        let mut auths = BTreeMap::new();
        if let Some(section) = section(config, "auths")? {
            for (key, value) in section {
                let entry: Entry = serde_json::from_value(value.clone()).map_err(|e| {
                    anyhow!(
                        "docker_config.auths[{key:?}]: expected an object of auth, username, \
                         password, identitytoken, registrytoken strings ({})",
                        e.classify_name()
                    )
                })?;
                let credentials = entry_credentials(&entry)
                    .with_context(|| format!("docker_config.auths[{key:?}]"))?;
                auths.insert(key.clone(), credentials);
            }
        }
        let mut cred_helpers = BTreeMap::new();
        if let Some(section) = section(config, "credHelpers")? {
            for (key, value) in section {
                match value.as_str().map(str::trim) {
                    Some(name) if !name.is_empty() => {
                        cred_helpers.insert(key.clone(), name.to_string());
                    }
                    _ => bail!("docker_config.credHelpers[{key:?}]: expected a helper name"),
                }
            }
        }
        let creds_store = match config.get("credsStore") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) if name.trim().is_empty() => None,
            Some(Value::String(name)) => Some(name.trim().to_string()),
            Some(_) => bail!("docker_config.credsStore: expected a helper name"),
        };
        Ok(DockerConfig {
            auths,
            cred_helpers,
            creds_store,
            helper_timeout: helper::TIMEOUT,
            log: crate::log::Log::default(),
        })
    }

    /// Says a key choice on the log.
    fn note(&self, line: Option<String>) {
        if let Some(line) = line {
            self.log.line(line);
        }
    }

    /// The credentials this source has for registry `host` (the API host), if any.
    pub async fn lookup(&self, host: &str) -> anyhow::Result<Option<Found>> {
        let target = keys::Target {
            host,
            docker_hub: is_docker_hub(host),
        };
        let helpers = keys::matches(self.cred_helpers.keys().map(String::as_str), target);
        self.note(keys::choice_note("credHelpers", host, &helpers));
        if let Some(chosen) = helpers.first() {
            let name = self.cred_helpers.get(chosen.key).map_or("", String::as_str);
            if let Some(credentials) = helper::get(name, chosen.key, self.helper_timeout)
                .await
                .with_context(|| format!("docker_config.credHelpers[{:?}]", chosen.key))?
            {
                return Ok(Some(Found {
                    from: format!(
                        "docker_config (credHelpers key {:?}: {}, {})",
                        chosen.key,
                        helper::program(name),
                        credentials.kind()
                    ),
                    credentials,
                }));
            }
        }
        let with_credentials = self
            .auths
            .iter()
            .filter(|(_, credentials)| credentials.is_some())
            .map(|(key, _)| key.as_str());
        let entries = keys::matches(with_credentials, target);
        self.note(keys::choice_note("auths", host, &entries));
        if let Some(chosen) = entries.first() {
            if let Some(Some(credentials)) = self.auths.get(chosen.key) {
                return Ok(Some(Found {
                    credentials: credentials.clone(),
                    from: format!(
                        "docker_config (auths key {:?}, {})",
                        chosen.key,
                        credentials.kind()
                    ),
                }));
            }
        }
        let Some(store) = &self.creds_store else {
            return Ok(None);
        };
        let server_url = self.server_url(target);
        let found = helper::get(store, &server_url, self.helper_timeout)
            .await
            .with_context(|| format!("docker_config.credsStore, for registry {host}"))?;
        Ok(found.map(|credentials| Found {
            from: format!(
                "docker_config (credsStore: {} for {server_url:?}, {})",
                helper::program(store),
                credentials.kind()
            ),
            credentials,
        }))
    }

    /// The server URL a `credsStore` is asked for: Docker's for Docker Hub, else the best
    /// `auths` key for the registry (Docker keeps one per stored login), else the host.
    fn server_url(&self, target: keys::Target<'_>) -> String {
        if target.docker_hub {
            return keys::DOCKER_HUB_SERVER_URL.to_string();
        }
        keys::matches(self.auths.keys().map(String::as_str), target)
            .first()
            .map_or_else(|| target.host.to_string(), |m| m.key.to_string())
    }
}

/// A top-level object of the config, `None` when absent.
fn section<'c>(
    config: &'c Map<String, Value>,
    name: &str,
) -> anyhow::Result<Option<&'c Map<String, Value>>> {
    match config.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(section)) => Ok(Some(section)),
        Some(_) => bail!("docker_config.{name}: expected an object keyed by registry"),
    }
}

/// An entry's credentials, in Docker's order: `registrytoken`, `identitytoken`, `auth`,
/// `username`/`password`; `None` for an entry without any.
fn entry_credentials(entry: &Entry) -> anyhow::Result<Option<Credentials>> {
    let given = |s: &Option<Secret>| s.as_ref().filter(|s| !s.is_empty()).cloned();
    if let Some(token) = given(&entry.registrytoken) {
        return Ok(Some(Credentials::RegistryToken(token)));
    }
    if let Some(token) = given(&entry.identitytoken) {
        return Ok(Some(Credentials::IdentityToken(token)));
    }
    if let Some(auth) = given(&entry.auth) {
        let (username, password) = decode_auth(&auth).context("auth")?;
        return Ok(Some(Credentials::basic(username, password)));
    }
    match (
        entry.username.as_deref().unwrap_or(""),
        given(&entry.password),
    ) {
        ("", None) => Ok(None),
        ("", Some(_)) => bail!("password is set but username is not"),
        (_, None) => bail!("username is set but password (or auth) is not"),
        (username, Some(password)) => Ok(Some(Credentials::basic(username, password))),
    }
}

/// `auth`: base64 of `user:password`, split at the first `:`.
pub fn decode_auth(auth: &Secret) -> anyhow::Result<(String, Secret)> {
    let text = auth.expose().trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .map_err(|_| anyhow!("not base64 (expected base64 of `user:password`)"))?;
    let decoded =
        String::from_utf8(bytes).map_err(|_| anyhow!("its decoded value is not UTF-8 text"))?;
    match decoded.split_once(':') {
        Some((user, password)) if !user.is_empty() => Ok((user.to_string(), Secret::new(password))),
        Some(_) => bail!("its decoded value has no user name before the `:`"),
        None => bail!("its decoded value has no `:` between user name and password"),
    }
}

/// True for Docker Hub's API host, or the host standing in for it
/// ([`crate::settings::DOCKER_HUB_HOST_ENV`]).
fn is_docker_hub(host: &str) -> bool {
    if host.eq_ignore_ascii_case(crate::reference::DOCKER_HUB_API) {
        return true;
    }
    std::env::var(crate::settings::DOCKER_HUB_HOST_ENV)
        .is_ok_and(|stand_in| stand_in.trim().eq_ignore_ascii_case(host))
}

/// `serde_json`'s error category, without the input (which may hold a secret).
trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "a field has the wrong type",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

#[cfg(test)]
mod tests;
