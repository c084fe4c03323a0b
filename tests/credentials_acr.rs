//! Azure ACR (`azure_acr: true`) end to end. No ACR or Entra ID runs locally, so two peers
//! written here play them, in front of a real registry with token auth:
//!
//! - an "Entra ID" front (never forwarding) answers the client-credentials grant at
//!   `/<tenant>/oauth2/v2.0/token` (`AZURE_AUTHORITY_HOST`) and the managed-identity endpoint
//!   `/metadata/identity/oauth2/token` (`IMAGE_RESOURCE_AZURE_IMDS_ENDPOINT`);
//! - an "ACR" front before a real `docker-registry` answers `POST /oauth2/exchange` itself and
//!   forwards the rest; the registry's token server ([`TokenServer`]) accepts only the user
//!   `00000000-0000-0000-0000-000000000000` with the refresh token the exchange gave, as
//!   ACR's `/oauth2/token` does.
//!
//! What this cannot show: Entra ID's and ACR's real answers (formats follow their docs and
//! R's code).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

use crate::put::work_dir;
use crate::util::bin::{bin_path, run_command};
use crate::util::front::{Action, Front, Seen};
use crate::util::*;

const ZERO_USER: &str = "00000000-0000-0000-0000-000000000000";
const REFRESH: &str = "acr-refresh-token-0123456789";
const AAD_TOKEN: &str = "aad-access-token-abcdef";
const CLIENT_SECRET: &str = "client-secret-Pa55";
const FEDERATED: &str = "eyJhbGciOiJSUzI1NiJ9.federated.sig";
const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT: &str = "66666666-7777-8888-9999-000000000000";

fn form(seen: &Seen) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&seen.body)
        .into_owned()
        .collect()
}

fn field(seen: &Seen, name: &str) -> Option<String> {
    form(seen)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn json_answer(status: &str, body: Value) -> Action {
    Action::RespondWithBody(
        status.to_string(),
        vec!["Content-Type: application/json".to_string()],
        body.to_string().into_bytes(),
    )
}

/// The Entra ID peer: a client secret or federated token for [`CLIENT`] in [`TENANT`], or any
/// managed identity, gets [`AAD_TOKEN`] for the management scope.
fn entra_id() -> Front {
    Front::start("127.0.0.1:9".to_string(), entra_rule)
}

/// [`entra_id`], but the requests matching `fails` get `fault` the first `failures` times.
fn flaky_entra_id(failures: usize, fails: fn(&Seen) -> bool, fault: fn() -> Action) -> Front {
    let count = AtomicUsize::new(0);
    Front::start("127.0.0.1:9".to_string(), move |seen| {
        if fails(seen) && count.fetch_add(1, Ordering::SeqCst) < failures {
            fault()
        } else {
            entra_rule(seen)
        }
    })
}

/// How the Entra ID peer answers `seen`.
fn entra_rule(seen: &Seen) -> Action {
    let scope_ok = field(seen, "scope").as_deref() == Some("https://management.azure.com/.default");
    if seen.method == "POST" && seen.target == format!("/{TENANT}/oauth2/v2.0/token") {
        let client_ok = field(seen, "client_id").as_deref() == Some(CLIENT);
        let proof_ok = field(seen, "client_secret").as_deref() == Some(CLIENT_SECRET)
            || (field(seen, "client_assertion").as_deref() == Some(FEDERATED)
                && field(seen, "client_assertion_type").is_some_and(|t| t.ends_with("jwt-bearer")));
        if client_ok && proof_ok && scope_ok {
            return json_answer(
                "200 OK",
                json!({"access_token": AAD_TOKEN, "token_type": "Bearer", "expires_in": 3599}),
            );
        }
        return json_answer(
            "401 Unauthorized",
            json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
        );
    }
    if seen.method == "GET" && seen.target.starts_with("/metadata/identity/oauth2/token?") {
        let metadata = seen
            .headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("metadata: true"));
        let resource = seen
            .target
            .contains("resource=https%3A%2F%2Fmanagement.azure.com%2F");
        if metadata && resource {
            return json_answer(
                "200 OK",
                json!({"access_token": AAD_TOKEN, "resource": "https://management.azure.com/"}),
            );
        }
        return json_answer("400 Bad Request", json!({"error": "invalid_request"}));
    }
    json_answer("404 Not Found", json!({"error": "not_found"}))
}

/// A registry with token auth, an image in it, and the ACR front before it.
struct Acr {
    _tokens: TokenServer,
    registry: Registry,
    front: Front,
    digest: String,
}

fn acr(repository: &str) -> Acr {
    flaky_acr(repository, 0, unavailable)
}

/// [`acr`], but the first `failures` exchanges get `fault`.
fn flaky_acr(repository: &str, failures: usize, fault: fn() -> Action) -> Acr {
    let count = AtomicUsize::new(0);
    let tokens = TokenServer::start(TokenConfig::new().user(ZERO_USER, REFRESH));
    let registry = Registry::start(RegistryConfig::new().token(&tokens));
    let digest = push(
        &registry,
        &random_image(1, 1024),
        &format!("{repository}:latest"),
    );
    let front = Front::start(registry.host(), move |seen| {
        if seen.target != "/oauth2/exchange" {
            return Action::Forward;
        }
        if count.fetch_add(1, Ordering::SeqCst) < failures {
            return fault();
        }
        let ok = seen.method == "POST"
            && field(seen, "grant_type").as_deref() == Some("access_token")
            && field(seen, "access_token").as_deref() == Some(AAD_TOKEN)
            && field(seen, "tenant").is_some_and(|t| t == TENANT || t == "common");
        if ok {
            json_answer("200 OK", json!({"refresh_token": REFRESH}))
        } else {
            json_answer(
                "401 Unauthorized",
                json!({"errors": [{"code": "UNAUTHORIZED", "message": "invalid tenant or token"}]}),
            )
        }
    });
    Acr {
        _tokens: tokens,
        registry,
        front,
        digest,
    }
}

impl Acr {
    fn source(&self, repository: &str) -> Value {
        json!({ "repository": format!("{}/{repository}", self.front.host()), "tag": "latest",
                "azure_acr": true, "azure_tenant_id": TENANT })
    }

    fn exchanges(&self) -> Vec<Seen> {
        self.front
            .seen()
            .into_iter()
            .filter(|s| s.target == "/oauth2/exchange")
            .collect()
    }
}

/// Runs `bin` with no AZURE_* variable of the test's environment, Entra ID at `entra`, and
/// `env` on top.
fn run_azure(
    bin: &str,
    args: &[&str],
    request: &Value,
    entra: &Front,
    env: &[(&str, &str)],
) -> Output {
    let mut command = Command::new(bin_path(bin));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("AZURE_") || name_text.starts_with("IMAGE_RESOURCE_AZURE") {
            command.env_remove(name);
        }
    }
    command.env("AZURE_AUTHORITY_HOST", format!("http://{}/", entra.host()));
    command.env(
        "IMAGE_RESOURCE_AZURE_IMDS_ENDPOINT",
        format!("http://{}", entra.host()),
    );
    for (name, value) in env {
        command.env(name, value);
    }
    run_command(
        command,
        request.to_string().as_bytes(),
        std::time::Duration::from_secs(60),
    )
}

const SECRET_ENV: [(&str, &str); 3] = [
    ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
    ("AZURE_CLIENT_ID", CLIENT),
    ("AZURE_TENANT_ID", TENANT),
];

fn digest_of(out: &Output) -> String {
    let value = out.expect_success();
    value[0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest in {value}"))
        .to_string()
}

fn assert_no_secret(out: &Output) {
    for secret in [REFRESH, AAD_TOKEN, CLIENT_SECRET, FEDERATED] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "secret {secret:?} leaked:\nstdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

#[test]
fn client_secret_then_exchange_for_check_in_and_out() {
    let entra = entra_id();
    let acr = acr("acr/app");
    let mut source = acr.source("acr/app");

    let out = run_azure(
        "check",
        &[],
        &json!({ "source": source }),
        &entra,
        &SECRET_ENV,
    );
    assert_eq!(digest_of(&out), acr.digest, "{}", acr.registry.log());
    assert_no_secret(&out);
    let exchanges = acr.exchanges();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(
        field(&exchanges[0], "service").as_deref(),
        Some(acr.front.host())
    );
    assert_eq!(field(&exchanges[0], "tenant").as_deref(), Some(TENANT));

    source["debug"] = json!(true);
    let out = run_azure(
        "check",
        &[],
        &json!({ "source": source }),
        &entra,
        &SECRET_ENV,
    );
    assert_eq!(digest_of(&out), acr.digest);
    assert!(
        out.stderr.contains("from Azure ACR (client secret"),
        "{}",
        out.stderr
    );
    assert_no_secret(&out);

    let dest = work_dir();
    let request = json!({ "source": source, "version": { "digest": acr.digest, "tag": "latest" } });
    let out = run_azure("in", &[path(dest.path())], &request, &entra, &SECRET_ENV);
    out.expect_success();
    assert_no_secret(&out);

    let image = random_image(1, 512);
    let mut target = source.clone();
    target["tag"] = json!("pushed");
    let work = work_dir();
    let request = json!({ "source": target, "params": { "image": image.path() } });
    let out = run_azure("out", &[path(work.path())], &request, &entra, &SECRET_ENV);
    assert_eq!(
        out.expect_success()["version"]["digest"].as_str(),
        Some(image.digest.as_str())
    );
    assert_no_secret(&out);

    // A wrong secret: Entra ID's refusal, with the registry and the identity named.
    let wrong = [
        ("AZURE_CLIENT_SECRET", "wrong"),
        SECRET_ENV[1],
        SECRET_ENV[2],
    ];
    let out = run_azure("check", &[], &json!({ "source": source }), &entra, &wrong);
    let err = out.expect_failure();
    assert!(
        err.contains("Azure ACR")
            && err.contains(acr.front.host())
            && err.contains("invalid_client"),
        "{err}"
    );
}

#[test]
fn federated_token_and_managed_identity() {
    let entra = entra_id();
    let acr = acr("acr/wi");
    let source = acr.source("acr/wi");

    let dir = work_dir();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, FEDERATED).expect("token file");
    let env = [
        ("AZURE_FEDERATED_TOKEN_FILE", path(&token_file)),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_TENANT_ID", TENANT),
    ];
    let out = run_azure("check", &[], &json!({ "source": source }), &entra, &env);
    assert_eq!(digest_of(&out), acr.digest, "{}", out.stderr);
    assert_no_secret(&out);

    // Managed identity (R's way): user-assigned by azure_client_id, through the metadata
    // service; no tenant given, so the registry's challenge is read and `common` used.
    let mut managed = source.clone();
    managed["azure_client_id"] = json!(CLIENT);
    managed["azure_tenant_id"] = json!(null);
    let out = run_azure("check", &[], &json!({ "source": managed }), &entra, &[]);
    assert_eq!(digest_of(&out), acr.digest, "{}", out.stderr);
    let imds: Vec<Seen> = entra
        .seen()
        .into_iter()
        .filter(|s| s.target.starts_with("/metadata/"))
        .collect();
    assert_eq!(imds.len(), 1);
    assert!(
        imds[0].target.contains(&format!("client_id={CLIENT}")),
        "{}",
        imds[0].target
    );
    let last = acr.exchanges().pop().expect("an exchange");
    assert_eq!(field(&last, "tenant").as_deref(), Some("common"));
}

#[test]
fn errors_name_the_option_and_the_registry() {
    let entra = entra_id();
    let acr = acr("acr/err");
    let mut source = acr.source("acr/err");

    // The exchange refuses the tenant: the hint names azure_tenant_id.
    source["azure_tenant_id"] = json!("99999999-0000-0000-0000-000000000000");
    let env = [SECRET_ENV[0], SECRET_ENV[1], ("AZURE_TENANT_ID", TENANT)];
    let err = run_azure("check", &[], &json!({ "source": source }), &entra, &env)
        .expect_failure()
        .to_string();
    assert!(
        err.contains("/oauth2/exchange") && err.contains("source.azure_tenant_id"),
        "{err}"
    );
    assert!(err.contains(acr.front.host()), "{err}");

    // An unknown cloud.
    source["azure_environment"] = json!("AzureMoon");
    let err = run_azure("check", &[], &json!({ "source": source }), &entra, &env)
        .expect_failure()
        .to_string();
    assert!(
        err.contains("source.azure_environment") && err.contains("AzurePublic"),
        "{err}"
    );

    // A client secret without a client id.
    let source = acr.source("acr/err");
    let env = [SECRET_ENV[0], SECRET_ENV[2]];
    let err = run_azure("check", &[], &json!({ "source": source }), &entra, &env)
        .expect_failure()
        .to_string();
    assert!(
        err.contains("azure_client_id") && err.contains("AZURE_CLIENT_ID"),
        "{err}"
    );
}

fn unavailable() -> Action {
    Action::Respond("503 Service Unavailable".into())
}

fn retry_notes(out: &Output, service: &str, front: &Front) -> usize {
    out.stderr
        .matches(&format!(
            "retrying the {service} request to {}",
            front.host()
        ))
        .count()
}

fn is_token_post(seen: &Seen) -> bool {
    seen.method == "POST"
}

fn is_metadata(seen: &Seen) -> bool {
    seen.target.starts_with("/metadata/")
}

#[test]
fn entra_id_and_the_exchange_are_retried_on_busy_or_broken_answers() {
    // Entra ID's token POST answers 503 twice, the exchange has its connection reset once.
    let entra = flaky_entra_id(2, is_token_post, unavailable);
    let acr = flaky_acr("acr/retry", 1, || Action::Reset);
    let source = acr.source("acr/retry");
    let out = run_azure(
        "check",
        &[],
        &json!({ "source": source }),
        &entra,
        &SECRET_ENV,
    );
    assert_eq!(digest_of(&out), acr.digest, "{}", out.stderr);
    assert_eq!(retry_notes(&out, "Entra ID", &entra), 2, "{}", out.stderr);
    assert!(out.stderr.contains("answered HTTP 503"), "{}", out.stderr);
    assert_eq!(
        retry_notes(&out, "ACR token exchange", &acr.front),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(entra.seen().len(), 3);
    assert_eq!(acr.exchanges().len(), 2);
    assert_no_secret(&out);

    // The exchange answers 503 once; the managed identity's metadata service too (it is
    // probed, but it answered: worth another try).
    let entra = flaky_entra_id(1, is_metadata, unavailable);
    let acr = flaky_acr("acr/retry-mi", 1, unavailable);
    let mut managed = acr.source("acr/retry-mi");
    managed["azure_client_id"] = json!(CLIENT);
    let out = run_azure("check", &[], &json!({ "source": managed }), &entra, &[]);
    assert_eq!(digest_of(&out), acr.digest, "{}", out.stderr);
    assert_eq!(
        retry_notes(&out, "Azure instance metadata", &entra),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(
        retry_notes(&out, "ACR token exchange", &acr.front),
        1,
        "{}",
        out.stderr
    );
    assert_no_secret(&out);
}

#[test]
fn refusals_are_not_retried_and_an_absent_metadata_service_fails_fast() {
    // A refusal from Entra ID (403) is an answer: one request, its own error, no retry.
    let entra = flaky_entra_id(usize::MAX, is_token_post, || {
        json_answer(
            "403 Forbidden",
            json!({"error": "unauthorized_client", "error_description": "AADSTS700016: not allowed"}),
        )
    });
    let acr = acr("acr/denied");
    let source = acr.source("acr/denied");
    let out = run_azure(
        "check",
        &[],
        &json!({ "source": source }),
        &entra,
        &SECRET_ENV,
    );
    let err = out.expect_failure();
    assert!(
        err.contains("answered HTTP 403: unauthorized_client: AADSTS700016"),
        "{err}"
    );
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    assert_eq!(entra.seen().len(), 1);
    assert!(acr.exchanges().is_empty());

    // No metadata service (a refused connection, as off Azure): fails at once, no backoff.
    let mut managed = source.clone();
    managed["azure_client_id"] = json!(CLIENT);
    let closed = format!("http://127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    let out = run_azure(
        "check",
        &[],
        &json!({ "source": managed }),
        &entra,
        &[("IMAGE_RESOURCE_AZURE_IMDS_ENDPOINT", closed.as_str())],
    );
    let elapsed = started.elapsed();
    let err = out.expect_failure();
    assert!(err.contains("managed identity"), "{err}");
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    assert!(elapsed.as_secs_f64() < 2.0, "{elapsed:?}: {}", out.stderr);
}
