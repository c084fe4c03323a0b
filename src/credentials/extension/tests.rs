//! Unit tests of the request (body, headers, signature), the answer and address matching.

use super::*;
use serde_json::{json, Value};

fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    }
}

const CONCOURSE: &[(&str, &str)] = &[
    ("BUILD_ID", "4242"),
    ("BUILD_NAME", "17"),
    ("BUILD_JOB_NAME", "unit"),
    ("BUILD_PIPELINE_NAME", "app"),
    ("BUILD_TEAM_NAME", "main"),
    ("ATC_EXTERNAL_URL", "https://ci.example.com/"),
];

#[test]
fn body_maps_concourse_metadata_onto_drone_types() {
    let body =
        serde_json::to_value(request_body("reg.local:5000/team/app", &env_of(CONCOURSE))).unwrap();
    let repo = &body["repo"];
    assert_eq!(repo["namespace"], "main");
    assert_eq!(repo["name"], "app");
    assert_eq!(repo["slug"], "main/app");
    assert_eq!(
        repo["link"],
        "https://ci.example.com/teams/main/pipelines/app"
    );
    let build = &body["build"];
    assert_eq!(build["id"], 4242);
    assert_eq!(build["number"], 17);
    assert_eq!(
        build["link"],
        "https://ci.example.com/teams/main/pipelines/app/jobs/unit/builds/17"
    );
    assert_eq!(
        build["params"],
        json!({
            "ATC_EXTERNAL_URL": "https://ci.example.com/",
            "BUILD_ID": "4242",
            "BUILD_JOB_NAME": "unit",
            "BUILD_NAME": "17",
            "BUILD_PIPELINE_NAME": "app",
            "BUILD_TEAM_NAME": "main",
            "IMAGE_REPOSITORY": "reg.local:5000/team/app",
        })
    );
}

#[test]
fn body_has_every_field_of_drones_repo_and_build() {
    // The JSON names of drone-go's `drone.Repo` and `drone.Build` (drone/types.go) that
    // Drone's server always sends (no `omitempty`), less `repo.build`.
    let repo_fields = [
        "id",
        "uid",
        "user_id",
        "namespace",
        "name",
        "slug",
        "scm",
        "git_http_url",
        "git_ssh_url",
        "link",
        "default_branch",
        "private",
        "visibility",
        "active",
        "config_path",
        "trusted",
        "protected",
        "ignore_forks",
        "ignore_pull_requests",
        "auto_cancel_pull_requests",
        "auto_cancel_pushes",
        "auto_cancel_running",
        "throttle",
        "timeout",
        "counter",
        "synced",
        "created",
        "updated",
        "version",
    ];
    let build_fields = [
        "id",
        "repo_id",
        "trigger",
        "number",
        "status",
        "event",
        "action",
        "link",
        "timestamp",
        "message",
        "before",
        "after",
        "ref",
        "source_repo",
        "source",
        "target",
        "author_login",
        "author_name",
        "author_email",
        "author_avatar",
        "sender",
        "params",
        "debug",
        "started",
        "finished",
        "created",
        "updated",
        "version",
    ];
    let body = serde_json::to_value(request_body("x", &|_: &str| None)).unwrap();
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let sorted = |f: &[&str]| -> Vec<String> {
        let mut k: Vec<String> = f.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    };
    assert_eq!(keys(&body), vec!["build", "repo"]);
    assert_eq!(keys(&body["repo"]), sorted(&repo_fields));
    assert_eq!(keys(&body["build"]), sorted(&build_fields));
    // Without metadata (check): empty names and links, zero numbers, only the repository.
    assert_eq!(body["repo"]["slug"], "");
    assert_eq!(body["repo"]["link"], "");
    assert_eq!(body["build"]["id"], 0);
    assert_eq!(body["build"]["link"], "");
    assert_eq!(body["build"]["params"], json!({"IMAGE_REPOSITORY": "x"}));
}

#[test]
fn a_build_name_that_is_no_number_stays_in_params() {
    let body = serde_json::to_value(request_body(
        "x",
        &env_of(&[("BUILD_NAME", "12.1"), ("BUILD_ID", "abc")]),
    ))
    .unwrap();
    assert_eq!(body["build"]["number"], 0);
    assert_eq!(body["build"]["id"], 0);
    assert_eq!(body["build"]["params"]["BUILD_NAME"], "12.1");
}

fn extension(endpoint: &str, token: &str) -> Extension {
    let source: Source = serde_json::from_value(json!({
        "repository": "reg.local/app",
        "registry_extension": {"endpoint": endpoint, "token": token},
    }))
    .unwrap();
    Extension::from_source(&source, &Default::default())
        .unwrap()
        .unwrap()
}

#[test]
fn request_carries_drones_headers_and_a_valid_signature() {
    let ext = extension("https://ext.local:8443/creds", "s3cret");
    let date = "Thu, 05 Jan 2012 21:31:40 GMT";
    let request = ext.signed_request(&reqwest::Client::new(), date).unwrap();
    assert_eq!(request.method(), reqwest::Method::POST);
    assert_eq!(request.url().as_str(), "https://ext.local:8443/creds");
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(header("accept"), "application/vnd.drone.registry.v1+json");
    assert_eq!(header("accept-encoding"), "identity");
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("date"), date);
    let body = request.body().unwrap().as_bytes().unwrap().to_vec();
    assert_eq!(body, ext.body);
    // Digest: SHA-256 of exactly the bytes sent, base64.
    let sha = <sha2::Sha256 as sha2::Digest>::digest(&body);
    use base64::Engine;
    let expected_digest = format!(
        "SHA-256={}",
        base64::engine::general_purpose::STANDARD.encode(sha)
    );
    assert_eq!(header("digest"), expected_digest);
    // The signature, recomputed the way httpsignatures-go verifies it, with ring's HMAC.
    let signing_string = format!(
        "accept: application/vnd.drone.registry.v1+json\naccept-encoding: identity\n\
         content-type: application/json\ndate: {date}\ndigest: {expected_digest}"
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret");
    let mac = base64::engine::general_purpose::STANDARD
        .encode(ring::hmac::sign(&key, signing_string.as_bytes()).as_ref());
    assert_eq!(
        header("signature"),
        format!(
            r#"keyId="hmac-key",algorithm="hmac-sha256",signature="{mac}",headers="accept accept-encoding content-type date digest""#
        )
    );
    assert!(!format!("{ext:?}").contains("s3cret"));
}

#[test]
fn endpoint_and_token_are_checked() {
    let source = |endpoint: &str, token: &str| -> Source {
        serde_json::from_value(json!({
            "repository": "x",
            "registry_extension": {"endpoint": endpoint, "token": token},
        }))
        .unwrap()
    };
    for bad in ["not a url", "ftp://ext.local/", "ext.local:3000"] {
        let err = format!(
            "{:#}",
            Extension::from_source(&source(bad, "t"), &Default::default()).unwrap_err()
        );
        assert!(
            err.contains("source.registry_extension.endpoint"),
            "{bad}: {err}"
        );
    }
    let err = format!(
        "{:#}",
        Extension::from_source(&source("http://ext.local:3000", ""), &Default::default())
            .unwrap_err()
    );
    assert!(err.contains("source.registry_extension.token"), "{err}");
    let url = parse_endpoint("https://[::1]:8443/x").unwrap();
    assert_eq!(endpoint_host(&url), "[::1]:8443");
    assert_eq!(
        endpoint_host(&parse_endpoint("https://Ext.Local/").unwrap()),
        "ext.local"
    );
}

#[test]
fn addresses_match_registry_hosts() {
    // (address in the answer, registry API host looked up, match?)
    let table: &[(&str, &str, bool)] = &[
        ("reg.local", "reg.local", true),
        ("REG.local", "reg.local", true),
        ("reg.local:5000", "reg.local:5000", true),
        ("reg.local", "reg.local:5000", false),
        ("reg.local:5000", "reg.local", false),
        ("reg.local:5001", "reg.local:5000", false),
        ("reg.local:443", "reg.local", true),
        ("reg.local", "reg.local:443", true),
        ("https://reg.local", "reg.local", true),
        ("https://reg.local/", "reg.local", true),
        ("http://reg.local:5000/v2/", "reg.local:5000", true),
        ("https://reg.local:5000", "reg.local", false),
        ("other.local", "reg.local", false),
        ("reg.local.evil", "reg.local", false),
        ("docker.io", "registry-1.docker.io", true),
        ("index.docker.io", "registry-1.docker.io", true),
        ("https://index.docker.io/v1/", "registry-1.docker.io", true),
        ("registry-1.docker.io", "registry-1.docker.io", true),
        ("docker.io", "quay.io", false),
        ("", "reg.local", false),
        ("https://", "reg.local", false),
        ("127.0.0.1:5000", "127.0.0.1:5000", true),
        ("[::1]:5000", "[::1]:5000", true),
    ];
    for (address, host, expected) in table {
        let wanted = canonical_host(host, None);
        assert_eq!(
            address_matches(address, &wanted, None),
            *expected,
            "address {address:?} for host {host:?}"
        );
    }
    // A stand-in for Docker Hub's API host counts as Docker Hub.
    let wanted = canonical_host("127.0.0.1:5999", Some("127.0.0.1:5999"));
    assert!(address_matches(
        "docker.io",
        &wanted,
        Some("127.0.0.1:5999")
    ));
    assert!(address_matches(
        "127.0.0.1:5999",
        &wanted,
        Some("127.0.0.1:5999")
    ));
}

fn answered(status: u16, body: &str) -> Result<Vec<Entry>, String> {
    interpret(status, None, body.as_bytes())
}

#[test]
fn answers_give_entries_or_none() {
    let entries = answered(
        200,
        r#"[{"address": "a.local", "username": "u", "password": "p", "email": "", "token": ""},
            {"address": "b.local"}]"#,
    )
    .unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].address.as_deref(), Some("a.local"));
    assert_eq!(entries[0].password.as_ref().map(Secret::expose), Some("p"));
    assert!(entries[1].password.is_none());
    assert!(answered(204, "").unwrap().is_empty());
    assert!(answered(200, "null").unwrap().is_empty());
    assert!(answered(200, "[]").unwrap().is_empty());
}

#[test]
fn bad_answers_are_clear_errors() {
    let long = "x".repeat(500);
    let err = answered(500, &format!("boom\n{long}")).unwrap_err();
    assert!(err.starts_with("answered HTTP 500: boom x"), "{err}");
    assert!(err.len() < 300, "{err}");
    let err = answered(401, "Invalid Signature\n").unwrap_err();
    assert!(
        err.contains("HTTP 401: Invalid Signature") && err.contains("registry_extension.token"),
        "{err}"
    );
    assert!(answered(404, "")
        .unwrap_err()
        .contains("HTTP 404 with an empty body"));
    let err = answered(200, "<html>hello</html>").unwrap_err();
    assert!(err.contains("is not JSON"), "{err}");
    let err = answered(200, "").unwrap_err();
    assert!(err.contains("204"), "{err}");
    // A body of the wrong shape: the message never quotes it (it may hold passwords).
    let err = answered(200, r#"{"address": "a", "password": "hunter2"}"#).unwrap_err();
    assert!(err.contains("not a list"), "{err}");
    let err = answered(200, r#"[{"address": "a", "password": 12345678}]"#).unwrap_err();
    assert!(!err.contains("12345678"), "{err}");
    let err = interpret(200, Some("aesgcm"), b"...").unwrap_err();
    assert!(err.contains("aesgcm"), "{err}");
}

#[tokio::test]
async fn lookup_takes_the_first_matching_entry_from_one_answer() {
    let ext = extension("https://ext.local/", "t");
    let entries = answered(
        200,
        r#"[{"address": "other.local", "username": "o", "password": "o"},
            {"address": "https://reg.local", "username": "first", "password": "p1"},
            {"address": "reg.local", "username": "second", "password": "p2"},
            {"address": "anon.local"}]"#,
    )
    .unwrap();
    ext.answer.set(entries).unwrap();
    let found = ext.lookup("reg.local").await.unwrap().unwrap();
    match &found.credentials {
        Credentials::Basic { username, password } => {
            assert_eq!(username, "first");
            assert_eq!(password.expose(), "p1");
        }
        other => panic!("expected basic credentials, got {other:?}"),
    }
    assert!(
        found.from.contains("registry_extension https://ext.local/"),
        "{}",
        found.from
    );
    assert!(!found.from.contains("p1"));
    assert!(ext.lookup("nowhere.local").await.unwrap().is_none());
    assert!(ext.lookup("anon.local").await.unwrap().is_none());
}
