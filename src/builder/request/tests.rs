use super::*;

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn expands_build_metadata_only() {
    let env = env_of(&[
        ("BUILD_ID", "42"),
        ("BUILD_NAME", "7"),
        ("ATC_EXTERNAL_URL", "https://ci"),
        ("HOME", "/root"),
    ]);
    for (input, expected) in [
        ("$BUILD_ID", "42"),
        ("${BUILD_ID}", "42"),
        ("id-$BUILD_ID-${BUILD_NAME}.", "id-42-7."),
        ("$BUILD_IDX", "$BUILD_IDX"),
        ("${BUILD_ID}X", "42X"),
        ("$HOME ${HOME}", "$HOME ${HOME}"),
        ("$BUILD_TEAM_NAME|${BUILD_URL}|", "||"),
        ("$ATC_EXTERNAL_URL/builds", "https://ci/builds"),
        ("$", "$"),
        ("$$BUILD_ID", "$42"),
        ("${BUILD_ID", "${BUILD_ID"),
        ("${}", "${}"),
        ("no dollars", "no dollars"),
        ("é$BUILD_IDé", "é42é"),
    ] {
        assert_eq!(expand(input, &env), expected, "{input}");
    }
}

fn params(json: &str) -> PutParams {
    let text = format!(r#"{{"source": {{"repository": "x"}}, "params": {json}}}"#);
    match crate::resource::parse_request::<crate::resource::PutRequest>(text.as_bytes()) {
        Ok(request) => request.params,
        Err(e) => panic!("{e:#}"),
    }
}

fn sources() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
    std::fs::write(dir.path().join("src/Dockerfile"), "FROM scratch\n").expect("write");
    dir
}

fn request(dir: &Path, json: &str) -> anyhow::Result<BuildRequest> {
    let env = env_of(&[
        ("BUILD_ID", "9"),
        ("http_proxy", "http://proxy:3128"),
        ("TOKEN", "s3"),
    ]);
    BuildRequest::from_params(&params(json), dir, "r.io/app", "v1", &env)
}

#[test]
fn args_labels_and_their_files() -> anyhow::Result<()> {
    let dir = sources();
    std::fs::write(
        dir.path().join("args.json"),
        r#"{"B": 2.50, "C": true, "A": "file"}"#,
    )?;
    std::fs::write(dir.path().join("labels.json"), r#"{"l2": 3}"#)?;
    let built = request(
        dir.path(),
        r#"{"build": "src", "build_args": {"A": "$BUILD_ID", "D": "${BUILD_ID}$X"},
            "build_args_file": "args.json", "labels": {"l1": "v"}, "labels_file": "labels.json",
            "target_name": "t", "cache": true}"#,
    )?;
    let args: Vec<(&str, &str)> = built
        .build_args
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        args,
        [
            ("A", "file"),
            ("B", "2.50"),
            ("C", "true"),
            ("D", "9$X"),
            ("http_proxy", "http://proxy:3128")
        ]
    );
    assert_eq!(built.labels.len(), 2);
    assert_eq!(built.labels["l2"], "3");
    assert_eq!(built.dockerfile, dir.path().join("src/Dockerfile"));
    assert_eq!(built.target.as_deref(), Some("t"));
    let cache = built.cache.expect("cache");
    assert_eq!(
        (cache.repository.as_str(), cache.tag.as_str()),
        ("r.io/app", "v1")
    );
    Ok(())
}

#[test]
fn bad_files_are_named() -> anyhow::Result<()> {
    let dir = sources();
    std::fs::write(dir.path().join("list.json"), "[1]")?;
    std::fs::write(dir.path().join("nested.json"), r#"{"a": {"b": 1}}"#)?;
    std::fs::write(dir.path().join("broken.json"), "{")?;
    for (json, expected) in [
        (r#"{"build": "nope"}"#, "params.build: "),
        (
            r#"{"build": "src", "dockerfile": "x/Dockerfile"}"#,
            "params.dockerfile: ",
        ),
        (
            r#"{"build": "src", "build_args_file": "list.json"}"#,
            "list.json: expected a JSON object of NAME: value, got an array",
        ),
        (
            r#"{"build": "src", "labels_file": "nested.json"}"#,
            "nested.json: the value of \"a\" is an object",
        ),
        (
            r#"{"build": "src", "build_args_file": "broken.json"}"#,
            "broken.json: not valid JSON",
        ),
        (
            r#"{"build": "src", "labels_file": "missing.json"}"#,
            "params.labels_file ",
        ),
        (
            r#"{"build": "src", "secrets": {"s": {"env": "UNSET"}}}"#,
            "params.secrets.s: the environment variable UNSET is not set",
        ),
        (
            r#"{"build": "src", "secrets": {"f": {"source": "nope"}}}"#,
            "params.secrets.f: ",
        ),
        (
            r#"{"build": "src", "secrets": {"a,b": {"env": "TOKEN"}}}"#,
            "not a usable secret id",
        ),
        (
            r#"{"build": "src", "load_base": "src"}"#,
            "params.load_base ",
        ),
        (
            r#"{"build": "src", "cache_from": ["src"]}"#,
            "no `image` file",
        ),
        (
            r#"{"build": "src", "cache": true, "cache_tag": "bad tag"}"#,
            "params.cache_tag",
        ),
        (
            r#"{"build": "src", "cache_repository": "r.io/cache"}"#,
            "params.cache_repository (r.io/cache) is only used with params.cache: true",
        ),
        (
            r#"{"build": "src", "cache": true, "cache_repository": "r.io/Cache"}"#,
            "params.cache_repository \"r.io/Cache\" is not a repository",
        ),
        (
            r#"{"build": "src", "cache": true, "cache_repository": "r.io/c@sha256:0000000000000000000000000000000000000000000000000000000000000000"}"#,
            "without a tag or digest",
        ),
    ] {
        match request(dir.path(), json) {
            Ok(_) => panic!("{json}: accepted"),
            Err(e) => {
                let e = format!("{e:#}");
                assert!(e.contains(expected), "{json}: {e}");
                assert!(!e.contains("s3"), "a secret value leaked: {e}");
            }
        }
    }
    Ok(())
}

#[test]
fn secrets_and_saved_images() -> anyhow::Result<()> {
    let dir = sources();
    std::fs::write(dir.path().join("secret.txt"), "v")?;
    let base = dir.path().join("base");
    std::fs::create_dir_all(&base)?;
    std::fs::write(base.join("image"), "")?;
    std::fs::write(base.join("repository"), "busybox")?;
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other)?;
    std::fs::write(other.join("image"), "")?;
    std::fs::write(other.join("repository"), "127.0.0.1:5000/base\n")?;
    std::fs::write(other.join("tag"), "1.0")?;
    let built = request(
        dir.path(),
        r#"{"build": "src", "secrets": {"e": {"env": "TOKEN"}, "f": {"source": "secret.txt"}},
            "load_base": "base", "load_bases": ["other"], "cache_from": ["other"]}"#,
    )?;
    assert_eq!(built.secrets.len(), 2);
    assert_eq!(built.secrets[0].id, "e");
    assert!(matches!(&built.secrets[0].source, SecretSource::Value(v) if v.expose() == "s3"));
    assert!(!format!("{built:?}").contains("s3"), "Debug shows a secret");
    assert_eq!(
        built.secrets[1].source,
        SecretSource::File(dir.path().join("secret.txt"))
    );
    let names: Vec<&str> = built.bases.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "docker.io/library/busybox:latest",
            "127.0.0.1:5000/base:1.0"
        ]
    );
    assert_eq!(built.cache_from[0].archive, other.join("image"));
    assert!(built.cache.is_none());
    Ok(())
}

#[test]
fn cache_repository_and_pull() -> anyhow::Result<()> {
    let dir = sources();
    let plain = request(dir.path(), r#"{"build": "src", "cache": true}"#)?;
    assert_eq!(plain.pull, PullPolicy::Always);
    let cache = plain.cache.context("cache")?;
    assert_eq!(
        (cache.repository.as_str(), cache.layers.as_str()),
        ("r.io/app", "r.io/app")
    );
    let elsewhere = request(
        dir.path(),
        r#"{"build": "src", "cache": true, "cache_repository": "cache", "pull": "never"}"#,
    )?;
    assert_eq!(elsewhere.pull, PullPolicy::Never);
    let cache = elsewhere.cache.context("cache")?;
    assert_eq!(cache.layers, "docker.io/library/cache");
    Ok(())
}
