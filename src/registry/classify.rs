//! Maps a failed request (a `reqwest` error) to the [`Error`] a user can act on: a TLS
//! problem with the option that fixes it, a refused or timed-out connection (temporary), a
//! stall, or a broken connection; the HTTP client's error is kept as the source.

use super::error::Error;
use super::retry::{Timeouts, CONNECT_TIMEOUT_ENV};
use super::transport::error_chain;

/// Maps a reqwest failure to a TLS, connect or transport error naming the host.
pub(super) fn classify(
    host: &str,
    error: reqwest::Error,
    https: bool,
    has_identity: bool,
    timeouts: &Timeouts,
) -> Error {
    if error.is_timeout() {
        return if error.is_connect() {
            Error::Connect {
                host: host.to_string(),
                detail: format!(
                    "no connection within {} s ({CONNECT_TIMEOUT_ENV} sets the limit)",
                    timeouts.connect.as_secs_f64()
                ),
                temporary: true,
                source: Some(error),
            }
        } else {
            Error::Stalled {
                host: host.to_string(),
                what: "waiting for its answer".into(),
                after: timeouts.stall,
            }
        };
    }
    let mut refused = false;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return tls_error(host, tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                refused = true;
                break;
            }
            // io::Error's source() skips the error it wraps: step into it instead.
            if let Some(inner) = io.get_ref() {
                current = Some(inner);
                continue;
            }
        }
        current = e.source();
    }
    if refused {
        return Error::Connect {
            host: host.to_string(),
            detail: "connection refused (is the registry running on that port?)".into(),
            temporary: true,
            source: Some(error),
        };
    }
    let chain = error_chain(&error);
    // Some layers (h2) keep a TLS alert only as text.
    if let Some(alert) = chain
        .split("received fatal alert: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next())
    {
        return tls_error(host, &rustls::Error::AlertReceived(alert_named(alert)));
    }
    if https
        && (chain.contains("connection closed")
            || chain.contains("reset by peer")
            || chain.contains("Broken pipe")
            || chain.contains("broken pipe"))
    {
        let hint = if has_identity {
            format!("check that the registry trusts the certificate given in `client_certs` for domain {host}")
        } else {
            format!("if the registry requires client certificates, give one in `client_certs` with domain {host}")
        };
        return Error::Transport {
            host: host.to_string(),
            detail: format!("the registry closed the TLS connection ({hint})"),
            source: Some(error),
        };
    }
    if error.is_connect() {
        let unresolved = chain.contains("dns error") || chain.contains("failed to lookup");
        let detail = if unresolved {
            "the host name does not resolve"
        } else {
            "the connection failed"
        };
        return Error::Connect {
            host: host.to_string(),
            detail: detail.to_string(),
            temporary: !unresolved,
            source: Some(error),
        };
    }
    Error::Transport {
        host: host.to_string(),
        detail: String::new(),
        source: Some(error),
    }
}

/// A TLS failure with the option that fixes it: the server's certificate (ca_certs,
/// insecure_registries) or ours (client_certs).
fn tls_error(host: &str, error: &rustls::Error) -> Error {
    use rustls::AlertDescription as Alert;
    let client_side = matches!(
        error,
        rustls::Error::AlertReceived(
            Alert::BadCertificate
                | Alert::CertificateRequired
                | Alert::UnknownCA
                | Alert::CertificateUnknown
                | Alert::UnsupportedCertificate
                | Alert::CertificateExpired
                | Alert::CertificateRevoked
                | Alert::AccessDenied
        )
    );
    let hint = if client_side {
        format!("The registry rejected our client certificate (or wants one): give a certificate it trusts in `client_certs` with domain {host}")
    } else {
        format!("If the registry uses a private CA, add it with `ca_certs` (domain {host}); if it has no valid certificate, list it in `insecure_registries` (or set `insecure: true`)")
    };
    Error::Tls {
        host: host.to_string(),
        detail: error.to_string(),
        hint,
    }
}

/// The alert a server sent, from its name in rustls' `Debug` output.
fn alert_named(name: &str) -> rustls::AlertDescription {
    use rustls::AlertDescription as Alert;
    match name {
        "BadCertificate" => Alert::BadCertificate,
        "CertificateRequired" => Alert::CertificateRequired,
        "UnknownCA" => Alert::UnknownCA,
        "CertificateUnknown" => Alert::CertificateUnknown,
        "UnsupportedCertificate" => Alert::UnsupportedCertificate,
        "CertificateExpired" => Alert::CertificateExpired,
        "CertificateRevoked" => Alert::CertificateRevoked,
        "AccessDenied" => Alert::AccessDenied,
        "HandshakeFailure" => Alert::HandshakeFailure,
        "ProtocolVersion" => Alert::ProtocolVersion,
        _ => Alert::Unknown(0),
    }
}
