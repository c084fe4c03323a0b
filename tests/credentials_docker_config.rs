//! `docker_config` (issue 11) against real registries: every `auths` form (`auth`,
//! `username`/`password`, `identitytoken` exchanged at the test token server, `registrytoken`
//! sent as it is), every key shape and Docker Hub's names, credential helpers speaking the
//! protocol from a script put first on PATH (found, "credentials not found", missing,
//! failing), Google's `_json_key` with a real multi-line service-account key, precedence
//! over nothing and under explicit `username`/`password`, and a build whose base is
//! reachable only with `docker_config` credentials. No secret reaches stdout or stderr,
//! with or without `debug: true`.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::build::{file_in, put_build};
use crate::put::{work_dir, write_file};
use crate::util::base_image::push_busybox;
use crate::util::*;

const USER: &str = "dc-user";
const PASSWORD: &str = "dcPa55wordX9";
const REFRESH: &str = "refresh-tok-Q7";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Runs `check` for `source` with `env`, once plain and once with `debug: true`; asserts
/// neither run shows a secret and both end the same way; returns the debug run.
fn check_both(source: &Value, env: &[(&str, &str)], secrets: &[&str]) -> Output {
    let mut last = None;
    for debug in [false, true] {
        let mut source = source.clone();
        source["debug"] = json!(debug);
        let request = json!({ "source": source }).to_string();
        let out = run_with_env("check", &[], env, request.as_bytes());
        assert_no_secret(&out, secrets);
        if let Some(previous) = &last {
            let previous: &Output = previous;
            assert_eq!(previous.success(), out.success(), "{}", out.stderr);
        }
        last = Some(out);
    }
    last.unwrap_or_else(|| unreachable!())
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

fn digest_of(out: &Output) -> String {
    let value = out.expect_success();
    value[0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest in {value}"))
        .to_string()
}

fn push_random(registry: &Registry, reference: &str) -> String {
    push(registry, &random_image(1, 512), reference);
    skopeo_raw_digest(registry, reference)
}

fn with_config(registry: &Registry, repository: &str, config: Value) -> Value {
    json!({ "repository": format!("{}/{repository}", registry.host()), "tag": "latest",
        "docker_config": config })
}

#[test]
fn auths_auth_and_username_password_in_every_key_shape() {
    let registry = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    let digest = push_random(&registry, "dc/app:latest");
    let host = registry.host();
    let auth = b64(&format!("{USER}:{PASSWORD}"));
    let secrets = [PASSWORD, auth.as_str()];

    // Without credentials the registry refuses: the entries below are what opens it.
    let out = check_both(
        &json!({"repository": format!("{host}/dc/app")}),
        &[],
        &secrets,
    );
    assert!(
        out.expect_failure().contains("no credentials were given"),
        "{}",
        out.stderr
    );

    let shapes = [
        host.clone(),
        format!("http://{host}"),
        format!("https://{host}/v2/"),
        format!("https://{host}/v1/"),
    ];
    for key in &shapes {
        for entry in [
            json!({"auth": auth}),
            json!({"username": USER, "password": PASSWORD}),
        ] {
            let config = json!({"auths": {key.as_str(): entry}});
            // As an object and as a JSON string.
            for config in [config.clone(), json!(config.to_string())] {
                let out = check_both(&with_config(&registry, "dc/app", config), &[], &secrets);
                assert_eq!(digest_of(&out), digest, "key {key}");
                let line = format!("credentials for {host}: from docker_config (auths key {key:?}");
                assert!(out.stderr.contains(&line), "{line}\n{}", out.stderr);
            }
        }
    }

    // Two keys match: the exact one wins whatever the order, and stderr says so.
    let wrong = json!({"username": USER, "password": "wrong-Pw-1"});
    let config = json!({"auths": {
        format!("https://{host}/v2/"): wrong,
        host.clone(): {"auth": auth},
        format!("http://{host}"): wrong,
    }});
    let out = check_both(
        &with_config(&registry, "dc/app", config),
        &[],
        &[PASSWORD, &auth, "wrong-Pw-1"],
    );
    assert_eq!(digest_of(&out), digest);
    assert!(
        out.stderr.contains(&format!("using {host:?}")),
        "{}",
        out.stderr
    );
    // Among URL keys: sort order (http:// before https://), every time.
    let config = json!({"auths": {
        format!("https://{host}/v2/"): wrong,
        format!("http://{host}"): {"auth": auth},
    }});
    for _ in 0..3 {
        let out = check_both(
            &with_config(&registry, "dc/app", config.clone()),
            &[],
            &secrets,
        );
        assert_eq!(digest_of(&out), digest);
    }

    // A wrong password is refused, and explicit username/password win over docker_config.
    let refused = with_config(&registry, "dc/app", json!({"auths": {host.clone(): wrong}}));
    let out = check_both(&refused, &[], &["wrong-Pw-1"]);
    assert!(
        out.expect_failure().contains("refused the credentials"),
        "{}",
        out.stderr
    );
    let mut explicit = refused.clone();
    explicit["username"] = json!(USER);
    explicit["password"] = json!(PASSWORD);
    let out = check_both(&explicit, &[], &[PASSWORD, "wrong-Pw-1"]);
    assert_eq!(digest_of(&out), digest);
    assert!(
        out.stderr
            .contains("from source.username and source.password"),
        "{}",
        out.stderr
    );

    // A malformed entry is named, its value is not.
    let bad = with_config(
        &registry,
        "dc/app",
        json!({"auths": {host.clone(): {"auth": "%%-SECRET-%%"}}}),
    );
    let out = check_both(&bad, &[], &["SECRET"]);
    let err = out.expect_failure();
    assert!(
        err.contains(&format!("docker_config.auths[{host:?}]: auth")),
        "{err}"
    );
    // An identity token is no use against a Basic challenge: said, not sent.
    let token = with_config(
        &registry,
        "dc/app",
        json!({"auths": {host.clone(): {"identitytoken": REFRESH}}}),
    );
    let out = check_both(&token, &[], &[REFRESH]);
    let err = out.expect_failure();
    assert!(
        err.contains("Basic") && err.contains("identity token") && err.contains(&host),
        "{err}"
    );
}

#[test]
fn docker_hub_entries_find_the_docker_hub_host() {
    let registry = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    let digest = push_random(&registry, "dc/hub:latest");
    let hub = [("IMAGE_RESOURCE_DOCKER_HUB_HOST", registry.host())];
    let env = [(hub[0].0, hub[0].1.as_str())];
    for key in [
        "https://index.docker.io/v1/",
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
    ] {
        let source = json!({"repository": "dc/hub", "tag": "latest", "docker_config":
            {"auths": {key: {"username": USER, "password": PASSWORD}}}});
        let out = check_both(&source, &env, &[PASSWORD]);
        assert_eq!(digest_of(&out), digest, "key {key}");
    }
}

/// A token-auth registry whose user also has the refresh token [`REFRESH`].
fn token_registry() -> (TokenServer, Registry) {
    let server = TokenServer::start(
        TokenConfig::new()
            .user(USER, PASSWORD)
            .refresh_token(REFRESH),
    );
    let registry = Registry::start(RegistryConfig::new().token(&server));
    (server, registry)
}

#[test]
fn identitytoken_is_exchanged_and_registrytoken_is_sent_as_it_is() {
    let (server, registry) = token_registry();
    let digest = push_random(&registry, "dc/tok:latest");
    let host = registry.host();

    server.clear_requests();
    let config = json!({"auths": {host.clone(): {"identitytoken": REFRESH}}});
    let out = check_both(&with_config(&registry, "dc/tok", config), &[], &[REFRESH]);
    assert_eq!(digest_of(&out), digest);
    assert!(out.stderr.contains("identity token"), "{}", out.stderr);
    let requests = server.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(
            (request.method.as_str(), request.status),
            ("POST", 200),
            "{requests:?}"
        );
        assert_eq!(request.scopes, ["repository:dc/tok:pull"], "{requests:?}");
        assert_eq!(
            request.service.as_deref(),
            Some(server.service()),
            "{requests:?}"
        );
    }
    // A wrong refresh token is refused by the token server.
    let config = json!({"auths": {host.clone(): {"identitytoken": "not-the-token-3"}}});
    let out = check_both(
        &with_config(&registry, "dc/tok", config),
        &[],
        &["not-the-token-3"],
    );
    let err = out.expect_failure();
    assert!(
        err.contains("refused the credentials") && err.contains(&host),
        "{err}"
    );

    // A registry token: no exchange at all.
    let token = fetch_token(&server, "repository:dc/tok:pull");
    server.clear_requests();
    let config = json!({"auths": {host.clone(): {"registrytoken": token}}});
    let out = check_both(&with_config(&registry, "dc/tok", config), &[], &[&token]);
    assert_eq!(digest_of(&out), digest);
    assert!(out.stderr.contains("registry token"), "{}", out.stderr);
    assert_eq!(
        server.requests(),
        [],
        "a registry token must not be exchanged"
    );
}

/// A token from `server` for `scope`, fetched with the user's password.
fn fetch_token(server: &TokenServer, scope: &str) -> String {
    let url = format!(
        "{}?service={}&scope={scope}",
        server.realm(),
        server.service()
    );
    let body: Value = registry::block_on(async {
        reqwest::Client::new()
            .get(&url)
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token JSON")
    });
    body["token"].as_str().expect("a token").to_string()
}

/// A directory holding `docker-credential-NAME`: a script speaking the helper protocol that
/// records each server URL it is asked for in `<dir>/asked` and answers from `answers`
/// (server URL → `Username Secret`), else "credentials not found".
struct Helpers {
    dir: tempfile::TempDir,
}

impl Helpers {
    fn new() -> Helpers {
        Helpers {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn add(&self, name: &str, answers: &[(&str, &str, &str)]) {
        let mut cases = String::new();
        for (url, user, secret) in answers {
            cases.push_str(&format!(
                "  '{url}') printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$url\" ;;\n"
            ));
        }
        self.script(
            name,
            &format!(
                "[ \"$1\" = get ] || exit 9\nread -r url || true\necho \"$url\" >> \"$(dirname \"$0\")/asked\"\n\
                 case \"$url\" in\n{cases}  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n"
            ),
        );
    }

    fn script(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.path().join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("writing the helper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn asked(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("asked"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

#[test]
fn credential_helpers_from_path() {
    let registry = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    let digest = push_random(&registry, "dc/helped:latest");
    let (server, tokened) = token_registry();
    let token_digest = push_random(&tokened, "dc/helped:latest");
    let host = registry.host();
    let helpers = Helpers::new();
    helpers.add(
        "pass",
        &[
            (&host, USER, PASSWORD),
            (&tokened.host(), "<token>", REFRESH),
        ],
    );
    helpers.script("broken", "echo 'vault is sealed (code 7)' >&2\nexit 3\n");
    let path = helpers.path();
    let env = [("PATH", path.as_str())];
    let secrets = [PASSWORD, REFRESH];

    // credHelpers for the host, and credsStore for every registry.
    for config in [
        json!({"credHelpers": {host.clone(): "pass"}}),
        json!({"credsStore": "pass"}),
    ] {
        let out = check_both(&with_config(&registry, "dc/helped", config), &env, &secrets);
        assert_eq!(digest_of(&out), digest);
        assert!(
            out.stderr.contains("docker-credential-pass"),
            "{}",
            out.stderr
        );
    }
    assert!(
        helpers.asked().iter().all(|url| *url == host),
        "{:?}",
        helpers.asked()
    );
    // `<token>` as user name: the secret is an identity token.
    server.clear_requests();
    let config = json!({"credHelpers": {tokened.host(): "pass"}});
    let out = check_both(&with_config(&tokened, "dc/helped", config), &env, &secrets);
    assert_eq!(digest_of(&out), token_digest);
    assert!(server
        .requests()
        .iter()
        .all(|r| r.method == "POST" && r.status == 200));

    // credHelpers wins over auths for its host.
    let config = json!({"credHelpers": {host.clone(): "pass"},
        "auths": {host.clone(): {"username": USER, "password": "wrong-Pw-2"}}});
    let out = check_both(
        &with_config(&registry, "dc/helped", config),
        &env,
        &[PASSWORD, "wrong-Pw-2"],
    );
    assert_eq!(digest_of(&out), digest);

    // "credentials not found": anonymous, so this registry refuses.
    let elsewhere = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    push_random(&elsewhere, "dc/helped:latest");
    let out = check_both(
        &with_config(&elsewhere, "dc/helped", json!({"credsStore": "pass"})),
        &env,
        &secrets,
    );
    assert!(
        out.expect_failure().contains("no credentials were given"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("credentials for {}: none", elsewhere.host())),
        "{}",
        out.stderr
    );

    // A missing helper and a failing one are errors that name them.
    let out = check_both(
        &with_config(&registry, "dc/helped", json!({"credsStore": "absent"})),
        &env,
        &secrets,
    );
    let err = out.expect_failure();
    assert!(
        err.contains("docker-credential-absent") && err.contains("not installed"),
        "{err}"
    );
    let config = json!({"credHelpers": {host.clone(): "broken"}});
    let out = check_both(&with_config(&registry, "dc/helped", config), &env, &secrets);
    let err = out.expect_failure();
    assert!(
        err.contains("docker-credential-broken") && err.contains("vault is sealed (code 7)"),
        "{err}"
    );
    assert!(err.contains("credHelpers"), "{err}");
}

/// A Google service-account key file as `gcloud iam service-accounts keys create` writes
/// it, around a freshly generated RSA key: multi-line JSON with `\n` escapes in the key.
fn service_account_key() -> (String, String) {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("running openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = String::from_utf8(out.stdout).expect("PEM text");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let key = json!({
        "type": "service_account",
        "project_id": "image-resource-ci",
        "private_key_id": "5f1c0ffee0ddba11",
        "private_key": pem,
        "client_email": "ci@image-resource-ci.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let text = serde_json::to_string_pretty(&key).expect("JSON");
    assert!(text.contains('\n') && text.contains("\\n") && text.contains('"'));
    // A line of the key's body, to look for in the output.
    let body_line = pem.lines().nth(5).expect("a PEM body line").to_string();
    (text, body_line)
}

#[test]
fn json_key_multi_line_in_username_password_and_in_auth() {
    let (key, key_line) = service_account_key();
    let server = TokenServer::start(TokenConfig::new().user("_json_key", &key));
    let registry = Registry::start(RegistryConfig::new().token(&server));
    let digest = push_random(&registry, "dc/gcr:latest");
    let auth = b64(&format!("_json_key:{key}"));
    let secrets = [key_line.as_str(), auth.as_str(), "5f1c0ffee0ddba11"];

    let explicit = json!({"repository": format!("{}/dc/gcr", registry.host()), "tag": "latest",
        "username": "_json_key", "password": key});
    assert_eq!(digest_of(&check_both(&explicit, &[], &secrets)), digest);
    let config = json!({"auths": {registry.host(): {"auth": auth}}});
    for config in [config.clone(), json!(config.to_string())] {
        let out = check_both(&with_config(&registry, "dc/gcr", config), &[], &secrets);
        assert_eq!(digest_of(&out), digest);
    }
    // One character off and the token server refuses it: the key went through whole.
    let truncated = &key[..key.len() - 2];
    let config =
        json!({"auths": {registry.host(): {"auth": b64(&format!("_json_key:{truncated}}}"))}}});
    let out = check_both(&with_config(&registry, "dc/gcr", config), &[], &secrets);
    assert!(
        out.expect_failure().contains("refused the credentials"),
        "{}",
        out.stderr
    );
}

fn build_dir(base: &str) -> tempfile::TempDir {
    let work = work_dir();
    write_file(
        work.path(),
        "src/Dockerfile",
        format!("FROM {base}\nRUN echo from-private-base > /private\n"),
    );
    work
}

#[test]
fn build_base_reachable_only_with_docker_config_credentials() {
    let private = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    let base = push_busybox(&private);
    let (key, key_line) = service_account_key();
    let server = TokenServer::start(
        TokenConfig::new()
            .user("_json_key", &key)
            .refresh_token(REFRESH),
    );
    let tokened = Registry::start(RegistryConfig::new().token(&server));
    let token_base = push_busybox(&tokened);
    let target = Registry::start(RegistryConfig::new());
    let params = json!({"build": "src"});
    let auth = b64(&format!("{USER}:{PASSWORD}"));
    let json_auth = b64(&format!("_json_key:{key}"));
    let secrets = [
        PASSWORD,
        auth.as_str(),
        REFRESH,
        key_line.as_str(),
        json_auth.as_str(),
    ];
    let source = |repository: &str, config: Value, debug: bool| {
        json!({"repository": format!("{}/{repository}", target.host()), "debug": debug,
            "docker_config": config})
    };
    let check_built = |out: &Output, repository: &str| {
        assert_no_secret(out, &secrets);
        out.expect_success();
        assert_eq!(
            file_in(&target, &format!("{repository}:latest"), &["private"]),
            [Some("from-private-base\n".to_string())],
            "{}",
            out.stderr
        );
    };

    // Basic credentials for the base's registry, from an `auths` URL key (with debug).
    let work = build_dir(&base);
    let config = json!({"auths": {format!("https://{}/v1/", private.host()): {"auth": auth}}});
    let out = put_build(
        work.path(),
        &source("built/basic", config, true),
        params.clone(),
        &[],
    );
    check_built(&out, "built/basic");
    assert!(
        out.stderr.contains(&format!(
            "credentials for {}: from docker_config",
            private.host()
        )),
        "{}",
        out.stderr
    );

    // Without them the base cannot be pulled.
    let out = put_build(
        work.path(),
        &source("built/denied", json!({"auths": {}}), false),
        params.clone(),
        &[],
    );
    assert_no_secret(&out, &secrets);
    let stderr = out.expect_failure();
    assert!(
        stderr.contains("unauthorized") || stderr.contains("authentication required"),
        "{stderr}"
    );

    // An identity token (exchanged by buildah at the token server), and `_json_key`.
    let work = build_dir(&token_base);
    let tokened_key = tokened.host();
    for (repository, entry, method, user) in [
        (
            "built/identity",
            json!({"identitytoken": REFRESH}),
            "POST",
            None,
        ),
        (
            "built/json-key",
            json!({"auth": json_auth}),
            "GET",
            Some("_json_key"),
        ),
    ] {
        server.clear_requests();
        let config = json!({"auths": {tokened_key.as_str(): entry}});
        let out = put_build(
            work.path(),
            &source(repository, config, false),
            params.clone(),
            &[],
        );
        check_built(&out, repository);
        // buildah got its pull token with these credentials.
        let requests = server.requests();
        assert!(
            requests.iter().any(|r| r.method == method
                && r.status == 200
                && r.user.as_deref() == user
                && r.scopes == ["repository:base/busybox:pull"]),
            "{requests:?}"
        );
    }
}
