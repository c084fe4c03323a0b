//! Which credentials each registry gets: one lookup, used everywhere a registry is contacted
//! (the repository, mirrors, `pull_repository`, `cache_from` and build bases, tag listing,
//! cross-repository mounts).
//!
//! Precedence, first match wins: explicit `username`/`password` (the repository's own
//! registry only) > `docker_config` ([`docker_config`]) > `registry_extension`
//! ([`extension`]) > Amazon ECR ([`ecr`]) / Azure ACR ([`acr`]) > anonymous. With `debug`,
//! one line per registry on the command's log says which source supplied credentials (never the secret).
//!
//! Every request to a credential service is retried like a registry request
//! ([`crate::registry::retry::send_small`]), with notes naming the service and its host.

pub mod acr;
pub mod docker_config;
pub mod ecr;
pub mod extension;

use crate::log::Log;
use crate::registry::auth::Credentials;
use crate::resource::Source;
use std::collections::HashMap;
use std::sync::Mutex;

/// Credentials found for a registry, and where they came from (for `debug`; no secret).
#[derive(Debug, Clone)]
pub struct Found {
    /// What to authenticate with.
    pub credentials: Credentials,
    /// Which source supplied them, e.g. `docker_config (auths key "gcr.io")`.
    pub from: String,
}

/// Every credential source of a `source`, asked in precedence order; answers are cached per
/// registry host for the run.
#[derive(Debug)]
pub struct Keychain {
    /// The repository's own API host, the only one explicit credentials go to.
    origin_host: String,
    explicit: Option<Credentials>,
    docker_config: Option<docker_config::DockerConfig>,
    extension: Option<extension::Extension>,
    ecr: Option<ecr::Ecr>,
    acr: Option<acr::Acr>,
    debug: bool,
    log: Log,
    cache: Mutex<HashMap<String, Option<Found>>>,
}

impl Keychain {
    /// Reads every credential option of `source`; `origin_host` is the repository's API host.
    /// Nothing is fetched yet (services are asked on the first lookup that needs them).
    /// Notes and the `debug` lines go to `log`.
    pub fn from_source(source: &Source, origin_host: &str, log: &Log) -> anyhow::Result<Keychain> {
        let explicit = match (&source.username, &source.password) {
            (Some(user), Some(password)) if !user.is_empty() => {
                Some(Credentials::basic(user.clone(), password.clone()))
            }
            (Some(user), None) if !user.is_empty() => {
                anyhow::bail!("source.username is set but source.password is not; give both")
            }
            (None, Some(_)) => {
                anyhow::bail!("source.password is set but source.username is not; give both")
            }
            _ => None,
        };
        Ok(Keychain {
            origin_host: origin_host.to_string(),
            explicit,
            docker_config: docker_config::DockerConfig::from_source(source, log)?,
            extension: extension::Extension::from_source(source, log)?,
            ecr: ecr::Ecr::from_source(source, origin_host, log)?,
            acr: acr::Acr::from_source(source, origin_host, log)?,
            debug: source.debug,
            log: log.clone(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The credentials for registry `host` (`host[:port]`, the API host), or `None` for
    /// anonymous access.
    pub async fn lookup(&self, host: &str) -> anyhow::Result<Option<Found>> {
        let key = host.to_ascii_lowercase();
        if let Ok(cache) = self.cache.lock() {
            if let Some(found) = cache.get(&key) {
                return Ok(found.clone());
            }
        }
        let found = self.find(&key).await?;
        if self.debug {
            match &found {
                Some(found) => self
                    .log
                    .line(format_args!("credentials for {host}: from {}", found.from)),
                None => self
                    .log
                    .line(format_args!("credentials for {host}: none (anonymous)")),
            }
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, found.clone());
        }
        Ok(found)
    }

    async fn find(&self, host: &str) -> anyhow::Result<Option<Found>> {
        if let (Some(credentials), true) = (&self.explicit, host == self.origin_host) {
            return Ok(Some(Found {
                credentials: credentials.clone(),
                from: "source.username and source.password".into(),
            }));
        }
        if let Some(config) = &self.docker_config {
            if let Some(found) = config.lookup(host).await? {
                return Ok(Some(found));
            }
        }
        if let Some(extension) = &self.extension {
            if let Some(found) = extension.lookup(host).await? {
                return Ok(Some(found));
            }
        }
        if let Some(ecr) = &self.ecr {
            if let Some(found) = ecr.lookup(host).await? {
                return Ok(Some(found));
            }
        }
        if let Some(acr) = &self.acr {
            if let Some(found) = acr.lookup(host).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}
