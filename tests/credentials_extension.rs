//! `source.registry_extension` (issue 11): credentials from a Drone registry-extension peer
//! (`util::extension`) that verifies our signature and digest the way Drone's starter project
//! does, for real registries; and each way it goes wrong. No token or password may reach
//! stdout or stderr, with or without `debug: true`.

use serde_json::{json, Value};

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::util::extension::{Answer, ExtensionPeer};
use crate::util::front::{Action, Front};
use crate::util::*;

const USER: &str = "ext-user";
const PASSWORD: &str = "ext-Pa55word-9d1f";
const TOKEN: &str = "shared-Secret-4c7a";

/// Concourse's build metadata, as `in` sees it.
const METADATA: [(&str, &str); 6] = [
    ("BUILD_ID", "4242"),
    ("BUILD_NAME", "17"),
    ("BUILD_JOB_NAME", "unit"),
    ("BUILD_PIPELINE_NAME", "app"),
    ("BUILD_TEAM_NAME", "main"),
    ("ATC_EXTERNAL_URL", "https://ci.example.com"),
];

fn extension_source(repository: &str, endpoint: &str, token: &str) -> Value {
    json!({ "repository": repository,
        "registry_extension": { "endpoint": endpoint, "token": token } })
}

fn with_debug(source: &Value, debug: bool) -> Value {
    let mut source = source.clone();
    source["debug"] = json!(debug);
    source
}

fn run_env(bin: &str, args: &[&str], env: &[(&str, &str)], request: &Value) -> Output {
    run_with_env(bin, args, env, request.to_string().as_bytes())
}

fn check(source: &Value, env: &[(&str, &str)]) -> Output {
    let out = run_env("check", &[], env, &json!({ "source": source }));
    assert_no_secret(&out);
    out
}

fn assert_no_secret(out: &Output) {
    for secret in [TOKEN, PASSWORD, "wrong-Token-77"] {
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

fn credentials_for(host: &str) -> Answer {
    Answer::Json(json!([
        { "address": "other.example.com", "username": "someone", "password": "else" },
        { "address": host, "username": USER, "password": PASSWORD, "email": "" },
    ]))
}

#[test]
fn signed_request_gives_credentials_that_check_and_in_use() {
    let registry = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    push(&registry, &random_image(1, 1024), "ext/app:latest");
    let digest = skopeo_raw_digest(&registry, "ext/app:latest");
    let peer = ExtensionPeer::start(TOKEN, credentials_for(&registry.host()));
    let repository = format!("{}/ext/app", registry.host());
    let source = extension_source(&repository, peer.url(), TOKEN);

    for debug in [false, true] {
        let out = check(&with_debug(&source, debug), &METADATA);
        assert_eq!(digest_of(&out), digest, "debug {debug}");
        if debug {
            assert!(
                out.stderr.contains("from registry_extension"),
                "{}",
                out.stderr
            );
        }
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dest = tmp.path().join("dest");
    let request = json!({ "source": with_debug(&source, true), "version": { "digest": digest },
        "params": { "skip_download": false } });
    let out = run_env("in", &[dest.to_str().expect("UTF-8")], &METADATA, &request);
    assert_no_secret(&out);
    out.expect_success();
    assert_eq!(
        std::fs::read_to_string(dest.join("digest")).expect("digest file"),
        digest
    );
    assert!(dest.join("rootfs").is_dir());

    // One signed request per run, each verified by the peer, with Drone's headers and body.
    let received = peer.received();
    assert_eq!(received.len(), 3, "one request per run");
    for request in &received {
        assert_eq!(request.rejected, None);
        assert_eq!(
            request.header("accept"),
            Some("application/vnd.drone.registry.v1+json")
        );
        assert_eq!(request.header("accept-encoding"), Some("identity"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert!(request.header("signature").is_some_and(|s| s
            .starts_with(r#"keyId="hmac-key",algorithm="hmac-sha256","#)
            && s.ends_with(r#",headers="accept accept-encoding content-type date digest""#)));
        let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
        assert_eq!(body["repo"]["slug"], "main/app");
        assert_eq!(body["build"]["number"], 17);
        assert_eq!(
            body["build"]["link"],
            "https://ci.example.com/teams/main/pipelines/app/jobs/unit/builds/17"
        );
        assert_eq!(body["build"]["params"]["IMAGE_REPOSITORY"], repository);
    }
}

#[test]
fn a_wrong_token_is_refused_and_never_shown() {
    let registry = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    push(&registry, &random_image(1, 512), "ext/app:latest");
    let peer = ExtensionPeer::start(TOKEN, credentials_for(&registry.host()));
    let repository = format!("{}/ext/app", registry.host());
    let source = extension_source(&repository, peer.url(), "wrong-Token-77");
    for debug in [false, true] {
        let out = check(&with_debug(&source, debug), &[]);
        let err = out.expect_failure();
        assert!(
            err.contains("source.registry_extension")
                && err.contains(peer.url())
                && err.contains("HTTP 401")
                && err.contains("Invalid Signature"),
            "{err}"
        );
    }
    let received = peer.received();
    assert_eq!(received.len(), 2);
    assert!(received
        .iter()
        .all(|r| r.rejected.as_deref() == Some("Invalid Signature")));
}

#[test]
fn no_content_or_null_means_anonymous() {
    let open = Registry::start(RegistryConfig::new());
    push(&open, &random_image(1, 512), "ext/open:latest");
    let digest = skopeo_raw_digest(&open, "ext/open:latest");
    let protected = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    push(&protected, &random_image(1, 512), "ext/closed:latest");

    for answer in [
        Answer::NoContent,
        Answer::Json(Value::Null),
        Answer::Json(json!([])),
    ] {
        let peer = ExtensionPeer::start(TOKEN, answer.clone());
        let source = extension_source(&format!("{}/ext/open", open.host()), peer.url(), TOKEN);
        for debug in [false, true] {
            let out = check(&with_debug(&source, debug), &[]);
            assert_eq!(digest_of(&out), digest, "{answer:?}");
        }
        let source = extension_source(
            &format!("{}/ext/closed", protected.host()),
            peer.url(),
            TOKEN,
        );
        let err = check(&source, &[]).expect_failure().to_string();
        assert!(
            err.contains("401") && err.contains(&protected.host()) && err.contains("ext/closed"),
            "{answer:?}: {err}"
        );
        assert!(err.contains("no credentials were given"), "{err}");
        assert!(peer.received().iter().all(|r| r.rejected.is_none()));
    }
}

#[test]
fn an_answer_that_is_not_json_is_a_clear_error() {
    let registry = Registry::start(RegistryConfig::new());
    let peer = ExtensionPeer::start(
        TOKEN,
        Answer::Raw(200, "text/html", "<html>it works</html>".into()),
    );
    let source = extension_source(&format!("{}/ext/app", registry.host()), peer.url(), TOKEN);
    for debug in [false, true] {
        let err = check(&with_debug(&source, debug), &[])
            .expect_failure()
            .to_string();
        assert!(
            err.contains("source.registry_extension")
                && err.contains(peer.url())
                && err.contains("HTTP 200")
                && err.contains("not JSON"),
            "{err}"
        );
    }
    // A server error: status and the start of its body.
    let failing =
        ExtensionPeer::start(TOKEN, Answer::Raw(500, "text/plain", "vault sealed".into()));
    let source = extension_source(
        &format!("{}/ext/app", registry.host()),
        failing.url(),
        TOKEN,
    );
    // Retried like a registry's 5xx (a short budget keeps the test short), then reported.
    let budget = [("IMAGE_RESOURCE_RETRY_BUDGET", "2")];
    let out = check(&source, &budget);
    let err = out.expect_failure().to_string();
    assert!(err.contains("HTTP 500: vault sealed"), "{err}");
    assert!(failing.received().len() > 1, "{}", out.stderr);
}

/// How many requests fail, how, and what the retry note then says.
type Flaky = (usize, fn() -> Action, &'static str);

/// A front before `peer` whose first `failures` requests get `fault`; the rest go through.
fn flaky_front(peer: &ExtensionPeer, failures: usize, fault: fn() -> Action) -> Front {
    let upstream = peer
        .url()
        .trim_start_matches("http://")
        .trim_end_matches("/registry")
        .to_string();
    let count = AtomicUsize::new(0);
    Front::start(upstream, move |_| {
        if count.fetch_add(1, Ordering::SeqCst) < failures {
            fault()
        } else {
            Action::Forward
        }
    })
}

#[test]
fn busy_or_broken_answers_are_retried_and_a_refusal_is_not() {
    let registry = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    push(&registry, &random_image(1, 512), "ext/app:latest");
    let digest = skopeo_raw_digest(&registry, "ext/app:latest");
    let repository = format!("{}/ext/app", registry.host());
    let faults: [Flaky; 2] = [
        (
            2,
            || Action::Respond("503 Service Unavailable".into()),
            "answered HTTP 503",
        ),
        (1, || Action::Reset, ""),
    ];
    for (failures, fault, cause) in faults {
        let peer = ExtensionPeer::start(TOKEN, credentials_for(&registry.host()));
        let front = flaky_front(&peer, failures, fault);
        let endpoint = format!("http://{}/registry", front.host());
        let source = extension_source(&repository, &endpoint, TOKEN);
        let out = check(&source, &[]);
        assert_eq!(digest_of(&out), digest, "{}", out.stderr);
        let note = format!(
            "retrying the registry_extension request to {}",
            front.host()
        );
        assert_eq!(
            out.stderr.matches(&note).count(),
            failures,
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(cause), "{}", out.stderr);
        assert_eq!(front.seen().len(), failures + 1);
        // Each try is signed anew, and every one the peer saw verified.
        assert_eq!(peer.received().len(), 1);
        assert!(peer.received().iter().all(|r| r.rejected.is_none()));
    }

    // A 403 is an answer: one request, the status and body in the error, no retry note.
    let peer = ExtensionPeer::start(
        TOKEN,
        Answer::Raw(403, "text/plain", "not for this pipeline".into()),
    );
    let source = extension_source(&repository, peer.url(), TOKEN);
    let out = check(&source, &[]);
    let err = out.expect_failure().to_string();
    assert!(
        err.contains("source.registry_extension")
            && err.contains("HTTP 403: not for this pipeline"),
        "{err}"
    );
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    assert_eq!(peer.received().len(), 1);
}

#[test]
fn skip_verify_trusts_the_endpoint_only() {
    let ca = Ca::new(); // never given to the resource
    let (cert, key) = ca.server_cert(&["127.0.0.1"]);
    let registry = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    push(&registry, &random_image(1, 512), "ext/app:latest");
    let digest = skopeo_raw_digest(&registry, "ext/app:latest");
    let peer = ExtensionPeer::start_tls(TOKEN, credentials_for(&registry.host()), &cert, &key);
    assert!(peer.url().starts_with("https://"));
    let repository = format!("{}/ext/app", registry.host());

    let verified = extension_source(&repository, peer.url(), TOKEN);
    for debug in [false, true] {
        let err = check(&with_debug(&verified, debug), &[])
            .expect_failure()
            .to_string();
        assert!(
            err.contains("certificate") && err.contains(peer.url()) && err.contains("skip_verify"),
            "{err}"
        );
    }
    assert!(
        peer.received().is_empty(),
        "no request over an unverified connection"
    );

    let mut skipping = verified.clone();
    skipping["registry_extension"]["skip_verify"] = json!(true);
    for debug in [false, true] {
        assert_eq!(
            digest_of(&check(&with_debug(&skipping, debug), &[])),
            digest
        );
    }
    assert_eq!(peer.received().len(), 2);

    // skip_verify is for the endpoint: a registry with a certificate from the same unknown
    // CA is still refused.
    let tls_registry = Registry::start(RegistryConfig::new().tls(&ca));
    push(&tls_registry, &random_image(1, 512), "ext/tls:latest");
    let mut other = skipping.clone();
    other["repository"] = json!(format!("{}/ext/tls", tls_registry.host()));
    let err = check(&other, &[]).expect_failure().to_string();
    assert!(
        err.contains("certificate") && err.contains(&tls_registry.host()),
        "{err}"
    );
}

#[test]
fn one_answer_per_run_serves_every_registry_and_docker_hub_aliases() {
    // A Docker Hub repository (Docker Hub played by a protected local registry) with a mirror
    // that is down: the run looks up the mirror's host and then Docker Hub's, and asks the
    // extension once. Its entry for Docker Hub is written `https://index.docker.io/v1/`.
    let hub = Registry::start(RegistryConfig::new().htpasswd(USER, PASSWORD));
    push(&hub, &random_image(1, 512), "library/busybox:1.36");
    let digest = skopeo_raw_digest(&hub, "library/busybox:1.36");
    let peer = ExtensionPeer::start(
        TOKEN,
        Answer::Json(json!([
            { "address": "https://index.docker.io/v1/", "username": USER, "password": PASSWORD },
        ])),
    );
    let mut source = extension_source("busybox", peer.url(), TOKEN);
    source["tag"] = json!("1.36");
    source["registry_mirror"] = json!("http://127.0.0.1:9");
    let env = [("IMAGE_RESOURCE_DOCKER_HUB_HOST", hub.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = check(&with_debug(&source, true), &env);
    assert_eq!(digest_of(&out), digest);
    assert!(out.stderr.contains("falling back"), "{}", out.stderr);
    assert!(
        out.stderr.contains("credentials for 127.0.0.1:9: none"),
        "{}",
        out.stderr
    );
    assert_eq!(
        peer.received().len(),
        1,
        "the answer is fetched once per run"
    );
}
