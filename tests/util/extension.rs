//! A Drone registry-extension peer, over plain HTTP or TLS, that checks each request the way
//! an extension built on Drone's starter project (`drone/boilr-registry`, which serves
//! `drone-go`'s `plugin/registry` handler) does, with its own code (ring's HMAC), so our
//! signing is not checked against itself:
//!
//! - the `Signature` header is parsed as `99designs/httpsignatures-go` (88528bf) parses it:
//!   every `key="value"` pair, only `keyId`, `algorithm`, `headers`, `signature` allowed,
//!   `keyId`, `algorithm` (`hmac-sha256` or `hmac-sha1`) and `signature` required;
//! - the signed headers must include `date`; the signing string is rebuilt from the
//!   received headers (`name: value` lines, first value of each, joined by `\n`) and its
//!   HMAC under the shared secret must equal the signature;
//! - the body must be JSON `{"repo", "build"}` (the handler's `Invalid Input`).
//!
//! Two deliberate differences from Drone's handler: a bad signature gets `401` (Drone's
//! handler says `400`; a bad body still gets `400`), and the `Digest` header is also checked
//! against the body's SHA-256 (Drone only signs it).

use super::http;
use base64::Engine;
use serde_json::Value;
use sha2::Digest;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

/// What the peer answers to a request whose signature verifies.
#[derive(Clone, Debug)]
pub enum Answer {
    /// `200` with this JSON (normally `[{address, username, password}]`).
    Json(Value),
    /// `204 No Content`.
    NoContent,
    /// This status, content type and body, as they are.
    Raw(u16, &'static str, String),
}

/// A request the peer received, and what it made of it.
#[derive(Clone, Debug)]
pub struct Received {
    /// Header (lower-case name, value) pairs, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// `None` when the signature, digest and body checked out; else why not.
    pub rejected: Option<String>,
}

impl Received {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }
}

/// A running peer; its threads end with the test process.
pub struct ExtensionPeer {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

struct Config {
    secret: String,
    answer: Answer,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl ExtensionPeer {
    /// A plain-HTTP peer sharing `secret`, answering `answer`.
    pub fn start(secret: &str, answer: Answer) -> ExtensionPeer {
        ExtensionPeer::spawn(Config {
            secret: secret.into(),
            answer,
            tls: None,
        })
    }

    /// An HTTPS peer with this certificate (PEM chain) and PKCS#8 key.
    pub fn start_tls(secret: &str, answer: Answer, cert_pem: &str, key_pem: &str) -> ExtensionPeer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("parsing the peer's certificate");
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("parsing the peer's key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("the peer's certificate and key");
        ExtensionPeer::spawn(Config {
            secret: secret.into(),
            answer,
            tls: Some(Arc::new(config)),
        })
    }

    fn spawn(config: Config) -> ExtensionPeer {
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let received = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&received);
        let address = http::serve("extension peer", move |stream| {
            serve(stream, &config, &shared)
        });
        let url = format!("{scheme}://{address}/registry");
        ExtensionPeer { url, received }
    }

    /// The endpoint URL to give as `registry_extension.endpoint`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request received so far (a TLS handshake that failed is no request).
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("peer log").clone()
    }
}

fn serve(stream: TcpStream, config: &Config, received: &Mutex<Vec<Received>>) {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    match &config.tls {
        None => handle(stream, config, received),
        Some(tls) => {
            let Ok(connection) = rustls::ServerConnection::new(Arc::clone(tls)) else {
                return;
            };
            handle(
                rustls::StreamOwned::new(connection, stream),
                config,
                received,
            );
        }
    }
}

fn handle(stream: impl Read + Write, config: &Config, received: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(stream);
    let Some((method, target, headers, body)) = read_request(&mut reader) else {
        return;
    };
    let rejected = verify(&method, &target, &headers, &body, &config.secret).err();
    received.lock().expect("peer log").push(Received {
        headers,
        body,
        rejected: rejected.clone(),
    });
    let (status, content_type, body) = match (rejected, &config.answer) {
        (Some(why), _) if why.starts_with("Invalid Input") || why.starts_with("Digest") => {
            (400, "text/plain", format!("{why}\n"))
        }
        (Some(why), _) => (401, "text/plain", format!("{why}\n")),
        (None, Answer::Json(value)) => (200, "application/json", value.to_string()),
        (None, Answer::NoContent) => (204, "", String::new()),
        (None, Answer::Raw(status, content_type, body)) => (*status, *content_type, body.clone()),
    };
    let mut head = format!("HTTP/1.1 {status} Peer\r\nConnection: close\r\n");
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if status != 204 {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let stream = reader.get_mut();
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let (head, body) = http::read_request(reader)?;
    let headers = head
        .headers
        .iter()
        .map(|line| {
            let (name, value) = line.split_once(':')?;
            // Go's textproto trims the value's surrounding spaces.
            Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((head.method, head.target, headers, body))
}

fn first_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// httpsignatures-go's `FromRequest` + `IsValid`, then the digest and the body.
fn verify(
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
    secret: &str,
) -> Result<(), String> {
    let value = first_header(headers, "signature")
        .or_else(|| {
            first_header(headers, "authorization").map(|a| a.trim_start_matches("Signature "))
        })
        .ok_or("Invalid or Missing Signature: no Signature header found in request")?;
    let pairs = regex::Regex::new(r#"(\w+)="([^"]*)""#).expect("signature regex");
    let (mut key_id, mut algorithm, mut list, mut signature) = (None, None, Vec::new(), None);
    for captures in pairs.captures_iter(value) {
        let (key, v) = (&captures[1], captures[2].to_string());
        match key {
            "keyId" => key_id = Some(v),
            "algorithm" => match v.as_str() {
                "hmac-sha256" => algorithm = Some(ring::hmac::HMAC_SHA256),
                "hmac-sha1" => algorithm = Some(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
                other => {
                    return Err(format!(
                        "Invalid or Missing Signature: unknown algorithm {other}"
                    ))
                }
            },
            "headers" => {
                list = v
                    .to_ascii_lowercase()
                    .split(' ')
                    .map(str::to_string)
                    .collect()
            }
            "signature" => signature = Some(v),
            other => {
                return Err(format!(
                    "Invalid or Missing Signature: unexpected key in signature '{other}'"
                ))
            }
        }
    }
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or("Invalid or Missing Signature: missing signature")?;
    key_id
        .filter(|k| !k.is_empty())
        .ok_or("Invalid or Missing Signature: missing keyId")?;
    let algorithm = algorithm.ok_or("Invalid or Missing Signature: missing algorithm")?;
    if !list.iter().any(|h| h == "date") {
        return Err("Invalid Signature: date is not signed".into());
    }
    let mut lines = Vec::new();
    for header in &list {
        if header == "(request-target)" {
            lines.push(format!(
                "(request-target): {} {target}",
                method.to_ascii_lowercase()
            ));
            continue;
        }
        match first_header(headers, header) {
            Some(v) if !v.is_empty() => lines.push(format!("{header}: {v}")),
            _ => {
                return Err(format!(
                    "Invalid Signature: missing required header '{header}'"
                ))
            }
        }
    }
    let key = ring::hmac::Key::new(algorithm, secret.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD
        .encode(ring::hmac::sign(&key, lines.join("\n").as_bytes()).as_ref());
    if expected != signature {
        return Err("Invalid Signature".into());
    }
    let digest = format!(
        "SHA-256={}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body))
    );
    if first_header(headers, "digest") != Some(digest.as_str()) {
        return Err("Digest mismatch".into());
    }
    let parsed: Value = serde_json::from_slice(body).map_err(|_| "Invalid Input")?;
    if !parsed["repo"].is_object() || !parsed["build"].is_object() {
        return Err("Invalid Input: expected {repo, build}".into());
    }
    Ok(())
}
