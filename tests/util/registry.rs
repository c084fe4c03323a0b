//! Real registries for tests: Debian's `docker-registry` (distribution 2.8) started as a
//! child process on `127.0.0.1:<free port>` with its config and storage in a TempDir,
//! and killed on Drop. Kinds: plain HTTP, TLS, mutual TLS, htpasswd, token auth, and a
//! pull-through mirror of another [`Registry`].
//! Configuration reference: <https://distribution.github.io/distribution/about/configuration/>.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::tls::{write_file, Ca};
use super::token::TokenServer;

/// The Debian package's registry binary.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How long [`Registry::start`] waits for `/v2/` to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What kind of registry to start. `RegistryConfig::new()` is plain HTTP, no auth.
#[derive(Clone, Default)]
pub struct RegistryConfig {
    tls: Option<ServerTls>,
    htpasswd: Option<(String, String)>,
    token: Option<TokenAuth>,
    proxy: Option<Proxy>,
    log_level: Option<String>,
}

#[derive(Clone)]
struct ServerTls {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    /// For mutual TLS: the CA clients' certificates must chain to, and a client
    /// certificate from it for our own helpers (skopeo, readiness probe).
    client: Option<ClientTls>,
}

#[derive(Clone)]
struct ClientTls {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

#[derive(Clone)]
struct TokenAuth {
    realm: String,
    service: String,
    issuer: String,
    cert_pem: String,
    credentials: Option<(String, String)>,
}

#[derive(Clone)]
struct Proxy {
    remote_url: String,
    /// The upstream's CA, made trusted for the mirror through `SSL_CERT_FILE`.
    remote_ca_pem: Option<String>,
    credentials: Option<(String, String)>,
}

impl RegistryConfig {
    /// Plain HTTP, no auth.
    pub fn new() -> RegistryConfig {
        RegistryConfig::default()
    }

    /// Serve HTTPS with a certificate from `ca` for `127.0.0.1` and `localhost`.
    pub fn tls(self, ca: &Ca) -> RegistryConfig {
        self.tls_for(ca, &["127.0.0.1", "localhost"])
    }

    /// Serve HTTPS with a certificate from `ca` for `names` (host names or IP addresses).
    pub fn tls_for(mut self, ca: &Ca, names: &[&str]) -> RegistryConfig {
        let (cert_pem, key_pem) = ca.server_cert(names);
        self.tls = Some(ServerTls {
            ca_pem: ca.cert_pem(),
            cert_pem,
            key_pem,
            client: None,
        });
        self
    }

    /// Require client certificates signed by `client_ca` (`http.tls.clientcas`). Needs
    /// [`Self::tls`] first. A client certificate ("harness") is made for the harness's own
    /// use: see [`Registry::client_cert`].
    pub fn mutual_tls(mut self, client_ca: &Ca) -> RegistryConfig {
        let tls = self
            .tls
            .as_mut()
            .expect("RegistryConfig::mutual_tls needs RegistryConfig::tls first");
        let (cert_pem, key_pem) = client_ca.client_cert("harness");
        tls.client = Some(ClientTls {
            ca_pem: client_ca.cert_pem(),
            cert_pem,
            key_pem,
        });
        self
    }

    /// Basic auth with one user (`auth.htpasswd`, bcrypt hash made here).
    pub fn htpasswd(mut self, user: &str, password: &str) -> RegistryConfig {
        self.htpasswd = Some((user.to_string(), password.to_string()));
        self
    }

    /// Bearer-token auth delegated to `server` (`auth.token`). The server's user, if any,
    /// becomes [`Registry::credentials`].
    pub fn token(mut self, server: &TokenServer) -> RegistryConfig {
        self.token = Some(TokenAuth {
            realm: server.realm(),
            service: server.service().to_string(),
            issuer: server.issuer().to_string(),
            cert_pem: server.cert_pem().to_string(),
            credentials: server
                .credentials()
                .map(|(user, password)| (user.to_string(), password.to_string())),
        });
        self
    }

    /// Run as a pull-through cache of `upstream` (`proxy.remoteurl`), without
    /// credentials. A TLS upstream is trusted through `SSL_CERT_FILE`; a mutual-TLS
    /// upstream is not supported (the registry has no client-certificate option for it).
    pub fn proxy(mut self, upstream: &Registry) -> RegistryConfig {
        assert!(
            upstream.client_cert().is_none(),
            "a pull-through mirror cannot present a client certificate to its upstream"
        );
        self.proxy = Some(Proxy {
            remote_url: upstream.url(),
            remote_ca_pem: upstream.ca_cert_pem().map(str::to_string),
            credentials: None,
        });
        self
    }

    /// [`Self::proxy`] with `proxy.username` / `proxy.password`. distribution 2.8 only
    /// uses them for an upstream with token auth (it keys them by Bearer realm), so an
    /// htpasswd upstream stays unauthenticated for the mirror.
    pub fn proxy_with_credentials(
        self,
        upstream: &Registry,
        user: &str,
        password: &str,
    ) -> RegistryConfig {
        let mut config = self.proxy(upstream);
        if let Some(proxy) = config.proxy.as_mut() {
            proxy.credentials = Some((user.to_string(), password.to_string()));
        }
        config
    }

    /// Sends clients for tokens to `realm` instead of the token server's own address (a
    /// front before it). Needs [`Self::token`] first.
    pub fn token_realm(mut self, realm: &str) -> RegistryConfig {
        self.token
            .as_mut()
            .expect("RegistryConfig::token_realm needs RegistryConfig::token first")
            .realm = realm.to_string();
        self
    }

    /// The registry's `log.level` (default `warn`). The log is in [`Registry::log`].
    pub fn log_level(mut self, level: &str) -> RegistryConfig {
        self.log_level = Some(level.to_string());
        self
    }

    fn yaml(&self, dir: &Path, port: u16) -> String {
        assert!(
            self.htpasswd.is_none() || self.token.is_none(),
            "a registry has one auth method: htpasswd or token, not both"
        );
        let q = |path: &Path| yaml_str(&path.display().to_string());
        let mut yaml = format!(
            "version: 0.1\n\
             log:\n  level: {level}\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: {secret}\n",
            level = yaml_str(self.log_level.as_deref().unwrap_or("warn")),
            root = q(&dir.join("data")),
            secret = yaml_str(&random_hex(16)),
        );
        if let Some(tls) = &self.tls {
            let cert = dir.join("server.crt");
            let key = dir.join("server.key");
            write_file(&cert, &tls.cert_pem);
            write_file(&key, &tls.key_pem);
            yaml += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                q(&cert),
                q(&key)
            );
            if let Some(client) = &tls.client {
                let client_ca = dir.join("client-ca.crt");
                write_file(&client_ca, &client.ca_pem);
                yaml += &format!("    clientcas:\n      - {}\n", q(&client_ca));
            }
        }
        if let Some((user, password)) = &self.htpasswd {
            let hash = bcrypt::hash_with_result(password, 5)
                .expect("bcrypt-hashing the htpasswd password")
                .format_for_version(bcrypt::Version::TwoA);
            let path = dir.join("htpasswd");
            write_file(&path, &format!("{user}:{hash}\n"));
            yaml += &format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                q(&path)
            );
        }
        if let Some(token) = &self.token {
            let bundle = dir.join("token-root.crt");
            write_file(&bundle, &token.cert_pem);
            yaml += &format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                yaml_str(&token.realm),
                yaml_str(&token.service),
                yaml_str(&token.issuer),
                q(&bundle)
            );
        }
        if let Some(proxy) = &self.proxy {
            yaml += &format!("proxy:\n  remoteurl: {}\n", yaml_str(&proxy.remote_url));
            if let Some((user, password)) = &proxy.credentials {
                yaml += &format!(
                    "  username: {}\n  password: {}\n",
                    yaml_str(user),
                    yaml_str(password)
                );
            }
        }
        yaml
    }
}

/// A running `docker-registry`; killed on Drop (its TempDir goes with it).
pub struct Registry {
    child: Child,
    dir: TempDir,
    port: u16,
    config: RegistryConfig,
}

impl Registry {
    /// Starts a registry and waits (up to 10 s) until `/v2/` answers. Panics with the
    /// registry's log if it does not. Retries on another port if the one picked was taken
    /// in the meantime by a test running in parallel.
    pub fn start(config: RegistryConfig) -> Registry {
        let mut last_error = String::new();
        for _attempt in 0..3 {
            match Registry::try_start(config.clone()) {
                Ok(registry) => return registry,
                Err(error) if error.contains("address already in use") => last_error = error,
                Err(error) => panic!("{error}"),
            }
        }
        panic!("{last_error}")
    }

    fn try_start(config: RegistryConfig) -> Result<Registry, String> {
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir()
            .map_err(|err| format!("creating a registry temp dir: {err}"))?;
        let port = free_port();
        let config_path = dir.path().join("config.yml");
        write_file(&config_path, &config.yaml(dir.path(), port));
        let child = spawn(dir.path(), &config)?;
        let mut registry = Registry {
            child,
            dir,
            port,
            config,
        };
        registry.wait_ready()?;
        Ok(registry)
    }

    /// Kills the registry process (as a crash would: SIGKILL), keeping its port and storage
    /// for [`Self::restart`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the registry again on the same port with the same config and storage (after
    /// [`Self::kill`]), and waits until `/v2/` answers.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.child = spawn(self.dir.path(), &self.config).unwrap_or_else(|e| panic!("{e}"));
            match self.wait_ready() {
                Ok(()) => return,
                // The old socket may linger a moment.
                Err(e) if e.contains("address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("restarting the registry: {e}"),
            }
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "docker-registry exited ({status}) while starting on {}; its log:\n{}",
                    self.host(),
                    self.log()
                ));
            }
            match self.get("/v2/") {
                Ok(response) => {
                    if response.status == 200 || response.status == 401 {
                        return Ok(());
                    }
                    last = format!("GET /v2/ answered {}", response.status);
                }
                Err(err) => last = err,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "docker-registry on {} did not answer /v2/ within {START_TIMEOUT:?} (last: {last}); its log:\n{}",
            self.host(),
            self.log()
        ))
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.config.tls.is_some()
    }

    /// Whether it is a pull-through mirror (which refuses pushes).
    pub fn is_mirror(&self) -> bool {
        self.config.proxy.is_some()
    }

    /// The CA that signed its server certificate (PEM), for TLS registries.
    pub fn ca_cert_pem(&self) -> Option<&str> {
        self.config.tls.as_ref().map(|tls| tls.ca_pem.as_str())
    }

    /// A client certificate it accepts, `(cert_pem, key_pem)`, for mutual-TLS registries.
    pub fn client_cert(&self) -> Option<(&str, &str)> {
        let client = self.config.tls.as_ref()?.client.as_ref()?;
        Some((client.cert_pem.as_str(), client.key_pem.as_str()))
    }

    /// The user and password it accepts (htpasswd, or the token server's user).
    pub fn credentials(&self) -> Option<(&str, &str)> {
        let pair = self.config.htpasswd.as_ref().or_else(|| {
            self.config
                .token
                .as_ref()
                .and_then(|token| token.credentials.as_ref())
        })?;
        Some((pair.0.as_str(), pair.1.as_str()))
    }

    /// The registry's temp dir (config.yml, certificates, `data/`, `registry.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where filesystem storage keeps the blob `sha256:<hex>` (to corrupt it in tests).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The registry's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        let path = self.dir.path().join("registry.log");
        fs::read_to_string(&path)
            .unwrap_or_else(|err| format!("(cannot read {}: {err})", path.display()))
    }

    /// A directory for skopeo's `--cert-dir`: `ca.crt`, plus `client.cert` / `client.key`
    /// when the registry wants a client certificate. `None` for plain HTTP.
    pub fn cert_dir(&self) -> Option<PathBuf> {
        self.write_cert_dir("skopeo-certs", true)
    }

    /// Like [`Self::cert_dir`] but never with a client certificate.
    pub fn cert_dir_without_client_cert(&self) -> Option<PathBuf> {
        self.write_cert_dir("skopeo-certs-ca-only", false)
    }

    fn write_cert_dir(&self, name: &str, with_client: bool) -> Option<PathBuf> {
        let tls = self.config.tls.as_ref()?;
        let dir = self.dir.path().join(name);
        write_file(&dir.join("ca.crt"), &tls.ca_pem);
        if let (true, Some(client)) = (with_client, &tls.client) {
            write_file(&dir.join("client.cert"), &client.cert_pem);
            write_file(&dir.join("client.key"), &client.key_pem);
        }
        Some(dir)
    }

    /// skopeo flags that reach this registry: TLS (`--<prefix>tls-verify=false` or
    /// `--<prefix>cert-dir`) and, if it has any, `--<prefix>creds`. `prefix` is `""`
    /// (inspect), `"src-"` or `"dest-"` (copy).
    pub fn skopeo_flags(&self, prefix: &str) -> Vec<String> {
        let mut flags = self.skopeo_tls_flags(prefix);
        if let Some((user, password)) = self.credentials() {
            flags.push(format!("--{prefix}creds={user}:{password}"));
        }
        flags
    }

    /// Only the TLS part of [`Self::skopeo_flags`].
    pub fn skopeo_tls_flags(&self, prefix: &str) -> Vec<String> {
        match self.cert_dir() {
            None => vec![format!("--{prefix}tls-verify=false")],
            Some(dir) => vec![format!("--{prefix}cert-dir={}", dir.display())],
        }
    }

    /// `GET <url><path>` without credentials (TLS set up as for skopeo). Blocking.
    pub fn get(&self, path: &str) -> Result<HttpResponse, String> {
        self.get_with_headers(path, &[])
    }

    /// [`Self::get`] with extra request headers (e.g. `Authorization`, `Accept`).
    pub fn get_with_headers(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, String> {
        let url = format!("{}{path}", self.url());
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .tls_built_in_root_certs(false);
        if let Some(ca) = self.ca_cert_pem() {
            let cert = reqwest::Certificate::from_pem(ca.as_bytes())
                .map_err(|err| format!("loading the test CA: {err}"))?;
            builder = builder.add_root_certificate(cert);
        }
        if let Some((cert, key)) = self.client_cert() {
            let identity = reqwest::Identity::from_pem(format!("{key}{cert}").as_bytes())
                .map_err(|err| format!("loading the client certificate: {err}"))?;
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|err| format!("building an HTTP client: {err}"))?;
        let mut request = client.get(&url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        block_on(async move {
            let response = request
                .send()
                .await
                .map_err(|err| format!("GET {url}: {err:#}"))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_string(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = response
                .bytes()
                .await
                .map_err(|err| format!("GET {url}: reading the body: {err}"))?
                .to_vec();
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        })
    }
}

/// Starts `docker-registry serve <dir>/config.yml`, appending to `<dir>/registry.log`.
fn spawn(dir: &Path, config: &RegistryConfig) -> Result<Child, String> {
    let config_path = dir.join("config.yml");
    let log_path = dir.join("registry.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|err| format!("opening {}: {err}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|err| format!("cloning the log file handle: {err}"))?;
    let mut command = Command::new(REGISTRY_BIN);
    command
        .arg("serve")
        .arg(&config_path)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // REGISTRY_* variables override config.yml; none may leak in from the environment.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REGISTRY_") {
            command.env_remove(name);
        }
    }
    if let Some(ca_pem) = config.proxy.as_ref().and_then(|p| p.remote_ca_pem.as_ref()) {
        let ca_path = dir.join("upstream-ca.crt");
        write_file(&ca_path, ca_pem);
        command.env("SSL_CERT_FILE", ca_path);
    }
    command
        .spawn()
        .map_err(|err| format!("starting {REGISTRY_BIN}: {err} (apt-get install docker-registry)"))
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer from [`Registry::get`].
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Runs a future on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime")
        .block_on(future)
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("finding a free port on 127.0.0.1")
        .port()
}

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .expect("random bytes");
    hex::encode(buf)
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn yaml_str(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}
