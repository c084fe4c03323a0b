use super::*;
use crate::resource::{parse_request, PutRequest};
use serde_json::Value;

fn access(source: &str) -> RegistryAccess {
    let text = format!(r#"{{"source": {source}}}"#);
    let request: PutRequest = match parse_request(text.as_bytes()) {
        Ok(request) => request,
        Err(e) => panic!("{e:#}"),
    };
    let settings = match Settings::from_source(&request.source, &Default::default()) {
        Ok(settings) => settings,
        Err(e) => panic!("{e:#}"),
    };
    let mut access = RegistryAccess::new(&request.source, &settings);
    access.docker_hub_host = None;
    access
}

fn no_dns(_: &str) -> Vec<IpAddr> {
    Vec::new()
}

#[test]
fn auth_file_has_the_source_and_additional_registries() {
    let access = access(
        r#"{"repository": "r.example:5000/app", "username": "u", "password": "p:w",
            "additional_private_registries": [
                {"registry": "https://other.example/v2/", "username": "o", "password": "x"},
                {"registry": "index.docker.io", "username": "h", "password": "y"},
                {"registry": "r.example:5000", "username": "ignored", "password": "z"}]}"#,
    );
    let auth: Value = serde_json::from_str(&access.auth_file()).expect("JSON");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(
        auth,
        serde_json::json!({"auths": {
            "r.example:5000": {"auth": b64("u:p:w")},
            "other.example": {"auth": b64("o:x")},
            "docker.io": {"auth": b64("h:y")},
        }})
    );
    assert!(
        !format!("{access:?}").contains("p:w"),
        "Debug shows a password"
    );

    let mut stand_in = access.clone();
    stand_in.docker_hub_host = Some("127.0.0.1:5001".into());
    let auth: Value = serde_json::from_str(&stand_in.auth_file()).expect("JSON");
    assert_eq!(auth["auths"]["127.0.0.1:5001"]["auth"], b64("h:y"));

    let none = self::access(r#"{"repository": "busybox"}"#);
    assert_eq!(none.auth_file(), r#"{"auths":{}}"#);
}

#[test]
fn registries_conf_marks_insecure_and_loopback_registries() {
    let access = access(
        r#"{"repository": "127.0.0.1:5000/app",
            "insecure_registries": ["plain.example:5000", "10.1.0.0/16"],
            "ca_certs": [{"domain": "127.0.0.1:6000", "cert": "CA"}]}"#,
    );
    let hosts: Vec<String> = [
        "127.0.0.1:5000",
        "127.0.0.1:6000",
        "localhost:7000",
        "10.1.2.3:443",
        "named.example",
        "verified.example:5000",
    ]
    .map(String::from)
    .to_vec();
    let resolve = |host: &str| -> Vec<IpAddr> {
        match host {
            "named.example" => vec!["10.1.9.9".parse().expect("ip")],
            _ => Vec::new(),
        }
    };
    let text = access.registries_conf(&hosts, &resolve);
    let tables = "
[[registry]]
location = \"10.1.2.3:443\"
insecure = true

[[registry]]
location = \"127.0.0.1\"
insecure = true

[[registry]]
location = \"127.0.0.1:5000\"
insecure = true

[[registry]]
location = \"127.0.0.1:6000\"
insecure = false

[[registry]]
location = \"localhost\"
insecure = true

[[registry]]
location = \"localhost:7000\"
insecure = true

[[registry]]
location = \"named.example\"
insecure = true

[[registry]]
location = \"plain.example:5000\"
insecure = true
";
    // The top-level settings are assets/registries.conf, as the image ships it.
    assert_eq!(
        text,
        format!("{}{tables}", crate::builder::assets::REGISTRIES_CONF)
    );
}

#[test]
fn registries_conf_sends_docker_hub_to_its_stand_in() {
    let mut access = access(r#"{"repository": "busybox", "insecure": true}"#);
    access.docker_hub_host = Some("127.0.0.1:5001".into());
    let text = access.registries_conf(&access.known_hosts("FROM busybox\n"), &no_dns);
    assert!(
        text.contains(
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"127.0.0.1:5001\"\ninsecure = true\n"
        ),
        "{text}"
    );
    assert!(!text.contains("location = \"docker.io\""), "{text}");
    let quoted = toml_string("a\"b\\c\n");
    assert_eq!(quoted, "\"a\\\"b\\\\c\\u000a\"");
}

#[test]
fn cert_dirs_per_registry() {
    let access = access(
        r#"{"repository": "reg.example:5000/app",
            "ca_certs": [{"domain": "reg.example", "cert": "CA1"}, "SHARED",
                         {"domain": "reg.example:5000", "cert": "CA2\n"}],
            "client_certs": [{"domain": "mtls.example:443", "cert": "C", "key": "K"}]}"#,
    );
    let dirs = access.cert_dirs(&access.known_hosts("FROM reg.example:6000/base\n"));
    let names: Vec<&str> = dirs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "reg.example:5000",
            "reg.example:6000",
            "reg.example",
            "mtls.example:443"
        ]
    );
    assert_eq!(dirs[0].ca.as_deref(), Some("CA1\nCA2\n"));
    assert_eq!(dirs[1].ca.as_deref(), Some("CA1\n"));
    assert!(dirs[0].client.is_none());
    let (cert, key) = dirs[3].client.clone().expect("client cert");
    assert_eq!((cert.as_str(), key.expose()), ("C\n", "K"));
    assert_eq!(dirs[3].ca, None);
    assert_eq!(access.shared_cas(), ["SHARED"]);
}

#[test]
fn dockerfile_registries_skip_stages_args_and_scratch() {
    let dockerfile = "# FROM commented.example/x\n\
        ARG BASE=busybox\n\
        FROM --platform=linux/amd64 reg.example:5000/base:1 AS build\n\
        FROM build AS again\n\
        from $BASE\n\
        FROM scratch\n\
        FROM \\\n  other.example/img@sha256:0000000000000000000000000000000000000000000000000000000000000000\n\
        COPY --from=build /a /a\n\
        COPY --from=0 /a /a\n\
        COPY --chown=1 --from=third.example/tools:2 /t /t\n\
        RUN echo FROM nowhere.example/x\n\
        FROM golang\n";
    assert_eq!(
        dockerfile_registries(dockerfile),
        [
            "reg.example:5000",
            "other.example",
            "third.example",
            "docker.io"
        ]
    );
}

#[test]
fn dockerfile_images_are_normalised_and_listed_once() {
    let dockerfile = "FROM busybox AS a\nFROM a\nFROM docker.io/library/busybox\n\
        COPY --from=reg.example:5000/tools:2 /t /t\nFROM $BASE\nFROM scratch\n";
    let names: Vec<String> = dockerfile_images(dockerfile)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        names,
        [
            "docker.io/library/busybox:latest",
            "reg.example:5000/tools:2"
        ]
    );
}

#[test]
fn additional_registry_hosts() {
    for (entry, host) in [
        ("https://Reg.Example:5000/", "reg.example:5000"),
        ("http://reg.example/v2", "reg.example"),
        ("registry-1.docker.io", "docker.io"),
        (" plain ", "plain"),
    ] {
        assert_eq!(registry_host(entry), host, "{entry}");
    }
}

#[tokio::test]
async fn auth_file_gets_the_keychain_for_every_registry_the_build_names() {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let json_key = "{\n  \"type\": \"service_account\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIE:x\\n-----END PRIVATE KEY-----\\n\"\n}";
    let config = serde_json::json!({"auths": {
        "r.example:5000": {"username": "config-own", "password": "no"},
        "other.example": {"username": "config-other", "password": "no"},
        "gcr.io": {"auth": b64(&format!("_json_key:{json_key}"))},
        "https://tok.example/v1/": {"identitytoken": "refresh-7"},
        "bearer.example": {"registrytoken": "bearer-7"},
    }});
    let source = serde_json::json!({
        "repository": "r.example:5000/app", "username": "u", "password": "p",
        "additional_private_registries": [
            {"registry": "other.example", "username": "o", "password": "x"}],
        "docker_config": config,
    });
    let text = serde_json::json!({ "source": source }).to_string();
    let request: PutRequest = parse_request(text.as_bytes()).unwrap_or_else(|e| panic!("{e:#}"));
    let settings = Settings::from_source(&request.source, &Default::default())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut access = RegistryAccess::new(&request.source, &settings);
    access.docker_hub_host = None;
    let hosts = access.known_hosts(
        "FROM gcr.io/p/base\nFROM tok.example/y AS a\nCOPY --from=bearer.example/z / /\n\
         FROM anonymous.example/q\n",
    );
    let (log, said) = crate::log::Captured::log();
    access
        .add_keychain_logins(&hosts, &settings, &log)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        said.text(),
        "note: the credentials for registry bearer.example are a registry token, which \
         buildah cannot use: the build reaches bearer.example without credentials\n"
    );
    let auth: Value = serde_json::from_str(&access.auth_file()).expect("JSON");
    assert_eq!(
        auth,
        serde_json::json!({"auths": {
            "r.example:5000": {"auth": b64("u:p")},
            "other.example": {"auth": b64("o:x")},
            "gcr.io": {"auth": b64(&format!("_json_key:{json_key}"))},
            "tok.example": {"auth": b64("<token>:"), "identitytoken": "refresh-7"},
        }})
    );
    let shown = format!("{access:?}");
    assert!(
        !shown.contains("refresh-7") && !shown.contains("PRIVATE KEY"),
        "{shown}"
    );
}
