//! Amazon ECR (`aws_*`) end to end, with moto (`moto_server`, started per test) standing in
//! for ECR and STS through `AWS_ENDPOINT_URL`, and a real htpasswd registry whose user `AWS`
//! has exactly the password moto's `GetAuthorizationToken` hands out. The registry is the
//! repository's own (127.0.0.1), which is how ECR options apply: to the repository's registry.
//! What moto cannot show (a real ECR host, SigV4 checked by AWS) is covered by unit tests of
//! the options and left to the README.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

use crate::put::work_dir;
use crate::util::bin::{bin_path, run_command};
use crate::util::front::{Action, Front, Seen};
use crate::util::moto::{ecr_password, Moto, DEFAULT_ACCOUNT};
use crate::util::*;

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzEXAMPLEKEY";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzSESSIONtokenEXAMPLE0123456789";
/// An account other than moto's default: only an assumed role of it gets its password.
const ROLE_ACCOUNT: &str = "111111111111";

/// Runs `bin` with `request`, moto as every AWS endpoint, no AWS_* variable of the test's
/// own environment, and `env` on top.
fn run_aws(bin: &str, args: &[&str], request: &Value, moto: &Moto, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin_path(bin));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command.env("AWS_ENDPOINT_URL", moto.url());
    for (name, value) in env {
        command.env(name, value);
    }
    run_command(
        command,
        request.to_string().as_bytes(),
        std::time::Duration::from_secs(60),
    )
}

/// A registry whose only user is `AWS` with moto's password for `account`, holding one image.
fn ecr_like_registry(account: &str, repository: &str) -> (Registry, String) {
    let registry = Registry::start(RegistryConfig::new().htpasswd("AWS", &ecr_password(account)));
    let digest = push(
        &registry,
        &random_image(1, 1024),
        &format!("{repository}:latest"),
    );
    (registry, digest)
}

fn keyed_source(registry: &Registry, repository: &str) -> Value {
    json!({
        "repository": format!("{}/{repository}", registry.host()),
        "tag": "latest",
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_session_token": SESSION_TOKEN,
        "aws_region": "us-east-1",
    })
}

fn digest_of(out: &Output) -> String {
    let value = out.expect_success();
    value[0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest in {value}"))
        .to_string()
}

fn assert_no_secret(out: &Output, account: &str) {
    let password = ecr_password(account);
    let token = base64_of(&format!("AWS:{password}"));
    for secret in [SECRET_KEY, SESSION_TOKEN, password.as_str(), token.as_str()] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "secret {secret:?} leaked:\nstdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn check_in_out_with_keys_through_get_authorization_token() {
    let moto = Moto::start();
    let (registry, digest) = ecr_like_registry(DEFAULT_ACCOUNT, "ecr/app");
    let source = keyed_source(&registry, "ecr/app");

    // check, quiet and traced: the same answer, and no secret either way.
    let out = run_aws("check", &[], &json!({ "source": source }), &moto, &[]);
    assert_eq!(digest_of(&out), digest, "{}", moto.log());
    assert_no_secret(&out, DEFAULT_ACCOUNT);
    let mut traced = source.clone();
    traced["debug"] = json!(true);
    let out = run_aws("check", &[], &json!({ "source": traced }), &moto, &[]);
    assert_eq!(digest_of(&out), digest);
    assert!(
        out.stderr
            .contains("from Amazon ECR (GetAuthorizationToken in us-east-1"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("AWS4-HMAC-SHA256 <redacted>"),
        "{}",
        out.stderr
    );
    assert_no_secret(&out, DEFAULT_ACCOUNT);

    // in
    let dest = work_dir();
    let version = json!({ "digest": digest, "tag": "latest" });
    let request = json!({ "source": traced, "version": version });
    let out = run_aws("in", &[path(dest.path())], &request, &moto, &[]);
    out.expect_success();
    assert_no_secret(&out, DEFAULT_ACCOUNT);
    assert!(dest.path().join("rootfs").is_dir());

    // out: push another image to a new tag.
    let image = random_image(1, 512);
    let mut target = traced.clone();
    target["tag"] = json!("pushed");
    let request = json!({ "source": target, "params": { "image": image.path() } });
    let work = work_dir();
    let out = run_aws("out", &[path(work.path())], &request, &moto, &[]);
    let response = out.expect_success();
    assert_eq!(
        response["version"]["digest"].as_str(),
        Some(image.digest.as_str())
    );
    assert_no_secret(&out, DEFAULT_ACCOUNT);

    // Wrong keys for this registry: the registry's refusal, naming it.
    let mut other = source.clone();
    other["aws_role_arn"] = json!(format!("arn:aws:iam::{ROLE_ACCOUNT}:role/x"));
    let err = run_aws("check", &[], &json!({ "source": other }), &moto, &[])
        .expect_failure()
        .to_string();
    assert!(err.contains(&registry.host()), "{err}");
}

#[test]
fn roles_are_assumed_in_order_through_sts() {
    let moto = Moto::start();
    let (registry, digest) = ecr_like_registry(ROLE_ACCOUNT, "ecr/role");
    let role = format!("arn:aws:iam::{ROLE_ACCOUNT}:role/x");

    // Without the role, moto's token is for 123456789012: the registry refuses it.
    let plain = keyed_source(&registry, "ecr/role");
    run_aws("check", &[], &json!({ "source": plain }), &moto, &[]).expect_failure();

    // aws_role_arn: STS AssumeRole, then GetAuthorizationToken with the role's keys.
    let before = moto.requests();
    let mut one = plain.clone();
    one["aws_role_arn"] = json!(role);
    one["debug"] = json!(true);
    let out = run_aws("check", &[], &json!({ "source": one }), &moto, &[]);
    assert_eq!(digest_of(&out), digest, "{}", moto.log());
    assert_eq!(
        moto.requests() - before,
        2,
        "AssumeRole + GetAuthorizationToken"
    );
    assert!(
        out.stderr.contains(&format!("as role {role}")),
        "{}",
        out.stderr
    );
    assert_no_secret(&out, ROLE_ACCOUNT);

    // aws_role_arns: a chain, the last role decides the account.
    let before = moto.requests();
    let mut chain = plain.clone();
    chain["aws_role_arns"] = json!([format!("arn:aws:iam::{DEFAULT_ACCOUNT}:role/a"), role]);
    let out = run_aws("check", &[], &json!({ "source": chain }), &moto, &[]);
    assert_eq!(digest_of(&out), digest);
    assert_eq!(moto.requests() - before, 3);

    // Both options: R's error.
    let mut both = chain.clone();
    both["aws_role_arn"] = json!("arn:aws:iam::123456789012:role/a");
    let err = run_aws("check", &[], &json!({ "source": both }), &moto, &[])
        .expect_failure()
        .to_string();
    assert!(
        err.contains("aws_role_arn and source.aws_role_arns"),
        "{err}"
    );
}

#[test]
fn credentials_from_the_environment_and_web_identity() {
    let moto = Moto::start();
    let (registry, digest) = ecr_like_registry(DEFAULT_ACCOUNT, "ecr/env");
    let source = json!({
        "repository": format!("{}/ecr/env", registry.host()),
        "tag": "latest",
        "aws_region": "us-east-1",
    });
    let request = json!({ "source": source });
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ];
    let out = run_aws("check", &[], &request, &moto, &env);
    assert_eq!(digest_of(&out), digest, "{}", out.stderr);

    // Web identity (EKS): the role's account decides the password.
    let (role_registry, role_digest) = ecr_like_registry(ROLE_ACCOUNT, "ecr/web");
    let dir = work_dir();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.web-identity.sig").expect("token file");
    let role = format!("arn:aws:iam::{ROLE_ACCOUNT}:role/web");
    let source = json!({
        "repository": format!("{}/ecr/web", role_registry.host()),
        "tag": "latest",
        "aws_region": "us-east-1",
    });
    let env = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", path(&token_file)),
        ("AWS_ROLE_ARN", role.as_str()),
    ];
    let out = run_aws("check", &[], &json!({ "source": source, }), &moto, &env);
    assert_eq!(digest_of(&out), role_digest, "{}", out.stderr);

    // Container credentials (ECS, EKS Pod Identity) and the EC2 instance profile: moto
    // serves the instance metadata API too; its keys belong to 123456789012.
    let (plain_registry, plain_digest) = ecr_like_registry(DEFAULT_ACCOUNT, "ecr/instance");
    let source = json!({
        "repository": format!("{}/ecr/instance", plain_registry.host()),
        "tag": "latest",
        "aws_region": "us-east-1",
        "debug": true,
    });
    let full_uri = format!(
        "{}/latest/meta-data/iam/security-credentials/default-role",
        moto.url()
    );
    let container = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.as_str()),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "container-auth-token-123",
        ),
    ];
    let out = run_aws(
        "check",
        &[],
        &json!({ "source": source }),
        &moto,
        &container,
    );
    assert_eq!(digest_of(&out), plain_digest, "{}", out.stderr);
    assert!(
        out.stderr.contains("with container credentials from"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("container-auth-token-123"));
    let endpoint = moto.url();
    let imds = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint.as_str())];
    let out = run_aws("check", &[], &json!({ "source": source }), &moto, &imds);
    assert_eq!(digest_of(&out), plain_digest, "{}", out.stderr);
    assert!(
        out.stderr.contains("with the EC2 instance profile"),
        "{}",
        out.stderr
    );
    for secret in ["test-secret-key", "test-session-token", "fake-imdsv2-token"] {
        assert!(!out.stderr.contains(secret), "{secret}: {}", out.stderr);
    }

    // Nothing at all: an error that says where credentials can come from.
    let disabled = [("AWS_EC2_METADATA_DISABLED", "true")];
    let out = run_aws("check", &[], &json!({ "source": source }), &moto, &disabled);
    let err = out.expect_failure();
    assert!(
        err.contains("no AWS credentials") && err.contains("aws_access_key_id"),
        "{err}"
    );
}

#[test]
fn region_errors_name_the_option() {
    let moto = Moto::start();
    let registry = Registry::start(RegistryConfig::new().htpasswd("AWS", "unused"));
    let mut source = keyed_source(&registry, "ecr/region");

    source["aws_region"] = json!(null);
    let err = run_aws("check", &[], &json!({ "source": source }), &moto, &[])
        .expect_failure()
        .to_string();
    assert!(
        err.contains("no region")
            && err.contains("source.aws_region")
            && err.contains(&registry.host()),
        "{err}"
    );
    // From the environment, as the AWS SDKs read it.
    let out = run_aws(
        "check",
        &[],
        &json!({ "source": source }),
        &moto,
        &[("AWS_REGION", "us-east")],
    );
    let err = out.expect_failure();
    assert!(
        err.contains("\"us-east\" (from AWS_REGION)") && err.contains("source.aws_region"),
        "{err}"
    );

    source["aws_region"] = json!("us-east");
    let err = run_aws("check", &[], &json!({ "source": source }), &moto, &[])
        .expect_failure()
        .to_string();
    assert!(
        err.contains("\"us-east\"") && err.contains("source.aws_region"),
        "{err}"
    );

    // A bare name next to aws_region, without an account: R's form we cannot place.
    let bare = json!({ "repository": "team/app", "aws_region": "us-east-1",
        "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY });
    let err = run_aws("check", &[], &json!({ "source": bare }), &moto, &[])
        .expect_failure()
        .to_string();
    assert!(
        err.contains("aws_account_id") && err.contains("team/app"),
        "{err}"
    );
    assert!(!err.contains(SECRET_KEY));
}

#[test]
fn r_deprecated_registry_id_is_the_account_id_with_a_note() {
    let moto = Moto::start();
    let (registry, digest) = ecr_like_registry(DEFAULT_ACCOUNT, "ecr/alias");
    let mut source = keyed_source(&registry, "ecr/alias");
    source["aws_ecr_registry_id"] = json!("123456789012");
    let out = run_aws("check", &[], &json!({ "source": source }), &moto, &[]);
    assert_eq!(digest_of(&out), digest);
    assert!(
        out.stderr.contains("note: source.aws_ecr_registry_id")
            && out.stderr.contains("aws_account_id"),
        "{}",
        out.stderr
    );
    source["aws_account_id"] = json!("222222222222");
    let err = run_aws("check", &[], &json!({ "source": source }), &moto, &[])
        .expect_failure()
        .to_string();
    assert!(err.contains("disagree"), "{err}");
}

/// A front before moto whose requests matching `fails` get `fault` the first `failures`
/// times; everything else goes through.
fn flaky_moto(
    moto: &Moto,
    failures: usize,
    fails: fn(&Seen) -> bool,
    fault: fn() -> Action,
) -> Front {
    let upstream = moto.url().trim_start_matches("http://").to_string();
    let count = AtomicUsize::new(0);
    Front::start(upstream, move |seen| {
        if fails(seen) && count.fetch_add(1, Ordering::SeqCst) < failures {
            fault()
        } else {
            Action::Forward
        }
    })
}

fn unavailable() -> Action {
    Action::Respond("503 Service Unavailable".into())
}

fn any_request(_: &Seen) -> bool {
    true
}

fn retry_notes(out: &Output, service: &str, front: &Front) -> usize {
    out.stderr
        .matches(&format!(
            "retrying the {service} request to {}",
            front.host()
        ))
        .count()
}

#[test]
fn sts_and_ecr_requests_are_retried_on_busy_or_broken_answers() {
    let moto = Moto::start();
    let (registry, digest) = ecr_like_registry(ROLE_ACCOUNT, "ecr/retry");
    let mut source = keyed_source(&registry, "ecr/retry");
    source["aws_role_arn"] = json!(format!("arn:aws:iam::{ROLE_ACCOUNT}:role/x"));

    // STS AssumeRole answers 503 twice, ECR's GetAuthorizationToken has its connection
    // reset once: the check still succeeds, saying what it retried (and nothing secret).
    let sts = flaky_moto(&moto, 2, any_request, unavailable);
    let ecr = flaky_moto(&moto, 1, any_request, || Action::Reset);
    let sts_url = format!("http://{}", sts.host());
    let ecr_url = format!("http://{}", ecr.host());
    let env = [
        ("AWS_ENDPOINT_URL_STS", sts_url.as_str()),
        ("AWS_ENDPOINT_URL_ECR", ecr_url.as_str()),
    ];
    let out = run_aws("check", &[], &json!({ "source": source }), &moto, &env);
    assert_eq!(digest_of(&out), digest, "{}", out.stderr);
    assert_eq!(retry_notes(&out, "AWS STS", &sts), 2, "{}", out.stderr);
    assert!(out.stderr.contains("answered HTTP 503"), "{}", out.stderr);
    assert_eq!(retry_notes(&out, "Amazon ECR", &ecr), 1, "{}", out.stderr);
    assert_eq!((sts.seen().len(), ecr.seen().len()), (3, 2));
    assert_no_secret(&out, ROLE_ACCOUNT);
    assert!(!out.stderr.contains("AWS4-HMAC-SHA256"), "{}", out.stderr);

    // A refusal (403) is an answer: one request, STS's own error, no retry.
    let denied = Front::start("127.0.0.1:9".to_string(), |_| {
        Action::RespondWithBody(
            "403 Forbidden".into(),
            vec!["Content-Type: text/xml".into()],
            b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
              <Message>not authorized to perform sts:AssumeRole</Message></Error>\
              </ErrorResponse>"
                .to_vec(),
        )
    });
    let denied_url = format!("http://{}", denied.host());
    let env = [("AWS_ENDPOINT_URL_STS", denied_url.as_str())];
    let out = run_aws("check", &[], &json!({ "source": source }), &moto, &env);
    let err = out.expect_failure();
    assert!(
        err.contains("AWS STS AssumeRole")
            && err.contains("answered HTTP 403: AccessDenied: not authorized"),
        "{err}"
    );
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    assert_eq!(denied.seen().len(), 1);
}

#[test]
fn instance_metadata_is_retried_once_it_answers_and_skipped_fast_when_absent() {
    let moto = Moto::start();
    let (registry, digest) = ecr_like_registry(DEFAULT_ACCOUNT, "ecr/imds");
    let source = json!({
        "repository": format!("{}/ecr/imds", registry.host()),
        "tag": "latest",
        "aws_region": "us-east-1",
    });

    // The token PUT (the probe) answers 503 twice: something is there, so it is retried;
    // then the role GET has its connection reset once: retried too.
    let imds = flaky_moto(&moto, 2, |seen| seen.method == "PUT", unavailable);
    let endpoint = format!("http://{}", imds.host());
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint.as_str())];
    let out = run_aws("check", &[], &json!({ "source": source }), &moto, &env);
    assert_eq!(digest_of(&out), digest, "{}", out.stderr);
    assert_eq!(
        retry_notes(&out, "EC2 instance metadata", &imds),
        2,
        "{}",
        out.stderr
    );
    for secret in ["test-secret-key", "test-session-token", "fake-imdsv2-token"] {
        assert!(!out.stderr.contains(secret), "{secret}: {}", out.stderr);
    }
    let reset = flaky_moto(
        &moto,
        1,
        |seen| seen.target.ends_with("/security-credentials/"),
        || Action::Reset,
    );
    let endpoint = format!("http://{}", reset.host());
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint.as_str())];
    let out = run_aws("check", &[], &json!({ "source": source }), &moto, &env);
    assert_eq!(digest_of(&out), digest, "{}", out.stderr);
    assert_eq!(
        retry_notes(&out, "EC2 instance metadata", &reset),
        1,
        "{}",
        out.stderr
    );

    // Container credentials (configured on purpose) are retried too.
    let container = flaky_moto(&moto, 1, any_request, unavailable);
    let full_uri = format!(
        "http://{}/latest/meta-data/iam/security-credentials/default-role",
        container.host()
    );
    let env = [("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.as_str())];
    let out = run_aws("check", &[], &json!({ "source": source }), &moto, &env);
    assert_eq!(digest_of(&out), digest, "{}", out.stderr);
    assert_eq!(
        retry_notes(&out, "AWS container credentials", &container),
        1,
        "{}",
        out.stderr
    );

    // No instance metadata service at all (a refused connection, as off EC2): the probe
    // fails at once, with no backoff, and says where credentials can come from.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", closed.as_str())];
    let started = std::time::Instant::now();
    let out = run_aws("check", &[], &json!({ "source": source }), &moto, &env);
    let elapsed = started.elapsed();
    let err = out.expect_failure();
    assert!(err.contains("EC2 instance metadata"), "{err}");
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    assert!(elapsed.as_secs_f64() < 2.0, "{elapsed:?}: {}", out.stderr);
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}
