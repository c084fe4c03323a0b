//! Tests across the whole request: error messages for every part of it, and secrets that never
//! print; plus the helpers the other modules' tests share.

use super::*;
use crate::secret::Secret;

pub(super) const DIGEST: &str =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A check request whose source is `repository: golang` plus `fields`.
pub(super) fn with_source(fields: &str) -> String {
    match fields {
        "" => r#"{"source": {"repository": "golang"}}"#.to_string(),
        _ if fields.contains("\"repository\"") => format!(r#"{{"source": {{{fields}}}}}"#),
        _ => format!(r#"{{"source": {{"repository": "golang", {fields}}}}}"#),
    }
}

pub(super) fn source(fields: &str) -> Source {
    match parse_request::<CheckRequest>(with_source(fields).as_bytes()) {
        Ok(request) => request.source,
        Err(e) => panic!("{fields}: {e:#}"),
    }
}

/// The error for a request of kind `c`heck, `g`et or `p`ut; `DIGEST` is replaced.
fn error(kind: char, text: &str) -> String {
    let text = text.replace("DIGEST", DIGEST);
    let bytes = text.as_bytes();
    let result = match kind {
        'c' => parse_request::<CheckRequest>(bytes).map(|r| format!("{r:?}")),
        'g' => parse_request::<GetRequest>(bytes).map(|r| format!("{r:?}")),
        _ => parse_request::<PutRequest>(bytes).map(|r| format!("{r:?}")),
    };
    match result {
        Ok(parsed) => panic!("{text} parsed: {parsed}"),
        Err(e) => format!("{e:#}"),
    }
}

#[rustfmt::skip]
const SOURCE_ERRORS: &[(&str, &str)] = &[
    (r#""repositry": "x""#, "unknown key `repositry` in source; did you mean `repository`?"),
    (r#""insecure_registry": ["x"]"#, "in source; did you mean `insecure_registries`?"),
    (r#""tag-regex": "x""#, "did you mean `tag_regex`?"),
    (r#""zzzzzzzz": 1"#, "unknown key `zzzzzzzz` in source; known keys: `repository`, `tag`, `username`"),
    (r#""platform": {"arch": "arm64"}"#, "unknown key `arch` in source.platform; did you mean `architecture`?"),
    (r#""platform": "linux/amd64""#, "source.platform: expected an object, got a string"),
    (r#""registry_extension": {"endpoint": "e", "token": "t", "skipverify": true}"#,
        "unknown key `skipverify` in source.registry_extension; did you mean `skip_verify`?"),
    (r#""registry_extension": {"endpoint": "e"}"#, "source.registry_extension is missing the required key `token`"),
    (r#""additional_private_registries": [{"registry": "r", "username": "u"}]"#,
        "source.additional_private_registries[0] is missing the required key `password`"),
    (r#""insecure": "yes""#, "source.insecure: expected a boolean, got a string"),
    (r#""debug": 1"#, "source.debug: expected a boolean, got a number"),
    (r#""username": 1"#, "source.username: expected a string, got a number"),
    (r#""insecure_registries": "r:5000""#, "source.insecure_registries: expected a list, got a string"),
    (r#""max_concurrent_downloads": 0"#, "source.max_concurrent_downloads: must be at least 1"),
    (r#""max_concurrent_uploads": -1"#, "source.max_concurrent_uploads: expected a positive integer"),
    (r#""repository": """#, "source.repository: must not be empty"),
    (r#""repository": null"#, "source.repository: expected a string, got null"),
    (r#""tag": 1, "tag": 2"#, "source: the key `tag` is given twice"),
    (r#""tag": true"#, "source.tag: expected a string or a number, got a boolean"),
    (r#""tag": {"a": 1}"#, "source.tag: expected a string or a number, got an object"),
    (r#""docker_config": "{nope""#, "source.docker_config: the string is not valid JSON"),
    (r#""docker_config": "[1]""#, "source.docker_config: the string must hold a JSON object, not a list"),
    (r#""docker_config": 5"#, "source.docker_config: expected an object or a string holding one, got a number"),
    (r#""ca_certs": ["P", {"domain": "d", "cert": "c", "dmain": "x"}]"#,
        "unknown key `dmain` in source.ca_certs[1]; did you mean `domain`?"),
    (r#""ca_certs": [{"domain": "d", "cert": "c", "foo": 1}]"#, "source.ca_certs[0]; known keys: `domain`, `cert`"),
    (r#""ca_certs": [{"domain": "d"}]"#, "source.ca_certs[0] is missing the required key `cert`"),
    (r#""ca_certs": [{"domain": "", "cert": "c"}]"#, "source.ca_certs[0]: `domain` and `cert` must not be empty"),
    (r#""ca_certs": [5]"#, "source.ca_certs[0]: expected a PEM string or an object"),
    (r#""ca_certs": [1.5]"#, "source.ca_certs[0]: expected a string or an object with keys `domain`, `cert`, got a number"),
    (r#""ca_certs": [true]"#, "source.ca_certs[0]: expected a PEM string or an object with `domain` and `cert`, got a boolean"),
    (r#""ca_certs": [" "]"#, "source.ca_certs[0]: the certificate is empty"),
    (r#""ca_certs": "PEM""#, "source.ca_certs: expected a list, got a string"),
    (r#""client_certs": [{"domain": "d", "cert": "c", "key": "k", "ky": 1}]"#, "unknown key `ky` in source.client_certs[0]"),
    (r#""client_certs": [{"domain": "d", "cert": "c"}]"#, "source.client_certs[0] is missing the required key `key`"),
    (r#""registry_mirror": "https://m/v2""#, "source.registry_mirror: a mirror URL has no path"),
    (r#""registry_mirror": "https://m/?q=1""#, "source.registry_mirror: a mirror URL has no path, query"),
    (r#""registry_mirror": "https://m#f""#, "a mirror URL has no path, query or fragment"),
    (r#""registry_mirror": "ftp://m""#, "source.registry_mirror: unsupported scheme `ftp`"),
    (r#""registry_mirror": "mirror:5000""#, "source.registry_mirror: the URL has no `http://` or `https://`"),
    (r#""registry_mirror": "https://""#, "source.registry_mirror: not a valid URL"),
    (r#""registry_mirror": "https://u:mirror-pw-42@m""#, "source.registry_mirror: credentials in the URL"),
    (r#""registry_mirror": {"host": "https://m"}"#, "source.registry_mirror: `host` must be `host[:port]`"),
    (r#""registry_mirror": {"hst": "m"}"#, "unknown key `hst` in source.registry_mirror; did you mean `host`?"),
    (r#""registry_mirror": ["m"]"#, "source.registry_mirror: expected a URL string or an object"),
    (r#""registry_mirror": 1.5"#, "source.registry_mirror: expected a string or an object with keys `host`"),
];

#[test]
fn source_errors() {
    for (fields, expected) in SOURCE_ERRORS {
        let e = error('c', &with_source(fields));
        assert!(e.starts_with("invalid request on stdin: "), "{e}");
        assert!(
            e.contains(expected),
            "{fields}:\n  {e}\nlacks\n  {expected}"
        );
        assert!(!e.contains("mirror-pw-42"), "{e}");
    }
}

#[rustfmt::skip]
const REQUEST_ERRORS: &[(char, &str, &str)] = &[
    ('c', "", "stdin was empty"),
    ('c', " \n\t", "stdin was empty"),
    ('c', r#"{"source": {"repository": "x",}}"#, "the request on stdin is not valid JSON: trailing comma (line 1, column 31)"),
    ('c', "{\n  \"source\": \n", "not valid JSON: EOF while parsing a value (line 3, column 0)"),
    ('c', r#"{"source": {"repository": "x"}} x"#, "not valid JSON: trailing characters"),
    ('c', r#"{"source": {}}"#, "source is missing the required key `repository`"),
    ('c', r#"{}"#, "the request is missing the required key `source`"),
    ('c', r#"[]"#, "the request: expected an object, got a list"),
    ('c', r#"{"source": 1.5}"#, "source: expected an object, got a number"),
    ('c', r#"{"sauce": {}}"#, "unknown key `sauce` in the request; did you mean `source`?"),
    ('c', r#"{"source": {"repository": "x"}, "params": {}}"#, "unknown key `params` in the request; known keys: `source`, `version`"),
    ('c', r#"{"source": {"repository": "x"}, "version": {"digest": "DIGEST", "tga": "1"}}"#,
        "unknown key `tga` in version; did you mean `tag`?"),
    ('c', r#"{"source": {"repository": "x"}, "version": {"tag": "1"}}"#, "version is missing the required key `digest`"),
    ('g', r#"{"source": {"repository": "x"}, "version": {"digest": "sha256:abc"}}"#,
        "version.digest: a sha256 digest is 64 lowercase hex digits"),
    ('g', r#"{"source": {"repository": "x"}}"#, "the request is missing the required key `version`"),
    ('g', r#"{"source": {"repository": "x"}, "version": {"digest": "DIGEST"}, "params": {"format": "tarball"}}"#,
        "params.format: unknown format \"tarball\"; use `rootfs` (the default), `oci` or `oci-layout`"),
    ('g', r#"{"source": {"repository": "x"}, "version": {"digest": "DIGEST"}, "params": {"formt": "oci"}}"#,
        "unknown key `formt` in params; did you mean `format`?"),
    ('g', r#"{"source": {"repository": "x"}, "version": {"digest": "DIGEST"}, "params": {"platform": {"os": 1}}}"#,
        "params.platform.os: expected a string, got a number"),
    ('p', r#"{"source": {"repository": "x"}, "params": {"build_args": {"E": null}}}"#,
        "params.build_args.E: expected a string, number or boolean, got null"),
    ('p', r#"{"source": {"repository": "x"}, "params": {"build_args": {"E": [1]}}}"#, "got a list"),
    ('p', r#"{"source": {"repository": "x"}, "params": {"labels": {"k": 1}}}"#, "params.labels.k: expected a string, got a number"),
    ('p', r#"{"source": {"repository": "x"}, "params": {"secrets": {"s": {"env": "E", "source": "f"}}}}"#,
        "params.secrets.s: give exactly one of `env` (a variable) or `source` (a file)"),
    ('p', r#"{"source": {"repository": "x"}, "params": {"secrets": {"s": {}}}}"#, "params.secrets.s: give exactly one"),
    ('p', r#"{"source": {"repository": "x"}, "params": {"secrets": {"s": {"file": "f"}}}}"#,
        "unknown key `file` in params.secrets.s; known keys: `env`, `source`"),
    ('p', r#"{"source": {"repository": "x"}, "params": {"tag_as_latest": "true"}}"#,
        "params.tag_as_latest: expected a boolean, got a string"),
    ('p', r#"{"source": {"repository": "x"}, "params": {"cache_from": "dir"}}"#, "params.cache_from: expected a list, got a string"),
    ('p', r#"{"source": {"repository": "x"}, "params": {"load_tags": "t"}}"#, "did you mean `load_tag`?"),
    ('p', r#"{"source": {"repository": "x"}, "params": {"get_params": {}}}"#, "unknown key `get_params` in params"),
];

#[test]
fn request_errors() {
    for (kind, text, expected) in REQUEST_ERRORS {
        let e = error(*kind, text);
        assert!(e.contains(expected), "{text}:\n  {e}\nlacks\n  {expected}");
    }
}

/// Every option of D and R, with these secret values.
const SECRETS: [&str; 10] = [
    "pw-0", "ext-1", "aws-2", "sess-3", "git-4", "ckey-5", "mpw-6", "notary-7", "dcauth-8", "apr-9",
];
const EVERY_OPTION: &str = r#""username": "u", "password": "pw-0", "docker_config": {"auths": {"r": {"auth": "dcauth-8"}}},
    "additional_private_registries": [{"registry": "r.io", "username": "u", "password": "apr-9"}],
    "registry_extension": {"endpoint": "https://ext", "token": "ext-1"}, "aws_access_key_id": "a",
    "aws_secret_access_key": "aws-2", "aws_session_token": "sess-3", "aws_region": "eu-west-1",
    "aws_role_arn": "arn1", "aws_role_arns": ["arn2"], "aws_account_id": "1",
    "insecure_registries": ["r:5000", "10.0.0.0/8"], "ca_certs": ["PEM"],
    "client_certs": [{"domain": "r:5000", "cert": "C", "key": "ckey-5"}],
    "registry_mirror": {"host": "m", "password": "mpw-6"}, "platform": {"os": "linux"},
    "tag_regex": "^1", "created_at_sort": true, "semver_constraint": "~1", "variant": "alpine",
    "pre_releases": true, "pre_release_prefixes": ["rc"], "git_repo": "g", "git_private_key": "git-4",
    "git_branch": "main", "git_known_hosts": "h ssh-ed25519 AAAA", "fail_when_missing": true, "max_concurrent_downloads": 3,
    "max_concurrent_uploads": 4, "debug": true, "content_trust": {"repository_key": "notary-7"}"#;

#[test]
fn every_option_parses_and_secrets_never_print() {
    let s = source(EVERY_OPTION);
    assert_eq!(s.password.as_ref().map(Secret::expose), Some("pw-0"));
    assert_eq!(s.client_certs[0].key.expose(), "ckey-5");
    assert!(s
        .registry_extension
        .as_ref()
        .is_some_and(|e| !e.skip_verify));
    assert_eq!(
        (s.max_concurrent_downloads, s.max_concurrent_uploads),
        (Some(3), Some(4))
    );
    assert!(s.debug && s.fail_when_missing && s.created_at_sort && s.pre_releases && !s.insecure);
    let debug = format!("{s:?}");
    let bad = error(
        'c',
        &with_source(&format!(r#"{EVERY_OPTION}, "insecure": "not-a-bool""#)),
    );
    assert!(
        bad.contains("source.insecure: expected a boolean, got a string"),
        "{bad}"
    );
    for secret in SECRETS {
        assert!(!debug.contains(secret), "{debug}");
        assert!(!bad.contains(secret), "{bad}");
    }
    let e = error('c', &with_source(r#""password": 987654321"#));
    assert!(
        e.contains("source.password: expected a string, got a number") && !e.contains("987654321"),
        "{e}"
    );
    let e = error('c', &with_source(r#""insecure": "s3cr3t-value""#));
    assert!(!e.contains("s3cr3t-value"), "{e}");
}
