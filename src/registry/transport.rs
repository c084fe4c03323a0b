//! [`Transport`]: one HTTP client per registry host, built from the source's TLS options:
//! system roots plus matching `ca_certs` (adding, never replacing), a matching `client_certs`
//! identity for mutual TLS, and `insecure_registries` (`host:port` or CIDR) / `insecure`, which
//! skip certificate verification and allow plain HTTP for that registry only. No global state.
//! Also owns the `debug: true` trace (secrets redacted); `super::classify` maps low-level
//! failures to [`Error`]s.

use super::classify::classify;
use super::error::Error;
use super::retry::{RetryPolicy, Timeouts};
use super::tls::{self, ClientIdentity};
use crate::log::Log;
use crate::secret::Secret;
use ipnet::IpNet;
use rustls::pki_types::CertificateDer;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A rule from `insecure_registries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsecureRule {
    /// `host` or `host:port`.
    Host(String),
    /// A network such as `10.0.0.0/8`, matched against the registry's resolved addresses.
    Cidr(IpNet),
}

impl InsecureRule {
    /// Parses one `insecure_registries` entry.
    pub fn parse(entry: &str) -> Result<InsecureRule, Error> {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(Error::Config(
                "insecure_registries: empty entry; give host:port or a CIDR such as 10.0.0.0/8"
                    .into(),
            ));
        }
        if entry.contains('/') {
            return entry.parse::<IpNet>().map(InsecureRule::Cidr).map_err(|e| {
                Error::Config(format!(
                    "insecure_registries: {entry:?} is not a valid CIDR ({e}); give host:port or a network such as 10.0.0.0/8"
                ))
            });
        }
        Ok(InsecureRule::Host(entry.to_ascii_lowercase()))
    }
}

/// An extra CA to trust, added to the system roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCa {
    /// The registry it is for, `host[:port]` (see [`domain_matches`]); `None` for all.
    pub domain: Option<String>,
    /// PEM text, one or more certificates.
    pub cert: String,
}

/// A client certificate and key, for mutual TLS with one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsIdentity {
    /// The registry, `host[:port]` (see [`domain_matches`]).
    pub domain: String,
    /// PEM certificate (chain).
    pub cert: String,
    /// PEM private key.
    pub key: Secret,
}

/// What a registry's transport is built from. `Default` is: system roots only, nothing
/// insecure, no client certificate, no trace, notes on stderr.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// Extra CAs; an entry without a domain applies to every registry.
    pub ca_certs: Vec<TlsCa>,
    /// Client certificates, by domain.
    pub client_certs: Vec<TlsIdentity>,
    /// Registries allowed plain HTTP and unverified TLS.
    pub insecure: Vec<InsecureRule>,
    /// Write an HTTP trace to `log`.
    pub debug: bool,
    /// Connect and stall timeouts (see [`Timeouts`]).
    pub timeouts: Timeouts,
    /// How failed requests are tried again (see [`RetryPolicy`]).
    pub retry: RetryPolicy,
    /// Where retry notes, warnings and the trace go (the command's log).
    pub log: Log,
}

impl TransportOptions {
    /// Timeouts and retry policy from the environment (see [`super::retry`]), the rest
    /// empty.
    pub fn from_env() -> TransportOptions {
        TransportOptions {
            timeouts: Timeouts::from_env(),
            retry: RetryPolicy::from_env(),
            ..TransportOptions::default()
        }
    }
}

/// Splits `host[:port]` (also `[v6]:port`) into host and optional port.
pub fn split_host_port(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let port = rest[end + 1..].strip_prefix(':');
            return (&rest[..end], port);
        }
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (host, None),
    }
}

/// True when an option's `domain` names this registry host: exactly, by host name when the
/// domain has no port (`registry.local` matches `registry.local:5000`), or with `:443` for a
/// host written without a port (HTTPS's default, so D's `registry.local:443` matches a
/// repository `registry.local/app`). Case-insensitive.
pub fn domain_matches(domain: &str, host: &str) -> bool {
    let domain = domain.trim().to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    if domain == host {
        return true;
    }
    let (dh, dp) = split_host_port(&domain);
    let (hh, hp) = split_host_port(&host);
    dh == hh && (dp.is_none() || (dp == Some("443") && hp.is_none()))
}

/// True for `localhost` and loopback addresses, where plain HTTP is allowed as Docker does.
pub fn is_loopback(host: &str) -> bool {
    let (name, _) = split_host_port(host);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The HTTP client for one registry host.
#[derive(Debug, Clone)]
pub struct Transport {
    host: String,
    http: reqwest::Client,
    insecure: bool,
    has_identity: bool,
    debug: bool,
    timeouts: Timeouts,
    retry: RetryPolicy,
    log: Log,
}

impl Transport {
    /// Builds the client for `host` (`host[:port]`). Resolves the host only when CIDR rules
    /// need it.
    pub async fn new(host: &str, options: &TransportOptions) -> Result<Transport, Error> {
        let insecure = is_insecure(host, &options.insecure).await;
        let mut roots: Vec<CertificateDer<'static>> = system_roots(&options.log).to_vec();
        for (i, ca) in options.ca_certs.iter().enumerate() {
            if let Some(domain) = &ca.domain {
                if !domain_matches(domain, host) {
                    continue;
                }
            }
            roots.extend(parse_ca_bundle(&ca.cert, i, ca.domain.as_deref())?);
        }
        let identity = match options
            .client_certs
            .iter()
            .enumerate()
            .find(|(_, cc)| domain_matches(&cc.domain, host))
        {
            Some((i, cc)) => Some(ClientIdentity::from_pem(
                &format!("client_certs[{i}] (domain {})", cc.domain),
                &cc.cert,
                cc.key.expose(),
            )?),
            None => None,
        };
        let has_identity = identity.is_some();
        let tls = tls::client_config(host, &roots, insecure, identity)?;
        let builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .user_agent(concat!("image-resource/", env!("CARGO_PKG_VERSION")))
            // Covers the TLS handshake too: reqwest times the whole connector.
            .connect_timeout(options.timeouts.connect)
            // Per read, reset by every byte: a stalled registry is an error, a slow
            // download is not.
            .read_timeout(options.timeouts.stall)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            // Redirects (blob downloads to object storage) are followed; reqwest drops
            // Authorization when the redirect leaves the host.
            .redirect(reqwest::redirect::Policy::limited(10));
        let http = builder.build().map_err(|e| {
            Error::Config(format!(
                "building the HTTP client for registry {host}: {}",
                error_chain(&e)
            ))
        })?;
        Ok(Transport {
            host: host.to_string(),
            http,
            insecure,
            has_identity,
            debug: options.debug,
            timeouts: options.timeouts,
            retry: options.retry,
            log: options.log.clone(),
        })
    }

    /// The registry host this transport talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Schemes to try, in order: HTTPS always first; HTTP too for insecure and loopback
    /// registries (as Docker does).
    pub fn schemes(&self) -> &'static [&'static str] {
        if self.insecure || is_loopback(&self.host) {
            &["https", "http"]
        } else {
            &["https"]
        }
    }

    /// The retry policy for requests to this registry.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// A fresh count of tries for one request, its notes going to this transport's log.
    pub fn retrying(&self) -> super::retry::Retry {
        self.retry.start(&self.log)
    }

    /// Where this transport's notes go.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Maps a failure while reading a response body (`what`: what it was) to
    /// [`Error::Stalled`] or [`Error::Transport`].
    pub fn body_error(&self, error: reqwest::Error, what: &str) -> Error {
        if error.is_timeout() {
            return Error::Stalled {
                host: self.host.clone(),
                what: what.to_string(),
                after: self.timeouts.stall,
            };
        }
        Error::Transport {
            host: self.host.clone(),
            detail: what.to_string(),
            source: Some(error),
        }
    }

    /// The body of `response` read whole (`what`: what it is, for errors), or `None` when it
    /// holds more than `limit` bytes (reading stops there).
    pub async fn read_body(
        &self,
        mut response: reqwest::Response,
        limit: u64,
        what: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut body = Vec::with_capacity(limit.min(1 << 20) as usize);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > limit {
                        return Ok(None);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(Some(body)),
                Err(e) => return Err(self.body_error(e, &format!("reading {what}"))),
            }
        }
    }

    /// The underlying client, for building requests.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends a request, tracing it when `debug` is on and mapping failures to [`Error`].
    pub async fn send(&self, request: reqwest::Request) -> Result<reqwest::Response, Error> {
        let started = Instant::now();
        let (method, url) = (request.method().clone(), redact_url(request.url()));
        if self.debug {
            let auth = match request.headers().get(reqwest::header::AUTHORIZATION) {
                Some(value) => {
                    // The scheme word only: a bare token (ECS's container credentials
                    // send one) has no scheme, and is itself the secret.
                    let scheme = value
                        .to_str()
                        .ok()
                        .and_then(|v| v.trim().split_once(char::is_whitespace))
                        .map_or(String::new(), |(scheme, _)| format!("{scheme} "));
                    format!(" [Authorization: {scheme}<redacted>]")
                }
                None => String::new(),
            };
            self.log
                .line(format_args!("debug: --> {method} {url}{auth}"));
        }
        let result = self.http.execute(request).await;
        match result {
            Ok(response) => {
                if self.debug {
                    let headers = response.headers();
                    let mut extra = String::new();
                    for name in ["docker-content-digest", "content-type", "content-length"] {
                        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
                            extra.push_str(&format!(" {name}={v}"));
                        }
                    }
                    if let Some(v) = headers
                        .get(reqwest::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                    {
                        extra.push_str(&format!(" www-authenticate={v}"));
                    }
                    self.log.line(format_args!(
                        "debug: <-- {} {method} {url} ({} ms, {:?}){extra}",
                        response.status().as_u16(),
                        started.elapsed().as_millis(),
                        response.version()
                    ));
                }
                Ok(response)
            }
            Err(e) => {
                let https = url.starts_with("https:");
                let err = classify(&self.host, e, https, self.has_identity, &self.timeouts);
                if self.debug {
                    self.log.line(format_args!(
                        "debug: <-- failed {method} {url} ({} ms): {}",
                        started.elapsed().as_millis(),
                        error_chain(&err)
                    ));
                }
                Err(err)
            }
        }
    }
}

/// Where distributions keep the system CA bundle as one file (Debian, RHEL, SUSE, Alpine).
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system's root certificates, read once per process from `SSL_CERT_FILE` or the
/// distribution's single bundle file (reading `/etc/ssl/certs/` file by file costs more than
/// a whole `check` against a local registry). A missing bundle is said once, on `log`.
fn system_roots(log: &Log) -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
        let candidates = from_env
            .into_iter()
            .chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from));
        for path in candidates {
            if let Ok(pem) = std::fs::read(&path) {
                if let Ok(certs) = tls::pem_certificates(&pem) {
                    if !certs.is_empty() {
                        return certs;
                    }
                }
            }
        }
        log.line(format_args!("warning: no system CA bundle found (looked at SSL_CERT_FILE and {}); only `ca_certs` will be trusted", SYSTEM_BUNDLES.join(", ")));
        Vec::new()
    })
}

/// Parses one `ca_certs` entry into certificates, with an error naming the entry.
fn parse_ca_bundle(
    pem: &str,
    index: usize,
    domain: Option<&str>,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let name = match domain {
        Some(d) => format!("ca_certs[{index}] (domain {d})"),
        None => format!("ca_certs[{index}]"),
    };
    let certs = tls::pem_certificates(pem.as_bytes())
        .map_err(|e| Error::Config(format!("{name}: not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{name}: holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(certs)
}

async fn is_insecure(host: &str, rules: &[InsecureRule]) -> bool {
    if rules.is_empty() {
        return false;
    }
    let lowered = host.to_ascii_lowercase();
    if rules
        .iter()
        .any(|r| matches!(r, InsecureRule::Host(h) if domain_matches(h, &lowered)))
    {
        return true;
    }
    let networks: Vec<&IpNet> = rules
        .iter()
        .filter_map(|r| match r {
            InsecureRule::Cidr(net) => Some(net),
            InsecureRule::Host(_) => None,
        })
        .collect();
    if networks.is_empty() {
        return false;
    }
    let (name, port) = split_host_port(host);
    let addresses: Vec<IpAddr> = match name.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            let port: u16 = port.and_then(|p| p.parse().ok()).unwrap_or(443);
            match tokio::net::lookup_host((name, port)).await {
                Ok(found) => found.map(|a| a.ip()).collect(),
                Err(_) => Vec::new(),
            }
        }
    };
    addresses
        .iter()
        .any(|ip| networks.iter().any(|net| net.contains(ip)))
}

/// Renders an error and its sources as one line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// A URL for traces and errors, with secret-looking query parameters redacted.
pub fn redact_url(url: &url::Url) -> String {
    const SECRET_KEYS: [&str; 6] = [
        "token",
        "access_token",
        "refresh_token",
        "password",
        "secret",
        "signature",
    ];
    let mut url = url.clone();
    let _ = url.set_password(None);
    if url.query().is_none() {
        return url.to_string();
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let lower = k.to_ascii_lowercase();
            if SECRET_KEYS.iter().any(|s| lower.contains(s)) {
                (k.into_owned(), "<redacted>".to_string())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_splitting() {
        assert_eq!(split_host_port("a:5000"), ("a", Some("5000")));
        assert_eq!(split_host_port("a"), ("a", None));
        assert_eq!(split_host_port("[::1]:5000"), ("::1", Some("5000")));
        assert_eq!(split_host_port("::1"), ("::1", None));
    }

    #[test]
    fn domains_match_exactly_or_by_host_name() {
        assert!(domain_matches("reg.local:5000", "reg.local:5000"));
        assert!(domain_matches("reg.local", "reg.local:5000"));
        assert!(domain_matches("REG.local", "reg.local"));
        assert!(!domain_matches("reg.local:5001", "reg.local:5000"));
        assert!(!domain_matches("other.local", "reg.local"));
        assert!(!domain_matches("reg.local:5000", "reg.local"));
        assert!(domain_matches("reg.local:443", "reg.local"));
        assert!(domain_matches("REG.local:443", "reg.local:443"));
        assert!(!domain_matches("reg.local:443", "reg.local:5000"));
        assert!(!domain_matches("other.local:443", "reg.local"));
        assert!(domain_matches("[::1]:443", "::1"));
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.3.2.1"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(!is_loopback("registry.example.com"));
    }

    #[test]
    fn insecure_rules_parse() {
        assert_eq!(
            InsecureRule::parse("Reg:5000").ok(),
            Some(InsecureRule::Host("reg:5000".into()))
        );
        assert!(matches!(
            InsecureRule::parse("10.0.0.0/8"),
            Ok(InsecureRule::Cidr(_))
        ));
        assert!(InsecureRule::parse("10.0.0.0/99").is_err());
        assert!(InsecureRule::parse(" ").is_err());
    }

    #[tokio::test]
    async fn insecure_matching_by_host_and_cidr() {
        let rules = vec![
            InsecureRule::parse("reg.local:5000").unwrap(),
            InsecureRule::parse("10.1.0.0/16").unwrap(),
        ];
        assert!(is_insecure("reg.local:5000", &rules).await);
        assert!(!is_insecure("reg.local:5001", &rules).await);
        assert!(is_insecure("10.1.2.3:443", &rules).await);
        assert!(!is_insecure("10.2.2.3:443", &rules).await);
        let loopback = vec![InsecureRule::parse("127.0.0.0/8").unwrap()];
        assert!(is_insecure("localhost:5000", &loopback).await);
    }

    /// A server that accepts and never answers: the TLS handshake hits the connect
    /// timeout, a plain HTTP request the stall timeout; neither hangs.
    #[tokio::test]
    async fn silent_servers_hit_the_connect_and_stall_timeouts() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        // The connect timeout covers the TLS handshake (the stall timeout is longer here).
        let cases = [
            ("https", 300, 3000, "no connection within 0.3 s"),
            ("http", 3000, 300, "sent nothing for 0.3 s"),
        ];
        for (scheme, connect, stall, expected) in cases {
            let options = TransportOptions {
                timeouts: Timeouts {
                    connect: Duration::from_millis(connect),
                    stall: Duration::from_millis(stall),
                },
                ..TransportOptions::default()
            };
            let transport = Transport::new(&host, &options).await.unwrap();
            let started = Instant::now();
            let request = transport
                .http()
                .get(format!("{scheme}://{host}/v2/"))
                .build()
                .unwrap();
            let error = transport.send(request).await.unwrap_err();
            assert!(error.to_string().contains(expected), "{scheme}: {error}");
            assert!(error.is_temporary(), "{scheme}: {error}");
            assert!(started.elapsed() < Duration::from_secs(2), "{scheme}");
        }
        held.abort();
    }

    #[test]
    fn urls_are_redacted() {
        let url =
            url::Url::parse("https://u:p@a/token?service=x&access_token=abc&scope=s").unwrap();
        let shown = redact_url(&url);
        assert!(!shown.contains("abc") && !shown.contains(":p@"), "{shown}");
        assert!(
            shown.contains("service=x") && shown.contains("scope=s"),
            "{shown}"
        );
    }
}
