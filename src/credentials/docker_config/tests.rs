use super::*;
use crate::credentials::Keychain;
use crate::resource::{parse_request, CheckRequest};
use serde_json::json;

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn config(value: Value) -> Result<DockerConfig, String> {
    match value {
        Value::Object(object) => DockerConfig::parse(&object).map_err(|e| format!("{e:#}")),
        other => Err(format!("not an object: {other}")),
    }
}

fn source(value: Value) -> Source {
    let request = json!({ "source": value }).to_string();
    match parse_request::<CheckRequest>(request.as_bytes()) {
        Ok(request) => request.source,
        Err(e) => panic!("{e:#}"),
    }
}

fn lookup(config: &DockerConfig, host: &str) -> Option<Found> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime
        .block_on(config.lookup(host))
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn basic(user: &str, password: &str) -> Credentials {
    Credentials::basic(user, Secret::new(password))
}

/// A Google service-account key as `gcloud` writes it: multi-line, quotes, and `\n`
/// escapes inside the private key.
const JSON_KEY: &str = r#"{
  "type": "service_account",
  "project_id": "p-1",
  "private_key_id": "0123abcd",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC:k/ey+==\n-----END PRIVATE KEY-----\n",
  "client_email": "ci@p-1.iam.gserviceaccount.com"
}"#;

#[test]
fn auths_forms() {
    let parsed = config(json!({"auths": {
        "a.example": {"auth": b64("user:pa:ss:word")},
        "b.example": {"username": "bob", "password": "pw"},
        "c.example": {"identitytoken": "refresh-1", "auth": b64("x:y")},
        "d.example": {"registrytoken": "bearer-1", "identitytoken": "ignored"},
        "e.example": {},
        "f.example": {"auth": "", "email": "x@y"},
        "gcr.io": {"auth": b64(&format!("_json_key:{JSON_KEY}"))},
    }}));
    let parsed = parsed.unwrap_or_else(|e| panic!("{e}"));
    let table: &[(&str, Option<Credentials>)] = &[
        ("a.example", Some(basic("user", "pa:ss:word"))),
        ("b.example", Some(basic("bob", "pw"))),
        (
            "c.example",
            Some(Credentials::IdentityToken(Secret::new("refresh-1"))),
        ),
        (
            "d.example",
            Some(Credentials::RegistryToken(Secret::new("bearer-1"))),
        ),
        ("e.example", None),
        ("f.example", None),
        ("gcr.io", Some(basic("_json_key", JSON_KEY))),
    ];
    for (key, expected) in table {
        assert_eq!(parsed.auths.get(*key), Some(expected), "{key}");
    }
    let shown = format!("{parsed:?}");
    for secret in ["pa:ss:word", "refresh-1", "bearer-1", "BEGIN PRIVATE KEY"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn json_key_round_trips_through_base64() {
    let auth = Secret::new(b64(&format!("_json_key:{JSON_KEY}")));
    let (user, password) = decode_auth(&auth).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!((user.as_str(), password.expose()), ("_json_key", JSON_KEY));
    let parsed: Value = serde_json::from_str(password.expose()).unwrap_or_default();
    assert!(parsed["private_key"]
        .as_str()
        .is_some_and(|k| k.contains("\n") && k.ends_with("-----END PRIVATE KEY-----\n")));
    // Without padding, as some tools write it.
    let unpadded = Secret::new(b64("u:p").trim_end_matches('=').to_string());
    assert_eq!(
        decode_auth(&unpadded).map(|(u, _)| u).ok().as_deref(),
        Some("u")
    );
}

#[test]
fn bad_entries_name_the_key_and_field_and_never_the_value() {
    let table: &[(Value, &str)] = &[
        (
            json!({"auths": {"r.example": {"auth": "!!notbase64-SECRET"}}}),
            r#"docker_config.auths["r.example"]: auth: not base64"#,
        ),
        (
            json!({"auths": {"r.example": {"auth": b64("no-colon-SECRET")}}}),
            "no `:` between",
        ),
        (
            json!({"auths": {"r.example": {"auth": b64(":SECRET")}}}),
            "no user name",
        ),
        (
            json!({"auths": {"r.example": {"username": "u"}}}),
            "password (or auth) is not",
        ),
        (
            json!({"auths": {"r.example": {"password": "SECRET"}}}),
            "username is not",
        ),
        (
            json!({"auths": {"r.example": {"password": 7}}}),
            "wrong type",
        ),
        (
            json!({"auths": {"r.example": "SECRET"}}),
            r#"docker_config.auths["r.example"]: expected an object"#,
        ),
        (
            json!({"auths": ["SECRET"]}),
            "docker_config.auths: expected an object",
        ),
        (
            json!({"credHelpers": {"gcr.io": 1}}),
            r#"docker_config.credHelpers["gcr.io"]"#,
        ),
        (json!({"credsStore": ["x"]}), "docker_config.credsStore"),
    ];
    for (value, expected) in table {
        let err = config(value.clone()).err().unwrap_or_default();
        assert!(err.contains(expected), "{value}: {err}");
        assert!(!err.contains("SECRET"), "{value}: {err}");
    }
    // Unknown top-level keys (psFormat, HttpHeaders...) are Docker's business.
    assert!(config(json!({"psFormat": "x", "auths": {}})).is_ok());
}

#[test]
fn lookup_finds_every_key_shape_and_docker_hub() {
    let parsed = config(json!({"auths": {
        "https://index.docker.io/v1/": {"username": "hub", "password": "1"},
        "127.0.0.1:5000": {"username": "exact", "password": "2"},
        "http://127.0.0.1:5000": {"username": "url", "password": "3"},
        "https://q.example/v2/": {"username": "q", "password": "4"},
        "r.example:443": {"username": "r", "password": "5"},
        "s.example": {},
    }}))
    .unwrap_or_else(|e| panic!("{e}"));
    let user = |host: &str| match lookup(&parsed, host) {
        Some(Found {
            credentials: Credentials::Basic { username, .. },
            ..
        }) => Some(username),
        _ => None,
    };
    assert_eq!(user("registry-1.docker.io").as_deref(), Some("hub"));
    assert_eq!(user("127.0.0.1:5000").as_deref(), Some("exact"));
    assert_eq!(user("q.example").as_deref(), Some("q"));
    assert_eq!(user("r.example").as_deref(), Some("r"));
    assert_eq!(user("s.example"), None);
    assert_eq!(user("127.0.0.1:5001"), None);
    let found = lookup(&parsed, "q.example")
        .map(|f| f.from)
        .unwrap_or_default();
    assert_eq!(
        found,
        r#"docker_config (auths key "https://q.example/v2/", username and password)"#
    );
}

#[tokio::test]
async fn precedence_explicit_then_docker_config_then_anonymous() {
    let config = json!({"auths": {
        "127.0.0.1:5000": {"username": "from-config", "password": "c"},
        "other.example": {"identitytoken": "t"},
    }});
    let keychain = Keychain::from_source(
        &source(
            json!({"repository": "127.0.0.1:5000/app", "username": "explicit",
            "password": "e", "docker_config": config.to_string()}),
        ),
        "127.0.0.1:5000",
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let own = keychain.lookup("127.0.0.1:5000").await.ok().flatten();
    assert_eq!(own.map(|f| f.credentials), Some(basic("explicit", "e")));
    let other = keychain.lookup("other.example").await.ok().flatten();
    let other = other.unwrap_or_else(|| panic!("no credentials for other.example"));
    assert_eq!(
        other.credentials,
        Credentials::IdentityToken(Secret::new("t"))
    );
    assert!(other
        .from
        .starts_with("docker_config (auths key \"other.example\""));
    assert!(keychain
        .lookup("third.example")
        .await
        .ok()
        .flatten()
        .is_none());

    // Without explicit credentials the config's entry is used for the own registry.
    let keychain = Keychain::from_source(
        &source(json!({"repository": "127.0.0.1:5000/app", "docker_config": config})),
        "127.0.0.1:5000",
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let own = keychain.lookup("127.0.0.1:5000").await.ok().flatten();
    assert_eq!(own.map(|f| f.credentials), Some(basic("from-config", "c")));

    // A bad config fails when the source is read, naming the option.
    let bad = Keychain::from_source(
        &source(json!({"repository": "x", "docker_config": {"auths": {"x": {"auth": "%%"}}}})),
        "registry-1.docker.io",
        &Default::default(),
    );
    let err = bad.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(err.contains("docker_config.auths[\"x\"]"), "{err}");
}

/// With `debug`, which source supplied a registry's credentials, and the key-choice note,
/// go to the command's log (not to stderr).
#[tokio::test]
async fn debug_lines_and_key_notes_go_to_the_log() {
    let config = json!({"auths": {
        "127.0.0.1:5000": {"username": "u", "password": "p"},
        "http://127.0.0.1:5000/v1/": {"username": "u1", "password": "p1"},
    }});
    let (log, captured) = crate::log::Captured::log();
    let keychain = Keychain::from_source(
        &source(json!({"repository": "127.0.0.1:5000/app", "debug": true,
            "docker_config": config})),
        "127.0.0.1:5000",
        &log,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(keychain.lookup("127.0.0.1:5000").await.is_ok());
    assert!(keychain.lookup("third.example").await.is_ok());
    let text = captured.text();
    assert!(
        text.contains(
            "credentials for 127.0.0.1:5000: from docker_config (auths key \"127.0.0.1:5000\""
        ),
        "{text}"
    );
    assert!(
        text.contains("credentials for third.example: none (anonymous)\n"),
        "{text}"
    );
    assert!(text.contains("\"http://127.0.0.1:5000/v1/\""), "{text}");
}
