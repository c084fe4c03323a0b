//! No secret is ever shown: every command (`check`, `in`, `out`) runs with `debug: true`
//! for every kind of credential the project knows (username/password; `docker_config`
//! `auth`, `identitytoken`, `registrytoken` and a credential helper; the
//! `registry_extension` token and the credentials it answers; a client certificate's key;
//! a git private key; Amazon ECR keys, session token and the password moto hands out), and
//! stdout, stderr and every file written (the `in` destination, the `out` directory,
//! `TMPDIR`) are searched for each secret. ACR's tokens are checked on stdout and stderr in
//! `credentials_acr.rs` only (its peers are not shared with this test).

use std::path::Path;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::check_git::GitRepo;
use crate::get::source_for;
use crate::util::extension::{Answer, ExtensionPeer};
use crate::util::moto::{ecr_password, Moto};
use crate::util::registry::block_on;
use crate::util::sshd::Sshd;
use crate::util::*;

const USER: &str = "sec-user";

/// One credential kind: the source that uses it, the secrets it carries, extra env.
struct Kind {
    name: &'static str,
    source: Value,
    secrets: Vec<String>,
    env: Vec<(String, String)>,
    /// Whether `out` can push with it (a pull-only token cannot).
    can_push: bool,
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Every file under `dir` (not following links), with its bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file() {
            found.push((
                path.display().to_string(),
                std::fs::read(&path).unwrap_or_default(),
            ));
        } else if meta.is_symlink() {
            let target = std::fs::read_link(&path).unwrap_or_default();
            found.push((
                path.display().to_string(),
                target.display().to_string().into_bytes(),
            ));
        }
    }
    found
}

fn assert_nowhere(kind: &str, command: &str, out: &Output, dirs: &[&Path], secrets: &[String]) {
    for secret in secrets {
        assert!(
            !out.stdout.contains(secret.as_str()) && !out.stderr.contains(secret.as_str()),
            "{kind}/{command}: secret {secret:?} shown:\nstdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
        for dir in dirs {
            for (path, bytes) in files_under(dir) {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{kind}/{command}: secret {secret:?} written to {path}"
                );
            }
        }
    }
}

fn run_in_env(bin: &str, args: &[&str], env: &[(String, String)], request: &Value) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_with_env(bin, args, &env, request.to_string().as_bytes())
}

/// Runs check, in and out with `kind` and `debug: true`, all succeeding, and searches
/// everything they printed and wrote.
fn run_every_command(kind: &Kind, image: &Image) {
    let tmp = tempfile::tempdir().expect("TMPDIR");
    let mut env = kind.env.clone();
    env.push(("TMPDIR".into(), tmp.path().display().to_string()));
    let mut source = kind.source.clone();
    source["debug"] = json!(true);

    let out = run_in_env("check", &[], &env, &json!({ "source": source }));
    let version = out.expect_success()[0].clone();
    assert_nowhere(kind.name, "check", &out, &[tmp.path()], &kind.secrets);

    let dest = tempfile::tempdir().expect("dest");
    let request = json!({ "source": source, "version": version, "params": { "format": "oci" } });
    let out = run_in_env("in", &[&dest.path().display().to_string()], &env, &request);
    out.expect_success();
    assert_nowhere(
        kind.name,
        "in",
        &out,
        &[dest.path(), tmp.path()],
        &kind.secrets,
    );

    let work = tempfile::tempdir().expect("out dir");
    let mut target = source.clone();
    target["tag"] = json!(format!("pushed-{}", kind.name));
    let request = json!({ "source": target, "params": { "image": image.path() } });
    let out = run_in_env("out", &[&work.path().display().to_string()], &env, &request);
    if kind.can_push {
        out.expect_success();
    }
    assert_nowhere(
        kind.name,
        "out",
        &out,
        &[work.path(), tmp.path()],
        &kind.secrets,
    );
}

/// An htpasswd registry with `password` holding `repository:latest`.
fn htpasswd_registry(password: &str, repository: &str) -> Registry {
    let registry = Registry::start(RegistryConfig::new().htpasswd(USER, password));
    push(
        &registry,
        &random_image(1, 512),
        &format!("{repository}:latest"),
    );
    registry
}

fn repository_of(registry: &Registry, repository: &str) -> String {
    format!("{}/{repository}", registry.host())
}

/// A token for `scope` from `server`, fetched with the user's password.
fn fetch_token(server: &TokenServer, password: &str, scope: &str) -> String {
    let url = format!(
        "{}?service={}&scope={scope}",
        server.realm(),
        server.service()
    );
    let body: Value = block_on(async {
        reqwest::Client::new()
            .get(&url)
            .basic_auth(USER, Some(password))
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token JSON")
    });
    body["token"].as_str().expect("a token").to_string()
}

#[test]
fn no_secret_is_shown_or_written_by_any_command_with_debug() {
    let image = random_image(1, 2048);
    let mut kinds = Vec::new();

    // username / password.
    let basic = htpasswd_registry("Pw-basic-4f1e", "sec/basic");
    kinds.push(Kind {
        name: "username-password",
        source: source_for(&basic, "sec/basic"),
        secrets: vec![
            "Pw-basic-4f1e".into(),
            b64(&format!("{USER}:Pw-basic-4f1e")),
        ],
        env: Vec::new(),
        can_push: true,
    });

    // docker_config auth.
    let auth = htpasswd_registry("Pw-auth-77ac", "sec/auth");
    let encoded = b64(&format!("{USER}:Pw-auth-77ac"));
    kinds.push(Kind {
        name: "docker_config-auth",
        source: json!({ "repository": repository_of(&auth, "sec/auth"), "tag": "latest",
            "docker_config": { "auths": { auth.host(): { "auth": encoded } } } }),
        secrets: vec!["Pw-auth-77ac".into(), encoded.clone()],
        env: Vec::new(),
        can_push: true,
    });

    // docker_config identitytoken and registrytoken, against token auth.
    let tokens = TokenServer::start(
        TokenConfig::new()
            .user(USER, "Pw-token-0b9d")
            .refresh_token("Refresh-tok-5e2c"),
    );
    let tokened = Registry::start(RegistryConfig::new().token(&tokens));
    push(&tokened, &random_image(1, 512), "sec/token:latest");
    kinds.push(Kind {
        name: "docker_config-identitytoken",
        source: json!({ "repository": repository_of(&tokened, "sec/token"), "tag": "latest",
            "docker_config": { "auths": { tokened.host(): { "identitytoken": "Refresh-tok-5e2c" } } } }),
        secrets: vec!["Refresh-tok-5e2c".into(), "Pw-token-0b9d".into()],
        env: Vec::new(),
        can_push: true,
    });
    let registry_token = fetch_token(&tokens, "Pw-token-0b9d", "repository:sec/token:pull");
    kinds.push(Kind {
        name: "docker_config-registrytoken",
        source: json!({ "repository": repository_of(&tokened, "sec/token"), "tag": "latest",
            "docker_config": { "auths": { tokened.host(): { "registrytoken": registry_token } } } }),
        secrets: vec![registry_token.clone()],
        env: Vec::new(),
        // The token grants pull only: out must fail, still without showing it.
        can_push: false,
    });

    // docker_config credential helper.
    let helped = htpasswd_registry("Pw-helper-31d0", "sec/helper");
    let helpers = tempfile::tempdir().expect("helpers dir");
    let helper = helpers.path().join("docker-credential-sec");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 9\nread -r url\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"Pw-helper-31d0\"}}' \"$url\"\n"
        ),
    )
    .expect("writing the helper");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!(
        "{}:{}",
        helpers.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    kinds.push(Kind {
        name: "docker_config-helper",
        source: json!({ "repository": repository_of(&helped, "sec/helper"), "tag": "latest",
            "docker_config": { "credHelpers": { helped.host(): "sec" } } }),
        secrets: vec!["Pw-helper-31d0".into()],
        env: vec![("PATH".into(), path)],
        can_push: true,
    });

    // registry_extension: its token, and the password it answers with.
    let extended = htpasswd_registry("Pw-ext-9a4b", "sec/ext");
    let peer = ExtensionPeer::start(
        "Ext-token-c3d2",
        Answer::Json(
            json!([{ "address": extended.host(), "username": USER, "password": "Pw-ext-9a4b" }]),
        ),
    );
    kinds.push(Kind {
        name: "registry_extension",
        source: json!({ "repository": repository_of(&extended, "sec/ext"), "tag": "latest",
            "registry_extension": { "endpoint": peer.url(), "token": "Ext-token-c3d2" } }),
        secrets: vec!["Ext-token-c3d2".into(), "Pw-ext-9a4b".into()],
        env: Vec::new(),
        can_push: true,
    });

    // A client certificate's key (mutual TLS).
    let ca = Ca::new();
    let client_ca = Ca::new();
    let mutual = Registry::start(RegistryConfig::new().tls(&ca).mutual_tls(&client_ca));
    push(&mutual, &random_image(1, 512), "sec/mtls:latest");
    let (_, key) = mutual.client_cert().expect("a client certificate");
    let key_lines: Vec<String> = key
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let mut mtls_source = source_for(&mutual, "sec/mtls");
    mtls_source["tag"] = json!("latest");
    kinds.push(Kind {
        name: "client-cert-key",
        source: mtls_source,
        secrets: key_lines,
        env: Vec::new(),
        can_push: true,
    });

    // A git private key (check follows git_repo over ssh).
    let sshd = Sshd::start();
    let repo = GitRepo::init();
    let head = repo.git(&["rev-parse", "HEAD"]);
    let gitted = Registry::start(RegistryConfig::new());
    push(&gitted, &random_image(1, 512), &format!("sec/git:{head}"));
    let mut git_source = source_for(&gitted, "sec/git");
    git_source["git_repo"] = json!(sshd.url(repo.path()));
    git_source["git_private_key"] = json!(sshd.user_key().private);
    kinds.push(Kind {
        name: "git-key",
        source: git_source,
        secrets: sshd.user_key().private_body_lines(),
        env: Vec::new(),
        can_push: true,
    });

    // Amazon ECR through moto: the keys, the session token, and the password (and its
    // base64 token) that GetAuthorizationToken hands out.
    let moto = Moto::start();
    let ecr_pw = ecr_password("123456789012");
    let ecr = Registry::start(RegistryConfig::new().htpasswd("AWS", &ecr_pw));
    push(&ecr, &random_image(1, 512), "sec/ecr:latest");
    kinds.push(Kind {
        name: "ecr",
        source: json!({ "repository": repository_of(&ecr, "sec/ecr"), "tag": "latest",
            "aws_access_key_id": "AKIASECRETSTEST4711",
            "aws_secret_access_key": "Aws-secret-key-9d3f0c",
            "aws_session_token": "Aws-session-token-1c7a",
            "aws_region": "us-east-1" }),
        secrets: vec![
            "Aws-secret-key-9d3f0c".into(),
            "Aws-session-token-1c7a".into(),
            ecr_pw.clone(),
            b64(&format!("AWS:{ecr_pw}")),
        ],
        env: vec![("AWS_ENDPOINT_URL".into(), moto.url())],
        can_push: true,
    });

    for kind in &kinds {
        run_every_command(kind, &image);
    }
    drop(moto);
}
