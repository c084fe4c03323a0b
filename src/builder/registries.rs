//! [`RegistryAccess`]: how the builder reaches registries (base images, the cache), made from
//! `source` with the same meaning our own client gives it, and rendered as the files
//! buildah reads (see `containers-auth.json(5)`, `containers-registries.conf(5)`,
//! `containers-certs.d(5)`):
//!
//! - the auth file: `source.username`/`password` for the repository's registry,
//!   `additional_private_registries`, then for every other registry the build names the
//!   credentials the keychain has ([`crate::credentials`]: `docker_config` and the rest),
//!   identity tokens as `identitytoken`;
//! - `registries.conf`: `insecure = true` for `insecure_registries` / `insecure` and for
//!   loopback registries (as our client allows plain HTTP there), unless a CA or client
//!   certificate is given for them; unqualified names resolve to Docker Hub only;
//! - per-registry certificate directories (`<host[:port]>/ca.crt`, `client.cert`,
//!   `client.key`) for `ca_certs` with a domain and `client_certs`;
//! - the CAs without a domain, which apply to every registry.
//!
//! Registries are known by name only where they are written down: the source's, the
//! additional ones, and the images a Dockerfile names (`FROM`, `COPY --from`), so CIDR
//! entries of `insecure_registries` and domains without a port are matched against those.

use crate::log::Log;
use crate::reference::{Reference, DOCKER_HUB, DOCKER_HUB_API};
use crate::registry::auth::Credentials;
use crate::registry::transport::{
    domain_matches, is_loopback, split_host_port, InsecureRule, TlsCa, TlsIdentity,
};
use crate::resource::Source;
use crate::secret::Secret;
use crate::settings::{Settings, DOCKER_HUB_HOST_ENV};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};

/// Credentials for one registry (Basic or an identity token: what the auth file can hold).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Login {
    host: String,
    credentials: Credentials,
}

/// The source's registry options, for the builder.
#[derive(Debug, Clone, Default)]
pub struct RegistryAccess {
    own_host: String,
    logins: Vec<Login>,
    ca_certs: Vec<TlsCa>,
    client_certs: Vec<TlsIdentity>,
    insecure: Vec<InsecureRule>,
    docker_hub_host: Option<String>,
}

/// The certificates for one registry, as a `certs.d/<name>/` directory holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertDir {
    /// `host[:port]`, the directory's name.
    pub name: String,
    /// `ca.crt`: the `ca_certs` for this registry, concatenated.
    pub ca: Option<String>,
    /// `client.cert` and `client.key`.
    pub client: Option<(String, Secret)>,
}

impl RegistryAccess {
    /// From the request's `source` and its validated [`Settings`].
    pub fn new(source: &Source, settings: &Settings) -> RegistryAccess {
        let own_host = settings.reference.registry().to_ascii_lowercase();
        let mut logins = Vec::new();
        if let (Some(user), Some(password)) = (&source.username, &source.password) {
            if !user.is_empty() {
                logins.push(Login {
                    host: own_host.clone(),
                    credentials: Credentials::basic(user.clone(), password.clone()),
                });
            }
        }
        for extra in &source.additional_private_registries {
            let host = registry_host(&extra.registry);
            if !extra.username.is_empty() && !logins.iter().any(|l| l.host == host) {
                logins.push(Login {
                    host,
                    credentials: Credentials::basic(extra.username.clone(), extra.password.clone()),
                });
            }
        }
        let docker_hub_host = std::env::var(DOCKER_HUB_HOST_ENV)
            .ok()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        RegistryAccess {
            own_host,
            logins,
            ca_certs: settings.transport.ca_certs.clone(),
            client_certs: settings.transport.client_certs.clone(),
            insecure: settings.transport.insecure.clone(),
            docker_hub_host,
        }
    }

    /// Every registry this build is known to use: the source's, the additional ones, the
    /// Docker Hub stand-in, and the registries of the images `dockerfile` names.
    pub fn known_hosts(&self, dockerfile: &str) -> Vec<String> {
        let mut hosts = vec![self.own_host.clone()];
        hosts.extend(self.logins.iter().map(|l| l.host.clone()));
        hosts.extend(self.docker_hub_host.iter().cloned());
        hosts.extend(dockerfile_registries(dockerfile));
        let mut seen = std::collections::BTreeSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        hosts
    }

    /// Adds, for every registry of `hosts` without a login yet (the source's own
    /// credentials and `additional_private_registries` come first), the credentials the
    /// keychain has for it. A registry token cannot be written into buildah's auth file:
    /// that registry is pulled anonymously, and a line on stderr says so.
    pub async fn add_keychain_logins(
        &mut self,
        hosts: &[String],
        settings: &Settings,
        log: &Log,
    ) -> anyhow::Result<()> {
        for host in hosts {
            if self.logins.iter().any(|l| l.host == *host) {
                continue;
            }
            let api_host = match (host.as_str(), &self.docker_hub_host) {
                (DOCKER_HUB, Some(stand_in)) => stand_in.clone(),
                (DOCKER_HUB, None) => DOCKER_HUB_API.to_string(),
                (other, _) => other.to_string(),
            };
            let found = settings.keychain.lookup(&api_host).await.map_err(|e| {
                anyhow::anyhow!("credentials for registry {host} (used by the build): {e:#}")
            })?;
            match found.map(|f| f.credentials) {
                None => {}
                Some(Credentials::RegistryToken(_)) => log.line(format_args!(
                    "note: the credentials for registry {host} are a registry token, which \
                     buildah cannot use: the build reaches {host} without credentials"
                )),
                Some(credentials) => self.logins.push(Login {
                    host: host.clone(),
                    credentials,
                }),
            }
        }
        Ok(())
    }

    /// The auth file (`containers-auth.json(5)`): `{"auths": {"host": {"auth":
    /// base64("user:password")}}}`, or for an identity token `{"auth": base64("<token>:"),
    /// "identitytoken": "..."}` (the `auth` must hold a `:` or the entry is skipped).
    pub fn auth_file(&self) -> String {
        let mut auths = serde_json::Map::new();
        let hub = self.logins.iter().find(|l| l.host == DOCKER_HUB);
        let stand_in = match (hub, &self.docker_hub_host) {
            (Some(login), Some(host)) => Some(Login {
                host: host.clone(),
                ..login.clone()
            }),
            _ => None,
        };
        for login in self.logins.iter().chain(stand_in.iter()) {
            let b64 = |text: String| base64::engine::general_purpose::STANDARD.encode(text);
            let entry = match &login.credentials {
                Credentials::Basic { username, password } => {
                    serde_json::json!({ "auth": b64(format!("{username}:{}", password.expose())) })
                }
                Credentials::IdentityToken(token) => serde_json::json!({
                    "auth": b64("<token>:".to_string()),
                    "identitytoken": token.expose(),
                }),
                // Left out when the login is added (see add_keychain_logins).
                Credentials::RegistryToken(_) => continue,
            };
            auths.entry(login.host.clone()).or_insert(entry);
        }
        serde_json::json!({ "auths": auths }).to_string()
    }

    /// `registries.conf` for `hosts` (see the module doc). `resolve` gives a host's
    /// addresses, for CIDR entries of `insecure_registries`.
    pub fn registries_conf(
        &self,
        hosts: &[String],
        resolve: &dyn Fn(&str) -> Vec<IpAddr>,
    ) -> String {
        let mut entries: BTreeMap<String, bool> = BTreeMap::new();
        for rule in &self.insecure {
            if let InsecureRule::Host(host) = rule {
                entries.insert(host.clone(), true);
            }
        }
        for catch_all in ["localhost", "127.0.0.1"] {
            if !self.has_tls_material(catch_all) {
                entries.entry(catch_all.to_string()).or_insert(true);
            }
        }
        for host in hosts {
            if let Some(insecure) = self.insecure_setting(host, resolve) {
                entries.insert(host.clone(), insecure);
            }
        }
        let mut text = String::from(super::assets::REGISTRIES_CONF);
        if let Some(host) = &self.docker_hub_host {
            let insecure = self.insecure_setting(host, resolve).unwrap_or(false);
            text.push_str(&format!(
                "\n[[registry]]\nprefix = \"docker.io\"\nlocation = {}\ninsecure = {insecure}\n",
                toml_string(host)
            ));
        }
        for (location, insecure) in entries {
            if location.contains('/') || location == DOCKER_HUB {
                continue;
            }
            text.push_str(&format!(
                "\n[[registry]]\nlocation = {}\ninsecure = {insecure}\n",
                toml_string(&location)
            ));
        }
        text
    }

    /// `Some(true)` for a host that may use plain HTTP and unverified TLS, `Some(false)` for
    /// a loopback host that must be verified (a CA or client certificate is given for it),
    /// `None` when the defaults apply.
    fn insecure_setting(&self, host: &str, resolve: &dyn Fn(&str) -> Vec<IpAddr>) -> Option<bool> {
        let by_rule = self.insecure.iter().any(|rule| match rule {
            InsecureRule::Host(h) => domain_matches(h, host),
            InsecureRule::Cidr(_) => false,
        });
        let networks: Vec<_> = self
            .insecure
            .iter()
            .filter_map(|rule| match rule {
                InsecureRule::Cidr(net) => Some(net),
                InsecureRule::Host(_) => None,
            })
            .collect();
        let by_cidr = !networks.is_empty() && {
            let addresses = match split_host_port(host).0.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => resolve(host),
            };
            addresses
                .iter()
                .any(|ip| networks.iter().any(|net| net.contains(ip)))
        };
        if by_rule || by_cidr {
            Some(true)
        } else if is_loopback(host) {
            Some(!self.has_tls_material(host))
        } else {
            None
        }
    }

    /// True when a `ca_certs` entry with a domain or a `client_certs` entry is for `host`.
    fn has_tls_material(&self, host: &str) -> bool {
        self.ca_certs.iter().any(|ca| {
            ca.domain
                .as_deref()
                .is_some_and(|d| domain_matches(d, host))
        }) || self
            .client_certs
            .iter()
            .any(|cc| domain_matches(&cc.domain, host))
    }

    /// The certificate directories for `hosts` and for the domains the options name.
    pub fn cert_dirs(&self, hosts: &[String]) -> Vec<CertDir> {
        let mut names: Vec<String> = Vec::new();
        for host in hosts {
            names.push(host.clone());
            if host == DOCKER_HUB {
                names.push(DOCKER_HUB_API.to_string());
            }
        }
        names.extend(self.ca_certs.iter().filter_map(|ca| ca.domain.clone()));
        names.extend(self.client_certs.iter().map(|cc| cc.domain.clone()));
        let mut dirs: Vec<CertDir> = Vec::new();
        for name in names {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                continue;
            }
            if dirs.iter().any(|d| d.name == name) {
                continue;
            }
            let cas: Vec<&str> = self
                .ca_certs
                .iter()
                .filter(|ca| {
                    ca.domain
                        .as_deref()
                        .is_some_and(|d| domain_matches(d, &name))
                })
                .map(|ca| ca.cert.trim())
                .collect();
            let client = self
                .client_certs
                .iter()
                .find(|cc| domain_matches(&cc.domain, &name))
                .map(|cc| (format!("{}\n", cc.cert.trim()), cc.key.clone()));
            if cas.is_empty() && client.is_none() {
                continue;
            }
            let ca = (!cas.is_empty()).then(|| format!("{}\n", cas.join("\n")));
            dirs.push(CertDir { name, ca, client });
        }
        dirs
    }

    /// The PEM text of the `ca_certs` without a domain: trusted for every registry.
    pub fn shared_cas(&self) -> Vec<&str> {
        self.ca_certs
            .iter()
            .filter(|ca| ca.domain.is_none())
            .map(|ca| ca.cert.as_str())
            .collect()
    }
}

/// A host's addresses by the system resolver (empty when it does not resolve).
pub fn resolve(host: &str) -> Vec<IpAddr> {
    let (name, port) = split_host_port(host);
    let port: u16 = port.and_then(|p| p.parse().ok()).unwrap_or(443);
    match (name, port).to_socket_addrs() {
        Ok(found) => found.map(|a| a.ip()).collect(),
        Err(_) => Vec::new(),
    }
}

/// `additional_private_registries[].registry` as a host: no scheme or path, lower case,
/// Docker Hub's aliases as `docker.io`.
fn registry_host(entry: &str) -> String {
    let entry = entry.trim();
    let entry = entry
        .strip_prefix("https://")
        .or_else(|| entry.strip_prefix("http://"))
        .unwrap_or(entry);
    let host = entry
        .split('/')
        .next()
        .unwrap_or(entry)
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => host,
    }
}

/// The registries of the images a Dockerfile names in `FROM` and `COPY --from`, leaving out
/// stage names, `scratch` and names built from `ARG`s.
pub fn dockerfile_registries(dockerfile: &str) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for reference in dockerfile_images(dockerfile) {
        let host = reference.registry().to_ascii_lowercase();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

/// The images a Dockerfile names in `FROM` and `COPY --from` (normalised), leaving out stage
/// names, stage numbers, `scratch`, names built from `ARG`s and names that do not parse.
pub fn dockerfile_images(dockerfile: &str) -> Vec<Reference> {
    let mut stages: Vec<String> = Vec::new();
    let mut found: Vec<Reference> = Vec::new();
    let mut line = String::new();
    for raw in dockerfile.lines() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(continued) = trimmed.strip_suffix('\\') {
            line.push_str(continued);
            line.push(' ');
            continue;
        }
        line.push_str(trimmed);
        let words: Vec<&str> = line.split_whitespace().collect();
        let images: Vec<&str> = match words.first().map(|w| w.to_ascii_uppercase()) {
            Some(w) if w == "FROM" => {
                let rest: Vec<&str> = words[1..]
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                if rest.len() >= 3 && rest[1].eq_ignore_ascii_case("as") {
                    stages.push(rest[2].to_ascii_lowercase());
                }
                rest.first().copied().into_iter().collect()
            }
            Some(w) if w == "COPY" => words
                .iter()
                .filter_map(|w| w.strip_prefix("--from="))
                .collect(),
            _ => Vec::new(),
        };
        for image in images {
            let lower = image.to_ascii_lowercase();
            if image.contains('$') || lower == "scratch" || stages.contains(&lower) {
                continue;
            }
            if image.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Ok(reference) = Reference::parse(image) {
                if !found.contains(&reference) {
                    found.push(reference);
                }
            }
        }
        line.clear();
    }
    found
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
