//! [`Error`]: what can go wrong talking to a registry, in variants callers match on.
//! Every message names the registry (and repository where there is one) and says what to do.

/// A registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401: the registry (or its token server) wants credentials we do not have or refused ours.
    #[error("{}", unauthorized_message(.registry, .repository, *.had_credentials, .detail))]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// Repository the request was for, if any.
        repository: Option<String>,
        /// True when credentials were sent (and refused).
        had_credentials: bool,
        /// The server's own words, if any.
        detail: String,
    },
    /// 403: authenticated, but not allowed.
    #[error("registry {registry} denied access to repository {repository} (HTTP 403{}): the credentials are valid but lack permission for this repository", detail_suffix(.detail))]
    Denied {
        /// Registry host.
        registry: String,
        /// Repository.
        repository: String,
        /// The server's own words, if any.
        detail: String,
    },
    /// 404 for a manifest or blob.
    #[error("{what} {reference} not found in repository {repository} on registry {registry}")]
    NotFound {
        /// Registry host.
        registry: String,
        /// Repository.
        repository: String,
        /// `manifest` or `blob`.
        what: &'static str,
        /// Tag or digest.
        reference: String,
    },
    /// TLS handshake or certificate verification failed.
    #[error("TLS certificate problem with registry {host}: {detail}. {hint}")]
    Tls {
        /// host:port.
        host: String,
        /// What rustls said.
        detail: String,
        /// Which option fixes it.
        hint: String,
    },
    /// TCP connect or DNS failure.
    #[error("cannot connect to registry {host}: {detail}")]
    Connect {
        /// host:port.
        host: String,
        /// Refused, timed out, unknown host...
        detail: String,
        /// False when trying again cannot help (the host name does not resolve).
        temporary: bool,
        /// The HTTP client's error, when there is one.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The registry accepted the connection, then sent nothing for the stall timeout.
    #[error("registry {host} sent nothing for {} s while {what} (stall timeout; {} sets it)", .after.as_secs_f64(), super::retry::STALL_TIMEOUT_ENV)]
    Stalled {
        /// host:port.
        host: String,
        /// What we were waiting for.
        what: String,
        /// The stall timeout.
        after: std::time::Duration,
    },
    /// Any other unexpected HTTP status.
    #[error("registry {registry} answered {method} {url} with HTTP {status}{}", detail_suffix(.diagnostics))]
    Status {
        /// Registry host.
        registry: String,
        /// HTTP method.
        method: String,
        /// URL (no secrets: registries carry none in URLs we build).
        url: String,
        /// HTTP status code.
        status: u16,
        /// The body's `errors` array, condensed.
        diagnostics: String,
        /// Seconds the registry asked to wait before trying again (`Retry-After`).
        retry_after: Option<u64>,
    },
    /// Content whose digest is not the one it was asked for.
    #[error(
        "digest mismatch for {what} from registry {registry}: expected {expected}, got {actual}"
    )]
    DigestMismatch {
        /// Registry host.
        registry: String,
        /// What was fetched.
        what: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what came.
        actual: String,
    },
    /// A manifest, config, token or tag list larger than we read into memory.
    #[error("registry {registry} sent {what} larger than {limit} bytes: refused")]
    TooLarge {
        /// Registry host.
        registry: String,
        /// What it was.
        what: String,
        /// Our limit.
        limit: u64,
    },
    /// The response was not what the protocol says (bad JSON, missing header...).
    #[error("registry {registry} sent an invalid response: {detail}")]
    Protocol {
        /// Registry host.
        registry: String,
        /// What was wrong.
        detail: String,
    },
    /// The connection broke mid-request.
    #[error("request to registry {host} failed{}", detail_suffix(.detail))]
    Transport {
        /// host:port.
        host: String,
        /// What was being done (and a hint, if there is one).
        detail: String,
        /// The HTTP client's error, when there is one.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// A local file could not be read or written.
    #[error("{what}")]
    Io {
        /// What was being done, naming the file.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Options that cannot work for this registry (bad PEM, bad CIDR...).
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// True for failures worth retrying: 408, 429, 5xx, refused, broken or stalled
    /// connections.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Status { status, .. } => super::retry::is_retryable_status(*status),
            Error::Transport { .. } | Error::Stalled { .. } => true,
            Error::Connect { temporary, .. } => *temporary,
            _ => false,
        }
    }

    /// How long the registry asked to wait before a retry, if it said (`Retry-After` in
    /// seconds; the HTTP-date form is not used by registries and is ignored).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Status {
                retry_after: Some(seconds),
                ..
            } => Some(std::time::Duration::from_secs(*seconds)),
            _ => None,
        }
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

fn unauthorized_message(
    registry: &str,
    repository: &Option<String>,
    had_credentials: bool,
    detail: &str,
) -> String {
    let target = match repository {
        Some(repo) => format!("registry {registry} (repository {repo})"),
        None => format!("registry {registry}"),
    };
    let what = if had_credentials {
        "refused the credentials given (HTTP 401): check `username`/`password` (or the registry's entry in your credential source)"
    } else {
        "requires authentication and no credentials were given (HTTP 401): set `username` and `password` in `source`"
    };
    format!("{target} {what}{}", detail_suffix(detail))
}

/// Condenses a registry error body (`{"errors":[{"code","message","detail"}]}`) to one line.
pub fn diagnostics(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => parsed
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            text.chars().take(200).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_condense_errors_array() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(diagnostics(body), "MANIFEST_UNKNOWN: manifest unknown");
        assert_eq!(diagnostics(b"  plain text \n"), "plain text");
    }

    #[test]
    fn unauthorized_messages_differ_with_and_without_credentials() {
        let with = Error::Unauthorized {
            registry: "r:5000".into(),
            repository: Some("a/b".into()),
            had_credentials: true,
            detail: String::new(),
        }
        .to_string();
        assert!(with.contains("refused the credentials"), "{with}");
        assert!(with.contains("r:5000") && with.contains("a/b"), "{with}");
        let without = Error::Unauthorized {
            registry: "r:5000".into(),
            repository: None,
            had_credentials: false,
            detail: String::new(),
        }
        .to_string();
        assert!(without.contains("no credentials were given"), "{without}");
    }
}
