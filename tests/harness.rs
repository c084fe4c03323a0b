//! Tests of the harness itself, with skopeo as the client: each registry kind accepts a
//! push and serves it back, and refuses what it should. These prove the harness before
//! the resource's own tests rely on it.

use std::io::Read;

use serde_json::Value;

use crate::util::image::{sha256_digest, OCI_INDEX, OCI_MANIFEST};
use crate::util::token::rfc3339;
use crate::util::*;

/// Pushes a random image as `reference` and checks that the registry serves exactly the
/// manifest we wrote, by skopeo's own reading.
fn push_and_read_back(registry: &Registry, reference: &str) -> Image {
    let image = random_image(2, 4096);
    let pushed = push(registry, &image, reference);
    assert_eq!(pushed, image.digest, "skopeo changed the manifest on push");
    let raw = skopeo_inspect_raw(registry, reference);
    assert_eq!(raw.as_bytes(), image.manifest.as_slice());
    assert_eq!(skopeo_raw_digest(registry, reference), image.digest);
    image
}

fn assert_refused(result: Result<String, String>, what: &str) -> String {
    match result {
        Ok(stdout) => panic!("{what}: expected skopeo to be refused, got:\n{stdout}"),
        Err(error) => error,
    }
}

#[test]
fn plain_http_registry() {
    let registry = Registry::start(RegistryConfig::new());
    assert!(registry.url().starts_with("http://127.0.0.1:"));
    push_and_read_back(&registry, "harness/plain:1");
    let response = registry
        .get("/v2/harness/plain/tags/list")
        .expect("tags/list");
    assert_eq!(response.status, 200);
    let tags: Value = serde_json::from_slice(&response.body).expect("tags JSON");
    assert_eq!(tags["tags"], serde_json::json!(["1"]));
}

#[test]
fn tls_registry_with_test_ca() {
    let ca = Ca::new();
    let registry = Registry::start(RegistryConfig::new().tls(&ca));
    assert!(registry.url().starts_with("https://127.0.0.1:"));
    push_and_read_back(&registry, "harness/tls:1");

    // Verification is real: without the CA, skopeo does not trust the registry.
    let error = assert_refused(
        try_skopeo_inspect_raw(&registry, "harness/tls:1", &[]),
        "TLS registry without the CA",
    );
    assert!(
        error.contains("certificate") || error.contains("x509"),
        "unexpected error: {error}"
    );
}

#[test]
fn mutual_tls_registry() {
    let server_ca = Ca::new();
    let client_ca = Ca::new();
    let registry = Registry::start(RegistryConfig::new().tls(&server_ca).mutual_tls(&client_ca));
    push_and_read_back(&registry, "harness/mtls:1");

    let ca_only = registry.cert_dir_without_client_cert().expect("cert dir");
    let flags = vec![format!("--cert-dir={}", ca_only.display())];
    assert_refused(
        try_skopeo_inspect_raw(&registry, "harness/mtls:1", &flags),
        "mutual TLS without a client certificate",
    );

    // A certificate from another CA is refused too.
    let stranger = Ca::new().client_cert("stranger");
    let dir = tempfile::tempdir().expect("temp dir");
    tls::write_file(&dir.path().join("ca.crt"), &server_ca.cert_pem());
    tls::write_file(&dir.path().join("client.cert"), &stranger.0);
    tls::write_file(&dir.path().join("client.key"), &stranger.1);
    let flags = vec![format!("--cert-dir={}", dir.path().display())];
    assert_refused(
        try_skopeo_inspect_raw(&registry, "harness/mtls:1", &flags),
        "mutual TLS with a certificate from an unknown CA",
    );
}

#[test]
fn htpasswd_registry() {
    let registry = Registry::start(RegistryConfig::new().htpasswd("alice", "s3cret"));
    assert_eq!(registry.credentials(), Some(("alice", "s3cret")));
    push_and_read_back(&registry, "harness/basic:1");

    let mut flags = registry.skopeo_tls_flags("");
    flags.push("--creds=alice:wrong".into());
    assert_refused(
        try_skopeo_inspect_raw(&registry, "harness/basic:1", &flags),
        "htpasswd with a wrong password",
    );
    let mut flags = registry.skopeo_tls_flags("");
    flags.push("--no-creds".into());
    assert_refused(
        try_skopeo_inspect_raw(&registry, "harness/basic:1", &flags),
        "htpasswd without credentials",
    );
    let response = registry.get("/v2/").expect("GET /v2/");
    assert_eq!(response.status, 401);
    assert!(response
        .header("www-authenticate")
        .is_some_and(|h| h.starts_with("Basic")));
}

#[test]
fn token_auth_registry() {
    let tokens = TokenServer::start(TokenConfig::new().user("bob", "hunter2"));
    let registry = Registry::start(RegistryConfig::new().token(&tokens));
    assert_eq!(registry.credentials(), Some(("bob", "hunter2")));

    let response = registry.get("/v2/").expect("GET /v2/");
    assert_eq!(response.status, 401);
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(&tokens.realm()),
        "challenge: {challenge}"
    );

    push_and_read_back(&registry, "harness/token:1");
    let requests = tokens.requests();
    assert!(
        requests.iter().any(|r| r.status == 200
            && r.basic_auth
            && r.user.as_deref() == Some("bob")
            && r.service.as_deref() == Some(tokens.service())
            && r.scopes
                .iter()
                .any(|s| s.starts_with("repository:harness/token:"))),
        "no authenticated token request: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| !format!("{r:?}").contains("hunter2")),
        "the password was recorded"
    );

    tokens.clear_requests();
    let mut flags = registry.skopeo_tls_flags("");
    flags.push("--creds=bob:wrong".into());
    assert_refused(
        try_skopeo_inspect_raw(&registry, "harness/token:1", &flags),
        "token auth with a wrong password",
    );
    assert!(tokens.requests().iter().any(|r| r.status == 401));

    let mut flags = registry.skopeo_tls_flags("");
    flags.push("--no-creds".into());
    assert_refused(
        try_skopeo_inspect_raw(&registry, "harness/token:1", &flags),
        "token auth, anonymous",
    );
    assert!(
        tokens
            .requests()
            .iter()
            .any(|r| r.status == 200 && !r.basic_auth),
        "anonymous clients get a token with no access: {:#?}",
        tokens.requests()
    );
}

#[test]
fn token_auth_anonymous_pull() {
    let tokens = TokenServer::start(
        TokenConfig::new()
            .user("bob", "hunter2")
            .allow_anonymous_pull()
            .access_token_only(),
    );
    let registry = Registry::start(RegistryConfig::new().token(&tokens));
    let image = push_and_read_back(&registry, "harness/public:1");

    let mut anonymous = registry.skopeo_tls_flags("");
    anonymous.push("--no-creds".into());
    let raw = try_skopeo_inspect_raw(&registry, "harness/public:1", &anonymous)
        .unwrap_or_else(|error| panic!("anonymous pull: {error}\n{}", registry.log()));
    assert_eq!(sha256_digest(raw.as_bytes()), image.digest);

    // Anonymous push is still refused.
    let other = random_image(1, 16);
    let mut args: Vec<String> = vec!["copy".into(), "--insecure-policy".into()];
    args.extend(registry.skopeo_tls_flags("dest-"));
    args.push("--dest-no-creds".into());
    args.push(other.oci_ref());
    args.push(format!("docker://{}/harness/public:2", registry.host()));
    assert_refused(skopeo(&args), "anonymous push");
}

#[test]
fn pull_through_mirror() {
    let upstream = Registry::start(RegistryConfig::new());
    let mirror = Registry::start(RegistryConfig::new().proxy(&upstream));
    assert!(mirror.is_mirror());
    let image = random_image(2, 2048);
    let pushed = push(&upstream, &image, "library/busy:1");
    assert_eq!(skopeo_raw_digest(&mirror, "library/busy:1"), pushed);
    // The blobs come through the mirror too: copy the whole image out of it.
    let out = tempfile::tempdir().expect("temp dir");
    let mut args: Vec<String> = vec!["copy".into(), "--insecure-policy".into()];
    args.extend(mirror.skopeo_flags("src-"));
    args.push(format!("docker://{}/library/busy:1", mirror.host()));
    args.push(format!("oci:{}:busy", out.path().display()));
    skopeo(&args).unwrap_or_else(|error| panic!("{error}\nmirror log:\n{}", mirror.log()));
    for layer in &image.layers {
        let blob = out
            .path()
            .join("blobs/sha256")
            .join(layer.digest.trim_start_matches("sha256:"));
        assert!(
            blob.exists(),
            "layer {} missing from the mirror copy",
            layer.digest
        );
    }
}

#[test]
fn pull_through_mirror_of_token_authenticated_tls_upstream() {
    // distribution 2.8 hands proxy.username/password only to Bearer realms, so an
    // authenticated upstream of a mirror must use token auth (not htpasswd).
    let ca = Ca::new();
    let tokens = TokenServer::start(TokenConfig::new().user("up", "stream"));
    let upstream = Registry::start(RegistryConfig::new().tls(&ca).token(&tokens));
    let mirror =
        Registry::start(RegistryConfig::new().proxy_with_credentials(&upstream, "up", "stream"));
    let pushed = push(&upstream, &random_image(1, 512), "library/busy:1");
    tokens.clear_requests();
    assert_eq!(skopeo_raw_digest(&mirror, "library/busy:1"), pushed);
    assert!(
        tokens
            .requests()
            .iter()
            .any(|r| r.status == 200 && r.user.as_deref() == Some("up")),
        "the mirror did not authenticate upstream: {:#?}",
        tokens.requests()
    );
}

#[test]
fn multi_arch_index_push() {
    let registry = Registry::start(RegistryConfig::new());
    let index = multi_arch_index(&["linux/amd64", "linux/arm64/v8"]);
    let pushed = push(&registry, &index, "harness/multi:1");
    assert_eq!(pushed, index.digest);
    let raw: Value = serde_json::from_str(&skopeo_inspect_raw(&registry, "harness/multi:1"))
        .expect("index JSON");
    assert_eq!(raw["mediaType"], OCI_INDEX);
    assert_eq!(raw["manifests"][1]["platform"]["variant"], "v8");
    for child in &index.manifests {
        let raw = skopeo_inspect_raw(&registry, &format!("harness/multi@{}", child.digest));
        assert_eq!(sha256_digest(raw.as_bytes()), child.digest);
        let manifest: Value = serde_json::from_str(&raw).expect("manifest JSON");
        assert_eq!(manifest["mediaType"], OCI_MANIFEST);
        assert_eq!(manifest["config"]["digest"], child.config_digest.as_str());
    }
}

#[test]
fn fixtures_with_zstd_uncompressed_and_docker_format() {
    let registry = Registry::start(RegistryConfig::new());
    let image = ImageBuilder::new()
        .env("GREETING=hello")
        .cmd(&["/bin/true"])
        .user("nobody")
        .label("org.example.name", "fixture")
        .layer(LayerBuilder::new().file("a.txt", b"a"))
        .layer_tar(
            LayerBuilder::new().file("b.txt", b"b").into_tar(),
            Compression::Zstd,
        )
        .layer_tar(
            LayerBuilder::new().file("c.txt", b"c").into_tar(),
            Compression::None,
        )
        .build();
    assert_eq!(push(&registry, &image, "harness/mixed:1"), image.digest);
    assert_eq!(
        skopeo_raw_digest(&registry, "harness/mixed:1"),
        image.digest
    );
    assert_eq!(
        image.config["config"]["Labels"]["org.example.name"],
        "fixture"
    );

    let gzip_only = ImageBuilder::new()
        .layer(LayerBuilder::new().file("d.txt", b"d"))
        .build();
    let docker = push_with_args(
        &registry,
        &gzip_only,
        "harness/docker:1",
        &["--format", "v2s2"],
    );
    let raw: Value = serde_json::from_str(&skopeo_inspect_raw(&registry, "harness/docker:1"))
        .expect("manifest JSON");
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(skopeo_raw_digest(&registry, "harness/docker:1"), docker);
}

#[test]
fn layer_builder_writes_what_it_says() {
    let tar = LayerBuilder::new()
        .dir("etc", 0o755)
        .file_mode("usr/bin/su", b"#!", 0o4755)
        .symlink("bin", "usr/bin")
        .hardlink("etc/su", "usr/bin/su")
        .whiteout("var/gone")
        .opaque_whiteout("opt/")
        .raw(b"../escape", tar::EntryType::Regular, 0o644, None, b"x")
        .into_tar();
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut seen = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mode = entry.header().mode().expect("mode");
        let mut body = Vec::new();
        entry.read_to_end(&mut body).expect("body");
        seen.push((path, mode));
    }
    let paths: Vec<&str> = seen.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "etc",
            "usr/bin/su",
            "bin",
            "etc/su",
            "var/.wh.gone",
            "opt/.wh..wh..opq",
            "../escape"
        ]
    );
    assert_eq!(seen[1].1, 0o4755);
}

#[test]
fn rfc3339_formats_unix_time() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
}

#[test]
fn runs_our_binaries_with_a_timeout() {
    let output = run_raw("check", &[], b"this is not JSON");
    assert!(!output.success(), "check accepted garbage: {output:?}");
    assert!(output.json.is_none());
    assert!(!output.stderr.is_empty(), "check failed silently");
}

#[test]
fn token_server_oauth2_post_and_expiry() {
    let tokens = TokenServer::start(
        TokenConfig::new()
            .user("carol", "pw")
            .refresh_token("identity-token")
            .expires_in(2),
    );
    let registry = Registry::start(RegistryConfig::new().token(&tokens));
    let post = |form: &str| -> (u16, Value) {
        let url = tokens.realm();
        let form = form.to_string();
        registry::block_on(async move {
            let response = reqwest::Client::new()
                .post(&url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .expect("POST /token");
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        })
    };
    let scope = "repository%3Aharness%2Fx%3Apull";
    let (status, body) = post(&format!(
        "grant_type=refresh_token&service=test-registry&client_id=t&refresh_token=identity-token&scope={scope}"
    ));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 2);
    let token = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let bearer = format!("Bearer {token}");
    let response = registry
        .get_with_headers("/v2/", &[("Authorization", &bearer)])
        .expect("GET /v2/");
    assert_eq!(response.status, 200, "{}", registry.log());

    let (status, _) = post(&format!(
        "grant_type=refresh_token&service=test-registry&client_id=t&refresh_token=nope&scope={scope}"
    ));
    assert_eq!(status, 401);
    let (status, _) = post("grant_type=password&username=carol&password=pw&service=test-registry");
    assert_eq!(status, 200);
    let (status, _) = post("grant_type=password&username=carol&password=no&service=test-registry");
    assert_eq!(status, 401);

    // A token whose exp is past the registry's 60 s leeway is rejected.
    let stale = TokenServer::start(TokenConfig::new().user("carol", "pw").jwt_lifetime(-120));
    let registry = Registry::start(RegistryConfig::new().token(&stale));
    let mut flags = registry.skopeo_tls_flags("");
    flags.push("--creds=carol:pw".into());
    let error = assert_refused(
        try_skopeo_inspect_raw(&registry, "harness/x:1", &flags),
        "expired token",
    );
    assert!(
        error.contains("unauthorized") || error.contains("authentication required"),
        "{error}"
    );
}
