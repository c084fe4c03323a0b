//! `check` with R's `tag_regex`: every listed tag the pattern matches (unanchored, as R's
//! Go `MatchString`) is a version, in the registry's listing order, or oldest first by the
//! config's `created` with `created_at_sort`. Against a real registry; digests from skopeo,
//! the listing order from the registry's own `/tags/list`.

use serde_json::{json, Value};

use crate::get::source_for;
use crate::util::*;

fn check(source: &Value) -> crate::util::Output {
    run("check", &[], &json!({ "source": source }))
}

/// `(tag, digest)` pairs of a successful check.
fn versions(out: &crate::util::Output) -> Vec<(String, String)> {
    out.expect_success()
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", out.stdout))
        .iter()
        .map(|v| {
            (
                v["tag"].as_str().unwrap_or_default().to_string(),
                v["digest"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Pushes one fresh image per tag (`same` groups share one image); returns the digests.
fn seed(registry: &Registry, repository: &str, groups: &[&[&str]]) -> Vec<(String, String)> {
    let mut digests = Vec::new();
    for group in groups {
        let image = random_image(1, 128);
        for tag in *group {
            let reference = format!("{repository}:{tag}");
            push(registry, &image, &reference);
            digests.push((tag.to_string(), skopeo_raw_digest(registry, &reference)));
        }
    }
    digests
}

/// The registry's own `/tags/list` order.
fn listing(registry: &Registry, repository: &str) -> Vec<String> {
    let response = registry
        .get(&format!("/v2/{repository}/tags/list"))
        .unwrap_or_else(|e| panic!("listing {repository}: {e}"));
    let body: Value = serde_json::from_slice(&response.body).expect("tags/list JSON");
    body["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn tag_regex_lists_every_match_in_listing_order_with_and_without_anchors() {
    let registry = Registry::start(RegistryConfig::new());
    let seeded = seed(
        &registry,
        "regex/app",
        &[
            &["v1.0", "v1.0-final"],
            &["v1.10"],
            &["v2.0"],
            &["build-3"],
            &["xv1.5"],
            &["latest"],
        ],
    );
    let digest_of = |tag: &str| {
        seeded
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    };
    let listing = listing(&registry, "regex/app");
    let expect = |pattern: &dyn Fn(&str) -> bool| -> Vec<(String, String)> {
        listing
            .iter()
            .filter(|t| pattern(t))
            .map(|t| (t.clone(), digest_of(t)))
            .collect()
    };
    let mut source = source_for(&registry, "regex/app");

    // Unanchored: `xv1.5` matches too; two tags of one image are two versions (no dedup).
    source["tag_regex"] = json!("v1\\.");
    let loose = versions(&check(&source));
    assert_eq!(loose, expect(&|t| t.contains("v1.")));
    assert_eq!(loose.len(), 4, "{loose:?}");
    assert_eq!(digest_of("v1.0"), digest_of("v1.0-final"));

    // Anchored as written.
    source["tag_regex"] = json!("^v[0-9]+\\.[0-9]+$");
    let anchored = versions(&check(&source));
    assert_eq!(
        anchored,
        expect(&|t| ["v1.0", "v1.10", "v2.0"].contains(&t))
    );

    // No match: no versions, not an error.
    source["tag_regex"] = json!("^nothing$");
    assert!(versions(&check(&source)).is_empty());

    // R's semver keys have nothing to do here: a note each.
    source["tag_regex"] = json!("^v2");
    source["semver_constraint"] = json!(">= 1");
    source["variant"] = json!("alpine");
    let out = check(&source);
    assert_eq!(
        versions(&out),
        vec![("v2.0".to_string(), digest_of("v2.0"))]
    );
    assert!(
        out.stderr
            .contains("`semver_constraint` is ignored by check with `tag_regex`")
            && out.stderr.contains("`variant` is ignored"),
        "{}",
        out.stderr
    );
}

#[test]
fn created_at_sort_orders_matches_oldest_first() {
    let registry = Registry::start(RegistryConfig::new());
    // Listing order is a, b, c; creation order is b, c, a.
    let created = [
        ("build-a", "2024-03-01T10:00:00Z"),
        ("build-b", "2024-01-01T10:00:00Z"),
        ("build-c", "2024-01-01T12:30:00+02:00"),
    ];
    let mut digests = Vec::new();
    for (tag, time) in created {
        let image = ImageBuilder::new()
            .created(time)
            .layer(LayerBuilder::new().file("t", tag.as_bytes()))
            .build();
        let reference = format!("regex/dated:{tag}");
        push(&registry, &image, &reference);
        digests.push((tag.to_string(), skopeo_raw_digest(&registry, &reference)));
    }
    let mut source = source_for(&registry, "regex/dated");
    source["tag_regex"] = json!("^build-");
    let listed = versions(&check(&source));
    let order = listing(&registry, "regex/dated");
    let in_listing_order: Vec<(String, String)> = order
        .iter()
        .filter_map(|t| digests.iter().find(|(d, _)| d == t).cloned())
        .collect();
    assert_eq!(
        listed, in_listing_order,
        "listing order without created_at_sort"
    );
    source["created_at_sort"] = json!(true);
    let sorted = versions(&check(&source));
    let expected: Vec<(String, String)> = [1, 2, 0].iter().map(|&i| digests[i].clone()).collect();
    assert_eq!(sorted, expected);
}

#[test]
fn an_invalid_tag_regex_fails_before_any_request() {
    // Nothing listens on port 9: the pattern is refused before the registry is asked.
    let source = json!({"repository": "127.0.0.1:9/regex/app", "tag_regex": "^v(1"});
    let error = check(&source).expect_failure().to_string();
    assert!(
        error.contains("source.tag_regex \"^v(1\" is not a valid regular expression")
            && error.contains("unclosed group at character 3"),
        "{error}"
    );
    assert!(!error.contains("127.0.0.1:9"), "{error}");
}
