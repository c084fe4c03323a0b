//! Sigstore (cosign) signatures in tests: keys made by independent tools (cosign
//! `generate-key-pair`, skopeo `generate-sigstore-key`, openssl); trixie's skopeo (built with
//! sigstore, unlike bookworm's) and cosign, run by `ci/trixie-tool`, as the oracles that sign
//! and verify; openssl's ECDSA verification of a payload; raw registry reads and writes for
//! tampering.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use super::bin::run_command;
use super::image::{sha256_digest, Image};
use super::registry::{block_on, Registry};

/// How long one skopeo or openssl run may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// cosign's tag for the signatures of `digest`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// Runs `ci/trixie-tool skopeo` (trixie's skopeo 1.18) with `args`; `Err` with its stderr.
pub fn trixie_skopeo(args: &[String]) -> Result<String, String> {
    trixie_tool("skopeo", args, &[])
}

/// Runs `ci/trixie-tool cosign` (trixie's cosign 2.5) with `args` and `env`; `Err` with
/// its output.
pub fn cosign(args: &[String], env: &[(&str, &str)]) -> Result<String, String> {
    trixie_tool("cosign", args, env)
}

fn trixie_tool(program: &str, args: &[String], env: &[(&str, &str)]) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/trixie-tool");
    let mut command = Command::new(&script);
    command.arg(program).args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = run_command(command, b"", TOOL_TIMEOUT);
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "ci/trixie-tool {program} {} failed ({}): {}\n{}\n(no trixie {program}? run ci/setup as root)",
            args.join(" "),
            out.status,
            out.stdout,
            out.stderr
        ))
    }
}

/// A key pair from `cosign generate-key-pair` (`ENCRYPTED SIGSTORE PRIVATE KEY`), as
/// `<dir>/<name>.key` and `.pub`.
pub fn cosign_key(dir: &Path, name: &str, password: &str) -> KeyPair {
    let prefix = dir.join(name);
    cosign(
        &[
            "generate-key-pair".into(),
            "--output-key-prefix".into(),
            prefix.display().to_string(),
        ],
        &[("COSIGN_PASSWORD", password)],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let text = fs::read_to_string(&private).expect("reading the private key");
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"),
        "cosign wrote a key of another form:\n{}",
        text.lines().next().unwrap_or("")
    );
    KeyPair {
        public_pem: fs::read_to_string(&public).expect("reading the public key"),
        private,
        public,
        password: password.to_string(),
    }
}

/// `cosign sign` of `repository@digest` on `registry` with `key`, key-only (no
/// transparency log), the `.sig` tag scheme.
pub fn cosign_sign(registry: &Registry, repository: &str, digest: &str, key: &KeyPair) {
    cosign(
        &[
            "sign".into(),
            "--key".into(),
            key.private.display().to_string(),
            "--tlog-upload=false".into(),
            "--allow-http-registry".into(),
            "--yes".into(),
            format!("{}/{repository}@{digest}", registry.host()),
        ],
        &[("COSIGN_PASSWORD", key.password.as_str())],
    )
    .unwrap_or_else(|e| panic!("{e}\nregistry log:\n{}", registry.log()));
}

/// `cosign sign` as [`cosign_sign`], but storing the signature as an OCI 1.1 referrer
/// (`--registry-referrers-mode=oci-1-1`, experimental): a manifest whose `subject` is the
/// image, listed (on a registry without the referrers API, as distribution 2.8) in the
/// referrers tag `sha256-<hex>`.
pub fn cosign_sign_referrer(registry: &Registry, repository: &str, digest: &str, key: &KeyPair) {
    cosign(
        &[
            "sign".into(),
            "--key".into(),
            key.private.display().to_string(),
            "--tlog-upload=false".into(),
            "--allow-http-registry".into(),
            "--yes".into(),
            "--registry-referrers-mode=oci-1-1".into(),
            format!("{}/{repository}@{digest}", registry.host()),
        ],
        &[
            ("COSIGN_PASSWORD", key.password.as_str()),
            ("COSIGN_EXPERIMENTAL", "1"),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}\nregistry log:\n{}", registry.log()));
}

/// `cosign sign` with cosign 3 (Debian sid's, `ci/trixie-tool cosign3`) in its default
/// format: a Sigstore bundle (a DSSE envelope over an in-toto statement naming the digest)
/// stored as an OCI referrer of the image, listed in the referrers tag on distribution 2.8.
/// Key-only: a signing config with no transparency log, timestamp or Fulcio service (cosign
/// 3 refuses `--tlog-upload=false`), made in `dir`.
pub fn cosign3_sign(
    registry: &Registry,
    repository: &str,
    digest: &str,
    key: &KeyPair,
    dir: &Path,
) {
    let config = dir.join("signing-config.json");
    trixie_tool(
        "cosign3",
        &[
            "signing-config".into(),
            "create".into(),
            "--no-default-fulcio".into(),
            "--no-default-oidc".into(),
            "--no-default-rekor".into(),
            "--no-default-tsa".into(),
            "--out".into(),
            config.display().to_string(),
        ],
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    trixie_tool(
        "cosign3",
        &[
            "sign".into(),
            "--key".into(),
            key.private.display().to_string(),
            "--signing-config".into(),
            config.display().to_string(),
            "--allow-http-registry".into(),
            "--yes".into(),
            format!("{}/{repository}@{digest}", registry.host()),
        ],
        &[("COSIGN_PASSWORD", key.password.as_str())],
    )
    .unwrap_or_else(|e| panic!("{e}\nregistry log:\n{}", registry.log()));
}

/// `cosign verify --experimental-oci11 --key` of `repository@digest`: the signatures
/// stored as OCI 1.1 referrers (found through the referrers API or tag). Its stdout, or
/// `Err`.
pub fn cosign_verify_referrer(
    registry: &Registry,
    repository: &str,
    digest: &str,
    public: &Path,
) -> Result<String, String> {
    cosign_verify_with(registry, repository, digest, public, true)
}

/// The referrers tag of `digest` (`sha256-<hex>`, the distribution spec's referrers tag
/// schema) in `repository`, parsed; `None` when there is none.
pub fn referrers_tag_index(registry: &Registry, repository: &str, digest: &str) -> Option<Value> {
    let tag = digest.replacen(':', "-", 1);
    let response = registry
        .get_with_headers(
            &format!("/v2/{repository}/manifests/{tag}"),
            &[("Accept", "application/vnd.oci.image.index.v1+json")],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    match response.status {
        404 => None,
        200 => Some(serde_json::from_slice(&response.body).expect("referrers index JSON")),
        other => panic!(
            "GET {repository}:{tag}: {other} {}",
            String::from_utf8_lossy(&response.body)
        ),
    }
}

/// `cosign verify --key` of `repository@digest` (no transparency log): its stdout (the
/// verified payloads), or `Err`.
pub fn cosign_verify(
    registry: &Registry,
    repository: &str,
    digest: &str,
    public: &Path,
) -> Result<String, String> {
    cosign_verify_with(registry, repository, digest, public, false)
}

/// `cosign verify --key` (no transparency log), of the `.sig` signatures or, with `oci11`,
/// of the OCI 1.1 referrers.
fn cosign_verify_with(
    registry: &Registry,
    repository: &str,
    digest: &str,
    public: &Path,
    oci11: bool,
) -> Result<String, String> {
    let mut args: Vec<String> = vec![
        "verify".into(),
        "--key".into(),
        public.display().to_string(),
        "--insecure-ignore-tlog=true".into(),
        "--allow-http-registry".into(),
    ];
    let mut env: &[(&str, &str)] = &[];
    if oci11 {
        args.push("--experimental-oci11".into());
        env = &[("COSIGN_EXPERIMENTAL", "1")];
    }
    args.push(format!("{}/{repository}@{digest}", registry.host()));
    cosign(&args, env)
}

/// `cosign verify --key` with cosign 3 and its default flags (it reads Sigstore bundles and
/// `.sig` signatures), no transparency log: its stdout, or `Err`.
pub fn cosign3_verify(
    registry: &Registry,
    repository: &str,
    digest: &str,
    public: &Path,
) -> Result<String, String> {
    trixie_tool(
        "cosign3",
        &[
            "verify".into(),
            "--key".into(),
            public.display().to_string(),
            "--insecure-ignore-tlog=true".into(),
            "--allow-http-registry".into(),
            format!("{}/{repository}@{digest}", registry.host()),
        ],
        &[],
    )
}

/// A key pair on disk.
pub struct KeyPair {
    /// The private key file.
    pub private: PathBuf,
    /// The public key file.
    pub public: PathBuf,
    /// The public key PEM.
    pub public_pem: String,
    /// The password of the private key ("" for a plain one).
    pub password: String,
}

/// A cosign-format encrypted key pair from `skopeo generate-sigstore-key`, as
/// `<dir>/<name>.private` and `.pub`.
pub fn skopeo_key(dir: &Path, name: &str, password: &str) -> KeyPair {
    let prefix = dir.join(name);
    let passphrase = dir.join(format!("{name}.passphrase"));
    fs::write(&passphrase, format!("{password}\n")).expect("writing the passphrase file");
    trixie_skopeo(&[
        "generate-sigstore-key".into(),
        "--output-prefix".into(),
        prefix.display().to_string(),
        "--passphrase-file".into(),
        passphrase.display().to_string(),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let public = dir.join(format!("{name}.pub"));
    let private = dir.join(format!("{name}.private"));
    let text = fs::read_to_string(&private).expect("reading the private key");
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----")
            || text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"),
        "skopeo wrote a key of another form:\n{}",
        text.lines().next().unwrap_or("")
    );
    KeyPair {
        public_pem: fs::read_to_string(&public).expect("reading the public key"),
        private,
        public,
        password: password.to_string(),
    }
}

/// A plain (unencrypted) PKCS#8 P-256 key pair made by openssl.
pub fn openssl_key(dir: &Path, name: &str) -> KeyPair {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &private.display().to_string(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &private.display().to_string(),
        "-pubout",
        "-out",
        &public.display().to_string(),
    ]);
    KeyPair {
        public_pem: fs::read_to_string(&public).expect("reading the public key"),
        private,
        public,
        password: String::new(),
    }
}

/// Runs openssl; panics with its output unless it succeeds. Returns stdout.
pub fn openssl(args: &[&str]) -> String {
    let mut command = Command::new("openssl");
    command.args(args);
    let out = run_command(command, b"", TOOL_TIMEOUT);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}\n{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// Whether openssl verifies `signature_b64` (base64 DER ECDSA) over `payload` with the
/// public key file `public` (`openssl dgst -sha256 -verify`).
pub fn openssl_verifies(dir: &Path, public: &Path, payload: &[u8], signature_b64: &str) -> bool {
    let payload_path = dir.join("openssl-payload");
    let signature_path = dir.join("openssl-signature");
    fs::write(&payload_path, payload).expect("writing the payload");
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature_b64)
        .expect("the signature annotation is base64");
    fs::write(&signature_path, der).expect("writing the signature");
    let mut command = Command::new("openssl");
    command.args([
        "dgst",
        "-sha256",
        "-verify",
        &public.display().to_string(),
        "-signature",
        &signature_path.display().to_string(),
        &payload_path.display().to_string(),
    ]);
    let out = run_command(command, b"", TOOL_TIMEOUT);
    out.status.success() && out.stdout.contains("Verified OK")
}

/// `registries.d` telling containers/image to read and write sigstore signatures as
/// attachments (the `.sig` tags) on `registry`.
pub fn registries_d(dir: &Path, registry: &Registry) -> PathBuf {
    let path = dir.join("registries.d");
    fs::create_dir_all(&path).expect("creating registries.d");
    fs::write(
        path.join("default.yaml"),
        format!(
            "docker:\n  {}:\n    use-sigstore-attachments: true\n",
            registry.host()
        ),
    )
    .expect("writing registries.d");
    path
}

/// Signs `image` with trixie's skopeo while pushing it to `registry` as `reference`.
pub fn skopeo_push_signed(
    registry: &Registry,
    image: &Image,
    reference: &str,
    key: &KeyPair,
    work: &Path,
) {
    let passphrase = work.join("skopeo-sign.passphrase");
    fs::write(&passphrase, format!("{}\n", key.password)).expect("writing the passphrase");
    let args: Vec<String> = vec![
        "--insecure-policy".into(),
        "--registries.d".into(),
        registries_d(work, registry).display().to_string(),
        "copy".into(),
        "--preserve-digests".into(),
        "--dest-tls-verify=false".into(),
        "--sign-by-sigstore-private-key".into(),
        key.private.display().to_string(),
        "--sign-passphrase-file".into(),
        passphrase.display().to_string(),
        image.oci_ref(),
        format!("docker://{}/{reference}", registry.host()),
    ];
    trixie_skopeo(&args).unwrap_or_else(|e| panic!("{e}\nregistry log:\n{}", registry.log()));
}

/// Whether trixie's skopeo, under a policy that requires a sigstore signature by
/// `public` with `identity` (a `signedIdentity` object; `null`: the default,
/// matchRepoDigestOrExact), copies `reference` out of `registry`: `Err` with its message.
pub fn skopeo_verifies(
    registry: &Registry,
    reference: &str,
    public: &Path,
    identity: Value,
    work: &Path,
) -> Result<(), String> {
    let mut requirement =
        json!({"type": "sigstoreSigned", "keyPath": public.display().to_string()});
    if !identity.is_null() {
        requirement["signedIdentity"] = identity;
    }
    let policy = json!({
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {registry.host(): [requirement]},
            "oci": {"": [{"type": "insecureAcceptAnything"}]},
        }
    });
    let policy_path = work.join("policy.json");
    fs::write(&policy_path, policy.to_string()).expect("writing policy.json");
    let layout = tempfile::Builder::new()
        .prefix("skopeo-verified-")
        .tempdir()
        .expect("temp dir");
    trixie_skopeo(&[
        "--policy".into(),
        policy_path.display().to_string(),
        "--registries.d".into(),
        registries_d(work, registry).display().to_string(),
        "copy".into(),
        // The signatures are checked on reading; an OCI layout cannot hold them.
        "--remove-signatures".into(),
        "--src-tls-verify=false".into(),
        format!("docker://{}/{reference}", registry.host()),
        format!("oci:{}:x", layout.path().join("l").display()),
    ])
    .map(|_| ())
}

/// A manifest's bytes from `registry` (OCI and Docker media types accepted); `None` on 404.
pub fn manifest(registry: &Registry, repository: &str, reference: &str) -> Option<Vec<u8>> {
    let response = registry
        .get_with_headers(
            &format!("/v2/{repository}/manifests/{reference}"),
            &[(
                "Accept",
                "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
            )],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    match response.status {
        404 => None,
        200 => Some(response.body),
        other => panic!(
            "GET manifest {repository}:{reference}: {other} {}",
            String::from_utf8_lossy(&response.body)
        ),
    }
}

/// The signature manifest of `digest` in `repository`, parsed; panics when there is none.
pub fn signature_manifest(registry: &Registry, repository: &str, digest: &str) -> Value {
    let raw = manifest(registry, repository, &signature_tag(digest))
        .unwrap_or_else(|| panic!("no {repository}:{}", signature_tag(digest)));
    serde_json::from_slice(&raw).expect("signature manifest JSON")
}

/// A blob's bytes.
pub fn blob(registry: &Registry, repository: &str, digest: &str) -> Vec<u8> {
    let response = registry
        .get(&format!("/v2/{repository}/blobs/{digest}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200, "GET blob {digest}");
    response.body
}

/// Uploads `bytes` as a blob of `repository` (monolithic POST + PUT); returns its digest.
pub fn upload_blob(registry: &Registry, repository: &str, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    let url = registry.url();
    let body = bytes.to_vec();
    let location = block_on(async {
        let client = reqwest::Client::new();
        let response = client
            .post(format!("{url}/v2/{repository}/blobs/uploads/"))
            .send()
            .await
            .expect("POST upload");
        assert_eq!(response.status().as_u16(), 202, "starting an upload");
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("Location")
            .to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{url}{location}")
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let response = client
            .put(format!("{location}{separator}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .expect("PUT upload");
        assert_eq!(response.status().as_u16(), 201, "finishing an upload");
        location
    });
    let _ = location;
    digest
}

/// `PUT` of an OCI image manifest as `repository:reference`.
pub fn put_manifest(registry: &Registry, repository: &str, reference: &str, bytes: &[u8]) {
    let url = format!("{}/v2/{repository}/manifests/{reference}", registry.url());
    let body = bytes.to_vec();
    block_on(async {
        let response = reqwest::Client::new()
            .put(&url)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(body)
            .send()
            .await
            .expect("PUT manifest");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 201, "PUT {url}: {text}");
    });
}

/// The simple-signing payload cosign writes for `digest` in `name`, byte for byte.
pub fn cosign_payload(name: &str, digest: &str) -> String {
    format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"{name}\"}},\"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
    )
}
