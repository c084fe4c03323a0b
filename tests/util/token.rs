//! A Docker token server (the `auth.token` realm of a registry) written for tests: a
//! std-only HTTP/1.1 server on `127.0.0.1:<free port>` that answers
//! `GET /token?service=..&scope=..` (Basic credentials optional) and the OAuth2 form
//! `POST /token` (`grant_type=password` or `refresh_token`; a body with Content-Length or
//! chunked), and issues ES256 JWTs that
//! distribution 2.8 accepts. See <https://distribution.github.io/distribution/spec/auth/token/>
//! and <https://distribution.github.io/distribution/spec/auth/jwt/>.
//!
//! It records every request it receives (method, path and query, whether Basic
//! credentials were present, the user name, the status it answered) so tests can assert
//! how often a client fetched a token. Passwords are never recorded.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rcgen::{CertificateParams, DnType, KeyPair};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

/// How a [`TokenServer`] behaves. `TokenConfig::new()` has no users, refuses anonymous
/// access, answers both `token` and `access_token`, and `expires_in` 300 s.
#[derive(Clone, Debug)]
pub struct TokenConfig {
    service: String,
    issuer: String,
    user: Option<(String, String)>,
    refresh_token: Option<String>,
    allow_anonymous_pull: bool,
    access_token_only: bool,
    expires_in: u64,
    jwt_lifetime: Option<i64>,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            service: "test-registry".to_string(),
            issuer: "test-token-issuer".to_string(),
            user: None,
            refresh_token: None,
            allow_anonymous_pull: false,
            access_token_only: false,
            expires_in: 300,
            jwt_lifetime: None,
        }
    }
}

impl TokenConfig {
    /// The defaults (see the type's doc).
    pub fn new() -> TokenConfig {
        TokenConfig::default()
    }

    /// The one user who is granted everything they ask for.
    pub fn user(mut self, user: &str, password: &str) -> TokenConfig {
        self.user = Some((user.to_string(), password.to_string()));
        self
    }

    /// An OAuth2 refresh token (Docker's `identitytoken`) accepted in place of the user's
    /// password on `POST /token` with `grant_type=refresh_token`. Needs [`Self::user`].
    pub fn refresh_token(mut self, token: &str) -> TokenConfig {
        self.refresh_token = Some(token.to_string());
        self
    }

    /// Requests without credentials get `pull` (but not `push`) on any repository.
    pub fn allow_anonymous_pull(mut self) -> TokenConfig {
        self.allow_anonymous_pull = true;
        self
    }

    /// Answer `{"access_token": ...}` without the `token` field.
    pub fn access_token_only(mut self) -> TokenConfig {
        self.access_token_only = true;
        self
    }

    /// The `expires_in` of the JSON answer, and (unless [`Self::jwt_lifetime`] is set) the
    /// JWT's `exp - iat`. Note that distribution 2.8 allows 60 s of clock skew on `exp`.
    pub fn expires_in(mut self, seconds: u64) -> TokenConfig {
        self.expires_in = seconds;
        self
    }

    /// The JWT's `exp - iat`, independently of `expires_in`; may be negative to issue tokens
    /// the registry rejects as expired (it allows 60 s of skew, so use less than -60).
    pub fn jwt_lifetime(mut self, seconds: i64) -> TokenConfig {
        self.jwt_lifetime = Some(seconds);
        self
    }

    /// The service name (`auth.token.service`, the JWT's `aud`).
    pub fn service(mut self, service: &str) -> TokenConfig {
        self.service = service.to_string();
        self
    }
}

/// One request the token server received. The password is never kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The request target: path and query, as sent.
    pub target: String,
    /// Whether an `Authorization: Basic` header was present.
    pub basic_auth: bool,
    /// The user name from Basic credentials or the POST form, if any.
    pub user: Option<String>,
    /// The requested scopes, e.g. `repository:foo/bar:pull,push`.
    pub scopes: Vec<String>,
    /// The `service` parameter.
    pub service: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
}

/// A running token server; stops on Drop.
pub struct TokenServer {
    port: u16,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    cert_pem: String,
}

struct Shared {
    config: TokenConfig,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    cert_der_b64: String,
    requests: Mutex<Vec<TokenRequest>>,
    serial: AtomicU64,
    /// How many of the next tokens to issue already expired (see [`TokenServer::expire_next`]).
    expire_next: AtomicU64,
}

impl TokenServer {
    /// Generates a signing key and its self-signed certificate, binds a free port on
    /// 127.0.0.1 and starts serving.
    pub fn start(config: TokenConfig) -> TokenServer {
        let key_pair = KeyPair::generate().expect("generating the token signing key");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "image-resource test token signer");
        let cert = params
            .self_signed(&key_pair)
            .expect("self-signing the token certificate");
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &rng,
        )
        .expect("loading the token signing key into ring");

        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token server");
        let port = listener.local_addr().expect("token server address").port();
        let shared = Arc::new(Shared {
            config,
            key,
            rng,
            cert_der_b64: STANDARD.encode(cert.der()),
            requests: Mutex::new(Vec::new()),
            serial: AtomicU64::new(0),
            expire_next: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || accept_loop(listener, shared, stop))
        };
        TokenServer {
            port,
            shared,
            stop,
            thread: Some(thread),
            cert_pem: cert.pem(),
        }
    }

    /// `http://127.0.0.1:PORT/token`, the registry's `auth.token.realm`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `auth.token.service`.
    pub fn service(&self) -> &str {
        &self.shared.config.service
    }

    /// `auth.token.issuer`.
    pub fn issuer(&self) -> &str {
        &self.shared.config.issuer
    }

    /// The PEM certificate whose key signs the tokens (the registry's `rootcertbundle`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The configured user and password, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.shared
            .config
            .user
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.requests.lock().expect("token log lock").clone()
    }

    /// How many tokens were issued (requests answered 200).
    pub fn tokens_issued(&self) -> usize {
        self.requests().iter().filter(|r| r.status == 200).count()
    }

    /// The next `count` tokens are issued already expired (while `expires_in` still claims
    /// they are good), so a client must notice the registry's 401 and fetch a fresh one.
    pub fn expire_next(&self, count: u64) {
        self.shared.expire_next.store(count, Ordering::SeqCst);
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.requests.lock().expect("token log lock").clear();
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let _ = serve_connection(stream, &shared);
        });
    }
}

/// A parsed HTTP request.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    // Keep-alive: serve requests until the client closes the connection.
    while let Some(request) = read_request(&mut reader)? {
        let (status, body) = shared.handle(&request);
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            _ => "Not Found",
        };
        let mut response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if status == 401 {
            response.push_str("WWW-Authenticate: Basic realm=\"token\"\r\n");
        }
        response.push_str("\r\n");
        writer.write_all(response.as_bytes())?;
        writer.write_all(body.as_bytes())?;
        writer.flush()?;
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

/// A `Transfer-Encoding: chunked` body (chunk extensions and trailers ignored).
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = size.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut end = String::new();
        reader.read_line(&mut end)?;
    }
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            headers.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    // buildah (containers/image) sends its refresh-token form chunked.
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader)?
    } else {
        let length = header("content-length")
            .and_then(|value| value.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

impl Shared {
    fn handle(&self, request: &Request) -> (u16, String) {
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((request.target.as_str(), ""));
        let mut params = parse_form(query);
        if request.method == "POST" {
            params.extend(parse_form(&String::from_utf8_lossy(&request.body)));
        }
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let scopes: Vec<String> = params
            .iter()
            .filter(|(key, _)| key == "scope")
            .flat_map(|(_, value)| value.split(' ').map(str::to_string).collect::<Vec<_>>())
            .filter(|scope| !scope.is_empty())
            .collect();
        let basic = request.header("authorization").and_then(parse_basic);

        let mut record = TokenRequest {
            method: request.method.clone(),
            target: request.target.clone(),
            basic_auth: basic.is_some(),
            user: basic.as_ref().map(|(user, _)| user.clone()),
            scopes: scopes.clone(),
            service: param("service"),
            status: 200,
        };

        let answer = if path != "/token" {
            (404, json!({"error": "not found"}))
        } else if request.method == "GET" {
            self.grant(
                basic
                    .as_ref()
                    .map(|(u, p)| (u.as_str(), Secret::Password(p))),
                &scopes,
            )
        } else if request.method == "POST" {
            let user = param("username");
            record.user = record.user.clone().or(user.clone());
            match param("grant_type").as_deref() {
                Some("password") => {
                    let password = param("password").unwrap_or_default();
                    let user = user.unwrap_or_default();
                    self.grant(Some((&user, Secret::Password(&password))), &scopes)
                }
                Some("refresh_token") => {
                    let token = param("refresh_token").unwrap_or_default();
                    let user = user
                        .or_else(|| self.config.user.as_ref().map(|(u, _)| u.clone()))
                        .unwrap_or_default();
                    self.grant(Some((&user, Secret::Refresh(&token))), &scopes)
                }
                _ => (400, json!({"error": "unsupported_grant_type"})),
            }
        } else {
            (404, json!({"error": "not found"}))
        };
        record.status = answer.0;
        self.requests.lock().expect("token log lock").push(record);
        (answer.0, answer.1.to_string())
    }

    /// Decides what to grant and issues the token; wrong credentials are a 401.
    fn grant(&self, credentials: Option<(&str, Secret<'_>)>, scopes: &[String]) -> (u16, Value) {
        let (subject, access) = match credentials {
            Some((user, secret)) => {
                let Some((known_user, known_password)) = &self.config.user else {
                    return (401, json!({"error": "no such user"}));
                };
                let ok = user == known_user
                    && match secret {
                        Secret::Password(password) => password == known_password,
                        Secret::Refresh(token) => {
                            self.config.refresh_token.as_deref() == Some(token)
                        }
                    };
                if !ok {
                    return (401, json!({"error": "invalid credentials"}));
                }
                let access: Vec<Value> = scopes.iter().filter_map(|s| access(s, None)).collect();
                (user.to_string(), access)
            }
            None => {
                let access: Vec<Value> = if self.config.allow_anonymous_pull {
                    scopes
                        .iter()
                        .filter_map(|s| access(s, Some("pull")))
                        .collect()
                } else {
                    Vec::new()
                };
                (String::new(), access)
            }
        };
        let now = unix_now();
        let expire = self
            .expire_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let lifetime = if expire {
            // Past distribution's 60 s of allowed skew: the registry rejects it.
            -120
        } else {
            self.config
                .jwt_lifetime
                .unwrap_or(self.config.expires_in as i64)
        };
        let serial = self.serial.fetch_add(1, Ordering::SeqCst);
        let claims = json!({
            "iss": self.config.issuer,
            "sub": subject,
            "aud": self.config.service,
            "exp": now + lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("token-{serial}-{now}"),
            "access": access,
        });
        let token = self.sign(&claims);
        let mut body = json!({
            "access_token": token,
            "expires_in": self.config.expires_in,
            "issued_at": rfc3339(now),
        });
        if !self.config.access_token_only {
            body["token"] = Value::String(token);
        }
        (200, body)
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [self.cert_der_b64]});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("signing a token");
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

enum Secret<'a> {
    Password(&'a str),
    Refresh(&'a str),
}

/// `type:name:actions` -> a JWT access entry; `only` restricts the actions granted.
/// The name may itself hold `:` (it never does for repositories, but be lenient).
fn access(scope: &str, only: Option<&str>) -> Option<Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if only.is_some() && kind != "repository" {
        return None;
    }
    let actions: Vec<&str> = actions
        .split(',')
        .filter(|action| !action.is_empty() && only.is_none_or(|only| *action == only))
        .collect();
    if actions.is_empty() {
        return None;
    }
    Some(json!({"type": kind, "name": name, "actions": actions}))
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Parses `a=b&c=d` with percent-decoding and `+` as space.
fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |byte: u8| (byte as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs() as i64
}

/// Formats Unix seconds as RFC 3339 UTC (`2024-01-02T03:04:05Z`).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
