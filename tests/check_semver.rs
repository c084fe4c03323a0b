//! `check` without a tag, against real registries: R's semver listing (versions ascending,
//! one per digest, `latest` when it is a digest of its own), `variant`, `pre_releases`, the
//! cursor, tag lists over several pages, and a Docker Hub mirror that lacks what the origin
//! has. The oracle for a digest is `skopeo inspect --raw | sha256sum`.

use serde_json::{json, Value};

use crate::get::source_for;
use crate::util::front::{Action, Front};
use crate::util::*;

fn check(source: &Value, version: Option<Value>) -> Output {
    let mut request = json!({ "source": source });
    if let Some(version) = version {
        request["version"] = version;
    }
    run("check", &[], &request)
}

/// Pushes `image` to each of `repository:tag`; returns the oracle's digest of the first.
fn push_tags(registry: &Registry, image: &Image, repository: &str, tags: &[&str]) -> String {
    for tag in tags {
        push(registry, image, &format!("{repository}:{tag}"));
    }
    let digest = skopeo_raw_digest(registry, &format!("{repository}:{}", tags[0]));
    for tag in &tags[1..] {
        let other = skopeo_raw_digest(registry, &format!("{repository}:{tag}"));
        assert_eq!(other, digest, "{tag} should share {}'s digest", tags[0]);
    }
    digest
}

fn fresh() -> Image {
    random_image(1, 256)
}

#[test]
fn semver_tags_ascending_with_latest_folded_into_its_version() {
    let registry = Registry::start(RegistryConfig::new());
    let repo = "semver/app";
    let one = push_tags(&registry, &fresh(), repo, &["1.0.0"]);
    let one_one = push_tags(&registry, &fresh(), repo, &["1.1.0", "latest"]);
    let rc = push_tags(&registry, &fresh(), repo, &["1.1.0-rc.1"]);
    let source = source_for(&registry, repo);
    // R's answer: the final releases, ascending; `latest` is 1.1.0, so it is not repeated.
    assert_eq!(
        check(&source, None).expect_success(),
        &json!([{ "tag": "1.0.0", "digest": one }, { "tag": "1.1.0", "digest": one_one }])
    );
    // With pre-releases, rc.1 sorts between them.
    let mut with_pre = source.clone();
    with_pre["pre_releases"] = json!(true);
    assert_eq!(
        check(&with_pre, None).expect_success(),
        &json!([
            { "tag": "1.0.0", "digest": one },
            { "tag": "1.1.0-rc.1", "digest": rc },
            { "tag": "1.1.0", "digest": one_one },
        ])
    );
    // A custom prefix adds to alpha/beta/rc.
    let dev = push_tags(&registry, &fresh(), repo, &["1.2.0-dev.1"]);
    let mut with_dev = with_pre.clone();
    with_dev["pre_release_prefixes"] = json!(["dev"]);
    let versions = check(&with_dev, None).expect_success().clone();
    assert_eq!(
        versions.as_array().and_then(|v| v.last()),
        Some(&json!({ "tag": "1.2.0-dev.1", "digest": dev }))
    );
    // The cursor: the given version and what is newer.
    let given = json!({ "tag": "1.1.0", "digest": one_one });
    assert_eq!(
        check(&source, Some(given)).expect_success(),
        &json!([{ "tag": "1.1.0", "digest": one_one }])
    );
    // latest moves to a digest of its own: it comes last.
    let newest = push_tags(&registry, &fresh(), repo, &["latest"]);
    let given = json!({ "tag": "1.1.0", "digest": one_one });
    assert_eq!(
        check(&source, Some(given)).expect_success(),
        &json!([{ "tag": "1.1.0", "digest": one_one }, { "tag": "latest", "digest": newest }])
    );
}

#[test]
fn only_latest_gives_latest_and_no_tags_give_nothing() {
    let registry = Registry::start(RegistryConfig::new());
    let digest = push_tags(&registry, &fresh(), "semver/only", &["latest", "main"]);
    let source = source_for(&registry, "semver/only");
    assert_eq!(
        check(&source, None).expect_success(),
        &json!([{ "tag": "latest", "digest": digest }])
    );
    // No version tag and no latest: nothing, not an error.
    push_tags(&registry, &fresh(), "semver/none", &["main"]);
    let out = check(&source_for(&registry, "semver/none"), None);
    assert_eq!(out.expect_success(), &json!([]));
    assert!(out.stderr.contains("no versions"), "{}", out.stderr);
    // A repository that does not exist: the same.
    let out = check(&source_for(&registry, "semver/absent"), None);
    assert_eq!(out.expect_success(), &json!([]));
}

#[test]
fn tags_on_one_digest_give_one_version_the_most_specific() {
    let registry = Registry::start(RegistryConfig::new());
    let image = fresh();
    let digest = push_tags(
        &registry,
        &image,
        "semver/same",
        &["1", "1.2", "1.2.3", "v1.2"],
    );
    let source = source_for(&registry, "semver/same");
    assert_eq!(
        check(&source, None).expect_success(),
        &json!([{ "tag": "1.2.3", "digest": digest }])
    );
}

#[test]
fn variant_lists_its_suffixed_tags_and_is_allowed_with_tag() {
    let registry = Registry::start(RegistryConfig::new());
    let repo = "semver/variant";
    let plain = push_tags(&registry, &fresh(), repo, &["1.0.0", "latest"]);
    let one = push_tags(&registry, &fresh(), repo, &["1.0.0-alpine"]);
    let two = push_tags(&registry, &fresh(), repo, &["1.1.0-alpine", "alpine"]);
    let mut source = source_for(&registry, repo);
    source["variant"] = json!("alpine");
    assert_eq!(
        check(&source, None).expect_success(),
        &json!([{ "tag": "1.0.0-alpine", "digest": one }, { "tag": "1.1.0-alpine", "digest": two }])
    );
    // With a tag, variant changes nothing in check (R: it is for out), with a note.
    source["tag"] = json!("latest");
    let out = check(&source, None);
    assert_eq!(
        out.expect_success(),
        &json!([{ "tag": "latest", "digest": plain }])
    );
    assert!(out.stderr.contains("`variant`"), "{}", out.stderr);
    // So are the listing options R ignores next to a tag.
    source["pre_releases"] = json!(true);
    source["semver_constraint"] = json!("~1");
    let out = check(&source, None);
    assert_eq!(
        out.expect_success(),
        &json!([{ "tag": "latest", "digest": plain }])
    );
    assert!(
        out.stderr.contains("`semver_constraint` is ignored"),
        "{}",
        out.stderr
    );
}

#[test]
fn tag_list_over_several_pages() {
    let registry = Registry::start(RegistryConfig::new());
    let repo = "semver/pages";
    let one = push_tags(&registry, &fresh(), repo, &["1", "1.0", "1.0.0"]);
    let two = push_tags(&registry, &fresh(), repo, &["2.0", "2.0.0"]);
    let latest = push_tags(&registry, &fresh(), repo, &["latest"]);
    // distribution 2.8 ignores `n` and sends every tag at once, so the front serves the tag
    // list itself, two tags a page with a `Link` to the next (as distribution 3 and Docker
    // Hub do), and forwards the rest. Our client asks for n=1000 and must follow the links.
    let mut all = ["1", "1.0", "1.0.0", "2.0", "2.0.0", "latest"];
    all.sort();
    let front = Front::start(registry.host(), move |seen| {
        let Some(query) = seen.target.strip_prefix("/v2/semver/pages/tags/list?") else {
            return Action::Forward;
        };
        let last = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("last="))
            .unwrap_or("");
        let rest: Vec<&str> = all.iter().copied().filter(|t| *t > last).collect();
        let page = &rest[..rest.len().min(2)];
        let body = json!({ "name": "semver/pages", "tags": page }).to_string();
        let mut headers = vec!["Content-Type: application/json".to_string()];
        if rest.len() > page.len() {
            let next = page[page.len() - 1];
            headers.push(format!(
                "Link: </v2/semver/pages/tags/list?last={next}&n=2>; rel=\"next\""
            ));
        }
        Action::RespondWithBody("200 OK".into(), headers, body.into_bytes())
    });
    let source = json!({ "repository": format!("{}/{repo}", front.host()) });
    assert_eq!(
        check(&source, None).expect_success(),
        &json!([
            { "tag": "1.0.0", "digest": one },
            { "tag": "2.0.0", "digest": two },
            { "tag": "latest", "digest": latest },
        ])
    );
    let pages: Vec<String> = front
        .seen()
        .into_iter()
        .filter(|seen| seen.target.contains("/tags/list"))
        .map(|seen| seen.target)
        .collect();
    let expected = [
        "/v2/semver/pages/tags/list?n=1000",
        "/v2/semver/pages/tags/list?last=1.0&n=2",
        "/v2/semver/pages/tags/list?last=2.0&n=2",
    ];
    assert_eq!(pages, expected);
}

#[test]
fn docker_hub_mirror_lacking_the_tag_falls_back_to_origin() {
    let origin = Registry::start(RegistryConfig::new());
    // A plain registry as the mirror: it has only what is pushed to it.
    let mirror = Registry::start(RegistryConfig::new());
    let digest = push_tags(&origin, &fresh(), "library/app", &["1.0.0"]);
    let hub = [("IMAGE_RESOURCE_DOCKER_HUB_HOST", origin.host())];
    let hub: Vec<(&str, &str)> = hub.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let check_env = |source: Value| {
        run_with_env(
            "check",
            &[],
            &hub,
            json!({ "source": source }).to_string().as_bytes(),
        )
    };

    // One tag, missing on the mirror: asked of the origin.
    let tagged = json!({ "repository": "app", "tag": "1.0.0", "registry_mirror": mirror.url() });
    let out = check_env(tagged);
    assert_eq!(
        out.expect_success(),
        &json!([{ "tag": "1.0.0", "digest": digest }])
    );
    assert!(out.stderr.contains("falling back"), "{}", out.stderr);

    // The tag listing, missing on the mirror: the origin's.
    let listed = json!({ "repository": "app", "registry_mirror": { "host": mirror.host() } });
    let out = check_env(listed);
    assert_eq!(
        out.expect_success(),
        &json!([{ "tag": "1.0.0", "digest": digest }])
    );
    assert!(out.stderr.contains("falling back"), "{}", out.stderr);

    // Missing on both: no versions, not an error.
    let absent = json!({ "repository": "app", "tag": "2.0.0", "registry_mirror": mirror.url() });
    assert_eq!(check_env(absent).expect_success(), &json!([]));

    // What the mirror has, it answers (the origin is not asked).
    let mirrored = push_tags(&mirror, &fresh(), "library/app", &["1.0.0"]);
    let tagged = json!({ "repository": "app", "tag": "1.0.0", "registry_mirror": mirror.url() });
    let out = check_env(tagged);
    assert_eq!(
        out.expect_success(),
        &json!([{ "tag": "1.0.0", "digest": mirrored }])
    );
    assert!(!out.stderr.contains("falling back"), "{}", out.stderr);
}

#[test]
fn docker_hub_listing_through_a_pull_through_mirror() {
    let upstream = Registry::start(RegistryConfig::new());
    let one = push_tags(&upstream, &fresh(), "library/app", &["1.0.0"]);
    let two = push_tags(&upstream, &fresh(), "library/app", &["2.0.0", "latest"]);
    let mirror = Registry::start(RegistryConfig::new().proxy(&upstream));
    // Docker Hub itself is unreachable: only the mirror can answer.
    let hub = [("IMAGE_RESOURCE_DOCKER_HUB_HOST", "127.0.0.1:9")];
    let source = json!({ "repository": "app", "registry_mirror": mirror.url() });
    let out = run_with_env(
        "check",
        &[],
        &hub,
        json!({ "source": source }).to_string().as_bytes(),
    );
    assert_eq!(
        out.expect_success(),
        &json!([{ "tag": "1.0.0", "digest": one }, { "tag": "2.0.0", "digest": two }])
    );
    assert!(!out.stderr.contains("falling back"), "{}", out.stderr);
}

#[test]
fn listing_with_token_auth_takes_one_token() {
    let server = TokenServer::start(TokenConfig::new().user("lister", "s3cret-list"));
    let registry = Registry::start(RegistryConfig::new().token(&server));
    let mut digests = Vec::new();
    for tag in [
        "1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0", "1.7.0", "1.8.0",
    ] {
        digests.push((tag, push_tags(&registry, &fresh(), "token/list", &[tag])));
    }
    server.clear_requests();
    let source = json!({ "repository": format!("{}/token/list", registry.host()),
        "username": "lister", "password": "s3cret-list" });
    let expected: Vec<Value> = digests
        .iter()
        .map(|(tag, digest)| json!({ "tag": tag, "digest": digest }))
        .collect();
    let out = check(&source, None);
    assert_eq!(out.expect_success(), &Value::Array(expected));
    // The listing and nine HEADs (eight at a time) share one pull token.
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(!out.stderr.contains("s3cret-list"), "{}", out.stderr);
}

#[test]
fn semver_constraint_filters_the_listing_and_drops_latest() {
    let registry = Registry::start(RegistryConfig::new());
    let repo = "semver/constraint";
    let mut digests = std::collections::HashMap::new();
    for tag in [
        "0.9.0",
        "1.0.0",
        "1.1.0",
        "1.2.0-rc.1",
        "1.3.0-dev.1",
        "1.5.0",
        "2.0.0",
        "latest",
    ] {
        digests.insert(tag, push_tags(&registry, &fresh(), repo, &[tag]));
    }
    let versions = |tags: &[&str]| -> Value {
        tags.iter()
            .map(|tag| json!({ "tag": tag, "digest": digests[tag] }))
            .collect()
    };
    let mut source = source_for(&registry, repo);
    // Without a constraint, latest (a digest of its own) comes last.
    assert_eq!(
        check(&source, None).expect_success(),
        &versions(&["0.9.0", "1.0.0", "1.1.0", "1.5.0", "2.0.0", "latest"])
    );
    // With one: only what meets it, and never latest.
    source["semver_constraint"] = json!(">= 1.1, < 2");
    assert_eq!(
        check(&source, None).expect_success(),
        &versions(&["1.1.0", "1.5.0"])
    );
    // The cursor still applies.
    let given = json!({ "tag": "1.1.0", "digest": digests["1.1.0"] });
    assert_eq!(
        check(&source, Some(given)).expect_success(),
        &versions(&["1.1.0", "1.5.0"])
    );
    // pre_releases alone: R's Masterminds constraint without a pre-release refuses them.
    source["pre_releases"] = json!(true);
    assert_eq!(
        check(&source, None).expect_success(),
        &versions(&["1.1.0", "1.5.0"])
    );
    // `-0` in the constraint lets them through to R's prefix filter (alpha, beta, rc).
    source["semver_constraint"] = json!(">= 1.1-0, < 2");
    assert_eq!(
        check(&source, None).expect_success(),
        &versions(&["1.1.0", "1.2.0-rc.1", "1.5.0"])
    );
    // A custom prefix adds dev.
    source["pre_release_prefixes"] = json!(["dev"]);
    assert_eq!(
        check(&source, None).expect_success(),
        &versions(&["1.1.0", "1.2.0-rc.1", "1.3.0-dev.1", "1.5.0"])
    );
    // Without pre_releases, R's pre-release filter drops them whatever the constraint says.
    source["pre_releases"] = json!(false);
    assert_eq!(
        check(&source, None).expect_success(),
        &versions(&["1.1.0", "1.5.0"])
    );
}

#[test]
fn semver_constraint_with_a_variant_sees_the_version_without_the_suffix() {
    let registry = Registry::start(RegistryConfig::new());
    let repo = "semver/constraint-variant";
    push_tags(&registry, &fresh(), repo, &["1.0.0-alpine"]);
    let one_one = push_tags(&registry, &fresh(), repo, &["1.1.0-alpine"]);
    let one_five = push_tags(&registry, &fresh(), repo, &["1.5.0-alpine"]);
    push_tags(&registry, &fresh(), repo, &["2.0.0-alpine", "alpine"]);
    push_tags(&registry, &fresh(), repo, &["1.2.0", "latest"]);
    let mut source = source_for(&registry, repo);
    source["variant"] = json!("alpine");
    source["semver_constraint"] = json!("~1.x, >= 1.1");
    assert_eq!(
        check(&source, None).expect_success(),
        &json!([
            { "tag": "1.1.0-alpine", "digest": one_one },
            { "tag": "1.5.0-alpine", "digest": one_five },
        ])
    );
}

#[test]
fn an_invalid_semver_constraint_is_an_error_naming_it() {
    let registry = Registry::start(RegistryConfig::new());
    let repo = "semver/constraint-bad";
    let digest = push_tags(&registry, &fresh(), repo, &["1.0.0"]);
    let mut source = source_for(&registry, repo);
    let cases = [
        (">= bar", r#"improper constraint ">= bar""#),
        ("1.2.3.4", r#"improper constraint "1.2.3.4""#),
        (">= 1.0 || < x.y", r#"improper constraint " < x.y""#),
        ("v1.2.3-beta.01", "may not start with 0"),
    ];
    for (constraint, what) in cases {
        source["semver_constraint"] = json!(constraint);
        let out = check(&source, None);
        let error = out.expect_failure();
        let named = format!("source.semver_constraint {}", json!(constraint));
        assert!(error.contains(&named), "{constraint}: {error}");
        assert!(error.contains(what), "{constraint}: {error}");
        assert!(!error.contains("not supported yet"), "{error}");
    }
    // Next to a tag R never reads it: the tag is checked, with a note.
    source["tag"] = json!("1.0.0");
    let out = check(&source, None);
    assert_eq!(
        out.expect_success(),
        &json!([{ "tag": "1.0.0", "digest": digest }])
    );
    assert!(
        out.stderr.contains("`semver_constraint` is ignored"),
        "{}",
        out.stderr
    );
}
