//! `check` through every way of reaching a registry: TLS with a private CA (both `ca_certs`
//! forms), `insecure_registries` by host and CIDR, R's `insecure`, mutual TLS, htpasswd,
//! token auth, Docker Hub mirrors with fallback; and the errors when any of it is wrong.
//! Secrets must never reach stdout or stderr, not even with `debug: true`.

use serde_json::{json, Value};

use crate::util::*;

const USER: &str = "ci-user";
const PASSWORD: &str = "s3cret-Pa55word";

fn check(source: &Value) -> Output {
    run("check", &[], &json!({ "source": source }))
}

fn digest_of(out: &Output) -> String {
    let value = out.expect_success();
    value[0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest in {value}"))
        .to_string()
}

fn push_random(registry: &Registry, reference: &str) -> String {
    push(registry, &random_image(1, 1024), reference);
    skopeo_raw_digest(registry, reference)
}

fn assert_no_secret(out: &Output, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "secret {secret:?} leaked:\nstdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn tls_with_private_ca_in_both_forms() {
    let ca = Ca::new();
    let registry = Registry::start(RegistryConfig::new().tls(&ca));
    let digest = push_random(&registry, "tls/app:latest");
    let repository = format!("{}/tls/app", registry.host());

    // D form, for this domain.
    let d_form = json!({ "repository": repository,
        "ca_certs": [{ "domain": registry.host(), "cert": ca.cert_pem() }] });
    assert_eq!(digest_of(&check(&d_form)), digest);
    // R form: a list of PEMs for every registry.
    let r_form = json!({ "repository": repository, "ca_certs": [ca.cert_pem()] });
    assert_eq!(digest_of(&check(&r_form)), digest);

    // Over TLS the registry offers HTTP/2, and we take it.
    let mut traced = r_form.clone();
    traced["debug"] = json!(true);
    let out = check(&traced);
    assert!(out.stderr.contains("HTTP/2"), "{}", out.stderr);

    // A CA for another domain does not apply; without a CA: a certificate error that says
    // what to do, and no fallback to plain HTTP.
    let other = json!({ "repository": repository,
        "ca_certs": [{ "domain": "other.example:443", "cert": ca.cert_pem() }] });
    for source in [other, json!({ "repository": repository })] {
        let err = check(&source).expect_failure().to_string();
        assert!(err.contains("certificate"), "{err}");
        assert!(err.contains(&registry.host()), "{err}");
        assert!(
            err.contains("ca_certs") && err.contains("insecure_registries"),
            "{err}"
        );
    }

    // A malformed CA is an error naming the option.
    let bad = json!({ "repository": repository, "ca_certs": ["not a pem"] });
    let err = check(&bad).expect_failure().to_string();
    assert!(err.contains("ca_certs[0]"), "{err}");
}

#[test]
fn insecure_registries_by_host_and_cidr_and_r_insecure() {
    let ca = Ca::new(); // never given to the resource: verification must be skipped
    let registry = Registry::start(RegistryConfig::new().tls(&ca));
    let digest = push_random(&registry, "insecure/app:latest");
    let repository = format!("{}/insecure/app", registry.host());
    for source in [
        json!({ "repository": repository, "insecure_registries": [registry.host()] }),
        json!({ "repository": repository, "insecure_registries": ["10.0.0.0/8", "127.0.0.0/8"] }),
        json!({ "repository": repository, "insecure": true }),
    ] {
        assert_eq!(digest_of(&check(&source)), digest, "{source}");
    }
    // Rules that do not match leave verification on.
    for source in [
        json!({ "repository": repository, "insecure_registries": ["127.0.0.1:1"] }),
        json!({ "repository": repository, "insecure_registries": ["10.0.0.0/8"] }),
    ] {
        let err = check(&source).expect_failure().to_string();
        assert!(err.contains("certificate"), "{source}: {err}");
    }
    let bad = json!({ "repository": repository, "insecure_registries": ["10.0.0.0/40"] });
    let err = check(&bad).expect_failure().to_string();
    assert!(
        err.contains("insecure_registries") && err.contains("CIDR"),
        "{err}"
    );
}

#[test]
fn mutual_tls_with_client_certs() {
    let server_ca = Ca::new();
    let client_ca = Ca::new();
    let registry = Registry::start(RegistryConfig::new().tls(&server_ca).mutual_tls(&client_ca));
    let digest = push_random(&registry, "mtls/app:latest");
    let (cert, key) = client_ca.client_cert("concourse");
    let repository = format!("{}/mtls/app", registry.host());
    let ca_certs = json!([{ "domain": registry.host(), "cert": server_ca.cert_pem() }]);
    let with_cert = json!({ "repository": repository, "ca_certs": ca_certs,
        "client_certs": [{ "domain": registry.host(), "cert": cert, "key": key }], "debug": true });
    let out = check(&with_cert);
    assert!(
        out.success(),
        "{}\nregistry log:\n{}",
        out.stderr,
        registry.log()
    );
    assert_eq!(digest_of(&out), digest);
    assert_no_secret(&out, &[key.lines().nth(1).expect("key body line")]);

    // Without a client certificate the handshake fails, and the error names the host.
    let without = json!({ "repository": repository, "ca_certs": ca_certs });
    let err = check(&without).expect_failure().to_string();
    assert!(err.contains(&registry.host()), "{err}");
    assert!(err.contains("certificate"), "{err}");

    // A certificate from a CA the registry does not know is refused too.
    let (stranger_cert, stranger_key) = Ca::new().client_cert("stranger");
    let stranger = json!({ "repository": repository, "ca_certs": ca_certs,
        "client_certs": [{ "domain": registry.host(), "cert": stranger_cert, "key": stranger_key }] });
    check(&stranger).expect_failure();

    // A key that is not PEM: an error naming client_certs, without the key.
    let broken = json!({ "repository": repository, "ca_certs": ca_certs,
        "client_certs": [{ "domain": registry.host(), "cert": cert, "key": "garbage-key-material" }] });
    let out = check(&broken);
    let err = out.expect_failure().to_string();
    assert!(err.contains("client_certs[0]"), "{err}");
    assert_no_secret(&out, &["garbage-key-material"]);
}

#[test]
fn x509_v1_client_certificates_work_as_go_reads_them() {
    // `openssl x509 -req` without an extension file makes a v1 certificate; docker, skopeo
    // and the registry (Go) accept it as a client certificate.
    let server_ca = Ca::new();
    let client_ca = Ca::new();
    let registry = Registry::start(RegistryConfig::new().tls(&server_ca).mutual_tls(&client_ca));
    let digest = push_random(&registry, "mtls/v1:latest");
    let (cert, key) = client_ca.client_cert_v1("concourse-v1");
    let der = pem_body_der(&cert);
    // The version field is absent (v1): tbsCertificate starts with the serial, not [0].
    assert_ne!(der.get(8), Some(&0xa0), "openssl made a v3 certificate");
    let source = json!({ "repository": format!("{}/mtls/v1", registry.host()),
        "ca_certs": [{ "domain": registry.host(), "cert": server_ca.cert_pem() }],
        "client_certs": [{ "domain": registry.host(), "cert": cert, "key": key }] });
    let out = check(&source);
    assert!(
        out.success(),
        "{}\nregistry log:\n{}",
        out.stderr,
        registry.log()
    );
    assert_eq!(digest_of(&out), digest);
    assert_no_secret(&out, &[key.lines().nth(1).expect("key body line")]);
}

/// The DER bytes of the first PEM block.
fn pem_body_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM base64")
}

#[test]
fn htpasswd_basic_auth() {
    let registry = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    let digest = push_random(&registry, "basic/app:latest");
    let repository = format!("{}/basic/app", registry.host());
    let good =
        json!({ "repository": repository, "username": USER, "password": PASSWORD, "debug": true });
    let out = check(&good);
    assert_eq!(digest_of(&out), digest);
    assert_no_secret(&out, &[PASSWORD]);
    assert!(
        out.stderr.contains("Authorization: Basic <redacted>"),
        "{}",
        out.stderr
    );

    let wrong = json!({ "repository": repository, "username": USER, "password": "wrong-Pa55", "debug": true });
    let out = check(&wrong);
    let err = out.expect_failure().to_string();
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(
        err.contains(&registry.host()) && err.contains("basic/app"),
        "{err}"
    );
    assert_no_secret(&out, &["wrong-Pa55"]);

    let none = json!({ "repository": repository });
    let err = check(&none).expect_failure().to_string();
    assert!(err.contains("no credentials were given"), "{err}");
}

#[test]
fn token_auth_fetches_one_token_per_scope() {
    let server = TokenServer::start(TokenConfig::new().user(USER, PASSWORD));
    let registry = Registry::start(RegistryConfig::new().token(&server));
    let first = push_random(&registry, "token/app:t");
    let second = push_random(&registry, "token/app:t");
    let repository = format!("{}/token/app", registry.host());
    server.clear_requests();

    let source = json!({ "repository": repository, "tag": "t", "username": USER,
        "password": PASSWORD, "debug": true });
    let request = json!({ "source": source, "version": { "digest": first } });
    let out = run("check", &[], &request);
    assert_eq!(
        out.expect_success(),
        &json!([{ "digest": first, "tag": "t" }, { "digest": second, "tag": "t" }])
    );
    // Two manifest requests, one scope: one token.
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].basic_auth);
    assert_eq!(
        requests[0].scopes,
        vec!["repository:token/app:pull".to_string()]
    );
    assert!(
        out.stderr.contains("Authorization: Bearer <redacted>"),
        "{}",
        out.stderr
    );
    assert_no_secret(&out, &[PASSWORD]);
    assert!(
        !out.stderr.contains("eyJ"),
        "a JWT leaked into the trace:\n{}",
        out.stderr
    );

    let wrong = json!({ "repository": repository, "tag": "t", "username": USER,
        "password": "not-the-password", "debug": true });
    let out = check(&wrong);
    let err = out.expect_failure().to_string();
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(err.contains(&registry.host()), "{err}");
    assert_no_secret(&out, &["not-the-password"]);

    let anonymous = json!({ "repository": repository, "tag": "t" });
    let err = check(&anonymous).expect_failure().to_string();
    assert!(err.contains("no credentials were given"), "{err}");
}

#[test]
fn token_refused_by_the_registry_is_fetched_again_once() {
    let server = TokenServer::start(TokenConfig::new().user(USER, PASSWORD));
    let registry = Registry::start(RegistryConfig::new().token(&server));
    let digest = push_random(&registry, "token/retry:latest");
    let source = json!({ "repository": format!("{}/token/retry", registry.host()),
        "username": USER, "password": PASSWORD });

    // The first token is already expired: 401, a fresh token, success.
    server.clear_requests();
    server.expire_next(1);
    assert_eq!(digest_of(&check(&source)), digest);
    assert_eq!(server.tokens_issued(), 2, "{:?}", server.requests());

    // Only once: when every token is bad, the error says the credentials were refused.
    server.clear_requests();
    server.expire_next(10);
    let err = check(&source).expect_failure().to_string();
    assert!(err.contains("refused the credentials"), "{err}");
    assert_eq!(server.tokens_issued(), 2, "{:?}", server.requests());
}

#[test]
fn debug_trace_shows_requests_without_secrets() {
    let registry = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    push_random(&registry, "trace/app:latest");
    let source = json!({ "repository": format!("{}/trace/app", registry.host()),
        "username": USER, "password": PASSWORD, "debug": true });
    let out = check(&source);
    out.expect_success();
    let head = format!(
        "HEAD http://{}/v2/trace/app/manifests/latest",
        registry.host()
    );
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("<-- 200") && l.contains(&head))
        .unwrap_or_else(|| panic!("no response line for {head} in:\n{}", out.stderr));
    assert!(line.contains(" ms"), "{line}");
    assert!(
        out.stderr.contains(&format!("--> {head}")),
        "{}",
        out.stderr
    );
    assert_no_secret(&out, &[PASSWORD, "Y2ktdXNlcjpzM2NyZXQtUGE1NXdvcmQ="]);
    // Without debug: nothing of it.
    let mut quiet = source.clone();
    quiet["debug"] = json!(false);
    let out = check(&quiet);
    out.expect_success();
    assert!(!out.stderr.contains("debug:"), "{}", out.stderr);
}

#[test]
fn token_auth_anonymous_pull_and_access_token_only() {
    let server = TokenServer::start(
        TokenConfig::new()
            .user(USER, PASSWORD)
            .allow_anonymous_pull()
            .access_token_only(),
    );
    let registry = Registry::start(RegistryConfig::new().token(&server));
    let digest = push_random(&registry, "public/app:latest");
    let source = json!({ "repository": format!("{}/public/app", registry.host()) });
    assert_eq!(digest_of(&check(&source)), digest);
}

#[test]
fn docker_hub_mirror_in_both_forms_with_fallback_to_origin() {
    let upstream = Registry::start(RegistryConfig::new());
    let digest = push_random(&upstream, "library/busybox:1.36");
    let mirror = Registry::start(RegistryConfig::new().proxy(&upstream));
    // Docker Hub's own host is unreachable here: point it at a closed port, so only the
    // mirror can answer.
    let closed = "127.0.0.1:9";
    let hub = [("IMAGE_RESOURCE_DOCKER_HUB_HOST", closed)];
    let check_env = |source: Value, env: &[(&str, &str)]| {
        run_with_env(
            "check",
            &[],
            env,
            json!({ "source": source }).to_string().as_bytes(),
        )
    };

    // D form: a URL; the short name normalises to docker.io/library/busybox.
    let d_form = json!({ "repository": "busybox", "tag": "1.36", "registry_mirror": mirror.url() });
    assert_eq!(digest_of(&check_env(d_form, &hub)), digest);
    // R form: {host}.
    let r_form = json!({ "repository": "docker.io/library/busybox", "tag": "1.36",
        "registry_mirror": { "host": mirror.host() } });
    assert_eq!(digest_of(&check_env(r_form, &hub)), digest);

    // The mirror is down: fall back to the origin, and say so.
    let origin = [("IMAGE_RESOURCE_DOCKER_HUB_HOST", upstream.host())];
    let down =
        json!({ "repository": "busybox", "tag": "1.36", "registry_mirror": "http://127.0.0.1:9" });
    let out = check_env(down.clone(), &[(origin[0].0, origin[0].1.as_str())]);
    assert_eq!(digest_of(&out), digest);
    assert!(out.stderr.contains("falling back"), "{}", out.stderr);

    // Both down: the error names both.
    let out = check_env(down, &hub);
    let err = out.expect_failure().to_string();
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(err.contains("mirror"), "{err}");

    // Mirrors are for Docker Hub only: a repository elsewhere goes to its registry.
    let elsewhere = json!({ "repository": format!("{}/library/busybox", upstream.host()),
        "tag": "1.36", "registry_mirror": "http://127.0.0.1:9" });
    let out = check_env(elsewhere, &hub);
    assert_eq!(digest_of(&out), digest);
    assert!(!out.stderr.contains("falling back"), "{}", out.stderr);
}

#[test]
fn connection_refused_names_host_and_port() {
    let source = json!({ "repository": "127.0.0.1:9/nothing/here" });
    let err = check(&source).expect_failure().to_string();
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(err.contains("connection refused"), "{err}");
}

#[test]
fn unresolvable_host_is_named() {
    let source = json!({ "repository": "no-such-host.invalid:5000/x" });
    let err = check(&source).expect_failure().to_string();
    assert!(err.contains("no-such-host.invalid:5000"), "{err}");
}

#[test]
fn request_errors_say_what_and_where() {
    let out = run_raw("check", &[], b"{\"source\": {\"repository\": ");
    let err = out.expect_failure();
    assert!(err.contains("line 1"), "{err}");

    let out = run_raw("check", &[], b"");
    assert!(out.expect_failure().contains("stdin"), "{}", out.stderr);

    let typo = json!({ "source": { "repositry": "127.0.0.1:9/x" } });
    let err = run("check", &[], &typo).expect_failure().to_string();
    assert!(
        err.contains("`repositry`") && err.contains("did you mean `repository`"),
        "{err}"
    );

    let unsupported = json!({ "source": { "repository": "127.0.0.1:9/x", "content_trust": {} },
        "params": { "image": "x" } });
    let err = run("out", &["/tmp"], &unsupported)
        .expect_failure()
        .to_string();
    assert!(err.contains("not supported yet: content_trust"), "{err}");

    let upper = json!({ "source": { "repository": "127.0.0.1:9/Upper" } });
    let err = run("check", &[], &upper).expect_failure().to_string();
    assert!(err.contains("Upper"), "{err}");

    // A password in a request that fails to parse is not echoed.
    let leaky = r#"{"source": {"repository": "r/x", "password": "hunter22", "insecure": "yes"}}"#;
    let out = run_raw("check", &[], leaky.as_bytes());
    out.expect_failure();
    assert_no_secret(&out, &["hunter22"]);
}
