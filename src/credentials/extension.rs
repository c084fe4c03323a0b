//! A Drone registry-extension service (`source.registry_extension`: `endpoint`, `token`,
//! `skip_verify`), spoken to exactly as Drone's runner does through `drone-go`'s plugin
//! client (`plugin/registry/client.go`, `plugin/internal/client/client.go`):
//!
//! 1. `POST endpoint` with the JSON body `{"repo": {...}, "build": {...}}` (Drone's
//!    `registry.Request`; see `request_body` for how Concourse's build metadata fills it)
//!    and the headers `Accept: application/vnd.drone.registry.v1+json`,
//!    `Accept-Encoding: identity`, `Content-Type: application/json`, `Date` (HTTP date),
//!    `Digest: SHA-256=<base64 sha256(body)>` and `Signature` ([`signature`]: hmac-sha256
//!    over those five headers, `token` as the key, keyId `hmac-key`).
//! 2. `204`, or a `null`/`[]` body: no credentials. Another `2xx`: a JSON list
//!    `[{"address", "username", "password"}]` (other fields, such as `email`, are ignored).
//!    Anything else is an error with the status and the first 200 characters of the body.
//! 3. The answer is fetched once per run (on the first lookup that reaches this source) and
//!    each registry host takes the first entry whose address matches it (`address_matches`).
//!
//! The endpoint gets its own HTTP client from [`Transport`]: the system roots plus `ca_certs`
//! (R's form, or D's with the endpoint's domain) and a matching `client_certs` identity;
//! `skip_verify: true` turns off certificate verification for the endpoint only.

pub mod signature;

use super::Found;
use crate::registry::auth::Credentials;
use crate::registry::error::Error as RegistryError;
use crate::registry::retry::{send_small, Expect};
use crate::registry::transport::{InsecureRule, Transport, TransportOptions};
use crate::resource::Source;
use crate::secret::Secret;
use anyhow::{anyhow, bail, Context as _};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The media type of version 1 of Drone's registry-extension API.
pub const MEDIA_TYPE: &str = "application/vnd.drone.registry.v1+json";

/// The Concourse build metadata variables sent along (all of them, as written, in
/// `build.params`).
pub const METADATA: [&str; 6] = [
    "BUILD_ID",
    "BUILD_NAME",
    "BUILD_JOB_NAME",
    "BUILD_PIPELINE_NAME",
    "BUILD_TEAM_NAME",
    "ATC_EXTERNAL_URL",
];

/// The `build.params` key holding `source.repository` as written.
pub const REPOSITORY_PARAM: &str = "IMAGE_REPOSITORY";

/// How long the whole exchange with the endpoint may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How much of an error answer's body goes into our error message.
const BODY_EXCERPT: usize = 200;

/// The configured source.
#[derive(Debug)]
pub struct Extension {
    endpoint: url::Url,
    token: Secret,
    transport: TransportOptions,
    /// The request body, built once from the repository and the build metadata.
    body: Vec<u8>,
    /// `IMAGE_RESOURCE_DOCKER_HUB_HOST`, which stands in for Docker Hub's API host.
    docker_hub_host: Option<String>,
    debug: bool,
    answer: tokio::sync::OnceCell<Vec<Entry>>,
}

/// One entry of the extension's answer (Drone's `drone.Registry`; only these fields are
/// used).
#[derive(Debug, Clone, Deserialize)]
struct Entry {
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<Secret>,
}

impl Extension {
    /// Reads the options; `None` when they are not given. Nothing is sent yet.
    /// HTTP traces, retry notes and the `debug` line go to `log`.
    pub fn from_source(
        source: &Source,
        log: &crate::log::Log,
    ) -> anyhow::Result<Option<Extension>> {
        let Some(options) = &source.registry_extension else {
            return Ok(None);
        };
        let endpoint = parse_endpoint(&options.endpoint)?;
        if options.token.is_empty() {
            bail!(
                "source.registry_extension.token is empty: give the shared secret the extension \
                 at {} verifies signatures with (its DRONE_SECRET)",
                shown(&endpoint)
            );
        }
        let mut transport = TransportOptions {
            ca_certs: crate::settings::tls_cas(source),
            client_certs: crate::settings::tls_identities(source),
            insecure: Vec::new(),
            debug: source.debug,
            timeouts: crate::registry::retry::Timeouts::from_env(),
            retry: crate::registry::retry::RetryPolicy::from_env(),
            log: log.clone(),
        };
        if options.skip_verify {
            transport
                .insecure
                .push(InsecureRule::Host(endpoint_host(&endpoint)));
        }
        let env = |name: &str| std::env::var(name).ok();
        let body = serde_json::to_vec(&request_body(&source.repository, &env))
            .context("source.registry_extension: encoding the request body")?;
        let docker_hub_host = env(crate::settings::DOCKER_HUB_HOST_ENV)
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        Ok(Some(Extension {
            endpoint,
            token: options.token.clone(),
            transport,
            body,
            docker_hub_host,
            debug: source.debug,
            answer: tokio::sync::OnceCell::new(),
        }))
    }

    /// The credentials this source has for registry `host`, if any. The first call asks the
    /// extension; later calls reuse its answer.
    pub async fn lookup(&self, host: &str) -> anyhow::Result<Option<Found>> {
        let entries = self.answer.get_or_try_init(|| self.fetch()).await?;
        let wanted = canonical_host(host, self.docker_hub_host.as_deref());
        let found = entries.iter().find(|entry| {
            entry.address.as_deref().is_some_and(|address| {
                address_matches(address, &wanted, self.docker_hub_host.as_deref())
            })
        });
        let Some(entry) = found else {
            return Ok(None);
        };
        let username = entry.username.clone().unwrap_or_default();
        let password = entry.password.clone().unwrap_or_default();
        if username.is_empty() && password.is_empty() {
            // Drone would pull anonymously with such an entry; so does this source (later
            // entries are not looked at; the keychain goes on to ECR/ACR).
            return Ok(None);
        }
        Ok(Some(Found {
            credentials: Credentials::basic(username, password),
            from: format!(
                "registry_extension {} (address {:?})",
                shown(&self.endpoint),
                entry.address.as_deref().unwrap_or_default()
            ),
        }))
    }

    /// Sends the signed request and reads the answer.
    async fn fetch(&self) -> anyhow::Result<Vec<Entry>> {
        let shown = shown(&self.endpoint);
        let context = || format!("source.registry_extension: asking {shown} for credentials");
        let transport = Transport::new(&endpoint_host(&self.endpoint), &self.transport)
            .await
            .map_err(endpoint_error)
            .with_context(context)?;
        // The extension only hands out credentials: safe to repeat, so the request is
        // retried like any (signed anew, with a fresh `Date`, for each try).
        let answer = send_small(&transport, "registry_extension", Expect::Service, |http| {
            let unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            self.signed_request(http, &signature::http_date(unix))
                .map_err(|e| RegistryError::Config(format!("{e:#}")))
        })
        .await
        .map_err(endpoint_error)
        .with_context(context)?;
        let status = answer.status;
        let encoding = answer
            .headers
            .get(reqwest::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = answer.body;
        let entries = interpret(status, encoding.as_deref(), &body)
            .map_err(|e| anyhow!("the extension {e}"))
            .with_context(context)?;
        if self.debug {
            let addresses: Vec<&str> = entries
                .iter()
                .map(|e| e.address.as_deref().unwrap_or(""))
                .collect();
            self.transport.log.line(format_args!(
                "registry_extension {shown}: HTTP {status}, credentials for {addresses:?}"
            ));
        }
        Ok(entries)
    }

    /// The POST with Drone's headers, signed with the token.
    fn signed_request(
        &self,
        http: &reqwest::Client,
        date: &str,
    ) -> anyhow::Result<reqwest::Request> {
        let digest = signature::digest(&self.body);
        let values = [
            ("accept", MEDIA_TYPE),
            ("accept-encoding", "identity"),
            ("content-type", "application/json"),
            ("date", date),
            ("digest", digest.as_str()),
        ];
        let lookup = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let signing_string = signature::signing_string(&signature::SIGNED_HEADERS, lookup)
            .map_err(|e| anyhow!(e))?;
        let signed = signature::hmac_sha256(self.token.expose().as_bytes(), &signing_string);
        let mut builder = http.post(self.endpoint.clone()).timeout(TIMEOUT);
        for (name, value) in values {
            builder = builder.header(name, value);
        }
        builder
            .header(
                "signature",
                signature::header_value(
                    signature::KEY_ID,
                    signature::ALGORITHM,
                    &signed,
                    &signature::SIGNED_HEADERS,
                ),
            )
            .body(self.body.clone())
            .build()
            .map_err(|e| anyhow!("building the request: {e}"))
    }
}

/// Checks `endpoint`: an absolute `http://` or `https://` URL.
fn parse_endpoint(endpoint: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(endpoint.trim()).map_err(|e| {
        anyhow!(
            "source.registry_extension.endpoint {endpoint:?} is not a URL ({e}); give the \
             extension's address, such as https://registry-plugin.example.com"
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!(
            "source.registry_extension.endpoint {:?} must be an http:// or https:// URL with a \
             host, such as https://registry-plugin.example.com",
            shown(&url)
        );
    }
    Ok(url)
}

/// The endpoint for messages (no user info, secret-looking query parameters redacted).
fn shown(endpoint: &url::Url) -> String {
    crate::registry::transport::redact_url(endpoint)
}

/// `host[:port]` of the endpoint, lower case, for the transport's per-host options.
fn endpoint_host(endpoint: &url::Url) -> String {
    let host = match endpoint.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    match endpoint.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
    .to_ascii_lowercase()
}

/// A transport failure, worded for the endpoint (the registry client's hints name registry
/// options); the caller's context names the endpoint.
fn endpoint_error(error: RegistryError) -> anyhow::Error {
    match error {
        RegistryError::Tls { detail, .. } => anyhow!(
            "TLS certificate problem with the endpoint: {detail}. If it uses a private CA, add \
             the CA with `ca_certs`; to accept any certificate from it, set \
             `registry_extension.skip_verify: true`"
        ),
        RegistryError::Connect { detail, source, .. } => {
            anyhow!(
                "cannot connect to the endpoint: {detail}{}",
                chain_suffix(source)
            )
        }
        RegistryError::Transport { detail, source, .. } => {
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            };
            anyhow!(
                "the request to the endpoint failed{detail}{}",
                chain_suffix(source)
            )
        }
        other => anyhow!("{other}"),
    }
}

/// `: <the error chain>` of an HTTP client error, if any.
fn chain_suffix(source: Option<reqwest::Error>) -> String {
    source.map_or_else(String::new, |e| {
        format!(": {}", crate::registry::transport::error_chain(&e))
    })
}

/// The credentials list from an answer, or what is wrong with it (the message follows
/// "the extension"). The body is quoted only for error statuses: a `200` body may hold
/// passwords.
fn interpret(status: u16, encoding: Option<&str>, body: &[u8]) -> Result<Vec<Entry>, String> {
    if status == 204 {
        return Ok(Vec::new());
    }
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(body);
        let excerpt: String = text
            .chars()
            .take(BODY_EXCERPT)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let excerpt = excerpt.trim();
        let more = if text.chars().count() > BODY_EXCERPT {
            "…"
        } else {
            ""
        };
        let hint = match status {
            400 | 401 | 403 => {
                ": check that source.registry_extension.token is the extension's \
                                shared secret"
            }
            _ => "",
        };
        return Err(if excerpt.is_empty() {
            format!("answered HTTP {status} with an empty body{hint}")
        } else {
            format!("answered HTTP {status}: {excerpt}{more}{hint}")
        });
    }
    if let Some(encoding) = encoding.filter(|e| !e.eq_ignore_ascii_case("identity")) {
        return Err(format!(
            "answered HTTP {status} with Content-Encoding {encoding:?}; we ask for (and read \
             only) Accept-Encoding: identity"
        ));
    }
    let entries: Option<Vec<Entry>> = serde_json::from_slice(body).map_err(|e| {
        // serde's message can quote values from the body: only say where it went wrong.
        let what = match e.classify() {
            serde_json::error::Category::Data => {
                "is JSON but not a list of {\"address\", \"username\", \"password\"} objects"
            }
            serde_json::error::Category::Eof if body.iter().all(u8::is_ascii_whitespace) => {
                "is empty, not JSON (an empty answer must be HTTP 204)"
            }
            _ => "is not JSON",
        };
        format!(
            "answered HTTP {status}, but the body {what} (line {}, column {}); expected \
             [{{\"address\": ..., \"username\": ..., \"password\": ...}}]",
            e.line(),
            e.column()
        )
    })?;
    Ok(entries.unwrap_or_default())
}

/// The lookup form of a registry host: lower case, `:443` dropped, and every name of Docker
/// Hub (`docker.io`, `index.docker.io`, its API host `registry-1.docker.io`, and
/// `IMAGE_RESOURCE_DOCKER_HUB_HOST` when set) as `docker.io`.
fn canonical_host(host: &str, docker_hub_host: Option<&str>) -> String {
    let host = host.trim().to_ascii_lowercase();
    let host = host.strip_suffix(":443").unwrap_or(&host).to_string();
    let hub = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    if hub.contains(&host.as_str()) || docker_hub_host == Some(host.as_str()) {
        crate::reference::DOCKER_HUB.to_string()
    } else {
        host
    }
}

/// True when an answer's `address` names the registry `wanted` (already
/// [`canonical_host`]). As Drone's runner (`MatchHostname`) does, `address` may be a URL
/// (`https://host/v1/`: its host is used) and `index.docker.io` is Docker Hub; we also take
/// `registry-1.docker.io` as Docker Hub, ignore case, and treat `host:443` as `host`. A port
/// must match: `registry.local` does not match `registry.local:5000`.
pub(crate) fn address_matches(address: &str, wanted: &str, docker_hub_host: Option<&str>) -> bool {
    let address = address.trim();
    let lower = address.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host = rest.split('/').next().unwrap_or_default();
    !host.is_empty() && canonical_host(host, docker_hub_host) == wanted
}

/// Drone's `registry.Request` body, from `source.repository` and Concourse's build metadata
/// (`env` reads a variable). Every field of Drone's `Repo` and `Build` types is present
/// (zero when Concourse has nothing for it), as Drone's server sends them. The mapping:
///
/// | Drone field | from |
/// |---|---|
/// | `repo.namespace` | `BUILD_TEAM_NAME` |
/// | `repo.name` | `BUILD_PIPELINE_NAME` |
/// | `repo.slug` | `BUILD_TEAM_NAME/BUILD_PIPELINE_NAME` |
/// | `repo.link` | `ATC_EXTERNAL_URL/teams/BUILD_TEAM_NAME/pipelines/BUILD_PIPELINE_NAME` |
/// | `build.id` | `BUILD_ID` (a number; 0 if not one) |
/// | `build.number` | `BUILD_NAME` (a number; 0 if not one, such as a rerun's `12.1`) |
/// | `build.link` | `ATC_EXTERNAL_URL/teams/…/pipelines/…/jobs/BUILD_JOB_NAME/builds/BUILD_NAME` |
/// | `build.params` | every variable above that is set, as written, and `IMAGE_REPOSITORY`: `source.repository` as written |
///
/// Links are empty when a variable they need is unset (`check` runs without build
/// metadata).
pub(crate) fn request_body(repository: &str, env: &dyn Fn(&str) -> Option<String>) -> Request {
    let var = |name: &str| env(name).map(|v| v.trim().to_string()).unwrap_or_default();
    let (team, pipeline, job, name) = (
        var("BUILD_TEAM_NAME"),
        var("BUILD_PIPELINE_NAME"),
        var("BUILD_JOB_NAME"),
        var("BUILD_NAME"),
    );
    let atc = var("ATC_EXTERNAL_URL").trim_end_matches('/').to_string();
    let slug = [team.as_str(), pipeline.as_str()]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    let pipeline_link = if atc.is_empty() || team.is_empty() || pipeline.is_empty() {
        String::new()
    } else {
        format!("{atc}/teams/{team}/pipelines/{pipeline}")
    };
    let build_link = if pipeline_link.is_empty() || job.is_empty() || name.is_empty() {
        String::new()
    } else {
        format!("{pipeline_link}/jobs/{job}/builds/{name}")
    };
    let mut params: BTreeMap<String, String> = METADATA
        .iter()
        .filter_map(|name| env(name).map(|v| (name.to_string(), v)))
        .collect();
    params.insert(REPOSITORY_PARAM.to_string(), repository.to_string());
    Request {
        repo: Repo {
            namespace: team,
            name: pipeline,
            slug,
            link: pipeline_link,
            ..Repo::default()
        },
        build: Build {
            id: var("BUILD_ID").parse().unwrap_or(0),
            number: name.parse().unwrap_or(0),
            link: build_link,
            params,
            ..Build::default()
        },
    }
}

/// Drone's `registry.Request`.
#[derive(Debug, Serialize)]
pub(crate) struct Request {
    repo: Repo,
    build: Build,
}

/// Drone's `drone.Repo`, in its field order (`build`, `signer` and `secret` left out: the
/// first is a nested build Drone fills only for listings, the others are omitted when empty).
#[derive(Debug, Default, Serialize)]
struct Repo {
    id: i64,
    uid: String,
    user_id: i64,
    namespace: String,
    name: String,
    slug: String,
    scm: String,
    git_http_url: String,
    git_ssh_url: String,
    link: String,
    default_branch: String,
    private: bool,
    visibility: String,
    active: bool,
    config_path: String,
    trusted: bool,
    protected: bool,
    ignore_forks: bool,
    ignore_pull_requests: bool,
    auto_cancel_pull_requests: bool,
    auto_cancel_pushes: bool,
    auto_cancel_running: bool,
    throttle: i64,
    timeout: i64,
    counter: i64,
    synced: i64,
    created: i64,
    updated: i64,
    version: i64,
}

/// Drone's `drone.Build`, in its field order (fields Drone omits when empty are left out,
/// except `params`).
#[derive(Debug, Default, Serialize)]
struct Build {
    id: i64,
    repo_id: i64,
    trigger: String,
    number: i64,
    status: String,
    event: String,
    action: String,
    link: String,
    timestamp: i64,
    message: String,
    before: String,
    after: String,
    #[serde(rename = "ref")]
    git_ref: String,
    source_repo: String,
    source: String,
    target: String,
    author_login: String,
    author_name: String,
    author_email: String,
    author_avatar: String,
    sender: String,
    params: BTreeMap<String, String>,
    debug: bool,
    started: i64,
    finished: i64,
    created: i64,
    updated: i64,
    version: i64,
}

#[cfg(test)]
mod tests;
